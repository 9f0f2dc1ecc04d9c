/* Index format benchmark, driven by scripts/bench/run.sh. Subcommands: make-file PATH
 * SIZE_MB (raw sections of splitmix64 bytes and a zstd BUILD record), open PATH N (N
 * sage_reader_open + close pairs, no verify) and verify PATH N (N sage_reader_verify runs
 * on one reader); each prints one line of key=value pairs, timed with CLOCK_MONOTONIC.
 * Warming the page cache and comparing with other tools is left to run.sh. */
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "mpjson.h"
#include "reader.h"
#include "writer.h"

#define N_DATA_SECTIONS 8
#define DATA_KIND_BASE 100u         /* kinds no reader knows: skipped, still verified */
#define CHUNK ((size_t)1 << 20)     /* bytes generated and written per call */
#define MAX_RUNS 1000000UL

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* splitmix64: fast, deterministic, good enough that zstd or a dedup layer
 * cannot make the data smaller than it is. */
static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The q-quantile (0..1) of n sorted values, nearest rank. */
static double quantile(const double *v, size_t n, double q)
{
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

static int parse_count(const char *s, const char *what, unsigned long max, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v == 0 || v > max) {
        fprintf(stderr, "format_bench: %s must be an integer in 1..%lu, got '%s'\n", what, max, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int make_file(const char *path, unsigned long size_mb)
{
    int rc = 1;
    struct sage_err err = { 0 };
    struct sage_writer *w = NULL;
    uint8_t *chunk = sage_malloc(CHUNK), *rec = NULL;
    size_t rec_len = 0;
    uint64_t state = 0x5a6e5eedULL;
    uint64_t total = (uint64_t)size_mb << 20, per = total / N_DATA_SECTIONS;
    json_t *build = json_pack("{s:s, s:I, s:i, s:s}", "tool", "format_bench",
                              "size_mb", (json_int_t)size_mb, "sections", N_DATA_SECTIONS,
                              "data", "splitmix64");
    if (!chunk || !build) {
        fprintf(stderr, "format_bench: out of memory\n");
        goto out;
    }
    if (sage_mpjson_encode(build, &rec, &rec_len, &err) < 0 ||
        sage_writer_open(path, NULL, &w, &err) < 0 ||
        sage_writer_add(w, SAGE_SECTION_BUILD, SAGE_CODEC_ZSTD, rec, rec_len, &err) < 0)
        goto fail;
    for (unsigned s = 0; s < N_DATA_SECTIONS; s++) {
        /* The last section takes the remainder, so the sizes add up to SIZE_MB. */
        uint64_t left = s + 1 < N_DATA_SECTIONS ? per : total - per * (N_DATA_SECTIONS - 1);
        if (sage_writer_begin(w, DATA_KIND_BASE + s, SAGE_CODEC_RAW, &err) < 0)
            goto fail;
        while (left > 0) {
            size_t k = left < CHUNK ? (size_t)left : CHUNK;
            for (size_t i = 0; i < k; i += 8) {
                uint64_t x = splitmix64(&state);
                memcpy(chunk + i, &x, k - i < 8 ? k - i : 8);
            }
            if (sage_writer_write(w, chunk, k, &err) < 0)
                goto fail;
            left -= k;
        }
        if (sage_writer_end(w, &err) < 0)
            goto fail;
    }
    if (sage_writer_commit(w, NULL, &err) < 0)
        goto fail;
    printf("make-file: path=%s size_mb=%lu sections=%d\n", path, size_mb, N_DATA_SECTIONS + 1);
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "format_bench: cannot write '%s': %s\n", path, err.msg);
out:
    sage_writer_free(w);
    json_decref(build);
    sage_free(rec);
    sage_free(chunk);
    return rc;
}

static int bench_open(const char *path, unsigned long n)
{
    int rc = 1;
    struct sage_err err = { 0 };
    double *t = calloc(n, sizeof(*t));
    if (!t) {
        fprintf(stderr, "format_bench: out of memory\n");
        return 1;
    }
    for (unsigned long i = 0; i < n; i++) {
        struct sage_reader *r;
        double t0 = now_s();
        if (sage_reader_open(path, 0, &r, &err) < 0) {
            fprintf(stderr, "format_bench: %s\n", err.msg);
            goto out;
        }
        sage_reader_close(r);
        t[i] = (now_s() - t0) * 1e6;
    }
    qsort(t, n, sizeof(*t), cmp_double);
    printf("open: path=%s n=%lu median_us=%.1f p10_us=%.1f p90_us=%.1f max_us=%.1f\n", path, n,
           quantile(t, n, 0.5), quantile(t, n, 0.1), quantile(t, n, 0.9), t[n - 1]);
    rc = 0;
out:
    free(t);
    return rc;
}

static int bench_verify(const char *path, unsigned long n)
{
    int rc = 1;
    struct sage_err err = { 0 };
    struct sage_reader *r = NULL;
    double *t = calloc(n, sizeof(*t));
    if (!t) {
        fprintf(stderr, "format_bench: out of memory\n");
        return 1;
    }
    if (sage_reader_open(path, 0, &r, &err) < 0) {
        fprintf(stderr, "format_bench: %s\n", err.msg);
        goto out;
    }
    for (unsigned long i = 0; i < n; i++) {
        double t0 = now_s();
        if (sage_reader_verify(r, &err) < 0) {
            fprintf(stderr, "format_bench: %s\n", err.msg);
            goto out;
        }
        t[i] = now_s() - t0;
    }
    /* The first run also faults the mapping in; later runs find it mapped. */
    double first = t[0], size = (double)sage_reader_info(r)->file_size;
    qsort(t, n, sizeof(*t), cmp_double);
    double med = quantile(t, n, 0.5);
    printf("verify: path=%s n=%lu bytes=%.0f median_s=%.4f gb_per_s=%.2f first_s=%.4f "
           "first_gb_per_s=%.2f\n", path, n, size, med, size / med / 1e9, first,
           size / first / 1e9);
    rc = 0;
out:
    sage_reader_close(r);
    free(t);
    return rc;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: format_bench make-file PATH SIZE_MB\n"
               "       format_bench open PATH N\n"
               "       format_bench verify PATH N\n");
}

int main(int argc, char **argv)
{
    unsigned long v;
    if (argc != 4) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "make-file") == 0)
        return parse_count(argv[3], "SIZE_MB", 1UL << 20, &v) < 0 ? 2 : make_file(argv[2], v);
    if (strcmp(argv[1], "open") == 0)
        return parse_count(argv[3], "N", MAX_RUNS, &v) < 0 ? 2 : bench_open(argv[2], v);
    if (strcmp(argv[1], "verify") == 0)
        return parse_count(argv[3], "N", MAX_RUNS, &v) < 0 ? 2 : bench_verify(argv[2], v);
    usage(stderr);
    return 2;
}
