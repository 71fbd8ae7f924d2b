/*
 * This file contains the SQL batch mode sends and the marker it keeps
 * (docs/batch.md), as pure functions: the statements are built here for
 * each SQL dialect (the seam another database's poller plugs into) and
 * tested without a server.
 *
 * The poll reads changed rows with keyset pagination on (column, key...):
 *
 *   SELECT t.*, <the column's time in microseconds> FROM <table> AS t
 *   WHERE (t.col, t.k1, ...) > ($1, $2, ...) AND t.col <= <now - lag>
 *   ORDER BY t.col, t.k1, ... LIMIT n
 *
 * so rows sharing one column value are read in key order across pages:
 * none is skipped and none read twice. The marker is the last row's column
 * value and key, as the server printed them, and is passed back as text
 * the server parses with the columns' own types.
 *
 * Delete detection hashes each doc_id (md5, its first 64 bits) on both
 * sides, sums the hashes per bucket (the hash's low bits), and lists only
 * the buckets whose count or sum differ. MySQL and MariaDB write each
 * doc_id in SQL the way the snapshot's C code writes it (key_forms), so
 * the table's hashes equal the ones the hub computes over the same keys.
 *
 * THREAD SAFETY: pure functions.
 */
#ifndef CW_CAPTURE_BATCH_SQL_H
#define CW_CAPTURE_BATCH_SQL_H

#include "core/buf.h"
#include "core/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum cw_batch_dialect {
	CW_BATCH_POSTGRES = 0,
	CW_BATCH_MYSQL,
} cw_batch_dialect_t;

/* What kind of value the change column holds. */
typedef enum cw_batch_column_kind {
	CW_BATCH_COLUMN_OTHER = 0,   /* a number or text: no lag bound, no time */
	CW_BATCH_COLUMN_TIME,        /* a point in time (timestamptz) */
	CW_BATCH_COLUMN_LOCAL_TIME,  /* a time without zone, in the entity's time zone */
} cw_batch_column_kind_t;

/*
 * How a MySQL key column's value is written in a doc_id (the snapshot's
 * forms, docs/sources-mysql.md): a single key is its text, a composite key
 * a JSON array of the values in these forms.
 */
typedef enum cw_batch_key_form {
	CW_BATCH_KEY_UNHASHABLE = 0,  /* FLOAT, DOUBLE, JSON...: SQL cannot write it alike */
	CW_BATCH_KEY_NUMBER,          /* integers, DECIMAL, BIT, YEAR: `c + 0` as printed */
	CW_BATCH_KEY_TEXT,            /* strings, ENUM, SET, dates, times: a JSON string */
	CW_BATCH_KEY_TIMESTAMP,       /* its UTC text and "+00" (not a zero date), a JSON string */
	CW_BATCH_KEY_BINARY,          /* "\x" and lowercase hex, a JSON string */
} cw_batch_key_form_t;

/* Buckets of key hashes the delete check compares (a power of two). */
#define CW_BATCH_BUCKETS 1024

typedef struct cw_batch_query {
	cw_batch_dialect_t dialect;
	const char *schema;              /* unquoted; borrowed */
	const char *table;               /* unquoted; borrowed */
	const char *column;              /* the change column, unquoted; borrowed */
	cw_batch_column_kind_t kind;
	const char *const *keys;         /* the key columns in key order, unquoted; borrowed */
	size_t nkeys;
	int64_t lag_ms;                  /* TIME kinds: rows newer than now - lag wait */
	int64_t limit;                   /* rows per page */
	const char *select;              /* the select list; NULL = "t.*"; borrowed */
	const cw_batch_key_form_t *key_forms;   /* MySQL: one per key; borrowed */
} cw_batch_query_t;

/*
 * Appends the page query to out. With a marker its parameters are the
 * marker's value then its key values; a LOCAL_TIME column takes the time
 * zone. The result's columns are the table's (or q->select's), then one more: the
 * column's time in microseconds since the epoch (NULL for OTHER columns).
 * cw_batch_page_params puts the parameters in the dialect's order.
 */
void cw_batch_sql_page(const cw_batch_query_t *q, bool marker, cw_buf_t *out);

/*
 * Most parameters a page query takes (a marker of CW_BATCH_MAX_KEYS keys, two
 * zones). MySQL's page writes the comparison out, `t.col >= ? AND (t.col > ?
 * OR (t.col = ? AND (t.k1, ...) > (?, ...)))`, so MariaDB reads each page as
 * index ranges: it takes the marker's value three times.
 */
#define CW_BATCH_MAX_KEYS 32
#define CW_BATCH_MAX_PARAMS (CW_BATCH_MAX_KEYS + 5)

/*
 * Fills params (CW_BATCH_MAX_PARAMS, borrowed pointers) in the order the
 * dialect's page query takes them: value and keys (marker, q->nkeys of
 * them; NULL value: no marker) and zone_name (the column's time zone).
 * Returns their count.
 */
int cw_batch_page_params(const cw_batch_query_t *q, const char *value, const char *const *keys,
                         const char *zone_name, const char *params[CW_BATCH_MAX_PARAMS]);

/* Appends name quoted as an identifier of the dialect ("a""b", `a``b`). */
void cw_batch_quote_ident(cw_batch_dialect_t dialect, const char *name, cw_buf_t *out);

/*
 * The per-bucket count and hash sum of the table's keys (columns: bucket,
 * count, sum as text). PostgreSQL: a single-column key. MySQL: keys whose
 * forms cw_batch_sql_hashable accepts; the sum is of the same signed 64-bit
 * hashes, so its text equals the hub's. The hub side uses the same
 * expressions over cachewarp.batch_keys (cw_batch_sql_hub_*).
 */
void cw_batch_sql_buckets(const cw_batch_query_t *q, cw_buf_t *out);
/* PostgreSQL: the keys (as doc_id text) of the buckets in $1 (an int[] literal). */
void cw_batch_sql_bucket_keys(const cw_batch_query_t *q, cw_buf_t *out);
/*
 * MySQL: whether SQL writes q's doc_ids as the snapshot does (a single key
 * NUMBER or TEXT; a composite key of hashable forms).
 */
bool cw_batch_sql_hashable(const cw_batch_query_t *q);
/*
 * MySQL: q->select of the rows whose doc_id falls in the buckets of
 * bucket_list ("{1,7}", as the poller writes it). CW_EINVAL (nothing
 * appended) when bucket_list is not a list of bucket numbers.
 */
int cw_batch_sql_bucket_rows(const cw_batch_query_t *q, const char *bucket_list, cw_buf_t *out);
/* The same over the hub's key set of the entity $1; keys of the buckets in $2. */
const char *cw_batch_sql_hub_buckets(void);
const char *cw_batch_sql_hub_bucket_keys(void);

/* The marker: where the last poll stopped, and of which generation. */
typedef struct cw_batch_marker {
	int64_t version;      /* the entity's version it belongs to; 0 = no marker */
	char *value;          /* owned; the column's value as the server printed it */
	char **keys;          /* owned; the key values as printed */
	size_t nkeys;
	int64_t rows;         /* rows read in this generation so far (for status and logs) */
} cw_batch_marker_t;

/* The marker as JSON: {"version":3,"value":"...","key":["..."],"rows":N} (owned by caller). */
char *cw_batch_marker_encode(const cw_batch_marker_t *marker);
/* Parses such JSON into marker (cleared first). 0 or CW_EINVAL. */
int cw_batch_marker_decode(const char *json, cw_batch_marker_t *marker, cw_err_t *err);
/* Replaces the marker's position (strings copied). */
void cw_batch_marker_set(cw_batch_marker_t *marker, const char *value, const char *const *keys,
                         size_t nkeys);
/* Frees the members and zeroes it; a zeroed marker is a no-op. */
void cw_batch_marker_clear(cw_batch_marker_t *marker);

#endif
