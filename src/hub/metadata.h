/*
 * This file contains the hub's key/value metadata (cachewarp.metadata: key
 * text, value jsonb), where captures keep their checkpoints
 * (`mongo_resume_token`, an LSN), and the quarantine table, where a record
 * that cannot be captured or applied is set aside with its reason so one bad
 * record never stalls a stream.
 *
 * Each call is one statement: inside a transaction opened on the same hub it
 * joins that transaction (the oplog writer stores checkpoints that way).
 * Every value is stored with a checksum (column `checksum`), which the
 * readers of positions check (cw_metadata_get_position).
 */
#ifndef CW_HUB_METADATA_H
#define CW_HUB_METADATA_H

#include "core/err.h"
#include "hub/hub.h"
#include "hub/position_check.h"

/*
 * Reads key's value as JSON text into *json (owned by the caller; jsonb's
 * normalized form, e.g. {"a": 1}). CW_ENOTFOUND when the key is absent, CW_EDB.
 */
int cw_metadata_get(cw_hub_t *hub, const char *key, char **json, cw_err_t *err);

/*
 * Inserts or replaces key's value with its checksum (hub/position_check.h);
 * json must be valid JSON text (CW_EDB otherwise).
 */
int cw_metadata_set(cw_hub_t *hub, const char *key, const char *json, cw_err_t *err);

/*
 * Appends cw_metadata_set's statement for key and json (JSON text; both
 * borrowed) to sql with its values as literals, for a message of several
 * statements (the oplog writer's).
 */
void cw_metadata_set_sql(cw_hub_t *hub, cw_buf_t *sql, const char *key, const char *json);

/*
 * cw_metadata_get for a position (a checkpoint, a resume token, scan
 * progress), checking its checksum: *verdict says whether the value may be
 * used. CW_POSITION_CORRUPT: *json is still set (for a message) but the
 * position must be treated as lost. CW_POSITION_UNCHECKED (a value stored
 * before checksums existed) is accepted once: it is stored again with its
 * checksum here, and logged. CW_ENOTFOUND when the key is absent, CW_EDB.
 */
int cw_metadata_get_position(cw_hub_t *hub, const char *key, char **json,
                             cw_position_verdict_t *verdict, cw_err_t *err);

/* Removes key; 0 also when it was absent. */
int cw_metadata_delete(cw_hub_t *hub, const char *key, cw_err_t *err);

/* One quarantined record; every member borrowed, all but entity and reason may be NULL. */
typedef struct cw_quarantine_record {
	const char *entity;
	const char *doc_id;
	const char *source_pos;
	const char *reason;      /* why it was set aside: "column \"price\": not a number" */
	const char *raw;         /* the record as received, for a human to inspect */
} cw_quarantine_record_t;

/* Inserts record into cachewarp.quarantine. 0, CW_EINVAL or CW_EDB. */
int cw_quarantine_add(cw_hub_t *hub, const cw_quarantine_record_t *record, cw_err_t *err);

#endif
