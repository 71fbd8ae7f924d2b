/*
 * This file contains a table scan's progress record (docs/hub.md, "Exactly
 * once"): what a PostgreSQL snapshot stores in the hub's metadata with each
 * page of rows it commits, so a scan interrupted part-way resumes after the
 * last committed key instead of writing its rows again. Pure functions: the
 * record's JSON and its reading, tested without a server.
 *
 *   {"version": 3, "slot": "cachewarp_app", "lsn": "0/16B3748",
 *    "key": ["41"], "rows": 4100, "done": false}
 *
 * version is the entity's generation the rows carry; slot and lsn the
 * replication slot and the snapshot's consistent point ("" for a scan of an
 * entity added while streaming); key the last committed row's key values as
 * the server printed them (absent before the first page); done: every row
 * and the generation's sweep are committed.
 *
 * THREAD SAFETY: pure functions; a record belongs to one thread.
 */
#ifndef CW_CAPTURE_SCAN_PROGRESS_H
#define CW_CAPTURE_SCAN_PROGRESS_H

#include "core/buf.h"
#include "core/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Most key columns a record holds. */
#define CW_SCAN_PROGRESS_MAX_KEYS 32

typedef struct cw_scan_progress {
	int64_t version;
	char *slot;          /* owned; NULL reads as "" */
	char *lsn;           /* owned; NULL reads as "" */
	char **keys;         /* owned; nkeys values, NULL before the first page */
	size_t nkeys;
	int64_t rows;        /* rows committed so far */
	bool done;
} cw_scan_progress_t;

/* The record as JSON text (owned by caller). */
char *cw_scan_progress_encode(const cw_scan_progress_t *progress);
/* Parses such JSON into progress (cleared first). 0 or CW_EINVAL with err. */
int cw_scan_progress_decode(const char *json, cw_scan_progress_t *progress, cw_err_t *err);
/* Replaces the last committed key (values copied). */
void cw_scan_progress_set_key(cw_scan_progress_t *progress, const char *const *keys,
                              size_t nkeys);
/* Replaces slot and lsn (copied; NULL is ""). */
void cw_scan_progress_set_origin(cw_scan_progress_t *progress, const char *slot,
                                 const char *lsn);
/*
 * Appends the statement that opens the scan's cursor cw_scan on
 * nspname.relname (unquoted; quoted here) in key order, after the record's
 * key when it has one ($1... are then its values, parsed by the server with
 * the key columns' own types):
 *   DECLARE cw_scan NO SCROLL CURSOR FOR SELECT * FROM "s"."t" AS t
 *   WHERE (t."k1", t."k2") > ($1, $2) ORDER BY t."k1", t."k2"
 */
void cw_scan_progress_cursor_sql(const cw_scan_progress_t *progress, const char *nspname,
                                 const char *relname, const char *const *keys, size_t nkeys,
                                 cw_buf_t *out);
/* Frees the members and zeroes the record; a zeroed record is a no-op. */
void cw_scan_progress_clear(cw_scan_progress_t *progress);

#endif
