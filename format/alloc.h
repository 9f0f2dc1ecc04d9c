/* Allocation in libsage goes through these wrappers so tests can inject
 * out-of-memory at any call. The hooks are process configuration, set once
 * before use (tests only); they are not meant to change while threads run. */
#ifndef SAGE_ALLOC_H
#define SAGE_ALLOC_H

#include <stddef.h>

struct sage_alloc_hooks {
    void *(*malloc)(size_t n);
    void *(*realloc)(void *p, size_t n);
    void (*free)(void *p);
};

/* Installs hooks (NULL restores the C library's). Not thread-safe. */
void sage_alloc_set(const struct sage_alloc_hooks *hooks);

void *sage_malloc(size_t n);
void *sage_calloc(size_t count, size_t size);   /* NULL on overflow too */
void *sage_realloc(void *p, size_t n);
void sage_free(void *p);
char *sage_strdup(const char *s);

/* Makes *p (an array of *cap elements of elem bytes) hold at least need
 * elements, doubling from 16; 0, or -1 when out of memory or the size would
 * overflow (then *p and *cap are unchanged). */
int sage_grow(void **p, size_t *cap, size_t need, size_t elem);

#endif
