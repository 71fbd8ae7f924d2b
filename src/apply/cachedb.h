/*
 * This file contains the cache DB manager of the SQLite target (DESIGN.md
 * §3): one SQLite database per entity at {dir}/{entity}/db.sqlite, created
 * with its schema on first use, opened in WAL mode, checked at open
 * (PRAGMA quick_check), moved aside and recreated when corrupt or gone, kept
 * open while in use and closed after the idle timeout; plus the target's own
 * {dir}/metadata.sqlite holding the consumer's hub position.
 *
 * Layout of a cache: table "{entity}" ("id" TEXT PRIMARY KEY, one column per
 * shape column, "_version" INTEGER, "_oplog_id" INTEGER) and table
 * metadata(key TEXT PRIMARY KEY, value TEXT) with key 'oplog_id' (the last
 * applied oplog id), 'entity' and 'columns'. docs/targets-sqlite.md describes
 * the column types and the rules for entities without columns.
 *
 * Paths are built only from names that passed cw_entity_name_validate; SQL
 * identifiers are those names, double-quoted.
 *
 * Each cache keeps one writer connection (SQLite allows one writer at a
 * time; readers are other processes): the manager's pool is one connection
 * per entity, opened on first use and closed when idle.
 *
 * Checkpoints: the writer connections do not checkpoint their WAL
 * themselves; after a commit leaves 1000 or more frames in a cache's WAL,
 * cw_cachedb_committed hands the file to the manager's checkpointer thread,
 * which runs PRAGMA wal_checkpoint(PASSIVE) on a connection of its own
 * beside the writer (so applying never waits for a checkpoint's writes and
 * fsync). Past 20000 frames the writer checkpoints itself.
 *
 * THREAD SAFETY: a manager and its caches belong to one thread (the
 * target's run job). The checkpointer thread shares only its queue of file
 * names with it, under one mutex that is never held while calling SQLite.
 */
#ifndef CW_APPLY_CACHEDB_H
#define CW_APPLY_CACHEDB_H

#include "core/entity.h"
#include "core/err.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct cw_cachedb cw_cachedb_t;

/* A prepared upsert for one set of present columns. */
typedef struct cw_cache_stmt {
	char *key;              /* owned: which columns it sets */
	sqlite3_stmt *stmt;
	uint64_t used;          /* for replacing the least recently used */
} cw_cache_stmt_t;

#define CW_CACHE_STMTS 8

/*
 * Where the keys of an upsert's data go, as cache_write.c worked it out for
 * the last data it read: the next data listing the same keys in the same
 * order (every row of a PostgreSQL table does) reuses it instead of looking
 * up each key's column again. Made for the cache's columns of that moment:
 * cleared whenever they change.
 */
typedef struct cw_cache_keymap {
	size_t nfields;         /* 0: none made yet */
	size_t *key_lens;       /* owned, per field */
	char *keys;             /* owned: the keys' bytes, one after another */
	ssize_t *field_of;      /* owned, per column: the field that sets it, or -1 */
	bool *extra;            /* owned, per field: goes into "_extra" */
	char *present;          /* owned: the statement key (cache_write.c), NUL-terminated */
} cw_cache_keymap_t;

/* Frees what the keymap owns and empties it. */
void cw_cache_keymap_clear(cw_cache_keymap_t *keymap);

typedef struct cw_cache {
	char *name;             /* owned; a valid entity name */
	char *path;             /* owned; {dir}/{name}/db.sqlite */
	sqlite3 *db;            /* the writer connection */
	dev_t dev;              /* identity of the file opened, to notice it replaced or gone */
	ino_t ino;
	/* Columns of the table besides id/_version/_oplog_id, in table order. */
	char **columns;         /* owned */
	cw_column_type_t *types;
	size_t ncolumns;
	bool dynamic;           /* PostgreSQL entity without columns: columns follow data keys */
	cw_decimal_mode_t decimal_mode;   /* the target's decimal handling (apply/typed_value.h) */
	/* Dynamic tables: the source table's column names in table order (borrowed from the
	 * target, may be NULL): keys new to the table become columns in this order. */
	char *const *source_order;
	size_t nsource_order;
	int64_t swept_version;  /* the newest generation whose sweep this connection applied */
	int64_t columns_version;/* dynamic tables: the generation the columns were matched to */
	int64_t applied;        /* metadata 'oplog_id' */
	int64_t last_used_ms;
	int64_t checked_ms;     /* when the target last checked its file (housekeeping) */
	int wal_frames;         /* frames in the WAL after the last commit */
	cw_cache_stmt_t stmts[CW_CACHE_STMTS];
	uint64_t stmt_clock;
	cw_cache_keymap_t keymap;   /* of the last upsert's keys; empty after a column change */
	sqlite3_stmt *del;      /* DELETE by id */
	sqlite3_stmt *sweep;    /* DELETE by _version */
	sqlite3_stmt *set_applied;
	sqlite3_stmt *begin, *commit;
} cw_cache_t;

/*
 * Configures SQLite for the whole process: no memory statistics, which SQLite
 * keeps under one global mutex taken around every allocation and free (about
 * 3% of the apply thread's CPU; BENCHMARKS.md). Call once at start, before any
 * thread uses SQLite; a call after that changes nothing.
 */
void cw_cachedb_process_init(void);

/*
 * Opens the manager on dir (borrowed; created when missing) with the idle
 * timeout; opens or creates {dir}/metadata.sqlite (a corrupt one is moved
 * aside and recreated at position 0: every cache then skips what it has).
 * Returns the manager (owned, _close) or NULL with err (CW_EIO, CW_EDB).
 */
cw_cachedb_t *cw_cachedb_open(const char *dir, int64_t idle_timeout_ms, cw_err_t *err);

/*
 * Sets the decimal handling of caches opened from now on (default exact):
 * how numbers are bound and how number/integer columns of new cache tables
 * are declared (docs/targets-sqlite.md, "Numbers").
 */
void cw_cachedb_set_decimal_mode(cw_cachedb_t *db, cw_decimal_mode_t mode);

/* Closes every cache and the metadata database; NULL is a no-op. */
void cw_cachedb_close(cw_cachedb_t *db);

/*
 * The hub position stored in metadata.sqlite (0 when none). It is stored
 * with a checksum (hub/position_check.h, row `position_checksum`): one that
 * fails is logged and read as 0, as a corrupt metadata.sqlite is (the hub
 * is applied again from its start; applying is idempotent); one stored
 * before checksums is accepted. 0 or CW_EDB.
 */
int cw_cachedb_position_get(cw_cachedb_t *db, int64_t *position, cw_err_t *err);
/* Stores the hub position with its checksum, in one statement (durable before return). 0 or CW_EDB. */
int cw_cachedb_position_set(cw_cachedb_t *db, int64_t position, cw_err_t *err);

/*
 * The cache of entity (borrowed; validated), opened or created. A cache
 * already open is checked against its file: a file gone or replaced is
 * recreated. A file that fails to open as a database or fails quick_check is
 * moved aside ({path}.corrupt-<ms>, with its -wal and -shm) and recreated.
 * *recreated (optional) tells whether the cache was (re)created empty.
 * *out is borrowed until the cache is closed (idle, drop, recreate, close).
 * 0, CW_EINVAL (bad name), CW_EIO, CW_EDB.
 */
int cw_cachedb_acquire(cw_cachedb_t *db, const cw_entity_t *entity, cw_cache_t **out,
                       bool *recreated, cw_err_t *err);

/* The cache of name when it is open, else NULL (borrowed). */
cw_cache_t *cw_cachedb_find(cw_cachedb_t *db, const char *name);

/*
 * Moves entity's cache file aside and creates it again, empty (applied 0);
 * a cache pointer acquired before stays valid on success. reason is logged. 0 or CW_E*.
 */
int cw_cachedb_recreate(cw_cachedb_t *db, const cw_entity_t *entity, const char *reason,
                        cw_err_t *err);

/*
 * Closes entity name's cache and removes its directory {dir}/{name}
 * (validated). *removed (optional) tells whether a directory was there.
 * 0, CW_EINVAL, CW_EIO.
 */
int cw_cachedb_drop(cw_cachedb_t *db, const char *name, bool *removed, cw_err_t *err);

/* Closes name's cache when open (its file stays); the next acquire reopens it. */
void cw_cachedb_forget(cw_cachedb_t *db, const char *name);

/* Whether {dir}/{name}/db.sqlite exists (name validated; false when invalid). */
bool cw_cachedb_file_exists(cw_cachedb_t *db, const char *name);

/* Closes caches unused for the idle timeout as of now_ms; returns how many. */
size_t cw_cachedb_close_idle(cw_cachedb_t *db, int64_t now_ms);

/* Number of caches open. */
size_t cw_cachedb_open_count(const cw_cachedb_t *db);
/* The i-th open cache (i < cw_cachedb_open_count; borrowed, order unspecified). */
cw_cache_t *cw_cachedb_open_cache(cw_cachedb_t *db, size_t i);

/* Call after each commit to cache: asks for a checkpoint when its WAL has grown. */
void cw_cachedb_committed(cw_cachedb_t *db, cw_cache_t *cache);

/* Checkpoints the checkpointer thread has run (for tests and status). */
uint64_t cw_cachedb_checkpoints(cw_cachedb_t *db);

/* Whether an SQLite result code means the file is damaged (CORRUPT, NOTADB). */
bool cw_cachedb_is_corruption(int sqlite_rc);

#endif
