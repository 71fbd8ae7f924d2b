/* This file contains the kazaam engine's JSON value tree (kazaam_internal.h). */
#include "transform/kazaam_internal.h"

#include "core/json.h"
#include "core/mem.h"

#include <stdlib.h>
#include <string.h>

static kz_value_t *new_value(kz_arena_t *arena, cw_json_kind_t kind)
{
	kz_value_t *value = kz_alloc(arena, sizeof *value);
	memset(value, 0, sizeof *value);
	value->kind = kind;
	return value;
}

kz_value_t *kz_new_scalar(kz_arena_t *arena, cw_json_kind_t kind, const char *text, size_t len)
{
	kz_value_t *value = new_value(arena, kind);
	value->text = text;
	value->len = len;
	return value;
}

kz_value_t *kz_new_null(kz_arena_t *arena)
{
	return kz_new_scalar(arena, CW_JSON_KIND_NULL, "null", 4);
}

kz_value_t *kz_new_object(kz_arena_t *arena)
{
	return new_value(arena, CW_JSON_KIND_OBJECT);
}

kz_value_t *kz_new_array(kz_arena_t *arena)
{
	return new_value(arena, CW_JSON_KIND_ARRAY);
}

kz_value_t *kz_new_string_body(kz_arena_t *arena, const char *body, size_t len)
{
	char *text = kz_alloc(arena, len + 2);
	text[0] = '"';
	memcpy(text + 1, body, len);
	text[len + 1] = '"';
	return kz_new_scalar(arena, CW_JSON_KIND_STRING, text, len + 2);
}

/* Room for one more member or item. */
static void grow(kz_arena_t *arena, kz_value_t *value)
{
	if (value->count < value->cap)
		return;
	size_t cap = value->cap ? value->cap * 2 : 4;
	if (value->kind == CW_JSON_KIND_OBJECT) {
		kz_member_t *members = kz_alloc(arena, cap * sizeof *members);
		if (value->count > 0)
			memcpy(members, value->members, value->count * sizeof *members);
		value->members = members;
	} else {
		kz_value_t **items = kz_alloc(arena, cap * sizeof *items);
		if (value->count > 0)
			memcpy(items, value->items, value->count * sizeof *items);
		value->items = items;
	}
	value->cap = cap;
}

void kz_array_push(kz_arena_t *arena, kz_value_t *array, kz_value_t *item)
{
	kz_array_insert(arena, array, array->count, item);
}

void kz_array_insert(kz_arena_t *arena, kz_value_t *array, size_t at, kz_value_t *item)
{
	grow(arena, array);
	memmove(&array->items[at + 1], &array->items[at], (array->count - at) * sizeof *array->items);
	array->items[at] = item;
	array->count++;
}

void kz_object_append(kz_arena_t *arena, kz_value_t *object, const char *key, size_t key_len,
                      kz_value_t *value)
{
	grow(arena, object);
	object->members[object->count++] = (kz_member_t){key, key_len, value};
}

kz_member_t *kz_object_find(const kz_value_t *object, const char *key, size_t key_len)
{
	for (size_t i = 0; i < object->count; i++) {
		kz_member_t *member = &object->members[i];
		if (member->key_len == key_len && memcmp(member->key, key, key_len) == 0)
			return member;
	}
	return NULL;
}

kz_value_t *kz_copy(kz_arena_t *arena, const kz_value_t *value)
{
	kz_value_t *copy = new_value(arena, value->kind);
	if (value->kind == CW_JSON_KIND_OBJECT) {
		for (size_t i = 0; i < value->count; i++)
			kz_object_append(arena, copy, value->members[i].key, value->members[i].key_len,
			                 kz_copy(arena, value->members[i].value));
	} else if (value->kind == CW_JSON_KIND_ARRAY) {
		for (size_t i = 0; i < value->count; i++)
			kz_array_push(arena, copy, kz_copy(arena, value->items[i]));
	} else {
		copy->text = value->text;
		copy->len = value->len;
	}
	return copy;
}

static int key_cmp(const kz_member_t *a, const kz_member_t *b)
{
	size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
	int c = memcmp(a->key, b->key, n);
	if (c != 0)
		return c;
	return a->key_len < b->key_len ? -1 : a->key_len > b->key_len;
}

void kz_sort_keys(kz_value_t *value)
{
	if (value->kind == CW_JSON_KIND_OBJECT) {
		/* insertion sort: stable, and objects in specs are small */
		for (size_t i = 1; i < value->count; i++) {
			kz_member_t member = value->members[i];
			size_t j = i;
			while (j > 0 && key_cmp(&value->members[j - 1], &member) > 0) {
				value->members[j] = value->members[j - 1];
				j--;
			}
			value->members[j] = member;
		}
		for (size_t i = 0; i < value->count; i++)
			kz_sort_keys(value->members[i].value);
	} else if (value->kind == CW_JSON_KIND_ARRAY) {
		for (size_t i = 0; i < value->count; i++)
			kz_sort_keys(value->items[i]);
	}
}

/* ---- parsing ---- */

static kz_value_t *build(kz_arena_t *arena, cw_json_kind_t kind, const char *span, size_t len,
                         unsigned depth, cw_err_t *err)
{
	if (kind != CW_JSON_KIND_OBJECT && kind != CW_JSON_KIND_ARRAY)
		return kz_new_scalar(arena, kind, span, len);
	if (depth >= CW_JSON_MAX_DEPTH) {
		cw_err_set(err, CW_EINVAL, "kazaam", "document nests deeper than %d levels",
		           CW_JSON_MAX_DEPTH);
		return NULL;
	}
	kz_value_t *value = new_value(arena, kind);
	cw_json_fields_t fields;
	cw_json_fields_init(&fields);
	if (cw_json_fields_parse_nested(&fields, span, err) != 0) {
		cw_json_fields_clear(&fields);
		return NULL;
	}
	for (size_t i = 0; i < fields.len; i++) {
		const cw_json_field_t *field = &fields.items[i];
		kz_value_t *child = build(arena, field->kind, field->value, field->value_len, depth + 1,
		                          err);
		if (child == NULL) {
			value = NULL;
			break;
		}
		if (kind == CW_JSON_KIND_ARRAY) {
			kz_array_push(arena, value, child);
			continue;
		}
		const char *key = field->key_owned ? kz_strndup(arena, field->key, field->key_len)
		                                   : field->key;
		kz_object_append(arena, value, key, field->key_len, child);
	}
	cw_json_fields_clear(&fields);
	return value;
}

kz_value_t *kz_parse(kz_arena_t *arena, const char *text, size_t len, cw_err_t *err)
{
	/* The field reader reads objects: wrap the value in one to read any kind. */
	static const char open[] = "{\"\":", close[] = "\n}";
	char *wrapped = kz_alloc(arena, sizeof open - 1 + len + sizeof close);
	memcpy(wrapped, open, sizeof open - 1);
	memcpy(wrapped + sizeof open - 1, text, len);
	memcpy(wrapped + sizeof open - 1 + len, close, sizeof close);
	if (memchr(text, '\0', len) != NULL) {
		cw_err_set(err, CW_EINVAL, "kazaam", "document is not JSON: it holds a NUL byte");
		return NULL;
	}
	cw_json_fields_t fields;
	cw_json_fields_init(&fields);
	kz_value_t *root = NULL;
	cw_err_t parse_err = {0};
	if (cw_json_fields_parse(&fields, wrapped, &parse_err) != 0 || fields.len != 1) {
		cw_err_set(err, CW_EINVAL, "kazaam", "document is not one JSON value");
		goto cleanup;
	}
	const cw_json_field_t *field = &fields.items[0];
	root = build(arena, field->kind, field->value, field->value_len, 0, &parse_err);
	if (root == NULL)
		cw_err_set(err, CW_EINVAL, "kazaam", "document is not JSON: %s",
		           parse_err.code == CW_EINVAL && strstr(parse_err.message, "deeper") != NULL
		                   ? parse_err.message
		                   : "malformed");
cleanup:
	cw_json_fields_clear(&fields);
	return root;
}

/* ---- writing ---- */

static void write_value(cw_json_t *w, const kz_value_t *value)
{
	switch (value->kind) {
	case CW_JSON_KIND_OBJECT:
		cw_json_object_begin(w, NULL);
		for (size_t i = 0; i < value->count; i++) {
			cw_json_key_len(w, value->members[i].key, value->members[i].key_len, NULL);
			write_value(w, value->members[i].value);
		}
		cw_json_object_end(w, NULL);
		break;
	case CW_JSON_KIND_ARRAY:
		cw_json_array_begin(w, NULL);
		for (size_t i = 0; i < value->count; i++)
			write_value(w, value->items[i]);
		cw_json_array_end(w, NULL);
		break;
	default:
		cw_json_raw(w, value->text, value->len, NULL);
		break;
	}
}

int kz_write(const kz_value_t *value, cw_buf_t *out)
{
	cw_json_t w;
	cw_json_init(&w, out, CW_JSON_DEFAULT);
	if (value->kind == CW_JSON_KIND_OBJECT || value->kind == CW_JSON_KIND_ARRAY) {
		write_value(&w, value);
		return cw_json_finish(&w);
	}
	/* a scalar document (extract may make one) */
	cw_buf_append(out, value->text, value->len);
	return 0;
}

kz_value_t *kz_new_string(kz_arena_t *arena, const char *text, size_t len)
{
	cw_buf_t buf = CW_BUF_INIT;
	cw_json_t w;
	cw_json_init(&w, &buf, CW_JSON_DEFAULT);
	if (cw_json_string_len(&w, text, len, NULL) != 0) {
		/* not UTF-8: keep the bytes valid by escaping nothing but JSON's specials */
		cw_buf_reset(&buf);
		cw_buf_append_char(&buf, '"');
		for (size_t i = 0; i < len; i++) {
			unsigned char c = (unsigned char)text[i];
			if (c == '"' || c == '\\')
				cw_buf_append_char(&buf, '\\');
			if (c < 0x20)
				cw_buf_appendf(&buf, "\\u%04x", c);
			else
				cw_buf_append_char(&buf, (char)c);
		}
		cw_buf_append_char(&buf, '"');
	}
	kz_value_t *value =
		kz_new_scalar(arena, CW_JSON_KIND_STRING, kz_strndup(arena, buf.data, buf.len), buf.len);
	cw_buf_free(&buf);
	return value;
}

bool kz_same_text(const kz_value_t *a, const kz_value_t *b, cw_buf_t *scratch)
{
	if (a->kind != b->kind)
		return false;
	if (a->kind != CW_JSON_KIND_OBJECT && a->kind != CW_JSON_KIND_ARRAY)
		return a->len == b->len && memcmp(a->text, b->text, a->len) == 0;
	cw_buf_reset(scratch);
	kz_write(a, scratch);
	size_t split = scratch->len;
	kz_write(b, scratch);
	return scratch->len - split == split && memcmp(scratch->data, scratch->data + split, split) == 0;
}
