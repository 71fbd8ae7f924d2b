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
/* How often housekeeping checks an open cache's file. */
#define CHECK_MS 1000

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

static int entity_open(void *self, cw_hub_t *hub, const cw_entity_t *entity, int64_t *applied,
                       cw_err_t *err)
{
	sqlite_target_t *t = self;
	load_source_order(t, hub, entity, false);
	cw_cache_t *cache = NULL;
	int rc = cw_cachedb_acquire(t->db, entity, &cache, NULL, err);
	if (rc == 0)
		*applied = cache->applied;
	return rc;
}

static int entity_drop(void *self, const char *entity, bool *removed, cw_err_t *err)
{
	sqlite_target_t *t = self;
	return cw_cachedb_drop(t->db, entity, removed, err);
}

static int apply(void *self, const cw_entity_t *entity, const cw_write_list_t *writes,
                 int64_t upto, bool *lost, cw_err_t *err)
{
	sqlite_target_t *t = self;
	cw_cache_t *cache = NULL;
	bool corrupt = false, recreated = false;
	*lost = false;
	int rc = cw_cachedb_acquire(t->db, entity, &cache, &recreated, err);
	if (rc != 0)
		return rc;
	if (recreated) {   /* its file went away while it was closed: replayed from empty */
		*lost = true;
		return 0;
	}
	const source_order_t *order = find_source_order(t, entity->name);
	cache->source_order = order != NULL ? order->names : NULL;
	cache->nsource_order = order != NULL ? order->nnames : 0;
	rc = cw_cache_apply(cache, writes, upto, &corrupt, err);
	if (rc != 0 && corrupt) {
		rc = cw_cachedb_recreate(t->db, entity, err->message, err);
		*lost = rc == 0;
		return rc;
	}
	if (rc != 0) {
		cw_cachedb_forget(t->db, entity->name);   /* reopened from its file on the next try */
		return rc;
	}
	cw_cachedb_committed(t->db, cache);
	return 0;
}

static int load_position(void *self, int64_t *position, cw_err_t *err)
{
	sqlite_target_t *t = self;
	return cw_cachedb_position_get(t->db, position, err);
}

static int store_position(void *self, int64_t position, cw_err_t *err)
{
	sqlite_target_t *t = self;
	return cw_cachedb_position_set(t->db, position, err);
}

/*
 * After a cache applied a new generation's sweep, its dynamic columns are
 * matched to the source table's columns of that generation: a column
 * dropped or renamed at the source leaves the cache (docs/sources-postgres.md,
 * "Schema changes").
 */
static int match_columns(sqlite_target_t *t, const cw_apply_loop_t *loop, cw_hub_t *hub,
                         cw_cache_t *cache, cw_err_t *err)
{
	const cw_entity_t *entity = cw_apply_loop_entity(loop, cache->name);
	if (entity == NULL || !cache->dynamic || cache->swept_version <= cache->columns_version)
		return 0;
	const source_order_t *order = load_source_order(t, hub, entity, true);
	cw_buf_t handled = CW_BUF_INIT;
	int rc = order == NULL ? 0 : cw_cache_drop_columns_outside(cache, order->names,
	                                                           order->nnames, &handled, err);
	if (rc == 0 && handled.len > 0)
		cw_log_kv(CW_LOG_INFO, COMPONENT, "cache columns gone from the source table removed",
		          "target", t->name, "entity", entity->name, "columns", cw_buf_cstr(&handled),
		          NULL);
	cw_buf_free(&handled);
	if (rc == 0)
		cache->columns_version = cache->swept_version;
	return rc;
}

/*
 * Each open cache: the source column order is read while the hub has none
 * yet; a file gone or replaced is recreated and its entity replayed; a
 * dynamic table follows the source table's columns after a sweep. Then idle
 * caches are closed.
 */
static int housekeep(void *self, cw_apply_loop_t *loop, cw_hub_t *hub, cw_err_t *err)
{
	sqlite_target_t *t = self;
	int64_t now = cw_clock_now_ms(cw_clock_system());
	for (size_t i = 0; i < cw_cachedb_open_count(t->db); i++) {
		cw_cache_t *cache = cw_cachedb_open_cache(t->db, i);
		const cw_entity_t *entity = cw_apply_loop_entity(loop, cache->name);
		if (entity == NULL)
			continue;
		/* Before its first row: the order decides where every column goes. */
		load_source_order(t, hub, entity, false);
		if (now - cache->checked_ms < CHECK_MS)
			continue;
		int64_t last_used = cache->last_used_ms;
		bool recreated = false;
		int rc = cw_cachedb_acquire(t->db, entity, &cache, &recreated, err);
		if (rc != 0)
			return rc;
		cache->last_used_ms = last_used;   /* a check is not a use: keep idle timing */
		cache->checked_ms = now;
		if (recreated)
			cw_apply_loop_entity_lost(loop, entity->name);
		else if ((rc = match_columns(t, loop, hub, cache, err)) != 0)
			return rc;
	}
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
	cw_cachedb_t *db = cw_cachedb_open(config->dir, config->idle_timeout_ms, err);
	if (db == NULL)
		return NULL;
	cw_cachedb_set_decimal_mode(db, config->decimal_handling);
	sqlite_target_t *t = cw_xcalloc(1, sizeof *t);
	t->name = cw_xstrdup(ctx->name);
	t->ctx = ctx;
	t->db = db;
	snprintf(t->labels, sizeof t->labels, "target=\"%s\"", ctx->name);
	cw_metrics_declare(ctx->metrics, "cachewarp_sqlite_open_caches", CW_METRIC_GAUGE,
	                   "SQLite caches with an open connection.");
	return t;
}

static void sqlite_close(void *self)
{
	sqlite_target_t *t = self;
	if (t == NULL)
		return;
	cw_cachedb_close(t->db);
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

const cw_target_backend_t cw_sqlite_backend = {
	.type = "sqlite",
	.open = sqlite_open,
	.close = sqlite_close,
	.load_position = load_position,
	.store_position = store_position,
	.entity_open = entity_open,
	.entity_drop = entity_drop,
	.apply = apply,
	.housekeep = housekeep,
};
