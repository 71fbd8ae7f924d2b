/*
 * This file contains the REST API's dead-letter routes (docs/api.md, "Dead
 * letters"): GET /v1/deadletters lists them a page at a time, GET and
 * DELETE /v1/deadletters/{id} show and drop one, POST
 * /v1/deadletters/{id}/replay and POST /v1/deadletters/replay ask their
 * streams to try them again. What a request selects is checked by
 * control/dead_letter_select.h, as for `cachewarp deadletter`.
 */
#include "control/api_internal.h"

#include "control/dead_letter_select.h"
#include "core/json.h"
#include "hub/dead_letters.h"

#include <stdlib.h>

void cw_api_dead_letters_list(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res)
{
	cw_dead_letter_select_text_t text = {
		req->query(req, "target"), req->query(req, "entity"), req->query(req, "status"),
		req->query(req, "after"), req->query(req, "limit"),
	};
	cw_dead_letter_filter_t filter;
	cw_err_t err = {0};
	if (cw_dead_letter_select_parse(&text, "query parameter \"", "\"", &filter, &err) != 0) {
		cw_api_error(res, 400, NULL, "%s", err.message);
		return;
	}
	cw_hub_t *hub = cw_api_hub_for(api, res);
	if (hub == NULL)
		return;
	cw_dead_letter_t *letters = NULL;
	size_t count = 0;
	if (cw_dead_letter_list(hub, &filter, &letters, &count, &err) != 0) {
		cw_api_error_from(res, &err, 400);
	} else {
		cw_json_t w;
		cw_json_init(&w, &res->body, 0);
		cw_json_object_begin(&w, NULL);
		cw_json_key(&w, "dead_letters", NULL);
		cw_json_array_begin(&w, NULL);
		for (size_t i = 0; i < count; i++)
			cw_dead_letter_write_json(&letters[i], &w, NULL);
		cw_json_array_end(&w, NULL);
		cw_json_key(&w, "next_after", NULL);
		cw_json_int64(&w, count > 0 ? letters[count - 1].id : filter.after_id, NULL);
		cw_json_key(&w, "has_more", NULL);
		cw_json_bool(&w, count == filter.limit, NULL);
		cw_json_object_end(&w, NULL);
		if (cw_json_finish(&w) != 0)
			cw_api_error(res, 500, NULL, "%s", "could not encode the dead letters");
	}
	cw_dead_letter_list_free(letters, count);
	cw_api_hub_release(api, hub);
}

/* {"replay_requested": count}. */
static void answer_replayed(cw_api_response_t *res, int64_t count)
{
	cw_json_t w;
	cw_json_init(&w, &res->body, 0);
	cw_json_object_begin(&w, NULL);
	cw_json_key(&w, "replay_requested", NULL);
	cw_json_int64(&w, count, NULL);
	cw_json_object_end(&w, NULL);
}

void cw_api_dead_letters_replay(cw_api_t *api, const cw_api_request_t *req,
                                cw_api_response_t *res)
{
	cw_err_t err = {0};
	char *target = NULL, *entity = NULL;
	bool all = false;
	if (cw_api_parse_dead_letter_replay(req->body, req->body_len, &target, &entity, &all,
	                                    &err) != 0) {
		cw_api_error(res, 400, NULL, "%s", err.message);
		return;
	}
	cw_hub_t *hub = cw_api_hub_for(api, res);
	if (hub != NULL) {
		cw_dead_letter_filter_t filter = CW_DEAD_LETTER_FILTER_ALL;
		filter.target = target;
		filter.entity = entity;
		int64_t count = 0;
		if (cw_dead_letter_request_replay(hub, &filter, &count, &err) != 0)
			cw_api_error_from(res, &err, 400);
		else
			answer_replayed(res, count);
	}
	cw_api_hub_release(api, hub);
	free(target);
	free(entity);
}

typedef enum letter_action { LETTER_GET, LETTER_DELETE, LETTER_REPLAY } letter_action_t;

/* The routes on /v1/deadletters/{id}: check the id, act, answer; 404 when there is no such letter. */
static void on_letter(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res,
                      letter_action_t action)
{
	cw_err_t err = {0};
	cw_dead_letter_filter_t filter = CW_DEAD_LETTER_FILTER_ALL;
	if (cw_dead_letter_id_parse(req->param, &filter.id, &err) != 0) {
		cw_api_error(res, 400, NULL, "%s", err.message);
		return;
	}
	filter.limit = 1;
	cw_hub_t *hub = cw_api_hub_for(api, res);
	if (hub == NULL)
		return;
	cw_dead_letter_t *letters = NULL;
	size_t count = 0;
	int64_t touched = 0;
	int rc;
	if (action == LETTER_GET) {
		rc = cw_dead_letter_list(hub, &filter, &letters, &count, &err);
		touched = (int64_t)count;
	} else if (action == LETTER_DELETE) {
		rc = cw_dead_letter_drop(hub, &filter, &touched, &err);
	} else {
		rc = cw_dead_letter_request_replay(hub, &filter, &touched, &err);
	}
	if (rc != 0) {
		cw_api_error_from(res, &err, 400);
	} else if (touched == 0) {
		cw_api_error(res, 404, NULL, "no dead letter %lld", (long long)filter.id);
	} else if (action == LETTER_GET) {
		cw_json_t w;
		cw_json_init(&w, &res->body, 0);
		if (cw_dead_letter_write_json(&letters[0], &w, NULL) != 0 || cw_json_finish(&w) != 0)
			cw_api_error(res, 500, NULL, "%s", "could not encode the dead letter");
	} else if (action == LETTER_DELETE) {
		res->status = 204;
	} else {
		answer_replayed(res, touched);
	}
	cw_dead_letter_list_free(letters, count);
	cw_api_hub_release(api, hub);
}

void cw_api_dead_letter_get(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res)
{
	on_letter(api, req, res, LETTER_GET);
}

void cw_api_dead_letter_delete(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res)
{
	on_letter(api, req, res, LETTER_DELETE);
}

void cw_api_dead_letter_replay(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res)
{
	on_letter(api, req, res, LETTER_REPLAY);
}
