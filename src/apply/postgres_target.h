/*
 * This file contains the PostgreSQL target's backend (DESIGN.md §3): one
 * table per entity in the target's schema, typed from the entity's shape or
 * the source's columns and evolving with the data, written by COPY into a
 * temporary table and one INSERT ... ON CONFLICT per batch, with the
 * target's bookkeeping (positions, schema_history, runs, quarantine) in its
 * meta schema. The shared apply loop (apply_loop.h) drives it.
 * docs/targets-postgres.md is the user's page.
 */
#ifndef CW_APPLY_POSTGRES_TARGET_H
#define CW_APPLY_POSTGRES_TARGET_H

#include "apply/target.h"

extern const cw_target_backend_t cw_postgres_backend;

#endif
