/*
 * This file contains the unit tests of core/db_address.c: PostgreSQL URLs
 * and conninfo strings, MongoDB URLs, and which of them reach the same
 * database.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/db_address.h"

#include <string.h>

typedef struct same_case {
	const char *a, *b;
	bool same;
} same_case_t;

static bool same_postgres(const char *a, const char *b)
{
	cw_db_address_t x = {0}, y = {0};
	cw_err_t err = {0};
	if (cw_db_address_postgres(a, &x, &err) != 0 || cw_db_address_postgres(b, &y, &err) != 0)
		fail_msg("%s", err.message);
	bool same = cw_db_address_same(&x, &y);
	cw_db_address_clear(&x);
	cw_db_address_clear(&y);
	return same;
}

static bool same_mongodb(const char *a, const char *b)
{
	cw_db_address_t x = {0}, y = {0};
	cw_err_t err = {0};
	if (cw_db_address_mongodb(a, &x, &err) != 0 || cw_db_address_mongodb(b, &y, &err) != 0)
		fail_msg("%s", err.message);
	bool same = cw_db_address_same(&x, &y);
	cw_db_address_clear(&x);
	cw_db_address_clear(&y);
	return same;
}

static void test_postgres_forms(void **state)
{
	(void)state;
	static const same_case_t cases[] = {
		/* a URL and a conninfo string for one database */
		{"postgresql://u:secret@db.example.com:5432/app", "host=db.example.com port=5432 dbname=app", true},
		{"postgres://db.example.com/app", "postgresql://other:pw@DB.Example.COM:5432/app?sslmode=require", true},
		/* the default port is 5432 */
		{"postgresql://h/app", "host=h port=5432 dbname=app", true},
		{"postgresql://h:5433/app", "host=h dbname=app", false},
		/* every name of the local host is one host, a Unix socket too */
		{"postgresql://localhost/app", "host=127.0.0.1 dbname=app", true},
		{"postgresql://[::1]/app", "postgresql://127.0.0.1/app", true},
		{"host=/var/run/postgresql dbname=app", "postgresql://localhost:5432/app", true},
		{"dbname=app", "postgresql://localhost/app", true},
		/* hostaddr is where libpq connects */
		{"host=db.example.com hostaddr=127.0.0.1 dbname=app", "postgresql://localhost/app", true},
		/* another database, host or port is another database */
		{"postgresql://h/app", "postgresql://h/app2", false},
		{"postgresql://h1/app", "postgresql://h2/app", false},
		{"postgresql://h:5432/app", "postgresql://h:6432/app", false},
		/* no dbname: libpq takes the user name */
		{"postgresql://app@h", "postgresql://h/app", true},
		{"postgresql://bob@h", "postgresql://h/app", false},
		/* several hosts: one in common is the same server */
		{"postgresql://h1:5432,h2:5433/app", "host=h2 port=5433 dbname=app", true},
		{"host=h1,h2 port=5432 dbname=app", "postgresql://h2/app", true},
		{"postgresql://h1:5432,h2:5433/app", "postgresql://h2:5432/app", false},
		/* percent-encoding is read as libpq reads it */
		{"postgresql://h/my%20db", "host=h dbname='my db'", true},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		if (same_postgres(cases[i].a, cases[i].b) != cases[i].same ||
		    same_postgres(cases[i].b, cases[i].a) != cases[i].same)
			fail_msg("case %zu: %s vs %s: want %s", i, cases[i].a, cases[i].b,
			         cases[i].same ? "same" : "different");
	}
}

static void test_postgres_fields(void **state)
{
	(void)state;
	cw_db_address_t a = {0};
	assert_int_equal(cw_db_address_postgres("postgresql://u:pw@Db1:6000,db2/shop", &a, NULL), 0);
	assert_int_equal(a.nhosts, 2);
	assert_string_equal(a.hosts[0], "db1:6000");
	assert_string_equal(a.hosts[1], "db2:5432");
	assert_string_equal(a.database, "shop");
	cw_db_address_clear(&a);
	cw_db_address_clear(&a);   /* cleared twice: harmless */
	cw_db_address_clear(NULL);
	assert_int_equal(cw_db_address_postgres("", &a, NULL), 0);   /* everything defaulted */
	assert_int_equal(a.nhosts, 1);
	assert_string_equal(a.hosts[0], "localhost:5432");
	assert_string_equal(a.database, "");
	cw_db_address_clear(&a);
}

static void test_postgres_invalid(void **state)
{
	(void)state;
	cw_db_address_t a = {0};
	cw_err_t err = {0};
	assert_int_equal(cw_db_address_postgres("host=h frobnicate=1", &a, &err), CW_EINVAL);
	assert_string_equal(err.message, "invalid postgres url: invalid connection option \"frobnicate\"");
	assert_int_equal(a.nhosts, 0);
	assert_null(a.database);
	assert_int_equal(cw_db_address_postgres("host='unterminated", &a, &err), CW_EINVAL);
	cw_db_address_clear(&a);
}

static void test_mongodb_forms(void **state)
{
	(void)state;
	static const same_case_t cases[] = {
		{"mongodb://127.0.0.1:27017/shop", "mongodb://localhost/shop", true},
		{"mongodb://u:pw@Mongo.Example.com/shop?authSource=admin", "mongodb://mongo.example.com:27017/shop", true},
		{"mongodb://[::1]/shop", "mongodb://localhost:27017/shop", true},
		{"mongodb://h/shop", "mongodb://h/backup", false},
		{"mongodb://h:27018/shop", "mongodb://h/shop", false},
		/* replica set members: one in common is the same cluster */
		{"mongodb://a:27017,b:27017/shop?replicaSet=rs0", "mongodb://b/shop", true},
		{"mongodb://a,b/shop", "mongodb://c,d/shop", false},
		/* an SRV name is compared as a name, never resolved */
		{"mongodb+srv://cluster0.example.net/shop", "mongodb+srv://CLUSTER0.example.net/shop", true},
		{"mongodb+srv://cluster0.example.net/shop", "mongodb://cluster0.example.net/shop", false},
		/* the last '@' ends the userinfo; options and a missing path do not matter */
		{"mongodb://u:p%40ss@h/shop?tls=true", "mongodb://h:27017/shop", true},
		{"mongodb://h/?replicaSet=rs0", "mongodb://h", true},
		/* a Unix socket is the local host; the database is percent-decoded */
		{"mongodb://%2Ftmp%2Fmongodb-27017.sock/shop", "mongodb://127.0.0.1/shop", true},
		{"mongodb://h/my%20db", "mongodb://h/my db", true},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		if (same_mongodb(cases[i].a, cases[i].b) != cases[i].same ||
		    same_mongodb(cases[i].b, cases[i].a) != cases[i].same)
			fail_msg("case %zu: %s vs %s: want %s", i, cases[i].a, cases[i].b,
			         cases[i].same ? "same" : "different");
	}
}

static void test_mongodb_fields(void **state)
{
	(void)state;
	cw_db_address_t a = {0};
	assert_int_equal(cw_db_address_mongodb("mongodb://h1:27018,H2", &a, NULL), 0);
	assert_int_equal(a.nhosts, 2);
	assert_string_equal(a.hosts[0], "h1:27018");
	assert_string_equal(a.hosts[1], "h2:27017");
	assert_string_equal(a.database, "");   /* the caller supplies the database */
	cw_db_address_clear(&a);
	assert_int_equal(cw_db_address_mongodb("mongodb://[::1]:27018,h/db?x=1", &a, NULL), 0);
	assert_string_equal(a.hosts[0], "localhost:27018");
	assert_string_equal(a.hosts[1], "h:27017");
	assert_string_equal(a.database, "db");
	cw_db_address_clear(&a);

	static const struct {
		const char *url, *error;
	} invalid[] = {
		{"mongodb://", "invalid mongodb url: host 1 is not HOST, HOST:PORT or [IPv6]:PORT"},
		{"mongodb://a,/db", "invalid mongodb url: host 2 is not HOST, HOST:PORT or [IPv6]:PORT"},
		{"mongodb://h:port", "invalid mongodb url: host 1 is not HOST, HOST:PORT or [IPv6]:PORT"},
		{"mongodb://h:70000", "invalid mongodb url: host 1 is not HOST, HOST:PORT or [IPv6]:PORT"},
		{"mongodb://u:secret@[::1", "invalid mongodb url: host 1 is not HOST, HOST:PORT or [IPv6]:PORT"},
		{"mongodb+srv://a,b/db", "invalid mongodb url: a mongodb+srv url names one host without a port"},
		{"mongodb+srv://a:27017", "invalid mongodb url: a mongodb+srv url names one host without a port"},
		{"postgresql://h/db", "invalid mongodb url: it starts with mongodb:// or mongodb+srv://"},
	};
	for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
		cw_err_t err = {0};
		if (cw_db_address_mongodb(invalid[i].url, &a, &err) != CW_EINVAL ||
		    strcmp(err.message, invalid[i].error) != 0)
			fail_msg("%s: got \"%s\"", invalid[i].url, err.message);
		assert_null(a.hosts);   /* nothing left behind */
		assert_null(a.database);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_postgres_forms),
		cmocka_unit_test(test_postgres_fields),
		cmocka_unit_test(test_postgres_invalid),
		cmocka_unit_test(test_mongodb_forms),
		cmocka_unit_test(test_mongodb_fields),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
