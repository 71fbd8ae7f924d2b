/* This file contains batch mode's SQL and marker (batch_sql.h). */
#include "capture/batch_sql.h"

#include "core/json.h"
#include "core/mem.h"

#include <jansson.h>

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

void cw_batch_quote_ident(cw_batch_dialect_t dialect, const char *name, cw_buf_t *out)
{
	char quote = dialect == CW_BATCH_MYSQL ? '`' : '"';
	cw_buf_append_char(out, quote);
	for (const char *p = name; *p; p++) {
		if (*p == quote)
			cw_buf_append_char(out, quote);
		cw_buf_append_char(out, *p);
	}
	cw_buf_append_char(out, quote);
}

static void column_ref(const cw_batch_query_t *q, const char *name, cw_buf_t *out)
{
	cw_buf_append_str(out, "t.");
	cw_batch_quote_ident(q->dialect, name, out);
}

static void table_ref(const cw_batch_query_t *q, cw_buf_t *out)
{
	cw_batch_quote_ident(q->dialect, q->schema, out);
	cw_buf_append_char(out, '.');
	cw_batch_quote_ident(q->dialect, q->table, out);
	cw_buf_append_str(out, " AS t");
}

/* Appends "$n" (PostgreSQL) or "?" (MySQL), n counting from 1. */
static void param(const cw_batch_query_t *q, int *n, cw_buf_t *out)
{
	++*n;
	if (q->dialect == CW_BATCH_MYSQL)
		cw_buf_append_char(out, '?');
	else
		cw_buf_appendf(out, "$%d", *n);
}

/* The column's time in microseconds since the epoch. */
static void time_expr(const cw_batch_query_t *q, int zone_param, int *n, cw_buf_t *out)
{
	if (q->kind == CW_BATCH_COLUMN_OTHER) {
		cw_buf_append_str(out, q->dialect == CW_BATCH_MYSQL ? "NULL" : "NULL::bigint");
		return;
	}
	if (q->dialect == CW_BATCH_MYSQL) {
		cw_buf_append_str(out, "TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', ");
		if (q->kind == CW_BATCH_COLUMN_LOCAL_TIME) {
			cw_buf_append_str(out, "CONVERT_TZ(");
			column_ref(q, q->column, out);
			cw_buf_append_str(out, ", ");
			param(q, n, out);
			cw_buf_append_str(out, ", '+00:00'))");
		} else {
			column_ref(q, q->column, out);
			cw_buf_append_char(out, ')');
		}
		return;
	}
	cw_buf_append_str(out, "(extract(epoch FROM ");
	column_ref(q, q->column, out);
	if (q->kind == CW_BATCH_COLUMN_LOCAL_TIME)
		cw_buf_appendf(out, " AT TIME ZONE $%d", zone_param);
	cw_buf_append_str(out, ") * 1000000)::bigint");
}

/* "t.col <= now - lag": rows newer wait for a later poll. */
static void upper_bound(const cw_batch_query_t *q, int zone_param, int *n, cw_buf_t *out)
{
	column_ref(q, q->column, out);
	cw_buf_append_str(out, " <= ");
	if (q->dialect == CW_BATCH_MYSQL) {
		if (q->kind == CW_BATCH_COLUMN_LOCAL_TIME) {
			cw_buf_append_str(out, "CONVERT_TZ(UTC_TIMESTAMP(6), '+00:00', ");
			param(q, n, out);
			cw_buf_append_char(out, ')');
		} else {
			cw_buf_append_str(out, "NOW(6)");
		}
		cw_buf_appendf(out, " - INTERVAL %" PRId64 " MICROSECOND", q->lag_ms * 1000);
		return;
	}
	if (q->kind == CW_BATCH_COLUMN_LOCAL_TIME)
		cw_buf_appendf(out, "(now() AT TIME ZONE $%d)", zone_param);
	else
		cw_buf_append_str(out, "now()");
	cw_buf_appendf(out, " - interval '1 millisecond' * %" PRId64, q->lag_ms);
}

void cw_batch_sql_page(const cw_batch_query_t *q, bool marker, cw_buf_t *out)
{
	int n = 0;
	/* PostgreSQL numbers its parameters: the zone comes after the marker's. */
	int zone_param = (marker ? 1 + (int)q->nkeys : 0) + 1;
	cw_buf_append_str(out, "SELECT ");
	cw_buf_append_str(out, q->select != NULL ? q->select : "t.*");
	cw_buf_append_str(out, ", ");
	time_expr(q, zone_param, &n, out);
	cw_buf_append_str(out, " FROM ");
	table_ref(q, out);
	cw_buf_append_str(out, " WHERE ");
	if (marker && q->dialect == CW_BATCH_MYSQL) {
		/*
		 * MariaDB does not turn a row comparison into an index range: written
		 * out, each branch is one, so a page starts at the marker's row.
		 */
		column_ref(q, q->column, out);
		cw_buf_append_str(out, " >= ");
		param(q, &n, out);
		cw_buf_append_str(out, " AND (");
		column_ref(q, q->column, out);
		cw_buf_append_str(out, " > ");
		param(q, &n, out);
		cw_buf_append_str(out, " OR (");
		column_ref(q, q->column, out);
		cw_buf_append_str(out, " = ");
		param(q, &n, out);
		cw_buf_append_str(out, " AND (");
		for (size_t i = 0; i < q->nkeys; i++) {
			if (i > 0)
				cw_buf_append_str(out, ", ");
			column_ref(q, q->keys[i], out);
		}
		cw_buf_append_str(out, ") > (");
		for (size_t i = 0; i < q->nkeys; i++) {
			if (i > 0)
				cw_buf_append_str(out, ", ");
			param(q, &n, out);
		}
		cw_buf_append_str(out, ")))");
	} else if (marker) {
		cw_buf_append_char(out, '(');
		column_ref(q, q->column, out);
		for (size_t i = 0; i < q->nkeys; i++) {
			cw_buf_append_str(out, ", ");
			column_ref(q, q->keys[i], out);
		}
		cw_buf_append_str(out, ") > (");
		for (size_t i = 0; i <= q->nkeys; i++) {
			if (i > 0)
				cw_buf_append_str(out, ", ");
			param(q, &n, out);
		}
		cw_buf_append_char(out, ')');
	} else {
		column_ref(q, q->column, out);
		cw_buf_append_str(out, " IS NOT NULL");
	}
	if (q->kind != CW_BATCH_COLUMN_OTHER) {
		cw_buf_append_str(out, " AND ");
		upper_bound(q, zone_param, &n, out);
	}
	cw_buf_append_str(out, " ORDER BY ");
	column_ref(q, q->column, out);
	for (size_t i = 0; i < q->nkeys; i++) {
		cw_buf_append_str(out, ", ");
		column_ref(q, q->keys[i], out);
	}
	cw_buf_appendf(out, " LIMIT %" PRId64, q->limit);
}

int cw_batch_page_params(const cw_batch_query_t *q, const char *value, const char *const *keys,
                         const char *zone_name, const char *params[CW_BATCH_MAX_PARAMS])
{
	int n = 0;
	bool zone = q->kind == CW_BATCH_COLUMN_LOCAL_TIME;
	/* MySQL: in text order, the select list's zone first and the bound's last. */
	if (zone && q->dialect == CW_BATCH_MYSQL)
		params[n++] = zone_name;
	if (value != NULL) {
		if (q->dialect == CW_BATCH_MYSQL) {
			params[n++] = value;   /* >=, >, = */
			params[n++] = value;
		}
		params[n++] = value;
		for (size_t i = 0; i < q->nkeys && i < CW_BATCH_MAX_KEYS; i++)
			params[n++] = keys[i];
	}
	if (zone)
		params[n++] = zone_name;
	return n;
}

/* The first 64 bits of md5(doc_id) as a signed bigint. */
#define HASH_OF(doc_id) "('x' || substr(md5(" doc_id "), 1, 16))::bit(64)::bigint"
#define BUCKETS_TEXT "1023"
_Static_assert(CW_BATCH_BUCKETS == 1024, "BUCKETS_TEXT is CW_BATCH_BUCKETS - 1");

/* A single-column key's doc_id is its text (DESIGN.md §2). */
static void doc_ids(const cw_batch_query_t *q, cw_buf_t *out)
{
	cw_buf_append_str(out, "(SELECT ");
	column_ref(q, q->keys[0], out);
	cw_buf_append_str(out, "::text AS doc_id FROM ");
	table_ref(q, out);
	cw_buf_append_str(out, ") AS s");
}

void cw_batch_sql_buckets(const cw_batch_query_t *q, cw_buf_t *out)
{
	cw_buf_append_str(out, "SELECT h & " BUCKETS_TEXT ", count(*), sum(h::numeric)::text FROM "
	                       "(SELECT " HASH_OF("s.doc_id") " AS h FROM ");
	doc_ids(q, out);
	cw_buf_append_str(out, ") AS b GROUP BY 1");
}

void cw_batch_sql_bucket_keys(const cw_batch_query_t *q, cw_buf_t *out)
{
	cw_buf_append_str(out, "SELECT s.doc_id FROM ");
	doc_ids(q, out);
	cw_buf_append_str(out, " WHERE (" HASH_OF("s.doc_id") " & " BUCKETS_TEXT ") = ANY($1::int[])");
}

const char *cw_batch_sql_hub_buckets(void)
{
	return "SELECT h & " BUCKETS_TEXT ", count(*), sum(h::numeric)::text FROM "
	       "(SELECT " HASH_OF("doc_id") " AS h FROM cachewarp.batch_keys WHERE entity = $1) AS b "
	       "GROUP BY 1";
}

const char *cw_batch_sql_hub_bucket_keys(void)
{
	return "SELECT doc_id FROM cachewarp.batch_keys WHERE entity = $1 AND "
	       "(" HASH_OF("doc_id") " & " BUCKETS_TEXT ") = ANY($2::int[])";
}

/* ---- the marker ---------------------------------------------------------- */

char *cw_batch_marker_encode(const cw_batch_marker_t *marker)
{
	cw_buf_t out = CW_BUF_INIT;
	cw_json_t w;
	cw_json_init(&w, &out, CW_JSON_NO_NUL);
	cw_json_object_begin(&w, NULL);
	cw_json_key(&w, "version", NULL);
	cw_json_int64(&w, marker->version, NULL);
	if (marker->value != NULL) {
		cw_json_key(&w, "value", NULL);
		cw_json_string(&w, marker->value, NULL);
		cw_json_key(&w, "key", NULL);
		cw_json_array_begin(&w, NULL);
		for (size_t i = 0; i < marker->nkeys; i++)
			cw_json_string(&w, marker->keys[i], NULL);
		cw_json_array_end(&w, NULL);
	}
	cw_json_key(&w, "rows", NULL);
	cw_json_int64(&w, marker->rows, NULL);
	cw_json_object_end(&w, NULL);
	/* Server-printed values hold no NUL byte, so the writer cannot fail. */
	if (cw_json_finish(&w) != 0)
		abort();
	return cw_buf_take(&out);
}

int cw_batch_marker_decode(const char *json, cw_batch_marker_t *marker, cw_err_t *err)
{
	cw_batch_marker_clear(marker);
	json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, NULL);
	json_t *version = json_object_get(root, "version");
	json_t *value = json_object_get(root, "value");
	json_t *key = json_object_get(root, "key");
	json_t *rows = json_object_get(root, "rows");
	int rc = 0;
	if (!json_is_integer(version) || (value != NULL && !json_is_string(value)) ||
	    (value != NULL && (!json_is_array(key) || json_array_size(key) == 0 ||
	                       json_array_size(key) > CW_BATCH_MAX_KEYS)) ||
	    (rows != NULL && !json_is_integer(rows))) {
		rc = cw_err_set(err, CW_EINVAL, "batch", "batch marker is not "
		                "{\"version\": N, \"value\": \"...\", \"key\": [\"...\"]}");
		goto cleanup;
	}
	marker->version = json_integer_value(version);
	marker->rows = rows != NULL ? json_integer_value(rows) : 0;
	if (value == NULL)
		goto cleanup;
	marker->value = cw_xstrdup(json_string_value(value));
	marker->nkeys = json_array_size(key);
	marker->keys = cw_xcalloc(marker->nkeys, sizeof *marker->keys);
	for (size_t i = 0; i < marker->nkeys; i++) {
		json_t *item = json_array_get(key, i);
		if (!json_is_string(item)) {
			cw_batch_marker_clear(marker);
			rc = cw_err_set(err, CW_EINVAL, "batch", "batch marker key %zu is not a string", i);
			goto cleanup;
		}
		marker->keys[i] = cw_xstrdup(json_string_value(item));
	}
cleanup:
	json_decref(root);
	return rc;
}

void cw_batch_marker_set(cw_batch_marker_t *marker, const char *value, const char *const *keys,
                         size_t nkeys)
{
	int64_t version = marker->version, rows = marker->rows;
	cw_batch_marker_clear(marker);
	marker->version = version;
	marker->rows = rows;
	marker->value = cw_xstrdup(value);
	marker->nkeys = nkeys;
	marker->keys = cw_xcalloc(nkeys + 1, sizeof *marker->keys);
	for (size_t i = 0; i < nkeys; i++)
		marker->keys[i] = cw_xstrdup(keys[i]);
}

void cw_batch_marker_clear(cw_batch_marker_t *marker)
{
	for (size_t i = 0; i < marker->nkeys; i++)
		free(marker->keys[i]);
	free(marker->keys);
	free(marker->value);
	memset(marker, 0, sizeof *marker);
}
