/* OCR_PAGES: pages added in any order and by several engines come back by
 * digest and engine; the bytes do not depend on the order of addition; a
 * page met twice is stored once; sections whose records are short, name an
 * unknown engine or are out of order are refused. */
#include "util.h"

#include "layout.h"
#include "le.h"
#include "ocrpages.h"
#include "reader.h"
#include "rectab.h"
#include "writer.h"

static void digest(uint8_t h[16], unsigned i)
{
    memset(h, 0, 16);
    sage_put32(h, 0x9e3779b9u * (i + 1));     /* not in order of i */
    h[15] = (uint8_t)i;
}

static const char *const engines[] = { "tesseract 5.3.0 eng", "server olmocr" };

/* Writes n pages, page i read by engine i % 2, added from i = start on,
 * wrapping around; page 3 (engine 1) met again by both engines. */
static void write_pages(const char *path, unsigned n, unsigned start)
{
    struct sage_writer_opts o = { .flags = SAGE_WRITE_NO_SYNC | SAGE_WRITE_NO_SHA256 };
    struct sage_writer *w = NULL;
    struct sage_ocrpages_builder b;
    struct sage_err err = { 0 };
    sage_ocrpages_builder_init(&b);
    assert_int_equal(sage_writer_open(path, &o, &w, &err), 0);
    for (unsigned k = 0; k < n; k++) {
        unsigned i = (start + k) % n;
        uint8_t h[16];
        char text[64];
        digest(h, i);
        int len = snprintf(text, sizeof(text), "page %u read by %s", i, engines[i % 2]);
        assert_int_equal(sage_ocrpages_add(&b, h, engines[i % 2], text, (size_t)len, &err), 0);
        if (i == 3) {   /* read again by the same engine, then by the other */
            assert_int_equal(sage_ocrpages_add(&b, h, engines[1], "again", 5, &err), 0);
            assert_int_equal(sage_ocrpages_add(&b, h, engines[0], text, (size_t)len, &err), 0);
        }
    }
    assert_int_equal(sage_ocrpages_write(&b, w, &err), 0);
    assert_int_equal(sage_writer_commit(w, NULL, &err), 0);
    sage_writer_free(w);
    sage_ocrpages_builder_release(&b);
}

/* Writes every page of p, read back one by one (sage_ocrpages_page), to a
 * new file: what a merge of indexes does. */
static void copy_pages(const struct sage_ocrpages *p, const char *path)
{
    struct sage_writer_opts o = { .flags = SAGE_WRITE_NO_SYNC | SAGE_WRITE_NO_SHA256 };
    struct sage_writer *w = NULL;
    struct sage_ocrpages_builder b;
    struct sage_err err = { 0 };
    sage_ocrpages_builder_init(&b);
    for (uint64_t i = p->n; i-- > 0;) {     /* backwards: the order must not matter */
        const uint8_t *hash;
        const char *engine, *text;
        size_t len;
        assert_int_equal(sage_ocrpages_page(p, i, &hash, &engine, &text, &len, &err), 0);
        assert_int_equal(sage_ocrpages_add(&b, hash, engine, text, len, &err), 0);
    }
    assert_int_equal(sage_writer_open(path, &o, &w, &err), 0);
    assert_int_equal(sage_ocrpages_write(&b, w, &err), 0);
    assert_int_equal(sage_writer_commit(w, NULL, &err), 0);
    sage_writer_free(w);
    sage_ocrpages_builder_release(&b);
}

static void test_round_trip(void **state)
{
    struct ut_scratch *s = *state;
    char a[PATH_MAX], b[PATH_MAX], c[PATH_MAX];
    struct sage_err err = { 0 };
    struct sage_reader *r = NULL;
    struct sage_ocrpages p;
    ut_path(a, sizeof(a), s->dir, "a.sage");
    ut_path(c, sizeof(c), s->dir, "c.sage");
    ut_path(b, sizeof(b), s->dir, "b.sage");
    write_pages(a, 40, 0);
    write_pages(b, 40, 17);
    ut_assert_same_file(a, b);
    assert_int_equal(sage_reader_open(a, SAGE_OPEN_VERIFY, &r, &err), 0);
    assert_int_equal(sage_ocrpages_open(&p, r, &err), 0);
    assert_int_equal(p.n, 41);          /* page 3 twice: by each engine */
    assert_int_equal(p.n_engines, 2);
    assert_string_equal(p.engines[0], "server olmocr");     /* in name order */
    for (unsigned i = 0; i < 40; i++) {
        uint8_t h[16];
        const char *t;
        size_t len;
        char want[64];
        digest(h, i);
        snprintf(want, sizeof(want), "page %u read by %s", i, engines[i % 2]);
        assert_int_equal(sage_ocrpages_find(&p, h, engines[i % 2], &t, &len), 1);
        assert_int_equal(len, strlen(want));
        assert_memory_equal(t, want, len);
        assert_int_equal(sage_ocrpages_find(&p, h, engines[(i + 1) % 2], &t, &len), i == 3);
        assert_int_equal(sage_ocrpages_find(&p, h, "another engine", &t, &len), 0);
        h[7] ^= 1;
        assert_int_equal(sage_ocrpages_find(&p, h, engines[i % 2], &t, &len), 0);
    }
    uint8_t *d = NULL;
    size_t nd = 0;
    assert_int_equal(sage_ocrpages_digests(&p, engines[0], &d, &nd, &err), 0);
    assert_int_equal(nd, 21);     /* the even pages, and page 3 */
    for (size_t i = 1; i < nd; i++)
        assert_true(memcmp(d + 16 * (i - 1), d + 16 * i, 16) < 0);
    sage_free(d);
    assert_int_equal(sage_ocrpages_digests(&p, "another engine", &d, &nd, &err), 0);
    assert_int_equal(nd, 0);
    assert_null(d);
    copy_pages(&p, c);
    ut_assert_same_file(a, c);
    const uint8_t *hash;
    const char *engine, *text;
    size_t len;
    assert_int_equal(sage_ocrpages_page(&p, p.n, &hash, &engine, &text, &len, &err),
                     -SAGE_EINVAL);
    sage_ocrpages_release(&p);
    sage_reader_close(r);
}

/* A file with an OCR_PAGES section of the given records (record 0 being
 * the engine list as msgpack). */
static int open_forged(const char *path, const uint8_t *const *recs, const size_t *lens, size_t n,
                       struct sage_err *err)
{
    struct sage_writer_opts o = { .flags = SAGE_WRITE_NO_SYNC | SAGE_WRITE_NO_SHA256 };
    struct sage_writer *w = NULL;
    struct sage_rectab_builder t;
    struct sage_reader *r = NULL;
    struct sage_ocrpages p;
    sage_rectab_builder_init(&t, 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(sage_rectab_builder_add(&t, recs[i], lens[i], err), 0);
    size_t size = sage_rectab_builder_size(&t);
    uint8_t *buf = malloc(size);
    assert_non_null(buf);
    sage_rectab_builder_encode(&t, buf);
    assert_int_equal(sage_writer_open(path, &o, &w, err), 0);
    assert_int_equal(sage_writer_add(w, SAGE_SECTION_OCR_PAGES, SAGE_CODEC_ZSTD, buf, size, err), 0);
    assert_int_equal(sage_writer_commit(w, NULL, err), 0);
    sage_writer_free(w);
    sage_rectab_builder_release(&t);
    free(buf);
    assert_int_equal(sage_reader_open(path, SAGE_OPEN_VERIFY, &r, err), 0);
    int rc = sage_ocrpages_open(&p, r, err);
    if (rc == 0)
        sage_ocrpages_release(&p);
    sage_reader_close(r);
    return rc;
}

static void test_refusals(void **state)
{
    struct ut_scratch *s = *state;
    char path[PATH_MAX];
    struct sage_err err = { 0 };
    ut_path(path, sizeof(path), s->dir, "f.sage");
    static const uint8_t one[] = { 0x91, 0xa1, 'e' };          /* ["e"] */
    static const uint8_t two_bad[] = { 0x92, 0xa1, 'f', 0xa1, 'e' };  /* not sorted */
    static const uint8_t not_list[] = { 0xa1, 'e' };
    uint8_t p1[24] = { 1 }, p2[24] = { 2 }, e1[20] = { 3 };
    memcpy(p1 + 20, "text", 4);
    memcpy(p2 + 20, "more", 4);
    sage_put32(e1 + 16, 1);             /* engine 1 of 1 */
    const uint8_t *good[] = { one, p1, p2 };
    const size_t good_len[] = { sizeof(one), 24, 24 };
    assert_int_equal(open_forged(path, good, good_len, 3, &err), 0);
    const uint8_t *order[] = { one, p2, p1 };
    assert_int_equal(open_forged(path, order, good_len, 3, &err), -SAGE_ECORRUPT);
    assert_non_null(strstr(err.msg, "out of order"));
    const uint8_t *dup[] = { one, p1, p1 };
    assert_int_equal(open_forged(path, dup, good_len, 3, &err), -SAGE_ECORRUPT);
    const uint8_t *unknown[] = { one, e1 };
    const size_t unknown_len[] = { sizeof(one), 20 };
    assert_int_equal(open_forged(path, unknown, unknown_len, 2, &err), -SAGE_ECORRUPT);
    const size_t short_len[] = { sizeof(one), 19 };
    assert_int_equal(open_forged(path, unknown, short_len, 2, &err), -SAGE_ECORRUPT);
    const uint8_t *bad_list[] = { two_bad };
    const size_t bad_list_len[] = { sizeof(two_bad) };
    assert_int_equal(open_forged(path, bad_list, bad_list_len, 1, &err), -SAGE_ECORRUPT);
    const uint8_t *no_list[] = { not_list };
    const size_t no_list_len[] = { sizeof(not_list) };
    assert_int_equal(open_forged(path, no_list, no_list_len, 1, &err), -SAGE_ECORRUPT);
    assert_int_equal(open_forged(path, NULL, NULL, 0, &err), -SAGE_ECORRUPT);
}

/* Writes a file holding b's section (none when b is empty). */
static void write_builder(const char *path, struct sage_ocrpages_builder *b)
{
    struct sage_writer_opts o = { .flags = SAGE_WRITE_NO_SYNC | SAGE_WRITE_NO_SHA256 };
    struct sage_writer *w = NULL;
    struct sage_err err = { 0 };
    assert_int_equal(sage_writer_open(path, &o, &w, &err), 0);
    assert_int_equal(sage_ocrpages_write(b, w, &err), 0);
    assert_int_equal(sage_writer_commit(w, NULL, &err), 0);
    sage_writer_free(w);
}

/* A page read as empty (a blank scan) is stored too, so it is not read
 * again; the first page added may be that one. */
static void test_empty_text(void **state)
{
    struct ut_scratch *s = *state;
    char path[PATH_MAX];
    struct sage_err err = { 0 };
    struct sage_reader *r = NULL;
    struct sage_ocrpages p;
    struct sage_ocrpages_builder b;
    uint8_t h[16] = { 9 };
    const char *t;
    size_t len = 1;
    ut_path(path, sizeof(path), s->dir, "z.sage");
    sage_ocrpages_builder_init(&b);
    assert_int_equal(sage_ocrpages_add(&b, h, "server m", NULL, 0, &err), 0);
    write_builder(path, &b);
    sage_ocrpages_builder_release(&b);
    assert_int_equal(sage_reader_open(path, SAGE_OPEN_VERIFY, &r, &err), 0);
    assert_int_equal(sage_ocrpages_open(&p, r, &err), 0);
    assert_int_equal(sage_ocrpages_find(&p, h, "server m", &t, &len), 1);
    assert_int_equal(len, 0);
    sage_ocrpages_release(&p);
    sage_reader_close(r);
}

static void test_absent(void **state)
{
    struct ut_scratch *s = *state;
    char path[PATH_MAX];
    struct sage_err err = { 0 };
    struct sage_reader *r = NULL;
    struct sage_ocrpages p;
    struct sage_ocrpages_builder b;
    ut_path(path, sizeof(path), s->dir, "e.sage");
    sage_ocrpages_builder_init(&b);
    write_builder(path, &b);        /* no page: no section */
    sage_ocrpages_builder_release(&b);
    assert_int_equal(sage_reader_open(path, SAGE_OPEN_VERIFY, &r, &err), 0);
    assert_int_equal(sage_ocrpages_open(&p, r, &err), -SAGE_ENOTFOUND);
    sage_reader_close(r);
}

#define T(f) cmocka_unit_test_setup_teardown(f, ut_scratch_setup, ut_scratch_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_round_trip),
        T(test_refusals),
        T(test_empty_text),
        T(test_absent),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
