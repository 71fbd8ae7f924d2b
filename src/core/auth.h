/*
 * This file contains the credentials of an `authentication` entry
 * (config.h, docs/authentication.md) turned into what each driver needs:
 * libpq connection keywords (user, password, sslcert, sslkey, sslrootcert,
 * sslmode=verify-full) and a libmongoc URI's credentials and TLS options;
 * for `command` entries it runs the command (auth_command.c) and caches its
 * output until `refresh` has passed or a server refused it.
 *
 * Sources, targets and the hub connect through here, which is why it lives
 * in core: capture, hub and apply all connect and depend only on core.
 *
 * Secrets (passwords, tokens, key passphrases) never leave this module but
 * in the driver's own parameters: no log line, error message or returned
 * text holds one. The command's standard error is logged line by line, with
 * its output and any url password masked.
 *
 * THREAD SAFETY: each entry's state has one mutex, taken only inside these
 * functions, and held while its command runs, so threads that need the same
 * entry at once wait for one run. Every function may be called from any
 * thread.
 */
#ifndef CW_CORE_AUTH_H
#define CW_CORE_AUTH_H

#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"

#include <libpq-fe.h>
#include <mongoc/mongoc.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * A new state for one entry: clock (borrowed for its lifetime) times the
 * `refresh` of a command's output. Never NULL. The configuration creates one
 * per entry with the system clock; tests pass a fake one.
 */
cw_auth_state_t *cw_auth_state_new(const cw_clock_t *clock);

/* Frees the state, wiping a cached secret and removing a combined PEM file; NULL is a no-op. */
void cw_auth_state_free(cw_auth_state_t *state);

/* Most keywords a caller passes to cw_auth_pg_params. */
#define CW_AUTH_PG_CALLER_MAX 16

/* libpq parameters for PQconnectdbParams with expand_dbname = 1. */
typedef struct cw_pg_params {
	const char *keywords[CW_AUTH_PG_CALLER_MAX + 8];  /* NULL-terminated */
	const char *values[CW_AUTH_PG_CALLER_MAX + 8];
	char *secret;                                     /* owned: the password or token, or NULL */
} cw_pg_params_t;

/*
 * Fills out with the caller's keywords and values (borrowed, NULL-terminated
 * at the first NULL keyword; the value of "dbname" is the url, expanded by
 * libpq) followed by auth's credentials, which therefore win over the url's.
 * auth NULL adds nothing. out borrows the caller's strings and auth's file
 * names until cw_pg_params_free. Returns 0, or CW_EAUTH (a password file
 * unreadable, the command failed) with err saying why; out is then empty.
 */
int cw_auth_pg_params(const cw_auth_config_t *auth, const char *const *keywords,
                      const char *const *values, cw_pg_params_t *out, cw_err_t *err);

/* Wipes and frees the secret in params; the arrays are left empty. NULL is a no-op. */
void cw_pg_params_free(cw_pg_params_t *params);

/*
 * PQconnectdbParams with cw_auth_pg_params. When the server refuses the
 * credentials (SQLSTATE 28P01 / 28000) of a `command` entry, its cached
 * output is dropped and the command runs again, and the connection is tried
 * once more before returning (then the caller's retry and backoff apply).
 * Returns 0 and sets *conn (owned by the caller: check PQstatus as after
 * PQconnectdbParams; it may be a failed connection), or CW_EAUTH with err
 * when no credentials could be obtained (*conn NULL).
 */
int cw_auth_pg_connect(const cw_auth_config_t *auth, const char *const *keywords,
                       const char *const *values, PGconn **conn, cw_err_t *err);

/*
 * What to add to the message of a connection that failed with message (the
 * driver's, borrowed): for a `certificate` entry and a TLS failure, " (TLS
 * with the client certificate of authentication "x" failed: check its
 * cert_file, key_file and ca_file)"; also for a connection lost while
 * authenticating (a TLS 1.3 server refusing the certificate may just drop
 * it); else "". Written into out (size bytes).
 */
const char *cw_auth_failure_hint(const cw_auth_config_t *auth, const char *message, char *out,
                                 size_t size);

/*
 * Sets auth's credentials on uri (borrowed, changed in place): user and
 * password (the command's output for `command`), or for `certificate` TLS
 * with tlsCAFile and tlsCertificateKeyFile. libmongoc wants the certificate
 * and its key in one PEM file: when they are two files, their concatenation
 * is written once to a private (0600) temporary file that lives as long as
 * the state. auth NULL changes nothing. Returns 0 or CW_EAUTH with err.
 */
int cw_auth_mongo_uri(const cw_auth_config_t *auth, mongoc_uri_t *uri, cw_err_t *err);

/*
 * Tells auth that a server refused its credentials: a `command` entry drops
 * its cached output so the next connection runs the command again, and logs
 * that it will. Returns
 * true when that may help (a `command` entry), so the caller tries once more
 * before backing off. auth NULL: false.
 */
bool cw_auth_refused(const cw_auth_config_t *auth);

/*
 * The password or token of auth right now (a `username_password` password
 * or password file, a `command`'s cached or fresh output), in *secret
 * (owned by the caller: free it with cw_auth_secret_free), or NULL for a
 * `certificate` entry. Returns 0, or CW_EAUTH / CW_ETIMEDOUT (the command's)
 * with err. The same codes come from the functions below that need it.
 */
int cw_auth_secret(const cw_auth_config_t *auth, char **secret, cw_err_t *err);

/* Wipes and frees a secret; NULL is a no-op. */
void cw_auth_secret_free(char *secret);

/* How many times auth's command has run (0 for other types): for tests and status. */
uint64_t cw_auth_command_runs(const cw_auth_config_t *auth);

/*
 * Splits command into words: blanks separate, "double" and 'single' quotes
 * group (a backslash escapes the next character outside single quotes),
 * nothing else is special. Returns a NULL-terminated array in *argv (owned
 * by the caller: cw_auth_argv_free) with at least one word, or CW_EINVAL
 * (empty, an unterminated quote).
 */
int cw_auth_command_split(const char *command, char ***argv, cw_err_t *err);

void cw_auth_argv_free(char **argv);

/*
 * Runs command (split into words, or with /bin/sh -c when shell) without a
 * terminal, standard input /dev/null, in its own process group, and waits
 * for it at most timeout_ms (then kills the group). On exit 0 with output,
 * sets *output (owned by the caller: cw_auth_secret_free) to its standard
 * output with surrounding white space trimmed. Its standard error is logged
 * (component "auth", as from entry id) with the output masked. Returns 0,
 * CW_ETIMEDOUT (killed at the deadline), or CW_EAUTH with err: could not
 * start, exited non-zero, printed nothing or too much. The message never
 * holds the output.
 */
int cw_auth_command_run(const char *id, const char *command, bool shell, int64_t timeout_ms,
                        char **output, cw_err_t *err);

#endif
