/*
 * This file contains what the commands do once their arguments are parsed:
 * load the configuration, set up logging, reach the hub, and run the daemon
 * or one administrative action. Each returns an exit code (control/cli.h)
 * and logs or prints its own errors.
 */
#ifndef CW_CONTROL_RUNTIME_H
#define CW_CONTROL_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>

/* `cachewarp run`: entities (borrowed, may be NULL) limits capture and apply. */
int cw_runtime_run(const char *config_path, const char **entities, size_t nentities);

/* `cachewarp migrate`. */
int cw_runtime_migrate(const char *config_path);

/* `cachewarp status`. */
int cw_runtime_status(const char *config_path, bool json);

typedef struct cw_runtime_entity_request {
	const char *action;       /* list, add, show, delete, refresh, resume */
	const char *name;         /* NULL for list */
	const char *source;       /* add */
	const char *table;        /* add, PostgreSQL sources */
	const char *collection;   /* add, MongoDB sources */
	const char **columns;     /* add: "name:type:path" each */
	size_t ncolumns;
} cw_runtime_entity_request_t;

/* `cachewarp entity ...`. All strings borrowed. */
int cw_runtime_entity(const char *config_path, const cw_runtime_entity_request_t *request);

#endif
