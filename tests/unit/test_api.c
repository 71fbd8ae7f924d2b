/*
 * Unit tests of the REST API's pure parts: route matching (405 and Allow,
 * hostile names reaching the handler), query and body parsing, the bearer
 * token, the listen address, and the spec: the routes the server registers
 * and the paths and methods of openapi.yaml (as compiled in) are the same
 * set, and the compiled-in copy is the file at the repository root.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "control/api_internal.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/mem.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *match(const char *method, const char *path, char *param, bool *known,
                         char allow[64])
{
	const cw_api_route_t *route = cw_api_route_match(method, path, param, 256, known, allow);
	return route ? route->pattern : NULL;
}

static void routes_match_methods_params_and_allow(void **state)
{
	(void)state;
	char param[256], allow[64];
	bool known = false;
	assert_string_equal(match("GET", "/v1/entities", param, &known, allow), "/v1/entities");
	assert_string_equal(param, "");
	assert_string_equal(match("GET", "/v1/entities/products", param, &known, allow),
	                    "/v1/entities/{name}");
	assert_string_equal(param, "products");
	assert_string_equal(match("POST", "/v1/entities/products/refresh", param, &known, allow),
	                    "/v1/entities/{name}/refresh");
	assert_string_equal(param, "products");

	/* A known path with another method: 405 material, Allow lists the methods. */
	assert_null(match("PUT", "/v1/entities", param, &known, allow));
	assert_true(known);
	assert_string_equal(allow, "GET, POST");
	assert_null(match("GET", "/v1/entities/products/refresh", param, &known, allow));
	assert_true(known);
	assert_string_equal(allow, "POST");
	assert_null(match("POST", "/v1/entities/products", param, &known, allow));
	assert_string_equal(allow, "GET, DELETE");

	/* Unknown paths. */
	assert_null(match("GET", "/v2/entities", param, &known, allow));
	assert_false(known);
	assert_null(match("GET", "/v1/entities/", param, &known, allow));
	assert_false(known);
	assert_null(match("GET", "/healthz/", param, &known, allow));
	assert_false(known);

	/* HEAD is served wherever GET is, and only there. */
	assert_string_equal(match("HEAD", "/v1/entities/products", param, &known, allow),
	                    "/v1/entities/{name}");
	assert_string_equal(match("HEAD", "/metrics", param, &known, allow), "/metrics");
	assert_null(match("HEAD", "/v1/entities/products/refresh", param, &known, allow));
	assert_true(known);

	/* Hostile names reach the handler, which refuses them as names (400). */
	assert_string_equal(match("GET", "/v1/entities/../x", param, &known, allow),
	                    "/v1/entities/{name}");
	assert_string_equal(param, "../x");
	assert_string_equal(match("DELETE", "/v1/entities/a\"b", param, &known, allow),
	                    "/v1/entities/{name}");
	assert_string_equal(param, "a\"b");
	assert_int_not_equal(cw_entity_name_validate(param, NULL), 0);
}

static void oplog_query_defaults_caps_and_errors(void **state)
{
	(void)state;
	cw_api_oplog_query_t q;
	cw_err_t err = {0};
	assert_int_equal(cw_api_parse_oplog_query(NULL, NULL, NULL, NULL, &q, &err), 0);
	assert_int_equal(q.nentities, 0);
	assert_int_equal(q.after, 0);
	assert_int_equal(q.limit, CW_API_OPLOG_DEFAULT_LIMIT);
	assert_int_equal(q.wait_ms, 0);
	cw_api_oplog_query_clear(&q);

	assert_int_equal(cw_api_parse_oplog_query("a,b,a", "42", "999999", "1.5", &q, &err), 0);
	assert_int_equal(q.nentities, 2);
	assert_string_equal(q.entities[0], "a");
	assert_string_equal(q.entities[1], "b");
	assert_int_equal(q.after, 42);
	assert_int_equal(q.limit, CW_API_OPLOG_MAX_LIMIT);
	assert_int_equal(q.wait_ms, 1500);
	cw_api_oplog_query_clear(&q);

	assert_int_equal(cw_api_parse_oplog_query(NULL, NULL, NULL, "3600", &q, &err), 0);
	assert_int_equal(q.wait_ms, CW_API_OPLOG_MAX_WAIT_S * 1000);
	cw_api_oplog_query_clear(&q);

	static const char *const bad[][4] = {
		{"../x", NULL, NULL, NULL}, {"a,", NULL, NULL, NULL}, {",a", NULL, NULL, NULL},
		{"A", NULL, NULL, NULL}, {"a\"b", NULL, NULL, NULL}, {"", "-1", NULL, NULL},
		{NULL, "1x", NULL, NULL}, {NULL, "", NULL, NULL}, {NULL, "+1", NULL, NULL},
		{NULL, "99999999999999999999", NULL, NULL}, {NULL, NULL, "0", NULL},
		{NULL, NULL, "ten", NULL}, {NULL, NULL, NULL, "-1"}, {NULL, NULL, NULL, "nan"},
		{NULL, NULL, NULL, "inf"}, {NULL, NULL, NULL, "0x10"}, {NULL, NULL, NULL, ""},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cw_err_clear(&err);
		assert_int_equal(cw_api_parse_oplog_query(bad[i][0], bad[i][1], bad[i][2], bad[i][3],
		                                          &q, &err), CW_EINVAL);
		assert_non_null(strstr(err.message, "query parameter"));
		assert_null(q.entities);
	}
	/* "" for entities is no filter, not an error. */
	assert_int_equal(cw_api_parse_oplog_query("", NULL, NULL, NULL, &q, &err), 0);
	assert_int_equal(q.nentities, 0);
	cw_api_oplog_query_clear(&q);
}

static void entity_body_is_parsed_strictly(void **state)
{
	(void)state;
	cw_entity_t e;
	cw_err_t err = {0};
	const char *good = "{\"name\":\"products\",\"source\":\"shop\",\"collection\":\"products\","
	                   "\"columns\":[{\"name\":\"price\",\"type\":\"number\","
	                   "\"path\":\"pricing.amount\"}]}";
	assert_int_equal(cw_api_parse_entity(good, strlen(good), &e, &err), 0);
	assert_string_equal(e.name, "products");
	assert_string_equal(e.collection, "products");
	assert_null(e.table);
	assert_int_equal(e.ncolumns, 1);
	assert_int_equal(e.columns[0].type, CW_COL_NUMBER);
	assert_string_equal(e.columns[0].path, "pricing.amount");
	assert_int_equal(e.status, CW_ENTITY_PENDING);
	assert_int_equal(e.version, 1);
	cw_entity_clear(&e);

	static const char *const bad[] = {
		"", "nope", "[]", "{\"name\":1,\"source\":\"s\"}", "{\"source\":\"s\"}",
		"{\"name\":\"a\",\"source\":\"s\",\"extra\":1}",
		"{\"name\":\"a\",\"source\":\"s\",\"columns\":{}}",
		"{\"name\":\"a\",\"source\":\"s\",\"columns\":[1]}",
		"{\"name\":\"a\",\"source\":\"s\",\"columns\":[{\"name\":\"c\",\"type\":\"float\",\"path\":\"p\"}]}",
		"{\"name\":\"a\",\"source\":\"s\",\"columns\":[{\"name\":\"c\",\"type\":\"text\"}]}",
		"{\"name\":\"a\",\"name\":\"b\",\"source\":\"s\"}",
		"{\"name\":\"a\\u0000b\",\"source\":\"s\"}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(cw_api_parse_entity(bad[i], strlen(bad[i]), &e, &err), CW_EINVAL);
		cw_entity_clear(&e);
	}
}

/*
 * A refused body is explained in cachewarp's words: no jansson flag names
 * (JSON_ALLOW_NUL), no library phrasing ("near", "end of file").
 */
static void body_errors_are_in_our_words(void **state)
{
	(void)state;
	static const struct {
		const char *body;
		const char *says;
	} cases[] = {
		{"", "request body is empty"},
		{"{\"name\":\"a\\u0000b\",\"source\":\"s\"}", "NUL character"},
		{"{\"na\\u0000me\":\"a\",\"source\":\"s\"}", "NUL character"},
		{"{\"name\":\"a\",\"name\":\"b\"}", "same member twice"},
		{"{\"name\":", "ends before its JSON is complete"},
		{"{} {}", "goes on after its JSON object"},
		{"{\"name\" \"a\"}", "not valid JSON (line 1, column"},
		{"\xff", "not valid UTF-8"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		cw_entity_t e;
		cw_err_t err = {0};
		assert_int_equal(cw_api_parse_entity(cases[i].body, strlen(cases[i].body), &e, &err),
		                 CW_EINVAL);
		cw_entity_clear(&e);
		if (strstr(err.message, cases[i].says) == NULL)
			fail_msg("body %zu: \"%s\" does not say \"%s\"", i, err.message, cases[i].says);
		assert_null(strstr(err.message, "JSON_"));
		assert_null(strstr(err.message, "near"));
		assert_null(strstr(err.message, "end of file"));
	}
	bool has = false;
	int64_t position = 0;
	cw_err_t err = {0};
	const char *nul = "{\"position\":1,\"x\\u0000\":2}";
	assert_int_equal(cw_api_parse_consumer(nul, strlen(nul), &has, &position, &err), CW_EINVAL);
	assert_null(strstr(err.message, "JSON_ALLOW_NUL"));
	assert_non_null(strstr(err.message, "NUL character"));
}

/* "columns": "auto" in a body means what columns: auto means in the configuration file. */
static void columns_auto_means_the_same_as_in_the_file(void **state)
{
	(void)state;
	const char *yaml =
		"hub: {url: \"postgresql://u@h/hub\"}\n"
		"sources:\n  - {name: app_pg, type: postgres, url: \"postgresql://u@h/app\"}\n"
		"targets:\n  - {name: local, type: sqlite, dir: /tmp}\n"
		"entities:\n  - {name: orders, source: app_pg, table: public.orders, columns: auto}\n";
	cw_config_t *config = NULL;
	cw_err_t err = {0};
	if (cw_config_load_buffer("auto.yaml", yaml, strlen(yaml), NULL, &config, &err) != 0)
		fail_msg("%s", err.message);
	const cw_entity_t *from_file = cw_config_entity(config, "orders");
	assert_non_null(from_file);
	static const char *const bodies[] = {
		"{\"name\":\"orders\",\"source\":\"app_pg\",\"table\":\"public.orders\",\"columns\":\"auto\"}",
		"{\"name\":\"orders\",\"source\":\"app_pg\",\"table\":\"public.orders\",\"columns\":[]}",
		"{\"name\":\"orders\",\"source\":\"app_pg\",\"table\":\"public.orders\"}",
	};
	for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
		cw_entity_t e;
		if (cw_api_parse_entity(bodies[i], strlen(bodies[i]), &e, &err) != 0)
			fail_msg("body %zu: %s", i, err.message);
		assert_int_equal(e.ncolumns, 0);
		assert_true(cw_entity_shape_equal(&e, from_file));
		cw_entity_clear(&e);
	}
	const char *other = "{\"name\":\"o\",\"source\":\"app_pg\",\"table\":\"t\",\"columns\":\"all\"}";
	cw_entity_t e;
	assert_int_equal(cw_api_parse_entity(other, strlen(other), &e, &err), CW_EINVAL);
	assert_non_null(strstr(err.message, "\"auto\""));
	cw_entity_clear(&e);
	cw_config_free(config);
}

static void verify_body(void **state)
{
	(void)state;
	char *entity = NULL, *target = NULL;
	bool repair = true;
	cw_err_t err = {0};
	const char *ok = "{\"entity\":\"items\",\"target\":\"node1\"}";
	assert_int_equal(cw_api_parse_verify(ok, strlen(ok), &entity, &target, &repair, &err), 0);
	assert_string_equal(entity, "items");
	assert_string_equal(target, "node1");
	assert_false(repair);
	free(entity);
	free(target);
	const char *rep = "{\"entity\":\"items\",\"target\":\"node1\",\"repair\":true}";
	assert_int_equal(cw_api_parse_verify(rep, strlen(rep), &entity, &target, &repair, &err), 0);
	assert_true(repair);
	free(entity);
	free(target);
	static const char *const bad[] = {
		"{\"entity\":\"items\"}", "{\"target\":\"node1\"}",
		"{\"entity\":\"Items\",\"target\":\"node1\"}",
		"{\"entity\":\"items\",\"target\":\"../x\"}",
		"{\"entity\":\"items\",\"target\":\"node1\",\"repair\":\"yes\"}",
		"{\"entity\":\"items\",\"target\":\"node1\",\"x\":1}", "[]", "",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(cw_api_parse_verify(bad[i], strlen(bad[i]), &entity, &target, &repair,
		                                     &err), CW_EINVAL);
		assert_null(entity);
		assert_null(target);
	}
}

/* POST /v1/deadletters/replay names what it replays; nothing is replayed by omission. */
static void dead_letter_replay_body(void **state)
{
	(void)state;
	char *target = NULL, *entity = NULL;
	bool all = true;
	cw_err_t err = {0};
	const char *one = "{\"target\":\"pg1\"}";
	assert_int_equal(cw_api_parse_dead_letter_replay(one, strlen(one), &target, &entity, &all,
	                                                 &err), 0);
	assert_string_equal(target, "pg1");
	assert_null(entity);
	assert_false(all);
	free(target);
	const char *stream = "{\"target\":\"pg1\",\"entity\":\"orders\"}";
	assert_int_equal(cw_api_parse_dead_letter_replay(stream, strlen(stream), &target, &entity,
	                                                 &all, &err), 0);
	assert_string_equal(target, "pg1");
	assert_string_equal(entity, "orders");
	free(target);
	free(entity);
	const char *every = "{\"all\":true}";
	assert_int_equal(cw_api_parse_dead_letter_replay(every, strlen(every), &target, &entity,
	                                                 &all, &err), 0);
	assert_true(all);
	assert_null(target);
	static const struct {
		const char *body, *message;
	} bad[] = {
		{"", "name the letters to replay"},
		{"{}", "name the letters to replay"},
		{"{\"all\":false}", "\"all\": only true, and alone"},
		{"{\"all\":true,\"target\":\"pg1\"}", "\"all\": only true, and alone"},
		{"{\"all\":\"yes\"}", "\"all\": only true"},
		{"{\"entity\":\"orders\"}", "name the letters to replay"},
		{"{\"target\":\"Pg1\"}", "\"target\": target name \"Pg1\" is invalid"},
		{"{\"target\":\"pg1\",\"entity\":\"../x\"}", "\"entity\": entity name"},
		{"{\"target\":1}", "\"target\": must be a string"},
		{"{\"target\":\"pg1\",\"status\":\"failed\"}", "unknown member \"status\""},
		{"[]", "must be a JSON object"},
		{"{\"target\":", NULL},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		all = true;
		assert_int_equal(cw_api_parse_dead_letter_replay(bad[i].body, strlen(bad[i].body),
		                                                 &target, &entity, &all, &err),
		                 CW_EINVAL);
		assert_null(target);
		assert_null(entity);
		assert_false(all);
		if (bad[i].message != NULL && strstr(err.message, bad[i].message) == NULL)
			fail_msg("%s: \"%s\"", bad[i].body, err.message);
	}
}

static void consumer_body_and_name(void **state)
{
	(void)state;
	bool has = true;
	int64_t position = -1;
	cw_err_t err = {0};
	assert_int_equal(cw_api_parse_consumer("", 0, &has, &position, &err), 0);
	assert_false(has);
	assert_int_equal(cw_api_parse_consumer(" {} ", 4, &has, &position, &err), 0);
	assert_false(has);
	assert_int_equal(cw_api_parse_consumer("{\"position\":17}", 15, &has, &position, &err), 0);
	assert_true(has);
	assert_int_equal(position, 17);
	static const char *const bad[] = {"{\"position\":-1}", "{\"position\":1.5}",
	                                  "{\"position\":\"1\"}", "{\"pos\":1}", "[1]", "x"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(cw_api_parse_consumer(bad[i], strlen(bad[i]), &has, &position, &err),
		                 CW_EINVAL);

	assert_int_equal(cw_api_consumer_name_validate("sqlite:node-1.local_a", &err), 0);
	assert_int_equal(cw_api_consumer_name_validate("", &err), CW_EINVAL);
	assert_int_equal(cw_api_consumer_name_validate("a/b", &err), CW_EINVAL);
	assert_int_equal(cw_api_consumer_name_validate("a\"b", &err), CW_EINVAL);
	char long_name[CW_API_CONSUMER_NAME_MAX + 2];
	memset(long_name, 'a', sizeof long_name - 1);
	long_name[sizeof long_name - 1] = '\0';
	assert_int_equal(cw_api_consumer_name_validate(long_name, &err), CW_EINVAL);
}

static void bearer_token_and_listen_address(void **state)
{
	(void)state;
	assert_true(cw_api_bearer_ok("Bearer s3cret", "s3cret"));
	assert_false(cw_api_bearer_ok(NULL, "s3cret"));
	assert_false(cw_api_bearer_ok("Bearer s3cre", "s3cret"));
	assert_false(cw_api_bearer_ok("Bearer s3crett", "s3cret"));
	assert_false(cw_api_bearer_ok("Bearer S3cret", "s3cret"));
	assert_false(cw_api_bearer_ok("bearer s3cret", "s3cret"));
	assert_false(cw_api_bearer_ok("s3cret", "s3cret"));
	assert_false(cw_api_bearer_ok("Bearer ", "s3cret"));

	char host[64];
	uint16_t port = 1;
	assert_int_equal(cw_api_parse_listen("127.0.0.1:8080", host, sizeof host, &port, NULL), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 8080);
	assert_int_equal(cw_api_parse_listen("[::1]:0", host, sizeof host, &port, NULL), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 0);
	assert_int_equal(cw_api_parse_listen("localhost:65536", host, sizeof host, &port, NULL),
	                 CW_EINVAL);
	assert_int_equal(cw_api_parse_listen("8080", host, sizeof host, &port, NULL), CW_EINVAL);
	assert_int_equal(cw_api_parse_listen(":8080", host, sizeof host, &port, NULL), CW_EINVAL);
	assert_int_equal(cw_api_parse_listen("[::1:80", host, sizeof host, &port, NULL), CW_EINVAL);
}

/*
 * Appends "METHOD /path" for every operation under `paths:` in yaml: a path
 * is a line "  /x:" (two spaces), an operation "    get:" (four) below it.
 */
static size_t spec_operations(const char *yaml, char ops[][128], size_t cap)
{
	const char *line = strstr(yaml, "\npaths:\n");
	assert_non_null(line);
	line += strlen("\npaths:\n");
	char path[96] = "";
	size_t n = 0;
	while (*line != '\0') {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		if (len > 0 && line[0] != ' ')
			break;   /* the next top-level key ends the paths */
		if (len > 3 && strncmp(line, "  /", 3) == 0 && line[len - 1] == ':') {
			assert_true(len - 3 < sizeof path);
			memcpy(path, line + 2, len - 3);
			path[len - 3] = '\0';
		} else if (len > 5 && strncmp(line, "    ", 4) == 0 && islower((unsigned char)line[4]) &&
		           line[len - 1] == ':') {
			char method[16];
			size_t mlen = len - 5;
			assert_true(mlen < sizeof method);
			for (size_t i = 0; i < mlen; i++)
				method[i] = (char)toupper((unsigned char)line[4 + i]);
			method[mlen] = '\0';
			if (strcmp(method, "PARAMETERS") != 0) {
				assert_true(n < cap);
				snprintf(ops[n++], 128, "%s %s", method, path);
			}
		}
		line = end ? end + 1 : line + len;
	}
	return n;
}

static bool contains(char ops[][128], size_t n, const char *op)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(ops[i], op) == 0)
			return true;
	return false;
}

static void spec_and_routes_are_the_same_set(void **state)
{
	(void)state;
	char ops[64][128];
	size_t nops = spec_operations((const char *)cw_api_openapi_yaml, ops, 64);
	size_t nroutes = 0;
	const cw_api_route_t *routes = cw_api_routes(&nroutes);
	assert_true(nroutes > 0);
	for (size_t i = 0; i < nroutes; i++) {
		char op[128];
		snprintf(op, sizeof op, "%s %s", routes[i].method, routes[i].pattern);
		if (!contains(ops, nops, op))
			fail_msg("route \"%s\" is not in openapi.yaml", op);
	}
	for (size_t i = 0; i < nops; i++) {
		bool found = false;
		for (size_t j = 0; j < nroutes && !found; j++) {
			char op[128];
			snprintf(op, sizeof op, "%s %s", routes[j].method, routes[j].pattern);
			found = strcmp(op, ops[i]) == 0;
		}
		if (!found)
			fail_msg("openapi.yaml documents \"%s\", which the server does not serve", ops[i]);
	}
	assert_int_equal(nops, nroutes);
}

/*
 * Appends to names (cap) the query parameters openapi.yaml gives operation
 * "METHOD /path": lines "- name: x" followed by "in: query" inside it.
 * Returns how many; counts every "in: query" of the spec into *in_spec.
 */
static size_t spec_query_params(const char *yaml, const char *op, char names[][64], size_t cap,
                                size_t *in_spec)
{
	char current[128] = "", path[96] = "", prev_name[64] = "";
	size_t n = 0;
	*in_spec = 0;
	const char *line = strstr(yaml, "\npaths:\n");
	assert_non_null(line);
	line += strlen("\npaths:\n");
	while (*line != '\0') {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		char text[256];
		snprintf(text, sizeof text, "%.*s", (int)(len < 255 ? len : 255), line);
		const char *trimmed = text + strspn(text, " ");
		if (len > 3 && strncmp(text, "  /", 3) == 0 && text[len - 1] == ':') {
			snprintf(path, sizeof path, "%.*s", (int)(len - 3), text + 2);
			current[0] = '\0';
		} else if (len > 5 && strncmp(text, "    ", 4) == 0 && islower((unsigned char)text[4]) &&
		           text[len - 1] == ':') {
			char method[16];
			size_t mlen = len - 5 < sizeof method - 1 ? len - 5 : sizeof method - 1;
			for (size_t i = 0; i < mlen; i++)
				method[i] = (char)toupper((unsigned char)text[4 + i]);
			method[mlen] = '\0';
			snprintf(current, sizeof current, "%s %s", method, path);
		} else if (strncmp(trimmed, "- name: ", 8) == 0) {
			snprintf(prev_name, sizeof prev_name, "%s", trimmed + 8);
		} else if (strcmp(trimmed, "in: query") == 0) {
			(*in_spec)++;
			if (strcmp(current, op) == 0) {
				assert_true(n < cap);
				snprintf(names[n++], 64, "%s", prev_name);
			}
		}
		line = end ? end + 1 : line + len;
	}
	return n;
}

/* Each route accepts exactly the query parameters openapi.yaml gives it; others are 400. */
static void routes_accept_the_query_parameters_of_the_spec(void **state)
{
	(void)state;
	const char *yaml = (const char *)cw_api_openapi_yaml;
	size_t nroutes = 0, total = 0, in_spec = 0;
	const cw_api_route_t *routes = cw_api_routes(&nroutes);
	for (size_t i = 0; i < nroutes; i++) {
		char op[128], names[16][64];
		snprintf(op, sizeof op, "%s %s", routes[i].method, routes[i].pattern);
		size_t n = spec_query_params(yaml, op, names, 16, &in_spec);
		size_t accepted = 0;
		for (; routes[i].query != NULL && routes[i].query[accepted] != NULL; accepted++) {
			bool documented = false;
			for (size_t j = 0; j < n && !documented; j++)
				documented = strcmp(names[j], routes[i].query[accepted]) == 0;
			if (!documented)
				fail_msg("%s accepts \"%s\", which openapi.yaml does not list", op,
				         routes[i].query[accepted]);
		}
		for (size_t j = 0; j < n; j++)
			if (!cw_api_query_accepted(&routes[i], names[j]))
				fail_msg("openapi.yaml lists \"%s\" for %s, which the server refuses", names[j], op);
		assert_int_equal(accepted, n);
		assert_false(cw_api_query_accepted(&routes[i], "no_such_parameter"));
		total += n;
	}
	/* No query parameter hides where this reading does not look (components, $ref). */
	assert_int_equal(total, in_spec);
	assert_true(total >= 5);
}

static void compiled_spec_is_the_repository_file(void **state)
{
	(void)state;
	const char *dir = getenv("CW_SOURCE_DIR");
	assert_non_null(dir);
	char *path = cw_xasprintf("%s/openapi.yaml", dir);
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	cw_buf_t file = CW_BUF_INIT;
	char chunk[4096];
	size_t got;
	while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
		cw_buf_append(&file, chunk, got);
	fclose(f);
	assert_int_equal(file.len, cw_api_openapi_yaml_len);
	assert_memory_equal(file.data, cw_api_openapi_yaml, file.len);
	assert_non_null(strstr(file.data, "openapi: 3.0"));
	cw_buf_free(&file);
	free(path);
}

static void error_bodies_are_json_and_masked(void **state)
{
	(void)state;
	cw_api_response_t res = {0};
	cw_api_error(&res, 503, NULL, "could not connect to \"%s\"",
	             "postgresql://u:hunter2@db/app");
	assert_int_equal(res.status, 503);
	assert_null(strstr(cw_buf_cstr(&res.body), "hunter2"));
	assert_non_null(strstr(cw_buf_cstr(&res.body), "{\"error\":{\"code\":\"unavailable\""));
	cw_err_t err = {0};
	cw_err_set(&err, CW_ECONFLICT, "hub", "entity \"x\" already exists");
	cw_api_error_from(&res, &err, 400);
	assert_int_equal(res.status, 409);
	assert_string_equal(cw_buf_cstr(&res.body),
	                    "{\"error\":{\"code\":\"conflict\",\"message\":\"entity \\\"x\\\" already exists\"}}");
	cw_api_error(&res, 400, NULL, "bad name \"%s\"", "\xff\xfe");
	assert_non_null(strstr(cw_buf_cstr(&res.body), "not valid UTF-8"));
	cw_buf_free(&res.body);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(routes_match_methods_params_and_allow),
		cmocka_unit_test(oplog_query_defaults_caps_and_errors),
		cmocka_unit_test(entity_body_is_parsed_strictly),
		cmocka_unit_test(body_errors_are_in_our_words),
		cmocka_unit_test(columns_auto_means_the_same_as_in_the_file),
		cmocka_unit_test(consumer_body_and_name),
		cmocka_unit_test(verify_body),
		cmocka_unit_test(dead_letter_replay_body),
		cmocka_unit_test(bearer_token_and_listen_address),
		cmocka_unit_test(spec_and_routes_are_the_same_set),
		cmocka_unit_test(routes_accept_the_query_parameters_of_the_spec),
		cmocka_unit_test(compiled_spec_is_the_repository_file),
		cmocka_unit_test(error_bodies_are_json_and_masked),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
