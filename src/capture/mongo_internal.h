/*
 * This file contains the state the MongoDB source's files share (mongo.c: the
 * interface, run loop and entity set; mongo_stream.c: change streams;
 * mongo_scan.c: the initial scans). Nothing outside src/capture/mongo*.c
 * includes it.
 *
 * THREAD SAFETY: two threads per run: the run loop, and the writer stage's
 * thread (capture/capture_writer.h, used through mongo_writer.c). `status` is
 * guarded by `mutex`, a leaf lock. Everything else belongs to the run loop.
 */
#ifndef CW_CAPTURE_MONGO_INTERNAL_H
#define CW_CAPTURE_MONGO_INTERNAL_H

#include "capture/capture_writer.h"
#include "capture/mongo_position.h"
#include "capture/source.h"
#include "core/buf.h"
#include "core/change.h"
#include "core/clock.h"
#include "core/projection.h"
#include "hub/hub.h"
#include "hub/oplog_writer.h"

#include <mongoc/mongoc.h>
#include <pthread.h>

#define MONGO_COMPONENT "mongodb"
/* How often the entity set is read again from the hub. */
#define MONGO_RELOAD_MS 5000
/* A checkpoint that only moves the token (no rows) is written at most this often. */
#define MONGO_TOKEN_ONLY_CHECKPOINT_MS 1000
/* serverSelectionTimeoutMS and connectTimeoutMS unless the URL sets them. */
#define MONGO_CONNECT_TIMEOUT_MS 5000
/* Scan progress is logged at most this often. */
#define MONGO_PROGRESS_LOG_MS 10000
/* Room for the resume token of the last event read (a token is about 100-200 bytes). */
#define MONGO_TOKEN_MAX 1024

typedef struct mongo_entity {
	cw_entity_t entity;              /* a copy of the hub's row; version is kept current */
	cw_projection_t *projection;     /* compiled once: shapes are immutable */
	size_t stream;                   /* index into streams */
	bool scanning;                   /* a scan is due or running */
	bool progress_loaded;
	cw_mongo_scan_progress_t progress;
	int64_t scan_total;              /* estimated documents, for the ETA; -1 unknown */
	int64_t scan_started_ms;
	int64_t scan_started_docs;
	int64_t last_report_ms;
	bool listed;                     /* reload mark */
} mongo_entity_t;

typedef struct mongo_stream {
	char *collection;                /* owned; NULL for the database-level stream */
	char *key;                       /* owned: the checkpoint's metadata key */
	char *collections_signature;     /* owned; database stream: the watched collections */
	mongoc_change_stream_t *cursor;  /* NULL while closed */
	cw_mongo_checkpoint_t checkpoint;/* as last stored in the hub */
	bool bumped;                     /* a new generation was started since the cursor opened */
	uint8_t last_token[MONGO_TOKEN_MAX];   /* the BSON of the last event's token read in this
	                                        * poll (its changes are in source->batch) */
	uint32_t last_token_len;         /* 0: none (or too long to keep) */
	int64_t last_checkpoint_ms;
	bool listed;                     /* reload mark */
} mongo_stream_t;

typedef struct mongo_source {
	cw_component_ctx_t ctx;          /* members borrowed from the daemon */
	const cw_source_config_t *config;
	const cw_clock_t *clock;
	/* Per run of `run`: */
	mongoc_client_t *client;
	cw_hub_t *hub;                   /* the run loop's: entities, statuses, promotions, quarantine */
	cw_capture_writer_t *writer;     /* batches to the hub (capture/capture_writer.h) */
	mongo_entity_t *entities;
	size_t nentities;
	mongo_stream_t *streams;
	size_t nstreams;
	cw_change_batch_t batch;
	cw_buf_t data;                   /* projection output, reused */
	int64_t last_reload_ms;
	bool recovering;                 /* a position was lost: unhealthy until its rescan is done */
	/* Across runs (retry.give_up_after): */
	int64_t first_failure_ms;        /* clock time of the first failed run in a row; 0 = none */
	bool gave_up;                    /* failing for give_up_after: every run fails at once */
	char give_up_reason[CW_ERR_MESSAGE_LEN];
	/* Guarded by mutex: */
	pthread_mutex_t mutex;
	cw_component_status_t status;
} mongo_source_t;

/* mongo_writer.c */
/* Starts the writer thread with its own hub connection. */
int mongo_writer_start(mongo_source_t *source, cw_err_t *err);
/* Lets the writer commit what is queued and stops it. Harmless when not started. */
void mongo_writer_stop(mongo_source_t *source);
/* Queues source->batch (taken, the batch is left empty) with the checkpoint (key NULL: none);
 * scan = written by a scan writer. Blocks while the queue is full. 0 or the writer's error. */
int mongo_flush(mongo_source_t *source, const char *key, const char *json, bool scan, cw_err_t *err);
/* mongo_flush, reaching the named failpoint (a string literal) once the batch committed. */
int mongo_flush_at(mongo_source_t *source, const char *key, const char *json, bool scan,
                   const char *failpoint, cw_err_t *err);
/* Waits until everything queued is committed. 0 or the writer's error. */
int mongo_sync(mongo_source_t *source, cw_err_t *err);
/* The writer's error, if it failed; 0 otherwise. Does not wait. */
int mongo_writer_check(mongo_source_t *source, cw_err_t *err);

/* mongo.c */
void mongo_set_state(mongo_source_t *source, const char *state, bool healthy, const char *error);
void mongo_set_position(mongo_source_t *source, const bson_t *token, double lag_seconds);
/* Sets a record aside in the hub's quarantine; logs and counts it. raw may be NULL. */
int mongo_quarantine(mongo_source_t *source, const char *entity, const char *doc_id,
                     const char *source_pos, const char *reason, const bson_t *raw, cw_err_t *err);
/* Projects doc onto entity and pushes the upsert (or quarantines it). 0 or a hub error. */
int mongo_push_upsert(mongo_source_t *source, mongo_entity_t *entity, const bson_t *doc,
                      const char *doc_id, const char *source_pos, int64_t time_us, cw_err_t *err);
/* Starts a new generation of entity: bumps its version; its scan (if any) starts over. */
int mongo_bump_entity(mongo_source_t *source, mongo_entity_t *entity, cw_err_t *err);
/* True when some entity of stream index is scanning. */
bool mongo_stream_scanning(const mongo_source_t *source, size_t stream);

/* mongo_stream.c */
/* Opens stream index i (resuming, or a new generation); 0 or an error. */
int mongo_stream_start(mongo_source_t *source, size_t i, cw_err_t *err);
/* Reads what stream i has now into the hub; *events receives the count. */
int mongo_stream_poll(mongo_source_t *source, size_t i, size_t *events, cw_err_t *err);
void mongo_stream_close(mongo_stream_t *stream);

/* mongo_scan.c */
/* One scan batch of entity index i (its stream is open). */
int mongo_scan_step(mongo_source_t *source, size_t i, cw_err_t *err);
/* Marks entity to be scanned from the start at its current version. */
void mongo_scan_restart(mongo_entity_t *entity);

#endif
