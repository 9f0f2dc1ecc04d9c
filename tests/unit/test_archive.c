/* indexer/archive.c: every format and compression we read, made at test time
 * with libarchive's writer; nested archives under one budget; zip-slip and
 * other unsafe names; ratio, expanded-bytes and entry-count bombs stopped
 * while streaming; truncation at every length; encrypted, symbolic-link and
 * other non-regular entries; the member and depth limits; out-of-memory. */
#include "util.h"

#include <archive.h>
#include <archive_entry.h>
#include <locale.h>
#include <time.h>

#include "../../indexer/archive.h"

#define MAX_ITEMS 64
#define MIB ((uint64_t)1 << 20)

/* ---- making archives ---- */

enum fmt { FMT_ZIP, FMT_TAR, FMT_USTAR, FMT_7Z, FMT_RAW };
enum filt { F_NONE, F_GZIP, F_BZIP2, F_XZ, F_ZSTD };

/* One entry to write. data NULL with len > 0 writes len bytes of fill. */
struct ent {
    const char *name;
    mode_t type;            /* AE_IFREG when 0 */
    const void *data;
    size_t len;
    const char *link;       /* symlink target, or hardlink target with type AE_IFREG */
    int hard;
    char fill;
};

/* Writes entries into a new buffer (free()) of at most cap bytes. The writer
 * runs in a C.UTF-8 locale, so names are UTF-8 (ustar keeps any bytes). */
static uint8_t *make(enum fmt fmt, enum filt filt, const char *opts, const char *pass,
                     const struct ent *e, size_t n, size_t cap, size_t *len)
{
    static uint8_t block[64 << 10];
    uint8_t *buf = malloc(cap);
    assert_non_null(buf);
    locale_t utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    assert_non_null(utf8);
    locale_t old = uselocale(utf8);
    struct archive *a = archive_write_new();
    assert_non_null(a);
    int r = fmt == FMT_ZIP     ? archive_write_set_format_zip(a)
            : fmt == FMT_TAR   ? archive_write_set_format_pax_restricted(a)
            : fmt == FMT_USTAR ? archive_write_set_format_ustar(a)
            : fmt == FMT_7Z    ? archive_write_set_format_7zip(a)
                               : archive_write_set_format_raw(a);
    assert_int_equal(r, ARCHIVE_OK);
    r = filt == F_GZIP    ? archive_write_add_filter_gzip(a)
        : filt == F_BZIP2 ? archive_write_add_filter_bzip2(a)
        : filt == F_XZ    ? archive_write_add_filter_xz(a)
        : filt == F_ZSTD  ? archive_write_add_filter_zstd(a)
                          : archive_write_add_filter_none(a);
    assert_int_equal(r, ARCHIVE_OK);
    if (opts)
        assert_int_equal(archive_write_set_options(a, opts), ARCHIVE_OK);
    if (pass)
        assert_int_equal(archive_write_set_passphrase(a, pass), ARCHIVE_OK);
    assert_int_equal(archive_write_open_memory(a, buf, cap, len), ARCHIVE_OK);
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *ae = archive_entry_new();
        assert_non_null(ae);
        archive_entry_copy_pathname(ae, e[i].name);
        archive_entry_set_filetype(ae, e[i].type ? e[i].type : AE_IFREG);
        archive_entry_set_perm(ae, e[i].type == AE_IFDIR ? 0755 : 0644);
        archive_entry_set_mtime(ae, 1700000000, 0);
        if (e[i].link && e[i].hard)
            archive_entry_copy_hardlink(ae, e[i].link);
        else if (e[i].link)
            archive_entry_copy_symlink(ae, e[i].link);
        if (!e[i].type || e[i].type == AE_IFREG)
            archive_entry_set_size(ae, e[i].hard ? 0 : (la_int64_t)e[i].len);
        if (e[i].type == AE_IFCHR)
            archive_entry_set_rdev(ae, 0x0501);
        r = archive_write_header(a, ae);
        if (r != ARCHIVE_OK)
            fail_msg("write header '%s': %s", e[i].name, archive_error_string(a));
        size_t done = 0;
        while (!e[i].hard && done < e[i].len) {
            size_t k = e[i].len - done < sizeof(block) ? e[i].len - done : sizeof(block);
            if (!e[i].data)
                memset(block, e[i].fill, k);
            const void *src = e[i].data ? (const uint8_t *)e[i].data + done : block;
            la_ssize_t w = archive_write_data(a, src, k);
            if (w <= 0)
                fail_msg("write data '%s': %s", e[i].name, archive_error_string(a));
            done += (size_t)w;
        }
        archive_entry_free(ae);
    }
    r = archive_write_close(a);
    if (r != ARCHIVE_OK)
        fail_msg("close: %s", archive_error_string(a));
    archive_write_free(a);
    uselocale(old);
    freelocale(utf8);
    return buf;
}

/* ---- recording a walk ---- */

struct item {
    char path[4400];
    char reason[64];
    uint8_t *data;
    size_t len;
};

struct log {
    size_t n_members, n_skips;
    struct item members[MAX_ITEMS], skips[MAX_ITEMS];
    size_t max_seen;        /* longest member delivered */
};

/* The context of one walk; nested walks get their own with a longer prefix. */
struct rec {
    struct log *log;
    const struct archive_limits *lim;
    struct archive_budget *budget;
    unsigned depth;
    int nest;               /* walk members archive_detect accepts */
    size_t stop_after;      /* on_member returns 7 once this many were seen; 0: never */
    char prefix[512];
    struct sage_err *err;   /* for nested walks */
};

static int on_member(void *ctx, const char *path, const uint8_t *data, size_t len);

/* Whether path has a ".." component. */
static int has_dotdot(const char *path)
{
    for (const char *p = path; *p; p++)
        if ((p == path || p[-1] == '/') && p[0] == '.' && p[1] == '.' && (p[2] == '/' || !p[2]))
            return 1;
    return 0;
}

static void on_skip(void *ctx, const char *path, const char *reason)
{
    struct rec *r = ctx;
    struct log *l = r->log;
    assert_non_null(path);
    assert_non_null(reason);
    /* callbacks run in the caller's locale, not the walk's */
    assert_true(uselocale((locale_t)0) == LC_GLOBAL_LOCALE);
    if (l->n_skips < MAX_ITEMS) {
        struct item *it = &l->skips[l->n_skips];
        snprintf(it->path, sizeof(it->path), "%.200s%.4096s", r->prefix, path);
        snprintf(it->reason, sizeof(it->reason), "%s", reason);
    }
    l->n_skips++;
}

static int on_member(void *ctx, const char *path, const uint8_t *data, size_t len)
{
    struct rec *r = ctx;
    struct log *l = r->log;
    assert_non_null(path);
    assert_non_null(data);
    assert_true(uselocale((locale_t)0) == LC_GLOBAL_LOCALE);
    /* never a path that escapes: no "..", not absolute, no backslash */
    assert_true(path[0] != '/' && path[0] != '\0');
    assert_false(has_dotdot(path));
    assert_null(strchr(path, '\\'));
    assert_null(strstr(path, "//"));
    if (len > l->max_seen)
        l->max_seen = len;
    if (r->nest && archive_detect(data, len)) {
        struct rec child = *r;
        child.depth = r->depth + 1;
        int k = snprintf(child.prefix, sizeof(child.prefix), "%.200s%.200s/", r->prefix, path);
        assert_true(k > 0 && (size_t)k < sizeof(child.prefix));
        return archive_walk(path, data, len, r->lim, r->budget, child.depth, on_member, on_skip,
                            &child, r->err);
    }
    if (l->n_members < MAX_ITEMS) {
        struct item *it = &l->members[l->n_members];
        snprintf(it->path, sizeof(it->path), "%.200s%.4096s", r->prefix, path);
        it->data = malloc(len + 1);
        assert_non_null(it->data);
        memcpy(it->data, data, len);
        it->len = len;
    }
    l->n_members++;
    if (r->stop_after && l->n_members >= r->stop_after)
        return 7;
    return 0;
}

static void log_free(struct log *l)
{
    for (size_t i = 0; i < l->n_members && i < MAX_ITEMS; i++)
        free(l->members[i].data);
    memset(l, 0, sizeof(*l));
}

static const struct archive_limits default_limits = {
    .max_entries = 1000,
    .max_expanded = 500 * MIB,
    .max_ratio = 100,
    .max_member = 64 * MIB,
    .max_depth = 3,
};

/* Walks data as name under lim with a fresh budget into l. */
static int walk(const char *name, const uint8_t *data, size_t len,
                const struct archive_limits *lim, struct log *l, struct archive_budget *budget,
                struct sage_err *err)
{
    struct archive_budget local = { 0, 0 };
    struct rec r = { .log = l, .lim = lim, .budget = budget ? budget : &local, .err = err };
    memset(err, 0, sizeof(*err));
    int rc = archive_walk(name, data, len, lim, r.budget, 0, on_member, on_skip, &r, err);
    assert_true(uselocale((locale_t)0) == LC_GLOBAL_LOCALE);
    return rc;
}

static void expect_member(const struct log *l, size_t i, const char *path, const void *data,
                          size_t len)
{
    assert_true(i < l->n_members);
    assert_string_equal(l->members[i].path, path);
    assert_int_equal(l->members[i].len, len);
    if (len)
        assert_memory_equal(l->members[i].data, data, len);
}

static void expect_skip(const struct log *l, size_t i, const char *path, const char *reason)
{
    assert_true(i < l->n_skips);
    if (path)
        assert_string_equal(l->skips[i].path, path);
    assert_string_equal(l->skips[i].reason, reason);
}

/* ---- the tests ---- */

static const char text_a[] = "# Title\n\nSome *markdown* text.\n";

struct sample {
    uint8_t *big;           /* 200 KiB: several read blocks */
    size_t big_len;
    struct ent e[4];
};

static void sample_init(struct sample *s)
{
    s->big_len = 200 << 10;
    s->big = malloc(s->big_len);
    assert_non_null(s->big);
    ut_fill(s->big, s->big_len, 7);
    struct ent e[4] = {
        { .name = "docs", .type = AE_IFDIR },
        { .name = "docs/a.md", .data = text_a, .len = sizeof(text_a) - 1 },
        { .name = "big.bin", .data = s->big, .len = s->big_len },
        { .name = "c/empty.txt", .data = "", .len = 0 },
    };
    memcpy(s->e, e, sizeof(e));
}

static void check_sample(const struct log *l, const struct sample *s)
{
    assert_int_equal(l->n_members, 3);
    expect_member(l, 0, "docs/a.md", text_a, sizeof(text_a) - 1);
    expect_member(l, 1, "big.bin", s->big, s->big_len);
    expect_member(l, 2, "c/empty.txt", "", 0);
    assert_int_equal(l->n_skips, 0);     /* a folder entry is no news */
}

static void test_formats(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        enum fmt fmt;
        enum filt filt;
    } cases[] = {
        { "s.zip", FMT_ZIP, F_NONE },     { "s.tar", FMT_TAR, F_NONE },
        { "s.tar.gz", FMT_TAR, F_GZIP },  { "s.tar.bz2", FMT_TAR, F_BZIP2 },
        { "s.tar.xz", FMT_TAR, F_XZ },    { "s.tar.zst", FMT_TAR, F_ZSTD },
        { "s.7z", FMT_7Z, F_NONE },       { "s.ustar", FMT_USTAR, F_NONE },
    };
    struct sample s;
    sample_init(&s);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len;
        uint8_t *img = make(cases[i].fmt, cases[i].filt, NULL, NULL, s.e, 4, 1 << 20, &len);
        struct log l = { 0 };
        struct sage_err err;
        struct archive_budget b = { 0, 0 };
        assert_int_equal(archive_detect(img, len), 1);
        int rc = walk(cases[i].name, img, len, &default_limits, &l, &b, &err);
        if (rc != 0)
            fail_msg("%s: %s", cases[i].name, sage_err_msg(&err, rc));
        check_sample(&l, &s);
        assert_int_equal(b.entries, 4);
        assert_true(b.expanded >= s.big_len + sizeof(text_a) - 1);
        log_free(&l);
        free(img);
    }
    free(s.big);
}

/* A lone compressed file: one member, named without the suffix. */
static void test_single_compressed(void **state)
{
    (void)state;
    static const struct {
        const char *name, *member;
        enum filt filt;
    } cases[] = {
        { "notes.txt.gz", "notes.txt", F_GZIP },
        { "lib/docs/notes.txt.bz2", "notes.txt", F_BZIP2 },
        { "NOTES.TXT.XZ", "NOTES.TXT", F_XZ },
        { "notes.md.zst", "notes.md", F_ZSTD },
        { "weird", "weird", F_GZIP },
        { ".gz", "data", F_GZIP },
        { "", "data", F_ZSTD },
    };
    static const char body[] = "plain text, compressed on its own\n";
    struct ent e = { .name = "data", .data = body, .len = sizeof(body) - 1 };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len;
        uint8_t *img = make(FMT_RAW, cases[i].filt, NULL, NULL, &e, 1, 1 << 16, &len);
        struct log l = { 0 };
        struct sage_err err;
        assert_int_equal(archive_detect(img, len), 1);
        int rc = walk(cases[i].name, img, len, &default_limits, &l, NULL, &err);
        if (rc != 0)
            fail_msg("%s: %s", cases[i].name, sage_err_msg(&err, rc));
        assert_int_equal(l.n_members, 1);
        assert_int_equal(l.n_skips, 0);
        expect_member(&l, 0, cases[i].member, body, sizeof(body) - 1);
        log_free(&l);
        free(img);
    }
}

/* Text, even text that starts like a compressed stream, is not an archive. */
static void test_not_archive(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "hello, world\n", "BZh9 is how a bzip2 stream starts\n", "PK\x03\x04 and then nothing",
        "\x1f\x8b\x08 broken gzip header",
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        struct log l = { 0 };
        struct sage_err err;
        int rc = walk("t.txt", (const uint8_t *)texts[i], strlen(texts[i]), &default_limits, &l,
                      NULL, &err);
        assert_int_equal(rc, -SAGE_ECORRUPT);
        assert_int_equal(err.code, SAGE_ECORRUPT);
        assert_true(strlen(err.msg) > 0);
        assert_int_equal(l.n_members, 0);
    }
    struct log l = { 0 };
    struct sage_err err;
    assert_int_equal(walk("e", (const uint8_t *)"", 0, &default_limits, &l, NULL, &err),
                     -SAGE_ECORRUPT);
    assert_int_equal(walk("n", NULL, 0, &default_limits, &l, NULL, &err), -SAGE_ECORRUPT);
    assert_int_equal(archive_walk("x", NULL, 5, &default_limits, &(struct archive_budget){ 0 }, 0,
                                  on_member, on_skip, NULL, &err),
                     -SAGE_EINVAL);
    assert_int_equal(l.n_members, 0);
}

static void test_detect(void **state)
{
    (void)state;
    static const char text[] = "just some text that is long enough to reach offset 257 ......";
    assert_int_equal(archive_detect((const uint8_t *)text, sizeof(text) - 1), 0);
    assert_int_equal(archive_detect((const uint8_t *)"", 0), 0);
    assert_int_equal(archive_detect(NULL, 0), 0);
    assert_int_equal(archive_detect((const uint8_t *)"PK", 2), 0);
    assert_int_equal(archive_detect((const uint8_t *)"BZh", 3), 0);
    assert_int_equal(archive_detect((const uint8_t *)"BZhx1AY&SY", 10), 0);
    assert_int_equal(archive_detect((const uint8_t *)"\x1f\x8b", 2), 0);
    assert_int_equal(archive_detect((const uint8_t *)"\x28\xb5\x2f", 3), 0);
    assert_int_equal(archive_detect((const uint8_t *)"7z\xbc\xaf\x27\x1c", 6), 1);
    assert_int_equal(archive_detect((const uint8_t *)"\xfd" "7zXZ\x00", 6), 1);
    /* a 600-byte text with "ustar" elsewhere is not a tar */
    uint8_t fake[600];
    memset(fake, 'a', sizeof(fake));
    memcpy(fake + 100, "ustar", 5);
    assert_int_equal(archive_detect(fake, sizeof(fake)), 0);
    memcpy(fake + 257, "ustar", 5);
    assert_int_equal(archive_detect(fake, sizeof(fake)), 1);
    assert_int_equal(archive_detect(fake, 261), 0);

    /* every format we write, and the empty zip */
    static const struct {
        enum fmt fmt;
        enum filt filt;
    } cases[] = {
        { FMT_ZIP, F_NONE }, { FMT_TAR, F_NONE }, { FMT_TAR, F_GZIP }, { FMT_TAR, F_BZIP2 },
        { FMT_TAR, F_XZ },   { FMT_TAR, F_ZSTD }, { FMT_7Z, F_NONE },  { FMT_RAW, F_GZIP },
    };
    struct ent e = { .name = "x.txt", .data = "x", .len = 1 };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len;
        uint8_t *img = make(cases[i].fmt, cases[i].filt, NULL, NULL, &e, 1, 1 << 16, &len);
        assert_int_equal(archive_detect(img, len), 1);
        free(img);
    }
    size_t len;
    uint8_t *img = make(FMT_ZIP, F_NONE, NULL, NULL, NULL, 0, 1 << 10, &len);
    assert_int_equal(len, 22);
    assert_int_equal(archive_detect(img, len), 1);
    struct log l = { 0 };
    struct sage_err err;
    assert_int_equal(walk("empty.zip", img, len, &default_limits, &l, NULL, &err), 0);
    assert_int_equal(l.n_members + l.n_skips, 0);
    free(img);
}

/* A zip inside a tar.gz, walked by a callback that recurses with the same
 * budget. */
static void test_nested(void **state)
{
    (void)state;
    static const char deep[] = "deep inside\n";
    struct ent inner_e[] = {
        { .name = "deep/x.md", .data = deep, .len = sizeof(deep) - 1 },
        { .name = "../escape.md", .data = deep, .len = sizeof(deep) - 1 },
    };
    size_t inner_len, outer_len;
    uint8_t *inner = make(FMT_ZIP, F_NONE, NULL, NULL, inner_e, 2, 1 << 16, &inner_len);
    struct ent outer_e[] = {
        { .name = "outer.txt", .data = "top", .len = 3 },
        { .name = "pkg/inner.zip", .data = inner, .len = inner_len },
        { .name = "last.txt", .data = "end", .len = 3 },
    };
    uint8_t *outer = make(FMT_TAR, F_GZIP, NULL, NULL, outer_e, 3, 1 << 16, &outer_len);
    struct log l = { 0 };
    struct sage_err err = { 0 };
    struct archive_budget b = { 0, 0 };
    struct rec r = { .log = &l, .lim = &default_limits, .budget = &b, .nest = 1, .err = &err };
    int rc = archive_walk("bundle.tar.gz", outer, outer_len, &default_limits, &b, 0, on_member,
                          on_skip, &r, &err);
    if (rc != 0)
        fail_msg("%s", sage_err_msg(&err, rc));
    assert_int_equal(l.n_members, 3);
    expect_member(&l, 0, "outer.txt", "top", 3);
    expect_member(&l, 1, "pkg/inner.zip/deep/x.md", deep, sizeof(deep) - 1);
    expect_member(&l, 2, "last.txt", "end", 3);
    assert_int_equal(l.n_skips, 1);
    expect_skip(&l, 0, "pkg/inner.zip/../escape.md", "unsafe name");
    assert_int_equal(b.entries, 5);
    /* the zip's bytes count as the tar's, and its members again */
    assert_true(b.expanded >= 6 + inner_len + 2 * (sizeof(deep) - 1));
    log_free(&l);

    /* the inner archive's entries count against the shared limit */
    struct archive_limits lim = default_limits;
    lim.max_entries = 4;
    memset(&b, 0, sizeof(b));
    r.lim = &lim;
    rc = archive_walk("bundle.tar.gz", outer, outer_len, &lim, &b, 0, on_member, on_skip, &r,
                      &err);
    assert_int_equal(rc, -SAGE_ELIMIT);
    assert_non_null(strstr(err.msg, "more than 4 entries"));
    log_free(&l);
    free(outer);
    free(inner);
}

/* zip in zip in zip in zip: depth 0 to 3. */
static void test_depth(void **state)
{
    (void)state;
    size_t len;
    struct ent e = { .name = "leaf.txt", .data = "leaf", .len = 4 };
    uint8_t *img = make(FMT_ZIP, F_NONE, NULL, NULL, &e, 1, 1 << 16, &len);
    for (int i = 0; i < 3; i++) {
        struct ent w = { .name = "nested.zip", .data = img, .len = len };
        size_t n;
        uint8_t *next = make(FMT_ZIP, F_NONE, NULL, NULL, &w, 1, 1 << 16, &n);
        free(img);
        img = next;
        len = n;
    }
    struct archive_limits lim = default_limits;
    struct sage_err err = { 0 };
    for (unsigned max = 0; max <= 3; max++) {
        struct log l = { 0 };
        struct archive_budget b = { 0, 0 };
        lim.max_depth = max;
        struct rec r = { .log = &l, .lim = &lim, .budget = &b, .nest = 1, .err = &err };
        int rc = archive_walk("top.zip", img, len, &lim, &b, 0, on_member, on_skip, &r, &err);
        if (max < 3) {
            assert_int_equal(rc, -SAGE_ELIMIT);
            assert_non_null(strstr(err.msg, "nested deeper than"));
            assert_int_equal(l.n_members, 0);
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(l.n_members, 1);
            expect_member(&l, 0, "nested.zip/nested.zip/nested.zip/leaf.txt", "leaf", 4);
        }
        log_free(&l);
    }
    /* straight to a depth past the limit: nothing is read */
    struct archive_budget b = { 0, 0 };
    lim.max_depth = 2;
    assert_int_equal(archive_walk("x.zip", img, len, &lim, &b, 3, on_member, on_skip, NULL, &err),
                     -SAGE_ELIMIT);
    assert_int_equal(b.entries, 0);
    free(img);
}

/* zip-slip: ".." refused, absolute and dotted paths made relative. */
static void test_unsafe_names(void **state)
{
    (void)state;
    struct ent e[] = {
        { .name = "../../etc/passwd", .data = "root", .len = 4 },
        { .name = "/abs/path", .data = "abs", .len = 3 },
        { .name = "a/../../b", .data = "b", .len = 1 },
        { .name = "./x/./y//z", .data = "xyz", .len = 3 },
        { .name = "win\\..\\..\\evil.txt", .data = "w", .len = 1 },
        { .name = "win\\ok.txt", .data = "ok", .len = 2 },
        { .name = "ok/..", .data = "d", .len = 1 },
        { .name = "caf\xc3\xa9/na\xc3\xafve.md", .data = "utf8", .len = 4 },
        { .name = "..foo/bar..", .data = "dots", .len = 4 },
    };
    const size_t n = sizeof(e) / sizeof(e[0]);
    enum fmt fmts[] = { FMT_ZIP, FMT_TAR };
    for (size_t f = 0; f < 2; f++) {
        size_t len;
        uint8_t *img = make(fmts[f], F_NONE, f == 0 ? "hdrcharset=UTF-8" : NULL, NULL, e, n,
                            1 << 16, &len);
        struct log l = { 0 };
        struct sage_err err;
        int rc = walk("slip", img, len, &default_limits, &l, NULL, &err);
        if (rc != 0)
            fail_msg("%s", sage_err_msg(&err, rc));
        assert_int_equal(l.n_members, 5);
        expect_member(&l, 0, "abs/path", "abs", 3);
        expect_member(&l, 1, "x/y/z", "xyz", 3);
        expect_member(&l, 2, "win/ok.txt", "ok", 2);
        expect_member(&l, 3, "caf\xc3\xa9/na\xc3\xafve.md", "utf8", 4);
        expect_member(&l, 4, "..foo/bar..", "dots", 4);
        assert_int_equal(l.n_skips, 4);
        expect_skip(&l, 0, "../../etc/passwd", "unsafe name");
        expect_skip(&l, 1, "a/../../b", "unsafe name");
        /* the zip reader turns backslashes into slashes itself */
        expect_skip(&l, 2, f == 0 ? "win/../../evil.txt" : "win\\..\\..\\evil.txt",
                    "unsafe name");
        expect_skip(&l, 3, "ok/..", "unsafe name");
        log_free(&l);
        free(img);
    }

    /* control characters and bytes that are not UTF-8 (ustar keeps bytes) */
    struct ent bad[] = {
        { .name = "bell\x07.txt", .data = "1", .len = 1 },
        { .name = "esc\x1b[31m.txt", .data = "2", .len = 1 },
        { .name = "latin1-\xe9t\xe9.txt", .data = "3", .len = 1 },
        { .name = "c1-\xc2\x85.txt", .data = "4", .len = 1 },
        { .name = "fine.txt", .data = "5", .len = 1 },
    };
    size_t len;
    uint8_t *img = make(FMT_USTAR, F_NONE, NULL, NULL, bad, 5, 1 << 16, &len);
    struct log l = { 0 };
    struct sage_err err;
    assert_int_equal(walk("bad.tar", img, len, &default_limits, &l, NULL, &err), 0);
    assert_int_equal(l.n_members, 1);
    expect_member(&l, 0, "fine.txt", "5", 1);
    assert_int_equal(l.n_skips, 4);
    for (size_t i = 0; i < 4; i++) {
        expect_skip(&l, i, NULL, "unsafe name");
        /* the reported name is printable */
        for (const char *p = l.skips[i].path; *p; p++)
            assert_true((unsigned char)*p >= 0x20 && *p != 0x7f);
    }
    expect_skip(&l, 0, "bell?.txt", "unsafe name");
    expect_skip(&l, 2, "latin1-?t?.txt", "unsafe name");
    log_free(&l);
    free(img);

    /* a name over 4096 bytes is refused, and shown cut short */
    char *longname = malloc(5001);
    assert_non_null(longname);
    memset(longname, 'd', 5000);
    memcpy(longname, "dir/", 4);
    longname[5000] = '\0';
    char *almost = malloc(4097);
    assert_non_null(almost);
    memset(almost, 'n', 4096);
    almost[4096] = '\0';
    struct ent lng[] = {
        { .name = longname, .data = "l", .len = 1 },
        { .name = almost, .data = "a", .len = 1 },
    };
    img = make(FMT_TAR, F_NONE, NULL, NULL, lng, 2, 1 << 16, &len);
    int rc = walk("long.tar", img, len, &default_limits, &l, NULL, &err);
    if (rc != 0)
        fail_msg("%s", sage_err_msg(&err, rc));
    assert_int_equal(l.n_members, 1);
    expect_member(&l, 0, almost, "a", 1);
    assert_int_equal(l.n_skips, 1);
    expect_skip(&l, 0, NULL, "unsafe name");
    assert_int_equal(strlen(l.skips[0].path), 256);
    log_free(&l);
    free(img);
    free(almost);
    free(longname);
}

/* Counts sage_* allocations: the largest single request. */
static size_t *largest(void)
{
    static size_t n;
    return &n;
}

static void *big_malloc(size_t n)
{
    if (n > *largest())
        *largest() = n;
    return malloc(n);
}

static void *big_realloc(void *p, size_t n)
{
    if (n > *largest())
        *largest() = n;
    return realloc(p, n);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs a bomb under lim and checks it stops early, with little memory. */
static void expect_bomb(const char *name, const uint8_t *img, size_t len,
                        const struct archive_limits *lim, const char *why, uint64_t max_expanded,
                        uint64_t max_alloc)
{
    static const struct sage_alloc_hooks hooks = { big_malloc, big_realloc, free };
    struct log l = { 0 };
    struct sage_err err;
    struct archive_budget b = { 0, 0 };
    *largest() = 0;
    sage_alloc_set(&hooks);
    double t0 = now();
    int rc = walk(name, img, len, lim, &l, &b, &err);
    double dt = now() - t0;
    sage_alloc_set(NULL);
    if (rc != -SAGE_ELIMIT)
        fail_msg("%s: rc %d, expanded %llu: %s", name, rc, (unsigned long long)b.expanded,
                 sage_err_msg(&err, rc));
    if (!strstr(err.msg, why))
        fail_msg("%s: '%s' lacks '%s'", name, err.msg, why);
    assert_int_equal(l.n_members, 0);
    /* stopped soon after the limit, and never held the member whole */
    assert_true(b.expanded <= max_expanded);
    if (*largest() > max_alloc)
        fail_msg("%s: allocated %zu bytes at once", name, *largest());
    assert_true(dt < 5.0);
    log_free(&l);
}

static void test_ratio_bomb(void **state)
{
    (void)state;
    /* 50 MiB of one letter (zeros would read as an empty tar) */
    const size_t bomb = 50 << 20;
    struct ent e = { .name = "zeros.bin", .len = bomb, .fill = 'A' };
    size_t len;
    uint8_t *zip = make(FMT_ZIP, F_NONE, NULL, NULL, &e, 1, 1 << 20, &len);
    assert_true(len < bomb / 500);
    expect_bomb("bomb.zip", zip, len, &default_limits, "zip bomb defence: expansion ratio above 100",
                (uint64_t)len * 100 + (64 << 10), (uint64_t)len * 100 + 1);
    free(zip);
    uint8_t *tgz = make(FMT_TAR, F_GZIP, NULL, NULL, &e, 1, 1 << 20, &len);
    expect_bomb("bomb.tar.gz", tgz, len, &default_limits, "expansion ratio above 100",
                (uint64_t)len * 100 + (64 << 10), (uint64_t)len * 100 + 1);
    free(tgz);
    uint8_t *gz = make(FMT_RAW, F_GZIP, NULL, NULL, &e, 1, 1 << 20, &len);
    expect_bomb("zeros.bin.gz", gz, len, &default_limits, "expansion ratio above 100",
                (uint64_t)len * 100 + (64 << 10), (uint64_t)len * 100 + 1);

    /* with the ratio allowed, the expanded budget stops it */
    struct archive_limits lim = default_limits;
    lim.max_ratio = 1000000;
    lim.max_expanded = 8 * MIB;
    expect_bomb("zeros.bin.gz", gz, len, &lim, "zip bomb defence: expanded bytes exceed 8388608",
                8 * MIB + (64 << 10), 8 * MIB + 1);
    free(gz);

    /* a member over the member limit inside a compressed tar is drained, and
     * the budget still stops the bomb */
    lim.max_member = 1 * MIB;
    tgz = make(FMT_TAR, F_ZSTD, NULL, NULL, &e, 1, 1 << 20, &len);
    expect_bomb("bomb.tar.zst", tgz, len, &lim, "expanded bytes exceed", 8 * MIB + (64 << 10),
                1 * MIB);
    free(tgz);
}

/* 2000 tiny entries against a limit of 1000. */
static void test_entry_bomb(void **state)
{
    (void)state;
    const size_t n = 2000;
    struct ent *e = calloc(n, sizeof(*e));
    char (*names)[32] = calloc(n, sizeof(*names));
    assert_non_null(e);
    assert_non_null(names);
    for (size_t i = 0; i < n; i++) {
        snprintf(names[i], sizeof(names[i]), "f%04zu.txt", i);
        e[i] = (struct ent){ .name = names[i], .data = "x", .len = i % 2 ? 0 : 1,
                             .type = i % 2 ? AE_IFDIR : 0 };
    }
    static const enum fmt fmts[] = { FMT_ZIP, FMT_TAR };
    for (size_t f = 0; f < 2; f++) {
        size_t len;
        uint8_t *img = make(fmts[f], f ? F_GZIP : F_NONE, NULL, NULL, e, n, 1 << 20, &len);
        struct log l = { 0 };
        struct sage_err err;
        struct archive_budget b = { 0, 0 };
        int rc = walk("many", img, len, &default_limits, &l, &b, &err);
        assert_int_equal(rc, -SAGE_ELIMIT);
        assert_non_null(strstr(err.msg, "more than 1000 entries"));
        /* every entry counts, directories too */
        assert_int_equal(l.n_members, 500);
        assert_int_equal(l.n_skips, 0);     /* the 500 folders: counted, not reported */
        log_free(&l);
        free(img);
    }
    free(names);
    free(e);
}

/* Walks every prefix of img: no crash, nothing invented; a member delivered
 * is one of the archive's, whole, in order. */
static void sweep_truncations(const char *name, const uint8_t *img, size_t len,
                              const struct sample *s)
{
    for (size_t cut = 0; cut < len; cut++) {
        struct log l = { 0 };
        struct sage_err err;
        int rc = walk(name, img, cut, &default_limits, &l, NULL, &err);
        if (rc != 0 && rc != -SAGE_ECORRUPT && rc != -SAGE_ELIMIT)
            fail_msg("%s cut at %zu: %d %s", name, cut, rc, sage_err_msg(&err, rc));
        if (rc < 0)
            assert_true(strlen(err.msg) > 0);
        const struct ent *want[] = { &s->e[1], &s->e[2], &s->e[3] };
        assert_true(l.n_members <= 3);
        for (size_t i = 0; i < l.n_members; i++)
            expect_member(&l, i, want[i]->name, want[i]->data, want[i]->len);
        log_free(&l);
    }
}

static void test_truncated(void **state)
{
    (void)state;
    struct sample s;
    sample_init(&s);
    size_t len;
    uint8_t *zip = make(FMT_ZIP, F_NONE, NULL, NULL, s.e, 4, 1 << 20, &len);
    struct log l = { 0 };
    struct sage_err err;
    int rc = walk("half.zip", zip, len / 2, &default_limits, &l, NULL, &err);
    assert_int_equal(rc, -SAGE_ECORRUPT);
    assert_non_null(strstr(err.msg, "half.zip"));
    /* the streaming reader delivers what lies before the cut */
    assert_true(l.n_members <= 1);
    log_free(&l);
    free(zip);
    free(s.big);

    /* a damaged header mid-archive: what came before stays delivered, and
     * the walk stops there rather than hunting for the next good header */
    struct ent two[] = {
        { .name = "a.txt", .data = "a", .len = 1 },
        { .name = "b.txt", .data = "b", .len = 1 },
        { .name = "c.txt", .data = "c", .len = 1 },
    };
    uint8_t *tar = make(FMT_USTAR, F_NONE, NULL, NULL, two, 3, 1 << 16, &len);
    assert_memory_equal(tar + 1024, "b.txt", 5);
    tar[1024] = 'x';    /* the checksum no longer matches */
    rc = walk("damaged.tar", tar, len, &default_limits, &l, NULL, &err);
    assert_int_equal(rc, -SAGE_ECORRUPT);
    assert_int_equal(l.n_members, 1);
    expect_member(&l, 0, "a.txt", "a", 1);
    log_free(&l);
    free(tar);

    /* every cut of small archives, in each format */
    static const char small[] = "small member\n";
    s.big = (uint8_t *)small;
    s.big_len = sizeof(small) - 1;
    s.e[2].data = small;
    s.e[2].len = s.big_len;
    static const struct {
        enum fmt fmt;
        enum filt filt;
    } cases[] = {
        { FMT_ZIP, F_NONE }, { FMT_TAR, F_GZIP }, { FMT_7Z, F_NONE }, { FMT_TAR, F_XZ },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t *img = make(cases[i].fmt, cases[i].filt, NULL, NULL, s.e, 4, 1 << 16, &len);
        sweep_truncations("cut", img, len, &s);
        free(img);
    }
}

static void test_encrypted(void **state)
{
    (void)state;
    struct ent e[] = {
        { .name = "secret.txt", .data = "hidden", .len = 6 },
        { .name = "also.md", .data = "covert", .len = 6 },
    };
    size_t len;
    uint8_t *img = make(FMT_ZIP, F_NONE, "zip:encryption=zipcrypt", "passw0rd", e, 2, 1 << 16,
                        &len);
    struct log l = { 0 };
    struct sage_err err;
    assert_int_equal(walk("locked.zip", img, len, &default_limits, &l, NULL, &err), 0);
    assert_int_equal(l.n_members, 0);
    assert_int_equal(l.n_skips, 2);
    expect_skip(&l, 0, "secret.txt", "encrypted");
    expect_skip(&l, 1, "also.md", "encrypted");
    log_free(&l);

    /* next to plain members, as a nested archive */
    struct ent outer[] = {
        { .name = "a.txt", .data = "a", .len = 1 },
        { .name = "locked.zip", .data = img, .len = len },
        { .name = "b.txt", .data = "b", .len = 1 },
    };
    size_t olen;
    uint8_t *o = make(FMT_TAR, F_NONE, NULL, NULL, outer, 3, 1 << 16, &olen);
    struct archive_budget b = { 0, 0 };
    struct rec r = { .log = &l, .lim = &default_limits, .budget = &b, .nest = 1, .err = &err };
    assert_int_equal(archive_walk("o.tar", o, olen, &default_limits, &b, 0, on_member, on_skip, &r,
                                  &err),
                     0);
    assert_int_equal(l.n_members, 2);
    expect_member(&l, 0, "a.txt", "a", 1);
    expect_member(&l, 1, "b.txt", "b", 1);
    expect_skip(&l, 0, "locked.zip/secret.txt", "encrypted");
    log_free(&l);
    free(o);
    free(img);
}

static void test_not_regular(void **state)
{
    (void)state;
    struct ent e[] = {
        { .name = "a.txt", .data = "aaa", .len = 3 },
        { .name = "link", .type = AE_IFLNK, .link = "/etc/passwd" },
        { .name = "hard", .link = "a.txt", .hard = 1 },
        { .name = "dir", .type = AE_IFDIR },
        { .name = "fifo", .type = AE_IFIFO },
        { .name = "tty", .type = AE_IFCHR },
        { .name = "z.txt", .data = "zz", .len = 2 },
    };
    size_t len;
    uint8_t *img = make(FMT_TAR, F_NONE, NULL, NULL, e, 7, 1 << 16, &len);
    struct log l = { 0 };
    struct sage_err err;
    assert_int_equal(walk("t.tar", img, len, &default_limits, &l, NULL, &err), 0);
    assert_int_equal(l.n_members, 2);
    expect_member(&l, 0, "a.txt", "aaa", 3);
    expect_member(&l, 1, "z.txt", "zz", 2);
    assert_int_equal(l.n_skips, 4);     /* not "dir": folders are not reported */
    static const char *const skipped[] = { "link", "hard", "fifo", "tty" };
    for (size_t i = 0; i < 4; i++)
        expect_skip(&l, i, skipped[i], "not a regular file");
    log_free(&l);
    free(img);

    /* a zip symlink too */
    struct ent z[] = {
        { .name = "ln", .type = AE_IFLNK, .link = "../../outside" },
        { .name = "r.txt", .data = "r", .len = 1 },
    };
    img = make(FMT_ZIP, F_NONE, NULL, NULL, z, 2, 1 << 16, &len);
    assert_int_equal(walk("z.zip", img, len, &default_limits, &l, NULL, &err), 0);
    assert_int_equal(l.n_members, 1);
    expect_member(&l, 0, "r.txt", "r", 1);
    assert_int_equal(l.n_skips, 1);
    expect_skip(&l, 0, "ln", "not a regular file");
    log_free(&l);
    free(img);
}

/* Members over max_member are skipped; the rest go on. */
static void test_member_limit(void **state)
{
    (void)state;
    const size_t big_len = 3 << 20;
    uint8_t *big = malloc(big_len);
    assert_non_null(big);
    ut_fill(big, big_len, 3);
    struct ent e[] = {
        { .name = "small.txt", .data = "s", .len = 1 },
        { .name = "huge.bin", .data = big, .len = big_len },
        { .name = "exact.bin", .data = big, .len = 1 << 20 },
        { .name = "after.txt", .data = "a", .len = 1 },
    };
    struct archive_limits lim = default_limits;
    lim.max_member = 1 << 20;
    static const struct {
        enum fmt fmt;
        enum filt filt;
    } cases[] = { { FMT_ZIP, F_NONE }, { FMT_TAR, F_NONE }, { FMT_TAR, F_GZIP }, { FMT_7Z, F_NONE } };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len;
        uint8_t *img = make(cases[i].fmt, cases[i].filt, NULL, NULL, e, 4, 8 << 20, &len);
        struct log l = { 0 };
        struct sage_err err;
        struct archive_budget b = { 0, 0 };
        int rc = walk("m", img, len, &lim, &l, &b, &err);
        if (rc != 0)
            fail_msg("case %zu: %s", i, sage_err_msg(&err, rc));
        assert_int_equal(l.n_members, 3);
        expect_member(&l, 0, "small.txt", "s", 1);
        expect_member(&l, 1, "exact.bin", big, 1 << 20);
        expect_member(&l, 2, "after.txt", "a", 1);
        assert_int_equal(l.n_skips, 1);
        expect_skip(&l, 0, "huge.bin", "larger than the member limit");
        /* at least what was read of it counts */
        assert_true(b.expanded > (1 << 20) + (1 << 20));
        log_free(&l);
        free(img);
    }
    /* a member limit of zero keeps only empty members */
    lim.max_member = 0;
    struct ent z[] = { { .name = "empty", .data = "", .len = 0 }, { .name = "one", .data = "1", .len = 1 } };
    size_t len;
    uint8_t *img = make(FMT_ZIP, F_NONE, NULL, NULL, z, 2, 1 << 16, &len);
    struct log l = { 0 };
    struct sage_err err;
    assert_int_equal(walk("z", img, len, &lim, &l, NULL, &err), 0);
    assert_int_equal(l.n_members, 1);
    expect_member(&l, 0, "empty", "", 0);
    expect_skip(&l, 0, "one", "larger than the member limit");
    log_free(&l);
    free(img);
    free(big);
}

/* The callback's non-zero return stops the walk and is returned. */
static void test_callback_stop(void **state)
{
    (void)state;
    struct sample s;
    sample_init(&s);
    size_t len;
    uint8_t *img = make(FMT_TAR, F_XZ, NULL, NULL, s.e, 4, 1 << 20, &len);
    struct log l = { 0 };
    struct sage_err err = { 0 };
    struct archive_budget b = { 0, 0 };
    struct rec r = { .log = &l, .lim = &default_limits, .budget = &b, .stop_after = 2 };
    assert_int_equal(archive_walk("s.txz", img, len, &default_limits, &b, 0, on_member, on_skip,
                                  &r, &err),
                     7);
    assert_int_equal(l.n_members, 2);
    log_free(&l);
    /* no callbacks at all is allowed */
    assert_int_equal(archive_walk("s.txz", img, len, &default_limits, &b, 0, NULL, NULL, NULL, NULL),
                     0);
    free(img);
    free(s.big);
}

/* Every allocation of ours may fail: -SAGE_ENOMEM, nothing leaked. */
static void test_oom(void **state)
{
    (void)state;
    struct sample s;
    sample_init(&s);
    size_t len;
    uint8_t *img = make(FMT_ZIP, F_NONE, NULL, NULL, s.e, 4, 1 << 20, &len);
    int ok = 0;
    for (long i = 0; i < 100 && !ok; i++) {
        struct log l = { 0 };
        struct sage_err err = { 0 };
        ut_oom_arm(i);
        int rc = walk("oom.zip", img, len, &default_limits, &l, NULL, &err);
        int failed = ut_oom_state()->failed;
        assert_int_equal(ut_oom_disarm(), 0);
        if (failed) {
            assert_int_equal(rc, -SAGE_ENOMEM);
        } else {
            assert_int_equal(rc, 0);
            check_sample(&l, &s);
            ok = 1;
        }
        log_free(&l);
    }
    assert_true(ok);
    free(img);
    free(s.big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_formats),       cmocka_unit_test(test_single_compressed),
        cmocka_unit_test(test_not_archive),   cmocka_unit_test(test_detect),
        cmocka_unit_test(test_nested),        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_unsafe_names),  cmocka_unit_test(test_ratio_bomb),
        cmocka_unit_test(test_entry_bomb),    cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_encrypted),     cmocka_unit_test(test_not_regular),
        cmocka_unit_test(test_member_limit),  cmocka_unit_test(test_callback_stop),
        cmocka_unit_test(test_oom),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
