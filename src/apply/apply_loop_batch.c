/*
 * This file contains the apply loop's work on the changes of one page
 * (apply_loop_internal.h): grouping them per entity, applying each entity's
 * group in runs through the backend (coalesced, its stream's policy deciding
 * what a failure leads to), and the pages of the entities being replayed.
 */
#include "apply/apply_loop_internal.h"

#include "apply/coalesce.h"
#include "core/clock.h"
#include "core/failpoint.h"
#include "core/log.h"
#include "core/mem.h"
#include "hub/oplog_reader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#define COMPONENT APL_COMPONENT

static int group_cmp(const void *pa, const void *pb)
{
	const cw_change_t *a = *(const cw_change_t *const *)pa, *b = *(const cw_change_t *const *)pb;
	int c = strcmp(a->entity, b->entity);
	if (c != 0)
		return c;
	return a->oplog_id < b->oplog_id ? -1 : a->oplog_id > b->oplog_id;
}

void cw_apply_group_batch(const cw_change_batch_t *batch, const cw_change_t ***groups,
                          size_t **starts, size_t *ngroups)
{
	const cw_change_t **sorted = cw_xcalloc(batch->len + 1, sizeof *sorted);
	size_t *offsets = cw_xcalloc(batch->len + 2, sizeof *offsets);
	size_t n = 0;
	bool in_order = true;
	for (size_t i = 0; i < batch->len; i++) {
		sorted[i] = &batch->items[i];
		in_order = in_order && (i == 0 || group_cmp(&sorted[i - 1], &sorted[i]) <= 0);
	}
	/* A page of one entity (a snapshot, most traffic) is in order already. */
	if (!in_order)
		qsort(sorted, batch->len, sizeof *sorted, group_cmp);
	for (size_t i = 0; i < batch->len; i++)
		if (i == 0 || strcmp(sorted[i - 1]->entity, sorted[i]->entity) != 0)
			offsets[n++] = i;
	offsets[n] = batch->len;
	*groups = sorted;
	*starts = offsets;
	*ngroups = n;
}

static void count_changes(cw_apply_loop_t *loop, const char *entity,
                          const cw_change_t *const *changes, size_t n, size_t writes)
{
	if (loop->metrics == NULL)
		return;
	double by_op[3] = {0, 0, 0};
	for (size_t i = 0; i < n; i++)
		by_op[changes[i]->op]++;
	char labels[256];
	for (int op = 0; op < 3; op++) {
		if (by_op[op] == 0)
			continue;
		snprintf(labels, sizeof labels, "%s,entity=\"%s\",op=\"%s\"", loop->labels, entity,
		         cw_op_name((cw_op_t)op));
		cw_metrics_counter_add(loop->metrics, "cachewarp_apply_changes_total", labels, by_op[op]);
	}
	snprintf(labels, sizeof labels, "%s,entity=\"%s\"", loop->labels, entity);
	cw_metrics_counter_add(loop->metrics, "cachewarp_apply_writes_total", labels, (double)writes);
}

/*
 * Coalesces and applies one run of an entity's changes (in id order)
 * through the backend and records upto as its applied id. A failure of the
 * stream's own work is handled by its policy (retried alone, set aside,
 * stopped) and returns 0; *lagging is set when the stream must be replayed
 * from its position (retrying, or its data was lost).
 */
static int apply_run(cw_apply_loop_t *loop, const cw_entity_t *entity, entity_state_t *st,
                     const cw_change_t *const *changes, size_t n, int64_t upto, bool caught_up,
                     bool *lagging, cw_err_t *err)
{
	const char *name = entity->name;
	cw_write_list_t writes = CW_WRITE_LIST_INIT;
	apl_stream_count(loop, name, "received", (double)n);
	prepared_t prepared;
	prepare_result_t result = PREPARED;
	int rc = apl_prepare_changes(loop, entity, st, changes, n, &prepared, &result, err);
	if (rc != 0 || result != PREPARED) {
		*lagging = result == PREPARE_RETRY;
		apl_prepared_free(&prepared);
		return rc;
	}
	size_t received = n;
	if (prepared.changes != NULL) {
		changes = prepared.changes;
		n = prepared.n;
	}
	rc = cw_coalesce(changes, n, st->applied, &writes, err);
	bool lost = false;
	if (rc == 0) {
		apl_stream_count(loop, name, "writing", (double)writes.changes);
		rc = loop->backend->apply(loop->self, entity, &writes, upto, &lost, err);
	}
	if (rc != 0 && rc != CW_ECANCELED && !cw_stream_error_is_target_wide(err)) {
		stream_next_t next = apl_stream_failure(loop, st, err, true);
		cw_err_t why = *err;
		cw_err_clear(err);
		rc = 0;
		if (next == STREAM_RETRY) {
			*lagging = true;
		} else if (next == STREAM_SET_ASIDE) {
			cw_log_kv(CW_LOG_WARN, COMPONENT, "stream's retry budget spent: finding the changes "
			          "the target refuses", "target", loop->target, "entity", name, "error",
			          why.message, NULL);
			rc = apl_isolate(loop, entity, st, &writes, 0, writes.len, &lost, err);
			if (rc == 0 && !lost && !st->failed) {
				cw_write_list_t none = CW_WRITE_LIST_INIT;
				rc = loop->backend->apply(loop->self, entity, &none, upto, &lost, err);
			}
			if (rc != 0 || lost || st->failed)
				goto out;
			st->applied = upto;
			st->caught_up = st->caught_up || caught_up;
			st->attempts = 0;
			st->next_attempt_ms = 0;
			count_changes(loop, name, changes, n, writes.len);
		}
		goto out;
	}
	if (rc == 0 && lost) {
		cw_apply_loop_entity_lost(loop, name);
		*lagging = true;
	} else if (rc == 0) {
		if (st->attempts > 0)
			apl_stream_recovered(loop, st);
		st->applied = upto;
		st->caught_up = st->caught_up || caught_up;
		count_changes(loop, name, changes, n, writes.len);
		apl_stream_count(loop, name, "completed", (double)received);
	}
out:
	cw_write_list_clear(&writes);
	apl_prepared_free(&prepared);
	return rc;
}

/*
 * Applies one entity's changes (in id order): in runs of the stream's
 * batch_size when it has one, each recorded as applied up to its last id,
 * the whole up to upto. *lagging is set when the entity must be replayed
 * instead (its data was lost, it is behind, or its stream is retrying).
 */
static int apply_group(cw_apply_loop_t *loop, const char *name, const cw_change_t *const *changes,
                       size_t n, int64_t upto, bool replaying, bool *lagging, cw_err_t *err)
{
	const cw_entity_t *entity = NULL;
	entity_state_t *st = NULL;
	*lagging = false;
	int rc = apl_entity_for_changes(loop, name, &entity, &st, err);
	if (rc == 0 && entity == NULL && st != NULL && !st->opened && !apl_stream_idle(loop, st))
		*lagging = true;   /* its stream waits to open it again */
	if (rc != 0 || entity == NULL)
		return rc;
	if (!replaying && !st->caught_up) {
		*lagging = true;
		return 0;
	}
	bool caught_up = !replaying || upto >= loop->position;
	if (upto <= st->applied) {   /* all of it is in the backend already */
		st->caught_up = st->caught_up || caught_up;
		return 0;
	}
	int64_t batch_size = apl_policy_of(loop, st)->batch_size;
	size_t run = batch_size > 0 ? (size_t)batch_size : n;
	if (run == 0)
		run = 1;
	size_t from = 0;
	do {
		size_t to = n - from > run ? from + run : n;
		int64_t run_upto = to < n ? changes[to - 1]->oplog_id : upto;
		rc = apply_run(loop, entity, st, changes + from, to - from, run_upto,
		               to < n ? false : caught_up, lagging, err);
		from = to;
	} while (rc == 0 && !*lagging && !st->failed && from < n);
	return rc;
}

/* Applies one main batch and stores the global position after it. */
int apl_apply_batch(cw_apply_loop_t *loop, const cw_change_batch_t *batch, cw_err_t *err)
{
	const cw_change_t **sorted = NULL;
	size_t *starts = NULL, ngroups = 0;
	int64_t upto = batch->items[batch->len - 1].oplog_id;
	int rc = 0;
	cw_apply_group_batch(batch, &sorted, &starts, &ngroups);
	for (size_t g = 0; g < ngroups && rc == 0; g++) {
		const char *entity = sorted[starts[g]]->entity;
		bool lagging = false;
		if (apl_replay_index(loop, entity) >= 0)
			continue;   /* its apl_replay reads these changes itself */
		rc = apply_group(loop, entity, sorted + starts[g], starts[g + 1] - starts[g], upto,
		                 false, &lagging, err);
		if (rc == 0 && lagging)
			apl_replay(loop, entity);
	}
	free(sorted);
	free(starts);
	if (rc == 0 && CW_FAILPOINT("before_position_store"))
		rc = cw_err_set(err, CW_EIO, COMPONENT, "failpoint before_position_store");
	if (rc == 0)
		rc = loop->backend->store_position(loop->self, upto, err);
	if (rc == 0 && CW_FAILPOINT("after_position_store"))
		rc = cw_err_set(err, CW_EIO, COMPONENT, "failpoint after_position_store");
	if (rc == 0)
		loop->position = upto;
	return rc;
}

/* One page of each apl_replay; an entity whose page is short has caught up. */
int apl_replay_step(cw_apply_loop_t *loop, cw_err_t *err)
{
	cw_change_batch_t page = CW_CHANGE_BATCH_INIT;
	int rc = 0;
	for (size_t i = 0; i < loop->nreplays && rc == 0;) {
		/* A copy: reading the hub's entities may end this apl_replay (entity deleted). */
		char name[CW_ENTITY_NAME_MAX + 1];
		snprintf(name, sizeof name, "%s", loop->replays[i]);
		if (apl_stream_waiting(apl_state_of(loop, name), cw_clock_now_ms(cw_clock_system()))) {
			i++;   /* its stream retries later */
			continue;
		}
		const cw_entity_t *entity = NULL;
		entity_state_t *st = NULL;
		if ((rc = apl_entity_for_changes(loop, name, &entity, &st, err)) != 0)
			break;
		if (entity == NULL && st != NULL && !st->opened && !apl_stream_idle(loop, st)) {
			i++;   /* opening it failed again: its stream retries later */
			continue;
		}
		/*
		 * Only an entity that holds everything up to the global position may
		 * leave its apl_replay: the main loop skipped its changes while it was
		 * replaying, so one marked caught up earlier may still miss pages
		 * read since.
		 */
		if (entity == NULL || (st->caught_up && st->applied >= loop->position)) {
			apl_forget_replay(loop, name);
			continue;
		}
		const char *one[] = {name};
		cw_change_batch_clear(&page);
		rc = cw_oplog_fetch(loop->hub, one, 1, st->applied, loop->batch_size, &page, err);
		if (rc != 0)
			break;
		bool done = page.len < loop->batch_size;
		int64_t upto = page.len ? page.items[page.len - 1].oplog_id : st->applied;
		if (done && upto < loop->position)
			upto = loop->position;   /* nothing of it between its last row and the head */
		const cw_change_t **changes = cw_xcalloc(page.len + 1, sizeof *changes);
		for (size_t k = 0; k < page.len; k++)
			changes[k] = &page.items[k];
		bool lagging = false;
		rc = apply_group(loop, name, changes, page.len, upto, true, &lagging, err);
		free(changes);
		ssize_t at = apl_replay_index(loop, name);   /* reading the entities may have moved it */
		if (rc == 0 && at >= 0)
			loop->replayed[at] += (int64_t)page.len;
		if (rc == 0 && !lagging && (done || upto >= loop->position)) {
			/* A apl_replay that found nothing to apply only moved the entity's position: not news. */
			if (at >= 0 && loop->replayed[at] > 0) {
				char count[24];
				snprintf(count, sizeof count, "%lld", (long long)loop->replayed[at]);
				cw_log_kv(CW_LOG_INFO, COMPONENT, "entity replayed", "target", loop->consumer,
				          "entity", name, "changes", count, NULL);
			}
			apl_forget_replay(loop, name);
			continue;
		}
		i++;
	}
	cw_change_batch_free(&page);
	return rc;
}
