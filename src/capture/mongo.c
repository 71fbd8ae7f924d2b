/*
 * This file contains the MongoDB source (source.h, docs/sources-mongodb.md):
 * its interface, the run loop and the set of entities it captures. Change
 * streams are in mongo_stream.c, initial scans in mongo_scan.c, the pure
 * decisions in mongo_position.c.
 *
 * One thread reads, cooperatively: each round polls every stream once
 * (queueing what it read, with its checkpoint, for the writer thread of
 * mongo_writer.c), then runs one scan batch of an entity that is being
 * scanned. A scanning entity's live
 * changes therefore reach the hub's staging area while its scan runs, and are
 * promoted after it (DESIGN.md §4). Every run starts from what the hub holds
 * (entities, checkpoints, scan progress), so a run after an error or a crash
 * resumes where the last committed batch left off.
 */
#include "capture/mongo_internal.h"

#include "capture/mongo.h"

#include "core/auth.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/secret.h"
#include "hub/entity_registry.h"
#include "hub/entity_store.h"
#include "hub/metadata.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LAG_METRIC "cachewarp_source_lag_seconds"
#define QUARANTINE_METRIC "cachewarp_quarantined_total"

static void *mongo_open(const cw_component_ctx_t *ctx, cw_err_t *err)
{
	const cw_source_config_t *config = cw_config_source(ctx->config, ctx->name);
	if (config == NULL || config->type != CW_SOURCE_MONGODB) {
		cw_err_set(err, CW_EINVAL, MONGO_COMPONENT, "no mongodb source \"%s\"", ctx->name);
		return NULL;
	}
	if (config->database == NULL || config->database[0] == '\0') {
		cw_err_set(err, CW_EINVAL, MONGO_COMPONENT, "source \"%s\": no database configured",
		           ctx->name);
		return NULL;
	}
	mongoc_init();   /* idempotent; the driver's global state lives until exit */
	mongo_source_t *source = cw_xcalloc(1, sizeof *source);
	source->ctx = *ctx;
	source->config = config;
	source->clock = cw_clock_system();
	pthread_mutex_init(&source->mutex, NULL);
	snprintf(source->status.state, sizeof source->status.state, "starting");
	source->status.lag_bytes = -1;
	source->status.lag_seconds = -1;
	source->status.lag_ids = -1;
	cw_capture_declare_metrics(ctx->metrics);
	cw_metrics_declare(ctx->metrics, LAG_METRIC, CW_METRIC_GAUGE,
	                   "Seconds between the newest captured change and now, per source.");
	cw_metrics_declare(ctx->metrics, QUARANTINE_METRIC, CW_METRIC_COUNTER,
	                   "Records set aside in the hub's quarantine, per entity.");
	cw_metrics_declare(ctx->metrics, "cachewarp_snapshot_documents_total", CW_METRIC_COUNTER,
	                   "Documents read by initial scans, per entity.");
	return source;
}

static void mongo_status(void *self, cw_component_status_t *out)
{
	mongo_source_t *source = self;
	pthread_mutex_lock(&source->mutex);
	*out = source->status;
	pthread_mutex_unlock(&source->mutex);
}

void mongo_set_state(mongo_source_t *source, const char *state, bool healthy, const char *error)
{
	cw_component_status_set(&source->mutex, &source->status, state, healthy, error);
}

void mongo_set_position(mongo_source_t *source, const bson_t *token, double lag_seconds)
{
	char labels[96];
	snprintf(labels, sizeof labels, "source=\"%s\"", source->ctx.name);
	if (lag_seconds >= 0)
		cw_metrics_gauge_set(source->ctx.metrics, LAG_METRIC, labels, lag_seconds);
	pthread_mutex_lock(&source->mutex);
	if (token != NULL)
		cw_mongo_token_summary(token, source->status.position, sizeof source->status.position);
	if (lag_seconds >= 0)
		source->status.lag_seconds = lag_seconds;
	pthread_mutex_unlock(&source->mutex);
}

int mongo_quarantine(mongo_source_t *source, const char *entity, const char *doc_id,
                     const char *source_pos, const char *reason, const bson_t *raw, cw_err_t *err)
{
	char *raw_json = raw != NULL ? bson_as_relaxed_extended_json(raw, NULL) : NULL;
	cw_quarantine_record_t record = {entity, doc_id, source_pos, reason, raw_json};
	int rc = cw_quarantine_add(source->hub, &record, err);
	bson_free(raw_json);
	if (rc != 0)
		return rc;
	cw_log_kv(CW_LOG_WARN, MONGO_COMPONENT, "record quarantined", "source", source->ctx.name,
	          "entity", entity, "doc_id", doc_id != NULL ? doc_id : "", "reason", reason, NULL);
	char labels[96];
	snprintf(labels, sizeof labels, "entity=\"%s\"", entity);
	cw_metrics_counter_add(source->ctx.metrics, QUARANTINE_METRIC, labels, 1);
	return 0;
}

int mongo_push_upsert(mongo_source_t *source, mongo_entity_t *entity, const bson_t *doc,
                      const char *doc_id, const char *source_pos, int64_t time_us, cw_err_t *err)
{
	cw_err_t projection_err = {0};
	if (cw_projection_bson(entity->projection, doc, &source->data, &projection_err) != 0)
		return mongo_quarantine(source, entity->entity.name, doc_id, source_pos,
		                        projection_err.message, doc, err);
	cw_change_t change = {0, CW_OP_UPSERT, cw_xstrdup(entity->entity.name), cw_xstrdup(doc_id),
	                      cw_xstrndup(source->data.data, source->data.len),
	                      entity->entity.version, cw_xstrdup(source_pos), time_us};
	cw_change_batch_push(&source->batch, &change);
	return 0;
}

int mongo_bump_entity(mongo_source_t *source, mongo_entity_t *entity, cw_err_t *err)
{
	int64_t version = 0;
	int rc = cw_entity_store_bump_version(source->hub, entity->entity.name, &version, err);
	cw_entity_registry_invalidate(source->ctx.registry);
	if (rc != 0)
		return rc;
	entity->entity.version = version;
	if (entity->scanning)
		mongo_scan_restart(entity);
	char v[24];
	snprintf(v, sizeof v, "%lld", (long long)version);
	cw_log_kv(CW_LOG_INFO, MONGO_COMPONENT, "new generation", "source", source->ctx.name,
	          "entity", entity->entity.name, "version", v, NULL);
	return 0;
}

bool mongo_stream_scanning(const mongo_source_t *source, size_t stream)
{
	for (size_t i = 0; i < source->nentities; i++)
		if (source->entities[i].stream == stream && source->entities[i].scanning)
			return true;
	return false;
}

static void entity_free(mongo_entity_t *entity)
{
	cw_projection_free(entity->projection);
	cw_mongo_scan_progress_clear(&entity->progress);
	cw_entity_clear(&entity->entity);
}

static void stream_free(mongo_stream_t *stream)
{
	mongo_stream_close(stream);
	cw_mongo_checkpoint_clear(&stream->checkpoint);
	free(stream->collection);
	free(stream->key);
	free(stream->collections_signature);
}

/* The index of the stream for collection (NULL: the database stream), created when missing. */
static size_t stream_for(mongo_source_t *source, const char *collection)
{
	for (size_t i = 0; i < source->nstreams; i++) {
		const char *c = source->streams[i].collection;
		if ((c == NULL && collection == NULL) ||
		    (c != NULL && collection != NULL && strcmp(c, collection) == 0))
			return i;
	}
	source->streams = cw_xrealloc(source->streams, (source->nstreams + 1) * sizeof *source->streams);
	mongo_stream_t *stream = &source->streams[source->nstreams];
	memset(stream, 0, sizeof *stream);
	stream->collection = cw_xstrdup(collection);
	stream->key = collection != NULL
		? cw_xasprintf("mongo_resume_token:%s:%s", source->ctx.name, collection)
		: cw_xasprintf("mongo_resume_token:%s", source->ctx.name);
	return source->nstreams++;
}

/* Whether the hub's entity belongs to this source and passes the --entity filter. */
static bool wanted(const mongo_source_t *source, const cw_entity_t *entity)
{
	return cw_entity_is_captured(entity) && entity->collection != NULL &&
	       strcmp(entity->source, source->ctx.name) == 0 &&
	       cw_component_wants(&source->ctx, entity->name);
}

/* Merges one hub entity into the set; 0, or CW_EINVAL when its shape does not compile. */
static int merge_entity(mongo_source_t *source, const cw_entity_t *row, cw_err_t *err)
{
	for (size_t i = 0; i < source->nentities; i++) {
		mongo_entity_t *known = &source->entities[i];
		if (strcmp(known->entity.name, row->name) != 0)
			continue;
		known->listed = true;
		bool refreshed = row->version != known->entity.version ||
		                 (row->status != CW_ENTITY_LIVE && !known->scanning);
		if (refreshed) {   /* a hard refresh or a new generation made elsewhere */
			known->entity.version = row->version;
			known->entity.status = row->status;
			known->scanning = row->status != CW_ENTITY_LIVE;
			mongo_scan_restart(known);
		}
		return 0;
	}
	cw_projection_t *projection = cw_projection_new(row, CW_PROJECTION_MISSING_NULL, err);
	if (projection == NULL)
		return CW_EINVAL;
	source->entities = cw_xrealloc(source->entities,
	                               (source->nentities + 1) * sizeof *source->entities);
	mongo_entity_t *added = &source->entities[source->nentities++];
	memset(added, 0, sizeof *added);
	cw_entity_copy(&added->entity, row);
	added->projection = projection;
	added->scanning = row->status != CW_ENTITY_LIVE;
	added->listed = true;
	added->stream = stream_for(source, source->config->watch == CW_WATCH_COLLECTION
	                                   ? row->collection : NULL);
	return 0;
}

/* Drops entities no longer listed and streams no entity uses; renumbers the rest. */
static void prune(mongo_source_t *source)
{
	size_t kept = 0;
	for (size_t i = 0; i < source->nentities; i++) {
		if (!source->entities[i].listed) {
			cw_log_kv(CW_LOG_INFO, MONGO_COMPONENT, "entity no longer captured", "source",
			          source->ctx.name, "entity", source->entities[i].entity.name, NULL);
			entity_free(&source->entities[i]);
			continue;
		}
		source->entities[kept++] = source->entities[i];
		source->streams[source->entities[i].stream].listed = true;
	}
	source->nentities = kept;
	size_t nstreams = 0;
	for (size_t s = 0; s < source->nstreams; s++) {
		if (!source->streams[s].listed) {
			stream_free(&source->streams[s]);
			continue;
		}
		for (size_t i = 0; i < source->nentities; i++)
			if (source->entities[i].stream == s)
				source->entities[i].stream = nstreams;
		source->streams[nstreams++] = source->streams[s];
	}
	source->nstreams = nstreams;
}

/* The database stream reopens (from its checkpoint) when its collections change. */
static void check_database_filter(mongo_source_t *source)
{
	for (size_t s = 0; s < source->nstreams; s++) {
		mongo_stream_t *stream = &source->streams[s];
		if (stream->collection != NULL)
			continue;
		cw_buf_t signature = CW_BUF_INIT;
		for (size_t i = 0; i < source->nentities; i++) {
			cw_buf_append_str(&signature, source->entities[i].entity.collection);
			cw_buf_append_char(&signature, '\n');
		}
		char *text = cw_buf_take(&signature);
		if (stream->collections_signature != NULL &&
		    strcmp(stream->collections_signature, text) != 0)
			mongo_stream_close(stream);
		free(stream->collections_signature);
		stream->collections_signature = text;
	}
}

/* Reads the entity set from the hub again. */
static int reload_entities(mongo_source_t *source, cw_err_t *err)
{
	cw_entity_t *rows = NULL;
	size_t count = 0;
	int rc = cw_entity_registry_list(source->ctx.registry, source->hub, false, &rows, &count, err);
	if (rc != 0)
		return rc;
	for (size_t i = 0; i < source->nentities; i++)
		source->entities[i].listed = false;
	for (size_t s = 0; s < source->nstreams; s++)
		source->streams[s].listed = false;
	for (size_t i = 0; i < count && rc == 0; i++)
		if (wanted(source, &rows[i]))
			rc = merge_entity(source, &rows[i], err);
	cw_entity_store_list_free(rows, count);
	if (rc != 0)
		return rc;
	prune(source);
	check_database_filter(source);
	source->last_reload_ms = cw_clock_now_ms(source->clock);
	return 0;
}

static int connect_once(mongo_source_t *source, cw_err_t *err)
{
	bson_error_t error;
	char *masked = cw_secret_mask(source->config->url);
	int rc = 0;
	cw_err_t why;
	mongoc_uri_t *uri = mongoc_uri_new_with_error(source->config->url, &error);
	if (uri == NULL) {
		rc = cw_err_set(err, CW_EINVAL, MONGO_COMPONENT, "bad mongodb url \"%s\": %s", masked,
		                error.message);
		goto out;
	}
	if ((rc = cw_auth_mongo_uri(source->config->auth, uri, &why)) != 0) {
		cw_err_set(err, rc, MONGO_COMPONENT, "could not connect to mongodb \"%s\": %s", masked,
		           why.message);
		goto out;
	}
	mongoc_uri_set_appname(uri, "cachewarp");
	/* Fail fast when unreachable (the job server backs off), and stop within the shutdown grace. */
	if (!mongoc_uri_has_option(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS))
		mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, MONGO_CONNECT_TIMEOUT_MS);
	if (!mongoc_uri_has_option(uri, MONGOC_URI_CONNECTTIMEOUTMS))
		mongoc_uri_set_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS, MONGO_CONNECT_TIMEOUT_MS);
	source->client = mongoc_client_new_from_uri_with_error(uri, &error);
	if (source->client == NULL) {
		rc = cw_err_set(err, CW_EINVAL, MONGO_COMPONENT, "bad mongodb url \"%s\": %s", masked,
		                error.message);
		goto out;
	}
	mongoc_client_set_error_api(source->client, MONGOC_ERROR_API_VERSION_2);
	bson_t *ping = BCON_NEW("ping", BCON_INT32(1));
	bool ok = mongoc_client_command_simple(source->client, "admin", ping, NULL, NULL, &error);
	bson_destroy(ping);
	if (!ok && cw_mongo_error_classify(error.domain, error.code, error.message) ==
	           CW_MONGO_ERROR_AUTH)
		rc = cw_err_set(err, CW_EAUTH, MONGO_COMPONENT, "mongodb \"%s\" refused the "
		                "credentials: %s: fix %s%s%s", masked, error.message,
		                source->config->auth ? "authentication \"" : "the user and password of "
		                "sources[].url", source->config->auth ? source->config->auth->id : "",
		                source->config->auth ? "\"" : "");
	else if (!ok)
		rc = cw_err_set(err, CW_EIO, MONGO_COMPONENT, "could not reach mongodb \"%s\": %s",
		                masked, error.message);
out:
	mongoc_uri_destroy(uri);
	free(masked);
	return rc;
}

/*
 * Connects and pings. When the server refuses the output of an
 * authentication command, the command runs again and the connection is
 * tried once more before the caller backs off.
 */
static int connect_mongo(mongo_source_t *source, cw_err_t *err)
{
	int rc = connect_once(source, err);
	if (rc == CW_EAUTH && source->client != NULL && cw_auth_refused(source->config->auth)) {
		mongoc_client_destroy(source->client);
		source->client = NULL;
		rc = connect_once(source, err);
	}
	return rc;
}

/* Index of an entity to scan whose stream is open, or nentities. */
static size_t next_scan(const mongo_source_t *source)
{
	for (size_t i = 0; i < source->nentities; i++) {
		const mongo_entity_t *entity = &source->entities[i];
		if (entity->scanning && source->streams[entity->stream].cursor != NULL)
			return i;
	}
	return source->nentities;
}

/* One round: every stream once, then one scan batch. *busy tells whether it did work. */
static int run_round(mongo_source_t *source, bool *busy, cw_err_t *err)
{
	*busy = false;
	int rc = 0;
	for (size_t s = 0; s < source->nstreams && rc == 0; s++) {
		if (source->streams[s].cursor == NULL) {
			rc = mongo_stream_start(source, s, err);
			*busy = true;
			continue;
		}
		size_t events = 0;
		rc = mongo_stream_poll(source, s, &events, err);
		*busy = *busy || events > 0;
	}
	size_t scan = next_scan(source);
	if (rc == 0 && scan < source->nentities) {
		rc = mongo_scan_step(source, scan, err);
		*busy = true;
	}
	if (rc == 0)
		rc = mongo_writer_check(source, err);
	bool scanning = next_scan(source) < source->nentities;
	if (!scanning)
		source->recovering = false;
	mongo_set_state(source, scanning ? "snapshot" : "streaming", !source->recovering, NULL);
	return rc;
}

static void end_run(mongo_source_t *source)
{
	mongo_writer_stop(source);
	for (size_t i = 0; i < source->nentities; i++)
		entity_free(&source->entities[i]);
	free(source->entities);
	source->entities = NULL;
	source->nentities = 0;
	for (size_t s = 0; s < source->nstreams; s++)
		stream_free(&source->streams[s]);
	free(source->streams);
	source->streams = NULL;
	source->nstreams = 0;
	cw_change_batch_free(&source->batch);
	cw_buf_free(&source->data);
	cw_hub_close(source->hub);
	source->hub = NULL;
	if (source->client != NULL)
		mongoc_client_destroy(source->client);
	source->client = NULL;
}

/*
 * After a failed run: give up once runs have failed for retry.give_up_after
 * (0: never), and at once when MongoDB refused the credentials.
 */
static void note_failure(mongo_source_t *source, cw_err_t *err)
{
	int64_t now = cw_clock_now_ms(source->clock);
	int64_t give_up_after = source->ctx.config->retry.give_up_after_ms;
	if (err->code == CW_EAUTH) {
		snprintf(source->give_up_reason, sizeof source->give_up_reason, "source \"%s\": %.400s",
		         source->ctx.name, err->message);
		source->gave_up = true;
		mongo_set_state(source, "failed", false, source->give_up_reason);
		cw_log_kv(CW_LOG_ERROR, MONGO_COMPONENT, "giving up: restart cachewarp once the "
		          "credentials are fixed", "source", source->ctx.name, "error", err->message, NULL);
		return;
	}
	if (source->first_failure_ms == 0) {
		source->first_failure_ms = now;
		return;
	}
	if (give_up_after <= 0 || now - source->first_failure_ms < give_up_after)
		return;
	snprintf(source->give_up_reason, sizeof source->give_up_reason,
	         "source \"%s\" gave up after failing for %llds: %.300s", source->ctx.name,
	         (long long)((now - source->first_failure_ms) / 1000), err->message);
	source->gave_up = true;
	mongo_set_state(source, "failed", false, source->give_up_reason);
	cw_log_kv(CW_LOG_ERROR, MONGO_COMPONENT, "giving up: restart cachewarp once the cause is fixed",
	          "source", source->ctx.name, "error", err->message, NULL);
	cw_err_set(err, CW_ETIMEDOUT, MONGO_COMPONENT, "%s", source->give_up_reason);
}

static int mongo_run(void *self, cw_cancel_t *cancel, cw_err_t *err)
{
	mongo_source_t *source = self;
	cw_err_t local_err = {0};
	if (err == NULL)
		err = &local_err;
	int64_t poll_ms = source->ctx.config->capture.flush_interval_ms;
	int rc = 0;
	if (source->gave_up) {
		mongo_set_state(source, "failed", false, NULL);
		return cw_err_set(err, CW_ETIMEDOUT, MONGO_COMPONENT, "%s", source->give_up_reason);
	}
	mongo_set_state(source, "starting", false, NULL);
	source->hub = cw_hub_connect_auth(source->ctx.config->hub.url, source->ctx.config->hub.auth, err);
	if (source->hub == NULL) {
		rc = CW_EDB;
		goto out;
	}
	if ((rc = mongo_writer_start(source, err)) != 0 || (rc = connect_mongo(source, err)) != 0 ||
	    (rc = reload_entities(source, err)) != 0)
		goto out;
	source->first_failure_ms = 0;   /* connected: failures in a row start over */
	while (!cw_cancel_is_set(cancel)) {
		int64_t started = cw_clock_now_ms(source->clock);
		if (started - source->last_reload_ms >= MONGO_RELOAD_MS &&
		    (rc = reload_entities(source, err)) != 0)
			break;
		bool busy = false;
		if ((rc = run_round(source, &busy, err)) != 0)
			break;
		int64_t spent = cw_clock_now_ms(source->clock) - started;
		/* The test server returns empty batches at once: never spin on them. */
		if (!busy && spent < poll_ms && cw_cancel_wait_ms(cancel, poll_ms - spent) != 0)
			break;
	}
	if (rc == 0)
		rc = CW_ECANCELED;
out:
	if (rc != CW_ECANCELED) {
		/* The job server logs the error and calls run again after its backoff. */
		mongo_set_state(source, "retrying", false, err->message);
		note_failure(source, err);
		if (source->gave_up)
			rc = err->code == CW_EAUTH ? CW_EAUTH : CW_ETIMEDOUT;
	} else {
		mongo_set_state(source, "stopped", false, NULL);
		cw_err_set(err, CW_ECANCELED, MONGO_COMPONENT, "source \"%s\" stopped", source->ctx.name);
	}
	end_run(source);
	return rc;
}

static void mongo_close(void *self)
{
	mongo_source_t *source = self;
	if (source == NULL)
		return;
	end_run(source);
	pthread_mutex_destroy(&source->mutex);
	free(source);
}

const cw_source_ops_t cw_mongo_source_ops = {
	"mongodb", mongo_open, mongo_run, mongo_status, mongo_close,
};
