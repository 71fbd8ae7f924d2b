/*
 * Integration tests of the PostgreSQL source's stream against a real
 * PostgreSQL 15: inserts, updates (with and without a key change) and
 * deletes under REPLICA IDENTITY DEFAULT and FULL, a composite primary key,
 * an unchanged TOASTed column left out of the change, value types (unicode,
 * NULL, numeric beyond double, jsonb, arrays) the same from the snapshot and
 * the stream, TRUNCATE as a new generation with a sweep, the slot advancing
 * on a quiet database, lag and counters in status and metrics, and the
 * flush position: keepalives answered at once, never past what the hub holds.
 */
#include "pg_source_fixture.h"

static const char *SETUP =
	"CREATE TABLE items (id int PRIMARY KEY, name text, qty int, price numeric);"
	"CREATE TABLE items_full (id int PRIMARY KEY, name text, qty int);"
	"ALTER TABLE items_full REPLICA IDENTITY FULL;"
	"CREATE TABLE pairs (tenant text, n int, label text, PRIMARY KEY (tenant, n));"
	"CREATE TABLE docs (id int PRIMARY KEY, title text, body text);"
	"ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTERNAL;"
	"CREATE TABLE kinds (id int PRIMARY KEY, t text, n numeric, j jsonb, a int[], "
	"  ta text[], nul text, b bool, f float8);"
	"CREATE TABLE logs (id int PRIMARY KEY, msg text);"
	"CREATE TABLE unrelated (id int PRIMARY KEY, v int);"
	"INSERT INTO items SELECT g, 'item ' || g, g, g * 1.5 FROM generate_series(1, 20) g;"
	"INSERT INTO items_full SELECT g, 'full ' || g, g FROM generate_series(1, 20) g;"
	"INSERT INTO pairs VALUES ('acme', 1, 'one'), ('acme', 2, 'two'), ('zeta', 1, 'z');"
	"INSERT INTO docs SELECT 1, 'draft', string_agg(md5(g::text), '') "
	"  FROM generate_series(1, 200) g;"
	"INSERT INTO kinds VALUES (1, 'Grüße ☃ 𝄞 \"q\"', "
	"  123456789012345678901234567890.123456789, '{\"a\": [1, 2.50], \"b\": null}', "
	"  '{1,2,3}', '{red,\"with space\",NULL}', NULL, true, 1.5);"
	"INSERT INTO logs SELECT g, 'log ' || g FROM generate_series(1, 10) g;";

static const char *ENTITIES =
	"  - {name: items, source: app, table: public.items}\n"
	"  - {name: items_full, source: app, table: items_full}\n"
	"  - {name: pairs, source: app, table: public.pairs}\n"
	"  - {name: docs, source: app, table: public.docs}\n"
	"  - {name: kinds, source: app, table: public.kinds}\n"
	"  - {name: logs, source: app, table: public.logs}\n"
	"  - name: item_names\n    source: app\n    table: public.items\n"
	"    columns:\n      - {name: title, type: text, path: name}\n";

static fx_t FX;

static int group_setup(void **state)
{
	if (fx_start(&FX, SETUP) != 0)
		return -1;
	/* The server asks for a reply after 2.5 s of silence and drops a stream that does not
	 * answer within 5 s: every test below also checks that keepalives are answered. */
	fx_sql(&FX, "ALTER SYSTEM SET wal_sender_timeout = '5s'");
	fx_sql(&FX, "SELECT pg_reload_conf()");
	fx_config(&FX, "", ENTITIES, 7);
	fx_run(&FX);
	*state = &FX;
	return 0;
}

static int group_teardown(void **state)
{
	fx_finish(*state);
	return 0;
}

static void snapshot_makes_every_entity_live(void **state)
{
	fx_t *fx = *state;
	fx_wait_int(fx, "SELECT count(*) FROM cachewarp.entities WHERE status = 'live'", 7);
	fx_wait_converged(fx, "items", "SELECT id::text, to_jsonb(t)::text FROM items t");
	fx_wait_converged(fx, "item_names",
	                  "SELECT id::text, jsonb_build_object('title', name)::text FROM items");
	/* The first generation is version 1 and ends with a sweep. */
	assert_int_equal(fx_int(fx, "SELECT count(*) FROM cachewarp.oplog WHERE entity = 'items' "
	                            "AND op = 'sweep' AND version = 1"), 1);
	assert_int_equal(fx_int(fx, "SELECT count(*) FROM pg_publication_tables "
	                            "WHERE pubname = 'cachewarp'"), 6);
	assert_int_equal(fx_int(fx, "SELECT count(*) FROM pg_replication_slots "
	                            "WHERE slot_name = 'cachewarp_app' AND plugin = 'pgoutput'"), 1);
}

/* The same writes on a DEFAULT and on a FULL table. */
static void write_rows(fx_t *fx, const char *table)
{
	char sql[1024];
	snprintf(sql, sizeof sql,
		"INSERT INTO %1$s (id, name, qty) SELECT g, 'new ' || g, 0 FROM generate_series(21, 40) g;"
		"UPDATE %1$s SET qty = qty + 100 WHERE id %% 3 = 0;"
		"UPDATE %1$s SET id = 1000 + id WHERE id IN (1, 2);"
		"DELETE FROM %1$s WHERE id %% 5 = 0;"
		"BEGIN; UPDATE %1$s SET name = NULL WHERE id = 4; UPDATE %1$s SET name = 'back' "
		"WHERE id = 4; INSERT INTO %1$s VALUES (41, 'in txn', 1); COMMIT;", table);
	fx_sql(fx, sql);
}

static void expect_key_change(fx_t *fx, const char *entity)
{
	char sql[512];
	snprintf(sql, sizeof sql, "SELECT count(*) FROM cachewarp.oplog WHERE entity = '%s' "
	         "AND op = 'delete' AND doc_id IN ('1', '2')", entity);
	assert_int_equal(fx_int(fx, sql), 2);
	snprintf(sql, sizeof sql, "SELECT count(*) FROM cachewarp.oplog WHERE entity = '%s' "
	         "AND op = 'upsert' AND doc_id IN ('1001', '1002')", entity);
	assert_int_equal(fx_int(fx, sql), 2);
}

static void insert_update_delete_replica_identity_default(void **state)
{
	fx_t *fx = *state;
	write_rows(fx, "items");
	fx_wait_converged(fx, "items", "SELECT id::text, to_jsonb(t)::text FROM items t");
	fx_wait_converged(fx, "item_names",
	                  "SELECT id::text, jsonb_build_object('title', name)::text FROM items");
	expect_key_change(fx, "items");
}

static void insert_update_delete_replica_identity_full(void **state)
{
	fx_t *fx = *state;
	write_rows(fx, "items_full");
	fx_wait_converged(fx, "items_full", "SELECT id::text, to_jsonb(t)::text FROM items_full t");
	expect_key_change(fx, "items_full");
}

static void composite_primary_key_is_a_json_array(void **state)
{
	fx_t *fx = *state;
	fx_sql(fx, "INSERT INTO pairs VALUES ('acme', 3, 'three');"
	           "UPDATE pairs SET label = 'uno' WHERE tenant = 'acme' AND n = 1;"
	           "UPDATE pairs SET n = 9 WHERE tenant = 'zeta' AND n = 1;"
	           "DELETE FROM pairs WHERE tenant = 'acme' AND n = 2;");
	fx_wait_converged(fx, "pairs", "SELECT '[\"' || tenant || '\",' || n || ']', "
	                  "to_jsonb(t)::text FROM pairs t");
	assert_int_equal(fx_int(fx, "SELECT count(*) FROM cachewarp.oplog WHERE entity = 'pairs' "
	                            "AND op = 'delete' AND doc_id = '[\"zeta\",1]'"), 1);
}

static void unchanged_toast_column_is_absent(void **state)
{
	fx_t *fx = *state;
	long long body_len = fx_int(fx, "SELECT length(body) FROM docs WHERE id = 1");
	assert_true(body_len > 2000);
	fx_sql(fx, "UPDATE docs SET title = 'final' WHERE id = 1");
	fx_wait_int(fx, "SELECT count(*) FROM cachewarp.oplog WHERE entity = 'docs' "
	                "AND data::jsonb->>'title' = 'final'", 1);
	/* The update carries the title and no body key at all: not null, not a placeholder. */
	assert_int_equal(fx_int(fx, "SELECT count(*) FROM cachewarp.oplog WHERE entity = 'docs' "
	                            "AND data::jsonb->>'title' = 'final' "
	                            "AND NOT data::jsonb ? 'body'"), 1);
	/* A target that merges present keys keeps the old body. */
	fx_wait_converged(fx, "docs", "SELECT id::text, to_jsonb(t)::text FROM docs t");
}

static void values_keep_their_type_in_snapshot_and_stream(void **state)
{
	fx_t *fx = *state;
	fx_sql(fx, "INSERT INTO kinds SELECT 2, t, n, j, a, ta, nul, b, f FROM kinds WHERE id = 1");
	fx_wait_int(fx, "SELECT count(*) FROM cachewarp.oplog WHERE entity = 'kinds' "
	                "AND doc_id = '2'", 1);
	for (int id = 1; id <= 2; id++) {
		char sql[1024];
		snprintf(sql, sizeof sql, "SELECT data::text FROM cachewarp.oplog WHERE entity = 'kinds' "
		         "AND doc_id = '%d' AND op = 'upsert' ORDER BY id DESC LIMIT 1", id);
		char *data = fx_value(fx, sql);
		assert_non_null(data);
		fprintf(stderr, "kinds %d: %s\n", id, data);
		free(data);
		snprintf(sql, sizeof sql,
			"SELECT (data::jsonb->>'t' = 'Grüße ☃ 𝄞 \"q\"')::int "
			"+ (data::jsonb->>'n' = '123456789012345678901234567890.123456789')::int "
			"+ (jsonb_typeof(data::jsonb->'n') = 'number')::int "
			"+ (data::jsonb->'j' = '{\"a\": [1, 2.50], \"b\": null}'::jsonb)::int "
			"+ (data::jsonb->'a' = '[1, 2, 3]'::jsonb)::int "
			"+ (data::jsonb->'ta' = '[\"red\", \"with space\", null]'::jsonb)::int "
			"+ (data::jsonb ? 'nul' AND jsonb_typeof(data::jsonb->'nul') = 'null')::int "
			"+ (data::jsonb->'b' = 'true'::jsonb)::int + (data::jsonb->'f' = '1.5'::jsonb)::int "
			"FROM cachewarp.oplog WHERE entity = 'kinds' AND doc_id = '%d' AND op = 'upsert' "
			"ORDER BY id DESC LIMIT 1", id);
		assert_int_equal(fx_int(fx, sql), 9);
	}
}

static void truncate_starts_a_generation_and_sweeps(void **state)
{
	fx_t *fx = *state;
	fx_wait_converged(fx, "logs", "SELECT id::text, to_jsonb(t)::text FROM logs t");
	fx_sql(fx, "BEGIN; INSERT INTO logs VALUES (11, 'doomed'); TRUNCATE logs; "
	           "INSERT INTO logs VALUES (100, 'after'); COMMIT;");
	fx_wait_int(fx, "SELECT count(*) FROM cachewarp.oplog WHERE entity = 'logs' "
	                "AND op = 'sweep' AND version = 2", 1);
	assert_int_equal(fx_int(fx, "SELECT version FROM cachewarp.entities WHERE name = 'logs'"), 2);
	fx_wait_converged(fx, "logs", "SELECT id::text, to_jsonb(t)::text FROM logs t");
	assert_int_equal(fx_int(fx, "SELECT version FROM cachewarp.oplog WHERE entity = 'logs' "
	                            "AND doc_id = '100'"), 2);
}

static void slot_advances_on_a_quiet_database(void **state)
{
	fx_t *fx = *state;
	/* WAL the publication does not cover; the confirmed position must still pass it. */
	fx_sql(fx, "INSERT INTO unrelated SELECT g, g FROM generate_series(1, 1000) g");
	char *lsn = fx_value(fx, "SELECT pg_current_wal_insert_lsn()::text");
	char sql[256];
	snprintf(sql, sizeof sql, "SELECT (confirmed_flush_lsn >= '%s')::int FROM "
	         "pg_replication_slots WHERE slot_name = 'cachewarp_app'", lsn);
	free(lsn);
	fx_wait_int(fx, sql, 1);
}

static void status_and_metrics_report_lag_and_counts(void **state)
{
	fx_t *fx = *state;
	fx_sql(fx, "INSERT INTO items VALUES (500, 'metrics', 1, 1)");
	fx_wait_converged(fx, "items", "SELECT id::text, to_jsonb(t)::text FROM items t");
	cw_component_status_t status = fx_status(fx);
	assert_true(status.healthy);
	assert_string_equal(status.state, "streaming");
	assert_true(status.lag_bytes >= 0);
	assert_true(status.position[0] != '\0');
	assert_true(cw_metrics_value(fx->metrics, "cachewarp_changes_captured_total",
	                             "entity=\"items\",op=\"upsert\"") >= 41);
	assert_true(cw_metrics_value(fx->metrics, "cachewarp_changes_captured_total",
	                             "entity=\"items\",op=\"delete\"") >= 1);
	cw_buf_t text = CW_BUF_INIT;
	cw_metrics_render(fx->metrics, &text);
	assert_non_null(strstr(text.data, "cachewarp_source_lag_bytes{source=\"app\"}"));
	assert_non_null(strstr(text.data, "cachewarp_source_lag_seconds{source=\"app\"}"));
	cw_buf_free(&text);
	/* Nothing was quarantined on the way. */
	assert_int_equal(fx_int(fx, "SELECT count(*) FROM cachewarp.quarantine"), 0);
}

static void entity_added_at_runtime_is_scanned_alone(void **state)
{
	fx_t *fx = *state;
	fx_sql(fx, "CREATE TABLE late (id int PRIMARY KEY, v text);"
	           "INSERT INTO late SELECT g, 'v' || g FROM generate_series(1, 500) g;");
	cw_entity_t late = {(char *)"late", (char *)"app", NULL, (char *)"public.late", NULL, 0,
	                    CW_ENTITY_PENDING, 1, NULL, 0,
	                    CW_ENTITY_MODE_STREAM, {0}, CW_ENTITY_ORIGIN_UNKNOWN, NULL, 0};
	cw_err_t err = {0};
	bool created = false;
	assert_int_equal(cw_entity_store_upsert(fx->hub, &late, &created, &err), 0);
	assert_true(created);
	fx_wait_int(fx, "SELECT count(*) FROM cachewarp.entities WHERE name = 'late' "
	                "AND status = 'live'", 1);
	fx_sql(fx, "UPDATE late SET v = 'changed' WHERE id < 10; DELETE FROM late WHERE id = 20;");
	fx_wait_converged(fx, "late", "SELECT id::text, to_jsonb(t)::text FROM late t");
	assert_int_equal(fx_int(fx, "SELECT count(*) FROM cachewarp.oplog WHERE entity = 'late' "
	                            "AND op = 'sweep' AND version = 1"), 1);
	/* The other entities were not scanned again. */
	assert_int_equal(fx_int(fx, "SELECT count(*) FROM cachewarp.oplog WHERE entity = 'items' "
	                            "AND op = 'sweep'"), 1);
	/* A hard refresh (new version, pending) is a new scan of that entity and a sweep. */
	fx_sql(fx, "DELETE FROM late WHERE id > 400");
	fx_wait_converged(fx, "late", "SELECT id::text, to_jsonb(t)::text FROM late t");
	int64_t version = 0;
	assert_int_equal(cw_entity_store_bump_version(fx->hub, "late", &version, &err), 0);
	assert_int_equal(cw_entity_store_set_status(fx->hub, "late", CW_ENTITY_PENDING, &err), 0);
	fx_wait_int(fx, "SELECT count(*) FROM cachewarp.oplog WHERE entity = 'late' "
	                "AND op = 'sweep' AND version = 2", 1);
	fx_wait_int(fx, "SELECT count(*) FROM cachewarp.entities WHERE name = 'late' "
	                "AND status = 'live'", 1);
	assert_int_equal(fx_int(fx, "SELECT count(*) FROM cachewarp.oplog WHERE entity = 'late' "
	                            "AND version = 2 AND op = 'upsert'"), 399);
	fx_wait_converged(fx, "late", "SELECT id::text, to_jsonb(t)::text FROM late t");
}

static void a_value_that_does_not_fit_is_quarantined(void **state)
{
	fx_t *fx = *state;
	/* Text that is not an integer, projected onto an integer column. */
	cw_column_t column = {(char *)"q", CW_COL_INTEGER, (char *)"t"};
	cw_entity_t bad = {(char *)"bad_kinds", (char *)"app", NULL, (char *)"public.kinds",
	                   &column, 1, CW_ENTITY_PENDING, 1, NULL, 0,
	                   CW_ENTITY_MODE_STREAM, {0}, CW_ENTITY_ORIGIN_UNKNOWN, NULL, 0};
	cw_err_t err = {0};
	bool created = false;
	assert_int_equal(cw_entity_store_upsert(fx->hub, &bad, &created, &err), 0);
	fx_wait_int(fx, "SELECT count(*) FROM cachewarp.entities WHERE name = 'bad_kinds' "
	                "AND status = 'live'", 1);
	assert_int_equal(fx_int(fx, "SELECT count(*) FROM cachewarp.quarantine "
	                            "WHERE entity = 'bad_kinds' AND reason LIKE '%\"q\"%' "
	                            "AND doc_id IN ('1', '2') AND raw IS NOT NULL"), 2);
	/* The stream goes on: later rows still arrive, the bad ones are set aside again. */
	fx_sql(fx, "INSERT INTO kinds (id, t) VALUES (3, 'not a number'), (4, '42');"
	           "INSERT INTO items VALUES (600, 'after quarantine', 1, 1)");
	fx_wait_converged(fx, "items", "SELECT id::text, to_jsonb(t)::text FROM items t");
	fx_wait_int(fx, "SELECT count(*) FROM cachewarp.oplog WHERE entity = 'bad_kinds' "
	                "AND doc_id = '4' AND data = '{\"q\":42}'", 1);
	assert_int_equal(fx_int(fx, "SELECT count(*) FROM cachewarp.quarantine "
	                            "WHERE entity = 'bad_kinds' AND doc_id = '3'"), 1);
}

static void flush_position_waits_for_the_hub(void **state)
{
	fx_t *fx = *state;
	PGconn *locker = PQconnectdb(fx->srv.url);
	PGresult *res = PQexec(locker, "BEGIN; LOCK TABLE cachewarp.oplog IN ACCESS EXCLUSIVE MODE");
	assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);
	fx_sql(fx, "INSERT INTO items VALUES (700, 'held', 1, 1)");
	/* The insert position, not the write position: the test cluster commits asynchronously. */
	char *commit_lsn = fx_value(fx, "SELECT pg_current_wal_insert_lsn()::text");
	/* The hub's writer is stuck on the batch holding that row. */
	fx_wait_int(fx, "SELECT count(*) FROM pg_locks WHERE NOT granted "
	                "AND relation = 'cachewarp.oplog'::regclass", 1);
	char *blocked_at = fx_value(fx, "SELECT clock_timestamp()::text");
	char sql[512];
	snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_stat_replication WHERE "
	         "application_name = 'cachewarp' AND reply_time > '%s'", blocked_at);
	fx_wait_int(fx, sql, 1);
	/* Replies keep coming while the hub is stuck, and none confirms the row. */
	snprintf(sql, sizeof sql, "SELECT (confirmed_flush_lsn < '%s')::int FROM "
	         "pg_replication_slots WHERE slot_name = 'cachewarp_app'", commit_lsn);
	assert_int_equal(fx_int(fx, sql), 1);
	cw_component_status_t status = fx_status(fx);
	assert_true(status.lag_bytes > 0);
	res = PQexec(locker, "ROLLBACK");
	PQclear(res);
	PQfinish(locker);
	fx_wait_converged(fx, "items", "SELECT id::text, to_jsonb(t)::text FROM items t");
	snprintf(sql, sizeof sql, "SELECT (confirmed_flush_lsn >= '%s')::int FROM "
	         "pg_replication_slots WHERE slot_name = 'cachewarp_app'", commit_lsn);
	fx_wait_int(fx, sql, 1);
	free(blocked_at);
	free(commit_lsn);
	/* Every keepalive asking for a reply was answered in time: the stream never broke. */
	assert_int_equal(fx->runner.first_error[0], '\0');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(snapshot_makes_every_entity_live),
		cmocka_unit_test(insert_update_delete_replica_identity_default),
		cmocka_unit_test(insert_update_delete_replica_identity_full),
		cmocka_unit_test(composite_primary_key_is_a_json_array),
		cmocka_unit_test(unchanged_toast_column_is_absent),
		cmocka_unit_test(values_keep_their_type_in_snapshot_and_stream),
		cmocka_unit_test(truncate_starts_a_generation_and_sweeps),
		cmocka_unit_test(slot_advances_on_a_quiet_database),
		cmocka_unit_test(status_and_metrics_report_lag_and_counts),
		cmocka_unit_test(entity_added_at_runtime_is_scanned_alone),
		cmocka_unit_test(a_value_that_does_not_fit_is_quarantined),
		cmocka_unit_test(flush_position_waits_for_the_hub),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
