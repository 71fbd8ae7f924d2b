/* This file contains the helpers declared in component.h. */
#include "core/component.h"

#include "core/buf.h"
#include "core/mem.h"
#include "core/secret.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cw_component_status_add_failed(cw_component_status_t *status, const char *entity,
                                    const char *reason)
{
	if (status->nfailed < CW_COMPONENT_FAILED_MAX) {
		cw_failed_entity_t *f = &status->failed[status->nfailed];
		snprintf(f->entity, sizeof f->entity, "%s", entity);
		snprintf(f->reason, sizeof f->reason, "%s", reason);
	}
	status->nfailed++;
}

void cw_component_status_set(pthread_mutex_t *mutex, cw_component_status_t *status,
                             const char *state, bool healthy, const char *error)
{
	char *masked = error != NULL ? cw_secret_mask(error) : NULL;
	pthread_mutex_lock(mutex);
	if (state != NULL)
		snprintf(status->state, sizeof status->state, "%s", state);
	status->healthy = healthy;
	if (masked != NULL)
		snprintf(status->last_error, sizeof status->last_error, "%s", masked);
	pthread_mutex_unlock(mutex);
	free(masked);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

char *cw_component_scope(const char *const *entities, size_t nentities)
{
	const char **names = cw_xcalloc(nentities + 1, sizeof *names);
	for (size_t i = 0; i < nentities; i++)
		names[i] = entities[i];
	qsort(names, nentities, sizeof *names, name_cmp);
	cw_buf_t scope = CW_BUF_INIT;
	cw_buf_append_str(&scope, "");
	for (size_t i = 0; i < nentities; i++)
		if (i == 0 || strcmp(names[i], names[i - 1]) != 0)
			cw_buf_appendf(&scope, "%s%s", scope.len ? "," : "", names[i]);
	free(names);
	return cw_buf_take(&scope);
}

bool cw_component_wants(const cw_component_ctx_t *ctx, const char *entity)
{
	if (ctx->entities == NULL || ctx->nentities == 0)
		return true;
	for (size_t i = 0; i < ctx->nentities; i++)
		if (strcmp(ctx->entities[i], entity) == 0)
			return true;
	return false;
}
