/*
 * This file contains the hub's schema migrations: an ordered array of SQL
 * scripts, each creating or altering objects in the schema "cachewarp", and
 * the table cachewarp.schema_version recording which ones a hub has.
 * `cachewarp run` applies them on startup and `cachewarp migrate` on demand.
 *
 * Migrating is idempotent and safe when several processes start at once: the
 * whole check-and-apply runs under a session advisory lock on a fixed key
 * (CW_HUB_LOCK_CLASS, CW_HUB_LOCK_MIGRATE), and each migration commits in one
 * transaction together with its schema_version row. A hub whose schema is
 * newer than this binary is refused rather than touched.
 */
#ifndef CW_HUB_MIGRATIONS_H
#define CW_HUB_MIGRATIONS_H

#include "core/err.h"
#include "hub/hub.h"

/* The schema version this binary's migrations produce. */
int cw_hub_schema_target(void);

/*
 * Reads the hub's schema version into *version: 0 when the schema (or its
 * schema_version table) does not exist yet. 0 or CW_EDB.
 */
int cw_hub_schema_version(cw_hub_t *hub, int *version, cw_err_t *err);

/*
 * Applies every migration the hub lacks, in order. Returns 0 (also when
 * nothing was to do), CW_ECONFLICT when the hub is newer than this binary
 * (`hub schema version 7 is newer than this cachewarp (5): upgrade
 * cachewarp`), or CW_EDB. When applied is not NULL it receives the number of
 * migrations this call applied.
 */
int cw_hub_migrate(cw_hub_t *hub, int *applied, cw_err_t *err);

/*
 * cw_hub_migrate stopping at schema version target (0 <= target <=
 * cw_hub_schema_target()): nothing is applied to a hub at target or past
 * it, short of the newer-than-this-binary refusal. For tests that build a
 * hub as an older cachewarp left it.
 */
int cw_hub_migrate_to(cw_hub_t *hub, int target, int *applied, cw_err_t *err);

/*
 * Checks without changing anything that the hub's schema is exactly this
 * binary's: CW_ECONFLICT when newer (as above) or older (`hub schema version
 * 0 is older than this cachewarp (1): run cachewarp migrate`), CW_EDB when
 * the hub cannot be read.
 */
int cw_hub_schema_check(cw_hub_t *hub, cw_err_t *err);

#endif
