/* This file contains the change and change batch helpers declared in change.h. */
#include "core/change.h"

#include "core/entity.h"
#include "core/mem.h"

#include <jansson.h>

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define DOMAIN "change"

static const char *const op_names[] = {
	[CW_OP_UPSERT] = "upsert",
	[CW_OP_DELETE] = "delete",
	[CW_OP_SWEEP] = "sweep",
};
#define OP_COUNT (sizeof op_names / sizeof op_names[0])

const char *cw_op_name(cw_op_t op)
{
	if ((size_t)op >= OP_COUNT)
		return "unknown";
	return op_names[op];
}

int cw_op_parse(const char *name, cw_op_t *op, cw_err_t *err)
{
	for (size_t i = 0; name != NULL && i < OP_COUNT; i++) {
		if (strcmp(name, op_names[i]) == 0) {
			*op = (cw_op_t)i;
			return 0;
		}
	}
	/* Quote at most 32 bytes: the name may come from a request body. */
	return cw_err_set(err, CW_EINVAL, DOMAIN,
	                  "unknown change op \"%.32s\" (use upsert, delete or sweep)",
	                  name ? name : "");
}

static int validate_data(const cw_change_t *change, cw_err_t *err)
{
	json_error_t jerr;
	json_t *data = json_loads(change->data, JSON_DECODE_ANY, &jerr);
	int rc = 0;
	if (data == NULL)
		rc = cw_err_set(err, CW_EINVAL, DOMAIN, "data is not valid JSON: %s (column %d)",
		                jerr.text, jerr.column);
	else if (!json_is_object(data))
		rc = cw_err_set(err, CW_EINVAL, DOMAIN, "data must be a JSON object");
	json_decref(data);
	return rc;
}

int cw_change_validate(const cw_change_t *change, cw_err_t *err)
{
	int rc = cw_entity_name_validate(change->entity, err);
	if (rc != 0)
		return rc;
	const char *op = cw_op_name(change->op);
	switch (change->op) {
	case CW_OP_UPSERT:
		if (change->doc_id == NULL)
			rc = cw_err_set(err, CW_EINVAL, DOMAIN, "an upsert needs a doc_id");
		else if (change->data == NULL)
			rc = cw_err_set(err, CW_EINVAL, DOMAIN, "an upsert needs data");
		else
			rc = validate_data(change, err);
		break;
	case CW_OP_DELETE:
		if (change->doc_id == NULL)
			rc = cw_err_set(err, CW_EINVAL, DOMAIN, "a delete needs a doc_id");
		else if (change->data != NULL)
			rc = cw_err_set(err, CW_EINVAL, DOMAIN, "a delete carries no data");
		break;
	case CW_OP_SWEEP:
		if (change->doc_id != NULL || change->data != NULL)
			rc = cw_err_set(err, CW_EINVAL, DOMAIN,
			                "a sweep carries neither doc_id nor data");
		break;
	default:
		op = "unknown";
		rc = cw_err_set(err, CW_EINVAL, DOMAIN, "op %d is not a change op",
		                (int)change->op);
		break;
	}
	if (rc != 0)
		cw_err_prefix(err, "invalid %s change for entity \"%s\"", op, change->entity);
	return rc;
}

void cw_change_clear(cw_change_t *change)
{
	if (change == NULL)
		return;
	free(change->entity);
	free(change->doc_id);
	free(change->data);
	free(change->source_pos);
	memset(change, 0, sizeof *change);
}

static size_t change_bytes(const cw_change_t *change)
{
	size_t bytes = 0;
	const char *members[] = {change->entity, change->doc_id, change->data,
	                         change->source_pos};
	for (size_t i = 0; i < sizeof members / sizeof members[0]; i++)
		bytes += members[i] ? strlen(members[i]) : 0;
	return bytes;
}

static void push(cw_change_batch_t *batch, const cw_change_t *change, size_t bytes)
{
	if (batch->len == batch->cap) {
		size_t cap = batch->cap ? batch->cap * 2 : 64;
		batch->items = cw_xrealloc(batch->items, cap * sizeof *batch->items);
		batch->cap = cap;
	}
	batch->bytes += bytes;
	batch->items[batch->len++] = *change;
}

/*
 * A copy of s in arena, counted in *bytes; NULL stays NULL. same, when not
 * NULL, is an equal string already in arena (the previous change's entity or
 * position), shared instead of copied.
 */
static char *arena_copy(cw_arena_t *arena, const char *s, char *same, size_t *bytes)
{
	if (s == NULL)
		return NULL;
	size_t len = strlen(s);
	*bytes += len;
	if (same != NULL && strcmp(same, s) == 0)
		return same;
	return cw_arena_strndup(arena, s, len);
}

/* Appends change with copies of its strings in the batch's arena; the batch is borrowed. */
static void add_in_arena(cw_change_batch_t *batch, const cw_change_t *change)
{
	assert(batch->borrowed || batch->len == 0);
	/* Strings of the previous change to share: in the arena or a held block, as long-lived. */
	char *entity = batch->len > 0 ? batch->items[batch->len - 1].entity : NULL;
	char *source_pos = batch->len > 0 ? batch->items[batch->len - 1].source_pos : NULL;
	cw_change_t copy = *change;
	size_t bytes = 0;
	copy.entity = arena_copy(&batch->arena, change->entity, entity, &bytes);
	copy.doc_id = arena_copy(&batch->arena, change->doc_id, NULL, &bytes);
	copy.data = arena_copy(&batch->arena, change->data, NULL, &bytes);
	copy.source_pos = arena_copy(&batch->arena, change->source_pos, source_pos, &bytes);
	batch->borrowed = true;
	push(batch, &copy, bytes);
}

void cw_change_batch_push(cw_change_batch_t *batch, cw_change_t *change)
{
	if (batch->borrowed) {
		add_in_arena(batch, change);
		cw_change_clear(change);
		return;
	}
	push(batch, change, change_bytes(change));
	memset(change, 0, sizeof *change);
}

void cw_change_batch_add(cw_change_batch_t *batch, const cw_change_t *change)
{
	if (batch->len == 0 || batch->borrowed) {
		add_in_arena(batch, change);
		return;
	}
	cw_change_t copy = *change;
	copy.entity = cw_xstrdup(change->entity);
	copy.doc_id = cw_xstrdup(change->doc_id);
	copy.data = cw_xstrdup(change->data);
	copy.source_pos = cw_xstrdup(change->source_pos);
	cw_change_batch_push(batch, &copy);
}

void cw_change_batch_push_borrowed(cw_change_batch_t *batch, const cw_change_t *change,
                                   size_t bytes)
{
	assert(batch->borrowed || batch->len == 0);
	batch->borrowed = true;
	push(batch, change, bytes);
}

void cw_change_batch_hold(cw_change_batch_t *batch, void *block, void (*free_block)(void *))
{
	batch->holds = cw_xrealloc(batch->holds, (batch->nholds + 1) * sizeof *batch->holds);
	batch->holds[batch->nholds++] = (cw_change_hold_t){block, free_block};
}

void cw_change_batch_clear(cw_change_batch_t *batch)
{
	if (batch->borrowed && batch->len > 0)
		memset(batch->items, 0, batch->len * sizeof *batch->items);
	for (size_t i = 0; !batch->borrowed && i < batch->len; i++)
		cw_change_clear(&batch->items[i]);
	for (size_t i = 0; i < batch->nholds; i++)
		batch->holds[i].free_block(batch->holds[i].block);
	free(batch->holds);
	batch->holds = NULL;
	batch->nholds = 0;
	cw_arena_free(&batch->arena);
	batch->borrowed = false;
	batch->len = 0;
	batch->bytes = 0;
}

void cw_change_batch_free(cw_change_batch_t *batch)
{
	if (batch == NULL)
		return;
	cw_change_batch_clear(batch);
	free(batch->items);
	batch->items = NULL;
	batch->cap = 0;
}
