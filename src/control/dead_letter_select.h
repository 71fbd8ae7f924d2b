/*
 * This file contains the dead letters a person selects by text (a target,
 * an entity, a status, a page, an id), checked in one place for
 * `cachewarp deadletter` and for /v1/deadletters, so the command line and
 * the REST API accept and refuse the same values with the same words.
 */
#ifndef CW_CONTROL_DEAD_LETTER_SELECT_H
#define CW_CONTROL_DEAD_LETTER_SELECT_H

#include "core/err.h"
#include "hub/dead_letters.h"

#include <stdint.h>

/* The most dead letters one list returns, and how many when no limit is given. */
#define CW_DEAD_LETTER_LIST_MAX 10000
#define CW_DEAD_LETTER_LIST_DEFAULT 100

/* A selection as given; each member borrowed, NULL when not given. */
typedef struct cw_dead_letter_select_text {
	const char *target;
	const char *entity;
	const char *status;             /* "failed" or "replay" */
	const char *after;              /* an id >= 0: only letters past it */
	const char *limit;              /* 1 .. CW_DEAD_LETTER_LIST_MAX */
} cw_dead_letter_select_text_t;

/*
 * Checks text into *filter (overwritten; its target and entity borrow from
 * text): target and entity are identifiers ([a-z][a-z0-9_]{0,62}, the rule
 * of configured names), status one of failed or replay, after an integer
 * >= 0, limit an integer in 1..CW_DEAD_LETTER_LIST_MAX (default
 * CW_DEAD_LETTER_LIST_DEFAULT). A message names the value as prefix, key,
 * suffix: ("--", "") gives `--limit: ...`, ("query parameter \"", "\"")
 * gives `query parameter "limit": ...`. 0 or CW_EINVAL.
 */
int cw_dead_letter_select_parse(const cw_dead_letter_select_text_t *text, const char *prefix,
                                const char *suffix, cw_dead_letter_filter_t *filter,
                                cw_err_t *err);

/* Parses a dead letter's id (a positive integer) into *id. 0 or CW_EINVAL. */
int cw_dead_letter_id_parse(const char *text, int64_t *id, cw_err_t *err);

#endif
