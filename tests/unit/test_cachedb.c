/*
 * Unit tests of the SQLite cache DB manager and writer (apply/cachedb.h,
 * apply/cache_write.h) on a temporary directory: layout and types, upsert of
 * present columns only, deletes, replacing upserts and sweeps, entities
 * without columns, corruption and missing files, dropping, idle closing,
 * the position in metadata.sqlite, and a reader in another connection that
 * keeps reading while the writer commits.
 */
#define _XOPEN_SOURCE 700
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "apply/cache_write.h"
#include "apply/cachedb.h"
#include "apply/coalesce.h"
#include "apply/typed_value.h"
#include "core/change.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/mem.h"

#include <fcntl.h>
#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct fixture {
	char dir[64];
	cw_cachedb_t *db;
} fixture_t;

static cw_column_t item_columns[] = {
	{(char *)"title", CW_COL_TEXT, (char *)"title"},
	{(char *)"price", CW_COL_NUMBER, (char *)"pricing.amount"},
	{(char *)"qty", CW_COL_INTEGER, (char *)"qty"},
	{(char *)"active", CW_COL_BOOL, (char *)"active"},
	{(char *)"tags", CW_COL_JSONB, (char *)"tags"},
	{(char *)"extra", CW_COL_ANY, (char *)"extra"},
};
static const cw_entity_t items = {(char *)"items", (char *)"shop", (char *)"items", NULL,
                                  item_columns, 6, CW_ENTITY_LIVE, 1, NULL, 0,
                                  CW_ENTITY_MODE_STREAM, {0}, CW_ENTITY_ORIGIN_UNKNOWN, NULL, 0};
static const cw_entity_t docs = {(char *)"docs", (char *)"shop", (char *)"docs", NULL, NULL, 0,
                                 CW_ENTITY_LIVE, 1, NULL, 0,
                                 CW_ENTITY_MODE_STREAM, {0}, CW_ENTITY_ORIGIN_UNKNOWN, NULL, 0};
static const cw_entity_t customers = {(char *)"customers", (char *)"app", NULL,
                                      (char *)"public.customers", NULL, 0, CW_ENTITY_LIVE, 1, NULL, 0,
                                      CW_ENTITY_MODE_STREAM, {0}, CW_ENTITY_ORIGIN_UNKNOWN, NULL, 0};

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	fixture_t *fx = cw_xcalloc(1, sizeof *fx);
	snprintf(fx->dir, sizeof fx->dir, "/tmp/cw-cachedb-XXXXXX");
	if (mkdtemp(fx->dir) == NULL)
		return -1;
	cw_err_t err = {0};
	fx->db = cw_cachedb_open(fx->dir, 1000, &err);
	if (fx->db == NULL) {
		fprintf(stderr, "%s\n", err.message);
		return -1;
	}
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	fixture_t *fx = *state;
	cw_cachedb_close(fx->db);
	nftw(fx->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(fx);
	return 0;
}

/* Runs changes through the coalescer and the writer, as the apply loop does. */
static void apply_changes(cw_cache_t *cache, cw_change_batch_t *batch, int64_t upto)
{
	const cw_change_t **changes = cw_xcalloc(batch->len + 1, sizeof *changes);
	for (size_t i = 0; i < batch->len; i++)
		changes[i] = &batch->items[i];
	cw_write_list_t writes = CW_WRITE_LIST_INIT;
	cw_err_t err = {0};
	assert_int_equal(cw_coalesce(changes, batch->len, cache->applied, &writes, &err), 0);
	bool corrupt = true;
	if (cw_cache_apply(cache, &writes, upto, &corrupt, &err) != 0)
		fail_msg("apply: %s", err.message);
	assert_false(corrupt);
	cw_write_list_clear(&writes);
	free(changes);
	cw_change_batch_clear(batch);
}

static void push(cw_change_batch_t *batch, int64_t id, cw_op_t op, const char *entity,
                 const char *doc_id, const char *data, int64_t version)
{
	cw_change_t change = {0};
	change.oplog_id = id;
	change.op = op;
	change.entity = cw_xstrdup(entity);
	change.doc_id = cw_xstrdup(doc_id);
	change.data = cw_xstrdup(data);
	change.version = version;
	cw_change_batch_push(batch, &change);
}

/* The first column of the first row of sql on cache's own connection, as text ("NULL" for NULL). */
static char *query(sqlite3 *conn, const char *sql)
{
	sqlite3_stmt *stmt = NULL;
	if (sqlite3_prepare_v2(conn, sql, -1, &stmt, NULL) != SQLITE_OK)
		fail_msg("prepare %s: %s", sql, sqlite3_errmsg(conn));
	char *out = NULL;
	int rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		const unsigned char *text = sqlite3_column_text(stmt, 0);
		out = cw_xstrdup(text ? (const char *)text : "NULL");
	} else if (rc == SQLITE_DONE) {
		out = cw_xstrdup("<none>");
	} else {
		fail_msg("step %s: %s", sql, sqlite3_errmsg(conn));
	}
	sqlite3_finalize(stmt);
	return out;
}

static void expect(sqlite3 *conn, const char *sql, const char *want)
{
	char *got = query(conn, sql);
	if (strcmp(got, want) != 0)
		fail_msg("%s: got %s, want %s", sql, got, want);
	free(got);
}

static cw_cache_t *acquire(fixture_t *fx, const cw_entity_t *entity, bool *recreated)
{
	cw_cache_t *cache = NULL;
	cw_err_t err = {0};
	if (cw_cachedb_acquire(fx->db, entity, &cache, recreated, &err) != 0)
		fail_msg("acquire: %s", err.message);
	return cache;
}

static void layout_and_column_types(void **state)
{
	fixture_t *fx = *state;
	bool recreated = false;
	cw_cache_t *cache = acquire(fx, &items, &recreated);
	assert_true(recreated);
	char path[128];
	snprintf(path, sizeof path, "%s/items/db.sqlite", fx->dir);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	snprintf(path, sizeof path, "%s/metadata.sqlite", fx->dir);
	assert_int_equal(stat(path, &st), 0);
	expect(cache->db, "PRAGMA journal_mode", "wal");
	expect(cache->db, "SELECT group_concat(name || ':' || type, ',') FROM pragma_table_info('items')",
	       "id:TEXT,title:TEXT,price:,qty:,active:INTEGER,tags:TEXT,extra:,"
	       "_version:INTEGER,_oplog_id:INTEGER");
	expect(cache->db, "SELECT pk FROM pragma_table_info('items') WHERE name = 'id'", "1");
	expect(cache->db, "SELECT value FROM metadata WHERE key = 'oplog_id'", "0");
	assert_int_equal(cache->applied, 0);
}

static void upsert_sets_present_columns_only(void **state)
{
	fixture_t *fx = *state;
	cw_cache_t *cache = acquire(fx, &items, NULL);
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	push(&batch, 10, CW_OP_UPSERT, "items", "p1",
	     "{\"title\": \"lamp\", \"price\": 9.5, \"qty\": 3, \"active\": true, "
	     "\"tags\": [\"a\", {\"b\": 1}], \"extra\": {\"k\": \"v\"}}", 1);
	apply_changes(cache, &batch, 10);
	expect(cache->db, "SELECT title || '|' || price || '|' || qty || '|' || active || '|' || tags "
	       "|| '|' || extra || '|' || _version || '|' || _oplog_id FROM items WHERE id = 'p1'",
	       "lamp|9.5|3|1|[\"a\",{\"b\":1}]|{\"k\":\"v\"}|1|10");
	expect(cache->db, "SELECT value FROM metadata WHERE key = 'oplog_id'", "10");
	/* Only price changes; title stays; a null is a null. */
	push(&batch, 11, CW_OP_UPSERT, "items", "p1", "{\"price\": 12}", 2);
	push(&batch, 12, CW_OP_UPSERT, "items", "p1", "{\"tags\": null}", 2);
	apply_changes(cache, &batch, 12);
	expect(cache->db, "SELECT title || '|' || price || '|' || qty || '|' || coalesce(tags, 'null') "
	       "|| '|' || _version || '|' || _oplog_id FROM items", "lamp|12|3|null|2|12");
	assert_int_equal(cache->applied, 12);
	/* 1000 updates of one row in one batch: one row write plus the position. */
	int before = sqlite3_total_changes(cache->db);
	char data[64];
	for (int i = 0; i < 1000; i++) {
		snprintf(data, sizeof data, "{\"qty\": %d}", i);
		push(&batch, 100 + i, CW_OP_UPSERT, "items", "p1", data, 2);
	}
	apply_changes(cache, &batch, 1099);
	assert_int_equal(sqlite3_total_changes(cache->db) - before, 2);
	expect(cache->db, "SELECT qty || '|' || title || '|' || _oplog_id FROM items", "999|lamp|1099");
	cw_change_batch_free(&batch);
}

static void deletes_replacing_upserts_and_sweeps(void **state)
{
	fixture_t *fx = *state;
	cw_cache_t *cache = acquire(fx, &items, NULL);
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	push(&batch, 1, CW_OP_UPSERT, "items", "a", "{\"title\": \"A\", \"qty\": 1}", 1);
	push(&batch, 2, CW_OP_UPSERT, "items", "b", "{\"title\": \"B\", \"qty\": 2}", 1);
	push(&batch, 3, CW_OP_UPSERT, "items", "c", "{\"title\": \"C\", \"qty\": 3}", 1);
	apply_changes(cache, &batch, 3);
	/* b deleted then upserted without title: the old title must not survive. */
	push(&batch, 4, CW_OP_DELETE, "items", "b", NULL, 1);
	push(&batch, 5, CW_OP_UPSERT, "items", "b", "{\"qty\": 20}", 2);
	push(&batch, 6, CW_OP_DELETE, "items", "a", NULL, 1);
	push(&batch, 7, CW_OP_UPSERT, "items", "d", "{\"title\": \"D\"}", 2);
	apply_changes(cache, &batch, 7);
	expect(cache->db, "SELECT group_concat(id || ':' || coalesce(title, '-') || ':' || "
	       "coalesce(qty, '-') || ':' || _version, ',') FROM (SELECT * FROM items ORDER BY id)",
	       "b:-:20:2,c:C:3:1,d:D:-:2");
	/* A sweep of generation 2 removes rows of generation 1 only. */
	push(&batch, 8, CW_OP_SWEEP, "items", NULL, NULL, 2);
	apply_changes(cache, &batch, 8);
	expect(cache->db, "SELECT group_concat(id, ',') FROM (SELECT id FROM items ORDER BY id)", "b,d");
	/* Changes at or below the applied id are not applied again. */
	push(&batch, 3, CW_OP_UPSERT, "items", "c", "{\"title\": \"C\"}", 1);
	apply_changes(cache, &batch, 8);
	expect(cache->db, "SELECT count(*) FROM items WHERE id = 'c'", "0");
	cw_change_batch_free(&batch);
}

/* Values written from the change's text and through jansson must be the same. */
static void text_and_parsed_paths_store_the_same_values(void **state)
{
	fixture_t *fx = *state;
	cw_cache_t *cache = acquire(fx, &items, NULL);
	static const char *const data[] = {
		/* fast path: plain values, whitespace, nested values, duplicates */
		"{ \"title\" : \"plain\" , \"qty\": -42, \"price\": 1e3, \"active\": false,"
		" \"tags\": [ 1 , {\"a\" : \"b c\"} ], \"extra\": {\"k\": [true, null]} }",
		/* numbers and booleans in a text column; strings in jsonb */
		"{\"title\": 12.5, \"tags\": \"just text\", \"extra\": \"s\", \"qty\": true}",
		/* escapes and non-ASCII */
		"{\"title\": \"tab\\there \\\"q\\\" \\u00e9 \u00e9\", \"qty\": 1}",
		/* an integer past 64 bits; duplicate keys (the last wins) */
		"{\"qty\": 123456789012345678901234567890, \"title\": \"a\", \"title\": \"b\"}",
		"{}",
	};
	static const char *const want[] = {
		"plain|-42|1000.0|0|[1,{\"a\":\"b c\"}]|{\"k\":[true,null]}",
		"12.5|1|~|~|\"just text\"|s",
		"tab\there \"q\" \u00e9 \u00e9|1|~|~|~|~",
		"b|123456789012345678901234567890|~|~|~|~",
		"~|~|~|~|~|~",
	};
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	char doc_id[16];
	for (int merged = 0; merged < 2; merged++) {
		for (size_t i = 0; i < sizeof data / sizeof data[0]; i++) {
			snprintf(doc_id, sizeof doc_id, "%d-%zu", merged, i);
			/* merged: an empty upsert first, so the coalescer parses and merges */
			if (merged)
				push(&batch, (int64_t)(100 * merged + 2 * i + 1), CW_OP_UPSERT, "items", doc_id,
				     "{}", 1);
			push(&batch, (int64_t)(100 * merged + 2 * i + 2), CW_OP_UPSERT, "items", doc_id,
			     data[i], 1);
		}
		apply_changes(cache, &batch, 100 * merged + 50);
		for (size_t i = 0; i < sizeof data / sizeof data[0]; i++) {
			char *sql = cw_xasprintf("SELECT coalesce(title, '~') || '|' || coalesce(qty, '~') "
			                         "|| '|' || coalesce(price, '~') || '|' || coalesce(active, '~')"
			                         " || '|' || coalesce(tags, '~') || '|' || coalesce(extra, '~')"
			                         " FROM items WHERE id = '%d-%zu'", merged, i);
			expect(cache->db, sql, want[i]);
			free(sql);
		}
	}
	/* Data that is not an object is refused, with the oplog id. */
	push(&batch, 500, CW_OP_UPSERT, "items", "bad", "[1, 2]", 1);
	const cw_change_t *changes[] = {&batch.items[0]};
	cw_write_list_t writes = CW_WRITE_LIST_INIT;
	cw_err_t err = {0};
	assert_int_equal(cw_coalesce(changes, 1, 0, &writes, &err), 0);
	assert_int_equal(cw_cache_apply(cache, &writes, 500, NULL, &err), CW_EINVAL);
	assert_non_null(strstr(err.message, "oplog row 500 is not a JSON object"));
	assert_int_equal(cache->applied, 100 + 50);
	cw_write_list_clear(&writes);
	cw_change_batch_free(&batch);
}

static void document_and_dynamic_entities(void **state)
{
	fixture_t *fx = *state;
	cw_cache_t *doc_cache = acquire(fx, &docs, NULL);
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	push(&batch, 1, CW_OP_UPSERT, "docs", "65a0", "{\"doc\": {\"_id\": {\"$oid\": \"65a0\"}, "
	     "\"n\": 1}}", 1);
	apply_changes(doc_cache, &batch, 1);
	expect(doc_cache->db, "SELECT doc FROM docs WHERE id = '65a0'",
	       "{\"_id\":{\"$oid\":\"65a0\"},\"n\":1}");
	expect(doc_cache->db, "SELECT json_extract(doc, '$.n') FROM docs", "1");

	cw_cache_t *dyn = acquire(fx, &customers, NULL);
	push(&batch, 2, CW_OP_UPSERT, "customers", "7",
	     "{\"id\": 7, \"name\": \"Ada\", \"Mixed Case\": 1, \"_version\": 9}", 1);
	apply_changes(dyn, &batch, 2);
	push(&batch, 3, CW_OP_UPSERT, "customers", "7", "{\"email\": \"a@x\", \"Mixed Case\": 2}", 1);
	apply_changes(dyn, &batch, 3);
	expect(dyn->db, "SELECT group_concat(name, ',') FROM pragma_table_info('customers')",
	       "id,_extra,_version,_oplog_id,name,email");
	expect(dyn->db, "SELECT id || '|' || name || '|' || email || '|' || _extra || '|' || _version "
	       "FROM customers", "7|Ada|a@x|{\"Mixed Case\":2,\"_version\":9}|1");
	/* Every key a known column: bound straight from the text, with the same result. */
	push(&batch, 4, CW_OP_UPSERT, "customers", "7", "{\"id\": 7, \"name\": \"Grace\", \"email\": null}", 1);
	apply_changes(dyn, &batch, 4);
	push(&batch, 5, CW_OP_UPSERT, "customers", "8", "{\"id\": 8, \"name\": 42, \"email\": [1, {\"a\": true}]}", 1);
	apply_changes(dyn, &batch, 5);
	expect(dyn->db, "SELECT group_concat(id || '|' || typeof(name) || ':' || name || '|' || "
	       "coalesce(email, '~') || '|' || coalesce(_extra, '~'), ';') FROM customers",
	       "7|text:Grace|~|{\"Mixed Case\":2,\"_version\":9};8|integer:42|[1,{\"a\":true}]|~");
	/* Reopening finds the columns added earlier. */
	cw_cachedb_forget(fx->db, "customers");
	dyn = acquire(fx, &customers, NULL);
	assert_int_equal(dyn->ncolumns, 2);
	assert_int_equal(dyn->applied, 5);
	cw_change_batch_free(&batch);
}

/*
 * No value changes on its way into a cache, whatever else the row holds: a
 * string with an escape next to jsonb with 2.50 and a 30-digit integer, a
 * numeric past 2^53, decimals a double cannot hold — on the first write and
 * on merged ones, in a dynamic table.
 */
static void values_keep_their_digits_next_to_escaped_strings(void **state)
{
	fixture_t *fx = *state;
	cw_cache_t *dyn = acquire(fx, &customers, NULL);
	static const char *const rows[] = {
		"{\"id\": 1, \"j\": {\"x\": 2.50, \"big\": 123456789012345678901234567890}, "
		"\"s\": \"say \\\"hi\\\"\", \"n\": 9007199254741001, \"p\": 12.34, "
		"\"d\": 12345678901234567890123456789012345678901234567890.0000000001, "
		"\"t\": \"tab\\there\", \"a\": [\"red\", \"with space\", null, 2.50]}",
	};
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	push(&batch, 1, CW_OP_UPSERT, "customers", "1", rows[0], 1);
	apply_changes(dyn, &batch, 1);
	/* merged: a second upsert of row 2 in the same batch */
	push(&batch, 2, CW_OP_UPSERT, "customers", "2", "{\"id\": 2, \"s\": \"plain\"}", 1);
	push(&batch, 3, CW_OP_UPSERT, "customers", "2", rows[0], 1);
	apply_changes(dyn, &batch, 3);
	for (int id = 1; id <= 2; id++) {
		char *sql = cw_xasprintf(
			"SELECT j || '|' || s || '|' || typeof(n) || ':' || n || '|' || typeof(p) || ':' || p "
			"|| '|' || typeof(d) || ':' || d || '|' || t || '|' || a FROM customers WHERE id = '%d'",
			id);
		expect(dyn->db, sql,
		       "{\"x\":2.50,\"big\":123456789012345678901234567890}|say \"hi\"|"
		       "integer:9007199254741001|real:12.34|"
		       "text:12345678901234567890123456789012345678901234567890.0000000001|tab\there|"
		       "[\"red\",\"with space\",null,2.50]");
		free(sql);
	}
	cw_change_batch_free(&batch);
}

/* Decimal handling: exact (default) keeps digits a double cannot hold as text;
 * double rounds them; text keeps every decimal's digits as printed. */
static void decimal_handling_chooses_how_numbers_are_stored(void **state)
{
	fixture_t *fx = *state;
	static const char *const want[] = {
		"integer:9007199254741001|real:2.5|real:0.1|text:123456789012345678901234567890|"
		"text:0.1000000000000000055511151231257827",
		"integer:9007199254741001|real:2.5|real:0.1|real:1.23456789012346e+29|real:0.1",
		"integer:9007199254741001|text:2.50|text:0.1|text:123456789012345678901234567890|"
		"text:0.1000000000000000055511151231257827",
	};
	for (int mode = CW_DECIMAL_EXACT; mode <= CW_DECIMAL_TEXT; mode++) {
		cw_cachedb_drop(fx->db, "customers", NULL, NULL);
		cw_cachedb_set_decimal_mode(fx->db, (cw_decimal_mode_t)mode);
		cw_cache_t *dyn = acquire(fx, &customers, NULL);
		cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
		push(&batch, 1, CW_OP_UPSERT, "customers", "1",
		     "{\"a\": 9007199254741001, \"b\": 2.50, \"c\": 0.1, "
		     "\"d\": 123456789012345678901234567890, \"e\": 0.1000000000000000055511151231257827}",
		     1);
		apply_changes(dyn, &batch, 1);
		expect(dyn->db, "SELECT typeof(a) || ':' || a || '|' || typeof(b) || ':' || b || '|' || "
		       "typeof(c) || ':' || c || '|' || typeof(d) || ':' || d || '|' || typeof(e) || ':' || e "
		       "FROM customers", want[mode]);
		cw_change_batch_free(&batch);
	}
	cw_cachedb_set_decimal_mode(fx->db, CW_DECIMAL_EXACT);
}

/* A decimal text's value as (sign, significant digits, exponent), for comparing two texts. */
static void decimal_value(const char *text, char *out, size_t size)
{
	char digits[64] = "";
	size_t n = 0;
	long point = 0, exponent = 0;
	bool seen_point = false, negative = text[0] == '-';
	const char *s = text + negative;
	for (; *s && *s != 'e' && *s != 'E'; s++) {
		if (*s == '.') {
			seen_point = true;
		} else if (n == 0 && *s == '0') {
			point -= seen_point;
		} else {
			point += !seen_point;
			if (n < sizeof digits - 1)
				digits[n++] = *s;
		}
	}
	while (n > 0 && digits[n - 1] == '0')
		n--;
	digits[n] = '\0';
	if (*s)
		exponent = strtol(s + 1, NULL, 10);
	snprintf(out, size, "%s0.%se%ld", negative ? "-" : "", digits, point + exponent);
}

/*
 * Under exact decimal handling a number of at most 15 significant digits is
 * a double without formatting the double back: every such number, of any
 * exponent a double holds normally, reads back from the double's shortest
 * text with its value, as the full check requires. Longer ones still take
 * that check.
 */
static void numbers_of_few_digits_are_doubles_that_keep_them(void **state)
{
	(void)state;
	uint64_t rng = 0x9e3779b97f4a7c15u;
	for (int i = 0; i < 200000; i++) {
		rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
		int ndigits = 1 + (int)(rng % 15), exponent = (int)((rng >> 8) % 561) - 280;
		char number[64], shortest[CW_JSON_DOUBLE_LEN], want[80], got[80];
		int len = snprintf(number, sizeof number, "%s%d.", (rng >> 20) & 1 ? "-" : "",
		                   1 + (int)((rng >> 24) % 9));
		for (int d = 1; d < ndigits; d++)
			number[len++] = (char)('0' + (rng >> (28 + d * 2)) % 10);
		len += snprintf(number + len, sizeof number - (size_t)len, "e%d", exponent);
		cw_typed_value_t value;
		cw_typed_value_number(number, (size_t)len, CW_DECIMAL_EXACT, &value);
		assert_int_equal(value.kind, CW_TYPED_REAL);
		assert_true(value.real == strtod(number, NULL));
		cw_json_format_double(value.real, shortest);
		decimal_value(number, want, sizeof want);
		decimal_value(shortest, got, sizeof got);
		assert_string_equal(got, want);
	}
	/* Numbers as sources print them, read to the same double as strtod reads them. */
	for (int i = 0; i < 200000; i++) {
		rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
		char number[64];
		int whole = (int)(rng % 12), fraction = 1 + (int)((rng >> 4) % 10), len = 0;
		if ((rng >> 8) & 1)
			number[len++] = '-';
		for (int d = 0; d < whole; d++)
			number[len++] = (char)('0' + (d == 0 ? 1 + (rng >> (12 + d)) % 9 : (rng >> (12 + d)) % 10));
		if (whole == 0)
			number[len++] = '0';
		number[len++] = '.';
		for (int d = 0; d < fraction; d++)
			number[len++] = (char)('0' + (rng >> (30 + d * 3)) % 10);
		if ((rng >> 62) & 1)
			len += snprintf(number + len, sizeof number - (size_t)len, "e%d",
			                (int)((rng >> 40) % 61) - 30);
		number[len] = '\0';
		cw_typed_value_t value;
		cw_typed_value_number(number, (size_t)len, CW_DECIMAL_DOUBLE, &value);
		assert_int_equal(value.kind, CW_TYPED_REAL);
		if (value.real != strtod(number, NULL))
			fail_msg("%s read as %.17g, strtod reads %.17g", number, value.real,
			         strtod(number, NULL));
	}
	static const struct { const char *number; cw_typed_kind_t kind; } longer[] = {
		{"0.30000000000000004", CW_TYPED_REAL},     /* 17 digits, the double's own */
		{"0.1000000000000000055511", CW_TYPED_TEXT},
		{"1234567890123456.7", CW_TYPED_TEXT},
		{"2.500000000000000", CW_TYPED_REAL},       /* trailing zeros are not digits */
		{"1e-300", CW_TYPED_REAL},                  /* past the short cut's range */
		{"123456789012345678901234567890", CW_TYPED_TEXT},
	};
	for (size_t i = 0; i < sizeof longer / sizeof longer[0]; i++) {
		cw_typed_value_t value;
		cw_typed_value_number(longer[i].number, strlen(longer[i].number), CW_DECIMAL_EXACT,
		                      &value);
		assert_int_equal(value.kind, longer[i].kind);
	}
}

static void overwrite(const char *path, off_t offset, size_t len)
{
	int fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	char *junk = cw_xmalloc(len);
	memset(junk, 0xA5, len);
	assert_int_equal(pwrite(fd, junk, len, offset), (ssize_t)len);
	close(fd);
	free(junk);
}

static size_t count_corrupt_files(const char *dir)
{
	char *cmd = cw_xasprintf("ls %s | grep -c 'db.sqlite.corrupt-[0-9]*$' || true", dir);
	FILE *p = popen(cmd, "r");
	size_t n = 0;
	assert_non_null(p);
	assert_int_equal(fscanf(p, "%zu", &n), 1);
	pclose(p);
	free(cmd);
	return n;
}

static void fill(fixture_t *fx, int rows)
{
	cw_cache_t *cache = acquire(fx, &items, NULL);
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	char doc_id[32], data[300];
	for (int i = 0; i < rows; i++) {
		snprintf(doc_id, sizeof doc_id, "k%06d", i);
		snprintf(data, sizeof data, "{\"title\": \"%0200d\", \"qty\": %d}", i, i);
		push(&batch, i + 1, CW_OP_UPSERT, "items", doc_id, data, 1);
	}
	apply_changes(cache, &batch, rows);
	cw_change_batch_free(&batch);
}

static void corrupt_file_is_moved_aside_and_recreated(void **state)
{
	fixture_t *fx = *state;
	char path[256], dir[128];
	snprintf(dir, sizeof dir, "%s/items", fx->dir);
	snprintf(path, sizeof path, "%s/db.sqlite", dir);
	fill(fx, 2000);
	/* Checkpoint the WAL into the file, then damage b-tree pages in the middle. */
	cw_cache_t *cache = cw_cachedb_find(fx->db, "items");
	assert_int_equal(sqlite3_wal_checkpoint_v2(cache->db, NULL, SQLITE_CHECKPOINT_TRUNCATE,
	                                           NULL, NULL), SQLITE_OK);
	cw_cachedb_forget(fx->db, "items");
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	overwrite(path, st.st_size / 2, 8192);
	bool recreated = false;
	cache = acquire(fx, &items, &recreated);
	assert_true(recreated);
	assert_int_equal(cache->applied, 0);
	expect(cache->db, "SELECT count(*) FROM items", "0");
	expect(cache->db, "PRAGMA quick_check", "ok");
	assert_int_equal(count_corrupt_files(dir), 1);

	/* A file that is not a database at all (header overwritten). */
	fill(fx, 10);
	cache = cw_cachedb_find(fx->db, "items");
	assert_int_equal(sqlite3_wal_checkpoint_v2(cache->db, NULL, SQLITE_CHECKPOINT_TRUNCATE,
	                                           NULL, NULL), SQLITE_OK);
	cw_cachedb_forget(fx->db, "items");
	overwrite(path, 0, 100);
	cache = acquire(fx, &items, &recreated);
	assert_true(recreated);
	assert_int_equal(cache->applied, 0);
	assert_int_equal(count_corrupt_files(dir), 2);
}

static void missing_file_is_recreated_and_drop_removes_the_directory(void **state)
{
	fixture_t *fx = *state;
	char dir[128];
	snprintf(dir, sizeof dir, "%s/items", fx->dir);
	fill(fx, 5);
	/* Removed while open: noticed at the next acquire. */
	assert_int_equal(nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
	bool recreated = false;
	cw_cache_t *cache = acquire(fx, &items, &recreated);
	assert_true(recreated);
	assert_int_equal(cache->applied, 0);
	expect(cache->db, "SELECT count(*) FROM items", "0");
	struct stat st;
	assert_int_equal(stat(cache->path, &st), 0);
	/* Opening again without damage is not a recreation. */
	cache = acquire(fx, &items, &recreated);
	assert_false(recreated);

	bool removed = false;
	cw_err_t err = {0};
	assert_int_equal(cw_cachedb_drop(fx->db, "items", &removed, &err), 0);
	assert_true(removed);
	assert_int_not_equal(stat(dir, &st), 0);
	assert_null(cw_cachedb_find(fx->db, "items"));
	assert_int_equal(cw_cachedb_drop(fx->db, "items", &removed, &err), 0);
	assert_false(removed);
	/* Names that are not identifiers never become paths. */
	assert_int_equal(cw_cachedb_drop(fx->db, "../etc", &removed, &err), CW_EINVAL);
	cw_entity_t bad = items;
	bad.name = (char *)"Items/../x";
	cw_cache_t *none = NULL;
	assert_int_equal(cw_cachedb_acquire(fx->db, &bad, &none, NULL, &err), CW_EINVAL);
	assert_null(none);
}

static void idle_caches_are_closed(void **state)
{
	fixture_t *fx = *state;
	acquire(fx, &items, NULL);
	acquire(fx, &docs, NULL);
	assert_int_equal(cw_cachedb_open_count(fx->db), 2);
	int64_t now = cw_clock_now_ms(cw_clock_system());
	assert_int_equal(cw_cachedb_close_idle(fx->db, now), 0);
	assert_int_equal(cw_cachedb_close_idle(fx->db, now + 1500), 2);
	assert_int_equal(cw_cachedb_open_count(fx->db), 0);
	/* Reopened from the file with its position. */
	fill(fx, 3);
	cw_cachedb_forget(fx->db, "items");
	bool recreated = true;
	cw_cache_t *cache = acquire(fx, &items, &recreated);
	assert_false(recreated);
	assert_int_equal(cache->applied, 3);
}

static off_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? st.st_size : -1;
}

static void the_checkpointer_copies_the_wal_into_the_file(void **state)
{
	fixture_t *fx = *state;
	fill(fx, 20000);   /* about 1200 pages, all in the WAL: the writer does not checkpoint */
	cw_cache_t *cache = cw_cachedb_find(fx->db, "items");
	char *wal = cw_xasprintf("%s-wal", cache->path);
	assert_true(cache->wal_frames >= 1000);
	assert_true(file_size(cache->path) < 100 * 1024);
	assert_true(file_size(wal) > 1024 * 1024);
	uint64_t before = cw_cachedb_checkpoints(fx->db);
	cw_cachedb_committed(fx->db, cache);
	int64_t deadline = cw_clock_now_ms(cw_clock_system()) + 60000;
	while (cw_cachedb_checkpoints(fx->db) == before) {
		assert_true(cw_clock_now_ms(cw_clock_system()) < deadline);
		usleep(1000);
	}
	assert_true(file_size(cache->path) > 1024 * 1024);
	/* The next commit starts the WAL over instead of growing it. */
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	push(&batch, 30000, CW_OP_UPSERT, "items", "k000001", "{\"qty\": -1}", 1);
	apply_changes(cache, &batch, 30000);
	assert_true(cache->wal_frames < 10);
	expect(cache->db, "SELECT count(*) || '|' || sum(qty = -1) FROM items", "20000|1");
	cw_change_batch_free(&batch);
	free(wal);
}

static void position_survives_reopening(void **state)
{
	fixture_t *fx = *state;
	cw_err_t err = {0};
	int64_t position = -1;
	assert_int_equal(cw_cachedb_position_get(fx->db, &position, &err), 0);
	assert_int_equal(position, 0);
	assert_int_equal(cw_cachedb_position_set(fx->db, 4242, &err), 0);
	cw_cachedb_close(fx->db);
	fx->db = cw_cachedb_open(fx->dir, 1000, &err);
	assert_non_null(fx->db);
	assert_int_equal(cw_cachedb_position_get(fx->db, &position, &err), 0);
	assert_int_equal(position, 4242);
}

/* Runs sql on the fixture's metadata.sqlite from another connection, as a person with sqlite3 would. */
static void edit_metadata(fixture_t *fx, const char *sql)
{
	char path[128];
	snprintf(path, sizeof path, "%s/metadata.sqlite", fx->dir);
	sqlite3 *conn = NULL;
	assert_int_equal(sqlite3_open(path, &conn), SQLITE_OK);
	assert_int_equal(sqlite3_exec(conn, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(conn);
}

static void position_failing_its_checksum_reads_as_zero(void **state)
{
	fixture_t *fx = *state;
	cw_err_t err = {0};
	int64_t position = -1;
	assert_int_equal(cw_cachedb_position_set(fx->db, 4242, &err), 0);
	/* Moved forward by hand: applying from there would skip rows; from 0 replays them. */
	edit_metadata(fx, "UPDATE metadata SET value = '9000' WHERE key = 'position'");
	assert_int_equal(cw_cachedb_position_get(fx->db, &position, &err), 0);
	assert_int_equal(position, 0);
	/* The next store writes both again. */
	assert_int_equal(cw_cachedb_position_set(fx->db, 4300, &err), 0);
	assert_int_equal(cw_cachedb_position_get(fx->db, &position, &err), 0);
	assert_int_equal(position, 4300);
	/* Stored before checksums: accepted. */
	edit_metadata(fx, "DELETE FROM metadata WHERE key = 'position_checksum'");
	assert_int_equal(cw_cachedb_position_get(fx->db, &position, &err), 0);
	assert_int_equal(position, 4300);
}

static void readers_keep_reading_while_the_writer_commits(void **state)
{
	fixture_t *fx = *state;
	fill(fx, 100);
	cw_cache_t *cache = cw_cachedb_find(fx->db, "items");
	sqlite3 *reader = NULL;
	assert_int_equal(sqlite3_open_v2(cache->path, &reader, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(reader, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
	expect(reader, "SELECT count(*) FROM items", "100");   /* the read transaction starts */
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	push(&batch, 500, CW_OP_UPSERT, "items", "new", "{\"qty\": 1}", 1);
	apply_changes(cache, &batch, 500);   /* commits while the reader holds its snapshot */
	expect(reader, "SELECT count(*) FROM items", "100");
	assert_int_equal(sqlite3_exec(reader, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	expect(reader, "SELECT count(*) FROM items", "101");
	sqlite3_close(reader);
	cw_change_batch_free(&batch);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(layout_and_column_types, setup, teardown),
		cmocka_unit_test_setup_teardown(upsert_sets_present_columns_only, setup, teardown),
		cmocka_unit_test_setup_teardown(deletes_replacing_upserts_and_sweeps, setup, teardown),
		cmocka_unit_test_setup_teardown(text_and_parsed_paths_store_the_same_values, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(document_and_dynamic_entities, setup, teardown),
		cmocka_unit_test_setup_teardown(values_keep_their_digits_next_to_escaped_strings, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(decimal_handling_chooses_how_numbers_are_stored, setup,
		                                teardown),
		cmocka_unit_test(numbers_of_few_digits_are_doubles_that_keep_them),
		cmocka_unit_test_setup_teardown(corrupt_file_is_moved_aside_and_recreated, setup, teardown),
		cmocka_unit_test_setup_teardown(missing_file_is_recreated_and_drop_removes_the_directory,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(idle_caches_are_closed, setup, teardown),
		cmocka_unit_test_setup_teardown(the_checkpointer_copies_the_wal_into_the_file, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(position_survives_reopening, setup, teardown),
		cmocka_unit_test_setup_teardown(position_failing_its_checksum_reads_as_zero, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(readers_keep_reading_while_the_writer_commits, setup,
		                                teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
