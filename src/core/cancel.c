/* This file contains the cancellation token declared in cancel.h. */
#include "core/cancel.h"

#include "core/clock.h"
#include "core/err.h"
#include "core/mem.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cw_cancel {
	pthread_mutex_t mutex;
	pthread_cond_t fired_cond;  /* broadcast once, when fired becomes true */
	/* Written under mutex (waiters check it there); read without it by
	 * cw_cancel_is_set, which hot loops call once per change. */
	atomic_bool fired;
};

cw_cancel_t *cw_cancel_new(void)
{
	cw_cancel_t *cancel = cw_xcalloc(1, sizeof *cancel);
	int rc = pthread_mutex_init(&cancel->mutex, NULL);
	if (rc != 0) {
		fprintf(stderr, "cachewarp: could not initialize cancel mutex: %s\n", strerror(rc));
		abort();
	}
	atomic_init(&cancel->fired, false);
	cw_time_cond_init_monotonic(&cancel->fired_cond);
	return cancel;
}

void cw_cancel_free(cw_cancel_t *cancel)
{
	if (cancel == NULL)
		return;
	pthread_cond_destroy(&cancel->fired_cond);
	pthread_mutex_destroy(&cancel->mutex);
	free(cancel);
}

void cw_cancel_fire(cw_cancel_t *cancel)
{
	pthread_mutex_lock(&cancel->mutex);
	atomic_store_explicit(&cancel->fired, true, memory_order_release);
	pthread_cond_broadcast(&cancel->fired_cond);
	pthread_mutex_unlock(&cancel->mutex);
}

bool cw_cancel_is_set(cw_cancel_t *cancel)
{
	if (cancel == NULL)
		return false;
	return atomic_load_explicit(&cancel->fired, memory_order_acquire);
}

int cw_cancel_wait_ms(cw_cancel_t *cancel, int64_t timeout_ms)
{
	assert(cancel != NULL);
	struct timespec deadline = {0, 0};
	if (timeout_ms >= 0)
		cw_time_deadline(timeout_ms, &deadline);
	int rc = 0;
	pthread_mutex_lock(&cancel->mutex);
	while (!atomic_load_explicit(&cancel->fired, memory_order_relaxed) && rc != ETIMEDOUT) {
		if (timeout_ms < 0)
			rc = pthread_cond_wait(&cancel->fired_cond, &cancel->mutex);
		else
			rc = pthread_cond_timedwait(&cancel->fired_cond, &cancel->mutex, &deadline);
	}
	bool fired = atomic_load_explicit(&cancel->fired, memory_order_relaxed);
	pthread_mutex_unlock(&cancel->mutex);
	return fired ? CW_ECANCELED : 0;
}
