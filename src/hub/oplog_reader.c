/* This file contains the oplog reader declared in oplog_reader.h. */
#include "hub/oplog_reader.h"

#include "core/buf.h"
#include "core/mem.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct cw_oplog_reader {
	cw_hub_t *hub;        /* borrowed */
	char **entities;      /* owned copies */
	size_t nentities;
};

/*
 * A page's columns. In a binary result (the hub's text is UTF-8 as it is)
 * created_at is sent as stored, 8 bytes; as text it would be printed as a
 * date, and extract() to microseconds goes through numeric: 0.5 ms of the
 * hub's CPU per page of 1,000 rows (BENCHMARKS.md). data::text: a hub
 * before version 8 holds jsonb, whose binary form is not its text.
 */
#define PAGE_COLUMNS_BINARY \
	"SELECT id, op, entity, doc_id, created_at, data::text, version, source_pos " \
	"FROM cachewarp.oplog "
#define PAGE_COLUMNS_TEXT \
	"SELECT id, op, entity, doc_id, (extract(epoch FROM created_at) * 1000000)::bigint, " \
	"data, version, source_pos FROM cachewarp.oplog "

static int listen_command(cw_hub_t *hub, const char *sql, cw_err_t *err)
{
	return cw_hub_command(hub, sql, 0, NULL, "could not listen for oplog notifications", err);
}

cw_oplog_reader_t *cw_oplog_reader_new(cw_hub_t *hub, const char *const *entities,
                                       size_t nentities, cw_err_t *err)
{
	if (listen_command(hub, "LISTEN " CW_HUB_CHANNEL, err) != 0)
		return NULL;
	cw_oplog_reader_t *reader = cw_xcalloc(1, sizeof *reader);
	reader->hub = hub;
	reader->nentities = nentities;
	reader->entities = cw_xcalloc(nentities ? nentities : 1, sizeof *reader->entities);
	for (size_t i = 0; i < nentities; i++)
		reader->entities[i] = cw_xstrdup(entities[i]);
	return reader;
}

void cw_oplog_reader_free(cw_oplog_reader_t *reader)
{
	if (reader == NULL)
		return;
	listen_command(reader->hub, "UNLISTEN " CW_HUB_CHANNEL, NULL);
	for (size_t i = 0; i < reader->nentities; i++)
		free(reader->entities[i]);
	free(reader->entities);
	free(reader);
}

/* A text column of the row: its value in res (NULL when null), its length added to *bytes. */
static char *text_at(PGresult *res, int row, int col, size_t *bytes)
{
	if (PQgetisnull(res, row, col))
		return NULL;
	*bytes += (size_t)PQgetlength(res, row, col);
	return PQgetvalue(res, row, col);
}

/*
 * Turns one result row into a change whose strings point into res (the
 * caller keeps res as long as the change); CW_EDB when the op is not one we
 * know.
 */
static int row_to_change(PGresult *res, int row, cw_change_t *change, size_t *bytes,
                         cw_err_t *err)
{
	memset(change, 0, sizeof *change);
	change->oplog_id = cw_hub_int64(res, row, 0);
	if (cw_op_parse(PQgetvalue(res, row, 1), &change->op, err) != 0)
		return cw_err_set(err, CW_EDB, "hub", "could not read the oplog: row %lld has op \"%s\"",
		                  (long long)change->oplog_id, PQgetvalue(res, row, 1));
	*bytes = 0;
	change->entity = text_at(res, row, 2, bytes);
	change->doc_id = text_at(res, row, 3, bytes);
	change->created_at_us = cw_hub_timestamp_us(res, row, 4);
	change->data = text_at(res, row, 5, bytes);
	change->version = cw_hub_int64(res, row, 6);
	change->source_pos = text_at(res, row, 7, bytes);
	return 0;
}

/* Copies the strings of a change that points into a result, for a batch that owns its own. */
static void own_strings(cw_change_t *change)
{
	change->entity = change->entity ? cw_xstrdup(change->entity) : NULL;
	change->doc_id = change->doc_id ? cw_xstrdup(change->doc_id) : NULL;
	change->data = change->data ? cw_xstrdup(change->data) : NULL;
	change->source_pos = change->source_pos ? cw_xstrdup(change->source_pos) : NULL;
}

static void result_free(void *res)
{
	PQclear(res);
}

/*
 * The page of a subset: one range scan of the (entity, id) index per entity,
 * merged by id. `entity = ANY($3) ORDER BY id` cannot use that index for the
 * order, so the planner walked an index on id and filtered out every row of
 * the other entities, page after page (BENCHMARKS.md, single-entity reads).
 * $1 is the id to read after, $2 the limit, and bounded: $3 the last id to
 * read; the entities' names follow as the next parameters (appended to
 * params from *nparams on). A name listed twice is read once.
 */
static void subset_query(cw_buf_t *sql, const char *columns, const char *const *entities,
                         size_t nentities, bool bounded, const char **params, int *nparams)
{
	int scans = 0;
	cw_buf_append_str(sql, "SELECT * FROM (");
	for (size_t i = 0; i < nentities; i++) {
		size_t seen = 0;
		while (seen < i && strcmp(entities[seen], entities[i]) != 0)
			seen++;
		if (seen < i)
			continue;
		params[*nparams] = entities[i];
		*nparams += 1;
		cw_buf_appendf(sql, "%s(%sWHERE entity = $%d AND id > $1::int8%s "
		               "ORDER BY id LIMIT $2::int8)", scans++ > 0 ? " UNION ALL " : "",
		               columns, *nparams, bounded ? " AND id <= $3::int8" : "");
	}
	cw_buf_append_str(sql, ") AS page ORDER BY 1 LIMIT $2::int8");
}

/*
 * A page's query run as index scans, in binary when the hub's text allows;
 * prepared as slot unless slot is CW_HUB_STMT_END (a shape too rare to keep):
 * parsing and planning it at every page cost the hub 0.1-0.25 ms per page
 * (BENCHMARKS.md). NULL with err.
 */
static PGresult *page_exec(cw_hub_t *hub, cw_hub_stmt_t slot, const char *sql, int nparams,
                           const char *const *params, cw_err_t *err)
{
	const char *what = "could not read the oplog";
	bool binary = cw_hub_binary_text_ok(hub);
	if (slot != CW_HUB_STMT_END && binary)
		return cw_hub_exec_index_scans_prepared_binary(hub, slot, sql, nparams, params, what,
		                                               err);
	if (slot != CW_HUB_STMT_END)
		return cw_hub_exec_index_scans_prepared(hub, slot, sql, nparams, params, what, err);
	if (binary)
		return cw_hub_exec_index_scans_binary(hub, sql, nparams, params, what, err);
	return cw_hub_exec_index_scans(hub, sql, nparams, params, what, err);
}

static const char *page_columns(cw_hub_t *hub)
{
	return cw_hub_binary_text_ok(hub) ? PAGE_COLUMNS_BINARY : PAGE_COLUMNS_TEXT;
}

/*
 * The page of a subset (bounded: params[2] is the last id to read), or NULL
 * with err. A bounded page of up to CW_HUB_MERGED_PAGE_SLOTS entities (every
 * entity's, named by the heads query) is a prepared statement.
 */
static PGresult *subset_page(cw_hub_t *hub, const char *const *entities, size_t nentities,
                             bool bounded, const char **fixed, cw_err_t *err)
{
	cw_buf_t sql = CW_BUF_INIT;
	const char **params = cw_xcalloc(nentities + 3, sizeof *params);
	int nparams = bounded ? 3 : 2;
	memcpy(params, fixed, (size_t)nparams * sizeof *params);
	subset_query(&sql, page_columns(hub), entities, nentities, bounded, params, &nparams);
	int scans = nparams - 3;
	cw_hub_stmt_t slot = bounded && scans >= 1 && scans <= CW_HUB_MERGED_PAGE_SLOTS
	                     ? (cw_hub_stmt_t)(CW_HUB_STMT_OPLOG_MERGED_PAGE + scans - 1)
	                     : CW_HUB_STMT_END;
	PGresult *res = page_exec(hub, slot, cw_buf_cstr(&sql), nparams, params, err);
	free(params);
	cw_buf_free(&sql);
	return res;
}

static void (*page_hook)(void *arg);
static void *page_hook_arg;

void cw_oplog_set_page_hook(void (*fn)(void *arg), void *arg)
{
	page_hook = fn;
	page_hook_arg = arg;
}

void cw_oplog_round_clear(cw_oplog_round_t *round)
{
	for (size_t i = 0; i < round->nentities; i++)
		free(round->entities[i]);
	free(round->entities);
	*round = (cw_oplog_round_t)CW_OPLOG_ROUND_INIT;
}

/*
 * Starts a round of pages of every entity after `after`: the entities with a
 * change after it and the last id among them, in one snapshot (round->upto
 * stays 0 when there is none). A change committed after it has a larger id
 * than that last one, even when it is the first of a new entity: ids are
 * drawn and committed in order under the oplog lock, so every id up to it
 * was already committed and the round's pages, merged range scans of its
 * entities up to it, miss none.
 */
static int round_start(cw_hub_t *hub, int64_t after, const char *after_text,
                       cw_oplog_round_t *round, cw_err_t *err)
{
	const char *head_params[] = {after_text};
	cw_oplog_round_clear(round);
	round->from = after;
	PGresult *heads = cw_hub_exec_index_scans_prepared(hub, CW_HUB_STMT_OPLOG_HEADS,
	                                                   "SELECT entity, last FROM ("
	                                                   CW_OPLOG_HEADS_SQL ") AS h "
	                                                   "WHERE last > $1::int8",
	                                                   1, head_params,
	                                                   "could not read the oplog", err);
	if (heads == NULL)
		return CW_EDB;
	int n = PQntuples(heads);
	round->entities = n > 0 ? cw_xcalloc((size_t)n, sizeof *round->entities) : NULL;
	for (int i = 0; i < n; i++) {
		round->entities[round->nentities++] = cw_xstrdup(PQgetvalue(heads, i, 0));
		int64_t last = cw_hub_int64(heads, i, 1);
		round->upto = last > round->upto ? last : round->upto;
	}
	PQclear(heads);
	if (n > 0 && page_hook != NULL)
		page_hook(page_hook_arg);
	return 0;
}

/*
 * The page of every entity after `after`, within round: a new round first
 * when `after` reached the last one's end. A page shorter than limit ends
 * the round (nothing of it is left after that page). *res stays NULL when no
 * entity has a change after `after`.
 */
static int every_entity_page(cw_hub_t *hub, cw_oplog_round_t *round, const char *after_text,
                             int64_t after, const char *limit_text, size_t limit,
                             PGresult **res, cw_err_t *err)
{
	*res = NULL;
	bool within = after >= round->from && after < round->upto;
	if (!within && round_start(hub, after, after_text, round, err) != 0)
		return CW_EDB;
	if (round->upto <= after)
		return 0;
	char upto_text[24];
	snprintf(upto_text, sizeof upto_text, "%lld", (long long)round->upto);
	const char *fixed[] = {after_text, limit_text, upto_text};
	*res = subset_page(hub, (const char *const *)round->entities, round->nentities, true,
	                   fixed, err);
	if (*res == NULL || (size_t)PQntuples(*res) < limit)
		cw_oplog_round_clear(round);
	return *res != NULL ? 0 : CW_EDB;
}

/* Appends the rows of res to out and gives res to out or clears it (see cw_oplog_fetch). */
static int take_page(PGresult *res, cw_change_batch_t *out, cw_err_t *err);

int cw_oplog_fetch_round(cw_hub_t *hub, cw_oplog_round_t *round, int64_t after, size_t limit,
                         cw_change_batch_t *out, cw_err_t *err)
{
	char after_text[24], limit_text[24];
	snprintf(after_text, sizeof after_text, "%lld", (long long)after);
	snprintf(limit_text, sizeof limit_text, "%zu", limit);
	PGresult *res = NULL;
	int rc = every_entity_page(hub, round, after_text, after, limit_text, limit, &res, err);
	if (rc != 0 || res == NULL)
		return rc;
	return take_page(res, out, err);
}

int cw_oplog_fetch(cw_hub_t *hub, const char *const *entities, size_t nentities,
                   int64_t after, size_t limit, cw_change_batch_t *out, cw_err_t *err)
{
	if (nentities == 0) {   /* a round of one page */
		cw_oplog_round_t round = CW_OPLOG_ROUND_INIT;
		int rc = cw_oplog_fetch_round(hub, &round, after, limit, out, err);
		cw_oplog_round_clear(&round);
		return rc;
	}
	char after_text[24], limit_text[24];
	snprintf(after_text, sizeof after_text, "%lld", (long long)after);
	snprintf(limit_text, sizeof limit_text, "%zu", limit);
	PGresult *res = NULL;
	if (nentities == 1) {
		const char *params[] = {after_text, limit_text, entities[0]};
		char *sql = cw_xasprintf("%sWHERE entity = $3 AND id > $1::int8 "
		                         "ORDER BY id LIMIT $2::int8", page_columns(hub));
		res = page_exec(hub, CW_HUB_STMT_OPLOG_PAGE, sql, 3, params, err);
		free(sql);
	} else {
		const char *fixed[] = {after_text, limit_text};
		res = subset_page(hub, entities, nentities, false, fixed, err);
	}
	if (res == NULL)
		return CW_EDB;
	return take_page(res, out, err);
}

static int take_page(PGresult *res, cw_change_batch_t *out, cw_err_t *err)
{
	/*
	 * The changes borrow their strings from the result, which the batch
	 * holds: no copy per string. A batch that owns the strings of changes
	 * it had before gets copies.
	 */
	bool borrow = out->len == 0 || out->borrowed;
	int rc = 0, rows = PQntuples(res);
	size_t before = out->len, bytes_before = out->bytes;
	for (int row = 0; row < rows && rc == 0; row++) {
		cw_change_t change;
		size_t bytes = 0;
		rc = row_to_change(res, row, &change, &bytes, err);
		if (rc != 0)
			break;
		if (borrow) {
			cw_change_batch_push_borrowed(out, &change, bytes);
		} else {
			own_strings(&change);
			cw_change_batch_push(out, &change);
		}
	}
	if (rc != 0) {
		while (out->len > before) {
			cw_change_t *change = &out->items[--out->len];
			if (borrow)
				memset(change, 0, sizeof *change);   /* its strings go with res */
			else
				cw_change_clear(change);
		}
		out->bytes = bytes_before;
		out->borrowed = out->borrowed && out->len > 0;
	}
	if (rc == 0 && borrow && out->len > before)
		cw_change_batch_hold(out, res, result_free);
	else
		PQclear(res);
	return rc;
}

int cw_oplog_read(cw_oplog_reader_t *reader, int64_t after, size_t limit,
                  cw_change_batch_t *out, cw_err_t *err)
{
	return cw_oplog_fetch(reader->hub, (const char *const *)reader->entities,
	                      reader->nentities, after, limit, out, err);
}

static int64_t monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Frees every queued notification; returns how many there were. */
static int drain_notifies(PGconn *conn)
{
	int count = 0;
	PGnotify *notify;
	while ((notify = PQnotifies(conn)) != NULL) {
		PQfreemem(notify);
		count++;
	}
	return count;
}

int cw_oplog_wait(cw_oplog_reader_t *reader, int timeout_ms, cw_err_t *err)
{
	const char *what = "could not wait for oplog notifications";
	PGconn *conn = cw_hub_pgconn(reader->hub);
	int64_t deadline = monotonic_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	for (;;) {
		if (PQconsumeInput(conn) == 0)
			return cw_hub_conn_error(reader->hub, what, err);
		if (drain_notifies(conn) > 0)
			return 1;
		int64_t remaining = deadline - monotonic_ms();
		if (remaining <= 0)
			return 0;
		struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN, .revents = 0};
		if (pfd.fd < 0)
			return cw_hub_conn_error(reader->hub, what, err);
		int ready = poll(&pfd, 1, (int)remaining);
		if (ready < 0 && errno != EINTR)
			return cw_err_set(err, CW_EIO, "hub", "%s: %s", what, strerror(errno));
	}
}

int cw_oplog_last_id(cw_hub_t *hub, int64_t *last_id, cw_err_t *err)
{
	PGresult *res = cw_hub_exec(hub, CW_OPLOG_LAST_ID_SQL, 0, NULL,
	                            "could not read the last oplog id", err);
	if (res == NULL)
		return CW_EDB;
	*last_id = cw_hub_int64(res, 0, 0);
	PQclear(res);
	return 0;
}
