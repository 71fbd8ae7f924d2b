/*
 * This file contains the loader's state and the helpers its pieces share:
 * config.c (where each value came from, the error list, loading a file),
 * config_yaml.c (parsing the YAML and walking it through the key table),
 * config_env.c (the environment overrides), config_scope.c (each scope's
 * required and type-specific keys) and config_relations.c (the checks across
 * keys). It is private to those files: other modules include core/config.h.
 */
#ifndef CW_CORE_CONFIG_LOADER_H
#define CW_CORE_CONFIG_LOADER_H

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

/* Where a value (or a mapping) came from. */
typedef struct cw_config_origin {
	char *path;     /* owned; concrete path: "sources[0].url", "sources[0]", "" for the top */
	char *env;      /* owned; the environment variable that set it, or NULL */
	int line;       /* 1-based position in the file, when env is NULL */
	int column;
	bool empty;     /* the key is there without a value (key: or key: ~) */
	bool broken;    /* a list item that is not a mapping: not checked further */
} cw_config_origin_t;

typedef struct cw_config_loader {
	const char *name;          /* file name for messages */
	cw_config_t *config;
	yaml_document_t *doc;
	cw_config_origin_t *origins; /* in the order they were recorded */
	size_t norigins;
	size_t *slots;             /* hash of path -> index + 1 into origins (latest wins), 0 = empty */
	size_t nslots;
	size_t nodes;              /* YAML nodes visited (config_yaml.c limits them) */
	size_t nerrors;
	char **error_paths;        /* owned; the key of each error reported about one */
	size_t nerror_paths;
	cw_err_t *err;             /* receives the first error */
	cw_buf_t *errors;          /* receives every error, may be NULL */
} cw_config_loader_t;

/* ---- origins and errors (config.c) ------------------------------------ */

/*
 * Records where path (copied) came from: a YAML node (env NULL) or the
 * environment variable env (copied). The returned origin is the loader's,
 * valid until the next call.
 */
cw_config_origin_t *cw_config_origin_add(cw_config_loader_t *ld, const char *path,
                                         const yaml_node_t *node, const char *env);

/* The origin recorded for exactly path (the loader's), or NULL. */
const cw_config_origin_t *cw_config_origin_find(cw_config_loader_t *ld, const char *path);

/*
 * Whether an error was reported about path or a key below it ("sources[0]"
 * covers "sources[0].type").
 */
bool cw_config_has_error(const cw_config_loader_t *ld, const char *path);

/* Records an error about path (NULL: about no key) at a YAML node's position. */
void cw_config_report_node(cw_config_loader_t *ld, const yaml_node_t *node, const char *path,
                           const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Records an error about path where it (or its nearest ancestor) came from. */
void cw_config_report(cw_config_loader_t *ld, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Records an error about the environment variable env; path may be NULL. */
void cw_config_report_env(cw_config_loader_t *ld, const char *env, const char *path,
                          const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* ---- the steps of a load ---------------------------------------------- */

/*
 * Parses the YAML in bytes (borrowed) and walks it into ld->config (config_yaml.c).
 * false on a syntax error or another version (reported).
 */
bool cw_config_load_document(cw_config_loader_t *ld, const char *bytes, size_t len);

/*
 * Applies every CACHEWARP_* variable of envp (NULL-terminated, may be NULL)
 * but CACHEWARP_CONFIG to ld->config (config_env.c); errors are reported.
 */
void cw_config_apply_env(cw_config_loader_t *ld, char *const *envp);

/*
 * Checks the keys whose values live in base, then its lists' items
 * (config_scope.c); errors are reported.
 */
void cw_config_check_scope(cw_config_loader_t *ld, const char *scope, const char *at, void *base);

/* The checks that relate keys to each other (config_relations.c); errors are reported. */
void cw_config_check_relations(cw_config_loader_t *ld);

#endif
