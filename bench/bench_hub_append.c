/*
 * Benchmark: oplog writer throughput. Appends 200k ~200-byte upserts to a
 * fresh hub in batches of 10k with cw_oplog_append (COPY + checkpoint in one
 * transaction), then the same rows with plain multi-row INSERTs of 1000
 * rows into an identical scratch table, for comparison. Then a lever of the
 * hub's design, measured on bare tables: the same rows COPYed into a copy of
 * the oplog whose data column is jsonb (as before hub schema version 8) and
 * into one whose data is text (as since: no input parsing), and read back in pages of 1,000 from each (no
 * output conversion for text). Last, what each index of the oplog costs the
 * append: the same rows COPYed into copies of the oplog with the indexes it
 * had until hub schema version 10 ((entity, id) and BRIN (created_at)), with
 * the primary key on id it had until version 9 as well, with (entity, id)
 * only (its index since version 10) and with none,
 * the hub backend's CPU of each. Prints figures; asserts nothing. Starts its own
 * throwaway PostgreSQL 15 cluster.
 */
#include "core/buf.h"
#include "core/change.h"
#include "core/entity.h"
#include "benchlib.h"
#include "core/mem.h"
#include "hub/entity_store.h"
#include "hub/hub.h"
#include "hub/oplog_writer.h"
#include "testsrv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ROWS 200000
#define BATCH 10000
#define INSERT_ROWS 1000

static char *row_data(int i)
{
	return cw_xasprintf("{\"name\":\"customer %d\",\"email\":\"customer%d@example.com\","
	                    "\"balance\":%d.25,\"tags\":[\"tier%d\",\"region-eu\"],"
	                    "\"note\":\"lorem ipsum dolor sit amet consectetur adipiscing\"}",
	                    i, i, i * 3, i % 5);
}

static int bench_copy(cw_hub_t *hub)
{
	cw_oplog_writer_t *writer = cw_oplog_writer_new(hub);
	cw_err_t err = {0};
	pid_t backend = PQbackendPID(cw_hub_pgconn(hub));
	double backend_cpu = cw_bench_cpu_s(backend), own_cpu = cw_bench_cpu_s(0);
	double started = cw_bench_now_s();
	for (int base = 0; base < ROWS; base += BATCH) {
		cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
		for (int i = base; i < base + BATCH; i++) {
			cw_change_t change = {0, CW_OP_UPSERT, cw_xstrdup("customers"),
			                      cw_xasprintf("%d", i), row_data(i), 1,
			                      cw_xasprintf("0/%X", i), 1700000000000000LL + i};
			cw_change_batch_push(&batch, &change);
		}
		char checkpoint[64];
		snprintf(checkpoint, sizeof checkpoint, "\"0/%X\"", base + BATCH);
		int rc = cw_oplog_append(writer, &batch, "bench_lsn", checkpoint, NULL, &err);
		cw_change_batch_free(&batch);
		if (rc != 0) {
			fprintf(stderr, "bench: %s\n", err.message);
			cw_oplog_writer_free(writer);
			return -1;
		}
	}
	double elapsed = cw_bench_now_s() - started;
	backend_cpu = cw_bench_cpu_s(backend) - backend_cpu;
	own_cpu = cw_bench_cpu_s(0) - own_cpu;
	printf("oplog append (COPY, %d-row batches + checkpoint): %d rows in %.2fs = %.0f rows/s; "
	       "CPU %.2f s in the hub's backend, %.2f s in this process\n",
	       BATCH, ROWS, elapsed, ROWS / elapsed, backend_cpu, own_cpu);
	cw_bench_figure("hub append (COPY)", "rows/s", "rows/s", ROWS / elapsed,
	                "hub append (multi-row INSERT)/rows/s");
	/* CPU time depends far less on what else runs on the machine than wall time does. */
	cw_bench_figure("hub append (COPY)", "hub backend CPU per 1M rows", "s",
	                backend_cpu * 1e6 / ROWS, NULL);
	cw_bench_figure("hub append (COPY)", "writer CPU per 1M rows", "s", own_cpu * 1e6 / ROWS,
	                NULL);
	cw_oplog_writer_free(writer);
	return 0;
}

static int bench_insert(cw_hub_t *hub)
{
	cw_err_t err = {0};
	if (cw_hub_command(hub, "CREATE TABLE cachewarp.bench_insert (LIKE cachewarp.oplog INCLUDING ALL)",
	                   0, NULL, "create scratch table", &err) != 0) {
		fprintf(stderr, "bench: %s\n", err.message);
		return -1;
	}
	double started = cw_bench_now_s();
	cw_buf_t sql = CW_BUF_INIT;
	for (int base = 0; base < ROWS; base += BATCH) {
		if (cw_hub_begin(hub, &err) != 0)
			break;
		for (int chunk = base; chunk < base + BATCH; chunk += INSERT_ROWS) {
			cw_buf_reset(&sql);
			cw_buf_append_str(&sql, "INSERT INTO cachewarp.bench_insert (op, entity, doc_id, data, "
			                        "version, source_pos, created_at) VALUES ");
			for (int i = chunk; i < chunk + INSERT_ROWS; i++) {
				char *data = row_data(i);
				cw_buf_appendf(&sql, "%s('upsert','customers','%d','%s',1,'0/%X',now())",
				               i == chunk ? "" : ",", i, data, i);
				free(data);
			}
			if (cw_hub_command(hub, cw_buf_cstr(&sql), 0, NULL, "insert", &err) != 0)
				break;
		}
		if (cw_hub_commit(hub, "commit", &err) != 0)
			break;
	}
	cw_buf_free(&sql);
	if (err.code != 0) {
		fprintf(stderr, "bench: %s\n", err.message);
		return -1;
	}
	double elapsed = cw_bench_now_s() - started;
	printf("multi-row INSERT (%d rows per statement, %d per transaction): %d rows in %.2fs = %.0f rows/s\n",
	       INSERT_ROWS, BATCH, ROWS, elapsed, ROWS / elapsed);
	cw_bench_figure("hub append (multi-row INSERT)", "rows/s", "rows/s", ROWS / elapsed, NULL);
	return 0;
}

/* COPYs the rows into table (bare: no checkpoint, no lock); the seconds, and the backend's CPU. */
static double copy_rows(cw_hub_t *hub, const char *table, double *backend_cpu)
{
	PGconn *conn = cw_hub_pgconn(hub);
	char sql[512];
	cw_buf_t copy = CW_BUF_INIT;
	pid_t backend = PQbackendPID(conn);
	double cpu_before = cw_bench_cpu_s(backend);
	double started = cw_bench_now_s();
	for (int base = 0; base < ROWS; base += BATCH) {
		cw_buf_reset(&copy);
		for (int i = base; i < base + BATCH; i++) {
			char *data = row_data(i);
			cw_buf_appendf(&copy, "upsert\tcustomers\t%d\t%s\t1\t0/%X\n", i, data, i);
			free(data);
		}
		snprintf(sql, sizeof sql, "COPY cachewarp.%s (op, entity, doc_id, data, version, "
		         "source_pos) FROM STDIN", table);
		PGresult *res = PQexec(conn, sql);
		PQclear(res);
		PQputCopyData(conn, copy.data, (int)copy.len);
		PQputCopyEnd(conn, NULL);
		while ((res = PQgetResult(conn)) != NULL) {
			if (PQresultStatus(res) != PGRES_COMMAND_OK)
				fprintf(stderr, "bench: copy: %s", PQerrorMessage(conn));
			PQclear(res);
		}
	}
	double wrote = cw_bench_now_s() - started;
	*backend_cpu = cw_bench_cpu_s(backend) - cpu_before;
	cw_buf_free(&copy);
	return wrote;
}

/* COPYs the rows into a copy of the oplog with data as type, and reads them back in pages. */
static int bench_data_column(cw_hub_t *hub, const char *table, const char *type)
{
	PGconn *conn = cw_hub_pgconn(hub);
	cw_err_t err = {0};
	char sql[512];
	snprintf(sql, sizeof sql, "CREATE TABLE cachewarp.%s (LIKE cachewarp.oplog INCLUDING DEFAULTS "
	         "INCLUDING IDENTITY INCLUDING INDEXES)", table);
	char alter[256];
	snprintf(alter, sizeof alter, "ALTER TABLE cachewarp.%s ALTER COLUMN data TYPE %s "
	         "USING data::%s", table, type, type);
	if (cw_hub_command(hub, sql, 0, NULL, "create a scratch table", &err) != 0 ||
	    cw_hub_command(hub, alter, 0, NULL, "retype a scratch table", &err) != 0) {
		fprintf(stderr, "bench: %s\n", err.message);
		return -1;
	}
	double copy_cpu = 0;
	double wrote = copy_rows(hub, table, &copy_cpu);
	/* As the daemon reads its pages: range scans, whatever the fresh table's estimates. */
	if (cw_hub_command(hub, "SET enable_seqscan = off", 0, NULL, "plan", &err) != 0 ||
	    cw_hub_command(hub, "SET enable_bitmapscan = off", 0, NULL, "plan", &err) != 0) {
		fprintf(stderr, "bench: %s\n", err.message);
		return -1;
	}
	pid_t backend = PQbackendPID(conn);
	double cpu_before = cw_bench_cpu_s(backend);
	double started = cw_bench_now_s();
	started = cw_bench_now_s();
	long long after = 0, read = 0;
	for (;;) {
		char page[256], bound[24];
		snprintf(page, sizeof page, "SELECT id, op, entity, doc_id, data, version, source_pos "
		         "FROM cachewarp.%s WHERE entity = 'customers' AND id > $1::bigint "
		         "ORDER BY id LIMIT 1000", table);
		snprintf(bound, sizeof bound, "%lld", after);
		const char *params[] = {bound};
		PGresult *res = PQexecParams(conn, page, 1, NULL, params, NULL, NULL, 0);
		int n = PQresultStatus(res) == PGRES_TUPLES_OK ? PQntuples(res) : 0;
		if (n > 0)
			after = strtoll(PQgetvalue(res, n - 1, 0), NULL, 10);
		read += n;
		PQclear(res);
		if (n == 0)
			break;
	}
	double readback = cw_bench_now_s() - started;
	double read_cpu = cw_bench_cpu_s(backend) - cpu_before;
	cw_hub_command(hub, "RESET enable_seqscan", 0, NULL, "plan", NULL);
	cw_hub_command(hub, "RESET enable_bitmapscan", 0, NULL, "plan", NULL);
	printf("data as %s: COPY %d rows in %.2fs = %.0f rows/s; read back %lld in pages of 1000 in "
	       "%.2fs = %.0f rows/s\n", type, ROWS, wrote, ROWS / wrote, read, readback,
	       (double)read / readback);
	char workload[64];
	snprintf(workload, sizeof workload, "oplog data as %s", type);
	cw_bench_figure(workload, "COPY rows/s", "rows/s", ROWS / wrote,
	                strcmp(type, "text") == 0 ? "oplog data as jsonb/COPY rows/s" : NULL);
	cw_bench_figure(workload, "read rows/s", "rows/s", (double)read / readback,
	                strcmp(type, "text") == 0 ? "oplog data as jsonb/read rows/s" : NULL);
	cw_bench_figure(workload, "COPY backend CPU per 1M rows", "s", copy_cpu * 1e6 / ROWS,
	                strcmp(type, "text") == 0 ? "oplog data as jsonb/COPY backend CPU per 1M rows"
	                                          : NULL);
	cw_bench_figure(workload, "read backend CPU per 1M rows", "s", read_cpu * 1e6 / ROWS,
	                strcmp(type, "text") == 0 ? "oplog data as jsonb/read backend CPU per 1M rows"
	                                          : NULL);
	return 0;
}

#define OPLOG_INDEXES "oplog indexes: (entity, id), BRIN (created_at)"

/*
 * COPYs the rows into a copy of the oplog (data as text) with the indexes
 * named (CREATE INDEX bodies, ";"-separated; "UNIQUE (id)" for the primary
 * key the oplog had until hub schema version 9).
 */
static int bench_indexes(cw_hub_t *hub, const char *table, const char *label,
                         const char *indexes)
{
	cw_err_t err = {0};
	cw_buf_t sql = CW_BUF_INIT;
	cw_buf_appendf(&sql, "CREATE TABLE cachewarp.%s (LIKE cachewarp.oplog INCLUDING DEFAULTS "
	               "INCLUDING IDENTITY)", table);
	for (const char *at = indexes; *at != '\0';) {
		size_t len = strcspn(at, ";");
		bool unique = strncmp(at, "UNIQUE ", 7) == 0;
		const char *body = unique ? at + 7 : at;
		cw_buf_appendf(&sql, "; CREATE %sINDEX ON cachewarp.%s %.*s", unique ? "UNIQUE " : "",
		               table, (int)(len - (size_t)(body - at)), body);
		at += len + (at[len] == ';');
		at += strspn(at, " ");
	}
	PGresult *res = PQexec(cw_hub_pgconn(hub), cw_buf_cstr(&sql));
	cw_buf_free(&sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		cw_hub_result_error(hub, res, "create a scratch table", &err);
		fprintf(stderr, "bench: %s\n", err.message);
		PQclear(res);
		return -1;
	}
	PQclear(res);
	double cpu = 0;
	double wrote = copy_rows(hub, table, &cpu);
	printf("%s: COPY %d rows in %.2fs = %.0f rows/s, hub backend CPU %.2f s\n", label, ROWS,
	       wrote, ROWS / wrote, cpu);
	bool oplog = strcmp(label, OPLOG_INDEXES) == 0;
	cw_bench_figure(label, "COPY rows/s", "rows/s", ROWS / wrote,
	                oplog ? NULL : OPLOG_INDEXES "/COPY rows/s");
	cw_bench_figure(label, "COPY backend CPU per 1M rows", "s", cpu * 1e6 / ROWS,
	                oplog ? NULL : OPLOG_INDEXES "/COPY backend CPU per 1M rows");
	return 0;
}

int main(void)
{
	cw_testsrv_t pg = {0};
	cw_hub_t *hub = cw_bench_scratch_hub(&pg);
	if (hub == NULL)
		return 1;
	int rc = 1;
	cw_err_t err = {0};
	cw_column_t columns[] = {{"name", CW_COL_TEXT, "name"}};
	cw_entity_t entity = {"customers", "app_pg", NULL, "public.customers", columns, 1,
	                      CW_ENTITY_LIVE, 1, NULL, 0,
	                      CW_ENTITY_MODE_STREAM, {0}, CW_ENTITY_ORIGIN_UNKNOWN, NULL, 0};
	if (cw_entity_store_upsert(hub, &entity, NULL, &err) != 0) {
		fprintf(stderr, "bench: %s\n", err.message);
		goto out;
	}
	if (bench_copy(hub) == 0 && bench_insert(hub) == 0 &&
	    bench_data_column(hub, "bench_jsonb", "jsonb") == 0 &&
	    bench_data_column(hub, "bench_text", "text") == 0 &&
	    bench_indexes(hub, "bench_idx_oplog", OPLOG_INDEXES,
	                  "(entity, id); USING brin (created_at)") == 0 &&
	    bench_indexes(hub, "bench_idx_v8",
	                  "oplog indexes: primary key, (entity, id), BRIN (created_at)",
	                  "UNIQUE (id); (entity, id); USING brin (created_at)") == 0 &&
	    bench_indexes(hub, "bench_idx_entity", "oplog indexes: (entity, id)",
	                  "(entity, id)") == 0 &&
	    bench_indexes(hub, "bench_idx_none", "oplog indexes: none", "") == 0)
		rc = 0;
out:
	cw_hub_close(hub);
	cw_testpg_stop(&pg);
	return rc;
}
