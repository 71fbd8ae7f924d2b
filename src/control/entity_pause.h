/*
 * This file contains the paused entity state (docs/operations.md, "Paused
 * entities"): an entity declared in the configuration file that the file no
 * longer lists is paused, at a reload and at start alike, instead of being
 * deleted with its targets' data. Its source stops capturing it, its
 * targets keep what they hold, and it resumes with a fresh scan when the
 * file lists it again or on `cachewarp entity resume`. An entity added
 * through the API or the CLI is never paused by the file.
 *
 * The decision (cw_entity_pause_decide) is pure; cw_entity_pause_sync
 * carries it out on the hub.
 *
 * THREAD SAFETY: the functions taking a hub use its connection (one thread
 * at a time); the others only read their arguments.
 */
#ifndef CW_CONTROL_ENTITY_PAUSE_H
#define CW_CONTROL_ENTITY_PAUSE_H

#include "core/config.h"
#include "core/entity.h"
#include "core/err.h"
#include "core/metrics.h"
#include "hub/hub.h"

#include <stddef.h>

/* The reason stored and shown for an entity the configuration file no longer lists. */
#define CW_ENTITY_PAUSE_REASON "removed from the configuration file"

typedef enum cw_entity_pause_action {
	CW_ENTITY_PAUSE_KEEP = 0,     /* nothing to do */
	CW_ENTITY_PAUSE_PAUSE,        /* the file no longer lists it: pause */
	CW_ENTITY_PAUSE_RESUME,       /* paused, and the file lists it again: resume */
} cw_entity_pause_action_t;

/*
 * What config (the file in force, borrowed) means for stored (an entity of
 * the hub, borrowed). PAUSE: not deleted, not paused, origin file, not in
 * the file, and its source is configured in the file (a process whose file
 * has other sources leaves that entity to the process that owns them).
 * RESUME: paused and listed in the file. KEEP otherwise: deleted, added
 * through the API/CLI, of unknown origin, or already as the file says.
 */
cw_entity_pause_action_t cw_entity_pause_decide(const cw_config_t *config,
                                                const cw_entity_t *stored);

/*
 * Carries out cw_entity_pause_decide for every entity of the hub, logging
 * each pause (with how to undo it) and each resume. Called after the
 * file's entities were stored (cw_entity_manager_sync_config). Stops at
 * the first hub error: CW_EDB.
 */
int cw_entity_pause_sync(cw_hub_t *hub, const cw_config_t *config, cw_err_t *err);

/*
 * `cachewarp entity resume` and POST /v1/entities/{name}/resume: resumes a
 * paused entity with a fresh scan (cw_entity_store_resume). When config
 * (borrowed) does not list it, it becomes an entity of the API: the file no
 * longer pauses it. *version (optional) receives the new generation.
 * CW_ENOTFOUND, CW_ECONFLICT (not paused), CW_EDB.
 */
int cw_entity_pause_resume(cw_hub_t *hub, const cw_config_t *config, const char *name,
                           int64_t *version, cw_err_t *err);

/*
 * Sets cachewarp_entity_paused{entity,source} to 1 for each paused entity
 * of entities (borrowed, n of them) and to 0 for the others, declaring it
 * on first use.
 */
void cw_entity_pause_publish(cw_metrics_t *metrics, const cw_entity_t *entities, size_t n);

#endif
