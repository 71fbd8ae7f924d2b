/* This file contains the duration, size and integer parsers and the printers declared in units.h. */
#include "core/units.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DOMAIN "units"
#define DURATION_UNITS "use ms, s, m, h or d: 250ms, 5s, 10m, 1h, 7d"
#define SIZE_UNITS "use B, KiB, MiB, GiB, TiB, kB, MB, GB or TB: 512KiB, 64MiB"

typedef struct unit {
	const char *name;
	int64_t factor;
} unit_t;

/* Largest first, so the printer can take the first unit that divides. */
static const unit_t duration_units[] = {
	{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1},
};

/* The binary units first, largest first, down to B: the printer uses only those. */
static const unit_t size_units[] = {
	{"TiB", INT64_C(1) << 40}, {"GiB", INT64_C(1) << 30}, {"MiB", INT64_C(1) << 20},
	{"KiB", INT64_C(1) << 10}, {"B", 1},
	{"TB", INT64_C(1000000000000)}, {"GB", 1000000000}, {"MB", 1000000}, {"kB", 1000},
};
#define SIZE_BINARY_UNITS 5

#define NUNITS(a) (sizeof a / sizeof a[0])

/*
 * Reads the digits at text[*pos] into *value. Returns 0, 1 when there are no
 * digits, 2 when the number does not fit in int64.
 */
static int read_number(const char *text, size_t *pos, int64_t *value)
{
	size_t start = *pos;
	int64_t n = 0;
	while (isdigit((unsigned char)text[*pos])) {
		int digit = text[*pos] - '0';
		if (n > (INT64_MAX - digit) / 10)
			return 2;
		n = n * 10 + digit;
		(*pos)++;
	}
	if (*pos == start)
		return 1;
	*value = n;
	return 0;
}

/* Reads the letters at text[*pos] into unit (at most 15, NUL-terminated); returns their count. */
static size_t read_unit(const char *text, size_t *pos, char unit[16])
{
	size_t n = 0;
	while (isalpha((unsigned char)text[*pos])) {
		if (n < 15)
			unit[n++] = text[*pos];
		(*pos)++;
	}
	unit[n] = '\0';
	return n;
}

static const unit_t *find_unit(const unit_t *units, size_t nunits, const char *name, bool nocase)
{
	for (size_t i = 0; i < nunits; i++) {
		if ((nocase ? strcasecmp(units[i].name, name) : strcmp(units[i].name, name)) == 0)
			return &units[i];
	}
	return NULL;
}

/* Message for a byte that is neither a digit nor a letter. */
static int bad_char(const char *what, const char *text, size_t pos, const char *hint, cw_err_t *err)
{
	unsigned char c = (unsigned char)text[pos];
	if (c == ' ')
		return cw_err_set(err, CW_EINVAL, DOMAIN, "invalid %s: unexpected space at position %zu (%s)",
		                  what, pos + 1, hint);
	if (c > 0x20 && c < 0x7f)
		return cw_err_set(err, CW_EINVAL, DOMAIN,
		                  "invalid %s: unexpected character '%c' at position %zu (%s)", what, c,
		                  pos + 1, hint);
	return cw_err_set(err, CW_EINVAL, DOMAIN,
	                  "invalid %s: unexpected byte 0x%02x at position %zu (%s)", what, c, pos + 1,
	                  hint);
}

int cw_duration_parse(const char *text, int64_t *ms, cw_err_t *err)
{
	if (text == NULL || text[0] == '\0')
		return cw_err_set(err, CW_EINVAL, DOMAIN, "invalid duration: empty (%s)", DURATION_UNITS);
	if (strcmp(text, "0") == 0) {
		*ms = 0;
		return 0;
	}
	int64_t total = 0;
	size_t pos = 0;
	while (text[pos] != '\0') {
		int64_t number = 0;
		char unit_name[16];
		int rc = read_number(text, &pos, &number);
		if (rc == 1)
			return bad_char("duration", text, pos, DURATION_UNITS, err);
		if (rc == 2)
			return cw_err_set(err, CW_EINVAL, DOMAIN, "invalid duration: number too large");
		if (read_unit(text, &pos, unit_name) == 0) {
			if (text[pos] == '\0')
				return cw_err_set(err, CW_EINVAL, DOMAIN,
				                  "invalid duration: a number without a unit (%s)",
				                  DURATION_UNITS);
			return bad_char("duration", text, pos, DURATION_UNITS, err);
		}
		const unit_t *unit = find_unit(duration_units, NUNITS(duration_units), unit_name, false);
		if (unit == NULL)
			return cw_err_set(err, CW_EINVAL, DOMAIN, "invalid duration: unknown unit \"%s\" (%s)",
			                  unit_name, DURATION_UNITS);
		if (number > (INT64_MAX - total) / unit->factor)
			return cw_err_set(err, CW_EINVAL, DOMAIN,
			                  "invalid duration: too large (the limit is %" PRId64 "d)",
			                  INT64_MAX / duration_units[0].factor);
		total += number * unit->factor;
	}
	*ms = total;
	return 0;
}

int cw_size_parse(const char *text, int64_t *bytes, cw_err_t *err)
{
	if (text == NULL || text[0] == '\0')
		return cw_err_set(err, CW_EINVAL, DOMAIN, "invalid size: empty (%s)", SIZE_UNITS);
	size_t pos = 0;
	int64_t number = 0;
	char unit_name[16];
	int rc = read_number(text, &pos, &number);
	if (rc == 1)
		return bad_char("size", text, pos, SIZE_UNITS, err);
	if (rc == 2)
		return cw_err_set(err, CW_EINVAL, DOMAIN, "invalid size: number too large");
	int64_t factor = 1;
	if (read_unit(text, &pos, unit_name) > 0) {
		const unit_t *unit = find_unit(size_units, NUNITS(size_units), unit_name, true);
		if (unit == NULL)
			return cw_err_set(err, CW_EINVAL, DOMAIN, "invalid size: unknown unit \"%s\" (%s)",
			                  unit_name, SIZE_UNITS);
		factor = unit->factor;
	}
	if (text[pos] != '\0')
		return bad_char("size", text, pos, SIZE_UNITS, err);
	if (number > INT64_MAX / factor)
		return cw_err_set(err, CW_EINVAL, DOMAIN,
		                  "invalid size: too large (the limit is %" PRId64 "TiB)",
		                  INT64_MAX / size_units[0].factor);
	*bytes = number * factor;
	return 0;
}

int cw_integer_parse(const char *what, const char *text, int64_t min, int64_t max, int64_t *out,
                     cw_err_t *err)
{
	const char *digits = text[0] == '-' ? text + 1 : text;
	if (!isdigit((unsigned char)digits[0]))
		return cw_err_set(err, CW_EINVAL, DOMAIN, "%s: expected an integer, got \"%.64s\"",
		                  what, text);
	errno = 0;
	char *end = NULL;
	long long value = strtoll(text, &end, 10);
	if (*end != '\0' || errno != 0)
		return cw_err_set(err, CW_EINVAL, DOMAIN, "%s: expected an integer, got \"%.64s\"",
		                  what, text);
	if (value < min || value > max)
		return cw_err_set(err, CW_EINVAL, DOMAIN, "%s: %lld is out of range (%lld..%lld)",
		                  what, value, (long long)min, (long long)max);
	*out = value;
	return 0;
}

/*
 * Writes value with the first of units[] (largest first, the last one of
 * factor 1) that divides it; 0 and negative values are written plainly.
 */
static void format_with(int64_t value, const unit_t *units, size_t nunits,
                        char out[CW_UNITS_FORMAT_LEN])
{
	if (value == 0) {
		snprintf(out, CW_UNITS_FORMAT_LEN, "0");
		return;
	}
	size_t i = 0;
	while (value > 0 && value % units[i].factor != 0)
		i++;
	if (value < 0)
		i = nunits - 1;
	snprintf(out, CW_UNITS_FORMAT_LEN, "%" PRId64 "%s", value / units[i].factor, units[i].name);
}

void cw_duration_format(int64_t ms, char out[CW_UNITS_FORMAT_LEN])
{
	format_with(ms, duration_units, NUNITS(duration_units), out);
}

void cw_size_format(int64_t bytes, char out[CW_UNITS_FORMAT_LEN])
{
	format_with(bytes, size_units, SIZE_BINARY_UNITS, out);
}
