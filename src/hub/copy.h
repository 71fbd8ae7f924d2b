/*
 * This file contains the COPY encoder the oplog writer uses to stream rows
 * into the hub in COPY's binary format (COPY ... FROM STDIN (FORMAT
 * binary)): a header, then per row its number of columns and each column as
 * a 32-bit length (-1 for NULL) followed by the bytes of its type's binary
 * form, then a trailer. Integers are big-endian, as PostgreSQL sends them.
 *
 * No value is escaped and the server parses no text to read one: a text
 * value is its bytes (the server still checks they are valid in the
 * client's encoding, as for text COPY), a timestamptz is 8 bytes of
 * microseconds after 2000-01-01 UTC, not a date to parse.
 */
#ifndef CW_HUB_COPY_H
#define CW_HUB_COPY_H

#include "core/buf.h"

#include <stdint.h>

/* Appends the header: COPY's signature, no flags, no extension. */
void cw_copy_binary_header(cw_buf_t *buf);

/* Starts a row of ncolumns columns. */
void cw_copy_binary_row(cw_buf_t *buf, int ncolumns);

/* Appends a text column: its bytes; NULL appends SQL NULL. */
void cw_copy_binary_text(cw_buf_t *buf, const char *value);

/* Appends an integer column. */
void cw_copy_binary_int4(cw_buf_t *buf, int32_t value);

/* Appends a bigint column. */
void cw_copy_binary_int8(cw_buf_t *buf, int64_t value);

/* Appends a timestamptz column from microseconds after the Unix epoch (negative: before 1970). */
void cw_copy_binary_timestamp(cw_buf_t *buf, int64_t unix_us);

/* Appends the trailer that ends the data. */
void cw_copy_binary_trailer(cw_buf_t *buf);

#endif
