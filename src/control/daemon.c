/* This file contains `cachewarp run` (daemon.h). */
#include "control/daemon.h"

#include "apply/target.h"
#include "capture/source.h"
#include "control/api.h"
#include "control/dead_letter_gauge.h"
#include "control/cli.h"
#include "control/entity_manager.h"
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

/* A job's own hub connection, opened on first use and again after an error. */
typedef struct job_hub {
	const cw_config_t *config;
	cw_hub_t *hub;
} job_hub_t;

struct daemon_state;

/* A source or target running as a job. */
typedef struct component {
	struct daemon_state *daemon;    /* borrowed: the daemon it runs in */
	char job_name[80];          /* "capture:shop", "apply:local" */
	char dependency[200];       /* "source:shop", "target:local", "target:local@orders" */
	cw_component_ctx_t ctx;
	const cw_component_ops_t *ops;
	void *self;
	bool is_source;
	cw_lease_t *lease;          /* one process at a time runs this component */
	bool standby;               /* the lease is held elsewhere; logged once */
} component_t;

typedef struct daemon_state {
	const cw_config_t *config;
	cw_metrics_t *metrics;
	component_t *components;
	size_t ncomponents;
	cw_entity_registry_t *registry;
	job_hub_t refresh_hub;
	job_hub_t retention_hub;
	job_hub_t liveness_hub;
	cw_jobs_t *jobs;            /* for the give-up watch */
	cw_cancel_t *shutdown;      /* fired by a signal, or when every component gave up */
	/* Every source and target failed past retry.give_up_after, or the hub refused the
	 * credentials: exit 1. Set from job threads. */
	atomic_bool gave_up;
	cw_verify_service_t *verify; /* runs the API starts, and the scheduled health check */
	cw_dead_letter_gauge_t *dead_letter_gauge;
	job_hub_t dead_letter_hub;
} daemon_state_t;

/*
 * After a failed job: when the hub refused the credentials, retrying cannot
 * help, so the daemon stops with exit status 1 at once (logged once).
 * Returns the job's result, rc.
 */
static int check_hub_refused(daemon_state_t *state, int rc, const cw_err_t *err)
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
		return check_hub_refused(state, err != NULL ? err->code : CW_EDB, err);
	return job_hub_result(&state->refresh_hub,
	                      cw_entity_registry_reload(state->registry, hub, NULL, err));
}

static int retention_job(void *arg, cw_cancel_t *cancel, cw_err_t *err)
{
	daemon_state_t *state = arg;
	if (state->config->hub.retention_ms <= 0)
		return 0;
	cw_hub_t *hub = job_hub_get(&state->retention_hub, err);
	if (hub == NULL)
		return check_hub_refused(state, err != NULL ? err->code : CW_EDB, err);
	int64_t deleted = 0;
	int rc = cw_oplog_retention_run(hub, state->config->hub.retention_ms / 1000,
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
		return check_hub_refused(state, err != NULL ? err->code : CW_EDB, err);
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
		return check_hub_refused(state, err != NULL ? err->code : CW_EDB, err);
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
	int64_t limit = state->config->retry.give_up_after_ms;
	if (limit <= 0 || state->ncomponents == 0 || state->jobs == NULL)
		return 0;
	cw_job_status_t *status = cw_xcalloc(state->ncomponents + 8, sizeof *status);
	size_t n = cw_jobs_snapshot(state->jobs, status, state->ncomponents + 8);
	int64_t now = cw_clock_now_ms(cw_clock_system());
	size_t failing = 0;
	const char *last_error = "";
	for (size_t i = 0; i < state->ncomponents; i++) {
		const component_t *c = &state->components[i];
		for (size_t j = 0; j < n && j < state->ncomponents + 8; j++) {
			if (strcmp(status[j].name, c->job_name) != 0)
				continue;
			if (!c->standby && status[j].consecutive_failures > 0 &&
			    now - status[j].failing_since_ms >= limit) {
				failing++;
				last_error = status[j].last_error;
			}
		}
	}
	if (failing == state->ncomponents && !atomic_load(&state->gave_up)) {
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
} signal_watch_t;

static void *signal_main(void *arg)
{
	signal_watch_t *watch = arg;
	bool stopping = false;
	for (;;) {
		int sig = 0;
		if (sigwait(&watch->set, &sig) != 0)
			continue;
		if (!stopping) {
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

/* Blocks SIGINT and SIGTERM in every thread and starts the thread that waits for them. */
static int watch_signals(signal_watch_t *watch, cw_err_t *err)
{
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&watch->set);
	sigaddset(&watch->set, SIGINT);
	sigaddset(&watch->set, SIGTERM);
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

/*
 * Runs a component once its lease is held. Without the lease it returns at
 * once and the job server asks again after the job's interval: this process
 * is the standby and takes over when the holder dies.
 */
static int component_job(void *arg, cw_cancel_t *cancel, cw_err_t *err)
{
	component_t *c = arg;
	bool held = false;
	int rc = cw_lease_acquire(c->lease, &held, err);
	if (rc != 0)
		return check_hub_refused(c->daemon, rc, err);
	if (!held) {
		if (!c->standby)
			cw_log_kv(CW_LOG_INFO, COMPONENT, "standby: another cachewarp process runs this",
			          "job", c->job_name, NULL);
		c->standby = true;
		return 0;
	}
	if (c->standby)
		cw_log_kv(CW_LOG_INFO, COMPONENT, "lease taken over", "job", c->job_name, NULL);
	c->standby = false;
	return check_hub_refused(c->daemon, c->ops->run(c->self, cancel, err), err);
}

/* Opens every configured source and target; CW_E* with err filled when one cannot be. */
static int open_components(daemon_state_t *state, const char **entities, size_t nentities,
                           cw_err_t *err)
{
	const cw_config_t *config = state->config;
	state->components = cw_xcalloc(config->nsources + config->ntargets + 1,
	                               sizeof *state->components);
	for (size_t i = 0; i < config->nsources + config->ntargets; i++) {
		component_t *c = &state->components[state->ncomponents];
		bool is_source = i < config->nsources;
		const cw_component_ops_t *ops;
		const char *name;
		const char *type;
		if (is_source) {
			const cw_source_config_t *source = &config->sources[i];
			ops = cw_source_ops_for(source->type);
			name = source->name;
			type = cw_source_type_name(source->type);
		} else {
			const cw_target_config_t *target = &config->targets[i - config->nsources];
			ops = cw_target_ops_for(target->type);
			name = target->name;
			type = cw_target_type_name(target->type);
		}
		if (ops == NULL)
			return cw_err_set(err, CW_EINVAL, COMPONENT,
			                  "%s \"%s\": type %s is not supported by this build",
			                  is_source ? "source" : "target", name, type);
		c->ops = ops;
		c->daemon = state;
		snprintf(c->job_name, sizeof c->job_name, "%s:%s", is_source ? "capture" : "apply", name);
		/* A target run for some entities holds a lease of its own (docs/operations.md). */
		char *scope = is_source ? cw_xstrdup("") : cw_component_scope(entities, nentities);
		snprintf(c->dependency, sizeof c->dependency, "%s:%s%s%.150s",
		         is_source ? "source" : "target", name, scope[0] ? "@" : "", scope);
		free(scope);
		/* Every component reads the hub's entities from the registry; a source that
		 * changes an entity itself invalidates it (hub/entity_registry.h). */
		c->ctx = (cw_component_ctx_t){config, name, entities, nentities, state->metrics,
		                              state->registry};
		c->self = ops->open(&c->ctx, err);
		if (c->self == NULL)
			return err != NULL && err->code != 0 ? err->code : CW_EINTERNAL;
		c->is_source = is_source;
		c->lease = cw_lease_new(config->hub.url, config->hub.auth, c->dependency);
		state->ncomponents++;
	}
	return 0;
}

static void close_components(daemon_state_t *state)
{
	for (size_t i = state->ncomponents; i-- > 0;) {
		state->components[i].ops->close(state->components[i].self);
		cw_lease_free(state->components[i].lease);
	}
	free(state->components);
	state->components = NULL;
	state->ncomponents = 0;
}

static int add_jobs(cw_jobs_t *jobs, daemon_state_t *state, cw_err_t *err)
{
	for (size_t i = 0; i < state->ncomponents; i++) {
		component_t *c = &state->components[i];
		/* Sources stop first, then targets, so everything captured can still be applied. */
		cw_job_spec_t spec = {c->job_name, c->dependency, 1000, component_job, c,
		                      c->is_source ? 0 : 1};
		int rc = cw_jobs_add(jobs, &spec, err);
		if (rc != 0)
			return rc;
		/* A target type may reconnect on a schedule of its own (apply/target.h). */
		const cw_target_config_t *target = c->is_source ? NULL :
		                                   cw_config_target(state->config, c->ctx.name);
		const cw_target_backend_t *backend = target ? cw_target_backend_for(target->type) : NULL;
		if (backend != NULL && backend->nreconnect > 0 &&
		    (rc = cw_jobs_set_retry_schedule(jobs, c->job_name, backend->reconnect_ms,
		                                     backend->nreconnect, err)) != 0)
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

/* The API's view of the sources and targets (called from its connection threads). */
static size_t api_components(void *arg, cw_api_component_t *out, size_t cap)
{
	daemon_state_t *state = arg;
	for (size_t i = 0; i < state->ncomponents && i < cap; i++) {
		component_t *c = &state->components[i];
		memset(&out[i], 0, sizeof out[i]);
		snprintf(out[i].name, sizeof out[i].name, "%s", c->ctx.name);
		snprintf(out[i].kind, sizeof out[i].kind, "%s", c->is_source ? "source" : "target");
		c->ops->status(c->self, &out[i].status);
		if (c->standby) {
			snprintf(out[i].status.state, sizeof out[i].status.state, "standby");
			out[i].status.healthy = true;
		}
	}
	return state->ncomponents;
}

static cw_api_t *start_api(daemon_state_t *state, cw_jobs_t *jobs, cw_err_t *err)
{
	cw_api_deps_t deps = {state->config, state->metrics, jobs, api_components, state,
	                      state->verify};
	cw_api_t *api = cw_api_start(&deps, err);
	if (api != NULL) {
		char port[8];
		snprintf(port, sizeof port, "%u", (unsigned)cw_api_port(api));
		cw_log_kv(CW_LOG_INFO, "api", "listening", "listen", state->config->api.listen, "port",
		          port, NULL);
	}
	return api;
}

/* Everything after the hub is reached and migrated; returns an exit code (err: why it failed). */
static int serve(const cw_config_t *config, cw_hub_t *hub, cw_cancel_t *shutdown,
                 const char **entities, size_t nentities, cw_err_t *err)
{
	if (cw_entity_manager_sync_config(hub, config, err) != 0)
		return err->code == CW_ECONFLICT || err->code == CW_EINVAL ? CW_EXIT_USAGE : CW_EXIT_FAILURE;
	daemon_state_t state = {config, cw_metrics_new(), NULL, 0, cw_entity_registry_new(),
	                        {config, NULL}, {config, NULL}, {config, NULL}, NULL, shutdown,
	                        false, NULL, NULL, {config, NULL}};
	state.verify = cw_verify_service_new(config, state.metrics);
	state.dead_letter_gauge = cw_dead_letter_gauge_new(state.metrics);
	int exit_code = CW_EXIT_FAILURE;
	cw_jobs_t *jobs = NULL;
	cw_api_t *api = NULL;
	if (cw_entity_registry_reload(state.registry, hub, NULL, err) != 0)
		goto out;
	if (check_entity_filter(state.registry, entities, nentities, err) != 0 ||
	    open_components(&state, entities, nentities, err) != 0) {
		exit_code = err->code == CW_EINVAL ? CW_EXIT_USAGE : CW_EXIT_FAILURE;
		goto out;
	}
	cw_jobs_opts_t opts = {NULL, config->retry, 0, 0, 0};
	jobs = cw_jobs_new(&opts);
	state.jobs = jobs;
	if (add_jobs(jobs, &state, err) != 0 || cw_jobs_start(jobs, err) != 0 ||
	    (api = start_api(&state, jobs, err)) == NULL) {
		cw_jobs_stop(jobs, CW_DAEMON_GRACE_MS, NULL);
		goto out;
	}
	char n[24];
	snprintf(n, sizeof n, "%zu", config->nentities);
	cw_log_kv(CW_LOG_INFO, COMPONENT, "running", "config_entities", n, NULL);
	cw_service_notify("READY=1\nSTATUS=running");
	cw_cancel_wait_ms(shutdown, -1);
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
	close_components(&state);
	cw_hub_close(state.refresh_hub.hub);
	cw_hub_close(state.retention_hub.hub);
	cw_hub_close(state.liveness_hub.hub);
	cw_hub_close(state.dead_letter_hub.hub);
	cw_dead_letter_gauge_free(state.dead_letter_gauge);
	cw_entity_registry_free(state.registry);
	cw_metrics_free(state.metrics);
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
	int exit_code = serve(config, hub, watch->shutdown, entities, nentities, err);
	cw_hub_close(hub);
	return exit_code;
}
