/*
 * This file contains the comparison at the heart of verify: two sides (a
 * source table or collection, and a target) each summarize the rows whose
 * keys fall in a range — a count and an order-independent hash that a
 * database can compute as one aggregate — and the comparison bisects only
 * the ranges whose summaries differ, down to ranges small enough to read row
 * by row (the data-diff algorithm). Memory stays bounded by the leaf size and
 * the recursion depth, whatever the table's size.
 *
 * Keys are byte strings in byte order (PostgreSQL `COLLATE "C"`, SQLite's
 * TEXT order). A range is (lo, hi]: lo NULL is "from the first key", hi NULL
 * "to the last".
 *
 * THREAD SAFETY: one comparison per thread; the sides are the caller's.
 */
#ifndef CW_VERIFY_RANGE_DIFF_H
#define CW_VERIFY_RANGE_DIFF_H

#include "core/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One row as the comparison sees it: its key and a digest of its values. */
typedef struct cw_range_row {
	char *key;                 /* owned */
	uint64_t digest;
} cw_range_row_t;

/* A range's summary: how many rows, and the sum (mod 2^64) of their digests. */
typedef struct cw_range_summary {
	uint64_t count;
	uint64_t hash;
} cw_range_summary_t;

/* One side of the comparison. Every function returns 0 or a CW_E* code with err. */
typedef struct cw_range_side {
	void *self;
	/* The summary of the rows with keys in (lo, hi]. */
	int (*summarize)(void *self, const char *lo, const char *hi, cw_range_summary_t *out,
	                 cw_err_t *err);
	/* The rows with keys in (lo, hi], sorted by key (*rows owned by the caller). */
	int (*rows)(void *self, const char *lo, const char *hi, cw_range_row_t **rows,
	            size_t *nrows, cw_err_t *err);
	/*
	 * Up to parts - 1 keys in (lo, hi], increasing, splitting the side's rows
	 * there into parts of about equal size (*keys owned by the caller).
	 */
	int (*split)(void *self, const char *lo, const char *hi, size_t parts, char ***keys,
	             size_t *nkeys, cw_err_t *err);
} cw_range_side_t;

typedef enum cw_range_diff_kind {
	CW_RANGE_MISSING = 0,      /* in the source, not in the target */
	CW_RANGE_EXTRA,            /* in the target, not in the source */
	CW_RANGE_DIFFERENT,        /* in both, with other values */
} cw_range_diff_kind_t;

/* Called for each difference found, in key order within a leaf range. */
typedef void (*cw_range_diff_fn)(void *arg, cw_range_diff_kind_t kind, const char *key);

typedef struct cw_range_diff_opts {
	size_t leaf_rows;          /* read row by row at or below this many rows; 0 = 1000 */
	size_t fanout;             /* parts a differing range is split into; 0 = 16 */
} cw_range_diff_opts_t;

typedef struct cw_range_diff_stats {
	uint64_t summaries;        /* summarize calls, both sides */
	uint64_t leaf_rows;        /* rows read row by row, both sides */
	uint64_t differences;
	uint64_t source_rows;      /* the source's rows in the whole range */
} cw_range_diff_stats_t;

/*
 * Compares source and target over (lo, hi] and reports each key that is
 * missing, extra or different through on_diff. stats (optional) counts the
 * work. 0, or the first side's error.
 */
int cw_range_diff(const cw_range_side_t *source, const cw_range_side_t *target, const char *lo,
                  const char *hi, const cw_range_diff_opts_t *opts, cw_range_diff_fn on_diff,
                  void *arg, cw_range_diff_stats_t *stats, cw_err_t *err);

/* Frees rows returned by a side. */
void cw_range_rows_free(cw_range_row_t *rows, size_t nrows);

/* A 64-bit digest of len bytes (FNV-1a), for sides that hash rows themselves. */
uint64_t cw_range_digest(const void *bytes, size_t len);

#endif
