/* This file contains the aborting allocation wrappers declared in mem.h. */
#include "core/mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void out_of_memory(size_t size)
{
	fprintf(stderr, "cachewarp: out of memory allocating %zu bytes\n", size);
	abort();
}

void *cw_xmalloc(size_t size)
{
	void *ptr = malloc(size ? size : 1);
	if (ptr == NULL)
		out_of_memory(size);
	return ptr;
}

void *cw_xcalloc(size_t count, size_t size)
{
	void *ptr = calloc(count ? count : 1, size ? size : 1);
	if (ptr == NULL)
		out_of_memory(count * size);
	return ptr;
}

void *cw_xrealloc(void *ptr, size_t size)
{
	void *grown = realloc(ptr, size ? size : 1);
	if (grown == NULL)
		out_of_memory(size);
	return grown;
}

char *cw_xstrdup(const char *s)
{
	return s ? cw_xstrndup(s, strlen(s)) : NULL;
}

char *cw_xstrndup(const char *s, size_t len)
{
	char *copy = cw_xmalloc(len + 1);
	memcpy(copy, s, len);
	copy[len] = '\0';
	return copy;
}

char *cw_xasprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int len = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (len < 0)
		abort();
	char *out = cw_xmalloc((size_t)len + 1);
	va_start(ap, fmt);
	vsnprintf(out, (size_t)len + 1, fmt, ap);
	va_end(ap);
	return out;
}
