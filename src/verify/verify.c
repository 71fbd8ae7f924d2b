/* This file contains a verify run (verify.h). */
#include "verify/verify_internal.h"

#include "apply/layout.h"
#include "core/buf.h"
#include "core/change.h"
#include "core/clock.h"
#include "core/failpoint.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "hub/entity_store.h"
#include "hub/hub.h"
#include "hub/migrations.h"
#include "hub/oplog_writer.h"
#include "verify/sides.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DOMAIN VJ_DOMAIN
#define DEFAULT_SAMPLE 20
#define PROGRESS_INTERVAL_MS 5000

void cw_verify_pairs_free(cw_verify_pair_t *pairs, size_t npairs)
{
	for (size_t i = 0; i < npairs; i++)
		free(pairs[i].report);
	free(pairs);
}

static void progress(void *arg, const char *step, uint64_t rows, uint64_t expected)
{
	pair_run_t *run = arg;
	pthread_mutex_lock(&run->mutex);
	snprintf(run->step, sizeof run->step, "%s", step);
	run->rows = rows;
	run->expected = expected;
	pthread_mutex_unlock(&run->mutex);
	int64_t now = vj_now_ms();
	if (now < run->next_progress_ms)
		return;
	run->next_progress_ms = now + PROGRESS_INTERVAL_MS;
	double seconds = (double)(now - run->started_ms) / 1000.0;
	double rate = seconds > 0 ? (double)rows / seconds : 0;
	char eta[32] = "unknown";
	if (rate > 0 && expected > rows)
		snprintf(eta, sizeof eta, "%.0f s", (double)(expected - rows) / rate);
	else if (expected > 0)
		snprintf(eta, sizeof eta, "0 s");
	cw_log_info(DOMAIN, "entity \"%s\" target \"%s\": %s, %llu rows compared (of about %llu), "
	            "%.0f rows/s, eta %s", run->pair->entity, run->pair->target, step,
	            (unsigned long long)rows, (unsigned long long)expected, rate, eta);
}

static void sample_add(pair_run_t *run, const cw_verify_diff_t *diff)
{
	size_t cap = run->opts->sample_keys > 0 ? run->opts->sample_keys : DEFAULT_SAMPLE;
	if (run->sampled >= cap)
		return;
	cw_json_t w;
	cw_json_init(&w, &run->sample, CW_JSON_NO_NUL);
	if (run->sampled++ > 0)
		cw_buf_append_char(&run->sample, ',');
	cw_json_object_begin(&w, NULL);
	cw_json_key(&w, "key", NULL);
	cw_json_string(&w, diff->doc_id, NULL);
	cw_json_key(&w, "kind", NULL);
	cw_json_string(&w, cw_verify_kind_name(diff->kind), NULL);
	if (diff->differing != NULL) {
		cw_json_key(&w, "columns", NULL);
		cw_json_array_begin(&w, NULL);
		for (size_t i = 0; i < diff->ncolumns; i++) {
			if (!((diff->differing[i / 64] >> (i % 64)) & 1))
				continue;
			cw_json_string(&w, run->entity.ncolumns > 0 ? run->entity.columns[i].name
			                                            : CW_LAYOUT_DOC_COLUMN, NULL);
		}
		cw_json_array_end(&w, NULL);
	}
	cw_json_object_end(&w, NULL);
}

/* A chunk's persistent differences: the sample, and with repair the synthetic changes. */
static int on_chunk(void *arg, const cw_verify_diff_t *diffs, size_t ndiffs, cw_err_t *err)
{
	pair_run_t *run = arg;
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	for (size_t i = 0; i < ndiffs; i++) {
		sample_add(run, &diffs[i]);
		cw_log_info(DOMAIN, "entity \"%s\" target \"%s\": key %s is %s", run->pair->entity,
		            run->pair->target, diffs[i].doc_id, cw_verify_kind_name(diffs[i].kind));
		if (!run->opts->repair)
			continue;
		cw_change_t change = {0};
		change.entity = cw_xstrdup(run->entity.name);
		change.doc_id = cw_xstrdup(diffs[i].doc_id);
		if (diffs[i].kind == CW_VERIFY_EXTRA || diffs[i].source_data == NULL) {
			change.op = CW_OP_DELETE;
		} else {
			change.op = CW_OP_UPSERT;
			change.data = cw_xstrdup(diffs[i].source_data);
		}
		change.version = run->entity.version;
		cw_change_batch_push(&batch, &change);
	}
	int rc = 0;
	if (batch.len > 0) {
		size_t written = 0;
		rc = cw_oplog_append_synthetic(run->hub, &batch, run->watermark, "verify", &written,
		                               err);
		if (rc == 0) {
			run->pair->repaired += written;
			run->pair->left_to_stream += batch.len - written;
		}
	}
	cw_change_batch_free(&batch);
	return rc;
}

static char *report_json(const pair_run_t *run)
{
	const cw_verify_pair_t *p = run->pair;
	const cw_verify_result_t *r = &p->result;
	cw_buf_t buf = CW_BUF_INIT;
	cw_json_t w;
	cw_json_init(&w, &buf, CW_JSON_NO_NUL);
	cw_json_object_begin(&w, NULL);
	cw_json_key(&w, "run_id", NULL);
	cw_json_int64(&w, p->run_id, NULL);
	cw_json_key(&w, "entity", NULL);
	cw_json_string(&w, p->entity, NULL);
	cw_json_key(&w, "target", NULL);
	cw_json_string(&w, p->target, NULL);
	cw_json_key(&w, "status", NULL);
	cw_json_string(&w, p->status, NULL);
	const struct { const char *name; uint64_t value; } counts[] = {
		{"source_rows", r->source_rows},
		{"target_rows", r->target_rows},
		{"rows_read", r->rows_read},
		{"missing", r->differences[CW_VERIFY_MISSING]},
		{"extra", r->differences[CW_VERIFY_EXTRA]},
		{"different", r->differences[CW_VERIFY_DIFFERENT]},
		{"stale_version", r->differences[CW_VERIFY_STALE]},
		{"candidates", r->candidates},
		{"unsettled", r->unsettled},
		{"buckets", r->buckets},
		{"differing_buckets", r->differing_buckets},
		{"repaired", p->repaired},
		{"left_to_stream", p->left_to_stream},
	};
	for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
		cw_json_key(&w, counts[i].name, NULL);
		cw_json_uint64(&w, counts[i].value, NULL);
	}
	cw_json_key(&w, "repair", NULL);
	cw_json_bool(&w, run->opts->repair, NULL);
	cw_json_key(&w, "target_behind", NULL);
	cw_json_bool(&w, run->target_behind, NULL);
	cw_json_key(&w, "seconds", NULL);
	cw_json_double(&w, p->seconds, NULL);
	cw_json_key(&w, "sample", NULL);
	char *sample = cw_xasprintf("[%s]", run->sample.data ? cw_buf_cstr(&run->sample) : "");
	cw_json_raw(&w, sample, strlen(sample), NULL);
	free(sample);
	if (p->status != NULL && strcmp(p->status, "failed") == 0) {
		cw_json_key(&w, "error", NULL);
		cw_json_string(&w, p->err.message, NULL);
	}
	cw_json_object_end(&w, NULL);
	return cw_buf_take(&buf);
}

static uint64_t total_differences(const cw_verify_result_t *r)
{
	uint64_t n = 0;
	for (int k = 0; k < CW_VERIFY_NKINDS; k++)
		n += r->differences[k];
	return n;
}

static void lock_key(const pair_run_t *run, char lock_class[16], char key[160])
{
	snprintf(lock_class, 16, "%d", CW_HUB_LOCK_VERIFY);
	snprintf(key, 160, "%s/%s", run->entity.name, run->target->name);
}

/* Takes the pair's lock and opens its run row; CW_ECONFLICT naming the running run. */
static int pair_begin(pair_run_t *run, int64_t *running_id, cw_err_t *err)
{
	char lock_class[16], key[160];
	lock_key(run, lock_class, key);
	const char *lock_params[] = {lock_class, key};
	PGresult *res = cw_hub_exec(run->hub, "SELECT pg_try_advisory_lock($1::int4, hashtext($2))",
	                            2, lock_params, "could not lock the verify run", err);
	if (res == NULL)
		return CW_EDB;
	run->locked = PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	const char *pair_params[] = {run->entity.name, run->target->name};
	if (!run->locked) {
		res = cw_hub_exec(run->hub, "SELECT coalesce(max(id), 0) FROM cachewarp.verify_runs "
		                  "WHERE entity = $1 AND target = $2 AND status = 'running'", 2,
		                  pair_params, "could not read the running verify", err);
		int64_t running = res ? cw_hub_int64(res, 0, 0) : 0;
		PQclear(res);
		if (running_id != NULL)
			*running_id = running;
		if (running == 0)
			return cw_err_set(err, CW_ECONFLICT, DOMAIN, "a verify of entity \"%s\" in target "
			                  "\"%s\" is already running", run->entity.name, run->target->name);
		return cw_err_set(err, CW_ECONFLICT, DOMAIN, "a verify of entity \"%s\" in target "
		                  "\"%s\" is already running (run %lld)", run->entity.name,
		                  run->target->name, (long long)running);
	}
	/* Holding the lock: a row still 'running' is a run that died. */
	int rc = cw_hub_command(run->hub, "UPDATE cachewarp.verify_runs SET status = 'failed', "
	                        "finished_at = now(), error = 'interrupted' WHERE entity = $1 AND "
	                        "target = $2 AND status = 'running'", 2, pair_params,
	                        "could not close an interrupted verify run", err);
	if (rc != 0)
		return rc;
	const char *params[] = {run->entity.name, run->target->name, run->opts->repair ? "t" : "f",
	                        run->opts->requested_by ? run->opts->requested_by : "cli"};
	res = cw_hub_exec(run->hub, "INSERT INTO cachewarp.verify_runs (entity, target, status, "
	                  "repair, requested_by) VALUES ($1, $2, 'running', $3::bool, $4) "
	                  "RETURNING id", 4, params, "could not record the verify run", err);
	if (res == NULL)
		return CW_EDB;
	run->run_id = cw_hub_int64(res, 0, 0);
	PQclear(res);
	return 0;
}

static void unlock_pair(pair_run_t *run)
{
	if (!run->locked)
		return;
	char lock_class[16], key[160];
	lock_key(run, lock_class, key);
	const char *lock_params[] = {lock_class, key};
	cw_err_t ignored = {0};
	cw_hub_command(run->hub, "SELECT pg_advisory_unlock($1::int4, hashtext($2))", 2,
	               lock_params, "could not unlock the verify run", &ignored);
	run->locked = false;
}

static void pair_end(pair_run_t *run)
{
	cw_verify_pair_t *p = run->pair;
	char id[24];
	snprintf(id, sizeof id, "%lld", (long long)p->run_id);
	const char *params[] = {id, p->status, p->report,
	                        strcmp(p->status, "failed") == 0 ? p->err.message : NULL};
	cw_err_t ignored = {0};
	if (cw_hub_command(run->hub, "UPDATE cachewarp.verify_runs SET status = $2, finished_at = "
	                   "now(), report = $3::jsonb, error = $4 WHERE id = $1::bigint", 4, params,
	                   "could not record the verify result", &ignored) != 0)
		cw_log_warn(DOMAIN, "%s", ignored.message);
	unlock_pair(run);
}

static void count_metrics(const pair_run_t *run)
{
	cw_metrics_t *m = run->opts->metrics;
	const cw_verify_pair_t *p = run->pair;
	if (m == NULL)
		return;
	char labels[200];
	snprintf(labels, sizeof labels, "entity=\"%s\",target=\"%s\"", p->entity, p->target);
	bool compared = strcmp(p->status, "equal") == 0 || strcmp(p->status, "different") == 0;
	if (compared)
		cw_metrics_counter_add(m, "cachewarp_verify_tables_checked_total", labels, 1);
	cw_metrics_counter_add(m, "cachewarp_verify_records_scanned_total", labels,
	                       (double)p->result.rows_read);
	for (int k = 0; k < CW_VERIFY_NKINDS; k++) {
		char kind_labels[260];
		snprintf(kind_labels, sizeof kind_labels, "%s,kind=\"%s\"", labels,
		         cw_verify_kind_name((cw_verify_kind_t)k));
		cw_metrics_counter_add(m, "cachewarp_verify_differences_total", kind_labels,
		                       (double)p->result.differences[k]);
	}
	cw_metrics_counter_add(m, "cachewarp_verify_synthetic_changes_total", labels,
	                       (double)p->repaired);
	cw_metrics_observe(m, "cachewarp_verify_duration_seconds", labels, p->seconds);
	if (strcmp(p->status, "failed") == 0)
		cw_metrics_counter_add(m, "cachewarp_verify_errors_total", labels, 1);
	if (!compared)
		return;
	cw_metrics_gauge_set(m, "cachewarp_verify_last_run_timestamp_seconds", labels,
	                     (double)cw_clock_wall_us(cw_clock_system()) / 1e6);
	cw_metrics_gauge_set(m, "cachewarp_verify_last_run_equal", labels,
	                     strcmp(p->status, "equal") == 0 ? 1 : 0);
}

#define RUN_COLUMNS \
	"id, entity, target, status, repair, requested_by, " \
	"to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), " \
	"to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), " \
	"report::text, error FROM cachewarp.verify_runs "

static void run_row_json(const PGresult *res, int row, cw_json_t *w)
{
	static const char *const names[] = {"id", "entity", "target", "status", "repair",
	                                    "requested_by", "started_at", "finished_at", "report",
	                                    "error"};
	cw_json_object_begin(w, NULL);
	for (int c = 0; c < 10; c++) {
		cw_json_key(w, names[c], NULL);
		const char *value = PQgetvalue(res, row, c);
		if (PQgetisnull(res, row, c))
			cw_json_null(w, NULL);
		else if (c == 0)
			cw_json_int64(w, strtoll(value, NULL, 10), NULL);
		else if (c == 4)
			cw_json_bool(w, value[0] == 't', NULL);
		else if (c == 8)
			cw_json_raw(w, value, strlen(value), NULL);
		else
			cw_json_string(w, value, NULL);
	}
	cw_json_object_end(w, NULL);
}

int cw_verify_runs_json(cw_hub_t *hub, int64_t id, cw_json_t *w, cw_err_t *err)
{
	char id_text[24];
	snprintf(id_text, sizeof id_text, "%lld", (long long)id);
	const char *params[] = {id_text};
	PGresult *res = id > 0
		? cw_hub_exec(hub, "SELECT " RUN_COLUMNS "WHERE id = $1::bigint", 1, params,
		              "could not read the verify run", err)
		: cw_hub_exec(hub, "SELECT DISTINCT ON (entity, target) " RUN_COLUMNS
		              "ORDER BY entity, target, id DESC", 0, NULL,
		              "could not read the verify runs", err);
	if (res == NULL)
		return CW_EDB;
	int rc = 0;
	if (id > 0) {
		if (PQntuples(res) == 0)
			rc = cw_err_set(err, CW_ENOTFOUND, DOMAIN, "no verify run %lld", (long long)id);
		else
			run_row_json(res, 0, w);
	} else {
		cw_json_array_begin(w, NULL);
		for (int row = 0; row < PQntuples(res); row++)
			run_row_json(res, row, w);
		cw_json_array_end(w, NULL);
	}
	PQclear(res);
	return rc;
}

void cw_verify_metrics_declare(cw_metrics_t *metrics)
{
	static const struct { const char *name; cw_metric_type_t type; const char *help; } families[] = {
		{"cachewarp_verify_tables_checked_total", CW_METRIC_COUNTER,
		 "Entity and target pairs verify compared."},
		{"cachewarp_verify_records_scanned_total", CW_METRIC_COUNTER,
		 "Rows verify read, both sides, every step."},
		{"cachewarp_verify_differences_total", CW_METRIC_COUNTER,
		 "Persistent differences verify found, by kind."},
		{"cachewarp_verify_synthetic_changes_total", CW_METRIC_COUNTER,
		 "Synthetic changes verify wrote into the hub to repair differences."},
		{"cachewarp_verify_duration_seconds", CW_METRIC_HISTOGRAM,
		 "How long verify took per entity and target."},
		{"cachewarp_verify_errors_total", CW_METRIC_COUNTER, "Verify runs that failed."},
		{"cachewarp_verify_last_run_timestamp_seconds", CW_METRIC_GAUGE,
		 "When verify last finished comparing the pair (Unix time)."},
		{"cachewarp_verify_last_run_equal", CW_METRIC_GAUGE,
		 "1 when the pair's last verify found it equal, else 0."},
	};
	for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
		cw_metrics_declare(metrics, families[i].name, families[i].type, families[i].help);
}

/*
 * Whether verify compares entity of source with target: a PostgreSQL,
 * MongoDB or MySQL entity with SQLite, PostgreSQL and MongoDB targets, each
 * read back in the form the target stores it (sides.h, forms.h). Left out:
 * targets of other types, which verify has no reader for.
 */
static bool pair_readable(const cw_source_config_t *source, const cw_entity_t *entity,
                          const cw_target_config_t *target)
{
	(void)entity;
	(void)source;
	switch (target->type) {
	case CW_TARGET_SQLITE:
	case CW_TARGET_POSTGRES:
	case CW_TARGET_MONGODB:
		return true;
	}
	return false;
}

/* Whether entity of config can be verified; CW_EINVAL saying why not. */
static int check_entity(const cw_config_t *config, const cw_entity_t *entity, cw_err_t *err)
{
	const cw_source_config_t *source = cw_config_source(config, entity->source);
	if (source == NULL)
		return cw_err_set(err, CW_EINVAL, DOMAIN, "entity \"%s\": source \"%s\" is not "
		                  "configured", entity->name, entity->source);

	if (entity->paused_reason != NULL)
		return cw_err_set(err, CW_EINVAL, DOMAIN, "entity \"%s\" is paused (%s): its source is "
		                  "not captured; resume it first", entity->name, entity->paused_reason);
	if (entity->status != CW_ENTITY_LIVE)
		return cw_err_set(err, CW_EINVAL, DOMAIN, "entity \"%s\": not live yet (its scan has "
		                  "not finished)", entity->name);
	return 0;
}

void cw_verify_job_free(cw_verify_job_t *job)
{
	if (job == NULL)
		return;
	if (job->locked && job->run_id > 0) {
		/* Begun, never run: the run row must not stay 'running'. */
		char id[24];
		snprintf(id, sizeof id, "%lld", (long long)job->run_id);
		const char *params[] = {id};
		cw_hub_command(job->hub, "UPDATE cachewarp.verify_runs SET status = 'canceled', "
		               "finished_at = now() WHERE id = $1::bigint AND status = 'running'", 1,
		               params, "could not record the verify result", NULL);
	}
	unlock_pair(job);
	cw_verify_endpoint_close(job->tgt);
	cw_verify_endpoint_close(job->src);
	cw_buf_free(&job->sample);
	cw_entity_clear(&job->entity);
	cw_hub_close(job->hub);
	pthread_mutex_destroy(&job->mutex);
	free(job);
}

cw_verify_job_t *cw_verify_job_begin(const cw_config_t *config, const char *entity,
                                     const char *target, const cw_verify_opts_t *opts,
                                     int64_t *running_id, cw_err_t *err)
{
	if (running_id != NULL)
		*running_id = 0;
	const cw_target_config_t *tc = cw_config_target(config, target);
	if (tc == NULL) {
		cw_err_set(err, CW_ENOTFOUND, DOMAIN, "no target named \"%s\" is configured", target);
		return NULL;
	}
	cw_verify_job_t *job = cw_xcalloc(1, sizeof *job);
	pthread_mutex_init(&job->mutex, NULL);
	job->config = config;
	job->opts = opts;
	job->target = tc;
	job->hub = cw_hub_connect_auth(config->hub.url, config->hub.auth, err);
	int rc = job->hub == NULL ? CW_EDB : 0;
	if (rc == 0) {
		rc = cw_entity_store_get(job->hub, entity, &job->entity, err);
		if (rc == CW_ENOTFOUND)
			cw_err_set(err, CW_ENOTFOUND, DOMAIN, "no entity named \"%s\" in the hub", entity);
	}
	if (rc == 0 && (rc = check_entity(config, &job->entity, err)) == 0)
		job->source = cw_config_source(config, job->entity.source);
	if (rc == 0 && !pair_readable(job->source, &job->entity, tc))
		rc = cw_err_set(err, CW_EINVAL, DOMAIN, "entity \"%s\" of %s source \"%s\": verify "
		                "does not compare it with %s target \"%s\" yet (docs/verify.md)",
		                entity, cw_source_type_name(job->source->type), job->source->name,
		                cw_target_type_name(tc->type), tc->name);
	if (rc == 0)
		rc = pair_begin(job, running_id, err);
	if (rc != 0) {
		cw_verify_job_free(job);
		return NULL;
	}
	return job;
}

int64_t cw_verify_job_id(const cw_verify_job_t *job)
{
	return job->run_id;
}

void cw_verify_job_progress(cw_verify_job_t *job, char step[32], uint64_t *rows,
                            uint64_t *expected)
{
	pthread_mutex_lock(&job->mutex);
	snprintf(step, 32, "%s", job->step[0] ? job->step : "starting");
	*rows = job->rows;
	*expected = job->expected;
	pthread_mutex_unlock(&job->mutex);
}

void cw_verify_job_run(cw_verify_job_t *job, cw_cancel_t *cancel, cw_verify_pair_t *pair)
{
	pair_run_t *run = job;
	const cw_entity_t *entity = &job->entity;
	const cw_target_config_t *target = job->target;
	run->pair = pair;
	run->started_ms = vj_now_ms();
	run->next_progress_ms = run->started_ms + PROGRESS_INTERVAL_MS;
	snprintf(pair->entity, sizeof pair->entity, "%s", entity->name);
	snprintf(pair->target, sizeof pair->target, "%s", target->name);
	pair->run_id = job->run_id;
	int rc = 0;
	if ((run->src = cw_verify_source_open(run->source, entity, target, &pair->err)) == NULL)
		rc = pair->err.code;
	if (rc == 0 && (run->tgt = cw_verify_target_open(run->config, target, entity,
	                                                  &pair->err)) == NULL)
		rc = pair->err.code;
	if (rc == 0)
		rc = cw_verify_endpoints_match(run->src, run->tgt, run->hub, &pair->err);
	if (rc == 0) {
		char about[48] = "";
		if (cw_verify_endpoint_estimate(run->src) > 0)
			snprintf(about, sizeof about, " (about %llu rows)",
			         (unsigned long long)cw_verify_endpoint_estimate(run->src));
		cw_log_info(DOMAIN, "entity \"%s\" target \"%s\": run %lld starts%s%s", entity->name,
		            target->name, (long long)pair->run_id, about,
		            run->opts->repair ? ", repairing what differs" : "");
		cw_verify_compare_opts_t copts = {0};
		copts.expected_rows = cw_verify_endpoint_estimate(run->src);
		copts.settle = vj_settle;
		copts.on_chunk = on_chunk;
		copts.progress = progress;
		copts.arg = run;
		rc = cw_verify_compare(cw_verify_endpoint_side(run->src),
		                       cw_verify_endpoint_side(run->tgt), &copts, cancel, &pair->result,
		                       &pair->err);
	}
	pair->seconds = (double)(vj_now_ms() - run->started_ms) / 1000.0;
	if (rc == CW_ECANCELED)
		pair->status = "canceled";
	else if (rc != 0)
		pair->status = "failed";
	else
		pair->status = total_differences(&pair->result) > 0 ? "different" : "equal";
	pair->report = report_json(run);
	pair_end(run);
	count_metrics(run);
	double rate = pair->seconds > 0 ? (double)pair->result.rows_read / pair->seconds : 0;
	cw_log_info(DOMAIN, "entity \"%s\" target \"%s\": run %lld %s: %llu source rows, %llu target "
	            "rows, %llu missing, %llu extra, %llu different, %llu stale, %llu repaired, "
	            "%.1f s, %.0f rows/s%s%s", entity->name, target->name, (long long)pair->run_id,
	            pair->status, (unsigned long long)pair->result.source_rows,
	            (unsigned long long)pair->result.target_rows,
	            (unsigned long long)pair->result.differences[CW_VERIFY_MISSING],
	            (unsigned long long)pair->result.differences[CW_VERIFY_EXTRA],
	            (unsigned long long)pair->result.differences[CW_VERIFY_DIFFERENT],
	            (unsigned long long)pair->result.differences[CW_VERIFY_STALE],
	            (unsigned long long)pair->repaired, pair->seconds, rate,
	            rc != 0 && rc != CW_ECANCELED ? ": " : "",
	            rc != 0 && rc != CW_ECANCELED ? pair->err.message : "");
	run->run_id = 0;   /* recorded: free must not touch the row */
}

static bool named(const char *const *names, size_t n, const char *name)
{
	if (n == 0)
		return true;
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return true;
	return false;
}

int cw_verify_run(const cw_config_t *config, const cw_verify_opts_t *opts, cw_cancel_t *cancel,
                  cw_verify_pair_t **pairs, size_t *npairs, cw_err_t *err)
{
	*pairs = NULL;
	*npairs = 0;
	for (size_t i = 0; i < opts->ntargets; i++) {
		const cw_target_config_t *found = cw_config_target(config, opts->targets[i]);
		if (found == NULL)
			return cw_err_set(err, CW_ENOTFOUND, DOMAIN, "no target named \"%s\" is configured",
			                  opts->targets[i]);
	}
	cw_hub_t *hub = cw_hub_connect_auth(config->hub.url, config->hub.auth, err);
	if (hub == NULL)
		return CW_EDB;
	/* An older hub has no verify_runs: say to migrate rather than fail on the table. */
	if (cw_hub_schema_check(hub, err) != 0) {
		cw_hub_close(hub);
		return CW_EDB;
	}
	cw_entity_t *entities = NULL;
	size_t nentities = 0;
	int rc = cw_entity_store_list(hub, false, &entities, &nentities, err);
	cw_hub_close(hub);
	for (size_t i = 0; i < opts->nentities && rc == 0; i++) {
		const cw_entity_t *found = NULL;
		for (size_t e = 0; e < nentities; e++)
			if (strcmp(entities[e].name, opts->entities[i]) == 0)
				found = &entities[e];
		if (found == NULL)
			rc = cw_err_set(err, CW_ENOTFOUND, DOMAIN, "no entity named \"%s\" in the hub",
			                opts->entities[i]);
		else
			rc = check_entity(config, found, err);
	}
	size_t cap = 0;
	for (size_t e = 0; e < nentities && rc == 0; e++) {
		const cw_entity_t *entity = &entities[e];
		if (!named(opts->entities, opts->nentities, entity->name) ||
		    check_entity(config, entity, NULL) != 0)
			continue;
		for (size_t t = 0; t < config->ntargets && rc == 0; t++) {
			const cw_target_config_t *target = &config->targets[t];
			if (!named(opts->targets, opts->ntargets, target->name))
				continue;
			if (!pair_readable(cw_config_source(config, entity->source), entity, target)) {
				/* Both named: say so rather than compare nothing. */
				if (opts->nentities > 0 && opts->ntargets > 0)
					rc = cw_err_set(err, CW_EINVAL, DOMAIN, "verify does not compare entity "
					                "\"%s\" with %s target \"%s\" yet (docs/verify.md)",
					                entity->name, cw_target_type_name(target->type),
					                target->name);
				continue;
			}
			if (*npairs == cap) {
				cap = cap ? cap * 2 : 8;
				*pairs = cw_xrealloc(*pairs, cap * sizeof **pairs);
			}
			cw_verify_pair_t *pair = &(*pairs)[(*npairs)++];
			memset(pair, 0, sizeof *pair);
			snprintf(pair->entity, sizeof pair->entity, "%s", entity->name);
			snprintf(pair->target, sizeof pair->target, "%s", target->name);
			cw_verify_job_t *job = cw_verify_job_begin(config, entity->name, target->name, opts,
			                                           NULL, &pair->err);
			if (job == NULL) {
				pair->status = pair->err.code == CW_ECONFLICT ? "refused" : "failed";
				continue;
			}
			cw_verify_job_run(job, cancel, pair);
			cw_verify_job_free(job);
			if (strcmp(pair->status, "canceled") == 0)
				rc = cw_err_set(err, CW_ECANCELED, DOMAIN, "verify was canceled");
		}
	}
	for (size_t i = 0; i < *npairs && rc == 0; i++)
		if (strcmp((*pairs)[i].status, "refused") == 0)
			rc = cw_err_set(err, CW_ECONFLICT, DOMAIN, "%s", (*pairs)[i].err.message);
	cw_entity_store_list_free(entities, nentities);
	return rc;
}
