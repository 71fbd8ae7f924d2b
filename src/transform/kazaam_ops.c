/*
 * This file contains the kazaam operations (kazaam_internal.h): each reads
 * and writes the document tree as kazaam reads and writes JSON text.
 */
#include "transform/kazaam.h"
#include "transform/kazaam_internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* A value read by a path, or null when the path is missing (kazaam reads "null"). */
static kz_value_t *or_null(kz_arena_t *arena, kz_value_t *value)
{
	return value != NULL ? value : kz_new_null(arena);
}

static bool is_null(const kz_value_t *value)
{
	return value == NULL || value->kind == CW_JSON_KIND_NULL;
}

static int op_shift(kz_run_t *run, const kz_op_t *op, kz_value_t **doc, cw_err_t *err)
{
	kz_arena_t *arena = &run->arena;
	kz_value_t *in = *doc;
	/* inplace writes into a copy: every path still reads the document as it came */
	kz_value_t *out = op->inplace ? kz_copy(arena, in) : kz_new_object(arena);
	for (size_t i = 0; i < op->entry_count; i++) {
		const kz_entry_t *entry = &op->entries[i];
		for (size_t k = 0; k < entry->source_count; k++) {
			kz_value_t *value = in;
			if (!entry->sources[k].whole) {
				int rc = kz_path_get(arena, in, &entry->sources[k], op->require, &value, err);
				if (rc != 0)
					return rc;
			}
			value = kz_copy(arena, or_null(arena, value));
			if (entry->list) {
				kz_value_t *wrapped = kz_new_array(arena);
				kz_array_push(arena, wrapped, value);
				value = wrapped;
			}
			/* each path of a list overwrites the one before, as in kazaam */
			int rc = kz_path_set(arena, &out, &entry->target, value, err);
			if (rc != 0)
				return rc;
		}
	}
	*doc = out;
	return 0;
}

static int op_default(kz_run_t *run, const kz_op_t *op, kz_value_t **doc, cw_err_t *err)
{
	for (size_t i = 0; i < op->entry_count; i++) {
		const kz_entry_t *entry = &op->entries[i];
		int rc = kz_path_set(&run->arena, doc, &entry->target,
		                     kz_copy(&run->arena, entry->value), err);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int op_delete(kz_run_t *run, const kz_op_t *op, kz_value_t **doc, cw_err_t *err)
{
	(void)run;
	for (size_t i = 0; i < op->path_count; i++) {
		int rc = kz_path_delete(*doc, &op->paths[i], op->require, err);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int op_extract(kz_run_t *run, const kz_op_t *op, kz_value_t **doc, cw_err_t *err)
{
	kz_value_t *value = NULL;
	int rc = kz_path_get(&run->arena, *doc, &op->path, op->require, &value, err);
	if (rc == 0)
		*doc = or_null(&run->arena, value);
	return rc;
}

static bool ignored(const kz_op_t *op, const kz_value_t *value, cw_buf_t *scratch)
{
	if (is_null(value))
		return true;
	for (size_t i = 0; i < op->ignore_count; i++)
		if (kz_same_text(value, op->ignore[i], scratch))
			return true;
	return false;
}

static int op_coalesce(kz_run_t *run, const kz_op_t *op, kz_value_t **doc, cw_err_t *err)
{
	for (size_t i = 0; i < op->entry_count; i++) {
		const kz_entry_t *entry = &op->entries[i];
		for (size_t k = 0; k < entry->source_count; k++) {
			kz_value_t *value = NULL;
			int rc = kz_path_get(&run->arena, *doc, &entry->sources[k], false, &value, err);
			if (rc != 0)
				return rc;
			if (ignored(op, value, &run->scratch))
				continue;
			rc = kz_path_set(&run->arena, doc, &entry->target, kz_copy(&run->arena, value),
			                 err);
			if (rc != 0)
				return rc;
			break;
		}
	}
	return 0;
}

/*
 * Appends what kazaam puts in a string for value: a string's body as it is
 * (still escaped), anything else as its JSON text with quotes and
 * backslashes escaped so the result stays one JSON string.
 */
static void append_raw(const kz_value_t *value, cw_buf_t *text, cw_buf_t *scratch)
{
	size_t len;
	if (value->kind == CW_JSON_KIND_STRING) {
		const char *body = kz_string_body(value, &len);
		cw_buf_append(text, body, len);
		return;
	}
	if (value->kind != CW_JSON_KIND_OBJECT && value->kind != CW_JSON_KIND_ARRAY) {
		cw_buf_append(text, value->text, value->len);
		return;
	}
	cw_buf_reset(scratch);
	kz_write(value, scratch);
	for (size_t i = 0; i < scratch->len; i++) {
		if (scratch->data[i] == '"' || scratch->data[i] == '\\')
			cw_buf_append_char(text, '\\');
		cw_buf_append_char(text, scratch->data[i]);
	}
}

/* Whether kazaam skips an array element in a concat: its raw text is "null". */
static bool raw_is_null(const kz_value_t *value)
{
	size_t len = value->len;
	if (value->kind == CW_JSON_KIND_STRING)
		return len == 6 && memcmp(value->text + 1, "null", 4) == 0;
	return value->kind == CW_JSON_KIND_NULL;
}

static int op_concat(kz_run_t *run, const kz_op_t *op, kz_value_t **doc, cw_err_t *err)
{
	cw_buf_t text = CW_BUF_INIT;
	int rc = 0;
	for (size_t i = 0; i < op->concat_count; i++) {
		const kz_concat_source_t *source = &op->concat[i];
		if (i > 0)
			cw_buf_append(&text, op->delim, op->delim_len);
		if (source->literal) {
			cw_buf_append(&text, source->body, source->body_len);
			continue;
		}
		kz_value_t *value = NULL;
		rc = kz_path_get(&run->arena, *doc, &source->path, op->require, &value, err);
		if (rc != 0 && op->require) {
			cw_err_set(err, CW_ENOTFOUND, "kazaam", "path \"%s\" does not exist",
			           source->path.text);
			goto cleanup;
		}
		if (rc != 0) {   /* kazaam concatenates nothing for a path it cannot read */
			rc = 0;
			continue;
		}
		value = or_null(&run->arena, value);
		if (value->kind != CW_JSON_KIND_ARRAY) {
			append_raw(value, &text, &run->scratch);
			continue;
		}
		for (size_t k = 0; k < value->count; k++)
			if (!raw_is_null(value->items[k]))
				append_raw(value->items[k], &text, &run->scratch);
	}
	rc = kz_path_set(&run->arena, doc, &op->path,
	                 kz_new_string_body(&run->arena, text.data != NULL ? text.data : "", text.len),
	                 err);
cleanup:
	cw_buf_free(&text);
	return rc;
}

/* ---- timestamp ---- */

static int64_t now_us(const kz_run_t *run)
{
	const cw_clock_t *clock = run->env != NULL && run->env->clock != NULL ? run->env->clock
	                                                                      : cw_clock_system();
	return cw_clock_wall_us(clock);
}

static int set_time(kz_run_t *run, kz_value_t **doc, const kz_path_t *path, const kz_time_t *t,
                    const char *layout, cw_err_t *err)
{
	cw_buf_reset(&run->scratch);
	kz_time_format(t, layout, &run->scratch);
	kz_value_t *value = kz_new_string(&run->arena, run->scratch.data != NULL ? run->scratch.data : "",
	                                  run->scratch.len);
	return kz_path_set(&run->arena, doc, path, value, err);
}

/* Each element of an array of timestamps: kazaam replaces every '*' of the key by its index. */
static int timestamp_each(kz_run_t *run, const kz_entry_t *entry, kz_value_t **doc,
                          const kz_value_t *array, cw_err_t *err)
{
	kz_arena_t *arena = &run->arena;
	size_t count = array->count;
	const kz_value_t **items = kz_alloc(arena, (count + 1) * sizeof *items);
	if (count > 0)
		memcpy(items, array->items, count * sizeof *items);
	cw_buf_t key = CW_BUF_INIT, raw = CW_BUF_INIT;
	int rc = 0;
	for (size_t idx = 0; idx < count && rc == 0; idx++) {
		cw_buf_reset(&raw);
		append_raw(items[idx], &raw, &run->scratch);
		kz_time_t t;
		rc = kz_time_parse(entry->input_format, raw.data != NULL ? raw.data : "", raw.len, &t,
		                   err);
		if (rc != 0)
			break;
		cw_buf_reset(&key);
		for (const char *c = entry->key; *c != '\0'; c++)
			if (*c == '*')
				cw_buf_appendf(&key, "%zu", idx);
			else
				cw_buf_append_char(&key, *c);
		kz_path_t path;
		rc = kz_path_compile(arena, kz_strndup(arena, key.data, key.len), entry->separator,
		                     &path, err);
		if (rc == 0)
			rc = set_time(run, doc, &path, &t, entry->output_format, err);
	}
	cw_buf_free(&key);
	cw_buf_free(&raw);
	return rc;
}

static int op_timestamp(kz_run_t *run, const kz_op_t *op, kz_value_t **doc, cw_err_t *err)
{
	for (size_t i = 0; i < op->entry_count; i++) {
		const kz_entry_t *entry = &op->entries[i];
		int rc;
		if (strcmp(entry->input_format, "$now") == 0) {
			int64_t us = now_us(run);
			int64_t sec = us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
			kz_time_t t = kz_time_local(sec, (int32_t)((us - sec * 1000000) * 1000));
			if (t.offset == 0)   /* Go prints a zero offset as "Z" and reads it back as UTC */
				strcpy(t.zone, "UTC");
			rc = set_time(run, doc, &entry->target, &t, entry->output_format, err);
			if (rc != 0)
				return rc;
			continue;
		}
		kz_value_t *value = NULL;
		rc = kz_path_get(&run->arena, *doc, &entry->target, op->require, &value, err);
		if (rc != 0)
			return rc;
		if (is_null(value))
			continue;
		if (value->kind == CW_JSON_KIND_ARRAY) {
			rc = timestamp_each(run, entry, doc, value, err);
		} else if (value->kind == CW_JSON_KIND_STRING) {
			size_t len;
			const char *body = kz_string_body(value, &len);
			kz_time_t t;
			rc = kz_time_parse(entry->input_format, body, len, &t, err);
			if (rc == 0)
				rc = set_time(run, doc, &entry->target, &t, entry->output_format, err);
		} else {
			rc = cw_err_set(err, CW_EINVAL, "kazaam",
			                "key \"%s\": the value is not a string or a list of strings",
			                entry->key);
		}
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* ---- uuid ---- */

static void random_bytes(const kz_run_t *run, unsigned char *out, size_t len)
{
	if (run->env != NULL && run->env->random != NULL) {
		run->env->random(run->env->random_ctx, out, len);
		return;
	}
	size_t done = 0;
	while (done < len) {
		ssize_t n = getrandom(out + done, len - done, 0);
		if (n > 0)
			done += (size_t)n;
	}
}

static int uuid_from_names(kz_run_t *run, const kz_entry_t *entry, kz_value_t *doc,
                           unsigned char u[16], cw_err_t *err)
{
	memcpy(u, entry->uuid_namespace, 16);
	for (size_t i = 0; i < entry->name_count; i++) {
		const kz_uuid_name_t *name = &entry->names[i];
		kz_value_t *value = NULL;
		cw_err_t get_err = {0};
		int rc = kz_path_get(&run->arena, doc, &name->path, true, &value, &get_err);
		cw_buf_t *text = &run->scratch;
		cw_buf_reset(text);
		if (rc == CW_ENOTFOUND) {
			if (name->fallback == NULL)
				return cw_err_set(err, CW_EINVAL, "kazaam",
				                  "key \"%s\": path \"%s\" does not exist and has no default",
				                  entry->key, name->path.text);
			cw_buf_append(text, name->fallback, name->fallback_len);
		} else if (rc == 0) {
			if (value->kind == CW_JSON_KIND_STRING) {
				size_t len;
				const char *body = kz_string_body(value, &len);
				cw_buf_append(text, body, len);
			} else {
				kz_write(value, text);
			}
		}   /* any other failure hashes "", as kazaam does */
		unsigned char next[16];
		kz_uuid_from_name(entry->uuid_version, u, text->data != NULL ? text->data : "",
		                  text->len, next);
		memcpy(u, next, 16);
	}
	return 0;
}

static int op_uuid(kz_run_t *run, const kz_op_t *op, kz_value_t **doc, cw_err_t *err)
{
	for (size_t i = 0; i < op->entry_count; i++) {
		const kz_entry_t *entry = &op->entries[i];
		unsigned char u[16];
		if (entry->uuid_version == 4) {
			random_bytes(run, u, sizeof u);
			kz_uuid_v4(u);
		} else {
			int rc = uuid_from_names(run, entry, *doc, u, err);
			if (rc != 0)
				return rc;
		}
		cw_buf_t text = CW_BUF_INIT;
		kz_uuid_text(u, &text);
		kz_value_t *value = kz_new_string_body(&run->arena, text.data, text.len);
		cw_buf_free(&text);
		int rc = kz_path_set(&run->arena, doc, &entry->target, value, err);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* ---- dispatch ---- */

static int run_one(kz_run_t *run, const kz_op_t *op, kz_value_t **doc, cw_err_t *err)
{
	switch (op->kind) {
	case KZ_OP_PASS:
		return 0;
	case KZ_OP_SHIFT:
		return op_shift(run, op, doc, err);
	case KZ_OP_CONCAT:
		return op_concat(run, op, doc, err);
	case KZ_OP_COALESCE:
		return op_coalesce(run, op, doc, err);
	case KZ_OP_EXTRACT:
		return op_extract(run, op, doc, err);
	case KZ_OP_DEFAULT:
		return op_default(run, op, doc, err);
	case KZ_OP_DELETE:
		return op_delete(run, op, doc, err);
	case KZ_OP_TIMESTAMP:
		return op_timestamp(run, op, doc, err);
	case KZ_OP_UUID:
		return op_uuid(run, op, doc, err);
	}
	return cw_err_set(err, CW_EINTERNAL, "kazaam", "unknown operation kind %d", (int)op->kind);
}

int kz_op_run(kz_run_t *run, const kz_op_t *op, kz_value_t **doc, cw_err_t *err)
{
	if (!op->has_over)
		return run_one(run, op, doc, err);
	/* over: the operation runs on each element of an array, which is then replaced */
	kz_value_t *array = NULL;
	int rc = kz_path_get(&run->arena, *doc, &op->over, false, &array, err);
	if (rc != 0)
		return rc;
	if (array == NULL)
		return cw_err_set(err, CW_EINVAL, "kazaam", "over: path \"%s\" does not exist",
		                  op->over.text);
	if (array->kind != CW_JSON_KIND_ARRAY)
		return cw_err_set(err, CW_EINVAL, "kazaam", "over: path \"%s\" is not an array",
		                  op->over.text);
	kz_value_t *result = kz_new_array(&run->arena);
	for (size_t i = 0; i < array->count; i++) {
		kz_value_t *item = kz_copy(&run->arena, array->items[i]);
		rc = run_one(run, op, &item, err);
		if (rc != 0) {
			cw_err_prefix(err, "over \"%s\" element %zu", op->over.text, i);
			return rc;
		}
		kz_array_push(&run->arena, result, item);
	}
	return kz_path_set(&run->arena, doc, &op->over, result, err);
}
