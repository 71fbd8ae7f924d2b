/*
 * This file contains the job server (DESIGN.md §1, control plane): named
 * periodic jobs, each on its own thread. A job that fails is retried with
 * exponential backoff and jitter (core/retry.h); jobs that share an external
 * dependency ("hub", "source:shop", "target:local") share a circuit breaker
 * (control/breaker.h) that opens after repeated failures and lets one trial
 * run through after its cool-down. Every job receives a cancellation token
 * of its own: cw_jobs_stop fires them stage by stage and waits a bounded
 * grace period; cw_jobs_remove fires one job's token and joins its thread.
 *
 * Jobs may be added and removed while the server runs (a configuration
 * reload starts and stops sources and targets): a job added after
 * cw_jobs_start starts at once.
 *
 * THREAD SAFETY: cw_jobs_add, cw_jobs_remove, cw_jobs_start, cw_jobs_stop and
 * cw_jobs_free are called from one controlling thread. cw_jobs_snapshot may
 * be called from any thread at any time. One mutex guards the job list and
 * every job's status; no other lock is taken while it is held.
 */
#ifndef CW_CONTROL_JOBS_H
#define CW_CONTROL_JOBS_H

#include "core/cancel.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/retry.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cw_jobs cw_jobs_t;

/*
 * One run of a job. Returns 0, or an error code with err filled (the server
 * logs it and retries). cancel fires on shutdown: long work checks it and
 * returns CW_ECANCELED, which is not counted as a failure.
 */
typedef int (*cw_job_fn)(void *arg, cw_cancel_t *cancel, cw_err_t *err);

typedef struct cw_job_spec {
	const char *name;          /* copied; unique, e.g. "entity_refresh" */
	const char *dependency;    /* copied, may be NULL: the breaker it shares, e.g. "hub" */
	int64_t interval_ms;       /* time between the end of a successful run and the next, > 0 */
	cw_job_fn run;
	void *arg;                 /* borrowed; must outlive cw_jobs_stop or cw_jobs_remove */
	int stop_stage;            /* 0..CW_JOBS_STAGES-1: cw_jobs_stop cancels lower stages first */
} cw_job_spec_t;

/*
 * A run that fails after working this long (a source that streamed for an
 * hour, then lost its connection) first counts as a success: failure
 * streaks, give-up times and breakers measure failures in a row, not ever.
 */
#define CW_JOBS_HEALTHY_RUN_MS 10000
/*
 * A run that fails with an error a person must fix (cw_err_needs_a_fix:
 * CW_EINVAL, CW_EAUTH) is not retried with backoff: the next run comes after
 * this long, and the error is logged once until it changes.
 */
#define CW_JOBS_FIX_RECHECK_MS 30000

/* Shutdown stages: the daemon stops sources (0), then targets (1), then the control plane (2). */
#define CW_JOBS_STAGES 4

typedef struct cw_jobs_opts {
	const cw_clock_t *clock;   /* borrowed; NULL = cw_clock_system() */
	cw_retry_policy_t retry;   /* backoff after a failed run; give_up_after is ignored (jobs never give up) */
	int breaker_threshold;     /* consecutive failures that open a dependency's breaker; 0 = 5 */
	int64_t breaker_cool_down_ms; /* 0 = 30000 */
	uint64_t seed;             /* jitter seed; 0 = from the clock */
} cw_jobs_opts_t;

/* A job's state for /v1/status and `cachewarp status`. */
typedef struct cw_job_status {
	char name[64];
	char dependency[64];       /* "" when none */
	const char *breaker;       /* "closed", "open", "half_open"; static */
	int64_t runs;              /* runs started, the one in progress included */
	int64_t failures;          /* failed runs in total */
	int64_t consecutive_failures;
	int64_t last_success_us;   /* wall clock, 0 = never: when the last successful run
	                              ended, or now while the run in progress has worked
	                              for CW_JOBS_HEALTHY_RUN_MS (a source that streams
	                              returns only when it fails) */
	int64_t failing_since_ms;  /* monotonic clock of the first of the consecutive failures; 0 = none */
	char last_error[CW_ERR_MESSAGE_LEN]; /* "" after a success */
} cw_job_status_t;

/* A new, empty server (owned by the caller; cw_jobs_free). opts is copied. */
cw_jobs_t *cw_jobs_new(const cw_jobs_opts_t *opts);

/*
 * Adds a job; once the server is started its thread starts at once. 0,
 * CW_EINVAL for a bad spec or a duplicate name, CW_ECONFLICT after
 * cw_jobs_stop, CW_EINTERNAL when its thread cannot start.
 */
int cw_jobs_add(cw_jobs_t *jobs, const cw_job_spec_t *spec, cw_err_t *err);

/*
 * Stops job name and forgets it: fires its cancellation token, waits up to
 * grace_ms (real time) for its run to return and joins its thread. Its arg
 * is no longer used once this returns 0. CW_ENOTFOUND when there is no such
 * job; CW_ETIMEDOUT when it is still running after grace_ms (it stays
 * listed, its token fired; cw_jobs_stop deals with it).
 */
int cw_jobs_remove(cw_jobs_t *jobs, const char *name, int64_t grace_ms, cw_err_t *err);

/*
 * Gives job name its own retry schedule instead of the server's backoff:
 * the Nth failure in a row waits delays_ms[N - 1], the last delay repeating
 * (copied; 1 to 16 delays, each > 0), with the server's jitter. Breakers and
 * errors that need a fix behave as for any job. Any time: a running job
 * uses it from its next failure on. 0, CW_ENOTFOUND (no such job) or
 * CW_EINVAL (bad schedule).
 */
int cw_jobs_set_retry_schedule(cw_jobs_t *jobs, const char *name, const int64_t *delays_ms,
                               size_t ndelays, cw_err_t *err);

/* Starts every job's thread; each runs at once, then every interval. 0 or CW_EINTERNAL. */
int cw_jobs_start(cw_jobs_t *jobs, cw_err_t *err);

/*
 * The token of stop stage 0, fired first by cw_jobs_stop; borrowed. Each job
 * runs with its own token, fired with its stage's.
 */
cw_cancel_t *cw_jobs_cancel(cw_jobs_t *jobs);

/*
 * Stops the jobs stage by stage: fires the stage's cancellation token and
 * waits for its jobs to return before the next stage, all within grace_ms
 * (real time). Returns 0 when all stopped, CW_ETIMEDOUT naming the jobs
 * still running otherwise (their threads are left detached; the process is
 * expected to exit). Calling it twice is harmless.
 */
int cw_jobs_stop(cw_jobs_t *jobs, int64_t grace_ms, cw_err_t *err);

/* Copies each job's status into out (up to cap entries); returns the number of jobs. */
size_t cw_jobs_snapshot(cw_jobs_t *jobs, cw_job_status_t *out, size_t cap);

/* Frees the server; it must be stopped (or never started). NULL is a no-op. */
void cw_jobs_free(cw_jobs_t *jobs);

#endif
