/*
 * This file contains what the projection's files share (projection.h): a
 * compiled projection, its columns and their paths. projection_compile.c
 * compiles an entity's columns; projection.c projects documents with them.
 * Private to those two files.
 */
#ifndef CW_CORE_PROJECTION_INTERNAL_H
#define CW_CORE_PROJECTION_INTERNAL_H

#include "core/entity.h"
#include "core/projection.h"

#include <stddef.h>

/* One segment of a compiled path; name points into the column's segment text. */
typedef struct segment {
	const char *name;
	size_t len;
	long index;     /* the segment as an array index, or -1 */
} segment_t;

typedef struct column {
	char *name;             /* owned */
	char *path;             /* owned; the path as written, for messages */
	char *segment_text;     /* owned; the path with NULs for dots */
	segment_t *segments;    /* owned; nsegments == 0 means the whole document */
	size_t nsegments;
	cw_column_type_t type;
} column_t;

struct cw_projection {
	unsigned flags;
	column_t *columns;      /* owned array */
	size_t ncolumns;
};

#endif
