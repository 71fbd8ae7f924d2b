/*
 * This file contains the REST API (DESIGN.md §5, docs/api.md): an HTTP
 * server (libmicrohttpd, one thread per connection up to a fixed connection
 * limit) serving the /v1 entity, oplog, consumer, verify and dead-letter
 * routes, /v1/status, /healthz, /readyz, /metrics and /openapi.yaml. openapi.yaml at the
 * repository root describes every route; unit.api_spec keeps the two equal.
 *
 * The API opens its own hub connections from config->hub.url: a small pool
 * (at most hub.pool_size idle connections kept) for request handlers, and
 * one connection that LISTENs on the oplog channel and wakes long-polling
 * GET /v1/oplog requests when the hub's writer notifies.
 *
 * THREAD SAFETY: cw_api_start and cw_api_stop are called from one thread
 * (the daemon's). The components callback and the metrics and jobs
 * registries are used from the server's connection threads, concurrently.
 */
#ifndef CW_CONTROL_API_H
#define CW_CONTROL_API_H

#include "control/jobs.h"
#include "core/component.h"
#include "core/config.h"
#include "core/err.h"
#include "core/metrics.h"

#include <stddef.h>
#include <stdint.h>

/* One source or target as the daemon runs it, for /v1/status and /readyz. */
typedef struct cw_api_component {
	char name[64];                  /* the configured source or target name */
	char kind[16];                  /* "source" or "target" */
	cw_component_status_t status;
} cw_api_component_t;

/*
 * Fills out with up to cap components and returns how many there are in
 * all (which may be more than cap: the API then asks again with room for
 * all). Called from any connection thread, concurrently: it must be thread
 * safe, and must not block for long.
 */
typedef size_t (*cw_api_components_fn)(void *arg, cw_api_component_t *out, size_t cap);

/* The configuration in force: a reload (control/reload.h) replaces it while the API runs. */
typedef struct cw_api_config_info {
	const cw_config_t *config;      /* borrowed; lives until the API stops */
	int64_t loaded_at_us;           /* wall clock: when it was loaded; 0 = unknown */
	const char *last_reload;        /* "applied", "refused", "invalid"; NULL = none yet; static */
	int64_t last_reload_at_us;      /* wall clock; 0 = none yet */
} cw_api_config_info_t;

/* Fills out; called from any connection thread, concurrently: thread safe, never blocking long. */
typedef void (*cw_api_config_fn)(void *arg, cw_api_config_info_t *out);

/* What the API needs from the daemon; every pointer is borrowed and must outlive cw_api_stop. */
typedef struct cw_api_deps {
	/* The configuration at start: api.listen, api.token, api.max_body_bytes, hub.url and
	 * hub.pool_size (keys a reload refuses to change); the rest is read through config_now. */
	const cw_config_t *config;
	cw_metrics_t *metrics;          /* rendered by GET /metrics; never NULL */
	cw_jobs_t *jobs;                /* may be NULL: no jobs in /v1/status */
	cw_api_components_fn components; /* may be NULL: no components (readyz checks the hub only) */
	void *components_arg;
	struct cw_verify_service *verify; /* may be NULL: POST /v1/verify answers 503 */
	cw_api_config_fn config_now;    /* may be NULL: config is the one in force */
	void *config_now_arg;
} cw_api_deps_t;

typedef struct cw_api cw_api_t;

/*
 * Binds api.listen and starts serving. The hub need not be reachable: the
 * routes that need it answer 503 until it is. Returns the server (owned by
 * the caller, cw_api_stop) or NULL with err filled: CW_EINVAL for a bad
 * listen address, CW_EIO when the address cannot be bound. Logs nothing:
 * the caller says that it listens (cw_api_port gives the bound port).
 */
cw_api_t *cw_api_start(const cw_api_deps_t *deps, cw_err_t *err);

/* The TCP port the server listens on (useful with port 0). */
uint16_t cw_api_port(const cw_api_t *api);

/*
 * Wakes every long-polling request, stops the server (waiting for the
 * connection threads), closes the hub connections and frees everything.
 * NULL is a no-op.
 */
void cw_api_stop(cw_api_t *api);

#endif
