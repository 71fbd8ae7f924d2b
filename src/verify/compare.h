/*
 * This file contains verify's comparison of one entity's rows at its source
 * with the same entity's rows in one target, in bounded memory whatever the
 * table's size and with no false alarm while the rows change:
 *
 * 1. Summaries. Both sides are read at once (one thread each), in any order.
 *    Each row lands in one of B buckets by a hash of its doc_id; a bucket's
 *    summary is its row count and the sum (mod 2^64) of its row digests
 *    (row_digest.h). Equal tables end here, after one read of each side.
 * 2. Rows. The buckets whose summaries differ are read again, row by row,
 *    in chunks of at most `chunk_rows` rows held in memory: each doc_id is
 *    missing (source only), extra (target only), different (other digests;
 *    the differing columns are named) or stale (equal values, but the target
 *    row is of an older capture generation).
 * 3. Re-check. A candidate difference counts only if it persists after the
 *    target has applied the hub past the position the source row was read
 *    at: each round reads the candidates at the source, waits for the target
 *    to catch up (settle), reads them in the target, and reads the source
 *    again. A key the target now holds equal is resolved; a key whose source
 *    row changed meanwhile is still moving and gets another round; a key
 *    whose source row stayed put and whose target row still differs is a
 *    difference. After the last round a key still moving is counted as
 *    unsettled, never as a difference: the stream is carrying it.
 * 4. Each chunk's persistent differences go to on_chunk (repair writes them
 *    as one transaction), then the next chunk is read.
 *
 * THREAD SAFETY: one comparison per thread. The comparison calls the source
 * and the target side from one extra thread each during step 1, never one
 * side from two threads at once.
 */
#ifndef CW_VERIFY_COMPARE_H
#define CW_VERIFY_COMPARE_H

#include "core/cancel.h"
#include "core/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One row as a side reads it; every pointer borrowed for the callback only. */
typedef struct cw_verify_row {
	const char *doc_id;
	uint64_t digest;
	const uint64_t *columns;   /* per-column digests (row_digest.h), or NULL */
	size_t ncolumns;
	bool stale;                /* target: the row is of an older generation */
	const char *data;          /* source: the row as a change's data (for repair), or NULL */
} cw_verify_row_t;

/* Called for each row read; a nonzero return stops the read with that code. */
typedef int (*cw_verify_row_fn)(void *arg, const cw_verify_row_t *row);
/* Whether a read wants the row of doc_id (NULL: every row). */
typedef bool (*cw_verify_want_fn)(void *arg, const char *doc_id);

/* One side: the source's table or collection, or a target's copy. */
typedef struct cw_verify_side {
	void *self;
	/*
	 * Reads the entity's rows (those want accepts, when want is set; a side
	 * may still call on_row for others), calling on_row for each. 0, the
	 * code on_row returned, CW_ECANCELED, or a CW_E* code with err.
	 */
	int (*read)(void *self, cw_verify_want_fn want, void *want_arg, cw_verify_row_fn on_row,
	            void *arg, cw_cancel_t *cancel, cw_err_t *err);
} cw_verify_side_t;

typedef enum cw_verify_kind {
	CW_VERIFY_MISSING = 0,     /* in the source, not in the target */
	CW_VERIFY_EXTRA,           /* in the target, not in the source */
	CW_VERIFY_DIFFERENT,       /* in both, other values */
	CW_VERIFY_STALE,           /* equal values, older generation in the target */
	CW_VERIFY_NKINDS
} cw_verify_kind_t;

/* "missing", "extra", "different", "stale_version". */
const char *cw_verify_kind_name(cw_verify_kind_t kind);

/* One persistent difference; borrowed for the on_chunk call. */
typedef struct cw_verify_diff {
	cw_verify_kind_t kind;
	const char *doc_id;
	const char *source_data;   /* the source's row as a change's data; NULL unless in the source */
	const uint64_t *differing; /* DIFFERENT: bit i set when column i differs (1 bit per column) */
	size_t ncolumns;
} cw_verify_diff_t;

typedef struct cw_verify_compare_opts {
	size_t buckets;            /* summary buckets; 0 = from expected_rows */
	uint64_t expected_rows;    /* a guess of the table's size, for the bucket count */
	size_t chunk_rows;         /* most rows held per chunk in step 2; 0 = 100000 */
	int recheck_rounds;        /* step 3 rounds; 0 = 3 */
	/* Waits until the target has applied the hub past what the source holds now. */
	int (*settle)(void *arg, cw_cancel_t *cancel, cw_err_t *err);
	/* The persistent differences of one chunk (may be NULL). */
	int (*on_chunk)(void *arg, const cw_verify_diff_t *diffs, size_t ndiffs, cw_err_t *err);
	/* Progress after each step (may be NULL): rows read so far, of about how many. */
	void (*progress)(void *arg, const char *step, uint64_t rows, uint64_t expected);
	void *arg;
} cw_verify_compare_opts_t;

typedef struct cw_verify_result {
	uint64_t source_rows;
	uint64_t target_rows;
	uint64_t rows_read;        /* every row read, both sides, every step */
	uint64_t differences[CW_VERIFY_NKINDS];
	uint64_t candidates;       /* differences found in step 2, before the re-check */
	uint64_t unsettled;        /* keys still moving after the last round */
	size_t buckets;
	size_t differing_buckets;
} cw_verify_result_t;

/*
 * Compares source and target (borrowed) as above; result is filled as far
 * as it got. 0, CW_ECANCELED, or the first error of a side, settle or
 * on_chunk (err filled).
 */
int cw_verify_compare(const cw_verify_side_t *source, const cw_verify_side_t *target,
                      const cw_verify_compare_opts_t *opts, cw_cancel_t *cancel,
                      cw_verify_result_t *result, cw_err_t *err);

/* Bucket of doc_id among nbuckets (exposed for tests). */
size_t cw_verify_bucket(const char *doc_id, size_t nbuckets);

#endif
