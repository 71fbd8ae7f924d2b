/*
 * This file contains the oplog reader: keyset pages of the oplog
 * (`id > $after ORDER BY id LIMIT n`), optionally restricted to a set of
 * entities, and a wait that wakes on the writer's NOTIFY cachewarp_oplog,
 * with the timeout as the poll fallback.
 *
 * Paging by id never misses a row because writers commit in id order (see
 * oplog_writer.h and docs/hub.md): once a reader has seen id N, every row
 * committed afterwards has an id greater than N.
 *
 * A typical consumer loop:
 *   for (;;) {
 *       cw_oplog_read(reader, position, 1000, &batch, &err);
 *       if (batch.len == 0) { cw_oplog_wait(reader, 5000, &err); continue; }
 *       ... apply, position = batch.items[batch.len - 1].oplog_id ...
 *   }
 *
 * THREAD SAFETY: a reader LISTENs on its hub's connection; give it a hub of
 * its own and use both from one thread.
 */
#ifndef CW_HUB_OPLOG_READER_H
#define CW_HUB_OPLOG_READER_H

#include "core/change.h"
#include "core/err.h"
#include "hub/hub.h"

#include <stddef.h>
#include <stdint.h>

typedef struct cw_oplog_reader cw_oplog_reader_t;

/*
 * A reader on hub (borrowed; must outlive the reader) for the given entities
 * (copied; nentities 0 = every entity). Runs LISTEN cachewarp_oplog. Returns
 * the reader (free with _free) or NULL with err filled (CW_EDB).
 */
cw_oplog_reader_t *cw_oplog_reader_new(cw_hub_t *hub, const char *const *entities,
                                       size_t nentities, cw_err_t *err);

/* Runs UNLISTEN (errors ignored) and frees the reader; NULL is a no-op. */
void cw_oplog_reader_free(cw_oplog_reader_t *reader);

/*
 * Appends to out (owned by the caller) up to limit changes with oplog_id >
 * after, in id order, with oplog_id filled. 0 or CW_EDB (out keeps what it
 * had before the call).
 */
int cw_oplog_read(cw_oplog_reader_t *reader, int64_t after, size_t limit,
                  cw_change_batch_t *out, cw_err_t *err);

/*
 * Waits up to timeout_ms for a notification that the oplog grew. Returns 1
 * when one arrived (also one received during an earlier read), 0 when the
 * timeout passed, CW_EDB when the connection failed. A notification is a
 * hint: read again, the new rows may belong to other entities.
 */
int cw_oplog_wait(cw_oplog_reader_t *reader, int timeout_ms, cw_err_t *err);

/*
 * One page without a reader (no LISTEN): as cw_oplog_read, for the entities
 * given (borrowed; nentities 0 = all). For the REST API's batch fetch.
 */
int cw_oplog_fetch(cw_hub_t *hub, const char *const *entities, size_t nentities,
                   int64_t after, size_t limit, cw_change_batch_t *out, cw_err_t *err);

/*
 * A round of pages of every entity: the entities with changes and the last
 * id among them, as one query listed them for the first page of the round,
 * kept for the pages after it (a page of every entity is otherwise two
 * statements: that list, then the merged range scans). A round ends at a page
 * shorter than its limit or when a page starts at or past its last id.
 */
typedef struct cw_oplog_round {
	char **entities;     /* owned */
	size_t nentities;
	int64_t from;        /* the position the entities were listed after */
	int64_t upto;        /* the round's last id; 0: no round */
} cw_oplog_round_t;
#define CW_OPLOG_ROUND_INIT {NULL, 0, 0, 0}

/*
 * cw_oplog_fetch of every entity through round (zeroed with
 * CW_OPLOG_ROUND_INIT before the first call): lists the entities only when a
 * new round starts, which a page before the round's start also does.
 */
int cw_oplog_fetch_round(cw_hub_t *hub, cw_oplog_round_t *round, int64_t after, size_t limit,
                         cw_change_batch_t *out, cw_err_t *err);

/* Frees what round holds and zeroes it: the next page starts a new round. */
void cw_oplog_round_clear(cw_oplog_round_t *round);

/*
 * The oplog has no index on id alone (hub migration 9): every reader finds
 * rows through (entity, id). CW_OPLOG_ENTITIES_SQL starts a query with the
 * CTE oplog_entities(entity): the oplog's distinct entities, one index
 * descent each, and a NULL row that ends them (filter it out).
 * CW_OPLOG_HEADS_SQL lists each entity with the last id it has.
 */
#define CW_OPLOG_ENTITIES_SQL \
	"WITH RECURSIVE oplog_entities(entity) AS (" \
	"SELECT min(entity) FROM cachewarp.oplog UNION ALL " \
	"SELECT (SELECT min(o.entity) FROM cachewarp.oplog o WHERE o.entity > n.entity) " \
	"FROM oplog_entities n WHERE n.entity IS NOT NULL) "
#define CW_OPLOG_HEADS_SQL \
	CW_OPLOG_ENTITIES_SQL \
	"SELECT n.entity, (SELECT max(o.id) FROM cachewarp.oplog o WHERE o.entity = n.entity) " \
	"AS last FROM oplog_entities n WHERE n.entity IS NOT NULL"
/* The greatest oplog id (0 for an empty oplog), as one query of CW_OPLOG_HEADS_SQL. */
#define CW_OPLOG_LAST_ID_SQL \
	"SELECT coalesce(max(h.last), 0) FROM (" CW_OPLOG_HEADS_SQL ") AS h"

/*
 * Test seam: fn(arg) runs between the two statements of a page of every
 * entity (after it listed the entities with changes). NULL removes it. Set
 * it before any thread reads.
 */
void cw_oplog_set_page_hook(void (*fn)(void *arg), void *arg);

/* The greatest oplog id (0 for an empty oplog). 0 or CW_EDB. */
int cw_oplog_last_id(cw_hub_t *hub, int64_t *last_id, cw_err_t *err);

#endif
