/*
 * This file contains the SQLite cache target's backend (DESIGN.md §3): one
 * SQLite database per entity under the target's dir, written through the
 * cache DB manager (cachedb.h) and the cache writer (cache_write.h); the
 * shared apply loop (apply_loop.h) drives it. docs/targets-sqlite.md is the
 * user's page.
 */
#ifndef CW_APPLY_SQLITE_H
#define CW_APPLY_SQLITE_H

#include "apply/target.h"

extern const cw_target_backend_t cw_sqlite_backend;

#endif
