/* The HNSW section: recall against brute force on clustered vectors, the
 * allow bitmap, tiny graphs, byte-for-byte reproducible single-threaded
 * builds, refusal of headers and tables that do not describe the section,
 * neighbour ids past n that search must survive, and out-of-memory. */
#include "util.h"

#include <math.h>

#include "hnsw.h"
#include "kernels.h"
#include "reader.h"
#include "vectors.h"
#include "writer.h"

#define DIM 32u

struct data {
    uint64_t n;
    float *rows;        /* n × DIM, unit length */
};

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float gauss(uint64_t *s)
{
    double u = ((double)(rng_next(s) >> 11) + 1) / 9007199254740993.0;
    double v = (double)(rng_next(s) >> 11) / 9007199254740992.0;
    return (float)(sqrt(-2 * log(u)) * cos(2 * M_PI * v));
}

static void normalize(float *f)
{
    float n = sqrtf(sage_dot_f32(f, f, DIM));
    for (uint32_t j = 0; j < DIM; j++)
        f[j] = n > 0 ? f[j] / n : 0;
}

/* n points around 100 centres (noise 0.9 per coordinate), normalized;
 * the first point of seed's stream differs from any other seed's. */
static void make_rows(float *rows, uint64_t n, uint64_t seed)
{
    static float centres[100][DIM];
    uint64_t s = 42;
    for (int c = 0; c < 100; c++)
        for (uint32_t j = 0; j < DIM; j++)
            centres[c][j] = gauss(&s);
    s = seed;
    for (uint64_t i = 0; i < n; i++) {
        int c = (int)(rng_next(&s) % 100);
        for (uint32_t j = 0; j < DIM; j++)
            rows[i * DIM + j] = centres[c][j] + 0.9f * gauss(&s);
        normalize(rows + i * DIM);
    }
}

static int row_cb(void *ctx, uint64_t i, float *f, uint8_t hash[16])
{
    const struct data *d = ctx;
    memcpy(f, d->rows + i * DIM, DIM * sizeof(*f));
    memset(hash, 0, 16);
    return 0;
}

/* Writes VECTORS and the graph of d (built with p) to path. */
static void write_index(const char *path, const struct data *d, const struct sage_hnsw_params *p)
{
    struct sage_writer_opts o = { .flags = SAGE_WRITE_NO_SYNC | SAGE_WRITE_NO_SHA256 };
    struct sage_writer *w = NULL;
    struct sage_hnsw_graph *g = NULL;
    struct sage_err err = { 0 };
    assert_int_equal(sage_hnsw_build(p, d->n, DIM, d->rows, DIM, &g, &err), 0);
    assert_int_equal(sage_writer_open(path, &o, &w, &err), 0);
    assert_int_equal(sage_vectors_write(w, d->n, DIM, SAGE_VECTORS_NORMALIZED, row_cb, (void *)d,
                                        &err), 0);
    assert_int_equal(sage_hnsw_write(w, g, &err), 0);
    sage_writer_set_counts(w, d->n ? 1 : 0, d->n);
    assert_int_equal(sage_writer_commit(w, NULL, &err), 0);
    sage_writer_free(w);
    sage_hnsw_graph_free(g);
}

struct opened {
    struct sage_reader *r;
    struct sage_vectors v;
    struct sage_hnsw h;
};

/* Every list of a graph the builder wrote: counts within bounds, ids below
 * n, on the level, neither the node itself nor twice in one list, unused
 * slots zero. */
static void check_graph(const struct sage_hnsw *h)
{
    for (uint64_t i = 0; i < h->n; i++) {
        const uint32_t *l = (const uint32_t *)(const void *)(h->level0 + i * h->stride0);
        assert_true(l[0] <= h->m0);
        assert_true(h->n < 2 || l[0] > 0);
        for (uint32_t j = 0; j < h->m0; j++) {
            if (j >= l[0]) {
                assert_int_equal(l[1 + j], 0);
                continue;
            }
            assert_true(l[1 + j] < h->n && l[1 + j] != i);
            for (uint32_t t = 0; t < j; t++)
                assert_int_not_equal(l[1 + t], l[1 + j]);
        }
    }
    for (uint32_t u = 0; u < h->n_upper; u++) {
        uint32_t lev = (h->up_start[u + 1] - h->up_start[u]) / (h->m + 1);
        for (uint32_t v = 1; v <= lev; v++) {
            const uint32_t *l = h->up_links + h->up_start[u] + (v - 1) * (h->m + 1);
            assert_true(l[0] <= h->m);
            for (uint32_t j = 0; j < l[0]; j++) {
                assert_true(l[1 + j] != h->up_node[u]);
                uint32_t k = 0;     /* the neighbour is on level v too */
                while (k < h->n_upper && h->up_node[k] != l[1 + j])
                    k++;
                assert_true(k < h->n_upper);
                assert_true((h->up_start[k + 1] - h->up_start[k]) / (h->m + 1) >= v);
            }
        }
    }
}

static void open_index(const char *path, struct opened *o)
{
    struct sage_err err = { 0 };
    assert_int_equal(sage_reader_open(path, SAGE_OPEN_VERIFY, &o->r, &err), 0);
    assert_int_equal(sage_vectors_open(&o->v, o->r, &err), 0);
    assert_int_equal(sage_hnsw_open(&o->h, o->r, &err), 0);
    check_graph(&o->h);
}

/* The exact top k of q among the allowed rows, by f32 inner product. */
static size_t brute(const struct data *d, const float *q, const uint64_t *allow, size_t k,
                    uint64_t *top)
{
    float best[64];
    size_t n = 0;
    for (uint64_t i = 0; i < d->n; i++) {
        if (allow && !(allow[i / 64] >> (i % 64) & 1))
            continue;
        float s = sage_dot_f32(q, d->rows + i * DIM, DIM);
        if (n == k && !(s > best[n - 1]))
            continue;
        size_t j = n < k ? n++ : n - 1;
        while (j > 0 && s > best[j - 1]) {
            best[j] = best[j - 1];
            top[j] = top[j - 1];
            j--;
        }
        best[j] = s;
        top[j] = i;
    }
    return n;
}

/* Mean recall@10 of nq queries at ef. */
static double recall(const struct opened *o, const struct data *d, const float *qs, size_t nq,
                     size_t ef, const uint64_t *allow)
{
    size_t found = 0, wanted = 0;
    struct sage_err err = { 0 };
    for (size_t i = 0; i < nq; i++) {
        uint64_t top[10];
        struct sage_dense_hit hits[10];
        size_t nh = 0, nt = brute(d, qs + i * DIM, allow, 10, top);
        assert_int_equal(sage_hnsw_search(&o->h, &o->v, qs + i * DIM, ef, 10, allow, hits, &nh,
                                          &err), 0);
        assert_int_equal(nh, nt);
        for (size_t j = 0; j < nh; j++) {
            assert_true(hits[j].chunk < d->n);
            if (allow)
                assert_true(allow[hits[j].chunk / 64] >> (hits[j].chunk % 64) & 1);
            if (j)
                assert_true(hits[j - 1].score > hits[j].score ||
                            (hits[j - 1].score == hits[j].score &&
                             hits[j - 1].chunk < hits[j].chunk));
            for (size_t t = 0; t < nt; t++)
                found += hits[j].chunk == top[t];
        }
        wanted += nt;
    }
    return wanted ? (double)found / (double)wanted : 1.0;
}

static void test_recall(void **state)
{
    struct ut_scratch *s = *state;
    char path[PATH_MAX];
    struct data d = { 20000, malloc(20000 * DIM * sizeof(float)) };
    float *qs = malloc(200 * DIM * sizeof(float));
    uint64_t *allow = calloc((d.n + 63) / 64, 8), *rare = calloc((d.n + 63) / 64, 8);
    assert_non_null(d.rows);
    assert_non_null(qs);
    assert_non_null(allow);
    assert_non_null(rare);
    make_rows(d.rows, d.n, 1);
    make_rows(qs, 200, 2);
    for (uint64_t i = 0; i < d.n; i += 2)
        allow[i / 64] |= 1ull << (i % 64);
    for (uint64_t i = 5; i < d.n; i += 997)
        rare[i / 64] |= 1ull << (i % 64);
    struct sage_hnsw_params p = { 16, 100, 2, 0 };
    struct opened o;
    write_index(ut_path(path, sizeof(path), s->dir, "h.sage"), &d, &p);
    open_index(path, &o);
    assert_int_equal(o.h.n, d.n);
    assert_int_equal(o.h.m, 16);
    assert_int_equal(o.h.m0, 32);
    assert_true(o.h.n_upper > 0 && o.h.n_upper < d.n / 8);
    double r64 = recall(&o, &d, qs, 200, 64, NULL), r256 = recall(&o, &d, qs, 200, 256, NULL);
    double rf = recall(&o, &d, qs, 200, 64, allow), rr = recall(&o, &d, qs, 50, 64, rare);
    print_message("# recall@10: ef 64 %.4f, ef 256 %.4f, half allowed %.4f, 1/997 allowed %.4f\n",
                  r64, r256, rf, rr);
    assert_true(r64 >= 0.95);
    assert_true(r256 >= 0.99);
    assert_true(rf >= 0.95);
    /* k above ef and above n_allowed */
    struct sage_dense_hit hits[40];
    size_t nh = 0;
    struct sage_err err = { 0 };
    assert_int_equal(sage_hnsw_search(&o.h, &o.v, qs, 4, 40, rare, hits, &nh, &err), 0);
    assert_true(nh > 0 && nh <= 21);
    sage_reader_close(o.r);
    free(d.rows);
    free(qs);
    free(allow);
    free(rare);
}

static void test_tiny(void **state)
{
    struct ut_scratch *s = *state;
    char path[PATH_MAX];
    float rows[3 * DIM];
    make_rows(rows, 3, 7);
    for (uint64_t n = 0; n <= 3; n++) {
        struct data d = { n, rows };
        struct sage_hnsw_params p = { 0, 0, 2, 0 };
        struct opened o;
        struct sage_dense_hit hits[5];
        size_t nh = 99;
        struct sage_err err = { 0 };
        write_index(ut_path(path, sizeof(path), s->dir, "t.sage"), &d, &p);
        open_index(path, &o);
        assert_int_equal(o.h.n, n);
        assert_int_equal(sage_hnsw_search(&o.h, &o.v, rows, 10, 5, NULL, hits, &nh, &err), 0);
        assert_int_equal(nh, n);
        if (n) {
            assert_int_equal(hits[0].chunk, 0);
            assert_true(fabsf(hits[0].score - 1.0f) < 1e-5f);
        }
        assert_int_equal(sage_hnsw_search(&o.h, &o.v, rows, 10, 0, NULL, hits, &nh, &err), 0);
        assert_int_equal(nh, 0);
        sage_reader_close(o.r);
    }
}

static void test_reproducible(void **state)
{
    struct ut_scratch *s = *state;
    char a[PATH_MAX], b[PATH_MAX];
    struct data d = { 3000, malloc(3000 * DIM * sizeof(float)) };
    assert_non_null(d.rows);
    make_rows(d.rows, d.n, 3);
    struct sage_hnsw_params p = { 8, 64, 1, 0 };
    write_index(ut_path(a, sizeof(a), s->dir, "a.sage"), &d, &p);
    write_index(ut_path(b, sizeof(b), s->dir, "b.sage"), &d, &p);
    ut_assert_same_file(a, b);
    p.seed = 99;    /* another seed: other levels, another graph */
    write_index(b, &d, &p);
    size_t la, lb;
    uint8_t *ia = ut_read_file(a, &la), *ib = ut_read_file(b, &lb);
    assert_true(la != lb || memcmp(ia, ib, la) != 0);
    free(ia);
    free(ib);
    free(d.rows);
}

/* ---- damaged sections ---- */

struct image {
    uint8_t *img;
    size_t size;
    uint8_t *sec;       /* the HNSW section's bytes */
    uint8_t *entry;     /* its table entry */
};

static void load_image(const char *path, struct image *im)
{
    im->img = ut_read_file(path, &im->size);
    uint32_t ns = sage_le32(im->img + SAGE_HDR_NSECT);
    im->sec = im->entry = NULL;
    for (uint32_t i = 0; i < ns; i++) {
        uint8_t *e = ut_entry(im->img, i);
        if (sage_le32(e + SAGE_SEC_KIND) == SAGE_SECTION_HNSW) {
            im->entry = e;
            im->sec = im->img + sage_le64(e + SAGE_SEC_OFF);
        }
    }
    assert_non_null(im->sec);
}

/* Opens the image with its checksums fixed; the result of sage_hnsw_open. */
static int open_damaged(struct image *im, struct opened *o)
{
    struct sage_err err = { 0 };
    ut_fix_all(im->img, im->size);
    assert_int_equal(sage_reader_open_mem(im->img, im->size, 0, &o->r, &err), 0);
    assert_int_equal(sage_vectors_open(&o->v, o->r, &err), 0);
    int rc = sage_hnsw_open(&o->h, o->r, &err);
    if (rc < 0)
        assert_int_not_equal(err.msg[0], 0);
    return rc;
}

static void test_corrupt(void **state)
{
    struct ut_scratch *s = *state;
    char path[PATH_MAX];
    struct data d = { 600, malloc(600 * DIM * sizeof(float)) };
    assert_non_null(d.rows);
    make_rows(d.rows, d.n, 4);
    struct sage_hnsw_params p = { 4, 32, 1, 0 };     /* m 4: several upper levels */
    write_index(ut_path(path, sizeof(path), s->dir, "c.sage"), &d, &p);
    struct image im;
    load_image(path, &im);
    uint8_t *orig = malloc(im.size);
    assert_non_null(orig);
    memcpy(orig, im.img, im.size);
    uint64_t len = sage_le64(im.entry + SAGE_SEC_LEN);
    uint32_t n_upper = sage_le32(im.sec + 28), max_level = sage_le32(im.sec + 12);
    uint64_t off_up = sage_le64(im.sec + 40);
    assert_true(n_upper > 2 && max_level >= 2);
    struct {
        size_t off;         /* in the section; SIZE_MAX: the table entry's lengths */
        uint32_t v32;
        int wide;           /* write 8 bytes */
    } bad[] = {
        { SIZE_MAX, 0, 0 },         /* truncated by 4 bytes */
        { 0, 1, 0 },                /* m 1 */
        { 0, 300, 0 },              /* m too large */
        { 4, 3, 0 },                /* m0 below m */
        { 8, 0, 0 },                /* ef_construction 0 */
        { 12, 33, 0 },              /* max_level too large */
        { 12, 0, 0 },               /* max_level 0 with upper nodes */
        { 16, 601, 1 },             /* n other than n_chunks (and the length) */
        { 24, 600, 0 },             /* entry >= n */
        { 28, 0, 0 },               /* n_upper 0 */
        { 32, 128, 1 },             /* off_level0 */
        { 40, 0, 1 },               /* off_upper */
        { 48, 5, 1 },               /* n_links */
        { 56, 1, 1 },               /* reserved */
        { 0, 0, 2 },                /* upper nodes out of order */
        { 0, 0, 3 },                /* an upper node >= n */
        { 0, 0, 4 },                /* a start not on a list boundary */
        { 0, 0, 5 },                /* entry below the top level */
    };
    for (size_t t = 0; t < sizeof(bad) / sizeof(bad[0]); t++) {
        struct opened o;
        memcpy(im.img, orig, im.size);
        uint32_t *up = (uint32_t *)(void *)(im.sec + off_up);   /* node ids, then starts */
        if (bad[t].off == SIZE_MAX) {
            sage_put64(im.entry + SAGE_SEC_LEN, len - 4);
            sage_put64(im.entry + SAGE_SEC_RAW_LEN, len - 4);
        } else if (bad[t].wide == 1) {
            sage_put64(im.sec + bad[t].off, bad[t].v32);
        } else if (bad[t].wide == 2) {
            uint32_t x = up[0];
            up[0] = up[1];
            up[1] = x;
        } else if (bad[t].wide == 3) {
            up[n_upper - 1] = 600;
        } else if (bad[t].wide == 4) {
            up[n_upper + 1] += 1;
        } else if (bad[t].wide == 5) {
            uint32_t k = 0;     /* a node below the top level */
            while (k < n_upper && up[n_upper + k + 1] - up[n_upper + k] == max_level * 5)
                k++;
            assert_true(k < n_upper);
            sage_put32(im.sec + 24, up[k]);
        } else {
            sage_put32(im.sec + bad[t].off, bad[t].v32);
        }
        int rc = open_damaged(&im, &o);
        if (rc != -SAGE_ECORRUPT)
            print_message("# case %zu: %d\n", t, rc);
        assert_int_equal(rc, -SAGE_ECORRUPT);
        sage_reader_close(o.r);
    }

    /* neighbour ids past n and lists longer than their slots: the header
     * is right, so the section opens; search reads nothing outside it */
    memcpy(im.img, orig, im.size);
    size_t stride0 = (4 * (1 + 8) + 63) / 64 * 64;  /* m0 8 */
    for (uint64_t i = 0; i < d.n; i++) {
        uint8_t *l = im.sec + 64 + i * stride0;
        sage_put32(l, i % 3 ? 0xffffffffu : 9);
        for (uint32_t j = 0; j < 8; j++)
            sage_put32(l + 4 + 4 * j, (uint32_t)(i * 7 + j * 613) % 1200);
    }
    uint64_t n_links = sage_le64(im.sec + 48);
    for (uint64_t w = 0; w < n_links; w++)
        sage_put32(im.sec + off_up + 4 * (2 * (uint64_t)n_upper + 1) + 4 * w,
                   w % 5 == 0 ? 0xfffffff0u : (uint32_t)(w * 31) % 900);
    struct opened o;
    assert_int_equal(open_damaged(&im, &o), 0);
    struct sage_err err = { 0 };
    for (uint64_t i = 0; i < 50; i++) {
        struct sage_dense_hit hits[10];
        size_t nh = 0;
        assert_int_equal(sage_hnsw_search(&o.h, &o.v, d.rows + i * DIM, 32, 10, NULL, hits, &nh,
                                          &err), 0);
        assert_true(nh >= 1 && nh <= 10);
        for (size_t j = 0; j < nh; j++)
            assert_true(hits[j].chunk < d.n);
    }
    /* a graph for another set of vectors */
    struct sage_vectors v2 = o.v;
    v2.n--;
    struct sage_dense_hit hits[10];
    size_t nh = 0;
    assert_int_equal(sage_hnsw_search(&o.h, &v2, d.rows, 32, 10, NULL, hits, &nh, &err),
                     -SAGE_EINVAL);
    sage_reader_close(o.r);

    /* no section */
    struct sage_reader *r = NULL;
    memcpy(im.img, orig, im.size);
    sage_put32(im.entry + SAGE_SEC_KIND, 200);
    ut_fix_all(im.img, im.size);
    assert_int_equal(sage_reader_open_mem(im.img, im.size, 0, &r, &err), 0);
    assert_int_equal(sage_hnsw_open(&o.h, r, &err), -SAGE_ENOTFOUND);
    sage_reader_close(r);
    free(orig);
    free(im.img);
    free(d.rows);
}

static void test_bad_params(void **state)
{
    (void)state;
    float rows[4 * DIM] = { 0 };
    struct sage_hnsw_graph *g = NULL;
    struct sage_err err = { 0 };
    struct sage_hnsw_params p = { 1, 0, 1, 0 };
    assert_int_equal(sage_hnsw_build(&p, 4, DIM, rows, DIM, &g, &err), -SAGE_EINVAL);
    p.m = 1000;
    assert_int_equal(sage_hnsw_build(&p, 4, DIM, rows, DIM, &g, &err), -SAGE_EINVAL);
    p.m = 4;
    assert_int_equal(sage_hnsw_build(&p, 4, DIM, rows, DIM - 1, &g, &err), -SAGE_EINVAL);
    assert_null(g);
    /* all-equal rows: every score ties, the graph is still built and searchable */
    assert_int_equal(sage_hnsw_build(NULL, 4, DIM, rows, DIM, &g, &err), 0);
    sage_hnsw_graph_free(g);
}

static int oom_run(void *ctx)
{
    const struct data *d = ctx;
    struct sage_hnsw_graph *g = NULL;
    struct sage_err err = { 0 };
    struct sage_hnsw_params p = { 4, 16, 1, 0 };
    int rc = sage_hnsw_build(&p, d->n, DIM, d->rows, DIM, &g, &err);
    sage_hnsw_graph_free(g);
    return rc;
}

/* A search whose visited set and candidates must grow: a filter that
 * allows one node makes it walk the whole graph. */
static int oom_search(void *ctx)
{
    const struct opened *o = ctx;
    struct sage_dense_hit hits[10];
    size_t nh = 0;
    struct sage_err err = { 0 };
    uint64_t allow[3000 / 64 + 1] = { 0 };
    allow[2999 / 64] = 1ull << (2999 % 64);
    int rc = sage_hnsw_search(&o->h, &o->v, sage_vectors_row(&o->v, 1), 10, 10, allow, hits, &nh,
                              &err);
    if (rc == 0 && (nh != 1 || hits[0].chunk != 2999))
        return -SAGE_EINVAL;
    return rc;
}

static void test_oom(void **state)
{
    struct ut_scratch *s = *state;
    char path[PATH_MAX];
    struct data d = { 3000, malloc(3000 * DIM * sizeof(float)) };
    assert_non_null(d.rows);
    make_rows(d.rows, d.n, 5);
    d.n = 200;
    ut_oom_sweep(oom_run, &d, 64);
    d.n = 3000;
    struct sage_hnsw_params p = { 4, 16, 1, 0 };
    struct opened o;
    write_index(ut_path(path, sizeof(path), s->dir, "o.sage"), &d, &p);
    open_index(path, &o);
    ut_oom_sweep(oom_search, &o, 64);
    sage_reader_close(o.r);
    free(d.rows);
}

#define T(f) cmocka_unit_test_setup_teardown(f, ut_scratch_setup, ut_scratch_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_recall),
        T(test_tiny),
        T(test_reproducible),
        T(test_corrupt),
        cmocka_unit_test(test_bad_params),
        T(test_oom),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
