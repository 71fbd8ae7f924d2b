/* This file contains the apply loop every target shares (apply_loop.h). */
#include "apply/apply_loop.h"

#include "apply/layout.h"
#include "apply/mongodb_doc.h"
#include "apply/stream.h"
#include "apply/transform.h"

#include "core/clock.h"
#include "core/config.h"
#include "core/failpoint.h"
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

#define COMPONENT "apply"
#define WAIT_SLICE_MS 200
/* How often the loop looks for dead letters its streams were asked to replay. */
#define LETTERS_MS 2000
/* Most dead letters one look replays. */
#define LETTERS_PER_LOOK 100

/*
 * The next page of the main read, fetched on a hub connection of its own
 * while the loop applies the current one: a target that is behind reads the
 * hub and writes its database at the same time.
 */
typedef struct prefetch {
	pthread_t thread;
	bool started;
	pthread_mutex_t mutex;
	pthread_cond_t cond;
	const char *hub_url;          /* borrowed from the loop */
	const cw_auth_config_t *hub_auth;  /* borrowed from the loop */
	const char *const *entities;  /* borrowed from the loop */
	size_t nentities;
	size_t limit;
	bool requested;               /* a page after `after` was asked for */
	bool done;                    /* ... and is in batch (or failed: rc) */
	bool stop;
	int64_t after;
	cw_change_batch_t batch;
	int rc;
} prefetch_t;

/* What the loop knows of one entity in this run. */
typedef struct entity_state {
	char *name;                   /* owned */
	int64_t applied;              /* every change up to this id is in the backend */
	bool opened;                  /* entity_open ran in this run (and since it was lost) */
	bool caught_up;               /* every change up to the global position is applied */
	bool dropped;                 /* deleted in the hub; the backend dropped it in this run */
	/* The stream: this entity on this target (stream.h). */
	bool resolved;                /* policy holds the stream's settings */
	cw_stream_policy_t policy;
	bool failed;                  /* stopped by on_error: fail_stream, until the next run */
	char reason[CW_ERR_MESSAGE_LEN];   /* why it failed */
	int64_t attempts;             /* failures in a row */
	int64_t first_failure_ms;
	int64_t next_attempt_ms;      /* a retrying stream waits until then */
	bool transform_ready;         /* transform is compiled (or the stream has none) */
	cw_stream_transform_t *transform;   /* owned, NULL without one */
} entity_state_t;

struct cw_apply_loop {
	char *consumer;
	char *hub_url;
	const cw_auth_config_t *hub_auth;   /* borrowed */
	char **entities;
	size_t nentities;
	size_t batch_size;
	int64_t poll_interval_ms;
	int64_t heartbeat_ms;
	int64_t refresh_ms;
	cw_metrics_t *metrics;
	cw_entity_registry_t *registry;   /* borrowed, may be NULL */
	const cw_target_backend_t *backend;
	void *self;                   /* the backend's, borrowed */
	char labels[160];             /* target="<consumer>" */
	char *target;                 /* the target's name: dead letters and stream labels */
	const cw_config_t *config;    /* borrowed, may be NULL */
	const cw_target_config_t *target_config;   /* borrowed, may be NULL */
	uint64_t rng;                 /* retry jitter */
	int64_t letters_ms;           /* when dead letters were last looked for */

	/* Run-thread state. */
	cw_hub_t *hub;
	int64_t position;             /* global position, as stored by the backend */
	cw_entity_t *hub_entities;    /* the hub's entities (deleted ones too), as last read */
	size_t nhub_entities;
	int64_t refreshed_ms;         /* when they were read; 0 = read at the next iteration */
	entity_state_t *states;       /* per entity met in this run, owned */
	size_t nstates;
	char **replays;               /* entities being replayed, owned */
	int64_t *replayed;            /* changes each replay has applied so far; as replays */
	size_t nreplays;
	int64_t last_heartbeat_ms;
	double lag_seconds;

	pthread_mutex_t mutex;        /* guards status */
	cw_component_status_t status;
	prefetch_t prefetch;
};

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

static ssize_t replay_index(const cw_apply_loop_t *loop, const char *entity)
{
	for (size_t i = 0; i < loop->nreplays; i++)
		if (strcmp(loop->replays[i], entity) == 0)
			return (ssize_t)i;
	return -1;
}

static void replay(cw_apply_loop_t *loop, const char *entity)
{
	if (replay_index(loop, entity) >= 0)
		return;
	loop->replays = cw_xrealloc(loop->replays, (loop->nreplays + 1) * sizeof *loop->replays);
	loop->replayed = cw_xrealloc(loop->replayed, (loop->nreplays + 1) * sizeof *loop->replayed);
	loop->replayed[loop->nreplays] = 0;
	loop->replays[loop->nreplays++] = cw_xstrdup(entity);
}

static void forget_replay(cw_apply_loop_t *loop, const char *entity)
{
	ssize_t i = replay_index(loop, entity);
	if (i < 0)
		return;
	free(loop->replays[i]);
	loop->nreplays--;
	loop->replays[i] = loop->replays[loop->nreplays];
	loop->replayed[i] = loop->replayed[loop->nreplays];
}

/* ---- the hub's entities -------------------------------------------------- */

/* The stream settings of st's entity, resolved once per run. */
static const cw_stream_policy_t *policy_of(cw_apply_loop_t *loop, entity_state_t *st)
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

static void stream_count(cw_apply_loop_t *loop, const char *entity, const char *state, double n)
{
	if (loop->metrics == NULL || n <= 0)
		return;
	char labels[256];
	snprintf(labels, sizeof labels, "%s,entity=\"%s\",state=\"%s\"", loop->labels, entity, state);
	cw_metrics_counter_add(loop->metrics, "cachewarp_stream_events_total", labels, n);
}

static bool wants(const cw_apply_loop_t *loop, const char *entity)
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

static entity_state_t *state_of(cw_apply_loop_t *loop, const char *entity)
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

/* A stream not applied now: disabled, or stopped by on_error: fail_stream. */
static bool stream_idle(cw_apply_loop_t *loop, entity_state_t *st)
{
	return !policy_of(loop, st)->enabled || st->failed;
}

/* The failed streams into the status (failed[]), for /v1/status and /readyz. */
static void publish_failed(cw_apply_loop_t *loop)
{
	pthread_mutex_lock(&loop->mutex);
	loop->status.nfailed = 0;
	for (size_t i = 0; i < loop->nstates; i++) {
		const entity_state_t *st = &loop->states[i];
		if (!st->failed)
			continue;
		if (loop->status.nfailed < CW_COMPONENT_FAILED_MAX) {
			cw_failed_entity_t *f = &loop->status.failed[loop->status.nfailed];
			snprintf(f->entity, sizeof f->entity, "%s", st->name);
			snprintf(f->reason, sizeof f->reason, "%s", st->reason);
		}
		loop->status.nfailed++;
	}
	pthread_mutex_unlock(&loop->mutex);
}

static void forget_replay(cw_apply_loop_t *loop, const char *entity);

/* on_error: fail_stream: the stream stops until the next start; the others go on. */
static void stream_fail(cw_apply_loop_t *loop, entity_state_t *st, const char *reason)
{
	st->failed = true;
	snprintf(st->reason, sizeof st->reason, "%s", reason);
	forget_replay(loop, st->name);
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

/* What a stream does after a failure of its own work. */
typedef enum stream_next {
	STREAM_RETRY = 0,    /* wait, then replay from its position */
	STREAM_SET_ASIDE,    /* budget spent: set the refused writes aside, apply the rest */
	STREAM_STOPPED,      /* fail_stream */
} stream_next_t;

/*
 * Counts a failure of st's stream (err: a refusal of its own work, not of
 * the whole target) and decides what comes next. can_set_aside: there are
 * writes to set aside (false when opening the entity failed).
 */
static stream_next_t stream_failure(cw_apply_loop_t *loop, entity_state_t *st, const cw_err_t *err,
                                    bool can_set_aside)
{
	const cw_stream_policy_t *policy = policy_of(loop, st);
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
	stream_count(loop, st->name, "retrying", 1);
	replay(loop, st->name);
	return STREAM_RETRY;
}

/* A retrying stream's next attempt is not due yet. */
static bool stream_waiting(const entity_state_t *st, int64_t now)
{
	return st->next_attempt_ms > now;
}

void cw_apply_loop_entity_lost(cw_apply_loop_t *loop, const char *entity)
{
	entity_state_t *st = state_of(loop, entity);
	st->opened = false;
	st->caught_up = false;
	st->applied = 0;
	replay(loop, entity);
}

/* Opens entity in the backend: its applied id; not caught up: replayed. */
static int open_entity(cw_apply_loop_t *loop, const cw_entity_t *entity, entity_state_t *st,
                       cw_err_t *err)
{
	int64_t applied = 0;
	int rc = loop->backend->entity_open(loop->self, loop->hub, entity, &applied, err);
	if (rc != 0 && !cw_stream_error_is_target_wide(err)) {
		/* this entity's own trouble (a privilege, a name the server refuses): its stream waits */
		stream_failure(loop, st, err, false);
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
		replay(loop, entity->name);
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
		if (!wants(loop, entity->name))
			continue;
		entity_state_t *st = state_of(loop, entity->name);
		int rc = 0;
		if (entity->status == CW_ENTITY_DELETED && !st->dropped) {
			bool removed = false;
			rc = loop->backend->entity_drop(loop->self, entity->name, &removed, err);
			if (rc != 0)
				return rc;
			forget_replay(loop, entity->name);
			st->dropped = true;
			st->opened = false;
			if (removed)
				cw_log_kv(CW_LOG_INFO, COMPONENT, "entity deleted: its data removed", "target",
				          loop->consumer, "entity", entity->name, NULL);
		} else if (entity->status != CW_ENTITY_DELETED && !st->opened && !stream_idle(loop, st) &&
		           !stream_waiting(st, cw_clock_now_ms(cw_clock_system()))) {
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
static int entity_for_changes(cw_apply_loop_t *loop, const char *name, const cw_entity_t **out,
                              entity_state_t **state, cw_err_t *err)
{
	*out = NULL;
	*state = NULL;
	if (!wants(loop, name))
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
	entity_state_t *st = state_of(loop, name);
	*state = st;
	if (stream_idle(loop, st))
		return 0;
	if (!st->opened && !stream_waiting(st, cw_clock_now_ms(cw_clock_system()))) {
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

static void set_state(cw_apply_loop_t *loop, const char *state, bool healthy, const cw_err_t *err)
{
	pthread_mutex_lock(&loop->mutex);
	snprintf(loop->status.state, sizeof loop->status.state, "%s", state);
	loop->status.healthy = healthy;
	if (err != NULL)
		snprintf(loop->status.last_error, sizeof loop->status.last_error, "%s", err->message);
	pthread_mutex_unlock(&loop->mutex);
}

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
	for (size_t i = 0; i < batch->len; i++)
		sorted[i] = &batch->items[i];
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

/* A stream's changes as the backend gets them: relaxed and transformed copies. */
typedef struct prepared {
	cw_change_t *copies;          /* owned, each data owned */
	const cw_change_t **changes;  /* owned array of pointers into copies */
	size_t n;
} prepared_t;

static void prepared_free(prepared_t *p)
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
	const char *id = policy_of(loop, st)->transformation_id;
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

/* What became of a stream's changes on their way to the backend. */
typedef enum prepare_result {
	PREPARED = 0,        /* p holds the changes to apply (some may have been set aside) */
	PREPARE_RETRY,       /* a transformation failed; the stream retries later */
	PREPARE_STOPPED,     /* the stream was stopped */
} prepare_result_t;

/*
 * Sets aside a change its transformation refused (why), as the
 * transformation's error_handling says. *result: the stream's next state.
 */
static int transform_refused(cw_apply_loop_t *loop, entity_state_t *st, const cw_change_t *change,
                             const cw_err_t *why, prepare_result_t *result, cw_err_t *err)
{
	const cw_stream_policy_t *policy = policy_of(loop, st);
	*result = PREPARED;
	switch (policy->on_transform_error) {
	case CW_ON_ERROR_FAIL_STREAM:
		stream_fail(loop, st, why->message);
		*result = PREPARE_STOPPED;
		return 0;
	case CW_ON_ERROR_RETRY: {
		stream_next_t next = stream_failure(loop, st, why, false);
		*result = next == STREAM_STOPPED ? PREPARE_STOPPED : PREPARE_RETRY;
		return 0;
	}
	case CW_ON_ERROR_SKIP:
		stream_count(loop, st->name, "failed", 1);
		cw_log_kv(CW_LOG_WARN, COMPONENT, "change its transformation refused: skipped", "target",
		          loop->target, "entity", st->name, "doc_id", change->doc_id, "error",
		          why->message, NULL);
		return 0;
	case CW_ON_ERROR_DEAD_LETTER:
		break;
	}
	stream_count(loop, st->name, "failed", 1);
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
static int prepare_changes(cw_apply_loop_t *loop, const cw_entity_t *entity, entity_state_t *st,
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
		stream_count(loop, st->name, "transforming", (double)n);
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
	const cw_stream_policy_t *policy = policy_of(loop, st);
	if (w->kind == CW_WRITE_SWEEP) {
		stream_fail(loop, st, why->message);
		return 0;
	}
	stream_count(loop, st->name, "failed", 1);
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
static int isolate(cw_apply_loop_t *loop, const cw_entity_t *entity, entity_state_t *st,
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
	rc = isolate(loop, entity, st, writes, from, mid, lost, err);
	if (rc == 0 && !*lost)
		rc = isolate(loop, entity, st, writes, mid, to, lost, err);
	return rc;
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
	stream_count(loop, name, "received", (double)n);
	prepared_t prepared;
	prepare_result_t result = PREPARED;
	int rc = prepare_changes(loop, entity, st, changes, n, &prepared, &result, err);
	if (rc != 0 || result != PREPARED) {
		*lagging = result == PREPARE_RETRY;
		prepared_free(&prepared);
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
		stream_count(loop, name, "writing", (double)writes.changes);
		rc = loop->backend->apply(loop->self, entity, &writes, upto, &lost, err);
	}
	if (rc != 0 && rc != CW_ECANCELED && !cw_stream_error_is_target_wide(err)) {
		stream_next_t next = stream_failure(loop, st, err, true);
		cw_err_t why = *err;
		cw_err_clear(err);
		rc = 0;
		if (next == STREAM_RETRY) {
			*lagging = true;
		} else if (next == STREAM_SET_ASIDE) {
			cw_log_kv(CW_LOG_WARN, COMPONENT, "stream's retry budget spent: finding the changes "
			          "the target refuses", "target", loop->target, "entity", name, "error",
			          why.message, NULL);
			rc = isolate(loop, entity, st, &writes, 0, writes.len, &lost, err);
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
		if (st->attempts > 0) {
			char attempts[24];
			snprintf(attempts, sizeof attempts, "%lld", (long long)st->attempts);
			cw_log_kv(CW_LOG_INFO, COMPONENT, "stream recovered", "target", loop->target, "entity",
			          name, "failed_attempts", attempts, NULL);
		}
		st->attempts = 0;
		st->next_attempt_ms = 0;
		st->applied = upto;
		st->caught_up = st->caught_up || caught_up;
		count_changes(loop, name, changes, n, writes.len);
		stream_count(loop, name, "completed", (double)received);
	}
out:
	cw_write_list_clear(&writes);
	prepared_free(&prepared);
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
	int rc = entity_for_changes(loop, name, &entity, &st, err);
	if (rc == 0 && entity == NULL && st != NULL && !st->opened && !stream_idle(loop, st))
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
	size_t run = policy_of(loop, st)->batch_size > 0 ? (size_t)policy_of(loop, st)->batch_size : n;
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
static int apply_batch(cw_apply_loop_t *loop, const cw_change_batch_t *batch, cw_err_t *err)
{
	const cw_change_t **sorted = NULL;
	size_t *starts = NULL, ngroups = 0;
	int64_t upto = batch->items[batch->len - 1].oplog_id;
	int rc = 0;
	cw_apply_group_batch(batch, &sorted, &starts, &ngroups);
	for (size_t g = 0; g < ngroups && rc == 0; g++) {
		const char *entity = sorted[starts[g]]->entity;
		bool lagging = false;
		if (replay_index(loop, entity) >= 0)
			continue;   /* its replay reads these changes itself */
		rc = apply_group(loop, entity, sorted + starts[g], starts[g + 1] - starts[g], upto,
		                 false, &lagging, err);
		if (rc == 0 && lagging)
			replay(loop, entity);
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

/*
 * Tries again one dead letter its stream was asked to replay (status
 * replay): dropped once the target takes it, or when a newer change of its
 * document is applied already (the letter would put an older state back);
 * recorded as failed again, one more attempt, when the target refuses it.
 */
static int replay_letter(cw_apply_loop_t *loop, const cw_dead_letter_t *letter, cw_err_t *err)
{
	const cw_entity_t *entity = NULL;
	entity_state_t *st = NULL;
	int rc = entity_for_changes(loop, letter->entity, &entity, &st, err);
	if (rc != 0 || entity == NULL || replay_index(loop, letter->entity) >= 0)
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
		rc = prepare_changes(loop, entity, st, one, 1, &prepared, &result, err);
		if (rc != 0 || result != PREPARED || (prepared.changes != NULL && prepared.n == 0)) {
			prepared_free(&prepared);
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
	prepared_free(&prepared);
	if (rc == 0 && lost) {
		cw_apply_loop_entity_lost(loop, letter->entity);
		return 0;
	}
	if (rc == 0) {
		stream_count(loop, letter->entity, "completed", 1);
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
static int replay_letters(cw_apply_loop_t *loop, cw_err_t *err)
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
		if (wants(loop, letters[i].entity))
			rc = replay_letter(loop, &letters[i], err);
	cw_dead_letter_list_free(letters, count);
	return rc;
}

/* One page of each replay; an entity whose page is short has caught up. */
static int replay_step(cw_apply_loop_t *loop, cw_err_t *err)
{
	cw_change_batch_t page = CW_CHANGE_BATCH_INIT;
	int rc = 0;
	for (size_t i = 0; i < loop->nreplays && rc == 0;) {
		/* A copy: reading the hub's entities may end this replay (entity deleted). */
		char name[CW_ENTITY_NAME_MAX + 1];
		snprintf(name, sizeof name, "%s", loop->replays[i]);
		if (stream_waiting(state_of(loop, name), cw_clock_now_ms(cw_clock_system()))) {
			i++;   /* its stream retries later */
			continue;
		}
		const cw_entity_t *entity = NULL;
		entity_state_t *st = NULL;
		if ((rc = entity_for_changes(loop, name, &entity, &st, err)) != 0)
			break;
		if (entity == NULL && st != NULL && !st->opened && !stream_idle(loop, st)) {
			i++;   /* opening it failed again: its stream retries later */
			continue;
		}
		/*
		 * Only an entity that holds everything up to the global position may
		 * leave its replay: the main loop skipped its changes while it was
		 * replaying, so one marked caught up earlier may still miss pages
		 * read since.
		 */
		if (entity == NULL || (st->caught_up && st->applied >= loop->position)) {
			forget_replay(loop, name);
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
		ssize_t at = replay_index(loop, name);   /* reading the entities may have moved it */
		if (rc == 0 && at >= 0)
			loop->replayed[at] += (int64_t)page.len;
		if (rc == 0 && !lagging && (done || upto >= loop->position)) {
			/* A replay that found nothing to apply only moved the entity's position: not news. */
			if (at >= 0 && loop->replayed[at] > 0) {
				char count[24];
				snprintf(count, sizeof count, "%lld", (long long)loop->replayed[at]);
				cw_log_kv(CW_LOG_INFO, COMPONENT, "entity replayed", "target", loop->consumer,
				          "entity", name, "changes", count, NULL);
			}
			forget_replay(loop, name);
			continue;
		}
		i++;
	}
	cw_change_batch_free(&page);
	return rc;
}

/* The position retention must honour: the global one, or an older replay's or failed stream's. */
static int64_t hub_position(cw_apply_loop_t *loop)
{
	int64_t position = loop->position;
	for (size_t i = 0; i < loop->nreplays; i++) {
		const entity_state_t *st = state_of(loop, loop->replays[i]);
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
 * replay is due, until the next retry of a waiting stream, at most the poll
 * interval.
 */
static int64_t idle_wait_ms(cw_apply_loop_t *loop)
{
	int64_t now = cw_clock_now_ms(cw_clock_system()), wait = loop->poll_interval_ms;
	for (size_t i = 0; i < loop->nreplays; i++) {
		const entity_state_t *st = state_of(loop, loop->replays[i]);
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

/* ---- the prefetch ----------------------------------------------------------- */

static void *prefetch_main(void *arg)
{
	prefetch_t *p = arg;
	cw_hub_t *hub = NULL;
	pthread_mutex_lock(&p->mutex);
	for (;;) {
		while (!p->stop && (!p->requested || p->done))
			pthread_cond_wait(&p->cond, &p->mutex);
		if (p->stop)
			break;
		int64_t after = p->after;
		pthread_mutex_unlock(&p->mutex);
		cw_change_batch_t page = CW_CHANGE_BATCH_INIT;
		cw_err_t err = {0};
		int rc = 0;
		if (hub == NULL && (hub = cw_hub_connect_auth(p->hub_url, p->hub_auth, &err)) == NULL)
			rc = CW_EDB;
		if (rc == 0)
			rc = cw_oplog_fetch(hub, p->entities, p->nentities, after, p->limit, &page, &err);
		if (rc != 0) {   /* the main read tries itself; a new connection next time */
			cw_hub_close(hub);
			hub = NULL;
		}
		pthread_mutex_lock(&p->mutex);
		cw_change_batch_free(&p->batch);
		p->batch = page;
		p->rc = rc;
		p->done = true;
		pthread_cond_broadcast(&p->cond);
	}
	pthread_mutex_unlock(&p->mutex);
	cw_hub_close(hub);
	return NULL;
}

static void prefetch_start(cw_apply_loop_t *loop)
{
	prefetch_t *p = &loop->prefetch;
	p->hub_url = loop->hub_url;
	p->hub_auth = loop->hub_auth;
	p->entities = (const char *const *)loop->entities;
	p->nentities = loop->nentities;
	p->limit = loop->batch_size;
	p->requested = p->done = p->stop = false;
	p->started = pthread_create(&p->thread, NULL, prefetch_main, p) == 0;
}

/* Asks for the page after `after` (a no-op when the thread could not start). */
static void prefetch_request(cw_apply_loop_t *loop, int64_t after)
{
	prefetch_t *p = &loop->prefetch;
	if (!p->started)
		return;
	pthread_mutex_lock(&p->mutex);
	p->after = after;
	p->requested = true;
	p->done = false;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->mutex);
}

/*
 * The page asked for, when it is the one after position and was read: moved
 * into out (empty). Waits for a fetch under way. false: read it yourself.
 */
static bool prefetch_take(cw_apply_loop_t *loop, int64_t position, cw_change_batch_t *out)
{
	prefetch_t *p = &loop->prefetch;
	if (!p->started)
		return false;
	pthread_mutex_lock(&p->mutex);
	bool used = false;
	if (p->requested) {
		while (!p->done)
			pthread_cond_wait(&p->cond, &p->mutex);
		if (p->rc == 0 && p->after == position && p->batch.len > 0) {
			cw_change_batch_free(out);
			*out = p->batch;
			p->batch = (cw_change_batch_t)CW_CHANGE_BATCH_INIT;
			used = true;
		}
		p->requested = false;
	}
	pthread_mutex_unlock(&p->mutex);
	return used;
}

static void prefetch_stop(cw_apply_loop_t *loop)
{
	prefetch_t *p = &loop->prefetch;
	if (!p->started)
		return;
	pthread_mutex_lock(&p->mutex);
	p->stop = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->mutex);
	pthread_join(p->thread, NULL);
	p->started = false;
	cw_change_batch_free(&p->batch);
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
		if ((rc = replay_step(loop, err)) != 0 || (rc = replay_letters(loop, err)) != 0)
			break;
		cw_change_batch_clear(&batch);
		if (!prefetch_take(loop, loop->position, &batch) &&
		    (rc = cw_oplog_read(reader, loop->position, loop->batch_size, &batch, err)) != 0)
			break;
		/* A full page: more is likely waiting; read it while this one is applied. */
		if (batch.len == loop->batch_size)
			prefetch_request(loop, batch.items[batch.len - 1].oplog_id);
		if (batch.len == 0) {
			if ((rc = heartbeat(loop, false, err)) != 0)
				break;
			int64_t wait_ms = idle_wait_ms(loop);
			if (wait_ms > 0)
				rc = wait_for_changes(reader, wait_ms, cancel, err);
			continue;
		}
		int64_t started = cw_clock_now_ms(cw_clock_system());
		if ((rc = apply_batch(loop, &batch, err)) != 0)
			break;
		int64_t now_us = cw_clock_wall_us(cw_clock_system());
		int64_t newest = batch.items[batch.len - 1].created_at_us;
		loop->lag_seconds = batch.len < loop->batch_size ? 0
		                  : (now_us > newest ? (double)(now_us - newest) / 1e6 : 0);
		if (loop->metrics != NULL)
			cw_metrics_observe(loop->metrics, "cachewarp_apply_batch_duration_seconds", labels,
			                   (double)(cw_clock_now_ms(cw_clock_system()) - started) / 1e3);
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
	prefetch_start(loop);
	rc = apply_until_stopped(loop, reader, cancel, err);
	prefetch_stop(loop);
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
