/*
 * This file contains what the files of the PostgreSQL source share
 * (postgres.c: the interface and the run loop; postgres_setup.c: set-up
 * checks and the publication; postgres_snapshot.c:
 * slot creation and table scans; postgres_stream.c: the pgoutput stream).
 * Nothing here is part of the source's public contract (capture/source.h).
 *
 * THREAD SAFETY: one thread runs `run` and owns every member but `status`
 * (its failed entities included), which `mutex` guards (the control plane
 * reads it while run runs).
 */
#ifndef CW_CAPTURE_POSTGRES_INTERNAL_H
#define CW_CAPTURE_POSTGRES_INTERNAL_H

#include "capture/batch_poll.h"
#include "capture/capture_writer.h"
#include "capture/pgoutput.h"
#include "core/change.h"
#include "core/component.h"
#include "core/entity.h"
#include "core/projection.h"
#include "hub/hub.h"
#include "hub/oplog_writer.h"
#include "capture/capture_writer.h"

#include <libpq-fe.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define PG_DOMAIN "postgres"
#define PG_COMPONENT "source.postgres"
/* Standby status interval while idle (pg_recvlogical's default is 10 s). */
#define PG_STATUS_INTERVAL_MS 10000
/* How often the entity set is reloaded from the hub, and failed entities checked again. */
#define PG_RELOAD_INTERVAL_MS 3000
/*
 * The pgoutput protocol version START_REPLICATION asks for. 1: the server
 * sends a transaction once it commits (no streaming of running ones).
 * docs/pgoutput.md and docs/sources-postgres.md say so; unit.postgres checks.
 */
#define PG_PROTO_VERSION "1"

/* One entity of this source, with the table it reads and its projection. */
typedef struct pg_entity {
	cw_entity_t entity;          /* owned copy; version is the one changes carry */
	char nspname[CW_TABLE_PART_MAX + 1];   /* as the catalog holds it (unquoted) */
	char relname[CW_TABLE_PART_MAX + 1];
	cw_projection_t *proj;       /* owned; NULL = every table column as sent */
	/*
	 * Failed: its table cannot be captured (missing, no key, not readable, not
	 * in the publication). Nothing of it is captured or scanned, its version
	 * stays, and the other entities stream; the source checks it again at
	 * every reload and scans it once the check passes.
	 */
	bool failed;
	char failed_reason[CW_ERR_MESSAGE_LEN];
	cw_batch_column_kind_t batch_kind;   /* batch: what its change column holds (checked) */
	bool rescan;                 /* live, but changes were missed (its table left the
	                              * publication): scan it again once usable */
} pg_entity_t;

typedef struct pg_pipe pg_pipe_t;
struct pg_schema;
struct cw_scan_progress;

typedef struct cw_pg_source {
	const cw_component_ctx_t *ctx;      /* borrowed */
	const cw_source_config_t *cfg;      /* borrowed from ctx->config */
	char *checkpoint_key;               /* "pg_lsn:<source>" */
	char *masked_url;

	pthread_mutex_t mutex;              /* guards status */
	cw_component_status_t status;

	/* Owned by the run, reset by every run. */
	cw_hub_t *hub;
	cw_oplog_writer_t *writer;
	PGconn *sql;                        /* ordinary connection to the source */
	PGconn *repl;                       /* replication connection */
	cw_pgoutput_t *dec;
	pg_entity_t *ents;
	size_t nents;
	const pg_entity_t *only;            /* a scan: rows go to this entity alone */
	cw_change_batch_t batch;
	pg_pipe_t *pipe;                    /* while streaming: batches go to the writer thread */
	cw_cancel_t *cancel;                /* the run's token, borrowed */
	int64_t batch_started_ms;
	uint64_t durable_lsn;               /* everything before it is in the hub */
	uint64_t stored_lsn;                /* the checkpoint the hub holds (streaming: the last
	                                     * one handed to the pipe) */
	uint64_t complete_lsn;              /* end of the last Commit decoded */
	int64_t complete_commit_us;         /* its commit time */
	uint64_t server_wal_end;
	int64_t newest_commit_us;           /* commit time of the newest transaction written */
	bool in_txn;
	/* Exactly once across a restart inside a transaction split over several batches. */
	uint64_t txn_final_lsn;             /* the open transaction's commit LSN (Begin) */
	uint64_t txn_msgs;                  /* its row messages handled so far */
	uint64_t txn_skip;                  /* ... of which still to skip: already in the hub */
	uint64_t skip_txn_lsn;              /* from the checkpoint: this transaction's first */
	uint64_t skip_msgs;                 /* skip_msgs row messages are in the hub */
	bool position_lost;                 /* this run rescans after losing the slot */
	bool streaming;                     /* repl is in COPY BOTH mode */
	int64_t next_status_ms;             /* when the next standby status is due */
	uint64_t sent_lsn;                  /* the flush position last reported */
	int64_t txn_commit_us;
	struct pg_schema *schemas;          /* per entity: its table's columns as last scanned */
	size_t nschemas;
	/* The batch poller (postgres_batch.c): captures the batch-mode entities by polling,
	 * without publication or slot; the stream worker leaves them out. */
	bool polls_batch;
	cw_batch_poller_t poller;           /* batch: each entity's poll state, kept across runs */
	char **gauged_failed;               /* owned: entities whose cachewarp_entity_failed is 1;
	                                     * kept across runs, so a recovery or a deletion
	                                     * always sets it back to 0 */
	size_t ngauged_failed;
} cw_pg_source_t;

/* ---- postgres.c ---------------------------------------------------------- */

/* Formats an LSN as PostgreSQL prints it ("16/B374D848"). */
void pg_lsn_format(uint64_t lsn, char out[32]);
/* Parses "X/Y"; 0 or CW_EINVAL. */
int pg_lsn_parse(const char *text, uint64_t *lsn);
/* Appends "name" quoted as an SQL identifier (name validated by the caller). */
void pg_quote_ident(cw_buf_t *buf, const char *name);
/* Appends "schema"."table", each part quoted by pg_quote_ident. */
void pg_quote_table(cw_buf_t *buf, const char *nspname, const char *relname);
/*
 * Connects to the source into *out; replication adds replication=database.
 * 0, or CW_EDB (CW_EAUTH when the server refused the credentials) with err.
 */
int pg_connect(cw_pg_source_t *src, bool replication, PGconn **out, cw_err_t *err);
/* CW_EDB with "<what>: <server message>". */
int pg_result_error(PGconn *conn, const PGresult *res, const char *what, cw_err_t *err);
/*
 * The start of every run (the stream's and the batch poller's): state
 * "starting", the hub connection, the oplog writer, the decoder and the
 * SQL connection to the source, with cancel as the run's token. 0, or the
 * error with err filled; pg_run_end frees what was opened either way.
 */
int pg_run_begin(cw_pg_source_t *src, cw_cancel_t *cancel, cw_err_t *err);
/* Frees what pg_run_begin opened and the pending batch, each left NULL or empty. */
void pg_run_end(cw_pg_source_t *src);
/* Updates the status under the mutex (state may be NULL: unchanged). */
void pg_set_state(cw_pg_source_t *src, const char *state, bool healthy);
/* Publishes lag and position to status and the metrics registry. */
void pg_publish_lag(cw_pg_source_t *src);
/*
 * Turns one decoded or scanned row message of ent's table into changes pushed
 * onto src->batch with source_pos and commit time. A value that cannot be
 * captured goes to the quarantine; only hub errors are returned.
 */
int pg_push_row(cw_pg_source_t *src, const cw_pgoutput_msg_t *msg, const char *source_pos,
                int64_t commit_us, cw_err_t *err);
/* Pushes a sweep of ent at its version. */
void pg_push_sweep(cw_pg_source_t *src, const pg_entity_t *ent, const char *source_pos);
/* Room for a checkpoint's JSON. */
#define PG_CHECKPOINT_JSON_LEN 256
/*
 * The checkpoint's JSON for lsn ({"lsn":"0/16B3748","slot":"..."}); "" for
 * lsn 0. partial: a batch inside the open transaction, so the checkpoint also
 * says how many of its row messages are in the hub ("txn": its commit LSN,
 * "txn_done": the count): a restart skips them (docs/hub.md, "Exactly once").
 */
void pg_checkpoint_json(const cw_pg_source_t *src, uint64_t lsn, bool partial,
                        char json[PG_CHECKPOINT_JSON_LEN]);
/*
 * Appends batch (cleared on success) to the hub through writer
 * (capture/capture_writer.h) with the checkpoint lsn (0 = none; an empty
 * batch with a checkpoint stores only the checkpoint), and counts it in the
 * metrics.
 */
int pg_append(const cw_pg_source_t *src, cw_oplog_writer_t *writer, cw_change_batch_t *batch,
              uint64_t checkpoint_lsn, bool partial, cw_err_t *err);
/* pg_append of src->batch on src->hub; the checkpoint becomes src->stored_lsn. */
int pg_write_batch(cw_pg_source_t *src, cw_oplog_writer_t *writer, uint64_t checkpoint_lsn,
                   bool partial,
                   cw_err_t *err);
/*
 * Opens a PostgreSQL source for ctx: the stream worker, or with batch the
 * poller of its batch-mode entities. NULL with err. Freed by the ops' close.
 */
cw_pg_source_t *pg_source_new(const cw_component_ctx_t *ctx, bool batch, cw_err_t *err);

/* ---- postgres_entities.c ------------------------------------------------ */

/* The usable (not failed) entities of the table nspname.relname: fills idx (cap entries) and returns the count. */
size_t pg_entities_of(cw_pg_source_t *src, const char *nspname, const char *relname,
                      size_t *idx, size_t cap);
/* How many entities can be captured now (not failed). */
size_t pg_usable_entities(const cw_pg_source_t *src);
/* Whether entity (of ctx's configuration) is captured in batch mode. */
bool pg_entity_is_batch(const cw_component_ctx_t *ctx, const char *entity);
/*
 * Reloads the entity set from the hub (the ones of this source, of this
 * worker's mode, passing the --entity filter); with scan_new, new or
 * refreshed entities and failed ones whose check now passes are scanned.
 */
int pg_reload_entities(cw_pg_source_t *src, bool scan_new, cw_cancel_t *cancel, cw_err_t *err);
/* Frees the entity set (the run's end). */
void pg_entities_free(cw_pg_source_t *src);
/* Copies the failed entities into the status and the cachewarp_entity_failed gauge. */
void pg_publish_failed(cw_pg_source_t *src);
/* Frees the names of the entities the gauge shows failed (the source's close). */
void pg_failed_gauges_free(cw_pg_source_t *src);

/* ---- postgres_batch.c ---------------------------------------------------- */

/*
 * Checks ent's change column on src->sql: it exists, sorts, and a time
 * zone it needs is known. 0, CW_ENOTFOUND or CW_EINVAL with the fix (the
 * entity fails), CW_EDB.
 */
int pg_batch_check_column(cw_pg_source_t *src, pg_entity_t *ent, cw_err_t *err);
/* Frees the poll states. */
void pg_batch_forget(cw_pg_source_t *src);

/* ---- postgres_setup.c ---------------------------------------------------- */

/* Runs one statement on src->sql; the result (PQclear it) or NULL with err filled. */
PGresult *pg_query(cw_pg_source_t *src, const char *sql, int nparams,
                   const char *const *params, const char *what, cw_err_t *err);
/* CW_EINVAL with the fix when the role may not replicate. */
int pg_check_replication_role(cw_pg_source_t *src, cw_err_t *err);
/* A table's catalog facts pg_table_check found. */
typedef struct pg_table {
	char oid[16];
	bool has_pk;                 /* else the replica identity index is the key */
} pg_table_t;
/*
 * Checks on conn that nspname.relname (of entity, of source: for messages)
 * exists, is readable and has a key: 0 (table filled when not NULL),
 * CW_ENOTFOUND or CW_EINVAL with the fix, CW_EDB when the query failed.
 */
int pg_table_check(PGconn *conn, const char *source, const char *entity, const char *nspname,
                   const char *relname, pg_table_t *table, cw_err_t *err);
/* Makes sure ent's table is usable and in the publication; registers its key with the decoder. */
int pg_prepare_table(cw_pg_source_t *src, pg_entity_t *ent, cw_err_t *err);
/* CW_EINVAL with the setting and restart to do when the server's wal_level is not logical. */
int pg_check_wal_level(cw_pg_source_t *src, cw_err_t *err);
/*
 * pg_prepare_table, turning a refusal the user must fix (CW_EINVAL,
 * CW_ENOTFOUND) into ent's failed state (logged once, published in the
 * status and metrics) and a pass into its clearing. 0 either way (see
 * ent->failed); other errors (the connection) are returned.
 */
int pg_check_entity(cw_pg_source_t *src, pg_entity_t *ent, cw_err_t *err);
/*
 * Marks failed, and to be scanned again, the live entities whose table left
 * the publication (or the database): their changes are no longer sent. 0 or
 * CW_EDB.
 */
int pg_check_published(cw_pg_source_t *src, cw_err_t *err);

/* ---- postgres_snapshot.c ------------------------------------------------- */

/*
 * Creates the slot with an exported snapshot and scans every entity inside
 * it: a new generation for live entities, a sweep after each scan, status
 * live at the end, and the slot's consistent point stored as the checkpoint.
 * *start_lsn receives that point.
 */
int pg_snapshot_all(cw_pg_source_t *src, cw_cancel_t *cancel, uint64_t *start_lsn,
                    cw_err_t *err);
/* Scans one entity added (or refreshed) at runtime in a snapshot of its own. */
int pg_snapshot_entity(cw_pg_source_t *src, pg_entity_t *ent, cw_cancel_t *cancel,
                       cw_err_t *err);
/*
 * Status scanning; unless the entity is pending (nothing of its current
 * version written yet), a new generation (version + 1) first.
 */
int pg_begin_generation(cw_pg_source_t *src, pg_entity_t *ent, cw_err_t *err);
/*
 * Scans each usable entity on reader (inside the snapshot's transaction
 * opened by the caller, ended here) after its progress (progress[i] for
 * src->ents[i]; updated), then stores start_lsn as the checkpoint and turns
 * the entities live.
 */
int pg_snapshot_scan_all(cw_pg_source_t *src, PGconn *reader, struct cw_scan_progress *progress,
                         uint64_t start_lsn, cw_cancel_t *cancel, cw_err_t *err);

/* ---- postgres_resume.c --------------------------------------------------- */

/* "pg_scan:<source>:<entity>", the metadata key of ent's scan progress (owned by caller). */
char *pg_scan_progress_key(const cw_pg_source_t *src, const pg_entity_t *ent);
/*
 * Reads ent's stored scan progress into out (cleared first) when the scan
 * it describes can go on: ent is scanning at the progress's version, on
 * this source's slot and, unless lsn is NULL, from the consistent point lsn.
 * Otherwise out stays zeroed (version 0). 0 or the hub's error.
 */
int pg_scan_progress_resume(cw_pg_source_t *src, const pg_entity_t *ent, const char *lsn,
                            struct cw_scan_progress *out, cw_err_t *err);
/* Deletes ent's scan progress (once it is live). 0 or the hub's error. */
int pg_scan_progress_forget(cw_pg_source_t *src, const pg_entity_t *ent, cw_err_t *err);
/*
 * No checkpoint, and the slot still at slot_lsn: when an entity's scan
 * progress says the first snapshot was interrupted after some pages, the
 * snapshot goes on (*resumed true): the remaining rows read in a new
 * snapshot, the entities never reached in a new generation, then the
 * checkpoint slot_lsn (*start_lsn). *resumed false: nothing to resume.
 */
int pg_snapshot_resume(cw_pg_source_t *src, uint64_t slot_lsn, cw_cancel_t *cancel,
                       uint64_t *start_lsn, bool *resumed, cw_err_t *err);

/* ---- postgres_schema.c --------------------------------------------------- */

/*
 * Records ent's table's columns as a scan sees them (conn inside the scan's
 * snapshot) in the hub: "table_schema:<entity>" (what pg_schema_check
 * compares with) and, for an entity without columns, "table_columns:<entity>"
 * (the names in table order, for the targets) and "table_types:<entity>"
 * (each column's type and the key, for targets that create typed tables).
 */
int pg_schema_record(cw_pg_source_t *src, PGconn *conn, const pg_entity_t *ent, cw_err_t *err);
/*
 * Compares each live entity's table's columns with its record: a column
 * added, dropped, renamed or retyped is logged with the DDL it amounts to
 * and starts a new generation (scanned at the next reload of the entity
 * set); a changed default is logged only. Hub or source errors.
 */
int pg_schema_check(cw_pg_source_t *src, cw_err_t *err);
/* Frees the records kept in memory. */
void pg_schema_forget(cw_pg_source_t *src);

/* ---- postgres_pipe.c ----------------------------------------------------- */

/*
 * The pipe between the stream and the hub: a writer thread with a hub
 * connection of its own appends the batches the stream hands it, in order,
 * through a bounded queue (capture.queue_depth), so decoding the next
 * batch overlaps the hub's commit of the previous one. The durable LSN (the
 * end of the last transaction whose batches all committed) advances in the
 * writer thread and is read by the stream before each status update.
 */
/*
 * Starts the writer thread; NULL with err filled (the hub connection failed).
 * scan: the pipe of a snapshot's scan, whose batches go to the oplog while
 * their entity is pending or scanning (cw_oplog_writer_set_scan).
 */
pg_pipe_t *pg_pipe_start(cw_pg_source_t *src, bool scan, cw_err_t *err);
/*
 * Hands batch (its contents taken over, batch left empty) to the writer with
 * the checkpoint to store (0 = none) and the durable LSN and commit time its
 * commit makes true. Blocks while the queue is full, keeping the replication
 * connection alive; CW_ECANCELED, or the writer's error, and then batch keeps
 * its changes.
 */
int pg_pipe_submit(pg_pipe_t *pipe, cw_change_batch_t *batch, uint64_t checkpoint, bool partial,
                   uint64_t durable_after, int64_t commit_us, cw_cancel_t *cancel,
                   cw_err_t *err);
/*
 * pg_pipe_submit of batch with a job of the caller's (a scan's progress as
 * checkpoint), reaching failpoint (a string literal, or NULL) in the
 * writer's thread once it committed.
 */
int pg_pipe_submit_job(pg_pipe_t *pipe, cw_change_batch_t *batch, const cw_capture_job_t *job,
                       const char *failpoint, cw_cancel_t *cancel, cw_err_t *err);
/* Raises *durable and *commit_us to what the writer committed; its error, or 0. */
int pg_pipe_poll(pg_pipe_t *pipe, uint64_t *durable, int64_t *commit_us, cw_err_t *err);
/* With nothing in flight, raises the durable LSN to lsn and returns true. */
bool pg_pipe_advance_idle(pg_pipe_t *pipe, uint64_t lsn);
/* Waits until every submitted batch is committed; 0, CW_ECANCELED or the writer's error. */
int pg_pipe_drain(pg_pipe_t *pipe, cw_cancel_t *cancel, cw_err_t *err);
/* Lets the writer finish what is queued, joins it and frees the pipe; NULL is a no-op. */
void pg_pipe_stop(pg_pipe_t *pipe);

/* ---- postgres_stream.c --------------------------------------------------- */

/* Writes the pending batch with the last complete transaction as checkpoint. */
int pg_flush(cw_pg_source_t *src, cw_err_t *err);

/* While streaming: sends a standby status when one is due (long scans call it). */
int pg_stream_keepalive(cw_pg_source_t *src, cw_err_t *err);
/* Streams from start_lsn until cancel fires or an error. */
int pg_stream(cw_pg_source_t *src, uint64_t start_lsn, cw_cancel_t *cancel, cw_err_t *err);

#endif
