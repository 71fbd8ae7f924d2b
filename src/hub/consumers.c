/* This file contains the consumer registry and oplog retention declared in consumers.h. */
#include "hub/consumers.h"

#include "core/mem.h"
#include "hub/oplog_reader.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Lag of the consumer row c, as SQL expressions over c.position: the last id
 * of every entity, and the age of the first change after c.position (the
 * first of each entity's, by id).
 */
#define LAG_IDS_SQL "greatest((" CW_OPLOG_LAST_ID_SQL ") - c.position, 0)"
#define LAG_SECONDS_SQL \
	"coalesce(extract(epoch FROM now() - (" CW_OPLOG_ENTITIES_SQL \
	"SELECT f.created_at FROM oplog_entities n CROSS JOIN LATERAL (" \
	"SELECT o.id, o.created_at FROM cachewarp.oplog o WHERE o.entity = n.entity " \
	"AND o.id > c.position ORDER BY o.id LIMIT 1) AS f " \
	"WHERE n.entity IS NOT NULL ORDER BY f.id LIMIT 1))::float8, 0)"

static int check_name(const char *name, const char *what, cw_err_t *err)
{
	if (name == NULL || name[0] == '\0')
		return cw_err_set(err, CW_EINVAL, "hub", "%s: consumer name is empty", what);
	return 0;
}

int cw_consumer_register(cw_hub_t *hub, const char *name, int64_t *position, cw_err_t *err)
{
	char what[160];
	snprintf(what, sizeof what, "could not register consumer \"%s\"", name ? name : "");
	if (check_name(name, what, err) != 0)
		return CW_EINVAL;
	const char *params[] = {name};
	PGresult *res = cw_hub_exec(hub,
		"INSERT INTO cachewarp.consumers (name) VALUES ($1) "
		"ON CONFLICT (name) DO UPDATE SET last_seen = now() RETURNING position",
		1, params, what, err);
	if (res == NULL)
		return CW_EDB;
	if (position != NULL)
		*position = cw_hub_int64(res, 0, 0);
	PQclear(res);
	return 0;
}

int cw_consumer_heartbeat(cw_hub_t *hub, const char *name, int64_t position, cw_err_t *err)
{
	char what[160], position_text[24];
	snprintf(what, sizeof what, "could not store the position of consumer \"%s\"",
	         name ? name : "");
	if (check_name(name, what, err) != 0)
		return CW_EINVAL;
	snprintf(position_text, sizeof position_text, "%lld", (long long)position);
	const char *params[] = {name, position_text};
	int rc = cw_hub_command(hub,
		"INSERT INTO cachewarp.consumers (name, position) VALUES ($1, $2::int8) "
		"ON CONFLICT (name) DO UPDATE SET position = excluded.position, last_seen = now()",
		2, params, what, err);
	if (rc != 0)
		return rc;
	return cw_hub_command(hub,
		"UPDATE cachewarp.consumers c SET lag_ids = " LAG_IDS_SQL ", "
		"lag_seconds = " LAG_SECONDS_SQL " WHERE c.name = $1", 1, params, what, err);
}

void cw_consumer_list_free(cw_consumer_t *consumers, size_t count)
{
	if (consumers == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		free(consumers[i].name);
	free(consumers);
}

int cw_consumer_list(cw_hub_t *hub, cw_consumer_t **consumers, size_t *count, cw_err_t *err)
{
	*consumers = NULL;
	*count = 0;
	PGresult *res = cw_hub_exec(hub,
		"SELECT c.name, c.position, (extract(epoch FROM c.last_seen) * 1000000)::bigint, "
		LAG_IDS_SQL ", " LAG_SECONDS_SQL " FROM cachewarp.consumers c ORDER BY c.name",
		0, NULL, "could not list consumers", err);
	if (res == NULL)
		return CW_EDB;
	size_t n = (size_t)PQntuples(res);
	cw_consumer_t *list = n ? cw_xcalloc(n, sizeof *list) : NULL;
	for (size_t i = 0; i < n; i++) {
		list[i].name = cw_hub_strdup(res, (int)i, 0);
		list[i].position = cw_hub_int64(res, (int)i, 1);
		list[i].last_seen_us = cw_hub_int64(res, (int)i, 2);
		list[i].lag_ids = cw_hub_int64(res, (int)i, 3);
		list[i].lag_seconds = strtod(PQgetvalue(res, (int)i, 4), NULL);
	}
	PQclear(res);
	*consumers = list;
	*count = n;
	return 0;
}

int cw_consumer_remove(cw_hub_t *hub, const char *name, cw_err_t *err)
{
	char what[160];
	snprintf(what, sizeof what, "could not remove consumer \"%s\"", name);
	const char *params[] = {name};
	PGresult *res = cw_hub_exec(hub, "DELETE FROM cachewarp.consumers WHERE name = $1",
	                            1, params, what, err);
	if (res == NULL)
		return CW_EDB;
	int rc = 0;
	if (strcmp(PQcmdTuples(res), "0") == 0)
		rc = cw_err_set(err, CW_ENOTFOUND, "hub", "consumer \"%s\" not found", name);
	PQclear(res);
	return rc;
}

int cw_oplog_retention_run(cw_hub_t *hub, int64_t max_age_s, int64_t liveness_s,
                           int64_t *deleted, cw_err_t *err)
{
	const char *what = "could not apply oplog retention";
	char age_text[24], liveness_text[24];
	snprintf(age_text, sizeof age_text, "%lld", (long long)max_age_s);
	snprintf(liveness_text, sizeof liveness_text, "%lld", (long long)liveness_s);
	if (deleted != NULL)
		*deleted = 0;
	/*
	 * The slowest live consumer's position first, as a value: with it as a
	 * subquery the DELETE was planned as a scan of the whole oplog.
	 */
	const char *live_params[] = {liveness_text};
	PGresult *res = cw_hub_exec(hub, "SELECT min(position) FROM cachewarp.consumers "
	                            "WHERE last_seen >= now() - make_interval(secs => $1::float8)",
	                            1, live_params, what, err);
	if (res == NULL)
		return CW_EDB;
	bool none_live = PQgetisnull(res, 0, 0);
	int64_t below = none_live ? 0 : cw_hub_int64(res, 0, 0);
	PQclear(res);
	if (none_live)
		return 0;   /* no live consumer: nothing may go */
	/*
	 * The newest append mark older than max_age: every row up to its id was
	 * appended before it (docs/hub.md, "Consumers, lag and retention"). The
	 * marks older than it go in the same statement: none of them is ever the
	 * newest old one again.
	 */
	const char *age_params[] = {age_text};
	res = cw_hub_exec(hub, "WITH cutoff AS (SELECT id, at FROM cachewarp.oplog_marks "
	                  "WHERE at < now() - make_interval(secs => $1::float8) "
	                  "ORDER BY at DESC LIMIT 1), "
	                  "pruned AS (DELETE FROM cachewarp.oplog_marks "
	                  "WHERE at < (SELECT at FROM cutoff)) "
	                  "SELECT id FROM cutoff", 1, age_params, what, err);
	if (res == NULL)
		return CW_EDB;
	bool none_old = PQntuples(res) == 0;
	int64_t upto = none_old ? 0 : cw_hub_int64(res, 0, 0);
	PQclear(res);
	if (none_old)
		return 0;
	if (upto > below - 1)
		upto = below - 1;
	char upto_text[24];
	snprintf(upto_text, sizeof upto_text, "%lld", (long long)upto);
	/* One range of the (entity, id) index per entity: the rows it deletes, no other. */
	const char *params[] = {upto_text};
	res = cw_hub_exec_without_seqscan(hub,
		"DELETE FROM cachewarp.oplog WHERE entity = ANY((" CW_OPLOG_ENTITIES_SQL
		"SELECT array_agg(entity) FROM oplog_entities WHERE entity IS NOT NULL)::text[]) "
		"AND id <= $1::int8", 1, params, what, err);
	if (res == NULL)
		return CW_EDB;
	if (deleted != NULL)
		*deleted = strtoll(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	return 0;
}
