/*
 * This file contains the entity registry: the daemon's copy of the hub's
 * entities (deleted ones included), read once for every component instead
 * of each source and target asking the hub on its own. The daemon reloads it
 * every second (control/daemon.c) and hands it to the components
 * (core/component.h); a component that meets an entity the registry does not
 * know yet reloads it at once on its own hub connection, so nothing written
 * for a new entity is ever taken for an unknown one.
 *
 * THREAD SAFETY: every function may be called from any thread (one mutex,
 * held for a copy; reloads run one at a time, each storing what it read).
 */
#ifndef CW_HUB_ENTITY_REGISTRY_H
#define CW_HUB_ENTITY_REGISTRY_H

#include "core/entity.h"
#include "core/err.h"
#include "hub/hub.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct cw_entity_registry cw_entity_registry_t;

/* A new, empty registry (owned by the caller). */
cw_entity_registry_t *cw_entity_registry_new(void);
void cw_entity_registry_free(cw_entity_registry_t *registry);

/*
 * Reloads the registry from the hub (deleted entities included) and logs
 * each entity that appeared, changed status or generation, or went away.
 * *changes (optional) receives how many did. 0 or CW_EDB.
 */
int cw_entity_registry_reload(cw_entity_registry_t *registry, cw_hub_t *hub, size_t *changes,
                              cw_err_t *err);

/* A copy of the registry's entities (free with cw_entity_store_list_free). */
void cw_entity_registry_snapshot(cw_entity_registry_t *registry, cw_entity_t **entities,
                                 size_t *count);

/*
 * The hub's entities for a component: a copy of registry (may be NULL: then
 * read from hub), or, with fresh or after cw_entity_registry_invalidate,
 * reloaded from hub first. 0 or CW_EDB.
 */
int cw_entity_registry_list(cw_entity_registry_t *registry, cw_hub_t *hub, bool fresh,
                            cw_entity_t **entities, size_t *count, cw_err_t *err);

/*
 * Says a component changed entity rows in the hub itself (a new generation,
 * a status): the next list, by any component, reads the hub again, so no
 * component takes the view from before its own write for a change made
 * elsewhere. A reload that read the hub before this call does not count.
 * NULL is a no-op.
 */
void cw_entity_registry_invalidate(cw_entity_registry_t *registry);

#endif
