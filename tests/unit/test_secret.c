/* This file contains the unit tests of core/secret.c: passwords in text → masked text. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/secret.h"

#include <stdlib.h>
#include <string.h>

typedef struct mask_case {
	const char *text;
	const char *masked;
} mask_case_t;

static const mask_case_t url_cases[] = {
	{"postgresql://cachewarp:secret@127.0.0.1:5432/app",
	 "postgresql://cachewarp:****@127.0.0.1:5432/app"},
	{"postgres://u:p@h", "postgres://u:****@h"},
	{"mongodb://admin:hunter2@db1:27017,db2:27017/shop?replicaSet=rs0",
	 "mongodb://admin:****@db1:27017,db2:27017/shop?replicaSet=rs0"},
	{"mongodb+srv://app:s3cr3t@cluster0.example.net/",
	 "mongodb+srv://app:****@cluster0.example.net/"},
	{"https://bot:tok@api.example.com/v1", "https://bot:****@api.example.com/v1"},
	{"http://user:pw@localhost:8080", "http://user:****@localhost:8080"},
	{"amqp://guest:guest@rabbit", "amqp://guest:****@rabbit"},
	/* a password holding ':' or an encoded or raw '@' */
	{"postgresql://u:pa:ss@h/db", "postgresql://u:****@h/db"},
	{"postgresql://u:p%40ss%3Aw@h/db", "postgresql://u:****@h/db"},
	{"postgresql://u:p@ss@h/db", "postgresql://u:****@h/db"},
	{"postgresql://:onlypass@h", "postgresql://:****@h"},
	/* several URLs in one text, and text around them */
	{"copy from postgresql://a:one@h1/x to mongodb://b:two@h2/y now",
	 "copy from postgresql://a:****@h1/x to mongodb://b:****@h2/y now"},
	{"url=\"postgres://u:quoted@h\"", "url=\"postgres://u:****@h\""},
	{"<http://u:angle@h>", "<http://u:****@h>"},
	/* nothing to mask */
	{"postgresql://cachewarp@127.0.0.1:5432/app", "postgresql://cachewarp@127.0.0.1:5432/app"},
	{"mongodb://127.0.0.1:27017", "mongodb://127.0.0.1:27017"},
	{"postgresql://u:@h/db", "postgresql://u:@h/db"},
	{"http://h:8080/path?email=a@b.com", "http://h:8080/path?email=a@b.com"},
	{"http://[::1]:8080/", "http://[::1]:8080/"},
	{"no url here: a:b@c", "no url here: a:b@c"},
	{"://", "://"},
	{"", ""},
};

static const mask_case_t pair_cases[] = {
	/* libpq conninfo */
	{"host=h port=5432 password=secret dbname=app",
	 "host=h port=5432 password=**** dbname=app"},
	{"host=h password='se cret' user=u", "host=h password=**** user=u"},
	{"password='it\\'s a \\\\ secret' user=u", "password=**** user=u"},
	{"password = spaced user=u", "password = **** user=u"},
	{"PASSWORD=Upper", "PASSWORD=****"},
	{"sslpassword=keypass", "sslpassword=****"},
	{"password='unterminated", "password=****"},
	/* query strings */
	{"https://h/x?token=abc123&page=2", "https://h/x?token=****&page=2"},
	{"/v1/oplog?access_token=xyz", "/v1/oplog?access_token=****"},
	{"?password=p%40ss&user=u", "?password=****&user=u"},
	{"client_secret=cs1 passwd=pw1 pwd=pw2", "client_secret=**** passwd=**** pwd=****"},
	/* a URL with a password and a password parameter */
	{"postgresql://u:one@h/db?password=two&sslmode=require",
	 "postgresql://u:****@h/db?password=****&sslmode=require"},
	/* libpq skips blanks after '=', so here "user=u" is the password */
	{"password= user=u", "password= ****"},
	/* nothing to mask */
	{"?password=&user=u", "?password=&user=u"},
	{"password=", "password="},
	{"password='' user=u", "password='' user=u"},
	{"tokens=3 passwords_rotated=yes", "tokens=3 passwords_rotated=yes"},
	{"user=u host=h", "user=u host=h"},
	{"=secret", "=secret"},
	{"a == b", "a == b"},
};

static void run_cases(const mask_case_t *cases, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		char *masked = cw_secret_mask(cases[i].text);
		assert_non_null(masked);
		if (strcmp(masked, cases[i].masked) != 0)
			fail_msg("case %zu: \"%s\" masked to \"%s\", expected \"%s\"", i,
				cases[i].text, masked, cases[i].masked);
		free(masked);
	}
}

static void test_urls(void **state)
{
	run_cases(url_cases, sizeof url_cases / sizeof url_cases[0]);
}

static void test_pairs(void **state)
{
	run_cases(pair_cases, sizeof pair_cases / sizeof pair_cases[0]);
}

static void test_null_is_empty(void **state)
{
	char *masked = cw_secret_mask(NULL);
	assert_string_equal(masked, "");
	free(masked);
}

/* Masking twice changes nothing more: the config printer may mask an already masked URL. */
static void test_idempotent(void **state)
{
	const mask_case_t *all[] = {url_cases, pair_cases};
	size_t counts[] = {sizeof url_cases / sizeof url_cases[0],
		sizeof pair_cases / sizeof pair_cases[0]};
	for (size_t t = 0; t < 2; t++) {
		for (size_t i = 0; i < counts[t]; i++) {
			char *once = cw_secret_mask(all[t][i].text);
			char *twice = cw_secret_mask(once);
			assert_string_equal(once, twice);
			free(twice);
			free(once);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_urls),
		cmocka_unit_test(test_pairs),
		cmocka_unit_test(test_null_is_empty),
		cmocka_unit_test(test_idempotent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
