/*
 * This file contains retry with exponential backoff, jitter and a give-up
 * time, for every worker that reconnects or retries (sources, the oplog
 * writer, targets, jobs).
 *
 * The n-th consecutive failure (n = 0, 1, ...) waits a base delay of
 * initial_ms * multiplier^n, capped at max_ms, then jittered: the delay is
 * drawn uniformly from [base * (1 - jitter), base]. jitter = 1 is "full
 * jitter" (0..base), jitter = 0.5 is "equal jitter" (base/2..base), our
 * default: it still spreads a crowd of workers that failed together, but
 * never retries at once against a server that just went down.
 *
 * Give-up: the first failure after a success (or after init) starts the
 * clock. A delay never extends past first failure + give_up_after_ms (it is
 * shortened to end exactly there), and the first failure reported at or after
 * that instant gets CW_ETIMEDOUT: the last attempt happens exactly
 * give_up_after_ms after the first failure.
 *
 * Randomness comes from a caller-owned uint64_t state (splitmix64), so tests
 * are reproducible; seed it with anything, e.g. the wall clock mixed with a
 * worker number.
 *
 * Typical loop:
 *   cw_retry_t retry;
 *   cw_retry_init(&retry, &policy);
 *   while ((rc = connect_once()) != 0) {
 *       if (cw_retry_backoff(&retry, clock, &rng, cancel) != 0)
 *           break;  // gave up or shutting down
 *   }
 *   cw_retry_reset(&retry);
 *
 * THREAD SAFETY: a cw_retry_t and its rng state belong to one thread.
 */
#ifndef CW_CORE_RETRY_H
#define CW_CORE_RETRY_H

#include "core/cancel.h"
#include "core/clock.h"
#include "core/err.h"

#include <stdint.h>

typedef struct cw_retry_policy {
	int64_t initial_ms;        /* first delay, > 0 */
	int64_t max_ms;            /* cap on the base delay, >= initial_ms */
	double multiplier;         /* growth per failure, >= 1.0 */
	int64_t give_up_after_ms;  /* 0: never give up; otherwise > 0 */
	double jitter;             /* 0..1, fraction of the delay that is random */
} cw_retry_policy_t;

/* The defaults of DESIGN.md's config: 100ms, 30s, x2, give up after 10m, equal jitter. */
#define CW_RETRY_POLICY_DEFAULT {100, 30000, 2.0, 600000, 0.5}

typedef struct cw_retry {
	cw_retry_policy_t policy;   /* a copy of the policy given to cw_retry_init */
	int64_t attempts;           /* failures reported since init or the last reset */
	int64_t first_failure_ms;   /* clock time of the first of them (attempts > 0) */
	double next_base_ms;        /* base delay for the next failure, before jitter */
} cw_retry_t;

/* 0, or CW_EINVAL with a message naming the bad field. */
int cw_retry_policy_check(const cw_retry_policy_t *policy, cw_err_t *err);

/* Copies policy (which must pass cw_retry_policy_check) and resets. */
void cw_retry_init(cw_retry_t *retry, const cw_retry_policy_t *policy);

/* Call after a success: the next failure starts from initial_ms and a new give-up clock. */
void cw_retry_reset(cw_retry_t *retry);

/*
 * Call after a failure. Sets *delay_ms to how long to wait before the next
 * attempt and returns 0, or returns CW_ETIMEDOUT (and sets *delay_ms to 0)
 * once give_up_after_ms has elapsed since the first failure. clock is
 * borrowed; rng_state is read and advanced.
 */
int cw_retry_next_delay(cw_retry_t *retry, const cw_clock_t *clock, uint64_t *rng_state,
	int64_t *delay_ms);

/*
 * cw_retry_next_delay, then sleeps that long on clock. Returns 0 when it is
 * time to try again, CW_ETIMEDOUT when giving up, CW_ECANCELED when cancel
 * (borrowed, may be NULL) fired before or during the sleep.
 */
int cw_retry_backoff(cw_retry_t *retry, const cw_clock_t *clock, uint64_t *rng_state,
	cw_cancel_t *cancel);

/* The next 64 random bits from state (splitmix64); any seed, including 0, is fine. */
uint64_t cw_retry_rand(uint64_t *rng_state);

#endif
