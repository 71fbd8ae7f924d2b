/* This file contains `cachewarp config`: check, show and reference (cmd_config.h). */
#include "control/cmd_config.h"

#include "control/cli.h"
#include "control/commands.h"
#include "core/buf.h"
#include "core/config.h"

#include <stdio.h>
#include <string.h>

extern char **environ;

static const char usage[] =
	"usage: cachewarp config check [-c FILE]\n"
	"       cachewarp config show [-c FILE]\n"
	"       cachewarp config reference\n"
	"\n"
	"check      validate the configuration file and the CACHEWARP_* environment;\n"
	"           prints every error (file:line:column: key \"...\": ...) and exits 2\n"
	"show       print the effective configuration as YAML: defaults filled in,\n"
	"           environment applied, passwords masked\n"
	"reference  print the reference of every key (docs/configuration.md)\n"
	"\n"
	"options:\n"
	"  -c, --config FILE   configuration file (default $CACHEWARP_CONFIG or ./cachewarp.yaml)\n"
	"  -h, --help          show this help\n";

static const char check_usage[] =
	"usage: cachewarp config check [-c FILE]\n"
	"\n"
	"Validates the configuration file and the CACHEWARP_* environment variables.\n"
	"Prints \"config OK: N sources, M entities, K targets\" and exits 0, or prints\n"
	"every error on standard error and exits 2.\n"
	"\n"
	"options:\n"
	"  -c, --config FILE   configuration file (default $CACHEWARP_CONFIG or ./cachewarp.yaml)\n"
	"  -h, --help          show this help\n";

static const char show_usage[] =
	"usage: cachewarp config show [-c FILE]\n"
	"\n"
	"Prints the effective configuration as YAML: the file with every default\n"
	"filled in and the CACHEWARP_* environment applied. Passwords in URLs are\n"
	"masked and api.token is printed as \"****\". Exits 2 when the configuration\n"
	"has errors.\n"
	"\n"
	"options:\n"
	"  -c, --config FILE   configuration file (default $CACHEWARP_CONFIG or ./cachewarp.yaml)\n"
	"  -h, --help          show this help\n";

static const char reference_usage[] =
	"usage: cachewarp config reference\n"
	"\n"
	"Prints the configuration reference in Markdown, generated from the key table:\n"
	"every key, its type, default, environment variable and meaning. It is\n"
	"docs/configuration.md:\n"
	"  build/cachewarp config reference > docs/configuration.md\n"
	"\n"
	"options:\n"
	"  -h, --help          show this help\n";

/* Loads the configuration, printing every error on stderr; NULL on failure. */
static cw_config_t *load(const char *path)
{
	cw_buf_t errors = CW_BUF_INIT;
	cw_config_load_opts_t opts = {environ, &errors};
	cw_config_t *config = NULL;
	if (cw_config_load(path, &opts, &config, NULL) != 0)
		fputs(cw_buf_cstr(&errors), stderr);
	cw_buf_free(&errors);
	return config;
}

static int write_out(cw_buf_t *text)
{
	size_t written = fwrite(text->data ? text->data : "", 1, text->len, stdout);
	int rc = written == text->len && fflush(stdout) == 0 ? CW_EXIT_OK : CW_EXIT_FAILURE;
	if (rc != CW_EXIT_OK)
		fprintf(stderr, "cachewarp: could not write to standard output\n");
	cw_buf_free(text);
	return rc;
}

static int run_check(const char *path)
{
	cw_config_t *config = load(path);
	if (config == NULL)
		return CW_EXIT_USAGE;
	printf("config OK: %zu sources, %zu entities, %zu targets\n", config->nsources,
	       config->nentities, config->ntargets);
	cw_config_free(config);
	return CW_EXIT_OK;
}

static int run_show(const char *path)
{
	cw_config_t *config = load(path);
	if (config == NULL)
		return CW_EXIT_USAGE;
	cw_buf_t text = CW_BUF_INIT;
	cw_config_write_effective(config, &text);
	cw_config_free(config);
	return write_out(&text);
}

int cw_cmd_config(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : NULL;
	const char *sub_usage = NULL;
	if (name != NULL && strcmp(name, "check") == 0)
		sub_usage = check_usage;
	else if (name != NULL && strcmp(name, "show") == 0)
		sub_usage = show_usage;
	else if (name != NULL && strcmp(name, "reference") == 0)
		sub_usage = reference_usage;
	if (sub_usage == NULL) {
		if (cw_cli_wants_help(argc, argv)) {
			fputs(usage, stdout);
			return CW_EXIT_OK;
		}
		if (name == NULL)
			return cw_cli_usage_error(usage, "config needs a subcommand: check, show or reference");
		if (name[0] == '-')
			return cw_cli_usage_error(usage, "unknown option \"%s\" (the subcommand comes first: "
			                                 "config check -c FILE)", name);
		return cw_cli_usage_error(usage, "unknown config subcommand \"%s\"", name);
	}
	const char *config_flag = NULL;
	const cw_cli_option_t options[] = {
		{"config", 'c', &config_flag, NULL, NULL},
		{NULL, 0, NULL, NULL, NULL},
	};
	const cw_cli_option_t no_options[] = {{NULL, 0, NULL, NULL, NULL}};
	bool is_reference = sub_usage == reference_usage;
	cw_cli_args_t args;
	int rc = cw_cli_parse(argc - 1, argv + 1, sub_usage, is_reference ? no_options : options, 0,
	                      &args);
	if (rc == CW_CLI_HELP_SHOWN)
		return CW_EXIT_OK;
	if (rc != 0)
		return rc;
	if (is_reference) {
		cw_buf_t text = CW_BUF_INIT;
		cw_config_write_reference(&text);
		return write_out(&text);
	}
	const char *path = cw_cli_config_path(config_flag);
	return sub_usage == check_usage ? run_check(path) : run_show(path);
}
