/*
 * This file contains the MongoDB source's change streams (mongo_internal.h):
 * opening a stream from its checkpoint or as a new generation, reading its
 * events into the hub with the resume token as the checkpoint, and the
 * position-loss, drop and invalidate handling that mongo_position.c decides.
 */
#include "capture/mongo_internal.h"

#include "core/log.h"
#include "core/mem.h"
#include "core/secret.h"
#include "hub/entity_registry.h"
#include "hub/entity_store.h"
#include "hub/metadata.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mongo_stream_close(mongo_stream_t *stream)
{
	if (stream->cursor != NULL)
		mongoc_change_stream_destroy(stream->cursor);
	stream->cursor = NULL;
}

/* "shop.products" or "shop" for messages. */
static void stream_name(const mongo_source_t *source, const mongo_stream_t *stream, char *out,
                        size_t size)
{
	if (stream->collection != NULL)
		snprintf(out, size, "%s.%s", source->config->database, stream->collection);
	else
		snprintf(out, size, "%s", source->config->database);
}

/*
 * Reads the stored checkpoint; *found false when there is none. A corrupt
 * one counts as lost (found, without a token): *lost_why says why.
 */
static int load_checkpoint(mongo_source_t *source, mongo_stream_t *stream,
                           cw_mongo_checkpoint_t *out, bool *found, const char **lost_why,
                           cw_err_t *err)
{
	char *json = NULL;
	cw_position_verdict_t verdict = CW_POSITION_VALID;
	memset(out, 0, sizeof *out);
	*found = false;
	*lost_why = "the stored checkpoint has no resume token";
	int rc = cw_metadata_get_position(source->hub, stream->key, &json, &verdict, err);
	if (rc == CW_ENOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	*found = true;
	cw_err_t parse_err = {0};
	if (verdict == CW_POSITION_CORRUPT) {
		cw_log_kv(CW_LOG_ERROR, MONGO_COMPONENT, "stored resume token failed its checksum: not "
		          "used", "source", source->ctx.name, "key", stream->key, NULL);
		*lost_why = "the stored checkpoint failed its checksum";
	} else if (cw_mongo_checkpoint_parse(json, out, &parse_err) != 0) {
		cw_log_kv(CW_LOG_ERROR, MONGO_COMPONENT, "stored resume token is unreadable", "source",
		          source->ctx.name, "key", stream->key, "error", parse_err.message, NULL);
		memset(out, 0, sizeof *out);
	}
	free(json);
	return 0;
}

/* Opens the cursor, resuming after checkpoint's token when resume is not NULL. */
static mongoc_change_stream_t *open_cursor(mongo_source_t *source, size_t i,
                                           const cw_mongo_checkpoint_t *resume)
{
	mongo_stream_t *stream = &source->streams[i];
	bson_t *opts = BCON_NEW("fullDocument", BCON_UTF8("updateLookup"),
	                        "maxAwaitTimeMS", BCON_INT64(source->ctx.config->capture.flush_interval_ms),
	                        "batchSize", BCON_INT32((int32_t)source->ctx.config->capture.batch_size));
	if (resume != NULL && resume->token != NULL)
		BSON_APPEND_DOCUMENT(opts, resume->start_after ? "startAfter" : "resumeAfter",
		                     resume->token);
	bson_t pipeline = BSON_INITIALIZER;
	bson_t stages = BSON_INITIALIZER;
	mongoc_change_stream_t *cursor;
	if (stream->collection != NULL) {
		BSON_APPEND_ARRAY(&pipeline, "pipeline", &stages);
		mongoc_collection_t *coll = mongoc_client_get_collection(
			source->client, source->config->database, stream->collection);
		cursor = mongoc_collection_watch(coll, &pipeline, opts);
		mongoc_collection_destroy(coll);
	} else {
		const char **names = cw_xcalloc(source->nentities + 1, sizeof *names);
		for (size_t e = 0; e < source->nentities; e++)
			names[e] = source->entities[e].entity.collection;
		cw_mongo_database_pipeline(names, source->nentities, &stages);
		free(names);
		BSON_APPEND_ARRAY(&pipeline, "pipeline", &stages);
		mongoc_database_t *db = mongoc_client_get_database(source->client, source->config->database);
		cursor = mongoc_database_watch(db, &pipeline, opts);
		mongoc_database_destroy(db);
	}
	bson_destroy(&stages);
	bson_destroy(&pipeline);
	bson_destroy(opts);
	return cursor;
}

/*
 * Stores the stream's checkpoint (with the batch's rows, when any) in one
 * transaction; the writer then reaches failpoint (NULL: none).
 */
static int store_checkpoint_at(mongo_source_t *source, size_t i, const bson_t *token,
                               bool start_after, const char *failpoint, cw_err_t *err)
{
	mongo_stream_t *stream = &source->streams[i];
	bson_t *copy = token != NULL ? bson_copy(token) : NULL;
	cw_mongo_checkpoint_t next = {copy, start_after, stream->checkpoint.generation,
	                              mongo_stream_scanning(source, i)};
	char *json = cw_mongo_checkpoint_json(&next);
	int rc = mongo_flush_at(source, stream->key, json, false, failpoint, err);
	free(json);
	if (rc != 0) {
		cw_mongo_checkpoint_clear(&next);
		return rc;
	}
	cw_mongo_checkpoint_clear(&stream->checkpoint);
	stream->checkpoint = next;
	stream->last_checkpoint_ms = cw_clock_now_ms(source->clock);
	mongo_set_position(source, token, -1);
	return 0;
}

static int store_checkpoint(mongo_source_t *source, size_t i, const bson_t *token,
                            bool start_after, cw_err_t *err)
{
	return store_checkpoint_at(source, i, token, start_after, NULL, err);
}

/* Every entity of stream i (and of collection, unless NULL) gets a new generation and a sweep. */
static int sweep_generation(mongo_source_t *source, size_t i, const char *collection, cw_err_t *err)
{
	for (size_t e = 0; e < source->nentities; e++) {
		mongo_entity_t *entity = &source->entities[e];
		if (entity->stream != i ||
		    (collection != NULL && strcmp(entity->entity.collection, collection) != 0))
			continue;
		int rc = mongo_bump_entity(source, entity, err);
		if (rc != 0)
			return rc;
		cw_change_t sweep = {0, CW_OP_SWEEP, cw_xstrdup(entity->entity.name), NULL, NULL,
		                     entity->entity.version, NULL, 0};
		cw_change_batch_push(&source->batch, &sweep);
	}
	source->streams[i].bumped = true;
	return 0;
}

/* The position of stream i is unknown: every entity not still pending is scanned again. */
static int rescan_generation(mongo_source_t *source, size_t i, cw_err_t *err)
{
	/* Queued changes of these entities must reach the oplog before they turn scanning. */
	int synced = mongo_sync(source, err);
	if (synced != 0)
		return synced;
	for (size_t e = 0; e < source->nentities; e++) {
		mongo_entity_t *entity = &source->entities[e];
		if (entity->stream != i)
			continue;
		if (entity->entity.status != CW_ENTITY_PENDING) {
			int rc = mongo_bump_entity(source, entity, err);
			if (rc == 0)
				rc = cw_entity_store_set_status(source->hub, entity->entity.name,
				                                CW_ENTITY_SCANNING, err);
			cw_entity_registry_invalidate(source->ctx.registry);
			if (rc != 0)
				return rc;
			entity->entity.status = CW_ENTITY_SCANNING;
		}
		entity->scanning = true;
		mongo_scan_restart(entity);
	}
	return 0;
}

static int position_lost(mongo_source_t *source, size_t i, const char *why, cw_err_t *err)
{
	char name[256];
	stream_name(source, &source->streams[i], name, sizeof name);
	bool fail = source->config->on_position_lost == CW_POSITION_LOST_FAIL;
	cw_log_kv(CW_LOG_ERROR, MONGO_COMPONENT, "change stream position lost", "source",
	          source->ctx.name, "stream", name, "reason", why, "action",
	          fail ? "fail (on_position_lost: fail)" : "rescan: new generation", NULL);
	mongo_set_state(source, "position_lost", false, why);
	source->recovering = true;
	if (fail)
		return cw_err_set(err, CW_EDB, MONGO_COMPONENT,
		                  "change stream on \"%s\" lost its position (%s) and on_position_lost is fail",
		                  name, why);
	return 0;
}

/* A stream without a usable position: open it fresh, store its token, scan its entities. */
static int start_generation(mongo_source_t *source, size_t i, int64_t generation, cw_err_t *err)
{
	mongo_stream_t *stream = &source->streams[i];
	char name[256];
	stream_name(source, stream, name, sizeof name);
	bson_error_t error;
	stream->cursor = open_cursor(source, i, NULL);
	if (mongoc_change_stream_error_document(stream->cursor, &error, NULL)) {
		mongo_stream_close(stream);
		return cw_err_set(err, CW_EIO, MONGO_COMPONENT, "could not open a change stream on \"%s\": %s",
		                  name, error.message);
	}
	stream->bumped = false;
	int rc = rescan_generation(source, i, err);
	if (rc != 0)
		return rc;
	stream->checkpoint.generation = generation;
	const bson_t *token = mongoc_change_stream_get_resume_token(stream->cursor);
	if ((rc = store_checkpoint(source, i, token, false, err)) != 0)
		return rc;
	char g[24];
	snprintf(g, sizeof g, "%lld", (long long)generation);
	cw_log_kv(CW_LOG_INFO, MONGO_COMPONENT, "change stream opened for a new generation", "source",
	          source->ctx.name, "stream", name, "generation", g, "token",
	          token != NULL ? "stored" : "none yet (stored with the first event)", NULL);
	return 0;
}

int mongo_stream_start(mongo_source_t *source, size_t i, cw_err_t *err)
{
	mongo_stream_t *stream = &source->streams[i];
	cw_mongo_checkpoint_t stored;
	bool found = false;
	const char *lost_why = NULL;
	int rc = mongo_sync(source, err);   /* the checkpoint may still be queued */
	if (rc == 0)
		rc = load_checkpoint(source, stream, &stored, &found, &lost_why, err);
	if (rc != 0)
		return rc;
	cw_mongo_start_t start = cw_mongo_start_decide(found ? &stored : NULL);
	int64_t generation = found && stored.generation > 0 ? stored.generation : 0;
	if (start == CW_MONGO_START_RESUME) {
		bson_error_t error;
		const bson_t *reply = NULL;
		stream->cursor = open_cursor(source, i, &stored);
		if (!mongoc_change_stream_error_document(stream->cursor, &error, &reply)) {
			cw_mongo_checkpoint_clear(&stream->checkpoint);
			stream->checkpoint = stored;
			stream->bumped = false;
			mongo_set_position(source, stored.token, -1);
			return 0;
		}
		mongo_stream_close(stream);
		cw_mongo_checkpoint_clear(&stored);
		if (cw_mongo_error_classify(error.domain, error.code, error.message) !=
		    CW_MONGO_ERROR_POSITION_LOST) {
			char name[256];
			stream_name(source, stream, name, sizeof name);
			return cw_err_set(err, CW_EIO, MONGO_COMPONENT,
			                  "could not resume the change stream on \"%s\": %s", name, error.message);
		}
		if ((rc = position_lost(source, i, error.message, err)) != 0)
			return rc;
	} else {
		cw_mongo_checkpoint_clear(&stored);
		if (start == CW_MONGO_START_LOST && (rc = position_lost(source, i, lost_why, err)) != 0)
			return rc;
	}
	return start_generation(source, i, generation + 1, err);
}

/* Pushes one data change (upsert, delete or a quarantine) for each entity of the collection. */
static int capture_change(mongo_source_t *source, size_t i, const cw_mongo_event_t *event,
                          cw_mongo_action_t action, const bson_t *raw, cw_err_t *err)
{
	const mongo_stream_t *stream = &source->streams[i];
	const char *collection = stream->collection != NULL ? stream->collection : event->collection;
	if (collection == NULL)
		return 0;
	char pos[128];
	cw_mongo_token_summary(event->has_token ? &event->token : NULL, pos, sizeof pos);
	cw_err_t id_err = {0};
	char *doc_id = event->has_doc_id ? cw_projection_doc_id(&event->doc_id, &id_err) : NULL;
	char reason[CW_ERR_MESSAGE_LEN + 64];
	if (action == CW_MONGO_QUARANTINE)
		snprintf(reason, sizeof reason, "%s event without %s", event->operation,
		         event->has_doc_id ? "a full document" : "documentKey._id");
	else if (doc_id == NULL)
		snprintf(reason, sizeof reason, "unusable _id: %s", id_err.message);
	int rc = 0;
	for (size_t e = 0; e < source->nentities && rc == 0; e++) {
		mongo_entity_t *entity = &source->entities[e];
		if (entity->stream != i || strcmp(entity->entity.collection, collection) != 0)
			continue;
		if (action == CW_MONGO_QUARANTINE || doc_id == NULL) {
			rc = mongo_quarantine(source, entity->entity.name, doc_id, pos, reason, raw, err);
		} else if (action == CW_MONGO_UPSERT) {
			rc = mongo_push_upsert(source, entity, &event->full_document, doc_id, pos,
			                       event->time_us, err);
		} else {
			cw_change_t change = {0, CW_OP_DELETE, cw_xstrdup(entity->entity.name),
			                      cw_xstrdup(doc_id), NULL, entity->entity.version,
			                      cw_xstrdup(pos), event->time_us};
			cw_change_batch_push(&source->batch, &change);
		}
	}
	free(doc_id);
	return rc;
}

/* drop, rename, dropDatabase, invalidate: a new generation and a sweep, stored with the token. */
static int end_of_collection(mongo_source_t *source, size_t i, const cw_mongo_event_t *event,
                             cw_err_t *err)
{
	mongo_stream_t *stream = &source->streams[i];
	/* The rows before the event first, with the checkpoint of the last of them (not past
	 * this event yet): a restart reads this event again, never those rows. */
	int rc = 0;
	bson_t last;
	if (source->batch.len > 0 && stream->last_token_len > 0 &&
	    bson_init_static(&last, stream->last_token, stream->last_token_len))
		rc = store_checkpoint_at(source, i, &last, false, "before_end_of_collection", err);
	else
		rc = mongo_flush(source, NULL, NULL, false, err);
	if (rc != 0)
		return rc;
	cw_mongo_end_plan_t plan = cw_mongo_end_plan_for(event, stream->bumped);
	if (plan.sweep) {
		const char *collection = plan.whole_stream
			? NULL : (event->collection != NULL ? event->collection : stream->collection);
		if ((rc = sweep_generation(source, i, collection, err)) != 0)
			return rc;
	}
	char name[256];
	stream_name(source, stream, name, sizeof name);
	cw_log_kv(CW_LOG_WARN, MONGO_COMPONENT,
	          plan.reopen ? "change stream invalidated: reopening after it"
	                      : "collection dropped or renamed: new generation and sweep",
	          "source", source->ctx.name, "stream", name, "operation", event->operation, NULL);
	if ((rc = store_checkpoint(source, i, event->has_token ? &event->token : NULL,
	                           plan.start_after, err)) != 0)
		return rc;
	if (plan.reopen)
		mongo_stream_close(stream);
	return 0;
}

static int handle_event(mongo_source_t *source, size_t i, const bson_t *doc, int64_t *time_us,
                        cw_err_t *err)
{
	cw_mongo_event_t event;
	cw_err_t read_err = {0};
	if (cw_mongo_event_read(doc, &event, &read_err) != 0) {
		cw_log_kv(CW_LOG_WARN, MONGO_COMPONENT, "change event skipped", "source",
		          source->ctx.name, "error", read_err.message, NULL);
		return 0;
	}
	if (event.time_us != 0)
		*time_us = event.time_us;
	cw_mongo_action_t action = cw_mongo_event_action(&event);
	mongo_stream_t *stream = &source->streams[i];
	if (action != CW_MONGO_NEW_GENERATION && action != CW_MONGO_INVALIDATE) {
		/* Kept for a drop later in this poll: the checkpoint of the rows before it. */
		bool fits = event.has_token && event.token.len <= MONGO_TOKEN_MAX;
		if (fits)
			memcpy(stream->last_token, bson_get_data(&event.token), event.token.len);
		stream->last_token_len = fits ? event.token.len : 0;
	}
	switch (action) {
	case CW_MONGO_SKIP:
	case CW_MONGO_SKIP_GONE:
		return 0;
	case CW_MONGO_UPSERT:
	case CW_MONGO_DELETE:
	case CW_MONGO_QUARANTINE:
		return capture_change(source, i, &event, action, doc, err);
	case CW_MONGO_NEW_GENERATION:
	case CW_MONGO_INVALIDATE:
		return end_of_collection(source, i, &event, err);
	}
	return 0;
}

/* After an error reading stream i: lost position (new generation next) or a transient error. */
static int stream_failed(mongo_source_t *source, size_t i, const bson_error_t *error, cw_err_t *err)
{
	mongo_stream_t *stream = &source->streams[i];
	char name[256];
	stream_name(source, stream, name, sizeof name);
	mongo_stream_close(stream);
	if (cw_mongo_error_classify(error->domain, error->code, error->message) !=
	    CW_MONGO_ERROR_POSITION_LOST)
		return cw_err_set(err, CW_EIO, MONGO_COMPONENT, "change stream on \"%s\" failed: %s",
		                  name, error->message);
	int rc = position_lost(source, i, error->message, err);
	if (rc != 0)
		return rc;
	/* Forget the token, durably: the next start (in this run or after a crash) rescans. */
	return store_checkpoint(source, i, NULL, false, err);
}

int mongo_stream_poll(mongo_source_t *source, size_t i, size_t *events, cw_err_t *err)
{
	mongo_stream_t *stream = &source->streams[i];
	size_t limit = (size_t)source->ctx.config->capture.batch_size;
	const bson_t *doc = NULL;
	int64_t time_us = 0;
	int rc = 0;
	*events = 0;
	stream->last_token_len = 0;
	while (*events < limit && source->batch.bytes < CW_CAPTURE_BATCH_MAX_BYTES &&
	       stream->cursor != NULL && mongoc_change_stream_next(stream->cursor, &doc)) {
		(*events)++;
		if ((rc = handle_event(source, i, doc, &time_us, err)) != 0)
			return rc;
	}
	if (stream->cursor == NULL)   /* invalidated: reopened in the next round */
		return 0;
	bson_error_t error;
	bool failed = mongoc_change_stream_error_document(stream->cursor, &error, NULL);
	const bson_t *token = mongoc_change_stream_get_resume_token(stream->cursor);
	bool moved = token != NULL && (stream->checkpoint.token == NULL ||
	                               !bson_equal(token, stream->checkpoint.token));
	int64_t now = cw_clock_now_ms(source->clock);
	if (source->batch.len > 0 ||
	    (moved && now - stream->last_checkpoint_ms >= MONGO_TOKEN_ONLY_CHECKPOINT_MS))
		rc = store_checkpoint(source, i, moved ? token : stream->checkpoint.token,
		                      moved ? false : stream->checkpoint.start_after, err);
	if (rc != 0)
		return rc;
	if (failed)
		return stream_failed(source, i, &error, err);
	int64_t wall = cw_clock_wall_us(source->clock);
	mongo_set_position(source, NULL, *events == 0 || time_us == 0
	                   ? 0.0 : (double)(wall - time_us) / 1e6);
	return 0;
}
