/*
 * This file contains a table scan's progress record (scan_progress.h).
 */
#include "capture/scan_progress.h"

#include "capture/batch_sql.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/mem.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define DOMAIN "capture"

char *cw_scan_progress_encode(const cw_scan_progress_t *progress)
{
	cw_buf_t out = CW_BUF_INIT;
	cw_json_t w;
	cw_json_init(&w, &out, CW_JSON_NO_NUL);
	cw_json_object_begin(&w, NULL);
	cw_json_key(&w, "version", NULL);
	cw_json_int64(&w, progress->version, NULL);
	cw_json_key(&w, "slot", NULL);
	cw_json_string(&w, progress->slot != NULL ? progress->slot : "", NULL);
	cw_json_key(&w, "lsn", NULL);
	cw_json_string(&w, progress->lsn != NULL ? progress->lsn : "", NULL);
	if (progress->keys != NULL) {
		cw_json_key(&w, "key", NULL);
		cw_json_array_begin(&w, NULL);
		for (size_t i = 0; i < progress->nkeys; i++)
			cw_json_string(&w, progress->keys[i], NULL);
		cw_json_array_end(&w, NULL);
	}
	cw_json_key(&w, "rows", NULL);
	cw_json_int64(&w, progress->rows, NULL);
	cw_json_key(&w, "done", NULL);
	cw_json_bool(&w, progress->done, NULL);
	cw_json_object_end(&w, NULL);
	/* Server-printed values and validated names hold no NUL byte: the writer cannot fail. */
	if (cw_json_finish(&w) != 0)
		abort();
	return cw_buf_take(&out);
}

int cw_scan_progress_decode(const char *json, cw_scan_progress_t *progress, cw_err_t *err)
{
	cw_scan_progress_clear(progress);
	json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, NULL);
	json_t *version = json_object_get(root, "version");
	json_t *slot = json_object_get(root, "slot");
	json_t *lsn = json_object_get(root, "lsn");
	json_t *key = json_object_get(root, "key");
	json_t *rows = json_object_get(root, "rows");
	json_t *done = json_object_get(root, "done");
	int rc = 0;
	if (!json_is_integer(version) || !json_is_string(slot) || !json_is_string(lsn) ||
	    !json_is_integer(rows) || !json_is_boolean(done) ||
	    (key != NULL && (!json_is_array(key) || json_array_size(key) == 0 ||
	                     json_array_size(key) > CW_SCAN_PROGRESS_MAX_KEYS))) {
		rc = cw_err_set(err, CW_EINVAL, DOMAIN, "scan progress is not {\"version\": N, "
		                "\"slot\": \"...\", \"lsn\": \"...\", \"key\": [\"...\"], "
		                "\"rows\": N, \"done\": B}");
		goto cleanup;
	}
	size_t nkeys = key != NULL ? json_array_size(key) : 0;
	for (size_t i = 0; i < nkeys; i++)
		if (!json_is_string(json_array_get(key, i))) {
			rc = cw_err_set(err, CW_EINVAL, DOMAIN, "scan progress key %zu is not a string", i);
			goto cleanup;
		}
	progress->version = json_integer_value(version);
	progress->rows = json_integer_value(rows);
	progress->done = json_is_true(done);
	cw_scan_progress_set_origin(progress, json_string_value(slot), json_string_value(lsn));
	if (nkeys > 0) {
		const char *values[CW_SCAN_PROGRESS_MAX_KEYS];
		for (size_t i = 0; i < nkeys; i++)
			values[i] = json_string_value(json_array_get(key, i));
		cw_scan_progress_set_key(progress, values, nkeys);
	}
cleanup:
	json_decref(root);
	return rc;
}

static void append_key_list(const char *const *keys, size_t nkeys, cw_buf_t *out)
{
	for (size_t i = 0; i < nkeys; i++) {
		cw_buf_append_str(out, i > 0 ? ", t." : "t.");
		cw_batch_quote_ident(CW_BATCH_POSTGRES, keys[i], out);
	}
}

void cw_scan_progress_cursor_sql(const cw_scan_progress_t *progress, const char *nspname,
                                 const char *relname, const char *const *keys, size_t nkeys,
                                 cw_buf_t *out)
{
	cw_buf_append_str(out, "DECLARE cw_scan NO SCROLL CURSOR FOR SELECT * FROM ");
	cw_batch_quote_ident(CW_BATCH_POSTGRES, nspname, out);
	cw_buf_append_str(out, ".");
	cw_batch_quote_ident(CW_BATCH_POSTGRES, relname, out);
	cw_buf_append_str(out, " AS t");
	if (progress->keys != NULL && progress->nkeys == nkeys) {
		cw_buf_append_str(out, " WHERE (");
		append_key_list(keys, nkeys, out);
		cw_buf_append_str(out, ") > (");
		for (size_t i = 0; i < nkeys; i++)
			cw_buf_appendf(out, i > 0 ? ", $%zu" : "$%zu", i + 1);
		cw_buf_append_str(out, ")");
	}
	cw_buf_append_str(out, " ORDER BY ");
	append_key_list(keys, nkeys, out);
}

static void free_keys(cw_scan_progress_t *progress)
{
	for (size_t i = 0; i < progress->nkeys; i++)
		free(progress->keys[i]);
	free(progress->keys);
	progress->keys = NULL;
	progress->nkeys = 0;
}

void cw_scan_progress_set_key(cw_scan_progress_t *progress, const char *const *keys,
                              size_t nkeys)
{
	free_keys(progress);
	if (nkeys == 0)
		return;
	progress->keys = cw_xcalloc(nkeys, sizeof *progress->keys);
	for (size_t i = 0; i < nkeys; i++)
		progress->keys[i] = cw_xstrdup(keys[i]);
	progress->nkeys = nkeys;
}

void cw_scan_progress_set_origin(cw_scan_progress_t *progress, const char *slot,
                                 const char *lsn)
{
	free(progress->slot);
	free(progress->lsn);
	progress->slot = cw_xstrdup(slot != NULL ? slot : "");
	progress->lsn = cw_xstrdup(lsn != NULL ? lsn : "");
}

void cw_scan_progress_clear(cw_scan_progress_t *progress)
{
	free_keys(progress);
	free(progress->slot);
	free(progress->lsn);
	memset(progress, 0, sizeof *progress);
}
