/* Record tables: builder, encoding, the checked view, the byte cap, damaged
 * tables, a table carried through an index section, and out-of-memory in
 * the builder. */
#include "util.h"

#include "reader.h"
#include "rectab.h"
#include "writer.h"

/* Record i of the test set: i bytes of a pattern (record 0 is empty). */
static size_t rec_len(size_t i)
{
    return (i * 37) % 301;
}

static void fill_rec(uint8_t *p, size_t i)
{
    for (size_t j = 0; j < rec_len(i); j++)
        p[j] = (uint8_t)(i * 7 + j);
}

static void build(struct sage_rectab_builder *b, size_t n)
{
    uint8_t rec[512];
    struct sage_err err = { 0 };
    for (size_t i = 0; i < n; i++) {
        fill_rec(rec, i);
        assert_int_equal(sage_rectab_builder_add(b, rec, rec_len(i), &err), 0);
    }
}

/* Encodes b into a new buffer (free()). */
static uint8_t *encode(const struct sage_rectab_builder *b, size_t *len)
{
    *len = sage_rectab_builder_size(b);
    uint8_t *out = malloc(*len);
    assert_non_null(out);
    sage_rectab_builder_encode(b, out);
    return out;
}

static void check_table(const uint8_t *buf, size_t len, size_t n)
{
    struct sage_rectab t;
    struct sage_err err = { 0 };
    uint8_t want[512];
    assert_int_equal(sage_rectab_open(&t, buf, len, &err), 0);
    assert_int_equal(t.n, n);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *rec = NULL;
        size_t rlen = 12345;
        assert_int_equal(sage_rectab_get(&t, i, &rec, &rlen, &err), 0);
        assert_int_equal(rlen, rec_len(i));
        fill_rec(want, i);
        if (rlen)
            assert_memory_equal(rec, want, rlen);
        assert_true(rec >= buf && rec + rlen <= buf + len);
    }
    const uint8_t *rec;
    size_t rlen;
    assert_int_equal(sage_rectab_get(&t, n, &rec, &rlen, &err), -SAGE_ENOTFOUND);
    assert_int_equal(sage_rectab_get(&t, UINT64_MAX, &rec, &rlen, &err), -SAGE_ENOTFOUND);
}

static void test_roundtrip(void **state)
{
    (void)state;
    struct sage_rectab_builder b;
    sage_rectab_builder_init(&b, 0);
    build(&b, 1000);
    assert_int_equal(b.n, 1000);
    size_t data_len = 0;
    for (size_t i = 0; i < 1000; i++)
        data_len += rec_len(i);
    size_t len;
    uint8_t *buf = encode(&b, &len);
    assert_int_equal(len, 8 + 8 * 1001 + data_len);
    /* the layout of rectab.h: u64 n | u64 off[n+1] | data */
    assert_int_equal(sage_le64(buf), 1000);
    assert_int_equal(sage_le64(buf + 8), 0);
    assert_int_equal(sage_le64(buf + 16), rec_len(0));
    assert_int_equal(sage_le64(buf + 8 + 8 * 1000), data_len);
    check_table(buf, len, 1000);
    free(buf);
    sage_rectab_builder_release(&b);
    sage_rectab_builder_release(&b);    /* twice is harmless */
    sage_rectab_builder_release(NULL);
}

static void test_zero_records(void **state)
{
    (void)state;
    struct sage_rectab_builder b;
    sage_rectab_builder_init(&b, 0);
    size_t len;
    uint8_t *buf = encode(&b, &len);
    assert_int_equal(len, 16);
    static const uint8_t zeros[16];
    assert_memory_equal(buf, zeros, 16);
    check_table(buf, len, 0);
    free(buf);
    sage_rectab_builder_release(&b);

    /* one empty record */
    sage_rectab_builder_init(&b, 0);
    assert_int_equal(sage_rectab_builder_add(&b, NULL, 0, NULL), 0);
    buf = encode(&b, &len);
    assert_int_equal(len, 24);
    check_table(buf, len, 1);
    free(buf);
    sage_rectab_builder_release(&b);
}

static void test_byte_cap(void **state)
{
    (void)state;
    struct sage_rectab_builder b;
    struct sage_err err = { 0 };
    uint8_t rec[100] = { 0 };
    sage_rectab_builder_init(&b, 100);
    assert_int_equal(sage_rectab_builder_add(&b, rec, 60, &err), 0);
    assert_int_equal(sage_rectab_builder_add(&b, rec, 41, &err), -SAGE_ELIMIT);
    assert_int_equal(err.code, SAGE_ELIMIT);
    assert_non_null(strstr(err.msg, "100"));
    assert_int_equal(b.n, 1);           /* the refused record left no trace */
    assert_int_equal(b.data_len, 60);
    assert_int_equal(sage_rectab_builder_add(&b, rec, 40, &err), 0);   /* exactly the cap */
    assert_int_equal(sage_rectab_builder_add(&b, rec, 1, &err), -SAGE_ELIMIT);
    assert_int_equal(sage_rectab_builder_add(&b, rec, 0, &err), 0);    /* empty still fits */
    assert_int_equal(sage_rectab_builder_add(&b, rec, SIZE_MAX, &err), -SAGE_ELIMIT);
    assert_int_equal(b.n, 3);
    size_t len;
    uint8_t *buf = encode(&b, &len);
    struct sage_rectab t;
    assert_int_equal(sage_rectab_open(&t, buf, len, &err), 0);
    assert_int_equal(t.n, 3);
    assert_int_equal(t.data_len, 100);
    free(buf);
    sage_rectab_builder_release(&b);

    /* a single record over the cap */
    sage_rectab_builder_init(&b, 10);
    assert_int_equal(sage_rectab_builder_add(&b, rec, 11, NULL), -SAGE_ELIMIT);
    assert_int_equal(b.n, 0);
    sage_rectab_builder_release(&b);
}

static void test_corrupt_tables(void **state)
{
    (void)state;
    struct sage_rectab_builder b;
    struct sage_rectab t;
    struct sage_err err = { 0 };
    const uint8_t *rec;
    size_t rlen, len;
    sage_rectab_builder_init(&b, 0);
    build(&b, 5);
    uint8_t *good = encode(&b, &len);
    sage_rectab_builder_release(&b);
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    uint64_t data_len = len - 8 - 8 * 6;

    /* too short to hold a count and one offset */
    for (size_t l = 0; l < 16; l++)
        assert_int_equal(sage_rectab_open(&t, good, l, &err), -SAGE_ECORRUPT);
    /* counts the bytes cannot hold */
    static const uint64_t bad_counts[] = { 6 + 1000, UINT64_MAX, UINT64_MAX / 8, 1ull << 61,
                                           (1ull << 61) + 5 };
    for (size_t i = 0; i < sizeof(bad_counts) / sizeof(*bad_counts); i++) {
        memcpy(buf, good, len);
        sage_put64(buf, bad_counts[i]);
        if (sage_rectab_open(&t, buf, len, &err) != -SAGE_ECORRUPT)
            fail_msg("count %llu accepted", (unsigned long long)bad_counts[i]);
        assert_non_null(strstr(err.msg, "count"));
    }
    /* the largest count whose offset table fits: the offsets then fail */
    memcpy(buf, good, len);
    sage_put64(buf, (len - 16) / 8);
    if (sage_rectab_open(&t, buf, len, &err) == 0)
        for (uint64_t i = 0; i < t.n; i++)
            (void)sage_rectab_get(&t, i, &rec, &rlen, &err);   /* must stay in bounds */
    /* first offset not zero */
    memcpy(buf, good, len);
    sage_put64(buf + 8, 1);
    assert_int_equal(sage_rectab_open(&t, buf, len, &err), -SAGE_ECORRUPT);
    /* last offset past the data */
    memcpy(buf, good, len);
    sage_put64(buf + 8 + 8 * 5, data_len + 1);
    assert_int_equal(sage_rectab_open(&t, buf, len, &err), -SAGE_ECORRUPT);
    assert_non_null(strstr(err.msg, "offsets"));
    sage_put64(buf + 8 + 8 * 5, UINT64_MAX);
    assert_int_equal(sage_rectab_open(&t, buf, len, &err), -SAGE_ECORRUPT);
    /* a truncated table */
    assert_int_equal(sage_rectab_open(&t, good, len - 1, &err), -SAGE_ECORRUPT);

    /* inner offsets are checked per record */
    memcpy(buf, good, len);
    sage_put64(buf + 8 + 8 * 2, data_len + 7);  /* off[2] past the data */
    assert_int_equal(sage_rectab_open(&t, buf, len, &err), 0);
    assert_int_equal(sage_rectab_get(&t, 0, &rec, &rlen, &err), 0);
    assert_int_equal(sage_rectab_get(&t, 1, &rec, &rlen, &err), -SAGE_ECORRUPT);
    assert_int_equal(sage_rectab_get(&t, 2, &rec, &rlen, &err), -SAGE_ECORRUPT);
    assert_int_equal(sage_rectab_get(&t, 3, &rec, &rlen, &err), 0);
    memcpy(buf, good, len);
    sage_put64(buf + 8 + 8 * 3, sage_le64(good + 8 + 8 * 1));   /* off[3] < off[2] */
    assert_int_equal(sage_rectab_open(&t, buf, len, &err), 0);
    assert_int_equal(sage_rectab_get(&t, 2, &rec, &rlen, &err), -SAGE_ECORRUPT);
    assert_non_null(strstr(err.msg, "record 2"));
    assert_int_equal(sage_rectab_get(&t, 4, &rec, &rlen, &err), 0);
    free(buf);
    free(good);
}

/* A table written as a compressed DOCS section and read back. */
static void test_through_an_index(void **state)
{
    struct ut_scratch *s = *state;
    struct sage_rectab_builder b;
    struct sage_err err = { 0 };
    char path[PATH_MAX];
    sage_rectab_builder_init(&b, 0);
    build(&b, 3000);
    size_t len;
    uint8_t *buf = encode(&b, &len);
    sage_rectab_builder_release(&b);
    ut_path(path, sizeof(path), s->dir, "t.sage");
    struct sage_writer *w = NULL;
    assert_int_equal(sage_writer_open(path, &(struct sage_writer_opts){ .flags =
                                      SAGE_WRITE_NO_SYNC }, &w, &err), 0);
    assert_int_equal(sage_writer_add(w, SAGE_SECTION_DOCS, SAGE_CODEC_ZSTD, buf, len, &err), 0);
    assert_int_equal(sage_writer_add(w, SAGE_SECTION_TEXT, SAGE_CODEC_RAW, buf, len, &err), 0);
    assert_int_equal(sage_writer_commit(w, NULL, &err), 0);
    sage_writer_free(w);
    free(buf);
    struct sage_reader *r = NULL;
    assert_int_equal(sage_reader_open(path, SAGE_OPEN_VERIFY, &r, &err), 0);
    for (uint32_t kind = SAGE_SECTION_DOCS; kind <= SAGE_SECTION_TEXT; kind++) {
        struct sage_bytes bytes;
        assert_int_equal(sage_reader_load(r, sage_reader_find(r, kind), 0, &bytes, &err), 0);
        check_table(bytes.data, bytes.len, 3000);
        sage_bytes_release(&bytes);
    }
    sage_reader_close(r);
}

static void test_oom_builder(void **state)
{
    (void)state;
    uint8_t rec[512];
    long n;
    for (n = 0; n < 1000; n++) {
        struct sage_rectab_builder b;
        struct sage_err err = { 0 };
        int rc = 0;
        ut_oom_arm(n);
        sage_rectab_builder_init(&b, 0);
        for (size_t i = 0; rc == 0 && i < 700; i++) {   /* several growths of both arrays */
            fill_rec(rec, i);
            rc = sage_rectab_builder_add(&b, rec, rec_len(i), &err);
            if (rc < 0) {
                /* the table stays usable up to the refused record */
                assert_int_equal(b.n, i);
                size_t len;
                uint8_t *buf = encode(&b, &len);
                check_table(buf, len, i);
                free(buf);
            }
        }
        sage_rectab_builder_release(&b);
        int failed = ut_oom_state()->failed;
        long live = ut_oom_disarm();
        if (live != 0)
            fail_msg("allocation %ld failing leaks %ld blocks", n, live);
        if (!failed) {
            assert_int_equal(rc, 0);
            break;
        }
        assert_int_equal(rc, -SAGE_ENOMEM);
        assert_int_equal(err.code, SAGE_ENOMEM);
    }
    assert_true(n > 4 && n < 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_zero_records),
        cmocka_unit_test(test_byte_cap),
        cmocka_unit_test(test_corrupt_tables),
        cmocka_unit_test_setup_teardown(test_through_an_index, ut_scratch_setup,
                                        ut_scratch_teardown),
        cmocka_unit_test(test_oom_builder),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
