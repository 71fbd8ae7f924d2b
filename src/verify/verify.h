/*
 * This file contains a verify run (docs/verify.md): for each live entity and
 * each target chosen, compare the entity's rows at its source with the
 * target's (compare.h, sides.h), store the report in the hub
 * (cachewarp.verify_runs), and with repair, write each persistent
 * difference into the hub as a synthetic change (origin 'verify') that every
 * target applies through its normal path — never written to a target
 * directly.
 *
 * One run per entity and target at a time: a session advisory lock on the
 * hub (CW_HUB_LOCK_VERIFY) is held while the pair is compared; a second run
 * of the same pair is refused with the id of the running one.
 *
 * THREAD SAFETY: one run per thread; a run opens its own connections.
 */
#ifndef CW_VERIFY_VERIFY_H
#define CW_VERIFY_VERIFY_H

#include "core/cancel.h"
#include "core/config.h"
#include "core/err.h"
#include "verify/compare.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cw_verify_opts {
	const char *const *entities;  /* names; none = every live entity of a PostgreSQL source */
	size_t nentities;
	const char *const *targets;   /* names; none = every target verify can read */
	size_t ntargets;
	bool repair;
	const char *requested_by;     /* "cli", "api", "schedule" */
	int64_t settle_timeout_ms;    /* the re-check's wait for the target; 0 = 60 s */
	size_t sample_keys;           /* keys kept per pair in the report; 0 = 20 */
} cw_verify_opts_t;

/* What became of one entity and target. */
typedef struct cw_verify_pair {
	char entity[CW_ENTITY_NAME_MAX + 1];
	char target[CW_ENTITY_NAME_MAX + 1];
	int64_t run_id;               /* its row in cachewarp.verify_runs; 0 when refused */
	const char *status;           /* "equal", "different", "failed", "canceled", "refused" */
	cw_verify_result_t result;
	uint64_t repaired;            /* synthetic changes written */
	uint64_t left_to_stream;      /* repairs not written: the stream changed the key meanwhile */
	double seconds;
	char *report;                 /* owned: the report as JSON (as stored in the hub) */
	cw_err_t err;                 /* failed, refused: why */
} cw_verify_pair_t;

/*
 * Runs verify for config (borrowed) as opts say; *pairs (owned, free with
 * cw_verify_pairs_free) receives one entry per entity and target. Returns 0
 * when every pair was compared (equal or not), CW_ENOTFOUND for an entity or
 * target named that does not exist, CW_ECONFLICT when a pair was refused
 * because another run holds it, CW_ECANCELED, or the first other error.
 */
int cw_verify_run(const cw_config_t *config, const cw_verify_opts_t *opts, cw_cancel_t *cancel,
                  cw_verify_pair_t **pairs, size_t *npairs, cw_err_t *err);

void cw_verify_pairs_free(cw_verify_pair_t *pairs, size_t npairs);

#endif
