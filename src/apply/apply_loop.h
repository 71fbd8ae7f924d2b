/*
 * This file contains the apply loop every target shares (DESIGN.md §1): it
 * registers the target as a consumer in the hub, reads the oplog from the
 * target's stored position in batches (woken by LISTEN, polling as a
 * fallback), groups each batch by entity, coalesces each group
 * (apply/coalesce.h) and hands it to the target's sink, which applies it
 * and records the batch's last oplog id in the same transaction; after
 * every group of a batch is applied the sink stores the global position.
 *
 * Positions. The sink keeps, per entity, the id up to which that entity's
 * changes are applied (`applied`), and whether it is *caught up*: every
 * change of the entity up to the global position is applied. A caught-up
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
 * copy). The sink's callbacks run on the run thread.
 */
#ifndef CW_APPLY_APPLY_LOOP_H
#define CW_APPLY_APPLY_LOOP_H

#include "apply/coalesce.h"
#include "core/cancel.h"
#include "core/component.h"
#include "core/err.h"
#include "core/metrics.h"
#include "hub/hub.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cw_apply_loop cw_apply_loop_t;

typedef struct cw_apply_entity_state {
	int64_t applied;    /* every change of the entity up to this oplog id is applied */
	bool caught_up;     /* every change of the entity up to the global position is applied */
} cw_apply_entity_state_t;

/* What a target provides to the loop. Each callback returns 0 or a CW_E* code with err filled. */
typedef struct cw_apply_sink {
	void *self;
	/* The global position stored in the target; 0 when none. */
	int (*load_position)(void *self, int64_t *position, cw_err_t *err);
	/* Stores the global position, after every group of a batch was applied. */
	int (*store_position)(void *self, int64_t position, cw_err_t *err);
	/*
	 * Prepares entity (borrowed) for writing and fills *state; position is the
	 * global one, hub the loop's connection (borrowed for the call).
	 * CW_ENOTFOUND: the entity is not applied here (deleted, unknown): its
	 * changes are dropped.
	 */
	int (*entity_open)(void *self, cw_hub_t *hub, const char *entity, int64_t position,
	                   cw_apply_entity_state_t *state, cw_err_t *err);
	/*
	 * Applies writes (borrowed) to entity and records upto as its applied id,
	 * atomically; when caught_up, the entity is caught up afterwards. When the
	 * entity's stored data turns out lost (a corrupt file, recreated empty),
	 * the sink sets *lost, returns 0, and the loop replays the entity.
	 */
	int (*apply)(void *self, const char *entity, const cw_write_list_t *writes, int64_t upto,
	             bool caught_up, bool *lost, cw_err_t *err);
	/*
	 * Called once per iteration with the loop's hub connection (borrowed for
	 * the call): entity refresh, idle connections. May call
	 * cw_apply_loop_replay. May be NULL.
	 */
	int (*housekeep)(void *self, cw_apply_loop_t *loop, cw_hub_t *hub, cw_err_t *err);
} cw_apply_sink_t;

typedef struct cw_apply_loop_opts {
	const char *consumer;            /* consumer name in the hub (the target's name); copied */
	const char *hub_url;             /* copied */
	const char *const *entities;     /* --entity filter, copied; nentities 0 = all */
	size_t nentities;
	size_t batch_size;               /* oplog rows per read, > 0 */
	int64_t poll_interval_ms;        /* read at least this often when no NOTIFY came */
	int64_t heartbeat_ms;            /* consumer heartbeat at most this often; 0 = 1000 */
	cw_metrics_t *metrics;           /* borrowed, may be NULL */
} cw_apply_loop_opts_t;

/* A loop for sink (copied; sink->self borrowed). Free with _free. */
cw_apply_loop_t *cw_apply_loop_new(const cw_apply_loop_opts_t *opts, const cw_apply_sink_t *sink);
void cw_apply_loop_free(cw_apply_loop_t *loop);   /* NULL is a no-op */

/*
 * Connects to the hub, registers the consumer and applies until cancel
 * fires (CW_ECANCELED) or an error (returned: CW_EDB for the hub, or the
 * sink's). Call again after an error: it resumes from the stored position.
 */
int cw_apply_loop_run(cw_apply_loop_t *loop, cw_cancel_t *cancel, cw_err_t *err);

/* Marks entity (copied) for replay from its own applied id (see above). */
void cw_apply_loop_replay(cw_apply_loop_t *loop, const char *entity);

/* Forgets a pending replay of entity (it was deleted). */
void cw_apply_loop_forget(cw_apply_loop_t *loop, const char *entity);

/* Copies the loop's status (state, healthy, lag, position, last error) into out. */
void cw_apply_loop_status(cw_apply_loop_t *loop, cw_component_status_t *out);

/*
 * Groups batch (borrowed) by entity: *groups receives an array of pointers
 * into batch (owned by the caller, free()), sorted by entity, then oplog id;
 * *starts receives *ngroups + 1 offsets (owned by the caller, free()):
 * group g is (*groups)[starts[g] .. starts[g+1]). For tests and targets.
 */
void cw_apply_group_batch(const cw_change_batch_t *batch, const cw_change_t ***groups,
                          size_t **starts, size_t *ngroups);

#endif
