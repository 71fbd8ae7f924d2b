/*
 * This file contains the PostgreSQL source's set-up checks
 * (postgres_internal.h): the role may replicate, each entity's table exists,
 * is readable and has a key, its key is known to the decoder, and the
 * publication covers it (created or extended when missing), and the
 * server's wal_level. Every refusal says what to run to fix it. A refusal
 * about one entity's table marks that entity failed (pg_check_entity); the
 * source's other entities keep streaming.
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
			cw_buf_t name = CW_BUF_INIT;
			pg_quote_table(&name, ent->nspname, ent->relname);
			rc = cw_err_set(err, CW_EINVAL, PG_DOMAIN, "%.300s (missing privilege: run %s "
				"as %s of table %s, or as a superuser)", reason, sql.data,
				exists ? "the owner of the publication and" : "the owner", cw_buf_cstr(&name));
			cw_buf_free(&name);
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

int pg_check_wal_level(cw_pg_source_t *src, cw_err_t *err)
{
	PGresult *res = pg_query(src, "SELECT current_setting('wal_level')", 0, NULL,
	                         "could not read wal_level", err);
	if (res == NULL)
		return CW_EDB;
	int rc = 0;
	if (strcmp(PQgetvalue(res, 0, 0), "logical") != 0)
		rc = cw_err_set(err, CW_EINVAL, PG_DOMAIN,
			"source \"%s\" has wal_level = %s, and logical replication needs wal_level = "
			"logical: run ALTER SYSTEM SET wal_level = logical; as a superuser, then restart "
			"PostgreSQL (a reload is not enough)", src->cfg->name, PQgetvalue(res, 0, 0));
	PQclear(res);
	return rc;
}

int pg_table_check(PGconn *conn, const char *source, const char *entity, const char *nspname,
                   const char *relname, pg_table_t *table, cw_err_t *err)
{
	const char *params[] = {nspname, relname};
	PGresult *res = PQexecParams(conn,
		"SELECT c.oid, c.relreplident, "
		"EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary), "
		"EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident), "
		"has_table_privilege(c.oid, 'SELECT'), current_user "
		"FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
		"WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')",
		2, NULL, params, NULL, NULL, 0);
	/* The table as SQL spells it, for messages and the statements they suggest. */
	cw_buf_t sql_name = CW_BUF_INIT;
	pg_quote_table(&sql_name, nspname, relname);
	const char *name = cw_buf_cstr(&sql_name);
	int rc = 0;
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = pg_result_error(conn, res, "could not read the source's catalog", err);
		goto cleanup;
	}
	if (PQntuples(res) != 1) {
		rc = cw_err_set(err, CW_ENOTFOUND, PG_DOMAIN,
			"table %s of entity \"%s\" does not exist in source \"%s\" (names are "
			"case-sensitive: quote upper-case ones, public.\"Orders\")",
			name, entity, source);
		goto cleanup;
	}
	char replident = PQgetvalue(res, 0, 1)[0];
	bool has_pk = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
	bool has_ri = strcmp(PQgetvalue(res, 0, 3), "t") == 0;
	if (strcmp(PQgetvalue(res, 0, 4), "t") != 0) {
		rc = cw_err_set(err, CW_EINVAL, PG_DOMAIN,
			"role \"%s\" may not read table %s of entity \"%s\": "
			"run GRANT SELECT ON %s TO \"%s\"", PQgetvalue(res, 0, 5), name,
			entity, name, PQgetvalue(res, 0, 5));
		goto cleanup;
	}
	if (replident == 'n' || (!has_pk && !(replident == 'i' && has_ri))) {
		rc = cw_err_set(err, CW_EINVAL, PG_DOMAIN,
			"table %s of entity \"%s\" has no primary key%s: changes could not be "
			"matched to rows; add one (ALTER TABLE %s ADD PRIMARY KEY (...)) or name a "
			"unique index of non-null columns (ALTER TABLE %s REPLICA IDENTITY USING "
			"INDEX ...)", name, entity,
			replident == 'n' ? " and REPLICA IDENTITY NOTHING" : " or replica identity index",
			name, name);
		goto cleanup;
	}
	if (table != NULL) {
		snprintf(table->oid, sizeof table->oid, "%s", PQgetvalue(res, 0, 0));
		table->has_pk = has_pk;
	}
cleanup:
	cw_buf_free(&sql_name);
	PQclear(res);
	return rc;
}

int pg_prepare_table(cw_pg_source_t *src, pg_entity_t *ent, cw_err_t *err)
{
	pg_table_t table;
	int rc = pg_table_check(src->sql, src->cfg->name, ent->entity.name, ent->nspname,
	                        ent->relname, &table, err);
	if (rc == 0 && (rc = table_key(src, ent, table.oid, table.has_pk, err)) == 0)
		rc = src->polls_batch ? pg_batch_check_column(src, ent, err) : add_to_publication(src, ent, err);
	return rc;
}

/* A refusal the user must fix about one entity's table, rather than a failed connection. */
static bool is_entity_error(const cw_err_t *err)
{
	return err->code == CW_EINVAL || err->code == CW_ENOTFOUND;
}

/* Marks ent failed with reason (logged when it is new or changed). */
static void mark_failed(cw_pg_source_t *src, pg_entity_t *ent, const char *reason)
{
	if (!ent->failed || strcmp(ent->failed_reason, reason) != 0)
		cw_log_kv(CW_LOG_ERROR, PG_COMPONENT, "entity failed: the other entities keep "
		          "streaming; checked again every few seconds", "source", src->cfg->name,
		          "entity", ent->entity.name, "reason", reason, NULL);
	ent->failed = true;
	snprintf(ent->failed_reason, sizeof ent->failed_reason, "%s", reason);
}

int pg_check_entity(cw_pg_source_t *src, pg_entity_t *ent, cw_err_t *err)
{
	cw_err_t why = {0};
	int rc = pg_prepare_table(src, ent, &why);
	if (rc != 0 && !is_entity_error(&why)) {
		if (err != NULL)
			*err = why;
		return rc;
	}
	if (rc != 0) {
		mark_failed(src, ent, why.message);
	} else if (ent->failed) {
		cw_log_kv(CW_LOG_INFO, PG_COMPONENT, "entity recovered: scanning it", "source",
		          src->cfg->name, "entity", ent->entity.name, NULL);
		ent->failed = false;
		ent->failed_reason[0] = '\0';
	}
	pg_publish_failed(src);
	return 0;
}

int pg_check_published(cw_pg_source_t *src, cw_err_t *err)
{
	const char *params[] = {src->cfg->publication};
	/* Tables named in it (a partitioned one too), or covered by ALL TABLES or a schema. */
	PGresult *res = pg_query(src,
		"SELECT n.nspname::text, c.relname::text FROM pg_publication p "
		"JOIN pg_publication_rel r ON r.prpubid = p.oid JOIN pg_class c ON c.oid = r.prrelid "
		"JOIN pg_namespace n ON n.oid = c.relnamespace WHERE p.pubname = $1 "
		"UNION SELECT schemaname::text, tablename::text FROM pg_publication_tables "
		"WHERE pubname = $1", 1, params, "could not read the publication's tables", err);
	if (res == NULL)
		return CW_EDB;
	bool changed = false;
	for (size_t i = 0; i < src->nents; i++) {
		pg_entity_t *ent = &src->ents[i];
		if (ent->failed || ent->entity.status != CW_ENTITY_LIVE)
			continue;
		bool listed = false;
		for (int r = 0; r < PQntuples(res) && !listed; r++)
			listed = strcmp(PQgetvalue(res, r, 0), ent->nspname) == 0 &&
			         strcmp(PQgetvalue(res, r, 1), ent->relname) == 0;
		if (listed)
			continue;
		char reason[CW_ERR_MESSAGE_LEN];
		cw_buf_t name = CW_BUF_INIT;
		pg_quote_table(&name, ent->nspname, ent->relname);
		snprintf(reason, sizeof reason, "table %s of entity \"%s\" is no longer in "
		         "publication \"%s\" (removed or dropped): its changes are not captured; run "
		         "ALTER PUBLICATION \"%s\" ADD TABLE %s as the table's owner, and "
		         "cachewarp scans it again", cw_buf_cstr(&name), ent->entity.name,
		         src->cfg->publication, src->cfg->publication, cw_buf_cstr(&name));
		cw_buf_free(&name);
		mark_failed(src, ent, reason);
		ent->rescan = true;
		changed = true;
	}
	PQclear(res);
	if (changed)
		pg_publish_failed(src);
	return 0;
}
