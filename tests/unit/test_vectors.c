/* The VECTORS section: round trip of rows, int8 rows, scales and hashes,
 * 64-byte alignment in the mapping, refusal of headers that do not describe
 * the section, of a count other than n_chunks and of non-finite values. */
#include "util.h"

#include <math.h>

#include "kernels.h"
#include "le.h"
#include "reader.h"
#include "vectors.h"
#include "writer.h"

struct rows {
    uint64_t n;
    uint32_t dim;
    int poison;     /* >= 0: row to give a NaN */
    int fail_at;    /* >= 0: row whose callback fails */
};

static float value(uint64_t i, uint32_t j)
{
    if (i == 3)
        return 0.0f;                                    /* a zero row */
    return (float)sin((double)(i * 131 + j * 7)) * (float)(1 + i % 5);
}

static int row(void *ctx, uint64_t i, float *f, uint8_t hash[16])
{
    struct rows *r = ctx;
    if ((int)i == r->fail_at)
        return 1;
    for (uint32_t j = 0; j < r->dim; j++)
        f[j] = value(i, j);
    if ((int)i == r->poison)
        f[r->dim - 1] = NAN;
    memset(hash, (int)(i & 0xff), 16);
    hash[0] = (uint8_t)(i >> 8);
    return 0;
}

/* Writes a file with n_chunks in its header and the vectors of r. */
static int write_vectors(const char *path, uint64_t n_chunks, struct rows *r, struct sage_err *err)
{
    struct sage_writer_opts o = { .flags = SAGE_WRITE_NO_SYNC | SAGE_WRITE_NO_SHA256 };
    struct sage_writer *w = NULL;
    int rc = sage_writer_open(path, &o, &w, err);
    if (rc == 0)
        rc = sage_vectors_write(w, r->n, r->dim, SAGE_VECTORS_NORMALIZED, row, r, err);
    if (rc == 0) {
        sage_writer_set_counts(w, 1, n_chunks);
        rc = sage_writer_commit(w, NULL, err);
    }
    sage_writer_free(w);
    return rc;
}

static void test_round_trip(void **state)
{
    struct ut_scratch *s = *state;
    char path[PATH_MAX];
    struct sage_err err = { 0 };
    static const uint32_t dims[] = { 1, 3, 16, 100, 768 };
    for (size_t d = 0; d < sizeof(dims) / sizeof(dims[0]); d++) {
        struct rows r = { 50, dims[d], -1, -1 };
        struct sage_reader *rd = NULL;
        struct sage_vectors v;
        ut_path(path, sizeof(path), s->dir, "v.sage");
        assert_int_equal(write_vectors(path, r.n, &r, &err), 0);
        assert_int_equal(sage_reader_open(path, SAGE_OPEN_VERIFY, &rd, &err), 0);
        assert_int_equal(sage_vectors_open(&v, rd, &err), 0);
        assert_int_equal(v.dim, r.dim);
        assert_int_equal(v.n, r.n);
        assert_int_equal(v.flags, SAGE_VECTORS_NORMALIZED);
        int8_t q[768];
        for (uint64_t i = 0; i < r.n; i++) {
            const float *f = sage_vectors_row(&v, i);
            const int8_t *qi = sage_vectors_row_i8(&v, i);
            assert_int_equal((uintptr_t)f % 64, 0);
            assert_int_equal((uintptr_t)qi % 64, 0);
            float scale = sage_vectors_scale(&v, i), m = 0;
            for (uint32_t j = 0; j < r.dim; j++) {
                assert_true(f[j] == value(i, j));
                m = fabsf(f[j]) > m ? fabsf(f[j]) : m;
                /* the int8 row is the f32 row to within half a step */
                assert_true(fabsf((float)qi[j] * scale - f[j]) <= scale / 2 + 1e-6f);
            }
            assert_true(fabsf(scale - m / 127) <= 1e-7f);
            assert_true(sage_vectors_quantize(f, r.dim, q) == scale);
            assert_memory_equal(q, qi, r.dim);
            const uint8_t *h = sage_vectors_hash(&v, i);
            assert_int_equal(h[0], (uint8_t)(i >> 8));
            assert_int_equal(h[15], (uint8_t)(i & 0xff));
        }
        /* the zero row quantizes to zeros with scale 0 */
        assert_true(sage_vectors_scale(&v, 3) == 0);
        for (uint32_t j = 0; j < r.dim; j++)
            assert_int_equal(sage_vectors_row_i8(&v, 3)[j], 0);
        sage_reader_close(rd);
    }
}

static void test_refusals(void **state)
{
    struct ut_scratch *s = *state;
    char path[PATH_MAX];
    struct sage_err err = { 0 };
    struct sage_reader *rd = NULL;
    struct sage_vectors v;
    struct rows r = { 10, 8, -1, -1 };
    ut_path(path, sizeof(path), s->dir, "v.sage");

    /* a non-finite value, a failing row source and a zero dimension: no file */
    r.poison = 4;
    assert_int_equal(write_vectors(path, 10, &r, &err), -SAGE_EINVAL);
    assert_non_null(strstr(err.msg, "non-finite"));
    assert_false(ut_exists(path));
    r.poison = -1;
    r.fail_at = 7;
    assert_int_equal(write_vectors(path, 10, &r, &err), -SAGE_EINVAL);
    r.fail_at = -1;
    r.dim = 0;
    assert_int_equal(write_vectors(path, 10, &r, &err), -SAGE_EINVAL);
    r.dim = 8;

    /* a count other than the header's n_chunks */
    assert_int_equal(write_vectors(path, 11, &r, &err), 0);
    assert_int_equal(sage_reader_open(path, 0, &rd, &err), 0);
    assert_int_equal(sage_vectors_open(&v, rd, &err), -SAGE_ECORRUPT);
    assert_non_null(strstr(err.msg, "10 vectors for 11 chunks"));
    sage_reader_close(rd);

    /* every header field changed in an image: refused, never read past */
    assert_int_equal(write_vectors(path, 10, &r, &err), 0);
    size_t len;
    uint8_t *img = ut_read_file(path, &len);
    assert_int_equal(sage_reader_open_mem(img, len, 0, &rd, &err), 0);
    size_t off = (size_t)(sage_reader_find(rd, SAGE_SECTION_VECTORS)->data - img);
    sage_reader_close(rd);
    for (size_t b = 0; b < 64; b++) {
        img[off + b] ^= 0x40;
        assert_int_equal(sage_reader_open_mem(img, len, 0, &rd, &err), 0);
        assert_int_equal(sage_vectors_open(&v, rd, &err), -SAGE_ECORRUPT);
        sage_reader_close(rd);
        img[off + b] ^= 0x40;
    }
    assert_int_equal(sage_reader_open_mem(img, len, 0, &rd, &err), 0);
    assert_int_equal(sage_vectors_open(&v, rd, &err), 0);
    sage_reader_close(rd);
    free(img);

    /* a file without the section */
    struct sage_writer_opts o = { .flags = SAGE_WRITE_NO_SYNC | SAGE_WRITE_NO_SHA256 };
    struct sage_writer *w = NULL;
    assert_int_equal(sage_writer_open(path, &o, &w, &err), 0);
    assert_int_equal(sage_writer_add(w, SAGE_SECTION_BUILD, SAGE_CODEC_RAW, "\x80", 1, &err), 0);
    assert_int_equal(sage_writer_commit(w, NULL, &err), 0);
    sage_writer_free(w);
    assert_int_equal(sage_reader_open(path, 0, &rd, &err), 0);
    assert_int_equal(sage_vectors_open(&v, rd, &err), -SAGE_ENOTFOUND);
    sage_reader_close(rd);
}

/* The dot products against plain loops, at lengths around the vector
 * widths (tails included) and at the extremes of int8. */
static void test_kernels(void **state)
{
    (void)state;
    float fa[200], fb[200];
    int8_t ia[200], ib[200];
    for (int i = 0; i < 200; i++) {
        fa[i] = (float)sin(i * 0.37) * 3.0f;
        fb[i] = (float)cos(i * 0.11) - 0.25f;
        ia[i] = (int8_t)(i % 2 ? -127 + (i * 37) % 255 : (i * 91) % 255 - 127);
        ib[i] = (int8_t)(i % 3 ? 127 : -128);
    }
    static const size_t lens[] = { 0, 1, 7, 8, 15, 16, 31, 32, 33, 63, 64, 65, 127, 128, 200 };
    for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
        size_t n = lens[k];
        double want = 0;
        int32_t want_i = 0;
        for (size_t i = 0; i < n; i++) {
            want += (double)fa[i] * fb[i];
            want_i += (int32_t)ia[i] * ib[i];
        }
        assert_true(fabs(sage_dot_f32(fa, fb, n) - want) <= 1e-4 * (1 + fabs(want)));
        assert_int_equal(sage_dot_i8(ia, ib, n), want_i);
    }
    assert_non_null(sage_kernels_isa());
}

#define T(f) cmocka_unit_test_setup_teardown(f, ut_scratch_setup, ut_scratch_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_round_trip),
        T(test_refusals),
        cmocka_unit_test(test_kernels),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
