/*
 * This file contains checks of Prometheus text exposition output for tests:
 * our own histogram check, and promtool's linter when it is installed.
 */
#ifndef CW_PROM_CHECK_H
#define CW_PROM_CHECK_H

#include <stddef.h>

/*
 * Fails the running cmocka test unless every histogram in text has its le
 * bounds strictly increasing, its bucket counts non-decreasing, and its +Inf
 * bucket equal to _count; and unless there is at least one histogram.
 */
void cw_prom_check_histograms(const char *text);

/*
 * Runs `promtool check metrics` on len bytes of text. Returns 0 when it
 * passes (its complaints go to stderr), 1 when it fails, -1 when promtool is
 * not installed.
 */
int cw_prom_promtool_check(const char *text, size_t len);

#endif
