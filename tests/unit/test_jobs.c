/* Unit tests of the job server: backoff after failures, the shared circuit breaker, cancellation. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "control/jobs.h"
#include "core/log.h"

#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_RUNS 16

typedef struct probe {
	const cw_clock_t *clock;
	int fail_first;          /* runs that fail before the first success; -1 = always fail */
	int stop_after;          /* fire the cancellation token on this run */
	int runs;
	int64_t at_ms[MAX_RUNS];
	int code;                /* the failures' code; 0 = CW_EDB */
	cw_cancel_t *fired;      /* atomic: the job's own token, once the probe fired it */
} probe_t;

/* Waits until a job fired its own token (it then stops running). */
static void wait_fired(cw_cancel_t **slot)
{
	while (__atomic_load_n(slot, __ATOMIC_SEQ_CST) == NULL)
		usleep(1000);
}

static int probe_job(void *arg, cw_cancel_t *cancel, cw_err_t *err)
{
	probe_t *p = arg;
	if (p->runs < MAX_RUNS)
		p->at_ms[p->runs] = cw_clock_now_ms(p->clock);
	p->runs++;
	if (p->runs >= p->stop_after) {
		cw_cancel_fire(cancel);
		__atomic_store_n(&p->fired, cancel, __ATOMIC_SEQ_CST);
	}
	if (p->fail_first < 0 || p->runs <= p->fail_first)
		return cw_err_set(err, p->code ? p->code : CW_EDB, "probe", "hub unreachable (run %d)",
		                  p->runs);
	return 0;
}

static cw_jobs_opts_t fake_opts(cw_fake_clock_t *fake)
{
	cw_jobs_opts_t opts = {cw_fake_clock_clock(fake), {100, 1000, 2.0, 0, 0.5}, 3, 10000, 42};
	return opts;
}

static void failed_runs_back_off_then_the_interval_resumes(void **state)
{
	(void)state;
	cw_fake_clock_t fake;
	cw_fake_clock_init(&fake, 0, 0);
	probe_t p = {cw_fake_clock_clock(&fake), 3, 6, 0, {0}, 0, NULL};
	cw_jobs_opts_t opts = fake_opts(&fake);
	opts.breaker_threshold = 100;
	cw_jobs_t *jobs = cw_jobs_new(&opts);
	cw_job_spec_t spec = {"probe", "hub", 5000, probe_job, &p, 0};
	assert_int_equal(cw_jobs_add(jobs, &spec, NULL), 0);
	assert_int_equal(cw_jobs_start(jobs, NULL), 0);
	wait_fired(&p.fired);                                    /* the probe cancels itself on run 6 */
	assert_int_equal(cw_jobs_stop(jobs, 5000, NULL), 0);
	assert_int_equal(p.runs, 6);
	/* Equal jitter 0.5: each delay is in [base/2, base], base doubling from 100ms. */
	int64_t base = 100;
	for (int i = 1; i <= 3; i++, base *= 2) {
		int64_t gap = p.at_ms[i] - p.at_ms[i - 1];
		assert_in_range(gap, base / 2, base);
	}
	/* Run 4 succeeded: the next runs come at the interval, and the backoff starts over. */
	assert_int_equal(p.at_ms[4] - p.at_ms[3], 5000);
	assert_int_equal(p.at_ms[5] - p.at_ms[4], 5000);
	cw_job_status_t status[2];
	assert_int_equal(cw_jobs_snapshot(jobs, status, 2), 1);
	assert_string_equal(status[0].name, "probe");
	assert_int_equal(status[0].failures, 3);
	assert_int_equal(status[0].consecutive_failures, 0);
	assert_string_equal(status[0].last_error, "");
	cw_jobs_free(jobs);
	cw_fake_clock_destroy(&fake);
}

/* A job's own schedule replaces the backoff: 1 s, 5 s, 15 s, then the last delay again. */
static void a_retry_schedule_replaces_the_backoff(void **state)
{
	(void)state;
	cw_fake_clock_t fake;
	cw_fake_clock_init(&fake, 0, 0);
	probe_t p = {cw_fake_clock_clock(&fake), -1, 6, 0, {0}, 0, NULL};
	cw_jobs_opts_t opts = fake_opts(&fake);
	opts.breaker_threshold = 100;
	cw_jobs_t *jobs = cw_jobs_new(&opts);
	cw_job_spec_t spec = {"apply:backup", "target:backup", 5000, probe_job, &p, 0};
	static const int64_t schedule[] = {1000, 5000, 15000};
	assert_int_equal(cw_jobs_add(jobs, &spec, NULL), 0);
	assert_int_equal(cw_jobs_set_retry_schedule(jobs, "nosuch", schedule, 3, NULL), CW_ENOTFOUND);
	assert_int_equal(cw_jobs_set_retry_schedule(jobs, "apply:backup", schedule, 0, NULL), CW_EINVAL);
	assert_int_equal(cw_jobs_set_retry_schedule(jobs, "apply:backup", schedule, 3, NULL), 0);
	assert_int_equal(cw_jobs_start(jobs, NULL), 0);
	wait_fired(&p.fired);
	assert_int_equal(cw_jobs_stop(jobs, 5000, NULL), 0);
	assert_int_equal(p.runs, 6);
	/* Equal jitter 0.5: each delay in [base/2, base]; the last one repeats. */
	static const int64_t base[] = {1000, 5000, 15000, 15000, 15000};
	for (int i = 1; i < 6; i++)
		assert_in_range(p.at_ms[i] - p.at_ms[i - 1], base[i - 1] / 2, base[i - 1]);
	cw_jobs_free(jobs);
	cw_fake_clock_destroy(&fake);
}

/* An error a person must fix is checked again every 30 s, without a fast backoff. */
static void an_error_needing_a_fix_is_checked_every_30_s(void **state)
{
	(void)state;
	cw_fake_clock_t fake;
	cw_fake_clock_init(&fake, 0, 0);
	probe_t p = {cw_fake_clock_clock(&fake), -1, 4, 0, {0}, CW_EINVAL, NULL};
	cw_jobs_opts_t opts = fake_opts(&fake);
	opts.breaker_threshold = 100;
	cw_jobs_t *jobs = cw_jobs_new(&opts);
	cw_job_spec_t spec = {"probe", "source:app", 5000, probe_job, &p, 0};
	assert_int_equal(cw_jobs_add(jobs, &spec, NULL), 0);
	assert_int_equal(cw_jobs_start(jobs, NULL), 0);
	wait_fired(&p.fired);
	assert_int_equal(cw_jobs_stop(jobs, 5000, NULL), 0);
	assert_int_equal(p.runs, 4);
	for (int i = 1; i < 4; i++)
		assert_int_equal(p.at_ms[i] - p.at_ms[i - 1], CW_JOBS_FIX_RECHECK_MS);
	cw_jobs_free(jobs);
	cw_fake_clock_destroy(&fake);
}

static void breaker_opens_after_threshold_and_half_opens_after_cool_down(void **state)
{
	(void)state;
	cw_fake_clock_t fake;
	cw_fake_clock_init(&fake, 0, 0);
	probe_t p = {cw_fake_clock_clock(&fake), -1, 6, 0, {0}, 0, NULL};
	cw_jobs_opts_t opts = fake_opts(&fake);
	cw_jobs_t *jobs = cw_jobs_new(&opts);
	cw_job_spec_t spec = {"probe", "hub", 5000, probe_job, &p, 0};
	assert_int_equal(cw_jobs_add(jobs, &spec, NULL), 0);
	assert_int_equal(cw_jobs_start(jobs, NULL), 0);
	wait_fired(&p.fired);
	assert_int_equal(cw_jobs_stop(jobs, 5000, NULL), 0);
	assert_int_equal(p.runs, 6);
	/* Runs 1-3 fail inside the backoff; the third opens the breaker for 10s. */
	assert_true(p.at_ms[2] - p.at_ms[0] < 1000);
	assert_true(p.at_ms[3] - p.at_ms[2] >= 10000);
	/* Run 4 is the half-open trial; it fails, so the breaker opens again. */
	assert_true(p.at_ms[4] - p.at_ms[3] >= 10000);
	assert_true(p.at_ms[5] - p.at_ms[4] >= 10000);
	cw_job_status_t status;
	cw_jobs_snapshot(jobs, &status, 1);
	assert_string_equal(status.breaker, "open");
	assert_int_equal(status.consecutive_failures, 6);
	assert_non_null(strstr(status.last_error, "hub unreachable (run 6)"));
	cw_jobs_free(jobs);
	cw_fake_clock_destroy(&fake);
}

typedef struct streamer {
	cw_fake_clock_t *fake;
	int runs;
	cw_job_status_t seen[3];   /* the status before each run */
	cw_jobs_t *jobs;
	cw_cancel_t *fired;        /* atomic: its token, once fired */
} streamer_t;

/* Streams for 20 s (fake time), then loses its connection; cancels itself on run 3. */
static int streams_then_fails(void *arg, cw_cancel_t *cancel, cw_err_t *err)
{
	streamer_t *s = arg;
	cw_jobs_snapshot(s->jobs, &s->seen[s->runs], 1);
	cw_fake_clock_advance(s->fake, 20000);
	if (++s->runs == 3) {
		cw_cancel_fire(cancel);
		__atomic_store_n(&s->fired, cancel, __ATOMIC_SEQ_CST);
	}
	return cw_err_set(err, CW_EDB, "probe", "connection lost");
}

static void a_failure_after_a_long_run_starts_a_new_streak(void **state)
{
	(void)state;
	cw_fake_clock_t fake;
	cw_fake_clock_init(&fake, 1000, 0);
	cw_jobs_opts_t opts = fake_opts(&fake);
	cw_jobs_t *jobs = cw_jobs_new(&opts);
	streamer_t s;
	memset(&s, 0, sizeof s);
	s.fake = &fake;
	s.jobs = jobs;
	cw_job_spec_t spec = {"capture:shop", "source:shop", 1000, streams_then_fails, &s, 0};
	assert_int_equal(cw_jobs_add(jobs, &spec, NULL), 0);
	assert_int_equal(cw_jobs_start(jobs, NULL), 0);
	wait_fired(&s.fired);
	assert_int_equal(cw_jobs_stop(jobs, 5000, NULL), 0);
	/* Each failure came after 20 s of work: the streak is always one failure long. */
	assert_int_equal(s.seen[1].consecutive_failures, 1);
	assert_int_equal(s.seen[2].consecutive_failures, 1);
	assert_true(s.seen[2].failing_since_ms > s.seen[1].failing_since_ms);
	assert_string_equal(s.seen[2].breaker, "closed");
	/* Each run counts once, also when a long run first counts as a success. */
	assert_int_equal(s.seen[1].runs, 2);
	assert_int_equal(s.seen[2].runs, 3);
	cw_jobs_free(jobs);
	cw_fake_clock_destroy(&fake);
}

static int waits_for_cancel(void *arg, cw_cancel_t *cancel, cw_err_t *err)
{
	int *started = arg;
	__atomic_store_n(started, 1, __ATOMIC_SEQ_CST);
	return cw_cancel_wait_ms(cancel, -1);
}

static void stop_cancels_a_running_job_and_does_not_count_it_as_failed(void **state)
{
	(void)state;
	cw_jobs_opts_t opts = {NULL, {100, 1000, 2.0, 0, 0.5}, 0, 0, 1};
	cw_jobs_t *jobs = cw_jobs_new(&opts);
	int started = 0;
	cw_job_spec_t spec = {"long_scan", "source:shop", 1000, waits_for_cancel, &started, 0};
	assert_int_equal(cw_jobs_add(jobs, &spec, NULL), 0);
	assert_int_equal(cw_jobs_start(jobs, NULL), 0);
	while (!__atomic_load_n(&started, __ATOMIC_SEQ_CST))
		usleep(1000);
	assert_int_equal(cw_jobs_stop(jobs, 5000, NULL), 0);
	assert_true(cw_cancel_is_set(cw_jobs_cancel(jobs)));
	cw_job_status_t status;
	cw_jobs_snapshot(jobs, &status, 1);
	assert_int_equal(status.failures, 0);
	assert_int_equal(status.runs, 1);   /* it ran, once */
	assert_int_equal(cw_jobs_stop(jobs, 5000, NULL), 0);   /* twice is harmless */
	cw_jobs_free(jobs);
}

typedef struct long_run {
	int started;               /* atomic: the run has begun */
} long_run_t;

static int runs_until_cancelled(void *arg, cw_cancel_t *cancel, cw_err_t *err)
{
	long_run_t *r = arg;
	__atomic_store_n(&r->started, 1, __ATOMIC_SEQ_CST);
	while (!cw_cancel_is_set(cancel))
		usleep(1000);
	return CW_ECANCELED;
}

/*
 * A job whose run lasts (a source streaming, a target applying) shows in its
 * status while it runs: one run, and a last success of "now" once it has
 * worked for CW_JOBS_HEALTHY_RUN_MS, not runs 0 and never a success.
 */
static void a_long_run_counts_while_it_runs(void **state)
{
	(void)state;
	cw_fake_clock_t fake;
	cw_fake_clock_init(&fake, 1000, 1700000000000000);
	cw_jobs_opts_t opts = fake_opts(&fake);
	cw_jobs_t *jobs = cw_jobs_new(&opts);
	long_run_t r = {0};
	cw_job_spec_t spec = {"apply:local", "target:local", 1000, runs_until_cancelled, &r, 0};
	assert_int_equal(cw_jobs_add(jobs, &spec, NULL), 0);
	assert_int_equal(cw_jobs_start(jobs, NULL), 0);
	while (!__atomic_load_n(&r.started, __ATOMIC_SEQ_CST))
		usleep(1000);
	cw_job_status_t status;
	cw_jobs_snapshot(jobs, &status, 1);
	assert_int_equal(status.runs, 1);
	assert_int_equal(status.last_success_us, 0);   /* too early to tell */
	cw_fake_clock_advance(&fake, CW_JOBS_HEALTHY_RUN_MS);
	cw_jobs_snapshot(jobs, &status, 1);
	assert_int_equal(status.runs, 1);
	assert_int_equal(status.failures, 0);
	assert_int_equal(status.last_success_us,
	                 1700000000000000 + (int64_t)CW_JOBS_HEALTHY_RUN_MS * 1000);
	assert_int_equal(cw_jobs_stop(jobs, 5000, NULL), 0);
	cw_jobs_free(jobs);
	cw_fake_clock_destroy(&fake);
}

static int ignore_cancel_done;

static int ignores_cancel(void *arg, cw_cancel_t *cancel, cw_err_t *err)
{
	int *started = arg;
	__atomic_store_n(started, 1, __ATOMIC_SEQ_CST);
	struct timespec pause = {0, 400 * 1000000L};
	nanosleep(&pause, NULL);
	__atomic_store_n(&ignore_cancel_done, 1, __ATOMIC_SEQ_CST);
	return 0;
}

/* The server a job outlived: kept reachable so the leak checker does not report it. */
static cw_jobs_t *abandoned_server;

static void stop_gives_up_after_the_grace_period_and_names_the_job(void **state)
{
	(void)state;
	cw_jobs_opts_t opts = {NULL, {100, 1000, 2.0, 0, 0.5}, 0, 0, 1};
	abandoned_server = cw_jobs_new(&opts);
	int started = 0;
	cw_job_spec_t spec = {"stubborn", NULL, 1000, ignores_cancel, &started, 0};
	assert_int_equal(cw_jobs_add(abandoned_server, &spec, NULL), 0);
	assert_int_equal(cw_jobs_start(abandoned_server, NULL), 0);
	while (!__atomic_load_n(&started, __ATOMIC_SEQ_CST))
		usleep(1000);
	cw_err_t err = {0};
	assert_int_equal(cw_jobs_stop(abandoned_server, 50, &err), CW_ETIMEDOUT);
	assert_non_null(strstr(err.message, "stubborn"));
	cw_jobs_free(abandoned_server);   /* refuses to free under a live thread */
	while (!__atomic_load_n(&ignore_cancel_done, __ATOMIC_SEQ_CST))
		usleep(1000);
	usleep(20000);                    /* let the thread see the token and return */
}

static int noop_job(void *arg, cw_cancel_t *cancel, cw_err_t *err)
{
	return 0;
}

typedef struct stage_probe {
	int *sequence;            /* shared counter: the order in which jobs returned */
	int *started;             /* shared counter: jobs running */
	int returned_as;
	int linger_ms;            /* keeps running this long after the token fired */
} stage_probe_t;

static int stage_job(void *arg, cw_cancel_t *cancel, cw_err_t *err)
{
	stage_probe_t *p = arg;
	__atomic_add_fetch(p->started, 1, __ATOMIC_SEQ_CST);
	cw_cancel_wait_ms(cancel, -1);
	struct timespec pause = {0, p->linger_ms * 1000000L};
	nanosleep(&pause, NULL);
	p->returned_as = __atomic_add_fetch(p->sequence, 1, __ATOMIC_SEQ_CST);
	return CW_ECANCELED;
}

static void stop_cancels_stage_by_stage(void **state)
{
	(void)state;
	cw_jobs_opts_t opts = {NULL, {100, 1000, 2.0, 0, 0.5}, 0, 0, 1};
	cw_jobs_t *jobs = cw_jobs_new(&opts);
	int sequence = 0, started = 0;
	/* The source lingers after its token fires; the target must not be cancelled before it returned. */
	stage_probe_t control = {&sequence, &started, 0, 0}, target = {&sequence, &started, 0, 0},
	              source = {&sequence, &started, 0, 200};
	cw_job_spec_t specs[] = {
		{"consumer_liveness", NULL, 1000, stage_job, &control, 2},
		{"apply:local", NULL, 1000, stage_job, &target, 1},
		{"capture:shop", NULL, 1000, stage_job, &source, 0},
	};
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(cw_jobs_add(jobs, &specs[i], NULL), 0);
	cw_job_spec_t bad = {"x", NULL, 1000, stage_job, &control, CW_JOBS_STAGES};
	assert_int_equal(cw_jobs_add(jobs, &bad, NULL), CW_EINVAL);
	assert_int_equal(cw_jobs_start(jobs, NULL), 0);
	while (__atomic_load_n(&started, __ATOMIC_SEQ_CST) < 3)
		usleep(1000);
	assert_int_equal(cw_jobs_stop(jobs, 5000, NULL), 0);
	assert_int_equal(source.returned_as, 1);
	assert_int_equal(target.returned_as, 2);
	assert_int_equal(control.returned_as, 3);
	cw_jobs_free(jobs);
}

static void bad_specs_are_rejected(void **state)
{
	(void)state;
	cw_jobs_opts_t opts = {NULL, {100, 1000, 2.0, 0, 0.5}, 0, 0, 1};
	cw_jobs_t *jobs = cw_jobs_new(&opts);
	cw_err_t err = {0};
	cw_job_spec_t no_interval = {"a", NULL, 0, noop_job, NULL, 0};
	assert_int_equal(cw_jobs_add(jobs, &no_interval, &err), CW_EINVAL);
	cw_job_spec_t no_fn = {"a", NULL, 10, NULL, NULL, 0};
	assert_int_equal(cw_jobs_add(jobs, &no_fn, &err), CW_EINVAL);
	cw_job_spec_t ok = {"a", NULL, 100000, noop_job, NULL, 0};
	assert_int_equal(cw_jobs_add(jobs, &ok, &err), 0);
	assert_int_equal(cw_jobs_add(jobs, &ok, &err), CW_EINVAL);
	assert_non_null(strstr(err.message, "added twice"));
	assert_int_equal(cw_jobs_start(jobs, &err), 0);
	assert_int_equal(cw_jobs_stop(jobs, 5000, &err), 0);
	cw_job_spec_t late = {"b", NULL, 100, noop_job, NULL, 0};
	assert_int_equal(cw_jobs_add(jobs, &late, &err), CW_ECONFLICT);
	cw_jobs_free(jobs);
}

typedef struct counting {
	int runs;                  /* atomic */
	int returned;              /* atomic: a run returned after its token fired */
} counting_t;

static int counts_until_cancelled(void *arg, cw_cancel_t *cancel, cw_err_t *err)
{
	counting_t *c = arg;
	__atomic_add_fetch(&c->runs, 1, __ATOMIC_SEQ_CST);
	int rc = cw_cancel_wait_ms(cancel, -1);
	__atomic_store_n(&c->returned, 1, __ATOMIC_SEQ_CST);
	return rc;
}

static bool snapshot_has(cw_jobs_t *jobs, const char *name)
{
	cw_job_status_t status[8];
	size_t n = cw_jobs_snapshot(jobs, status, 8);
	for (size_t i = 0; i < n && i < 8; i++)
		if (strcmp(status[i].name, name) == 0)
			return true;
	return false;
}

/*
 * A reload adds a target while the server runs: its job starts at once.
 * Removing a source stops it alone: its run is cancelled and joined, the
 * other jobs keep running, and its name may be added again.
 */
static void jobs_are_added_and_removed_while_running(void **state)
{
	(void)state;
	cw_jobs_opts_t opts = {NULL, {100, 1000, 2.0, 0, 0.5}, 0, 0, 1};
	cw_jobs_t *jobs = cw_jobs_new(&opts);
	counting_t source = {0}, target = {0}, again = {0};
	cw_job_spec_t first = {"capture:shop", "source:shop", 1000, counts_until_cancelled, &source, 0};
	assert_int_equal(cw_jobs_add(jobs, &first, NULL), 0);
	assert_int_equal(cw_jobs_start(jobs, NULL), 0);
	static const int64_t schedule[] = {1000, 5000};
	cw_job_spec_t added = {"apply:local", "target:local", 1000, counts_until_cancelled, &target, 1};
	assert_int_equal(cw_jobs_add(jobs, &added, NULL), 0);
	assert_int_equal(cw_jobs_set_retry_schedule(jobs, "apply:local", schedule, 2, NULL), 0);
	while (__atomic_load_n(&target.runs, __ATOMIC_SEQ_CST) == 0 ||
	       __atomic_load_n(&source.runs, __ATOMIC_SEQ_CST) == 0)
		usleep(1000);
	assert_true(snapshot_has(jobs, "apply:local"));

	cw_err_t err = {0};
	assert_int_equal(cw_jobs_remove(jobs, "capture:shop", 5000, &err), 0);
	assert_int_equal(__atomic_load_n(&source.returned, __ATOMIC_SEQ_CST), 1);
	assert_false(snapshot_has(jobs, "capture:shop"));
	assert_int_equal(__atomic_load_n(&target.returned, __ATOMIC_SEQ_CST), 0);
	assert_false(cw_cancel_is_set(cw_jobs_cancel(jobs)));
	assert_int_equal(cw_jobs_remove(jobs, "capture:shop", 5000, &err), CW_ENOTFOUND);

	cw_job_spec_t readded = {"capture:shop", "source:shop", 1000, counts_until_cancelled, &again, 0};
	assert_int_equal(cw_jobs_add(jobs, &readded, NULL), 0);
	while (__atomic_load_n(&again.runs, __ATOMIC_SEQ_CST) == 0)
		usleep(1000);
	assert_int_equal(cw_jobs_set_retry_schedule(jobs, "capture:shop", schedule, 17, &err),
	                 CW_EINVAL);
	assert_int_equal(cw_jobs_stop(jobs, 5000, NULL), 0);
	assert_int_equal(again.returned, 1);
	assert_int_equal(target.returned, 1);
	assert_int_equal(source.runs, 1);   /* removed, never run again */
	cw_jobs_free(jobs);
}

static int stubborn_started, stubborn_done;

static int ignores_cancel_a_while(void *arg, cw_cancel_t *cancel, cw_err_t *err)
{
	__atomic_store_n(&stubborn_started, 1, __ATOMIC_SEQ_CST);
	struct timespec pause = {0, 300 * 1000000L};
	nanosleep(&pause, NULL);
	__atomic_store_n(&stubborn_done, 1, __ATOMIC_SEQ_CST);
	return cw_cancel_is_set(cancel) ? CW_ECANCELED : 0;
}

/* A job that does not stop within the grace period stays listed; stop joins it later. */
static void a_remove_that_times_out_leaves_the_job_listed(void **state)
{
	(void)state;
	cw_jobs_opts_t opts = {NULL, {100, 1000, 2.0, 0, 0.5}, 0, 0, 1};
	cw_jobs_t *jobs = cw_jobs_new(&opts);
	assert_int_equal(cw_jobs_start(jobs, NULL), 0);
	cw_job_spec_t spec = {"apply:slow", NULL, 1000, ignores_cancel_a_while, NULL, 1};
	assert_int_equal(cw_jobs_add(jobs, &spec, NULL), 0);
	while (!__atomic_load_n(&stubborn_started, __ATOMIC_SEQ_CST))
		usleep(1000);
	cw_err_t err = {0};
	assert_int_equal(cw_jobs_remove(jobs, "apply:slow", 10, &err), CW_ETIMEDOUT);
	assert_non_null(strstr(err.message, "apply:slow"));
	assert_true(snapshot_has(jobs, "apply:slow"));
	assert_int_equal(cw_jobs_stop(jobs, 5000, NULL), 0);
	assert_int_equal(stubborn_done, 1);
	cw_jobs_free(jobs);
}

int main(void)
{
	cw_log_setup(CW_LOG_ERROR, CW_LOG_FORMAT_JSON, 2);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(failed_runs_back_off_then_the_interval_resumes),
		cmocka_unit_test(a_retry_schedule_replaces_the_backoff),
		cmocka_unit_test(an_error_needing_a_fix_is_checked_every_30_s),
		cmocka_unit_test(a_long_run_counts_while_it_runs),
		cmocka_unit_test(breaker_opens_after_threshold_and_half_opens_after_cool_down),
		cmocka_unit_test(a_failure_after_a_long_run_starts_a_new_streak),
		cmocka_unit_test(stop_cancels_a_running_job_and_does_not_count_it_as_failed),
		cmocka_unit_test(stop_gives_up_after_the_grace_period_and_names_the_job),
		cmocka_unit_test(stop_cancels_stage_by_stage),
		cmocka_unit_test(bad_specs_are_rejected),
		cmocka_unit_test(jobs_are_added_and_removed_while_running),
		cmocka_unit_test(a_remove_that_times_out_leaves_the_job_listed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
