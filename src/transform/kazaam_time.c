/*
 * This file contains Go's time layouts as kazaam's timestamp operation uses
 * them (kazaam_internal.h): a layout is the reference time
 * "Mon Jan 2 15:04:05 MST 2006" written the way a value is written; this
 * half finds a layout's elements and writes times (Go's Time.Format),
 * kazaam_time_parse.c reads them (time.Parse). "$unix" writes Unix seconds.
 */
#include "transform/kazaam_internal.h"
#include "transform/kazaam_layout.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

const char *const kz_month_names[12] = {"January", "February", "March", "April", "May",
                                          "June", "July", "August", "September", "October",
                                          "November", "December"};
const char *const kz_day_names[7] = {"Sunday", "Monday", "Tuesday", "Wednesday",
                                        "Thursday", "Friday", "Saturday"};


static bool starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool kz_digit_at(const char *s, size_t len, size_t i)
{
	return i < len && s[i] >= '0' && s[i] <= '9';
}

bool kz_layout_next(const char *layout, size_t from, chunk_t *c)
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

int64_t kz_days_from_civil(int64_t y, int m, int d)
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

int kz_days_in(int month, int64_t year)
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
	c.yday = (int)(days - kz_days_from_civil(c.year, 1, 1)) + 1;
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
	case STD_MONTH:       cw_buf_append(out, kz_month_names[v->month - 1], 3); break;
	case STD_LONG_MONTH:  cw_buf_append_str(out, kz_month_names[v->month - 1]); break;
	case STD_NUM_MONTH:   append_int(out, v->month, 0); break;
	case STD_ZERO_MONTH:  append_int(out, v->month, 2); break;
	case STD_WEEKDAY:     cw_buf_append(out, kz_day_names[v->weekday], 3); break;
	case STD_LONG_WEEKDAY: cw_buf_append_str(out, kz_day_names[v->weekday]); break;
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
	while (kz_layout_next(layout, pos, &c)) {
		cw_buf_append(out, layout + pos, c.at - pos);
		format_chunk(t, &v, &c, out);
		pos = c.at + c.len;
	}
	cw_buf_append_str(out, layout + pos);
}
