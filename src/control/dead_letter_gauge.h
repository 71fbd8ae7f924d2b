/*
 * This file contains the cachewarp_dead_letters gauge: the hub's dead
 * letters by target, entity and status (failed, replay), refreshed by a
 * daemon job from one grouped count (hub/dead_letters.h). A stream whose
 * letters are all gone reads 0, not its last count.
 *
 * THREAD SAFETY: one gauge is refreshed by one thread at a time (its job);
 * the metrics registry it writes to has its own lock.
 */
#ifndef CW_CONTROL_DEAD_LETTER_GAUGE_H
#define CW_CONTROL_DEAD_LETTER_GAUGE_H

#include "core/err.h"
#include "core/metrics.h"
#include "hub/hub.h"

typedef struct cw_dead_letter_gauge cw_dead_letter_gauge_t;

/* Declares the family in metrics (borrowed; must outlive the gauge). Owned by the caller. */
cw_dead_letter_gauge_t *cw_dead_letter_gauge_new(cw_metrics_t *metrics);

/* NULL is a no-op. */
void cw_dead_letter_gauge_free(cw_dead_letter_gauge_t *gauge);

/*
 * Counts the letters in hub and sets the gauge of every stream that has
 * some, and 0 for each stream published before that has none now. On a
 * failure (CW_EDB) the gauge keeps its last values.
 */
int cw_dead_letter_gauge_refresh(cw_dead_letter_gauge_t *gauge, cw_hub_t *hub, cw_err_t *err);

#endif
