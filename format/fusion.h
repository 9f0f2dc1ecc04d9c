/* Fusion of two ranked lists of chunks (FORMAT.md §11.6): the BM25 leg and
 * the dense leg of a hybrid search become one list, by reciprocal rank
 * fusion or by a convex combination of min-max normalized scores, and each
 * fused hit keeps its rank and score in either leg so a client can see why
 * it ranked. Pure arithmetic over the lists it is given; no index needed.
 * Thread-safe (no shared state). */
#ifndef SAGE_FUSION_H
#define SAGE_FUSION_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define SAGE_FUSION_RRF_K 60.0      /* the constant of Cormack et al. (2009) */

enum sage_fusion_kind {
    SAGE_FUSION_RRF,                /* Σ w / (rrf_k + rank) */
    SAGE_FUSION_CONVEX,             /* Σ w · minmax(score) / Σ w */
};

struct sage_fusion_opts {
    enum sage_fusion_kind kind;
    double rrf_k;                   /* <= 0: SAGE_FUSION_RRF_K */
    double w_bm25, w_dense;         /* leg weights, >= 0 (both 0: 1 and 1) */
};

/* One entry of a leg: a chunk and its score there, best first. */
struct sage_leg_hit {
    uint64_t chunk;
    double score;
};

/* A chunk's place in one leg: rank from 1, 0 when the leg did not list it
 * (its score is then 0 and means nothing). */
struct sage_leg {
    uint32_t rank;
    double score;
};

struct sage_fused_hit {
    uint64_t chunk;
    double score;                   /* the fused score */
    struct sage_leg bm25, dense;
};

/* Fuses bm25[0, n_bm25) and dense[0, n_dense) (each best first, a chunk at
 * most once per leg) and keeps the best k, best first, equal fused scores
 * by increasing chunk id. *out is allocated (sage_free; NULL when *n_out is
 * 0). A chunk repeated in one leg is -SAGE_EINVAL; -SAGE_ENOMEM. */
int sage_fusion_fuse(const struct sage_leg_hit *bm25, size_t n_bm25,
                     const struct sage_leg_hit *dense, size_t n_dense,
                     const struct sage_fusion_opts *o, size_t k,
                     struct sage_fused_hit **out, size_t *n_out, struct sage_err *err);

/* "rrf" or "convex" into *kind: 0, or -SAGE_EINVAL. */
int sage_fusion_parse(const char *name, enum sage_fusion_kind *kind);
const char *sage_fusion_name(enum sage_fusion_kind kind);

#endif
