/* This file contains the helpers every cachewarp command shares (cli.h). */
#include "control/cli.h"

#include "core/mem.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int cw_cli_usage_error(const char *usage, const char *fmt, ...)
{
	va_list ap;
	fputs("cachewarp: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (usage)
		fputs(usage, stderr);
	return CW_EXIT_USAGE;
}

bool cw_cli_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return false;
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
			return true;
	}
	return false;
}

const char *cw_cli_config_path(const char *flag_value)
{
	if (flag_value && *flag_value)
		return flag_value;
	const char *env = getenv("CACHEWARP_CONFIG");
	if (env && *env)
		return env;
	return "cachewarp.yaml";
}

static const cw_cli_option_t *find_long(const cw_cli_option_t *options, const char *name, size_t len)
{
	for (const cw_cli_option_t *o = options; o->long_name; o++) {
		if (strlen(o->long_name) == len && strncmp(o->long_name, name, len) == 0)
			return o;
	}
	return NULL;
}

static const cw_cli_option_t *find_short(const cw_cli_option_t *options, char name)
{
	for (const cw_cli_option_t *o = options; o->long_name; o++) {
		if (o->short_name && o->short_name == name)
			return o;
	}
	return NULL;
}

static void store(const cw_cli_option_t *option, const char *value)
{
	if (option->value) {
		*option->value = value;
	} else if (option->list) {
		cw_cli_list_t *list = option->list;
		list->items = cw_xrealloc(list->items, (list->len + 1) * sizeof *list->items);
		list->items[list->len++] = value;
	}
}

/* Handles argv[*i], an option; advances *i past a separate value. */
static int parse_option(int argc, char **argv, int *i, const char *usage,
                        const cw_cli_option_t *options)
{
	const char *arg = argv[*i];
	const cw_cli_option_t *option;
	const char *inline_value = NULL;
	if (arg[1] == '-') {
		const char *name = arg + 2;
		const char *eq = strchr(name, '=');
		option = find_long(options, name, eq ? (size_t)(eq - name) : strlen(name));
		inline_value = eq ? eq + 1 : NULL;
	} else {
		option = find_short(options, arg[1]);
		inline_value = arg[2] ? arg + 2 : NULL;
	}
	if (option == NULL)
		return cw_cli_usage_error(usage, "unknown option \"%s\"", arg);
	if (option->flag) {
		if (inline_value)
			return cw_cli_usage_error(usage, "option \"%s\" takes no value", arg);
		*option->flag = true;
		return 0;
	}
	if (inline_value == NULL) {
		if (*i + 1 >= argc)
			return cw_cli_usage_error(usage, "option \"%s\" needs a value", arg);
		inline_value = argv[++*i];
	}
	store(option, inline_value);
	return 0;
}

int cw_cli_parse(int argc, char **argv, const char *usage, const cw_cli_option_t *options,
                 size_t max_positional, cw_cli_args_t *args)
{
	args->npositional = 0;
	if (cw_cli_wants_help(argc, argv)) {
		fputs(usage, stdout);
		return CW_CLI_HELP_SHOWN;
	}
	bool options_done = false;
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (!options_done && strcmp(arg, "--") == 0) {
			options_done = true;
		} else if (!options_done && arg[0] == '-' && arg[1] != '\0') {
			int rc = parse_option(argc, argv, &i, usage, options);
			if (rc != 0)
				return rc;
		} else if (args->npositional >= max_positional || args->npositional >= CW_CLI_MAX_POSITIONAL) {
			return cw_cli_usage_error(usage, "unexpected argument \"%s\"", arg);
		} else {
			args->positional[args->npositional++] = arg;
		}
	}
	return 0;
}

void cw_cli_list_free(cw_cli_list_t *list)
{
	if (list == NULL)
		return;
	free(list->items);
	list->items = NULL;
	list->len = 0;
}
