/*
 * This file contains the unit tests of core/auth.c and core/auth_command.c:
 * libpq parameters and libmongoc URIs built from each authentication type,
 * the command runner (words, shell, timeout, failure, masked standard
 * error), the cache of a command's output until `refresh`, and the re-run
 * after a refused login.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/auth.h"
#include "core/log.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct fixture {
	char dir[64];
	cw_fake_clock_t clock;
	cw_auth_config_t auth;
} fixture_t;

static int setup(void **state)
{
	fixture_t *f = calloc(1, sizeof *f);
	snprintf(f->dir, sizeof f->dir, "/tmp/cw-unit-auth-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	cw_fake_clock_init(&f->clock, 1000, 0);
	f->auth.id = "creds";
	f->auth.refresh_ms = 60000;
	f->auth.timeout_ms = 10000;
	f->auth.state = cw_auth_state_new(cw_fake_clock_clock(&f->clock));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture_t *f = *state;
	cw_auth_state_free(f->auth.state);
	cw_fake_clock_destroy(&f->clock);
	char command[PATH_MAX + 16];
	snprintf(command, sizeof command, "rm -rf '%s'", f->dir);
	assert_int_equal(system(command), 0);
	free(f);
	return 0;
}

static char *write_file(const fixture_t *f, const char *name, const char *content)
{
	char *path = malloc(PATH_MAX);
	snprintf(path, PATH_MAX, "%s/%s", f->dir, name);
	FILE *file = fopen(path, "w");
	assert_non_null(file);
	fputs(content, file);
	fclose(file);
	return path;
}

/* The value of keyword in params, the last one given (libpq takes the last). */
static const char *param(const cw_pg_params_t *params, const char *keyword)
{
	const char *value = NULL;
	for (size_t i = 0; params->keywords[i] != NULL; i++)
		if (strcmp(params->keywords[i], keyword) == 0)
			value = params->values[i];
	return value;
}

static const char *const caller_keys[] = {"connect_timeout", "dbname", "application_name", NULL};
static const char *const caller_values[] = {"10", "postgresql://url-user@127.0.0.1:1/app",
                                            "cachewarp", NULL};

/* ---- libpq ------------------------------------------------------------------ */

static void test_pg_without_auth_is_the_caller_s(void **state)
{
	(void)state;
	cw_pg_params_t params;
	assert_int_equal(cw_auth_pg_params(NULL, caller_keys, caller_values, &params, NULL), 0);
	assert_string_equal(param(&params, "dbname"), caller_values[1]);
	assert_null(param(&params, "user"));
	assert_null(param(&params, "password"));
	assert_null(params.keywords[3]);
	cw_pg_params_free(&params);
}

static void test_pg_username_password_after_dbname(void **state)
{
	fixture_t *f = *state;
	f->auth.type = CW_AUTH_USERNAME_PASSWORD;
	f->auth.username = "app";
	f->auth.password = "p'a ss=\\word";   /* never concatenated, so nothing to escape */
	cw_pg_params_t params;
	assert_int_equal(cw_auth_pg_params(&f->auth, caller_keys, caller_values, &params, NULL), 0);
	assert_string_equal(param(&params, "user"), "app");
	assert_string_equal(param(&params, "password"), "p'a ss=\\word");
	/* After dbname, so they win over the url's user (libpq: later keywords override). */
	assert_string_equal(params.keywords[1], "dbname");
	assert_string_equal(params.keywords[3], "user");
	cw_pg_params_free(&params);
	assert_null(params.keywords[0]);
}

static void test_pg_password_file(void **state)
{
	fixture_t *f = *state;
	char *file = write_file(f, "pw", "from-file\n");
	f->auth.type = CW_AUTH_USERNAME_PASSWORD;
	f->auth.username = "app";
	f->auth.password_file = file;
	cw_pg_params_t params;
	assert_int_equal(cw_auth_pg_params(&f->auth, caller_keys, caller_values, &params, NULL), 0);
	assert_string_equal(param(&params, "password"), "from-file");
	cw_pg_params_free(&params);

	/* Read at every connection: a rotated file is used at once. */
	free(write_file(f, "pw", "rotated\r\n"));
	assert_int_equal(cw_auth_pg_params(&f->auth, caller_keys, caller_values, &params, NULL), 0);
	assert_string_equal(param(&params, "password"), "rotated");
	cw_pg_params_free(&params);

	unlink(file);
	cw_err_t err = {0};
	assert_int_equal(cw_auth_pg_params(&f->auth, caller_keys, caller_values, &params, &err),
	                 CW_EAUTH);
	assert_non_null(strstr(err.message, "could not read password_file"));
	assert_non_null(strstr(err.message, file));
	assert_null(params.keywords[0]);
	free(file);
}

static void test_pg_certificate(void **state)
{
	fixture_t *f = *state;
	f->auth.type = CW_AUTH_CERTIFICATE;
	f->auth.cert_file = "/certs/client.crt";
	f->auth.key_file = "/certs/client.key";
	f->auth.ca_file = "/certs/ca.crt";
	f->auth.key_password = "passphrase";
	cw_pg_params_t params;
	assert_int_equal(cw_auth_pg_params(&f->auth, caller_keys, caller_values, &params, NULL), 0);
	assert_string_equal(param(&params, "sslmode"), "verify-full");
	assert_string_equal(param(&params, "sslcert"), "/certs/client.crt");
	assert_string_equal(param(&params, "sslkey"), "/certs/client.key");
	assert_string_equal(param(&params, "sslrootcert"), "/certs/ca.crt");
	assert_string_equal(param(&params, "sslpassword"), "passphrase");
	assert_null(param(&params, "password"));
	assert_null(param(&params, "user"));   /* the url's */
	cw_pg_params_free(&params);
}

/* The libpq parameters parse: a conninfo libpq accepts, every value intact. */
static void test_pg_params_parse_in_libpq(void **state)
{
	fixture_t *f = *state;
	f->auth.type = CW_AUTH_USERNAME_PASSWORD;
	f->auth.username = "odd user";
	f->auth.password = "a b'c\\d";
	cw_pg_params_t params;
	assert_int_equal(cw_auth_pg_params(&f->auth, caller_keys, caller_values, &params, NULL), 0);
	PGconn *conn = PQconnectStartParams(params.keywords, params.values, 1);
	assert_non_null(conn);
	PQconninfoOption *options = PQconninfo(conn);
	const char *user = NULL, *password = NULL, *host = NULL;
	for (PQconninfoOption *o = options; o && o->keyword; o++) {
		if (strcmp(o->keyword, "user") == 0)
			user = o->val;
		else if (strcmp(o->keyword, "password") == 0)
			password = o->val;
		else if (strcmp(o->keyword, "host") == 0)
			host = o->val;
	}
	assert_string_equal(user, "odd user");
	assert_string_equal(password, "a b'c\\d");
	assert_string_equal(host, "127.0.0.1");
	PQconninfoFree(options);
	PQfinish(conn);
	cw_pg_params_free(&params);
}

/*
 * A TLS failure with a certificate entry, or a connection dropped at
 * authentication, names the entry; other failures and types add nothing.
 */
static void test_failure_hint(void **state)
{
	fixture_t *f = *state;
	char hint[256];
	f->auth.type = CW_AUTH_CERTIFICATE;
	cw_auth_failure_hint(&f->auth, "SSL error: tlsv1 alert unknown ca", hint, sizeof hint);
	assert_string_equal(hint, " (TLS with the client certificate of authentication \"creds\" "
	                          "failed: check its cert_file, key_file and ca_file)");
	cw_auth_failure_hint(&f->auth, "could not connect: Connection refused", hint, sizeof hint);
	assert_string_equal(hint, "");
	/* TLS 1.3: the refused certificate shows as a connection dropped at authentication. */
	cw_auth_failure_hint(&f->auth, "Lost connection to server at 'sending authentication "
	                     "information', system error: 104", hint, sizeof hint);
	assert_string_equal(hint, " (TLS with the client certificate of authentication \"creds\" "
	                          "failed: check its cert_file, key_file and ca_file)");
	f->auth.type = CW_AUTH_USERNAME_PASSWORD;
	cw_auth_failure_hint(&f->auth, "SSL error: tlsv1 alert unknown ca", hint, sizeof hint);
	assert_string_equal(hint, "");
	cw_auth_failure_hint(NULL, "SSL error", hint, sizeof hint);
	assert_string_equal(hint, "");
}

/* ---- libmongoc -------------------------------------------------------------- */

static void test_mongo_username_password(void **state)
{
	fixture_t *f = *state;
	f->auth.type = CW_AUTH_USERNAME_PASSWORD;
	f->auth.username = "app";
	f->auth.password = "p@ss:word/";
	mongoc_uri_t *uri = mongoc_uri_new("mongodb://127.0.0.1:27017/shop");
	assert_int_equal(cw_auth_mongo_uri(&f->auth, uri, NULL), 0);
	assert_string_equal(mongoc_uri_get_username(uri), "app");
	assert_string_equal(mongoc_uri_get_password(uri), "p@ss:word/");
	assert_string_equal(mongoc_uri_get_database(uri), "shop");
	mongoc_uri_destroy(uri);

	/* A password without a user anywhere is refused. */
	f->auth.username = NULL;
	uri = mongoc_uri_new("mongodb://127.0.0.1:27017/shop");
	cw_err_t err = {0};
	assert_int_equal(cw_auth_mongo_uri(&f->auth, uri, &err), CW_EINVAL);
	assert_non_null(strstr(err.message, "no user"));
	mongoc_uri_destroy(uri);
}

static void test_mongo_certificate_combined_pem(void **state)
{
	fixture_t *f = *state;
	char *cert = write_file(f, "client.crt", "-----BEGIN CERTIFICATE-----\nCERT\n"
	                                           "-----END CERTIFICATE-----\n");
	char *key = write_file(f, "client.key", "-----BEGIN PRIVATE KEY-----\nKEY\n"
	                                         "-----END PRIVATE KEY-----\n");
	f->auth.type = CW_AUTH_CERTIFICATE;
	f->auth.cert_file = cert;
	f->auth.key_file = key;
	f->auth.ca_file = "/certs/ca.crt";
	setenv("TMPDIR", f->dir, 1);
	mongoc_uri_t *uri = mongoc_uri_new("mongodb://db.example:27017/shop");
	assert_int_equal(cw_auth_mongo_uri(&f->auth, uri, NULL), 0);
	assert_true(mongoc_uri_get_tls(uri));
	assert_string_equal(mongoc_uri_get_option_as_utf8(uri, MONGOC_URI_TLSCAFILE, NULL),
	                    "/certs/ca.crt");
	const char *pem = mongoc_uri_get_option_as_utf8(uri, MONGOC_URI_TLSCERTIFICATEKEYFILE, NULL);
	assert_non_null(pem);
	assert_non_null(strstr(pem, "/cachewarp-auth-"));
	struct stat st;
	assert_int_equal(stat(pem, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	FILE *file = fopen(pem, "r");
	char text[256] = {0};
	assert_true(fread(text, 1, sizeof text - 1, file) > 0);
	fclose(file);
	assert_non_null(strstr(text, "CERT"));
	assert_non_null(strstr(text, "KEY"));
	char *pem_path = strdup(pem);
	mongoc_uri_destroy(uri);

	/* The same file serves the next connection; freeing the state removes it. */
	uri = mongoc_uri_new("mongodb://db.example:27017/shop");
	assert_int_equal(cw_auth_mongo_uri(&f->auth, uri, NULL), 0);
	assert_string_equal(mongoc_uri_get_option_as_utf8(uri, MONGOC_URI_TLSCERTIFICATEKEYFILE, NULL),
	                    pem_path);
	mongoc_uri_destroy(uri);
	cw_auth_state_free(f->auth.state);
	f->auth.state = cw_auth_state_new(cw_fake_clock_clock(&f->clock));
	assert_int_not_equal(access(pem_path, F_OK), 0);
	unsetenv("TMPDIR");
	free(pem_path);
	free(cert);
	free(key);
}

/* ---- the command ------------------------------------------------------------ */

static void test_split_words(void **state)
{
	(void)state;
	char **argv = NULL;
	assert_int_equal(cw_auth_command_split("aws rds generate-db-auth-token --hostname "
	                                       "'db.example' --port \"5432\" --username a\\ b",
	                                       &argv, NULL), 0);
	const char *want[] = {"aws", "rds", "generate-db-auth-token", "--hostname", "db.example",
	                      "--port", "5432", "--username", "a b", NULL};
	for (size_t i = 0; want[i] != NULL; i++)
		assert_string_equal(argv[i], want[i]);
	assert_null(argv[9]);
	cw_auth_argv_free(argv);

	assert_int_equal(cw_auth_command_split("x '' \"\"", &argv, NULL), 0);
	assert_string_equal(argv[1], "");
	assert_string_equal(argv[2], "");
	cw_auth_argv_free(argv);

	cw_err_t err = {0};
	assert_int_equal(cw_auth_command_split("echo 'open", &argv, &err), CW_EINVAL);
	assert_non_null(strstr(err.message, "unterminated"));
	assert_int_equal(cw_auth_command_split("   ", &argv, &err), CW_EINVAL);
	assert_null(argv);
}

static void test_run_output_trimmed(void **state)
{
	(void)state;
	char *out = NULL;
	assert_int_equal(cw_auth_command_run("t", "printf '  tok-en \\n\\n'", false, 10000, &out, NULL),
	                 0);
	assert_string_equal(out, "tok-en");
	cw_auth_secret_free(out);
	/* Without shell, shell syntax is just words. */
	assert_int_equal(cw_auth_command_run("t", "echo $HOME|x", false, 10000, &out, NULL), 0);
	assert_string_equal(out, "$HOME|x");
	cw_auth_secret_free(out);
	assert_int_equal(cw_auth_command_run("t", "echo a b | tr a-z A-Z", true, 10000, &out, NULL), 0);
	assert_string_equal(out, "A B");
	cw_auth_secret_free(out);
}

static void test_run_failures(void **state)
{
	(void)state;
	char *out = NULL;
	cw_err_t err = {0};
	assert_int_equal(cw_auth_command_run("t", "exit 3", true, 10000, &out, &err), CW_EAUTH);
	assert_non_null(strstr(err.message, "exit status 3"));
	assert_null(out);
	assert_int_equal(cw_auth_command_run("t", "true", false, 10000, &out, &err), CW_EAUTH);
	assert_non_null(strstr(err.message, "printed nothing"));
	assert_int_equal(cw_auth_command_run("t", "/nonexistent/token-cmd", false, 10000, &out, &err),
	                 CW_EAUTH);
	assert_non_null(strstr(err.message, "could not run"));
	assert_non_null(strstr(err.message, "/nonexistent/token-cmd"));
	/* Killed at the deadline, its children with it (the group). */
	assert_int_equal(cw_auth_command_run("t", "echo partial; sleep 60 & wait", true, 300, &out,
	                                     &err), CW_ETIMEDOUT);
	assert_non_null(strstr(err.message, "did not finish within 300 ms"));
	assert_null(out);
}

/* The standard error is logged, with the token it also printed masked. */
static void test_run_stderr_logged_masked(void **state)
{
	fixture_t *f = *state;
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/log", f->dir);
	FILE *log = fopen(path, "w+");
	cw_log_setup(CW_LOG_INFO, CW_LOG_FORMAT_TEXT, fileno(log));
	char *out = NULL;
	assert_int_equal(cw_auth_command_run("t", "echo 'warning: token tok123 expires soon' >&2; "
	                                     "echo tok123", true, 10000, &out, NULL), 0);
	cw_log_setup(CW_LOG_INFO, CW_LOG_FORMAT_TEXT, 2);
	assert_string_equal(out, "tok123");
	cw_auth_secret_free(out);
	char text[4096] = {0};
	rewind(log);
	assert_true(fread(text, 1, sizeof text - 1, log) > 0);
	fclose(log);
	assert_non_null(strstr(text, "warning: token **** expires soon"));
	assert_null(strstr(text, "tok123"));
}

static void use_counter_command(fixture_t *f, char *command, size_t size)
{
	snprintf(command, size, "n=$(cat '%s/n' 2>/dev/null || echo 0); n=$((n+1)); "
	         "echo $n > '%s/n'; echo token-$n", f->dir, f->dir);
	f->auth.type = CW_AUTH_COMMAND;
	f->auth.command = command;
	f->auth.shell = 1;
}

static void test_command_cached_until_refresh(void **state)
{
	fixture_t *f = *state;
	char command[3 * PATH_MAX];
	use_counter_command(f, command, sizeof command);
	char *secret = NULL;
	assert_int_equal(cw_auth_secret(&f->auth, &secret, NULL), 0);
	assert_string_equal(secret, "token-1");
	cw_auth_secret_free(secret);

	cw_fake_clock_advance(&f->clock, 59999);
	cw_pg_params_t params;
	assert_int_equal(cw_auth_pg_params(&f->auth, caller_keys, caller_values, &params, NULL), 0);
	assert_string_equal(param(&params, "password"), "token-1");
	cw_pg_params_free(&params);
	assert_int_equal(cw_auth_command_runs(&f->auth), 1);

	cw_fake_clock_advance(&f->clock, 1);
	assert_int_equal(cw_auth_secret(&f->auth, &secret, NULL), 0);
	assert_string_equal(secret, "token-2");
	cw_auth_secret_free(secret);
	assert_int_equal(cw_auth_command_runs(&f->auth), 2);
}

static void test_command_rerun_after_refusal(void **state)
{
	fixture_t *f = *state;
	char command[3 * PATH_MAX];
	use_counter_command(f, command, sizeof command);
	char *secret = NULL;
	assert_int_equal(cw_auth_secret(&f->auth, &secret, NULL), 0);
	assert_string_equal(secret, "token-1");
	cw_auth_secret_free(secret);
	/* A refused login: a command entry says retrying may help and runs again, within refresh. */
	assert_true(cw_auth_refused(&f->auth));
	assert_int_equal(cw_auth_secret(&f->auth, &secret, NULL), 0);
	assert_string_equal(secret, "token-2");
	cw_auth_secret_free(secret);

	/* The other types have nothing to run again. */
	f->auth.type = CW_AUTH_USERNAME_PASSWORD;
	assert_false(cw_auth_refused(&f->auth));
	f->auth.type = CW_AUTH_CERTIFICATE;
	assert_false(cw_auth_refused(&f->auth));
	assert_false(cw_auth_refused(NULL));
}

static void test_command_failure_keeps_nothing(void **state)
{
	fixture_t *f = *state;
	f->auth.type = CW_AUTH_COMMAND;
	f->auth.command = "false";
	char *secret = NULL;
	cw_err_t err = {0};
	cw_pg_params_t params;
	assert_int_equal(cw_auth_pg_params(&f->auth, caller_keys, caller_values, &params, &err),
	                 CW_EAUTH);
	assert_non_null(strstr(err.message, "authentication \"creds\""));
	assert_int_equal(cw_auth_secret(&f->auth, &secret, &err), CW_EAUTH);
	assert_null(secret);
	assert_int_equal(cw_auth_command_runs(&f->auth), 2);   /* a failure is not cached */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pg_without_auth_is_the_caller_s, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_username_password_after_dbname, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_password_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_certificate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_params_parse_in_libpq, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failure_hint, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mongo_username_password, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mongo_certificate_combined_pem, setup, teardown),
		cmocka_unit_test(test_split_words),
		cmocka_unit_test(test_run_output_trimmed),
		cmocka_unit_test(test_run_failures),
		cmocka_unit_test_setup_teardown(test_run_stderr_logged_masked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_command_cached_until_refresh, setup, teardown),
		cmocka_unit_test_setup_teardown(test_command_rerun_after_refusal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_command_failure_keeps_nothing, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
