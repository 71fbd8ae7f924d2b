/*
 * This file contains the entity store: the entities the hub knows
 * (cachewarp.entities), their shape, status (pending -> scanning -> live,
 * deleted) and generation (version). Entities from the configuration file
 * are upserted on startup; the CLI and the REST API add, delete and refresh
 * them at runtime, and every process sees the same set.
 *
 * Shapes are immutable: upserting an entity whose stored shape differs is a
 * conflict. Validation is cw_entity_validate's (core/entity.h).
 */
#ifndef CW_HUB_ENTITY_STORE_H
#define CW_HUB_ENTITY_STORE_H

#include "core/entity.h"
#include "core/err.h"
#include "hub/hub.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Validates entity (borrowed) and stores it when the hub does not have it,
 * with its status, version (version < 1 is stored as 1) and origin; *created
 * (optional) tells whether it was stored. An entity already present with the
 * same shape is left as it is (0, *created false), except a deleted one,
 * which comes back with entity's status and the next version (*created
 * true: it needs a new scan, not paused, with entity's origin). An entity
 * stored without an origin takes entity's. A paused one stays paused. A
 * different shape is CW_ECONFLICT:
 * `entity "products" already exists with a different shape; shapes are
 * immutable: create a new entity under another name`. Also CW_EINVAL, CW_EDB.
 */
int cw_entity_store_upsert(cw_hub_t *hub, const cw_entity_t *entity, bool *created,
                           cw_err_t *err);

/* Reads entity name into *out (overwritten; cw_entity_clear it). CW_ENOTFOUND, CW_EDB. */
int cw_entity_store_get(cw_hub_t *hub, const char *name, cw_entity_t *out, cw_err_t *err);

/*
 * Every entity, by name, deleted ones only when include_deleted. *entities
 * receives an array of *count entities owned by the caller (free with
 * cw_entity_store_list_free); NULL and 0 for none. 0 or CW_EDB.
 */
int cw_entity_store_list(cw_hub_t *hub, bool include_deleted, cw_entity_t **entities,
                         size_t *count, cw_err_t *err);
void cw_entity_store_list_free(cw_entity_t *entities, size_t count);

/*
 * Marks the entity deleted and drops its staged changes, in one transaction
 * under the oplog lock (so no writer stages a change for it afterwards).
 * CW_ENOTFOUND, CW_EDB. Deleting a deleted entity is 0.
 */
int cw_entity_store_delete(cw_hub_t *hub, const char *name, cw_err_t *err);

/*
 * Sets the entity's status. To go live after a scan with changes staged,
 * use cw_oplog_promote_staged (hub/oplog_writer.h) instead, which moves them.
 * CW_ENOTFOUND, CW_EDB.
 */
int cw_entity_store_set_status(cw_hub_t *hub, const char *name, cw_entity_status_t status,
                               cw_err_t *err);

/*
 * Starts a new generation (hard refresh): version + 1, returned in
 * *version (optional). The status is not changed. CW_ENOTFOUND (also for a
 * deleted entity), CW_EDB.
 */
int cw_entity_store_bump_version(cw_hub_t *hub, const char *name, int64_t *version,
                                 cw_err_t *err);

/*
 * Pauses the entity with reason (borrowed): sources stop capturing it,
 * targets keep its data. Its staged changes are dropped in the same
 * transaction, under the oplog lock. CW_ENOTFOUND (also for a deleted
 * entity), CW_ECONFLICT when it is paused already, CW_EDB.
 */
int cw_entity_store_pause(cw_hub_t *hub, const char *name, const char *reason, cw_err_t *err);

/*
 * Resumes a paused entity as a new generation (version + 1, returned in
 * *version, optional) with status pending, so its source scans it again and
 * targets sweep the rows deleted while it was paused. origin, unless
 * CW_ENTITY_ORIGIN_UNKNOWN, replaces the stored one. Staged changes are
 * dropped. CW_ENOTFOUND (also for a deleted entity), CW_ECONFLICT when it
 * is not paused, CW_EDB.
 */
int cw_entity_store_resume(cw_hub_t *hub, const char *name, cw_entity_origin_t origin,
                           int64_t *version, cw_err_t *err);

#endif
