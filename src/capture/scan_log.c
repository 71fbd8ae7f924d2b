/*
 * This file contains a table scan's progress line (scan_log.h).
 */
#include "capture/scan_log.h"

#include "core/clock.h"
#include "core/log.h"

#include <inttypes.h>
#include <stdio.h>

void cw_scan_log_progress(const cw_scan_log_t *scan, int64_t rows, int64_t estimate, bool done,
                          double read_s)
{
	double seconds = (double)(cw_clock_now_ms(cw_clock_system()) - scan->started_ms) / 1000.0;
	double rate = seconds > 0 ? (double)rows / seconds : 0;
	char rows_text[32], rate_text[32], eta_text[32], total_text[32], read_text[32] = "";
	snprintf(rows_text, sizeof rows_text, "%" PRId64, rows);
	snprintf(rate_text, sizeof rate_text, "%.0f", rate);
	snprintf(total_text, sizeof total_text, "%" PRId64, estimate > rows ? estimate : rows);
	if (done)
		snprintf(eta_text, sizeof eta_text, "0");
	else if (estimate > rows && rate > 0)
		snprintf(eta_text, sizeof eta_text, "%.0f", (double)(estimate - rows) / rate);
	else
		snprintf(eta_text, sizeof eta_text, "unknown");
	if (read_s >= 0)
		snprintf(read_text, sizeof read_text, "%.3f", read_s);
	cw_log_kv(CW_LOG_INFO, scan->component,
	          done ? "snapshot of table done" : "snapshot progress", "source", scan->source,
	          "entity", scan->entity, "table", scan->table, "rows", rows_text, "rows_estimate",
	          total_text, "rows_per_second", rate_text, "eta_seconds", eta_text,
	          read_s >= 0 ? "read_seconds" : NULL, read_text, NULL);
}
