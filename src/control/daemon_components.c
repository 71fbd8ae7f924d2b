/* This file contains the daemon's sources and targets as jobs (daemon_internal.h). */
#include "control/daemon.h"

#include "apply/target.h"
#include "capture/source.h"
#include "control/daemon_internal.h"
#include "core/log.h"
#include "core/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMPONENT "daemon"

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
		return cw_daemon_check_hub_refused(c->daemon, rc, err);
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
	return cw_daemon_check_hub_refused(c->daemon, c->ops->run(c->self, cancel, err), err);
}

static component_t *open_component(daemon_state_t *state, const cw_config_t *config,
                                   bool is_source, bool poller, const char *name, cw_err_t *err)
{
	const cw_component_ops_t *ops;
	const char *type;
	if (is_source) {
		const cw_source_config_t *source = cw_config_source(config, name);
		ops = poller ? cw_source_batch_ops_for(source->type) : cw_source_ops_for(source->type);
		type = cw_source_type_name(source->type);
	} else {
		const cw_target_config_t *target = cw_config_target(config, name);
		ops = cw_target_ops_for(target->type);
		type = cw_target_type_name(target->type);
	}
	if (ops == NULL) {
		cw_err_set(err, CW_EINVAL, COMPONENT, "%s \"%s\": type %s is not supported by this build",
		           is_source ? "source" : "target", name, type);
		return NULL;
	}
	component_t *c = cw_xcalloc(1, sizeof *c);
	c->ops = ops;
	c->daemon = state;
	c->is_source = is_source;
	c->poller = poller;
	snprintf(c->job_name, sizeof c->job_name, "%s:%s",
	         poller ? "poll" : is_source ? "capture" : "apply", name);
	/* A target run for some entities holds a lease of its own (docs/operations.md). */
	char *scope = is_source ? cw_xstrdup("") : cw_component_scope(state->entities,
	                                                               state->nentities);
	snprintf(c->dependency, sizeof c->dependency, "%s:%s%s%.150s",
	         poller ? "poller" : is_source ? "source" : "target", name, scope[0] ? "@" : "",
	         scope);
	free(scope);
	/* Every component reads the hub's entities from the registry; a source that
	 * changes an entity itself invalidates it (hub/entity_registry.h). */
	const char *borrowed_name = is_source ? cw_config_source(config, name)->name
	                                      : cw_config_target(config, name)->name;
	c->ctx = (cw_component_ctx_t){config, borrowed_name, state->entities, state->nentities,
	                              state->metrics, state->registry};
	c->self = ops->open(&c->ctx, err);
	if (c->self == NULL) {
		if (err != NULL && err->code == 0)
			cw_err_set(err, CW_EINTERNAL, COMPONENT, "could not open %s \"%s\"",
			           is_source ? "source" : "target", name);
		free(c);
		return NULL;
	}
	c->lease = cw_lease_new(config->hub.url, config->hub.auth, c->dependency);
	return c;
}

component_t *cw_daemon_component_open(daemon_state_t *state, const cw_config_t *config,
                                      bool is_source, const char *name, cw_err_t *err)
{
	return open_component(state, config, is_source, false, name, err);
}

component_t *cw_daemon_poller_open(daemon_state_t *state, const cw_config_t *config,
                                   const char *name, cw_err_t *err)
{
	return open_component(state, config, true, true, name, err);
}

int cw_daemon_component_start(daemon_state_t *state, component_t *c, cw_err_t *err)
{
	/* Sources stop first, then targets, so everything captured can still be applied. */
	cw_job_spec_t spec = {c->job_name, c->dependency, 1000, component_job, c,
	                      c->is_source ? 0 : 1};
	int rc = cw_jobs_add(state->jobs, &spec, err);
	if (rc != 0)
		return rc;
	c->started = true;
	/* A target type may reconnect on a schedule of its own (apply/target.h). */
	const cw_target_config_t *target = c->is_source ? NULL :
	                                   cw_config_target(c->ctx.config, c->ctx.name);
	const cw_target_backend_t *backend = target ? cw_target_backend_for(target->type) : NULL;
	if (backend != NULL && backend->nreconnect > 0)
		cw_jobs_set_retry_schedule(state->jobs, c->job_name, backend->reconnect_ms,
		                           backend->nreconnect, NULL);
	pthread_mutex_lock(&state->lock);
	state->components = cw_xrealloc(state->components,
	                                (state->ncomponents + 1) * sizeof *state->components);
	state->components[state->ncomponents++] = c;
	pthread_mutex_unlock(&state->lock);
	return 0;
}

void cw_daemon_component_close(component_t *c)
{
	if (c == NULL)
		return;
	c->ops->close(c->self);
	cw_lease_free(c->lease);
	free(c);
}

void cw_daemon_component_stop(daemon_state_t *state, component_t *c)
{
	pthread_mutex_lock(&state->lock);
	for (size_t i = 0; i < state->ncomponents; i++) {
		if (state->components[i] == c) {
			memmove(&state->components[i], &state->components[i + 1],
			        (state->ncomponents - i - 1) * sizeof *state->components);
			state->ncomponents--;
			break;
		}
	}
	pthread_mutex_unlock(&state->lock);
	cw_err_t err = {0};
	if (c->started && cw_jobs_remove(state->jobs, c->job_name, CW_DAEMON_GRACE_MS, &err) != 0 &&
	    err.code != CW_ENOTFOUND) {
		/* Its thread may still use it: leave it allocated until the process exits. */
		cw_log_kv(CW_LOG_ERROR, COMPONENT, "could not stop a component; it stays allocated",
		          "job", c->job_name, "error", err.message, NULL);
		return;
	}
	cw_daemon_component_close(c);
}

static component_t *find(daemon_state_t *state, bool is_source, bool poller, const char *name)
{
	component_t *found = NULL;
	pthread_mutex_lock(&state->lock);
	for (size_t i = 0; i < state->ncomponents && found == NULL; i++)
		if (state->components[i]->is_source == is_source &&
		    state->components[i]->poller == poller &&
		    strcmp(state->components[i]->ctx.name, name) == 0)
			found = state->components[i];
	pthread_mutex_unlock(&state->lock);
	return found;
}

component_t *cw_daemon_component_find(daemon_state_t *state, bool is_source, const char *name)
{
	return find(state, is_source, false, name);
}

component_t *cw_daemon_poller_find(daemon_state_t *state, const char *name)
{
	return find(state, true, true, name);
}

size_t cw_daemon_api_components(void *arg, cw_api_component_t *out, size_t cap)
{
	daemon_state_t *state = arg;
	pthread_mutex_lock(&state->lock);
	for (size_t i = 0; i < state->ncomponents && i < cap; i++) {
		component_t *c = state->components[i];
		memset(&out[i], 0, sizeof out[i]);
		snprintf(out[i].name, sizeof out[i].name, "%s", c->ctx.name);
		snprintf(out[i].kind, sizeof out[i].kind, "%s", c->is_source ? "source" : "target");
		c->ops->status(c->self, &out[i].status);
		if (c->standby) {
			snprintf(out[i].status.state, sizeof out[i].status.state, "standby");
			out[i].status.healthy = true;
		}
	}
	size_t n = state->ncomponents;
	pthread_mutex_unlock(&state->lock);
	return n;
}
