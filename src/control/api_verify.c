/*
 * This file contains the REST API's verify routes (docs/api.md, "Verify"):
 * POST /v1/verify starts a run of one entity and target, GET /v1/verify
 * lists the newest run of every pair, GET /v1/verify/{id} shows one (with
 * its progress while it runs here), DELETE /v1/verify/{id} cancels it.
 */
#include "control/api_internal.h"

#include "control/verify_service.h"
#include "core/json.h"
#include "core/mem.h"
#include "verify/verify.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/* The {id} of the route as a run id; false (and 400 answered) when it is not one. */
static bool run_id_of(const cw_api_request_t *req, cw_api_response_t *res, int64_t *id)
{
	char *end = NULL;
	errno = 0;
	long long value = strtoll(req->param, &end, 10);
	if (req->param[0] < '1' || req->param[0] > '9' || *end != '\0' || errno != 0 || value <= 0) {
		cw_api_error(res, 400, NULL, "verify run id \"%.40s\": must be a positive integer",
		             req->param);
		return false;
	}
	*id = value;
	return true;
}

void cw_api_verify_start(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res)
{
	cw_err_t err = {0};
	char *entity = NULL, *target = NULL;
	bool repair = false;
	if (cw_api_parse_verify(req->body, req->body_len, &entity, &target, &repair, &err) != 0) {
		cw_api_error(res, 400, NULL, "%s", err.message);
		return;
	}
	if (api->deps.verify == NULL) {
		cw_api_error(res, 503, NULL, "verify is not available in this process");
	} else {
		int64_t id = 0, running = 0;
		int rc = cw_verify_service_start(api->deps.verify, entity, target, repair, &id, &running,
		                                 &err);
		if (rc == CW_ECONFLICT) {
			/* The usual error body, with the run that holds the pair. */
			cw_api_error(res, 409, NULL, "%s", err.message);
			if (res->body.len > 0 && res->body.data[res->body.len - 1] == '}') {
				res->body.data[--res->body.len] = '\0';
				if (running > 0)
					cw_buf_appendf(&res->body, ",\"running_id\":%lld}", (long long)running);
				else
					cw_buf_append_str(&res->body, ",\"running_id\":null}");
			}
		} else if (rc != 0) {
			cw_api_error_from(res, &err, 422);
		} else {
			res->status = 202;
			cw_json_t w;
			cw_json_init(&w, &res->body, 0);
			cw_json_object_begin(&w, NULL);
			cw_json_key(&w, "id", NULL);
			cw_json_int64(&w, id, NULL);
			cw_json_key(&w, "entity", NULL);
			cw_json_string(&w, entity, NULL);
			cw_json_key(&w, "target", NULL);
			cw_json_string(&w, target, NULL);
			cw_json_key(&w, "status", NULL);
			cw_json_string(&w, "running", NULL);
			cw_json_key(&w, "repair", NULL);
			cw_json_bool(&w, repair, NULL);
			cw_json_object_end(&w, NULL);
		}
	}
	free(entity);
	free(target);
}

/* The run id's JSON (0: every pair's newest, an array) into out; false when answered with an error. */
static bool runs_json(cw_api_t *api, cw_api_response_t *res, int64_t id, cw_buf_t *out)
{
	cw_hub_t *hub = cw_api_hub_for(api, res);
	if (hub == NULL)
		return false;
	cw_err_t err = {0};
	cw_json_t w;
	cw_json_init(&w, out, 0);
	bool ok = cw_verify_runs_json(hub, id, &w, &err) == 0;
	if (!ok)
		cw_api_error_from(res, &err, 400);
	cw_api_hub_release(api, hub);
	return ok;
}

void cw_api_verify_list(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res)
{
	(void)req;
	cw_buf_t runs = CW_BUF_INIT;
	if (runs_json(api, res, 0, &runs)) {
		cw_buf_append_str(&res->body, "{\"runs\":");
		cw_buf_append(&res->body, runs.data, runs.len);
		cw_buf_append_char(&res->body, '}');
	}
	cw_buf_free(&runs);
}

void cw_api_verify_get(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res)
{
	int64_t id;
	cw_buf_t run = CW_BUF_INIT;
	if (!run_id_of(req, res, &id) || !runs_json(api, res, id, &run)) {
		cw_buf_free(&run);
		return;
	}
	/* The run's object, with "progress" while it runs in this process. */
	char step[32];
	uint64_t rows = 0, expected = 0;
	bool here = api->deps.verify != NULL &&
	            cw_verify_service_progress(api->deps.verify, id, step, &rows, &expected);
	cw_buf_append(&res->body, run.data, run.len - 1);
	if (here)
		cw_buf_appendf(&res->body, ",\"progress\":{\"step\":\"%s\",\"rows\":%llu,"
		               "\"expected\":%llu}}", step, (unsigned long long)rows,
		               (unsigned long long)expected);
	else
		cw_buf_append_str(&res->body, ",\"progress\":null}");
	cw_buf_free(&run);
}

void cw_api_verify_cancel(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res)
{
	int64_t id;
	if (!run_id_of(req, res, &id))
		return;
	cw_err_t err = {0};
	if (api->deps.verify == NULL ||
	    cw_verify_service_cancel(api->deps.verify, id, &err) != 0) {
		cw_api_error(res, 404, NULL, "verify run %lld is not running in this process",
		             (long long)id);
		return;
	}
	res->status = 202;
	cw_json_t w;
	cw_json_init(&w, &res->body, 0);
	cw_json_object_begin(&w, NULL);
	cw_json_key(&w, "id", NULL);
	cw_json_int64(&w, id, NULL);
	cw_json_key(&w, "status", NULL);
	cw_json_string(&w, "canceling", NULL);
	cw_json_object_end(&w, NULL);
}
