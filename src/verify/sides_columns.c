/*
 * This file contains verify's reader of a PostgreSQL target's table of a
 * MongoDB entity: the column form (sides_internal.h, forms.h).
 */
#include "verify/sides_internal.h"

#include "apply/layout.h"
#include "core/json_fields.h"
#include "core/mem.h"
#include "verify/row_digest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The comment a mapped column carries (apply/postgres_target_table.c). */
#define FIELD_COMMENT "cachewarp field: "

/* What a column prints for the column form: a timestamp as UTC ISO 8601, others as text. */
static void column_expression(cw_buf_t *sql, const char *quoted, cw_pgc_kind_t kind)
{
	if (kind == CW_PGC_TIMESTAMPTZ)
		cw_buf_appendf(sql, ", to_char(%s AT TIME ZONE 'UTC', "
		               "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')", quoted);
	else
		cw_buf_appendf(sql, ", %s::text", quoted);
}

/*
 * Reads the target table's columns into ep->model (the field each holds:
 * its comment's, else its name) and the query that reads every row back:
 * id, the data columns, _extra, _version. 0, CW_ENOTFOUND or CW_EDB.
 */
int vs_columns_load(cw_verify_endpoint_t *ep, cw_err_t *err)
{
	const char *params[] = {ep->qtable};
	PGresult *res = vs_pg_query(ep->conn,
		"SELECT attname, format_type(atttypid, atttypmod), col_description(attrelid, attnum) "
		"FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped "
		"ORDER BY attnum", 1, params, "could not read the target table's columns", err);
	if (res == NULL)
		return CW_EDB;
	cw_verify_pg_model_clear(&ep->model);
	cw_buf_t sql = CW_BUF_INIT;
	cw_buf_append_str(&sql, "SELECT id");
	for (int i = 0; i < PQntuples(res); i++) {
		const char *name = PQgetvalue(res, i, 0), *type = PQgetvalue(res, i, 1);
		const char *comment = PQgetisnull(res, i, 2) ? NULL : PQgetvalue(res, i, 2);
		if (strcmp(name, "id") == 0 || strcmp(name, "_version") == 0 ||
		    strcmp(name, "_oplog_id") == 0 || strcmp(name, "_synced_at") == 0 ||
		    (ep->soft_column != NULL && strcmp(name, ep->soft_column) == 0))
			continue;
		if (strcmp(name, CW_LAYOUT_EXTRA_COLUMN) == 0) {
			ep->model.has_extra = true;
			continue;
		}
		const char *field = comment != NULL && strncmp(comment, FIELD_COMMENT,
		                                               strlen(FIELD_COMMENT)) == 0
		                    ? comment + strlen(FIELD_COMMENT) : name;
		cw_verify_pg_model_add(&ep->model, name, field, type);
		char *quoted = PQescapeIdentifier(ep->conn, name, strlen(name));
		column_expression(&sql, quoted ? quoted : "\"\"", ep->model.cols[ep->model.ncols - 1].kind);
		PQfreemem(quoted);
	}
	int rc = 0;
	if (PQntuples(res) == 0)
		rc = cw_err_set(err, CW_ENOTFOUND, VS_DOMAIN, "target \"%s\" holds no table of entity "
		                "\"%s\" yet (%s)", ep->target_name, ep->entity.name, ep->qtable);
	PQclear(res);
	if (ep->model.has_extra)
		cw_buf_append_str(&sql, ", " CW_LAYOUT_EXTRA_COLUMN "::text");
	cw_buf_appendf(&sql, ", _version FROM %s", ep->qtable);
	if (ep->soft_column != NULL) {
		char *quoted = PQescapeIdentifier(ep->conn, ep->soft_column, strlen(ep->soft_column));
		cw_buf_appendf(&sql, " WHERE %s IS NOT TRUE", quoted ? quoted : "\"\"");
		PQfreemem(quoted);
	}
	free(ep->select);
	ep->select = cw_buf_take(&sql);
	free(ep->shape_at);
	ep->shape_at = cw_xcalloc(ep->entity.ncolumns + 1, sizeof *ep->shape_at);
	for (size_t i = 0; i < ep->entity.ncolumns; i++) {
		const char *name = ep->entity.columns[i].name;
		const cw_verify_pg_column_t *col = cw_verify_pg_model_find(&ep->model, name, strlen(name));
		ep->shape_at[i] = col != NULL ? (int)(col - ep->model.cols) : -1;
	}
	return rc;
}

/* The "_extra" object of a column-form table: its members as fields (jsonb values). */
static uint64_t extra_pairs_json(const char *json, cw_decimal_mode_t mode)
{
	cw_json_fields_t fields;
	cw_json_fields_init(&fields);
	uint64_t sum = 0;
	if (cw_json_fields_parse(&fields, json, NULL) == 0)
		for (size_t i = 0; i < fields.len; i++)
			if (fields.items[i].kind != CW_JSON_KIND_NULL)
				sum += cw_digest_pair(fields.items[i].key, fields.items[i].key_len,
				                      cw_verify_json_digest(fields.items[i].value,
				                                            fields.items[i].value_len, mode));
	cw_json_fields_clear(&fields);
	return sum;
}

/* One fetched batch of a column-form table: each row's digest from its columns' text. */
int vs_columns_rows(pg_batch_ctx_t *ctx, PGresult *res, cw_err_t *err)
{
	(void)err;
	cw_verify_endpoint_t *ep = ctx->ep;
	const cw_verify_pg_model_t *model = &ep->model;
	int version_col = PQnfields(res) - 1;
	int extra_col = model->has_extra ? version_col - 1 : -1;
	bool typed = cw_layout_of(&ep->entity) == CW_LAYOUT_TYPED;
	int rc = 0;
	for (int r = 0; r < PQntuples(res) && rc == 0; r++) {
		const char *doc_id = PQgetvalue(res, r, 0);
		if (ctx->want != NULL && !ctx->want(ctx->want_arg, doc_id))
			continue;
		cw_verify_row_t row = {doc_id, 0, typed ? ctx->columns : NULL, typed ? ep->ncolumns : 0,
		                       strtoll(PQgetvalue(res, r, version_col), NULL, 10) <
		                       ep->entity.version, NULL};
		if (typed) {
			for (size_t i = 0; i < ep->entity.ncolumns; i++) {
				int at = ep->shape_at[i];
				cw_typed_value_t null_value = {0};
				ctx->columns[i] = at < 0 || PQgetisnull(res, r, at + 1)
				                  ? cw_digest_value(&null_value)
				                  : cw_verify_pg_text_digest(model->cols[at].kind,
				                                             PQgetvalue(res, r, at + 1),
				                                             (size_t)PQgetlength(res, r, at + 1),
				                                             ep->mode);
			}
			row.digest = cw_digest_row(doc_id, ctx->columns, ep->entity.ncolumns);
		} else {
			uint64_t sum = 0;
			for (size_t c = 0; c < model->ncols; c++) {
				if (PQgetisnull(res, r, (int)c + 1))
					continue;
				const cw_verify_pg_column_t *col = &model->cols[c];
				sum += cw_digest_pair(col->field, strlen(col->field),
				                      cw_verify_pg_text_digest(col->kind,
				                                               PQgetvalue(res, r, (int)c + 1),
				                                               (size_t)PQgetlength(res, r, (int)c + 1),
				                                               ep->mode));
			}
			if (extra_col >= 0 && !PQgetisnull(res, r, extra_col))
				sum += extra_pairs_json(PQgetvalue(res, r, extra_col), ep->mode);
			row.digest = cw_digest_row_pairs(doc_id, sum);
		}
		rc = ctx->on_row(ctx->arg, &row);
	}
	return rc;
}
