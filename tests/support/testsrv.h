/*
 * This file contains the C side of the test harness: throwaway servers for
 * integration tests, started through tests/support/pg.sh and mongo.sh so C
 * tests and shell scripts share one implementation.
 *
 * A started server is stopped by the matching _stop, and also when the test
 * process exits or dies (the scripts watch the owning pid), so a failing test
 * never leaves a cluster behind.
 */
#ifndef CW_TESTSRV_H
#define CW_TESTSRV_H

#include "hub/hub.h"

#include <stdbool.h>

typedef struct cw_testsrv {
	char dir[512];   /* data and logs live here; removed by _stop */
	char *url;       /* owned: postgresql://... or mongodb://... */
} cw_testsrv_t;

/*
 * Each _start fills srv (its old contents ignored) and returns 0, or prints
 * why on stderr and returns -1 with nothing left behind. Each _stop accepts
 * NULL, a zeroed srv and an already stopped one.
 */

/* PostgreSQL 15 as the postgres user, free port, wal_level=logical. 0 or -1. */
int cw_testpg_start(cw_testsrv_t *srv);
void cw_testpg_stop(cw_testsrv_t *srv);

/* The MongoDB test server (mongo-java-server with the oplog), free port. 0 or -1. */
int cw_testmongo_start(cw_testsrv_t *srv);
void cw_testmongo_stop(cw_testsrv_t *srv);

/* FerretDB v1 on SQLite (tests/support/ferretdb.sh): a MongoDB target only, free port. 0 or -1. */
int cw_testferret_start(cw_testsrv_t *srv);
void cw_testferret_stop(cw_testsrv_t *srv);

/*
 * Runs psql -Atq -v ON_ERROR_STOP=1 against url with sql; returns its stdout
 * without the final newline (owned; rows still end in "\n") or NULL when psql
 * fails, its error on stderr.
 */
char *cw_testpg_query(const char *url, const char *sql);

/*
 * Whether a server accepts TCP connections on 127.0.0.1 at the port of url
 * (a URL from _start): 1 yes, 0 no, -1 when url names no port.
 */
int cw_testsrv_listening(const char *url);

/* A throwaway cluster and a hub connection to it: the hub tests' fixture. */
typedef struct cw_testhub {
	cw_testsrv_t srv;
	cw_hub_t *hub;
} cw_testhub_t;

/*
 * Starts a cluster and connects the hub, migrating it when migrate is true.
 * 0, or -1 with the reason on stderr. _stop accepts a zeroed or stopped th.
 */
int cw_testhub_start(cw_testhub_t *th, bool migrate);
void cw_testhub_stop(cw_testhub_t *th);

/* The integer in the first column of sql's first row, or -1 with the error on stderr. */
long long cw_testhub_int(cw_hub_t *hub, const char *sql);

#endif
