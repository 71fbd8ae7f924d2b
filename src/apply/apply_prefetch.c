/*
 * This file contains the apply loop's prefetch (apply_loop_internal.h): the
 * next page of the main read, fetched on a hub connection of its own while
 * the loop applies the current one.
 */
#include "apply/apply_loop_internal.h"

#include "core/clock.h"
#include "hub/hub.h"

#include <stdlib.h>

/* ---- the prefetch ----------------------------------------------------------- */

static void *prefetch_main(void *arg)
{
	prefetch_t *p = arg;
	cw_hub_t *hub = NULL;
	cw_oplog_round_t round = CW_OPLOG_ROUND_INIT;   /* pages of every entity */
	pthread_mutex_lock(&p->mutex);
	for (;;) {
		while (!p->stop && (!p->requested || p->done))
			pthread_cond_wait(&p->cond, &p->mutex);
		if (p->stop)
			break;
		int64_t after = p->after;
		pthread_mutex_unlock(&p->mutex);
		cw_change_batch_t page = CW_CHANGE_BATCH_INIT;
		cw_err_t err = {0};
		int rc = 0;
		if (hub == NULL && (hub = cw_hub_connect_auth(p->hub_url, p->hub_auth, &err)) == NULL)
			rc = CW_EDB;
		double started_s = cw_time_monotonic_s();
		if (rc == 0 && p->nentities == 0)
			rc = cw_oplog_fetch_round(hub, &round, after, p->limit, &page, &err);
		else if (rc == 0)
			rc = cw_oplog_fetch(hub, p->entities, p->nentities, after, p->limit, &page, &err);
		if (p->metrics != NULL)
			cw_metrics_counter_add(p->metrics, APL_READ_SECONDS_METRIC, p->labels,
			                       cw_time_monotonic_s() - started_s);
		if (rc != 0) {   /* the main read tries itself; a new connection next time */
			cw_hub_close(hub);
			hub = NULL;
			cw_oplog_round_clear(&round);
		}
		pthread_mutex_lock(&p->mutex);
		cw_change_batch_free(&p->batch);
		p->batch = page;
		p->rc = rc;
		p->done = true;
		pthread_cond_broadcast(&p->cond);
	}
	pthread_mutex_unlock(&p->mutex);
	cw_oplog_round_clear(&round);
	cw_hub_close(hub);
	return NULL;
}
void apl_prefetch_start(cw_apply_loop_t *loop)
{
	prefetch_t *p = &loop->prefetch;
	p->hub_url = loop->hub_url;
	p->hub_auth = loop->hub_auth;
	p->entities = (const char *const *)loop->entities;
	p->nentities = loop->nentities;
	p->limit = loop->batch_size;
	p->metrics = loop->metrics;
	p->labels = loop->labels;
	p->requested = p->done = p->stop = false;
	p->started = pthread_create(&p->thread, NULL, prefetch_main, p) == 0;
}
/* Asks for the page after `after` (a no-op when the thread could not start). */
void apl_prefetch_request(cw_apply_loop_t *loop, int64_t after)
{
	prefetch_t *p = &loop->prefetch;
	if (!p->started)
		return;
	pthread_mutex_lock(&p->mutex);
	p->after = after;
	p->requested = true;
	p->done = false;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->mutex);
}
/*
 * The page asked for, when it is the one after position and was read: moved
 * into out (empty). Waits for a fetch under way. APL_PREFETCH_NONE: read it
 * yourself; APL_PREFETCH_EMPTY: it was read and nothing followed position.
 */
apl_prefetch_t apl_prefetch_take(cw_apply_loop_t *loop, int64_t position, cw_change_batch_t *out)
{
	prefetch_t *p = &loop->prefetch;
	if (!p->started)
		return APL_PREFETCH_NONE;
	pthread_mutex_lock(&p->mutex);
	apl_prefetch_t got = APL_PREFETCH_NONE;
	if (p->requested) {
		while (!p->done)
			pthread_cond_wait(&p->cond, &p->mutex);
		if (p->rc == 0 && p->after == position) {
			got = p->batch.len > 0 ? APL_PREFETCH_PAGE : APL_PREFETCH_EMPTY;
			cw_change_batch_free(out);
			*out = p->batch;
			p->batch = (cw_change_batch_t)CW_CHANGE_BATCH_INIT;
		}
		p->requested = false;
	}
	pthread_mutex_unlock(&p->mutex);
	return got;
}
void apl_prefetch_stop(cw_apply_loop_t *loop)
{
	prefetch_t *p = &loop->prefetch;
	if (!p->started)
		return;
	pthread_mutex_lock(&p->mutex);
	p->stop = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->mutex);
	pthread_join(p->thread, NULL);
	p->started = false;
	cw_change_batch_free(&p->batch);
}
