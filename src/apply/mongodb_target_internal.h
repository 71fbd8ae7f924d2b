/*
 * This file contains what the MongoDB target's two files share: the backend
 * (mongodb_target.c: connection, positions,
 * entities, metrics) and the batch writer (mongodb_target_apply.c: each
 * write as a BSON operation, the ordered bulk write, refused documents set
 * aside). docs/targets-mongodb.md is the user's description.
 *
 * THREAD SAFETY: one target's functions run on its apply loop's thread.
 */
#ifndef CW_APPLY_MONGODB_TARGET_INTERNAL_H
#define CW_APPLY_MONGODB_TARGET_INTERNAL_H

#include "apply/coalesce.h"
#include "apply/layout.h"
#include "core/component.h"
#include "core/config.h"
#include "core/entity.h"
#include "core/err.h"
#include "hub/table_record.h"

#include <mongoc/mongoc.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MDB_COMPONENT "mongodb_target"
#define MDB_POSITION_COLLECTION "_cachewarp_position"
#define MDB_QUARANTINE_COLLECTION "_cachewarp_quarantine"
/* The bookkeeping subdocument of every document the target writes. */
#define MDB_META_FIELD "_cachewarp"

/* What the target knows of one entity. */
typedef struct mdb_entity {
	char *entity;
	char *collection;        /* validated (cw_collection_name_validate) */
	cw_layout_kind_t layout;
	bool excluded;           /* entities[].targets.<name>.exclude */
	/* typed layout: the shape's column types, by name */
	char **col_names;
	cw_column_type_t *col_types;
	size_t ncols;
	/* dynamic layout: a PostgreSQL source's record of its columns ("table_types:<entity>") */
	cw_table_record_t src;
	int64_t src_version;     /* the entity version it was read for */
	bool waited_for_record;  /* reported lost once to read a record missing at open */
	/*
	 * The greatest id a batch meant to write when the entity was opened
	 * (its stored intent, "writing_upto"): a write of a change up to it may
	 * meet a newer version written before a crash and is guarded by
	 * _cachewarp.oplog_id; a later change cannot, and filters on _id.
	 */
	int64_t guard_until;
} mdb_entity_t;

typedef struct mdb_target {
	char *name;
	const cw_component_ctx_t *ctx;     /* borrowed for the target's lifetime */
	const cw_target_config_t *cfg;     /* borrowed from ctx */
	char *url_masked;
	char *scope;                       /* the global position's key: "*" or "*a,b" */
	char *database;
	mongoc_client_t *client;           /* NULL until connected */
	mongoc_write_concern_t *write_concern;
	bool connected;                    /* the last round trip succeeded */
	bool transactions;                 /* the server runs multi-document transactions */
	bool was_down;                     /* a round trip failed since the process started */
	mdb_entity_t *entities;
	size_t nentities;
	int64_t position;                  /* the global position handed over last */
	int64_t position_stored;
	int64_t position_stored_ms;
	int64_t drain_started_ms;          /* the drain-rate window */
	int64_t drain_changes;
	char labels[160];                  /* target="<name>" */
} mdb_target_t;

/* ---- mongodb_target.c ---------------------------------------------------- */

/*
 * err from a failed driver call: CW_EAUTH for refused credentials, else
 * CW_EDB "target "<name>": <what>: <server message>". A network or server
 * selection error also marks the target down. Returns the code.
 */
int mdb_error(mdb_target_t *t, const bson_error_t *error, const char *what, cw_err_t *err);

/* The collection of the target's database (owned by the caller: mongoc_collection_destroy). */
mongoc_collection_t *mdb_collection(mdb_target_t *t, const char *name);

/* Counts n document writes with result ("ok", "skipped", "quarantined", "failed"). */
void mdb_count_writes(mdb_target_t *t, const char *result, size_t n);

/*
 * Stores field ("position", or "writing_upto": a batch's intent, written
 * before its bulk write) of key ("<entity>" or the scope) in
 * _cachewarp_position, in session when not NULL. 0 or CW_E*.
 */
int mdb_store_position(mdb_target_t *t, mongoc_client_session_t *session, const char *key,
                       const char *field, int64_t position, unsigned *labels, cw_err_t *err);

/*
 * Whether a server's handshake reply (hello / isMaster, borrowed) promises
 * multi-document transactions: logical sessions, and a replica set member
 * of wire version 7 (MongoDB 4.0) or a mongos of wire version 8 (4.2).
 */
bool mdb_server_runs_transactions(const bson_t *hello);

/* Where a batch's position is written, as the log line at connect says it. */
const char *mdb_position_write_mode(bool transactions);

/*
 * Whether entity (borrowed) is left out of target (borrowed) by the entity
 * selection: targets[].entities (only these), targets[].exclude (entity
 * names, source collections or tables), entities[].targets.<t>.exclude.
 */
bool mdb_entity_left_out(const cw_target_config_t *target, const cw_config_t *config,
                         const cw_entity_t *entity);

/* ---- mongodb_target_apply.c -------------------------------------------- */

/*
 * Applies writes to the entity's collection as ordered bulk writes and
 * stores upto as its position (in the same transaction when the server runs
 * them, else right after: every write is guarded by its hub id, so replaying
 * the batch changes nothing). A document the server refuses for itself (too
 * large, a field name it does not take) is quarantined and the rest goes
 * on; a duplicate-key error of a guarded write means a newer version is
 * there, and is skipped. 0, or CW_EDB / CW_EIO with err.
 */
int mdb_apply(mdb_target_t *t, mdb_entity_t *ent, const cw_write_list_t *writes, int64_t upto,
              cw_err_t *err);

/* Whether a server error code is the document's doing (quarantine it), not the server's state. */
bool mdb_error_is_permanent(uint32_t code);

/* The error labels of a server reply (borrowed; NULL = none) that decide a retry. */
#define MDB_LABEL_TRANSIENT 1u        /* TransientTransactionError: run the transaction again */
#define MDB_LABEL_UNKNOWN_COMMIT 2u   /* UnknownTransactionCommitResult: commit again */
unsigned mdb_error_labels(const bson_t *reply);

/* Most attempts at one batch's transaction (and at its commit). */
#define MDB_TXN_ATTEMPTS 5

/* What follows one attempt at a batch in a transaction. */
typedef enum mdb_txn_next {
	MDB_TXN_DONE = 0,       /* committed */
	MDB_TXN_RETRY,          /* aborted by a transient error: the whole transaction again */
	MDB_TXN_RETRY_COMMIT,   /* the commit's outcome is unknown: commit again */
	MDB_TXN_WITHOUT,        /* a write was refused (the transaction is lost): write the batch
	                         * without one, so the refused document is quarantined */
	MDB_TXN_FAIL,           /* an error to report: the batch is written again later */
} mdb_txn_next_t;

/*
 * The decision after attempt (1-based) at a batch: failed = the attempt
 * returned an error, in_commit = at the commit, labels = the error's
 * (mdb_error_labels), write_errors = a write was refused (no error).
 */
mdb_txn_next_t mdb_txn_next(bool failed, bool in_commit, unsigned labels, bool write_errors,
                            int attempt);

#endif
