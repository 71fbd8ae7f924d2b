/* This file contains the streaming JSON writer declared in json.h. */
#include "core/json.h"

#include <assert.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* frames[] bits: the kind of the open level and whether it holds an item. */
#define FRAME_ARRAY 1u
#define FRAME_HAS_ITEMS 2u

static int fail(cw_json_t *w, int code, cw_err_t *err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(cw_json_t *w, int code, cw_err_t *err, const char *fmt, ...)
{
	char message[CW_ERR_MESSAGE_LEN];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(message, sizeof message, fmt, ap);
	va_end(ap);
	w->code = code;
	return cw_err_set(err, code, "json", "%s", message);
}

void cw_json_init(cw_json_t *w, cw_buf_t *buf, unsigned flags)
{
	w->buf = buf;
	w->flags = flags;
	w->code = 0;
	w->depth = 0;
	w->key_done = false;
}

int cw_json_finish(const cw_json_t *w)
{
	assert(w->code != 0 || (w->depth == 0 && !w->key_done));
	return w->code;
}

/* Places the comma (or checks the key) before a value. */
static void before_value(cw_json_t *w)
{
	if (w->depth == 0)
		return;
	unsigned char *frame = &w->frames[w->depth - 1];
	if (*frame & FRAME_ARRAY) {
		if (*frame & FRAME_HAS_ITEMS)
			cw_buf_append_char(w->buf, ',');
		*frame |= FRAME_HAS_ITEMS;
		return;
	}
	assert(w->key_done && "a value inside an object needs a key first");
	w->key_done = false;
}

static int begin(cw_json_t *w, bool array, cw_err_t *err)
{
	if (w->code)
		return w->code;
	if (w->depth >= CW_JSON_MAX_DEPTH)
		return fail(w, CW_EINVAL, err, "value nests deeper than %d levels",
		            CW_JSON_MAX_DEPTH);
	before_value(w);
	w->frames[w->depth++] = array ? FRAME_ARRAY : 0;
	cw_buf_append_char(w->buf, array ? '[' : '{');
	return 0;
}

static int end(cw_json_t *w, bool array)
{
	if (w->code)
		return w->code;
	assert(w->depth > 0 && "closing a level that is not open");
	assert(((w->frames[w->depth - 1] & FRAME_ARRAY) != 0) == array);
	assert(!w->key_done && "a key is still waiting for its value");
	w->depth--;
	cw_buf_append_char(w->buf, array ? ']' : '}');
	return 0;
}

int cw_json_object_begin(cw_json_t *w, cw_err_t *err)
{
	return begin(w, false, err);
}

int cw_json_object_end(cw_json_t *w, cw_err_t *err)
{
	return end(w, false);
}

int cw_json_array_begin(cw_json_t *w, cw_err_t *err)
{
	return begin(w, true, err);
}

int cw_json_array_end(cw_json_t *w, cw_err_t *err)
{
	return end(w, true);
}

size_t cw_json_utf8_invalid_at(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < len) {
		/* ASCII eight bytes at a time: most text is. */
		while (len - i >= 8) {
			uint64_t word;
			memcpy(&word, p + i, 8);
			if (word & 0x8080808080808080ULL)
				break;
			i += 8;
		}
		if (i == len)
			break;
		unsigned lead = p[i];
		if (lead < 0x80) {
			i++;
			continue;
		}
		size_t more;
		uint32_t cp;
		if (lead >= 0xc2 && lead <= 0xdf) {
			more = 1;
			cp = lead & 0x1f;
		} else if (lead >= 0xe0 && lead <= 0xef) {
			more = 2;
			cp = lead & 0x0f;
		} else if (lead >= 0xf0 && lead <= 0xf4) {
			more = 3;
			cp = lead & 0x07;
		} else {
			return i; /* a continuation byte, an overlong C0/C1 lead, F5-FF */
		}
		if (len - i <= more)
			return i; /* truncated */
		for (size_t k = 1; k <= more; k++) {
			unsigned next = p[i + k];
			if ((next & 0xc0) != 0x80)
				return i;
			cp = (cp << 6) | (next & 0x3f);
		}
		if (more == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
			return i; /* overlong or a surrogate */
		if (more == 3 && (cp < 0x10000 || cp > 0x10ffff))
			return i; /* overlong or past U+10FFFF */
		i += more + 1;
	}
	return len;
}

bool cw_json_validate_utf8(const char *s, size_t len)
{
	return cw_json_utf8_invalid_at(s, len) == len;
}

static const char *escape_of(unsigned char c)
{
	switch (c) {
	case '"': return "\\\"";
	case '\\': return "\\\\";
	case '\n': return "\\n";
	case '\t': return "\\t";
	case '\r': return "\\r";
	case '\b': return "\\b";
	case '\f': return "\\f";
	default: return NULL;
	}
}

/* Checks that s can be written as a JSON string; `what` names it in errors. */
static int check_string(cw_json_t *w, const char *s, size_t len, const char *what,
                        cw_err_t *err)
{
	size_t bad = cw_json_utf8_invalid_at(s, len);
	if (bad < len)
		return fail(w, CW_EINVAL, err,
		            "%s is not valid UTF-8: byte 0x%02x at offset %zu", what,
		            (unsigned char)s[bad], bad);
	if ((w->flags & CW_JSON_NO_NUL) && memchr(s, '\0', len) != NULL)
		return fail(w, CW_EINVAL, err,
		            "%s contains a NUL byte, which PostgreSQL cannot store", what);
	return 0;
}

/* Appends s (checked) quoted and escaped. */
static void append_string(cw_buf_t *buf, const char *s, size_t len)
{
	cw_buf_reserve(buf, len + 2);
	cw_buf_append_char(buf, '"');
	size_t run = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f)
			continue;
		cw_buf_append(buf, s + run, i - run);
		run = i + 1;
		const char *esc = escape_of(c);
		if (esc)
			cw_buf_append_str(buf, esc);
		else
			cw_buf_appendf(buf, "\\u%04x", c);
	}
	cw_buf_append(buf, s + run, len - run);
	cw_buf_append_char(buf, '"');
}

/* Whether s needs neither checking nor escaping: printable ASCII other than " and \\. */
static bool plain_ascii(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
			return false;
	}
	return true;
}

int cw_json_key_len(cw_json_t *w, const char *key, size_t len, cw_err_t *err)
{
	/* Keys are mostly column names: plain ASCII is copied as it is. */
	bool plain = plain_ascii(key, len);
	if (w->code || (!plain && check_string(w, key, len, "key", err) != 0))
		return w->code;
	assert(w->depth > 0 && !(w->frames[w->depth - 1] & FRAME_ARRAY) &&
	       "a key outside an object");
	assert(!w->key_done && "two keys in a row");
	unsigned char *frame = &w->frames[w->depth - 1];
	bool comma = (*frame & FRAME_HAS_ITEMS) != 0;
	if (plain) {
		cw_buf_t *buf = w->buf;
		cw_buf_reserve(buf, len + 4);
		if (comma)
			buf->data[buf->len++] = ',';
		buf->data[buf->len++] = '"';
		memcpy(buf->data + buf->len, key, len);
		buf->len += len;
		buf->data[buf->len++] = '"';
		buf->data[buf->len++] = ':';
		buf->data[buf->len] = '\0';
	} else {
		if (comma)
			cw_buf_append_char(w->buf, ',');
		append_string(w->buf, key, len);
		cw_buf_append_char(w->buf, ':');
	}
	*frame |= FRAME_HAS_ITEMS;
	w->key_done = true;
	return 0;
}

int cw_json_key(cw_json_t *w, const char *key, cw_err_t *err)
{
	return cw_json_key_len(w, key, strlen(key), err);
}

int cw_json_string_len(cw_json_t *w, const char *s, size_t len, cw_err_t *err)
{
	if (w->code || check_string(w, s, len, "string", err) != 0)
		return w->code;
	before_value(w);
	append_string(w->buf, s, len);
	return 0;
}

int cw_json_string(cw_json_t *w, const char *s, cw_err_t *err)
{
	return cw_json_string_len(w, s, strlen(s), err);
}

/* Writes value's decimal digits backwards ending at end; returns the start. */
static char *format_u64(uint64_t value, char *end)
{
	char *p = end;
	do {
		*--p = (char)('0' + value % 10);
		value /= 10;
	} while (value != 0);
	return p;
}

int cw_json_uint64(cw_json_t *w, uint64_t value, cw_err_t *err)
{
	if (w->code)
		return w->code;
	char digits[24];
	char *end = digits + sizeof digits;
	char *start = format_u64(value, end);
	before_value(w);
	cw_buf_append(w->buf, start, (size_t)(end - start));
	return 0;
}

int cw_json_int64(cw_json_t *w, int64_t value, cw_err_t *err)
{
	if (w->code)
		return w->code;
	char digits[24];
	char *end = digits + sizeof digits;
	/* Negate in unsigned arithmetic so INT64_MIN stays defined. */
	uint64_t magnitude = value < 0 ? 0 - (uint64_t)value : (uint64_t)value;
	char *start = format_u64(magnitude, end);
	if (value < 0)
		*--start = '-';
	before_value(w);
	cw_buf_append(w->buf, start, (size_t)(end - start));
	return 0;
}

/* Rewrites printf's exponent ("1e+300", "1e-05") to its shortest form. */
static size_t tidy_exponent(char *text, size_t len)
{
	char *e = strchr(text, 'e');
	if (e == NULL)
		return len;
	char *src = e + 1;
	char *dst = e + 1;
	if (*src == '+')
		src++;
	else if (*src == '-')
		*dst++ = *src++;
	while (*src == '0' && src[1] != '\0')
		src++;
	memmove(dst, src, strlen(src) + 1);
	return strlen(text);
}

/*
 * The common case without printf: a value that is exactly the double nearest
 * to some decimal r / 10^k with at most 15 significant digits, between 1e-4
 * and 1e15 where printf would not use an exponent. Checking that r / 10^k
 * (correctly rounded, both operands exact) gives value back proves that the
 * text reads back; the smallest k gives the shortest text, the one %.15g
 * prints. Returns 0 when the value is not such a decimal.
 */
static size_t format_short_decimal(double value, char *out)
{
	static const double powers[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7,
	                                1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
	double magnitude = fabs(value);
	if (!(magnitude >= 1e-4 && magnitude < 1e15))
		return 0;
	for (int k = 0; k < 16; k++) {
		double scaled = magnitude * powers[k];
		if (scaled >= 1e15)
			return 0;   /* more than 15 significant digits */
		double rounded = nearbyint(scaled);
		if (rounded / powers[k] != magnitude)
			continue;
		char digits[24];
		char *end = digits + sizeof digits;
		char *start = format_u64((uint64_t)rounded, end);
		size_t ndigits = (size_t)(end - start);
		char *p = out;
		if (value < 0)
			*p++ = '-';
		if ((size_t)k >= ndigits) {   /* 0.000ddd */
			*p++ = '0';
			*p++ = '.';
			for (size_t z = ndigits; z < (size_t)k; z++)
				*p++ = '0';
			memcpy(p, start, ndigits);
			p += ndigits;
		} else {
			memcpy(p, start, ndigits - (size_t)k);
			p += ndigits - (size_t)k;
			if (k > 0) {
				*p++ = '.';
				memcpy(p, end - k, (size_t)k);
				p += k;
			}
		}
		*p = '\0';
		return (size_t)(p - out);
	}
	return 0;
}

size_t cw_json_format_double(double value, char *out)
{
	out[0] = '\0';
	if (!isfinite(value))
		return 0;
	if (value == 0) {
		strcpy(out, signbit(value) ? "-0" : "0");
		return strlen(out);
	}
	size_t len = format_short_decimal(value, out);
	if (len > 0)
		return len;
	/* 15 significant digits read back for most values and then are the
	 * shortest form; subnormals carry fewer digits, so search from 1. */
	int precision = fabs(value) < DBL_MIN ? 1 : 15;
	for (; precision <= 17; precision++) {
		int n = snprintf(out, CW_JSON_DOUBLE_LEN, "%.*g", precision, value);
		len = tidy_exponent(out, (size_t)n);
		if (strtod(out, NULL) == value)
			break;
	}
	return len;
}

int cw_json_double(cw_json_t *w, double value, cw_err_t *err)
{
	if (w->code)
		return w->code;
	char text[CW_JSON_DOUBLE_LEN];
	size_t len = cw_json_format_double(value, text);
	if (len == 0)
		return fail(w, CW_EINVAL, err, "%s cannot be represented in JSON",
		            isnan(value) ? "NaN" : "an infinite number");
	before_value(w);
	cw_buf_append(w->buf, text, len);
	return 0;
}

int cw_json_bool(cw_json_t *w, bool value, cw_err_t *err)
{
	return cw_json_raw(w, value ? "true" : "false", value ? 4 : 5, err);
}

int cw_json_null(cw_json_t *w, cw_err_t *err)
{
	return cw_json_raw(w, "null", 4, err);
}

int cw_json_raw(cw_json_t *w, const char *text, size_t len, cw_err_t *err)
{
	if (w->code)
		return w->code;
	before_value(w);
	cw_buf_append(w->buf, text, len);
	return 0;
}

/* Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar). */
static void civil_from_days(int64_t days, int64_t *year, unsigned *month, unsigned *day)
{
	days += 719468;
	int64_t era = (days >= 0 ? days : days - 146096) / 146097;
	unsigned doe = (unsigned)(days - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*day = doy - (153 * mp + 2) / 5 + 1;
	*month = mp < 10 ? mp + 3 : mp - 9;
	*year = (int64_t)yoe + era * 400 + (*month <= 2);
}

size_t cw_json_format_date(int64_t ms, char *out)
{
	const int64_t ms_per_day = 86400000;
	int64_t days = ms / ms_per_day;
	int64_t rest = ms % ms_per_day;
	if (rest < 0) {
		rest += ms_per_day;
		days--;
	}
	int64_t year;
	unsigned month, day;
	civil_from_days(days, &year, &month, &day);
	out[0] = '\0';
	if (year < 0 || year > 9999)
		return 0;
	unsigned msec = (unsigned)(rest % 1000);
	unsigned sec = (unsigned)(rest / 1000);
	/* By hand rather than snprintf: dates are on the projection's hot path. */
	const struct {
		unsigned value, width;
		char after;
	} fields[] = {
		{(unsigned)year, 4, '-'},     {month, 2, '-'},       {day, 2, 'T'},
		{sec / 3600, 2, ':'},         {sec / 60 % 60, 2, ':'}, {sec % 60, 2, '.'},
		{msec, 3, 'Z'},
	};
	char *p = out;
	for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++) {
		unsigned value = fields[f].value;
		for (unsigned d = fields[f].width; d > 0; d--) {
			p[d - 1] = (char)('0' + value % 10);
			value /= 10;
		}
		p += fields[f].width;
		*p++ = fields[f].after;
	}
	*p = '\0';
	return (size_t)(p - out);
}

bool cw_json_number_valid(const char *s, size_t len)
{
	size_t i = 0;
	if (i < len && s[i] == '-')
		i++;
	if (i >= len)
		return false;
	if (s[i] == '0') {
		i++;
	} else if (s[i] >= '1' && s[i] <= '9') {
		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++;
	} else {
		return false;
	}
	if (i < len && s[i] == '.') {
		size_t first = ++i;
		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == first)
			return false;
	}
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			i++;
		size_t first = i;
		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == first)
			return false;
	}
	return i == len;
}

/* ---- jansson values ----------------------------------------------------- */

int cw_json_jansson(cw_json_t *w, const json_t *value, cw_err_t *err)
{
	if (w->code)
		return w->code;
	switch (json_typeof(value)) {
	case JSON_OBJECT: {
		cw_json_object_begin(w, err);
		/* jansson's iterator takes a non-const object; it does not modify it. */
		json_t *object = (json_t *)value;
		for (void *it = json_object_iter(object); it != NULL && w->code == 0;
		     it = json_object_iter_next(object, it)) {
			cw_json_key_len(w, json_object_iter_key(it), json_object_iter_key_len(it),
			                err);
			cw_json_jansson(w, json_object_iter_value(it), err);
		}
		return cw_json_object_end(w, err);
	}
	case JSON_ARRAY:
		cw_json_array_begin(w, err);
		for (size_t i = 0; i < json_array_size(value) && w->code == 0; i++)
			cw_json_jansson(w, json_array_get(value, i), err);
		return cw_json_array_end(w, err);
	case JSON_STRING:
		return cw_json_string_len(w, json_string_value(value), json_string_length(value),
		                          err);
	case JSON_INTEGER:
		return cw_json_int64(w, (int64_t)json_integer_value(value), err);
	case JSON_REAL:
		return cw_json_double(w, json_real_value(value), err);
	case JSON_TRUE:
		return cw_json_bool(w, true, err);
	case JSON_FALSE:
		return cw_json_bool(w, false, err);
	default:
		return cw_json_null(w, err);
	}
}
