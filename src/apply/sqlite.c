/* This file contains the SQLite cache target (sqlite.h). */
#include "apply/sqlite.h"

#include "apply/apply_loop.h"
#include "apply/cache_write.h"
#include "apply/cachedb.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "hub/entity_store.h"
#include "hub/metadata.h"

#include <jansson.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMPONENT "sqlite"
#define REFRESH_MS 1000

typedef struct source_order {
	char *entity;
	char **names;
	size_t nnames;
	int64_t checked_ms;
} source_order_t;

typedef struct sqlite_target {
	char *name;
	const cw_component_ctx_t *ctx;   /* borrowed for the target's lifetime */
	cw_cachedb_t *db;
	cw_apply_loop_t *loop;
	cw_entity_t *entities;           /* the hub's entities (deleted ones too) */
	size_t nentities;
	int64_t refreshed_ms;            /* when the list was last read; 0 = never */
	int64_t position;                /* the global position last loaded or stored */
	bool verify;                     /* open (and so quick_check) every cache at the next refresh */
	source_order_t *orders;          /* dynamic entities' source column order, owned */
	size_t norders;
	char labels[160];
} sqlite_target_t;

/* How often a dynamic entity whose source column order is not in the hub yet asks again. */
#define ORDER_RETRY_MS 5000

/* Loads entity's source column order from the hub (metadata
 * "table_columns:<entity>", written by a PostgreSQL source's scan) unless
 * known; force reads it again (a new generation may have new columns). */
static const source_order_t *load_source_order(sqlite_target_t *t, cw_hub_t *hub,
                                               const cw_entity_t *entity, bool force)
{
	if (hub == NULL || entity->ncolumns > 0 || entity->table == NULL)
		return NULL;
	source_order_t *order = NULL;
	for (size_t i = 0; i < t->norders && order == NULL; i++)
		if (strcmp(t->orders[i].entity, entity->name) == 0)
			order = &t->orders[i];
	int64_t now = cw_clock_now_ms(cw_clock_system());
	/* Until the cache has its first columns the order decides all of them: ask every time. */
	const cw_cache_t *cache = cw_cachedb_find(t->db, entity->name);
	bool fresh = cache == NULL || cache->ncolumns == 0;
	if (!force && order != NULL &&
	    (order->nnames > 0 || (!fresh && now - order->checked_ms < ORDER_RETRY_MS)))
		return order;
	if (order == NULL) {
		t->orders = cw_xrealloc(t->orders, (t->norders + 1) * sizeof *t->orders);
		order = &t->orders[t->norders++];
		memset(order, 0, sizeof *order);
		order->entity = cw_xstrdup(entity->name);
	}
	order->checked_ms = now;
	for (size_t i = 0; i < order->nnames; i++)
		free(order->names[i]);
	free(order->names);
	order->names = NULL;
	order->nnames = 0;
	char *key = cw_xasprintf("table_columns:%s", entity->name), *json = NULL;
	if (cw_metadata_get(hub, key, &json, NULL) == 0) {
		json_t *names = json_loads(json, 0, NULL);
		size_t n = json_is_array(names) ? json_array_size(names) : 0;
		order->names = cw_xcalloc(n + 1, sizeof *order->names);
		for (size_t i = 0; i < n; i++)
			if (json_is_string(json_array_get(names, i)))
				order->names[order->nnames++] =
					cw_xstrdup(json_string_value(json_array_get(names, i)));
		json_decref(names);
	}
	free(json);
	free(key);
	return order;
}

static const source_order_t *find_source_order(const sqlite_target_t *t, const char *name)
{
	for (size_t i = 0; i < t->norders; i++)
		if (strcmp(t->orders[i].entity, name) == 0)
			return &t->orders[i];
	return NULL;
}

static int refresh_entities(sqlite_target_t *t, cw_hub_t *hub, cw_err_t *err)
{
	cw_entity_t *entities = NULL;
	size_t count = 0;
	if (cw_entity_store_list(hub, true, &entities, &count, err) != 0)
		return CW_EDB;
	cw_entity_store_list_free(t->entities, t->nentities);
	t->entities = entities;
	t->nentities = count;
	t->refreshed_ms = cw_clock_now_ms(cw_clock_system());
	return 0;
}

static const cw_entity_t *find_entity(const sqlite_target_t *t, const char *name)
{
	for (size_t i = 0; i < t->nentities; i++)
		if (strcmp(t->entities[i].name, name) == 0)
			return &t->entities[i];
	return NULL;
}

static int entity_open(void *self, cw_hub_t *hub, const char *name, int64_t position,
                       cw_apply_entity_state_t *state, cw_err_t *err)
{
	sqlite_target_t *t = self;
	if (!cw_component_wants(t->ctx, name))
		return CW_ENOTFOUND;
	const cw_entity_t *entity = find_entity(t, name);
	if (entity == NULL && hub != NULL) {   /* added since the last refresh */
		if (refresh_entities(t, hub, err) != 0)
			return CW_EDB;
		entity = find_entity(t, name);
	}
	if (entity == NULL || entity->status == CW_ENTITY_DELETED)
		return CW_ENOTFOUND;
	load_source_order(t, hub, entity, false);
	bool was_open = cw_cachedb_find(t->db, name) != NULL, recreated = false;
	cw_cache_t *cache = NULL;
	int rc = cw_cachedb_acquire(t->db, entity, &cache, &recreated, err);
	if (rc != 0)
		return rc;
	if (!was_open || recreated)
		cache->caught_up = cache->applied >= position;
	state->applied = cache->applied;
	state->caught_up = cache->caught_up;
	return 0;
}

static int apply(void *self, const char *name, const cw_write_list_t *writes, int64_t upto,
                 bool caught_up, bool *lost, cw_err_t *err)
{
	sqlite_target_t *t = self;
	const cw_entity_t *entity = find_entity(t, name);
	cw_cache_t *cache = NULL;
	bool corrupt = false;
	*lost = false;
	if (entity == NULL)
		return cw_err_set(err, CW_EINTERNAL, COMPONENT, "entity \"%s\" vanished", name);
	int rc = cw_cachedb_acquire(t->db, entity, &cache, NULL, err);
	if (rc != 0)
		return rc;
	const source_order_t *order = find_source_order(t, name);
	cache->source_order = order != NULL ? order->names : NULL;
	cache->nsource_order = order != NULL ? order->nnames : 0;
	rc = cw_cache_apply(cache, writes, upto, &corrupt, err);
	if (rc != 0 && corrupt) {
		rc = cw_cachedb_recreate(t->db, entity, err->message, err);
		*lost = rc == 0;
		return rc;
	}
	if (rc != 0) {
		cw_cachedb_forget(t->db, name);   /* reopened from its file on the next try */
		return rc;
	}
	cw_cachedb_committed(t->db, cache);
	if (caught_up)
		cache->caught_up = true;
	return 0;
}

static int load_position(void *self, int64_t *position, cw_err_t *err)
{
	sqlite_target_t *t = self;
	int rc = cw_cachedb_position_get(t->db, position, err);
	if (rc == 0)
		t->position = *position;
	return rc;
}

static int store_position(void *self, int64_t position, cw_err_t *err)
{
	sqlite_target_t *t = self;
	int rc = cw_cachedb_position_set(t->db, position, err);
	if (rc == 0)
		t->position = position;
	return rc;
}

/*
 * Drops deleted entities' caches; recreates caches whose file went away;
 * creates new ones. With t->verify, also opens (and so checks) every
 * existing cache not open yet.
 */
static int sync_entities(sqlite_target_t *t, cw_apply_loop_t *loop, cw_err_t *err)
{
	for (size_t i = 0; i < t->nentities; i++) {
		const cw_entity_t *entity = &t->entities[i];
		if (!cw_component_wants(t->ctx, entity->name))
			continue;
		if (entity->status == CW_ENTITY_DELETED) {
			bool removed = false;
			int rc = cw_cachedb_drop(t->db, entity->name, &removed, err);
			if (rc != 0)
				return rc;
			cw_apply_loop_forget(loop, entity->name);
			if (removed)
				cw_log_kv(CW_LOG_INFO, COMPONENT, "entity deleted: cache removed", "target",
				          t->name, "entity", entity->name, NULL);
			continue;
		}
		cw_cache_t *cache = cw_cachedb_find(t->db, entity->name);
		bool was_open = cache != NULL;
		if (!was_open && !t->verify && cw_cachedb_file_exists(t->db, entity->name))
			continue;   /* opened when its changes come; checked then */
		int64_t last_used = cache != NULL ? cache->last_used_ms : 0;
		bool recreated = false;
		int rc = cw_cachedb_acquire(t->db, entity, &cache, &recreated, err);
		if (rc != 0)
			return rc;
		if (last_used != 0)
			cache->last_used_ms = last_used;   /* a check is not a use: keep idle timing */
		if (!was_open && !recreated)
			cache->caught_up = cache->applied >= t->position;
		if (recreated)
			cache->caught_up = false;
		if (!cache->caught_up)
			cw_apply_loop_replay(loop, entity->name);
	}
	t->verify = false;
	return 0;
}

/*
 * After a cache applied a new generation's sweep, its dynamic columns are
 * matched to the source table's columns of that generation: a column
 * dropped or renamed at the source leaves the cache (docs/sources-postgres.md,
 * "Schema changes").
 */
static int match_columns(sqlite_target_t *t, cw_hub_t *hub, cw_err_t *err)
{
	for (size_t i = 0; i < t->nentities; i++) {
		const cw_entity_t *entity = &t->entities[i];
		cw_cache_t *cache = entity->status == CW_ENTITY_DELETED ? NULL
		                    : cw_cachedb_find(t->db, entity->name);
		if (cache == NULL || !cache->dynamic || cache->swept_version <= cache->columns_version)
			continue;
		const source_order_t *order = load_source_order(t, hub, entity, true);
		cw_buf_t handled = CW_BUF_INIT;
		int rc = order == NULL ? 0 : cw_cache_drop_columns_outside(cache, order->names,
		                                                           order->nnames, &handled, err);
		if (rc == 0 && handled.len > 0)
			cw_log_kv(CW_LOG_INFO, COMPONENT, "cache columns gone from the source table removed",
			          "target", t->name, "entity", entity->name, "columns",
			          cw_buf_cstr(&handled), NULL);
		cw_buf_free(&handled);
		if (rc != 0)
			return rc;
		cache->columns_version = cache->swept_version;
	}
	return 0;
}

static int housekeep(void *self, cw_apply_loop_t *loop, cw_hub_t *hub, cw_err_t *err)
{
	sqlite_target_t *t = self;
	int64_t now = cw_clock_now_ms(cw_clock_system());
	if (t->refreshed_ms == 0 || now - t->refreshed_ms >= REFRESH_MS) {
		int rc = refresh_entities(t, hub, err);
		if (rc == 0)
			rc = sync_entities(t, loop, err);
		if (rc != 0)
			return rc;
	}
	int rc = match_columns(t, hub, err);
	if (rc != 0)
		return rc;
	cw_cachedb_close_idle(t->db, now);
	cw_metrics_gauge_set(t->ctx->metrics, "cachewarp_sqlite_open_caches", t->labels,
	                     (double)cw_cachedb_open_count(t->db));
	return 0;
}

static void *sqlite_open(const cw_component_ctx_t *ctx, cw_err_t *err)
{
	const cw_target_config_t *config = cw_config_target(ctx->config, ctx->name);
	if (config == NULL)
		return cw_err_set(err, CW_EINVAL, COMPONENT, "no target \"%s\" in the configuration",
		                  ctx->name), NULL;
	if (cw_identifier_validate("target name", ctx->name, err) != 0)
		return NULL;
	if (config->dir == NULL || config->dir[0] == '\0')
		return cw_err_set(err, CW_EINVAL, COMPONENT, "target \"%s\": dir is required",
		                  ctx->name), NULL;
	sqlite_target_t *t = cw_xcalloc(1, sizeof *t);
	t->name = cw_xstrdup(ctx->name);
	t->ctx = ctx;
	snprintf(t->labels, sizeof t->labels, "target=\"%s\"", ctx->name);
	t->db = cw_cachedb_open(config->dir, config->idle_timeout_ms, err);
	if (t->db != NULL)
		cw_cachedb_set_decimal_mode(t->db, config->decimal_handling);
	if (t->db == NULL) {
		free(t->name);
		free(t);
		return NULL;
	}
	cw_metrics_declare(ctx->metrics, "cachewarp_sqlite_open_caches", CW_METRIC_GAUGE,
	                   "SQLite caches with an open connection.");
	cw_apply_sink_t sink = {t, load_position, store_position, entity_open, apply, housekeep};
	cw_apply_loop_opts_t opts = {
		.consumer = ctx->name,
		.hub_url = ctx->config->hub.url,
		.entities = ctx->entities,
		.nentities = ctx->nentities,
		.batch_size = (size_t)ctx->config->apply.batch_size,
		.poll_interval_ms = ctx->config->apply.poll_interval_ms,
		.heartbeat_ms = 1000,
		.metrics = ctx->metrics,
	};
	t->loop = cw_apply_loop_new(&opts, &sink);
	return t;
}

static int sqlite_run(void *self, cw_cancel_t *cancel, cw_err_t *err)
{
	sqlite_target_t *t = self;
	t->refreshed_ms = 0;
	t->verify = true;
	return cw_apply_loop_run(t->loop, cancel, err);
}

static void sqlite_status(void *self, cw_component_status_t *out)
{
	sqlite_target_t *t = self;
	cw_apply_loop_status(t->loop, out);
}

static void sqlite_close(void *self)
{
	sqlite_target_t *t = self;
	if (t == NULL)
		return;
	cw_apply_loop_free(t->loop);
	cw_cachedb_close(t->db);
	cw_entity_store_list_free(t->entities, t->nentities);
	for (size_t i = 0; i < t->norders; i++) {
		for (size_t k = 0; k < t->orders[i].nnames; k++)
			free(t->orders[i].names[k]);
		free(t->orders[i].names);
		free(t->orders[i].entity);
	}
	free(t->orders);
	free(t->name);
	free(t);
}

const cw_target_ops_t cw_sqlite_target_ops = {
	.type = "sqlite",
	.open = sqlite_open,
	.run = sqlite_run,
	.status = sqlite_status,
	.close = sqlite_close,
};
