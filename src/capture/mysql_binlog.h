/*
 * This file contains the MySQL/MariaDB binlog decoder: a pure module (bytes
 * in, decoded events and row changes out, no I/O) for the events of a
 * row-based binlog as a replication connection or a binlog file delivers
 * them — FORMAT_DESCRIPTION (checksum algorithm, post-header lengths),
 * ROTATE, MariaDB GTID and GTID_LIST, MySQL 8 GTID_LOG, XID, QUERY (BEGIN,
 * COMMIT, ROLLBACK, TRUNCATE, DDL), TABLE_MAP with its optional metadata
 * (binlog_row_metadata=FULL: column names, signedness, charsets, ENUM and
 * SET values, primary key), WRITE/UPDATE/DELETE_ROWS v1 and v2, and
 * MariaDB's zlib-compressed QUERY and rows events. Other events decode as
 * CW_BINLOG_OTHER.
 *
 * A decoder keeps the last FORMAT_DESCRIPTION (until one arrives, events are
 * read as binlog version 4 with CRC32 checksums) and the table map cache
 * (table id -> table), refreshed by every TABLE_MAP event. Row images turn
 * into a change's doc_id and data following docs/sources-mysql.md: values
 * are exact (DECIMAL keeps its digits, BIGINT UNSIGNED its 20 digits),
 * binary strings are "\x" + hex as the PostgreSQL source writes bytea,
 * GEOMETRY is (E)WKB hex, MySQL's binary JSON is embedded as JSON. A column
 * left out of a MINIMAL row image is absent from data (unchanged).
 *
 * Malformed input never crashes: every read is bounds-checked and failures
 * return CW_EPROTO with a message naming the event and the byte offset,
 * e.g. binlog TABLE_MAP event: truncated column types at offset 31.
 *
 * THREAD SAFETY: a decoder is used by one thread at a time; separate
 * decoders share nothing.
 */
#ifndef CW_CAPTURE_MYSQL_BINLOG_H
#define CW_CAPTURE_MYSQL_BINLOG_H

#include "core/buf.h"
#include "core/change.h"
#include "core/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The common header of every event (binlog version 4). */
#define CW_BINLOG_HEADER_LEN 19
/* MySQL's limit on the columns of a table. */
#define CW_BINLOG_MAX_COLUMNS 4096

/* Event type codes (the header's type byte). */
enum {
	CW_BINLOG_EV_QUERY = 2,
	CW_BINLOG_EV_STOP = 3,
	CW_BINLOG_EV_ROTATE = 4,
	CW_BINLOG_EV_FORMAT_DESCRIPTION = 15,
	CW_BINLOG_EV_XID = 16,
	CW_BINLOG_EV_TABLE_MAP = 19,
	CW_BINLOG_EV_WRITE_ROWS_V1 = 23,
	CW_BINLOG_EV_UPDATE_ROWS_V1 = 24,
	CW_BINLOG_EV_DELETE_ROWS_V1 = 25,
	CW_BINLOG_EV_HEARTBEAT = 27,
	CW_BINLOG_EV_WRITE_ROWS_V2 = 30,
	CW_BINLOG_EV_UPDATE_ROWS_V2 = 31,
	CW_BINLOG_EV_DELETE_ROWS_V2 = 32,
	CW_BINLOG_EV_MYSQL_GTID = 33,
	CW_BINLOG_EV_MYSQL_ANONYMOUS_GTID = 34,
	CW_BINLOG_EV_MYSQL_PREVIOUS_GTIDS = 35,
	CW_BINLOG_EV_MARIADB_ANNOTATE_ROWS = 160,
	CW_BINLOG_EV_MARIADB_BINLOG_CHECKPOINT = 161,
	CW_BINLOG_EV_MARIADB_GTID = 162,
	CW_BINLOG_EV_MARIADB_GTID_LIST = 163,
	CW_BINLOG_EV_MARIADB_QUERY_COMPRESSED = 165,
	CW_BINLOG_EV_MARIADB_WRITE_ROWS_COMPRESSED_V1 = 166,
	CW_BINLOG_EV_MARIADB_DELETE_ROWS_COMPRESSED = 171,
};

/* Column types (the TABLE_MAP type byte; ENUM and SET come as STRING). */
enum {
	CW_MYSQL_TYPE_DECIMAL = 0, CW_MYSQL_TYPE_TINY = 1, CW_MYSQL_TYPE_SHORT = 2,
	CW_MYSQL_TYPE_LONG = 3, CW_MYSQL_TYPE_FLOAT = 4, CW_MYSQL_TYPE_DOUBLE = 5,
	CW_MYSQL_TYPE_NULL = 6, CW_MYSQL_TYPE_TIMESTAMP = 7, CW_MYSQL_TYPE_LONGLONG = 8,
	CW_MYSQL_TYPE_INT24 = 9, CW_MYSQL_TYPE_DATE = 10, CW_MYSQL_TYPE_TIME = 11,
	CW_MYSQL_TYPE_DATETIME = 12, CW_MYSQL_TYPE_YEAR = 13, CW_MYSQL_TYPE_NEWDATE = 14,
	CW_MYSQL_TYPE_VARCHAR = 15, CW_MYSQL_TYPE_BIT = 16, CW_MYSQL_TYPE_TIMESTAMP2 = 17,
	CW_MYSQL_TYPE_DATETIME2 = 18, CW_MYSQL_TYPE_TIME2 = 19, CW_MYSQL_TYPE_JSON = 245,
	CW_MYSQL_TYPE_NEWDECIMAL = 246, CW_MYSQL_TYPE_ENUM = 247, CW_MYSQL_TYPE_SET = 248,
	CW_MYSQL_TYPE_TINY_BLOB = 249, CW_MYSQL_TYPE_MEDIUM_BLOB = 250,
	CW_MYSQL_TYPE_LONG_BLOB = 251, CW_MYSQL_TYPE_BLOB = 252, CW_MYSQL_TYPE_VAR_STRING = 253,
	CW_MYSQL_TYPE_STRING = 254, CW_MYSQL_TYPE_GEOMETRY = 255,
};

/* The binary collation: a string column of it holds bytes, not text. */
#define CW_MYSQL_BINARY_COLLATION 63

/* Checksum algorithms of FORMAT_DESCRIPTION. */
enum { CW_BINLOG_CHECKSUM_OFF = 0, CW_BINLOG_CHECKSUM_CRC32 = 1 };

typedef struct cw_binlog_column {
	char *name;             /* owned; NULL when the table map carries no names */
	uint8_t type;           /* CW_MYSQL_TYPE_*; STRING resolved to ENUM or SET */
	uint16_t meta;          /* the type's metadata, normalised: see mysql_binlog.c */
	bool is_unsigned;       /* numeric types, from SIGNEDNESS */
	bool nullable;
	uint16_t collation;     /* character and ENUM/SET types; 0 when not sent */
	char **values;          /* ENUM or SET: owned array of nvalues names (UTF-8) */
	uint32_t nvalues;
} cw_binlog_column_t;

typedef struct cw_binlog_table {
	uint64_t table_id;
	char *schema;           /* owned */
	char *name;             /* owned */
	uint32_t ncolumns;
	cw_binlog_column_t *columns; /* owned array of ncolumns */
	uint16_t *key;          /* owned: primary key column indexes (metadata or hint) */
	uint32_t nkey;          /* 0 when unknown */
} cw_binlog_table_t;

/* A GTID: MariaDB's domain-server-sequence or MySQL's uuid:gno. */
typedef struct cw_binlog_gtid {
	bool mysql;             /* true: uuid and gno; false: domain, server, seq */
	uint32_t domain_id;
	uint32_t server_id;
	uint64_t seq;
	uint8_t uuid[16];
	int64_t gno;
} cw_binlog_gtid_t;

typedef enum cw_binlog_kind {
	CW_BINLOG_OTHER = 0,          /* an event the capture has no use for */
	CW_BINLOG_FORMAT_DESCRIPTION,
	CW_BINLOG_ROTATE,
	CW_BINLOG_GTID,               /* MariaDB GTID or MySQL GTID_LOG: a transaction starts */
	CW_BINLOG_GTID_LIST,          /* MariaDB: the binlog state at the start of a file */
	CW_BINLOG_XID,                /* a transaction commits */
	CW_BINLOG_QUERY,
	CW_BINLOG_TABLE_MAP,
	CW_BINLOG_ROWS,               /* WRITE, UPDATE or DELETE_ROWS */
	CW_BINLOG_HEARTBEAT,
} cw_binlog_kind_t;

/* What a QUERY event's statement means to the capture. */
typedef enum cw_binlog_query_kind {
	CW_BINLOG_QUERY_OTHER = 0,
	CW_BINLOG_QUERY_BEGIN,
	CW_BINLOG_QUERY_COMMIT,
	CW_BINLOG_QUERY_ROLLBACK,
	CW_BINLOG_QUERY_TRUNCATE,     /* TRUNCATE [TABLE] name: table named in query.table */
	CW_BINLOG_QUERY_DDL,          /* CREATE/ALTER/DROP/RENAME TABLE and the like: refresh relations */
} cw_binlog_query_kind_t;

typedef enum cw_binlog_rows_op {
	CW_BINLOG_WRITE = 1,
	CW_BINLOG_UPDATE,
	CW_BINLOG_DELETE,
} cw_binlog_rows_op_t;

/*
 * One decoded event. Strings are borrowed from the event bytes (valid while
 * they are) unless noted; tables and lists point into the decoder (valid
 * until the next cw_binlog_decode or cw_binlog_free).
 */
typedef struct cw_binlog_event {
	cw_binlog_kind_t kind;
	uint8_t type;                 /* the header's type byte */
	uint32_t timestamp;           /* seconds since the Unix epoch */
	uint32_t server_id;
	uint32_t event_size;
	uint32_t log_pos;             /* position after the event in its file; 0 for artificial */
	uint16_t flags;
	union {
		struct {
			uint16_t binlog_version;
			char server_version[51];  /* copied, NUL-terminated */
			uint8_t checksum_alg;     /* CW_BINLOG_CHECKSUM_* */
		} fde;
		struct {
			uint64_t position;
			const char *file;         /* not NUL-terminated */
			size_t file_len;
		} rotate;
		struct {
			cw_binlog_gtid_t gtid;
			bool standalone;          /* MariaDB: no XID or COMMIT follows (DDL) */
		} gtid;
		struct {
			uint32_t count;
			const cw_binlog_gtid_t *gtids;
		} gtid_list;
		uint64_t xid;
		struct {
			cw_binlog_query_kind_t kind;
			const char *schema;       /* the default database, NUL-terminated; "" for none */
			const char *text;         /* the statement, not NUL-terminated */
			size_t text_len;
			const char *table_schema; /* TRUNCATE: owned by the decoder, NUL-terminated */
			const char *table;        /* TRUNCATE: owned by the decoder, NUL-terminated */
		} query;
		const cw_binlog_table_t *table_map;
		struct {
			cw_binlog_rows_op_t op;
			const cw_binlog_table_t *table;
			uint16_t flags;           /* bit 0: end of statement */
			/* the row images, walked by cw_binlog_row_next */
			const uint8_t *bytes;
			size_t pos, end;
			const uint8_t *present;   /* columns present in the (before) image */
			const uint8_t *present_after; /* UPDATE: columns present in the after image */
		} rows;
	};
} cw_binlog_event_t;

typedef struct cw_binlog cw_binlog_t;

/* A new decoder with an empty table cache; free with cw_binlog_free. */
cw_binlog_t *cw_binlog_new(void);
/* Frees the decoder and its cache; NULL is a no-op. */
void cw_binlog_free(cw_binlog_t *dec);

/*
 * Decodes ONE event (header, body and checksum when the format says so)
 * into out. bytes stay owned by the caller and must outlive the use of out.
 * A checksum that does not match is an error. Returns 0, or CW_EPROTO with
 * err filled; the decoder stays usable after an error (the event is
 * skipped, the cache keeps its previous state). A ROWS event of a table id
 * never mapped is an error.
 */
int cw_binlog_decode(cw_binlog_t *dec, const uint8_t *bytes, size_t len,
	cw_binlog_event_t *out, cw_err_t *err);

/*
 * Whether checksums are verified (the default) or only stripped: the fuzz
 * target turns verification off to reach past it.
 */
void cw_binlog_verify_checksums(cw_binlog_t *dec, bool verify);

/* The checksum algorithm of the last FORMAT_DESCRIPTION (CRC32 before one). */
uint8_t cw_binlog_checksum_alg(const cw_binlog_t *dec);

/*
 * Names the columns and primary key of schema.table, for table maps that
 * carry no names (binlog_row_metadata=MINIMAL) or no primary key; the
 * source reads them from information_schema. columns may be NULL (names
 * from the metadata); key holds ncolumns-relative indexes. Strings are
 * copied; a later call for the same table replaces the earlier one, and
 * applies from the next TABLE_MAP of the table. 0 or CW_EINVAL for a key
 * longer than CW_BINLOG_MAX_COLUMNS.
 */
int cw_binlog_set_table(cw_binlog_t *dec, const char *schema, const char *table,
	const char *const *columns, uint32_t ncolumns, const uint16_t *key, uint32_t nkey,
	cw_err_t *err);

/* The change one row of a ROWS event turns into. */
typedef struct cw_binlog_row {
	cw_op_t op;          /* CW_OP_UPSERT (WRITE, UPDATE) or CW_OP_DELETE */
	char *doc_id;        /* owned; canonical text (DESIGN.md §2) */
	char *old_doc_id;    /* owned; an UPDATE that changed the key: delete this
	                      * doc_id before upserting doc_id. NULL otherwise */
	char *data;          /* owned; upsert: JSON object of the after image's
	                      * columns (absent = unchanged). NULL for a delete */
} cw_binlog_row_t;

/*
 * Decodes the next row of a ROWS event (ev, whose cursor it advances) into
 * row, which the caller clears with cw_binlog_row_clear. Returns 1 with a
 * row, 0 when the event has no more rows, CW_EPROTO for a malformed image
 * or a value that does not fit its type (err names the column), CW_EINVAL
 * when the table has no known key or no column names. After an error the
 * event's remaining rows cannot be read.
 */
int cw_binlog_row_next(cw_binlog_t *dec, cw_binlog_event_t *ev, cw_binlog_row_t *row,
	cw_err_t *err);
/* Frees the members and zeroes the struct; NULL is a no-op. */
void cw_binlog_row_clear(cw_binlog_row_t *row);

/* What a column value's text is in JSON. */
typedef enum cw_binlog_value_kind {
	CW_BINLOG_VALUE_NULL = 0,
	CW_BINLOG_VALUE_NUMBER,   /* text is a JSON number (exact digits) */
	CW_BINLOG_VALUE_STRING,   /* text is UTF-8, written as a JSON string */
	CW_BINLOG_VALUE_JSON,     /* text is a JSON document, embedded as is */
} cw_binlog_value_kind_t;

/*
 * Reads one (non-null) column value of a row image: bytes[*pos..end) holds
 * it and *pos moves past it. Sets *kind and appends the value's text (the
 * rules of docs/sources-mysql.md) to text. Returns 0 or CW_EPROTO (err
 * names what and the offset). Exposed for the tests.
 */
int cw_binlog_value_read(const cw_binlog_column_t *col, const uint8_t *bytes, size_t *pos,
	size_t end, cw_buf_t *text, cw_binlog_value_kind_t *kind, cw_err_t *err);

/*
 * Writes MySQL's binary JSON (a JSON column's value, len bytes) as JSON
 * text to out. 0 or CW_EPROTO.
 */
int cw_binlog_json_text(const uint8_t *bytes, size_t len, cw_buf_t *out, cw_err_t *err);

/* Human name of an event type: "TABLE_MAP", "WRITE_ROWS_V1"; "UNKNOWN" else. */
const char *cw_binlog_type_name(uint8_t type);

/* Formats a GTID: "0-1-42" or "3e11fa47-71ca-11e1-9e33-c80aa9429562:23". */
void cw_binlog_gtid_format(const cw_binlog_gtid_t *gtid, cw_buf_t *out);

#endif
