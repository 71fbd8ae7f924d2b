/*
 * This file contains the reading half of Go's time layouts (kazaam_internal.h,
 * kazaam_layout.h), as Go's time.Parse reads: times without a zone are UTC,
 * a numeric offset or a zone name equal to the local zone's is the local
 * zone, "$unix" reads Unix seconds in the process's local zone as Go's
 * time.Unix does.
 */
#include "transform/kazaam_internal.h"
#include "transform/kazaam_layout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
	if (!kz_digit_at(v, *len, 0))
		return false;
	if (!kz_digit_at(v, *len, 1)) {
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

/* Reads a date element (year, month, day, weekday, day of the year); a message, or NULL. */
static const char *parse_date(const chunk_t *c, const char **value, size_t *len, parsed_t *p)
{
	const char *v = *value;
	int num = 0;
	switch (c->std) {
	case STD_YEAR:
		if (!kz_digit_at(v, *len, 0) || !kz_digit_at(v, *len, 1))
			return "bad year";
		p->year = (v[0] - '0') * 10 + (v[1] - '0');
		p->year += p->year >= 69 ? 1900 : 2000;
		*value += 2, *len -= 2;
		return NULL;
	case STD_LONG_YEAR:
		for (int i = 0; i < 4; i++)
			if (!kz_digit_at(v, *len, (size_t)i))
				return "bad year";
		p->year = (v[0] - '0') * 1000 + (v[1] - '0') * 100 + (v[2] - '0') * 10 + (v[3] - '0');
		*value += 4, *len -= 4;
		return NULL;
	case STD_MONTH:
	case STD_LONG_MONTH:
		num = lookup_name(value, len, kz_month_names, 12, c->std == STD_MONTH);
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
		return lookup_name(value, len, kz_day_names, 7, c->std == STD_WEEKDAY) < 0 ? "bad weekday"
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
		for (; i < 3 && kz_digit_at(*value, *len, i); i++)
			yday = yday * 10 + ((*value)[i] - '0');
		if (i == 0 || (c->std == STD_ZERO_YEARDAY && i != 3))
			return "bad day of year";
		*value += i, *len -= i;
		p->yday = yday;
		return yday < 1 || yday > 366 ? "day-of-year out of range" : NULL;
	}
	default:
		return "bad layout element";
	}
}

/* Reads a clock element (hour, minute, second, AM/PM, fraction); a message, or NULL. */
static const char *parse_clock(const char *layout, const chunk_t *c, const char **value,
                               size_t *len, parsed_t *p)
{
	const char *v = *value;
	switch (c->std) {
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
		if (*len >= 2 && (v[0] == '.' || v[0] == ',') && kz_digit_at(v, *len, 1) &&
		    !(kz_layout_next(layout, c->at + c->len, &next) &&
		      (next.std == STD_FRAC0 || next.std == STD_FRAC9))) {
			size_t n = 2;
			while (kz_digit_at(v, *len, n))
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
	case STD_FRAC0: {
		size_t n = 1 + (size_t)c->digits;
		if (*len < n || !get_nanos(v, n, &p->nsec))
			return "bad fractional second";
		*value += n, *len -= n;
		return NULL;
	}
	case STD_FRAC9: {
		if (*len < 2 || (v[0] != '.' && v[0] != ',') || !kz_digit_at(v, *len, 1))
			return NULL;
		size_t n = 1;
		while (kz_digit_at(v, *len, n))
			n++;
		get_nanos(v, n, &p->nsec);
		*value += n, *len -= n;
		return NULL;
	}
	default:
		return "bad layout element";
	}
}

/* Reads a zone: a name (MST) or an offset in one of its forms; a message, or NULL. */
static const char *parse_zone(const chunk_t *c, const char **value, size_t *len, parsed_t *p)
{
	const char *v = *value;
	switch (c->std) {
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

/* Reads one layout element; a message for bad_time, or NULL. */
static const char *parse_chunk(const char *layout, const chunk_t *c, const char **value,
                               size_t *len, parsed_t *p)
{
	if (c->std >= STD_HOUR && c->std <= STD_ZERO_SECOND)
		return parse_clock(layout, c, value, len, p);
	if (c->std == STD_PM || c->std == STD_PM_LOWER || c->std == STD_FRAC0 ||
	    c->std == STD_FRAC9)
		return parse_clock(layout, c, value, len, p);
	if (c->std == STD_TZ || (c->std >= STD_ISO_TZ && c->std <= STD_NUM_COLON_SECONDS_TZ))
		return parse_zone(c, value, len, p);
	return parse_date(c, value, len, p);
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
		bool more = kz_layout_next(layout, pos, &c);
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
		while (m < 12 && d > kz_days_in(m, p.year))
			d -= kz_days_in(m++, p.year);
		if ((p.month >= 0 && p.month != m) || (p.day >= 0 && p.day != d))
			return bad_time(err, layout, value, len, "day-of-year does not match the day");
		p.month = m;
		p.day = d;
	}
	if (p.month < 0)
		p.month = 1;
	if (p.day < 0)
		p.day = 1;
	if (p.day < 1 || p.day > kz_days_in(p.month, p.year))
		return bad_time(err, layout, value, len, "day out of range");
	int64_t wall = kz_days_from_civil(p.year, p.month, p.day) * 86400 + p.hour * 3600 +
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
