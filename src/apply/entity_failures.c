/* This file contains a target's failed entities (entity_failures.h). */
#include "apply/entity_failures.h"

#include "core/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAILURE_RETRY_FIRST_MS 10000
#define FAILURE_RETRY_MAX_MS 300000

static cw_entity_failure_t *find(const cw_entity_failures_t *f, const char *entity)
{
	for (size_t i = 0; i < f->len; i++)
		if (strcmp(f->items[i].entity, entity) == 0)
			return &f->items[i];
	return NULL;
}

bool cw_entity_failures_mark(cw_entity_failures_t *f, const char *entity, const char *reason,
                             int64_t now_ms)
{
	cw_entity_failure_t *failure = find(f, entity);
	bool news = failure == NULL || strcmp(failure->reason, reason) != 0;
	if (failure == NULL) {
		f->items = cw_xrealloc(f->items, (f->len + 1) * sizeof *f->items);
		failure = &f->items[f->len++];
		failure->entity = cw_xstrdup(entity);
		failure->delay_ms = FAILURE_RETRY_FIRST_MS;
	} else {
		failure->delay_ms = failure->delay_ms * 2 > FAILURE_RETRY_MAX_MS ? FAILURE_RETRY_MAX_MS
		                                                                 : failure->delay_ms * 2;
	}
	snprintf(failure->reason, sizeof failure->reason, "%s", reason);
	failure->retry_at_ms = now_ms + failure->delay_ms;
	return news;
}

bool cw_entity_failures_clear(cw_entity_failures_t *f, const char *entity)
{
	cw_entity_failure_t *failure = find(f, entity);
	if (failure == NULL)
		return false;
	free(failure->entity);
	*failure = f->items[--f->len];
	return true;
}

const cw_entity_failure_t *cw_entity_failures_find(const cw_entity_failures_t *f,
                                                   const char *entity)
{
	return find(f, entity);
}

bool cw_entity_failures_due(const cw_entity_failures_t *f, const char *entity, int64_t now_ms)
{
	const cw_entity_failure_t *failure = find(f, entity);
	return failure == NULL || now_ms >= failure->retry_at_ms;
}

void cw_entity_failures_publish(const cw_entity_failures_t *f, cw_component_status_t *status)
{
	status->nfailed = f->len;
	for (size_t i = 0; i < f->len && i < CW_COMPONENT_FAILED_MAX; i++) {
		snprintf(status->failed[i].entity, sizeof status->failed[i].entity, "%s",
		         f->items[i].entity);
		snprintf(status->failed[i].reason, sizeof status->failed[i].reason, "%s",
		         f->items[i].reason);
	}
}

void cw_entity_failures_clear_all(cw_entity_failures_t *f)
{
	for (size_t i = 0; i < f->len; i++)
		free(f->items[i].entity);
	free(f->items);
	f->items = NULL;
	f->len = 0;
}
