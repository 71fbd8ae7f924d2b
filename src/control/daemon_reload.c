/*
 * This file contains the configuration reload of `cachewarp run`
 * (daemon_internal.h): SIGHUP and config.watch load the file again, and the
 * reload plan (control/reload.h) says what to apply or why to refuse.
 */
#include "control/daemon.h"

#include "capture/source.h"
#include "control/daemon_internal.h"
#include "control/entity_manager.h"
#include "control/reload.h"
#include "control/service_notify.h"
#include "core/log.h"
#include "core/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define COMPONENT "config"

extern char **environ;

#define RELOADS_METRIC "cachewarp_config_reloads_total"
#define SUCCESS_METRIC "cachewarp_config_last_reload_success_timestamp_seconds"

static const char *const results[] = {"applied", "refused", "invalid"};

/* Counts a reload's outcome (one of results) and shows it in /v1/status. */
static void record(daemon_state_t *state, const char *result)
{
	char labels[32];
	snprintf(labels, sizeof labels, "result=\"%s\"", result);
	cw_metrics_counter_add(state->metrics, RELOADS_METRIC, labels, 1);
	int64_t now_us = cw_clock_wall_us(cw_clock_system());
	if (strcmp(result, "applied") == 0)
		cw_metrics_gauge_set(state->metrics, SUCCESS_METRIC, NULL, (double)now_us / 1e6);
	pthread_mutex_lock(&state->lock);
	state->last_reload = result;
	state->last_reload_at_us = now_us;
	pthread_mutex_unlock(&state->lock);
}

void cw_daemon_reload_init(daemon_state_t *state)
{
	cw_metrics_declare(state->metrics, RELOADS_METRIC, CW_METRIC_COUNTER,
	                   "Configuration reloads (SIGHUP, config.watch) by result: applied, refused "
	                   "(a key that needs a restart changed), invalid (the file has errors).");
	cw_metrics_declare(state->metrics, SUCCESS_METRIC, CW_METRIC_GAUGE,
	                   "When the configuration in force was loaded (start or the last applied "
	                   "reload), Unix seconds.");
	for (size_t i = 0; i < sizeof results / sizeof results[0]; i++) {
		char labels[32];
		snprintf(labels, sizeof labels, "result=\"%s\"", results[i]);
		cw_metrics_counter_add(state->metrics, RELOADS_METRIC, labels, 0);
	}
	state->loaded_at_us = cw_clock_wall_us(cw_clock_system());
	cw_metrics_gauge_set(state->metrics, SUCCESS_METRIC, NULL, (double)state->loaded_at_us / 1e6);
	snprintf(state->last_seen_sha256, sizeof state->last_seen_sha256, "%s", state->config->sha256);
	state->next_watch_ms = cw_clock_now_ms(cw_clock_system()) + state->config->watch.interval_ms;
}

void cw_daemon_api_config(void *arg, cw_api_config_info_t *out)
{
	daemon_state_t *state = arg;
	pthread_mutex_lock(&state->lock);
	*out = (cw_api_config_info_t){state->config, state->loaded_at_us, state->last_reload,
	                              state->last_reload_at_us};
	pthread_mutex_unlock(&state->lock);
}

/* Logs each line of the loader's errors (file:line:column: key: message); returns how many. */
static size_t log_errors(const char *errors)
{
	size_t n = 0;
	for (const char *line = errors; *line != '\0';) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		char *text = cw_xstrndup(line, len);
		cw_log_kv(CW_LOG_ERROR, COMPONENT, "configuration error", "error", text, NULL);
		free(text);
		n++;
		line += len + (end ? 1 : 0);
	}
	return n;
}

/* Logs why the plan cannot be applied without a restart, one line per key. */
static void refuse(daemon_state_t *state, const cw_reload_plan_t *plan)
{
	for (size_t i = 0; i < plan->nrefusals; i++)
		cw_log_kv(CW_LOG_ERROR, COMPONENT, plan->refusals[i], NULL);
	char summary[160];
	snprintf(summary, sizeof summary, "configuration reload refused: %zu change%s need%s a "
	         "restart; the running configuration is kept", plan->nrefusals,
	         plan->nrefusals == 1 ? "" : "s", plan->nrefusals == 1 ? "s" : "");
	cw_log_kv(CW_LOG_ERROR, COMPONENT, summary, NULL);
	record(state, "refused");
}

/*
 * Stores the file's entities in the hub (new ones are scanned, removed ones
 * paused: control/entity_pause.h), reconnecting once.
 */
static int sync_entities(daemon_state_t *state, const cw_config_t *next, cw_err_t *err)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		if (state->hub == NULL)
			state->hub = cw_hub_connect_auth(next->hub.url, next->hub.auth, err);
		if (state->hub == NULL)
			continue;
		int rc = cw_entity_manager_sync_config(state->hub, next, err);
		if (rc == 0)
			return cw_entity_registry_reload(state->registry, state->hub, NULL, err);
		if (rc == CW_ECONFLICT || rc == CW_EINVAL ||
		    PQstatus(cw_hub_pgconn(state->hub)) == CONNECTION_OK)
			return rc;
		cw_hub_close(state->hub);
		state->hub = NULL;
	}
	return err != NULL && err->code != 0 ? err->code : CW_EDB;
}

typedef struct swap {
	component_t *old;         /* listed now; stopped: removed or changed */
	component_t *next;        /* opened from the new file: added or changed */
} swap_t;

/*
 * Opens the added and changed components of one kind from next; fills swaps.
 * On failure closes what it opened and returns the error (nothing stopped).
 */
static int open_swaps(daemon_state_t *state, const cw_config_t *next, bool is_source,
                      const cw_reload_item_t *items, size_t n, swap_t *swaps, size_t *nswaps,
                      cw_err_t *err)
{
	for (size_t i = 0; i < n; i++) {
		if (items[i].change == CW_RELOAD_UNCHANGED)
			continue;
		swap_t s = {cw_daemon_component_find(state, is_source, items[i].name), NULL};
		/* A source whose entities are all in batch mode has only its poller: no stream. */
		bool wanted = items[i].change != CW_RELOAD_REMOVED &&
		              (!is_source || cw_source_needs_stream(next, items[i].name));
		if (wanted &&
		    (s.next = cw_daemon_component_open(state, next, is_source, items[i].name, err)) == NULL)
			return err->code != 0 ? err->code : CW_EINTERNAL;
		if (s.old != NULL || s.next != NULL)
			swaps[(*nswaps)++] = s;
		if (is_source) {
			/* Its batch poller goes with it: added, swapped or stopped. */
			swap_t poller = {cw_daemon_poller_find(state, items[i].name), NULL};
			bool polls = items[i].change != CW_RELOAD_REMOVED &&
			             cw_source_has_batch(next, items[i].name);
			if (polls && (poller.next = cw_daemon_poller_open(state, next, items[i].name,
			                                                  err)) == NULL)
				return err->code != 0 ? err->code : CW_EINTERNAL;
			if (poller.old != NULL || poller.next != NULL)
				swaps[(*nswaps)++] = poller;
		}
	}
	return 0;
}

/* Logs what a reload did, one line. */
static void log_applied(const cw_reload_plan_t *plan, const char *why)
{
	cw_buf_t added = CW_BUF_INIT, removed = CW_BUF_INIT, restarted = CW_BUF_INIT,
	         unchanged = CW_BUF_INIT, live = CW_BUF_INIT;
	cw_reload_list(plan->sources, plan->nsources, "source", CW_RELOAD_ADDED, &added);
	cw_reload_list(plan->targets, plan->ntargets, "target", CW_RELOAD_ADDED, &added);
	cw_reload_list(plan->entities, plan->nentities, "entity", CW_RELOAD_ADDED, &added);
	cw_reload_list(plan->sources, plan->nsources, "source", CW_RELOAD_REMOVED, &removed);
	cw_reload_list(plan->targets, plan->ntargets, "target", CW_RELOAD_REMOVED, &removed);
	cw_reload_list(plan->entities, plan->nentities, "entity", CW_RELOAD_REMOVED, &removed);
	cw_reload_list(plan->sources, plan->nsources, "source", CW_RELOAD_CHANGED, &restarted);
	cw_reload_list(plan->targets, plan->ntargets, "target", CW_RELOAD_CHANGED, &restarted);
	cw_reload_list(plan->sources, plan->nsources, "source", CW_RELOAD_UNCHANGED, &unchanged);
	cw_reload_list(plan->targets, plan->ntargets, "target", CW_RELOAD_UNCHANGED, &unchanged);
	for (size_t i = 0; i < plan->nlive_keys; i++)
		cw_buf_appendf(&live, "%s%s", i ? " " : "", plan->live_keys[i]);
	cw_log_kv(CW_LOG_INFO, COMPONENT, "configuration reloaded", "reason", why,
	          "added", cw_buf_cstr(&added), "removed", cw_buf_cstr(&removed), "restarted",
	          cw_buf_cstr(&restarted), "unchanged", cw_buf_cstr(&unchanged), "live_keys",
	          cw_buf_cstr(&live), NULL);
	cw_buf_free(&added);
	cw_buf_free(&removed);
	cw_buf_free(&restarted);
	cw_buf_free(&unchanged);
	cw_buf_free(&live);
}

/*
 * Applies a plan without refusals: entities first (so a restarted source
 * sees them), then every removed or changed component stopped, then the
 * added and changed ones started from next. Returns 0, or an error (logged
 * by the caller) when nothing was stopped yet.
 */
static int apply(daemon_state_t *state, const cw_config_t *next, const cw_reload_plan_t *plan,
                 cw_err_t *err)
{
	/* Removed entities are paused there, and paused ones the file lists again resumed. */
	int rc = sync_entities(state, next, err);
	if (rc != 0)
		return rc;
	swap_t *swaps = cw_xcalloc(2 * plan->nsources + plan->ntargets + 1, sizeof *swaps);
	size_t nswaps = 0;
	rc = open_swaps(state, next, true, plan->sources, plan->nsources, swaps, &nswaps, err);
	if (rc == 0)
		rc = open_swaps(state, next, false, plan->targets, plan->ntargets, swaps, &nswaps, err);
	if (rc != 0) {
		for (size_t i = 0; i < nswaps; i++)
			cw_daemon_component_close(swaps[i].next);
		free(swaps);
		return rc;
	}
	/* Sources stop before targets, as on shutdown. */
	for (size_t i = 0; i < nswaps; i++)
		if (swaps[i].old != NULL)
			cw_daemon_component_stop(state, swaps[i].old);
	pthread_mutex_lock(&state->lock);
	state->config = next;
	state->loaded_at_us = cw_clock_wall_us(cw_clock_system());
	pthread_mutex_unlock(&state->lock);
	cw_verify_service_set_config(state->verify, next);
	for (size_t i = 0; i < nswaps; i++) {
		if (swaps[i].next == NULL)
			continue;
		cw_err_t start_err = {0};
		if (cw_daemon_component_start(state, swaps[i].next, &start_err) != 0) {
			cw_log_kv(CW_LOG_ERROR, COMPONENT, "could not start a component", "job",
			          swaps[i].next->job_name, "error", start_err.message, NULL);
			cw_daemon_component_close(swaps[i].next);
		}
	}
	free(swaps);
	return 0;
}

/* Tells a service manager (systemctl reload) that a reload runs; READY=1 ends it. */
static void notify_reloading(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	char message[96];
	snprintf(message, sizeof message, "RELOADING=1\nSTATUS=reloading the configuration\n"
	         "MONOTONIC_USEC=%lld", (long long)now.tv_sec * 1000000 + now.tv_nsec / 1000);
	cw_service_notify(message);
}

/* Loads, plans and applies or refuses; logs and counts the outcome. */
static void reload(daemon_state_t *state, const char *why)
{
	const cw_config_t *running = state->config;   /* only this thread changes it */
	cw_log_kv(CW_LOG_INFO, COMPONENT, "reloading the configuration", "file", running->path,
	          "reason", why, NULL);
	notify_reloading();
	cw_buf_t errors = CW_BUF_INIT;
	cw_config_load_opts_t opts = {environ, &errors};
	cw_config_t *next = NULL;
	cw_err_t err = {0};
	if (cw_config_load(running->path, &opts, &next, &err) != 0) {
		size_t n = log_errors(cw_buf_cstr(&errors));
		char summary[160];
		snprintf(summary, sizeof summary, "configuration reload refused: %zu error%s; the running "
		         "configuration is kept", n, n == 1 ? "" : "s");
		cw_log_kv(CW_LOG_ERROR, COMPONENT, summary, "file", running->path, NULL);
		cw_buf_free(&errors);
		/* config.watch waits for the next edit rather than reading these errors again. */
		cw_config_file_sha256(running->path, state->last_seen_sha256, NULL);
		record(state, "invalid");
		return;
	}
	cw_buf_free(&errors);
	snprintf(state->last_seen_sha256, sizeof state->last_seen_sha256, "%s", next->sha256);
	cw_reload_plan_t *plan = cw_reload_plan_new(running, next);
	if (plan->nrefusals > 0) {
		refuse(state, plan);
		cw_reload_plan_free(plan);
		cw_config_free(next);
		return;
	}
	int rc = apply(state, next, plan, &err);
	if (rc != 0) {
		cw_log_kv(CW_LOG_ERROR, COMPONENT, "configuration reload refused: the running "
		          "configuration is kept", "error", err.message, NULL);
		record(state, "refused");
		cw_reload_plan_free(plan);
		cw_config_free(next);
		return;
	}
	/* Kept until exit: the components just started borrow it (daemon_internal.h). */
	state->reloaded = cw_xrealloc(state->reloaded, (state->nreloaded + 1) *
	                              sizeof *state->reloaded);
	state->reloaded[state->nreloaded++] = next;
	if (next->log.level != running->log.level)
		cw_log_set_level(next->log.level);
	log_applied(plan, why);
	record(state, "applied");
	cw_reload_plan_free(plan);
}

void cw_daemon_reload(daemon_state_t *state, const char *why)
{
	reload(state, why);
	cw_service_notify("READY=1\nSTATUS=running");
}

void cw_daemon_watch_poll(daemon_state_t *state)
{
	const cw_config_t *config = state->config;
	if (!config->watch.enabled)
		return;
	int64_t now_ms = cw_clock_now_ms(cw_clock_system());
	if (now_ms < state->next_watch_ms)
		return;
	state->next_watch_ms = now_ms + config->watch.interval_ms;
	char sha256[65];
	cw_err_t err = {0};
	if (cw_config_file_sha256(config->path, sha256, &err) != 0) {
		/* An editor that renames a new file over this one leaves a moment with no file:
		 * read again next time; say so once the file stays unreadable. */
		if (!state->watch_failing && state->watch_failures++ >= 2) {
			state->watch_failing = true;
			cw_log_kv(CW_LOG_WARN, COMPONENT, "config.watch cannot read the file; the running "
			          "configuration is kept", "error", err.message, NULL);
		}
		return;
	}
	state->watch_failures = 0;
	state->watch_failing = false;
	if (strcmp(sha256, state->last_seen_sha256) == 0)
		return;
	snprintf(state->last_seen_sha256, sizeof state->last_seen_sha256, "%s", sha256);
	cw_daemon_reload(state, "file changed");
}
