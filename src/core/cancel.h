/*
 * This file contains cw_cancel_t, the cancellation token a worker checks and
 * sleeps on: shutdown fires it once, and every wait on it returns at once.
 *
 * Lifecycle: cw_cancel_new returns a token owned by the caller, who frees it
 * with cw_cancel_free after every thread that waits on it has been joined.
 * A fired token stays fired; there is no reset.
 *
 * Signal handlers must not call cw_cancel_fire (it takes a mutex): the handler
 * sets a volatile sig_atomic_t or writes to a self-pipe, and the thread that
 * notices it fires the token.
 *
 * THREAD SAFETY: every function except cw_cancel_free may be called from any
 * thread at any time. The token holds one mutex, taken by fire and wait for a
 * few instructions and never while another lock is taken from inside this
 * module; cw_cancel_is_set takes no lock (an atomic load), so loops may call
 * it once per item.
 */
#ifndef CW_CORE_CANCEL_H
#define CW_CORE_CANCEL_H

#include <stdbool.h>
#include <stdint.h>

typedef struct cw_cancel cw_cancel_t;

/* A new, unfired token (owned by the caller). Aborts when out of resources. */
cw_cancel_t *cw_cancel_new(void);

/* Frees the token; NULL is a no-op. No thread may still wait on it. */
void cw_cancel_free(cw_cancel_t *cancel);

/* Fires the token and wakes every waiter. Firing twice is harmless. */
void cw_cancel_fire(cw_cancel_t *cancel);

/* True once the token has been fired; NULL is never fired. */
bool cw_cancel_is_set(cw_cancel_t *cancel);

/*
 * Waits up to timeout_ms on CLOCK_MONOTONIC (negative: until fired). Returns
 * CW_ECANCELED as soon as the token is fired (also when it already was),
 * otherwise 0 once the whole timeout has elapsed.
 */
int cw_cancel_wait_ms(cw_cancel_t *cancel, int64_t timeout_ms);

#endif
