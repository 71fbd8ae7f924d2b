/* This file contains the hub's entity store declared in entity_store.h. */
#include "hub/entity_store.h"

#include "core/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENTITY_COLUMNS "SELECT name, source, collection, tbl, columns::text, status, version, " \
	"origin, paused_reason, (extract(epoch FROM paused_at) * 1000000)::int8 " \
	"FROM cachewarp.entities "

/* Turns one row of ENTITY_COLUMNS into *entity (zeroed first). */
static int row_to_entity(const PGresult *res, int row, cw_entity_t *entity, cw_err_t *err)
{
	memset(entity, 0, sizeof *entity);
	entity->name = cw_hub_strdup(res, row, 0);
	entity->source = cw_hub_strdup(res, row, 1);
	entity->collection = cw_hub_strdup(res, row, 2);
	entity->table = cw_hub_strdup(res, row, 3);
	entity->version = cw_hub_int64(res, row, 6);
	entity->origin = cw_entity_origin_parse(PQgetisnull(res, row, 7) ? NULL
	                                                                  : PQgetvalue(res, row, 7));
	entity->paused_reason = cw_hub_strdup(res, row, 8);
	entity->paused_at_us = cw_hub_int64(res, row, 9);
	int rc = cw_entity_columns_from_json(entity, PQgetvalue(res, row, 4), err);
	if (rc == 0)
		rc = cw_entity_status_parse(PQgetvalue(res, row, 5), &entity->status, err);
	if (rc != 0) {
		cw_err_prefix(err, "entity \"%s\" in the hub is malformed", entity->name);
		if (err != NULL)
			err->code = CW_EDB;
		cw_entity_clear(entity);
		return CW_EDB;
	}
	return 0;
}

int cw_entity_store_get(cw_hub_t *hub, const char *name, cw_entity_t *out, cw_err_t *err)
{
	char what[160];
	snprintf(what, sizeof what, "could not read entity \"%s\"", name);
	const char *params[] = {name};
	PGresult *res = cw_hub_exec(hub, ENTITY_COLUMNS "WHERE name = $1", 1, params, what, err);
	if (res == NULL)
		return CW_EDB;
	int rc;
	if (PQntuples(res) == 0)
		rc = cw_err_set(err, CW_ENOTFOUND, "hub", "entity \"%s\" not found", name);
	else
		rc = row_to_entity(res, 0, out, err);
	PQclear(res);
	return rc;
}

/* Inserts entity unless the name is taken; *inserted tells which. */
static int insert_new(cw_hub_t *hub, const cw_entity_t *entity, bool *inserted, cw_err_t *err)
{
	char what[160], version[24];
	snprintf(what, sizeof what, "could not store entity \"%s\"", entity->name);
	snprintf(version, sizeof version, "%lld",
	         (long long)(entity->version < 1 ? 1 : entity->version));
	char *columns = cw_entity_columns_json(entity);
	const char *params[] = {entity->name, entity->source, entity->collection, entity->table,
	                        columns, cw_entity_status_name(entity->status), version,
	                        cw_entity_origin_name(entity->origin)};
	PGresult *res = cw_hub_exec(hub,
		"INSERT INTO cachewarp.entities "
		"(name, source, collection, tbl, columns, status, version, origin) "
		"VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7::int4, $8) "
		"ON CONFLICT (name) DO NOTHING RETURNING name", 8, params, what, err);
	free(columns);
	if (res == NULL)
		return CW_EDB;
	*inserted = PQntuples(res) == 1;
	PQclear(res);
	return 0;
}

/* Brings a deleted entity back with status and origin, as a new generation, not paused. */
static int revive(cw_hub_t *hub, const cw_entity_t *entity, cw_err_t *err)
{
	char what[160];
	snprintf(what, sizeof what, "could not store entity \"%s\"", entity->name);
	const char *params[] = {entity->name, cw_entity_status_name(entity->status),
	                        cw_entity_origin_name(entity->origin)};
	return cw_hub_command(hub,
		"UPDATE cachewarp.entities SET status = $2, version = version + 1, origin = $3, "
		"paused_reason = NULL, paused_at = NULL, updated_at = now() "
		"WHERE name = $1 AND status = 'deleted'", 3, params, what, err);
}

/* Records the origin of an entity stored before the hub kept one. */
static int claim_origin(cw_hub_t *hub, const cw_entity_t *entity, cw_err_t *err)
{
	char what[160];
	snprintf(what, sizeof what, "could not store entity \"%s\"", entity->name);
	const char *params[] = {entity->name, cw_entity_origin_name(entity->origin)};
	return cw_hub_command(hub,
		"UPDATE cachewarp.entities SET origin = $2 WHERE name = $1 AND origin IS NULL",
		2, params, what, err);
}

int cw_entity_store_upsert(cw_hub_t *hub, const cw_entity_t *entity, bool *created,
                           cw_err_t *err)
{
	cw_entity_t stored = {0};
	bool inserted = false;
	int rc = cw_entity_validate(entity, err);
	if (rc == 0)
		rc = insert_new(hub, entity, &inserted, err);
	if (rc != 0 || inserted)
		goto cleanup;
	/* The name was taken (maybe by another process a moment ago): compare shapes. */
	if ((rc = cw_entity_store_get(hub, entity->name, &stored, err)) != 0)
		goto cleanup;
	if (!cw_entity_shape_equal(&stored, entity)) {
		rc = cw_err_set(err, CW_ECONFLICT, "hub",
		                "entity \"%s\" already exists with a different shape; shapes are "
		                "immutable: create a new entity under another name", entity->name);
		goto cleanup;
	}
	if (stored.status == CW_ENTITY_DELETED) {
		rc = revive(hub, entity, err);
		inserted = rc == 0;
	} else if (stored.origin == CW_ENTITY_ORIGIN_UNKNOWN &&
	           entity->origin != CW_ENTITY_ORIGIN_UNKNOWN) {
		rc = claim_origin(hub, entity, err);
	}
cleanup:
	if (created != NULL)
		*created = rc == 0 && inserted;
	cw_entity_clear(&stored);
	return rc;
}

void cw_entity_store_list_free(cw_entity_t *entities, size_t count)
{
	if (entities == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		cw_entity_clear(&entities[i]);
	free(entities);
}

int cw_entity_store_list(cw_hub_t *hub, bool include_deleted, cw_entity_t **entities,
                         size_t *count, cw_err_t *err)
{
	const char *params[] = {include_deleted ? "t" : "f"};
	PGresult *res = cw_hub_exec(hub,
		ENTITY_COLUMNS "WHERE $1::bool OR status <> 'deleted' ORDER BY name",
		1, params, "could not list entities", err);
	*entities = NULL;
	*count = 0;
	if (res == NULL)
		return CW_EDB;
	int rc = 0;
	size_t n = (size_t)PQntuples(res);
	cw_entity_t *list = n ? cw_xcalloc(n, sizeof *list) : NULL;
	size_t filled = 0;
	for (; filled < n && rc == 0; filled++)
		rc = row_to_entity(res, (int)filled, &list[filled], err);
	PQclear(res);
	if (rc != 0) {
		cw_entity_store_list_free(list, filled);
		return rc;
	}
	*entities = list;
	*count = n;
	return 0;
}

/* Runs an UPDATE on one entity; CW_ENOTFOUND when it matched no row. */
static int update_one(cw_hub_t *hub, const char *sql, int nparams, const char *const *params,
                      const char *name, const char *what, cw_err_t *err)
{
	PGresult *res = cw_hub_exec(hub, sql, nparams, params, what, err);
	if (res == NULL)
		return CW_EDB;
	int rc = 0;
	if (strcmp(PQcmdTuples(res), "0") == 0)
		rc = cw_err_set(err, CW_ENOTFOUND, "hub", "entity \"%s\" not found", name);
	PQclear(res);
	return rc;
}

/*
 * Runs sql (an UPDATE ... RETURNING version; params[0] is the entity's
 * name) in a transaction under the oplog lock, so no writer stages a change
 * for the entity afterwards, then drops its staged changes. *version
 * (optional) receives the value returned. CW_ENOTFOUND (no message: the
 * caller says why) when it matched no row.
 */
static int update_locked(cw_hub_t *hub, const char *sql, int nparams, const char *const *params,
                         int64_t *version, const char *what, cw_err_t *err)
{
	int rc = cw_hub_begin(hub, err);
	if (rc != 0)
		return rc;
	PGresult *res = NULL;
	if ((rc = cw_hub_lock_oplog(hub, err)) == 0 &&
	    (res = cw_hub_exec(hub, sql, nparams, params, what, err)) == NULL)
		rc = CW_EDB;
	if (rc == 0 && PQntuples(res) == 0)
		rc = CW_ENOTFOUND;
	else if (rc == 0 && version != NULL)
		*version = cw_hub_int64(res, 0, 0);
	PQclear(res);
	if (rc == 0)
		rc = cw_hub_command(hub, "DELETE FROM cachewarp.oplog_staging WHERE entity = $1",
		                    1, params, what, err);
	if (rc == 0)
		rc = cw_hub_commit(hub, what, err);
	if (rc != 0)
		cw_hub_rollback(hub);
	return rc;
}

int cw_entity_store_delete(cw_hub_t *hub, const char *name, cw_err_t *err)
{
	char what[160];
	snprintf(what, sizeof what, "could not delete entity \"%s\"", name);
	const char *params[] = {name};
	int rc = update_locked(hub,
		"UPDATE cachewarp.entities SET status = 'deleted', updated_at = now() "
		"WHERE name = $1 RETURNING version", 1, params, NULL, what, err);
	if (rc == CW_ENOTFOUND)
		rc = cw_err_set(err, CW_ENOTFOUND, "hub", "entity \"%s\" not found", name);
	return rc;
}

int cw_entity_store_set_status(cw_hub_t *hub, const char *name, cw_entity_status_t status,
                               cw_err_t *err)
{
	char what[160];
	snprintf(what, sizeof what, "could not set the status of entity \"%s\"", name);
	const char *params[] = {name, cw_entity_status_name(status)};
	return update_one(hub,
		"UPDATE cachewarp.entities SET status = $2, updated_at = now() WHERE name = $1",
		2, params, name, what, err);
}

int cw_entity_store_bump_version(cw_hub_t *hub, const char *name, int64_t *version,
                                 cw_err_t *err)
{
	char what[160];
	snprintf(what, sizeof what, "could not refresh entity \"%s\"", name);
	const char *params[] = {name};
	PGresult *res = cw_hub_exec(hub,
		"UPDATE cachewarp.entities SET version = version + 1, updated_at = now() "
		"WHERE name = $1 AND status <> 'deleted' RETURNING version", 1, params, what, err);
	if (res == NULL)
		return CW_EDB;
	int rc = 0;
	if (PQntuples(res) == 0)
		rc = cw_err_set(err, CW_ENOTFOUND, "hub", "entity \"%s\" not found", name);
	else if (version != NULL)
		*version = cw_hub_int64(res, 0, 0);
	PQclear(res);
	return rc;
}

/* After an update that matched no row: CW_ENOTFOUND, or CW_ECONFLICT saying the state. */
static int explain_unmatched(cw_hub_t *hub, const char *name, bool want_paused, cw_err_t *err)
{
	cw_entity_t stored = {0};
	int rc = cw_entity_store_get(hub, name, &stored, err);
	if (rc != 0)
		return rc;
	if (stored.status == CW_ENTITY_DELETED)
		rc = cw_err_set(err, CW_ENOTFOUND, "hub", "entity \"%s\" not found", name);
	else if (want_paused)
		rc = cw_err_set(err, CW_ECONFLICT, "hub", "entity \"%s\" is not paused", name);
	else
		rc = cw_err_set(err, CW_ECONFLICT, "hub", "entity \"%s\" is paused already", name);
	cw_entity_clear(&stored);
	return rc;
}

int cw_entity_store_pause(cw_hub_t *hub, const char *name, const char *reason, cw_err_t *err)
{
	char what[160];
	snprintf(what, sizeof what, "could not pause entity \"%s\"", name);
	const char *params[] = {name, reason};
	int rc = update_locked(hub,
		"UPDATE cachewarp.entities SET paused_reason = $2, paused_at = now(), updated_at = now() "
		"WHERE name = $1 AND status <> 'deleted' AND paused_reason IS NULL RETURNING version",
		2, params, NULL, what, err);
	return rc == CW_ENOTFOUND ? explain_unmatched(hub, name, false, err) : rc;
}

int cw_entity_store_resume(cw_hub_t *hub, const char *name, cw_entity_origin_t origin,
                           int64_t *version, cw_err_t *err)
{
	char what[160];
	snprintf(what, sizeof what, "could not resume entity \"%s\"", name);
	const char *params[] = {name, cw_entity_origin_name(origin)};
	int rc = update_locked(hub,
		"UPDATE cachewarp.entities SET paused_reason = NULL, paused_at = NULL, "
		"status = 'pending', version = version + 1, origin = coalesce($2, origin), "
		"updated_at = now() "
		"WHERE name = $1 AND status <> 'deleted' AND paused_reason IS NOT NULL RETURNING version",
		2, params, version, what, err);
	return rc == CW_ENOTFOUND ? explain_unmatched(hub, name, true, err) : rc;
}
