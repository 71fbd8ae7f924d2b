/*
 * This file contains the event half of the binlog decoder declared in
 * mysql_binlog.h: the reader, checksums, the format description, the
 * table map cache with its optional metadata, and one decode function per
 * event type. mysql_binlog_row.c walks row images, mysql_binlog_value.c
 * reads column values.
 */
#include "capture/mysql_binlog_internal.h"

#include "core/mem.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

/* Header flag: the binlog file is being written (FORMAT_DESCRIPTION only). */
#define LOG_EVENT_BINLOG_IN_USE_F 0x01
/* Header flag: the server made the event up (a ROTATE at the start of a dump). */
#define LOG_EVENT_ARTIFICIAL_F 0x20
/* MariaDB GTID flags. */
#define FL_STANDALONE 0x01
#define FL_GROUP_COMMIT_ID 0x02
/* ---- reader --------------------------------------------------------------- */

int cw_binlog_fail(const cw_binlog_reader_t *r, size_t offset, const char *fmt, ...)
{
	char what[CW_ERR_MESSAGE_LEN];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	if (r->name != NULL)
		return cw_err_set(r->err, CW_EPROTO, CW_BINLOG_DOMAIN,
			"binlog %s \"%s\": %s at offset %zu", r->what, r->name, what, offset);
	return cw_err_set(r->err, CW_EPROTO, CW_BINLOG_DOMAIN, "binlog %s: %s at offset %zu",
		r->what, what, offset);
}

int cw_binlog_need(cw_binlog_reader_t *r, size_t n, const char *what)
{
	if (r->pos > r->len || r->len - r->pos < n)
		return cw_binlog_fail(r, r->pos, "truncated %s", what);
	return 0;
}

uint64_t cw_binlog_le(const uint8_t *p, size_t n)
{
	uint64_t v = 0;
	for (size_t i = n; i > 0; i--)
		v = v << 8 | p[i - 1];
	return v;
}

uint64_t cw_binlog_be(const uint8_t *p, size_t n)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

int cw_binlog_read_uint(cw_binlog_reader_t *r, size_t n, const char *what, uint64_t *v)
{
	if (cw_binlog_need(r, n, what))
		return CW_EPROTO;
	*v = cw_binlog_le(r->bytes + r->pos, n);
	r->pos += n;
	return 0;
}

int cw_binlog_read_lenenc(cw_binlog_reader_t *r, const char *what, uint64_t *v)
{
	uint64_t first;
	size_t at = r->pos;
	if (cw_binlog_read_uint(r, 1, what, &first))
		return CW_EPROTO;
	if (first < 0xfb) {
		*v = first;
		return 0;
	}
	size_t n = first == 0xfc ? 2 : first == 0xfd ? 3 : first == 0xfe ? 8 : 0;
	if (n == 0)
		return cw_binlog_fail(r, at, "invalid length-encoded %s", what);
	return cw_binlog_read_uint(r, n, what, v);
}

/* A count that must fit what is left of the event (each item >= min_size bytes). */
int cw_binlog_read_count(cw_binlog_reader_t *r, const char *what, size_t min_size, uint32_t limit,
	uint32_t *count)
{
	uint64_t v;
	size_t at = r->pos;
	if (cw_binlog_read_lenenc(r, what, &v))
		return CW_EPROTO;
	if (v > limit || v * min_size > r->len - r->pos)
		return cw_binlog_fail(r, at, "%s %" PRIu64 " out of range", what, v);
	*count = (uint32_t)v;
	return 0;
}

/* ---- checksums ---------------------------------------------------------- */

/* Continues crc (0 to start) over p[0..len): zlib's CRC-32 (word at a time, not byte). */
static uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t len)
{
	return (uint32_t)crc32_z(crc, p, len);
}

static uint32_t crc32_of(const uint8_t *p, size_t len)
{
	return crc32_update(0, p, len);
}

/* ---- decoder and table cache --------------------------------------------- */

static void set_default_format(cw_binlog_t *dec)
{
	/* Binlog version 4 as MySQL 5.6+ and MariaDB 10 write it. */
	static const struct { uint8_t type, len; } lengths[] = {
		{CW_BINLOG_EV_QUERY, 13}, {CW_BINLOG_EV_ROTATE, 8},
		{CW_BINLOG_EV_FORMAT_DESCRIPTION, 84}, {CW_BINLOG_EV_TABLE_MAP, 8},
		{CW_BINLOG_EV_WRITE_ROWS_V1, 8}, {CW_BINLOG_EV_UPDATE_ROWS_V1, 8},
		{CW_BINLOG_EV_DELETE_ROWS_V1, 8}, {CW_BINLOG_EV_WRITE_ROWS_V2, 10},
		{CW_BINLOG_EV_UPDATE_ROWS_V2, 10}, {CW_BINLOG_EV_DELETE_ROWS_V2, 10},
		{CW_BINLOG_EV_MYSQL_GTID, 42}, {CW_BINLOG_EV_MARIADB_GTID, 19},
		{CW_BINLOG_EV_MARIADB_GTID_LIST, 4},
	};
	memset(dec->post_header, 0, sizeof dec->post_header);
	for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++)
		dec->post_header[lengths[i].type] = lengths[i].len;
	dec->binlog_version = 4;
	dec->checksum_alg = CW_BINLOG_CHECKSUM_CRC32;
}

cw_binlog_t *cw_binlog_new(void)
{
	cw_binlog_t *dec = cw_xcalloc(1, sizeof *dec);
	set_default_format(dec);
	return dec;
}

void cw_binlog_free(cw_binlog_t *dec)
{
	if (dec == NULL)
		return;
	for (size_t i = 0; i < dec->ntables; i++) {
		cw_binlog_table_free(dec->tables[i].table);
		free(dec->tables[i].body);
	}
	free(dec->tables);
	for (size_t i = 0; i < dec->nhints; i++)
		cw_binlog_hint_clear(&dec->hints[i]);
	free(dec->hints);
	free(dec->gtids);
	free(dec->truncate_schema);
	free(dec->truncate_table);
	cw_binlog_images_free(dec->images);
	free(dec->inflated);
	free(dec);
}

void cw_binlog_verify_checksums(cw_binlog_t *dec, bool verify)
{
	dec->skip_verify = !verify;
}

uint8_t cw_binlog_checksum_alg(const cw_binlog_t *dec)
{
	return dec->checksum_alg;
}

/* ---- FORMAT_DESCRIPTION, ROTATE, GTID, XID -------------------------------- */

/* Whether a server of this version writes the checksum algorithm byte (5.6.1+, MariaDB). */
static bool checksum_aware(const char *version)
{
	unsigned major = 0, minor = 0, patch = 0;
	if (strstr(version, "MariaDB") != NULL)
		return true;
	sscanf(version, "%u.%u.%u", &major, &minor, &patch);
	return major > 5 || (major == 5 && (minor > 6 || (minor == 6 && patch >= 1)));
}

static int decode_fde(cw_binlog_t *dec, cw_binlog_reader_t *r, cw_binlog_event_t *out,
	size_t full_len)
{
	uint64_t version, header_len;
	if (cw_binlog_read_uint(r, 2, "binlog version", &version) ||
	    cw_binlog_need(r, 50 + 4 + 1, "server version"))
		return CW_EPROTO;
	memcpy(out->fde.server_version, r->bytes + r->pos, 50);
	out->fde.server_version[50] = '\0';
	r->pos += 50 + 4;
	header_len = r->bytes[r->pos++];
	if (version != 4 || header_len != CW_BINLOG_HEADER_LEN)
		return cw_binlog_fail(r, 0, "unsupported binlog version %" PRIu64 " (header %" PRIu64 ")",
			version, header_len);
	/* A checksum-aware server ends the event with the algorithm byte and
	 * 4 checksum bytes, present (unverified) even when the algorithm is OFF. */
	size_t end = full_len;
	uint8_t alg = CW_BINLOG_CHECKSUM_OFF;
	if (checksum_aware(out->fde.server_version)) {
		if (full_len < r->pos + 5)
			return cw_binlog_fail(r, r->pos, "truncated checksum algorithm");
		end = full_len - 5;
		alg = r->bytes[end];
		if (alg != CW_BINLOG_CHECKSUM_OFF && alg != CW_BINLOG_CHECKSUM_CRC32)
			return cw_binlog_fail(r, end, "unknown checksum algorithm %u", alg);
	}
	if (alg == CW_BINLOG_CHECKSUM_CRC32 && !dec->skip_verify) {
		/* A binlog file still being written has the in-use flag set in its
		 * FORMAT_DESCRIPTION after the checksum was computed without it. */
		uint8_t head[CW_BINLOG_HEADER_LEN];
		memcpy(head, r->bytes, sizeof head);
		head[17] &= (uint8_t)~LOG_EVENT_BINLOG_IN_USE_F;
		uint32_t stored = (uint32_t)cw_binlog_le(r->bytes + full_len - 4, 4);
		if (crc32_update(crc32_update(0, head, sizeof head), r->bytes + sizeof head,
			full_len - 4 - sizeof head) != stored)
			return cw_binlog_fail(r, full_len - 4, "checksum mismatch");
	}
	set_default_format(dec);
	for (size_t i = r->pos; i < end; i++)
		dec->post_header[i - r->pos + 1] = r->bytes[i];
	dec->binlog_version = (uint16_t)version;
	dec->checksum_alg = alg;
	out->fde.binlog_version = (uint16_t)version;
	out->fde.checksum_alg = alg;
	return 0;
}

static int decode_rotate(cw_binlog_reader_t *r, cw_binlog_event_t *out)
{
	if (cw_binlog_read_uint(r, 8, "position", &out->rotate.position))
		return CW_EPROTO;
	out->rotate.file = (const char *)r->bytes + r->pos;
	out->rotate.file_len = r->len - r->pos;
	if (out->rotate.file_len == 0 || memchr(out->rotate.file, '\0', out->rotate.file_len))
		return cw_binlog_fail(r, r->pos, "invalid file name");
	r->pos = r->len;
	return 0;
}

static int decode_mariadb_gtid(cw_binlog_reader_t *r, cw_binlog_event_t *out)
{
	uint64_t seq, domain, flags;
	if (cw_binlog_read_uint(r, 8, "sequence number", &seq) ||
	    cw_binlog_read_uint(r, 4, "domain id", &domain) ||
	    cw_binlog_read_uint(r, 1, "flags", &flags))
		return CW_EPROTO;
	memset(&out->gtid, 0, sizeof out->gtid);
	out->gtid.gtid.domain_id = (uint32_t)domain;
	out->gtid.gtid.server_id = out->server_id;
	out->gtid.gtid.seq = seq;
	out->gtid.standalone = (flags & FL_STANDALONE) != 0;
	r->pos = r->len;   /* commit id, XA data: nothing the capture needs */
	return 0;
}

static int decode_mysql_gtid(cw_binlog_reader_t *r, cw_binlog_event_t *out)
{
	uint64_t flags, gno;
	if (cw_binlog_read_uint(r, 1, "flags", &flags) || cw_binlog_need(r, 16, "source id"))
		return CW_EPROTO;
	memset(&out->gtid, 0, sizeof out->gtid);
	out->gtid.gtid.mysql = true;
	memcpy(out->gtid.gtid.uuid, r->bytes + r->pos, 16);
	r->pos += 16;
	if (cw_binlog_read_uint(r, 8, "gno", &gno))
		return CW_EPROTO;
	out->gtid.gtid.gno = (int64_t)gno;
	r->pos = r->len;
	return 0;
}

static int decode_gtid_list(cw_binlog_t *dec, cw_binlog_reader_t *r, cw_binlog_event_t *out)
{
	uint64_t count;
	if (cw_binlog_read_uint(r, 4, "count", &count))
		return CW_EPROTO;
	count &= 0x0fffffff;
	if (count > (r->len - r->pos) / 16)
		return cw_binlog_fail(r, r->pos - 4, "count %" PRIu64 " out of range", count);
	if (dec->gtids_cap < count) {
		dec->gtids = cw_xrealloc(dec->gtids, count * sizeof *dec->gtids);
		dec->gtids_cap = count;
	}
	for (uint64_t i = 0; i < count; i++) {
		cw_binlog_gtid_t *g = &dec->gtids[i];
		memset(g, 0, sizeof *g);
		g->domain_id = (uint32_t)cw_binlog_le(r->bytes + r->pos, 4);
		g->server_id = (uint32_t)cw_binlog_le(r->bytes + r->pos + 4, 4);
		g->seq = cw_binlog_le(r->bytes + r->pos + 8, 8);
		r->pos += 16;
	}
	out->gtid_list.count = (uint32_t)count;
	out->gtid_list.gtids = dec->gtids;
	return 0;
}

/* ---- MariaDB's compressed events (log_bin_compress) ------------------------- */

/* Largest body a compressed event may uncompress to: rows events are cut at
 * binlog_row_event_max_size (8 KiB by default), statements are shorter. */
#define INFLATED_MAX (64u << 20)

static bool is_compressed(uint8_t type)
{
	return type == CW_BINLOG_EV_MARIADB_QUERY_COMPRESSED ||
	       (type >= CW_BINLOG_EV_MARIADB_WRITE_ROWS_COMPRESSED_V1 &&
	        type <= CW_BINLOG_EV_MARIADB_DELETE_ROWS_COMPRESSED);
}

/* The rest of the event, r->bytes[r->pos..r->len): a header byte (0x80 | the
 * size of the length), the uncompressed length (big-endian), zlib data. The
 * result lives in the decoder until the next decode. */
static int inflate_rest(cw_binlog_t *dec, cw_binlog_reader_t *r, const uint8_t **out, size_t *len)
{
	size_t at = r->pos;
	if (cw_binlog_need(r, 1, "compression header"))
		return CW_EPROTO;
	uint8_t header = r->bytes[r->pos++];
	size_t lenlen = header & 0x07;
	if (!(header & 0x80) || lenlen == 0 || lenlen > 4 || (header & 0x70) != 0)
		return cw_binlog_fail(r, at, "unknown compression header 0x%02x", header);
	if (cw_binlog_need(r, lenlen, "uncompressed length"))
		return CW_EPROTO;
	uint64_t want = cw_binlog_be(r->bytes + r->pos, lenlen);
	r->pos += lenlen;
	if (want > INFLATED_MAX)
		return cw_binlog_fail(r, at, "uncompressed length %" PRIu64 " too large", want);
	if (dec->inflated_cap < want + 1) {
		free(dec->inflated);
		dec->inflated_cap = want + 1;
		dec->inflated = cw_xmalloc(dec->inflated_cap);
	}
	uLongf got = (uLongf)want;
	int zrc = uncompress(dec->inflated, &got, r->bytes + r->pos, (uLong)(r->len - r->pos));
	if (zrc != Z_OK || got != want)
		return cw_binlog_fail(r, r->pos, "compressed data is corrupt");
	r->pos = r->len;
	*out = dec->inflated;
	*len = (size_t)want;
	return 0;
}

/* ---- QUERY ---------------------------------------------------------------- */

/* Skips white space and comments from q[i]. */
static size_t skip_blank(const char *q, size_t len, size_t i)
{
	for (;;) {
		while (i < len && isspace((unsigned char)q[i]))
			i++;
		if (i + 1 < len && q[i] == '/' && q[i + 1] == '*') {
			const char *close = NULL;
			for (size_t k = i + 2; k + 1 < len; k++)
				if (q[k] == '*' && q[k + 1] == '/') {
					close = q + k;
					break;
				}
			if (close == NULL)
				return len;
			i = (size_t)(close - q) + 2;
			continue;
		}
		return i;
	}
}

/* Whether the word at q[*i] is kw (case-insensitive, whole word); moves past it. */
static bool word(const char *q, size_t len, size_t *i, const char *kw)
{
	size_t n = strlen(kw);
	if (len - *i < n || strncasecmp(q + *i, kw, n) != 0)
		return false;
	if (*i + n < len && (isalnum((unsigned char)q[*i + n]) || q[*i + n] == '_'))
		return false;
	*i = skip_blank(q, len, *i + n);
	return true;
}

/* One identifier, `quoted` or bare, at q[*i] into out; false when none. */
static bool identifier(const char *q, size_t len, size_t *i, cw_buf_t *out)
{
	cw_buf_reset(out);
	if (*i < len && q[*i] == '`') {
		size_t k = *i + 1;
		for (; k < len; k++) {
			if (q[k] == '`') {
				if (k + 1 < len && q[k + 1] == '`') {
					cw_buf_append_char(out, '`');
					k++;
					continue;
				}
				break;
			}
			cw_buf_append_char(out, q[k]);
		}
		if (k >= len)
			return false;
		*i = k + 1;
	} else {
		size_t k = *i;
		while (k < len && (isalnum((unsigned char)q[k]) || q[k] == '_' || q[k] == '$' ||
		                   (unsigned char)q[k] >= 0x80))
			k++;
		if (k == *i)
			return false;
		cw_buf_append(out, q + *i, k - *i);
		*i = k;
	}
	return out->len > 0 && memchr(out->data, '\0', out->len) == NULL;
}

static void parse_truncate(cw_binlog_t *dec, const char *q, size_t len, size_t i,
	const char *schema, cw_binlog_event_t *out)
{
	cw_buf_t first = CW_BUF_INIT, second = CW_BUF_INIT;
	word(q, len, &i, "TABLE");
	if (identifier(q, len, &i, &first)) {
		bool dotted = i < len && q[i] == '.';
		if (dotted)
			i++;
		if (!dotted || identifier(q, len, &i, &second)) {
			free(dec->truncate_schema);
			free(dec->truncate_table);
			dec->truncate_schema = dotted ? cw_buf_take(&first) : cw_xstrdup(schema);
			dec->truncate_table = dotted ? cw_buf_take(&second) : cw_buf_take(&first);
			out->query.kind = CW_BINLOG_QUERY_TRUNCATE;
			out->query.table_schema = dec->truncate_schema;
			out->query.table = dec->truncate_table;
		}
	}
	cw_buf_free(&first);
	cw_buf_free(&second);
}

static void classify_query(cw_binlog_t *dec, cw_binlog_event_t *out)
{
	const char *q = out->query.text;
	size_t len = out->query.text_len, i = skip_blank(q, len, 0);
	if (word(q, len, &i, "BEGIN") || (word(q, len, &i, "START") && word(q, len, &i, "TRANSACTION")))
		out->query.kind = CW_BINLOG_QUERY_BEGIN;
	else if (word(q, len, &i, "COMMIT"))
		out->query.kind = CW_BINLOG_QUERY_COMMIT;
	else if (word(q, len, &i, "ROLLBACK"))
		out->query.kind = word(q, len, &i, "TO") ? CW_BINLOG_QUERY_OTHER : CW_BINLOG_QUERY_ROLLBACK;
	else if (word(q, len, &i, "TRUNCATE"))
		parse_truncate(dec, q, len, i, out->query.schema, out);
	else if (word(q, len, &i, "CREATE") || word(q, len, &i, "ALTER") ||
	         word(q, len, &i, "DROP") || word(q, len, &i, "RENAME"))
		out->query.kind = CW_BINLOG_QUERY_DDL;
}

static int decode_query(cw_binlog_t *dec, cw_binlog_reader_t *r, cw_binlog_event_t *out,
	size_t post_header)
{
	uint64_t skip, db_len, error_code, status_len;
	if (post_header < 13)
		return cw_binlog_fail(r, r->pos, "post-header of %zu bytes is too short", post_header);
	if (cw_binlog_read_uint(r, 8, "thread id", &skip) ||
	    cw_binlog_read_uint(r, 1, "database length", &db_len) ||
	    cw_binlog_read_uint(r, 2, "error code", &error_code) ||
	    cw_binlog_read_uint(r, 2, "status length", &status_len) ||
	    cw_binlog_need(r, post_header - 13 + status_len + db_len + 1, "status variables"))
		return CW_EPROTO;
	r->pos += post_header - 13 + status_len;
	out->query.schema = (const char *)r->bytes + r->pos;
	if (r->bytes[r->pos + db_len] != '\0' || memchr(out->query.schema, '\0', db_len) != NULL)
		return cw_binlog_fail(r, r->pos, "invalid database name");
	r->pos += db_len + 1;
	if (out->type == CW_BINLOG_EV_MARIADB_QUERY_COMPRESSED) {
		const uint8_t *text;
		if (inflate_rest(dec, r, &text, &out->query.text_len) != 0)
			return CW_EPROTO;
		out->query.text = (const char *)text;
	} else {
		out->query.text = (const char *)r->bytes + r->pos;
		out->query.text_len = r->len - r->pos;
		r->pos = r->len;
	}
	classify_query(dec, out);
	return 0;
}

/* ---- ROWS ----------------------------------------------------------------- */

static int decode_rows(cw_binlog_t *dec, cw_binlog_reader_t *r, cw_binlog_event_t *out)
{
	uint64_t table_id, flags, extra, ncolumns;
	uint8_t t = out->type;
	bool compressed = is_compressed(t);
	/* MariaDB's compressed types: WRITE, UPDATE, DELETE v1 (166-168), then v2 (169-171) */
	uint8_t plain = !compressed ? t : t < CW_BINLOG_EV_MARIADB_WRITE_ROWS_COMPRESSED_V1 + 3 ?
		(uint8_t)(CW_BINLOG_EV_WRITE_ROWS_V1 + t - CW_BINLOG_EV_MARIADB_WRITE_ROWS_COMPRESSED_V1) :
		(uint8_t)(CW_BINLOG_EV_WRITE_ROWS_V2 + t - CW_BINLOG_EV_MARIADB_WRITE_ROWS_COMPRESSED_V1 - 3);
	bool v2 = plain >= CW_BINLOG_EV_WRITE_ROWS_V2 && plain <= CW_BINLOG_EV_DELETE_ROWS_V2;
	size_t at = r->pos;
	out->rows.op = plain == CW_BINLOG_EV_WRITE_ROWS_V1 || plain == CW_BINLOG_EV_WRITE_ROWS_V2 ?
		CW_BINLOG_WRITE : plain == CW_BINLOG_EV_UPDATE_ROWS_V1 ||
		plain == CW_BINLOG_EV_UPDATE_ROWS_V2 ? CW_BINLOG_UPDATE : CW_BINLOG_DELETE;
	if (cw_binlog_read_table_id(dec, r, t, &table_id) || cw_binlog_read_uint(r, 2, "flags", &flags))
		return CW_EPROTO;
	if (v2) {
		if (cw_binlog_read_uint(r, 2, "extra data length", &extra))
			return CW_EPROTO;
		if (extra < 2 || cw_binlog_need(r, extra - 2, "extra data"))
			return extra < 2 ? cw_binlog_fail(r, r->pos - 2, "invalid extra data length") : CW_EPROTO;
		r->pos += extra - 2;
	}
	const cw_binlog_cached_t *cached = cw_binlog_cache_find(dec, table_id);
	if (cached == NULL)
		return cw_binlog_fail(r, at, "unknown table id %" PRIu64, table_id);
	const cw_binlog_table_t *table = cached->table;
	at = r->pos;
	if (cw_binlog_read_lenenc(r, "column count", &ncolumns))
		return CW_EPROTO;
	if (ncolumns != table->ncolumns)
		return cw_binlog_fail(r, at, "%" PRIu64 " columns but table \"%s.%s\" has %u", ncolumns,
			table->schema, table->name, table->ncolumns);
	size_t bitmap = (ncolumns + 7) / 8;
	if (cw_binlog_need(r, out->rows.op == CW_BINLOG_UPDATE ? 2 * bitmap : bitmap, "column bitmap"))
		return CW_EPROTO;
	out->rows.present = r->bytes + r->pos;
	r->pos += bitmap;
	out->rows.present_after = out->rows.present;
	if (out->rows.op == CW_BINLOG_UPDATE) {
		out->rows.present_after = r->bytes + r->pos;
		r->pos += bitmap;
	}
	out->rows.table = table;
	out->rows.flags = (uint16_t)flags;
	out->rows.bytes = r->bytes;
	out->rows.pos = r->pos;
	out->rows.end = r->len;
	if (compressed) {   /* the row images are compressed, the bitmaps before them not */
		size_t len;
		if (inflate_rest(dec, r, &out->rows.bytes, &len) != 0)
			return CW_EPROTO;
		out->rows.pos = 0;
		out->rows.end = len;
	}
	r->pos = r->len;
	return 0;
}

/* ---- events --------------------------------------------------------------- */

const char *cw_binlog_type_name(uint8_t type)
{
	static const struct { uint8_t type; const char *name; } names[] = {
		{CW_BINLOG_EV_QUERY, "QUERY"}, {CW_BINLOG_EV_STOP, "STOP"}, {CW_BINLOG_EV_ROTATE, "ROTATE"},
		{CW_BINLOG_EV_FORMAT_DESCRIPTION, "FORMAT_DESCRIPTION"}, {CW_BINLOG_EV_XID, "XID"},
		{CW_BINLOG_EV_TABLE_MAP, "TABLE_MAP"}, {CW_BINLOG_EV_WRITE_ROWS_V1, "WRITE_ROWS_V1"},
		{CW_BINLOG_EV_UPDATE_ROWS_V1, "UPDATE_ROWS_V1"}, {CW_BINLOG_EV_DELETE_ROWS_V1, "DELETE_ROWS_V1"},
		{CW_BINLOG_EV_HEARTBEAT, "HEARTBEAT"}, {CW_BINLOG_EV_WRITE_ROWS_V2, "WRITE_ROWS"},
		{CW_BINLOG_EV_UPDATE_ROWS_V2, "UPDATE_ROWS"}, {CW_BINLOG_EV_DELETE_ROWS_V2, "DELETE_ROWS"},
		{CW_BINLOG_EV_MYSQL_GTID, "GTID_LOG"}, {CW_BINLOG_EV_MYSQL_ANONYMOUS_GTID, "ANONYMOUS_GTID"},
		{CW_BINLOG_EV_MYSQL_PREVIOUS_GTIDS, "PREVIOUS_GTIDS"},
		{CW_BINLOG_EV_MARIADB_ANNOTATE_ROWS, "ANNOTATE_ROWS"},
		{CW_BINLOG_EV_MARIADB_BINLOG_CHECKPOINT, "BINLOG_CHECKPOINT"},
		{CW_BINLOG_EV_MARIADB_GTID, "GTID"}, {CW_BINLOG_EV_MARIADB_GTID_LIST, "GTID_LIST"},
		{CW_BINLOG_EV_MARIADB_QUERY_COMPRESSED, "QUERY_COMPRESSED"},
	};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (names[i].type == type)
			return names[i].name;
	if (type >= CW_BINLOG_EV_MARIADB_WRITE_ROWS_COMPRESSED_V1 &&
	    type <= CW_BINLOG_EV_MARIADB_DELETE_ROWS_COMPRESSED)
		return "ROWS_COMPRESSED";
	return "UNKNOWN";
}

int cw_binlog_decode(cw_binlog_t *dec, const uint8_t *bytes, size_t len,
	cw_binlog_event_t *out, cw_err_t *err)
{
	char what[48];
	cw_binlog_reader_t r = {bytes, len, 0, "event", err, NULL};
	memset(out, 0, sizeof *out);
	if (len < CW_BINLOG_HEADER_LEN)
		return cw_binlog_fail(&r, len, "truncated header");
	out->timestamp = (uint32_t)cw_binlog_le(bytes, 4);
	out->type = bytes[4];
	out->server_id = (uint32_t)cw_binlog_le(bytes + 5, 4);
	out->event_size = (uint32_t)cw_binlog_le(bytes + 9, 4);
	out->log_pos = (uint32_t)cw_binlog_le(bytes + 13, 4);
	out->flags = (uint16_t)cw_binlog_le(bytes + 17, 2);
	snprintf(what, sizeof what, "%s event", cw_binlog_type_name(out->type));
	r.what = what;
	if (out->event_size != len)
		return cw_binlog_fail(&r, 9, "event size %u but %zu bytes", out->event_size, len);
	r.pos = CW_BINLOG_HEADER_LEN;
	if (out->type == CW_BINLOG_EV_FORMAT_DESCRIPTION) {
		out->kind = CW_BINLOG_FORMAT_DESCRIPTION;
		return decode_fde(dec, &r, out, len);
	}
	if (dec->checksum_alg == CW_BINLOG_CHECKSUM_CRC32) {
		if (len < CW_BINLOG_HEADER_LEN + 4)
			return cw_binlog_fail(&r, len, "truncated checksum");
		r.len = len - 4;
		if (!dec->skip_verify && crc32_of(bytes, r.len) != (uint32_t)cw_binlog_le(bytes + r.len, 4))
			return cw_binlog_fail(&r, r.len, "checksum mismatch");
	}
	size_t post_header = dec->post_header[out->type];
	switch (out->type) {
	case CW_BINLOG_EV_ROTATE:
		out->kind = CW_BINLOG_ROTATE;
		return decode_rotate(&r, out);
	case CW_BINLOG_EV_MARIADB_GTID:
		out->kind = CW_BINLOG_GTID;
		return decode_mariadb_gtid(&r, out);
	case CW_BINLOG_EV_MYSQL_GTID:
		out->kind = CW_BINLOG_GTID;
		return decode_mysql_gtid(&r, out);
	case CW_BINLOG_EV_MARIADB_GTID_LIST:
		out->kind = CW_BINLOG_GTID_LIST;
		return decode_gtid_list(dec, &r, out);
	case CW_BINLOG_EV_XID:
		out->kind = CW_BINLOG_XID;
		return cw_binlog_read_uint(&r, 8, "xid", &out->xid);
	case CW_BINLOG_EV_QUERY:
		out->kind = CW_BINLOG_QUERY;
		return decode_query(dec, &r, out, post_header);
	case CW_BINLOG_EV_TABLE_MAP:
		out->kind = CW_BINLOG_TABLE_MAP;
		return cw_binlog_decode_table_map(dec, &r, out);
	case CW_BINLOG_EV_WRITE_ROWS_V1: case CW_BINLOG_EV_UPDATE_ROWS_V1:
	case CW_BINLOG_EV_DELETE_ROWS_V1: case CW_BINLOG_EV_WRITE_ROWS_V2:
	case CW_BINLOG_EV_UPDATE_ROWS_V2: case CW_BINLOG_EV_DELETE_ROWS_V2:
		out->kind = CW_BINLOG_ROWS;
		return decode_rows(dec, &r, out);
	case CW_BINLOG_EV_HEARTBEAT:
		out->kind = CW_BINLOG_HEARTBEAT;
		return 0;
	case CW_BINLOG_EV_MARIADB_QUERY_COMPRESSED:
		out->kind = CW_BINLOG_QUERY;
		return decode_query(dec, &r, out, post_header);
	default:
		if (is_compressed(out->type)) {
			out->kind = CW_BINLOG_ROWS;
			return decode_rows(dec, &r, out);
		}
		if (out->type == 39)
			return cw_binlog_fail(&r, 0, "partial JSON updates are not supported "
				"(set binlog_row_value_options='')");
		if (out->type == 40)
			return cw_binlog_fail(&r, 0, "compressed transactions are not supported "
				"(set binlog_transaction_compression=OFF)");
		out->kind = CW_BINLOG_OTHER;
		return 0;
	}
}

void cw_binlog_gtid_format(const cw_binlog_gtid_t *gtid, cw_buf_t *out)
{
	if (!gtid->mysql) {
		cw_buf_appendf(out, "%" PRIu32 "-%" PRIu32 "-%" PRIu64, gtid->domain_id,
			gtid->server_id, gtid->seq);
		return;
	}
	for (int i = 0; i < 16; i++)
		cw_buf_appendf(out, "%s%02x", i == 4 || i == 6 || i == 8 || i == 10 ? "-" : "",
			gtid->uuid[i]);
	cw_buf_appendf(out, ":%" PRId64, gtid->gno);
}
