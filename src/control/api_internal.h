/*
 * This file contains what the REST API's files (api*.c) share: the server
 * state, the route table, the request and response of one call, the hub
 * pool, the long-poll notifier, and the pure parsers (query strings, JSON
 * bodies, route matching) that unit tests and tests/fuzz/fuzz_api.c call
 * directly. Not for use outside src/control/api*.c and the tests.
 *
 * THREAD SAFETY: a request and its response belong to one connection
 * thread. The hub pool and the notifier each have their own mutex; no
 * thread holds both.
 */
#ifndef CW_CONTROL_API_INTERNAL_H
#define CW_CONTROL_API_INTERNAL_H

#include "control/api.h"
#include "core/buf.h"
#include "core/entity.h"
#include "core/err.h"
#include "hub/hub.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits of GET /v1/oplog: larger values are lowered to these. */
#define CW_API_OPLOG_DEFAULT_LIMIT 1000
#define CW_API_OPLOG_MAX_LIMIT 10000
#define CW_API_OPLOG_MAX_WAIT_S 60
#define CW_API_OPLOG_MAX_ENTITIES 64

/* Server limits: connections, request header memory, idle timeout. */
#define CW_API_MAX_CONNECTIONS 128
#define CW_API_HEADER_MEMORY 32768
#define CW_API_IDLE_TIMEOUT_S 60

/* Longest consumer name; its characters are [A-Za-z0-9_.:-]. */
#define CW_API_CONSUMER_NAME_MAX 128

/* One call as a handler sees it. Every pointer is borrowed for the call. */
typedef struct cw_api_request {
	const char *method;
	const char *path;
	const char *param;          /* the {name} segment of the route, "" when none */
	const char *body;           /* "" when none; NUL-terminated */
	size_t body_len;
	/* The query parameter called key, or NULL; borrowed for the call. */
	const char *(*query)(const struct cw_api_request *req, const char *key);
	void *conn;                 /* struct MHD_Connection, for query */
} cw_api_request_t;

/* What a handler answers; api.c turns it into an HTTP response. */
typedef struct cw_api_response {
	int status;
	const char *content_type;   /* static; NULL = application/json */
	cw_buf_t body;              /* owned */
	const char *static_body;    /* borrowed static bytes used instead of body when not NULL */
	size_t static_len;
	char allow[64];             /* 405: the Allow header */
} cw_api_response_t;

typedef struct cw_api_hub_pool {
	pthread_mutex_t mutex;
	cw_hub_t **idle;            /* guarded by mutex; at most cap */
	size_t nidle;
	size_t cap;
} cw_api_hub_pool_t;

/* Wakes long-polls: a thread LISTENs on the oplog channel and bumps generation. */
typedef struct cw_api_notifier {
	pthread_t thread;
	bool started;
	pthread_mutex_t mutex;
	pthread_cond_t cond;        /* broadcast when generation moves or on stop */
	uint64_t generation;        /* guarded by mutex */
	bool listening;             /* guarded by mutex: false while the hub is unreachable */
	bool stopping;              /* guarded by mutex */
	size_t waiting;             /* guarded by mutex: requests inside cw_api_notifier_wait */
} cw_api_notifier_t;

struct cw_api {
	cw_api_deps_t deps;
	void *daemon;               /* struct MHD_Daemon */
	uint16_t port;
	cw_api_hub_pool_t pool;
	cw_api_notifier_t notifier;
};

typedef void (*cw_api_handler_fn)(cw_api_t *api, const cw_api_request_t *req,
                                  cw_api_response_t *res);

typedef struct cw_api_route {
	const char *method;         /* "GET", "POST", "PUT", "DELETE" */
	const char *pattern;        /* as in openapi.yaml: "/v1/entities/{name}" */
	cw_api_handler_fn handler;
	const char *const *query;   /* the query parameters it accepts (NULL-terminated,
	                               static); NULL = none. Any other is 400. */
} cw_api_route_t;

/* The route table (static); *count receives its length. */
const cw_api_route_t *cw_api_routes(size_t *count);

/* Whether route accepts the query parameter key. */
bool cw_api_query_accepted(const cw_api_route_t *route, const char *key);

/*
 * Finds the route for method and path (the part before '?'). HEAD finds
 * the GET route (the server then sends its headers without the body). Returns the
 * route and copies the {name} segment into param (cap bytes, "" when the
 * route has none); NULL when none matches, with *path_known telling whether
 * some other method serves the path, and allow (cap 64) listing those
 * methods ("GET, DELETE").
 */
const cw_api_route_t *cw_api_route_match(const char *method, const char *path, char *param,
                                         size_t cap, bool *path_known, char allow[64]);

/* Handlers (api_entities.c, api_oplog.c, api_status.c, api_verify.c, api_dead_letters.c). */
void cw_api_entities_list(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res);
void cw_api_entities_create(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res);
void cw_api_entity_get(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res);
void cw_api_entity_delete(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res);
void cw_api_entity_refresh(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res);
void cw_api_entity_resume(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res);
void cw_api_oplog_get(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res);
void cw_api_consumers_list(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res);
void cw_api_consumer_put(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res);
void cw_api_consumer_delete(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res);
void cw_api_verify_start(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res);
void cw_api_verify_list(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res);
void cw_api_verify_get(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res);
void cw_api_verify_cancel(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res);
void cw_api_dead_letters_list(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res);
void cw_api_dead_letters_replay(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res);
void cw_api_dead_letter_get(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res);
void cw_api_dead_letter_delete(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res);
void cw_api_dead_letter_replay(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res);
void cw_api_healthz(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res);
void cw_api_readyz(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res);
void cw_api_status(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res);
void cw_api_metrics(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res);
void cw_api_openapi(cw_api_t *api, const cw_api_request_t *req, cw_api_response_t *res);

/* Responses (api.c). */

/* Sets an error response: {"error":{"code":code,"message":...}}; the message is masked. */
void cw_api_error(cw_api_response_t *res, int status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* The error response for a failed call: CW_EINVAL 400 (or invalid_status), CW_ENOTFOUND 404,
 * CW_ECONFLICT 409, CW_EDB/CW_EAUTH/CW_EIO/CW_ETIMEDOUT/CW_ECLOSED 503, anything else 500. */
void cw_api_error_from(cw_api_response_t *res, const cw_err_t *err, int invalid_status);
/* The stable code string of an HTTP error status ("not_found"). */
const char *cw_api_status_code(int status);

/* Hub pool (api_hub.c). */
void cw_api_pool_init(cw_api_hub_pool_t *pool, size_t cap);
void cw_api_pool_destroy(cw_api_hub_pool_t *pool);
/* An idle connection or a new one (owned until released), or NULL with err (CW_EDB). */
cw_hub_t *cw_api_hub_acquire(cw_api_t *api, cw_err_t *err);
/* cw_api_hub_acquire for a handler: NULL with a 503 response when the hub is unreachable. */
cw_hub_t *cw_api_hub_for(cw_api_t *api, cw_api_response_t *res);
/* Returns hub to the pool, or closes it when broken or the pool is full. NULL is a no-op. */
void cw_api_hub_release(cw_api_t *api, cw_hub_t *hub);

/* Long-poll notifier (api_hub.c). */
int cw_api_notifier_start(cw_api_t *api, cw_err_t *err);
void cw_api_notifier_stop(cw_api_t *api);
/* The current generation; a later wait returns once it moved. */
uint64_t cw_api_notifier_generation(cw_api_t *api);
/*
 * Waits until the generation differs from seen, the API stops, or timeout_ms
 * passes. While the notifier cannot LISTEN it returns after at most
 * CW_API_POLL_FALLBACK_MS so the caller polls. Returns true when the caller
 * should stop waiting (stopping).
 */
bool cw_api_notifier_wait(cw_api_t *api, uint64_t seen, int64_t timeout_ms);
#define CW_API_POLL_FALLBACK_MS 500
/* How many requests wait for the notifier now, and whether it LISTENs (for tests). */
void cw_api_notifier_state(cw_api_t *api, size_t *waiting, bool *listening);

/* Pure parsers (api_parse.c). */

typedef struct cw_api_oplog_query {
	char **entities;            /* owned; validated names, no duplicates */
	size_t nentities;           /* 0 = every entity */
	int64_t after;              /* >= 0 */
	size_t limit;               /* 1 .. CW_API_OPLOG_MAX_LIMIT */
	int64_t wait_ms;            /* 0 .. CW_API_OPLOG_MAX_WAIT_S * 1000 */
} cw_api_oplog_query_t;

/*
 * Parses the query parameters of GET /v1/oplog (each borrowed, NULL when
 * absent): entities "a,b", after (default 0), limit (default
 * CW_API_OPLOG_DEFAULT_LIMIT, capped), wait in seconds (default 0, may be a
 * fraction, capped). 0, or CW_EINVAL with a message naming the parameter
 * (out is then cleared).
 */
int cw_api_parse_oplog_query(const char *entities, const char *after, const char *limit,
                             const char *wait, cw_api_oplog_query_t *out, cw_err_t *err);
void cw_api_oplog_query_clear(cw_api_oplog_query_t *query);

/*
 * Parses a POST /v1/entities body (len bytes, borrowed) into out (overwritten;
 * cw_entity_clear it on success and failure): {"name", "source",
 * "collection" | "table", "columns": [{"name","type","path"}] | "auto"},
 * status pending, version 1; "auto", [] and no "columns" all mean every
 * table column / the whole document, as columns: auto in the file. Only checks the JSON's form (CW_EINVAL: not JSON, not
 * an object, a member of the wrong type, an unknown member); the entity's
 * validity is cw_entity_manager_check's.
 */
int cw_api_parse_entity(const char *body, size_t len, cw_entity_t *out, cw_err_t *err);

/*
 * Parses a PUT /v1/consumers/{name} body: empty or {} (register) or
 * {"position": N} with N >= 0 (heartbeat). 0 or CW_EINVAL.
 */
int cw_api_parse_consumer(const char *body, size_t len, bool *has_position, int64_t *position,
                          cw_err_t *err);

/*
 * Parses the body of POST /v1/deadletters/replay: {"target"} or {"target",
 * "entity"} (valid identifiers) or {"all": true}; an empty body, nothing
 * named, or "all" beside a name is refused, so no request replays every
 * letter by omission. *target and *entity (NULL when absent) are owned by
 * the caller on success. 0 or CW_EINVAL.
 */
int cw_api_parse_dead_letter_replay(const char *body, size_t len, char **target, char **entity,
                                    bool *all, cw_err_t *err);

/* Checks a consumer name: 1..CW_API_CONSUMER_NAME_MAX of [A-Za-z0-9_.:-]. 0 or CW_EINVAL. */
int cw_api_consumer_name_validate(const char *name, cw_err_t *err);

/*
 * Parses the body of POST /v1/verify, {"entity", "target", "repair"}: both
 * names required and valid identifiers, repair a boolean (default false).
 * *entity and *target are owned by the caller on success. 0 or CW_EINVAL.
 */
int cw_api_parse_verify(const char *body, size_t len, char **entity, char **target, bool *repair,
                        cw_err_t *err);

/*
 * Whether an Authorization header value (may be NULL) is "Bearer <token>".
 * Compares in time independent of where the strings differ.
 */
bool cw_api_bearer_ok(const char *header, const char *token);

/*
 * Parses "host:port" or "[v6]:port" into host (cap bytes) and port.
 * 0 or CW_EINVAL.
 */
int cw_api_parse_listen(const char *listen, char *host, size_t cap, uint16_t *port,
                        cw_err_t *err);

/* The embedded openapi.yaml (generated at build time). */
extern const unsigned char cw_api_openapi_yaml[];
extern const size_t cw_api_openapi_yaml_len;

/* The configuration in force (cw_api_deps_t.config_now, else deps.config) into out. */
void cw_api_config_now(cw_api_t *api, cw_api_config_info_t *out);

#endif
