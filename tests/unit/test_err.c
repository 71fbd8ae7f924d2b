/*
 * Unit tests of the error helpers: messages are prefixed and truncated, and
 * a PostgreSQL refusal of the credentials is told apart from other failures
 * (by SQLSTATE, else by libpq's text), so nothing retries what cannot succeed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/err.h"

#include <string.h>

static void prefix_keeps_code_and_domain(void **state)
{
	(void)state;
	cw_err_t err = {0};
	cw_err_set(&err, CW_EAUTH, "hub", "refused");
	cw_err_prefix(&err, "source \"%s\"", "app");
	assert_int_equal(err.code, CW_EAUTH);
	assert_string_equal(err.domain, "hub");
	assert_string_equal(err.message, "source \"app\": refused");
	assert_string_equal(cw_err_code_name(CW_EAUTH), "auth");
	assert_string_equal(cw_err_code_name(CW_EENTITY), "entity");
}

static void auth_refusal_by_sqlstate(void **state)
{
	(void)state;
	assert_true(cw_err_is_auth_refusal("28P01", NULL));
	assert_true(cw_err_is_auth_refusal("28000", ""));
	assert_false(cw_err_is_auth_refusal("42501", "permission denied for table t"));
	assert_false(cw_err_is_auth_refusal("57P03", "the database system is starting up"));
	assert_false(cw_err_is_auth_refusal(NULL, NULL));
}

static void auth_refusal_by_libpq_text(void **state)
{
	(void)state;
	const char *refused[] = {
		"connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  password "
		"authentication failed for user \"replicator\"",
		"connection to server at \"10.0.0.1\", port 5432 failed: FATAL:  no pg_hba.conf entry "
		"for host \"10.0.0.2\", user \"app\", database \"app\", no encryption",
		"FATAL:  pg_hba.conf rejects connection for host \"127.0.0.1\", user \"x\"",
		"connection to server on socket \"/tmp/.s.PGSQL.5432\" failed: fe_sendauth: no "
		"password supplied",
		"connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  role \"ghost\" "
		"does not exist",
		"FATAL:  Ident authentication failed for user \"app\"",
	};
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
		assert_true(cw_err_is_auth_refusal(NULL, refused[i]));
	const char *transient[] = {
		"connection to server at \"127.0.0.1\", port 1 failed: Connection refused",
		"could not translate host name \"db.internal\" to address",
		"FATAL:  database \"app\" does not exist",
		"FATAL:  the database system is shutting down",
		"ERROR:  relation \"role \\\"x\\\" does not exist\" does not exist",
	};
	for (size_t i = 0; i < sizeof transient / sizeof transient[0]; i++)
		assert_false(cw_err_is_auth_refusal(NULL, transient[i]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(prefix_keeps_code_and_domain),
		cmocka_unit_test(auth_refusal_by_sqlstate),
		cmocka_unit_test(auth_refusal_by_libpq_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
