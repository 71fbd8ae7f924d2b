/*
 * This file contains the hub connection: one libpq connection to the
 * PostgreSQL oplog hub (DESIGN.md §1), opened from a URL and used by the
 * hub's modules (migrations, oplog writer and reader, entity store,
 * metadata, consumers). docs/hub.md describes the schema.
 *
 * Error messages never carry the password: every message that includes the
 * URL goes through cw_secret_mask, and libpq's own connection messages are
 * masked too. SQL identifiers are fixed strings in the code; values always
 * travel as parameters (PQexecParams), never inside the SQL text.
 *
 * THREAD SAFETY: a cw_hub_t is one connection and is used by one thread at a
 * time; each thread (capture writer, apply consumer, API handler) opens its
 * own. The oplog reader LISTENs on its hub's connection, so give a reader a
 * hub of its own.
 */
#ifndef CW_HUB_HUB_H
#define CW_HUB_HUB_H

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"

#include <libpq-fe.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cw_hub cw_hub_t;

/*
 * Transaction-scoped advisory lock every oplog insert takes first (writer,
 * staging promotion), so oplog ids are allocated and committed in order.
 * Session-scoped advisory lock around migrations. Two-key form: (class, id).
 */
#define CW_HUB_LOCK_CLASS 0x63770000   /* "cw\0\0" */
#define CW_HUB_LOCK_OPLOG 1
#define CW_HUB_LOCK_MIGRATE 2
/* Class of the session locks that keep one verify per entity and target (key: hashtext). */
#define CW_HUB_LOCK_VERIFY 0x63770002

/* The channel the writer notifies after each commit that added oplog rows. */
#define CW_HUB_CHANNEL "cachewarp_oplog"

/*
 * Connects to the hub at url (a libpq URL or conninfo string; borrowed) with
 * application_name "cachewarp" and client_encoding UTF8. Returns the hub
 * (owned by the caller, free with cw_hub_close) or NULL with err filled:
 * CW_EDB, `could not connect to hub "postgresql://u:****@h/db": <reason>`,
 * or CW_EAUTH when the hub refused the credentials (see cw_hub_auth_refused).
 * Does not migrate: call cw_hub_migrate (hub/migrations.h).
 */
cw_hub_t *cw_hub_connect(const char *url, cw_err_t *err);

/*
 * cw_hub_connect with the credentials of auth (borrowed, NULL = the url's):
 * pass the configuration's hub.auth wherever the hub url comes from it.
 * Also CW_EAUTH or CW_ETIMEDOUT when the credentials could not be obtained
 * (core/auth.h).
 */
cw_hub_t *cw_hub_connect_auth(const char *url, const cw_auth_config_t *auth, cw_err_t *err);

/*
 * Whether a failed connection attempt (conn borrowed; NULL is false) was
 * refused for its credentials (cw_err_is_auth_refusal on libpq's message):
 * retrying with the same URL cannot succeed. Sources use it too.
 */
bool cw_hub_auth_refused(PGconn *conn);

/* Closes the connection and frees the hub; NULL is a no-op. */
void cw_hub_close(cw_hub_t *hub);

/* The URL with its password masked; borrowed until cw_hub_close. */
const char *cw_hub_url(const cw_hub_t *hub);

/*
 * Copies a libpq message into out without its trailing newline, turning
 * inner newlines and tabs into spaces so the message stays one line, and
 * masking any password the text may contain. For every PostgreSQL
 * connection's messages (the hub's, a target's).
 */
void cw_hub_clean_message(const char *text, char *out, size_t outlen);

/* The libpq connection; borrowed until cw_hub_close. */
PGconn *cw_hub_pgconn(cw_hub_t *hub);

/*
 * The helpers below are for the hub's own modules (src/hub/).
 *
 * cw_hub_exec runs one statement with text parameters (each may be NULL for
 * SQL NULL) and returns its result (owned by the caller, PQclear it) when it
 * succeeded (PGRES_COMMAND_OK or PGRES_TUPLES_OK). Otherwise it returns NULL
 * and fills err with CW_EDB and "<what>: <server message>".
 */
PGresult *cw_hub_exec(cw_hub_t *hub, const char *sql, int nparams,
                      const char *const *params, const char *what, cw_err_t *err);

/*
 * cw_hub_exec of sql with the settings that settings_sql makes local to its
 * transaction ("SELECT set_config(name, value, true), ..."): both go in one
 * pipeline, an implicit transaction, so the settings hold for sql alone, in
 * one round trip. Inside an open transaction it is cw_hub_exec (settings_sql
 * does not run).
 */
PGresult *cw_hub_exec_with_settings(cw_hub_t *hub, const char *settings_sql, const char *sql,
                                    int nparams, const char *const *params, const char *what,
                                    cw_err_t *err);

/*
 * cw_hub_exec for a query that must run as index scans (the oplog's pages:
 * ranges of (entity, id), in their order): sequential and bitmap
 * scans are off while it is planned and runs, and for it alone. PostgreSQL
 * otherwise chooses by its estimates, and on a table it has no statistics
 * for (a new hub) or for an entity they do not know yet it estimated a few
 * hundred rows and planned a bitmap scan of the whole range and a sort, for
 * every page. One round trip: the settings and the query go in one pipeline,
 * an implicit transaction. Inside an open transaction it is cw_hub_exec.
 */
PGresult *cw_hub_exec_index_scans(cw_hub_t *hub, const char *sql, int nparams,
                                  const char *const *params, const char *what, cw_err_t *err);

/* Pages of every entity merged from up to this many entities' range scans are prepared. */
#define CW_HUB_MERGED_PAGE_SLOTS 8

/* Statements a connection prepares once, on first use, and runs by name after. */
typedef enum cw_hub_stmt {
	CW_HUB_STMT_OPLOG_HEADS = 0,   /* each entity's last id after a position (oplog_reader.c) */
	CW_HUB_STMT_OPLOG_PAGE,        /* a page of one entity */
	/* a page of every entity merged from n entities' scans: this slot + n - 1 */
	CW_HUB_STMT_OPLOG_MERGED_PAGE,
	CW_HUB_STMT_END = CW_HUB_STMT_OPLOG_MERGED_PAGE + CW_HUB_MERGED_PAGE_SLOTS,
} cw_hub_stmt_t;

/*
 * cw_hub_exec_index_scans of the statement sql prepared as slot: prepared
 * on this connection the first time (one round trip more), run by name
 * after, so PostgreSQL plans it once its generic plan is as good as the
 * custom ones (after five runs) instead of at every run. sql must be the
 * same text at every call with that slot.
 */
PGresult *cw_hub_exec_index_scans_prepared(cw_hub_t *hub, cw_hub_stmt_t slot, const char *sql,
                                           int nparams, const char *const *params,
                                           const char *what, cw_err_t *err);

/* cw_hub_exec_index_scans_prepared with the results in binary format (cw_hub_exec_index_scans_binary). */
PGresult *cw_hub_exec_index_scans_prepared_binary(cw_hub_t *hub, cw_hub_stmt_t slot,
                                                  const char *sql, int nparams,
                                                  const char *const *params, const char *what,
                                                  cw_err_t *err);

/*
 * cw_hub_exec_index_scans with the results in binary format: integers and
 * timestamps are sent as they are stored, not printed and parsed (read them
 * with cw_hub_int64 and cw_hub_timestamp_us), and text is the server's
 * bytes, not converted to client_encoding: only when cw_hub_binary_text_ok.
 */
PGresult *cw_hub_exec_index_scans_binary(cw_hub_t *hub, const char *sql, int nparams,
                                         const char *const *params, const char *what,
                                         cw_err_t *err);

/* Whether the hub's text in a binary result is UTF-8 as in a text one (its server_encoding). */
bool cw_hub_binary_text_ok(const cw_hub_t *hub);

/*
 * cw_hub_exec with sequential scans off for sql alone, bitmap scans left on:
 * for a query that must read the oplog through its (entity, id) index
 * (retention), which PostgreSQL otherwise passes over for a sequential scan
 * of the whole oplog on a table it has no statistics for.
 */
PGresult *cw_hub_exec_without_seqscan(cw_hub_t *hub, const char *sql, int nparams,
                                      const char *const *params, const char *what,
                                      cw_err_t *err);

/* cw_hub_exec for a statement whose result is not needed. 0 or CW_EDB. */
int cw_hub_command(cw_hub_t *hub, const char *sql, int nparams,
                   const char *const *params, const char *what, cw_err_t *err);

/* BEGIN, COMMIT. 0 or CW_EDB. */
int cw_hub_begin(cw_hub_t *hub, cw_err_t *err);
int cw_hub_commit(cw_hub_t *hub, const char *what, cw_err_t *err);

/* ROLLBACK when a transaction is open (or failed); errors are ignored since
 * the caller already reports the first one. */
void cw_hub_rollback(cw_hub_t *hub);

/* Takes the transaction-scoped oplog lock (inside a transaction). 0 or CW_EDB. */
int cw_hub_lock_oplog(cw_hub_t *hub, cw_err_t *err);

/* Fills err with CW_EDB, "<what>: <libpq's connection message>". Returns CW_EDB. */
int cw_hub_conn_error(cw_hub_t *hub, const char *what, cw_err_t *err);

/* Fills err with CW_EDB, "<what>: <the server's message in res>", falling back
 * to the connection's message when res (may be NULL) has none. Returns CW_EDB. */
int cw_hub_result_error(cw_hub_t *hub, const PGresult *res, const char *what, cw_err_t *err);

/*
 * Appends a PostgreSQL text[] literal of strings ({"a","b\"c"}; a NULL item is NULL) to buf, for
 * passing a list as one parameter (`= ANY($1::text[])`).
 */
void cw_hub_text_array(cw_buf_t *buf, const char *const *items, size_t nitems);

/*
 * Appends s as a quoted SQL literal (PQescapeLiteral: right for the
 * connection's encoding and string settings; NULL appends NULL), for
 * statements sent together in one message without parameters.
 */
void cw_hub_append_literal(cw_hub_t *hub, cw_buf_t *buf, const char *s);

/*
 * An integer column value: decimal digits in a text result, a smallint,
 * integer or bigint in a binary one; 0 for NULL or empty.
 */
int64_t cw_hub_int64(const PGresult *res, int row, int col);

/* PostgreSQL's epoch, 2000-01-01 00:00:00 UTC, in microseconds after the Unix epoch. */
#define CW_HUB_PG_EPOCH_UNIX_US INT64_C(946684800000000)

/*
 * A timestamp in microseconds after the Unix epoch: a timestamptz column of
 * a binary result, or in a text one a bigint of those microseconds (as
 * `(extract(epoch FROM t) * 1000000)::bigint`); 0 for NULL.
 */
int64_t cw_hub_timestamp_us(const PGresult *res, int row, int col);

/* A column value copied (owned by the caller), NULL for SQL NULL. */
char *cw_hub_strdup(const PGresult *res, int row, int col);

#endif
