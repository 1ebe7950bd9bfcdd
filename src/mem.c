#define RS_LOG_MODULE "mem"
#include "mem.h"

#include "log.h"

#include <stdlib.h>
#include <string.h>

static void *checked(void *ptr, size_t size)
{
    if (ptr == NULL && size != 0) {
        RS_LOG_ERROR("out of memory size=%zu", size);
        abort();
    }
    return ptr;
}

void *rs_xmalloc(size_t size)
{
    return checked(malloc(size), size);
}

void *rs_xcalloc(size_t count, size_t size)
{
    return checked(calloc(count, size), count * size);
}

void *rs_xrealloc(void *ptr, size_t size)
{
    return checked(realloc(ptr, size), size);
}

char *rs_xstrdup(const char *s)
{
    return rs_xstrndup(s, strlen(s));
}

char *rs_xstrndup(const char *s, size_t len)
{
    char *copy = rs_xmalloc(len + 1);

    memcpy(copy, s, len);
    copy[len] = '\0';
    return copy;
}
