/*
 * Crash test of the SQLite target: a forked process applies the hub to its
 * cache and is killed with SIGKILL at random points while it works, 25
 * times, with new changes (full and partial upserts, deletes) written between
 * the kills. Afterwards a final run must leave the cache equal to the model:
 * no change lost, no deleted row back, no partial update merged twice into a
 * wrong state, and the cache's stored oplog id never moved backwards.
 */
#include "sqlite_harness.h"

#include <signal.h>
#include <sys/wait.h>

#define ROUNDS 25
#define SHARED_DOCS 1000       /* changed in every round */
#define ROUND_DOCS 300         /* changed in one round only, so a lost change stays visible */
#define DOCS (SHARED_DOCS + ROUNDS * ROUND_DOCS)

/* The process being killed: runs the target until it dies, retrying after errors. */
static void child_main(const char *url, const char *dir)
{
	cw_config_t *config = harness_config(url, "kill_target", dir, 200);
	cw_metrics_t *metrics = cw_metrics_new();
	cw_component_ctx_t ctx = {config, config->targets[0].name, NULL, 0, metrics, NULL};
	const cw_target_ops_t *ops = cw_target_ops_for(CW_TARGET_SQLITE);
	cw_err_t err = {0};
	void *target = ops->open(&ctx, &err);
	if (target == NULL)
		_exit(3);
	cw_cancel_t *cancel = cw_cancel_new();
	for (;;) {
		ops->run(target, cancel, &err);
		usleep(50000);
	}
}

/* The cache's stored oplog id, or -1 while it cannot be read. */
static long long cache_oplog_id(const char *dir)
{
	char *rows = harness_cache_rows(dir, "churn", "SELECT value FROM metadata WHERE key = 'oplog_id'");
	long long id = rows != NULL && rows[0] ? strtoll(rows, NULL, 10) : -1;
	free(rows);
	return id;
}

/*
 * Changes of one round: 1000 to the shared documents, 2000 to the round's
 * own ones (round -1: the shared ones only), in hub batches of 500.
 */
static void append_changes(cw_hub_t *hub, harness_model_t *m, int round)
{
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	size_t count = round < 0 ? 1000 : 3000;
	for (size_t n = 0; n < count; n++) {
		unsigned r = (unsigned)rand_r(&m->seed) % 100;
		size_t doc = n % 3 == 0 || round < 0
		           ? (size_t)rand_r(&m->seed) % SHARED_DOCS
		           : SHARED_DOCS + (size_t)round * ROUND_DOCS +
		             (size_t)rand_r(&m->seed) % ROUND_DOCS;
		harness_change(m, &batch, "churn", doc, r < 35 ? 0 : r < 80 ? 1 : 2, 1);
		if (batch.len == 500)
			harness_append(hub, &batch);
	}
	if (batch.len > 0)
		harness_append(hub, &batch);
	cw_change_batch_free(&batch);
}

static void killed_at_random_points_converges(void **state)
{
	(void)state;
	cw_testsrv_t srv;
	cw_err_t err = {0};
	char dir[64];
	snprintf(dir, sizeof dir, "/tmp/cw-sqlite-kill-XXXXXX");
	assert_non_null(mkdtemp(dir));
	assert_int_equal(cw_testpg_start(&srv), 0);
	cw_hub_t *hub = cw_hub_connect(srv.url, &err);
	assert_non_null(hub);
	assert_int_equal(cw_hub_migrate(hub, NULL, &err), 0);
	harness_entity(hub, "churn", HARNESS_COLUMNS);
	harness_model_t m;
	harness_model_init(&m, DOCS, 1234);
	unsigned seed = (unsigned)time(NULL);
	fprintf(stderr, "kill test seed %u\n", seed);
	long long last_seen = -1;
	int mid_apply = 0;
	for (int round = 0; round < ROUNDS; round++) {
		append_changes(hub, &m, round);
		long long before = cache_oplog_id(dir);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			child_main(srv.url, dir);
		/* Let it make some progress, then kill it after a random extra delay. */
		int64_t deadline = harness_now_ms() + WAIT_MS;
		long long now;
		while ((now = cache_oplog_id(dir)) <= before) {
			if (harness_now_ms() > deadline)
				fail_msg("round %d: the applying process made no progress", round);
			usleep(1000);
		}
		usleep((useconds_t)(rand_r(&seed) % 40000));
		assert_int_equal(kill(pid, SIGKILL), 0);
		int status = 0;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		long long after = cache_oplog_id(dir);
		if (after < last_seen)
			fail_msg("round %d: the cache's oplog id went back from %lld to %lld", round,
			         last_seen, after);
		last_seen = after;
		char *head = cw_testpg_query(srv.url, "SELECT max(id) FROM cachewarp.oplog");
		if (after < strtoll(head, NULL, 10))
			mid_apply++;
		free(head);
	}
	fprintf(stderr, "%d of %d kills landed before the process had caught up\n", mid_apply, ROUNDS);
	/* A last run, not killed, converges to the model. */
	harness_target_t *t = harness_target_start(srv.url, "kill_target", dir, 200, NULL);
	harness_wait_model(dir, "churn", &m);
	append_changes(hub, &m, -1);
	harness_wait_model(dir, "churn", &m);
	harness_target_stop(t);
	free(m.rows);
	cw_hub_close(hub);
	cw_testpg_stop(&srv);
	harness_rm_rf(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(killed_at_random_points_converges),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
