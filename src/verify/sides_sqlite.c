/* This file contains verify's SQLite caches (sides_internal.h). */
#include "verify/sides_internal.h"

#include "apply/layout.h"
#include "apply/typed_value.h"
#include "core/json_fields.h"
#include "core/mem.h"
#include "verify/row_digest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- SQLite target ---- */

static int sqlite_error(cw_verify_endpoint_t *ep, const char *what, cw_err_t *err)
{
	return cw_err_set(err, CW_EDB, VS_DOMAIN, "%s in cache \"%s\": %s", what, ep->path,
	                  ep->db ? sqlite3_errmsg(ep->db) : "out of memory");
}

static void typed_from_sqlite(sqlite3_stmt *stmt, int col, cw_typed_value_t *out)
{
	memset(out, 0, sizeof *out);
	switch (sqlite3_column_type(stmt, col)) {
	case SQLITE_NULL:
		out->kind = CW_TYPED_NULL;
		break;
	case SQLITE_INTEGER:
		out->kind = CW_TYPED_INTEGER;
		out->integer = sqlite3_column_int64(stmt, col);
		break;
	case SQLITE_FLOAT:
		out->kind = CW_TYPED_REAL;
		out->real = sqlite3_column_double(stmt, col);
		break;
	default:
		out->kind = CW_TYPED_TEXT;
		out->text = (const char *)sqlite3_column_text(stmt, col);
		out->text_len = (size_t)sqlite3_column_bytes(stmt, col);
		break;
	}
}

static uint64_t sqlite_value_digest(sqlite3_stmt *stmt, int col)
{
	cw_typed_value_t value;
	typed_from_sqlite(stmt, col, &value);
	return cw_digest_value(&value);
}

/* A dynamic table's "_extra" object: the sum of its pair digests. */
static uint64_t extra_pairs(const char *json, cw_decimal_mode_t mode)
{
	cw_json_fields_t fields;
	cw_json_fields_init(&fields);
	uint64_t sum = 0;
	if (json != NULL && cw_json_fields_parse(&fields, json, NULL) == 0) {
		for (size_t i = 0; i < fields.len; i++) {
			const cw_json_field_t *f = &fields.items[i];
			if (f->kind == CW_JSON_KIND_NULL)
				continue;
			cw_typed_value_t value;
			cw_typed_value_from_field(f, CW_COL_ANY, mode, &value);
			sum += cw_digest_pair(f->key, f->key_len, cw_digest_value(&value));
			free(value.owned);
		}
	}
	cw_json_fields_clear(&fields);
	return sum;
}

static int sqlite_read(void *self, cw_verify_want_fn want, void *want_arg,
                       cw_verify_row_fn on_row, void *arg, cw_cancel_t *cancel, cw_err_t *err)
{
	cw_verify_endpoint_t *ep = self;
	char *sql = cw_xasprintf("SELECT * FROM \"%s\"", ep->entity.name);
	sqlite3_stmt *stmt = NULL;
	int rc = 0;
	if (sqlite3_prepare_v2(ep->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
		rc = sqlite_error(ep, "could not read the table", err);
		goto done;
	}
	int ncols = sqlite3_column_count(stmt);
	cw_layout_kind_t layout = cw_layout_of(&ep->entity);
	int id_col = -1, version_col = -1, doc_col = -1, extra_col = -1;
	int *shape_col = cw_xcalloc(ep->entity.ncolumns + 1, sizeof *shape_col);
	bool *pair_col = cw_xcalloc((size_t)ncols + 1, sizeof *pair_col);
	for (size_t i = 0; i < ep->entity.ncolumns; i++)
		shape_col[i] = -1;
	for (int c = 0; c < ncols; c++) {
		const char *name = sqlite3_column_name(stmt, c);
		if (strcmp(name, "id") == 0)
			id_col = c;
		else if (strcmp(name, "_version") == 0)
			version_col = c;
		else if (strcmp(name, CW_LAYOUT_DOC_COLUMN) == 0 && layout == CW_LAYOUT_DOCUMENT)
			doc_col = c;
		else if (strcmp(name, CW_LAYOUT_EXTRA_COLUMN) == 0)
			extra_col = c;
		else if (!cw_column_name_reserved(name, strlen(name)))
			pair_col[c] = true;
		for (size_t i = 0; i < ep->entity.ncolumns; i++)
			if (strcmp(name, ep->entity.columns[i].name) == 0)
				shape_col[i] = c;
	}
	uint64_t *digests = cw_xcalloc(ep->ncolumns + 1, sizeof *digests);
	uint64_t seen = 0;
	int step;
	while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
		if ((++seen & 0xfff) == 0 && cw_cancel_is_set(cancel)) {
			rc = cw_err_set(err, CW_ECANCELED, VS_DOMAIN, "verify was canceled");
			break;
		}
		const char *doc_id = (const char *)sqlite3_column_text(stmt, id_col);
		if (doc_id == NULL || (want != NULL && !want(want_arg, doc_id)))
			continue;
		cw_verify_row_t row = {doc_id, 0, digests, ep->ncolumns, false, NULL};
		if (version_col >= 0)
			row.stale = sqlite3_column_int64(stmt, version_col) < ep->entity.version;
		if (layout == CW_LAYOUT_DYNAMIC) {
			uint64_t sum = 0;
			for (int c = 0; c < ncols; c++) {
				if (!pair_col[c] || sqlite3_column_type(stmt, c) == SQLITE_NULL)
					continue;
				const char *name = sqlite3_column_name(stmt, c);
				sum += cw_digest_pair(name, strlen(name), sqlite_value_digest(stmt, c));
			}
			if (extra_col >= 0)
				sum += extra_pairs((const char *)sqlite3_column_text(stmt, extra_col),
				                   ep->mode);
			row.digest = cw_digest_row_pairs(doc_id, sum);
			row.columns = NULL;
		} else {
			if (layout == CW_LAYOUT_DOCUMENT) {
				cw_typed_value_t null_value = {0};
				digests[0] = doc_col >= 0 ? sqlite_value_digest(stmt, doc_col)
				                          : cw_digest_value(&null_value);
			}
			for (size_t i = 0; layout == CW_LAYOUT_TYPED && i < ep->entity.ncolumns; i++) {
				cw_typed_value_t null_value = {0};
				digests[i] = shape_col[i] >= 0 ? sqlite_value_digest(stmt, shape_col[i])
				                               : cw_digest_value(&null_value);
			}
			row.digest = cw_digest_row(doc_id, digests, ep->ncolumns);
		}
		if ((rc = on_row(arg, &row)) != 0)
			break;
	}
	if (rc == 0 && step != SQLITE_DONE)
		rc = sqlite_error(ep, "could not read the table", err);
	free(digests);
	free(pair_col);
	free(shape_col);
done:
	sqlite3_finalize(stmt);
	free(sql);
	return rc;
}

cw_verify_endpoint_t *vs_sqlite_open(const cw_target_config_t *target,
                                     const cw_entity_t *entity, cw_err_t *err)
{
	cw_verify_endpoint_t *ep = vs_endpoint_new(EP_SQLITE_TARGET, entity, target->decimal_handling);
	ep->side.read = sqlite_read;
	/* {dir}/{entity}/db.sqlite (apply/cachedb.h); the name passed cw_entity_name_validate. */
	ep->path = cw_xasprintf("%s/%s/db.sqlite", target->dir, entity->name);
	if (sqlite3_open_v2(ep->path, &ep->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		cw_err_set(err, CW_ENOTFOUND, VS_DOMAIN, "target \"%s\" holds no cache of entity \"%s\" "
		           "yet (%s)", target->name, entity->name, ep->path);
		cw_verify_endpoint_close(ep);
		return NULL;
	}
	sqlite3_busy_timeout(ep->db, 5000);
	int64_t applied = 0;
	if (vs_sqlite_applied(ep, &applied, err) != 0) {
		cw_verify_endpoint_close(ep);
		return NULL;
	}
	return ep;
}

int vs_sqlite_applied(cw_verify_endpoint_t *ep, int64_t *applied, cw_err_t *err)
{
	sqlite3_stmt *stmt = NULL;
	if (sqlite3_prepare_v2(ep->db, "SELECT value FROM metadata WHERE key = 'oplog_id'", -1,
	                       &stmt, NULL) != SQLITE_OK)
		return sqlite_error(ep, "could not read the applied position", err);
	int step = sqlite3_step(stmt);
	if (step == SQLITE_ROW)
		*applied = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		return sqlite_error(ep, "could not read the applied position", err);
	return 0;
}
