/* This file contains MySQL 8's GTID sets (mysql_gtid_set.h). */
#include "capture/mysql_gtid_set.h"

#include "core/mem.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define DOMAIN "mysql"

void cw_gtid_set_clear(cw_gtid_set_t *set)
{
	for (size_t i = 0; i < set->nuuids; i++)
		free(set->uuids[i].intervals);
	free(set->uuids);
	set->uuids = NULL;
	set->nuuids = 0;
}

/* The entry of uuid, inserted (empty) in order when absent. */
static cw_gtid_uuid_set_t *uuid_entry(cw_gtid_set_t *set, const uint8_t uuid[16])
{
	size_t at = 0;
	while (at < set->nuuids && memcmp(set->uuids[at].uuid, uuid, 16) < 0)
		at++;
	if (at < set->nuuids && memcmp(set->uuids[at].uuid, uuid, 16) == 0)
		return &set->uuids[at];
	set->uuids = cw_xrealloc(set->uuids, (set->nuuids + 1) * sizeof *set->uuids);
	memmove(&set->uuids[at + 1], &set->uuids[at], (set->nuuids - at) * sizeof *set->uuids);
	set->nuuids++;
	memset(&set->uuids[at], 0, sizeof set->uuids[at]);
	memcpy(set->uuids[at].uuid, uuid, 16);
	return &set->uuids[at];
}

/* Adds start..end (inclusive) to u, merging what overlaps or touches it. */
static void add_interval(cw_gtid_uuid_set_t *u, int64_t start, int64_t end)
{
	size_t kept = 0;
	cw_gtid_interval_t *out = cw_xcalloc(u->nintervals + 1, sizeof *out);
	bool placed = false;
	for (size_t i = 0; i < u->nintervals; i++) {
		cw_gtid_interval_t iv = u->intervals[i];
		if (iv.end < start - 1) {
			out[kept++] = iv;
		} else if (iv.start > end + 1) {
			if (!placed)
				out[kept++] = (cw_gtid_interval_t){start, end};
			placed = true;
			out[kept++] = iv;
		} else {
			start = iv.start < start ? iv.start : start;
			end = iv.end > end ? iv.end : end;
		}
	}
	if (!placed)
		out[kept++] = (cw_gtid_interval_t){start, end};
	free(u->intervals);
	u->intervals = out;
	u->nintervals = kept;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Reads "8-4-4-4-12" hex digits at *p into uuid. */
static bool parse_uuid(const char **p, uint8_t uuid[16])
{
	const char *s = *p;
	for (int byte = 0; byte < 16; byte++) {
		if (byte == 4 || byte == 6 || byte == 8 || byte == 10) {
			if (*s != '-')
				return false;
			s++;
		}
		int hi = hex_value(s[0]);
		int lo = hi < 0 ? -1 : hex_value(s[1]);
		if (lo < 0)
			return false;
		uuid[byte] = (uint8_t)(hi << 4 | lo);
		s += 2;
	}
	*p = s;
	return true;
}

/* Reads a transaction number (1 to INT64_MAX - 1) at *p. */
static bool parse_gno(const char **p, int64_t *gno)
{
	const char *s = *p;
	if (!isdigit((unsigned char)*s))
		return false;
	int64_t value = 0;
	while (isdigit((unsigned char)*s)) {
		int digit = *s - '0';
		if (value > (INT64_MAX - 1 - digit) / 10)
			return false;
		value = value * 10 + digit;
		s++;
	}
	if (value < 1)
		return false;
	*gno = value;
	*p = s;
	return true;
}

static void skip_space(const char **p)
{
	while (isspace((unsigned char)**p))
		(*p)++;
}

int cw_gtid_set_parse(const char *text, cw_gtid_set_t *set, cw_err_t *err)
{
	cw_gtid_set_clear(set);
	const char *p = text;
	skip_space(&p);
	while (*p != '\0') {
		uint8_t uuid[16];
		if (!parse_uuid(&p, uuid))
			goto bad;
		cw_gtid_uuid_set_t *u = uuid_entry(set, uuid);
		if (*p != ':')
			goto bad;
		while (*p == ':') {
			p++;
			int64_t start, end;
			if (!parse_gno(&p, &start))
				goto bad;
			end = start;
			if (*p == '-') {
				p++;
				if (!parse_gno(&p, &end) || end < start)
					goto bad;
			}
			add_interval(u, start, end);
		}
		skip_space(&p);
		if (*p == ',') {
			p++;
			skip_space(&p);
			if (*p == '\0')
				goto bad;
		} else if (*p != '\0') {
			goto bad;
		}
	}
	return 0;
bad:
	cw_gtid_set_clear(set);
	return cw_err_set(err, CW_EINVAL, DOMAIN, "GTID set \"%.200s\" is not valid at offset %zu: "
	                  "want uuid:N[-M][:N[-M]...][,uuid:...]", text, (size_t)(p - text));
}

void cw_gtid_set_format(const cw_gtid_set_t *set, cw_buf_t *out)
{
	static const char digits[] = "0123456789abcdef";
	bool first = true;
	for (size_t i = 0; i < set->nuuids; i++) {
		const cw_gtid_uuid_set_t *u = &set->uuids[i];
		if (u->nintervals == 0)
			continue;
		if (!first)
			cw_buf_append_char(out, ',');
		first = false;
		for (int byte = 0; byte < 16; byte++) {
			if (byte == 4 || byte == 6 || byte == 8 || byte == 10)
				cw_buf_append_char(out, '-');
			cw_buf_append_char(out, digits[u->uuid[byte] >> 4]);
			cw_buf_append_char(out, digits[u->uuid[byte] & 15]);
		}
		for (size_t k = 0; k < u->nintervals; k++) {
			cw_buf_appendf(out, ":%lld", (long long)u->intervals[k].start);
			if (u->intervals[k].end != u->intervals[k].start)
				cw_buf_appendf(out, "-%lld", (long long)u->intervals[k].end);
		}
	}
}

bool cw_gtid_set_contains(const cw_gtid_set_t *set, const cw_binlog_gtid_t *gtid)
{
	if (!gtid->mysql)
		return false;
	for (size_t i = 0; i < set->nuuids; i++) {
		const cw_gtid_uuid_set_t *u = &set->uuids[i];
		if (memcmp(u->uuid, gtid->uuid, 16) != 0)
			continue;
		for (size_t k = 0; k < u->nintervals; k++)
			if (gtid->gno >= u->intervals[k].start && gtid->gno <= u->intervals[k].end)
				return true;
	}
	return false;
}

int cw_gtid_set_add(cw_gtid_set_t *set, const cw_binlog_gtid_t *gtid)
{
	if (!gtid->mysql || gtid->gno < 1 || gtid->gno == INT64_MAX)
		return CW_EINVAL;
	add_interval(uuid_entry(set, gtid->uuid), gtid->gno, gtid->gno);
	return 0;
}

static void put_le(cw_buf_t *out, uint64_t value, int bytes)
{
	for (int i = 0; i < bytes; i++)
		cw_buf_append_char(out, (char)(value >> (8 * i) & 0xff));
}

static uint64_t get_le(const uint8_t *p, int bytes)
{
	uint64_t value = 0;
	for (int i = bytes - 1; i >= 0; i--)
		value = value << 8 | p[i];
	return value;
}

void cw_gtid_set_encode(const cw_gtid_set_t *set, cw_buf_t *out)
{
	size_t used = 0;
	for (size_t i = 0; i < set->nuuids; i++)
		used += set->uuids[i].nintervals > 0;
	put_le(out, used, 8);
	for (size_t i = 0; i < set->nuuids; i++) {
		const cw_gtid_uuid_set_t *u = &set->uuids[i];
		if (u->nintervals == 0)
			continue;
		cw_buf_append(out, u->uuid, 16);
		put_le(out, u->nintervals, 8);
		for (size_t k = 0; k < u->nintervals; k++) {
			put_le(out, (uint64_t)u->intervals[k].start, 8);
			put_le(out, (uint64_t)u->intervals[k].end + 1, 8);   /* exclusive */
		}
	}
}

int cw_gtid_set_decode(const uint8_t *bytes, size_t len, cw_gtid_set_t *set, cw_err_t *err)
{
	cw_gtid_set_clear(set);
	size_t pos = 0;
	if (len < 8)
		goto truncated;
	uint64_t nsids = get_le(bytes, 8);
	pos = 8;
	for (uint64_t s = 0; s < nsids; s++) {
		if (len - pos < 24)
			goto truncated;
		cw_gtid_uuid_set_t *u = uuid_entry(set, bytes + pos);
		uint64_t nintervals = get_le(bytes + pos + 16, 8);
		pos += 24;
		if (nintervals > (len - pos) / 16)
			goto truncated;
		for (uint64_t k = 0; k < nintervals; k++) {
			int64_t start = (int64_t)get_le(bytes + pos, 8);
			int64_t end = (int64_t)get_le(bytes + pos + 8, 8);
			pos += 16;
			if (start < 1 || end <= start) {
				cw_gtid_set_clear(set);
				return cw_err_set(err, CW_EPROTO, DOMAIN, "GTID set: interval %lld-%lld at "
				                  "offset %zu is not valid", (long long)start, (long long)end,
				                  pos - 16);
			}
			add_interval(u, start, end - 1);
		}
	}
	if (pos != len) {
		cw_gtid_set_clear(set);
		return cw_err_set(err, CW_EPROTO, DOMAIN, "GTID set: %zu bytes after its end",
		                  len - pos);
	}
	return 0;
truncated:
	cw_gtid_set_clear(set);
	return cw_err_set(err, CW_EPROTO, DOMAIN, "GTID set: truncated at offset %zu", pos);
}

void cw_gtid_dump_command(const cw_gtid_set_t *set, uint32_t server_id, uint16_t flags,
                          cw_buf_t *out)
{
	cw_buf_t data = CW_BUF_INIT;
	cw_gtid_set_encode(set, &data);
	cw_buf_append_char(out, 0x1e);                 /* COM_BINLOG_DUMP_GTID */
	put_le(out, flags | CW_BINLOG_THROUGH_GTID, 2);
	put_le(out, server_id, 4);
	put_le(out, 0, 4);                             /* no binlog file name */
	put_le(out, 4, 8);                             /* the first event after the magic */
	put_le(out, data.len, 4);
	cw_buf_append(out, data.data, data.len);
	cw_buf_free(&data);
}
