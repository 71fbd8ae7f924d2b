/* This file contains the entity manager declared in entity_manager.h. */
#include "control/entity_manager.h"

#include "capture/source.h"
#include "control/entity_pause.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "hub/entity_store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMPONENT "entities"

int cw_entity_manager_check(const cw_config_t *config, const cw_entity_t *entity, cw_err_t *err)
{
	if (cw_entity_validate(entity, err) != 0)
		return CW_EINVAL;
	const cw_source_config_t *source = cw_config_source(config, entity->source);
	if (source == NULL)
		return cw_err_set(err, CW_EINVAL, COMPONENT,
		                  "entity \"%s\": source \"%s\" is not configured (sources: see "
		                  "cachewarp config show)", entity->name, entity->source);
	if (source->type == CW_SOURCE_MONGODB && (entity->collection == NULL || entity->table != NULL))
		return cw_err_set(err, CW_EINVAL, COMPONENT,
		                  "entity \"%s\": source \"%s\" is MongoDB: give a collection, not a table",
		                  entity->name, entity->source);
	if (source->type != CW_SOURCE_MONGODB && (entity->table == NULL || entity->collection != NULL))
		return cw_err_set(err, CW_EINVAL, COMPONENT,
		                  "entity \"%s\": source \"%s\" is %s: give a table, not a collection",
		                  entity->name, entity->source,
		                  source->type == CW_SOURCE_MYSQL ? "MySQL" : "PostgreSQL");
	return 0;
}

int cw_entity_manager_check_source(const cw_config_t *config, const cw_entity_t *entity,
                                   cw_err_t *err)
{
	cw_err_t why = {0};
	int rc = cw_source_check_entity(config, entity, &why);
	if (rc == CW_EINVAL || rc == CW_ENOTFOUND)
		return cw_err_set(err, CW_EINVAL, COMPONENT, "%s", why.message);
	if (rc != 0)
		cw_log_kv(CW_LOG_WARN, COMPONENT, "could not check the entity's table; the running "
		          "source checks it", "entity", entity->name, "source", entity->source,
		          "error", why.message, NULL);
	return 0;
}

int cw_entity_manager_add(cw_hub_t *hub, const cw_config_t *config, const cw_entity_t *entity,
                          bool *created, cw_err_t *err)
{
	if (cw_entity_manager_check(config, entity, err) != 0)
		return CW_EINVAL;
	return cw_entity_store_upsert(hub, entity, created, err);
}

int cw_entity_manager_sync_config(cw_hub_t *hub, const cw_config_t *config, cw_err_t *err)
{
	for (size_t i = 0; i < config->nentities; i++) {
		bool created = false;
		cw_entity_t declared = config->entities[i];   /* shallow: borrows the file's */
		declared.origin = CW_ENTITY_ORIGIN_FILE;
		int rc = cw_entity_manager_add(hub, config, &declared, &created, err);
		if (rc != 0)
			return rc;
		if (created)
			cw_log_kv(CW_LOG_INFO, COMPONENT, "entity created from the configuration file",
			          "entity", config->entities[i].name, NULL);
	}
	return cw_entity_pause_sync(hub, config, err);
}

int cw_entity_manager_refresh(cw_hub_t *hub, const char *name, int64_t *version, cw_err_t *err)
{
	cw_entity_t stored = {0};
	int rc = cw_entity_store_get(hub, name, &stored, err);
	bool paused = rc == 0 && cw_entity_is_paused(&stored);
	cw_entity_clear(&stored);
	if (rc != 0)
		return rc;
	if (paused)
		return cw_err_set(err, CW_ECONFLICT, COMPONENT, "entity \"%s\" is paused: resume it "
		                  "(cachewarp entity resume %s), which scans it afresh", name, name);
	int64_t next = 0;
	rc = cw_entity_store_bump_version(hub, name, &next, err);
	if (rc == 0)
		rc = cw_entity_store_set_status(hub, name, CW_ENTITY_PENDING, err);
	if (rc == 0 && version != NULL)
		*version = next;
	return rc;
}

int cw_entity_manager_delete(cw_hub_t *hub, const char *name, cw_err_t *err)
{
	return cw_entity_store_delete(hub, name, err);
}

void cw_entity_manager_write_json(cw_json_t *w, const cw_entity_t *e)
{
	cw_json_object_begin(w, NULL);
	cw_json_key(w, "name", NULL);
	cw_json_string(w, e->name, NULL);
	cw_json_key(w, "source", NULL);
	cw_json_string(w, e->source, NULL);
	if (e->collection != NULL) {
		cw_json_key(w, "collection", NULL);
		cw_json_string(w, e->collection, NULL);
	}
	if (e->table != NULL) {
		cw_json_key(w, "table", NULL);
		cw_json_string(w, e->table, NULL);
	}
	cw_json_key(w, "columns", NULL);
	cw_json_array_begin(w, NULL);
	for (size_t i = 0; i < e->ncolumns; i++) {
		cw_json_object_begin(w, NULL);
		cw_json_key(w, "name", NULL);
		cw_json_string(w, e->columns[i].name, NULL);
		cw_json_key(w, "type", NULL);
		cw_json_string(w, cw_column_type_name(e->columns[i].type), NULL);
		cw_json_key(w, "path", NULL);
		cw_json_string(w, e->columns[i].path, NULL);
		cw_json_object_end(w, NULL);
	}
	cw_json_array_end(w, NULL);
	cw_json_key(w, "status", NULL);
	cw_json_string(w, cw_entity_shown_status(e), NULL);
	if (cw_entity_is_paused(e)) {
		cw_json_key(w, "paused_reason", NULL);
		cw_json_string(w, e->paused_reason, NULL);
		cw_json_key(w, "paused_at", NULL);
		char at[CW_TIME_RFC3339_LEN];
		cw_time_format_rfc3339_ms(e->paused_at_us, at);
		cw_json_string(w, at, NULL);
	}
	cw_json_key(w, "origin", NULL);
	if (cw_entity_origin_name(e->origin) != NULL)
		cw_json_string(w, cw_entity_origin_name(e->origin), NULL);
	else
		cw_json_null(w, NULL);
	cw_json_key(w, "version", NULL);
	cw_json_int64(w, e->version, NULL);
	cw_json_object_end(w, NULL);
}

