/* This file contains the compiling of an entity's columns into a projection (projection.h). */
#include "core/projection_internal.h"

#include "core/mem.h"

#include <stdlib.h>
#include <string.h>

#define DOMAIN "projection"

/* The segment as a canonical array index ("0", "17", not "01"), else -1. */
static long segment_index(const char *s, size_t len)
{
	if (len == 0 || len > 9 || (len > 1 && s[0] == '0'))
		return -1;
	long index = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		index = index * 10 + (s[i] - '0');
	}
	return index;
}

static void compile_path(column_t *column)
{
	column->segment_text = cw_xstrdup(column->path);
	size_t count = 1;
	for (const char *p = column->path; *p; p++)
		count += *p == '.';
	column->segments = cw_xcalloc(count, sizeof *column->segments);
	column->nsegments = count;
	char *start = column->segment_text;
	for (size_t i = 0; i < count; i++) {
		char *dot = strchr(start, '.');
		size_t len = dot ? (size_t)(dot - start) : strlen(start);
		if (dot)
			*dot = '\0';
		column->segments[i] = (segment_t){start, len, segment_index(start, len)};
		start += len + 1;
	}
}

cw_projection_t *cw_projection_new(const cw_entity_t *entity, unsigned flags,
                                   cw_err_t *err)
{
	cw_projection_t *proj = cw_xcalloc(1, sizeof *proj);
	proj->flags = flags;
	if (entity->ncolumns == 0) {
		proj->columns = cw_xcalloc(1, sizeof *proj->columns);
		proj->ncolumns = 1;
		proj->columns[0].name = cw_xstrdup("doc");
		proj->columns[0].path = cw_xstrdup("");
		proj->columns[0].type = CW_COL_JSONB;
		return proj;
	}
	proj->columns = cw_xcalloc(entity->ncolumns, sizeof *proj->columns);
	for (size_t i = 0; i < entity->ncolumns; i++) {
		const cw_column_t *src = &entity->columns[i];
		if (cw_identifier_validate("column name", src->name, err) != 0) {
			cw_projection_free(proj);
			return NULL;
		}
		if (cw_path_validate(src->path, err) != 0) {
			cw_err_prefix(err, "column \"%s\"", src->name);
			cw_projection_free(proj);
			return NULL;
		}
		if ((unsigned)src->type > CW_COL_TEXT) {
			cw_err_set(err, CW_EINVAL, DOMAIN, "column \"%s\" has an unknown type %d",
			           src->name, (int)src->type);
			cw_projection_free(proj);
			return NULL;
		}
		column_t *column = &proj->columns[proj->ncolumns++];
		column->name = cw_xstrdup(src->name);
		column->path = cw_xstrdup(src->path);
		column->type = src->type;
		compile_path(column);
	}
	return proj;
}

void cw_projection_free(cw_projection_t *proj)
{
	if (proj == NULL)
		return;
	for (size_t i = 0; i < proj->ncolumns; i++) {
		free(proj->columns[i].name);
		free(proj->columns[i].path);
		free(proj->columns[i].segment_text);
		free(proj->columns[i].segments);
	}
	free(proj->columns);
	free(proj);
}

size_t cw_projection_ncolumns(const cw_projection_t *proj)
{
	return proj->ncolumns;
}
