/*
 * This file contains the MongoDB target's backend (DESIGN.md §3): one
 * collection per entity in the target's database, each coalesced batch one
 * ordered bulk write guarded by the hub id every document keeps
 * (`_cachewarp.oplog_id`), positions in the `_cachewarp_position`
 * collection, documents the server rejects in `_cachewarp_quarantine`. The
 * shared apply loop (apply_loop.h) drives it. docs/targets-mongodb.md is the
 * user's page.
 */
#ifndef CW_APPLY_MONGODB_TARGET_H
#define CW_APPLY_MONGODB_TARGET_H

#include "apply/target.h"

extern const cw_target_backend_t cw_mongodb_backend;

#endif
