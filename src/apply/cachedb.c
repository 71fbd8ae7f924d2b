/* This file contains the cache DB manager of the SQLite target (cachedb.h). */
#define _XOPEN_SOURCE 700
#include "apply/cachedb.h"

#include "apply/layout.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "hub/position_check.h"

#include <errno.h>
#include <pthread.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define COMPONENT "sqlite"
#define BUSY_TIMEOUT_MS 5000

/*
 * The checkpointer: a thread that copies caches' WAL into their database
 * files with its own short-lived connection (PRAGMA wal_checkpoint(PASSIVE)),
 * so the apply thread never waits for a checkpoint's page writes and fsync.
 * SQLite lets a checkpoint run beside the writer and the readers.
 */
typedef struct checkpointer {
	pthread_t thread;
	pthread_mutex_t mutex;      /* guards the fields below; never held while calling SQLite */
	pthread_cond_t cond;
	char **paths;               /* files waiting for a checkpoint, owned */
	size_t npaths;
	bool stop;
	uint64_t done;              /* checkpoints run, for tests */
} checkpointer_t;

struct cw_cachedb {
	char *dir;
	int64_t idle_timeout_ms;
	cw_decimal_mode_t decimal_mode;
	sqlite3 *meta;              /* {dir}/metadata.sqlite */
	sqlite3_stmt *position_set; /* prepared at the first cw_cachedb_position_set */
	cw_cache_t **caches;        /* open caches, owned */
	size_t ncaches;
	checkpointer_t checkpointer;
};

/* WAL frames after which a cache's WAL is handed to the checkpointer. */
#define CHECKPOINT_FRAMES 1000
/* WAL frames after which the apply thread checkpoints itself (the checkpointer is behind). */
#define CHECKPOINT_INLINE_FRAMES 20000

static void *checkpointer_main(void *arg)
{
	checkpointer_t *c = arg;
	pthread_mutex_lock(&c->mutex);
	for (;;) {
		while (!c->stop && c->npaths == 0)
			pthread_cond_wait(&c->cond, &c->mutex);
		if (c->stop)
			break;
		char *path = c->paths[--c->npaths];
		pthread_mutex_unlock(&c->mutex);
		sqlite3 *conn = NULL;
		/* No CREATE: a file moved aside or removed meanwhile is simply skipped. */
		if (sqlite3_open_v2(path, &conn, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK) {
			int persist = 1;
			sqlite3_busy_timeout(conn, BUSY_TIMEOUT_MS);
			sqlite3_file_control(conn, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
			sqlite3_exec(conn, "PRAGMA wal_checkpoint(PASSIVE)", NULL, NULL, NULL);
		}
		sqlite3_close(conn);
		free(path);
		pthread_mutex_lock(&c->mutex);
		c->done++;
	}
	pthread_mutex_unlock(&c->mutex);
	return NULL;
}

static void checkpointer_start(checkpointer_t *c)
{
	pthread_mutex_init(&c->mutex, NULL);
	pthread_cond_init(&c->cond, NULL);
	if (pthread_create(&c->thread, NULL, checkpointer_main, c) != 0)
		abort();
}

static void checkpointer_stop(checkpointer_t *c)
{
	pthread_mutex_lock(&c->mutex);
	c->stop = true;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->mutex);
	pthread_join(c->thread, NULL);
	for (size_t i = 0; i < c->npaths; i++)
		free(c->paths[i]);
	free(c->paths);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->mutex);
}

/* Queues path (copied) unless it is queued already. */
static void checkpointer_request(checkpointer_t *c, const char *path)
{
	pthread_mutex_lock(&c->mutex);
	bool queued = false;
	for (size_t i = 0; i < c->npaths && !queued; i++)
		queued = strcmp(c->paths[i], path) == 0;
	if (!queued) {
		c->paths = cw_xrealloc(c->paths, (c->npaths + 1) * sizeof *c->paths);
		c->paths[c->npaths++] = cw_xstrdup(path);
		pthread_cond_signal(&c->cond);
	}
	pthread_mutex_unlock(&c->mutex);
}

/* Records the WAL's size after each commit (replaces SQLite's auto-checkpoint). */
static int wal_hook(void *arg, sqlite3 *conn, const char *schema, int frames)
{
	(void)conn;
	(void)schema;
	((cw_cache_t *)arg)->wal_frames = frames;
	return SQLITE_OK;
}

void cw_cachedb_committed(cw_cachedb_t *db, cw_cache_t *cache)
{
	if (cache->wal_frames >= CHECKPOINT_INLINE_FRAMES)
		sqlite3_wal_checkpoint_v2(cache->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	else if (cache->wal_frames >= CHECKPOINT_FRAMES)
		checkpointer_request(&db->checkpointer, cache->path);
}

uint64_t cw_cachedb_checkpoints(cw_cachedb_t *db)
{
	pthread_mutex_lock(&db->checkpointer.mutex);
	uint64_t done = db->checkpointer.done;
	pthread_mutex_unlock(&db->checkpointer.mutex);
	return done;
}

bool cw_cachedb_is_corruption(int sqlite_rc)
{
	int primary = sqlite_rc & 0xff;
	return primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB;
}

static int sql_error(sqlite3 *conn, int rc, const char *what, const char *subject, cw_err_t *err)
{
	cw_err_set(err, CW_EDB, COMPONENT, "%s \"%s\": %s", what, subject,
	           conn != NULL ? sqlite3_errmsg(conn) : sqlite3_errstr(rc));
	return CW_EDB;
}

/* Runs sql (no rows expected); the SQLite result code. */
static int exec_rc(sqlite3 *conn, const char *sql)
{
	return sqlite3_exec(conn, sql, NULL, NULL, NULL);
}

static int make_dir(const char *path, cw_err_t *err)
{
	if (mkdir(path, 0755) == 0 || errno == EEXIST)
		return 0;
	return cw_err_set(err, CW_EIO, COMPONENT, "could not create directory \"%s\": %s", path,
	                  strerror(errno));
}

/* Sets the pragmas every connection of ours runs with. */
static int configure(sqlite3 *conn)
{
	sqlite3_busy_timeout(conn, BUSY_TIMEOUT_MS);
	int rc = exec_rc(conn, "PRAGMA journal_mode=WAL");
	if (rc == SQLITE_OK)
		rc = exec_rc(conn, "PRAGMA synchronous=NORMAL");
	if (rc == SQLITE_OK)
		/*
		 * 16 MiB of pages per connection. 32 MiB bought random updates of a
		 * 1M-row cache 0-8% (the OS keeps the file's pages too) and cost the
		 * daemon 16 MiB of RSS (BENCHMARKS.md, "Fewer hub transactions").
		 */
		rc = exec_rc(conn, "PRAGMA cache_size=-16384");
	/* Keep -wal and -shm after we close, so read-only readers can still open the file. */
	int persist = 1;
	sqlite3_file_control(conn, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
	return rc;
}

/* Moves path and its -wal/-shm to path.corrupt-<ms>[...]. */
static void move_aside(const char *path)
{
	int64_t ms = cw_clock_wall_us(cw_clock_system()) / 1000;
	static const char *const suffixes[] = {"", "-wal", "-shm"};
	for (size_t i = 0; i < 3; i++) {
		char *from = cw_xasprintf("%s%s", path, suffixes[i]);
		char *to = cw_xasprintf("%s.corrupt-%lld%s", path, (long long)ms, suffixes[i]);
		if (rename(from, to) != 0 && errno != ENOENT)
			cw_log_warn(COMPONENT, "could not move \"%s\" aside: %s", from, strerror(errno));
		free(from);
		free(to);
	}
}

/* ---- metadata.sqlite ---- */

static int open_meta(cw_cachedb_t *db, bool retry, cw_err_t *err)
{
	char *path = cw_xasprintf("%s/metadata.sqlite", db->dir);
	int rc = sqlite3_open_v2(path, &db->meta, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (rc == SQLITE_OK)
		rc = configure(db->meta);
	if (rc == SQLITE_OK)
		rc = exec_rc(db->meta, "CREATE TABLE IF NOT EXISTS metadata "
		                       "(key TEXT PRIMARY KEY, value TEXT)");
	if (rc != SQLITE_OK && cw_cachedb_is_corruption(rc) && retry) {
		cw_log_kv(CW_LOG_WARN, COMPONENT, "metadata database corrupt: moved aside, "
		          "starting from position 0", "path", path, NULL);
		sqlite3_close_v2(db->meta);
		db->meta = NULL;
		move_aside(path);
		free(path);
		return open_meta(db, false, err);
	}
	int result = 0;
	if (rc != SQLITE_OK) {
		result = sql_error(db->meta, rc, "could not open metadata database", path, err);
		sqlite3_close_v2(db->meta);
		db->meta = NULL;
	}
	free(path);
	return result;
}

void cw_cachedb_process_init(void)
{
	/* SQLITE_MISUSE once SQLite is initialized: the setting stays as it was. */
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

cw_cachedb_t *cw_cachedb_open(const char *dir, int64_t idle_timeout_ms, cw_err_t *err)
{
	cw_cachedb_t *db = cw_xcalloc(1, sizeof *db);
	db->dir = cw_xstrdup(dir);
	db->idle_timeout_ms = idle_timeout_ms > 0 ? idle_timeout_ms : 60000;
	checkpointer_start(&db->checkpointer);
	if (make_dir(db->dir, err) != 0 || open_meta(db, true, err) != 0) {
		cw_cachedb_close(db);
		return NULL;
	}
	return db;
}

static void cache_free(cw_cache_t *cache);

void cw_cachedb_set_decimal_mode(cw_cachedb_t *db, cw_decimal_mode_t mode)
{
	db->decimal_mode = mode;
}

void cw_cachedb_close(cw_cachedb_t *db)
{
	if (db == NULL)
		return;
	checkpointer_stop(&db->checkpointer);
	for (size_t i = 0; i < db->ncaches; i++)
		cache_free(db->caches[i]);
	free(db->caches);
	sqlite3_finalize(db->position_set);
	sqlite3_close_v2(db->meta);
	free(db->dir);
	free(db);
}

int cw_cachedb_position_get(cw_cachedb_t *db, int64_t *position, cw_err_t *err)
{
	sqlite3_stmt *stmt = NULL;
	char value[32] = "", checksum[CW_POSITION_CHECKSUM_LEN] = "";
	bool found = false, checked = false;
	int rc = sqlite3_prepare_v2(db->meta, "SELECT key, value FROM metadata "
	                            "WHERE key IN ('position', 'position_checksum')", -1, &stmt, NULL);
	*position = 0;
	while (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		const char *key = (const char *)sqlite3_column_text(stmt, 0);
		const char *text = (const char *)sqlite3_column_text(stmt, 1);
		bool is_position = key != NULL && strcmp(key, "position") == 0;
		snprintf(is_position ? value : checksum, is_position ? sizeof value : sizeof checksum,
		         "%s", text ? text : "");
		found |= is_position;
		checked |= !is_position;
		rc = SQLITE_OK;
	}
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE)
		return sql_error(db->meta, rc, "could not read the position from", "metadata.sqlite", err);
	if (found && cw_position_verify("position", value, checked ? checksum : NULL) ==
	             CW_POSITION_CORRUPT) {
		char *path = cw_xasprintf("%s/metadata.sqlite", db->dir);
		cw_log_kv(CW_LOG_WARN, COMPONENT, "stored position failed its checksum: starting from "
		          "position 0", "path", path, NULL);
		free(path);
	} else if (found) {
		*position = strtoll(value, NULL, 10);
	}
	return 0;
}

int cw_cachedb_position_set(cw_cachedb_t *db, int64_t position, cw_err_t *err)
{
	/* Once per applied batch: prepared once, not parsed again each time. */
	char value[32], checksum[CW_POSITION_CHECKSUM_LEN];
	snprintf(value, sizeof value, "%lld", (long long)position);
	cw_position_checksum("position", value, checksum);
	int rc = SQLITE_OK;
	if (db->position_set == NULL)
		rc = sqlite3_prepare_v3(db->meta, "INSERT INTO metadata (key, value) "
		                        "VALUES ('position', ?1), ('position_checksum', ?2) "
		                        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
		                        -1, SQLITE_PREPARE_PERSISTENT, &db->position_set, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(db->position_set, 1, value, -1, SQLITE_STATIC);
		sqlite3_bind_text(db->position_set, 2, checksum, -1, SQLITE_STATIC);
		rc = sqlite3_step(db->position_set) == SQLITE_DONE ? SQLITE_OK
		                                                   : sqlite3_errcode(db->meta);
		sqlite3_reset(db->position_set);
		sqlite3_clear_bindings(db->position_set);
	}
	if (rc != SQLITE_OK)
		return sql_error(db->meta, rc, "could not store the position in", "metadata.sqlite", err);
	return 0;
}

/* ---- one cache ---- */

void cw_cache_keymap_clear(cw_cache_keymap_t *keymap)
{
	free(keymap->key_lens);
	free(keymap->keys);
	free(keymap->field_of);
	free(keymap->extra);
	free(keymap->present);
	memset(keymap, 0, sizeof *keymap);
}

static void cache_close_conn(cw_cache_t *cache)
{
	cw_cache_keymap_clear(&cache->keymap);
	for (size_t i = 0; i < CW_CACHE_STMTS; i++) {
		sqlite3_finalize(cache->stmts[i].stmt);
		free(cache->stmts[i].key);
	}
	memset(cache->stmts, 0, sizeof cache->stmts);
	sqlite3_finalize(cache->del);
	sqlite3_finalize(cache->sweep);
	sqlite3_finalize(cache->set_applied);
	sqlite3_finalize(cache->begin);
	sqlite3_finalize(cache->commit);
	cache->del = cache->sweep = cache->set_applied = cache->begin = cache->commit = NULL;
	sqlite3_close_v2(cache->db);
	cache->db = NULL;
	for (size_t i = 0; i < cache->ncolumns; i++)
		free(cache->columns[i]);
	free(cache->columns);
	free(cache->types);
	cache->columns = NULL;
	cache->types = NULL;
	cache->ncolumns = 0;
}

static void cache_free(cw_cache_t *cache)
{
	if (cache == NULL)
		return;
	cache_close_conn(cache);
	free(cache->name);
	free(cache->path);
	free(cache);
}

static void add_column(cw_cache_t *cache, const char *name, cw_column_type_t type)
{
	cache->columns = cw_xrealloc(cache->columns, (cache->ncolumns + 1) * sizeof *cache->columns);
	cache->types = cw_xrealloc(cache->types, (cache->ncolumns + 1) * sizeof *cache->types);
	cache->columns[cache->ncolumns] = cw_xstrdup(name);
	cache->types[cache->ncolumns] = type;
	cache->ncolumns++;
}

/*
 * The declared type of a shape column. Under decimal handling "double" a
 * number column is REAL and an integer column INTEGER; otherwise they have no
 * declared type, because SQLite's REAL and INTEGER affinities would turn the
 * exact digits stored as TEXT back into a rounded REAL.
 */
static const char *sqlite_type(cw_column_type_t type, cw_decimal_mode_t mode)
{
	switch (type) {
	case CW_COL_BOOL: return " INTEGER";
	case CW_COL_INTEGER: return mode == CW_DECIMAL_DOUBLE ? " INTEGER" : "";
	case CW_COL_NUMBER: return mode == CW_DECIMAL_DOUBLE ? " REAL" : "";
	case CW_COL_TEXT:
	case CW_COL_JSONB: return " TEXT";
	case CW_COL_ANY: return "";
	}
	return "";
}

/* The shape as stored in metadata 'columns', to notice a reused name with another shape. */
static char *shape_text(const cw_entity_t *entity)
{
	char *columns = cw_entity_columns_json(entity);
	char *text = cw_xasprintf("{\"kind\":\"%s\",\"columns\":%s}",
	                          cw_layout_name(cw_layout_of(entity)), columns);
	free(columns);
	return text;
}

/* CREATE TABLE for entity's cache; owned by the caller. */
static char *create_sql(const cw_entity_t *entity, cw_decimal_mode_t mode)
{
	cw_buf_t sql = CW_BUF_INIT;
	cw_buf_appendf(&sql, "CREATE TABLE IF NOT EXISTS \"%s\" (\"id\" TEXT PRIMARY KEY NOT NULL",
	               entity->name);
	for (size_t i = 0; i < entity->ncolumns; i++)
		cw_buf_appendf(&sql, ", \"%s\"%s", entity->columns[i].name,
		               sqlite_type(entity->columns[i].type, mode));
	if (cw_layout_of(entity) == CW_LAYOUT_DOCUMENT)
		cw_buf_append_str(&sql, ", \"" CW_LAYOUT_DOC_COLUMN "\" TEXT");
	if (cw_layout_of(entity) == CW_LAYOUT_DYNAMIC)
		cw_buf_append_str(&sql, ", \"" CW_LAYOUT_EXTRA_COLUMN "\" TEXT");
	cw_buf_append_str(&sql, ", \"_version\" INTEGER NOT NULL, \"_oplog_id\" INTEGER NOT NULL)");
	/* Typed rows are small: keep them in the primary key's B-tree (one write per row). */
	if (entity->ncolumns > 0)
		cw_buf_append_str(&sql, " WITHOUT ROWID");
	return cw_buf_take(&sql);
}

/* Loads the dynamic table's columns from the file. SQLite result code. */
static int load_dynamic_columns(cw_cache_t *cache)
{
	char *sql = cw_xasprintf("PRAGMA table_info(\"%s\")", cache->name);
	sqlite3_stmt *stmt = NULL;
	int rc = sqlite3_prepare_v2(cache->db, sql, -1, &stmt, NULL);
	free(sql);
	while (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(stmt, 1);
		rc = SQLITE_OK;
		if (!cw_column_name_reserved(name, strlen(name)))
			add_column(cache, name, CW_COL_ANY);
	}
	sqlite3_finalize(stmt);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int prepare(sqlite3 *conn, const char *sql, sqlite3_stmt **stmt)
{
	return sqlite3_prepare_v3(conn, sql, -1, SQLITE_PREPARE_PERSISTENT, stmt, NULL);
}

/* Reads metadata and checks the stored shape. SQLite result code; *mismatch when it differs. */
static int read_metadata(cw_cache_t *cache, const char *shape, bool *mismatch)
{
	sqlite3_stmt *stmt = NULL;
	int rc = sqlite3_prepare_v2(cache->db, "SELECT key, value FROM metadata", -1, &stmt, NULL);
	*mismatch = false;
	while (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		const char *key = (const char *)sqlite3_column_text(stmt, 0);
		const char *value = (const char *)sqlite3_column_text(stmt, 1);
		rc = SQLITE_OK;
		if (strcmp(key, "oplog_id") == 0)
			cache->applied = value ? strtoll(value, NULL, 10) : 0;
		else if (strcmp(key, "columns") == 0 && (value == NULL || strcmp(value, shape) != 0))
			*mismatch = true;
	}
	sqlite3_finalize(stmt);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Result of opening a cache file. */
typedef enum open_result { OPENED = 0, DAMAGED, FAILED } open_result_t;

/* PRAGMA quick_check: SQLITE_OK, SQLITE_CORRUPT when it finds damage, or the error. */
static int quick_check(sqlite3 *conn)
{
	sqlite3_stmt *check = NULL;
	int rc = sqlite3_prepare_v2(conn, "PRAGMA quick_check", -1, &check, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(check)) == SQLITE_ROW) {
		const char *verdict = (const char *)sqlite3_column_text(check, 0);
		rc = verdict != NULL && strcmp(verdict, "ok") == 0 ? SQLITE_OK : SQLITE_CORRUPT;
	}
	sqlite3_finalize(check);
	return rc;
}

/* Creates the entity's table and metadata when missing, in one transaction. SQLite result code. */
static int ensure_schema(cw_cache_t *cache, const cw_entity_t *entity, const char *shape)
{
	char *sql = create_sql(entity, cache->decimal_mode);
	int rc = exec_rc(cache->db, "BEGIN IMMEDIATE");
	if (rc == SQLITE_OK)
		rc = exec_rc(cache->db, sql);
	free(sql);
	if (rc == SQLITE_OK)
		rc = exec_rc(cache->db, "CREATE TABLE IF NOT EXISTS metadata "
		                        "(key TEXT PRIMARY KEY, value TEXT)");
	if (rc == SQLITE_OK) {
		sqlite3_stmt *ins = NULL;
		rc = sqlite3_prepare_v2(cache->db, "INSERT OR IGNORE INTO metadata (key, value) "
		                        "VALUES ('oplog_id', '0'), ('entity', ?1), ('columns', ?2)",
		                        -1, &ins, NULL);
		if (rc == SQLITE_OK) {
			sqlite3_bind_text(ins, 1, entity->name, -1, SQLITE_STATIC);
			sqlite3_bind_text(ins, 2, shape, -1, SQLITE_STATIC);
			rc = sqlite3_step(ins) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(cache->db);
		}
		sqlite3_finalize(ins);
	}
	if (rc == SQLITE_OK)
		rc = exec_rc(cache->db, "COMMIT");
	else
		exec_rc(cache->db, "ROLLBACK");
	return rc;
}

/* Fills the cache's column list for entity. SQLite result code. */
static int load_columns(cw_cache_t *cache, const cw_entity_t *entity)
{
	switch (cw_layout_of(entity)) {
	case CW_LAYOUT_TYPED:
		for (size_t i = 0; i < entity->ncolumns; i++)
			add_column(cache, entity->columns[i].name, entity->columns[i].type);
		break;
	case CW_LAYOUT_DOCUMENT:
		add_column(cache, CW_LAYOUT_DOC_COLUMN, CW_COL_JSONB);
		break;
	case CW_LAYOUT_DYNAMIC:
		cache->dynamic = true;
		return load_dynamic_columns(cache);
	}
	return SQLITE_OK;
}

/* Prepares the statements every apply uses. SQLite result code. */
static int prepare_statements(cw_cache_t *cache, const cw_entity_t *entity)
{
	char *del = cw_xasprintf("DELETE FROM \"%s\" WHERE \"id\" = ?1", entity->name);
	char *sweep = cw_xasprintf("DELETE FROM \"%s\" WHERE \"_version\" < ?1", entity->name);
	int rc = prepare(cache->db, del, &cache->del);
	if (rc == SQLITE_OK)
		rc = prepare(cache->db, sweep, &cache->sweep);
	if (rc == SQLITE_OK)
		rc = prepare(cache->db, "UPDATE metadata SET value = ?1 WHERE key = 'oplog_id'",
		             &cache->set_applied);
	if (rc == SQLITE_OK)
		rc = prepare(cache->db, "BEGIN IMMEDIATE", &cache->begin);
	if (rc == SQLITE_OK)
		rc = prepare(cache->db, "COMMIT", &cache->commit);
	free(del);
	free(sweep);
	return rc;
}

/*
 * Opens (creating when missing) cache->path for entity. DAMAGED: the file is
 * not a usable cache of this entity (corrupt, or another shape); FAILED:
 * another error, err filled.
 */
static open_result_t open_file(cw_cache_t *cache, const cw_entity_t *entity, bool existed,
                               char *why, size_t why_len, cw_err_t *err)
{
	char *shape = shape_text(entity);
	bool mismatch = false;
	cache->wal_frames = 0;
	/* The connection is this thread's alone (the checkpointer opens its own): no mutex per call. */
	int rc = sqlite3_open_v2(cache->path, &cache->db,
	                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc == SQLITE_OK)
		rc = configure(cache->db);
	if (rc == SQLITE_OK)
		sqlite3_wal_hook(cache->db, wal_hook, cache);   /* checkpoints: see checkpointer_t */
	if (rc == SQLITE_OK && existed)
		rc = quick_check(cache->db);
	if (rc == SQLITE_OK)
		rc = ensure_schema(cache, entity, shape);
	if (rc == SQLITE_OK)
		rc = read_metadata(cache, shape, &mismatch);
	free(shape);
	if (rc == SQLITE_OK && mismatch) {
		snprintf(why, why_len, "it holds another shape of the entity");
		return DAMAGED;
	}
	if (rc == SQLITE_OK)
		rc = load_columns(cache, entity);
	if (rc == SQLITE_OK)
		rc = prepare_statements(cache, entity);
	if (rc == SQLITE_OK)
		return OPENED;
	if (cw_cachedb_is_corruption(rc)) {
		snprintf(why, why_len, "%s", sqlite3_errstr(rc));
		return DAMAGED;
	}
	sql_error(cache->db, rc, "could not open cache", cache->name, err);
	return FAILED;
}

/* Opens the cache's file, moving a damaged one aside and creating it anew. */
static int open_cache(cw_cachedb_t *db, cw_cache_t *cache, const cw_entity_t *entity,
                      bool *recreated, cw_err_t *err)
{
	char *dir = cw_xasprintf("%s/%s", db->dir, cache->name);
	int rc = make_dir(dir, err);
	free(dir);
	if (rc != 0)
		return rc;
	struct stat st;
	bool existed = stat(cache->path, &st) == 0 && st.st_size > 0;
	*recreated = !existed;
	cache->applied = 0;
	cache->dynamic = false;
	char why[128] = "";
	open_result_t result = open_file(cache, entity, existed, why, sizeof why, err);
	if (result == DAMAGED) {
		cw_log_kv(CW_LOG_WARN, COMPONENT, "cache unusable: moved aside and recreated",
		          "entity", cache->name, "reason", why, NULL);
		cache_close_conn(cache);
		move_aside(cache->path);
		*recreated = true;
		cache->applied = 0;
		result = open_file(cache, entity, false, why, sizeof why, err);
		if (result == DAMAGED)
			cw_err_set(err, CW_EDB, COMPONENT, "could not create cache \"%s\": %s",
			           cache->name, why);
	}
	if (result != OPENED) {
		cache_close_conn(cache);
		return CW_EDB;
	}
	if (stat(cache->path, &st) != 0) {
		cache_close_conn(cache);
		return cw_err_set(err, CW_EIO, COMPONENT, "could not stat cache \"%s\": %s", cache->path,
		                  strerror(errno));
	}
	cache->dev = st.st_dev;
	cache->ino = st.st_ino;
	return 0;
}

cw_cache_t *cw_cachedb_find(cw_cachedb_t *db, const char *name)
{
	for (size_t i = 0; i < db->ncaches; i++)
		if (strcmp(db->caches[i]->name, name) == 0)
			return db->caches[i];
	return NULL;
}

static void forget_cache(cw_cachedb_t *db, cw_cache_t *cache)
{
	for (size_t i = 0; i < db->ncaches; i++)
		if (db->caches[i] == cache) {
			db->caches[i] = db->caches[--db->ncaches];
			break;
		}
	cache_free(cache);
}

int cw_cachedb_acquire(cw_cachedb_t *db, const cw_entity_t *entity, cw_cache_t **out,
                       bool *recreated, cw_err_t *err)
{
	bool fresh = false;
	*out = NULL;
	if (cw_entity_name_validate(entity->name, err) != 0)
		return CW_EINVAL;
	cw_cache_t *cache = cw_cachedb_find(db, entity->name);
	if (cache != NULL) {
		struct stat st;
		if (stat(cache->path, &st) != 0 || st.st_ino != cache->ino || st.st_dev != cache->dev) {
			cw_log_kv(CW_LOG_WARN, COMPONENT, "cache file gone: recreating", "entity",
			          cache->name, NULL);
			cache_close_conn(cache);
			int rc = open_cache(db, cache, entity, &fresh, err);
			if (rc != 0) {
				forget_cache(db, cache);
				return rc;
			}
			fresh = true;
		}
	} else {
		cache = cw_xcalloc(1, sizeof *cache);
		cache->name = cw_xstrdup(entity->name);
		cache->decimal_mode = db->decimal_mode;
		cache->path = cw_xasprintf("%s/%s/db.sqlite", db->dir, entity->name);
		int rc = open_cache(db, cache, entity, &fresh, err);
		if (rc != 0) {
			cache_free(cache);
			return rc;
		}
		db->caches = cw_xrealloc(db->caches, (db->ncaches + 1) * sizeof *db->caches);
		db->caches[db->ncaches++] = cache;
	}
	cache->last_used_ms = cw_clock_now_ms(cw_clock_system());
	if (recreated != NULL)
		*recreated = fresh;
	*out = cache;
	return 0;
}

int cw_cachedb_recreate(cw_cachedb_t *db, const cw_entity_t *entity, const char *reason,
                        cw_err_t *err)
{
	cw_cache_t *cache = cw_cachedb_find(db, entity->name);
	bool fresh = false;
	cw_log_kv(CW_LOG_WARN, COMPONENT, "cache damaged: moved aside and recreated", "entity",
	          entity->name, "reason", reason, NULL);
	if (cache == NULL) {
		char *path = cw_xasprintf("%s/%s/db.sqlite", db->dir, entity->name);
		move_aside(path);
		free(path);
		return cw_cachedb_acquire(db, entity, &cache, NULL, err);
	}
	cache_close_conn(cache);
	move_aside(cache->path);
	int rc = open_cache(db, cache, entity, &fresh, err);
	if (rc != 0) {
		forget_cache(db, cache);
		return rc;
	}
	return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int cw_cachedb_drop(cw_cachedb_t *db, const char *name, bool *removed, cw_err_t *err)
{
	if (removed != NULL)
		*removed = false;
	if (cw_entity_name_validate(name, err) != 0)
		return CW_EINVAL;
	cw_cache_t *cache = cw_cachedb_find(db, name);
	if (cache != NULL)
		forget_cache(db, cache);
	char *dir = cw_xasprintf("%s/%s", db->dir, name);
	struct stat st;
	int rc = 0;
	if (lstat(dir, &st) == 0) {
		if (nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
			rc = cw_err_set(err, CW_EIO, COMPONENT, "could not remove cache directory \"%s\": %s",
			                dir, strerror(errno));
		else if (removed != NULL)
			*removed = true;
	}
	free(dir);
	return rc;
}

void cw_cachedb_forget(cw_cachedb_t *db, const char *name)
{
	cw_cache_t *cache = cw_cachedb_find(db, name);
	if (cache != NULL)
		forget_cache(db, cache);
}

bool cw_cachedb_file_exists(cw_cachedb_t *db, const char *name)
{
	if (cw_entity_name_validate(name, NULL) != 0)
		return false;
	char *path = cw_xasprintf("%s/%s/db.sqlite", db->dir, name);
	struct stat st;
	bool exists = stat(path, &st) == 0;
	free(path);
	return exists;
}

size_t cw_cachedb_close_idle(cw_cachedb_t *db, int64_t now_ms)
{
	size_t closed = 0;
	for (size_t i = 0; i < db->ncaches;) {
		if (now_ms - db->caches[i]->last_used_ms >= db->idle_timeout_ms) {
			forget_cache(db, db->caches[i]);   /* moves the last one into slot i */
			closed++;
		} else {
			i++;
		}
	}
	return closed;
}

size_t cw_cachedb_open_count(const cw_cachedb_t *db)
{
	return db->ncaches;
}

cw_cache_t *cw_cachedb_open_cache(cw_cachedb_t *db, size_t i)
{
	return db->caches[i];
}
