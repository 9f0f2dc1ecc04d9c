/* Exact dense search: recall of the int8 scan with f32 rescoring against a
 * brute-force f32 top 10 on clustered vectors, the allow bitmap, the edge
 * cases of k and n, ties, a zero query, rows of any norm, thread counts and
 * concurrent callers; and the int8 row kernels, each ISA this CPU has,
 * against the plain C one. Vectors are built in memory, no index file. */
#include "util.h"

#include <math.h>
#include <pthread.h>

#include "dense.h"
#include "kernels.h"
#include "vectors.h"

#define DIM 96u
#define N_BIG 100000u
#define N_QUERIES 100u
#define K 10u

/* ---- data ---- */

static uint64_t rng_next(uint64_t *s)      /* splitmix64 */
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_unit(uint64_t *s)         /* (0, 1) */
{
    return ((double)(rng_next(s) >> 11) + 0.5) / 9007199254740992.0;
}

static float rng_gauss(uint64_t *s)
{
    return (float)(sqrt(-2 * log(rng_unit(s))) * cos(6.283185307179586 * rng_unit(s)));
}

static void normalize(float *f, uint32_t dim)
{
    double ss = 0;
    for (uint32_t j = 0; j < dim; j++)
        ss += (double)f[j] * f[j];
    if (ss > 0)
        for (uint32_t j = 0; j < dim; j++)
            f[j] = (float)(f[j] / sqrt(ss));
}

/* Vectors over our own 64-byte aligned buffers, laid out as §9.11 says. */
struct tvec {
    struct sage_vectors v;
    void *f32, *i8, *scale;
};

static size_t roundup64(size_t x)
{
    return (x + 63) & ~(size_t)63;
}

static void *zalloc64(size_t n)
{
    void *p = aligned_alloc(64, roundup64(n ? n : 1));
    assert_non_null(p);
    memset(p, 0, roundup64(n ? n : 1));
    return p;
}

/* rows: n × dim floats, quantized here as the writer would. */
static void tvec_init(struct tvec *t, const float *rows, uint64_t n, uint32_t dim)
{
    memset(t, 0, sizeof(*t));
    t->v.dim = dim;
    t->v.n = n;
    t->v.stride_f32 = roundup64(4 * (size_t)dim);
    t->v.stride_i8 = roundup64(dim);
    t->f32 = zalloc64(n * t->v.stride_f32);
    t->i8 = zalloc64(n * t->v.stride_i8);
    t->scale = zalloc64(4 * n);
    for (uint64_t i = 0; i < n; i++) {
        memcpy((uint8_t *)t->f32 + i * t->v.stride_f32, rows + i * dim, 4 * (size_t)dim);
        ((float *)t->scale)[i] = sage_vectors_quantize(rows + i * dim, dim,
                                     (int8_t *)t->i8 + i * t->v.stride_i8);
    }
    t->v.f32 = t->f32;
    t->v.i8 = t->i8;
    t->v.scale = t->scale;
}

static void tvec_release(struct tvec *t)
{
    free(t->f32);
    free(t->i8);
    free(t->scale);
}

/* n rows around n_clusters Gaussian centres, unit length; queries near them. */
static float *clustered(uint64_t seed, uint64_t n, uint32_t dim, unsigned n_clusters, float spread)
{
    float *c = malloc(sizeof(float) * n_clusters * dim);
    float *x = malloc(sizeof(float) * (n ? n : 1) * dim);
    assert_non_null(c);
    assert_non_null(x);
    for (size_t i = 0; i < (size_t)n_clusters * dim; i++)
        c[i] = rng_gauss(&seed);
    for (uint64_t i = 0; i < n; i++) {
        const float *ci = c + (rng_next(&seed) % n_clusters) * dim;
        for (uint32_t j = 0; j < dim; j++)
            x[i * dim + j] = ci[j] + spread * rng_gauss(&seed);
        normalize(x + i * dim, dim);
    }
    free(c);
    return x;
}

/* ---- brute force ---- */

static int hit_better(const struct sage_dense_hit *a, const struct sage_dense_hit *b)
{
    return a->score > b->score || (a->score == b->score && a->chunk < b->chunk);
}

static int allowed(const uint64_t *allow, uint64_t c)
{
    return !allow || (allow[c / 64] >> (c % 64) & 1);
}

/* The f32 top k of the allowed rows by insertion, same tie rule. */
static size_t brute(const struct sage_vectors *v, const float *q, const uint64_t *allow,
                    size_t k, struct sage_dense_hit *hits)
{
    size_t n = 0;
    for (uint64_t c = 0; c < v->n && k; c++) {
        if (!allowed(allow, c))
            continue;
        struct sage_dense_hit h = { c, sage_dot_f32(q, sage_vectors_row(v, c), v->dim) };
        if (n == k && !hit_better(&h, &hits[n - 1]))
            continue;
        size_t i = n < k ? n++ : n - 1;
        while (i > 0 && hit_better(&h, &hits[i - 1])) {
            hits[i] = hits[i - 1];
            i--;
        }
        hits[i] = h;
    }
    return n;
}

static size_t search(const struct sage_vectors *v, const float *q, size_t k, unsigned over,
                     const uint64_t *allow, unsigned threads, struct sage_dense_hit *hits)
{
    struct sage_dense_opts o = { .k = k, .oversample = over, .allow = allow, .threads = threads };
    struct sage_err err = { 0 };
    size_t n = 12345;
    assert_int_equal(sage_dense_exact(v, q, &o, hits, &n, &err), 0);
    assert_true(n <= k);
    for (size_t i = 0; i < n; i++) {
        assert_true(hits[i].chunk < v->n);
        assert_true(allowed(allow, hits[i].chunk));
        /* the score is the f32 one, and the order is by it, then by chunk */
        assert_true(hits[i].score ==
                    sage_dot_f32(q, sage_vectors_row(v, hits[i].chunk), v->dim));
        if (i)
            assert_true(hit_better(&hits[i - 1], &hits[i]));
    }
    return n;
}

static void assert_same_hits(const struct sage_dense_hit *a, size_t na,
                             const struct sage_dense_hit *b, size_t nb)
{
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++) {
        assert_int_equal(a[i].chunk, b[i].chunk);
        assert_true(a[i].score == b[i].score);
    }
}

/* Fraction of want's chunks found in got. */
static size_t overlap(const struct sage_dense_hit *got, size_t ng,
                      const struct sage_dense_hit *want, size_t nw)
{
    size_t m = 0;
    for (size_t i = 0; i < nw; i++)
        for (size_t j = 0; j < ng; j++)
            m += got[j].chunk == want[i].chunk;
    return m;
}

/* ---- the shared big set ---- */

struct big {
    struct tvec t;
    float *queries;     /* N_QUERIES × DIM */
};

static int big_setup(void **state)
{
    struct big *b = calloc(1, sizeof(*b));
    if (!b)
        return -1;
    float *rows = clustered(42, N_BIG, DIM, 200, 0.35f);
    tvec_init(&b->t, rows, N_BIG, DIM);
    free(rows);
    /* queries: data rows moved a little, renormalized */
    b->queries = malloc(sizeof(float) * N_QUERIES * DIM);
    if (!b->queries)
        return -1;
    uint64_t seed = 7;
    for (unsigned i = 0; i < N_QUERIES; i++) {
        const float *r = sage_vectors_row(&b->t.v, rng_next(&seed) % N_BIG);
        for (unsigned j = 0; j < DIM; j++)
            b->queries[i * DIM + j] = r[j] + 0.05f * rng_gauss(&seed);
        normalize(b->queries + i * DIM, DIM);
    }
    *state = b;
    return 0;
}

static int big_teardown(void **state)
{
    struct big *b = *state;
    if (b) {
        tvec_release(&b->t);
        free(b->queries);
        free(b);
    }
    return 0;
}

/* ---- tests ---- */

static void test_recall(void **state)
{
    struct big *b = *state;
    struct sage_dense_hit got[K], want[K];
    size_t found = 0, total = 0, found1 = 0;
    for (unsigned i = 0; i < N_QUERIES; i++) {
        const float *q = b->queries + i * DIM;
        size_t nw = brute(&b->t.v, q, NULL, K, want);
        size_t ng = search(&b->t.v, q, K, 0, NULL, 0, got);
        assert_int_equal(nw, K);
        assert_int_equal(ng, K);
        found += overlap(got, ng, want, nw);
        total += nw;
        /* oversample 1: the int8 order alone; worse, which shows the
         * rescoring is what the recall above owes to */
        ng = search(&b->t.v, q, K, 1, NULL, 0, got);
        found1 += overlap(got, ng, want, nw);
    }
    print_message("# recall@10 %.4f (oversample 1: %.4f)\n", (double)found / (double)total,
                  (double)found1 / (double)total);
    assert_true((double)found / (double)total >= 0.99);
    assert_true(found1 < found);        /* this data does need the rescoring */
}

static void test_threads_same(void **state)
{
    struct big *b = *state;
    struct sage_dense_hit h1[50], h[50];
    static const unsigned threads[] = { 2, 3, 4, 7, 16, 100 };
    for (unsigned i = 0; i < 10; i++) {
        const float *q = b->queries + i * DIM;
        size_t n1 = search(&b->t.v, q, 50, 0, NULL, 1, h1);
        for (size_t t = 0; t < sizeof(threads) / sizeof(threads[0]); t++) {
            size_t n = search(&b->t.v, q, 50, 0, NULL, threads[t], h);
            assert_same_hits(h, n, h1, n1);
        }
    }
    assert_true(sage_dense_threads() >= 1 && sage_dense_threads() <= 4);
}

static void test_allow(void **state)
{
    struct big *b = *state;
    size_t words = (N_BIG + 63) / 64;
    uint64_t *allow = calloc(words, sizeof(*allow));
    assert_non_null(allow);
    uint64_t seed = 99;
    /* whole words empty, full, sparse (a few bits) and dense at random */
    for (size_t w = 0; w < words; w++) {
        uint64_t r = rng_next(&seed);
        switch (w % 4) {
        case 0: allow[w] = 0; break;
        case 1: allow[w] = ~0ull; break;
        case 2: allow[w] = r & rng_next(&seed) & rng_next(&seed) & rng_next(&seed); break;
        default: allow[w] = r; break;
        }
    }
    struct sage_dense_hit got[K], want[K];
    size_t found = 0, total = 0;
    for (unsigned i = 0; i < N_QUERIES; i++) {
        const float *q = b->queries + i * DIM;
        size_t nw = brute(&b->t.v, q, allow, K, want);
        size_t ng = search(&b->t.v, q, K, 0, allow, 2, got);   /* checks every hit is allowed */
        assert_int_equal(ng, nw);
        found += overlap(got, ng, want, nw);
        total += nw;
    }
    assert_true((double)found / (double)total >= 0.99);

    /* a handful of allowed chunks: every one is a candidate, so the result
     * is the brute force one exactly */
    memset(allow, 0, words * sizeof(*allow));
    static const uint64_t few[] = { 0, 63, 64, 4097, 50000, 77777, N_BIG - 1 };
    for (size_t i = 0; i < sizeof(few) / sizeof(few[0]); i++)
        allow[few[i] / 64] |= 1ull << (few[i] % 64);
    for (unsigned i = 0; i < 5; i++) {
        const float *q = b->queries + i * DIM;
        size_t nw = brute(&b->t.v, q, allow, K, want);
        size_t ng = search(&b->t.v, q, K, 0, allow, 2, got);
        assert_int_equal(nw, 7);
        assert_same_hits(got, ng, want, nw);
    }
    /* nothing allowed: no hits */
    memset(allow, 0, words * sizeof(*allow));
    assert_int_equal(search(&b->t.v, b->queries, K, 0, allow, 0, got), 0);
    free(allow);
}

/* Searchd's request threads call at once, each with threads of its own. */
struct conc {
    const struct big *b;
    unsigned first;
    int ok;
};

static void *conc_run(void *arg)
{
    struct conc *c = arg;
    const struct sage_vectors *v = &c->b->t.v;
    struct sage_dense_hit got[K], want[K];
    c->ok = 1;
    for (unsigned i = 0; i < 8; i++) {
        const float *q = c->b->queries + (c->first + i) % N_QUERIES * DIM;
        struct sage_dense_opts o = { .k = K, .threads = 2 };
        size_t ng, nw;
        if (sage_dense_exact(v, q, &o, got, &ng, NULL) != 0)
            c->ok = 0;
        o.threads = 1;
        if (sage_dense_exact(v, q, &o, want, &nw, NULL) != 0 || ng != nw)
            c->ok = 0;
        for (size_t j = 0; c->ok && j < ng; j++)
            if (got[j].chunk != want[j].chunk || got[j].score != want[j].score)
                c->ok = 0;
    }
    return NULL;
}

static void test_concurrent(void **state)
{
    struct big *b = *state;
    pthread_t t[6];
    struct conc c[6];
    for (unsigned i = 0; i < 6; i++) {
        c[i] = (struct conc){ b, i * 8, 0 };
        assert_int_equal(pthread_create(&t[i], NULL, conc_run, &c[i]), 0);
    }
    int ok = 1;
    for (unsigned i = 0; i < 6; i++)
        ok &= pthread_join(t[i], NULL) == 0 && c[i].ok;
    assert_true(ok);
}

/* k beyond n, k = 0, n = 0: every row, nothing, nothing. */
static void test_sizes(void **state)
{
    (void)state;
    float *rows = clustered(5, 50, 33, 3, 0.5f);
    struct tvec t;
    tvec_init(&t, rows, 50, 33);
    struct sage_dense_hit got[100], want[100];
    size_t nw = brute(&t.v, rows + 7 * 33, NULL, 100, want);
    size_t ng = search(&t.v, rows + 7 * 33, 100, 0, NULL, 0, got);
    assert_int_equal(nw, 50);
    assert_same_hits(got, ng, want, nw);
    assert_int_equal(got[0].chunk, 7);

    struct sage_dense_opts o = { .k = 0 };
    size_t n = 99;
    assert_int_equal(sage_dense_exact(&t.v, rows, &o, NULL, &n, NULL), 0);
    assert_int_equal(n, 0);

    struct tvec empty;
    tvec_init(&empty, rows, 0, 33);
    n = 99;
    o.k = 10;
    assert_int_equal(sage_dense_exact(&empty.v, rows, &o, got, &n, NULL), 0);
    assert_int_equal(n, 0);

    /* one row, dimension 1; and k × oversample past SIZE_MAX */
    struct tvec one;
    tvec_init(&one, rows, 1, 1);
    o = (struct sage_dense_opts){ .k = SIZE_MAX / 2, .oversample = 1000 };
    assert_int_equal(sage_dense_exact(&one.v, rows, &o, got, &n, NULL), 0);
    assert_int_equal(n, 1);
    assert_int_equal(got[0].chunk, 0);

    tvec_release(&one);
    tvec_release(&empty);
    tvec_release(&t);
    free(rows);
}

/* Equal scores rank by chunk id, and the candidates keep the lowest ids. */
static void test_ties(void **state)
{
    (void)state;
    enum { N = 3000, D = 70 };
    float *rows = malloc(sizeof(float) * N * D);
    assert_non_null(rows);
    float *pat = clustered(11, 3, D, 3, 1.0f);
    for (unsigned i = 0; i < N; i++)
        memcpy(rows + i * D, pat + (i * 7 % 3) * D, sizeof(float) * D);
    struct tvec t;
    tvec_init(&t, rows, N, D);
    struct sage_dense_hit got[20], want[20];
    for (unsigned p = 0; p < 3; p++) {
        for (unsigned threads = 1; threads <= 2; threads++) {
            size_t ng = search(&t.v, pat + p * D, 20, 0, NULL, threads, got);
            size_t nw = brute(&t.v, pat + p * D, NULL, 20, want);
            assert_same_hits(got, ng, want, nw);
            /* the rows equal to pattern p, in order */
            for (size_t i = 0; i < ng; i++) {
                assert_int_equal(got[i].chunk * 7 % 3, p);
                assert_true(got[i].score == got[0].score);
                if (i)
                    assert_true(got[i].chunk > got[i - 1].chunk);
            }
            assert_true(got[0].chunk < 3);
        }
    }
    tvec_release(&t);
    free(pat);
    free(rows);
}

/* A zero query scores every row 0: the first k chunks. */
static void test_zero_query(void **state)
{
    struct big *b = *state;
    float q[DIM] = { 0 };
    struct sage_dense_hit got[K];
    size_t n = search(&b->t.v, q, K, 0, NULL, 2, got);
    assert_int_equal(n, K);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(got[i].chunk, i);
        assert_true(got[i].score == 0.0f);
    }
}

/* Rows of norms from 1e-3 to 1e3 and zero rows: the scale of each row is in
 * its int8 score, so the long rows are found. */
static void test_unnormalized(void **state)
{
    (void)state;
    enum { N = 20000, D = 96 };
    float *rows = clustered(21, N, D, 50, 0.4f);
    uint64_t seed = 3;
    for (unsigned i = 0; i < N; i++) {
        float m = i % 97 == 0 ? 0.0f : (float)pow(10, 6 * rng_unit(&seed) - 3);
        for (unsigned j = 0; j < D; j++)
            rows[i * D + j] *= m;
    }
    struct tvec t;
    tvec_init(&t, rows, N, D);
    struct sage_dense_hit got[K], want[K];
    size_t found = 0, total = 0;
    for (unsigned i = 0; i < 50; i++) {
        float q[D];
        for (unsigned j = 0; j < D; j++)
            q[j] = rows[(i * 131 + 1) * D + j] * 3.0f + rng_gauss(&seed);
        size_t nw = brute(&t.v, q, NULL, K, want);
        size_t ng = search(&t.v, q, K, 0, NULL, 2, got);
        assert_int_equal(ng, nw);
        found += overlap(got, ng, want, nw);
        total += nw;
    }
    assert_true((double)found / (double)total >= 0.99);
    tvec_release(&t);
    free(rows);
}

static void test_refusals(void **state)
{
    struct big *b = *state;
    float q[DIM];
    memcpy(q, b->queries, sizeof(q));
    struct sage_dense_hit got[K];
    struct sage_dense_opts o = { .k = K };
    struct sage_err err = { 0 };
    size_t n = 5;
    q[17] = NAN;
    assert_int_equal(sage_dense_exact(&b->t.v, q, &o, got, &n, &err), -SAGE_EINVAL);
    assert_int_equal(n, 0);
    assert_non_null(strstr(err.msg, "non-finite"));
    q[17] = INFINITY;
    assert_int_equal(sage_dense_exact(&b->t.v, q, &o, got, &n, NULL), -SAGE_EINVAL);
    assert_int_equal(sage_dense_exact(&b->t.v, NULL, &o, got, &n, NULL), -SAGE_EINVAL);
    assert_int_equal(sage_dense_exact(&b->t.v, b->queries, NULL, got, &n, NULL), -SAGE_EINVAL);
    assert_int_equal(sage_dense_exact(&b->t.v, b->queries, &o, NULL, &n, NULL), -SAGE_EINVAL);
    struct sage_vectors bad = b->t.v;
    bad.stride_i8 = 64;         /* rows of 96 need 128 */
    assert_int_equal(sage_dense_exact(&bad, b->queries, &o, got, &n, NULL), -SAGE_EINVAL);
    o.isa = "mmx";
    assert_int_equal(sage_dense_exact(&b->t.v, b->queries, &o, got, &n, &err), -SAGE_EINVAL);
    assert_non_null(strstr(err.msg, "mmx"));
}

/* Every kernel this CPU has gives the same hits. */
static void test_isas(void **state)
{
    struct big *b = *state;
    static const char *const isas[] = { "avx512vnni", "avxvnni", "avx2", "c" };
    struct sage_dense_hit want[K], got[K];
    int ran = 0;
    for (unsigned i = 0; i < 3; i++) {
        struct sage_dense_opts o = { .k = K, .threads = 2 };
        size_t nw, ng;
        assert_int_equal(sage_dense_exact(&b->t.v, b->queries + i * DIM, &o, want, &nw, NULL), 0);
        for (size_t a = 0; a < sizeof(isas) / sizeof(isas[0]); a++) {
            o.isa = isas[a];
            if (!sage_kernels_i8_rows(o.isa, NULL))
                continue;
            assert_int_equal(sage_dense_exact(&b->t.v, b->queries + i * DIM, &o, got, &ng, NULL), 0);
            assert_same_hits(got, ng, want, nw);
            ran++;
        }
    }
    assert_true(ran >= 3);     /* "c" at least */
}

/* Out of memory at each allocation of a search: NOMEM, nothing leaked
 * (AddressSanitizer's leak check sees to that). */
static int fail_at, calls;
static void *oom_malloc(size_t n)
{
    return ++calls == fail_at ? NULL : malloc(n);
}
static void *oom_realloc(void *p, size_t n)
{
    return ++calls == fail_at ? NULL : realloc(p, n);
}

static void test_nomem(void **state)
{
    struct big *b = *state;
    static const struct sage_alloc_hooks hooks = { oom_malloc, oom_realloc, free };
    struct sage_dense_hit got[K];
    struct sage_dense_opts o = { .k = K, .threads = 2 };
    int failed = 0;
    sage_dense_threads();       /* the pool's threads start outside the hooks */
    for (fail_at = 1; fail_at < 10; fail_at++) {
        size_t n = 7;
        calls = 0;
        sage_alloc_set(&hooks);
        int rc = sage_dense_exact(&b->t.v, b->queries, &o, got, &n, NULL);
        sage_alloc_set(NULL);
        if (calls < fail_at) {
            assert_int_equal(rc, 0);
            break;
        }
        assert_int_equal(rc, -SAGE_ENOMEM);
        assert_int_equal(n, 0);
        failed++;
    }
    assert_true(failed >= 1);
}

/* Every ISA's row kernel gives the C kernel's integers, at the extremes of
 * [-127, 127] and at row counts around the 4-row passes. */
static void test_row_kernels(void **state)
{
    (void)state;
    enum { LEN_MAX = 1024, ROWS = 70, STRIDE = LEN_MAX + 64 };
    int8_t *q = zalloc64(LEN_MAX), *rows = zalloc64((size_t)ROWS * STRIDE);
    int32_t want[ROWS], got[ROWS];
    uint64_t seed = 1;
    sage_dot_i8_rows_fn ref = sage_kernels_i8_rows("c", NULL);
    assert_non_null(ref);
    assert_null(sage_kernels_i8_rows("mmx", NULL));
    const char *best = NULL;
    assert_non_null(sage_kernels_i8_rows(NULL, &best));
    print_message("# int8 row kernel: %s\n", best);
    static const char *const isas[] = { "avx512vnni", "avxvnni", "avx2", "c" };
    static const size_t lens[] = { 64, 128, 384, 768, 1024 };
    static const size_t counts[] = { 0, 1, 3, 4, 5, 8, 63, 64, 70 };
    for (int pass = 0; pass < 3; pass++) {
        for (size_t i = 0; i < LEN_MAX; i++)
            q[i] = (int8_t)(pass == 0 ? 127 : pass == 1 ? -127 : (int)(rng_next(&seed) % 255) - 127);
        for (size_t i = 0; i < (size_t)ROWS * STRIDE; i++)
            rows[i] = (int8_t)(pass == 0 ? 127 : pass == 1 ? (i % 2 ? 127 : -127)
                                                      : (int)(rng_next(&seed) % 255) - 127);
        for (size_t a = 0; a < sizeof(isas) / sizeof(isas[0]); a++) {
            sage_dot_i8_rows_fn fn = sage_kernels_i8_rows(isas[a], NULL);
            if (!fn)
                continue;
            for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
                for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
                    ref(q, rows, STRIDE, lens[l], counts[c], want);
                    memset(got, 0x55, sizeof(got));
                    fn(q, rows, STRIDE, lens[l], counts[c], got);
                    assert_memory_equal(got, want, counts[c] * sizeof(*got));
                    if (counts[c] < ROWS)
                        assert_int_equal(got[counts[c]], 0x55555555);
                }
            }
        }
        ref(q, rows, STRIDE, 384, 1, want);
        assert_int_equal(want[0], sage_dot_i8(q, rows, 384));
    }
    free(q);
    free(rows);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_row_kernels),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_ties),
        cmocka_unit_test(test_unnormalized),
        cmocka_unit_test(test_recall),
        cmocka_unit_test(test_threads_same),
        cmocka_unit_test(test_allow),
        cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_zero_query),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_isas),
        cmocka_unit_test(test_nomem),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, big_setup, big_teardown);
}
