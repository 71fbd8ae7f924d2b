/*
 * This file contains the SQLite cache target (DESIGN.md §3): it applies the
 * hub to one SQLite database per entity under the target's dir, through the
 * shared apply loop (apply_loop.h), the cache DB manager (cachedb.h) and the
 * cache writer (cache_write.h). docs/targets-sqlite.md is the user's page.
 */
#ifndef CW_APPLY_SQLITE_H
#define CW_APPLY_SQLITE_H

#include "apply/target.h"

extern const cw_target_ops_t cw_sqlite_target_ops;

#endif
