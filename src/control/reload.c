/* This file contains the reload plan declared in reload.h. */
#include "control/reload.h"

#include "core/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keys applied without restarting anything. */
static const char *const live_keys[] = {"version", "log.level", "hub.retention", "config.watch",
                                        "config.watch_interval", "verify.window", "verify.repair",
                                        "verify.settle_timeout", NULL};
/* Lists compared item by item below, not as a whole. */
static const char *const item_lists[] = {"sources", "targets", "entities", "transformations",
                                         "authentication", NULL};

typedef struct planner {
	cw_reload_plan_t *plan;
	bool restart_sources;     /* capture.* changed */
	bool restart_targets;     /* apply.* changed */
} planner_t;

static bool listed(const char *const *names, const char *name)
{
	for (size_t i = 0; names[i] != NULL; i++)
		if (strcmp(names[i], name) == 0)
			return true;
	return false;
}

static void push_string(char ***array, size_t *n, char *text)
{
	*array = cw_xrealloc(*array, (*n + 1) * sizeof **array);
	(*array)[(*n)++] = text;
}

static void refuse(cw_reload_plan_t *plan, const char *fmt, const char *what)
{
	char message[512];
	snprintf(message, sizeof message, fmt, what);
	push_string(&plan->refusals, &plan->nrefusals, cw_xstrdup(message));
}

static void top_key_changed(void *arg, const char *path)
{
	planner_t *p = arg;
	if (listed(item_lists, path))
		return;
	if (listed(live_keys, path))
		push_string(&p->plan->live_keys, &p->plan->nlive_keys, cw_xstrdup(path));
	else if (strcmp(path, "capture.batch_size") == 0 || strcmp(path, "capture.flush_interval") == 0 ||
	         strcmp(path, "capture.snapshot_batch_size") == 0)
		p->restart_sources = true;
	else if (strncmp(path, "apply.", 6) == 0)
		p->restart_targets = true;
	else
		refuse(p->plan, "%s changed: restart cachewarp to apply it", path);
}

static void push_item(cw_reload_item_t **items, size_t *n, const char *name,
                      cw_reload_change_t change)
{
	*items = cw_xrealloc(*items, (*n + 1) * sizeof **items);
	(*items)[(*n)++] = (cw_reload_item_t){name, change};
}

/* Marks target name changed (when it is in the plan and not added or removed). */
static void mark_target(cw_reload_plan_t *plan, const char *name)
{
	for (size_t i = 0; name != NULL && i < plan->ntargets; i++)
		if (strcmp(plan->targets[i].name, name) == 0 &&
		    plan->targets[i].change == CW_RELOAD_UNCHANGED)
			plan->targets[i].change = CW_RELOAD_CHANGED;
}

static void plan_sources(planner_t *p, const cw_config_t *a, const cw_config_t *b)
{
	for (size_t i = 0; i < a->nsources; i++)
		if (cw_config_source(b, a->sources[i].name) == NULL)
			push_item(&p->plan->sources, &p->plan->nsources, a->sources[i].name,
			          CW_RELOAD_REMOVED);
	for (size_t i = 0; i < b->nsources; i++) {
		const cw_source_config_t *next = &b->sources[i];
		const cw_source_config_t *old = cw_config_source(a, next->name);
		cw_reload_change_t change = CW_RELOAD_ADDED;
		if (old != NULL)
			change = p->restart_sources || !cw_config_scope_equal("sources[].", old, next) ||
			         !cw_config_auth_equal(old->auth, next->auth)
			         ? CW_RELOAD_CHANGED : CW_RELOAD_UNCHANGED;
		push_item(&p->plan->sources, &p->plan->nsources, next->name, change);
	}
}

/* Whether a stream of target names a transformation that differs between a and b. */
static bool transformations_changed(const cw_target_config_t *target, const cw_config_t *a,
                                    const cw_config_t *b)
{
	for (size_t i = 0; i < target->nstreams; i++) {
		const char *id = target->streams[i].transformation_id;
		if (id == NULL)
			continue;
		const cw_transformation_config_t *ta = cw_config_transformation(a, id);
		const cw_transformation_config_t *tb = cw_config_transformation(b, id);
		if (ta == NULL || tb == NULL || !cw_config_scope_equal("transformations[].", ta, tb))
			return true;
	}
	return false;
}

static void plan_targets(planner_t *p, const cw_config_t *a, const cw_config_t *b)
{
	for (size_t i = 0; i < a->ntargets; i++)
		if (cw_config_target(b, a->targets[i].name) == NULL)
			push_item(&p->plan->targets, &p->plan->ntargets, a->targets[i].name,
			          CW_RELOAD_REMOVED);
	for (size_t i = 0; i < b->ntargets; i++) {
		const cw_target_config_t *next = &b->targets[i];
		const cw_target_config_t *old = cw_config_target(a, next->name);
		cw_reload_change_t change = CW_RELOAD_ADDED;
		if (old != NULL)
			change = p->restart_targets || !cw_config_scope_equal("targets[].", old, next) ||
			         !cw_config_auth_equal(old->auth, next->auth) ||
			         transformations_changed(next, a, b) || transformations_changed(old, a, b)
			         ? CW_RELOAD_CHANGED : CW_RELOAD_UNCHANGED;
		push_item(&p->plan->targets, &p->plan->ntargets, next->name, change);
	}
}

/* Marks source name changed (when it is in the plan and not added or removed). */
static void mark_source(cw_reload_plan_t *plan, const char *name)
{
	for (size_t i = 0; name != NULL && i < plan->nsources; i++)
		if (strcmp(plan->sources[i].name, name) == 0 &&
		    plan->sources[i].change == CW_RELOAD_UNCHANGED)
			plan->sources[i].change = CW_RELOAD_CHANGED;
}

/* Batch mode's keys: its source's stream worker and poller read them at start. */
static const char *const batch_keys[] = {
	"entities[].mode", "entities[].change_detection.column",
	"entities[].change_detection.timezone", "entities[].change_detection.lag",
	"entities[].schedule", "entities[].polling_interval", "entities[].delete_detection.interval",
	NULL};

/*
 * Whether an entity's change moves its source's pollers: added or removed
 * in batch mode, or any batch key changed (old or next may be NULL).
 */
static bool batch_changed(const cw_entity_t *old, const cw_entity_t *next)
{
	if (old == NULL || next == NULL) {
		const cw_entity_t *entity = old != NULL ? old : next;
		return entity->mode == CW_ENTITY_MODE_BATCH;
	}
	for (size_t k = 0; batch_keys[k] != NULL; k++)
		if (!cw_config_key_equal(batch_keys[k], old, next))
			return true;
	return false;
}

/* Targets an entity's per-target settings name (entities[].targets) read them at start. */
static void mark_entity_targets(cw_reload_plan_t *plan, const cw_entity_t *entity)
{
	for (size_t i = 0; entity != NULL && i < entity->ntargets; i++)
		mark_target(plan, entity->targets[i].name);
}

static void plan_entities(planner_t *p, const cw_config_t *a, const cw_config_t *b)
{
	cw_reload_plan_t *plan = p->plan;
	for (size_t i = 0; i < a->nentities; i++) {
		if (cw_config_entity(b, a->entities[i].name) != NULL)
			continue;
		push_item(&plan->entities, &plan->nentities, a->entities[i].name, CW_RELOAD_REMOVED);
		mark_entity_targets(plan, &a->entities[i]);
		if (batch_changed(&a->entities[i], NULL))
			mark_source(plan, a->entities[i].source);
	}
	for (size_t i = 0; i < b->nentities; i++) {
		const cw_entity_t *next = &b->entities[i];
		const cw_entity_t *old = cw_config_entity(a, next->name);
		cw_reload_change_t change = CW_RELOAD_ADDED;
		if (old != NULL && !cw_entity_shape_equal(old, next)) {
			char what[160];
			snprintf(what, sizeof what, "entity \"%.64s\"", next->name);
			refuse(plan, "%s: its shape (source, table or collection, columns) changed: shapes "
			       "are immutable, add an entity under a new name", what);
		}
		if (old != NULL)
			change = cw_config_key_equal("entities[].targets", old, next) ? CW_RELOAD_UNCHANGED
			                                                               : CW_RELOAD_CHANGED;
		push_item(&plan->entities, &plan->nentities, next->name, change);
		/* The source's stream and poller split its entities by mode: both start again. */
		if (batch_changed(old, next)) {
			mark_source(plan, next->source);
			if (old != NULL)
				mark_source(plan, old->source);
		}
		if (change != CW_RELOAD_UNCHANGED) {
			mark_entity_targets(plan, old);
			mark_entity_targets(plan, next);
		}
	}
}

cw_reload_plan_t *cw_reload_plan_new(const cw_config_t *running, const cw_config_t *next)
{
	cw_reload_plan_t *plan = cw_xcalloc(1, sizeof *plan);
	planner_t p = {plan, false, false};
	cw_config_diff_top(running, next, top_key_changed, &p);
	if (!cw_config_auth_equal(running->hub.auth, next->hub.auth) &&
	    cw_config_key_equal("hub.auth_id", running, next))
		refuse(plan, "authentication \"%s\" (the hub's credentials) changed: restart cachewarp "
		       "to apply it", next->hub.auth_id ? next->hub.auth_id : "");
	plan_sources(&p, running, next);
	plan_targets(&p, running, next);
	plan_entities(&p, running, next);
	return plan;
}

void cw_reload_plan_free(cw_reload_plan_t *plan)
{
	if (plan == NULL)
		return;
	for (size_t i = 0; i < plan->nrefusals; i++)
		free(plan->refusals[i]);
	free(plan->refusals);
	for (size_t i = 0; i < plan->nlive_keys; i++)
		free(plan->live_keys[i]);
	free(plan->live_keys);
	free(plan->sources);
	free(plan->targets);
	free(plan->entities);
	free(plan);
}

cw_reload_change_t cw_reload_change_of(const cw_reload_item_t *items, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(items[i].name, name) == 0)
			return items[i].change;
	return CW_RELOAD_UNCHANGED;
}

void cw_reload_list(const cw_reload_item_t *items, size_t n, const char *kind,
                    cw_reload_change_t change, cw_buf_t *out)
{
	for (size_t i = 0; i < n; i++)
		if (items[i].change == change)
			cw_buf_appendf(out, "%s%s:%s", out->len > 0 ? " " : "", kind, items[i].name);
}

bool cw_reload_plan_empty(const cw_reload_plan_t *plan)
{
	if (plan->nlive_keys > 0)
		return false;
	const cw_reload_item_t *lists[] = {plan->sources, plan->targets, plan->entities};
	size_t counts[] = {plan->nsources, plan->ntargets, plan->nentities};
	for (size_t l = 0; l < 3; l++)
		for (size_t i = 0; i < counts[l]; i++)
			if (lists[l][i].change != CW_RELOAD_UNCHANGED)
				return false;
	return true;
}
