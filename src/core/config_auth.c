/*
 * This file contains the checks of `authentication` and of every `auth_id`
 * (config_keys.h, cw_config_check_auth), run by the loader with the checks
 * that relate keys to each other.
 */
#include "core/auth.h"
#include "core/config_keys.h"
#include "core/mem.h"
#include "core/secret.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Makes *file absolute and reports it when it cannot be read. */
static void check_file(const cw_config_reporter_t *r, const char *config_name, size_t index,
                       const char *leaf, char **file)
{
	char path[96];
	snprintf(path, sizeof path, "authentication[%zu].config.%s", index, leaf);
	if (*file == NULL || r->has_error(r->loader, path))
		return;
	char *resolved = cw_config_resolve_path(config_name, *file);
	free(*file);
	*file = resolved;
	struct stat st;
	if (access(resolved, R_OK) != 0) {
		cw_config_reportf(r, path, "cannot read file \"%s\": %s", resolved, strerror(errno));
	} else if (strcmp(leaf, "key_file") == 0 && stat(resolved, &st) == 0 &&
	           S_ISREG(st.st_mode) &&
	           ((st.st_uid == geteuid() && (st.st_mode & 0077) != 0) ||
	            (st.st_uid == 0 && (st.st_mode & 0037) != 0))) {
		/* libpq's own rule for sslkey: 0600 or less, 0640 for a file root owns */
		cw_config_reportf(r, path, "private key \"%s\" can be read or written by others "
		                  "(mode %04o): PostgreSQL clients refuse it; chmod 600 it", resolved,
		                  (unsigned)(st.st_mode & 07777));
	}
}

static void check_entry(const cw_config_reporter_t *r, const char *config_name, size_t index,
                        cw_auth_config_t *auth)
{
	char at[64], path[96];
	snprintf(at, sizeof at, "authentication[%zu]", index);
	snprintf(path, sizeof path, "%s.type", at);
	if (r->has_error(r->loader, path))
		return;
	if (auth->type == CW_AUTH_USERNAME_PASSWORD) {
		snprintf(path, sizeof path, "%s.config.username", at);
		if (auth->username == NULL && !r->has_error(r->loader, path))
			cw_config_reportf(r, path, "missing required value (a username_password entry "
			                  "names its user)");
		snprintf(path, sizeof path, "%s.config.password", at);
		if (auth->password != NULL && auth->password_file != NULL)
			cw_config_reportf(r, path, "give password or password_file, not both");
		else if (auth->password == NULL && auth->password_file == NULL &&
		         !r->has_error(r->loader, path))
			cw_config_reportf(r, path, "missing required value (or give password_file)");
	}
	check_file(r, config_name, index, "password_file", &auth->password_file);
	check_file(r, config_name, index, "cert_file", &auth->cert_file);
	check_file(r, config_name, index, "key_file", &auth->key_file);
	check_file(r, config_name, index, "ca_file", &auth->ca_file);
	snprintf(path, sizeof path, "%s.config.command", at);
	char **argv = NULL;
	cw_err_t why;
	if (auth->command != NULL && !auth->shell && !r->has_error(r->loader, path) &&
	    cw_auth_command_split(auth->command, &argv, &why) != 0)
		cw_config_reportf(r, path, "invalid value: %s", why.message);
	cw_auth_argv_free(argv);
}

/*
 * Resolves auth_id (at path "<at>.auth_id") into *auth and checks the url at
 * "<at>.url" does not carry a password the entry also gives.
 */
static void resolve(const cw_config_reporter_t *r, const cw_config_t *config, const char *at,
                    const char *auth_id, const char *url, const cw_auth_config_t **auth)
{
	char path[96];
	snprintf(path, sizeof path, "%s.auth_id", at);
	*auth = NULL;
	if (auth_id == NULL || r->has_error(r->loader, path))
		return;
	*auth = cw_config_auth(config, auth_id);
	if (*auth == NULL) {
		const char **ids = cw_xcalloc(config->nauthentication + 1, sizeof *ids);
		size_t n = 0;
		for (size_t i = 0; i < config->nauthentication; i++)
			if (config->authentication[i].id != NULL)
				ids[n++] = config->authentication[i].id;
		const char *guess = cw_config_closest(auth_id, ids, n);
		cw_buf_t known = CW_BUF_INIT;
		cw_config_join(&known, ids, n);
		if (guess != NULL)
			cw_config_reportf(r, path, "unknown authentication id \"%s\" (did you mean \"%s\"?)",
			                  auth_id, guess);
		else
			cw_config_reportf(r, path, "unknown authentication id \"%s\" (%s%s)", auth_id,
			                  n ? "configured ids: " : "no authentication entries are configured",
			                  cw_buf_cstr(&known));
		cw_buf_free(&known);
		free(ids);
		return;
	}
	if (url == NULL || (*auth)->type == CW_AUTH_CERTIFICATE)
		return;
	char *masked = cw_secret_mask(url);
	bool has_password = strcmp(masked, url) != 0;
	free(masked);
	if (has_password) {
		snprintf(path, sizeof path, "%s.url", at);
		cw_config_reportf(r, path, "the url carries a password and auth_id \"%s\" gives one: "
		                  "remove the password from the url", auth_id);
	}
}

void cw_config_check_auth(cw_config_t *config, const char *config_name,
                          const cw_config_reporter_t *reporter)
{
	char at[48];
	for (size_t i = 0; i < config->nauthentication; i++)
		check_entry(reporter, config_name, i, &config->authentication[i]);
	cw_config_check_unique(reporter, config, "authentication", "id", "authentication id");
	resolve(reporter, config, "hub", config->hub.auth_id, config->hub.url, &config->hub.auth);
	for (size_t i = 0; i < config->nsources; i++) {
		cw_source_config_t *source = &config->sources[i];
		snprintf(at, sizeof at, "sources[%zu]", i);
		resolve(reporter, config, at, source->auth_id, source->url, &source->auth);
	}
	for (size_t i = 0; i < config->ntargets; i++) {
		cw_target_config_t *target = &config->targets[i];
		snprintf(at, sizeof at, "targets[%zu]", i);
		resolve(reporter, config, at, target->auth_id, target->url, &target->auth);
	}
	for (size_t i = 0; i < config->nauthentication; i++)
		config->authentication[i].state = cw_auth_state_new(cw_clock_system());
}
