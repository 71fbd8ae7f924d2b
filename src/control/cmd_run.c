/* This file contains `cachewarp run`: the daemon, capturing every source and applying the hub to every target. */
#include "apply/cachedb.h"
#include "control/cli.h"
#include "control/commands.h"
#include "control/runtime.h"

static const char usage[] =
	"usage: cachewarp run [-c FILE] [--entity NAME]...\n"
	"\n"
	"Migrates the hub, then captures every configured source into the hub and\n"
	"applies the hub to every configured target until SIGINT or SIGTERM\n"
	"(a second SIGINT exits at once).\n"
	"\n"
	"options:\n"
	"  -c, --config FILE   configuration file (default $CACHEWARP_CONFIG or ./cachewarp.yaml)\n"
	"  -e, --entity NAME   capture and apply only this entity; repeatable, for\n"
	"                      deployments that run one process per entity\n"
	"  -h, --help          show this help\n";

int cw_cmd_run(int argc, char **argv)
{
	const char *config_flag = NULL;
	cw_cli_list_t entities = {NULL, 0};
	const cw_cli_option_t options[] = {
		{"config", 'c', &config_flag, NULL, NULL},
		{"entity", 'e', NULL, NULL, &entities},
		{NULL, 0, NULL, NULL, NULL},
	};
	cw_cli_args_t args;
	int rc = cw_cli_parse(argc, argv, usage, options, 0, &args);
	if (rc == 0)
		cw_cachedb_process_init();
	if (rc == 0)
		rc = cw_runtime_run(cw_cli_config_path(config_flag), entities.items, entities.len);
	else if (rc == CW_CLI_HELP_SHOWN)
		rc = CW_EXIT_OK;
	cw_cli_list_free(&entities);
	return rc;
}
