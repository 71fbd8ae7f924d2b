/*
 * Integration test of the source position verify's re-check waits for
 * (verify/sides.h, cw_verify_source_position) against a real PostgreSQL 15
 * with synchronous_commit off, the setting of many busy sources: a
 * transaction is visible before its commit record is written, and the WAL
 * writer, told to wait 10 s, writes nothing meanwhile. The position read
 * after each commit must cover the commit; the write position
 * (pg_current_wal_lsn()) stays at the last full page and does not.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "testsrv.h"
#include "verify/sides.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMMITS 20

static cw_testsrv_t pg;

static int setup(void **state)
{
	(void)state;
	if (cw_testpg_start(&pg) != 0)
		return -1;
	char *out = cw_testpg_query(pg.url, "ALTER SYSTEM SET wal_writer_delay = '10s'");
	free(out);
	out = cw_testpg_query(pg.url, "SELECT pg_reload_conf()");
	free(out);
	out = cw_testpg_query(pg.url, "CREATE TABLE items (id int PRIMARY KEY, v text)");
	free(out);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	cw_testpg_stop(&pg);
	return 0;
}

/* The first value of sql on conn (owned). */
static char *value(PGconn *conn, const char *sql)
{
	PGresult *res = PQexec(conn, sql);
	assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
	char *v = strdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return v;
}

static bool lsn_at_least(PGconn *conn, const char *a, const char *b)
{
	char sql[160];
	snprintf(sql, sizeof sql, "SELECT '%s'::pg_lsn >= '%s'::pg_lsn", a, b);
	char *v = value(conn, sql);
	bool yes = v[0] == 't';
	free(v);
	return yes;
}

static void position_covers_every_visible_commit(void **state)
{
	(void)state;
	cw_source_config_t source = {.name = "app", .type = CW_SOURCE_POSTGRES, .url = pg.url};
	cw_entity_t entity = {.name = "items", .source = "app", .table = "public.items"};
	cw_target_config_t target = {.name = "node1", .type = CW_TARGET_SQLITE};
	cw_err_t err = {0};
	cw_verify_endpoint_t *ep = cw_verify_source_open(&source, &entity, &target, &err);
	assert_non_null(ep);
	PGconn *writer = PQconnectdb(pg.url);
	assert_int_equal(PQstatus(writer), CONNECTION_OK);
	PQclear(PQexec(writer, "SET synchronous_commit = off"));
	int behind_write_position = 0;
	for (int i = 1; i <= COMMITS; i++) {
		char sql[96];
		snprintf(sql, sizeof sql, "INSERT INTO items VALUES (%d, 'row %d')", i, i);
		PGresult *res = PQexec(writer, sql);
		assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
		PQclear(res);
		/* The end of what was inserted, the commit record included. */
		char *committed = value(writer, "SELECT pg_current_wal_insert_lsn()");
		char *written = value(writer, "SELECT pg_current_wal_lsn()");
		char *position = NULL;
		assert_int_equal(cw_verify_source_position(ep, &position, &err), 0);
		if (!lsn_at_least(writer, written, committed))
			behind_write_position++;
		if (!lsn_at_least(writer, position, committed))
			fail_msg("commit %d ends at %s, verify waits for %s", i, committed, position);
		free(position);
		free(written);
		free(committed);
	}
	/* The case the test is about happened: the write position lay before a visible commit. */
	fprintf(stderr, "%d of %d commits lay past the write position\n", behind_write_position,
	        COMMITS);
	assert_true(behind_write_position > 0);
	PQfinish(writer);
	cw_verify_endpoint_close(ep);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(position_covers_every_visible_commit),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
