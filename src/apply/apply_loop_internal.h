/*
 * This file contains what the apply loop's files share (apply_loop.h): the
 * loop's state, the state of each entity (its stream) in a run, and the
 * functions one file calls in another. apply_loop.c runs the loop (its
 * state, the hub's entities, heartbeats and retries); apply_loop_batch.c applies
 * a page's changes, grouped per entity, and the replays' pages;
 * apply_stream.c holds each stream's error handling, transformations and
 * dead-letter replays; apply_prefetch.c reads the next page while the
 * current one is applied. Private to those four files.
 */
#ifndef CW_APPLY_APPLY_LOOP_INTERNAL_H
#define CW_APPLY_APPLY_LOOP_INTERNAL_H

#include "apply/apply_loop.h"
#include "apply/stream.h"
#include "apply/transform.h"
#include "core/auth.h"
#include "core/config.h"
#include "hub/entity_registry.h"
#include "hub/oplog_reader.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define APL_COMPONENT "apply"
/* Seconds spent reading oplog pages, per target (the main read and the prefetch). */
#define APL_READ_SECONDS_METRIC "cachewarp_apply_read_seconds_total"

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
	cw_metrics_t *metrics;        /* borrowed from the loop; may be NULL */
	const char *labels;           /* borrowed from the loop: target="<name>" */
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

/* What a stream does after a failure of its own work. */
typedef enum stream_next {
	STREAM_RETRY = 0,    /* wait, then replay from its position */
	STREAM_SET_ASIDE,    /* budget spent: set the refused writes aside, apply the rest */
	STREAM_STOPPED,      /* fail_stream */
} stream_next_t;

/* A stream's changes as the backend gets them: relaxed and transformed copies. */
typedef struct prepared {
	cw_change_t *copies;          /* owned, each data owned */
	const cw_change_t **changes;  /* owned array of pointers into copies */
	size_t n;
} prepared_t;

/* What became of a stream's changes on their way to the backend. */
typedef enum prepare_result {
	PREPARED = 0,        /* p holds the changes to apply (some may have been set aside) */
	PREPARE_RETRY,       /* a transformation failed; the stream retries later */
	PREPARE_STOPPED,     /* the stream was stopped */
} prepare_result_t;

/* ---- apply_loop.c ---- */

/*
 * The entity a group of changes is for, opened: NULL when it is not applied
 * here; *state set (not opened) when its stream waits to open it again.
 */
int apl_entity_for_changes(cw_apply_loop_t *loop, const char *name, const cw_entity_t **out,
                           entity_state_t **state, cw_err_t *err);
/* Entity leaves the replays / joins them (reading its changes from its own position). */
void apl_forget_replay(cw_apply_loop_t *loop, const char *entity);
void apl_replay(cw_apply_loop_t *loop, const char *entity);
/* Its index among the replays, or -1. */
ssize_t apl_replay_index(const cw_apply_loop_t *loop, const char *entity);
/* Whether the loop applies entity (the --entity filter). */
bool apl_wants(const cw_apply_loop_t *loop, const char *entity);
/* The entity's state in this run, added (zeroed) when it is met first; owned by the loop. */
entity_state_t *apl_state_of(cw_apply_loop_t *loop, const char *entity);

/* ---- apply_loop_batch.c ---- */

/* Applies one main batch (not empty) and stores the global position after it. */
int apl_apply_batch(cw_apply_loop_t *loop, const cw_change_batch_t *batch, cw_err_t *err);
/* One page of each replay; an entity whose page is short has caught up. */
int apl_replay_step(cw_apply_loop_t *loop, cw_err_t *err);

/* ---- apply_stream.c ---- */

/* The stream settings of st's entity, resolved once per run. */
const cw_stream_policy_t *apl_policy_of(cw_apply_loop_t *loop, entity_state_t *st);
/* Adds n to cachewarp_stream_events_total of the entity's stream in state. */
void apl_stream_count(cw_apply_loop_t *loop, const char *entity, const char *state, double n);
/* Not applied now: disabled, or stopped by fail_stream. */
bool apl_stream_idle(cw_apply_loop_t *loop, entity_state_t *st);
/* A retrying stream succeeded: logged, its count and its status line cleared. */
void apl_stream_recovered(cw_apply_loop_t *loop, entity_state_t *st);
/* A retrying stream whose next attempt is not due at now. */
bool apl_stream_waiting(const entity_state_t *st, int64_t now);
/* Counts a failure of the stream's own work and decides what comes next. */
stream_next_t apl_stream_failure(cw_apply_loop_t *loop, entity_state_t *st, const cw_err_t *err,
                                 bool can_set_aside);
/* The changes as the backend takes them (relaxed, transformed); refusals handled. */
int apl_prepare_changes(cw_apply_loop_t *loop, const cw_entity_t *entity, entity_state_t *st,
                        const cw_change_t *const *changes, size_t n, prepared_t *p,
                        prepare_result_t *result, cw_err_t *err);
void apl_prepared_free(prepared_t *p);
/* Applies writes[from, to) at the stream's position, setting aside what is refused. */
int apl_isolate(cw_apply_loop_t *loop, const cw_entity_t *entity, entity_state_t *st,
                const cw_write_list_t *writes, size_t from, size_t to, bool *lost,
                cw_err_t *err);
/* Every few seconds: this target's dead letters asked to be replayed, tried again. */
int apl_replay_letters(cw_apply_loop_t *loop, cw_err_t *err);

/* ---- apply_prefetch.c ---- */

/* Starts the prefetch thread (a no-op on failure: the loop reads itself). */
void apl_prefetch_start(cw_apply_loop_t *loop);
/* Asks for the page after `after`. */
void apl_prefetch_request(cw_apply_loop_t *loop, int64_t after);
/* What apl_prefetch_take found. */
typedef enum apl_prefetch {
	APL_PREFETCH_NONE = 0,   /* no page after position was read: read it yourself */
	APL_PREFETCH_PAGE,       /* the page after position, moved into out */
	APL_PREFETCH_EMPTY,      /* read, and nothing followed position then */
} apl_prefetch_t;
/* The page after position when it was read, moved into out (see apl_prefetch_t). */
apl_prefetch_t apl_prefetch_take(cw_apply_loop_t *loop, int64_t position, cw_change_batch_t *out);
/* Stops and joins the thread. */
void apl_prefetch_stop(cw_apply_loop_t *loop);

#endif
