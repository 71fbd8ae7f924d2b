/* This file contains `cachewarp status` and `cachewarp entity ...` (runtime.h): one-shot hub actions. */
#include "control/cli.h"
#include "control/entity_manager.h"
#include "control/runtime.h"
#include "control/runtime_internal.h"
#include "core/json.h"
#include "core/mem.h"
#include "hub/consumers.h"
#include "hub/entity_store.h"
#include "hub/migrations.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void json_entity(cw_json_t *w, const cw_entity_t *e)
{
	cw_json_object_begin(w, NULL);
	cw_json_key(w, "name", NULL);
	cw_json_string(w, e->name, NULL);
	cw_json_key(w, "source", NULL);
	cw_json_string(w, e->source, NULL);
	cw_json_key(w, e->table ? "table" : "collection", NULL);
	cw_json_string(w, e->table ? e->table : e->collection, NULL);
	cw_json_key(w, "status", NULL);
	cw_json_string(w, cw_entity_status_name(e->status), NULL);
	cw_json_key(w, "version", NULL);
	cw_json_int64(w, e->version, NULL);
	cw_json_key(w, "columns", NULL);
	char *columns = cw_entity_columns_json(e);
	cw_json_raw(w, columns, strlen(columns), NULL);
	free(columns);
	cw_json_object_end(w, NULL);
}

static int print_status(cw_hub_t *hub, bool json)
{
	cw_err_t err = {0};
	int version = 0;
	cw_entity_t *entities = NULL;
	size_t nentities = 0;
	cw_consumer_t *consumers = NULL;
	size_t nconsumers = 0;
	if (cw_hub_schema_version(hub, &version, &err) != 0 ||
	    cw_entity_store_list(hub, false, &entities, &nentities, &err) != 0 ||
	    cw_consumer_list(hub, &consumers, &nconsumers, &err) != 0) {
		fprintf(stderr, "cachewarp: %s\n", err.message);
		cw_entity_store_list_free(entities, nentities);
		return CW_EXIT_FAILURE;
	}
	if (json) {
		cw_buf_t buf = CW_BUF_INIT;
		cw_json_t w;
		cw_json_init(&w, &buf, 0);
		cw_json_object_begin(&w, NULL);
		cw_json_key(&w, "hub", NULL);
		cw_json_object_begin(&w, NULL);
		cw_json_key(&w, "url", NULL);
		cw_json_string(&w, cw_hub_url(hub), NULL);
		cw_json_key(&w, "schema_version", NULL);
		cw_json_int64(&w, version, NULL);
		cw_json_object_end(&w, NULL);
		cw_json_key(&w, "entities", NULL);
		cw_json_array_begin(&w, NULL);
		for (size_t i = 0; i < nentities; i++)
			json_entity(&w, &entities[i]);
		cw_json_array_end(&w, NULL);
		cw_json_key(&w, "consumers", NULL);
		cw_json_array_begin(&w, NULL);
		for (size_t i = 0; i < nconsumers; i++) {
			cw_json_object_begin(&w, NULL);
			cw_json_key(&w, "name", NULL);
			cw_json_string(&w, consumers[i].name, NULL);
			cw_json_key(&w, "position", NULL);
			cw_json_int64(&w, consumers[i].position, NULL);
			cw_json_key(&w, "lag_ids", NULL);
			cw_json_int64(&w, consumers[i].lag_ids, NULL);
			cw_json_key(&w, "lag_seconds", NULL);
			cw_json_double(&w, consumers[i].lag_seconds, NULL);
			cw_json_object_end(&w, NULL);
		}
		cw_json_array_end(&w, NULL);
		cw_json_object_end(&w, NULL);
		printf("%s\n", cw_buf_cstr(&buf));
		cw_buf_free(&buf);
	} else {
		printf("hub        %s (schema version %d)\n", cw_hub_url(hub), version);
		printf("\n%-24s %-16s %-10s %s\n", "ENTITY", "SOURCE", "STATUS", "VERSION");
		for (size_t i = 0; i < nentities; i++)
			printf("%-24s %-16s %-10s %lld\n", entities[i].name, entities[i].source,
			       cw_entity_status_name(entities[i].status), (long long)entities[i].version);
		printf("\n%-24s %-12s %-10s %s\n", "CONSUMER", "POSITION", "LAG_IDS", "LAG_SECONDS");
		for (size_t i = 0; i < nconsumers; i++)
			printf("%-24s %-12lld %-10lld %.1f\n", consumers[i].name,
			       (long long)consumers[i].position, (long long)consumers[i].lag_ids,
			       consumers[i].lag_seconds);
	}
	cw_entity_store_list_free(entities, nentities);
	cw_consumer_list_free(consumers, nconsumers);
	return CW_EXIT_OK;
}

int cw_runtime_status(const char *config_path, bool json)
{
	cw_config_t *config = cw_runtime_load_config(config_path);
	if (config == NULL)
		return CW_EXIT_USAGE;
	cw_hub_t *hub = cw_runtime_connect_once(config);
	int exit_code = hub ? print_status(hub, json) : CW_EXIT_FAILURE;
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
	json_entity(&w, &entity);
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
	printf("%-24s %-16s %-32s %-10s %s\n", "NAME", "SOURCE", "TABLE/COLLECTION", "STATUS",
	       "VERSION");
	for (size_t i = 0; i < count; i++) {
		const cw_entity_t *e = &entities[i];
		printf("%-24s %-16s %-32s %-10s %lld\n", e->name, e->source,
		       e->table ? e->table : e->collection, cw_entity_status_name(e->status),
		       (long long)e->version);
	}
	cw_entity_store_list_free(entities, count);
	return 0;
}

static int entity_action(cw_hub_t *hub, const cw_config_t *config,
                         const cw_runtime_entity_request_t *request, cw_err_t *err)
{
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
	int rc = cw_entity_manager_refresh(hub, request->name, &version, err);
	if (rc == 0)
		printf("entity %s refreshing: generation %lld will be scanned and swept\n",
		       request->name, (long long)version);
	return rc;
}

int cw_runtime_entity(const char *config_path, const cw_runtime_entity_request_t *request)
{
	cw_config_t *config = cw_runtime_load_config(config_path);
	if (config == NULL)
		return CW_EXIT_USAGE;
	cw_hub_t *hub = cw_runtime_connect_once(config);
	int exit_code = CW_EXIT_FAILURE;
	if (hub != NULL) {
		cw_err_t err = {0};
		int rc = entity_action(hub, config, request, &err);
		if (rc == 0) {
			exit_code = CW_EXIT_OK;
		} else {
			fprintf(stderr, "cachewarp: %s\n", err.message);
			exit_code = rc == CW_EINVAL ? CW_EXIT_USAGE : CW_EXIT_FAILURE;
		}
	}
	cw_hub_close(hub);
	cw_config_free(config);
	return exit_code;
}
