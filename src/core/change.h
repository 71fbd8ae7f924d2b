/*
 * This file contains cw_change_t, one normalized change as it travels from a
 * source through the hub's oplog to every target (DESIGN.md §2), and
 * cw_change_batch_t, the unit the capture hands to the oplog writer.
 */
#ifndef CW_CORE_CHANGE_H
#define CW_CORE_CHANGE_H

#include "core/arena.h"
#include "core/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum cw_op {
	CW_OP_UPSERT = 0, /* data carries the projected columns present in the source */
	CW_OP_DELETE = 1, /* data is NULL */
	CW_OP_SWEEP = 2,  /* doc_id and data are NULL: delete rows with _version < version */
} cw_op_t;

typedef struct cw_change {
	int64_t oplog_id;       /* assigned by the hub; 0 before it is written */
	cw_op_t op;
	char *entity;           /* owned; a valid entity name */
	char *doc_id;           /* owned; canonical text (DESIGN.md §2); NULL for a sweep */
	char *data;             /* owned; a JSON object of projected columns, NULL unless upsert.
	                         * A key absent means "unchanged"; a key with null means null. */
	int64_t version;        /* the entity's capture generation */
	char *source_pos;       /* owned, may be NULL: LSN or resume-token digest */
	int64_t created_at_us;  /* source commit time, microseconds since the Unix epoch */
} cw_change_t;

/* "upsert", "delete", "sweep". */
const char *cw_op_name(cw_op_t op);
/* Parses an op name; CW_EINVAL (and err) for anything else. */
int cw_op_parse(const char *name, cw_op_t *op, cw_err_t *err);

/* Checks the invariants above (entity name valid, doc_id/data present per op,
 * data a JSON object when present). Returns 0 or CW_EINVAL with err filled. */
int cw_change_validate(const cw_change_t *change, cw_err_t *err);

/* Frees the members and zeroes the struct; NULL is a no-op. */
void cw_change_clear(cw_change_t *change);

/* A block that a batch's borrowed strings live in, freed with its free callback. */
typedef struct cw_change_hold {
	void *block;
	void (*free_block)(void *block);
} cw_change_hold_t;

typedef struct cw_change_batch {
	cw_change_t *items;   /* owned array; each item owns its strings, unless borrowed */
	size_t len;
	size_t cap;
	size_t bytes;         /* sum of member string lengths, for batch sizing */
	/*
	 * borrowed: every item's strings live in the held blocks (a page of the
	 * hub read as one result, not a copy per string) or in the arena (the
	 * copies cw_change_batch_add made: one region per batch, not an
	 * allocation per string); they are freed when the batch is cleared, and
	 * the items' strings with them. A change taken out of a borrowed batch
	 * must be copied.
	 */
	bool borrowed;
	cw_change_hold_t *holds;   /* owned */
	size_t nholds;
	cw_arena_t arena;
} cw_change_batch_t;

#define CW_CHANGE_BATCH_INIT {NULL, 0, 0, 0, false, NULL, 0, CW_ARENA_INIT}

/*
 * Appends a change, taking over its strings (the caller's struct is
 * zeroed); in a borrowed batch they are copied into its arena and freed.
 */
void cw_change_batch_push(cw_change_batch_t *batch, cw_change_t *change);
/*
 * Appends a copy of change (borrowed; its strings may be NULL): into the
 * batch's arena when the batch is empty or borrowed (it is borrowed from
 * then on; no allocation per string: the hot path of a source), otherwise as
 * owned copies.
 */
void cw_change_batch_add(cw_change_batch_t *batch, const cw_change_t *change);
/*
 * Appends a change whose strings live in a block the batch holds (or is
 * about to, cw_change_batch_hold); bytes is the sum of their lengths. The
 * batch must be empty or borrowed already; it is borrowed from now on.
 */
void cw_change_batch_push_borrowed(cw_change_batch_t *batch, const cw_change_t *change,
                                   size_t bytes);
/* The batch takes over block: free_block(block) when it is cleared or freed. */
void cw_change_batch_hold(cw_change_batch_t *batch, void *block, void (*free_block)(void *));
/* Clears every change, frees the held blocks and the arena; keeps the array for reuse. */
void cw_change_batch_clear(cw_change_batch_t *batch);
/* Clears and frees the array; NULL is a no-op. */
void cw_change_batch_free(cw_change_batch_t *batch);

#endif
