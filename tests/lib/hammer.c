/* Test helper: a small HTTP load client for the hot swap test.
 *   hammer --port P [--threads N] [--path PATH] [--stop FILE] [--seconds S]
 *          [--started FILE] [--odd LIB --even LIB] [--key KEY] [--rate R]
 * N threads each send GET PATH to 127.0.0.1:P over one keep-alive socket,
 * non-stop (or R requests a second in all, evenly spaced, so that a small
 * machine keeps CPU for the rest of a test), until FILE exists or S seconds
 * pass, and check each search answer: a 200 with hits that all come from one
 * library, the library that the generation's parity names (--odd/--even),
 * and a generation that never goes backwards on one connection. Prints a JSON summary on stdout; the
 * first few failures go to stderr. Judging the numbers is left to the test. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "loopback.h"

#define MAX_RESPONSE (4u << 20)     /* a bigger answer is an error, not a reason to grow */
#define MAX_SAMPLES (8u << 20)      /* latencies kept per thread; later ones count only in max */
#define MAX_REPORTS 10              /* failures described on stderr */

struct config {
    int port, threads;
    const char *path, *stop, *started, *odd, *even, *key;
    double seconds, rate;
};

struct worker {
    const struct config *cfg;
    pthread_t tid;
    uint64_t requests, ok, non_200, errors, inconsistent, swaps_seen;
    uint64_t gen_min, gen_max;
    double max_ms, swap_max_ms;
    double *lat;                /* milliseconds of each finished request, up to MAX_SAMPLES */
    size_t n_lat, cap_lat;
    char *buf;                  /* the connection's receive buffer */
    size_t cap_buf;
};

static int reports;             /* atomic: failures described so far */
static int n_started;           /* atomic: threads with one answer behind them */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void report(const char *fmt, ...)
{
    if (__atomic_fetch_add(&reports, 1, __ATOMIC_RELAXED) >= MAX_REPORTS)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "hammer: %s\n", line);
}

/* Reads one response on fd into w->buf. Returns the status and sets *body,
 * *body_len and *close_after; -1 on a connection or framing error. */
static int read_response(struct worker *w, int fd, const char **body, size_t *body_len,
                         int *close_after)
{
    size_t have = 0, need = 0, hdr_len = 0;
    int status = -1;
    for (;;) {
        if (have + 1 >= w->cap_buf) {
            if (w->cap_buf >= MAX_RESPONSE)
                return -1;
            char *b = realloc(w->buf, w->cap_buf * 2);
            if (!b)
                return -1;
            w->buf = b;
            w->cap_buf *= 2;
        }
        ssize_t k = recv(fd, w->buf + have, w->cap_buf - have - 1, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        have += (size_t)k;
        w->buf[have] = '\0';
        if (!hdr_len) {
            char *e = strstr(w->buf, "\r\n\r\n");
            if (!e)
                continue;
            hdr_len = (size_t)(e - w->buf) + 4;
            unsigned st;
            if (sscanf(w->buf, "HTTP/1.%*1[01] %3u", &st) != 1)
                return -1;
            status = (int)st;
            const char *cl = lb_header(w->buf, e, "Content-Length");
            const char *conn = lb_header(w->buf, e, "Connection");
            char *end;
            if (!cl)
                return -1;
            errno = 0;
            unsigned long long v = strtoull(cl, &end, 10);
            if (errno || end == cl || v > MAX_RESPONSE)
                return -1;
            need = hdr_len + (size_t)v;
            *close_after = conn && strncasecmp(conn, "close", 5) == 0;
        }
        if (have > need)
            return -1;      /* nothing was pipelined: extra bytes are a framing error */
        if (have == need)
            break;
    }
    *body = w->buf + hdr_len;
    *body_len = need - hdr_len;
    return status;
}

/* Checks one 200 answer; returns 0 when consistent. *gen receives its
 * generation. */
static int check_answer(const struct config *cfg, const char *body, size_t len, uint64_t prev,
                        uint64_t *gen)
{
    json_error_t je;
    json_t *j = json_loadb(body, len, 0, &je);
    json_t *hits = json_object_get(j, "hits");
    json_t *g = json_object_get(j, "generation");
    const char *first = NULL;
    int bad = 0;
    *gen = 0;
    if (!json_is_object(j) || !json_is_integer(g) || !json_is_array(hits)) {
        report("answer is not a search result: %.200s", body);
        bad = 1;
        goto out;
    }
    *gen = (uint64_t)json_integer_value(g);
    if (json_array_size(hits) == 0) {
        report("generation %llu: no hits", (unsigned long long)*gen);
        bad = 1;
        goto out;
    }
    for (size_t i = 0; i < json_array_size(hits); i++) {
        const char *lib = json_string_value(json_object_get(json_array_get(hits, i), "library"));
        if (!lib || (first && strcmp(lib, first) != 0)) {
            report("generation %llu: hits from '%s' and '%s'", (unsigned long long)*gen,
                   first ? first : "?", lib ? lib : "?");
            bad = 1;
            goto out;
        }
        first = lib;
    }
    if (cfg->odd && cfg->even) {
        const char *want = *gen & 1 ? cfg->odd : cfg->even;
        if (strcmp(first, want) != 0) {
            report("generation %llu: hits from '%s', expected '%s'", (unsigned long long)*gen,
                   first, want);
            bad = 1;
        }
    }
    if (*gen < prev) {
        report("generation went back from %llu to %llu", (unsigned long long)prev,
               (unsigned long long)*gen);
        bad = 1;
    }
out:
    json_decref(j);
    return bad ? -1 : 0;
}

static int stop_now(const struct config *cfg, double deadline)
{
    return (cfg->stop && access(cfg->stop, F_OK) == 0) || (deadline > 0 && now_ms() >= deadline);
}

static void *work(void *arg)
{
    struct worker *w = arg;
    const struct config *cfg = w->cfg;
    char req[4096];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s%s%s\r\n",
                     cfg->path, cfg->port, cfg->key ? "Authorization: Bearer " : "",
                     cfg->key ? cfg->key : "", cfg->key ? "\r\n" : "");
    double deadline = cfg->seconds > 0 ? now_ms() + cfg->seconds * 1e3 : 0;
    uint64_t last_gen = 0;
    int fd = -1, counted = 0;
    if (n < 0 || (size_t)n >= sizeof(req)) {
        report("request too long");
        w->errors++;
        return NULL;
    }
    w->cap_buf = 65536;
    if (!(w->buf = malloc(w->cap_buf))) {
        w->errors++;
        return NULL;
    }
    w->gen_min = UINT64_MAX;
    double interval = cfg->rate > 0 ? 1e3 * cfg->threads / cfg->rate : 0, next = now_ms();
    while (!stop_now(cfg, deadline)) {
        const char *body = NULL;
        size_t body_len = 0;
        int close_after = 0, status = -1;
        double t0 = now_ms();
        if (interval > 0) {
            /* a fixed schedule; a late request does not make the next ones hurry */
            next = next + interval < t0 ? t0 : next + interval;
            if (next > t0) {
                struct timespec ts = { (time_t)((next - t0) / 1e3),
                                       (long)(fmod(next - t0, 1e3) * 1e6) };
                nanosleep(&ts, NULL);
                t0 = now_ms();
            }
        }
        if (fd < 0 && (fd = lb_dial(cfg->port, 0)) < 0) {
            w->errors++;
            report("cannot connect to port %d: %s", cfg->port, strerror(errno));
            usleep(10000);
            continue;
        }
        w->requests++;
        errno = 0;
        if (lb_send_all(fd, req, (size_t)n) < 0 ||
            (status = read_response(w, fd, &body, &body_len, &close_after)) < 0) {
            w->errors++;
            report("connection error after %llu requests on this thread: %s",
                   (unsigned long long)w->requests, errno ? strerror(errno) : "bad framing");
            close(fd);
            fd = -1;
            continue;
        }
        double ms = now_ms() - t0;
        if (ms > w->max_ms)
            w->max_ms = ms;
        if (w->n_lat < MAX_SAMPLES) {
            if (w->n_lat == w->cap_lat) {
                size_t cap = w->cap_lat ? w->cap_lat * 2 : 4096;
                double *l = realloc(w->lat, cap * sizeof(*l));
                if (l) {
                    w->lat = l;
                    w->cap_lat = cap;
                }
            }
            if (w->n_lat < w->cap_lat)
                w->lat[w->n_lat++] = ms;
        }
        if (status != 200) {
            w->non_200++;
            report("status %d: %.200s", status, body);
        } else {
            uint64_t gen;
            w->ok++;
            if (check_answer(cfg, body, body_len, last_gen, &gen) < 0)
                w->inconsistent++;
            if (gen) {
                if (last_gen && gen != last_gen) {
                    w->swaps_seen++;
                    if (ms > w->swap_max_ms)
                        w->swap_max_ms = ms;
                }
                if (gen > last_gen)
                    last_gen = gen;
                if (gen < w->gen_min)
                    w->gen_min = gen;
                if (gen > w->gen_max)
                    w->gen_max = gen;
            }
        }
        if (!counted) {
            counted = 1;
            if (__atomic_add_fetch(&n_started, 1, __ATOMIC_ACQ_REL) == cfg->threads && cfg->started) {
                FILE *f = fopen(cfg->started, "w");
                if (f)
                    fclose(f);
            }
        }
        if (close_after) {
            close(fd);
            fd = -1;
        }
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int usage(void)
{
    fprintf(stderr, "usage: hammer --port P [--threads N] [--path PATH] [--stop FILE] "
                    "[--seconds S] [--started FILE] [--odd LIB --even LIB] [--key KEY] [--rate R]\n");
    return 2;
}

static int parse_num(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    *out = strtod(s, &end);
    return errno || end == s || *end || *out < lo || *out > hi ? -1 : 0;
}

int main(int argc, char **argv)
{
    struct config cfg = { .threads = 8, .path = "/v1/search?q=alphaword+betaword&snippets=0" };
    double v;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *a = i + 1 < argc ? argv[i + 1] : NULL;
        if (!a)
            return usage();
        i++;
        if (strcmp(o, "--port") == 0 && parse_num(a, 1, 65535, &v) == 0)
            cfg.port = (int)v;
        else if (strcmp(o, "--threads") == 0 && parse_num(a, 1, 1024, &v) == 0)
            cfg.threads = (int)v;
        else if (strcmp(o, "--seconds") == 0 && parse_num(a, 0, 86400, &v) == 0)
            cfg.seconds = v;
        else if (strcmp(o, "--rate") == 0 && parse_num(a, 0, 1e7, &v) == 0)
            cfg.rate = v;
        else if (strcmp(o, "--path") == 0 && a[0] == '/')
            cfg.path = a;
        else if (strcmp(o, "--stop") == 0)
            cfg.stop = a;
        else if (strcmp(o, "--started") == 0)
            cfg.started = a;
        else if (strcmp(o, "--odd") == 0)
            cfg.odd = a;
        else if (strcmp(o, "--even") == 0)
            cfg.even = a;
        else if (strcmp(o, "--key") == 0)
            cfg.key = a;
        else
            return usage();
    }
    if (!cfg.port || (!cfg.stop && cfg.seconds <= 0) || !cfg.odd != !cfg.even)
        return usage();
    struct worker *w = calloc((size_t)cfg.threads, sizeof(*w));
    if (!w)
        return 1;
    double t0 = now_ms();
    int n_run = 0;
    for (int i = 0; i < cfg.threads; i++) {
        w[i].cfg = &cfg;
        if (pthread_create(&w[i].tid, NULL, work, &w[i]) != 0)
            break;
        n_run++;
    }
    struct worker sum = { .gen_min = UINT64_MAX };
    size_t n_lat = 0;
    for (int i = 0; i < n_run; i++) {
        pthread_join(w[i].tid, NULL);
        sum.requests += w[i].requests;
        sum.ok += w[i].ok;
        sum.non_200 += w[i].non_200;
        sum.errors += w[i].errors;
        sum.inconsistent += w[i].inconsistent;
        sum.swaps_seen += w[i].swaps_seen;
        sum.gen_min = w[i].gen_min < sum.gen_min ? w[i].gen_min : sum.gen_min;
        sum.gen_max = w[i].gen_max > sum.gen_max ? w[i].gen_max : sum.gen_max;
        sum.max_ms = w[i].max_ms > sum.max_ms ? w[i].max_ms : sum.max_ms;
        sum.swap_max_ms = w[i].swap_max_ms > sum.swap_max_ms ? w[i].swap_max_ms : sum.swap_max_ms;
        n_lat += w[i].n_lat;
    }
    double elapsed = (now_ms() - t0) / 1e3;
    double *all = malloc((n_lat ? n_lat : 1) * sizeof(*all));
    double p50 = 0, p99 = 0;
    if (all) {
        size_t k = 0;
        for (int i = 0; i < n_run; i++) {
            if (w[i].n_lat)
                memcpy(all + k, w[i].lat, w[i].n_lat * sizeof(*all));
            k += w[i].n_lat;
        }
        qsort(all, n_lat, sizeof(*all), cmp_double);
        if (n_lat) {
            p50 = all[n_lat / 2];
            p99 = all[(size_t)((double)(n_lat - 1) * 0.99)];
        }
    }
    json_t *out = json_pack(
        "{s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:f, s:f}",
        "threads", n_run, "requests", (json_int_t)sum.requests, "ok", (json_int_t)sum.ok,
        "non_200", (json_int_t)sum.non_200, "errors", (json_int_t)sum.errors,
        "inconsistent", (json_int_t)sum.inconsistent, "swaps_seen", (json_int_t)sum.swaps_seen,
        "generation_min", (json_int_t)(sum.gen_min == UINT64_MAX ? 0 : sum.gen_min),
        "generation_max", (json_int_t)sum.gen_max, "seconds", elapsed,
        "rps", elapsed > 0 ? (double)sum.requests / elapsed : 0.0, "p50_ms", p50, "p99_ms", p99,
        "max_latency_ms", sum.max_ms, "swap_max_ms", sum.swap_max_ms);
    char *s = out ? json_dumps(out, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
    int status = s && n_run == cfg.threads ? 0 : 1;
    if (s)
        puts(s);
    free(s);
    json_decref(out);
    for (int i = 0; i < n_run; i++) {
        free(w[i].lat);
        free(w[i].buf);
    }
    free(all);
    free(w);
    return status;
}
