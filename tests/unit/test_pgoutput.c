/*
 * This file contains the unit tests of the pgoutput decoder: every message
 * type decoded from bytes captured from PostgreSQL 15 (pgoutput_vectors.h),
 * the rows they turn into (doc_id, data, key changes, unchanged TOAST), the
 * value mapping of docs/pgoutput.md, malformed input (every vector cut at
 * every length, trailing bytes, random byte flips) and the CopyData envelope.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "capture/pgoutput.h"
#include "core/buf.h"
#include "core/err.h"
#include "pgoutput_vectors.h"

/* ---- helpers ------------------------------------------------------------ */

static const pgo_vector_t *scenario(const char *name, size_t *count)
{
	for (size_t i = 0; i < sizeof pgo_scenarios / sizeof pgo_scenarios[0]; i++) {
		if (strcmp(pgo_scenarios[i].name, name) == 0) {
			*count = pgo_scenarios[i].count;
			return pgo_scenarios[i].messages;
		}
	}
	fail_msg("no scenario \"%s\"", name);
	return NULL;
}

static int decode(cw_pgoutput_t *dec, const pgo_vector_t *vec, cw_pgoutput_msg_t *msg, cw_err_t *err)
{
	return cw_pgoutput_decode(dec, vec->bytes, vec->len, msg, err);
}

static void assert_decodes(cw_pgoutput_t *dec, const pgo_vector_t *vec, cw_pgoutput_msg_t *msg)
{
	cw_err_t err = {0};
	int rc = decode(dec, vec, msg, &err);
	if (rc != 0)
		fail_msg("decode failed: %s", err.message);
}

/* Builds messages by hand for the cases a server does not produce. */
static void put_u8(cw_buf_t *b, uint8_t v) { cw_buf_append(b, &v, 1); }
static void put_u16(cw_buf_t *b, uint16_t v) { put_u8(b, (uint8_t)(v >> 8)); put_u8(b, (uint8_t)v); }
static void put_u32(cw_buf_t *b, uint32_t v) { put_u16(b, (uint16_t)(v >> 16)); put_u16(b, (uint16_t)v); }
static void put_str(cw_buf_t *b, const char *s) { cw_buf_append(b, s, strlen(s) + 1); }

/* Relation 9000 "public.t": "id" int4 key and a column named second of type_oid. */
static void build_relation_named(cw_buf_t *b, uint32_t type_oid, const char *second)
{
	cw_buf_reset(b);
	put_u8(b, 'R');
	put_u32(b, 9000);
	put_str(b, "public");
	put_str(b, "t");
	put_u8(b, 'd');
	put_u16(b, 2);
	put_u8(b, 1);
	put_str(b, "id");
	put_u32(b, 23);
	put_u32(b, UINT32_MAX);
	put_u8(b, 0);
	put_str(b, second);
	put_u32(b, type_oid);
	put_u32(b, UINT32_MAX);
}

/* Relation 9000 "public.t" with columns "id" int4 key and "v" of type_oid. */
static void build_relation(cw_buf_t *b, uint32_t type_oid)
{
	build_relation_named(b, type_oid, "v");
}

/* Insert into relation 9000: id 1, v = value[0..len) ('t'), or NULL ('n'). */
static void build_insert(cw_buf_t *b, const char *value, size_t len)
{
	cw_buf_reset(b);
	put_u8(b, 'I');
	put_u32(b, 9000);
	put_u8(b, 'N');
	put_u16(b, 2);
	put_u8(b, 't');
	put_u32(b, 1);
	put_u8(b, '1');
	if (value == NULL) {
		put_u8(b, 'n');
		return;
	}
	put_u8(b, 't');
	put_u32(b, (uint32_t)len);
	cw_buf_append(b, value, len);
}

/* Decodes a Relation with v of type_oid and an Insert of value; returns the
 * row_change result, with row filled on success. */
static int value_row(const char *value, size_t len, uint32_t type_oid, cw_pgoutput_row_t *row,
	cw_err_t *err)
{
	cw_pgoutput_t *dec = cw_pgoutput_new();
	cw_buf_t b = CW_BUF_INIT;
	cw_pgoutput_msg_t msg;
	build_relation(&b, type_oid);
	assert_int_equal(cw_pgoutput_decode(dec, (const uint8_t *)b.data, b.len, &msg, err), 0);
	build_insert(&b, value, len);
	assert_int_equal(cw_pgoutput_decode(dec, (const uint8_t *)b.data, b.len, &msg, err), 0);
	int rc = cw_pgoutput_row_change(dec, &msg, row, err);
	cw_buf_free(&b);
	cw_pgoutput_free(dec);
	return rc;
}

/* ---- every scenario, table-driven --------------------------------------- */

/* One expected message. For rows: doc_id, old_doc_id and data of the change,
 * or error: a substring of the row_change error. For others: detail names
 * what identifies it (relation, type or origin name, message prefix). */
typedef struct expect {
	cw_pgoutput_kind_t kind;
	const char *detail;
	const char *doc_id;
	const char *old_doc_id;
	const char *data;
	const char *error;
} expect_t;

#define B {CW_PGOUTPUT_BEGIN, NULL, NULL, NULL, NULL, NULL}
#define C {CW_PGOUTPUT_COMMIT, NULL, NULL, NULL, NULL, NULL}
#define R(name) {CW_PGOUTPUT_RELATION, name, NULL, NULL, NULL, NULL}
#define INS(id, data) {CW_PGOUTPUT_INSERT, NULL, id, NULL, data, NULL}
#define UPD(id, old, data) {CW_PGOUTPUT_UPDATE, NULL, id, old, data, NULL}
#define DEL(id) {CW_PGOUTPUT_DELETE, NULL, id, NULL, NULL, NULL}
#define KIND(kind, detail) {kind, detail, NULL, NULL, NULL, NULL}

static const char items_1[] =
	"{\"id\":1,\"name\":\"Grüße, 世界 🚀 \\\"q\\\" \\\\ tab\\t nl\\n\","
	"\"price\":12345678901234567890123456789012345678901234567890.0000000001,"
	"\"qty\":9007199254740993,\"ratio\":0.1,\"active\":true,"
	"\"tags\":[\"red\",\"with space\",null],"
	"\"attrs\":{\"a\": {\"x\": \"ü\"}, \"b\": [1, 2.50, null]},"
	"\"meta\":{ \"dup\": 1, \"dup\": 2 },"
	"\"created_at\":\"2024-02-29 12:34:56.789+00\"}";
static const char items_2[] =
	"{\"id\":2,\"name\":null,\"price\":null,\"qty\":null,\"ratio\":null,\"active\":false,"
	"\"tags\":null,\"attrs\":null,\"meta\":null,\"created_at\":null}";

static const struct {
	const char *scenario;
	expect_t expect[14];
} scenario_table[] = {
	{"insert_items", {B, R("public.items"), INS("1", items_1), INS("2", items_2), C}},
	{"insert_kinds", {B, KIND(CW_PGOUTPUT_TYPE, "public.mood"), R("public.kinds"),
		INS("1", "{\"id\":1,\"f4\":\"NaN\",\"big\":\"Infinity\","
			"\"u\":\"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\",\"raw\":\"\\\\xdeadbeef\","
			"\"m\":\"happy\",\"o\":4294967295,\"v\":\"short\"}"),
		INS("2", "{\"id\":2,\"f4\":\"-Infinity\",\"big\":\"NaN\",\"u\":null,"
			"\"raw\":\"\\\\x\",\"m\":\"sad\",\"o\":0,\"v\":\"\"}"),
		INS("3", "{\"id\":3,\"f4\":1.5e-07,\"big\":-0.000001,\"u\":null,\"raw\":null,"
			"\"m\":null,\"o\":null,\"v\":null}"),
		C}},
	{"update_items", {B, R("public.items"),
		UPD("2", NULL, "{\"id\":2,\"name\":\"renamed\",\"price\":null,\"qty\":-1,"
			"\"ratio\":null,\"active\":false,\"tags\":null,\"attrs\":null,\"meta\":null,"
			"\"created_at\":null}"),
		C}},
	{"update_items_key", {B, R("public.items"),
		UPD("20", "2", "{\"id\":20,\"name\":\"renamed\",\"price\":null,\"qty\":-1,"
			"\"ratio\":null,\"active\":false,\"tags\":null,\"attrs\":null,\"meta\":null,"
			"\"created_at\":null}"),
		C}},
	{"delete_items", {B, R("public.items"), DEL("20"), C}},
	{"composite_key", {B, R("shop.lines"),
		INS("[\"acme\",42]", "{\"tenant\":\"acme\",\"line_no\":42,\"sku\":\"SKU-1\"}"),
		UPD("[\"acme\",43]", "[\"acme\",42]",
			"{\"tenant\":\"acme\",\"line_no\":43,\"sku\":\"SKU-1\"}"),
		UPD("[\"acme\",43]", NULL, "{\"tenant\":\"acme\",\"line_no\":43,\"sku\":\"SKU-2\"}"),
		DEL("[\"acme\",43]"), C}},
	/* REPLICA IDENTITY FULL: the test gives the primary key (id) first. */
	{"full_identity", {B, R("public.audit"),
		INS("7", "{\"id\":7,\"payload\":\"first\"}"),
		UPD("7", NULL, "{\"id\":7,\"payload\":\"second\"}"),
		UPD("8", "7", "{\"id\":8,\"payload\":\"second\"}"),
		DEL("8"), C}},
	/* body is TOASTed and unchanged: absent from data, never null. */
	{"toast_unchanged", {B, R("public.docs"), UPD("1", NULL, "{\"id\":1,\"title\":\"final\"}"), C}},
	{"truncate", {B, R("public.items"), KIND(CW_PGOUTPUT_TYPE, "public.mood"), R("public.kinds"),
		KIND(CW_PGOUTPUT_TRUNCATE, NULL), C, B, R("shop.lines"),
		KIND(CW_PGOUTPUT_TRUNCATE, NULL), C}},
	{"message", {B, KIND(CW_PGOUTPUT_MESSAGE, "cw_prefix"), R("public.nokey"),
		{CW_PGOUTPUT_INSERT, NULL, NULL, NULL, NULL, "has no primary key or replica identity index"},
		C, KIND(CW_PGOUTPUT_MESSAGE, "cw_other")}},
	{"origin", {B, KIND(CW_PGOUTPUT_ORIGIN, "cw_origin"), R("public.audit"),
		INS("100", "{\"id\":100,\"payload\":\"from elsewhere\"}"), C}},
	{"stream_commit", {KIND(CW_PGOUTPUT_STREAM_START, NULL), R("public.items"),
		INS("500", "{\"id\":500,\"name\":\"streamed\",\"price\":null,\"qty\":null,"
			"\"ratio\":null,\"active\":null,\"tags\":null,\"attrs\":null,\"meta\":null,"
			"\"created_at\":null}"),
		KIND(CW_PGOUTPUT_STREAM_STOP, NULL), KIND(CW_PGOUTPUT_STREAM_START, NULL),
		KIND(CW_PGOUTPUT_MESSAGE, "cw_stream"),
		UPD("500", NULL, "{\"id\":500,\"name\":\"streamed again\",\"price\":null,\"qty\":null,"
			"\"ratio\":null,\"active\":null,\"tags\":null,\"attrs\":null,\"meta\":null,"
			"\"created_at\":null}"),
		KIND(CW_PGOUTPUT_STREAM_STOP, NULL), KIND(CW_PGOUTPUT_STREAM_COMMIT, NULL)}},
	{"stream_abort", {KIND(CW_PGOUTPUT_STREAM_START, NULL), R("public.items"),
		INS("501", "{\"id\":501,\"name\":\"kept\",\"price\":null,\"qty\":null,\"ratio\":null,"
			"\"active\":null,\"tags\":null,\"attrs\":null,\"meta\":null,\"created_at\":null}"),
		INS("502", "{\"id\":502,\"name\":\"rolled back\",\"price\":null,\"qty\":null,"
			"\"ratio\":null,\"active\":null,\"tags\":null,\"attrs\":null,\"meta\":null,"
			"\"created_at\":null}"),
		KIND(CW_PGOUTPUT_STREAM_STOP, NULL), KIND(CW_PGOUTPUT_STREAM_ABORT, NULL),
		KIND(CW_PGOUTPUT_STREAM_COMMIT, NULL), KIND(CW_PGOUTPUT_STREAM_START, NULL),
		R("public.items"),
		INS("503", "{\"id\":503,\"name\":\"aborted\",\"price\":null,\"qty\":null,"
			"\"ratio\":null,\"active\":null,\"tags\":null,\"attrs\":null,\"meta\":null,"
			"\"created_at\":null}"),
		KIND(CW_PGOUTPUT_STREAM_STOP, NULL), KIND(CW_PGOUTPUT_STREAM_ABORT, NULL)}},
};

#define NSCENARIOS (sizeof scenario_table / sizeof scenario_table[0])

static void check_row(const cw_pgoutput_t *dec, const cw_pgoutput_msg_t *msg, const expect_t *want)
{
	cw_pgoutput_row_t row;
	cw_err_t err = {0};
	int rc = cw_pgoutput_row_change(dec, msg, &row, &err);
	if (want->error != NULL) {
		assert_int_not_equal(rc, 0);
		assert_non_null(strstr(err.message, want->error));
		assert_null(row.doc_id);
		return;
	}
	if (rc != 0)
		fail_msg("row_change failed: %s", err.message);
	assert_int_equal(row.op, msg->kind == CW_PGOUTPUT_DELETE ? CW_OP_DELETE : CW_OP_UPSERT);
	assert_string_equal(row.doc_id, want->doc_id);
	if (want->old_doc_id == NULL)
		assert_null(row.old_doc_id);
	else
		assert_string_equal(row.old_doc_id, want->old_doc_id);
	if (want->data == NULL)
		assert_null(row.data);
	else
		assert_string_equal(row.data, want->data);
	cw_pgoutput_row_clear(&row);
	assert_null(row.doc_id);
}

static void check_detail(const cw_pgoutput_msg_t *msg, const expect_t *want)
{
	char name[256];
	switch (msg->kind) {
	case CW_PGOUTPUT_RELATION:
		snprintf(name, sizeof name, "%s.%s", msg->relation->nspname, msg->relation->relname);
		break;
	case CW_PGOUTPUT_TYPE:
		snprintf(name, sizeof name, "%s.%s", msg->type.nspname, msg->type.name);
		break;
	case CW_PGOUTPUT_ORIGIN:
		snprintf(name, sizeof name, "%s", msg->origin.name);
		break;
	case CW_PGOUTPUT_MESSAGE:
		snprintf(name, sizeof name, "%s", msg->message.prefix);
		break;
	default:
		return;
	}
	assert_string_equal(name, want->detail);
}

/* Transaction bracketing: what a Commit must agree with. */
typedef struct txn_state {
	uint32_t xid;
	uint64_t final_lsn;
	int64_t commit_time_us;
	uint32_t stream_xid;
} txn_state_t;

/* 2020-01-01 .. 2100-01-01 in Unix microseconds. */
#define PLAUSIBLE_TIME(us) ((us) > INT64_C(1577836800000000) && (us) < INT64_C(4102444800000000))

static void check_transaction(const cw_pgoutput_msg_t *msg, txn_state_t *txn)
{
	switch (msg->kind) {
	case CW_PGOUTPUT_BEGIN:
		assert_int_not_equal(msg->xid, 0);
		assert_true(msg->begin.final_lsn > 0);
		assert_true(PLAUSIBLE_TIME(msg->begin.commit_time_us));
		txn->xid = msg->xid;
		txn->final_lsn = msg->begin.final_lsn;
		txn->commit_time_us = msg->begin.commit_time_us;
		break;
	case CW_PGOUTPUT_COMMIT:
		assert_int_equal(msg->commit.commit_lsn, txn->final_lsn);
		assert_true(msg->commit.end_lsn > msg->commit.commit_lsn);
		assert_int_equal(msg->commit.commit_time_us, txn->commit_time_us);
		assert_int_equal(msg->xid, 0);
		break;
	case CW_PGOUTPUT_STREAM_START:
		assert_int_not_equal(msg->xid, 0);
		txn->stream_xid = msg->xid;
		break;
	case CW_PGOUTPUT_STREAM_COMMIT:
		assert_int_equal(msg->xid, txn->stream_xid);
		assert_true(msg->commit.end_lsn > msg->commit.commit_lsn);
		assert_true(PLAUSIBLE_TIME(msg->commit.commit_time_us));
		break;
	case CW_PGOUTPUT_STREAM_ABORT:
		assert_int_equal(msg->xid, txn->stream_xid);
		assert_true(msg->stream_abort.subxid >= msg->xid);
		break;
	default:
		break;
	}
}

static void test_scenarios(void **state)
{
	(void)state;
	for (size_t s = 0; s < NSCENARIOS; s++) {
		size_t count;
		const pgo_vector_t *vec = scenario(scenario_table[s].scenario, &count);
		cw_pgoutput_t *dec = cw_pgoutput_new();
		const char *audit_pk[] = {"id"};
		assert_int_equal(cw_pgoutput_set_primary_key(dec, "public", "audit", audit_pk, 1, NULL), 0);
		txn_state_t txn = {0};
		bool in_stream = false;
		for (size_t i = 0; i < count; i++) {
			const expect_t *want = &scenario_table[s].expect[i];
			cw_pgoutput_msg_t msg;
			assert_decodes(dec, &vec[i], &msg);
			assert_int_equal(msg.kind, want->kind);
			check_transaction(&msg, &txn);
			check_detail(&msg, want);
			if (msg.kind == CW_PGOUTPUT_STREAM_START)
				in_stream = true;
			if (msg.kind == CW_PGOUTPUT_STREAM_STOP)
				in_stream = false;
			if (in_stream && msg.kind != CW_PGOUTPUT_STREAM_START)
				assert_int_not_equal(msg.xid, 0);
			if (msg.kind == CW_PGOUTPUT_INSERT || msg.kind == CW_PGOUTPUT_UPDATE ||
			    msg.kind == CW_PGOUTPUT_DELETE)
				check_row(dec, &msg, want);
		}
		/* The table lists exactly the messages the scenario produced. */
		assert_int_equal(scenario_table[s].expect[count].kind, 0);
		cw_pgoutput_free(dec);
	}
}

/* ---- message details ---------------------------------------------------- */

static void test_relation_columns(void **state)
{
	(void)state;
	size_t count;
	const pgo_vector_t *vec = scenario("insert_items", &count);
	cw_pgoutput_t *dec = cw_pgoutput_new();
	cw_pgoutput_msg_t msg;
	assert_decodes(dec, &vec[1], &msg);
	const cw_pgoutput_rel_t *rel = msg.relation;
	assert_ptr_equal(cw_pgoutput_relation(dec, rel->relid), rel);
	assert_null(cw_pgoutput_relation(dec, rel->relid + 1));
	assert_int_equal(rel->replident, 'd');
	assert_int_equal(rel->ncolumns, 10);
	static const struct { const char *name; uint32_t oid; uint8_t flags; } cols[] = {
		{"id", 23, 1}, {"name", 25, 0}, {"price", 1700, 0}, {"qty", 20, 0},
		{"ratio", 701, 0}, {"active", 16, 0}, {"tags", 1009, 0}, {"attrs", 3802, 0},
		{"meta", 114, 0}, {"created_at", 1184, 0},
	};
	for (size_t i = 0; i < 10; i++) {
		assert_string_equal(rel->columns[i].name, cols[i].name);
		assert_int_equal(rel->columns[i].type_oid, cols[i].oid);
		assert_int_equal(rel->columns[i].flags, cols[i].flags);
		assert_int_equal(rel->columns[i].typmod, -1);
	}
	/* shop.lines: composite key; audit: FULL marks every column as key. */
	vec = scenario("composite_key", &count);
	assert_decodes(dec, &vec[1], &msg);
	assert_int_equal(msg.relation->columns[0].flags & CW_PGOUTPUT_COLUMN_KEY, 1);
	assert_int_equal(msg.relation->columns[1].flags & CW_PGOUTPUT_COLUMN_KEY, 1);
	assert_int_equal(msg.relation->columns[2].flags & CW_PGOUTPUT_COLUMN_KEY, 0);
	vec = scenario("full_identity", &count);
	assert_decodes(dec, &vec[1], &msg);
	assert_int_equal(msg.relation->replident, 'f');
	assert_int_equal(msg.relation->columns[1].flags & CW_PGOUTPUT_COLUMN_KEY, 1);
	cw_pgoutput_free(dec);
}

/* A new Relation message for a cached relid replaces the cached columns. */
static void test_relation_refreshed(void **state)
{
	(void)state;
	cw_pgoutput_t *dec = cw_pgoutput_new();
	cw_buf_t b = CW_BUF_INIT;
	cw_pgoutput_msg_t msg;
	cw_err_t err = {0};
	build_relation(&b, 25);
	assert_int_equal(cw_pgoutput_decode(dec, (const uint8_t *)b.data, b.len, &msg, &err), 0);
	assert_int_equal(cw_pgoutput_relation(dec, 9000)->columns[1].type_oid, 25);
	/* Same relid, one column now: a two-column Insert no longer fits. */
	cw_buf_reset(&b);
	put_u8(&b, 'R');
	put_u32(&b, 9000);
	put_str(&b, "public");
	put_str(&b, "t2");
	put_u8(&b, 'd');
	put_u16(&b, 1);
	put_u8(&b, 1);
	put_str(&b, "id");
	put_u32(&b, 20);
	put_u32(&b, UINT32_MAX);
	assert_int_equal(cw_pgoutput_decode(dec, (const uint8_t *)b.data, b.len, &msg, &err), 0);
	const cw_pgoutput_rel_t *rel = cw_pgoutput_relation(dec, 9000);
	assert_string_equal(rel->relname, "t2");
	assert_int_equal(rel->ncolumns, 1);
	assert_int_equal(rel->columns[0].type_oid, 20);
	build_insert(&b, "x", 1);
	assert_int_equal(cw_pgoutput_decode(dec, (const uint8_t *)b.data, b.len, &msg, &err), CW_EPROTO);
	assert_string_equal(err.message, "pgoutput Insert message: tuple has 2 columns but "
		"relation \"public.t2\" has 1 at offset 6");
	/* Many relations: the cache grows and keeps every one. */
	for (uint32_t relid = 1; relid <= 200; relid++) {
		build_relation(&b, 25);
		b.data[1] = (char)(relid >> 24), b.data[2] = (char)(relid >> 16);
		b.data[3] = (char)(relid >> 8), b.data[4] = (char)relid;
		assert_int_equal(cw_pgoutput_decode(dec, (const uint8_t *)b.data, b.len, &msg, &err), 0);
	}
	for (uint32_t relid = 1; relid <= 200; relid++)
		assert_int_equal(cw_pgoutput_relation(dec, relid)->relid, relid);
	assert_string_equal(cw_pgoutput_relation(dec, 9000)->relname, "t2");
	cw_buf_free(&b);
	cw_pgoutput_free(dec);
}

static void test_type_truncate_message_origin(void **state)
{
	(void)state;
	size_t count;
	cw_pgoutput_t *dec = cw_pgoutput_new();
	cw_pgoutput_msg_t msg;

	const pgo_vector_t *vec = scenario("truncate", &count);
	uint32_t relids[2];
	for (size_t i = 0; i < 5; i++) {
		assert_decodes(dec, &vec[i], &msg);
		if (msg.kind == CW_PGOUTPUT_TYPE)
			assert_true(msg.type.oid >= 16384);
		if (i == 1 || i == 3)
			relids[i / 2] = msg.relation->relid;
	}
	assert_int_equal(msg.kind, CW_PGOUTPUT_TRUNCATE);
	assert_int_equal(msg.truncate.nrelids, 2);
	assert_int_equal(msg.truncate.relids[0], relids[0]);
	assert_int_equal(msg.truncate.relids[1], relids[1]);
	assert_int_equal(msg.truncate.options,
		CW_PGOUTPUT_TRUNCATE_CASCADE | CW_PGOUTPUT_TRUNCATE_RESTART_IDENTITY);
	for (size_t i = 5; i < count; i++)
		assert_decodes(dec, &vec[i], &msg);
	assert_decodes(dec, &vec[8], &msg);
	assert_int_equal(msg.truncate.nrelids, 1);
	assert_int_equal(msg.truncate.options, 0);

	vec = scenario("message", &count);
	assert_decodes(dec, &vec[1], &msg);
	assert_int_equal(msg.message.flags, CW_PGOUTPUT_MESSAGE_TRANSACTIONAL);
	assert_true(msg.message.lsn > 0);
	assert_int_equal(msg.message.content_len, strlen("transactional payload"));
	assert_memory_equal(msg.message.content, "transactional payload", msg.message.content_len);
	assert_decodes(dec, &vec[count - 1], &msg);
	assert_int_equal(msg.message.flags, 0);
	assert_int_equal(msg.message.content_len, 2);
	assert_memory_equal(msg.message.content, "\x00\xff", 2);

	vec = scenario("origin", &count);
	assert_decodes(dec, &vec[1], &msg);
	assert_int_equal(msg.origin.lsn, 0x12345678);
	assert_string_equal(cw_pgoutput_kind_name(msg.kind), "Origin");
	cw_pgoutput_free(dec);
}

static void test_streaming(void **state)
{
	(void)state;
	size_t count;
	cw_pgoutput_t *dec = cw_pgoutput_new();
	cw_pgoutput_msg_t msg;
	const pgo_vector_t *vec = scenario("stream_commit", &count);
	assert_decodes(dec, &vec[0], &msg);
	assert_true(msg.stream_start.first_segment);
	uint32_t xid = msg.xid;
	for (size_t i = 1; i < 5; i++)
		assert_decodes(dec, &vec[i], &msg);
	assert_int_equal(msg.kind, CW_PGOUTPUT_STREAM_START);
	assert_false(msg.stream_start.first_segment);
	assert_decodes(dec, &vec[5], &msg);
	assert_int_equal(msg.xid, xid);
	assert_string_equal(msg.message.prefix, "cw_stream");
	assert_memory_equal(msg.message.content, "in stream", msg.message.content_len);
	cw_pgoutput_free(dec);

	/* A rolled back savepoint aborts a subtransaction, a ROLLBACK the whole. */
	dec = cw_pgoutput_new();
	vec = scenario("stream_abort", &count);
	for (size_t i = 0; i < count; i++) {
		assert_decodes(dec, &vec[i], &msg);
		if (i == 0 || i == 7)
			xid = msg.xid;
		if (i == 3)
			assert_int_not_equal(msg.xid, xid); /* the insert in the savepoint */
		if (i == 5)
			assert_int_not_equal(msg.stream_abort.subxid, xid);
		if (i == 11)
			assert_int_equal(msg.stream_abort.subxid, xid);
	}
	cw_pgoutput_free(dec);
}

/* Stream blocks: xids only inside, no nesting, no Begin or Commit inside. */
static void test_stream_state(void **state)
{
	(void)state;
	size_t count;
	cw_pgoutput_t *dec = cw_pgoutput_new();
	cw_pgoutput_msg_t msg;
	cw_err_t err = {0};
	const pgo_vector_t *vec = scenario("stream_commit", &count);
	const pgo_vector_t *begin = scenario("insert_items", &count);
	assert_int_equal(decode(dec, &vec[3], &msg, &err), CW_EPROTO);
	assert_string_equal(err.message,
		"pgoutput Stream Stop message: unexpected outside a stream block at offset 0");
	assert_decodes(dec, &vec[0], &msg);
	assert_int_equal(decode(dec, &vec[0], &msg, &err), CW_EPROTO);
	assert_int_equal(decode(dec, &begin[0], &msg, &err), CW_EPROTO);
	assert_string_equal(err.message,
		"pgoutput Begin message: unexpected inside a stream block at offset 0");
	assert_int_equal(decode(dec, &vec[8], &msg, &err), CW_EPROTO);
	/* Inside a stream an Insert carries an xid; one without is misread. */
	assert_decodes(dec, &begin[1], &msg);
	assert_int_equal(decode(dec, &begin[2], &msg, &err), CW_EPROTO);
	assert_decodes(dec, &vec[3], &msg);
	assert_decodes(dec, &begin[0], &msg);
	cw_pgoutput_free(dec);
}

/* ---- values (docs/pgoutput.md) ------------------------------------------ */

static void test_value_mapping(void **state)
{
	(void)state;
	static const struct {
		uint32_t oid;
		const char *text;   /* NULL: a SQL NULL */
		const char *json;   /* the value in data */
	} cases[] = {
		{21, "-32768", "-32768"},
		{23, "2147483647", "2147483647"},
		{20, "-9223372036854775808", "-9223372036854775808"},
		{26, "4294967295", "4294967295"},
		{700, "3.4028235e+38", "3.4028235e+38"},
		{701, "-1.7976931348623157e+308", "-1.7976931348623157e+308"},
		{701, "Infinity", "\"Infinity\""},
		{701, "NaN", "\"NaN\""},
		{1700, "-0.00000000000000000000000000000000000000000001",
			"-0.00000000000000000000000000000000000000000001"},
		{1700, "-Infinity", "\"-Infinity\""},
		{16, "t", "true"},
		{16, "f", "false"},
		{16, NULL, "null"},
		{3802, "{\"a\": [1, {\"b\": null}], \"c\": \"\\u00e9\\n\"}",
			"{\"a\": [1, {\"b\": null}], \"c\": \"\\u00e9\\n\"}"},
		{114, " \n[1, 2e3, -0.5, true, false, null, \"x\", {}, []] \t",
			"[1, 2e3, -0.5, true, false, null, \"x\", {}, []]"},
		{3802, "\"just a string\"", "\"just a string\""},
		{3802, "12345678901234567890123456789012345678901234567890",
			"12345678901234567890123456789012345678901234567890"},
		{1007, "{1,2,3}", "[1,2,3]"},
		{1007, "{}", "[]"},
		{1007, "{{1,2},{3,NULL}}", "[[1,2],[3,null]]"},
		{1007, "[0:1]={7,8}", "[7,8]"},
		{1009, "{red,\"with space\",NULL,\"NULL\",\"q\\\"\\\\\",\"\"}",
			"[\"red\",\"with space\",null,\"NULL\",\"q\\\"\\\\\",\"\"]"},
		{1231, "{2.50,123456789012345678901234567890,NaN}",
			"[2.50,123456789012345678901234567890,\"NaN\"]"},
		{1000, "{t,f,NULL}", "[true,false,null]"},
		{3807, "{\"{\\\"a\\\": 2.50}\",NULL}", "[{\"a\": 2.50},null]"},
		{1185, "{\"2024-01-02 03:04:05+00\"}", "[\"2024-01-02 03:04:05+00\"]"},
		{1184, "2024-01-02 03:04:05+00", "\"2024-01-02 03:04:05+00\""},
		{2950, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "\"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\""},
		{17, "\\x00ff", "\"\\\\x00ff\""},
		{25, "ctl \x01\x1f del \x7f", "\"ctl \\u0001\\u001f del \\u007f\""},
		{25, "", "\"\""},
		{1043, "日本", "\"日本\""},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		cw_pgoutput_row_t row;
		cw_err_t err = {0};
		const char *text = cases[i].text;
		int rc = value_row(text, text ? strlen(text) : 0, cases[i].oid, &row, &err);
		if (rc != 0)
			fail_msg("case %zu: %s", i, err.message);
		char want[512];
		snprintf(want, sizeof want, "{\"id\":1,\"v\":%s}", cases[i].json);
		assert_string_equal(row.data, want);
		assert_string_equal(row.doc_id, "1");
		cw_pgoutput_row_clear(&row);
	}
}

static void test_value_errors(void **state)
{
	(void)state;
	static const struct {
		uint32_t oid;
		const char *text;
		size_t len;
		const char *message;
	} cases[] = {
		{16, "true", 4, "pgoutput Insert message: column \"v\" of \"public.t\": "
			"invalid boolean at offset 19"},
		{25, "a\xff", 2, "pgoutput Insert message: column \"v\" of \"public.t\": "
			"value is not valid UTF-8 at offset 20"},
		{25, "\xed\xa0\x80", 3, "value is not valid UTF-8 at offset 19"},
		{25, "a\0b", 3, "value contains a NUL byte at offset 20"},
		{23, "\xc0\x80", 2, "value is not valid UTF-8 at offset 19"},
		{3802, "{\"a\":}", 6, "invalid JSON at offset 24"},
		{3802, "[1,]", 4, "invalid JSON at offset 22"},
		{3802, "{\"a\" 1}", 7, "invalid JSON at offset 20"},
		{3802, "01", 2, "invalid JSON at offset 19"},
		{3802, "\"\\u0000\"", 8, "invalid JSON at offset 19"},
		{3802, "tru", 3, "invalid JSON at offset 19"},
		{3802, "[1] x", 5, "invalid JSON at offset 23"},
		{3802, "\"open", 5, "invalid JSON at offset 19"},
		{3802, "{,}", 3, "invalid JSON at offset 20"},
		{3802, "[\"\x01\"]", 5, "invalid JSON at offset 20"},
		{3802, "[1 2]", 5, "invalid JSON at offset 22"},
		{3802, "{\"a\":1,}", 8, "invalid JSON at offset 26"},
		{114, "", 0, "invalid JSON at offset 19"},
		{114, " ", 1, "invalid JSON at offset 20"},
		{114, "[[]", 3, "invalid JSON at offset 22"},
		{114, "{\"a\":1}}", 8, "invalid JSON at offset 26"},
		{114, "\"\\x\"", 4, "invalid JSON at offset 19"},
		{114, "1.", 2, "invalid JSON at offset 19"},
		{114, "[1,", 3, "invalid JSON at offset 22"},
		{114, "{\"a\":", 5, "invalid JSON at offset 24"},
		{114, "{\"a\":1", 6, "invalid JSON at offset 25"},
		{114, "[", 1, "invalid JSON at offset 20"},
		{114, "{", 1, "invalid JSON at offset 20"},
		{114, "\"\\u12", 5, "invalid JSON at offset 19"},
		{114, "\"\\", 2, "invalid JSON at offset 19"},
		{114, "-", 1, "invalid JSON at offset 19"},
		{1007, "", 0, "invalid array at offset 19"},
		{1007, "[0:1]=", 6, "invalid array at offset 19"},
		{1007, "}", 1, "invalid array at offset 19"},
		{1007, "{1,2", 4, "invalid array at offset 19"},
		{1007, "x", 1, "invalid array at offset 19"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		cw_pgoutput_row_t row;
		cw_err_t err = {0};
		int rc = value_row(cases[i].text, cases[i].len, cases[i].oid, &row, &err);
		if (rc != CW_EPROTO)
			fail_msg("case %zu: expected an error, got %d", i, rc);
		if (strstr(err.message, cases[i].message) == NULL)
			fail_msg("case %zu: %s", i, err.message);
		assert_null(row.data);
		assert_null(row.doc_id);
	}
}

/* Deep nesting is fine for json values (the validator uses no recursion). */
static void test_json_deep(void **state)
{
	(void)state;
	size_t depth = 100000;
	char *text = malloc(2 * depth);
	memset(text, '[', depth);
	memset(text + depth, ']', depth);
	cw_pgoutput_row_t row;
	cw_err_t err = {0};
	assert_int_equal(value_row(text, 2 * depth, 3802, &row, &err), 0);
	assert_int_equal(strlen(row.data), strlen("{\"id\":1,\"v\":}") + 2 * depth);
	cw_pgoutput_row_clear(&row);
	text[2 * depth - 1] = '}';
	assert_int_equal(value_row(text, 2 * depth, 3802, &row, &err), CW_EPROTO);
	free(text);
}

/* ---- keys ---------------------------------------------------------------- */

static void test_keys(void **state)
{
	(void)state;
	size_t count;
	cw_pgoutput_msg_t msg;
	cw_pgoutput_row_t row;
	cw_err_t err = {0};
	cw_pgoutput_t *dec = cw_pgoutput_new();
	const pgo_vector_t *vec = scenario("full_identity", &count);
	assert_decodes(dec, &vec[1], &msg);
	assert_decodes(dec, &vec[2], &msg);
	/* FULL marks every column as key; without the primary key: an error. */
	assert_int_equal(cw_pgoutput_row_change(dec, &msg, &row, &err), CW_EINVAL);
	assert_string_equal(err.message,
		"relation \"public.audit\" has REPLICA IDENTITY FULL and no primary key was given");
	const char *wrong[] = {"nope"};
	assert_int_equal(cw_pgoutput_set_primary_key(dec, "public", "audit", wrong, 1, NULL), 0);
	assert_int_equal(cw_pgoutput_row_change(dec, &msg, &row, &err), CW_EINVAL);
	assert_string_equal(err.message, "primary key column \"nope\" of \"public.audit\" is not published");
	const char *both[] = {"payload", "id"};
	assert_int_equal(cw_pgoutput_set_primary_key(dec, "public", "audit", both, 2, NULL), 0);
	assert_int_equal(cw_pgoutput_row_change(dec, &msg, &row, &err), 0);
	assert_string_equal(row.doc_id, "[\"first\",7]");
	cw_pgoutput_row_clear(&row);
	const char *const *pk;
	assert_int_equal(cw_pgoutput_primary_key(dec, "public", "audit", &pk), 2);
	assert_string_equal(pk[0], "payload");
	assert_int_equal(cw_pgoutput_primary_key(dec, "public", "other", &pk), 0);
	assert_int_equal(cw_pgoutput_set_primary_key(dec, "public", "audit", both, 0, &err), CW_EINVAL);

	/* Not a row message. */
	assert_decodes(dec, &vec[0], &msg);
	assert_int_equal(cw_pgoutput_row_change(dec, &msg, &row, &err), CW_EINVAL);
	assert_string_equal(err.message, "pgoutput Begin message: not a row message");

	/* A null key value. */
	cw_buf_t b = CW_BUF_INIT;
	build_relation(&b, 25);
	assert_int_equal(cw_pgoutput_decode(dec, (const uint8_t *)b.data, b.len, &msg, &err), 0);
	build_insert(&b, NULL, 0);
	b.data[8] = 'n';
	b.len = 9;
	put_u8(&b, 'n');
	assert_int_equal(cw_pgoutput_decode(dec, (const uint8_t *)b.data, b.len, &msg, &err), 0);
	assert_int_equal(cw_pgoutput_row_change(dec, &msg, &row, &err), CW_EPROTO);
	assert_string_equal(err.message,
		"pgoutput Insert message: column \"id\" of \"public.t\": key value is null at offset 8");
	b.data[8] = 'u';
	assert_int_equal(cw_pgoutput_decode(dec, (const uint8_t *)b.data, b.len, &msg, &err), 0);
	assert_int_equal(cw_pgoutput_row_change(dec, &msg, &row, &err), CW_EPROTO);
	assert_non_null(strstr(err.message, "key value is an unchanged TOAST value"));
	cw_buf_free(&b);
	cw_pgoutput_free(dec);
}

/* ---- malformed input ---------------------------------------------------- */

/* Every message of every scenario, cut at every length and with one byte
 * more, fails with an error naming the message and an offset; the decoder
 * then still decodes the whole message. */
static void test_truncated(void **state)
{
	(void)state;
	uint8_t longer[4096];
	for (size_t s = 0; s < sizeof pgo_scenarios / sizeof pgo_scenarios[0]; s++) {
		cw_pgoutput_t *dec = cw_pgoutput_new();
		for (size_t i = 0; i < pgo_scenarios[s].count; i++) {
			const pgo_vector_t *vec = &pgo_scenarios[s].messages[i];
			cw_pgoutput_msg_t msg;
			for (size_t len = 0; len < vec->len; len++) {
				cw_err_t err = {0};
				int rc = cw_pgoutput_decode(dec, vec->bytes, len, &msg, &err);
				if (rc != CW_EPROTO)
					fail_msg("%s[%zu] cut at %zu: %d", pgo_scenarios[s].name, i, len, rc);
				assert_int_equal(strncmp(err.message, "pgoutput ", 9), 0);
				assert_non_null(strstr(err.message, " at offset "));
				assert_int_equal(msg.kind, 0);
			}
			assert_true(vec->len < sizeof longer);
			memcpy(longer, vec->bytes, vec->len);
			longer[vec->len] = 0;
			cw_err_t err = {0};
			assert_int_equal(cw_pgoutput_decode(dec, longer, vec->len + 1, &msg, &err), CW_EPROTO);
			assert_non_null(strstr(err.message, "1 unexpected trailing bytes"));
			assert_decodes(dec, vec, &msg);
		}
		cw_pgoutput_free(dec);
	}
}

static void test_error_messages(void **state)
{
	(void)state;
	size_t count;
	cw_pgoutput_t *dec = cw_pgoutput_new();
	cw_pgoutput_msg_t msg;
	cw_err_t err = {0};
	const pgo_vector_t *vec = scenario("insert_items", &count);
	assert_int_equal(decode(dec, &vec[2], &msg, &err), CW_EPROTO);
	assert_int_equal(err.code, CW_EPROTO);
	assert_string_equal(err.domain, "pgoutput");
	const uint8_t *relid = vec[2].bytes + 1;
	char want[128];
	snprintf(want, sizeof want, "pgoutput Insert message: unknown relation id %u at offset 1",
		(unsigned)relid[0] << 24 | (unsigned)relid[1] << 16 | (unsigned)relid[2] << 8 | relid[3]);
	assert_string_equal(err.message, want);
	assert_decodes(dec, &vec[1], &msg);
	assert_int_equal(cw_pgoutput_decode(dec, vec[2].bytes, 17, &msg, &err), CW_EPROTO);
	assert_string_equal(err.message, "pgoutput Insert message: truncated tuple at offset 15");
	assert_int_equal(cw_pgoutput_decode(dec, vec[1].bytes, 8, &msg, &err), CW_EPROTO);
	assert_string_equal(err.message, "pgoutput Relation message: unterminated namespace at offset 5");
	assert_int_equal(cw_pgoutput_decode(dec, NULL, 0, &msg, &err), CW_EPROTO);
	assert_string_equal(err.message, "pgoutput message: empty message at offset 0");
	assert_int_equal(cw_pgoutput_decode(dec, (const uint8_t *)"b", 1, &msg, &err), CW_EPROTO);
	assert_string_equal(err.message, "pgoutput message: unknown message type 0x62 at offset 0");

	/* Hand-made: binary values, unknown kinds, bad replica identity, too many columns. */
	cw_buf_t b = CW_BUF_INIT;
	build_insert(&b, "x", 1);
	b.data[14] = 'b';
	assert_int_equal(cw_pgoutput_decode(dec, (const uint8_t *)b.data, b.len, &msg, &err), CW_EPROTO);
	build_relation(&b, 25);
	assert_int_equal(cw_pgoutput_decode(dec, (const uint8_t *)b.data, b.len, &msg, &err), 0);
	build_insert(&b, "x", 1);
	b.data[14] = 'b';
	assert_int_equal(cw_pgoutput_decode(dec, (const uint8_t *)b.data, b.len, &msg, &err), CW_EPROTO);
	assert_string_equal(err.message,
		"pgoutput Insert message: binary value of column \"v\" is not supported at offset 14");
	b.data[14] = 'z';
	assert_int_equal(cw_pgoutput_decode(dec, (const uint8_t *)b.data, b.len, &msg, &err), CW_EPROTO);
	assert_string_equal(err.message,
		"pgoutput Insert message: unknown kind 0x7a of column \"v\" at offset 14");
	b.data[5] = 'K';
	assert_int_equal(cw_pgoutput_decode(dec, (const uint8_t *)b.data, b.len, &msg, &err), CW_EPROTO);
	assert_string_equal(err.message, "pgoutput Insert message: unexpected tuple marker 0x4b at offset 5");
	build_relation(&b, 25);
	b.data[14] = 'x';
	assert_int_equal(cw_pgoutput_decode(dec, (const uint8_t *)b.data, b.len, &msg, &err), CW_EPROTO);
	assert_string_equal(err.message,
		"pgoutput Relation message: unknown replica identity 0x78 at offset 14");
	build_relation(&b, 25);
	b.data[15] = 0x06, b.data[16] = 0x81;
	assert_int_equal(cw_pgoutput_decode(dec, (const uint8_t *)b.data, b.len, &msg, &err), CW_EPROTO);
	assert_string_equal(err.message,
		"pgoutput Relation message: 1665 columns exceed the limit of 1664 at offset 15");
	build_relation_named(&b, 25, "id");
	assert_int_equal(cw_pgoutput_decode(dec, (const uint8_t *)b.data, b.len, &msg, &err), CW_EPROTO);
	assert_string_equal(err.message, "pgoutput Relation message: duplicate column \"id\" at offset 30");
	/* A failed Relation leaves the cached one in place. */
	assert_int_equal(cw_pgoutput_relation(dec, 9000)->columns[1].name[0], 'v');
	cw_buf_free(&b);
	cw_pgoutput_free(dec);
}

/* Random byte flips over every message, decoded in stream order: results
 * are either a message or an error, never a crash (run under ASan). */
static void test_byte_flips(void **state)
{
	(void)state;
	uint64_t rng = 0x9e3779b97f4a7c15u;
	uint8_t copy[4096];
	size_t failures = 0, decoded = 0;
	for (int round = 0; round < 40; round++) {
		for (size_t s = 0; s < sizeof pgo_scenarios / sizeof pgo_scenarios[0]; s++) {
			cw_pgoutput_t *dec = cw_pgoutput_new();
			const char *pk[] = {"id"};
			cw_pgoutput_set_primary_key(dec, "public", "audit", pk, 1, NULL);
			for (size_t i = 0; i < pgo_scenarios[s].count; i++) {
				const pgo_vector_t *vec = &pgo_scenarios[s].messages[i];
				memcpy(copy, vec->bytes, vec->len);
				for (int flips = 0; flips < 1 + round % 3; flips++) {
					rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
					copy[(rng >> 8) % vec->len] ^= (uint8_t)(1u << (rng % 8));
				}
				cw_pgoutput_msg_t msg;
				cw_pgoutput_row_t row;
				cw_err_t err = {0};
				int rc = cw_pgoutput_decode(dec, copy, vec->len, &msg, &err);
				if (rc != 0) {
					assert_int_equal(rc, CW_EPROTO);
					assert_true(err.message[0] != '\0');
					failures++;
					continue;
				}
				decoded++;
				rc = cw_pgoutput_row_change(dec, &msg, &row, &err);
				assert_true(rc == 0 || rc == CW_EPROTO || rc == CW_EINVAL);
				cw_pgoutput_row_clear(&row);
			}
			cw_pgoutput_free(dec);
		}
	}
	/* Both outcomes happen: the flips reach values as well as structure. */
	assert_true(failures > 100);
	assert_true(decoded > 100);
}

/* ---- replication envelope ----------------------------------------------- */

static void test_copydata(void **state)
{
	(void)state;
	static const uint8_t xlog[] = {
		'w', 0, 0, 0, 0, 0x01, 0x55, 0x3d, 0x30, 0, 0, 0, 0, 0x01, 0x55, 0x3d, 0x60,
		0, 0x02, 0xb7, 0x3c, 0xa8, 0x8f, 0x14, 0x00, 'E',
	};
	cw_pgoutput_copydata_t cd;
	cw_err_t err = {0};
	assert_int_equal(cw_pgoutput_copydata_parse(xlog, sizeof xlog, &cd, &err), 0);
	assert_int_equal(cd.kind, 'w');
	assert_int_equal(cd.wal_start, 0x01553d30);
	assert_int_equal(cd.wal_end, 0x01553d60);
	assert_int_equal(cd.send_time_us, 0x0002b73ca88f1400 + CW_PGOUTPUT_EPOCH_OFFSET_US);
	assert_int_equal(cd.data_len, 1);
	assert_ptr_equal(cd.data, xlog + 25);
	assert_int_equal(cw_pgoutput_copydata_parse(xlog, 24, &cd, &err), CW_EPROTO);
	assert_string_equal(err.message,
		"replication XLogData message: truncated send time at offset 17");

	static const uint8_t keepalive[] = {
		'k', 0, 0, 0, 0, 0x01, 0x55, 0x3d, 0x60, 0, 0x02, 0xb7, 0x3c, 0xa8, 0x8f, 0x14, 0x00, 1,
	};
	assert_int_equal(cw_pgoutput_copydata_parse(keepalive, sizeof keepalive, &cd, &err), 0);
	assert_int_equal(cd.kind, 'k');
	assert_int_equal(cd.wal_end, 0x01553d60);
	assert_true(cd.reply_requested);
	assert_null(cd.data);
	for (size_t len = 0; len < sizeof keepalive; len++)
		assert_int_equal(cw_pgoutput_copydata_parse(keepalive, len, &cd, &err), CW_EPROTO);
	uint8_t longer[sizeof keepalive + 1] = {0};
	memcpy(longer, keepalive, sizeof keepalive);
	assert_int_equal(cw_pgoutput_copydata_parse(longer, sizeof longer, &cd, &err), CW_EPROTO);
	assert_int_equal(cw_pgoutput_copydata_parse((const uint8_t *)"x", 1, &cd, &err), CW_EPROTO);
	assert_string_equal(err.message, "replication message: unknown message type 0x78 at offset 0");

	uint8_t status[CW_PGOUTPUT_STATUS_LEN];
	static const uint8_t want[CW_PGOUTPUT_STATUS_LEN] = {
		'r', 0, 0, 0, 0, 0x01, 0x55, 0x3d, 0x60, 0, 0, 0, 0, 0x01, 0x55, 0x3d, 0x30,
		0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0x02, 0xb7, 0x3c, 0xa8, 0x8f, 0x14, 0x00, 1,
	};
	assert_int_equal(cw_pgoutput_status_build(status, 0x01553d60, 0x01553d30, 0x10,
		0x0002b73ca88f1400 + CW_PGOUTPUT_EPOCH_OFFSET_US, true), CW_PGOUTPUT_STATUS_LEN);
	assert_memory_equal(status, want, sizeof want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scenarios),
		cmocka_unit_test(test_relation_columns),
		cmocka_unit_test(test_relation_refreshed),
		cmocka_unit_test(test_type_truncate_message_origin),
		cmocka_unit_test(test_streaming),
		cmocka_unit_test(test_stream_state),
		cmocka_unit_test(test_value_mapping),
		cmocka_unit_test(test_value_errors),
		cmocka_unit_test(test_json_deep),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_error_messages),
		cmocka_unit_test(test_byte_flips),
		cmocka_unit_test(test_copydata),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
