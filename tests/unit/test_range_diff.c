/*
 * Unit tests of the bisecting range comparison (verify/range_diff.h) on two
 * in-memory sides: it finds exactly the planted differences (missing, extra,
 * different, at the edges and in runs), summarizes far fewer times than there
 * are rows, reads row by row only around the differences, and equal sides
 * cost one summary each.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/mem.h"
#include "verify/range_diff.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A sorted array of rows. */
typedef struct side {
	cw_range_row_t *rows;
	size_t n, cap;
} side_t;

/* The index of the first row with key > lo (lo NULL: 0). */
static size_t first_after(const side_t *s, const char *lo)
{
	size_t a = 0, b = s->n;
	if (lo == NULL)
		return 0;
	while (a < b) {
		size_t m = (a + b) / 2;
		if (strcmp(s->rows[m].key, lo) <= 0)
			a = m + 1;
		else
			b = m;
	}
	return a;
}

/* [from, to) of the rows in (lo, hi]. */
static void span(const side_t *s, const char *lo, const char *hi, size_t *from, size_t *to)
{
	*from = first_after(s, lo);
	*to = hi == NULL ? s->n : first_after(s, hi);
	if (*to < *from)
		*to = *from;
}

static int mem_summarize(void *self, const char *lo, const char *hi, cw_range_summary_t *out,
                         cw_err_t *err)
{
	(void)err;
	const side_t *s = self;
	size_t from, to;
	span(s, lo, hi, &from, &to);
	out->count = to - from;
	out->hash = 0;
	for (size_t i = from; i < to; i++)
		out->hash += s->rows[i].digest;
	return 0;
}

static int mem_rows(void *self, const char *lo, const char *hi, cw_range_row_t **rows,
                    size_t *nrows, cw_err_t *err)
{
	(void)err;
	const side_t *s = self;
	size_t from, to;
	span(s, lo, hi, &from, &to);
	*nrows = to - from;
	*rows = cw_xcalloc(*nrows + 1, sizeof **rows);
	for (size_t i = from; i < to; i++)
		(*rows)[i - from] = (cw_range_row_t){cw_xstrdup(s->rows[i].key), s->rows[i].digest};
	return 0;
}

static int mem_split(void *self, const char *lo, const char *hi, size_t parts, char ***keys,
                     size_t *nkeys, cw_err_t *err)
{
	(void)err;
	const side_t *s = self;
	size_t from, to;
	span(s, lo, hi, &from, &to);
	size_t n = to - from;
	*keys = cw_xcalloc(parts + 1, sizeof **keys);
	*nkeys = 0;
	for (size_t i = 1; i < parts && n > 1; i++) {
		size_t at = from + n * i / parts;
		if (at > from && at < to)
			(*keys)[(*nkeys)++] = cw_xstrdup(s->rows[at - 1].key);
	}
	return 0;
}

static cw_range_side_t side_of(side_t *s)
{
	return (cw_range_side_t){s, mem_summarize, mem_rows, mem_split};
}

static void side_add(side_t *s, const char *key, uint64_t digest)
{
	if (s->n == s->cap) {   /* doubling: 100,000 rows stay quick under ASan too */
		s->cap = s->cap ? 2 * s->cap : 1024;
		s->rows = cw_xrealloc(s->rows, s->cap * sizeof *s->rows);
	}
	s->rows[s->n++] = (cw_range_row_t){cw_xstrdup(key), digest};
}

static void side_free(side_t *s)
{
	cw_range_rows_free(s->rows, s->n);
}

/* What the comparison reported: "M:key" "E:key" "D:key" lines. */
typedef struct found {
	char text[65536];
	size_t n;
} found_t;

static void on_diff(void *arg, cw_range_diff_kind_t kind, const char *key)
{
	found_t *f = arg;
	static const char letters[] = {'M', 'E', 'D'};
	size_t len = strlen(f->text);
	snprintf(f->text + len, sizeof f->text - len, "%c:%s ", letters[kind], key);
	f->n++;
}

#define ROWS 100000

static void key_of(size_t i, char out[16])
{
	snprintf(out, 16, "k%07zu", i);
}

static void finds_exactly_the_planted_differences(void **state)
{
	(void)state;
	side_t src = {0}, dst = {0};
	char key[16];
	/* planted: missing k0000000 (first), k0050000, k0050001 (a run), k0099999 (last);
	 * different k0012345; extra k0031415x (between two keys) and k9 (after the last) */
	for (size_t i = 0; i < ROWS; i++) {
		key_of(i, key);
		uint64_t digest = cw_range_digest(key, strlen(key));
		side_add(&src, key, digest);
		if (i == 0 || i == 50000 || i == 50001 || i == ROWS - 1)
			continue;
		side_add(&dst, key, i == 12345 ? digest + 1 : digest);
		if (i == 31415)
			side_add(&dst, "k0031415x", 7);
	}
	side_add(&dst, "k9", 9);
	cw_range_side_t a = side_of(&src), b = side_of(&dst);
	found_t found = {"", 0};
	cw_range_diff_stats_t stats;
	cw_err_t err = {0};
	cw_range_diff_opts_t opts = {100, 16};
	assert_int_equal(cw_range_diff(&a, &b, NULL, NULL, &opts, on_diff, &found, &stats, &err), 0);
	assert_string_equal(found.text, "M:k0000000 D:k0012345 E:k0031415x M:k0050000 M:k0050001 "
	                                "M:k0099999 E:k9 ");
	assert_int_equal(stats.differences, 7);
	assert_int_equal(stats.source_rows, ROWS);
	/* bisection: a few hundred summaries and leaf reads, not 100,000 rows */
	assert_true(stats.summaries < 1000);
	assert_true(stats.leaf_rows < 3000);
	side_free(&src);
	side_free(&dst);
}

static void equal_sides_cost_one_summary_each(void **state)
{
	(void)state;
	side_t src = {0}, dst = {0};
	char key[16];
	for (size_t i = 0; i < 5000; i++) {
		key_of(i, key);
		side_add(&src, key, i * 31);
		side_add(&dst, key, i * 31);
	}
	cw_range_side_t a = side_of(&src), b = side_of(&dst);
	found_t found = {"", 0};
	cw_range_diff_stats_t stats;
	cw_err_t err = {0};
	assert_int_equal(cw_range_diff(&a, &b, NULL, NULL, NULL, on_diff, &found, &stats, &err), 0);
	assert_int_equal(found.n, 0);
	assert_int_equal(stats.summaries, 2);
	assert_int_equal(stats.leaf_rows, 0);
	side_free(&src);
	side_free(&dst);
}

static void empty_and_one_sided_ranges(void **state)
{
	(void)state;
	side_t src = {0}, dst = {0};
	char key[16];
	for (size_t i = 0; i < 2500; i++) {
		key_of(i, key);
		side_add(&dst, key, i);
	}
	cw_range_side_t a = side_of(&src), b = side_of(&dst);
	found_t found = {"", 0};
	cw_range_diff_stats_t stats;
	cw_err_t err = {0};
	cw_range_diff_opts_t opts = {64, 4};
	/* the target holds rows the (empty) source does not: every one is extra */
	assert_int_equal(cw_range_diff(&a, &b, NULL, NULL, &opts, on_diff, &found, &stats, &err), 0);
	assert_int_equal(found.n, 2500);
	assert_int_equal(stats.differences, 2500);
	/* a bounded range sees only its own keys */
	found_t part = {"", 0};
	assert_int_equal(cw_range_diff(&a, &b, "k0000100", "k0000103", &opts, on_diff, &part, &stats,
	                               &err), 0);
	assert_string_equal(part.text, "E:k0000101 E:k0000102 E:k0000103 ");
	side_free(&src);
	side_free(&dst);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(finds_exactly_the_planted_differences),
		cmocka_unit_test(equal_sides_cost_one_summary_each),
		cmocka_unit_test(empty_and_one_sided_ranges),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
