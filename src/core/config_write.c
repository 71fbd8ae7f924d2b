/*
 * This file contains the two texts written from the key table (config.h):
 * the effective configuration as YAML (`cachewarp config show`) and the
 * reference docs/configuration.md (`cachewarp config reference`).
 */
#include "core/config.h"

#include "core/config_keys.h"
#include "core/mem.h"
#include "core/secret.h"
#include "core/units.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the effective configuration ------------------------------------- */

/*
 * Appends text as a YAML double-quoted scalar. Besides '"', '\\' and control
 * characters, the code points YAML reads as line breaks or a byte order
 * mark inside quotes are escaped, so the text reads back unchanged.
 */
static void yaml_string(cw_buf_t *out, const char *text)
{
	static const struct {
		const char *utf8;
		const char *escape;
	} specials[] = {
		{"\xc2\x85", "\\N"}, {"\xe2\x80\xa8", "\\L"}, {"\xe2\x80\xa9", "\\P"},
		{"\xef\xbb\xbf", "\\uFEFF"},
	};
	cw_buf_append_char(out, '"');
	for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
		size_t i = 0;
		while (i < sizeof specials / sizeof specials[0] &&
		       strncmp((const char *)p, specials[i].utf8, strlen(specials[i].utf8)) != 0)
			i++;
		if (i < sizeof specials / sizeof specials[0]) {
			cw_buf_append_str(out, specials[i].escape);
			p += strlen(specials[i].utf8) - 1;
		} else if (*p == '"' || *p == '\\') {
			cw_buf_appendf(out, "\\%c", *p);
		} else if (*p < 0x20 || *p == 0x7f) {
			cw_buf_appendf(out, "\\x%02x", *p);
		} else {
			cw_buf_append_char(out, (char)*p);
		}
	}
	cw_buf_append_char(out, '"');
}

/* Appends d in the fewest digits that read back as d. */
static void write_float(cw_buf_t *out, double d)
{
	char text[40];
	for (int precision = 1; precision <= 17; precision++) {
		snprintf(text, sizeof text, "%.*g", precision, d);
		if (strtod(text, NULL) == d)
			break;
	}
	cw_buf_append_str(out, text);
	if (strpbrk(text, ".eEn") == NULL)
		cw_buf_append_str(out, ".0");
}

static void write_words(cw_buf_t *out, const char *words)
{
	static const char plain[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-";
	cw_buf_append_char(out, '[');
	for (const char *p = words; *p != '\0';) {
		size_t len = strcspn(p, ",");
		char *word = cw_xstrndup(p, len);
		if (p != words)
			cw_buf_append_str(out, ", ");
		if (strspn(word, plain) == len)
			cw_buf_append_str(out, word);
		else
			yaml_string(out, word);
		free(word);
		p += len + (p[len] == ',');
	}
	cw_buf_append_char(out, ']');
}

static void write_value(cw_buf_t *out, const cw_config_key_t *key, const void *base)
{
	const void *field = (const char *)base + key->offset;
	const char *text = NULL;
	char formatted[CW_UNITS_FORMAT_LEN];
	switch (key->kind) {
	case CW_KEY_STRING:
		yaml_string(out, *(char *const *)field);
		return;
	case CW_KEY_URL:
		text = cw_secret_mask(*(char *const *)field);
		yaml_string(out, text);
		free((char *)text);
		return;
	case CW_KEY_SECRET:
		yaml_string(out, (*(char *const *)field)[0] ? "****" : "");
		return;
	case CW_KEY_WORDS:   /* a flow sequence; a word of more than letters, digits, _ . - quoted */
		write_words(out, *(char *const *)field);
		return;
	case CW_KEY_FLOAT:
		write_float(out, *(const double *)field);
		return;
	case CW_KEY_INT:
	case CW_KEY_DURATION:
	case CW_KEY_SIZE:
		cw_config_format_number(key, *(const int64_t *)field, formatted);
		break;
	case CW_KEY_ENUM:
	case CW_KEY_COLUMN_TYPE:
		snprintf(formatted, sizeof formatted, "%s", cw_config_enum_name(key, base));
		break;
	case CW_KEY_GROUP:
	case CW_KEY_LIST:
		return;
	}
	cw_buf_append_str(out, formatted);
}

/* Starts a line at indent; the first line of a list item gets its "- ". */
static void line_start(cw_buf_t *out, int indent, bool *dash)
{
	if (dash != NULL && *dash) {
		cw_buf_appendf(out, "%*s- ", indent - 2, "");
		*dash = false;
	} else {
		cw_buf_appendf(out, "%*s", indent, "");
	}
}

/* Whether scope ("entities[].targets[].") is the items of a list keyed by name. */
static bool named_item(const char *scope)
{
	size_t len = strlen(scope);
	if (len < 3)
		return false;
	const cw_config_key_t *list = cw_config_key_find(scope, len - 3);
	return list != NULL && (list->flags & CW_KEY_BY_NAME);
}

static bool is_child(const cw_config_key_t *key, const char *scope)
{
	size_t len = strlen(scope);
	return strncmp(key->path, scope, len) == 0 && strchr(key->path + len, '.') == NULL;
}

/* Whether the key holds a value; a number without a default is unset while 0. */
static bool has_value(const cw_config_key_t *key, const void *base)
{
	const void *field = (const char *)base + key->offset;
	if (key->kind == CW_KEY_STRING || key->kind == CW_KEY_URL || key->kind == CW_KEY_SECRET ||
	    key->kind == CW_KEY_WORDS)
		return *(char *const *)field != NULL;
	if (key->default_text == NULL && key->kind == CW_KEY_FLOAT)
		return *(const double *)field != 0.0;
	if (key->default_text == NULL &&
	    (key->kind == CW_KEY_INT || key->kind == CW_KEY_DURATION || key->kind == CW_KEY_SIZE))
		return *(const int64_t *)field != 0;
	return true;
}

/* Writes the keys of scope (a pattern prefix) whose values live in base. */
static void write_scope(cw_buf_t *out, const char *scope, const void *base, int indent, bool *dash);

/* A list keyed by name (CW_KEY_BY_NAME): "leaf:" then "NAME:" and the item's other keys. */
static void write_named(cw_buf_t *out, const cw_config_key_t *key, const void *base, int indent,
                        bool *dash)
{
	size_t count;
	const char *items = cw_config_list_items(key, (void *)base, &count);
	char child[128], name_path[160];
	snprintf(child, sizeof child, "%s[].", key->path);
	snprintf(name_path, sizeof name_path, "%s[].name", key->path);
	const cw_config_key_t *name_key = cw_config_key_find(name_path, strlen(name_path));
	line_start(out, indent, dash);
	cw_buf_appendf(out, "%s:%s\n", cw_config_key_leaf(key), count == 0 ? " {}" : "");
	for (size_t j = 0; j < count; j++) {
		const char *item = items + j * key->item_size;
		const char *name = *(char *const *)(item + name_key->offset);
		cw_buf_appendf(out, "%*s", indent + 2, "");
		cw_config_quote(out, name != NULL ? name : "");
		size_t mark = out->len;
		cw_buf_append_str(out, ":\n");
		size_t before = out->len;
		write_scope(out, child, item, indent + 4, NULL);
		if (out->len == before) {   /* nothing but its name */
			out->len = mark;
			cw_buf_append_str(out, ": {}\n");
		}
	}
}

static void write_scope(cw_buf_t *out, const char *scope, const void *base, int indent, bool *dash)
{
	size_t nkeys;
	const cw_config_key_t *keys = cw_config_keys(&nkeys);
	for (size_t i = 0; i < nkeys; i++) {
		const cw_config_key_t *key = &keys[i];
		if (!is_child(key, scope))
			continue;
		const char *leaf = cw_config_key_leaf(key);
		char child[128];
		if (key->kind == CW_KEY_GROUP) {
			line_start(out, indent, dash);
			cw_buf_appendf(out, "%s:\n", leaf);
			snprintf(child, sizeof child, "%s.", key->path);
			write_scope(out, child, base, indent + 2, NULL);
		} else if (key->kind == CW_KEY_LIST && (key->flags & CW_KEY_BY_NAME)) {
			write_named(out, key, base, indent, dash);
		} else if (key->kind == CW_KEY_LIST) {
			size_t count;
			const char *items = cw_config_list_items(key, (void *)base, &count);
			line_start(out, indent, dash);
			cw_buf_appendf(out, "%s:%s\n", leaf, count == 0 ? " []" : "");
			snprintf(child, sizeof child, "%s[].", key->path);
			for (size_t j = 0; j < count; j++) {
				bool item_dash = true;
				write_scope(out, child, items + j * key->item_size, indent + 4, &item_dash);
			}
		} else if (strcmp(leaf, "name") == 0 && strstr(scope, "[].") != NULL &&
		           named_item(scope)) {
			continue;   /* the item's key in its mapping */
		} else if (cw_config_key_applies(key, base) && has_value(key, base)) {
			line_start(out, indent, dash);
			cw_buf_appendf(out, "%s: ", leaf);
			write_value(out, key, base);
			cw_buf_append_char(out, '\n');
		}
	}
}

int cw_config_write_effective(const cw_config_t *config, cw_buf_t *out)
{
	cw_buf_append_str(out, "# effective configuration of ");
	cw_config_quote(out, config->path ? config->path : "");
	cw_buf_append_str(out, ": defaults filled in, CACHEWARP_* environment applied, "
	                       "secrets masked\n");
	write_scope(out, "", config, 0, NULL);
	return 0;
}

/* ---- the reference ---------------------------------------------------- */

static const char reference_intro[] =
	"# Configuration reference\n"
	"\n"
	"<!-- Generated from the key table in src/core/config_keys.c by\n"
	"     `cachewarp config reference > docs/configuration.md`; do not edit by hand:\n"
	"     unit.config fails when this file and the table differ. -->\n"
	"\n"
	"cachewarp reads one YAML file: the `-c FILE` option, else `$CACHEWARP_CONFIG`, else\n"
	"`./cachewarp.yaml`. `cachewarp config check -c FILE` validates it (exit 0, or 2 with\n"
	"every error on standard error); `cachewarp config show -c FILE` prints the effective\n"
	"configuration: the file with every default filled in and the environment applied,\n"
	"passwords masked. `cachewarp.example.yaml` is a complete example.\n"
	"\n"
	"## Values\n"
	"\n"
	"* **duration**: a number and a unit, `ms`, `s`, `m`, `h` or `d`: `250ms`, `5s`,\n"
	"  `10m`, `1h`, `7d`; parts add up (`1h30m`). `0` needs no unit. Kept in milliseconds.\n"
	"* **size**: a number of bytes with an optional unit: `B`, `KiB`, `MiB`, `GiB`, `TiB`\n"
	"  (powers of 1024) or `kB`, `MB`, `GB`, `TB` (powers of 1000): `512KiB`, `64MiB`.\n"
	"* **url**: a connection URL; its password is masked (`user:****@host`) wherever\n"
	"  cachewarp prints it, `config show` included.\n"
	"* **secret**: never printed; `config show` writes `****`.\n"
	"* **list**: a YAML sequence, `[23505, 22P02]`, or one comma-separated string,\n"
	"  `\"23505, 22P02\"` (the form an environment variable takes).\n"
	"* A key written without a value (`key:` or `key: ~`) is the same as no key.\n"
	"* Names of sources, entities, targets and columns match `[a-z][a-z0-9_]*` (at most\n"
	"  63 characters): they become SQL identifiers and file names.\n"
	"\n"
	"## Environment variables\n"
	"\n"
	"Every key can be set by an environment variable, which wins over the file:\n"
	"`CACHEWARP_` followed by the key's path in upper case, with `_` for each `.`.\n"
	"`CACHEWARP_HUB_URL` sets `hub.url`, `CACHEWARP_APPLY_BATCH_SIZE` sets\n"
	"`apply.batch_size`. A list item is addressed by its position, counted from 0:\n"
	"`CACHEWARP_SOURCES_0_URL` sets `sources[0].url` (the first source),\n"
	"`CACHEWARP_ENTITIES_1_COLUMNS_0_PATH` sets `entities[1].columns[0].path`. The\n"
	"environment changes items the file has; it cannot add items. Values are read\n"
	"like values in the file. Any other variable starting with `CACHEWARP_` is an error\n"
	"(with a suggestion for a misspelt one), except `CACHEWARP_CONFIG`, the file to read.\n"
	"\n"
	"## Errors\n"
	"\n"
	"Each error names where the value came from and the line of its own key, and\n"
	"`config check` lists them all in one run: checks across keys (the source an\n"
	"entity names, its table, its columns, the transformation a stream names, a\n"
	"target writing a table or collection a source captures: docs/streams.md) run\n"
	"even when other values are wrong, and only a check that depends on a value\n"
	"already reported is skipped:\n"
	"\n"
	"```\n"
	"cachewarp.yaml:12:5: key \"sources[0].ulr\": unknown key (did you mean \"url\"?)\n"
	"cachewarp.yaml:3:14: key \"hub.pool_size\": out of range: 0 (allowed: 1 to 256)\n"
	"cachewarp.yaml:20:13: key \"entities[1].source\": unknown source \"shopp\" (did you mean \"shop\"?)\n"
	"environment variable CACHEWARP_APPLY_BATCH_SIZE: key \"apply.batch_size\": wrong type: expected an integer, got \"lots\"\n"
	"```\n"
	"\n"
	"## Relative paths\n"
	"\n"
	"A relative `dir` of a target, and a relative file of an `authentication` entry,\n"
	"is taken relative to the directory of the configuration file (also when it comes\n"
	"from the environment) and made absolute, so neither moves with the working\n"
	"directory.\n";

static const char *kind_label(const cw_config_key_t *key)
{
	static const char *const labels[] = {
		[CW_KEY_GROUP] = "mapping",  [CW_KEY_LIST] = "list of mappings", [CW_KEY_STRING] = "string",
		[CW_KEY_INT] = "integer",    [CW_KEY_FLOAT] = "number",          [CW_KEY_DURATION] = "duration",
		[CW_KEY_SIZE] = "size",      [CW_KEY_ENUM] = "enum",             [CW_KEY_COLUMN_TYPE] = "enum",
		[CW_KEY_URL] = "url",        [CW_KEY_SECRET] = "secret",          [CW_KEY_WORDS] = "list",
	};
	return labels[key->kind];
}

/* The enum's names as "`a`, `b`, `c`". */
static void enum_values(cw_buf_t *out, const cw_config_key_t *key)
{
	for (int i = 0;; i++) {
		const char *name = key->values ? key->values[i]
		                               : cw_column_type_name((cw_column_type_t)i);
		if (name == NULL || strcmp(name, "unknown") == 0)
			break;
		cw_buf_appendf(out, "%s`%s`", i > 0 ? ", " : "", name);
	}
}

static void reference_default(cw_buf_t *out, const cw_config_key_t *key)
{
	if (key->flags & CW_KEY_REQUIRED) {
		cw_buf_append_str(out, "**required**");
		if (key->applies_to != NULL) {
			cw_buf_append_str(out, " (");
			cw_config_applies_list(key, ", ", "", out);
			cw_buf_append_char(out, ')');
		}
	} else if (key->default_doc != NULL) {
		cw_buf_append_str(out, key->default_doc);
	} else if (key->default_text != NULL) {
		cw_buf_appendf(out, "`%s`", key->default_text);
	} else {
		cw_buf_append_str(out, "none");
	}
}

static void reference_description(cw_buf_t *out, const cw_config_key_t *key)
{
	char min[CW_UNITS_FORMAT_LEN], max[CW_UNITS_FORMAT_LEN];
	cw_buf_append_str(out, key->help);
	if (key->applies_to != NULL) {
		cw_buf_append_str(out, " Only for ");
		cw_config_applies_list(key, " and ", "`", out);
		cw_buf_appendf(out, " %.*s.", (int)strcspn(key->path, "["), key->path);
	}
	if (key->kind == CW_KEY_ENUM || key->kind == CW_KEY_COLUMN_TYPE) {
		cw_buf_append_str(out, " One of ");
		enum_values(out, key);
		cw_buf_append_char(out, '.');
	} else if (key->kind == CW_KEY_FLOAT) {
		cw_buf_appendf(out, " Range: %g to %g.", key->fmin, key->fmax);
	} else if (key->kind == CW_KEY_INT || key->kind == CW_KEY_DURATION || key->kind == CW_KEY_SIZE) {
		cw_config_format_number(key, key->min, min);
		cw_config_format_number(key, key->max, max);
		cw_buf_appendf(out, " Range: %s to %s.", min, max);
	}
}

static void reference_row(cw_buf_t *out, const cw_config_key_t *key)
{
	cw_buf_appendf(out, "| `%s` | %s | ", key->path, kind_label(key));
	reference_default(out, key);
	cw_buf_append_str(out, " | ");
	if (key->kind == CW_KEY_LIST || key->kind == CW_KEY_GROUP) {
		cw_buf_append_str(out, "—");
	} else {
		cw_buf_append_char(out, '`');
		cw_config_key_env_name(key, out);
		cw_buf_append_char(out, '`');
	}
	cw_buf_append_str(out, " | ");
	reference_description(out, key);
	cw_buf_append_str(out, " |\n");
}

int cw_config_write_reference(cw_buf_t *out)
{
	size_t nkeys;
	const cw_config_key_t *keys = cw_config_keys(&nkeys);
	cw_buf_append_str(out, reference_intro);
	for (size_t i = 0; i < nkeys; i++) {
		const cw_config_key_t *section = &keys[i];
		if (strchr(section->path, '.') != NULL)
			continue;
		/* A top-level value is its own section's one row. */
		bool value = section->kind != CW_KEY_GROUP && section->kind != CW_KEY_LIST;
		cw_buf_appendf(out, "\n## `%s`\n\n", section->path);
		if (!value)
			cw_buf_appendf(out, "%s\n\n", section->help);
		cw_buf_append_str(out, "| key | type | default | environment variable | description |\n"
		                       "|-----|------|---------|----------------------|-------------|\n");
		if (value)
			reference_row(out, section);
		size_t len = strlen(section->path);
		for (size_t j = i + 1; j < nkeys; j++) {
			const cw_config_key_t *key = &keys[j];
			if (strncmp(key->path, section->path, len) == 0 &&
			    (key->path[len] == '.' || key->path[len] == '['))
				reference_row(out, key);
		}
	}
	return 0;
}
