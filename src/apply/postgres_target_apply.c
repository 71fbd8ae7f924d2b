/*
 * This file contains the PostgreSQL target's batch writer
 * (postgres_target_internal.h): one coalesced batch applied in one
 * transaction, after the table model (postgres_target_table.c) made the
 * columns it needs: its rows encoded for COPY into a temporary table, then
 * per set of present columns one INSERT ... ON CONFLICT DO UPDATE, the
 * deletes, the sweeps and the entity's position. Every statement skips rows whose _oplog_id is not older
 * than the change, so a batch replayed after a crash changes nothing.
 */
#include "apply/postgres_target_internal.h"

#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/metrics.h"

#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

/* ---- the batch's data ---------------------------------------------------- */

/*
 * The fields of an upsert: merged ones, or its raw text parsed into store;
 * for a document entity the fields of its "doc" object, parsed into nested.
 * NULL with *why when the data cannot be read; NULL without for none.
 */
static const cw_json_fields_t *upsert_fields(const pgt_table_t *tbl, const cw_write_t *w,
                                             cw_json_fields_t *store, cw_json_fields_t *nested,
                                             cw_err_t *why)
{
	const cw_json_fields_t *fields = w->fields;
	if (fields == NULL) {
		if (w->raw == NULL || cw_json_fields_parse(store, w->raw, why) != 0)
			return NULL;
		fields = store;
	}
	if (tbl->layout != CW_LAYOUT_DOCUMENT)
		return fields;
	const cw_json_field_t *doc = cw_json_fields_get(fields, "doc", 3);
	if (doc == NULL || doc->kind != CW_JSON_KIND_OBJECT)
		return NULL;
	if (cw_json_fields_parse_nested(nested, doc->value, why) != 0)
		return NULL;
	return nested;
}

/* Reads every upsert of writes once (NULL rows for the other writes). Owned: rows_free. */
static pgt_parsed_row_t *rows_parse(const pg_target_t *t, const pgt_table_t *tbl,
                                const cw_write_list_t *writes)
{
	pgt_parsed_row_t *rows = cw_xmalloc((writes->len + 1) * sizeof *rows);
	for (size_t i = 0; i < writes->len; i++) {
		pgt_parsed_row_t *r = &rows[i];
		cw_json_fields_init(&r->store);
		cw_json_fields_init(&r->nested);
		r->why = (cw_err_t){0};
		r->fields = NULL;
		r->values = NULL;
		if (writes->items[i].kind != CW_WRITE_UPSERT)
			continue;
		r->fields = upsert_fields(tbl, &writes->items[i], &r->store, &r->nested, &r->why);
		if (r->fields == NULL)
			continue;
		r->values = cw_xmalloc((r->fields->len + 1) * sizeof *r->values);
		for (size_t f = 0; f < r->fields->len; f++)
			cw_pgc_read(&r->fields->items[f], t->cfg->decimal_handling, &r->values[f]);
	}
	return rows;
}

static void rows_free(pgt_parsed_row_t *rows, size_t n)
{
	for (size_t i = 0; rows != NULL && i < n; i++) {
		cw_json_fields_clear(&rows[i].store);
		cw_json_fields_clear(&rows[i].nested);
		free(rows[i].values);
	}
	free(rows);
}

static void log_drastic_once(pgt_apply_ctx_t *a, const pgt_column_t *col, const char *why)
{
	a->warnings++;
	cw_log_kv(CW_LOG_WARN, PGT_COMPONENT, "a value does not fit its column: written as NULL and "
	          "quarantined", "target", a->t->name, "entity", a->tbl->entity, "column", col->name,
	          "column_type", col->type, "value", why, NULL);
}

/* ---- rows ---------------------------------------------------------------------- */

/* Appends len bytes escaped for COPY's text format (runs without an escape in one piece). */
static void copy_text(cw_buf_t *out, const char *s, size_t len)
{
	size_t run = 0;
	for (size_t i = 0; i < len; i++) {
		const char *escape;
		switch (s[i]) {
		case '\\': escape = "\\\\"; break;
		case '\t': escape = "\\t"; break;
		case '\n': escape = "\\n"; break;
		case '\r': escape = "\\r"; break;
		default: continue;
		}
		cw_buf_append(out, s + run, i - run);
		cw_buf_append_str(out, escape);
		run = i + 1;
	}
	cw_buf_append(out, s + run, len - run);
}

/* A value quarantined while the row is built: inserted once the row's statements ran. */
typedef struct quarantined {
	char *doc_id;
	char *column;              /* NULL: the whole row */
	char *field;
	char *value;               /* JSON text */
	char *reason;
	int64_t oplog_id;
} quarantined_t;

typedef struct row_set {
	cw_buf_t copy;             /* COPY text of the rows */
	char **masks;              /* distinct masks of the upserts */
	size_t nmasks;
	bool has_replace, has_delete, has_upsert;
	quarantined_t *q;
	size_t nq;
} row_set_t;

static void row_set_reset(row_set_t *rs)
{
	cw_buf_reset(&rs->copy);
	pgt_strings_free(rs->masks, rs->nmasks);
	rs->masks = NULL;
	rs->nmasks = 0;
	rs->has_replace = rs->has_delete = rs->has_upsert = false;
	for (size_t i = 0; i < rs->nq; i++) {
		free(rs->q[i].doc_id);
		free(rs->q[i].column);
		free(rs->q[i].field);
		free(rs->q[i].value);
		free(rs->q[i].reason);
	}
	free(rs->q);
	rs->q = NULL;
	rs->nq = 0;
}

static void quarantine_later(row_set_t *rs, const char *doc_id, const char *column,
                             const char *field, const char *value, const char *reason,
                             int64_t oplog_id)
{
	rs->q = cw_xrealloc(rs->q, (rs->nq + 1) * sizeof *rs->q);
	rs->q[rs->nq++] = (quarantined_t){cw_xstrdup(doc_id), cw_xstrdup(column), cw_xstrdup(field),
	                                  cw_xstrdup(value), cw_xstrdup(reason), oplog_id};
}

static void add_mask(row_set_t *rs, const char *mask)
{
	for (size_t i = 0; i < rs->nmasks; i++)
		if (strcmp(rs->masks[i], mask) == 0)
			return;
	rs->masks = cw_xrealloc(rs->masks, (rs->nmasks + 1) * sizeof *rs->masks);
	rs->masks[rs->nmasks++] = cw_xstrdup(mask);
}

/* Appends value in decimal (the COPY rows' hot path: no format string to read). */
static void append_int64(cw_buf_t *out, int64_t value)
{
	char digits[24];
	size_t at = sizeof digits;
	uint64_t magnitude = value < 0 ? -(uint64_t)value : (uint64_t)value;
	do {
		digits[--at] = (char)('0' + magnitude % 10);
		magnitude /= 10;
	} while (magnitude > 0);
	if (value < 0)
		digits[--at] = '-';
	cw_buf_append(out, digits + at, sizeof digits - at);
}

/* Appends the row's fixed columns: op, doc_id, mask, version, oplog_id. */
static void row_head(cw_buf_t *copy, char op, const cw_write_t *w, const char *mask)
{
	cw_buf_append_char(copy, op);
	cw_buf_append_char(copy, '\t');
	copy_text(copy, w->doc_id, strlen(w->doc_id));
	cw_buf_append_char(copy, '\t');
	cw_buf_append_str(copy, mask);
	cw_buf_append_char(copy, '\t');
	append_int64(copy, w->version);
	cw_buf_append_char(copy, '\t');
	append_int64(copy, w->oplog_id);
}

/* Appends one write (row: its data as rows_parse read it) as a row of the temporary table. */
static void add_row(pgt_apply_ctx_t *a, const cw_write_t *w, const pgt_parsed_row_t *row,
                    row_set_t *rs)
{
	pg_target_t *t = a->t;
	pgt_table_t *tbl = a->tbl;
	size_t ncols = tbl->ncols;
	if (w->kind == CW_WRITE_DELETE) {
		char *mask = cw_xcalloc(ncols + 2, 1);
		memset(mask, '0', ncols + 1);
		row_head(&rs->copy, 'd', w, mask);
		cw_buf_append_str(&rs->copy, "\t\\N");
		for (size_t i = 0; i < ncols; i++)
			cw_buf_append_str(&rs->copy, "\t\\N");
		cw_buf_append_char(&rs->copy, '\n');
		rs->has_delete = true;
		free(mask);
		return;
	}
	const cw_json_fields_t *fields = row->fields;
	if (fields == NULL && row->why.message[0] != '\0') {
		quarantine_later(rs, w->doc_id, NULL, NULL, w->raw, row->why.message, w->oplog_id);
		return;
	}
	/* each column's value: an offset into text, or -1 for NULL; absent unless in mask */
	char *mask = cw_xcalloc(ncols + 2, 1);
	/* a document's upsert carries the whole document: a field it lacks is NULL */
	memset(mask, tbl->layout == CW_LAYOUT_DOCUMENT && fields != NULL ? '1' : '0', ncols + 1);
	if (!tbl->has_extra)
		mask[ncols] = '0';
	long *start = cw_xcalloc(ncols + 1, sizeof *start);
	size_t *len = cw_xcalloc(ncols + 1, sizeof *len);
	for (size_t i = 0; i < ncols; i++)
		start[i] = -1;
	cw_buf_t *text = &t->text;
	cw_buf_reset(text);
	cw_buf_t extra = CW_BUF_INIT;
	cw_json_t ew;
	cw_json_init(&ew, &extra, CW_JSON_NO_NUL);
	cw_json_object_begin(&ew, NULL);
	bool any_extra = false;
	for (size_t f = 0; fields != NULL && f < fields->len; f++) {
		const cw_json_field_t *field = &fields->items[f];
		if (!pgt_field_usable(field->key, field->key_len) ||
		    pgt_is_key_field(tbl, field->key, field->key_len))
			continue;
		const cw_pgc_read_t value = row->values[f];
		ssize_t c = pgt_find_column(tbl, field->key, field->key_len);
		if (c < 0) {
			if (value.value != CW_PGV_NULL && tbl->has_extra) {
				cw_json_key_len(&ew, field->key, field->key_len, NULL);
				cw_json_raw(&ew, field->value, field->value_len, NULL);
				any_extra = true;
			}
			continue;
		}
		const pgt_column_t *col = &tbl->cols[c];
		mask[c] = '1';
		if (value.value == CW_PGV_NULL)
			continue;   /* SQL NULL */
		cw_pgc_kind_t wider;
		const char *drastic = NULL;
		cw_pgc_fit_t fit = cw_pgc_fit(col->kind, &value, t->cfg->decimal_handling, &wider, &drastic);
		size_t at = text->len;
		if (fit == CW_PGC_FITS && cw_pgc_text(field, &value, col->kind, col->type, text)) {
			start[c] = (long)at;
			len[c] = text->len - at;
			continue;
		}
		text->len = at;
		cw_buf_t reason = CW_BUF_INIT, json = CW_BUF_INIT;
		if (fit == CW_PGC_FITS)
			cw_buf_appendf(&reason, "the value holds a NUL character, which column \"%s\" "
			               "(%s) cannot store", col->name, col->type);
		else
			cw_buf_appendf(&reason, "%s where column \"%s\" is %s", drastic ? drastic : "a value",
			               col->name, col->type);
		cw_json_compact(field->value, field->value_len, &json);
		quarantine_later(rs, w->doc_id, col->name, col->field, cw_buf_cstr(&json),
		                 cw_buf_cstr(&reason), w->oplog_id);
		log_drastic_once(a, col, cw_buf_cstr(&reason));
		cw_buf_free(&reason);
		cw_buf_free(&json);
	}
	cw_json_object_end(&ew, NULL);
	if (any_extra)
		mask[ncols] = '1';
	row_head(&rs->copy, w->replace ? 'r' : 'u', w, mask);
	cw_buf_append_char(&rs->copy, '\t');
	if (any_extra && cw_json_finish(&ew) == 0)
		copy_text(&rs->copy, extra.data, extra.len);
	else
		cw_buf_append_str(&rs->copy, "\\N");
	for (size_t i = 0; i < ncols; i++) {
		cw_buf_append_char(&rs->copy, '\t');
		if (start[i] < 0)
			cw_buf_append_str(&rs->copy, "\\N");
		else
			copy_text(&rs->copy, text->data + start[i], len[i]);
	}
	cw_buf_append_char(&rs->copy, '\n');
	add_mask(rs, mask);
	rs->has_upsert = true;
	if (w->replace)
		rs->has_replace = true;
	free(mask);
	free(start);
	free(len);
	cw_buf_free(&extra);
}

/* ---- statements ------------------------------------------------------------------ */

/*
 * The session's batch table: created once per connection (emptied at every
 * commit), with value columns v0.. for the widest table written so far; a
 * table with fewer columns uses the first ones.
 */
static int ensure_temp(pgt_apply_ctx_t *a, cw_err_t *err)
{
	pg_target_t *t = a->t;
	if (t->temp_cols > 0 && t->temp_cols >= a->tbl->ncols)
		return 0;
	cw_buf_t *sql = &t->sql;
	cw_buf_reset(sql);
	cw_buf_append_str(sql, "CREATE TEMP TABLE IF NOT EXISTS _cw_rows (op text, doc_id text, "
	                       "mask text, version bigint, oplog_id bigint, extra text) "
	                       "ON COMMIT DELETE ROWS");
	if (a->tbl->ncols > 0) {
		cw_buf_append_str(sql, "; ALTER TABLE pg_temp._cw_rows");
		for (size_t i = 0; i < a->tbl->ncols; i++)
			cw_buf_appendf(sql, "%s ADD COLUMN IF NOT EXISTS v%zu text", i ? "," : "", i);
	}
	int rc = pgt_command(t, cw_buf_cstr(sql), 0, NULL, "could not create the batch table", err);
	if (rc == 0)
		t->temp_cols = a->tbl->ncols > 0 ? a->tbl->ncols : 1;
	return rc;
}

/* The COPY into the batch table of the table's value columns. */
static void copy_sql(const pgt_apply_ctx_t *a, cw_buf_t *sql)
{
	cw_buf_append_str(sql, "COPY pg_temp._cw_rows (op, doc_id, mask, version, oplog_id, extra");
	for (size_t i = 0; i < a->tbl->ncols; i++)
		cw_buf_appendf(sql, ", v%zu", i);
	cw_buf_append_str(sql, ") FROM STDIN");
}

/* Appends the condition matching table row t to batch row r by key. */
void pgt_key_match(const pgt_table_t *tbl, cw_buf_t *sql)
{
	for (size_t k = 0; k < tbl->nkey; k++) {
		if (k > 0)
			cw_buf_append_str(sql, " AND ");
		cw_buf_append_str(sql, "t.");
		pgt_quote(sql, tbl->key[k]);
		if (tbl->nkey == 1)
			cw_buf_appendf(sql, " = CAST(r.doc_id AS %s)", tbl->key_types[k]);
		else
			cw_buf_appendf(sql, " = CAST((r.doc_id::jsonb) ->> %zu AS %s)", k, tbl->key_types[k]);
	}
}

static void key_values(const pgt_table_t *tbl, cw_buf_t *sql)
{
	for (size_t k = 0; k < tbl->nkey; k++) {
		if (tbl->nkey == 1)
			cw_buf_appendf(sql, "CAST(r.doc_id AS %s), ", tbl->key_types[k]);
		else
			cw_buf_appendf(sql, "CAST((r.doc_id::jsonb) ->> %zu AS %s), ", k, tbl->key_types[k]);
	}
}

/* The INSERT ... ON CONFLICT DO UPDATE of the upserts whose present columns are mask. */
static void upsert_sql(const pgt_apply_ctx_t *a, const char *mask, cw_buf_t *sql)
{
	const pg_target_t *t = a->t;
	const pgt_table_t *tbl = a->tbl;
	size_t ncols = tbl->ncols;
	bool extra = mask[ncols] == '1';
	bool soft = t->cfg->delete_mode == CW_DELETE_SOFT;
	cw_buf_appendf(sql, "INSERT INTO %s AS t (", tbl->qname);
	for (size_t k = 0; k < tbl->nkey; k++) {
		pgt_quote(sql, tbl->key[k]);
		cw_buf_append_str(sql, ", ");
	}
	for (size_t i = 0; i < ncols; i++) {
		if (mask[i] != '1')
			continue;
		pgt_quote(sql, tbl->cols[i].name);
		cw_buf_append_str(sql, ", ");
	}
	if (extra)
		cw_buf_append_str(sql, PGT_EXTRA_COLUMN ", ");
	cw_buf_append_str(sql, "_version, _oplog_id, _synced_at");
	if (soft)
		cw_buf_appendf(sql, ", %s", t->qsoft);
	cw_buf_append_str(sql, ") SELECT ");
	key_values(tbl, sql);
	for (size_t i = 0; i < ncols; i++)
		if (mask[i] == '1')
			cw_buf_appendf(sql, "CAST(r.v%zu AS %s), ", i, tbl->cols[i].type);
	if (extra)
		cw_buf_append_str(sql, "CAST(r.extra AS jsonb), ");
	cw_buf_append_str(sql, "r.version, r.oplog_id, now()");
	if (soft)
		cw_buf_append_str(sql, ", false");
	cw_buf_append_str(sql, " FROM pg_temp._cw_rows r WHERE r.op IN ('u', 'r') AND r.mask = ");
	pgt_literal(sql, mask);
	cw_buf_append_str(sql, " ON CONFLICT (");
	pgt_key_list(tbl, sql);
	cw_buf_append_str(sql, ") DO UPDATE SET ");
	for (size_t i = 0; i < ncols; i++) {
		if (mask[i] != '1')
			continue;
		pgt_quote(sql, tbl->cols[i].name);
		cw_buf_append_str(sql, " = EXCLUDED.");
		pgt_quote(sql, tbl->cols[i].name);
		cw_buf_append_str(sql, ", ");
	}
	if (extra && tbl->layout == CW_LAYOUT_DOCUMENT)
		cw_buf_append_str(sql, PGT_EXTRA_COLUMN " = EXCLUDED." PGT_EXTRA_COLUMN ", ");
	else if (extra)
		cw_buf_append_str(sql, PGT_EXTRA_COLUMN " = COALESCE(t." PGT_EXTRA_COLUMN ", '{}'::jsonb) || "
		                       "EXCLUDED." PGT_EXTRA_COLUMN ", ");
	cw_buf_append_str(sql, "_version = EXCLUDED._version, _oplog_id = EXCLUDED._oplog_id, "
	                       "_synced_at = EXCLUDED._synced_at");
	if (soft)
		cw_buf_appendf(sql, ", %s = false", t->qsoft);
	cw_buf_append_str(sql, " WHERE t._oplog_id < EXCLUDED._oplog_id");
}

/*
 * The batch's statements as one message, the COPY first: replaced rows, one
 * upsert per set of present columns, the deletes, then the batch table
 * emptied. labels[i] says what the i-th statement does (for its error).
 */
static size_t batch_sql(const pgt_apply_ctx_t *a, const row_set_t *rs, cw_buf_t *sql,
                        const char **labels)
{
	const pg_target_t *t = a->t;
	const pgt_table_t *tbl = a->tbl;
	size_t n = 0;
	copy_sql(a, sql);
	labels[n++] = "could not copy a batch";
	if (rs->has_replace) {
		cw_buf_appendf(sql, ";\nDELETE FROM %s t USING pg_temp._cw_rows r WHERE r.op = 'r' AND ",
		               tbl->qname);
		pgt_key_match(tbl, sql);
		cw_buf_append_str(sql, " AND t._oplog_id < r.oplog_id");
		labels[n++] = "could not replace rows";
	}
	for (size_t m = 0; m < rs->nmasks; m++) {
		cw_buf_append_str(sql, ";\n");
		upsert_sql(a, rs->masks[m], sql);
		labels[n++] = "could not upsert rows";
	}
	if (rs->has_delete) {
		if (t->cfg->delete_mode == CW_DELETE_SOFT)
			cw_buf_appendf(sql, ";\nUPDATE %s t SET %s = true, _version = r.version, "
			               "_oplog_id = r.oplog_id, _synced_at = now() FROM pg_temp._cw_rows r "
			               "WHERE r.op = 'd' AND ", tbl->qname, t->qsoft);
		else
			cw_buf_appendf(sql, ";\nDELETE FROM %s t USING pg_temp._cw_rows r WHERE r.op = 'd' AND ",
			               tbl->qname);
		pgt_key_match(tbl, sql);
		cw_buf_append_str(sql, " AND t._oplog_id < r.oplog_id");
		labels[n++] = "could not delete rows";
	}
	cw_buf_append_str(sql, ";\nDELETE FROM pg_temp._cw_rows");
	labels[n++] = "could not empty the batch table";
	return n;
}

/*
 * Copies the rows and runs their statements in one round trip after the
 * COPY's: the server runs the message's statements in order and skips the
 * rest after one fails, whose error is returned with what it was doing.
 */
static int copy_and_run(pgt_apply_ctx_t *a, const row_set_t *rs, cw_err_t *err)
{
	pg_target_t *t = a->t;
	const char **labels = cw_xcalloc(rs->nmasks + 4, sizeof *labels);
	cw_buf_t *sql = &t->sql;
	cw_buf_reset(sql);
	size_t n = batch_sql(a, rs, sql, labels);
	int rc = 0;
	if (PQsendQuery(t->conn, cw_buf_cstr(sql)) != 1) {
		rc = pgt_result_error(t, NULL, labels[0], err);
		free(labels);
		return rc;
	}
	PGresult *res;
	size_t at = 0;
	while ((res = PQgetResult(t->conn)) != NULL) {
		ExecStatusType status = PQresultStatus(res);
		if (status == PGRES_COPY_IN) {
			PQclear(res);
			if (PQputCopyData(t->conn, rs->copy.data, (int)rs->copy.len) == 1 &&
			    PQputCopyEnd(t->conn, NULL) == 1)
				continue;
			rc = pgt_result_error(t, NULL, labels[0], err);
			break;   /* the connection failed: it is closed and opened again */
		}
		if (status != PGRES_COMMAND_OK && rc == 0)
			rc = pgt_result_error(t, res, labels[at < n ? at : n - 1], err);
		PQclear(res);
		at++;
	}
	free(labels);
	return rc;
}

static int insert_quarantine(pgt_apply_ctx_t *a, const quarantined_t *q, cw_err_t *err)
{
	pg_target_t *t = a->t;
	char oplog[24];
	snprintf(oplog, sizeof oplog, "%lld", (long long)q->oplog_id);
	const char *params[] = {t->name, a->tbl->entity, q->doc_id, q->column, q->field, q->value,
	                        q->reason, oplog};
	cw_buf_t sql = CW_BUF_INIT;
	cw_buf_appendf(&sql, "INSERT INTO %s.quarantine (target, entity, doc_id, column_name, field, "
	               "value, reason, oplog_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::bigint)",
	               t->qmeta);
	int rc = pgt_command(t, cw_buf_cstr(&sql), 8, params, "could not quarantine a value", err);
	cw_buf_free(&sql);
	if (rc == 0)
		a->quarantined++;
	return rc;
}

/* Copies the rows, runs their statements, records their quarantined values; rs is reset. */
static int write_rows(pgt_apply_ctx_t *a, row_set_t *rs, cw_err_t *err)
{
	int rc = 0;
	if (rs->copy.len > 0) {
		if ((rc = ensure_temp(a, err)) == 0)
			rc = copy_and_run(a, rs, err);
	}
	for (size_t i = 0; i < rs->nq && rc == 0; i++)
		rc = insert_quarantine(a, &rs->q[i], err);
	row_set_reset(rs);
	return rc;
}

static int sweep(pgt_apply_ctx_t *a, const cw_write_t *w, cw_err_t *err)
{
	pg_target_t *t = a->t;
	char version[24];
	snprintf(version, sizeof version, "%lld", (long long)w->version);
	const char *params[] = {version};
	cw_buf_t *sql = &t->sql;
	cw_buf_reset(sql);
	if (t->cfg->delete_mode == CW_DELETE_SOFT)
		cw_buf_appendf(sql, "UPDATE %s SET %s = true, _synced_at = now() "
		               "WHERE _version < $1::bigint AND NOT %s", a->tbl->qname, t->qsoft, t->qsoft);
	else
		cw_buf_appendf(sql, "DELETE FROM %s WHERE _version < $1::bigint", a->tbl->qname);
	return pgt_command(t, cw_buf_cstr(sql), 1, params, "could not sweep a generation", err);
}

/* Whether a statement's failure is the row's doing (its values, a constraint): quarantine it. */
bool pgt_row_refused(const char *sqlstate)
{
	return strncmp(sqlstate, "22", 2) == 0 || strncmp(sqlstate, "23", 2) == 0 ||
	       strcmp(sqlstate, "42804") == 0 || strcmp(sqlstate, "42846") == 0 ||
	       strcmp(sqlstate, "54000") == 0 || strcmp(sqlstate, "P0001") == 0;
}

/*
 * Careful mode: each write in a savepoint of its own; a write the table
 * refuses is rolled back to its savepoint and quarantined whole.
 */
static int write_one(pgt_apply_ctx_t *a, const cw_write_t *w, const pgt_parsed_row_t *row,
                     row_set_t *rs, cw_err_t *err)
{
	pg_target_t *t = a->t;
	int rc = ensure_temp(a, err);
	if (rc == 0)
		rc = pgt_command(t, "SAVEPOINT cw_row", 0, NULL, "could not set a savepoint", err);
	if (rc != 0)
		return rc;
	add_row(a, w, row, rs);
	rc = write_rows(a, rs, err);
	if (rc == 0)
		return pgt_command(t, "RELEASE SAVEPOINT cw_row", 0, NULL, "could not release", err);
	if (!pgt_row_refused(t->sqlstate))
		return rc;
	char reason[CW_ERR_MESSAGE_LEN];
	snprintf(reason, sizeof reason, "%s", err->message);
	cw_err_clear(err);
	if ((rc = pgt_command(t, "ROLLBACK TO SAVEPOINT cw_row", 0, NULL, "could not roll back",
	                      err)) != 0)
		return rc;
	char *json = cw_write_json(w);
	quarantined_t q = {(char *)w->doc_id, NULL, NULL, json, reason, w->oplog_id};
	rc = insert_quarantine(a, &q, err);
	free(json);
	if (rc == 0)
		cw_log_kv(CW_LOG_WARN, PGT_COMPONENT, "row refused by the target table: quarantined",
		          "target", t->name, "entity", a->tbl->entity, "doc_id", w->doc_id, "reason",
		          reason, NULL);
	return rc;
}


/* Rows per statement for entity: its entities[].targets.<target> setting, else the target's. */
static size_t write_batch_for(const pg_target_t *t, const char *entity)
{
	const cw_entity_t *e = cw_config_entity(t->ctx->config, entity);
	for (size_t i = 0; e != NULL && i < e->ntargets; i++)
		if (e->targets[i].name != NULL && strcmp(e->targets[i].name, t->name) == 0 &&
		    e->targets[i].write_batch_size > 0)
			return (size_t)e->targets[i].write_batch_size;
	return (size_t)t->cfg->write_batch_size;
}

/* One transaction: evolution, the writes in segments split by sweeps, the position. */
static int apply_once(pgt_apply_ctx_t *a, const cw_write_list_t *writes, int64_t upto,
                      cw_err_t *err)
{
	pg_target_t *t = a->t;
	int rc = pgt_command(t, "BEGIN", 0, NULL, "could not begin", err);
	if (rc == 0 && !a->tbl->exists)
		rc = pgt_create_table(a, err);
	else if (rc == 0 && a->tbl->reconcile && a->tbl->layout == CW_LAYOUT_DYNAMIC)
		rc = pgt_reconcile_record(a, writes->len ? writes->items[0].oplog_id : 0, err);
	pgt_parsed_row_t *rows = rc == 0 ? rows_parse(t, a->tbl, writes) : NULL;
	if (rc == 0)
		rc = pgt_evolve(a, writes, rows, err);
	row_set_t rs = {CW_BUF_INIT, NULL, 0, false, false, false, NULL, 0};
	size_t chunk = write_batch_for(t, a->tbl->entity), in_chunk = 0;
	for (size_t i = 0; i < writes->len && rc == 0; i++) {
		const cw_write_t *w = &writes->items[i];
		if (w->kind == CW_WRITE_SWEEP) {
			if ((rc = write_rows(a, &rs, err)) == 0)
				rc = sweep(a, w, err);
			in_chunk = 0;
			continue;
		}
		if (a->careful) {
			rc = write_one(a, w, &rows[i], &rs, err);
			continue;
		}
		add_row(a, w, &rows[i], &rs);
		if (++in_chunk >= chunk) {
			rc = write_rows(a, &rs, err);
			in_chunk = 0;
		}
	}
	if (rc == 0)
		rc = write_rows(a, &rs, err);
	row_set_reset(&rs);
	cw_buf_free(&rs.copy);
	rows_free(rows, writes->len);
	if (rc == 0)
		rc = pgt_position_commit(t, a->tbl->entity, upto, err);
	if (rc != 0 && t->conn != NULL && PQstatus(t->conn) == CONNECTION_OK)
		PQclear(PQexec(t->conn, "ROLLBACK"));
	if (rc != 0)
		t->temp_cols = 0;   /* its creation may have been rolled back with the batch */
	return rc;
}

static void notes_published(pgt_apply_ctx_t *a)
{
	pg_target_t *t = a->t;
	char labels[256];
	for (size_t i = 0; i < a->nnotes; i++) {
		const pgt_change_note_t *n = &a->notes[i];
		if (n->column[0] == '\0')
			cw_log_kv(CW_LOG_INFO, PGT_COMPONENT, "schema change applied", "target", t->name,
			          "entity", a->tbl->entity, "change", n->change, "table", a->tbl->qname, NULL);
		else
			cw_log_kv(CW_LOG_INFO, PGT_COMPONENT, "schema change applied", "target", t->name,
			          "entity", a->tbl->entity, "change", n->change, "column", n->column,
			          "old_type", n->old_type[0] ? n->old_type : "-", "new_type", n->new_type,
			          NULL);
		snprintf(labels, sizeof labels, "%s,entity=\"%s\",change=\"%s\"", t->labels,
		         a->tbl->entity, n->change);
		cw_metrics_counter_add(t->ctx->metrics, "cachewarp_schema_changes_total", labels, 1);
	}
	snprintf(labels, sizeof labels, "%s,entity=\"%s\"", t->labels, a->tbl->entity);
	if (a->warnings > 0)
		cw_metrics_counter_add(t->ctx->metrics, "cachewarp_type_conversion_warnings_total", labels,
		                       (double)a->warnings);
	if (a->quarantined > 0)
		cw_metrics_counter_add(t->ctx->metrics, "cachewarp_target_quarantined_total", labels,
		                       (double)a->quarantined);
}

static void notes_clear(pgt_apply_ctx_t *a)
{
	free(a->notes);
	a->notes = NULL;
	a->nnotes = 0;
	a->quarantined = 0;
	a->warnings = 0;
}

int pgt_apply(pg_target_t *t, const cw_entity_t *entity, const cw_write_list_t *writes,
              int64_t upto, bool *lost, cw_err_t *err)
{
	*lost = false;
	pgt_table_t *tbl = pgt_table_for(t, entity);
	int rc = tbl->loaded ? 0 : pgt_table_load(t, tbl, err);
	if (rc != 0)
		return rc;
	if (!tbl->exists && tbl->layout == CW_LAYOUT_DYNAMIC && tbl->src.nkey == 0 &&
	    !tbl->waited_for_record) {
		/* Its source's record of the table's key comes with the scan: open it again to read it. */
		tbl->waited_for_record = true;
		*lost = true;
		return 0;
	}
	/*
	 * A write of a newer generation than the source's record was read for
	 * (the loop's entity list lags behind the oplog): open it again first,
	 * which reads the record the source wrote before that generation's rows.
	 */
	int64_t newest = 0;
	for (size_t i = 0; i < writes->len; i++)
		newest = writes->items[i].version > newest ? writes->items[i].version : newest;
	if (tbl->layout == CW_LAYOUT_DYNAMIC && tbl->exists && newest > tbl->src_version &&
	    newest > tbl->src_wanted) {
		tbl->src_wanted = newest;
		*lost = true;
		return 0;
	}
	pgt_apply_ctx_t a = {t, tbl, entity, false, NULL, 0, 0, 0};
	t->sqlstate[0] = '\0';
	rc = apply_once(&a, writes, upto, err);
	if (rc != 0 && strcmp(t->sqlstate, "42P01") == 0) {   /* the table went away */
		pgt_table_forget(tbl);
		notes_clear(&a);
		cw_log_kv(CW_LOG_WARN, PGT_COMPONENT, "table gone: the entity is applied again",
		          "target", t->name, "entity", entity->name, NULL);
		cw_err_clear(err);
		*lost = true;
		return 0;
	}
	if (rc != 0 && pgt_row_refused(t->sqlstate)) {
		/* A row the table refuses: again, one row at a time, the refused ones quarantined. */
		pgt_table_forget(tbl);
		notes_clear(&a);
		cw_err_clear(err);
		if ((rc = pgt_table_load(t, tbl, err)) == 0) {
			a.careful = true;
			rc = apply_once(&a, writes, upto, err);
		}
	}
	if (rc != 0) {
		pgt_table_forget(tbl);   /* its DDL was rolled back */
		tbl->reconcile = tbl->src.n > 0;
	}
	else
		notes_published(&a);
	notes_clear(&a);
	return rc;
}

