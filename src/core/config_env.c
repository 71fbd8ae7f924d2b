/*
 * This file contains the environment overrides of the configuration
 * (config_loader.h): each CACHEWARP_* variable matched to its key and list
 * items, and the errors about variables that match none.
 */
#include "core/config_keys.h"
#include "core/config_loader.h"
#include "core/mem.h"

#include <stdlib.h>
#include <string.h>

#define ENV_PREFIX "CACHEWARP_"

/* "sources" -> "the file has 2 sources" context for an index past the end. */
static void report_missing_item(cw_config_loader_t *ld, const char *env, const char *path,
                                const cw_config_key_t *list, size_t index, size_t count)
{
	cw_config_report_env(ld, env, path,
	                     "%s item %zu does not exist: there %s %zu (the environment can "
	                     "change items the file has, not add new ones)",
	                     list->path, index, count == 1 ? "is" : "are", count);
}

/*
 * Finds the struct holding key's value for the list indexes given by an
 * environment variable and writes the concrete path. NULL (reported) when an
 * index is past the end of its list.
 */
static void *env_base(cw_config_loader_t *ld, const char *env, const cw_config_key_t *key,
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

static void report_unknown_env(cw_config_loader_t *ld, const char *env)
{
	cw_buf_t guess = CW_BUF_INIT;
	if (cw_config_env_suggest(env, &guess))
		cw_config_report_env(ld, env, NULL, "unknown variable (did you mean %s?)",
		                     cw_buf_cstr(&guess));
	else
		cw_config_report_env(ld, env, NULL,
		                     "unknown variable (CACHEWARP_ + a key path in upper case with _ "
		                     "for . and list indexes: CACHEWARP_HUB_URL, "
		                     "CACHEWARP_SOURCES_0_URL)");
	cw_buf_free(&guess);
}

static void apply_env_var(cw_config_loader_t *ld, const char *env, const char *value)
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
		cw_config_origin_add(ld, cw_buf_cstr(&path), NULL, env);
		if (cw_config_key_set(key, base, value, &why) != 0)
			cw_config_report_env(ld, env, cw_buf_cstr(&path), "%s", why.message);
	}
	cw_buf_free(&path);
}

void cw_config_apply_env(cw_config_loader_t *ld, char *const *envp)
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
