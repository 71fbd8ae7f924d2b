/*
 * This file contains the writer stage every source shares: a thread with a
 * hub connection of its own appends the batches a source hands it, in the
 * order handed, each in one transaction with the source's checkpoint
 * (hub/oplog_writer.h), through a bounded queue (capture.queue_depth
 * batches: a full queue makes the source wait, which is the backpressure).
 * Reading the next changes from the source thus overlaps with the hub's
 * commit of the previous batch. After each commit the stage acknowledges the
 * batch's position (the source's own: an LSN, a count) and commit time, and
 * counts its changes in cachewarp_changes_captured_total.
 *
 * After the first failed commit the stage discards what is queued and every
 * call returns that error: the source's run ends and resumes from the
 * checkpoint the hub holds.
 *
 * THREAD SAFETY: one source thread calls every function but
 * cw_capture_append (any thread with its own oplog writer).
 */
#ifndef CW_CAPTURE_CAPTURE_WRITER_H
#define CW_CAPTURE_CAPTURE_WRITER_H

#include "core/cancel.h"
#include "core/change.h"
#include "core/err.h"
#include "core/metrics.h"
#include "hub/hub.h"
#include "hub/oplog_writer.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct cw_capture_writer cw_capture_writer_t;

typedef struct cw_capture_writer_opts {
	const char *hub_url;          /* borrowed for the call */
	size_t queue_depth;           /* batches waiting at most; 0 = 4 */
	cw_metrics_t *metrics;        /* borrowed; may be NULL */
	const char *source;           /* the source's name, for cachewarp_capture_queue_batches;
	                                 copied; NULL: the gauge is not kept */
	const cw_auth_config_t *hub_auth;  /* hub.auth, borrowed for the writer's life; may be NULL */
} cw_capture_writer_opts_t;

/* What goes with a batch. */
typedef struct cw_capture_job {
	const char *checkpoint_key;   /* stored with the batch; NULL = none (copied) */
	const char *checkpoint_json;  /* its value (copied) */
	bool scan;                    /* the stage writes it as a scan writer (cw_oplog_writer_set_scan) */
	uint64_t position;            /* acknowledged once committed; 0 = nothing to acknowledge */
	int64_t commit_us;            /* the newest source commit in the batch; 0 = none */
	bool inside_txn;              /* the batch ends inside a source transaction (the seam the
	                                 failpoint after_txn_part_commit marks) */
} cw_capture_job_t;

/* Declares the stage's metrics (for /metrics before the first batch). */
/*
 * Whether a source's batch is due to be written: capture.batch_size changes
 * (batch_size), or CW_CAPTURE_BATCH_MAX_BYTES of their strings, whichever
 * comes first, so wide rows keep a source's memory bounded (it holds at
 * most capture.queue_depth + 2 batches).
 */
#define CW_CAPTURE_BATCH_MAX_BYTES ((size_t)4 << 20)
bool cw_capture_batch_full(const cw_change_batch_t *batch, int batch_size);

void cw_capture_declare_metrics(cw_metrics_t *metrics);

/*
 * Declares the per-entity families a source with snapshots and failed
 * entities records: cachewarp_snapshot_rows_total and cachewarp_entity_failed.
 */
void cw_capture_declare_entity_metrics(cw_metrics_t *metrics);

/*
 * Appends batch (borrowed) with the checkpoint in one hub transaction on
 * writer, as the writer routes it (job->scan is the stage's: a direct caller
 * sets its own writer's scan mode); a checkpoint alone is stored without
 * taking the oplog lock. Counts the changes in metrics (may be NULL). For the
 * stage's thread and for scans that write on their own. 0 or the hub's error.
 */
int cw_capture_append(cw_oplog_writer_t *writer, const cw_change_batch_t *batch,
                      const cw_capture_job_t *job, cw_metrics_t *metrics, cw_err_t *err);

/* Connects to the hub and starts the thread; NULL with err. */
cw_capture_writer_t *cw_capture_writer_start(const cw_capture_writer_opts_t *opts, cw_err_t *err);

/*
 * Hands batch with job to the writer: on 0 its changes are taken (batch
 * left empty). Waits up to timeout_ms (-1: for ever) while the queue is
 * full, then returns CW_ETIMEDOUT so the source can keep its connection alive
 * and call again. On CW_ETIMEDOUT or the writer's error, batch keeps its
 * changes.
 */
int cw_capture_writer_submit(cw_capture_writer_t *w, cw_change_batch_t *batch,
                             const cw_capture_job_t *job, int timeout_ms, cw_err_t *err);

/*
 * cw_capture_writer_submit, and once the batch committed the writer's thread
 * reaches the named failpoint (core/failpoint.h; a string literal, kept as
 * is; NULL: none): the seam after a commit the caller does not wait for.
 */
int cw_capture_writer_submit_at(cw_capture_writer_t *w, cw_change_batch_t *batch,
                                const cw_capture_job_t *job, const char *failpoint,
                                int timeout_ms, cw_err_t *err);

/* Waits until every batch handed over is committed: 0, CW_ECANCELED or the writer's error. */
int cw_capture_writer_sync(cw_capture_writer_t *w, cw_cancel_t *cancel, cw_err_t *err);

/* The writer's error when a commit failed; 0 otherwise. Does not wait. */
int cw_capture_writer_check(cw_capture_writer_t *w, cw_err_t *err);

/* Raises *position and *commit_us to what the committed batches acknowledged. */
void cw_capture_writer_acked(cw_capture_writer_t *w, uint64_t *position, int64_t *commit_us);

/* With nothing in flight, raises the acknowledged position to position and returns true. */
bool cw_capture_writer_advance_idle(cw_capture_writer_t *w, uint64_t position);

/* Lets the thread commit what is queued, joins it and frees w; NULL is a no-op. */
void cw_capture_writer_stop(cw_capture_writer_t *w);

#endif
