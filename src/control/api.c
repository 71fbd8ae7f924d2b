/*
 * This file contains the REST API server declared in api.h: libmicrohttpd
 * glue, the route table, authentication, the request body limit and the
 * JSON error responses. The handlers live in api_entities.c, api_oplog.c,
 * api_status.c, api_verify.c and api_dead_letters.c; the parsers in
 * api_parse.c; hub connections in api_hub.c.
 *
 * One call goes through on_request several times: first with the headers
 * (route, method and token are checked, and a declared Content-Length over
 * the limit is refused at once with 413), then once per chunk of the body
 * (kept up to api.max_body_bytes; beyond it the rest is discarded and 413
 * answered), then once more to answer.
 */
#include "control/api_internal.h"

#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/secret.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define COMPONENT "api"

static const char *const entities_query[] = {"include_deleted", NULL};
static const char *const oplog_query[] = {"entities", "after", "limit", "wait", NULL};
static const char *const dead_letters_query[] = {"target", "entity", "status", "after", "limit",
                                                 NULL};

static const cw_api_route_t routes[] = {
	{"GET", "/healthz", cw_api_healthz, NULL},
	{"GET", "/readyz", cw_api_readyz, NULL},
	{"GET", "/metrics", cw_api_metrics, NULL},
	{"GET", "/openapi.yaml", cw_api_openapi, NULL},
	{"GET", "/v1/status", cw_api_status, NULL},
	{"GET", "/v1/entities", cw_api_entities_list, entities_query},
	{"POST", "/v1/entities", cw_api_entities_create, NULL},
	{"GET", "/v1/entities/{name}", cw_api_entity_get, NULL},
	{"DELETE", "/v1/entities/{name}", cw_api_entity_delete, NULL},
	{"POST", "/v1/entities/{name}/refresh", cw_api_entity_refresh, NULL},
	{"POST", "/v1/entities/{name}/resume", cw_api_entity_resume, NULL},
	{"GET", "/v1/oplog", cw_api_oplog_get, oplog_query},
	{"GET", "/v1/consumers", cw_api_consumers_list, NULL},
	{"PUT", "/v1/consumers/{name}", cw_api_consumer_put, NULL},
	{"DELETE", "/v1/consumers/{name}", cw_api_consumer_delete, NULL},
	{"POST", "/v1/verify", cw_api_verify_start, NULL},
	{"GET", "/v1/verify", cw_api_verify_list, NULL},
	{"GET", "/v1/verify/{name}", cw_api_verify_get, NULL},
	{"DELETE", "/v1/verify/{name}", cw_api_verify_cancel, NULL},
	{"GET", "/v1/deadletters", cw_api_dead_letters_list, dead_letters_query},
	{"POST", "/v1/deadletters/replay", cw_api_dead_letters_replay, NULL},
	{"GET", "/v1/deadletters/{name}", cw_api_dead_letter_get, NULL},
	{"DELETE", "/v1/deadletters/{name}", cw_api_dead_letter_delete, NULL},
	{"POST", "/v1/deadletters/{name}/replay", cw_api_dead_letter_replay, NULL},
};

const cw_api_route_t *cw_api_routes(size_t *count)
{
	*count = sizeof routes / sizeof routes[0];
	return routes;
}

bool cw_api_query_accepted(const cw_api_route_t *route, const char *key)
{
	for (size_t i = 0; route->query != NULL && route->query[i] != NULL; i++)
		if (strcmp(route->query[i], key) == 0)
			return true;
	return false;
}

const char *cw_api_status_code(int status)
{
	switch (status) {
	case 400: return "bad_request";
	case 401: return "unauthorized";
	case 404: return "not_found";
	case 405: return "method_not_allowed";
	case 409: return "conflict";
	case 413: return "payload_too_large";
	case 422: return "unprocessable_entity";
	case 503: return "unavailable";
	default: return "internal";
	}
}

void cw_api_error(cw_api_response_t *res, int status, const char *code, const char *fmt, ...)
{
	char message[CW_ERR_MESSAGE_LEN];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(message, sizeof message, fmt, ap);
	va_end(ap);
	char *masked = cw_secret_mask(message);
	res->status = status;
	res->content_type = NULL;
	res->static_body = NULL;
	cw_buf_reset(&res->body);
	cw_json_t w;
	cw_json_init(&w, &res->body, 0);
	cw_json_object_begin(&w, NULL);
	cw_json_key(&w, "error", NULL);
	cw_json_object_begin(&w, NULL);
	cw_json_key(&w, "code", NULL);
	cw_json_string(&w, code ? code : cw_api_status_code(status), NULL);
	cw_json_key(&w, "message", NULL);
	if (cw_json_string(&w, masked, NULL) != 0) {
		/* A message quoting invalid UTF-8 input: say so rather than send broken JSON. */
		cw_buf_reset(&res->body);
		cw_buf_appendf(&res->body, "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}",
		               code ? code : cw_api_status_code(status),
		               "the request holds text that is not valid UTF-8");
	} else {
		cw_json_object_end(&w, NULL);
		cw_json_object_end(&w, NULL);
	}
	free(masked);
}

void cw_api_error_from(cw_api_response_t *res, const cw_err_t *err, int invalid_status)
{
	int status;
	switch (err->code) {
	case CW_EINVAL: status = invalid_status; break;
	case CW_ENOTFOUND: status = 404; break;
	case CW_ECONFLICT: status = 409; break;
	case CW_EDB:
	case CW_EAUTH:
	case CW_EIO:
	case CW_ETIMEDOUT:
	case CW_ECLOSED: status = 503; break;
	default: status = 500; break;
	}
	cw_api_error(res, status, NULL, "%s", err->message[0] ? err->message : "request failed");
}

/* Per-connection state between the calls of one request. */
typedef struct call {
	int64_t started_ms;          /* monotonic, when the headers arrived */
	const cw_api_route_t *route;
	char param[256];
	cw_buf_t body;
	bool too_large;
	bool answered;
} call_t;

static const char *query_value(const cw_api_request_t *req, const char *key)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

static enum MHD_Result send_response(struct MHD_Connection *conn, cw_api_response_t *res)
{
	struct MHD_Response *response;
	if (res->static_body != NULL)
		response = MHD_create_response_from_buffer(res->static_len, (void *)res->static_body,
		                                           MHD_RESPMEM_PERSISTENT);
	else
		response = MHD_create_response_from_buffer(res->body.len,
		                                           res->body.len ? res->body.data : (void *)"",
		                                           MHD_RESPMEM_MUST_COPY);
	if (response == NULL)
		return MHD_NO;
	MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE,
	                        res->content_type ? res->content_type : "application/json");
	MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (res->status == 405 && res->allow[0] != '\0')
		MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, res->allow);
	if (res->status == 401)
		MHD_add_response_header(response, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
		                        "Bearer realm=\"cachewarp\"");
	enum MHD_Result rc = MHD_queue_response(conn, (unsigned)res->status, response);
	MHD_destroy_response(response);
	return rc;
}

/*
 * Counts the answer in cachewarp_api_requests_total and times it. Labels use
 * the route's pattern and method only, so clients cannot add series.
 */
static void record(cw_api_t *api, const call_t *call, int status)
{
	char labels[160];
	snprintf(labels, sizeof labels, "route=\"%s\",method=\"%s\",code=\"%d\"",
	         call->route ? call->route->pattern : "unmatched",
	         call->route ? call->route->method : "other", status);
	cw_metrics_counter_add(api->deps.metrics, "cachewarp_api_requests_total", labels, 1);
	snprintf(labels, sizeof labels, "route=\"%s\"",
	         call->route ? call->route->pattern : "unmatched");
	double seconds = (double)(cw_clock_now_ms(cw_clock_system()) - call->started_ms) / 1000.0;
	cw_metrics_observe(api->deps.metrics, "cachewarp_api_request_duration_seconds", labels,
	                   seconds);
}

static enum MHD_Result send_error(cw_api_t *api, struct MHD_Connection *conn, call_t *call, int status,
                                  const char *allow, const char *fmt, const char *arg)
{
	cw_api_response_t res = {0};
	cw_api_error(&res, status, NULL, fmt, arg);
	if (allow != NULL)
		snprintf(res.allow, sizeof res.allow, "%s", allow);
	call->answered = true;
	record(api, call, status);
	enum MHD_Result rc = send_response(conn, &res);
	cw_buf_free(&res.body);
	return rc;
}

/* What check_query_key looks for and what it found. */
typedef struct query_check {
	const cw_api_route_t *route;
	const char *unknown;         /* the first key the route does not accept; borrowed */
} query_check_t;

/* MHD_get_connection_values callback: stops at the first parameter the route does not accept. */
static enum MHD_Result check_query_key(void *cls, enum MHD_ValueKind kind, const char *key,
                                       const char *value)
{
	query_check_t *check = cls;
	if (key != NULL && !cw_api_query_accepted(check->route, key)) {
		check->unknown = key;
		return MHD_NO;
	}
	return MHD_YES;
}

/* The first query parameter the route does not accept (borrowed), or NULL. */
static const char *unknown_query_key(struct MHD_Connection *conn, const cw_api_route_t *route)
{
	query_check_t check = {route, NULL};
	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, check_query_key, &check);
	return check.unknown;
}

/* The first call of a request: route, method, token, query parameters and declared size. */
static enum MHD_Result on_headers(cw_api_t *api, struct MHD_Connection *conn, const char *url,
                                  const char *method, call_t *call)
{
	bool path_known = false;
	char allow[64];
	call->route = cw_api_route_match(method, url, call->param, sizeof call->param, &path_known,
	                                 allow);
	const char *token = api->deps.config->api.token;
	bool open_route = call->route != NULL && strcmp(call->route->pattern, "/healthz") == 0;
	if (token != NULL && token[0] != '\0' && !open_route &&
	    !cw_api_bearer_ok(MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	                                                  MHD_HTTP_HEADER_AUTHORIZATION), token))
		return send_error(api, conn, call, 401, NULL, "%s",
		                  "missing or wrong bearer token (Authorization: Bearer <api.token>)");
	if (call->route == NULL && !path_known)
		return send_error(api, conn, call, 404, NULL, "no such path \"%.200s\"", url);
	if (call->route == NULL)
		return send_error(api, conn, call, 405, allow, "method not allowed here; allowed: %s", allow);
	const char *unknown = unknown_query_key(conn, call->route);
	if (unknown != NULL) {
		char message[256];
		int used = snprintf(message, sizeof message, "unknown query parameter \"%.64s\"; ",
		                    unknown);
		const char *const *accepted = call->route->query;
		if (accepted == NULL)
			snprintf(message + used, sizeof message - (size_t)used, "this route takes none");
		for (size_t i = 0; accepted != NULL && accepted[i] != NULL && used < (int)sizeof message; i++)
			used += snprintf(message + used, sizeof message - (size_t)used, "%s%s",
			                 i ? ", " : "this route takes ", accepted[i]);
		return send_error(api, conn, call, 400, NULL, "%s", message);
	}
	const char *length = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (length != NULL && strtoull(length, NULL, 10) > (unsigned long long)api->deps.config->api.max_body_bytes) {
		char limit[32];
		snprintf(limit, sizeof limit, "%lld", (long long)api->deps.config->api.max_body_bytes);
		return send_error(api, conn, call, 413, NULL,
		                  "request body larger than api.max_body (%s bytes)", limit);
	}
	return MHD_YES;
}

static enum MHD_Result dispatch(cw_api_t *api, struct MHD_Connection *conn, const char *url,
                                const char *method, call_t *call)
{
	cw_api_response_t res = {.status = 200};
	if (call->too_large) {
		char limit[32];
		snprintf(limit, sizeof limit, "%lld", (long long)api->deps.config->api.max_body_bytes);
		cw_api_error(&res, 413, NULL, "request body larger than api.max_body (%s bytes)", limit);
	} else {
		cw_api_request_t req = {
			.method = method,
			.path = url,
			.param = call->param,
			.body = cw_buf_cstr(&call->body),
			.body_len = call->body.len,
			.query = query_value,
			.conn = conn,
		};
		call->route->handler(api, &req, &res);
	}
	if (res.status == 500)
		cw_log_kv(CW_LOG_WARN, COMPONENT, "request failed", "method", method, "path", url,
		          "response", cw_buf_cstr(&res.body), NULL);
	call->answered = true;
	record(api, call, res.status);
	enum MHD_Result rc = send_response(conn, &res);
	cw_buf_free(&res.body);
	return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
	cw_api_t *api = cls;
	call_t *call = *con_cls;
	if (call == NULL) {
		call = cw_xcalloc(1, sizeof *call);
		call->started_ms = cw_clock_now_ms(cw_clock_system());
		*con_cls = call;
		return on_headers(api, conn, url, method, call);
	}
	if (*upload_data_size > 0) {
		size_t max = (size_t)api->deps.config->api.max_body_bytes;
		if (!call->answered && !call->too_large) {
			if (call->body.len + *upload_data_size > max) {
				call->too_large = true;
				cw_buf_free(&call->body);
			} else {
				cw_buf_append(&call->body, upload_data, *upload_data_size);
			}
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (call->answered)
		return MHD_YES;
	return dispatch(api, conn, url, method, call);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	call_t *call = *con_cls;
	if (call == NULL)
		return;
	cw_buf_free(&call->body);
	free(call);
	*con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char message[512];
	vsnprintf(message, sizeof message, fmt, ap);
	size_t len = strlen(message);
	while (len > 0 && (message[len - 1] == '\n' || message[len - 1] == '\r'))
		message[--len] = '\0';
	cw_log_kv(CW_LOG_DEBUG, COMPONENT, "http server", "detail", message, NULL);
}

/* Resolves api.listen into addr. 0, CW_EINVAL. */
static int resolve_listen(const char *listen, struct sockaddr_storage *addr, cw_err_t *err)
{
	char host[256];
	uint16_t port = 0;
	if (cw_api_parse_listen(listen, host, sizeof host, &port, err) != 0)
		return CW_EINVAL;
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_PASSIVE};
	struct addrinfo *found = NULL;
	int gai = getaddrinfo(host, NULL, &hints, &found);
	if (gai != 0 || found == NULL)
		return cw_err_set(err, CW_EINVAL, COMPONENT, "api.listen \"%s\": cannot resolve \"%s\": %s",
		                  listen, host, gai_strerror(gai));
	memset(addr, 0, sizeof *addr);
	memcpy(addr, found->ai_addr, found->ai_addrlen);
	if (addr->ss_family == AF_INET6)
		((struct sockaddr_in6 *)addr)->sin6_port = htons(port);
	else
		((struct sockaddr_in *)addr)->sin_port = htons(port);
	freeaddrinfo(found);
	return 0;
}

cw_api_t *cw_api_start(const cw_api_deps_t *deps, cw_err_t *err)
{
	if (deps == NULL || deps->config == NULL || deps->metrics == NULL) {
		cw_err_set(err, CW_EINVAL, COMPONENT, "the API needs a configuration and metrics");
		return NULL;
	}
	struct sockaddr_storage addr;
	if (resolve_listen(deps->config->api.listen, &addr, err) != 0)
		return NULL;
	cw_api_t *api = cw_xcalloc(1, sizeof *api);
	api->deps = *deps;
	cw_metrics_declare(deps->metrics, "cachewarp_api_requests_total", CW_METRIC_COUNTER,
	                   "REST API requests answered, by route, method and status code.");
	cw_metrics_declare(deps->metrics, "cachewarp_api_request_duration_seconds",
	                   CW_METRIC_HISTOGRAM,
	                   "Time from a request's headers to its answer (long-polls included).");
	cw_api_pool_init(&api->pool, deps->config->hub.pool_size > 0
	                                 ? (size_t)deps->config->hub.pool_size : 1);
	if (cw_api_notifier_start(api, err) != 0) {
		cw_api_pool_destroy(&api->pool);
		free(api);
		return NULL;
	}
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
	                 MHD_USE_POLL | MHD_USE_ERROR_LOG;
	if (addr.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	struct MHD_Daemon *daemon = MHD_start_daemon(
		flags, 0, NULL, NULL, on_request, api,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)CW_API_MAX_CONNECTIONS,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CW_API_HEADER_MEMORY,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CW_API_IDLE_TIMEOUT_S,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, api,
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, api,
		MHD_OPTION_END);
	if (daemon == NULL) {
		cw_err_set(err, CW_EIO, COMPONENT, "could not listen on \"%s\" (api.listen): "
		           "address in use or not available", deps->config->api.listen);
		cw_api_notifier_stop(api);
		cw_api_pool_destroy(&api->pool);
		free(api);
		return NULL;
	}
	api->daemon = daemon;
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
	api->port = info ? info->port : 0;
	return api;   /* the caller logs that it listens, once */
}

uint16_t cw_api_port(const cw_api_t *api)
{
	return api->port;
}

void cw_api_stop(cw_api_t *api)
{
	if (api == NULL)
		return;
	/* Long-polls return first, so the connection threads MHD_stop_daemon joins can end. */
	cw_api_notifier_stop(api);
	MHD_stop_daemon(api->daemon);
	cw_api_pool_destroy(&api->pool);
	pthread_cond_destroy(&api->notifier.cond);
	pthread_mutex_destroy(&api->notifier.mutex);
	free(api);
}

void cw_api_config_now(cw_api_t *api, cw_api_config_info_t *out)
{
	*out = (cw_api_config_info_t){api->deps.config, 0, NULL, 0};
	if (api->deps.config_now != NULL)
		api->deps.config_now(api->deps.config_now_arg, out);
}
