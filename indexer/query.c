/* sage-indexer query: searches an index file offline (format/search.h, the
 * same code searchd uses) and prints the hits with their library, path,
 * heading path, page and a snippet (text or JSON), or a TREC run for a file
 * of queries. Dense and hybrid queries are embedded by the server of
 * --embed-url with the index's model and query prefix, as searchd does
 * (without its cache and breaker: here a failure is an error). */
#include <jansson.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "cli.h"
#include "embed.h"
#include "log.h"
#include "query.h"
#include "search.h"
#include "clock.h"

struct q {
    struct sage_reader *r;
    struct sage_searcher *s;
    struct sage_tokenizer *tk;
    struct sage_search_opts o;
    const char *library;            /* --library, added as a library: filter */
    struct sage_hybrid_opts h;      /* mode, fusion; h.vector: vec */
    struct sage_embedding_info ei;  /* the index's, when it has vectors */
    struct embedder *emb;           /* dense and hybrid: the query embedder */
    float *vec;                     /* EMBED_MAX_DIM floats */
};

/* The query words of the command line, joined, with --library as a filter. */
static char *join_args(const char *library, char **a, int n)
{
    size_t len = 1 + (library ? strlen(library) + 12 : 0);
    for (int i = 0; i < n; i++)
        len += strlen(a[i]) + 1;
    char *q = sage_malloc(len), *p = q;
    if (!q)
        return NULL;
    *p = '\0';
    if (library)
        p += snprintf(p, len, "library:%s ", library);
    for (int i = 0; i < n; i++)
        p += snprintf(p, len - (size_t)(p - q), "%s%s", i ? " " : "", a[i]);
    return q;
}

static int search(struct q *q, const char *text, size_t k, struct sage_hybrid_results *res,
                  struct sage_err *err)
{
    struct sage_search_opts o = q->o;
    char *et = NULL;
    int rc = 0;
    memset(res, 0, sizeof(*res));
    o.k = k;
    if (q->h.mode != SAGE_MODE_BM25) {
        if ((rc = sage_query_embed_text(text, strlen(text), &et, err)) < 0 ||
            (rc = embed_query(q->emb, et, strlen(et), q->vec, EMBED_MAX_DIM, err)) < 0)
            goto out;
        if ((unsigned)rc != q->ei.dim) {
            rc = sage_err_set(err, SAGE_EINVAL, "the embedding server answers with dimension %d, "
                              "the index's vectors have %u", rc, q->ei.dim);
            goto out;
        }
        q->h.vector = q->vec;
        q->h.dim = q->ei.dim;
    }
    rc = sage_search_hybrid(q->s, q->tk, text, strlen(text), &o, &q->h, res, err);
out:
    sage_free(et);
    return rc < 0 ? rc : 0;
}

static json_t *leg_json(const struct sage_leg *l)
{
    return l->rank ? json_pack("{s:i, s:f}", "rank", (int)l->rank, "score", l->score)
                   : json_null();
}

/* A hit as JSON: the document's record plus score, chunk, heading, page,
 * how its text was obtained and a snippet marked with open/close. */
static json_t *hit_json(struct q *q, const char *query, const struct sage_fused_hit *h,
                        const char *open, const char *close, struct sage_err *err)
{
    json_t *doc = NULL, *text = NULL;
    char *snip = NULL;
    uint32_t d;
    if (sage_searcher_hit_doc(q->s, h->chunk, &d, err) < 0 ||
        sage_searcher_hit_text(q->s, h->chunk, &text, err) < 0 ||
        sage_searcher_doc(q->s, d, &doc, err) < 0)
        goto fail;
    json_t *t = json_object_get(text, "text");
    if (sage_snippet(q->tk, query, json_string_value(t), json_string_length(t), 200, open, close,
                     &snip, err) < 0)
        goto fail;
    json_object_set_new(doc, "score", json_real(h->score));
    json_object_set_new(doc, "chunk", sage_searcher_has_index(q->s)
                                      ? json_integer((json_int_t)h->chunk) : json_null());
    if (q->h.mode != SAGE_MODE_BM25) {
        json_object_set_new(doc, "bm25", leg_json(&h->bm25));
        json_object_set_new(doc, "dense", leg_json(&h->dense));
    }
    json_object_set(doc, "heading", json_object_get(text, "heading"));
    json_object_set(doc, "page", json_object_get(text, "page"));
    json_t *src = json_object_get(text, "source");
    json_object_set_new(doc, "source", src ? json_incref(src) : json_string("text"));
    json_object_set_new(doc, "snippet", json_string(snip));
    json_decref(text);
    sage_free(snip);
    return doc;
fail:
    json_decref(text);
    json_decref(doc);
    return NULL;
}

/* --trec: one run line per (query, document), documents ranked by their
 * best chunk. */
static int run_trec(struct q *q, const char *path, size_t k, struct sage_err *err)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0, n_docs = (size_t)sage_searcher_n_docs(q->s);
    ssize_t n;
    int rc = 0;
    uint8_t *seen = sage_calloc(n_docs ? n_docs : 1, 1);
    if (!f || !seen) {
        sage_free(seen);
        if (f)
            fclose(f);
        return f ? sage_err_set(err, SAGE_ENOMEM, "out of memory")
                 : sage_err_sys(err, SAGE_EIO, "cannot open '%s'", path);
    }
    while (rc == 0 && (n = getline(&line, &cap, f)) > 0) {
        json_error_t je;
        json_t *o = json_loadb(line, (size_t)n, 0, &je);
        json_t *id = json_object_get(o, "id");
        const char *text = json_string_value(json_object_get(o, "text"));
        char idbuf[32];
        const char *qid = json_string_value(id);
        if (json_is_integer(id)) {
            snprintf(idbuf, sizeof(idbuf), "%" JSON_INTEGER_FORMAT, json_integer_value(id));
            qid = idbuf;
        }
        if (!qid || !text) {
            json_decref(o);
            if (strspn(line, " \t\r\n") == (size_t)n)
                continue;
            rc = sage_err_set(err, SAGE_EINVAL, "'%s': each line needs \"id\" and \"text\"", path);
            break;
        }
        struct sage_hybrid_results res;
        /* chunks of one document collapse: ask for more chunks than documents */
        if ((rc = search(q, text, k * 3, &res, err)) == 0) {
            size_t rank = 0;
            memset(seen, 0, n_docs);
            for (size_t i = 0; rc == 0 && i < res.n_hits && rank < k; i++) {
                uint32_t d;
                json_t *doc = NULL;
                if ((rc = sage_searcher_hit_doc(q->s, res.hits[i].chunk, &d, err)) < 0 || seen[d])
                    continue;
                seen[d] = 1;
                if ((rc = sage_searcher_doc(q->s, d, &doc, err)) < 0)
                    continue;
                const char *ext = json_string_value(json_object_get(doc, "ext_id"));
                const char *docid = ext ? ext : json_string_value(json_object_get(doc, "path"));
                printf("%s Q0 %s %zu %.9f sage\n", qid, docid ? docid : "?", ++rank,
                       res.hits[i].score);
                json_decref(doc);
            }
            sage_hybrid_results_release(&res);
        }
        json_decref(o);
    }
    free(line);
    fclose(f);
    sage_free(seen);
    return rc;
}

static void print_text(json_t *hits, const struct sage_hybrid_results *res, int mode,
                       const char *query, double took)
{
    size_t i;
    json_t *h;
    if (mode == SAGE_MODE_HYBRID)     /* total counts the BM25 leg's matches */
        printf("%zu hit%s for \"%s\", %s%llu chunk%s matching its words (%.1f ms)\n",
               res->n_hits, res->n_hits == 1 ? "" : "s", query, res->total_exact ? "" : "at least ",
               (unsigned long long)res->total, res->total == 1 ? "" : "s", took);
    else
        printf("%s%llu chunk%s match \"%s\" (%.1f ms)\n", res->total_exact ? "" : "at least ",
               (unsigned long long)res->total, res->total == 1 ? "" : "s", query, took);
    json_array_foreach(hits, i, h) {
        const char *heading = json_string_value(json_object_get(h, "heading"));
        json_int_t page = json_integer_value(json_object_get(h, "page"));
        printf("\n%2zu. %.3f  %s:%s", i + 1, json_real_value(json_object_get(h, "score")),
               json_string_value(json_object_get(h, "library")),
               json_string_value(json_object_get(h, "path")));
        if (page)
            printf(" (page %" JSON_INTEGER_FORMAT ")", page);
        printf("\n    %s\n    %s\n", heading ? heading : json_string_value(json_object_get(h, "title")),
               json_string_value(json_object_get(h, "snippet")));
        json_t *b = json_object_get(h, "bm25"), *d = json_object_get(h, "dense");
        if (b || d) {
            printf("    bm25: ");
            if (json_is_object(b))
                printf("#%lld %.3f", (long long)json_integer_value(json_object_get(b, "rank")),
                       json_real_value(json_object_get(b, "score")));
            else
                printf("-");
            printf("  dense: ");
            if (json_is_object(d))
                printf("#%lld %.3f\n", (long long)json_integer_value(json_object_get(d, "rank")),
                       json_real_value(json_object_get(d, "score")));
            else
                printf("-\n");
        }
    }
}

/* --mode, --fusion, the weights and the embedder for a dense or hybrid
 * query. 0; 1 (err set) or 2 (usage, printed) to stop: the exit status. */
static int setup_dense(struct q *q, struct cli *c, struct sage_err *err)
{
    const char *mode = c->v[OPT_MODE].str, *url = c->v[OPT_EMBED_URL].str;
    const char *model = c->v[OPT_EMBED_MODEL].str;
    int has_vectors = sage_searcher_embedding(q->s, &q->ei);
    char *e1, *e2;
    q->h.fusion.kind = strcmp(c->v[OPT_FUSION].str, "convex") == 0 ? SAGE_FUSION_CONVEX
                                                                   : SAGE_FUSION_RRF;
    q->h.fusion.w_bm25 = strtod(c->v[OPT_W_BM25].str, &e1);
    q->h.fusion.w_dense = strtod(c->v[OPT_W_DENSE].str, &e2);
    q->h.oversample = (unsigned)c->v[OPT_OVERSAMPLE].num;
    q->h.ef = (unsigned)c->v[OPT_EF].num;
    sage_dense_method_parse(c->v[OPT_DENSE_METHOD].str, &q->h.method);
    if (*e1 || *e2 || !(q->h.fusion.w_bm25 >= 0 && q->h.fusion.w_bm25 <= 1000) ||
        !(q->h.fusion.w_dense >= 0 && q->h.fusion.w_dense <= 1000) ||
        q->h.fusion.w_bm25 + q->h.fusion.w_dense <= 0) {
        fprintf(stderr, "sage-indexer query: --w-bm25 and --w-dense must be in [0, 1000], not "
                        "both 0\n");
        return 2;
    }
    if (strcmp(mode, "auto") == 0)
        q->h.mode = has_vectors && url ? SAGE_MODE_HYBRID : SAGE_MODE_BM25;
    else
        sage_search_mode_parse(mode, &q->h.mode);
    if (q->h.mode == SAGE_MODE_BM25)
        return 0;
    if (!has_vectors) {
        sage_err_set(err, SAGE_ENOTFOUND, "--mode=%s needs an index built with embeddings; "
                     "'%s' has no vectors", mode, c->args[0]);
        return 1;
    }
    if (!url) {
        fprintf(stderr, "sage-indexer query: --mode=%s needs --embed-url\n", mode);
        return 2;
    }
    if (model && strcmp(model, q->ei.model) != 0) {
        sage_err_set(err, SAGE_EINVAL, "the index was embedded with model '%s', not '%s' "
                     "(--embed-model)", q->ei.model, model);
        return 1;
    }
    struct embed_config ec;
    embed_config_init(&ec);
    ec.url = url;
    ec.model = q->ei.model;
    ec.api_key = c->v[OPT_EMBED_KEY].str;
    ec.api_key_file = c->v[OPT_EMBED_KEY_FILE].str;
    ec.query_prefix = q->ei.query_prefix;
    ec.max_inputs = 1;
    ec.concurrency = 1;
    ec.retry.timeout_ms = (unsigned)c->v[OPT_EMBED_TIMEOUT].num;
    if (!(q->vec = sage_calloc(EMBED_MAX_DIM, sizeof(float)))) {
        sage_err_set(err, SAGE_ENOMEM, "out of memory");
        return 1;
    }
    return embed_new(&ec, &q->emb, err) < 0 ? 1 : 0;
}

int cmd_query(struct cli *c)
{
    struct sage_err err = { 0 };
    struct q q = { 0 };
    struct sage_hybrid_results res = { 0 };
    json_t *out = NULL, *hits = json_array();
    char *text = NULL;
    int status = 1, json = (int)c->v[OPT_JSON].num;
    const char *trec = c->v[OPT_TREC].str;
    int tty = !json && isatty(STDOUT_FILENO);
    size_t k = (size_t)c->v[OPT_K].num;
    char *e1, *e2;
    if (c->n_args < (trec ? 1 : 2) || (trec && c->n_args != 1)) {
        fprintf(stderr, "usage: sage-indexer query [-k N] [--library NAME] [--json] "
                        "[--mode M --embed-url URL] FILE QUERY...\n"
                        "       sage-indexer query [-k N] [--mode M --embed-url URL] "
                        "--trec QUERIES.jsonl FILE\n");
        goto usage;
    }
    q.o.k1 = strtod(c->v[OPT_K1].str, &e1);
    q.o.b = strtod(c->v[OPT_B].str, &e2);
    q.o.exhaustive = (int)c->v[OPT_SCAN].num;
    if (*e1 || *e2 || q.o.k1 <= 0 || q.o.k1 > 100 || q.o.b <= 0 || q.o.b > 1) {
        fprintf(stderr, "sage-indexer query: --bm25-k1 must be in (0, 100] and --bm25-b in (0, 1]\n");
        goto usage;
    }
    double t0 = sage_now_ms();
    if (sage_reader_open(c->args[0], 0, &q.r, &err) < 0 ||
        sage_searcher_open(q.r, &q.s, &err) < 0 || sage_searcher_tokenizer(q.s, &q.tk, &err) < 0)
        goto fail;
    if ((status = setup_dense(&q, c, &err)) != 0) {
        if (status == 1)
            goto fail;
        goto out;
    }
    status = 1;
    if (trec) {
        if (run_trec(&q, trec, k, &err) < 0)
            goto fail;
        status = 0;
        goto out;
    }
    if (!(text = join_args(c->v[OPT_FILTER_LIBRARY].str, c->args + 1, c->n_args - 1)) || !hits) {
        sage_log(SAGE_LOG_ERROR, "out of memory");
        goto out;
    }
    if (search(&q, text, k, &res, &err) < 0)
        goto fail;
    for (size_t i = 0; i < res.n_hits; i++) {
        json_t *h = hit_json(&q, text, &res.hits[i], tty ? "\033[1m" : "[", tty ? "\033[0m" : "]",
                             &err);
        if (!h)
            goto fail;
        json_array_append_new(hits, h);
    }
    double took = sage_now_ms() - t0;
    if (json) {
        out = json_pack("{s:s, s:s, s:I, s:b, s:f, s:O}", "query", text,
                        "mode", sage_search_mode_name(q.h.mode), "total", (json_int_t)res.total,
                        "total_exact", res.total_exact, "took_ms", took, "results", hits);
        char *s = out ? json_dumps(out, JSON_INDENT(2)) : NULL;
        if (s)
            puts(s);
        free(s);
    } else {
        print_text(hits, &res, q.h.mode, text, took);
    }
    status = 0;
    goto out;
usage:
    status = 2;
    goto out;
fail:
    status = err.code == SAGE_EINVAL || err.code == SAGE_ELIMIT ? 2 : 1;
    sage_log(SAGE_LOG_ERROR, "query on '%s' failed: %s", c->args[0], sage_err_msg(&err, err.code));
out:
    json_decref(out);
    json_decref(hits);
    sage_hybrid_results_release(&res);
    embed_free(q.emb);
    sage_free(q.vec);
    sage_tokenizer_free(q.tk);
    sage_searcher_free(q.s);
    sage_reader_close(q.r);
    sage_free(text);
    return status;
}
