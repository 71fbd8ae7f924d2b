/* This file contains `cachewarp run` (daemon.h). */
#include "control/daemon.h"

#include "apply/target.h"
#include "capture/source.h"
#include "control/api.h"
#include "control/dead_letter_gauge.h"
#include "control/cli.h"
#include "control/daemon_internal.h"
#include "control/entity_manager.h"
#include "control/entity_pause.h"
#include "control/jobs.h"
#include "control/runtime_internal.h"
#include "control/service_notify.h"
#include "control/verify_service.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/units.h"
#include "hub/consumers.h"
#include "hub/entity_registry.h"
#include "hub/entity_store.h"
#include "hub/lease.h"
#include "hub/migrations.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define COMPONENT "daemon"

const cw_config_t *cw_daemon_config(daemon_state_t *state)
{
	pthread_mutex_lock(&state->lock);
	const cw_config_t *config = state->config;
	pthread_mutex_unlock(&state->lock);
	return config;
}

int cw_daemon_check_hub_refused(daemon_state_t *state, int rc, const cw_err_t *err)
{
	if (rc != CW_EAUTH || err == NULL || strcmp(err->domain, "hub") != 0)
		return rc;
	if (!atomic_exchange(&state->gave_up, true)) {
		cw_log_kv(CW_LOG_ERROR, COMPONENT, "giving up: the hub refused the credentials; "
		          "not retrying", "error", err->message, NULL);
		cw_cancel_fire(state->shutdown);
	}
	return rc;
}

static cw_hub_t *job_hub_get(job_hub_t *jh, cw_err_t *err)
{
	if (jh->hub == NULL)
		jh->hub = cw_hub_connect_auth(jh->config->hub.url, jh->config->hub.auth, err);
	return jh->hub;
}

/* After a failed run: drop the connection when it is broken, so the next run reconnects. */
static int job_hub_result(job_hub_t *jh, int rc)
{
	if (rc != 0 && jh->hub != NULL && PQstatus(cw_hub_pgconn(jh->hub)) != CONNECTION_OK) {
		cw_hub_close(jh->hub);
		jh->hub = NULL;
	}
	return rc;
}

static int entity_refresh_job(void *arg, cw_cancel_t *cancel, cw_err_t *err)
{
	daemon_state_t *state = arg;
	cw_hub_t *hub = job_hub_get(&state->refresh_hub, err);
	if (hub == NULL)
		return cw_daemon_check_hub_refused(state, err != NULL ? err->code : CW_EDB, err);
	int rc = cw_entity_registry_reload(state->registry, hub, NULL, err);
	if (rc == 0) {
		cw_entity_t *entities = NULL;
		size_t count = 0;
		cw_entity_registry_snapshot(state->registry, &entities, &count);
		cw_entity_pause_publish(state->metrics, entities, count);
		cw_entity_store_list_free(entities, count);
	}
	return job_hub_result(&state->refresh_hub, rc);
}

static int retention_job(void *arg, cw_cancel_t *cancel, cw_err_t *err)
{
	daemon_state_t *state = arg;
	int64_t retention_ms = cw_daemon_config(state)->hub.retention_ms;   /* live on reload */
	if (retention_ms <= 0)
		return 0;
	cw_hub_t *hub = job_hub_get(&state->retention_hub, err);
	if (hub == NULL)
		return cw_daemon_check_hub_refused(state, err != NULL ? err->code : CW_EDB, err);
	int64_t deleted = 0;
	int rc = cw_oplog_retention_run(hub, retention_ms / 1000,
	                                CW_DAEMON_CONSUMER_LIVENESS_S, &deleted, err);
	if (rc == 0 && deleted > 0) {
		char n[24];
		snprintf(n, sizeof n, "%lld", (long long)deleted);
		cw_log_kv(CW_LOG_INFO, "retention", "deleted old oplog rows", "rows", n, NULL);
	}
	return job_hub_result(&state->retention_hub, rc);
}

static int liveness_job(void *arg, cw_cancel_t *cancel, cw_err_t *err)
{
	daemon_state_t *state = arg;
	cw_hub_t *hub = job_hub_get(&state->liveness_hub, err);
	if (hub == NULL)
		return cw_daemon_check_hub_refused(state, err != NULL ? err->code : CW_EDB, err);
	cw_consumer_t *consumers = NULL;
	size_t count = 0;
	int rc = cw_consumer_list(hub, &consumers, &count, err);
	if (rc != 0)
		return job_hub_result(&state->liveness_hub, rc);
	int64_t now_us = cw_clock_wall_us(cw_clock_system());
	for (size_t i = 0; i < count; i++) {
		int64_t silent_s = (now_us - consumers[i].last_seen_us) / 1000000;
		if (silent_s < CW_DAEMON_CONSUMER_LIVENESS_S)
			continue;
		char silent[24], lag[24];
		snprintf(silent, sizeof silent, "%llds", (long long)silent_s);
		snprintf(lag, sizeof lag, "%lld", (long long)consumers[i].lag_ids);
		cw_log_kv(CW_LOG_WARN, "consumers", "consumer is stale and no longer holds back retention",
		          "consumer", consumers[i].name, "silent_for", silent, "lag_ids", lag, NULL);
	}
	cw_consumer_list_free(consumers, count);
	return 0;
}

static int dead_letter_gauge_job(void *arg, cw_cancel_t *cancel, cw_err_t *err)
{
	daemon_state_t *state = arg;
	cw_hub_t *hub = job_hub_get(&state->dead_letter_hub, err);
	if (hub == NULL)
		return cw_daemon_check_hub_refused(state, err != NULL ? err->code : CW_EDB, err);
	return job_hub_result(&state->dead_letter_hub,
	                      cw_dead_letter_gauge_refresh(state->dead_letter_gauge, hub, err));
}

/*
 * Every source and target keeps retrying on its own; when all of them have
 * been failing for longer than retry.give_up_after, nothing useful can run
 * any more: the daemon stops with exit status 1 so a supervisor notices.
 */
static int give_up_watch_job(void *arg, cw_cancel_t *cancel, cw_err_t *err)
{
	daemon_state_t *state = arg;
	int64_t limit = cw_daemon_config(state)->retry.give_up_after_ms;
	if (limit <= 0 || state->jobs == NULL)
		return 0;
	size_t cap = cw_jobs_snapshot(state->jobs, NULL, 0) + 8;
	cw_job_status_t *status = cw_xcalloc(cap, sizeof *status);
	size_t n = cw_jobs_snapshot(state->jobs, status, cap);
	int64_t now = cw_clock_now_ms(cw_clock_system());
	size_t failing = 0;
	const char *last_error = "";
	pthread_mutex_lock(&state->lock);
	size_t ncomponents = state->ncomponents;
	for (size_t i = 0; i < ncomponents; i++) {
		const component_t *c = state->components[i];
		for (size_t j = 0; j < n && j < cap; j++) {
			if (strcmp(status[j].name, c->job_name) != 0)
				continue;
			if (!c->standby && status[j].consecutive_failures > 0 &&
			    now - status[j].failing_since_ms >= limit) {
				failing++;
				last_error = status[j].last_error;
			}
		}
	}
	pthread_mutex_unlock(&state->lock);
	if (ncomponents > 0 && failing == ncomponents && !atomic_load(&state->gave_up)) {
		char after[CW_UNITS_FORMAT_LEN];
		cw_duration_format(limit, after);
		cw_log_kv(CW_LOG_ERROR, COMPONENT,
		          "giving up: every source and target has been failing for longer than "
		          "retry.give_up_after", "after", after, "last_error", last_error, NULL);
		atomic_store(&state->gave_up, true);
		cw_cancel_fire(state->shutdown);
	}
	free(status);
	return 0;
}

typedef struct signal_watch {
	sigset_t set;
	cw_cancel_t *shutdown;
	atomic_bool reload;         /* SIGHUP arrived: the main thread reloads the file */
} signal_watch_t;

static void *signal_main(void *arg)
{
	signal_watch_t *watch = arg;
	bool stopping = false;
	for (;;) {
		int sig = 0;
		if (sigwait(&watch->set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			atomic_store(&watch->reload, true);
		} else if (!stopping) {
			stopping = true;
			cw_log_kv(CW_LOG_INFO, COMPONENT, "shutting down", "signal",
			          sig == SIGINT ? "SIGINT" : "SIGTERM", NULL);
			cw_cancel_fire(watch->shutdown);
		} else if (sig == SIGINT) {
			cw_log_kv(CW_LOG_WARN, COMPONENT, "second SIGINT: exiting at once", NULL);
			_exit(CW_EXIT_FAILURE);
		}
	}
	return NULL;
}

/* Blocks SIGINT, SIGTERM and SIGHUP in every thread and starts the thread that waits for them. */
static int watch_signals(signal_watch_t *watch, cw_err_t *err)
{
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&watch->set);
	sigaddset(&watch->set, SIGINT);
	sigaddset(&watch->set, SIGTERM);
	sigaddset(&watch->set, SIGHUP);
	pthread_t thread;
	if (pthread_sigmask(SIG_BLOCK, &watch->set, NULL) != 0 ||
	    pthread_create(&thread, NULL, signal_main, watch) != 0)
		return cw_err_set(err, CW_EINTERNAL, COMPONENT, "could not set up signal handling");
	pthread_detach(thread);
	return 0;
}

/* --entity names must be entities the hub knows: CW_EINVAL naming the first that is not. */
static int check_entity_filter(cw_entity_registry_t *registry, const char **names, size_t n,
                               cw_err_t *err)
{
	cw_entity_t *entities = NULL;
	size_t count = 0;
	cw_entity_registry_snapshot(registry, &entities, &count);
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		bool known = false;
		for (size_t j = 0; j < count; j++)
			if (strcmp(entities[j].name, names[i]) == 0 && entities[j].status != CW_ENTITY_DELETED)
				known = true;
		if (!known)
			rc = cw_err_set(err, CW_EINVAL, COMPONENT, "--entity %s: no such entity in the "
			                "configuration or the hub (see cachewarp entity list)", names[i]);
	}
	cw_entity_store_list_free(entities, count);
	return rc;
}

/* Opens every configured source and target; CW_E* with err filled when one cannot be. */
static int open_components(daemon_state_t *state, component_t ***opened, size_t *nopened,
                           cw_err_t *err)
{
	const cw_config_t *config = state->config;
	*opened = cw_xcalloc(2 * config->nsources + config->ntargets + 1, sizeof **opened);
	for (size_t i = 0; i < config->nsources + config->ntargets; i++) {
		bool is_source = i < config->nsources;
		const char *name = is_source ? config->sources[i].name
		                             : config->targets[i - config->nsources].name;
		/* A source whose entities are all in batch mode has only its poller. */
		if (is_source && !cw_source_needs_stream(config, name))
			continue;
		component_t *c = cw_daemon_component_open(state, config, is_source, name, err);
		if (c == NULL)
			return err != NULL && err->code != 0 ? err->code : CW_EINTERNAL;
		(*opened)[(*nopened)++] = c;
	}
	for (size_t i = 0; i < config->nsources; i++) {
		if (!cw_source_has_batch(config, config->sources[i].name))
			continue;
		component_t *c = cw_daemon_poller_open(state, config, config->sources[i].name, err);
		if (c == NULL)
			return err != NULL && err->code != 0 ? err->code : CW_EINTERNAL;
		(*opened)[(*nopened)++] = c;
	}
	return 0;
}

static int add_jobs(cw_jobs_t *jobs, daemon_state_t *state, component_t **opened,
                    size_t nopened, cw_err_t *err)
{
	for (size_t i = 0; i < nopened; i++) {
		int rc = cw_daemon_component_start(state, opened[i], err);
		if (rc != 0)
			return rc;
	}
	const cw_job_spec_t specs[] = {
		{"entity_refresh", "hub", CW_DAEMON_ENTITY_REFRESH_MS, entity_refresh_job, state, 2},
		{"oplog_retention", "hub", CW_DAEMON_RETENTION_MS, retention_job, state, 2},
		{"consumer_liveness", "hub", CW_DAEMON_LIVENESS_MS, liveness_job, state, 2},
		{"give_up_watch", NULL, CW_DAEMON_GIVE_UP_CHECK_MS, give_up_watch_job, state, 2},
		{"dead_letter_gauge", "hub", CW_DAEMON_DEAD_LETTER_GAUGE_MS, dead_letter_gauge_job,
		 state, 2},
	};
	for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
		int rc = cw_jobs_add(jobs, &specs[i], err);
		if (rc != 0)
			return rc;
	}
	if (state->config->verify.interval_ms > 0) {
		cw_job_spec_t verify = {"verify_schedule", "hub", state->config->verify.interval_ms,
		                        cw_verify_service_scheduled, state->verify, 2};
		return cw_jobs_add(jobs, &verify, err);
	}
	return 0;
}

static cw_api_t *start_api(daemon_state_t *state, cw_jobs_t *jobs, cw_err_t *err)
{
	cw_api_deps_t deps = {state->config, state->metrics, jobs, cw_daemon_api_components, state,
	                      state->verify, cw_daemon_api_config, state};
	cw_api_t *api = cw_api_start(&deps, err);
	if (api != NULL) {
		char port[8];
		snprintf(port, sizeof port, "%u", (unsigned)cw_api_port(api));
		cw_log_kv(CW_LOG_INFO, "api", "listening", "listen", state->config->api.listen, "port",
		          port, NULL);
	}
	return api;
}

/* Until shutdown: reloads on SIGHUP and, with config.watch, when the file changes. */
static void wait_for_shutdown(daemon_state_t *state, signal_watch_t *watch)
{
	while (cw_cancel_wait_ms(state->shutdown, CW_DAEMON_SIGNAL_POLL_MS) != CW_ECANCELED) {
		if (atomic_exchange(&watch->reload, false))
			cw_daemon_reload(state, "SIGHUP");
		else
			cw_daemon_watch_poll(state);
	}
}

/* Stops every listed component's job (already stopped by the job server) and closes it. */
static void close_components(daemon_state_t *state)
{
	pthread_mutex_lock(&state->lock);
	component_t **components = state->components;
	size_t n = state->ncomponents;
	state->components = NULL;
	state->ncomponents = 0;
	pthread_mutex_unlock(&state->lock);
	for (size_t i = n; i-- > 0;)
		cw_daemon_component_close(components[i]);
	free(components);
}

/* Everything after the hub is reached and migrated; returns an exit code (err: why it failed). */
static int serve(const cw_config_t *config, cw_hub_t *hub, signal_watch_t *watch,
                 const char **entities, size_t nentities, cw_err_t *err)
{
	if (cw_entity_manager_sync_config(hub, config, err) != 0)
		return err->code == CW_ECONFLICT || err->code == CW_EINVAL ? CW_EXIT_USAGE : CW_EXIT_FAILURE;
	daemon_state_t state;
	memset(&state, 0, sizeof state);
	pthread_mutex_init(&state.lock, NULL);
	state.config = config;
	state.entities = entities;
	state.nentities = nentities;
	state.hub = hub;
	state.metrics = cw_metrics_new();
	state.registry = cw_entity_registry_new();
	state.refresh_hub.config = state.retention_hub.config = state.liveness_hub.config = config;
	state.dead_letter_hub.config = config;
	state.shutdown = watch->shutdown;
	state.verify = cw_verify_service_new(config, state.metrics);
	state.dead_letter_gauge = cw_dead_letter_gauge_new(state.metrics);
	cw_daemon_reload_init(&state);
	int exit_code = CW_EXIT_FAILURE;
	cw_jobs_t *jobs = NULL;
	cw_api_t *api = NULL;
	component_t **opened = NULL;
	size_t nopened = 0;
	if (cw_entity_registry_reload(state.registry, hub, NULL, err) != 0)
		goto out;
	if (check_entity_filter(state.registry, entities, nentities, err) != 0 ||
	    open_components(&state, &opened, &nopened, err) != 0) {
		exit_code = err->code == CW_EINVAL ? CW_EXIT_USAGE : CW_EXIT_FAILURE;
		goto out;
	}
	cw_jobs_opts_t opts = {NULL, config->retry, 0, 0, 0};
	jobs = cw_jobs_new(&opts);
	state.jobs = jobs;
	if (add_jobs(jobs, &state, opened, nopened, err) != 0 || cw_jobs_start(jobs, err) != 0 ||
	    (api = start_api(&state, jobs, err)) == NULL) {
		cw_jobs_stop(jobs, CW_DAEMON_GRACE_MS, NULL);
		goto out;
	}
	/* Every component is listed now, and a reload may stop and free any of them. */
	free(opened);
	opened = NULL;
	nopened = 0;
	char n[24];
	snprintf(n, sizeof n, "%zu", config->nentities);
	cw_log_kv(CW_LOG_INFO, COMPONENT, "running", "config_entities", n, NULL);
	cw_service_notify("READY=1\nSTATUS=running");
	wait_for_shutdown(&state, watch);
	cw_service_notify("STOPPING=1\nSTATUS=stopping");
	exit_code = atomic_load(&state.gave_up) ? CW_EXIT_FAILURE : CW_EXIT_OK;
	cw_err_t stop_err = {0};
	if (cw_jobs_stop(jobs, CW_DAEMON_GRACE_MS, &stop_err) != 0) {
		/* A job still runs: its component must stay allocated until the process exits. */
		cw_log_kv(CW_LOG_ERROR, COMPONENT, "shutdown incomplete", "error", stop_err.message, NULL);
		return CW_EXIT_FAILURE;
	}
	cw_log_kv(CW_LOG_INFO, COMPONENT, "stopped", NULL);
out:
	cw_api_stop(api);
	cw_verify_service_free(state.verify);
	cw_jobs_free(jobs);
	/* Opened but never started (a failed start): not listed, closed here, before
	 * close_components frees the started ones this list also points to. */
	for (size_t i = nopened; i-- > 0;)
		if (!opened[i]->started)
			cw_daemon_component_close(opened[i]);
	free(opened);
	close_components(&state);
	cw_hub_close(state.refresh_hub.hub);
	cw_hub_close(state.retention_hub.hub);
	cw_hub_close(state.liveness_hub.hub);
	cw_hub_close(state.dead_letter_hub.hub);
	cw_dead_letter_gauge_free(state.dead_letter_gauge);
	cw_entity_registry_free(state.registry);
	cw_metrics_free(state.metrics);
	for (size_t i = 0; i < state.nreloaded; i++)
		cw_config_free(state.reloaded[i]);
	free(state.reloaded);
	pthread_mutex_destroy(&state.lock);
	return exit_code;
}

int cw_daemon_run(const cw_config_t *config, const char **entities, size_t nentities,
                  cw_err_t *err)
{
	signal_watch_t *watch = cw_xcalloc(1, sizeof *watch);   /* lives until exit */
	watch->shutdown = cw_cancel_new();
	if (watch_signals(watch, err) != 0)
		return CW_EXIT_FAILURE;
	cw_hub_t *hub = cw_runtime_connect_retrying(config, watch->shutdown);
	if (hub == NULL)
		return cw_cancel_is_set(watch->shutdown) ? CW_EXIT_OK : CW_EXIT_FAILURE;
	int applied = 0;
	if (cw_hub_migrate(hub, &applied, err) != 0) {
		cw_hub_close(hub);
		return CW_EXIT_FAILURE;
	}
	if (applied > 0) {
		char n[24];
		snprintf(n, sizeof n, "%d", applied);
		cw_log_kv(CW_LOG_INFO, "hub", "migrated", "applied", n, NULL);
	}
	int exit_code = serve(config, hub, watch, entities, nentities, err);
	cw_hub_close(hub);
	return exit_code;
}
