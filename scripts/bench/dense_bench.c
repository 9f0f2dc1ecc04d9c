/* Dense exact search benchmark, driven by scripts/bench/dense-bench.sh.
 *   dense_bench gen DIR N DIM NQ SEED   clustered unit vectors: DIR/base.f32 (N × DIM
 *                                       float32, row-major, no padding; what numpy.fromfile
 *                                       reads), DIR/queries.f32 (NQ × DIM) and DIR/truth.u32
 *                                       (NQ × 10 chunk ids: the exact f32 top 10, ties by id)
 *   dense_bench run DIR N DIM NQ THREADS REPS [ISA]
 *                                       sage_dense_exact, one query per call, top 10 (with
 *                                       the int8 kernel ISA, default the fastest): the
 *                                       rows laid out as in an index (§9.11), a warm-up, then
 *                                       REPS timed passes over the queries; one JSON line
 *   dense_bench membw MIB THREADS REPS  memory read bandwidth: THREADS threads summing
 *                                       their slices of a MIB buffer, best of REPS passes
 *                                       (alternately one and four streams a thread)
 *   dense_bench spawn N                 what a pthread_create + join pair costs (N of them)
 *   dense_bench isas                    the int8 kernels this CPU can run, one a line
 * Times are CLOCK_MONOTONIC wall time. Comparing with numpy and FAISS is left to the
 * script. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include "clock.h"
#include "dense.h"
#include "kernels.h"
#include "vectors.h"

#define K 10u
#define N_MAX (1ull << 32)
#define DIM_MAX 4096u
#define NQ_MAX 100000u
#define TRUTH_ROWS 256u     /* rows per block of the truth computation: in L2 */

static double now_s(void)
{
    return sage_now_ms() / 1e3;
}

/* CPU time of the whole process (the pool's threads too): what a query costs
 * in cores, which other processes on a shared machine disturb less. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int fail(const char *what, const char *path)
{
    fprintf(stderr, "dense_bench: %s '%s': %s\n", what, path, strerror(errno));
    return 1;
}

static void *xalloc64(size_t n)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? n : 64) != 0) {
        fprintf(stderr, "dense_bench: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

static int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "dense_bench: bad number '%s' (%llu to %llu)\n", s,
                (unsigned long long)lo, (unsigned long long)hi);
        return -1;
    }
    *out = v;
    return 0;
}

static void path_in(char *buf, size_t size, const char *dir, const char *name)
{
    snprintf(buf, size, "%s/%s", dir, name);
}

/* ---- data ---- */

static uint64_t rng_next(uint64_t *s)      /* splitmix64 */
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Near-Gaussian, mean 0 and variance 1: four 16-bit uniforms summed (the
 * benchmark needs clusters, not exact tails, and a billion of these). */
static float rng_gauss(uint64_t *s)
{
    uint64_t r = rng_next(s);
    double u = (double)(r & 0xffff) + (double)(r >> 16 & 0xffff) + (double)(r >> 32 & 0xffff) +
               (double)(r >> 48);
    return (float)((u - 2 * 32767.5) / (65536.0 * 0.5773502691896258));
}

/* One unit vector around a random one of the centres. */
static void sample(uint64_t *seed, const float *centres, unsigned n_centres, uint32_t dim,
                   float spread, float *out)
{
    const float *c = centres + (rng_next(seed) % n_centres) * dim;
    double ss = 0;
    for (uint32_t j = 0; j < dim; j++) {
        out[j] = c[j] + spread * rng_gauss(seed);
        ss += (double)out[j] * out[j];
    }
    for (uint32_t j = 0; j < dim; j++)
        out[j] = (float)(out[j] / sqrt(ss));
}

/* ---- exact f32 top 10 ---- */

struct top {
    float s[K];
    uint32_t id[K];
    unsigned n;
};

static void top_add(struct top *t, float s, uint32_t id)
{
    if (t->n == K && !(s > t->s[K - 1]))      /* ids rise: a tie loses to the earlier */
        return;
    unsigned i = t->n < K ? t->n++ : K - 1;
    while (i > 0 && s > t->s[i - 1]) {
        t->s[i] = t->s[i - 1];
        t->id[i] = t->id[i - 1];
        i--;
    }
    t->s[i] = s;
    t->id[i] = id;
}

struct truth_job {
    const float *base, *queries;
    uint64_t n;
    uint32_t dim;
    unsigned q_lo, q_hi;
    struct top *tops;
};

/* Blocks of rows against all of this thread's queries, so each block is
 * read from memory once. */
static void *truth_run(void *arg)
{
    struct truth_job *j = arg;
    for (uint64_t lo = 0; lo < j->n; lo += TRUTH_ROWS) {
        uint64_t hi = j->n - lo < TRUTH_ROWS ? j->n : lo + TRUTH_ROWS;
        for (unsigned q = j->q_lo; q < j->q_hi; q++)
            for (uint64_t r = lo; r < hi; r++)
                top_add(&j->tops[q], sage_dot_f32(j->queries + (size_t)q * j->dim,
                                                  j->base + r * j->dim, j->dim), (uint32_t)r);
    }
    return NULL;
}

static int write_all(const char *path, const void *p, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return fail("cannot create", path);
    size_t done = fwrite(p, 1, len, f);
    if (fclose(f) != 0 || done != len)
        return fail("cannot write", path);
    return 0;
}

/* The first len bytes of path, which must have that many. */
static int read_all(const char *path, void *p, size_t len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail("cannot open", path);
    size_t done = fread(p, 1, len, f);
    fclose(f);
    if (done != len) {
        errno = EINVAL;
        return fail("too short", path);
    }
    return 0;
}

static int cmd_gen(const char *dir, uint64_t n, uint32_t dim, unsigned nq, uint64_t seed)
{
    unsigned n_centres = n / 1000 > 200 ? (unsigned)(n / 1000) : 200;
    const float spread = 0.6f;
    float *centres = xalloc64(sizeof(float) * n_centres * dim);
    float *base = xalloc64(sizeof(float) * n * dim);
    float *queries = xalloc64(sizeof(float) * nq * dim);
    struct top *tops = calloc(nq, sizeof(*tops));
    uint32_t *ids = calloc((size_t)nq * K, sizeof(*ids));
    char path[4096];
    int rc = 1;
    if (!tops || !ids)
        goto out;
    for (size_t i = 0; i < (size_t)n_centres * dim; i++)
        centres[i] = rng_gauss(&seed);
    double t0 = now_s();
    for (uint64_t i = 0; i < n; i++)
        sample(&seed, centres, n_centres, dim, spread, base + i * dim);
    for (unsigned i = 0; i < nq; i++)
        sample(&seed, centres, n_centres, dim, spread, queries + (size_t)i * dim);
    double t1 = now_s();

    struct truth_job jobs[2];
    pthread_t th;
    for (unsigned t = 0; t < 2; t++)
        jobs[t] = (struct truth_job){ base, queries, n, dim, t * nq / 2, (t + 1) * nq / 2, tops };
    if (pthread_create(&th, NULL, truth_run, &jobs[1]) != 0) {
        fprintf(stderr, "dense_bench: cannot start a thread\n");
        goto out;
    }
    truth_run(&jobs[0]);
    pthread_join(th, NULL);
    for (unsigned q = 0; q < nq; q++)
        for (unsigned i = 0; i < K; i++)
            ids[(size_t)q * K + i] = i < tops[q].n ? tops[q].id[i] : UINT32_MAX;
    double t2 = now_s();

    path_in(path, sizeof(path), dir, "base.f32");
    if (write_all(path, base, sizeof(float) * n * dim))
        goto out;
    path_in(path, sizeof(path), dir, "queries.f32");
    if (write_all(path, queries, sizeof(float) * nq * dim))
        goto out;
    path_in(path, sizeof(path), dir, "truth.u32");
    if (write_all(path, ids, sizeof(*ids) * nq * K))
        goto out;
    printf("{\"gen_s\": %.2f, \"truth_s\": %.2f, \"centres\": %u}\n", t1 - t0, t2 - t1, n_centres);
    rc = 0;
out:
    free(ids);
    free(tops);
    free(queries);
    free(base);
    free(centres);
    return rc;
}

/* ---- SAGE ---- */

static int cmd_run(const char *dir, uint64_t n, uint32_t dim, unsigned nq, unsigned threads,
                   unsigned reps, const char *isa)
{
    struct sage_vectors v = { .dim = dim, .n = n };
    v.stride_f32 = (4 * (size_t)dim + 63) & ~(size_t)63;
    v.stride_i8 = ((size_t)dim + 63) & ~(size_t)63;
    uint8_t *f32 = xalloc64(n * v.stride_f32), *i8 = xalloc64(n * v.stride_i8);
    float *scale = xalloc64(4 * n), *queries = xalloc64(sizeof(float) * nq * dim);
    float *row = xalloc64(4 * (size_t)dim);
    uint32_t *truth = xalloc64(sizeof(*truth) * nq * K);
    struct sage_dense_hit hits[K];
    char path[4096];
    int rc = 1;
    FILE *f = NULL;

    path_in(path, sizeof(path), dir, "base.f32");
    if (!(f = fopen(path, "rb"))) {
        fail("cannot open", path);
        goto out;
    }
    memset(i8, 0, n * v.stride_i8);
    for (uint64_t i = 0; i < n; i++) {
        if (fread(row, 4, dim, f) != dim) {
            errno = EINVAL;
            fail("short", path);
            goto out;
        }
        memset(f32 + i * v.stride_f32, 0, v.stride_f32);
        memcpy(f32 + i * v.stride_f32, row, 4 * (size_t)dim);
        scale[i] = sage_vectors_quantize(row, dim, (int8_t *)(i8 + i * v.stride_i8));
    }
    v.f32 = f32;
    v.i8 = i8;
    v.scale = (const uint8_t *)scale;
    path_in(path, sizeof(path), dir, "queries.f32");
    if (read_all(path, queries, sizeof(float) * nq * dim))
        goto out;
    path_in(path, sizeof(path), dir, "truth.u32");
    if (read_all(path, truth, sizeof(*truth) * nq * K))
        goto out;

    struct sage_dense_opts o = { .k = K, .threads = threads, .isa = isa };
    struct sage_err err = { 0 };
    size_t nh = 0, found = 0;
    double best = 1e300, best_cpu = 1e300;
    unsigned warm = nq < 20 ? nq : 20;
    for (unsigned q = 0; q < warm; q++)
        if (sage_dense_exact(&v, queries + (size_t)q * dim, &o, hits, &nh, &err) < 0)
            goto search_failed;
    for (unsigned r = 0; r < reps; r++) {
        found = 0;
        double t0 = now_s(), c0 = cpu_s();
        for (unsigned q = 0; q < nq; q++) {
            if (sage_dense_exact(&v, queries + (size_t)q * dim, &o, hits, &nh, &err) < 0)
                goto search_failed;
            for (size_t i = 0; i < nh; i++)
                for (unsigned j = 0; j < K; j++)
                    found += hits[i].chunk == truth[(size_t)q * K + j];
        }
        double t = now_s() - t0, c = cpu_s() - c0;
        best = t < best ? t : best;
        best_cpu = c < best_cpu ? c : best_cpu;
    }
    sage_kernels_i8_rows(isa, &isa);
    double qps = nq / best;
    printf("{\"engine\": \"sage\", \"n\": %llu, \"dim\": %u, \"threads\": %u, \"queries\": %u, "
           "\"qps\": %.2f, \"ms\": %.4f, \"cpu_ms\": %.4f, \"recall\": %.4f, \"scan_gbs\": %.3f, \"isa\": \"%s\"}\n",
           (unsigned long long)n, dim, threads ? threads : sage_dense_threads(), nq, qps,
           1e3 / qps, 1e3 * best_cpu / nq, (double)found / ((double)nq * K), qps * (double)n * v.stride_i8 / 1e9, isa);
    rc = 0;
    goto out;
search_failed:
    fprintf(stderr, "dense_bench: search failed: %s\n", sage_err_msg(&err, err.code));
out:
    if (f)
        fclose(f);
    free(truth);
    free(row);
    free(queries);
    free(scale);
    free(i8);
    free(f32);
    return rc;
}

/* ---- memory bandwidth ---- */

struct bw_job {
    const uint8_t *p;
    size_t len;
    uint64_t sum;       /* kept, so the reads cannot be dropped */
};

/* Each thread reads its slice as one sequential stream, or as four (one per
 * quarter), which keeps more misses in flight, as the scan's four rows at a
 * time do; membw reports the better of the two. */
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2")))
static void *bw_run1(void *arg)
{
    struct bw_job *j = arg;
    size_t len = j->len & ~(size_t)127;
    __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = 0; i < len; i += 128) {
        s0 = _mm256_add_epi64(s0, _mm256_load_si256((const __m256i *)(j->p + i)));
        s1 = _mm256_add_epi64(s1, _mm256_load_si256((const __m256i *)(j->p + i + 32)));
        s2 = _mm256_add_epi64(s2, _mm256_load_si256((const __m256i *)(j->p + i + 64)));
        s3 = _mm256_add_epi64(s3, _mm256_load_si256((const __m256i *)(j->p + i + 96)));
    }
    __m256i s = _mm256_add_epi64(_mm256_add_epi64(s0, s1), _mm256_add_epi64(s2, s3));
    uint64_t out[4];
    _mm256_storeu_si256((__m256i *)out, s);
    j->sum = out[0] + out[1] + out[2] + out[3];
    j->len = len;
    return NULL;
}

__attribute__((target("avx2")))
static void *bw_run4(void *arg)
{
    struct bw_job *j = arg;
    size_t q = j->len / 4 & ~(size_t)63;
    const uint8_t *p0 = j->p, *p1 = p0 + q, *p2 = p1 + q, *p3 = p2 + q;
    __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = 0; i < q; i += 64) {
        s0 = _mm256_add_epi64(s0, _mm256_load_si256((const __m256i *)(p0 + i)));
        s1 = _mm256_add_epi64(s1, _mm256_load_si256((const __m256i *)(p1 + i)));
        s2 = _mm256_add_epi64(s2, _mm256_load_si256((const __m256i *)(p2 + i)));
        s3 = _mm256_add_epi64(s3, _mm256_load_si256((const __m256i *)(p3 + i)));
        s0 = _mm256_add_epi64(s0, _mm256_load_si256((const __m256i *)(p0 + i + 32)));
        s1 = _mm256_add_epi64(s1, _mm256_load_si256((const __m256i *)(p1 + i + 32)));
        s2 = _mm256_add_epi64(s2, _mm256_load_si256((const __m256i *)(p2 + i + 32)));
        s3 = _mm256_add_epi64(s3, _mm256_load_si256((const __m256i *)(p3 + i + 32)));
    }
    __m256i s = _mm256_add_epi64(_mm256_add_epi64(s0, s1), _mm256_add_epi64(s2, s3));
    uint64_t out[4];
    _mm256_storeu_si256((__m256i *)out, s);
    j->sum = out[0] + out[1] + out[2] + out[3];
    j->len = 4 * q;
    return NULL;
}
#else
static void *bw_run1(void *arg)
{
    struct bw_job *j = arg;
    const uint64_t *p = (const uint64_t *)(const void *)j->p;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t n = j->len / 32 * 4;
    for (size_t i = 0; i < n; i += 4) {
        s0 += p[i];
        s1 += p[i + 1];
        s2 += p[i + 2];
        s3 += p[i + 3];
    }
    j->sum = s0 + s1 + s2 + s3;
    j->len = 8 * n;
    return NULL;
}

static void *bw_run4(void *arg)
{
    struct bw_job *j = arg;
    const uint64_t *p = (const uint64_t *)(const void *)j->p;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t q = j->len / 32;
    for (size_t i = 0; i < q; i++) {
        s0 += p[i];
        s1 += p[q + i];
        s2 += p[2 * q + i];
        s3 += p[3 * q + i];
    }
    j->sum = s0 + s1 + s2 + s3;
    j->len = 32 * q;
    return NULL;
}
#endif

static int cmd_membw(uint64_t mib, unsigned threads, unsigned reps)
{
    size_t len = (size_t)mib << 20;
    uint8_t *buf = xalloc64(len);
    struct bw_job jobs[16];
    pthread_t th[16];
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)i;
    double best[2] = { 0, 0 };    /* bytes/s, one and four streams */
    uint64_t sum = 0;
    for (unsigned r = 0; r < reps; r++) {
        size_t part = (len / threads) & ~(size_t)255;
        double t0 = now_s();
        for (unsigned t = 0; t < threads; t++) {
            jobs[t] = (struct bw_job){ buf + t * part, part, 0 };
            if (t && pthread_create(&th[t], NULL, r % 2 ? bw_run4 : bw_run1, &jobs[t]) != 0) {
                fprintf(stderr, "dense_bench: cannot start a thread\n");
                return 1;
            }
        }
        (r % 2 ? bw_run4 : bw_run1)(&jobs[0]);
        for (unsigned t = 1; t < threads; t++)
            pthread_join(th[t], NULL);
        double dt = now_s() - t0;
        size_t read = 0;
        for (unsigned t = 0; t < threads; t++) {
            sum += jobs[t].sum;
            read += jobs[t].len;
        }
        best[r % 2] = (double)read / dt > best[r % 2] ? (double)read / dt : best[r % 2];
    }
    printf("{\"membw_gbs\": %.3f, \"streams1_gbs\": %.3f, \"streams4_gbs\": %.3f, "
           "\"mib\": %llu, \"threads\": %u, \"check\": %llu}\n",
           (best[0] > best[1] ? best[0] : best[1]) / 1e9, best[0] / 1e9, best[1] / 1e9,
           (unsigned long long)mib, threads, (unsigned long long)(sum & 0xff));
    free(buf);
    return 0;
}

/* ---- thread start-up ---- */

static void *nothing(void *arg)
{
    return arg;
}

static int cmd_spawn(unsigned n)
{
    double t0 = now_s();
    for (unsigned i = 0; i < n; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, nothing, NULL) != 0) {
            fprintf(stderr, "dense_bench: cannot start a thread\n");
            return 1;
        }
        pthread_join(t, NULL);
    }
    printf("{\"spawn_us\": %.2f}\n", (now_s() - t0) / n * 1e6);
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: dense_bench gen DIR N DIM NQ SEED\n"
                    "       dense_bench run DIR N DIM NQ THREADS REPS [ISA]\n"
                    "       dense_bench membw MIB THREADS REPS\n"
                    "       dense_bench spawn N\n"
                    "       dense_bench isas\n");
    return 2;
}

int main(int argc, char **argv)
{
    uint64_t a[5];
    if (argc == 7 && strcmp(argv[1], "gen") == 0) {
        if (parse_u64(argv[3], 1, N_MAX - 1, &a[0]) || parse_u64(argv[4], 1, DIM_MAX, &a[1]) ||
            parse_u64(argv[5], 1, NQ_MAX, &a[2]) || parse_u64(argv[6], 0, UINT64_MAX, &a[3]))
            return 2;
        return cmd_gen(argv[2], a[0], (uint32_t)a[1], (unsigned)a[2], a[3]);
    }
    if ((argc == 8 || argc == 9) && strcmp(argv[1], "run") == 0) {
        if (parse_u64(argv[3], 1, N_MAX - 1, &a[0]) || parse_u64(argv[4], 1, DIM_MAX, &a[1]) ||
            parse_u64(argv[5], 1, NQ_MAX, &a[2]) || parse_u64(argv[6], 0, 64, &a[3]) ||
            parse_u64(argv[7], 1, 100, &a[4]))
            return 2;
        return cmd_run(argv[2], a[0], (uint32_t)a[1], (unsigned)a[2], (unsigned)a[3],
                       (unsigned)a[4], argc == 9 ? argv[8] : NULL);
    }
    if (argc == 5 && strcmp(argv[1], "membw") == 0) {
        if (parse_u64(argv[2], 1, 1 << 16, &a[0]) || parse_u64(argv[3], 1, 16, &a[1]) ||
            parse_u64(argv[4], 1, 100, &a[2]))
            return 2;
        return cmd_membw(a[0], (unsigned)a[1], (unsigned)a[2]);
    }
    if (argc == 3 && strcmp(argv[1], "spawn") == 0) {
        if (parse_u64(argv[2], 1, 1000000, &a[0]))
            return 2;
        return cmd_spawn((unsigned)a[0]);
    }
    if (argc == 2 && strcmp(argv[1], "isas") == 0) {
        static const char *const isas[] = { "avx512vnni", "avxvnni", "avx2", "c" };
        for (size_t i = 0; i < sizeof(isas) / sizeof(isas[0]); i++)
            if (sage_kernels_i8_rows(isas[i], NULL))
                printf("%s\n", isas[i]);
        return 0;
    }
    return usage();
}
