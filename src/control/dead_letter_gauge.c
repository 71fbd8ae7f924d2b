/* This file contains the cachewarp_dead_letters gauge declared in dead_letter_gauge.h. */
#include "control/dead_letter_gauge.h"

#include "core/buf.h"
#include "core/mem.h"
#include "hub/dead_letters.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define FAMILY "cachewarp_dead_letters"

struct cw_dead_letter_gauge {
	cw_metrics_t *metrics;                  /* borrowed */
	cw_dead_letter_stream_count_t *shown;   /* the streams of the last refresh (owned) */
	size_t nshown;
};

cw_dead_letter_gauge_t *cw_dead_letter_gauge_new(cw_metrics_t *metrics)
{
	cw_metrics_declare(metrics, FAMILY, CW_METRIC_GAUGE,
	                   "Dead letters in the hub, by target, entity and status (failed, replay).");
	cw_dead_letter_gauge_t *gauge = cw_xcalloc(1, sizeof *gauge);
	gauge->metrics = metrics;
	return gauge;
}

void cw_dead_letter_gauge_free(cw_dead_letter_gauge_t *gauge)
{
	if (gauge == NULL)
		return;
	cw_dead_letter_stream_counts_free(gauge->shown, gauge->nshown);
	free(gauge);
}

static void set(cw_dead_letter_gauge_t *gauge, const char *target, const char *entity,
                const char *status, int64_t value)
{
	cw_buf_t labels = CW_BUF_INIT;
	cw_buf_append_str(&labels, "target=\"");
	cw_metrics_label_escape(&labels, target);
	cw_buf_append_str(&labels, "\",entity=\"");
	cw_metrics_label_escape(&labels, entity);
	cw_buf_appendf(&labels, "\",status=\"%s\"", status);
	cw_metrics_gauge_set(gauge->metrics, FAMILY, cw_buf_cstr(&labels), (double)value);
	cw_buf_free(&labels);
}

static bool has_stream(const cw_dead_letter_stream_count_t *streams, size_t count,
                       const cw_dead_letter_stream_count_t *stream)
{
	for (size_t i = 0; i < count; i++)
		if (strcmp(streams[i].target, stream->target) == 0 &&
		    strcmp(streams[i].entity, stream->entity) == 0)
			return true;
	return false;
}

int cw_dead_letter_gauge_refresh(cw_dead_letter_gauge_t *gauge, cw_hub_t *hub, cw_err_t *err)
{
	cw_dead_letter_stream_count_t *streams = NULL;
	size_t count = 0;
	int rc = cw_dead_letter_count_streams(hub, &streams, &count, err);
	if (rc != 0)
		return rc;
	for (size_t i = 0; i < count; i++) {
		set(gauge, streams[i].target, streams[i].entity, "failed", streams[i].failed);
		set(gauge, streams[i].target, streams[i].entity, "replay", streams[i].replay);
	}
	/* A stream shown before with no letters now reads 0, and stays shown. */
	for (size_t i = 0; i < gauge->nshown; i++) {
		const cw_dead_letter_stream_count_t *gone = &gauge->shown[i];
		if (has_stream(streams, count, gone))
			continue;
		set(gauge, gone->target, gone->entity, "failed", 0);
		set(gauge, gone->target, gone->entity, "replay", 0);
		streams = cw_xrealloc(streams, (count + 1) * sizeof *streams);
		streams[count] = (cw_dead_letter_stream_count_t){cw_xstrdup(gone->target),
		                                                 cw_xstrdup(gone->entity), 0, 0};
		count++;
	}
	cw_dead_letter_stream_counts_free(gauge->shown, gauge->nshown);
	gauge->shown = streams;
	gauge->nshown = count;
	return 0;
}
