/* This file contains the oplog writer and the staging promotion declared in oplog_writer.h. */
#include "hub/oplog_writer.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/failpoint.h"
#include "core/json.h"
#include "core/mem.h"
#include "hub/copy.h"
#include "hub/metadata.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Where an entity's changes go, decided under the oplog lock. */
typedef enum route {
	ROUTE_UNKNOWN = 0,   /* not in the hub: the batch fails */
	ROUTE_OPLOG,
	ROUTE_STAGING,
	ROUTE_SKIP,
} route_t;

typedef struct entity_routes {
	const char **names;  /* borrowed from the batch, distinct */
	route_t *routes;
	size_t len;
	size_t cap;
	size_t last;         /* index of the last lookup: batches come in runs */
} entity_routes_t;

struct cw_oplog_writer {
	cw_hub_t *hub;           /* borrowed */
	cw_buf_t oplog_rows;     /* binary COPY data for cachewarp.oplog, reused per batch */
	cw_buf_t staged_rows;    /* binary COPY data for cachewarp.oplog_staging */
	cw_buf_t names_literal;  /* the batch's entity names as a text[] literal */
	cw_buf_t sql;            /* the statements of one message, reused per batch */
	entity_routes_t routes;
	int64_t next_id;         /* the next of the ids the open batch reserved */
	int64_t marked_ms;       /* monotonic time of the last append mark committed, 0 for none */
	bool scan;               /* pending and scanning entities go to the oplog too */
	bool track_keys;         /* keep cachewarp.batch_keys (cw_oplog_writer_track_keys) */
	cw_oplog_hook_fn hook;
	void *hook_arg;
};

/* The columns the oplog's COPY and its staging area's share; the oplog's starts with its id. */
#define COPY_COLUMN_NAMES "op, entity, doc_id, created_at, data, version, source_pos"
#define COPY_COLUMNS "(" COPY_COLUMN_NAMES ")"
#define COPY_NCOLUMNS 7
#define OPLOG_COPY_COLUMNS "(id, " COPY_COLUMN_NAMES ")"
/* COPY data goes out in pieces of this size: libpq buffers a piece whole before sending it. */
#define COPY_CHUNK (64 << 10)

cw_oplog_writer_t *cw_oplog_writer_new(cw_hub_t *hub)
{
	cw_oplog_writer_t *writer = cw_xcalloc(1, sizeof *writer);
	writer->hub = hub;
	return writer;
}

void cw_oplog_writer_free(cw_oplog_writer_t *writer)
{
	if (writer == NULL)
		return;
	cw_buf_free(&writer->oplog_rows);
	cw_buf_free(&writer->staged_rows);
	cw_buf_free(&writer->names_literal);
	cw_buf_free(&writer->sql);
	free(writer->routes.names);
	free(writer->routes.routes);
	free(writer);
}

cw_hub_t *cw_oplog_writer_hub(const cw_oplog_writer_t *writer)
{
	return writer->hub;
}

void cw_oplog_writer_set_scan(cw_oplog_writer_t *writer, bool scan)
{
	writer->scan = scan;
}

void cw_oplog_writer_track_keys(cw_oplog_writer_t *writer, bool track)
{
	writer->track_keys = track;
}

/* The [entity, doc_id] pairs of batch's changes of kind op, as a JSON array; false when none. */
static bool key_pairs(const cw_change_batch_t *batch, cw_op_t op, cw_buf_t *out)
{
	cw_json_t w;
	bool any = false;
	cw_buf_reset(out);
	cw_json_init(&w, out, CW_JSON_NO_NUL);
	cw_json_array_begin(&w, NULL);
	for (size_t i = 0; i < batch->len; i++) {
		const cw_change_t *change = &batch->items[i];
		if (change->op != op)
			continue;
		cw_json_array_begin(&w, NULL);
		cw_json_string(&w, change->entity, NULL);
		cw_json_string(&w, change->doc_id, NULL);
		cw_json_array_end(&w, NULL);
		any = true;
	}
	cw_json_array_end(&w, NULL);
	return any && cw_json_finish(&w) == 0;
}

/*
 * Appends to the writer's message the statements that record the batch's
 * upserted keys and forget its deleted ones (track_keys), each with its label;
 * returns how many.
 */
static size_t track_keys_sql(cw_oplog_writer_t *writer, const cw_change_batch_t *batch,
                             const char **labels)
{
	const char *what = "could not record the batch-mode keys";
	cw_buf_t pairs = CW_BUF_INIT;
	size_t n = 0;
	if (key_pairs(batch, CW_OP_UPSERT, &pairs)) {
		cw_buf_append_str(&writer->sql, "; INSERT INTO cachewarp.batch_keys (entity, doc_id) "
		                  "SELECT e->>0, e->>1 FROM jsonb_array_elements(");
		cw_hub_append_literal(writer->hub, &writer->sql, cw_buf_cstr(&pairs));
		cw_buf_append_str(&writer->sql, "::jsonb) AS e ON CONFLICT DO NOTHING");
		labels[n++] = what;
	}
	if (key_pairs(batch, CW_OP_DELETE, &pairs)) {
		cw_buf_append_str(&writer->sql, "; DELETE FROM cachewarp.batch_keys k USING "
		                  "jsonb_array_elements(");
		cw_hub_append_literal(writer->hub, &writer->sql, cw_buf_cstr(&pairs));
		cw_buf_append_str(&writer->sql, "::jsonb) AS e WHERE k.entity = e->>0 AND "
		                  "k.doc_id = e->>1");
		labels[n++] = what;
	}
	cw_buf_free(&pairs);
	return n;
}

void cw_oplog_writer_set_hook(cw_oplog_writer_t *writer, cw_oplog_hook_fn fn, void *arg)
{
	writer->hook = fn;
	writer->hook_arg = arg;
}

static void run_hook(cw_oplog_writer_t *writer, cw_oplog_hook_point_t point)
{
	if (writer->hook != NULL)
		writer->hook(point, writer->hook_arg);
}

/* Index of name in routes, or routes->len when absent. */
static size_t routes_find(entity_routes_t *routes, const char *name)
{
	if (routes->last < routes->len && strcmp(routes->names[routes->last], name) == 0)
		return routes->last;
	for (size_t i = 0; i < routes->len; i++) {
		if (strcmp(routes->names[i], name) == 0) {
			routes->last = i;
			return i;
		}
	}
	return routes->len;
}

/* Collects the batch's distinct entity names, all routed ROUTE_UNKNOWN. */
static void routes_collect(entity_routes_t *routes, const cw_change_batch_t *batch)
{
	routes->len = 0;
	routes->last = 0;
	for (size_t i = 0; i < batch->len; i++) {
		const char *name = batch->items[i].entity ? batch->items[i].entity : "";
		if (routes_find(routes, name) < routes->len)
			continue;
		if (routes->len == routes->cap) {
			routes->cap = routes->cap ? routes->cap * 2 : 8;
			routes->names = cw_xrealloc(routes->names, routes->cap * sizeof *routes->names);
			routes->routes = cw_xrealloc(routes->routes, routes->cap * sizeof *routes->routes);
		}
		routes->names[routes->len] = name;
		routes->routes[routes->len] = ROUTE_UNKNOWN;
		routes->len++;
	}
}

/*
 * Sends the statements of sql (one message, simple query protocol: in a
 * transaction the server skips every statement after a failed one) and reads
 * their results: each COPY ... FROM STDIN among them gets the next of copies.
 * labels[i] names what the i-th statement does, for its error. tuples[k]
 * receives the k-th row-returning result, for k < ntuples (the caller clears
 * them); *last_status the last statement's command tag ("COMMIT"), "" when it did
 * not run. 0 or CW_EDB with the first error.
 */
static int run_message(cw_oplog_writer_t *writer, const char *sql, const cw_buf_t *const *copies,
                       const char *const *labels, size_t nlabels, PGresult **tuples,
                       size_t ntuples, char *last_status, size_t status_len, cw_err_t *err)
{
	PGconn *conn = cw_hub_pgconn(writer->hub);
	last_status[0] = '\0';
	if (PQsendQuery(conn, sql) != 1)
		return cw_hub_conn_error(writer->hub, labels[0], err);
	int rc = 0;
	size_t at = 0, copied = 0, rowsets = 0;
	PGresult *res;
	while ((res = PQgetResult(conn)) != NULL) {
		const char *what = labels[at < nlabels ? at : nlabels - 1];
		ExecStatusType status = PQresultStatus(res);
		if (status == PGRES_COPY_IN) {
			PQclear(res);
			const cw_buf_t *rows = copies[copied++];
			int put = 0;
			for (size_t off = 0; off < rows->len && put == 0; off += COPY_CHUNK) {
				size_t len = rows->len - off < COPY_CHUNK ? rows->len - off : COPY_CHUNK;
				if (PQputCopyData(conn, rows->data + off, (int)len) != 1)
					put = -1;
			}
			if (put == 0 && PQputCopyEnd(conn, NULL) == 1)
				continue;
			if (rc == 0)
				rc = cw_hub_conn_error(writer->hub, what, err);
			PQputCopyEnd(conn, "cachewarp aborted the copy");
			continue;
		}
		if (status == PGRES_TUPLES_OK && rowsets < ntuples) {
			tuples[rowsets++] = res;
		} else {
			if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK && rc == 0)
				rc = cw_hub_result_error(writer->hub, res, what, err);
			if (status == PGRES_COMMAND_OK)
				snprintf(last_status, status_len, "%s", PQcmdStatus(res));
			PQclear(res);
		}
		at++;
	}
	return rc;
}

/*
 * BEGIN, the oplog lock, a block of `reserve` ids and the statuses of the
 * batch's entities, in one message: the ids are drawn and the status query's
 * snapshot is taken after the lock is held. The ids go into the COPY data:
 * the server draws none per row (the identity default's nextval was about a
 * tenth of each append's CPU, BENCHMARKS.md), and every id of the block is
 * larger than any id of a transaction that committed before. Ids the batch
 * does not use (staged or skipped changes) are a gap, as a rollback leaves.
 */
static int begin_locked(cw_oplog_writer_t *writer, size_t reserve, cw_err_t *err)
{
	entity_routes_t *routes = &writer->routes;
	cw_buf_t *sql = &writer->sql;
	cw_buf_reset(sql);
	cw_buf_append_str(sql, "BEGIN; SELECT ");
	if (reserve > 0)   /* an empty batch (a checkpoint alone) draws none */
		cw_buf_appendf(sql, "setval(s::regclass, nextval(s::regclass) + %zu - 1)", reserve);
	else
		cw_buf_append_str(sql, "0::bigint");
	cw_buf_appendf(sql, " FROM pg_advisory_xact_lock(%d, %d) AS l, "
	               "pg_get_serial_sequence('cachewarp.oplog', 'id') AS s",
	               CW_HUB_LOCK_CLASS, CW_HUB_LOCK_OPLOG);
	const char *labels[] = {"could not begin a hub transaction", "could not lock the oplog",
	                        "could not append to the oplog: could not read entity statuses"};
	size_t nlabels = 2;
	if (routes->len > 0) {
		cw_buf_reset(&writer->names_literal);
		cw_hub_text_array(&writer->names_literal, routes->names, routes->len);
		cw_buf_append_str(sql, "; SELECT name, status FROM cachewarp.entities WHERE name = ANY(");
		cw_hub_append_literal(writer->hub, sql, cw_buf_cstr(&writer->names_literal));
		cw_buf_append_str(sql, "::text[])");
		nlabels = 3;
	}
	PGresult *res[2] = {NULL, NULL};
	char last[32];
	int rc = run_message(writer, cw_buf_cstr(sql), NULL, labels, nlabels, res, 2, last,
	                     sizeof last, err);
	if (rc == 0 && (res[0] == NULL || PQntuples(res[0]) != 1 || PQgetisnull(res[0], 0, 0) ||
	                (routes->len > 0 && res[1] == NULL)))
		rc = cw_err_set(err, CW_EDB, "hub", "could not lock the oplog: the hub answered no "
		                "ids");
	if (rc == 0)
		writer->next_id = cw_hub_int64(res[0], 0, 0) - (int64_t)reserve + 1;
	for (int row = 0; rc == 0 && routes->len > 0 && row < PQntuples(res[1]); row++) {
		size_t i = routes_find(routes, PQgetvalue(res[1], row, 0));
		const char *status = PQgetvalue(res[1], row, 1);
		if (i == routes->len)
			continue;
		if (strcmp(status, "live") == 0)
			routes->routes[i] = ROUTE_OPLOG;
		else if (strcmp(status, "deleted") == 0)
			routes->routes[i] = ROUTE_SKIP;
		else
			routes->routes[i] = writer->scan ? ROUTE_OPLOG : ROUTE_STAGING;
	}
	PQclear(res[0]);
	PQclear(res[1]);
	return rc;
}

/* An append mark at most this often per writer (retention's resolution, hub/consumers.h). */
#define MARK_INTERVAL_MS 1000

/*
 * Appends a change as a row of binary COPY data (the header first, into an
 * empty rows), with id first unless it is negative (the staging area's).
 */
static void encode_row(cw_buf_t *rows, const cw_change_t *change, int64_t id, int64_t fallback_us)
{
	if (rows->len == 0)
		cw_copy_binary_header(rows);
	cw_copy_binary_row(rows, COPY_NCOLUMNS + (id >= 0));
	if (id >= 0)
		cw_copy_binary_int8(rows, id);
	cw_copy_binary_text(rows, cw_op_name(change->op));
	cw_copy_binary_text(rows, change->entity);
	cw_copy_binary_text(rows, change->doc_id);
	cw_copy_binary_timestamp(rows, change->created_at_us ? change->created_at_us : fallback_us);
	cw_copy_binary_text(rows, change->data);
	cw_copy_binary_int4(rows, (int32_t)change->version);
	cw_copy_binary_text(rows, change->source_pos);
}

/* Encodes every change into the COPY buffer of its route; fills stats. */
static int encode_batch(cw_oplog_writer_t *writer, const cw_change_batch_t *batch,
                        cw_oplog_append_stats_t *stats, cw_err_t *err)
{
	int64_t fallback_us = cw_clock_wall_us(cw_clock_system());
	cw_buf_reset(&writer->oplog_rows);
	cw_buf_reset(&writer->staged_rows);
	for (size_t i = 0; i < batch->len; i++) {
		const cw_change_t *change = &batch->items[i];
		const char *name = change->entity ? change->entity : "";
		route_t route = writer->routes.routes[routes_find(&writer->routes, name)];
		if (change->version < INT32_MIN || change->version > INT32_MAX)
			return cw_err_set(err, CW_EINVAL, "hub", "could not append to the oplog: entity "
			                  "\"%s\" has version %lld, past the oplog's integer", name,
			                  (long long)change->version);
		switch (route) {
		case ROUTE_UNKNOWN:
			return cw_err_set(err, CW_ENOTFOUND, "hub",
			                  "could not append to the oplog: entity \"%s\" is not in the hub",
			                  name);
		case ROUTE_OPLOG:
			encode_row(&writer->oplog_rows, change, writer->next_id++, fallback_us);
			stats->appended++;
			break;
		case ROUTE_STAGING:
			encode_row(&writer->staged_rows, change, -1, fallback_us);
			stats->staged++;
			break;
		case ROUTE_SKIP:
			stats->skipped++;
			break;
		}
	}
	if (writer->oplog_rows.len > 0)
		cw_copy_binary_trailer(&writer->oplog_rows);
	if (writer->staged_rows.len > 0)
		cw_copy_binary_trailer(&writer->staged_rows);
	return 0;
}

static int notify_readers(cw_hub_t *hub, const char *what, cw_err_t *err)
{
	return cw_hub_command(hub, "SELECT pg_notify('" CW_HUB_CHANNEL "', '')", 0, NULL, what, err);
}

/*
 * After begin_locked: the rows, the checkpoint, NOTIFY and, unless a test
 * hook waits before it, COMMIT, in one message (the COPYs' data follows their
 * statements). *committed says whether COMMIT was part of it and succeeded.
 */
static int append_locked(cw_oplog_writer_t *writer, const cw_change_batch_t *batch,
                         const char *checkpoint_key, const char *checkpoint_json,
                         cw_oplog_append_stats_t *stats, bool *committed, cw_err_t *err)
{
	const char *what = "could not append to the oplog";
	char store_what[160];
	snprintf(store_what, sizeof store_what, "could not store hub metadata \"%s\"",
	         checkpoint_key ? checkpoint_key : "");
	const char *labels[10];
	const cw_buf_t *copies[2];
	size_t n = 0, ncopies = 0;
	*committed = false;
	run_hook(writer, CW_OPLOG_HOOK_LOCKED);
	int rc = encode_batch(writer, batch, stats, err);
	if (rc != 0)
		return rc;
	if (CW_FAILPOINT("before_oplog_copy"))
		return cw_err_set(err, CW_EDB, "hub", "%s: failpoint before_oplog_copy", what);
	/* The rows are copied with the rest of the message: until COMMIT nothing is visible. */
	if (CW_FAILPOINT("after_oplog_copy"))
		return cw_err_set(err, CW_EDB, "hub", "%s: failpoint after_oplog_copy", what);
	cw_buf_t *sql = &writer->sql;
	cw_buf_reset(sql);
	if (writer->oplog_rows.len > 0) {
		cw_buf_append_str(sql, "; COPY cachewarp.oplog " OPLOG_COPY_COLUMNS
		                  " FROM STDIN (FORMAT binary)");
		copies[ncopies++] = &writer->oplog_rows;
		labels[n++] = what;
	}
	if (writer->staged_rows.len > 0) {
		cw_buf_append_str(sql, "; COPY cachewarp.oplog_staging " COPY_COLUMNS
		                  " FROM STDIN (FORMAT binary)");
		copies[ncopies++] = &writer->staged_rows;
		labels[n++] = "could not append to the oplog staging area";
	}
	if (writer->track_keys)
		n += track_keys_sql(writer, batch, labels + n);
	/*
	 * The append mark retention reads: every row up to the batch's last id
	 * was appended by now (the lock orders every append before it).
	 */
	int64_t now_ms = cw_clock_now_ms(cw_clock_system());
	bool mark = stats->appended > 0 &&
	            (writer->marked_ms == 0 || now_ms - writer->marked_ms >= MARK_INTERVAL_MS);
	if (mark) {
		cw_buf_appendf(sql, "; INSERT INTO cachewarp.oplog_marks (id, at) "
		               "VALUES (%lld, clock_timestamp())", (long long)(writer->next_id - 1));
		labels[n++] = "could not mark the append for retention";
	}
	if (checkpoint_key != NULL) {
		cw_buf_append_str(sql, "; ");
		cw_metadata_set_sql(writer->hub, sql, checkpoint_key, checkpoint_json);
		labels[n++] = store_what;
	}
	if (stats->appended > 0) {
		cw_buf_append_str(sql, "; SELECT pg_notify('" CW_HUB_CHANNEL "', '')");
		labels[n++] = what;
	}
	bool commit = writer->hook == NULL;
	if (commit && CW_FAILPOINT("before_hub_commit"))
		return cw_err_set(err, CW_EDB, "hub", "%s: failpoint before_hub_commit", what);
	if (commit) {
		cw_buf_append_str(sql, "; COMMIT");
		labels[n++] = "could not commit to the oplog";
	}
	char last[32] = "";
	if (n > 0)   /* past the leading "; " */
		rc = run_message(writer, cw_buf_cstr(sql) + 2, copies, labels, n, NULL, 0, last,
		                 sizeof last, err);
	if (rc != 0 || !commit) {
		if (rc == 0) {
			run_hook(writer, CW_OPLOG_HOOK_BEFORE_COMMIT);
			if (CW_FAILPOINT("before_hub_commit"))
				rc = cw_err_set(err, CW_EDB, "hub", "%s: failpoint before_hub_commit", what);
		}
		return rc;
	}
	/* COMMIT of a transaction that already failed answers ROLLBACK. */
	if (strcmp(last, "COMMIT") != 0)
		return cw_err_set(err, CW_EDB, "hub", "could not commit to the oplog: the "
		                  "transaction was rolled back");
	*committed = true;
	if (mark)
		writer->marked_ms = now_ms;
	return 0;
}

int cw_oplog_append(cw_oplog_writer_t *writer, const cw_change_batch_t *batch,
                    const char *checkpoint_key, const char *checkpoint_json,
                    cw_oplog_append_stats_t *stats, cw_err_t *err)
{
	cw_oplog_append_stats_t counted = {0, 0, 0};
	if (checkpoint_key != NULL && checkpoint_json == NULL)
		return cw_err_set(err, CW_EINVAL, "hub",
		                  "could not append to the oplog: checkpoint \"%s\" has no value",
		                  checkpoint_key);
	bool committed = false;
	routes_collect(&writer->routes, batch);
	int rc = begin_locked(writer, batch->len, err);
	if (rc == 0)
		rc = append_locked(writer, batch, checkpoint_key, checkpoint_json, &counted,
		                   &committed, err);
	if (rc == 0 && !committed)
		rc = cw_hub_commit(writer->hub, "could not commit to the oplog", err);
	if (rc != 0) {
		cw_hub_rollback(writer->hub);
		return rc;
	}
	/* Committed: an error here makes the caller retry a batch the hub already has. */
	if (CW_FAILPOINT("after_hub_commit"))
		return cw_err_set(err, CW_EDB, "hub", "could not append to the oplog: failpoint after_hub_commit");
	if (stats != NULL)
		*stats = counted;
	return 0;
}

/* The body of the promotion transaction: checks the entity, moves its rows. */
static int promote_locked(cw_hub_t *hub, const char *entity, int64_t *promoted,
                          const char *what, cw_err_t *err)
{
	const char *params[] = {entity};
	PGresult *res = cw_hub_exec(hub,
		"SELECT status FROM cachewarp.entities WHERE name = $1 FOR UPDATE",
		1, params, what, err);
	if (res == NULL)
		return CW_EDB;
	int rc = 0;
	if (PQntuples(res) == 0)
		rc = cw_err_set(err, CW_ENOTFOUND, "hub", "%s: no such entity", what);
	else if (strcmp(PQgetvalue(res, 0, 0), "deleted") == 0)
		rc = cw_err_set(err, CW_ECONFLICT, "hub", "%s: the entity is deleted", what);
	PQclear(res);
	if (rc != 0)
		return rc;
	/* Identity values are drawn as the sorted rows are inserted: staging order is kept. */
	res = cw_hub_exec(hub,
		"INSERT INTO cachewarp.oplog " COPY_COLUMNS " SELECT " COPY_COLUMN_NAMES " "
		"FROM cachewarp.oplog_staging WHERE entity = $1 ORDER BY staged_id",
		1, params, what, err);
	if (res == NULL)
		return CW_EDB;
	*promoted = strtoll(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	if ((rc = cw_hub_command(hub, "DELETE FROM cachewarp.oplog_staging WHERE entity = $1",
	                         1, params, what, err)) != 0)
		return rc;
	if ((rc = cw_hub_command(hub,
		"UPDATE cachewarp.entities SET status = 'live', updated_at = now() WHERE name = $1",
		1, params, what, err)) != 0)
		return rc;
	if (*promoted > 0)
		rc = notify_readers(hub, what, err);
	return rc;
}

int cw_oplog_promote_staged(cw_hub_t *hub, const char *entity, int64_t *promoted,
                            cw_err_t *err)
{
	char what[160];
	snprintf(what, sizeof what, "could not promote the staged changes of entity \"%s\"", entity);
	int64_t moved = 0;
	int rc = cw_hub_begin(hub, err);
	if (rc != 0)
		return rc;
	rc = cw_hub_lock_oplog(hub, err);
	if (rc == 0)
		rc = promote_locked(hub, entity, &moved, what, err);
	if (rc == 0)
		rc = cw_hub_commit(hub, what, err);
	if (rc != 0) {
		cw_hub_rollback(hub);
		return rc;
	}
	if (promoted != NULL)
		*promoted = moved;
	return 0;
}

/* The body of cw_oplog_append_synthetic's transaction, under the oplog lock. */
static int synthetic_locked(cw_hub_t *hub, const cw_change_batch_t *batch, const char *entity,
                            int64_t watermark, const char *origin, size_t *written,
                            const char *what, cw_err_t *err)
{
	char version[24], mark[24];
	snprintf(mark, sizeof mark, "%lld", (long long)watermark);
	const char *status_params[] = {entity};
	PGresult *res = cw_hub_exec(hub, "SELECT status, version FROM cachewarp.entities "
	                            "WHERE name = $1", 1, status_params, what, err);
	if (res == NULL)
		return CW_EDB;
	int rc = 0;
	if (PQntuples(res) == 0 || strcmp(PQgetvalue(res, 0, 0), "live") != 0)
		rc = cw_err_set(err, CW_ECONFLICT, "hub", "%s: entity \"%s\" is not live", what, entity);
	else
		snprintf(version, sizeof version, "%s", PQgetvalue(res, 0, 1));
	PQclear(res);
	if (rc != 0)
		return rc;
	cw_buf_t ops = CW_BUF_INIT, doc_ids = CW_BUF_INIT, datas = CW_BUF_INIT;
	const char **op_names = cw_xcalloc(batch->len + 1, sizeof *op_names);
	const char **ids = cw_xcalloc(batch->len + 1, sizeof *ids);
	const char **values = cw_xcalloc(batch->len + 1, sizeof *values);
	for (size_t i = 0; i < batch->len; i++) {
		op_names[i] = cw_op_name(batch->items[i].op);
		ids[i] = batch->items[i].doc_id;
		values[i] = batch->items[i].data;
	}
	cw_hub_text_array(&ops, op_names, batch->len);
	cw_hub_text_array(&doc_ids, ids, batch->len);
	cw_hub_text_array(&datas, values, batch->len);
	/*
	 * A key with a change newer than the watermark was changed by the stream
	 * after the state written here was read: it is left to the stream. The
	 * current generation, not the one read, so a newer scan's sweep keeps it.
	 */
	const char *params[] = {entity, mark, cw_buf_cstr(&ops), cw_buf_cstr(&doc_ids),
	                        cw_buf_cstr(&datas), version, origin};
	res = cw_hub_exec(hub,
		"INSERT INTO cachewarp.oplog (op, entity, doc_id, data, version, source_pos, origin) "
		"SELECT c.op, $1, c.doc_id, c.data, $6::integer, $7, $7 "
		"FROM unnest($3::text[], $4::text[], $5::text[]) WITH ORDINALITY AS c(op, doc_id, data, n) "
		"WHERE NOT EXISTS (SELECT 1 FROM cachewarp.oplog o WHERE o.entity = $1 "
		"AND o.id > $2::bigint AND o.doc_id = c.doc_id) ORDER BY c.n",
		7, params, what, err);
	free(op_names);
	free(ids);
	free(values);
	cw_buf_free(&ops);
	cw_buf_free(&doc_ids);
	cw_buf_free(&datas);
	if (res == NULL)
		return CW_EDB;
	*written = (size_t)strtoull(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	if (*written > 0)
		rc = notify_readers(hub, what, err);
	return rc;
}

int cw_oplog_append_synthetic(cw_hub_t *hub, const cw_change_batch_t *batch, int64_t watermark,
                              const char *origin, size_t *written, cw_err_t *err)
{
	*written = 0;
	if (batch->len == 0)
		return 0;
	const char *entity = batch->items[0].entity;
	for (size_t i = 0; i < batch->len; i++) {
		const cw_change_t *c = &batch->items[i];
		if (strcmp(c->entity, entity) != 0 || c->doc_id == NULL ||
		    (c->op == CW_OP_UPSERT) != (c->data != NULL) || c->op == CW_OP_SWEEP)
			return cw_err_set(err, CW_EINVAL, "hub", "could not write synthetic changes: "
			                  "one entity's upserts and deletes only");
	}
	char what[160];
	snprintf(what, sizeof what, "could not write synthetic changes of entity \"%s\"", entity);
	size_t count = 0;
	int rc = cw_hub_begin(hub, err);
	if (rc != 0)
		return rc;
	rc = cw_hub_lock_oplog(hub, err);
	if (rc == 0)
		rc = synthetic_locked(hub, batch, entity, watermark, origin, &count, what, err);
	if (rc == 0)
		rc = cw_hub_commit(hub, what, err);
	if (rc != 0) {
		cw_hub_rollback(hub);
		return rc;
	}
	*written = count;
	return 0;
}
