/* This file contains what the commands do once parsed (runtime.h): the shared steps. */
#include "control/runtime.h"

#include "control/cli.h"
#include "control/daemon.h"
#include "control/runtime_internal.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/secret.h"
#include "core/units.h"
#include "hub/migrations.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

extern char **environ;

cw_config_t *cw_runtime_load_config(const char *path)
{
	cw_buf_t errors = CW_BUF_INIT;
	cw_config_load_opts_t opts = {environ, &errors};
	cw_config_t *config = NULL;
	if (cw_config_load(path, &opts, &config, NULL) != 0)
		fputs(cw_buf_cstr(&errors), stderr);
	cw_buf_free(&errors);
	if (config != NULL)
		cw_log_setup(config->log.level, config->log.format, STDERR_FILENO);
	return config;
}

cw_hub_t *cw_runtime_connect_once(const cw_config_t *config)
{
	cw_err_t err = {0};
	cw_hub_t *hub = cw_hub_connect_auth(config->hub.url, config->hub.auth, &err);
	if (hub == NULL) {
		fprintf(stderr, "cachewarp: %s\n", err.message);
		return NULL;
	}
	if (cw_hub_schema_check(hub, &err) != 0) {
		fprintf(stderr, "cachewarp: %s\n", err.message);
		cw_hub_close(hub);
		return NULL;
	}
	return hub;
}

int cw_runtime_hub_action(const char *config_path, cw_runtime_hub_fn action, const void *arg)
{
	cw_config_t *config = cw_runtime_load_config(config_path);
	if (config == NULL)
		return CW_EXIT_USAGE;
	cw_hub_t *hub = cw_runtime_connect_once(config);
	int exit_code = CW_EXIT_FAILURE;
	if (hub != NULL) {
		cw_err_t err = {0};
		int rc = action(hub, config, arg, &err);
		if (rc == 0) {
			exit_code = CW_EXIT_OK;
		} else {
			fprintf(stderr, "cachewarp: %s\n", err.message);
			exit_code = rc == CW_EINVAL ? CW_EXIT_USAGE : CW_EXIT_FAILURE;
		}
	}
	cw_hub_close(hub);
	cw_config_free(config);
	return exit_code;
}

cw_hub_t *cw_runtime_connect_retrying(const cw_config_t *config, cw_cancel_t *cancel)
{
	cw_retry_t retry;
	cw_retry_init(&retry, &config->retry);
	uint64_t rng = (uint64_t)getpid() ^ (uint64_t)cw_clock_wall_us(cw_clock_system());
	char *masked = cw_secret_mask(config->hub.url);
	cw_hub_t *hub = NULL;
	for (;;) {
		cw_err_t err = {0};
		hub = cw_hub_connect_auth(config->hub.url, config->hub.auth, &err);
		if (hub != NULL)
			break;
		if (err.code == CW_EAUTH) {
			/* The same credentials are refused again: say so at once instead of retrying. */
			cw_log_kv(CW_LOG_ERROR, "hub", "giving up: the hub refused the credentials; "
			          "not retrying", "url", masked, "error", err.message, NULL);
			break;
		}
		int64_t delay_ms = 0;
		int rc = cw_retry_next_delay(&retry, cw_clock_system(), &rng, &delay_ms);
		if (rc == CW_ETIMEDOUT) {
			char after[CW_UNITS_FORMAT_LEN];
			cw_duration_format(config->retry.give_up_after_ms, after);
			cw_log_kv(CW_LOG_ERROR, "hub", "giving up: hub unreachable", "url", masked,
			          "error", err.message, "after", after, NULL);
			break;
		}
		char attempt[24], wait[CW_UNITS_FORMAT_LEN];
		snprintf(attempt, sizeof attempt, "%lld", (long long)retry.attempts);
		cw_duration_format(delay_ms, wait);
		cw_log_kv(CW_LOG_WARN, "hub", "hub unreachable, retrying", "url", masked, "error",
		          err.message, "attempt", attempt, "retry_in", wait, NULL);
		if (cw_clock_sleep_ms(cw_clock_system(), delay_ms, cancel) == CW_ECANCELED)
			break;
	}
	free(masked);
	return hub;
}

int cw_runtime_migrate(const char *config_path)
{
	cw_config_t *config = cw_runtime_load_config(config_path);
	if (config == NULL)
		return CW_EXIT_USAGE;
	int exit_code = CW_EXIT_FAILURE;
	cw_err_t err = {0};
	cw_hub_t *hub = cw_hub_connect_auth(config->hub.url, config->hub.auth, &err);
	int applied = 0;
	if (hub == NULL || cw_hub_migrate(hub, &applied, &err) != 0) {
		fprintf(stderr, "cachewarp: %s\n", err.message);
	} else {
		printf("hub schema at version %d (%d migration%s applied)\n", cw_hub_schema_target(),
		       applied, applied == 1 ? "" : "s");
		exit_code = CW_EXIT_OK;
	}
	cw_hub_close(hub);
	cw_config_free(config);
	return exit_code;
}

int cw_runtime_run(const char *config_path, const char **entities, size_t nentities)
{
	cw_config_t *config = cw_runtime_load_config(config_path);
	if (config == NULL)
		return CW_EXIT_USAGE;
	cw_err_t err = {0};
	int exit_code = cw_daemon_run(config, entities, nentities, &err);
	if (err.code != 0)
		fprintf(stderr, "cachewarp: %s\n", err.message);
	cw_config_free(config);
	return exit_code;
}
