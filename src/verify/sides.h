/*
 * This file contains the sides verify compares (compare.h): an entity's
 * rows at a PostgreSQL, MongoDB or MySQL source, and in a SQLite, PostgreSQL or
 * MongoDB target. Each
 * side reads every row once per call, turned into the row digests of
 * row_digest.h exactly as capture and the target's apply would write it, or
 * of forms.h where the target stores a row in a form of its own.
 *
 * A source side reads its table in one REPEATABLE READ transaction, turning
 * each row into a change's doc_id and data with the capture's own code
 * (cw_pgoutput_row_change and the entity's projection); a MongoDB source
 * reads its collection through capture's projection, a whole document in
 * the relaxed form the SQLite target stores; a MySQL source reads its
 * table in key order through the MySQL snapshot's conversion. A target side reads
 * what its apply stored and also tells the oplog id up to which it applied
 * the entity, for the re-check's wait: a SQLite cache's values as stored,
 * a PostgreSQL target's table through the same code as the source (its
 * columns keep the source's types), its bookkeeping columns left out and a
 * soft-deleted row counted as absent; a PostgreSQL target's table of a
 * MongoDB entity column by column, each as text, by the field its comment
 * names; a MongoDB target's documents whole (a MongoDB entity without
 * columns) or field by field (typed documents).
 *
 * Every side is opened for one (entity, target) pair: the entity (copied)
 * and the target's decimal handling decide each value's digest.
 *
 * THREAD SAFETY: a side is used by one thread at a time.
 */
#ifndef CW_VERIFY_SIDES_H
#define CW_VERIFY_SIDES_H

#include "core/config.h"
#include "core/entity.h"
#include "core/err.h"
#include "hub/hub.h"
#include "verify/compare.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct cw_verify_endpoint cw_verify_endpoint_t;

/* The side an endpoint reads through (borrowed from the endpoint). */
const cw_verify_side_t *cw_verify_endpoint_side(cw_verify_endpoint_t *endpoint);

/*
 * The entity's rows at its source (PostgreSQL, MongoDB or MySQL), as target
 * (borrowed for the call) should hold them: its decimal handling, and a
 * whole MongoDB document exact for a MongoDB target, relaxed for the
 * others. Connects at open. NULL with err.
 */
cw_verify_endpoint_t *cw_verify_source_open(const cw_source_config_t *source,
                                            const cw_entity_t *entity,
                                            const cw_target_config_t *target, cw_err_t *err);

/*
 * The entity's rows in target (sqlite, postgres or mongodb). config
 * (borrowed for the call) holds the entity's per-target settings (a
 * MongoDB target's collection) and its source (whose type decides how a
 * PostgreSQL target stores the entity). NULL with err (CW_ENOTFOUND when
 * the target holds nothing of the entity yet).
 */
cw_verify_endpoint_t *cw_verify_target_open(const cw_config_t *config,
                                            const cw_target_config_t *target,
                                            const cw_entity_t *entity, cw_err_t *err);

/*
 * Makes source digest its rows in the form target stores them (forms.h):
 * a MongoDB target's typed documents, typed by the source's record of its
 * table read from hub (borrowed for the call); a PostgreSQL target's
 * columns made from MongoDB documents. A PostgreSQL target of a PostgreSQL
 * source takes the source's TimeZone, so a timestamptz reads as the same
 * text on both sides. 0 or CW_EDB.
 */
int cw_verify_endpoints_match(cw_verify_endpoint_t *source, cw_verify_endpoint_t *target,
                              cw_hub_t *hub, cw_err_t *err);

/* A guess of the rows an endpoint holds (0 when unknown). */
uint64_t cw_verify_endpoint_estimate(cw_verify_endpoint_t *endpoint);

/*
 * Source: its current position as text in *position (owned by the caller):
 * a PostgreSQL source's WAL LSN, a MariaDB source's @@gtid_binlog_pos;
 * CW_ENOTFOUND for a MongoDB source, which has none verify can compare.
 * Target: the oplog id up to which the entity is applied, in *applied.
 * 0 or a CW_E* code with err.
 */
int cw_verify_source_position(cw_verify_endpoint_t *endpoint, char **position, cw_err_t *err);

/*
 * Whether a MariaDB GTID position stored by capture ("domain-server-seq,...")
 * has reached source (the same form): every domain of source is in stored
 * with a sequence number at least as high. False when either does not parse
 * (a MySQL 8 GTID set).
 */
bool cw_verify_gtid_covers(const char *stored, const char *source);
int cw_verify_target_applied(cw_verify_endpoint_t *endpoint, int64_t *applied, cw_err_t *err);

/* Closes it; NULL is a no-op. */
void cw_verify_endpoint_close(cw_verify_endpoint_t *endpoint);

#endif
