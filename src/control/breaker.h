/*
 * This file contains the circuit breaker the job server keeps per external
 * dependency (the hub, each source, each target): after `threshold`
 * consecutive failures it opens and refuses calls for `cool_down_ms`, then
 * half-opens to let one trial call through; the trial's success closes it,
 * its failure opens it again for another cool-down.
 *
 * Pure state machine: every function takes the current monotonic time, so
 * tests drive it without a clock. Not thread safe: the owner serializes.
 */
#ifndef CW_CONTROL_BREAKER_H
#define CW_CONTROL_BREAKER_H

#include <stdbool.h>
#include <stdint.h>

typedef enum cw_breaker_state {
	CW_BREAKER_CLOSED = 0,
	CW_BREAKER_OPEN,
	CW_BREAKER_HALF_OPEN,
} cw_breaker_state_t;

typedef struct cw_breaker {
	cw_breaker_state_t state;
	int failures;            /* consecutive failures while closed */
	int threshold;           /* failures that open the breaker, >= 1 */
	int64_t cool_down_ms;
	int64_t opened_at_ms;
	bool trial_in_flight;    /* half-open: one call let through, not yet reported */
} cw_breaker_t;

void cw_breaker_init(cw_breaker_t *breaker, int threshold, int64_t cool_down_ms);

/* True when a call may go ahead now; moves open → half-open after the cool-down. */
bool cw_breaker_allow(cw_breaker_t *breaker, int64_t now_ms);

/* Reports the outcome of an allowed call. */
void cw_breaker_record(cw_breaker_t *breaker, bool success, int64_t now_ms);

/* Milliseconds until an open breaker half-opens; 0 when calls are allowed. */
int64_t cw_breaker_wait_ms(const cw_breaker_t *breaker, int64_t now_ms);

const char *cw_breaker_state_name(cw_breaker_state_t state);

#endif
