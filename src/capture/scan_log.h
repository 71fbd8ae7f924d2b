/*
 * This file contains a table scan's progress line, the same for every
 * source: rows so far, the server's estimate, the rate and the time left,
 * logged at info as "snapshot progress" and, at the end, "snapshot of table
 * done" (docs/operations.md).
 *
 *   {"msg":"snapshot progress","source":"app_pg","entity":"orders",
 *    "table":"public.orders","rows":"200000","rows_estimate":"1000000",
 *    "rows_per_second":"95000","eta_seconds":"8"}
 *
 * THREAD SAFETY: safe from any thread (the logger is).
 */
#ifndef CW_CAPTURE_SCAN_LOG_H
#define CW_CAPTURE_SCAN_LOG_H

#include <stdbool.h>
#include <stdint.h>

typedef struct cw_scan_log {
	const char *component;   /* the source's log component */
	const char *source;      /* the source's name */
	const char *entity;
	const char *table;
	int64_t started_ms;      /* cw_clock_system()'s time when the scan began */
} cw_scan_log_t;

/*
 * Logs rows scanned of estimate (the server's count, -1 when unknown); done
 * for the last line. read_s, when not negative, is logged as read_seconds:
 * the time spent reading and decoding rows.
 */
void cw_scan_log_progress(const cw_scan_log_t *scan, int64_t rows, int64_t estimate, bool done,
                          double read_s);

#endif
