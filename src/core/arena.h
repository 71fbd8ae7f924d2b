/*
 * This file contains the arena: many small allocations taken from a few
 * large chunks and freed at once (h2o's request pool). A batch of changes
 * keeps its strings in one (core/change.h); the kazaam engine its value trees.
 *
 * THREAD SAFETY: an arena belongs to one thread at a time; it may be handed
 * to another thread with what lives in it (a batch handed to its writer).
 */
#ifndef CW_CORE_ARENA_H
#define CW_CORE_ARENA_H

#include <stddef.h>

typedef struct cw_arena_chunk cw_arena_chunk_t;

typedef struct cw_arena {
	cw_arena_chunk_t *chunks;   /* owned; newest first */
	char *next;                 /* free space in the newest chunk */
	size_t left;
	size_t total;               /* bytes taken from malloc */
} cw_arena_t;

#define CW_ARENA_INIT {NULL, NULL, 0, 0}

/*
 * size bytes aligned for any value, owned by arena until cw_arena_free;
 * aborts when memory runs out (core/mem.h).
 */
void *cw_arena_alloc(cw_arena_t *arena, size_t size);

/* A NUL-terminated copy of len bytes of s, not aligned; owned by arena. */
char *cw_arena_strndup(cw_arena_t *arena, const char *s, size_t len);

/* cw_arena_strndup of the whole string; NULL in, NULL out. */
char *cw_arena_strdup(cw_arena_t *arena, const char *s);

/* Frees every chunk; the arena is empty and may be reused. A zeroed arena is a no-op. */
void cw_arena_free(cw_arena_t *arena);

#endif
