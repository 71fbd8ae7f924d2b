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

#endif
