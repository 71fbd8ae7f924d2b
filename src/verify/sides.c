/* This file contains the sides verify compares (sides.h). */
#include "verify/sides.h"

#include "apply/layout.h"
#include "apply/mongodb_doc.h"
#include "capture/pg_rows.h"
#include "capture/pgoutput.h"
#include "core/auth.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/json_fields.h"
#include "core/mem.h"
#include "core/projection.h"
#include "core/secret.h"
#include "hub/hub.h"
#include "verify/row_digest.h"

#include <libpq-fe.h>
#include <mongoc/mongoc.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DOMAIN "verify"
#define FETCH_SQL "FETCH 5000 FROM cw_verify"
#define MONGO_BATCH 5000
#define MONGO_CONNECT_TIMEOUT_MS 10000

typedef enum endpoint_kind {
	EP_PG_SOURCE,
	EP_MONGO_SOURCE,
	EP_MONGO_TARGET,
	EP_SQLITE_TARGET,
	EP_PG_TARGET,
} endpoint_kind_t;

struct cw_verify_endpoint {
	cw_verify_side_t side;
	endpoint_kind_t kind;
	cw_entity_t entity;
	cw_decimal_mode_t mode;
	size_t ncolumns;            /* column digests per row */
	uint64_t estimate;
	/* PostgreSQL source or target */
	PGconn *conn;
	char *qtable;               /* "schema"."table", quoted */
	char *select;               /* the query that reads every row */
	char *target_name;          /* PostgreSQL target: its name, for its positions */
	char *qmeta;                /* PostgreSQL target: its meta schema, quoted */
	char nspname[CW_TABLE_PART_MAX + 1], relname[CW_TABLE_PART_MAX + 1];
	cw_pgoutput_t *dec;
	cw_projection_t *proj;
	/* MongoDB source or target */
	mongoc_client_t *client;
	mongoc_collection_t *collection;
	mongoc_collection_t *positions;   /* target: _cachewarp_position */
	bool exact_documents;       /* source: a whole document as the hub keeps it (not relaxed) */
	/* SQLite target */
	sqlite3 *db;
	char *path;
};

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
	cw_entity_clear(&endpoint->entity);
	free(endpoint);
}

static cw_verify_endpoint_t *endpoint_new(endpoint_kind_t kind, const cw_entity_t *entity,
                                          cw_decimal_mode_t mode)
{
	cw_verify_endpoint_t *ep = cw_xcalloc(1, sizeof *ep);
	ep->kind = kind;
	ep->side.self = ep;
	cw_entity_copy(&ep->entity, entity);
	ep->mode = mode;
	ep->ncolumns = cw_digest_columns(entity);
	return ep;
}

/* ---- PostgreSQL source ---- */

static int pg_error(PGconn *conn, const PGresult *res, const char *what, cw_err_t *err)
{
	const char *msg = res != NULL ? PQresultErrorMessage(res) : "";
	if (msg == NULL || msg[0] == '\0')
		msg = conn != NULL ? PQerrorMessage(conn) : "out of memory";
	char clean[CW_ERR_MESSAGE_LEN];
	cw_hub_clean_message(msg, clean, sizeof clean);
	return cw_err_set(err, CW_EDB, DOMAIN, "%s: %s", what, clean);
}

static PGresult *pg_query(PGconn *conn, const char *sql, int nparams, const char *const *params,
                          const char *what, cw_err_t *err)
{
	PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);
	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		pg_error(conn, res, what, err);
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
		pg_error(conn, res, what, err);
		PQclear(res);
		return NULL;
	}
	return res;
}

static int pg_command(PGconn *conn, const char *sql, const char *what, cw_err_t *err)
{
	PGresult *res = pg_query(conn, sql, 0, NULL, what, err);
	PQclear(res);
	return res != NULL ? 0 : CW_EDB;
}

/* The table's key (primary key, else replica identity index), for doc_id. */
static int pg_load_key(cw_verify_endpoint_t *ep, cw_err_t *err)
{
	const char *params[] = {ep->nspname, ep->relname};
	PGresult *res = pg_query(ep->conn,
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

typedef struct pg_batch_ctx {
	cw_verify_endpoint_t *ep;
	cw_verify_want_fn want;
	void *want_arg;
	cw_verify_row_fn on_row;
	void *arg;
	cw_buf_t projected;
	uint64_t *columns;
} pg_batch_ctx_t;

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
		rc = cw_digest_data(&ep->entity, ep->mode, row.doc_id, data, &vrow.digest,
		                    ctx->columns, err);
		if (rc == 0)
			rc = ctx->on_row(ctx->arg, &vrow);
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
	if (rc == 0)
		rc = pg_command(ep->conn, declare, what, err);
	/* The next batch is fetched while this one is turned into rows. */
	if (rc == 0 && PQsendQuery(ep->conn, FETCH_SQL) != 1)
		rc = pg_error(ep->conn, NULL, what, err);
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
			rc = pg_error(ep->conn, NULL, what, err);
		if (rc == 0 && n > 0)
			rc = pg_rows(&ctx, res, err);
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
		return pg_error(ep->conn, NULL, message, err);
	}
	char *nsp = PQescapeIdentifier(ep->conn, ep->nspname, strlen(ep->nspname));
	char *rel = PQescapeIdentifier(ep->conn, ep->relname, strlen(ep->relname));
	if (nsp != NULL && rel != NULL)
		ep->qtable = cw_xasprintf("%s.%s", nsp, rel);
	PQfreemem(nsp);
	PQfreemem(rel);
	if (ep->qtable == NULL)
		return pg_error(ep->conn, NULL, "could not quote a table name", err);
	return 0;
}

/* ---- MongoDB source ---- */

/* What one document becomes; the arguments of a read, for mongo_scan's callbacks. */
typedef struct mongo_read_ctx {
	cw_verify_endpoint_t *ep;
	cw_verify_want_fn want;
	void *want_arg;
	cw_verify_row_fn on_row;
	void *arg;
	uint64_t *columns;
	cw_buf_t data, text;
} mongo_read_ctx_t;

/* Runs each over every document of ep's collection. 0, each's code, CW_ECANCELED or CW_EDB. */
static int mongo_scan(mongo_read_ctx_t *ctx, int (*each)(mongo_read_ctx_t *, const bson_t *,
                                                          cw_err_t *),
                      cw_cancel_t *cancel, cw_err_t *err)
{
	cw_verify_endpoint_t *ep = ctx->ep;
	bson_t filter = BSON_INITIALIZER;
	bson_t *opts = BCON_NEW("batchSize", BCON_INT32(MONGO_BATCH));
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(ep->collection, &filter, opts, NULL);
	const bson_t *doc;
	uint64_t seen = 0;
	int rc = 0;
	while (rc == 0 && mongoc_cursor_next(cursor, &doc)) {
		if ((++seen & 0xfff) == 0 && cw_cancel_is_set(cancel))
			rc = cw_err_set(err, CW_ECANCELED, DOMAIN, "verify was canceled");
		else
			rc = each(ctx, doc, err);
	}
	bson_error_t error;
	if (rc == 0 && mongoc_cursor_error(cursor, &error)) {
		char *masked = cw_secret_mask(error.message);
		rc = cw_err_set(err, CW_EDB, DOMAIN, "could not read the collection of entity \"%s\": "
		                "%s", ep->entity.name, masked);
		free(masked);
	}
	mongoc_cursor_destroy(cursor);
	bson_destroy(opts);
	return rc;
}

/* A source document: doc_id and data by capture's projection, "doc" relaxed unless exact. */
static int mongo_source_doc(mongo_read_ctx_t *ctx, const bson_t *doc, cw_err_t *err)
{
	cw_verify_endpoint_t *ep = ctx->ep;
	char *doc_id = cw_projection_doc_id_of(doc, NULL);
	cw_buf_reset(&ctx->data);
	/* A document capture cannot project (it quarantines it) is not compared. */
	if (doc_id == NULL || (ctx->want != NULL && !ctx->want(ctx->want_arg, doc_id)) ||
	    cw_projection_bson(ep->proj, doc, &ctx->data, NULL) != 0) {
		free(doc_id);
		return 0;
	}
	char *relaxed = cw_layout_of(&ep->entity) == CW_LAYOUT_DOCUMENT && !ep->exact_documents
	                ? cw_mdoc_relaxed_data(cw_buf_cstr(&ctx->data)) : NULL;
	const char *text = relaxed != NULL ? relaxed : cw_buf_cstr(&ctx->data);
	cw_verify_row_t row = {doc_id, 0, ctx->columns, ep->ncolumns, false, cw_buf_cstr(&ctx->data)};
	int rc = cw_digest_data(&ep->entity, ep->mode, doc_id, text, &row.digest, ctx->columns, err);
	if (rc == 0)
		rc = ctx->on_row(ctx->arg, &row);
	free(relaxed);
	free(doc_id);
	return rc;
}

/*
 * Reads the collection in natural order, each document turned into doc_id
 * and data by capture's projection, a whole document ("doc") in the relaxed
 * form the SQLite target reads (apply_loop.c does the same) unless the
 * target is a MongoDB one.
 */
static int mongo_read(void *self, cw_verify_want_fn want, void *want_arg, cw_verify_row_fn on_row,
                      void *arg, cw_cancel_t *cancel, cw_err_t *err)
{
	cw_verify_endpoint_t *ep = self;
	mongo_read_ctx_t ctx = {ep, want, want_arg, on_row, arg,
	                        cw_xcalloc(ep->ncolumns + 1, sizeof(uint64_t)), CW_BUF_INIT,
	                        CW_BUF_INIT};
	int rc = mongo_scan(&ctx, mongo_source_doc, cancel, err);
	free(ctx.columns);
	cw_buf_free(&ctx.data);
	cw_buf_free(&ctx.text);
	return rc;
}

/*
 * Connects ep to url and opens database.collection (database NULL: the
 * url's); ep->estimate from the server's count. what names the side in
 * messages. 0, CW_EINVAL (bad url) or CW_EDB (unreachable).
 */
static int mongo_connect(cw_verify_endpoint_t *ep, const char *url,
                         const cw_auth_config_t *auth, const char *database,
                         const char *collection, const char *what, cw_err_t *err)
{
	mongoc_init();   /* idempotent */
	bson_error_t error;
	mongoc_uri_t *uri = mongoc_uri_new_with_error(url, &error);
	cw_err_t why;
	int rc = uri != NULL ? cw_auth_mongo_uri(auth, uri, &why) : 0;
	if (rc != 0) {
		mongoc_uri_destroy(uri);
		return cw_err_set(err, rc, DOMAIN, "could not connect to %s: %s", what, why.message);
	}
	if (uri != NULL) {
		mongoc_uri_set_appname(uri, "cachewarp-verify");
		if (!mongoc_uri_has_option(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS))
			mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS,
			                               MONGO_CONNECT_TIMEOUT_MS);
		if (database == NULL)
			database = mongoc_uri_get_database(uri);
		if (database != NULL)
			ep->client = mongoc_client_new_from_uri_with_error(uri, &error);
	}
	if (ep->client == NULL) {
		char *masked = cw_secret_mask(url);
		cw_err_set(err, CW_EINVAL, DOMAIN, "%s: bad mongodb url \"%s\": %s", what, masked,
		           uri == NULL || database != NULL ? error.message : "it names no database");
		free(masked);
		mongoc_uri_destroy(uri);
		return CW_EINVAL;
	}
	mongoc_client_set_error_api(ep->client, MONGOC_ERROR_API_VERSION_2);
	ep->collection = mongoc_client_get_collection(ep->client, database, collection);
	if (ep->kind == EP_MONGO_TARGET)
		ep->positions = mongoc_client_get_collection(ep->client, database,
		                                             "_cachewarp_position");
	mongoc_uri_destroy(uri);
	int64_t count = mongoc_collection_estimated_document_count(ep->collection, NULL, NULL, NULL,
	                                                           &error);
	if (count < 0) {
		char *masked = cw_secret_mask(error.message);
		cw_err_set(err, CW_EDB, DOMAIN, "could not reach %s: %s", what, masked);
		free(masked);
		return CW_EDB;
	}
	ep->estimate = (uint64_t)count;
	return 0;
}

static cw_verify_endpoint_t *mongo_source_open(const cw_source_config_t *source,
                                               const cw_entity_t *entity,
                                               const cw_target_config_t *target, cw_err_t *err)
{
	cw_decimal_mode_t mode = target->decimal_handling;
	cw_verify_endpoint_t *ep = endpoint_new(EP_MONGO_SOURCE, entity, mode);
	ep->side.read = mongo_read;
	ep->exact_documents = target->type == CW_TARGET_MONGODB;
	/* As capture compiles it: a missing path is null, the full document is delivered. */
	ep->proj = cw_projection_new(entity, CW_PROJECTION_MISSING_NULL, err);
	if (ep->proj == NULL)
		goto fail;
	char what[120];
	snprintf(what, sizeof what, "source \"%s\"", source->name);
	if (mongo_connect(ep, source->url, source->auth, source->database, entity->collection, what,
	                  err) != 0)
		goto fail;
	return ep;
fail:
	cw_verify_endpoint_close(ep);
	return NULL;
}

cw_verify_endpoint_t *cw_verify_source_open(const cw_source_config_t *source,
                                            const cw_entity_t *entity,
                                            const cw_target_config_t *target, cw_err_t *err)
{
	if (source->type == CW_SOURCE_MONGODB)
		return mongo_source_open(source, entity, target, err);
	cw_decimal_mode_t mode = target->decimal_handling;
	cw_verify_endpoint_t *ep = endpoint_new(EP_PG_SOURCE, entity, mode);
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

int cw_verify_endpoint_read_like(cw_verify_endpoint_t *target, cw_verify_endpoint_t *source,
                                 cw_err_t *err)
{
	if (target->kind != EP_PG_TARGET || source->conn == NULL)
		return 0;
	PGresult *res = pg_query(source->conn, "SELECT current_setting('TimeZone')", 0, NULL,
	                         "could not read the source's time zone", err);
	if (res == NULL)
		return CW_EDB;
	const char *params[] = {PQgetvalue(res, 0, 0)};
	PGresult *set = pg_query(target->conn, "SELECT set_config('TimeZone', $1, false)", 1, params,
	                         "could not set the target session's time zone", err);
	PQclear(res);
	PQclear(set);
	return set != NULL ? 0 : CW_EDB;
}

int cw_verify_source_position(cw_verify_endpoint_t *endpoint, char lsn[64], cw_err_t *err)
{
	if (endpoint->kind == EP_MONGO_SOURCE)
		return cw_err_set(err, CW_ENOTFOUND, DOMAIN, "a MongoDB source has no position verify "
		                  "can compare with capture's");
	PGresult *res = pg_query(endpoint->conn, "SELECT pg_current_wal_lsn()", 0, NULL,
	                         "could not read the source's WAL position", err);
	if (res == NULL)
		return CW_EDB;
	snprintf(lsn, 64, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}

/* ---- MongoDB target ---- */

/*
 * A MongoDB target's document as the hub keeps a whole document: _id and
 * every field but the target's own `_cachewarp`, in its order, as the
 * canonical extended JSON string in "doc" (core/projection.h). doc_id and
 * the generation come from `_cachewarp`; a document written without it (not
 * by cachewarp) takes the doc_id of its _id and counts as current.
 */
static int mongo_target_doc(mongo_read_ctx_t *ctx, const bson_t *doc, cw_err_t *err)
{
	cw_verify_endpoint_t *ep = ctx->ep;
	bson_iter_t it, sub;
	char *doc_id = NULL;
	int64_t version = ep->entity.version;
	if (bson_iter_init_find(&it, doc, "_cachewarp") && BSON_ITER_HOLDS_DOCUMENT(&it) &&
	    bson_iter_recurse(&it, &sub)) {
		while (bson_iter_next(&sub)) {
			if (strcmp(bson_iter_key(&sub), "doc_id") == 0 && BSON_ITER_HOLDS_UTF8(&sub))
				doc_id = cw_xstrdup(bson_iter_utf8(&sub, NULL));
			else if (strcmp(bson_iter_key(&sub), "version") == 0 && BSON_ITER_HOLDS_NUMBER(&sub))
				version = bson_iter_as_int64(&sub);
		}
	}
	if (doc_id == NULL)
		doc_id = cw_projection_doc_id_of(doc, NULL);
	if (doc_id == NULL || (ctx->want != NULL && !ctx->want(ctx->want_arg, doc_id))) {
		free(doc_id);
		return 0;
	}
	bson_t bare;
	bson_init(&bare);
	bson_copy_to_excluding_noinit(doc, &bare, "_cachewarp", NULL);
	cw_buf_reset(&ctx->text);
	cw_buf_reset(&ctx->data);
	cw_json_t inner, w;
	cw_json_init(&inner, &ctx->text, CW_JSON_NO_NUL);
	cw_json_init(&w, &ctx->data, CW_JSON_NO_NUL);
	cw_json_object_begin(&w, NULL);
	cw_json_key(&w, CW_LAYOUT_DOC_COLUMN, NULL);
	int rc = 0;
	if (cw_json_bson_document(&inner, &bare, CW_JSON_BSON_CANONICAL, err) != 0 ||
	    cw_json_string_len(&w, cw_buf_cstr(&ctx->text), ctx->text.len, err) != 0)
		rc = CW_EINVAL;
	cw_json_object_end(&w, NULL);
	bson_destroy(&bare);
	cw_verify_row_t row = {doc_id, 0, ctx->columns, ep->ncolumns, version < ep->entity.version,
	                       NULL};
	if (rc == 0)
		rc = cw_digest_data(&ep->entity, ep->mode, doc_id, cw_buf_cstr(&ctx->data), &row.digest,
		                    ctx->columns, err);
	if (rc == 0)
		rc = ctx->on_row(ctx->arg, &row);
	free(doc_id);
	return rc;
}

static int mongo_target_read(void *self, cw_verify_want_fn want, void *want_arg,
                             cw_verify_row_fn on_row, void *arg, cw_cancel_t *cancel,
                             cw_err_t *err)
{
	cw_verify_endpoint_t *ep = self;
	uint64_t columns[1];
	mongo_read_ctx_t ctx = {ep, want, want_arg, on_row, arg, columns, CW_BUF_INIT, CW_BUF_INIT};
	int rc = mongo_scan(&ctx, mongo_target_doc, cancel, err);
	cw_buf_free(&ctx.data);
	cw_buf_free(&ctx.text);
	return rc;
}

/* The collection of entity in target: its setting, else the source's collection, else its name. */
static const char *mongo_target_collection(const cw_config_t *config,
                                           const cw_target_config_t *target,
                                           const cw_entity_t *entity)
{
	const cw_entity_t *configured = cw_config_entity(config, entity->name);
	for (size_t i = 0; configured != NULL && i < configured->ntargets; i++)
		if (strcmp(configured->targets[i].name, target->name) == 0 &&
		    configured->targets[i].collection != NULL)
			return configured->targets[i].collection;
	return entity->collection != NULL ? entity->collection : entity->name;
}

static cw_verify_endpoint_t *mongo_target_open(const cw_config_t *config,
                                               const cw_target_config_t *target,
                                               const cw_entity_t *entity, cw_err_t *err)
{
	cw_verify_endpoint_t *ep = endpoint_new(EP_MONGO_TARGET, entity, target->decimal_handling);
	ep->side.read = mongo_target_read;
	ep->target_name = cw_xstrdup(target->name);
	char what[120];
	snprintf(what, sizeof what, "target \"%s\"", target->name);
	if (mongo_connect(ep, target->url, target->auth, target->database,
	                  mongo_target_collection(config, target, entity), what, err) != 0) {
		cw_verify_endpoint_close(ep);
		return NULL;
	}
	return ep;
}

/* The target's position of the entity, `{_id: "<target>:<entity>", position}`. */
static int mongo_target_applied(cw_verify_endpoint_t *ep, int64_t *applied, cw_err_t *err)
{
	char *id = cw_xasprintf("%s:%s", ep->target_name, ep->entity.name);
	bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(ep->positions, filter, NULL, NULL);
	const bson_t *doc;
	bson_iter_t it;
	if (mongoc_cursor_next(cursor, &doc) && bson_iter_init_find(&it, doc, "position") &&
	    BSON_ITER_HOLDS_NUMBER(&it))
		*applied = bson_iter_as_int64(&it);
	bson_error_t error;
	int rc = 0;
	if (mongoc_cursor_error(cursor, &error))
		rc = cw_err_set(err, CW_EDB, DOMAIN, "could not read the target's position: %s",
		                error.message);
	mongoc_cursor_destroy(cursor);
	bson_destroy(filter);
	free(id);
	return rc;
}

/* ---- SQLite target ---- */

static int sqlite_error(cw_verify_endpoint_t *ep, const char *what, cw_err_t *err)
{
	return cw_err_set(err, CW_EDB, DOMAIN, "%s in cache \"%s\": %s", what, ep->path,
	                  ep->db ? sqlite3_errmsg(ep->db) : "out of memory");
}

static void typed_from_sqlite(sqlite3_stmt *stmt, int col, cw_typed_value_t *out)
{
	memset(out, 0, sizeof *out);
	switch (sqlite3_column_type(stmt, col)) {
	case SQLITE_NULL:
		out->kind = CW_TYPED_NULL;
		break;
	case SQLITE_INTEGER:
		out->kind = CW_TYPED_INTEGER;
		out->integer = sqlite3_column_int64(stmt, col);
		break;
	case SQLITE_FLOAT:
		out->kind = CW_TYPED_REAL;
		out->real = sqlite3_column_double(stmt, col);
		break;
	default:
		out->kind = CW_TYPED_TEXT;
		out->text = (const char *)sqlite3_column_text(stmt, col);
		out->text_len = (size_t)sqlite3_column_bytes(stmt, col);
		break;
	}
}

static uint64_t sqlite_value_digest(sqlite3_stmt *stmt, int col)
{
	cw_typed_value_t value;
	typed_from_sqlite(stmt, col, &value);
	return cw_digest_value(&value);
}

/* A dynamic table's "_extra" object: the sum of its pair digests. */
static uint64_t extra_pairs(const char *json, cw_decimal_mode_t mode)
{
	cw_json_fields_t fields;
	cw_json_fields_init(&fields);
	uint64_t sum = 0;
	if (json != NULL && cw_json_fields_parse(&fields, json, NULL) == 0) {
		for (size_t i = 0; i < fields.len; i++) {
			const cw_json_field_t *f = &fields.items[i];
			if (f->kind == CW_JSON_KIND_NULL)
				continue;
			cw_typed_value_t value;
			cw_typed_value_from_field(f, CW_COL_ANY, mode, &value);
			sum += cw_digest_pair(f->key, f->key_len, cw_digest_value(&value));
			free(value.owned);
		}
	}
	cw_json_fields_clear(&fields);
	return sum;
}

static int sqlite_read(void *self, cw_verify_want_fn want, void *want_arg,
                       cw_verify_row_fn on_row, void *arg, cw_cancel_t *cancel, cw_err_t *err)
{
	cw_verify_endpoint_t *ep = self;
	char *sql = cw_xasprintf("SELECT * FROM \"%s\"", ep->entity.name);
	sqlite3_stmt *stmt = NULL;
	int rc = 0;
	if (sqlite3_prepare_v2(ep->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
		rc = sqlite_error(ep, "could not read the table", err);
		goto done;
	}
	int ncols = sqlite3_column_count(stmt);
	int id_col = -1, version_col = -1, doc_col = -1, extra_col = -1;
	int *shape_col = cw_xcalloc(ep->entity.ncolumns + 1, sizeof *shape_col);
	bool *pair_col = cw_xcalloc((size_t)ncols + 1, sizeof *pair_col);
	for (size_t i = 0; i < ep->entity.ncolumns; i++)
		shape_col[i] = -1;
	for (int c = 0; c < ncols; c++) {
		const char *name = sqlite3_column_name(stmt, c);
		if (strcmp(name, "id") == 0)
			id_col = c;
		else if (strcmp(name, "_version") == 0)
			version_col = c;
		else if (strcmp(name, CW_LAYOUT_DOC_COLUMN) == 0 && ep->entity.ncolumns == 0)
			doc_col = c;
		else if (strcmp(name, CW_LAYOUT_EXTRA_COLUMN) == 0)
			extra_col = c;
		else if (!cw_column_name_reserved(name, strlen(name)))
			pair_col[c] = true;
		for (size_t i = 0; i < ep->entity.ncolumns; i++)
			if (strcmp(name, ep->entity.columns[i].name) == 0)
				shape_col[i] = c;
	}
	cw_layout_kind_t layout = cw_layout_of(&ep->entity);
	uint64_t *digests = cw_xcalloc(ep->ncolumns + 1, sizeof *digests);
	uint64_t seen = 0;
	int step;
	while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
		if ((++seen & 0xfff) == 0 && cw_cancel_is_set(cancel)) {
			rc = cw_err_set(err, CW_ECANCELED, DOMAIN, "verify was canceled");
			break;
		}
		const char *doc_id = (const char *)sqlite3_column_text(stmt, id_col);
		if (doc_id == NULL || (want != NULL && !want(want_arg, doc_id)))
			continue;
		cw_verify_row_t row = {doc_id, 0, digests, ep->ncolumns, false, NULL};
		if (version_col >= 0)
			row.stale = sqlite3_column_int64(stmt, version_col) < ep->entity.version;
		if (layout == CW_LAYOUT_DYNAMIC) {
			uint64_t sum = 0;
			for (int c = 0; c < ncols; c++) {
				if (!pair_col[c] || sqlite3_column_type(stmt, c) == SQLITE_NULL)
					continue;
				const char *name = sqlite3_column_name(stmt, c);
				sum += cw_digest_pair(name, strlen(name), sqlite_value_digest(stmt, c));
			}
			if (extra_col >= 0)
				sum += extra_pairs((const char *)sqlite3_column_text(stmt, extra_col),
				                   ep->mode);
			row.digest = cw_digest_row_pairs(doc_id, sum);
			row.columns = NULL;
		} else {
			if (layout == CW_LAYOUT_DOCUMENT) {
				cw_typed_value_t null_value = {0};
				digests[0] = doc_col >= 0 ? sqlite_value_digest(stmt, doc_col)
				                          : cw_digest_value(&null_value);
			}
			for (size_t i = 0; layout == CW_LAYOUT_TYPED && i < ep->entity.ncolumns; i++) {
				cw_typed_value_t null_value = {0};
				digests[i] = shape_col[i] >= 0 ? sqlite_value_digest(stmt, shape_col[i])
				                               : cw_digest_value(&null_value);
			}
			row.digest = cw_digest_row(doc_id, digests, ep->ncolumns);
		}
		if ((rc = on_row(arg, &row)) != 0)
			break;
	}
	if (rc == 0 && step != SQLITE_DONE)
		rc = sqlite_error(ep, "could not read the table", err);
	free(digests);
	free(pair_col);
	free(shape_col);
done:
	sqlite3_finalize(stmt);
	free(sql);
	return rc;
}

static cw_verify_endpoint_t *sqlite_open(const cw_target_config_t *target,
                                         const cw_entity_t *entity, cw_err_t *err)
{
	cw_verify_endpoint_t *ep = endpoint_new(EP_SQLITE_TARGET, entity, target->decimal_handling);
	ep->side.read = sqlite_read;
	/* {dir}/{entity}/db.sqlite (apply/cachedb.h); the name passed cw_entity_name_validate. */
	ep->path = cw_xasprintf("%s/%s/db.sqlite", target->dir, entity->name);
	if (sqlite3_open_v2(ep->path, &ep->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		cw_err_set(err, CW_ENOTFOUND, DOMAIN, "target \"%s\" holds no cache of entity \"%s\" "
		           "yet (%s)", target->name, entity->name, ep->path);
		cw_verify_endpoint_close(ep);
		return NULL;
	}
	sqlite3_busy_timeout(ep->db, 5000);
	int64_t applied = 0;
	if (cw_verify_target_applied(ep, &applied, err) != 0) {
		cw_verify_endpoint_close(ep);
		return NULL;
	}
	return ep;
}

/* The columns verify reads from a PostgreSQL target's table: its data, then _version. */
static int pg_target_select(cw_verify_endpoint_t *ep, const cw_target_config_t *target,
                            cw_err_t *err)
{
	const char *params[] = {ep->qtable};
	PGresult *res = pg_query(ep->conn,
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
                                            const cw_entity_t *entity, cw_err_t *err)
{
	cw_verify_endpoint_t *ep = endpoint_new(EP_PG_TARGET, entity, target->decimal_handling);
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
		rc = pg_target_select(ep, target, err);
	}
	if (rc == 0)
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
		return sqlite_open(target, entity, err);
	case CW_TARGET_POSTGRES:
		return pg_target_open(target, entity, err);
	case CW_TARGET_MONGODB:
		return mongo_target_open(config, target, entity, err);
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
	PGresult *res = pg_query(ep->conn, sql, 2, params, "could not read the target's position",
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
		return mongo_target_applied(endpoint, applied, err);
	sqlite3_stmt *stmt = NULL;
	if (sqlite3_prepare_v2(endpoint->db, "SELECT value FROM metadata WHERE key = 'oplog_id'", -1,
	                       &stmt, NULL) != SQLITE_OK)
		return sqlite_error(endpoint, "could not read the applied position", err);
	int step = sqlite3_step(stmt);
	if (step == SQLITE_ROW)
		*applied = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		return sqlite_error(endpoint, "could not read the applied position", err);
	return 0;
}
