/* This file contains the failpoints declared in failpoint.h (CW_FAILPOINTS builds only). */
#include "core/failpoint.h"

#ifdef CW_FAILPOINTS

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_ARMED 16
#define NAME_MAX_LEN 64

typedef struct armed {
	char name[NAME_MAX_LEN];
	bool abort_process;
	long sleep_ms;         /* `sleepMS`: the call site waits, then goes on */
	long fire_on;          /* the hit that fires, >= 1 */
	long hits;             /* guarded by the mutex */
} armed_t;

static pthread_mutex_t failpoint_mutex = PTHREAD_MUTEX_INITIALIZER;
static armed_t armed[MAX_ARMED];
static size_t narmed;
static bool loaded;

/* Under the mutex: parses CW_FAILPOINTS; a malformed entry is reported and ignored. */
static void load(void)
{
	narmed = 0;
	loaded = true;
	const char *spec = getenv("CW_FAILPOINTS");
	if (spec == NULL)
		return;
	char *copy = strdup(spec);
	char *save = NULL;
	for (char *entry = strtok_r(copy, ",", &save); entry && narmed < MAX_ARMED;
	     entry = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(entry, '=');
		if (eq == NULL || (size_t)(eq - entry) >= NAME_MAX_LEN || eq == entry) {
			fprintf(stderr, "cachewarp: CW_FAILPOINTS: ignoring \"%s\" (want NAME=abort|error|sleepMS[@N])\n",
			        entry);
			continue;
		}
		armed_t *a = &armed[narmed];
		memset(a, 0, sizeof *a);
		memcpy(a->name, entry, (size_t)(eq - entry));
		char *action = eq + 1;
		char *at = strchr(action, '@');
		a->fire_on = 1;
		if (at != NULL) {
			*at = '\0';
			a->fire_on = strtol(at + 1, NULL, 10);
		}
		if (strcmp(action, "abort") == 0)
			a->abort_process = true;
		else if (strncmp(action, "sleep", 5) == 0 && (a->sleep_ms = strtol(action + 5, NULL, 10)) > 0)
			a->sleep_ms = a->sleep_ms > 600000 ? 600000 : a->sleep_ms;
		else if (strcmp(action, "error") != 0)
			a->fire_on = 0;
		if (a->fire_on < 1) {
			fprintf(stderr, "cachewarp: CW_FAILPOINTS: ignoring \"%s\"\n", a->name);
			continue;
		}
		narmed++;
	}
	free(copy);
}

bool cw_failpoint_hit(const char *name)
{
	bool fire = false;
	bool abort_process = false;
	long sleep_ms = 0;
	pthread_mutex_lock(&failpoint_mutex);
	if (!loaded)
		load();
	for (size_t i = 0; i < narmed; i++) {
		if (strcmp(armed[i].name, name) != 0)
			continue;
		armed[i].hits++;
		if (armed[i].hits == armed[i].fire_on) {
			fire = armed[i].sleep_ms == 0;
			sleep_ms = armed[i].sleep_ms;
			abort_process = armed[i].abort_process;
		}
	}
	pthread_mutex_unlock(&failpoint_mutex);
	if (fire && abort_process) {
		static const char msg[] = "cachewarp: failpoint fired: abort\n";
		ssize_t ignored = write(2, msg, sizeof msg - 1);
		(void)ignored;
		abort();
	}
	if (sleep_ms > 0)
		usleep((useconds_t)sleep_ms * 1000);
	return fire;
}

void cw_failpoint_reset(void)
{
	pthread_mutex_lock(&failpoint_mutex);
	load();
	pthread_mutex_unlock(&failpoint_mutex);
}

#else
/* ISO C forbids an empty translation unit. */
typedef int cw_failpoint_unused_t;
#endif
