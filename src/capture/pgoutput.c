/*
 * This file contains the pgoutput decoder declared in pgoutput.h: a
 * bounds-checked reader, the relation cache, one decode function per message
 * type and the replication CopyData envelope. pgoutput_row.c turns decoded
 * rows into a change's data and doc_id.
 */
#include "capture/pgoutput.h"

#include "core/json.h"
#include "core/mem.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DOMAIN "pgoutput"

typedef struct pk_hint {
	char *nspname;
	char *relname;
	char **columns;
	size_t ncolumns;
} pk_hint_t;

struct cw_pgoutput {
	cw_pgoutput_rel_t **slots;   /* open addressing by relid; nslots is a power of 2 */
	size_t nslots;
	size_t nrels;
	bool in_stream;              /* between Stream Start and Stream Stop */
	cw_pgoutput_value_t *old_values; /* CW_PGOUTPUT_MAX_COLUMNS each */
	cw_pgoutput_value_t *new_values;
	uint32_t *relids;            /* Truncate's relids */
	size_t relids_cap;
	pk_hint_t *hints;
	size_t nhints;
};

/* Reads one message; every read checks the bounds first. */
typedef struct reader {
	const uint8_t *bytes;
	size_t len;
	size_t pos;
	const char *proto;           /* "pgoutput" or "replication", for messages */
	const char *msg_name;        /* "Insert" */
	cw_err_t *err;
} reader_t;

static int fail(const reader_t *r, size_t offset, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(const reader_t *r, size_t offset, const char *fmt, ...)
{
	char what[CW_ERR_MESSAGE_LEN];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	return cw_err_set(r->err, CW_EPROTO, DOMAIN, "%s %s message: %s at offset %zu",
		r->proto, r->msg_name, what, offset);
}

static int need(reader_t *r, size_t n, const char *what)
{
	if (r->len - r->pos < n)
		return fail(r, r->pos, "truncated %s", what);
	return 0;
}

static int read_u8(reader_t *r, const char *what, uint8_t *v)
{
	if (need(r, 1, what))
		return CW_EPROTO;
	*v = r->bytes[r->pos++];
	return 0;
}

static uint64_t read_be(reader_t *r, size_t n)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v = v << 8 | r->bytes[r->pos++];
	return v;
}

static int read_u16(reader_t *r, const char *what, uint16_t *v)
{
	if (need(r, 2, what))
		return CW_EPROTO;
	*v = (uint16_t)read_be(r, 2);
	return 0;
}

static int read_u32(reader_t *r, const char *what, uint32_t *v)
{
	if (need(r, 4, what))
		return CW_EPROTO;
	*v = (uint32_t)read_be(r, 4);
	return 0;
}

static int read_u64(reader_t *r, const char *what, uint64_t *v)
{
	if (need(r, 8, what))
		return CW_EPROTO;
	*v = read_be(r, 8);
	return 0;
}

/* A NUL-terminated string; *s points into the message bytes. */
static int read_str(reader_t *r, const char *what, const char **s)
{
	const uint8_t *nul = memchr(r->bytes + r->pos, '\0', r->len - r->pos);
	if (nul == NULL)
		return fail(r, r->pos, "unterminated %s", what);
	*s = (const char *)r->bytes + r->pos;
	r->pos = (size_t)(nul - r->bytes) + 1;
	return 0;
}

/* A PostgreSQL timestamp (microseconds since 2000) as Unix microseconds. */
static int read_time(reader_t *r, const char *what, int64_t *unix_us)
{
	size_t at = r->pos;
	uint64_t raw;
	if (read_u64(r, what, &raw))
		return CW_EPROTO;
	int64_t pg_us = (int64_t)raw;
	if (pg_us > INT64_MAX - CW_PGOUTPUT_EPOCH_OFFSET_US)
		return fail(r, at, "%s out of range", what);
	*unix_us = pg_us + CW_PGOUTPUT_EPOCH_OFFSET_US;
	return 0;
}

static int expect_end(const reader_t *r)
{
	if (r->pos != r->len)
		return fail(r, r->pos, "%zu unexpected trailing bytes", r->len - r->pos);
	return 0;
}

/* ---- relation cache ---------------------------------------------------- */

static void rel_free(cw_pgoutput_rel_t *rel)
{
	if (rel == NULL)
		return;
	for (uint16_t i = 0; i < rel->ncolumns; i++)
		free(rel->columns[i].name);
	free(rel->columns);
	free(rel->nspname);
	free(rel->relname);
	free(rel);
}

static size_t slot_of(const cw_pgoutput_t *dec, uint32_t relid)
{
	size_t mask = dec->nslots - 1;
	size_t i = (size_t)(relid * UINT32_C(2654435761)) & mask;
	while (dec->slots[i] != NULL && dec->slots[i]->relid != relid)
		i = (i + 1) & mask;
	return i;
}

const cw_pgoutput_rel_t *cw_pgoutput_relation(const cw_pgoutput_t *dec, uint32_t relid)
{
	return dec->slots[slot_of(dec, relid)];
}

/* Takes over rel, replacing the cached relation of its relid. */
static void cache_put(cw_pgoutput_t *dec, cw_pgoutput_rel_t *rel)
{
	if ((dec->nrels + 1) * 2 > dec->nslots) {
		cw_pgoutput_rel_t **old = dec->slots;
		size_t nold = dec->nslots;
		dec->nslots *= 2;
		dec->slots = cw_xcalloc(dec->nslots, sizeof *dec->slots);
		for (size_t i = 0; i < nold; i++)
			if (old[i] != NULL)
				dec->slots[slot_of(dec, old[i]->relid)] = old[i];
		free(old);
	}
	size_t i = slot_of(dec, rel->relid);
	if (dec->slots[i] == NULL)
		dec->nrels++;
	rel_free(dec->slots[i]);
	dec->slots[i] = rel;
}

cw_pgoutput_t *cw_pgoutput_new(void)
{
	cw_pgoutput_t *dec = cw_xcalloc(1, sizeof *dec);
	dec->nslots = 16;
	dec->slots = cw_xcalloc(dec->nslots, sizeof *dec->slots);
	dec->old_values = cw_xcalloc(CW_PGOUTPUT_MAX_COLUMNS, sizeof *dec->old_values);
	dec->new_values = cw_xcalloc(CW_PGOUTPUT_MAX_COLUMNS, sizeof *dec->new_values);
	return dec;
}

static void hint_clear(pk_hint_t *hint)
{
	for (size_t i = 0; i < hint->ncolumns; i++)
		free(hint->columns[i]);
	free(hint->columns);
	free(hint->nspname);
	free(hint->relname);
}

void cw_pgoutput_free(cw_pgoutput_t *dec)
{
	if (dec == NULL)
		return;
	for (size_t i = 0; i < dec->nslots; i++)
		rel_free(dec->slots[i]);
	free(dec->slots);
	for (size_t i = 0; i < dec->nhints; i++)
		hint_clear(&dec->hints[i]);
	free(dec->hints);
	free(dec->relids);
	free(dec->old_values);
	free(dec->new_values);
	free(dec);
}

static pk_hint_t *hint_find(const cw_pgoutput_t *dec, const char *nspname, const char *relname)
{
	for (size_t i = 0; i < dec->nhints; i++)
		if (strcmp(dec->hints[i].nspname, nspname) == 0 &&
		    strcmp(dec->hints[i].relname, relname) == 0)
			return &dec->hints[i];
	return NULL;
}

int cw_pgoutput_set_primary_key(cw_pgoutput_t *dec, const char *nspname,
	const char *relname, const char *const *columns, size_t ncolumns, cw_err_t *err)
{
	if (ncolumns == 0 || ncolumns > CW_PGOUTPUT_MAX_COLUMNS)
		return cw_err_set(err, CW_EINVAL, DOMAIN,
			"invalid primary key of \"%s.%s\": %zu columns", nspname, relname, ncolumns);
	pk_hint_t *hint = hint_find(dec, nspname, relname);
	if (hint != NULL) {
		hint_clear(hint);
	} else {
		dec->hints = cw_xrealloc(dec->hints, (dec->nhints + 1) * sizeof *dec->hints);
		hint = &dec->hints[dec->nhints++];
	}
	hint->nspname = cw_xstrdup(nspname);
	hint->relname = cw_xstrdup(relname);
	hint->columns = cw_xcalloc(ncolumns, sizeof *hint->columns);
	for (size_t i = 0; i < ncolumns; i++)
		hint->columns[i] = cw_xstrdup(columns[i]);
	hint->ncolumns = ncolumns;
	return 0;
}

size_t cw_pgoutput_primary_key(const cw_pgoutput_t *dec, const char *nspname,
	const char *relname, const char *const **columns)
{
	const pk_hint_t *hint = hint_find(dec, nspname, relname);
	*columns = hint != NULL ? (const char *const *)hint->columns : NULL;
	return hint != NULL ? hint->ncolumns : 0;
}

/* ---- messages ----------------------------------------------------------- */

static int read_stream_xid(cw_pgoutput_t *dec, reader_t *r, cw_pgoutput_msg_t *out)
{
	if (!dec->in_stream)
		return 0;
	return read_u32(r, "xid", &out->xid);
}

static int not_in_stream(const cw_pgoutput_t *dec, const reader_t *r)
{
	if (dec->in_stream)
		return fail(r, 0, "unexpected inside a stream block");
	return 0;
}

static int decode_begin(cw_pgoutput_t *dec, reader_t *r, cw_pgoutput_msg_t *out)
{
	if (not_in_stream(dec, r) || read_u64(r, "final LSN", &out->begin.final_lsn) ||
	    read_time(r, "commit timestamp", &out->begin.commit_time_us) ||
	    read_u32(r, "xid", &out->xid))
		return CW_EPROTO;
	return expect_end(r);
}

/* Commit and Stream Commit share their fields after Stream Commit's xid. */
static int decode_commit(cw_pgoutput_t *dec, reader_t *r, cw_pgoutput_msg_t *out)
{
	if (not_in_stream(dec, r))
		return CW_EPROTO;
	if (out->kind == CW_PGOUTPUT_STREAM_COMMIT && read_u32(r, "xid", &out->xid))
		return CW_EPROTO;
	if (read_u8(r, "flags", &out->commit.flags) ||
	    read_u64(r, "commit LSN", &out->commit.commit_lsn) ||
	    read_u64(r, "end LSN", &out->commit.end_lsn) ||
	    read_time(r, "commit timestamp", &out->commit.commit_time_us))
		return CW_EPROTO;
	return expect_end(r);
}

static int decode_origin(cw_pgoutput_t *dec, reader_t *r, cw_pgoutput_msg_t *out)
{
	if (read_u64(r, "origin LSN", &out->origin.lsn) ||
	    read_str(r, "origin name", &out->origin.name))
		return CW_EPROTO;
	return expect_end(r);
}

static int read_column(reader_t *r, cw_pgoutput_rel_t *rel, uint16_t i)
{
	cw_pgoutput_column_t *col = &rel->columns[i];
	const char *name;
	uint32_t typmod;
	if (read_u8(r, "column flags", &col->flags))
		return CW_EPROTO;
	size_t at = r->pos;
	if (read_str(r, "column name", &name) || read_u32(r, "column type", &col->type_oid) ||
	    read_u32(r, "column type modifier", &typmod))
		return CW_EPROTO;
	col->typmod = (int32_t)typmod;
	size_t len = strlen(name);
	if (len == 0)
		return fail(r, at, "empty column name");
	if (!cw_json_validate_utf8(name, len))
		return fail(r, at, "column name is not valid UTF-8");
	for (uint16_t k = 0; k < i; k++)
		if (strcmp(rel->columns[k].name, name) == 0)
			return fail(r, at, "duplicate column \"%s\"", name);
	col->name = cw_xstrdup(name);
	return 0;
}

static int decode_relation(cw_pgoutput_t *dec, reader_t *r, cw_pgoutput_msg_t *out)
{
	const char *nspname, *relname;
	uint8_t replident;
	uint16_t ncolumns;
	uint32_t relid;
	if (read_stream_xid(dec, r, out) || read_u32(r, "relation id", &relid) ||
	    read_str(r, "namespace", &nspname) || read_str(r, "relation name", &relname) ||
	    read_u8(r, "replica identity", &replident))
		return CW_EPROTO;
	if (strchr("dnfi", replident) == NULL || replident == '\0')
		return fail(r, r->pos - 1, "unknown replica identity 0x%02x", replident);
	size_t at = r->pos;
	if (read_u16(r, "column count", &ncolumns))
		return CW_EPROTO;
	if (ncolumns > CW_PGOUTPUT_MAX_COLUMNS)
		return fail(r, at, "%u columns exceed the limit of %d", ncolumns,
			CW_PGOUTPUT_MAX_COLUMNS);

	int rc = CW_EPROTO;
	cw_pgoutput_rel_t *rel = cw_xcalloc(1, sizeof *rel);
	rel->relid = relid;
	rel->replident = (char)replident;
	rel->nspname = cw_xstrdup(nspname);
	rel->relname = cw_xstrdup(relname);
	rel->columns = cw_xcalloc(ncolumns ? ncolumns : 1, sizeof *rel->columns);
	for (uint16_t i = 0; i < ncolumns; i++) {
		if (read_column(r, rel, i))
			goto cleanup;
		rel->ncolumns = i + 1;
	}
	if (expect_end(r))
		goto cleanup;
	cache_put(dec, rel);
	out->relation = rel;
	rel = NULL;
	rc = 0;
cleanup:
	rel_free(rel);
	return rc;
}

static int decode_type(cw_pgoutput_t *dec, reader_t *r, cw_pgoutput_msg_t *out)
{
	if (read_stream_xid(dec, r, out) || read_u32(r, "type id", &out->type.oid) ||
	    read_str(r, "namespace", &out->type.nspname) ||
	    read_str(r, "type name", &out->type.name))
		return CW_EPROTO;
	return expect_end(r);
}

static int read_tuple(reader_t *r, const cw_pgoutput_rel_t *rel,
	cw_pgoutput_value_t *values, cw_pgoutput_tuple_t *tuple)
{
	size_t at = r->pos;
	uint16_t ncolumns;
	if (read_u16(r, "tuple", &ncolumns))
		return CW_EPROTO;
	if (ncolumns != rel->ncolumns)
		return fail(r, at, "tuple has %u columns but relation \"%s.%s\" has %u",
			ncolumns, rel->nspname, rel->relname, rel->ncolumns);
	for (uint16_t i = 0; i < ncolumns; i++) {
		cw_pgoutput_value_t *value = &values[i];
		uint8_t kind;
		memset(value, 0, sizeof *value);
		value->offset = r->pos;
		if (read_u8(r, "tuple", &kind))
			return CW_EPROTO;
		value->kind = (char)kind;
		if (kind == 'n' || kind == 'u')
			continue;
		if (kind == 'b')
			return fail(r, value->offset, "binary value of column \"%s\" is not supported",
				rel->columns[i].name);
		if (kind != 't')
			return fail(r, value->offset, "unknown kind 0x%02x of column \"%s\"", kind,
				rel->columns[i].name);
		if (read_u32(r, "tuple", &value->len) || need(r, value->len, "tuple"))
			return CW_EPROTO;
		value->text = r->bytes + r->pos;
		r->pos += value->len;
	}
	tuple->ncolumns = ncolumns;
	tuple->values = values;
	return 0;
}

static int read_relid(const cw_pgoutput_t *dec, reader_t *r, const cw_pgoutput_rel_t **rel)
{
	size_t at = r->pos;
	uint32_t relid;
	if (read_u32(r, "relation id", &relid))
		return CW_EPROTO;
	*rel = cw_pgoutput_relation(dec, relid);
	if (*rel == NULL)
		return fail(r, at, "unknown relation id %" PRIu32, relid);
	return 0;
}

/* Insert, Update and Delete: relid, then tuples each after a marker byte. */
static int decode_row(cw_pgoutput_t *dec, reader_t *r, cw_pgoutput_msg_t *out)
{
	const cw_pgoutput_rel_t *rel;
	uint8_t marker;
	if (read_stream_xid(dec, r, out) || read_relid(dec, r, &rel))
		return CW_EPROTO;
	out->row.relation = rel;
	size_t at = r->pos;
	if (read_u8(r, "tuple marker", &marker))
		return CW_EPROTO;
	if ((marker == 'K' || marker == 'O') && out->kind != CW_PGOUTPUT_INSERT) {
		out->row.old_kind = (char)marker;
		if (read_tuple(r, rel, dec->old_values, &out->row.old_tuple))
			return CW_EPROTO;
		if (out->kind == CW_PGOUTPUT_DELETE)
			return expect_end(r);
		at = r->pos;
		if (read_u8(r, "tuple marker", &marker))
			return CW_EPROTO;
	}
	if (marker != 'N' || out->kind == CW_PGOUTPUT_DELETE)
		return fail(r, at, "unexpected tuple marker 0x%02x", marker);
	if (read_tuple(r, rel, dec->new_values, &out->row.new_tuple))
		return CW_EPROTO;
	return expect_end(r);
}

static int decode_truncate(cw_pgoutput_t *dec, reader_t *r, cw_pgoutput_msg_t *out)
{
	uint32_t nrelids;
	if (read_stream_xid(dec, r, out) || read_u32(r, "relation count", &nrelids) ||
	    read_u8(r, "options", &out->truncate.options))
		return CW_EPROTO;
	if (nrelids == 0)
		return fail(r, r->pos - 5, "no relations");
	if ((r->len - r->pos) / 4 < nrelids)
		return fail(r, r->pos, "truncated relation ids");
	if (dec->relids_cap < nrelids) {
		dec->relids = cw_xrealloc(dec->relids, nrelids * sizeof *dec->relids);
		dec->relids_cap = nrelids;
	}
	for (uint32_t i = 0; i < nrelids; i++) {
		const cw_pgoutput_rel_t *rel;
		if (read_relid(dec, r, &rel))
			return CW_EPROTO;
		dec->relids[i] = rel->relid;
	}
	out->truncate.nrelids = nrelids;
	out->truncate.relids = dec->relids;
	return expect_end(r);
}

static int decode_message(cw_pgoutput_t *dec, reader_t *r, cw_pgoutput_msg_t *out)
{
	if (read_stream_xid(dec, r, out) || read_u8(r, "flags", &out->message.flags) ||
	    read_u64(r, "LSN", &out->message.lsn) ||
	    read_str(r, "prefix", &out->message.prefix) ||
	    read_u32(r, "content length", &out->message.content_len) ||
	    need(r, out->message.content_len, "content"))
		return CW_EPROTO;
	out->message.content = r->bytes + r->pos;
	r->pos += out->message.content_len;
	return expect_end(r);
}

static int decode_stream_start(cw_pgoutput_t *dec, reader_t *r, cw_pgoutput_msg_t *out)
{
	uint8_t first;
	if (not_in_stream(dec, r) || read_u32(r, "xid", &out->xid) ||
	    read_u8(r, "first segment", &first) || expect_end(r))
		return CW_EPROTO;
	if (first > 1)
		return fail(r, r->pos - 1, "invalid first segment flag 0x%02x", first);
	out->stream_start.first_segment = first == 1;
	dec->in_stream = true;
	return 0;
}

static int decode_stream_stop(cw_pgoutput_t *dec, reader_t *r, cw_pgoutput_msg_t *out)
{
	if (!dec->in_stream)
		return fail(r, 0, "unexpected outside a stream block");
	if (expect_end(r))
		return CW_EPROTO;
	dec->in_stream = false;
	return 0;
}

static int decode_stream_abort(cw_pgoutput_t *dec, reader_t *r, cw_pgoutput_msg_t *out)
{
	if (not_in_stream(dec, r) || read_u32(r, "xid", &out->xid) ||
	    read_u32(r, "subtransaction xid", &out->stream_abort.subxid))
		return CW_EPROTO;
	return expect_end(r);
}

typedef int (*decode_fn)(cw_pgoutput_t *dec, reader_t *r, cw_pgoutput_msg_t *out);

static const struct {
	cw_pgoutput_kind_t kind;
	const char *name;
	decode_fn decode;
} message_types[] = {
	{CW_PGOUTPUT_BEGIN, "Begin", decode_begin},
	{CW_PGOUTPUT_COMMIT, "Commit", decode_commit},
	{CW_PGOUTPUT_ORIGIN, "Origin", decode_origin},
	{CW_PGOUTPUT_RELATION, "Relation", decode_relation},
	{CW_PGOUTPUT_TYPE, "Type", decode_type},
	{CW_PGOUTPUT_INSERT, "Insert", decode_row},
	{CW_PGOUTPUT_UPDATE, "Update", decode_row},
	{CW_PGOUTPUT_DELETE, "Delete", decode_row},
	{CW_PGOUTPUT_TRUNCATE, "Truncate", decode_truncate},
	{CW_PGOUTPUT_MESSAGE, "Message", decode_message},
	{CW_PGOUTPUT_STREAM_START, "Stream Start", decode_stream_start},
	{CW_PGOUTPUT_STREAM_STOP, "Stream Stop", decode_stream_stop},
	{CW_PGOUTPUT_STREAM_COMMIT, "Stream Commit", decode_commit},
	{CW_PGOUTPUT_STREAM_ABORT, "Stream Abort", decode_stream_abort},
};

#define NMESSAGE_TYPES (sizeof message_types / sizeof message_types[0])

const char *cw_pgoutput_kind_name(cw_pgoutput_kind_t kind)
{
	for (size_t i = 0; i < NMESSAGE_TYPES; i++)
		if (message_types[i].kind == kind)
			return message_types[i].name;
	return "unknown";
}

int cw_pgoutput_decode(cw_pgoutput_t *dec, const uint8_t *bytes, size_t len,
	cw_pgoutput_msg_t *out, cw_err_t *err)
{
	memset(out, 0, sizeof *out);
	if (len == 0)
		return cw_err_set(err, CW_EPROTO, DOMAIN, "pgoutput message: empty message at offset 0");
	for (size_t i = 0; i < NMESSAGE_TYPES; i++) {
		if ((uint8_t)message_types[i].kind != bytes[0])
			continue;
		reader_t r = {bytes, len, 1, "pgoutput", message_types[i].name, err};
		out->kind = message_types[i].kind;
		int rc = message_types[i].decode(dec, &r, out);
		if (rc != 0)
			memset(out, 0, sizeof *out);
		return rc;
	}
	return cw_err_set(err, CW_EPROTO, DOMAIN,
		"pgoutput message: unknown message type 0x%02x at offset 0", bytes[0]);
}

/* ---- replication CopyData envelope -------------------------------------- */

int cw_pgoutput_copydata_parse(const uint8_t *bytes, size_t len,
	cw_pgoutput_copydata_t *out, cw_err_t *err)
{
	memset(out, 0, sizeof *out);
	reader_t r = {bytes, len, 1, "replication", "XLogData", err};
	uint8_t reply;
	if (len == 0)
		return cw_err_set(err, CW_EPROTO, DOMAIN, "replication message: empty message at offset 0");
	out->kind = (char)bytes[0];
	if (out->kind == 'w') {
		if (read_u64(&r, "WAL start", &out->wal_start) ||
		    read_u64(&r, "WAL end", &out->wal_end) ||
		    read_time(&r, "send time", &out->send_time_us))
			return CW_EPROTO;
		out->data = bytes + r.pos;
		out->data_len = len - r.pos;
		return 0;
	}
	if (out->kind != 'k')
		return cw_err_set(err, CW_EPROTO, DOMAIN,
			"replication message: unknown message type 0x%02x at offset 0", bytes[0]);
	r.msg_name = "keepalive";
	if (read_u64(&r, "WAL end", &out->wal_end) ||
	    read_time(&r, "send time", &out->send_time_us) ||
	    read_u8(&r, "reply flag", &reply) || expect_end(&r))
		return CW_EPROTO;
	out->reply_requested = reply != 0;
	return 0;
}

static void put_be(uint8_t *out, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

size_t cw_pgoutput_status_build(uint8_t out[CW_PGOUTPUT_STATUS_LEN], uint64_t written_lsn,
	uint64_t flushed_lsn, uint64_t applied_lsn, int64_t now_us, bool reply_requested)
{
	out[0] = 'r';
	put_be(out + 1, written_lsn, 8);
	put_be(out + 9, flushed_lsn, 8);
	put_be(out + 17, applied_lsn, 8);
	put_be(out + 25, (uint64_t)now_us - (uint64_t)CW_PGOUTPUT_EPOCH_OFFSET_US, 8);
	out[33] = reply_requested ? 1 : 0;
	return CW_PGOUTPUT_STATUS_LEN;
}
