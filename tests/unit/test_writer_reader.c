/* Writer and reader together: round trips for every section kind and codec,
 * streaming, big sections, alignment, the sha256 sidecar, determinism,
 * misuse, crash safety (temporaries, stale ones, the final name), injected
 * I/O failures through struct sage_io and injected out-of-memory. Damaged
 * files are test_corruption.c's business. */
#include "util.h"

#include <sys/file.h>

#include "reader.h"
#include "stamp.h"
#include "writer.h"

#define KIND_UNKNOWN 999u

/* One section to write. */
struct sec {
    uint32_t kind;
    enum sage_codec codec;
    const uint8_t *data;
    size_t len;
};

/* Writes secs into path with the given writer flags; returns the writer's rc. */
static int write_index(const char *path, const struct sec *secs, size_t n, unsigned flags,
                       uint32_t max_sections, char *hex, struct sage_err *err)
{
    struct sage_writer_opts o = { .max_sections = max_sections, .flags = flags };
    struct sage_writer *w = NULL;
    int rc = sage_writer_open(path, &o, &w, err);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = sage_writer_add(w, secs[i].kind, secs[i].codec, secs[i].data, secs[i].len, err);
    if (rc == 0)
        rc = sage_writer_commit(w, hex, err);
    sage_writer_free(w);
    return rc;
}

/* Opens path with flags and checks every section against secs. */
static void check_index(const char *path, unsigned flags, const struct sec *secs, size_t n)
{
    struct sage_err err = { 0 };
    struct sage_reader *r = NULL;
    int rc = sage_reader_open(path, flags, &r, &err);
    if (rc != 0)
        fail_msg("open '%s': %s", path, sage_err_msg(&err, rc));
    const struct sage_reader_info *in = sage_reader_info(r);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(in->major, SAGE_FORMAT_MAJOR);
    assert_int_equal(in->minor, SAGE_FORMAT_MINOR);
    assert_int_equal(in->n_sections, n);
    assert_int_equal(in->file_size, (uint64_t)st.st_size);
    assert_int_equal(in->header_len % SAGE_PAGE, 0);
    assert_true(in->header_len >= SAGE_HDR_FIXED + n * SAGE_SEC_ENTRY);
    uint64_t prev_end = in->header_len;
    for (uint32_t i = 0; i < n; i++) {
        const struct sage_section *s = sage_reader_section(r, i);
        assert_non_null(s);
        assert_int_equal(s->kind, secs[i].kind);
        assert_int_equal(s->codec, secs[i].codec);
        assert_int_equal(s->raw_len, secs[i].len);
        assert_int_equal(s->off % SAGE_PAGE, 0);
        assert_true(s->off >= prev_end);
        /* tightly packed: the next page boundary after the previous section */
        assert_int_equal(s->off, (prev_end + SAGE_PAGE - 1) / SAGE_PAGE * SAGE_PAGE);
        prev_end = s->off + s->len;
        if (secs[i].codec == SAGE_CODEC_RAW)
            assert_int_equal(s->len, secs[i].len);
        struct sage_bytes b;
        rc = sage_reader_load(r, s, 0, &b, &err);
        if (rc != 0)
            fail_msg("load section %u: %s", i, sage_err_msg(&err, rc));
        assert_int_equal(b.len, secs[i].len);
        if (b.len)
            assert_memory_equal(b.data, secs[i].data, b.len);
        sage_bytes_release(&b);
        assert_null(b.owned);
    }
    assert_int_equal(in->file_size, prev_end + SAGE_FTR_LEN);
    assert_null(sage_reader_section(r, (uint32_t)n));
    rc = sage_reader_verify(r, &err);
    if (rc != 0)
        fail_msg("verify '%s': %s", path, sage_err_msg(&err, rc));
    sage_reader_close(r);
}

/* ---- round trips ---- */

static void test_roundtrip_kinds_codecs(void **state)
{
    struct ut_scratch *s = *state;
    static const uint32_t kinds[] = { SAGE_SECTION_BUILD, SAGE_SECTION_DOCS, SAGE_SECTION_TEXT,
                                      KIND_UNKNOWN };
    static const enum sage_codec codecs[] = { SAGE_CODEC_RAW, SAGE_CODEC_ZSTD };
    struct sec secs[8];
    uint8_t *bufs[8];
    char path[PATH_MAX];
    struct sage_err err = { 0 };
    size_t n = 0;
    for (size_t k = 0; k < 4; k++)
        for (size_t c = 0; c < 2; c++) {
            size_t len = 1000 + 4093 * n;   /* crosses page boundaries differently */
            bufs[n] = malloc(len);
            assert_non_null(bufs[n]);
            ut_fill(bufs[n], len, (uint32_t)n + 1);
            secs[n] = (struct sec){ kinds[k], codecs[c], bufs[n], len };
            n++;
        }
    ut_path(path, sizeof(path), s->dir, "all.sage");
    int rc = write_index(path, secs, n, SAGE_WRITE_NO_SYNC, 0, NULL, &err);
    if (rc != 0)
        fail_msg("write: %s", sage_err_msg(&err, rc));
    check_index(path, 0, secs, n);
    check_index(path, SAGE_OPEN_VERIFY, secs, n);
    check_index(path, SAGE_OPEN_VERIFY | SAGE_OPEN_POPULATE, secs, n);

    /* find returns the first section of a kind, unknown kinds included */
    struct sage_reader *r = NULL;
    assert_int_equal(sage_reader_open(path, 0, &r, &err), 0);
    for (size_t k = 0; k < 4; k++) {
        const struct sage_section *f = sage_reader_find(r, kinds[k]);
        assert_non_null(f);
        assert_ptr_equal(f, sage_reader_section(r, (uint32_t)(2 * k)));
    }
    assert_null(sage_reader_find(r, 12345));
    assert_string_equal(sage_section_kind_name(SAGE_SECTION_TEXT), "text");
    assert_null(sage_section_kind_name(KIND_UNKNOWN));
    assert_string_equal(sage_codec_name(SAGE_CODEC_ZSTD), "zstd");
    assert_null(sage_codec_name(7));

    /* the cap on decoded size: equal passes, one less is a limit error */
    const struct sage_section *z = sage_reader_section(r, 1);
    struct sage_bytes b;
    assert_int_equal(sage_reader_load(r, z, (size_t)z->raw_len, &b, &err), 0);
    sage_bytes_release(&b);
    assert_int_equal(sage_reader_load(r, z, (size_t)z->raw_len - 1, &b, &err), -SAGE_ELIMIT);
    assert_null(b.data);
    assert_int_equal(sage_reader_load(r, sage_reader_section(r, 0), 10, &b, &err),
                     -SAGE_ELIMIT);

    /* the same bytes through open_mem */
    size_t len;
    uint8_t *img = ut_read_file(path, &len);
    struct sage_reader *m = NULL;
    assert_int_equal(sage_reader_open_mem(img, len, SAGE_OPEN_VERIFY, &m, &err), 0);
    /* the same header fields; only a file has fstat identity (stamp.h) */
    struct sage_reader_info im = *sage_reader_info(m), ir = *sage_reader_info(r);
    assert_int_equal(im.st.ino, 0);
    assert_int_equal(ir.st.size, len);
    assert_true(ir.st.ino != 0 && ir.st.ctime_ns > 0);
    memset(&ir.st, 0, sizeof(ir.st));
    assert_memory_equal(&im, &ir, sizeof(im));
    assert_memory_equal(sage_reader_base(r), img, len);
    sage_reader_close(m);
    sage_reader_close(r);
    free(img);
    for (size_t i = 0; i < n; i++)
        free(bufs[i]);
}

static void test_empty_sections(void **state)
{
    struct ut_scratch *s = *state;
    static const uint8_t one[] = { 'x' };
    const struct sec secs[] = {
        { SAGE_SECTION_BUILD, SAGE_CODEC_RAW, NULL, 0 },
        { SAGE_SECTION_BUILD, SAGE_CODEC_ZSTD, NULL, 0 },
        { SAGE_SECTION_DOCS, SAGE_CODEC_RAW, NULL, 0 },
        { SAGE_SECTION_DOCS, SAGE_CODEC_ZSTD, NULL, 0 },
        { SAGE_SECTION_TEXT, SAGE_CODEC_RAW, one, 1 },
        { SAGE_SECTION_TEXT, SAGE_CODEC_ZSTD, NULL, 0 },
        { KIND_UNKNOWN, SAGE_CODEC_ZSTD, NULL, 0 },
        { KIND_UNKNOWN, SAGE_CODEC_RAW, NULL, 0 },    /* last, right before the footer */
    };
    char path[PATH_MAX];
    struct sage_err err = { 0 };
    ut_path(path, sizeof(path), s->dir, "empty.sage");
    int rc = write_index(path, secs, 8, SAGE_WRITE_NO_SYNC, 0, NULL, &err);
    if (rc != 0)
        fail_msg("write: %s", sage_err_msg(&err, rc));
    check_index(path, SAGE_OPEN_VERIFY, secs, 8);

    /* begin + end with no write at all */
    struct sage_writer *w = NULL;
    assert_int_equal(sage_writer_open(path, &(struct sage_writer_opts){ .flags =
                                      SAGE_WRITE_NO_SYNC }, &w, &err), 0);
    assert_int_equal(sage_writer_begin(w, SAGE_SECTION_DOCS, SAGE_CODEC_ZSTD, &err), 0);
    assert_int_equal(sage_writer_end(w, &err), 0);
    assert_int_equal(sage_writer_begin(w, SAGE_SECTION_TEXT, SAGE_CODEC_RAW, &err), 0);
    assert_int_equal(sage_writer_write(w, NULL, 0, &err), 0);
    assert_int_equal(sage_writer_end(w, &err), 0);
    assert_int_equal(sage_writer_commit(w, NULL, &err), 0);
    sage_writer_free(w);
    check_index(path, SAGE_OPEN_VERIFY, (const struct sec[]){
        { SAGE_SECTION_DOCS, SAGE_CODEC_ZSTD, NULL, 0 },
        { SAGE_SECTION_TEXT, SAGE_CODEC_RAW, NULL, 0 } }, 2);
}

static void test_no_sections(void **state)
{
    struct ut_scratch *s = *state;
    char path[PATH_MAX];
    struct sage_err err = { 0 };
    ut_path(path, sizeof(path), s->dir, "none.sage");
    assert_int_equal(write_index(path, NULL, 0, SAGE_WRITE_NO_SYNC, 0, NULL, &err), 0);
    check_index(path, SAGE_OPEN_VERIFY, NULL, 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, SAGE_PAGE + SAGE_FTR_LEN);
}

/* Feeds data in pieces of 0..37 bytes. */
static int write_streamed(struct sage_writer *w, uint32_t kind, enum sage_codec codec,
                          const uint8_t *data, size_t len, struct sage_err *err)
{
    int rc = sage_writer_begin(w, kind, codec, err);
    size_t i = 0, step = 0;
    while (rc == 0 && i < len) {
        size_t k = step++ % 38;
        if (k > len - i)
            k = len - i;
        rc = sage_writer_write(w, data + i, k, err);
        i += k;
    }
    if (rc == 0)
        rc = sage_writer_end(w, err);
    return rc;
}

static void test_streamed_small_writes(void **state)
{
    struct ut_scratch *s = *state;
    const size_t len = 300000;
    uint8_t *data = malloc(len);
    char a[PATH_MAX], b[PATH_MAX];
    struct sage_err err = { 0 };
    struct sage_writer *w = NULL;
    assert_non_null(data);
    ut_fill(data, len, 77);
    const struct sec secs[] = {
        { SAGE_SECTION_TEXT, SAGE_CODEC_RAW, data, len },
        { SAGE_SECTION_DOCS, SAGE_CODEC_ZSTD, data, len },
        { KIND_UNKNOWN, SAGE_CODEC_RAW, data + 1, len - 1 },
    };

    ut_path(a, sizeof(a), s->dir, "streamed.sage");
    assert_int_equal(sage_writer_open(a, &(struct sage_writer_opts){ .flags =
                                      SAGE_WRITE_NO_SYNC }, &w, &err), 0);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(write_streamed(w, secs[i].kind, secs[i].codec, secs[i].data,
                                        secs[i].len, &err), 0);
    assert_int_equal(sage_writer_commit(w, NULL, &err), 0);
    sage_writer_free(w);
    check_index(a, SAGE_OPEN_VERIFY, secs, 3);

    /* raw sections: the same file whether streamed or written at once */
    const struct sec raw[] = { secs[0], secs[2] };
    ut_path(a, sizeof(a), s->dir, "raw-streamed.sage");
    ut_path(b, sizeof(b), s->dir, "raw-once.sage");
    assert_int_equal(sage_writer_open(a, &(struct sage_writer_opts){ .flags =
                                      SAGE_WRITE_NO_SYNC }, &w, &err), 0);
    for (size_t i = 0; i < 2; i++)
        assert_int_equal(write_streamed(w, raw[i].kind, raw[i].codec, raw[i].data, raw[i].len,
                                        &err), 0);
    assert_int_equal(sage_writer_commit(w, NULL, &err), 0);
    sage_writer_free(w);
    assert_int_equal(write_index(b, raw, 2, SAGE_WRITE_NO_SYNC, 0, NULL, &err), 0);
    ut_assert_same_file(a, b);
    free(data);
}

static void test_multi_mib_sections(void **state)
{
    struct ut_scratch *s = *state;
    const size_t len = (3u << 20) + 12345;  /* three write buffers and a bit */
    uint8_t *data = malloc(len);
    char path[PATH_MAX];
    struct sage_err err = { 0 };
    assert_non_null(data);
    ut_fill(data, len, 5);
    const struct sec secs[] = {
        { SAGE_SECTION_TEXT, SAGE_CODEC_RAW, data, len },
        { SAGE_SECTION_DOCS, SAGE_CODEC_ZSTD, data, len },
        { KIND_UNKNOWN, SAGE_CODEC_ZSTD, data + 7, len - 7 },
    };
    ut_path(path, sizeof(path), s->dir, "big.sage");
    int rc = write_index(path, secs, 3, SAGE_WRITE_NO_SYNC, 0, NULL, &err);
    if (rc != 0)
        fail_msg("write: %s", sage_err_msg(&err, rc));
    check_index(path, 0, secs, 3);
    check_index(path, SAGE_OPEN_VERIFY, secs, 3);
    free(data);
}

static void test_counts_in_header(void **state)
{
    struct ut_scratch *s = *state;
    char path[PATH_MAX];
    struct sage_err err = { 0 };
    struct sage_writer *w = NULL;
    struct sage_reader *r = NULL;
    ut_path(path, sizeof(path), s->dir, "counts.sage");

    assert_int_equal(write_index(path, NULL, 0, SAGE_WRITE_NO_SYNC, 0, NULL, &err), 0);
    assert_int_equal(sage_reader_open(path, SAGE_OPEN_VERIFY, &r, &err), 0);
    assert_int_equal(sage_reader_info(r)->n_docs, 0);
    assert_int_equal(sage_reader_info(r)->n_chunks, 0);
    sage_reader_close(r);

    assert_int_equal(sage_writer_open(path, &(struct sage_writer_opts){ .flags =
                                      SAGE_WRITE_NO_SYNC }, &w, &err), 0);
    sage_writer_set_counts(w, 1, 2);
    assert_int_equal(sage_writer_add(w, SAGE_SECTION_BUILD, SAGE_CODEC_RAW, "b", 1, &err), 0);
    sage_writer_set_counts(w, (1ull << 40) + 5, 0xfedcba9876543210ull);   /* last call wins */
    assert_int_equal(sage_writer_commit(w, NULL, &err), 0);
    sage_writer_free(w);
    assert_int_equal(sage_reader_open(path, SAGE_OPEN_VERIFY, &r, &err), 0);
    assert_int_equal(sage_reader_info(r)->n_docs, (1ull << 40) + 5);
    assert_int_equal(sage_reader_info(r)->n_chunks, 0xfedcba9876543210ull);
    /* and where layout.h says they live */
    assert_int_equal(sage_le64(sage_reader_base(r) + SAGE_HDR_NDOCS), (1ull << 40) + 5);
    assert_int_equal(sage_le64(sage_reader_base(r) + SAGE_HDR_NCHUNKS), 0xfedcba9876543210ull);
    sage_reader_close(r);
}

static void test_page_alignment(void **state)
{
    struct ut_scratch *s = *state;
    static const size_t lens[] = { 1, 4095, 4096, 4097, 0, 0, 5, 8192 };
    uint8_t *data = malloc(8192);
    struct sec secs[8];
    char path[PATH_MAX];
    struct sage_err err = { 0 };
    assert_non_null(data);
    ut_fill(data, 8192, 9);
    for (size_t i = 0; i < 8; i++)
        secs[i] = (struct sec){ (uint32_t)(i % 3) + 1, i % 2 ? SAGE_CODEC_ZSTD : SAGE_CODEC_RAW,
                                data, lens[i] };
    ut_path(path, sizeof(path), s->dir, "aligned.sage");
    /* 200 entries need 64 + 200 * 48 = 9664 header bytes: three pages */
    assert_int_equal(write_index(path, secs, 8, SAGE_WRITE_NO_SYNC, 200, NULL, &err), 0);
    check_index(path, SAGE_OPEN_VERIFY, secs, 8);
    struct sage_reader *r = NULL;
    assert_int_equal(sage_reader_open(path, 0, &r, &err), 0);
    assert_int_equal(sage_reader_info(r)->header_len, 3 * SAGE_PAGE);
    assert_int_equal(sage_reader_section(r, 0)->off, 3 * SAGE_PAGE);
    for (uint32_t i = 0; i < 8; i++)
        assert_int_equal(sage_reader_section(r, i)->off % SAGE_PAGE, 0);
    /* a raw section of exactly one page leaves no padding before the next */
    assert_int_equal(sage_reader_section(r, 3)->off, sage_reader_section(r, 2)->off + SAGE_PAGE);
    sage_reader_close(r);
    free(data);
}

/* ---- the sidecar and determinism ---- */

static void test_sha256_sidecar(void **state)
{
    struct ut_scratch *s = *state;
    char path[PATH_MAX], side[PATH_MAX], hex[65] = { 0 }, want[65], line[256], cmd[PATH_MAX + 64];
    uint8_t data[5000];
    struct sage_err err = { 0 };
    ut_fill(data, sizeof(data), 3);
    const struct sec secs[] = { { SAGE_SECTION_BUILD, SAGE_CODEC_ZSTD, data, sizeof(data) },
                                { SAGE_SECTION_TEXT, SAGE_CODEC_RAW, data, 10 } };
    ut_path(path, sizeof(path), s->dir, "side.sage");
    ut_path(side, sizeof(side), s->dir, "side.sage.sha256");
    assert_int_equal(write_index(path, secs, 2, 0, 0, hex, &err), 0);   /* with real fsync */
    size_t len, slen;
    uint8_t *img = ut_read_file(path, &len);
    ut_sha256_hex(img, len, want);
    assert_string_equal(hex, want);
    char *sc = (char *)ut_read_file(side, &slen);
    snprintf(line, sizeof(line), "%s  side.sage\n", want);
    assert_string_equal(sc, line);
    snprintf(cmd, sizeof(cmd), "cd '%s' && sha256sum --status -c side.sage.sha256", s->dir);
    assert_int_equal(system(cmd), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    assert_int_equal(stat(side, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    free(sc);
    free(img);

    /* the check can fail: damage one byte */
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "\x01", 1, SAGE_PAGE + 3), 1);
    close(fd);
    assert_int_not_equal(system(cmd), 0);
}

static void test_no_sha256_flag(void **state)
{
    struct ut_scratch *s = *state;
    char path[PATH_MAX], side[PATH_MAX], hex[65] = { 0 }, want[65];
    struct sage_err err = { 0 };
    const struct sec secs[] = { { SAGE_SECTION_BUILD, SAGE_CODEC_RAW, (const uint8_t *)"{}", 2 } };
    ut_path(path, sizeof(path), s->dir, "noside.sage");
    ut_path(side, sizeof(side), s->dir, "noside.sage.sha256");
    assert_int_equal(write_index(path, secs, 1, SAGE_WRITE_NO_SHA256 | SAGE_WRITE_NO_SYNC, 0,
                                 hex, &err), 0);
    assert_true(ut_exists(path));
    assert_false(ut_exists(side));
    size_t len;
    uint8_t *img = ut_read_file(path, &len);
    ut_sha256_hex(img, len, want);
    assert_string_equal(hex, want);     /* still reported to the caller */
    free(img);
    assert_int_equal(ut_count_other(s->dir, (const char *const[]){ "noside.sage", NULL }, NULL,
                                    0), 0);
}

static void test_deterministic_output(void **state)
{
    struct ut_scratch *s = *state;
    const size_t len = 200000;
    uint8_t *data = malloc(len);
    char a[PATH_MAX], b[PATH_MAX], ha[65], hb[65], hc[65];
    struct sage_err err = { 0 };
    assert_non_null(data);
    ut_fill(data, len, 11);
    const struct sec secs[] = {
        { SAGE_SECTION_BUILD, SAGE_CODEC_RAW, data, 333 },
        { SAGE_SECTION_DOCS, SAGE_CODEC_ZSTD, data, len },
        { SAGE_SECTION_TEXT, SAGE_CODEC_ZSTD, data + 5, len / 2 },
        { KIND_UNKNOWN, SAGE_CODEC_RAW, data, 9999 },
    };
    ut_path(a, sizeof(a), s->dir, "a.sage");
    ut_path(b, sizeof(b), s->dir, "b.sage");
    assert_int_equal(write_index(a, secs, 4, SAGE_WRITE_NO_SYNC, 0, ha, &err), 0);
    assert_int_equal(write_index(b, secs, 4, SAGE_WRITE_NO_SYNC, 0, hb, &err), 0);
    assert_string_equal(ha, hb);
    size_t la, lb;
    uint8_t *ia = ut_read_file(a, &la), *ib = ut_read_file(b, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(ia, ib, la);
    free(ib);
    /* rewriting the same name gives the same bytes again */
    assert_int_equal(write_index(a, secs, 4, SAGE_WRITE_NO_SYNC, 0, hc, &err), 0);
    assert_string_equal(ha, hc);
    ib = ut_read_file(a, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(ia, ib, la);
    free(ia);
    free(ib);
    free(data);
}

/* ---- misuse ---- */

static void test_writer_misuse(void **state)
{
    struct ut_scratch *s = *state;
    char path[PATH_MAX];
    struct sage_err err = { 0 };
    struct sage_writer *w = NULL;
    const struct sage_writer_opts o = { .flags = SAGE_WRITE_NO_SYNC };
    ut_path(path, sizeof(path), s->dir, "misuse.sage");

    assert_int_equal(sage_writer_open(path, &o, &w, &err), 0);
    assert_int_equal(sage_writer_write(w, "x", 1, &err), -SAGE_EINVAL);
    assert_int_equal(err.code, SAGE_EINVAL);
    assert_non_null(strstr(err.msg, "outside"));
    assert_int_equal(sage_writer_end(w, &err), -SAGE_EINVAL);
    assert_int_equal(sage_writer_begin(w, 1, (enum sage_codec)7, &err), -SAGE_EINVAL);
    assert_int_equal(sage_writer_begin(w, SAGE_SECTION_BUILD, SAGE_CODEC_RAW, &err), 0);
    assert_int_equal(sage_writer_begin(w, SAGE_SECTION_DOCS, SAGE_CODEC_RAW, &err), -SAGE_EINVAL);
    assert_int_equal(sage_writer_add(w, SAGE_SECTION_DOCS, SAGE_CODEC_RAW, "x", 1, &err),
                     -SAGE_EINVAL);
    assert_int_equal(sage_writer_write(w, "abc", 3, &err), 0);   /* still usable */
    memset(&err, 0, sizeof(err));
    assert_int_equal(sage_writer_commit(w, NULL, &err), -SAGE_EINVAL);
    assert_non_null(strstr(err.msg, "open"));
    /* a failed commit removed the temporary; the writer is finished */
    assert_false(ut_exists(path));
    assert_int_equal(ut_count_other(s->dir, NULL, NULL, 0), 0);
    assert_int_equal(sage_writer_commit(w, NULL, &err), -SAGE_EINVAL);
    sage_writer_free(w);
    assert_false(ut_exists(path));

    /* commit twice */
    assert_int_equal(sage_writer_open(path, &o, &w, &err), 0);
    assert_int_equal(sage_writer_commit(w, NULL, &err), 0);
    assert_int_equal(sage_writer_commit(w, NULL, &err), -SAGE_EINVAL);
    sage_writer_free(w);
    check_index(path, SAGE_OPEN_VERIFY, NULL, 0);

    /* bad paths and options */
    char bad[PATH_MAX + 32];
    snprintf(bad, sizeof(bad), "%s/", s->dir);
    assert_int_equal(sage_writer_open(bad, &o, &w, &err), -SAGE_EINVAL);
    assert_null(w);
    ut_path(bad, sizeof(bad), s->dir, "no-such-dir/x.sage");
    memset(&err, 0, sizeof(err));
    assert_int_equal(sage_writer_open(bad, &o, &w, &err), -SAGE_EIO);
    assert_null(w);
    assert_non_null(strstr(err.msg, s->dir));
    const struct sage_writer_opts huge = { .max_sections = (1u << 20) + 1 };
    assert_int_equal(sage_writer_open(path, &huge, &w, NULL), -SAGE_EINVAL);   /* err optional */
    assert_null(w);
    sage_writer_free(NULL);
}

static void test_max_sections(void **state)
{
    struct ut_scratch *s = *state;
    char path[PATH_MAX];
    struct sage_err err = { 0 };
    struct sage_writer *w = NULL;
    ut_path(path, sizeof(path), s->dir, "max.sage");
    assert_int_equal(sage_writer_open(path, &(struct sage_writer_opts){ .max_sections = 2,
                                      .flags = SAGE_WRITE_NO_SYNC }, &w, &err), 0);
    assert_int_equal(sage_writer_add(w, SAGE_SECTION_BUILD, SAGE_CODEC_RAW, "a", 1, &err), 0);
    assert_int_equal(sage_writer_add(w, SAGE_SECTION_DOCS, SAGE_CODEC_ZSTD, "b", 1, &err), 0);
    assert_int_equal(sage_writer_begin(w, SAGE_SECTION_TEXT, SAGE_CODEC_RAW, &err), -SAGE_ELIMIT);
    assert_int_equal(err.code, SAGE_ELIMIT);
    assert_int_equal(sage_writer_add(w, SAGE_SECTION_TEXT, SAGE_CODEC_RAW, "c", 1, &err),
                     -SAGE_ELIMIT);
    assert_int_equal(sage_writer_write(w, "c", 1, &err), -SAGE_EINVAL);
    assert_int_equal(sage_writer_commit(w, NULL, &err), 0);   /* the two that fit */
    sage_writer_free(w);
    check_index(path, SAGE_OPEN_VERIFY, (const struct sec[]){
        { SAGE_SECTION_BUILD, SAGE_CODEC_RAW, (const uint8_t *)"a", 1 },
        { SAGE_SECTION_DOCS, SAGE_CODEC_ZSTD, (const uint8_t *)"b", 1 } }, 2);
}

static void test_relative_path(void **state)
{
    struct ut_scratch *s = *state;
    char cwd[PATH_MAX], path[PATH_MAX];
    struct sage_err err = { 0 };
    const struct sec secs[] = { { SAGE_SECTION_TEXT, SAGE_CODEC_RAW, (const uint8_t *)"hi", 2 } };
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(s->dir), 0);
    int rc = write_index("rel.sage", secs, 1, SAGE_WRITE_NO_SYNC, 0, NULL, &err);
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(rc, 0);
    ut_path(path, sizeof(path), s->dir, "rel.sage");
    check_index(path, SAGE_OPEN_VERIFY, secs, 1);
    ut_path(path, sizeof(path), s->dir, "rel.sage.sha256");
    assert_true(ut_exists(path));
}

static void test_reader_open_missing(void **state)
{
    struct ut_scratch *s = *state;
    char path[PATH_MAX];
    struct sage_err err = { 0 };
    struct sage_reader *r = (struct sage_reader *)&err;   /* must be reset to NULL */
    ut_path(path, sizeof(path), s->dir, "absent.sage");
    assert_int_equal(sage_reader_open(path, 0, &r, &err), -SAGE_ENOTFOUND);
    assert_null(r);
    assert_non_null(strstr(err.msg, path));
    sage_reader_close(NULL);
}

/* ---- crash safety ---- */

static void test_uncommitted_is_invisible(void **state)
{
    struct ut_scratch *s = *state;
    char path[PATH_MAX];
    struct sage_err err = { 0 };
    struct sage_writer *w = NULL;
    const struct sage_writer_opts o = { .flags = SAGE_WRITE_NO_SYNC };
    const struct sec old[] = { { SAGE_SECTION_TEXT, SAGE_CODEC_RAW, (const uint8_t *)"old", 3 } };
    const struct sec neu[] = { { SAGE_SECTION_TEXT, SAGE_CODEC_ZSTD, (const uint8_t *)"new", 3 } };
    ut_path(path, sizeof(path), s->dir, "x.sage");

    /* no previous file: nothing under the final name until commit */
    assert_int_equal(sage_writer_open(path, &o, &w, &err), 0);
    assert_int_equal(ut_count_prefix(s->dir, ".x.sage.tmp."), 1);
    assert_int_equal(sage_writer_add(w, neu[0].kind, neu[0].codec, neu[0].data, neu[0].len, &err),
                     0);
    assert_false(ut_exists(path));
    sage_writer_free(w);    /* abandoned */
    assert_false(ut_exists(path));
    assert_int_equal(ut_count_other(s->dir, NULL, NULL, 0), 0);

    /* a previous file keeps its exact bytes until the next commit */
    assert_int_equal(write_index(path, old, 1, SAGE_WRITE_NO_SYNC, 0, NULL, &err), 0);
    size_t plen, len;
    uint8_t *prev = ut_read_file(path, &plen);
    assert_int_equal(sage_writer_open(path, &o, &w, &err), 0);
    assert_int_equal(sage_writer_add(w, neu[0].kind, neu[0].codec, neu[0].data, neu[0].len, &err),
                     0);
    uint8_t *cur = ut_read_file(path, &len);
    assert_int_equal(len, plen);
    assert_memory_equal(cur, prev, plen);
    free(cur);
    sage_writer_free(w);
    cur = ut_read_file(path, &len);
    assert_int_equal(len, plen);
    assert_memory_equal(cur, prev, plen);
    free(cur);
    assert_int_equal(ut_count_prefix(s->dir, ".x.sage.tmp."), 0);
    check_index(path, SAGE_OPEN_VERIFY, old, 1);

    /* and commit replaces it */
    assert_int_equal(sage_writer_open(path, &o, &w, &err), 0);
    assert_int_equal(sage_writer_add(w, neu[0].kind, neu[0].codec, neu[0].data, neu[0].len, &err),
                     0);
    assert_int_equal(sage_writer_commit(w, NULL, &err), 0);
    assert_int_equal(ut_count_other(s->dir, (const char *const[]){ "x.sage", "x.sage.sha256",
                                                                  NULL }, NULL, 0), 0);
    sage_writer_free(w);
    check_index(path, SAGE_OPEN_VERIFY, neu, 1);
    free(prev);
}

static void test_stale_temporaries(void **state)
{
    struct ut_scratch *s = *state;
    char stale[PATH_MAX], locked[PATH_MAX], other[PATH_MAX], nodot[PATH_MAX], path[PATH_MAX];
    struct sage_err err = { 0 };
    struct sage_writer *w = NULL, *w2 = NULL;
    const struct sage_writer_opts o = { .flags = SAGE_WRITE_NO_SYNC };
    ut_path(path, sizeof(path), s->dir, "x.sage");
    ut_path(stale, sizeof(stale), s->dir, ".x.sage.tmp.AbCdEf");
    ut_path(locked, sizeof(locked), s->dir, ".x.sage.tmp.LoCkEd");
    ut_path(other, sizeof(other), s->dir, ".y.sage.tmp.AbCdEf");
    ut_path(nodot, sizeof(nodot), s->dir, "x.sage.tmp.AbCdEf");
    ut_write_bytes(stale, "partial", 7);
    ut_write_bytes(locked, "live", 4);
    ut_write_bytes(other, "other", 5);
    ut_write_bytes(nodot, "user", 4);
    int lfd = open(locked, O_RDONLY);
    assert_true(lfd >= 0);
    assert_int_equal(flock(lfd, LOCK_EX | LOCK_NB), 0);

    assert_int_equal(sage_writer_open(path, &o, &w, &err), 0);
    assert_false(ut_exists(stale));     /* dead writer's leftovers go */
    assert_true(ut_exists(locked));     /* a live writer's temporary stays */
    assert_true(ut_exists(other));      /* another name's temporaries are not ours */
    assert_true(ut_exists(nodot));
    assert_int_equal(ut_count_prefix(s->dir, ".x.sage.tmp."), 2);

    /* a second writer of the same name leaves the first one's temporary alone */
    assert_int_equal(sage_writer_open(path, &o, &w2, &err), 0);
    assert_int_equal(ut_count_prefix(s->dir, ".x.sage.tmp."), 3);
    assert_int_equal(sage_writer_add(w, SAGE_SECTION_TEXT, SAGE_CODEC_RAW, "one", 3, &err), 0);
    assert_int_equal(sage_writer_add(w2, SAGE_SECTION_TEXT, SAGE_CODEC_RAW, "two", 3, &err), 0);
    assert_int_equal(sage_writer_commit(w, NULL, &err), 0);
    assert_int_equal(sage_writer_commit(w2, NULL, &err), 0);
    sage_writer_free(w);
    sage_writer_free(w2);
    check_index(path, SAGE_OPEN_VERIFY, (const struct sec[]){
        { SAGE_SECTION_TEXT, SAGE_CODEC_RAW, (const uint8_t *)"two", 3 } }, 1);
    assert_true(ut_exists(locked));

    /* once its holder is gone, the next writer removes it */
    close(lfd);
    assert_int_equal(sage_writer_open(path, &o, &w, &err), 0);
    assert_false(ut_exists(locked));
    assert_int_equal(ut_count_prefix(s->dir, ".x.sage.tmp."), 1);
    sage_writer_free(w);
    assert_int_equal(ut_count_prefix(s->dir, ".x.sage.tmp."), 0);
    assert_true(ut_exists(other));
    assert_true(ut_exists(nodot));
}

/* ---- injected I/O failures ---- */

enum io_op { OP_WRITE, OP_PWRITE, OP_FSYNC, OP_RENAME, OP_COUNT };
static const char *const op_names[OP_COUNT] = { "write", "pwrite", "fsync", "rename" };

/* The fake system calls' state: which call fails, and what happened. */
static struct {
    int fail_op;        /* enum io_op, or -1 */
    int fail_at;        /* 0-based call number of fail_op */
    int fail_errno;
    int calls[OP_COUNT];
    int short_io;       /* at most 1000 bytes a call, every other call EINTR */
    const char *final;  /* the writer's final path */
    int final_renamed;  /* a rename onto final succeeded */
} fio;

static void fio_reset(int op, int at, int e, const char *final)
{
    memset(&fio, 0, sizeof(fio));
    fio.fail_op = op;
    fio.fail_at = at;
    fio.fail_errno = e;
    fio.final = final;
}

/* Counts the call; 1 if it must fail (errno set). */
static int fio_fail(enum io_op op)
{
    int k = fio.calls[op]++;
    if ((int)op == fio.fail_op && k == fio.fail_at) {
        errno = fio.fail_errno;
        return 1;
    }
    if (fio.short_io && (op == OP_WRITE || op == OP_PWRITE) && k % 2 == 0) {
        errno = EINTR;
        return 1;
    }
    return 0;
}

static ssize_t fake_write(int fd, const void *b, size_t n)
{
    if (fio_fail(OP_WRITE))
        return -1;
    return write(fd, b, fio.short_io && n > 1000 ? 1000 : n);
}

static ssize_t fake_pwrite(int fd, const void *b, size_t n, off_t o)
{
    if (fio_fail(OP_PWRITE))
        return -1;
    return pwrite(fd, b, fio.short_io && n > 1000 ? 1000 : n, o);
}

/* Never syncs for real: the seam is under test, not the disk. */
static int fake_fsync(int fd)
{
    (void)fd;
    return fio_fail(OP_FSYNC) ? -1 : 0;
}

static int fake_rename(const char *a, const char *b)
{
    if (fio_fail(OP_RENAME))
        return -1;
    int rc = rename(a, b);
    if (rc == 0 && strcmp(b, fio.final) == 0)
        fio.final_renamed = 1;
    return rc;
}

static const struct sage_io fake_io = { fake_write, fake_pwrite, fake_fsync, fake_rename };

/* The I/O scenario: a section bigger than two write buffers, then two small
 * ones, then commit with the sidecar. */
struct payload {
    uint8_t *big;
    size_t big_len;
    uint8_t small[3000];
};

static int io_scenario(const char *path, const struct payload *p, unsigned flags,
                       struct sage_err *err)
{
    struct sage_writer_opts o = { .io = &fake_io, .flags = flags };
    struct sage_writer *w = NULL;
    int rc = sage_writer_open(path, &o, &w, err);
    if (rc == 0)
        rc = sage_writer_add(w, SAGE_SECTION_TEXT, SAGE_CODEC_RAW, p->big, p->big_len, err);
    if (rc == 0)
        rc = sage_writer_add(w, SAGE_SECTION_DOCS, SAGE_CODEC_ZSTD, p->small, sizeof(p->small),
                             err);
    if (rc == 0)
        rc = sage_writer_add(w, KIND_UNKNOWN, SAGE_CODEC_RAW, p->small, 100, err);
    if (rc == 0) {
        sage_writer_set_counts(w, 3, 4);
        rc = sage_writer_commit(w, NULL, err);
    }
    sage_writer_free(w);
    return rc;
}

static void payload_init(struct payload *p)
{
    p->big_len = (5u << 19) + 77;   /* 2.5 MiB */
    p->big = malloc(p->big_len);
    assert_non_null(p->big);
    ut_fill(p->big, p->big_len, 21);
    ut_fill(p->small, sizeof(p->small), 22);
}

static void io_failures(struct ut_scratch *s, int with_previous)
{
    struct payload p;
    char dir[PATH_MAX], path[PATH_MAX], side[PATH_MAX], name[64];
    struct sage_err err = { 0 };
    payload_init(&p);

    /* reference run: the expected bytes and the number of calls of each kind */
    ut_path(dir, sizeof(dir), s->dir, "ref");
    assert_int_equal(mkdir(dir, 0755), 0);
    ut_path(path, sizeof(path), dir, "x.sage");
    fio_reset(-1, 0, 0, path);
    assert_int_equal(io_scenario(path, &p, 0, &err), 0);
    int total[OP_COUNT];
    memcpy(total, fio.calls, sizeof(total));
    assert_true(total[OP_WRITE] >= 4);      /* 2 buffer flushes, the last, the sidecar */
    assert_true(total[OP_PWRITE] >= 2);     /* header and footer */
    assert_true(total[OP_FSYNC] >= 3);      /* file, directory, sidecar */
    assert_true(total[OP_RENAME] >= 2);     /* file, sidecar */
    size_t want_len, prev_len = 0, prev_side_len = 0;
    uint8_t *want = ut_read_file(path, &want_len);
    uint8_t *prev = NULL, *prev_side = NULL;
    if (with_previous) {
        ut_path(side, sizeof(side), dir, "prev.sage");
        const struct sec old[] = { { SAGE_SECTION_BUILD, SAGE_CODEC_RAW, p.small, 10 } };
        assert_int_equal(write_index(side, old, 1, SAGE_WRITE_NO_SYNC, 0, NULL, &err), 0);
        prev = ut_read_file(side, &prev_len);
    }

    int run = 0;
    for (int op = 0; op < OP_COUNT; op++)
        for (int at = 0; at < total[op]; at++)
            for (int e = 0; e < 2; e++, run++) {
                int eno = e ? ENOSPC : EIO;
                snprintf(name, sizeof(name), "run%d", run);
                ut_path(dir, sizeof(dir), s->dir, name);
                assert_int_equal(mkdir(dir, 0755), 0);
                ut_path(path, sizeof(path), dir, "x.sage");
                ut_path(side, sizeof(side), dir, "x.sage.sha256");
                if (with_previous) {
                    ut_write_bytes(path, prev, prev_len);
                    ut_write_bytes(side, "previous sidecar\n", 17);
                    free(prev_side);
                    prev_side = ut_read_file(side, &prev_side_len);
                }
                memset(&err, 0, sizeof(err));
                fio_reset(op, at, eno, path);
                int rc = io_scenario(path, &p, 0, &err);
                if (rc != -SAGE_EIO)
                    fail_msg("%s #%d failing (%s): rc %d, want -SAGE_EIO", op_names[op], at,
                             strerror(eno), rc);
                assert_int_equal(err.code, SAGE_EIO);
                if (!strstr(err.msg, strerror(eno)))
                    fail_msg("%s #%d: message lacks the errno text: %s", op_names[op], at,
                             err.msg);
                assert_null(strchr(err.msg, '\n'));
                /* no temporary left behind, whatever failed */
                char stray[256] = "";
                if (ut_count_other(dir, (const char *const[]){ "x.sage", "x.sage.sha256", NULL },
                                   stray, sizeof(stray)) != 0)
                    fail_msg("%s #%d failing left '%s' behind", op_names[op], at, stray);
                size_t len;
                if (!fio.final_renamed) {
                    /* failed before the rename: the final name is untouched */
                    if (!with_previous) {
                        if (ut_exists(path) || ut_exists(side))
                            fail_msg("%s #%d failing created the final name", op_names[op], at);
                    } else {
                        uint8_t *cur = ut_read_file(path, &len);
                        if (len != prev_len || memcmp(cur, prev, len) != 0)
                            fail_msg("%s #%d failing changed the final name", op_names[op], at);
                        free(cur);
                        cur = ut_read_file(side, &len);
                        assert_int_equal(len, prev_side_len);
                        assert_memory_equal(cur, prev_side, len);
                        free(cur);
                    }
                } else {
                    /* failed after the rename (directory sync, sidecar): the
                     * final name holds the complete new file, never a part */
                    uint8_t *cur = ut_read_file(path, &len);
                    if (len != want_len || memcmp(cur, want, len) != 0)
                        fail_msg("%s #%d failing after the rename left a wrong file",
                                 op_names[op], at);
                    free(cur);
                }
            }
    assert_true(run >= 2 * 10);
    free(prev_side);
    free(prev);
    free(want);
    free(p.big);
}

static void test_io_failures_new_file(void **state)
{
    io_failures(*state, 0);
}

static void test_io_failures_replace(void **state)
{
    io_failures(*state, 1);
}

static void test_io_short_writes_and_eintr(void **state)
{
    struct ut_scratch *s = *state;
    struct payload p;
    char a[PATH_MAX], b[PATH_MAX];
    struct sage_err err = { 0 };
    payload_init(&p);
    ut_path(a, sizeof(a), s->dir, "plain.sage");
    ut_path(b, sizeof(b), s->dir, "short.sage");
    /* Without the sidecar: write_sidecar() makes one write() and treats a
     * short one or EINTR as failure (reported to the lead, not fixed here). */
    fio_reset(-1, 0, 0, a);
    assert_int_equal(io_scenario(a, &p, SAGE_WRITE_NO_SHA256, &err), 0);
    fio_reset(-1, 0, 0, b);
    fio.short_io = 1;
    int rc = io_scenario(b, &p, SAGE_WRITE_NO_SHA256, &err);
    if (rc != 0)
        fail_msg("short writes: %s", sage_err_msg(&err, rc));
    assert_true(fio.calls[OP_WRITE] > 2 * 2600);    /* really did go in pieces */
    ut_assert_same_file(a, b);
    free(p.big);
}

/* ---- injected out-of-memory ---- */

static void test_oom_writer(void **state)
{
    struct ut_scratch *s = *state;
    char dir[PATH_MAX], path[PATH_MAX], name[64];
    uint8_t data[20000];
    ut_fill(data, sizeof(data), 8);
    long n;
    for (n = 0; n < 1000; n++) {
        struct sage_err err = { 0 };
        snprintf(name, sizeof(name), "oom%ld", n);
        ut_path(dir, sizeof(dir), s->dir, name);
        assert_int_equal(mkdir(dir, 0755), 0);
        ut_path(path, sizeof(path), dir, "x.sage");
        const struct sec secs[] = { { SAGE_SECTION_BUILD, SAGE_CODEC_RAW, data, 100 },
                                    { SAGE_SECTION_DOCS, SAGE_CODEC_ZSTD, data, sizeof(data) },
                                    { KIND_UNKNOWN, SAGE_CODEC_RAW, data, 0 } };
        ut_oom_arm(n);
        int rc = write_index(path, secs, 3, SAGE_WRITE_NO_SYNC, 0, NULL, &err);
        int failed = ut_oom_state()->failed;
        long live = ut_oom_disarm();
        if (live != 0)
            fail_msg("allocation %ld failing leaks %ld blocks", n, live);
        assert_int_equal(ut_count_prefix(dir, "."), 2);   /* "." and ".." only */
        if (!failed) {
            assert_int_equal(rc, 0);
            check_index(path, SAGE_OPEN_VERIFY, secs, 3);
            break;
        }
        if (rc != -SAGE_ENOMEM)
            fail_msg("allocation %ld failing: rc %d (%s)", n, rc, err.msg);
        assert_int_equal(err.code, SAGE_ENOMEM);
    }
    assert_true(n > 5 && n < 1000);
}

static void test_oom_reader(void **state)
{
    struct ut_scratch *s = *state;
    char path[PATH_MAX];
    uint8_t data[30000];
    struct sage_err err = { 0 };
    ut_fill(data, sizeof(data), 4);
    const struct sec secs[] = { { SAGE_SECTION_BUILD, SAGE_CODEC_RAW, data, 100 },
                                { SAGE_SECTION_DOCS, SAGE_CODEC_ZSTD, data, sizeof(data) },
                                { KIND_UNKNOWN, SAGE_CODEC_ZSTD, data, 50 } };
    ut_path(path, sizeof(path), s->dir, "r.sage");
    assert_int_equal(write_index(path, secs, 3, SAGE_WRITE_NO_SYNC, 0, NULL, &err), 0);
    long n;
    for (n = 0; n < 1000; n++) {
        struct sage_reader *r = NULL;
        struct sage_bytes b1 = { 0 }, b2 = { 0 };
        memset(&err, 0, sizeof(err));
        ut_oom_arm(n);
        int rc = sage_reader_open(path, SAGE_OPEN_VERIFY, &r, &err);
        if (rc == 0)
            rc = sage_reader_load(r, sage_reader_section(r, 1), 0, &b1, &err);
        if (rc == 0)
            rc = sage_reader_load(r, sage_reader_section(r, 2), 0, &b2, &err);
        if (rc == 0)
            rc = sage_reader_verify(r, &err);
        if (rc == 0) {
            assert_int_equal(b1.len, sizeof(data));
            assert_memory_equal(b1.data, data, sizeof(data));
            assert_int_equal(b2.len, 50);
        }
        sage_bytes_release(&b2);
        sage_bytes_release(&b1);
        sage_reader_close(r);
        int failed = ut_oom_state()->failed;
        long live = ut_oom_disarm();
        if (live != 0)
            fail_msg("allocation %ld failing leaks %ld blocks", n, live);
        if (!failed) {
            assert_int_equal(rc, 0);
            break;
        }
        if (rc != -SAGE_ENOMEM)
            fail_msg("allocation %ld failing: rc %d (%s)", n, rc, err.msg);
        assert_int_equal(err.code, SAGE_ENOMEM);
    }
    assert_true(n > 3 && n < 1000);
}

/* Stamps: written only for a verification that began after the file's
 * ctime, valid for that file version only, void after any change. */
static void test_stamp(void **state)
{
    struct ut_scratch *s = *state;
    char path[PATH_MAX], other[PATH_MAX], stamp[PATH_MAX];
    uint8_t data[3000];
    struct sage_err err = { 0 };
    struct sage_reader *r = NULL, *o = NULL;
    ut_fill(data, sizeof(data), 9);
    const struct sec secs[] = { { SAGE_SECTION_BUILD, SAGE_CODEC_RAW, data, sizeof(data) } };
    ut_path(path, sizeof(path), s->dir, "st.sage");
    ut_path(other, sizeof(other), s->dir, "other.sage");
    ut_path(stamp, sizeof(stamp), s->dir, ".st.sage.verified");
    assert_int_equal(write_index(path, secs, 1, 0, 0, NULL, &err), 0);
    assert_int_equal(write_index(other, secs, 1, 0, 0, NULL, &err), 0);
    assert_int_equal(sage_reader_open(path, 0, &r, &err), 0);
    assert_int_equal(sage_reader_open(other, 0, &o, &err), 0);
    int64_t ctime = sage_reader_info(r)->st.ctime_ns;
    assert_false(sage_stamp_valid(path, r));
    /* a verification that may have begun in the ctime's tick: no stamp */
    assert_int_equal(sage_stamp_write(path, r, ctime, &err), 0);
    assert_false(ut_exists(stamp));
    int64_t t = sage_stamp_clock(r);
    assert_true(t > ctime);
    assert_int_equal(sage_reader_verify(r, &err), 0);
    assert_int_equal(sage_stamp_write(path, r, t, &err), 0);
    assert_true(ut_exists(stamp));
    assert_true(sage_stamp_valid(path, r));
    assert_false(sage_stamp_valid(other, o));      /* no stamp of its own */
    /* the same bytes under another inode: the stamp is not its */
    char cmd[3 * PATH_MAX];
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s.verified'", stamp, other);
    assert_int_equal(system(cmd), 0);
    assert_false(sage_stamp_valid(other, o));
    sage_reader_close(o);
    /* any change to the file (here only its times) voids the stamp */
    assert_int_equal(utimensat(AT_FDCWD, path, NULL, 0), 0);
    sage_reader_close(r);
    assert_int_equal(sage_reader_open(path, 0, &r, &err), 0);
    assert_false(sage_stamp_valid(path, r));
    sage_reader_close(r);
    /* a damaged stamp vouches for nothing, and stamping needs a real path */
    ut_write_bytes(stamp, "sage-verified 1 x\n", 18);
    assert_int_equal(sage_reader_open(path, 0, &r, &err), 0);
    assert_false(sage_stamp_valid(path, r));
    sage_reader_close(r);
    ut_path(other, sizeof(other), s->dir, "missing/x.sage");
    assert_int_equal(sage_stamp_verify(other, &err), -SAGE_ENOTFOUND);
}

#define T(f) cmocka_unit_test_setup_teardown(f, ut_scratch_setup, ut_scratch_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_roundtrip_kinds_codecs),
        T(test_empty_sections),
        T(test_no_sections),
        T(test_streamed_small_writes),
        T(test_multi_mib_sections),
        T(test_counts_in_header),
        T(test_page_alignment),
        T(test_sha256_sidecar),
        T(test_no_sha256_flag),
        T(test_deterministic_output),
        T(test_writer_misuse),
        T(test_max_sections),
        T(test_relative_path),
        T(test_reader_open_missing),
        T(test_uncommitted_is_invisible),
        T(test_stale_temporaries),
        T(test_io_failures_new_file),
        T(test_io_failures_replace),
        T(test_io_short_writes_and_eintr),
        T(test_oom_writer),
        T(test_oom_reader),
        T(test_stamp),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
