/* Network search load client for scripts/bench/search-bench.sh: the same loop in
 * front of sage-searchd (HTTP/1.1 keep-alive) and Sphinx searchd (SphinxQL, the
 * MySQL protocol), so that the two differ only in the server.
 *   net_bench http|sphinxql --port P --queries FILE [--mode and|or] [--conns N]
 *             [--passes N | --seconds S] [--rate R] [--index NAME] [--ranker R]
 *             [--snippets] [--timeline FILE] [--hits FILE] [--wait S]
 * N threads each hold one connection to 127.0.0.1:P and send the queries one at
 * a time (thread i starts at query i*n/N), either N passes over the file each or
 * for S seconds; R paces them to R requests a second in all. Each request is
 * built before the clock starts; the time of one is from the first byte sent to
 * the last byte of its answer read and framed (Content-Length for HTTP, packets
 * up to the final EOF for SphinxQL; neither body is parsed). Prints one JSON
 * summary on stdout. --timeline writes "START_EPOCH_S LATENCY_MS" per request;
 * --hits (one connection, one pass) the ids of each answer, as chunk ids.
 * --wait (one connection) first retries connecting and the first query every
 * millisecond until a server answers it without an error, for at most S
 * seconds (a server still starting), then goes on as usual on that connection;
 * the answer waited for is not counted. */
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "../../tests/lib/loopback.h"

#define MAX_QUERIES 100000
#define MAX_RESPONSE (4u << 20)
#define MAX_SAMPLES (16u << 20)     /* per thread; later requests still count */
#define MAX_REPORTS 5
#define IO_TIMEOUT_S 30             /* longest wait for one answer */

enum proto { HTTP, SPHINXQL };

struct config {
    enum proto proto;
    int port, conns, and, snippets;
    long passes;
    double seconds, rate, wait;
    const char *queries, *index, *ranker, *timeline, *hits;
};

struct req {
    char *data;
    size_t len;
};

struct sample {
    double start_s;             /* CLOCK_REALTIME, seconds */
    float ms;
};

struct worker {
    const struct config *cfg;
    const struct req *reqs;
    size_t n_reqs, first;
    pthread_t tid;
    uint64_t requests, errors;
    struct sample *s;
    size_t n_s, cap_s;
    uint8_t *buf;
    size_t cap_buf, have;       /* bytes in buf not yet consumed */
    FILE *hits;
};

static int reports, quiet;     /* quiet: while --wait retries */

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double real_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void report(const char *what, const uint8_t *p, size_t n)
{
    if (!__atomic_load_n(&quiet, __ATOMIC_RELAXED) &&
        __atomic_fetch_add(&reports, 1, __ATOMIC_RELAXED) < MAX_REPORTS)
        fprintf(stderr, "net_bench: %s%s%.*s\n", what, n ? ": " : "", (int)(n > 300 ? 300 : n),
                n ? (const char *)p : "");
}

/* Reads until w->buf holds at least need bytes. */
static int fill(struct worker *w, int fd, size_t need)
{
    if (need > MAX_RESPONSE)
        return -1;
    if (need + 1 > w->cap_buf) {
        size_t cap = w->cap_buf;
        while (cap < need + 1)
            cap *= 2;
        uint8_t *b = realloc(w->buf, cap);
        if (!b)
            return -1;
        w->buf = b;
        w->cap_buf = cap;
    }
    while (w->have < need) {
        ssize_t k = recv(fd, w->buf + w->have, w->cap_buf - w->have - 1, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        w->have += (size_t)k;
    }
    w->buf[w->have] = 0;
    return 0;
}

/* Drops the first n bytes of w->buf. */
static void consume(struct worker *w, size_t n)
{
    memmove(w->buf, w->buf + n, w->have - n);
    w->have -= n;
}

/* ---- HTTP ---- */

/* One response: 0 for a 200, 1 for another status, -1 on a broken
 * connection. The body is left at w->buf[*body_off, +*body_len). */
static int http_read(struct worker *w, int fd, size_t *body_off, size_t *body_len)
{
    char *e;
    size_t need = 1;
    for (;;) {
        if (fill(w, fd, need) < 0)
            return -1;
        if ((e = strstr((char *)w->buf, "\r\n\r\n")))
            break;
        need = w->have + 1;
    }
    size_t hdr = (size_t)(e - (char *)w->buf) + 4;
    unsigned st;
    const char *cl = lb_header((char *)w->buf, e, "Content-Length");
    char *end;
    if (sscanf((char *)w->buf, "HTTP/1.%*1[01] %3u", &st) != 1 || !cl)
        return -1;
    unsigned long long v = strtoull(cl, &end, 10);
    if (end == cl || v > MAX_RESPONSE || fill(w, fd, hdr + (size_t)v) < 0)
        return -1;
    *body_off = hdr;
    *body_len = (size_t)v;
    return st == 200 ? 0 : 1;
}

static void http_hits(struct worker *w, size_t q, size_t off, size_t len)
{
    json_error_t je;
    json_t *j = json_loadb((const char *)w->buf + off, len, 0, &je), *h;
    size_t i;
    fprintf(w->hits, "%zu", q);
    json_array_foreach(json_object_get(j, "hits"), i, h)
        fprintf(w->hits, " %" JSON_INTEGER_FORMAT, json_integer_value(json_object_get(h, "chunk")));
    fputc('\n', w->hits);
    json_decref(j);
}

/* ---- SphinxQL (MySQL protocol 4.1, no TLS, no auth: Sphinx accepts any) ---- */

/* Reads one packet; its payload is w->buf[4, 4 + *len). */
static int my_packet(struct worker *w, int fd, size_t *len)
{
    if (fill(w, fd, 4) < 0)
        return -1;
    *len = (size_t)w->buf[0] | (size_t)w->buf[1] << 8 | (size_t)w->buf[2] << 16;
    return fill(w, fd, 4 + *len);
}

static int my_login(struct worker *w, int fd)
{
    /* HandshakeResponse41: caps, max packet, charset, 23 zero bytes, user
     * "bench", an empty auth response */
    static const uint8_t resp[4 + 39] = {
        39, 0, 0, 1,                        /* payload length, sequence 1 */
        0x01, 0x82, 0, 0,                   /* LONG_PASSWORD, PROTOCOL_41, SECURE_CONNECTION */
        0, 0, 0, 1,                         /* max packet 16 MiB */
        33,                                 /* utf8_general_ci */
        [36] = 'b', 'e', 'n', 'c', 'h', 0,
        0,                                  /* auth response length */
    };
    size_t len;
    if (my_packet(w, fd, &len) < 0 || len < 1 || w->buf[4] == 0xff)
        return -1;
    consume(w, 4 + len);
    if (lb_send_all(fd, (const char *)resp, sizeof(resp)) < 0 || my_packet(w, fd, &len) < 0 ||
        len < 1 || w->buf[4] != 0)
        return -1;
    consume(w, 4 + len);
    return 0;
}

static int is_eof(const uint8_t *payload, size_t len)
{
    return len < 9 && payload[0] == 0xfe;
}

/* A length-encoded integer at *p (advanced), or -1. */
static long long lenenc(const uint8_t **p, const uint8_t *end)
{
    const uint8_t *q = *p;
    if (q >= end)
        return -1;
    uint8_t c = *q++;
    long long v;
    size_t n = c < 0xfb ? 0 : c == 0xfc ? 2 : c == 0xfd ? 3 : c == 0xfe ? 8 : 9;
    if (n == 9 || (size_t)(end - q) < n)
        return -1;
    v = n ? 0 : c;
    for (size_t i = 0; i < n; i++)
        v |= (long long)q[i] << (8 * i);
    *p = q + n;
    return v;
}

/* One result set: 0 when read to its end, 1 for an ERR packet, -1 on a broken
 * connection. With hits, the first column of each row (the id) is written. */
static int my_result(struct worker *w, int fd, size_t q)
{
    size_t len;
    int rc = 0;
    if (my_packet(w, fd, &len) < 0 || len < 1)
        return -1;
    if (w->buf[4] == 0xff) {
        /* ERR: 0xff, code (2), '#' and SQL state (6), message */
        report("sphinx error", w->buf + 13, len > 9 ? len - 9 : 0);
        consume(w, 4 + len);
        return 1;
    }
    if (w->buf[4] == 0) {       /* OK: no result set */
        consume(w, 4 + len);
        return 0;
    }
    consume(w, 4 + len);
    if (w->hits)
        fprintf(w->hits, "%zu", q);
    for (int phase = 0; phase < 2;) {   /* column definitions, then rows */
        if (my_packet(w, fd, &len) < 0 || len < 1) {
            rc = -1;
            break;
        }
        const uint8_t *p = w->buf + 4, *end = p + len;
        if (p[0] == 0xff) {
            rc = 1;
            consume(w, 4 + len);
            break;
        }
        if (is_eof(p, len))
            phase++;
        else if (phase == 1 && w->hits) {
            long long n = lenenc(&p, end);
            if (n >= 0 && n <= end - p && n < 30) {
                char id[32];
                memcpy(id, p, (size_t)n);
                id[n] = 0;
                fprintf(w->hits, " %lld", strtoll(id, NULL, 10) - 1);
            }
        }
        consume(w, 4 + len);
    }
    if (w->hits)
        fputc('\n', w->hits);
    return rc;
}

/* ---- requests ---- */

static void url_encode(const char *s, char *out)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            *out++ = (char)c;
        } else {
            *out++ = '%';
            *out++ = hex[c >> 4];
            *out++ = hex[c & 15];
        }
    }
    *out = 0;
}

/* The request for query line q (words separated by spaces). For SAGE the
 * words go as they are (or) or each with + (and); for Sphinx every byte that
 * is not a letter or digit (ASCII or not) becomes a space, since its charset
 * treats them as separators anyway and some are operators, and the words are
 * joined with | (or) or a space (and, Sphinx's default). */
static int build_req(const struct config *c, const char *q, struct req *r)
{
    size_t n = strlen(q), cap = 6 * n + 512;
    char *tmp = malloc(3 * n + 16), *enc = malloc(9 * n + 16), *out = malloc(cap), *t = tmp;
    int ok = 0;
    if (!tmp || !enc || !out)
        goto out;
    *t = 0;
    if (c->proto == HTTP) {
        for (const char *p = q; *p;) {
            p += strspn(p, " ");
            size_t wl = strcspn(p, " ");
            if (!wl)
                break;
            if (t != tmp)
                *t++ = ' ';
            if (c->and)
                *t++ = '+';
            memcpy(t, p, wl);
            t += wl;
            *t = 0;
            p += wl;
        }
        url_encode(tmp, enc);
        r->len = (size_t)snprintf(out, cap, "GET /v1/search?q=%s&k=10&snippets=%d HTTP/1.1\r\n"
                                  "Host: 127.0.0.1\r\n\r\n", enc, c->snippets);
    } else {
        int in_word = 0, words = 0;
        for (const char *p = q; *p; p++) {
            unsigned char ch = (unsigned char)*p;
            int wc = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                     (ch >= '0' && ch <= '9') || ch >= 0x80;
            if (wc && !in_word && words++) {
                if (!c->and) {
                    memcpy(t, " |", 2);
                    t += 2;
                }
                *t++ = ' ';
            }
            if (wc)
                *t++ = (char)ch;
            in_word = wc;
        }
        *t = 0;
        size_t sl = (size_t)snprintf(out + 5, cap - 5,
                                     "SELECT id, WEIGHT() FROM %s WHERE MATCH('%s') LIMIT 10 "
                                     "OPTION max_matches=10, ranker=%s",
                                     c->index, tmp, c->ranker);
        out[0] = (char)(sl + 1);
        out[1] = (char)((sl + 1) >> 8);
        out[2] = (char)((sl + 1) >> 16);
        out[3] = 0;             /* sequence */
        out[4] = 3;             /* COM_QUERY */
        r->len = 5 + sl;
    }
    ok = r->len < cap;
out:
    free(tmp);
    free(enc);
    if (!ok) {
        free(out);
        return -1;
    }
    r->data = out;
    return 0;
}

/* ---- the load loop ---- */

static void record(struct worker *w, double start_real, double ms)
{
    if (w->n_s == w->cap_s) {
        size_t cap = w->cap_s ? w->cap_s * 2 : 4096;
        struct sample *s = cap <= MAX_SAMPLES ? realloc(w->s, cap * sizeof(*s)) : NULL;
        if (!s)
            return;
        w->s = s;
        w->cap_s = cap;
    }
    w->s[w->n_s++] = (struct sample){ start_real, (float)ms };
}

/* Sends request q on fd and reads its answer: 0, 1 for an error answer, -1
 * for a broken connection. */
static int ask(struct worker *w, int fd, size_t q)
{
    const struct req *r = &w->reqs[q];
    int rc;
    if (lb_send_all(fd, r->data, r->len) < 0)
        return -1;
    if (w->cfg->proto == SPHINXQL)
        return my_result(w, fd, q);
    size_t off = 0, len = 0;
    rc = http_read(w, fd, &off, &len);
    if (rc == 1)
        report("HTTP answer not 200", w->buf, off + len);
    if (rc == 0 && w->hits)
        http_hits(w, q, off, len);
    if (rc >= 0)
        consume(w, off + len);
    return rc;
}

static int dial(struct worker *w)
{
    int fd = lb_dial(w->cfg->port, IO_TIMEOUT_S);
    if (fd >= 0 && w->cfg->proto == SPHINXQL && my_login(w, fd) < 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* --wait: a connection on which the first query was answered without an
 * error, or -1 when none came within c->wait seconds. */
static int dial_waiting(struct worker *w)
{
    double deadline = mono_s() + w->cfg->wait;
    FILE *hits = w->hits;
    w->hits = NULL;
    __atomic_store_n(&quiet, 1, __ATOMIC_RELAXED);
    int fd = -1;
    for (;;) {
        w->have = 0;
        fd = dial(w);
        if (fd >= 0 && ask(w, fd, w->first) == 0)
            break;
        if (fd >= 0)
            close(fd);
        fd = -1;
        if (mono_s() >= deadline)
            break;
        nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
    }
    __atomic_store_n(&quiet, 0, __ATOMIC_RELAXED);
    w->hits = hits;
    return fd;
}

static void *work(void *arg)
{
    struct worker *w = arg;
    const struct config *c = w->cfg;
    int fd = c->wait > 0 ? dial_waiting(w) : dial(w);
    if (fd < 0) {
        report("cannot connect", (const uint8_t *)"", 0);
        w->errors++;
        goto out;
    }
    double deadline = c->seconds > 0 ? mono_s() + c->seconds : 0;
    double gap = c->rate > 0 ? c->conns / c->rate : 0, next = mono_s();
    uint64_t limit = c->seconds > 0 ? UINT64_MAX : (uint64_t)c->passes * w->n_reqs;
    for (uint64_t i = 0; i < limit; i++) {
        if (gap > 0) {
            next += gap;
            double wait = next - mono_s();
            if (wait > 0) {
                struct timespec ts = { (time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9) };
                nanosleep(&ts, NULL);
            }
        }
        if (deadline && mono_s() >= deadline)
            break;
        size_t q = (w->first + i) % w->n_reqs;
        double t0r = real_s(), t0 = mono_s();
        int rc = ask(w, fd, q);
        double ms = (mono_s() - t0) * 1e3;
        w->requests++;
        if (rc != 0)
            w->errors++;
        record(w, t0r, ms);
        if (rc < 0) {
            report("connection failed", (const uint8_t *)"", 0);
            break;
        }
    }
out:
    if (fd >= 0)
        close(fd);
    return NULL;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

static double pct(const float *v, size_t n, double p)
{
    size_t i = (size_t)(p / 100.0 * (double)n + 0.999999);
    return n ? v[i ? (i > n ? n : i) - 1 : 0] : 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: net_bench http|sphinxql --port P --queries FILE [--mode and|or]\n"
                    "       [--conns N] [--passes N | --seconds S] [--rate R] [--index NAME]\n"
                    "       [--ranker R] [--snippets] [--timeline FILE] [--hits FILE] [--wait S]\n");
    return 2;
}

static int num(const char *s, double lo, double hi, double *v)
{
    char *end;
    *v = strtod(s, &end);
    return *end || end == s || *v < lo || *v > hi ? -1 : 0;
}

int main(int argc, char **argv)
{
    struct config c = { .conns = 1, .passes = 1, .index = "chunks",
                        .ranker = "expr('bm25a(1.2,0.75)')" };
    double v;
    int rc = 1;
    if (argc < 2)
        return usage();
    if (strcmp(argv[1], "http") == 0)
        c.proto = HTTP;
    else if (strcmp(argv[1], "sphinxql") == 0)
        c.proto = SPHINXQL;
    else
        return usage();
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--snippets") == 0) {
            c.snippets = 1;
            continue;
        }
        if (!val)
            return usage();
        i++;
        if (strcmp(a, "--port") == 0 && num(val, 1, 65535, &v) == 0)
            c.port = (int)v;
        else if (strcmp(a, "--conns") == 0 && num(val, 1, 1024, &v) == 0)
            c.conns = (int)v;
        else if (strcmp(a, "--passes") == 0 && num(val, 1, 1e6, &v) == 0)
            c.passes = (long)v;
        else if (strcmp(a, "--seconds") == 0 && num(val, 0.001, 86400, &v) == 0)
            c.seconds = v;
        else if (strcmp(a, "--wait") == 0 && num(val, 0.001, 3600, &v) == 0)
            c.wait = v;
        else if (strcmp(a, "--rate") == 0 && num(val, 0, 1e7, &v) == 0)
            c.rate = v;
        else if (strcmp(a, "--mode") == 0 && (strcmp(val, "and") == 0 || strcmp(val, "or") == 0))
            c.and = strcmp(val, "and") == 0;
        else if (strcmp(a, "--queries") == 0)
            c.queries = val;
        else if (strcmp(a, "--index") == 0)
            c.index = val;
        else if (strcmp(a, "--ranker") == 0)
            c.ranker = val;
        else if (strcmp(a, "--timeline") == 0)
            c.timeline = val;
        else if (strcmp(a, "--hits") == 0)
            c.hits = val;
        else
            return usage();
    }
    if (!c.port || !c.queries || ((c.hits || c.wait > 0) && c.conns != 1))
        return usage();

    struct req *reqs = calloc(MAX_QUERIES, sizeof(*reqs));
    struct worker *ws = calloc((size_t)c.conns, sizeof(*ws));
    size_t n = 0, cap = 0;
    char *line = NULL;
    ssize_t len;
    FILE *f = fopen(c.queries, "r");
    if (!f || !reqs || !ws) {
        fprintf(stderr, "net_bench: cannot read '%s'\n", c.queries);
        goto out;
    }
    while (n < MAX_QUERIES && (len = getline(&line, &cap, f)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' '))
            line[--len] = 0;
        for (char *p = line; *p; p++)
            if (*p == '\t')
                *p = ' ';
        if (len == 0)
            continue;
        if (build_req(&c, line, &reqs[n]) < 0) {
            fprintf(stderr, "net_bench: cannot build a request for '%s'\n", line);
            goto out;
        }
        n++;
    }
    if (!n) {
        fprintf(stderr, "net_bench: no queries in '%s'\n", c.queries);
        goto out;
    }
    double t0 = mono_s();
    for (int i = 0; i < c.conns; i++) {
        ws[i] = (struct worker){ .cfg = &c, .reqs = reqs, .n_reqs = n,
                                 .first = n * (size_t)i / (size_t)c.conns, .cap_buf = 65536 };
        ws[i].buf = malloc(ws[i].cap_buf);
        if (c.hits && !(ws[i].hits = fopen(c.hits, "w"))) {
            perror(c.hits);
            goto out;
        }
        if (!ws[i].buf || pthread_create(&ws[i].tid, NULL, work, &ws[i]) != 0) {
            fprintf(stderr, "net_bench: cannot start thread %d\n", i);
            goto out;
        }
    }
    uint64_t requests = 0, errors = 0;
    size_t n_all = 0;
    for (int i = 0; i < c.conns; i++) {
        pthread_join(ws[i].tid, NULL);
        ws[i].tid = 0;
        requests += ws[i].requests;
        errors += ws[i].errors;
        n_all += ws[i].n_s;
    }
    double wall = mono_s() - t0;
    float *lat = malloc((n_all ? n_all : 1) * sizeof(float));
    FILE *tl = c.timeline ? fopen(c.timeline, "w") : NULL;
    if (!lat || (c.timeline && !tl)) {
        fprintf(stderr, "net_bench: cannot keep %zu samples\n", n_all);
        free(lat);
        goto out;
    }
    size_t k = 0;
    for (int i = 0; i < c.conns; i++)
        for (size_t j = 0; j < ws[i].n_s; j++) {
            lat[k++] = ws[i].s[j].ms;
            if (tl)
                fprintf(tl, "%.6f %.3f\n", ws[i].s[j].start_s, (double)ws[i].s[j].ms);
        }
    if (tl && fclose(tl) != 0)
        perror(c.timeline);
    qsort(lat, n_all, sizeof(float), cmp_float);
    printf("{\"proto\":\"%s\",\"mode\":\"%s\",\"conns\":%d,\"requests\":%llu,\"errors\":%llu,"
           "\"seconds\":%.3f,\"qps\":%.1f,\"p50_ms\":%.3f,\"p95_ms\":%.3f,\"p99_ms\":%.3f,"
           "\"max_ms\":%.3f}\n",
           c.proto == HTTP ? "http" : "sphinxql", c.and ? "and" : "or", c.conns,
           (unsigned long long)requests, (unsigned long long)errors, wall,
           (double)requests / wall, pct(lat, n_all, 50), pct(lat, n_all, 95), pct(lat, n_all, 99),
           n_all ? (double)lat[n_all - 1] : 0.0);
    free(lat);
    rc = errors ? 1 : 0;
out:
    if (f)
        fclose(f);
    free(line);
    for (int i = 0; ws && i < c.conns; i++) {
        if (ws[i].tid)
            pthread_join(ws[i].tid, NULL);
        if (ws[i].hits)
            fclose(ws[i].hits);
        free(ws[i].buf);
        free(ws[i].s);
    }
    free(ws);
    for (size_t i = 0; reqs && i < n; i++)
        free(reqs[i].data);
    free(reqs);
    return rc;
}
