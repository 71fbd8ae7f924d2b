/*
 * This file contains the metrics registry: counters, gauges and histograms
 * identified by a name and a label set, rendered in the Prometheus text
 * exposition format (version 0.0.4) for GET /metrics. Every name starts with
 * "cachewarp_" (DESIGN.md §5).
 *
 * Labels are passed pre-formatted, as Prometheus writes them between the
 * braces: `entity="products",op="upsert"` (or NULL / "" for none). Label
 * values that come from users (entity, source and target names) are
 * validated identifiers, so they need no escaping; cw_metrics_label_escape
 * is there for anything else.
 *
 * Update per batch, not per change: each call takes the registry's mutex.
 *
 * THREAD SAFETY: every function may be called from any thread; one mutex
 * guards the whole registry.
 */
#ifndef CW_CORE_METRICS_H
#define CW_CORE_METRICS_H

#include "core/buf.h"

#include <stddef.h>
#include <stdint.h>

typedef struct cw_metrics cw_metrics_t;

typedef enum cw_metric_type {
	CW_METRIC_COUNTER = 0,
	CW_METRIC_GAUGE,
	CW_METRIC_HISTOGRAM,
} cw_metric_type_t;

/* A new, empty registry (owned by the caller; cw_metrics_free). */
cw_metrics_t *cw_metrics_new(void);
void cw_metrics_free(cw_metrics_t *metrics);

/*
 * Declares a metric family: its type and HELP text (both copied). Declaring
 * the same name again is a no-op. Updating an undeclared name declares it
 * with the type of the update and no help text.
 */
void cw_metrics_declare(cw_metrics_t *metrics, const char *name, cw_metric_type_t type,
                        const char *help);

/* Adds delta (>= 0) to a counter. */
void cw_metrics_counter_add(cw_metrics_t *metrics, const char *name, const char *labels,
                            double delta);

/* Sets a gauge. */
void cw_metrics_gauge_set(cw_metrics_t *metrics, const char *name, const char *labels,
                          double value);

/*
 * Records one observation in a histogram with the default buckets, in
 * seconds: 0.0005 .. 10 (latencies and batch durations).
 */
void cw_metrics_observe(cw_metrics_t *metrics, const char *name, const char *labels,
                        double value);

/* The current value of a counter or gauge series; 0 when it does not exist. For tests and status. */
double cw_metrics_value(cw_metrics_t *metrics, const char *name, const char *labels);

/* Appends the whole registry in the Prometheus text format, families sorted by name. */
void cw_metrics_render(cw_metrics_t *metrics, cw_buf_t *out);

/* Appends value to out escaped for a label value (backslash, quote, newline). */
void cw_metrics_label_escape(cw_buf_t *out, const char *value);

#endif
