/*
 * The contract every target backend may rely on (apply/target.h), proven on
 * the shared apply loop against an in-memory backend and against the SQLite,
 * PostgreSQL and MongoDB backends (the MongoDB one on the MongoDB test server
 * and on FerretDB), through the same suite: batches arrive
 * coalesced and in order;
 * the position handed to the backend never runs ahead of the data; a failed
 * apply is retried from the stored position and its error keeps the
 * backend's code and domain; a sweep reaches the backend; an entity deleted
 * in the hub is dropped from it; --entity filters; nothing is asked of the
 * backend per entity per heartbeat.
 *
 * A recording backend wraps the one under test: it logs every call, checks
 * coalescing, and injects failures.
 */
#include "sqlite_harness.h"

#include "apply/apply_loop.h"
#include "apply/mongodb_target.h"
#include "apply/postgres_target.h"
#include "apply/sqlite.h"
#include "core/json_fields.h"
#include "hub/oplog_reader.h"

#include <mongoc/mongoc.h>

/* ---- the in-memory backend ---------------------------------------------- */

typedef struct mem_doc {
	char *id;
	char *title;             /* NULL: the column is NULL */
	int64_t version;
} mem_doc_t;

typedef struct mem_entity {
	char *name;
	mem_doc_t *docs;
	size_t ndocs;
	int64_t applied;
} mem_entity_t;

typedef struct mem_backend {
	pthread_mutex_t mutex;   /* the test reads while the loop writes */
	int64_t position;
	mem_entity_t *entities;
	size_t nentities;
} mem_backend_t;

static void *mem_open(const cw_component_ctx_t *ctx, cw_err_t *err)
{
	(void)ctx;
	(void)err;
	mem_backend_t *m = cw_xcalloc(1, sizeof *m);
	pthread_mutex_init(&m->mutex, NULL);
	return m;
}

static void mem_entity_clear(mem_entity_t *e)
{
	for (size_t i = 0; i < e->ndocs; i++) {
		free(e->docs[i].id);
		free(e->docs[i].title);
	}
	free(e->docs);
	e->docs = NULL;
	e->ndocs = 0;
}

static void mem_close(void *self)
{
	mem_backend_t *m = self;
	for (size_t i = 0; i < m->nentities; i++) {
		mem_entity_clear(&m->entities[i]);
		free(m->entities[i].name);
	}
	free(m->entities);
	pthread_mutex_destroy(&m->mutex);
	free(m);
}

static int mem_load_position(void *self, int64_t *position, cw_err_t *err)
{
	(void)err;
	mem_backend_t *m = self;
	pthread_mutex_lock(&m->mutex);
	*position = m->position;
	pthread_mutex_unlock(&m->mutex);
	return 0;
}

static int mem_store_position(void *self, int64_t position, cw_err_t *err)
{
	(void)err;
	mem_backend_t *m = self;
	pthread_mutex_lock(&m->mutex);
	m->position = position;
	pthread_mutex_unlock(&m->mutex);
	return 0;
}

/* Under the mutex. */
static mem_entity_t *mem_entity(mem_backend_t *m, const char *name, bool create)
{
	for (size_t i = 0; i < m->nentities; i++)
		if (strcmp(m->entities[i].name, name) == 0)
			return &m->entities[i];
	if (!create)
		return NULL;
	m->entities = cw_xrealloc(m->entities, (m->nentities + 1) * sizeof *m->entities);
	mem_entity_t *e = &m->entities[m->nentities++];
	memset(e, 0, sizeof *e);
	e->name = cw_xstrdup(name);
	return e;
}

static int mem_entity_open(void *self, cw_hub_t *hub, const cw_entity_t *entity, int64_t *applied,
                           cw_err_t *err)
{
	(void)hub;
	(void)err;
	mem_backend_t *m = self;
	pthread_mutex_lock(&m->mutex);
	*applied = mem_entity(m, entity->name, true)->applied;
	pthread_mutex_unlock(&m->mutex);
	return 0;
}

static int mem_entity_drop(void *self, const char *entity, bool *removed, cw_err_t *err)
{
	(void)err;
	mem_backend_t *m = self;
	pthread_mutex_lock(&m->mutex);
	*removed = false;
	for (size_t i = 0; i < m->nentities; i++) {
		if (strcmp(m->entities[i].name, entity) != 0)
			continue;
		mem_entity_clear(&m->entities[i]);
		free(m->entities[i].name);
		m->entities[i] = m->entities[--m->nentities];
		*removed = true;
		break;
	}
	pthread_mutex_unlock(&m->mutex);
	return 0;
}

/* The write's "title" value: its text without quotes, NULL for null, absent: *present false. */
static char *write_title(const cw_write_t *w, bool *present)
{
	cw_json_fields_t parsed;
	cw_json_fields_init(&parsed);
	const cw_json_fields_t *fields = w->fields;
	if (fields == NULL) {
		assert_int_equal(cw_json_fields_parse(&parsed, w->raw, NULL), 0);
		fields = &parsed;
	}
	const cw_json_field_t *f = cw_json_fields_get(fields, "title", 5);
	char *title = NULL;
	*present = f != NULL;
	if (f != NULL && f->kind == CW_JSON_KIND_STRING)
		title = cw_xstrndup(f->value + 1, f->value_len - 2);
	cw_json_fields_clear(&parsed);
	return title;
}

static int mem_apply(void *self, const cw_entity_t *entity, const cw_write_list_t *writes,
                     int64_t upto, bool *lost, cw_err_t *err)
{
	(void)err;
	mem_backend_t *m = self;
	*lost = false;
	pthread_mutex_lock(&m->mutex);
	mem_entity_t *e = mem_entity(m, entity->name, true);
	for (size_t i = 0; i < writes->len; i++) {
		const cw_write_t *w = &writes->items[i];
		if (w->kind == CW_WRITE_SWEEP) {
			for (size_t d = 0; d < e->ndocs;) {
				if (e->docs[d].version < w->version) {
					free(e->docs[d].id);
					free(e->docs[d].title);
					e->docs[d] = e->docs[--e->ndocs];
				} else {
					d++;
				}
			}
			continue;
		}
		size_t d = 0;
		while (d < e->ndocs && strcmp(e->docs[d].id, w->doc_id) != 0)
			d++;
		if (w->kind == CW_WRITE_DELETE || (w->replace && d < e->ndocs)) {
			if (d < e->ndocs) {
				free(e->docs[d].id);
				free(e->docs[d].title);
				e->docs[d] = e->docs[--e->ndocs];
			}
			if (w->kind == CW_WRITE_DELETE)
				continue;
			d = e->ndocs;
		}
		if (d == e->ndocs) {
			e->docs = cw_xrealloc(e->docs, (e->ndocs + 1) * sizeof *e->docs);
			e->docs[e->ndocs++] = (mem_doc_t){cw_xstrdup(w->doc_id), NULL, 0};
		}
		bool present = false;
		char *title = write_title(w, &present);
		if (present) {
			free(e->docs[d].title);
			e->docs[d].title = title;
		} else {
			free(title);
		}
		e->docs[d].version = w->version;
	}
	e->applied = upto;
	pthread_mutex_unlock(&m->mutex);
	return 0;
}

static const cw_target_backend_t mem_backend = {
	.type = "memory",
	.open = mem_open,
	.close = mem_close,
	.load_position = mem_load_position,
	.store_position = mem_store_position,
	.entity_open = mem_entity_open,
	.entity_drop = mem_entity_drop,
	.apply = mem_apply,
	.housekeep = NULL,
};

static int doc_cmp(const void *a, const void *b)
{
	return strcmp(((const mem_doc_t *)a)->id, ((const mem_doc_t *)b)->id);
}

/* "id|title" lines sorted by id, as harness_cache_rows renders a cache; NULL: no entity. */
static char *mem_rows(mem_backend_t *m, const char *entity)
{
	pthread_mutex_lock(&m->mutex);
	mem_entity_t *e = mem_entity(m, entity, false);
	char *out = NULL;
	if (e != NULL) {
		if (e->ndocs > 1)
			qsort(e->docs, e->ndocs, sizeof *e->docs, doc_cmp);
		cw_buf_t buf = CW_BUF_INIT;
		cw_buf_append_str(&buf, "");
		for (size_t i = 0; i < e->ndocs; i++)
			cw_buf_appendf(&buf, "%s|%s\n", e->docs[i].id,
			               e->docs[i].title != NULL ? e->docs[i].title : "~");
		out = cw_buf_take(&buf);
	}
	pthread_mutex_unlock(&m->mutex);
	return out;
}

/* ---- the recording backend ------------------------------------------------ */

typedef enum { EV_OPEN, EV_APPLY, EV_STORE, EV_DROP } event_kind_t;

typedef struct event {
	event_kind_t kind;
	char entity[64];
	int64_t value;           /* open: the applied id; apply: upto; store: the position */
	bool sweep;
	char docs[512];          /* apply: ",id,id," of the documents written */
} event_t;

typedef struct recorder {
	const cw_target_backend_t *inner;
	void *inner_self;
	pthread_mutex_t mutex;
	event_t *events;
	size_t nevents;
	int fail_applies;        /* applies still to fail */
	char coalesce_error[256];
} recorder_t;

static recorder_t rec;

static void record(event_kind_t kind, const char *entity, int64_t value, bool sweep,
                   const char *docs)
{
	pthread_mutex_lock(&rec.mutex);
	rec.events = cw_xrealloc(rec.events, (rec.nevents + 1) * sizeof *rec.events);
	event_t *ev = &rec.events[rec.nevents++];
	memset(ev, 0, sizeof *ev);
	ev->kind = kind;
	snprintf(ev->entity, sizeof ev->entity, "%s", entity != NULL ? entity : "");
	ev->value = value;
	ev->sweep = sweep;
	snprintf(ev->docs, sizeof ev->docs, "%s", docs != NULL ? docs : "");
	pthread_mutex_unlock(&rec.mutex);
}

static void *rec_open(const cw_component_ctx_t *ctx, cw_err_t *err)
{
	return rec.inner->open(ctx, err);
}

static void rec_close(void *self)
{
	rec.inner->close(self);
}

static int rec_load_position(void *self, int64_t *position, cw_err_t *err)
{
	return rec.inner->load_position(self, position, err);
}

static int rec_store_position(void *self, int64_t position, cw_err_t *err)
{
	int rc = rec.inner->store_position(self, position, err);
	if (rc == 0)
		record(EV_STORE, NULL, position, false, NULL);
	return rc;
}

static int rec_entity_open(void *self, cw_hub_t *hub, const cw_entity_t *entity, int64_t *applied,
                           cw_err_t *err)
{
	int rc = rec.inner->entity_open(self, hub, entity, applied, err);
	if (rc == 0)
		record(EV_OPEN, entity->name, *applied, false, NULL);
	return rc;
}

static int rec_entity_drop(void *self, const char *entity, bool *removed, cw_err_t *err)
{
	record(EV_DROP, entity, 0, false, NULL);
	return rec.inner->entity_drop(self, entity, removed, err);
}

static int rec_apply(void *self, const cw_entity_t *entity, const cw_write_list_t *writes,
                     int64_t upto, bool *lost, cw_err_t *err)
{
	pthread_mutex_lock(&rec.mutex);
	bool fail = rec.fail_applies > 0;
	if (fail)
		rec.fail_applies--;
	/* Coalesced: one write per document between sweeps, none past upto. */
	for (size_t i = 0; i < writes->len; i++) {
		const cw_write_t *a = &writes->items[i];
		if (a->oplog_id > upto)
			snprintf(rec.coalesce_error, sizeof rec.coalesce_error,
			         "%s: write of oplog id %lld past upto %lld", entity->name,
			         (long long)a->oplog_id, (long long)upto);
		for (size_t k = i + 1; a->doc_id != NULL && k < writes->len; k++) {
			if (writes->items[k].kind == CW_WRITE_SWEEP)
				break;
			if (strcmp(a->doc_id, writes->items[k].doc_id) == 0)
				snprintf(rec.coalesce_error, sizeof rec.coalesce_error,
				         "%s: document %s written twice in one batch", entity->name, a->doc_id);
		}
	}
	pthread_mutex_unlock(&rec.mutex);
	if (fail) {
		*lost = false;
		return cw_err_set(err, CW_EIO, "memory", "injected failure applying to \"%s\"",
		                  entity->name);
	}
	bool sweep = false;
	cw_buf_t docs = CW_BUF_INIT;
	cw_buf_append_char(&docs, ',');
	for (size_t i = 0; i < writes->len; i++) {
		sweep = sweep || writes->items[i].kind == CW_WRITE_SWEEP;
		if (writes->items[i].doc_id != NULL)
			cw_buf_appendf(&docs, "%s,", writes->items[i].doc_id);
	}
	int rc = rec.inner->apply(self, entity, writes, upto, lost, err);
	if (rc == 0 && !*lost)
		record(EV_APPLY, entity->name, upto, sweep, cw_buf_cstr(&docs));
	cw_buf_free(&docs);
	return rc;
}

static int rec_housekeep(void *self, cw_apply_loop_t *loop, cw_hub_t *hub, cw_err_t *err)
{
	return rec.inner->housekeep != NULL ? rec.inner->housekeep(self, loop, hub, err) : 0;
}

static const cw_target_backend_t recording_backend = {
	.type = "recording",
	.open = rec_open,
	.close = rec_close,
	.load_position = rec_load_position,
	.store_position = rec_store_position,
	.entity_open = rec_entity_open,
	.entity_drop = rec_entity_drop,
	.apply = rec_apply,
	.housekeep = rec_housekeep,
};

/* ---- the suite ------------------------------------------------------------ */

typedef struct suite {
	cw_testhub_t th;
	const cw_target_backend_t *backend;   /* under test */
	char dir[256];                        /* SQLite: the caches' directory */
	cw_config_t *config;
	cw_metrics_t *metrics;
	cw_component_ctx_t ctx;               /* borrowed by the backend while it is open */
	void *self;
	cw_apply_loop_t *loop;
	cw_cancel_t *cancel;
	pthread_t thread;
	int errors;
	int last_code;
	char last_domain[32];
	char last_message[CW_ERR_MESSAGE_LEN];
	cw_testsrv_t mongo;                   /* the mongodb groups' target server */
	bool ferret;                          /* ... is FerretDB, not the MongoDB test server */
} suite_t;

static suite_t suite;

static void *loop_main(void *arg)
{
	(void)arg;
	for (;;) {
		cw_err_t err = {0};
		int rc = cw_apply_loop_run(suite.loop, suite.cancel, &err);
		if (rc == CW_ECANCELED || cw_cancel_is_set(suite.cancel))
			break;
		pthread_mutex_lock(&rec.mutex);
		suite.errors++;
		suite.last_code = rc;
		snprintf(suite.last_domain, sizeof suite.last_domain, "%s", err.domain);
		snprintf(suite.last_message, sizeof suite.last_message, "%s", err.message);
		pthread_mutex_unlock(&rec.mutex);
		if (cw_cancel_wait_ms(suite.cancel, 50) == CW_ECANCELED)
			break;
	}
	return NULL;
}

/* Starts the loop as target "name" (a fresh consumer) with the --entity filter. */
static void loop_start(const char *name, const char *const *filter, size_t nfilter,
                       int fail_applies)
{
	free(rec.events);
	rec.events = NULL;
	rec.nevents = 0;
	rec.fail_applies = fail_applies;
	rec.coalesce_error[0] = '\0';
	rec.inner = suite.backend;
	snprintf(suite.dir, sizeof suite.dir, "/tmp/cw-contract-%d-%s", (int)getpid(), name);
	harness_rm_rf(suite.dir);
	if (suite.backend == &cw_postgres_backend) {
		/* the target's tables in a schema of its own on the hub's cluster */
		char *yaml = cw_xasprintf("hub:\n  url: %s\ntargets:\n  - name: %s\n    type: postgres\n"
		                          "    url: %s\n    schema: %s\n    write_batch_size: 2\n"
		                          "apply: {batch_size: 4, poll_interval: 200ms}\n",
		                          suite.th.srv.url, name, suite.th.srv.url, name);
		cw_err_t cerr = {0};
		if (cw_config_load_buffer("test.yaml", yaml, strlen(yaml), NULL, &suite.config, &cerr) != 0)
			fail_msg("config: %s", cerr.message);
		free(yaml);
	} else if (suite.backend == &cw_mongodb_backend) {
		/* the target's collections in a database of its own on the test server */
		char *yaml = cw_xasprintf("hub:\n  url: %s\ntargets:\n  - name: %s\n    type: mongodb\n"
		                          "    url: \"%s\"\n    database: %s\n    write_concern: \"1\"\n"
		                          "apply: {batch_size: 4, poll_interval: 200ms}\n",
		                          suite.th.srv.url, name, suite.mongo.url, name);
		cw_err_t cerr = {0};
		if (cw_config_load_buffer("test.yaml", yaml, strlen(yaml), NULL, &suite.config, &cerr) != 0)
			fail_msg("config: %s", cerr.message);
		free(yaml);
	} else {
		suite.config = harness_config(suite.th.srv.url, name, suite.dir, 4);
	}
	suite.metrics = cw_metrics_new();
	suite.ctx = (cw_component_ctx_t){suite.config, suite.config->targets[0].name, filter, nfilter,
	                                 suite.metrics, NULL};
	cw_err_t err = {0};
	suite.self = recording_backend.open(&suite.ctx, &err);
	if (suite.self == NULL)
		fail_msg("open: %s", err.message);
	cw_apply_loop_opts_t opts = {
		.consumer = name, .hub_url = suite.th.srv.url, .entities = filter,
		.nentities = nfilter, .batch_size = 4, .poll_interval_ms = 50, .heartbeat_ms = 50,
		.refresh_ms = 100, .metrics = suite.metrics,
	};
	suite.loop = cw_apply_loop_new(&opts, &recording_backend, suite.self);
	suite.cancel = cw_cancel_new();
	suite.errors = 0;
	assert_int_equal(pthread_create(&suite.thread, NULL, loop_main, NULL), 0);
}

static void loop_stop(void)
{
	cw_cancel_fire(suite.cancel);
	pthread_join(suite.thread, NULL);
	cw_apply_loop_free(suite.loop);
	recording_backend.close(suite.self);
	cw_cancel_free(suite.cancel);
	cw_metrics_free(suite.metrics);
	cw_config_free(suite.config);
	harness_rm_rf(suite.dir);
	assert_string_equal(rec.coalesce_error, "");
}

/* A PostgreSQL target's rows of entity in schema, as harness_cache_rows renders a cache. */
static char *pg_rows(const char *schema, const char *entity)
{
	PGconn *conn = PQconnectdb(suite.th.srv.url);
	char *sql = cw_xasprintf("SELECT id, title FROM \"%s\".\"%s\" ORDER BY id COLLATE \"C\"",
	                         schema, entity);
	PGresult *res = PQexec(conn, sql);
	char *out = NULL;
	if (PQresultStatus(res) == PGRES_TUPLES_OK) {
		cw_buf_t buf = CW_BUF_INIT;
		cw_buf_append_str(&buf, "");
		for (int r = 0; r < PQntuples(res); r++)
			cw_buf_appendf(&buf, "%s|%s\n", PQgetvalue(res, r, 0),
			               PQgetisnull(res, r, 1) ? "~" : PQgetvalue(res, r, 1));
		out = cw_buf_take(&buf);
	}
	PQclear(res);
	free(sql);
	PQfinish(conn);
	return out;
}

/* A MongoDB target's documents of entity in database, as harness_cache_rows renders a cache. */
static char *mongo_rows(const char *database, const char *entity)
{
	mongoc_client_t *client = mongoc_client_new(suite.mongo.url);
	mongoc_collection_t *coll = mongoc_client_get_collection(client, database, entity);
	bson_t *opts = BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}");
	bson_t filter = BSON_INITIALIZER;
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, &filter, opts, NULL);
	cw_buf_t buf = CW_BUF_INIT;
	const bson_t *doc;
	size_t n = 0;
	while (mongoc_cursor_next(cursor, &doc)) {
		bson_iter_t it;
		const char *id = bson_iter_init_find(&it, doc, "_id") && BSON_ITER_HOLDS_UTF8(&it)
		               ? bson_iter_utf8(&it, NULL) : "?";
		const char *title = bson_iter_init_find(&it, doc, "title") && BSON_ITER_HOLDS_UTF8(&it)
		                  ? bson_iter_utf8(&it, NULL) : "~";
		cw_buf_appendf(&buf, "%s|%s\n", id, title);
		n++;
	}
	mongoc_cursor_destroy(cursor);
	bson_destroy(opts);
	mongoc_collection_destroy(coll);
	mongoc_client_destroy(client);
	if (n == 0) {
		cw_buf_free(&buf);
		return NULL;
	}
	return cw_buf_take(&buf);
}

/* The backend's rows of entity ("id|title" lines by id), or NULL when it holds none. */
static char *rows(const char *entity)
{
	if (suite.backend == &mem_backend)
		return mem_rows(suite.self, entity);
	if (suite.backend == &cw_postgres_backend)
		return pg_rows(suite.config->targets[0].schema, entity);
	if (suite.backend == &cw_mongodb_backend)
		return mongo_rows(suite.config->targets[0].database, entity);
	char *sql = cw_xasprintf("SELECT id, title FROM \"%s\" ORDER BY id", entity);
	char *out = harness_cache_rows(suite.dir, entity, sql);
	free(sql);
	return out;
}

static int64_t loop_position(void)
{
	cw_component_status_t status;
	cw_apply_loop_status(suite.loop, &status);
	return strtoll(status.position, NULL, 10);
}

static int64_t hub_head(void)
{
	int64_t head = 0;
	cw_err_t err = {0};
	assert_int_equal(cw_oplog_last_id(suite.th.hub, &head, &err), 0);
	return head;
}

/* Waits until entity's rows are want (NULL: the backend holds none of it). */
static void wait_rows(const char *entity, const char *want)
{
	int64_t deadline = harness_now_ms() + 60000;
	char *got = NULL;
	for (;;) {
		free(got);
		got = rows(entity);
		if ((want == NULL && got == NULL) || (want != NULL && got != NULL && strcmp(got, want) == 0))
			break;
		if (harness_now_ms() > deadline)
			fail_msg("%s: rows \n%s\nwant\n%s", entity, got ? got : "(none)", want ? want : "(none)");
		usleep(20 * 1000);
	}
	free(got);
}

static void wait_position(int64_t position)
{
	int64_t deadline = harness_now_ms() + 60000;
	while (loop_position() < position) {
		if (harness_now_ms() > deadline)
			fail_msg("position %lld, want %lld", (long long)loop_position(), (long long)position);
		usleep(20 * 1000);
	}
}

static void push(cw_change_batch_t *b, cw_op_t op, const char *entity, const char *id,
                 const char *title, int64_t version)
{
	char data[128];
	snprintf(data, sizeof data, "{\"title\":\"%s\"}", title != NULL ? title : "");
	harness_push(b, op, entity, id, op == CW_OP_UPSERT ? data : NULL, version);
}

/*
 * The position handed with each apply never runs ahead of the data: every
 * document of the entity changed after what it held (its applied id when
 * opened, or the previous apply's) up to the apply's position is written by
 * that apply. Applies of one entity come with increasing positions.
 */
static void check_applies(void)
{
	cw_change_batch_t all = CW_CHANGE_BATCH_INIT;
	cw_err_t err = {0};
	assert_int_equal(cw_oplog_fetch(suite.th.hub, NULL, 0, 0, 100000, &all, &err), 0);
	pthread_mutex_lock(&rec.mutex);
	for (size_t i = 0; i < rec.nevents; i++) {
		const event_t *ev = &rec.events[i];
		if (ev->kind != EV_APPLY)
			continue;
		int64_t held = -1;
		for (size_t k = 0; k < i; k++)
			if (strcmp(rec.events[k].entity, ev->entity) == 0 &&
			    (rec.events[k].kind == EV_OPEN || rec.events[k].kind == EV_APPLY))
				held = rec.events[k].value;
		if (held < 0)
			fail_msg("%s applied before it was opened", ev->entity);
		if (ev->value <= held)
			fail_msg("%s: apply up to %lld after holding %lld", ev->entity,
			         (long long)ev->value, (long long)held);
		for (size_t c = 0; c < all.len; c++) {
			const cw_change_t *ch = &all.items[c];
			if (strcmp(ch->entity, ev->entity) != 0 || ch->oplog_id <= held ||
			    ch->oplog_id > ev->value || ch->op == CW_OP_SWEEP)
				continue;
			char needle[80];
			snprintf(needle, sizeof needle, ",%s,", ch->doc_id);
			if (strstr(ev->docs, needle) == NULL)
				fail_msg("%s: apply up to %lld misses document %s (change %lld)", ev->entity,
				         (long long)ev->value, ch->doc_id, (long long)ch->oplog_id);
		}
	}
	pthread_mutex_unlock(&rec.mutex);
	cw_change_batch_free(&all);
}

static size_t count_events(event_kind_t kind, const char *entity)
{
	size_t n = 0;
	pthread_mutex_lock(&rec.mutex);
	for (size_t i = 0; i < rec.nevents; i++)
		if (rec.events[i].kind == kind && (entity == NULL || strcmp(rec.events[i].entity, entity) == 0))
			n++;
	pthread_mutex_unlock(&rec.mutex);
	return n;
}

static void batches_arrive_coalesced_and_in_order(void **state)
{
	(void)state;
	static const char *const cols[] = {"title:text", NULL};
	harness_entity(suite.th.hub, "c_order", cols);
	cw_change_batch_t b = CW_CHANGE_BATCH_INIT;
	for (int round = 0; round < 5; round++) {
		char title[16];
		for (int d = 1; d <= 3; d++) {
			snprintf(title, sizeof title, "r%d", round);
			char id[8];
			snprintf(id, sizeof id, "%d", d);
			push(&b, CW_OP_UPSERT, "c_order", id, title, 1);
		}
	}
	push(&b, CW_OP_DELETE, "c_order", "2", NULL, 1);
	harness_append(suite.th.hub, &b);
	loop_start("c_order_t", NULL, 0, 0);
	wait_rows("c_order", "1|r4\n3|r4\n");
	wait_position(hub_head());
	check_applies();
	loop_stop();
	cw_change_batch_free(&b);
}

static void a_failed_apply_is_retried_from_the_stored_position(void **state)
{
	(void)state;
	static const char *const cols[] = {"title:text", NULL};
	harness_entity(suite.th.hub, "c_retry", cols);
	cw_change_batch_t b = CW_CHANGE_BATCH_INIT;
	for (int d = 1; d <= 9; d++) {
		char id[8];
		snprintf(id, sizeof id, "%d", d);
		push(&b, CW_OP_UPSERT, "c_retry", id, "v", 1);
	}
	harness_append(suite.th.hub, &b);
	loop_start("c_retry_t", NULL, 0, 2);
	wait_rows("c_retry", "1|v\n2|v\n3|v\n4|v\n5|v\n6|v\n7|v\n8|v\n9|v\n");
	wait_position(hub_head());
	pthread_mutex_lock(&rec.mutex);
	int errors = suite.errors, code = suite.last_code;
	char domain[32];
	snprintf(domain, sizeof domain, "%s", suite.last_domain);
	pthread_mutex_unlock(&rec.mutex);
	assert_int_equal(errors, 2);
	assert_int_equal(code, CW_EIO);               /* the backend's code and domain, unchanged */
	assert_string_equal(domain, "memory");
	assert_int_equal(rec.fail_applies, 0);
	check_applies();
	loop_stop();
	cw_change_batch_free(&b);
}

static void a_sweep_reaches_the_backend(void **state)
{
	(void)state;
	static const char *const cols[] = {"title:text", NULL};
	harness_entity(suite.th.hub, "c_sweep", cols);
	cw_change_batch_t b = CW_CHANGE_BATCH_INIT;
	push(&b, CW_OP_UPSERT, "c_sweep", "1", "old", 1);
	push(&b, CW_OP_UPSERT, "c_sweep", "2", "old", 1);
	push(&b, CW_OP_UPSERT, "c_sweep", "1", "new", 2);
	harness_push(&b, CW_OP_SWEEP, "c_sweep", NULL, NULL, 2);
	harness_append(suite.th.hub, &b);
	loop_start("c_sweep_t", NULL, 0, 0);
	wait_rows("c_sweep", "1|new\n");
	/* A backend without transactions shows rows before its apply returns and is recorded. */
	wait_position(hub_head());
	bool swept = false;
	pthread_mutex_lock(&rec.mutex);
	for (size_t i = 0; i < rec.nevents; i++)
		swept = swept || (rec.events[i].kind == EV_APPLY && rec.events[i].sweep &&
		                  strcmp(rec.events[i].entity, "c_sweep") == 0);
	pthread_mutex_unlock(&rec.mutex);
	assert_true(swept);
	check_applies();
	loop_stop();
	cw_change_batch_free(&b);
}

static void an_entity_deleted_in_the_hub_is_dropped(void **state)
{
	(void)state;
	static const char *const cols[] = {"title:text", NULL};
	harness_entity(suite.th.hub, "c_gone", cols);
	cw_change_batch_t b = CW_CHANGE_BATCH_INIT;
	push(&b, CW_OP_UPSERT, "c_gone", "1", "here", 1);
	harness_append(suite.th.hub, &b);
	loop_start("c_gone_t", NULL, 0, 0);
	wait_rows("c_gone", "1|here\n");
	cw_err_t err = {0};
	assert_int_equal(cw_entity_store_delete(suite.th.hub, "c_gone", &err), 0);
	wait_rows("c_gone", NULL);
	/* The data goes before the drop returns and is recorded: wait for the record. */
	int64_t deadline = harness_now_ms() + 60000;
	while (count_events(EV_DROP, "c_gone") < 1) {
		if (harness_now_ms() > deadline)
			fail_msg("c_gone: its storage went, but no drop was recorded");
		usleep(20 * 1000);
	}
	check_applies();
	loop_stop();
	cw_change_batch_free(&b);
}

static void the_entity_filter_keeps_other_entities_out(void **state)
{
	(void)state;
	static const char *const cols[] = {"title:text", NULL};
	harness_entity(suite.th.hub, "c_in", cols);
	harness_entity(suite.th.hub, "c_out", cols);
	cw_change_batch_t b = CW_CHANGE_BATCH_INIT;
	push(&b, CW_OP_UPSERT, "c_out", "1", "no", 1);
	push(&b, CW_OP_UPSERT, "c_in", "1", "yes", 1);
	harness_append(suite.th.hub, &b);
	static const char *const filter[] = {"c_in"};
	loop_start("c_filter_t", filter, 1, 0);
	wait_rows("c_in", "1|yes\n");   /* after c_out's change in the oplog */
	wait_rows("c_out", NULL);
	assert_int_equal(count_events(EV_OPEN, "c_out"), 0);
	assert_int_equal(count_events(EV_APPLY, "c_out"), 0);
	loop_stop();
	cw_change_batch_free(&b);
}

static void an_idle_loop_leaves_the_backend_alone(void **state)
{
	(void)state;
	static const char *const cols[] = {"title:text", NULL};
	harness_entity(suite.th.hub, "c_idle", cols);
	cw_change_batch_t b = CW_CHANGE_BATCH_INIT;
	push(&b, CW_OP_UPSERT, "c_idle", "1", "x", 1);
	harness_append(suite.th.hub, &b);
	loop_start("c_idle_t", NULL, 0, 0);
	wait_rows("c_idle", "1|x\n");
	wait_position(hub_head());
	size_t opens = count_events(EV_OPEN, NULL), applies = count_events(EV_APPLY, NULL);
	usleep(600 * 1000);   /* a dozen heartbeats and several entity refreshes */
	assert_int_equal(count_events(EV_OPEN, NULL), opens);
	assert_int_equal(count_events(EV_APPLY, NULL), applies);
	loop_stop();
	cw_change_batch_free(&b);
}

static int setup_group(const cw_target_backend_t *backend)
{
	memset(&suite, 0, sizeof suite);
	suite.backend = backend;
	pthread_mutex_init(&rec.mutex, NULL);
	return cw_testhub_start(&suite.th, true);
}

static int setup_memory(void **state)
{
	(void)state;
	return setup_group(&mem_backend);
}

static int setup_sqlite(void **state)
{
	(void)state;
	return setup_group(&cw_sqlite_backend);
}

static int setup_postgres(void **state)
{
	(void)state;
	return setup_group(&cw_postgres_backend);
}

static int setup_mongodb(void **state)
{
	(void)state;
	int rc = setup_group(&cw_mongodb_backend);
	if (rc == 0)
		rc = cw_testmongo_start(&suite.mongo);
	return rc;
}

static int setup_ferretdb(void **state)
{
	(void)state;
	int rc = setup_group(&cw_mongodb_backend);
	suite.ferret = true;
	if (rc == 0)
		rc = cw_testferret_start(&suite.mongo);
	return rc;
}

static int teardown(void **state)
{
	(void)state;
	if (suite.ferret)
		cw_testferret_stop(&suite.mongo);
	else
		cw_testmongo_stop(&suite.mongo);
	cw_testhub_stop(&suite.th);
	free(rec.events);
	rec.events = NULL;
	pthread_mutex_destroy(&rec.mutex);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(batches_arrive_coalesced_and_in_order),
		cmocka_unit_test(a_failed_apply_is_retried_from_the_stored_position),
		cmocka_unit_test(a_sweep_reaches_the_backend),
		cmocka_unit_test(an_entity_deleted_in_the_hub_is_dropped),
		cmocka_unit_test(the_entity_filter_keeps_other_entities_out),
		cmocka_unit_test(an_idle_loop_leaves_the_backend_alone),
	};
	int failed = cmocka_run_group_tests_name("memory backend", tests, setup_memory, teardown);
	failed += cmocka_run_group_tests_name("sqlite backend", tests, setup_sqlite, teardown);
	failed += cmocka_run_group_tests_name("postgres backend", tests, setup_postgres, teardown);
	failed += cmocka_run_group_tests_name("mongodb backend", tests, setup_mongodb, teardown);
	failed += cmocka_run_group_tests_name("mongodb backend on FerretDB", tests, setup_ferretdb,
	                                      teardown);
	return failed;
}
