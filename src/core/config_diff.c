/*
 * This file contains the comparison of two configurations declared in
 * config.h (cw_config_scope_equal and friends), walked through the key table
 * (config_keys.h) so that a key added to the table is compared without code
 * of its own here.
 */
#include "core/config.h"

#include "core/config_keys.h"

#include <stdio.h>
#include <string.h>

static bool strings_equal(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* Whether key (a value or a list) holds the same in a and b, bases of its scope. */
static bool key_equal(const cw_config_key_t *key, const void *a, const void *b)
{
	const char *fa = (const char *)a + key->offset;
	const char *fb = (const char *)b + key->offset;
	switch (key->kind) {
	case CW_KEY_GROUP:
		return true;
	case CW_KEY_STRING:
	case CW_KEY_URL:
	case CW_KEY_SECRET:
	case CW_KEY_WORDS:
		return strings_equal(*(char *const *)fa, *(char *const *)fb);
	case CW_KEY_INT:
	case CW_KEY_DURATION:
	case CW_KEY_SIZE:
		return *(const int64_t *)fa == *(const int64_t *)fb;
	case CW_KEY_FLOAT:
		return *(const double *)fa == *(const double *)fb;
	case CW_KEY_ENUM:
		return *(const int *)fa == *(const int *)fb;
	case CW_KEY_COLUMN_TYPE:
		return *(const cw_column_type_t *)fa == *(const cw_column_type_t *)fb;
	case CW_KEY_LIST: {
		size_t na, nb;
		char *ia = cw_config_list_items(key, (void *)a, &na);
		char *ib = cw_config_list_items(key, (void *)b, &nb);
		if (na != nb)
			return false;
		char scope[160];
		snprintf(scope, sizeof scope, "%s[].", key->path);
		for (size_t i = 0; i < na; i++)
			if (!cw_config_scope_equal(scope, ia + i * key->item_size, ib + i * key->item_size))
				return false;
		return true;
	}
	}
	return false;
}

bool cw_config_scope_equal(const char *scope, const void *a, const void *b)
{
	size_t nkeys = 0;
	const cw_config_key_t *keys = cw_config_keys(&nkeys);
	for (size_t i = 0; i < nkeys; i++)
		if (cw_config_key_in_base(&keys[i], scope) && strcmp(keys[i].path, scope) != 0 &&
		    !key_equal(&keys[i], a, b))
			return false;
	return true;
}

bool cw_config_key_equal(const char *path, const void *a, const void *b)
{
	const cw_config_key_t *key = cw_config_key_find(path, strlen(path));
	return key != NULL && key_equal(key, a, b);
}

void cw_config_diff_top(const cw_config_t *a, const cw_config_t *b,
                        void (*changed)(void *arg, const char *path), void *arg)
{
	size_t nkeys = 0;
	const cw_config_key_t *keys = cw_config_keys(&nkeys);
	for (size_t i = 0; i < nkeys; i++)
		if (keys[i].kind != CW_KEY_GROUP && cw_config_key_in_base(&keys[i], "") &&
		    !key_equal(&keys[i], a, b))
			changed(arg, keys[i].path);
}

bool cw_config_auth_equal(const cw_auth_config_t *a, const cw_auth_config_t *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return cw_config_scope_equal("authentication[].", a, b);
}
