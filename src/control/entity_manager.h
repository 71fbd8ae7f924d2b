/*
 * This file contains the entity manager: the one place that decides what may
 * happen to an entity (DESIGN.md §2). The CLI (`cachewarp entity ...`), the
 * REST API and `cachewarp run` all call these functions, which check the
 * request against the configuration (the source must exist and be of the
 * right kind) before the hub's entity store (hub/entity_store.h) stores it.
 *
 * The registry is the running process's view of the hub's entities: the
 * entity refresh job reloads it so every process sees entities added,
 * deleted or refreshed by another one.
 *
 * THREAD SAFETY: the functions taking a hub use that hub's connection (one
 * thread at a time). The registry is guarded by its own mutex.
 */
#ifndef CW_CONTROL_ENTITY_MANAGER_H
#define CW_CONTROL_ENTITY_MANAGER_H

#include "core/config.h"
#include "core/entity.h"
#include "core/err.h"
#include "core/json.h"
#include "hub/hub.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Checks entity (borrowed) against config: a known source, a collection for
 * a MongoDB source, a table for a PostgreSQL one, and a valid shape.
 * 0 or CW_EINVAL with a message saying what to fix.
 */
int cw_entity_manager_check(const cw_config_t *config, const cw_entity_t *entity, cw_err_t *err);

/*
 * Checks a new entity (borrowed) against its source server (see
 * cw_source_check_entity): 0, or CW_EINVAL with what to fix (a missing
 * table, one without a key). A source that cannot be reached is not a
 * refusal: that is logged and 0 returned, and the running source marks the
 * entity failed if its table is unusable. Used by POST /v1/entities and
 * `cachewarp entity add`, not for the configuration file's entities.
 */
int cw_entity_manager_check_source(const cw_config_t *config, const cw_entity_t *entity,
                                   cw_err_t *err);

/* cw_entity_manager_check, then stores the entity (see cw_entity_store_upsert). */
int cw_entity_manager_add(cw_hub_t *hub, const cw_config_t *config, const cw_entity_t *entity,
                          bool *created, cw_err_t *err);

/*
 * Upserts every entity of the configuration file (origin file), logging
 * the ones it creates, then pauses the file's entities it no longer lists
 * and resumes the paused ones it lists again (control/entity_pause.h).
 * Stops at the first error (a changed shape is CW_ECONFLICT).
 */
int cw_entity_manager_sync_config(cw_hub_t *hub, const cw_config_t *config, cw_err_t *err);

/*
 * Hard refresh: a new generation (version + 1) and status pending, so the
 * capture scans the entity again and targets sweep what the scan did not
 * see. *version (optional) receives the new generation. CW_ENOTFOUND,
 * CW_ECONFLICT for a paused entity (resuming it scans it afresh), CW_EDB.
 */
int cw_entity_manager_refresh(cw_hub_t *hub, const char *name, int64_t *version, cw_err_t *err);

/* Marks the entity deleted (targets drop its data). CW_ENOTFOUND, CW_EDB. */
int cw_entity_manager_delete(cw_hub_t *hub, const char *name, cw_err_t *err);

/*
 * Writes entity as the JSON object the REST API and `cachewarp entity show`
 * print: name, source, collection or table, columns [{name, type, path}],
 * status (cw_entity_shown_status: "paused" for a paused entity, then with
 * paused_reason and paused_at), origin ("file", "api" or null), version.
 */
void cw_entity_manager_write_json(cw_json_t *w, const cw_entity_t *entity);

#endif
