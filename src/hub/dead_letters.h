/*
 * This file contains the hub's dead letters (cachewarp.dead_letters): a
 * change one stream (an entity flowing to one target) could not transform or
 * write within its retry budget, set aside with its error so the rest of the
 * stream goes on (docs/streams.md). A dead letter is listed, replayed (the
 * stream's apply loop tries it again through the same transformation and
 * write path) or dropped, by the CLI and by /v1/deadletters.
 *
 * One row per (target, entity, doc_id, oplog_id): failing again counts an
 * attempt on the same row. Each call is one statement.
 */
#ifndef CW_HUB_DEAD_LETTERS_H
#define CW_HUB_DEAD_LETTERS_H

#include "core/change.h"
#include "core/err.h"
#include "core/json.h"
#include "hub/hub.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Where in the stream the change failed. */
typedef enum cw_dead_letter_stage {
	CW_DEAD_LETTER_TRANSFORM = 0,   /* the stream's transformation refused it */
	CW_DEAD_LETTER_WRITE,           /* the target refused it */
} cw_dead_letter_stage_t;

/* What becomes of a dead letter. */
typedef enum cw_dead_letter_status {
	CW_DEAD_LETTER_FAILED = 0,      /* set aside, waiting for a person */
	CW_DEAD_LETTER_REPLAY,          /* asked to be tried again by its stream */
} cw_dead_letter_status_t;

typedef struct cw_dead_letter {
	int64_t id;                     /* assigned by the hub */
	char *target;                   /* owned in lists; borrowed for cw_dead_letter_add */
	char *entity;
	char *doc_id;
	int64_t oplog_id;               /* the (last) hub change the write carried */
	int64_t version;                /* the entity generation of that change */
	cw_op_t op;                     /* upsert or delete */
	char *data;                     /* an upsert's data as JSON text; NULL for a delete */
	cw_dead_letter_stage_t stage;
	char *error;                    /* the reason, as logged */
	char *error_code;               /* SQLSTATE, server code, or NULL */
	int64_t attempts;
	int64_t first_failed_us;        /* wall clock, microseconds since the epoch */
	int64_t last_failed_us;
	cw_dead_letter_status_t status;
} cw_dead_letter_t;

/* Which dead letters a call is about; zero/NULL members match every row. */
typedef struct cw_dead_letter_filter {
	int64_t id;                     /* 0 = any */
	const char *target;
	const char *entity;
	int status;                     /* a cw_dead_letter_status_t, or -1 = any */
	int64_t after_id;               /* list: only ids above this (paging) */
	size_t limit;                   /* list: most rows; 0 = 100 */
} cw_dead_letter_filter_t;

#define CW_DEAD_LETTER_FILTER_ALL {0, NULL, NULL, -1, 0, 0}

/*
 * Records letter (its members borrowed; id, attempts and times are ignored):
 * a new row, or one more attempt (error, code and data replaced, status back
 * to failed) on the row of the same target, entity, doc_id and oplog_id.
 * 0, CW_EINVAL (an upsert without data, a missing member) or CW_EDB.
 */
int cw_dead_letter_add(cw_hub_t *hub, const cw_dead_letter_t *letter, cw_err_t *err);

/*
 * The dead letters filter matches, in id order: *letters (owned, free with
 * cw_dead_letter_list_free) and *count. 0 or CW_EDB.
 */
int cw_dead_letter_list(cw_hub_t *hub, const cw_dead_letter_filter_t *filter,
                        cw_dead_letter_t **letters, size_t *count, cw_err_t *err);

/* Frees a list from cw_dead_letter_list; NULL is a no-op. */
void cw_dead_letter_list_free(cw_dead_letter_t *letters, size_t count);

/* Asks the streams to try again the letters filter matches; *count: how many. 0 or CW_EDB. */
int cw_dead_letter_request_replay(cw_hub_t *hub, const cw_dead_letter_filter_t *filter,
                                  int64_t *count, cw_err_t *err);

/* Deletes the letters filter matches (a replayed one, or one a person gave up on). */
int cw_dead_letter_drop(cw_hub_t *hub, const cw_dead_letter_filter_t *filter, int64_t *count,
                        cw_err_t *err);

/*
 * Sets *superseded when the hub holds a change of the letter's document newer
 * than the letter and at most upto (the stream's applied id): replaying the
 * letter would put an older state over it. 0 or CW_EDB.
 */
int cw_dead_letter_superseded(cw_hub_t *hub, const cw_dead_letter_t *letter, int64_t upto,
                              bool *superseded, cw_err_t *err);

/* Letters per status of the target and entity (either NULL = all): for metrics and status. */
int cw_dead_letter_count(cw_hub_t *hub, const char *target, const char *entity, int64_t *failed,
                         int64_t *replay, cw_err_t *err);

/* The letters of one stream (a target and an entity), per status. */
typedef struct cw_dead_letter_stream_count {
	char *target;                   /* owned */
	char *entity;                   /* owned */
	int64_t failed;
	int64_t replay;
} cw_dead_letter_stream_count_t;

/*
 * Every stream that has dead letters, by target and entity, in one
 * statement: *streams (owned, free with cw_dead_letter_stream_counts_free)
 * and *count. For the cachewarp_dead_letters gauge. 0 or CW_EDB.
 */
int cw_dead_letter_count_streams(cw_hub_t *hub, cw_dead_letter_stream_count_t **streams,
                                 size_t *count, cw_err_t *err);

/* Frees what cw_dead_letter_count_streams returned; NULL is a no-op. */
void cw_dead_letter_stream_counts_free(cw_dead_letter_stream_count_t *streams, size_t count);

/* Writes streams as a JSON array of {target, entity, failed, replay}. */
int cw_dead_letter_stream_counts_write_json(const cw_dead_letter_stream_count_t *streams,
                                            size_t count, cw_json_t *w, cw_err_t *err);

/* "transform", "write"; "failed", "replay". */
const char *cw_dead_letter_stage_name(cw_dead_letter_stage_t stage);
const char *cw_dead_letter_status_name(cw_dead_letter_status_t status);

/* Parses a status name; -1 when it is none. */
int cw_dead_letter_status_parse(const char *name);

/*
 * Writes letter as a JSON object: id, target, entity, doc_id, oplog_id, version, op,
 * data (the JSON itself), stage, error, error_code, attempts,
 * first_failed_at, last_failed_at (RFC 3339), status.
 */
int cw_dead_letter_write_json(const cw_dead_letter_t *letter, cw_json_t *w, cw_err_t *err);

#endif
