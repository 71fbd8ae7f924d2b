/* This file contains the bisecting range comparison (range_diff.h). */
#include "verify/range_diff.h"

#include "core/mem.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct diff_run {
	const cw_range_side_t *source;
	const cw_range_side_t *target;
	size_t leaf_rows;
	size_t fanout;
	cw_range_diff_fn on_diff;
	void *arg;
	cw_range_diff_stats_t *stats;
} diff_run_t;

void cw_range_rows_free(cw_range_row_t *rows, size_t nrows)
{
	for (size_t i = 0; i < nrows; i++)
		free(rows[i].key);
	free(rows);
}

uint64_t cw_range_digest(const void *bytes, size_t len)
{
	const unsigned char *p = bytes;
	uint64_t h = 14695981039346656037ULL;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static void report(diff_run_t *run, cw_range_diff_kind_t kind, const char *key)
{
	run->stats->differences++;
	run->on_diff(run->arg, kind, key);
}

/* Reads both sides of a small range and merges them by key. */
static int compare_rows(diff_run_t *run, const char *lo, const char *hi, cw_err_t *err)
{
	cw_range_row_t *a = NULL, *b = NULL;
	size_t na = 0, nb = 0;
	int rc = run->source->rows(run->source->self, lo, hi, &a, &na, err);
	if (rc == 0)
		rc = run->target->rows(run->target->self, lo, hi, &b, &nb, err);
	if (rc == 0) {
		run->stats->leaf_rows += na + nb;
		size_t i = 0, j = 0;
		while (i < na || j < nb) {
			int c = i == na ? 1 : j == nb ? -1 : strcmp(a[i].key, b[j].key);
			if (c < 0) {
				report(run, CW_RANGE_MISSING, a[i++].key);
			} else if (c > 0) {
				report(run, CW_RANGE_EXTRA, b[j++].key);
			} else {
				if (a[i].digest != b[j].digest)
					report(run, CW_RANGE_DIFFERENT, a[i].key);
				i++;
				j++;
			}
		}
	}
	cw_range_rows_free(a, na);
	cw_range_rows_free(b, nb);
	return rc;
}

static int compare_range(diff_run_t *run, const char *lo, const char *hi, cw_err_t *err);

/* Splits (lo, hi] at the side holding more rows, and compares each part. */
static int bisect(diff_run_t *run, const char *lo, const char *hi, bool by_source, cw_err_t *err)
{
	const cw_range_side_t *side = by_source ? run->source : run->target;
	char **keys = NULL;
	size_t nkeys = 0;
	int rc = side->split(side->self, lo, hi, run->fanout, &keys, &nkeys, err);
	if (rc != 0)
		return rc;
	/* Only keys strictly inside (lo, hi), increasing: every part is then a smaller range. */
	size_t kept = 0;
	for (size_t i = 0; i < nkeys; i++) {
		const char *prev = kept > 0 ? keys[kept - 1] : lo;
		bool inside = (prev == NULL || strcmp(keys[i], prev) > 0) &&
		              (hi == NULL || strcmp(keys[i], hi) < 0);
		if (inside)
			keys[kept++] = keys[i];
		else
			free(keys[i]);
	}
	nkeys = kept;
	if (nkeys == 0) {   /* cannot be split further: read it */
		free(keys);
		return compare_rows(run, lo, hi, err);
	}
	const char *from = lo;
	for (size_t i = 0; i <= nkeys && rc == 0; i++) {
		const char *to = i < nkeys ? keys[i] : hi;
		rc = compare_range(run, from, to, err);
		from = to;
	}
	for (size_t i = 0; i < nkeys; i++)
		free(keys[i]);
	free(keys);
	return rc;
}

static int compare_range(diff_run_t *run, const char *lo, const char *hi, cw_err_t *err)
{
	cw_range_summary_t s, t;
	int rc = run->source->summarize(run->source->self, lo, hi, &s, err);
	if (rc == 0)
		rc = run->target->summarize(run->target->self, lo, hi, &t, err);
	if (rc != 0)
		return rc;
	run->stats->summaries += 2;
	if (s.count == t.count && s.hash == t.hash)
		return 0;
	uint64_t larger = s.count > t.count ? s.count : t.count;
	if (larger <= run->leaf_rows)
		return compare_rows(run, lo, hi, err);
	return bisect(run, lo, hi, s.count >= t.count, err);
}

int cw_range_diff(const cw_range_side_t *source, const cw_range_side_t *target, const char *lo,
                  const char *hi, const cw_range_diff_opts_t *opts, cw_range_diff_fn on_diff,
                  void *arg, cw_range_diff_stats_t *stats, cw_err_t *err)
{
	cw_range_diff_stats_t scratch;
	if (stats == NULL)
		stats = &scratch;
	memset(stats, 0, sizeof *stats);
	diff_run_t run = {source, target,
	                  opts != NULL && opts->leaf_rows > 0 ? opts->leaf_rows : 1000,
	                  opts != NULL && opts->fanout > 1 ? opts->fanout : 16,
	                  on_diff, arg, stats};
	cw_range_summary_t whole;
	int rc = source->summarize(source->self, lo, hi, &whole, err);
	if (rc != 0)
		return rc;
	stats->source_rows = whole.count;
	return compare_range(&run, lo, hi, err);
}
