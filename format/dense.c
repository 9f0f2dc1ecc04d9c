/* Exact dense search (dense.h). The int8 rows are scanned in parts, one per
 * thread, each part keeping its best candidates in a small heap; the parts'
 * heaps are merged, and the candidates rescored with the f32 rows. Parts run
 * on a process-wide pool of threads started on first use and kept for the
 * life of the process, which the calling thread joins in: it takes parts
 * itself while no worker has, so a busy pool slows a query, never blocks it. */
#include "dense.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "kernels.h"

#define THREADS_MAX 16u             /* threads per query at most */
#define PARTS_PER_THREAD 4u
#define POOL_MAX 4u                 /* default threads at most; the pool has one fewer */
#define PART_MIN_BYTES (1u << 19)   /* smaller parts are not worth a thread */
#define BLOCK 64u                   /* rows of one word of the bitmap */
#define RUN 256u                    /* rows per kernel call without a bitmap */
#define SPARSE_MAX 16               /* set bits in a word at most to score rows one by one */
#define ROW_LEN(v) (((size_t)(v)->dim + 63) & ~(size_t)63)  /* int8 bytes a row's dot reads */

struct cand {
    float s;
    uint64_t chunk;
};

/* a ranks below b: lower score, or the same score and a higher chunk id. */
static int worse(const struct cand *a, const struct cand *b)
{
    return a->s < b->s || (a->s == b->s && a->chunk > b->chunk);
}

/* A min-heap by worse(): the root is the weakest of the best cap seen. */
struct heap {
    struct cand *c;
    size_t n, cap;
};

static void heap_push(struct heap *h, float s, uint64_t chunk)
{
    struct cand x = { s, chunk };
    size_t i;
    if (h->n < h->cap) {
        for (i = h->n++; i > 0 && worse(&x, &h->c[(i - 1) / 2]); i = (i - 1) / 2)
            h->c[i] = h->c[(i - 1) / 2];
        h->c[i] = x;
        return;
    }
    if (!worse(&h->c[0], &x))
        return;
    for (i = 0;;) {
        size_t l = 2 * i + 1, m = l;
        if (l >= h->n)
            break;
        if (l + 1 < h->n && worse(&h->c[l + 1], &h->c[l]))
            m = l + 1;
        if (!worse(&h->c[m], &x))
            break;
        h->c[i] = h->c[m];
        i = m;
    }
    h->c[i] = x;
}

/* What every part of one query shares; read-only while parts run. */
struct scan {
    const struct sage_vectors *v;
    const int8_t *q;            /* ROW_LEN bytes, zero past dim */
    const uint64_t *allow;
    sage_dot_i8_rows_fn dot;
    size_t rows_per_part;       /* a multiple of BLOCK */
    struct heap *heaps;         /* one per part */
};

/* Offers rows lo + j for the set bits j of bits, dots[j] their int8 dot
 * products, to the heap: their approximate score is the dot product times
 * the row's scale (the query's scale left out: it is the same for all). */
static void offer(struct heap *h, const float *scale, uint64_t lo, uint64_t bits,
                  const int32_t *dots)
{
    while (bits) {
        unsigned j = (unsigned)__builtin_ctzll(bits);
        bits &= bits - 1;
        float s = (float)dots[j] * scale[lo + j];
        if (h->n < h->cap || s >= h->c[0].s)
            heap_push(h, s, lo + j);
    }
}

static void scan_part(const struct scan *a, unsigned part)
{
    const struct sage_vectors *v = a->v;
    const float *scale = (const float *)(const void *)v->scale;
    struct heap *h = &a->heaps[part];
    size_t len = ROW_LEN(v);
    int32_t dots[RUN];
    uint64_t lo = (uint64_t)part * a->rows_per_part;
    uint64_t hi = v->n - lo < a->rows_per_part ? v->n : lo + a->rows_per_part;
    if (!a->allow) {
        /* RUN rows per kernel call, which sums the query's bytes once a call */
        for (uint64_t r = lo; r < hi; r += RUN) {
            size_t m = hi - r < RUN ? (size_t)(hi - r) : RUN;
            a->dot(a->q, sage_vectors_row_i8(v, r), v->stride_i8, len, m, dots);
            for (size_t w = 0; w < m; w += BLOCK)
                offer(h, scale, r + w, m - w >= BLOCK ? ~0ull : (1ull << (m - w)) - 1,
                      dots + w);
        }
        return;
    }
    for (uint64_t w = lo; w < hi; w += BLOCK) {
        uint64_t end = hi - w < BLOCK ? hi : w + BLOCK;
        uint64_t bits = a->allow[w / BLOCK] & (end - w == BLOCK ? ~0ull : (1ull << (end - w)) - 1);
        if (!bits)
            continue;
        if (__builtin_popcountll(bits) > SPARSE_MAX) {
            a->dot(a->q, sage_vectors_row_i8(v, w), v->stride_i8, len, (size_t)(end - w), dots);
            offer(h, scale, w, bits, dots);
            continue;
        }
        /* a few rows of the word: only they are read */
        for (uint64_t b = bits; b; b &= b - 1) {
            unsigned j = (unsigned)__builtin_ctzll(b);
            a->dot(a->q, sage_vectors_row_i8(v, w + j), v->stride_i8, len, 1, dots + j);
        }
        offer(h, scale, w, bits, dots);
    }
}

/* ---- the pool ---- */

/* One query's parts: claimed in order by whoever comes, the caller too.
 * There are several per thread, so that a thread the scheduler holds up
 * delays the query by a small part only. */
struct job {
    const struct scan *scan;
    unsigned n_parts, next, done;   /* under pool.mu, as the rest */
    unsigned helpers, max_helpers;  /* workers in a part now, and at most */
    pthread_cond_t finished;        /* done reached n_parts */
    struct job *link;               /* queue, while parts are unclaimed */
};

/* Process-wide, the one piece of mutable global state here: threads are a
 * resource of the process, and searchd's request threads share them. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t work;
    struct job *head, *tail;
    unsigned threads;               /* default parts per query */
} pool = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, 1 };
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

/* Takes j off the queue once its last part is claimed; pool.mu held. */
static void dequeue(struct job *j)
{
    struct job *prev = NULL, *k = pool.head;
    while (k != j) {
        prev = k;
        k = k->link;
    }
    *(prev ? &prev->link : &pool.head) = j->link;
    if (pool.tail == j)
        pool.tail = prev;
}

/* The next part of j; pool.mu held, a part left. */
static unsigned claim(struct job *j)
{
    unsigned part = j->next++;
    if (j->next == j->n_parts)
        dequeue(j);
    return part;
}

/* The first queued job that may take one more worker; pool.mu held. */
static struct job *eligible(void)
{
    struct job *j = pool.head;
    while (j && j->helpers >= j->max_helpers)
        j = j->link;
    return j;
}

static void *worker(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&pool.mu);
    for (;;) {
        struct job *j;
        while (!(j = eligible()))
            pthread_cond_wait(&pool.work, &pool.mu);
        unsigned part = claim(j);
        j->helpers++;
        pthread_mutex_unlock(&pool.mu);
        scan_part(j->scan, part);
        pthread_mutex_lock(&pool.mu);
        j->helpers--;
        if (++j->done == j->n_parts)     /* the caller may free j from here on */
            pthread_cond_signal(&j->finished);
    }
    return NULL;
}

/* Starts min(online CPUs, POOL_MAX) - 1 workers; fewer if threads cannot be
 * had, which only makes queries run on fewer threads. */
static void pool_start(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned want = cpus < 1 ? 1 : cpus > (long)POOL_MAX ? POOL_MAX : (unsigned)cpus;
    unsigned started = 1;
    pthread_attr_t attr;
    if (want > 1 && pthread_attr_init(&attr) == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 256 * 1024);
        for (; started < want; started++) {
            pthread_t t;
            if (pthread_create(&t, &attr, worker, NULL) != 0)
                break;
        }
        pthread_attr_destroy(&attr);
    }
    pool.threads = started;
}

/* Runs the scan's n_parts parts on at most threads threads and returns
 * when all are done. The caller claims parts of its own job only, so it
 * never waits behind other queries. */
static void run_parts(const struct scan *a, unsigned n_parts, unsigned threads)
{
    if (n_parts == 1 || threads == 1) {
        for (unsigned p = 0; p < n_parts; p++)
            scan_part(a, p);
        return;
    }
    struct job j = { .scan = a, .n_parts = n_parts, .max_helpers = threads - 1 };
    pthread_cond_init(&j.finished, NULL);
    pthread_mutex_lock(&pool.mu);
    *(pool.tail ? &pool.tail->link : &pool.head) = &j;
    pool.tail = &j;
    if (threads > 2)
        pthread_cond_broadcast(&pool.work);
    else
        pthread_cond_signal(&pool.work);
    while (j.next < j.n_parts) {
        unsigned part = claim(&j);
        pthread_mutex_unlock(&pool.mu);
        scan_part(a, part);
        pthread_mutex_lock(&pool.mu);
        j.done++;
    }
    while (j.done < j.n_parts)
        pthread_cond_wait(&j.finished, &pool.mu);
    pthread_mutex_unlock(&pool.mu);
    pthread_cond_destroy(&j.finished);
}

/* ---- the search ---- */

static int by_rank(const void *x, const void *y)
{
    const struct cand *a = x, *b = y;
    return worse(b, a) ? -1 : worse(a, b) ? 1 : 0;
}

unsigned sage_dense_threads(void)
{
    pthread_once(&pool_once, pool_start);
    return pool.threads;
}

int sage_dense_exact(const struct sage_vectors *v, const float *q,
                     const struct sage_dense_opts *o, struct sage_dense_hit *hits,
                     size_t *n_hits, struct sage_err *err)
{
    int rc = 0;
    int8_t *qi = NULL;
    struct heap *heaps = NULL;
    struct cand *all = NULL;
    if (n_hits)
        *n_hits = 0;
    if (!v || !q || !o || !n_hits || (o->k && !hits))
        return sage_err_set(err, SAGE_EINVAL, "dense search without its arguments");
    if (v->dim == 0 || v->dim > SAGE_VECTORS_DIM_MAX || v->stride_i8 < ROW_LEN(v) ||
        v->stride_f32 < 4 * (size_t)v->dim)
        return sage_err_set(err, SAGE_EINVAL, "vectors of dimension %u with strides %zu, %zu",
                            v->dim, v->stride_f32, v->stride_i8);
    sage_dot_i8_rows_fn dot = sage_kernels_i8_rows(o->isa, NULL);
    if (!dot)
        return sage_err_set(err, SAGE_EINVAL, "no int8 kernel '%s' on this CPU", o->isa);
    if (o->k == 0 || v->n == 0)
        return 0;
    for (uint32_t j = 0; j < v->dim; j++)
        if (!isfinite(q[j]))
            return sage_err_set(err, SAGE_EINVAL, "query vector has a non-finite value at %u", j);

    /* Candidates: k × oversample, at most every row (saturating). */
    size_t over = o->oversample ? o->oversample : SAGE_DENSE_OVERSAMPLE;
    size_t cap = o->k > SIZE_MAX / over ? SIZE_MAX : o->k * over;
    if ((uint64_t)cap > v->n)
        cap = (size_t)v->n;

    /* Parts: PARTS_PER_THREAD a thread, whole words of the bitmap, each of
     * PART_MIN_BYTES or more; one thread, one part. */
    unsigned threads = o->threads ? o->threads : sage_dense_threads();
    threads = threads > THREADS_MAX ? THREADS_MAX : threads;
    uint64_t words = (v->n + BLOCK - 1) / BLOCK;
    uint64_t by_size = words * BLOCK * ROW_LEN(v) / PART_MIN_BYTES;
    unsigned want = threads == 1 ? 1 : threads * PARTS_PER_THREAD;
    unsigned n_parts = by_size < want ? (by_size ? (unsigned)by_size : 1) : want;
    uint64_t wpp = (words + n_parts - 1) / n_parts;
    n_parts = (unsigned)((words + wpp - 1) / wpp);
    if (n_parts > 1)
        pthread_once(&pool_once, pool_start);

    qi = sage_calloc(1, ROW_LEN(v));
    heaps = sage_calloc(n_parts, sizeof(*heaps));
    if (cap <= SIZE_MAX / sizeof(*all) / n_parts)
        all = sage_malloc((size_t)n_parts * cap * sizeof(*all));
    if (!qi || !heaps || !all) {
        rc = sage_err_set(err, SAGE_ENOMEM, "no memory for a dense search of %zu candidates", cap);
        goto out;
    }
    sage_vectors_quantize(q, v->dim, qi);
    for (unsigned p = 0; p < n_parts; p++)
        heaps[p] = (struct heap){ all + (size_t)p * cap, 0, cap };
    struct scan a = {
        .v = v, .q = qi, .allow = o->allow, .heaps = heaps,
        .dot = dot,
        .rows_per_part = (size_t)(wpp * BLOCK),
    };
    run_parts(&a, n_parts, threads);

    /* The best cap of all parts' candidates, rescored in f32. */
    size_t n = 0;
    for (unsigned p = 0; p < n_parts; p++) {
        memmove(all + n, heaps[p].c, heaps[p].n * sizeof(*all));
        n += heaps[p].n;
    }
    if (n > cap) {
        qsort(all, n, sizeof(*all), by_rank);
        n = cap;
    }
    for (size_t i = 0; i < n; i++)
        all[i].s = sage_dot_f32(q, sage_vectors_row(v, all[i].chunk), v->dim);
    qsort(all, n, sizeof(*all), by_rank);
    n = n < o->k ? n : o->k;
    for (size_t i = 0; i < n; i++)
        hits[i] = (struct sage_dense_hit){ all[i].chunk, all[i].s };
    *n_hits = n;
out:
    sage_free(all);
    sage_free(heaps);
    sage_free(qi);
    return rc;
}
