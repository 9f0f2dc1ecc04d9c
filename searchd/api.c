/* The JSON API: search (GET with parameters, POST with a JSON body),
 * indexes, documents, health, readiness, metrics and the admin reload. Each
 * request holds one snapshot from start to end, so its answer comes wholly
 * from one generation of one index. */
#include <civetweb.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "query.h"
#include "request.h"
#include "search.h"
#include "server.h"
#include "clock.h"

#define MARK_OPEN "\x01"
#define MARK_CLOSE "\x02"

static int method_is(struct mg_connection *c, const char *m)
{
    return strcmp(mg_get_request_info(c)->request_method, m) == 0;
}

/* Splits a marked snippet into plain text, highlight ranges (byte offsets)
 * and an HTML rendering with <mark> (text escaped). */
static void put_snippet(json_t *hit, const char *marked)
{
    size_t n = strlen(marked);
    char *plain = sage_malloc(n + 1), *html = sage_malloc(6 * n + 64);
    json_t *ranges = json_array();
    size_t p = 0, h = 0, start = 0;
    if (!plain || !html || !ranges)
        goto out;
    for (const char *s = marked; *s; s++) {
        if (*s == MARK_OPEN[0]) {
            start = p;
            memcpy(html + h, "<mark>", 6), h += 6;
        } else if (*s == MARK_CLOSE[0]) {
            json_array_append_new(ranges, json_pack("[I, I]", (json_int_t)start, (json_int_t)p));
            memcpy(html + h, "</mark>", 7), h += 7;
        } else {
            plain[p++] = *s;
            const char *e = *s == '<' ? "&lt;" : *s == '>' ? "&gt;" : *s == '&' ? "&amp;"
                          : *s == '"' ? "&quot;" : *s == '\'' ? "&#39;" : NULL;
            if (e) {
                size_t el = strlen(e);
                memcpy(html + h, e, el), h += el;
            } else {
                html[h++] = *s;
            }
        }
    }
    plain[p] = html[h] = '\0';
    json_object_set_new(hit, "snippet", json_string(plain));
    json_object_set_new(hit, "snippet_html", json_string(html));
    json_object_set(hit, "highlights", ranges);
out:
    json_decref(ranges);
    sage_free(plain);
    sage_free(html);
}

static int parse_int(const char *s, long long *v)
{
    char *end;
    errno = 0;
    *v = strtoll(s, &end, 10);
    return errno || end == s || *end ? -1 : 0;
}

/* {"rank", "score"} of a leg, or null when the leg did not list the hit. */
static json_t *leg_json(const struct sage_leg *l)
{
    return l->rank ? json_pack("{s:i, s:f}", "rank", (int)l->rank, "score", l->score)
                   : json_null();
}

/* The query vector of a dense or hybrid search, from the request or the
 * embedder, into *vec (owned). 0; else *reason says why there is none. */
static int query_vector(struct app *app, const struct search_req *rq, size_t dim, float **vec,
                        enum qembed_reason *reason, struct sage_err *err)
{
    char *text = NULL;
    int rc;
    *vec = NULL;
    *reason = QE_OK;
    if (rq->vector) {
        if (!(*vec = sage_calloc(rq->dim, sizeof(float))))
            return sage_err_set(err, SAGE_ENOMEM, "out of memory");
        memcpy(*vec, rq->vector, rq->dim * sizeof(float));
        return 0;
    }
    if (sage_query_embed_text(rq->q, strlen(rq->q), &text, err) < 0 ||
        !(*vec = sage_calloc(dim ? dim : 1, sizeof(float)))) {
        sage_free(text);
        return sage_err_set(err, SAGE_ENOMEM, "out of memory");
    }
    rc = qembed_query(app->qe, text, strlen(text), *vec, dim, reason, err);
    sage_free(text);
    if (rc < 0) {
        sage_free(*vec);
        *vec = NULL;
        return rc;
    }
    return 0;
}

int answer_error(struct api_answer *a, int status, const char *code, const char *headers,
                 const char *fmt, ...)
{
    va_list ap;
    a->status = status;
    a->code = code;
    a->headers = headers;
    a->body = NULL;
    va_start(ap, fmt);
    vsnprintf(a->message, sizeof(a->message), fmt, ap);
    va_end(ap);
    return status;
}

/* Sends what api_*_json answered. */
static int send_answer(struct mg_connection *c, struct api_answer *a)
{
    if (a->status == 200)
        return send_json(c, 200, a->body);
    return send_error(c, a->status, a->code, a->headers, "%s", a->message);
}

int api_search_json(struct app *app, const struct search_req *rq, struct api_answer *a)
{
    struct sage_err err = { 0 };
    struct sage_hybrid_results res = { 0 };
    struct sage_tokenizer *tk = NULL;
    struct sage_embedding_info ei;
    json_t *hits = NULL, *degraded = NULL;
    float *vec = NULL;
    enum qembed_reason reason = QE_OK;
    int status;
    double t0 = sage_now_ms();
    struct snapshot *snap = registry_acquire(app->reg, rq->index);
    if (!snap)
        return rq->index ? answer_error(a, 404, "unknown_index", NULL, "no index named '%s'",
                                      rq->index)
                         : answer_error(a, 503, "not_ready", NULL, "no index is loaded");
    int has_vectors = sage_searcher_embedding(snap->searcher, &ei);
    /* the default: hybrid where it can be answered, else BM25 */
    enum sage_search_mode asked = rq->has_mode ? rq->mode
        : has_vectors && (rq->vector || qembed_enabled(app->qe)) ? SAGE_MODE_HYBRID
        : SAGE_MODE_BM25;
    enum sage_search_mode mode = asked;
    if (mode != SAGE_MODE_BM25 && !has_vectors) {
        status = answer_error(a, 400, "no_vectors", NULL, "index '%s' has no vectors (it was built "
                            "without --embed-url): use mode=bm25", snap->name);
        goto out;
    }
    if (mode != SAGE_MODE_BM25 && query_vector(app, rq, ei.dim, &vec, &reason, &err) < 0) {
        if (reason == QE_OK) {
            status = answer_error(a, 500, "internal", NULL, "%s", err.msg);
            goto out;
        }
        if (mode == SAGE_MODE_DENSE) {
            status = reason == QE_NO_EMBEDDER
                ? answer_error(a, 400, "no_embedder", NULL, "dense search needs a query vector: "
                             "POST one as 'vector', or start sage-searchd with --embed-url")
                : answer_error(a, 503, "embedder_unavailable", "Retry-After: 1\r\n",
                             "cannot embed the query (%s): %s", qembed_reason_name(reason),
                             err.msg);
            goto out;
        }
        /* hybrid without its dense leg: BM25 alone, and the answer says so */
        mode = SAGE_MODE_BM25;
        degraded = json_pack("{s:s, s:s}", "reason", qembed_reason_name(reason), "message",
                             err.msg);
        metrics_degraded(app->metrics, reason);
        if (reason != QE_NO_EMBEDDER)
            qembed_note_degraded(app->qe, reason, err.msg);
    }
    struct sage_search_opts o = { .k = (size_t)(rq->k + rq->offset), .library = rq->library,
                                  .path_prefix = rq->path_prefix };
    struct sage_hybrid_opts ho = {
        .mode = mode, .vector = vec, .dim = rq->vector ? rq->dim : ei.dim,
        .oversample = (unsigned)rq->oversample,
        .fusion = { rq->fusion, SAGE_FUSION_RRF_K, rq->w_bm25, rq->w_dense },
        .method = rq->dense, .ef = (unsigned)rq->ef,
    };
    if (mode != SAGE_MODE_BM25 && rq->dense == SAGE_DENSE_HNSW &&
        !sage_searcher_has_hnsw(snap->searcher)) {
        status = answer_error(a, 400, "no_hnsw", NULL, "index '%s' has no HNSW graph (it was "
                              "built without --hnsw): use dense=exact or auto", snap->name);
        goto out;
    }
    if (sage_searcher_tokenizer(snap->searcher, &tk, &err) < 0 ||
        sage_search_hybrid(snap->searcher, tk, rq->q, strlen(rq->q), &o, &ho, &res, &err) < 0) {
        status = err.code == SAGE_EINVAL || err.code == SAGE_ELIMIT
                 ? answer_error(a, 400, rq->vector ? "bad_vector" : "bad_query", NULL, "%s",
                              err.msg)
                 : err.code == SAGE_ENOTFOUND
                 ? answer_error(a, 400, "no_vectors", NULL, "%s", err.msg)
                 : answer_error(a, 500, "internal", NULL, "search failed: %s", err.msg);
        goto out;
    }
    hits = json_array();
    for (size_t i = (size_t)rq->offset; hits && i < res.n_hits; i++) {
        const struct sage_fused_hit *fh = &res.hits[i];
        uint32_t d;
        json_t *doc = NULL, *text = NULL, *hit;
        char *snip = NULL;
        if (sage_searcher_hit_doc(snap->searcher, fh->chunk, &d, &err) < 0 ||
            sage_searcher_doc(snap->searcher, d, &doc, &err) < 0 ||
            sage_searcher_hit_info(snap->searcher, fh->chunk, rq->snippets, &text, &err) < 0) {
            json_decref(doc);
            status = answer_error(a, 500, "internal", NULL, "cannot read hit: %s", err.msg);
            goto out;
        }
        hit = json_pack("{s:f, s:I, s:O?, s:O?, s:O?, s:O?, s:O?}", "score", fh->score,
                        "doc", (json_int_t)d, "library", json_object_get(doc, "library"),
                        "path", json_object_get(doc, "path"), "title", json_object_get(doc, "title"),
                        "heading", json_object_get(text, "heading"),
                        "page", json_object_get(text, "page"));
        if (hit && sage_searcher_has_index(snap->searcher))
            json_object_set_new(hit, "chunk", json_integer((json_int_t)fh->chunk));
        if (hit && asked != SAGE_MODE_BM25) {
            json_object_set_new(hit, "bm25", leg_json(&fh->bm25));
            json_object_set_new(hit, "dense", leg_json(&fh->dense));
        }
        if (hit && rq->snippets) {
            json_t *t = json_object_get(text, "text");
            if (sage_snippet(tk, rq->q, json_string_value(t), json_string_length(t), 240,
                             MARK_OPEN, MARK_CLOSE, &snip, &err) == 0)
                put_snippet(hit, snip);
            sage_free(snip);
        }
        json_decref(doc);
        json_decref(text);
        json_array_append_new(hits, hit);
    }
    json_t *body = json_pack("{s:s, s:I, s:s, s:s, s:I, s:b, s:I, s:I, s:f, s:O}",
        "index", snap->name, "generation", (json_int_t)snap->generation, "query", rq->q,
        "mode", sage_search_mode_name(asked), "total", (json_int_t)res.total,
        "total_exact", res.total_exact, "k", (json_int_t)rq->k,
        "offset", (json_int_t)rq->offset, "took_ms", sage_now_ms() - t0, "hits", hits);
    if (body && asked == SAGE_MODE_HYBRID)
        json_object_set_new(body, "fusion", rq->fusion == SAGE_FUSION_RRF
            ? json_pack("{s:s, s:f, s:f, s:f}", "method", "rrf", "k", SAGE_FUSION_RRF_K,
                        "w_bm25", rq->w_bm25, "w_dense", rq->w_dense)
            : json_pack("{s:s, s:f, s:f}", "method", "convex", "w_bm25", rq->w_bm25,
                        "w_dense", rq->w_dense));
    if (body && degraded)
        json_object_set(body, "degraded", degraded);
    if (body && mode != SAGE_MODE_BM25)
        json_object_set_new(body, "dense_method", json_string(sage_dense_method_name(res.dense_used)));
    a->status = 200;
    a->body = body;
    status = body ? 200 : answer_error(a, 500, "internal", NULL, "out of memory");
out:
    json_decref(hits);
    json_decref(degraded);
    sage_hybrid_results_release(&res);
    sage_tokenizer_free(tk);
    sage_free(vec);
    snapshot_release(snap);
    return status;
}

/* A query-string parameter into buf; NULL when absent. */
static const char *param(const char *qs, const char *name, char *buf, size_t len)
{
    if (!qs)
        return NULL;
    int n = mg_get_var(qs, strlen(qs), name, buf, len);
    return n >= 0 ? buf : NULL;
}

int api_search(struct mg_connection *c, void *data)
{
    struct app *app = data;
    struct search_req rq;
    struct request_error e;
    struct request_limits lim = { app->cfg.max_query, app->cfg.max_k };
    int rc, status;
    if (method_is(c, "GET") || method_is(c, "HEAD")) {
        rc = request_from_query(mg_get_request_info(c)->query_string, &lim, &rq, &e);
    } else if (method_is(c, "POST")) {
        char *body = NULL;
        size_t len = 0;
        rc = read_body(c, app->cfg.max_body, &body, &len);
        if (rc == -SAGE_ELIMIT)
            return send_error(c, 413, "body_too_large", NULL, "the body is larger than %ld bytes",
                              app->cfg.max_body);
        if (rc < 0)
            return send_error(c, 400, "bad_request", NULL, "cannot read the body");
        rc = request_from_json(body, len, &lim, &rq, &e);
        sage_free(body);
    } else {
        return send_error(c, 405, "method_not_allowed", "Allow: GET, POST\r\n", "use GET or POST");
    }
    struct api_answer a;
    if (rc < 0)
        status = send_error(c, e.status, e.code, NULL, "%s", e.message);
    else {
        api_search_json(app, &rq, &a);
        status = send_answer(c, &a);
    }
    request_release(&rq);
    return status;
}

static json_t *iso_time(const struct timespec *ts)
{
    struct tm tm;
    char buf[40];
    gmtime_r(&ts->tv_sec, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(buf);
}

int api_indexes(struct mg_connection *c, void *data)
{
    struct app *app = data;
    size_t n = 0;
    if (!method_is(c, "GET") && !method_is(c, "HEAD"))
        return send_error(c, 405, "method_not_allowed", "Allow: GET\r\n", "use GET");
    struct snapshot **all = registry_acquire_all(app->reg, &n);
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) {
        const struct sage_reader_info *in = sage_reader_info(all[i]->reader);
        json_array_append_new(list, json_pack(
            "{s:s, s:s, s:s?, s:I, s:I, s:o, s:s, s:f, s:{s:I, s:I}, s:O, s:{s:i, s:i}}",
            "name", all[i]->name, "file", all[i]->file,
            "sha256", all[i]->sha256[0] ? all[i]->sha256 : NULL,
            "size", (json_int_t)all[i]->size, "generation", (json_int_t)all[i]->generation,
            "loaded_at", iso_time(&all[i]->loaded_at),
            "verified", all[i]->stamped ? "stamp" : "full", "load_ms", all[i]->load_ms,
            "counts", "documents", (json_int_t)in->n_docs, "chunks", (json_int_t)in->n_chunks,
            "build", all[i]->build, "format", "major", in->major, "minor", in->minor));
    }
    registry_release_all(all, n);
    return send_json(c, 200, json_pack("{s:o}", "indexes", list));
}

int api_document_json(struct app *app, const char *index, long long id, struct api_answer *a)
{
    struct sage_err err = { 0 };
    struct snapshot *snap = registry_acquire(app->reg, index);
    if (!snap)
        return index ? answer_error(a, 404, "unknown_index", NULL, "no index named '%s'", index)
                     : answer_error(a, 503, "not_ready", NULL, "no index is loaded");
    json_t *doc = NULL;
    int status;
    if (id < 0 || (uint64_t)id >= sage_searcher_n_docs(snap->searcher)) {
        status = answer_error(a, 404, "unknown_document", NULL, "no document %lld", id);
        goto out;
    }
    if (sage_searcher_doc(snap->searcher, (uint32_t)id, &doc, &err) < 0) {
        status = answer_error(a, 500, "internal", NULL, "%s", err.msg);
        goto out;
    }
    json_t *chunks = json_array();
    if (sage_searcher_has_index(snap->searcher)) {
        json_int_t first = json_integer_value(json_object_get(doc, "first_chunk"));
        json_int_t nc = json_integer_value(json_object_get(doc, "n_chunks"));
        for (json_int_t i = first; i < first + nc && i >= 0; i++) {
            json_t *t = NULL;
            if (sage_searcher_hit_text(snap->searcher, (uint64_t)i, &t, &err) < 0)
                break;
            json_object_set_new(t, "chunk", json_integer(i));
            json_object_del(t, "doc");
            json_array_append_new(chunks, t);
        }
    } else {
        json_t *t = NULL;
        if (sage_searcher_hit_text(snap->searcher, (uint64_t)id, &t, &err) == 0)
            json_array_append_new(chunks, t);
    }
    json_object_set_new(doc, "chunks", chunks);
    json_object_set_new(doc, "index", json_string(snap->name));
    json_object_set_new(doc, "generation", json_integer((json_int_t)snap->generation));
    a->status = status = 200;
    a->body = doc;
    doc = NULL;
out:
    json_decref(doc);
    snapshot_release(snap);
    return status;
}

int api_documents(struct mg_connection *c, void *data)
{
    struct app *app = data;
    const struct mg_request_info *ri = mg_get_request_info(c);
    struct api_answer a;
    long long id;
    char idx[256];
    if (!method_is(c, "GET") && !method_is(c, "HEAD"))
        return send_error(c, 405, "method_not_allowed", "Allow: GET\r\n", "use GET");
    if (parse_int(ri->local_uri + strlen("/v1/documents/"), &id) < 0 || id < 0)
        return send_error(c, 400, "bad_request", NULL, "a document id is a number");
    api_document_json(app, param(ri->query_string, "index", idx, sizeof(idx)), id, &a);
    return send_answer(c, &a);
}

int api_health(struct mg_connection *c, void *data)
{
    (void)data;
    return send_json(c, 200, json_pack("{s:s}", "status", "ok"));
}

int api_ready(struct mg_connection *c, void *data)
{
    struct app *app = data;
    int ready = registry_ready(app->reg);
    return send_json(c, ready ? 200 : 503, json_pack("{s:b}", "ready", ready));
}

int api_metrics(struct mg_connection *c, void *data)
{
    struct app *app = data;
    char *text = metrics_render(app->metrics, app->reg, app->qe);
    if (!text)
        return send_error(c, 500, "internal", NULL, "out of memory");
    mg_printf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
                 "Content-Length: %zu\r\nCache-Control: no-store\r\n\r\n", strlen(text));
    mg_write(c, text, strlen(text));
    sage_free(text);
    return 200;
}

int api_reload(struct mg_connection *c, void *data)
{
    struct app *app = data;
    if (!method_is(c, "POST"))
        return send_error(c, 405, "method_not_allowed", "Allow: POST\r\n", "use POST");
    int changes = registry_scan(app->reg);
    return send_json(c, 200, json_pack("{s:i, s:b}", "changes", changes, "ready",
                                       registry_ready(app->reg)));
}
