/*
 * This file contains the frame of one run of a source worker (capture/source.h:
 * the ops' run), the same for every source type and its batch poller: do the
 * work, settle the status and the error the run ends with, and free what the
 * run opened, whatever happened.
 *
 * THREAD SAFETY: cw_source_run runs in the worker's thread; it writes the
 * status only under the worker's mutex, as the status reader expects.
 */
#ifndef CW_CAPTURE_SOURCE_RUN_H
#define CW_CAPTURE_SOURCE_RUN_H

#include "core/cancel.h"
#include "core/component.h"
#include "core/err.h"

#include <pthread.h>

typedef struct cw_source_run {
	/* Who stops, for the message of a cancelled run: "source", "batch poller of source". */
	const char *what;
	const char *name;                 /* the source's name; borrowed */
	const char *domain;               /* error domain of that message ("postgres") */
	pthread_mutex_t *mutex;           /* guards status; borrowed */
	cw_component_status_t *status;    /* the worker's, borrowed */
	/*
	 * The state a failed run leaves for err (borrowed, filled): "retrying",
	 * or "failed" for an error only a person can fix. NULL: always "retrying".
	 */
	const char *(*error_state)(const cw_err_t *err);
	/* The run's work on self until cancel fires or an error (err filled). */
	int (*work)(void *self, cw_cancel_t *cancel, cw_err_t *err);
	/* Frees what work opened, whether it failed or not; called exactly once. */
	void (*cleanup)(void *self);
} cw_source_run_t;

/*
 * Runs run->work(self, cancel, err), then run->cleanup(self). Work that
 * returns CW_ECANCELED (or 0) makes the run return CW_ECANCELED, with err
 * saying "<what> "<name>" stopped" and the state "stopped"; another error
 * is returned as it is, with the state error_state gives and err's message
 * (passwords masked) as the status's last error. The status is left
 * unhealthy either way. err may be NULL.
 */
int cw_source_run(const cw_source_run_t *run, void *self, cw_cancel_t *cancel, cw_err_t *err);

#endif
