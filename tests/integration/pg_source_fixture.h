/*
 * This file contains what the PostgreSQL source's integration tests
 * (test_pg_*.c) share: a cluster that is both the source and the hub, a
 * configuration built from YAML, the source run on a thread the way the job
 * server runs it (run again after an error), and the hub's state replayed
 * from the oplog the way a target applies it (upserts merge present keys,
 * deletes remove, sweeps remove rows of an older version), to compare with
 * the table. Included by each test file; everything is static.
 */
#ifndef CW_PG_SOURCE_FIXTURE_H
#define CW_PG_SOURCE_FIXTURE_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "capture/source.h"
#include "core/config.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "hub/entity_store.h"
#include "hub/hub.h"
#include "hub/metadata.h"
#include "hub/migrations.h"
#include "testsrv.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WAIT_MS 90000

typedef struct runner {
	const cw_source_ops_t *ops;
	void *source;
	cw_cancel_t *cancel;
	pthread_t thread;
	bool started;
	int runs;                    /* guarded by nothing: read after join only */
	char first_error[CW_ERR_MESSAGE_LEN];
} runner_t;

typedef struct fx {
	cw_testsrv_t srv;
	PGconn *conn;                /* the test's own connection (source tables and hub) */
	cw_hub_t *hub;
	cw_config_t *config;
	cw_metrics_t *metrics;
	cw_component_ctx_t ctx;
	runner_t runner;
} fx_t;

static inline int64_t fx_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void fx_pause_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Runs sql on the test connection; fails the test when it fails. */
static inline void fx_sql(fx_t *fx, const char *sql)
{
	PGresult *res = PQexec(fx->conn, sql);
	ExecStatusType st = PQresultStatus(res);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(fx->conn));
	PQclear(res);
}

/* The single value of a query (owned), NULL for SQL NULL or no row. */
static inline char *fx_value(fx_t *fx, const char *sql)
{
	PGresult *res = PQexec(fx->conn, sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(fx->conn));
	char *value = PQntuples(res) > 0 && !PQgetisnull(res, 0, 0) ?
	              cw_xstrdup(PQgetvalue(res, 0, 0)) : NULL;
	PQclear(res);
	return value;
}

static inline long long fx_int(fx_t *fx, const char *sql)
{
	char *value = fx_value(fx, sql);
	long long n = value != NULL ? strtoll(value, NULL, 10) : -1;
	free(value);
	return n;
}

/* Starts a cluster; sql_setup creates the tables. */
static inline int fx_start(fx_t *fx, const char *sql_setup)
{
	memset(fx, 0, sizeof *fx);
	if (cw_testpg_start(&fx->srv) != 0)
		return -1;
	fx->conn = PQconnectdb(fx->srv.url);
	if (PQstatus(fx->conn) != CONNECTION_OK)
		return -1;
	PGresult *res = PQexec(fx->conn, sql_setup);
	int ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;
	if (!ok)
		fprintf(stderr, "setup: %s\n", PQerrorMessage(fx->conn));
	PQclear(res);
	cw_err_t err = {0};
	fx->hub = cw_hub_connect(fx->srv.url, &err);
	if (!ok || fx->hub == NULL || cw_hub_migrate(fx->hub, NULL, &err) != 0) {
		fprintf(stderr, "hub: %s\n", err.message);
		return -1;
	}
	fx->metrics = cw_metrics_new();
	return 0;
}

/*
 * Loads a configuration: hub and source url are the cluster's; body holds
 * source_extra (more keys of the source, each line "    key: value\n") and
 * the entities list. Stores the configured entities in the hub.
 */
static inline void fx_config_url(fx_t *fx, const char *source_url, const char *source_extra,
                          const char *entities, int batch_size)
{
	cw_config_free(fx->config);
	fx->config = NULL;
	char *yaml = cw_xasprintf(
		"hub:\n  url: %s\n"
		"sources:\n  - name: app\n    type: postgres\n    url: %s\n%s"
		"entities:\n%s"
		"capture: {batch_size: %d, snapshot_batch_size: %d, flush_interval: 50ms}\n",
		fx->srv.url, source_url, source_extra, entities, batch_size, batch_size);
	cw_err_t err = {0};
	cw_config_load_opts_t opts = {NULL, NULL};
	if (cw_config_load_buffer("test.yaml", yaml, strlen(yaml), &opts, &fx->config, &err) != 0)
		fail_msg("config: %s\n%s", err.message, yaml);
	free(yaml);
	for (size_t i = 0; i < fx->config->nentities; i++) {
		bool created = false;
		if (cw_entity_store_upsert(fx->hub, &fx->config->entities[i], &created, &err) != 0)
			fail_msg("entity: %s", err.message);
	}
	fx->ctx = (cw_component_ctx_t){fx->config, "app", NULL, 0, fx->metrics, NULL};
}

/* The cluster's URL with another user (owned). */
static inline char *fx_url_as(fx_t *fx, const char *user)
{
	const char *at = strchr(fx->srv.url, '@');
	const char *scheme = strstr(fx->srv.url, "://");
	assert_non_null(at);
	assert_non_null(scheme);
	return cw_xasprintf("%.*s://%s%s", (int)(scheme - fx->srv.url), fx->srv.url, user, at);
}

static inline void fx_config(fx_t *fx, const char *source_extra, const char *entities, int batch_size)
{
	fx_config_url(fx, fx->srv.url, source_extra, entities, batch_size);
}


static inline void *runner_main(void *arg)
{
	runner_t *r = arg;
	for (;;) {
		cw_err_t err = {0};
		int rc = r->ops->run(r->source, r->cancel, &err);
		r->runs++;
		if (rc == CW_ECANCELED || cw_cancel_is_set(r->cancel))
			break;
		if (r->first_error[0] == '\0')
			snprintf(r->first_error, sizeof r->first_error, "%s", err.message);
		fprintf(stderr, "source run returned %d: %s\n", rc, err.message);
		if (cw_cancel_wait_ms(r->cancel, 200) == CW_ECANCELED)
			break;
	}
	return NULL;
}

/* Opens the source and runs it on a thread, retrying after errors like the job server. */
static inline void fx_run(fx_t *fx)
{
	runner_t *r = &fx->runner;
	memset(r, 0, sizeof *r);
	cw_err_t err = {0};
	r->ops = cw_source_ops_for(CW_SOURCE_POSTGRES);
	assert_non_null(r->ops);
	r->source = r->ops->open(&fx->ctx, &err);
	if (r->source == NULL)
		fail_msg("open: %s", err.message);
	r->cancel = cw_cancel_new();
	assert_int_equal(pthread_create(&r->thread, NULL, runner_main, r), 0);
	r->started = true;
}

static inline void fx_stop(fx_t *fx)
{
	runner_t *r = &fx->runner;
	if (!r->started)
		return;
	cw_cancel_fire(r->cancel);
	pthread_join(r->thread, NULL);
	r->ops->close(r->source);
	cw_cancel_free(r->cancel);
	r->started = false;
}

static inline cw_component_status_t fx_status(fx_t *fx)
{
	cw_component_status_t status;
	fx->runner.ops->status(fx->runner.source, &status);
	return status;
}

/* Waits until the source reports an error and returns it. */
static inline cw_component_status_t fx_wait_error(fx_t *fx)
{
	int64_t deadline = fx_now_ms() + WAIT_MS;
	cw_component_status_t status;
	while ((status = fx_status(fx)).last_error[0] == '\0') {
		if (fx_now_ms() > deadline)
			fail_msg("the source reported no error");
		fx_pause_ms(20);
	}
	fprintf(stderr, "source error: %s\n", status.last_error);
	return status;
}

static inline void fx_finish(fx_t *fx)
{
	fx_stop(fx);
	cw_config_free(fx->config);
	cw_metrics_free(fx->metrics);
	cw_hub_close(fx->hub);
	PQfinish(fx->conn);
	cw_testpg_stop(&fx->srv);
}

/* ---- the hub's state, replayed like a target applies it ------------------ */

/* doc_id -> {"data": {...}, "version": n}, from the oplog of entity. Owned json_t. */
static inline json_t *fx_replay(fx_t *fx, const char *entity)
{
	const char *params[] = {entity};
	PGresult *res = PQexecParams(fx->conn,
		"SELECT op, doc_id, data::text, version FROM cachewarp.oplog "
		"WHERE entity = $1 ORDER BY id", 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		fail_msg("replay: %s", PQerrorMessage(fx->conn));
	json_t *rows = json_object();
	for (int i = 0; i < PQntuples(res); i++) {
		const char *op = PQgetvalue(res, i, 0);
		const char *doc_id = PQgetvalue(res, i, 1);
		long long version = strtoll(PQgetvalue(res, i, 3), NULL, 10);
		if (strcmp(op, "sweep") == 0) {
			const char *key;
			json_t *row;
			void *tmp;
			json_object_foreach_safe(rows, tmp, key, row) {
				if (json_integer_value(json_object_get(row, "version")) < version)
					json_object_del(rows, key);
			}
		} else if (strcmp(op, "delete") == 0) {
			json_object_del(rows, doc_id);
		} else {
			json_error_t jerr;
			json_t *data = json_loads(PQgetvalue(res, i, 2), JSON_DECODE_INT_AS_REAL, &jerr);
			assert_non_null(data);
			json_t *row = json_object_get(rows, doc_id);
			if (row == NULL) {
				row = json_pack("{s:o,s:I}", "data", json_object(), "version",
				                (json_int_t)version);
				json_object_set_new(rows, doc_id, row);
			}
			json_object_update(json_object_get(row, "data"), data);
			json_object_set_new(row, "version", json_integer(version));
			json_decref(data);
		}
	}
	PQclear(res);
	return rows;
}

/* doc_id -> row data as the table has it now: query must return (doc_id, json object text). */
static inline json_t *fx_table(fx_t *fx, const char *query)
{
	PGresult *res = PQexec(fx->conn, query);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", query, PQerrorMessage(fx->conn));
	json_t *rows = json_object();
	for (int i = 0; i < PQntuples(res); i++) {
		json_error_t jerr;
		json_t *data = json_loads(PQgetvalue(res, i, 1), JSON_DECODE_INT_AS_REAL, &jerr);
		assert_non_null(data);
		json_object_set_new(rows, PQgetvalue(res, i, 0), data);
	}
	PQclear(res);
	return rows;
}

/* True when every row of the table equals the replayed hub row and nothing else is there. */
static inline bool fx_same(json_t *hub_rows, json_t *table_rows, bool verbose)
{
	bool same = json_object_size(hub_rows) == json_object_size(table_rows);
	const char *key;
	json_t *want;
	json_object_foreach(table_rows, key, want) {
		json_t *got = json_object_get(json_object_get(hub_rows, key), "data");
		if (got == NULL || !json_equal(got, want)) {
			if (verbose) {
				char *a = got ? json_dumps(got, JSON_SORT_KEYS) : NULL;
				char *b = json_dumps(want, JSON_SORT_KEYS);
				fprintf(stderr, "row %s: hub %s, table %s\n", key, a ? a : "(none)", b);
				free(a);
				free(b);
			}
			same = false;
		}
	}
	if (verbose && json_object_size(hub_rows) != json_object_size(table_rows))
		fprintf(stderr, "hub has %zu rows, table %zu\n", json_object_size(hub_rows),
		        json_object_size(table_rows));
	return same;
}

/* Waits (with a deadline) until the hub's replayed entity equals the table query. */
static inline void fx_wait_converged(fx_t *fx, const char *entity, const char *query)
{
	int64_t deadline = fx_now_ms() + WAIT_MS;
	for (;;) {
		json_t *hub_rows = fx_replay(fx, entity);
		json_t *table_rows = fx_table(fx, query);
		bool last = fx_now_ms() > deadline;
		bool same = fx_same(hub_rows, table_rows, last);
		json_decref(hub_rows);
		json_decref(table_rows);
		if (same)
			return;
		if (last)
			fail_msg("entity \"%s\" did not converge to its table", entity);
		fx_pause_ms(100);
	}
}

/* Waits until sql returns a value of at least want. */
static inline void fx_wait_int(fx_t *fx, const char *sql, long long want)
{
	int64_t deadline = fx_now_ms() + WAIT_MS;
	long long got;
	while ((got = fx_int(fx, sql)) < want) {
		if (fx_now_ms() > deadline)
			fail_msg("%s: %lld, waited for %lld", sql, got, want);
		fx_pause_ms(50);
	}
}

#endif
