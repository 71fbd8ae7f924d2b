/* Unit tests of the metrics registry: Prometheus text format for counters, gauges, histograms. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/metrics.h"

#include <string.h>

static void renders_counters_and_gauges_with_help_and_labels(void **state)
{
	(void)state;
	cw_metrics_t *m = cw_metrics_new();
	cw_metrics_declare(m, "cachewarp_changes_captured_total", CW_METRIC_COUNTER,
	                   "Changes written to the hub.");
	cw_metrics_counter_add(m, "cachewarp_changes_captured_total", "entity=\"products\",op=\"upsert\"", 3);
	cw_metrics_counter_add(m, "cachewarp_changes_captured_total", "entity=\"products\",op=\"upsert\"", 2);
	cw_metrics_gauge_set(m, "cachewarp_queue_depth", NULL, 7);
	assert_true(cw_metrics_value(m, "cachewarp_changes_captured_total",
	                             "entity=\"products\",op=\"upsert\"") == 5);
	cw_buf_t out = CW_BUF_INIT;
	cw_metrics_render(m, &out);
	assert_string_equal(cw_buf_cstr(&out),
		"# HELP cachewarp_changes_captured_total Changes written to the hub.\n"
		"# TYPE cachewarp_changes_captured_total counter\n"
		"cachewarp_changes_captured_total{entity=\"products\",op=\"upsert\"} 5\n"
		"# TYPE cachewarp_queue_depth gauge\n"
		"cachewarp_queue_depth 7\n");
	cw_buf_free(&out);
	cw_metrics_free(m);
}

static void histogram_buckets_are_cumulative(void **state)
{
	(void)state;
	cw_metrics_t *m = cw_metrics_new();
	cw_metrics_observe(m, "cachewarp_batch_seconds", "stage=\"apply\"", 0.003);
	cw_metrics_observe(m, "cachewarp_batch_seconds", "stage=\"apply\"", 0.2);
	cw_metrics_observe(m, "cachewarp_batch_seconds", "stage=\"apply\"", 60);
	cw_buf_t out = CW_BUF_INIT;
	cw_metrics_render(m, &out);
	const char *text = cw_buf_cstr(&out);
	assert_non_null(strstr(text, "# TYPE cachewarp_batch_seconds histogram\n"));
	assert_non_null(strstr(text, "cachewarp_batch_seconds_bucket{stage=\"apply\",le=\"0.0025\"} 0\n"));
	assert_non_null(strstr(text, "cachewarp_batch_seconds_bucket{stage=\"apply\",le=\"0.005\"} 1\n"));
	assert_non_null(strstr(text, "cachewarp_batch_seconds_bucket{stage=\"apply\",le=\"0.25\"} 2\n"));
	assert_non_null(strstr(text, "cachewarp_batch_seconds_bucket{stage=\"apply\",le=\"10\"} 2\n"));
	assert_non_null(strstr(text, "cachewarp_batch_seconds_bucket{stage=\"apply\",le=\"+Inf\"} 3\n"));
	assert_non_null(strstr(text, "cachewarp_batch_seconds_sum{stage=\"apply\"} 60.203\n"));
	assert_non_null(strstr(text, "cachewarp_batch_seconds_count{stage=\"apply\"} 3\n"));
	cw_buf_free(&out);
	cw_metrics_free(m);
}

static void label_values_are_escaped(void **state)
{
	(void)state;
	cw_buf_t out = CW_BUF_INIT;
	cw_metrics_label_escape(&out, "a\"b\\c\nd");
	assert_string_equal(cw_buf_cstr(&out), "a\\\"b\\\\c\\nd");
	cw_buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(renders_counters_and_gauges_with_help_and_labels),
		cmocka_unit_test(histogram_buckets_are_cumulative),
		cmocka_unit_test(label_values_are_escaped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
