/*
 * This file contains the frame of one run of a source worker
 * (capture/source_run.h).
 */
#include "capture/source_run.h"

#include "core/secret.h"

#include <stdio.h>
#include <stdlib.h>

int cw_source_run(const cw_source_run_t *run, void *self, cw_cancel_t *cancel, cw_err_t *err)
{
	cw_err_t local = {0};
	if (err == NULL)
		err = &local;
	int rc = run->work(self, cancel, err);
	if (rc == 0)   /* work returns when cancel fires or on an error */
		rc = CW_ECANCELED;
	char *masked = NULL;
	const char *state = "stopped";
	if (rc == CW_ECANCELED) {
		cw_err_set(err, CW_ECANCELED, run->domain, "%s \"%s\" stopped", run->what, run->name);
	} else {
		state = run->error_state != NULL ? run->error_state(err) : "retrying";
		masked = cw_secret_mask(err->message);
	}
	pthread_mutex_lock(run->mutex);
	snprintf(run->status->state, sizeof run->status->state, "%s", state);
	run->status->healthy = false;
	if (masked != NULL)
		snprintf(run->status->last_error, sizeof run->status->last_error, "%s", masked);
	pthread_mutex_unlock(run->mutex);
	free(masked);
	run->cleanup(self);
	return rc;
}
