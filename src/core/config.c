/*
 * This file contains the configuration loader (config.h): the YAML walk
 * driven by the key table, the environment overrides, and the checks that
 * need more than one key. Every value remembers where it came from (file
 * position or environment variable) so each error can say so.
 */
#include "core/config.h"

#include "core/config_keys.h"
#include "core/mem.h"
#include "core/sha256.h"
#include "core/units.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define DOMAIN "config"
#define MAX_ERRORS 50
#define MAX_NODES 200000
#define MAX_FILE_BYTES (16 << 20)
#define ENV_PREFIX "CACHEWARP_"

/* Where a value (or a mapping) came from. */
typedef struct origin {
	char *path;     /* owned; concrete path: "sources[0].url", "sources[0]", "" for the top */
	char *env;      /* owned; the environment variable that set it, or NULL */
	int line;       /* 1-based position in the file, when env is NULL */
	int column;
	bool empty;     /* the key is there without a value (key: or key: ~) */
	bool broken;    /* a list item that is not a mapping: not checked further */
} origin_t;

typedef struct loader {
	const char *name;          /* file name for messages */
	cw_config_t *config;
	yaml_document_t *doc;
	origin_t *origins;         /* in the order they were recorded */
	size_t norigins;
	size_t *slots;             /* hash of path -> index + 1 into origins (latest wins), 0 = empty */
	size_t nslots;
	size_t nodes;              /* YAML nodes visited, at most MAX_NODES */
	size_t nerrors;
	char **error_paths;        /* owned; the key of each error reported about one */
	size_t nerror_paths;
	cw_err_t *err;             /* receives the first error */
	cw_buf_t *errors;          /* receives every error, may be NULL */
} loader_t;

static size_t hash_path(const char *path)
{
	size_t h = 1469598103934665603u;
	for (; *path; path++)
		h = (h ^ (unsigned char)*path) * 1099511628211u;
	return h;
}

/* The slot of path: where its index is, or the empty slot where it goes. */
static size_t *origin_slot(loader_t *ld, const char *path)
{
	size_t mask = ld->nslots - 1;
	for (size_t i = hash_path(path) & mask;; i = (i + 1) & mask) {
		size_t index = ld->slots[i];
		if (index == 0 || strcmp(ld->origins[index - 1].path, path) == 0)
			return &ld->slots[i];
	}
}

static void origins_rehash(loader_t *ld)
{
	free(ld->slots);
	ld->nslots = ld->nslots ? ld->nslots * 2 : 64;
	ld->slots = cw_xcalloc(ld->nslots, sizeof *ld->slots);
	for (size_t i = 0; i < ld->norigins; i++)
		*origin_slot(ld, ld->origins[i].path) = i + 1;
}

/* Records where path came from: a YAML node (env NULL) or an environment variable. */
static origin_t *add_origin(loader_t *ld, const char *path, const yaml_node_t *node, const char *env)
{
	if ((ld->norigins + 1) * 2 > ld->nslots)
		origins_rehash(ld);
	ld->origins = cw_xrealloc(ld->origins, (ld->norigins + 1) * sizeof *ld->origins);
	origin_t *o = &ld->origins[ld->norigins++];
	*o = (origin_t){cw_xstrdup(path), cw_xstrdup(env), 1, 1, false, false};
	if (node) {
		o->line = (int)node->start_mark.line + 1;
		o->column = (int)node->start_mark.column + 1;
	}
	*origin_slot(ld, path) = ld->norigins;
	return o;
}

static const origin_t *find_exact(loader_t *ld, const char *path)
{
	if (ld->nslots == 0)
		return NULL;
	size_t index = *origin_slot(ld, path);
	return index ? &ld->origins[index - 1] : NULL;
}

/* The origin of path, or of its nearest ancestor ("sources[0]", then "sources", then ""). */
static const origin_t *find_origin(loader_t *ld, const char *path)
{
	char *p = cw_xstrdup(path);
	const origin_t *o = NULL;
	while ((o = find_exact(ld, p)) == NULL && p[0] != '\0') {
		char *cut = strrchr(p, p[strlen(p) - 1] == ']' ? '[' : '.');
		*(cut ? cut : p) = '\0';
	}
	free(p);
	return o;
}

/* Formats and records one error: "<where>: key "<path>": <message>". */
static void vreport(loader_t *ld, const origin_t *o, const char *path, const char *fmt, va_list ap)
{
	char message[CW_ERR_MESSAGE_LEN];
	cw_buf_t line = CW_BUF_INIT;
	if (o != NULL && o->env != NULL)
		cw_buf_appendf(&line, "environment variable %s: ", o->env);
	else
		cw_buf_appendf(&line, "%s:%d:%d: ", ld->name, o ? o->line : 1, o ? o->column : 1);
	if (path != NULL) {
		cw_buf_append_str(&line, "key ");
		cw_config_quote(&line, path);
		cw_buf_append_str(&line, ": ");
	}
	vsnprintf(message, sizeof message, fmt, ap);
	cw_buf_append_str(&line, message);
	if (path != NULL) {
		ld->error_paths = cw_xrealloc(ld->error_paths,
		                              (ld->nerror_paths + 1) * sizeof *ld->error_paths);
		ld->error_paths[ld->nerror_paths++] = cw_xstrdup(path);
	}
	if (++ld->nerrors == 1)
		cw_err_set(ld->err, CW_EINVAL, DOMAIN, "%s", cw_buf_cstr(&line));
	if (ld->errors != NULL && ld->nerrors <= MAX_ERRORS)
		cw_buf_appendf(ld->errors, "%s\n", cw_buf_cstr(&line));
	else if (ld->errors != NULL && ld->nerrors == MAX_ERRORS + 1)
		cw_buf_appendf(ld->errors, "%s: more errors follow; fix these first\n", ld->name);
	cw_buf_free(&line);
}

/*
 * Whether an error was reported about path or a key below it ("sources[0]"
 * covers "sources[0].type"), so checks across keys skip values that are
 * wrong or missing rather than report a second, misleading error.
 */
static bool has_error(const loader_t *ld, const char *path)
{
	size_t len = strlen(path);
	for (size_t i = 0; i < ld->nerror_paths; i++) {
		const char *p = ld->error_paths[i];
		if (strncmp(p, path, len) == 0 && (p[len] == '\0' || p[len] == '.' || p[len] == '['))
			return true;
	}
	return false;
}

/* An error about path at a YAML node's position. */
__attribute__((format(printf, 4, 5)))
static void report_node(loader_t *ld, const yaml_node_t *node, const char *path, const char *fmt, ...)
{
	origin_t o = {NULL, NULL, (int)node->start_mark.line + 1, (int)node->start_mark.column + 1,
	              false, false};
	va_list ap;
	va_start(ap, fmt);
	vreport(ld, &o, path, fmt, ap);
	va_end(ap);
}

/* An error about path where it (or its nearest ancestor) came from. */
__attribute__((format(printf, 3, 4)))
static void report(loader_t *ld, const char *path, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport(ld, find_origin(ld, path), path, fmt, ap);
	va_end(ap);
}

/* An error about an environment variable; path may be NULL. */
__attribute__((format(printf, 4, 5)))
static void report_env(loader_t *ld, const char *env, const char *path, const char *fmt, ...)
{
	origin_t o = {NULL, (char *)env, 0, 0, false, false};
	va_list ap;
	va_start(ap, fmt);
	vreport(ld, &o, path, fmt, ap);
	va_end(ap);
}

/* ---- the YAML walk ---------------------------------------------------- */

static yaml_node_t *node_at(loader_t *ld, int index)
{
	return yaml_document_get_node(ld->doc, index);
}

static const char *scalar_text(const yaml_node_t *node)
{
	return (const char *)node->data.scalar.value;
}

static bool scalar_has_nul(const yaml_node_t *node)
{
	return strlen(scalar_text(node)) != node->data.scalar.length;
}

/* A plain empty, ~ or null scalar: the key is present without a value. */
static bool is_null(const yaml_node_t *node)
{
	if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	const char *text = scalar_text(node);
	return text[0] == '\0' || strcmp(text, "~") == 0 || strcmp(text, "null") == 0 ||
	       strcmp(text, "Null") == 0 || strcmp(text, "NULL") == 0;
}

/* Describes a node for "got ...": a mapping, a list, or the quoted scalar. */
static void describe_node(const yaml_node_t *node, cw_buf_t *out)
{
	if (node->type == YAML_MAPPING_NODE)
		cw_buf_append_str(out, "a mapping");
	else if (node->type == YAML_SEQUENCE_NODE)
		cw_buf_append_str(out, "a list");
	else
		cw_config_quote(out, scalar_text(node));
}

static void report_wrong_node(loader_t *ld, const yaml_node_t *node, const char *path,
                              const char *expected)
{
	cw_buf_t got = CW_BUF_INIT;
	describe_node(node, &got);
	report_node(ld, node, path, "wrong type: expected %s, got %s", expected, cw_buf_cstr(&got));
	cw_buf_free(&got);
}

/* Counts a visited node; false (once reported) when the document is too large. */
static bool visit(loader_t *ld, const yaml_node_t *node)
{
	if (++ld->nodes == MAX_NODES + 1)
		report_node(ld, node, NULL, "the document is too large (more than %d values)", MAX_NODES);
	return ld->nodes <= MAX_NODES;
}

static void report_unknown_key(loader_t *ld, const yaml_node_t *key_node, const char *scope,
                               const char *path, const char *leaf)
{
	size_t nkeys, n = 0, scope_len = strlen(scope);
	const cw_config_key_t *keys = cw_config_keys(&nkeys);
	const char **names = cw_xcalloc(nkeys, sizeof *names);
	for (size_t i = 0; i < nkeys; i++) {
		size_t parent = cw_config_key_parent_len(&keys[i]);
		if (parent + (parent > 0) == scope_len && strncmp(keys[i].path, scope, parent) == 0)
			names[n++] = cw_config_key_leaf(&keys[i]);
	}
	const char *guess = cw_config_closest(leaf, names, n);
	if (guess != NULL) {
		report_node(ld, key_node, path, "unknown key (did you mean \"%s\"?)", guess);
	} else {
		cw_buf_t known = CW_BUF_INIT;
		cw_config_join(&known, names, n);
		report_node(ld, key_node, path, "unknown key (known keys here: %s)", cw_buf_cstr(&known));
		cw_buf_free(&known);
	}
	free(names);
}

static void walk_mapping(loader_t *ld, const yaml_node_t *map, const char *scope, const char *at,
                         void *base);

/*
 * A list the file writes as a mapping keyed by name (CW_KEY_BY_NAME): each
 * "name: {keys}" pair is an item whose name is the pair's key, at the
 * concrete path list[index] like any list item.
 */
static void walk_named(loader_t *ld, const cw_config_key_t *key, const yaml_node_t *map,
                       const char *path, void *base)
{
	if (map->type != YAML_MAPPING_NODE) {
		report_wrong_node(ld, map, path, "a mapping keyed by name (\"NAME: {...}\")");
		return;
	}
	char *scope = cw_xasprintf("%s[].", key->path);
	char *name_pattern = cw_xasprintf("%sname", scope);
	const cw_config_key_t *name_key = cw_config_key_find(name_pattern, strlen(name_pattern));
	size_t index = 0;
	for (yaml_node_pair_t *pair = map->data.mapping.pairs.start; pair < map->data.mapping.pairs.top;
	     pair++, index++) {
		const yaml_node_t *name_node = node_at(ld, pair->key);
		const yaml_node_t *item_node = node_at(ld, pair->value);
		if (name_node == NULL || item_node == NULL || !visit(ld, name_node) ||
		    !visit(ld, item_node))
			break;
		if (index == key->max_items) {
			report_node(ld, name_node, path, "too many items (the limit is %zu)", key->max_items);
			break;
		}
		char *item_path = cw_xasprintf("%s[%zu]", path, index);
		char *name_path = cw_xasprintf("%s.name", item_path);
		void *item = cw_config_list_append(key, base);
		origin_t *o = add_origin(ld, item_path, name_node, NULL);
		add_origin(ld, name_path, name_node, NULL);
		cw_err_t why;
		if (name_node->type != YAML_SCALAR_NODE || scalar_has_nul(name_node))
			report_wrong_node(ld, name_node, name_path, "a name");
		else if (cw_config_key_set(name_key, item, scalar_text(name_node), &why) != 0)
			report_node(ld, name_node, name_path, "%s", why.message);
		if (item_node->type != YAML_MAPPING_NODE) {
			o->broken = true;
			report_wrong_node(ld, item_node, item_path, "a mapping of keys");
		} else {
			char *at = cw_xasprintf("%s.", item_path);
			walk_mapping(ld, item_node, scope, at, item);
			free(at);
		}
		free(name_path);
		free(item_path);
	}
	free(name_pattern);
	free(scope);
}

static void walk_list(loader_t *ld, const cw_config_key_t *key, const yaml_node_t *seq,
                      const char *path, void *base)
{
	if (seq->type == YAML_SCALAR_NODE && strcmp(key->path, "entities[].columns") == 0 &&
	    strcmp(scalar_text(seq), "auto") == 0)
		return;
	if (key->flags & CW_KEY_BY_NAME) {
		walk_named(ld, key, seq, path, base);
		return;
	}
	if (seq->type != YAML_SEQUENCE_NODE) {
		report_wrong_node(ld, seq, path, "a list of mappings (\"- name: ...\" items)");
		return;
	}
	char *scope = cw_xasprintf("%s[].", key->path);
	size_t index = 0;
	for (yaml_node_item_t *it = seq->data.sequence.items.start;
	     it < seq->data.sequence.items.top; it++, index++) {
		const yaml_node_t *item_node = node_at(ld, *it);
		if (item_node == NULL || !visit(ld, item_node))
			break;
		if (index == key->max_items) {
			report_node(ld, item_node, path, "too many items (the limit is %zu)", key->max_items);
			break;
		}
		char *item_path = cw_xasprintf("%s[%zu]", path, index);
		void *item = cw_config_list_append(key, base);
		origin_t *o = add_origin(ld, item_path, item_node, NULL);
		if (item_node->type != YAML_MAPPING_NODE) {
			o->broken = true;
			report_wrong_node(ld, item_node, item_path, "a mapping of keys");
		} else {
			char *at = cw_xasprintf("%s.", item_path);
			walk_mapping(ld, item_node, scope, at, item);
			free(at);
		}
		free(item_path);
	}
	free(scope);
}

static void walk_scalar(loader_t *ld, const cw_config_key_t *key, const yaml_node_t *value,
                        const char *path, void *base)
{
	static const char *const expected[] = {
		[CW_KEY_STRING] = "a string", [CW_KEY_INT] = "an integer",
		[CW_KEY_FLOAT] = "a number",  [CW_KEY_DURATION] = "a duration such as 250ms, 5s or 10m",
		[CW_KEY_SIZE] = "a size such as 512KiB or 64MiB", [CW_KEY_ENUM] = "one of its values",
		[CW_KEY_COLUMN_TYPE] = "a column type", [CW_KEY_URL] = "a url",
		[CW_KEY_SECRET] = "a string", [CW_KEY_WORDS] = "a list such as [a, b]",
	};
	cw_err_t why;
	if (value->type != YAML_SCALAR_NODE)
		report_wrong_node(ld, value, path, expected[key->kind]);
	else if (scalar_has_nul(value))
		report_node(ld, value, path, "invalid value: it holds a NUL character");
	else if (cw_config_key_set(key, base, scalar_text(value), &why) != 0)
		report_node(ld, value, path, "%s", why.message);
}

/* A WORDS value written as a sequence: each item a word, checked at its own position. */
static void walk_words(loader_t *ld, const cw_config_key_t *key, const yaml_node_t *seq,
                       const char *path, void *base)
{
	cw_buf_t joined = CW_BUF_INIT;
	bool ok = true;
	cw_err_t why;
	for (yaml_node_item_t *it = seq->data.sequence.items.start;
	     it < seq->data.sequence.items.top; it++) {
		const yaml_node_t *item = node_at(ld, *it);
		if (item == NULL || !visit(ld, item))
			return;
		if (item->type != YAML_SCALAR_NODE || scalar_has_nul(item)) {
			report_wrong_node(ld, item, path, "a list of words");
			ok = false;
		} else if (cw_config_word_check(key, scalar_text(item), &why) != 0) {
			report_node(ld, item, path, "%s", why.message);
			ok = false;
		} else {
			cw_buf_appendf(&joined, "%s%s", joined.len > 0 ? "," : "", scalar_text(item));
		}
	}
	if (ok && cw_config_key_set(key, base, cw_buf_cstr(&joined), &why) != 0)
		report_node(ld, seq, path, "%s", why.message);
	cw_buf_free(&joined);
}

/*
 * Handles one "name: value" pair of a mapping at scope (pattern) / at
 * (concrete). A second pair with the same key finds the first one's origin.
 */
static void walk_pair(loader_t *ld, const yaml_node_t *key_node, const yaml_node_t *value,
                      const char *scope, const char *at, void *base)
{
	const char *leaf = scalar_text(key_node);
	char *pattern = cw_xasprintf("%s%s", scope, leaf);
	char *path = cw_xasprintf("%s%s", at, leaf);
	const cw_config_key_t *key = cw_config_key_find(pattern, strlen(pattern));
	const origin_t *earlier = key ? find_exact(ld, path) : NULL;
	if (key == NULL || scalar_has_nul(key_node)) {
		report_unknown_key(ld, key_node, scope, path, leaf);
	} else if (earlier != NULL) {
		report_node(ld, key_node, path, "duplicate key (first given at line %d)", earlier->line);
	} else if (is_null(value)) {
		add_origin(ld, path, value, NULL)->empty = true;
	} else {
		add_origin(ld, path, value, NULL);
		if (key->kind == CW_KEY_GROUP && value->type != YAML_MAPPING_NODE) {
			report_wrong_node(ld, value, path, "a mapping of keys");
		} else if (key->kind == CW_KEY_GROUP) {
			char *child_scope = cw_xasprintf("%s.", pattern);
			char *child_at = cw_xasprintf("%s.", path);
			walk_mapping(ld, value, child_scope, child_at, base);
			free(child_scope);
			free(child_at);
		} else if (key->kind == CW_KEY_LIST) {
			walk_list(ld, key, value, path, base);
		} else if (key->kind == CW_KEY_WORDS && value->type == YAML_SEQUENCE_NODE) {
			walk_words(ld, key, value, path, base);
		} else {
			walk_scalar(ld, key, value, path, base);
		}
	}
	free(pattern);
	free(path);
}

static void walk_mapping(loader_t *ld, const yaml_node_t *map, const char *scope, const char *at,
                         void *base)
{
	for (yaml_node_pair_t *pair = map->data.mapping.pairs.start; pair < map->data.mapping.pairs.top;
	     pair++) {
		const yaml_node_t *key_node = node_at(ld, pair->key);
		const yaml_node_t *value = node_at(ld, pair->value);
		if (key_node == NULL || value == NULL || !visit(ld, key_node) || !visit(ld, value))
			return;
		if (key_node->type == YAML_SCALAR_NODE) {
			walk_pair(ld, key_node, value, scope, at, base);
		} else {
			cw_buf_t got = CW_BUF_INIT;
			describe_node(key_node, &got);
			report_node(ld, key_node, NULL, "a key must be a name, not %s", cw_buf_cstr(&got));
			cw_buf_free(&got);
		}
	}
}

/* ---- the environment -------------------------------------------------- */

/* "sources" -> "the file has 2 sources" context for an index past the end. */
static void report_missing_item(loader_t *ld, const char *env, const char *path,
                                const cw_config_key_t *list, size_t index, size_t count)
{
	report_env(ld, env, path,
	           "%s item %zu does not exist: there %s %zu (the environment can change items the "
	           "file has, not add new ones)",
	           list->path, index, count == 1 ? "is" : "are", count);
}

/*
 * Finds the struct holding key's value for the list indexes given by an
 * environment variable and writes the concrete path. NULL (reported) when an
 * index is past the end of its list.
 */
static void *env_base(loader_t *ld, const char *env, const cw_config_key_t *key,
                      const size_t *indexes, size_t nindexes, cw_buf_t *path)
{
	void *base = ld->config;
	const char *p = key->path;
	for (size_t level = 0; level < nindexes; level++) {
		const char *brackets = strstr(p, "[]");
		const cw_config_key_t *list = cw_config_key_find(key->path, (size_t)(brackets - key->path));
		cw_buf_append(path, p, (size_t)(brackets - p));
		cw_buf_appendf(path, "[%zu]", indexes[level]);
		p = brackets + 2;
		size_t count;
		char *items = cw_config_list_items(list, base, &count);
		if (indexes[level] >= count) {
			cw_buf_append_str(path, p);
			report_missing_item(ld, env, cw_buf_cstr(path), list, indexes[level], count);
			return NULL;
		}
		base = items + indexes[level] * list->item_size;
	}
	cw_buf_append_str(path, p);
	return base;
}

static void report_unknown_env(loader_t *ld, const char *env)
{
	cw_buf_t guess = CW_BUF_INIT;
	if (cw_config_env_suggest(env, &guess))
		report_env(ld, env, NULL, "unknown variable (did you mean %s?)", cw_buf_cstr(&guess));
	else
		report_env(ld, env, NULL,
		           "unknown variable (CACHEWARP_ + a key path in upper case with _ for . "
		           "and list indexes: CACHEWARP_HUB_URL, CACHEWARP_SOURCES_0_URL)");
	cw_buf_free(&guess);
}

static void apply_env_var(loader_t *ld, const char *env, const char *value)
{
	size_t indexes[4], nindexes = 0;
	const cw_config_key_t *key = cw_config_env_match(env, indexes, &nindexes);
	if (key == NULL) {
		report_unknown_env(ld, env);
		return;
	}
	cw_buf_t path = CW_BUF_INIT;
	void *base = env_base(ld, env, key, indexes, nindexes, &path);
	cw_err_t why;
	if (base != NULL) {
		add_origin(ld, cw_buf_cstr(&path), NULL, env);
		if (cw_config_key_set(key, base, value, &why) != 0)
			report_env(ld, env, cw_buf_cstr(&path), "%s", why.message);
	}
	cw_buf_free(&path);
}

static void apply_env(loader_t *ld, char *const *envp)
{
	for (; envp != NULL && *envp != NULL; envp++) {
		const char *eq = strchr(*envp, '=');
		if (eq == NULL || strncmp(*envp, ENV_PREFIX, strlen(ENV_PREFIX)) != 0)
			continue;
		char *name = cw_xstrndup(*envp, (size_t)(eq - *envp));
		if (strcmp(name, "CACHEWARP_CONFIG") != 0)
			apply_env_var(ld, name, eq + 1);
		free(name);
	}
}

/* ---- checks ----------------------------------------------------------- */

/* Checks one value key of an item or of the top level; path is its concrete path. */
static void check_value_key(loader_t *ld, const cw_config_key_t *key, const char *path,
                            const char *at, void *base)
{
	char *type_path = cw_xasprintf("%stype", at);
	const origin_t *value_origin = find_exact(ld, path);
	const origin_t *type_origin = find_exact(ld, type_path);
	bool set = value_origin != NULL && !value_origin->empty;
	bool type_known = key->applies_to == NULL || (type_origin != NULL && !type_origin->empty);
	if (type_known && !cw_config_key_applies(key, base)) {
		if (set) {
			cw_buf_t phrase = CW_BUF_INIT;
			cw_config_applies_list(key, " or ", "", &phrase);
			report(ld, path, "only applies to %s %.*s", cw_buf_cstr(&phrase),
			       (int)strcspn(key->path, "["), key->path);
			cw_buf_free(&phrase);
		}
		cw_config_key_clear(key, base);  /* a default that does not apply */
	} else if (type_known && (key->flags & CW_KEY_REQUIRED) && !set) {
		report(ld, path, "missing required value");
	}
	free(type_path);
}

/*
 * Checks every key whose value lives in base (scope: the pattern prefix, at:
 * the concrete one): required values present, type-specific keys only where
 * they apply; then the items of its lists.
 */
static void check_scope(loader_t *ld, const char *scope, const char *at, void *base)
{
	size_t nkeys;
	const cw_config_key_t *keys = cw_config_keys(&nkeys);
	for (size_t i = 0; i < nkeys; i++) {
		const cw_config_key_t *key = &keys[i];
		if (!cw_config_key_in_base(key, scope) || key->kind == CW_KEY_GROUP)
			continue;
		/* No list lies between scope and key, so only group names ("hub.") follow at. */
		char *path = cw_xasprintf("%s%s", at, key->path + strlen(scope));
		if (key->kind != CW_KEY_LIST) {
			check_value_key(ld, key, path, at, base);
			free(path);
			continue;
		}
		size_t count;
		char *items = cw_config_list_items(key, base, &count);
		char *child_scope = cw_xasprintf("%s[].", key->path);
		for (size_t j = 0; j < count; j++) {
			char *item_path = cw_xasprintf("%s[%zu]", path, j);
			char *child_at = cw_xasprintf("%s.", item_path);
			const origin_t *o = find_exact(ld, item_path);
			if (o == NULL || !o->broken)
				check_scope(ld, child_scope, child_at, items + j * key->item_size);
			free(child_at);
			free(item_path);
		}
		free(child_scope);
		free(path);
	}
}

/* ---- checks across keys ------------------------------------------------ */

static bool starts_with(const char *text, const char *prefix)
{
	return strncmp(text, prefix, strlen(prefix)) == 0;
}

/* The url (never quoted: it holds a password) must suit the database it is for. */
static void check_url(loader_t *ld, const char *path, const char *url, bool mongodb)
{
	if (url == NULL)
		return;
	if (mongodb && !starts_with(url, "mongodb://") && !starts_with(url, "mongodb+srv://"))
		report(ld, path, "invalid value: a mongodb url starts with mongodb:// or mongodb+srv://");
	if (!mongodb && !starts_with(url, "postgresql://") && !starts_with(url, "postgres://") &&
	    strchr(url, '=') == NULL)
		report(ld, path,
		       "invalid value: a postgres url starts with postgresql:// or postgres://, or is "
		       "a conninfo string (host=... dbname=...)");
}

static void reporter_report(void *loader, const char *path, const char *message)
{
	report(loader, path, "%s", message);
}

static bool reporter_has_error(void *loader, const char *path)
{
	return has_error(loader, path);
}

/* Reports every item of list whose name an earlier item has already. */
static void check_unique_names(loader_t *ld, const char *list_path, const char *what)
{
	char noun[48];
	snprintf(noun, sizeof noun, "%s name", what);
	cw_config_reporter_t reporter = {ld, reporter_report, reporter_has_error};
	cw_config_check_unique(&reporter, ld->config, list_path, "name", noun);
}

/*
 * A target's relative dir, made absolute against the directory of the
 * configuration file (as given when that directory cannot be resolved).
 */
char *cw_config_resolve_path(const char *config_name, const char *dir)
{
	if (dir[0] == '/')
		return cw_xstrdup(dir);
	const char *slash = strrchr(config_name, '/');
	char *parent = slash ? cw_xstrndup(config_name, slash == config_name ? 1 : (size_t)(slash - config_name))
	                     : cw_xstrdup(".");
	char *absolute = realpath(parent, NULL);
	const char *base = absolute ? absolute : parent;
	while (starts_with(dir, "./"))
		dir += 2 + strspn(dir + 2, "/");
	char *resolved;
	if (dir[0] == '\0' || strcmp(dir, ".") == 0)
		resolved = cw_xstrdup(base);
	else
		resolved = cw_xasprintf("%s%s%s", base, base[strlen(base) - 1] == '/' ? "" : "/", dir);
	free(absolute);
	free(parent);
	return resolved;
}

static void check_sources_and_targets(loader_t *ld)
{
	cw_config_t *config = ld->config;
	char path[64];
	for (size_t i = 0; i < config->nsources; i++) {
		cw_source_config_t *source = &config->sources[i];
		snprintf(path, sizeof path, "sources[%zu].type", i);
		if (has_error(ld, path) || source->name == NULL)
			continue;   /* what the source is for is unknown */
		snprintf(path, sizeof path, "sources[%zu].url", i);
		if (source->type == CW_SOURCE_MYSQL) {
			if (source->url != NULL && !starts_with(source->url, "mysql://"))
				report(ld, path, "invalid value: a mysql url starts with mysql://");
			continue;
		}
		check_url(ld, path, source->url, source->type == CW_SOURCE_MONGODB);
		if (source->type != CW_SOURCE_POSTGRES || source->slot != NULL)
			continue;
		source->slot = cw_xasprintf("cachewarp_%s", source->name);
		snprintf(path, sizeof path, "sources[%zu].slot", i);
		if (strlen(source->slot) > CW_ENTITY_NAME_MAX)
			report(ld, path, "the default slot name \"%s\" is longer than %d characters: set slot",
			       source->slot, CW_ENTITY_NAME_MAX);
	}
	for (size_t i = 0; i < config->ntargets; i++) {
		cw_target_config_t *target = &config->targets[i];
		snprintf(path, sizeof path, "targets[%zu].type", i);
		bool type_known = !has_error(ld, path);
		snprintf(path, sizeof path, "targets[%zu].url", i);
		if (type_known)
			check_url(ld, path, target->url, target->type == CW_TARGET_MONGODB);
		snprintf(path, sizeof path, "targets[%zu].exclude", i);
		if (target->entities != NULL && target->exclude != NULL)
			report(ld, path, "set either entities (the ones the target receives) or exclude "
			       "(the ones it leaves out), not both");
		if (target->dir != NULL) {
			char *resolved = cw_config_resolve_path(ld->name, target->dir);
			free(target->dir);
			target->dir = resolved;
		}
	}
	check_url(ld, "hub.url", config->hub.url, false);
	check_unique_names(ld, "sources", "source");
	check_unique_names(ld, "targets", "target");
}

static void report_unknown_source(loader_t *ld, const char *path, const char *name)
{
	const cw_config_t *config = ld->config;
	const char **names = cw_xcalloc(config->nsources + 1, sizeof *names);
	size_t n = 0;
	for (size_t i = 0; i < config->nsources; i++)
		if (config->sources[i].name != NULL)   /* a source whose name was wrong or missing */
			names[n++] = config->sources[i].name;
	cw_buf_t message = CW_BUF_INIT;
	cw_config_unknown_name(&message, "source", name, names, n, config->nsources);
	report(ld, path, "%s", cw_buf_cstr(&message));
	cw_buf_free(&message);
	free(names);
}

/* Batch mode: a postgres source, and one of schedule and polling_interval. */
static void check_entity_batch(loader_t *ld, const char *at, const cw_entity_t *entity,
                               const cw_source_config_t *source)
{
	char path[128];
	if (entity->mode != CW_ENTITY_MODE_BATCH)
		return;
	if (source->type != CW_SOURCE_POSTGRES && source->type != CW_SOURCE_MYSQL) {
		snprintf(path, sizeof path, "%s.mode", at);
		report(ld, path, "batch mode needs a postgres or mysql source (source \"%s\" is %s)",
		       source->name, cw_source_type_name(source->type));
	}
	if (entity->batch.schedule != NULL && entity->batch.polling_interval_ms > 0) {
		snprintf(path, sizeof path, "%s.polling_interval", at);
		report(ld, path, "set schedule or polling_interval, not both");
	}
}

/*
 * Checks an entity against its source and as a whole. Runs even when other
 * keys are wrong, so one run reports every error; it only skips what depends
 * on a value already reported (the source's name or type, the entity's keys).
 */
static void check_entity(loader_t *ld, size_t index, cw_entity_t *entity)
{
	char at[48], path[128], key[64];
	cw_err_t why;
	entity->status = CW_ENTITY_PENDING;
	entity->version = 1;
	snprintf(at, sizeof at, "entities[%zu]", index);
	snprintf(path, sizeof path, "%s.source", at);
	if (entity->source == NULL || has_error(ld, path))
		return;
	const cw_source_config_t *source = cw_config_source(ld->config, entity->source);
	if (source == NULL) {
		report_unknown_source(ld, path, entity->source);
		return;
	}
	snprintf(path, sizeof path, "sources[%zu].type", (size_t)(source - ld->config->sources));
	if (has_error(ld, path))
		return;
	bool mongodb = source->type == CW_SOURCE_MONGODB;
	const char *wanted = mongodb ? "collection" : "table";
	const char *other = mongodb ? "table" : "collection";
	if ((mongodb ? entity->table : entity->collection) != NULL) {
		snprintf(path, sizeof path, "%s.%s", at, other);
		report(ld, path, "source \"%s\" is a %s source: use %s, not %s", source->name,
		       cw_source_type_name(source->type), wanted, other);
	} else if ((mongodb ? entity->collection : entity->table) == NULL) {
		snprintf(path, sizeof path, "%s.%s", at, wanted);
		report(ld, path, "missing required value (source \"%s\" is a %s source)", source->name,
		       cw_source_type_name(source->type));
	} else if (!has_error(ld, at) && cw_entity_validate_key(entity, key, sizeof key, &why) != 0) {
		snprintf(path, sizeof path, "%s%s%s", at, key[0] ? "." : "", key);
		report(ld, path, "%s", why.message);
	}
	check_entity_batch(ld, at, entity, source);
}

/* An entity's per-target settings name configured targets of a type they apply to. */
static void check_entity_targets(loader_t *ld, size_t index, const cw_entity_t *entity)
{
	char path[128];
	for (size_t j = 0; j < entity->ntargets; j++) {
		const cw_entity_target_t *et = &entity->targets[j];
		snprintf(path, sizeof path, "entities[%zu].targets[%zu].name", index, j);
		if (et->name == NULL || has_error(ld, path))
			continue;
		const cw_target_config_t *target = cw_config_target(ld->config, et->name);
		if (target == NULL) {
			report(ld, path, "unknown target \"%s\"", et->name);
			continue;
		}
		snprintf(path, sizeof path, "entities[%zu].targets[%zu].write_batch_size", index, j);
		if (et->write_batch_size != 0 && target->type != CW_TARGET_POSTGRES)
			report(ld, path, "only applies to postgres targets (target \"%s\" is %s)",
			       et->name, cw_target_type_name(target->type));
	}
}

/* The checks that relate keys to each other; run once every value is valid. */
static void check_relations(loader_t *ld)
{
	cw_config_t *config = ld->config;
	check_sources_and_targets(ld);
	cw_config_reporter_t reporter = {ld, reporter_report, reporter_has_error};
	cw_config_check_auth(config, ld->name, &reporter);
	for (size_t i = 0; i < config->nentities; i++) {
		check_entity(ld, i, &config->entities[i]);
		check_entity_targets(ld, i, &config->entities[i]);
	}
	check_unique_names(ld, "entities", "entity");
	if (!has_error(ld, "retry.max") && !has_error(ld, "retry.initial") &&
	    config->retry.max_ms < config->retry.initial_ms) {
		char max[CW_UNITS_FORMAT_LEN], initial[CW_UNITS_FORMAT_LEN];
		cw_duration_format(config->retry.max_ms, max);
		cw_duration_format(config->retry.initial_ms, initial);
		report(ld, "retry.max", "out of range: %s is less than retry.initial (%s)", max, initial);
	}
	cw_config_check_streams(config, &reporter);
}

/* ---- loading ---------------------------------------------------------- */

static void report_parser(loader_t *ld, const yaml_parser_t *parser)
{
	yaml_node_t at = {.start_mark = parser->problem_mark};
	const char *problem = parser->problem ? parser->problem : "unreadable document";
	if (parser->context != NULL)
		report_node(ld, &at, NULL, "invalid YAML: %s (%s at line %zu, column %zu)", problem,
		            parser->context, parser->context_mark.line + 1, parser->context_mark.column + 1);
	else
		report_node(ld, &at, NULL, "invalid YAML: %s", problem);
}

/*
 * Whether this cachewarp reads the file's format: a top-level "version" it
 * does not know is reported alone (the rest of the file is another format,
 * so its keys are not checked against this one's).
 */
static bool version_readable(loader_t *ld, const yaml_node_t *root)
{
	const cw_config_key_t *key = cw_config_key_find("version", strlen("version"));
	for (yaml_node_pair_t *pair = root->data.mapping.pairs.start; pair < root->data.mapping.pairs.top;
	     pair++) {
		const yaml_node_t *name = node_at(ld, pair->key), *value = node_at(ld, pair->value);
		cw_err_t why;
		if (name == NULL || value == NULL || name->type != YAML_SCALAR_NODE ||
		    strcmp(scalar_text(name), "version") != 0 || value->type != YAML_SCALAR_NODE ||
		    is_null(value) || scalar_has_nul(value))
			continue;
		if (cw_config_key_set(key, ld->config, scalar_text(value), &why) != 0) {
			report_node(ld, value, "version", "%s", why.message);
			return false;
		}
	}
	return true;
}

/* Parses the YAML and walks it into ld->config; false on a syntax error or another version (reported). */
static bool load_document(loader_t *ld, const char *bytes, size_t len)
{
	yaml_parser_t parser;
	yaml_document_t doc, extra;
	bool ok = false, readable = true;
	if (!yaml_parser_initialize(&parser))
		abort();  /* out of memory */
	yaml_parser_set_input_string(&parser, (const unsigned char *)bytes, len);
	if (!yaml_parser_load(&parser, &doc)) {
		report_parser(ld, &parser);
		goto cleanup;
	}
	ld->doc = &doc;
	const yaml_node_t *root = yaml_document_get_root_node(&doc);
	add_origin(ld, "", root, NULL);
	if (root != NULL && root->type != YAML_MAPPING_NODE && !is_null(root))
		report_wrong_node(ld, root, NULL, "a mapping of keys (hub, sources, entities, ...)");
	else if (root != NULL && root->type == YAML_MAPPING_NODE &&
	         (readable = version_readable(ld, root)))
		walk_mapping(ld, root, "", "", ld->config);
	ok = yaml_parser_load(&parser, &extra) != 0;
	if (!ok) {
		report_parser(ld, &parser);
	} else {
		const yaml_node_t *second = yaml_document_get_root_node(&extra);
		if (second != NULL)
			report_node(ld, second, NULL,
			            "a second YAML document: a configuration file holds one");
		yaml_document_delete(&extra);
	}
	ld->doc = NULL;
	yaml_document_delete(&doc);
cleanup:
	yaml_parser_delete(&parser);
	return ok && readable;
}

int cw_config_load_buffer(const char *name, const char *bytes, size_t len,
                          const cw_config_load_opts_t *opts, cw_config_t **out, cw_err_t *err)
{
	loader_t ld = {.name = name, .err = err, .errors = opts ? opts->errors : NULL};
	*out = NULL;
	ld.config = cw_xcalloc(1, sizeof *ld.config);
	ld.config->path = cw_xstrdup(name);
	cw_sha256_hex(bytes, len, ld.config->sha256);
	ld.config->retry.jitter = 0.5;
	cw_config_defaults("", ld.config);
	if (load_document(&ld, bytes, len)) {
		apply_env(&ld, opts ? opts->envp : NULL);
		check_scope(&ld, "", "", ld.config);
		check_relations(&ld);   /* also after errors: one run reports them all */
	}
	for (size_t i = 0; i < ld.nerror_paths; i++)
		free(ld.error_paths[i]);
	free(ld.error_paths);
	for (size_t i = 0; i < ld.norigins; i++) {
		free(ld.origins[i].path);
		free(ld.origins[i].env);
	}
	free(ld.origins);
	free(ld.slots);
	if (ld.nerrors > 0) {
		cw_config_free(ld.config);
		return CW_EINVAL;
	}
	*out = ld.config;
	return 0;
}

/* Reads all of path into *bytes (owned by the caller). 0 or CW_EIO. */
static int read_file(const char *path, char **bytes, size_t *len, cw_err_t *err)
{
	cw_buf_t buf = CW_BUF_INIT;
	char chunk[65536];
	size_t n;
	int rc = 0;
	FILE *file = fopen(path, "rb");
	if (file == NULL)
		return cw_err_set(err, CW_EIO, DOMAIN, "could not read config \"%s\": %s", path,
		                  strerror(errno));
	while ((n = fread(chunk, 1, sizeof chunk, file)) > 0 && buf.len <= MAX_FILE_BYTES)
		cw_buf_append(&buf, chunk, n);
	if (ferror(file))
		rc = cw_err_set(err, CW_EIO, DOMAIN, "could not read config \"%s\": %s", path,
		                strerror(errno));
	else if (buf.len > MAX_FILE_BYTES)
		rc = cw_err_set(err, CW_EIO, DOMAIN, "could not read config \"%s\": larger than %d MiB",
		                path, MAX_FILE_BYTES >> 20);
	fclose(file);
	*len = buf.len;
	*bytes = cw_buf_take(&buf);
	return rc;
}

int cw_config_load(const char *path, const cw_config_load_opts_t *opts, cw_config_t **out,
                   cw_err_t *err)
{
	char *bytes = NULL;
	size_t len = 0;
	cw_err_t local;
	*out = NULL;
	int rc = read_file(path, &bytes, &len, &local);
	if (rc == 0) {
		rc = cw_config_load_buffer(path, bytes, len, opts, out, err);
	} else {
		if (err != NULL)
			*err = local;
		if (opts != NULL && opts->errors != NULL)
			cw_buf_appendf(opts->errors, "%s\n", local.message);
	}
	free(bytes);
	return rc;
}

int cw_config_file_sha256(const char *path, char hex[65], cw_err_t *err)
{
	char *bytes = NULL;
	size_t len = 0;
	int rc = read_file(path, &bytes, &len, err);
	if (rc == 0)
		cw_sha256_hex(bytes, len, hex);
	free(bytes);
	return rc;
}
