/*
 * Integration tests of the REST API against a throwaway PostgreSQL hub:
 * every route and error status over real HTTP (a raw-socket client), the
 * bearer token on and off, body limits (declared and streamed), hostile
 * entity names, a long-poll woken by the hub's NOTIFY, /readyz naming what
 * is unhealthy, /v1/status with jobs, /metrics in the Prometheus format
 * (promtool, histogram buckets monotonic), dead letters listed, paged,
 * shown, replayed and dropped with every refusal, and 503s once the hub is
 * gone.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "control/api.h"
#include "control/api_internal.h"
#include "control/jobs.h"
#include "control/verify_service.h"
#include "core/buf.h"
#include "core/change.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "hub/dead_letters.h"
#include "hub/entity_store.h"
#include "hub/hub.h"
#include "hub/migrations.h"
#include "hub/oplog_writer.h"
#include "http_client.h"
#include "prom_check.h"
#include "testsrv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define TOKEN "t0ken-for-tests"
#define LEAKY_URL "postgresql://app:hunter2@db.internal/app"

typedef struct fixture {
	cw_testsrv_t srv;
	cw_hub_t *hub;
	cw_config_t *open_config;     /* no token */
	cw_config_t *guarded_config;  /* api.token set */
	cw_metrics_t *metrics;
	cw_jobs_t *jobs;
	pthread_mutex_t mutex;        /* guards components */
	cw_api_component_t components[2];
	cw_api_t *open;
	cw_api_t *guarded;
	cw_verify_service_t *verify;
} fixture_t;

/* The reply's body as JSON (owned), failing the test when it is not JSON. */
static json_t *json_body(const cw_http_reply_t *r)
{
	json_error_t jerr;
	json_t *root = json_loadb(r->body, r->body_len, 0, &jerr);
	if (root == NULL)
		fail_msg("body is not JSON (%s): \"%s\"", jerr.text, r->body);
	return root;
}

/* Asserts an error reply: status, {"error":{"code":code,"message":...}}. */
static void expect_error(const cw_http_reply_t *r, int status, const char *code)
{
	if (r->status != status)
		fail_msg("status %d, want %d: %s", r->status, status, r->body);
	assert_non_null(strstr(r->head, "Content-Type: application/json"));
	json_t *root = json_body(r);
	json_t *error = json_object_get(root, "error");
	assert_true(json_is_object(error));
	assert_string_equal(json_string_value(json_object_get(error, "code")), code);
	assert_true(json_is_string(json_object_get(error, "message")));
	json_decref(root);
}

static size_t fake_components(void *arg, cw_api_component_t *out, size_t cap)
{
	fixture_t *fx = arg;
	pthread_mutex_lock(&fx->mutex);
	for (size_t i = 0; i < 2 && i < cap; i++)
		out[i] = fx->components[i];
	pthread_mutex_unlock(&fx->mutex);
	return 2;
}

static void set_source_health(fixture_t *fx, bool healthy, const char *state, const char *error)
{
	pthread_mutex_lock(&fx->mutex);
	fx->components[0].status.healthy = healthy;
	snprintf(fx->components[0].status.state, sizeof fx->components[0].status.state, "%s", state);
	snprintf(fx->components[0].status.last_error, sizeof fx->components[0].status.last_error,
	         "%s", error);
	pthread_mutex_unlock(&fx->mutex);
}

static int failing_job(void *arg, cw_cancel_t *cancel, cw_err_t *err)
{
	return cw_err_set(err, CW_EDB, "capture", "could not connect to \"%s\": refused", LEAKY_URL);
}

static cw_config_t *load_config_listen(const char *hub_url, const char *token,
                                      const char *listen)
{
	char *yaml = cw_xasprintf(
		"hub:\n  url: %s\n  pool_size: 2\n"
		"sources:\n"
		"  - {name: shop, type: mongodb, url: 'mongodb://127.0.0.1:1', database: shop}\n"
		"  - {name: app_pg, type: postgres, url: '" LEAKY_URL "'}\n"
		"targets:\n  - {name: local, type: sqlite, dir: /tmp/cw-api-test-dbs}\n"
		"api:\n  listen: %s\n  max_body: 64KiB\n%s%s%s",
		hub_url, listen, token ? "  token: " : "", token ? token : "", token ? "\n" : "");
	cw_config_t *config = NULL;
	cw_err_t err = {0};
	if (cw_config_load_buffer("api-test.yaml", yaml, strlen(yaml), NULL, &config, &err) != 0)
		fprintf(stderr, "config: %s\n", err.message);
	free(yaml);
	return config;
}

static cw_config_t *load_config(const char *hub_url, const char *token)
{
	return load_config_listen(hub_url, token, "127.0.0.1:0");
}

static int setup(void **state)
{
	fixture_t *fx = cw_xcalloc(1, sizeof *fx);
	cw_err_t err = {0};
	pthread_mutex_init(&fx->mutex, NULL);
	if (cw_testpg_start(&fx->srv) != 0)
		return -1;
	fx->hub = cw_hub_connect(fx->srv.url, &err);
	if (fx->hub == NULL || cw_hub_migrate(fx->hub, NULL, &err) != 0) {
		fprintf(stderr, "hub setup: %s\n", err.message);
		return -1;
	}
	fx->open_config = load_config(fx->srv.url, NULL);
	fx->guarded_config = load_config(fx->srv.url, TOKEN);
	if (fx->open_config == NULL || fx->guarded_config == NULL)
		return -1;

	snprintf(fx->components[0].name, sizeof fx->components[0].name, "shop");
	snprintf(fx->components[0].kind, sizeof fx->components[0].kind, "source");
	fx->components[0].status = (cw_component_status_t){.state = "streaming", .healthy = true,
		.lag_bytes = -1, .lag_seconds = 0.5, .lag_ids = -1, .position = "8264aa01"};
	snprintf(fx->components[1].name, sizeof fx->components[1].name, "local");
	snprintf(fx->components[1].kind, sizeof fx->components[1].kind, "target");
	fx->components[1].status = (cw_component_status_t){.state = "applying", .healthy = true,
		.lag_bytes = -1, .lag_seconds = -1, .lag_ids = 3, .position = "41"};

	fx->metrics = cw_metrics_new();
	cw_metrics_declare(fx->metrics, "cachewarp_apply_batch_seconds", CW_METRIC_HISTOGRAM,
	                   "Time to apply one batch.");
	const double samples[] = {0.0001, 0.003, 0.003, 0.2, 7, 42};
	for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++)
		cw_metrics_observe(fx->metrics, "cachewarp_apply_batch_seconds", "target=\"local\"",
		                   samples[i]);
	cw_metrics_declare(fx->metrics, "cachewarp_changes_applied_total", CW_METRIC_COUNTER,
	                   "Changes applied to a target.");
	cw_metrics_counter_add(fx->metrics, "cachewarp_changes_applied_total",
	                       "target=\"local\",entity=\"products\",op=\"upsert\"", 12);

	cw_jobs_opts_t opts = {.retry = {3600000, 3600000, 2.0, 0, 0.0}, .seed = 1};
	fx->jobs = cw_jobs_new(&opts);
	cw_job_spec_t spec = {"capture:shop", "source:shop", 3600000, failing_job, fx, 0};
	if (cw_jobs_add(fx->jobs, &spec, &err) != 0 || cw_jobs_start(fx->jobs, &err) != 0)
		return -1;

	fx->verify = cw_verify_service_new(fx->open_config, fx->metrics);
	cw_api_deps_t deps = {fx->open_config, fx->metrics, fx->jobs, fake_components, fx,
	                      fx->verify, NULL, NULL};
	fx->open = cw_api_start(&deps, &err);
	deps.config = fx->guarded_config;
	fx->guarded = fx->open ? cw_api_start(&deps, &err) : NULL;
	if (fx->guarded == NULL) {
		fprintf(stderr, "api start: %s\n", err.message);
		return -1;
	}
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	fixture_t *fx = *state;
	cw_api_stop(fx->open);
	cw_api_stop(fx->guarded);
	cw_verify_service_free(fx->verify);
	cw_jobs_stop(fx->jobs, 5000, NULL);
	cw_jobs_free(fx->jobs);
	cw_metrics_free(fx->metrics);
	cw_config_free(fx->open_config);
	cw_config_free(fx->guarded_config);
	cw_hub_close(fx->hub);
	cw_testpg_stop(&fx->srv);
	pthread_mutex_destroy(&fx->mutex);
	free(fx);
	return 0;
}

static uint16_t port_of(cw_api_t *api)
{
	return cw_api_port(api);
}

static void health_and_spec(void **state)
{
	fixture_t *fx = *state;
	cw_http_reply_t r;
	cw_http(port_of(fx->open), "GET", "/healthz", NULL, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "{\"status\":\"ok\"}");
	cw_http_reply_free(&r);

	cw_http(port_of(fx->open), "GET", "/openapi.yaml", NULL, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.head, "Content-Type: application/yaml"));
	assert_int_equal(r.body_len, cw_api_openapi_yaml_len);
	assert_memory_equal(r.body, cw_api_openapi_yaml, r.body_len);
	cw_http_reply_free(&r);

	cw_http(port_of(fx->open), "GET", "/nowhere", NULL, NULL, &r);
	expect_error(&r, 404, "not_found");
	cw_http_reply_free(&r);

	cw_http(port_of(fx->open), "PUT", "/v1/entities", NULL, "{}", &r);
	expect_error(&r, 405, "method_not_allowed");
	assert_non_null(strstr(r.head, "Allow: GET, POST"));
	cw_http_reply_free(&r);

	/* Headers past the connection's memory limit are refused, not buffered. */
	cw_buf_t req = CW_BUF_INIT;
	cw_buf_append_str(&req, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: ");
	for (int i = 0; i < 2 * CW_API_HEADER_MEMORY; i++)
		cw_buf_append_char(&req, 'a');
	cw_buf_append_str(&req, "\r\n\r\n");
	cw_http_raw(port_of(fx->open), req.data, req.len, &r);
	assert_int_equal(r.status, 431);
	cw_http_reply_free(&r);
	cw_buf_free(&req);
}

/* HEAD answers wherever GET does: same status and headers, no body. */
static void head_works_where_get_does(void **state)
{
	fixture_t *fx = *state;
	uint16_t port = port_of(fx->open);
	static const char *const paths[] = {"/healthz", "/v1/status", "/metrics", "/openapi.yaml",
	                                    "/v1/entities", "/v1/consumers"};
	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		cw_http_reply_t get, head;
		cw_http(port, "GET", paths[i], NULL, NULL, &get);
		cw_http(port, "HEAD", paths[i], NULL, NULL, &head);
		if (head.status != get.status)
			fail_msg("HEAD %s: %d, GET: %d", paths[i], head.status, get.status);
		assert_int_equal(head.body_len, 0);
		assert_non_null(strstr(head.head, "Content-Type: "));
		cw_http_reply_free(&get);
		cw_http_reply_free(&head);
	}
	cw_http_reply_t r;
	cw_http(port, "HEAD", "/v1/entities/no_such_entity", NULL, NULL, &r);
	assert_int_equal(r.status, 404);
	cw_http_reply_free(&r);
	cw_http(port, "HEAD", "/v1/entities/x/refresh", NULL, NULL, &r);
	assert_int_equal(r.status, 405);
	cw_http_reply_free(&r);
}

/* A query parameter a route does not document is refused, not ignored. */
static void unknown_query_parameters_are_400(void **state)
{
	fixture_t *fx = *state;
	uint16_t port = port_of(fx->open);
	static const struct {
		const char *method, *path, *names;
	} cases[] = {
		{"GET", "/v1/oplog?entity=products", "entities, after"},
		{"GET", "/v1/oplog?after=0&limt=5", "limit"},
		{"GET", "/v1/entities?deleted=true", "include_deleted"},
		{"GET", "/v1/status?verbose=1", "takes none"},
		{"GET", "/healthz?x", "takes none"},
		{"DELETE", "/v1/consumers/nobody?force=true", "takes none"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		cw_http_reply_t r;
		cw_http(port, cases[i].method, cases[i].path, NULL, NULL, &r);
		expect_error(&r, 400, "bad_request");
		assert_non_null(strstr(r.body, "unknown query parameter"));
		if (strstr(r.body, cases[i].names) == NULL)
			fail_msg("%s: %s", cases[i].path, r.body);
		cw_http_reply_free(&r);
	}
	cw_http_reply_t r;
	cw_http(port, "GET", "/v1/entities?include_deleted=true", NULL, NULL, &r);
	assert_int_equal(r.status, 200);
	cw_http_reply_free(&r);
	cw_http(port, "GET", "/v1/oplog?entities=&after=0&limit=1&wait=0", NULL, NULL, &r);
	assert_int_equal(r.status, 200);
	cw_http_reply_free(&r);
}

static void busy_address_fails_to_start(void **state)
{
	fixture_t *fx = *state;
	char listen[32];
	snprintf(listen, sizeof listen, "127.0.0.1:%u", (unsigned)cw_api_port(fx->open));
	cw_config_t *config = load_config_listen(fx->srv.url, NULL, listen);
	assert_non_null(config);
	cw_api_deps_t deps = {config, fx->metrics, NULL, NULL, NULL, NULL, NULL, NULL};
	cw_err_t err = {0};
	assert_null(cw_api_start(&deps, &err));
	assert_int_equal(err.code, CW_EIO);
	assert_non_null(strstr(err.message, listen));
	cw_config_free(config);
}

static void token_guards_every_route_but_healthz(void **state)
{
	fixture_t *fx = *state;
	uint16_t port = port_of(fx->guarded);
	cw_http_reply_t r;
	static const char *const guarded[] = {"/readyz", "/metrics", "/openapi.yaml", "/v1/status",
	                                      "/v1/entities", "/v1/oplog", "/v1/consumers",
	                                      "/v1/deadletters", "/v1/deadletters/1", "/nowhere"};
	for (size_t i = 0; i < sizeof guarded / sizeof guarded[0]; i++) {
		cw_http(port, "GET", guarded[i], NULL, NULL, &r);
		expect_error(&r, 401, "unauthorized");
		assert_non_null(strstr(r.head, "WWW-Authenticate: Bearer"));
		cw_http_reply_free(&r);
		cw_http(port, "GET", guarded[i], "wrong-token-for-tests", NULL, &r);
		expect_error(&r, 401, "unauthorized");
		cw_http_reply_free(&r);
	}
	cw_http(port, "GET", "/healthz", NULL, NULL, &r);
	assert_int_equal(r.status, 200);
	cw_http_reply_free(&r);
	cw_http(port, "GET", "/v1/entities", TOKEN, NULL, &r);
	assert_int_equal(r.status, 200);
	cw_http_reply_free(&r);
	/* A body is refused before it is read when the token is wrong. */
	cw_http(port, "POST", "/v1/entities", "nope", "{\"name\":\"x\"}", &r);
	expect_error(&r, 401, "unauthorized");
	cw_http_reply_free(&r);
	/* Without a token configured, no header is needed. */
	cw_http(port_of(fx->open), "GET", "/v1/status", NULL, NULL, &r);
	assert_int_equal(r.status, 200);
	cw_http_reply_free(&r);
}

static void body_limit_is_413(void **state)
{
	fixture_t *fx = *state;
	uint16_t port = port_of(fx->open);
	cw_http_reply_t r;
	/* Declared too large: refused from the headers alone. */
	const char *declared = "POST /v1/entities HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
	                       "Content-Type: application/json\r\nContent-Length: 5000000\r\n\r\n";
	cw_http_raw(port, declared, strlen(declared), &r);
	expect_error(&r, 413, "payload_too_large");
	cw_http_reply_free(&r);

	/* Streamed without a length (chunked) past the limit. */
	cw_buf_t req = CW_BUF_INIT;
	cw_buf_append_str(&req, "PUT /v1/consumers/big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
	                        "Transfer-Encoding: chunked\r\n\r\n");
	for (int i = 0; i < 80; i++) {
		cw_buf_append_str(&req, "400\r\n");
		for (int j = 0; j < 0x400; j++)
			cw_buf_append_char(&req, ' ');
		cw_buf_append_str(&req, "\r\n");
	}
	cw_buf_append_str(&req, "0\r\n\r\n");
	cw_http_raw(port, req.data, req.len, &r);
	expect_error(&r, 413, "payload_too_large");
	cw_http_reply_free(&r);
	cw_buf_free(&req);

	/* Just under the limit is read and parsed (and here refused as bad JSON). */
	char body[65000];
	memset(body, ' ', sizeof body - 1);
	body[sizeof body - 1] = '\0';
	body[0] = '[';
	cw_http(port, "POST", "/v1/entities", NULL, body, &r);
	expect_error(&r, 400, "bad_request");
	cw_http_reply_free(&r);
}

static void entities_crud_and_refresh(void **state)
{
	fixture_t *fx = *state;
	uint16_t port = port_of(fx->open);
	cw_http_reply_t r;
	const char *products = "{\"name\":\"products\",\"source\":\"shop\",\"collection\":\"products\","
	                       "\"columns\":[{\"name\":\"price\",\"type\":\"number\","
	                       "\"path\":\"pricing.amount\"}]}";
	cw_http(port, "POST", "/v1/entities", NULL, products, &r);
	assert_int_equal(r.status, 201);
	json_t *e = json_body(&r);
	assert_string_equal(json_string_value(json_object_get(e, "status")), "pending");
	assert_int_equal(json_integer_value(json_object_get(e, "version")), 1);
	assert_string_equal(json_string_value(json_object_get(
		json_array_get(json_object_get(e, "columns"), 0), "path")), "pricing.amount");
	json_decref(e);
	cw_http_reply_free(&r);

	/* The same shape again changes nothing; another shape is a conflict. */
	cw_http(port, "POST", "/v1/entities", NULL, products, &r);
	assert_int_equal(r.status, 200);
	cw_http_reply_free(&r);
	cw_http(port, "POST", "/v1/entities", NULL,
	     "{\"name\":\"products\",\"source\":\"shop\",\"collection\":\"other\"}", &r);
	expect_error(&r, 409, "conflict");
	cw_http_reply_free(&r);

	/* Valid JSON, invalid entity: 422 with the entity manager's message. */
	cw_http(port, "POST", "/v1/entities", NULL,
	     "{\"name\":\"orders\",\"source\":\"nosuch\",\"collection\":\"orders\"}", &r);
	expect_error(&r, 422, "unprocessable_entity");
	assert_non_null(strstr(r.body, "nosuch"));
	cw_http_reply_free(&r);
	cw_http(port, "POST", "/v1/entities", NULL,
	     "{\"name\":\"orders\",\"source\":\"app_pg\",\"collection\":\"orders\"}", &r);
	expect_error(&r, 422, "unprocessable_entity");
	cw_http_reply_free(&r);
	cw_http(port, "POST", "/v1/entities", NULL, "{\"name\":\"orders\"", &r);
	expect_error(&r, 400, "bad_request");
	cw_http_reply_free(&r);

	cw_http(port, "POST", "/v1/entities", NULL,
	     "{\"name\":\"customers\",\"source\":\"app_pg\",\"table\":\"public.customers\"}", &r);
	assert_int_equal(r.status, 201);
	cw_http_reply_free(&r);

	cw_http(port, "GET", "/v1/entities", NULL, NULL, &r);
	assert_int_equal(r.status, 200);
	json_t *list = json_object_get(e = json_body(&r), "entities");
	assert_int_equal(json_array_size(list), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "name")),
	                    "customers");
	assert_string_equal(json_string_value(json_object_get(json_array_get(list, 1), "name")),
	                    "products");
	json_decref(e);
	cw_http_reply_free(&r);

	cw_http(port, "GET", "/v1/entities/products", NULL, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"collection\":\"products\""));
	cw_http_reply_free(&r);

	cw_http(port, "POST", "/v1/entities/products/refresh", NULL, NULL, &r);
	assert_int_equal(r.status, 202);
	e = json_body(&r);
	assert_int_equal(json_integer_value(json_object_get(e, "version")), 2);
	assert_string_equal(json_string_value(json_object_get(e, "status")), "pending");
	json_decref(e);
	cw_http_reply_free(&r);

	cw_http(port, "DELETE", "/v1/entities/customers", NULL, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"status\":\"deleted\""));
	cw_http_reply_free(&r);
	cw_http(port, "GET", "/v1/entities", NULL, NULL, &r);
	assert_null(strstr(r.body, "customers"));
	cw_http_reply_free(&r);
	cw_http(port, "GET", "/v1/entities?include_deleted=true", NULL, NULL, &r);
	assert_non_null(strstr(r.body, "customers"));
	cw_http_reply_free(&r);
	cw_http(port, "GET", "/v1/entities/customers", NULL, NULL, &r);
	expect_error(&r, 404, "not_found");
	cw_http_reply_free(&r);

	static const char *const missing[][2] = {
		{"GET", "/v1/entities/nosuch"}, {"DELETE", "/v1/entities/nosuch"},
		{"POST", "/v1/entities/nosuch/refresh"},
	};
	for (size_t i = 0; i < 3; i++) {
		cw_http(port, missing[i][0], missing[i][1], NULL, NULL, &r);
		expect_error(&r, 404, "not_found");
		cw_http_reply_free(&r);
	}
}

static void hostile_entity_names_are_400(void **state)
{
	fixture_t *fx = *state;
	uint16_t port = port_of(fx->open);
	cw_http_reply_t r;
	static const char *const paths[][2] = {
		{"GET", "/v1/entities/../x"}, {"GET", "/v1/entities/a\"b"},
		{"GET", "/v1/entities/a%22b"}, {"DELETE", "/v1/entities/..%2Fx"},
		{"POST", "/v1/entities/..%2F..%2Fetc/refresh"}, {"GET", "/v1/entities/Products"},
		{"GET", "/v1/entities/a;drop%20table%20x"}, {"GET", "/v1/oplog?entities=../x"},
		{"GET", "/v1/oplog?entities=a%22b"}, {"GET", "/v1/entities/%C3%A9"},
	};
	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		cw_http(port, paths[i][0], paths[i][1], NULL, NULL, &r);
		if (r.status != 400)
			fail_msg("%s %s: status %d: %s", paths[i][0], paths[i][1], r.status, r.body);
		expect_error(&r, 400, "bad_request");
		cw_http_reply_free(&r);
	}
	cw_http(port, "POST", "/v1/entities", NULL,
	     "{\"name\":\"../x\",\"source\":\"shop\",\"collection\":\"x\"}", &r);
	expect_error(&r, 400, "bad_request");
	cw_http_reply_free(&r);
	cw_http(port, "POST", "/v1/entities", NULL,
	     "{\"name\":\"a\\\"b\",\"source\":\"shop\",\"collection\":\"x\"}", &r);
	expect_error(&r, 400, "bad_request");
	cw_http_reply_free(&r);
	/* Nothing of them reached the hub. */
	cw_http(port, "GET", "/v1/entities?include_deleted=true", NULL, NULL, &r);
	assert_null(strstr(r.body, "../x"));
	cw_http_reply_free(&r);
}

static void append_change(fixture_t *fx, const char *doc_id, const char *data)
{
	cw_oplog_writer_t *writer = cw_oplog_writer_new(fx->hub);
	cw_change_batch_t batch = CW_CHANGE_BATCH_INIT;
	cw_change_t change = {0};
	change.op = CW_OP_UPSERT;
	change.entity = cw_xstrdup("products");
	change.doc_id = cw_xstrdup(doc_id);
	change.data = cw_xstrdup(data);
	change.version = 2;
	cw_change_batch_push(&batch, &change);
	cw_err_t err = {0};
	if (cw_oplog_append(writer, &batch, NULL, NULL, NULL, &err) != 0)
		fail_msg("append: %s", err.message);
	cw_change_batch_free(&batch);
	cw_oplog_writer_free(writer);
}

typedef struct poll_call {
	uint16_t port;
	const char *path;
	cw_http_reply_t reply;
	int64_t done_ms;
} poll_call_t;

static void *poll_thread(void *arg)
{
	poll_call_t *call = arg;
	cw_http(call->port, "GET", call->path, NULL, NULL, &call->reply);
	call->done_ms = cw_clock_now_ms(cw_clock_system());
	return NULL;
}

static void oplog_fetch_and_long_poll(void **state)
{
	fixture_t *fx = *state;
	uint16_t port = port_of(fx->open);
	cw_http_reply_t r;
	cw_err_t err = {0};
	assert_int_equal(cw_entity_store_set_status(fx->hub, "products", CW_ENTITY_LIVE, &err), 0);
	append_change(fx, "p1", "{\"price\":1.5}");
	append_change(fx, "p2", "{\"price\":null}");

	cw_http(port, "GET", "/v1/oplog?entities=products&limit=1", NULL, NULL, &r);
	assert_int_equal(r.status, 200);
	json_t *b = json_body(&r);
	json_t *changes = json_object_get(b, "changes");
	assert_int_equal(json_array_size(changes), 1);
	json_t *first = json_array_get(changes, 0);
	assert_string_equal(json_string_value(json_object_get(first, "doc_id")), "p1");
	assert_string_equal(json_string_value(json_object_get(first, "op")), "upsert");
	assert_true(json_real_value(json_object_get(json_object_get(first, "data"), "price")) == 1.5);
	json_int_t first_id = json_integer_value(json_object_get(first, "id"));
	assert_int_equal(json_integer_value(json_object_get(b, "next_after")), first_id);
	assert_true(json_is_true(json_object_get(b, "has_more")));
	json_decref(b);
	cw_http_reply_free(&r);

	char path[160];
	snprintf(path, sizeof path, "/v1/oplog?entities=products,customers&after=%lld",
	         (long long)first_id);
	cw_http(port, "GET", path, NULL, NULL, &r);
	b = json_body(&r);
	changes = json_object_get(b, "changes");
	assert_int_equal(json_array_size(changes), 1);
	json_t *second = json_array_get(changes, 0);
	assert_true(json_is_null(json_object_get(json_object_get(second, "data"), "price")));
	json_int_t last_id = json_integer_value(json_object_get(second, "id"));
	assert_false(json_is_true(json_object_get(b, "has_more")));
	json_decref(b);
	cw_http_reply_free(&r);

	static const char *const bad[] = {"/v1/oplog?after=-1", "/v1/oplog?limit=0",
	                                  "/v1/oplog?limit=ten", "/v1/oplog?wait=soon",
	                                  "/v1/oplog?entities=a,,b"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cw_http(port, "GET", bad[i], NULL, NULL, &r);
		expect_error(&r, 400, "bad_request");
		cw_http_reply_free(&r);
	}
	cw_http(port, "GET", "/v1/oplog?entities=products,nosuch", NULL, NULL, &r);
	expect_error(&r, 404, "not_found");
	assert_non_null(strstr(r.body, "nosuch"));
	cw_http_reply_free(&r);

	/* Long-poll: wait until the request sleeps on the notifier, then write. */
	poll_call_t call = {.port = port, .path = path};
	snprintf(path, sizeof path, "/v1/oplog?entities=products&after=%lld&wait=60",
	         (long long)last_id);
	pthread_t thread;
	assert_int_equal(pthread_create(&thread, NULL, poll_thread, &call), 0);
	const cw_clock_t *clock = cw_clock_system();
	int64_t deadline = cw_clock_now_ms(clock) + 30000;
	size_t waiting = 0;
	bool listening = false;
	for (;;) {
		cw_api_notifier_state(fx->open, &waiting, &listening);
		if ((waiting == 1 && listening) || cw_clock_now_ms(clock) >= deadline)
			break;
		cw_clock_sleep_ms(clock, 5, NULL);
	}
	assert_int_equal(waiting, 1);
	assert_true(listening);
	uint64_t generation = cw_api_notifier_generation(fx->open);
	int64_t written_ms = cw_clock_now_ms(clock);
	append_change(fx, "p3", "{\"price\":3}");
	pthread_join(thread, NULL);
	/* The writer's NOTIFY reached the notifier, which is what wakes waiting requests
	 * (without it the request would still answer, but only when its wait ran out). */
	assert_true(cw_api_notifier_generation(fx->open) > generation);
	assert_int_equal(call.reply.status, 200);
	b = json_body(&call.reply);
	changes = json_object_get(b, "changes");
	assert_int_equal(json_array_size(changes), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(changes, 0), "doc_id")),
	                    "p3");
	json_decref(b);
	cw_http_reply_free(&call.reply);
	/* Reported, not asserted: a figure, not a pass/fail criterion on a shared machine. */
	fprintf(stderr, "long-poll woke %lld ms after the commit returned\n",
	        (long long)(call.done_ms - written_ms));

	/* A wait that passes with nothing new answers an empty batch. */
	snprintf(path, sizeof path, "/v1/oplog?entities=customers&wait=0.05");
	cw_http(port, "GET", path, NULL, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"changes\":[]"));
	cw_http_reply_free(&r);
}

static void consumers_register_heartbeat_and_lag(void **state)
{
	fixture_t *fx = *state;
	uint16_t port = port_of(fx->open);
	cw_http_reply_t r;
	cw_http(port, "PUT", "/v1/consumers/node-1", NULL, NULL, &r);
	assert_int_equal(r.status, 200);
	json_t *c = json_body(&r);
	assert_string_equal(json_string_value(json_object_get(c, "name")), "node-1");
	assert_int_equal(json_integer_value(json_object_get(c, "position")), 0);
	assert_int_equal(json_integer_value(json_object_get(c, "lag_ids")), 3);
	json_decref(c);
	cw_http_reply_free(&r);

	cw_http(port, "PUT", "/v1/consumers/node-1", NULL, "{\"position\":2}", &r);
	assert_int_equal(r.status, 200);
	c = json_body(&r);
	assert_int_equal(json_integer_value(json_object_get(c, "position")), 2);
	assert_int_equal(json_integer_value(json_object_get(c, "lag_ids")), 1);
	assert_true(json_number_value(json_object_get(c, "lag_seconds")) >= 0);
	json_decref(c);
	cw_http_reply_free(&r);

	cw_http(port, "GET", "/v1/consumers", NULL, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"name\":\"node-1\""));
	cw_http_reply_free(&r);

	cw_http(port, "PUT", "/v1/consumers/node-1", NULL, "{\"position\":-5}", &r);
	expect_error(&r, 400, "bad_request");
	cw_http_reply_free(&r);
	cw_http(port, "PUT", "/v1/consumers/a%22b", NULL, NULL, &r);
	expect_error(&r, 400, "bad_request");
	cw_http_reply_free(&r);

	/* A position past the oplog's last id (3 rows so far) is refused. */
	cw_http(port, "PUT", "/v1/consumers/node-1", NULL, "{\"position\":4}", &r);
	expect_error(&r, 400, "bad_request");
	assert_non_null(strstr(r.body, "past the oplog's last id (3)"));
	cw_http_reply_free(&r);
	cw_http(port, "PUT", "/v1/consumers/node-1", NULL, "{\"position\":3}", &r);
	assert_int_equal(r.status, 200);
	cw_http_reply_free(&r);

	/* The consumer of the daemon's own target "local" is not the API's to change. */
	cw_http(port, "PUT", "/v1/consumers/local", NULL, "{\"position\":0}", &r);
	expect_error(&r, 409, "conflict");
	assert_non_null(strstr(r.body, "target"));
	cw_http_reply_free(&r);
	cw_http(port, "PUT", "/v1/consumers/local", NULL, NULL, &r);
	expect_error(&r, 409, "conflict");
	cw_http_reply_free(&r);
	cw_http(port, "DELETE", "/v1/consumers/local", NULL, NULL, &r);
	expect_error(&r, 409, "conflict");
	cw_http_reply_free(&r);

	cw_http(port, "PUT", "/v1/consumers/gone", NULL, "{}", &r);
	assert_int_equal(r.status, 200);
	cw_http_reply_free(&r);
	cw_http(port, "DELETE", "/v1/consumers/gone", NULL, NULL, &r);
	assert_int_equal(r.status, 204);
	cw_http_reply_free(&r);
	cw_http(port, "DELETE", "/v1/consumers/gone", NULL, NULL, &r);
	expect_error(&r, 404, "not_found");
	cw_http_reply_free(&r);
}

static void readyz_names_unhealthy_components(void **state)
{
	fixture_t *fx = *state;
	uint16_t port = port_of(fx->open);
	cw_http_reply_t r;
	cw_http(port, "GET", "/readyz", NULL, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"ready\":true"));
	cw_http_reply_free(&r);

	set_source_health(fx, false, "retrying", "could not connect to \"" LEAKY_URL "\"");
	cw_http(port, "GET", "/readyz", NULL, NULL, &r);
	expect_error(&r, 503, "unavailable");
	assert_non_null(strstr(r.body, "source shop is retrying"));
	assert_non_null(strstr(r.body, "\"unhealthy\":[\"shop\"]"));
	assert_null(strstr(r.body, "hunter2"));
	cw_http_reply_free(&r);

	cw_http(port, "GET", "/v1/status", NULL, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_null(strstr(r.body, "hunter2"));
	json_t *s = json_body(&r);
	assert_true(json_is_true(json_object_get(json_object_get(s, "hub"), "reachable")));
	json_t *components = json_object_get(s, "components");
	assert_int_equal(json_array_size(components), 2);
	json_t *shop = json_array_get(components, 0);
	assert_string_equal(json_string_value(json_object_get(shop, "state")), "retrying");
	assert_true(json_is_false(json_object_get(shop, "healthy")));
	assert_true(json_is_null(json_object_get(shop, "lag_bytes")));
	json_t *job = json_object_get(shop, "job");
	assert_string_equal(json_string_value(json_object_get(job, "name")), "capture:shop");
	json_t *local = json_array_get(components, 1);
	assert_int_equal(json_integer_value(json_object_get(local, "lag_ids")), 3);
	assert_true(json_is_null(json_object_get(local, "job")));
	assert_int_equal(json_array_size(json_object_get(s, "failed_entities")), 0);
	assert_int_equal(json_integer_value(json_object_get(s, "failed_entities_total")), 0);
	json_decref(s);
	cw_http_reply_free(&r);

	/* One failed entity: listed with its source and reason (masked), the component healthy. */
	set_source_health(fx, true, "streaming", "");
	pthread_mutex_lock(&fx->mutex);
	cw_component_status_t *st = &fx->components[0].status;
	st->nfailed = 1;
	snprintf(st->failed[0].entity, sizeof st->failed[0].entity, "ghost");
	snprintf(st->failed[0].reason, sizeof st->failed[0].reason,
	         "table \"public.ghost\" does not exist (" LEAKY_URL ")");
	pthread_mutex_unlock(&fx->mutex);
	cw_http(port, "GET", "/v1/status", NULL, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_null(strstr(r.body, "hunter2"));
	s = json_body(&r);
	json_t *failed = json_object_get(s, "failed_entities");
	assert_int_equal(json_array_size(failed), 1);
	json_t *f = json_array_get(failed, 0);
	assert_string_equal(json_string_value(json_object_get(f, "entity")), "ghost");
	assert_string_equal(json_string_value(json_object_get(f, "source")), "shop");
	assert_non_null(strstr(json_string_value(json_object_get(f, "reason")),
	                       "\"public.ghost\" does not exist"));
	assert_int_equal(json_integer_value(json_object_get(s, "failed_entities_total")), 1);
	json_decref(s);
	cw_http_reply_free(&r);

	/* More failed than a status holds: the first are listed, the total counts them all. */
	pthread_mutex_lock(&fx->mutex);
	st->nfailed = CW_COMPONENT_FAILED_MAX + 4;
	for (size_t i = 0; i < CW_COMPONENT_FAILED_MAX; i++) {
		snprintf(st->failed[i].entity, sizeof st->failed[i].entity, "ghost_%zu", i);
		snprintf(st->failed[i].reason, sizeof st->failed[i].reason, "missing");
	}
	pthread_mutex_unlock(&fx->mutex);
	cw_http(port, "GET", "/v1/status", NULL, NULL, &r);
	s = json_body(&r);
	assert_int_equal(json_array_size(json_object_get(s, "failed_entities")),
	                 CW_COMPONENT_FAILED_MAX);
	assert_int_equal(json_integer_value(json_object_get(s, "failed_entities_total")),
	                 CW_COMPONENT_FAILED_MAX + 4);
	json_decref(s);
	cw_http_reply_free(&r);
	pthread_mutex_lock(&fx->mutex);
	st->nfailed = 0;
	pthread_mutex_unlock(&fx->mutex);
}

static void status_reports_job_failures_masked(void **state)
{
	fixture_t *fx = *state;
	const cw_clock_t *clock = cw_clock_system();
	int64_t deadline = cw_clock_now_ms(clock) + 30000;
	cw_job_status_t job;
	while (cw_jobs_snapshot(fx->jobs, &job, 1) == 1 && job.failures == 0 &&
	       cw_clock_now_ms(clock) < deadline)
		cw_clock_sleep_ms(clock, 10, NULL);
	assert_true(job.failures >= 1);
	cw_http_reply_t r;
	cw_http(port_of(fx->open), "GET", "/v1/status", NULL, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_null(strstr(r.body, "hunter2"));
	json_t *s = json_body(&r);
	json_t *jobs = json_object_get(s, "jobs");
	assert_int_equal(json_array_size(jobs), 1);
	json_t *j = json_array_get(jobs, 0);
	assert_true(json_integer_value(json_object_get(j, "failures")) >= 1);
	assert_non_null(strstr(json_string_value(json_object_get(j, "last_error")),
	                       "postgresql://app:****@db.internal/app"));
	assert_true(json_is_null(json_object_get(j, "last_success")));
	json_decref(s);
	cw_http_reply_free(&r);
}

static void metrics_are_prometheus_text(void **state)
{
	fixture_t *fx = *state;
	cw_http_reply_t r;
	cw_http(port_of(fx->open), "GET", "/metrics", NULL, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.head, "Content-Type: text/plain; version=0.0.4"));
	assert_non_null(strstr(r.body, "# TYPE cachewarp_process_resident_memory_bytes gauge\n"));
	const char *rss = strstr(r.body, "\ncachewarp_process_resident_memory_bytes ");
	assert_non_null(rss);
	assert_true(strtod(rss + strlen("\ncachewarp_process_resident_memory_bytes "), NULL) > 0);
	assert_non_null(strstr(r.body, "cachewarp_consumer_lag_ids{consumer=\"node-1\"} "));
	assert_non_null(strstr(r.body, "cachewarp_consumer_lag_seconds{consumer=\"node-1\"} "));
	assert_non_null(strstr(r.body, "cachewarp_hub_up 1\n"));
	assert_non_null(strstr(r.body, "cachewarp_component_healthy{kind=\"source\",name=\"shop\"} 1\n"));
	assert_non_null(strstr(r.body, "cachewarp_changes_applied_total{"));
	assert_non_null(strstr(r.body, "cachewarp_component_lag_ids{kind=\"target\",name=\"local\"} 3\n"));
	assert_non_null(strstr(r.body, "cachewarp_component_lag_seconds{kind=\"source\",name=\"shop\"} 0.5\n"));
	assert_null(strstr(r.body, "cachewarp_component_lag_bytes{"));   /* n/a for both */
	assert_non_null(strstr(r.body, "cachewarp_api_requests_total{route=\"/v1/entities/{name}\","
	                               "method=\"GET\",code=\"404\"} "));
	assert_non_null(strstr(r.body, "cachewarp_api_requests_total{route=\"unmatched\","
	                               "method=\"other\",code=\"404\"} "));
	assert_non_null(strstr(r.body, "cachewarp_api_request_duration_seconds_bucket{"
	                               "route=\"/v1/oplog\",le=\"+Inf\"} "));
	cw_prom_check_histograms(r.body);

	int promtool = cw_prom_promtool_check(r.body, r.body_len);
	cw_http_reply_free(&r);
	if (promtool < 0) {
		fprintf(stderr, "SKIPPED: promtool not found (make deps installs Debian's prometheus)\n");
		skip();
	}
	assert_int_equal(promtool, 0);
}

/* A table created with quotes is named with them over the API too; unquoted upper case is 422. */
static void quoted_table_names_over_the_api(void **state)
{
	fixture_t *fx = *state;
	uint16_t port = port_of(fx->open);
	cw_http_reply_t r;
	cw_http(port, "POST", "/v1/entities", NULL,
	        "{\"name\":\"orders_q\",\"source\":\"app_pg\",\"table\":\"public.\\\"Orders\\\"\"}", &r);
	if (r.status != 201)
		fail_msg("status %d: %s", r.status, r.body);
	json_t *e = json_body(&r);
	assert_string_equal(json_string_value(json_object_get(e, "table")), "public.\"Orders\"");
	json_decref(e);
	cw_http_reply_free(&r);
	cw_http(port, "POST", "/v1/entities", NULL,
	        "{\"name\":\"orders_u\",\"source\":\"app_pg\",\"table\":\"public.Orders\"}", &r);
	expect_error(&r, 422, "unprocessable_entity");
	assert_non_null(strstr(r.body, "double quotes"));
	cw_http_reply_free(&r);
	cw_http(port, "DELETE", "/v1/entities/orders_q", NULL, NULL, &r);
	assert_int_equal(r.status, 200);
	cw_http_reply_free(&r);
}

/* Plants a dead letter through the hub module; returns its id. */
static int64_t plant_letter(fixture_t *fx, const char *target, const char *entity,
                            const char *doc_id, int64_t oplog_id, const char *data)
{
	cw_dead_letter_t letter = {0};
	letter.target = (char *)target;
	letter.entity = (char *)entity;
	letter.doc_id = (char *)doc_id;
	letter.oplog_id = oplog_id;
	letter.op = data != NULL ? CW_OP_UPSERT : CW_OP_DELETE;
	letter.data = (char *)data;
	letter.stage = CW_DEAD_LETTER_WRITE;
	letter.error = (char *)"value too long for type character varying(3)";
	letter.error_code = (char *)"22001";
	cw_err_t err = {0};
	if (cw_dead_letter_add(fx->hub, &letter, &err) != 0)
		fail_msg("plant: %s", err.message);
	cw_dead_letter_filter_t filter = CW_DEAD_LETTER_FILTER_ALL;
	filter.target = target;
	filter.entity = entity;
	filter.limit = 10000;
	cw_dead_letter_t *letters = NULL;
	size_t count = 0;
	assert_int_equal(cw_dead_letter_list(fx->hub, &filter, &letters, &count, &err), 0);
	int64_t id = 0;
	for (size_t i = 0; i < count; i++)
		if (strcmp(letters[i].doc_id, doc_id) == 0 && letters[i].oplog_id == oplog_id)
			id = letters[i].id;
	cw_dead_letter_list_free(letters, count);
	assert_true(id > 0);
	return id;
}

/* GET path: 200 and its JSON (owned). */
static json_t *get_json(uint16_t port, const char *path)
{
	cw_http_reply_t r;
	cw_http(port, "GET", path, NULL, NULL, &r);
	if (r.status != 200)
		fail_msg("GET %s: %d %s", path, r.status, r.body);
	json_t *root = json_body(&r);
	cw_http_reply_free(&r);
	return root;
}

static void expect_status(uint16_t port, const char *method, const char *path, const char *body,
                          int status, const char *code, const char *message)
{
	cw_http_reply_t r;
	cw_http(port, method, path, NULL, body, &r);
	if (code != NULL)
		expect_error(&r, status, code);
	else if (r.status != status)
		fail_msg("%s %s: %d, want %d: %s", method, path, r.status, status, r.body);
	/* An error's message as the client reads it, unescaped; else the raw body. */
	json_t *root = code != NULL ? json_body(&r) : NULL;
	const char *text = root != NULL ? json_string_value(json_object_get(
		json_object_get(root, "error"), "message")) : r.body;
	if (message != NULL && strstr(text, message) == NULL)
		fail_msg("%s %s: no \"%s\" in %s", method, path, message, r.body);
	json_decref(root);
	cw_http_reply_free(&r);
}

static int64_t member_int(json_t *object, const char *key)
{
	json_t *value = json_object_get(object, key);
	if (!json_is_integer(value))
		fail_msg("\"%s\" is not an integer", key);
	return (int64_t)json_integer_value(value);
}

static void dead_letters_list_page_replay_drop(void **state)
{
	fixture_t *fx = *state;
	uint16_t port = port_of(fx->open);
	int64_t a = plant_letter(fx, "local", "products", "p1", 7, "{\"price\": 2.50, \"n\": 9007199254740993}");
	int64_t b = plant_letter(fx, "local", "products", "p2", 8, NULL);
	int64_t c = plant_letter(fx, "pg1", "products", "p1", 7, "{\"price\": 2.50}");
	int64_t d = plant_letter(fx, "pg1", "orders", "[\"o\",1]", 9, "{}");

	/* /v1/status counts them per stream. */
	json_t *status = get_json(port, "/v1/status");
	json_t *streams = json_object_get(status, "dead_letters");
	assert_int_equal(json_array_size(streams), 3);
	json_t *first = json_array_get(streams, 0);
	assert_string_equal(json_string_value(json_object_get(first, "target")), "local");
	assert_string_equal(json_string_value(json_object_get(first, "entity")), "products");
	assert_int_equal(member_int(first, "failed"), 2);
	assert_int_equal(member_int(first, "replay"), 0);
	json_decref(status);

	/* The list, in id order, with the change's data as stored (digits kept). */
	cw_http_reply_t r;
	cw_http(port, "GET", "/v1/deadletters", NULL, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"data\":{\"n\": 9007199254740993, \"price\": 2.50}"));
	json_t *page = json_body(&r);
	cw_http_reply_free(&r);
	json_t *letters = json_object_get(page, "dead_letters");
	assert_int_equal(json_array_size(letters), 4);
	assert_int_equal(member_int(json_array_get(letters, 0), "id"), a);
	assert_int_equal(member_int(page, "next_after"), d);
	assert_true(json_is_false(json_object_get(page, "has_more")));
	json_t *second = json_array_get(letters, 1);
	assert_string_equal(json_string_value(json_object_get(second, "op")), "delete");
	assert_true(json_is_null(json_object_get(second, "data")));
	assert_string_equal(json_string_value(json_object_get(second, "status")), "failed");
	assert_string_equal(json_string_value(json_object_get(second, "error_code")), "22001");
	json_decref(page);

	/* Pages: next_after carries on where the last page stopped. */
	page = get_json(port, "/v1/deadletters?limit=2");
	assert_int_equal(json_array_size(json_object_get(page, "dead_letters")), 2);
	assert_true(json_is_true(json_object_get(page, "has_more")));
	assert_int_equal(member_int(page, "next_after"), b);
	json_decref(page);
	char path[160];
	snprintf(path, sizeof path, "/v1/deadletters?limit=2&after=%lld", (long long)b);
	page = get_json(port, path);
	letters = json_object_get(page, "dead_letters");
	assert_int_equal(json_array_size(letters), 2);
	assert_int_equal(member_int(json_array_get(letters, 0), "id"), c);
	json_decref(page);
	snprintf(path, sizeof path, "/v1/deadletters?after=%lld", (long long)d);
	page = get_json(port, path);
	assert_int_equal(json_array_size(json_object_get(page, "dead_letters")), 0);
	assert_int_equal(member_int(page, "next_after"), d);
	json_decref(page);

	/* Filters. */
	static const struct {
		const char *query;
		size_t count;
	} filters[] = {
		{"?target=local", 2}, {"?target=pg1&entity=orders", 1}, {"?entity=products", 3},
		{"?status=failed", 4}, {"?status=replay", 0}, {"?target=nobody", 0},
		{"?limit=10000", 4}, {"?limit=1&entity=products&target=pg1", 1},
	};
	for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++) {
		snprintf(path, sizeof path, "/v1/deadletters%s", filters[i].query);
		page = get_json(port, path);
		if (json_array_size(json_object_get(page, "dead_letters")) != filters[i].count)
			fail_msg("%s: %zu letters", path, json_array_size(json_object_get(page, "dead_letters")));
		json_decref(page);
	}

	/* Every query parameter is checked; the message names it. */
	static const struct {
		const char *path, *message;
	} bad[] = {
		{"/v1/deadletters?limit=0", "query parameter \"limit\": 0 is out of range (1..10000)"},
		{"/v1/deadletters?limit=10001", "query parameter \"limit\": 10001 is out of range"},
		{"/v1/deadletters?limit=ten", "query parameter \"limit\": expected an integer"},
		{"/v1/deadletters?after=-1", "query parameter \"after\": -1 is out of range"},
		{"/v1/deadletters?status=done", "query parameter \"status\": expected failed or replay"},
		{"/v1/deadletters?target=Local", "query parameter \"target\": target name \"Local\""},
		{"/v1/deadletters?entity=x%3Bdrop%20table", "query parameter \"entity\": entity name"},
		{"/v1/deadletters?target=", "query parameter \"target\": target name is empty"},
		{"/v1/deadletters?stream=x", "unknown query parameter \"stream\""},
		{"/v1/deadletters/abc", "dead letter id: expected an integer"},
		{"/v1/deadletters/0", "dead letter id: 0 is out of range"},
		{"/v1/deadletters/-4", "dead letter id: -4 is out of range"},
		{"/v1/deadletters/99999999999999999999", "dead letter id: expected an integer"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		expect_status(port, "GET", bad[i].path, NULL, 400, "bad_request", bad[i].message);

	/* One letter. */
	snprintf(path, sizeof path, "/v1/deadletters/%lld", (long long)d);
	json_t *letter = get_json(port, path);
	assert_string_equal(json_string_value(json_object_get(letter, "doc_id")), "[\"o\",1]");
	assert_string_equal(json_string_value(json_object_get(letter, "target")), "pg1");
	assert_int_equal(member_int(letter, "oplog_id"), 9);
	assert_int_equal(member_int(letter, "attempts"), 1);
	assert_non_null(strchr(json_string_value(json_object_get(letter, "last_failed_at")), 'T'));
	json_decref(letter);
	expect_status(port, "GET", "/v1/deadletters/999999", NULL, 404, "not_found",
	              "no dead letter 999999");

	/* Replay one; its status says so. */
	snprintf(path, sizeof path, "/v1/deadletters/%lld/replay", (long long)a);
	expect_status(port, "POST", path, NULL, 200, NULL, "{\"replay_requested\":1}");
	page = get_json(port, "/v1/deadletters?status=replay");
	letters = json_object_get(page, "dead_letters");
	assert_int_equal(json_array_size(letters), 1);
	assert_int_equal(member_int(json_array_get(letters, 0), "id"), a);
	json_decref(page);
	expect_status(port, "POST", "/v1/deadletters/999999/replay", NULL, 404, "not_found",
	              "no dead letter 999999");
	expect_status(port, "POST", "/v1/deadletters/x/replay", NULL, 400, "bad_request",
	              "dead letter id");

	/* Replay many: a body must name what. */
	static const struct {
		const char *body, *message;
	} bad_bodies[] = {
		{NULL, "name the letters to replay"},
		{"{}", "name the letters to replay"},
		{"{\"entity\":\"products\"}", "name the letters to replay"},
		{"{\"all\":false}", "\"all\": only true, and alone"},
		{"{\"all\":true,\"target\":\"pg1\"}", "\"all\": only true, and alone"},
		{"{\"target\":\"PG1\"}", "\"target\": target name \"PG1\" is invalid"},
		{"{\"target\":\"pg1\",\"extra\":1}", "unknown member \"extra\""},
		{"not json", NULL},
	};
	for (size_t i = 0; i < sizeof bad_bodies / sizeof bad_bodies[0]; i++)
		expect_status(port, "POST", "/v1/deadletters/replay", bad_bodies[i].body, 400,
		              "bad_request", bad_bodies[i].message);
	expect_status(port, "POST", "/v1/deadletters/replay", "{\"target\":\"pg1\",\"entity\":\"orders\"}",
	              200, NULL, "{\"replay_requested\":1}");
	expect_status(port, "POST", "/v1/deadletters/replay", "{\"target\":\"pg1\"}", 200, NULL,
	              "{\"replay_requested\":2}");
	expect_status(port, "POST", "/v1/deadletters/replay", "{\"target\":\"nobody\"}", 200, NULL,
	              "{\"replay_requested\":0}");
	expect_status(port, "POST", "/v1/deadletters/replay", "{\"all\":true}", 200, NULL,
	              "{\"replay_requested\":4}");
	page = get_json(port, "/v1/deadletters?status=failed");
	assert_int_equal(json_array_size(json_object_get(page, "dead_letters")), 0);
	json_decref(page);
	expect_status(port, "GET", "/v1/deadletters/replay", NULL, 405, "method_not_allowed", NULL);

	/* Drop one; it is gone. */
	snprintf(path, sizeof path, "/v1/deadletters/%lld", (long long)b);
	cw_http(port, "DELETE", path, NULL, NULL, &r);
	assert_int_equal(r.status, 204);
	assert_int_equal(r.body_len, 0);
	cw_http_reply_free(&r);
	expect_status(port, "DELETE", path, NULL, 404, "not_found", "no dead letter");
	expect_status(port, "GET", path, NULL, 404, "not_found", "no dead letter");
	expect_status(port, "DELETE", "/v1/deadletters/one", NULL, 400, "bad_request", "dead letter id");
	page = get_json(port, "/v1/deadletters");
	assert_int_equal(json_array_size(json_object_get(page, "dead_letters")), 3);
	json_decref(page);

	/* The rest are dropped so later tests start clean. */
	cw_dead_letter_filter_t all = CW_DEAD_LETTER_FILTER_ALL;
	cw_err_t err = {0};
	assert_int_equal(cw_dead_letter_drop(fx->hub, &all, NULL, &err), 0);
}

/*
 * schemathesis (PyPI) generates requests from openapi.yaml against the live
 * server: no 5xx, and every answer (status, content type, headers, body)
 * conforms to the spec. Bounded: a fixed number of examples per operation.
 */
static void schemathesis_finds_no_violation(void **state)
{
	fixture_t *fx = *state;
	if (system("command -v schemathesis >/dev/null 2>&1") != 0) {
		fprintf(stderr, "SKIPPED: schemathesis not found (make deps installs it with pip)\n");
		skip();
	}
	const char *dir = getenv("CW_SOURCE_DIR");
	assert_non_null(dir);
	char *cmd = cw_xasprintf(
		"cd /tmp && schemathesis --config-file %s/tests/integration/schemathesis.toml run "
		"--url http://127.0.0.1:%u --header 'Authorization: Bearer " TOKEN "' "
		"--max-examples 40 --seed 7 --request-timeout 20 --workers 1 --no-color "
		"%s/openapi.yaml >/tmp/cw-api-schemathesis.%d.log 2>&1; rc=$?; "
		"[ $rc -eq 0 ] || cat /tmp/cw-api-schemathesis.%d.log >&2; "
		"rm -f /tmp/cw-api-schemathesis.%d.log; exit $rc",
		dir, (unsigned)port_of(fx->guarded), dir, (int)getpid(), (int)getpid(), (int)getpid());
	int rc = system(cmd);
	free(cmd);
	assert_int_equal(rc, 0);
}

/* Last: the hub goes away; routes that need it answer 503, /healthz still 200. */
static void hub_down_is_503(void **state)
{
	fixture_t *fx = *state;
	uint16_t port = port_of(fx->open);
	cw_hub_close(fx->hub);
	fx->hub = NULL;
	cw_testpg_stop(&fx->srv);
	cw_http_reply_t r;
	cw_http(port, "GET", "/healthz", NULL, NULL, &r);
	assert_int_equal(r.status, 200);
	cw_http_reply_free(&r);
	cw_http(port, "GET", "/readyz", NULL, NULL, &r);
	expect_error(&r, 503, "unavailable");
	assert_non_null(strstr(r.body, "hub unreachable"));
	assert_non_null(strstr(r.body, "\"hub_reachable\":false"));
	cw_http_reply_free(&r);
	static const char *const need_hub[] = {"/v1/entities", "/v1/entities/products",
	                                       "/v1/oplog?wait=1", "/v1/consumers",
	                                       "/v1/deadletters", "/v1/deadletters/1"};
	for (size_t i = 0; i < sizeof need_hub / sizeof need_hub[0]; i++) {
		cw_http(port, "GET", need_hub[i], NULL, NULL, &r);
		expect_error(&r, 503, "unavailable");
		cw_http_reply_free(&r);
	}
	cw_http(port, "GET", "/v1/status", NULL, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"reachable\":false"));
	cw_http_reply_free(&r);
	cw_http(port, "GET", "/metrics", NULL, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "cachewarp_hub_up 0\n"));
	cw_http_reply_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(health_and_spec),
		cmocka_unit_test(head_works_where_get_does),
		cmocka_unit_test(unknown_query_parameters_are_400),
		cmocka_unit_test(busy_address_fails_to_start),
		cmocka_unit_test(token_guards_every_route_but_healthz),
		cmocka_unit_test(body_limit_is_413),
		cmocka_unit_test(entities_crud_and_refresh),
		cmocka_unit_test(hostile_entity_names_are_400),
		cmocka_unit_test(oplog_fetch_and_long_poll),
		cmocka_unit_test(consumers_register_heartbeat_and_lag),
		cmocka_unit_test(readyz_names_unhealthy_components),
		cmocka_unit_test(status_reports_job_failures_masked),
		cmocka_unit_test(metrics_are_prometheus_text),
		cmocka_unit_test(quoted_table_names_over_the_api),
		cmocka_unit_test(dead_letters_list_page_replay_drop),
		cmocka_unit_test(schemathesis_finds_no_violation),
		cmocka_unit_test(hub_down_is_503),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
