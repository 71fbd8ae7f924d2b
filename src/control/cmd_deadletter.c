/* This file contains `cachewarp deadletter`: list, replay and drop the hub's dead letters. */
#include "control/cli.h"
#include "control/commands.h"
#include "control/dead_letter_select.h"
#include "control/runtime_internal.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/json.h"
#include "hub/dead_letters.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
	"usage: cachewarp deadletter list [--target T] [--entity E] [--status failed|replay]\n"
	"                                 [--limit N] [--after ID] [--json] [-c FILE]\n"
	"       cachewarp deadletter replay (ID... | --target T [--entity E] | --all) [-c FILE]\n"
	"       cachewarp deadletter drop (ID... | --target T [--entity E] | --all) [--yes]\n"
	"                                 [-c FILE]\n"
	"\n"
	"A dead letter is a change one stream (an entity flowing to one target)\n"
	"could not transform or write within its retry budget, set aside in the hub\n"
	"(cachewarp.dead_letters) so the rest of the stream goes on (docs/operations.md,\n"
	"\"Dead letters\"). `list` shows them in id order, a page at a time: pass the\n"
	"last id shown as --after for the next page. `replay` asks their streams to\n"
	"try them again: a letter the target takes, or whose document has a newer\n"
	"change applied already, leaves the table; one that fails again is back in\n"
	"status failed with one attempt more. `drop` deletes them.\n"
	"Dropping more than one letter without naming ids asks for confirmation on a\n"
	"terminal, and needs --yes otherwise. At most 15 ids at a time.\n"
	"\n"
	"options:\n"
	"  -c, --config FILE   configuration file (default $CACHEWARP_CONFIG or ./cachewarp.yaml)\n"
	"  -t, --target T      the letters of target T\n"
	"  -e, --entity E      the letters of entity E (replay and drop: with --target)\n"
	"      --status S      list: failed (waiting for a person) or replay (asked to be\n"
	"                      tried again)\n"
	"  -n, --limit N       list: at most N letters, 1 to 10000 (default 100)\n"
	"      --after ID      list: only letters whose id is above ID\n"
	"      --json          list: one JSON object per letter and line\n"
	"      --all           replay, drop: every dead letter\n"
	"  -y, --yes           drop: drop without asking\n"
	"  -h, --help          show this help\n"
	"\n"
	"exit status: 0 done, 1 the hub failed or a named id does not exist, 2 usage\n"
	"errors, and a drop of several letters without --yes and no terminal to ask.\n";

/* Widths of the list's shortened columns. */
#define DOC_ID_WIDTH 20
#define ERROR_WIDTH 60

typedef struct request {
	const char *action;         /* list, replay, drop */
	const char *const *id_args; /* replay, drop: the ids named (borrowed from argv) */
	size_t nids;
	cw_dead_letter_select_text_t select;
	bool json, all, yes;
	/* Checked by check_request: */
	int64_t ids[CW_CLI_MAX_POSITIONAL];
	cw_dead_letter_filter_t filter;   /* borrows from select */
} request_t;

/*
 * Copies text into out (cap bytes, at least 4 * width + 8: a character
 * takes up to four) on one line: control characters become spaces, and
 * text of more than width characters is cut at a character and ends in
 * "...". Pads with spaces to width characters when pad.
 */
static void shorten(const char *text, size_t width, bool pad, char *out, size_t cap)
{
	size_t chars = 0;   /* characters of text: bytes that do not continue a UTF-8 sequence */
	for (const char *p = text; *p != '\0'; p++)
		chars += ((unsigned char)*p & 0xC0) != 0x80;
	size_t keep = chars > width ? width - 3 : chars, n = 0, shown = 0;
	for (const char *p = text; *p != '\0' && n + 5 < cap; p++) {
		unsigned char c = (unsigned char)*p;
		if ((c & 0xC0) != 0x80 && shown++ == keep)
			break;
		out[n++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
	}
	if (chars > width) {
		memcpy(out + n, "...", 3);
		n += 3;
		shown = width;
	} else {
		shown = chars;
	}
	while (pad && shown++ < width && n + 1 < cap)
		out[n++] = ' ';
	out[n] = '\0';
}

static void print_table(const cw_dead_letter_t *letters, size_t count)
{
	printf("%-8s %-16s %-20s %-20s %-10s %-9s %-6s %-8s %-24s %s\n", "ID", "TARGET", "ENTITY",
	       "DOC_ID", "OPLOG_ID", "STAGE", "STATUS", "ATTEMPTS", "LAST_FAILURE", "ERROR");
	for (size_t i = 0; i < count; i++) {
		const cw_dead_letter_t *l = &letters[i];
		char doc_id[DOC_ID_WIDTH * 4 + 8], error[ERROR_WIDTH * 4 + 8];
		char last[CW_TIME_RFC3339_LEN];
		shorten(l->doc_id, DOC_ID_WIDTH, true, doc_id, sizeof doc_id);
		shorten(l->error, ERROR_WIDTH, false, error, sizeof error);
		cw_time_format_rfc3339_ms(l->last_failed_us, last);
		printf("%-8lld %-16s %-20s %s %-10lld %-9s %-6s %-8lld %-24s %s\n",
		       (long long)l->id, l->target, l->entity, doc_id, (long long)l->oplog_id,
		       cw_dead_letter_stage_name(l->stage), cw_dead_letter_status_name(l->status),
		       (long long)l->attempts, last, error);
	}
}

static int list(cw_hub_t *hub, const request_t *request, cw_err_t *err)
{
	cw_dead_letter_t *letters = NULL;
	size_t count = 0;
	int rc = cw_dead_letter_list(hub, &request->filter, &letters, &count, err);
	if (rc != 0)
		return rc;
	if (request->json) {
		for (size_t i = 0; i < count; i++) {
			cw_buf_t line = CW_BUF_INIT;
			cw_json_t w;
			cw_json_init(&w, &line, 0);
			if (cw_dead_letter_write_json(&letters[i], &w, NULL) == 0)
				printf("%s\n", cw_buf_cstr(&line));
			cw_buf_free(&line);
		}
	} else {
		print_table(letters, count);
	}
	if (count > 0 && count == request->filter.limit)
		fprintf(stderr, "cachewarp: the page is full; the next one: --after %lld\n",
		        (long long)letters[count - 1].id);
	cw_dead_letter_list_free(letters, count);
	return 0;
}

/* Replays or drops the letters filter matches; *count: how many. */
static int act(cw_hub_t *hub, bool replay, const cw_dead_letter_filter_t *filter, int64_t *count,
               cw_err_t *err)
{
	return replay ? cw_dead_letter_request_replay(hub, filter, count, err)
	              : cw_dead_letter_drop(hub, filter, count, err);
}

/*
 * Replays or drops each named id. Every id is tried; CW_ENOTFOUND when some
 * do not exist, with err naming them.
 */
static int act_on_ids(cw_hub_t *hub, const request_t *request, bool replay, int64_t *done,
                      cw_err_t *err)
{
	cw_buf_t missing = CW_BUF_INIT;
	size_t nmissing = 0;
	int rc = 0;
	for (size_t i = 0; i < request->nids && rc == 0; i++) {
		cw_dead_letter_filter_t filter = CW_DEAD_LETTER_FILTER_ALL;
		filter.id = request->ids[i];
		int64_t count = 0;
		rc = act(hub, replay, &filter, &count, err);
		*done += count;
		if (rc == 0 && count == 0)
			cw_buf_appendf(&missing, "%s%lld", nmissing++ ? ", " : "", (long long)filter.id);
	}
	if (rc == 0 && nmissing > 0)
		rc = cw_err_set(err, CW_ENOTFOUND, "deadletter", "no dead letter%s %s",
		                nmissing > 1 ? "s" : "", cw_buf_cstr(&missing));
	cw_buf_free(&missing);
	return rc;
}

/*
 * Whether a drop of count letters (more than one, no ids named) may go on:
 * --yes, or a person at a terminal who says yes. CW_EINVAL when there is
 * nobody to ask.
 */
static int confirm_drop(const request_t *request, int64_t count, bool *go, cw_err_t *err)
{
	*go = true;
	if (count <= 1 || request->yes)
		return 0;
	if (!isatty(STDIN_FILENO) || !isatty(STDERR_FILENO))
		return cw_err_set(err, CW_EINVAL, "deadletter",
		                  "drop would delete %lld dead letters; add --yes to confirm",
		                  (long long)count);
	fprintf(stderr, "drop %lld dead letters? [y/N] ", (long long)count);
	char answer[16] = "";
	if (fgets(answer, sizeof answer, stdin) == NULL)
		answer[0] = '\0';
	*go = answer[0] == 'y' || answer[0] == 'Y';
	return 0;
}

static int replay_or_drop(cw_hub_t *hub, const request_t *request, cw_err_t *err)
{
	bool replay = strcmp(request->action, "replay") == 0;
	int64_t done = 0;
	int rc;
	if (request->nids > 0) {
		rc = act_on_ids(hub, request, replay, &done, err);
	} else {
		const cw_dead_letter_filter_t *filter = &request->filter;
		bool go = true;
		if (!replay) {
			int64_t failed = 0, replaying = 0;
			rc = cw_dead_letter_count(hub, filter->target, filter->entity, &failed, &replaying, err);
			if (rc == 0)
				rc = confirm_drop(request, failed + replaying, &go, err);
			if (rc != 0)
				return rc;
		}
		if (!go) {
			printf("nothing dropped\n");
			return 0;
		}
		rc = act(hub, replay, filter, &done, err);
	}
	if (rc == 0 || rc == CW_ENOTFOUND)
		printf(replay ? "%lld dead letters marked for replay\n" : "%lld dead letters dropped\n",
		       (long long)done);
	return rc;
}

/* The ids and the selection of a request into r->ids and r->filter: 0 or CW_EXIT_USAGE (printed). */
static int parse_selection(request_t *r)
{
	cw_err_t err = {0};
	for (size_t i = 0; i < r->nids; i++)
		if (cw_dead_letter_id_parse(r->id_args[i], &r->ids[i], &err) != 0)
			return cw_cli_usage_error(usage, "%s", err.message);
	if (cw_dead_letter_select_parse(&r->select, "--", "", &r->filter, &err) != 0)
		return cw_cli_usage_error(usage, "%s", err.message);
	return 0;
}

/* The usage errors of a request, before anything is read: 0 or CW_EXIT_USAGE (printed). */
static int check_request(request_t *r)
{
	const cw_dead_letter_select_text_t *s = &r->select;
	bool is_list = strcmp(r->action, "list") == 0;
	if (!is_list && strcmp(r->action, "replay") != 0 && strcmp(r->action, "drop") != 0)
		return cw_cli_usage_error(usage, "unknown deadletter subcommand \"%s\"", r->action);
	if (is_list) {
		if (r->nids > 0)
			return cw_cli_usage_error(usage, "deadletter list takes no ids (use --after ID)");
		if (r->all || r->yes)
			return cw_cli_usage_error(usage, "%s applies to replay and drop, not list",
			                          r->all ? "--all" : "--yes");
		return parse_selection(r);
	}
	if (s->status != NULL || s->limit != NULL || s->after != NULL || r->json)
		return cw_cli_usage_error(usage, "%s applies to list only",
		                          s->status ? "--status" : s->limit ? "--limit" :
		                          s->after ? "--after" : "--json");
	if (r->yes && strcmp(r->action, "drop") != 0)
		return cw_cli_usage_error(usage, "--yes applies to drop only");
	if (s->entity != NULL && s->target == NULL)
		return cw_cli_usage_error(usage, "--entity needs --target here: a stream is an entity "
		                          "of one target");
	int ways = (r->nids > 0) + r->all + (s->target != NULL);
	if (ways != 1)
		return cw_cli_usage_error(usage, "deadletter %s needs exactly one of: ids, --target T, "
		                          "--all", r->action);
	return parse_selection(r);
}

static int run(cw_hub_t *hub, const cw_config_t *config, const void *arg, cw_err_t *err)
{
	const request_t *request = arg;
	if (strcmp(request->action, "list") == 0)
		return list(hub, request, err);
	return replay_or_drop(hub, request, err);
}

int cw_cmd_deadletter(int argc, char **argv)
{
	request_t request = {0};
	const char *config_flag = NULL;
	const cw_cli_option_t options[] = {
		{"config", 'c', &config_flag, NULL, NULL},
		{"target", 't', &request.select.target, NULL, NULL},
		{"entity", 'e', &request.select.entity, NULL, NULL},
		{"status", 0, &request.select.status, NULL, NULL},
		{"limit", 'n', &request.select.limit, NULL, NULL},
		{"after", 0, &request.select.after, NULL, NULL},
		{"json", 0, NULL, &request.json, NULL},
		{"all", 0, NULL, &request.all, NULL},
		{"yes", 'y', NULL, &request.yes, NULL},
		{NULL, 0, NULL, NULL, NULL},
	};
	cw_cli_args_t args;
	int rc = cw_cli_parse(argc, argv, usage, options, CW_CLI_MAX_POSITIONAL, &args);
	if (rc != 0)
		return rc == CW_CLI_HELP_SHOWN ? CW_EXIT_OK : rc;
	if (args.npositional == 0)
		return cw_cli_usage_error(usage, "deadletter needs a subcommand: list, replay or drop");
	request.action = args.positional[0];
	request.id_args = args.positional + 1;
	request.nids = args.npositional - 1;
	rc = check_request(&request);
	if (rc != 0)
		return rc;
	return cw_runtime_hub_action(cw_cli_config_path(config_flag), run, &request);
}
