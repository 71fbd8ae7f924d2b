/* This file contains verify's comparison of a source and a target (compare.h). */
#include "verify/compare.h"

#include "core/mem.h"
#include "verify/row_digest.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_CHUNK_ROWS 100000
#define DEFAULT_ROUNDS 3
/* 1 MiB of summaries a side: buckets stay small when the table's size is unknown. */
#define MIN_BUCKETS 65536
#define MAX_BUCKETS (1u << 20)
#define ROWS_PER_BUCKET 128
#define POLL_MS 5
#define PROGRESS_POLL_MS 1000

const char *cw_verify_kind_name(cw_verify_kind_t kind)
{
	switch (kind) {
	case CW_VERIFY_MISSING: return "missing";
	case CW_VERIFY_EXTRA: return "extra";
	case CW_VERIFY_DIFFERENT: return "different";
	case CW_VERIFY_STALE: return "stale_version";
	case CW_VERIFY_NKINDS: break;
	}
	return "unknown";
}

size_t cw_verify_bucket(const char *doc_id, size_t nbuckets)
{
	return (size_t)(cw_digest_bytes(doc_id, strlen(doc_id)) % nbuckets);
}

/* ---- a map of rows by doc_id (open addressing) ---- */

typedef struct row_entry {
	char *doc_id;              /* owned; NULL = free slot */
	uint64_t digest;
	uint64_t *columns;         /* owned */
	size_t ncolumns;
	bool stale;
	char *data;                /* owned */
} row_entry_t;

typedef struct row_map {
	row_entry_t *slots;
	size_t cap;                /* a power of two */
	size_t len;
} row_map_t;

static void map_free(row_map_t *map)
{
	for (size_t i = 0; i < map->cap; i++) {
		free(map->slots[i].doc_id);
		free(map->slots[i].columns);
		free(map->slots[i].data);
	}
	free(map->slots);
	memset(map, 0, sizeof *map);
}

static size_t map_slot(const row_map_t *map, const char *doc_id)
{
	size_t i = (size_t)cw_digest_bytes(doc_id, strlen(doc_id)) & (map->cap - 1);
	while (map->slots[i].doc_id != NULL && strcmp(map->slots[i].doc_id, doc_id) != 0)
		i = (i + 1) & (map->cap - 1);
	return i;
}

static const row_entry_t *map_get(const row_map_t *map, const char *doc_id)
{
	if (map->cap == 0)
		return NULL;
	const row_entry_t *e = &map->slots[map_slot(map, doc_id)];
	return e->doc_id ? e : NULL;
}

static row_entry_t *map_put(row_map_t *map, const char *doc_id)
{
	if ((map->len + 1) * 2 > map->cap) {
		row_map_t grown = {cw_xcalloc(map->cap ? map->cap * 2 : 64, sizeof(row_entry_t)),
		                   map->cap ? map->cap * 2 : 64, map->len};
		for (size_t i = 0; i < map->cap; i++)
			if (map->slots[i].doc_id != NULL)
				grown.slots[map_slot(&grown, map->slots[i].doc_id)] = map->slots[i];
		free(map->slots);
		*map = grown;
	}
	row_entry_t *e = &map->slots[map_slot(map, doc_id)];
	if (e->doc_id == NULL) {
		e->doc_id = cw_xstrdup(doc_id);
		map->len++;
	} else {
		free(e->columns);
		free(e->data);
	}
	e->columns = NULL;
	e->data = NULL;
	return e;
}

/* ---- reading a side on a thread of its own ---- */

typedef struct bucket_sum {
	uint64_t count;
	uint64_t hash;
} bucket_sum_t;

typedef struct side_read {
	const cw_verify_side_t *side;
	cw_cancel_t *cancel;
	/* what the read does with rows: sum into buckets, or keep in map */
	bucket_sum_t *sums;
	size_t nbuckets;
	row_map_t *map;
	bool keep_data;
	/* which rows: chunk buckets (bitmap) or the keys of a map */
	const unsigned char *chunk;
	const row_map_t *keys;
	atomic_uint_fast64_t rows;
	atomic_bool done;
	uint64_t kept;
	int rc;
	cw_err_t err;
} side_read_t;

static bool wants(side_read_t *rd, const char *doc_id)
{
	if (rd->chunk != NULL) {
		size_t b = cw_verify_bucket(doc_id, rd->nbuckets);
		return (rd->chunk[b / 8] >> (b % 8)) & 1;
	}
	if (rd->keys != NULL)
		return map_get(rd->keys, doc_id) != NULL;
	return true;
}

static bool want_cb(void *arg, const char *doc_id)
{
	return wants(arg, doc_id);
}

static int on_row(void *arg, const cw_verify_row_t *row)
{
	side_read_t *rd = arg;
	atomic_fetch_add(&rd->rows, 1);
	if (rd->sums != NULL) {
		bucket_sum_t *s = &rd->sums[cw_verify_bucket(row->doc_id, rd->nbuckets)];
		s->count++;
		/* A stale row's summary differs, so its bucket is read row by row. */
		s->hash += row->stale ? ~row->digest : row->digest;
		return 0;
	}
	if (!wants(rd, row->doc_id))
		return 0;
	row_entry_t *e = map_put(rd->map, row->doc_id);
	e->digest = row->digest;
	e->stale = row->stale;
	e->ncolumns = row->columns ? row->ncolumns : 0;
	if (e->ncolumns > 0) {
		e->columns = cw_xmalloc(e->ncolumns * sizeof *e->columns);
		memcpy(e->columns, row->columns, e->ncolumns * sizeof *e->columns);
	}
	if (rd->keep_data && row->data != NULL)
		e->data = cw_xstrdup(row->data);
	rd->kept++;
	return 0;
}

static void *read_thread(void *arg)
{
	side_read_t *rd = arg;
	bool filtered = rd->chunk != NULL || rd->keys != NULL;
	rd->rc = rd->side->read(rd->side->self, filtered ? want_cb : NULL, rd, on_row, rd,
	                        rd->cancel, &rd->err);
	atomic_store(&rd->done, true);
	return NULL;
}

typedef struct compare_run {
	const cw_verify_compare_opts_t *opts;
	cw_cancel_t *cancel;
	cw_verify_result_t *result;
	uint64_t expected;
} compare_run_t;

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/*
 * Reads a, and b at the same time when given (one thread each), reporting
 * progress while they run. Returns the first error.
 */
static int read_sides(compare_run_t *run, const char *step, side_read_t *a, side_read_t *b,
                      cw_err_t *err)
{
	side_read_t *reads[2] = {a, b};
	pthread_t threads[2];
	bool started[2] = {false, false};
	size_t n = b != NULL ? 2 : 1;
	for (size_t i = 0; i < n; i++) {
		atomic_init(&reads[i]->done, false);
		started[i] = pthread_create(&threads[i], NULL, read_thread, reads[i]) == 0;
		if (!started[i])
			read_thread(reads[i]);
	}
	for (long waited = 0;; waited += POLL_MS) {
		bool done = true;
		for (size_t i = 0; i < n; i++)
			done = done && atomic_load(&reads[i]->done);
		if (done)
			break;
		sleep_ms(POLL_MS);
		if (run->opts->progress != NULL && waited > 0 && waited % PROGRESS_POLL_MS == 0)
			run->opts->progress(run->opts->arg, step,
			                    run->result->rows_read + atomic_load(&a->rows) +
			                    (b ? atomic_load(&b->rows) : 0), run->expected);
	}
	for (size_t i = 0; i < n; i++)
		if (started[i])
			pthread_join(threads[i], NULL);
	run->result->rows_read += atomic_load(&a->rows) + (b ? atomic_load(&b->rows) : 0);
	for (size_t i = 0; i < n; i++) {
		if (reads[i]->rc != 0) {
			if (err != NULL)
				*err = reads[i]->err;
			return reads[i]->rc;
		}
	}
	return 0;
}

static void side_init(side_read_t *rd, const cw_verify_side_t *side, cw_cancel_t *cancel)
{
	memset(rd, 0, sizeof *rd);
	rd->side = side;
	rd->cancel = cancel;
	atomic_init(&rd->rows, 0);
}

/* The kind of difference between a source row and a target row (NULL: absent); -1: equal. */
static int classify(const row_entry_t *s, const row_entry_t *t)
{
	if (s == NULL && t == NULL)
		return -1;
	if (t == NULL)
		return CW_VERIFY_MISSING;
	if (s == NULL)
		return CW_VERIFY_EXTRA;
	if (s->digest != t->digest)
		return CW_VERIFY_DIFFERENT;
	return t->stale ? CW_VERIFY_STALE : -1;
}

static bool same_source(const row_entry_t *a, const row_entry_t *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return a->digest == b->digest;
}

/* The persistent differences of one chunk, kept until on_chunk saw them. */
typedef struct diff_list {
	cw_verify_diff_t *items;
	size_t len, cap;
} diff_list_t;

static void diffs_add(diff_list_t *list, cw_verify_kind_t kind, const row_entry_t *s,
                      const row_entry_t *t, const char *doc_id)
{
	if (list->len == list->cap) {
		list->cap = list->cap ? list->cap * 2 : 64;
		list->items = cw_xrealloc(list->items, list->cap * sizeof *list->items);
	}
	cw_verify_diff_t *d = &list->items[list->len++];
	memset(d, 0, sizeof *d);
	d->kind = kind;
	d->doc_id = cw_xstrdup(doc_id);
	d->source_data = s && s->data ? cw_xstrdup(s->data) : NULL;
	if (kind == CW_VERIFY_DIFFERENT && s && t && s->ncolumns > 0 && s->ncolumns == t->ncolumns) {
		uint64_t *bits = cw_xcalloc((s->ncolumns + 63) / 64, sizeof *bits);
		for (size_t i = 0; i < s->ncolumns; i++)
			if (s->columns[i] != t->columns[i])
				bits[i / 64] |= 1ULL << (i % 64);
		d->differing = bits;
		d->ncolumns = s->ncolumns;
	}
}

static void diffs_free(diff_list_t *list)
{
	for (size_t i = 0; i < list->len; i++) {
		free((char *)list->items[i].doc_id);
		free((char *)list->items[i].source_data);
		free((uint64_t *)list->items[i].differing);
	}
	free(list->items);
	memset(list, 0, sizeof *list);
}

/*
 * Step 3 for the candidates (keys of *candidates, consumed): rounds of
 * source, settle, target, source; persistent ones into diffs.
 */
static int recheck(compare_run_t *run, const cw_verify_side_t *source,
                   const cw_verify_side_t *target, row_map_t *candidates, diff_list_t *diffs,
                   cw_err_t *err)
{
	int rounds = run->opts->recheck_rounds > 0 ? run->opts->recheck_rounds : DEFAULT_ROUNDS;
	int rc = 0;
	for (int round = 0; round < rounds && candidates->len > 0 && rc == 0; round++) {
		row_map_t before = {0}, after = {0}, held = {0};
		side_read_t rd;
		side_init(&rd, source, run->cancel);
		rd.keys = candidates;
		rd.map = &before;
		rc = read_sides(run, "re-check", &rd, NULL, err);
		if (rc == 0 && run->opts->settle != NULL)
			rc = run->opts->settle(run->opts->arg, run->cancel, err);
		if (rc == 0) {
			side_init(&rd, target, run->cancel);
			rd.keys = candidates;
			rd.map = &held;
			rc = read_sides(run, "re-check", &rd, NULL, err);
		}
		if (rc == 0) {
			side_init(&rd, source, run->cancel);
			rd.keys = candidates;
			rd.map = &after;
			rd.keep_data = true;
			rc = read_sides(run, "re-check", &rd, NULL, err);
		}
		row_map_t moving = {0};
		for (size_t i = 0; i < candidates->cap && rc == 0; i++) {
			const char *doc_id = candidates->slots[i].doc_id;
			if (doc_id == NULL)
				continue;
			const row_entry_t *s1 = map_get(&before, doc_id), *s2 = map_get(&after, doc_id);
			const row_entry_t *t = map_get(&held, doc_id);
			if (!same_source(s1, s2)) {
				map_put(&moving, doc_id);
				continue;
			}
			int kind = classify(s2, t);
			if (kind >= 0)
				diffs_add(diffs, (cw_verify_kind_t)kind, s2, t, doc_id);
		}
		map_free(&before);
		map_free(&after);
		map_free(&held);
		map_free(candidates);
		*candidates = moving;
	}
	run->result->unsettled += candidates->len;
	map_free(candidates);
	return rc;
}

/* Steps 2 to 4 for the buckets set in chunk. */
static int compare_chunk(compare_run_t *run, const cw_verify_side_t *source,
                         const cw_verify_side_t *target, const unsigned char *chunk,
                         size_t nbuckets, cw_err_t *err)
{
	row_map_t smap = {0}, tmap = {0}, candidates = {0};
	diff_list_t diffs = {0};
	side_read_t srd, trd;
	side_init(&srd, source, run->cancel);
	side_init(&trd, target, run->cancel);
	srd.chunk = trd.chunk = chunk;
	srd.nbuckets = trd.nbuckets = nbuckets;
	srd.map = &smap;
	trd.map = &tmap;
	int rc = read_sides(run, "rows", &srd, &trd, err);
	for (size_t i = 0; i < smap.cap && rc == 0; i++)
		if (smap.slots[i].doc_id && classify(&smap.slots[i],
		                                     map_get(&tmap, smap.slots[i].doc_id)) >= 0)
			map_put(&candidates, smap.slots[i].doc_id);
	for (size_t i = 0; i < tmap.cap && rc == 0; i++)
		if (tmap.slots[i].doc_id && map_get(&smap, tmap.slots[i].doc_id) == NULL)
			map_put(&candidates, tmap.slots[i].doc_id);
	map_free(&smap);
	map_free(&tmap);
	run->result->candidates += candidates.len;
	if (rc == 0)
		rc = recheck(run, source, target, &candidates, &diffs, err);
	map_free(&candidates);
	for (size_t i = 0; i < diffs.len && rc == 0; i++)
		run->result->differences[diffs.items[i].kind]++;
	if (rc == 0 && diffs.len > 0 && run->opts->on_chunk != NULL)
		rc = run->opts->on_chunk(run->opts->arg, diffs.items, diffs.len, err);
	diffs_free(&diffs);
	return rc;
}

static size_t bucket_count(const cw_verify_compare_opts_t *opts)
{
	if (opts->buckets > 0)
		return opts->buckets;
	uint64_t n = opts->expected_rows / ROWS_PER_BUCKET;
	return n < MIN_BUCKETS ? MIN_BUCKETS : n > MAX_BUCKETS ? MAX_BUCKETS : (size_t)n;
}

int cw_verify_compare(const cw_verify_side_t *source, const cw_verify_side_t *target,
                      const cw_verify_compare_opts_t *opts, cw_cancel_t *cancel,
                      cw_verify_result_t *result, cw_err_t *err)
{
	memset(result, 0, sizeof *result);
	compare_run_t run = {opts, cancel, result, opts->expected_rows * 2};
	size_t nbuckets = bucket_count(opts);
	size_t chunk_rows = opts->chunk_rows > 0 ? opts->chunk_rows : DEFAULT_CHUNK_ROWS;
	result->buckets = nbuckets;
	side_read_t srd, trd;
	side_init(&srd, source, cancel);
	side_init(&trd, target, cancel);
	srd.sums = cw_xcalloc(nbuckets, sizeof *srd.sums);
	trd.sums = cw_xcalloc(nbuckets, sizeof *trd.sums);
	srd.nbuckets = trd.nbuckets = nbuckets;
	unsigned char *chunk = cw_xcalloc(nbuckets / 8 + 1, 1);
	int rc = read_sides(&run, "summaries", &srd, &trd, err);
	result->source_rows = atomic_load(&srd.rows);
	result->target_rows = atomic_load(&trd.rows);
	if (rc == 0 && opts->progress != NULL)
		opts->progress(opts->arg, "summaries", result->rows_read, run.expected);
	uint64_t held = 0;
	size_t in_chunk = 0;
	for (size_t b = 0; b < nbuckets && rc == 0; b++) {
		const bucket_sum_t *s = &srd.sums[b], *t = &trd.sums[b];
		bool last = b + 1 == nbuckets;
		if (s->count != t->count || s->hash != t->hash) {
			result->differing_buckets++;
			chunk[b / 8] |= (unsigned char)(1u << (b % 8));
			held += s->count > t->count ? s->count : t->count;
			in_chunk++;
		}
		if (in_chunk > 0 && (held >= chunk_rows || last)) {
			rc = compare_chunk(&run, source, target, chunk, nbuckets, err);
			memset(chunk, 0, nbuckets / 8 + 1);
			held = 0;
			in_chunk = 0;
		}
	}
	free(chunk);
	free(srd.sums);
	free(trd.sums);
	return rc;
}
