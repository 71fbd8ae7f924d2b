/*
 * This file contains the REST API's oplog and consumer routes
 * (api_internal.h): GET /v1/oplog, a batch fetch for several entities that
 * long-polls when asked to (woken by the notifier, api_hub.c), and the
 * consumer registry: list with lag, register / heartbeat, remove.
 */
#include "control/api_internal.h"

#include "core/clock.h"
#include "core/json.h"
#include "hub/consumers.h"
#include "hub/entity_store.h"
#include "hub/oplog_reader.h"

#include <stdlib.h>
#include <string.h>

static void write_change(cw_json_t *w, const cw_change_t *c)
{
	char created_at[CW_TIME_RFC3339_LEN];
	cw_time_format_rfc3339_ms(c->created_at_us, created_at);
	cw_json_object_begin(w, NULL);
	cw_json_key(w, "id", NULL);
	cw_json_int64(w, c->oplog_id, NULL);
	cw_json_key(w, "op", NULL);
	cw_json_string(w, cw_op_name(c->op), NULL);
	cw_json_key(w, "entity", NULL);
	cw_json_string(w, c->entity, NULL);
	cw_json_key(w, "doc_id", NULL);
	if (c->doc_id != NULL)
		cw_json_string(w, c->doc_id, NULL);
	else
		cw_json_null(w, NULL);
	if (c->data != NULL) {
		/* the hub's text: one valid JSON object, as the capture wrote it */
		cw_json_key(w, "data", NULL);
		cw_json_raw(w, c->data, strlen(c->data), NULL);
	}
	cw_json_key(w, "version", NULL);
	cw_json_int64(w, c->version, NULL);
	cw_json_key(w, "created_at", NULL);
	cw_json_string(w, created_at, NULL);
	if (c->source_pos != NULL) {
		cw_json_key(w, "source_pos", NULL);
		cw_json_string(w, c->source_pos, NULL);
	}
	cw_json_object_end(w, NULL);
}

static void write_batch(cw_api_response_t *res, const cw_change_batch_t *batch, int64_t after,
                        size_t limit)
{
	cw_json_t w;
	cw_json_init(&w, &res->body, 0);
	cw_json_object_begin(&w, NULL);
	cw_json_key(&w, "changes", NULL);
	cw_json_array_begin(&w, NULL);
	for (size_t i = 0; i < batch->len; i++)
		write_change(&w, &batch->items[i]);
	cw_json_array_end(&w, NULL);
	cw_json_key(&w, "next_after", NULL);
	cw_json_int64(&w, batch->len ? batch->items[batch->len - 1].oplog_id : after, NULL);
	cw_json_key(&w, "has_more", NULL);
	cw_json_bool(&w, batch->len == limit, NULL);
	cw_json_object_end(&w, NULL);
}

/* 404 for a requested entity the hub does not know; true when all exist. */
static bool entities_exist(cw_hub_t *hub, const cw_api_oplog_query_t *query,
                           cw_api_response_t *res)
{
	for (size_t i = 0; i < query->nentities; i++) {
		cw_err_t err = {0};
		cw_entity_t entity = {0};
		int rc = cw_entity_store_get(hub, query->entities[i], &entity, &err);
		cw_entity_clear(&entity);
		if (rc != 0) {
			cw_api_error_from(res, &err, 400);
			return false;
		}
	}
	return true;
}

/*
 * Fetches until rows come or the wait passes. The generation is read before
 * each fetch, so a NOTIFY that arrives between the fetch and the wait is not
 * lost. The hub goes back to the pool while the request waits.
 */
static void fetch_waiting(cw_api_t *api, const cw_api_oplog_query_t *query,
                          cw_api_response_t *res)
{
	const cw_clock_t *clock = cw_clock_system();
	int64_t deadline = cw_clock_now_ms(clock) + query->wait_ms;
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	bool checked = false;
	for (;;) {
		uint64_t seen = cw_api_notifier_generation(api);
		cw_hub_t *hub = cw_api_hub_for(api, res);
		if (hub == NULL)
			break;
		if (!checked && !entities_exist(hub, query, res)) {
			cw_api_hub_release(api, hub);
			break;
		}
		checked = true;
		cw_err_t err = {0};
		int rc = cw_oplog_fetch(hub, (const char *const *)query->entities, query->nentities,
		                        query->after, query->limit, &batch, &err);
		cw_api_hub_release(api, hub);
		if (rc != 0) {
			cw_api_error_from(res, &err, 400);
			break;
		}
		int64_t remaining = deadline - cw_clock_now_ms(clock);
		if (batch.len > 0 || remaining <= 0 || cw_api_notifier_wait(api, seen, remaining)) {
			write_batch(res, &batch, query->after, query->limit);
			break;
		}
	}
	cw_change_batch_free(&batch);
}

void cw_api_oplog_get(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res)
{
	cw_err_t err = {0};
	cw_api_oplog_query_t query;
	if (cw_api_parse_oplog_query(req->query(req, "entities"), req->query(req, "after"),
	                             req->query(req, "limit"), req->query(req, "wait"), &query,
	                             &err) != 0) {
		cw_api_error(res, 400, NULL, "%s", err.message);
		return;
	}
	fetch_waiting(api, &query, res);
	cw_api_oplog_query_clear(&query);
}

static void write_consumer(cw_json_t *w, const cw_consumer_t *c)
{
	char last_seen[CW_TIME_RFC3339_LEN];
	cw_time_format_rfc3339_ms(c->last_seen_us, last_seen);
	cw_json_object_begin(w, NULL);
	cw_json_key(w, "name", NULL);
	cw_json_string(w, c->name, NULL);
	cw_json_key(w, "position", NULL);
	cw_json_int64(w, c->position, NULL);
	cw_json_key(w, "last_seen", NULL);
	cw_json_string(w, last_seen, NULL);
	cw_json_key(w, "lag_ids", NULL);
	cw_json_int64(w, c->lag_ids, NULL);
	cw_json_key(w, "lag_seconds", NULL);
	cw_json_double(w, c->lag_seconds, NULL);
	cw_json_object_end(w, NULL);
}

/*
 * Answers with every consumer ({"consumers": [...]}) or, with only (may be
 * NULL), that one consumer; 404 when it is not there.
 */
static void answer_consumers(cw_hub_t *hub, const char *only, cw_api_response_t *res)
{
	cw_err_t err = {0};
	cw_consumer_t *consumers = NULL;
	size_t count = 0;
	if (cw_consumer_list(hub, &consumers, &count, &err) != 0) {
		cw_api_error_from(res, &err, 400);
		return;
	}
	cw_json_t w;
	cw_json_init(&w, &res->body, 0);
	if (only == NULL) {
		cw_json_object_begin(&w, NULL);
		cw_json_key(&w, "consumers", NULL);
		cw_json_array_begin(&w, NULL);
	}
	bool found = false;
	for (size_t i = 0; i < count; i++) {
		if (only == NULL || strcmp(consumers[i].name, only) == 0) {
			write_consumer(&w, &consumers[i]);
			found = true;
		}
	}
	if (only == NULL) {
		cw_json_array_end(&w, NULL);
		cw_json_object_end(&w, NULL);
	} else if (!found) {
		cw_api_error(res, 404, NULL, "consumer \"%s\" is not registered", only);
	}
	cw_consumer_list_free(consumers, count);
}

void cw_api_consumers_list(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res)
{
	cw_hub_t *hub = cw_api_hub_for(api, res);
	if (hub == NULL)
		return;
	answer_consumers(hub, NULL, res);
	cw_api_hub_release(api, hub);
}

/*
 * 409 when name is the consumer of one of this daemon's targets: its
 * position is the target's own to keep; true when the API may change it.
 */
static bool consumer_is_ours_to_change(cw_api_t *api, const char *name, const char *verb,
                                       cw_api_response_t *res)
{
	cw_api_config_info_t now;
	cw_api_config_now(api, &now);
	const cw_config_t *config = now.config;
	for (size_t i = 0; i < config->ntargets; i++) {
		if (strcmp(config->targets[i].name, name) == 0) {
			cw_api_error(res, 409, NULL,
			             "consumer \"%s\" is target \"%s\"'s own: the daemon moves its "
			             "position as the target applies, so the API cannot %s it",
			             name, name, verb);
			return false;
		}
	}
	return true;
}

/* 400 when position is past the oplog's last id: no consumer can have applied that. */
static int position_within_oplog(cw_hub_t *hub, int64_t position, cw_api_response_t *res)
{
	cw_err_t err = {0};
	int64_t head = 0;
	if (cw_oplog_last_id(hub, &head, &err) != 0) {
		cw_api_error_from(res, &err, 400);
		return CW_EDB;
	}
	if (position > head) {
		cw_api_error(res, 400, NULL,
		             "\"position\": %lld is past the oplog's last id (%lld); a consumer "
		             "can only have applied ids that exist",
		             (long long)position, (long long)head);
		return CW_EINVAL;
	}
	return 0;
}

void cw_api_consumer_put(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res)
{
	cw_err_t err = {0};
	bool has_position = false;
	int64_t position = 0;
	if (cw_api_consumer_name_validate(req->param, &err) != 0 ||
	    cw_api_parse_consumer(req->body, req->body_len, &has_position, &position, &err) != 0) {
		cw_api_error(res, 400, NULL, "%s", err.message);
		return;
	}
	if (!consumer_is_ours_to_change(api, req->param, "overwrite", res))
		return;
	cw_hub_t *hub = cw_api_hub_for(api, res);
	if (hub == NULL)
		return;
	int rc = has_position ? position_within_oplog(hub, position, res) : 0;
	if (rc == 0) {
		rc = has_position ? cw_consumer_heartbeat(hub, req->param, position, &err)
		                  : cw_consumer_register(hub, req->param, NULL, &err);
		if (rc != 0)
			cw_api_error_from(res, &err, 400);
		else
			answer_consumers(hub, req->param, res);
	}
	cw_api_hub_release(api, hub);
}

void cw_api_consumer_delete(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res)
{
	cw_err_t err = {0};
	if (cw_api_consumer_name_validate(req->param, &err) != 0) {
		cw_api_error(res, 400, NULL, "%s", err.message);
		return;
	}
	if (!consumer_is_ours_to_change(api, req->param, "delete", res))
		return;
	cw_hub_t *hub = cw_api_hub_for(api, res);
	if (hub == NULL)
		return;
	if (cw_consumer_remove(hub, req->param, &err) != 0)
		cw_api_error_from(res, &err, 400);
	else
		res->status = 204;
	cw_api_hub_release(api, hub);
}
