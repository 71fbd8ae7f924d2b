/* This file contains a query result's rows as pgoutput Insert messages (pg_rows.h). */
#include "capture/pg_rows.h"

#include "core/mem.h"

#include <stdlib.h>
#include <string.h>

int cw_pg_rows_init(cw_pg_rows_t *rows, const PGresult *res, const char *nspname,
                    const char *relname, cw_err_t *err)
{
	memset(rows, 0, sizeof *rows);
	int ncols = PQnfields(res);
	if (ncols > CW_PGOUTPUT_MAX_COLUMNS)
		return cw_err_set(err, CW_EINVAL, "source.postgres", "table %s.%s has %d columns, "
		                  "more than %d", nspname, relname, ncols, CW_PGOUTPUT_MAX_COLUMNS);
	rows->columns = cw_xcalloc((size_t)ncols + 1, sizeof *rows->columns);
	rows->values = cw_xcalloc((size_t)ncols + 1, sizeof *rows->values);
	for (int c = 0; c < ncols; c++) {
		rows->columns[c].name = PQfname(res, c);
		rows->columns[c].type_oid = PQftype(res, c);
		rows->columns[c].typmod = PQfmod(res, c);
	}
	rows->rel.nspname = (char *)nspname;
	rows->rel.relname = (char *)relname;
	rows->rel.replident = 'd';
	rows->rel.ncolumns = (uint16_t)ncols;
	rows->rel.columns = rows->columns;
	rows->msg.kind = CW_PGOUTPUT_INSERT;
	rows->msg.row.relation = &rows->rel;
	rows->msg.row.new_tuple.ncolumns = (uint16_t)ncols;
	rows->msg.row.new_tuple.values = rows->values;
	rows->res = res;
	return 0;
}

const cw_pgoutput_msg_t *cw_pg_rows_at(cw_pg_rows_t *rows, int row)
{
	for (int c = 0; c < rows->rel.ncolumns; c++) {
		bool null = PQgetisnull(rows->res, row, c);
		rows->values[c].kind = null ? 'n' : 't';
		rows->values[c].text = null ? NULL : (const uint8_t *)PQgetvalue(rows->res, row, c);
		rows->values[c].len = null ? 0 : (uint32_t)PQgetlength(rows->res, row, c);
	}
	return &rows->msg;
}

void cw_pg_rows_clear(cw_pg_rows_t *rows)
{
	free(rows->columns);
	free(rows->values);
	memset(rows, 0, sizeof *rows);
}
