/*
 * This file contains the target interface. The apply loop (apply_loop.h) is
 * the target component: it tracks the hub's entities, the --entity filter,
 * deleted entities, replays, per-entity progress, metrics and status. A
 * target type supplies only its backend: a cw_target_backend_t in a file of
 * its own, registered by one line in targets.c. The backend is a type of its
 * own, so a source's operations cannot be registered as a target.
 *
 * A backend stores the changes of each entity and, in the same transaction,
 * the oplog id they reach (DESIGN.md §1, §3); it may be a network round
 * trip away: the loop calls it only with work, never per entity per
 * heartbeat. What every backend may rely on is proven by the contract test
 * (tests/integration/test_apply_contract.c), which every backend passes.
 *
 * Every function returns 0 or a CW_E* code with err filled; the loop passes
 * the code and domain on unchanged.
 */
#ifndef CW_APPLY_TARGET_H
#define CW_APPLY_TARGET_H

#include "apply/coalesce.h"
#include "core/component.h"
#include "core/entity.h"
#include "core/metrics.h"
#include "hub/hub.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct cw_apply_loop cw_apply_loop_t;

typedef struct cw_target_backend {
	const char *type;   /* "sqlite", "postgres", "mongodb" */
	/*
	 * The hub keeps a MongoDB entity's whole document ("doc") as canonical
	 * extended JSON. false: the loop hands the backend "doc" as relaxed
	 * extended JSON (numbers as JSON numbers, as the SQLite and PostgreSQL
	 * targets store them); true: as the hub keeps it, every BSON type intact.
	 */
	bool exact_bson;
	/*
	 * The target's own reconnect schedule after failures in a row (the last
	 * delay repeats), instead of the configured retry backoff; NULL = none.
	 */
	const int64_t *reconnect_ms;
	size_t nreconnect;
	/* Opens the backend for the target ctx->name (no I/O needed); NULL with err. */
	void *(*open)(const cw_component_ctx_t *ctx, cw_err_t *err);
	/* Frees it; NULL is a no-op. */
	void (*close)(void *self);
	/* The global position stored in the target; 0 when none. */
	int (*load_position)(void *self, int64_t *position, cw_err_t *err);
	/* Stores the global position, after every group of a batch was applied. */
	int (*store_position)(void *self, int64_t position, cw_err_t *err);
	/*
	 * Prepares entity (borrowed for the call) for writing, creating its
	 * storage when missing, and sets *applied: every change of the entity up
	 * to this oplog id is stored (0 when new or recreated). hub is the loop's
	 * connection, borrowed for the call. Called once per run for each entity,
	 * and again after the entity was reported lost.
	 */
	int (*entity_open)(void *self, cw_hub_t *hub, const cw_entity_t *entity, int64_t *applied,
	                   cw_err_t *err);
	/* Removes the storage of an entity deleted in the hub; *removed: there was some. */
	int (*entity_drop)(void *self, const char *entity, bool *removed, cw_err_t *err);
	/*
	 * Applies writes (borrowed) to entity and records upto as its applied id,
	 * atomically. When the entity's stored data turns out lost (damaged,
	 * recreated empty), applies nothing, sets *lost and returns 0: the loop
	 * opens the entity again and replays it.
	 */
	int (*apply)(void *self, const cw_entity_t *entity, const cw_write_list_t *writes,
	             int64_t upto, bool *lost, cw_err_t *err);
	/*
	 * Once per loop iteration, with the loop's hub connection (borrowed for
	 * the call): idle connections, backend metrics, files gone
	 * (cw_apply_loop_entity_lost). May be NULL.
	 */
	int (*housekeep)(void *self, cw_apply_loop_t *loop, cw_hub_t *hub, cw_err_t *err);
} cw_target_backend_t;

/* What the daemon opens for a target: the apply loop's component operations. */
typedef cw_component_ops_t cw_target_ops_t;

/*
 * Declares the families a target that talks to a database server records:
 * cachewarp_target_up, _last_apply_timestamp_seconds and _quarantined_total.
 */
void cw_target_declare_metrics(cw_metrics_t *metrics);

/* The backend of a configured target type; NULL when the type has none yet. */
const cw_target_backend_t *cw_target_backend_for(cw_target_type_t type);

/* The component operations of a configured target type; NULL when it has no backend yet. */
const cw_target_ops_t *cw_target_ops_for(cw_target_type_t type);

#endif
