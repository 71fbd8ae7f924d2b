/*
 * This file contains the clock interface (monotonic milliseconds, wall-clock
 * microseconds and a cancellable sleep) behind which code that measures time
 * sits, so tests can drive it with a fake clock; plus the time helpers shared
 * by the logger and the blocking primitives (RFC 3339 formatting, monotonic
 * condition variables and deadlines).
 *
 * A component takes a `const cw_clock_t *` (borrowed for its lifetime) and
 * calls cw_clock_now_ms / cw_clock_wall_us / cw_clock_sleep_ms; production
 * passes cw_clock_system(), tests pass cw_fake_clock_clock(&fake).
 *
 * THREAD SAFETY: the system clock is stateless and may be used from any
 * thread. A fake clock holds one mutex, taken only inside its own functions;
 * it may be read and advanced from any thread.
 */
#ifndef CW_CORE_CLOCK_H
#define CW_CORE_CLOCK_H

#include "core/cancel.h"

#include <pthread.h>
#include <stdint.h>
#include <time.h>

typedef struct cw_clock cw_clock_t;

struct cw_clock {
	/* Milliseconds on a monotonic clock: only differences mean anything. */
	int64_t (*now_ms)(const cw_clock_t *clock);
	/* Microseconds since the Unix epoch (real time, may jump). */
	int64_t (*wall_us)(const cw_clock_t *clock);
	/*
	 * Sleeps ms milliseconds, or less when cancel (borrowed, may be NULL) is
	 * fired: returns 0 after the full sleep, CW_ECANCELED when canceled.
	 */
	int (*sleep_ms)(const cw_clock_t *clock, int64_t ms, cw_cancel_t *cancel);
};

/* The process's real clocks (CLOCK_MONOTONIC, CLOCK_REALTIME); static, never freed. */
const cw_clock_t *cw_clock_system(void);

int64_t cw_clock_now_ms(const cw_clock_t *clock);
int64_t cw_clock_wall_us(const cw_clock_t *clock);
/* See cw_clock_t.sleep_ms; ms <= 0 returns at once (CW_ECANCELED if fired). */
int cw_clock_sleep_ms(const cw_clock_t *clock, int64_t ms, cw_cancel_t *cancel);

/*
 * A fake clock for tests: time stands still until cw_fake_clock_advance moves
 * it, and sleep_ms advances it by the slept time at once (so code under test
 * that backs off runs instantly) unless the cancel token is already fired.
 * The struct is owned by the caller (usually on the test's stack); call
 * cw_fake_clock_destroy when done.
 */
typedef struct cw_fake_clock {
	cw_clock_t clock;        /* must stay first; hand &fake->clock to code under test */
	pthread_mutex_t mutex;
	int64_t now_ms;          /* guarded by mutex */
	int64_t wall_us;         /* guarded by mutex; moves with now_ms */
	int64_t slept_ms;        /* guarded by mutex: total time passed to sleep_ms */
	int64_t sleeps;          /* guarded by mutex: number of sleep_ms calls */
} cw_fake_clock_t;

void cw_fake_clock_init(cw_fake_clock_t *fake, int64_t start_ms, int64_t start_wall_us);
void cw_fake_clock_destroy(cw_fake_clock_t *fake);
/* Moves both clocks forward by ms (ms >= 0). */
void cw_fake_clock_advance(cw_fake_clock_t *fake, int64_t ms);
/* The interface view of fake, borrowed for fake's lifetime. */
const cw_clock_t *cw_fake_clock_clock(cw_fake_clock_t *fake);
int64_t cw_fake_clock_slept_ms(cw_fake_clock_t *fake);
int64_t cw_fake_clock_sleeps(cw_fake_clock_t *fake);

#define CW_TIME_RFC3339_LEN 32

/*
 * Writes wall_us (microseconds since the Unix epoch) as UTC RFC 3339 with
 * milliseconds, "2026-11-22T10:00:00.123Z", into out (NUL-terminated).
 * Sub-millisecond digits are truncated, not rounded.
 */
void cw_time_format_rfc3339_ms(int64_t wall_us, char out[CW_TIME_RFC3339_LEN]);

/*
 * Initializes cond to measure timeouts on CLOCK_MONOTONIC, so waits do not
 * stretch or shrink when the wall clock is set. Aborts when out of resources.
 */
void cw_time_cond_init_monotonic(pthread_cond_t *cond);

/*
 * Seconds on CLOCK_MONOTONIC with microsecond resolution, for timing the
 * stages of a pipeline (the difference of two readings is a duration).
 */
double cw_time_monotonic_s(void);

/* The CLOCK_MONOTONIC instant timeout_ms (>= 0) from now, for pthread_cond_timedwait. */
void cw_time_deadline(int64_t timeout_ms, struct timespec *deadline);

#endif
