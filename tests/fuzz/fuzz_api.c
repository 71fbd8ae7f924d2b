/*
 * This file contains the libFuzzer target of the REST API's parsers
 * (control/api_internal.h). The first byte picks the parser, the rest is its
 * input: route matching (method and path), the GET /v1/oplog query (four
 * lines: entities, after, limit, wait; an empty line is an absent
 * parameter), an entity body, a consumer body, a bearer header, a listen
 * address. Besides never crashing or leaking: what a parser accepts obeys
 * its contract (names valid, numbers in range), and every error it reports
 * becomes a well-formed JSON error body. Seeds: tests/fuzz/corpus/api.
 */
#include "control/api_internal.h"

#include "core/mem.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The error body for err must parse as {"error":{"code","message"}}. */
static void check_error_body(const cw_err_t *err)
{
	cw_api_response_t res = {0};
	cw_api_error_from(&res, err, 400);
	json_t *root = json_loads(cw_buf_cstr(&res.body), 0, NULL);
	if (root == NULL || !json_is_string(json_object_get(json_object_get(root, "error"), "message")))
		abort();
	json_decref(root);
	cw_buf_free(&res.body);
}

/* Splits text (modified) into up to n lines; missing and empty lines are NULL. */
static void split_lines(char *text, char **lines, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char *end = text ? strchr(text, '\n') : NULL;
		if (end != NULL)
			*end = '\0';
		lines[i] = text && *text ? text : NULL;
		text = end ? end + 1 : NULL;
	}
}

static void fuzz_route(char *text)
{
	char *lines[2];
	split_lines(text, lines, 2);
	char param[256], allow[64];
	bool known = false;
	const cw_api_route_t *route = cw_api_route_match(lines[0] ? lines[0] : "", lines[1] ? lines[1] : "",
	                                                 param, sizeof param, &known, allow);
	if (route != NULL && (!known || (strchr(route->pattern, '{') != NULL) != (param[0] != '\0')))
		abort();
	if (route == NULL && known && allow[0] == '\0')
		abort();
}

static void fuzz_oplog_query(char *text)
{
	char *lines[4];
	split_lines(text, lines, 4);
	cw_api_oplog_query_t query;
	cw_err_t err = {0};
	if (cw_api_parse_oplog_query(lines[0], lines[1], lines[2], lines[3], &query, &err) != 0) {
		check_error_body(&err);
		return;
	}
	if (query.limit < 1 || query.limit > CW_API_OPLOG_MAX_LIMIT || query.after < 0 ||
	    query.wait_ms < 0 || query.wait_ms > CW_API_OPLOG_MAX_WAIT_S * 1000 ||
	    query.nentities > CW_API_OPLOG_MAX_ENTITIES)
		abort();
	for (size_t i = 0; i < query.nentities; i++)
		if (cw_entity_name_validate(query.entities[i], NULL) != 0)
			abort();
	cw_api_oplog_query_clear(&query);
}

static void fuzz_entity(const char *text, size_t len)
{
	cw_entity_t entity;
	cw_err_t err = {0};
	if (cw_api_parse_entity(text, len, &entity, &err) != 0)
		check_error_body(&err);
	else if (entity.name == NULL || entity.source == NULL || entity.version != 1)
		abort();
	else if (cw_entity_validate(&entity, &err) != 0)
		check_error_body(&err);
	cw_entity_clear(&entity);
}

static void fuzz_consumer(const char *text, size_t len)
{
	bool has_position = false;
	int64_t position = -1;
	cw_err_t err = {0};
	if (cw_api_parse_consumer(text, len, &has_position, &position, &err) != 0)
		check_error_body(&err);
	else if (position < 0 || (!has_position && position != 0))
		abort();
	if (cw_api_consumer_name_validate(text, &err) != 0)
		check_error_body(&err);
}

static void fuzz_verify(const char *text, size_t len)
{
	char *entity = NULL, *target = NULL;
	bool repair = false;
	cw_err_t err = {0};
	if (cw_api_parse_verify(text, len, &entity, &target, &repair, &err) != 0) {
		check_error_body(&err);
		if (entity != NULL || target != NULL)
			abort();
	} else if (cw_entity_name_validate(entity, NULL) != 0 ||
	           cw_identifier_validate("target name", target, NULL) != 0) {
		abort();
	}
	free(entity);
	free(target);
}

/* The body of POST /v1/deadletters/replay: accepted only when it names a target or all. */
static void fuzz_dead_letter_replay(const char *text, size_t len)
{
	char *target = NULL, *entity = NULL;
	bool all = false;
	cw_err_t err = {0};
	if (cw_api_parse_dead_letter_replay(text, len, &target, &entity, &all, &err) != 0) {
		check_error_body(&err);
		if (target != NULL || entity != NULL || all)
			abort();
	} else if (all == (target != NULL) || (entity != NULL && target == NULL) ||
	           (target != NULL && cw_identifier_validate("target name", target, NULL) != 0) ||
	           (entity != NULL && cw_entity_name_validate(entity, NULL) != 0)) {
		abort();
	}
	free(target);
	free(entity);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t len = size - 1;
	char *text = cw_xstrndup((const char *)data + 1, len);   /* NUL-terminated copy */
	switch (data[0] % 7) {
	case 0:
		fuzz_route(text);
		break;
	case 1:
		fuzz_oplog_query(text);
		break;
	case 2:
		fuzz_entity(text, len);
		break;
	case 3:
		fuzz_consumer(text, strlen(text));
		break;
	case 5:   /* JSON bodies of the verify and dead-letter routes */
		fuzz_verify(text, strlen(text));
		fuzz_dead_letter_replay(text, strlen(text));
		break;
	case 4:
		if (cw_api_bearer_ok(text, "t0ken") != (strcmp(text, "Bearer t0ken") == 0))
			abort();
		break;
	default: {
		char host[256];
		uint16_t port = 0;
		cw_err_t err = {0};
		if (cw_api_parse_listen(text, host, sizeof host, &port, &err) != 0)
			check_error_body(&err);
		else if (host[0] == '\0')
			abort();
		break;
	}
	}
	free(text);
	return 0;
}
