/*
 * This file contains the source interface: what the daemon needs from a
 * capture worker (one per configured source). Each source type lives in its
 * own file and exports one cw_source_ops_t; sources.c maps the configured
 * type to it (one registration line per type).
 *
 * A source reads its entities from the hub, captures their changes, projects
 * them, writes them to the hub in batches through the oplog writer with its
 * checkpoint in the same transaction, and acknowledges its position to the
 * source database only after that commit (DESIGN.md §1, §4).
 */
#ifndef CW_CAPTURE_SOURCE_H
#define CW_CAPTURE_SOURCE_H

#include "core/component.h"

typedef struct cw_source_ops {
	const char *type;   /* "postgres", "mongodb" */
	/* Opens the source (no I/O needed); NULL with err filled. The result is owned by the caller. */
	void *(*open)(const cw_component_ctx_t *ctx, cw_err_t *err);
	/* Captures until cancel fires (CW_ECANCELED) or an error (returned, err filled). */
	int (*run)(void *source, cw_cancel_t *cancel, cw_err_t *err);
	/* Fills out; callable from any thread while run runs. */
	void (*status)(void *source, cw_component_status_t *out);
	/* Frees the source after run returned; NULL is a no-op. */
	void (*close)(void *source);
} cw_source_ops_t;

/* The operations of a configured source type; NULL when the type has none yet. */
const cw_source_ops_t *cw_source_ops_for(cw_source_type_t type);

#endif
