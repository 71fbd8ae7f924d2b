/*
 * This file contains Go's time layouts as kazaam's timestamp operation uses
 * them (kazaam_internal.h): a layout is the reference time
 * "Mon Jan 2 15:04:05 MST 2006" written the way a value is written, and the
 * same rules read a value (Go's time.Parse) and write one (Time.Format).
 * Times without a zone are UTC; "$unix" reads and writes Unix seconds, read
 * in the process's local zone as Go's time.Unix does.
 */
#include "transform/kazaam_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

enum {
	STD_NONE, STD_LONG_MONTH, STD_MONTH, STD_NUM_MONTH, STD_ZERO_MONTH, STD_LONG_WEEKDAY,
	STD_WEEKDAY, STD_DAY, STD_UNDER_DAY, STD_ZERO_DAY, STD_UNDER_YEARDAY, STD_ZERO_YEARDAY,
	STD_HOUR, STD_HOUR12, STD_ZERO_HOUR12, STD_MINUTE, STD_ZERO_MINUTE, STD_SECOND,
	STD_ZERO_SECOND, STD_LONG_YEAR, STD_YEAR, STD_PM, STD_PM_LOWER, STD_TZ,
	/* numeric zones; the ISO forms print Z for UTC */
	STD_ISO_TZ, STD_ISO_SECONDS_TZ, STD_ISO_SHORT_TZ, STD_ISO_COLON_TZ,
	STD_ISO_COLON_SECONDS_TZ, STD_NUM_TZ, STD_NUM_SECONDS_TZ, STD_NUM_SHORT_TZ,
	STD_NUM_COLON_TZ, STD_NUM_COLON_SECONDS_TZ,
	STD_FRAC0, STD_FRAC9,
};

typedef struct chunk {
	size_t at, len;   /* where the element is in the layout */
	int std;
	int digits;       /* fractional seconds */
	char sep;         /* fractional seconds: '.' or ',' */
} chunk_t;

static const char *const month_names[] = {"January", "February", "March", "April", "May",
                                          "June", "July", "August", "September", "October",
                                          "November", "December"};
static const char *const day_names[] = {"Sunday", "Monday", "Tuesday", "Wednesday",
                                        "Thursday", "Friday", "Saturday"};

static bool starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool is_digit(const char *s, size_t len, size_t i)
{
	return i < len && s[i] >= '0' && s[i] <= '9';
}

/* The next layout element at or after from; false when there is none. */
static bool next_chunk(const char *layout, size_t from, chunk_t *c)
{
	static const struct { const char *text; int std; } zones[] = {
		{"-070000", STD_NUM_SECONDS_TZ}, {"-07:00:00", STD_NUM_COLON_SECONDS_TZ},
		{"-0700", STD_NUM_TZ}, {"-07:00", STD_NUM_COLON_TZ}, {"-07", STD_NUM_SHORT_TZ},
		{"Z070000", STD_ISO_SECONDS_TZ}, {"Z07:00:00", STD_ISO_COLON_SECONDS_TZ},
		{"Z0700", STD_ISO_TZ}, {"Z07:00", STD_ISO_COLON_TZ}, {"Z07", STD_ISO_SHORT_TZ},
	};
	static const int zero_x[] = {STD_ZERO_MONTH, STD_ZERO_DAY, STD_ZERO_HOUR12,
	                             STD_ZERO_MINUTE, STD_ZERO_SECOND, STD_YEAR};
	size_t n = strlen(layout);
	for (size_t i = from; i < n; i++) {
		const char *s = layout + i;
		*c = (chunk_t){i, 0, STD_NONE, 0, 0};
		switch (*s) {
		case 'J':
			if (starts(s, "January"))
				*c = (chunk_t){i, 7, STD_LONG_MONTH, 0, 0};
			else if (starts(s, "Jan") && !(s[3] >= 'a' && s[3] <= 'z'))
				*c = (chunk_t){i, 3, STD_MONTH, 0, 0};
			break;
		case 'M':
			if (starts(s, "Monday"))
				*c = (chunk_t){i, 6, STD_LONG_WEEKDAY, 0, 0};
			else if (starts(s, "Mon") && !(s[3] >= 'a' && s[3] <= 'z'))
				*c = (chunk_t){i, 3, STD_WEEKDAY, 0, 0};
			else if (starts(s, "MST"))
				*c = (chunk_t){i, 3, STD_TZ, 0, 0};
			break;
		case '0':
			if (s[1] >= '1' && s[1] <= '6')
				*c = (chunk_t){i, 2, zero_x[s[1] - '1'], 0, 0};
			else if (s[1] == '0' && s[2] == '2')
				*c = (chunk_t){i, 3, STD_ZERO_YEARDAY, 0, 0};
			break;
		case '1':
			*c = s[1] == '5' ? (chunk_t){i, 2, STD_HOUR, 0, 0} : (chunk_t){i, 1, STD_NUM_MONTH, 0, 0};
			break;
		case '2':
			*c = starts(s, "2006") ? (chunk_t){i, 4, STD_LONG_YEAR, 0, 0}
			                       : (chunk_t){i, 1, STD_DAY, 0, 0};
			break;
		case '_':
			if (s[1] == '2')   /* "_2006" is a literal '_' and the year */
				*c = starts(s + 1, "2006") ? (chunk_t){i + 1, 4, STD_LONG_YEAR, 0, 0}
				                           : (chunk_t){i, 2, STD_UNDER_DAY, 0, 0};
			else if (s[1] == '_' && s[2] == '2')
				*c = (chunk_t){i, 3, STD_UNDER_YEARDAY, 0, 0};
			break;
		case '3':
		case '4':
		case '5':
			*c = (chunk_t){i, 1, *s == '3' ? STD_HOUR12 : *s == '4' ? STD_MINUTE : STD_SECOND,
			               0, 0};
			break;
		case 'P':
			if (s[1] == 'M')
				*c = (chunk_t){i, 2, STD_PM, 0, 0};
			break;
		case 'p':
			if (s[1] == 'm')
				*c = (chunk_t){i, 2, STD_PM_LOWER, 0, 0};
			break;
		case '-':
		case 'Z':
			for (size_t k = 0; k < sizeof zones / sizeof zones[0]; k++)
				if (starts(s, zones[k].text)) {
					*c = (chunk_t){i, strlen(zones[k].text), zones[k].std, 0, 0};
					break;
				}
			break;
		case '.':
		case ',':
			if (s[1] == '0' || s[1] == '9') {
				size_t j = 1;
				while (s[j] == s[1])
					j++;
				if (!(s[j] >= '0' && s[j] <= '9'))
					*c = (chunk_t){i, j, s[1] == '0' ? STD_FRAC0 : STD_FRAC9, (int)j - 1, *s};
			}
			break;
		default:
			break;
		}
		if (c->std != STD_NONE)
			return true;
	}
	return false;
}

/* ---- civil dates (proleptic Gregorian) ---- */

static int64_t floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = floor_div(y, 400);
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

typedef struct civil {
	int64_t year;
	int month, day, hour, minute, second, weekday, yday;
} civil_t;

static bool is_leap(int64_t y)
{
	return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

static int days_in(int month, int64_t year)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return month == 2 && is_leap(year) ? 29 : days[month - 1];
}

static civil_t civil_of(const kz_time_t *t)
{
	int64_t local = t->unix_sec + t->offset;
	int64_t days = floor_div(local, 86400);
	int64_t secs = local - days * 86400;
	civil_t c;
	c.hour = (int)(secs / 3600);
	c.minute = (int)(secs / 60 % 60);
	c.second = (int)(secs % 60);
	c.weekday = (int)((days % 7 + 11) % 7);   /* 1970-01-01 was a Thursday */
	int64_t z = days + 719468;
	int64_t era = floor_div(z, 146097);
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	c.day = (int)(doy - (153 * mp + 2) / 5 + 1);
	c.month = (int)(mp < 10 ? mp + 3 : mp - 9);
	c.year = yoe + era * 400 + (c.month <= 2);
	c.yday = (int)(days - days_from_civil(c.year, 1, 1)) + 1;
	return c;
}

kz_time_t kz_time_local(int64_t unix_sec, int32_t nsec)
{
	kz_time_t t = {unix_sec, nsec, 0, "UTC"};
	time_t clock = (time_t)unix_sec;
	struct tm tm;
	if (localtime_r(&clock, &tm) != NULL) {
		t.offset = (int32_t)tm.tm_gmtoff;
		snprintf(t.zone, sizeof t.zone, "%s", tm.tm_zone != NULL ? tm.tm_zone : "");
	}
	return t;
}

/* ---- formatting ---- */

static void append_int(cw_buf_t *out, int64_t value, int width)
{
	if (value < 0) {
		cw_buf_append_char(out, '-');
		value = -value;
	}
	cw_buf_appendf(out, "%0*lld", width, (long long)value);
}

static void append_zone(cw_buf_t *out, int std, int offset)
{
	bool iso = std >= STD_ISO_TZ && std <= STD_ISO_COLON_SECONDS_TZ;
	if (iso && offset == 0) {
		cw_buf_append_char(out, 'Z');
		return;
	}
	bool colon = std == STD_ISO_COLON_TZ || std == STD_NUM_COLON_TZ ||
	             std == STD_ISO_COLON_SECONDS_TZ || std == STD_NUM_COLON_SECONDS_TZ;
	bool seconds = std == STD_ISO_SECONDS_TZ || std == STD_NUM_SECONDS_TZ ||
	               std == STD_ISO_COLON_SECONDS_TZ || std == STD_NUM_COLON_SECONDS_TZ;
	int zone = offset / 60, abs_offset = offset;
	cw_buf_append_char(out, zone < 0 ? '-' : '+');
	if (zone < 0) {
		zone = -zone;
		abs_offset = -abs_offset;
	}
	append_int(out, zone / 60, 2);
	if (colon)
		cw_buf_append_char(out, ':');
	if (std != STD_NUM_SHORT_TZ && std != STD_ISO_SHORT_TZ)
		append_int(out, zone % 60, 2);
	if (seconds) {
		if (colon)
			cw_buf_append_char(out, ':');
		append_int(out, abs_offset % 60, 2);
	}
}

static void append_fraction(cw_buf_t *out, const chunk_t *c, int32_t nsec)
{
	char digits[10];
	snprintf(digits, sizeof digits, "%09d", (int)nsec);
	int n = c->digits > 9 ? 9 : c->digits;
	if (c->std == STD_FRAC9)
		while (n > 0 && digits[n - 1] == '0')
			n--;
	if (n == 0 && c->std == STD_FRAC9)
		return;
	cw_buf_append_char(out, c->sep);
	cw_buf_append(out, digits, (size_t)n);
}

static void format_chunk(const kz_time_t *t, const civil_t *v, const chunk_t *c, cw_buf_t *out)
{
	int hour12 = v->hour % 12 == 0 ? 12 : v->hour % 12;
	switch (c->std) {
	case STD_YEAR:        append_int(out, (v->year < 0 ? -v->year : v->year) % 100, 2); break;
	case STD_LONG_YEAR:   append_int(out, v->year, 4); break;
	case STD_MONTH:       cw_buf_append(out, month_names[v->month - 1], 3); break;
	case STD_LONG_MONTH:  cw_buf_append_str(out, month_names[v->month - 1]); break;
	case STD_NUM_MONTH:   append_int(out, v->month, 0); break;
	case STD_ZERO_MONTH:  append_int(out, v->month, 2); break;
	case STD_WEEKDAY:     cw_buf_append(out, day_names[v->weekday], 3); break;
	case STD_LONG_WEEKDAY: cw_buf_append_str(out, day_names[v->weekday]); break;
	case STD_DAY:         append_int(out, v->day, 0); break;
	case STD_UNDER_DAY:
		if (v->day < 10)
			cw_buf_append_char(out, ' ');
		append_int(out, v->day, 0);
		break;
	case STD_ZERO_DAY:    append_int(out, v->day, 2); break;
	case STD_UNDER_YEARDAY:
		if (v->yday < 100)
			cw_buf_append_str(out, v->yday < 10 ? "  " : " ");
		append_int(out, v->yday, 0);
		break;
	case STD_ZERO_YEARDAY: append_int(out, v->yday, 3); break;
	case STD_HOUR:        append_int(out, v->hour, 2); break;
	case STD_HOUR12:      append_int(out, hour12, 0); break;
	case STD_ZERO_HOUR12: append_int(out, hour12, 2); break;
	case STD_MINUTE:      append_int(out, v->minute, 0); break;
	case STD_ZERO_MINUTE: append_int(out, v->minute, 2); break;
	case STD_SECOND:      append_int(out, v->second, 0); break;
	case STD_ZERO_SECOND: append_int(out, v->second, 2); break;
	case STD_PM:          cw_buf_append_str(out, v->hour >= 12 ? "PM" : "AM"); break;
	case STD_PM_LOWER:    cw_buf_append_str(out, v->hour >= 12 ? "pm" : "am"); break;
	case STD_TZ:
		if (t->zone[0] != '\0') {
			cw_buf_append_str(out, t->zone);
		} else {
			int zone = t->offset / 60;
			cw_buf_append_char(out, zone < 0 ? '-' : '+');
			zone = zone < 0 ? -zone : zone;
			append_int(out, zone / 60, 2);
			append_int(out, zone % 60, 2);
		}
		break;
	case STD_FRAC0:
	case STD_FRAC9:       append_fraction(out, c, t->nsec); break;
	default:              append_zone(out, c->std, t->offset); break;
	}
}

void kz_time_format(const kz_time_t *t, const char *layout, cw_buf_t *out)
{
	if (strcmp(layout, "$unix") == 0) {
		cw_buf_appendf(out, "%lld", (long long)t->unix_sec);
		return;
	}
	civil_t v = civil_of(t);
	size_t pos = 0;
	chunk_t c;
	while (next_chunk(layout, pos, &c)) {
		cw_buf_append(out, layout + pos, c.at - pos);
		format_chunk(t, &v, &c, out);
		pos = c.at + c.len;
	}
	cw_buf_append_str(out, layout + pos);
}

/* ---- parsing ---- */

typedef struct parsed {
	int64_t year;
	int month, day, yday, hour, minute, second;
	int32_t nsec;
	bool pm, am, utc;
	int zone_offset;           /* -1: none read */
	bool has_offset;
	char zone_name[16];
} parsed_t;

static int bad_time(cw_err_t *err, const char *layout, const char *value, size_t len,
                    const char *why)
{
	return cw_err_set(err, CW_EINVAL, "kazaam", "could not read time \"%.*s\" as \"%s\": %s",
	                  (int)(len > 64 ? 64 : len), value, layout, why);
}

/* Go's skip: the literal text of the layout, where a run of spaces matches a run of spaces. */
static bool skip_literal(const char **value, size_t *len, const char *prefix, size_t prefix_len)
{
	const char *v = *value;
	size_t n = *len, i = 0;
	while (i < prefix_len) {
		if (prefix[i] == ' ') {
			if (n > 0 && *v != ' ')
				return false;
			while (i < prefix_len && prefix[i] == ' ')
				i++;
			while (n > 0 && *v == ' ') {
				v++;
				n--;
			}
			continue;
		}
		if (n == 0 || *v != prefix[i])
			return false;
		v++;
		n--;
		i++;
	}
	*value = v;
	*len = n;
	return true;
}

/* Go's getnum: one or two digits (exactly two when fixed). */
static bool get_num(const char **value, size_t *len, bool fixed, int *out)
{
	const char *v = *value;
	if (!is_digit(v, *len, 0))
		return false;
	if (!is_digit(v, *len, 1)) {
		if (fixed)
			return false;
		*out = v[0] - '0';
		*value += 1;
		*len -= 1;
		return true;
	}
	*out = (v[0] - '0') * 10 + (v[1] - '0');
	*value += 2;
	*len -= 2;
	return true;
}

/* Case-insensitive prefix match of one of names (or its first three letters). */
static int lookup_name(const char **value, size_t *len, const char *const *names, size_t count,
                       bool abbreviated)
{
	for (size_t i = 0; i < count; i++) {
		size_t n = abbreviated ? 3 : strlen(names[i]);
		if (*len >= n && strncasecmp(*value, names[i], n) == 0) {
			*value += n;
			*len -= n;
			return (int)i;
		}
	}
	return -1;
}

/* Go's parseNanoseconds: value[0] is '.' or ',', then digits (at most nine are used). */
static bool get_nanos(const char *value, size_t n, int32_t *out)
{
	if (value[0] != '.' && value[0] != ',')
		return false;
	if (n > 10)
		n = 10;
	int64_t ns = 0;
	for (size_t i = 1; i < n; i++) {
		if (value[i] < '0' || value[i] > '9')
			return false;
		ns = ns * 10 + (value[i] - '0');
	}
	for (size_t i = n; i < 10; i++)
		ns *= 10;
	*out = (int32_t)ns;
	return true;
}

/* Go's parseTimeZone: the length of a zone abbreviation at value, or 0. */
static size_t zone_length(const char *value, size_t len)
{
	if (len < 3)
		return 0;
	if (len >= 4 && (strncmp(value, "ChST", 4) == 0 || strncmp(value, "MeST", 4) == 0))
		return 4;
	if (strncmp(value, "GMT", 3) == 0) {
		/* GMT, optionally followed by a signed hour offset */
		size_t n = 3;
		if (len > 3 && (value[3] == '+' || value[3] == '-')) {
			size_t k = 4;
			while (k < len && k < 6 && value[k] >= '0' && value[k] <= '9')
				k++;
			if (k > 4)
				n = k;
		}
		return n;
	}
	size_t upper = 0;
	while (upper < 6 && upper < len && value[upper] >= 'A' && value[upper] <= 'Z')
		upper++;
	if (upper == 3)
		return 3;
	if (upper == 4 && (value[3] == 'T' || strncmp(value, "WITA", 4) == 0))
		return 4;
	if (upper == 5 && value[4] == 'T')
		return 5;
	return 0;
}

/* A numeric zone offset in the form std names; false when malformed. */
static bool get_offset(const char **value, size_t *len, int std, int *offset)
{
	const char *v = *value;
	size_t n = *len, used;
	char hh[2], mm[2] = {'0', '0'}, ss[2] = {'0', '0'};
	if (std == STD_ISO_COLON_TZ || std == STD_NUM_COLON_TZ) {
		if (n < 6 || v[3] != ':')
			return false;
		memcpy(hh, v + 1, 2);
		memcpy(mm, v + 4, 2);
		used = 6;
	} else if (std == STD_NUM_SHORT_TZ || std == STD_ISO_SHORT_TZ) {
		if (n < 3)
			return false;
		memcpy(hh, v + 1, 2);
		used = 3;
	} else if (std == STD_ISO_COLON_SECONDS_TZ || std == STD_NUM_COLON_SECONDS_TZ) {
		if (n < 9 || v[3] != ':' || v[6] != ':')
			return false;
		memcpy(hh, v + 1, 2);
		memcpy(mm, v + 4, 2);
		memcpy(ss, v + 7, 2);
		used = 9;
	} else if (std == STD_ISO_SECONDS_TZ || std == STD_NUM_SECONDS_TZ) {
		if (n < 7)
			return false;
		memcpy(hh, v + 1, 2);
		memcpy(mm, v + 3, 2);
		memcpy(ss, v + 5, 2);
		used = 7;
	} else {
		if (n < 5)
			return false;
		memcpy(hh, v + 1, 2);
		memcpy(mm, v + 3, 2);
		used = 5;
	}
	const char *p;
	size_t plen;
	int h, m, s;
	p = hh, plen = 2;
	if (!get_num(&p, &plen, true, &h))
		return false;
	p = mm, plen = 2;
	if (!get_num(&p, &plen, true, &m))
		return false;
	p = ss, plen = 2;
	if (!get_num(&p, &plen, true, &s))
		return false;
	if (h > 24 || m > 60 || s > 60 || (v[0] != '+' && v[0] != '-'))
		return false;
	*offset = (h * 60 + m) * 60 + s;
	if (v[0] == '-')
		*offset = -*offset;
	*value += used;
	*len -= used;
	return true;
}

/* Reads one layout element; a message for bad_time, or NULL. */
static const char *parse_chunk(const char *layout, const chunk_t *c, const char **value,
                               size_t *len, parsed_t *p)
{
	const char *v = *value;
	int num = 0;
	switch (c->std) {
	case STD_YEAR:
		if (!is_digit(v, *len, 0) || !is_digit(v, *len, 1))
			return "bad year";
		p->year = (v[0] - '0') * 10 + (v[1] - '0');
		p->year += p->year >= 69 ? 1900 : 2000;
		*value += 2, *len -= 2;
		return NULL;
	case STD_LONG_YEAR:
		for (int i = 0; i < 4; i++)
			if (!is_digit(v, *len, (size_t)i))
				return "bad year";
		p->year = (v[0] - '0') * 1000 + (v[1] - '0') * 100 + (v[2] - '0') * 10 + (v[3] - '0');
		*value += 4, *len -= 4;
		return NULL;
	case STD_MONTH:
	case STD_LONG_MONTH:
		num = lookup_name(value, len, month_names, 12, c->std == STD_MONTH);
		if (num < 0)
			return "bad month";
		p->month = num + 1;
		return NULL;
	case STD_NUM_MONTH:
	case STD_ZERO_MONTH:
		if (!get_num(value, len, c->std == STD_ZERO_MONTH, &p->month))
			return "bad month";
		return p->month < 1 || p->month > 12 ? "month out of range" : NULL;
	case STD_WEEKDAY:
	case STD_LONG_WEEKDAY:
		return lookup_name(value, len, day_names, 7, c->std == STD_WEEKDAY) < 0 ? "bad weekday"
		                                                                        : NULL;
	case STD_DAY:
	case STD_UNDER_DAY:
	case STD_ZERO_DAY:
		if (c->std == STD_UNDER_DAY && *len > 0 && **value == ' ')
			*value += 1, *len -= 1;
		return get_num(value, len, c->std == STD_ZERO_DAY, &p->day) ? NULL : "bad day";
	case STD_UNDER_YEARDAY:
	case STD_ZERO_YEARDAY: {
		for (int i = 0; i < 2; i++)
			if (c->std == STD_UNDER_YEARDAY && *len > 0 && **value == ' ')
				*value += 1, *len -= 1;
		size_t i = 0;
		int yday = 0;
		for (; i < 3 && is_digit(*value, *len, i); i++)
			yday = yday * 10 + ((*value)[i] - '0');
		if (i == 0 || (c->std == STD_ZERO_YEARDAY && i != 3))
			return "bad day of year";
		*value += i, *len -= i;
		p->yday = yday;
		return yday < 1 || yday > 366 ? "day-of-year out of range" : NULL;
	}
	case STD_HOUR:
		if (!get_num(value, len, false, &p->hour))
			return "bad hour";
		return p->hour > 23 ? "hour out of range" : NULL;
	case STD_HOUR12:
	case STD_ZERO_HOUR12:
		if (!get_num(value, len, c->std == STD_ZERO_HOUR12, &p->hour))
			return "bad hour";
		return p->hour > 12 ? "hour out of range" : NULL;
	case STD_MINUTE:
	case STD_ZERO_MINUTE:
		if (!get_num(value, len, c->std == STD_ZERO_MINUTE, &p->minute))
			return "bad minute";
		return p->minute > 59 ? "minute out of range" : NULL;
	case STD_SECOND:
	case STD_ZERO_SECOND: {
		if (!get_num(value, len, c->std == STD_ZERO_SECOND, &p->second))
			return "bad second";
		if (p->second > 59)
			return "second out of range";
		/* a fraction the layout does not name is read too, unless a later element names one */
		v = *value;
		chunk_t next;
		if (*len >= 2 && (v[0] == '.' || v[0] == ',') && is_digit(v, *len, 1) &&
		    !(next_chunk(layout, c->at + c->len, &next) &&
		      (next.std == STD_FRAC0 || next.std == STD_FRAC9))) {
			size_t n = 2;
			while (is_digit(v, *len, n))
				n++;
			get_nanos(v, n, &p->nsec);
			*value += n, *len -= n;
		}
		return NULL;
	}
	case STD_PM:
	case STD_PM_LOWER: {
		bool upper = c->std == STD_PM;
		if (*len < 2)
			return "bad AM/PM";
		if (strncmp(v, upper ? "PM" : "pm", 2) == 0)
			p->pm = true;
		else if (strncmp(v, upper ? "AM" : "am", 2) == 0)
			p->am = true;
		else
			return "bad AM/PM";
		*value += 2, *len -= 2;
		return NULL;
	}
	case STD_TZ: {
		if (*len >= 3 && strncmp(v, "UTC", 3) == 0) {
			p->utc = true;
			*value += 3, *len -= 3;
			return NULL;
		}
		size_t n = zone_length(v, *len);
		if (n == 0 || n >= sizeof p->zone_name)
			return "bad time zone";
		memcpy(p->zone_name, v, n);
		p->zone_name[n] = '\0';
		*value += n, *len -= n;
		return NULL;
	}
	case STD_FRAC0: {
		size_t n = 1 + (size_t)c->digits;
		if (*len < n || !get_nanos(v, n, &p->nsec))
			return "bad fractional second";
		*value += n, *len -= n;
		return NULL;
	}
	case STD_FRAC9: {
		if (*len < 2 || (v[0] != '.' && v[0] != ',') || !is_digit(v, *len, 1))
			return NULL;
		size_t n = 1;
		while (is_digit(v, *len, n))
			n++;
		get_nanos(v, n, &p->nsec);
		*value += n, *len -= n;
		return NULL;
	}
	default: {
		bool iso = c->std >= STD_ISO_TZ && c->std <= STD_ISO_COLON_SECONDS_TZ;
		if (iso && *len >= 1 && v[0] == 'Z') {
			p->utc = true;
			*value += 1, *len -= 1;
			return NULL;
		}
		if (!get_offset(value, len, c->std, &p->zone_offset))
			return "bad time zone offset";
		p->has_offset = true;
		return NULL;
	}
	}
}

/* The local zone's offset at unix_sec when its abbreviation there is name. */
static bool local_named(const char *name, int64_t unix_sec, int *offset)
{
	kz_time_t local = kz_time_local(unix_sec, 0);
	if (strcmp(local.zone, name) != 0)
		return false;
	*offset = local.offset;
	return true;
}

static int parse_unix(const char *value, size_t len, kz_time_t *out, cw_err_t *err)
{
	size_t i = len > 0 && (value[0] == '+' || value[0] == '-') ? 1 : 0;
	if (i == len)
		return bad_time(err, "$unix", value, len, "not an integer");
	uint64_t n = 0;
	for (size_t k = i; k < len; k++) {
		if (value[k] < '0' || value[k] > '9' || n > (UINT64_MAX - 9) / 10)
			return bad_time(err, "$unix", value, len, "not an integer");
		n = n * 10 + (uint64_t)(value[k] - '0');
	}
	if (n > (uint64_t)INT64_MAX)
		return bad_time(err, "$unix", value, len, "out of range");
	/* beyond ±2^62 seconds the arithmetic of a date would overflow */
	if (n > (UINT64_C(1) << 62))
		return bad_time(err, "$unix", value, len, "out of range");
	int64_t sec = value[0] == '-' ? -(int64_t)n : (int64_t)n;
	*out = kz_time_local(sec, 0);
	return 0;
}

int kz_time_parse(const char *layout, const char *value, size_t len, kz_time_t *out,
                  cw_err_t *err)
{
	if (strcmp(layout, "$unix") == 0)
		return parse_unix(value, len, out, err);
	const char *v = value;
	size_t n = len, pos = 0;
	parsed_t p = {0};
	p.month = p.day = p.yday = -1;
	chunk_t c;
	for (;;) {
		bool more = next_chunk(layout, pos, &c);
		size_t literal = more ? c.at - pos : strlen(layout + pos);
		if (!skip_literal(&v, &n, layout + pos, literal))
			return bad_time(err, layout, value, len, "it does not match the layout");
		if (!more)
			break;
		const char *why = parse_chunk(layout, &c, &v, &n, &p);
		if (why != NULL)
			return bad_time(err, layout, value, len, why);
		pos = c.at + c.len;
	}
	if (n > 0)
		return bad_time(err, layout, value, len, "extra text after the time");
	if (p.pm && p.hour < 12)
		p.hour += 12;
	else if (p.am && p.hour == 12)
		p.hour = 0;
	if (p.yday >= 0) {
		int m = 1, d = p.yday;
		while (m < 12 && d > days_in(m, p.year))
			d -= days_in(m++, p.year);
		if ((p.month >= 0 && p.month != m) || (p.day >= 0 && p.day != d))
			return bad_time(err, layout, value, len, "day-of-year does not match the day");
		p.month = m;
		p.day = d;
	}
	if (p.month < 0)
		p.month = 1;
	if (p.day < 0)
		p.day = 1;
	if (p.day < 1 || p.day > days_in(p.month, p.year))
		return bad_time(err, layout, value, len, "day out of range");
	int64_t wall = days_from_civil(p.year, p.month, p.day) * 86400 + p.hour * 3600 +
	               p.minute * 60 + p.second;
	*out = (kz_time_t){wall, p.nsec, 0, "UTC"};
	if (p.utc)
		return 0;
	if (p.has_offset) {
		out->unix_sec = wall - p.zone_offset;
		kz_time_t local = kz_time_local(out->unix_sec, p.nsec);
		if (local.offset == p.zone_offset &&
		    (p.zone_name[0] == '\0' || strcmp(local.zone, p.zone_name) == 0)) {
			*out = local;
			return 0;
		}
		out->offset = p.zone_offset;
		snprintf(out->zone, sizeof out->zone, "%s", p.zone_name);
		return 0;
	}
	if (p.zone_name[0] != '\0') {
		int offset = 0;
		if (local_named(p.zone_name, wall, &offset)) {
			*out = kz_time_local(wall - offset, p.nsec);
			return 0;
		}
		/* an unknown zone keeps the wall clock as UTC; GMT+h then shows h hours later, as in Go */
		if (strlen(p.zone_name) > 3 && strncmp(p.zone_name, "GMT", 3) == 0)
			offset = atoi(p.zone_name + 3) * 3600;
		out->offset = offset;
		snprintf(out->zone, sizeof out->zone, "%s", p.zone_name);
	}
	return 0;
}
