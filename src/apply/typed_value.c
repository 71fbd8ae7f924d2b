/* This file contains the JSON value → column value conversion (typed_value.h). */
#include "apply/typed_value.h"

#include "core/json.h"
#include "core/mem.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A number's value as significant digits (no leading or trailing zeros) and
 * the exponent E of 0.DIGITS × 10^E; zero has no digits. */
typedef struct decimal {
	bool negative;
	char digits[40];
	size_t ndigits;
	long exponent;
	bool too_long;           /* more significant digits than any double carries */
} decimal_t;

static void decimal_read(const char *s, size_t len, decimal_t *d)
{
	size_t i = 0;
	long point = 0;          /* digits before the decimal point, leading zeros excluded */
	bool seen_point = false, leading = true;
	size_t trailing_zeros = 0;
	memset(d, 0, sizeof *d);
	if (i < len && s[i] == '-')
		d->negative = true, i++;
	for (; i < len && s[i] != 'e' && s[i] != 'E'; i++) {
		if (s[i] == '.') {
			seen_point = true;
			continue;
		}
		if (leading && s[i] == '0') {
			if (seen_point)
				point--;
			continue;
		}
		leading = false;
		if (!seen_point)
			point++;
		if (d->ndigits < sizeof d->digits)
			d->digits[d->ndigits++] = s[i];
		else if (s[i] != '0')
			d->too_long = true;
		trailing_zeros = s[i] == '0' ? trailing_zeros + 1 : 0;
	}
	if (trailing_zeros <= d->ndigits)
		d->ndigits -= trailing_zeros < d->ndigits ? trailing_zeros : d->ndigits;
	long exponent = 0;
	if (i < len) {
		errno = 0;
		char buf[32];
		size_t n = len - i - 1 < sizeof buf - 1 ? len - i - 1 : sizeof buf - 1;
		memcpy(buf, s + i + 1, n);
		buf[n] = '\0';
		exponent = strtol(buf, NULL, 10);
		if (errno != 0)
			d->too_long = true;
	}
	d->exponent = point + exponent;
	if (d->ndigits == 0)
		d->exponent = 0, d->negative = false;
}

static bool decimal_equal(const decimal_t *a, const decimal_t *b)
{
	return !a->too_long && !b->too_long && a->negative == b->negative &&
	       a->ndigits == b->ndigits && a->exponent == b->exponent &&
	       memcmp(a->digits, b->digits, a->ndigits) == 0;
}

/* Whether the double holds the number's digits: its shortest text has the same value. */
static bool double_holds(const char *number, size_t len, double value)
{
	char text[CW_JSON_DOUBLE_LEN];
	size_t n = cw_json_format_double(value, text);
	if (n == 0)
		return false;   /* beyond the double range */
	decimal_t source, stored;
	decimal_read(number, len, &source);
	decimal_read(text, n, &stored);
	return decimal_equal(&source, &stored);
}

/*
 * Whether a double holds the number's digits without formatting it back: a
 * decimal of at most DBL_DIG (15) significant digits in the double's normal
 * range always is the nearest double rounded to 15 digits, so its shortest
 * text has the same value. Most numbers are such (prices, quantities).
 */
static bool few_digits(const char *number, size_t len, double value)
{
	if (!(fabs(value) > 1e-290 && fabs(value) < 1e290))
		return false;
	size_t digits = 0, zeros = 0;
	bool leading = true;
	for (size_t i = 0; i < len && number[i] != 'e' && number[i] != 'E'; i++) {
		char c = number[i];
		if (c < '0' || c > '9' || (leading && c == '0'))
			continue;   /* the sign, the point, leading zeros */
		leading = false;
		if (c == '0') {
			zeros++;    /* significant only when a nonzero digit follows */
			continue;
		}
		digits += zeros + 1;
		zeros = 0;
	}
	return digits <= DBL_DIG;
}

/*
 * The JSON number's double without strtod when that is exact (Clinger's
 * fast path): at most 15 significant digits as an integer m and a power of
 * ten 10^k with |k| <= 22 are both doubles exactly, so m * 10^k (or
 * m / 10^-k) is one correctly rounded operation: strtod's result. false
 * for any other number (zero too): read it with strtod.
 */
static bool exact_double(const char *number, size_t len, double *out)
{
	static const double powers[] = {
		1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
		1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
	};
	uint64_t mantissa = 0;
	int digits = 0;
	long exponent = 0;
	bool seen_point = false;
	size_t i = number[0] == '-';
	for (; i < len && number[i] != 'e' && number[i] != 'E'; i++) {
		char c = number[i];
		if (c == '.') {
			seen_point = true;
			continue;
		}
		exponent -= seen_point;
		if (mantissa == 0 && c == '0')
			continue;   /* a leading zero */
		if (++digits > 15)
			return false;
		mantissa = mantissa * 10 + (uint64_t)(c - '0');
	}
	if (i < len) {   /* the exponent */
		i++;
		bool negative = i < len && number[i] == '-';
		i += i < len && (number[i] == '-' || number[i] == '+');
		long e = 0;
		if (i == len)
			return false;
		for (; i < len; i++) {
			if (number[i] < '0' || number[i] > '9' || (e = e * 10 + (number[i] - '0')) > 1000)
				return false;
		}
		exponent += negative ? -e : e;
	}
	if (mantissa == 0 || exponent < -22 || exponent > 22)
		return false;
	double value = (double)mantissa;
	value = exponent >= 0 ? value * powers[exponent] : value / powers[-exponent];
	*out = number[0] == '-' ? -value : value;
	return true;
}

static void set_text(cw_typed_value_t *out, const char *text, size_t len)
{
	out->kind = CW_TYPED_TEXT;
	out->text = text;
	out->text_len = len;
}

static void set_owned(cw_typed_value_t *out, cw_buf_t *buf)
{
	out->kind = CW_TYPED_TEXT;
	out->text_len = buf->len;
	out->owned = cw_buf_take(buf);
	out->text = out->owned;
}

void cw_typed_value_number(const char *number, size_t len, cw_decimal_mode_t mode,
                           cw_typed_value_t *out)
{
	char buf[64];
	memset(out, 0, sizeof *out);
	bool integer = memchr(number, '.', len) == NULL && memchr(number, 'e', len) == NULL &&
	               memchr(number, 'E', len) == NULL;
	if (len < sizeof buf) {
		memcpy(buf, number, len);
		buf[len] = '\0';
		if (integer) {
			errno = 0;
			long long value = strtoll(buf, NULL, 10);
			if (errno == 0) {
				out->kind = CW_TYPED_INTEGER;
				out->integer = value;
				return;
			}
		}
	}
	if (mode == CW_DECIMAL_TEXT) {
		set_text(out, number, len);
		return;
	}
	double value;
	if (!exact_double(number, len, &value)) {
		char *copy = len < sizeof buf ? buf : cw_xstrndup(number, len);
		value = strtod(copy, NULL);
		if (copy != buf)
			free(copy);
	}
	if (mode == CW_DECIMAL_DOUBLE ||
	    (isfinite(value) && (few_digits(number, len, value) || double_holds(number, len, value)))) {
		out->kind = CW_TYPED_REAL;
		out->real = value;
		return;
	}
	set_text(out, number, len);
}

void cw_typed_value_from_field(const cw_json_field_t *field, cw_column_type_t type,
                               cw_decimal_mode_t mode, cw_typed_value_t *out)
{
	memset(out, 0, sizeof *out);
	cw_buf_t buf = CW_BUF_INIT;
	switch (field->kind) {
	case CW_JSON_KIND_NULL:
		out->kind = CW_TYPED_NULL;
		return;
	case CW_JSON_KIND_OBJECT:
	case CW_JSON_KIND_ARRAY:
		cw_json_compact(field->value, field->value_len, &buf);
		set_owned(out, &buf);
		return;
	default:
		break;
	}
	if (type == CW_COL_JSONB) {   /* a scalar as its JSON text: "abc", 2.50, true */
		set_text(out, field->value, field->value_len);
		return;
	}
	switch (field->kind) {
	case CW_JSON_KIND_STRING:
		if (!field->escaped) {
			set_text(out, field->value + 1, field->value_len - 2);
			return;
		}
		cw_json_string_unescape(field->value, field->value_len, &buf);
		set_owned(out, &buf);
		return;
	case CW_JSON_KIND_TRUE:
	case CW_JSON_KIND_FALSE:
		if (type == CW_COL_TEXT) {
			set_text(out, field->value, field->value_len);
			return;
		}
		out->kind = CW_TYPED_INTEGER;
		out->integer = field->kind == CW_JSON_KIND_TRUE;
		return;
	default:   /* a number */
		if (type == CW_COL_TEXT) {
			set_text(out, field->value, field->value_len);
			return;
		}
		cw_typed_value_number(field->value, field->value_len, mode, out);
		/* An integral double in an integer column (a MongoDB 3.0) is that integer. */
		if (type == CW_COL_INTEGER && out->kind == CW_TYPED_REAL && out->real == trunc(out->real) &&
		    fabs(out->real) < 9.2e18) {
			out->kind = CW_TYPED_INTEGER;
			out->integer = (int64_t)out->real;
		}
		return;
	}
}
