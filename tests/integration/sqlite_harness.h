/*
 * Helpers the SQLite target's integration tests share (header-only: the
 * test glob builds one executable per test_*.c): a hub on a throwaway
 * PostgreSQL cluster, a target running on a thread with the job server's
 * retry-after-error behaviour, oplog appends, and waiting for a cache to
 * hold an expected text rendering of its rows.
 */
#ifndef CW_TEST_SQLITE_HARNESS_H
#define CW_TEST_SQLITE_HARNESS_H

#define _XOPEN_SOURCE 700
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "apply/target.h"
#include "core/buf.h"
#include "core/change.h"
#include "core/config.h"
#include "core/entity.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "hub/entity_store.h"
#include "hub/hub.h"
#include "hub/migrations.h"
#include "hub/oplog_writer.h"
#include "testsrv.h"

#include <ftw.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WAIT_MS 180000

static inline int64_t harness_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline int harness_remove_entry(const char *path, const struct stat *st, int flag,
                                       struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static inline void harness_rm_rf(const char *path)
{
	nftw(path, harness_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A configuration with one sqlite target "name" on dir, loaded from YAML text. */
static inline cw_config_t *harness_config(const char *hub_url, const char *name, const char *dir,
                                          int batch_size)
{
	char *yaml = cw_xasprintf("hub:\n  url: %s\ntargets:\n  - name: %s\n    type: sqlite\n"
	                          "    dir: %s\n    idle_timeout: 1s\n"
	                          "apply: {batch_size: %d, poll_interval: 200ms}\n",
	                          hub_url, name, dir, batch_size);
	cw_config_t *config = NULL;
	cw_err_t err = {0};
	if (cw_config_load_buffer("test.yaml", yaml, strlen(yaml), NULL, &config, &err) != 0)
		fail_msg("config: %s", err.message);
	free(yaml);
	return config;
}

/* A target running on its own thread; run is called again after an error, as the job server does. */
typedef struct harness_target {
	cw_config_t *config;
	cw_metrics_t *metrics;
	const char *entities[4];
	cw_component_ctx_t ctx;
	const cw_target_ops_t *ops;
	void *self;
	cw_cancel_t *cancel;
	pthread_t thread;
	int errors;                 /* runs that ended with an error */
	char last_error[CW_ERR_MESSAGE_LEN];
	pthread_mutex_t mutex;
} harness_target_t;

static inline void *harness_target_main(void *arg)
{
	harness_target_t *t = arg;
	for (;;) {
		cw_err_t err = {0};
		int rc = t->ops->run(t->self, t->cancel, &err);
		if (rc == CW_ECANCELED || cw_cancel_is_set(t->cancel))
			break;
		pthread_mutex_lock(&t->mutex);
		t->errors++;
		snprintf(t->last_error, sizeof t->last_error, "%s", err.message);
		pthread_mutex_unlock(&t->mutex);
		if (cw_cancel_wait_ms(t->cancel, 100) == CW_ECANCELED)
			break;
	}
	return NULL;
}

/* Opens target name on dir for the entities (NULL-terminated, at most 3) and starts it. */
static inline harness_target_t *harness_target_start(const char *hub_url, const char *name,
                                                     const char *dir, int batch_size,
                                                     const char *const *entities)
{
	harness_target_t *t = cw_xcalloc(1, sizeof *t);
	t->config = harness_config(hub_url, name, dir, batch_size);
	t->metrics = cw_metrics_new();
	size_t n = 0;
	while (entities != NULL && entities[n] != NULL && n < 3) {
		t->entities[n] = entities[n];
		n++;
	}
	t->ctx = (cw_component_ctx_t){t->config, t->config->targets[0].name, t->entities, n,
	                              t->metrics, NULL};
	t->ops = cw_target_ops_for(CW_TARGET_SQLITE);
	assert_non_null(t->ops);
	cw_err_t err = {0};
	t->self = t->ops->open(&t->ctx, &err);
	if (t->self == NULL)
		fail_msg("open target: %s", err.message);
	t->cancel = cw_cancel_new();
	pthread_mutex_init(&t->mutex, NULL);
	assert_int_equal(pthread_create(&t->thread, NULL, harness_target_main, t), 0);
	return t;
}

static inline void harness_target_stop(harness_target_t *t)
{
	if (t == NULL)
		return;
	cw_cancel_fire(t->cancel);
	pthread_join(t->thread, NULL);
	t->ops->close(t->self);
	cw_cancel_free(t->cancel);
	cw_metrics_free(t->metrics);
	cw_config_free(t->config);
	pthread_mutex_destroy(&t->mutex);
	free(t);
}

static inline int harness_target_errors(harness_target_t *t)
{
	pthread_mutex_lock(&t->mutex);
	int n = t->errors;
	pthread_mutex_unlock(&t->mutex);
	return n;
}

static inline void harness_push(cw_change_batch_t *batch, cw_op_t op, const char *entity,
                                const char *doc_id, const char *data, int64_t version)
{
	cw_change_t change = {0};
	change.op = op;
	change.entity = cw_xstrdup(entity);
	change.doc_id = cw_xstrdup(doc_id);
	change.data = cw_xstrdup(data);
	change.version = version;
	cw_change_batch_push(batch, &change);
}

/* Appends batch to the hub and clears it. */
static inline void harness_append(cw_hub_t *hub, cw_change_batch_t *batch)
{
	cw_oplog_writer_t *writer = cw_oplog_writer_new(hub);
	cw_err_t err = {0};
	if (cw_oplog_append(writer, batch, NULL, NULL, NULL, &err) != 0)
		fail_msg("append: %s", err.message);
	cw_oplog_writer_free(writer);
	cw_change_batch_clear(batch);
}

/* Stores a live entity with the given columns (NULL-terminated "name:type" strings). */
static inline void harness_entity(cw_hub_t *hub, const char *name, const char *const *columns)
{
	cw_column_t cols[16];
	size_t n = 0;
	char names[16][64];
	for (; columns != NULL && columns[n] != NULL; n++) {
		const char *colon = strchr(columns[n], ':');
		snprintf(names[n], sizeof names[n], "%.*s", (int)(colon - columns[n]), columns[n]);
		cols[n].name = names[n];
		cols[n].path = names[n];
		cw_err_t err = {0};
		assert_int_equal(cw_column_type_parse(colon + 1, &cols[n].type, &err), 0);
	}
	cw_entity_t entity = {(char *)name, (char *)"src", (char *)name, NULL, n ? cols : NULL, n,
	                      CW_ENTITY_LIVE, 1, NULL, 0,
	                      CW_ENTITY_MODE_STREAM, {0}, CW_ENTITY_ORIGIN_UNKNOWN, NULL, 0};
	cw_err_t err = {0};
	bool created = false;
	if (cw_entity_store_upsert(hub, &entity, &created, &err) != 0)
		fail_msg("entity %s: %s", name, err.message);
}

/*
 * The rows of sql on the cache file {dir}/{entity}/db.sqlite, one per line,
 * columns joined by '|' (NULL as "~"), read through a separate read-only
 * connection as any reader would. NULL when the file cannot be read yet.
 */
static inline char *harness_cache_rows(const char *dir, const char *entity, const char *sql)
{
	char *path = cw_xasprintf("%s/%s/db.sqlite", dir, entity);
	sqlite3 *db = NULL;
	sqlite3_stmt *stmt = NULL;
	cw_buf_t out = CW_BUF_INIT;
	bool ok = false;
	struct stat st;
	if (stat(path, &st) == 0 &&
	    sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
		sqlite3_busy_timeout(db, 2000);
		if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) == SQLITE_OK) {
			int rc;
			cw_buf_append_str(&out, "");
			while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
				for (int c = 0; c < sqlite3_column_count(stmt); c++) {
					const unsigned char *v = sqlite3_column_text(stmt, c);
					if (c > 0)
						cw_buf_append_char(&out, '|');
					cw_buf_append_str(&out, v ? (const char *)v : "~");
				}
				cw_buf_append_char(&out, '\n');
			}
			ok = rc == SQLITE_DONE;
		}
	}
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	free(path);
	if (!ok) {
		cw_buf_free(&out);
		return NULL;
	}
	return cw_buf_take(&out);
}

/* Waits until the cache's rows equal want; fails with both texts' first difference otherwise. */
static inline void harness_wait_rows(const char *dir, const char *entity, const char *sql,
                                     const char *want)
{
	int64_t deadline = harness_now_ms() + WAIT_MS;
	char *got = NULL;
	for (;;) {
		free(got);
		got = harness_cache_rows(dir, entity, sql);
		if (got != NULL && strcmp(got, want) == 0)
			break;
		if (harness_now_ms() > deadline) {
			size_t i = 0;
			while (got != NULL && got[i] && got[i] == want[i])
				i++;
			fail_msg("cache %s never matched: first difference at byte %zu: got \"%.80s\" "
			         "want \"%.80s\"", entity, i, got ? got + i : "(unreadable)", want + i);
		}
		usleep(20000);
	}
	free(got);
}

static inline bool harness_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

/*
 * A model of one entity with columns title:text, qty:integer, price:number,
 * tags:jsonb: random changes are generated into a batch and applied to the
 * model, which renders the rows the cache must end up with.
 */
#define HARNESS_COLUMNS ((const char *const[]){"title:text", "qty:integer", "price:number", \
                                               "tags:jsonb", NULL})
#define HARNESS_SELECT "SELECT id, title, qty, price, tags FROM \"%s\" ORDER BY id"

typedef struct harness_row {
	bool present;
	bool set[4];        /* title, qty, price, tags not NULL */
	int value[4];       /* the values derive from these numbers */
} harness_row_t;

typedef struct harness_model {
	harness_row_t *rows;
	size_t nrows;
	unsigned seed;
} harness_model_t;

static inline void harness_model_init(harness_model_t *m, size_t nrows, unsigned seed)
{
	m->rows = cw_xcalloc(nrows, sizeof *m->rows);
	m->nrows = nrows;
	m->seed = seed;
}

static inline void harness_doc_id(size_t i, char out[16])
{
	snprintf(out, 16, "d%06u", (unsigned)(i % 1000000));
}

/* Appends key k with value v to a JSON object text being built in buf. */
static inline void harness_json_value(cw_buf_t *buf, int k, int v, bool null)
{
	static const char *const keys[] = {"title", "qty", "price", "tags"};
	cw_buf_appendf(buf, "%s\"%s\": ", buf->len > 1 ? ", " : "", keys[k]);
	if (null) {
		cw_buf_append_str(buf, "null");
		return;
	}
	switch (k) {
	case 0: cw_buf_appendf(buf, "\"t%d\"", v); break;
	case 1: cw_buf_appendf(buf, "%d", v); break;
	case 2: cw_buf_appendf(buf, "%d.5", v); break;
	default: cw_buf_appendf(buf, "[%d, \"x\"]", v); break;
	}
}

/*
 * One change of doc i: mode 0 = full upsert, 1 = partial upsert (a random
 * non-empty subset of keys, some null), 2 = delete. Appended to batch and
 * applied to the model.
 */
static inline void harness_change(harness_model_t *m, cw_change_batch_t *batch, const char *entity,
                                  size_t i, int mode, int64_t version)
{
	char doc_id[16];
	harness_doc_id(i, doc_id);
	harness_row_t *row = &m->rows[i];
	if (mode == 2) {
		harness_push(batch, CW_OP_DELETE, entity, doc_id, NULL, version);
		memset(row, 0, sizeof *row);
		return;
	}
	if (!row->present)
		memset(row, 0, sizeof *row);
	row->present = true;
	cw_buf_t data = CW_BUF_INIT;
	cw_buf_append_char(&data, '{');
	int mask = mode == 0 ? 15 : 1 + (int)(rand_r(&m->seed) % 15);
	for (int k = 0; k < 4; k++) {
		if (!(mask & (1 << k)))
			continue;
		bool null = mode == 1 && rand_r(&m->seed) % 5 == 0;
		int v = (int)(rand_r(&m->seed) % 100000);
		harness_json_value(&data, k, v, null);
		row->set[k] = !null;
		row->value[k] = v;
	}
	cw_buf_append_char(&data, '}');
	harness_push(batch, CW_OP_UPSERT, entity, doc_id, cw_buf_cstr(&data), version);
	cw_buf_free(&data);
}

/* The rows the cache must hold, rendered as harness_cache_rows does with HARNESS_SELECT. */
static inline char *harness_model_rows(const harness_model_t *m)
{
	cw_buf_t out = CW_BUF_INIT;
	cw_buf_append_str(&out, "");
	for (size_t i = 0; i < m->nrows; i++) {
		const harness_row_t *row = &m->rows[i];
		if (!row->present)
			continue;
		char doc_id[16];
		harness_doc_id(i, doc_id);
		cw_buf_append_str(&out, doc_id);
		for (int k = 0; k < 4; k++) {
			if (!row->set[k]) {
				cw_buf_append_str(&out, "|~");
				continue;
			}
			int v = row->value[k];
			switch (k) {
			case 0: cw_buf_appendf(&out, "|t%d", v); break;
			case 1: cw_buf_appendf(&out, "|%d", v); break;
			case 2: cw_buf_appendf(&out, "|%d.5", v); break;
			default: cw_buf_appendf(&out, "|[%d,\"x\"]", v); break;
			}
		}
		cw_buf_append_char(&out, '\n');
	}
	return cw_buf_take(&out);
}

/* Waits until the cache of entity under dir equals the model. */
static inline void harness_wait_model(const char *dir, const char *entity, const harness_model_t *m)
{
	char *want = harness_model_rows(m);
	char *sql = cw_xasprintf(HARNESS_SELECT, entity);
	harness_wait_rows(dir, entity, sql, want);
	free(sql);
	free(want);
}

#endif
