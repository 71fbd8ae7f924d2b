/* This file contains the MongoDB source's pure decisions declared in mongo_position.h. */
#include "capture/mongo_position.h"

#include "core/buf.h"
#include "core/mem.h"

#include <jansson.h>
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#define DOMAIN "mongodb"

/* True when haystack contains needle, ignoring case. */
static bool contains_nocase(const char *haystack, const char *needle)
{
	size_t n = strlen(needle);
	for (const char *p = haystack; *p != '\0'; p++)
		if (strncasecmp(p, needle, n) == 0)
			return true;
	return false;
}

cw_mongo_error_kind_t cw_mongo_error_classify(uint32_t domain, uint32_t code, const char *message)
{
	bool from_server = domain == MONGOC_ERROR_SERVER || domain == MONGOC_ERROR_QUERY;
	if ((domain == MONGOC_ERROR_CLIENT && code == MONGOC_ERROR_CLIENT_AUTHENTICATE) ||
	    (from_server && code == CW_MONGO_AUTHENTICATION_FAILED))
		return CW_MONGO_ERROR_AUTH;
	if (!from_server)
		return CW_MONGO_ERROR_TRANSIENT;
	if (code == CW_MONGO_CHANGE_STREAM_HISTORY_LOST || code == CW_MONGO_CHANGE_STREAM_FATAL ||
	    code == CW_MONGO_CAPPED_POSITION_LOST)
		return CW_MONGO_ERROR_POSITION_LOST;
	if (message != NULL && (contains_nocase(message, "resume token") ||
	                        contains_nocase(message, "ChangeStreamHistoryLost") ||
	                        contains_nocase(message, "resume of change stream was not possible")))
		return CW_MONGO_ERROR_POSITION_LOST;
	return CW_MONGO_ERROR_TRANSIENT;
}

static const struct {
	const char *name;
	cw_mongo_event_type_t type;
} event_types[] = {
	{"insert", CW_MONGO_EV_INSERT},       {"update", CW_MONGO_EV_UPDATE},
	{"replace", CW_MONGO_EV_REPLACE},     {"delete", CW_MONGO_EV_DELETE},
	{"drop", CW_MONGO_EV_DROP},           {"rename", CW_MONGO_EV_RENAME},
	{"dropDatabase", CW_MONGO_EV_DROP_DATABASE}, {"invalidate", CW_MONGO_EV_INVALIDATE},
};

static int read_document_view(const bson_iter_t *iter, bson_t *out)
{
	uint32_t len = 0;
	const uint8_t *data = NULL;
	bson_iter_document(iter, &len, &data);
	return bson_init_static(out, data, len) ? 0 : -1;
}

static int event_field(cw_mongo_event_t *out, bson_iter_t *iter, cw_err_t *err)
{
	const char *key = bson_iter_key(iter);
	if (strcmp(key, "operationType") == 0) {
		if (!BSON_ITER_HOLDS_UTF8(iter))
			return cw_err_set(err, CW_EPROTO, DOMAIN, "change event: operationType is not a string");
		out->operation = bson_iter_utf8(iter, NULL);
	} else if (strcmp(key, "_id") == 0) {
		if (!BSON_ITER_HOLDS_DOCUMENT(iter) || read_document_view(iter, &out->token) != 0)
			return cw_err_set(err, CW_EPROTO, DOMAIN, "change event: _id is not a resume token document");
		out->has_token = true;
	} else if (strcmp(key, "ns") == 0 && BSON_ITER_HOLDS_DOCUMENT(iter)) {
		bson_iter_t child;
		if (bson_iter_recurse(iter, &child) && bson_iter_find(&child, "coll") &&
		    BSON_ITER_HOLDS_UTF8(&child))
			out->collection = bson_iter_utf8(&child, NULL);
	} else if (strcmp(key, "documentKey") == 0 && BSON_ITER_HOLDS_DOCUMENT(iter)) {
		bson_iter_t child;
		if (bson_iter_recurse(iter, &child) && bson_iter_find(&child, "_id")) {
			out->doc_id = child;
			out->has_doc_id = true;
		}
	} else if (strcmp(key, "fullDocument") == 0 && BSON_ITER_HOLDS_DOCUMENT(iter)) {
		if (read_document_view(iter, &out->full_document) != 0)
			return cw_err_set(err, CW_EPROTO, DOMAIN, "change event: fullDocument is corrupt");
		out->has_full_document = true;
	} else if (strcmp(key, "wallTime") == 0 && BSON_ITER_HOLDS_DATE_TIME(iter)) {
		/* A date no clock can hold (past ±292,000 years in µs) is ignored, not overflowed. */
		int64_t ms = bson_iter_date_time(iter);
		if (ms <= INT64_MAX / 1000 && ms >= INT64_MIN / 1000)
			out->time_us = ms * 1000;
	} else if (strcmp(key, "clusterTime") == 0 && BSON_ITER_HOLDS_TIMESTAMP(iter) &&
	           out->time_us == 0) {
		uint32_t seconds = 0, increment = 0;
		bson_iter_timestamp(iter, &seconds, &increment);
		out->time_us = (int64_t)seconds * 1000000;
	}
	return 0;
}

int cw_mongo_event_read(const bson_t *event, cw_mongo_event_t *out, cw_err_t *err)
{
	memset(out, 0, sizeof *out);
	out->operation = "";
	bson_iter_t iter;
	if (!bson_iter_init(&iter, event))
		return cw_err_set(err, CW_EPROTO, DOMAIN, "change event is corrupt");
	int64_t wall_us = 0;
	while (bson_iter_next(&iter)) {
		int rc = event_field(out, &iter, err);
		if (rc != 0)
			return rc;
		if (strcmp(bson_iter_key(&iter), "wallTime") == 0)
			wall_us = out->time_us;
	}
	if (wall_us != 0)
		out->time_us = wall_us;   /* wallTime wins over clusterTime, whatever the field order */
	for (size_t i = 0; i < sizeof event_types / sizeof event_types[0]; i++)
		if (strcmp(out->operation, event_types[i].name) == 0)
			out->type = event_types[i].type;
	return 0;
}

cw_mongo_action_t cw_mongo_event_action(const cw_mongo_event_t *event)
{
	switch (event->type) {
	case CW_MONGO_EV_INSERT:
		if (!event->has_doc_id || !event->has_full_document)
			return CW_MONGO_QUARANTINE;
		return CW_MONGO_UPSERT;
	case CW_MONGO_EV_UPDATE:
	case CW_MONGO_EV_REPLACE:
		if (!event->has_doc_id)
			return CW_MONGO_QUARANTINE;
		return event->has_full_document ? CW_MONGO_UPSERT : CW_MONGO_SKIP_GONE;
	case CW_MONGO_EV_DELETE:
		return event->has_doc_id ? CW_MONGO_DELETE : CW_MONGO_QUARANTINE;
	case CW_MONGO_EV_DROP:
	case CW_MONGO_EV_RENAME:
	case CW_MONGO_EV_DROP_DATABASE:
		return CW_MONGO_NEW_GENERATION;
	case CW_MONGO_EV_INVALIDATE:
		return CW_MONGO_INVALIDATE;
	case CW_MONGO_EV_OTHER:
		break;
	}
	return CW_MONGO_SKIP;
}

cw_mongo_end_plan_t cw_mongo_end_plan_for(const cw_mongo_event_t *event, bool swept_since_open)
{
	cw_mongo_end_plan_t plan = {false, false, false, false};
	if (event->type == CW_MONGO_EV_INVALIDATE) {
		plan.sweep = !swept_since_open;
		plan.whole_stream = true;
		plan.start_after = true;
		plan.reopen = true;
	} else {
		plan.sweep = true;
		plan.whole_stream = event->type == CW_MONGO_EV_DROP_DATABASE;
	}
	return plan;
}

cw_mongo_start_t cw_mongo_start_decide(const cw_mongo_checkpoint_t *checkpoint)
{
	if (checkpoint == NULL)
		return CW_MONGO_START_FIRST;
	return checkpoint->token != NULL ? CW_MONGO_START_RESUME : CW_MONGO_START_LOST;
}

char *cw_mongo_checkpoint_json(const cw_mongo_checkpoint_t *checkpoint)
{
	cw_buf_t out = CW_BUF_INIT;
	cw_buf_append_str(&out, "{\"token\":");
	if (checkpoint->token != NULL) {
		char *token = bson_as_canonical_extended_json(checkpoint->token, NULL);
		cw_buf_append_str(&out, token);
		bson_free(token);
	} else {
		cw_buf_append_str(&out, "null");
	}
	cw_buf_appendf(&out, ",\"start_after\":%s,\"generation\":%lld,\"status\":\"%s\"}",
	               checkpoint->start_after ? "true" : "false",
	               (long long)checkpoint->generation,
	               checkpoint->scanning ? "scanning" : "live");
	return cw_buf_take(&out);
}

/* A JSON object member (borrowed from root) as a new BSON document, NULL for null/absent. */
static int member_as_bson(json_t *root, const char *key, bson_t **out, cw_err_t *err)
{
	*out = NULL;
	json_t *value = json_object_get(root, key);
	if (value == NULL || json_is_null(value))
		return 0;
	if (!json_is_object(value))
		return cw_err_set(err, CW_EPROTO, DOMAIN, "\"%s\" is not an object", key);
	char *text = json_dumps(value, JSON_COMPACT);
	bson_error_t error;
	*out = text != NULL ? bson_new_from_json((const uint8_t *)text, -1, &error) : NULL;
	free(text);
	if (*out == NULL)
		return cw_err_set(err, CW_EPROTO, DOMAIN, "\"%s\" is not extended JSON", key);
	return 0;
}

static json_t *load_object(const char *json, const char *what, cw_err_t *err)
{
	json_error_t error;
	json_t *root = json_loads(json != NULL ? json : "", 0, &error);
	if (root == NULL || !json_is_object(root)) {
		json_decref(root);
		cw_err_set(err, CW_EPROTO, DOMAIN, "%s is not a JSON object", what);
		return NULL;
	}
	return root;
}

int cw_mongo_checkpoint_parse(const char *json, cw_mongo_checkpoint_t *out, cw_err_t *err)
{
	memset(out, 0, sizeof *out);
	json_t *root = load_object(json, "resume token checkpoint", err);
	if (root == NULL)
		return CW_EPROTO;
	int rc = member_as_bson(root, "token", &out->token, err);
	json_t *generation = json_object_get(root, "generation");
	json_t *status = json_object_get(root, "status");
	if (rc == 0 && (!json_is_integer(generation) || json_integer_value(generation) < 1))
		rc = cw_err_set(err, CW_EPROTO, DOMAIN, "resume token checkpoint has no generation");
	if (rc == 0) {
		out->generation = json_integer_value(generation);
		out->start_after = json_is_true(json_object_get(root, "start_after"));
		out->scanning = json_is_string(status) &&
		                strcmp(json_string_value(status), "scanning") == 0;
	}
	json_decref(root);
	if (rc != 0)
		cw_mongo_checkpoint_clear(out);
	return rc;
}

void cw_mongo_checkpoint_clear(cw_mongo_checkpoint_t *checkpoint)
{
	if (checkpoint == NULL)
		return;
	if (checkpoint->token != NULL)
		bson_destroy(checkpoint->token);
	checkpoint->token = NULL;
}

char *cw_mongo_scan_progress_json(const cw_mongo_scan_progress_t *progress)
{
	cw_buf_t out = CW_BUF_INIT;
	cw_buf_appendf(&out, "{\"version\":%lld,\"last\":", (long long)progress->version);
	if (progress->last != NULL) {
		char *last = bson_as_canonical_extended_json(progress->last, NULL);
		cw_buf_append_str(&out, last);
		bson_free(last);
	} else {
		cw_buf_append_str(&out, "null");
	}
	cw_buf_appendf(&out, ",\"docs\":%lld,\"done\":%s}", (long long)progress->docs,
	               progress->done ? "true" : "false");
	return cw_buf_take(&out);
}

int cw_mongo_scan_progress_parse(const char *json, cw_mongo_scan_progress_t *out, cw_err_t *err)
{
	memset(out, 0, sizeof *out);
	json_t *root = load_object(json, "scan progress", err);
	if (root == NULL)
		return CW_EPROTO;
	int rc = member_as_bson(root, "last", &out->last, err);
	json_t *version = json_object_get(root, "version");
	json_t *docs = json_object_get(root, "docs");
	if (rc == 0 && (!json_is_integer(version) || !json_is_integer(docs)))
		rc = cw_err_set(err, CW_EPROTO, DOMAIN, "scan progress has no version or docs");
	bson_iter_t iter;
	if (rc == 0 && out->last != NULL && !bson_iter_init_find(&iter, out->last, "_id"))
		rc = cw_err_set(err, CW_EPROTO, DOMAIN, "scan progress: \"last\" has no _id");
	if (rc == 0) {
		out->version = json_integer_value(version);
		out->docs = json_integer_value(docs);
		out->done = json_is_true(json_object_get(root, "done"));
	}
	json_decref(root);
	if (rc != 0)
		cw_mongo_scan_progress_clear(out);
	return rc;
}

cw_mongo_scan_start_t cw_mongo_scan_start_decide(const cw_mongo_scan_progress_t *stored,
                                                 int64_t version)
{
	if (stored == NULL || stored->version != version)
		return CW_MONGO_SCAN_FROM_FIRST;
	if (stored->done)
		return CW_MONGO_SCAN_PROMOTE_ONLY;
	return stored->last != NULL ? CW_MONGO_SCAN_AFTER_LAST : CW_MONGO_SCAN_FROM_FIRST;
}

void cw_mongo_scan_progress_clear(cw_mongo_scan_progress_t *progress)
{
	if (progress == NULL)
		return;
	if (progress->last != NULL)
		bson_destroy(progress->last);
	progress->last = NULL;
}

/*
 * MongoDB's sort order of BSON types, one bracket per rank, with the $type
 * alias of each type in it. Comparison operators match within a bracket only.
 */
static const struct {
	int rank;
	bson_type_t type;
	const char *alias;
} type_brackets[] = {
	{1, BSON_TYPE_MINKEY, "minKey"},
	{2, BSON_TYPE_NULL, "null"},
	{3, BSON_TYPE_INT32, "int"},      {3, BSON_TYPE_INT64, "long"},
	{3, BSON_TYPE_DOUBLE, "double"},  {3, BSON_TYPE_DECIMAL128, "decimal"},
	{4, BSON_TYPE_UTF8, "string"},
	{5, BSON_TYPE_DOCUMENT, "object"},
	{7, BSON_TYPE_BINARY, "binData"},
	{8, BSON_TYPE_OID, "objectId"},
	{9, BSON_TYPE_BOOL, "bool"},
	{10, BSON_TYPE_DATE_TIME, "date"},
	{11, BSON_TYPE_TIMESTAMP, "timestamp"},
	{12, BSON_TYPE_REGEX, "regex"},
	{13, BSON_TYPE_MAXKEY, "maxKey"},
};
#define NBRACKETS (sizeof type_brackets / sizeof type_brackets[0])

static int type_rank(bson_type_t type)
{
	if (type == BSON_TYPE_SYMBOL)
		return 4;
	if (type == BSON_TYPE_UNDEFINED)
		return 2;
	for (size_t i = 0; i < NBRACKETS; i++)
		if (type_brackets[i].type == type)
			return type_brackets[i].rank;
	return 0;   /* code, dbPointer, ...: no known place; compare within the type only */
}

void cw_mongo_scan_filter(const bson_iter_t *last_id, bson_t *filter)
{
	if (last_id == NULL)
		return;
	int rank = type_rank(bson_iter_type(last_id));
	bson_t gt_clause, id_doc;
	bool later = false;
	for (size_t i = 0; i < NBRACKETS && rank > 0; i++)
		later = later || type_brackets[i].rank > rank;
	if (!later) {
		BSON_APPEND_DOCUMENT_BEGIN(filter, "_id", &id_doc);
		bson_append_iter(&id_doc, "$gt", 3, last_id);
		bson_append_document_end(filter, &id_doc);
		return;
	}
	bson_t or_array, types_doc, types_array;
	BSON_APPEND_ARRAY_BEGIN(filter, "$or", &or_array);
	BSON_APPEND_DOCUMENT_BEGIN(&or_array, "0", &gt_clause);
	BSON_APPEND_DOCUMENT_BEGIN(&gt_clause, "_id", &id_doc);
	bson_append_iter(&id_doc, "$gt", 3, last_id);
	bson_append_document_end(&gt_clause, &id_doc);
	bson_append_document_end(&or_array, &gt_clause);
	BSON_APPEND_DOCUMENT_BEGIN(&or_array, "1", &gt_clause);
	BSON_APPEND_DOCUMENT_BEGIN(&gt_clause, "_id", &types_doc);
	BSON_APPEND_ARRAY_BEGIN(&types_doc, "$type", &types_array);
	unsigned n = 0;
	for (size_t i = 0; i < NBRACKETS; i++) {
		if (type_brackets[i].rank <= rank)
			continue;
		char key[16];
		const char *key_ptr = NULL;
		bson_uint32_to_string(n++, &key_ptr, key, sizeof key);
		bson_append_utf8(&types_array, key_ptr, -1, type_brackets[i].alias, -1);
	}
	bson_append_array_end(&types_doc, &types_array);
	bson_append_document_end(&gt_clause, &types_doc);
	bson_append_document_end(&or_array, &gt_clause);
	bson_append_array_end(filter, &or_array);
}

void cw_mongo_database_pipeline(const char *const *collections, size_t ncollections,
                                bson_t *pipeline)
{
	bson_t stage, match, or_array, clause, in_doc, names;
	BSON_APPEND_DOCUMENT_BEGIN(pipeline, "0", &stage);
	BSON_APPEND_DOCUMENT_BEGIN(&stage, "$match", &match);
	BSON_APPEND_ARRAY_BEGIN(&match, "$or", &or_array);
	BSON_APPEND_DOCUMENT_BEGIN(&or_array, "0", &clause);
	BSON_APPEND_DOCUMENT_BEGIN(&clause, "ns.coll", &in_doc);
	BSON_APPEND_ARRAY_BEGIN(&in_doc, "$in", &names);
	for (size_t i = 0; i < ncollections; i++) {
		char key[16];
		const char *key_ptr = NULL;
		bson_uint32_to_string((uint32_t)i, &key_ptr, key, sizeof key);
		bson_append_utf8(&names, key_ptr, -1, collections[i], -1);
	}
	bson_append_array_end(&in_doc, &names);
	bson_append_document_end(&clause, &in_doc);
	bson_append_document_end(&or_array, &clause);
	BSON_APPEND_DOCUMENT_BEGIN(&or_array, "1", &clause);
	BSON_APPEND_DOCUMENT_BEGIN(&clause, "operationType", &in_doc);
	BSON_APPEND_ARRAY_BEGIN(&in_doc, "$in", &names);
	BSON_APPEND_UTF8(&names, "0", "dropDatabase");
	BSON_APPEND_UTF8(&names, "1", "invalidate");
	bson_append_array_end(&in_doc, &names);
	bson_append_document_end(&clause, &in_doc);
	bson_append_document_end(&or_array, &clause);
	bson_append_array_end(&match, &or_array);
	bson_append_document_end(&stage, &match);
	bson_append_document_end(pipeline, &stage);
}

void cw_mongo_token_summary(const bson_t *token, char *out, size_t size)
{
	if (size == 0)
		return;
	out[0] = '\0';
	if (token == NULL)
		return;
	bson_iter_t iter;
	if (bson_iter_init_find(&iter, token, "_data") && BSON_ITER_HOLDS_UTF8(&iter)) {
		snprintf(out, size, "%s", bson_iter_utf8(&iter, NULL));
		return;
	}
	char *json = bson_as_canonical_extended_json(token, NULL);
	snprintf(out, size, "%s", json != NULL ? json : "");
	bson_free(json);
}
