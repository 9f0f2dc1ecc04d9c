/* Inverted index reading and BM25 block-max WAND. Layouts in FORMAT.md. */
#include "index.h"

#include <math.h>
#include <string.h>

#include "alloc.h"
#include "le.h"
#include "varint.h"

#define NO_DOC UINT32_MAX
#define BLOCK 128
#define LEX_HEAD 48

#define CORRUPT(...) sage_err_set(err, SAGE_ECORRUPT, __VA_ARGS__)

int sage_index_open(struct sage_index *ix, const struct sage_reader *r, struct sage_err *err)
{
    const struct sage_section *lex = sage_reader_find(r, SAGE_SECTION_LEXICON);
    const struct sage_section *post = sage_reader_find(r, SAGE_SECTION_POSTINGS);
    const struct sage_section *norms = sage_reader_find(r, SAGE_SECTION_NORMS);
    memset(ix, 0, sizeof(*ix));
    if (!lex || !post || !norms)
        return sage_err_set(err, SAGE_ENOTFOUND, "index has no inverted index (format 1.0)");
    if (lex->codec != SAGE_CODEC_RAW || post->codec != SAGE_CODEC_RAW ||
        norms->codec != SAGE_CODEC_RAW || lex->len < LEX_HEAD + 8)
        return CORRUPT("inverted index sections have the wrong codec or size");
    const uint8_t *h = lex->data;
    ix->n_terms = sage_le64(h);
    ix->n_chunks = sage_le64(h + 8);
    ix->total_tokens = sage_le64(h + 16);
    ix->block_terms = sage_le32(h + 24);
    ix->n_blocks = sage_le64(h + 32);
    uint64_t room = lex->len - LEX_HEAD - 8;
    if (ix->block_terms == 0 || ix->n_blocks > room / 8 ||
        ix->n_blocks != ix->n_terms / ix->block_terms + (ix->n_terms % ix->block_terms != 0) ||
        ix->n_chunks >= NO_DOC || norms->len != 4 * ix->n_chunks)
        return CORRUPT("lexicon header is inconsistent");
    ix->blk_offs = h + LEX_HEAD;
    ix->blk_data = ix->blk_offs + 8 * (ix->n_blocks + 1);
    ix->blk_data_len = room - 8 * ix->n_blocks;
    if (sage_le64(ix->blk_offs + 8 * ix->n_blocks) != ix->blk_data_len)
        return CORRUPT("lexicon block index does not match its data");
    ix->post = post->data;
    ix->post_len = post->len;
    ix->norms = norms->data;
    ix->avgdl = ix->n_chunks ? (double)ix->total_tokens / (double)ix->n_chunks : 1.0;
    if (ix->avgdl <= 0)
        ix->avgdl = 1.0;
    return 0;
}

/* The [start, end) bytes of lexicon block i, or -1. */
static int lex_block(const struct sage_index *ix, uint64_t i, const uint8_t **p,
                     const uint8_t **end)
{
    uint64_t a = sage_le64(ix->blk_offs + 8 * i), b = sage_le64(ix->blk_offs + 8 * (i + 1));
    if (a > b || b > ix->blk_data_len)
        return -1;
    *p = ix->blk_data + a;
    *end = ix->blk_data + b;
    return 0;
}

struct lex_entry {
    char term[SAGE_TERM_MAX * 4 + 1];
    size_t len;
    uint64_t df, off, plen;
};

/* Decodes the next entry of a block into e (e holds the previous term). */
static int lex_next(const uint8_t **p, const uint8_t *end, struct lex_entry *e)
{
    uint64_t pre, suf;
    if (sage_varint_get(p, end, &pre) < 0 || sage_varint_get(p, end, &suf) < 0 ||
        pre > e->len || suf > sizeof(e->term) - 1 - pre || suf > (uint64_t)(end - *p))
        return -1;
    memcpy(e->term + pre, *p, suf);
    *p += suf;
    e->len = pre + suf;
    e->term[e->len] = '\0';
    if (sage_varint_get(p, end, &e->df) < 0 || sage_varint_get(p, end, &e->off) < 0 ||
        sage_varint_get(p, end, &e->plen) < 0)
        return -1;
    return 0;
}

static int cmp_term(const char *a, size_t al, const char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al > bl) - (al < bl);
}

int sage_index_lookup(const struct sage_index *ix, const char *term, size_t len,
                      struct sage_term_info *ti, struct sage_err *err)
{
    const uint8_t *p, *end;
    struct lex_entry e;
    uint64_t lo = 0, hi = ix->n_blocks;     /* last block whose first term <= term */
    if (ix->n_blocks == 0)
        return 0;
    while (hi - lo > 1) {
        uint64_t mid = lo + (hi - lo) / 2;
        e.len = 0;
        if (lex_block(ix, mid, &p, &end) < 0 || lex_next(&p, end, &e) < 0)
            return CORRUPT("lexicon block %llu is damaged", (unsigned long long)mid);
        if (cmp_term(e.term, e.len, term, len) <= 0)
            lo = mid;
        else
            hi = mid;
    }
    if (lex_block(ix, lo, &p, &end) < 0)
        return CORRUPT("lexicon block %llu is damaged", (unsigned long long)lo);
    e.len = 0;
    for (uint32_t i = 0; i < ix->block_terms && p < end; i++) {
        if (lex_next(&p, end, &e) < 0)
            return CORRUPT("lexicon block %llu is damaged", (unsigned long long)lo);
        int c = cmp_term(e.term, e.len, term, len);
        if (c == 0) {
            if (e.df == 0 || e.df > ix->n_chunks || e.off > ix->post_len ||
                e.plen > ix->post_len - e.off)
                return CORRUPT("lexicon entry for '%s' points outside the postings", e.term);
            ti->df = (uint32_t)e.df;
            ti->off = e.off;
            ti->len = e.plen;
            return 1;
        }
        if (c > 0)
            break;
    }
    return 0;
}

/* ---- postings cursors ---- */

struct cursor {
    const uint8_t *skip, *data;
    uint64_t data_len;
    uint32_t n_blocks, df;
    uint32_t blk;           /* block of docs[] */
    uint32_t n, i;          /* entries in docs[], position */
    uint32_t doc;           /* current chunk, NO_DOC at the end */
    double idf, ub, weight; /* weight: times the term occurs in the query */
    int required;           /* every hit has this term */
    uint32_t docs[BLOCK], tfs[BLOCK];
};

struct scorer {
    const struct sage_index *ix;
    double k1, b;
    int corrupt;
};

static inline double term_score(const struct scorer *s, const struct cursor *c, double tf,
                                double len)
{
    double norm = s->k1 * (1.0 - s->b + s->b * len / s->ix->avgdl);
    return c->weight * c->idf * tf * (s->k1 + 1.0) / (tf + norm);
}

static uint32_t blk_last(const struct cursor *c, uint32_t b) { return sage_le32(c->skip + 16 * (size_t)b); }
static uint32_t blk_maxtf(const struct cursor *c, uint32_t b) { return sage_le32(c->skip + 16 * (size_t)b + 8); }
static uint32_t blk_minlen(const struct cursor *c, uint32_t b) { return sage_le32(c->skip + 16 * (size_t)b + 12); }

static int decode_block(struct scorer *s, struct cursor *c, uint32_t b)
{
    uint32_t off = sage_le32(c->skip + 16 * (size_t)b + 4);
    uint32_t n = b + 1 < c->n_blocks ? BLOCK : c->df - BLOCK * (c->n_blocks - 1);
    uint32_t base = b ? blk_last(c, b - 1) : NO_DOC;
    if (off > c->data_len || c->data_len - off < 2)
        goto bad;
    unsigned gb = c->data[off], tb = c->data[off + 1];
    size_t gl = sage_bitpack_len(n, gb), tl = sage_bitpack_len(n, tb);
    if (gb > 32 || tb > 32 || gl + tl > c->data_len - off - 2)
        goto bad;
    sage_bitunpack(c->data + off + 2, n, gb, c->docs);
    sage_bitunpack(c->data + off + 2 + gl, n, tb, c->tfs);
    uint64_t prev = base;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t d = prev == NO_DOC ? c->docs[i] : prev + 1 + c->docs[i];
        if (d >= s->ix->n_chunks || c->tfs[i] == UINT32_MAX)
            goto bad;
        c->docs[i] = (uint32_t)d;
        c->tfs[i] += 1;
        prev = d;
    }
    if (c->docs[n - 1] != blk_last(c, b))
        goto bad;
    c->blk = b;
    c->n = n;
    c->i = 0;
    c->doc = c->docs[0];
    return 0;
bad:
    s->corrupt = 1;
    c->doc = NO_DOC;
    return -1;
}

static double block_bound(const struct scorer *s, const struct cursor *c, uint32_t b)
{
    return term_score(s, c, blk_maxtf(c, b), blk_minlen(c, b));
}

static int cursor_init(struct scorer *s, struct cursor *c, const struct sage_term_info *ti,
                       double weight)
{
    const uint8_t *p = s->ix->post + ti->off;
    memset(c, 0, sizeof(*c));
    if (ti->len < 4)
        return -1;
    c->n_blocks = sage_le32(p);
    c->df = ti->df;
    if (c->n_blocks != ((uint64_t)ti->df + BLOCK - 1) / BLOCK || (ti->len - 4) / 16 < c->n_blocks)
        return -1;
    c->skip = p + 4;
    c->data = c->skip + 16 * (size_t)c->n_blocks;
    c->data_len = ti->len - 4 - 16 * (uint64_t)c->n_blocks;
    double n = (double)s->ix->n_chunks, df = ti->df;
    c->idf = log(1.0 + (n - df + 0.5) / (df + 0.5));
    c->weight = weight;
    for (uint32_t b = 0; b < c->n_blocks; b++) {
        if (b && blk_last(c, b) <= blk_last(c, b - 1))
            return -1;
        double ub = block_bound(s, c, b);
        c->ub = ub > c->ub ? ub : c->ub;
    }
    return decode_block(s, c, 0);
}

static void cursor_next(struct scorer *s, struct cursor *c)
{
    if (c->doc == NO_DOC)
        return;
    if (++c->i < c->n) {
        c->doc = c->docs[c->i];
    } else if (c->blk + 1 < c->n_blocks) {
        decode_block(s, c, c->blk + 1);
    } else {
        c->doc = NO_DOC;
    }
}

/* The first block at or after the current one whose last chunk >= target. */
static uint32_t shallow(const struct cursor *c, uint32_t target)
{
    uint32_t b = c->blk;
    while (b < c->n_blocks && blk_last(c, b) < target)
        b++;
    return b;
}

static void cursor_seek(struct scorer *s, struct cursor *c, uint32_t target)
{
    if (c->doc == NO_DOC || c->doc >= target)
        return;
    uint32_t b = shallow(c, target);
    if (b == c->n_blocks) {
        c->doc = NO_DOC;
        return;
    }
    if (b != c->blk && decode_block(s, c, b) < 0)
        return;
    while (c->i < c->n && c->docs[c->i] < target)
        c->i++;
    c->doc = c->i < c->n ? c->docs[c->i] : NO_DOC;   /* cannot run out: last >= target */
}

int sage_index_term_bits(const struct sage_index *ix, const struct sage_term_info *ti,
                         uint8_t *bits, struct sage_err *err)
{
    struct scorer s = { ix, 1.2, 0.75, 0 };
    struct cursor *c = sage_malloc(sizeof(*c));
    int rc = 0;
    if (!c)
        return sage_err_set(err, SAGE_ENOMEM, "cannot allocate a postings cursor");
    if (cursor_init(&s, c, ti, 1.0) < 0) {
        rc = CORRUPT("postings are damaged");
        goto out;
    }
    for (; c->doc != NO_DOC; cursor_next(&s, c))
        bits[c->doc >> 3] |= (uint8_t)(1u << (c->doc & 7));
    if (s.corrupt)
        rc = CORRUPT("postings are damaged");
out:
    sage_free(c);
    return rc;
}

static double cursor_score(const struct scorer *s, const struct cursor *c)
{
    uint32_t len = sage_le32(s->ix->norms + 4 * (size_t)c->doc);
    return term_score(s, c, c->tfs[c->i], len);
}

/* ---- top-k heap (min-heap on score; among equal scores the larger chunk id
 * is "smaller", so earlier chunks win ties) ---- */

static int worse(const struct sage_hit *a, const struct sage_hit *b)
{
    return a->score < b->score || (a->score == b->score && a->doc > b->doc);
}

static void heap_push(struct sage_hit *h, size_t *n, size_t k, struct sage_hit x)
{
    if (*n == k) {
        if (!worse(&h[0], &x))
            return;
        size_t i = 0;       /* replace the root, sift down */
        for (;;) {
            size_t l = 2 * i + 1, r = l + 1, m = i;
            const struct sage_hit *cur = m == i ? &x : &h[m];
            if (l < *n && worse(&h[l], cur))
                m = l, cur = &h[l];
            if (r < *n && worse(&h[r], cur))
                m = r;
            if (m == i)
                break;
            h[i] = h[m];
            i = m;
        }
        h[i] = x;
        return;
    }
    size_t i = (*n)++;
    while (i > 0 && worse(&x, &h[(i - 1) / 2])) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = x;
}

static int cmp_hits_desc(const void *a, const void *b)
{
    const struct sage_hit *x = a, *y = b;
    return worse(x, y) ? 1 : worse(y, x) ? -1 : 0;
}

/* Orders the cursors by current chunk. Insertion sort: there are few, and
 * after a step only the ones that moved are out of place (qsort was a third
 * of the time of a query). */
static void sort_by_doc(struct cursor **c, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        struct cursor *x = c[i];
        size_t j = i;
        while (j > 0 && c[j - 1]->doc > x->doc) {
            c[j] = c[j - 1];
            j--;
        }
        c[j] = x;
    }
}

/* Block bound, at chunk d, of a cursor: of the block holding d or the first
 * after it; *next lowers to that block's last chunk. 0 past the end. */
static double bound_at(const struct scorer *s, const struct cursor *c, uint32_t d, uint32_t *next)
{
    if (c->doc == NO_DOC)
        return 0;
    uint32_t b = shallow(c, d);
    if (b == c->n_blocks)
        return 0;
    uint32_t last = blk_last(c, b);
    *next = last < *next ? last : *next;
    return block_bound(s, c, b);
}

/* Top k when some terms are required: the required cursors leapfrog to a
 * chunk they all hold (the rarest leads; seeks go through the skip tables,
 * so the postings of frequent terms are mostly never decoded), the block
 * bounds of every term at that chunk are checked against the k-th score,
 * and only then are the optional terms seeked and the chunk scored. */
static void conjunctive(struct scorer *s, struct cursor **req, size_t nr, struct cursor **opt,
                        size_t no, const struct sage_bm25_opts *o, struct sage_results *out,
                        size_t *nh)
{
    size_t k = o->k;
    for (size_t i = 1; i < nr; i++)     /* rarest first */
        for (size_t j = i; j > 0 && req[j - 1]->df > req[j]->df; j--) {
            struct cursor *t = req[j];
            req[j] = req[j - 1];
            req[j - 1] = t;
        }
    while (!s->corrupt) {
        uint32_t d = req[0]->doc;
        size_t i = 1;
        while (d != NO_DOC && i < nr) {
            cursor_seek(s, req[i], d);
            if (req[i]->doc == d) {
                i++;
                continue;
            }
            d = req[i]->doc;        /* NO_DOC ends it */
            if (d != NO_DOC) {
                cursor_seek(s, req[0], d);
                d = req[0]->doc;
            }
            i = 1;
        }
        if (d == NO_DOC)
            break;
        double theta = (!o->exhaustive && k && *nh == k) ? out->hits[0].score : -1.0;
        if (theta >= 0) {
            double bm = 0;
            uint32_t next = NO_DOC;
            for (size_t j = 0; j < nr; j++)
                bm += bound_at(s, req[j], d, &next);
            for (size_t j = 0; j < no; j++)
                bm += bound_at(s, opt[j], d, &next);
            if (bm <= theta) {
                out->total_exact = 0;
                cursor_seek(s, req[0], next == NO_DOC || next <= d ? d + 1 : next + 1);
                continue;
            }
        }
        if (!o->filter || o->filter(o->filter_ctx, d)) {
            double score = 0;
            for (size_t j = 0; j < nr; j++)
                score += cursor_score(s, req[j]);
            for (size_t j = 0; j < no; j++) {
                cursor_seek(s, opt[j], d);
                if (opt[j]->doc == d)
                    score += cursor_score(s, opt[j]);
            }
            out->total++;
            if (k)
                heap_push(out->hits, nh, k, (struct sage_hit){ d, score });
        }
        cursor_next(s, req[0]);
    }
}

int sage_bm25_search(const struct sage_index *ix, struct sage_tokenizer *tk, const char *q,
                     const struct sage_bm25_opts *o, struct sage_results *out,
                     struct sage_err *err)
{
    int rc = 0;
    struct sage_qterms *qc = sage_calloc(1, sizeof(*qc));
    struct cursor *cur = NULL, **live = NULL;
    struct scorer s = { ix, o->k1 > 0 ? o->k1 : 1.2, o->b > 0 ? o->b : 0.75, 0 };
    size_t n = 0, nh = 0, k = o->k;
    memset(out, 0, sizeof(*out));
    out->total_exact = 1;
    if (!qc) {
        rc = sage_err_set(err, SAGE_ENOMEM, "cannot allocate query");
        goto out;
    }
    if (sage_qterms_collect(tk, q, strlen(q), qc) < 0) {
        rc = sage_err_set(err, SAGE_ENOMEM, "cannot tokenize query");
        goto out;
    }
    size_t n_req = o->required ? o->required->n : 0, cap = qc->n + n_req;
    cur = sage_calloc(cap ? cap : 1, sizeof(*cur));
    live = sage_calloc(cap ? cap : 1, sizeof(*live));
    out->hits = sage_calloc(k ? k : 1, sizeof(*out->hits));
    if (!cur || !live || !out->hits) {
        rc = sage_err_set(err, SAGE_ENOMEM, "cannot allocate query cursors");
        goto out;
    }
    for (size_t i = 0; i < qc->n; i++) {
        struct sage_term_info ti;
        int found = sage_index_lookup(ix, qc->term[i], qc->len[i], &ti, err);
        if (found < 0) {
            rc = found;
            goto out;
        }
        if (!found)
            continue;
        if (cursor_init(&s, &cur[n], &ti, qc->weight[i]) < 0) {
            rc = CORRUPT("postings of '%s' are damaged", qc->term[i]);
            goto out;
        }
        cur[n].required = o->required &&
                          sage_qterms_find(o->required, qc->term[i], qc->len[i]) >= 0;
        live[n] = &cur[n];
        n++;
    }
    /* required terms: a missing one means no hit; one the query text lacks
     * still filters, with no weight */
    size_t nr = 0;
    for (size_t i = 0; i < n_req; i++) {
        const struct sage_qterms *r = o->required;
        struct sage_term_info ti;
        int found = sage_index_lookup(ix, r->term[i], r->len[i], &ti, err);
        if (found < 0) {
            rc = found;
            goto out;
        }
        if (!found) {
            n = 0;      /* nothing can match */
            break;
        }
        if (sage_qterms_find(qc, r->term[i], r->len[i]) >= 0)
            continue;
        if (cursor_init(&s, &cur[n], &ti, 0.0) < 0) {
            rc = CORRUPT("postings of '%s' are damaged", r->term[i]);
            goto out;
        }
        cur[n].required = 1;
        live[n] = &cur[n];
        n++;
    }
    for (size_t i = 0; i < n; i++)
        nr += live[i]->required;
    if (n_req && (n == 0 || nr == 0)) {
        n = 0;
    } else if (nr) {
        /* required cursors first, then the optional ones */
        struct cursor **opt = sage_calloc(n, sizeof(*opt));
        size_t a = 0, no = 0;
        if (!opt) {
            rc = sage_err_set(err, SAGE_ENOMEM, "cannot allocate query cursors");
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            if (live[i]->required)
                live[a++] = live[i];
            else
                opt[no++] = live[i];
        }
        conjunctive(&s, live, nr, opt, no, o, out, &nh);
        sage_free(opt);
        n = 0;
    }
    for (;;) {
        /* drop finished cursors, order the rest by current chunk */
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (live[i]->doc != NO_DOC)
                live[m++] = live[i];
        n = m;
        if (n == 0 || s.corrupt)
            break;
        sort_by_doc(live, n);
        double theta = (!o->exhaustive && k && nh == k) ? out->hits[0].score : -1.0;
        if (k == 0 && !o->exhaustive)
            theta = -1.0;
        /* pivot: first cursor where the sum of upper bounds exceeds theta */
        double acc = 0;
        size_t p = 0;
        while (p < n && (acc += live[p]->ub) <= theta)
            p++;
        if (p == n) {
            out->total_exact = 0;   /* nothing left can enter the top k */
            break;
        }
        uint32_t pivot = live[p]->doc;
        while (p + 1 < n && live[p + 1]->doc == pivot)
            p++;
        if (theta >= 0) {
            /* block-max check: the bounds of the blocks holding the pivot */
            double bm = 0;
            uint32_t next = NO_DOC;
            for (size_t i = 0; i <= p; i++) {
                uint32_t b = shallow(live[i], pivot);
                if (b == live[i]->n_blocks)
                    continue;   /* all its postings lie before the pivot */
                bm += block_bound(&s, live[i], b);
                uint32_t last = blk_last(live[i], b);
                next = last < next ? last : next;
            }
            if (bm <= theta) {
                out->total_exact = 0;
                uint64_t nd = (uint64_t)next + 1;
                if (p + 1 < n && live[p + 1]->doc < nd)
                    nd = live[p + 1]->doc;
                if (nd <= pivot)
                    nd = (uint64_t)pivot + 1;
                for (size_t i = 0; i <= p; i++)
                    cursor_seek(&s, live[i], nd >= NO_DOC ? NO_DOC : (uint32_t)nd);
                continue;
            }
        }
        if (live[0]->doc == pivot) {
            double score = 0;
            int keep = !o->filter || o->filter(o->filter_ctx, pivot);
            for (size_t i = 0; i < n && live[i]->doc == pivot; i++) {
                if (keep)
                    score += cursor_score(&s, live[i]);
                cursor_next(&s, live[i]);
            }
            if (keep) {
                out->total++;
                if (k)
                    heap_push(out->hits, &nh, k, (struct sage_hit){ pivot, score });
            }
        } else {
            /* move the cursors before the pivot up to it */
            if (theta >= 0)
                out->total_exact = 0;
            for (size_t i = 0; i < p && live[i]->doc < pivot; i++)
                cursor_seek(&s, live[i], pivot);
        }
    }
    if (s.corrupt) {
        rc = CORRUPT("postings are damaged");
        goto out;
    }
    qsort(out->hits, nh, sizeof(*out->hits), cmp_hits_desc);
    out->n_hits = nh;
out:
    if (rc < 0)
        sage_results_release(out);
    sage_free(live);
    sage_free(cur);
    sage_free(qc);
    return rc;
}
