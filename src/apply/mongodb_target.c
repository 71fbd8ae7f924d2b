/*
 * This file contains the MongoDB target's backend (mongodb_target.h): the
 * connection and its reconnect delays, positions, entities and metrics.
 * Writing a batch lives in mongodb_target_apply.c.
 */
#include "apply/mongodb_target.h"

#include "apply/apply_loop.h"
#include "apply/mongodb_target_internal.h"
#include "core/auth.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "core/secret.h"
#include "hub/position_check.h"


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How often the global position is written while batches keep coming. */
#define POSITION_MS 1000
/* The window of the drain-rate gauge. */
#define DRAIN_WINDOW_MS 5000
/* Server selection and connection timeout unless the url sets them. */
#define CONNECT_TIMEOUT_MS 5000

/* MongoDB's AuthenticationFailed. */
#define AUTHENTICATION_FAILED 18

static int64_t now_ms(void)
{
	return cw_clock_now_ms(cw_clock_system());
}

static void set_up(mdb_target_t *t, bool up)
{
	t->connected = up;
	cw_metrics_gauge_set(t->ctx->metrics, "cachewarp_target_up", t->labels, up ? 1 : 0);
}

/*
 * A failed round trip: the next call connects again. The apply loop's run
 * fails meanwhile and the job server calls it again with its backoff and
 * circuit breaker (the retry: settings), so the backlog waits in the hub.
 */
static void went_down(mdb_target_t *t)
{
	t->was_down = true;
	set_up(t, false);
}

static bool auth_refused(const bson_error_t *error)
{
	return (error->domain == MONGOC_ERROR_CLIENT && error->code == MONGOC_ERROR_CLIENT_AUTHENTICATE) ||
	       ((error->domain == MONGOC_ERROR_SERVER || error->domain == MONGOC_ERROR_QUERY) &&
	        error->code == AUTHENTICATION_FAILED);
}

/* Errors of the way to the server rather than of the request. */
static bool unreachable(const bson_error_t *error)
{
	return error->domain == MONGOC_ERROR_STREAM || error->domain == MONGOC_ERROR_SERVER_SELECTION ||
	       (error->domain == MONGOC_ERROR_CLIENT && error->code != MONGOC_ERROR_CLIENT_AUTHENTICATE);
}

int mdb_error(mdb_target_t *t, const bson_error_t *error, const char *what, cw_err_t *err)
{
	/* libmongoc's messages name hosts, never credentials; masked all the same */
	char *message = cw_secret_mask(error->message);
	int rc;
	if (auth_refused(error)) {
		rc = cw_err_set(err, CW_EAUTH, MDB_COMPONENT, "target \"%s\" (%s) refused the "
		                "credentials: %s: fix %s%s%s", t->name, t->url_masked, message,
		                t->cfg->auth ? "authentication \"" : "the user and password of its url",
		                t->cfg->auth ? t->cfg->auth->id : "", t->cfg->auth ? "\"" : "");
		went_down(t);
	} else if (unreachable(error)) {
		rc = cw_err_set(err, CW_EIO, MDB_COMPONENT, "target \"%s\" (%s): %s: %s", t->name,
		                t->url_masked, what, message);
		went_down(t);
	} else {
		rc = cw_err_set(err, CW_EDB, MDB_COMPONENT, "target \"%s\": %s: %s (code %u)", t->name,
		                what, message, error->code);
		if (error->domain == MONGOC_ERROR_SERVER || error->domain == MONGOC_ERROR_QUERY ||
		    error->domain == MONGOC_ERROR_WRITE_CONCERN || error->domain == MONGOC_ERROR_COLLECTION) {
			char code[16];
			snprintf(code, sizeof code, "%u", error->code);
			cw_err_set_server_code(err, code);
		}
	}
	free(message);
	return rc;
}

void mdb_count_writes(mdb_target_t *t, const char *result, size_t n)
{
	if (n == 0)
		return;
	char labels[200];
	snprintf(labels, sizeof labels, "%s,result=\"%s\"", t->labels, result);
	cw_metrics_counter_add(t->ctx->metrics, "cachewarp_target_document_writes_total", labels,
	                       (double)n);
}

mongoc_collection_t *mdb_collection(mdb_target_t *t, const char *name)
{
	return mongoc_client_get_collection(t->client, t->database, name);
}

/* ---- connection ------------------------------------------------------------ */

static int make_client(mdb_target_t *t, cw_err_t *err)
{
	bson_error_t error;
	mongoc_uri_t *uri = mongoc_uri_new_with_error(t->cfg->url, &error);
	if (uri == NULL)
		return cw_err_set(err, CW_EINVAL, MDB_COMPONENT, "target \"%s\": bad mongodb url \"%s\": "
		                  "%s", t->name, t->url_masked, error.message);
	cw_err_t why;
	int rc = cw_auth_mongo_uri(t->cfg->auth, uri, &why);
	if (rc != 0) {
		mongoc_uri_destroy(uri);
		return cw_err_set(err, rc, MDB_COMPONENT, "target \"%s\": could not connect: %s",
		                  t->name, why.message);
	}
	mongoc_uri_set_appname(uri, "cachewarp");
	if (!mongoc_uri_has_option(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS))
		mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, CONNECT_TIMEOUT_MS);
	if (!mongoc_uri_has_option(uri, MONGOC_URI_CONNECTTIMEOUTMS))
		mongoc_uri_set_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS, CONNECT_TIMEOUT_MS);
	if (t->database == NULL) {
		const char *in_url = mongoc_uri_get_database(uri);
		if (in_url == NULL || in_url[0] == '\0') {
			mongoc_uri_destroy(uri);
			return cw_err_set(err, CW_EINVAL, MDB_COMPONENT, "target \"%s\": no database: set "
			                  "targets[].database or name one in the url", t->name);
		}
		t->database = cw_xstrdup(in_url);
	}
	t->client = mongoc_client_new_from_uri_with_error(uri, &error);
	mongoc_uri_destroy(uri);
	if (t->client == NULL)
		return cw_err_set(err, CW_EINVAL, MDB_COMPONENT, "target \"%s\": bad mongodb url \"%s\": "
		                  "%s", t->name, t->url_masked, error.message);
	mongoc_client_set_error_api(t->client, MONGOC_ERROR_API_VERSION_2);
	mongoc_client_set_write_concern(t->client, t->write_concern);
	return 0;
}

const char *mdb_position_write_mode(bool transactions)
{
	return transactions ? "in the batch's transaction"
	                    : "after the bulk write (no transactions on this server; replays are "
	                      "idempotent)";
}

bool mdb_server_runs_transactions(const bson_t *reply)
{
	bson_iter_t it;
	int32_t wire = 0;
	if (bson_iter_init_find(&it, reply, "maxWireVersion") && BSON_ITER_HOLDS_INT32(&it))
		wire = bson_iter_int32(&it);
	bool sessions = bson_iter_init_find(&it, reply, "logicalSessionTimeoutMinutes") &&
	                !BSON_ITER_HOLDS_NULL(&it);
	bool replica_set = bson_iter_init_find(&it, reply, "setName");
	bool sharded = bson_iter_init_find(&it, reply, "msg") && BSON_ITER_HOLDS_UTF8(&it) &&
	               strcmp(bson_iter_utf8(&it, NULL), "isdbgrid") == 0;
	return sessions && ((replica_set && wire >= 7) || (sharded && wire >= 8));
}

static int connect_once(mdb_target_t *t, cw_err_t *err)
{
	int rc = t->client == NULL ? make_client(t, err) : 0;
	if (rc != 0)
		return rc;
	bson_t *hello = BCON_NEW("isMaster", BCON_INT32(1));
	bson_t reply;
	bson_error_t error;
	bool ok = mongoc_client_command_simple(t->client, "admin", hello, NULL, &reply, &error);
	bson_destroy(hello);
	if (!ok) {
		bson_destroy(&reply);
		rc = mdb_error(t, &error, "could not connect", err);
		went_down(t);
		return rc;
	}
	bool transactions = mdb_server_runs_transactions(&reply);
	bson_destroy(&reply);
	cw_log_kv(CW_LOG_INFO, MDB_COMPONENT, t->was_down ? "connected again" : "connected", "target",
	          t->name, "url", t->url_masked, "database", t->database, "position_write",
	          mdb_position_write_mode(transactions), NULL);
	t->transactions = transactions;
	set_up(t, true);
	return 0;
}

/*
 * Connects when not connected. When the server refuses the output of an
 * authentication command, a new client runs the command again and tries
 * once more before the caller backs off.
 */
static int ensure_connected(mdb_target_t *t, cw_err_t *err)
{
	if (t->client != NULL && t->connected)
		return 0;
	int rc = connect_once(t, err);
	if (rc == CW_EAUTH && t->client != NULL && cw_auth_refused(t->cfg->auth)) {
		mongoc_client_destroy(t->client);
		t->client = NULL;
		rc = connect_once(t, err);
	}
	return rc;
}

/* ---- positions --------------------------------------------------------------- */

static char *position_id(const mdb_target_t *t, const char *key)
{
	return cw_xasprintf("%s:%s", t->name, key);
}

/* The checksum of field's value in the position document id: it covers "<id>:<field>". */
static void position_checksum(const char *id, const char *field, int64_t value,
                              char out[CW_POSITION_CHECKSUM_LEN])
{
	char key[CW_ERR_MESSAGE_LEN], text[24];
	snprintf(key, sizeof key, "%s:%s", id, field);
	snprintf(text, sizeof text, "%lld", (long long)value);
	cw_position_checksum(key, text, out);
}

/*
 * Reads field of a position document into *value. False when its checksum
 * (field "<field>_checksum", absent in documents written before) fails: the
 * value is then not to be used, and that is logged with msg.
 */
static bool checked_field(const mdb_target_t *t, const bson_t *doc, const char *id,
                          const char *field, const char *msg, int64_t *value)
{
	bson_iter_t it;
	if (!bson_iter_init_find(&it, doc, field) || !BSON_ITER_HOLDS_NUMBER(&it))
		return true;
	*value = bson_iter_as_int64(&it);
	char name[40], want[CW_POSITION_CHECKSUM_LEN];
	snprintf(name, sizeof name, "%s_checksum", field);
	if (!bson_iter_init_find(&it, doc, name))
		return true;
	position_checksum(id, field, *value, want);
	if (BSON_ITER_HOLDS_UTF8(&it) && strcmp(bson_iter_utf8(&it, NULL), want) == 0)
		return true;
	cw_log_kv(CW_LOG_WARN, MDB_COMPONENT, msg, "target", t->name, "position", id, "field", field,
	          NULL);
	return false;
}

/*
 * *writing: the greatest id a batch was about to write (its intent), else
 * *position. A position that fails its checksum reads as 0 (applied again
 * from the start), an intent that fails as everything (every write guarded).
 */
static int read_position(mdb_target_t *t, const char *key, bool *found, int64_t *position,
                         int64_t *writing, cw_err_t *err)
{
	*found = false;
	*position = 0;
	*writing = 0;
	char *id = position_id(t, key);
	bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
	mongoc_collection_t *coll = mdb_collection(t, MDB_POSITION_COLLECTION);
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, filter, NULL, NULL);
	const bson_t *doc;
	if (mongoc_cursor_next(cursor, &doc)) {
		*found = true;
		if (!checked_field(t, doc, id, "position", "stored position failed its checksum: "
		                   "applying again from the start", position))
			*position = 0;
		if (!checked_field(t, doc, id, "writing_upto", "stored write intent failed its "
		                   "checksum: guarding every write", writing))
			*writing = INT64_MAX;
	}
	*writing = *writing > *position ? *writing : *position;
	bson_error_t error;
	int rc = mongoc_cursor_error(cursor, &error) ? mdb_error(t, &error, "could not read a position",
	                                                         err) : 0;
	mongoc_cursor_destroy(cursor);
	mongoc_collection_destroy(coll);
	bson_destroy(filter);
	free(id);
	return rc;
}

int mdb_store_position(mdb_target_t *t, mongoc_client_session_t *session, const char *key,
                       const char *field, int64_t position, unsigned *labels, cw_err_t *err)
{
	char *id = position_id(t, key);
	char checksum_field[40], checksum[CW_POSITION_CHECKSUM_LEN];
	snprintf(checksum_field, sizeof checksum_field, "%s_checksum", field);
	position_checksum(id, field, position, checksum);
	bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
	bson_t *update = BCON_NEW("$set", "{", "target", BCON_UTF8(t->name), "key", BCON_UTF8(key),
	                          field, BCON_INT64(position), checksum_field, BCON_UTF8(checksum),
	                          "updated_at",
	                          BCON_DATE_TIME(cw_clock_wall_us(cw_clock_system()) / 1000), "}");
	bson_t opts = BSON_INITIALIZER;
	BSON_APPEND_BOOL(&opts, "upsert", true);
	bson_error_t error;
	int rc = 0;
	if (session != NULL && !mongoc_client_session_append(session, &opts, &error))
		rc = mdb_error(t, &error, "could not store a position", err);
	mongoc_collection_t *coll = mdb_collection(t, MDB_POSITION_COLLECTION);
	bson_t reply = BSON_INITIALIZER;
	if (rc == 0 && !mongoc_collection_update_one(coll, filter, update, &opts, &reply, &error)) {
		rc = mdb_error(t, &error, "could not store a position", err);
		if (labels != NULL)
			*labels |= mdb_error_labels(&reply);
	}
	bson_destroy(&reply);
	mongoc_collection_destroy(coll);
	bson_destroy(&opts);
	bson_destroy(update);
	bson_destroy(filter);
	free(id);
	return rc;
}

static int delete_position(mdb_target_t *t, const char *key, cw_err_t *err)
{
	char *id = position_id(t, key);
	bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
	mongoc_collection_t *coll = mdb_collection(t, MDB_POSITION_COLLECTION);
	bson_error_t error;
	int rc = mongoc_collection_delete_one(coll, filter, NULL, NULL, &error)
	       ? 0 : mdb_error(t, &error, "could not delete a position", err);
	mongoc_collection_destroy(coll);
	bson_destroy(filter);
	free(id);
	return rc;
}

static int load_position(void *self, int64_t *position, cw_err_t *err)
{
	mdb_target_t *t = self;
	bool found = false;
	int64_t writing = 0;
	int rc = ensure_connected(t, err);
	if (rc == 0)
		rc = read_position(t, t->scope, &found, position, &writing, err);
	if (rc == 0)
		t->position = t->position_stored = *position;
	return rc;
}

static int write_position(mdb_target_t *t, cw_err_t *err)
{
	if (t->position == t->position_stored)
		return 0;
	int rc = ensure_connected(t, err);
	if (rc == 0)
		rc = mdb_store_position(t, NULL, t->scope, "position", t->position, NULL, err);
	if (rc == 0) {
		t->position_stored = t->position;
		t->position_stored_ms = now_ms();
	}
	return rc;
}

/*
 * The global position only says where reading resumes (each entity's own is
 * stored with its documents): written at most every POSITION_MS.
 */
static int store_position(void *self, int64_t position, cw_err_t *err)
{
	mdb_target_t *t = self;
	t->position = position;
	if (now_ms() - t->position_stored_ms < POSITION_MS)
		return 0;
	return write_position(t, err);
}

/* ---- entities ---------------------------------------------------------------- */

static void strings_free(char **items, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(items[i]);
	free(items);
}

static void entity_free(mdb_entity_t *ent)
{
	cw_table_record_clear(&ent->src);
	strings_free(ent->col_names, ent->ncols);
	free(ent->col_types);
	free(ent->entity);
	free(ent->collection);
}

static void read_record(mdb_entity_t *ent, cw_hub_t *hub, const cw_entity_t *entity)
{
	if (ent->layout != CW_LAYOUT_DYNAMIC || hub == NULL)
		return;
	ent->src_version = entity->version;
	cw_table_record_read(&ent->src, hub, entity->name);
}

/* The settings of entity for the target in config, or NULL. */
static const cw_entity_target_t *entity_settings(const cw_config_t *config, const char *target,
                                                 const char *entity)
{
	const cw_entity_t *e = cw_config_entity(config, entity);
	for (size_t i = 0; e != NULL && i < e->ntargets; i++)
		if (e->targets[i].name != NULL && strcmp(e->targets[i].name, target) == 0)
			return &e->targets[i];
	return NULL;
}

static const cw_entity_target_t *settings_for(const mdb_target_t *t, const char *entity)
{
	return entity_settings(t->ctx->config, t->name, entity);
}

/* The collection of an entity: its setting, else the source's collection, else its name. */
static const char *collection_of(const mdb_target_t *t, const char *name, const char *source_collection)
{
	const cw_entity_target_t *s = settings_for(t, name);
	if (s != NULL && s->collection != NULL)
		return s->collection;
	return source_collection != NULL ? source_collection : name;
}

static mdb_entity_t *known_entity(mdb_target_t *t, const char *name)
{
	for (size_t i = 0; i < t->nentities; i++)
		if (strcmp(t->entities[i].entity, name) == 0)
			return &t->entities[i];
	return NULL;
}

/*
 * Whether the target's entity selection (targets[].entities or .exclude,
 * then entities[].targets.<name>.exclude) leaves entity out.
 */
static bool selection_leaves_out(const cw_target_config_t *target, const cw_config_t *config,
                                 const char *name, const char *collection, const char *table)
{
	const cw_entity_target_t *s = entity_settings(config, target->name, name);
	if (s != NULL && s->exclude)
		return true;
	if (target->entities != NULL)
		return !cw_config_words_has(target->entities, name);
	const char *exclude = target->exclude;
	const char *bare_table = table != NULL && strchr(table, '.') ? strchr(table, '.') + 1 : table;
	return cw_config_words_has(exclude, name) ||
	       (collection != NULL && cw_config_words_has(exclude, collection)) ||
	       (table != NULL && cw_config_words_has(exclude, table)) ||
	       (bare_table != NULL && cw_config_words_has(exclude, bare_table));
}

static bool left_out(const mdb_target_t *t, const char *name, const char *collection,
                     const char *table)
{
	return selection_leaves_out(t->cfg, t->ctx->config, name, collection, table);
}

bool mdb_entity_left_out(const cw_target_config_t *target, const cw_config_t *config,
                         const cw_entity_t *entity)
{
	return selection_leaves_out(target, config, entity->name, entity->collection, entity->table);
}

/*
 * The target's view of entity, made when new. NULL with err: CW_EENTITY
 * when its collection name cannot be written to (that entity fails alone).
 */
static mdb_entity_t *entity_for(mdb_target_t *t, const cw_entity_t *entity, cw_err_t *err)
{
	mdb_entity_t *ent = known_entity(t, entity->name);
	if (ent != NULL)
		return ent;
	bool excluded = left_out(t, entity->name, entity->collection, entity->table);
	const char *collection = collection_of(t, entity->name, entity->collection);
	cw_err_t why = {0};
	if (!excluded && cw_collection_name_validate(collection, &why) != 0)
		return cw_err_set(err, CW_EENTITY, MDB_COMPONENT, "target \"%s\", entity \"%s\": %s: "
		                  "set entities[].targets.%s.collection, or leave the entity out with "
		                  "targets[].exclude", t->name, entity->name, why.message, t->name), NULL;
	if (excluded)
		cw_log_kv(CW_LOG_INFO, MDB_COMPONENT, "entity left out of the target", "target", t->name,
		          "entity", entity->name, NULL);
	t->entities = cw_xrealloc(t->entities, (t->nentities + 1) * sizeof *t->entities);
	ent = &t->entities[t->nentities++];
	memset(ent, 0, sizeof *ent);
	ent->entity = cw_xstrdup(entity->name);
	ent->collection = cw_xstrdup(collection);
	ent->layout = cw_layout_of(entity);
	ent->excluded = excluded;
	ent->col_names = cw_xcalloc(entity->ncolumns + 1, sizeof *ent->col_names);
	ent->col_types = cw_xcalloc(entity->ncolumns + 1, sizeof *ent->col_types);
	for (size_t i = 0; i < entity->ncolumns; i++) {
		ent->col_names[i] = cw_xstrdup(entity->columns[i].name);
		ent->col_types[i] = entity->columns[i].type;
	}
	ent->ncols = entity->ncolumns;
	ent->src_version = -1;
	ent->guard_until = INT64_MAX;   /* until an open says what the hub held */
	return ent;
}

static int collection_exists(mdb_target_t *t, const char *name, bool *exists, cw_err_t *err)
{
	mongoc_database_t *db = mongoc_client_get_database(t->client, t->database);
	bson_t *opts = BCON_NEW("filter", "{", "name", BCON_UTF8(name), "}");
	bson_error_t error;
	char **names = mongoc_database_get_collection_names_with_opts(db, opts, &error);
	int rc = 0;
	*exists = false;
	if (names == NULL)
		rc = mdb_error(t, &error, "could not list collections", err);
	for (size_t i = 0; names != NULL && names[i] != NULL; i++)
		*exists = *exists || strcmp(names[i], name) == 0;
	bson_strfreev(names);
	bson_destroy(opts);
	mongoc_database_destroy(db);
	return rc;
}

static int entity_open(void *self, cw_hub_t *hub, const cw_entity_t *entity, int64_t *applied,
                       cw_err_t *err)
{
	mdb_target_t *t = self;
	*applied = 0;
	mdb_entity_t *ent = entity_for(t, entity, err);
	if (ent == NULL)
		return CW_EENTITY;   /* its collection name: that entity fails alone */
	if (ent->excluded)
		return 0;
	read_record(ent, hub, entity);
	int rc = ensure_connected(t, err);
	bool found = false, exists = false;
	int64_t position = 0, writing = 0;
	if (rc == 0)
		rc = read_position(t, entity->name, &found, &position, &writing, err);
	/* a batch that crashed may have written changes up to its intent: guard them */
	ent->guard_until = rc == 0 ? writing : INT64_MAX;
	if (rc == 0)
		rc = collection_exists(t, ent->collection, &exists, err);
	if (rc != 0)
		return rc;
	if (!exists) {
		/* created by its first write; a position without its collection is stale */
		return found ? delete_position(t, entity->name, err) : 0;
	}
	*applied = position;
	return 0;
}

static int entity_drop(void *self, const char *entity, bool *removed, cw_err_t *err)
{
	mdb_target_t *t = self;
	*removed = false;
	int rc = ensure_connected(t, err);
	if (rc != 0)
		return rc;
	const mdb_entity_t *ent = known_entity(t, entity);
	const cw_entity_t *configured = cw_config_entity(t->ctx->config, entity);
	const char *collection = ent != NULL ? ent->collection
	                       : collection_of(t, entity, configured ? configured->collection : NULL);
	/* a collection the target never wrote may be someone else's: only its position goes */
	if ((ent != NULL && ent->excluded) ||
	    (ent == NULL && left_out(t, entity, configured ? configured->collection : NULL,
	                             configured ? configured->table : NULL)))
		return delete_position(t, entity, err);
	bool exists = false;
	if (cw_collection_name_validate(collection, NULL) == 0 &&
	    (rc = collection_exists(t, collection, &exists, err)) != 0)
		return rc;
	if (exists) {
		mongoc_collection_t *coll = mdb_collection(t, collection);
		bson_error_t error;
		if (!mongoc_collection_drop(coll, &error))
			rc = mdb_error(t, &error, "could not drop a collection", err);
		mongoc_collection_destroy(coll);
		*removed = rc == 0;
	}
	if (rc == 0)
		rc = delete_position(t, entity, err);
	if (rc == 0 && *removed)
		cw_log_kv(CW_LOG_INFO, MDB_COMPONENT, "entity deleted: its collection dropped", "target",
		          t->name, "entity", entity, "collection", collection, NULL);
	return rc;
}

static void drain_rate(mdb_target_t *t, int64_t changes)
{
	int64_t now = now_ms();
	if (t->drain_started_ms == 0)
		t->drain_started_ms = now;
	t->drain_changes += changes;
	int64_t elapsed = now - t->drain_started_ms;
	if (elapsed < DRAIN_WINDOW_MS)
		return;
	cw_metrics_gauge_set(t->ctx->metrics, "cachewarp_target_drain_rate", t->labels,
	                     (double)t->drain_changes * 1000.0 / (double)elapsed);
	t->drain_started_ms = now;
	t->drain_changes = 0;
}

static int apply(void *self, const cw_entity_t *entity, const cw_write_list_t *writes,
                 int64_t upto, bool *lost, cw_err_t *err)
{
	mdb_target_t *t = self;
	*lost = false;
	mdb_entity_t *ent = entity_for(t, entity, err);
	if (ent == NULL)
		return CW_EENTITY;   /* its collection name: that entity fails alone */
	if (ent->excluded)
		return 0;
	if (ent->layout == CW_LAYOUT_DYNAMIC) {
		/*
		 * Open it again, which reads the source's record of its columns,
		 * when the record was missing at open (the source writes it before
		 * the rows) or a write is of a newer generation than the record.
		 */
		bool reread = ent->src.n == 0 && !ent->waited_for_record;
		ent->waited_for_record = ent->waited_for_record || reread;
		for (size_t i = 0; i < writes->len && !reread; i++)
			reread = writes->items[i].version > ent->src_version;
		if (reread) {
			*lost = true;
			return 0;
		}
	}
	int rc = ensure_connected(t, err);
	if (rc != 0)   /* unreachable: every write of the batch failed, and waits in the hub */
		mdb_count_writes(t, "failed", writes->len);
	if (rc == 0)
		rc = mdb_apply(t, ent, writes, upto, err);
	if (rc == 0) {
		drain_rate(t, (int64_t)writes->changes);
		cw_metrics_gauge_set(t->ctx->metrics, "cachewarp_target_last_apply_timestamp_seconds",
		                     t->labels, (double)cw_clock_wall_us(cw_clock_system()) / 1e6);
	}
	return rc;
}

/* Reads a newer source record; writes the global position now and then; the drain rate. */
static int housekeep(void *self, cw_apply_loop_t *loop, cw_hub_t *hub, cw_err_t *err)
{
	mdb_target_t *t = self;
	for (size_t i = 0; i < t->nentities; i++) {
		mdb_entity_t *ent = &t->entities[i];
		const cw_entity_t *entity = cw_apply_loop_entity(loop, ent->entity);
		if (entity != NULL && ent->layout == CW_LAYOUT_DYNAMIC && ent->src_version != entity->version)
			read_record(ent, hub, entity);
	}
	drain_rate(t, 0);
	if (t->connected && now_ms() - t->position_stored_ms >= POSITION_MS)
		return write_position(t, err);
	return 0;
}

/* ---- the backend --------------------------------------------------------------- */

static void *mdb_open(const cw_component_ctx_t *ctx, cw_err_t *err)
{
	const cw_target_config_t *config = cw_config_target(ctx->config, ctx->name);
	if (config == NULL || config->type != CW_TARGET_MONGODB)
		return cw_err_set(err, CW_EINVAL, MDB_COMPONENT, "no mongodb target \"%s\" in the "
		                  "configuration", ctx->name), NULL;
	if (cw_identifier_validate("target name", ctx->name, err) != 0)
		return NULL;
	if (config->url == NULL || config->url[0] == '\0')
		return cw_err_set(err, CW_EINVAL, MDB_COMPONENT, "target \"%s\": url is required",
		                  ctx->name), NULL;
	mongoc_init();   /* idempotent; the driver's global state lives until exit */
	mdb_target_t *t = cw_xcalloc(1, sizeof *t);
	t->name = cw_xstrdup(ctx->name);
	t->ctx = ctx;
	t->cfg = config;
	t->url_masked = cw_secret_mask(config->url);
	t->database = cw_xstrdup(config->database);
	char *scope = cw_component_scope(ctx->entities, ctx->nentities);
	t->scope = cw_xasprintf("*%s", scope);
	free(scope);
	t->write_concern = mongoc_write_concern_new();
	const char *wc = config->write_concern != NULL ? config->write_concern : "majority";
	if (strcmp(wc, "majority") == 0)
		mongoc_write_concern_set_wmajority(t->write_concern, 0);
	else
		mongoc_write_concern_set_w(t->write_concern, (int32_t)strtol(wc, NULL, 10));
	snprintf(t->labels, sizeof t->labels, "target=\"%s\"", ctx->name);
	cw_target_declare_metrics(ctx->metrics);
	cw_metrics_declare(ctx->metrics, "cachewarp_target_document_writes_total", CW_METRIC_COUNTER,
	                   "Document writes a mongodb target sent, by result: ok, skipped (a newer "
	                   "version was there), quarantined, failed.");
	cw_metrics_declare(ctx->metrics, "cachewarp_target_bulk_write_duration_seconds",
	                   CW_METRIC_HISTOGRAM, "Round trips of a mongodb target's bulk writes.");
	cw_metrics_declare(ctx->metrics, "cachewarp_target_drain_rate", CW_METRIC_GAUGE,
	                   "Hub changes a target applied per second over the last 5 seconds.");
	return t;
}

static void mdb_close(void *self)
{
	mdb_target_t *t = self;
	if (t == NULL)
		return;
	if (t->client != NULL && t->connected)
		write_position(t, NULL);
	mongoc_client_destroy(t->client);
	mongoc_write_concern_destroy(t->write_concern);
	for (size_t i = 0; i < t->nentities; i++)
		entity_free(&t->entities[i]);
	free(t->entities);
	free(t->scope);
	free(t->database);
	free(t->url_masked);
	free(t->name);
	free(t);
}

/* Seed 003's reconnect delays: 1 s, 5 s, 15 s, 30 s, then every 60 s. */
static const int64_t reconnect_ms[] = {1000, 5000, 15000, 30000, 60000};

const cw_target_backend_t cw_mongodb_backend = {
	.type = "mongodb",
	.exact_bson = true,
	.reconnect_ms = reconnect_ms,
	.nreconnect = sizeof reconnect_ms / sizeof reconnect_ms[0],
	.open = mdb_open,
	.close = mdb_close,
	.load_position = load_position,
	.store_position = store_position,
	.entity_open = entity_open,
	.entity_drop = entity_drop,
	.apply = apply,
	.housekeep = housekeep,
};
