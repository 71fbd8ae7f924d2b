/*
 * This file contains what the three files of the binlog decoder share
 * (mysql_binlog.c: events and table maps; mysql_binlog_row.c: row images;
 * mysql_binlog_value.c: column values and binary JSON): the bounds-checked
 * little-endian reader and the decoder's state. Not for other modules.
 */
#ifndef CW_CAPTURE_MYSQL_BINLOG_INTERNAL_H
#define CW_CAPTURE_MYSQL_BINLOG_INTERNAL_H

#include "capture/mysql_binlog.h"

#include <stdarg.h>

#define CW_BINLOG_DOMAIN "binlog"

/* A table named by cw_binlog_set_table. */
typedef struct cw_binlog_hint {
	char *schema;
	char *table;
	char **columns;          /* NULL when not given */
	uint32_t ncolumns;
	uint16_t *key;
	uint32_t nkey;
} cw_binlog_hint_t;

/* A cached table with the TABLE_MAP body it was decoded from. */
typedef struct cw_binlog_cached {
	cw_binlog_table_t *table;
	uint8_t *body;           /* owned copy: an identical TABLE_MAP reuses the table */
	size_t body_len;
} cw_binlog_cached_t;

/* The row images cw_binlog_row_next decodes into (mysql_binlog_row.c). */
typedef struct cw_binlog_images cw_binlog_images_t;
void cw_binlog_images_free(cw_binlog_images_t *images);

struct cw_binlog {
	uint16_t binlog_version;
	uint8_t checksum_alg;
	bool skip_verify;            /* cw_binlog_verify_checksums(dec, false) */
	uint8_t post_header[256];    /* post-header length per event type */
	cw_binlog_cached_t *tables;
	size_t ntables, tables_cap;
	cw_binlog_hint_t *hints;
	size_t nhints;
	cw_binlog_gtid_t *gtids;     /* GTID_LIST entries */
	size_t gtids_cap;
	char *truncate_schema;       /* the last TRUNCATE's table */
	char *truncate_table;
	cw_binlog_images_t *images;  /* allocated by the first row */
	uint8_t *inflated;           /* a compressed event's body, uncompressed (MariaDB) */
	size_t inflated_cap;
};

/* Reads one event; every read checks the bounds first. */
typedef struct cw_binlog_reader {
	const uint8_t *bytes;
	size_t len;                  /* end of the body (the checksum excluded) */
	size_t pos;
	const char *what;            /* "TABLE_MAP event", "column" */
	cw_err_t *err;
	const char *name;            /* NULL, or what's name: errors say what "name" */
} cw_binlog_reader_t;

int cw_binlog_fail(const cw_binlog_reader_t *r, size_t offset, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* CW_EPROTO unless n more bytes are there. */
int cw_binlog_need(cw_binlog_reader_t *r, size_t n, const char *what);
/* n (<= 8) little-endian bytes, unchecked: call cw_binlog_need first. */
uint64_t cw_binlog_le(const uint8_t *p, size_t n);
/* n (<= 8) big-endian bytes, unchecked. */
uint64_t cw_binlog_be(const uint8_t *p, size_t n);
int cw_binlog_read_uint(cw_binlog_reader_t *r, size_t n, const char *what, uint64_t *v);
/* A length-encoded integer (1, 3, 4 or 9 bytes). */
int cw_binlog_read_lenenc(cw_binlog_reader_t *r, const char *what, uint64_t *v);

/* mysql_binlog_table.c: the table cache and TABLE_MAP. */
void cw_binlog_table_free(cw_binlog_table_t *table);
void cw_binlog_hint_clear(cw_binlog_hint_t *hint);
cw_binlog_cached_t *cw_binlog_cache_find(const cw_binlog_t *dec, uint64_t table_id);
/* The table id of a TABLE_MAP or ROWS event: 4 or 6 bytes by the post-header length. */
int cw_binlog_read_table_id(const cw_binlog_t *dec, cw_binlog_reader_t *r, uint8_t type,
	uint64_t *id);
int cw_binlog_decode_table_map(cw_binlog_t *dec, cw_binlog_reader_t *r, cw_binlog_event_t *out);

/* A length-encoded count of items of at least min_size bytes each that must fit
 * what is left of the event and be at most limit. */
int cw_binlog_read_count(cw_binlog_reader_t *r, const char *what, size_t min_size, uint32_t limit,
	uint32_t *count);

/* Whether the column type is numeric (SIGNEDNESS covers it) or a character type
 * (the charset fields cover it). */
bool cw_binlog_is_numeric(uint8_t type);
bool cw_binlog_is_character(uint8_t type);

/* Appends s[0..len) in the column's charset as UTF-8 to out; CW_EPROTO when
 * it is not valid in it (or the charset is one cachewarp cannot convert). */
int cw_binlog_text_utf8(const cw_binlog_reader_t *r, uint16_t collation, const uint8_t *s,
	size_t len, size_t offset, cw_buf_t *out);

/*
 * Values binary JSON shares with the row image (mysql_binlog_value.c):
 * DECIMAL(precision, scale) in MySQL's binary form at p (avail bytes; *used
 * set), a DATETIME2 and a TIME2 as MySQL packs them, each appended as text.
 */
int cw_binlog_read_decimal(const cw_binlog_reader_t *r, int precision, int scale, const uint8_t *p,
	size_t avail, size_t *used, cw_buf_t *out);
void cw_binlog_put_datetime_packed(cw_buf_t *out, uint64_t intpart, int fsp, uint32_t micro);
void cw_binlog_put_time_packed(cw_buf_t *out, int64_t packed, int fsp);

#endif
