/*
 * This file contains what the files of verify's sides share (sides.h): the
 * endpoint every side is, the PostgreSQL helpers, and each kind's opener.
 *   sides.c           PostgreSQL sources and targets, the dispatch
 *   sides_mongo.c     MongoDB sources and targets
 *   sides_sqlite.c    SQLite caches
 *   sides_mysql.c     MySQL and MariaDB sources
 *   sides_columns.c   a PostgreSQL target's table of a MongoDB or MySQL entity
 *
 * THREAD SAFETY: as sides.h.
 */
#ifndef CW_VERIFY_SIDES_INTERNAL_H
#define CW_VERIFY_SIDES_INTERNAL_H

#include "capture/pgoutput.h"
#include "core/buf.h"
#include "core/projection.h"
#include "verify/forms.h"
#include "verify/sides.h"

#include <libpq-fe.h>
#include <mongoc/mongoc.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#define VS_DOMAIN "verify"

/* How a side digests a row (forms.h): the data's values, or the target's own form. */
typedef enum endpoint_form {
	FORM_VALUES,                /* row_digest.h */
	FORM_BSON,                  /* a MongoDB target's typed documents */
	FORM_PG_COLUMNS,            /* a PostgreSQL target's columns made from MongoDB documents */
} endpoint_form_t;

typedef enum endpoint_kind {
	EP_PG_SOURCE,
	EP_MONGO_SOURCE,
	EP_MYSQL_SOURCE,
	EP_MONGO_TARGET,
	EP_SQLITE_TARGET,
	EP_PG_TARGET,
} endpoint_kind_t;

struct cw_verify_endpoint {
	cw_verify_side_t side;
	endpoint_kind_t kind;
	cw_entity_t entity;
	cw_decimal_mode_t mode;
	endpoint_form_t form;
	cw_verify_bson_form_t bson_form;   /* FORM_BSON (entity: this endpoint's) */
	cw_verify_pg_model_t model;        /* FORM_PG_COLUMNS: the target table's columns */
	size_t ncolumns;            /* column digests per row */
	uint64_t estimate;
	/* PostgreSQL source or target */
	PGconn *conn;
	char *qtable;               /* "schema"."table", quoted */
	char *select;               /* the query that reads every row */
	char *target_name;          /* PostgreSQL target: its name, for its positions */
	char *qmeta;                /* PostgreSQL target: its meta schema, quoted */
	char *soft_column;          /* PostgreSQL target with soft deletes: the column */
	int *shape_at;              /* column form, typed: each shape column's model column or -1 */
	char nspname[CW_TABLE_PART_MAX + 1], relname[CW_TABLE_PART_MAX + 1];
	cw_pgoutput_t *dec;
	cw_projection_t *proj;
	/* MongoDB source or target */
	mongoc_client_t *client;
	mongoc_collection_t *collection;
	mongoc_collection_t *positions;   /* target: _cachewarp_position */
	bool exact_documents;       /* source: a whole document as the hub keeps it (not relaxed) */
	struct vs_mysql *mysql;     /* MySQL source (sides_mysql.c) */
	/* SQLite target */
	sqlite3 *db;
	char *path;
};


/* One read of a PostgreSQL table: its arguments and scratch space. */
typedef struct pg_batch_ctx {
	cw_verify_endpoint_t *ep;
	cw_verify_want_fn want;
	void *want_arg;
	cw_verify_row_fn on_row;
	void *arg;
	cw_buf_t projected;
	uint64_t *columns;
} pg_batch_ctx_t;

/* ---- sides.c ---- */

/* A new endpoint of kind for entity (copied), values under mode. */
cw_verify_endpoint_t *vs_endpoint_new(endpoint_kind_t kind, const cw_entity_t *entity,
                                      cw_decimal_mode_t mode);
/* Makes ep digest rows in form (the column form of a document counts no columns). */
void vs_set_form(cw_verify_endpoint_t *ep, endpoint_form_t form);
/*
 * A source row's digest in the form its target stores it. CW_EINVAL for a
 * row the target cannot take either (it quarantines it): not compared.
 */
int vs_source_digest(cw_verify_endpoint_t *ep, const char *doc_id, const char *data,
                     uint64_t *row, uint64_t *columns, cw_err_t *err);
/* err from a failed result (NULL: the connection's message), "<what>: <message>". CW_EDB. */
int vs_pg_error(PGconn *conn, const PGresult *res, const char *what, cw_err_t *err);
/* Runs sql; the result (PQclear it), or NULL with err. */
PGresult *vs_pg_query(PGconn *conn, const char *sql, int nparams, const char *const *params,
                      const char *what, cw_err_t *err);

/* ---- sides_mongo.c ---- */

cw_verify_endpoint_t *vs_mongo_source_open(const cw_source_config_t *source,
                                           const cw_entity_t *entity,
                                           const cw_target_config_t *target, cw_err_t *err);
cw_verify_endpoint_t *vs_mongo_target_open(const cw_config_t *config,
                                           const cw_target_config_t *target,
                                           const cw_entity_t *entity, cw_err_t *err);
/* The target's position of the entity. 0 or CW_EDB. */
int vs_mongo_target_applied(cw_verify_endpoint_t *ep, int64_t *applied, cw_err_t *err);

/* ---- sides_mysql.c ---- */

cw_verify_endpoint_t *vs_mysql_source_open(const cw_source_config_t *source,
                                           const cw_entity_t *entity,
                                           const cw_target_config_t *target, cw_err_t *err);
/* The source's @@gtid_binlog_pos into *gtid (owned by the caller). 0 or CW_EDB. */
int vs_mysql_position(cw_verify_endpoint_t *ep, char **gtid, cw_err_t *err);
/* Frees a MySQL source's own part; NULL is a no-op. */
void vs_mysql_free(struct vs_mysql *my);

/* ---- sides_sqlite.c ---- */

cw_verify_endpoint_t *vs_sqlite_open(const cw_target_config_t *target,
                                     const cw_entity_t *entity, cw_err_t *err);
/* The oplog id the cache applied. 0 or CW_EDB. */
int vs_sqlite_applied(cw_verify_endpoint_t *ep, int64_t *applied, cw_err_t *err);

/* ---- sides_columns.c ---- */

/*
 * Reads the target table's columns into ep->model (the field each holds:
 * its comment's, else its name) and ep->select, the query that reads every
 * row back: id, the data columns, _extra, _version. 0, CW_ENOTFOUND or CW_EDB.
 */
int vs_columns_load(cw_verify_endpoint_t *ep, cw_err_t *err);
/* One fetched batch of such a table: each row's digest from its columns' text. */
int vs_columns_rows(pg_batch_ctx_t *ctx, PGresult *res, cw_err_t *err);

#endif
