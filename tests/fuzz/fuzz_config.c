/*
 * This file contains the libFuzzer target of the configuration loader. The
 * input is a YAML file; when it holds a line "%%env", the lines after it are
 * NAME=value environment entries instead (so CACHEWARP_* overrides are
 * fuzzed too). Besides never crashing or leaking, a configuration that loads
 * must print (config show) to YAML that loads again and prints the same, and
 * a failed load must say why. Seeds: tests/fuzz/corpus/config.
 */
#include "core/config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ENV 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Splits the NUL-terminated text (modified) after "\n%%env\n" into at most
 * MAX_ENV entries; returns the length of the YAML before it.
 */
static size_t split_env(char *text, size_t size, char *envp[MAX_ENV + 1])
{
	size_t n = 0;
	envp[0] = NULL;
	char *marker = strstr(text, "\n%%env\n");   /* text is NUL-terminated */
	if (marker == NULL)
		return size;
	char *line = marker + 7;
	while (n < MAX_ENV && line < text + size) {
		char *end = strchr(line, '\n');
		if (end != NULL)
			*end = '\0';
		envp[n++] = line;
		if (end == NULL)
			break;
		line = end + 1;
	}
	envp[n] = NULL;
	return (size_t)(marker - text) + 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';
	char *envp[MAX_ENV + 1];
	size_t yaml_len = split_env(text, size, envp);
	cw_buf_t errors = CW_BUF_INIT, shown = CW_BUF_INIT, again = CW_BUF_INIT;
	cw_config_load_opts_t opts = {envp, &errors};
	cw_err_t err = {0};
	cw_config_t *config = NULL, *reloaded = NULL;
	int rc = cw_config_load_buffer("fuzz.yaml", text, yaml_len, &opts, &config, &err);
	if (rc != 0 && (config != NULL || err.message[0] == '\0' || errors.len == 0))
		__builtin_trap();
	if (rc == 0) {
		cw_config_write_effective(config, &shown);
		/* Values from the environment need not be valid UTF-8, so only file-only loads round-trip. */
		if (envp[0] == NULL) {
			if (cw_config_load_buffer("fuzz.yaml", shown.data, shown.len, NULL, &reloaded, &err) != 0)
				__builtin_trap();
			cw_config_write_effective(reloaded, &again);
			if (strcmp(cw_buf_cstr(&shown), cw_buf_cstr(&again)) != 0)
				__builtin_trap();
		}
	}
	cw_config_free(reloaded);
	cw_config_free(config);
	cw_buf_free(&again);
	cw_buf_free(&shown);
	cw_buf_free(&errors);
	free(text);
	return 0;
}
