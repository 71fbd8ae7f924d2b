/*
 * This file contains the checks of each scope of a loaded configuration
 * (config_loader.h): required values present, type-specific keys only where
 * their type applies, for the top level and every list item.
 */
#include "core/config_keys.h"
#include "core/config_loader.h"
#include "core/mem.h"

#include <stdlib.h>
#include <string.h>

/* Checks one value key of an item or of the top level; path is its concrete path. */
static void check_value_key(cw_config_loader_t *ld, const cw_config_key_t *key, const char *path,
                            const char *at, void *base)
{
	char *type_path = cw_xasprintf("%stype", at);
	const cw_config_origin_t *value_origin = cw_config_origin_find(ld, path);
	const cw_config_origin_t *type_origin = cw_config_origin_find(ld, type_path);
	bool set = value_origin != NULL && !value_origin->empty;
	bool type_known = key->applies_to == NULL || (type_origin != NULL && !type_origin->empty);
	if (type_known && !cw_config_key_applies(key, base)) {
		if (set) {
			cw_buf_t phrase = CW_BUF_INIT;
			cw_config_applies_list(key, " or ", "", &phrase);
			cw_config_report(ld, path, "only applies to %s %.*s", cw_buf_cstr(&phrase),
			                 (int)strcspn(key->path, "["), key->path);
			cw_buf_free(&phrase);
		}
		cw_config_key_clear(key, base);  /* a default that does not apply */
	} else if (type_known && (key->flags & CW_KEY_REQUIRED) && !set) {
		cw_config_report(ld, path, "missing required value");
	}
	free(type_path);
}

/*
 * Checks every key whose value lives in base (scope: the pattern prefix, at:
 * the concrete one): required values present, type-specific keys only where
 * they apply; then the items of its lists.
 */
void cw_config_check_scope(cw_config_loader_t *ld, const char *scope, const char *at, void *base)
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
			const cw_config_origin_t *o = cw_config_origin_find(ld, item_path);
			if (o == NULL || !o->broken)
				cw_config_check_scope(ld, child_scope, child_at,
				                      items + j * key->item_size);
			free(child_at);
			free(item_path);
		}
		free(child_scope);
		free(path);
	}
}
