/*
 * This file contains the rules of a stream, one entity flowing to one target
 * (docs/streams.md): its settings resolved against the global ones, which
 * errors are the stream's own (a refused value, a missing privilege on one
 * table) and which are the whole target's (its server unreachable), the
 * delay before the next attempt, and whether an error code is permanent.
 * The apply loop (apply_loop.c) acts on them; this file does no I/O.
 *
 * THREAD SAFETY: a cw_stream_policy_t is immutable once resolved; the rng
 * state passed to cw_stream_retry_delay belongs to the caller.
 */
#ifndef CW_APPLY_STREAM_H
#define CW_APPLY_STREAM_H

#include "core/config.h"
#include "core/err.h"

#include <stdbool.h>
#include <stdint.h>

/* Most permanent error codes a stream keeps. */
#define CW_STREAM_CODES_MAX 32

typedef struct cw_stream_policy {
	bool enabled;
	int64_t batch_size;             /* most changes per write; 0 = no limit of its own */
	const char *transformation_id;  /* borrowed from the config, or NULL */
	cw_on_error_t on_error;         /* write errors past the budget */
	cw_on_error_t on_transform_error;
	int64_t max_attempts;           /* 0 = until give_up_after_ms has passed */
	int64_t give_up_after_ms;       /* with max_attempts 0: the global retry.give_up_after */
	int64_t initial_delay_ms;
	int64_t max_delay_ms;
	double multiplier;
	double jitter;
	size_t ncodes;
	char codes[CW_STREAM_CODES_MAX][16];
} cw_stream_policy_t;

/*
 * The policy of entity on target (both borrowed): its targets[].streams[]
 * entry where there is one, the defaults otherwise, each unset value taken
 * from config's global `retry`, and the transformation's error handling.
 */
void cw_stream_policy_resolve(const cw_config_t *config, const cw_target_config_t *target,
                              const char *entity, cw_stream_policy_t *out);

/*
 * True when err (from a target's backend) is about the whole target — no
 * server code, or one that says the connection, the server or the
 * transaction failed (SQLSTATE classes 08, 40, 53, 57, 58, XX; MongoDB's
 * network, shutdown and not-primary codes) — and false when a server refused
 * this stream's own work, or the backend said so (CW_EENTITY).
 */
bool cw_stream_error_is_target_wide(const cw_err_t *err);

/* True when err's server code is one of the policy's permanent codes. */
bool cw_stream_error_is_permanent(const cw_stream_policy_t *policy, const cw_err_t *err);

/*
 * The delay before attempt number `attempts` + 1 after `attempts` (>= 1)
 * failures: initial * multiplier^(attempts-1), capped at max_delay, with the
 * policy's jitter drawn from *rng.
 */
int64_t cw_stream_retry_delay(const cw_stream_policy_t *policy, int64_t attempts, uint64_t *rng);

/*
 * True when a stream that failed `attempts` times since first_failure_ms has
 * spent its budget at now_ms.
 */
bool cw_stream_budget_spent(const cw_stream_policy_t *policy, int64_t attempts,
                            int64_t first_failure_ms, int64_t now_ms);

#endif
