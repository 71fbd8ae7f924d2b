/*
 * This file contains the PostgreSQL target's second try of its quarantined
 * values (postgres_target_internal.h): a value quarantined because its
 * column's type refused it is written into its row once the column holds
 * it (a user or the source's record changed the type), unless the row
 * changed since.
 */
#include "apply/postgres_target_internal.h"

#include "core/json_fields.h"
#include "core/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pgt_table_t *loaded_table(pg_target_t *t, const char *entity)
{
	for (size_t i = 0; i < t->ntables; i++)
		if (strcmp(t->tables[i].entity, entity) == 0)
			return &t->tables[i];
	return NULL;
}

/* Writes one quarantined value (JSON text) into its row when its column holds it now. */
static int retry_value(pg_target_t *t, pgt_table_t *tbl, const char *doc_id, const char *column,
                       const char *value, const char *oplog_id, bool *written, cw_err_t *err)
{
	*written = false;
	const pgt_column_t *col = NULL;
	for (size_t i = 0; i < tbl->ncols && col == NULL; i++)
		if (strcmp(tbl->cols[i].name, column) == 0)
			col = &tbl->cols[i];
	if (col == NULL)
		return 0;
	char *wrapped = cw_xasprintf("{\"v\":%s}", value);
	cw_json_fields_t fields;
	cw_json_fields_init(&fields);
	int rc = 0;
	if (cw_json_fields_parse(&fields, wrapped, NULL) == 0 && fields.len == 1) {
		cw_pgc_read_t read;
		cw_pgc_read(&fields.items[0], t->cfg->decimal_handling, &read);
		cw_pgc_kind_t wider;
		const char *why = NULL;
		cw_buf_t text = CW_BUF_INIT;
		if (cw_pgc_fit(col->kind, &read, t->cfg->decimal_handling, &wider, &why) == CW_PGC_FITS &&
		    cw_pgc_text(&fields.items[0], &read, col->kind, col->type, &text)) {
			cw_buf_append_str(&text, "");
			cw_buf_t sql = CW_BUF_INIT;
			cw_buf_appendf(&sql, "UPDATE %s t SET ", tbl->qname);
			pgt_quote(&sql, col->name);
			cw_buf_appendf(&sql, " = CAST($1 AS %s) FROM (SELECT $2::text AS doc_id) r WHERE ",
			               col->type);
			pgt_key_match(tbl, &sql);
			cw_buf_append_str(&sql, " AND t._oplog_id = $3::bigint");
			const char *params[] = {cw_buf_cstr(&text), doc_id, oplog_id};
			rc = pgt_command(t, cw_buf_cstr(&sql), 3, params, "could not write a quarantined value",
			                 err);
			*written = rc == 0;
			cw_buf_free(&sql);
		}
		cw_buf_free(&text);
	}
	cw_json_fields_clear(&fields);
	free(wrapped);
	return rc;
}

int pgt_quarantine_retry(pg_target_t *t, size_t *resolved, cw_err_t *err)
{
	*resolved = 0;
	cw_buf_t sql = CW_BUF_INIT;
	cw_buf_appendf(&sql, "SELECT id, entity, doc_id, column_name, value, oplog_id FROM %s.quarantine "
	               "WHERE target = $1 AND resolved_at IS NULL AND column_name IS NOT NULL "
	               "AND value IS NOT NULL ORDER BY id LIMIT 200", t->qmeta);
	const char *params[] = {t->name};
	PGresult *res = pgt_exec(t, cw_buf_cstr(&sql), 1, params, "could not read the quarantine", err);
	cw_buf_free(&sql);
	if (res == NULL)
		return CW_EDB;
	int rc = 0;
	/* each table read once per pass: its column types may have changed by hand */
	bool *reloaded = cw_xcalloc(t->ntables + 1, sizeof *reloaded);
	for (int r = 0; r < PQntuples(res) && rc == 0; r++) {
		pgt_table_t *tbl = loaded_table(t, PQgetvalue(res, r, 1));
		if (tbl == NULL || !tbl->exists)
			continue;
		size_t at = (size_t)(tbl - t->tables);
		if (!reloaded[at] && (rc = pgt_table_load(t, tbl, err)) != 0)
			break;
		reloaded[at] = true;
		bool written = false;
		rc = pgt_command(t, "BEGIN", 0, NULL, "could not begin", err);
		if (rc == 0)
			rc = retry_value(t, tbl, PQgetvalue(res, r, 2), PQgetvalue(res, r, 3),
			                 PQgetvalue(res, r, 4), PQgetvalue(res, r, 5), &written, err);
		if (rc == 0 && written) {
			cw_buf_t done = CW_BUF_INIT;
			cw_buf_appendf(&done, "UPDATE %s.quarantine SET resolved_at = now() WHERE id = $1::bigint",
			               t->qmeta);
			const char *id[] = {PQgetvalue(res, r, 0)};
			rc = pgt_command(t, cw_buf_cstr(&done), 1, id, "could not resolve a quarantined value",
			                 err);
			cw_buf_free(&done);
		}
		if (rc == 0)
			rc = pgt_command(t, "COMMIT", 0, NULL, "could not commit", err);
		if (rc != 0 && pgt_row_refused(t->sqlstate)) {
			/* still refused (a constraint): it stays quarantined */
			PQclear(PQexec(t->conn, "ROLLBACK"));
			cw_err_clear(err);
			rc = 0;
			continue;
		}
		if (rc != 0)
			PQclear(PQexec(t->conn, "ROLLBACK"));
		else if (written)
			(*resolved)++;
	}
	free(reloaded);
	PQclear(res);
	return rc;
}
