/* The reader against damaged and forged files: single-byte flips in the
 * header and footer (caught by open) and anywhere (caught by verify),
 * truncation, the specific refusals (empty, bad magic, unknown major, offsets
 * past the end, lying lengths) on images whose checksums were fixed up so
 * that only the lie is left, and paths that are not index files at all. */
#include "util.h"

#include <signal.h>

#include "reader.h"
#include "writer.h"

#define KIND_UNKNOWN 999u

/* The test image: three small sections (raw, zstd, unknown kind), so it is a
 * few pages and every byte can be flipped quickly. */
struct image {
    uint8_t *img;
    size_t size;
    uint32_t header_len;
    char path[PATH_MAX];
};

/* The test's state: its scratch directory and the image. */
struct both {
    struct ut_scratch *s;
    struct image *im;
};

static int image_teardown(void **state)
{
    struct both *b = *state;
    if (!b)
        return 0;
    void *s = b->s;
    if (b->im)
        free(b->im->img);
    free(b->im);
    free(b);
    return ut_scratch_teardown(&s);
}

/* Writes the image into the scratch directory and reads it back. */
static int image_load(struct both *b)
{
    uint8_t build[300], docs[2000], other[100];
    struct sage_writer *w = NULL;
    struct sage_writer_opts o = { .flags = SAGE_WRITE_NO_SYNC | SAGE_WRITE_NO_SHA256 };
    struct image *im = b->im;
    ut_fill(build, sizeof(build), 1);
    ut_fill(docs, sizeof(docs), 2);
    ut_fill(other, sizeof(other), 3);
    int n = snprintf(im->path, sizeof(im->path), "%s/c.sage", b->s->dir);
    if (n < 0 || (size_t)n >= sizeof(im->path))
        return -1;
    int rc = sage_writer_open(im->path, &o, &w, NULL);
    if (rc == 0)
        rc = sage_writer_add(w, SAGE_SECTION_BUILD, SAGE_CODEC_RAW, build, sizeof(build), NULL);
    if (rc == 0)
        rc = sage_writer_add(w, SAGE_SECTION_DOCS, SAGE_CODEC_ZSTD, docs, sizeof(docs), NULL);
    if (rc == 0)
        rc = sage_writer_add(w, KIND_UNKNOWN, SAGE_CODEC_RAW, other, sizeof(other), NULL);
    if (rc == 0)
        rc = sage_writer_commit(w, NULL, NULL);
    sage_writer_free(w);
    FILE *f = rc == 0 ? fopen(im->path, "rb") : NULL;
    if (!f)
        return -1;
    rc = -1;
    if (fseek(f, 0, SEEK_END) == 0) {
        im->size = (size_t)ftell(f);
        rewind(f);
        im->img = malloc(im->size);
        if (im->img && fread(im->img, 1, im->size, f) == im->size)
            rc = 0;
    }
    fclose(f);
    if (rc == 0)
        im->header_len = sage_le32(im->img + SAGE_HDR_LEN);
    return rc;
}

static int image_setup(void **state)
{
    void *s = NULL;
    struct both *b = calloc(1, sizeof(*b));
    if (!b || ut_scratch_setup(&s) != 0) {
        free(b);
        return -1;
    }
    b->s = s;
    b->im = calloc(1, sizeof(*b->im));
    *state = b;
    if (!b->im || image_load(b) != 0) {
        image_teardown(state);
        return -1;
    }
    return 0;
}

/* A private copy of the image to damage (free()). */
static uint8_t *copy_of(const struct image *im)
{
    uint8_t *c = malloc(im->size);
    assert_non_null(c);
    memcpy(c, im->img, im->size);
    return c;
}

static int open_mem(const uint8_t *img, size_t len, unsigned flags, struct sage_err *err)
{
    struct sage_reader *r = (struct sage_reader *)err;   /* must come back NULL on failure */
    memset(err, 0, sizeof(*err));
    int rc = sage_reader_open_mem(img, len, flags, &r, err);
    if (rc < 0) {
        assert_null(r);
        assert_int_equal(err->code, -rc);
        assert_true(err->msg[0] != '\0');
        assert_null(strchr(err->msg, '\n'));
    } else {
        assert_non_null(r);
        sage_reader_close(r);
    }
    return rc;
}

static void test_pristine_image_opens(void **state)
{
    struct image *im = ((struct both *)*state)->im;
    struct sage_err err;
    struct sage_reader *r = NULL;
    assert_int_equal(open_mem(im->img, im->size, 0, &err), 0);
    assert_int_equal(open_mem(im->img, im->size, SAGE_OPEN_VERIFY, &err), 0);
    assert_int_equal(sage_reader_open(im->path, SAGE_OPEN_VERIFY, &r, &err), 0);
    assert_int_equal(sage_reader_info(r)->n_sections, 3);
    assert_int_equal(sage_reader_section(r, 1)->codec, SAGE_CODEC_ZSTD);
    assert_int_equal(sage_reader_section(r, 2)->kind, KIND_UNKNOWN);
    assert_int_equal(sage_reader_info(r)->header_len, SAGE_PAGE);
    sage_reader_close(r);
    assert_true(im->size < 5 * SAGE_PAGE);      /* small, so the flip tests stay fast */
}

/* Every single-byte flip in the header and the footer is refused by open. */
static void test_flip_header_and_footer(void **state)
{
    struct image *im = ((struct both *)*state)->im;
    uint8_t *img = copy_of(im);
    struct sage_err err;
    static const uint8_t masks[] = { 0x01, 0x80 };
    size_t tried = 0;
    for (size_t off = 0; off < im->size; off++) {
        if (off == im->header_len)
            off = im->size - SAGE_FTR_LEN;
        for (size_t m = 0; m < 2; m++) {
            img[off] ^= masks[m];
            int rc = open_mem(img, im->size, 0, &err);
            img[off] ^= masks[m];
            int want = off >= SAGE_HDR_MAJOR && off < SAGE_HDR_MAJOR + 2 ? -SAGE_EVERSION
                                                                          : -SAGE_ECORRUPT;
            if (rc != want)
                fail_msg("flip 0x%02x at %zu: rc %d (%s), want %d", masks[m], off, rc,
                         err.msg, want);
            tried++;
        }
    }
    assert_int_equal(tried, 2 * (im->header_len + SAGE_FTR_LEN));
    assert_memory_equal(img, im->img, im->size);
    free(img);
}

/* Every single-byte flip anywhere is refused by open with SAGE_OPEN_VERIFY;
 * inside section bytes, plain open (which reads no section data) accepts it. */
static void test_flip_anywhere_verify(void **state)
{
    struct image *im = ((struct both *)*state)->im;
    uint8_t *img = copy_of(im);
    struct sage_err err;
    struct sage_reader *r = NULL;
    assert_int_equal(sage_reader_open_mem(im->img, im->size, 0, &r, &err), 0);
    uint64_t s0 = sage_reader_section(r, 0)->off, e2 = sage_reader_section(r, 2)->off +
                  sage_reader_section(r, 2)->len;
    sage_reader_close(r);
    size_t opened_plain = 0;
    for (size_t off = 0; off < im->size; off++)
        for (unsigned mask = 0x01; mask <= 0x80; mask <<= 7) {
            img[off] ^= (uint8_t)mask;
            int rc = open_mem(img, im->size, SAGE_OPEN_VERIFY, &err);
            if (rc >= 0)
                fail_msg("flip 0x%02x at %zu passed verification", mask, off);
            if (off >= s0 && off < e2)
                opened_plain += open_mem(img, im->size, 0, &err) == 0;
            img[off] ^= (uint8_t)mask;
        }
    assert_int_equal(opened_plain, 2 * (e2 - s0));
    free(img);
}

static void test_truncation(void **state)
{
    struct both *b = *state;
    struct image *im = b->im;
    struct sage_err err;
    size_t cuts[16], n = 0;
    for (size_t c = 0; c < im->size; c += SAGE_PAGE)
        cuts[n++] = c;
    cuts[n++] = im->size - 1;
    cuts[n++] = im->size - SAGE_FTR_LEN;
    cuts[n++] = SAGE_PAGE + SAGE_FTR_LEN - 1;
    cuts[n++] = SAGE_HDR_FIXED - 1;
    cuts[n++] = SAGE_MAGIC_LEN;
    assert_true(n >= 8 && n <= 16);
    for (size_t i = 0; i < n; i++) {
        int rc = open_mem(im->img, cuts[i], 0, &err);
        if (rc != -SAGE_ECORRUPT)
            fail_msg("truncated to %zu bytes: rc %d (%s)", cuts[i], rc, err.msg);
        /* and as a file, the message naming it */
        char path[PATH_MAX], name[32];
        struct sage_reader *r = NULL;
        snprintf(name, sizeof(name), "cut%zu.sage", cuts[i]);
        ut_path(path, sizeof(path), b->s->dir, name);
        ut_write_bytes(path, im->img, cuts[i]);
        assert_int_equal(sage_reader_open(path, 0, &r, &err), -SAGE_ECORRUPT);
        assert_null(r);
        assert_non_null(strstr(err.msg, path));
    }
    /* one byte too many is as wrong as one too few */
    uint8_t *longer = malloc(im->size + 1);
    assert_non_null(longer);
    memcpy(longer, im->img, im->size);
    longer[im->size] = 0;
    assert_int_equal(open_mem(longer, im->size + 1, 0, &err), -SAGE_ECORRUPT);
    free(longer);
}

/* ---- specific refusals, on forged images ---- */

static void test_empty_and_bad_magic(void **state)
{
    struct image *im = ((struct both *)*state)->im;
    struct sage_err err;
    assert_int_equal(open_mem(im->img, 0, 0, &err), -SAGE_ECORRUPT);
    assert_non_null(strstr(err.msg, "empty"));
    assert_int_equal(open_mem(NULL, 0, SAGE_OPEN_VERIFY, &err), -SAGE_ECORRUPT);
    assert_non_null(strstr(err.msg, "empty"));

    uint8_t *img = copy_of(im);
    memcpy(img, "SQLite f", 8);
    ut_fix_all(img, im->size);
    assert_int_equal(open_mem(img, im->size, 0, &err), -SAGE_ECORRUPT);
    assert_non_null(strstr(err.msg, "bad magic"));
    /* a text-mode copy turns \r\n into \n: the magic catches it */
    static const uint8_t texty[] = "\x89SAGE\n\x1a";
    memcpy(img, texty, 8);
    assert_int_equal(open_mem(img, im->size, 0, &err), -SAGE_ECORRUPT);
    assert_non_null(strstr(err.msg, "bad magic"));
    assert_int_equal(open_mem((const uint8_t *)"hello", 5, 0, &err), -SAGE_ECORRUPT);
    assert_non_null(strstr(err.msg, "bad magic"));
    assert_int_equal(open_mem(im->img, SAGE_MAGIC_LEN - 1, 0, &err), -SAGE_ECORRUPT);
    assert_non_null(strstr(err.msg, "bad magic"));
    free(img);
}

static void test_versions(void **state)
{
    struct image *im = ((struct both *)*state)->im;
    struct sage_err err;
    uint8_t *img = copy_of(im);
    sage_put16(img + SAGE_HDR_MAJOR, 2);
    ut_fix_all(img, im->size);
    assert_int_equal(open_mem(img, im->size, 0, &err), -SAGE_EVERSION);
    assert_int_equal(err.code, SAGE_EVERSION);
    char want[32];
    snprintf(want, sizeof(want), "version 2.%u", (unsigned)SAGE_FORMAT_MINOR);
    if (!strstr(err.msg, want))
        fail_msg("message '%s' lacks '%s'", err.msg, want);
    assert_int_equal(open_mem(img, im->size, SAGE_OPEN_VERIFY, &err), -SAGE_EVERSION);
    sage_put16(img + SAGE_HDR_MAJOR, 0);
    ut_fix_all(img, im->size);
    assert_int_equal(open_mem(img, im->size, 0, &err), -SAGE_EVERSION);

    /* a newer minor of the same major is read */
    memcpy(img, im->img, im->size);
    sage_put16(img + SAGE_HDR_MINOR, 7);
    ut_fix_all(img, im->size);
    struct sage_reader *r = NULL;
    assert_int_equal(sage_reader_open_mem(img, im->size, SAGE_OPEN_VERIFY, &r, &err), 0);
    assert_int_equal(sage_reader_info(r)->minor, 7);
    sage_reader_close(r);
    free(img);
}

/* Applies one forgery to a fresh copy with every checksum fixed up; returns
 * open's rc and, when open succeeds, the rc of load(section sec) and verify. */
struct forged {
    int open_rc, load_rc, verify_rc;
    struct sage_err err;
};

typedef void forge_fn(uint8_t *img, size_t size);

static struct forged forge(const struct image *im, forge_fn *f, uint32_t sec)
{
    struct forged out = { 0 };
    uint8_t *img = copy_of(im);
    struct sage_reader *r = NULL;
    f(img, im->size);
    ut_fix_all(img, im->size);
    out.open_rc = sage_reader_open_mem(img, im->size, 0, &r, &out.err);
    if (out.open_rc == 0) {
        struct sage_bytes b;
        struct sage_err e2 = { 0 };
        out.load_rc = sage_reader_load(r, sage_reader_section(r, sec), 0, &b, &e2);
        sage_bytes_release(&b);
        out.verify_rc = sage_reader_verify(r, &out.err);
        sage_reader_close(r);
        /* open with the flag agrees with open + verify */
        assert_int_equal(open_mem(img, im->size, SAGE_OPEN_VERIFY, &e2), out.verify_rc);
    } else {
        assert_null(r);
    }
    free(img);
    return out;
}

static void sec1_off_past_end(uint8_t *img, size_t size)
{
    sage_put64(ut_entry(img, 1) + SAGE_SEC_OFF, ((uint64_t)size + SAGE_PAGE) / SAGE_PAGE *
                                                SAGE_PAGE);
}
static void sec1_off_huge(uint8_t *img, size_t size)
{
    (void)size;
    sage_put64(ut_entry(img, 1) + SAGE_SEC_OFF, UINT64_MAX - SAGE_PAGE + 1);
}
static void sec1_off_unaligned(uint8_t *img, size_t size)
{
    (void)size;
    uint8_t *e = ut_entry(img, 1);
    sage_put64(e + SAGE_SEC_OFF, sage_le64(e + SAGE_SEC_OFF) + 1);
}
static void sec1_overlaps_sec0(uint8_t *img, size_t size)
{
    (void)size;
    sage_put64(ut_entry(img, 1) + SAGE_SEC_OFF, sage_le64(ut_entry(img, 0) + SAGE_SEC_OFF));
}
static void sec0_in_header(uint8_t *img, size_t size)
{
    (void)size;
    sage_put64(ut_entry(img, 0) + SAGE_SEC_OFF, 0);
}
static void sec2_len_past_end(uint8_t *img, size_t size)
{
    uint8_t *e = ut_entry(img, 2);
    uint64_t len = size - sage_le64(e + SAGE_SEC_OFF) - SAGE_FTR_LEN + 1;
    sage_put64(e + SAGE_SEC_LEN, len);
    sage_put64(e + SAGE_SEC_RAW_LEN, len);
}
static void sec2_len_huge(uint8_t *img, size_t size)
{
    (void)size;
    sage_put64(ut_entry(img, 2) + SAGE_SEC_LEN, UINT64_MAX);
    sage_put64(ut_entry(img, 2) + SAGE_SEC_RAW_LEN, UINT64_MAX);
}
static void sec0_raw_len_differs(uint8_t *img, size_t size)
{
    (void)size;
    uint8_t *e = ut_entry(img, 0);
    sage_put64(e + SAGE_SEC_RAW_LEN, sage_le64(e + SAGE_SEC_LEN) + 1);
}
static void sec1_raw_len_impossible(uint8_t *img, size_t size)
{
    (void)size;
    sage_put64(ut_entry(img, 1) + SAGE_SEC_RAW_LEN, (uint64_t)1 << 62);
}
static void sec1_raw_len_plus_one(uint8_t *img, size_t size)
{
    (void)size;
    uint8_t *e = ut_entry(img, 1);
    sage_put64(e + SAGE_SEC_RAW_LEN, sage_le64(e + SAGE_SEC_RAW_LEN) + 1);
}
static void sec1_raw_len_minus_one(uint8_t *img, size_t size)
{
    (void)size;
    uint8_t *e = ut_entry(img, 1);
    sage_put64(e + SAGE_SEC_RAW_LEN, sage_le64(e + SAGE_SEC_RAW_LEN) - 1);
}
static void sec1_unknown_codec(uint8_t *img, size_t size)
{
    (void)size;
    sage_put16(ut_entry(img, 1) + SAGE_SEC_CODEC, 9);
}
static void sec2_unknown_codec(uint8_t *img, size_t size)
{
    (void)size;
    sage_put16(ut_entry(img, 2) + SAGE_SEC_CODEC, 9);
}
static void nsect_too_many(uint8_t *img, size_t size)
{
    (void)size;
    sage_put32(img + SAGE_HDR_NSECT, (SAGE_PAGE - SAGE_HDR_FIXED) / SAGE_SEC_ENTRY + 1);
}
static void nsect_huge(uint8_t *img, size_t size)
{
    (void)size;
    sage_put32(img + SAGE_HDR_NSECT, UINT32_MAX);
}
static void page_size_wrong(uint8_t *img, size_t size)
{
    (void)size;
    sage_put32(img + SAGE_HDR_PAGE, 8192);
}
static void file_size_wrong(uint8_t *img, size_t size)
{
    sage_put64(img + SAGE_HDR_FILE_SIZE, size + 1);
}
static void header_len_unaligned(uint8_t *img, size_t size)
{
    (void)size;
    sage_put32(img + SAGE_HDR_LEN, SAGE_PAGE + 8);
}
static void header_len_two_pages(uint8_t *img, size_t size)
{
    (void)size;
    /* a page multiple that swallows section 0 into the header */
    sage_put32(img + SAGE_HDR_LEN, 2 * SAGE_PAGE);
}
static void padding_nonzero(uint8_t *img, size_t size)
{
    (void)size;
    /* the gap between section 0 (300 bytes) and section 1 */
    img[sage_le64(ut_entry(img, 0) + SAGE_SEC_OFF) + 1000] = 0x55;
}
static void gap_end_nonzero(uint8_t *img, size_t size)
{
    /* the last byte of the gap before section 2 (the footer follows the last
     * section directly, without a gap) */
    (void)size;
    img[sage_le64(ut_entry(img, 2) + SAGE_SEC_OFF) - 1] = 0x01;
}
static void sec0_data_changed(uint8_t *img, size_t size)
{
    (void)size;
    img[sage_le64(ut_entry(img, 0) + SAGE_SEC_OFF) + 7] ^= 0x20;
}
static void sec1_frame_damaged_checksummed(uint8_t *img, size_t size)
{
    (void)size;
    uint8_t *e = ut_entry(img, 1);
    uint64_t off = sage_le64(e + SAGE_SEC_OFF), len = sage_le64(e + SAGE_SEC_LEN);
    img[off] ^= 0xff;   /* the zstd frame magic */
    sage_put64(e + SAGE_SEC_CHECKSUM, XXH3_64bits(img + off, len));
}
static void sec1_frame_trailing_byte(uint8_t *img, size_t size)
{
    (void)size;
    uint8_t *e = ut_entry(img, 1);
    uint64_t off = sage_le64(e + SAGE_SEC_OFF), len = sage_le64(e + SAGE_SEC_LEN) + 1;
    sage_put64(e + SAGE_SEC_LEN, len);   /* swallow a padding zero */
    sage_put64(e + SAGE_SEC_CHECKSUM, XXH3_64bits(img + off, len));
}

static void test_forged_structure(void **state)
{
    struct image *im = ((struct both *)*state)->im;
    static const struct {
        const char *name;
        forge_fn *f;
        const char *word;       /* expected in open's message */
    } cases[] = {
        { "section offset past the end", sec1_off_past_end, "section 1" },
        { "section offset near 2^64", sec1_off_huge, "section 1" },
        { "unaligned section offset", sec1_off_unaligned, "section 1" },
        { "overlapping sections", sec1_overlaps_sec0, "section 1" },
        { "section inside the header", sec0_in_header, "section 0" },
        { "section length past the end", sec2_len_past_end, "section 2" },
        { "section length near 2^64", sec2_len_huge, "section 2" },
        { "raw section with raw_len != len", sec0_raw_len_differs, "section 0" },
        { "zstd section claiming 2^62 bytes", sec1_raw_len_impossible, "section 1" },
        { "known kind, unknown codec", sec1_unknown_codec, "codec" },
        { "more sections than the header holds", nsect_too_many, "section count" },
        { "2^32-1 sections", nsect_huge, "section count" },
        { "wrong page size", page_size_wrong, "page size" },
        { "file size off by one", file_size_wrong, "truncated" },
        { "header length not a page multiple", header_len_unaligned, "header length" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        struct forged r = forge(im, cases[i].f, 0);
        if (r.open_rc != -SAGE_ECORRUPT)
            fail_msg("%s: open rc %d (%s)", cases[i].name, r.open_rc, r.err.msg);
        if (!strstr(r.err.msg, cases[i].word))
            fail_msg("%s: message '%s' lacks '%s'", cases[i].name, r.err.msg, cases[i].word);
        assert_non_null(strstr(r.err.msg, "<memory>"));
    }
    /* a header length that swallows section 0 */
    struct forged r = forge(im, header_len_two_pages, 0);
    assert_int_equal(r.open_rc, -SAGE_ECORRUPT);
}

static void test_forged_content(void **state)
{
    struct image *im = ((struct both *)*state)->im;
    struct forged r;

    /* zstd raw_len one too big or too small: open accepts (O(1)), load and
     * verify refuse */
    r = forge(im, sec1_raw_len_plus_one, 1);
    assert_int_equal(r.open_rc, 0);
    assert_int_equal(r.load_rc, -SAGE_ECORRUPT);
    assert_int_equal(r.verify_rc, -SAGE_ECORRUPT);
    assert_non_null(strstr(r.err.msg, "section 1"));
    r = forge(im, sec1_raw_len_minus_one, 1);
    assert_int_equal(r.open_rc, 0);
    assert_int_equal(r.load_rc, -SAGE_ECORRUPT);
    assert_int_equal(r.verify_rc, -SAGE_ECORRUPT);

    /* an unknown kind may use a codec we do not know: skipped, not refused */
    r = forge(im, sec2_unknown_codec, 2);
    assert_int_equal(r.open_rc, 0);
    assert_int_equal(r.load_rc, -SAGE_ECORRUPT);
    assert_int_equal(r.verify_rc, 0);

    /* padding must be zero even when every checksum agrees */
    r = forge(im, padding_nonzero, 0);
    assert_int_equal(r.open_rc, 0);
    assert_int_equal(r.verify_rc, -SAGE_ECORRUPT);
    assert_non_null(strstr(r.err.msg, "padding"));
    r = forge(im, gap_end_nonzero, 0);
    assert_int_equal(r.open_rc, 0);
    assert_int_equal(r.verify_rc, -SAGE_ECORRUPT);
    assert_non_null(strstr(r.err.msg, "padding"));

    /* section bytes changed, file checksum fixed, section checksum not */
    r = forge(im, sec0_data_changed, 0);
    assert_int_equal(r.open_rc, 0);
    assert_int_equal(r.load_rc, 0);     /* raw: load does not hash */
    assert_int_equal(r.verify_rc, -SAGE_ECORRUPT);
    assert_non_null(strstr(r.err.msg, "section 0 (build)"));

    /* a broken zstd frame with matching checksums: decoding catches it */
    r = forge(im, sec1_frame_damaged_checksummed, 1);
    assert_int_equal(r.open_rc, 0);
    assert_int_equal(r.load_rc, -SAGE_ECORRUPT);
    assert_int_equal(r.verify_rc, -SAGE_ECORRUPT);
    r = forge(im, sec1_frame_trailing_byte, 1);
    assert_int_equal(r.open_rc, 0);
    assert_int_equal(r.load_rc, -SAGE_ECORRUPT);
    assert_int_equal(r.verify_rc, -SAGE_ECORRUPT);
}

static void test_footer_mismatch(void **state)
{
    struct image *im = ((struct both *)*state)->im;
    struct sage_err err;
    uint8_t *img = copy_of(im);
    uint8_t *f = img + im->size - SAGE_FTR_LEN;
    /* a consistent footer from another header */
    sage_put64(f + SAGE_FTR_HDR_CHECKSUM, sage_le64(f + SAGE_FTR_HDR_CHECKSUM) ^ 1);
    sage_put64(f + SAGE_FTR_CHECKSUM, XXH3_64bits(f, SAGE_FTR_CHECKSUM));
    assert_int_equal(open_mem(img, im->size, 0, &err), -SAGE_ECORRUPT);
    assert_non_null(strstr(err.msg, "footer"));
    /* a whole-file checksum that lies, footer otherwise consistent */
    memcpy(img, im->img, im->size);
    sage_put64(f + SAGE_FTR_FILE_CHECKSUM, sage_le64(f + SAGE_FTR_FILE_CHECKSUM) + 1);
    sage_put64(f + SAGE_FTR_CHECKSUM, XXH3_64bits(f, SAGE_FTR_CHECKSUM));
    assert_int_equal(open_mem(img, im->size, 0, &err), 0);
    assert_int_equal(open_mem(img, im->size, SAGE_OPEN_VERIFY, &err), -SAGE_ECORRUPT);
    assert_non_null(strstr(err.msg, "whole-file"));
    free(img);
}

/* ---- paths that are not index files ---- */

static void expect_refused(const char *path, int code)
{
    struct sage_err err = { 0 };
    struct sage_reader *r = (struct sage_reader *)&err;
    int rc = sage_reader_open(path, SAGE_OPEN_VERIFY, &r, &err);
    if (rc != -code)
        fail_msg("'%s': rc %d (%s), want %d", path, rc, err.msg, -code);
    assert_null(r);
    assert_int_equal(err.code, code);
    if (!strstr(err.msg, path))
        fail_msg("message '%s' does not name '%s'", err.msg, path);
    assert_null(strchr(err.msg, '\n'));
}

static void test_not_index_files(void **state)
{
    struct ut_scratch *s = ((struct both *)*state)->s;
    char path[PATH_MAX];

    ut_path(path, sizeof(path), s->dir, "a-directory");
    assert_int_equal(mkdir(path, 0755), 0);
    expect_refused(path, SAGE_ENOTFILE);

    ut_path(path, sizeof(path), s->dir, "a-fifo");
    assert_int_equal(mkfifo(path, 0644), 0);
    alarm(20);      /* a blocking open would hang: let the signal fail the run */
    expect_refused(path, SAGE_ENOTFILE);
    alarm(0);

    ut_path(path, sizeof(path), s->dir, "empty.sage");
    ut_write_bytes(path, "", 0);
    expect_refused(path, SAGE_ECORRUPT);
    struct sage_err err = { 0 };
    struct sage_reader *r = NULL;
    assert_int_equal(sage_reader_open(path, 0, &r, &err), -SAGE_ECORRUPT);
    assert_non_null(strstr(err.msg, "empty"));

    ut_path(path, sizeof(path), s->dir, "notes.txt");
    static const char text[] = "this is not an index file\nat all\n";
    ut_write_bytes(path, text, sizeof(text) - 1);
    expect_refused(path, SAGE_ECORRUPT);
    assert_int_equal(sage_reader_open(path, 0, &r, &err), -SAGE_ECORRUPT);
    assert_non_null(strstr(err.msg, "bad magic"));

    /* a text file longer than a page still fails on the magic */
    char *big = malloc(3 * SAGE_PAGE);
    assert_non_null(big);
    memset(big, 'a', 3 * SAGE_PAGE);
    ut_path(path, sizeof(path), s->dir, "big.txt");
    ut_write_bytes(path, big, 3 * SAGE_PAGE);
    free(big);
    expect_refused(path, SAGE_ECORRUPT);
}

#define T(f) cmocka_unit_test_setup_teardown(f, image_setup, image_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_pristine_image_opens),
        T(test_flip_header_and_footer),
        T(test_flip_anywhere_verify),
        T(test_truncation),
        T(test_empty_and_bad_magic),
        T(test_versions),
        T(test_forged_structure),
        T(test_forged_content),
        T(test_footer_mismatch),
        T(test_not_index_files),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
