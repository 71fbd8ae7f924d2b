/* This file contains the system and fake clocks and the time helpers declared in clock.h. */
#include "core/clock.h"

#include "core/err.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void resource_failure(const char *what, int rc)
{
	fprintf(stderr, "cachewarp: could not initialize %s: %s\n", what, strerror(rc));
	abort();
}

static int64_t read_clock_us(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t system_now_ms(const cw_clock_t *clock)
{
	return read_clock_us(CLOCK_MONOTONIC) / 1000;
}

static int64_t system_wall_us(const cw_clock_t *clock)
{
	return read_clock_us(CLOCK_REALTIME);
}

static int system_sleep_ms(const cw_clock_t *clock, int64_t ms, cw_cancel_t *cancel)
{
	if (cancel != NULL)
		return cw_cancel_wait_ms(cancel, ms < 0 ? 0 : ms);
	if (ms <= 0)
		return 0;
	struct timespec deadline;
	cw_time_deadline(ms, &deadline);
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL) == EINTR)
		;
	return 0;
}

static const cw_clock_t system_clock = {
	.now_ms = system_now_ms,
	.wall_us = system_wall_us,
	.sleep_ms = system_sleep_ms,
};

const cw_clock_t *cw_clock_system(void)
{
	return &system_clock;
}

int64_t cw_clock_now_ms(const cw_clock_t *clock)
{
	return clock->now_ms(clock);
}

int64_t cw_clock_wall_us(const cw_clock_t *clock)
{
	return clock->wall_us(clock);
}

int cw_clock_sleep_ms(const cw_clock_t *clock, int64_t ms, cw_cancel_t *cancel)
{
	return clock->sleep_ms(clock, ms, cancel);
}

/* The fake clock: cw_fake_clock_t starts with its cw_clock_t, so the cast is safe. */

static int64_t fake_now_ms(const cw_clock_t *clock)
{
	cw_fake_clock_t *fake = (cw_fake_clock_t *)clock;
	pthread_mutex_lock(&fake->mutex);
	int64_t now = fake->now_ms;
	pthread_mutex_unlock(&fake->mutex);
	return now;
}

static int64_t fake_wall_us(const cw_clock_t *clock)
{
	cw_fake_clock_t *fake = (cw_fake_clock_t *)clock;
	pthread_mutex_lock(&fake->mutex);
	int64_t wall = fake->wall_us;
	pthread_mutex_unlock(&fake->mutex);
	return wall;
}

static int fake_sleep_ms(const cw_clock_t *clock, int64_t ms, cw_cancel_t *cancel)
{
	cw_fake_clock_t *fake = (cw_fake_clock_t *)clock;
	if (cw_cancel_is_set(cancel))
		return CW_ECANCELED;
	if (ms < 0)
		ms = 0;
	pthread_mutex_lock(&fake->mutex);
	fake->now_ms += ms;
	fake->wall_us += ms * 1000;
	fake->slept_ms += ms;
	fake->sleeps++;
	pthread_mutex_unlock(&fake->mutex);
	return 0;
}

void cw_fake_clock_init(cw_fake_clock_t *fake, int64_t start_ms, int64_t start_wall_us)
{
	memset(fake, 0, sizeof *fake);
	fake->clock.now_ms = fake_now_ms;
	fake->clock.wall_us = fake_wall_us;
	fake->clock.sleep_ms = fake_sleep_ms;
	int rc = pthread_mutex_init(&fake->mutex, NULL);
	if (rc != 0)
		resource_failure("fake clock mutex", rc);
	fake->now_ms = start_ms;
	fake->wall_us = start_wall_us;
}

void cw_fake_clock_destroy(cw_fake_clock_t *fake)
{
	if (fake != NULL)
		pthread_mutex_destroy(&fake->mutex);
}

void cw_fake_clock_advance(cw_fake_clock_t *fake, int64_t ms)
{
	assert(ms >= 0);
	pthread_mutex_lock(&fake->mutex);
	fake->now_ms += ms;
	fake->wall_us += ms * 1000;
	pthread_mutex_unlock(&fake->mutex);
}

const cw_clock_t *cw_fake_clock_clock(cw_fake_clock_t *fake)
{
	return &fake->clock;
}

int64_t cw_fake_clock_slept_ms(cw_fake_clock_t *fake)
{
	pthread_mutex_lock(&fake->mutex);
	int64_t slept = fake->slept_ms;
	pthread_mutex_unlock(&fake->mutex);
	return slept;
}

int64_t cw_fake_clock_sleeps(cw_fake_clock_t *fake)
{
	pthread_mutex_lock(&fake->mutex);
	int64_t sleeps = fake->sleeps;
	pthread_mutex_unlock(&fake->mutex);
	return sleeps;
}

void cw_time_format_rfc3339_ms(int64_t wall_us, char out[CW_TIME_RFC3339_LEN])
{
	/* Floor division, so instants before 1970 still get a valid millisecond field. */
	int64_t secs = wall_us / 1000000;
	int64_t rem_us = wall_us % 1000000;
	if (rem_us < 0) {
		rem_us += 1000000;
		secs--;
	}
	time_t t = (time_t)secs;
	struct tm tm;
	size_t len = 0;
	if (gmtime_r(&t, &tm) != NULL)
		len = strftime(out, CW_TIME_RFC3339_LEN, "%Y-%m-%dT%H:%M:%S", &tm);
	if (len == 0 || len > CW_TIME_RFC3339_LEN - 6) {
		snprintf(out, CW_TIME_RFC3339_LEN, "0000-01-01T00:00:00.000Z");
		return;
	}
	unsigned millis = (unsigned)(rem_us / 1000) % 1000;
	snprintf(out + len, CW_TIME_RFC3339_LEN - len, ".%03uZ", millis);
}

void cw_time_cond_init_monotonic(pthread_cond_t *cond)
{
	pthread_condattr_t attr;
	int rc = pthread_condattr_init(&attr);
	if (rc == 0)
		rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (rc == 0)
		rc = pthread_cond_init(cond, &attr);
	pthread_condattr_destroy(&attr);
	if (rc != 0)
		resource_failure("condition variable", rc);
}

double cw_time_monotonic_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)(ts.tv_nsec / 1000) / 1e6;
}

void cw_time_deadline(int64_t timeout_ms, struct timespec *deadline)
{
	assert(timeout_ms >= 0);
	const int64_t century_ms = INT64_C(100) * 366 * 24 * 3600 * 1000;
	if (timeout_ms > century_ms)
		timeout_ms = century_ms; /* keeps tv_sec from overflowing */
	clock_gettime(CLOCK_MONOTONIC, deadline);
	deadline->tv_sec += (time_t)(timeout_ms / 1000);
	deadline->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (deadline->tv_nsec >= 1000000000L) {
		deadline->tv_sec++;
		deadline->tv_nsec -= 1000000000L;
	}
}
