/* The remote embedding client (embed.h). Producers queue texts; one I/O
 * thread owns a libcurl multi handle and `concurrency` reused easy handles
 * (slots), cuts the queue into batches bounded by count and estimated tokens,
 * and runs each slot's request to success or to a fatal error. A slot keeps
 * its batch while it waits to retry, so backoff slows the whole client, as a
 * server that says 429 wants. JSON is built and parsed with jansson. */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "embed.h"
#include "remote.h"
#include "clock.h"

#define MAX_INPUTS_CAP 4096u        /* config ceilings, against typos */
#define MAX_CONCURRENCY 256u
#define MAX_STORED_ID ((uint64_t)1 << 31)
#define IDLE_POLL_MS 1000
#define QUERY_IDLE_MAX 64u          /* idle query connections kept */

/* One queued text: the JSON string (prefix included) and its estimates. */
struct item {
    uint64_t id;
    json_t *text;
    size_t len;
    uint64_t tokens;
    double queued_ms;
    struct item *next;
};

/* One request slot: a reused easy handle and the batch it owns until the
 * batch succeeds (n_items 0: free). */
struct slot {
    struct embedder *e;
    CURL *easy;
    struct item **items;
    size_t n_items;
    char *body;                 /* request JSON (jansson's allocator: free()) */
    size_t body_len;
    struct remote_buf resp;
    long retry_after_ms;        /* from the last answer's Retry-After; -1: none */
    unsigned attempts;          /* requests sent for this batch */
    double first_fail_ms, due_ms;
    int running;                /* added to the multi handle */
    char errbuf[CURL_ERROR_SIZE];
};

struct embedder {
    struct embed_config cfg;    /* strings below are our copies */
    struct remote r;
    char *model, *doc_prefix, *query_prefix;
    CURLM *multi;
    struct slot *slots;
    pthread_t thread;
    int thread_started;

    pthread_mutex_t mu;         /* guards everything below */
    pthread_cond_t space;       /* queue room, or a fatal error */
    struct item *head, *tail;
    size_t n_queued;
    size_t queued_bytes;
    uint64_t queued_tokens;
    int finishing, stop, finished;
    int rc;                     /* first fatal error (negated code), 0 */
    struct sage_err err;
    unsigned dim;               /* configured or learned; 0: not yet */
    struct embed_stats stats;   /* inputs, tokens, max_batch (HTTP counters: r) */
    float *vecs;                /* stored vectors, row = id */
    size_t cap_rows;
    uint8_t *have;              /* 1 when row id holds a vector */
    size_t cap_have, n_rows;    /* n_rows: largest id + 1 */

    /* Idle easy handles for embed_query: a caller takes one (or makes one
     * when none is idle) and gives it back, so concurrent queries (searchd's
     * worker threads) each have a connection and never wait on another's
     * round trip; at most QUERY_IDLE_MAX stay kept-alive. */
    pthread_mutex_t query_mu;   /* guards query_idle */
    CURL *query_idle[QUERY_IDLE_MAX];
    unsigned n_query_idle;
};

/* ---- configuration ---- */

void embed_config_init(struct embed_config *c)
{
    memset(c, 0, sizeof(*c));
    c->max_inputs = 32;
    c->max_tokens = 16384;
    c->concurrency = 4;
    c->retry = (struct remote_policy){ 60000, 8, 120000, 250, 30000 };
    c->linger_ms = 20;
    c->max_queue_bytes = (size_t)32 << 20;
}

/* Fills zero numeric fields with their defaults. */
static void config_defaults(struct embed_config *c)
{
    struct embed_config d;
    embed_config_init(&d);
#define DEF(f) if (!c->f) c->f = d.f
    DEF(max_inputs); DEF(max_tokens); DEF(concurrency); DEF(linger_ms); DEF(max_queue_bytes);
#undef DEF
    remote_policy_defaults(&c->retry, &d.retry);
}

int embed_config_from_env(struct embed_config *c, struct sage_err *err)
{
#define STR(name, field) { name, REMOTE_ENV_STR, offsetof(struct embed_config, field), 0, 0 }
#define NUM(name, field, min, max) \
    { name, REMOTE_ENV_UINT, offsetof(struct embed_config, field), min, max }
    static const struct remote_env vars[] = {
        STR("SAGE_EMBED_URL", url),
        STR("SAGE_EMBED_MODEL", model),
        STR("SAGE_EMBED_API_KEY", api_key),
        STR("SAGE_EMBED_API_KEY_FILE", api_key_file),
        STR("SAGE_EMBED_DOC_PREFIX", doc_prefix),
        STR("SAGE_EMBED_QUERY_PREFIX", query_prefix),
        NUM("SAGE_EMBED_DIM", dim, 1, EMBED_MAX_DIM),
        NUM("SAGE_EMBED_BATCH", max_inputs, 1, MAX_INPUTS_CAP),
        NUM("SAGE_EMBED_MAX_TOKENS", max_tokens, 1, 1u << 24),
        NUM("SAGE_EMBED_CONCURRENCY", concurrency, 1, MAX_CONCURRENCY),
        NUM("SAGE_EMBED_TIMEOUT_MS", retry.timeout_ms, 1, 3600000),
        NUM("SAGE_EMBED_RETRIES", retry.max_attempts, 1, 1000),
        NUM("SAGE_EMBED_RETRY_BUDGET_MS", retry.retry_budget_ms, 1, 86400000),
        { "SAGE_EMBED_NORMALIZE", REMOTE_ENV_BOOL, offsetof(struct embed_config, normalize), 0, 1 },
    };
#undef STR
#undef NUM
    return remote_env_load(c, vars, sizeof(vars) / sizeof(vars[0]), err);
}

/* ---- response parsing, backoff ---- */

int embed_parse_response(const char *body, size_t len, size_t n, unsigned *dim, float **out,
                         struct sage_err *err)
{
    int rc = 0;
    json_error_t je;
    uint8_t *seen = NULL;
    float *v = NULL;
    *out = NULL;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    json_t *data = json_object_get(root, "data");
    if (!root) {
        rc = sage_err_set(err, SAGE_EREMOTE, "malformed JSON in the response: %s", je.text);
        goto out;
    }
    if (!json_is_array(data)) {
        rc = sage_err_set(err, SAGE_EREMOTE, "response has no \"data\" array");
        goto out;
    }
    if (json_array_size(data) != n) {
        rc = sage_err_set(err, SAGE_EREMOTE, "response holds %zu vectors for %zu inputs",
                          json_array_size(data), n);
        goto out;
    }
    if (n == 0)
        goto out;
    if (!(seen = sage_calloc(n, 1))) {
        rc = sage_err_set(err, SAGE_ENOMEM, "cannot parse the response");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *d = json_array_get(data, i), *ix = json_object_get(d, "index");
        json_t *emb = json_object_get(d, "embedding");
        size_t at = i, k = json_array_size(emb);
        if (ix) {
            if (!json_is_integer(ix) || json_integer_value(ix) < 0 ||
                (uint64_t)json_integer_value(ix) >= n) {
                rc = sage_err_set(err, SAGE_EREMOTE, "response item %zu has a bad \"index\"", i);
                goto out;
            }
            at = (size_t)json_integer_value(ix);
        }
        if (seen[at]) {
            rc = sage_err_set(err, SAGE_EREMOTE, "response repeats index %zu", at);
            goto out;
        }
        seen[at] = 1;
        if (!json_is_array(emb)) {
            rc = sage_err_set(err, SAGE_EREMOTE, "response item %zu has no \"embedding\" array", i);
            goto out;
        }
        if (*dim == 0) {
            if (k == 0 || k > EMBED_MAX_DIM) {
                rc = sage_err_set(err, SAGE_EREMOTE, "response vectors have dimension %zu "
                                  "(supported: 1 to %u)", k, EMBED_MAX_DIM);
                goto out;
            }
            *dim = (unsigned)k;
        }
        if (k != *dim) {
            rc = sage_err_set(err, SAGE_EREMOTE, "wrong dimension: vector %zu has %zu numbers, "
                              "expected %u", at, k, *dim);
            goto out;
        }
        if (!v && !(v = sage_calloc(n, (size_t)*dim * sizeof(float)))) {
            rc = sage_err_set(err, SAGE_ENOMEM, "cannot allocate %zu vectors", n);
            goto out;
        }
        for (size_t j = 0; j < k; j++) {
            json_t *x = json_array_get(emb, j);
            double f = json_number_value(x);
            if (!json_is_number(x) || !isfinite(f) || fabs(f) > 3.4e38) {
                rc = sage_err_set(err, SAGE_EREMOTE, "vector %zu holds a non-number at %zu", at, j);
                goto out;
            }
            v[at * *dim + j] = (float)f;
        }
    }
    *out = v;
    v = NULL;
out:
    sage_free(v);
    sage_free(seen);
    json_decref(root);
    return rc;
}

static void normalize(float *v, unsigned dim)
{
    double s = 0;
    for (unsigned i = 0; i < dim; i++)
        s += (double)v[i] * v[i];
    if (s > 0) {
        double k = 1.0 / sqrt(s);
        for (unsigned i = 0; i < dim; i++)
            v[i] = (float)(v[i] * k);
    }
}

/* Checks parsed vectors' dimension against the embedder's (learning it when
 * unset) and normalizes them. Takes e->mu. */
static int accept_vectors(struct embedder *e, float *v, size_t n, unsigned dim,
                          struct sage_err *err)
{
    int rc = 0;
    pthread_mutex_lock(&e->mu);
    if (e->dim == 0)
        e->dim = dim;
    if (dim != e->dim)
        rc = sage_err_set(err, SAGE_EREMOTE, "embedding server '%s' returned vectors of "
                          "dimension %u, expected %u", e->r.url, dim, e->dim);
    pthread_mutex_unlock(&e->mu);
    if (rc == 0 && e->cfg.normalize)
        for (size_t i = 0; i < n; i++)
            normalize(v + i * dim, dim);
    return rc;
}

/* ---- stored vectors ---- */

/* Stores vec under id; e->mu held, e->dim set. */
static int store(struct embedder *e, uint64_t id, const float *vec, struct sage_err *err)
{
    if (id >= MAX_STORED_ID)
        return sage_err_set(err, SAGE_ELIMIT, "vector id %llu over the limit of %llu",
                            (unsigned long long)id, (unsigned long long)MAX_STORED_ID);
    size_t row = (size_t)e->dim * sizeof(float);
    if (sage_grow((void **)&e->vecs, &e->cap_rows, (size_t)id + 1, row) < 0 ||
        sage_grow((void **)&e->have, &e->cap_have, (size_t)id + 1, 1) < 0)
        return sage_err_set(err, SAGE_ENOMEM, "cannot store %llu vectors",
                            (unsigned long long)id + 1);
    if (id >= e->n_rows) {
        memset(e->have + e->n_rows, 0, (size_t)id + 1 - e->n_rows);
        e->n_rows = (size_t)id + 1;
    }
    memcpy(e->vecs + (size_t)id * e->dim, vec, (size_t)e->dim * sizeof(float));
    e->have[id] = 1;
    return 0;
}

int embed_put(struct embedder *e, uint64_t id, const float *vec, unsigned dim, struct sage_err *err)
{
    int rc;
    if (e->cfg.on_vector)
        return sage_err_set(err, SAGE_EINVAL, "embed_put with a vector callback");
    pthread_mutex_lock(&e->mu);
    if (e->dim == 0 && dim > 0 && dim <= EMBED_MAX_DIM)
        e->dim = dim;
    if (dim != e->dim)
        rc = sage_err_set(err, SAGE_EINVAL, "reused vector has dimension %u, expected %u", dim,
                          e->dim);
    else
        rc = store(e, id, vec, err);
    pthread_mutex_unlock(&e->mu);
    return rc;
}

/* ---- the I/O thread ---- */

static void fail(struct embedder *e, int rc, const struct sage_err *why)
{
    pthread_mutex_lock(&e->mu);
    if (e->rc == 0) {
        e->rc = rc;
        e->err = *why;
    }
    pthread_cond_broadcast(&e->space);
    pthread_mutex_unlock(&e->mu);
}

static void free_items(struct item **items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        json_decref(items[i]->text);
        sage_free(items[i]);
    }
}

static void slot_clear(struct slot *s)
{
    free_items(s->items, s->n_items);
    s->n_items = 0;
    free(s->body);
    s->body = NULL;
    s->attempts = 0;
}

/* Moves one batch from the queue into s and builds its body; e->mu held. */
static int slot_fill(struct embedder *e, struct slot *s, struct sage_err *err)
{
    uint64_t tokens = 0;
    json_t *inputs = json_array(), *req = NULL;
    while (e->head && s->n_items < e->cfg.max_inputs &&
           (s->n_items == 0 || tokens + e->head->tokens <= e->cfg.max_tokens)) {
        struct item *it = e->head;
        e->head = it->next;
        if (!e->head)
            e->tail = NULL;
        e->n_queued--;
        e->queued_bytes -= it->len;
        e->queued_tokens -= it->tokens;
        s->items[s->n_items++] = it;
        tokens += it->tokens;
        if (inputs)
            json_array_append(inputs, it->text);
    }
    pthread_cond_broadcast(&e->space);
    if (inputs)
        req = json_pack("{s:s, s:o}", "model", e->model, "input", inputs);
    s->body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!s->body)
        return sage_err_set(err, SAGE_ENOMEM, "cannot build a request of %zu inputs", s->n_items);
    s->body_len = strlen(s->body);
    s->resp.max = ((size_t)1 << 20) + s->n_items * (size_t)EMBED_MAX_DIM * 32;
    s->first_fail_ms = 0;
    return 0;
}

static int slot_start(struct embedder *e, struct slot *s, struct sage_err *err)
{
    remote_request_reset(s->easy, s->body, s->body_len, &s->resp, &s->retry_after_ms, s->errbuf);
    if (curl_multi_add_handle(e->multi, s->easy) != CURLM_OK)
        return sage_err_set(err, SAGE_ENOMEM, "cannot start a request");
    s->running = 1;
    remote_count_request(&e->r, s->attempts++, s->body_len);
    pthread_mutex_lock(&e->mu);
    if (s->n_items > e->stats.max_batch)
        e->stats.max_batch = s->n_items;
    pthread_mutex_unlock(&e->mu);
    return 0;
}

/* Delivers a batch's vectors: to the callback, or into storage. */
static int deliver(struct embedder *e, struct slot *s, const float *v, unsigned dim,
                   struct sage_err *err)
{
    int rc = 0;
    uint64_t tokens = 0;
    for (size_t i = 0; i < s->n_items && rc == 0; i++) {
        tokens += s->items[i]->tokens;
        if (e->cfg.on_vector && (rc = e->cfg.on_vector(e->cfg.ctx, s->items[i]->id,
                                                       v + i * dim, dim)) != 0)
            rc = sage_err_set(err, rc < 0 ? -rc : SAGE_EINVAL,
                              "vector consumer refused id %llu",
                              (unsigned long long)s->items[i]->id);
    }
    pthread_mutex_lock(&e->mu);
    for (size_t i = 0; i < s->n_items && rc == 0 && !e->cfg.on_vector; i++)
        rc = store(e, s->items[i]->id, v + i * dim, err);
    e->stats.inputs += s->n_items;
    e->stats.tokens += tokens;
    pthread_mutex_unlock(&e->mu);
    return rc;
}

/* Handles a finished request of slot s; a fatal error returns < 0. */
static int slot_done(struct embedder *e, struct slot *s, CURLcode cc, struct sage_err *err)
{
    char why[SAGE_ERR_MSG_MAX];
    unsigned delay = 0;
    float *v = NULL;
    int rc = 0;
    curl_multi_remove_handle(e->multi, s->easy);
    s->running = 0;
    enum remote_verdict vd = remote_judge(s->easy, cc, &s->resp, s->errbuf, why, sizeof(why));
    remote_count_answer(&e->r, cc, vd, s->resp.len);
    unsigned dim = embed_dim(e);
    if (vd == REMOTE_OK) {
        struct sage_err perr = { 0 };
        if (embed_parse_response(s->resp.p, s->resp.len, s->n_items, &dim, &v, &perr) < 0) {
            rc = sage_err_set(err, perr.code, "embedding server '%s' sent a bad response to %zu "
                              "inputs: %s", e->r.url, s->n_items, perr.msg);
            goto out;
        }
        if ((rc = accept_vectors(e, v, s->n_items, dim, err)) < 0 ||
            (rc = deliver(e, s, v, dim, err)) < 0)
            goto out;
        slot_clear(s);
        goto out;
    }
    if (s->attempts == 1 || s->first_fail_ms == 0)
        s->first_fail_ms = sage_now_ms();
    if (vd == REMOTE_FATAL ||
        !remote_may_retry(&e->r, s->attempts, s->first_fail_ms, s->retry_after_ms, &delay)) {
        char request[64];
        snprintf(request, sizeof(request), "a request of %zu input%s", s->n_items,
                 s->n_items == 1 ? "" : "s");
        if (strncmp(why, "HTTP 413", 8) == 0)   /* the server's batch limits are lower */
            snprintf(why + strlen(why), sizeof(why) - strlen(why), " (lower SAGE_EMBED_BATCH, "
                     "now %u, or SAGE_EMBED_MAX_TOKENS, now %u)", e->cfg.max_inputs,
                     e->cfg.max_tokens);
        rc = remote_give_up(&e->r, err, s->attempts, request, why);
        goto out;
    }
    s->due_ms = sage_now_ms() + delay;
out:
    sage_free(v);
    return rc;
}

/* One pass over the slots under e->mu: starts what is due, and returns
 * the poll timeout (ms); *done when all work is over. */
static int schedule(struct embedder *e, int *done, struct sage_err *err)
{
    double now = sage_now_ms(), wait = IDLE_POLL_MS;
    int rc = 0, busy = 0;
    for (unsigned i = 0; i < e->cfg.concurrency && rc == 0; i++) {
        struct slot *s = &e->slots[i];
        if (s->running) {
            busy = 1;
            continue;
        }
        if (s->n_items == 0 && e->head) {
            int full = e->n_queued >= e->cfg.max_inputs || e->queued_tokens >= e->cfg.max_tokens;
            double ready = e->head->queued_ms + e->cfg.linger_ms;
            if (!full && !e->finishing && ready > now) {
                if (ready - now < wait)
                    wait = ready - now;
                continue;
            }
            if ((rc = slot_fill(e, s, err)) < 0)
                break;
            s->due_ms = now;
        }
        if (s->n_items == 0)
            continue;
        busy = 1;
        if (s->due_ms <= now) {
            pthread_mutex_unlock(&e->mu);
            rc = slot_start(e, s, err);
            pthread_mutex_lock(&e->mu);
        } else if (s->due_ms - now < wait) {
            wait = s->due_ms - now;
        }
    }
    *done = rc == 0 && e->finishing && !e->head && !busy;
    return rc < 0 ? rc : (int)ceil(wait);
}

static void *io_main(void *arg)
{
    struct embedder *e = arg;
    struct sage_err err = { 0 };
    int rc = 0, done = 0;
    /* Completions are handled before scheduling, so a slot freed by this
     * pass is refilled at once rather than after the poll's timeout. */
    for (;;) {
        int running, left, wait;
        CURLMsg *m;
        curl_multi_perform(e->multi, &running);
        while (rc == 0 && (m = curl_multi_info_read(e->multi, &left))) {
            struct slot *s = NULL;
            if (m->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&s);
            rc = slot_done(e, s, m->data.result, &err);
        }
        if (rc < 0)
            break;
        pthread_mutex_lock(&e->mu);
        if (e->rc < 0 || e->stop) {
            pthread_mutex_unlock(&e->mu);
            break;
        }
        wait = schedule(e, &done, &err);
        pthread_mutex_unlock(&e->mu);
        if (wait < 0) {
            rc = wait;
            break;
        }
        if (done)
            break;
        /* A handle added by schedule() carries a zero timeout inside
         * libcurl, so this returns at once to start it. */
        if (curl_multi_poll(e->multi, NULL, 0, wait, NULL) != CURLM_OK) {
            rc = sage_err_set(&err, SAGE_EIO, "curl_multi_poll failed");
            break;
        }
    }
    if (rc < 0)
        fail(e, rc, &err);
    for (unsigned i = 0; i < e->cfg.concurrency; i++) {
        if (e->slots[i].running)
            curl_multi_remove_handle(e->multi, e->slots[i].easy);
        e->slots[i].running = 0;
    }
    return NULL;
}

/* ---- public API ---- */

static char *dup_or_empty(const char *s)
{
    return sage_strdup(s ? s : "");
}

int embed_new(const struct embed_config *c, struct embedder **out, struct sage_err *err)
{
    int rc = 0;
    struct embedder *e = NULL;
    *out = NULL;
    if (!c->url || !*c->url || !c->model || !*c->model)
        return sage_err_set(err, SAGE_EINVAL, "an embedding server needs a URL and a model name");
    if ((rc = remote_curl_ready(err)) < 0)
        return rc;
    if (!(e = sage_calloc(1, sizeof(*e))))
        return sage_err_set(err, SAGE_ENOMEM, "cannot allocate the embedder");
    e->cfg = *c;
    config_defaults(&e->cfg);
    if (e->cfg.dim > EMBED_MAX_DIM || e->cfg.max_inputs > MAX_INPUTS_CAP ||
        e->cfg.concurrency > MAX_CONCURRENCY) {
        rc = sage_err_set(err, SAGE_EINVAL, "embedding limits out of range (dimension <= %u, "
                          "batch <= %u, concurrency <= %u)", EMBED_MAX_DIM, MAX_INPUTS_CAP,
                          MAX_CONCURRENCY);
        sage_free(e);
        return rc;
    }
    e->dim = c->dim;
    pthread_mutex_init(&e->mu, NULL);
    pthread_mutex_init(&e->query_mu, NULL);
    pthread_cond_init(&e->space, NULL);
    if ((rc = remote_init(&e->r, "embedding server", remote_endpoint(c->url, "embeddings"),
                          c->api_key, c->api_key_file, &e->cfg.retry, err)) < 0)
        goto out;
    if (!(e->model = sage_strdup(c->model)) || !(e->doc_prefix = dup_or_empty(c->doc_prefix)) ||
        !(e->query_prefix = dup_or_empty(c->query_prefix)) ||
        !(e->slots = sage_calloc(e->cfg.concurrency, sizeof(*e->slots))) ||
        !(e->multi = curl_multi_init())) {
        rc = sage_err_set(err, SAGE_ENOMEM, "cannot allocate the embedder");
        goto out;
    }
    e->cfg.url = e->r.url;
    e->cfg.model = e->model;
    e->cfg.doc_prefix = e->doc_prefix;
    e->cfg.query_prefix = e->query_prefix;
    e->cfg.api_key = e->cfg.api_key_file = NULL;
    curl_multi_setopt(e->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)e->cfg.concurrency);
    for (unsigned i = 0; i < e->cfg.concurrency; i++) {
        struct slot *s = &e->slots[i];
        s->e = e;
        if (!(s->items = sage_calloc(e->cfg.max_inputs, sizeof(*s->items))) ||
            !(s->easy = curl_easy_init()) ||
            remote_easy_setup(&e->r, s->easy, &s->resp, &s->retry_after_ms, s->errbuf) < 0 ||
            curl_easy_setopt(s->easy, CURLOPT_PRIVATE, s) != CURLE_OK) {
            rc = sage_err_set(err, SAGE_ENOMEM, "cannot set up request %u", i);
            goto out;
        }
    }
    if (pthread_create(&e->thread, NULL, io_main, e) != 0) {
        rc = sage_err_set(err, SAGE_ENOMEM, "cannot start the embedding thread");
        goto out;
    }
    e->thread_started = 1;
out:
    if (rc < 0) {
        embed_free(e);
        return rc;
    }
    *out = e;
    return 0;
}

/* Copies e's fatal error to err; e->mu held. */
static int fatal(struct embedder *e, struct sage_err *err)
{
    if (err)
        *err = e->err;
    return e->rc;
}

int embed_add(struct embedder *e, uint64_t id, const char *text, size_t len, struct sage_err *err)
{
    int rc = 0;
    size_t pl = strlen(e->doc_prefix);
    struct item *it = NULL;
    char *joined = NULL;
    if (e->cfg.on_vector == NULL && id >= MAX_STORED_ID)
        return sage_err_set(err, SAGE_ELIMIT, "vector id %llu over the limit of %llu",
                            (unsigned long long)id, (unsigned long long)MAX_STORED_ID);
    if (len > SIZE_MAX - pl - 1 || !(joined = sage_malloc(pl + len + 1)) ||
        !(it = sage_calloc(1, sizeof(*it))))
        goto nomem;
    memcpy(joined, e->doc_prefix, pl);
    memcpy(joined + pl, text, len);
    it->id = id;
    it->len = pl + len;
    it->tokens = embed_estimate_tokens(it->len);
    if (!(it->text = json_stringn(joined, it->len))) {
        rc = sage_err_set(err, SAGE_EINVAL, "text for id %llu is not valid UTF-8",
                          (unsigned long long)id);
        goto out;
    }
    pthread_mutex_lock(&e->mu);
    if (e->finishing)
        SAGE_BUG("embed_add after embed_finish");
    while (e->rc == 0 && e->queued_bytes > 0 && e->queued_bytes + it->len > e->cfg.max_queue_bytes)
        pthread_cond_wait(&e->space, &e->mu);
    if (e->rc < 0) {
        rc = fatal(e, err);
    } else {
        /* The I/O thread wakes for the first item (linger timer) and for a
         * batch that just became full; a finishing request wakes it too. */
        int wake = !e->head || e->n_queued + 1 == e->cfg.max_inputs ||
                   (e->queued_tokens < e->cfg.max_tokens &&
                    e->queued_tokens + it->tokens >= e->cfg.max_tokens);
        it->queued_ms = sage_now_ms();
        if (e->tail)
            e->tail->next = it;
        else
            e->head = it;
        e->tail = it;
        e->n_queued++;
        e->queued_bytes += it->len;
        e->queued_tokens += it->tokens;
        it = NULL;
        if (wake)
            curl_multi_wakeup(e->multi);
    }
    pthread_mutex_unlock(&e->mu);
    goto out;
nomem:
    rc = sage_err_set(err, SAGE_ENOMEM, "cannot queue text for id %llu", (unsigned long long)id);
out:
    if (it) {
        json_decref(it->text);
        sage_free(it);
    }
    sage_free(joined);
    return rc;
}

static void stop_thread(struct embedder *e, int abandon)
{
    if (!e->thread_started)
        return;
    pthread_mutex_lock(&e->mu);
    e->finishing = 1;
    e->stop |= abandon;
    pthread_mutex_unlock(&e->mu);
    curl_multi_wakeup(e->multi);
    pthread_join(e->thread, NULL);
    e->thread_started = 0;
}

int embed_finish(struct embedder *e, struct sage_err *err)
{
    int rc;
    stop_thread(e, 0);
    pthread_mutex_lock(&e->mu);
    e->finished = 1;
    rc = e->rc < 0 ? fatal(e, err) : 0;
    pthread_mutex_unlock(&e->mu);
    return rc;
}

int embed_vectors(struct embedder *e, float **vecs, size_t *n, struct sage_err *err)
{
    *vecs = NULL;
    *n = 0;
    if (!e->finished || e->rc < 0 || e->cfg.on_vector)
        return sage_err_set(err, SAGE_EINVAL, "no stored vectors to take (embed_finish first, "
                            "without a callback)");
    for (size_t i = 0; i < e->n_rows; i++)
        if (!e->have[i])
            return sage_err_set(err, SAGE_EINVAL, "id %zu has no vector", i);
    *vecs = e->vecs;
    *n = e->n_rows;
    e->vecs = NULL;
    e->cap_rows = e->n_rows = 0;
    return 0;
}

int embed_query(struct embedder *e, const char *text, size_t len, float *out, size_t out_cap,
                struct sage_err *err)
{
    int rc = 0;
    struct remote_buf resp = { .max = ((size_t)1 << 20) + (size_t)EMBED_MAX_DIM * 32 };
    unsigned dim;
    float *v = NULL;
    char *body = NULL;
    size_t pl = strlen(e->query_prefix);
    char *joined = len <= SIZE_MAX - pl - 1 ? sage_malloc(pl + len + 1) : NULL;
    json_t *req = NULL;
    struct sage_err perr = { 0 };
    CURL *h = NULL;
    if (!joined) {
        rc = sage_err_set(err, SAGE_ENOMEM, "cannot build a query request");
        goto out;
    }
    memcpy(joined, e->query_prefix, pl);
    memcpy(joined + pl, text, len);
    req = json_pack("{s:s, s:[s%]}", "model", e->model, "input", joined, pl + len);
    if (!req || !(body = json_dumps(req, JSON_COMPACT))) {
        rc = sage_err_set(err, SAGE_EINVAL, "query text is not valid UTF-8");
        goto out;
    }
    pthread_mutex_lock(&e->query_mu);
    if (e->n_query_idle)
        h = e->query_idle[--e->n_query_idle];
    pthread_mutex_unlock(&e->query_mu);
    if (!h && (!(h = curl_easy_init()) || remote_easy_setup(&e->r, h, NULL, NULL, NULL) < 0)) {
        rc = sage_err_set(err, SAGE_ENOMEM, "cannot set up a query request");
        goto out;
    }
    if ((rc = remote_post(&e->r, h, body, strlen(body), &resp, "a query", err)) < 0)
        goto out;
    dim = embed_dim(e);
    if (embed_parse_response(resp.p, resp.len, 1, &dim, &v, &perr) < 0) {
        rc = sage_err_set(err, perr.code, "embedding server '%s' sent a bad response to a query: "
                          "%s", e->r.url, perr.msg);
        goto out;
    }
    if ((rc = accept_vectors(e, v, 1, dim, err)) < 0)
        goto out;
    pthread_mutex_lock(&e->mu);
    e->stats.inputs++;
    e->stats.tokens += embed_estimate_tokens(pl + len);
    pthread_mutex_unlock(&e->mu);
    if (dim > out_cap) {
        rc = sage_err_set(err, SAGE_ELIMIT, "query vector of dimension %u does not fit in %zu",
                          dim, out_cap);
        goto out;
    }
    memcpy(out, v, dim * sizeof(float));
    rc = (int)dim;
out:
    /* a handle whose request failed is dropped: its connection may be the
     * broken one */
    if (h && rc >= 0) {
        pthread_mutex_lock(&e->query_mu);
        if (e->n_query_idle < QUERY_IDLE_MAX) {
            e->query_idle[e->n_query_idle++] = h;
            h = NULL;
        }
        pthread_mutex_unlock(&e->query_mu);
    }
    curl_easy_cleanup(h);
    sage_free(v);
    sage_free(resp.p);
    free(body);
    json_decref(req);
    sage_free(joined);
    return rc;
}

unsigned embed_dim(const struct embedder *e)
{
    struct embedder *m = (struct embedder *)e;
    pthread_mutex_lock(&m->mu);
    unsigned d = m->dim;
    pthread_mutex_unlock(&m->mu);
    return d;
}

void embed_get_stats(const struct embedder *e, struct embed_stats *s)
{
    struct embedder *m = (struct embedder *)e;
    pthread_mutex_lock(&m->mu);
    *s = m->stats;
    pthread_mutex_unlock(&m->mu);
    remote_get_counters(&m->r, &s->http);
}

void embed_free(struct embedder *e)
{
    if (!e)
        return;
    stop_thread(e, 1);
    for (unsigned i = 0; e->slots && i < e->cfg.concurrency; i++) {
        slot_clear(&e->slots[i]);
        curl_easy_cleanup(e->slots[i].easy);
        sage_free(e->slots[i].items);
        sage_free(e->slots[i].resp.p);
    }
    while (e->head) {
        struct item *it = e->head;
        e->head = it->next;
        free_items(&it, 1);
    }
    for (unsigned i = 0; i < e->n_query_idle; i++)
        curl_easy_cleanup(e->query_idle[i]);
    curl_multi_cleanup(e->multi);
    remote_release(&e->r);
    sage_free(e->slots);
    sage_free(e->model);
    sage_free(e->doc_prefix);
    sage_free(e->query_prefix);
    sage_free(e->vecs);
    sage_free(e->have);
    pthread_mutex_destroy(&e->mu);
    pthread_mutex_destroy(&e->query_mu);
    pthread_cond_destroy(&e->space);
    sage_free(e);
}
