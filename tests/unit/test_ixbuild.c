/* The index builder under a memory limit: the file written with runs spilled
 * to a temporary file must equal, byte for byte, the one built all in memory
 * (limits from one byte, a run per chunk, to a few runs; a term in every
 * chunk, so its postings and its blocks of 128 straddle run boundaries);
 * a missing or unusable temporary directory, every failing pwrite and pread
 * of the temporary file and short transfers give a clean error, no index
 * and no leak, and damaged bytes read back are an error or harmless;
 * nothing is left in the directory. Out of memory while
 * spilling is in test_index.c's test_oom. */
#include "util.h"

#include "index.h"
#include "ixbuild.h"
#include "reader.h"
#include "tokenize.h"
#include "writer.h"

static const struct sage_tokenizer_opts english = {
    .stemmer = "english", .stopwords = sage_stopwords_english, .n_stopwords = 33
};

/* ---- the seam: counts calls, fails one, or makes transfers short ---- */

enum { OP_PWRITE, OP_PREAD, OP_COUNT };

static struct {
    int calls[OP_COUNT];
    int fail_op, fail_at, fail_errno;
    int eof;                /* the failing pread returns 0 rather than -1 */
    uint8_t flip;           /* the failing pread succeeds with this xor in a byte */
    int short_io;           /* at most 100 bytes a call */
} fio;

static void fio_reset(int fail_op, int fail_at, int fail_errno)
{
    memset(&fio, 0, sizeof(fio));
    fio.fail_op = fail_op;
    fio.fail_at = fail_at;
    fio.fail_errno = fail_errno;
}

static int fio_fail(int op)
{
    int k = fio.calls[op]++;
    if (op == fio.fail_op && k == fio.fail_at) {
        errno = fio.fail_errno;
        return 1;
    }
    return 0;
}

static ssize_t fake_pwrite(int fd, const void *p, size_t n, off_t off)
{
    if (fio_fail(OP_PWRITE))
        return -1;
    return pwrite(fd, p, fio.short_io && n > 100 ? 100 : n, off);
}

static ssize_t fake_pread(int fd, void *p, size_t n, off_t off)
{
    int fail = fio_fail(OP_PREAD);
    if (fail && !fio.flip)
        return fio.eof ? 0 : -1;
    ssize_t k = pread(fd, p, fio.short_io && n > 100 ? 100 : n, off);
    if (fail && k > 0)
        ((uint8_t *)p)[(size_t)(off * 7 + k / 3) % (size_t)k] ^= fio.flip;
    return k;
}

static const struct sage_ixbuild_io fake_io = { fake_pwrite, fake_pread };

/* ---- corpus ---- */

static uint32_t rnd(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(*s >> 32);
}

/* n chunks (free with free_texts): "every", a word in every chunk, then words
 * drawn with a Zipf-like skew from a vocabulary of vocab, some repeated, and
 * now and then a chunk with no indexable word at all. */
static char **make_texts(size_t n, unsigned vocab, uint64_t seed)
{
    char **t = calloc(n, sizeof(*t));
    assert_non_null(t);
    for (size_t i = 0; i < n; i++) {
        size_t cap = 4096, len = 0;
        t[i] = malloc(cap);
        assert_non_null(t[i]);
        if (i % 97 == 13) {
            snprintf(t[i], cap, "the of and, !!");
            continue;
        }
        len += (size_t)snprintf(t[i], cap, "every chunk%zu", i % 7);
        unsigned words = 3 + rnd(&seed) % 40;
        for (unsigned w = 0; w < words; w++) {
            uint32_t r = rnd(&seed) % vocab;
            uint32_t k = (uint32_t)(((uint64_t)r * r / vocab) * r / vocab);  /* skewed low */
            len += (size_t)snprintf(t[i] + len, cap - len, " w%ux", k);
        }
        assert_true(len < cap);
    }
    return t;
}

static void free_texts(char **t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(t[i]);
    free(t);
}

/* Builds texts[0, n) into path with opts (NULL: no limit); returns the
 * first error. */
static int build(const char *path, char *const *texts, size_t n,
                 const struct sage_ixbuild_opts *opts, struct sage_err *err)
{
    struct sage_writer_opts wo = { .flags = SAGE_WRITE_NO_SYNC | SAGE_WRITE_NO_SHA256 };
    struct sage_writer *w = NULL;
    struct sage_ixbuild *b = NULL;
    int rc = sage_ixbuild_new(&english, opts, &b, err);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = sage_ixbuild_add(b, texts[i], strlen(texts[i]), NULL, err);
    if (rc == 0)
        rc = sage_writer_open(path, &wo, &w, err);
    if (rc == 0)
        rc = sage_ixbuild_write(b, w, err);
    if (rc == 0) {
        sage_writer_set_counts(w, 0, n);
        rc = sage_writer_commit(w, NULL, err);
    }
    sage_writer_free(w);
    sage_ixbuild_free(b);
    return rc;
}

/* ---- byte identity ---- */

#define N_CHUNKS 1500

static void test_same_bytes_any_limit(void **state)
{
    struct ut_scratch *s = *state;
    char ref[PATH_MAX], path[PATH_MAX], tmp[PATH_MAX];
    struct sage_err err = { 0 };
    char **texts = make_texts(N_CHUNKS, 3000, 7);
    ut_path(ref, sizeof(ref), s->dir, "ref.sage");
    ut_path(path, sizeof(path), s->dir, "spill.sage");
    ut_path(tmp, sizeof(tmp), s->dir, "tmp");
    assert_int_equal(mkdir(tmp, 0700), 0);
    assert_int_equal(build(ref, texts, N_CHUNKS, NULL, &err), 0);
    /* 1: a run per chunk, so every block of "every" spans 128 runs; 6000:
     * one or two chunks a run; 40000 and 150000: about 100 runs of 15
     * chunks and 16 of 90, whose ends fall inside blocks of 128 (with short
     * reads and writes for one of them); then a limit never reached */
    static const size_t limits[] = { 1, 6000, 40000, 150000, 1u << 30 };
    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        struct sage_ixbuild_opts o = { limits[i], tmp, &fake_io };
        fio_reset(-1, 0, 0);
        fio.short_io = i == 2;
        int rc = build(path, texts, N_CHUNKS, &o, &err);
        if (rc != 0)
            fail_msg("limit %zu: %s", limits[i], sage_err_msg(&err, rc));
        if (limits[i] < 1u << 20) {
            assert_true(fio.calls[OP_PWRITE] > 0);   /* it did spill */
            assert_true(fio.calls[OP_PREAD] > 0);
        } else {
            assert_int_equal(fio.calls[OP_PWRITE], 0);
        }
        ut_assert_same_file(ref, path);
        assert_int_equal(ut_count_other(tmp, NULL, NULL, 0), 0);   /* nothing left behind */
    }
    /* and the file is a valid index */
    struct sage_reader *r = NULL;
    struct sage_index ix;
    assert_int_equal(sage_reader_open(path, SAGE_OPEN_VERIFY, &r, &err), 0);
    assert_int_equal(sage_index_open(&ix, r, &err), 0);
    sage_reader_close(r);
    free_texts(texts, N_CHUNKS);
}

/* Empty input, and input with no indexable word, under a tiny limit. */
static void test_same_bytes_degenerate(void **state)
{
    struct ut_scratch *s = *state;
    char ref[PATH_MAX], path[PATH_MAX];
    struct sage_err err = { 0 };
    char *none[] = { "the and", "", "!!", "of" };
    struct sage_ixbuild_opts o = { 1, s->dir, NULL };
    ut_path(ref, sizeof(ref), s->dir, "ref.sage");
    ut_path(path, sizeof(path), s->dir, "spill.sage");
    for (size_t n = 0; n <= 4; n += 4) {
        assert_int_equal(build(ref, none, n, NULL, &err), 0);
        assert_int_equal(build(path, none, n, &o, &err), 0);
        ut_assert_same_file(ref, path);
    }
}

/* ---- the temporary directory ---- */

static void test_tmp_dir_unusable(void **state)
{
    struct ut_scratch *s = *state;
    char missing[PATH_MAX], file[PATH_MAX];
    struct sage_ixbuild *b = NULL;
    struct sage_err err = { 0 };
    ut_path(missing, sizeof(missing), s->dir, "no/such/dir");
    ut_path(file, sizeof(file), s->dir, "a-file");
    ut_write_bytes(file, "x", 1);

    struct sage_ixbuild_opts o = { 1024, missing, NULL };
    assert_int_equal(sage_ixbuild_new(&english, &o, &b, &err), -SAGE_EIO);
    assert_null(b);
    assert_non_null(strstr(err.msg, missing));
    assert_non_null(strstr(err.msg, strerror(ENOENT)));

    o.tmp_dir = file;
    assert_int_equal(sage_ixbuild_new(&english, &o, &b, &err), -SAGE_EIO);
    assert_null(b);
    assert_non_null(strstr(err.msg, strerror(ENOTDIR)));

    o.tmp_dir = NULL;
    assert_int_equal(sage_ixbuild_new(&english, &o, &b, &err), -SAGE_EINVAL);
    assert_null(b);

    /* no limit: no directory needed, none touched */
    o.memory_limit = 0;
    o.tmp_dir = missing;
    assert_int_equal(sage_ixbuild_new(&english, &o, &b, &err), 0);
    sage_ixbuild_free(b);
}

/* ---- I/O failures ---- */

#define IO_CHUNKS 300
#define IO_LIMIT 8000

/* Fails call k of op for every k the scenario makes: each build fails with
 * EIO naming the directory and the reason, writes no index, leaks nothing. */
static void io_failures(struct ut_scratch *s, int op, int fail_errno, int eof)
{
    char path[PATH_MAX];
    struct sage_err err = { 0 };
    char **texts = make_texts(IO_CHUNKS, 400, 11);
    struct sage_ixbuild_opts o = { IO_LIMIT, s->dir, &fake_io };
    ut_path(path, sizeof(path), s->dir, "io.sage");
    fio_reset(-1, 0, 0);
    assert_int_equal(build(path, texts, IO_CHUNKS, &o, &err), 0);
    int total = fio.calls[op];
    assert_true(total >= 5);
    assert_int_equal(unlink(path), 0);
    for (int k = 0; k < total; k++) {
        fio_reset(op, k, fail_errno);
        fio.eof = eof;
        ut_oom_arm(-1);     /* counts allocations, fails none */
        memset(&err, 0, sizeof(err));
        int rc = build(path, texts, IO_CHUNKS, &o, &err);
        assert_int_equal(ut_oom_disarm(), 0);
        assert_int_equal(rc, -SAGE_EIO);
        assert_non_null(strstr(err.msg, s->dir));
        if (eof)
            assert_non_null(strstr(err.msg, "damaged"));
        else
            assert_non_null(strstr(err.msg, strerror(fail_errno)));
        assert_false(ut_exists(path));
        assert_int_equal(ut_count_other(s->dir, NULL, NULL, 0), 0);
    }
    free_texts(texts, IO_CHUNKS);
}

static void test_disk_full(void **state)
{
    io_failures(*state, OP_PWRITE, ENOSPC, 0);
}

static void test_read_error(void **state)
{
    io_failures(*state, OP_PREAD, EIO, 0);
}

static void test_read_truncated(void **state)
{
    io_failures(*state, OP_PREAD, 0, 1);
}

/* A byte of a run damaged on its way back: the build succeeds (a changed
 * tf or term goes unnoticed) or fails with EIO, never reads out of bounds. */
static void test_damaged_run(void **state)
{
    struct ut_scratch *s = *state;
    char path[PATH_MAX];
    struct sage_err err = { 0 };
    char **texts = make_texts(IO_CHUNKS, 400, 11);
    struct sage_ixbuild_opts o = { IO_LIMIT, s->dir, &fake_io };
    static const uint8_t flips[] = { 0x01, 0x80, 0xff };
    int failed = 0;
    ut_path(path, sizeof(path), s->dir, "bad.sage");
    fio_reset(-1, 0, 0);
    assert_int_equal(build(path, texts, IO_CHUNKS, &o, &err), 0);
    int total = fio.calls[OP_PREAD];
    for (int k = 0; k < total; k++) {
        for (size_t f = 0; f < sizeof(flips); f++) {
            fio_reset(OP_PREAD, k, 0);
            fio.flip = flips[f];
            int rc = build(path, texts, IO_CHUNKS, &o, &err);
            assert_true(rc == 0 || rc == -SAGE_EIO);
            failed += rc != 0;
        }
    }
    assert_true(failed > total);    /* most damage is caught */
    free_texts(texts, IO_CHUNKS);
}

/* After a failed spill the builder refuses to go on rather than lose data. */
static void test_failure_is_sticky(void **state)
{
    struct ut_scratch *s = *state;
    struct sage_ixbuild *b = NULL;
    struct sage_err err = { 0 };
    struct sage_ixbuild_opts o = { 1, s->dir, &fake_io };
    fio_reset(OP_PWRITE, 0, ENOSPC);
    assert_int_equal(sage_ixbuild_new(&english, &o, &b, &err), 0);
    assert_int_equal(sage_ixbuild_add(b, "alpha beta", 10, NULL, &err), -SAGE_EIO);
    assert_int_equal(sage_ixbuild_add(b, "gamma", 5, NULL, &err), -SAGE_EIO);
    assert_non_null(strstr(err.msg, "failed earlier"));
    sage_ixbuild_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_same_bytes_any_limit, ut_scratch_setup,
                                        ut_scratch_teardown),
        cmocka_unit_test_setup_teardown(test_same_bytes_degenerate, ut_scratch_setup,
                                        ut_scratch_teardown),
        cmocka_unit_test_setup_teardown(test_tmp_dir_unusable, ut_scratch_setup,
                                        ut_scratch_teardown),
        cmocka_unit_test_setup_teardown(test_disk_full, ut_scratch_setup, ut_scratch_teardown),
        cmocka_unit_test_setup_teardown(test_read_error, ut_scratch_setup, ut_scratch_teardown),
        cmocka_unit_test_setup_teardown(test_read_truncated, ut_scratch_setup,
                                        ut_scratch_teardown),
        cmocka_unit_test_setup_teardown(test_damaged_run, ut_scratch_setup, ut_scratch_teardown),
        cmocka_unit_test_setup_teardown(test_failure_is_sticky, ut_scratch_setup,
                                        ut_scratch_teardown),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
