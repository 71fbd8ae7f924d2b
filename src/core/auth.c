/*
 * This file contains an authentication entry's state and its credentials
 * turned into libpq parameters and libmongoc URI options (auth.h).
 */
#include "core/auth.h"

#include "core/buf.h"
#include "core/log.h"
#include "core/mem.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DOMAIN "auth"

struct cw_auth_state {
	pthread_mutex_t mutex;
	const cw_clock_t *clock;   /* borrowed */
	char *secret;              /* guarded by mutex: the command's cached output, or NULL */
	int64_t fetched_ms;        /* guarded by mutex: when secret was obtained */
	uint64_t runs;             /* guarded by mutex: times the command ran */
	char *pem_path;            /* guarded by mutex: certificate and key in one file, or NULL */
};

cw_auth_state_t *cw_auth_state_new(const cw_clock_t *clock)
{
	cw_auth_state_t *state = cw_xcalloc(1, sizeof *state);
	pthread_mutex_init(&state->mutex, NULL);
	state->clock = clock;
	return state;
}

void cw_auth_secret_free(char *secret)
{
	if (secret == NULL)
		return;
	explicit_bzero(secret, strlen(secret));
	free(secret);
}

void cw_auth_state_free(cw_auth_state_t *state)
{
	if (state == NULL)
		return;
	cw_auth_secret_free(state->secret);
	if (state->pem_path != NULL) {
		unlink(state->pem_path);
		free(state->pem_path);
	}
	pthread_mutex_destroy(&state->mutex);
	free(state);
}

/* Reads a whole small file into *text (owned). 0, or errno. */
static int slurp(const char *path, cw_buf_t *text)
{
	FILE *file = fopen(path, "rb");
	if (file == NULL)
		return errno;
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, file)) > 0 && text->len < (1 << 20))
		cw_buf_append(text, chunk, n);
	int rc = ferror(file) ? EIO : 0;
	fclose(file);
	return rc;
}

/* The content of the password file without its final line break. */
static int read_password_file(const cw_auth_config_t *auth, char **secret, cw_err_t *err)
{
	cw_buf_t text = CW_BUF_INIT;
	int errnum = slurp(auth->password_file, &text);
	if (errnum != 0) {
		if (text.data != NULL)
			explicit_bzero(text.data, text.len);
		cw_buf_free(&text);
		return cw_err_set(err, CW_EAUTH, DOMAIN, "could not read password_file \"%s\" of "
		                  "authentication \"%s\": %s", auth->password_file, auth->id,
		                  strerror(errnum));
	}
	size_t len = text.len;
	while (len > 0 && (text.data[len - 1] == '\n' || text.data[len - 1] == '\r'))
		len--;
	*secret = cw_xstrndup(text.len ? text.data : "", len);
	if (text.data != NULL)
		explicit_bzero(text.data, text.len);
	cw_buf_free(&text);
	if (len == 0) {
		cw_auth_secret_free(*secret);
		*secret = NULL;
		return cw_err_set(err, CW_EAUTH, DOMAIN, "password_file \"%s\" of authentication \"%s\" "
		                  "is empty", auth->password_file, auth->id);
	}
	return 0;
}

/* The command's output, cached until refresh passes. Called with the mutex held. */
static int command_secret(const cw_auth_config_t *auth, cw_auth_state_t *state, char **secret,
                          cw_err_t *err)
{
	int64_t now = cw_clock_now_ms(state->clock);
	if (state->secret == NULL || now - state->fetched_ms >= auth->refresh_ms) {
		char *fresh = NULL;
		state->runs++;
		int rc = cw_auth_command_run(auth->id, auth->command, auth->shell != 0, auth->timeout_ms,
		                             &fresh, err);
		if (rc != 0)
			return rc;
		cw_auth_secret_free(state->secret);
		state->secret = fresh;
		state->fetched_ms = now;
		cw_log_info(DOMAIN, "authentication \"%s\": obtained a new password or token from its "
		            "command", auth->id);
	}
	*secret = cw_xstrdup(state->secret);
	return 0;
}

int cw_auth_secret(const cw_auth_config_t *auth, char **secret, cw_err_t *err)
{
	*secret = NULL;
	switch (auth->type) {
	case CW_AUTH_USERNAME_PASSWORD:
		if (auth->password != NULL) {
			*secret = cw_xstrdup(auth->password);
			return 0;
		}
		return read_password_file(auth, secret, err);
	case CW_AUTH_COMMAND: {
		pthread_mutex_lock(&auth->state->mutex);
		int rc = command_secret(auth, auth->state, secret, err);
		pthread_mutex_unlock(&auth->state->mutex);
		return rc;
	}
	case CW_AUTH_CERTIFICATE:
		break;
	}
	return 0;
}

bool cw_auth_refused(const cw_auth_config_t *auth)
{
	if (auth == NULL || auth->type != CW_AUTH_COMMAND)
		return false;
	pthread_mutex_lock(&auth->state->mutex);
	cw_auth_secret_free(auth->state->secret);
	auth->state->secret = NULL;
	pthread_mutex_unlock(&auth->state->mutex);
	cw_log_info(DOMAIN, "the server refused the credentials of authentication \"%s\": "
	            "running its command again", auth->id);
	return true;
}

uint64_t cw_auth_command_runs(const cw_auth_config_t *auth)
{
	pthread_mutex_lock(&auth->state->mutex);
	uint64_t runs = auth->state->runs;
	pthread_mutex_unlock(&auth->state->mutex);
	return runs;
}

/* ---- libpq --------------------------------------------------------------- */

static void pg_add(cw_pg_params_t *out, size_t *n, const char *keyword, const char *value)
{
	out->keywords[*n] = keyword;
	out->values[*n] = value;
	(*n)++;
	out->keywords[*n] = NULL;
	out->values[*n] = NULL;
}

int cw_auth_pg_params(const cw_auth_config_t *auth, const char *const *keywords,
                      const char *const *values, cw_pg_params_t *out, cw_err_t *err)
{
	size_t n = 0;
	memset(out, 0, sizeof *out);
	for (; keywords[n] != NULL; n++) {
		assert(n < CW_AUTH_PG_CALLER_MAX);
		out->keywords[n] = keywords[n];
		out->values[n] = values[n];
	}
	if (auth == NULL)
		return 0;
	int rc = cw_auth_secret(auth, &out->secret, err);
	if (rc != 0) {
		memset(out, 0, sizeof *out);
		return rc;
	}
	if (auth->username != NULL)
		pg_add(out, &n, "user", auth->username);
	if (out->secret != NULL)
		pg_add(out, &n, "password", out->secret);
	if (auth->type == CW_AUTH_CERTIFICATE) {
		pg_add(out, &n, "sslmode", "verify-full");
		pg_add(out, &n, "sslcert", auth->cert_file);
		pg_add(out, &n, "sslkey", auth->key_file);
		pg_add(out, &n, "sslrootcert", auth->ca_file);
		if (auth->key_password != NULL)
			pg_add(out, &n, "sslpassword", auth->key_password);
	}
	return 0;
}

void cw_pg_params_free(cw_pg_params_t *params)
{
	if (params == NULL)
		return;
	cw_auth_secret_free(params->secret);
	memset(params, 0, sizeof *params);
}

int cw_auth_pg_connect(const cw_auth_config_t *auth, const char *const *keywords,
                       const char *const *values, PGconn **conn, cw_err_t *err)
{
	*conn = NULL;
	for (int attempt = 0;; attempt++) {
		cw_pg_params_t params;
		int rc = cw_auth_pg_params(auth, keywords, values, &params, err);
		if (rc != 0)
			return rc;
		*conn = PQconnectdbParams(params.keywords, params.values, 1);
		cw_pg_params_free(&params);
		if (attempt > 0 || *conn == NULL || PQstatus(*conn) == CONNECTION_OK ||
		    !cw_err_is_auth_refusal(NULL, PQerrorMessage(*conn)) || !cw_auth_refused(auth))
			return 0;
		PQfinish(*conn);
		*conn = NULL;
	}
}

const char *cw_auth_failure_hint(const cw_auth_config_t *auth, const char *message, char *out,
                                 size_t size)
{
	out[0] = '\0';
	/*
	 * Under TLS 1.3 the client finishes its handshake before the server
	 * checks the client's certificate: a server refusing it may just drop
	 * the connection, which MariaDB's client reports as lost while sending
	 * the authentication.
	 */
	bool dropped_at_auth = message != NULL && strstr(message, "Lost connection") != NULL &&
	                       strstr(message, "authentication") != NULL;
	if (auth != NULL && auth->type == CW_AUTH_CERTIFICATE && message != NULL &&
	    (strstr(message, "SSL") != NULL || strstr(message, "certificate") != NULL ||
	     dropped_at_auth))
		snprintf(out, size, " (TLS with the client certificate of authentication \"%s\" failed: "
		         "check its cert_file, key_file and ca_file)", auth->id);
	return out;
}

/* ---- libmongoc ------------------------------------------------------------ */

/* Writes the certificate and its key into one private file for libmongoc. Mutex held. */
static int write_pem(const cw_auth_config_t *auth, cw_auth_state_t *state, cw_err_t *err)
{
	cw_buf_t pem = CW_BUF_INIT;
	const char *tmpdir = getenv("TMPDIR");
	char *path = cw_xasprintf("%s/cachewarp-auth-XXXXXX", tmpdir && tmpdir[0] ? tmpdir : "/tmp");
	int rc = 0, errnum = slurp(auth->cert_file, &pem);
	const char *failed = auth->cert_file;
	if (errnum == 0) {
		cw_buf_append_char(&pem, '\n');
		errnum = slurp(auth->key_file, &pem);
		failed = auth->key_file;
	}
	if (errnum != 0) {
		rc = cw_err_set(err, CW_EAUTH, DOMAIN, "could not read \"%s\" of authentication \"%s\": "
		                "%s", failed, auth->id, strerror(errnum));
		goto cleanup;
	}
	mode_t old_mask = umask(077);
	int fd = mkstemp(path);
	umask(old_mask);
	bool written = fd >= 0 && write(fd, pem.data, pem.len) == (ssize_t)pem.len;
	if (fd >= 0 && (close(fd) != 0 || !written))
		unlink(path);
	if (fd < 0 || !written) {
		rc = cw_err_set(err, CW_EAUTH, DOMAIN, "could not write the certificate and key of "
		                "authentication \"%s\" into one file for libmongoc", auth->id);
		goto cleanup;
	}
	state->pem_path = path;
	path = NULL;
cleanup:
	if (pem.data != NULL)
		explicit_bzero(pem.data, pem.len);
	cw_buf_free(&pem);
	free(path);
	return rc;
}

/* The file holding the certificate and its key, written the first time when they are two. */
static int certificate_key_file(const cw_auth_config_t *auth, char **path, cw_err_t *err)
{
	if (strcmp(auth->cert_file, auth->key_file) == 0) {
		*path = cw_xstrdup(auth->cert_file);
		return 0;
	}
	pthread_mutex_lock(&auth->state->mutex);
	int rc = auth->state->pem_path ? 0 : write_pem(auth, auth->state, err);
	*path = rc == 0 ? cw_xstrdup(auth->state->pem_path) : NULL;
	pthread_mutex_unlock(&auth->state->mutex);
	return rc;
}

static int mongo_tls(const cw_auth_config_t *auth, mongoc_uri_t *uri, cw_err_t *err)
{
	char *pem = NULL;
	int rc = certificate_key_file(auth, &pem, err);
	if (rc != 0)
		return rc;
	bool ok = mongoc_uri_set_option_as_bool(uri, MONGOC_URI_TLS, true) &&
	          mongoc_uri_set_option_as_utf8(uri, MONGOC_URI_TLSCAFILE, auth->ca_file) &&
	          mongoc_uri_set_option_as_utf8(uri, MONGOC_URI_TLSCERTIFICATEKEYFILE, pem);
	if (ok && auth->key_password != NULL)
		ok = mongoc_uri_set_option_as_utf8(uri, MONGOC_URI_TLSCERTIFICATEKEYFILEPASSWORD,
		                                   auth->key_password);
	free(pem);
	if (!ok)
		return cw_err_set(err, CW_EINVAL, DOMAIN, "could not set the TLS options of "
		                  "authentication \"%s\" on the mongodb url", auth->id);
	return 0;
}

int cw_auth_mongo_uri(const cw_auth_config_t *auth, mongoc_uri_t *uri, cw_err_t *err)
{
	if (auth == NULL)
		return 0;
	if (auth->username != NULL && !mongoc_uri_set_username(uri, auth->username))
		return cw_err_set(err, CW_EINVAL, DOMAIN, "authentication \"%s\": the username is not "
		                  "valid UTF-8", auth->id);
	if (auth->type == CW_AUTH_CERTIFICATE)
		return mongo_tls(auth, uri, err);
	char *secret = NULL;
	int rc = cw_auth_secret(auth, &secret, err);
	if (rc != 0)
		return rc;
	if (mongoc_uri_get_username(uri) == NULL)
		rc = cw_err_set(err, CW_EINVAL, DOMAIN, "authentication \"%s\" gives a password but no "
		                "user: set its username or a user in the url", auth->id);
	else if (!mongoc_uri_set_password(uri, secret))
		rc = cw_err_set(err, CW_EINVAL, DOMAIN, "authentication \"%s\": the password is not "
		                "valid UTF-8", auth->id);
	cw_auth_secret_free(secret);
	return rc;
}
