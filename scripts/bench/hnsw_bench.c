/* HNSW benchmark driver, run by scripts/bench/hnsw-bench.sh. Subcommands:
 *   gen DIR N NQ DIM SEED [fitted|shared]
 *                             clustered unit vectors: DIR/base.f32 (N rows), DIR/query.f32
 *                             (NQ rows), DIR/truth.u32 (each query's exact top 10 by f32
 *                             inner product, best first); the two models below
 *   build DIR OUT DIM M EFC THREADS   an index of base.f32 (VECTORS + HNSW) at OUT
 *   search DIR OUT EF...      one query per call on one thread, per ef: q/s (from the
 *                             thread's CPU time, best of 3 passes) and recall@10
 *   exact DIR OUT NQ          sage_dense_exact on the first NQ queries, for reference
 *   dump INDEX OUT            the f32 vectors of any index file with vectors, as rows
 *                             (for comparing real embeddings with the generated ones)
 * Each prints key=value lines; comparing with hnswlib is the script's job. Raw files
 * are little-endian f32 / u32 with no header, for numpy.fromfile. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "dense.h"
#include "hnsw.h"
#include "kernels.h"
#include "reader.h"
#include "vectors.h"
#include "writer.h"

#define TOPK 10
/* The data: points around N/100 random centres (at least 10), each the
 * centre plus a part in a low-dimensional subspace plus isotropic noise, then
 * normalized. How hard a graph search is depends on the data's local
 * intrinsic dimension (LID) and relative contrast (RC), which
 * scripts/bench/vector-stats.py measures, so the default model is fitted to
 * real sentence-encoder vectors, USE-Lite's of the SciFact corpus (5,183
 * rows of 512: LID 26.2, RC 1.434): "fitted" gives every cluster its own
 * 32-dimensional subspace (spread 0.2, noise 0.045 a coordinate) and measures
 * LID 26.9, RC 1.430 at 5,183 rows, and about the same at 100k and 1M, so a
 * bigger N is more of the same kind of data. "shared", the first model,
 * spreads every cluster in the same 12 dimensions (spread 0.5, noise 0.06):
 * LID 20.4, RC 1.366 at 5,183 rows, but its LID grows with N (the neighbours
 * of a point come more and more from other clusters at the same place in the
 * shared subspace); at 1M, M 16, neither SAGE nor hnswlib passes recall@10
 * 0.92 on it at ef 4096. */
struct model {
    int latent, shared;
    float noise, spread;
};
static const struct model fitted = { 32, 0, 0.045f, 0.2f }, shared = { 12, 1, 0.06f, 0.5f };

static double now_s(void)
{
    return sage_now_ms() / 1e3;
}

/* CPU time of the calling thread: the machine is shared, and time spent
 * descheduled is not the search's. */
static double cpu_s(void)
{
    return sage_thread_cpu_ms() / 1e3;
}

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static float gauss(uint64_t *s)
{
    double u = ((double)(splitmix64(s) >> 11) + 1) / 9007199254740993.0;
    double v = (double)(splitmix64(s) >> 11) / 9007199254740992.0;
    return (float)(sqrt(-2 * log(u)) * cos(2 * M_PI * v));
}

static void die(const char *what)
{
    fprintf(stderr, "hnsw_bench: %s: %s\n", what, errno ? strerror(errno) : "failed");
    exit(1);
}

static void path_in(char *buf, size_t size, const char *dir, const char *name)
{
    if ((size_t)snprintf(buf, size, "%s/%s", dir, name) >= size)
        die("path too long");
}

/* Maps a whole file read-only; its length in *len. */
static void *map_file(const char *dir, const char *name, size_t *len)
{
    char p[4096];
    struct stat st;
    path_in(p, sizeof(p), dir, name);
    int fd = open(p, O_RDONLY);
    if (fd < 0 || fstat(fd, &st) < 0)
        die(p);
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED)
        die(p);
    close(fd);
    *len = (size_t)st.st_size;
    return m;
}

static void write_file(const char *dir, const char *name, const void *p, size_t len)
{
    char path[4096];
    path_in(path, sizeof(path), dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, len, f) != len || fclose(f) != 0)
        die(path);
}

/* n rows of model m: cluster k has centre centres[k] and subspace basis
 * (m->latent rows of dim) number k, or number 0 for all when shared. */
static void gen_rows(float *out, size_t n, uint32_t dim, const struct model *m,
                     const float *centres, size_t n_c, const float *basis, uint64_t seed)
{
    uint64_t s = seed;
    float z[64];
    for (size_t i = 0; i < n; i++) {
        float *x = out + i * dim;
        size_t k = splitmix64(&s) % n_c;
        const float *c = centres + k * dim;
        const float *b = basis + (m->shared ? 0 : k) * (size_t)m->latent * dim;
        for (int t = 0; t < m->latent; t++)
            z[t] = m->spread * gauss(&s);
        double norm = 0;
        for (uint32_t j = 0; j < dim; j++) {
            float v = c[j] + m->noise * gauss(&s);
            for (int t = 0; t < m->latent; t++)
                v += b[(size_t)t * dim + j] * z[t];
            x[j] = v;
            norm += (double)v * v;
        }
        for (uint32_t j = 0; j < dim; j++)
            x[j] = (float)(x[j] / sqrt(norm));
    }
}

struct truth_job {
    const float *base, *query;
    size_t n, nq, dim, from, step;
    uint32_t *truth;
};

#define QBLOCK 32   /* queries scored together, so each base row is read once per block */

/* The exact top 10 of queries from, from + step, ...: blocks of QBLOCK
 * queries against every base row. */
static void *truth_run(void *arg)
{
    struct truth_job *j = arg;
    for (size_t q0 = j->from * QBLOCK; q0 < j->nq; q0 += j->step * QBLOCK) {
        size_t nb = j->nq - q0 < QBLOCK ? j->nq - q0 : QBLOCK, k[QBLOCK];
        float best[QBLOCK][TOPK];
        for (size_t b = 0; b < nb; b++)
            k[b] = 0;
        for (size_t i = 0; i < j->n; i++) {
            const float *row = j->base + i * j->dim;
            for (size_t b = 0; b < nb; b++) {
                float s = sage_dot_f32(j->query + (q0 + b) * j->dim, row, j->dim);
                uint32_t *top = j->truth + (q0 + b) * TOPK;
                if (k[b] == TOPK && !(s > best[b][TOPK - 1]))
                    continue;
                size_t t = k[b] < TOPK ? k[b]++ : TOPK - 1;
                while (t > 0 && s > best[b][t - 1]) {
                    best[b][t] = best[b][t - 1];
                    top[t] = top[t - 1];
                    t--;
                }
                best[b][t] = s;
                top[t] = (uint32_t)i;
            }
        }
    }
    return NULL;
}

static int cmd_gen(const char *dir, size_t n, size_t nq, uint32_t dim, uint64_t seed,
                   const struct model *m)
{
    size_t n_c = n / 100 > 10 ? n / 100 : 10, n_b = (m->shared ? 1 : n_c) * (size_t)m->latent * dim;
    float *centres = malloc(n_c * dim * sizeof(float)), *basis = malloc(n_b * sizeof(float));
    float *base = malloc(n * dim * sizeof(float)), *query = malloc(nq * dim * sizeof(float));
    uint32_t *truth = malloc(nq * TOPK * sizeof(uint32_t));
    uint64_t s = seed;
    if (!centres || !basis || !base || !query || !truth)
        die("out of memory");
    for (size_t i = 0; i < n_c * dim; i++)
        centres[i] = gauss(&s) / sqrtf((float)dim) * 1.2f;
    for (size_t i = 0; i < n_b; i++)
        basis[i] = gauss(&s) / sqrtf((float)dim);
    double t0 = now_s();
    gen_rows(base, n, dim, m, centres, n_c, basis, seed * 3 + 1);
    gen_rows(query, nq, dim, m, centres, n_c, basis, seed * 3 + 2);
    write_file(dir, "base.f32", base, n * dim * sizeof(float));
    write_file(dir, "query.f32", query, nq * dim * sizeof(float));
    double t1 = now_s();
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    size_t nt = cores > 0 ? (size_t)cores : 1;
    pthread_t tid[64];
    struct truth_job jobs[64];
    nt = nt > 64 ? 64 : nt;
    for (size_t t = 0; t < nt; t++) {
        jobs[t] = (struct truth_job){ base, query, n, nq, dim, t, nt, truth };
        if (pthread_create(&tid[t], NULL, truth_run, &jobs[t]) != 0)
            die("pthread_create");
    }
    for (size_t t = 0; t < nt; t++)
        pthread_join(tid[t], NULL);
    write_file(dir, "truth.u32", truth, nq * TOPK * sizeof(uint32_t));
    printf("gen_s=%.2f truth_s=%.2f n=%zu nq=%zu dim=%u centres=%zu model=%s\n", t1 - t0,
           now_s() - t1, n, nq, dim, n_c, m->shared ? "shared" : "fitted");
    free(centres);
    free(basis);
    free(base);
    free(query);
    free(truth);
    return 0;
}

struct rows {
    const float *base;
    uint32_t dim;
};

static int row_cb(void *ctx, uint64_t i, float *f, uint8_t hash[16])
{
    const struct rows *r = ctx;
    memcpy(f, r->base + i * r->dim, r->dim * sizeof(float));
    memset(hash, 0, 16);
    return 0;
}

static int cmd_build(const char *dir, const char *out, uint32_t dim, uint32_t m, uint32_t efc,
                     unsigned threads)
{
    size_t len;
    const float *base = map_file(dir, "base.f32", &len);
    uint64_t n = len / (dim * sizeof(float));
    struct sage_hnsw_params p = { m, efc, threads, 0 };
    struct sage_hnsw_graph *g = NULL;
    struct sage_writer *w = NULL;
    struct sage_writer_opts wo = { .flags = SAGE_WRITE_NO_SYNC | SAGE_WRITE_NO_SHA256 };
    struct sage_err err = { 0 };
    struct rows r = { base, dim };
    double t0 = now_s();
    if (sage_hnsw_build(&p, n, dim, base, dim, &g, &err) < 0) {
        fprintf(stderr, "hnsw_bench: %s\n", err.msg);
        return 1;
    }
    double t1 = now_s();
    if (sage_writer_open(out, &wo, &w, &err) < 0 ||
        sage_vectors_write(w, n, dim, SAGE_VECTORS_NORMALIZED, row_cb, &r, &err) < 0 ||
        sage_hnsw_write(w, g, &err) < 0) {
        fprintf(stderr, "hnsw_bench: %s\n", err.msg);
        return 1;
    }
    sage_writer_set_counts(w, 1, n);
    if (sage_writer_commit(w, NULL, &err) < 0) {
        fprintf(stderr, "hnsw_bench: %s\n", err.msg);
        return 1;
    }
    sage_writer_free(w);
    sage_hnsw_graph_free(g);
    struct sage_reader *rd = NULL;
    if (sage_reader_open(out, 0, &rd, &err) < 0) {
        fprintf(stderr, "hnsw_bench: %s\n", err.msg);
        return 1;
    }
    const struct sage_section *hs = sage_reader_find(rd, SAGE_SECTION_HNSW);
    const struct sage_section *vs = sage_reader_find(rd, SAGE_SECTION_VECTORS);
    printf("build_s=%.2f write_s=%.2f n=%llu m=%u ef_construction=%u threads=%u "
           "hnsw_bytes=%llu vectors_bytes=%llu isa=%s\n", t1 - t0, now_s() - t1,
           (unsigned long long)n, m, efc, threads, (unsigned long long)(hs ? hs->len : 0),
           (unsigned long long)(vs ? vs->len : 0), sage_kernels_isa());
    sage_reader_close(rd);
    return 0;
}

struct opened {
    struct sage_reader *r;
    struct sage_vectors v;
    struct sage_hnsw h;
    const float *query;
    const uint32_t *truth;
    size_t nq;
};

static void open_all(const char *dir, const char *out, struct opened *o)
{
    struct sage_err err = { 0 };
    size_t ql, tl;
    if (sage_reader_open(out, SAGE_OPEN_POPULATE, &o->r, &err) < 0 ||
        sage_vectors_open(&o->v, o->r, &err) < 0 || sage_hnsw_open(&o->h, o->r, &err) < 0) {
        fprintf(stderr, "hnsw_bench: %s\n", err.msg);
        exit(1);
    }
    o->query = map_file(dir, "query.f32", &ql);
    o->truth = map_file(dir, "truth.u32", &tl);
    o->nq = ql / (o->v.dim * sizeof(float));
    if (tl != o->nq * TOPK * sizeof(uint32_t))
        die("truth.u32 does not match query.f32");
}

static size_t hits_found(const struct sage_dense_hit *hits, size_t n, const uint32_t *truth)
{
    size_t f = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t t = 0; t < TOPK; t++)
            f += hits[i].chunk == truth[t];
    return f;
}

static int cmd_search(const char *dir, const char *out, char **efs, int n_ef)
{
    struct opened o;
    struct sage_err err = { 0 };
    open_all(dir, out, &o);
    for (int e = 0; e < n_ef; e++) {
        size_t ef = strtoul(efs[e], NULL, 10), found = 0;
        struct sage_dense_hit hits[TOPK];
        double best = 0;
        for (int pass = 0; pass < 4; pass++) {     /* a warm-up pass, then the best of 3 */
            double t0 = cpu_s(), w0 = now_s();
            found = 0;
            for (size_t q = 0; q < o.nq; q++) {
                size_t nh = 0;
                if (sage_hnsw_search(&o.h, &o.v, o.query + q * o.v.dim, ef, TOPK, NULL, hits,
                                     &nh, &err) < 0) {
                    fprintf(stderr, "hnsw_bench: %s\n", err.msg);
                    return 1;
                }
                found += hits_found(hits, nh, o.truth + q * TOPK);
            }
            double dt = cpu_s() - t0, wall = now_s() - w0;
            if (pass > 0 && (best == 0 || dt < best))
                best = dt;
            if (pass == 3)
                printf("ef=%zu qps=%.1f recall=%.4f us_per_query=%.1f wall_qps=%.1f\n", ef,
                       (double)o.nq / best, (double)found / (double)(o.nq * TOPK),
                       best / (double)o.nq * 1e6, (double)o.nq / wall);
        }
        fflush(stdout);
    }
    sage_reader_close(o.r);
    return 0;
}

static int cmd_exact(const char *dir, const char *out, size_t nq)
{
    struct opened o;
    struct sage_err err = { 0 };
    struct sage_dense_hit hits[TOPK];
    struct sage_dense_opts opts = { .k = TOPK, .threads = 1 };
    size_t found = 0;
    open_all(dir, out, &o);
    nq = nq < o.nq ? nq : o.nq;
    double t0 = now_s();
    for (size_t q = 0; q < nq; q++) {
        size_t nh = 0;
        if (sage_dense_exact(&o.v, o.query + q * o.v.dim, &opts, hits, &nh, &err) < 0) {
            fprintf(stderr, "hnsw_bench: %s\n", err.msg);
            return 1;
        }
        found += hits_found(hits, nh, o.truth + q * TOPK);
    }
    double dt = now_s() - t0;
    printf("exact qps=%.1f recall=%.4f queries=%zu\n", (double)nq / dt,
           (double)found / (double)(nq * TOPK), nq);
    sage_reader_close(o.r);
    return 0;
}

static int cmd_dump(const char *index, const char *out)
{
    struct sage_err err = { 0 };
    struct sage_reader *r;
    struct sage_vectors v;
    if (sage_reader_open(index, 0, &r, &err) < 0 || sage_vectors_open(&v, r, &err) < 0) {
        fprintf(stderr, "hnsw_bench: %s\n", err.msg);
        return 1;
    }
    FILE *f = fopen(out, "wb");
    for (uint64_t i = 0; f && i < v.n; i++)
        if (fwrite(sage_vectors_row(&v, i), sizeof(float), v.dim, f) != v.dim)
            break;
    if (!f || fclose(f) != 0)
        die(out);
    printf("n=%llu dim=%u\n", (unsigned long long)v.n, v.dim);
    sage_reader_close(r);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "dump") == 0)
        return cmd_dump(argv[2], argv[3]);
    if ((argc == 7 || (argc == 8 && (strcmp(argv[7], "fitted") == 0 ||
                                     strcmp(argv[7], "shared") == 0))) &&
        strcmp(argv[1], "gen") == 0)
        return cmd_gen(argv[2], strtoul(argv[3], NULL, 10), strtoul(argv[4], NULL, 10),
                       (uint32_t)strtoul(argv[5], NULL, 10), strtoull(argv[6], NULL, 10),
                       argc == 8 && strcmp(argv[7], "shared") == 0 ? &shared : &fitted);
    if (argc == 8 && strcmp(argv[1], "build") == 0)
        return cmd_build(argv[2], argv[3], (uint32_t)strtoul(argv[4], NULL, 10),
                         (uint32_t)strtoul(argv[5], NULL, 10),
                         (uint32_t)strtoul(argv[6], NULL, 10), (unsigned)strtoul(argv[7], NULL, 10));
    if (argc >= 5 && strcmp(argv[1], "search") == 0)
        return cmd_search(argv[2], argv[3], argv + 4, argc - 4);
    if (argc == 5 && strcmp(argv[1], "exact") == 0)
        return cmd_exact(argv[2], argv[3], strtoul(argv[4], NULL, 10));
    fprintf(stderr, "usage: hnsw_bench gen DIR N NQ DIM SEED [fitted|shared]\n"
                    "       hnsw_bench build DIR OUT DIM M EF_CONSTRUCTION THREADS\n"
                    "       hnsw_bench search DIR OUT EF...\n"
                    "       hnsw_bench exact DIR OUT NQ\n"
                    "       hnsw_bench dump INDEX OUT\n");
    return 2;
}
