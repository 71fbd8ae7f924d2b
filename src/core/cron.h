/*
 * This file contains cron schedules as batch-mode entities use them
 * (`entities[].schedule`, seed 001's every-15-minutes schedule): five
 * fields, minute hour day-of-month month day-of-week, each `*`, a number, a
 * range `a-b`, a step (`*` or a range, then `/n`), or a comma-separated list
 * of those; months and days
 * may be written by their English names (`jan`, `mon-fri`), Sunday is 0 or 7.
 * When both day fields are restricted a day matching either one fires (as
 * Vixie cron does). Times are UTC.
 *
 * THREAD SAFETY: pure functions; a parsed schedule is read-only.
 */
#ifndef CW_CORE_CRON_H
#define CW_CORE_CRON_H

#include "core/err.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct cw_cron {
	uint64_t minutes;     /* bit m: minute m (0-59) */
	uint32_t hours;       /* bit h: hour h (0-23) */
	uint32_t mdays;       /* bit d: day of month d (1-31) */
	uint16_t months;      /* bit m: month m (1-12) */
	uint8_t wdays;        /* bit d: day of week d (0-6, 0 = Sunday) */
	bool mday_any;        /* the day-of-month field was `*` */
	bool wday_any;        /* the day-of-week field was `*` */
} cw_cron_t;

/* Parses text (borrowed) into *cron. 0, or CW_EINVAL naming the field and what is wrong. */
int cw_cron_parse(const char *text, cw_cron_t *cron, cw_err_t *err);

/*
 * The first minute (UTC, as seconds since the epoch) strictly after after_s that the
 * schedule fires at; -1 when none comes within eight years (`0 0 31 2 *`).
 */
int64_t cw_cron_next(const cw_cron_t *cron, int64_t after_s);

/* cw_cron_parse for a configuration check: 0 or CW_EINVAL. */
int cw_cron_check(const char *text, cw_err_t *err);

#endif
