/*
 * This file contains the COPY encoder the oplog writer uses to stream rows
 * into the hub in COPY's binary format (COPY ... FROM STDIN (FORMAT
 * binary)): a header, then per row its number of columns and each column as
 * a 32-bit length (-1 for NULL) followed by the bytes of the type's binary
 * form, then a trailer. A value needs no escaping and the server parses no
 * text to read it (a text value is still checked to be valid in the
 * database's encoding). Integers are big-endian, as PostgreSQL sends them.
 */
#ifndef CW_HUB_COPY_H
#define CW_HUB_COPY_H

#include "core/buf.h"

#include <stdint.h>

/* Starts a COPY's data: the signature, no flags, no header extension. */
void cw_copy_binary_header(cw_buf_t *buf);

/* Starts a row of ncolumns columns. */
void cw_copy_binary_row(cw_buf_t *buf, int ncolumns);

/* A text (or varchar) column's value; NULL appends NULL. */
void cw_copy_binary_text(cw_buf_t *buf, const char *value);

/* An integer (int4) column's value. */
void cw_copy_binary_int4(cw_buf_t *buf, int32_t value);

/* A timestamptz column's value from microseconds since the Unix epoch. */
void cw_copy_binary_timestamp(cw_buf_t *buf, int64_t unix_us);

/* Ends a COPY's data. */
void cw_copy_binary_trailer(cw_buf_t *buf);

#endif
