/*
 * This file contains the target interface: what the daemon needs from an
 * apply worker (one per configured target). Each target type lives in its
 * own file and exports one cw_target_ops_t; targets.c maps the configured
 * type to it (one registration line per type).
 *
 * A target registers as a consumer in the hub, reads the oplog from its
 * stored position, coalesces and applies each batch, and stores its position
 * inside the target in the same transaction as the data (DESIGN.md §1, §3).
 */
#ifndef CW_APPLY_TARGET_H
#define CW_APPLY_TARGET_H

#include "core/component.h"

/* open, run (applies), status, close: see cw_component_ops_t. */
typedef cw_component_ops_t cw_target_ops_t;

/* The operations of a configured target type; NULL when the type has none yet. */
const cw_target_ops_t *cw_target_ops_for(cw_target_type_t type);

#endif
