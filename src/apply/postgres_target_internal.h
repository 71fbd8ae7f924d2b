/*
 * This file contains what the PostgreSQL target's files share: the backend
 * (postgres_target.c: connection, bookkeeping tables, positions, runs,
 * entities), the table model (postgres_target_table.c: each entity's table
 * read from the catalog, created, its columns named, added and widened),
 * the batch writer (postgres_target_apply.c: one coalesced batch in one
 * transaction) and the quarantine's retry (postgres_target_quarantine.c).
 * docs/targets-postgres.md is the user's description.
 *
 * THREAD SAFETY: one target's functions run on its apply loop's thread.
 */
#ifndef CW_APPLY_POSTGRES_TARGET_INTERNAL_H
#define CW_APPLY_POSTGRES_TARGET_INTERNAL_H

#include "apply/coalesce.h"
#include "apply/layout.h"
#include "apply/pg_columns.h"
#include "core/buf.h"
#include "core/component.h"
#include "core/config.h"
#include "core/entity.h"
#include "core/err.h"
#include "hub/table_record.h"

#include <libpq-fe.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#define PGT_COMPONENT "postgres_target"
/* The jsonb column of the fields past the column budget. */
#define PGT_EXTRA_COLUMN "_extra"

/* One column of an entity's table that holds a field of the data. */
typedef struct pgt_column {
	char *name;              /* the column's name (pg_columns.h naming rule) */
	char *field;             /* the data key it holds */
	char *type;              /* its SQL type as format_type() prints it */
	cw_pgc_kind_t kind;
} pgt_column_t;

/* What the target knows of one entity's table. */
typedef struct pgt_table {
	char *entity;
	char *qname;             /* "schema"."entity", quoted */
	cw_layout_kind_t layout;
	bool loaded;             /* read from the catalog since the last failure */
	bool exists;
	pgt_column_t *cols;      /* the data columns, in table order */
	size_t ncols;
	char **key;              /* primary key columns, in key order */
	char **key_types;
	char **key_fields;       /* the data keys the key columns hold (written from doc_id) */
	size_t nkey;
	bool has_extra;          /* the table has "_extra jsonb" */
	size_t nattrs;           /* attributes, dropped ones included (PostgreSQL's 1,600 limit) */
	size_t hint;             /* where the next field's column is looked for first */
	/* A PostgreSQL source's record of its table's columns ("table_types:<entity>"). */
	cw_table_record_t src;
	int64_t src_version;     /* the entity version it was read for */
	int64_t src_wanted;      /* a write of this generation came before its record was read */
	bool waited_for_record;  /* reported lost once to read the record first */
	bool reconcile;          /* a new record: align column types with it at the next write */
} pgt_table_t;

typedef struct pg_target {
	char *name;
	const cw_component_ctx_t *ctx;     /* borrowed for the target's lifetime */
	const cw_target_config_t *cfg;     /* borrowed from ctx */
	char *url_masked;
	char *scope;                       /* the global position's row: "*" or "*a,b" */
	PGconn *conn;
	bool ready;                        /* schemas and bookkeeping tables checked */
	char *qschema;                     /* quoted identifiers */
	char *qmeta;
	char *qsoft;
	pgt_table_t *tables;
	size_t ntables;
	int64_t run_id;                    /* this process's row in runs; 0 = none yet */
	int64_t position;                  /* the global position handed over last */
	int64_t position_stored;           /* ... and the one the target holds */
	int64_t position_stored_ms;
	int64_t quarantine_checked_ms;
	size_t temp_cols;                  /* value columns the session's batch table has; 0 =
	                                      not known to exist (new session, rolled back) */
	int64_t rows_applied;
	int64_t run_reported_ms;
	char last_error[CW_ERR_MESSAGE_LEN];
	char sqlstate[6];                  /* of the last failed statement; "" for none */
	char labels[160];                  /* target="<name>" */
	cw_buf_t sql;                      /* scratch buffers of the apply path */
	cw_buf_t text;
} pg_target_t;

/* ---- postgres_target.c -------------------------------------------------- */

/*
 * Runs sql (nparams text parameters) on the target; the result is returned
 * (PQclear it) when it succeeded, else NULL with err: CW_EDB
 * "<what>: <server message>" in the target's domain.
 */
PGresult *pgt_exec(pg_target_t *t, const char *sql, int nparams, const char *const *params,
                   const char *what, cw_err_t *err);
/* pgt_exec without a result. 0 or CW_EDB. */
int pgt_command(pg_target_t *t, const char *sql, int nparams, const char *const *params,
                const char *what, cw_err_t *err);
/* err from a failed result (may be NULL: the connection's message). Returns CW_EDB. */
int pgt_result_error(pg_target_t *t, const PGresult *res, const char *what, cw_err_t *err);

/*
 * Stores position as entity's (or the target's scope's) row of the positions
 * table with its checksum (hub/position_check.h), in the transaction open on
 * t's connection if any. 0 or CW_EDB.
 */
int pgt_position_write(pg_target_t *t, const char *entity, int64_t position, cw_err_t *err);
/*
 * pgt_position_write and COMMIT of the open transaction, in one round trip
 * (the values as literals). 0, or CW_EDB with the transaction not committed.
 */
int pgt_position_commit(pg_target_t *t, const char *entity, int64_t position, cw_err_t *err);
/* Appends name as a quoted identifier. */
void pgt_quote(cw_buf_t *out, const char *name);
/* Appends text as a quoted literal. */
void pgt_literal(cw_buf_t *out, const char *text);

/* ---- postgres_target_table.c -------------------------------------------- */

/* The table entry of entity (created when new). */
pgt_table_t *pgt_table_for(pg_target_t *t, const cw_entity_t *entity);
/* Frees what a table entry owns. */
void pgt_table_free(pgt_table_t *tbl);
/* Forgets the catalog view: read again before the next write. */
void pgt_table_forget(pgt_table_t *tbl);
/* Reads the table's columns and key from the catalog. 0 or CW_EDB. */
int pgt_table_load(pg_target_t *t, pgt_table_t *tbl, cw_err_t *err);
/* Sets the source's record of its columns from its JSON ("table_types:<entity>"); NULL: none. */
void pgt_table_set_record(pgt_table_t *tbl, const char *json, int64_t version);
/*
 * Creates the table when missing, inside the caller's transaction, and
 * records it in schema_history. 0 or CW_EDB.
 */
int pgt_table_create(pg_target_t *t, pgt_table_t *tbl, const cw_entity_t *entity, cw_err_t *err);

/* Appends the table's key columns, quoted, separated by ", ". */
void pgt_key_list(const pgt_table_t *tbl, cw_buf_t *sql);
/* Frees items and the n strings it holds (NULL: nothing). */
void pgt_strings_free(char **items, size_t n);

/* A schema change made in the open transaction: logged and counted once it commits. */
typedef struct pgt_change_note {
	char change[24];
	char column[CW_PGC_NAME_MAX + 1];
	char old_type[64];
	char new_type[64];
} pgt_change_note_t;

/* One apply call's state. */
typedef struct pgt_apply_ctx {
	pg_target_t *t;
	pgt_table_t *tbl;
	const cw_entity_t *entity;
	bool careful;                /* one row per savepoint, failing rows quarantined */
	pgt_change_note_t *notes;
	size_t nnotes;
	size_t quarantined;
	size_t warnings;
} pgt_apply_ctx_t;

/*
 * One upsert's data, read once per batch for both passes (pgt_evolve, then
 * add_row): its fields and what each value is.
 */
typedef struct pgt_parsed_row {
	cw_json_fields_t store, nested;
	const cw_json_fields_t *fields;  /* store, nested, the write's merged fields, or NULL */
	cw_pgc_read_t *values;           /* one per field; owned */
	cw_err_t why;                    /* fields NULL: why the data cannot be read ("" for none) */
} pgt_parsed_row_t;

/* Creates the entity's table in the open transaction. 0 or CW_EDB. */
int pgt_create_table(pgt_apply_ctx_t *a, cw_err_t *err);
/*
 * Aligns the columns with a PostgreSQL source's new record of their types,
 * each change in a savepoint of its own. 0 or CW_EDB.
 */
int pgt_reconcile_record(pgt_apply_ctx_t *a, int64_t oplog_id, cw_err_t *err);
/*
 * Pass one of a batch: adds or widens the columns every upsert of writes
 * (rows: their data) needs, in the open transaction. 0 or CW_EDB.
 */
int pgt_evolve(pgt_apply_ctx_t *a, const cw_write_list_t *writes, const pgt_parsed_row_t *rows,
               cw_err_t *err);

/*
 * The per-field lookups of both passes over a batch's rows (pgt_evolve and
 * the rows' encoding), inline: they run for every field of every row.
 */

/* A field name that holds a NUL cannot name a column or a comment. */
static inline bool pgt_field_usable(const char *key, size_t len)
{
	return len > 0 && memchr(key, '\0', len) == NULL;
}

/* The column of a data key, or -1; looks where the previous field's column ended first. */
static inline ssize_t pgt_find_column(pgt_table_t *tbl, const char *key, size_t len)
{
	for (size_t n = 0; n < tbl->ncols; n++) {
		size_t i = (tbl->hint + n) % tbl->ncols;
		const char *f = tbl->cols[i].field;
		if (strncmp(f, key, len) == 0 && f[len] == '\0') {
			tbl->hint = i + 1;
			return (ssize_t)i;
		}
	}
	return -1;
}

/* Whether a data key is the table's key (written from doc_id) or the document's _id. */
static inline bool pgt_is_key_field(const pgt_table_t *tbl, const char *key, size_t len)
{
	if (tbl->layout == CW_LAYOUT_DOCUMENT)
		return len == 3 && memcmp(key, "_id", 3) == 0;
	for (size_t k = 0; k < tbl->nkey; k++) {
		const char *f = tbl->key_fields[k];
		if (f != NULL && strlen(f) == len && memcmp(f, key, len) == 0)
			return true;
	}
	return false;
}

/* ---- postgres_target_apply.c -------------------------------------------- */

/*
 * Applies writes to entity's table and stores upto as its position, in one
 * transaction; a value or row the table refuses is quarantined and the rest
 * is written. *lost: the table went away (nothing applied). 0 or CW_EDB.
 */
int pgt_apply(pg_target_t *t, const cw_entity_t *entity, const cw_write_list_t *writes,
              int64_t upto, bool *lost, cw_err_t *err);

/* Appends the condition matching table row t to batch row r ("doc_id") by key. */
void pgt_key_match(const pgt_table_t *tbl, cw_buf_t *sql);
/* Whether a statement's failure (its SQLSTATE) is the row's doing: quarantine it. */
bool pgt_row_refused(const char *sqlstate);

/* ---- postgres_target_quarantine.c --------------------------------------- */

/*
 * Writes the quarantined values whose column now holds them (a user or the
 * source's record changed its type) into their rows, unless the row changed
 * since, and marks them resolved. *resolved counts them. 0 or CW_EDB.
 */
int pgt_quarantine_retry(pg_target_t *t, size_t *resolved, cw_err_t *err);

#endif
