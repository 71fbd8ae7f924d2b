/*
 * This file contains the reading of a configuration file's YAML
 * (config_loader.h): the parse, the version check, and the walk of the
 * document driven by the key table, recording where each value came from.
 */
#include "core/config_keys.h"
#include "core/config_loader.h"
#include "core/mem.h"

#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define MAX_NODES 200000

static yaml_node_t *node_at(cw_config_loader_t *ld, int index)
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

static void report_wrong_node(cw_config_loader_t *ld, const yaml_node_t *node, const char *path,
                              const char *expected)
{
	cw_buf_t got = CW_BUF_INIT;
	describe_node(node, &got);
	cw_config_report_node(ld, node, path, "wrong type: expected %s, got %s", expected,
	                      cw_buf_cstr(&got));
	cw_buf_free(&got);
}

/* Counts a visited node; false (once reported) when the document is too large. */
static bool visit(cw_config_loader_t *ld, const yaml_node_t *node)
{
	if (++ld->nodes == MAX_NODES + 1)
		cw_config_report_node(ld, node, NULL,
		                      "the document is too large (more than %d values)", MAX_NODES);
	return ld->nodes <= MAX_NODES;
}

static void report_unknown_key(cw_config_loader_t *ld, const yaml_node_t *key_node,
                               const char *scope, const char *path, const char *leaf)
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
		cw_config_report_node(ld, key_node, path, "unknown key (did you mean \"%s\"?)",
		                      guess);
	} else {
		cw_buf_t known = CW_BUF_INIT;
		cw_config_join(&known, names, n);
		cw_config_report_node(ld, key_node, path, "unknown key (known keys here: %s)",
		                      cw_buf_cstr(&known));
		cw_buf_free(&known);
	}
	free(names);
}

static void walk_mapping(cw_config_loader_t *ld, const yaml_node_t *map, const char *scope,
                         const char *at, void *base);

/* Whether item index of the list at path is one past key's limit (reported at node). */
static bool at_limit(cw_config_loader_t *ld, const cw_config_key_t *key, const yaml_node_t *node,
                     const char *path, size_t index)
{
	if (index != key->max_items)
		return false;
	cw_config_report_node(ld, node, path, "too many items (the limit is %zu)", key->max_items);
	return true;
}

/*
 * Walks one list item's mapping into item, at its concrete path item_path;
 * an item that is not a mapping is reported and marked (o) so the checks
 * skip it.
 */
static void walk_item(cw_config_loader_t *ld, const yaml_node_t *item_node, cw_config_origin_t *o,
                      const char *scope, const char *item_path, void *item)
{
	if (item_node->type != YAML_MAPPING_NODE) {
		o->broken = true;
		report_wrong_node(ld, item_node, item_path, "a mapping of keys");
		return;
	}
	char *at = cw_xasprintf("%s.", item_path);
	walk_mapping(ld, item_node, scope, at, item);
	free(at);
}

/*
 * A list the file writes as a mapping keyed by name (CW_KEY_BY_NAME): each
 * "name: {keys}" pair is an item whose name is the pair's key, at the
 * concrete path list[index] like any list item.
 */
static void walk_named(cw_config_loader_t *ld, const cw_config_key_t *key, const yaml_node_t *map,
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
		if (at_limit(ld, key, name_node, path, index))
			break;
		char *item_path = cw_xasprintf("%s[%zu]", path, index);
		char *name_path = cw_xasprintf("%s.name", item_path);
		void *item = cw_config_list_append(key, base);
		cw_config_origin_t *o = cw_config_origin_add(ld, item_path, name_node, NULL);
		cw_config_origin_add(ld, name_path, name_node, NULL);
		cw_err_t why;
		if (name_node->type != YAML_SCALAR_NODE || scalar_has_nul(name_node))
			report_wrong_node(ld, name_node, name_path, "a name");
		else if (cw_config_key_set(name_key, item, scalar_text(name_node), &why) != 0)
			cw_config_report_node(ld, name_node, name_path, "%s", why.message);
		walk_item(ld, item_node, o, scope, item_path, item);
		free(name_path);
		free(item_path);
	}
	free(name_pattern);
	free(scope);
}

static void walk_list(cw_config_loader_t *ld, const cw_config_key_t *key, const yaml_node_t *seq,
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
		if (at_limit(ld, key, item_node, path, index))
			break;
		char *item_path = cw_xasprintf("%s[%zu]", path, index);
		void *item = cw_config_list_append(key, base);
		cw_config_origin_t *o = cw_config_origin_add(ld, item_path, item_node, NULL);
		walk_item(ld, item_node, o, scope, item_path, item);
		free(item_path);
	}
	free(scope);
}

static void walk_scalar(cw_config_loader_t *ld, const cw_config_key_t *key,
                        const yaml_node_t *value, const char *path, void *base)
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
		cw_config_report_node(ld, value, path, "invalid value: it holds a NUL character");
	else if (cw_config_key_set(key, base, scalar_text(value), &why) != 0)
		cw_config_report_node(ld, value, path, "%s", why.message);
}

/* A WORDS value written as a sequence: each item a word, checked at its own position. */
static void walk_words(cw_config_loader_t *ld, const cw_config_key_t *key, const yaml_node_t *seq,
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
			cw_config_report_node(ld, item, path, "%s", why.message);
			ok = false;
		} else {
			cw_buf_appendf(&joined, "%s%s", joined.len > 0 ? "," : "", scalar_text(item));
		}
	}
	if (ok && cw_config_key_set(key, base, cw_buf_cstr(&joined), &why) != 0)
		cw_config_report_node(ld, seq, path, "%s", why.message);
	cw_buf_free(&joined);
}

/*
 * Handles one "name: value" pair of a mapping at scope (pattern) / at
 * (concrete). A second pair with the same key finds the first one's origin.
 */
static void walk_pair(cw_config_loader_t *ld, const yaml_node_t *key_node, const yaml_node_t *value,
                      const char *scope, const char *at, void *base)
{
	const char *leaf = scalar_text(key_node);
	char *pattern = cw_xasprintf("%s%s", scope, leaf);
	char *path = cw_xasprintf("%s%s", at, leaf);
	const cw_config_key_t *key = cw_config_key_find(pattern, strlen(pattern));
	const cw_config_origin_t *earlier = key ? cw_config_origin_find(ld, path) : NULL;
	if (key == NULL || scalar_has_nul(key_node)) {
		report_unknown_key(ld, key_node, scope, path, leaf);
	} else if (earlier != NULL) {
		cw_config_report_node(ld, key_node, path, "duplicate key (first given at line %d)",
		                      earlier->line);
	} else if (is_null(value)) {
		cw_config_origin_add(ld, path, value, NULL)->empty = true;
	} else {
		cw_config_origin_add(ld, path, value, NULL);
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

static void walk_mapping(cw_config_loader_t *ld, const yaml_node_t *map, const char *scope,
                         const char *at, void *base)
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
			cw_config_report_node(ld, key_node, NULL, "a key must be a name, not %s",
			                      cw_buf_cstr(&got));
			cw_buf_free(&got);
		}
	}
}

static void report_parser(cw_config_loader_t *ld, const yaml_parser_t *parser)
{
	yaml_node_t at = {.start_mark = parser->problem_mark};
	const char *problem = parser->problem ? parser->problem : "unreadable document";
	if (parser->context != NULL)
		cw_config_report_node(ld, &at, NULL, "invalid YAML: %s (%s at line %zu, column %zu)",
		                      problem, parser->context, parser->context_mark.line + 1,
		                      parser->context_mark.column + 1);
	else
		cw_config_report_node(ld, &at, NULL, "invalid YAML: %s", problem);
}

/*
 * Whether this cachewarp reads the file's format: a top-level "version" it
 * does not know is reported alone (the rest of the file is another format,
 * so its keys are not checked against this one's).
 */
static bool version_readable(cw_config_loader_t *ld, const yaml_node_t *root)
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
			cw_config_report_node(ld, value, "version", "%s", why.message);
			return false;
		}
	}
	return true;
}

/* Parses the YAML and walks it into ld->config; false on a syntax error or another version (reported). */
bool cw_config_load_document(cw_config_loader_t *ld, const char *bytes, size_t len)
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
	cw_config_origin_add(ld, "", root, NULL);
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
			cw_config_report_node(ld, second, NULL, "a second YAML document: a "
			                      "configuration file holds one");
		yaml_document_delete(&extra);
	}
	ld->doc = NULL;
	yaml_document_delete(&doc);
cleanup:
	yaml_parser_delete(&parser);
	return ok && readable;
}
