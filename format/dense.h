/* Dense search over the VECTORS section (FORMAT.md §9.11, §11.4): the
 * chunks whose embeddings have the largest inner product with a query
 * vector. Exact mode scans every int8 row, keeps the best k × oversample by
 * their int8 score, and rescores those with the f32 rows; filters are a
 * bitmap over chunks applied before the top k, never after. The query is a
 * float vector of the index's dimension, already carrying the model's
 * query prefix semantics and, for a normalized index, unit length (the
 * caller normalizes). Results are deterministic: equal scores rank by
 * increasing chunk id. */
#ifndef SAGE_DENSE_H
#define SAGE_DENSE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "vectors.h"

#define SAGE_DENSE_OVERSAMPLE 4u    /* int8 candidates per wanted hit */

struct sage_dense_hit {
    uint64_t chunk;
    float score;            /* f32 inner product with the query */
};

struct sage_dense_opts {
    size_t k;               /* hits wanted */
    unsigned oversample;    /* 0: SAGE_DENSE_OVERSAMPLE */
    const uint64_t *allow;  /* NULL: every chunk may be a hit; else bit c of
                               allow[c / 64] is set for the chunks that may */
    unsigned threads;       /* scan threads; 0: the library's default */
    const char *isa;        /* NULL: the fastest int8 kernel this CPU has; else
                               one named as sage_kernels_i8_rows names them
                               (tests, benchmarks); INVAL if the CPU lacks it */
};

/* The best min(k, allowed rows) chunks for query q[0, v->dim), best first,
 * into hits (room for o->k), their number in *n_hits. Returns 0, or
 * -SAGE_EINVAL for missing arguments, strides too short for v->dim, a
 * non-finite query value or an ISA this CPU lacks, or -SAGE_ENOMEM. The scan
 * runs on at most o->threads threads (one for small scans): the caller's and
 * those of a pool the library starts on first use and keeps for the life of
 * the process. The result does not depend on the number of threads.
 * Thread-safe: any number of threads may search at once, over the same
 * vectors or not; v and q are only read. */
int sage_dense_exact(const struct sage_vectors *v, const float *q,
                     const struct sage_dense_opts *o, struct sage_dense_hit *hits,
                     size_t *n_hits, struct sage_err *err);

/* The default of sage_dense_opts.threads: the online CPUs, at most 4 (the
 * pool is started by this call if it was not). Thread-safe. */
unsigned sage_dense_threads(void);

#endif
