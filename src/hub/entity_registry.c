/* This file contains the entity registry (entity_registry.h). */
#include "hub/entity_registry.h"

#include "core/log.h"
#include "core/mem.h"
#include "hub/entity_store.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMPONENT "entities"

struct cw_entity_registry {
	/*
	 * Held across a reload's hub read and store, so reloads store in the
	 * order they read and the registry never goes back to an older view.
	 */
	pthread_mutex_t reload_mutex;
	pthread_mutex_t mutex;
	cw_entity_t *entities;    /* guarded by mutex */
	size_t count;
	uint64_t epoch;           /* raised by cw_entity_registry_invalidate; guarded by mutex */
	uint64_t loaded_epoch;    /* the epoch the stored view was read in */
	bool loaded;
};

cw_entity_registry_t *cw_entity_registry_new(void)
{
	cw_entity_registry_t *registry = cw_xcalloc(1, sizeof *registry);
	pthread_mutex_init(&registry->reload_mutex, NULL);
	pthread_mutex_init(&registry->mutex, NULL);
	return registry;
}

void cw_entity_registry_free(cw_entity_registry_t *registry)
{
	if (registry == NULL)
		return;
	cw_entity_store_list_free(registry->entities, registry->count);
	pthread_mutex_destroy(&registry->mutex);
	pthread_mutex_destroy(&registry->reload_mutex);
	free(registry);
}

static const cw_entity_t *find(const cw_entity_t *entities, size_t count, const char *name)
{
	for (size_t i = 0; i < count; i++)
		if (strcmp(entities[i].name, name) == 0)
			return &entities[i];
	return NULL;
}

static void log_change(const cw_entity_t *entity, const char *what)
{
	char version[24];
	snprintf(version, sizeof version, "%lld", (long long)entity->version);
	cw_log_kv(CW_LOG_INFO, COMPONENT, what, "entity", entity->name, "status",
	          cw_entity_status_name(entity->status), "version", version, NULL);
}

int cw_entity_registry_reload(cw_entity_registry_t *registry, cw_hub_t *hub, size_t *changes,
                              cw_err_t *err)
{
	cw_entity_t *fresh = NULL;
	size_t nfresh = 0;
	pthread_mutex_lock(&registry->reload_mutex);
	pthread_mutex_lock(&registry->mutex);
	uint64_t epoch = registry->epoch;
	pthread_mutex_unlock(&registry->mutex);
	int rc = cw_entity_store_list(hub, true, &fresh, &nfresh, err);
	if (rc != 0) {
		pthread_mutex_unlock(&registry->reload_mutex);
		return rc;
	}
	pthread_mutex_lock(&registry->mutex);
	size_t n = 0;
	for (size_t i = 0; i < nfresh && registry->loaded; i++) {
		const cw_entity_t *old = find(registry->entities, registry->count, fresh[i].name);
		if (old == NULL) {
			log_change(&fresh[i], "entity appeared");
			n++;
		} else if (old->status != fresh[i].status || old->version != fresh[i].version) {
			log_change(&fresh[i], "entity changed");
			n++;
		}
	}
	for (size_t i = 0; i < registry->count; i++) {
		if (find(fresh, nfresh, registry->entities[i].name) == NULL) {
			log_change(&registry->entities[i], "entity removed from the hub");
			n++;
		}
	}
	cw_entity_store_list_free(registry->entities, registry->count);
	registry->entities = fresh;
	registry->count = nfresh;
	registry->loaded = true;
	registry->loaded_epoch = epoch;
	pthread_mutex_unlock(&registry->mutex);
	pthread_mutex_unlock(&registry->reload_mutex);
	if (changes != NULL)
		*changes = n;
	return 0;
}

void cw_entity_registry_snapshot(cw_entity_registry_t *registry, cw_entity_t **entities,
                                 size_t *count)
{
	pthread_mutex_lock(&registry->mutex);
	*count = registry->count;
	*entities = registry->count ? cw_xcalloc(registry->count, sizeof **entities) : NULL;
	for (size_t i = 0; i < registry->count; i++)
		cw_entity_copy(&(*entities)[i], &registry->entities[i]);
	pthread_mutex_unlock(&registry->mutex);
}

int cw_entity_registry_list(cw_entity_registry_t *registry, cw_hub_t *hub, bool fresh,
                            cw_entity_t **entities, size_t *count, cw_err_t *err)
{
	if (registry == NULL)
		return cw_entity_store_list(hub, true, entities, count, err);
	bool current;
	pthread_mutex_lock(&registry->mutex);
	current = registry->loaded && registry->loaded_epoch == registry->epoch;
	pthread_mutex_unlock(&registry->mutex);
	if (fresh || !current) {
		int rc = cw_entity_registry_reload(registry, hub, NULL, err);
		if (rc != 0)
			return rc;
	}
	cw_entity_registry_snapshot(registry, entities, count);
	return 0;
}

void cw_entity_registry_invalidate(cw_entity_registry_t *registry)
{
	if (registry == NULL)
		return;
	pthread_mutex_lock(&registry->mutex);
	registry->epoch++;
	pthread_mutex_unlock(&registry->mutex);
}
