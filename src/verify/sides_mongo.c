/* This file contains verify's MongoDB sources and targets (sides_internal.h). */
#include "verify/sides_internal.h"

#include "apply/layout.h"
#include "apply/mongodb_doc.h"
#include "core/auth.h"
#include "core/json.h"
#include "core/mem.h"
#include "core/secret.h"
#include "verify/row_digest.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MONGO_BATCH 5000
#define MONGO_CONNECT_TIMEOUT_MS 10000

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
			rc = cw_err_set(err, CW_ECANCELED, VS_DOMAIN, "verify was canceled");
		else
			rc = each(ctx, doc, err);
	}
	bson_error_t error;
	if (rc == 0 && mongoc_cursor_error(cursor, &error)) {
		char *masked = cw_secret_mask(error.message);
		rc = cw_err_set(err, CW_EDB, VS_DOMAIN, "could not read the collection of entity \"%s\": "
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
	int rc = vs_source_digest(ep, doc_id, text, &row.digest, ctx->columns, err);
	if (rc == 0)
		rc = ctx->on_row(ctx->arg, &row);
	else if (ep->form != FORM_VALUES && rc == CW_EINVAL)
		rc = 0;   /* the target quarantines what it cannot build */
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
		return cw_err_set(err, rc, VS_DOMAIN, "could not connect to %s: %s", what, why.message);
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
		cw_err_set(err, CW_EINVAL, VS_DOMAIN, "%s: bad mongodb url \"%s\": %s", what, masked,
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
		cw_err_set(err, CW_EDB, VS_DOMAIN, "could not reach %s: %s", what, masked);
		free(masked);
		return CW_EDB;
	}
	ep->estimate = (uint64_t)count;
	return 0;
}

cw_verify_endpoint_t *vs_mongo_source_open(const cw_source_config_t *source,
                                           const cw_entity_t *entity,
                                           const cw_target_config_t *target, cw_err_t *err)
{
	cw_decimal_mode_t mode = target->decimal_handling;
	cw_verify_endpoint_t *ep = vs_endpoint_new(EP_MONGO_SOURCE, entity, mode);
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
	if (ep->form == FORM_BSON) {
		cw_verify_row_t row = {doc_id, 0, ep->ncolumns > 0 ? ctx->columns : NULL, ep->ncolumns,
		                       version < ep->entity.version, NULL};
		cw_verify_bson_digest_doc(&ep->bson_form, doc_id, doc, &row.digest, ctx->columns);
		int rc = ctx->on_row(ctx->arg, &row);
		free(doc_id);
		return rc;
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
	uint64_t *columns = cw_xcalloc(ep->ncolumns + 1, sizeof *columns);
	mongo_read_ctx_t ctx = {ep, want, want_arg, on_row, arg, columns, CW_BUF_INIT, CW_BUF_INIT};
	int rc = mongo_scan(&ctx, mongo_target_doc, cancel, err);
	free(columns);
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

cw_verify_endpoint_t *vs_mongo_target_open(const cw_config_t *config,
                                           const cw_target_config_t *target,
                                           const cw_entity_t *entity, cw_err_t *err)
{
	cw_verify_endpoint_t *ep = vs_endpoint_new(EP_MONGO_TARGET, entity, target->decimal_handling);
	ep->side.read = mongo_target_read;
	ep->target_name = cw_xstrdup(target->name);
	char what[120];
	snprintf(what, sizeof what, "target \"%s\"", target->name);
	if (mongo_connect(ep, target->url, target->auth, target->database,
	                  mongo_target_collection(config, target, entity), what, err) != 0) {
		cw_verify_endpoint_close(ep);
		return NULL;
	}
	/* Columns or a table's fields: typed documents (the record comes with the source). */
	if (cw_layout_of(entity) != CW_LAYOUT_DOCUMENT)
		vs_set_form(ep, FORM_BSON);
	return ep;
}

bool cw_verify_token_time(const char *data, char time[17])
{
	size_t len = data != NULL ? strlen(data) : 0;
	if (len >= 18 && data[0] == '8' && data[1] == '2')
		data += 2;   /* MongoDB's key string: type 130 (a timestamp), then its 8 bytes */
	else if (len != 16)
		return false;   /* the test server's token is the timestamp's 8 bytes alone */
	for (size_t i = 0; i < 16; i++) {
		if (!isxdigit((unsigned char)data[i]))
			return false;
		time[i] = (char)tolower((unsigned char)data[i]);
	}
	time[16] = '\0';
	return true;
}

/* The timestamp at a reply's dotted path into *t, *i. */
static bool reply_time(const bson_t *reply, const char *path, uint32_t *t, uint32_t *i)
{
	bson_iter_t iter;
	if (!bson_iter_init(&iter, reply) || !bson_iter_find_descendant(&iter, path, &iter) ||
	    !BSON_ITER_HOLDS_TIMESTAMP(&iter))
		return false;
	bson_iter_timestamp(&iter, t, i);
	return true;
}

bool cw_verify_reply_time(const bson_t *reply, char time[17])
{
	uint32_t t = 0, i = 0;
	if (!reply_time(reply, "operationTime", &t, &i) &&
	    !reply_time(reply, "$clusterTime.clusterTime", &t, &i))
		return false;
	snprintf(time, 17, "%08x%08x", t, i);
	return true;
}

int vs_mongo_position(cw_verify_endpoint_t *ep, char **position, cw_err_t *err)
{
	bson_t *ping = BCON_NEW("ping", BCON_INT32(1));
	bson_t reply;
	bson_error_t error;
	bool ok = mongoc_client_command_simple(ep->client, "admin", ping, NULL, &reply, &error);
	bson_destroy(ping);
	if (!ok) {
		bson_destroy(&reply);
		char *masked = cw_secret_mask(error.message);
		int rc = cw_err_set(err, CW_EDB, VS_DOMAIN, "could not read the source's cluster "
		                    "time: %s", masked);
		free(masked);
		return rc;
	}
	char time[17];
	bool found = cw_verify_reply_time(&reply, time);
	bson_destroy(&reply);
	if (!found)
		return cw_err_set(err, CW_ENOTFOUND, VS_DOMAIN, "the MongoDB source gives no "
		                  "cluster time verify can compare with capture's");
	*position = cw_xstrdup(time);
	return 0;
}

/* The target's position of the entity, `{_id: "<target>:<entity>", position}`. */
int vs_mongo_target_applied(cw_verify_endpoint_t *ep, int64_t *applied, cw_err_t *err)
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
		rc = cw_err_set(err, CW_EDB, VS_DOMAIN, "could not read the target's position: %s",
		                error.message);
	mongoc_cursor_destroy(cursor);
	bson_destroy(filter);
	free(id);
	return rc;
}
