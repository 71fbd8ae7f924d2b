/* This file contains the helpers declared in component.h. */
#include "core/component.h"

#include <string.h>

bool cw_component_wants(const cw_component_ctx_t *ctx, const char *entity)
{
	if (ctx->entities == NULL || ctx->nentities == 0)
		return true;
	for (size_t i = 0; i < ctx->nentities; i++)
		if (strcmp(ctx->entities[i], entity) == 0)
			return true;
	return false;
}
