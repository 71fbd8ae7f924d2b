/*
 * This file contains a daily time window, as verify's scheduled health check uses
 * (`verify.window`, "HH:MM-HH:MM" in local time): parsing it and telling
 * whether a time of day is inside. A window whose end is before its start
 * passes midnight ("22:00-04:00"); start equal to end is the whole day.
 *
 * THREAD SAFETY: pure functions.
 */
#ifndef CW_CORE_TIME_WINDOW_H
#define CW_CORE_TIME_WINDOW_H

#include "core/err.h"

#include <stdbool.h>

/* Parses text into minutes of the day [0, 1440). 0 or CW_EINVAL saying what is wrong. */
int cw_time_window_parse(const char *text, int *start, int *end, cw_err_t *err);

/* Whether minute (of the day, [0, 1440)) is in [start, end), passing midnight when end < start. */
bool cw_time_window_contains(int start, int end, int minute);

#endif
