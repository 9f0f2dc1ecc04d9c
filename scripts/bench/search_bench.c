/* In-process search benchmark of libsage, driven by scripts/bench/search-bench.sh.
 *   search_bench dump FILE            every chunk as a JSONL line {"id", "text"}, the text
 *                                     as the indexer indexes it: title, heading path, text
 *   search_bench stopwords            the stop words the indexer drops (one a line)
 *   search_bench run FILE QUERIES MODE REPS [HITS]
 *                                     MODE and|or: the queries' words as they are (or) or
 *                                     each prefixed with + (and); top 10, one thread. A
 *                                     warm-up pass, then REPS timed passes, each printed as
 *                                     one JSON line; HITS gets the warm-up pass's chunk ids.
 * Only the sage_search call is timed (CLOCK_MONOTONIC around it, query parsing and
 * tokenizing included, since they are part of it); cpu_qps counts the thread's CPU
 * time around the same call instead, which a busy machine disturbs less. Comparing with peers is left to
 * the script. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "clock.h"
#include "search.h"
#include "tokenize.h"

#define MAX_QUERIES 100000
#define MAX_REPS 1000

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* The thread's CPU time: unlike the wall clock, it does not count the time
 * other processes of a shared machine take the core away. */
static double cpu_us(void)
{
    return sage_thread_cpu_ms() * 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile p (0-100) of sorted v[0, n). */
static double pct(const double *v, size_t n, double p)
{
    size_t i = (size_t)(p / 100.0 * (double)n + 0.999999);
    return n ? v[i ? (i > n ? n : i) - 1 : 0] : 0;
}

struct ctx {
    struct sage_reader *r;
    struct sage_searcher *s;
    struct sage_tokenizer *tk;
};

static int open_index(const char *path, struct ctx *c, struct sage_err *err)
{
    memset(c, 0, sizeof(*c));
    if (sage_reader_open(path, 0, &c->r, err) < 0 || sage_searcher_open(c->r, &c->s, err) < 0 ||
        sage_searcher_tokenizer(c->s, &c->tk, err) < 0)
        return -1;
    return 0;
}

static void close_index(struct ctx *c)
{
    sage_tokenizer_free(c->tk);
    sage_searcher_free(c->s);
    sage_reader_close(c->r);
}

static int dump(const char *path)
{
    struct sage_err err = { 0 };
    struct ctx c;
    json_t *doc = NULL;
    uint32_t cur = UINT32_MAX;
    int rc = 1;
    if (open_index(path, &c, &err) < 0)
        goto out;
    if (!sage_searcher_has_index(c.s)) {
        fprintf(stderr, "search_bench: '%s' has no chunks (format 1.0)\n", path);
        goto done;
    }
    uint64_t n = sage_searcher_n_chunks(c.s);
    for (uint64_t i = 0; i < n; i++) {
        uint32_t d;
        json_t *t = NULL;
        if (sage_searcher_hit_doc(c.s, i, &d, &err) < 0)
            goto out;
        if (d != cur) {
            json_decref(doc);
            doc = NULL;
            if (sage_searcher_doc(c.s, d, &doc, &err) < 0)
                goto out;
            cur = d;
        }
        if (sage_searcher_hit_text(c.s, i, &t, &err) < 0)
            goto out;
        const char *title = json_string_value(json_object_get(doc, "title"));
        const char *heading = json_string_value(json_object_get(t, "heading"));
        json_t *text = json_object_get(t, "text");
        /* as indexer/build.c's on_chunk joins them */
        size_t tl = title ? strlen(title) : 0, hl = heading ? strlen(heading) : 0;
        size_t xl = json_string_length(text), len = tl + hl + xl + 2;
        char *buf = sage_malloc(len + 1);
        if (!buf) {
            json_decref(t);
            fprintf(stderr, "search_bench: out of memory\n");
            goto done;
        }
        memcpy(buf, title ? title : "", tl);
        buf[tl] = '\n';
        memcpy(buf + tl + 1, heading ? heading : "", hl);
        buf[tl + 1 + hl] = '\n';
        memcpy(buf + tl + hl + 2, json_string_value(text), xl);
        json_t *line = json_pack("{s:I, s:s%}", "id", (json_int_t)i, "text", buf, len);
        char *s = line ? json_dumps(line, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
        if (s)
            puts(s);
        free(s);
        json_decref(line);
        sage_free(buf);
        json_decref(t);
        if (!s) {
            fprintf(stderr, "search_bench: cannot encode chunk %llu\n", (unsigned long long)i);
            goto done;
        }
    }
    rc = fflush(stdout) == 0 ? 0 : 1;
    goto done;
out:
    fprintf(stderr, "search_bench: '%s': %s\n", path, sage_err_msg(&err, err.code));
done:
    json_decref(doc);
    close_index(&c);
    return rc;
}

/* The queries of a file, one a line, empty lines skipped; for and, each
 * word prefixed with +. */
static char **read_queries(const char *path, int and, size_t *n_out)
{
    FILE *f = fopen(path, "r");
    char *line = NULL, **q = NULL;
    size_t cap = 0, n = 0;
    ssize_t len;
    if (!f) {
        perror(path);
        return NULL;
    }
    q = sage_calloc(MAX_QUERIES, sizeof(*q));
    while (q && n < MAX_QUERIES && (len = getline(&line, &cap, f)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (strspn(line, " \t") == (size_t)len)
            continue;
        char *out = sage_malloc(2 * (size_t)len + 1), *o = out;
        if (!out)
            break;
        for (const char *p = line; *p;) {
            p += strspn(p, " \t");
            size_t w = strcspn(p, " \t");
            if (!w)
                break;
            if (o != out)
                *o++ = ' ';
            if (and)
                *o++ = '+';
            memcpy(o, p, w);
            o += w;
            p += w;
        }
        *o = '\0';
        q[n++] = out;
    }
    free(line);
    fclose(f);
    *n_out = n;
    return q;
}

static int run(const char *path, const char *qpath, const char *mode, long reps, const char *hits)
{
    struct sage_err err = { 0 };
    struct ctx c;
    size_t n = 0;
    int and = strcmp(mode, "and") == 0, rc = 1;
    char **q = read_queries(qpath, and, &n);
    double *lat = q ? sage_calloc(n ? n : 1, sizeof(double)) : NULL;
    FILE *hf = NULL;
    if (!lat || !n) {
        fprintf(stderr, "search_bench: no queries in '%s'\n", qpath);
        goto done;
    }
    if (open_index(path, &c, &err) < 0) {
        fprintf(stderr, "search_bench: '%s': %s\n", path, sage_err_msg(&err, err.code));
        close_index(&c);
        goto done;
    }
    if (hits && !(hf = fopen(hits, "w"))) {
        perror(hits);
        goto close;
    }
    struct sage_search_opts o = { 10, 1.2, 0.75, 0, NULL, NULL };
    for (long rep = -1; rep < reps; rep++) {
        double total = 0, matched = 0, cpu = 0;
        for (size_t i = 0; i < n; i++) {
            struct sage_results res;
            double c0 = cpu_us(), t0 = now_us();
            int r = sage_search(c.s, c.tk, q[i], strlen(q[i]), &o, &res, &err);
            double t1 = now_us();
            cpu += cpu_us() - c0;
            if (r < 0) {
                fprintf(stderr, "search_bench: query '%s': %s\n", q[i], sage_err_msg(&err, err.code));
                goto close;
            }
            lat[i] = t1 - t0;
            total += lat[i];
            matched += (double)res.total;
            if (rep < 0 && hf) {
                fprintf(hf, "%zu", i);
                for (size_t h = 0; h < res.n_hits; h++)
                    fprintf(hf, " %llu", (unsigned long long)res.hits[h].doc);
                fputc('\n', hf);
            }
            sage_results_release(&res);
        }
        if (rep < 0)
            continue;
        qsort(lat, n, sizeof(double), cmp_double);
        printf("{\"engine\":\"sage\",\"mode\":\"%s\",\"rep\":%ld,\"queries\":%zu,\"seconds\":%.6f,"
               "\"qps\":%.1f,\"mean_ms\":%.4f,\"p50_ms\":%.4f,\"p95_ms\":%.4f,\"p99_ms\":%.4f,"
               "\"max_ms\":%.4f,\"mean_total\":%.1f,\"cpu_qps\":%.1f}\n",
               mode, rep, n, total / 1e6, (double)n / (total / 1e6), total / (double)n / 1e3,
               pct(lat, n, 50) / 1e3, pct(lat, n, 95) / 1e3, pct(lat, n, 99) / 1e3,
               lat[n - 1] / 1e3, matched / (double)n, (double)n / (cpu / 1e6));
        fflush(stdout);
    }
    rc = 0;
close:
    if (hf && fclose(hf) != 0)
        rc = 1;
    close_index(&c);
done:
    for (size_t i = 0; q && i < n; i++)
        sage_free(q[i]);
    sage_free(q);
    sage_free(lat);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "dump") == 0)
        return dump(argv[2]);
    if (argc == 2 && strcmp(argv[1], "stopwords") == 0) {
        for (size_t i = 0; i < sage_n_stopwords_english; i++)
            puts(sage_stopwords_english[i]);
        return 0;
    }
    if ((argc == 6 || argc == 7) && strcmp(argv[1], "run") == 0) {
        char *end;
        long reps = strtol(argv[5], &end, 10);
        if (*end || reps < 1 || reps > MAX_REPS ||
            (strcmp(argv[4], "and") != 0 && strcmp(argv[4], "or") != 0)) {
            fprintf(stderr, "search_bench: MODE is and|or, REPS 1..%d\n", MAX_REPS);
            return 2;
        }
        return run(argv[2], argv[3], argv[4], reps, argc == 7 ? argv[6] : NULL);
    }
    fprintf(stderr, "usage: search_bench dump FILE\n"
                    "       search_bench stopwords\n"
                    "       search_bench run FILE QUERIES and|or REPS [HITS]\n");
    return 2;
}
