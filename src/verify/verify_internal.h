/*
 * This file contains what the parts of a verify run share (verify.c runs a
 * pair, settle.c waits for capture and the target): the job of one pair.
 */
#ifndef CW_VERIFY_INTERNAL_H
#define CW_VERIFY_INTERNAL_H

#include "core/buf.h"
#include "core/cancel.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/entity.h"
#include "core/err.h"
#include "hub/hub.h"
#include "verify/sides.h"
#include "verify/verify.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define VJ_DOMAIN "verify"

/* One entity and target being compared. */
struct cw_verify_job {
	const cw_config_t *config;
	const cw_verify_opts_t *opts;
	cw_hub_t *hub;              /* the job's own connection: it holds the pair's lock */
	cw_entity_t entity;         /* as the hub holds it (status, generation) */
	const cw_source_config_t *source;
	const cw_target_config_t *target;
	cw_verify_endpoint_t *src;
	cw_verify_endpoint_t *tgt;
	cw_verify_pair_t *pair;
	int64_t run_id;
	bool locked;
	int64_t watermark;          /* the entity's newest oplog id the target was waited for */
	bool target_behind;         /* a settle wait ran out of time */
	int64_t started_ms;
	int64_t next_progress_ms;
	cw_buf_t sample;            /* JSON array items, comma-separated */
	size_t sampled;
	pthread_mutex_t mutex;      /* guards the progress fields below */
	char step[32];
	uint64_t rows;
	uint64_t expected;
};
typedef struct cw_verify_job pair_run_t;

static inline int64_t vj_now_ms(void)
{
	return cw_clock_now_ms(cw_clock_system());
}

/*
 * The re-check's wait (cw_verify_compare_opts_t.settle, arg a job): capture
 * has passed the source's position of now, and the target has applied every
 * change of the entity the hub has then; the entity's newest oplog id goes
 * to the job's watermark. 0, CW_ECANCELED or a read's error.
 */
int vj_settle(void *arg, cw_cancel_t *cancel, cw_err_t *err);

#endif
