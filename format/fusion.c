/* Rank fusion (fusion.h): the two legs are merged by chunk id through one
 * sort of both lists, so the cost is O((n_bm25 + n_dense) log) whatever the
 * chunk ids are, with no table sized by the index. */
#include "fusion.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"

struct entry {
    uint64_t chunk;
    uint32_t leg;       /* 0: bm25, 1: dense */
    uint32_t rank;      /* from 1 */
    double score;
};

static int cmp_entry(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    if (x->chunk != y->chunk)
        return x->chunk < y->chunk ? -1 : 1;
    return x->leg < y->leg ? -1 : x->leg > y->leg;
}

static int cmp_fused(const void *a, const void *b)
{
    const struct sage_fused_hit *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->chunk < y->chunk ? -1 : x->chunk > y->chunk;
}

/* The smallest and largest score of a leg (best first, so the ends, but a
 * caller's list need not be sorted by score: scan it). */
static void leg_range(const struct sage_leg_hit *h, size_t n, double *lo, double *hi)
{
    *lo = *hi = n ? h[0].score : 0;
    for (size_t i = 1; i < n; i++) {
        if (h[i].score < *lo)
            *lo = h[i].score;
        if (h[i].score > *hi)
            *hi = h[i].score;
    }
}

/* score in [lo, hi] onto [0, 1]; a leg whose scores are all equal maps to 1
 * (each of its hits is as good as its best). */
static double minmax(double s, double lo, double hi)
{
    return hi > lo ? (s - lo) / (hi - lo) : 1.0;
}

int sage_fusion_fuse(const struct sage_leg_hit *bm25, size_t n_bm25,
                     const struct sage_leg_hit *dense, size_t n_dense,
                     const struct sage_fusion_opts *o, size_t k,
                     struct sage_fused_hit **out, size_t *n_out, struct sage_err *err)
{
    struct entry *e = NULL;
    struct sage_fused_hit *f = NULL;
    size_t n = n_bm25 + n_dense, m = 0;
    int rc = 0;
    double wb = o->w_bm25, wd = o->w_dense, rk = o->rrf_k > 0 ? o->rrf_k : SAGE_FUSION_RRF_K;
    *out = NULL;
    *n_out = 0;
    if (wb < 0 || wd < 0)
        return sage_err_set(err, SAGE_EINVAL, "fusion weights must not be negative");
    if (wb == 0 && wd == 0)
        wb = wd = 1;
    if (n_bm25 > UINT32_MAX || n_dense > UINT32_MAX)
        return sage_err_set(err, SAGE_ELIMIT, "a fusion leg is longer than 2^32 - 1");
    if (n == 0 || k == 0)
        return 0;
    if (!(e = sage_calloc(n, sizeof(*e))) || !(f = sage_calloc(n, sizeof(*f)))) {
        rc = sage_err_set(err, SAGE_ENOMEM, "cannot allocate the fusion lists");
        goto out;
    }
    for (size_t i = 0; i < n_bm25; i++)
        e[i] = (struct entry){ bm25[i].chunk, 0, (uint32_t)(i + 1), bm25[i].score };
    for (size_t i = 0; i < n_dense; i++)
        e[n_bm25 + i] = (struct entry){ dense[i].chunk, 1, (uint32_t)(i + 1), dense[i].score };
    qsort(e, n, sizeof(*e), cmp_entry);
    double lo_b, hi_b, lo_d, hi_d;
    leg_range(bm25, n_bm25, &lo_b, &hi_b);
    leg_range(dense, n_dense, &lo_d, &hi_d);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && e[i].chunk == e[i - 1].chunk && e[i].leg == e[i - 1].leg) {
            rc = sage_err_set(err, SAGE_EINVAL, "chunk %llu is listed twice in the %s leg",
                              (unsigned long long)e[i].chunk, e[i].leg ? "dense" : "bm25");
            goto out;
        }
        if (i == 0 || e[i].chunk != e[i - 1].chunk)
            f[m++].chunk = e[i].chunk;
        struct sage_leg *l = e[i].leg ? &f[m - 1].dense : &f[m - 1].bm25;
        l->rank = e[i].rank;
        l->score = e[i].score;
    }
    for (size_t i = 0; i < m; i++) {
        struct sage_fused_hit *h = &f[i];
        if (o->kind == SAGE_FUSION_RRF) {
            h->score = (h->bm25.rank ? wb / (rk + h->bm25.rank) : 0) +
                       (h->dense.rank ? wd / (rk + h->dense.rank) : 0);
        } else {
            h->score = ((h->bm25.rank ? wb * minmax(h->bm25.score, lo_b, hi_b) : 0) +
                        (h->dense.rank ? wd * minmax(h->dense.score, lo_d, hi_d) : 0)) /
                       (wb + wd);
        }
    }
    qsort(f, m, sizeof(*f), cmp_fused);
    *n_out = m < k ? m : k;
    *out = f;
    f = NULL;
out:
    sage_free(e);
    sage_free(f);
    return rc;
}

int sage_fusion_parse(const char *name, enum sage_fusion_kind *kind)
{
    if (strcmp(name, "rrf") == 0)
        *kind = SAGE_FUSION_RRF;
    else if (strcmp(name, "convex") == 0)
        *kind = SAGE_FUSION_CONVEX;
    else
        return -SAGE_EINVAL;
    return 0;
}

const char *sage_fusion_name(enum sage_fusion_kind kind)
{
    return kind == SAGE_FUSION_CONVEX ? "convex" : "rrf";
}
