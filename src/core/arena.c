/* This file contains the arena declared in arena.h. */
#include "core/arena.h"

#include "core/mem.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
 * Chunks double from 4 KiB (a small arena stays small) to 64 KiB (a batch of
 * 1,000 changes of ~250 bytes takes a few; below malloc's mmap threshold).
 */
#define CHUNK_MIN ((size_t)4 << 10)
#define CHUNK_MAX ((size_t)64 << 10)

struct cw_arena_chunk {
	cw_arena_chunk_t *next;
	alignas(max_align_t) char data[];
};

/*
 * size bytes from the newest chunk, or from a new one when it has less than
 * size left (a new chunk's data is aligned for any value); the newest keeps
 * its free space when a large block gets a chunk of its own.
 */
static char *take(cw_arena_t *arena, size_t size)
{
	if (size > arena->left) {
		size_t grow = arena->total < CHUNK_MIN ? CHUNK_MIN
		              : arena->total < CHUNK_MAX ? arena->total : CHUNK_MAX;
		size_t cap = size > grow / 4 ? size : grow;
		cw_arena_chunk_t *chunk = cw_xmalloc(sizeof *chunk + cap);
		arena->total += sizeof *chunk + cap;
		if (cap == size && arena->chunks != NULL) {
			chunk->next = arena->chunks->next;
			arena->chunks->next = chunk;
			return chunk->data;
		}
		chunk->next = arena->chunks;
		arena->chunks = chunk;
		arena->next = chunk->data;
		arena->left = cap;
	}
	char *block = arena->next;
	arena->next += size;
	arena->left -= size;
	return block;
}

void *cw_arena_alloc(cw_arena_t *arena, size_t size)
{
	size_t align = alignof(max_align_t);
	if (size == 0)
		size = 1;   /* a distinct block, never NULL */
	size_t skip = (align - (size_t)((uintptr_t)arena->next % align)) % align;
	if (skip + size > arena->left) {
		arena->left = 0;   /* a new chunk, aligned: the rest of this one stays unused */
		return take(arena, size);
	}
	arena->next += skip;
	arena->left -= skip;
	return take(arena, size);
}

char *cw_arena_strndup(cw_arena_t *arena, const char *s, size_t len)
{
	char *copy = take(arena, len + 1);
	if (len > 0)
		memcpy(copy, s, len);
	copy[len] = '\0';
	return copy;
}

char *cw_arena_strdup(cw_arena_t *arena, const char *s)
{
	return s != NULL ? cw_arena_strndup(arena, s, strlen(s)) : NULL;
}

void cw_arena_free(cw_arena_t *arena)
{
	cw_arena_chunk_t *chunk = arena->chunks;
	while (chunk != NULL) {
		cw_arena_chunk_t *next = chunk->next;
		free(chunk);
		chunk = next;
	}
	memset(arena, 0, sizeof *arena);
}
