/*
 * This file contains the PostgreSQL source's entities (postgres_internal.h):
 * which of the hub's entities the stream worker or the batch poller
 * captures, each one's table and projection, their reload from the hub
 * (new and refreshed entities scanned), and the failed ones published in
 * the status and the cachewarp_entity_failed gauge.
 */
#include "capture/postgres_internal.h"

#include "core/log.h"
#include "core/mem.h"
#include "hub/entity_registry.h"
#include "hub/entity_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t pg_entities_of(cw_pg_source_t *src, const char *nspname, const char *relname,
                      size_t *idx, size_t cap)
{
	size_t n = 0;
	for (size_t i = 0; i < src->nents && n < cap; i++)
		if (!src->ents[i].failed && strcmp(src->ents[i].nspname, nspname) == 0 &&
		    strcmp(src->ents[i].relname, relname) == 0)
			idx[n++] = i;
	return n;
}

static void entity_free(pg_entity_t *ent)
{
	cw_projection_free(ent->proj);
	cw_entity_clear(&ent->entity);
}

void pg_entities_free(cw_pg_source_t *src)
{
	for (size_t i = 0; i < src->nents; i++)
		entity_free(&src->ents[i]);
	free(src->ents);
	src->ents = NULL;
	src->nents = 0;
}

/*
 * Fills ent from entity (copied): table parsed into the catalog's schema and
 * name (quotes removed), projection compiled.
 */
static int entity_init(pg_entity_t *ent, const cw_entity_t *entity, cw_err_t *err)
{
	memset(ent, 0, sizeof *ent);
	if (cw_entity_table_parse(entity->table, ent->nspname, ent->relname, err) != 0) {
		cw_err_prefix(err, "entity \"%s\"", entity->name);
		return CW_EINVAL;
	}
	if (entity->ncolumns > 0) {
		ent->proj = cw_projection_new(entity, CW_PROJECTION_DEFAULT, err);
		if (ent->proj == NULL)
			return CW_EINVAL;
	}
	cw_entity_copy(&ent->entity, entity);
	return 0;
}

bool pg_entity_is_batch(const cw_component_ctx_t *ctx, const char *entity)
{
	const cw_entity_t *configured = cw_config_entity(ctx->config, entity);
	return configured != NULL && configured->mode == CW_ENTITY_MODE_BATCH;
}

static bool entity_is_mine(const cw_pg_source_t *src, const cw_entity_t *entity)
{
	return cw_entity_is_captured(entity) && entity->table != NULL &&
	       strcmp(entity->source, src->cfg->name) == 0 &&
	       cw_component_wants(src->ctx, entity->name) &&
	       pg_entity_is_batch(src->ctx, entity->name) == src->polls_batch;
}

static const pg_entity_t *find_entity(const cw_pg_source_t *src, const char *name)
{
	for (size_t i = 0; i < src->nents; i++)
		if (strcmp(src->ents[i].entity.name, name) == 0)
			return &src->ents[i];
	return NULL;
}

static void set_failed_gauge(cw_pg_source_t *src, const char *entity, double value)
{
	char labels[200];
	snprintf(labels, sizeof labels, "entity=\"%s\",source=\"%s\"", entity, src->cfg->name);
	cw_metrics_gauge_set(src->ctx->metrics, "cachewarp_entity_failed", labels, value);
}

void pg_failed_gauges_free(cw_pg_source_t *src)
{
	for (size_t i = 0; i < src->ngauged_failed; i++)
		free(src->gauged_failed[i]);
	free(src->gauged_failed);
	src->gauged_failed = NULL;
	src->ngauged_failed = 0;
}

void pg_publish_failed(cw_pg_source_t *src)
{
	/* Entities no longer failed (recovered, deleted) drop to 0 in the gauge. */
	for (size_t i = 0; i < src->ngauged_failed; i++) {
		const pg_entity_t *ent = find_entity(src, src->gauged_failed[i]);
		if (ent == NULL || !ent->failed)
			set_failed_gauge(src, src->gauged_failed[i], 0);
	}
	pg_failed_gauges_free(src);
	src->gauged_failed = cw_xcalloc(src->nents + 1, sizeof *src->gauged_failed);
	pthread_mutex_lock(&src->mutex);
	cw_component_status_t *st = &src->status;
	st->nfailed = 0;
	for (size_t i = 0; i < src->nents; i++) {
		const pg_entity_t *ent = &src->ents[i];
		if (!ent->failed)
			continue;
		cw_component_status_add_failed(st, ent->entity.name, ent->failed_reason);
		src->gauged_failed[src->ngauged_failed++] = cw_xstrdup(ent->entity.name);
	}
	pthread_mutex_unlock(&src->mutex);
	for (size_t i = 0; i < src->ngauged_failed; i++)
		set_failed_gauge(src, src->gauged_failed[i], 1);
}

size_t pg_usable_entities(const cw_pg_source_t *src)
{
	size_t n = 0;
	for (size_t i = 0; i < src->nents; i++)
		n += !src->ents[i].failed;
	return n;
}

int pg_reload_entities(cw_pg_source_t *src, bool scan_new, cw_cancel_t *cancel, cw_err_t *err)
{
	cw_entity_t *all = NULL;
	size_t count = 0;
	int rc = cw_entity_registry_list(src->ctx->registry, src->hub, false, &all, &count, err);
	if (rc != 0)
		return rc;
	pg_entity_t *next = cw_xcalloc(count + 1, sizeof *next);
	size_t nnext = 0;
	bool *fresh = cw_xcalloc(count + 1, sizeof *fresh);
	for (size_t i = 0; i < count && rc == 0; i++) {
		if (!entity_is_mine(src, &all[i]))
			continue;
		const pg_entity_t *old = find_entity(src, all[i].name);
		/* New, or refreshed (a new version waiting in pending): scan it. */
		fresh[nnext] = old == NULL || all[i].status != CW_ENTITY_LIVE ||
		               old->entity.version != all[i].version;
		if ((rc = entity_init(&next[nnext], &all[i], err)) != 0) {
			cw_err_prefix(err, "entity \"%s\"", all[i].name);
		} else {
			/* A failure outlives the reload: the entity is checked again below. */
			if (old != NULL && old->failed) {
				next[nnext].failed = true;
				memcpy(next[nnext].failed_reason, old->failed_reason,
				       sizeof next[nnext].failed_reason);
			}
			next[nnext].rescan = old != NULL && old->rescan;
			nnext++;
		}
	}
	cw_entity_store_list_free(all, count);
	if (rc != 0) {
		for (size_t i = 0; i < nnext; i++)
			entity_free(&next[i]);
		free(next);
		free(fresh);
		return rc;
	}
	for (size_t i = 0; i < src->nents; i++) {
		bool kept = false;
		for (size_t j = 0; j < nnext && !kept; j++)
			kept = strcmp(next[j].entity.name, src->ents[i].entity.name) == 0;
		if (!kept)   /* deleted, paused, or left to another source */
			cw_log_kv(CW_LOG_INFO, PG_COMPONENT, "entity no longer captured", "source",
			          src->cfg->name, "entity", src->ents[i].entity.name, NULL);
	}
	pg_entities_free(src);
	src->ents = next;
	src->nents = nnext;
	pg_publish_failed(src);
	if (scan_new && (rc = pg_check_published(src, err)) != 0) {
		free(fresh);
		return rc;
	}
	for (size_t i = 0; i < nnext && rc == 0; i++) {
		pg_entity_t *ent = &src->ents[i];
		bool was_failed = ent->failed;
		if (!scan_new || (!fresh[i] && !was_failed))
			continue;
		/* A failed entity is scanned once its check passes; the check never bumps its version. */
		if ((rc = pg_check_entity(src, ent, err)) == 0 && !ent->failed)
			rc = pg_snapshot_entity(src, ent, cancel, err);
	}
	free(fresh);
	return rc;
}
