/*
 * This file contains the hub's consumer registry (cachewarp.consumers): each
 * target's consumer registers under a name, heartbeats with the last oplog
 * id it applied, and is listed with its lag; and oplog retention, which only
 * deletes rows every live consumer has passed.
 *
 * Lag of a consumer at position P: in ids, max(oplog.id) - P; in seconds,
 * now - created_at of the first row after P (0 when it has caught up).
 */
#ifndef CW_HUB_CONSUMERS_H
#define CW_HUB_CONSUMERS_H

#include "core/err.h"
#include "hub/hub.h"

#include <stddef.h>
#include <stdint.h>

typedef struct cw_consumer {
	char *name;             /* owned */
	int64_t position;       /* last applied oplog id */
	int64_t last_seen_us;   /* last heartbeat, microseconds since the Unix epoch */
	int64_t lag_ids;
	double lag_seconds;
} cw_consumer_t;

/*
 * Registers consumer name (borrowed, non-empty) at position 0 when it is new,
 * and marks it seen. *position (optional) receives its stored position.
 * 0, CW_EINVAL, CW_EDB.
 */
int cw_consumer_register(cw_hub_t *hub, const char *name, int64_t *position, cw_err_t *err);

/*
 * Stores the consumer's position (registering it when new), marks it seen
 * and stores its lag. A position may move backwards (a target rebuilt from
 * the hub). 0, CW_EINVAL, CW_EDB.
 */
int cw_consumer_heartbeat(cw_hub_t *hub, const char *name, int64_t position, cw_err_t *err);

/*
 * Every consumer by name with its lag computed now. *consumers receives an
 * array of *count owned by the caller (free with cw_consumer_list_free);
 * NULL and 0 for none. 0 or CW_EDB.
 */
int cw_consumer_list(cw_hub_t *hub, cw_consumer_t **consumers, size_t *count, cw_err_t *err);
void cw_consumer_list_free(cw_consumer_t *consumers, size_t count);

/* Removes a consumer so it no longer holds back retention. CW_ENOTFOUND, CW_EDB. */
int cw_consumer_remove(cw_hub_t *hub, const char *name, cw_err_t *err);

/*
 * Retention: deletes oplog rows appended more than max_age_s seconds ago
 * whose id is below the smallest position of the consumers seen within the
 * last liveness_s seconds. With no such consumer nothing is deleted (a
 * consumer that comes back must find its rows). Append times are the
 * writers' marks in cachewarp.oplog_marks (at most one a second per writer):
 * a row goes once a mark at or after it is older than max_age_s, so it may
 * stay up to a second longer, or until the next append of an idle hub.
 * *deleted (optional) receives the number of rows removed. 0 or CW_EDB.
 */
int cw_oplog_retention_run(cw_hub_t *hub, int64_t max_age_s, int64_t liveness_s,
                           int64_t *deleted, cw_err_t *err);

#endif
