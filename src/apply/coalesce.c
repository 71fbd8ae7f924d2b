/* This file contains the coalescer (coalesce.h). */
#include "apply/coalesce.h"

#include "core/json.h"
#include "core/mem.h"

#include <stdlib.h>
#include <string.h>

/* A change with its segment: the number of sweeps of the entity before it. */
typedef struct keyed {
	const cw_change_t *change;
	size_t segment;
} keyed_t;

static int keyed_cmp(const void *pa, const void *pb)
{
	const keyed_t *a = pa, *b = pb;
	if (a->segment != b->segment)
		return a->segment < b->segment ? -1 : 1;
	/* Within a segment the documents come first, the sweep that ends it last. */
	bool a_sweep = a->change->op == CW_OP_SWEEP, b_sweep = b->change->op == CW_OP_SWEEP;
	if (a_sweep != b_sweep)
		return a_sweep ? 1 : -1;
	if (!a_sweep) {
		int c = strcmp(a->change->doc_id, b->change->doc_id);
		if (c != 0)
			return c;
	}
	return a->change->oplog_id < b->change->oplog_id ? -1
	     : a->change->oplog_id > b->change->oplog_id;
}

/* Splits change's data into fields appended to out. */
static int parse_fields(const cw_change_t *change, const char *text, cw_json_fields_t *out,
                        cw_err_t *err)
{
	cw_err_t why = {0};
	if (cw_json_fields_parse(out, text, &why) == 0)
		return 0;
	return cw_err_set(err, CW_EINVAL, "apply", "oplog row %lld of entity \"%s\": %s",
	                  (long long)change->oplog_id, change->entity, why.message);
}

static void fields_free(cw_json_fields_t *fields)
{
	cw_json_fields_clear(fields);
	free(fields);
}

/* Folds change into w, the write of the same document so far (kind set when w is new). */
static int fold(cw_write_t *w, bool fresh, const cw_change_t *change, cw_err_t *err)
{
	if (change->op == CW_OP_DELETE) {
		fields_free(w->fields);
		w->fields = NULL;
		w->raw = NULL;
		w->kind = CW_WRITE_DELETE;
		w->replace = false;
	} else if (fresh || w->kind == CW_WRITE_DELETE) {
		w->replace = !fresh;
		w->kind = CW_WRITE_UPSERT;
		w->raw = change->data ? change->data : "{}";
	} else {
		/* A second upsert of the document: merge the two field lists. */
		if (w->fields == NULL) {
			w->fields = cw_xmalloc(sizeof *w->fields);
			cw_json_fields_init(w->fields);
			if (parse_fields(change, w->raw, w->fields, err) != 0)
				return CW_EINVAL;
			w->raw = NULL;
		}
		cw_json_fields_t later;
		cw_json_fields_init(&later);
		int rc = parse_fields(change, change->data ? change->data : "", &later, err);
		if (rc == 0)
			cw_json_fields_merge(w->fields, &later);
		cw_json_fields_clear(&later);
		if (rc != 0)
			return CW_EINVAL;
	}
	w->version = change->version;
	w->oplog_id = change->oplog_id;
	w->created_at_us = change->created_at_us;
	return 0;
}

int cw_coalesce(const cw_change_t *const *changes, size_t n, int64_t skip_upto,
                cw_write_list_t *out, cw_err_t *err)
{
	cw_write_list_clear(out);
	keyed_t *keyed = cw_xcalloc(n ? n : 1, sizeof *keyed);
	size_t nkeyed = 0, segment = 0;
	for (size_t i = 0; i < n; i++) {
		if (changes[i]->oplog_id <= skip_upto)
			continue;
		keyed[nkeyed].change = changes[i];
		keyed[nkeyed].segment = segment;
		nkeyed++;
		if (changes[i]->op == CW_OP_SWEEP)
			segment++;
	}
	/*
	 * Changes to documents with increasing keys (serial ids, ObjectIds, new
	 * rows of most tables) arrive sorted already: one pass instead of a sort.
	 */
	size_t sorted = 1;
	while (sorted < nkeyed && keyed_cmp(&keyed[sorted - 1], &keyed[sorted]) <= 0)
		sorted++;
	if (sorted < nkeyed)
		qsort(keyed, nkeyed, sizeof *keyed, keyed_cmp);
	out->items = cw_xcalloc(nkeyed ? nkeyed : 1, sizeof *out->items);
	int rc = 0;
	for (size_t i = 0; i < nkeyed && rc == 0; i++) {
		const cw_change_t *change = keyed[i].change;
		out->changes++;
		if (change->op == CW_OP_SWEEP) {
			cw_write_t *w = &out->items[out->len++];
			w->kind = CW_WRITE_SWEEP;
			w->version = change->version;
			w->oplog_id = change->oplog_id;
			w->created_at_us = change->created_at_us;
			continue;
		}
		bool same = out->len > 0 && keyed[i - 1].segment == keyed[i].segment &&
		            keyed[i - 1].change->op != CW_OP_SWEEP &&
		            strcmp(keyed[i - 1].change->doc_id, change->doc_id) == 0;
		cw_write_t *w = same ? &out->items[out->len - 1] : &out->items[out->len++];
		if (!same)
			w->doc_id = change->doc_id;
		rc = fold(w, !same, change, err);
	}
	free(keyed);
	if (rc != 0)
		cw_write_list_clear(out);
	return rc;
}

void cw_write_list_clear(cw_write_list_t *list)
{
	if (list == NULL)
		return;
	for (size_t i = 0; i < list->len; i++)
		fields_free(list->items[i].fields);
	free(list->items);
	list->items = NULL;
	list->len = 0;
	list->changes = 0;
}

char *cw_write_json(const cw_write_t *w)
{
	if (w->raw != NULL)
		return cw_xstrdup(w->raw);
	cw_buf_t out = CW_BUF_INIT;
	cw_json_t jw;
	cw_json_init(&jw, &out, CW_JSON_NO_NUL);
	cw_json_object_begin(&jw, NULL);
	for (size_t i = 0; w->fields != NULL && i < w->fields->len; i++) {
		cw_json_key_len(&jw, w->fields->items[i].key, w->fields->items[i].key_len, NULL);
		cw_json_raw(&jw, w->fields->items[i].value, w->fields->items[i].value_len, NULL);
	}
	cw_json_object_end(&jw, NULL);
	return cw_buf_take(&out);
}
