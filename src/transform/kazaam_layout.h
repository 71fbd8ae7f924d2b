/*
 * This file contains what the two halves of Go's time layouts share
 * (kazaam_time.c writes times, kazaam_time_parse.c reads them): the layout's
 * elements, the names of months and days, and civil dates.
 */
#ifndef CW_TRANSFORM_KAZAAM_LAYOUT_H
#define CW_TRANSFORM_KAZAAM_LAYOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

extern const char *const kz_month_names[12];
extern const char *const kz_day_names[7];

/* The next layout element at or after from; false when there is none. */
bool kz_layout_next(const char *layout, size_t from, chunk_t *c);

/* Whether s[i] exists (i < len) and is a decimal digit. */
bool kz_digit_at(const char *s, size_t len, size_t i);

/* Days from 1970-01-01 to the date (proleptic Gregorian; any year). */
int64_t kz_days_from_civil(int64_t year, int month, int day);

/* Days in month (1-12) of year. */
int kz_days_in(int month, int64_t year);

#endif
