/* This file contains the helpers every benchmark shares, declared in benchlib.h. */
#define _XOPEN_SOURCE 700
#include "benchlib.h"

#include "core/config.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "hub/entity_store.h"
#include "hub/migrations.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef CW_BENCH_SQL_DIR
#error "CW_BENCH_SQL_DIR must name bench/sql (tests/tests.cmake defines it)"
#endif

void cw_bench_figure(const char *workload, const char *name, const char *unit, double value,
                     const char *reference)
{
	printf("figure\t%s\t%s\t%s\t%.6g\t%s\n", workload, name, unit, value,
	       reference != NULL ? reference : "-");
	fflush(stdout);
}

uint64_t cw_bench_next_random(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static int step_cmp(const void *a, const void *b)
{
	const cw_bench_step_t *x = a, *y = b;
	if (x->doc != y->doc)
		return x->doc < y->doc ? -1 : 1;
	return x->k < y->k ? -1 : x->k > y->k;
}

size_t cw_bench_last_steps(const uint64_t *docs, uint64_t first, size_t n, uint64_t step_base,
                           cw_bench_step_t *steps)
{
	for (size_t i = 0; i < n; i++)
		steps[i] = (cw_bench_step_t){docs[first + i], step_base + first + i};
	qsort(steps, n, sizeof *steps, step_cmp);
	size_t kept = 0;
	for (size_t i = 0; i < n; i++) {
		if (kept > 0 && steps[kept - 1].doc == steps[i].doc)
			kept--;
		steps[kept++] = steps[i];
	}
	return kept;
}

void cw_bench_push_upsert(cw_change_batch_t *batch, const char *entity, const char *doc_id,
                          const char *data, int64_t oplog_id, int64_t created_at_us)
{
	cw_change_t change = {.oplog_id = oplog_id, .op = CW_OP_UPSERT, .entity = cw_xstrdup(entity),
	                      .doc_id = cw_xstrdup(doc_id), .data = cw_xstrdup(data), .version = 1,
	                      .created_at_us = created_at_us};
	cw_change_batch_push(batch, &change);
}

double cw_bench_now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int64_t cw_bench_wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

long cw_bench_env_long(const char *name, long fallback, long min, long max)
{
	const char *text = getenv(name);
	if (text == NULL || text[0] == '\0')
		return fallback;
	char *end = NULL;
	long value = strtol(text, &end, 10);
	if (*end != '\0' || value < min || value > max) {
		fprintf(stderr, "bench: %s=\"%s\" is not a number from %ld to %ld, using %ld\n",
		        name, text, min, max, fallback);
		return fallback;
	}
	return value;
}

static FILE *open_proc(pid_t pid, const char *file, const char *mode)
{
	char path[64];
	if (pid == 0)
		snprintf(path, sizeof path, "/proc/self/%s", file);
	else
		snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
	return fopen(path, mode);
}

long cw_bench_peak_rss_kib(pid_t pid)
{
	FILE *status = open_proc(pid, "status", "r");
	if (status == NULL)
		return -1;
	char line[256];
	long kib = -1;
	while (fgets(line, sizeof line, status) != NULL)
		if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
			break;
	fclose(status);
	return kib;
}

void cw_bench_reset_peak_rss(pid_t pid)
{
	FILE *clear_refs = open_proc(pid, "clear_refs", "w");
	if (clear_refs == NULL)
		return;
	fputs("5", clear_refs); /* Linux 4.0 on: VmHWM restarts from the current RSS */
	fclose(clear_refs);
}

/* Fields 4 (ppid) and 14 to 17 (utime, stime, cutime, cstime) of pid's stat; false if gone. */
static bool proc_times(pid_t pid, long *ppid, unsigned long long times[4])
{
	FILE *stat = open_proc(pid, "stat", "r");
	if (stat == NULL)
		return false;
	char line[1024];
	bool ok = fgets(line, sizeof line, stat) != NULL;
	fclose(stat);
	/* counted after the parenthesised command name, which may hold spaces */
	char *p = ok ? strrchr(line, ')') : NULL;
	return p != NULL && sscanf(p + 2, "%*c %ld %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu "
	                                  "%llu %llu", ppid, &times[0], &times[1], &times[2],
	                           &times[3]) == 5;
}

double cw_bench_cpu_s(pid_t pid)
{
	long ppid;
	unsigned long long times[4];
	if (!proc_times(pid, &ppid, times))
		return -1;
	return (double)(times[0] + times[1]) / (double)sysconf(_SC_CLK_TCK);
}

double cw_bench_cluster_cpu_s(const char *data_dir)
{
	char path[512];
	if (data_dir[0] == '\0')
		return -1;
	snprintf(path, sizeof path, "%s/postmaster.pid", data_dir);
	FILE *pidfile = fopen(path, "r");
	long postmaster = 0;
	if (pidfile == NULL)
		return -1;
	bool ok = fscanf(pidfile, "%ld", &postmaster) == 1;
	fclose(pidfile);
	long ppid;
	unsigned long long times[4];
	if (!ok || !proc_times((pid_t)postmaster, &ppid, times))
		return -1;
	unsigned long long ticks = times[0] + times[1] + times[2] + times[3];
	DIR *proc = opendir("/proc");
	struct dirent *entry;
	while (proc != NULL && (entry = readdir(proc)) != NULL) {
		long pid = strtol(entry->d_name, NULL, 10);
		if (pid > 0 && proc_times((pid_t)pid, &ppid, times) && ppid == postmaster)
			ticks += times[0] + times[1];
	}
	if (proc != NULL)
		closedir(proc);
	return (double)ticks / (double)sysconf(_SC_CLK_TCK);
}

int cw_bench_exec(PGconn *conn, const char *sql, const char *what)
{
	PGresult *res = PQexec(conn, sql);
	ExecStatusType status = PQresultStatus(res);
	int rc = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK ? 0 : -1;
	if (rc != 0)
		fprintf(stderr, "bench: could not %s: %s", what, PQerrorMessage(conn));
	PQclear(res);
	return rc;
}

void cw_bench_checkpoint(PGconn *conn)
{
	if (cw_bench_exec(conn, "CHECKPOINT", "write out the loader's pages (CHECKPOINT)") != 0)
		fprintf(stderr, "bench: the timed phase runs with the loader's pages still dirty\n");
}

char *cw_bench_query_value(PGconn *conn, const char *sql)
{
	PGresult *res = PQexec(conn, sql);
	char *value = NULL;
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		value = cw_xstrdup(PQgetvalue(res, 0, 0));
	else
		fprintf(stderr, "bench: query \"%s\" failed: %s", sql, PQerrorMessage(conn));
	PQclear(res);
	return value;
}

/* The contents of CW_BENCH_SQL_DIR/name (owned), or NULL with a message. */
static char *read_sql(const char *name)
{
	char *path = cw_xasprintf("%s/%s", CW_BENCH_SQL_DIR, name);
	char *text = NULL;
	FILE *file = fopen(path, "r");
	if (file == NULL || fseek(file, 0, SEEK_END) != 0)
		goto out;
	long size = ftell(file);
	if (size < 0 || fseek(file, 0, SEEK_SET) != 0)
		goto out;
	text = cw_xmalloc((size_t)size + 1);
	if (fread(text, 1, (size_t)size, file) != (size_t)size) {
		free(text);
		text = NULL;
		goto out;
	}
	text[size] = '\0';
out:
	if (text == NULL)
		fprintf(stderr, "bench: could not read \"%s\"\n", path);
	if (file != NULL)
		fclose(file);
	free(path);
	return text;
}

int cw_bench_load(PGconn *conn, const char *sql_file, long rows)
{
	char *sql = read_sql(sql_file);
	if (sql == NULL)
		return -1;
	char set[64];
	snprintf(set, sizeof set, "SET cw_bench.rows = '%ld'", rows);
	int rc = cw_bench_exec(conn, set, "set cw_bench.rows");
	if (rc == 0)
		rc = cw_bench_exec(conn, sql, sql_file);
	free(sql);
	return rc;
}

int cw_bench_wait_live(PGconn *hub, const char *entity, double timeout_s)
{
	char *sql = cw_xasprintf("SELECT count(*) FROM cachewarp.entities "
	                         "WHERE name = '%s' AND status = 'live'", entity);
	int rc = -1;
	for (double t0 = cw_bench_now_s(); rc != 0 && cw_bench_now_s() - t0 < timeout_s;) {
		char *live = cw_bench_query_value(hub, sql);
		if (live != NULL && strcmp(live, "1") == 0)
			rc = 0;
		else
			nanosleep(&(struct timespec){0, 20000000L}, NULL);
		free(live);
	}
	if (rc != 0)
		fprintf(stderr, "bench: the entity \"%s\" did not become live within %.0f s\n", entity,
		        timeout_s);
	free(sql);
	return rc;
}

static void *component_main(void *arg)
{
	cw_bench_component_t *c = arg;
	while (!cw_cancel_is_set(c->cancel)) {
		cw_err_t err = {0};
		if (c->ops->run(c->self, c->cancel, &err) != CW_ECANCELED) {
			fprintf(stderr, "bench: %s: %s\n", c->ops->type, err.message);
			cw_cancel_wait_ms(c->cancel, 200);
		}
	}
	return NULL;
}

int cw_bench_component_resume(cw_bench_component_t *c)
{
	if (c->cancel != NULL)
		return 0;
	c->cancel = cw_cancel_new();
	if (pthread_create(&c->thread, NULL, component_main, c) != 0) {
		fprintf(stderr, "bench: could not start the %s thread\n", c->ops->type);
		cw_cancel_free(c->cancel);
		c->cancel = NULL;
		return -1;
	}
	return 0;
}

int cw_bench_component_start(cw_bench_component_t *c)
{
	cw_err_t err = {0};
	c->cancel = NULL;
	c->self = c->ops->open(&c->ctx, &err);
	if (c->self == NULL) {
		fprintf(stderr, "bench: could not open the %s: %s\n", c->ops->type, err.message);
		return -1;
	}
	if (cw_bench_component_resume(c) != 0) {
		c->ops->close(c->self);
		c->self = NULL;
		return -1;
	}
	return 0;
}

void cw_bench_component_pause(cw_bench_component_t *c)
{
	if (c->cancel == NULL)
		return;
	cw_cancel_fire(c->cancel);
	pthread_join(c->thread, NULL);
	cw_cancel_free(c->cancel);
	c->cancel = NULL;
}

void cw_bench_component_stop(cw_bench_component_t *c)
{
	if (c->self == NULL)
		return;
	cw_bench_component_pause(c);
	c->ops->close(c->self);
	c->self = NULL;
}

int64_t cw_bench_component_position(cw_bench_component_t *c)
{
	cw_component_status_t status;
	c->ops->status(c->self, &status);
	return strtoll(status.position, NULL, 10);
}

double cw_bench_component_wait_position(cw_bench_component_t *c, int64_t head)
{
	double start = cw_bench_now_s();
	while (cw_bench_component_position(c) < head)
		usleep(2000);
	return cw_bench_now_s() - start;
}

double cw_bench_captured(const cw_bench_component_t *c, const char *series)
{
	return cw_metrics_value(c->ctx.metrics, "cachewarp_changes_captured_total", series);
}

int cw_bench_capture_run(cw_bench_component_t *c, const char *series, double want,
                         const char *what, double timeout_s, cw_bench_run_t *run)
{
	double before = cw_bench_captured(c, series);
	cw_bench_reset_peak_rss(0);
	double cpu0 = cw_bench_cpu_s(0);
	double t0 = cw_bench_now_s();
	if (cw_bench_component_start(c) != 0)
		return -1;
	while (cw_bench_captured(c, series) - before < want) {
		if (cw_bench_now_s() - t0 > timeout_s) {
			fprintf(stderr, "bench: %.0f of %.0f %s after %.0f s\n", cw_bench_captured(c, series) - before,
			        want, what, timeout_s);
			return -1;
		}
		usleep(2000);
	}
	run->seconds = cw_bench_now_s() - t0;
	run->cpu_s = cw_bench_cpu_s(0) - cpu0;
	run->peak_rss_kib = cw_bench_peak_rss_kib(0);
	return 0;
}

void cw_bench_figure_rows(const char *workload, long rows, const cw_bench_run_t *run,
                          const char *rows_reference, const char *rss_reference)
{
	cw_bench_figure(workload, "rows/s", "rows/s", (double)rows / run->seconds, rows_reference);
	cw_bench_figure(workload, "CPU per 1M rows", "s", run->cpu_s * 1e6 / (double)rows, NULL);
	cw_bench_figure(workload, "peak RSS", "MiB", (double)run->peak_rss_kib / 1024.0, rss_reference);
}

void cw_bench_figure_target(const char *kind, uint64_t changes, double ref_insert_s,
                            double ref_update_s, double insert_s, double update_s)
{
	char reference[64], workload[64], upserts[96], updates[96];
	snprintf(reference, sizeof reference, "%s target reference", kind);
	snprintf(workload, sizeof workload, "hub to %s target", kind);
	snprintf(upserts, sizeof upserts, "%s/upserts", reference);
	snprintf(updates, sizeof updates, "%s/random updates", reference);
	cw_bench_figure(reference, "upserts", "changes/s", (double)changes / ref_insert_s, NULL);
	cw_bench_figure(reference, "random updates", "changes/s", (double)changes / ref_update_s,
	                NULL);
	cw_bench_figure(workload, "upserts", "changes/s", (double)changes / insert_s, upserts);
	cw_bench_figure(workload, "random updates", "changes/s", (double)changes / update_s, updates);
}

cw_config_t *cw_bench_target_init(cw_bench_component_t *target, cw_target_type_t type,
                                  const char *yaml)
{
	cw_config_t *config = NULL;
	cw_err_t err = {0};
	if (cw_config_load_buffer("bench.yaml", yaml, strlen(yaml), NULL, &config, &err) != 0) {
		fprintf(stderr, "config: %s\n", err.message);
		return NULL;
	}
	*target = (cw_bench_component_t){
		.ops = cw_target_ops_for(type),
		.ctx = {config, "bench", NULL, 0, cw_metrics_new(), NULL},
	};
	return config;
}

cw_hub_t *cw_bench_scratch_hub(cw_testsrv_t *pg)
{
	if (cw_testpg_start(pg) != 0)
		return NULL;
	cw_err_t err = {0};
	cw_hub_t *hub = cw_hub_connect(pg->url, &err);
	if (hub == NULL || cw_hub_migrate(hub, NULL, &err) != 0) {
		fprintf(stderr, "bench: %s\n", err.message);
		cw_hub_close(hub);
		cw_testpg_stop(pg);
		return NULL;
	}
	return hub;
}

PGconn *cw_bench_pg_source(cw_testsrv_t *srv, const char **url)
{
	*url = getenv("CW_BENCH_PG_URL");
	if (*url == NULL || (*url)[0] == '\0') {
		if (cw_testpg_start(srv) != 0)
			return NULL;
		*url = srv->url;
	}
	PGconn *conn = PQconnectdb(*url);
	if (PQstatus(conn) != CONNECTION_OK) {
		fprintf(stderr, "bench: %s", PQerrorMessage(conn));
		PQfinish(conn);
		cw_testpg_stop(srv);
		return NULL;
	}
	return conn;
}

cw_hub_t *cw_bench_hub_setup(const char *hub_url, const char *yaml, cw_config_t **config)
{
	cw_err_t err = {0};
	cw_hub_t *hub = NULL;
	*config = NULL;
	if (cw_config_load_buffer("bench.yaml", yaml, strlen(yaml), NULL, config, &err) != 0 ||
	    (hub = cw_hub_connect(hub_url, &err)) == NULL || cw_hub_migrate(hub, NULL, &err) != 0)
		goto fail;
	for (size_t i = 0; i < (*config)->nentities; i++)
		if (cw_entity_store_upsert(hub, &(*config)->entities[i], NULL, &err) != 0)
			goto fail;
	return hub;
fail:
	fprintf(stderr, "bench: %s\n", err.message);
	cw_hub_close(hub);
	return NULL;
}

int cw_bench_entity_register(cw_hub_t *hub, cw_column_t *columns, size_t ncolumns)
{
	cw_entity_t entity = {.name = (char *)"bench", .source = (char *)"src",
	                      .collection = (char *)"bench", .columns = columns,
	                      .ncolumns = ncolumns, .status = CW_ENTITY_LIVE, .version = 1,
	                      .mode = CW_ENTITY_MODE_STREAM, .origin = CW_ENTITY_ORIGIN_UNKNOWN};
	cw_err_t err = {0};
	if (cw_entity_store_upsert(hub, &entity, NULL, &err) != 0) {
		fprintf(stderr, "bench: %s\n", err.message);
		return -1;
	}
	return 0;
}

int cw_bench_hub_open(cw_bench_hub_t *hub, const char *source_url)
{
	memset(hub, 0, sizeof *hub);
	const char *where = getenv("CW_BENCH_HUB");
	if (where == NULL || strcmp(where, "same") != 0) {
		if (cw_testpg_start(&hub->cluster) != 0)
			return -1;
		hub->url = cw_xstrdup(hub->cluster.url);
		printf("hub: a PostgreSQL cluster of its own (CW_BENCH_HUB=same: the source's)\n");
		return 0;
	}
	PGconn *conn = PQconnectdb(source_url);
	snprintf(hub->database, sizeof hub->database, "cw_bench_hub_%ld", (long)getpid());
	char *create = cw_xasprintf("CREATE DATABASE %s", hub->database);
	int rc = PQstatus(conn) == CONNECTION_OK ? cw_bench_exec(conn, create, "create the hub database")
	                                         : -1;
	if (PQstatus(conn) != CONNECTION_OK)
		fprintf(stderr, "bench: %s", PQerrorMessage(conn));
	free(create);
	PQfinish(conn);
	if (rc != 0)
		return -1;
	hub->source_url = cw_xstrdup(source_url);
	hub->url = cw_xasprintf("%.*s%s", (int)(strrchr(source_url, '/') + 1 - source_url), source_url,
	                        hub->database);
	printf("hub: database %s of the source's cluster (CW_BENCH_HUB=same)\n", hub->database);
	return 0;
}

void cw_bench_hub_close(cw_bench_hub_t *hub)
{
	if (hub->source_url != NULL) {
		PGconn *conn = PQconnectdb(hub->source_url);
		char *drop = cw_xasprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", hub->database);
		if (PQstatus(conn) == CONNECTION_OK)
			cw_bench_exec(conn, drop, "drop the hub database");
		free(drop);
		PQfinish(conn);
	}
	cw_testpg_stop(&hub->cluster);
	free(hub->source_url);
	free(hub->url);
	memset(hub, 0, sizeof *hub);
}

/* Collects the results that end a COPY on conn: 0, or -1 with sql's error printed. */
static int copy_end(PGconn *conn, const char *sql)
{
	int rc = 0;
	PGresult *res;
	while ((res = PQgetResult(conn)) != NULL) {
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			fprintf(stderr, "bench: %s: %s", sql, PQerrorMessage(conn));
			rc = -1;
		}
		PQclear(res);
	}
	return rc;
}

int cw_bench_copy_out(PGconn *conn, const char *sql, FILE *out)
{
	PGresult *res = PQexec(conn, sql);
	if (PQresultStatus(res) != PGRES_COPY_OUT) {
		fprintf(stderr, "bench: %.60s: %s", sql, PQerrorMessage(conn));
		PQclear(res);
		return -1;
	}
	PQclear(res);
	char *buf = NULL;
	int len;
	while ((len = PQgetCopyData(conn, &buf, 0)) > 0) {
		if (out != NULL)
			fwrite(buf, 1, (size_t)len, out);
		PQfreemem(buf);
	}
	return copy_end(conn, sql);
}

/* COPYs batch lines of in (at most) into table; the lines sent, or -1. */
static long copy_in_batch(PGconn *conn, FILE *in, const char *copy_sql, int batch,
                          char **line, size_t *cap)
{
	PGresult *res = PQexec(conn, copy_sql);
	if (PQresultStatus(res) != PGRES_COPY_IN) {
		fprintf(stderr, "bench: %s: %s", copy_sql, PQerrorMessage(conn));
		PQclear(res);
		return -1;
	}
	PQclear(res);
	long sent = 0;
	ssize_t len;
	while (sent < batch && (len = getline(line, cap, in)) > 0) {
		PQputCopyData(conn, *line, (int)len);
		sent++;
	}
	PQputCopyEnd(conn, NULL);
	return copy_end(conn, copy_sql) == 0 ? sent : -1;
}

#define OPLOG_COLUMNS "op, entity, doc_id, created_at, data, version, source_pos"

double cw_bench_hub_copy(const char *hub_url, const char *where, int batch, const char *dir,
                         long *rows)
{
	PGconn *conn = PQconnectdb(hub_url);
	char *path = cw_xasprintf("%s/oplog.copy", dir);
	char *out_sql = cw_xasprintf("COPY (SELECT " OPLOG_COLUMNS " FROM cachewarp.oplog "
	                             "WHERE %s ORDER BY id) TO STDOUT", where);
	const char *copy_sql = "COPY cw_bench_ref.oplog (" OPLOG_COLUMNS ") FROM STDIN";
	double s = -1;
	char *line = NULL;
	size_t cap = 0;
	*rows = 0;
	FILE *f = fopen(path, "w+");
	if (PQstatus(conn) != CONNECTION_OK || f == NULL || cw_bench_copy_out(conn, out_sql, f) != 0 ||
	    cw_bench_exec(conn, "DROP SCHEMA IF EXISTS cw_bench_ref CASCADE; "
	                  "CREATE SCHEMA cw_bench_ref; CREATE TABLE cw_bench_ref.oplog "
	                  "(LIKE cachewarp.oplog INCLUDING ALL)", "the reference oplog") != 0)
		goto done;
	rewind(f);
	double t0 = cw_bench_now_s();
	long sent;
	do {
		if (cw_bench_exec(conn, "BEGIN", "begin") != 0)
			goto done;
		sent = copy_in_batch(conn, f, copy_sql, batch, &line, &cap);
		if (sent < 0 || cw_bench_exec(conn, "COMMIT", "commit") != 0)
			goto done;
		*rows += sent;
	} while (sent == batch);
	s = cw_bench_now_s() - t0;
done:
	cw_bench_exec(conn, "DROP SCHEMA IF EXISTS cw_bench_ref CASCADE", "drop the reference");
	free(line);
	if (f != NULL)
		fclose(f);
	unlink(path);
	free(out_sql);
	free(path);
	PQfinish(conn);
	return s;
}
