/*
 * This file contains the configuration loader (config.h): where every value
 * came from (file position or environment variable) so each error can say
 * so, the error list, and the steps of a load run in order.
 */
#include "core/config.h"

#include "core/config_keys.h"
#include "core/config_loader.h"
#include "core/mem.h"
#include "core/sha256.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DOMAIN "config"
#define MAX_ERRORS 50
#define MAX_FILE_BYTES (16 << 20)

static size_t hash_path(const char *path)
{
	size_t h = 1469598103934665603u;
	for (; *path; path++)
		h = (h ^ (unsigned char)*path) * 1099511628211u;
	return h;
}

/* The slot of path: where its index is, or the empty slot where it goes. */
static size_t *origin_slot(cw_config_loader_t *ld, const char *path)
{
	size_t mask = ld->nslots - 1;
	for (size_t i = hash_path(path) & mask;; i = (i + 1) & mask) {
		size_t index = ld->slots[i];
		if (index == 0 || strcmp(ld->origins[index - 1].path, path) == 0)
			return &ld->slots[i];
	}
}

static void origins_rehash(cw_config_loader_t *ld)
{
	free(ld->slots);
	ld->nslots = ld->nslots ? ld->nslots * 2 : 64;
	ld->slots = cw_xcalloc(ld->nslots, sizeof *ld->slots);
	for (size_t i = 0; i < ld->norigins; i++)
		*origin_slot(ld, ld->origins[i].path) = i + 1;
}

/* Records where path came from: a YAML node (env NULL) or an environment variable. */
cw_config_origin_t *cw_config_origin_add(cw_config_loader_t *ld, const char *path,
                                         const yaml_node_t *node, const char *env)
{
	if ((ld->norigins + 1) * 2 > ld->nslots)
		origins_rehash(ld);
	ld->origins = cw_xrealloc(ld->origins, (ld->norigins + 1) * sizeof *ld->origins);
	cw_config_origin_t *o = &ld->origins[ld->norigins++];
	*o = (cw_config_origin_t){cw_xstrdup(path), cw_xstrdup(env), 1, 1, false, false};
	if (node) {
		o->line = (int)node->start_mark.line + 1;
		o->column = (int)node->start_mark.column + 1;
	}
	*origin_slot(ld, path) = ld->norigins;
	return o;
}

const cw_config_origin_t *cw_config_origin_find(cw_config_loader_t *ld, const char *path)
{
	if (ld->nslots == 0)
		return NULL;
	size_t index = *origin_slot(ld, path);
	return index ? &ld->origins[index - 1] : NULL;
}

/* The origin of path, or of its nearest ancestor ("sources[0]", then "sources", then ""). */
static const cw_config_origin_t *find_origin(cw_config_loader_t *ld, const char *path)
{
	char *p = cw_xstrdup(path);
	const cw_config_origin_t *o = NULL;
	while ((o = cw_config_origin_find(ld, p)) == NULL && p[0] != '\0') {
		char *cut = strrchr(p, p[strlen(p) - 1] == ']' ? '[' : '.');
		*(cut ? cut : p) = '\0';
	}
	free(p);
	return o;
}

/* Formats and records one error: "<where>: key "<path>": <message>". */
static void vreport(cw_config_loader_t *ld, const cw_config_origin_t *o, const char *path,
                    const char *fmt, va_list ap)
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
bool cw_config_has_error(const cw_config_loader_t *ld, const char *path)
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
void cw_config_report_node(cw_config_loader_t *ld, const yaml_node_t *node, const char *path,
                           const char *fmt, ...)
{
	cw_config_origin_t o = {NULL, NULL, (int)node->start_mark.line + 1,
	                        (int)node->start_mark.column + 1, false, false};
	va_list ap;
	va_start(ap, fmt);
	vreport(ld, &o, path, fmt, ap);
	va_end(ap);
}

/* An error about path where it (or its nearest ancestor) came from. */
void cw_config_report(cw_config_loader_t *ld, const char *path, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport(ld, find_origin(ld, path), path, fmt, ap);
	va_end(ap);
}

/* An error about an environment variable; path may be NULL. */
void cw_config_report_env(cw_config_loader_t *ld, const char *env, const char *path,
                          const char *fmt, ...)
{
	cw_config_origin_t o = {NULL, (char *)env, 0, 0, false, false};
	va_list ap;
	va_start(ap, fmt);
	vreport(ld, &o, path, fmt, ap);
	va_end(ap);
}

int cw_config_load_buffer(const char *name, const char *bytes, size_t len,
                          const cw_config_load_opts_t *opts, cw_config_t **out, cw_err_t *err)
{
	cw_config_loader_t ld = {.name = name, .err = err, .errors = opts ? opts->errors : NULL};
	*out = NULL;
	ld.config = cw_xcalloc(1, sizeof *ld.config);
	ld.config->path = cw_xstrdup(name);
	cw_sha256_hex(bytes, len, ld.config->sha256);
	ld.config->retry.jitter = 0.5;
	cw_config_defaults("", ld.config);
	if (cw_config_load_document(&ld, bytes, len)) {
		cw_config_apply_env(&ld, opts ? opts->envp : NULL);
		cw_config_check_scope(&ld, "", "", ld.config);
		cw_config_check_relations(&ld);   /* also after errors: one run reports them all */
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
