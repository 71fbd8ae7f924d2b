/*
 * This file contains kazaam's paths (kazaam_internal.h): how a path text
 * becomes steps, and the get, set and delete rules kazaam applies to JSON
 * text, applied here to the value tree.
 */
#include "transform/kazaam_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Padding an array with nulls up to an index stops here, so a typo cannot exhaust memory. */
#define KZ_MAX_PAD 100000

/*
 * Go's strconv.Atoi: an optional sign, then decimal digits, within int64.
 * Returns false when text is not such a number.
 */
static bool go_atoi(const char *text, size_t len, int64_t *out)
{
	size_t i = 0;
	bool negative = false;
	if (len > 0 && (text[0] == '+' || text[0] == '-')) {
		negative = text[0] == '-';
		i = 1;
	}
	if (i == len)
		return false;
	uint64_t value = 0;
	for (; i < len; i++) {
		if (text[i] < '0' || text[i] > '9')
			return false;
		unsigned digit = (unsigned)(text[i] - '0');
		if (value > (UINT64_MAX - digit) / 10)
			return false;
		value = value * 10 + digit;
	}
	if (value > (uint64_t)INT64_MAX + (negative ? 1u : 0u))
		return false;
	*out = negative ? (int64_t)(0 - value) : (int64_t)value;
	return true;
}

/* An index text: *, +, - or a non-negative integer. */
static bool index_step(const char *text, size_t len, kz_step_t *step)
{
	int64_t index;
	if (len == 1 && text[0] == '*') {
		step->kind = KZ_STEP_ALL;
	} else if (len == 1 && text[0] == '+') {
		step->kind = KZ_STEP_APPEND;
	} else if (len == 1 && text[0] == '-') {
		step->kind = KZ_STEP_PREPEND;
	} else if (go_atoi(text, len, &index) && index >= 0) {
		step->kind = KZ_STEP_INDEX;
		step->index = (size_t)index;
	} else {
		return false;
	}
	return true;
}

/*
 * The first "key[index]" in a segment, as kazaam's pattern
 * ([^\[\]]+)\[(.*?)\] finds it: a run of characters other than brackets,
 * then '[', then anything up to the first ']' on the same line.
 */
static bool find_key_index(const char *seg, size_t len, size_t *key_at, size_t *key_len,
                           size_t *index_at, size_t *index_len)
{
	size_t i = 0;
	while (i < len) {
		if (seg[i] == '[' || seg[i] == ']') {
			i++;
			continue;
		}
		size_t start = i;
		while (i < len && seg[i] != '[' && seg[i] != ']')
			i++;
		if (i == len || seg[i] != '[')
			continue;
		size_t close = i + 1;
		while (close < len && seg[close] != ']' && seg[close] != '\n')
			close++;
		if (close < len && seg[close] == ']') {
			*key_at = start;
			*key_len = i - start;
			*index_at = i + 1;
			*index_len = close - i - 1;
			return true;
		}
	}
	return false;
}

static void push_step(kz_arena_t *arena, kz_path_t *path, size_t *cap, kz_step_t step)
{
	if (path->count == *cap) {
		size_t grown = *cap ? *cap * 2 : 4;
		kz_step_t *steps = kz_alloc(arena, grown * sizeof *steps);
		if (path->count > 0)
			memcpy(steps, path->steps, path->count * sizeof *steps);
		path->steps = steps;
		*cap = grown;
	}
	path->steps[path->count++] = step;
	if (step.kind == KZ_STEP_ALL)
		path->has_all = true;
}

/* A segment "[i]" on its own: an index when i is one, else a plain key. */
static kz_step_t literal_step(const char *seg, size_t len)
{
	kz_step_t step = {KZ_STEP_KEY, seg, len, 0};
	if (len >= 2 && seg[0] == '[' && seg[len - 1] == ']') {
		kz_step_t index = step;
		if (index_step(seg + 1, len - 2, &index) && index.kind != KZ_STEP_ALL)
			return index;
	}
	return step;
}

int kz_path_compile(kz_arena_t *arena, const char *text, const char *separator,
                    kz_path_t *path, cw_err_t *err)
{
	memset(path, 0, sizeof *path);
	path->text = text;
	path->whole = strcmp(text, "$") == 0;
	size_t cap = 0, sep_len = strlen(separator);
	const char *seg = text;
	for (;;) {
		const char *end = sep_len > 0 ? strstr(seg, separator) : NULL;
		size_t len = end != NULL ? (size_t)(end - seg) : strlen(seg);
		size_t key_at, key_len, index_at, index_len;
		if (find_key_index(seg, len, &key_at, &key_len, &index_at, &index_len)) {
			kz_step_t index = {KZ_STEP_KEY, NULL, 0, 0};
			if (!index_step(seg + index_at, index_len, &index))
				return cw_err_set(err, CW_EINVAL, "kazaam",
				                  "path \"%s\": index \"%.*s\" is not a non-negative integer, "
				                  "*, + or -",
				                  text, (int)index_len, seg + index_at);
			push_step(arena, path, &cap, (kz_step_t){KZ_STEP_KEY, seg + key_at, key_len, 0});
			push_step(arena, path, &cap, index);
		} else {
			push_step(arena, path, &cap, literal_step(seg, len));
		}
		if (end == NULL)
			break;
		seg = end + sep_len;
	}
	return 0;
}

void kz_path_compile_plain(kz_arena_t *arena, const char *text, kz_path_t *path)
{
	memset(path, 0, sizeof *path);
	path->text = text;
	size_t cap = 0;
	const char *seg = text;
	for (;;) {
		const char *end = strchr(seg, '.');
		size_t len = end != NULL ? (size_t)(end - seg) : strlen(seg);
		push_step(arena, path, &cap, literal_step(seg, len));
		if (end == NULL)
			break;
		seg = end + 1;
	}
}

/* The slot holding the child a step names, or NULL when there is none. */
static kz_value_t **child_slot(kz_value_t *value, const kz_step_t *step)
{
	if (value == NULL)
		return NULL;
	if (step->kind == KZ_STEP_KEY && value->kind == CW_JSON_KIND_OBJECT) {
		kz_member_t *member = kz_object_find(value, step->key, step->key_len);
		return member != NULL ? &member->value : NULL;
	}
	if (step->kind == KZ_STEP_INDEX && value->kind == CW_JSON_KIND_ARRAY &&
	    step->index < value->count)
		return &value->items[step->index];
	return NULL;
}

static kz_value_t *step_into(kz_value_t *value, const kz_step_t *step)
{
	kz_value_t **slot = child_slot(value, step);
	return slot != NULL ? *slot : NULL;
}

static int not_found(const kz_path_t *path, cw_err_t *err)
{
	return cw_err_set(err, CW_ENOTFOUND, "kazaam", "path \"%s\" does not exist", path->text);
}

static int not_array(const kz_path_t *path, cw_err_t *err)
{
	return cw_err_set(err, CW_EINVAL, "kazaam", "path \"%s\": [*] names a value that is not an array",
	                  path->text);
}

static int get_steps(kz_arena_t *arena, kz_value_t *value, const kz_path_t *path,
                     const kz_step_t *steps, size_t count, bool required, kz_value_t **out,
                     cw_err_t *err)
{
	for (size_t i = 0; i < count; i++) {
		if (steps[i].kind != KZ_STEP_ALL) {
			value = step_into(value, &steps[i]);
			continue;
		}
		if (value == NULL) {
			/* kazaam reads a wildcard under a missing key as an empty array */
			if (required)
				return not_found(path, err);
			*out = kz_new_array(arena);
			return 0;
		}
		if (value->kind != CW_JSON_KIND_ARRAY)
			return not_array(path, err);
		kz_value_t *result = kz_new_array(arena);
		for (size_t k = 0; k < value->count; k++) {
			kz_value_t *item = NULL;
			int rc = get_steps(arena, value->items[k], path, steps + i + 1, count - i - 1,
			                   required, &item, err);
			if (rc != 0)
				return rc;
			kz_array_push(arena, result, item != NULL ? item : kz_new_null(arena));
		}
		*out = result;
		return 0;
	}
	if (value == NULL && required)
		return not_found(path, err);
	*out = value;
	return 0;
}

int kz_path_get(kz_arena_t *arena, kz_value_t *root, const kz_path_t *path, bool required,
                kz_value_t **out, cw_err_t *err)
{
	*out = NULL;
	return get_steps(arena, root, path, path->steps, path->count, required, out, err);
}

/* The value the steps would create around value where nothing exists yet. */
static kz_value_t *build(kz_arena_t *arena, const kz_step_t *steps, size_t count,
                         kz_value_t *value)
{
	for (size_t i = count; i-- > 0;) {
		kz_value_t *outer;
		if (steps[i].kind == KZ_STEP_KEY) {
			outer = kz_new_object(arena);
			kz_object_append(arena, outer, steps[i].key, steps[i].key_len, value);
		} else {
			outer = kz_new_array(arena);
			if (steps[i].kind == KZ_STEP_INDEX)
				for (size_t k = 0; k < steps[i].index; k++)
					kz_array_push(arena, outer, kz_new_null(arena));
			kz_array_push(arena, outer, value);
		}
		value = outer;
	}
	return value;
}

static bool too_far(const kz_step_t *steps, size_t count, size_t from)
{
	for (size_t i = 0; i < count; i++)
		if (steps[i].kind == KZ_STEP_INDEX && steps[i].index > from + KZ_MAX_PAD)
			return true;
	return false;
}

static int set_plain(kz_arena_t *arena, kz_value_t **root, const kz_path_t *path,
                     const kz_step_t *steps, size_t count, kz_value_t *value, cw_err_t *err)
{
	kz_value_t **slot = root;
	size_t depth = 0;
	for (; depth < count; depth++) {
		kz_value_t **child = child_slot(*slot, &steps[depth]);
		if (child == NULL)
			break;
		slot = child;
	}
	if (depth == count) {
		*slot = value;
		return 0;
	}
	kz_value_t *parent = *slot;
	const kz_step_t *step = &steps[depth];
	size_t have = parent->kind == CW_JSON_KIND_ARRAY ? parent->count : 0;
	if (too_far(steps + depth, count - depth, have))
		return cw_err_set(err, CW_EINVAL, "kazaam",
		                  "path \"%s\": an index more than %d past the end of its array",
		                  path->text, KZ_MAX_PAD);
	kz_value_t *rest = build(arena, step + 1, count - depth - 1, value);
	if (depth == 0) {
		/* kazaam adds a top-level key to an object only */
		if (parent->kind != CW_JSON_KIND_OBJECT || step->kind != KZ_STEP_KEY)
			return cw_err_set(err, CW_EINVAL, "kazaam",
			                  "path \"%s\" cannot be set: the document is not an object "
			                  "with that key",
			                  path->text);
		kz_object_append(arena, parent, step->key, step->key_len, rest);
		return 0;
	}
	if (parent->kind == CW_JSON_KIND_OBJECT && parent->count > 0 && step->kind == KZ_STEP_KEY) {
		kz_object_append(arena, parent, step->key, step->key_len, rest);
	} else if (parent->kind == CW_JSON_KIND_ARRAY && parent->count > 0 &&
	           step->kind != KZ_STEP_KEY) {
		if (step->kind == KZ_STEP_PREPEND) {
			kz_array_insert(arena, parent, 0, rest);
			return 0;
		}
		if (step->kind == KZ_STEP_INDEX)
			while (parent->count < step->index)
				kz_array_push(arena, parent, kz_new_null(arena));
		kz_array_push(arena, parent, rest);
	} else {
		/* an empty object or array, a scalar, or a container of the other kind */
		*slot = build(arena, step, 1, rest);
	}
	return 0;
}

static int set_steps(kz_arena_t *arena, kz_value_t **root, const kz_path_t *path,
                     kz_step_t *steps, size_t count, kz_value_t *value, cw_err_t *err)
{
	size_t all = 0;
	while (all < count && steps[all].kind != KZ_STEP_ALL)
		all++;
	if (all == count)
		return set_plain(arena, root, path, steps, count, value, err);
	kz_value_t *array = *root;
	for (size_t i = 0; i < all; i++)
		array = step_into(array, &steps[i]);
	if (array == NULL)
		return cw_err_set(err, CW_EINVAL, "kazaam",
		                  "path \"%s\" cannot be set: [*] names an array that does not exist",
		                  path->text);
	if (array->kind != CW_JSON_KIND_ARRAY)
		return not_array(path, err);
	size_t elements = array->count;
	int rc = 0;
	for (size_t k = 0; k < elements && rc == 0; k++) {
		steps[all] = (kz_step_t){KZ_STEP_INDEX, NULL, 0, k};
		rc = set_steps(arena, root, path, steps, count, kz_copy(arena, value), err);
	}
	steps[all] = (kz_step_t){KZ_STEP_ALL, NULL, 0, 0};
	return rc;
}

int kz_path_set(kz_arena_t *arena, kz_value_t **root, const kz_path_t *path, kz_value_t *value,
                cw_err_t *err)
{
	if (arena->total > KZ_MAX_ARENA_BYTES)
		return cw_err_set(err, CW_EINVAL, "kazaam",
		                  "path \"%s\": the document grows past %zu MiB while it is transformed",
		                  path->text, KZ_MAX_ARENA_BYTES >> 20);
	if (!path->has_all)
		return set_plain(arena, root, path, path->steps, path->count, value, err);
	/* wildcards are replaced by each index in turn: work on a copy of the steps */
	kz_step_t *steps = kz_alloc(arena, path->count * sizeof *steps);
	memcpy(steps, path->steps, path->count * sizeof *steps);
	return set_steps(arena, root, path, steps, path->count, value, err);
}

int kz_path_delete(kz_value_t *root, const kz_path_t *path, bool required, cw_err_t *err)
{
	kz_value_t *parent = root;
	for (size_t i = 0; i + 1 < path->count; i++)
		parent = step_into(parent, &path->steps[i]);
	const kz_step_t *last = &path->steps[path->count - 1];
	kz_value_t **slot = child_slot(parent, last);
	if (slot == NULL)
		return required ? not_found(path, err) : 0;
	size_t at = parent->kind == CW_JSON_KIND_OBJECT
	                    ? (size_t)((kz_member_t *)((char *)slot - offsetof(kz_member_t, value)) -
	                               parent->members)
	                    : (size_t)(slot - parent->items);
	if (parent->kind == CW_JSON_KIND_OBJECT)
		memmove(&parent->members[at], &parent->members[at + 1],
		        (parent->count - at - 1) * sizeof *parent->members);
	else
		memmove(&parent->items[at], &parent->items[at + 1],
		        (parent->count - at - 1) * sizeof *parent->items);
	parent->count--;
	return 0;
}
