/* A least-recently-used cache of query vectors, keyed by the query text:
 * searchd asks it before the embedding server, so a repeated query costs a
 * hash and a copy instead of a round trip. Keys are compared in full (the
 * hash only finds the bucket), so two texts never share a vector.
 * Thread-safe: one mutex around each call (the work inside is a few
 * pointer moves and one copy of the vector). */
#ifndef SEARCHD_LRU_H
#define SEARCHD_LRU_H

#include <stddef.h>
#include <stdint.h>

struct lru;

/* A cache of at most cap entries (0 is taken as 1; at most 2^24).
 * 0, or -SAGE_ENOMEM. */
int lru_new(size_t cap, struct lru **out);
void lru_free(struct lru *c);

/* When key[0, len) is cached with a vector of at most out_cap floats: copies
 * it into out, makes it the most recent, and returns its dimension; else 0. */
size_t lru_get(struct lru *c, const char *key, size_t len, float *out, size_t out_cap);

/* Caches v[0, dim) under key[0, len) (copying both), replacing the value of
 * an equal key, evicting the least recent entry when full. 0, or
 * -SAGE_ENOMEM (the cache is left as it was). */
int lru_put(struct lru *c, const char *key, size_t len, const float *v, size_t dim);

/* Entries held; hits, misses and evictions since lru_new. */
struct lru_stats {
    size_t size;
    uint64_t hits, misses, evictions;
};
void lru_get_stats(struct lru *c, struct lru_stats *s);

#endif
