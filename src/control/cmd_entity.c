/*
 * This file contains `cachewarp entity`: list, add, show, delete, refresh
 * and resume entities in the hub.
 */
#include "control/cli.h"
#include "control/commands.h"
#include "control/runtime.h"

#include <string.h>

static const char usage[] =
	"usage: cachewarp entity list [-c FILE]\n"
	"       cachewarp entity show NAME [-c FILE]\n"
	"       cachewarp entity add NAME --source SOURCE (--table T | --collection C)\n"
	"                            [--column NAME:TYPE:PATH]... [-c FILE]\n"
	"       cachewarp entity delete NAME [-c FILE]\n"
	"       cachewarp entity refresh NAME [-c FILE]\n"
	"       cachewarp entity resume NAME [-c FILE]\n"
	"\n"
	"Entities live in the hub: what this command changes, every cachewarp process\n"
	"sees at its next entity refresh. `refresh` starts a new generation: a full\n"
	"rescan of the entity, then a sweep of rows the rescan did not see.\n"
	"An entity removed from the configuration file is paused (not captured, its\n"
	"targets keep their data); `resume` resumes it with such a rescan, and it\n"
	"then stays even though the file does not list it.\n"
	"Column types: jsonb, any, bool, number, integer, text; PATH is a dot path\n"
	"into the document (pricing.amount, tags.0). Without --column a PostgreSQL\n"
	"entity takes every column of its table and a MongoDB entity keeps the whole\n"
	"document in one jsonb column \"doc\".\n"
	"\n"
	"options:\n"
	"  -c, --config FILE       configuration file (default $CACHEWARP_CONFIG or ./cachewarp.yaml)\n"
	"  -s, --source SOURCE     the configured source the entity comes from\n"
	"      --table SCHEMA.T    the table (PostgreSQL and MySQL sources)\n"
	"      --collection C      the MongoDB collection (MongoDB sources)\n"
	"      --column N:T:P      a column of the shape; repeatable, in order\n"
	"  -h, --help              show this help\n";

int cw_cmd_entity(int argc, char **argv)
{
	cw_runtime_entity_request_t request = {0};
	const char *config_flag = NULL;
	cw_cli_list_t columns = {NULL, 0};
	const cw_cli_option_t options[] = {
		{"config", 'c', &config_flag, NULL, NULL},
		{"source", 's', &request.source, NULL, NULL},
		{"table", 0, &request.table, NULL, NULL},
		{"collection", 0, &request.collection, NULL, NULL},
		{"column", 0, NULL, NULL, &columns},
		{NULL, 0, NULL, NULL, NULL},
	};
	cw_cli_args_t args;
	int rc = cw_cli_parse(argc, argv, usage, options, 2, &args);
	if (rc != 0)
		goto done;
	if (args.npositional == 0) {
		rc = cw_cli_usage_error(usage, "entity needs a subcommand: list, add, show, delete, "
		                        "refresh or resume");
		goto done;
	}
	request.action = args.positional[0];
	request.name = args.npositional > 1 ? args.positional[1] : NULL;
	request.columns = columns.items;
	request.ncolumns = columns.len;
	bool is_list = strcmp(request.action, "list") == 0;
	bool known = is_list || strcmp(request.action, "add") == 0 || strcmp(request.action, "show") == 0 ||
	             strcmp(request.action, "delete") == 0 || strcmp(request.action, "refresh") == 0 ||
	             strcmp(request.action, "resume") == 0;
	if (!known) {
		rc = cw_cli_usage_error(usage, "unknown entity subcommand \"%s\"", request.action);
	} else if (is_list && request.name) {
		rc = cw_cli_usage_error(usage, "entity list takes no name");
	} else if (!is_list && request.name == NULL) {
		rc = cw_cli_usage_error(usage, "entity %s needs an entity name", request.action);
	} else {
		rc = cw_runtime_entity(cw_cli_config_path(config_flag), &request);
	}
done:
	cw_cli_list_free(&columns);
	return rc == CW_CLI_HELP_SHOWN ? CW_EXIT_OK : rc;
}
