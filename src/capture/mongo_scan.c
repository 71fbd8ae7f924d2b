/*
 * This file contains the MongoDB source's initial scan (mongo_internal.h):
 * one entity's collection read in _id order, one batch per call, each batch
 * written to the oplog with the scan's progress in the same transaction, so a
 * restart continues after the last committed _id. The last batch carries the
 * generation's sweep; then the entity's staged live changes are promoted and
 * it goes live (DESIGN.md §4).
 */
#include "capture/mongo_internal.h"

#include "core/log.h"
#include "core/mem.h"
#include "hub/entity_registry.h"
#include "hub/entity_store.h"
#include "hub/metadata.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCAN_METRIC "cachewarp_snapshot_documents_total"

void mongo_scan_restart(mongo_entity_t *entity)
{
	cw_mongo_scan_progress_clear(&entity->progress);
	memset(&entity->progress, 0, sizeof entity->progress);
	entity->progress_loaded = false;
}

static char *progress_key(const mongo_source_t *source, const mongo_entity_t *entity)
{
	return cw_xasprintf("mongo_scan:%s:%s", source->ctx.name, entity->entity.name);
}

static int scan_begin(mongo_source_t *source, mongo_entity_t *entity, cw_err_t *err)
{
	char *key = progress_key(source, entity);
	char *json = NULL;
	cw_position_verdict_t verdict = CW_POSITION_VALID;
	int rc = mongo_sync(source, err);   /* progress and routing depend on what is queued */
	if (rc == 0)
		rc = cw_metadata_get_position(source->hub, key, &json, &verdict, err);
	if (rc == 0 && verdict == CW_POSITION_CORRUPT)
		cw_log_kv(CW_LOG_ERROR, MONGO_COMPONENT, "stored scan progress failed its checksum: the "
		          "scan starts again from the beginning", "source", source->ctx.name,
		          "key", key, NULL);
	free(key);
	if (rc != 0 && rc != CW_ENOTFOUND)
		return rc;
	cw_mongo_scan_progress_t stored;
	memset(&stored, 0, sizeof stored);
	bool readable = rc == 0 && verdict != CW_POSITION_CORRUPT &&
	                cw_mongo_scan_progress_parse(json, &stored, NULL) == 0;
	if (cw_mongo_scan_start_decide(readable ? &stored : NULL, entity->entity.version) !=
	    CW_MONGO_SCAN_FROM_FIRST) {
		entity->progress = stored;
	} else {
		cw_mongo_scan_progress_clear(&stored);
		memset(&entity->progress, 0, sizeof entity->progress);
		entity->progress.version = entity->entity.version;
	}
	free(json);
	if (entity->entity.status == CW_ENTITY_PENDING) {
		rc = cw_entity_store_set_status(source->hub, entity->entity.name, CW_ENTITY_SCANNING,
		                                err);
		cw_entity_registry_invalidate(source->ctx.registry);
		if (rc != 0)
			return rc;
		entity->entity.status = CW_ENTITY_SCANNING;
	}
	mongoc_collection_t *coll = mongoc_client_get_collection(
		source->client, source->config->database, entity->entity.collection);
	bson_error_t error;
	entity->scan_total = mongoc_collection_estimated_document_count(coll, NULL, NULL, NULL, &error);
	mongoc_collection_destroy(coll);
	entity->scan_started_ms = cw_clock_now_ms(source->clock);
	entity->scan_started_docs = entity->progress.docs;
	entity->last_report_ms = entity->scan_started_ms;
	entity->progress_loaded = true;
	char version[24], docs[24], total[24];
	snprintf(version, sizeof version, "%lld", (long long)entity->entity.version);
	snprintf(docs, sizeof docs, "%lld", (long long)entity->progress.docs);
	snprintf(total, sizeof total, "%lld", (long long)entity->scan_total);
	cw_log_kv(CW_LOG_INFO, MONGO_COMPONENT,
	          entity->progress.docs > 0 ? "scan resumed" : "scan started", "source",
	          source->ctx.name, "entity", entity->entity.name, "collection",
	          entity->entity.collection, "version", version, "docs_done", docs,
	          "docs_estimated", total, NULL);
	return 0;
}

static void report_progress(mongo_source_t *source, mongo_entity_t *entity, bool done)
{
	int64_t now = cw_clock_now_ms(source->clock);
	if (!done && now - entity->last_report_ms < MONGO_PROGRESS_LOG_MS)
		return;
	entity->last_report_ms = now;
	double seconds = (double)(now - entity->scan_started_ms) / 1000.0;
	double rate = seconds > 0 ? (double)(entity->progress.docs - entity->scan_started_docs) / seconds
	                          : 0.0;
	char docs[24], total[24], rate_text[32], eta[32];
	snprintf(docs, sizeof docs, "%lld", (long long)entity->progress.docs);
	snprintf(total, sizeof total, "%lld", (long long)entity->scan_total);
	snprintf(rate_text, sizeof rate_text, "%.0f/s", rate);
	if (done)
		snprintf(eta, sizeof eta, "0s");
	else if (rate > 0 && entity->scan_total > entity->progress.docs)
		snprintf(eta, sizeof eta, "%.0fs", (double)(entity->scan_total - entity->progress.docs) / rate);
	else
		snprintf(eta, sizeof eta, "unknown");
	cw_log_kv(CW_LOG_INFO, MONGO_COMPONENT, done ? "scan done" : "scan progress", "source",
	          source->ctx.name, "entity", entity->entity.name, "docs_done", docs,
	          "docs_estimated", total, "rate", rate_text, "eta", eta, NULL);
}

static int scan_finish(mongo_source_t *source, mongo_entity_t *entity, cw_err_t *err)
{
	int64_t promoted = 0;
	int rc = mongo_sync(source, err);   /* the scan's last batch and sweep first */
	if (rc != 0)
		return rc;
	rc = cw_oplog_promote_staged(source->hub, entity->entity.name, &promoted, err);
	cw_entity_registry_invalidate(source->ctx.registry);   /* the entity turned live */
	if (rc == CW_ECONFLICT || rc == CW_ENOTFOUND) {   /* deleted meanwhile: the reload drops it */
		entity->scanning = false;
		return 0;
	}
	if (rc != 0)
		return rc;
	entity->entity.status = CW_ENTITY_LIVE;
	entity->scanning = false;
	char *key = progress_key(source, entity);
	rc = cw_metadata_delete(source->hub, key, err);
	free(key);
	char staged[24];
	snprintf(staged, sizeof staged, "%lld", (long long)promoted);
	cw_log_kv(CW_LOG_INFO, MONGO_COMPONENT, "entity is live", "source", source->ctx.name,
	          "entity", entity->entity.name, "staged_changes_promoted", staged, NULL);
	return rc;
}

/* Reads one batch into source->batch; *last receives {_id} of its last document. */
static int read_batch(mongo_source_t *source, mongo_entity_t *entity, int64_t limit, bson_t *last,
                      int64_t *n, cw_err_t *err)
{
	bson_t filter = BSON_INITIALIZER;
	bson_iter_t last_id;
	if (entity->progress.last != NULL && bson_iter_init_find(&last_id, entity->progress.last, "_id"))
		cw_mongo_scan_filter(&last_id, &filter);
	bson_t *opts = BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}", "limit", BCON_INT64(limit));
	mongoc_collection_t *coll = mongoc_client_get_collection(
		source->client, source->config->database, entity->entity.collection);
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, &filter, opts, NULL);
	const bson_t *doc = NULL;
	int rc = 0;
	*n = 0;
	while (rc == 0 && mongoc_cursor_next(cursor, &doc)) {
		(*n)++;
		bson_iter_t id;
		cw_err_t id_err = {0};
		char *doc_id = NULL;
		if (bson_iter_init_find(&id, doc, "_id")) {
			bson_reinit(last);
			bson_append_iter(last, "_id", 3, &id);
			doc_id = cw_projection_doc_id(&id, &id_err);
		} else {
			cw_err_set(&id_err, CW_EINVAL, MONGO_COMPONENT, "document has no _id");
		}
		if (doc_id == NULL)
			rc = mongo_quarantine(source, entity->entity.name, NULL, "scan", id_err.message, doc, err);
		else
			rc = mongo_push_upsert(source, entity, doc, doc_id, NULL, 0, err);
		free(doc_id);
	}
	bson_error_t error;
	if (rc == 0 && mongoc_cursor_error(cursor, &error))
		rc = cw_err_set(err, CW_EIO, MONGO_COMPONENT, "could not scan \"%s.%s\": %s",
		                source->config->database, entity->entity.collection, error.message);
	mongoc_cursor_destroy(cursor);
	mongoc_collection_destroy(coll);
	bson_destroy(opts);
	bson_destroy(&filter);
	return rc;
}

int mongo_scan_step(mongo_source_t *source, size_t i, cw_err_t *err)
{
	mongo_entity_t *entity = &source->entities[i];
	int rc = 0;
	if (!entity->progress_loaded && (rc = scan_begin(source, entity, err)) != 0)
		return rc;
	if (entity->progress.done)   /* the sweep is written: only the promotion is left */
		return scan_finish(source, entity, err);
	int64_t limit = source->ctx.config->capture.batch_size;
	bson_t *last = bson_new();
	int64_t n = 0;
	if ((rc = read_batch(source, entity, limit, last, &n, err)) != 0) {
		bson_destroy(last);
		cw_change_batch_clear(&source->batch);
		return rc;
	}
	cw_mongo_scan_progress_t next = {entity->progress.version, n > 0 ? last : NULL,
	                                 entity->progress.docs + n, n < limit};
	if (next.done) {
		cw_change_t sweep = {0, CW_OP_SWEEP, cw_xstrdup(entity->entity.name), NULL, NULL,
		                     entity->entity.version, NULL, 0};
		cw_change_batch_push(&source->batch, &sweep);
	}
	char *json = cw_mongo_scan_progress_json(&next);
	char *key = progress_key(source, entity);
	/* Seams: a page and its progress committed, or the last page and the sweep (the
	 * scan's end, before the promotion and the stream's first batch). */
	rc = mongo_flush_at(source, key, json, true,
	                    next.done ? "after_scan_done" : "after_scan_page_commit", err);
	free(key);
	free(json);
	if (rc != 0) {
		bson_destroy(last);
		cw_change_batch_clear(&source->batch);
		return rc;
	}
	char labels[96];
	snprintf(labels, sizeof labels, "entity=\"%s\"", entity->entity.name);
	cw_metrics_counter_add(source->ctx.metrics, SCAN_METRIC, labels, (double)n);
	if (n > 0) {
		cw_mongo_scan_progress_clear(&entity->progress);
		entity->progress.last = last;
	} else {
		bson_destroy(last);
	}
	entity->progress.docs = next.docs;
	entity->progress.done = next.done;
	report_progress(source, entity, next.done);
	return next.done ? scan_finish(source, entity, err) : 0;
}
