/* This file contains `cachewarp verify`: compare sources with targets, repair with --repair. */
#include "control/cli.h"
#include "control/commands.h"
#include "control/runtime_internal.h"

#include "core/mem.h"
#include "verify/verify.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static const char usage[] =
	"usage: cachewarp verify [-c FILE] [--entity E]... [--target T]... [--repair] [--json]\n"
	"\n"
	"Compares each live entity's rows at its source with each target's rows\n"
	"and reports what is missing, extra, different or of a stale generation\n"
	"(docs/verify.md). A difference counts only if it persists after the\n"
	"target has caught up. With --repair, each difference is written into the\n"
	"hub as a synthetic change (origin 'verify') that every target applies.\n"
	"Each run is stored in the hub (cachewarp.verify_runs).\n"
	"\n"
	"options:\n"
	"  -c, --config FILE   configuration file (default $CACHEWARP_CONFIG or ./cachewarp.yaml)\n"
	"  -e, --entity E      verify entity E (repeatable; default every live entity)\n"
	"  -t, --target T      verify target T (repeatable; default every target)\n"
	"      --repair        write each difference into the hub as a synthetic change\n"
	"      --json          print the reports as one JSON array\n"
	"  -h, --help          show this help\n"
	"\n"
	"exit status: 0 when every pair is equal (or repaired), 1 when differences\n"
	"remain or a run failed or was refused, 2 on usage errors.\n";

static void print_table(const cw_verify_pair_t *pairs, size_t npairs)
{
	printf("%-20s %-12s %-10s %10s %10s %8s %8s %9s %6s %8s %8s\n", "ENTITY", "TARGET",
	       "STATUS", "SOURCE", "TARGET", "MISSING", "EXTRA", "DIFFERENT", "STALE", "REPAIRED",
	       "SECONDS");
	for (size_t i = 0; i < npairs; i++) {
		const cw_verify_pair_t *p = &pairs[i];
		const cw_verify_result_t *r = &p->result;
		printf("%-20s %-12s %-10s %10llu %10llu %8llu %8llu %9llu %6llu %8llu %8.1f\n",
		       p->entity, p->target, p->status, (unsigned long long)r->source_rows,
		       (unsigned long long)r->target_rows,
		       (unsigned long long)r->differences[CW_VERIFY_MISSING],
		       (unsigned long long)r->differences[CW_VERIFY_EXTRA],
		       (unsigned long long)r->differences[CW_VERIFY_DIFFERENT],
		       (unsigned long long)r->differences[CW_VERIFY_STALE],
		       (unsigned long long)p->repaired, p->seconds);
		if (strcmp(p->status, "failed") == 0 || strcmp(p->status, "refused") == 0)
			printf("  %s\n", p->err.message);
	}
}

static void print_json(const cw_verify_pair_t *pairs, size_t npairs)
{
	fputc('[', stdout);
	for (size_t i = 0; i < npairs; i++)
		printf("%s%s", i ? "," : "", pairs[i].report ? pairs[i].report : "{}");
	fputs("]\n", stdout);
}

/* SIGINT or SIGTERM cancels the run: the current chunk's repairs commit whole or not at all. */
static void *signal_main(void *arg)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	int sig = 0;
	if (sigwait(&set, &sig) == 0) {
		fprintf(stderr, "cachewarp: %s: canceling verify\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
		cw_cancel_fire(arg);
	}
	return NULL;
}

/* 0 when every pair is equal, or repaired with nothing left; 1 otherwise. */
static int exit_code_of(const cw_verify_pair_t *pairs, size_t npairs, bool repair)
{
	for (size_t i = 0; i < npairs; i++) {
		const cw_verify_pair_t *p = &pairs[i];
		if (strcmp(p->status, "equal") == 0)
			continue;
		if (strcmp(p->status, "different") == 0 && repair)
			continue;
		return CW_EXIT_FAILURE;
	}
	return CW_EXIT_OK;
}

int cw_cmd_verify(int argc, char **argv)
{
	const char *config_flag = NULL;
	bool json = false, repair = false;
	cw_cli_list_t entities = {0}, targets = {0};
	const cw_cli_option_t options[] = {
		{"config", 'c', &config_flag, NULL, NULL},
		{"entity", 'e', NULL, NULL, &entities},
		{"target", 't', NULL, NULL, &targets},
		{"repair", 0, NULL, &repair, NULL},
		{"json", 0, NULL, &json, NULL},
		{NULL, 0, NULL, NULL, NULL},
	};
	cw_cli_args_t args;
	int rc = cw_cli_parse(argc, argv, usage, options, 0, &args);
	if (rc != 0) {
		cw_cli_list_free(&entities);
		cw_cli_list_free(&targets);
		return rc == CW_CLI_HELP_SHOWN ? CW_EXIT_OK : rc;
	}
	int exit_code = CW_EXIT_USAGE;
	cw_config_t *config = cw_runtime_load_config(cw_cli_config_path(config_flag));
	cw_verify_pair_t *pairs = NULL;
	size_t npairs = 0;
	if (config != NULL) {
		cw_verify_opts_t opts = {0};
		opts.entities = entities.items;
		opts.nentities = entities.len;
		opts.targets = targets.items;
		opts.ntargets = targets.len;
		opts.repair = repair;
		opts.requested_by = "cli";
		opts.settle_timeout_ms = config->verify.settle_timeout_ms;
		cw_err_t err = {0};
		cw_cancel_t *cancel = cw_cancel_new();
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, SIGINT);
		sigaddset(&set, SIGTERM);
		pthread_sigmask(SIG_BLOCK, &set, NULL);
		pthread_t watcher;
		bool watching = pthread_create(&watcher, NULL, signal_main, cancel) == 0;
		rc = cw_verify_run(config, &opts, cancel, &pairs, &npairs, &err);
		if (watching) {   /* sigwait is a cancellation point */
			pthread_cancel(watcher);
			pthread_join(watcher, NULL);
		}
		cw_cancel_free(cancel);
		if (json)
			print_json(pairs, npairs);
		else if (npairs > 0)
			print_table(pairs, npairs);
		if (rc == CW_ENOTFOUND || rc == CW_EINVAL) {
			fprintf(stderr, "cachewarp: %s\n", err.message);
			exit_code = CW_EXIT_USAGE;
		} else if (rc != 0) {
			fprintf(stderr, "cachewarp: %s\n", err.message);
			exit_code = CW_EXIT_FAILURE;
		} else if (npairs == 0) {
			fprintf(stderr, "cachewarp: nothing to verify: no live entity of a PostgreSQL "
			        "source with a SQLite or PostgreSQL target\n");
			exit_code = CW_EXIT_FAILURE;
		} else {
			exit_code = exit_code_of(pairs, npairs, repair);
		}
	}
	cw_verify_pairs_free(pairs, npairs);
	cw_config_free(config);
	cw_cli_list_free(&entities);
	cw_cli_list_free(&targets);
	return exit_code;
}
