/*
 * Integration tests of the PostgreSQL source's restarts against a real
 * PostgreSQL 15: kill -9 of a capturing process during the snapshot and
 * during streaming (while rows keep changing), then a restart that ends with
 * the hub equal to the table (the snapshot resumed after its last committed
 * key: each scanned row once, one generation; the same for the scan of an
 * entity added while streaming); a clean restart resuming from the stored LSN
 * without a new generation; a slot dropped while stopped giving a rescan
 * with a new version and a sweep that removes rows deleted meanwhile, the
 * same for a slot invalidated by max_slot_wal_keep_size (wal_status lost); and
 * on_position_lost: fail stopping with an error that names the slot.
 */
#include "pg_source_fixture.h"
#include "pg_writer.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#define ROWS 40000
#define TABLE_QUERY "SELECT id::text, to_jsonb(t)::text FROM t"
#define ENTITY "  - {name: t, source: app, table: public.t}\n"

static const char *SETUP =
	"CREATE TABLE t (id int PRIMARY KEY, v int, note text);"
	"INSERT INTO t SELECT g, 0, repeat('y', 40) FROM generate_series(1, 40000) g;";

static fx_t FX;

static int group_setup(void **state)
{
	if (fx_start(&FX, SETUP) != 0)
		return -1;
	*state = &FX;
	return 0;
}

static int group_teardown(void **state)
{
	fx_finish(*state);
	return 0;
}

/* Runs the source in a child process, retrying after errors, until it is killed. */
static pid_t spawn_capture(fx_t *fx)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid > 0)
		return pid;
	cw_metrics_t *metrics = cw_metrics_new();
	cw_component_ctx_t ctx = {fx->config, "app", NULL, 0, metrics, NULL};
	const cw_source_ops_t *ops = cw_source_ops_for(CW_SOURCE_POSTGRES);
	cw_err_t err = {0};
	void *source = ops->open(&ctx, &err);
	cw_cancel_t *cancel = cw_cancel_new();
	for (;;) {
		if (source == NULL || ops->run(source, cancel, &err) == CW_ECANCELED)
			_exit(1);
		fprintf(stderr, "child run: %s\n", err.message);
		cw_cancel_wait_ms(cancel, 200);
	}
}

static void kill9(pid_t pid)
{
	int status = 0;
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
}

/* Drops the slot once its walsender (of a stopped source) has gone. */
static void drop_slot(fx_t *fx)
{
	fx_wait_int(fx, "SELECT count(*) FROM pg_replication_slots "
	                "WHERE slot_name = 'cachewarp_app' AND NOT active", 1);
	fx_sql(fx, "SELECT pg_drop_replication_slot('cachewarp_app')");
}

static long long oplog_rows(fx_t *fx)
{
	return fx_int(fx, "SELECT count(*) FROM cachewarp.oplog WHERE entity = 't'");
}

static void kill_during_snapshot_then_restart(void **state)
{
	fx_t *fx = *state;
	fx_config(fx, "", ENTITY, 100);
	pid_t pid = spawn_capture(fx);
	fx_wait_int(fx, "SELECT count(*) FROM cachewarp.oplog WHERE entity = 't'", 2000);
	kill9(pid);
	/* Killed inside the snapshot: no position was stored yet, the entity is not live. */
	assert_int_equal(fx_int(fx, "SELECT count(*) FROM cachewarp.metadata "
	                            "WHERE key = 'pg_lsn:app'"), 0);
	assert_int_equal(fx_int(fx, "SELECT count(*) FROM cachewarp.entities "
	                            "WHERE name = 't' AND status = 'live'"), 0);
	writer_t w;
	writer_start(&w, fx->srv.url, "t", ROWS);
	fx_run(fx);
	fx_wait_int(fx, "SELECT count(*) FROM cachewarp.entities WHERE name = 't' "
	                "AND status = 'live'", 1);
	writer_wait_ops(&w, 200);
	writer_stop(&w);
	fx_wait_converged(fx, "t", TABLE_QUERY);
	/* The scan went on after its last committed key: one generation, one sweep, and no row
	 * of the scan (they carry the consistent point, as the sweep does) in the hub twice. */
	assert_int_equal(fx_int(fx, "SELECT version FROM cachewarp.entities WHERE name = 't'"), 1);
	assert_int_equal(fx_int(fx, "SELECT count(*) FROM cachewarp.oplog WHERE entity = 't' "
	                            "AND op = 'sweep' AND version = 1"), 1);
	assert_int_equal(fx_int(fx, "SELECT count(*) - count(DISTINCT doc_id) FROM cachewarp.oplog "
	                            "WHERE entity = 't' AND op = 'upsert' AND source_pos = (SELECT "
	                            "source_pos FROM cachewarp.oplog WHERE entity = 't' AND "
	                            "op = 'sweep')"), 0);
	assert_true(fx_int(fx, "SELECT count(*) FROM cachewarp.oplog WHERE entity = 't' AND "
	                       "op = 'upsert' AND source_pos = (SELECT source_pos FROM "
	                       "cachewarp.oplog WHERE entity = 't' AND op = 'sweep')") >= ROWS - 500);
}

static void kill_during_streaming_then_restart(void **state)
{
	fx_t *fx = *state;
	fx_stop(fx);
	writer_t w;
	writer_start(&w, fx->srv.url, "t", ROWS + 100000);
	long long before = oplog_rows(fx);
	pid_t pid = spawn_capture(fx);
	writer_wait_ops(&w, 300);
	fx_wait_int(fx, "SELECT count(*) FROM cachewarp.oplog WHERE entity = 't'", before + 100);
	kill9(pid);
	writer_wait_ops(&w, 300);
	fx_run(fx);
	writer_wait_ops(&w, 300);
	writer_stop(&w);
	fx_wait_converged(fx, "t", TABLE_QUERY);
	/* Resumed from the stored LSN: the same generation, no new scan. */
	assert_int_equal(fx_int(fx, "SELECT version FROM cachewarp.entities WHERE name = 't'"), 1);
	assert_int_equal(fx_int(fx, "SELECT count(*) FROM cachewarp.oplog WHERE entity = 't' "
	                            "AND op = 'sweep'"), 1);
}

static void clean_restart_resumes_from_stored_lsn(void **state)
{
	fx_t *fx = *state;
	fx_stop(fx);
	char *stored = fx_value(fx, "SELECT value->>'lsn' FROM cachewarp.metadata "
	                            "WHERE key = 'pg_lsn:app'");
	assert_non_null(stored);
	fx_sql(fx, "UPDATE t SET v = v + 1000 WHERE id % 97 = 0;"
	           "DELETE FROM t WHERE id % 89 = 0;"
	           "INSERT INTO t VALUES (-1, -1, 'while stopped')");
	fx_run(fx);
	fx_wait_converged(fx, "t", TABLE_QUERY);
	char sql[256];
	snprintf(sql, sizeof sql, "SELECT (value->>'lsn')::pg_lsn > '%s' FROM cachewarp.metadata "
	         "WHERE key = 'pg_lsn:app'", stored);
	free(stored);
	char *advanced = fx_value(fx, sql);
	assert_string_equal(advanced, "t");
	free(advanced);
	assert_int_equal(fx_int(fx, "SELECT version FROM cachewarp.entities WHERE name = 't'"), 1);
}

/* An entity added while streaming, killed during its own scan: the scan goes on after its
 * last committed key in the same generation, each row once. */
static void kill_during_runtime_scan_resumes_it(void **state)
{
	fx_t *fx = *state;
	fx_stop(fx);
	fx_sql(fx, "CREATE TABLE u (id int PRIMARY KEY, v int);"
	           "INSERT INTO u SELECT g, g FROM generate_series(1, 60000) g");
	fx_config(fx, "", ENTITY "  - {name: u, source: app, table: public.u}\n", 100);
	pid_t pid = spawn_capture(fx);
	fx_wait_int(fx, "SELECT count(*) FROM cachewarp.oplog WHERE entity = 'u'", 2000);
	kill9(pid);
	assert_int_equal(fx_int(fx, "SELECT count(*) FROM cachewarp.entities "
	                            "WHERE name = 'u' AND status = 'live'"), 0);
	fx_run(fx);
	fx_wait_int(fx, "SELECT count(*) FROM cachewarp.entities WHERE name = 'u' "
	                "AND status = 'live'", 1);
	fx_wait_converged(fx, "u", "SELECT id::text, to_jsonb(u)::text FROM u");
	assert_int_equal(fx_int(fx, "SELECT version FROM cachewarp.entities WHERE name = 'u'"), 1);
	assert_int_equal(fx_int(fx, "SELECT count(*) FROM cachewarp.oplog WHERE entity = 'u' "
	                            "AND op = 'sweep'"), 1);
	assert_int_equal(fx_int(fx, "SELECT count(*) FROM cachewarp.oplog WHERE entity = 'u' "
	                            "AND op = 'upsert'"), 60000);
	assert_int_equal(fx_int(fx, "SELECT count(DISTINCT doc_id) FROM cachewarp.oplog "
	                            "WHERE entity = 'u' AND op = 'upsert'"), 60000);
}

static void dropped_slot_while_stopped_rescans_and_sweeps(void **state)
{
	fx_t *fx = *state;
	fx_stop(fx);
	fx_sql(fx, "DELETE FROM t WHERE id BETWEEN 100 AND 300;"
	           "UPDATE t SET note = 'lost' WHERE id BETWEEN 300 AND 400;");
	drop_slot(fx);
	fx_run(fx);
	fx_wait_int(fx, "SELECT count(*) FROM cachewarp.oplog WHERE entity = 't' "
	                "AND op = 'sweep' AND version = 2", 1);
	assert_int_equal(fx_int(fx, "SELECT version FROM cachewarp.entities WHERE name = 't'"), 2);
	/* No delete was ever captured for the rows deleted meanwhile: the sweep removes them. */
	assert_int_equal(fx_int(fx, "SELECT count(*) FROM cachewarp.oplog WHERE entity = 't' "
	                            "AND op = 'delete' AND doc_id = '200'"), 0);
	fx_wait_converged(fx, "t", TABLE_QUERY);
	assert_int_equal(fx_int(fx, "SELECT count(*) FROM pg_replication_slots "
	                            "WHERE slot_name = 'cachewarp_app'"), 1);
	fx_sql(fx, "INSERT INTO t VALUES (-2, 2, 'after rescan')");
	fx_wait_converged(fx, "t", TABLE_QUERY);
}

static void invalidated_slot_rescans_and_sweeps(void **state)
{
	fx_t *fx = *state;
	fx_stop(fx);
	fx_sql(fx, "ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'");
	fx_sql(fx, "SELECT pg_reload_conf()");
	fx_sql(fx, "DELETE FROM t WHERE id BETWEEN 500 AND 600");
	/* Push the slot's WAL out: new segments and a checkpoint invalidate it. */
	int64_t deadline = fx_now_ms() + WAIT_MS;
	char *wal_status = NULL;
	for (;;) {
		free(wal_status);
		wal_status = fx_value(fx, "SELECT wal_status FROM pg_replication_slots "
		                          "WHERE slot_name = 'cachewarp_app'");
		if (wal_status != NULL && strcmp(wal_status, "lost") == 0)
			break;
		if (fx_now_ms() > deadline)
			fail_msg("the slot was not invalidated: wal_status %s", wal_status);
		fx_sql(fx, "UPDATE t SET v = v + 1 WHERE id = 1");
		fx_sql(fx, "SELECT pg_switch_wal()");
		fx_sql(fx, "CHECKPOINT");
	}
	free(wal_status);
	fx_sql(fx, "ALTER SYSTEM RESET max_slot_wal_keep_size");
	fx_sql(fx, "SELECT pg_reload_conf()");
	fx_run(fx);
	fx_wait_int(fx, "SELECT count(*) FROM cachewarp.oplog WHERE entity = 't' "
	                "AND op = 'sweep' AND version = 3", 1);
	fx_wait_converged(fx, "t", TABLE_QUERY);
	assert_int_equal(fx_int(fx, "SELECT count(*) FROM pg_replication_slots "
	                            "WHERE slot_name = 'cachewarp_app' AND wal_status <> 'lost'"), 1);
}

static void position_lost_with_fail_policy_stops(void **state)
{
	fx_t *fx = *state;
	fx_stop(fx);
	drop_slot(fx);
	fx_config(fx, "    on_position_lost: fail\n", ENTITY, 100);
	fx_run(fx);
	cw_component_status_t status = fx_wait_error(fx);
	assert_false(status.healthy);
	assert_non_null(strstr(status.last_error, "replication slot \"cachewarp_app\""));
	assert_non_null(strstr(status.last_error, "missing"));
	fx_stop(fx);
	/* It did not carry on from a new slot. */
	assert_int_equal(fx_int(fx, "SELECT count(*) FROM pg_replication_slots "
	                            "WHERE slot_name = 'cachewarp_app'"), 0);
	assert_int_equal(fx_int(fx, "SELECT version FROM cachewarp.entities WHERE name = 't'"), 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(kill_during_snapshot_then_restart),
		cmocka_unit_test(kill_during_streaming_then_restart),
		cmocka_unit_test(clean_restart_resumes_from_stored_lsn),
		cmocka_unit_test(kill_during_runtime_scan_resumes_it),
		cmocka_unit_test(dropped_slot_while_stopped_rescans_and_sweeps),
		cmocka_unit_test(invalidated_slot_rescans_and_sweeps),
		cmocka_unit_test(position_lost_with_fail_policy_stops),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
