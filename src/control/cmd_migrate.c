/* This file contains `cachewarp migrate`: create or upgrade the hub schema and exit. */
#include "control/cli.h"
#include "control/commands.h"
#include "control/runtime.h"

static const char usage[] =
	"usage: cachewarp migrate [-c FILE]\n"
	"\n"
	"Creates the hub schema \"cachewarp\" or upgrades it to this version's\n"
	"migrations, then exits. Safe to run while other processes start.\n"
	"\n"
	"options:\n"
	"  -c, --config FILE   configuration file (default $CACHEWARP_CONFIG or ./cachewarp.yaml)\n"
	"  -h, --help          show this help\n";

int cw_cmd_migrate(int argc, char **argv)
{
	const char *config_flag = NULL;
	const cw_cli_option_t options[] = {
		{"config", 'c', &config_flag, NULL, NULL},
		{NULL, 0, NULL, NULL, NULL},
	};
	cw_cli_args_t args;
	int rc = cw_cli_parse(argc, argv, usage, options, 0, &args);
	if (rc != 0)
		return rc == CW_CLI_HELP_SHOWN ? CW_EXIT_OK : rc;
	return cw_runtime_migrate(cw_cli_config_path(config_flag));
}
