/*
 * This file contains the allocation wrappers: every allocation in cachewarp
 * goes through them, and allocation failure aborts the process with a message
 * (as Redis zmalloc does) instead of being handled at every call site.
 */
#ifndef CW_CORE_MEM_H
#define CW_CORE_MEM_H

#include <stddef.h>

void *cw_xmalloc(size_t size);
void *cw_xcalloc(size_t count, size_t size);
void *cw_xrealloc(void *ptr, size_t size);
char *cw_xstrdup(const char *s);                 /* NULL in, NULL out */
char *cw_xstrndup(const char *s, size_t len);    /* copies len bytes + NUL */
char *cw_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
