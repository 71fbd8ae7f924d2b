/*
 * This file contains the apply loop every target shares (apply_loop.h): its
 * run and state, the hub's entities, heartbeats, and the target component.
 * apply_loop_batch.c applies each page the loop reads.
 */
#include "apply/apply_loop_internal.h"

#include "apply/layout.h"
#include "apply/mongodb_doc.h"
#include "apply/stream.h"
#include "apply/transform.h"

#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/retry.h"
#include "hub/consumers.h"
#include "hub/dead_letters.h"
#include "hub/entity_registry.h"
#include "hub/entity_store.h"
#include "hub/oplog_reader.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#define COMPONENT APL_COMPONENT
#define WAIT_SLICE_MS 200

cw_apply_loop_t *cw_apply_loop_new(const cw_apply_loop_opts_t *opts,
                                   const cw_target_backend_t *backend, void *self)
{
	cw_apply_loop_t *loop = cw_xcalloc(1, sizeof *loop);
	loop->consumer = cw_xstrdup(opts->consumer);
	loop->hub_url = cw_xstrdup(opts->hub_url);
	loop->hub_auth = opts->hub_auth;
	loop->nentities = opts->nentities;
	loop->entities = cw_xcalloc(opts->nentities + 1, sizeof *loop->entities);
	for (size_t i = 0; i < opts->nentities; i++)
		loop->entities[i] = cw_xstrdup(opts->entities[i]);
	loop->batch_size = opts->batch_size > 0 ? opts->batch_size : 1000;
	loop->poll_interval_ms = opts->poll_interval_ms > 0 ? opts->poll_interval_ms : 1000;
	loop->heartbeat_ms = opts->heartbeat_ms > 0 ? opts->heartbeat_ms : 1000;
	loop->refresh_ms = opts->refresh_ms > 0 ? opts->refresh_ms : 1000;
	loop->metrics = opts->metrics;
	loop->registry = opts->registry;
	loop->backend = backend;
	loop->self = self;
	loop->target = cw_xstrdup(opts->target != NULL ? opts->target : opts->consumer);
	loop->config = opts->config;
	loop->target_config = opts->target_config;
	loop->rng = (uint64_t)cw_clock_wall_us(cw_clock_system()) ^ (uintptr_t)loop;
	snprintf(loop->labels, sizeof loop->labels, "target=\"%s\"",
	         opts->target != NULL ? opts->target : opts->consumer);
	pthread_mutex_init(&loop->mutex, NULL);
	pthread_mutex_init(&loop->prefetch.mutex, NULL);
	pthread_cond_init(&loop->prefetch.cond, NULL);
	snprintf(loop->status.state, sizeof loop->status.state, "starting");
	loop->status.lag_bytes = -1;
	loop->status.lag_seconds = -1;
	loop->status.lag_ids = -1;
	if (loop->metrics != NULL) {
		cw_metrics_declare(loop->metrics, "cachewarp_apply_changes_total", CW_METRIC_COUNTER,
		                   "Oplog changes applied to a target, by entity and op.");
		cw_metrics_declare(loop->metrics, "cachewarp_apply_writes_total", CW_METRIC_COUNTER,
		                   "Writes made to a target after coalescing, by entity.");
		cw_metrics_declare(loop->metrics, "cachewarp_apply_batch_duration_seconds",
		                   CW_METRIC_HISTOGRAM, "Time to apply one oplog batch to a target.");
		cw_metrics_declare(loop->metrics, APL_READ_SECONDS_METRIC, CW_METRIC_COUNTER,
		                   "Seconds a target's apply loop spent reading oplog pages from the "
		                   "hub (its prefetch included).");
		cw_metrics_declare(loop->metrics, "cachewarp_consumer_lag_ids", CW_METRIC_GAUGE,
		                   "Oplog ids between the hub's head and a consumer's position.");
		cw_metrics_declare(loop->metrics, "cachewarp_consumer_lag_seconds", CW_METRIC_GAUGE,
		                   "Age of the newest change a behind consumer applied; 0 when caught up.");
		cw_metrics_declare(loop->metrics, "cachewarp_apply_errors_total", CW_METRIC_COUNTER,
		                   "Failed runs of a target's apply loop, by error code.");
		cw_metrics_declare(loop->metrics, "cachewarp_stream_events_total", CW_METRIC_COUNTER,
		                   "Changes of a stream (an entity on a target) by the state they "
		                   "reached: received, transforming, writing, completed, failed, "
		                   "retrying.");
		cw_metrics_declare(loop->metrics, "cachewarp_stream_failed", CW_METRIC_GAUGE,
		                   "1 while a stream is stopped by on_error: fail_stream, else 0.");
	}
	return loop;
}

/*
 * A new run opens every entity again (the backend's state may have moved),
 * but a stream stopped by fail_stream stays stopped and a retrying one keeps
 * its count: reconnecting to the target is not a reason to try them sooner.
 */
static void states_reset(cw_apply_loop_t *loop)
{
	for (size_t i = 0; i < loop->nstates; i++) {
		entity_state_t *st = &loop->states[i];
		if (!st->failed)
			st->applied = 0;   /* a failed stream's position holds the hub's retention */
		st->opened = st->caught_up = st->dropped = false;
	}
}

static void states_clear(cw_apply_loop_t *loop)
{
	for (size_t i = 0; i < loop->nstates; i++) {
		free(loop->states[i].name);
		cw_stream_transform_free(loop->states[i].transform);
	}
	free(loop->states);
	loop->states = NULL;
	loop->nstates = 0;
}

void cw_apply_loop_free(cw_apply_loop_t *loop)
{
	if (loop == NULL)
		return;
	for (size_t i = 0; i < loop->nentities; i++)
		free(loop->entities[i]);
	free(loop->entities);
	for (size_t i = 0; i < loop->nreplays; i++)
		free(loop->replays[i]);
	free(loop->replays);
	free(loop->replayed);
	states_clear(loop);
	cw_entity_store_list_free(loop->hub_entities, loop->nhub_entities);
	free(loop->consumer);
	free(loop->hub_url);
	free(loop->target);
	pthread_mutex_destroy(&loop->mutex);
	pthread_mutex_destroy(&loop->prefetch.mutex);
	pthread_cond_destroy(&loop->prefetch.cond);
	free(loop);
}

ssize_t apl_replay_index(const cw_apply_loop_t *loop, const char *entity)
{
	for (size_t i = 0; i < loop->nreplays; i++)
		if (strcmp(loop->replays[i], entity) == 0)
			return (ssize_t)i;
	return -1;
}

void apl_replay(cw_apply_loop_t *loop, const char *entity)
{
	if (apl_replay_index(loop, entity) >= 0)
		return;
	loop->replays = cw_xrealloc(loop->replays, (loop->nreplays + 1) * sizeof *loop->replays);
	loop->replayed = cw_xrealloc(loop->replayed, (loop->nreplays + 1) * sizeof *loop->replayed);
	loop->replayed[loop->nreplays] = 0;
	loop->replays[loop->nreplays++] = cw_xstrdup(entity);
}

void apl_forget_replay(cw_apply_loop_t *loop, const char *entity)
{
	ssize_t i = apl_replay_index(loop, entity);
	if (i < 0)
		return;
	free(loop->replays[i]);
	loop->nreplays--;
	loop->replays[i] = loop->replays[loop->nreplays];
	loop->replayed[i] = loop->replayed[loop->nreplays];
}

bool apl_wants(const cw_apply_loop_t *loop, const char *entity)
{
	if (loop->nentities == 0)
		return true;
	for (size_t i = 0; i < loop->nentities; i++)
		if (strcmp(loop->entities[i], entity) == 0)
			return true;
	return false;
}

const cw_entity_t *cw_apply_loop_entity(const cw_apply_loop_t *loop, const char *entity)
{
	for (size_t i = 0; i < loop->nhub_entities; i++)
		if (strcmp(loop->hub_entities[i].name, entity) == 0)
			return &loop->hub_entities[i];
	return NULL;
}

entity_state_t *apl_state_of(cw_apply_loop_t *loop, const char *entity)
{
	for (size_t i = 0; i < loop->nstates; i++)
		if (strcmp(loop->states[i].name, entity) == 0)
			return &loop->states[i];
	loop->states = cw_xrealloc(loop->states, (loop->nstates + 1) * sizeof *loop->states);
	entity_state_t *st = &loop->states[loop->nstates++];
	memset(st, 0, sizeof *st);
	st->name = cw_xstrdup(entity);
	return st;
}

void cw_apply_loop_entity_lost(cw_apply_loop_t *loop, const char *entity)
{
	entity_state_t *st = apl_state_of(loop, entity);
	st->opened = false;
	st->caught_up = false;
	st->applied = 0;
	apl_replay(loop, entity);
}

/* Opens entity in the backend: its applied id; not caught up: replayed. */
static int open_entity(cw_apply_loop_t *loop, const cw_entity_t *entity, entity_state_t *st,
                       cw_err_t *err)
{
	int64_t applied = 0;
	int rc = loop->backend->entity_open(loop->self, loop->hub, entity, &applied, err);
	if (rc != 0 && !cw_stream_error_is_target_wide(err)) {
		/* this entity's own trouble (a privilege, a name the server refuses): its stream waits */
		apl_stream_failure(loop, st, err, false);
		cw_err_clear(err);
		return 0;
	}
	if (rc != 0)
		return rc;
	st->applied = applied;
	st->opened = true;
	st->dropped = false;
	st->caught_up = applied >= loop->position;
	if (!st->caught_up)
		apl_replay(loop, entity->name);
	return 0;
}

/*
 * Reads the hub's entities (from the daemon's registry when there is one;
 * fresh: reloaded from the hub first): each one new to this run is opened in
 * the backend, each one deleted in the hub is dropped from it (once per run).
 */
static int refresh_entities(cw_apply_loop_t *loop, bool fresh, cw_err_t *err)
{
	cw_entity_t *entities = NULL;
	size_t count = 0;
	if (cw_entity_registry_list(loop->registry, loop->hub, fresh, &entities, &count, err) != 0)
		return CW_EDB;
	cw_entity_store_list_free(loop->hub_entities, loop->nhub_entities);
	loop->hub_entities = entities;
	loop->nhub_entities = count;
	loop->refreshed_ms = cw_clock_now_ms(cw_clock_system());
	for (size_t i = 0; i < count; i++) {
		const cw_entity_t *entity = &entities[i];
		if (!apl_wants(loop, entity->name))
			continue;
		entity_state_t *st = apl_state_of(loop, entity->name);
		int rc = 0;
		if (entity->status == CW_ENTITY_DELETED && !st->dropped) {
			bool removed = false;
			rc = loop->backend->entity_drop(loop->self, entity->name, &removed, err);
			if (rc != 0)
				return rc;
			apl_forget_replay(loop, entity->name);
			st->dropped = true;
			st->opened = false;
			if (removed)
				cw_log_kv(CW_LOG_INFO, COMPONENT, "entity deleted: its data removed", "target",
				          loop->consumer, "entity", entity->name, NULL);
		} else if (entity->status != CW_ENTITY_DELETED && !st->opened && !apl_stream_idle(loop, st) &&
		           !apl_stream_waiting(st, cw_clock_now_ms(cw_clock_system()))) {
			rc = open_entity(loop, entity, st, err);
		}
		if (rc != 0)
			return rc;
	}
	return 0;
}

/*
 * The entity a group of changes is for, opened: NULL when it is not applied
 * here (deleted, filtered out, unknown to the hub, its stream disabled or
 * failed), its changes dropped, or when its stream waits to open it again
 * (*state set, not opened: the stream is being replayed).
 */
int apl_entity_for_changes(cw_apply_loop_t *loop, const char *name, const cw_entity_t **out,
                           entity_state_t **state, cw_err_t *err)
{
	*out = NULL;
	*state = NULL;
	if (!apl_wants(loop, name))
		return 0;
	const cw_entity_t *entity = cw_apply_loop_entity(loop, name);
	if (entity == NULL) {   /* added since the last refresh: ask the hub itself */
		int rc = refresh_entities(loop, true, err);
		if (rc != 0)
			return rc;
		entity = cw_apply_loop_entity(loop, name);
	}
	if (entity == NULL || entity->status == CW_ENTITY_DELETED)
		return 0;
	entity_state_t *st = apl_state_of(loop, name);
	*state = st;
	if (apl_stream_idle(loop, st))
		return 0;
	if (!st->opened && !apl_stream_waiting(st, cw_clock_now_ms(cw_clock_system()))) {
		int rc = open_entity(loop, entity, st, err);
		if (rc != 0)
			return rc;
	}
	if (st->opened)
		*out = entity;
	return 0;
}

void cw_apply_loop_status(cw_apply_loop_t *loop, cw_component_status_t *out)
{
	pthread_mutex_lock(&loop->mutex);
	*out = loop->status;
	pthread_mutex_unlock(&loop->mutex);
}

/* The loop's state, as every component keeps it (passwords in the error masked). */
static void set_state(cw_apply_loop_t *loop, const char *state, bool healthy, const cw_err_t *err)
{
	cw_component_status_set(&loop->mutex, &loop->status, state, healthy,
	                        err != NULL ? err->message : NULL);
}

/* The position retention must honour: the global one, or an older apl_replay's or failed stream's. */
static int64_t hub_position(cw_apply_loop_t *loop)
{
	int64_t position = loop->position;
	for (size_t i = 0; i < loop->nreplays; i++) {
		const entity_state_t *st = apl_state_of(loop, loop->replays[i]);
		if (st->opened && st->applied < position)
			position = st->applied;
	}
	/* A stream stopped by fail_stream keeps the changes it has not applied in the hub. */
	for (size_t i = 0; i < loop->nstates; i++) {
		const entity_state_t *st = &loop->states[i];
		if (st->failed && st->applied > 0 && st->applied < position)
			position = st->applied;
	}
	return position;
}

static int heartbeat(cw_apply_loop_t *loop, bool force, cw_err_t *err)
{
	int64_t now = cw_clock_now_ms(cw_clock_system());
	if (!force && now - loop->last_heartbeat_ms < loop->heartbeat_ms)
		return 0;
	int64_t position = hub_position(loop), head = 0;
	if (cw_consumer_heartbeat(loop->hub, loop->consumer, position, err) != 0 ||
	    cw_oplog_last_id(loop->hub, &head, err) != 0)
		return CW_EDB;
	loop->last_heartbeat_ms = now;
	int64_t lag_ids = head > position ? head - position : 0;
	if (lag_ids == 0)
		loop->lag_seconds = 0;
	pthread_mutex_lock(&loop->mutex);
	loop->status.lag_ids = lag_ids;
	loop->status.lag_seconds = loop->lag_seconds;
	snprintf(loop->status.position, sizeof loop->status.position, "%lld",
	         (long long)loop->position);
	pthread_mutex_unlock(&loop->mutex);
	if (loop->metrics != NULL) {
		char labels[160];
		snprintf(labels, sizeof labels, "consumer=\"%s\"", loop->consumer);
		cw_metrics_gauge_set(loop->metrics, "cachewarp_consumer_lag_ids", labels, (double)lag_ids);
		cw_metrics_gauge_set(loop->metrics, "cachewarp_consumer_lag_seconds", labels,
		                     loop->lag_seconds);
	}
	return 0;
}

/*
 * While the backend fails (its server unreachable), the backlog keeps
 * growing in the hub: the lag gauges show it from the hub alone, in ids and
 * in the age of the oldest change not applied. Best effort.
 */
static void publish_backlog(cw_apply_loop_t *loop, int64_t position)
{
	int64_t head = 0;
	cw_change_batch_t next = CW_CHANGE_BATCH_INIT;
	if (cw_oplog_last_id(loop->hub, &head, NULL) != 0 ||
	    cw_oplog_fetch(loop->hub, NULL, 0, position, 1, &next, NULL) != 0) {
		cw_change_batch_free(&next);
		return;
	}
	int64_t now_us = cw_clock_wall_us(cw_clock_system());
	double lag_seconds = next.len > 0 && now_us > next.items[0].created_at_us
	                   ? (double)(now_us - next.items[0].created_at_us) / 1e6 : 0;
	cw_change_batch_free(&next);
	int64_t lag_ids = head > position ? head - position : 0;
	pthread_mutex_lock(&loop->mutex);
	loop->status.lag_ids = lag_ids;
	loop->status.lag_seconds = lag_seconds;
	pthread_mutex_unlock(&loop->mutex);
	if (loop->metrics != NULL) {
		char labels[160];
		snprintf(labels, sizeof labels, "consumer=\"%s\"", loop->consumer);
		cw_metrics_gauge_set(loop->metrics, "cachewarp_consumer_lag_ids", labels, (double)lag_ids);
		cw_metrics_gauge_set(loop->metrics, "cachewarp_consumer_lag_seconds", labels, lag_seconds);
	}
}

/*
 * How long the loop may sleep when the main read found nothing: 0 while a
 * apl_replay is due, until the next retry of a waiting stream, at most the poll
 * interval.
 */
static int64_t idle_wait_ms(cw_apply_loop_t *loop)
{
	int64_t now = cw_clock_now_ms(cw_clock_system()), wait = loop->poll_interval_ms;
	for (size_t i = 0; i < loop->nreplays; i++) {
		const entity_state_t *st = apl_state_of(loop, loop->replays[i]);
		int64_t until = st->next_attempt_ms > now ? st->next_attempt_ms - now : 0;
		if (until < wait)
			wait = until;
	}
	return wait;
}

/* Waits for a NOTIFY up to wait_ms, in slices so cancel is noticed. 0 or CW_E*. */
static int wait_for_changes(cw_oplog_reader_t *reader, int64_t wait_ms, cw_cancel_t *cancel,
                            cw_err_t *err)
{
	int64_t start = cw_clock_now_ms(cw_clock_system());
	for (;;) {
		if (cw_cancel_is_set(cancel))
			return CW_ECANCELED;
		int64_t left = wait_ms - (cw_clock_now_ms(cw_clock_system()) - start);
		if (left <= 0)
			return 0;
		int rc = cw_oplog_wait(reader, (int)(left < WAIT_SLICE_MS ? left : WAIT_SLICE_MS), err);
		if (rc != 0)
			return rc < 0 ? rc : 0;
	}
}

static void publish_position(cw_apply_loop_t *loop)
{
	pthread_mutex_lock(&loop->mutex);
	snprintf(loop->status.position, sizeof loop->status.position, "%lld",
	         (long long)loop->position);
	pthread_mutex_unlock(&loop->mutex);
}

/* The loop body, on a connected hub. */
static int apply_until_stopped(cw_apply_loop_t *loop, cw_oplog_reader_t *reader,
                               cw_cancel_t *cancel, cw_err_t *err)
{
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	int rc = 0;
	char labels[160];
	snprintf(labels, sizeof labels, "%s", loop->labels);
	while (rc == 0) {
		if (cw_cancel_is_set(cancel)) {
			rc = CW_ECANCELED;
			break;
		}
		if (cw_clock_now_ms(cw_clock_system()) - loop->refreshed_ms >= loop->refresh_ms &&
		    (rc = refresh_entities(loop, false, err)) != 0)
			break;
		if (loop->backend->housekeep != NULL &&
		    (rc = loop->backend->housekeep(loop->self, loop, loop->hub, err)) != 0)
			break;
		if ((rc = apl_replay_step(loop, err)) != 0 || (rc = apl_replay_letters(loop, err)) != 0)
			break;
		cw_change_batch_clear(&batch);
		/*
		 * A prefetch that found nothing after the position saves reading
		 * again: a change committed since then has notified the reader's
		 * connection, and the wait below returns at once.
		 */
		if (apl_prefetch_take(loop, loop->position, &batch) == APL_PREFETCH_NONE) {
			double read_started = cw_time_monotonic_s();
			rc = cw_oplog_read(reader, loop->position, loop->batch_size, &batch, err);
			if (loop->metrics != NULL)
				cw_metrics_counter_add(loop->metrics, APL_READ_SECONDS_METRIC, labels,
				                       cw_time_monotonic_s() - read_started);
			if (rc != 0)
				break;
		}
		/* A full page: more is likely waiting; read it while this one is applied. */
		if (batch.len == loop->batch_size)
			apl_prefetch_request(loop, batch.items[batch.len - 1].oplog_id);
		if (batch.len == 0) {
			if ((rc = heartbeat(loop, false, err)) != 0)
				break;
			int64_t wait_ms = idle_wait_ms(loop);
			if (wait_ms > 0)
				rc = wait_for_changes(reader, wait_ms, cancel, err);
			continue;
		}
		double started_s = cw_time_monotonic_s();
		if ((rc = apl_apply_batch(loop, &batch, err)) != 0)
			break;
		int64_t now_us = cw_clock_wall_us(cw_clock_system());
		int64_t newest = batch.items[batch.len - 1].created_at_us;
		loop->lag_seconds = batch.len < loop->batch_size ? 0
		                  : (now_us > newest ? (double)(now_us - newest) / 1e6 : 0);
		if (loop->metrics != NULL)
			cw_metrics_observe(loop->metrics, "cachewarp_apply_batch_duration_seconds", labels,
			                   cw_time_monotonic_s() - started_s);
		publish_position(loop);
		rc = heartbeat(loop, false, err);
	}
	cw_change_batch_free(&batch);
	return rc;
}

int cw_apply_loop_run(cw_apply_loop_t *loop, cw_cancel_t *cancel, cw_err_t *err)
{
	cw_oplog_reader_t *reader = NULL;
	int rc = 0;
	set_state(loop, "connecting", false, NULL);
	loop->hub = cw_hub_connect_auth(loop->hub_url, loop->hub_auth, err);
	if (loop->hub == NULL) {
		rc = CW_EDB;
		goto out;
	}
	reader = cw_oplog_reader_new(loop->hub, (const char *const *)loop->entities,
	                             loop->nentities, err);
	if (reader == NULL) {
		rc = CW_EDB;
		goto out;
	}
	int64_t registered = 0;
	if ((rc = cw_consumer_register(loop->hub, loop->consumer, &registered, err)) != 0)
		goto out;
	if ((rc = loop->backend->load_position(loop->self, &loop->position, err)) != 0)
		goto out;
	/* Every entity is opened again in this run: the backend's state may have moved. */
	states_reset(loop);
	for (size_t i = 0; i < loop->nreplays; i++)
		free(loop->replays[i]);
	loop->nreplays = 0;
	loop->refreshed_ms = 0;
	publish_position(loop);
	set_state(loop, "applying", true, NULL);
	if ((rc = heartbeat(loop, true, err)) != 0)
		goto out;
	apl_prefetch_start(loop);
	rc = apply_until_stopped(loop, reader, cancel, err);
	apl_prefetch_stop(loop);
	if (rc == CW_ECANCELED && loop->hub != NULL)
		heartbeat(loop, true, NULL);   /* best effort: the final position */
out:
	if (rc != 0 && rc != CW_ECANCELED && loop->hub != NULL)
		publish_backlog(loop, registered > loop->position ? registered : loop->position);
	cw_oplog_reader_free(reader);
	cw_hub_close(loop->hub);
	loop->hub = NULL;
	if (rc == CW_ECANCELED) {
		set_state(loop, "stopped", true, NULL);
	} else if (rc != 0) {
		set_state(loop, "retrying", false, err);
		if (loop->metrics != NULL) {
			char labels[200];
			snprintf(labels, sizeof labels, "%s,code=\"%s\"", loop->labels, cw_err_code_name(rc));
			cw_metrics_counter_add(loop->metrics, "cachewarp_apply_errors_total", labels, 1);
		}
	}
	return rc;
}

/* ---- the target component ------------------------------------------------ */

typedef struct apply_target {
	const cw_target_backend_t *backend;
	void *self;
	cw_apply_loop_t *loop;
} apply_target_t;

static void *target_open(const cw_component_ctx_t *ctx, cw_err_t *err)
{
	const cw_target_config_t *config = cw_config_target(ctx->config, ctx->name);
	if (config == NULL)
		return cw_err_set(err, CW_EINVAL, COMPONENT, "no target \"%s\" in the configuration",
		                  ctx->name), NULL;
	const cw_target_backend_t *backend = cw_target_backend_for(config->type);
	if (backend == NULL)
		return cw_err_set(err, CW_EINVAL, COMPONENT, "target \"%s\": its type has no backend "
		                  "in this build", ctx->name), NULL;
	void *self = backend->open(ctx, err);
	if (self == NULL)
		return NULL;
	apply_target_t *t = cw_xcalloc(1, sizeof *t);
	t->backend = backend;
	t->self = self;
	/* Run for some entities, the target is a consumer of its own: "<name>@<entities>". */
	char *scope = cw_component_scope(ctx->entities, ctx->nentities);
	char *consumer = scope[0] ? cw_xasprintf("%s@%s", ctx->name, scope) : cw_xstrdup(ctx->name);
	free(scope);
	cw_apply_loop_opts_t opts = {
		.consumer = consumer,
		.target = ctx->name,
		.hub_url = ctx->config->hub.url,
		.hub_auth = ctx->config->hub.auth,
		.entities = ctx->entities,
		.nentities = ctx->nentities,
		.batch_size = (size_t)ctx->config->apply.batch_size,
		.poll_interval_ms = ctx->config->apply.poll_interval_ms,
		.heartbeat_ms = 1000,
		.refresh_ms = 1000,
		.metrics = ctx->metrics,
		.registry = ctx->registry,
		.config = ctx->config,
		.target_config = config,
	};
	t->loop = cw_apply_loop_new(&opts, backend, self);
	free(consumer);
	return t;
}

static int target_run(void *self, cw_cancel_t *cancel, cw_err_t *err)
{
	apply_target_t *t = self;
	return cw_apply_loop_run(t->loop, cancel, err);
}

static void target_status(void *self, cw_component_status_t *out)
{
	apply_target_t *t = self;
	cw_apply_loop_status(t->loop, out);
}

static void target_close(void *self)
{
	apply_target_t *t = self;
	if (t == NULL)
		return;
	cw_apply_loop_free(t->loop);
	t->backend->close(t->self);
	free(t);
}

const cw_component_ops_t cw_apply_target_ops = {
	.type = "target",
	.open = target_open,
	.run = target_run,
	.status = target_status,
	.close = target_close,
};
