/* This file contains the cron schedule parser and the next-fire computation (cron.h). */
#include "core/cron.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define DOMAIN "cron"

typedef struct field_spec {
	const char *name;
	int min, max;
	const char *const *names;   /* names[i] is value min + i; NULL = numbers only */
} field_spec_t;

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                          "jul", "aug", "sep", "oct", "nov", "dec", NULL};
static const char *const day_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL};

static const field_spec_t fields[5] = {
	{"minute", 0, 59, NULL},
	{"hour", 0, 23, NULL},
	{"day of month", 1, 31, NULL},
	{"month", 1, 12, month_names},
	/* 7 is Sunday too; folded into 0 below. */
	{"day of week", 0, 7, day_names},
};

/* Reads a number or a name at *p; advances *p. 0 or -1. */
static int read_value(const field_spec_t *spec, const char **p, int *value)
{
	const char *s = *p;
	if (isdigit((unsigned char)*s)) {
		long n = 0;
		while (isdigit((unsigned char)*s) && n < 1000)
			n = n * 10 + (*s++ - '0');
		if (isdigit((unsigned char)*s))
			return -1;
		*value = (int)n;
		*p = s;
		return 0;
	}
	for (size_t i = 0; spec->names != NULL && spec->names[i] != NULL; i++)
		if (strncasecmp(s, spec->names[i], 3) == 0 && !isalpha((unsigned char)s[3])) {
			*value = spec->min + (int)i;
			*p = s + 3;
			return 0;
		}
	return -1;
}

/* Parses one field (len bytes at text) into bits. */
static int parse_field(const field_spec_t *spec, const char *text, size_t len, uint64_t *bits,
                       bool *any, cw_err_t *err)
{
	char buf[128];
	if (len == 0 || len >= sizeof buf)
		return cw_err_set(err, CW_EINVAL, DOMAIN, "%s field is empty or too long", spec->name);
	memcpy(buf, text, len);
	buf[len] = '\0';
	*bits = 0;
	*any = strcmp(buf, "*") == 0;
	const char *p = buf;
	for (;;) {
		int lo = spec->min, hi = spec->max, step = 1;
		bool star = *p == '*';
		if (star) {
			p++;
		} else {
			if (read_value(spec, &p, &lo) != 0)
				goto bad;
			hi = lo;
			if (*p == '-') {
				p++;
				if (read_value(spec, &p, &hi) != 0)
					goto bad;
			}
		}
		if (*p == '/') {
			p++;
			int n;
			if (!isdigit((unsigned char)*p) || read_value(&fields[0], &p, &n) != 0 || n == 0)
				goto bad;
			step = n;
			/* "5/15" means 5-max/15, as Vixie cron reads it. */
			if (!star && hi == lo)
				hi = spec->max;
		}
		if (lo < spec->min || hi > spec->max || lo > hi)
			return cw_err_set(err, CW_EINVAL, DOMAIN, "%s field \"%s\": values must be "
			                  "%d to %d, a range low to high", spec->name, buf, spec->min,
			                  spec->max);
		for (int v = lo; v <= hi; v += step)
			*bits |= UINT64_C(1) << v;
		if (*p == '\0')
			return 0;
		if (*p++ != ',')
			goto bad;
	}
bad:
	return cw_err_set(err, CW_EINVAL, DOMAIN, "%s field \"%s\" is not `*`, a number, a range "
	                  "a-b, a step (`*` or a range, then /n) or a list of those", spec->name,
	                  buf);
}

int cw_cron_parse(const char *text, cw_cron_t *cron, cw_err_t *err)
{
	memset(cron, 0, sizeof *cron);
	uint64_t bits[5];
	bool any[5];
	const char *p = text;
	int n = 0;
	while (*p != '\0') {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		const char *start = p;
		while (*p != '\0' && *p != ' ' && *p != '\t')
			p++;
		if (n == 5)
			return cw_err_set(err, CW_EINVAL, DOMAIN, "schedule \"%.100s\" has more than five "
			                  "fields (minute hour day-of-month month day-of-week)", text);
		if (parse_field(&fields[n], start, (size_t)(p - start), &bits[n], &any[n], err) != 0)
			return CW_EINVAL;
		n++;
	}
	if (n != 5)
		return cw_err_set(err, CW_EINVAL, DOMAIN, "schedule \"%.100s\" has %d fields, not five "
		                  "(minute hour day-of-month month day-of-week, e.g. `0 * * * *`)",
		                  text, n);
	cron->minutes = bits[0];
	cron->hours = (uint32_t)bits[1];
	cron->mdays = (uint32_t)bits[2];
	cron->months = (uint16_t)bits[3];
	cron->wdays = (uint8_t)((bits[4] | (bits[4] >> 7)) & 0x7f);
	cron->mday_any = any[2];
	cron->wday_any = any[4];
	return 0;
}

int cw_cron_check(const char *text, cw_err_t *err)
{
	cw_cron_t cron;
	return cw_cron_parse(text, &cron, err);
}

static bool day_matches(const cw_cron_t *cron, const struct tm *tm)
{
	bool mday = (cron->mdays >> tm->tm_mday) & 1;
	bool wday = (cron->wdays >> tm->tm_wday) & 1;
	if (cron->mday_any || cron->wday_any)
		return mday && wday;
	return mday || wday;
}

int64_t cw_cron_next(const cw_cron_t *cron, int64_t after_s)
{
	/* The next whole minute after after_s. */
	time_t t = (time_t)((after_s / 60 + 1) * 60);
	time_t limit = t + (time_t)8 * 366 * 86400;
	struct tm tm;
	while (t < limit) {
		gmtime_r(&t, &tm);
		if (!((cron->months >> (tm.tm_mon + 1)) & 1) || !day_matches(cron, &tm)) {
			/* Next day at 00:00. */
			t += (time_t)(86400 - tm.tm_hour * 3600 - tm.tm_min * 60 - tm.tm_sec);
			continue;
		}
		if (!((cron->hours >> tm.tm_hour) & 1)) {
			t += (time_t)(3600 - tm.tm_min * 60 - tm.tm_sec);
			continue;
		}
		if (!((cron->minutes >> tm.tm_min) & 1)) {
			t += 60;
			continue;
		}
		return (int64_t)t;
	}
	return -1;
}
