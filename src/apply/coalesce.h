/*
 * This file contains the coalescer: it folds one entity's changes from one
 * oplog batch into the smallest list of writes with the same end state
 * (DESIGN.md §1), for every target's apply loop.
 *
 * Rules, per document, in oplog order:
 *   - a delete supersedes everything before it;
 *   - an upsert after an upsert merges onto it: keys of the later one win,
 *     keys absent from it keep the earlier value (absent = unchanged);
 *   - an upsert after a delete becomes a *replacing* upsert: the row is
 *     deleted and inserted again, so the columns the upsert lacks are NULL
 *     rather than left over from the deleted row.
 * A sweep splits the batch into segments: the documents' writes before it
 * are applied, then the sweep, then the writes after it. Within a segment
 * the writes are sorted by doc_id (byte order, the order of an SQLite TEXT
 * key), so a target writes its index in key order.
 *
 * THREAD SAFETY: pure functions; no shared state.
 */
#ifndef CW_APPLY_COALESCE_H
#define CW_APPLY_COALESCE_H

#include "core/change.h"
#include "core/err.h"
#include "core/json_fields.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum cw_write_kind {
	CW_WRITE_UPSERT = 0,
	CW_WRITE_DELETE,
	CW_WRITE_SWEEP,
} cw_write_kind_t;

typedef struct cw_write {
	cw_write_kind_t kind;
	bool replace;            /* upsert only: delete the row first (a delete preceded it) */
	const char *doc_id;      /* borrowed from the changes; NULL for a sweep */
	/*
	 * An upsert's data: `raw`, the JSON text of its one change (borrowed
	 * from the changes, not parsed: most documents change once per batch),
	 * or `fields`, the top-level fields merged from several upserts (owned
	 * list; its values borrow from the changes' texts, never re-encoded, so
	 * every number keeps its digits). Exactly one is set for an upsert; both
	 * are NULL otherwise.
	 */
	const char *raw;
	cw_json_fields_t *fields;
	int64_t version;         /* of the last change folded in (the sweep's for a sweep) */
	int64_t oplog_id;        /* of the last change folded in */
	int64_t created_at_us;   /* of the last change folded in */
} cw_write_t;

typedef struct cw_write_list {
	cw_write_t *items;       /* owned */
	size_t len;
	size_t changes;          /* changes folded into the list */
} cw_write_list_t;

#define CW_WRITE_LIST_INIT {NULL, 0, 0}

/*
 * Coalesces the n changes (borrowed, all of one entity, in increasing
 * oplog_id order) with oplog_id > skip_upto into out (cleared first; owned
 * by the caller, cw_write_list_clear). doc_id pointers borrow from changes,
 * which must outlive out. Returns 0, or CW_EINVAL with err filled when an
 * upsert's data that had to be merged is not a JSON object (out is then
 * empty); a raw text is checked by whoever parses it.
 */
int cw_coalesce(const cw_change_t *const *changes, size_t n, int64_t skip_upto,
                cw_write_list_t *out, cw_err_t *err);

/*
 * An upsert's data as one JSON object text (owned): its raw text, or its
 * merged fields with every value as the changes wrote it.
 */
char *cw_write_json(const cw_write_t *w);

/* Frees every write's fields and the array; the list may be reused. NULL is a no-op. */
void cw_write_list_clear(cw_write_list_t *list);

#endif
