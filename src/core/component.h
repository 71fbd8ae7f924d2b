/*
 * This file contains what every long-running component (a source, a target)
 * shares with the control plane: the context it is opened with and the
 * status it reports for /v1/status, `cachewarp status` and /readyz.
 *
 * A component is a table of function pointers (capture/source.h,
 * apply/target.h). The daemon opens it, runs `run` as a job of the job
 * server (control/jobs.h) and closes it on shutdown: `run` works until the
 * cancellation token fires (then returns CW_ECANCELED) or until an error it
 * cannot handle itself (then returns the error; the job server backs off and
 * calls `run` again, which resumes from the stored position).
 */
#ifndef CW_CORE_COMPONENT_H
#define CW_CORE_COMPONENT_H

#include "core/cancel.h"
#include "core/config.h"
#include "core/err.h"
#include "core/metrics.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cw_component_ctx {
	const cw_config_t *config;      /* borrowed for the component's lifetime (a reload of the
	                                   file starts a new component; it never changes this one's) */
	const char *name;               /* the source's or target's configured name; borrowed */
	const char *const *entities;    /* --entity filter, borrowed; NULL/0 = every entity */
	size_t nentities;
	cw_metrics_t *metrics;          /* borrowed; never NULL */
	/* The daemon's copy of the hub's entities (hub/entity_registry.h), borrowed; NULL: the
	 * component reads them from the hub itself. */
	struct cw_entity_registry *registry;
} cw_component_ctx_t;

/* How many failed entities a component status lists (nfailed counts them all). */
#define CW_COMPONENT_FAILED_MAX 16

/* One entity a source cannot capture, and why (DESIGN.md §2: failures are isolated). */
typedef struct cw_failed_entity {
	char entity[64];
	char reason[CW_ERR_MESSAGE_LEN];     /* what failed and how to fix it; never holds a password */
} cw_failed_entity_t;

typedef struct cw_component_status {
	char state[32];                 /* "starting", "snapshot", "streaming", "applying", "retrying", ... */
	bool healthy;                   /* false while disconnected or failing */
	int64_t lag_bytes;              /* PostgreSQL source: WAL bytes not yet confirmed; -1 = n/a */
	double lag_seconds;             /* newest change seen/applied versus now; -1 = n/a */
	int64_t lag_ids;                /* targets: oplog ids behind the hub's head; -1 = n/a */
	char position[128];             /* LSN, resume token summary, oplog id; "" = none yet */
	char last_error[CW_ERR_MESSAGE_LEN]; /* "" when none; never holds a password */
	size_t nfailed;                 /* sources: entities failed now, while the others stream */
	cw_failed_entity_t failed[CW_COMPONENT_FAILED_MAX]; /* the first nfailed (at most MAX) */
} cw_component_status_t;

/* What a source or a target provides; capture/source.h and apply/target.h name it. */
typedef struct cw_component_ops {
	const char *type;   /* "postgres", "mongodb", "sqlite" */
	/* Opens the component (no I/O needed); NULL with err filled. The result is owned by the caller. */
	void *(*open)(const cw_component_ctx_t *ctx, cw_err_t *err);
	/* Works until cancel fires (CW_ECANCELED) or an error (returned, err filled). */
	int (*run)(void *self, cw_cancel_t *cancel, cw_err_t *err);
	/* Fills out; callable from any thread while run runs. */
	void (*status)(void *self, cw_component_status_t *out);
	/* Frees the component after run returned; NULL is a no-op. */
	void (*close)(void *self);
} cw_component_ops_t;

/*
 * Counts one more failed entity (or stream) in status and lists it with its
 * reason while fewer than CW_COMPONENT_FAILED_MAX are listed. The caller
 * sets nfailed to 0 first and holds whatever guards status.
 */
void cw_component_status_add_failed(cw_component_status_t *status, const char *entity,
                                    const char *reason);

/*
 * Sets status under mutex (both the component's, borrowed): the state
 * unless state is NULL, healthy, and, unless error is NULL, the last error
 * to error with every password masked ("" clears it). Callable from the
 * component's threads while others read status under the same mutex.
 */
void cw_component_status_set(pthread_mutex_t *mutex, cw_component_status_t *status,
                             const char *state, bool healthy, const char *error);

/* True when name passes the --entity filter of ctx. */
bool cw_component_wants(const cw_component_ctx_t *ctx, const char *entity);

/*
 * The --entity filter as one stable text, the names sorted and joined by
 * ",": "" for every entity (owned). A target run for some entities keeps
 * its lease, consumer and position under its name plus this scope, so
 * processes applying different entities to one target do not meet.
 */
char *cw_component_scope(const char *const *entities, size_t nentities);

#endif
