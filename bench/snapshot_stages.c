/* This file contains the snapshot's per-stage figures declared in snapshot_stages.h. */
#define _XOPEN_SOURCE 700
#include "snapshot_stages.h"

#include "benchlib.h"
#include "core/buf.h"
#include "core/mem.h"
#include "http_client.h"

#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WORKLOAD "snapshot stages"
/*
 * The page query of the apply loop (src/hub/oplog_reader.c) for a hub of one
 * entity: a range scan of (entity, id). Without --entity the daemon first
 * asks which entities have changes after the page's start, one index descent
 * each (not in this reference).
 */
#define PAGE_QUERY "SELECT id, op, entity, doc_id, " \
	"(extract(epoch FROM created_at) * 1000000)::bigint, data, version, source_pos " \
	"FROM cachewarp.oplog WHERE entity = $3 AND id > $1::int8 ORDER BY id LIMIT $2::int8"

/* The port the daemon's API logged ("msg":"listening", "port":"N"), or 0. */
static unsigned api_port(const char *log_path)
{
	FILE *f = fopen(log_path, "r");
	char line[4096];
	unsigned port = 0;
	while (f != NULL && port == 0 && fgets(line, sizeof line, f) != NULL) {
		const char *at = strstr(line, "\"port\":\"");
		if (strstr(line, "\"listening\"") != NULL && at != NULL)
			port = (unsigned)strtoul(at + 8, NULL, 10);
	}
	if (f != NULL)
		fclose(f);
	return port;
}

/* The sum of every series of family name (its labels ignored) in a metrics text; -1 if none. */
static double metric_sum(const char *text, const char *name)
{
	double sum = -1;
	size_t len = strlen(name);
	for (const char *line = text; line != NULL && *line; ) {
		if (strncmp(line, name, len) == 0 && (line[len] == '{' || line[len] == ' ')) {
			const char *value = strchr(line + len, ' ');
			if (value != NULL)
				sum = (sum < 0 ? 0 : sum) + strtod(value + 1, NULL);
		}
		line = strchr(line, '\n');
		if (line != NULL)
			line++;
	}
	return sum;
}

/* (a) The source's COPY of the table to the client, discarded; seconds or -1. */
static double ref_source_copy(const cw_bench_stages_t *st)
{
	PGconn *conn = PQconnectdb(st->source_url);
	char *sql = cw_xasprintf("COPY (SELECT * FROM public.%s) TO STDOUT", st->table);
	double t0 = cw_bench_now_s();
	double s = PQstatus(conn) == CONNECTION_OK && cw_bench_copy_out(conn, sql, NULL) == 0
	         ? cw_bench_now_s() - t0 : -1;
	free(sql);
	PQfinish(conn);
	return s;
}

/*
 * (b) The oplog rows cachewarp wrote, COPY'd into a fresh copy of the oplog
 * table in transactions of st->batch rows, as the capture commits them
 * (cw_bench_hub_copy); seconds or -1.
 */
static double ref_hub_copy(const cw_bench_stages_t *st)
{
	char *where = cw_xasprintf("entity = '%s' AND op = 'upsert'", st->table);
	long rows = 0;
	double s = cw_bench_hub_copy(st->hub_url, where, st->batch, st->dir, &rows);
	free(where);
	return s;
}

/* (c) Every page of the oplog through the apply loop's query, not decoded; seconds or -1. */
static double ref_hub_read(const cw_bench_stages_t *st)
{
	PGconn *conn = PQconnectdb(st->hub_url);
	char after[24] = "0", limit[24];
	snprintf(limit, sizeof limit, "%d", st->batch);
	double t0 = cw_bench_now_s(), s = -1;
	for (int n = st->batch; n == st->batch && PQstatus(conn) == CONNECTION_OK; ) {
		const char *params[] = {after, limit, st->table};
		PGresult *res = PQexecParams(conn, PAGE_QUERY, 3, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			fprintf(stderr, "bench: the page query: %s", PQerrorMessage(conn));
			PQclear(res);
			goto done;
		}
		n = PQntuples(res);
		if (n > 0)
			snprintf(after, sizeof after, "%s", PQgetvalue(res, n - 1, 0));
		PQclear(res);
	}
	s = cw_bench_now_s() - t0;
done:
	PQfinish(conn);
	return s;
}

/* Copies the cache's table definition into fresh, with the cache's pragmas; 0 or -1. */
static int sqlite_layout(sqlite3 *cache, sqlite3 *fresh, const char *table)
{
	sqlite3_stmt *stmt = NULL;
	int rc = sqlite3_exec(fresh, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
	                      "PRAGMA cache_size=-32768", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(cache, "SELECT sql FROM sqlite_master WHERE tbl_name = ?1 "
		                        "AND sql IS NOT NULL ORDER BY type DESC", -1, &stmt, NULL);
	if (rc == SQLITE_OK)
		sqlite3_bind_text(stmt, 1, table, -1, SQLITE_STATIC);
	while (rc == SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW)
		rc = sqlite3_exec(fresh, (const char *)sqlite3_column_text(stmt, 0), NULL, NULL, NULL);
	sqlite3_finalize(stmt);
	if (rc != SQLITE_OK)
		fprintf(stderr, "bench: the reference cache: %s\n", sqlite3_errmsg(fresh));
	return rc == SQLITE_OK ? 0 : -1;
}

/*
 * (d) The cache's rows, read st->batch at a time (not timed), INSERTed into
 * a fresh file of the same layout, one transaction per batch; seconds or -1.
 */
static double ref_sqlite_insert(const cw_bench_stages_t *st)
{
	char *path = cw_xasprintf("%s/reference.sqlite", st->dir);
	sqlite3 *cache = NULL, *fresh = NULL;
	sqlite3_stmt *read = NULL, *insert = NULL;
	sqlite3_value **values = NULL;
	cw_buf_t sql = CW_BUF_INIT;
	sqlite3_int64 last = 0;
	double s = -1, timed = 0;
	int ncols = 0;
	unlink(path);
	if (sqlite3_open_v2(st->cache_path, &cache, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_open(path, &fresh) != SQLITE_OK || sqlite_layout(cache, fresh, st->table) != 0)
		goto done;
	cw_buf_appendf(&sql, "SELECT rowid, * FROM \"%s\" WHERE rowid > ?1 ORDER BY rowid "
	               "LIMIT %d", st->table, st->batch);
	if (sqlite3_prepare_v2(cache, cw_buf_cstr(&sql), -1, &read, NULL) != SQLITE_OK)
		goto done;
	ncols = sqlite3_column_count(read) - 1;
	cw_buf_reset(&sql);
	cw_buf_appendf(&sql, "INSERT INTO \"%s\" VALUES (", st->table);
	for (int c = 0; c < ncols; c++)
		cw_buf_append_str(&sql, c ? ", ?" : "?");
	cw_buf_append_str(&sql, ")");
	if (sqlite3_prepare_v2(fresh, cw_buf_cstr(&sql), -1, &insert, NULL) != SQLITE_OK)
		goto done;
	values = cw_xcalloc((size_t)st->batch * (size_t)ncols, sizeof *values);
	for (int n = st->batch; n == st->batch; ) {
		sqlite3_bind_int64(read, 1, last);
		for (n = 0; sqlite3_step(read) == SQLITE_ROW; n++) {
			last = sqlite3_column_int64(read, 0);
			for (int c = 0; c < ncols; c++)
				values[n * ncols + c] = sqlite3_value_dup(sqlite3_column_value(read, c + 1));
		}
		sqlite3_reset(read);
		double t0 = cw_bench_now_s();
		sqlite3_exec(fresh, "BEGIN", NULL, NULL, NULL);
		for (int r = 0; r < n; r++) {
			for (int c = 0; c < ncols; c++)
				sqlite3_bind_value(insert, c + 1, values[r * ncols + c]);
			if (sqlite3_step(insert) != SQLITE_DONE) {
				fprintf(stderr, "bench: the reference insert: %s\n", sqlite3_errmsg(fresh));
				goto done;
			}
			sqlite3_reset(insert);
		}
		if (sqlite3_exec(fresh, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
			goto done;
		timed += cw_bench_now_s() - t0;
		for (int i = 0; i < n * ncols; i++)
			sqlite3_value_free(values[i]);
	}
	s = timed;
done:
	free(values);
	cw_buf_free(&sql);
	sqlite3_finalize(read);
	sqlite3_finalize(insert);
	sqlite3_close(cache);
	sqlite3_close(fresh);
	unlink(path);
	char *wal = cw_xasprintf("%s-wal", path), *shm = cw_xasprintf("%s-shm", path);
	unlink(wal);
	unlink(shm);
	free(wal);
	free(shm);
	free(path);
	return s;
}

/* One stage: cachewarp's seconds and the reference's, as µs per row figures. */
static void stage(const cw_bench_stages_t *st, const char *name, double cachewarp_s,
                  double reference_s, const char *reference_name)
{
	char ref_figure[128], cw_name[96];
	snprintf(ref_figure, sizeof ref_figure, WORKLOAD "/%s", reference_name);
	snprintf(cw_name, sizeof cw_name, "%s (cachewarp)", name);
	double per = 1e6 / (double)st->rows;
	if (reference_s >= 0)
		cw_bench_figure(WORKLOAD, reference_name, "µs/row", reference_s * per, NULL);
	if (cachewarp_s >= 0)
		cw_bench_figure(WORKLOAD, cw_name, "µs/row", cachewarp_s * per,
		                reference_s >= 0 ? ref_figure : NULL);
	printf("| %s | %.2f µs/row (%.2f s) | %s: %.2f µs/row (%.2f s) | %.2f |\n", name,
	       cachewarp_s * per, cachewarp_s, reference_name, reference_s * per, reference_s,
	       reference_s > 0 ? cachewarp_s / reference_s : 0);
}

void cw_bench_snapshot_stages(const cw_bench_stages_t *st)
{
	double read_s = -1, write_s = -1, apply_read_s = -1, apply_write_s = -1;
	unsigned port = api_port(st->log_path);
	if (port != 0) {
		cw_http_reply_t reply = {0};
		cw_http((uint16_t)port, "GET", "/metrics", NULL, NULL, &reply);
		if (reply.status == 200 && reply.body != NULL) {
			read_s = metric_sum(reply.body, "cachewarp_snapshot_read_seconds_total");
			write_s = metric_sum(reply.body, "cachewarp_capture_write_seconds_total");
			apply_read_s = metric_sum(reply.body, "cachewarp_apply_read_seconds_total");
			apply_write_s = metric_sum(reply.body, "cachewarp_apply_batch_duration_seconds_sum");
		}
		cw_http_reply_free(&reply);
	} else {
		fprintf(stderr, "bench: the daemon's log names no API port: no stage metrics\n");
	}
	double source_s = ref_source_copy(st);
	double hub_copy_s = ref_hub_copy(st);
	double hub_read_s = ref_hub_read(st);
	double sqlite_s = ref_sqlite_insert(st);
	printf("\n| stage (%ld rows) | cachewarp, in the snapshot | bare reference, alone | "
	       "ratio |\n|---|---|---|---|\n", st->rows);
	stage(st, "source read", read_s, source_s, "source COPY TO");
	stage(st, "hub write", write_s, hub_copy_s, "hub COPY of the same rows");
	stage(st, "apply read", apply_read_s, hub_read_s, "hub read-back");
	stage(st, "SQLite write", apply_write_s, sqlite_s, "bare SQLite insert");
	printf("\n");
	fflush(stdout);
}
