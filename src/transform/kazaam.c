/*
 * This file contains the kazaam spec compiler and the apply entry point
 * (kazaam.h): it reads the spec's JSON once, checks every rule kazaam checks
 * for any document, and keeps paths, formats and values ready to run.
 */
#include "transform/kazaam.h"

#include "core/json.h"
#include "core/json_fields.h"
#include "core/mem.h"
#include "transform/kazaam_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct cw_kazaam {
	kz_arena_t arena;   /* everything below lives here */
	kz_op_t *ops;
	size_t op_count;
};

static const struct {
	const char *name;
	kz_op_kind_t kind;
} op_names[] = {
	{"pass", KZ_OP_PASS},         {"shift", KZ_OP_SHIFT},       {"concat", KZ_OP_CONCAT},
	{"coalesce", KZ_OP_COALESCE}, {"extract", KZ_OP_EXTRACT},   {"default", KZ_OP_DEFAULT},
	{"delete", KZ_OP_DELETE},     {"timestamp", KZ_OP_TIMESTAMP}, {"uuid", KZ_OP_UUID},
};

/* A spec error: the caller prefixes the operation. */
static int bad(cw_err_t *err, const char *fmt, const char *subject)
{
	return cw_err_set(err, CW_EINVAL, "kazaam", fmt, subject);
}

/* A JSON string value decoded into a NUL-terminated copy in arena. */
static const char *decode(kz_arena_t *arena, const kz_value_t *string, size_t *len)
{
	cw_buf_t buf = CW_BUF_INIT;
	cw_json_string_unescape(string->text, string->len, &buf);
	size_t n = buf.len;
	const char *copy = kz_strndup(arena, buf.data != NULL ? buf.data : "", n);
	cw_buf_free(&buf);
	if (len != NULL)
		*len = n;
	return copy;
}

static const char *key_text(kz_arena_t *arena, const kz_member_t *member)
{
	return kz_strndup(arena, member->key, member->key_len);
}

/* The member named key in an operation object, matched as Go matches struct fields (any case). */
static kz_value_t *field(const kz_value_t *object, const char *key)
{
	kz_value_t *found = NULL;
	for (size_t i = 0; i < object->count; i++)
		if (object->members[i].key_len == strlen(key) &&
		    strncasecmp(object->members[i].key, key, strlen(key)) == 0)
			found = object->members[i].value;   /* the last one wins, as in Go */
	return found;
}

/* The member named key in a spec object (exact name), or NULL. */
static kz_value_t *spec_get(const kz_value_t *spec, const char *key)
{
	kz_member_t *member = kz_object_find(spec, key, strlen(key));
	return member != NULL ? member->value : NULL;
}

static bool is_string(const kz_value_t *value)
{
	return value != NULL && value->kind == CW_JSON_KIND_STRING;
}

static int compile_path(kz_arena_t *arena, const kz_op_t *op, const char *text, kz_path_t *path,
                        const char *separator, cw_err_t *err)
{
	(void)op;
	return kz_path_compile(arena, text, separator, path, err);
}

/* shift and coalesce: each key takes a path (shift) or a list of paths. */
static int compile_sources(kz_arena_t *arena, kz_op_t *op, const char *separator, cw_err_t *err)
{
	for (size_t i = 0; i < op->entry_count; i++) {
		kz_entry_t *entry = &op->entries[i];
		const kz_value_t *value = entry->value;
		entry->value = NULL;
		if (value->kind == CW_JSON_KIND_STRING && op->kind == KZ_OP_SHIFT) {
			entry->sources = kz_alloc(arena, sizeof *entry->sources);
			entry->source_count = 1;
			int rc = compile_path(arena, op, decode(arena, value, NULL), &entry->sources[0],
			                      separator, err);
			if (rc != 0)
				return rc;
			continue;
		}
		if (value->kind != CW_JSON_KIND_ARRAY)
			return bad(err,
			           op->kind == KZ_OP_SHIFT ? "key \"%s\" takes a path or a list of paths"
			                                   : "key \"%s\" takes a list of paths",
			           entry->key);
		entry->list = true;
		entry->sources = kz_alloc(arena, (value->count + 1) * sizeof *entry->sources);
		entry->source_count = value->count;
		for (size_t k = 0; k < value->count; k++) {
			if (!is_string(value->items[k]))
				return bad(err, "key \"%s\": every path in its list must be a string",
				           entry->key);
			int rc = compile_path(arena, op, decode(arena, value->items[k], NULL),
			                      &entry->sources[k], separator, err);
			if (rc != 0)
				return rc;
		}
	}
	return 0;
}

static int compile_timestamp(kz_arena_t *arena, kz_entry_t *entry, cw_err_t *err)
{
	const kz_value_t *value = entry->value;
	entry->value = NULL;
	if (value->kind != CW_JSON_KIND_OBJECT)
		return bad(err, "key \"%s\" takes an object with inputFormat and outputFormat",
		           entry->key);
	const kz_value_t *input = spec_get(value, "inputFormat");
	const kz_value_t *output = spec_get(value, "outputFormat");
	if (!is_string(input))
		return bad(err, "key \"%s\": \"inputFormat\" must be a string", entry->key);
	if (!is_string(output))
		return bad(err, "key \"%s\": \"outputFormat\" must be a string", entry->key);
	entry->input_format = decode(arena, input, NULL);
	entry->output_format = decode(arena, output, NULL);
	return 0;
}

static int compile_uuid(kz_arena_t *arena, kz_entry_t *entry, const char *separator,
                        cw_err_t *err)
{
	const kz_value_t *value = entry->value;
	entry->value = NULL;
	if (value->kind != CW_JSON_KIND_OBJECT)
		return bad(err, "key \"%s\" takes an object with a version", entry->key);
	const kz_value_t *version = spec_get(value, "version");
	double number = version != NULL && version->kind == CW_JSON_KIND_NUMBER
	                        ? strtod(kz_strndup(arena, version->text, version->len), NULL)
	                        : 0;
	if (!isfinite(number) || number < 3 || number >= 6)
		return bad(err, "key \"%s\": \"version\" must be 3, 4 or 5", entry->key);
	entry->uuid_version = (int)number;
	if (entry->uuid_version == 4)
		return 0;
	const kz_value_t *names = spec_get(value, "names");
	const kz_value_t *ns = spec_get(value, "namespace");
	if (names == NULL)
		return bad(err, "key \"%s\": version 3 and 5 need \"names\"", entry->key);
	if (!is_string(ns))
		return bad(err, "key \"%s\": \"namespace\" must be a string", entry->key);
	if (names->kind != CW_JSON_KIND_ARRAY)
		return bad(err, "key \"%s\": \"names\" must be a list", entry->key);
	if (!kz_uuid_namespace(decode(arena, ns, NULL), entry->uuid_namespace))
		return bad(err, "key \"%s\": \"namespace\" is not a UUID nor DNS, URL, OID or X500",
		           entry->key);
	entry->names = kz_alloc(arena, (names->count + 1) * sizeof *entry->names);
	entry->name_count = names->count;
	for (size_t i = 0; i < names->count; i++) {
		const kz_value_t *name = names->items[i];
		kz_uuid_name_t *out = &entry->names[i];
		if (name->kind != CW_JSON_KIND_OBJECT)
			return bad(err, "key \"%s\": every name must be an object with a path",
			           entry->key);
		const kz_value_t *path = spec_get(name, "path");
		const kz_value_t *fallback = spec_get(name, "default");
		/* a path that is not a string reads as "" in kazaam */
		int rc = kz_path_compile(arena, is_string(path) ? decode(arena, path, NULL) : "",
		                         separator, &out->path, err);
		if (rc != 0)
			return rc;
		out->fallback = is_string(fallback) ? decode(arena, fallback, &out->fallback_len) : NULL;
	}
	return 0;
}

/* The keyed operations: every key of "spec" is a target path. */
static int compile_entries(kz_arena_t *arena, kz_op_t *op, const kz_value_t *spec,
                           const char *separator, cw_err_t *err)
{
	op->entries = kz_alloc(arena, (spec->count + 1) * sizeof *op->entries);
	op->entry_count = 0;
	for (size_t i = 0; i < spec->count; i++) {
		const kz_member_t *member = &spec->members[i];
		if (op->kind == KZ_OP_COALESCE && member->key_len == 6 &&
		    memcmp(member->key, "ignore", 6) == 0)
			continue;
		kz_entry_t *entry = &op->entries[op->entry_count++];
		memset(entry, 0, sizeof *entry);
		entry->key = key_text(arena, member);
		entry->value = member->value;
		entry->separator = separator;
		int rc = kz_path_compile(arena, entry->key, separator, &entry->target, err);
		if (rc != 0)
			return rc;
		if (op->kind == KZ_OP_DEFAULT)
			kz_sort_keys(entry->value);
		else if (op->kind == KZ_OP_TIMESTAMP)
			rc = compile_timestamp(arena, entry, err);
		else if (op->kind == KZ_OP_UUID)
			rc = compile_uuid(arena, entry, separator, err);
		if (rc != 0)
			return rc;
	}
	if (op->kind == KZ_OP_SHIFT || op->kind == KZ_OP_COALESCE)
		return compile_sources(arena, op, separator, err);
	return 0;
}

static int compile_concat(kz_arena_t *arena, kz_op_t *op, const kz_value_t *spec,
                          const char *separator, cw_err_t *err)
{
	const kz_value_t *sources = spec_get(spec, "sources");
	const kz_value_t *target = spec_get(spec, "targetPath");
	const kz_value_t *delim = spec_get(spec, "delim");
	if (sources == NULL || sources->kind != CW_JSON_KIND_ARRAY)
		return bad(err, "%s needs \"sources\", a list", "concat");
	if (!is_string(target))
		return bad(err, "%s needs \"targetPath\", a string", "concat");
	if (delim != NULL && !is_string(delim))
		return bad(err, "%s: \"delim\" must be a string", "concat");
	if (delim != NULL)
		op->delim = kz_string_body(delim, &op->delim_len);
	else
		op->delim = "";
	int rc = kz_path_compile(arena, decode(arena, target, NULL), separator, &op->path, err);
	if (rc != 0)
		return rc;
	op->concat = kz_alloc(arena, (sources->count + 1) * sizeof *op->concat);
	op->concat_count = sources->count;
	for (size_t i = 0; i < sources->count; i++) {
		const kz_value_t *source = sources->items[i];
		kz_concat_source_t *out = &op->concat[i];
		memset(out, 0, sizeof *out);
		const kz_value_t *value = source->kind == CW_JSON_KIND_OBJECT
		                                  ? spec_get(source, "value") : NULL;
		const kz_value_t *path = source->kind == CW_JSON_KIND_OBJECT
		                                 ? spec_get(source, "path") : NULL;
		if (value != NULL) {
			if (!is_string(value))
				return bad(err, "%s: a source's \"value\" must be a string", "concat");
			out->literal = true;
			out->body = kz_string_body(value, &out->body_len);
		} else if (path != NULL) {
			if (!is_string(path))
				return bad(err, "%s: a source's \"path\" must be a string", "concat");
			rc = kz_path_compile(arena, decode(arena, path, NULL), separator, &out->path, err);
			if (rc != 0)
				return rc;
		} else {
			return bad(err, "%s: every source needs a \"value\" or a \"path\"", "concat");
		}
	}
	return 0;
}

static int compile_list(kz_arena_t *arena, kz_op_t *op, const kz_value_t *spec,
                        const char *separator, cw_err_t *err)
{
	if (op->kind == KZ_OP_EXTRACT) {
		const kz_value_t *path = spec_get(spec, "path");
		if (!is_string(path))
			return bad(err, "%s needs \"path\", a string", "extract");
		return kz_path_compile(arena, decode(arena, path, NULL), separator, &op->path, err);
	}
	const kz_value_t *paths = spec_get(spec, "paths");
	if (paths == NULL || paths->kind != CW_JSON_KIND_ARRAY)
		return bad(err, "%s needs \"paths\", a list of strings", "delete");
	op->paths = kz_alloc(arena, (paths->count + 1) * sizeof *op->paths);
	op->path_count = paths->count;
	for (size_t i = 0; i < paths->count; i++) {
		if (!is_string(paths->items[i]))
			return bad(err, "%s: every path must be a string", "delete");
		int rc = kz_path_compile(arena, decode(arena, paths->items[i], NULL), separator,
		                         &op->paths[i], err);
		if (rc != 0)
			return rc;
		if (op->paths[i].has_all)
			return bad(err, "path \"%s\": [*] is not supported by delete", op->paths[i].text);
	}
	return 0;
}

static int compile_coalesce_ignore(kz_arena_t *arena, kz_op_t *op, const kz_value_t *spec,
                                   cw_err_t *err)
{
	if (op->require)
		return bad(err, "%s does not support \"require\"", "coalesce");
	const kz_value_t *ignore = spec_get(spec, "ignore");
	if (ignore == NULL)
		return 0;
	if (ignore->kind != CW_JSON_KIND_ARRAY)
		return bad(err, "%s: \"ignore\" must be a list", "coalesce");
	op->ignore = kz_alloc(arena, (ignore->count + 1) * sizeof *op->ignore);
	op->ignore_count = ignore->count;
	for (size_t i = 0; i < ignore->count; i++) {
		op->ignore[i] = ignore->items[i];
		kz_sort_keys(op->ignore[i]);
	}
	return 0;
}

/* Reads the optional flags of an operation; CW_EINVAL when one has the wrong type. */
static int read_flags(kz_arena_t *arena, kz_op_t *op, const kz_value_t *object,
                      const char **separator, bool *has_config, cw_err_t *err)
{
	const char *bools[] = {"require", "inplace"};
	bool *targets[] = {&op->require, &op->inplace};
	for (size_t i = 0; i < 2; i++) {
		const kz_value_t *flag = field(object, bools[i]);
		if (flag == NULL)
			continue;
		*has_config = true;
		if (flag->kind == CW_JSON_KIND_TRUE || flag->kind == CW_JSON_KIND_FALSE)
			*targets[i] = flag->kind == CW_JSON_KIND_TRUE;
		else if (flag->kind != CW_JSON_KIND_NULL)
			return bad(err, "\"%s\" must be true or false", bools[i]);
	}
	const kz_value_t *sep = field(object, "keySeparator");
	if (sep != NULL) {
		*has_config = true;
		if (sep->kind != CW_JSON_KIND_STRING && sep->kind != CW_JSON_KIND_NULL)
			return bad(err, "\"%s\" must be a string", "keySeparator");
		if (sep->kind == CW_JSON_KIND_STRING && sep->len > 2)
			*separator = decode(arena, sep, NULL);
	}
	const kz_value_t *over = field(object, "over");
	if (over != NULL && over->kind != CW_JSON_KIND_STRING && over->kind != CW_JSON_KIND_NULL)
		return bad(err, "\"%s\" must be a string", "over");
	if (over != NULL && over->kind == CW_JSON_KIND_STRING) {
		op->has_over = true;
		kz_path_compile_plain(arena, decode(arena, over, NULL), &op->over);
	}
	return 0;
}

static int compile_op(kz_arena_t *arena, kz_op_t *op, const kz_value_t *object, cw_err_t *err)
{
	memset(op, 0, sizeof *op);
	op->name = "?";
	if (object->kind != CW_JSON_KIND_OBJECT)
		return bad(err, "an operation must be an object%s", "");
	const kz_value_t *name = field(object, "operation");
	if (!is_string(name))
		return bad(err, "an operation needs \"operation\", a string%s", "");
	const char *text = decode(arena, name, NULL);
	size_t k = 0;
	while (k < sizeof op_names / sizeof op_names[0] && strcmp(op_names[k].name, text) != 0)
		k++;
	if (k == sizeof op_names / sizeof op_names[0])
		return bad(err, "unknown operation \"%s\"", text);
	op->kind = op_names[k].kind;
	op->name = op_names[k].name;
	const char *separator = ".";
	bool has_config = false;
	int rc = read_flags(arena, op, object, &separator, &has_config, err);
	if (rc != 0)
		return rc;
	const kz_value_t *spec = field(object, "spec");
	if (spec != NULL) {
		has_config = true;
		if (spec->kind != CW_JSON_KIND_OBJECT && spec->kind != CW_JSON_KIND_NULL)
			return bad(err, "\"%s\" must be an object", "spec");
		if (spec->kind == CW_JSON_KIND_OBJECT && spec->count == 0)
			return bad(err, "\"%s\" must hold at least one key", "spec");
		if (spec->kind == CW_JSON_KIND_NULL)
			spec = NULL;
	}
	/* kazaam only reads "over" along with a spec or one of its flags */
	op->has_over = op->has_over && has_config;
	if (op->kind == KZ_OP_PASS)
		return 0;
	if (spec == NULL)
		return bad(err, "%s needs \"spec\", an object", op->name);
	switch (op->kind) {
	case KZ_OP_CONCAT:
		return compile_concat(arena, op, spec, separator, err);
	case KZ_OP_EXTRACT:
	case KZ_OP_DELETE:
		return compile_list(arena, op, spec, separator, err);
	case KZ_OP_COALESCE:
		rc = compile_coalesce_ignore(arena, op, spec, err);
		return rc != 0 ? rc : compile_entries(arena, op, spec, separator, err);
	default:
		return compile_entries(arena, op, spec, separator, err);
	}
}

cw_kazaam_t *cw_kazaam_compile(const char *spec_json, size_t len, cw_err_t *err)
{
	cw_kazaam_t *kazaam = cw_xcalloc(1, sizeof *kazaam);
	kz_arena_t *arena = &kazaam->arena;
	static const char pass[] = "[{\"operation\":\"pass\"}]";
	if (len == 0) {
		spec_json = pass;
		len = sizeof pass - 1;
	}
	cw_err_t parse_err = {0};
	kz_value_t *spec = kz_parse(arena, spec_json, len, &parse_err);
	if (spec == NULL || spec->kind != CW_JSON_KIND_ARRAY) {
		cw_err_set(err, CW_EINVAL, "kazaam", "spec is not a JSON array of operations");
		goto fail;
	}
	kazaam->ops = kz_alloc(arena, (spec->count + 1) * sizeof *kazaam->ops);
	kazaam->op_count = spec->count;
	for (size_t i = 0; i < spec->count; i++) {
		if (compile_op(arena, &kazaam->ops[i], spec->items[i], err) != 0) {
			cw_err_prefix(err, "operation %zu (%s)", i, kazaam->ops[i].name);
			goto fail;
		}
	}
	return kazaam;
fail:
	cw_kazaam_free(kazaam);
	return NULL;
}

void cw_kazaam_free(cw_kazaam_t *kazaam)
{
	if (kazaam == NULL)
		return;
	kz_arena_free(&kazaam->arena);
	free(kazaam);
}

size_t cw_kazaam_operation_count(const cw_kazaam_t *kazaam)
{
	return kazaam->op_count;
}

int cw_kazaam_apply(const cw_kazaam_t *kazaam, const char *doc, size_t len,
                    const cw_kazaam_env_t *env, cw_buf_t *out, cw_err_t *err)
{
	kz_run_t run = {KZ_ARENA_INIT, env, CW_BUF_INIT};
	int rc = 0;
	kz_value_t *root = kz_parse(&run.arena, doc, len, err);
	if (root == NULL) {
		rc = CW_EINVAL;
		goto cleanup;
	}
	for (size_t i = 0; i < kazaam->op_count; i++) {
		const kz_op_t *op = &kazaam->ops[i];
		rc = kz_op_run(&run, op, &root, err);
		if (rc != 0) {
			cw_err_prefix(err, "operation %zu (%s)", i, op->name);
			rc = CW_EINVAL;
			goto cleanup;
		}
	}
	size_t before = out->len;
	rc = kz_write(root, out);
	if (rc != 0) {
		out->len = before;
		if (out->data != NULL)
			out->data[before] = '\0';
		cw_err_set(err, CW_EINVAL, "kazaam",
		           "the transformed document cannot be written as JSON: it nests deeper than "
		           "%d levels",
		           CW_JSON_MAX_DEPTH);
	}
cleanup:
	cw_buf_free(&run.scratch);
	kz_arena_free(&run.arena);
	return rc;
}
