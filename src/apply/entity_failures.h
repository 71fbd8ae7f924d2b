/*
 * This file contains a target's failed entities (DESIGN.md §2, failures are
 * isolated): each entity a backend cannot apply as it is (CW_EENTITY), its
 * reason, and when the apply loop tries it again. The loop keeps the
 * entity's changes in the hub meanwhile and goes on with its siblings.
 *
 * Retries back off: FAILURE_RETRY_FIRST_MS after the first failure,
 * doubling with each failure in a row up to FAILURE_RETRY_MAX_MS (10 s to
 * 5 min). A new run of the loop (a restart, a reload) tries every entity
 * again at once.
 *
 * THREAD SAFETY: none; the apply loop uses one set on its run thread and
 * copies it into its status under its own mutex (cw_entity_failures_publish).
 */
#ifndef CW_APPLY_ENTITY_FAILURES_H
#define CW_APPLY_ENTITY_FAILURES_H

#include "core/component.h"
#include "core/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cw_entity_failure {
	char *entity;                          /* owned */
	char reason[CW_ERR_MESSAGE_LEN];
	int64_t retry_at_ms;                   /* monotonic: when it is tried again */
	int64_t delay_ms;                      /* the delay that set retry_at_ms */
} cw_entity_failure_t;

typedef struct cw_entity_failures {
	cw_entity_failure_t *items;            /* owned */
	size_t len;
} cw_entity_failures_t;

#define CW_ENTITY_FAILURES_INIT {NULL, 0}

/*
 * Records that entity (borrowed) failed now_ms with reason (borrowed) and
 * schedules its retry. True when this is news worth a log line: the entity
 * was not failed, or fails for another reason.
 */
bool cw_entity_failures_mark(cw_entity_failures_t *f, const char *entity, const char *reason,
                             int64_t now_ms);

/* Forgets entity's failure; true when it was failed. */
bool cw_entity_failures_clear(cw_entity_failures_t *f, const char *entity);

/* entity's failure (borrowed until the set changes), or NULL when it is not failed. */
const cw_entity_failure_t *cw_entity_failures_find(const cw_entity_failures_t *f,
                                                   const char *entity);

/* Whether a failed entity's retry is due at now_ms (true for an entity not failed). */
bool cw_entity_failures_due(const cw_entity_failures_t *f, const char *entity, int64_t now_ms);

/* Copies the failures into status->failed (the first CW_COMPONENT_FAILED_MAX) and nfailed. */
void cw_entity_failures_publish(const cw_entity_failures_t *f, cw_component_status_t *status);

/* Frees every failure and empties the set. */
void cw_entity_failures_clear_all(cw_entity_failures_t *f);

#endif
