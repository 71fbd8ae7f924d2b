/* This file contains the sides verify compares (sides.h): PostgreSQL sources and targets. */
#include "verify/sides_internal.h"

#include "apply/layout.h"
#include "capture/pg_rows.h"
#include "capture/pgoutput.h"
#include "core/auth.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/json_fields.h"
#include "core/mem.h"
#include "core/secret.h"
#include "hub/hub.h"
#include "verify/forms.h"
#include "verify/row_digest.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DOMAIN VS_DOMAIN
#define FETCH_SQL "FETCH 5000 FROM cw_verify"

const cw_verify_side_t *cw_verify_endpoint_side(cw_verify_endpoint_t *endpoint)
{
	return &endpoint->side;
}

uint64_t cw_verify_endpoint_estimate(cw_verify_endpoint_t *endpoint)
{
	return endpoint->estimate;
}

void cw_verify_endpoint_close(cw_verify_endpoint_t *endpoint)
{
	if (endpoint == NULL)
		return;
	if (endpoint->conn != NULL)
		PQfinish(endpoint->conn);
	free(endpoint->qtable);
	free(endpoint->select);
	free(endpoint->target_name);
	free(endpoint->qmeta);
	free(endpoint->soft_column);
	free(endpoint->shape_at);
	cw_pgoutput_free(endpoint->dec);
	cw_projection_free(endpoint->proj);
	if (endpoint->collection != NULL)
		mongoc_collection_destroy(endpoint->collection);
	if (endpoint->positions != NULL)
		mongoc_collection_destroy(endpoint->positions);
	if (endpoint->client != NULL)
		mongoc_client_destroy(endpoint->client);
	if (endpoint->db != NULL)
		sqlite3_close(endpoint->db);
	free(endpoint->path);
	vs_mysql_free(endpoint->mysql);
	cw_table_record_clear(&endpoint->bson_form.record);
	cw_verify_pg_model_clear(&endpoint->model);
	cw_entity_clear(&endpoint->entity);
	free(endpoint);
}

cw_verify_endpoint_t *vs_endpoint_new(endpoint_kind_t kind, const cw_entity_t *entity,
                                      cw_decimal_mode_t mode)
{
	cw_verify_endpoint_t *ep = cw_xcalloc(1, sizeof *ep);
	ep->kind = kind;
	ep->side.self = ep;
	cw_entity_copy(&ep->entity, entity);
	ep->mode = mode;
	ep->ncolumns = cw_digest_columns(entity);
	ep->bson_form.entity = &ep->entity;
	ep->bson_form.layout = cw_layout_of(entity);
	ep->model.entity = &ep->entity;
	ep->model.mode = mode;
	return ep;
}

void vs_set_form(cw_verify_endpoint_t *ep, endpoint_form_t form)
{
	ep->form = form;
	if (form == FORM_PG_COLUMNS && cw_layout_of(&ep->entity) == CW_LAYOUT_DOCUMENT)
		ep->ncolumns = 0;
}

int vs_source_digest(cw_verify_endpoint_t *ep, const char *doc_id, const char *data,
                     uint64_t *row, uint64_t *columns, cw_err_t *err)
{
	switch (ep->form) {
	case FORM_BSON:
		return cw_verify_bson_digest_data(&ep->bson_form, doc_id, data, row, columns, err);
	case FORM_PG_COLUMNS:
		return cw_verify_pg_digest_data(&ep->model, doc_id, data, row, columns, err);
	case FORM_VALUES:
		break;
	}
	return cw_digest_data(&ep->entity, ep->mode, doc_id, data, row, columns, err);
}

/* ---- PostgreSQL source ---- */

int vs_pg_error(PGconn *conn, const PGresult *res, const char *what, cw_err_t *err)
{
	const char *msg = res != NULL ? PQresultErrorMessage(res) : "";
	if (msg == NULL || msg[0] == '\0')
		msg = conn != NULL ? PQerrorMessage(conn) : "out of memory";
	char clean[CW_ERR_MESSAGE_LEN];
	cw_hub_clean_message(msg, clean, sizeof clean);
	return cw_err_set(err, CW_EDB, DOMAIN, "%s: %s", what, clean);
}

PGresult *vs_pg_query(PGconn *conn, const char *sql, int nparams, const char *const *params,
                      const char *what, cw_err_t *err)
{
	PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);
	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		vs_pg_error(conn, res, what, err);
		PQclear(res);
		return NULL;
	}
	return res;
}

/* The result of the query sent last (every result read); NULL with err when it failed. */
static PGresult *fetch_result(PGconn *conn, const char *what, cw_err_t *err)
{
	PGresult *res = NULL, *next;
	while ((next = PQgetResult(conn)) != NULL) {
		if (res == NULL)
			res = next;
		else
			PQclear(next);
	}
	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
		vs_pg_error(conn, res, what, err);
		PQclear(res);
		return NULL;
	}
	return res;
}

static int pg_command(PGconn *conn, const char *sql, const char *what, cw_err_t *err)
{
	PGresult *res = vs_pg_query(conn, sql, 0, NULL, what, err);
	PQclear(res);
	return res != NULL ? 0 : CW_EDB;
}

/* The table's key (primary key, else replica identity index), for doc_id. */
static int pg_load_key(cw_verify_endpoint_t *ep, cw_err_t *err)
{
	const char *params[] = {ep->nspname, ep->relname};
	PGresult *res = vs_pg_query(ep->conn,
		"SELECT a.attname, c.reltuples::bigint, i.indexrelid FROM pg_class c "
		"JOIN pg_namespace n ON n.oid = c.relnamespace "
		"JOIN pg_index i ON i.indrelid = c.oid "
		"CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) "
		"JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
		"WHERE n.nspname = $1 AND c.relname = $2 AND (i.indisprimary OR i.indisreplident) "
		"ORDER BY i.indisprimary DESC, i.indexrelid, k.ord",
		2, params, "could not read the key of the source table", err);
	if (res == NULL)
		return CW_EDB;
	int n = PQntuples(res);
	if (n == 0) {
		PQclear(res);
		return cw_err_set(err, CW_EINVAL, DOMAIN,
		                  "table %s of entity \"%s\" has no primary key nor replica identity "
		                  "index: rows cannot be told apart", ep->entity.table, ep->entity.name);
	}
	/* Only the first index's columns (the primary key's when there is one), in key order. */
	const char **cols = cw_xcalloc((size_t)n + 1, sizeof *cols);
	size_t ncols = 0;
	for (int i = 0; i < n && strcmp(PQgetvalue(res, i, 2), PQgetvalue(res, 0, 2)) == 0; i++)
		cols[ncols++] = PQgetvalue(res, i, 0);
	long long tuples = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	ep->estimate = tuples > 0 ? (uint64_t)tuples : 0;
	int rc = cw_pgoutput_set_primary_key(ep->dec, ep->nspname, ep->relname, cols, ncols, err);
	free(cols);
	PQclear(res);
	return rc;
}


/* Turns one fetched batch into rows, as capture's snapshot does. */
static int pg_rows(pg_batch_ctx_t *ctx, PGresult *res, cw_err_t *err)
{
	cw_verify_endpoint_t *ep = ctx->ep;
	cw_pg_rows_t rows;
	int rc = cw_pg_rows_init(&rows, res, ep->nspname, ep->relname, err);
	/* A target's rows end with _version, which is not data. */
	int version_col = ep->kind == EP_PG_TARGET ? PQnfields(res) - 1 : -1;
	if (version_col >= 0)
		rows.rel.ncolumns = rows.msg.row.new_tuple.ncolumns = (uint16_t)version_col;
	for (int r = 0; r < PQntuples(res) && rc == 0; r++) {
		cw_pgoutput_row_t row;
		/* A row capture cannot turn into a change (it quarantines it) is not compared. */
		if (cw_pgoutput_row_change(ep->dec, cw_pg_rows_at(&rows, r), &row, NULL) != 0)
			continue;
		const char *data = row.data;
		if (ctx->want != NULL && !ctx->want(ctx->want_arg, row.doc_id)) {
			cw_pgoutput_row_clear(&row);
			continue;
		}
		if (ep->proj != NULL) {
			cw_buf_reset(&ctx->projected);
			if (cw_projection_json(ep->proj, row.data, &ctx->projected, NULL) != 0) {
				cw_pgoutput_row_clear(&row);
				continue;
			}
			data = cw_buf_cstr(&ctx->projected);
		}
		cw_verify_row_t vrow = {row.doc_id, 0, ctx->columns, ep->ncolumns, false, data};
		if (version_col >= 0)
			vrow.stale = strtoll(PQgetvalue(res, r, version_col), NULL, 10) < ep->entity.version;
		rc = vs_source_digest(ep, row.doc_id, data, &vrow.digest, ctx->columns, err);
		if (rc == 0)
			rc = ctx->on_row(ctx->arg, &vrow);
		else if (ep->form != FORM_VALUES && rc == CW_EINVAL)
			rc = 0;   /* the target quarantines what it cannot build */
		cw_pgoutput_row_clear(&row);
	}
	cw_pg_rows_clear(&rows);
	return rc;
}

static int pg_read(void *self, cw_verify_want_fn want, void *want_arg, cw_verify_row_fn on_row,
                   void *arg, cw_cancel_t *cancel, cw_err_t *err)
{
	cw_verify_endpoint_t *ep = self;
	pg_batch_ctx_t ctx = {ep, want, want_arg, on_row, arg, CW_BUF_INIT,
	                      cw_xcalloc(ep->ncolumns + 1, sizeof(uint64_t))};
	char *declare = cw_xasprintf("DECLARE cw_verify NO SCROLL CURSOR FOR %s", ep->select);
	char what[200];
	snprintf(what, sizeof what, "could not read table %s of entity \"%s\"", ep->entity.table,
	         ep->entity.name);
	int rc = pg_command(ep->conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", what, err);
	/* A table of documents gains columns as fields appear: its columns are read each time. */
	if (rc == 0 && ep->kind == EP_PG_TARGET && ep->form == FORM_PG_COLUMNS &&
	    (rc = vs_columns_load(ep, err)) == 0) {
		free(declare);
		declare = cw_xasprintf("DECLARE cw_verify NO SCROLL CURSOR FOR %s", ep->select);
	}
	if (rc == 0)
		rc = pg_command(ep->conn, declare, what, err);
	/* The next batch is fetched while this one is turned into rows. */
	if (rc == 0 && PQsendQuery(ep->conn, FETCH_SQL) != 1)
		rc = vs_pg_error(ep->conn, NULL, what, err);
	while (rc == 0) {
		PGresult *res = fetch_result(ep->conn, what, err);
		if (res == NULL) {
			rc = CW_EDB;
			break;
		}
		int n = PQntuples(res);
		if (n > 0 && cw_cancel_is_set(cancel))
			rc = cw_err_set(err, CW_ECANCELED, DOMAIN, "verify was canceled");
		else if (n > 0 && PQsendQuery(ep->conn, FETCH_SQL) != 1)
			rc = vs_pg_error(ep->conn, NULL, what, err);
		if (rc == 0 && n > 0)
			rc = ep->kind == EP_PG_TARGET && ep->form == FORM_PG_COLUMNS
			     ? vs_columns_rows(&ctx, res, err) : pg_rows(&ctx, res, err);
		PQclear(res);
		if (n == 0)
			break;
		if (rc != 0)   /* a fetch may still be in flight */
			PQclear(fetch_result(ep->conn, what, NULL));
	}
	/* Ends the transaction either way (a failed one rolls back). */
	PQclear(PQexec(ep->conn, "COMMIT"));
	free(declare);
	free(ctx.columns);
	cw_buf_free(&ctx.projected);
	return rc;
}

/* Connects ep to url with capture's session settings and quotes its table. */
static int pg_connect_table(cw_verify_endpoint_t *ep, const char *url,
                            const cw_auth_config_t *auth, const char *what, cw_err_t *err)
{
	/* The session settings capture reads with (text of dates and times included). */
	const char *keys[] = {"dbname", "application_name", "client_encoding", NULL};
	const char *values[] = {url, "cachewarp-verify", "UTF8", NULL};
	cw_err_t why;
	int rc = cw_auth_pg_connect(auth, keys, values, &ep->conn, &why);
	if (rc != 0)
		return cw_err_set(err, rc, DOMAIN, "could not connect to %s: %s", what, why.message);
	if (ep->conn == NULL || PQstatus(ep->conn) != CONNECTION_OK) {
		char *masked = cw_secret_mask(url);
		char message[300];
		snprintf(message, sizeof message, "could not connect to %s at \"%s\"", what, masked);
		free(masked);
		return vs_pg_error(ep->conn, NULL, message, err);
	}
	char *nsp = PQescapeIdentifier(ep->conn, ep->nspname, strlen(ep->nspname));
	char *rel = PQescapeIdentifier(ep->conn, ep->relname, strlen(ep->relname));
	if (nsp != NULL && rel != NULL)
		ep->qtable = cw_xasprintf("%s.%s", nsp, rel);
	PQfreemem(nsp);
	PQfreemem(rel);
	if (ep->qtable == NULL)
		return vs_pg_error(ep->conn, NULL, "could not quote a table name", err);
	return 0;
}

cw_verify_endpoint_t *cw_verify_source_open(const cw_source_config_t *source,
                                            const cw_entity_t *entity,
                                            const cw_target_config_t *target, cw_err_t *err)
{
	if (source->type == CW_SOURCE_MONGODB)
		return vs_mongo_source_open(source, entity, target, err);
	if (source->type == CW_SOURCE_MYSQL)
		return vs_mysql_source_open(source, entity, target, err);
	cw_decimal_mode_t mode = target->decimal_handling;
	cw_verify_endpoint_t *ep = vs_endpoint_new(EP_PG_SOURCE, entity, mode);
	ep->side.read = pg_read;
	ep->dec = cw_pgoutput_new();
	char what[120];
	snprintf(what, sizeof what, "source \"%s\"", source->name);
	if (cw_entity_table_parse(entity->table, ep->nspname, ep->relname, err) != 0)
		goto fail;
	if (entity->ncolumns > 0 &&
	    (ep->proj = cw_projection_new(entity, CW_PROJECTION_DEFAULT, err)) == NULL)
		goto fail;
	if (pg_connect_table(ep, source->url, source->auth, what, err) != 0)
		goto fail;
	ep->select = cw_xasprintf("SELECT * FROM %s", ep->qtable);
	if (pg_load_key(ep, err) != 0)
		goto fail;
	return ep;
fail:
	cw_verify_endpoint_close(ep);
	return NULL;
}

/* A copy of from's column model into to. */
static void model_copy(cw_verify_pg_model_t *to, const cw_verify_pg_model_t *from)
{
	cw_verify_pg_model_clear(to);
	for (size_t i = 0; i < from->ncols; i++)
		cw_verify_pg_model_add(to, from->cols[i].name, from->cols[i].field, from->cols[i].type);
	to->has_extra = from->has_extra;
}

int cw_verify_endpoints_match(cw_verify_endpoint_t *source, cw_verify_endpoint_t *target,
                              cw_hub_t *hub, cw_err_t *err)
{
	if (target->form == FORM_BSON) {
		/* Typed as the target types them: by the source's record of its table. */
		if (cw_layout_of(&target->entity) == CW_LAYOUT_DYNAMIC) {
			cw_table_record_read(&target->bson_form.record, hub, target->entity.name);
			cw_table_record_read(&source->bson_form.record, hub, source->entity.name);
		}
		vs_set_form(source, FORM_BSON);
		return 0;
	}
	if (target->form == FORM_PG_COLUMNS) {
		model_copy(&source->model, &target->model);
		vs_set_form(source, FORM_PG_COLUMNS);
		return 0;
	}
	if (target->kind != EP_PG_TARGET || source->conn == NULL)
		return 0;
	PGresult *res = vs_pg_query(source->conn, "SELECT current_setting('TimeZone')", 0, NULL,
	                         "could not read the source's time zone", err);
	if (res == NULL)
		return CW_EDB;
	const char *params[] = {PQgetvalue(res, 0, 0)};
	PGresult *set = vs_pg_query(target->conn, "SELECT set_config('TimeZone', $1, false)", 1, params,
	                         "could not set the target session's time zone", err);
	PQclear(res);
	PQclear(set);
	return set != NULL ? 0 : CW_EDB;
}

int cw_verify_source_position(cw_verify_endpoint_t *endpoint, char **position, cw_err_t *err)
{
	if (endpoint->kind == EP_MYSQL_SOURCE)
		return vs_mysql_position(endpoint, position, err);
	if (endpoint->kind == EP_MONGO_SOURCE)
		return vs_mongo_position(endpoint, position, err);
	/*
	 * The insert position, not pg_current_wal_lsn() (the write position):
	 * with synchronous_commit off a transaction is visible before its commit
	 * record is written, so the write position can lie before changes the
	 * re-check has just read, and capture "reached" it without them. A
	 * standby has no insert position; its replay position is the same bound.
	 */
	PGresult *res = vs_pg_query(endpoint->conn,
	                            "SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() "
	                            "ELSE pg_current_wal_insert_lsn() END", 0, NULL,
	                            "could not read the source's WAL position", err);
	if (res == NULL)
		return CW_EDB;
	*position = cw_xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}

/* The columns verify reads from a PostgreSQL target's table: its data, then _version. */
static int pg_target_select(cw_verify_endpoint_t *ep, const cw_target_config_t *target,
                            cw_err_t *err)
{
	const char *params[] = {ep->qtable};
	PGresult *res = vs_pg_query(ep->conn,
		"SELECT attname FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 "
		"AND NOT attisdropped ORDER BY attnum", 1, params,
		"could not read the target table's columns", err);
	if (res == NULL)
		return CW_EDB;
	bool soft = target->delete_mode == CW_DELETE_SOFT;
	cw_buf_t sql = CW_BUF_INIT;
	cw_buf_append_str(&sql, "SELECT ");
	for (int i = 0; i < PQntuples(res); i++) {
		const char *name = PQgetvalue(res, i, 0);
		if (strcmp(name, "_version") == 0 || strcmp(name, "_oplog_id") == 0 ||
		    strcmp(name, "_synced_at") == 0 ||
		    (soft && strcmp(name, target->soft_delete_column) == 0))
			continue;
		char *quoted = PQescapeIdentifier(ep->conn, name, strlen(name));
		cw_buf_appendf(&sql, "%s, ", quoted ? quoted : "\"\"");
		PQfreemem(quoted);
	}
	int rc = 0;
	if (PQntuples(res) == 0)
		rc = cw_err_set(err, CW_ENOTFOUND, DOMAIN, "target \"%s\" holds no table of entity "
		                "\"%s\" yet (%s)", target->name, ep->entity.name, ep->qtable);
	PQclear(res);
	cw_buf_appendf(&sql, "_version FROM %s", ep->qtable);
	if (soft) {
		/* A soft-deleted row is a deleted row. */
		char *quoted = PQescapeIdentifier(ep->conn, target->soft_delete_column,
		                                  strlen(target->soft_delete_column));
		cw_buf_appendf(&sql, " WHERE %s IS NOT TRUE", quoted ? quoted : "\"\"");
		PQfreemem(quoted);
	}
	ep->select = cw_buf_take(&sql);
	return rc;
}

static cw_verify_endpoint_t *pg_target_open(const cw_target_config_t *target,
                                            const cw_entity_t *entity, bool documents,
                                            cw_err_t *err)
{
	cw_verify_endpoint_t *ep = vs_endpoint_new(EP_PG_TARGET, entity, target->decimal_handling);
	ep->side.read = pg_read;
	ep->dec = cw_pgoutput_new();
	ep->target_name = cw_xstrdup(target->name);
	/* {schema}.{entity} (docs/targets-postgres.md); both names are validated identifiers. */
	snprintf(ep->nspname, sizeof ep->nspname, "%s", target->schema ? target->schema : "public");
	snprintf(ep->relname, sizeof ep->relname, "%s", entity->name);
	char what[120];
	snprintf(what, sizeof what, "target \"%s\"", target->name);
	int rc = pg_connect_table(ep, target->url, target->auth, what, err);
	if (rc == 0) {
		const char *meta = target->meta_schema ? target->meta_schema : "cachewarp_meta";
		char *quoted = PQescapeIdentifier(ep->conn, meta, strlen(meta));
		ep->qmeta = cw_xstrdup(quoted ? quoted : "\"\"");
		PQfreemem(quoted);
		if (target->delete_mode == CW_DELETE_SOFT)
			ep->soft_column = cw_xstrdup(target->soft_delete_column);
		/* Its table holds what the column rules made of the fields. */
		if (documents) {
			vs_set_form(ep, FORM_PG_COLUMNS);
			rc = vs_columns_load(ep, err);
		} else {
			rc = pg_target_select(ep, target, err);
		}
	}
	if (rc == 0 && !documents)
		rc = pg_load_key(ep, err);
	if (rc != 0) {
		cw_verify_endpoint_close(ep);
		return NULL;
	}
	return ep;
}

cw_verify_endpoint_t *cw_verify_target_open(const cw_config_t *config,
                                            const cw_target_config_t *target,
                                            const cw_entity_t *entity, cw_err_t *err)
{
	if (cw_entity_name_validate(entity->name, err) != 0)
		return NULL;
	switch (target->type) {
	case CW_TARGET_SQLITE:
		return vs_sqlite_open(target, entity, err);
	case CW_TARGET_POSTGRES: {
		const cw_source_config_t *source = config != NULL ? cw_config_source(config,
		                                                                     entity->source)
		                                                  : NULL;
		/* A table made from documents, or from a MySQL source's rows: the column form. */
		return pg_target_open(target, entity,
		                      source != NULL && source->type != CW_SOURCE_POSTGRES, err);
	}
	case CW_TARGET_MONGODB:
		return vs_mongo_target_open(config, target, entity, err);
	default:
		cw_err_set(err, CW_EINVAL, DOMAIN, "target \"%s\": verify does not read %s targets yet",
		           target->name, cw_target_type_name(target->type));
		return NULL;
	}
}

/* A PostgreSQL target's position of the entity (a run of some entities keeps its own). */
static int pg_target_applied(cw_verify_endpoint_t *ep, int64_t *applied, cw_err_t *err)
{
	char *sql = cw_xasprintf("SELECT coalesce(max(position), 0) FROM %s.positions WHERE "
	                         "entity = $2 AND (target = $1 OR starts_with(target, $1 || '@'))",
	                         ep->qmeta);
	const char *params[] = {ep->target_name, ep->entity.name};
	PGresult *res = vs_pg_query(ep->conn, sql, 2, params, "could not read the target's position",
	                         err);
	free(sql);
	if (res == NULL)
		return CW_EDB;
	*applied = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return 0;
}

int cw_verify_target_applied(cw_verify_endpoint_t *endpoint, int64_t *applied, cw_err_t *err)
{
	*applied = 0;
	if (endpoint->kind == EP_PG_TARGET)
		return pg_target_applied(endpoint, applied, err);
	if (endpoint->kind == EP_MONGO_TARGET)
		return vs_mongo_target_applied(endpoint, applied, err);
	return vs_sqlite_applied(endpoint, applied, err);
}
