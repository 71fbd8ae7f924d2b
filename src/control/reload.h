/*
 * This file contains the reload plan: what a new configuration file changes
 * against the running one, and whether it can be applied without a restart
 * (docs/operations.md, "Reloading the configuration"). It only compares two
 * loaded configurations; the daemon (control/daemon.h) carries the plan out.
 *
 * A key the daemon reads only at start (hub.url and the hub's credentials,
 * api.*, log.format, capture.queue_depth, retry.*, verify.interval, and
 * any top-level key not listed as live below) refuses the whole reload.
 * Live: version, log.level, hub.retention, config.watch,
 * config.watch_interval, verify.window, verify.repair and
 * verify.settle_timeout (read by each verify run). A change of
 * capture.batch_size or capture.flush_interval restarts every source, of
 * apply.* every target. A source restarts when one of its keys or its
 * authentication entry changed; a target when one of its keys (its streams
 * included), its authentication entry, a transformation one of its streams
 * names, or an entity's per-target settings naming it changed; a source
 * (its stream worker and batch poller) also when one of its entities was
 * added or removed in batch mode, or changed a batch key (mode,
 * change_detection.*, schedule, polling_interval, delete_detection.*). An entity
 * whose shape (source, table or collection, columns) changed refuses the
 * reload: shapes are immutable.
 */
#ifndef CW_CONTROL_RELOAD_H
#define CW_CONTROL_RELOAD_H

#include "core/buf.h"
#include "core/config.h"

#include <stdbool.h>
#include <stddef.h>

typedef enum cw_reload_change {
	CW_RELOAD_UNCHANGED = 0,
	CW_RELOAD_ADDED,
	CW_RELOAD_REMOVED,
	CW_RELOAD_CHANGED,        /* sources and targets: restarted; entities: per-target settings */
} cw_reload_change_t;

/* One source, target or entity named in either configuration. */
typedef struct cw_reload_item {
	const char *name;         /* borrowed from the configuration it is in (the new one if both) */
	cw_reload_change_t change;
} cw_reload_item_t;

typedef struct cw_reload_plan {
	char **refusals;          /* owned: why it needs a restart, one message each; none = apply */
	size_t nrefusals;
	char **live_keys;         /* owned: keys applied in place ("log.level") */
	size_t nlive_keys;
	cw_reload_item_t *sources;   /* owned array; names borrowed */
	size_t nsources;
	cw_reload_item_t *targets;
	size_t ntargets;
	cw_reload_item_t *entities;
	size_t nentities;
} cw_reload_plan_t;

/*
 * Compares running with next (both borrowed; the plan borrows names from
 * them, so it must be freed before either). Returns the plan, owned by the
 * caller (cw_reload_plan_free). Each refusal reads
 * `hub.url changed: restart cachewarp to apply it`.
 */
cw_reload_plan_t *cw_reload_plan_new(const cw_config_t *running, const cw_config_t *next);

/* Frees the plan; NULL is a no-op. */
void cw_reload_plan_free(cw_reload_plan_t *plan);

/* The change of source, target or entity name in items, or CW_RELOAD_UNCHANGED when absent. */
cw_reload_change_t cw_reload_change_of(const cw_reload_item_t *items, size_t n, const char *name);

/*
 * Appends the names in items with that change, "kind:name" separated by
 * spaces ("source:shop target:local"); appends nothing when none.
 */
void cw_reload_list(const cw_reload_item_t *items, size_t n, const char *kind,
                    cw_reload_change_t change, cw_buf_t *out);

/* Whether the plan changes nothing at all (no item changed, no live key). */
bool cw_reload_plan_empty(const cw_reload_plan_t *plan);

#endif
