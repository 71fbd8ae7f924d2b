/*
 * This file contains the configuration's values as the key table
 * (config_keys.h) describes them: parsing and checking a value by its key's
 * kind, setting defaults, lists of items, freeing a configuration, and
 * finding a configured source, target, entity, authentication entry,
 * transformation or stream by name.
 */
#include "core/config_keys.h"

#include "core/auth.h"
#include "core/entity.h"
#include "core/mem.h"
#include "core/units.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DOMAIN "config"

static void quote_into(char *out, size_t size, const char *text)
{
	cw_buf_t buf = CW_BUF_INIT;
	cw_config_quote(&buf, text);
	snprintf(out, size, "%s", cw_buf_cstr(&buf));
	cw_buf_free(&buf);
}

/* "invalid value "x" (did you mean "y"?)" or "invalid value "x" (use a, b or c)". */
static int bad_choice(const char *text, const char *const *names, size_t count, cw_err_t *err)
{
	char q[300];
	quote_into(q, sizeof q, text);
	const char *guess = cw_config_closest(text, names, count);
	if (guess)
		return cw_err_set(err, CW_EINVAL, DOMAIN, "invalid value %s (did you mean \"%s\"?)", q,
		                  guess);
	cw_buf_t choices = CW_BUF_INIT;
	cw_config_join(&choices, names, count);
	cw_err_set(err, CW_EINVAL, DOMAIN, "invalid value %s (use %s)", q, cw_buf_cstr(&choices));
	cw_buf_free(&choices);
	return CW_EINVAL;
}

static size_t count_names(const char *const *names)
{
	size_t n = 0;
	while (names[n])
		n++;
	return n;
}

/* The column type names, in cw_column_type_t order; returns their count. */
static size_t column_type_names(const char *names[16])
{
	size_t n = 0;
	while (n < 15 && strcmp(cw_column_type_name((cw_column_type_t)n), "unknown") != 0) {
		names[n] = cw_column_type_name((cw_column_type_t)n);
		n++;
	}
	names[n] = NULL;
	return n;
}

void cw_config_format_number(const cw_config_key_t *key, int64_t value, char out[CW_UNITS_FORMAT_LEN])
{
	if (key->kind == CW_KEY_DURATION)
		cw_duration_format(value, out);
	else if (key->kind == CW_KEY_SIZE)
		cw_size_format(value, out);
	else
		snprintf(out, CW_UNITS_FORMAT_LEN, "%" PRId64, value);
}

static int out_of_range(const cw_config_key_t *key, int64_t value, cw_err_t *err)
{
	char got[CW_UNITS_FORMAT_LEN], min[CW_UNITS_FORMAT_LEN], max[CW_UNITS_FORMAT_LEN];
	cw_config_format_number(key, value, got);
	cw_config_format_number(key, key->min, min);
	cw_config_format_number(key, key->max, max);
	return cw_err_set(err, CW_EINVAL, DOMAIN, "out of range: %s (allowed: %s to %s)", got, min,
	                  max);
}

/* Message for text that does not parse as what: "wrong type: expected an integer, got "x"". */
static int wrong_type(const char *what, const char *text, const cw_err_t *why, cw_err_t *err)
{
	char q[300];
	quote_into(q, sizeof q, text);
	const char *reason = why ? strstr(why->message, ": ") : NULL;
	return cw_err_set(err, CW_EINVAL, DOMAIN, "wrong type: expected %s, got %s%s", what, q,
	                  reason ? reason : "");
}

static int parse_int(const char *text, int64_t *value, cw_err_t *err)
{
	char *end = NULL;
	errno = 0;
	long long n = strtoll(text, &end, 10);
	if (!(isdigit((unsigned char)text[0]) || (text[0] == '-' && isdigit((unsigned char)text[1]))) ||
	    *end != '\0')
		return wrong_type("an integer", text, NULL, err);
	if (errno == ERANGE)
		return cw_err_set(err, CW_EINVAL, DOMAIN, "out of range: %s does not fit in 64 bits", text);
	*value = (int64_t)n;
	return 0;
}

/* Parses text into *value for the INT, DURATION and SIZE kinds and checks the range. */
static int parse_integral(const cw_config_key_t *key, const char *text, int64_t *value, cw_err_t *err)
{
	cw_err_t why;
	int rc = 0;
	if (key->kind == CW_KEY_INT)
		rc = parse_int(text, value, err);
	else if (key->kind == CW_KEY_DURATION && cw_duration_parse(text, value, &why) != 0)
		rc = wrong_type("a duration", text, &why, err);
	else if (key->kind == CW_KEY_SIZE && cw_size_parse(text, value, &why) != 0)
		rc = wrong_type("a size", text, &why, err);
	if (rc == 0 && (*value < key->min || *value > key->max))
		rc = out_of_range(key, *value, err);
	return rc;
}

static int parse_float(const cw_config_key_t *key, const char *text, double *value, cw_err_t *err)
{
	char *end = NULL;
	double d = strtod(text, &end);
	bool numeric = isdigit((unsigned char)text[0]) ||
	               ((text[0] == '-' || text[0] == '.') && isdigit((unsigned char)text[1]));
	if (!numeric || *end != '\0' || !isfinite(d))
		return wrong_type("a number", text, NULL, err);
	if (d < key->fmin || d > key->fmax)
		return cw_err_set(err, CW_EINVAL, DOMAIN, "out of range: %g (allowed: %g to %g)", d,
		                  key->fmin, key->fmax);
	*value = d;
	return 0;
}

static int parse_column_type(const char *text, cw_column_type_t *type, cw_err_t *err)
{
	if (cw_column_type_parse(text, type, NULL) == 0)
		return 0;
	const char *names[16];
	size_t n = column_type_names(names);
	return bad_choice(text, names, n, err);
}

/* Replaces the string at field with a copy of text after check() accepts it. */
static int set_string(const cw_config_key_t *key, char **field, const char *text, cw_err_t *err)
{
	if (key->kind == CW_KEY_URL && text[0] == '\0')
		return cw_err_set(err, CW_EINVAL, DOMAIN, "invalid value: the url is empty");
	if (key->check != NULL) {
		cw_err_t why;
		if (key->check(text, &why) != 0)
			return cw_err_set(err, CW_EINVAL, DOMAIN, "%s", why.message);
	}
	free(*field);
	*field = cw_xstrdup(text);
	return 0;
}

bool cw_config_words_has(const char *words, const char *word)
{
	size_t len = strlen(word);
	for (const char *p = words; p != NULL && *p != '\0';) {
		size_t item = strcspn(p, ",");
		if (item == len && memcmp(p, word, len) == 0)
			return true;
		p += item + (p[item] == ',');
	}
	return false;
}

int cw_config_word_check(const cw_config_key_t *key, const char *word, cw_err_t *err)
{
	if (word[0] == '\0')
		return cw_err_set(err, CW_EINVAL, DOMAIN, "invalid value: an empty item");
	cw_err_t why;
	if (strchr(word, ',') != NULL || (key->check != NULL && key->check(word, &why) != 0)) {
		char q[300];
		quote_into(q, sizeof q, word);
		return cw_err_set(err, CW_EINVAL, DOMAIN, "invalid value %s: %s", q,
		                  strchr(word, ',') ? "one item holds a comma" : why.message);
	}
	return 0;
}

/*
 * Replaces the words at field with the comma-separated text: blanks around
 * each word are dropped, "" leaves no words (NULL).
 */
static int set_words(const cw_config_key_t *key, char **field, const char *text, cw_err_t *err)
{
	cw_buf_t joined = CW_BUF_INIT;
	size_t count = 0;
	int rc = 0;
	bool blank = text[strspn(text, " \t")] == '\0';
	for (const char *p = text; !blank && rc == 0; p++) {
		p += strspn(p, " \t");
		size_t span = strcspn(p, ","), len = span;
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		char *word = cw_xstrndup(p, len);
		rc = cw_config_word_check(key, word, err);
		free(word);
		if (rc == 0 && ++count > key->max_items)
			rc = cw_err_set(err, CW_EINVAL, DOMAIN, "too many items (the limit is %zu)",
			                key->max_items);
		if (rc == 0)
			cw_buf_appendf(&joined, "%s%.*s", count > 1 ? "," : "", (int)len, p);
		p += span;
		if (*p == '\0')
			break;
	}
	if (rc == 0) {
		free(*field);
		*field = joined.len > 0 ? cw_buf_take(&joined) : NULL;
	}
	cw_buf_free(&joined);
	return rc;
}

int cw_config_key_set(const cw_config_key_t *key, void *base, const char *text, cw_err_t *err)
{
	void *field = cw_config_key_field(key, base);
	switch (key->kind) {
	case CW_KEY_STRING:
	case CW_KEY_URL:
	case CW_KEY_SECRET:
		return set_string(key, field, text, err);
	case CW_KEY_INT:
	case CW_KEY_DURATION:
	case CW_KEY_SIZE:
		return parse_integral(key, text, field, err);
	case CW_KEY_FLOAT:
		return parse_float(key, text, field, err);
	case CW_KEY_ENUM:
		for (int i = 0; key->values[i]; i++) {
			if (strcmp(key->values[i], text) == 0) {
				*(int *)field = i;
				return 0;
			}
		}
		return bad_choice(text, key->values, count_names(key->values), err);
	case CW_KEY_COLUMN_TYPE:
		return parse_column_type(text, field, err);
	case CW_KEY_WORDS:
		return set_words(key, field, text, err);
	case CW_KEY_GROUP:
	case CW_KEY_LIST:
		break;
	}
	return cw_err_set(err, CW_EINTERNAL, DOMAIN, "key \"%s\" holds no value", key->path);
}

char *cw_config_list_items(const cw_config_key_t *list, void *base, size_t *count)
{
	*count = *(size_t *)((char *)base + list->count_offset);
	return *(char **)cw_config_key_field(list, base);
}

/* Writes "<list path>[]." into scope. */
static void item_scope(const cw_config_key_t *list, char scope[128])
{
	snprintf(scope, 128, "%s[].", list->path);
}

void *cw_config_list_append(const cw_config_key_t *list, void *base)
{
	size_t count;
	char *items = cw_config_list_items(list, base, &count);
	items = cw_xrealloc(items, (count + 1) * list->item_size);
	char *item = items + count * list->item_size;
	memset(item, 0, list->item_size);
	*(char **)cw_config_key_field(list, base) = items;
	*(size_t *)((char *)base + list->count_offset) = count + 1;
	char scope[128];
	item_scope(list, scope);
	cw_config_defaults(scope, item);
	return item;
}

void cw_config_defaults(const char *scope, void *base)
{
	size_t nkeys;
	const cw_config_key_t *keys = cw_config_keys(&nkeys);
	for (size_t i = 0; i < nkeys; i++) {
		if (keys[i].default_text != NULL && cw_config_key_in_base(&keys[i], scope)) {
			int rc = cw_config_key_set(&keys[i], base, keys[i].default_text, NULL);
			if (rc != 0)
				abort();  /* a default that fails its own key: a bug in the table */
		}
	}
}

void cw_config_key_clear(const cw_config_key_t *key, void *base)
{
	if (key->kind == CW_KEY_STRING || key->kind == CW_KEY_URL || key->kind == CW_KEY_SECRET ||
	    key->kind == CW_KEY_WORDS) {
		char **field = cw_config_key_field(key, base);
		free(*field);
		*field = NULL;
	}
}

void cw_config_free_scope(const char *scope, void *base)
{
	size_t nkeys;
	const cw_config_key_t *keys = cw_config_keys(&nkeys);
	for (size_t i = 0; i < nkeys; i++) {
		const cw_config_key_t *key = &keys[i];
		if (!cw_config_key_in_base(key, scope))
			continue;
		if (key->kind != CW_KEY_LIST) {
			cw_config_key_clear(key, base);
		} else {
			size_t count;
			char *items = cw_config_list_items(key, base, &count);
			char child[128];
			item_scope(key, child);
			for (size_t j = 0; j < count; j++)
				cw_config_free_scope(child, items + j * key->item_size);
			free(items);
			*(char **)cw_config_key_field(key, base) = NULL;
			*(size_t *)((char *)base + key->count_offset) = 0;
		}
	}
}

const char *cw_config_enum_name(const cw_config_key_t *key, const void *base)
{
	const void *field = (const char *)base + key->offset;
	if (key->kind == CW_KEY_COLUMN_TYPE)
		return cw_column_type_name(*(const cw_column_type_t *)field);
	int index = *(const int *)field;
	size_t count = count_names(key->values);
	return index >= 0 && (size_t)index < count ? key->values[index] : "unknown";
}

bool cw_config_key_applies(const cw_config_key_t *key, const void *base)
{
	if (key->applies_to == NULL)
		return true;
	/* The type of the nearest list item, also for a group inside one ("authentication[].config."). */
	const char *item = NULL;
	for (const char *p = key->path; (p = strstr(p, "[].")) != NULL; p += 3)
		item = p + 3;
	size_t scope_len = item ? (size_t)(item - key->path) : cw_config_key_parent_len(key) + 1;
	char type_path[128];
	snprintf(type_path, sizeof type_path, "%.*stype", (int)scope_len, key->path);
	const cw_config_key_t *type_key = cw_config_key_find(type_path, strlen(type_path));
	if (type_key == NULL)
		return true;
	const char *type = cw_config_enum_name(type_key, base);
	size_t len = strlen(type);
	for (const char *p = key->applies_to; (p = strstr(p, type)) != NULL; p += len) {
		bool starts = p == key->applies_to || p[-1] == ' ';
		if (starts && (p[len] == '\0' || p[len] == ' '))
			return true;
	}
	return false;
}

void cw_config_applies_list(const cw_config_key_t *key, const char *separator, const char *quote,
                            cw_buf_t *out)
{
	for (const char *p = key->applies_to; *p; p += strspn(p, " ")) {
		size_t len = strcspn(p, " ");
		cw_buf_appendf(out, "%s%s%.*s%s", p == key->applies_to ? "" : separator, quote, (int)len,
		               p, quote);
		p += len;
	}
}

void cw_config_free(cw_config_t *config)
{
	if (config == NULL)
		return;
	for (size_t i = 0; i < config->nauthentication; i++)
		cw_auth_state_free(config->authentication[i].state);
	cw_config_free_scope("", config);
	free(config->path);
	free(config);
}

/* The item of the list at list_path (in config) whose name is name, or NULL. */
static const void *find_named(const cw_config_t *config, const char *list_path, const char *name)
{
	char name_path[32];
	snprintf(name_path, sizeof name_path, "%s[].name", list_path);
	const cw_config_key_t *list = cw_config_key_find(list_path, strlen(list_path));
	size_t offset = cw_config_key_find(name_path, strlen(name_path))->offset;
	size_t count;
	const char *items = cw_config_list_items(list, (void *)config, &count);
	for (size_t i = 0; name != NULL && i < count; i++) {
		const char *item = items + i * list->item_size;
		const char *item_name = *(char *const *)(item + offset);
		if (item_name != NULL && strcmp(item_name, name) == 0)
			return item;
	}
	return NULL;
}

const cw_source_config_t *cw_config_source(const cw_config_t *config, const char *name)
{
	return find_named(config, "sources", name);
}

const cw_target_config_t *cw_config_target(const cw_config_t *config, const char *name)
{
	return find_named(config, "targets", name);
}

const cw_entity_t *cw_config_entity(const cw_config_t *config, const char *name)
{
	return find_named(config, "entities", name);
}

const cw_auth_config_t *cw_config_auth(const cw_config_t *config, const char *id)
{
	for (size_t i = 0; id != NULL && i < config->nauthentication; i++) {
		const char *item_id = config->authentication[i].id;
		if (item_id != NULL && strcmp(item_id, id) == 0)
			return &config->authentication[i];
	}
	return NULL;
}

const cw_transformation_config_t *cw_config_transformation(const cw_config_t *config,
                                                           const char *id)
{
	for (size_t i = 0; id != NULL && i < config->ntransformations; i++)
		if (config->transformations[i].id != NULL &&
		    strcmp(config->transformations[i].id, id) == 0)
			return &config->transformations[i];
	return NULL;
}

const cw_stream_config_t *cw_config_stream(const cw_target_config_t *target, const char *entity)
{
	for (size_t i = 0; target != NULL && entity != NULL && i < target->nstreams; i++)
		if (target->streams[i].entity != NULL && strcmp(target->streams[i].entity, entity) == 0)
			return &target->streams[i];
	return NULL;
}