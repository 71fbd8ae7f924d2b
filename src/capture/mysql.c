/*
 * This file contains the MySQL/MariaDB source (source.h,
 * docs/sources-mysql.md): its interface, the run loop, the set of entities it
 * captures, the changes it pushes and the positions it stores. The url,
 * connections and checks are in mysql_conn.c, the snapshot in
 * mysql_snapshot.c, the binlog stream in mysql_stream.c; the binlog decoder
 * (capture/mysql_binlog.h) is pure.
 *
 * A run: connect, check the server's set-up, read the entities, load the
 * position the hub holds (a GTID position, stored with each batch in the same
 * hub transaction through the shared writer stage), scan what is not live in
 * a consistent snapshot, then stream the binlog from the position. A run
 * after an error or a crash resumes from what the hub holds.
 */
#include "capture/mysql_internal.h"
#include "capture/source_run.h"

#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/secret.h"
#include "hub/entity_registry.h"
#include "hub/entity_store.h"
#include "hub/metadata.h"
#include "hub/oplog_writer.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LAG_SECONDS "cachewarp_source_lag_seconds"
#define LAG_BYTES "cachewarp_source_lag_bytes"
#define QUARANTINE_METRIC "cachewarp_quarantined_total"

/* ---- status and metrics ------------------------------------------------- */

void my_set_state(my_source_t *src, const char *state, bool healthy, const char *error)
{
	cw_component_status_set(&src->mutex, &src->status, state, healthy, error);
}

void my_publish_lag(my_source_t *src)
{
	double lag_seconds = -1;
	if (src->lag_bytes == 0 && !src->in_txn && src->batch.len == 0)
		lag_seconds = 0;
	else if (src->newest_commit_us > 0)
		lag_seconds = (double)(cw_clock_wall_us(cw_clock_system()) - src->newest_commit_us) / 1e6;
	if (lag_seconds < -1)
		lag_seconds = 0;
	char position[MY_POSITION_LEN];
	my_position_format(&src->committed, position);
	pthread_mutex_lock(&src->mutex);
	src->status.lag_bytes = src->lag_bytes;
	src->status.lag_seconds = lag_seconds;
	snprintf(src->status.position, sizeof src->status.position, "%.127s", position);
	pthread_mutex_unlock(&src->mutex);
	char labels[160];
	snprintf(labels, sizeof labels, "source=\"%s\"", src->cfg->name);
	cw_metrics_gauge_set(src->ctx.metrics, LAG_BYTES, labels,
	                     src->lag_bytes < 0 ? 0 : (double)src->lag_bytes);
	cw_metrics_gauge_set(src->ctx.metrics, LAG_SECONDS, labels, lag_seconds < 0 ? 0 : lag_seconds);
}

/* ---- positions ------------------------------------------------------------- */

void my_position_format(const my_position_t *pos, char out[MY_POSITION_LEN])
{
	cw_buf_t buf = CW_BUF_INIT;
	for (size_t i = 0; i < pos->count; i++) {
		if (i > 0)
			cw_buf_append_char(&buf, ',');
		if (pos->gtids[i].mysql) {
			/* MySQL asks for the executed set: uuid:1-gno */
			cw_binlog_gtid_t first = pos->gtids[i];
			cw_buf_t one = CW_BUF_INIT;
			first.gno = 1;
			cw_binlog_gtid_format(&first, &one);
			cw_buf_appendf(&buf, "%s-%" PRId64, cw_buf_cstr(&one), pos->gtids[i].gno);
			cw_buf_free(&one);
		} else {
			cw_binlog_gtid_format(&pos->gtids[i], &buf);
		}
	}
	snprintf(out, MY_POSITION_LEN, "%s", cw_buf_cstr(&buf));
	cw_buf_free(&buf);
}

int my_position_parse(const char *text, my_position_t *pos, cw_err_t *err)
{
	memset(pos, 0, sizeof *pos);
	const char *p = text;
	while (*p != '\0') {
		unsigned long domain, server;
		unsigned long long seq;
		int used = 0;
		if (pos->count == MY_MAX_DOMAINS || *p < '0' || *p > '9' ||
		    sscanf(p, "%lu-%lu-%llu%n", &domain, &server, &seq, &used) != 3 || used == 0 ||
		    domain > UINT32_MAX || server > UINT32_MAX)
			return cw_err_set(err, CW_EINVAL, MY_DOMAIN, "invalid GTID position \"%s\"", text);
		cw_binlog_gtid_t *g = &pos->gtids[pos->count++];
		memset(g, 0, sizeof *g);
		g->domain_id = (uint32_t)domain;
		g->server_id = (uint32_t)server;
		g->seq = seq;
		p += used;
		if (*p == ',' && p[1] != '\0')
			p++;
		else if (*p != '\0')
			return cw_err_set(err, CW_EINVAL, MY_DOMAIN, "invalid GTID position \"%s\"", text);
	}
	return 0;
}

void my_position_advance(my_position_t *pos, const cw_binlog_gtid_t *gtid)
{
	for (size_t i = 0; i < pos->count; i++) {
		cw_binlog_gtid_t *g = &pos->gtids[i];
		bool same = gtid->mysql ? g->mysql && memcmp(g->uuid, gtid->uuid, 16) == 0 :
			!g->mysql && g->domain_id == gtid->domain_id;
		if (same) {
			*g = *gtid;
			return;
		}
	}
	if (pos->count < MY_MAX_DOMAINS)
		pos->gtids[pos->count++] = *gtid;
}

/* ---- entities ---------------------------------------------------------------- */

size_t my_entities_of(const my_source_t *src, const char *schema, const char *table,
                      size_t *idx, size_t cap)
{
	size_t n = 0;
	for (size_t i = 0; i < src->nents && n < cap; i++)
		if (!src->ents[i].failed && strcmp(src->ents[i].table, table) == 0 && strcmp(src->ents[i].schema, schema) == 0)
			idx[n++] = i;
	return n;
}

static void entity_free(my_entity_t *ent)
{
	my_batch_table_free(ent->batch);
	ent->batch = NULL;
	cw_projection_free(ent->proj);
	cw_entity_clear(&ent->entity);
}

bool my_entity_is_batch(const cw_component_ctx_t *ctx, const char *entity)
{
	const cw_entity_t *configured = cw_config_entity(ctx->config, entity);
	return configured != NULL && configured->mode == CW_ENTITY_MODE_BATCH;
}

static bool wanted(const my_source_t *src, const cw_entity_t *entity)
{
	return cw_entity_is_captured(entity) && entity->table != NULL &&
	       strcmp(entity->source, src->cfg->name) == 0 &&
	       cw_component_wants(&src->ctx, entity->name) &&
	       my_entity_is_batch(&src->ctx, entity->name) == src->polls_batch;
}

/* The schema and table of an entity: "db.table", or "table" in the url's database. */
static int parse_table(const my_source_t *src, my_entity_t *ent, cw_err_t *err)
{
	if (cw_entity_table_parse(ent->entity.table, ent->schema, ent->table, err) != 0)
		return CW_EINVAL;
	if (strchr(ent->entity.table, '.') == NULL || ent->entity.table[0] == '"') {
		/* one part only: the url's database (a quoted name may hold a dot itself) */
		char schema[CW_TABLE_PART_MAX + 1], table[CW_TABLE_PART_MAX + 1];
		cw_buf_t probe = CW_BUF_INIT;
		cw_buf_appendf(&probe, "x.%s", ent->entity.table);
		bool two_parts = cw_entity_table_parse(probe.data, schema, table, NULL) != 0;
		cw_buf_free(&probe);
		if (!two_parts)
			snprintf(ent->schema, sizeof ent->schema, "%s", src->url.database);
	}
	return 0;
}

/* Merges one hub entity; *added points at it when it is new or needs a scan. */
static int merge_entity(my_source_t *src, const cw_entity_t *row, my_entity_t **added,
                        cw_err_t *err)
{
	*added = NULL;
	for (size_t i = 0; i < src->nents; i++) {
		my_entity_t *known = &src->ents[i];
		if (strcmp(known->entity.name, row->name) != 0)
			continue;
		known->listed = true;
		if (row->version != known->entity.version || row->status != known->entity.status) {
			known->entity.version = row->version;
			known->entity.status = row->status;
			if (row->status != CW_ENTITY_LIVE)
				*added = known;
		}
		return 0;
	}
	my_entity_t ent;
	memset(&ent, 0, sizeof ent);
	cw_entity_copy(&ent.entity, row);
	if (parse_table(src, &ent, err) != 0) {
		entity_free(&ent);
		return CW_EINVAL;
	}
	if (row->ncolumns > 0 &&
	    (ent.proj = cw_projection_new(row, CW_PROJECTION_DEFAULT, err)) == NULL) {
		entity_free(&ent);
		return CW_EINVAL;
	}
	ent.listed = true;
	src->ents = cw_xrealloc(src->ents, (src->nents + 1) * sizeof *src->ents);
	src->ents[src->nents] = ent;
	*added = &src->ents[src->nents++];
	return 0;
}

/* Lists the failed entities in the status (each with what to fix) and the
 * cachewarp_entity_failed gauge (1 failed, 0 captured). */
static void publish_failed(my_source_t *src)
{
	for (size_t i = 0; i < src->nents; i++) {
		char labels[200];
		snprintf(labels, sizeof labels, "entity=\"%s\",source=\"%s\"", src->ents[i].entity.name,
		         src->cfg->name);
		cw_metrics_gauge_set(src->ctx.metrics, "cachewarp_entity_failed", labels,
		                     src->ents[i].failed ? 1 : 0);
	}
	pthread_mutex_lock(&src->mutex);
	src->status.nfailed = 0;
	for (size_t i = 0; i < src->nents; i++) {
		if (src->ents[i].failed)
			cw_component_status_add_failed(&src->status, src->ents[i].entity.name,
			                               src->ents[i].failed_reason);
	}
	pthread_mutex_unlock(&src->mutex);
}

int my_check_entity(my_source_t *src, my_entity_t *ent, cw_err_t *err)
{
	cw_err_t why = {0};
	int rc = my_prepare_table(src, ent, &why);
	if (rc == 0 && src->polls_batch)
		rc = my_batch_check(src, ent, &why);
	if (rc == CW_EINVAL || rc == CW_ENOTFOUND) {
		if (!ent->failed)
			cw_log_kv(CW_LOG_ERROR, MY_COMPONENT, "entity failed", "source", src->cfg->name,
			          "entity", ent->entity.name, "error", why.message, NULL);
		ent->failed = true;
		snprintf(ent->failed_reason, sizeof ent->failed_reason, "%s", why.message);
		return 0;
	}
	if (rc != 0) {
		*err = why;
		return rc;
	}
	ent->failed = false;
	return 0;
}

int my_load_entities(my_source_t *src, bool *changed, cw_err_t *err)
{
	cw_entity_t *rows = NULL;
	size_t count = 0;
	*changed = false;
	int rc = cw_entity_registry_list(src->ctx.registry, src->hub, false, &rows, &count, err);
	if (rc != 0)
		return rc;
	for (size_t i = 0; i < src->nents; i++)
		src->ents[i].listed = false;
	for (size_t i = 0; i < count && rc == 0; i++) {
		my_entity_t *added = NULL;
		cw_err_t why = {0};
		if (!wanted(src, &rows[i]))
			continue;
		if (merge_entity(src, &rows[i], &added, &why) != 0) {
			cw_log_kv(CW_LOG_ERROR, MY_COMPONENT, "entity not captured", "source",
			          src->cfg->name, "entity", rows[i].name, "error", why.message, NULL);
			continue;
		}
		if (added != NULL)
			rc = my_check_entity(src, added, err);
		*changed = *changed || added != NULL;
	}
	/* a failed entity is checked again at every reload */
	for (size_t i = 0; i < src->nents && rc == 0; i++)
		if (src->ents[i].failed && src->ents[i].listed) {
			rc = my_check_entity(src, &src->ents[i], err);
			*changed = *changed || !src->ents[i].failed;
		}
	cw_entity_store_list_free(rows, count);
	size_t kept = 0;
	for (size_t i = 0; i < src->nents; i++) {
		if (!src->ents[i].listed) {
			cw_log_kv(CW_LOG_INFO, MY_COMPONENT, "entity no longer captured", "source",
			          src->cfg->name, "entity", src->ents[i].entity.name, NULL);
			entity_free(&src->ents[i]);
			continue;
		}
		src->ents[kept++] = src->ents[i];
	}
	src->nents = kept;
	publish_failed(src);
	src->last_reload_ms = cw_clock_now_ms(cw_clock_system());
	return rc;
}

int my_reload_entities(my_source_t *src, cw_cancel_t *cancel, cw_err_t *err)
{
	bool changed = false;
	int rc = my_load_entities(src, &changed, err);
	if (rc != 0 || !changed)
		return rc;
	/* Scan the new ones (the stream waits): changes streamed later replay over the scan. */
	my_position_t unused;
	if ((rc = my_sync(src, err)) != 0)
		return rc;
	return my_snapshot(src, true, &unused, cancel, err);
}

/* ---- changes ------------------------------------------------------------------ */

/* Pushes a change of ent; doc_id and data (may be NULL) are taken over. */
static void push_change_taken(my_source_t *src, cw_op_t op, const my_entity_t *ent, char *doc_id,
                              char *data, const char *source_pos, int64_t commit_us)
{
	cw_change_t change = {0, op, cw_xstrdup(ent->entity.name), doc_id, data,
	                      ent->entity.version, cw_xstrdup(source_pos), commit_us};
	cw_change_batch_push(&src->batch, &change);
}

static void push_change(my_source_t *src, cw_op_t op, const my_entity_t *ent, const char *doc_id,
                        char *data, const char *source_pos, int64_t commit_us)
{
	push_change_taken(src, op, ent, cw_xstrdup(doc_id), data, source_pos, commit_us);
}

int my_quarantine(my_source_t *src, const my_entity_t *ent, const char *doc_id,
                  const char *source_pos, const char *reason, const char *raw, cw_err_t *err)
{
	cw_quarantine_record_t record = {ent->entity.name, doc_id, source_pos, reason, raw};
	int rc = cw_quarantine_add(src->hub, &record, err);
	if (rc != 0)
		return rc;
	cw_log_kv(CW_LOG_WARN, MY_COMPONENT, "record quarantined", "source", src->cfg->name,
	          "entity", ent->entity.name, "doc_id", doc_id != NULL ? doc_id : "", "reason",
	          reason, NULL);
	char labels[96];
	snprintf(labels, sizeof labels, "entity=\"%s\"", ent->entity.name);
	cw_metrics_counter_add(src->ctx.metrics, QUARANTINE_METRIC, labels, 1);
	return 0;
}

/* The row's string for the entity at i of n: taken over by the last, copied for the others. */
static char *row_string(char **text, size_t i, size_t n)
{
	if (i + 1 < n)
		return cw_xstrdup(*text);
	char *taken = *text;
	*text = NULL;
	return taken;
}

int my_push_row(my_source_t *src, const size_t *idx, size_t n, cw_binlog_row_t *row,
                const char *source_pos, int64_t commit_us, cw_err_t *err)
{
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		const my_entity_t *ent = &src->ents[idx[i]];
		if (row->old_doc_id != NULL)
			push_change(src, CW_OP_DELETE, ent, row->old_doc_id, NULL, source_pos, commit_us);
		if (row->op == CW_OP_DELETE) {
			push_change(src, CW_OP_DELETE, ent, row->doc_id, NULL, source_pos, commit_us);
			continue;
		}
		if (ent->proj == NULL) {
			push_change_taken(src, CW_OP_UPSERT, ent, row_string(&row->doc_id, i, n),
			                  row_string(&row->data, i, n), source_pos, commit_us);
			continue;
		}
		cw_err_t why = {0};
		if (cw_projection_json(ent->proj, row->data, &src->projected, &why) != 0)
			rc = my_quarantine(src, ent, row->doc_id, source_pos, why.message, row->data, err);
		else
			push_change(src, CW_OP_UPSERT, ent, row->doc_id,
			            cw_xstrndup(src->projected.data, src->projected.len), source_pos,
			            commit_us);
	}
	return rc;
}

void my_push_sweep(my_source_t *src, const my_entity_t *ent, const char *source_pos)
{
	cw_change_t change = {0, CW_OP_SWEEP, cw_xstrdup(ent->entity.name), NULL, NULL,
	                      ent->entity.version, cw_xstrdup(source_pos), 0};
	cw_change_batch_push(&src->batch, &change);
}

int my_flush(my_source_t *src, const my_position_t *position, bool partial, cw_err_t *err)
{
	char text[MY_POSITION_LEN], txn[64] = "";
	cw_buf_t json = CW_BUF_INIT;
	if (src->batch.len == 0 && position == NULL)
		return 0;
	if (position != NULL) {
		my_position_format(position, text);
		cw_buf_append_str(&json, "{\"gtid\":");
		cw_json_t w;
		cw_json_init(&w, &json, CW_JSON_DEFAULT);
		cw_json_string(&w, text, NULL);
		if (partial) {
			cw_buf_t g = CW_BUF_INIT;
			cw_binlog_gtid_format(&src->txn_gtid, &g);
			snprintf(txn, sizeof txn, "%s", cw_buf_cstr(&g));
			cw_buf_free(&g);
			cw_buf_appendf(&json, ",\"txn\":\"%s\",\"txn_done\":%" PRIu64, txn, src->txn_rows);
		}
		cw_buf_append_char(&json, '}');
	}
	cw_capture_job_t job = {position != NULL ? src->checkpoint_key : NULL,
	                        position != NULL ? json.data : NULL, src->scanning, 0,
	                        src->txn_commit_us, partial};
	int rc = cw_capture_writer_submit(src->writer, &src->batch, &job, -1, err);
	cw_buf_free(&json);
	if (rc == 0 && src->txn_commit_us > src->newest_commit_us)
		src->newest_commit_us = src->txn_commit_us;
	src->batch_started_ms = 0;
	return rc;
}

int my_sync(my_source_t *src, cw_err_t *err)
{
	return src->writer != NULL ? cw_capture_writer_sync(src->writer, NULL, err) : 0;
}

int my_begin_generation(my_source_t *src, my_entity_t *ent, cw_err_t *err)
{
	int rc = 0;
	if (ent->entity.status != CW_ENTITY_PENDING)
		rc = cw_entity_store_bump_version(src->hub, ent->entity.name, &ent->entity.version, err);
	if (rc == 0)
		rc = cw_entity_store_set_status(src->hub, ent->entity.name, CW_ENTITY_SCANNING, err);
	cw_entity_registry_invalidate(src->ctx.registry);
	if (rc == 0)
		ent->entity.status = CW_ENTITY_SCANNING;
	return rc;
}

int my_go_live(my_source_t *src, my_entity_t *ent, cw_err_t *err)
{
	int64_t promoted = 0;
	int rc = my_sync(src, err);
	if (rc == 0)
		rc = cw_oplog_promote_staged(src->hub, ent->entity.name, &promoted, err);
	cw_entity_registry_invalidate(src->ctx.registry);
	if (rc == 0) {
		ent->entity.status = CW_ENTITY_LIVE;
		char version[32];
		snprintf(version, sizeof version, "%" PRId64, ent->entity.version);
		cw_log_kv(CW_LOG_INFO, MY_COMPONENT, "entity live", "source", src->cfg->name, "entity",
		          ent->entity.name, "version", version, NULL);
	}
	return rc;
}

/* ---- checkpoint ------------------------------------------------------------------ */

/*
 * Loads the stored position; *found false when there is none. One that
 * fails its checksum (hub/position_check.h) is never used: CW_ENOTFOUND,
 * a lost position.
 */
static int load_checkpoint(my_source_t *src, my_position_t *pos, bool *found, cw_err_t *err)
{
	char *text = NULL;
	cw_position_verdict_t verdict = CW_POSITION_VALID;
	*found = false;
	src->skip_txn[0] = '\0';
	src->skip_rows = 0;
	int rc = cw_metadata_get_position(src->hub, src->checkpoint_key, &text, &verdict, err);
	if (rc == CW_ENOTFOUND || (rc == 0 && text == NULL)) {
		cw_err_clear(err);
		return 0;
	}
	if (rc != 0)
		return rc;
	if (verdict == CW_POSITION_CORRUPT) {
		free(text);
		return cw_err_set(err, CW_ENOTFOUND, MY_DOMAIN, "checkpoint \"%s\" of source \"%s\" "
		                  "failed its checksum: the stored position is not used",
		                  src->checkpoint_key, src->cfg->name);
	}
	json_error_t jerr;
	json_t *doc = json_loads(text, 0, &jerr);
	const char *gtid = json_string_value(json_object_get(doc, "gtid"));
	const char *txn = json_string_value(json_object_get(doc, "txn"));
	if (gtid == NULL)
		rc = cw_err_set(err, CW_EINVAL, MY_DOMAIN, "checkpoint \"%s\" is not valid: %s",
		                src->checkpoint_key, text);
	else
		rc = my_position_parse(gtid, pos, err);
	if (rc == 0 && txn != NULL) {
		snprintf(src->skip_txn, sizeof src->skip_txn, "%s", txn);
		src->skip_rows = (uint64_t)json_integer_value(json_object_get(doc, "txn_done"));
	}
	*found = rc == 0;
	json_decref(doc);
	free(text);
	return rc;
}

/* ---- a new entity's check (source.h) ------------------------------------------------- */

int cw_mysql_check_entity(const cw_source_config_t *cfg, const cw_entity_t *entity, cw_err_t *err);

int cw_mysql_check_entity(const cw_source_config_t *cfg, const cw_entity_t *entity, cw_err_t *err)
{
	my_source_t src;
	my_entity_t ent;
	memset(&src, 0, sizeof src);
	memset(&ent, 0, sizeof ent);
	src.cfg = cfg;
	int rc = my_url_parse(cfg->url, &src.url, err);
	if (rc != 0)
		return CW_EINVAL;
	src.masked_url = cw_secret_mask(cfg->url);
	src.dec = cw_binlog_new();
	cw_entity_copy(&ent.entity, entity);
	if ((rc = parse_table(&src, &ent, err)) == 0 && (rc = my_connect(&src, &src.sql, err)) == 0)
		rc = my_prepare_table(&src, &ent, err);
	else if (rc != CW_EINVAL)
		rc = CW_EDB;   /* the server could not be asked: the running source checks again */
	if (src.sql != NULL)
		mysql_close(src.sql);
	cw_entity_clear(&ent.entity);
	cw_binlog_free(src.dec);
	free(src.masked_url);
	my_url_clear(&src.url);
	return rc;
}

/* ---- the component ----------------------------------------------------------------- */

void *my_source_open(const cw_component_ctx_t *ctx, bool batch, cw_err_t *err)
{
	const cw_source_config_t *cfg = cw_config_source(ctx->config, ctx->name);
	if (cfg == NULL || cfg->type != CW_SOURCE_MYSQL) {
		cw_err_set(err, CW_EINVAL, MY_DOMAIN, "no mysql source \"%s\"", ctx->name);
		return NULL;
	}
	my_source_t *src = cw_xcalloc(1, sizeof *src);
	if (my_url_parse(cfg->url, &src->url, err) != 0) {
		free(src);
		return NULL;
	}
	src->ctx = *ctx;
	src->cfg = cfg;
	src->polls_batch = batch;
	src->checkpoint_key = cw_xasprintf("mysql_gtid:%s", cfg->name);
	src->masked_url = cw_secret_mask(cfg->url);
	/* A replica id of its own, stable per source name, out of the range servers use. */
	uint32_t hash = 2166136261u;
	for (const char *p = cfg->name; *p; p++)
		hash = (hash ^ (uint8_t)*p) * 16777619u;
	src->server_id = 0x40000000u | (hash & 0x3fffffffu);
	src->lag_bytes = -1;
	pthread_mutex_init(&src->mutex, NULL);
	snprintf(src->status.state, sizeof src->status.state, "starting");
	src->status.lag_bytes = -1;
	src->status.lag_seconds = -1;
	src->status.lag_ids = -1;
	cw_capture_declare_metrics(ctx->metrics);
	cw_metrics_declare(ctx->metrics, LAG_SECONDS, CW_METRIC_GAUGE,
	                   "Seconds between the newest captured change and now, per source.");
	cw_metrics_declare(ctx->metrics, LAG_BYTES, CW_METRIC_GAUGE,
	                   "Source log bytes not yet captured into the hub, per source.");
	cw_metrics_declare(ctx->metrics, QUARANTINE_METRIC, CW_METRIC_COUNTER,
	                   "Records set aside in the hub's quarantine, per entity.");
	cw_capture_declare_entity_metrics(ctx->metrics);
	return src;
}

static void *my_open(const cw_component_ctx_t *ctx, cw_err_t *err)
{
	return my_source_open(ctx, false, err);
}

void my_source_status(void *self, cw_component_status_t *out)
{
	my_source_t *src = self;
	pthread_mutex_lock(&src->mutex);
	*out = src->status;
	pthread_mutex_unlock(&src->mutex);
}

void my_end_run(my_source_t *src)
{
	cw_capture_writer_stop(src->writer);
	src->writer = NULL;
	for (size_t i = 0; i < src->nents; i++)
		entity_free(&src->ents[i]);
	free(src->ents);
	src->ents = NULL;
	src->nents = 0;
	cw_change_batch_free(&src->batch);
	cw_buf_free(&src->projected);
	cw_binlog_free(src->dec);
	src->dec = NULL;
	if (src->repl != NULL)
		mysql_close(src->repl);
	if (src->sql != NULL)
		mysql_close(src->sql);
	src->repl = src->sql = NULL;
	cw_hub_close(src->hub);
	src->hub = NULL;
	src->in_txn = false;
}

/* The binlog no longer holds the position: rescan (a new generation) or fail. */
static int position_lost(my_source_t *src, cw_err_t *err)
{
	if (src->cfg->on_position_lost == CW_POSITION_LOST_FAIL) {
		cw_err_prefix(err, "source \"%s\" lost its binlog position (on_position_lost: fail; "
		              "delete the metadata key \"%s\" from cachewarp.metadata to start over "
		              "with a full scan)", src->cfg->name, src->checkpoint_key);
		return CW_EINVAL;
	}
	cw_log_kv(CW_LOG_WARN, MY_COMPONENT, "binlog position lost: rescanning every entity",
	          "source", src->cfg->name, "error", err->message, NULL);
	src->position_lost = true;
	cw_err_t del = {0};
	return cw_metadata_delete(src->hub, src->checkpoint_key, &del) == CW_EDB ? CW_EDB : 0;
}

static int run_once(void *self, cw_cancel_t *cancel, cw_err_t *err)
{
	my_source_t *src = self;
	int rc = 0;
	bool found = false, changed = false;
	my_position_t start;
	my_set_state(src, "starting", false, NULL);
	src->hub = cw_hub_connect_auth(src->ctx.config->hub.url, src->ctx.config->hub.auth, err);
	if (src->hub == NULL)
		return CW_EDB;
	cw_capture_writer_opts_t opts = {src->ctx.config->hub.url,
	                                 (size_t)src->ctx.config->capture.queue_depth,
	                                 src->ctx.metrics, src->cfg->name, src->ctx.config->hub.auth};
	src->dec = cw_binlog_new();
	if ((src->writer = cw_capture_writer_start(&opts, err)) == NULL)
		return CW_EDB;
	if ((rc = my_connect(src, &src->sql, err)) != 0 || (rc = my_check_setup(src, err)) != 0 ||
	    (rc = my_load_entities(src, &changed, err)) != 0)
		return rc;
	if ((rc = load_checkpoint(src, &start, &found, err)) == CW_ENOTFOUND)
		rc = position_lost(src, err);
	if (rc != 0)
		return rc;
	for (;;) {
		if ((rc = my_snapshot(src, found, &start, cancel, err)) != 0)
			return rc;
		src->position_lost = false;
		rc = my_stream(src, &start, cancel, err);
		if (rc != CW_ENOTFOUND)
			return rc;
		if ((rc = position_lost(src, err)) != 0)
			return rc;
		found = false;
	}
}

static void end_run(void *self)
{
	my_end_run(self);
}

static int my_run(void *self, cw_cancel_t *cancel, cw_err_t *err)
{
	my_source_t *src = self;
	cw_source_run_t run = {"source", src->cfg->name, MY_DOMAIN, &src->mutex, &src->status, NULL,
	                       run_once, end_run};
	return cw_source_run(&run, src, cancel, err);
}

void my_source_close(void *self)
{
	my_source_t *src = self;
	if (src == NULL)
		return;
	cw_batch_poller_forget(&src->poller);
	my_url_clear(&src->url);
	free(src->checkpoint_key);
	free(src->masked_url);
	pthread_mutex_destroy(&src->mutex);
	free(src);
}

const cw_source_ops_t cw_mysql_source_ops = {"mysql", my_open, my_run, my_source_status,
                                              my_source_close};
