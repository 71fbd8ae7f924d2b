/*
 * This file contains the pure decisions of the MongoDB source (mongo.c): how
 * a change event is read and what it asks for, which errors mean the stored
 * position is gone, how checkpoints and scan progress are written to and read
 * from the hub's metadata, and how the scan and the database-level stream
 * filter their documents. No I/O happens here, so every decision is unit
 * tested with recorded events and error documents (tests/unit/test_mongo_position.c).
 */
#ifndef CW_CAPTURE_MONGO_POSITION_H
#define CW_CAPTURE_MONGO_POSITION_H

#include "core/err.h"

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* MongoDB server error code of refused credentials. */
#define CW_MONGO_AUTHENTICATION_FAILED 18
/* MongoDB server error codes that mean a change stream cannot resume. */
#define CW_MONGO_CAPPED_POSITION_LOST 136
#define CW_MONGO_CHANGE_STREAM_FATAL 280
#define CW_MONGO_CHANGE_STREAM_HISTORY_LOST 286

typedef enum cw_mongo_error_kind {
	CW_MONGO_ERROR_TRANSIENT = 0,  /* network, server selection, anything else: back off, resume */
	CW_MONGO_ERROR_POSITION_LOST,  /* 286, 280, 136, or a resume token the server rejects */
	CW_MONGO_ERROR_AUTH,           /* the credentials were refused (18, or the driver's
	                                * authentication error): retrying cannot help */
} cw_mongo_error_kind_t;

/*
 * Classifies an error of opening or reading a change stream. domain and code
 * are bson_error_t's; message may be NULL. Server errors carry the server's
 * code (libmongoc puts it in code for MONGOC_ERROR_SERVER and
 * MONGOC_ERROR_QUERY). Errors the driver retries itself (network blips,
 * elections, CursorNotFound) never reach us unless retrying failed, and are
 * transient.
 */
cw_mongo_error_kind_t cw_mongo_error_classify(uint32_t domain, uint32_t code, const char *message);

typedef enum cw_mongo_event_type {
	CW_MONGO_EV_OTHER = 0,      /* create, createIndexes, modify, ...: nothing to capture */
	CW_MONGO_EV_INSERT,
	CW_MONGO_EV_UPDATE,
	CW_MONGO_EV_REPLACE,
	CW_MONGO_EV_DELETE,
	CW_MONGO_EV_DROP,
	CW_MONGO_EV_RENAME,
	CW_MONGO_EV_DROP_DATABASE,
	CW_MONGO_EV_INVALIDATE,
} cw_mongo_event_type_t;

/* One change event, read in place: every member borrows from the event document. */
typedef struct cw_mongo_event {
	cw_mongo_event_type_t type;
	const char *operation;      /* operationType as sent; "" when absent */
	const char *collection;     /* ns.coll; NULL when the event has none */
	bool has_token;
	bson_t token;               /* the event's _id (its resume token), a static view */
	bool has_doc_id;
	bson_iter_t doc_id;         /* documentKey._id */
	bool has_full_document;     /* fullDocument is a document (not null, not absent) */
	bson_t full_document;       /* a static view when has_full_document */
	int64_t time_us;            /* wallTime, else clusterTime (seconds); 0 when neither */
} cw_mongo_event_t;

/*
 * Reads event (borrowed; out borrows from it until it is freed). Returns 0,
 * or CW_EPROTO with err filled when a field has the wrong type (an
 * operationType that is not a string, a token that is not a document).
 */
int cw_mongo_event_read(const bson_t *event, cw_mongo_event_t *out, cw_err_t *err);

typedef enum cw_mongo_action {
	CW_MONGO_SKIP = 0,          /* advance the position, capture nothing */
	CW_MONGO_UPSERT,            /* project full_document onto the collection's entities */
	CW_MONGO_DELETE,
	CW_MONGO_SKIP_GONE,         /* update whose looked-up document is gone: the later delete covers it */
	CW_MONGO_QUARANTINE,        /* a data change we cannot attribute (no documentKey._id) */
	CW_MONGO_NEW_GENERATION,    /* drop, rename, dropDatabase: new generation + sweep of the collection(s) */
	CW_MONGO_INVALIDATE,        /* the stream ended: reopen with startAfter the event's token */
} cw_mongo_action_t;

/* What an event asks for (see cw_mongo_action_t). */
cw_mongo_action_t cw_mongo_event_action(const cw_mongo_event_t *event);

/* What a drop, rename, dropDatabase or invalidate event makes the stream do. */
typedef struct cw_mongo_end_plan {
	bool sweep;                 /* new generation + sweep of the affected entities */
	bool whole_stream;          /* every entity of the stream, not just the event's collection */
	bool start_after;           /* the checkpoint's token is for startAfter */
	bool reopen;                /* close the cursor; the next round reopens it after the token */
} cw_mongo_end_plan_t;

/*
 * The plan for an event whose action is CW_MONGO_NEW_GENERATION or
 * CW_MONGO_INVALIDATE. swept_since_open tells whether this cursor already
 * started a new generation (a drop is followed by an invalidate on a
 * collection stream: one generation for both).
 */
cw_mongo_end_plan_t cw_mongo_end_plan_for(const cw_mongo_event_t *event, bool swept_since_open);

/* How a stream starts, from its stored checkpoint. */
typedef enum cw_mongo_start {
	CW_MONGO_START_FIRST = 0,   /* no checkpoint: open, store the token, scan every entity */
	CW_MONGO_START_RESUME,      /* resumeAfter (or startAfter) the stored token */
	CW_MONGO_START_LOST,        /* a checkpoint without a token: the position is unknown */
} cw_mongo_start_t;

/* A stream's checkpoint, stored under its metadata key (docs/sources-mongodb.md). */
typedef struct cw_mongo_checkpoint {
	bson_t *token;              /* owned, NULL when none was known */
	bool start_after;           /* the token is an invalidate event's: reopen with startAfter */
	int64_t generation;         /* the stream's generation, 1 on the first start */
	bool scanning;              /* status: "scanning" until every entity of the stream is live */
} cw_mongo_checkpoint_t;

/* How the stream with checkpoint (NULL = none stored) starts. */
cw_mongo_start_t cw_mongo_start_decide(const cw_mongo_checkpoint_t *checkpoint);

/* The checkpoint as JSON text (owned): {"token":{...}|null,"start_after":b,"generation":n,"status":"..."}. */
char *cw_mongo_checkpoint_json(const cw_mongo_checkpoint_t *checkpoint);

/* Parses cw_mongo_checkpoint_json's text into out (zeroed first). 0 or CW_EPROTO. */
int cw_mongo_checkpoint_parse(const char *json, cw_mongo_checkpoint_t *out, cw_err_t *err);

/* Frees the token; the struct may be reused. NULL is a no-op. */
void cw_mongo_checkpoint_clear(cw_mongo_checkpoint_t *checkpoint);

/* An entity's scan progress, stored with every scan batch. */
typedef struct cw_mongo_scan_progress {
	int64_t version;            /* the generation the scan writes */
	bson_t *last;               /* owned: {"_id": <last scanned _id>}, NULL before the first batch */
	int64_t docs;               /* documents scanned so far */
	bool done;                  /* every document and the sweep are written */
} cw_mongo_scan_progress_t;

/* Where an entity's scan starts after a restart (docs/hub.md, "Exactly once"). */
typedef enum cw_mongo_scan_start {
	CW_MONGO_SCAN_FROM_FIRST = 0,  /* nothing of this generation committed: from the first _id */
	CW_MONGO_SCAN_AFTER_LAST,      /* after the last committed _id, in the same generation */
	CW_MONGO_SCAN_PROMOTE_ONLY,    /* every document and the sweep are in: promote, go live */
} cw_mongo_scan_start_t;

/*
 * Decides from the stored progress (NULL: none, unreadable or failing its
 * checksum) of an entity now at version. Progress of another generation
 * (the stream lost its position and the entity was bumped) starts over.
 */
cw_mongo_scan_start_t cw_mongo_scan_start_decide(const cw_mongo_scan_progress_t *stored,
                                                 int64_t version);

/* JSON text (owned): {"version":n,"last":{"_id":<canonical extended JSON>}|null,"docs":n,"done":b}. */
char *cw_mongo_scan_progress_json(const cw_mongo_scan_progress_t *progress);
int cw_mongo_scan_progress_parse(const char *json, cw_mongo_scan_progress_t *out, cw_err_t *err);
void cw_mongo_scan_progress_clear(cw_mongo_scan_progress_t *progress);

/*
 * The find filter of the next scan batch after last_id (NULL: the first
 * batch, an empty filter) into filter (initialized by the caller). MongoDB
 * compares only within a type bracket ({_id: {$gt: 5}} never matches a
 * string), so the filter also matches every _id of a bracket that sorts
 * after last_id's: {$or: [{_id: {$gt: last}}, {_id: {$type: [later types]}}]}.
 * With sort {_id: 1} the batches then walk the whole collection in index order.
 */
void cw_mongo_scan_filter(const bson_iter_t *last_id, bson_t *filter);

/*
 * The pipeline of a database-level stream (watch: database) into pipeline
 * (initialized by the caller): a $match on the collections (ncollections
 * names, borrowed) that still lets drop-database and invalidate events through.
 */
void cw_mongo_database_pipeline(const char *const *collections, size_t ncollections,
                                bson_t *pipeline);

/* A short printable summary of a token (its _data, else its JSON), at most size-1 bytes. */
void cw_mongo_token_summary(const bson_t *token, char *out, size_t size);

#endif
