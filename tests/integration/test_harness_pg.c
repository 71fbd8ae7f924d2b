/*
 * This file contains the smoke test of the PostgreSQL test harness: a cluster
 * started by cw_testpg_start answers libpq and psql with wal_level=logical,
 * and cw_testpg_stop (or the death of the test process) leaves no server and
 * no data directory behind.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "testsrv.h"

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pause_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static bool dir_exists(const char *dir)
{
	struct stat st;
	if (stat(dir, &st) == 0)
		return true;
	assert_int_equal(errno, ENOENT);
	return false;
}

/* The single value of a one-row, one-column query, through libpq (owned). */
static char *query_value(PGconn *conn, const char *sql)
{
	PGresult *res = PQexec(conn, sql);
	assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
	assert_int_equal(PQntuples(res), 1);
	char *value = strdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return value;
}

static void cluster_answers_with_logical_wal_and_stop_removes_it(void **state)
{
	(void)state;
	cw_testsrv_t srv;
	assert_int_equal(cw_testpg_start(&srv), 0);
	assert_non_null(srv.url);
	assert_memory_equal(srv.url, "postgresql://postgres@127.0.0.1:", 32);
	assert_true(dir_exists(srv.dir));
	assert_int_equal(cw_testsrv_listening(srv.url), 1);
	char dir[sizeof srv.dir];
	char *url = strdup(srv.url);
	memcpy(dir, srv.dir, sizeof dir);

	PGconn *conn = PQconnectdb(srv.url);
	assert_int_equal(PQstatus(conn), CONNECTION_OK);
	char *value = query_value(conn, "SELECT 1");
	assert_string_equal(value, "1");
	free(value);
	value = query_value(conn, "SHOW wal_level");
	assert_string_equal(value, "logical");
	free(value);
	value = query_value(conn, "SHOW listen_addresses");
	assert_string_equal(value, "127.0.0.1");
	free(value);
	value = query_value(conn, "SELECT rolsuper::text FROM pg_roles WHERE rolname = current_user");
	assert_string_equal(value, "true");
	free(value);
	PQfinish(conn);

	char *out = cw_testpg_query(srv.url, "SELECT 40 + 2");
	assert_non_null(out);
	assert_string_equal(out, "42");
	free(out);
	out = cw_testpg_query(srv.url, "SELECT g FROM generate_series(1, 3) g");
	assert_non_null(out);
	assert_string_equal(out, "1\n2\n3");
	free(out);
	assert_null(cw_testpg_query(srv.url, "SELECT no_such_column"));

	cw_testpg_stop(&srv);
	assert_null(srv.url);
	assert_false(dir_exists(dir));
	assert_int_equal(cw_testsrv_listening(url), 0);
	cw_testpg_stop(&srv);   /* stopping twice is harmless */
	free(url);
}

static void two_clusters_run_side_by_side(void **state)
{
	(void)state;
	cw_testsrv_t first;
	cw_testsrv_t second;
	assert_int_equal(cw_testpg_start(&first), 0);
	assert_int_equal(cw_testpg_start(&second), 0);
	assert_string_not_equal(first.url, second.url);
	assert_string_not_equal(first.dir, second.dir);

	char *out = cw_testpg_query(first.url, "CREATE TABLE only_here (id int)");
	assert_non_null(out);
	free(out);
	assert_null(cw_testpg_query(second.url, "SELECT * FROM only_here"));

	cw_testpg_stop(&first);
	out = cw_testpg_query(second.url, "SELECT 'still up'");
	assert_non_null(out);
	assert_string_equal(out, "still up");
	free(out);
	cw_testpg_stop(&second);
}

/* A test process that dies without stopping its cluster: the watchdog stops it. */
static void cluster_of_a_dead_test_process_goes_away(void **state)
{
	(void)state;
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		cw_testsrv_t srv;
		close(fds[0]);
		if (cw_testpg_start(&srv) != 0)
			_exit(1);
		size_t len = strlen(srv.url) + 1;
		ssize_t wrote = write(fds[1], srv.dir, sizeof srv.dir);
		wrote += write(fds[1], srv.url, len);
		_exit(wrote == (ssize_t)(sizeof srv.dir + len) ? 0 : 1);
	}
	close(fds[1]);
	char dir[sizeof ((cw_testsrv_t *)0)->dir];
	char url[256] = {0};
	assert_int_equal(read(fds[0], dir, sizeof dir), (ssize_t)sizeof dir);
	assert_true(read(fds[0], url, sizeof url - 1) > 0);
	close(fds[0]);
	int status = 0;
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	int64_t deadline = now_ms() + 20000;
	while (dir_exists(dir) || cw_testsrv_listening(url) != 0) {
		if (now_ms() > deadline)
			fail_msg("cluster in \"%s\" still there 20 s after its owner died", dir);
		pause_ms(50);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(cluster_answers_with_logical_wal_and_stop_removes_it),
		cmocka_unit_test(two_clusters_run_side_by_side),
		cmocka_unit_test(cluster_of_a_dead_test_process_goes_away),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
