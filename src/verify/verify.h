/*
 * This file contains a verify run (docs/verify.md): for each live entity and
 * each target chosen, compare the entity's rows at its source with the
 * target's (compare.h, sides.h), store the report in the hub
 * (cachewarp.verify_runs), and with repair, write each persistent
 * difference into the hub as a synthetic change (origin 'verify') that every
 * target applies through its normal path — never written to a target
 * directly.
 *
 * One run per entity and target at a time: a session advisory lock on the
 * hub (CW_HUB_LOCK_VERIFY) is held while the pair is compared; a second run
 * of the same pair is refused with the id of the running one.
 *
 * THREAD SAFETY: one run per thread; a run opens its own connections.
 */
#ifndef CW_VERIFY_VERIFY_H
#define CW_VERIFY_VERIFY_H

#include "core/cancel.h"
#include "core/config.h"
#include "core/err.h"
#include "core/json.h"
#include "core/metrics.h"
#include "hub/hub.h"
#include "verify/compare.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cw_verify_opts {
	const char *const *entities;  /* names; none = every live entity */
	size_t nentities;
	const char *const *targets;   /* names; none = every target verify can read */
	size_t ntargets;
	bool repair;
	const char *requested_by;     /* "cli", "api", "schedule" */
	int64_t settle_timeout_ms;    /* the re-check's wait for the target; 0 = 60 s */
	size_t sample_keys;           /* keys kept per pair in the report; 0 = 20 */
	cw_metrics_t *metrics;        /* borrowed, may be NULL: cachewarp_verify_* (docs/verify.md) */
} cw_verify_opts_t;

/* What became of one entity and target. */
typedef struct cw_verify_pair {
	char entity[CW_ENTITY_NAME_MAX + 1];
	char target[CW_ENTITY_NAME_MAX + 1];
	int64_t run_id;               /* its row in cachewarp.verify_runs; 0 when refused */
	const char *status;           /* "equal", "different", "failed", "canceled", "refused" */
	cw_verify_result_t result;
	uint64_t repaired;            /* synthetic changes written */
	uint64_t left_to_stream;      /* repairs not written: the stream changed the key meanwhile */
	double seconds;
	char *report;                 /* owned: the report as JSON (as stored in the hub) */
	cw_err_t err;                 /* failed, refused: why */
} cw_verify_pair_t;

/*
 * Runs verify for config (borrowed) as opts say; *pairs (owned, free with
 * cw_verify_pairs_free) receives one entry per entity and target. Returns 0
 * when every pair was compared (equal or not), CW_ENOTFOUND for an entity or
 * target named that does not exist, CW_ECONFLICT when a pair was refused
 * because another run holds it, CW_ECANCELED, or the first other error.
 */
int cw_verify_run(const cw_config_t *config, const cw_verify_opts_t *opts, cw_cancel_t *cancel,
                  cw_verify_pair_t **pairs, size_t *npairs, cw_err_t *err);

void cw_verify_pairs_free(cw_verify_pair_t *pairs, size_t npairs);

/*
 * Writes verify runs from cachewarp.verify_runs on hub as JSON to w: with
 * id > 0 that run's object ({"id", "entity", "target", "status", "repair",
 * "requested_by", "started_at", "finished_at", "report", "error"}), CW_ENOTFOUND
 * when there is none; with id 0 an array of the newest run of every entity
 * and target. 0, CW_ENOTFOUND or CW_EDB.
 */
int cw_verify_runs_json(cw_hub_t *hub, int64_t id, cw_json_t *w, cw_err_t *err);

/* Declares the cachewarp_verify_* metric families in metrics. */
void cw_verify_metrics_declare(cw_metrics_t *metrics);

/*
 * One entity and target, begun and run apart: the REST API begins a run
 * (so a refusal answers the request) and runs it on a thread of its own.
 */
typedef struct cw_verify_job cw_verify_job_t;

/*
 * Begins verifying entity in target with config and opts (both borrowed
 * until cw_verify_job_free; opts' entity and target lists are ignored):
 * connects to the hub, checks the pair can be verified, takes the pair's
 * lock and records the run as running. NULL with err: CW_ENOTFOUND (no such
 * entity or target), CW_EINVAL (not verifiable: not live, or a source or
 * target type verify cannot read), CW_ECONFLICT (another run holds the
 * pair; *running_id, when not NULL, receives its id or 0), CW_EDB.
 */
cw_verify_job_t *cw_verify_job_begin(const cw_config_t *config, const char *entity,
                                     const char *target, const cw_verify_opts_t *opts,
                                     int64_t *running_id, cw_err_t *err);

/* The run's id in cachewarp.verify_runs. */
int64_t cw_verify_job_id(const cw_verify_job_t *job);

/*
 * Compares the pair, repairs when asked, records the result in the hub and
 * releases the pair; pair (caller's, zeroed) receives the outcome
 * (pair->report owned by the caller). cancel (borrowed) stops it between
 * batches of rows: the run ends canceled, with every repair chunk written
 * whole or not at all.
 */
void cw_verify_job_run(cw_verify_job_t *job, cw_cancel_t *cancel, cw_verify_pair_t *pair);

/* Progress of a run in another thread: the step, rows compared, about how many in all. */
void cw_verify_job_progress(cw_verify_job_t *job, char step[32], uint64_t *rows,
                            uint64_t *expected);

/* Releases the pair if the run never ran, closes the hub connection. NULL is a no-op. */
void cw_verify_job_free(cw_verify_job_t *job);

#endif
