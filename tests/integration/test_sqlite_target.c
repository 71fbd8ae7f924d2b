/*
 * Integration tests of the SQLite cache target against a real hub: changes
 * are written into the oplog with the oplog writer, the target runs on a
 * thread as the daemon runs it, and each cache is read back through its own
 * read-only connection and compared with a model of the entity.
 */
#include "sqlite_harness.h"

#include "hub/consumers.h"

typedef struct fixture {
	cw_testsrv_t srv;
	cw_hub_t *hub;
	char dir[64];
} fixture_t;

static fixture_t *fx_global;

static int setup(void **state)
{
	fixture_t *fx = cw_xcalloc(1, sizeof *fx);
	cw_err_t err = {0};
	snprintf(fx->dir, sizeof fx->dir, "/tmp/cw-sqlite-XXXXXX");
	if (mkdtemp(fx->dir) == NULL || cw_testpg_start(&fx->srv) != 0)
		return -1;
	fx->hub = cw_hub_connect(fx->srv.url, &err);
	if (fx->hub == NULL || cw_hub_migrate(fx->hub, NULL, &err) != 0) {
		fprintf(stderr, "hub setup: %s\n", err.message);
		return -1;
	}
	fx_global = fx;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	fixture_t *fx = *state;
	cw_hub_close(fx->hub);
	cw_testpg_stop(&fx->srv);
	harness_rm_rf(fx->dir);
	free(fx);
	return 0;
}

static char *target_dir(const fixture_t *fx, const char *name)
{
	return cw_xasprintf("%s/%s", fx->dir, name);
}

static long long hub_int(fixture_t *fx, const char *sql)
{
	char *out = cw_testpg_query(fx->srv.url, sql);
	assert_non_null(out);
	long long value = strtoll(out, NULL, 10);
	free(out);
	return value;
}

/* Mixed changes: 40% full upserts, 45% partial ones, 15% deletes, in batches of 1000. */
static void mixed_changes(fixture_t *fx, harness_model_t *m, const char *entity, size_t count)
{
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	for (size_t n = 0; n < count; n++) {
		unsigned r = (unsigned)rand_r(&m->seed) % 100;
		harness_change(m, &batch, entity, (size_t)rand_r(&m->seed) % m->nrows,
		               r < 40 ? 0 : r < 85 ? 1 : 2, 1);
		if (batch.len == 1000)
			harness_append(fx->hub, &batch);
	}
	if (batch.len > 0)
		harness_append(fx->hub, &batch);
	cw_change_batch_free(&batch);
}

static void snapshot(fixture_t *fx, harness_model_t *m, const char *entity)
{
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	for (size_t i = 0; i < m->nrows; i++) {
		harness_change(m, &batch, entity, i, 0, 1);
		if (batch.len == 5000)
			harness_append(fx->hub, &batch);
	}
	if (batch.len > 0)
		harness_append(fx->hub, &batch);
	cw_change_batch_free(&batch);
}

static void wait_for(bool (*cond)(void *), void *arg, const char *what)
{
	int64_t deadline = harness_now_ms() + WAIT_MS;
	while (!cond(arg)) {
		if (harness_now_ms() > deadline)
			fail_msg("timed out waiting for %s", what);
		usleep(20000);
	}
}

static double metric(harness_target_t *t, const char *name, const char *labels)
{
	return cw_metrics_value(t->metrics, name, labels);
}

static void fifty_thousand_rows_and_mixed_changes_end_to_end(void **state)
{
	fixture_t *fx = *state;
	harness_model_t m;
	harness_model_init(&m, 50000, 42);
	harness_entity(fx->hub, "bulk", HARNESS_COLUMNS);
	snapshot(fx, &m, "bulk");
	char *dir = target_dir(fx, "bulk_target");
	const char *entities[] = {"bulk", NULL};
	harness_target_t *t = harness_target_start(fx->srv.url, "bulk_target", dir, 1000, entities);
	mixed_changes(fx, &m, "bulk", 20000);
	harness_wait_model(dir, "bulk", &m);

	/* Positions: the cache, metadata.sqlite and the hub's consumer all reach the head. */
	long long head = hub_int(fx, "SELECT max(id) FROM cachewarp.oplog WHERE entity = 'bulk'");
	char *want = cw_xasprintf("%lld\n", head);
	harness_wait_rows(dir, "bulk", "SELECT value FROM metadata WHERE key = 'oplog_id'", want);
	free(want);
	char *meta = cw_xasprintf("%s/metadata.sqlite", dir);
	assert_true(harness_exists(meta));
	free(meta);
	int64_t deadline = harness_now_ms() + WAIT_MS;
	while (hub_int(fx, "SELECT coalesce(max(position), -1) FROM cachewarp.consumers "
	                   "WHERE name = 'bulk_target@bulk'") != head) {
		assert_true(harness_now_ms() < deadline);
		usleep(50000);
	}
	cw_component_status_t status;
	t->ops->status(t->self, &status);
	assert_true(status.healthy);
	assert_int_equal(strtoll(status.position, NULL, 10), head);
	assert_true(metric(t, "cachewarp_apply_changes_total",
	                   "target=\"bulk_target\",entity=\"bulk\",op=\"delete\"") > 0);

	/* 1000 updates of one row committed in one hub batch: one write. */
	double writes = metric(t, "cachewarp_apply_writes_total",
	                       "target=\"bulk_target\",entity=\"bulk\"");
	double upserts = metric(t, "cachewarp_apply_changes_total",
	                        "target=\"bulk_target\",entity=\"bulk\",op=\"upsert\"");
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	for (int i = 0; i < 1000; i++)
		harness_change(&m, &batch, "bulk", 7, i == 0 ? 0 : 1, 1);
	harness_append(fx->hub, &batch);
	harness_wait_model(dir, "bulk", &m);
	deadline = harness_now_ms() + WAIT_MS;
	while (metric(t, "cachewarp_apply_changes_total",
	              "target=\"bulk_target\",entity=\"bulk\",op=\"upsert\"") < upserts + 1000) {
		assert_true(harness_now_ms() < deadline);
		usleep(20000);
	}
	assert_int_equal((int)(metric(t, "cachewarp_apply_writes_total",
	                              "target=\"bulk_target\",entity=\"bulk\"") - writes), 1);
	cw_change_batch_free(&batch);
	harness_target_stop(t);
	free(m.rows);
	free(dir);
}

typedef struct path_arg {
	const char *path;
	bool exists;
} path_arg_t;

static bool path_state(void *arg)
{
	path_arg_t *p = arg;
	return harness_exists(p->path) == p->exists;
}

static void entity_created_later_then_deleted(void **state)
{
	fixture_t *fx = *state;
	char *dir = target_dir(fx, "life_target");
	const char *entities[] = {"late", NULL};
	harness_target_t *t = harness_target_start(fx->srv.url, "life_target", dir, 1000, entities);
	/* The entity does not exist when the target starts. */
	harness_model_t m;
	harness_model_init(&m, 300, 7);
	harness_entity(fx->hub, "late", HARNESS_COLUMNS);
	snapshot(fx, &m, "late");
	mixed_changes(fx, &m, "late", 500);
	harness_wait_model(dir, "late", &m);
	char *entity_dir = cw_xasprintf("%s/late", dir);
	cw_err_t err = {0};
	assert_int_equal(cw_entity_store_delete(fx->hub, "late", &err), 0);
	path_arg_t gone = {entity_dir, false};
	wait_for(path_state, &gone, "the deleted entity's directory to go");
	harness_target_stop(t);
	free(entity_dir);
	free(m.rows);
	free(dir);
}

static void deleted_cache_directory_is_recreated_while_others_flow(void **state)
{
	fixture_t *fx = *state;
	char *dir = target_dir(fx, "rm_target");
	harness_model_t gone, steady;
	harness_model_init(&gone, 2000, 3);
	harness_model_init(&steady, 2000, 4);
	harness_entity(fx->hub, "gone", HARNESS_COLUMNS);
	harness_entity(fx->hub, "steady", HARNESS_COLUMNS);
	snapshot(fx, &gone, "gone");
	snapshot(fx, &steady, "steady");
	const char *entities[] = {"gone", "steady", NULL};
	harness_target_t *t = harness_target_start(fx->srv.url, "rm_target", dir, 500, entities);
	harness_wait_model(dir, "gone", &gone);
	harness_wait_model(dir, "steady", &steady);
	char *entity_dir = cw_xasprintf("%s/gone", dir);
	harness_rm_rf(entity_dir);
	assert_false(harness_exists(entity_dir));
	mixed_changes(fx, &steady, "steady", 3000);
	harness_wait_model(dir, "gone", &gone);
	harness_wait_model(dir, "steady", &steady);
	/* And the replayed cache keeps following new changes. */
	mixed_changes(fx, &gone, "gone", 1000);
	harness_wait_model(dir, "gone", &gone);
	harness_target_stop(t);
	free(entity_dir);
	free(gone.rows);
	free(steady.rows);
	free(dir);
}

/* Checkpoints the WAL into the file (as an operator's tool could) and overwrites its middle. */
static void corrupt_cache(const char *path)
{
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	/* A statement first: a connection opens the WAL only when it reads. */
	assert_int_equal(sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL),
	                 SQLITE_OK);
	sqlite3_close(db);
	FILE *f = fopen(path, "r+b");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	long size = ftell(f);
	assert_true(size > 65536 * 2);
	char junk[65536];
	memset(junk, 0x5A, sizeof junk);
	assert_int_equal(fseek(f, size / 2 - (long)sizeof junk / 2, SEEK_SET), 0);
	assert_int_equal(fwrite(junk, 1, sizeof junk, f), sizeof junk);
	fclose(f);
}

static size_t corrupt_copies(const char *entity_dir)
{
	char *cmd = cw_xasprintf("ls %s | grep -c 'db.sqlite.corrupt-[0-9]*$' || true", entity_dir);
	FILE *p = popen(cmd, "r");
	size_t n = 0;
	assert_non_null(p);
	assert_int_equal(fscanf(p, "%zu", &n), 1);
	pclose(p);
	free(cmd);
	return n;
}

typedef struct idle_arg {
	harness_target_t *t;
} idle_arg_t;

static bool no_open_caches(void *arg)
{
	idle_arg_t *a = arg;
	return metric(a->t, "cachewarp_sqlite_open_caches", "target=\"corrupt_target\"") == 0 &&
	       metric(a->t, "cachewarp_apply_changes_total",
	              "target=\"corrupt_target\",entity=\"fragile\",op=\"upsert\"") > 0;
}

static void corrupt_cache_is_recreated_and_equal(void **state)
{
	fixture_t *fx = *state;
	char *dir = target_dir(fx, "corrupt_target");
	harness_model_t m;
	harness_model_init(&m, 8000, 9);
	harness_entity(fx->hub, "fragile", HARNESS_COLUMNS);
	snapshot(fx, &m, "fragile");
	mixed_changes(fx, &m, "fragile", 2000);
	const char *entities[] = {"fragile", NULL};
	harness_target_t *t = harness_target_start(fx->srv.url, "corrupt_target", dir, 1000, entities);
	harness_wait_model(dir, "fragile", &m);
	char *entity_dir = cw_xasprintf("%s/fragile", dir);
	char *path = cw_xasprintf("%s/db.sqlite", entity_dir);

	/* Damaged while the target is stopped: found by quick_check when it starts. */
	harness_target_stop(t);
	corrupt_cache(path);
	char *sql = cw_xasprintf(HARNESS_SELECT, "fragile");
	char *rows = harness_cache_rows(dir, "fragile", sql);
	char *want = harness_model_rows(&m);
	assert_true(rows == NULL || strcmp(rows, want) != 0);   /* the damage is real */
	free(rows);
	t = harness_target_start(fx->srv.url, "corrupt_target", dir, 1000, entities);
	harness_wait_model(dir, "fragile", &m);
	assert_int_equal(corrupt_copies(entity_dir), 1);

	/* Damaged while running, once its idle connection was closed: found when reopened. */
	mixed_changes(fx, &m, "fragile", 100);
	harness_wait_model(dir, "fragile", &m);
	idle_arg_t idle = {t};
	wait_for(no_open_caches, &idle, "the idle cache to be closed");
	corrupt_cache(path);
	mixed_changes(fx, &m, "fragile", 100);
	harness_wait_model(dir, "fragile", &m);
	assert_int_equal(corrupt_copies(entity_dir), 2);
	harness_target_stop(t);
	free(want);
	free(sql);
	free(path);
	free(entity_dir);
	free(m.rows);
	free(dir);
}

/*
 * A cache that starts empty and then receives several pages at once: the
 * first global page finds it behind and hands it to a replay; the replay
 * catches up with the global position on its first page. The pages the
 * global loop skipped meanwhile must still reach the cache (they once did
 * not: the replay stopped as soon as the cache looked caught up).
 */
static void replay_that_catches_up_loses_no_page(void **state)
{
	fixture_t *fx = *state;
	char *dir = target_dir(fx, "pages_target");
	const char *entities[] = {"pages", NULL};
	harness_entity(fx->hub, "pages", HARNESS_COLUMNS);
	harness_target_t *t = harness_target_start(fx->srv.url, "pages_target", dir, 2, entities);
	char *path = cw_xasprintf("%s/pages/db.sqlite", dir);
	path_arg_t created = {path, true};
	wait_for(path_state, &created, "the empty cache to be created");
	usleep(300000);   /* let the target find nothing to replay and wait for changes */
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	char want[256] = "";
	for (int i = 1; i <= 7; i++) {
		char id[16], data[64];
		snprintf(id, sizeof id, "d%d", i);
		snprintf(data, sizeof data, "{\"title\": \"t%d\"}", i);
		harness_push(&batch, CW_OP_UPSERT, "pages", id, data, 1);
		snprintf(want + strlen(want), sizeof want - strlen(want), "%s\n", id);
	}
	harness_append(fx->hub, &batch);   /* one commit: every page is visible at once */
	harness_wait_rows(dir, "pages", "SELECT id FROM pages ORDER BY id", want);
	harness_target_stop(t);
	cw_change_batch_free(&batch);
	free(path);
	free(dir);
}

static void sweep_removes_rows_of_older_generations(void **state)
{
	fixture_t *fx = *state;
	char *dir = target_dir(fx, "sweep_target");
	harness_model_t m;
	harness_model_init(&m, 400, 11);
	harness_entity(fx->hub, "gens", HARNESS_COLUMNS);
	snapshot(fx, &m, "gens");
	const char *entities[] = {"gens", NULL};
	harness_target_t *t = harness_target_start(fx->srv.url, "sweep_target", dir, 1000, entities);
	harness_wait_model(dir, "gens", &m);
	/* Generation 2 scans only the even documents, then sweeps. */
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	for (size_t i = 0; i < m.nrows; i += 2)
		harness_change(&m, &batch, "gens", i, 0, 2);
	harness_push(&batch, CW_OP_SWEEP, "gens", NULL, NULL, 2);
	harness_change(&m, &batch, "gens", 1, 0, 2);   /* a live change after the sweep stays */
	harness_append(fx->hub, &batch);
	for (size_t i = 3; i < m.nrows; i += 2)
		memset(&m.rows[i], 0, sizeof m.rows[i]);
	harness_wait_model(dir, "gens", &m);
	harness_wait_rows(dir, "gens", "SELECT DISTINCT _version FROM gens", "2\n");
	cw_change_batch_free(&batch);
	harness_target_stop(t);
	free(m.rows);
	free(dir);
}

static bool retried_twice(void *arg)
{
	return harness_target_errors(arg) >= 2;
}

static void hub_outage_backs_off_and_catches_up(void **state)
{
	fixture_t *fx = *state;
	char *dir = target_dir(fx, "outage_target");
	harness_model_t m;
	harness_model_init(&m, 1000, 13);
	harness_entity(fx->hub, "flaky", HARNESS_COLUMNS);
	snapshot(fx, &m, "flaky");
	const char *entities[] = {"flaky", NULL};
	harness_target_t *t = harness_target_start(fx->srv.url, "outage_target", dir, 1000, entities);
	harness_wait_model(dir, "flaky", &m);
	/* The hub refuses connections and drops the open ones. */
	char *admin = cw_xasprintf("%.*s/template1", (int)(strrchr(fx->srv.url, '/') - fx->srv.url),
	                           fx->srv.url);
	char *out = cw_testpg_query(admin, "ALTER DATABASE postgres WITH ALLOW_CONNECTIONS false; "
	                            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
	                            "WHERE datname = 'postgres'");
	assert_non_null(out);
	free(out);
	wait_for(retried_twice, t, "the target to fail and retry");
	cw_component_status_t status;
	t->ops->status(t->self, &status);
	assert_false(status.healthy);
	assert_true(status.last_error[0] != '\0');
	/* The cache stays readable and consistent meanwhile. */
	char *want = harness_model_rows(&m);
	char *sql = cw_xasprintf(HARNESS_SELECT, "flaky");
	char *rows = harness_cache_rows(dir, "flaky", sql);
	assert_non_null(rows);
	assert_string_equal(rows, want);
	out = cw_testpg_query(admin, "ALTER DATABASE postgres WITH ALLOW_CONNECTIONS true");
	assert_non_null(out);
	free(out);
	cw_hub_close(fx->hub);
	cw_err_t err = {0};
	fx->hub = cw_hub_connect(fx->srv.url, &err);
	assert_non_null(fx->hub);
	mixed_changes(fx, &m, "flaky", 2000);
	harness_wait_model(dir, "flaky", &m);
	t->ops->status(t->self, &status);
	harness_target_stop(t);
	free(rows);
	free(sql);
	free(want);
	free(admin);
	free(m.rows);
	free(dir);
}

/* How many lines of the file at path hold text. */
static int count_lines_with(const char *path, const char *text)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char line[4096];
	int n = 0;
	while (fgets(line, sizeof line, f) != NULL)
		n += strstr(line, text) != NULL;
	fclose(f);
	return n;
}

/*
 * On an idle hub the target stays quiet: an entity whose cache is behind
 * only because other entities' rows moved the position has nothing to
 * replay, so no "entity replayed" line comes every second; only a replay
 * that moved changes is logged, with how many.
 */
static void idle_hub_logs_no_replays(void **state)
{
	fixture_t *fx = *state;
	char *dir = target_dir(fx, "quiet_target");
	char log_path[] = "/tmp/cw-quiet-log-XXXXXX";
	int log_fd = mkstemp(log_path);
	assert_true(log_fd >= 0);
	cw_log_setup(CW_LOG_INFO, CW_LOG_FORMAT_JSON, log_fd);
	const char *entities[] = {"quiet_busy", "quiet_idle", "quiet_empty", NULL};
	harness_entity(fx->hub, "quiet_busy", HARNESS_COLUMNS);
	harness_entity(fx->hub, "quiet_idle", HARNESS_COLUMNS);
	harness_entity(fx->hub, "quiet_empty", HARNESS_COLUMNS);   /* never gets a row */
	harness_model_t busy, idle;
	harness_model_init(&busy, 50, 3);
	harness_model_init(&idle, 20, 4);
	snapshot(fx, &idle, "quiet_idle");
	snapshot(fx, &busy, "quiet_busy");
	harness_target_t *t = harness_target_start(fx->srv.url, "quiet_target", dir, 1000, entities);
	harness_wait_model(dir, "quiet_idle", &idle);
	harness_wait_model(dir, "quiet_busy", &busy);
	/* Only the busy entity gets rows now: the idle one's cache falls behind the position. */
	mixed_changes(fx, &busy, "quiet_busy", 200);
	harness_wait_model(dir, "quiet_busy", &busy);
	int before = count_lines_with(log_path, "entity replayed");
	/* The empty entity's replay at start moved nothing, so said nothing. */
	assert_int_equal(count_lines_with(log_path, "\"entity\":\"quiet_empty\""), 0);
	usleep(3500 * 1000);   /* three and a half housekeeping rounds, nothing written */
	int idle_lines = count_lines_with(log_path, "entity replayed") - before;
	harness_target_stop(t);
	cw_log_setup(CW_LOG_INFO, CW_LOG_FORMAT_AUTO, 2);
	close(log_fd);
	if (idle_lines != 0)
		fail_msg("%d \"entity replayed\" lines on an idle hub (log in %s)", idle_lines, log_path);
	unlink(log_path);
	free(busy.rows);
	free(idle.rows);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fifty_thousand_rows_and_mixed_changes_end_to_end),
		cmocka_unit_test(entity_created_later_then_deleted),
		cmocka_unit_test(deleted_cache_directory_is_recreated_while_others_flow),
		cmocka_unit_test(corrupt_cache_is_recreated_and_equal),
		cmocka_unit_test(replay_that_catches_up_loses_no_page),
		cmocka_unit_test(sweep_removes_rows_of_older_generations),
		cmocka_unit_test(idle_hub_logs_no_replays),
		cmocka_unit_test(hub_outage_backs_off_and_catches_up),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
