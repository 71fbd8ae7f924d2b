/*
 * This file contains the COPY text-format encoder the oplog writer uses to
 * stream rows into the hub (COPY ... FROM STDIN, PostgreSQL's default text
 * format: tab between columns, newline after each row, \N for NULL).
 *
 * Inside a value, backslash, tab, newline and carriage return are escaped
 * (\\ \t \n \r) so no value can end a column or a row early, and since every
 * backslash is doubled no value can form the end marker \. or a \N.
 * Other bytes, UTF-8 included, pass through unchanged.
 */
#ifndef CW_HUB_COPY_H
#define CW_HUB_COPY_H

#include "core/buf.h"

#include <stdint.h>

/* Appends value escaped for COPY text format; NULL appends \N. */
void cw_copy_append_value(cw_buf_t *buf, const char *value);

/* Appends a column separator (tab). */
void cw_copy_append_sep(cw_buf_t *buf);

/* Ends a row (newline). */
void cw_copy_end_row(cw_buf_t *buf);

/* Appends microseconds since the Unix epoch as a timestamptz literal in UTC,
 * "2024-05-01 12:30:00.123456+00". Negative values (before 1970) work too. */
void cw_copy_append_timestamp(cw_buf_t *buf, int64_t unix_us);

#endif
