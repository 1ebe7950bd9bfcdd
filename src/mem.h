/*
 * mem.h - allocation that cannot fail. Out of memory is fatal for revstream: these log and
 * abort, so call sites do not check. Sizes that come from input are checked against config
 * limits before they reach here. Any thread.
 */
#ifndef RS_MEM_H
#define RS_MEM_H

#include <stddef.h>

void *rs_xmalloc(size_t size);
void *rs_xcalloc(size_t count, size_t size);
void *rs_xrealloc(void *ptr, size_t size);
char *rs_xstrdup(const char *s);
char *rs_xstrndup(const char *s, size_t len);

#endif
