/*
 * This file contains the apply loop: the target component every target type
 * shares (DESIGN.md §1). A target type supplies only its backend
 * (apply/target.h). The loop registers the target as a consumer in the hub,
 * keeps the hub's entities (the --entity filter, entities deleted in the hub
 * dropped from the backend once), reads the oplog from the stored position
 * in batches (woken by LISTEN, polling as a fallback), groups each batch by
 * entity, coalesces each group (apply/coalesce.h) and hands it to the
 * backend, which applies it and records the batch's last oplog id in the
 * same transaction; after every group of a batch is applied the backend
 * stores the global position. Metrics and status are the loop's.
 *
 * Positions. The loop keeps, per entity, the id up to which that entity's
 * changes are applied (`applied`, read from the backend when the entity is
 * opened) and whether it is *caught up*: every change of the entity up to
 * the global position is applied. The backend is called only with work:
 * once per entity per run to open it, once per group to apply. A caught-up
 * entity receives its groups from the main batches, minus the changes at or
 * below `applied` (a target that crashed between an entity's commit and the
 * global position's skips what it has). An entity that is not caught up (a
 * cache recreated after corruption, a new cache, one whose stored id is
 * behind the global position) is *replayed*: the loop reads that entity
 * alone from its own `applied` id, one page per iteration, interleaved with
 * the main batches so the other entities keep flowing, until a short page
 * shows it has reached the head. The position reported to the hub (which
 * retention honours) is the smallest of the global position and the applied
 * ids of entities being replayed.
 *
 * THREAD SAFETY: cw_apply_loop_run runs on one thread (the target's job);
 * cw_apply_loop_status may be called from any thread (one mutex, taken for a
 * copy). The backend's functions run on the run thread.
 */
#ifndef CW_APPLY_APPLY_LOOP_H
#define CW_APPLY_APPLY_LOOP_H

#include "apply/coalesce.h"
#include "apply/target.h"
#include "core/cancel.h"
#include "core/component.h"
#include "core/err.h"
#include "core/metrics.h"
#include "hub/hub.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cw_apply_loop cw_apply_loop_t;

typedef struct cw_apply_loop_opts {
	const char *consumer;            /* consumer name in the hub (the target's name); copied */
	const char *target;              /* the target's name in metric labels and logs; NULL =
	                                  * consumer (they differ for a target run with --entity) */
	const char *hub_url;             /* copied */
	const cw_auth_config_t *hub_auth;  /* hub.auth: borrowed for the loop's life; may be NULL */
	const char *const *entities;     /* --entity filter, copied; nentities 0 = all */
	size_t nentities;
	size_t batch_size;               /* oplog rows per read, > 0 */
	int64_t poll_interval_ms;        /* read at least this often when no NOTIFY came */
	int64_t heartbeat_ms;            /* consumer heartbeat at most this often; 0 = 1000 */
	int64_t refresh_ms;              /* re-read the hub's entities this often; 0 = 1000 */
	cw_metrics_t *metrics;           /* borrowed, may be NULL */
	struct cw_entity_registry *registry; /* borrowed, may be NULL: the hub's entities are read
	                                  * from the daemon's registry (hub/entity_registry.h) */
	/* Borrowed, may be NULL: the streams' settings (targets[].streams[], docs/streams.md);
	 * without them every entity flows with the defaults. */
	const struct cw_config *config;
	const struct cw_target_config *target_config;
} cw_apply_loop_opts_t;

/*
 * A loop applying to backend (borrowed, static) opened as self (owned by
 * the caller, who closes it after freeing the loop). Free with _free.
 */
cw_apply_loop_t *cw_apply_loop_new(const cw_apply_loop_opts_t *opts,
                                   const cw_target_backend_t *backend, void *self);
void cw_apply_loop_free(cw_apply_loop_t *loop);   /* NULL is a no-op */

/*
 * Connects to the hub, registers the consumer and applies until cancel
 * fires (CW_ECANCELED) or an error (returned with the callee's code: CW_EDB
 * for the hub, or the backend's). Call again after an error: it resumes from
 * the stored position, and every entity is opened again.
 */
int cw_apply_loop_run(cw_apply_loop_t *loop, cw_cancel_t *cancel, cw_err_t *err);

/*
 * For a backend's housekeep: entity's stored data was lost (recreated
 * empty); the loop opens it again and replays it from what it then holds.
 */
void cw_apply_loop_entity_lost(cw_apply_loop_t *loop, const char *entity);

/* For a backend's housekeep: the hub's entity of that name as last read, or NULL. */
const cw_entity_t *cw_apply_loop_entity(const cw_apply_loop_t *loop, const char *entity);

/* Copies the loop's status (state, healthy, lag, position, last error) into out. */
void cw_apply_loop_status(cw_apply_loop_t *loop, cw_component_status_t *out);

/* The target component (core/component.h) of every target type: a loop on its backend. */
extern const cw_component_ops_t cw_apply_target_ops;

/*
 * Groups batch (borrowed) by entity: *groups receives an array of pointers
 * into batch (owned by the caller, free()), sorted by entity, then oplog id;
 * *starts receives *ngroups + 1 offsets (owned by the caller, free()):
 * group g is (*groups)[starts[g] .. starts[g+1]). For tests and targets.
 */
void cw_apply_group_batch(const cw_change_batch_t *batch, const cw_change_t ***groups,
                          size_t **starts, size_t *ngroups);

#endif
