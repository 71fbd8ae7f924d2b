/*
 * This file contains the REST API's entity routes (api_internal.h): list,
 * create, show, delete, hard refresh and resume of a paused entity. Every
 * change goes through the entity manager (control/entity_manager.h,
 * control/entity_pause.h), the same code path as the CLI, so both accept
 * and refuse the same entities with the same messages.
 */
#include "control/api_internal.h"

#include "control/entity_manager.h"
#include "control/entity_pause.h"
#include "core/json.h"
#include "hub/entity_store.h"

#include <stdlib.h>
#include <string.h>

/* Validates the {name} of the route; false with a 400 response when it is not a valid name. */
static bool valid_name(const cw_api_request_t *req, cw_api_response_t *res)
{
	cw_err_t err = {0};
	if (cw_entity_name_validate(req->param, &err) == 0)
		return true;
	cw_api_error(res, 400, NULL, "%s", err.message);
	return false;
}

/*
 * Answers with the stored entity name (status set by the caller's
 * res->status); 404 for a deleted one when live_only.
 */
static void answer_entity(cw_hub_t *hub, const char *name, bool live_only,
                          cw_api_response_t *res)
{
	cw_err_t err = {0};
	cw_entity_t entity = {0};
	if (cw_entity_store_get(hub, name, &entity, &err) != 0) {
		cw_api_error_from(res, &err, 400);
		return;
	}
	if (live_only && entity.status == CW_ENTITY_DELETED) {
		cw_api_error(res, 404, NULL, "entity \"%s\" is deleted", name);
		cw_entity_clear(&entity);
		return;
	}
	cw_json_t w;
	cw_json_init(&w, &res->body, 0);
	cw_entity_manager_write_json(&w, &entity);
	cw_entity_clear(&entity);
}

void cw_api_entities_list(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res)
{
	const char *deleted = req->query(req, "include_deleted");
	bool include_deleted = false;
	if (deleted != NULL && strcmp(deleted, "true") != 0 && strcmp(deleted, "false") != 0) {
		cw_api_error(res, 400, NULL, "query parameter \"include_deleted\": expected true or false");
		return;
	}
	include_deleted = deleted != NULL && strcmp(deleted, "true") == 0;
	cw_hub_t *hub = cw_api_hub_for(api, res);
	if (hub == NULL)
		return;
	cw_err_t err = {0};
	cw_entity_t *entities = NULL;
	size_t count = 0;
	if (cw_entity_store_list(hub, include_deleted, &entities, &count, &err) != 0) {
		cw_api_error_from(res, &err, 400);
	} else {
		cw_json_t w;
		cw_json_init(&w, &res->body, 0);
		cw_json_object_begin(&w, NULL);
		cw_json_key(&w, "entities", NULL);
		cw_json_array_begin(&w, NULL);
		for (size_t i = 0; i < count; i++)
			cw_entity_manager_write_json(&w, &entities[i]);
		cw_json_array_end(&w, NULL);
		cw_json_object_end(&w, NULL);
	}
	cw_entity_store_list_free(entities, count);
	cw_api_hub_release(api, hub);
}

void cw_api_entities_create(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res)
{
	cw_err_t err = {0};
	cw_entity_t entity = {0};
	if (cw_api_parse_entity(req->body, req->body_len, &entity, &err) != 0) {
		cw_api_error(res, 400, NULL, "%s", err.message);
		cw_entity_clear(&entity);
		return;
	}
	/* The name first: a hostile one is refused before anything else looks at it. */
	if (cw_entity_name_validate(entity.name, &err) != 0) {
		cw_api_error(res, 400, NULL, "%s", err.message);
		cw_entity_clear(&entity);
		return;
	}
	cw_api_config_info_t now;
	cw_api_config_now(api, &now);
	if (cw_entity_manager_check(now.config, &entity, &err) != 0 ||
	    cw_entity_manager_check_source(now.config, &entity, &err) != 0) {
		cw_api_error(res, 422, NULL, "%s", err.message);
		cw_entity_clear(&entity);
		return;
	}
	cw_hub_t *hub = cw_api_hub_for(api, res);
	if (hub != NULL) {
		bool created = false;
		if (cw_entity_manager_add(hub, now.config, &entity, &created, &err) != 0) {
			cw_api_error_from(res, &err, 422);
		} else {
			res->status = created ? 201 : 200;
			answer_entity(hub, entity.name, false, res);
		}
	}
	cw_api_hub_release(api, hub);
	cw_entity_clear(&entity);
}

typedef enum entity_action {
	ENTITY_GET, ENTITY_DELETE, ENTITY_REFRESH, ENTITY_RESUME
} entity_action_t;

/* Resumes a paused entity, against the configuration in force (entity_pause.h). */
static int resume(cw_api_t *api, cw_hub_t *hub, const char *name, cw_err_t *err)
{
	cw_api_config_info_t now;
	cw_api_config_now(api, &now);
	return cw_entity_pause_resume(hub, now.config, name, NULL, err);
}

/* The routes on /v1/entities/{name}: check the name, act, answer with the entity. */
static void on_entity(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res,
                      entity_action_t action)
{
	if (!valid_name(req, res))
		return;
	cw_hub_t *hub = cw_api_hub_for(api, res);
	if (hub == NULL)
		return;
	cw_err_t err = {0};
	int rc = 0;
	if (action == ENTITY_DELETE)
		rc = cw_entity_manager_delete(hub, req->param, &err);
	else if (action == ENTITY_REFRESH)
		rc = cw_entity_manager_refresh(hub, req->param, NULL, &err);
	else if (action == ENTITY_RESUME)
		rc = resume(api, hub, req->param, &err);
	if (rc != 0) {
		cw_api_error_from(res, &err, 400);
	} else {
		if (action == ENTITY_REFRESH || action == ENTITY_RESUME)
			res->status = 202;
		answer_entity(hub, req->param, action == ENTITY_GET, res);
	}
	cw_api_hub_release(api, hub);
}

void cw_api_entity_get(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res)
{
	on_entity(api, req, res, ENTITY_GET);
}

void cw_api_entity_delete(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res)
{
	on_entity(api, req, res, ENTITY_DELETE);
}

void cw_api_entity_refresh(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res)
{
	on_entity(api, req, res, ENTITY_REFRESH);
}

void cw_api_entity_resume(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res)
{
	on_entity(api, req, res, ENTITY_RESUME);
}
