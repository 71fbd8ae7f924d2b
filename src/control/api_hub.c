/*
 * This file contains the REST API's hub connections (api_internal.h): a pool
 * of idle connections for request handlers, and the notifier thread that
 * LISTENs on the oplog channel and wakes long-polling requests.
 */
#include "control/api_internal.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "hub/oplog_reader.h"

#include <stdlib.h>
#include <string.h>

#define COMPONENT "api"

/* How long the notifier waits per round, so it notices a stop request. */
#define NOTIFIER_ROUND_MS 200
/* Pause before the notifier reconnects to an unreachable hub. */
#define NOTIFIER_RETRY_MS 1000

void cw_api_pool_init(cw_api_hub_pool_t *pool, size_t cap)
{
	pthread_mutex_init(&pool->mutex, NULL);
	pool->cap = cap > 0 ? cap : 1;
	pool->idle = cw_xcalloc(pool->cap, sizeof *pool->idle);
	pool->nidle = 0;
}

void cw_api_pool_destroy(cw_api_hub_pool_t *pool)
{
	for (size_t i = 0; i < pool->nidle; i++)
		cw_hub_close(pool->idle[i]);
	free(pool->idle);
	pool->idle = NULL;
	pool->nidle = 0;
	pthread_mutex_destroy(&pool->mutex);
}

cw_hub_t *cw_api_hub_acquire(cw_api_t *api, cw_err_t *err)
{
	cw_api_hub_pool_t *pool = &api->pool;
	cw_hub_t *hub = NULL;
	pthread_mutex_lock(&pool->mutex);
	if (pool->nidle > 0)
		hub = pool->idle[--pool->nidle];
	pthread_mutex_unlock(&pool->mutex);
	if (hub != NULL && PQstatus(cw_hub_pgconn(hub)) != CONNECTION_OK) {
		cw_hub_close(hub);
		hub = NULL;
	}
	if (hub == NULL)
		hub = cw_hub_connect_auth(api->deps.config->hub.url, api->deps.config->hub.auth, err);
	return hub;
}

void cw_api_hub_release(cw_api_t *api, cw_hub_t *hub)
{
	if (hub == NULL)
		return;
	cw_api_hub_pool_t *pool = &api->pool;
	PGconn *conn = cw_hub_pgconn(hub);
	bool reusable = PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) == PQTRANS_IDLE;
	pthread_mutex_lock(&pool->mutex);
	if (reusable && pool->nidle < pool->cap) {
		pool->idle[pool->nidle++] = hub;
		hub = NULL;
	}
	pthread_mutex_unlock(&pool->mutex);
	cw_hub_close(hub);
}

cw_hub_t *cw_api_hub_for(cw_api_t *api, cw_api_response_t *res)
{
	cw_err_t err = {0};
	cw_hub_t *hub = cw_api_hub_acquire(api, &err);
	if (hub == NULL)
		cw_api_error(res, 503, NULL, "%s", err.message);
	return hub;
}

static bool notifier_stopping(cw_api_notifier_t *n)
{
	pthread_mutex_lock(&n->mutex);
	bool stopping = n->stopping;
	pthread_mutex_unlock(&n->mutex);
	return stopping;
}

static void notifier_set(cw_api_notifier_t *n, bool listening, bool bump)
{
	pthread_mutex_lock(&n->mutex);
	n->listening = listening;
	if (bump)
		n->generation++;
	pthread_cond_broadcast(&n->cond);
	pthread_mutex_unlock(&n->mutex);
}

/* Sleeps up to ms unless the API stops first. */
static void notifier_pause(cw_api_notifier_t *n, int64_t ms)
{
	struct timespec deadline;
	cw_time_deadline(ms, &deadline);
	pthread_mutex_lock(&n->mutex);
	while (!n->stopping && pthread_cond_timedwait(&n->cond, &n->mutex, &deadline) == 0)
		;
	pthread_mutex_unlock(&n->mutex);
}

/*
 * Listens until the connection fails or the API stops. Every wake-up bumps
 * the generation, also the first one after (re)connecting: rows committed
 * while nobody listened must not be waited for.
 */
static void listen_until_failure(cw_api_t *api, cw_hub_t *hub)
{
	cw_api_notifier_t *n = &api->notifier;
	cw_err_t err = {0};
	cw_oplog_reader_t *reader = cw_oplog_reader_new(hub, NULL, 0, &err);
	if (reader == NULL) {
		cw_log_kv(CW_LOG_WARN, COMPONENT, "long-poll notifier cannot listen", "error",
		          err.message, NULL);
		return;
	}
	notifier_set(n, true, true);
	while (!notifier_stopping(n)) {
		int rc = cw_oplog_wait(reader, NOTIFIER_ROUND_MS, &err);
		if (rc < 0) {
			cw_log_kv(CW_LOG_WARN, COMPONENT, "long-poll notifier lost the hub", "error",
			          err.message, NULL);
			break;
		}
		if (rc == 1)
			notifier_set(n, true, true);
	}
	notifier_set(n, false, false);
	cw_oplog_reader_free(reader);
}

static void *notifier_main(void *arg)
{
	cw_api_t *api = arg;
	cw_api_notifier_t *n = &api->notifier;
	while (!notifier_stopping(n)) {
		cw_err_t err = {0};
		cw_hub_t *hub = cw_hub_connect_auth(api->deps.config->hub.url, api->deps.config->hub.auth, &err);
		if (hub != NULL) {
			listen_until_failure(api, hub);
			cw_hub_close(hub);
		}
		if (!notifier_stopping(n))
			notifier_pause(n, NOTIFIER_RETRY_MS);
	}
	return NULL;
}

int cw_api_notifier_start(cw_api_t *api, cw_err_t *err)
{
	cw_api_notifier_t *n = &api->notifier;
	pthread_mutex_init(&n->mutex, NULL);
	cw_time_cond_init_monotonic(&n->cond);
	n->generation = 0;
	n->listening = false;
	n->stopping = false;
	if (pthread_create(&n->thread, NULL, notifier_main, api) != 0)
		return cw_err_set(err, CW_EINTERNAL, COMPONENT, "could not start the notifier thread");
	n->started = true;
	return 0;
}

void cw_api_notifier_stop(cw_api_t *api)
{
	cw_api_notifier_t *n = &api->notifier;
	pthread_mutex_lock(&n->mutex);
	n->stopping = true;
	pthread_cond_broadcast(&n->cond);
	pthread_mutex_unlock(&n->mutex);
	if (n->started)
		pthread_join(n->thread, NULL);
	n->started = false;
}

uint64_t cw_api_notifier_generation(cw_api_t *api)
{
	cw_api_notifier_t *n = &api->notifier;
	pthread_mutex_lock(&n->mutex);
	uint64_t generation = n->generation;
	pthread_mutex_unlock(&n->mutex);
	return generation;
}

bool cw_api_notifier_wait(cw_api_t *api, uint64_t seen, int64_t timeout_ms)
{
	cw_api_notifier_t *n = &api->notifier;
	pthread_mutex_lock(&n->mutex);
	if (!n->listening && timeout_ms > CW_API_POLL_FALLBACK_MS)
		timeout_ms = CW_API_POLL_FALLBACK_MS;
	struct timespec deadline;
	cw_time_deadline(timeout_ms > 0 ? timeout_ms : 0, &deadline);
	n->waiting++;
	while (!n->stopping && n->generation == seen &&
	       pthread_cond_timedwait(&n->cond, &n->mutex, &deadline) == 0)
		;
	n->waiting--;
	bool stopping = n->stopping;
	pthread_mutex_unlock(&n->mutex);
	return stopping;
}

void cw_api_notifier_state(cw_api_t *api, size_t *waiting, bool *listening)
{
	cw_api_notifier_t *n = &api->notifier;
	pthread_mutex_lock(&n->mutex);
	*waiting = n->waiting;
	*listening = n->listening;
	pthread_mutex_unlock(&n->mutex);
}
