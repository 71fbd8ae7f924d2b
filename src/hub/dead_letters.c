/* This file contains the hub's dead letters declared in dead_letters.h. */
#include "hub/dead_letters.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DOMAIN "hub"
#define DEFAULT_LIMIT 100
#define MAX_LIMIT 10000

static const char *const stage_names[] = {"transform", "write"};
static const char *const status_names[] = {"failed", "replay"};

const char *cw_dead_letter_stage_name(cw_dead_letter_stage_t stage)
{
	return (size_t)stage < 2 ? stage_names[stage] : "unknown";
}

const char *cw_dead_letter_status_name(cw_dead_letter_status_t status)
{
	return (size_t)status < 2 ? status_names[status] : "unknown";
}

int cw_dead_letter_status_parse(const char *name)
{
	for (int i = 0; name != NULL && i < 2; i++)
		if (strcmp(name, status_names[i]) == 0)
			return i;
	return -1;
}

int cw_dead_letter_add(cw_hub_t *hub, const cw_dead_letter_t *letter, cw_err_t *err)
{
	if (letter->target == NULL || letter->entity == NULL || letter->doc_id == NULL ||
	    letter->error == NULL || (letter->op != CW_OP_UPSERT && letter->op != CW_OP_DELETE) ||
	    (letter->op == CW_OP_UPSERT) != (letter->data != NULL))
		return cw_err_set(err, CW_EINVAL, DOMAIN, "a dead letter needs a target, an entity, "
		                  "a doc_id, an error and an upsert's data");
	char oplog_id[24], version[24];
	snprintf(oplog_id, sizeof oplog_id, "%lld", (long long)letter->oplog_id);
	snprintf(version, sizeof version, "%lld", (long long)letter->version);
	const char *params[] = {
		letter->target, letter->entity, letter->doc_id, oplog_id, cw_op_name(letter->op),
		letter->data, cw_dead_letter_stage_name(letter->stage), letter->error,
		letter->error_code != NULL && letter->error_code[0] ? letter->error_code : NULL, version,
	};
	return cw_hub_command(hub,
		"INSERT INTO cachewarp.dead_letters (target, entity, doc_id, oplog_id, op, data, stage, "
		"error, error_code, version) "
		"VALUES ($1, $2, $3, $4::int8, $5, $6::jsonb, $7, $8, $9, $10::int4) "
		"ON CONFLICT (target, entity, doc_id, oplog_id) DO UPDATE SET "
		"attempts = cachewarp.dead_letters.attempts + 1, last_failed_at = now(), "
		"data = excluded.data, stage = excluded.stage, error = excluded.error, "
		"error_code = excluded.error_code, status = 'failed'",
		10, params, "could not record a dead letter", err);
}

/*
 * Appends filter's conditions to sql (which ends in a WHERE clause's
 * "true") with their parameters in params (texts in owned buffers).
 */
typedef struct filter_sql {
	const char *params[6];
	int nparams;
	char id[24], after[24], status[16];
} filter_sql_t;

static void add_condition(cw_buf_t *sql, filter_sql_t *f, const char *column, const char *value)
{
	f->params[f->nparams++] = value;
	cw_buf_appendf(sql, " AND %s = $%d", column, f->nparams);
}

static void where(cw_buf_t *sql, const cw_dead_letter_filter_t *filter, filter_sql_t *f)
{
	memset(f, 0, sizeof *f);
	cw_buf_append_str(sql, " WHERE true");
	if (filter->id > 0) {
		snprintf(f->id, sizeof f->id, "%lld", (long long)filter->id);
		add_condition(sql, f, "id", f->id);
	}
	if (filter->target != NULL)
		add_condition(sql, f, "target", filter->target);
	if (filter->entity != NULL)
		add_condition(sql, f, "entity", filter->entity);
	if (filter->status >= 0) {
		snprintf(f->status, sizeof f->status, "%s",
		         cw_dead_letter_status_name((cw_dead_letter_status_t)filter->status));
		add_condition(sql, f, "status", f->status);
	}
	if (filter->after_id > 0) {
		snprintf(f->after, sizeof f->after, "%lld", (long long)filter->after_id);
		f->params[f->nparams++] = f->after;
		cw_buf_appendf(sql, " AND id > $%d", f->nparams);
	}
}

void cw_dead_letter_list_free(cw_dead_letter_t *letters, size_t count)
{
	for (size_t i = 0; letters != NULL && i < count; i++) {
		free(letters[i].target);
		free(letters[i].entity);
		free(letters[i].doc_id);
		free(letters[i].data);
		free(letters[i].error);
		free(letters[i].error_code);
	}
	free(letters);
}

int cw_dead_letter_list(cw_hub_t *hub, const cw_dead_letter_filter_t *filter,
                        cw_dead_letter_t **letters, size_t *count, cw_err_t *err)
{
	*letters = NULL;
	*count = 0;
	cw_buf_t sql = CW_BUF_INIT;
	filter_sql_t f;
	cw_buf_append_str(&sql, "SELECT id, target, entity, doc_id, oplog_id, op, data::text, stage, "
	                  "error, error_code, attempts, "
	                  "(extract(epoch FROM first_failed_at) * 1000000)::int8, "
	                  "(extract(epoch FROM last_failed_at) * 1000000)::int8, status, version "
	                  "FROM cachewarp.dead_letters");
	where(&sql, filter, &f);
	size_t limit = filter->limit == 0 ? DEFAULT_LIMIT : filter->limit;
	cw_buf_appendf(&sql, " ORDER BY id LIMIT %zu", limit > MAX_LIMIT ? (size_t)MAX_LIMIT : limit);
	PGresult *res = cw_hub_exec(hub, cw_buf_cstr(&sql), f.nparams, f.params,
	                            "could not list dead letters", err);
	cw_buf_free(&sql);
	if (res == NULL)
		return CW_EDB;
	int rows = PQntuples(res);
	cw_dead_letter_t *out = cw_xcalloc((size_t)rows + 1, sizeof *out);
	for (int r = 0; r < rows; r++) {
		cw_dead_letter_t *l = &out[r];
		l->id = cw_hub_int64(res, r, 0);
		l->target = cw_hub_strdup(res, r, 1);
		l->entity = cw_hub_strdup(res, r, 2);
		l->doc_id = cw_hub_strdup(res, r, 3);
		l->oplog_id = cw_hub_int64(res, r, 4);
		l->op = strcmp(PQgetvalue(res, r, 5), "delete") == 0 ? CW_OP_DELETE : CW_OP_UPSERT;
		l->data = PQgetisnull(res, r, 6) ? NULL : cw_hub_strdup(res, r, 6);
		l->stage = strcmp(PQgetvalue(res, r, 7), "transform") == 0 ? CW_DEAD_LETTER_TRANSFORM
		                                                            : CW_DEAD_LETTER_WRITE;
		l->error = cw_hub_strdup(res, r, 8);
		l->error_code = PQgetisnull(res, r, 9) ? NULL : cw_hub_strdup(res, r, 9);
		l->attempts = cw_hub_int64(res, r, 10);
		l->first_failed_us = cw_hub_int64(res, r, 11);
		l->last_failed_us = cw_hub_int64(res, r, 12);
		l->status = strcmp(PQgetvalue(res, r, 13), "replay") == 0 ? CW_DEAD_LETTER_REPLAY
		                                                          : CW_DEAD_LETTER_FAILED;
		l->version = cw_hub_int64(res, r, 14);
	}
	PQclear(res);
	*letters = out;
	*count = (size_t)rows;
	return 0;
}

/* Runs "<head> WHERE <filter>" and counts the rows it touched. */
static int touch(cw_hub_t *hub, const char *head, const cw_dead_letter_filter_t *filter,
                 int64_t *count, const char *what, cw_err_t *err)
{
	cw_buf_t sql = CW_BUF_INIT;
	filter_sql_t f;
	cw_buf_append_str(&sql, head);
	where(&sql, filter, &f);
	PGresult *res = cw_hub_exec(hub, cw_buf_cstr(&sql), f.nparams, f.params, what, err);
	cw_buf_free(&sql);
	if (res == NULL)
		return CW_EDB;
	if (count != NULL)
		*count = strtoll(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	return 0;
}

int cw_dead_letter_request_replay(cw_hub_t *hub, const cw_dead_letter_filter_t *filter,
                                  int64_t *count, cw_err_t *err)
{
	return touch(hub, "UPDATE cachewarp.dead_letters SET status = 'replay'", filter, count,
	             "could not ask for a replay of dead letters", err);
}

int cw_dead_letter_drop(cw_hub_t *hub, const cw_dead_letter_filter_t *filter, int64_t *count,
                        cw_err_t *err)
{
	return touch(hub, "DELETE FROM cachewarp.dead_letters", filter, count,
	             "could not drop dead letters", err);
}

int cw_dead_letter_superseded(cw_hub_t *hub, const cw_dead_letter_t *letter, int64_t upto,
                              bool *superseded, cw_err_t *err)
{
	char after[24], until[24];
	snprintf(after, sizeof after, "%lld", (long long)letter->oplog_id);
	snprintf(until, sizeof until, "%lld", (long long)upto);
	const char *params[] = {letter->entity, letter->doc_id, after, until};
	PGresult *res = cw_hub_exec(hub,
		"SELECT EXISTS (SELECT 1 FROM cachewarp.oplog WHERE entity = $1 AND doc_id = $2 "
		"AND id > $3::int8 AND id <= $4::int8)",
		4, params, "could not look for a newer change of a dead letter", err);
	if (res == NULL)
		return CW_EDB;
	*superseded = PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	return 0;
}

int cw_dead_letter_count(cw_hub_t *hub, const char *target, const char *entity, int64_t *failed,
                         int64_t *replay, cw_err_t *err)
{
	const char *params[] = {target, entity};
	PGresult *res = cw_hub_exec(hub,
		"SELECT count(*) FILTER (WHERE status = 'failed'), "
		"count(*) FILTER (WHERE status = 'replay') FROM cachewarp.dead_letters "
		"WHERE ($1::text IS NULL OR target = $1) AND ($2::text IS NULL OR entity = $2)",
		2, params, "could not count dead letters", err);
	if (res == NULL)
		return CW_EDB;
	if (failed != NULL)
		*failed = cw_hub_int64(res, 0, 0);
	if (replay != NULL)
		*replay = cw_hub_int64(res, 0, 1);
	PQclear(res);
	return 0;
}

int cw_dead_letter_count_streams(cw_hub_t *hub, cw_dead_letter_stream_count_t **streams,
                                 size_t *count, cw_err_t *err)
{
	*streams = NULL;
	*count = 0;
	PGresult *res = cw_hub_exec(hub,
		"SELECT target, entity, count(*) FILTER (WHERE status = 'failed'), "
		"count(*) FILTER (WHERE status = 'replay') FROM cachewarp.dead_letters "
		"GROUP BY target, entity ORDER BY target, entity",
		0, NULL, "could not count dead letters", err);
	if (res == NULL)
		return CW_EDB;
	int rows = PQntuples(res);
	cw_dead_letter_stream_count_t *out = cw_xcalloc((size_t)rows + 1, sizeof *out);
	for (int r = 0; r < rows; r++) {
		out[r].target = cw_hub_strdup(res, r, 0);
		out[r].entity = cw_hub_strdup(res, r, 1);
		out[r].failed = cw_hub_int64(res, r, 2);
		out[r].replay = cw_hub_int64(res, r, 3);
	}
	PQclear(res);
	*streams = out;
	*count = (size_t)rows;
	return 0;
}

void cw_dead_letter_stream_counts_free(cw_dead_letter_stream_count_t *streams, size_t count)
{
	for (size_t i = 0; streams != NULL && i < count; i++) {
		free(streams[i].target);
		free(streams[i].entity);
	}
	free(streams);
}

int cw_dead_letter_stream_counts_write_json(const cw_dead_letter_stream_count_t *streams,
                                            size_t count, cw_json_t *w, cw_err_t *err)
{
	cw_json_array_begin(w, err);
	for (size_t i = 0; i < count; i++) {
		cw_json_object_begin(w, err);
		cw_json_key(w, "target", err);
		cw_json_string(w, streams[i].target, err);
		cw_json_key(w, "entity", err);
		cw_json_string(w, streams[i].entity, err);
		cw_json_key(w, "failed", err);
		cw_json_int64(w, streams[i].failed, err);
		cw_json_key(w, "replay", err);
		cw_json_int64(w, streams[i].replay, err);
		cw_json_object_end(w, err);
	}
	return cw_json_array_end(w, err);
}

int cw_dead_letter_write_json(const cw_dead_letter_t *l, cw_json_t *w, cw_err_t *err)
{
	char first[CW_TIME_RFC3339_LEN], last[CW_TIME_RFC3339_LEN];
	cw_time_format_rfc3339_ms(l->first_failed_us, first);
	cw_time_format_rfc3339_ms(l->last_failed_us, last);
	cw_json_object_begin(w, err);
	cw_json_key(w, "id", err);
	cw_json_int64(w, l->id, err);
	cw_json_key(w, "target", err);
	cw_json_string(w, l->target, err);
	cw_json_key(w, "entity", err);
	cw_json_string(w, l->entity, err);
	cw_json_key(w, "doc_id", err);
	cw_json_string(w, l->doc_id, err);
	cw_json_key(w, "oplog_id", err);
	cw_json_int64(w, l->oplog_id, err);
	cw_json_key(w, "version", err);
	cw_json_int64(w, l->version, err);
	cw_json_key(w, "op", err);
	cw_json_string(w, cw_op_name(l->op), err);
	cw_json_key(w, "data", err);
	if (l->data != NULL)
		cw_json_raw(w, l->data, strlen(l->data), err);
	else
		cw_json_null(w, err);
	cw_json_key(w, "stage", err);
	cw_json_string(w, cw_dead_letter_stage_name(l->stage), err);
	cw_json_key(w, "error", err);
	cw_json_string(w, l->error, err);
	cw_json_key(w, "error_code", err);
	if (l->error_code != NULL)
		cw_json_string(w, l->error_code, err);
	else
		cw_json_null(w, err);
	cw_json_key(w, "attempts", err);
	cw_json_int64(w, l->attempts, err);
	cw_json_key(w, "first_failed_at", err);
	cw_json_string(w, first, err);
	cw_json_key(w, "last_failed_at", err);
	cw_json_string(w, last, err);
	cw_json_key(w, "status", err);
	cw_json_string(w, cw_dead_letter_status_name(l->status), err);
	return cw_json_object_end(w, err);
}
