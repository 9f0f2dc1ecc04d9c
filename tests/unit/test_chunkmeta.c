/* CHUNK_META: pages and headings round trip, repeated headings stored once,
 * chunks without a heading, and refusal of sections that do not describe
 * n_chunks chunks or whose heading table is damaged. */
#include "util.h"

#include "chunkmeta.h"
#include "le.h"
#include "reader.h"
#include "writer.h"

static const char *heading_of(size_t i)
{
    static const char *const h[] = { "Install", "Install > Debian", NULL, "Use \xc3\xa9t\xc3\xa9", "" };
    return h[i % 5];
}

static int write_meta(const char *path, size_t n, uint64_t n_chunks, struct sage_err *err)
{
    struct sage_writer_opts o = { .flags = SAGE_WRITE_NO_SYNC | SAGE_WRITE_NO_SHA256 };
    struct sage_writer *w = NULL;
    struct sage_chunkmeta_builder b;
    sage_chunkmeta_builder_init(&b);
    int rc = sage_writer_open(path, &o, &w, err);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = sage_chunkmeta_add(&b, (uint32_t)(i / 3), heading_of(i), err);
    if (rc == 0)
        rc = sage_chunkmeta_write(&b, w, err);
    if (rc == 0) {
        sage_writer_set_counts(w, 1, n_chunks);
        rc = sage_writer_commit(w, NULL, err);
    }
    assert_int_equal(b.names.n, n >= 4 ? 3u : b.names.n);     /* distinct, non-empty */
    sage_chunkmeta_builder_release(&b);
    sage_writer_free(w);
    return rc;
}

static void test_round_trip(void **state)
{
    struct ut_scratch *s = *state;
    char path[PATH_MAX];
    struct sage_err err = { 0 };
    static const size_t sizes[] = { 0, 1, 7, 5000 };
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t n = sizes[k];
        struct sage_reader *r = NULL;
        struct sage_chunkmeta m;
        ut_path(path, sizeof(path), s->dir, "m.sage");
        assert_int_equal(write_meta(path, n, n, &err), 0);
        assert_int_equal(sage_reader_open(path, SAGE_OPEN_VERIFY, &r, &err), 0);
        assert_int_equal(sage_chunkmeta_open(&m, r, &err), 0);
        assert_int_equal(m.n, n);
        for (size_t i = 0; i < n; i++) {
            uint32_t page;
            const char *h;
            size_t len;
            assert_int_equal(sage_chunkmeta_get(&m, i, &page, &h, &len, &err), 0);
            assert_int_equal(page, i / 3);
            const char *want = heading_of(i);
            if (!want || !want[0]) {
                assert_null(h);
            } else {
                assert_int_equal(len, strlen(want));
                assert_memory_equal(h, want, len);
            }
        }
        uint32_t page;
        const char *h;
        size_t len;
        assert_int_equal(sage_chunkmeta_get(&m, n, &page, &h, &len, &err), -SAGE_ENOTFOUND);
        sage_reader_close(r);
    }
}

static void test_refusals(void **state)
{
    struct ut_scratch *s = *state;
    char path[PATH_MAX];
    struct sage_err err = { 0 };
    struct sage_reader *r = NULL;
    struct sage_chunkmeta m;
    ut_path(path, sizeof(path), s->dir, "m.sage");
    /* a count other than n_chunks */
    assert_int_equal(write_meta(path, 10, 11, &err), 0);
    assert_int_equal(sage_reader_open(path, 0, &r, &err), 0);
    assert_int_equal(sage_chunkmeta_open(&m, r, &err), -SAGE_ECORRUPT);
    sage_reader_close(r);
    /* damage to the counts or the heading table, in an image */
    assert_int_equal(write_meta(path, 10, 10, &err), 0);
    size_t len;
    uint8_t *img = ut_read_file(path, &len);
    assert_int_equal(sage_reader_open_mem(img, len, 0, &r, &err), 0);
    const struct sage_section *sec = sage_reader_find(r, SAGE_SECTION_CHUNK_META);
    size_t off = (size_t)(sec->data - img);
    sage_reader_close(r);
    static const size_t spots[] = { 0, 7, 8, 15 };
    for (size_t i = 0; i < sizeof(spots) / sizeof(spots[0]); i++) {
        img[off + spots[i]] ^= 0x21;
        assert_int_equal(sage_reader_open_mem(img, len, 0, &r, &err), 0);
        assert_int_equal(sage_chunkmeta_open(&m, r, &err), -SAGE_ECORRUPT);
        sage_reader_close(r);
        img[off + spots[i]] ^= 0x21;
    }
    /* a heading id past the table: refused when read, not before */
    sage_put32(img + off + 16 + 40, 99);
    assert_int_equal(sage_reader_open_mem(img, len, 0, &r, &err), 0);
    assert_int_equal(sage_chunkmeta_open(&m, r, &err), 0);
    uint32_t page;
    const char *h;
    size_t hl;
    assert_true(sage_chunkmeta_get(&m, 0, &page, &h, &hl, &err) < 0);
    sage_reader_close(r);
    free(img);
}

#define T(f) cmocka_unit_test_setup_teardown(f, ut_scratch_setup, ut_scratch_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_round_trip),
        T(test_refusals),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
