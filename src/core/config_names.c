/*
 * This file contains how the configuration names things for people
 * (config_keys.h): a key's environment variable and the reverse match, the
 * closest name to a misspelt one, quoting and joining names in messages,
 * and the report of duplicate names in a list.
 */
#include "core/config_keys.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cw_config_join(cw_buf_t *out, const char *const *names, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		if (i > 0)
			cw_buf_append_str(out, i + 1 == count ? " or " : ", ");
		cw_buf_append_str(out, names[i]);
	}
}

const char *cw_config_closest(const char *word, const char *const *names, size_t count)
{
	const char *best = NULL;
	size_t best_distance = 3;
	for (size_t i = 0; i < count; i++) {
		size_t d = cw_config_distance(word, names[i]);
		if (d < best_distance) {
			best = names[i];
			best_distance = d;
		}
	}
	return best;
}

void cw_config_unknown_name(cw_buf_t *out, const char *what, const char *name,
                            const char *const *names, size_t count, size_t configured)
{
	const char *guess = cw_config_closest(name, names, count);
	cw_buf_appendf(out, "unknown %s \"%s\" (", what, name);
	if (guess != NULL) {
		cw_buf_appendf(out, "did you mean \"%s\"?)", guess);
	} else if (configured == 0) {
		cw_buf_appendf(out, "no %ss are configured)", what);
	} else if (count == 0) {
		cw_buf_appendf(out, "no configured %s has a valid name)", what);
	} else {
		cw_buf_appendf(out, "configured %ss: ", what);
		cw_config_join(out, names, count);
		cw_buf_append_char(out, ')');
	}
}

void cw_config_key_env_name(const cw_config_key_t *key, cw_buf_t *out)
{
	cw_buf_append_str(out, "CACHEWARP_");
	for (const char *p = key->path; *p; p++) {
		if (p[0] == '[' && p[1] == ']') {
			cw_buf_append_str(out, "_<i>");
			p++;
		} else if (*p == '.') {
			cw_buf_append_char(out, '_');
		} else {
			cw_buf_append_char(out, (char)toupper((unsigned char)*p));
		}
	}
}

/* Matches name against pattern, where "<i>" stands for a decimal index. */
static bool env_pattern_match(const char *pattern, const char *name, size_t indexes[4], size_t *n)
{
	*n = 0;
	while (*pattern) {
		if (strncmp(pattern, "<i>", 3) != 0) {
			if (*pattern++ != *name++)
				return false;
			continue;
		}
		size_t digits = strspn(name, "0123456789");
		if (digits == 0 || digits > 9 || (digits > 1 && name[0] == '0') || *n == 4)
			return false;
		indexes[(*n)++] = (size_t)strtoul(name, NULL, 10);
		name += digits;
		pattern += 3;
	}
	return *name == '\0';
}

const cw_config_key_t *cw_config_env_match(const char *name, size_t indexes[4], size_t *nindexes)
{
	size_t nkeys;
	const cw_config_key_t *keys = cw_config_keys(&nkeys);
	cw_buf_t pattern = CW_BUF_INIT;
	const cw_config_key_t *found = NULL;
	for (size_t i = 0; i < nkeys && found == NULL; i++) {
		if (keys[i].kind == CW_KEY_GROUP || keys[i].kind == CW_KEY_LIST)
			continue;
		cw_buf_reset(&pattern);
		cw_config_key_env_name(&keys[i], &pattern);
		if (env_pattern_match(cw_buf_cstr(&pattern), name, indexes, nindexes))
			found = &keys[i];
	}
	cw_buf_free(&pattern);
	return found;
}

bool cw_config_env_suggest(const char *name, cw_buf_t *out)
{
	/* Compare with list indexes written as <i> on both sides. */
	cw_buf_t normalized = CW_BUF_INIT, candidate = CW_BUF_INIT;
	for (const char *p = name; *p; p++) {
		if (isdigit((unsigned char)*p)) {
			cw_buf_append_str(&normalized, "<i>");
			p += strspn(p, "0123456789") - 1;
		} else {
			cw_buf_append_char(&normalized, *p);
		}
	}
	size_t nkeys;
	const cw_config_key_t *keys = cw_config_keys(&nkeys);
	const cw_config_key_t *best = NULL;
	size_t best_distance = 3;
	for (size_t i = 0; i < nkeys; i++) {
		if (keys[i].kind == CW_KEY_GROUP || keys[i].kind == CW_KEY_LIST)
			continue;
		cw_buf_reset(&candidate);
		cw_config_key_env_name(&keys[i], &candidate);
		size_t d = cw_config_distance(cw_buf_cstr(&normalized), cw_buf_cstr(&candidate));
		if (d < best_distance) {
			best = &keys[i];
			best_distance = d;
		}
	}
	if (best != NULL)
		cw_config_key_env_name(best, out);
	cw_buf_free(&normalized);
	cw_buf_free(&candidate);
	return best != NULL;
}

size_t cw_config_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64)
		return SIZE_MAX;
	size_t row[65];
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diagonal = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t above = row[j];
			size_t cost = diagonal + (a[i - 1] != b[j - 1]);
			size_t best = above + 1 < row[j - 1] + 1 ? above + 1 : row[j - 1] + 1;
			row[j] = cost < best ? cost : best;
			diagonal = above;
		}
	}
	return row[lb];
}

void cw_config_quote(cw_buf_t *out, const char *text)
{
	size_t len = strlen(text);
	cw_buf_append_char(out, '"');
	for (size_t i = 0; i < len && i < 64; i++) {
		unsigned char c = (unsigned char)text[i];
		if (c == '"' || c == '\\')
			cw_buf_appendf(out, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			cw_buf_appendf(out, "\\x%02x", c);
		else
			cw_buf_append_char(out, (char)c);
	}
	if (len > 64)
		cw_buf_append_str(out, "...");
	cw_buf_append_char(out, '"');
}

void cw_config_reportf(const cw_config_reporter_t *reporter, const char *path, const char *fmt, ...)
{
	char message[CW_ERR_MESSAGE_LEN];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(message, sizeof message, fmt, ap);
	va_end(ap);
	reporter->report(reporter->loader, path, message);
}

void cw_config_check_unique(const cw_config_reporter_t *reporter, const cw_config_t *config,
                            const char *list_path, const char *leaf, const char *what)
{
	char path[128];
	snprintf(path, sizeof path, "%s[].%s", list_path, leaf);
	const cw_config_key_t *list = cw_config_key_find(list_path, strlen(list_path));
	size_t offset = cw_config_key_find(path, strlen(path))->offset;
	size_t count;
	char *items = cw_config_list_items(list, (void *)config, &count);
	for (size_t i = 1; i < count; i++) {
		const char *value = *(char **)(items + i * list->item_size + offset);
		for (size_t j = 0; value != NULL && j < i; j++) {
			const char *other = *(char **)(items + j * list->item_size + offset);
			if (other == NULL || strcmp(value, other) != 0)
				continue;
			snprintf(path, sizeof path, "%s[%zu].%s", list_path, i, leaf);
			cw_config_reportf(reporter, path, "duplicate %s \"%s\" (%s[%zu] has it already)",
			                  what, value, list_path, j);
			break;
		}
	}
}
