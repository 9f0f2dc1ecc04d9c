/* sage-indexer query: searches an index file offline and prints the hits
 * with their library, path, title, heading path, page and a snippet (text or
 * JSON), or a TREC run for a file of queries. Files of format 1.1 are searched
 * through the inverted index (block-max WAND); 1.0 files by scanning. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "chunkstore.h"
#include "cli.h"
#include "index.h"
#include "le.h"
#include "log.h"
#include "mpjson.h"
#include "rectab.h"
#include "scan.h"

struct q {
    struct sage_reader *r;
    struct sage_tokenizer *tk;
    struct sage_index ix;
    int has_index;
    struct sage_chunkstore cs;
    const uint8_t *chunk_map;       /* u64 n, then u32 doc, u32 ordinal */
    uint64_t n_chunk_map;
    struct sage_bytes docs_b, text_b;
    struct sage_rectab docs, text;  /* text: 1.0 files only */
    uint8_t *lib_ok;                /* per document, for --library */
    int scan;
    double k1, b;
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static char *join_args(char **a, int n)
{
    size_t len = 1;
    for (int i = 0; i < n; i++)
        len += strlen(a[i]) + 1;
    char *q = sage_malloc(len), *p = q;
    if (!q)
        return NULL;
    for (int i = 0; i < n; i++)
        p += snprintf(p, len - (size_t)(p - q), "%s%s", i ? " " : "", a[i]);
    *p = '\0';
    return q;
}

static int open_table(const struct sage_reader *r, uint32_t kind, struct sage_bytes *b,
                      struct sage_rectab *t, struct sage_err *err)
{
    const struct sage_section *s = sage_reader_find(r, kind);
    if (!s)
        return sage_err_set(err, SAGE_ECORRUPT, "index has no %s section",
                            sage_section_kind_name(kind));
    int rc = sage_reader_load(r, s, 0, b, err);
    return rc < 0 ? rc : sage_rectab_open(t, b->data, b->len, err);
}

static json_t *doc_record(const struct q *q, uint64_t doc, struct sage_err *err)
{
    const uint8_t *p;
    size_t n;
    json_t *j = NULL;
    if (sage_rectab_get(&q->docs, doc, &p, &n, err) == 0)
        sage_mpjson_decode(p, n, &j, err);
    return j;
}

static int chunk_doc(const struct q *q, uint32_t chunk, uint32_t *doc)
{
    if (chunk >= q->n_chunk_map)
        return -1;
    *doc = sage_le32(q->chunk_map + 8 + 8 * (size_t)chunk);
    return *doc < q->docs.n ? 0 : -1;
}

static int library_filter(void *ctx, uint32_t chunk)
{
    const struct q *q = ctx;
    uint32_t doc;
    return chunk_doc(q, chunk, &doc) == 0 && q->lib_ok[doc];
}

/* The tokenizer the index was built with, from its build record. */
static int open_tokenizer(struct q *q, struct sage_err *err)
{
    const struct sage_section *s = sage_reader_find(q->r, SAGE_SECTION_BUILD);
    struct sage_bytes b;
    json_t *rec = NULL;
    int rc;
    if (!s)
        return sage_err_set(err, SAGE_ECORRUPT, "index has no build record");
    if ((rc = sage_reader_load(q->r, s, 16u << 20, &b, err)) < 0)
        return rc;
    rc = sage_mpjson_decode(b.data, b.len, &rec, err);
    sage_bytes_release(&b);
    if (rc < 0)
        return rc;
    json_t *tok = json_object_get(rec, "tokenizer");
    struct sage_tokenizer_opts o = { "english", NULL, 0 };     /* format 1.0 */
    if (tok) {
        o.stemmer = json_string_value(json_object_get(tok, "stemmer"));
        const char *stop = json_string_value(json_object_get(tok, "stopwords"));
        if (stop && strcmp(stop, "english") == 0) {
            o.stopwords = sage_stopwords_english;
            o.n_stopwords = sage_n_stopwords_english;
        }
    }
    rc = sage_tokenizer_new(&o, &q->tk, err);
    json_decref(rec);
    return rc;
}

static int q_open(struct q *q, const char *path, const char *library, struct sage_err *err)
{
    int rc;
    if ((rc = sage_reader_open(path, 0, &q->r, err)) < 0 || (rc = open_tokenizer(q, err)) < 0 ||
        (rc = open_table(q->r, SAGE_SECTION_DOCS, &q->docs_b, &q->docs, err)) < 0)
        return rc;
    rc = sage_index_open(&q->ix, q->r, err);
    if (rc == -SAGE_ENOTFOUND) {
        if (library)
            return sage_err_set(err, SAGE_EINVAL, "--library needs an index of format 1.1");
        return open_table(q->r, SAGE_SECTION_TEXT, &q->text_b, &q->text, err);
    }
    if (rc < 0 || (rc = sage_chunkstore_open(&q->cs, q->r, err)) < 0)
        return rc;
    q->has_index = 1;
    const struct sage_section *cm = sage_reader_find(q->r, SAGE_SECTION_CHUNKS);
    if (!cm || cm->codec != SAGE_CODEC_RAW || cm->len < 8 ||
        (cm->len - 8) / 8 < sage_le64(cm->data) || sage_le64(cm->data) != q->ix.n_chunks)
        return sage_err_set(err, SAGE_ECORRUPT, "chunk table is missing or malformed");
    q->chunk_map = cm->data;
    q->n_chunk_map = sage_le64(cm->data);
    if (library) {
        if (!(q->lib_ok = sage_calloc(q->docs.n ? q->docs.n : 1, 1)))
            return sage_err_set(err, SAGE_ENOMEM, "cannot allocate library filter");
        for (uint64_t d = 0; d < q->docs.n; d++) {
            json_t *j = doc_record(q, d, err);
            if (!j)
                return -SAGE_ECORRUPT;
            const char *l = json_string_value(json_object_get(j, "library"));
            q->lib_ok[d] = l && strcmp(l, library) == 0;
            json_decref(j);
        }
    }
    return 0;
}

static void q_close(struct q *q)
{
    sage_bytes_release(&q->docs_b);
    sage_bytes_release(&q->text_b);
    sage_free(q->lib_ok);
    sage_tokenizer_free(q->tk);
    sage_reader_close(q->r);
}

static int q_search(struct q *q, const char *text, size_t k, struct sage_results *res,
                    struct sage_err *err)
{
    if (!q->has_index)
        return sage_scan_search(q->r, q->tk, text, k, res, err);
    struct sage_bm25_opts o = { .k = k, .exhaustive = q->scan, .k1 = q->k1, .b = q->b,
                                .filter = q->lib_ok ? library_filter : NULL, .filter_ctx = q };
    return sage_bm25_search(&q->ix, q->tk, text, &o, res, err);
}

/* The JSON of hit i: the document's fields plus score, heading, page and a
 * snippet marked with open/close. */
static json_t *hit_json(struct q *q, const char *query, const struct sage_hit *h,
                        const char *open, const char *close, struct sage_err *err)
{
    json_t *doc = NULL, *chunk = NULL;
    char *snip = NULL;
    const char *text;
    size_t len;
    uint32_t d = (uint32_t)h->doc;
    if (q->has_index) {
        if (chunk_doc(q, (uint32_t)h->doc, &d) < 0) {
            sage_err_set(err, SAGE_ECORRUPT, "chunk %llu has no document",
                         (unsigned long long)h->doc);
            return NULL;
        }
        if (sage_chunkstore_get(&q->cs, h->doc, &chunk, err) < 0)
            return NULL;
        text = json_string_value(json_object_get(chunk, "text"));
        len = json_string_length(json_object_get(chunk, "text"));
    } else {
        const uint8_t *p;
        if (sage_rectab_get(&q->text, h->doc, &p, &len, err) < 0)
            return NULL;
        text = (const char *)p;
    }
    if (!text || !(doc = doc_record(q, d, err)) ||
        sage_snippet(q->tk, query, text, len, 200, open, close, &snip, err) < 0) {
        if (!text)
            sage_err_set(err, SAGE_ECORRUPT, "chunk %llu has no text", (unsigned long long)h->doc);
        json_decref(chunk);
        json_decref(doc);
        return NULL;
    }
    json_object_set_new(doc, "score", json_real(h->score));
    json_object_set_new(doc, "chunk", json_integer(q->has_index ? (json_int_t)h->doc : -1));
    json_object_set(doc, "heading", chunk ? json_object_get(chunk, "heading") : NULL);
    json_object_set(doc, "page", chunk ? json_object_get(chunk, "page") : NULL);
    if (!json_object_get(doc, "heading"))
        json_object_set_new(doc, "heading", json_null());
    if (!json_object_get(doc, "page"))
        json_object_set_new(doc, "page", json_integer(0));
    json_object_set_new(doc, "snippet", json_string(snip));
    json_decref(chunk);
    sage_free(snip);
    return doc;
}

/* --trec: one run line per (query, document), documents ranked by their best
 * chunk. */
static int run_trec(struct q *q, const char *path, size_t k, struct sage_err *err)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    uint8_t *seen = sage_calloc(q->docs.n ? q->docs.n : 1, 1);
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
        struct sage_results res;
        /* chunks of one document collapse: ask for more chunks than documents */
        if ((rc = q_search(q, text, k * 3, &res, err)) == 0) {
            size_t rank = 0;
            memset(seen, 0, q->docs.n);
            for (size_t i = 0; i < res.n_hits && rank < k; i++) {
                uint32_t d = (uint32_t)res.hits[i].doc;
                if (q->has_index && chunk_doc(q, d, &d) < 0)
                    continue;
                if (seen[d])
                    continue;
                seen[d] = 1;
                json_t *doc = doc_record(q, d, err);
                const char *ext = json_string_value(json_object_get(doc, "ext_id"));
                const char *docid = ext ? ext : json_string_value(json_object_get(doc, "path"));
                printf("%s Q0 %s %zu %.9f sage\n", qid, docid ? docid : "?", ++rank,
                       res.hits[i].score);
                json_decref(doc);
            }
            sage_results_release(&res);
        }
        json_decref(o);
    }
    free(line);
    fclose(f);
    sage_free(seen);
    return rc;
}

int cmd_query(struct cli *c)
{
    struct sage_err err = { 0 };
    struct q q = { .scan = (int)c->v[OPT_SCAN].num };
    struct sage_results res = { 0 };
    json_t *out = NULL, *hits = json_array();
    char *text = NULL;
    int status = 1, json = (int)c->v[OPT_JSON].num;
    const char *trec = c->v[OPT_TREC].str;
    int tty = !json && isatty(STDOUT_FILENO);
    size_t k = (size_t)c->v[OPT_K].num;
    if (c->n_args < (trec ? 1 : 2) || (trec && c->n_args != 1)) {
        fprintf(stderr, "usage: sage-indexer query [-k N] [--library NAME] [--json] FILE QUERY...\n"
                        "       sage-indexer query [-k N] --trec QUERIES.jsonl FILE\n");
        return 2;
    }
    char *e1, *e2;
    q.k1 = strtod(c->v[OPT_K1].str, &e1);
    q.b = strtod(c->v[OPT_B].str, &e2);
    if (*e1 || *e2 || q.k1 <= 0 || q.k1 > 100 || q.b <= 0 || q.b > 1) {
        fprintf(stderr, "sage-indexer query: --bm25-k1 must be in (0, 100] and --bm25-b in (0, 1]\n");
        return 2;
    }
    double t0 = now_ms();
    if (q_open(&q, c->args[0], c->v[OPT_FILTER_LIBRARY].str, &err) < 0)
        goto fail;
    if (trec) {
        if (run_trec(&q, trec, k, &err) < 0)
            goto fail;
        status = 0;
        goto out;
    }
    if (!(text = join_args(c->args + 1, c->n_args - 1)) || !hits) {
        sage_log(SAGE_LOG_ERROR, "out of memory");
        goto out;
    }
    if (q_search(&q, text, k, &res, &err) < 0)
        goto fail;
    for (size_t i = 0; i < res.n_hits; i++) {
        json_t *h = hit_json(&q, text, &res.hits[i], tty ? "\033[1m" : "[", tty ? "\033[0m" : "]",
                             &err);
        if (!h)
            goto fail;
        json_array_append_new(hits, h);
    }
    double took = now_ms() - t0;
    if (json) {
        out = json_pack("{s:s, s:I, s:b, s:f, s:O}", "query", text, "total", (json_int_t)res.total,
                        "total_exact", res.total_exact, "took_ms", took, "results", hits);
        char *s = out ? json_dumps(out, JSON_INDENT(2)) : NULL;
        if (s)
            puts(s);
        free(s);
    } else {
        size_t i;
        json_t *h;
        printf("%s%llu chunk%s match \"%s\" (%.1f ms)\n", res.total_exact ? "" : "at least ",
               (unsigned long long)res.total, res.total == 1 ? "" : "s", text, took);
        json_array_foreach(hits, i, h) {
            const char *heading = json_string_value(json_object_get(h, "heading"));
            json_int_t page = json_integer_value(json_object_get(h, "page"));
            printf("\n%2zu. %.3f  %s:%s", i + 1, json_real_value(json_object_get(h, "score")),
                   json_string_value(json_object_get(h, "library")),
                   json_string_value(json_object_get(h, "path")));
            if (page)
                printf(" (page %" JSON_INTEGER_FORMAT ")", page);
            const char *title = json_string_value(json_object_get(h, "title"));
            printf("\n    %s\n    %s\n", heading ? heading : title,
                   json_string_value(json_object_get(h, "snippet")));
        }
    }
    status = 0;
    goto out;
fail:
    sage_log(SAGE_LOG_ERROR, "query on '%s' failed: %s", c->args[0], sage_err_msg(&err, err.code));
out:
    json_decref(out);
    json_decref(hits);
    sage_results_release(&res);
    q_close(&q);
    sage_free(text);
    return status;
}
