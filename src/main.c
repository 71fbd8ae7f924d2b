/* This file contains cachewarp's entry point: it picks a command and maps its result to an exit code. */
#include "control/cli.h"
#include "control/commands.h"

#include <stdio.h>
#include <string.h>

static const cw_cli_command_t commands[] = {
	{"run", "capture every configured source and apply the hub to every target", cw_cmd_run},
	{"migrate", "create or upgrade the hub schema", cw_cmd_migrate},
	{"entity", "list, add, show, delete or refresh entities in the hub", cw_cmd_entity},
	{"status", "show each component, its state and lag", cw_cmd_status},
	{"config", "check or show a configuration file, print its reference", cw_cmd_config},
	{"verify", "compare sources with targets, repair what differs", cw_cmd_verify},
	{"deadletter", "list, replay or drop the changes a stream set aside", cw_cmd_deadletter},
};

static void print_usage(FILE *out)
{
	fputs("usage: cachewarp <command> [options]\n       cachewarp --version | --help\n\ncommands:\n", out);
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fputs("\nRun 'cachewarp <command> --help' for a command's options.\n", out);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		print_usage(stderr);
		return CW_EXIT_USAGE;
	}
	const char *name = argv[1];
	if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0) {
		printf("cachewarp %s\n", CW_VERSION);
		return CW_EXIT_OK;
	}
	if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
		print_usage(stdout);
		return CW_EXIT_OK;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		if (strcmp(name, commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	}
	if (name[0] == '-')
		fprintf(stderr, "cachewarp: unknown option \"%s\"\n", name);
	else
		fprintf(stderr, "cachewarp: unknown command \"%s\"\n", name);
	print_usage(stderr);
	return CW_EXIT_USAGE;
}
