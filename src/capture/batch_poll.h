/*
 * This file contains batch mode's poller (docs/batch.md), written once for
 * every SQL source: each poll reads an entity's rows past its marker page by
 * page, appends each page to the hub with the marker in one transaction,
 * turns the entity live after its first complete read, and every
 * delete_detection.interval compares the table's keys with the hub's
 * (cachewarp.batch_keys) to append the deletes.
 *
 * What differs per database is a small backend (cw_batch_backend_ops_t):
 * its entity list, the page query's execution and the conversion of its
 * rows (the source's own snapshot code, so a polled row equals a scanned
 * or streamed one), and the listing of the table's keys as doc_ids.
 * postgres_batch.c and mysql_batch.c are the two backends.
 *
 * THREAD SAFETY: a poller belongs to its source's poller thread.
 */
#ifndef CW_CAPTURE_BATCH_POLL_H
#define CW_CAPTURE_BATCH_POLL_H

#include "capture/batch_sql.h"
#include "core/cancel.h"
#include "core/change.h"
#include "core/config.h"
#include "core/entity.h"
#include "core/err.h"
#include "core/metrics.h"
#include "hub/entity_registry.h"
#include "hub/hub.h"
#include "hub/oplog_writer.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Per bucket of key hashes: how many keys, and the sum of their hashes as text. */
typedef struct cw_batch_bucket {
	int64_t count;
	char sum[48];
} cw_batch_bucket_t;

/*
 * A backend. `self` is the backend's source; entity indexes count from 0 to
 * nentities - 1 and stay valid until the next reload. Every function
 * returns 0 or a CW_E* code with err filled.
 */
typedef struct cw_batch_backend_ops {
	/* Reads the entity set again and checks each entity (a failed one is skipped). */
	int (*reload)(void *self, cw_cancel_t *cancel, cw_err_t *err);
	size_t (*nentities)(void *self);
	/* Entity i (borrowed; its status may be set); *failed: it cannot be polled now. */
	cw_entity_t *(*entity)(void *self, size_t i, bool *failed);
	/*
	 * Fills q for entity i: dialect, table, the column's kind, keys; q's
	 * column, lag and limit and *zone (change_detection.timezone) come
	 * filled from the entity's settings, and the backend may replace the
	 * zone by the form its server takes.
	 */
	int (*describe)(void *self, size_t i, cw_batch_query_t *q, const char **zone, cw_err_t *err);
	/* A generation's first read: what targets learn first (the table's columns). */
	int (*begin)(void *self, size_t i, cw_err_t *err);
	/*
	 * Runs the page query sql with params; pushes each row's changes onto
	 * batch (source_pos "batch"), and sets *rows, the marker to the last
	 * row's column value and keys (cw_batch_marker_set), and raises
	 * *newest_commit_us to the newest change time read.
	 */
	int (*page)(void *self, size_t i, const cw_batch_query_t *q, const char *sql,
	            const char *const *params, int nparams, cw_change_batch_t *batch,
	            cw_batch_marker_t *marker, int64_t *rows, int64_t *newest_commit_us,
	            cw_err_t *err);
	/*
	 * Optional (NULL: keys are listed): the per-bucket counts and hash sums
	 * of the table's keys (zeroed by the caller); 1 when this entity's keys
	 * cannot be bucketed.
	 */
	int (*buckets)(void *self, size_t i, const cw_batch_query_t *q,
	               cw_batch_bucket_t buckets[CW_BATCH_BUCKETS], cw_err_t *err);
	/*
	 * The table's doc_ids: every one (bucket_list NULL) or those of the
	 * buckets in bucket_list ("{1,7}"). *ids owned by the caller (each
	 * string and the array).
	 */
	int (*keys)(void *self, size_t i, const cw_batch_query_t *q, const char *bucket_list,
	            char ***ids, size_t *nids, cw_err_t *err);
	/*
	 * After a poll of entity i failed with rc: checks the entity again (a
	 * refusal marks it failed, and its siblings go on): 0 checked, 1 when
	 * rc is not the kind a check explains (the source is gone), or the
	 * check's own error. NULL: rc stands.
	 */
	int (*recheck)(void *self, size_t i, int rc, cw_err_t *err);
	/* The component's state for /v1/status. */
	void (*set_state)(void *self, const char *state, bool healthy);
} cw_batch_backend_ops_t;

/* Reads a (bucket, count, sum) result (cw_batch_sql_buckets) into buckets. */
void cw_batch_read_buckets(const PGresult *res, cw_batch_bucket_t buckets[CW_BATCH_BUCKETS]);
/* Sets one bucket from such a row's text (a bucket out of range is ignored). */
void cw_batch_bucket_set(cw_batch_bucket_t buckets[CW_BATCH_BUCKETS], const char *bucket,
                         const char *count, const char *sum);

struct cw_batch_poll;

typedef struct cw_batch_poller {
	const cw_batch_backend_ops_t *ops;
	void *self;                      /* the backend's source; borrowed */
	const char *source;              /* the source's name; borrowed */
	const char *component;           /* for logs; borrowed */
	const cw_config_t *config;       /* borrowed */
	cw_metrics_t *metrics;           /* borrowed */
	cw_entity_registry_t *registry;  /* borrowed */
	/* Per run (set by the backend before cw_batch_poller_run): */
	cw_hub_t *hub;                   /* borrowed */
	cw_oplog_writer_t *writer;       /* borrowed; writes scans and tracks keys */
	cw_change_batch_t *batch;        /* borrowed: where the backend's rows go */
	int64_t newest_commit_us;
	/* Kept across runs: */
	struct cw_batch_poll *polls;
	size_t npolls;
} cw_batch_poller_t;

/*
 * Polls until cancel fires or an error: reload, then each due entity's poll
 * and delete check, then a wait, the entity set read again every
 * reload_ms. Returns CW_ECANCELED or the error.
 */
int cw_batch_poller_run(cw_batch_poller_t *p, int64_t reload_ms, cw_cancel_t *cancel,
                        cw_err_t *err);

/* Marks every entity's marker to be read from the hub again (at a run's start). */
void cw_batch_poller_reset(cw_batch_poller_t *p);

/* Frees the poll states; the poller may run again. */
void cw_batch_poller_forget(cw_batch_poller_t *p);

/*
 * A name of a time zone that means UTC ("UTC", "Etc/UTC", "GMT", "Z",
 * "+00:00"...): servers without zone tables still know these as an offset.
 */
bool cw_batch_zone_is_utc(const char *zone);

#endif
