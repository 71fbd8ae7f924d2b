/*
 * This file contains each stream's side of the apply loop
 * (apply_loop_internal.h, docs/streams.md): its settings, what a failure of
 * its own work leads to (a retry alone, the refused writes set aside as dead
 * letters or skipped, the stream stopped), its transformation, and the
 * replay of its dead letters.
 */
#include "apply/apply_loop_internal.h"

#include "apply/layout.h"
#include "apply/mongodb_doc.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/retry.h"
#include "hub/dead_letters.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMPONENT APL_COMPONENT
/* How often the loop looks for dead letters its streams were asked to replay. */
#define LETTERS_MS 2000
/* Most dead letters one look replays. */
#define LETTERS_PER_LOOK 100

/* ---- the hub's entities -------------------------------------------------- */

/* The stream settings of st's entity, resolved once per run. */
const cw_stream_policy_t *apl_policy_of(cw_apply_loop_t *loop, entity_state_t *st)
{
	if (!st->resolved) {
		if (loop->config != NULL) {
			cw_stream_policy_resolve(loop->config, loop->target_config, st->name, &st->policy);
		} else {
			cw_config_t defaults;
			memset(&defaults, 0, sizeof defaults);
			defaults.retry = (cw_retry_policy_t)CW_RETRY_POLICY_DEFAULT;
			cw_stream_policy_resolve(&defaults, NULL, st->name, &st->policy);
		}
		st->resolved = true;
	}
	return &st->policy;
}
void apl_stream_count(cw_apply_loop_t *loop, const char *entity, const char *state, double n)
{
	if (loop->metrics == NULL || n <= 0)
		return;
	char labels[256];
	snprintf(labels, sizeof labels, "%s,entity=\"%s\",state=\"%s\"", loop->labels, entity, state);
	cw_metrics_counter_add(loop->metrics, "cachewarp_stream_events_total", labels, n);
}
/* A stream not applied now: disabled, or stopped by on_error: fail_stream. */
bool apl_stream_idle(cw_apply_loop_t *loop, entity_state_t *st)
{
	return !apl_policy_of(loop, st)->enabled || st->failed;
}
/* The failed streams into the status (failed[]), for /v1/status and /readyz. */
static void publish_failed(cw_apply_loop_t *loop)
{
	pthread_mutex_lock(&loop->mutex);
	loop->status.nfailed = 0;
	for (size_t i = 0; i < loop->nstates; i++) {
		const entity_state_t *st = &loop->states[i];
		if (st->failed)
			cw_component_status_add_failed(&loop->status, st->name, st->reason);
	}
	pthread_mutex_unlock(&loop->mutex);
}
/* on_error: fail_stream: the stream stops until the next start; the others go on. */
static void stream_fail(cw_apply_loop_t *loop, entity_state_t *st, const char *reason)
{
	st->failed = true;
	snprintf(st->reason, sizeof st->reason, "%s", reason);
	apl_forget_replay(loop, st->name);
	cw_log_kv(CW_LOG_ERROR, COMPONENT, "stream failed: stopped until cachewarp starts again; "
	          "the other streams go on", "target", loop->target, "entity", st->name, "reason",
	          reason, NULL);
	if (loop->metrics != NULL) {
		char labels[256];
		snprintf(labels, sizeof labels, "%s,entity=\"%s\"", loop->labels, st->name);
		cw_metrics_gauge_set(loop->metrics, "cachewarp_stream_failed", labels, 1);
	}
	publish_failed(loop);
}
/*
 * Counts a failure of st's stream (err: a refusal of its own work, not of
 * the whole target) and decides what comes next. can_set_aside: there are
 * writes to set aside (false when opening the entity failed).
 */
stream_next_t apl_stream_failure(cw_apply_loop_t *loop, entity_state_t *st, const cw_err_t *err,
                                 bool can_set_aside)
{
	const cw_stream_policy_t *policy = apl_policy_of(loop, st);
	int64_t now = cw_clock_now_ms(cw_clock_system());
	if (st->attempts++ == 0)
		st->first_failure_ms = now;
	bool permanent = cw_stream_error_is_permanent(policy, err);
	bool spent = permanent || cw_stream_budget_spent(policy, st->attempts, st->first_failure_ms, now);
	if (spent && policy->on_error != CW_ON_ERROR_RETRY) {
		if (policy->on_error != CW_ON_ERROR_FAIL_STREAM && can_set_aside)
			return STREAM_SET_ASIDE;
		stream_fail(loop, st, err->message);
		return STREAM_STOPPED;
	}
	int64_t delay = cw_stream_retry_delay(policy, st->attempts, &loop->rng);
	st->next_attempt_ms = now + delay;
	char attempt[24], wait[24];
	snprintf(attempt, sizeof attempt, "%lld", (long long)st->attempts);
	snprintf(wait, sizeof wait, "%lld", (long long)delay);
	cw_log_kv(CW_LOG_WARN, COMPONENT, "stream failed; retrying it alone, the others go on",
	          "target", loop->target, "entity", st->name, "attempt", attempt, "retry_in_ms", wait,
	          "code", err->server_code, "error", err->message, NULL);
	/* Visible in /v1/status while it retries; the target stays healthy. */
	pthread_mutex_lock(&loop->mutex);
	char line[sizeof loop->status.last_error + CW_ENTITY_NAME_MAX + 48];
	snprintf(line, sizeof line, "stream %s retrying (attempt %lld): %s", st->name,
	         (long long)st->attempts, err->message);
	size_t len = strnlen(line, sizeof loop->status.last_error - 1);
	memcpy(loop->status.last_error, line, len);
	loop->status.last_error[len] = '\0';
	pthread_mutex_unlock(&loop->mutex);
	apl_stream_count(loop, st->name, "retrying", 1);
	apl_replay(loop, st->name);
	return STREAM_RETRY;
}
void apl_stream_recovered(cw_apply_loop_t *loop, entity_state_t *st)
{
	char attempts[24], prefix[CW_ENTITY_NAME_MAX + 16];
	snprintf(attempts, sizeof attempts, "%lld", (long long)st->attempts);
	cw_log_kv(CW_LOG_INFO, COMPONENT, "stream recovered", "target", loop->target, "entity",
	          st->name, "failed_attempts", attempts, NULL);
	snprintf(prefix, sizeof prefix, "stream %s retrying", st->name);
	pthread_mutex_lock(&loop->mutex);
	if (strncmp(loop->status.last_error, prefix, strlen(prefix)) == 0)
		loop->status.last_error[0] = '\0';
	pthread_mutex_unlock(&loop->mutex);
	st->attempts = 0;
	st->next_attempt_ms = 0;
}

/* A retrying stream's next attempt is not due yet. */
bool apl_stream_waiting(const entity_state_t *st, int64_t now)
{
	return st->next_attempt_ms > now;
}
void apl_prepared_free(prepared_t *p)
{
	for (size_t i = 0; p->copies != NULL && i < p->n; i++)
		free(p->copies[i].data);
	free(p->copies);
	free(p->changes);
	memset(p, 0, sizeof *p);
}
/*
 * The stream's transformation, compiled at its first use; NULL when the
 * stream has none. A transformation that cannot be compiled stops the
 * stream (*stopped).
 */
static const cw_stream_transform_t *transform_of(cw_apply_loop_t *loop, entity_state_t *st,
                                                 bool *stopped)
{
	*stopped = false;
	if (st->transform_ready)
		return st->transform;
	const char *id = apl_policy_of(loop, st)->transformation_id;
	if (id != NULL) {
		const cw_transformation_config_t *tc =
			loop->config != NULL ? cw_config_transformation(loop->config, id) : NULL;
		cw_err_t why = {0};
		if (tc == NULL)
			cw_err_set(&why, CW_EINVAL, COMPONENT, "transformation \"%s\" is not configured", id);
		else
			st->transform = cw_stream_transform_new(tc, &why);
		if (st->transform == NULL) {
			stream_fail(loop, st, why.message);
			*stopped = true;
			return NULL;
		}
	}
	st->transform_ready = true;
	return st->transform;
}
/*
 * Sets aside a change its transformation refused (why), as the
 * transformation's error_handling says. *result: the stream's next state.
 */
static int transform_refused(cw_apply_loop_t *loop, entity_state_t *st, const cw_change_t *change,
                             const cw_err_t *why, prepare_result_t *result, cw_err_t *err)
{
	const cw_stream_policy_t *policy = apl_policy_of(loop, st);
	*result = PREPARED;
	switch (policy->on_transform_error) {
	case CW_ON_ERROR_FAIL_STREAM:
		stream_fail(loop, st, why->message);
		*result = PREPARE_STOPPED;
		return 0;
	case CW_ON_ERROR_RETRY: {
		stream_next_t next = apl_stream_failure(loop, st, why, false);
		*result = next == STREAM_STOPPED ? PREPARE_STOPPED : PREPARE_RETRY;
		return 0;
	}
	case CW_ON_ERROR_SKIP:
		apl_stream_count(loop, st->name, "failed", 1);
		cw_log_kv(CW_LOG_WARN, COMPONENT, "change its transformation refused: skipped", "target",
		          loop->target, "entity", st->name, "doc_id", change->doc_id, "error",
		          why->message, NULL);
		return 0;
	case CW_ON_ERROR_DEAD_LETTER:
		break;
	}
	apl_stream_count(loop, st->name, "failed", 1);
	cw_dead_letter_t letter = {
		.target = loop->target, .entity = st->name, .doc_id = change->doc_id,
		.oplog_id = change->oplog_id, .version = change->version, .op = change->op,
		.data = change->data, .stage = CW_DEAD_LETTER_TRANSFORM, .error = (char *)why->message,
	};
	int rc = cw_dead_letter_add(loop->hub, &letter, err);
	if (rc == 0)
		cw_log_kv(CW_LOG_WARN, COMPONENT, "change its transformation refused: set aside as a "
		          "dead letter", "target", loop->target, "entity", st->name, "doc_id",
		          change->doc_id, "error", why->message, NULL);
	return rc;
}
/*
 * The changes of entity as its stream's backend takes them, into p: a
 * document entity's "doc" relaxed for a backend that reads JSON (and for a
 * transformation), then each upsert through the stream's transformation.
 * A change the transformation refuses is handled by its error_handling.
 */
int apl_prepare_changes(cw_apply_loop_t *loop, const cw_entity_t *entity, entity_state_t *st,
                        const cw_change_t *const *changes, size_t n, prepared_t *p,
                        prepare_result_t *result, cw_err_t *err)
{
	memset(p, 0, sizeof *p);
	*result = PREPARED;
	bool stopped = false;
	const cw_stream_transform_t *transform = transform_of(loop, st, &stopped);
	if (stopped) {
		*result = PREPARE_STOPPED;
		return 0;
	}
	bool document = cw_layout_of(entity) == CW_LAYOUT_DOCUMENT;
	bool relax = document && (!loop->backend->exact_bson || transform != NULL);
	if (!relax && transform == NULL)
		return 0;   /* the hub's changes as they are */
	p->copies = cw_xcalloc(n + 1, sizeof *p->copies);
	p->changes = cw_xcalloc(n + 1, sizeof *p->changes);
	int rc = 0;
	if (transform != NULL)
		apl_stream_count(loop, st->name, "transforming", (double)n);
	for (size_t i = 0; i < n && rc == 0 && *result == PREPARED; i++) {
		const cw_change_t *change = changes[i];
		char *data = NULL;
		if (change->op == CW_OP_UPSERT) {
			char *relaxed = relax ? cw_mdoc_relaxed_data(change->data) : NULL;
			/* unreadable as extended JSON: the hub's text as it is */
			data = relaxed != NULL ? relaxed : cw_xstrdup(change->data);
		}
		if (data != NULL && transform != NULL) {
			char *shaped = NULL;
			cw_err_t why = {0};
			if (cw_stream_transform_apply(transform, data, document, &shaped, &why) != 0) {
				free(data);
				rc = transform_refused(loop, st, change, &why, result, err);
				continue;
			}
			free(data);
			data = shaped;
		}
		p->copies[p->n] = *change;
		p->copies[p->n].data = data;
		p->changes[p->n] = &p->copies[p->n];
		p->n++;
	}
	return rc;
}
/*
 * Sets w aside (err holds the target's refusal of it): a dead letter in the
 * hub, or skipped with a log line, as the stream's on_error says. A sweep
 * cannot be set aside without losing deletes: the stream fails instead.
 */
static int set_aside(cw_apply_loop_t *loop, entity_state_t *st, const cw_write_t *w,
                     const cw_err_t *why, cw_err_t *err)
{
	const cw_stream_policy_t *policy = apl_policy_of(loop, st);
	if (w->kind == CW_WRITE_SWEEP) {
		stream_fail(loop, st, why->message);
		return 0;
	}
	apl_stream_count(loop, st->name, "failed", 1);
	if (policy->on_error == CW_ON_ERROR_SKIP) {
		cw_log_kv(CW_LOG_WARN, COMPONENT, "change refused by the target: skipped (on_error: skip)",
		          "target", loop->target, "entity", st->name, "doc_id", w->doc_id, "error",
		          why->message, NULL);
		return 0;
	}
	char *data = w->kind == CW_WRITE_UPSERT ? cw_write_json(w) : NULL;
	cw_dead_letter_t letter = {
		.target = loop->target, .entity = st->name, .doc_id = (char *)w->doc_id,
		.oplog_id = w->oplog_id, .version = w->version,
		.op = w->kind == CW_WRITE_UPSERT ? CW_OP_UPSERT : CW_OP_DELETE, .data = data,
		.stage = CW_DEAD_LETTER_WRITE, .error = (char *)why->message,
		.error_code = (char *)why->server_code,
	};
	int rc = cw_dead_letter_add(loop->hub, &letter, err);
	free(data);
	if (rc == 0)
		cw_log_kv(CW_LOG_WARN, COMPONENT, "change refused by the target: set aside as a dead "
		          "letter", "target", loop->target, "entity", st->name, "doc_id", w->doc_id,
		          "error", why->message, NULL);
	return rc;
}
/*
 * Applies writes[from, to) without moving the stream's position, halving
 * the range until each write the target refuses is alone, and sets those
 * aside. Errors of the whole target are returned.
 */
int apl_isolate(cw_apply_loop_t *loop, const cw_entity_t *entity, entity_state_t *st,
                const cw_write_list_t *writes, size_t from, size_t to, bool *lost,
                cw_err_t *err)
{
	if (from >= to || st->failed)
		return 0;
	cw_write_list_t part = {writes->items + from, to - from, 0};
	int rc = loop->backend->apply(loop->self, entity, &part, st->applied, lost, err);
	if (rc == 0 || *lost || cw_stream_error_is_target_wide(err))
		return rc;
	if (to - from == 1) {
		cw_err_t why = *err;
		cw_err_clear(err);
		return set_aside(loop, st, &writes->items[from], &why, err);
	}
	cw_err_clear(err);
	size_t mid = from + (to - from) / 2;
	rc = apl_isolate(loop, entity, st, writes, from, mid, lost, err);
	if (rc == 0 && !*lost)
		rc = apl_isolate(loop, entity, st, writes, mid, to, lost, err);
	return rc;
}
/*
 * Tries again one dead letter its stream was asked to apl_replay (status
 * apl_replay): dropped once the target takes it, or when a newer change of its
 * document is applied already (the letter would put an older state back);
 * recorded as failed again, one more attempt, when the target refuses it.
 */
static int replay_letter(cw_apply_loop_t *loop, const cw_dead_letter_t *letter, cw_err_t *err)
{
	const cw_entity_t *entity = NULL;
	entity_state_t *st = NULL;
	int rc = apl_entity_for_changes(loop, letter->entity, &entity, &st, err);
	if (rc != 0 || entity == NULL || apl_replay_index(loop, letter->entity) >= 0)
		return rc;   /* its stream is not applying now: next time */
	cw_dead_letter_filter_t this = CW_DEAD_LETTER_FILTER_ALL;
	this.id = letter->id;
	bool superseded = false;
	if ((rc = cw_dead_letter_superseded(loop->hub, letter, st->applied, &superseded, err)) != 0)
		return rc;
	char id[24];
	snprintf(id, sizeof id, "%lld", (long long)letter->id);
	if (superseded) {
		cw_log_kv(CW_LOG_INFO, COMPONENT, "dead letter dropped: a newer change of its document "
		          "is applied", "target", loop->target, "entity", letter->entity, "doc_id",
		          letter->doc_id, "dead_letter", id, NULL);
		return cw_dead_letter_drop(loop->hub, &this, NULL, err);
	}
	cw_change_t change = {
		.oplog_id = letter->oplog_id, .op = letter->op, .entity = letter->entity,
		.doc_id = letter->doc_id, .data = letter->data, .version = letter->version,
	};
	const cw_change_t *one[] = {&change};
	const cw_change_t *const *ready = one;
	prepared_t prepared = {0};
	if (letter->stage == CW_DEAD_LETTER_TRANSFORM) {
		/* again through the (perhaps corrected) transformation: refused, it is recorded again */
		prepare_result_t result = PREPARED;
		rc = apl_prepare_changes(loop, entity, st, one, 1, &prepared, &result, err);
		if (rc != 0 || result != PREPARED || (prepared.changes != NULL && prepared.n == 0)) {
			apl_prepared_free(&prepared);
			return rc;
		}
		if (prepared.changes != NULL)
			ready = prepared.changes;
	}
	cw_write_list_t writes = CW_WRITE_LIST_INIT;
	bool lost = false;
	rc = cw_coalesce(ready, 1, 0, &writes, err);
	if (rc == 0)
		rc = loop->backend->apply(loop->self, entity, &writes, st->applied, &lost, err);
	cw_write_list_clear(&writes);
	apl_prepared_free(&prepared);
	if (rc == 0 && lost) {
		cw_apply_loop_entity_lost(loop, letter->entity);
		return 0;
	}
	if (rc == 0) {
		apl_stream_count(loop, letter->entity, "completed", 1);
		cw_log_kv(CW_LOG_INFO, COMPONENT, "dead letter replayed", "target", loop->target, "entity",
		          letter->entity, "doc_id", letter->doc_id, "dead_letter", id, NULL);
		return cw_dead_letter_drop(loop->hub, &this, NULL, err);
	}
	if (cw_stream_error_is_target_wide(err))
		return rc;
	cw_dead_letter_t again = *letter;
	cw_log_kv(CW_LOG_WARN, COMPONENT, "dead letter refused again", "target", loop->target,
	          "entity", letter->entity, "doc_id", letter->doc_id, "dead_letter", id, "error",
	          err->message, NULL);
	cw_err_t why = *err;
	cw_err_clear(err);
	again.error = why.message;
	again.error_code = why.server_code;
	return cw_dead_letter_add(loop->hub, &again, err);
}
/* Every LETTERS_MS: the dead letters of this target asked to be replayed. */
int apl_replay_letters(cw_apply_loop_t *loop, cw_err_t *err)
{
	int64_t now = cw_clock_now_ms(cw_clock_system());
	if (now - loop->letters_ms < LETTERS_MS)
		return 0;
	loop->letters_ms = now;
	cw_dead_letter_filter_t filter = CW_DEAD_LETTER_FILTER_ALL;
	filter.target = loop->target;
	filter.status = CW_DEAD_LETTER_REPLAY;
	filter.limit = LETTERS_PER_LOOK;
	cw_dead_letter_t *letters = NULL;
	size_t count = 0;
	int rc = cw_dead_letter_list(loop->hub, &filter, &letters, &count, err);
	for (size_t i = 0; rc == 0 && i < count; i++)
		if (apl_wants(loop, letters[i].entity))
			rc = replay_letter(loop, &letters[i], err);
	cw_dead_letter_list_free(letters, count);
	return rc;
}
