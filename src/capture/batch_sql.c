/* This file contains batch mode's SQL and marker (batch_sql.h). */
#include "capture/batch_sql.h"

#include "core/json.h"
#include "core/mem.h"

#include <jansson.h>

#include <inttypes.h>
#include <stdio.h>
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

static void mysql_buckets(const cw_batch_query_t *q, cw_buf_t *out);

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
	if (q->dialect == CW_BATCH_MYSQL) {
		mysql_buckets(q, out);
		return;
	}
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

/* ---- MySQL's doc_id hashes ------------------------------------------------ */

/*
 * The bytes core/json.c escapes in a string and their escapes, as hex
 * literals (independent of sql_mode's NO_BACKSLASH_ESCAPES). The backslash
 * goes first, so no escape is escaped again; the rest are the control
 * characters without a short escape, written \u00xx.
 */
static const char *const json_escapes[][2] = {
	{"5C", "5C5C"}, {"22", "5C22"}, {"0A", "5C6E"}, {"09", "5C74"}, {"0D", "5C72"},
	{"08", "5C62"}, {"0C", "5C66"},
};

static bool short_escape(unsigned byte)
{
	return byte == 0x08 || byte == 0x09 || byte == 0x0a || byte == 0x0c || byte == 0x0d;
}

/* A JSON string of the column's text, escaped as core/json.c escapes it. */
static void json_text(const cw_batch_query_t *q, const char *name, cw_buf_t *out)
{
	size_t nshort = sizeof json_escapes / sizeof json_escapes[0];
	size_t nreplace = nshort;
	for (unsigned byte = 0; byte <= 0x7f; byte++)
		if ((byte < 0x20 && !short_escape(byte)) || byte == 0x7f)
			nreplace++;
	cw_buf_append_str(out, "CONCAT('\"', ");
	for (size_t i = 0; i < nreplace; i++)
		cw_buf_append_str(out, "REPLACE(");
	cw_buf_append_str(out, "CONVERT(");
	column_ref(q, name, out);
	cw_buf_append_str(out, " USING utf8mb4)");
	for (size_t i = 0; i < nshort; i++)
		cw_buf_appendf(out, ", X'%s', X'%s')", json_escapes[i][0], json_escapes[i][1]);
	for (unsigned byte = 0; byte <= 0x7f; byte++) {
		if ((byte >= 0x20 && byte != 0x7f) || short_escape(byte))
			continue;
		/* "\u00" then the byte's two lowercase hex digits, each as its ASCII code */
		char digits[3];
		snprintf(digits, sizeof digits, "%02x", byte);
		cw_buf_appendf(out, ", X'%02X', X'5C753030%02X%02X')", byte, (unsigned)digits[0],
		               (unsigned)digits[1]);
	}
	cw_buf_append_str(out, ", '\"')");
}

/* One key's value as the snapshot writes it into a composite key's JSON array. */
static void json_value(const cw_batch_query_t *q, size_t k, cw_buf_t *out)
{
	const char *name = q->keys[k];
	switch (q->key_forms[k]) {
	case CW_BATCH_KEY_NUMBER:
		column_ref(q, name, out);
		cw_buf_append_str(out, " + 0");
		break;
	case CW_BATCH_KEY_TIMESTAMP:
		cw_buf_append_str(out, "CONCAT('\"', ");
		column_ref(q, name, out);
		cw_buf_append_str(out, ", IF(LEFT(");
		column_ref(q, name, out);
		cw_buf_append_str(out, ", 10) = '0000-00-00', '', '+00'), '\"')");
		break;
	case CW_BATCH_KEY_BINARY:
		cw_buf_append_str(out, "CONCAT('\"', X'5C5C78', LOWER(HEX(");
		column_ref(q, name, out);
		cw_buf_append_str(out, ")), '\"')");
		break;
	default:
		json_text(q, name, out);
		break;
	}
}

bool cw_batch_sql_hashable(const cw_batch_query_t *q)
{
	if (q->dialect != CW_BATCH_MYSQL || q->key_forms == NULL || q->nkeys == 0)
		return false;
	if (q->nkeys == 1)
		return q->key_forms[0] == CW_BATCH_KEY_NUMBER || q->key_forms[0] == CW_BATCH_KEY_TEXT;
	for (size_t k = 0; k < q->nkeys; k++)
		if (q->key_forms[k] == CW_BATCH_KEY_UNHASHABLE)
			return false;
	return true;
}

/* MD5 of the doc_id: a single key's text, a composite key's JSON array. */
static void mysql_md5(const cw_batch_query_t *q, cw_buf_t *out)
{
	cw_buf_append_str(out, "MD5(");
	if (q->nkeys == 1 && q->key_forms[0] == CW_BATCH_KEY_NUMBER) {
		column_ref(q, q->keys[0], out);
		cw_buf_append_str(out, " + 0");
	} else if (q->nkeys == 1) {
		cw_buf_append_str(out, "CONVERT(");
		column_ref(q, q->keys[0], out);
		cw_buf_append_str(out, " USING utf8mb4)");
	} else {
		cw_buf_append_str(out, "CONCAT('['");
		for (size_t k = 0; k < q->nkeys; k++) {
			cw_buf_append_str(out, k == 0 ? ", " : ", ',', ");
			json_value(q, k, out);
		}
		cw_buf_append_str(out, ", ']')");
	}
	cw_buf_append_char(out, ')');
}

/* The bucket of an md5 in hex: the low bits of its first 64 bits, as HASH_OF's. */
#define MYSQL_BUCKET_OF(md5) "CONV(SUBSTRING(" md5 ", 14, 3), 16, 10) & " BUCKETS_TEXT
_Static_assert(CW_BATCH_BUCKETS <= 4096, "MYSQL_BUCKET_OF reads 12 bits");

static void mysql_buckets(const cw_batch_query_t *q, cw_buf_t *out)
{
	cw_buf_append_str(out, "SELECT " MYSQL_BUCKET_OF("h.m") " AS b, COUNT(*), "
	                       "SUM(CAST(CONV(SUBSTRING(h.m, 1, 16), 16, -10) AS SIGNED)) "
	                       "FROM (SELECT ");
	mysql_md5(q, out);
	cw_buf_append_str(out, " AS m FROM ");
	table_ref(q, out);
	cw_buf_append_str(out, ") AS h GROUP BY b");
}

int cw_batch_sql_bucket_rows(const cw_batch_query_t *q, const char *bucket_list, cw_buf_t *out)
{
	/* "{n,n,...}": each n digits, so the list goes into IN (...) as it is */
	size_t len = strlen(bucket_list);
	bool digit = false;
	if (len < 3 || bucket_list[0] != '{' || bucket_list[len - 1] != '}')
		return CW_EINVAL;
	for (size_t i = 1; i < len - 1; i++) {
		if (bucket_list[i] >= '0' && bucket_list[i] <= '9')
			digit = true;
		else if (bucket_list[i] == ',' && digit)
			digit = false;
		else
			return CW_EINVAL;
	}
	if (!digit)
		return CW_EINVAL;
	cw_buf_append_str(out, "SELECT ");
	cw_buf_append_str(out, q->select != NULL ? q->select : "t.*");
	cw_buf_append_str(out, " FROM ");
	table_ref(q, out);
	cw_buf_append_str(out, " WHERE (CONV(SUBSTRING(");
	mysql_md5(q, out);
	cw_buf_append_str(out, ", 14, 3), 16, 10) & " BUCKETS_TEXT ") IN (");
	cw_buf_append(out, bucket_list + 1, len - 2);
	cw_buf_append_char(out, ')');
	return 0;
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
