/*
 * This file contains the column values of the binlog decoder declared in
 * mysql_binlog.h: each type's row-image encoding read into the text the
 * change carries (docs/sources-mysql.md) and charsets converted to UTF-8
 * (MySQL's binary JSON: mysql_binlog_json.c).
 */
#include "capture/mysql_binlog_internal.h"

#include "core/json.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- charsets ------------------------------------------------------------- */

/* latin1 in MySQL is Windows-1252: 0x80-0x9f as code points (0 = undefined: kept as C1). */
static const uint16_t cp1252[32] = {
	0x20ac, 0, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021, 0x02c6, 0x2030, 0x0160, 0x2039,
	0x0152, 0, 0x017d, 0, 0, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014,
	0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0, 0x017e, 0x0178,
};

static bool is_latin1(uint16_t collation)
{
	return collation == 5 || collation == 8 || collation == 15 || collation == 31 ||
	       (collation >= 47 && collation <= 49) || collation == 94;
}

static bool is_ascii(uint16_t collation)
{
	return collation == 11 || collation == 65;
}

/* The wide encodings, by collation (MySQL's and MariaDB's numbers). */
typedef enum wide {
	NOT_WIDE = 0,
	UCS2,        /* big-endian 16-bit units, the BMP only */
	UTF16,       /* big-endian, with surrogate pairs */
	UTF16LE,     /* little-endian, with surrogate pairs */
	UTF32,       /* big-endian 32-bit code points */
} wide_t;

static wide_t wide_of(uint16_t collation)
{
	if (collation == 35 || collation == 90 || (collation >= 128 && collation <= 151) ||
	    collation == 159)
		return UCS2;
	if (collation == 54 || collation == 55 || (collation >= 101 && collation <= 124))
		return UTF16;
	if (collation == 56 || collation == 62)
		return UTF16LE;
	if (collation == 60 || collation == 61 || (collation >= 160 && collation <= 183))
		return UTF32;
	return NOT_WIDE;
}

static void put_utf8(cw_buf_t *out, uint32_t cp)
{
	char b[4];
	if (cp < 0x80) {
		cw_buf_append_char(out, (char)cp);
	} else if (cp < 0x800) {
		b[0] = (char)(0xc0 | cp >> 6);
		b[1] = (char)(0x80 | (cp & 0x3f));
		cw_buf_append(out, b, 2);
	} else if (cp < 0x10000) {
		b[0] = (char)(0xe0 | cp >> 12);
		b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		cw_buf_append(out, b, 3);
	} else {
		b[0] = (char)(0xf0 | cp >> 18);
		b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (char)(0x80 | (cp & 0x3f));
		cw_buf_append(out, b, 4);
	}
}

/*
 * Converts s (len bytes of a wide encoding) to UTF-8 on out. Returns len,
 * or the offset of the first unit that is not a character (a cut unit, an
 * unpaired surrogate, a code point past U+10FFFF; ucs2 has no surrogates).
 */
static size_t wide_to_utf8(wide_t wide, const uint8_t *s, size_t len, cw_buf_t *out)
{
	size_t unit = wide == UTF32 ? 4 : 2;
	size_t i = 0;
	while (i < len) {
		if (len - i < unit)
			return i;
		uint32_t cp;
		if (wide == UTF32)
			cp = (uint32_t)s[i] << 24 | (uint32_t)s[i + 1] << 16 | (uint32_t)s[i + 2] << 8 | s[i + 3];
		else if (wide == UTF16LE)
			cp = (uint32_t)s[i + 1] << 8 | s[i];
		else
			cp = (uint32_t)s[i] << 8 | s[i + 1];
		size_t used = unit;
		if (cp >= 0xd800 && cp <= 0xdbff && (wide == UTF16 || wide == UTF16LE)) {
			if (len - i < 4)
				return i;
			uint32_t low = wide == UTF16LE ? (uint32_t)s[i + 3] << 8 | s[i + 2]
			                               : (uint32_t)s[i + 2] << 8 | s[i + 3];
			if (low < 0xdc00 || low > 0xdfff)
				return i;
			cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
			used = 4;
		} else if ((cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
			return i;
		}
		put_utf8(out, cp);
		i += used;
	}
	return len;
}

int cw_binlog_text_utf8(const cw_binlog_reader_t *r, uint16_t collation, const uint8_t *s,
	size_t len, size_t offset, cw_buf_t *out)
{
	if (is_latin1(collation)) {
		for (size_t i = 0; i < len; i++) {
			uint32_t cp = s[i];
			if (cp >= 0x80 && cp < 0xa0 && cp1252[cp - 0x80] != 0)
				cp = cp1252[cp - 0x80];
			put_utf8(out, cp);
		}
		return 0;
	}
	wide_t wide = wide_of(collation);
	if (wide != NOT_WIDE) {
		size_t start = out->len;
		size_t bad = wide_to_utf8(wide, s, len, out);
		if (bad == len)
			return 0;
		out->len = start;
		return cw_binlog_fail(r, offset + bad, "value is not valid %s (collation %u)",
		                      wide == UCS2 ? "ucs2" : wide == UTF32 ? "utf32" : "utf16", collation);
	}
	size_t bad = cw_json_utf8_invalid_at((const char *)s, len);
	if (bad != len)
		return cw_binlog_fail(r, offset + bad, is_ascii(collation) ? "value is not ASCII" :
			"value is not valid UTF-8 (collation %u)", collation);
	cw_buf_append(out, s, len);
	return 0;
}

/* ---- numbers -------------------------------------------------------------- */

static void put_float(cw_buf_t *out, float value)
{
	char text[32];
	for (int precision = 1; precision <= 9; precision++) {
		snprintf(text, sizeof text, "%.*g", precision, (double)value);
		if (strtof(text, NULL) == value)
			break;
	}
	cw_buf_append_str(out, text);
}

static void put_double(cw_buf_t *out, double value)
{
	char text[CW_JSON_DOUBLE_LEN];
	size_t len = cw_json_format_double(value, text);
	cw_buf_append(out, text, len);
}

/* DECIMAL(precision, scale) in MySQL's binary form: groups of 9 digits in 4 bytes. */
int cw_binlog_read_decimal(const cw_binlog_reader_t *r, int precision, int scale, const uint8_t *p,
	size_t avail, size_t *used, cw_buf_t *out)
{
	static const int dig2bytes[10] = {0, 1, 1, 2, 2, 3, 3, 4, 4, 4};
	static const uint32_t pow10[10] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000,
		100000000, 1000000000};
	if (precision < 1 || precision > 65 || scale > precision || scale > 30)
		return cw_binlog_fail(r, r->pos, "invalid DECIMAL(%d,%d)", precision, scale);
	int intg = precision - scale, intg0 = intg / 9, intg0x = intg % 9;
	int frac0 = scale / 9, frac0x = scale % 9;
	size_t size = (size_t)(intg0 * 4 + dig2bytes[intg0x] + frac0 * 4 + dig2bytes[frac0x]);
	if (avail < size)
		return cw_binlog_fail(r, r->pos, "truncated DECIMAL value");
	uint8_t buf[40];
	memcpy(buf, p, size);
	bool negative = (buf[0] & 0x80) == 0;
	buf[0] ^= 0x80;
	if (negative)
		for (size_t i = 0; i < size; i++)
			buf[i] ^= 0xff;
	char digits[100];
	size_t nd = 0, pos = 0;
	/* integer part: a partial group, then whole groups */
	for (int g = -1; g < intg0; g++) {
		int ndig = g < 0 ? intg0x : 9, nb = g < 0 ? dig2bytes[intg0x] : 4;
		if (nb == 0)
			continue;
		uint32_t v = (uint32_t)cw_binlog_be(buf + pos, (size_t)nb);
		pos += (size_t)nb;
		if (v >= pow10[ndig])
			return cw_binlog_fail(r, r->pos, "invalid DECIMAL digits");
		for (int d = ndig; d > 0; d--) {
			digits[nd + (size_t)d - 1] = (char)('0' + v % 10);
			v /= 10;
		}
		nd += (size_t)ndig;
	}
	size_t lead = 0;
	while (lead + 1 < nd && digits[lead] == '0')
		lead++;
	if (negative)
		cw_buf_append_char(out, '-');
	if (nd == 0)
		cw_buf_append_char(out, '0');
	else
		cw_buf_append(out, digits + lead, nd - lead);
	if (scale > 0) {
		cw_buf_append_char(out, '.');
		for (int g = 0; g <= frac0; g++) {
			int ndig = g < frac0 ? 9 : frac0x, nb = g < frac0 ? 4 : dig2bytes[frac0x];
			if (nb == 0)
				continue;
			uint32_t v = (uint32_t)cw_binlog_be(buf + pos, (size_t)nb);
			pos += (size_t)nb;
			if (v >= pow10[ndig])
				return cw_binlog_fail(r, r->pos, "invalid DECIMAL digits");
			cw_buf_append_digits(out, v, (unsigned)ndig);
		}
	}
	*used = size;
	return 0;
}

/* ---- dates and times ------------------------------------------------------ */

/* Fractional seconds: fsp digits of micro. */
static void put_fraction(cw_buf_t *out, int fsp, uint32_t micro)
{
	if (fsp <= 0)
		return;
	/* the fsp leading digits of the six */
	cw_buf_append_char(out, '.');
	int digits = fsp > 6 ? 6 : fsp;
	uint32_t scaled = micro % 1000000;
	for (int d = digits; d < 6; d++)
		scaled /= 10;
	cw_buf_append_digits(out, scaled, (unsigned)digits);
}

/* The fraction bytes that follow TIME2, DATETIME2 and TIMESTAMP2, big-endian. */
static size_t frac_bytes(int fsp)
{
	return (size_t)((fsp + 1) / 2);
}

static uint32_t frac_micro(const uint8_t *p, int fsp)
{
	switch (frac_bytes(fsp)) {
	case 1: return (uint32_t)p[0] * 10000;
	case 2: return (uint32_t)cw_binlog_be(p, 2) * 100;
	case 3: return (uint32_t)cw_binlog_be(p, 3);
	default: return 0;
	}
}

void cw_binlog_put_datetime_packed(cw_buf_t *out, uint64_t intpart, int fsp, uint32_t micro)
{
	uint64_t ymd = intpart >> 17, hms = intpart % (1 << 17), ym = ymd >> 5;
	/* "%04u-%02u-%02u %02u:%02u:%02u" without printf: one per DATETIME value */
	const struct { uint32_t value; unsigned width; char after; } fields[] = {
		{(uint32_t)(ym / 13), 4, '-'}, {(uint32_t)(ym % 13), 2, '-'},
		{(uint32_t)(ymd % 32), 2, ' '}, {(uint32_t)(hms >> 12), 2, ':'},
		{(uint32_t)((hms >> 6) % 64), 2, ':'}, {(uint32_t)(hms % 64), 2, '\0'},
	};
	for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++) {
		if (fields[f].width == 4 && fields[f].value > 9999)
			cw_buf_append_u64(out, fields[f].value);   /* as %04u: wider, never cut */
		else
			cw_buf_append_digits(out, fields[f].value, fields[f].width);
		if (fields[f].after != '\0')
			cw_buf_append_char(out, fields[f].after);
	}
	put_fraction(out, fsp, micro);
}

/* TIME2's value as MySQL packs it: (hms << 24 | micro), signed. */
void cw_binlog_put_time_packed(cw_buf_t *out, int64_t packed, int fsp)
{
	if (packed < 0) {
		cw_buf_append_char(out, '-');
		packed = -packed;
	}
	uint64_t hms = (uint64_t)packed >> 24, micro = (uint64_t)packed % (1 << 24);
	cw_buf_appendf(out, "%02u:%02u:%02u", (unsigned)((hms >> 12) % (1 << 10)),
		(unsigned)((hms >> 6) % 64), (unsigned)(hms % 64));
	put_fraction(out, fsp, (uint32_t)micro);
}

static int64_t time2_packed(const uint8_t *p, int fsp)
{
	int64_t intpart = (int64_t)cw_binlog_be(p, 3) - 0x800000;
	int64_t frac;
	switch (frac_bytes(fsp)) {
	case 1:
		frac = p[3];
		if (intpart < 0 && frac) {
			intpart++;
			frac -= 0x100;
		}
		return (int64_t)((uint64_t)intpart << 24) + frac * 10000;
	case 2:
		frac = (int64_t)cw_binlog_be(p + 3, 2);
		if (intpart < 0 && frac) {
			intpart++;
			frac -= 0x10000;
		}
		return (int64_t)((uint64_t)intpart << 24) + frac * 100;
	case 3:
		return (int64_t)cw_binlog_be(p, 6) - INT64_C(0x800000000000);
	default:
		return (int64_t)((uint64_t)intpart << 24);
	}
}

static void put_timestamp(cw_buf_t *out, uint32_t seconds, int fsp, uint32_t micro)
{
	if (seconds == 0 && micro == 0) {   /* MySQL's zero timestamp */
		cw_buf_append_str(out, "0000-00-00 00:00:00");
		put_fraction(out, fsp, 0);
		return;
	}
	time_t t = (time_t)seconds;
	struct tm tm;
	gmtime_r(&t, &tm);
	cw_buf_appendf(out, "%04d-%02d-%02d %02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
		tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	put_fraction(out, fsp, micro);
	cw_buf_append_str(out, "+00");
}

/* ---- binary strings and geometry ------------------------------------------ */

static void put_hex(cw_buf_t *out, const uint8_t *p, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	cw_buf_reserve(out, len * 2);
	for (size_t i = 0; i < len; i++) {
		out->data[out->len++] = digits[p[i] >> 4];
		out->data[out->len++] = digits[p[i] & 15];
	}
	out->data[out->len] = '\0';
}

/* GEOMETRY: 4 bytes SRID, then WKB. SRID 0: the WKB; else EWKB with the SRID. */
static int put_geometry(const cw_binlog_reader_t *r, const uint8_t *p, size_t len, cw_buf_t *out)
{
	if (len < 4 + 5 || (p[4] != 0 && p[4] != 1))
		return cw_binlog_fail(r, r->pos, "invalid GEOMETRY value");
	uint32_t srid = (uint32_t)cw_binlog_le(p, 4);
	if (srid == 0) {
		put_hex(out, p + 4, len - 4);
		return 0;
	}
	bool little = p[4] == 1;
	uint32_t type = little ? (uint32_t)cw_binlog_le(p + 5, 4) : (uint32_t)cw_binlog_be(p + 5, 4);
	type |= 0x20000000u;   /* EWKB: an SRID follows the type */
	uint8_t head[9];
	head[0] = p[4];
	for (int i = 0; i < 4; i++) {
		head[1 + i] = (uint8_t)(little ? type >> (8 * i) : type >> (8 * (3 - i)));
		head[5 + i] = (uint8_t)(little ? srid >> (8 * i) : srid >> (8 * (3 - i)));
	}
	put_hex(out, head, sizeof head);
	put_hex(out, p + 9, len - 9);
	return 0;
}

/* ---- values --------------------------------------------------------------- */

/* A length prefix of n bytes, then that many bytes. */
static int read_prefixed(cw_binlog_reader_t *r, size_t n, const uint8_t **p, size_t *len)
{
	uint64_t v;
	if (cw_binlog_read_uint(r, n, "length", &v) || cw_binlog_need(r, v, "value"))
		return CW_EPROTO;
	*p = r->bytes + r->pos;
	*len = (size_t)v;
	r->pos += v;
	return 0;
}

static int read_int(cw_binlog_reader_t *r, const cw_binlog_column_t *col, size_t n, cw_buf_t *out)
{
	uint64_t v;
	if (cw_binlog_read_uint(r, n, "integer", &v))
		return CW_EPROTO;
	if (col->is_unsigned) {
		cw_buf_append_u64(out, v);
	} else {
		unsigned shift = (unsigned)(64 - 8 * n);
		cw_buf_append_i64(out, (int64_t)(v << shift) >> shift);
	}
	return 0;
}

static int read_enum_set(cw_binlog_reader_t *r, const cw_binlog_column_t *col, cw_buf_t *out,
	cw_binlog_value_kind_t *kind)
{
	uint64_t v;
	size_t at = r->pos;
	if (col->meta < 1 || col->meta > 8)
		return cw_binlog_fail(r, at, "invalid ENUM or SET size %u", col->meta);
	if (cw_binlog_read_uint(r, col->meta, "ENUM or SET", &v))
		return CW_EPROTO;
	if (col->values == NULL) {   /* no names in the table map: the index or bits */
		*kind = CW_BINLOG_VALUE_NUMBER;
		cw_buf_appendf(out, "%" PRIu64, v);
		return 0;
	}
	cw_buf_t names = CW_BUF_INIT;
	int rc = 0;
	if (col->type == CW_MYSQL_TYPE_ENUM) {
		if (v > col->nvalues)
			rc = cw_binlog_fail(r, at, "ENUM index %" PRIu64 " out of range", v);
		else if (v > 0)    /* 0 is the empty string MySQL stores for an invalid value */
			cw_buf_append_str(&names, col->values[v - 1]);
	} else {
		for (uint32_t i = 0; i < col->nvalues && i < 64; i++) {
			if (!(v >> i & 1))
				continue;
			if (names.len > 0)
				cw_buf_append_char(&names, ',');
			cw_buf_append_str(&names, col->values[i]);
		}
	}
	if (rc == 0)
		rc = cw_binlog_text_utf8(r, col->collation, (const uint8_t *)cw_buf_cstr(&names),
			names.len, at, out);
	cw_buf_free(&names);
	return rc;
}

/* CHAR, VARCHAR, TEXT, BLOB: text in its charset, or "\x" + hex for binary. */
static int put_string(cw_binlog_reader_t *r, const cw_binlog_column_t *col, const uint8_t *p,
	size_t len, size_t pad_to, cw_buf_t *out)
{
	if (col->collation == CW_MYSQL_BINARY_COLLATION) {
		cw_buf_append_str(out, "\\x");
		put_hex(out, p, len);
		/* BINARY(n) drops trailing zero bytes in the binlog; a SELECT shows them */
		for (size_t i = len; i < pad_to; i++)
			cw_buf_append_str(out, "00");
		return 0;
	}
	return cw_binlog_text_utf8(r, col->collation, p, len, (size_t)(p - r->bytes), out);
}

static int read_value(cw_binlog_reader_t *r, const cw_binlog_column_t *col, cw_buf_t *out,
	cw_binlog_value_kind_t *kind)
{
	const uint8_t *p;
	size_t len, at = r->pos;
	uint64_t v;
	int fsp = col->meta;
	*kind = CW_BINLOG_VALUE_STRING;
	switch (col->type) {
	case CW_MYSQL_TYPE_TINY: *kind = CW_BINLOG_VALUE_NUMBER; return read_int(r, col, 1, out);
	case CW_MYSQL_TYPE_SHORT: *kind = CW_BINLOG_VALUE_NUMBER; return read_int(r, col, 2, out);
	case CW_MYSQL_TYPE_INT24: *kind = CW_BINLOG_VALUE_NUMBER; return read_int(r, col, 3, out);
	case CW_MYSQL_TYPE_LONG: *kind = CW_BINLOG_VALUE_NUMBER; return read_int(r, col, 4, out);
	case CW_MYSQL_TYPE_LONGLONG: *kind = CW_BINLOG_VALUE_NUMBER; return read_int(r, col, 8, out);
	case CW_MYSQL_TYPE_FLOAT: {
		float f;
		if (cw_binlog_read_uint(r, 4, "FLOAT", &v))
			return CW_EPROTO;
		uint32_t bits = (uint32_t)v;
		memcpy(&f, &bits, 4);
		if (!isfinite(f))
			return cw_binlog_fail(r, at, "FLOAT is not finite");
		*kind = CW_BINLOG_VALUE_NUMBER;
		put_float(out, f);
		return 0;
	}
	case CW_MYSQL_TYPE_DOUBLE: {
		double d;
		if (cw_binlog_read_uint(r, 8, "DOUBLE", &v))
			return CW_EPROTO;
		memcpy(&d, &v, 8);
		if (!isfinite(d))
			return cw_binlog_fail(r, at, "DOUBLE is not finite");
		*kind = CW_BINLOG_VALUE_NUMBER;
		put_double(out, d);
		return 0;
	}
	case CW_MYSQL_TYPE_NEWDECIMAL: {
		size_t used;
		if (cw_binlog_read_decimal(r, col->meta >> 8, col->meta & 0xff, r->bytes + r->pos,
			r->len - r->pos, &used, out))
			return CW_EPROTO;
		r->pos += used;
		*kind = CW_BINLOG_VALUE_NUMBER;
		return 0;
	}
	case CW_MYSQL_TYPE_YEAR:
		if (cw_binlog_read_uint(r, 1, "YEAR", &v))
			return CW_EPROTO;
		*kind = CW_BINLOG_VALUE_NUMBER;
		cw_buf_appendf(out, "%u", v == 0 ? 0u : (unsigned)(1900 + v));
		return 0;
	case CW_MYSQL_TYPE_BIT: {
		size_t n = (size_t)(col->meta + 7) / 8;
		if (n == 0 || n > 8)
			return cw_binlog_fail(r, at, "invalid BIT(%u)", col->meta);
		if (cw_binlog_need(r, n, "BIT"))
			return CW_EPROTO;
		cw_buf_appendf(out, "%" PRIu64, cw_binlog_be(r->bytes + r->pos, n));
		r->pos += n;
		*kind = CW_BINLOG_VALUE_NUMBER;
		return 0;
	}
	case CW_MYSQL_TYPE_DATE:
		if (cw_binlog_read_uint(r, 3, "DATE", &v))
			return CW_EPROTO;
		cw_buf_appendf(out, "%04u-%02u-%02u", (unsigned)(v >> 9), (unsigned)((v >> 5) & 15),
			(unsigned)(v & 31));
		return 0;
	case CW_MYSQL_TYPE_TIME: {
		if (cw_binlog_read_uint(r, 3, "TIME", &v))
			return CW_EPROTO;
		int32_t hms = (int32_t)(v << 8) >> 8;
		uint32_t a = (uint32_t)(hms < 0 ? -hms : hms);
		cw_buf_appendf(out, "%s%02u:%02u:%02u", hms < 0 ? "-" : "", a / 10000, a / 100 % 100, a % 100);
		return 0;
	}
	case CW_MYSQL_TYPE_DATETIME: {
		if (cw_binlog_read_uint(r, 8, "DATETIME", &v))
			return CW_EPROTO;
		uint64_t d = v / 1000000, t = v % 1000000;
		cw_buf_appendf(out, "%04u-%02u-%02u %02u:%02u:%02u", (unsigned)(d / 10000),
			(unsigned)(d / 100 % 100), (unsigned)(d % 100), (unsigned)(t / 10000),
			(unsigned)(t / 100 % 100), (unsigned)(t % 100));
		return 0;
	}
	case CW_MYSQL_TYPE_TIMESTAMP:
		if (cw_binlog_read_uint(r, 4, "TIMESTAMP", &v))
			return CW_EPROTO;
		put_timestamp(out, (uint32_t)v, 0, 0);
		return 0;
	case CW_MYSQL_TYPE_TIMESTAMP2:
		if (fsp > 6 || cw_binlog_need(r, 4 + frac_bytes(fsp), "TIMESTAMP"))
			return fsp > 6 ? cw_binlog_fail(r, at, "invalid TIMESTAMP(%d)", fsp) : CW_EPROTO;
		put_timestamp(out, (uint32_t)cw_binlog_be(r->bytes + r->pos, 4), fsp,
			frac_micro(r->bytes + r->pos + 4, fsp));
		r->pos += 4 + frac_bytes(fsp);
		return 0;
	case CW_MYSQL_TYPE_DATETIME2:
		if (fsp > 6 || cw_binlog_need(r, 5 + frac_bytes(fsp), "DATETIME"))
			return fsp > 6 ? cw_binlog_fail(r, at, "invalid DATETIME(%d)", fsp) : CW_EPROTO;
		cw_binlog_put_datetime_packed(out, cw_binlog_be(r->bytes + r->pos, 5) - UINT64_C(0x8000000000), fsp,
			frac_micro(r->bytes + r->pos + 5, fsp));
		r->pos += 5 + frac_bytes(fsp);
		return 0;
	case CW_MYSQL_TYPE_TIME2:
		if (fsp > 6 || cw_binlog_need(r, 3 + frac_bytes(fsp), "TIME"))
			return fsp > 6 ? cw_binlog_fail(r, at, "invalid TIME(%d)", fsp) : CW_EPROTO;
		cw_binlog_put_time_packed(out, time2_packed(r->bytes + r->pos, fsp), fsp);
		r->pos += 3 + frac_bytes(fsp);
		return 0;
	case CW_MYSQL_TYPE_ENUM:
	case CW_MYSQL_TYPE_SET:
		return read_enum_set(r, col, out, kind);
	case CW_MYSQL_TYPE_VARCHAR:
	case CW_MYSQL_TYPE_VAR_STRING:
		if (read_prefixed(r, col->meta < 256 ? 1 : 2, &p, &len))
			return CW_EPROTO;
		return put_string(r, col, p, len, 0, out);
	case CW_MYSQL_TYPE_STRING:
		if (read_prefixed(r, col->meta < 256 ? 1 : 2, &p, &len))
			return CW_EPROTO;
		return put_string(r, col, p, len, col->meta, out);
	case CW_MYSQL_TYPE_BLOB: case CW_MYSQL_TYPE_TINY_BLOB:
	case CW_MYSQL_TYPE_MEDIUM_BLOB: case CW_MYSQL_TYPE_LONG_BLOB:
	case CW_MYSQL_TYPE_GEOMETRY: case CW_MYSQL_TYPE_JSON:
		if (col->meta < 1 || col->meta > 4)
			return cw_binlog_fail(r, at, "invalid length size %u", col->meta);
		if (read_prefixed(r, col->meta, &p, &len))
			return CW_EPROTO;
		if (col->type == CW_MYSQL_TYPE_GEOMETRY)
			return put_geometry(r, p, len, out);
		if (col->type == CW_MYSQL_TYPE_JSON) {
			*kind = CW_BINLOG_VALUE_JSON;
			return cw_binlog_json_text(p, len, out, r->err);
		}
		return put_string(r, col, p, len, 0, out);
	default:
		return cw_binlog_fail(r, at, "column type %u is not supported", col->type);
	}
}

int cw_binlog_value_read(const cw_binlog_column_t *col, const uint8_t *bytes, size_t *pos,
	size_t end, cw_buf_t *text, cw_binlog_value_kind_t *kind, cw_err_t *err)
{
	/* The column's name goes into an error only when one is written. */
	cw_binlog_reader_t r = {bytes, end, *pos, "column", err, col->name != NULL ? col->name : "?"};
	size_t mark = text->len;
	int rc = read_value(&r, col, text, kind);
	if (rc != 0) {
		text->len = mark;
		return rc;
	}
	*pos = r.pos;
	return 0;
}
