/* Query embedding (qembed.h): binding to the index's settings, the cache,
 * the breaker, and the rate-limited log line of degraded answers. The
 * embedder itself is created when the first index with vectors is loaded,
 * since its model and query prefix come from that index. */
#include "qembed.h"

#include <pthread.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "../indexer/embed.h"   /* linked in: see the Makefile */
#include "log.h"
#include "lru.h"

#define PROBE_TEXT "sage-searchd dimension probe"

static const char *const reason_names[QE__COUNT] = {
    "ok", "no_embedder", "embedder_unavailable", "embedder_timeout", "circuit_open",
    "embedder_mismatch",
};

const char *qembed_reason_name(enum qembed_reason r)
{
    return (unsigned)r < QE__COUNT ? reason_names[r] : "unknown";
}

/* ---- breaker ---- */

int breaker_allow(struct breaker *b, double now_ms)
{
    switch (b->state) {
    case BREAKER_CLOSED:
        return 1;
    case BREAKER_OPEN:
        if (now_ms - b->opened_ms < b->cooldown_ms)
            return 0;
        b->state = BREAKER_HALF_OPEN;
        b->probing = 1;
        return 1;
    case BREAKER_HALF_OPEN:
        if (b->probing)
            return 0;
        b->probing = 1;
        return 1;
    }
    return 0;
}

void breaker_result(struct breaker *b, int ok, double now_ms)
{
    if (ok) {
        b->state = BREAKER_CLOSED;
        b->failures = 0;
        b->probing = 0;
        return;
    }
    b->failures++;
    if (b->state == BREAKER_HALF_OPEN || (b->state == BREAKER_CLOSED &&
                                          b->failures >= (b->threshold ? b->threshold : 1))) {
        b->state = BREAKER_OPEN;
        b->opened_ms = now_ms;
        b->probing = 0;
        b->opens++;
    }
}

/* ---- service ---- */

struct qembed {
    struct qembed_config cfg;       /* strings point at the copies below */
    char *url, *model, *api_key, *api_key_file;
    struct lru *cache;              /* NULL: none */
    pthread_mutex_t mu;             /* everything below */
    struct embedder *emb;           /* NULL until an index with vectors binds it */
    char *b_index, *b_model, *b_prefix;     /* what it was bound to */
    unsigned b_dim;
    struct breaker br;
    uint64_t mismatches, requests, failures;
    double last_log_ms;             /* of qembed_note_degraded's last line */
    uint64_t unlogged;              /* degraded answers since that line */
};

static int dup_opt(const char *s, char **out)
{
    *out = NULL;
    return !s || (*out = sage_strdup(s)) ? 0 : -1;
}

int qembed_new(const struct qembed_config *c, struct qembed **out, struct sage_err *err)
{
    struct qembed *q = sage_calloc(1, sizeof(*q));
    *out = NULL;
    if (!q)
        return sage_err_set(err, SAGE_ENOMEM, "cannot allocate the query embedder");
    pthread_mutex_init(&q->mu, NULL);
    q->cfg = *c;
    if (dup_opt(c->url, &q->url) < 0 || dup_opt(c->model, &q->model) < 0 ||
        dup_opt(c->api_key, &q->api_key) < 0 || dup_opt(c->api_key_file, &q->api_key_file) < 0 ||
        (c->cache_entries && lru_new(c->cache_entries, &q->cache) < 0)) {
        qembed_free(q);
        return sage_err_set(err, SAGE_ENOMEM, "cannot allocate the query embedder");
    }
    q->cfg.url = q->url;
    q->cfg.model = q->model;
    q->cfg.api_key = q->api_key;
    q->cfg.api_key_file = q->api_key_file;
    q->br.threshold = c->breaker_failures ? c->breaker_failures : 1;
    q->br.cooldown_ms = c->breaker_cooldown_ms;
    *out = q;
    return 0;
}

void qembed_free(struct qembed *q)
{
    if (!q)
        return;
    embed_free(q->emb);
    lru_free(q->cache);
    pthread_mutex_destroy(&q->mu);
    sage_free(q->url);
    sage_free(q->model);
    sage_free(q->api_key);
    sage_free(q->api_key_file);
    sage_free(q->b_index);
    sage_free(q->b_model);
    sage_free(q->b_prefix);
    sage_free(q);
}

int qembed_enabled(const struct qembed *q)
{
    return q && q->url != NULL;
}

/* Creates the embedder for an index's settings; q->mu held. */
static int bind_embedder(struct qembed *q, const char *index,
                         const struct sage_embedding_info *info, struct sage_err *err)
{
    struct embed_config ec;
    embed_config_init(&ec);
    ec.url = q->url;
    ec.model = info->model;
    ec.api_key = q->api_key;
    ec.api_key_file = q->api_key_file;
    ec.query_prefix = info->query_prefix;
    ec.dim = 0;             /* learned, then compared with the index's by qembed_query */
    ec.max_inputs = 1;
    ec.concurrency = 1;     /* the batch thread idles: searchd sends queries only */
    /* one try: the breaker, not a retry loop, deals with a failing server,
     * and a query must answer within the timeout */
    ec.retry = (struct remote_policy){ q->cfg.timeout_ms, 1, q->cfg.timeout_ms, 0, 0 };
    int rc = embed_new(&ec, &q->emb, err);
    if (rc < 0)
        return rc;
    if (!(q->b_index = sage_strdup(index)) || !(q->b_model = sage_strdup(info->model)) ||
        !(q->b_prefix = sage_strdup(info->query_prefix))) {
        embed_free(q->emb);
        q->emb = NULL;
        return sage_err_set(err, SAGE_ENOMEM, "cannot allocate the query embedder");
    }
    q->b_dim = info->dim;
    return 0;
}

int qembed_check(struct qembed *q, const char *index, const struct sage_embedding_info *info,
                 struct sage_err *err)
{
    int rc = 0;
    if (!q || !q->url || !info || info->dim == 0)
        return 0;
    pthread_mutex_lock(&q->mu);
    if (!info->model || !*info->model)
        rc = sage_err_set(err, SAGE_EINVAL, "index '%s' has vectors but its build record names "
                          "no embedding model", index);
    else if (q->model && strcmp(q->model, info->model) != 0)
        rc = sage_err_set(err, SAGE_EINVAL, "index '%s' was embedded with model '%s', but "
                          "--embed-model is '%s'", index, info->model, q->model);
    else if (!q->emb)
        rc = bind_embedder(q, index, info, err);
    else if (strcmp(q->b_model, info->model) != 0)
        rc = sage_err_set(err, SAGE_EINVAL, "index '%s' was embedded with model '%s', but the "
                          "query embedder serves '%s' (bound by index '%s')", index, info->model,
                          q->b_model, q->b_index);
    else if (strcmp(q->b_prefix, info->query_prefix) != 0)
        rc = sage_err_set(err, SAGE_EINVAL, "index '%s' wants the query prefix '%s', but the "
                          "query embedder uses '%s' (bound by index '%s')", index,
                          info->query_prefix, q->b_prefix, q->b_index);
    else if (q->b_dim != info->dim)
        rc = sage_err_set(err, SAGE_EINVAL, "index '%s' has vectors of dimension %u, but the "
                          "query embedder's are %u (bound by index '%s')", index, info->dim,
                          q->b_dim, q->b_index);
    if (rc == -SAGE_EINVAL)
        q->mismatches++;
    pthread_mutex_unlock(&q->mu);
    return rc;
}

uint64_t qembed_mismatches(struct qembed *q)
{
    pthread_mutex_lock(&q->mu);
    uint64_t n = q->mismatches;
    pthread_mutex_unlock(&q->mu);
    return n;
}

int qembed_probe(struct qembed *q, struct sage_err *err)
{
    float *v = NULL;
    int rc = 0;
    pthread_mutex_lock(&q->mu);
    struct embedder *e = q->emb;
    unsigned want = q->b_dim;
    pthread_mutex_unlock(&q->mu);
    if (!e)
        return 0;
    if (!(v = sage_calloc(EMBED_MAX_DIM, sizeof(float))))
        return sage_err_set(err, SAGE_ENOMEM, "cannot allocate a query vector");
    rc = embed_query(e, PROBE_TEXT, strlen(PROBE_TEXT), v, EMBED_MAX_DIM, err);
    if (rc >= 0 && (unsigned)rc != want)
        rc = sage_err_set(err, SAGE_EINVAL, "embedding server '%s' answers with vectors of "
                          "dimension %d, but the index's are %u", q->url, rc, want);
    else if (rc >= 0)
        rc = 0;
    sage_free(v);
    return rc;
}

int qembed_query(struct qembed *q, const char *text, size_t len, float *out, size_t dim,
                 enum qembed_reason *reason, struct sage_err *err)
{
    float *v = NULL;
    int rc;
    *reason = QE_OK;
    if (!q || !q->url) {
        *reason = QE_NO_EMBEDDER;
        return sage_err_set(err, SAGE_EINVAL, "no embedding server is configured "
                                              "(--embed-url)");
    }
    if (q->cache && lru_get(q->cache, text, len, out, dim) == dim)
        return (int)dim;
    pthread_mutex_lock(&q->mu);
    struct embedder *e = q->emb;
    int allowed = e && breaker_allow(&q->br, sage_now_ms());
    if (allowed)
        q->requests++;
    pthread_mutex_unlock(&q->mu);
    if (!e) {
        *reason = QE_NO_EMBEDDER;
        return sage_err_set(err, SAGE_EINVAL, "no index with vectors has set up the embedder");
    }
    if (!allowed) {
        *reason = QE_CIRCUIT_OPEN;
        return sage_err_set(err, SAGE_EREMOTE, "the embedding server failed %u times in a row; "
                            "not asking it for %.0f ms", q->br.threshold, q->br.cooldown_ms);
    }
    double t0 = sage_now_ms();
    if (!(v = sage_calloc(EMBED_MAX_DIM, sizeof(float)))) {
        rc = sage_err_set(err, SAGE_ENOMEM, "cannot allocate a query vector");
        *reason = QE_UNAVAILABLE;
    } else if ((rc = embed_query(e, text, len, v, EMBED_MAX_DIM, err)) < 0) {
        /* libcurl reports a timeout as a transport error like any other:
         * the clock tells them apart */
        *reason = sage_now_ms() - t0 >= 0.9 * q->cfg.timeout_ms ? QE_TIMEOUT : QE_UNAVAILABLE;
    } else if ((size_t)rc != dim) {
        *reason = QE_MISMATCH;
        rc = sage_err_set(err, SAGE_EREMOTE, "embedding server '%s' answered with dimension %d, "
                          "the index's is %zu", q->url, rc, dim);
    } else {
        memcpy(out, v, dim * sizeof(float));
    }
    pthread_mutex_lock(&q->mu);
    breaker_result(&q->br, rc >= 0, sage_now_ms());
    if (rc < 0)
        q->failures++;
    pthread_mutex_unlock(&q->mu);
    if (rc >= 0 && q->cache)
        lru_put(q->cache, text, len, out, dim);    /* a full cache is no error */
    sage_free(v);
    return rc;
}

void qembed_note_degraded(struct qembed *q, enum qembed_reason r, const char *why)
{
    double now = sage_now_ms();
    uint64_t quiet = 0;
    int say = 0;
    if (!q)
        return;
    pthread_mutex_lock(&q->mu);
    if (q->last_log_ms == 0 || now - q->last_log_ms >= QEMBED_LOG_EVERY_MS) {
        say = 1;
        quiet = q->unlogged;
        q->unlogged = 0;
        q->last_log_ms = now;
    } else {
        q->unlogged++;
    }
    pthread_mutex_unlock(&q->mu);
    if (say)
        sage_log(SAGE_LOG_WARN, "query embedding failed (%s): %s; answering from BM25 alone "
                 "(%llu more since the last such line)", qembed_reason_name(r), why,
                 (unsigned long long)quiet);
}

void qembed_get_stats(struct qembed *q, struct qembed_stats *s)
{
    memset(s, 0, sizeof(*s));
    if (!q)
        return;
    if (q->cache) {
        struct lru_stats ls;
        lru_get_stats(q->cache, &ls);
        s->cache_hits = ls.hits;
        s->cache_misses = ls.misses;
    }
    pthread_mutex_lock(&q->mu);
    s->requests = q->requests;
    s->failures = q->failures;
    s->breaker_opens = q->br.opens;
    s->breaker = q->br.state;
    pthread_mutex_unlock(&q->mu);
}
