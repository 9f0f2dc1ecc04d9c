/* The query-vector cache (lru.h): a chained hash table whose buckets are
 * twice the capacity (a power of two), and a doubly linked recency list
 * through the same nodes; eviction takes the list's tail. */
#include "lru.h"

#include <pthread.h>
#include <string.h>
#include <xxhash.h>

#include "alloc.h"
#include "err.h"

struct node {
    struct node *chain;             /* next in the bucket */
    struct node *prev, *next;       /* recency: prev is more recent */
    uint64_t hash;
    char *key;
    size_t len, dim;
    float *v;
};

struct lru {
    pthread_mutex_t mu;
    struct node **bucket;
    size_t mask, cap, size;
    struct node *head, *tail;       /* most and least recent */
    uint64_t hits, misses, evictions;
};

int lru_new(size_t cap, struct lru **out)
{
    struct lru *c = sage_calloc(1, sizeof(*c));
    size_t nb = 2;
    *out = NULL;
    if (cap == 0 || cap > ((size_t)1 << 24))
        cap = cap ? (size_t)1 << 24 : 1;
    while (nb < 2 * cap)
        nb *= 2;
    if (!c || !(c->bucket = sage_calloc(nb, sizeof(*c->bucket)))) {
        sage_free(c);
        return -SAGE_ENOMEM;
    }
    pthread_mutex_init(&c->mu, NULL);
    c->mask = nb - 1;
    c->cap = cap;
    *out = c;
    return 0;
}

static void node_free(struct node *n)
{
    if (!n)
        return;
    sage_free(n->key);
    sage_free(n->v);
    sage_free(n);
}

void lru_free(struct lru *c)
{
    if (!c)
        return;
    for (struct node *n = c->head, *next; n; n = next) {
        next = n->next;
        node_free(n);
    }
    pthread_mutex_destroy(&c->mu);
    sage_free(c->bucket);
    sage_free(c);
}

static void unlink_node(struct lru *c, struct node *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else
        c->head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        c->tail = n->prev;
    n->prev = n->next = NULL;
}

static void push_front(struct lru *c, struct node *n)
{
    n->next = c->head;
    n->prev = NULL;
    if (c->head)
        c->head->prev = n;
    c->head = n;
    if (!c->tail)
        c->tail = n;
}

/* The slot that points at key's node, or at the NULL ending its chain. */
static struct node **find(struct lru *c, uint64_t h, const char *key, size_t len)
{
    struct node **p = &c->bucket[h & c->mask];
    while (*p && !((*p)->hash == h && (*p)->len == len && memcmp((*p)->key, key, len) == 0))
        p = &(*p)->chain;
    return p;
}

size_t lru_get(struct lru *c, const char *key, size_t len, float *out, size_t out_cap)
{
    uint64_t h = XXH3_64bits(key, len);
    size_t dim = 0;
    pthread_mutex_lock(&c->mu);
    struct node *n = *find(c, h, key, len);
    if (n && n->dim <= out_cap) {
        memcpy(out, n->v, n->dim * sizeof(float));
        dim = n->dim;
        unlink_node(c, n);
        push_front(c, n);
        c->hits++;
    } else {
        c->misses++;
    }
    pthread_mutex_unlock(&c->mu);
    return dim;
}

int lru_put(struct lru *c, const char *key, size_t len, const float *v, size_t dim)
{
    uint64_t h = XXH3_64bits(key, len);
    struct node *n = sage_calloc(1, sizeof(*n));
    if (!n || !(n->key = sage_malloc(len ? len : 1)) ||
        !(n->v = sage_calloc(dim ? dim : 1, sizeof(float)))) {
        node_free(n);
        return -SAGE_ENOMEM;
    }
    memcpy(n->key, key, len);
    memcpy(n->v, v, dim * sizeof(float));
    n->hash = h;
    n->len = len;
    n->dim = dim;
    pthread_mutex_lock(&c->mu);
    struct node **p = find(c, h, key, len), *old = *p;
    if (old) {                      /* replace in place in its chain */
        n->chain = old->chain;
        *p = n;
        unlink_node(c, old);
        c->size--;
    } else {
        n->chain = c->bucket[h & c->mask];
        c->bucket[h & c->mask] = n;
    }
    push_front(c, n);
    c->size++;
    struct node *victim = NULL;
    if (c->size > c->cap) {
        victim = c->tail;
        unlink_node(c, victim);
        struct node **q = find(c, victim->hash, victim->key, victim->len);
        *q = victim->chain;
        c->size--;
        c->evictions++;
    }
    pthread_mutex_unlock(&c->mu);
    node_free(old);
    node_free(victim);
    return 0;
}

void lru_get_stats(struct lru *c, struct lru_stats *s)
{
    pthread_mutex_lock(&c->mu);
    *s = (struct lru_stats){ c->size, c->hits, c->misses, c->evictions };
    pthread_mutex_unlock(&c->mu);
}
