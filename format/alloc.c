/* The allocation seam: plain libc by default, replaceable by tests. */
#include "alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static struct sage_alloc_hooks hooks = { malloc, realloc, free };

void sage_alloc_set(const struct sage_alloc_hooks *h)
{
    if (h)
        hooks = *h;
    else
        hooks = (struct sage_alloc_hooks){ malloc, realloc, free };
}

void *sage_malloc(size_t n)
{
    return hooks.malloc(n ? n : 1);
}

void *sage_calloc(size_t count, size_t size)
{
    if (size && count > (size_t)-1 / size)
        return NULL;
    void *p = sage_malloc(count * size);
    if (p)
        memset(p, 0, count * size);
    return p;
}

void *sage_realloc(void *p, size_t n)
{
    return hooks.realloc(p, n ? n : 1);
}

void sage_free(void *p)
{
    if (p)
        hooks.free(p);
}

char *sage_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = sage_malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

int sage_grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 16;
    while (c < need) {
        if (c > SIZE_MAX / 2)
            return -1;
        c *= 2;
    }
    if (c > SIZE_MAX / elem)
        return -1;
    void *q = sage_realloc(*p, c * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}
