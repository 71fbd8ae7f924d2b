/*
 * This file contains what every cachewarp command shares: exit codes, the
 * help and usage-error conventions, and the common -c FILE option.
 *
 * Every command is `int cw_cmd_<name>(int argc, char **argv)` where argv[0]
 * is the command name; it returns an exit code and never calls exit().
 */
#ifndef CW_CONTROL_CLI_H
#define CW_CONTROL_CLI_H

#include <stdbool.h>
#include <stdio.h>

enum {
	CW_EXIT_OK = 0,       /* done */
	CW_EXIT_FAILURE = 1,  /* runtime failure: a database refused, a file could not be written */
	CW_EXIT_USAGE = 2,    /* usage or configuration error */
};

typedef struct cw_cli_command {
	const char *name;
	const char *summary;  /* one line for the top-level help */
	int (*run)(int argc, char **argv);
} cw_cli_command_t;

/*
 * One option of a command. Exactly one of value, flag or list is set:
 * value receives the argument of an option that takes one (the last wins),
 * flag is set true by a plain switch, list collects every value of a
 * repeatable option (the array is owned by the caller's cw_cli_args_t).
 * Every string points into argv.
 */
typedef struct cw_cli_option {
	const char *long_name;   /* "config" for --config */
	char short_name;         /* 'c' for -c, or 0 */
	const char **value;
	bool *flag;
	struct cw_cli_list *list;
} cw_cli_option_t;

typedef struct cw_cli_list {
	const char **items;      /* owned by this struct, strings borrowed from argv */
	size_t len;
} cw_cli_list_t;

enum { CW_CLI_MAX_POSITIONAL = 16 };

typedef struct cw_cli_args {
	const char *positional[CW_CLI_MAX_POSITIONAL];  /* borrowed from argv */
	size_t npositional;
} cw_cli_args_t;

/* Returned by cw_cli_parse when it printed the help: the command returns CW_EXIT_OK. */
#define CW_CLI_HELP_SHOWN (-1)

/*
 * Parses argv[1..] against options (ended by an entry with long_name NULL):
 * --name value, --name=value, -c value, -cvalue, switches, and "--" to end
 * options; everything else is positional, in order, options and positionals
 * may be mixed. -h/--help prints usage on stdout and returns
 * CW_CLI_HELP_SHOWN. An unknown option, a missing value or more than
 * max_positional positionals prints one error line and the usage on stderr
 * and returns CW_EXIT_USAGE. Returns 0 when parsed.
 */
int cw_cli_parse(int argc, char **argv, const char *usage, const cw_cli_option_t *options,
                 size_t max_positional, cw_cli_args_t *args);

/* Frees a list filled by cw_cli_parse; NULL is a no-op. */
void cw_cli_list_free(cw_cli_list_t *list);

/*
 * Prints "cachewarp: <message>" and then `usage` on stderr; returns
 * CW_EXIT_USAGE so callers can `return cw_cli_usage_error(...)`.
 */
int cw_cli_usage_error(const char *usage, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* True when argv holds -h or --help before any "--". */
bool cw_cli_wants_help(int argc, char **argv);

/*
 * The config file a command should read: the -c/--config value when given,
 * else $CACHEWARP_CONFIG, else "cachewarp.yaml". Borrowed from argv/environ.
 */
const char *cw_cli_config_path(const char *flag_value);

#endif
