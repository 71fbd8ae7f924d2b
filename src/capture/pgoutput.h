/*
 * This file contains the pgoutput decoder: a pure module (bytes in, decoded
 * messages and changes out, no I/O) for every message of the pgoutput
 * logical replication protocol versions 1 and 2 — Begin, Commit, Origin,
 * Relation, Type, Insert, Update, Delete, Truncate, Message and the
 * protocol 2 streaming messages Stream Start, Stop, Commit and Abort — and
 * for the CopyData envelope of the replication connection around them
 * (XLogData 'w', keepalive 'k', and the standby status update 'r' we send).
 *
 * A decoder keeps the relation cache (relid -> schema, name, replica
 * identity, columns), refreshed by every Relation message, and whether it is
 * inside a Stream Start .. Stream Stop block (messages there carry an xid).
 * Row values keep their text form; docs/pgoutput.md gives the rules that map
 * them to JSON in a change's data and doc_id (cw_pgoutput_row_change, in
 * pgoutput_row.c).
 *
 * Malformed input never crashes: every read is bounds-checked and failures
 * return CW_EPROTO with a message naming the message and the byte offset,
 * e.g. pgoutput Insert message: truncated tuple at offset 17.
 *
 * THREAD SAFETY: a decoder is used by one thread at a time (the source's
 * worker); separate decoders share nothing.
 */
#ifndef CW_CAPTURE_PGOUTPUT_H
#define CW_CAPTURE_PGOUTPUT_H

#include "core/buf.h"
#include "core/change.h"
#include "core/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* PostgreSQL's limit on the columns of a table (MaxTupleAttributeNumber). */
#define CW_PGOUTPUT_MAX_COLUMNS 1664
/* Microseconds from the Unix epoch to PostgreSQL's (2000-01-01 00:00 UTC). */
#define CW_PGOUTPUT_EPOCH_OFFSET_US INT64_C(946684800000000)

/* Column flag: the column is part of the relation's replica identity key. */
#define CW_PGOUTPUT_COLUMN_KEY 0x01
/* Truncate options. */
#define CW_PGOUTPUT_TRUNCATE_CASCADE 0x01
#define CW_PGOUTPUT_TRUNCATE_RESTART_IDENTITY 0x02
/* Message flag: the logical message was emitted transactionally. */
#define CW_PGOUTPUT_MESSAGE_TRANSACTIONAL 0x01

typedef struct cw_pgoutput_column {
	char *name;          /* owned by the relation */
	uint32_t type_oid;
	int32_t typmod;      /* -1 when the type has none */
	uint8_t flags;       /* CW_PGOUTPUT_COLUMN_KEY */
} cw_pgoutput_column_t;

typedef struct cw_pgoutput_rel {
	uint32_t relid;
	char *nspname;       /* owned; as sent ("" stands for pg_catalog) */
	char *relname;       /* owned */
	char replident;      /* 'd' default, 'n' nothing, 'f' full, 'i' index */
	uint16_t ncolumns;
	cw_pgoutput_column_t *columns; /* owned array of ncolumns */
} cw_pgoutput_rel_t;

/* One column of a tuple, as sent. */
typedef struct cw_pgoutput_value {
	char kind;           /* 'n' null, 'u' unchanged TOAST (unknown), 't' text */
	uint32_t len;        /* bytes in text */
	const uint8_t *text; /* 't' only: borrowed from the message bytes, not NUL-terminated */
	size_t offset;       /* offset of the column in the message, for errors */
} cw_pgoutput_value_t;

typedef struct cw_pgoutput_tuple {
	uint16_t ncolumns;            /* 0 when the message has no such tuple */
	cw_pgoutput_value_t *values;  /* borrowed from the decoder */
} cw_pgoutput_tuple_t;

typedef enum cw_pgoutput_kind {
	CW_PGOUTPUT_BEGIN = 'B',
	CW_PGOUTPUT_COMMIT = 'C',
	CW_PGOUTPUT_ORIGIN = 'O',
	CW_PGOUTPUT_RELATION = 'R',
	CW_PGOUTPUT_TYPE = 'Y',
	CW_PGOUTPUT_INSERT = 'I',
	CW_PGOUTPUT_UPDATE = 'U',
	CW_PGOUTPUT_DELETE = 'D',
	CW_PGOUTPUT_TRUNCATE = 'T',
	CW_PGOUTPUT_MESSAGE = 'M',
	CW_PGOUTPUT_STREAM_START = 'S',
	CW_PGOUTPUT_STREAM_STOP = 'E',
	CW_PGOUTPUT_STREAM_COMMIT = 'c',
	CW_PGOUTPUT_STREAM_ABORT = 'A',
} cw_pgoutput_kind_t;

/*
 * One decoded message. Pointers are borrowed: strings and message content
 * point into the bytes given to cw_pgoutput_decode (valid while those are);
 * relations, tuples and truncate relids point into the decoder (valid until
 * the next cw_pgoutput_decode or cw_pgoutput_free).
 */
typedef struct cw_pgoutput_msg {
	cw_pgoutput_kind_t kind;
	/* Begin and Stream *: the transaction. Relation, Type, Insert, Update,
	 * Delete, Truncate and Message inside a stream block: the (sub)transaction
	 * the message belongs to. 0 otherwise. */
	uint32_t xid;
	union {
		struct {
			uint64_t final_lsn;
			int64_t commit_time_us;  /* Unix epoch */
		} begin;
		struct {                         /* Commit and Stream Commit */
			uint8_t flags;           /* unused by PostgreSQL, 0 */
			uint64_t commit_lsn;
			uint64_t end_lsn;
			int64_t commit_time_us;  /* Unix epoch */
		} commit;
		struct {
			uint64_t lsn;            /* commit LSN on the origin server */
			const char *name;
		} origin;
		const cw_pgoutput_rel_t *relation;
		struct {
			uint32_t oid;
			const char *nspname;     /* "" stands for pg_catalog */
			const char *name;
		} type;
		struct {                         /* Insert, Update, Delete */
			const cw_pgoutput_rel_t *relation;
			char old_kind;           /* 'K' key only, 'O' whole old row, '\0' none */
			cw_pgoutput_tuple_t old_tuple; /* Update with K/O, Delete */
			cw_pgoutput_tuple_t new_tuple; /* Insert, Update */
		} row;
		struct {
			uint32_t nrelids;
			const uint32_t *relids;  /* every one is in the relation cache */
			uint8_t options;         /* CW_PGOUTPUT_TRUNCATE_* */
		} truncate;
		struct {
			uint8_t flags;           /* CW_PGOUTPUT_MESSAGE_TRANSACTIONAL */
			uint64_t lsn;
			const char *prefix;
			const uint8_t *content;  /* not NUL-terminated */
			uint32_t content_len;
		} message;
		struct {
			bool first_segment;
		} stream_start;
		struct {
			uint32_t subxid;         /* == xid when the whole transaction aborted */
		} stream_abort;
	};
} cw_pgoutput_msg_t;

typedef struct cw_pgoutput cw_pgoutput_t;

/* A new decoder with an empty relation cache; free with cw_pgoutput_free. */
cw_pgoutput_t *cw_pgoutput_new(void);
/* Frees the decoder and its cache; NULL is a no-op. */
void cw_pgoutput_free(cw_pgoutput_t *dec);

/*
 * Decodes ONE pgoutput message (the data of an XLogData message) into out.
 * A Relation message replaces the cached relation of its relid. A row or
 * Truncate message naming a relid never described by a Relation message is
 * an error. bytes stay owned by the caller and must outlive the use of out.
 * Returns 0, or CW_EPROTO with err filled; the decoder stays usable after an
 * error (the message is skipped, the cache keeps its previous state).
 */
int cw_pgoutput_decode(cw_pgoutput_t *dec, const uint8_t *bytes, size_t len,
	cw_pgoutput_msg_t *out, cw_err_t *err);

/* The cached relation of relid, or NULL. Borrowed until the next decode. */
const cw_pgoutput_rel_t *cw_pgoutput_relation(const cw_pgoutput_t *dec, uint32_t relid);

/*
 * Names the primary key columns of nspname.relname, used for doc_id instead
 * of the replica identity flags. Required for a REPLICA IDENTITY FULL table
 * (pgoutput marks every column of such a table as key); optional otherwise.
 * Strings are copied. Replaces an earlier call for the same table. Returns 0
 * or CW_EINVAL for an empty list or one longer than CW_PGOUTPUT_MAX_COLUMNS.
 */
int cw_pgoutput_set_primary_key(cw_pgoutput_t *dec, const char *nspname,
	const char *relname, const char *const *columns, size_t ncolumns, cw_err_t *err);

/*
 * The primary key given for nspname.relname by cw_pgoutput_set_primary_key:
 * returns its column count and points *columns at the names (borrowed until
 * the next set call or cw_pgoutput_free), or returns 0 when none was given.
 */
size_t cw_pgoutput_primary_key(const cw_pgoutput_t *dec, const char *nspname,
	const char *relname, const char *const **columns);

/* The change(s) one Insert, Update or Delete message turns into. */
typedef struct cw_pgoutput_row {
	cw_op_t op;          /* CW_OP_UPSERT (Insert, Update) or CW_OP_DELETE */
	char *doc_id;        /* owned; canonical text (DESIGN.md §2) */
	char *old_doc_id;    /* owned; an Update that changed the key: delete this
	                      * doc_id before upserting doc_id. NULL otherwise */
	char *data;          /* owned; upsert: JSON object of the new row's columns,
	                      * unchanged TOAST columns absent. NULL for a delete */
} cw_pgoutput_row_t;

/*
 * Turns a decoded Insert, Update or Delete message (borrowed) into row,
 * which the caller clears with cw_pgoutput_row_clear. Returns 0, CW_EPROTO
 * for a value that does not match its type (invalid UTF-8, invalid JSON in a
 * json column, a boolean other than t/f) or a missing or null key value, or
 * CW_EINVAL when the relation has no usable key (no primary key and no
 * replica identity index; REPLICA IDENTITY FULL without
 * cw_pgoutput_set_primary_key) or msg is not a row message. On failure row
 * is left cleared.
 */
int cw_pgoutput_row_change(const cw_pgoutput_t *dec, const cw_pgoutput_msg_t *msg,
	cw_pgoutput_row_t *row, cw_err_t *err);
/* Frees the members and zeroes the struct; NULL is a no-op. */
void cw_pgoutput_row_clear(cw_pgoutput_row_t *row);

/* Human name of a message kind: "Insert", "Stream Commit"; "unknown" else. */
const char *cw_pgoutput_kind_name(cw_pgoutput_kind_t kind);

/* The CopyData payload of a replication connection (START_REPLICATION). */
typedef struct cw_pgoutput_copydata {
	char kind;                 /* 'w' XLogData or 'k' primary keepalive */
	uint64_t wal_start;        /* 'w' only */
	uint64_t wal_end;          /* server's WAL end */
	int64_t send_time_us;      /* Unix epoch */
	bool reply_requested;      /* 'k' only */
	const uint8_t *data;       /* 'w' only: the pgoutput message, borrowed from bytes */
	size_t data_len;
} cw_pgoutput_copydata_t;

/*
 * Parses one CopyData payload from the server into out (pointers borrowed
 * from bytes). Returns 0 or CW_EPROTO for anything but a well-formed 'w' or
 * 'k' message.
 */
int cw_pgoutput_copydata_parse(const uint8_t *bytes, size_t len,
	cw_pgoutput_copydata_t *out, cw_err_t *err);

#define CW_PGOUTPUT_STATUS_LEN 34

/*
 * Writes the standby status update ('r') into out: the LSNs written,
 * flushed and applied, the client clock (Unix epoch microseconds) and
 * whether the server should reply at once. Returns CW_PGOUTPUT_STATUS_LEN.
 */
size_t cw_pgoutput_status_build(uint8_t out[CW_PGOUTPUT_STATUS_LEN], uint64_t written_lsn,
	uint64_t flushed_lsn, uint64_t applied_lsn, int64_t now_us, bool reply_requested);

#endif
