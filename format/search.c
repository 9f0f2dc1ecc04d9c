/* The searcher: ties the document table, chunk table, chunk store and
 * inverted index of one file together and evaluates parsed queries. */
#include "search.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#include "alloc.h"
#include "chunkmeta.h"
#include "chunkstore.h"
#include "hnsw.h"
#include "index.h"
#include "le.h"
#include "mpjson.h"
#include "query.h"
#include "rectab.h"

struct sage_searcher {
    const struct sage_reader *r;
    int has_index;
    struct sage_index ix;
    struct sage_chunkstore cs;
    struct sage_chunkmeta meta;     /* meta.n == 0: none (files before 1.2) */
    const uint8_t *chunk_map;       /* u64 n, then u32 doc, u32 ordinal per chunk */
    uint64_t n_chunks;
    struct sage_bytes docs_b, text_b;
    struct sage_rectab docs, text;  /* text: 1.0 files only */
    char **library, **path, **title;    /* per document, owned; NULL until doc_table */
    pthread_mutex_t mu;             /* guards the lazy document table */
    pthread_mutex_t docs_mu;        /* guards the lazy decompression of DOCS */
    int docs_loaded;                /* atomic: docs and docs_b are set */
    uint64_t n_docs;
    char *stemmer;                  /* tokenizer settings of the index */
    int stopwords;
    struct sage_vectors vec;        /* vec.n == 0 and has_vectors 0: none */
    struct sage_hnsw hnsw;          /* valid when has_hnsw */
    int has_hnsw;
    int has_vectors;
    char *emb_model, *emb_qprefix, *emb_dprefix;    /* BUILD embedding (owned) */
    int emb_normalized;
};

uint64_t sage_searcher_n_docs(const struct sage_searcher *s) { return s->n_docs; }
uint64_t sage_searcher_n_chunks(const struct sage_searcher *s) { return s->has_index ? s->n_chunks : s->n_docs; }
int sage_searcher_has_index(const struct sage_searcher *s) { return s->has_index; }

static int open_table(const struct sage_reader *r, uint32_t kind, struct sage_bytes *b,
                      struct sage_rectab *t, struct sage_err *err)
{
    const struct sage_section *sec = sage_reader_find(r, kind);
    if (!sec)
        return sage_err_set(err, SAGE_ECORRUPT, "index has no %s section",
                            sage_section_kind_name(kind));
    int rc = sage_reader_load(r, sec, 0, b, err);
    return rc < 0 ? rc : sage_rectab_open(t, b->data, b->len, err);
}

/* Decompresses the document table, once: on the first request for a
 * document, or from sage_searcher_warm. Deferred because it grows with the
 * corpus (68 MB decoded for half a million documents, some 100 ms), and a
 * daemon should be ready, or swap, in the same few milliseconds whatever the
 * size. */
static int docs_load(struct sage_searcher *s, struct sage_err *err)
{
    int rc = 0;
    if (__atomic_load_n(&s->docs_loaded, __ATOMIC_ACQUIRE))
        return 0;
    pthread_mutex_lock(&s->docs_mu);
    if (!s->docs_loaded) {
        rc = open_table(s->r, SAGE_SECTION_DOCS, &s->docs_b, &s->docs, err);
        if (rc == 0 && s->docs.n != s->n_docs)
            rc = sage_err_set(err, SAGE_ECORRUPT, "document table holds %llu documents, the "
                              "header says %llu", (unsigned long long)s->docs.n,
                              (unsigned long long)s->n_docs);
        if (rc == 0)
            __atomic_store_n(&s->docs_loaded, 1, __ATOMIC_RELEASE);
        else
            sage_bytes_release(&s->docs_b);
    }
    pthread_mutex_unlock(&s->docs_mu);
    return rc;
}

int sage_searcher_warm(struct sage_searcher *s, struct sage_err *err)
{
    return docs_load(s, err);
}

int sage_searcher_doc(const struct sage_searcher *s, uint32_t doc, json_t **rec,
                      struct sage_err *err)
{
    const uint8_t *p;
    size_t n;
    *rec = NULL;
    int rc = docs_load((struct sage_searcher *)s, err);
    if (rc == 0)
        rc = sage_rectab_get(&s->docs, doc, &p, &n, err);
    return rc < 0 ? rc : sage_mpjson_decode(p, n, rec, err);
}

static char *dup_field(json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return sage_strdup(v ? v : "");
}

static int read_settings(struct sage_searcher *s, struct sage_err *err)
{
    const struct sage_section *sec = sage_reader_find(s->r, SAGE_SECTION_BUILD);
    struct sage_bytes b;
    json_t *rec = NULL;
    int rc;
    if (!sec)
        return sage_err_set(err, SAGE_ECORRUPT, "index has no build record");
    if ((rc = sage_reader_load(s->r, sec, 16u << 20, &b, err)) < 0)
        return rc;
    rc = sage_mpjson_decode(b.data, b.len, &rec, err);
    sage_bytes_release(&b);
    if (rc < 0)
        return rc;
    json_t *tok = json_object_get(rec, "tokenizer");
    const char *stem = "english";       /* format 1.0 */
    if (tok) {
        stem = json_string_value(json_object_get(tok, "stemmer"));
        const char *stop = json_string_value(json_object_get(tok, "stopwords"));
        s->stopwords = stop && strcmp(stop, "english") == 0;
    }
    json_t *emb = json_object_get(rec, "embedding");
    const char *model = json_string_value(json_object_get(emb, "model"));
    const char *qp = json_string_value(json_object_get(emb, "query_prefix"));
    const char *dp = json_string_value(json_object_get(emb, "document_prefix"));
    s->emb_normalized = json_is_true(json_object_get(emb, "normalized"));
    if ((stem && !(s->stemmer = sage_strdup(stem))) ||
        !(s->emb_model = sage_strdup(model ? model : "")) ||
        !(s->emb_qprefix = sage_strdup(qp ? qp : "")) ||
        !(s->emb_dprefix = sage_strdup(dp ? dp : "")))
        rc = sage_err_set(err, SAGE_ENOMEM, "cannot copy the index's settings");
    json_decref(rec);
    return rc;
}

/* Decodes library, path and title of every document, once, on the first
 * query that needs them (filters, phrases): opening stays O(1) in the
 * number of documents, which keeps a daemon's start-up and swaps fast. */
static int doc_table(struct sage_searcher *s, struct sage_err *err)
{
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    if (s->title)
        goto out;
    char **lib = sage_calloc(s->n_docs ? s->n_docs : 1, sizeof(char *));
    char **path = sage_calloc(s->n_docs ? s->n_docs : 1, sizeof(char *));
    char **title = sage_calloc(s->n_docs ? s->n_docs : 1, sizeof(char *));
    for (uint64_t d = 0; rc == 0 && lib && path && title && d < s->n_docs; d++) {
        json_t *j;
        if ((rc = sage_searcher_doc(s, (uint32_t)d, &j, err)) < 0)
            break;
        lib[d] = dup_field(j, "library");
        path[d] = dup_field(j, "path");
        title[d] = dup_field(j, "title");
        json_decref(j);
        if (!lib[d] || !path[d] || !title[d])
            rc = sage_err_set(err, SAGE_ENOMEM, "cannot allocate the document table");
    }
    if (rc == 0 && (!lib || !path || !title))
        rc = sage_err_set(err, SAGE_ENOMEM, "cannot allocate the document table");
    if (rc < 0) {
        for (uint64_t d = 0; d < s->n_docs; d++) {
            if (lib)
                sage_free(lib[d]);
            if (path)
                sage_free(path[d]);
            if (title)
                sage_free(title[d]);
        }
        sage_free(lib);
        sage_free(path);
        sage_free(title);
        goto out;
    }
    s->library = lib;
    s->path = path;
    s->title = title;
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int sage_searcher_open(const struct sage_reader *r, struct sage_searcher **out,
                       struct sage_err *err)
{
    struct sage_searcher *s = sage_calloc(1, sizeof(*s));
    int rc;
    *out = NULL;
    if (!s)
        return sage_err_set(err, SAGE_ENOMEM, "cannot allocate searcher");
    s->r = r;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->docs_mu, NULL);
    if ((rc = read_settings(s, err)) < 0)
        goto out;
    const struct sage_section *ds = sage_reader_find(r, SAGE_SECTION_DOCS);
    if (!ds) {
        rc = sage_err_set(err, SAGE_ECORRUPT, "index has no docs section");
        goto out;
    }
    s->n_docs = sage_reader_info(r)->n_docs;
    rc = sage_index_open(&s->ix, r, err);
    if (rc == -SAGE_ENOTFOUND) {
        rc = open_table(r, SAGE_SECTION_TEXT, &s->text_b, &s->text, err);
        goto out;
    }
    if (rc < 0 || (rc = sage_chunkstore_open(&s->cs, r, err)) < 0)
        goto out;
    if ((rc = sage_chunkmeta_open(&s->meta, r, err)) == -SAGE_ENOTFOUND)
        rc = 0;
    else if (rc < 0)
        goto out;
    const struct sage_section *cm = sage_reader_find(r, SAGE_SECTION_CHUNKS);
    if (!cm || cm->codec != SAGE_CODEC_RAW || cm->len < 8 ||
        (cm->len - 8) / 8 < sage_le64(cm->data) || sage_le64(cm->data) != s->ix.n_chunks ||
        s->cs.n != s->ix.n_chunks) {
        rc = sage_err_set(err, SAGE_ECORRUPT, "chunk table is missing or disagrees with the index");
        goto out;
    }
    s->chunk_map = cm->data;
    s->n_chunks = s->ix.n_chunks;
    s->has_index = 1;
    if ((rc = sage_vectors_open(&s->vec, r, err)) == -SAGE_ENOTFOUND)
        rc = 0;
    else if (rc == 0)
        s->has_vectors = 1;
    if (rc == 0 && s->has_vectors) {
        if ((rc = sage_hnsw_open(&s->hnsw, r, err)) == -SAGE_ENOTFOUND)
            rc = 0;
        else if (rc == 0)
            s->has_hnsw = 1;
    }
out:
    if (rc < 0)
        sage_searcher_free(s);
    else
        *out = s;
    return rc;
}

void sage_searcher_free(struct sage_searcher *s)
{
    if (!s)
        return;
    for (uint64_t d = 0; s->title && d < s->n_docs; d++) {
        sage_free(s->library[d]);
        sage_free(s->path[d]);
        sage_free(s->title[d]);
    }
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->docs_mu);
    sage_free(s->library);
    sage_free(s->path);
    sage_free(s->title);
    sage_free(s->stemmer);
    sage_free(s->emb_model);
    sage_free(s->emb_qprefix);
    sage_free(s->emb_dprefix);
    sage_bytes_release(&s->docs_b);
    sage_bytes_release(&s->text_b);
    sage_free(s);
}

int sage_searcher_tokenizer(const struct sage_searcher *s, struct sage_tokenizer **out,
                            struct sage_err *err)
{
    struct sage_tokenizer_opts o = { .stemmer = s->stemmer };
    if (s->stopwords) {
        o.stopwords = sage_stopwords_english;
        o.n_stopwords = sage_n_stopwords_english;
    }
    return sage_tokenizer_new(&o, out, err);
}

int sage_searcher_hit_doc(const struct sage_searcher *s, uint64_t hit, uint32_t *doc,
                          struct sage_err *err)
{
    if (!s->has_index) {
        if (hit >= s->n_docs)
            return sage_err_set(err, SAGE_ENOTFOUND, "no document %llu", (unsigned long long)hit);
        *doc = (uint32_t)hit;
        return 0;
    }
    if (hit >= s->n_chunks)
        return sage_err_set(err, SAGE_ENOTFOUND, "no chunk %llu", (unsigned long long)hit);
    *doc = sage_le32(s->chunk_map + 8 + 8 * (size_t)hit);
    if (*doc >= s->n_docs)
        return sage_err_set(err, SAGE_ECORRUPT, "chunk %llu names a missing document",
                            (unsigned long long)hit);
    return 0;
}

int sage_searcher_hit_text(const struct sage_searcher *s, uint64_t hit, json_t **rec,
                           struct sage_err *err)
{
    *rec = NULL;
    if (s->has_index)
        return sage_chunkstore_get(&s->cs, hit, rec, err);
    const uint8_t *p;
    size_t n;
    int rc = sage_rectab_get(&s->text, hit, &p, &n, err);
    if (rc < 0)
        return rc;
    json_t *t = json_stringn((const char *)p, n);
    if (!t)
        return sage_err_set(err, SAGE_ECORRUPT, "document %llu text is not UTF-8",
                            (unsigned long long)hit);
    *rec = json_pack("{s:o, s:n, s:i}", "text", t, "heading", "page", 0);
    return *rec ? 0 : sage_err_set(err, SAGE_ENOMEM, "out of memory");
}

int sage_searcher_hit_info(const struct sage_searcher *s, uint64_t hit, int want_text,
                           json_t **rec, struct sage_err *err)
{
    if (want_text || !s->has_index || s->meta.n == 0)
        return sage_searcher_hit_text(s, hit, rec, err);
    uint32_t page;
    const char *h;
    size_t len;
    *rec = NULL;
    int rc = sage_chunkmeta_get(&s->meta, hit, &page, &h, &len, err);
    if (rc < 0)
        return rc;
    json_t *hj = h ? json_stringn(h, len) : json_null();
    if (!hj)
        return sage_err_set(err, SAGE_ECORRUPT, "chunk %llu has a heading that is not UTF-8",
                            (unsigned long long)hit);
    *rec = json_pack("{s:o, s:I}", "heading", hj, "page", (json_int_t)page);
    return *rec ? 0 : sage_err_set(err, SAGE_ENOMEM, "out of memory");
}

/* ---- filters ---- */

#define PHRASE_TERMS 16

struct phrase {
    char term[PHRASE_TERMS][SAGE_TERM_MAX * 4 + 1];
    uint32_t delta[PHRASE_TERMS];       /* position in the phrase text */
    size_t n;
};

struct filter {
    const struct sage_searcher *s;
    struct sage_tokenizer *tk;
    uint8_t *doc_ok;                    /* library/path filters; NULL: all */
    uint8_t *must_not;                  /* chunk bitmap of excluded terms; NULL: none */
    struct phrase *phrases;
    size_t n_phrases;
    int error;
};

/* A phrase's terms with their positions; has_phrase compares positions
 * relative to the first term's, so stop words inside keep their gap. */
static int collect_phrase(void *ctx, const struct sage_token *t)
{
    struct phrase *p = ctx;
    if (p->n == PHRASE_TERMS)
        return 0;
    memcpy(p->term[p->n], t->term, t->term_len + 1);
    p->delta[p->n++] = t->pos;
    return 0;
}

struct tokens {
    char (*term)[SAGE_TERM_MAX * 4 + 1];
    uint32_t *pos;
    size_t n, cap;
};

static int collect_tokens(void *ctx, const struct sage_token *t)
{
    struct tokens *k = ctx;
    if (k->n == k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 256;
        void *a = sage_realloc(k->term, cap * sizeof(*k->term));
        if (!a)
            return -1;
        k->term = a;
        void *b = sage_realloc(k->pos, cap * sizeof(*k->pos));
        if (!b)
            return -1;
        k->pos = b;
        k->cap = cap;
    }
    memcpy(k->term[k->n], t->term, t->term_len + 1);
    k->pos[k->n++] = t->pos;
    return 0;
}

static int has_phrase(const struct tokens *k, const struct phrase *p)
{
    for (size_t i = 0; i < k->n; i++) {
        if (strcmp(k->term[i], p->term[0]) != 0)
            continue;
        size_t j = i, m = 1;
        for (; m < p->n; m++) {
            uint32_t want = k->pos[i] + (p->delta[m] - p->delta[0]);
            while (j < k->n && k->pos[j] < want)
                j++;
            if (j == k->n || k->pos[j] != want || strcmp(k->term[j], p->term[m]) != 0)
                break;
        }
        if (m == p->n)
            return 1;
    }
    return 0;
}

/* Whether the chunk's indexed text (title, heading path, text) holds every
 * phrase. */
static int phrases_ok(struct filter *f, uint32_t chunk, uint32_t doc)
{
    json_t *rec = NULL;
    struct tokens k = { 0 };
    struct sage_err err;
    int ok = 0;
    if (sage_searcher_hit_text(f->s, chunk, &rec, &err) < 0) {
        f->error = 1;
        return 0;
    }
    const char *text = json_string_value(json_object_get(rec, "text"));
    const char *heading = json_string_value(json_object_get(rec, "heading"));
    const char *parts[3] = { f->s->title[doc], heading ? heading : "", text ? text : "" };
    uint32_t base = 0;
    for (int i = 0; i < 3; i++) {
        size_t before = k.n;
        if (sage_tokenize(f->tk, parts[i], strlen(parts[i]), collect_tokens, &k) != 0) {
            f->error = 1;
            goto out;
        }
        /* positions continue across the parts, with a gap so no phrase
         * spans two of them */
        for (size_t j = before; j < k.n; j++)
            k.pos[j] += base;
        base = k.n ? k.pos[k.n - 1] + 2 : base;
    }
    ok = 1;
    for (size_t i = 0; i < f->n_phrases && ok; i++)
        ok = has_phrase(&k, &f->phrases[i]);
out:
    sage_free(k.term);
    sage_free(k.pos);
    json_decref(rec);
    return ok;
}

static int bit(const uint8_t *b, uint32_t i)
{
    return b[i >> 3] >> (i & 7) & 1;
}

static int accept_chunk(void *ctx, uint32_t chunk)
{
    struct filter *f = ctx;
    uint32_t doc = sage_le32(f->s->chunk_map + 8 + 8 * (size_t)chunk);
    if (doc >= f->s->n_docs) {
        f->error = 1;
        return 0;
    }
    if (f->doc_ok && !f->doc_ok[doc])
        return 0;
    if (f->must_not && bit(f->must_not, chunk))
        return 0;
    return f->n_phrases == 0 || phrases_ok(f, chunk, doc);
}

struct term_list {
    char term[SAGE_QUERY_MAX_PARTS][SAGE_TERM_MAX * 4 + 1];
    size_t n;
};

static int collect_terms(void *ctx, const struct sage_token *t)
{
    struct term_list *l = ctx;
    if (l->n < SAGE_QUERY_MAX_PARTS)
        memcpy(l->term[l->n++], t->term, t->term_len + 1);
    return 0;
}

/* ORs the postings of the words' terms into a new bitmap *bits (NULL when
 * the words have no term in the index). */
static int excluded_bits(struct filter *f, char *const *words, size_t n_words, uint8_t **bits,
                         struct sage_err *err)
{
    struct term_list *l = sage_calloc(1, sizeof(*l));
    size_t bytes = (f->s->n_chunks + 7) / 8;
    int rc = 0;
    if (!l)
        return sage_err_set(err, SAGE_ENOMEM, "cannot allocate query terms");
    for (size_t i = 0; i < n_words; i++)
        if (sage_tokenize(f->tk, words[i], strlen(words[i]), collect_terms, l) != 0) {
            rc = sage_err_set(err, SAGE_ENOMEM, "cannot tokenize query");
            goto out;
        }
    for (size_t i = 0; i < l->n; i++) {
        struct sage_term_info ti;
        int found = sage_index_lookup(&f->s->ix, l->term[i], strlen(l->term[i]), &ti, err);
        if (found < 0) {
            rc = found;
            goto out;
        }
        if (!found)
            continue;
        if (!*bits && !(*bits = sage_calloc(1, bytes ? bytes : 1))) {
            rc = sage_err_set(err, SAGE_ENOMEM, "cannot allocate a filter bitmap");
            goto out;
        }
        if ((rc = sage_index_term_bits(&f->s->ix, &ti, *bits, err)) < 0)
            goto out;
    }
out:
    sage_free(l);
    return rc;
}

/* The terms of the required words, for the search to leapfrog on. */
static int required_terms(struct sage_tokenizer *tk, char *const *words, size_t n_words,
                          struct sage_qterms **out, struct sage_err *err)
{
    *out = NULL;
    if (n_words == 0)
        return 0;
    struct sage_qterms *all = sage_calloc(1, sizeof(*all)), *one = sage_calloc(1, sizeof(*one));
    int rc = 0;
    if (!all || !one) {
        rc = sage_err_set(err, SAGE_ENOMEM, "cannot allocate query terms");
        goto out;
    }
    for (size_t i = 0; i < n_words; i++) {
        if (sage_qterms_collect(tk, words[i], strlen(words[i]), one) < 0) {
            rc = sage_err_set(err, SAGE_ENOMEM, "cannot tokenize query");
            goto out;
        }
        for (size_t j = 0; j < one->n && all->n < SAGE_QUERY_TERMS_MAX; j++) {
            if (sage_qterms_find(all, one->term[j], one->len[j]) >= 0)
                continue;
            memcpy(all->term[all->n], one->term[j], one->len[j] + 1);
            all->len[all->n] = one->len[j];
            all->weight[all->n++] = 1;
        }
    }
out:
    sage_free(one);
    if (rc < 0 || all->n == 0) {
        sage_free(all);
        all = NULL;
    }
    *out = all;
    return rc;
}

static int path_has_prefix(const char *path, const char *prefix)
{
    size_t n = strlen(prefix);
    return strncmp(path, prefix, n) == 0;
}

/* The documents the query's library and path filters allow, one byte
 * each (*ok owned); the document table must be decoded. */
static int doc_filter(const struct sage_searcher *s, const struct sage_query *pq, uint8_t **ok,
                      struct sage_err *err)
{
    if (!(*ok = sage_calloc(s->n_docs ? s->n_docs : 1, 1)))
        return sage_err_set(err, SAGE_ENOMEM, "cannot allocate the document filter");
    for (uint64_t d = 0; d < s->n_docs; d++) {
        int lib = pq->n_libraries == 0, path = pq->n_paths == 0;
        for (size_t i = 0; i < pq->n_libraries && !lib; i++)
            lib = strcmp(s->library[d], pq->libraries[i]) == 0;
        for (size_t i = 0; i < pq->n_paths && !path; i++)
            path = path_has_prefix(s->path[d], pq->paths[i]);
        (*ok)[d] = (uint8_t)(lib && path);
    }
    return 0;
}

/* Parses q and adds the filters given apart from it. */
static int parse_with_filters(const char *q, size_t len, const struct sage_search_opts *o,
                              struct sage_query *pq, struct sage_err *err)
{
    int rc = sage_query_parse(q, len, pq, err);
    if (rc < 0)
        return rc;
    if ((o->library && pq->n_libraries < SAGE_QUERY_MAX_PARTS &&
         !(pq->libraries[pq->n_libraries++] = sage_strdup(o->library))) ||
        (o->path_prefix && pq->n_paths < SAGE_QUERY_MAX_PARTS &&
         !(pq->paths[pq->n_paths++] = sage_strdup(o->path_prefix))))
        return sage_err_set(err, SAGE_ENOMEM, "cannot allocate query filters");
    return 0;
}

int sage_search(const struct sage_searcher *s, struct sage_tokenizer *tk, const char *q,
                size_t len, const struct sage_search_opts *o, struct sage_results *out,
                struct sage_err *err)
{
    struct sage_query pq;
    struct filter f = { s, tk, NULL, NULL, NULL, 0, 0 };
    struct sage_qterms *req = NULL;
    int rc;
    memset(out, 0, sizeof(*out));
    if ((rc = parse_with_filters(q, len, o, &pq, err)) < 0)
        goto out;
    if (!s->has_index) {
        if (pq.n_phrases || pq.n_required || pq.n_excluded || pq.n_libraries || pq.n_paths) {
            rc = sage_err_set(err, SAGE_EINVAL, "filters, phrases, + and - need an index of "
                                                "format 1.1 (this one is scanned)");
            goto out;
        }
        rc = sage_scan_search(s->r, tk, pq.text, o->k, out, err);
        goto out;
    }
    if ((pq.n_libraries || pq.n_paths || pq.n_phrases) &&
        (rc = doc_table((struct sage_searcher *)s, err)) < 0)
        goto out;
    if ((pq.n_libraries || pq.n_paths) && (rc = doc_filter(s, &pq, &f.doc_ok, err)) < 0)
        goto out;
    if ((rc = required_terms(tk, pq.required, pq.n_required, &req, err)) < 0 ||
        (rc = excluded_bits(&f, pq.excluded, pq.n_excluded, &f.must_not, err)) < 0)
        goto out;
    if (pq.n_phrases) {
        if (!(f.phrases = sage_calloc(pq.n_phrases, sizeof(*f.phrases)))) {
            rc = sage_err_set(err, SAGE_ENOMEM, "cannot allocate phrases");
            goto out;
        }
        for (size_t i = 0; i < pq.n_phrases; i++) {
            struct phrase *p = &f.phrases[f.n_phrases];
            if (sage_tokenize(tk, pq.phrases[i], strlen(pq.phrases[i]), collect_phrase, p) != 0) {
                rc = sage_err_set(err, SAGE_ENOMEM, "cannot tokenize a phrase");
                goto out;
            }
            if (p->n > 1)       /* one word is just a word */
                f.n_phrases++;
            else
                memset(p, 0, sizeof(*p));
        }
    }
    int filtered = f.doc_ok || f.must_not || f.n_phrases;
    struct sage_bm25_opts bo = { o->k, o->k1, o->b, o->exhaustive,
                                 filtered ? accept_chunk : NULL, &f, req };
    rc = sage_bm25_search(&s->ix, tk, pq.text, &bo, out, err);
    if (rc == 0 && f.error) {
        sage_results_release(out);
        rc = sage_err_set(err, SAGE_ECORRUPT, "chunk data is damaged");
    }
out:
    sage_free(f.doc_ok);
    sage_free(req);
    sage_free(f.must_not);
    sage_free(f.phrases);
    sage_query_release(&pq);
    return rc;
}

/* ---- dense and hybrid ---- */

int sage_search_mode_parse(const char *name, enum sage_search_mode *mode)
{
    if (strcmp(name, "bm25") == 0)
        *mode = SAGE_MODE_BM25;
    else if (strcmp(name, "dense") == 0)
        *mode = SAGE_MODE_DENSE;
    else if (strcmp(name, "hybrid") == 0)
        *mode = SAGE_MODE_HYBRID;
    else
        return -SAGE_EINVAL;
    return 0;
}

int sage_dense_method_parse(const char *name, enum sage_dense_method *m)
{
    static const char *const names[] = { "auto", "exact", "hnsw" };
    for (int i = 0; i < 3; i++)
        if (strcmp(name, names[i]) == 0) {
            *m = (enum sage_dense_method)i;
            return 0;
        }
    return -SAGE_EINVAL;
}

const char *sage_dense_method_name(enum sage_dense_method m)
{
    return m == SAGE_DENSE_HNSW ? "hnsw" : m == SAGE_DENSE_EXACT ? "exact" : "auto";
}

int sage_searcher_has_hnsw(const struct sage_searcher *s)
{
    return s->has_hnsw;
}

const char *sage_search_mode_name(enum sage_search_mode mode)
{
    return mode == SAGE_MODE_DENSE ? "dense" : mode == SAGE_MODE_HYBRID ? "hybrid" : "bm25";
}

int sage_searcher_embedding(const struct sage_searcher *s, struct sage_embedding_info *info)
{
    memset(info, 0, sizeof(*info));
    if (!s->has_vectors)
        return 0;
    info->model = s->emb_model;
    info->query_prefix = s->emb_qprefix;
    info->document_prefix = s->emb_dprefix;
    info->dim = s->vec.dim;
    info->normalized = s->emb_normalized || (s->vec.flags & SAGE_VECTORS_NORMALIZED);
    return 1;
}

const struct sage_vectors *sage_searcher_vectors(const struct sage_searcher *s)
{
    return s->has_vectors ? &s->vec : NULL;
}

/* The dense leg: the best depth chunks the filters of pq allow. *total
 * receives the number of chunks allowed. */
static int dense_leg(const struct sage_searcher *s, const struct sage_query *pq,
                     const struct sage_hybrid_opts *h, size_t depth, struct sage_leg_hit **out,
                     size_t *n_out, uint64_t *total, enum sage_dense_method *used,
                     struct sage_err *err)
{
    const struct sage_vectors *v = &s->vec;
    float *q = NULL;
    uint8_t *doc_ok = NULL;
    uint64_t *allow = NULL;
    struct sage_dense_hit *dh = NULL;
    size_t n = 0;
    int rc = 0;
    *out = NULL;
    *n_out = 0;
    *total = v->n;
    if (!h->vector || h->dim != v->dim) {
        rc = h->vector ? sage_err_set(err, SAGE_EINVAL, "the query vector has %zu dimensions, "
                                      "the index's vectors %u", h->dim, v->dim)
                       : sage_err_set(err, SAGE_EINVAL, "dense search needs a query vector");
        goto out;
    }
    if (!(q = sage_calloc(v->dim, sizeof(float)))) {
        rc = sage_err_set(err, SAGE_ENOMEM, "cannot copy the query vector");
        goto out;
    }
    double norm = 0;
    for (uint32_t i = 0; i < v->dim; i++) {
        if (!isfinite(h->vector[i])) {
            rc = sage_err_set(err, SAGE_EINVAL, "the query vector holds a value that is not "
                                                "a finite number (at %u)", i);
            goto out;
        }
        q[i] = h->vector[i];
        norm += (double)q[i] * q[i];
    }
    if ((s->emb_normalized || (v->flags & SAGE_VECTORS_NORMALIZED)) && norm > 0)
        for (uint32_t i = 0; i < v->dim; i++)
            q[i] = (float)(q[i] / sqrt(norm));
    if (pq->n_libraries || pq->n_paths) {
        if ((rc = doc_table((struct sage_searcher *)s, err)) < 0 ||
            (rc = doc_filter(s, pq, &doc_ok, err)) < 0)
            goto out;
        if (!(allow = sage_calloc(v->n / 64 + 1, sizeof(uint64_t)))) {
            rc = sage_err_set(err, SAGE_ENOMEM, "cannot allocate the chunk filter");
            goto out;
        }
        /* chunks are in document order (§9.6), but reading each chunk's
         * document keeps this right without relying on it, at a cost far
         * below the scan's */
        *total = 0;
        for (uint64_t c = 0; c < v->n; c++) {
            uint32_t d = sage_le32(s->chunk_map + 8 + 8 * (size_t)c);
            if (d >= s->n_docs) {
                rc = sage_err_set(err, SAGE_ECORRUPT, "chunk %llu names a missing document",
                                  (unsigned long long)c);
                goto out;
            }
            if (doc_ok[d]) {
                allow[c / 64] |= (uint64_t)1 << (c % 64);
                (*total)++;
            }
        }
    }
    if (depth == 0)
        goto out;
    if (!(dh = sage_calloc(depth, sizeof(*dh)))) {
        rc = sage_err_set(err, SAGE_ENOMEM, "cannot allocate dense hits");
        goto out;
    }
    int graph = h->method == SAGE_DENSE_HNSW ||
                (h->method == SAGE_DENSE_AUTO && s->has_hnsw && !allow &&
                 v->n >= SAGE_HNSW_AUTO_MIN);
    if (graph && !s->has_hnsw) {
        rc = sage_err_set(err, SAGE_ENOTFOUND, "the index has no HNSW graph (built without "
                                               "--hnsw): use exact dense search");
        goto out;
    }
    if (graph) {
        rc = sage_hnsw_search(&s->hnsw, v, q, h->ef ? h->ef : SAGE_HNSW_EF_DEFAULT, depth, allow,
                              dh, &n, err);
    } else {
        struct sage_dense_opts dopt = { .k = depth, .oversample = h->oversample, .allow = allow,
                                        .threads = h->threads };
        rc = sage_dense_exact(v, q, &dopt, dh, &n, err);
    }
    if (rc < 0)
        goto out;
    *used = graph ? SAGE_DENSE_HNSW : SAGE_DENSE_EXACT;
    if (n && !(*out = sage_calloc(n, sizeof(**out)))) {
        rc = sage_err_set(err, SAGE_ENOMEM, "cannot allocate dense hits");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        (*out)[i] = (struct sage_leg_hit){ dh[i].chunk, dh[i].score };
    *n_out = n;
out:
    sage_free(q);
    sage_free(doc_ok);
    sage_free(allow);
    sage_free(dh);
    return rc;
}

int sage_search_hybrid(const struct sage_searcher *s, struct sage_tokenizer *tk, const char *q,
                       size_t len, const struct sage_search_opts *o,
                       const struct sage_hybrid_opts *h, struct sage_hybrid_results *out,
                       struct sage_err *err)
{
    struct sage_results bm = { 0 };
    struct sage_query pq;
    struct sage_leg_hit *bl = NULL, *dl = NULL;
    size_t nb = 0, nd = 0;
    uint64_t dense_total = 0;
    int rc = 0, words = 0;
    memset(out, 0, sizeof(*out));
    memset(&pq, 0, sizeof(pq));
    if (h->mode != SAGE_MODE_BM25 && !s->has_vectors)
        return sage_err_set(err, SAGE_ENOTFOUND, "%s search needs an index built with "
                            "embeddings; this one has no vectors",
                            sage_search_mode_name(h->mode));
    size_t depth = h->mode == SAGE_MODE_HYBRID
                   ? (h->depth ? h->depth : o->k > SAGE_HYBRID_DEPTH ? o->k : SAGE_HYBRID_DEPTH)
                   : o->k;
    if (h->mode != SAGE_MODE_BM25) {
        if ((rc = parse_with_filters(q, len, o, &pq, err)) < 0)
            goto out;
        for (const char *p = pq.text; p && *p && !words; p++)
            words = *p != ' ';
    }
    /* the BM25 leg: every mode but dense, when the query has words (a
     * hybrid search by a raw vector may come without any) */
    if (h->mode == SAGE_MODE_BM25 || (h->mode == SAGE_MODE_HYBRID && words)) {
        struct sage_search_opts bo = *o;
        bo.k = depth;
        if ((rc = sage_search(s, tk, q, len, &bo, &bm, err)) < 0)
            goto out;
        if (bm.n_hits && !(bl = sage_calloc(bm.n_hits, sizeof(*bl)))) {
            rc = sage_err_set(err, SAGE_ENOMEM, "cannot allocate hits");
            goto out;
        }
        for (size_t i = 0; i < bm.n_hits; i++)
            bl[i] = (struct sage_leg_hit){ bm.hits[i].doc, bm.hits[i].score };
        nb = bm.n_hits;
        out->total = bm.total;
        out->total_exact = bm.total_exact;
    }
    if (h->mode != SAGE_MODE_BM25 &&
        (rc = dense_leg(s, &pq, h, depth, &dl, &nd, &dense_total, &out->dense_used, err)) < 0)
        goto out;
    if (h->mode == SAGE_MODE_HYBRID) {
        rc = sage_fusion_fuse(bl, nb, dl, nd, &h->fusion, o->k, &out->hits, &out->n_hits, err);
        goto out;
    }
    /* one leg: its own order and score */
    const struct sage_leg_hit *one = h->mode == SAGE_MODE_DENSE ? dl : bl;
    size_t n = h->mode == SAGE_MODE_DENSE ? nd : nb;
    n = n < o->k ? n : o->k;
    if (h->mode == SAGE_MODE_DENSE) {
        out->total = dense_total;
        out->total_exact = 1;
    }
    if (n && !(out->hits = sage_calloc(n, sizeof(*out->hits)))) {
        rc = sage_err_set(err, SAGE_ENOMEM, "cannot allocate hits");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        struct sage_fused_hit *f = &out->hits[i];
        struct sage_leg *l = h->mode == SAGE_MODE_DENSE ? &f->dense : &f->bm25;
        f->chunk = one[i].chunk;
        f->score = one[i].score;
        l->rank = (uint32_t)(i + 1);
        l->score = one[i].score;
    }
    out->n_hits = n;
out:
    if (rc < 0)
        sage_hybrid_results_release(out);
    sage_results_release(&bm);
    sage_query_release(&pq);
    sage_free(bl);
    sage_free(dl);
    return rc;
}

void sage_hybrid_results_release(struct sage_hybrid_results *res)
{
    sage_free(res->hits);
    memset(res, 0, sizeof(*res));
}
