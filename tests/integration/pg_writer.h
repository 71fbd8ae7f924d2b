/*
 * This file contains the concurrent writer of the PostgreSQL source's
 * integration tests: a thread with its own connection that keeps inserting,
 * updating (also the key) and deleting rows of a table (id int primary key,
 * v int, note text) until told to stop. Included after pg_source_fixture.h.
 */
#ifndef CW_PG_WRITER_H
#define CW_PG_WRITER_H

#include <stdatomic.h>

typedef struct writer {
	char url[512];
	char table[64];
	int next_id;                  /* ids above the initial rows */
	atomic_bool stop;
	atomic_long ops;              /* statements committed so far */
	pthread_t thread;
	char error[1024];
} writer_t;

static inline void *writer_main(void *arg)
{
	writer_t *w = arg;
	PGconn *conn = PQconnectdb(w->url);
	unsigned seed = 42;
	char sql[512];
	while (PQstatus(conn) == CONNECTION_OK && !atomic_load(&w->stop)) {
		int r = (int)(rand_r(&seed) % (unsigned)w->next_id) + 1;
		switch (rand_r(&seed) % 6) {
		case 0:
			snprintf(sql, sizeof sql, "INSERT INTO %s VALUES (%d, 0, 'inserted')", w->table,
			         ++w->next_id);
			break;
		case 1:
			snprintf(sql, sizeof sql, "DELETE FROM %s WHERE id = %d", w->table, r);
			break;
		case 2:
			snprintf(sql, sizeof sql, "UPDATE %s SET id = %d WHERE id = %d", w->table,
			         ++w->next_id, r);
			break;
		case 3:
			snprintf(sql, sizeof sql, "BEGIN; UPDATE %1$s SET v = v + 1, note = 'txn' "
			         "WHERE id BETWEEN %2$d AND %2$d + 20; DELETE FROM %1$s WHERE id = %3$d; "
			         "COMMIT", w->table, r, r + 7);
			break;
		default:
			snprintf(sql, sizeof sql, "UPDATE %s SET v = v + 1 WHERE id = %d", w->table, r);
			break;
		}
		PGresult *res = PQexec(conn, sql);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			snprintf(w->error, sizeof w->error, "%.400s: %.400s", sql, PQerrorMessage(conn));
			PQclear(res);
			break;
		}
		PQclear(res);
		atomic_fetch_add(&w->ops, 1);
	}
	PQfinish(conn);
	return NULL;
}

static inline void writer_start(writer_t *w, const char *url, const char *table, int rows)
{
	memset(w, 0, sizeof *w);
	snprintf(w->url, sizeof w->url, "%s", url);
	snprintf(w->table, sizeof w->table, "%s", table);
	w->next_id = rows;
	assert_int_equal(pthread_create(&w->thread, NULL, writer_main, w), 0);
}

/* Waits until the writer committed at least n more statements. */
static inline void writer_wait_ops(writer_t *w, long n)
{
	long target = atomic_load(&w->ops) + n;
	int64_t deadline = fx_now_ms() + WAIT_MS;
	while (atomic_load(&w->ops) < target && w->error[0] == '\0' && fx_now_ms() < deadline)
		fx_pause_ms(10);
	assert_string_equal(w->error, "");
	assert_true(atomic_load(&w->ops) >= target);
}

static inline void writer_stop(writer_t *w)
{
	atomic_store(&w->stop, true);
	pthread_join(w->thread, NULL);
	assert_string_equal(w->error, "");
}

#endif
