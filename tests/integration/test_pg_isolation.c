/*
 * Integration tests of failure isolation in the PostgreSQL source against a
 * real PostgreSQL 15 (DESIGN.md §2, "failures are isolated"): an entity whose
 * table is missing or has no key, or whose table leaves the publication while the source
 * role may not add it back, is marked failed with its reason in the status
 * and the cachewarp_entity_failed gauge, its version stays, and the other
 * entities of the source keep streaming. Once the table is there again the
 * source notices within seconds and captures it. A table that left the
 * publication while the source was stopped is scanned again as a new
 * generation: the changes in between were never sent.
 */
#include "pg_source_fixture.h"

/* Tables owned by the superuser; the source runs as "capturer", which may only read them. */
static const char *SETUP =
	"CREATE TABLE good (id int PRIMARY KEY, v text);"
	"CREATE TABLE other (id int PRIMARY KEY, v text);"
	"CREATE TABLE later (id int PRIMARY KEY, v text);"
	"INSERT INTO good VALUES (1, 'a'), (2, 'b');"
	"INSERT INTO other VALUES (1, 'x');"
	"INSERT INTO later VALUES (1, 'l');"
	"CREATE TABLE keyless (a int, b text);"
	"CREATE ROLE capturer LOGIN REPLICATION;"
	"GRANT SELECT ON good, other, later TO capturer;";

/* How soon a fixed entity must be picked up (the source checks every 3 s). */
#define RECHECK_MS 15000

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

/* The reason entity is failed in the source's status, or NULL (owned). */
static char *failed_reason(fx_t *fx, const char *entity)
{
	cw_component_status_t st = fx_status(fx);
	for (size_t i = 0; i < st.nfailed && i < CW_COMPONENT_FAILED_MAX; i++)
		if (strcmp(st.failed[i].entity, entity) == 0)
			return cw_xstrdup(st.failed[i].reason);
	return NULL;
}

static char *wait_failed(fx_t *fx, const char *entity)
{
	int64_t deadline = fx_now_ms() + WAIT_MS;
	char *reason;
	while ((reason = failed_reason(fx, entity)) == NULL) {
		if (fx_now_ms() > deadline)
			fail_msg("entity \"%s\" was not marked failed", entity);
		fx_pause_ms(50);
	}
	fprintf(stderr, "entity %s failed: %s\n", entity, reason);
	return reason;
}

static double failed_gauge(fx_t *fx, const char *entity)
{
	char labels[128];
	snprintf(labels, sizeof labels, "entity=\"%s\",source=\"app\"", entity);
	return cw_metrics_value(fx->metrics, "cachewarp_entity_failed", labels);
}

static long long version_of(fx_t *fx, const char *entity)
{
	char *sql = cw_xasprintf("SELECT version FROM cachewarp.entities WHERE name = '%s'", entity);
	long long v = fx_int(fx, sql);
	free(sql);
	return v;
}

/* Waits until entity is live and no longer failed; returns how long it took. */
static int64_t wait_recovered(fx_t *fx, const char *entity)
{
	int64_t started = fx_now_ms();
	char *sql = cw_xasprintf("SELECT count(*) FROM cachewarp.entities WHERE name = '%s' "
	                         "AND status = 'live'", entity);
	for (;;) {
		char *reason = failed_reason(fx, entity);
		bool live = fx_int(fx, sql) == 1;
		free(reason);
		if (reason == NULL && live)
			break;
		if (fx_now_ms() - started > WAIT_MS)
			fail_msg("entity \"%s\" did not recover", entity);
		fx_pause_ms(50);
	}
	free(sql);
	return fx_now_ms() - started;
}

/* Waits until entity in the hub equals its table. */
static void wait_table(fx_t *fx, const char *entity, const char *table)
{
	char *sql = cw_xasprintf("SELECT id::text, to_jsonb(t)::text FROM %s t", table);
	fx_wait_converged(fx, entity, sql);
	free(sql);
}

static void missing_table_fails_alone(void **state)
{
	fx_t *fx = *state;
	fx_config(fx, "    slot: missing_slot\n    publication: missing_pub\n",
	          "  - {name: good, source: app, table: public.good}\n"
	          "  - {name: ghost, source: app, table: public.ghost}\n"
	          "  - {name: nokey, source: app, table: public.keyless}\n", 100);
	fx_run(fx);
	char *reason = wait_failed(fx, "ghost");
	assert_non_null(strstr(reason, "\"public\".\"ghost\" of entity \"ghost\" does not exist"));
	free(reason);
	/* The sibling streams: snapshot, then live changes. */
	wait_table(fx, "good", "good");
	fx_sql(fx, "INSERT INTO good VALUES (3, 'c'); UPDATE good SET v = 'B' WHERE id = 2");
	wait_table(fx, "good", "good");
	reason = wait_failed(fx, "nokey");
	assert_non_null(strstr(reason, "\"public\".\"keyless\" of entity \"nokey\" has no primary key"));
	free(reason);
	cw_component_status_t st = fx_status(fx);
	assert_string_equal(st.state, "streaming");
	assert_int_equal(st.nfailed, 2);
	assert_true(failed_gauge(fx, "ghost") == 1);
	assert_true(failed_gauge(fx, "nokey") == 1);
	assert_true(failed_gauge(fx, "good") == 0);
	/* A failed entity deleted is no longer reported. */
	cw_err_t err = {0};
	assert_int_equal(cw_entity_store_delete(fx->hub, "nokey", &err), 0);
	int64_t deadline = fx_now_ms() + WAIT_MS;
	while (fx_status(fx).nfailed != 1 || failed_gauge(fx, "nokey") != 0) {
		if (fx_now_ms() > deadline)
			fail_msg("the deleted entity is still reported failed");
		fx_pause_ms(50);
	}
	/* Checks of a failed entity never start a generation. */
	fx_pause_ms(4000);
	assert_int_equal(version_of(fx, "ghost"), 1);
	assert_int_equal(fx_int(fx, "SELECT count(*) FROM cachewarp.oplog WHERE entity = 'ghost'"), 0);
	/* Fixed: picked up within seconds, without a restart. */
	fx_sql(fx, "CREATE TABLE ghost (id int PRIMARY KEY, v text); INSERT INTO ghost VALUES (7, 'g')");
	int64_t took = wait_recovered(fx, "ghost");
	fprintf(stderr, "ghost recovered after %lld ms\n", (long long)took);
	assert_true(took < RECHECK_MS);
	wait_table(fx, "ghost", "ghost");
	assert_int_equal(version_of(fx, "ghost"), 1);
	assert_true(failed_gauge(fx, "ghost") == 0);
	assert_int_equal(fx_status(fx).nfailed, 0);

	/* Dropped while live: failed alone; created again: a new generation sweeps the old rows. */
	fx_sql(fx, "DROP TABLE ghost");
	reason = wait_failed(fx, "ghost");
	free(reason);
	fx_sql(fx, "INSERT INTO good VALUES (4, 'd')");
	wait_table(fx, "good", "good");
	fx_sql(fx, "CREATE TABLE ghost (id int PRIMARY KEY, v text); INSERT INTO ghost VALUES (8, 'h')");
	wait_recovered(fx, "ghost");
	wait_table(fx, "ghost", "ghost");
	assert_int_equal(version_of(fx, "ghost"), 2);
	assert_int_equal(fx->runner.runs, 0);
	fx_stop(fx);
	assert_int_equal(cw_entity_store_delete(fx->hub, "good", &err), 0);
	assert_int_equal(cw_entity_store_delete(fx->hub, "ghost", &err), 0);
}

static void table_out_of_publication_fails_alone(void **state)
{
	fx_t *fx = *state;
	/* The owner made the publication; the source's role may not change it. */
	fx_sql(fx, "CREATE PUBLICATION iso_pub FOR TABLE good, other");
	char *url = fx_url_as(fx, "capturer");
	fx_config_url(fx, url, "    slot: iso_slot\n    publication: iso_pub\n",
	              "  - {name: good2, source: app, table: public.good}\n"
	              "  - {name: other, source: app, table: public.other}\n", 100);
	free(url);
	fx_run(fx);
	wait_table(fx, "good2", "good");
	wait_table(fx, "other", "other");
	long long version = version_of(fx, "other");

	/* Dropped from the publication: "other" fails with the fix, "good2" streams on. */
	fx_sql(fx, "ALTER PUBLICATION iso_pub DROP TABLE other");
	char *reason = wait_failed(fx, "other");
	assert_non_null(strstr(reason, "ALTER PUBLICATION \"iso_pub\" ADD TABLE \"public\".\"other\""));
	free(reason);
	fx_sql(fx, "INSERT INTO good VALUES (10, 'during'); INSERT INTO other VALUES (10, 'missed')");
	wait_table(fx, "good2", "good");
	assert_true(failed_gauge(fx, "other") == 1);
	fx_pause_ms(4000);
	assert_int_equal(version_of(fx, "other"), version);

	/* An entity added at runtime whose table the role may not publish fails the same way. */
	cw_err_t err = {0};
	cw_entity_t later = {0};
	later.name = cw_xstrdup("later");
	later.source = cw_xstrdup("app");
	later.table = cw_xstrdup("public.later");
	later.status = CW_ENTITY_PENDING;
	later.version = 1;
	bool created = false;
	assert_int_equal(cw_entity_store_upsert(fx->hub, &later, &created, &err), 0);
	cw_entity_clear(&later);
	reason = wait_failed(fx, "later");
	assert_non_null(strstr(reason, "ALTER PUBLICATION \"iso_pub\" ADD TABLE \"public\".\"later\""));
	assert_non_null(strstr(reason, "as the owner of the publication and of table \"public\".\"later\""));
	free(reason);
	fx_sql(fx, "INSERT INTO good VALUES (11, 'still')");
	wait_table(fx, "good2", "good");

	/* The owner adds them back: each is rescanned, "other" in a new generation. */
	fx_sql(fx, "ALTER PUBLICATION iso_pub ADD TABLE other, later");
	int64_t took = wait_recovered(fx, "other");
	assert_true(took < RECHECK_MS);
	wait_recovered(fx, "later");
	wait_table(fx, "other", "other");
	wait_table(fx, "later", "later");
	assert_int_equal(version_of(fx, "other"), version + 1);
	assert_int_equal(version_of(fx, "later"), 1);
	fx_sql(fx, "INSERT INTO other VALUES (12, 'after')");
	wait_table(fx, "other", "other");
	assert_int_equal(fx->runner.runs, 0);
	fx_stop(fx);
	assert_int_equal(cw_entity_store_delete(fx->hub, "good2", &err), 0);
	assert_int_equal(cw_entity_store_delete(fx->hub, "other", &err), 0);
	assert_int_equal(cw_entity_store_delete(fx->hub, "later", &err), 0);
}

static void table_out_of_publication_while_stopped_is_rescanned(void **state)
{
	fx_t *fx = *state;
	fx_sql(fx, "CREATE TABLE downt (id int PRIMARY KEY, v text);"
	           "INSERT INTO downt VALUES (1, 'a'), (2, 'b')");
	fx_config(fx, "    slot: down_slot\n    publication: down_pub\n",
	          "  - {name: down, source: app, table: public.downt}\n", 100);
	fx_run(fx);
	wait_table(fx, "down", "downt");
	fx_sql(fx, "INSERT INTO downt VALUES (3, 'c')");
	wait_table(fx, "down", "downt");
	long long version = version_of(fx, "down");
	fx_stop(fx);
	/* While stopped the table leaves the publication and changes. */
	fx_sql(fx, "ALTER PUBLICATION down_pub DROP TABLE downt");
	fx_sql(fx, "INSERT INTO downt VALUES (4, 'unseen'); DELETE FROM downt WHERE id = 1");
	fx_run(fx);
	/*
	 * The source puts it back, but the changes in between were never sent:
	 * a new generation scans and sweeps them in.
	 */
	wait_table(fx, "down", "downt");
	assert_int_equal(version_of(fx, "down"), version + 1);
	fx_sql(fx, "UPDATE downt SET v = 'after' WHERE id = 2");
	wait_table(fx, "down", "downt");
	fx_stop(fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(missing_table_fails_alone),
		cmocka_unit_test(table_out_of_publication_fails_alone),
		cmocka_unit_test(table_out_of_publication_while_stopped_is_rescanned),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
