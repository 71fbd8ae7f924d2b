/*
 * This file contains the error convention every cachewarp module follows:
 * functions that can fail return 0 or a negative CW_E* code (or NULL), and
 * fill an optional cw_err_t with the code, a domain and a message, the way
 * libmongoc fills bson_error_t.
 *
 * Messages are lowercase, carry no final period, say what failed first and
 * quote the subject: could not open cache "products": disk full.
 */
#ifndef CW_CORE_ERR_H
#define CW_CORE_ERR_H

#include <stdbool.h>
#include <stddef.h>

enum {
	CW_OK = 0,
	CW_EINVAL = -1,     /* bad input: config, entity name, request body */
	CW_ENOTFOUND = -2,  /* the named thing does not exist */
	CW_ECONFLICT = -3,  /* exists already, or contradicts what exists */
	CW_EIO = -4,        /* file system or network I/O failed */
	CW_EDB = -5,        /* a database (hub, source, target) refused or failed */
	CW_ETIMEDOUT = -6,  /* a deadline passed */
	CW_ECLOSED = -7,    /* the queue, connection or component was closed */
	CW_ECANCELED = -8,  /* shutdown asked the work to stop */
	CW_EPROTO = -9,     /* a peer sent bytes we cannot decode */
	CW_EINTERNAL = -10, /* a bug: an invariant did not hold */
	CW_EAUTH = -11,     /* a server refused the credentials: retrying cannot help */
	CW_EENTITY = -12,   /* one entity cannot be applied as it is (apply/stream.h): its siblings go on */
};

#define CW_ERR_DOMAIN_LEN 24
#define CW_ERR_MESSAGE_LEN 512

typedef struct cw_err {
	int code;                          /* one of CW_E*, 0 when unset */
	char domain[CW_ERR_DOMAIN_LEN];    /* module that set it: "config", "hub" */
	char message[CW_ERR_MESSAGE_LEN];  /* human readable, see above */
	/* The server's own code when a server refused: a SQLSTATE ("23514"), a MongoDB
	 * error code ("11000"); "" when none. cw_err_set clears it. */
	char server_code[16];
} cw_err_t;

/*
 * Fills err (when not NULL) and returns code, so a caller can write
 * `return cw_err_set(err, CW_EINVAL, "entity", "name \"%s\" ...", name);`.
 * The message is truncated to CW_ERR_MESSAGE_LEN - 1 bytes.
 */
int cw_err_set(cw_err_t *err, int code, const char *domain, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Records the server's code of the error err holds (NULL or "" clears it); NULL err is a no-op. */
void cw_err_set_server_code(cw_err_t *err, const char *code);

/* Prefixes err's message with "context: ", keeping code, domain and server code. */
void cw_err_prefix(cw_err_t *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Clears err to the "no error" state; NULL is a no-op. */
void cw_err_clear(cw_err_t *err);

/*
 * Whether an error needs a person to change something (a setting, a
 * privilege, a password: CW_EINVAL, CW_EAUTH) before a retry can succeed, so
 * retrying soon only repeats it.
 */
bool cw_err_needs_a_fix(int code);

/* Short stable name of a code ("invalid", "not_found", ...), for APIs and metrics. */
const char *cw_err_code_name(int code);

/*
 * Whether a PostgreSQL error is a refusal of the credentials (CW_EAUTH):
 * SQLSTATE 28P01 (invalid password) or 28000 (invalid authorization:
 * pg_hba.conf, an unknown role), or, when there is no SQLSTATE (a failed
 * connection), libpq's message ("password authentication failed", ...).
 * Both arguments may be NULL.
 */
bool cw_err_is_auth_refusal(const char *sqlstate, const char *message);

#endif
