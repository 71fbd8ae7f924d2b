/*
 * This file contains the check of a new entity against its PostgreSQL source
 * (capture/source.h, cw_source_check_entity): before the entity is stored,
 * its table must exist, be readable and have a key, with the same checks and
 * messages as the running source's (pg_table_check).
 */
#include "capture/postgres_internal.h"
#include "capture/source.h"
#include "core/auth.h"

#include <stddef.h>
#include <stdio.h>

/* How long the API or the CLI waits for the source server before storing the entity unchecked. */
#define CHECK_CONNECT_TIMEOUT "5"

int cw_pg_check_entity(const cw_source_config_t *cfg, const cw_entity_t *entity, cw_err_t *err)
{
	const char *keys[] = {"connect_timeout", "dbname", "application_name", "client_encoding",
	                      NULL};
	const char *values[] = {CHECK_CONNECT_TIMEOUT, cfg->url, "cachewarp", "UTF8", NULL};
	char nspname[CW_TABLE_PART_MAX + 1], relname[CW_TABLE_PART_MAX + 1];
	if (cw_entity_table_parse(entity->table, nspname, relname, err) != 0)
		return CW_EINVAL;
	PGconn *conn = NULL;
	cw_err_t why;
	int rc = cw_auth_pg_connect(cfg->auth, keys, values, &conn, &why);
	if (rc != 0) {
		cw_err_set(err, rc, PG_DOMAIN, "could not connect to source \"%s\" to check table %s: %s",
		           cfg->name, entity->table, why.message);
	} else if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
		char what[300];
		snprintf(what, sizeof what, "could not connect to source \"%s\" to check table %s",
		         cfg->name, entity->table);
		rc = pg_result_error(conn, NULL, what, err);
	} else {
		rc = pg_table_check(conn, cfg->name, entity->name, nspname, relname, NULL, err);
	}
	PQfinish(conn);
	return rc;
}
