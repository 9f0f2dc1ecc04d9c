/* Test helper: drives indexer/embed.c against a server (tests/lib/fakegpu.py).
 *   embed_client --url URL [--model M] [--env] [--dim D] [--key K] [--key-file F]
 *       [--concurrency N] [--batch N] [--max-tokens N] [--timeout-ms N]
 *       [--attempts N] [--budget-ms N] [--backoff-ms N] [--backoff-max-ms N]
 *       [--linger-ms N] [--doc-prefix P] [--query-prefix P] [--normalize]
 *       [--producers N] [--callback] [--gen N [--len BYTES]] [--query TEXT]
 *       [--out FILE]
 * With --env the configuration starts from the SAGE_EMBED_* variables and
 * flags override it. --gen queues N distinct generated texts (ids 0..N-1)
 * from --producers threads, interleaved; --query embeds one query instead.
 * --out writes "id v0 v1 ..." per line (%.9g, exact for floats) in id order.
 * Prints one JSON line of client stats on stdout ("ok", "error", "elapsed_ms",
 * counters); exits 1 when the embedder failed, 2 on usage errors. */
#include <getopt.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "../../indexer/embed.h"

struct run {
    struct embedder *e;
    unsigned n, len, producers, index;
    int rc;
    struct sage_err err;
    float *cb_vecs;             /* --callback: vectors by id */
    unsigned cb_dim;
    uint64_t cb_calls;
    pthread_mutex_t mu;
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Distinct text number i, about len bytes: its number spelled out, then
 * words from a small vocabulary chosen by an LCG seeded with i. */
static size_t gen_text(unsigned i, unsigned len, char *out, size_t size)
{
    static const char *const words[] = { "embedding", "vector", "server", "batch", "token",
                                         "retry", "latency", "index", "chunk", "search",
                                         "document", "query", "kestrel", "gpu", "sage" };
    size_t n = (size_t)snprintf(out, size, "text %u:", i);
    uint32_t x = i * 2654435761u + 12345;
    while (n + 12 < size && n < len) {
        x = x * 1664525u + 1013904223u;
        n += (size_t)snprintf(out + n, size - n, " %s", words[(x >> 20) % 15]);
    }
    return n;
}

static void *producer(void *arg)
{
    struct run *r = arg;
    char buf[65536];
    pthread_mutex_lock(&r->mu);
    unsigned me = r->index++;
    pthread_mutex_unlock(&r->mu);
    for (unsigned i = me; i < r->n; i += r->producers) {
        struct sage_err err = { 0 };
        size_t len = gen_text(i, r->len, buf, sizeof(buf));
        int rc = embed_add(r->e, i, buf, len, &err);
        if (rc < 0) {
            pthread_mutex_lock(&r->mu);
            if (r->rc == 0) {
                r->rc = rc;
                r->err = err;
            }
            pthread_mutex_unlock(&r->mu);
            break;
        }
    }
    return NULL;
}

static int on_vector(void *ctx, uint64_t id, const float *vec, unsigned dim)
{
    struct run *r = ctx;
    if (id >= r->n || (r->cb_dim && dim != r->cb_dim))
        return -SAGE_EINVAL;
    if (!r->cb_vecs) {
        r->cb_dim = dim;
        if (!(r->cb_vecs = calloc((size_t)r->n * dim, sizeof(float))))
            return -SAGE_ENOMEM;
    }
    memcpy(r->cb_vecs + id * dim, vec, dim * sizeof(float));
    r->cb_calls++;
    return 0;
}

static int write_vectors(const char *path, const float *v, size_t n, unsigned dim)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "%zu", i);
        for (unsigned j = 0; j < dim; j++)
            fprintf(f, " %.9g", v[i * dim + j]);
        fputc('\n', f);
    }
    return fclose(f) == 0 ? 0 : -1;
}

static void usage(void)
{
    fputs("usage: embed_client --url URL [--model M] [--env] [options] (--gen N | --query TEXT)"
          " [--out FILE]\n", stderr);
}

int main(int argc, char **argv)
{
    enum { O_ENV = 256, O_KEYFILE, O_CONC, O_BATCH, O_MAXTOK, O_TIMEOUT, O_ATTEMPTS, O_BUDGET,
           O_BACKOFF, O_BACKOFF_MAX, O_LINGER, O_DPFX, O_QPFX, O_NORM, O_PROD, O_CB, O_LEN };
    static const struct option longopts[] = {
        { "url", 1, 0, 'u' }, { "model", 1, 0, 'm' }, { "env", 0, 0, O_ENV },
        { "dim", 1, 0, 'd' }, { "key", 1, 0, 'k' }, { "key-file", 1, 0, O_KEYFILE },
        { "concurrency", 1, 0, O_CONC }, { "batch", 1, 0, O_BATCH },
        { "max-tokens", 1, 0, O_MAXTOK }, { "timeout-ms", 1, 0, O_TIMEOUT },
        { "attempts", 1, 0, O_ATTEMPTS }, { "budget-ms", 1, 0, O_BUDGET },
        { "backoff-ms", 1, 0, O_BACKOFF }, { "backoff-max-ms", 1, 0, O_BACKOFF_MAX },
        { "linger-ms", 1, 0, O_LINGER }, { "doc-prefix", 1, 0, O_DPFX },
        { "query-prefix", 1, 0, O_QPFX }, { "normalize", 0, 0, O_NORM },
        { "producers", 1, 0, O_PROD }, { "callback", 0, 0, O_CB }, { "gen", 1, 0, 'g' },
        { "len", 1, 0, O_LEN }, { "query", 1, 0, 'q' }, { "out", 1, 0, 'o' }, { 0, 0, 0, 0 }
    };
    struct embed_config c;
    struct run r = { .len = 200, .producers = 1 };
    struct sage_err err = { 0 };
    const char *out = NULL, *query = NULL;
    int opt, rc = 0, use_env = 0, cb = 0, status = 0;
    float *vecs = NULL;
    size_t n_vecs = 0;
    embed_config_init(&c);
    c.model = "fake-embed";
    for (int i = 1; i < argc; i++)
        use_env |= strcmp(argv[i], "--env") == 0;
    if (use_env && embed_config_from_env(&c, &err) < 0) {
        fprintf(stderr, "embed_client: %s\n", err.msg);
        return 2;
    }
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        unsigned v = optarg ? (unsigned)strtoul(optarg, NULL, 10) : 0;
        switch (opt) {
        case 'u': c.url = optarg; break;
        case 'm': c.model = optarg; break;
        case O_ENV: break;
        case 'd': c.dim = v; break;
        case 'k': c.api_key = optarg; break;
        case O_KEYFILE: c.api_key_file = optarg; break;
        case O_CONC: c.concurrency = v; break;
        case O_BATCH: c.max_inputs = v; break;
        case O_MAXTOK: c.max_tokens = v; break;
        case O_TIMEOUT: c.retry.timeout_ms = v; break;
        case O_ATTEMPTS: c.retry.max_attempts = v; break;
        case O_BUDGET: c.retry.retry_budget_ms = v; break;
        case O_BACKOFF: c.retry.backoff_ms = v; break;
        case O_BACKOFF_MAX: c.retry.backoff_max_ms = v; break;
        case O_LINGER: c.linger_ms = v; break;
        case O_DPFX: c.doc_prefix = optarg; break;
        case O_QPFX: c.query_prefix = optarg; break;
        case O_NORM: c.normalize = 1; break;
        case O_PROD: r.producers = v ? v : 1; break;
        case O_CB: cb = 1; break;
        case 'g': r.n = v; break;
        case O_LEN: r.len = v; break;
        case 'q': query = optarg; break;
        case 'o': out = optarg; break;
        default: usage(); return 2;
        }
    }
    if (optind != argc || (!r.n && !query)) {
        usage();
        return 2;
    }
    if (cb) {
        c.on_vector = on_vector;
        c.ctx = &r;
    }
    pthread_mutex_init(&r.mu, NULL);
    double t0 = now_ms();
    if ((rc = embed_new(&c, &r.e, &err)) < 0) {
        fprintf(stderr, "embed_client: %s\n", err.msg);
        return 2;
    }
    if (query) {
        float q[EMBED_MAX_DIM];
        rc = embed_query(r.e, query, strlen(query), q, EMBED_MAX_DIM, &err);
        if (rc > 0 && out && write_vectors(out, q, 1, (unsigned)rc) < 0)
            rc = sage_err_set(&err, SAGE_EIO, "cannot write '%s'", out);
        rc = rc > 0 ? 0 : rc;
    } else {
        pthread_t *t = calloc(r.producers, sizeof(*t));
        unsigned started = 0;
        for (; t && started < r.producers; started++)
            if (pthread_create(&t[started], NULL, producer, &r) != 0)
                break;
        for (unsigned i = 0; i < started; i++)
            pthread_join(t[i], NULL);
        free(t);
        int frc = embed_finish(r.e, &err);
        rc = r.rc < 0 ? r.rc : frc;
        if (r.rc < 0)
            err = r.err;
        if (rc == 0 && !cb)
            rc = embed_vectors(r.e, &vecs, &n_vecs, &err);
        if (rc == 0 && cb) {
            vecs = r.cb_vecs;
            n_vecs = r.cb_calls == r.n ? r.n : 0;
        }
        if (rc == 0 && n_vecs != r.n)
            rc = sage_err_set(&err, SAGE_EINVAL, "got %zu vectors for %u inputs", n_vecs, r.n);
        if (rc == 0 && out && write_vectors(out, vecs, n_vecs, embed_dim(r.e)) < 0)
            rc = sage_err_set(&err, SAGE_EIO, "cannot write '%s'", out);
    }
    double elapsed = now_ms() - t0;
    struct embed_stats s;
    embed_get_stats(r.e, &s);
    json_t *j = json_pack("{s:b, s:s?, s:f, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:i}",
                          "ok", rc == 0, "error", rc < 0 ? err.msg : NULL, "elapsed_ms", elapsed,
                          "requests", (json_int_t)s.http.requests,
                          "retries", (json_int_t)s.http.retries,
                          "inputs", (json_int_t)s.inputs, "tokens", (json_int_t)s.tokens,
                          "bytes_sent", (json_int_t)s.http.bytes_sent,
                          "bytes_received", (json_int_t)s.http.bytes_received,
                          "max_batch", (json_int_t)s.max_batch,
                          "status_errors", (json_int_t)s.http.status_errors,
                          "transport_errors", (json_int_t)s.http.transport_errors,
                          "dim", (int)embed_dim(r.e));
    char *line = j ? json_dumps(j, JSON_COMPACT) : NULL;
    printf("%s\n", line ? line : "{\"ok\":false}");
    free(line);
    json_decref(j);
    if (rc < 0) {
        fprintf(stderr, "embed_client: %s\n", err.msg);
        status = 1;
    }
    if (cb)
        free(r.cb_vecs);
    else
        sage_free(vecs);
    embed_free(r.e);
    pthread_mutex_destroy(&r.mu);
    return status;
}
