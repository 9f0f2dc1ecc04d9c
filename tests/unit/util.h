/* Shared helpers for the format/ unit tests: a scratch directory per test,
 * whole-file I/O, an out-of-memory allocator for sage_alloc_set, and
 * checksum fix-ups that forge structurally valid but lying index images.
 * Header-only (static inline) so each test binary stays one file. */
#ifndef SAGE_TEST_UTIL_H
#define SAGE_TEST_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "alloc.h"
#include "err.h"
#include "layout.h"
#include "le.h"

/* ---- scratch directories ---- */

struct ut_scratch {
    char dir[PATH_MAX];
};

static inline int ut_rm_entry(const char *p, const struct stat *st, int type, struct FTW *f)
{
    (void)st;
    (void)type;
    (void)f;
    return remove(p);
}

/* cmocka setup: *state becomes a struct ut_scratch with a fresh directory. */
static inline int ut_scratch_setup(void **state)
{
    struct ut_scratch *s = calloc(1, sizeof(*s));
    const char *tmp = getenv("TMPDIR");
    if (!s)
        return -1;
    snprintf(s->dir, sizeof(s->dir), "%s/sage-unit-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(s->dir)) {
        free(s);
        return -1;
    }
    *state = s;
    return 0;
}

/* cmocka teardown: removes the directory and everything in it. */
static inline int ut_scratch_teardown(void **state)
{
    struct ut_scratch *s = *state;
    int rc = 0;
    if (s) {
        rc = nftw(s->dir, ut_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(s);
    }
    *state = NULL;
    return rc == 0 ? 0 : -1;
}

/* dir/name into a static-free caller buffer. */
static inline const char *ut_path(char *buf, size_t size, const char *dir, const char *name)
{
    int n = snprintf(buf, size, "%s/%s", dir, name);
    assert_true(n > 0 && (size_t)n < size);
    return buf;
}

/* ---- files ---- */

static inline int ut_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Reads a whole file into a malloc'd buffer (free()); fails the test on error. */
static inline uint8_t *ut_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    uint8_t *p = malloc((size_t)n + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    p[n] = 0;
    *len = (size_t)n;
    return p;
}

/* Fails the test unless the two files hold the same bytes. */
static inline void ut_assert_same_file(const char *a, const char *b)
{
    size_t la, lb;
    uint8_t *pa = ut_read_file(a, &la), *pb = ut_read_file(b, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(pa, pb, la);
    free(pa);
    free(pb);
}

static inline void ut_write_bytes(const char *path, const void *p, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* Names in dir other than those listed (NULL-terminated), as a count; with
 * a non-NULL first, copies the first such name there for messages. */
static inline int ut_count_other(const char *dir, const char *const *keep, char *first,
                                 size_t first_size)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        int kept = 0;
        for (size_t i = 0; keep && keep[i]; i++)
            kept |= strcmp(e->d_name, keep[i]) == 0;
        if (kept)
            continue;
        if (first && n == 0)
            snprintf(first, first_size, "%s", e->d_name);
        n++;
    }
    closedir(d);
    return n;
}

/* Number of entries in dir whose name starts with prefix. */
static inline int ut_count_prefix(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

/* ---- data ---- */

/* Deterministic, compressible but not trivial bytes (words from a small
 * vocabulary chosen by an LCG), so zstd frames span several blocks. */
static inline void ut_fill(uint8_t *p, size_t n, uint32_t seed)
{
    static const char *const words[] = { "index ", "sage ", "section ", "page ", "zstd ",
                                         "reader ", "writer ", "checksum ", "\n", "42 " };
    uint32_t x = seed * 2654435761u + 1;
    size_t i = 0;
    while (i < n) {
        x = x * 1664525u + 1013904223u;
        const char *w = words[(x >> 24) % 10];
        for (size_t j = 0; w[j] && i < n; j++)
            p[i++] = (uint8_t)w[j];
        if ((x & 0xff) == 7 && i < n)
            p[i++] = (uint8_t)(x >> 8);
    }
}

static inline void ut_sha256_hex(const void *p, size_t n, char hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    assert_non_null(c);
    assert_int_equal(EVP_DigestInit_ex(c, EVP_sha256(), NULL), 1);
    assert_int_equal(EVP_DigestUpdate(c, p, n), 1);
    assert_int_equal(EVP_DigestFinal_ex(c, md, &md_len), 1);
    EVP_MD_CTX_free(c);
    assert_int_equal(md_len, 32);
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

/* ---- forging images ---- */

/* Recomputes the header checksum (XXH3-64 over header_len bytes with the
 * field zeroed) from the header_len stored in the image. */
static inline void ut_fix_header(uint8_t *img, size_t size)
{
    uint32_t hlen = sage_le32(img + SAGE_HDR_LEN);
    assert_true(hlen >= SAGE_HDR_FIXED && hlen <= size);
    sage_put64(img + SAGE_HDR_CHECKSUM, 0);
    sage_put64(img + SAGE_HDR_CHECKSUM, XXH3_64bits(img, hlen));
}

/* Rewrites the footer so that it matches the image: whole-file checksum,
 * the copy of the header checksum, its own checksum and the magic. */
static inline void ut_fix_footer(uint8_t *img, size_t size)
{
    assert_true(size >= SAGE_FTR_LEN + SAGE_HDR_FIXED);
    uint8_t *f = img + size - SAGE_FTR_LEN;
    sage_put64(f + SAGE_FTR_FILE_CHECKSUM, XXH3_64bits(img, size - SAGE_FTR_LEN));
    sage_put64(f + SAGE_FTR_HDR_CHECKSUM, sage_le64(img + SAGE_HDR_CHECKSUM));
    sage_put64(f + SAGE_FTR_CHECKSUM, XXH3_64bits(f, SAGE_FTR_CHECKSUM));
    memcpy(f + SAGE_FTR_MAGIC, SAGE_MAGIC, SAGE_MAGIC_LEN);
}

/* Both, in the order that makes every checksum agree. */
static inline void ut_fix_all(uint8_t *img, size_t size)
{
    ut_fix_header(img, size);
    ut_fix_footer(img, size);
}

/* Address of section table entry i. */
static inline uint8_t *ut_entry(uint8_t *img, uint32_t i)
{
    return img + SAGE_HDR_FIXED + (size_t)i * SAGE_SEC_ENTRY;
}

/* ---- out-of-memory injection ---- */

struct ut_oom {
    long fail_at;       /* index of the allocation that fails; -1: none */
    long count;         /* allocations attempted since ut_oom_arm */
    long live;          /* allocations not yet freed */
    int failed;         /* the failing allocation was reached */
};

static inline struct ut_oom *ut_oom_state(void)
{
    static struct ut_oom s = { -1, 0, 0, 0 };
    return &s;
}

static inline void *ut_oom_malloc(size_t n)
{
    struct ut_oom *s = ut_oom_state();
    if (s->count++ == s->fail_at) {
        s->failed = 1;
        return NULL;
    }
    void *p = malloc(n);
    if (p)
        s->live++;
    return p;
}

static inline void *ut_oom_realloc(void *p, size_t n)
{
    struct ut_oom *s = ut_oom_state();
    if (s->count++ == s->fail_at) {
        s->failed = 1;
        return NULL;
    }
    void *q = realloc(p, n);
    if (q && !p)
        s->live++;
    return q;
}

static inline void ut_oom_free(void *p)
{
    if (p)
        ut_oom_state()->live--;
    free(p);
}

/* Installs the hooks so that allocation number fail_at (from 0) fails. */
static inline void ut_oom_arm(long fail_at)
{
    static const struct sage_alloc_hooks hooks = { ut_oom_malloc, ut_oom_realloc, ut_oom_free };
    struct ut_oom *s = ut_oom_state();
    s->fail_at = fail_at;
    s->count = 0;
    s->live = 0;
    s->failed = 0;
    sage_alloc_set(&hooks);
}

/* Restores the C library's allocator; returns the allocations still live. */
static inline long ut_oom_disarm(void)
{
    sage_alloc_set(NULL);
    return ut_oom_state()->live;
}

/* Runs fn(ctx) with allocation k failing, for k = 0, 1, ... until a run
 * reaches no failing allocation (at most max runs). Each run must return
 * -SAGE_ENOMEM when it reached the failure and 0 otherwise, having freed
 * everything it allocated; at least one run must reach a failure. */
static inline void ut_oom_sweep(int (*fn)(void *ctx), void *ctx, long max)
{
    int failed_once = 0;
    for (long k = 0; k < max; k++) {
        ut_oom_arm(k);
        int rc = fn(ctx);
        int hit = ut_oom_state()->failed;
        assert_int_equal(ut_oom_disarm(), 0);
        assert_int_equal(rc, hit ? -SAGE_ENOMEM : 0);
        failed_once |= hit;
        if (!hit)
            break;
    }
    assert_true(failed_once);
}

#endif
