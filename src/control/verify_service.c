/* This file contains verify inside the daemon (verify_service.h). */
#include "control/verify_service.h"

#include "core/log.h"
#include "core/mem.h"
#include "core/time_window.h"
#include "verify/verify.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define COMPONENT "verify"

/* One run the API started. */
typedef struct api_run {
	int64_t id;
	cw_verify_opts_t opts;
	cw_verify_job_t *job;       /* NULL once the run ended (guarded by the service mutex) */
	cw_cancel_t *cancel;
	pthread_t thread;
	cw_verify_service_t *service;
	struct api_run *next;
} api_run_t;

struct cw_verify_service {
	const cw_config_t *config;  /* guarded by mutex: the configuration in force */
	cw_metrics_t *metrics;
	pthread_mutex_t mutex;
	api_run_t *runs;            /* guarded by mutex */
};

cw_verify_service_t *cw_verify_service_new(const cw_config_t *config, cw_metrics_t *metrics)
{
	cw_verify_service_t *service = cw_xcalloc(1, sizeof *service);
	service->config = config;
	service->metrics = metrics;
	pthread_mutex_init(&service->mutex, NULL);
	if (metrics != NULL)
		cw_verify_metrics_declare(metrics);
	return service;
}

void cw_verify_service_set_config(cw_verify_service_t *service, const cw_config_t *config)
{
	pthread_mutex_lock(&service->mutex);
	service->config = config;
	pthread_mutex_unlock(&service->mutex);
}

static const cw_config_t *config_now(cw_verify_service_t *service)
{
	pthread_mutex_lock(&service->mutex);
	const cw_config_t *config = service->config;
	pthread_mutex_unlock(&service->mutex);
	return config;
}

static void run_free(api_run_t *run)
{
	pthread_join(run->thread, NULL);
	cw_cancel_free(run->cancel);
	free(run);
}

/* Joins and frees the runs that ended. */
static void reap(cw_verify_service_t *service)
{
	pthread_mutex_lock(&service->mutex);
	api_run_t *ended = NULL;
	for (api_run_t **link = &service->runs; *link != NULL;) {
		api_run_t *run = *link;
		if (run->job == NULL) {
			*link = run->next;
			run->next = ended;
			ended = run;
		} else {
			link = &run->next;
		}
	}
	pthread_mutex_unlock(&service->mutex);
	while (ended != NULL) {
		api_run_t *next = ended->next;
		run_free(ended);
		ended = next;
	}
}

void cw_verify_service_free(cw_verify_service_t *service)
{
	if (service == NULL)
		return;
	pthread_mutex_lock(&service->mutex);
	for (api_run_t *run = service->runs; run != NULL; run = run->next)
		cw_cancel_fire(run->cancel);
	api_run_t *runs = service->runs;
	service->runs = NULL;
	pthread_mutex_unlock(&service->mutex);
	while (runs != NULL) {
		api_run_t *next = runs->next;
		run_free(runs);
		runs = next;
	}
	pthread_mutex_destroy(&service->mutex);
	free(service);
}

static void *run_main(void *arg)
{
	api_run_t *run = arg;
	cw_verify_pair_t pair = {0};
	cw_verify_job_run(run->job, run->cancel, &pair);
	pthread_mutex_lock(&run->service->mutex);
	cw_verify_job_t *job = run->job;
	run->job = NULL;
	pthread_mutex_unlock(&run->service->mutex);
	cw_verify_job_free(job);
	free(pair.report);
	return NULL;
}

int cw_verify_service_start(cw_verify_service_t *service, const char *entity, const char *target,
                            bool repair, int64_t *id, int64_t *running_id, cw_err_t *err)
{
	reap(service);
	const cw_config_t *config = config_now(service);
	api_run_t *run = cw_xcalloc(1, sizeof *run);
	run->service = service;
	run->opts.repair = repair;
	run->opts.requested_by = "api";
	run->opts.settle_timeout_ms = config->verify.settle_timeout_ms;
	run->opts.metrics = service->metrics;
	run->job = cw_verify_job_begin(config, entity, target, &run->opts, running_id, err);
	if (run->job == NULL) {
		free(run);
		return err != NULL && err->code != 0 ? err->code : CW_EINTERNAL;
	}
	run->id = cw_verify_job_id(run->job);
	run->cancel = cw_cancel_new();
	pthread_mutex_lock(&service->mutex);
	if (pthread_create(&run->thread, NULL, run_main, run) != 0) {
		pthread_mutex_unlock(&service->mutex);
		cw_verify_job_free(run->job);
		cw_cancel_free(run->cancel);
		free(run);
		return cw_err_set(err, CW_EINTERNAL, COMPONENT, "could not start a verify thread");
	}
	run->next = service->runs;
	service->runs = run;
	*id = run->id;
	pthread_mutex_unlock(&service->mutex);
	return 0;
}

bool cw_verify_service_progress(cw_verify_service_t *service, int64_t id, char step[32],
                                uint64_t *rows, uint64_t *expected)
{
	bool running = false;
	pthread_mutex_lock(&service->mutex);
	for (api_run_t *run = service->runs; run != NULL; run = run->next) {
		if (run->id == id && run->job != NULL) {
			cw_verify_job_progress(run->job, step, rows, expected);
			running = true;
		}
	}
	pthread_mutex_unlock(&service->mutex);
	return running;
}

int cw_verify_service_cancel(cw_verify_service_t *service, int64_t id, cw_err_t *err)
{
	bool found = false;
	pthread_mutex_lock(&service->mutex);
	for (api_run_t *run = service->runs; run != NULL; run = run->next) {
		if (run->id == id && run->job != NULL) {
			cw_cancel_fire(run->cancel);
			found = true;
		}
	}
	pthread_mutex_unlock(&service->mutex);
	if (!found)
		return cw_err_set(err, CW_ENOTFOUND, COMPONENT, "verify run %lld is not running here",
		                  (long long)id);
	return 0;
}

static bool inside_window(const cw_config_t *config)
{
	if (config->verify.window == NULL)
		return true;
	int start, end;
	if (cw_time_window_parse(config->verify.window, &start, &end, NULL) != 0)
		return false;
	time_t now = time(NULL);
	struct tm local;
	localtime_r(&now, &local);
	return cw_time_window_contains(start, end, local.tm_hour * 60 + local.tm_min);
}

int cw_verify_service_scheduled(void *arg, cw_cancel_t *cancel, cw_err_t *err)
{
	cw_verify_service_t *service = arg;
	reap(service);
	const cw_config_t *config = config_now(service);
	if (!inside_window(config))
		return 0;
	cw_verify_opts_t opts = {0};
	opts.repair = config->verify.repair != 0;
	opts.requested_by = "schedule";
	opts.settle_timeout_ms = config->verify.settle_timeout_ms;
	opts.metrics = service->metrics;
	cw_verify_pair_t *pairs = NULL;
	size_t npairs = 0;
	cw_log_info(COMPONENT, "scheduled health check starts%s", opts.repair ? " (repairing)" : "");
	int rc = cw_verify_run(config, &opts, cancel, &pairs, &npairs, err);
	/* A pair another run holds is verified next time, not an error of this one. */
	if (rc == CW_ECONFLICT)
		rc = 0;
	size_t different = 0;
	for (size_t i = 0; i < npairs; i++)
		different += strcmp(pairs[i].status, "equal") != 0;
	if (rc == 0)
		cw_log_info(COMPONENT, "scheduled health check done: %zu pair(s), %zu not equal", npairs,
		            different);
	cw_verify_pairs_free(pairs, npairs);
	return rc;
}
