/*
 * This file contains what the files of the MySQL/MariaDB source share
 * (mysql.c: the interface, run loop, entities and positions; mysql_conn.c:
 * the url, connections, set-up checks and table facts; mysql_snapshot.c:
 * the consistent snapshot and table scans (resumable per key); mysql_stream.c: the binlog
 * stream). Nothing here is part of the source's contract (capture/source.h).
 *
 * THREAD SAFETY: two threads per run: the run loop, and the writer stage's
 * thread (capture/capture_writer.h). `status` is guarded by `mutex`, a leaf
 * lock; everything else belongs to the run loop.
 */
#ifndef CW_CAPTURE_MYSQL_INTERNAL_H
#define CW_CAPTURE_MYSQL_INTERNAL_H

#include "capture/batch_poll.h"
#include "capture/capture_writer.h"
#include "capture/mysql_binlog.h"
#include "capture/source.h"
#include "core/change.h"
#include "core/entity.h"
#include "core/projection.h"
#include "hub/hub.h"

#include <mysql.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define MY_DOMAIN "mysql"
#define MY_COMPONENT "source.mysql"
/* How often the entity set is read again from the hub, and the server's binlog end asked. */
#define MY_RELOAD_MS 3000
/* The server sends a heartbeat at least this often while idle (capture.flush_interval when
 * shorter), so the stream wakes to flush and to stop. */
#define MY_HEARTBEAT_MS 500
/* Most GTID domains (MariaDB) or source uuids (MySQL) a position holds. */
#define MY_MAX_DOMAINS 64
/* Room for a position's text: "0-1-42,1-2-7" or "uuid:1-42,uuid:1-7". */
#define MY_POSITION_LEN (MY_MAX_DOMAINS * 64)

/* A parsed mysql:// url. */
typedef struct my_url {
	char *host;
	unsigned port;
	char *user;
	char *password;
	char *database;
} my_url_t;

/* How a column is selected and turned into its JSON form. */
typedef enum my_col_kind {
	COL_NUMBER = 0,   /* the text is a JSON number */
	COL_STRING,       /* the text is the value (UTF-8) */
	COL_TIMESTAMP,    /* UTC text; "+00" appended */
	COL_FLOAT,        /* CAST(... AS DOUBLE): the float's double, formatted as the float */
	COL_DOUBLE,       /* reformatted by the decoder's rules */
	COL_BINARY,       /* HEX(...): "\x" + lower-case hex */
	COL_GEOMETRY,     /* HEX(...): SRID + WKB, formatted by the decoder */
	COL_JSON,         /* MySQL JSON: embedded */
} my_col_kind_t;

typedef struct my_scan_col {
	char *name;
	my_col_kind_t kind;
	char type[32];                 /* information_schema's DATA_TYPE ("datetime") */
} my_scan_col_t;


/* A batch entity's table as its poller reads it (mysql_batch.c). */
typedef struct my_batch_table {
	my_scan_col_t *cols;           /* owned */
	size_t ncols;
	uint16_t key[CW_BATCH_MAX_KEYS];   /* the key columns' indexes in cols */
	const char *key_names[CW_BATCH_MAX_KEYS];   /* borrowed from cols */
	cw_batch_key_form_t key_forms[CW_BATCH_MAX_KEYS];   /* how each is in a doc_id */
	size_t nkey;
	size_t column;                 /* the change column's index in cols */
	cw_batch_column_kind_t kind;
	cw_buf_t select;               /* every column as scanned, then the marker's columns */
} my_batch_table_t;

/* One entity of this source. */
typedef struct my_entity {
	cw_entity_t entity;            /* owned copy; version is the one changes carry */
	char schema[CW_TABLE_PART_MAX + 1];
	char table[CW_TABLE_PART_MAX + 1];
	cw_projection_t *proj;         /* owned; NULL = every table column */
	bool listed;                   /* reload mark */
	bool failed;                   /* its table cannot be captured (missing, no key): the
	                                * others go on; checked again at every reload */
	char failed_reason[CW_ERR_MESSAGE_LEN];
	my_batch_table_t *batch;       /* owned; the poller's, once checked */
} my_entity_t;

/*
 * A replication position: the last GTID of each domain (MariaDB, the form
 * of gtid_slave_pos) or each source uuid's last transaction (MySQL 8; the
 * whole executed set is kept as text, since MySQL asks for intervals).
 */
typedef struct my_position {
	cw_binlog_gtid_t gtids[MY_MAX_DOMAINS];
	size_t count;
} my_position_t;

typedef struct my_source {
	cw_component_ctx_t ctx;        /* members borrowed from the daemon */
	const cw_source_config_t *cfg;
	char *checkpoint_key;          /* "mysql_gtid:<source>" */
	char *masked_url;
	my_url_t url;
	uint32_t server_id;            /* this replica's id, from the source's name */

	pthread_mutex_t mutex;         /* guards status */
	cw_component_status_t status;

	/* Per run: */
	cw_hub_t *hub;
	cw_capture_writer_t *writer;
	MYSQL *sql;                    /* queries: checks, snapshot, lag */
	MYSQL *repl;                   /* the binlog dump */
	cw_binlog_t *dec;
	bool mariadb;                  /* else MySQL */
	my_entity_t *ents;
	size_t nents;
	cw_change_batch_t batch;
	cw_buf_t projected;
	int64_t last_reload_ms;
	/* Position: everything up to `committed` is in the hub (or handed to the writer). */
	my_position_t committed;
	my_position_t current;         /* committed plus the transactions decoded since */
	bool in_txn;
	cw_binlog_gtid_t txn_gtid;     /* the open transaction */
	int64_t txn_commit_us;
	bool txn_standalone;           /* MariaDB: one statement, no XID or COMMIT follows */
	uint64_t txn_rows;             /* its row changes handled so far */
	uint64_t txn_skip;             /* ... of which still to skip: already in the hub */
	char skip_txn[64];             /* from the checkpoint: a transaction partly in the hub */
	uint64_t skip_rows;            /*   and how many of its row changes */
	int64_t batch_started_ms;
	int64_t newest_commit_us;      /* commit time of the newest transaction handed over */
	char file[256];                /* the binlog file and position of the stream */
	uint64_t file_pos;
	int64_t lag_bytes;             /* from the server's binlog list; -1 unknown */
	bool position_lost;            /* this run rescans after the binlog was purged */
	bool scanning;                 /* batches are a scan's: written as a scan writer's */
	/* The batch poller (mysql_batch.c): captures the batch-mode entities by polling, without
	 * the binlog; the stream worker leaves them out. */
	bool polls_batch;
	cw_oplog_writer_t *batch_writer;   /* per run: the poller writes through it */
	cw_batch_poller_t poller;      /* each entity's poll state, kept across runs */
} my_source_t;

/* ---- mysql.c ------------------------------------------------------------ */

void my_set_state(my_source_t *src, const char *state, bool healthy, const char *error);
/* Publishes lag and position to the status and the metrics registry. */
void my_publish_lag(my_source_t *src);
/* The usable entities of schema.table: fills idx (cap entries), returns the count. */
size_t my_entities_of(const my_source_t *src, const char *schema, const char *table,
                      size_t *idx, size_t cap);
/* Turns one row change into changes of the entities in idx, pushed onto src->batch. A
 * value the projection refuses goes to the quarantine; hub errors are returned. The
 * changes take over row's doc_id and data where they can (set to NULL then): the caller
 * still clears row. */
int my_push_row(my_source_t *src, const size_t *idx, size_t n, cw_binlog_row_t *row,
                const char *source_pos, int64_t commit_us, cw_err_t *err);
/* Sets a record aside in the hub's quarantine (doc_id and raw may be NULL); logs and counts
 * it. 0 or the hub's error. */
int my_quarantine(my_source_t *src, const my_entity_t *ent, const char *doc_id,
                  const char *source_pos, const char *reason, const char *raw, cw_err_t *err);
/* Pushes a sweep of ent at its version. */
void my_push_sweep(my_source_t *src, const my_entity_t *ent, const char *source_pos);
/* Hands src->batch to the writer with the checkpoint of position (NULL: none); partial:
 * inside the open transaction, txn_rows of which are in the batch or before it. */
int my_flush(my_source_t *src, const my_position_t *position, bool partial, cw_err_t *err);
/* Waits until everything handed over is committed. */
int my_sync(my_source_t *src, cw_err_t *err);
/* Starts a new generation of ent (status scanning, version + 1 unless pending). */
int my_begin_generation(my_source_t *src, my_entity_t *ent, cw_err_t *err);
/* Moves what was staged during ent's scan into the oplog; ent is live. */
int my_go_live(my_source_t *src, my_entity_t *ent, cw_err_t *err);

/* Formats a position ("0-1-42,1-2-7"); "" when empty. */
void my_position_format(const my_position_t *pos, char out[MY_POSITION_LEN]);
/* Parses MariaDB's "0-1-42,1-2-7" (or "" for none). 0 or CW_EINVAL. */
int my_position_parse(const char *text, my_position_t *pos, cw_err_t *err);
/* Records gtid in pos (replacing the entry of its domain or uuid). */
void my_position_advance(my_position_t *pos, const cw_binlog_gtid_t *gtid);

/* ---- mysql_conn.c --------------------------------------------------------- */

/* Parses a mysql://user:password@host:port/db url (percent-escapes decoded). */
int my_url_parse(const char *text, my_url_t *url, cw_err_t *err);
void my_url_clear(my_url_t *url);
/* Connects to the source; CW_EAUTH when the server refused the credentials. */
int my_connect(my_source_t *src, MYSQL **out, cw_err_t *err);
/* Runs one statement; CW_EDB with "<what>: <server message>". */
int my_exec(my_source_t *src, MYSQL *conn, const char *sql, const char *what, cw_err_t *err);
/* The first column of the first row of a query, owned; NULL with err (no row: CW_ENOTFOUND). */
char *my_query_value(my_source_t *src, MYSQL *conn, const char *sql, const char *what,
                     cw_err_t *err);
/* Checks binlog settings and privileges; CW_EINVAL saying how to fix what is wrong. */
int my_check_setup(my_source_t *src, cw_err_t *err);
/* Checks ent's table (exists, has a primary key) and gives its columns and key to the
 * decoder. CW_ENOTFOUND or CW_EINVAL with the fix; CW_EDB. */
int my_prepare_table(my_source_t *src, my_entity_t *ent, cw_err_t *err);
/* Appends 's' quoted as a MySQL string literal (escaped for conn's character set). */
void my_quote_literal(MYSQL *conn, cw_buf_t *buf, const char *s);
/* Appends `name` quoted as a MySQL identifier. */
void my_quote_ident(cw_buf_t *buf, const char *name);
/* The binlog bytes the server wrote after src->file/file_pos, into src->lag_bytes. */
void my_measure_lag(my_source_t *src);

/* ---- mysql_snapshot.c ------------------------------------------------------ */

/*
 * The first snapshot: a consistent read with its GTID position taken from the
 * same snapshot, every entity that is not live scanned in key order (a new
 * generation, then a sweep; each table on its own, each batch with the
 * table's progress, so a restart scans only the tables not finished, from
 * the last key committed, in the same generation), the position stored first. *start receives the
 * position to stream from: the stored one when there was one.
 */
int my_snapshot(my_source_t *src, bool have_position, my_position_t *start, cw_cancel_t *cancel,
                cw_err_t *err);

/* How a column of a type (information_schema's DATA_TYPE) is scanned. */
my_col_kind_t my_col_kind_of(const char *data_type);
/* Appends col's select expression (the form its kind reads) to select. */
void my_scan_select(const my_scan_col_t *col, cw_buf_t *select);
/*
 * A key (or change) column's value as it goes back into a query: my_key_select
 * appends ", <expression>" selecting it (numbers as numbers, binary strings
 * as hex), my_key_literal the value so selected as a literal of its kind.
 */
void my_key_select(const my_scan_col_t *col, cw_buf_t *out);
void my_key_literal(MYSQL *conn, const my_scan_col_t *col, const char *value, cw_buf_t *out);
/* ent's columns in table order (*cols owned: my_scan_columns_free) and their SELECT list. */
int my_scan_columns(my_source_t *src, MYSQL *conn, const my_entity_t *ent, my_scan_col_t **cols,
                    size_t *ncols, cw_buf_t *select, cw_err_t *err);
void my_scan_columns_free(my_scan_col_t *cols, size_t ncols);
/* The primary key columns' indexes in cols (key order), their quoted list in order. */
size_t my_scan_key(my_source_t *src, const my_entity_t *ent, const my_scan_col_t *cols,
                   size_t ncols, uint16_t *key, cw_buf_t *order);
/* A selected row's doc_id (key[k]: the key's columns in row) appended to id. CW_EINVAL when
 * the key cannot be one. */
int my_scan_doc_id(const my_entity_t *ent, const my_scan_col_t *cols, const uint16_t *key,
                   size_t nkey, MYSQL_ROW row, const unsigned long *lengths, cw_buf_t *id,
                   cw_buf_t *scratch, cw_err_t *err);
/* A selected row as an upsert (out cleared by cw_binlog_row_clear); CW_EINVAL: quarantine. */
int my_scan_row(const my_entity_t *ent, const my_scan_col_t *cols, size_t ncols,
                const uint16_t *key, size_t nkey, MYSQL_ROW row, const unsigned long *lengths,
                cw_binlog_row_t *out, cw_buf_t *scratch, cw_err_t *err);
/* The targets' column order (metadata "table_columns:<entity>"): names in table order. */
int my_record_columns(my_source_t *src, const my_entity_t *ent, const my_scan_col_t *cols,
                      size_t ncols, cw_err_t *err);

/* ---- mysql.c (entities) ------------------------------------------------------ */

/* Reads the entity set from the hub and checks new and failed entities (no scan). */
int my_load_entities(my_source_t *src, bool *changed, cw_err_t *err);
/* Checks ent's table (and a batch entity's column); a refusal the user must fix marks it
 * failed with the reason (the others go on): 0. Errors asking the server. */
int my_check_entity(my_source_t *src, my_entity_t *ent, cw_err_t *err);
/* Whether entity (of ctx's configuration) is captured in batch mode. */
bool my_entity_is_batch(const cw_component_ctx_t *ctx, const char *entity);
/* Opens the source's stream worker, or with batch its poller. NULL with err. */
void *my_source_open(const cw_component_ctx_t *ctx, bool batch, cw_err_t *err);
void my_source_close(void *self);
void my_source_status(void *self, cw_component_status_t *out);
/* Ends a run: connections, entities, the decoder. */
void my_end_run(my_source_t *src);

/* ---- mysql_batch.c ---------------------------------------------------------- */

/* Checks a batch entity's change column and time zone, describing its table in ent->batch.
 * CW_ENOTFOUND or CW_EINVAL with the fix (the entity fails); CW_EDB. */
int my_batch_check(my_source_t *src, my_entity_t *ent, cw_err_t *err);
void my_batch_table_free(my_batch_table_t *table);

/* ---- mysql_stream.c -------------------------------------------------------- */

/* Streams from start until cancel fires or an error (CW_ENOTFOUND: the position is purged). */
int my_stream(my_source_t *src, const my_position_t *start, cw_cancel_t *cancel, cw_err_t *err);
/* Reloads the entity set from the hub; new entities are scanned before the stream goes on. */
int my_reload_entities(my_source_t *src, cw_cancel_t *cancel, cw_err_t *err);

#endif
