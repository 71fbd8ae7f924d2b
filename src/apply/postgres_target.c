/*
 * This file contains the PostgreSQL target's backend (postgres_target.h):
 * the connection, the bookkeeping tables of the meta schema (positions,
 * schema_history, runs, quarantine), positions, runs and entities. Writing
 * a batch lives in postgres_target_apply.c.
 */
#include "apply/postgres_target.h"

#include "apply/apply_loop.h"
#include "apply/postgres_target_internal.h"
#include "core/auth.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "core/secret.h"
#include "hub/hub.h"
#include "hub/metadata.h"
#include "hub/position_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* How often housekeeping writes the run's row counts. */
#define RUN_REPORT_MS 5000
/* How often the global position is written while batches keep coming. */
#define POSITION_MS 1000
/* How often quarantined values are tried again against their columns' types. */
#define QUARANTINE_RETRY_MS 5000

/* ---- statements ---------------------------------------------------------- */

int pgt_result_error(pg_target_t *t, const PGresult *res, const char *what, cw_err_t *err)
{
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	snprintf(t->sqlstate, sizeof t->sqlstate, "%s", state != NULL ? state : "");
	char reason[CW_ERR_MESSAGE_LEN];
	cw_hub_clean_message(primary != NULL ? primary : (t->conn ? PQerrorMessage(t->conn) : ""), reason,
	              sizeof reason);
	if (reason[0] == '\0')
		snprintf(reason, sizeof reason, "connection to the target lost");
	const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
	if (detail != NULL) {
		char line[CW_ERR_MESSAGE_LEN];
		cw_hub_clean_message(detail, line, sizeof line);
		cw_err_set(err, CW_EDB, PGT_COMPONENT, "target \"%s\": %s: %s (%s)", t->name, what,
		           reason, line);
	} else {
		cw_err_set(err, CW_EDB, PGT_COMPONENT, "target \"%s\": %s: %s", t->name, what, reason);
	}
	cw_err_set_server_code(err, t->sqlstate);
	return CW_EDB;
}

PGresult *pgt_exec(pg_target_t *t, const char *sql, int nparams, const char *const *params,
                   const char *what, cw_err_t *err)
{
	PGresult *res = nparams > 0 ? PQexecParams(t->conn, sql, nparams, NULL, params, NULL, NULL, 0)
	                            : PQexec(t->conn, sql);
	ExecStatusType status = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK)
		return res;
	pgt_result_error(t, res, what, err);
	PQclear(res);
	return NULL;
}

int pgt_command(pg_target_t *t, const char *sql, int nparams, const char *const *params,
                const char *what, cw_err_t *err)
{
	PGresult *res = pgt_exec(t, sql, nparams, params, what, err);
	if (res == NULL)
		return CW_EDB;
	PQclear(res);
	return 0;
}

void pgt_quote(cw_buf_t *out, const char *name)
{
	cw_buf_append_char(out, '"');
	for (const char *p = name; *p; p++) {
		if (*p == '"')
			cw_buf_append_char(out, '"');
		cw_buf_append_char(out, *p);
	}
	cw_buf_append_char(out, '"');
}

void pgt_literal(cw_buf_t *out, const char *text)
{
	/* standard_conforming_strings is on (forced at connect): only quotes are doubled */
	cw_buf_append_char(out, '\'');
	for (const char *p = text; *p; p++) {
		if (*p == '\'')
			cw_buf_append_char(out, '\'');
		cw_buf_append_char(out, *p);
	}
	cw_buf_append_char(out, '\'');
}

static char *quoted(const char *name)
{
	cw_buf_t b = CW_BUF_INIT;
	pgt_quote(&b, name);
	return cw_buf_take(&b);
}

/* ---- connection and bookkeeping ----------------------------------------- */

static void set_up(pg_target_t *t, bool up)
{
	cw_metrics_gauge_set(t->ctx->metrics, "cachewarp_target_up", t->labels, up ? 1 : 0);
}

static void disconnect(pg_target_t *t)
{
	PQfinish(t->conn);
	t->conn = NULL;
	t->ready = false;
	t->temp_cols = 0;
	for (size_t i = 0; i < t->ntables; i++)
		pgt_table_forget(&t->tables[i]);
}

/* Server notices ("relation already exists, skipping") go to the debug log. */
static void log_notice(void *arg, const char *message)
{
	(void)arg;
	char line[CW_ERR_MESSAGE_LEN];
	cw_hub_clean_message(message, line, sizeof line);
	cw_log_debug(PGT_COMPONENT, "%s", line);
}

/* Creates schema name when it does not exist (no CREATE right needed when it does). */
static int ensure_schema(pg_target_t *t, const char *name, const char *qname, cw_err_t *err)
{
	const char *params[] = {name};
	PGresult *res = pgt_exec(t, "SELECT 1 FROM pg_namespace WHERE nspname = $1", 1, params,
	                         "could not look up a schema", err);
	if (res == NULL)
		return CW_EDB;
	bool exists = PQntuples(res) > 0;
	PQclear(res);
	if (exists)
		return 0;
	cw_buf_t sql = CW_BUF_INIT;
	cw_buf_appendf(&sql, "CREATE SCHEMA IF NOT EXISTS %s", qname);
	char what[160];
	snprintf(what, sizeof what, "could not create schema \"%s\"", name);
	int rc = pgt_command(t, cw_buf_cstr(&sql), 0, NULL, what, err);
	cw_buf_free(&sql);
	return rc;
}

/* The bookkeeping tables of the meta schema (docs/targets-postgres.md, "Bookkeeping"). */
static const char *const meta_tables[] = {
	"CREATE TABLE IF NOT EXISTS %s.positions ("
	" target text NOT NULL, entity text NOT NULL, position bigint NOT NULL,"
	" updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (target, entity))",
	/* a checksum of each position (hub/position_check.h); NULL in rows stored before it */
	"ALTER TABLE %s.positions ADD COLUMN IF NOT EXISTS checksum text",
	"CREATE TABLE IF NOT EXISTS %s.schema_history ("
	" id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), target text NOT NULL,"
	" entity text NOT NULL, change text NOT NULL, column_name text, field text,"
	" old_type text, new_type text, oplog_id bigint, ddl text NOT NULL)",
	"CREATE TABLE IF NOT EXISTS %s.runs ("
	" id bigserial PRIMARY KEY, target text NOT NULL, scope text NOT NULL, host text,"
	" pid integer, started_at timestamptz NOT NULL DEFAULT now(),"
	" updated_at timestamptz NOT NULL DEFAULT now(), stopped_at timestamptz,"
	" rows_applied bigint NOT NULL DEFAULT 0, state text NOT NULL, last_error text)",
	"CREATE TABLE IF NOT EXISTS %s.quarantine ("
	" id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), target text NOT NULL,"
	" entity text NOT NULL, doc_id text NOT NULL, column_name text, field text, value text,"
	" reason text NOT NULL, oplog_id bigint NOT NULL, resolved_at timestamptz)",
};

static int prepare(pg_target_t *t, cw_err_t *err)
{
	int rc = pgt_command(t, "BEGIN", 0, NULL, "could not begin", err);
	/* Two processes sharing the database (one per entity) set it up one at a time. */
	if (rc == 0)
		rc = pgt_command(t, "SELECT pg_advisory_xact_lock(hashtext('cachewarp target setup'))",
		                 0, NULL, "could not lock the set-up", err);
	if (rc == 0)
		rc = ensure_schema(t, t->cfg->schema, t->qschema, err);
	if (rc == 0)
		rc = ensure_schema(t, t->cfg->meta_schema, t->qmeta, err);
	cw_buf_t sql = CW_BUF_INIT;
	for (size_t i = 0; rc == 0 && i < sizeof meta_tables / sizeof meta_tables[0]; i++) {
		cw_buf_reset(&sql);
		cw_buf_appendf(&sql, meta_tables[i], t->qmeta);
		rc = pgt_command(t, cw_buf_cstr(&sql), 0, NULL, "could not create a bookkeeping table",
		                 err);
	}
	cw_buf_free(&sql);
	if (rc == 0)
		rc = pgt_command(t, "COMMIT", 0, NULL, "could not commit the set-up", err);
	if (rc != 0)
		PQclear(PQexec(t->conn, "ROLLBACK"));
	return rc;
}

/* This process's row in runs: earlier rows of its scope still running were interrupted. */
static int start_run(pg_target_t *t, cw_err_t *err)
{
	char pid[24], host[256] = "";
	snprintf(pid, sizeof pid, "%d", (int)getpid());
	gethostname(host, sizeof host - 1);
	cw_buf_t sql = CW_BUF_INIT;
	cw_buf_appendf(&sql, "UPDATE %s.runs SET state = 'interrupted', stopped_at = updated_at "
	               "WHERE target = $1 AND scope = $2 AND state = 'running'", t->qmeta);
	const char *params[] = {t->name, t->scope, host, pid};
	int rc = pgt_command(t, cw_buf_cstr(&sql), 2, params, "could not record the run", err);
	PGresult *res = NULL;
	if (rc == 0) {
		cw_buf_reset(&sql);
		cw_buf_appendf(&sql, "INSERT INTO %s.runs (target, scope, host, pid, state) "
		               "VALUES ($1, $2, $3, $4::integer, 'running') RETURNING id", t->qmeta);
		res = pgt_exec(t, cw_buf_cstr(&sql), 4, params, "could not record the run", err);
		rc = res == NULL ? CW_EDB : 0;
	}
	if (res != NULL)
		t->run_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	cw_buf_free(&sql);
	return rc;
}

/* Updates the run's row: counts, state and the last error (NULL: unchanged). */
static int report_run(pg_target_t *t, const char *state, cw_err_t *err)
{
	if (t->run_id == 0 || t->conn == NULL)
		return 0;
	char id[24], rows[24];
	snprintf(id, sizeof id, "%lld", (long long)t->run_id);
	snprintf(rows, sizeof rows, "%lld", (long long)t->rows_applied);
	const char *params[] = {id, rows, state, t->last_error[0] ? t->last_error : NULL};
	cw_buf_t sql = CW_BUF_INIT;
	cw_buf_appendf(&sql, "UPDATE %s.runs SET rows_applied = $2::bigint, state = $3, "
	               "updated_at = now(), last_error = COALESCE($4, last_error), "
	               "stopped_at = CASE WHEN $3 = 'running' THEN NULL ELSE now() END "
	               "WHERE id = $1::bigint", t->qmeta);
	int rc = pgt_command(t, cw_buf_cstr(&sql), 4, params, "could not record the run", err);
	cw_buf_free(&sql);
	return rc;
}

/* Connects when not connected, checks the schemas and bookkeeping tables. 0 or CW_E*. */
static int ensure_connected(pg_target_t *t, cw_err_t *err)
{
	if (t->conn != NULL && PQstatus(t->conn) == CONNECTION_OK && t->ready)
		return 0;
	if (t->conn != NULL)
		disconnect(t);
	const char *keywords[] = {"connect_timeout", "keepalives_idle", "keepalives_interval",
	                          "dbname", "application_name", "client_encoding", "options", NULL};
	const char *values[] = {"10", "30", "10", t->cfg->url, "cachewarp", "UTF8",
	                        "-c standard_conforming_strings=on", NULL};
	cw_err_t why;
	int auth_rc = cw_auth_pg_connect(t->cfg->auth, keywords, values, &t->conn, &why);
	if (auth_rc != 0) {
		set_up(t, false);
		return cw_err_set(err, auth_rc, PGT_COMPONENT, "could not connect to target \"%s\": %s",
		                  t->name, why.message);
	}
	if (t->conn == NULL || PQstatus(t->conn) != CONNECTION_OK) {
		char reason[CW_ERR_MESSAGE_LEN], hint[CW_ERR_MESSAGE_LEN];
		cw_hub_clean_message(t->conn ? PQerrorMessage(t->conn) : "out of memory", reason, sizeof reason);
		int rc;
		if (cw_hub_auth_refused(t->conn) && t->cfg->auth != NULL)
			rc = cw_err_set(err, CW_EAUTH, PGT_COMPONENT, "target \"%s\" (%s) refused the "
			                "credentials of authentication \"%s\": %s", t->name, t->url_masked,
			                t->cfg->auth->id, reason);
		else if (cw_hub_auth_refused(t->conn))
			rc = cw_err_set(err, CW_EAUTH, PGT_COMPONENT, "target \"%s\" (%s) refused the "
			                "credentials: %s: fix the user and password of its url", t->name,
			                t->url_masked, reason);
		else
			rc = cw_err_set(err, CW_EDB, PGT_COMPONENT, "could not connect to target \"%s\" "
			                "(%s): %s%s", t->name, t->url_masked, reason,
			                cw_auth_failure_hint(t->cfg->auth, reason, hint, sizeof hint));
		disconnect(t);
		set_up(t, false);
		return rc;
	}
	PQsetNoticeProcessor(t->conn, log_notice, NULL);
	int rc = prepare(t, err);
	if (rc == 0 && t->run_id == 0)
		rc = start_run(t, err);
	else if (rc == 0)
		rc = report_run(t, "running", err);
	if (rc != 0) {
		disconnect(t);
		set_up(t, false);
		return rc;
	}
	t->ready = true;
	set_up(t, true);
	return 0;
}

/* Remembers a failure for the run's row; a connection error closes the connection. */
static int failed(pg_target_t *t, int rc, const cw_err_t *err)
{
	if (rc == 0)
		return 0;
	snprintf(t->last_error, sizeof t->last_error, "%s", err != NULL ? err->message : "");
	if (t->conn != NULL && PQstatus(t->conn) != CONNECTION_OK) {
		disconnect(t);
		set_up(t, false);
	}
	return rc;
}

/* ---- positions ----------------------------------------------------------- */

/* The key a position's checksum covers: "<target>:<entity or scope>". */
static char *position_key(const pg_target_t *t, const char *entity)
{
	return cw_xasprintf("%s:%s", t->name, entity);
}

/*
 * Reads entity's position (0 when none). One that fails its checksum is
 * logged and read as 0: applying again from the start is idempotent, and
 * using it could skip changes.
 */
static int read_position(pg_target_t *t, const char *entity, bool *found, int64_t *position,
                         cw_err_t *err)
{
	cw_buf_t sql = CW_BUF_INIT;
	cw_buf_appendf(&sql, "SELECT position, checksum FROM %s.positions WHERE target = $1 AND "
	               "entity = $2", t->qmeta);
	const char *params[] = {t->name, entity};
	PGresult *res = pgt_exec(t, cw_buf_cstr(&sql), 2, params, "could not read a position", err);
	cw_buf_free(&sql);
	if (res == NULL)
		return CW_EDB;
	*found = PQntuples(res) > 0;
	*position = 0;
	char *key = position_key(t, entity);
	if (*found && cw_position_verify(key, PQgetvalue(res, 0, 0), PQgetisnull(res, 0, 1) ? NULL :
	                                 PQgetvalue(res, 0, 1)) == CW_POSITION_CORRUPT)
		cw_log_kv(CW_LOG_WARN, PGT_COMPONENT, "stored position failed its checksum: applying "
		          "again from the start", "target", t->name, "entity", entity, NULL);
	else if (*found)
		*position = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	free(key);
	PQclear(res);
	return 0;
}

/* The upsert of entity's position row: with $1..$4 for params, or the values as literals. */
static void position_sql(const pg_target_t *t, const char *const params[4], bool literals,
                         cw_buf_t *sql)
{
	cw_buf_appendf(sql, "INSERT INTO %s.positions (target, entity, position, checksum) VALUES (",
	               t->qmeta);
	if (literals) {
		for (size_t i = 0; i < 4; i++) {
			cw_buf_append_str(sql, i > 0 ? ", " : "");
			pgt_literal(sql, params[i]);
			cw_buf_append_str(sql, i == 2 ? "::bigint" : "");
		}
	} else {
		cw_buf_append_str(sql, "$1, $2, $3::bigint, $4");
	}
	cw_buf_append_str(sql, ") ON CONFLICT (target, entity) DO UPDATE SET position = "
	                       "EXCLUDED.position, checksum = EXCLUDED.checksum, updated_at = now()");
}

static int position_write(pg_target_t *t, const char *entity, int64_t position, bool commit,
                          cw_err_t *err)
{
	char value[24], checksum[CW_POSITION_CHECKSUM_LEN];
	snprintf(value, sizeof value, "%lld", (long long)position);
	char *key = position_key(t, entity);
	cw_position_checksum(key, value, checksum);
	free(key);
	const char *params[] = {t->name, entity, value, checksum};
	cw_buf_t sql = CW_BUF_INIT;
	position_sql(t, params, commit, &sql);
	int rc;
	if (commit) {
		/* one message: the server skips the COMMIT when the position fails */
		cw_buf_append_str(&sql, "; COMMIT");
		rc = pgt_command(t, cw_buf_cstr(&sql), 0, NULL, "could not store a position and commit",
		                 err);
	} else {
		rc = pgt_command(t, cw_buf_cstr(&sql), 4, params, "could not store a position", err);
	}
	cw_buf_free(&sql);
	return rc;
}

int pgt_position_write(pg_target_t *t, const char *entity, int64_t position, cw_err_t *err)
{
	return position_write(t, entity, position, false, err);
}

int pgt_position_commit(pg_target_t *t, const char *entity, int64_t position, cw_err_t *err)
{
	return position_write(t, entity, position, true, err);
}

static int delete_position(pg_target_t *t, const char *entity, cw_err_t *err)
{
	cw_buf_t sql = CW_BUF_INIT;
	cw_buf_appendf(&sql, "DELETE FROM %s.positions WHERE target = $1 AND entity = $2", t->qmeta);
	const char *params[] = {t->name, entity};
	int rc = pgt_command(t, cw_buf_cstr(&sql), 2, params, "could not delete a position", err);
	cw_buf_free(&sql);
	return rc;
}

static int load_position(void *self, int64_t *position, cw_err_t *err)
{
	pg_target_t *t = self;
	bool found = false;
	int rc = ensure_connected(t, err);
	if (rc == 0)
		rc = read_position(t, t->scope, &found, position, err);
	if (rc == 0)
		t->position = t->position_stored = *position;
	return failed(t, rc, err);
}

/*
 * Writes the global position when it moved. Each entity's own position is
 * stored with its rows, so the global one only says where reading resumes:
 * an older one costs a re-read of pages the entities skip, never a change.
 */
static int write_position(pg_target_t *t, cw_err_t *err)
{
	if (t->position == t->position_stored)
		return 0;
	int rc = ensure_connected(t, err);
	if (rc != 0)
		return rc;
	rc = pgt_position_write(t, t->scope, t->position, err);
	if (rc == 0) {
		t->position_stored = t->position;
		t->position_stored_ms = cw_clock_now_ms(cw_clock_system());
	}
	return rc;
}

/* The global position, written at most every POSITION_MS while batches keep coming. */
static int store_position(void *self, int64_t position, cw_err_t *err)
{
	pg_target_t *t = self;
	t->position = position;
	if (cw_clock_now_ms(cw_clock_system()) - t->position_stored_ms < POSITION_MS)
		return 0;
	return failed(t, write_position(t, err), err);
}

/* ---- entities ------------------------------------------------------------ */

/* Reads a PostgreSQL source's record of the entity's table from the hub. */
static void read_record(pgt_table_t *tbl, cw_hub_t *hub, const cw_entity_t *entity)
{
	if (tbl->layout != CW_LAYOUT_DYNAMIC || hub == NULL)
		return;
	char *key = cw_table_record_key(entity->name), *json = NULL;
	if (cw_metadata_get(hub, key, &json, NULL) == 0)
		pgt_table_set_record(tbl, json, entity->version);
	else
		pgt_table_set_record(tbl, NULL, entity->version);
	free(json);
	free(key);
}

static int entity_open(void *self, cw_hub_t *hub, const cw_entity_t *entity, int64_t *applied,
                       cw_err_t *err)
{
	pg_target_t *t = self;
	*applied = 0;
	int rc = ensure_connected(t, err);
	if (rc != 0)
		return failed(t, rc, err);
	pgt_table_t *tbl = pgt_table_for(t, entity);
	read_record(tbl, hub, entity);
	if ((rc = pgt_table_load(t, tbl, err)) != 0)
		return failed(t, rc, err);
	bool found = false;
	int64_t position = 0;
	if ((rc = read_position(t, entity->name, &found, &position, err)) != 0)
		return failed(t, rc, err);
	if (!tbl->exists) {
		/* Created with its first write; a position without its table is stale. */
		if (found && (rc = delete_position(t, entity->name, err)) != 0)
			return failed(t, rc, err);
		return 0;
	}
	*applied = position;
	return 0;
}

static int entity_drop(void *self, const char *entity, bool *removed, cw_err_t *err)
{
	pg_target_t *t = self;
	*removed = false;
	int rc = ensure_connected(t, err);
	if (rc != 0)
		return failed(t, rc, err);
	cw_buf_t qname = CW_BUF_INIT, sql = CW_BUF_INIT;
	cw_buf_appendf(&qname, "%s.", t->qschema);
	pgt_quote(&qname, entity);
	const char *params[] = {cw_buf_cstr(&qname), t->name, entity};
	rc = pgt_command(t, "BEGIN", 0, NULL, "could not begin", err);
	PGresult *res = NULL;
	if (rc == 0) {
		res = pgt_exec(t, "SELECT to_regclass($1) IS NOT NULL", 1, params,
		               "could not look up a table", err);
		rc = res == NULL ? CW_EDB : 0;
	}
	bool exists = res != NULL && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (rc == 0 && exists && t->cfg->on_entity_delete == CW_ENTITY_DELETE_DROP) {
		cw_buf_appendf(&sql, "DROP TABLE IF EXISTS %s", cw_buf_cstr(&qname));
		rc = pgt_command(t, cw_buf_cstr(&sql), 0, NULL, "could not drop a table", err);
		cw_buf_reset(&sql);
		cw_buf_appendf(&sql, "INSERT INTO %s.schema_history (target, entity, change, ddl) "
		               "VALUES ($2, $3, 'drop table', 'DROP TABLE ' || $1)", t->qmeta);
		if (rc == 0)
			rc = pgt_command(t, cw_buf_cstr(&sql), 3, params, "could not record a change", err);
		*removed = rc == 0;
	}
	if (rc == 0) {
		cw_buf_reset(&sql);
		cw_buf_appendf(&sql, "DELETE FROM %s.positions WHERE target = $1 AND entity = $2",
		               t->qmeta);
		rc = pgt_command(t, cw_buf_cstr(&sql), 2, params + 1, "could not delete a position", err);
	}
	if (rc == 0)
		rc = pgt_command(t, "COMMIT", 0, NULL, "could not commit", err);
	if (rc != 0) {
		*removed = false;
		PQclear(PQexec(t->conn, "ROLLBACK"));
	}
	if (rc == 0 && exists && !*removed)
		cw_log_kv(CW_LOG_INFO, PGT_COMPONENT, "entity deleted: its table kept (on_entity_delete "
		          "keep)", "target", t->name, "entity", entity, NULL);
	for (size_t i = 0; i < t->ntables; i++)
		if (strcmp(t->tables[i].entity, entity) == 0)
			pgt_table_forget(&t->tables[i]);
	cw_buf_free(&qname);
	cw_buf_free(&sql);
	return failed(t, rc, err);
}

static int apply(void *self, const cw_entity_t *entity, const cw_write_list_t *writes,
                 int64_t upto, bool *lost, cw_err_t *err)
{
	pg_target_t *t = self;
	*lost = false;
	int rc = ensure_connected(t, err);
	if (rc != 0)
		return failed(t, rc, err);
	rc = pgt_apply(t, entity, writes, upto, lost, err);
	if (rc == 0 && !*lost) {
		t->rows_applied += (int64_t)writes->len;
		cw_metrics_gauge_set(t->ctx->metrics, "cachewarp_target_last_apply_timestamp_seconds",
		                     t->labels, (double)cw_clock_wall_us(cw_clock_system()) / 1e6);
	}
	return failed(t, rc, err);
}

/* Refreshes a source's record after a new generation; writes the run's counts now and then. */
static int housekeep(void *self, cw_apply_loop_t *loop, cw_hub_t *hub, cw_err_t *err)
{
	pg_target_t *t = self;
	for (size_t i = 0; i < t->ntables; i++) {
		pgt_table_t *tbl = &t->tables[i];
		const cw_entity_t *entity = cw_apply_loop_entity(loop, tbl->entity);
		if (entity != NULL && tbl->layout == CW_LAYOUT_DYNAMIC && tbl->src_version != entity->version)
			read_record(tbl, hub, entity);
	}
	int64_t now = cw_clock_now_ms(cw_clock_system());
	if (t->conn != NULL && now - t->position_stored_ms >= POSITION_MS) {
		int rc = write_position(t, err);
		if (rc != 0)
			return failed(t, rc, err);
	}
	if (t->conn != NULL && now - t->quarantine_checked_ms >= QUARANTINE_RETRY_MS) {
		t->quarantine_checked_ms = now;
		size_t resolved = 0;
		int rc = pgt_quarantine_retry(t, &resolved, err);
		if (rc != 0)
			return failed(t, rc, err);
		if (resolved > 0) {
			char count[24];
			snprintf(count, sizeof count, "%zu", resolved);
			cw_log_kv(CW_LOG_INFO, PGT_COMPONENT, "quarantined values written: their columns "
			          "hold them now", "target", t->name, "values", count, NULL);
		}
	}
	if (t->conn == NULL || now - t->run_reported_ms < RUN_REPORT_MS)
		return 0;
	t->run_reported_ms = now;
	return failed(t, report_run(t, "running", err), err);
}

/* ---- the backend --------------------------------------------------------- */

static void *pgt_open(const cw_component_ctx_t *ctx, cw_err_t *err)
{
	const cw_target_config_t *config = cw_config_target(ctx->config, ctx->name);
	if (config == NULL)
		return cw_err_set(err, CW_EINVAL, PGT_COMPONENT, "no target \"%s\" in the configuration",
		                  ctx->name), NULL;
	if (cw_identifier_validate("target name", ctx->name, err) != 0)
		return NULL;
	if (config->url == NULL || config->url[0] == '\0')
		return cw_err_set(err, CW_EINVAL, PGT_COMPONENT, "target \"%s\": url is required",
		                  ctx->name), NULL;
	pg_target_t *t = cw_xcalloc(1, sizeof *t);
	t->name = cw_xstrdup(ctx->name);
	t->ctx = ctx;
	t->cfg = config;
	t->url_masked = cw_secret_mask(config->url);
	t->qschema = quoted(config->schema);
	t->qmeta = quoted(config->meta_schema);
	t->qsoft = quoted(config->soft_delete_column);
	/* A process applying some entities keeps a global position of its own. */
	char *scope = cw_component_scope(ctx->entities, ctx->nentities);
	t->scope = cw_xasprintf("*%s", scope);
	free(scope);
	snprintf(t->labels, sizeof t->labels, "target=\"%s\"", ctx->name);
	cw_target_declare_metrics(ctx->metrics);
	cw_metrics_declare(ctx->metrics, "cachewarp_schema_changes_total", CW_METRIC_COUNTER,
	                   "DDL a target applied to follow the data, by entity and change.");
	cw_metrics_declare(ctx->metrics, "cachewarp_type_conversion_warnings_total", CW_METRIC_COUNTER,
	                   "Values a target's column could not hold (written NULL, quarantined).");
	return t;
}

static void pgt_close(void *self)
{
	pg_target_t *t = self;
	if (t == NULL)
		return;
	if (t->conn != NULL && PQstatus(t->conn) == CONNECTION_OK) {
		PQclear(PQexec(t->conn, "ROLLBACK"));
		write_position(t, NULL);
		report_run(t, "stopped", NULL);
	}
	PQfinish(t->conn);
	for (size_t i = 0; i < t->ntables; i++)
		pgt_table_free(&t->tables[i]);
	free(t->tables);
	cw_buf_free(&t->sql);
	cw_buf_free(&t->text);
	free(t->scope);
	free(t->qschema);
	free(t->qmeta);
	free(t->qsoft);
	free(t->url_masked);
	free(t->name);
	free(t);
}

const cw_target_backend_t cw_postgres_backend = {
	.type = "postgres",
	.open = pgt_open,
	.close = pgt_close,
	.load_position = load_position,
	.store_position = store_position,
	.entity_open = entity_open,
	.entity_drop = entity_drop,
	.apply = apply,
	.housekeep = housekeep,
};
