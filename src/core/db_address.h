/*
 * This file contains the address of the database a connection URL reaches:
 * its hosts with their ports, and the database name, read from a PostgreSQL
 * URL or conninfo string or from a MongoDB URL, so two URLs written
 * differently can be compared. `config check` uses it to refuse a target
 * that writes into a table or collection a source captures (docs/streams.md).
 *
 * Normalization: host names are lower case; "localhost", 127.0.0.1, ::1, an
 * empty host and a Unix socket path are all the local host, "localhost";
 * a missing port is the default one (5432, 27017). A PostgreSQL database
 * not named defaults as libpq does: to the user name. A mongodb+srv URL's
 * address is its SRV name ("srv:cluster.example.com"), not the hosts DNS
 * would give. No name is resolved: two names for one server are different.
 *
 * THREAD SAFETY: pure functions over caller-owned values.
 */
#ifndef CW_CORE_DB_ADDRESS_H
#define CW_CORE_DB_ADDRESS_H

#include "core/err.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct cw_db_address {
	char **hosts;           /* owned; "host:port" each */
	size_t nhosts;
	char *database;         /* owned; "" when the URL names none and has no default */
} cw_db_address_t;

/*
 * Reads url (borrowed), postgresql:// or postgres:// or a conninfo string,
 * into *address (zeroed by the caller; cw_db_address_clear). 0, or CW_EINVAL
 * with libpq's reason (the url is never quoted: it may hold a password).
 */
int cw_db_address_postgres(const char *url, cw_db_address_t *address, cw_err_t *err);

/* The same for a mongodb:// or mongodb+srv:// url; database is the url's, or "". */
int cw_db_address_mongodb(const char *url, cw_db_address_t *address, cw_err_t *err);

/* Whether a and b share a host:port and name the same database. */
bool cw_db_address_same(const cw_db_address_t *a, const cw_db_address_t *b);

/* Frees what address owns and zeroes it; NULL is a no-op. */
void cw_db_address_clear(cw_db_address_t *address);

#endif
