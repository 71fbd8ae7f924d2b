/*
 * This file contains the source interface: what the daemon needs from a
 * capture worker (one per configured source). Each source type lives in its
 * own file and exports one cw_source_ops_t; sources.c maps the configured
 * type to it (one registration line per type).
 *
 * A source reads its entities from the hub, captures their changes, projects
 * them, writes them to the hub in batches through the oplog writer with its
 * checkpoint in the same transaction, and acknowledges its position to the
 * source database only after that commit (DESIGN.md §1, §4).
 */
#ifndef CW_CAPTURE_SOURCE_H
#define CW_CAPTURE_SOURCE_H

#include "core/component.h"

/* open, run (captures), status, close: see cw_component_ops_t. */
typedef cw_component_ops_t cw_source_ops_t;

/* The operations of a configured source type; NULL when the type has none yet. */
const cw_source_ops_t *cw_source_ops_for(cw_source_type_t type);

/*
 * The batch poller of a source type (docs/batch.md): a second component
 * per source that polls its `mode: batch` entities; NULL when the type has
 * none. cw_source_needs_stream tells whether the source's stream worker
 * has anything to do: false when every configured entity of the source is
 * a batch entity (then no publication, slot or replication is needed).
 */
const cw_source_ops_t *cw_source_batch_ops_for(cw_source_type_t type);
bool cw_source_has_batch(const cw_config_t *config, const char *source);
bool cw_source_needs_stream(const cw_config_t *config, const char *source);

/*
 * Checks a new entity (borrowed, already valid in form) against its source
 * (config borrowed) before it is stored: a PostgreSQL table must exist, be
 * readable by the source's role and have a primary key or replica identity
 * index; a MySQL table must exist, be readable and have a primary key.
 * 0; CW_EINVAL or CW_ENOTFOUND with what to fix (refuse the entity);
 * CW_EDB when the source could not be asked (store it: the running source
 * checks it again). Connects for the call; a MongoDB source has no check yet.
 */
int cw_source_check_entity(const cw_config_t *config, const cw_entity_t *entity, cw_err_t *err);

#endif
