/*
 * This file contains the oplog writer: it appends a batch of changes to the
 * hub and stores the source checkpoint in the same transaction, and it
 * promotes a newly scanned entity's staged changes into the oplog.
 *
 * Ordering: every transaction that inserts into cachewarp.oplog (an append,
 * a promotion) first takes the transaction-scoped advisory lock
 * (CW_HUB_LOCK_CLASS, CW_HUB_LOCK_OPLOG). Ids are therefore allocated and
 * committed one transaction after another, and a reader paging with
 * `id > $last ORDER BY id` never misses a row that commits later with a
 * smaller id. docs/hub.md explains the argument.
 *
 * Routing: under that lock the writer reads the status of the batch's
 * entities (so it cannot race a promotion, which takes the same lock):
 *   live               -> cachewarp.oplog
 *   pending, scanning  -> cachewarp.oplog_staging (promoted after the scan)
 *   deleted            -> dropped (counted in stats->skipped)
 *   not in the hub     -> the batch fails with CW_ENOTFOUND
 * A scan writer (cw_oplog_writer_set_scan) writes pending and scanning
 * entities' changes to the oplog too: the scan's rows go first, and the
 * live changes staged meanwhile follow them at promotion.
 *
 * THREAD SAFETY: a writer uses its hub's connection; one thread at a time.
 */
#ifndef CW_HUB_OPLOG_WRITER_H
#define CW_HUB_OPLOG_WRITER_H

#include "core/change.h"
#include "core/err.h"
#include "hub/hub.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cw_oplog_writer cw_oplog_writer_t;

/* Where a test hook runs inside cw_oplog_append's transaction. */
typedef enum cw_oplog_hook_point {
	CW_OPLOG_HOOK_LOCKED = 0,     /* the advisory lock is held, nothing written yet */
	CW_OPLOG_HOOK_BEFORE_COMMIT,  /* rows and checkpoint written, COMMIT not sent */
} cw_oplog_hook_point_t;

/* A test seam: called at each hook point with the argument given to set_hook. */
typedef void (*cw_oplog_hook_fn)(cw_oplog_hook_point_t point, void *arg);

typedef struct cw_oplog_append_stats {
	size_t appended;   /* rows written to cachewarp.oplog */
	size_t staged;     /* rows written to cachewarp.oplog_staging */
	size_t skipped;    /* changes of deleted entities, dropped */
} cw_oplog_append_stats_t;

/* A writer on hub (borrowed; must outlive the writer). Free with _free. */
cw_oplog_writer_t *cw_oplog_writer_new(cw_hub_t *hub);
void cw_oplog_writer_free(cw_oplog_writer_t *writer);   /* NULL is a no-op */

/* The hub connection writer appends on (borrowed). */
cw_hub_t *cw_oplog_writer_hub(const cw_oplog_writer_t *writer);

/* Makes writer a scan writer (see above) or, with scan false, an ordinary one. */
void cw_oplog_writer_set_scan(cw_oplog_writer_t *writer, bool scan);

/*
 * With track true, every append also records the keys of its upserts in
 * cachewarp.batch_keys and removes those of its deletes, in the same
 * transaction: the live key set batch mode's delete check compares with
 * the source (capture/postgres_batch.c). Off by default.
 */
void cw_oplog_writer_track_keys(cw_oplog_writer_t *writer, bool track);

/* Installs a test hook (fn NULL removes it); arg is borrowed. */
void cw_oplog_writer_set_hook(cw_oplog_writer_t *writer, cw_oplog_hook_fn fn, void *arg);

/*
 * Appends every change of batch (borrowed, not modified) in one transaction:
 * take the oplog lock, read the entities' statuses, COPY the rows, upsert
 * the checkpoint into cachewarp.metadata (when checkpoint_key is not NULL;
 * checkpoint_json must then be JSON text), NOTIFY cachewarp_oplog (when oplog
 * rows were added; delivered at commit), COMMIT.
 *
 * Returns 0 only after COMMIT succeeded; stats (optional) is then filled.
 * On any failure the transaction is rolled back, nothing of it is visible,
 * and the return is CW_EDB (with the server's message), CW_ENOTFOUND (an
 * entity not in the hub) or CW_EINVAL (checkpoint_key without json).
 * A change with created_at_us 0 gets the current time.
 */
int cw_oplog_append(cw_oplog_writer_t *writer, const cw_change_batch_t *batch,
                    const char *checkpoint_key, const char *checkpoint_json,
                    cw_oplog_append_stats_t *stats, cw_err_t *err);

/*
 * Moves entity's staged changes into the oplog in their staging order, after
 * every row already in it, deletes them from staging, and sets the entity's
 * status to live — one transaction under the oplog lock, then NOTIFY.
 * *promoted (optional) receives the number of rows moved. Returns 0,
 * CW_ENOTFOUND (no such entity), CW_ECONFLICT (the entity was deleted
 * meanwhile: nothing is moved) or CW_EDB.
 */
/*
 * Writes one entity's synthetic changes (upserts with data, deletes; batch
 * borrowed) in one transaction under the oplog lock, at the entity's
 * current generation, with source_pos and origin set to origin ("verify").
 * A change whose doc_id has an oplog row newer than watermark is left out:
 * the stream changed that key after the state written here was read
 * (DBLog's watermark rule), and the newer change must win. *written
 * receives the rows written. 0, CW_ECONFLICT (the entity is not live),
 * CW_EINVAL (a sweep, or changes of several entities) or CW_EDB.
 */
int cw_oplog_append_synthetic(cw_hub_t *hub, const cw_change_batch_t *batch, int64_t watermark,
                              const char *origin, size_t *written, cw_err_t *err);

int cw_oplog_promote_staged(cw_hub_t *hub, const char *entity, int64_t *promoted,
                            cw_err_t *err);

#endif
