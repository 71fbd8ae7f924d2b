/*
 * This file contains MySQL 8's GTID sets (pure functions, no server): the
 * set of transactions a server executed, "uuid:1-5:7-9,uuid2:1-3", as MySQL
 * prints @@gtid_executed, and the two things a MySQL 8 replica does with it:
 * asking for the binlog after it (the COM_BINLOG_DUMP_GTID packet) and
 * adding each transaction it reads (a GTID_LOG event's uuid:gno).
 *
 * The binary form is MySQL's (also the body of a PREVIOUS_GTIDS event):
 * n_sids (8 bytes), then per uuid its 16 bytes, n_intervals (8 bytes) and
 * each interval's start and end (8 bytes each, end exclusive), all little
 * endian. Text intervals are inclusive ("1-5" holds 1 to 5).
 *
 * Nothing here is used against a server yet: a MySQL 8 server is refused at
 * connect until its protocol can be tested end to end (docs/sources-mysql.md).
 *
 * THREAD SAFETY: a set belongs to one thread; the functions keep no state.
 */
#ifndef CW_CAPTURE_MYSQL_GTID_SET_H
#define CW_CAPTURE_MYSQL_GTID_SET_H

#include "capture/mysql_binlog.h"
#include "core/buf.h"
#include "core/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Transactions start..end of one uuid, inclusive; start >= 1. */
typedef struct cw_gtid_interval {
	int64_t start;
	int64_t end;
} cw_gtid_interval_t;

typedef struct cw_gtid_uuid_set {
	uint8_t uuid[16];
	cw_gtid_interval_t *intervals;   /* owned; sorted, disjoint, never adjacent */
	size_t nintervals;
} cw_gtid_uuid_set_t;

/* A set; zeroed = empty. Uuids sorted by their bytes. */
typedef struct cw_gtid_set {
	cw_gtid_uuid_set_t *uuids;       /* owned */
	size_t nuuids;
} cw_gtid_set_t;

/* Frees the members and empties it; an empty set is a no-op. */
void cw_gtid_set_clear(cw_gtid_set_t *set);

/*
 * Parses MySQL's text ("" is empty; whitespace around the commas, as
 * MySQL prints newlines there; upper- or lower-case uuids; overlapping or
 * unsorted intervals are merged) into set (cleared first). 0 or CW_EINVAL
 * saying where the text is wrong.
 */
int cw_gtid_set_parse(const char *text, cw_gtid_set_t *set, cw_err_t *err);

/* Appends the canonical text: lower-case uuids in order, merged intervals, "," between. */
void cw_gtid_set_format(const cw_gtid_set_t *set, cw_buf_t *out);

/* Whether set holds gtid (a MySQL uuid:gno; a MariaDB GTID never). */
bool cw_gtid_set_contains(const cw_gtid_set_t *set, const cw_binlog_gtid_t *gtid);

/* Adds gtid (a MySQL uuid:gno with gno >= 1; else CW_EINVAL), merging neighbours. */
int cw_gtid_set_add(cw_gtid_set_t *set, const cw_binlog_gtid_t *gtid);

/* Appends the binary form of set to out. */
void cw_gtid_set_encode(const cw_gtid_set_t *set, cw_buf_t *out);

/* Reads the binary form (len bytes) into set (cleared first). 0 or CW_EPROTO. */
int cw_gtid_set_decode(const uint8_t *bytes, size_t len, cw_gtid_set_t *set, cw_err_t *err);

/* COM_BINLOG_DUMP_GTID's flag: the GTID set decides where the dump starts. */
#define CW_BINLOG_THROUGH_GTID 0x0004

/*
 * Appends the COM_BINLOG_DUMP_GTID command (the packet's payload, without
 * the 4-byte packet header) asking for every transaction not in set:
 * command 0x1e, flags (2 bytes), server_id (4), the binlog file name's
 * length (4) and name ("" with GTIDs), position (8, 4 with GTIDs), the set's
 * length (4) and binary form.
 */
void cw_gtid_dump_command(const cw_gtid_set_t *set, uint32_t server_id, uint16_t flags,
                          cw_buf_t *out);

#endif
