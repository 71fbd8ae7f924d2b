/* This file contains batch mode's poller over a backend (batch_poll.h). */
#include "capture/batch_poll.h"

#include "capture/capture_writer.h"
#include "core/clock.h"
#include "core/cron.h"
#include "core/failpoint.h"
#include "core/log.h"
#include "core/mem.h"
#include "hub/entity_store.h"
#include "hub/metadata.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DOMAIN "batch"

/* One batch entity's poll state, kept across runs and reloads. */
typedef struct cw_batch_poll {
	char entity[CW_ENTITY_NAME_MAX + 1];
	cw_batch_marker_t marker;
	bool loaded;                    /* marker read from the hub this run */
	int64_t next_poll_ms;           /* monotonic; 0 = now */
	int64_t next_delete_ms;         /* monotonic; 0 = after the first complete poll */
} poll_t;

static poll_t *poll_of(cw_batch_poller_t *p, const char *entity)
{
	for (size_t i = 0; i < p->npolls; i++)
		if (strcmp(p->polls[i].entity, entity) == 0)
			return &p->polls[i];
	p->polls = cw_xrealloc(p->polls, (p->npolls + 1) * sizeof *p->polls);
	poll_t *poll = &p->polls[p->npolls++];
	memset(poll, 0, sizeof *poll);
	snprintf(poll->entity, sizeof poll->entity, "%s", entity);
	return poll;
}

void cw_batch_poller_reset(cw_batch_poller_t *p)
{
	for (size_t i = 0; i < p->npolls; i++)
		p->polls[i].loaded = false;
}

void cw_batch_poller_forget(cw_batch_poller_t *p)
{
	for (size_t i = 0; i < p->npolls; i++)
		cw_batch_marker_clear(&p->polls[i].marker);
	free(p->polls);
	p->polls = NULL;
	p->npolls = 0;
}

bool cw_batch_zone_is_utc(const char *zone)
{
	static const char *const names[] = {"UTC", "Etc/UTC", "GMT", "Etc/GMT", "Z", "Zulu",
	                                    "UCT", "Etc/UCT", "Universal", "+00:00", "-00:00"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcasecmp(zone, names[i]) == 0)
			return true;
	return false;
}

/* The entity's settings from the configuration file (batch mode lives only there). */
static const cw_entity_t *settings_of(const cw_batch_poller_t *p, const cw_entity_t *entity)
{
	return cw_config_entity(p->config, entity->name);
}

/* ---- polling ------------------------------------------------------------- */

static char *marker_key(const cw_entity_t *entity)
{
	return cw_xasprintf("batch_marker:%s", entity->name);
}

/* Reads the entity's marker from the hub; a marker of another generation starts over. */
static int load_marker(cw_batch_poller_t *p, const cw_entity_t *entity, poll_t *poll,
                       cw_err_t *err)
{
	if (poll->loaded && poll->marker.version == entity->version)
		return 0;
	char *key = marker_key(entity);
	char *json = NULL;
	int rc = cw_metadata_get(p->hub, key, &json, err);
	free(key);
	cw_batch_marker_clear(&poll->marker);
	if (rc == CW_ENOTFOUND) {
		rc = 0;
	} else if (rc == 0 && cw_batch_marker_decode(json, &poll->marker, NULL) != 0) {
		cw_log_kv(CW_LOG_WARN, p->component, "batch marker unreadable: reading the table again",
		          "source", p->source, "entity", entity->name, NULL);
		cw_batch_marker_clear(&poll->marker);
	}
	free(json);
	if (rc != 0)
		return rc;
	if (poll->marker.version != entity->version) {
		cw_batch_marker_clear(&poll->marker);
		poll->marker.version = entity->version;
	}
	poll->loaded = true;
	return 0;
}

static int describe(cw_batch_poller_t *p, size_t i, const cw_entity_t *entity,
                    cw_batch_query_t *q, const char **zone, cw_err_t *err)
{
	const cw_entity_t *settings = settings_of(p, entity);
	memset(q, 0, sizeof *q);
	if (settings == NULL)
		return cw_err_set(err, CW_ENOTFOUND, DOMAIN, "entity \"%s\" is not configured",
		                  entity->name);
	q->column = settings->batch.column;
	q->lag_ms = settings->batch.lag_ms;
	q->limit = p->config->capture.batch_size;
	*zone = settings->batch.timezone;
	int rc = p->ops->describe(p->self, i, q, zone, err);
	if (rc != 0)
		return rc;
	if (q->nkeys == 0 || q->nkeys > CW_BATCH_MAX_KEYS)
		return cw_err_set(err, CW_EINVAL, DOMAIN, "batch entity \"%s\": no usable key",
		                  entity->name);
	return 0;
}

/* Appends the batch with the marker in one hub transaction. */
static int commit_page(cw_batch_poller_t *p, const cw_entity_t *entity, const poll_t *poll,
                       cw_err_t *err)
{
	char *key = marker_key(entity);
	char *json = cw_batch_marker_encode(&poll->marker);
	cw_capture_job_t job = {key, json, true, 0, 0, false};
	int rc = cw_capture_append(p->writer, p->batch, &job, p->metrics, err);
	if (rc == 0)
		cw_change_batch_clear(p->batch);
	free(json);
	free(key);
	return rc;
}

/* Appends what the backend pushed (if anything) without a marker. */
static int append_plain(cw_batch_poller_t *p, cw_err_t *err)
{
	int rc = 0;
	if (p->batch->len > 0)
		rc = cw_capture_append(p->writer, p->batch,
		                       &(cw_capture_job_t){NULL, NULL, true, 0, 0, false}, p->metrics,
		                       err);
	cw_change_batch_clear(p->batch);
	return rc;
}

/* After the first complete read of a generation: a sweep of older rows, then live. */
static int go_live(cw_batch_poller_t *p, cw_entity_t *entity, cw_err_t *err)
{
	cw_change_t sweep = {0, CW_OP_SWEEP, cw_xstrdup(entity->name), NULL, NULL, entity->version,
	                     cw_xstrdup("batch"), 0};
	cw_change_batch_push(p->batch, &sweep);
	int rc = append_plain(p, err);
	int64_t promoted = 0;
	if (rc == 0)
		rc = cw_oplog_promote_staged(p->hub, entity->name, &promoted, err);
	cw_entity_registry_invalidate(p->registry);
	if (rc == 0) {
		entity->status = CW_ENTITY_LIVE;
		char version[32];
		snprintf(version, sizeof version, "%lld", (long long)entity->version);
		cw_log_kv(CW_LOG_INFO, p->component, "entity live", "source", p->source, "entity",
		          entity->name, "version", version, NULL);
	}
	return rc;
}

/* One poll of entity i: every page up to the end, each committed with its marker. */
static int poll_entity(cw_batch_poller_t *p, size_t i, cw_entity_t *entity, poll_t *poll,
                       cw_cancel_t *cancel, cw_err_t *err)
{
	cw_batch_query_t q;
	const char *zone = NULL;
	int rc;
	if ((rc = load_marker(p, entity, poll, err)) != 0 ||
	    (rc = describe(p, i, entity, &q, &zone, err)) != 0)
		return rc;
	/* A generation's first read: targets learn the table's columns first. */
	if (poll->marker.value == NULL && (rc = p->ops->begin(p->self, i, err)) != 0)
		return rc;
	cw_buf_t sql[2] = {CW_BUF_INIT, CW_BUF_INIT};
	cw_batch_sql_page(&q, false, &sql[0]);
	cw_batch_sql_page(&q, true, &sql[1]);
	bool caught_up = false;
	while (rc == 0 && !caught_up) {
		if (cw_cancel_is_set(cancel)) {
			rc = CW_ECANCELED;
			break;
		}
		bool marker = poll->marker.value != NULL;
		const char *params[CW_BATCH_MAX_PARAMS];
		int nparams = cw_batch_page_params(&q, poll->marker.value,
		                                   (const char *const *)poll->marker.keys, zone, params);
		int64_t n = 0;
		rc = p->ops->page(p->self, i, &q, cw_buf_cstr(&sql[marker]), params, nparams, p->batch,
		                  &poll->marker, &n, &p->newest_commit_us, err);
		if (rc == 0 && n > 0) {
			poll->marker.rows += n;
			rc = commit_page(p, entity, poll, err);
		}
		/* A page and its marker are in the hub, the next page not yet read. */
		if (rc == 0 && n > 0 && CW_FAILPOINT("batch_page_committed"))
			rc = cw_err_set(err, CW_EIO, DOMAIN, "failpoint batch_page_committed");
		caught_up = n < q.limit;
	}
	cw_buf_free(&sql[0]);
	cw_buf_free(&sql[1]);
	cw_change_batch_clear(p->batch);
	/* An error leaves the marker at the last page committed: read it again. */
	if (rc != 0)
		poll->loaded = false;
	if (rc == 0 && entity->status != CW_ENTITY_LIVE)
		rc = go_live(p, entity, err);
	return rc;
}

/* ---- deletes ------------------------------------------------------------- */

void cw_batch_bucket_set(cw_batch_bucket_t buckets[CW_BATCH_BUCKETS], const char *bucket,
                         const char *count, const char *sum)
{
	long b = strtol(bucket, NULL, 10);
	if (b < 0 || b >= CW_BATCH_BUCKETS)
		return;
	buckets[b].count = strtoll(count, NULL, 10);
	snprintf(buckets[b].sum, sizeof buckets[b].sum, "%s", sum);
}

void cw_batch_read_buckets(const PGresult *res, cw_batch_bucket_t buckets[CW_BATCH_BUCKETS])
{
	memset(buckets, 0, CW_BATCH_BUCKETS * sizeof *buckets);
	for (int r = 0; r < PQntuples(res); r++)
		cw_batch_bucket_set(buckets, PQgetvalue(res, r, 0), PQgetvalue(res, r, 1),
		                    PQgetvalue(res, r, 2));
}

static int compare_text(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The result's first column, sorted (pointers borrowed from res). */
static const char **sorted_column(const PGresult *res)
{
	int n = PQntuples(res);
	const char **items = cw_xcalloc((size_t)n + 1, sizeof *items);
	for (int r = 0; r < n; r++)
		items[r] = PQgetvalue(res, r, 0);
	qsort(items, (size_t)n, sizeof *items, compare_text);
	return items;
}

/* Pushes a delete of entity for each key of hub_keys (sorted) not among source_keys (sorted). */
static size_t push_deletes(cw_batch_poller_t *p, const cw_entity_t *entity,
                           const char **hub_keys, size_t nhub, char **source_keys,
                           size_t nsource)
{
	size_t j = 0, deletes = 0;
	for (size_t i = 0; i < nhub; i++) {
		while (j < nsource && strcmp(source_keys[j], hub_keys[i]) < 0)
			j++;
		if (j < nsource && strcmp(source_keys[j], hub_keys[i]) == 0)
			continue;
		cw_change_t change = {0};
		change.op = CW_OP_DELETE;
		change.entity = cw_xstrdup(entity->name);
		change.doc_id = cw_xstrdup(hub_keys[i]);
		change.version = entity->version;
		change.source_pos = cw_xstrdup("batch:delete_detection");
		cw_change_batch_push(p->batch, &change);
		deletes++;
	}
	return deletes;
}

static void free_ids(char **ids, size_t nids)
{
	for (size_t i = 0; i < nids; i++)
		free(ids[i]);
	free(ids);
}

/*
 * Sends a hub statement without waiting for its result (hub_result reads
 * it), so that the table's side runs on its own server meanwhile. The hub's
 * key set cannot change while this poller compares (only its own writes
 * change it), and the hub's statement starts first. 0 or CW_EDB.
 */
static int hub_send(cw_batch_poller_t *p, const char *sql, int nparams,
                    const char *const *params, cw_err_t *err)
{
	if (!PQsendQueryParams(cw_hub_pgconn(p->hub), sql, nparams, NULL, params, NULL, NULL, 0))
		return cw_hub_conn_error(p->hub, "could not read the hub's batch keys", err);
	return 0;
}

/* The result of the statement hub_send sent (owned by the caller), or NULL with err filled. */
static PGresult *hub_result(cw_batch_poller_t *p, cw_err_t *err)
{
	PGresult *res = NULL, *next;
	while ((next = PQgetResult(cw_hub_pgconn(p->hub))) != NULL) {
		if (res == NULL)
			res = next;
		else
			PQclear(next);
	}
	if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK)
		return res;
	cw_hub_result_error(p->hub, res, "could not read the hub's batch keys", err);
	PQclear(res);
	return NULL;
}

/*
 * The buckets whose count or sum differ, as an int[] literal ("{1,7}") in
 * list; 1 when the backend cannot bucket this entity's keys (every key is
 * listed then). The hub's buckets and the table's are computed at once.
 */
static int differing_buckets(cw_batch_poller_t *p, size_t i, const cw_entity_t *entity,
                             const cw_batch_query_t *q, cw_buf_t *list, size_t *differing,
                             cw_err_t *err)
{
	if (p->ops->buckets == NULL)
		return 1;
	cw_batch_bucket_t *hub = cw_xcalloc(CW_BATCH_BUCKETS, sizeof *hub);
	cw_batch_bucket_t *source = cw_xcalloc(CW_BATCH_BUCKETS, sizeof *source);
	const char *name[] = {entity->name};
	/* The hub first: a key the hub has and the table lacks was deleted. */
	int rc = hub_send(p, cw_batch_sql_hub_buckets(), 1, name, err);
	if (rc == 0) {
		cw_err_t source_err = {0};
		int source_rc = p->ops->buckets(p->self, i, q, source, &source_err);
		PGresult *res = hub_result(p, err);
		if (res == NULL)
			rc = CW_EDB;
		else
			cw_batch_read_buckets(res, hub);
		PQclear(res);
		if (rc == 0 && source_rc != 0) {
			rc = source_rc;
			if (source_rc < 0)
				*err = source_err;
		}
	}
	*differing = 0;
	cw_buf_append_char(list, '{');
	for (int b = 0; b < CW_BATCH_BUCKETS && rc == 0; b++) {
		if (hub[b].count == source[b].count && strcmp(hub[b].sum, source[b].sum) == 0)
			continue;
		/* Only the table has keys here: rows the next poll writes, nothing to delete. */
		if (hub[b].count == 0)
			continue;
		cw_buf_appendf(list, "%s%d", *differing ? "," : "", b);
		(*differing)++;
	}
	cw_buf_append_char(list, '}');
	free(hub);
	free(source);
	return rc;
}

/*
 * Compares the hub's live keys of entity i with the table's: buckets first
 * when the backend can, then the keys of the buckets that differ; else every
 * key. The hub's statement starts before the table's, so a row inserted
 * meanwhile is in neither, or only in the table. Deletes go to the hub in
 * one batch.
 */
static int detect_deletes(cw_batch_poller_t *p, size_t i, const cw_entity_t *entity,
                          cw_err_t *err)
{
	cw_batch_query_t q;
	const char *zone;
	int rc = describe(p, i, entity, &q, &zone, err);
	if (rc != 0)
		return rc;
	cw_buf_t list = CW_BUF_INIT;
	size_t differing = 0, deletes = 0, nids = 0;
	char **ids = NULL;
	PGresult *hub_res = NULL;
	const char **hub_keys = NULL;
	const char *params[] = {entity->name, NULL};
	cw_err_t source_err = {0};
	int source_rc;
	rc = differing_buckets(p, i, entity, &q, &list, &differing, err);
	bool listed = rc == 1;
	if (rc < 0 || (!listed && differing == 0))
		goto cleanup;
	params[1] = cw_buf_cstr(&list);
	/* The hub's keys and the table's are read at once (hub_send). */
	rc = listed ? hub_send(p, "SELECT doc_id FROM cachewarp.batch_keys WHERE entity = $1", 1,
	                       params, err)
	            : hub_send(p, cw_batch_sql_hub_bucket_keys(), 2, params, err);
	if (rc != 0)
		goto cleanup;
	source_rc = p->ops->keys(p->self, i, &q, listed ? NULL : cw_buf_cstr(&list), &ids, &nids,
	                         &source_err);
	hub_res = hub_result(p, err);
	if (hub_res == NULL) {
		rc = CW_EDB;
		goto cleanup;
	}
	if ((rc = source_rc) != 0) {
		*err = source_err;
		goto cleanup;
	}
	hub_keys = sorted_column(hub_res);
	qsort(ids, nids, sizeof *ids, compare_text);
	deletes = push_deletes(p, entity, hub_keys, (size_t)PQntuples(hub_res), ids, nids);
cleanup:
	if (rc >= 0) {
		rc = append_plain(p, err);
		char count[32], buckets[32];
		snprintf(count, sizeof count, "%zu", deletes);
		snprintf(buckets, sizeof buckets, "%zu", differing);
		if (rc == 0)
			cw_log_kv(CW_LOG_INFO, p->component, "keys compared", "source", p->source,
			          "entity", entity->name, "buckets_differing", listed ? "all" : buckets,
			          "deletes", count, NULL);
	}
	cw_change_batch_clear(p->batch);
	free(hub_keys);
	PQclear(hub_res);
	free_ids(ids, nids);
	cw_buf_free(&list);
	return rc;
}

/* ---- the run ------------------------------------------------------------- */

/* When an entity polls next, after one ending at now_ms (monotonic). */
static int64_t next_poll_ms(const cw_entity_t *settings, int64_t now_ms)
{
	if (settings->batch.schedule == NULL)
		return now_ms + cw_entity_poll_ms(settings);
	cw_cron_t cron;
	if (cw_cron_parse(settings->batch.schedule, &cron, NULL) != 0)
		return now_ms + 60000;
	int64_t wall_s = cw_clock_wall_us(cw_clock_system()) / 1000000;
	int64_t next_s = cw_cron_next(&cron, wall_s);
	if (next_s < 0)
		return INT64_MAX;
	return now_ms + (next_s - wall_s) * 1000;
}

static int64_t now_ms(void)
{
	return cw_clock_now_ms(cw_clock_system());
}

/*
 * After a poll of entity i failed with rc: when a new check of the entity
 * fails it (its table or column dropped, a privilege revoked) its siblings
 * go on (0); otherwise rc stands with its error.
 */
static int isolate_failure(cw_batch_poller_t *p, size_t i, int rc, cw_err_t *err)
{
	if (p->ops->recheck == NULL)
		return rc;
	cw_err_t why = *err;
	int check = p->ops->recheck(p->self, i, rc, err);
	if (check < 0)
		return check;
	bool failed = false;
	p->ops->entity(p->self, i, &failed);
	if (check == 0 && failed)
		return 0;
	*err = why;
	return rc;
}

/* Polls each due entity and runs each due delete check; lowers *wake_ms to the next due. */
static int poll_due(cw_batch_poller_t *p, cw_cancel_t *cancel, int64_t *wake_ms, cw_err_t *err)
{
	int rc = 0;
	size_t n = p->ops->nentities(p->self);
	for (size_t i = 0; i < n && rc == 0; i++) {
		bool failed = false;
		cw_entity_t *entity = p->ops->entity(p->self, i, &failed);
		const cw_entity_t *settings = settings_of(p, entity);
		if (failed || settings == NULL)
			continue;
		poll_t *poll = poll_of(p, entity->name);
		if (poll->next_poll_ms <= now_ms()) {
			p->ops->set_state(p->self, "polling", true);
			rc = poll_entity(p, i, entity, poll, cancel, err);
			if (rc != 0 && rc != CW_ECANCELED)
				rc = isolate_failure(p, i, rc, err);
			poll->next_poll_ms = next_poll_ms(settings, now_ms());
			if (rc == 0 && poll->next_delete_ms == 0 && settings->batch.delete_interval_ms > 0)
				poll->next_delete_ms = now_ms() + settings->batch.delete_interval_ms;
		}
		if (rc == 0 && poll->next_delete_ms != 0 && poll->next_delete_ms <= now_ms() &&
		    entity->status == CW_ENTITY_LIVE) {
			rc = detect_deletes(p, i, entity, err);
			poll->next_delete_ms = now_ms() + settings->batch.delete_interval_ms;
		}
		if (poll->next_poll_ms < *wake_ms)
			*wake_ms = poll->next_poll_ms;
		if (poll->next_delete_ms != 0 && poll->next_delete_ms < *wake_ms)
			*wake_ms = poll->next_delete_ms;
	}
	return rc;
}

int cw_batch_poller_run(cw_batch_poller_t *p, int64_t reload_ms, cw_cancel_t *cancel,
                        cw_err_t *err)
{
	cw_batch_poller_reset(p);
	int rc = p->ops->reload(p->self, cancel, err);
	if (rc != 0)
		return rc;
	int64_t next_reload = now_ms() + reload_ms;
	for (;;) {
		int64_t wake = next_reload;
		if ((rc = poll_due(p, cancel, &wake, err)) != 0)
			return rc;
		p->ops->set_state(p->self, "waiting", true);
		int64_t now = now_ms();
		if (wake > now && (rc = cw_cancel_wait_ms(cancel, wake - now)) != 0)
			return rc;
		if (now_ms() >= next_reload) {
			if ((rc = p->ops->reload(p->self, cancel, err)) != 0)
				return rc;
			next_reload = now_ms() + reload_ms;
		}
	}
}
