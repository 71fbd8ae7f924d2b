/* This file contains `cachewarp status` and `cachewarp entity ...` (runtime.h): one-shot hub actions. */
#include "control/cli.h"
#include "control/entity_manager.h"
#include "control/entity_pause.h"
#include "control/http_get.h"
#include "control/runtime.h"
#include "control/runtime_internal.h"
#include "core/json.h"
#include "core/mem.h"
#include "hub/consumers.h"
#include "hub/dead_letters.h"
#include "hub/entity_store.h"
#include "hub/migrations.h"
#include "verify/verify.h"

#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How long `cachewarp status` waits for a running daemon's answer. */
#define DAEMON_TIMEOUT_MS 2000

/*
 * Asks the daemon at api.listen for /v1/status. Returns the parsed answer
 * (owned by the caller) or NULL with why in reason.
 */
static json_t *daemon_status(const cw_config_t *config, char *reason, size_t reason_len)
{
	const char *listen = config->api.listen;
	const char *colon = strrchr(listen, ':');
	if (colon != NULL && strcmp(colon + 1, "0") == 0) {
		snprintf(reason, reason_len, "api.listen has port 0: the daemon's port is not known here");
		return NULL;
	}
	cw_buf_t body = CW_BUF_INIT;
	cw_err_t err = {0};
	int status = 0;
	json_t *answer = NULL;
	if (cw_http_get(listen, "/v1/status", config->api.token, DAEMON_TIMEOUT_MS, &status, &body,
	                &err) != 0) {
		snprintf(reason, reason_len, "not reachable (%s): is cachewarp run running?", err.message);
	} else if (status != 200) {
		snprintf(reason, reason_len, "http://%s/v1/status answered %d", listen, status);
	} else if ((answer = json_loadb(body.data ? body.data : "", body.len, 0, NULL)) == NULL) {
		snprintf(reason, reason_len, "http://%s/v1/status did not answer JSON", listen);
	}
	cw_buf_free(&body);
	return answer;
}

static const char *member_text(json_t *object, const char *key, char *scratch, size_t len)
{
	json_t *value = json_object_get(object, key);
	if (json_is_string(value))
		return json_string_value(value);
	if (json_is_integer(value)) {
		snprintf(scratch, len, "%lld", (long long)json_integer_value(value));
		return scratch;
	}
	if (json_is_real(value)) {
		snprintf(scratch, len, "%.1f", json_real_value(value));
		return scratch;
	}
	if (json_is_boolean(value))
		return json_is_true(value) ? "yes" : "no";
	return "-";
}

static void print_components(json_t *daemon)
{
	printf("\n%-10s %-20s %-12s %-8s %-12s %-10s %s\n", "KIND", "COMPONENT", "STATE", "HEALTHY",
	       "LAG_SECONDS", "LAG_IDS", "LAST_ERROR");
	json_t *components = json_object_get(daemon, "components");
	size_t i;
	json_t *c;
	json_array_foreach(components, i, c) {
		char kind[32], name[32], state[32], healthy[32], lag_s[32], lag_ids[32], error[32];
		printf("%-10s %-20s %-12s %-8s %-12s %-10s %s\n",
		       member_text(c, "kind", kind, sizeof kind), member_text(c, "name", name, sizeof name),
		       member_text(c, "state", state, sizeof state),
		       member_text(c, "healthy", healthy, sizeof healthy),
		       member_text(c, "lag_seconds", lag_s, sizeof lag_s),
		       member_text(c, "lag_ids", lag_ids, sizeof lag_ids),
		       member_text(c, "last_error", error, sizeof error));
	}
}

/* The reason the daemon gives for a failed entity, or NULL when it is not failed. */
static const char *failed_reason(json_t *daemon, const char *entity)
{
	size_t i;
	json_t *f;
	json_array_foreach(json_object_get(daemon, "failed_entities"), i, f) {
		const char *name = json_string_value(json_object_get(f, "entity"));
		if (name != NULL && strcmp(name, entity) == 0) {
			const char *reason = json_string_value(json_object_get(f, "reason"));
			return reason != NULL ? reason : "";
		}
	}
	return NULL;
}

/* One line per failed entity, with its reason (the fix is in it). */
static void print_failed_entities(json_t *daemon)
{
	json_t *failed = json_object_get(daemon, "failed_entities");
	if (json_array_size(failed) == 0)
		return;
	printf("\n%-24s %-16s %s\n", "FAILED ENTITY", "SOURCE", "REASON");
	size_t i;
	json_t *f;
	json_array_foreach(failed, i, f) {
		char entity[80], source[80], reason[16];
		printf("%-24s %-16s %s\n", member_text(f, "entity", entity, sizeof entity),
		       member_text(f, "source", source, sizeof source),
		       member_text(f, "reason", reason, sizeof reason));
	}
	json_int_t total = json_integer_value(json_object_get(daemon, "failed_entities_total"));
	if ((size_t)total > json_array_size(failed))
		printf("(%lld failed entities in all; /v1/status lists the first of each source)\n",
		       (long long)total);
}

/* One line per paused entity (docs/operations.md, "Paused entities"), with how to resume it. */
static void print_paused_entities(const cw_entity_t *entities, size_t count)
{
	bool header = false;
	for (size_t i = 0; i < count; i++) {
		if (!cw_entity_is_paused(&entities[i]))
			continue;
		if (!header)
			printf("\n%-24s %-16s %s\n", "PAUSED ENTITY", "SOURCE", "REASON");
		header = true;
		printf("%-24s %-16s %s (resume: cachewarp entity resume %s)\n", entities[i].name,
		       entities[i].source, entities[i].paused_reason, entities[i].name);
	}
}

typedef struct status_view {
	int schema_version;
	cw_entity_t *entities;
	size_t nentities;
	cw_consumer_t *consumers;
	size_t nconsumers;
	cw_dead_letter_stream_count_t *dead_letters;   /* streams with dead letters */
	size_t ndead_letters;
	json_t *daemon;           /* the running daemon's /v1/status, NULL when unreachable */
	char daemon_reason[CW_ERR_MESSAGE_LEN + 64];
} status_view_t;

static void print_status_json(cw_hub_t *hub, const status_view_t *v)
{
	cw_buf_t buf = CW_BUF_INIT;
	cw_json_t w;
	cw_json_init(&w, &buf, 0);
	cw_json_object_begin(&w, NULL);
	cw_json_key(&w, "hub", NULL);
	cw_json_object_begin(&w, NULL);
	cw_json_key(&w, "url", NULL);
	cw_json_string(&w, cw_hub_url(hub), NULL);
	cw_json_key(&w, "schema_version", NULL);
	cw_json_int64(&w, v->schema_version, NULL);
	cw_json_object_end(&w, NULL);
	cw_json_key(&w, "entities", NULL);
	cw_json_array_begin(&w, NULL);
	for (size_t i = 0; i < v->nentities; i++)
		cw_entity_manager_write_json(&w, &v->entities[i]);
	cw_json_array_end(&w, NULL);
	cw_json_key(&w, "consumers", NULL);
	cw_json_array_begin(&w, NULL);
	for (size_t i = 0; i < v->nconsumers; i++) {
		cw_json_object_begin(&w, NULL);
		cw_json_key(&w, "name", NULL);
		cw_json_string(&w, v->consumers[i].name, NULL);
		cw_json_key(&w, "position", NULL);
		cw_json_int64(&w, v->consumers[i].position, NULL);
		cw_json_key(&w, "lag_ids", NULL);
		cw_json_int64(&w, v->consumers[i].lag_ids, NULL);
		cw_json_key(&w, "lag_seconds", NULL);
		cw_json_double(&w, v->consumers[i].lag_seconds, NULL);
		cw_json_object_end(&w, NULL);
	}
	cw_json_array_end(&w, NULL);
	cw_json_key(&w, "dead_letters", NULL);
	cw_dead_letter_stream_counts_write_json(v->dead_letters, v->ndead_letters, &w, NULL);
	/* The newest verify run of every entity and target (docs/verify.md). */
	cw_json_key(&w, "verify", NULL);
	if (cw_verify_runs_json(hub, 0, &w, NULL) != 0)
		cw_json_null(&w, NULL);
	/* The daemon's own view (components, jobs), or why it could not be asked. */
	cw_json_key(&w, "daemon", NULL);
	if (v->daemon != NULL) {
		cw_json_jansson(&w, v->daemon, NULL);
	} else {
		cw_json_object_begin(&w, NULL);
		cw_json_key(&w, "reachable", NULL);
		cw_json_bool(&w, false, NULL);
		cw_json_key(&w, "reason", NULL);
		cw_json_string(&w, v->daemon_reason, NULL);
		cw_json_object_end(&w, NULL);
	}
	cw_json_object_end(&w, NULL);
	printf("%s\n", cw_buf_cstr(&buf));
	cw_buf_free(&buf);
}

/* The newest verify run of every entity and target, when there is any. */
static void print_verify_runs(cw_hub_t *hub)
{
	cw_buf_t buf = CW_BUF_INIT;
	cw_json_t w;
	cw_json_init(&w, &buf, 0);
	json_t *runs = NULL;
	if (cw_verify_runs_json(hub, 0, &w, NULL) == 0)
		runs = json_loadb(buf.data, buf.len, 0, NULL);
	cw_buf_free(&buf);
	if (json_array_size(runs) > 0) {
		printf("\n%-24s %-16s %-10s %-8s %-8s %-9s %s\n", "VERIFY ENTITY", "TARGET", "STATUS",
		       "MISSING", "EXTRA", "DIFFERENT", "FINISHED");
		size_t i;
		json_t *run;
		json_array_foreach(runs, i, run) {
			json_t *report = json_object_get(run, "report");
			const char *finished = json_string_value(json_object_get(run, "finished_at"));
			printf("%-24s %-16s %-10s %-8lld %-8lld %-9lld %s\n",
			       json_string_value(json_object_get(run, "entity")),
			       json_string_value(json_object_get(run, "target")),
			       json_string_value(json_object_get(run, "status")),
			       (long long)json_integer_value(json_object_get(report, "missing")),
			       (long long)json_integer_value(json_object_get(report, "extra")),
			       (long long)json_integer_value(json_object_get(report, "different")),
			       finished ? finished : "-");
		}
	}
	json_decref(runs);
}

static void print_status_text(const cw_config_t *config, cw_hub_t *hub, const status_view_t *v)
{
	printf("hub        %s (schema version %d)\n", cw_hub_url(hub), v->schema_version);
	if (v->daemon != NULL)
		printf("daemon     http://%s\n", config->api.listen);
	else
		printf("daemon     %s\n", v->daemon_reason);
	if (v->daemon != NULL)
		print_components(v->daemon);
	printf("\n%-24s %-16s %-10s %s\n", "ENTITY", "SOURCE", "STATUS", "VERSION");
	for (size_t i = 0; i < v->nentities; i++)
		printf("%-24s %-16s %-10s %lld\n", v->entities[i].name, v->entities[i].source,
		       failed_reason(v->daemon, v->entities[i].name) != NULL ? "failed" :
		       cw_entity_shown_status(&v->entities[i]), (long long)v->entities[i].version);
	print_failed_entities(v->daemon);
	print_paused_entities(v->entities, v->nentities);
	printf("\n%-24s %-12s %-10s %s\n", "CONSUMER", "POSITION", "LAG_IDS", "LAG_SECONDS");
	for (size_t i = 0; i < v->nconsumers; i++)
		printf("%-24s %-12lld %-10lld %.1f\n", v->consumers[i].name,
		       (long long)v->consumers[i].position, (long long)v->consumers[i].lag_ids,
		       v->consumers[i].lag_seconds);
	if (v->ndead_letters > 0) {
		printf("\n%-24s %-16s %-10s %s\n", "DEAD LETTERS TARGET", "ENTITY", "FAILED", "REPLAY");
		for (size_t i = 0; i < v->ndead_letters; i++)
			printf("%-24s %-16s %-10lld %lld\n", v->dead_letters[i].target,
			       v->dead_letters[i].entity, (long long)v->dead_letters[i].failed,
			       (long long)v->dead_letters[i].replay);
	}
	print_verify_runs(hub);
}

static int print_status(const cw_config_t *config, cw_hub_t *hub, bool json)
{
	cw_err_t err = {0};
	status_view_t v = {0};
	int exit_code = CW_EXIT_FAILURE;
	if (cw_hub_schema_version(hub, &v.schema_version, &err) != 0 ||
	    cw_entity_store_list(hub, false, &v.entities, &v.nentities, &err) != 0 ||
	    cw_consumer_list(hub, &v.consumers, &v.nconsumers, &err) != 0 ||
	    cw_dead_letter_count_streams(hub, &v.dead_letters, &v.ndead_letters, &err) != 0) {
		fprintf(stderr, "cachewarp: %s\n", err.message);
		goto out;
	}
	v.daemon = daemon_status(config, v.daemon_reason, sizeof v.daemon_reason);
	if (json)
		print_status_json(hub, &v);
	else
		print_status_text(config, hub, &v);
	exit_code = CW_EXIT_OK;
out:
	json_decref(v.daemon);
	cw_entity_store_list_free(v.entities, v.nentities);
	cw_consumer_list_free(v.consumers, v.nconsumers);
	cw_dead_letter_stream_counts_free(v.dead_letters, v.ndead_letters);
	return exit_code;
}

int cw_runtime_status(const char *config_path, bool json)
{
	cw_config_t *config = cw_runtime_load_config(config_path);
	if (config == NULL)
		return CW_EXIT_USAGE;
	cw_hub_t *hub = cw_runtime_connect_once(config);
	int exit_code = hub ? print_status(config, hub, json) : CW_EXIT_FAILURE;
	cw_hub_close(hub);
	cw_config_free(config);
	return exit_code;
}

/* Parses "name:type:path" into column. 0 or CW_EINVAL. */
static int parse_column(const char *spec, cw_column_t *column, cw_err_t *err)
{
	const char *c1 = strchr(spec, ':');
	const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	if (c1 == NULL || c2 == NULL)
		return cw_err_set(err, CW_EINVAL, "entity",
		                  "--column \"%s\": expected NAME:TYPE:PATH, e.g. price:number:pricing.amount",
		                  spec);
	char *type = cw_xstrndup(c1 + 1, (size_t)(c2 - c1 - 1));
	int rc = cw_column_type_parse(type, &column->type, err);
	free(type);
	if (rc != 0)
		return CW_EINVAL;
	column->name = cw_xstrndup(spec, (size_t)(c1 - spec));
	column->path = cw_xstrdup(c2 + 1);
	return 0;
}

static int entity_add(cw_hub_t *hub, const cw_config_t *config,
                      const cw_runtime_entity_request_t *request, cw_err_t *err)
{
	cw_entity_t entity = {0};
	entity.name = cw_xstrdup(request->name);
	entity.source = cw_xstrdup(request->source ? request->source : "");
	entity.table = request->table ? cw_xstrdup(request->table) : NULL;
	entity.collection = request->collection ? cw_xstrdup(request->collection) : NULL;
	entity.status = CW_ENTITY_PENDING;
	entity.version = 1;
	entity.origin = CW_ENTITY_ORIGIN_API;
	entity.columns = request->ncolumns ? cw_xcalloc(request->ncolumns, sizeof *entity.columns)
	                                   : NULL;
	int rc = 0;
	for (size_t i = 0; i < request->ncolumns && rc == 0; i++) {
		rc = parse_column(request->columns[i], &entity.columns[i], err);
		if (rc == 0)
			entity.ncolumns++;
	}
	bool created = false;
	if (rc == 0 && request->source == NULL)
		rc = cw_err_set(err, CW_EINVAL, "entity", "entity add needs --source SOURCE");
	if (rc == 0 && (rc = cw_entity_manager_check(config, &entity, err)) == 0)
		rc = cw_entity_manager_check_source(config, &entity, err);
	if (rc == 0)
		rc = cw_entity_manager_add(hub, config, &entity, &created, err);
	if (rc == 0)
		printf(created ? "entity %s added (status pending: the running capture scans it)\n"
		               : "entity %s already exists with this shape; nothing changed\n",
		       entity.name);
	cw_entity_clear(&entity);
	return rc;
}

static int entity_show(cw_hub_t *hub, const char *name, cw_err_t *err)
{
	cw_entity_t entity = {0};
	int rc = cw_entity_store_get(hub, name, &entity, err);
	if (rc != 0)
		return rc;
	cw_buf_t buf = CW_BUF_INIT;
	cw_json_t w;
	cw_json_init(&w, &buf, 0);
	cw_entity_manager_write_json(&w, &entity);
	printf("%s\n", cw_buf_cstr(&buf));
	cw_buf_free(&buf);
	cw_entity_clear(&entity);
	return 0;
}

static int entity_list(cw_hub_t *hub, cw_err_t *err)
{
	cw_entity_t *entities = NULL;
	size_t count = 0;
	int rc = cw_entity_store_list(hub, false, &entities, &count, err);
	if (rc != 0)
		return rc;
	printf("%-24s %-16s %-32s %-10s %-8s %s\n", "NAME", "SOURCE", "TABLE/COLLECTION", "STATUS",
	       "VERSION", "PAUSED BECAUSE");
	for (size_t i = 0; i < count; i++) {
		const cw_entity_t *e = &entities[i];
		printf("%-24s %-16s %-32s %-10s %-8lld %s\n", e->name, e->source,
		       e->table ? e->table : e->collection, cw_entity_shown_status(e),
		       (long long)e->version, e->paused_reason ? e->paused_reason : "");
	}
	cw_entity_store_list_free(entities, count);
	return 0;
}

static int entity_action(cw_hub_t *hub, const cw_config_t *config, const void *arg,
                         cw_err_t *err)
{
	const cw_runtime_entity_request_t *request = arg;
	const char *action = request->action;
	if (strcmp(action, "list") == 0)
		return entity_list(hub, err);
	if (strcmp(action, "show") == 0)
		return entity_show(hub, request->name, err);
	if (strcmp(action, "add") == 0)
		return entity_add(hub, config, request, err);
	if (strcmp(action, "delete") == 0) {
		int rc = cw_entity_manager_delete(hub, request->name, err);
		if (rc == 0)
			printf("entity %s deleted; targets drop its data\n", request->name);
		return rc;
	}
	int64_t version = 0;
	if (strcmp(action, "resume") == 0) {
		int rc = cw_entity_pause_resume(hub, config, request->name, &version, err);
		if (rc == 0)
			printf("entity %s resumed: generation %lld will be scanned and swept\n",
			       request->name, (long long)version);
		return rc;
	}
	int rc = cw_entity_manager_refresh(hub, request->name, &version, err);
	if (rc == 0)
		printf("entity %s refreshing: generation %lld will be scanned and swept\n",
		       request->name, (long long)version);
	return rc;
}

int cw_runtime_entity(const char *config_path, const cw_runtime_entity_request_t *request)
{
	return cw_runtime_hub_action(config_path, entity_action, request);
}
