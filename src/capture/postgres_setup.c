/*
 * This file contains the PostgreSQL source's set-up checks
 * (postgres_internal.h): the role may replicate, each entity's table exists,
 * is readable and has a key, its key is known to the decoder, and the
 * publication covers it (created or extended when missing). Every refusal
 * says what to run to fix it.
 */
#include "capture/postgres_internal.h"

#include "core/log.h"
#include "core/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

PGresult *pg_query(cw_pg_source_t *src, const char *sql, int nparams,
                   const char *const *params, const char *what, cw_err_t *err)
{
	PGresult *res = PQexecParams(src->sql, sql, nparams, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);
	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		pg_result_error(src->sql, res, what, err);
		PQclear(res);
		return NULL;
	}
	return res;
}

int pg_check_replication_role(cw_pg_source_t *src, cw_err_t *err)
{
	PGresult *res = pg_query(src, "SELECT current_user, rolreplication OR rolsuper "
	                      "FROM pg_roles WHERE rolname = current_user", 0, NULL,
	                      "could not read the source role", err);
	if (res == NULL)
		return CW_EDB;
	int rc = 0;
	if (PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 1), "t") != 0)
		rc = cw_err_set(err, CW_EINVAL, PG_DOMAIN,
			"role \"%s\" of source \"%s\" may not use logical replication: "
			"run ALTER ROLE \"%s\" REPLICATION as a superuser",
			PQgetvalue(res, 0, 0), src->cfg->name, PQgetvalue(res, 0, 0));
	PQclear(res);
	return rc;
}

/* Registers the table's key (primary key, else replica identity index) with the decoder. */
static int table_key(cw_pg_source_t *src, const pg_entity_t *ent, const char *oid,
                     bool primary, cw_err_t *err)
{
	const char *params[] = {oid, primary ? "t" : "f"};
	PGresult *res = pg_query(src,
		"SELECT a.attname FROM pg_index i "
		"CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) "
		"JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
		"WHERE i.indrelid = $1::oid AND "
		"CASE WHEN $2::bool THEN i.indisprimary ELSE i.indisreplident END ORDER BY k.ord",
		2, params, "could not read a table's key", err);
	if (res == NULL)
		return CW_EDB;
	int n = PQntuples(res);
	const char **cols = cw_xcalloc((size_t)n + 1, sizeof *cols);
	for (int i = 0; i < n; i++)
		cols[i] = PQgetvalue(res, i, 0);
	int rc = cw_pgoutput_set_primary_key(src->dec, ent->nspname, ent->relname, cols,
	                                     (size_t)n, err);
	free(cols);
	PQclear(res);
	return rc;
}

static int add_to_publication(cw_pg_source_t *src, const pg_entity_t *ent, cw_err_t *err)
{
	const char *params[] = {src->cfg->publication, ent->nspname, ent->relname};
	PGresult *res = pg_query(src,
		"SELECT p.puballtables, EXISTS (SELECT 1 FROM pg_publication_tables t "
		"WHERE t.pubname = p.pubname AND t.schemaname = $2 AND t.tablename = $3) "
		"FROM pg_publication p WHERE p.pubname = $1", 3, params,
		"could not read the publication", err);
	if (res == NULL)
		return CW_EDB;
	bool exists = PQntuples(res) == 1;
	bool has = exists && (strcmp(PQgetvalue(res, 0, 0), "t") == 0 ||
	                      strcmp(PQgetvalue(res, 0, 1), "t") == 0);
	PQclear(res);
	if (has)
		return 0;
	cw_buf_t sql = CW_BUF_INIT;
	cw_buf_append_str(&sql, exists ? "ALTER PUBLICATION " : "CREATE PUBLICATION ");
	pg_quote_ident(&sql, src->cfg->publication);
	cw_buf_append_str(&sql, exists ? " ADD TABLE " : " FOR TABLE ");
	pg_quote_table(&sql, ent->nspname, ent->relname);
	res = PQexec(src->sql, sql.data);
	int rc = 0;
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		char what[256];
		snprintf(what, sizeof what, "could not %s publication \"%s\" (%s)",
		         exists ? "add a table to" : "create", src->cfg->publication, sql.data);
		rc = pg_result_error(src->sql, res, what, err);
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		if (state != NULL && strcmp(state, "42501") == 0) {
			char reason[CW_ERR_MESSAGE_LEN];
			snprintf(reason, sizeof reason, "%s", err->message);
			rc = cw_err_set(err, CW_EINVAL, PG_DOMAIN, "%.300s (missing privilege: have the "
				"owner of the tables or a superuser create the publication, or make the "
				"source's role their owner)", reason);
		}
	} else {
		cw_log_kv(CW_LOG_INFO, PG_COMPONENT, exists ? "table added to publication" :
		          "publication created", "source", src->cfg->name, "publication",
		          src->cfg->publication, "table", ent->entity.table, NULL);
	}
	PQclear(res);
	cw_buf_free(&sql);
	return rc;
}

int pg_prepare_table(cw_pg_source_t *src, pg_entity_t *ent, cw_err_t *err)
{
	const char *params[] = {ent->nspname, ent->relname};
	PGresult *res = pg_query(src,
		"SELECT c.oid, c.relreplident, "
		"EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary), "
		"EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident), "
		"has_table_privilege(c.oid, 'SELECT'), current_user "
		"FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
		"WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')",
		2, params, "could not read the source's catalog", err);
	if (res == NULL)
		return CW_EDB;
	/* The table as SQL spells it, for messages and the statements they suggest. */
	cw_buf_t sql_name = CW_BUF_INIT;
	pg_quote_table(&sql_name, ent->nspname, ent->relname);
	const char *table = cw_buf_cstr(&sql_name);
	int rc = 0;
	if (PQntuples(res) != 1) {
		rc = cw_err_set(err, CW_ENOTFOUND, PG_DOMAIN,
			"table %s of entity \"%s\" does not exist in source \"%s\" (names are "
			"case-sensitive: quote upper-case ones, public.\"Orders\")",
			table, ent->entity.name, src->cfg->name);
		goto cleanup;
	}
	char replident = PQgetvalue(res, 0, 1)[0];
	bool has_pk = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
	bool has_ri = strcmp(PQgetvalue(res, 0, 3), "t") == 0;
	if (strcmp(PQgetvalue(res, 0, 4), "t") != 0) {
		rc = cw_err_set(err, CW_EINVAL, PG_DOMAIN,
			"role \"%s\" may not read table %s of entity \"%s\": "
			"run GRANT SELECT ON %s TO \"%s\"", PQgetvalue(res, 0, 5), table,
			ent->entity.name, table, PQgetvalue(res, 0, 5));
		goto cleanup;
	}
	if (replident == 'n' || (!has_pk && !(replident == 'i' && has_ri))) {
		rc = cw_err_set(err, CW_EINVAL, PG_DOMAIN,
			"table %s of entity \"%s\" has no primary key%s: changes could not be "
			"matched to rows; add one (ALTER TABLE %s ADD PRIMARY KEY (...)) or name a "
			"unique index of non-null columns (ALTER TABLE %s REPLICA IDENTITY USING "
			"INDEX ...)", table, ent->entity.name,
			replident == 'n' ? " and REPLICA IDENTITY NOTHING" : " or replica identity index",
			table, table);
		goto cleanup;
	}
	if ((rc = table_key(src, ent, PQgetvalue(res, 0, 0), has_pk, err)) == 0)
		rc = add_to_publication(src, ent, err);
cleanup:
	cw_buf_free(&sql_name);
	PQclear(res);
	return rc;
}

