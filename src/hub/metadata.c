/* This file contains the hub metadata and quarantine declared in metadata.h. */
#include "hub/metadata.h"

#include "core/log.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

int cw_metadata_get(cw_hub_t *hub, const char *key, char **json, cw_err_t *err)
{
	char what[160];
	snprintf(what, sizeof what, "could not read hub metadata \"%s\"", key);
	const char *params[] = {key};
	PGresult *res = cw_hub_exec(hub, "SELECT value::text FROM cachewarp.metadata WHERE key = $1",
	                            1, params, what, err);
	if (res == NULL)
		return CW_EDB;
	int rc = 0;
	if (PQntuples(res) == 0)
		rc = cw_err_set(err, CW_ENOTFOUND, "hub", "%s: not found", what);
	else
		*json = cw_hub_strdup(res, 0, 0);
	PQclear(res);
	return rc;
}

#define METADATA_UPSERT(key, value, checksum) \
	"INSERT INTO cachewarp.metadata (key, value, checksum) VALUES (" key ", " value \
	"::jsonb, " checksum ") ON CONFLICT (key) DO UPDATE SET value = excluded.value, " \
	"checksum = excluded.checksum, updated_at = now()"

int cw_metadata_set(cw_hub_t *hub, const char *key, const char *json, cw_err_t *err)
{
	char what[160];
	snprintf(what, sizeof what, "could not store hub metadata \"%s\"", key);
	if (json == NULL)
		return cw_err_set(err, CW_EINVAL, "hub", "%s: no value", what);
	char checksum[CW_POSITION_CHECKSUM_LEN];
	bool is_json = cw_position_checksum(key, json, checksum) == 0;
	const char *params[] = {key, json, is_json ? checksum : NULL};
	return cw_hub_command(hub, METADATA_UPSERT("$1", "$2", "$3"), 3, params, what, err);
}

void cw_metadata_set_sql(cw_hub_t *hub, cw_buf_t *sql, const char *key, const char *json)
{
	char checksum[CW_POSITION_CHECKSUM_LEN];
	bool is_json = cw_position_checksum(key, json, checksum) == 0;
	char *parts[3] = {NULL, NULL, NULL};
	const char *values[] = {key, json, is_json ? checksum : NULL};
	for (size_t i = 0; i < 3; i++) {
		cw_buf_t literal = CW_BUF_INIT;
		cw_hub_append_literal(hub, &literal, values[i]);
		parts[i] = cw_buf_take(&literal);
	}
	/* The statement above, its placeholders replaced by the literals. */
	const char *text = METADATA_UPSERT("$1", "$2", "$3");
	for (const char *p = text; *p; p++) {
		if (p[0] == '$' && p[1] >= '1' && p[1] <= '3') {
			cw_buf_append_str(sql, parts[p[1] - '1']);
			p++;
		} else {
			cw_buf_append_char(sql, *p);
		}
	}
	for (size_t i = 0; i < 3; i++)
		free(parts[i]);
}

int cw_metadata_get_position(cw_hub_t *hub, const char *key, char **json,
                             cw_position_verdict_t *verdict, cw_err_t *err)
{
	char what[160];
	snprintf(what, sizeof what, "could not read hub position \"%s\"", key);
	const char *params[] = {key};
	*json = NULL;
	PGresult *res = cw_hub_exec(hub, "SELECT value::text, checksum FROM cachewarp.metadata "
	                            "WHERE key = $1", 1, params, what, err);
	if (res == NULL)
		return CW_EDB;
	int rc = 0;
	if (PQntuples(res) == 0) {
		rc = cw_err_set(err, CW_ENOTFOUND, "hub", "%s: not found", what);
	} else {
		*json = cw_hub_strdup(res, 0, 0);
		*verdict = cw_position_verify(key, *json,
		                              PQgetisnull(res, 0, 1) ? NULL : PQgetvalue(res, 0, 1));
	}
	PQclear(res);
	if (rc == 0 && *verdict == CW_POSITION_UNCHECKED) {
		rc = cw_metadata_set(hub, key, *json, err);
		if (rc != 0) {
			free(*json);
			*json = NULL;
			return rc;
		}
		cw_log_kv(CW_LOG_INFO, "hub", "position stored without a checksum: accepted once and "
		          "stored again with one", "key", key, NULL);
	}
	return rc;
}

int cw_metadata_delete(cw_hub_t *hub, const char *key, cw_err_t *err)
{
	char what[160];
	snprintf(what, sizeof what, "could not delete hub metadata \"%s\"", key);
	const char *params[] = {key};
	return cw_hub_command(hub, "DELETE FROM cachewarp.metadata WHERE key = $1", 1, params,
	                      what, err);
}

int cw_quarantine_add(cw_hub_t *hub, const cw_quarantine_record_t *record, cw_err_t *err)
{
	if (record->entity == NULL || record->reason == NULL)
		return cw_err_set(err, CW_EINVAL, "hub",
		                  "could not quarantine a record: entity and reason are required");
	char what[160];
	snprintf(what, sizeof what, "could not quarantine a record of entity \"%s\"", record->entity);
	const char *params[] = {record->entity, record->doc_id, record->source_pos,
	                        record->reason, record->raw};
	return cw_hub_command(hub,
		"INSERT INTO cachewarp.quarantine (entity, doc_id, source_pos, reason, raw) "
		"VALUES ($1, $2, $3, $4, $5)", 5, params, what, err);
}
