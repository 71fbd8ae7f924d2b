/* This file contains the re-check's wait of a verify run (verify_internal.h). */
#include "verify/verify_internal.h"

#include "core/failpoint.h"
#include "core/log.h"
#include "core/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DOMAIN VJ_DOMAIN
#define DEFAULT_SETTLE_MS 60000
#define SETTLE_POLL_MS 100
/* A MongoDB source's re-check waits this long past capture.flush_interval. */
#define MONGO_GRACE_MS 2000

/*
 * The MongoDB stream that carries the entity's collection (its own, else the
 * source's) stored a resume token whose cluster time is at least position.
 * *reached.
 */
static int mongo_reached(pair_run_t *run, const char *position, bool *reached, cw_err_t *err)
{
	const char *collection = run->entity.collection != NULL ? run->entity.collection
	                                                        : run->entity.name;
	char *key = cw_xasprintf("mongo_resume_token:%s", run->source->name);
	char *own = cw_xasprintf("%s:%s", key, collection);
	const char *params[] = {key, own};
	PGresult *res = cw_hub_exec(run->hub,
		"SELECT value->'token'->>'_data' FROM cachewarp.metadata WHERE key IN ($1, $2) "
		"ORDER BY length(key) DESC LIMIT 1", 2, params,
		"could not read the source's checkpoint", err);
	free(key);
	free(own);
	if (res == NULL)
		return CW_EDB;
	char time[17];
	*reached = PQntuples(res) == 1 && !PQgetisnull(res, 0, 0) &&
	           cw_verify_token_time(PQgetvalue(res, 0, 0), time) && strcmp(time, position) >= 0;
	PQclear(res);
	return 0;
}

/*
 * The source's checkpoint in the hub covers position: a PostgreSQL source's
 * stored LSN, a MariaDB source's stored GTID position, a MongoDB source's
 * resume tokens. *reached.
 */
static int capture_reached(pair_run_t *run, const char *position, bool *reached, cw_err_t *err)
{
	if (run->source->type == CW_SOURCE_MONGODB)
		return mongo_reached(run, position, reached, err);
	bool mysql = run->source->type == CW_SOURCE_MYSQL;
	char *key = cw_xasprintf(mysql ? "mysql_gtid:%s" : "pg_lsn:%s", run->source->name);
	const char *params[] = {key, position};
	PGresult *res = mysql ?
		cw_hub_exec(run->hub, "SELECT value->>'gtid' FROM cachewarp.metadata WHERE key = $1",
		            1, params, "could not read the source's checkpoint", err) :
		cw_hub_exec(run->hub, "SELECT (value->>'lsn')::pg_lsn >= $2::pg_lsn "
		            "FROM cachewarp.metadata WHERE key = $1",
		            2, params, "could not read the source's checkpoint", err);
	free(key);
	if (res == NULL)
		return CW_EDB;
	if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0))
		*reached = false;
	else if (mysql)
		*reached = cw_verify_gtid_covers(PQgetvalue(res, 0, 0), position);
	else
		*reached = PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	return 0;
}

static int entity_head(pair_run_t *run, int64_t *head, cw_err_t *err)
{
	const char *params[] = {run->entity.name};
	PGresult *res = cw_hub_exec(run->hub,
		"SELECT coalesce(max(id), 0) FROM cachewarp.oplog WHERE entity = $1", 1, params,
		"could not read the entity's newest oplog id", err);
	if (res == NULL)
		return CW_EDB;
	*head = cw_hub_int64(res, 0, 0);
	PQclear(res);
	return 0;
}

int vj_settle(void *arg, cw_cancel_t *cancel, cw_err_t *err)
{
	pair_run_t *run = arg;
	int64_t timeout = run->opts->settle_timeout_ms > 0 ? run->opts->settle_timeout_ms
	                                                   : DEFAULT_SETTLE_MS;
	/* A test holds a run open here (CW_FAILPOINTS="verify_settle=sleep5000"). */
	(void)CW_FAILPOINT("verify_settle");
	int64_t deadline = vj_now_ms() + timeout;
	char *position = NULL;
	int rc = cw_verify_source_position(run->src, &position, err);
	bool reached = false;
	if (rc == CW_ENOTFOUND) {
		/*
		 * A MongoDB server that gives no cluster time (MongoDB without a
		 * replica set, the test server): give capture the time it takes
		 * to pass on a change, then wait for the target.
		 */
		rc = 0;
		reached = true;
		if (cw_cancel_wait_ms(cancel, run->config->capture.flush_interval_ms + MONGO_GRACE_MS) != 0)
			return cw_err_set(err, CW_ECANCELED, DOMAIN, "verify was canceled");
	}
	while (rc == 0 && !reached) {
		if ((rc = capture_reached(run, position, &reached, err)) != 0 || reached)
			break;
		if (vj_now_ms() >= deadline)
			break;
		if (cw_cancel_wait_ms(cancel, SETTLE_POLL_MS) != 0) {
			free(position);
			return cw_err_set(err, CW_ECANCELED, DOMAIN, "verify was canceled");
		}
	}
	free(position);
	int64_t head = 0, applied = 0;
	if (rc == 0)
		rc = entity_head(run, &head, err);
	while (rc == 0) {
		if ((rc = cw_verify_target_applied(run->tgt, &applied, err)) != 0 || applied >= head)
			break;
		if (vj_now_ms() >= deadline)
			break;
		if (cw_cancel_wait_ms(cancel, SETTLE_POLL_MS) != 0)
			return cw_err_set(err, CW_ECANCELED, DOMAIN, "verify was canceled");
	}
	if (rc == 0 && (!reached || applied < head)) {
		if (!run->target_behind)
			cw_log_warn(DOMAIN, "entity \"%s\" target \"%s\": %s did not catch up within "
			            "%lld ms; differences found are counted although the stream may "
			            "still carry them", run->pair->entity, run->pair->target,
			            reached ? "the target" : "capture", (long long)timeout);
		run->target_behind = true;
	}
	run->watermark = head;
	return rc;
}

