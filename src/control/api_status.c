/*
 * This file contains the REST API's operational routes (api_internal.h):
 * /healthz (the process answers), /readyz (the hub answers and every
 * component is healthy), /v1/status (each component with its job),
 * /metrics (the registry plus gauges read at scrape time: process RSS, hub
 * reachability, consumer lag, component health) and /openapi.yaml.
 */
#include "control/api_internal.h"

#include "core/clock.h"
#include "core/json.h"
#include "core/mem.h"
#include "core/secret.h"
#include "hub/consumers.h"
#include "hub/dead_letters.h"
#include "hub/entity_store.h"
#include "hub/oplog_reader.h"
#include "verify/verify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The components the daemon reports; *count receives how many. Owned by the caller. */
static cw_api_component_t *list_components(cw_api_t *api, size_t *count)
{
	*count = 0;
	if (api->deps.components == NULL)
		return NULL;
	size_t cap = 16;
	cw_api_component_t *items = cw_xcalloc(cap, sizeof *items);
	size_t n = api->deps.components(api->deps.components_arg, items, cap);
	if (n > cap) {
		cap = n;
		items = cw_xrealloc(items, cap * sizeof *items);
		memset(items, 0, cap * sizeof *items);
		n = api->deps.components(api->deps.components_arg, items, cap);
		if (n > cap)
			n = cap;
	}
	*count = n;
	return items;
}

/* Whether the hub answers a query; err says why not. *last_id (optional) its head. */
static bool hub_reachable(cw_api_t *api, int64_t *last_id, cw_err_t *err)
{
	cw_hub_t *hub = cw_api_hub_acquire(api, err);
	if (hub == NULL)
		return false;
	int64_t head = 0;
	int rc = cw_oplog_last_id(hub, &head, err);
	cw_api_hub_release(api, hub);
	if (last_id != NULL)
		*last_id = head;
	return rc == 0;
}

void cw_api_healthz(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res)
{
	cw_buf_append_str(&res->body, "{\"status\":\"ok\"}");
}

void cw_api_readyz(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res)
{
	cw_err_t err = {0};
	bool hub_ok = hub_reachable(api, NULL, &err);
	size_t count = 0;
	cw_api_component_t *components = list_components(api, &count);
	cw_buf_t why = CW_BUF_INIT;
	if (!hub_ok)
		cw_buf_appendf(&why, "hub unreachable: %s", err.message);
	for (size_t i = 0; i < count; i++) {
		const cw_component_status_t *st = &components[i].status;
		for (size_t j = 0; strcmp(components[i].kind, "target") == 0 && j < st->nfailed &&
		                   j < CW_COMPONENT_FAILED_MAX; j++)
			cw_buf_appendf(&why, "%sstream %s of target %s failed: %s", why.len ? "; " : "",
			               st->failed[j].entity, components[i].name, st->failed[j].reason);
		if (components[i].status.healthy)
			continue;
		cw_buf_appendf(&why, "%s%s %s is %s%s%s", why.len ? "; " : "", components[i].kind,
		               components[i].name, components[i].status.state,
		               components[i].status.last_error[0] ? ": " : "",
		               components[i].status.last_error);
	}
	char *masked = cw_secret_mask(cw_buf_cstr(&why));
	cw_json_t w;
	cw_json_init(&w, &res->body, 0);
	cw_json_object_begin(&w, NULL);
	if (why.len > 0) {
		res->status = 503;
		cw_json_key(&w, "error", NULL);
		cw_json_object_begin(&w, NULL);
		cw_json_key(&w, "code", NULL);
		cw_json_string(&w, "unavailable", NULL);
		cw_json_key(&w, "message", NULL);
		cw_json_string(&w, masked, NULL);
		cw_json_object_end(&w, NULL);
	}
	cw_json_key(&w, "ready", NULL);
	cw_json_bool(&w, why.len == 0, NULL);
	cw_json_key(&w, "hub_reachable", NULL);
	cw_json_bool(&w, hub_ok, NULL);
	cw_json_key(&w, "unhealthy", NULL);
	cw_json_array_begin(&w, NULL);
	for (size_t i = 0; i < count; i++)
		if (!components[i].status.healthy)
			cw_json_string(&w, components[i].name, NULL);
	cw_json_array_end(&w, NULL);
	cw_json_object_end(&w, NULL);
	if (cw_json_finish(&w) != 0)
		cw_api_error(res, 503, NULL, "%s", "not ready");
	free(masked);
	cw_buf_free(&why);
	free(components);
}

/* A lag that may be n/a (negative): null then. */
static void lag_value(cw_json_t *w, const char *key, double value, bool integer)
{
	cw_json_key(w, key, NULL);
	if (value < 0)
		cw_json_null(w, NULL);
	else if (integer)
		cw_json_int64(w, (int64_t)value, NULL);
	else
		cw_json_double(w, value, NULL);
}

static void masked_string(cw_json_t *w, const char *key, const char *text)
{
	char *masked = cw_secret_mask(text);
	cw_json_key(w, key, NULL);
	if (masked[0] == '\0')
		cw_json_null(w, NULL);
	else if (cw_json_string(w, masked, NULL) != 0)
		cw_json_string(w, "(message is not valid UTF-8)", NULL);
	free(masked);
}

static void write_time_or_null(cw_json_t *w, const char *key, int64_t wall_us)
{
	cw_json_key(w, key, NULL);
	if (wall_us > 0) {
		char when[CW_TIME_RFC3339_LEN];
		cw_time_format_rfc3339_ms(wall_us, when);
		cw_json_string(w, when, NULL);
	} else {
		cw_json_null(w, NULL);
	}
}

static void write_job(cw_json_t *w, const cw_job_status_t *job)
{
	cw_json_object_begin(w, NULL);
	cw_json_key(w, "name", NULL);
	cw_json_string(w, job->name, NULL);
	cw_json_key(w, "dependency", NULL);
	if (job->dependency[0])
		cw_json_string(w, job->dependency, NULL);
	else
		cw_json_null(w, NULL);
	cw_json_key(w, "breaker", NULL);
	cw_json_string(w, job->breaker, NULL);
	cw_json_key(w, "runs", NULL);
	cw_json_int64(w, job->runs, NULL);
	cw_json_key(w, "failures", NULL);
	cw_json_int64(w, job->failures, NULL);
	cw_json_key(w, "consecutive_failures", NULL);
	cw_json_int64(w, job->consecutive_failures, NULL);
	write_time_or_null(w, "last_success", job->last_success_us);
	masked_string(w, "last_error", job->last_error);
	cw_json_object_end(w, NULL);
}

static void write_component(cw_json_t *w, const cw_api_component_t *c,
                            const cw_job_status_t *jobs, size_t njobs)
{
	const cw_component_status_t *s = &c->status;
	cw_json_object_begin(w, NULL);
	cw_json_key(w, "name", NULL);
	cw_json_string(w, c->name, NULL);
	cw_json_key(w, "kind", NULL);
	cw_json_string(w, c->kind, NULL);
	cw_json_key(w, "state", NULL);
	cw_json_string(w, s->state, NULL);
	cw_json_key(w, "healthy", NULL);
	cw_json_bool(w, s->healthy, NULL);
	lag_value(w, "lag_bytes", (double)s->lag_bytes, true);
	lag_value(w, "lag_seconds", s->lag_seconds, false);
	lag_value(w, "lag_ids", (double)s->lag_ids, true);
	masked_string(w, "position", s->position);
	masked_string(w, "last_error", s->last_error);
	/* Its job: "capture:<name>" for a source, "apply:<name>" for a target. */
	char job_name[96];
	snprintf(job_name, sizeof job_name, "%s:%s",
	         strcmp(c->kind, "source") == 0 ? "capture" : "apply", c->name);
	cw_json_key(w, "job", NULL);
	const cw_job_status_t *job = NULL;
	for (size_t i = 0; i < njobs && job == NULL; i++)
		if (strcmp(jobs[i].name, job_name) == 0)
			job = &jobs[i];
	if (job != NULL)
		write_job(w, job);
	else
		cw_json_null(w, NULL);
	cw_json_object_end(w, NULL);
}

/*
 * failed_entities: each entity a source cannot capture, with the source and
 * the reason; failed_entities_total counts them all (a source lists at most
 * CW_COMPONENT_FAILED_MAX).
 */
static void write_failed_entities(cw_json_t *w, const cw_api_component_t *components,
                                  size_t count)
{
	int64_t total = 0;
	cw_json_key(w, "failed_entities", NULL);
	cw_json_array_begin(w, NULL);
	for (size_t i = 0; i < count; i++) {
		const cw_component_status_t *s = &components[i].status;
		if (strcmp(components[i].kind, "source") != 0)
			continue;   /* a target's are its failed streams */
		total += (int64_t)s->nfailed;
		for (size_t j = 0; j < s->nfailed && j < CW_COMPONENT_FAILED_MAX; j++) {
			cw_json_object_begin(w, NULL);
			cw_json_key(w, "entity", NULL);
			cw_json_string(w, s->failed[j].entity, NULL);
			cw_json_key(w, "source", NULL);
			cw_json_string(w, components[i].name, NULL);
			masked_string(w, "reason", s->failed[j].reason);
			cw_json_object_end(w, NULL);
		}
	}
	cw_json_array_end(w, NULL);
	cw_json_key(w, "failed_entities_total", NULL);
	cw_json_int64(w, total, NULL);
}

/*
 * failed_streams: each stream (an entity on a target) stopped by on_error:
 * fail_stream, with the reason; it stays stopped until cachewarp starts again.
 */
static void write_failed_streams(cw_json_t *w, const cw_api_component_t *components,
                                 size_t count)
{
	cw_json_key(w, "failed_streams", NULL);
	cw_json_array_begin(w, NULL);
	for (size_t i = 0; i < count; i++) {
		const cw_component_status_t *s = &components[i].status;
		if (strcmp(components[i].kind, "target") != 0)
			continue;
		for (size_t j = 0; j < s->nfailed && j < CW_COMPONENT_FAILED_MAX; j++) {
			cw_json_object_begin(w, NULL);
			cw_json_key(w, "target", NULL);
			cw_json_string(w, components[i].name, NULL);
			cw_json_key(w, "entity", NULL);
			cw_json_string(w, s->failed[j].entity, NULL);
			masked_string(w, "reason", s->failed[j].reason);
			cw_json_object_end(w, NULL);
		}
	}
	cw_json_array_end(w, NULL);
}

/*
 * paused_entities: each entity paused because the configuration file no
 * longer lists it (control/entity_pause.h), with its reason; empty when
 * the hub cannot be read (hub.reachable says so).
 */
static void write_paused_entities(cw_json_t *w, cw_hub_t *hub)
{
	cw_entity_t *entities = NULL;
	size_t count = 0;
	if (hub != NULL)
		cw_entity_store_list(hub, false, &entities, &count, NULL);
	cw_json_key(w, "paused_entities", NULL);
	cw_json_array_begin(w, NULL);
	for (size_t i = 0; i < count; i++) {
		if (!cw_entity_is_paused(&entities[i]))
			continue;
		cw_json_object_begin(w, NULL);
		cw_json_key(w, "entity", NULL);
		cw_json_string(w, entities[i].name, NULL);
		cw_json_key(w, "source", NULL);
		cw_json_string(w, entities[i].source, NULL);
		cw_json_key(w, "reason", NULL);
		cw_json_string(w, entities[i].paused_reason, NULL);
		write_time_or_null(w, "paused_at", entities[i].paused_at_us);
		cw_json_object_end(w, NULL);
	}
	cw_json_array_end(w, NULL);
	cw_entity_store_list_free(entities, count);
}

/* Every job of the server; *count receives how many. Owned by the caller. */
static cw_job_status_t *list_jobs(cw_api_t *api, size_t *count)
{
	*count = 0;
	if (api->deps.jobs == NULL)
		return NULL;
	size_t n = cw_jobs_snapshot(api->deps.jobs, NULL, 0);
	cw_job_status_t *jobs = cw_xcalloc(n ? n : 1, sizeof *jobs);
	size_t got = cw_jobs_snapshot(api->deps.jobs, jobs, n);
	*count = got < n ? got : n;
	return jobs;
}

/* The configuration in force: its file, its hash, when it was loaded, the last reload. */
static void write_config(cw_json_t *w, cw_api_t *api)
{
	cw_api_config_info_t now;
	cw_api_config_now(api, &now);
	cw_json_key(w, "config", NULL);
	cw_json_object_begin(w, NULL);
	cw_json_key(w, "path", NULL);
	cw_json_string(w, now.config->path ? now.config->path : "", NULL);
	cw_json_key(w, "sha256", NULL);
	cw_json_string(w, now.config->sha256, NULL);
	write_time_or_null(w, "loaded_at", now.loaded_at_us);
	cw_json_key(w, "last_reload", NULL);
	if (now.last_reload != NULL)
		cw_json_string(w, now.last_reload, NULL);
	else
		cw_json_null(w, NULL);
	write_time_or_null(w, "last_reload_at", now.last_reload_at_us);
	cw_json_object_end(w, NULL);
}

void cw_api_status(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res)
{
	cw_err_t err = {0};
	int64_t last_id = 0;
	bool hub_ok = hub_reachable(api, &last_id, &err);
	size_t ncomponents = 0, njobs = 0;
	cw_api_component_t *components = list_components(api, &ncomponents);
	cw_job_status_t *jobs = list_jobs(api, &njobs);
	char *url = cw_secret_mask(api->deps.config->hub.url);
	cw_json_t w;
	cw_json_init(&w, &res->body, 0);
	cw_json_object_begin(&w, NULL);
	cw_json_key(&w, "hub", NULL);
	cw_json_object_begin(&w, NULL);
	cw_json_key(&w, "url", NULL);
	cw_json_string(&w, url, NULL);
	cw_json_key(&w, "reachable", NULL);
	cw_json_bool(&w, hub_ok, NULL);
	cw_json_key(&w, "last_oplog_id", NULL);
	if (hub_ok)
		cw_json_int64(&w, last_id, NULL);
	else
		cw_json_null(&w, NULL);
	masked_string(&w, "last_error", hub_ok ? "" : err.message);
	cw_json_object_end(&w, NULL);
	write_config(&w, api);
	cw_json_key(&w, "components", NULL);
	cw_json_array_begin(&w, NULL);
	for (size_t i = 0; i < ncomponents; i++)
		write_component(&w, &components[i], jobs, njobs);
	cw_json_array_end(&w, NULL);
	cw_json_key(&w, "jobs", NULL);
	cw_json_array_begin(&w, NULL);
	for (size_t i = 0; i < njobs; i++)
		write_job(&w, &jobs[i]);
	cw_json_array_end(&w, NULL);
	write_failed_entities(&w, components, ncomponents);
	write_failed_streams(&w, components, ncomponents);
	/* The newest verify run of every entity and target (docs/verify.md). */
	cw_json_key(&w, "verify", NULL);
	cw_hub_t *hub = hub_ok ? cw_api_hub_acquire(api, NULL) : NULL;
	if (hub == NULL || cw_verify_runs_json(hub, 0, &w, NULL) != 0) {
		cw_json_array_begin(&w, NULL);
		cw_json_array_end(&w, NULL);
	}
	/* The dead letters of each stream that has some (docs/operations.md, "Dead letters"). */
	cw_dead_letter_stream_count_t *letters = NULL;
	size_t nletters = 0;
	if (hub != NULL)
		cw_dead_letter_count_streams(hub, &letters, &nletters, NULL);
	cw_json_key(&w, "dead_letters", NULL);
	cw_dead_letter_stream_counts_write_json(letters, nletters, &w, NULL);
	cw_dead_letter_stream_counts_free(letters, nletters);
	write_paused_entities(&w, hub);
	cw_api_hub_release(api, hub);
	cw_json_object_end(&w, NULL);
	if (cw_json_finish(&w) != 0)
		cw_api_error(res, 500, NULL, "%s", "could not encode the status");
	free(url);
	free(jobs);
	free(components);
}

/* Resident set size from /proc/self/statm; -1 when unknown. */
static double resident_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	if (f == NULL)
		return -1;
	unsigned long long size = 0, resident = 0;
	int n = fscanf(f, "%llu %llu", &size, &resident);
	fclose(f);
	return n == 2 ? (double)resident * (double)sysconf(_SC_PAGESIZE) : -1;
}

/* Label text name="value" with value escaped, into out. */
static void label(cw_buf_t *out, const char *name, const char *value)
{
	cw_buf_appendf(out, "%s%s=\"", out->len ? "," : "", name);
	cw_metrics_label_escape(out, value);
	cw_buf_append_char(out, '"');
}

static void scrape_hub(cw_api_t *api, cw_metrics_t *m)
{
	cw_err_t err = {0};
	cw_hub_t *hub = cw_api_hub_acquire(api, &err);
	cw_consumer_t *consumers = NULL;
	size_t count = 0;
	bool up = hub != NULL && cw_consumer_list(hub, &consumers, &count, &err) == 0;
	cw_api_hub_release(api, hub);
	cw_metrics_gauge_set(m, "cachewarp_hub_up", NULL, up ? 1 : 0);
	for (size_t i = 0; i < count; i++) {
		cw_buf_t labels = CW_BUF_INIT;
		label(&labels, "consumer", consumers[i].name);
		cw_metrics_gauge_set(m, "cachewarp_consumer_lag_ids", cw_buf_cstr(&labels),
		                     (double)consumers[i].lag_ids);
		cw_metrics_gauge_set(m, "cachewarp_consumer_lag_seconds", cw_buf_cstr(&labels),
		                     consumers[i].lag_seconds);
		cw_buf_free(&labels);
	}
	cw_consumer_list_free(consumers, count);
}

void cw_api_metrics(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res)
{
	cw_metrics_t *m = api->deps.metrics;
	cw_metrics_declare(m, "cachewarp_process_resident_memory_bytes", CW_METRIC_GAUGE,
	                   "Resident set size of the cachewarp process in bytes.");
	cw_metrics_declare(m, "cachewarp_hub_up", CW_METRIC_GAUGE,
	                   "1 when the API reached the hub at the last scrape, 0 otherwise.");
	cw_metrics_declare(m, "cachewarp_consumer_lag_ids", CW_METRIC_GAUGE,
	                   "Oplog ids between a consumer's position and the hub's head.");
	cw_metrics_declare(m, "cachewarp_consumer_lag_seconds", CW_METRIC_GAUGE,
	                   "Age of the oldest oplog row a consumer has not applied yet.");
	cw_metrics_declare(m, "cachewarp_component_healthy", CW_METRIC_GAUGE,
	                   "1 when a source or target reports itself healthy, 0 otherwise.");
	cw_metrics_declare(m, "cachewarp_component_lag_bytes", CW_METRIC_GAUGE,
	                   "Source WAL bytes not yet confirmed, as the component reports it.");
	cw_metrics_declare(m, "cachewarp_component_lag_seconds", CW_METRIC_GAUGE,
	                   "Age of the newest change a component has seen or applied.");
	cw_metrics_declare(m, "cachewarp_component_lag_ids", CW_METRIC_GAUGE,
	                   "Oplog ids a target is behind the hub's head.");
	double rss = resident_bytes();
	if (rss >= 0)
		cw_metrics_gauge_set(m, "cachewarp_process_resident_memory_bytes", NULL, rss);
	scrape_hub(api, m);
	size_t count = 0;
	cw_api_component_t *components = list_components(api, &count);
	for (size_t i = 0; i < count; i++) {
		cw_buf_t labels = CW_BUF_INIT;
		label(&labels, "kind", components[i].kind);
		label(&labels, "name", components[i].name);
		const cw_component_status_t *st = &components[i].status;
		cw_metrics_gauge_set(m, "cachewarp_component_healthy", cw_buf_cstr(&labels),
		                     st->healthy ? 1 : 0);
		/* Lags that do not apply to this component (negative) are left out. */
		if (st->lag_bytes >= 0)
			cw_metrics_gauge_set(m, "cachewarp_component_lag_bytes", cw_buf_cstr(&labels),
			                     (double)st->lag_bytes);
		if (st->lag_seconds >= 0)
			cw_metrics_gauge_set(m, "cachewarp_component_lag_seconds", cw_buf_cstr(&labels),
			                     st->lag_seconds);
		if (st->lag_ids >= 0)
			cw_metrics_gauge_set(m, "cachewarp_component_lag_ids", cw_buf_cstr(&labels),
			                     (double)st->lag_ids);
		cw_buf_free(&labels);
	}
	free(components);
	res->content_type = "text/plain; version=0.0.4; charset=utf-8";
	cw_metrics_render(m, &res->body);
}

void cw_api_openapi(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res)
{
	res->content_type = "application/yaml";
	res->static_body = (const char *)cw_api_openapi_yaml;
	res->static_len = cw_api_openapi_yaml_len;
}
