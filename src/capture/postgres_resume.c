/*
 * This file contains how the PostgreSQL source resumes a scan interrupted
 * part-way (postgres_internal.h; docs/hub.md, "Exactly once"): each scan
 * page commits with the scan's progress under "pg_scan:<source>:<entity>",
 * and a restart goes on after the last committed key, in the same
 * generation, instead of scanning the table again.
 *
 * The first snapshot resumes while its slot still starts at the snapshot's
 * consistent point (nothing was acknowledged before the checkpoint): the
 * rows not yet read come from a new snapshot of the tables, and streaming
 * then starts at that consistent point, so every change after it still
 * arrives, once.
 */
#include "capture/postgres_internal.h"

#include "capture/scan_progress.h"
#include "core/log.h"
#include "core/mem.h"
#include "hub/metadata.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *pg_scan_progress_key(const cw_pg_source_t *src, const pg_entity_t *ent)
{
	return cw_xasprintf("pg_scan:%s:%s", src->cfg->name, ent->entity.name);
}

int pg_scan_progress_resume(cw_pg_source_t *src, const pg_entity_t *ent, const char *lsn,
                            cw_scan_progress_t *out, cw_err_t *err)
{
	cw_scan_progress_clear(out);
	if (ent->entity.status != CW_ENTITY_SCANNING)
		return 0;
	char *key = pg_scan_progress_key(src, ent);
	char *json = NULL;
	cw_position_verdict_t verdict = CW_POSITION_VALID;
	int rc = cw_metadata_get_position(src->hub, key, &json, &verdict, err);
	free(key);
	if (rc == CW_ENOTFOUND) {
		cw_err_clear(err);
		return 0;
	}
	if (rc != 0)
		return rc;
	cw_scan_progress_t stored = {0};
	if (verdict == CW_POSITION_VALID && cw_scan_progress_decode(json, &stored, NULL) == 0 &&
	    stored.version == ent->entity.version && strcmp(stored.slot, src->cfg->slot) == 0 &&
	    (lsn == NULL || strcmp(stored.lsn, lsn) == 0))
		*out = stored;
	else
		cw_scan_progress_clear(&stored);
	free(json);
	return 0;
}

int pg_scan_progress_forget(cw_pg_source_t *src, const pg_entity_t *ent, cw_err_t *err)
{
	char *key = pg_scan_progress_key(src, ent);
	int rc = cw_metadata_delete(src->hub, key, err);
	free(key);
	if (rc == CW_ENOTFOUND) {
		cw_err_clear(err);
		rc = 0;
	}
	return rc;
}

int pg_snapshot_resume(cw_pg_source_t *src, uint64_t slot_lsn, cw_cancel_t *cancel,
                       uint64_t *start_lsn, bool *resumed, cw_err_t *err)
{
	char lsn_text[32];
	pg_lsn_format(slot_lsn, lsn_text);
	*resumed = false;
	PGconn *reader = NULL;
	cw_scan_progress_t *progress = cw_xcalloc(src->nents ? src->nents : 1, sizeof *progress);
	size_t resumable = 0;
	int rc = 0;
	for (size_t i = 0; i < src->nents && rc == 0; i++)
		if (!src->ents[i].failed &&
		    (rc = pg_scan_progress_resume(src, &src->ents[i], lsn_text, &progress[i], err)) == 0 &&
		    progress[i].version != 0)
			resumable++;
	if (rc != 0 || resumable == 0)
		goto cleanup;
	*resumed = true;
	pg_set_state(src, "snapshot", true);
	char count[24];
	snprintf(count, sizeof count, "%zu", resumable);
	cw_log_kv(CW_LOG_INFO, PG_COMPONENT, "resuming the snapshot after its last committed rows",
	          "source", src->cfg->name, "slot", src->cfg->slot, "consistent_point", lsn_text,
	          "entities_resumed", count, NULL);
	/* An entity the interrupted snapshot never wrote starts over in a new generation. */
	for (size_t i = 0; i < src->nents && rc == 0; i++) {
		if (src->ents[i].failed || progress[i].version != 0)
			continue;
		rc = pg_begin_generation(src, &src->ents[i], err);
		progress[i].version = src->ents[i].entity.version;
		cw_scan_progress_set_origin(&progress[i], src->cfg->slot, lsn_text);
	}
	if (rc != 0 || (rc = pg_connect(src, false, &reader, err)) != 0)
		goto cleanup;
	PGresult *res = PQexec(reader, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		rc = pg_result_error(reader, res, "could not begin the snapshot", err);
	PQclear(res);
	if (rc == 0)
		rc = pg_snapshot_scan_all(src, reader, progress, slot_lsn, cancel, err);
	if (rc == 0)
		*start_lsn = slot_lsn;
cleanup:
	for (size_t i = 0; i < src->nents; i++)
		cw_scan_progress_clear(&progress[i]);
	free(progress);
	PQfinish(reader);
	return rc;
}
