/*
 * This file contains the rows of a query result (SELECT * of a table) seen
 * as pgoutput Insert messages, so rows a query reads turn into changes by
 * the same code as streamed rows (cw_pgoutput_row_change): the snapshot's
 * rows, and the rows verify compares, look exactly as streamed ones.
 *
 * THREAD SAFETY: one cw_pg_rows_t per thread.
 */
#ifndef CW_CAPTURE_PG_ROWS_H
#define CW_CAPTURE_PG_ROWS_H

#include "capture/pgoutput.h"
#include "core/err.h"

#include <libpq-fe.h>

typedef struct cw_pg_rows {
	cw_pgoutput_rel_t rel;        /* the result's columns as a relation */
	cw_pgoutput_msg_t msg;        /* an Insert of the current row */
	cw_pgoutput_column_t *columns;   /* owned */
	cw_pgoutput_value_t *values;     /* owned */
	const PGresult *res;          /* borrowed */
} cw_pg_rows_t;

/*
 * Describes res (borrowed; must outlive rows) as the table nspname.relname
 * (borrowed likewise). 0, or CW_EINVAL when res has more columns than a
 * relation may (CW_PGOUTPUT_MAX_COLUMNS). Clear with cw_pg_rows_clear.
 */
int cw_pg_rows_init(cw_pg_rows_t *rows, const PGresult *res, const char *nspname,
                    const char *relname, cw_err_t *err);

/* Points rows->msg at row number row of the result; the message is borrowed from rows. */
const cw_pgoutput_msg_t *cw_pg_rows_at(cw_pg_rows_t *rows, int row);

/* Frees what init allocated; a zeroed struct is a no-op. */
void cw_pg_rows_clear(cw_pg_rows_t *rows);

#endif
