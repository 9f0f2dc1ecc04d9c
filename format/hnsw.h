/* Approximate dense search: an HNSW graph over the rows of VECTORS, stored
 * in section HNSW (FORMAT.md §9.13) and searched in place from the mapping.
 * The builder works on f32 rows in memory (inner product; rows are expected
 * to have unit length); search walks the graph with the int8 rows of VECTORS
 * and rescores its ef best candidates with the f32 rows. Exact search, and
 * everything about queries (prefixes, normalization), is dense.h's. */
#ifndef SAGE_HNSW_H
#define SAGE_HNSW_H

#include <stddef.h>
#include <stdint.h>

#include "dense.h"
#include "err.h"
#include "reader.h"
#include "vectors.h"
#include "writer.h"

#define SAGE_HNSW_M 16u                 /* default neighbours per node, levels >= 1 */
#define SAGE_HNSW_EF_CONSTRUCTION 200u  /* default candidates kept while inserting */
#define SAGE_HNSW_M_MAX 256u
#define SAGE_HNSW_EF_MAX 65536u         /* largest ef_construction and search ef */
#define SAGE_HNSW_LEVEL_MAX 32u
#define SAGE_HNSW_SEED 0x5a6e5357u      /* default seed of the node levels */

struct sage_hnsw_params {
    uint32_t m;                 /* 0: SAGE_HNSW_M; level 0 keeps 2m */
    uint32_t ef_construction;   /* 0: SAGE_HNSW_EF_CONSTRUCTION */
    unsigned threads;           /* 0: one per online core; only 1 gives the same
                                   graph from run to run */
    uint64_t seed;              /* of the node levels; 0: SAGE_HNSW_SEED */
};

/* A graph being built, owned by the caller of sage_hnsw_build. */
struct sage_hnsw_graph;

/* Builds the graph of n rows of dim floats, row i at rows + i * stride
 * (stride >= dim, in floats); the rows are borrowed for the call only.
 * n must be below 2^32 - 1. On success *out owns the graph (free it with
 * sage_hnsw_graph_free). INVAL for bad parameters, NOMEM. */
int sage_hnsw_build(const struct sage_hnsw_params *p, uint64_t n, uint32_t dim,
                    const float *rows, size_t stride, struct sage_hnsw_graph **out,
                    struct sage_err *err);

/* Writes the graph as section HNSW (raw). */
int sage_hnsw_write(struct sage_writer *w, const struct sage_hnsw_graph *g,
                    struct sage_err *err);

void sage_hnsw_graph_free(struct sage_hnsw_graph *g);

/* A graph in a mapped file: a view, valid while its reader is open.
 * Immutable, so searches on one view may run in parallel. */
struct sage_hnsw {
    uint32_t m, m0, ef_construction, max_level;
    uint64_t n;
    uint32_t entry;             /* a node of level max_level (0 when n is 0) */
    uint32_t n_upper;           /* nodes with a level above 0 */
    size_t stride0;             /* bytes from one level-0 list to the next */
    const uint8_t *level0;      /* n lists: u32 count, then m0 u32 ids */
    const uint32_t *up_node;    /* n_upper ids, increasing */
    const uint32_t *up_start;   /* n_upper + 1 offsets into up_links, in words */
    const uint32_t *up_links;   /* per upper node, per level 1..: count, m ids */
    uint64_t n_links;           /* words in up_links */
};

/* Validates the section's header and upper-level table (O(nodes above level
 * 0)). -SAGE_ENOTFOUND without one; CORRUPT when the header does not
 * describe its length, the table is not in order, or n is not n_chunks.
 * Neighbour ids are not read here: search skips those >= n. */
int sage_hnsw_open(struct sage_hnsw *h, const struct sage_reader *r, struct sage_err *err);

/* The best min(k, allowed nodes found) chunks for query q[0, v->dim), best
 * first (equal scores by increasing chunk), into hits (room for k), their
 * number in *n_hits. The walk keeps max(ef, k) candidates, scored with the
 * int8 rows; those are rescored with the f32 rows. allow (NULL: all) is a
 * bitmap over chunks as in dense.h: the walk goes through disallowed nodes
 * but only allowed ones become hits, so a filter that allows few chunks
 * makes the walk long and its recall poor: use sage_dense_exact for those.
 * INVAL when v does not have h's n rows. Thread-safe: each call keeps its
 * own state, allocated per call (NOMEM). Garbage in the section gives poor
 * hits, never a read outside it. */
int sage_hnsw_search(const struct sage_hnsw *h, const struct sage_vectors *v, const float *q,
                     size_t ef, size_t k, const uint64_t *allow, struct sage_dense_hit *hits,
                     size_t *n_hits, struct sage_err *err);

#endif
