/* This file contains the job server declared in jobs.h. */
#include "control/jobs.h"

#include "control/breaker.h"
#include "core/log.h"
#include "core/mem.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define COMPONENT "jobs"

typedef struct dependency {
	char *name;
	cw_breaker_t breaker;     /* guarded by the server's mutex */
} dependency_t;

typedef struct job {
	struct cw_jobs *server;
	char *name;
	dependency_t *dependency; /* NULL when none */
	int64_t interval_ms;
	cw_job_fn run;
	void *arg;
	int stage;
	cw_cancel_t *cancel;      /* owned: its own token, fired with its stage's or alone */
	pthread_t thread;
	bool started;
	bool done;                /* guarded by the server's mutex */
	bool running;             /* guarded by the server's mutex: a run is in progress */
	int64_t run_started_ms;   /* guarded by the server's mutex: when it began (monotonic) */
	cw_job_status_t status;   /* guarded by the server's mutex */
	uint64_t rng;             /* the job thread's own */
	int64_t schedule_ms[16];  /* guarded by the server's mutex: its own retry delays */
	size_t nschedule;         /* guarded by the server's mutex: 0 = the server's backoff */
	char last_fix[CW_ERR_MESSAGE_LEN]; /* the job thread's: the last error needing a fix logged */
} job_t;

struct cw_jobs {
	cw_jobs_opts_t opts;
	cw_cancel_t *cancel[CW_JOBS_STAGES];
	pthread_mutex_t mutex;
	pthread_cond_t done_cond; /* signaled when a job thread returns */
	job_t **jobs;
	size_t njobs;
	dependency_t **dependencies;
	size_t ndependencies;
	bool started;
	bool stopped;
	bool abandoned;           /* some thread outlived the grace period: never free */
};

cw_jobs_t *cw_jobs_new(const cw_jobs_opts_t *opts)
{
	cw_jobs_t *jobs = cw_xcalloc(1, sizeof *jobs);
	jobs->opts = *opts;
	if (jobs->opts.clock == NULL)
		jobs->opts.clock = cw_clock_system();
	if (jobs->opts.breaker_threshold <= 0)
		jobs->opts.breaker_threshold = 5;
	if (jobs->opts.breaker_cool_down_ms <= 0)
		jobs->opts.breaker_cool_down_ms = 30000;
	jobs->opts.retry.give_up_after_ms = 0;
	if (jobs->opts.seed == 0)
		jobs->opts.seed = (uint64_t)cw_clock_wall_us(jobs->opts.clock) ^ 0x6a6f6273ULL;
	for (int i = 0; i < CW_JOBS_STAGES; i++)
		jobs->cancel[i] = cw_cancel_new();
	pthread_mutex_init(&jobs->mutex, NULL);
	pthread_cond_init(&jobs->done_cond, NULL);
	return jobs;
}

static dependency_t *dependency_get(cw_jobs_t *jobs, const char *name)
{
	for (size_t i = 0; i < jobs->ndependencies; i++)
		if (strcmp(jobs->dependencies[i]->name, name) == 0)
			return jobs->dependencies[i];
	dependency_t *dep = cw_xcalloc(1, sizeof *dep);
	dep->name = cw_xstrdup(name);
	cw_breaker_init(&dep->breaker, jobs->opts.breaker_threshold, jobs->opts.breaker_cool_down_ms);
	jobs->dependencies = cw_xrealloc(jobs->dependencies,
	                                 (jobs->ndependencies + 1) * sizeof *jobs->dependencies);
	jobs->dependencies[jobs->ndependencies++] = dep;
	return dep;
}

static int check_schedule(const int64_t *delays_ms, size_t ndelays, cw_err_t *err)
{
	if (ndelays == 0 || ndelays > 16)
		return cw_err_set(err, CW_EINVAL, COMPONENT, "a retry schedule has 1 to 16 delays");
	for (size_t i = 0; i < ndelays; i++)
		if (delays_ms[i] <= 0)
			return cw_err_set(err, CW_EINVAL, COMPONENT, "a retry delay must be > 0");
	return 0;
}

static int check_spec(const cw_jobs_t *jobs, const cw_job_spec_t *spec, cw_err_t *err)
{
	if (spec->name == NULL || spec->name[0] == '\0' || strlen(spec->name) >= sizeof
	    ((cw_job_status_t *)0)->name || spec->run == NULL || spec->interval_ms <= 0)
		return cw_err_set(err, CW_EINVAL, COMPONENT,
		                  "job needs a name (under 64 bytes), a function and an interval > 0");
	if (spec->stop_stage < 0 || spec->stop_stage >= CW_JOBS_STAGES)
		return cw_err_set(err, CW_EINVAL, COMPONENT, "job \"%s\": stop stage %d out of range",
		                  spec->name, spec->stop_stage);
	if (spec->dependency != NULL && strlen(spec->dependency) >= sizeof
	    ((cw_job_status_t *)0)->dependency)
		return cw_err_set(err, CW_EINVAL, COMPONENT, "job \"%s\": dependency name too long",
		                  spec->name);
	for (size_t i = 0; i < jobs->njobs; i++)
		if (strcmp(jobs->jobs[i]->name, spec->name) == 0)
			return cw_err_set(err, CW_EINVAL, COMPONENT, "job \"%s\" added twice", spec->name);
	return 0;
}

static void *job_main(void *arg);

static void job_free(job_t *job)
{
	cw_cancel_free(job->cancel);
	free(job->name);
	free(job);
}

int cw_jobs_add(cw_jobs_t *jobs, const cw_job_spec_t *spec, cw_err_t *err)
{
	if (jobs->stopped)
		return cw_err_set(err, CW_ECONFLICT, COMPONENT, "job \"%s\" added after stop",
		                  spec->name ? spec->name : "");
	if (check_spec(jobs, spec, err) != 0)
		return CW_EINVAL;
	job_t *job = cw_xcalloc(1, sizeof *job);
	job->server = jobs;
	job->name = cw_xstrdup(spec->name);
	job->interval_ms = spec->interval_ms;
	job->run = spec->run;
	job->arg = spec->arg;
	job->stage = spec->stop_stage;
	job->cancel = cw_cancel_new();
	job->rng = jobs->opts.seed + 0x9e3779b97f4a7c15ULL * (jobs->njobs + 1);
	snprintf(job->status.name, sizeof job->status.name, "%s", spec->name);
	if (spec->dependency != NULL)
		snprintf(job->status.dependency, sizeof job->status.dependency, "%s", spec->dependency);
	job->status.breaker = cw_breaker_state_name(CW_BREAKER_CLOSED);
	pthread_mutex_lock(&jobs->mutex);
	job->dependency = spec->dependency ? dependency_get(jobs, spec->dependency) : NULL;
	jobs->jobs = cw_xrealloc(jobs->jobs, (jobs->njobs + 1) * sizeof *jobs->jobs);
	jobs->jobs[jobs->njobs++] = job;
	pthread_mutex_unlock(&jobs->mutex);
	if (!jobs->started)
		return 0;
	int rc = pthread_create(&job->thread, NULL, job_main, job);
	if (rc != 0) {
		pthread_mutex_lock(&jobs->mutex);
		jobs->njobs--;
		pthread_mutex_unlock(&jobs->mutex);
		job_free(job);
		return cw_err_set(err, CW_EINTERNAL, COMPONENT, "could not start job \"%s\": %s",
		                  spec->name, strerror(rc));
	}
	job->started = true;
	return 0;
}

/* Under the mutex: may the job run now? Else *wait_ms says how long to wait. */
static bool breaker_allows(job_t *job, int64_t now_ms, int64_t *wait_ms)
{
	if (job->dependency == NULL)
		return true;
	bool allow = cw_breaker_allow(&job->dependency->breaker, now_ms);
	if (!allow) {
		*wait_ms = cw_breaker_wait_ms(&job->dependency->breaker, now_ms);
		if (*wait_ms <= 0)
			*wait_ms = 100;   /* half-open with a trial in flight elsewhere: poll */
	}
	job->status.breaker = cw_breaker_state_name(job->dependency->breaker.state);
	return allow;
}

/* Under the mutex: records the outcome of a run. */
static void record_run(job_t *job, int rc, const cw_err_t *run_err, int64_t now_ms)
{
	cw_jobs_t *jobs = job->server;
	if (rc == 0) {
		job->status.consecutive_failures = 0;
		job->status.failing_since_ms = 0;
		job->status.last_success_us = cw_clock_wall_us(jobs->opts.clock);
		job->status.last_error[0] = '\0';
	} else {
		job->status.failures++;
		if (job->status.consecutive_failures++ == 0)
			job->status.failing_since_ms = now_ms;
		snprintf(job->status.last_error, sizeof job->status.last_error, "%s",
		         run_err->message[0] ? run_err->message : cw_err_code_name(rc));
	}
	if (job->dependency == NULL)
		return;
	cw_breaker_state_t before = job->dependency->breaker.state;
	cw_breaker_record(&job->dependency->breaker, rc == 0, now_ms);
	cw_breaker_state_t after = job->dependency->breaker.state;
	job->status.breaker = cw_breaker_state_name(after);
	if (before != after && after == CW_BREAKER_OPEN)
		cw_log_kv(CW_LOG_WARN, COMPONENT, "circuit breaker opened", "dependency",
		          job->dependency->name, "job", job->name, NULL);
	else if (before != after && after == CW_BREAKER_CLOSED)
		cw_log_kv(CW_LOG_INFO, COMPONENT, "circuit breaker closed", "dependency",
		          job->dependency->name, "job", job->name, NULL);
}

/* Under the mutex: the job's own delay after its Nth failure in a row, with the server's jitter. */
static int64_t scheduled_delay(job_t *job, int64_t consecutive, const cw_retry_policy_t *policy)
{
	size_t i = consecutive < 1 ? 0 : (size_t)(consecutive - 1);
	int64_t base = job->schedule_ms[i < job->nschedule ? i : job->nschedule - 1];
	double random = (double)(cw_retry_rand(&job->rng) >> 11) / (double)(1ULL << 53);
	/* Equal jitter: the delay keeps (1 - jitter) of its base and draws the rest. */
	return (int64_t)((double)base * (1.0 - policy->jitter) + (double)base * policy->jitter * random);
}

static void *job_main(void *arg)
{
	job_t *job = arg;
	cw_jobs_t *jobs = job->server;
	const cw_clock_t *clock = jobs->opts.clock;
	cw_retry_t retry;
	cw_retry_init(&retry, &jobs->opts.retry);
	while (!cw_cancel_is_set(job->cancel)) {
		int64_t wait_ms = 0;
		pthread_mutex_lock(&jobs->mutex);
		bool allow = breaker_allows(job, cw_clock_now_ms(clock), &wait_ms);
		pthread_mutex_unlock(&jobs->mutex);
		if (!allow) {
			cw_clock_sleep_ms(clock, wait_ms, job->cancel);
			continue;
		}
		cw_err_t run_err = {0};
		int64_t started_ms = cw_clock_now_ms(clock);
		pthread_mutex_lock(&jobs->mutex);
		job->status.runs++;
		job->running = true;
		job->run_started_ms = started_ms;
		pthread_mutex_unlock(&jobs->mutex);
		int rc = job->run(job->arg, job->cancel, &run_err);
		int64_t ended_ms = cw_clock_now_ms(clock);
		pthread_mutex_lock(&jobs->mutex);
		job->running = false;
		pthread_mutex_unlock(&jobs->mutex);
		if (rc == CW_ECANCELED && cw_cancel_is_set(job->cancel))
			break;
		pthread_mutex_lock(&jobs->mutex);
		if (rc != 0 && ended_ms - started_ms >= CW_JOBS_HEALTHY_RUN_MS)
			record_run(job, 0, &run_err, ended_ms);   /* it worked until now */
		record_run(job, rc, &run_err, ended_ms);
		int64_t consecutive = job->status.consecutive_failures;
		int64_t own_delay_ms = job->nschedule > 0 && rc != 0 ?
		                       scheduled_delay(job, consecutive, &jobs->opts.retry) : -1;
		pthread_mutex_unlock(&jobs->mutex);
		int64_t delay_ms = job->interval_ms;
		if (rc == 0 || ended_ms - started_ms >= CW_JOBS_HEALTHY_RUN_MS)
			cw_retry_reset(&retry);
		bool needs_fix = rc != 0 && cw_err_needs_a_fix(rc);
		if (needs_fix) {
			/* Retrying soon only repeats it: check again now and then, say it once. */
			delay_ms = CW_JOBS_FIX_RECHECK_MS;
			if (strcmp(job->last_fix, run_err.message) != 0)
				cw_log_kv(CW_LOG_ERROR, COMPONENT, "job failed: needs a fix, checked again "
				          "every 30 s", "job", job->name, "error", run_err.message, NULL);
			snprintf(job->last_fix, sizeof job->last_fix, "%s", run_err.message);
		} else if (rc != 0) {
			cw_retry_next_delay(&retry, clock, &job->rng, &delay_ms);
			if (own_delay_ms >= 0)
				delay_ms = own_delay_ms;
			char attempt[24], delay[24];
			snprintf(attempt, sizeof attempt, "%lld", (long long)consecutive);
			snprintf(delay, sizeof delay, "%lldms", (long long)delay_ms);
			cw_log_kv(CW_LOG_WARN, COMPONENT, "job failed", "job", job->name, "error",
			          run_err.message, "attempt", attempt, "retry_in", delay, NULL);
		}
		if (!needs_fix)
			job->last_fix[0] = '\0';
		cw_clock_sleep_ms(clock, delay_ms, job->cancel);
	}
	pthread_mutex_lock(&jobs->mutex);
	job->done = true;
	pthread_cond_broadcast(&jobs->done_cond);
	pthread_mutex_unlock(&jobs->mutex);
	return NULL;
}

int cw_jobs_set_retry_schedule(cw_jobs_t *jobs, const char *name, const int64_t *delays_ms,
                               size_t ndelays, cw_err_t *err)
{
	if (check_schedule(delays_ms, ndelays, err) != 0)
		return CW_EINVAL;
	pthread_mutex_lock(&jobs->mutex);
	for (size_t j = 0; j < jobs->njobs; j++) {
		if (strcmp(jobs->jobs[j]->name, name) == 0) {
			memcpy(jobs->jobs[j]->schedule_ms, delays_ms, ndelays * sizeof *delays_ms);
			jobs->jobs[j]->nschedule = ndelays;
			pthread_mutex_unlock(&jobs->mutex);
			return 0;
		}
	}
	pthread_mutex_unlock(&jobs->mutex);
	return cw_err_set(err, CW_ENOTFOUND, COMPONENT, "no job named \"%s\"", name);
}

int cw_jobs_start(cw_jobs_t *jobs, cw_err_t *err)
{
	if (jobs->started)
		return cw_err_set(err, CW_ECONFLICT, COMPONENT, "job server started twice");
	jobs->started = true;
	for (size_t i = 0; i < jobs->njobs; i++) {
		job_t *job = jobs->jobs[i];
		int rc = pthread_create(&job->thread, NULL, job_main, job);
		if (rc != 0) {
			cw_err_set(err, CW_EINTERNAL, COMPONENT, "could not start job \"%s\": %s",
			           job->name, strerror(rc));
			cw_jobs_stop(jobs, 5000, NULL);
			return CW_EINTERNAL;
		}
		job->started = true;
	}
	return 0;
}

cw_cancel_t *cw_jobs_cancel(cw_jobs_t *jobs)
{
	return jobs->cancel[0];
}

/* Under the mutex: whether every started job of stage (or of every stage, for -1) returned. */
static bool stage_done(cw_jobs_t *jobs, int stage)
{
	for (size_t i = 0; i < jobs->njobs; i++) {
		job_t *job = jobs->jobs[i];
		if ((stage < 0 || job->stage == stage) && job->started && !job->done)
			return false;
	}
	return true;
}

/* Under the mutex: fires the token of stage (and of each of its jobs). */
static void fire_stage(cw_jobs_t *jobs, int stage)
{
	cw_cancel_fire(jobs->cancel[stage]);
	for (size_t i = 0; i < jobs->njobs; i++)
		if (jobs->jobs[i]->stage == stage)
			cw_cancel_fire(jobs->jobs[i]->cancel);
}

/* grace_ms from now on CLOCK_REALTIME, for pthread_cond_timedwait. */
static struct timespec deadline_after(int64_t grace_ms)
{
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += grace_ms / 1000;
	deadline.tv_nsec += (grace_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	return deadline;
}

int cw_jobs_remove(cw_jobs_t *jobs, const char *name, int64_t grace_ms, cw_err_t *err)
{
	struct timespec deadline = deadline_after(grace_ms);
	pthread_mutex_lock(&jobs->mutex);
	size_t index = jobs->njobs;
	for (size_t i = 0; i < jobs->njobs; i++)
		if (strcmp(jobs->jobs[i]->name, name) == 0)
			index = i;
	if (index == jobs->njobs) {
		pthread_mutex_unlock(&jobs->mutex);
		return cw_err_set(err, CW_ENOTFOUND, COMPONENT, "no job named \"%s\"", name);
	}
	job_t *job = jobs->jobs[index];
	cw_cancel_fire(job->cancel);
	bool timed_out = false;
	while (!timed_out && job->started && !job->done)
		timed_out = pthread_cond_timedwait(&jobs->done_cond, &jobs->mutex, &deadline) ==
		            ETIMEDOUT;
	if (job->started && !job->done) {
		pthread_mutex_unlock(&jobs->mutex);
		return cw_err_set(err, CW_ETIMEDOUT, COMPONENT,
		                  "job \"%s\" still running after the %lldms grace period", name,
		                  (long long)grace_ms);
	}
	memmove(&jobs->jobs[index], &jobs->jobs[index + 1],
	        (jobs->njobs - index - 1) * sizeof *jobs->jobs);
	jobs->njobs--;
	pthread_mutex_unlock(&jobs->mutex);
	if (job->started)
		pthread_join(job->thread, NULL);
	job_free(job);
	return 0;
}

int cw_jobs_stop(cw_jobs_t *jobs, int64_t grace_ms, cw_err_t *err)
{
	if (jobs->stopped || !jobs->started) {
		pthread_mutex_lock(&jobs->mutex);
		for (int i = 0; i < CW_JOBS_STAGES; i++)
			fire_stage(jobs, i);
		pthread_mutex_unlock(&jobs->mutex);
		jobs->stopped = true;
		return 0;
	}
	jobs->stopped = true;
	struct timespec deadline = deadline_after(grace_ms);
	pthread_mutex_lock(&jobs->mutex);
	bool timed_out = false;
	for (int stage = 0; stage < CW_JOBS_STAGES; stage++) {
		fire_stage(jobs, stage);
		while (!timed_out && !stage_done(jobs, stage))
			timed_out = pthread_cond_timedwait(&jobs->done_cond, &jobs->mutex, &deadline) ==
			            ETIMEDOUT;
	}
	char still[256] = "";
	size_t used = 0;
	for (size_t i = 0; i < jobs->njobs; i++) {
		job_t *job = jobs->jobs[i];
		if (!job->started)
			continue;
		if (job->done) {
			pthread_join(job->thread, NULL);
		} else {
			pthread_detach(job->thread);
			jobs->abandoned = true;
			int n = snprintf(still + used, sizeof still - used, "%s%s", used ? ", " : "",
			                 job->name);
			if (n > 0 && (size_t)n < sizeof still - used)
				used += (size_t)n;
		}
		job->started = false;
	}
	pthread_mutex_unlock(&jobs->mutex);
	if (jobs->abandoned)
		return cw_err_set(err, CW_ETIMEDOUT, COMPONENT,
		                  "jobs still running after the %lldms grace period: %s",
		                  (long long)grace_ms, still);
	return 0;
}

size_t cw_jobs_snapshot(cw_jobs_t *jobs, cw_job_status_t *out, size_t cap)
{
	int64_t now_ms = cw_clock_now_ms(jobs->opts.clock);
	pthread_mutex_lock(&jobs->mutex);
	for (size_t i = 0; i < jobs->njobs && i < cap; i++) {
		const job_t *job = jobs->jobs[i];
		out[i] = job->status;
		/* A run that has worked this long (a capture streaming) is a success so far. */
		if (job->running && now_ms - job->run_started_ms >= CW_JOBS_HEALTHY_RUN_MS)
			out[i].last_success_us = cw_clock_wall_us(jobs->opts.clock);
	}
	size_t n = jobs->njobs;
	pthread_mutex_unlock(&jobs->mutex);
	return n;
}

void cw_jobs_free(cw_jobs_t *jobs)
{
	if (jobs == NULL || jobs->abandoned)
		return;   /* an abandoned thread may still touch the server: leave it to exit */
	cw_jobs_stop(jobs, 5000, NULL);
	if (jobs->abandoned)
		return;
	for (size_t i = 0; i < jobs->njobs; i++)
		job_free(jobs->jobs[i]);
	free(jobs->jobs);
	for (size_t i = 0; i < jobs->ndependencies; i++) {
		free(jobs->dependencies[i]->name);
		free(jobs->dependencies[i]);
	}
	free(jobs->dependencies);
	for (int i = 0; i < CW_JOBS_STAGES; i++)
		cw_cancel_free(jobs->cancel[i]);
	pthread_cond_destroy(&jobs->done_cond);
	pthread_mutex_destroy(&jobs->mutex);
	free(jobs);
}
