/*
 * This file contains the record a PostgreSQL source keeps in the hub for
 * each entity's table (metadata key "table_types:<entity>"): its columns
 * with their types, in table order, and its key. The source writes it
 * before a scan's first rows; the targets that create typed storage (the
 * PostgreSQL tables and MongoDB targets) read it to keep the source's types.
 *
 * Text: {"columns": [["id", "integer"], ["amount", "numeric(12,2)"]], "key": ["id"]}
 *
 * THREAD SAFETY: a record belongs to one thread.
 */
#ifndef CW_HUB_TABLE_RECORD_H
#define CW_HUB_TABLE_RECORD_H

#include "hub/hub.h"

#include <stddef.h>

typedef struct cw_table_record {
	char **names;     /* owned; the columns in table order */
	char **types;     /* owned; each column's type as PostgreSQL formats it */
	size_t n;
	char **key;       /* owned; the key's columns in key order */
	size_t nkey;
} cw_table_record_t;

/* The metadata key of entity's record (owned). */
char *cw_table_record_key(const char *entity);

/*
 * Replaces rec (zeroed or parsed before) with the record in json (borrowed;
 * NULL or unreadable: an empty record). Entries that are not strings are
 * left out.
 */
void cw_table_record_parse(cw_table_record_t *rec, const char *json);

/* Replaces rec with entity's record in the hub; empty when there is none or it cannot be read. */
void cw_table_record_read(cw_table_record_t *rec, cw_hub_t *hub, const char *entity);

/* The recorded type of the column named by len bytes of name, or NULL. */
const char *cw_table_record_type(const cw_table_record_t *rec, const char *name, size_t len);

/* Frees what rec holds and zeroes it; a zeroed record is a no-op. */
void cw_table_record_clear(cw_table_record_t *rec);

#endif
