/* This file contains the paused entity state declared in entity_pause.h. */
#include "control/entity_pause.h"

#include "core/buf.h"
#include "core/log.h"
#include "hub/entity_store.h"

#include <stdio.h>

#define COMPONENT "entities"
#define PAUSED_METRIC "cachewarp_entity_paused"

cw_entity_pause_action_t cw_entity_pause_decide(const cw_config_t *config,
                                                const cw_entity_t *stored)
{
	if (stored->status == CW_ENTITY_DELETED)
		return CW_ENTITY_PAUSE_KEEP;
	bool listed = cw_config_entity(config, stored->name) != NULL;
	if (stored->paused_reason != NULL)
		return listed ? CW_ENTITY_PAUSE_RESUME : CW_ENTITY_PAUSE_KEEP;
	if (listed || stored->origin != CW_ENTITY_ORIGIN_FILE ||
	    cw_config_source(config, stored->source) == NULL)
		return CW_ENTITY_PAUSE_KEEP;
	return CW_ENTITY_PAUSE_PAUSE;
}

static void log_paused(const char *name)
{
	char undo[200];
	snprintf(undo, sizeof undo, "put it back in the file, or run `cachewarp entity resume %s` "
	         "(a fresh scan); `cachewarp entity delete %s` deletes it and its data", name, name);
	cw_log_kv(CW_LOG_WARN, COMPONENT, "entity removed from the configuration file is paused: "
	          "its source no longer captures it and its targets keep their data",
	          "entity", name, "undo", undo, NULL);
}

static void log_resumed(const char *name, int64_t version, const char *why)
{
	char generation[24];
	snprintf(generation, sizeof generation, "%lld", (long long)version);
	cw_log_kv(CW_LOG_INFO, COMPONENT, "paused entity resumed: a fresh scan of a new generation",
	          "entity", name, "reason", why, "version", generation, NULL);
}

int cw_entity_pause_sync(cw_hub_t *hub, const cw_config_t *config, cw_err_t *err)
{
	cw_entity_t *entities = NULL;
	size_t count = 0;
	int rc = cw_entity_store_list(hub, false, &entities, &count, err);
	for (size_t i = 0; i < count && rc == 0; i++) {
		const char *name = entities[i].name;
		int64_t version = 0;
		switch (cw_entity_pause_decide(config, &entities[i])) {
		case CW_ENTITY_PAUSE_PAUSE:
			rc = cw_entity_store_pause(hub, name, CW_ENTITY_PAUSE_REASON, err);
			if (rc == 0)
				log_paused(name);
			break;
		case CW_ENTITY_PAUSE_RESUME:
			rc = cw_entity_store_resume(hub, name, CW_ENTITY_ORIGIN_FILE, &version, err);
			if (rc == 0)
				log_resumed(name, version, "back in the configuration file");
			break;
		case CW_ENTITY_PAUSE_KEEP:
			break;
		}
		/* Another process did it a moment ago: the hub is as the file says. */
		if (rc == CW_ECONFLICT || rc == CW_ENOTFOUND)
			rc = 0;
	}
	cw_entity_store_list_free(entities, count);
	return rc;
}

int cw_entity_pause_resume(cw_hub_t *hub, const cw_config_t *config, const char *name,
                           int64_t *version, cw_err_t *err)
{
	cw_entity_origin_t origin = cw_config_entity(config, name) != NULL ? CW_ENTITY_ORIGIN_FILE
	                                                                   : CW_ENTITY_ORIGIN_API;
	int64_t next = 0;
	int rc = cw_entity_store_resume(hub, name, origin, &next, err);
	if (rc == 0) {
		log_resumed(name, next, "resume requested");
		if (version != NULL)
			*version = next;
	}
	return rc;
}

void cw_entity_pause_publish(cw_metrics_t *metrics, const cw_entity_t *entities, size_t n)
{
	cw_metrics_declare(metrics, PAUSED_METRIC, CW_METRIC_GAUGE,
	                   "1 while an entity is paused (removed from the configuration file: not "
	                   "captured, its targets keep their data), 0 otherwise");
	for (size_t i = 0; i < n; i++) {
		cw_buf_t labels = CW_BUF_INIT;
		cw_buf_append_str(&labels, "entity=\"");
		cw_metrics_label_escape(&labels, entities[i].name);
		cw_buf_append_str(&labels, "\",source=\"");
		cw_metrics_label_escape(&labels, entities[i].source);
		cw_buf_append_char(&labels, '"');
		cw_metrics_gauge_set(metrics, PAUSED_METRIC, cw_buf_cstr(&labels),
		                     cw_entity_is_paused(&entities[i]) ? 1 : 0);
		cw_buf_free(&labels);
	}
}
