/*
 * This file contains the frame of one run of a source worker
 * (capture/source_run.h).
 */
#include "capture/source_run.h"

int cw_source_run(const cw_source_run_t *run, void *self, cw_cancel_t *cancel, cw_err_t *err)
{
	cw_err_t local = {0};
	if (err == NULL)
		err = &local;
	int rc = run->work(self, cancel, err);
	if (rc == 0)   /* work returns when cancel fires or on an error */
		rc = CW_ECANCELED;
	if (rc == CW_ECANCELED) {
		cw_err_set(err, CW_ECANCELED, run->domain, "%s \"%s\" stopped", run->what, run->name);
		cw_component_status_set(run->mutex, run->status, "stopped", false, NULL);
	} else {
		const char *state = run->error_state != NULL ? run->error_state(err) : "retrying";
		cw_component_status_set(run->mutex, run->status, state, false, err->message);
	}
	run->cleanup(self);
	return rc;
}
