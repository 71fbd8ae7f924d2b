/* This file contains `cachewarp status`: each component, its state and lag, read from the hub. */
#include "control/cli.h"
#include "control/commands.h"
#include "control/runtime.h"

static const char usage[] =
	"usage: cachewarp status [-c FILE] [--json]\n"
	"\n"
	"Prints the hub's schema version, each entity with its status and\n"
	"generation, and each registered consumer with its position and lag.\n"
	"\n"
	"options:\n"
	"  -c, --config FILE   configuration file (default $CACHEWARP_CONFIG or ./cachewarp.yaml)\n"
	"      --json          print one JSON object instead of a table\n"
	"  -h, --help          show this help\n";

int cw_cmd_status(int argc, char **argv)
{
	const char *config_flag = NULL;
	bool json = false;
	const cw_cli_option_t options[] = {
		{"config", 'c', &config_flag, NULL, NULL},
		{"json", 0, NULL, &json, NULL},
		{NULL, 0, NULL, NULL, NULL},
	};
	cw_cli_args_t args;
	int rc = cw_cli_parse(argc, argv, usage, options, 0, &args);
	if (rc != 0)
		return rc == CW_CLI_HELP_SHOWN ? CW_EXIT_OK : rc;
	return cw_runtime_status(cw_cli_config_path(config_flag), json);
}
