/* This file contains the hub connection and the statement helpers declared in hub.h. */
#include "hub/hub.h"

#include "core/auth.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/secret.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cw_hub {
	PGconn *conn;
	char *url_masked;   /* owned */
	unsigned prepared;  /* the cw_hub_stmt_t slots prepared on conn, one bit each */
};

_Static_assert(CW_HUB_STMT_END <= 32, "one bit of cw_hub.prepared per statement slot");

void cw_hub_clean_message(const char *text, char *out, size_t outlen)
{
	char *masked = cw_secret_mask(text ? text : "");
	size_t len = strlen(masked);
	while (len > 0 && (masked[len - 1] == '\n' || masked[len - 1] == ' '))
		masked[--len] = '\0';
	for (size_t i = 0; i < len; i++) {
		if (masked[i] == '\n' || masked[i] == '\t')
			masked[i] = ' ';
	}
	snprintf(out, outlen, "%s", masked);
	free(masked);
}

/* Server notices ("schema already exists, skipping") go to the debug log, not stderr. */
static void log_notice(void *arg, const char *message)
{
	(void)arg;
	char line[CW_ERR_MESSAGE_LEN];
	cw_hub_clean_message(message, line, sizeof line);
	cw_log_debug("hub", "%s", line);
}

cw_hub_t *cw_hub_connect(const char *url, cw_err_t *err)
{
	return cw_hub_connect_auth(url, NULL, err);
}

cw_hub_t *cw_hub_connect_auth(const char *url, const cw_auth_config_t *auth, cw_err_t *err)
{
	/*
	 * Keywords before dbname are defaults the URL may override (a hub that
	 * silently drops packets must not hang a worker for the TCP timeout);
	 * those after it are forced.
	 */
	const char *keywords[] = {"connect_timeout", "keepalives_idle", "keepalives_interval",
	                          "dbname", "application_name", "client_encoding", NULL};
	const char *values[] = {"10", "30", "10", url, "cachewarp", "UTF8", NULL};
	cw_hub_t *hub = cw_xcalloc(1, sizeof *hub);
	hub->url_masked = cw_secret_mask(url ? url : "");
	if (url == NULL || url[0] == '\0') {
		cw_err_set(err, CW_EINVAL, "hub", "could not connect to hub: no hub url configured");
		goto fail;
	}
	cw_err_t why;
	if (cw_auth_pg_connect(auth, keywords, values, &hub->conn, &why) != 0) {
		cw_err_set(err, why.code, "hub", "could not connect to hub \"%s\": %s", hub->url_masked,
		           why.message);
		goto fail;
	}
	if (hub->conn == NULL || PQstatus(hub->conn) != CONNECTION_OK) {
		char reason[CW_ERR_MESSAGE_LEN], hint[CW_ERR_MESSAGE_LEN];
		cw_hub_clean_message(hub->conn ? PQerrorMessage(hub->conn) : "out of memory",
		              reason, sizeof reason);
		if (cw_hub_auth_refused(hub->conn) && auth != NULL)
			cw_err_set(err, CW_EAUTH, "hub", "hub \"%s\" refused the credentials of "
			           "authentication \"%s\": %s: fix that entry (hub.auth_id), or the hub's "
			           "pg_hba.conf", hub->url_masked, auth->id, reason);
		else if (cw_hub_auth_refused(hub->conn))
			cw_err_set(err, CW_EAUTH, "hub", "hub \"%s\" refused the credentials: %s: fix "
			           "the user and password of hub.url (or CACHEWARP_HUB_URL), or the "
			           "hub's pg_hba.conf", hub->url_masked, reason);
		else
			cw_err_set(err, CW_EDB, "hub", "could not connect to hub \"%s\": %s%s",
			           hub->url_masked, reason,
			           cw_auth_failure_hint(auth, reason, hint, sizeof hint));
		goto fail;
	}
	PQsetNoticeProcessor(hub->conn, log_notice, NULL);
	return hub;
fail:
	cw_hub_close(hub);
	return NULL;
}

bool cw_hub_auth_refused(PGconn *conn)
{
	return conn != NULL && PQstatus(conn) != CONNECTION_OK &&
	       cw_err_is_auth_refusal(NULL, PQerrorMessage(conn));
}

void cw_hub_close(cw_hub_t *hub)
{
	if (hub == NULL)
		return;
	if (hub->conn != NULL)
		PQfinish(hub->conn);
	free(hub->url_masked);
	free(hub);
}

const char *cw_hub_url(const cw_hub_t *hub)
{
	return hub->url_masked;
}

PGconn *cw_hub_pgconn(cw_hub_t *hub)
{
	return hub->conn;
}

int cw_hub_conn_error(cw_hub_t *hub, const char *what, cw_err_t *err)
{
	char reason[CW_ERR_MESSAGE_LEN];
	cw_hub_clean_message(PQerrorMessage(hub->conn), reason, sizeof reason);
	if (reason[0] == '\0')
		snprintf(reason, sizeof reason, "connection to the hub lost");
	return cw_err_set(err, CW_EDB, "hub", "%s: %s", what, reason);
}

int cw_hub_result_error(cw_hub_t *hub, const PGresult *res, const char *what, cw_err_t *err)
{
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	if (primary == NULL)
		return cw_hub_conn_error(hub, what, err);
	char reason[CW_ERR_MESSAGE_LEN];
	cw_hub_clean_message(primary, reason, sizeof reason);
	return cw_err_set(err, CW_EDB, "hub", "%s: %s", what, reason);
}

/* res when the statement succeeded; else NULL with err set and res cleared. */
static PGresult *succeeded(cw_hub_t *hub, PGresult *res, const char *what, cw_err_t *err)
{
	ExecStatusType status = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK)
		return res;
	cw_hub_result_error(hub, res, what, err);
	PQclear(res);
	return NULL;
}

/* cw_hub_exec with its results in format (0 text, 1 binary). */
static PGresult *exec_as(cw_hub_t *hub, const char *sql, int nparams, const char *const *params,
                         int format, const char *what, cw_err_t *err)
{
	return succeeded(hub, PQexecParams(hub->conn, sql, nparams, NULL, params, NULL, NULL, format),
	                 what, err);
}

PGresult *cw_hub_exec(cw_hub_t *hub, const char *sql, int nparams,
                      const char *const *params, const char *what, cw_err_t *err)
{
	return exec_as(hub, sql, nparams, params, 0, what, err);
}

/* exec_as of the statement prepared as name. */
static PGresult *exec_prepared_as(cw_hub_t *hub, const char *name, int nparams,
                                  const char *const *params, int format, const char *what,
                                  cw_err_t *err)
{
	return succeeded(hub, PQexecPrepared(hub->conn, name, nparams, params, NULL, NULL, format),
	                 what, err);
}

/* Prepares sql as slot's statement on the connection, once; its name in name. 0 or CW_EDB. */
static int prepare_once(cw_hub_t *hub, cw_hub_stmt_t slot, const char *sql, int nparams,
                        char *name, size_t name_len, const char *what, cw_err_t *err)
{
	snprintf(name, name_len, "cachewarp_%d", (int)slot);
	if (hub->prepared & (1u << slot))
		return 0;
	PGresult *res = PQprepare(hub->conn, name, sql, nparams, NULL);
	int rc = 0;
	if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK)
		rc = cw_hub_result_error(hub, res, what, err);
	else
		hub->prepared |= 1u << slot;
	PQclear(res);
	return rc;
}

/* Local to the pipeline's implicit transaction, so to the query after it. */
#define INDEX_SCANS_ONLY_SQL \
	"SELECT set_config('enable_seqscan', 'off', true), " \
	"set_config('enable_bitmapscan', 'off', true)"
#define NO_SEQSCAN_SQL "SELECT set_config('enable_seqscan', 'off', true)"

/*
 * Reads the results of one query of a pipeline up to its terminating NULL.
 * out NULL: its results are discarded; else *out (NULL before) receives its
 * successful result. The pipeline's first failure sets *failed and err.
 * false when the connection broke.
 */
static bool pipeline_results(cw_hub_t *hub, PGresult **out, const char *what, cw_err_t *err,
                             bool *failed)
{
	PGresult *res;
	while ((res = PQgetResult(hub->conn)) != NULL) {
		ExecStatusType status = PQresultStatus(res);
		if ((status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) && out != NULL &&
		    *out == NULL) {
			*out = res;
			continue;
		}
		if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK && !*failed) {
			*failed = true;
			if (status == PGRES_PIPELINE_ABORTED)
				cw_err_set(err, CW_EDB, "hub", "%s: the query did not run", what);
			else
				cw_hub_result_error(hub, res, what, err);
		}
		PQclear(res);
	}
	return PQstatus(hub->conn) == CONNECTION_OK;
}

/*
 * cw_hub_exec_with_settings with the results of sql in format (0 text, 1
 * binary); with name not NULL, sql is the statement the caller prepared
 * under that name, and runs as it.
 */
static PGresult *exec_with_settings(cw_hub_t *hub, const char *settings_sql, const char *name,
                                    const char *sql, int nparams, const char *const *params,
                                    int format, const char *what, cw_err_t *err)
{
	PGconn *conn = hub->conn;
	if (PQtransactionStatus(conn) != PQTRANS_IDLE && name != NULL)
		return exec_prepared_as(hub, name, nparams, params, format, what, err);
	if (PQtransactionStatus(conn) != PQTRANS_IDLE)
		return exec_as(hub, sql, nparams, params, format, what, err);
	if (PQenterPipelineMode(conn) != 1) {
		cw_hub_conn_error(hub, what, err);
		return NULL;
	}
	PGresult *out = NULL;
	bool failed = false;
	if (PQsendQueryParams(conn, settings_sql, 0, NULL, NULL, NULL, NULL, 0) != 1 ||
	    (name != NULL
	     ? PQsendQueryPrepared(conn, name, nparams, params, NULL, NULL, format)
	     : PQsendQueryParams(conn, sql, nparams, NULL, params, NULL, NULL, format)) != 1 ||
	    PQpipelineSync(conn) != 1) {
		failed = true;
		cw_hub_conn_error(hub, what, err);
	} else if (!pipeline_results(hub, NULL, what, err, &failed) ||
	           !pipeline_results(hub, &out, what, err, &failed)) {
		if (!failed)
			cw_hub_conn_error(hub, what, err);
		failed = true;
	} else {
		PGresult *sync = PQgetResult(conn);   /* PGRES_PIPELINE_SYNC */
		if (PQresultStatus(sync) != PGRES_PIPELINE_SYNC && !failed) {
			failed = true;
			cw_hub_conn_error(hub, what, err);
		}
		PQclear(sync);
	}
	/* A broken connection cannot leave pipeline mode; the caller reconnects. */
	if (PQexitPipelineMode(conn) != 1 && !failed) {
		failed = true;
		cw_hub_conn_error(hub, what, err);
	}
	if (failed) {
		PQclear(out);
		return NULL;
	}
	return out;
}

PGresult *cw_hub_exec_with_settings(cw_hub_t *hub, const char *settings_sql, const char *sql,
                                    int nparams, const char *const *params, const char *what,
                                    cw_err_t *err)
{
	return exec_with_settings(hub, settings_sql, NULL, sql, nparams, params, 0, what, err);
}

PGresult *cw_hub_exec_index_scans(cw_hub_t *hub, const char *sql, int nparams,
                                  const char *const *params, const char *what, cw_err_t *err)
{
	return exec_with_settings(hub, INDEX_SCANS_ONLY_SQL, NULL, sql, nparams, params, 0, what,
	                          err);
}

/* The prepared forms of cw_hub_exec_index_scans, results in format (0 text, 1 binary). */
static PGresult *index_scans_prepared(cw_hub_t *hub, cw_hub_stmt_t slot, const char *sql,
                                      int nparams, const char *const *params, int format,
                                      const char *what, cw_err_t *err)
{
	char name[32];
	if (prepare_once(hub, slot, sql, nparams, name, sizeof name, what, err) != 0)
		return NULL;
	return exec_with_settings(hub, INDEX_SCANS_ONLY_SQL, name, sql, nparams, params, format,
	                          what, err);
}

PGresult *cw_hub_exec_index_scans_prepared(cw_hub_t *hub, cw_hub_stmt_t slot, const char *sql,
                                           int nparams, const char *const *params,
                                           const char *what, cw_err_t *err)
{
	return index_scans_prepared(hub, slot, sql, nparams, params, 0, what, err);
}

PGresult *cw_hub_exec_index_scans_prepared_binary(cw_hub_t *hub, cw_hub_stmt_t slot,
                                                  const char *sql, int nparams,
                                                  const char *const *params, const char *what,
                                                  cw_err_t *err)
{
	return index_scans_prepared(hub, slot, sql, nparams, params, 1, what, err);
}

PGresult *cw_hub_exec_index_scans_binary(cw_hub_t *hub, const char *sql, int nparams,
                                         const char *const *params, const char *what,
                                         cw_err_t *err)
{
	return exec_with_settings(hub, INDEX_SCANS_ONLY_SQL, NULL, sql, nparams, params, 1, what,
	                          err);
}

bool cw_hub_binary_text_ok(const cw_hub_t *hub)
{
	const char *encoding = PQparameterStatus(hub->conn, "server_encoding");
	return encoding != NULL &&
	       (strcmp(encoding, "UTF8") == 0 || strcmp(encoding, "SQL_ASCII") == 0);
}

PGresult *cw_hub_exec_without_seqscan(cw_hub_t *hub, const char *sql, int nparams,
                                      const char *const *params, const char *what,
                                      cw_err_t *err)
{
	return exec_with_settings(hub, NO_SEQSCAN_SQL, NULL, sql, nparams, params, 0, what, err);
}

int cw_hub_command(cw_hub_t *hub, const char *sql, int nparams,
                   const char *const *params, const char *what, cw_err_t *err)
{
	PGresult *res = cw_hub_exec(hub, sql, nparams, params, what, err);
	if (res == NULL)
		return CW_EDB;
	PQclear(res);
	return 0;
}

int cw_hub_begin(cw_hub_t *hub, cw_err_t *err)
{
	return cw_hub_command(hub, "BEGIN", 0, NULL, "could not begin a hub transaction", err);
}

int cw_hub_commit(cw_hub_t *hub, const char *what, cw_err_t *err)
{
	PGresult *res = cw_hub_exec(hub, "COMMIT", 0, NULL, what, err);
	if (res == NULL)
		return CW_EDB;
	/* COMMIT of a transaction that already failed answers ROLLBACK. */
	int rc = 0;
	if (strcmp(PQcmdStatus(res), "COMMIT") != 0)
		rc = cw_err_set(err, CW_EDB, "hub", "%s: the transaction was rolled back", what);
	PQclear(res);
	return rc;
}

void cw_hub_rollback(cw_hub_t *hub)
{
	if (PQtransactionStatus(hub->conn) == PQTRANS_IDLE)
		return;
	PGresult *res = PQexec(hub->conn, "ROLLBACK");
	PQclear(res);
}

int cw_hub_lock_oplog(cw_hub_t *hub, cw_err_t *err)
{
	char lock_class[16], lock_id[16];
	snprintf(lock_class, sizeof lock_class, "%d", CW_HUB_LOCK_CLASS);
	snprintf(lock_id, sizeof lock_id, "%d", CW_HUB_LOCK_OPLOG);
	const char *params[] = {lock_class, lock_id};
	return cw_hub_command(hub, "SELECT pg_advisory_xact_lock($1::int4, $2::int4)", 2,
	                      params, "could not lock the oplog", err);
}

void cw_hub_append_literal(cw_hub_t *hub, cw_buf_t *buf, const char *s)
{
	if (s == NULL) {
		cw_buf_append_str(buf, "NULL");
		return;
	}
	char *quoted = PQescapeLiteral(hub->conn, s, strlen(s));
	if (quoted == NULL)
		abort();   /* out of memory (the text is UTF-8 the caller produced) */
	cw_buf_append_str(buf, quoted);
	PQfreemem(quoted);
}

void cw_hub_text_array(cw_buf_t *buf, const char *const *items, size_t nitems)
{
	cw_buf_append_char(buf, '{');
	for (size_t i = 0; i < nitems; i++) {
		if (i > 0)
			cw_buf_append_char(buf, ',');
		if (items[i] == NULL) {
			cw_buf_append_str(buf, "NULL");
			continue;
		}
		cw_buf_append_char(buf, '"');
		for (const char *p = items[i]; *p; p++) {
			if (*p == '"' || *p == '\\')
				cw_buf_append_char(buf, '\\');
			cw_buf_append_char(buf, *p);
		}
		cw_buf_append_char(buf, '"');
	}
	cw_buf_append_char(buf, '}');
}

/* A binary integer column value: big-endian, 2, 4 or 8 bytes (0 for another length). */
static int64_t binary_int(const PGresult *res, int row, int col)
{
	const unsigned char *b = (const unsigned char *)PQgetvalue(res, row, col);
	int len = PQgetlength(res, row, col);
	if (len != 2 && len != 4 && len != 8)
		return 0;
	uint64_t value = 0;
	for (int i = 0; i < len; i++)
		value = value << 8 | b[i];
	if (len < 8 && (b[0] & 0x80))   /* sign-extend */
		value |= ~UINT64_C(0) << (8 * len);
	return (int64_t)value;
}

int64_t cw_hub_timestamp_us(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return 0;
	if (PQfformat(res, col) == 1)
		return binary_int(res, row, col) + CW_HUB_PG_EPOCH_UNIX_US;
	return cw_hub_int64(res, row, col);
}

int64_t cw_hub_int64(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return 0;
	if (PQfformat(res, col) == 1)
		return binary_int(res, row, col);
	const char *text = PQgetvalue(res, row, col);
	/* PostgreSQL prints a bigint as digits: read up to 18 of them without strtoll. */
	int64_t value = 0;
	int n = 0;
	for (; n < 18 && text[n] >= '0' && text[n] <= '9'; n++)
		value = value * 10 + (text[n] - '0');
	if (n > 0 && text[n] == '\0')
		return value;
	return strtoll(text, NULL, 10);
}

char *cw_hub_strdup(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return NULL;
	return cw_xstrdup(PQgetvalue(res, row, col));
}
