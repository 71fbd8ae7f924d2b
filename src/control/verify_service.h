/*
 * This file contains verify inside the daemon (docs/verify.md): runs the
 * REST API starts (POST /v1/verify), each on a thread of its own, their
 * progress and cancellation, and the scheduled health check, a job of the
 * job server (verify.interval, verify.window, verify.repair).
 *
 * THREAD SAFETY: every function may be called from any thread; the list of
 * runs has one mutex, never held while verify talks to a database.
 */
#ifndef CW_CONTROL_VERIFY_SERVICE_H
#define CW_CONTROL_VERIFY_SERVICE_H

#include "core/cancel.h"
#include "core/config.h"
#include "core/err.h"
#include "core/metrics.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct cw_verify_service cw_verify_service_t;

/* A service for config and metrics (both borrowed; must outlive it). */
cw_verify_service_t *cw_verify_service_new(const cw_config_t *config, cw_metrics_t *metrics);

/*
 * Runs started from now on use config (borrowed; must outlive the service):
 * a configuration reload's sources, targets and entities. Runs going on keep
 * theirs.
 */
void cw_verify_service_set_config(cw_verify_service_t *service, const cw_config_t *config);

/* Cancels the runs still going, waits for their threads, frees. NULL is a no-op. */
void cw_verify_service_free(cw_verify_service_t *service);

/*
 * Begins verifying entity in target (with repair when asked) and runs it on
 * a new thread; *id receives the run's id. Errors as cw_verify_job_begin:
 * CW_ENOTFOUND, CW_EINVAL, CW_ECONFLICT (*running_id: the run that holds
 * the pair, 0 when unknown), CW_EDB.
 */
int cw_verify_service_start(cw_verify_service_t *service, const char *entity, const char *target,
                            bool repair, int64_t *id, int64_t *running_id, cw_err_t *err);

/* Whether run id is running in this process; then its step and rows so far. */
bool cw_verify_service_progress(cw_verify_service_t *service, int64_t id, char step[32],
                                uint64_t *rows, uint64_t *expected);

/* Cancels run id. 0, or CW_ENOTFOUND when it is not running in this process. */
int cw_verify_service_cancel(cw_verify_service_t *service, int64_t id, cw_err_t *err);

/*
 * The scheduled health check, as a job function (control/jobs.h; arg is
 * the service): inside verify.window, verifies every pair verify can read,
 * repairing when verify.repair is set; outside it, does nothing. A pair
 * another run holds is skipped until the next interval.
 */
int cw_verify_service_scheduled(void *arg, cw_cancel_t *cancel, cw_err_t *err);

#endif
