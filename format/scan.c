/* BM25 by scanning, and snippets. See scan.h for why this exists. */
#include "scan.h"

#include <math.h>
#include <string.h>

#include "alloc.h"
#include "mpjson.h"
#include "rectab.h"

#define BM25_K1 1.2
#define BM25_B 0.75

int sage_qterms_find(const struct sage_qterms *qt, const char *term, size_t len)
{
    for (size_t i = 0; i < qt->n; i++)
        if (qt->len[i] == len && memcmp(qt->term[i], term, len) == 0)
            return (int)i;
    return -1;
}

static int collect_term(void *ctx, const struct sage_token *t)
{
    struct sage_qterms *q = ctx;
    int i = sage_qterms_find(q, t->term, t->term_len);
    if (i >= 0) {
        q->weight[i]++;
    } else if (q->n < SAGE_QUERY_TERMS_MAX) {
        memcpy(q->term[q->n], t->term, t->term_len + 1);
        q->len[q->n] = t->term_len;
        q->weight[q->n++] = 1;
    }
    return 0;
}

int sage_qterms_collect(struct sage_tokenizer *tk, const char *q, size_t len,
                        struct sage_qterms *out)
{
    memset(out, 0, sizeof(*out));
    return sage_tokenize(tk, q, len, collect_term, out) == 0 ? 0 : -SAGE_ENOMEM;
}

struct doc_count {
    const struct sage_qterms *q;
    uint32_t tf[SAGE_QUERY_TERMS_MAX];
    uint64_t len;
};

static int count_doc(void *ctx, const struct sage_token *t)
{
    struct doc_count *d = ctx;
    int i = sage_qterms_find(d->q, t->term, t->term_len);
    d->len++;
    if (i >= 0)
        d->tf[i]++;
    return 0;
}

static int cmp_hits(const void *a, const void *b)
{
    const struct sage_hit *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->doc < y->doc ? -1 : x->doc > y->doc;
}

int sage_scan_search(const struct sage_reader *r, struct sage_tokenizer *tk, const char *q,
                     size_t k, struct sage_results *out, struct sage_err *err)
{
    int rc = 0;
    struct sage_qterms *qt = sage_calloc(1, sizeof(*qt));
    struct sage_bytes text = { 0 };
    struct sage_rectab tab;
    uint32_t *tfs = NULL;
    uint64_t *lens = NULL, df[SAGE_QUERY_TERMS_MAX] = { 0 };
    memset(out, 0, sizeof(*out));
    const struct sage_section *s = sage_reader_find(r, SAGE_SECTION_TEXT);
    if (!qt) {
        rc = sage_err_set(err, SAGE_ENOMEM, "cannot allocate query");
        goto out;
    }
    if (!s) {
        rc = sage_err_set(err, SAGE_ECORRUPT, "index has no text section");
        goto out;
    }
    if ((rc = sage_qterms_collect(tk, q, strlen(q), qt)) < 0) {
        rc = sage_err_set(err, SAGE_ENOMEM, "cannot tokenize query");
        goto out;
    }
    if (qt->n == 0)
        goto out;       /* no words: no hits */
    if ((rc = sage_reader_load(r, s, 0, &text, err)) < 0 ||
        (rc = sage_rectab_open(&tab, text.data, text.len, err)) < 0)
        goto out;
    tfs = sage_calloc(tab.n ? tab.n : 1, sizeof(*tfs) * qt->n);
    lens = sage_calloc(tab.n ? tab.n : 1, sizeof(*lens));
    out->hits = sage_calloc(tab.n ? tab.n : 1, sizeof(*out->hits));
    if (!tfs || !lens || !out->hits) {
        rc = sage_err_set(err, SAGE_ENOMEM, "cannot allocate scores for %llu documents",
                          (unsigned long long)tab.n);
        goto out;
    }
    double total_len = 0;
    for (uint64_t d = 0; d < tab.n; d++) {
        const uint8_t *p;
        size_t n;
        struct doc_count dc = { .q = qt };
        if ((rc = sage_rectab_get(&tab, d, &p, &n, err)) < 0)
            goto out;
        if (sage_tokenize(tk, (const char *)p, n, count_doc, &dc) < 0) {
            rc = sage_err_set(err, SAGE_ENOMEM, "cannot tokenize document %llu",
                              (unsigned long long)d);
            goto out;
        }
        lens[d] = dc.len;
        total_len += (double)dc.len;
        for (size_t t = 0; t < qt->n; t++) {
            tfs[d * qt->n + t] = dc.tf[t];
            df[t] += dc.tf[t] > 0;
        }
    }
    double avg = tab.n ? total_len / (double)tab.n : 1;
    if (avg <= 0)
        avg = 1;
    for (uint64_t d = 0; d < tab.n; d++) {
        double score = 0;
        for (size_t t = 0; t < qt->n; t++) {
            double tf = tfs[d * qt->n + t];
            if (tf == 0)
                continue;
            double idf = log(1.0 + ((double)tab.n - (double)df[t] + 0.5) / ((double)df[t] + 0.5));
            double norm = BM25_K1 * (1.0 - BM25_B + BM25_B * (double)lens[d] / avg);
            score += idf * tf * (BM25_K1 + 1.0) / (tf + norm);
        }
        if (score > 0)
            out->hits[out->total++] = (struct sage_hit){ d, score };
    }
    qsort(out->hits, (size_t)out->total, sizeof(*out->hits), cmp_hits);
    out->n_hits = out->total < k ? (size_t)out->total : k;
    out->total_exact = 1;
out:
    if (rc < 0)
        sage_results_release(out);
    sage_free(tfs);
    sage_free(lens);
    sage_free(qt);
    sage_bytes_release(&text);
    return rc;
}

void sage_results_release(struct sage_results *res)
{
    if (!res)
        return;
    sage_free(res->hits);
    memset(res, 0, sizeof(*res));
}

/* ---- snippets ---- */

#define SNIPPET_MATCHES_MAX 4096

struct match {
    size_t off, len;
    int term;
};

struct match_list {
    const struct sage_qterms *q;
    struct match m[SNIPPET_MATCHES_MAX];
    size_t n;
};

static int collect_match(void *ctx, const struct sage_token *t)
{
    struct match_list *ml = ctx;
    int i = sage_qterms_find(ml->q, t->term, t->term_len);
    if (i >= 0)
        ml->m[ml->n++] = (struct match){ t->off, t->len, i };
    return ml->n == SNIPPET_MATCHES_MAX;    /* enough to choose a window */
}

static int is_space(char c)
{
    return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* Moves i back (dir < 0) or forward to a whitespace boundary within 24 bytes,
 * else to a UTF-8 character boundary. */
static size_t to_boundary(const char *t, size_t len, size_t i, int dir)
{
    for (size_t step = 0; step < 24; step++) {
        size_t j = dir < 0 ? i - step : i + step;
        if ((dir < 0 && step > i) || j >= len)
            break;
        if (is_space(t[j]))
            return dir < 0 ? j + 1 : j;
    }
    while (i > 0 && i < len && ((unsigned char)t[i] & 0xc0) == 0x80)
        i += dir < 0 ? (size_t)-1 : 1;
    return i;
}

struct obuf {
    char *s;
    size_t len, cap;
};

static int put(struct obuf *o, const char *p, size_t n)
{
    if (o->len + n + 1 > o->cap) {
        size_t cap = (o->len + n + 1) * 2;
        char *s = sage_realloc(o->s, cap);
        if (!s)
            return -1;
        o->s = s;
        o->cap = cap;
    }
    memcpy(o->s + o->len, p, n);
    o->len += n;
    o->s[o->len] = '\0';
    return 0;
}

int sage_snippet(struct sage_tokenizer *tk, const char *q, const char *text, size_t len,
                 size_t width, const char *open, const char *close, char **out,
                 struct sage_err *err)
{
    int rc = 0;
    struct sage_qterms *qt = sage_calloc(1, sizeof(*qt));
    struct match_list *ml = sage_calloc(1, sizeof(*ml));
    struct obuf o = { 0 };
    *out = NULL;
    if (!qt || !ml || put(&o, "", 0) < 0) {
        rc = sage_err_set(err, SAGE_ENOMEM, "cannot allocate snippet");
        goto out;
    }
    if (sage_qterms_collect(tk, q, strlen(q), qt) < 0 ||
        (ml->q = qt, sage_tokenize(tk, text, len, collect_match, ml) < 0)) {
        rc = sage_err_set(err, SAGE_ENOMEM, "cannot tokenize snippet");
        goto out;
    }
    /* The window starting at a match that covers the most distinct terms,
     * then the most matches; the earliest wins ties. */
    size_t best = 0, best_distinct = 0, best_count = 0;
    for (size_t i = 0; i < ml->n; i++) {
        uint32_t seen = 0;
        size_t count = 0, distinct = 0;
        for (size_t j = i; j < ml->n && ml->m[j].off + ml->m[j].len - ml->m[i].off <= width; j++) {
            count++;
            if (!(seen & (1u << ml->m[j].term))) {
                seen |= 1u << ml->m[j].term;
                distinct++;
            }
        }
        if (distinct > best_distinct || (distinct == best_distinct && count > best_count)) {
            best = i, best_distinct = distinct, best_count = count;
        }
    }
    size_t start = 0;
    if (ml->n && ml->m[best].off > width / 4)
        start = to_boundary(text, len, ml->m[best].off - width / 4, -1);
    size_t end = start + width < len ? to_boundary(text, len, start + width, 1) : len;
    size_t mi = 0;
    int last_space = 1;
    if (start > 0 && put(&o, "\xe2\x80\xa6", 3) < 0)
        goto nomem;
    for (size_t i = start; i < end;) {
        while (mi < ml->n && ml->m[mi].off < i)
            mi++;
        if (mi < ml->n && ml->m[mi].off == i && i + ml->m[mi].len <= end) {
            if (put(&o, open, strlen(open)) < 0 || put(&o, text + i, ml->m[mi].len) < 0 ||
                put(&o, close, strlen(close)) < 0)
                goto nomem;
            i += ml->m[mi].len;
            last_space = 0;
            continue;
        }
        if (is_space(text[i])) {
            if (!last_space && put(&o, " ", 1) < 0)
                goto nomem;
            last_space = 1;
        } else {
            if ((unsigned char)text[i] >= 0x20 && put(&o, text + i, 1) < 0)
                goto nomem;
            last_space = 0;
        }
        i++;
    }
    while (o.len > 0 && o.s[o.len - 1] == ' ')
        o.s[--o.len] = '\0';
    if (end < len && put(&o, "\xe2\x80\xa6", 3) < 0)
        goto nomem;
    *out = o.s;
    o.s = NULL;
    goto out;
nomem:
    rc = sage_err_set(err, SAGE_ENOMEM, "cannot allocate snippet");
out:
    sage_free(o.s);
    sage_free(ml);
    sage_free(qt);
    return rc;
}
