/*
 * Integration tests of the hub schema migrations against a real PostgreSQL:
 * applying twice, four processes migrating at once, refusing a hub newer
 * than the binary, and connection errors that never show the password.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/mem.h"
#include "hub/hub.h"
#include "hub/migrations.h"
#include "testsrv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NPROCESSES 4

typedef cw_testhub_t fixture_t;

static int setup(void **state)
{
	fixture_t *fx = cw_xcalloc(1, sizeof *fx);
	if (cw_testhub_start(fx, false) != 0)
		return -1;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	cw_testhub_stop(*state);
	free(*state);
	return 0;
}

static void exec_ok(cw_hub_t *hub, const char *sql)
{
	PGresult *res = PQexec(cw_hub_pgconn(hub), sql);
	assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);
}

static void drop_schema(cw_hub_t *hub)
{
	exec_ok(hub, "DROP SCHEMA IF EXISTS cachewarp CASCADE");
}

static void migrating_twice_applies_once(void **state)
{
	fixture_t *fx = *state;
	cw_err_t err = {0};
	int version = -1, applied = -1;
	drop_schema(fx->hub);
	assert_int_equal(cw_hub_schema_version(fx->hub, &version, &err), 0);
	assert_int_equal(version, 0);
	assert_int_equal(cw_hub_schema_check(fx->hub, &err), CW_ECONFLICT);
	assert_non_null(strstr(err.message, "run cachewarp migrate"));
	assert_int_equal(cw_hub_migrate(fx->hub, &applied, &err), 0);
	assert_true(cw_hub_schema_target() >= 1);
	assert_int_equal(applied, cw_hub_schema_target());
	assert_int_equal(cw_hub_migrate(fx->hub, &applied, &err), 0);
	assert_int_equal(applied, 0);
	assert_int_equal(cw_hub_schema_version(fx->hub, &version, &err), 0);
	assert_int_equal(version, cw_hub_schema_target());
	assert_int_equal(cw_hub_schema_check(fx->hub, &err), 0);
	assert_int_equal(cw_testhub_int(fx->hub, "SELECT count(*) FROM cachewarp.schema_version"),
	                 cw_hub_schema_target());
	/* Every table the hub's modules use is there. */
	assert_int_equal(cw_testhub_int(fx->hub,
		"SELECT count(*) FROM pg_tables WHERE schemaname = 'cachewarp' AND tablename IN "
		"('oplog', 'oplog_staging', 'entities', 'metadata', 'consumers', 'quarantine')"), 6);
	assert_int_equal(cw_testhub_int(fx->hub,
		"SELECT count(*) FROM pg_indexes WHERE schemaname = 'cachewarp' AND indexname IN "
		"('oplog_entity_id', 'oplog_created_at')"), 2);
}

/* A forked process: waits at the gate, then migrates. Returns an exit status. */
static int migrating_process(const char *url, int gate)
{
	char byte;
	cw_err_t err = {0};
	cw_hub_t *hub = cw_hub_connect(url, &err);
	if (hub == NULL) {
		fprintf(stderr, "migrating process: %s\n", err.message);
		return 1;
	}
	(void)!read(gate, &byte, 1);   /* returns 0 when the parent closes the gate */
	int rc = cw_hub_migrate(hub, NULL, &err);
	if (rc != 0)
		fprintf(stderr, "migrating process: %s\n", err.message);
	cw_hub_close(hub);
	return rc == 0 ? 0 : 1;
}

static void processes_migrating_at_once_all_succeed(void **state)
{
	fixture_t *fx = *state;
	cw_err_t err = {0};
	pid_t pids[NPROCESSES];
	int gate[2];
	int version = -1;
	drop_schema(fx->hub);
	assert_int_equal(pipe(gate), 0);
	for (int i = 0; i < NPROCESSES; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			close(gate[1]);
			_exit(migrating_process(fx->srv.url, gate[0]));
		}
	}
	close(gate[0]);
	close(gate[1]);   /* opens the gate for every process at once */
	for (int i = 0; i < NPROCESSES; i++) {
		int status;
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	assert_int_equal(cw_hub_schema_version(fx->hub, &version, &err), 0);
	assert_int_equal(version, cw_hub_schema_target());
	assert_int_equal(cw_testhub_int(fx->hub, "SELECT count(*) FROM cachewarp.schema_version"),
	                 cw_hub_schema_target());
}

static void hub_newer_than_the_binary_is_refused(void **state)
{
	fixture_t *fx = *state;
	cw_err_t err = {0};
	char sql[128], want[160];
	int applied = -1;
	int newer = cw_hub_schema_target() + 6;
	assert_int_equal(cw_hub_migrate(fx->hub, NULL, &err), 0);
	snprintf(sql, sizeof sql, "INSERT INTO cachewarp.schema_version (version) VALUES (%d)", newer);
	exec_ok(fx->hub, sql);
	snprintf(want, sizeof want,
	         "hub schema version %d is newer than this cachewarp (%d): upgrade cachewarp",
	         newer, cw_hub_schema_target());
	assert_int_equal(cw_hub_migrate(fx->hub, &applied, &err), CW_ECONFLICT);
	assert_string_equal(err.message, want);
	assert_int_equal(applied, 0);
	cw_err_clear(&err);
	assert_int_equal(cw_hub_schema_check(fx->hub, &err), CW_ECONFLICT);
	assert_string_equal(err.message, want);
	/* The refusal released the migration lock: another migrate gets the same answer. */
	assert_int_equal(cw_hub_migrate(fx->hub, NULL, &err), CW_ECONFLICT);
	assert_int_equal(cw_testhub_int(fx->hub,
		"SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
		"WHERE l.locktype = 'advisory' AND d.datname = current_database()"), 0);
}

static void connection_errors_never_show_the_password(void **state)
{
	(void)state;
	cw_err_t err = {0};
	/* Port 1 refuses connections. */
	cw_hub_t *hub = cw_hub_connect("postgresql://cachewarp:hunter2secret@127.0.0.1:1/app", &err);
	assert_null(hub);
	assert_int_equal(err.code, CW_EDB);
	assert_non_null(strstr(err.message, "could not connect to hub \"postgresql://cachewarp:"));
	assert_null(strstr(err.message, "hunter2secret"));
	hub = cw_hub_connect("host=127.0.0.1 port=1 user=cachewarp password=hunter2secret", &err);
	assert_null(hub);
	assert_null(strstr(err.message, "hunter2secret"));
	hub = cw_hub_connect("", &err);
	assert_null(hub);
	assert_int_equal(err.code, CW_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(migrating_twice_applies_once),
		cmocka_unit_test(processes_migrating_at_once_all_succeed),
		cmocka_unit_test(hub_newer_than_the_binary_is_refused),
		cmocka_unit_test(connection_errors_never_show_the_password),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
