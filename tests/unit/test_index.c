/* The inverted index end to end: sage_ixbuild writes NORMS, POSTINGS and
 * LEXICON, sage_index reads them back. BM25 top-k by block-max WAND and by
 * exhaustive scoring must both equal a brute-force reference computed here
 * from the same tokenizer; lexicon lookups at block boundaries; empty
 * indexes; single-byte damage with checksums forged to match (0 or
 * -SAGE_ECORRUPT, never a crash); the chunk store; varints and bit packing. */
#include "util.h"

#include <jansson.h>
#include <math.h>

#include "chunkstore.h"
#include "index.h"
#include "ixbuild.h"
#include "mpjson.h"
#include "reader.h"
#include "scan.h"
#include "tokenize.h"
#include "varint.h"
#include "writer.h"

#define BIG_CHUNKS 3000
#define BIG_VOCAB 500
#define N_QUERIES 200
#define REF_SLOTS 16384     /* reference term table, power of two */

static const struct sage_tokenizer_opts english = {
    .stemmer = "english", .stopwords = sage_stopwords_english, .n_stopwords = 33
};

/* ---- deterministic randomness ---- */

static uint32_t rnd(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(*s >> 32);
}

/* ---- writing and opening indexes ---- */

/* Writes an index of texts[0, n) to path: the inverted index, and with
 * store, a chunk store whose record i is {"chunk": i, "text": texts[i]}. */
static void write_index(const char *path, const struct sage_tokenizer_opts *tok,
                        char *const *texts, size_t n, int store)
{
    struct sage_writer_opts wo = { .flags = SAGE_WRITE_NO_SYNC | SAGE_WRITE_NO_SHA256 };
    struct sage_writer *w = NULL;
    struct sage_ixbuild *b = NULL;
    struct sage_chunkstore_builder cs;
    struct sage_err err = { 0 };
    int rc = sage_ixbuild_new(tok, NULL, &b, &err);
    if (rc == 0)
        rc = sage_chunkstore_builder_init(&cs, 3, &err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        uint32_t nt = UINT32_MAX;
        rc = sage_ixbuild_add(b, texts[i], strlen(texts[i]), &nt, &err);
        assert_true(rc < 0 || nt != UINT32_MAX);
        if (rc == 0 && store) {
            json_t *j = json_pack("{s:I, s:s}", "chunk", (json_int_t)i, "text", texts[i]);
            uint8_t *rec = NULL;
            size_t len = 0;
            assert_non_null(j);
            rc = sage_mpjson_encode(j, &rec, &len, &err);
            if (rc == 0)
                rc = sage_chunkstore_add(&cs, rec, len, &err);
            sage_free(rec);
            json_decref(j);
        }
    }
    if (rc == 0)
        assert_int_equal(sage_ixbuild_n_chunks(b), n);
    if (rc == 0)
        rc = sage_writer_open(path, &wo, &w, &err);
    if (rc == 0)
        rc = sage_ixbuild_write(b, w, &err);
    if (rc == 0 && store)
        rc = sage_chunkstore_write(&cs, w, &err);
    if (rc == 0) {
        sage_writer_set_counts(w, 0, n);
        rc = sage_writer_commit(w, NULL, &err);
    }
    if (rc != 0)
        fail_msg("write '%s': %s", path, sage_err_msg(&err, rc));
    sage_writer_free(w);
    sage_chunkstore_builder_release(&cs);
    sage_ixbuild_free(b);
}

struct opened {
    struct sage_reader *r;
    struct sage_index ix;
    struct sage_tokenizer *tk;
};

static void open_index(const char *path, const struct sage_tokenizer_opts *tok,
                       struct opened *o)
{
    struct sage_err err = { 0 };
    int rc = sage_reader_open(path, SAGE_OPEN_VERIFY, &o->r, &err);
    if (rc == 0)
        rc = sage_index_open(&o->ix, o->r, &err);
    if (rc == 0)
        rc = sage_tokenizer_new(tok, &o->tk, &err);
    if (rc != 0)
        fail_msg("open '%s': %s", path, sage_err_msg(&err, rc));
}

static void close_index(struct opened *o)
{
    sage_tokenizer_free(o->tk);
    sage_reader_close(o->r);
    memset(o, 0, sizeof(*o));
}

/* ---- the brute-force reference ---- */

struct ref_term {
    char s[SAGE_TERM_MAX * 4 + 1];
    size_t len;
    uint32_t *chunks, *tfs;     /* postings, ascending chunk */
    size_t df, cap;
};

struct ref {
    struct ref_term *terms;
    size_t n_terms, cap_terms;
    uint32_t slots[REF_SLOTS];  /* term index + 1 */
    uint32_t *len;              /* tokens per chunk */
    size_t n_chunks;
    uint64_t total;
    uint32_t cur;               /* chunk being added */
};

static uint64_t fnv(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

/* The term's index; with add, inserting it when new; -1 when absent. */
static long ref_find(struct ref *r, const char *s, size_t n, int add)
{
    size_t h = (size_t)fnv(s, n) & (REF_SLOTS - 1);
    while (r->slots[h]) {
        struct ref_term *t = &r->terms[r->slots[h] - 1];
        if (t->len == n && memcmp(t->s, s, n) == 0)
            return (long)r->slots[h] - 1;
        h = (h + 1) & (REF_SLOTS - 1);
    }
    if (!add)
        return -1;
    assert_true(r->n_terms < REF_SLOTS / 2);
    if (r->n_terms == r->cap_terms) {
        r->cap_terms = r->cap_terms ? 2 * r->cap_terms : 256;
        r->terms = realloc(r->terms, r->cap_terms * sizeof(*r->terms));
        assert_non_null(r->terms);
    }
    struct ref_term *t = &r->terms[r->n_terms];
    memset(t, 0, sizeof(*t));
    assert_true(n < sizeof(t->s));
    memcpy(t->s, s, n);
    t->len = n;
    r->slots[h] = (uint32_t)++r->n_terms;
    return (long)r->n_terms - 1;
}

static int ref_token(void *ctx, const struct sage_token *tok)
{
    struct ref *r = ctx;
    long ti = ref_find(r, tok->term, tok->term_len, 1);     /* may move r->terms */
    struct ref_term *t = &r->terms[ti];
    r->len[r->cur]++;
    if (t->df && t->chunks[t->df - 1] == r->cur) {
        t->tfs[t->df - 1]++;
        return 0;
    }
    if (t->df == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 8;
        t->chunks = realloc(t->chunks, t->cap * sizeof(*t->chunks));
        t->tfs = realloc(t->tfs, t->cap * sizeof(*t->tfs));
        assert_true(t->chunks && t->tfs);
    }
    t->chunks[t->df] = r->cur;
    t->tfs[t->df++] = 1;
    return 0;
}

static struct ref *ref_build(const struct sage_tokenizer_opts *tok, char *const *texts, size_t n)
{
    struct ref *r = calloc(1, sizeof(*r));
    struct sage_tokenizer *tk = NULL;
    assert_non_null(r);
    r->len = calloc(n ? n : 1, sizeof(*r->len));
    assert_non_null(r->len);
    r->n_chunks = n;
    assert_int_equal(sage_tokenizer_new(tok, &tk, NULL), 0);
    for (size_t i = 0; i < n; i++) {
        r->cur = (uint32_t)i;
        assert_int_equal(sage_tokenize(tk, texts[i], strlen(texts[i]), ref_token, r), 0);
        r->total += r->len[i];
    }
    sage_tokenizer_free(tk);
    return r;
}

static void ref_free(struct ref *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_terms; i++) {
        free(r->terms[i].chunks);
        free(r->terms[i].tfs);
    }
    free(r->terms);
    free(r->len);
    free(r);
}

/* A query as sage_bm25_search reads it: distinct terms in order of first
 * appearance (at most SAGE_QUERY_TERMS_MAX), each with its multiplicity. */
struct ref_query {
    char terms[SAGE_QUERY_TERMS_MAX][SAGE_TERM_MAX * 4 + 1];
    size_t lens[SAGE_QUERY_TERMS_MAX];
    uint32_t weight[SAGE_QUERY_TERMS_MAX];
    size_t n;
};

static int ref_qtoken(void *ctx, const struct sage_token *t)
{
    struct ref_query *q = ctx;
    for (size_t i = 0; i < q->n; i++)
        if (q->lens[i] == t->term_len && memcmp(q->terms[i], t->term, t->term_len) == 0) {
            q->weight[i]++;
            return 0;
        }
    if (q->n < SAGE_QUERY_TERMS_MAX) {
        memcpy(q->terms[q->n], t->term, t->term_len + 1);
        q->lens[q->n] = t->term_len;
        q->weight[q->n++] = 1;
    }
    return 0;
}

struct ref_result {
    struct sage_hit *hits;      /* every match, best first (score desc, chunk asc) */
    size_t n;
    double *score;              /* per chunk; NAN when it does not match */
};

static int cmp_ref_hits(const void *a, const void *b)
{
    const struct sage_hit *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? 1 : -1;
    return (x->doc > y->doc) - (x->doc < y->doc);
}

/* Scores every chunk for q with the BM25 of index.h (the same expression, so
 * a term's score is bit-identical); with even_only, odd chunks never match. */
static void ref_search(const struct ref *r, struct sage_tokenizer *tk, const char *q, double k1,
                       double b, int even_only, struct ref_result *out)
{
    struct ref_query qq;
    memset(&qq, 0, sizeof(qq));
    assert_int_equal(sage_tokenize(tk, q, strlen(q), ref_qtoken, &qq), 0);
    out->score = malloc((r->n_chunks ? r->n_chunks : 1) * sizeof(*out->score));
    out->hits = malloc((r->n_chunks ? r->n_chunks : 1) * sizeof(*out->hits));
    assert_true(out->score && out->hits);
    out->n = 0;
    for (size_t i = 0; i < r->n_chunks; i++)
        out->score[i] = NAN;
    double avgdl = r->n_chunks ? (double)r->total / (double)r->n_chunks : 1.0;
    if (avgdl <= 0)
        avgdl = 1.0;
    for (size_t i = 0; i < qq.n; i++) {
        long ti = ref_find((struct ref *)r, qq.terms[i], qq.lens[i], 0);
        if (ti < 0)
            continue;
        const struct ref_term *t = &r->terms[ti];
        double n = (double)r->n_chunks, df = (double)t->df;
        double idf = log(1.0 + (n - df + 0.5) / (df + 0.5));
        double w = qq.weight[i];
        for (size_t j = 0; j < t->df; j++) {
            uint32_t d = t->chunks[j];
            if (even_only && d % 2)
                continue;
            double tf = t->tfs[j], len = r->len[d];
            double norm = k1 * (1.0 - b + b * len / avgdl);
            double s = w * idf * tf * (k1 + 1.0) / (tf + norm);
            out->score[d] = isnan(out->score[d]) ? s : out->score[d] + s;
        }
    }
    for (size_t i = 0; i < r->n_chunks; i++)
        if (!isnan(out->score[i]))
            out->hits[out->n++] = (struct sage_hit){ i, out->score[i] };
    qsort(out->hits, out->n, sizeof(*out->hits), cmp_ref_hits);
}

static void ref_result_release(struct ref_result *res)
{
    free(res->hits);
    free(res->score);
    memset(res, 0, sizeof(*res));
}

static int close_enough(double a, double b, double rel)
{
    double m = fabs(a) > fabs(b) ? fabs(a) : fabs(b);
    return fabs(a - b) <= rel * (m > 1.0 ? m : 1.0);
}

/* The top k of got must be the reference's: same chunks in the same order,
 * scores within 1e-9 relative. The index adds a chunk's term scores in
 * whatever order its cursors sort, so two chunks whose reference scores
 * agree to 1e-12 (equal in exact arithmetic) may come out in either order. */
static void check_topk(const char *what, const char *q, const struct sage_results *got,
                       const struct ref_result *ref, size_t k, size_t n_chunks)
{
    size_t want = ref->n < k ? ref->n : k;
    if (got->n_hits != want)
        fail_msg("%s '%s': %zu hits, want %zu", what, q, got->n_hits, want);
    for (size_t i = 0; i < want; i++) {
        const struct sage_hit *g = &got->hits[i], *w = &ref->hits[i];
        if (g->doc >= n_chunks || isnan(ref->score[g->doc]))
            fail_msg("%s '%s': hit %zu is chunk %llu, which does not match", what, q, i,
                     (unsigned long long)g->doc);
        if (!close_enough(g->score, w->score, 1e-9))
            fail_msg("%s '%s': hit %zu scores %.17g, want %.17g", what, q, i, g->score,
                     w->score);
        if (g->doc != w->doc && !close_enough(ref->score[g->doc], w->score, 1e-12))
            fail_msg("%s '%s': hit %zu is chunk %llu (%.17g), want %llu (%.17g)", what, q, i,
                     (unsigned long long)g->doc, ref->score[g->doc],
                     (unsigned long long)w->doc, w->score);
        for (size_t j = 0; j < i; j++)
            if (got->hits[j].doc == g->doc)
                fail_msg("%s '%s': chunk %llu listed twice", what, q,
                         (unsigned long long)g->doc);
        if (i && (got->hits[i - 1].score < g->score ||
                  (got->hits[i - 1].score == g->score && got->hits[i - 1].doc > g->doc)))
            fail_msg("%s '%s': hits %zu and %zu out of order", what, q, i - 1, i);
    }
}

/* ---- the big corpus ---- */

struct big {
    char **texts;
    char *words[BIG_VOCAB];
    double cdf[BIG_VOCAB];
    char *queries[N_QUERIES];
    struct ref *ref;
    char path[PATH_MAX];
    struct opened o;
};

struct fixture {
    struct ut_scratch s;
    struct big *big;
};

static const char *const syl[] = { "ka", "lo", "mi", "nu", "pe", "ra", "si", "to",
                                   "vu", "ze", "bra", "qua", "fen", "dor", "lix", "mop" };

static uint32_t zipf(const struct big *g, uint64_t *seed)
{
    double u = (double)rnd(seed) / 4294967296.0 * g->cdf[BIG_VOCAB - 1];
    uint32_t lo = 0, hi = BIG_VOCAB - 1;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (g->cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static char *xstrdup(const char *s)
{
    char *p = strdup(s);
    assert_non_null(p);
    return p;
}

/* 3000 chunks of 5 to 200 words from a Zipf vocabulary of 500 (the most
 * frequent words are in nearly every chunk: many 128-posting blocks), with
 * stop words, capitals, punctuation and a few accented words; 200 queries of
 * 1 to 5 words, frequent and rare, repeated, unknown or stop words. */
static struct big *big_get(struct fixture *f)
{
    if (f->big)
        return f->big;
    struct big *g = calloc(1, sizeof(*g));
    uint64_t seed = 42;
    char buf[64];
    assert_non_null(g);
    for (uint32_t i = 0; i < BIG_VOCAB; i++) {
        if (i == 3 || i == 20 || i == 77)
            g->words[i] = xstrdup(i == 3 ? "the" : i == 20 ? "and" : "with");
        else if (i == 5 || i == 150)
            g->words[i] = xstrdup(i == 5 ? "café" : "Ångström");
        else {
            snprintf(buf, sizeof(buf), "%s%s%s", syl[i % 16], syl[(i / 16) % 16],
                     i >= 256 ? syl[(i / 7) % 16] : "");
            g->words[i] = xstrdup(buf);
        }
        g->cdf[i] = (i ? g->cdf[i - 1] : 0) + 1.0 / (i + 1.0);
    }
    g->texts = calloc(BIG_CHUNKS, sizeof(*g->texts));
    assert_non_null(g->texts);
    for (size_t c = 0; c < BIG_CHUNKS; c++) {
        uint32_t n = 5 + rnd(&seed) % 196;
        char *t = malloc((size_t)n * 16 + 1);
        size_t o = 0;
        assert_non_null(t);
        for (uint32_t j = 0; j < n; j++) {
            uint32_t x = rnd(&seed);
            const char *w = g->words[zipf(g, &seed)];
            const char *sep = (x & 15) == 0 ? ", " : (x & 31) == 1 ? ". " : (x & 63) == 2 ? "\n" : " ";
            size_t wl = strlen(w);
            memcpy(t + o, w, wl);
            if ((x & 0x700) == 0x100)
                t[o] = (char)(t[o] >= 'a' && t[o] <= 'z' ? t[o] - 32 : t[o]);
            o += wl;
            o += (size_t)snprintf(t + o, 4, "%s", sep);
        }
        t[o] = '\0';
        g->texts[c] = t;
    }
    for (size_t q = 0; q < N_QUERIES; q++) {
        uint32_t n = 1 + rnd(&seed) % 5;
        size_t o = 0;
        char qb[512];
        qb[0] = '\0';
        for (uint32_t j = 0; j < n; j++) {
            uint32_t x = rnd(&seed) % 16;
            const char *w = x < 7 ? g->words[zipf(g, &seed)] :
                            x < 14 ? g->words[rnd(&seed) % BIG_VOCAB] :
                            x == 14 ? "xyzzy" : g->words[3];
            o += (size_t)snprintf(qb + o, sizeof(qb) - o, "%s%s", j ? " " : "", w);
            if (rnd(&seed) % 8 == 0)    /* the same word again: weight 2 */
                o += (size_t)snprintf(qb + o, sizeof(qb) - o, " %s", w);
        }
        g->queries[q] = xstrdup(qb);
    }
    g->ref = ref_build(&english, g->texts, BIG_CHUNKS);
    ut_path(g->path, sizeof(g->path), f->s.dir, "big.sage");
    write_index(g->path, &english, g->texts, BIG_CHUNKS, 0);
    open_index(g->path, &english, &g->o);
    f->big = g;
    return g;
}

static void big_free(struct big *g)
{
    if (!g)
        return;
    close_index(&g->o);
    ref_free(g->ref);
    for (size_t i = 0; i < BIG_CHUNKS; i++)
        free(g->texts[i]);
    free(g->texts);
    for (size_t i = 0; i < BIG_VOCAB; i++)
        free(g->words[i]);
    for (size_t i = 0; i < N_QUERIES; i++)
        free(g->queries[i]);
    free(g);
}

static int group_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    void *s = NULL;
    if (!f || ut_scratch_setup(&s) < 0) {
        free(f);
        return -1;
    }
    f->s = *(struct ut_scratch *)s;
    free(s);
    *state = f;
    return 0;
}

static int group_teardown(void **state)
{
    struct fixture *f = *state;
    struct ut_scratch *s = malloc(sizeof(*s));
    if (!s)
        return -1;
    *s = f->s;
    big_free(f->big);
    free(f);
    *state = s;
    return ut_scratch_teardown(state);
}

/* Runs sage_bm25_search and fails the test on error. */
static void search(const struct opened *o, const char *q, const struct sage_bm25_opts *bo,
                   struct sage_results *res)
{
    struct sage_err err = { 0 };
    int rc = sage_bm25_search(&o->ix, o->tk, q, bo, res, &err);
    if (rc != 0)
        fail_msg("search '%s': %s", q, sage_err_msg(&err, rc));
}

static int even_only(void *ctx, uint32_t chunk)
{
    (*(uint64_t *)ctx)++;
    return chunk % 2 == 0;
}

/* ---- BM25 against the reference ---- */

static void test_index_header(void **state)
{
    struct big *g = big_get(*state);
    assert_int_equal(sage_n_stopwords_english, 33);
    assert_int_equal(g->o.ix.n_chunks, BIG_CHUNKS);
    assert_int_equal(g->o.ix.n_terms, g->ref->n_terms);
    assert_int_equal(g->o.ix.total_tokens, g->ref->total);
    assert_int_equal(g->o.ix.block_terms, SAGE_LEXICON_BLOCK);
    assert_int_equal(g->o.ix.n_blocks, (g->ref->n_terms + 15) / 16);
    for (size_t i = 0; i < BIG_CHUNKS; i++)
        assert_int_equal(sage_le32(g->o.ix.norms + 4 * i), g->ref->len[i]);
    /* the corpus does what it is for: long postings, several blocks */
    size_t max_df = 0;
    for (size_t i = 0; i < g->ref->n_terms; i++)
        max_df = g->ref->terms[i].df > max_df ? g->ref->terms[i].df : max_df;
    assert_true(max_df > 20 * SAGE_POSTINGS_BLOCK);
    assert_true(g->ref->n_terms > 400);
    /* stop words are not indexed */
    assert_true(ref_find(g->ref, "the", 3, 0) < 0);
}

static void test_bm25_matches_reference(void **state)
{
    struct big *g = big_get(*state);
    size_t pruned = 0;
    for (size_t q = 0; q < N_QUERIES; q++) {
        const char *qs = g->queries[q];
        struct ref_result ref;
        struct sage_results wand, ex;
        ref_search(g->ref, g->o.tk, qs, 1.2, 0.75, 0, &ref);

        struct sage_bm25_opts o = { .k = 10 };
        search(&g->o, qs, &o, &wand);
        check_topk("wand", qs, &wand, &ref, 10, BIG_CHUNKS);
        assert_true(wand.total <= ref.n);
        if (wand.total_exact)
            assert_int_equal(wand.total, ref.n);
        else
            pruned++;

        o.exhaustive = 1;
        search(&g->o, qs, &o, &ex);
        check_topk("exhaustive", qs, &ex, &ref, 10, BIG_CHUNKS);
        assert_int_equal(ex.total, ref.n);
        assert_int_equal(ex.total_exact, 1);
        /* the two modes agree bit for bit */
        assert_int_equal(ex.n_hits, wand.n_hits);
        for (size_t i = 0; i < ex.n_hits; i++) {
            assert_int_equal(ex.hits[i].doc, wand.hits[i].doc);
            assert_true(ex.hits[i].score == wand.hits[i].score);
        }
        sage_results_release(&wand);
        sage_results_release(&ex);
        assert_null(ex.hits);
        ref_result_release(&ref);
    }
    /* block-max WAND did skip work on this corpus */
    assert_true(pruned > N_QUERIES / 4);
}

static void test_bm25_k_variants(void **state)
{
    struct big *g = big_get(*state);
    static const size_t ks[] = { 1, 2, 1000, 5000 };
    for (size_t q = 0; q < N_QUERIES; q += 4) {
        const char *qs = g->queries[q];
        struct ref_result ref;
        ref_search(g->ref, g->o.tk, qs, 1.2, 0.75, 0, &ref);
        for (size_t ki = 0; ki < sizeof(ks) / sizeof(*ks); ki++)
            for (int ex = 0; ex < 2; ex++) {
                struct sage_bm25_opts o = { .k = ks[ki], .exhaustive = ex };
                struct sage_results res;
                search(&g->o, qs, &o, &res);
                check_topk(ex ? "exhaustive" : "wand", qs, &res, &ref, ks[ki], BIG_CHUNKS);
                if ((ex || res.total_exact) && res.total != ref.n)
                    fail_msg("%s k=%zu '%s': total %llu (exact %d), want %zu",
                             ex ? "exhaustive" : "wand", ks[ki], qs,
                             (unsigned long long)res.total, res.total_exact, ref.n);
                if (ks[ki] == 5000) /* more than there are chunks: every match */
                    assert_int_equal(res.n_hits, ref.n);
                sage_results_release(&res);
            }
        /* k = 0: the total only, exact in both modes */
        for (int ex = 0; ex < 2; ex++) {
            struct sage_bm25_opts o = { .k = 0, .exhaustive = ex };
            struct sage_results res;
            search(&g->o, qs, &o, &res);
            assert_int_equal(res.n_hits, 0);
            assert_int_equal(res.total, ref.n);
            assert_int_equal(res.total_exact, 1);
            sage_results_release(&res);
        }
        ref_result_release(&ref);
    }
}

static void test_bm25_custom_k1_b(void **state)
{
    struct big *g = big_get(*state);
    static const double params[][2] = { { 2.0, 0.3 }, { 0.5, 1.0 }, { 1.2, 0.75 } };
    for (size_t q = 1; q < N_QUERIES; q += 4)
        for (size_t p = 0; p < 3; p++) {
            const char *qs = g->queries[q];
            struct ref_result ref;
            ref_search(g->ref, g->o.tk, qs, params[p][0], params[p][1], 0, &ref);
            for (int ex = 0; ex < 2; ex++) {
                struct sage_bm25_opts o = { .k = 10, .k1 = params[p][0], .b = params[p][1],
                                            .exhaustive = ex };
                struct sage_results res;
                search(&g->o, qs, &o, &res);
                check_topk(ex ? "exhaustive" : "wand", qs, &res, &ref, 10, BIG_CHUNKS);
                sage_results_release(&res);
            }
            ref_result_release(&ref);
        }
    /* different parameters do rank differently on this corpus */
    struct ref_result a, b;
    ref_search(g->ref, g->o.tk, "kalo lomi", 2.0, 0.3, 0, &a);
    ref_search(g->ref, g->o.tk, "kalo lomi", 0.5, 1.0, 0, &b);
    assert_true(a.n > 0 && a.n == b.n);
    assert_true(a.hits[0].score != b.hits[0].score);
    ref_result_release(&a);
    ref_result_release(&b);
}

static void test_bm25_filter(void **state)
{
    struct big *g = big_get(*state);
    for (size_t q = 2; q < N_QUERIES; q += 2) {
        const char *qs = g->queries[q];
        struct ref_result ref;
        ref_search(g->ref, g->o.tk, qs, 1.2, 0.75, 1, &ref);
        for (int ex = 0; ex < 2; ex++) {
            uint64_t calls = 0;
            struct sage_bm25_opts o = { .k = 10, .exhaustive = ex, .filter = even_only,
                                        .filter_ctx = &calls };
            struct sage_results res;
            search(&g->o, qs, &o, &res);
            for (size_t i = 0; i < res.n_hits; i++)
                assert_int_equal(res.hits[i].doc % 2, 0);
            check_topk(ex ? "filtered exhaustive" : "filtered wand", qs, &res, &ref, 10,
                       BIG_CHUNKS);
            if (ex) {
                assert_int_equal(res.total, ref.n);
                assert_int_equal(res.total_exact, 1);
            }
            assert_true(res.total <= ref.n);
            assert_true(calls >= res.total);
            sage_results_release(&res);
        }
        ref_result_release(&ref);
    }
}

/* Required terms (+word): the leapfrogging search against the reference
 * restricted to the chunks holding every required term; the first one or
 * two terms of each query are required, and once a frequent term the query
 * text lacks (a weight of zero: it filters, it does not score). */
static void test_bm25_required(void **state)
{
    struct big *g = big_get(*state);
    size_t pruned = 0, with_hits = 0;
    uint8_t *hold = malloc(BIG_CHUNKS);
    assert_non_null(hold);
    for (size_t q = 0; q < N_QUERIES; q++) {
        const char *qs = g->queries[q];
        struct sage_qterms all, req;
        memset(&req, 0, sizeof(req));
        assert_int_equal(sage_qterms_collect(g->o.tk, qs, strlen(qs), &all), 0);
        size_t want = 1 + q % 2;
        for (size_t i = 0; i < all.n && req.n < want; i++) {
            memcpy(req.term[req.n], all.term[i], all.len[i] + 1);
            req.len[req.n] = all.len[i];
            req.weight[req.n++] = 1;
        }
        if (q % 7 == 0 && req.n < SAGE_QUERY_TERMS_MAX &&
            sage_qterms_collect(g->o.tk, g->words[3], strlen(g->words[3]), &all) == 0 &&
            all.n == 1 && sage_qterms_find(&req, all.term[0], all.len[0]) < 0) {
            memcpy(req.term[req.n], all.term[0], all.len[0] + 1);
            req.len[req.n] = all.len[0];
            req.weight[req.n++] = 1;
        }
        /* the reference: chunks holding every required term, scored as usual
         * (a chunk with only weight-zero terms scores 0) */
        struct ref_result ref;
        ref_search(g->ref, g->o.tk, qs, 1.2, 0.75, 0, &ref);
        memset(hold, 0, BIG_CHUNKS);
        int missing = 0;
        for (size_t i = 0; i < req.n; i++) {
            long ti = ref_find(g->ref, req.term[i], req.len[i], 0);
            if (ti < 0) {
                missing = 1;
                continue;
            }
            for (size_t j = 0; j < g->ref->terms[ti].df; j++)
                hold[g->ref->terms[ti].chunks[j]]++;
        }
        size_t m = 0;
        for (size_t c = 0; c < BIG_CHUNKS; c++) {
            if (missing || hold[c] != req.n) {
                ref.score[c] = NAN;
            } else if (isnan(ref.score[c]) && req.n > 0) {
                ref.score[c] = 0;
            }
            if (!isnan(ref.score[c]))
                ref.hits[m++] = (struct sage_hit){ c, ref.score[c] };
        }
        ref.n = m;
        qsort(ref.hits, ref.n, sizeof(*ref.hits), cmp_ref_hits);
        for (int ex = 0; ex < 2; ex++) {
            struct sage_bm25_opts o = { .k = 10, .exhaustive = ex, .required = &req };
            struct sage_results res;
            search(&g->o, qs, &o, &res);
            check_topk(ex ? "required exhaustive" : "required", qs, &res, &ref, 10, BIG_CHUNKS);
            assert_true(res.total <= ref.n);
            if (ex || res.total_exact)
                assert_int_equal(res.total, ref.n);
            if (!ex && !res.total_exact)
                pruned++;
            with_hits += res.n_hits > 0;
            sage_results_release(&res);
        }
        ref_result_release(&ref);
    }
    free(hold);
    assert_true(with_hits > N_QUERIES / 2);
    assert_true(pruned > N_QUERIES / 10);
}

static int reject_all(void *ctx, uint32_t chunk)
{
    (void)ctx;
    (void)chunk;
    return 0;
}

static void test_bm25_query_shapes(void **state)
{
    struct big *g = big_get(*state);
    struct sage_results res;
    struct sage_bm25_opts o = { .k = 10 };
    /* empty, punctuation only, stop words only, unknown words only */
    static const char *const none[] = { "", "  ,.!", "the and with", "xyzzy plugh", "THE" };
    for (size_t i = 0; i < sizeof(none) / sizeof(*none); i++) {
        search(&g->o, none[i], &o, &res);
        assert_int_equal(res.n_hits, 0);
        assert_int_equal(res.total, 0);
        assert_int_equal(res.total_exact, 1);
        sage_results_release(&res);
    }
    /* a filter that rejects everything */
    o.filter = reject_all;
    search(&g->o, "kalo lomi", &o, &res);
    assert_int_equal(res.n_hits, 0);
    assert_int_equal(res.total, 0);
    sage_results_release(&res);
    o.filter = NULL;

    /* normalization applies to queries: case, accents */
    struct ref_result ref;
    ref_search(g->ref, g->o.tk, "cafe angstrom", 1.2, 0.75, 0, &ref);
    assert_true(ref.n > 0);
    search(&g->o, "CAFÉ ÅNGSTRÖM", &o, &res);
    check_topk("normalized", "CAFÉ ÅNGSTRÖM", &res, &ref, 10, BIG_CHUNKS);
    sage_results_release(&res);
    ref_result_release(&ref);

    /* a repeated term counts once more each time: "x x x" scores 3 times "x" */
    struct sage_results one, three;
    o.k = 20;
    o.exhaustive = 1;
    search(&g->o, "lomi", &o, &one);
    search(&g->o, "lomi LOMI lomi", &o, &three);
    assert_int_equal(one.n_hits, three.n_hits);
    assert_true(one.n_hits > 0);
    for (size_t i = 0; i < one.n_hits; i++) {
        assert_int_equal(one.hits[i].doc, three.hits[i].doc);
        assert_true(close_enough(3 * one.hits[i].score, three.hits[i].score, 1e-12));
    }
    sage_results_release(&one);
    sage_results_release(&three);

    /* more distinct terms than SAGE_QUERY_TERMS_MAX: the first 32 count */
    char q[4096];
    size_t n = 0;
    for (size_t i = 0; i < 40; i++)
        n += (size_t)snprintf(q + n, sizeof(q) - n, "%s ", g->words[(i * 37 + 11) % BIG_VOCAB]);
    ref_search(g->ref, g->o.tk, q, 1.2, 0.75, 0, &ref);
    for (int ex = 0; ex < 2; ex++) {
        o.k = 10;
        o.exhaustive = ex;
        search(&g->o, q, &o, &res);
        check_topk("40 terms", q, &res, &ref, 10, BIG_CHUNKS);
        sage_results_release(&res);
    }
    ref_result_release(&ref);
}

/* ---- lexicon ---- */

static void test_lookup_every_term(void **state)
{
    struct big *g = big_get(*state);
    struct sage_err err = { 0 };
    struct sage_term_info ti;
    uint64_t sum = 0;
    for (size_t i = 0; i < g->ref->n_terms; i++) {
        const struct ref_term *t = &g->ref->terms[i];
        int rc = sage_index_lookup(&g->o.ix, t->s, t->len, &ti, &err);
        if (rc != 1)
            fail_msg("lookup '%s': %d", t->s, rc);
        assert_int_equal(ti.df, t->df);
        assert_true(ti.off <= g->o.ix.post_len && ti.len <= g->o.ix.post_len - ti.off);
        assert_int_equal(sage_le32(g->o.ix.post + ti.off),
                         (t->df + SAGE_POSTINGS_BLOCK - 1) / SAGE_POSTINGS_BLOCK);
        sum += ti.len;
    }
    /* the postings lists tile the section */
    assert_int_equal(sum, g->o.ix.post_len);
    /* every term's chunks, as a bitmap */
    size_t n_bytes = BIG_CHUNKS / 8 + 1;
    uint8_t *bits = malloc(n_bytes), *want = malloc(n_bytes);
    assert_true(bits && want);
    for (size_t i = 0; i < g->ref->n_terms; i++) {
        const struct ref_term *t = &g->ref->terms[i];
        assert_int_equal(sage_index_lookup(&g->o.ix, t->s, t->len, &ti, &err), 1);
        memset(bits, 0, n_bytes);
        memset(want, 0, n_bytes);
        for (size_t j = 0; j < t->df; j++)
            want[t->chunks[j] / 8] |= (uint8_t)(1u << (t->chunks[j] % 8));
        assert_int_equal(sage_index_term_bits(&g->o.ix, &ti, bits, &err), 0);
        if (memcmp(bits, want, n_bytes) != 0)
            fail_msg("term_bits '%s' disagrees with the reference", t->s);
    }
    free(bits);
    free(want);
    static const char *const missing[] = { "", "0", "a", "xyzzy", "kal", "kaloo", "zzzzzzzz",
                                           "\xff\xff", "the" };
    for (size_t i = 0; i < sizeof(missing) / sizeof(*missing); i++)
        assert_int_equal(sage_index_lookup(&g->o.ix, missing[i], strlen(missing[i]), &ti, &err),
                         0);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* An index over n distinct words (no stemmer), word i in chunks i and n;
 * every word is found with its df, and strings between and around them are
 * not. */
static void check_vocab(struct fixture *f, size_t n)
{
    char path[PATH_MAX], name[64];
    char *words[40], *texts[41];
    char all[2048] = "";
    size_t o = 0;
    struct opened ix;
    struct sage_term_info ti;
    struct sage_err err = { 0 };
    assert_true(n <= 40);
    for (size_t i = 0; i < n; i++) {
        /* shared prefixes of several lengths exercise the front coding */
        char w[32];
        snprintf(w, sizeof(w), "%s%zuz", i % 3 == 0 ? "term" : i % 3 == 1 ? "termite" : "ter",
                 i * 7);
        words[i] = xstrdup(w);
        texts[i] = words[i];
        o += (size_t)snprintf(all + o, sizeof(all) - o, "%s ", w);
    }
    texts[n] = all;
    snprintf(name, sizeof(name), "vocab%zu.sage", n);
    ut_path(path, sizeof(path), f->s.dir, name);
    write_index(path, NULL, texts, n + 1, 0);
    open_index(path, NULL, &ix);
    assert_int_equal(ix.ix.n_terms, n);
    assert_int_equal(ix.ix.n_blocks, (n + 15) / 16);
    qsort(words, n, sizeof(*words), cmp_str);
    for (size_t i = 0; i < n; i++) {
        char between[64];
        int rc = sage_index_lookup(&ix.ix, words[i], strlen(words[i]), &ti, &err);
        if (rc != 1)
            fail_msg("vocabulary of %zu: lookup '%s': %d", n, words[i], rc);
        assert_int_equal(ti.df, 2);
        /* just after words[i] and before words[i + 1] */
        snprintf(between, sizeof(between), "%s0", words[i]);
        assert_int_equal(sage_index_lookup(&ix.ix, between, strlen(between), &ti, &err), 0);
        /* a proper prefix sorts before it */
        assert_int_equal(sage_index_lookup(&ix.ix, words[i], strlen(words[i]) - 1, &ti, &err),
                         0);
        struct sage_results res;
        struct sage_bm25_opts bo = { .k = 10 };
        search(&ix, words[i], &bo, &res);
        assert_int_equal(res.n_hits, 2);
        assert_int_equal(res.total, 2);
        sage_results_release(&res);
    }
    assert_int_equal(sage_index_lookup(&ix.ix, "a", 1, &ti, &err), 0);
    assert_int_equal(sage_index_lookup(&ix.ix, "zz", 2, &ti, &err), 0);
    assert_int_equal(sage_index_lookup(&ix.ix, "", 0, &ti, &err), 0);
    close_index(&ix);
    for (size_t i = 0; i < n; i++)
        free(words[i]);
}

static void test_lexicon_block_boundaries(void **state)
{
    static const size_t sizes[] = { 1, 2, 15, 16, 17, 31, 32, 33, 40 };
    for (size_t i = 0; i < sizeof(sizes) / sizeof(*sizes); i++)
        check_vocab(*state, sizes[i]);
}

/* ---- degenerate indexes ---- */

static void expect_nothing(const struct opened *o, const char *q)
{
    for (size_t k = 0; k < 12; k += 10)
        for (int ex = 0; ex < 2; ex++) {
            struct sage_bm25_opts bo = { .k = k, .exhaustive = ex };
            struct sage_results res;
            search(o, q, &bo, &res);
            assert_int_equal(res.n_hits, 0);
            assert_int_equal(res.total, 0);
            assert_int_equal(res.total_exact, 1);
            sage_results_release(&res);
        }
}

static void test_empty_index(void **state)
{
    struct fixture *f = *state;
    char path[PATH_MAX];
    struct opened o;
    struct sage_term_info ti;
    ut_path(path, sizeof(path), f->s.dir, "empty.sage");
    write_index(path, &english, NULL, 0, 1);
    open_index(path, &english, &o);
    assert_int_equal(o.ix.n_chunks, 0);
    assert_int_equal(o.ix.n_terms, 0);
    assert_int_equal(o.ix.n_blocks, 0);
    assert_int_equal(sage_index_lookup(&o.ix, "x", 1, &ti, NULL), 0);
    expect_nothing(&o, "anything at all");
    expect_nothing(&o, "");
    close_index(&o);
}

static void test_chunks_without_tokens(void **state)
{
    struct fixture *f = *state;
    char path[PATH_MAX];
    struct opened o;
    char *texts[] = { "", "!!! ... ---", "The and OF", "\xff\xfe", "  \n\t " };
    ut_path(path, sizeof(path), f->s.dir, "notokens.sage");
    write_index(path, &english, texts, 5, 0);
    open_index(path, &english, &o);
    assert_int_equal(o.ix.n_chunks, 5);
    assert_int_equal(o.ix.n_terms, 0);
    assert_int_equal(o.ix.total_tokens, 0);
    assert_true(o.ix.avgdl > 0);
    expect_nothing(&o, "the");
    expect_nothing(&o, "anything");
    expect_nothing(&o, "");
    close_index(&o);

    /* empty chunks among others: their length 0 does not disturb scoring */
    char *mixed[] = { "", "alpha beta", "", "alpha", "!!!" };
    ut_path(path, sizeof(path), f->s.dir, "mixed.sage");
    write_index(path, &english, mixed, 5, 0);
    open_index(path, &english, &o);
    struct ref *r = ref_build(&english, mixed, 5);
    struct ref_result ref;
    struct sage_results res;
    struct sage_bm25_opts bo = { .k = 10 };
    ref_search(r, o.tk, "alpha beta", 1.2, 0.75, 0, &ref);
    search(&o, "alpha beta", &bo, &res);
    check_topk("mixed", "alpha beta", &res, &ref, 10, 5);
    assert_int_equal(res.n_hits, 2);
    assert_int_equal(res.hits[0].doc, 1);
    sage_results_release(&res);
    ref_result_release(&ref);
    ref_free(r);
    close_index(&o);
}

/* Copies an index's sections into a new file, changing them on the way:
 * drop one kind, or give one a different codec or different bytes. */
struct remix {
    uint32_t drop;              /* kind left out, 0: none */
    uint32_t zstd;              /* kind written with the zstd codec, 0: none */
    uint32_t change;            /* kind whose bytes change, 0: none */
    size_t new_len;             /* its new length (grown with zero bytes) */
};

static int remix(const char *from, const char *to, const struct remix *m)
{
    struct sage_reader *r = NULL;
    struct sage_writer *w = NULL;
    struct sage_writer_opts wo = { .flags = SAGE_WRITE_NO_SYNC | SAGE_WRITE_NO_SHA256 };
    struct sage_err err = { 0 };
    assert_int_equal(sage_reader_open(from, 0, &r, &err), 0);
    assert_int_equal(sage_writer_open(to, &wo, &w, &err), 0);
    const struct sage_section *s;
    for (uint32_t i = 0; (s = sage_reader_section(r, i)) != NULL; i++) {
        if (s->kind == m->drop)
            continue;
        const uint8_t *p = s->data;
        size_t len = s->len;
        uint8_t *tmp = NULL;
        if (s->kind == m->change) {
            tmp = calloc(1, m->new_len + 1);
            assert_non_null(tmp);
            memcpy(tmp, s->data, len < m->new_len ? len : m->new_len);
            p = tmp;
            len = m->new_len;
        }
        assert_int_equal(sage_writer_add(w, s->kind,
                                         s->kind == m->zstd ? SAGE_CODEC_ZSTD : SAGE_CODEC_RAW,
                                         p, len, &err), 0);
        free(tmp);
    }
    assert_int_equal(sage_writer_commit(w, NULL, &err), 0);
    sage_writer_free(w);
    sage_reader_close(r);

    struct sage_index ix;
    struct sage_chunkstore cs;
    assert_int_equal(sage_reader_open(to, SAGE_OPEN_VERIFY, &r, &err), 0);
    int rc = sage_index_open(&ix, r, &err);
    if (m->drop == SAGE_SECTION_CHUNK_TEXT)
        rc = sage_chunkstore_open(&cs, r, &err);
    sage_reader_close(r);
    return rc;
}

static void test_index_open_refusals(void **state)
{
    struct fixture *f = *state;
    char good[PATH_MAX], bad[PATH_MAX];
    char *texts[] = { "one two three", "two three four", "three four five" };
    ut_path(good, sizeof(good), f->s.dir, "small.sage");
    ut_path(bad, sizeof(bad), f->s.dir, "remixed.sage");
    write_index(good, NULL, texts, 3, 1);
    /* a format 1.0 file: no inverted index, no chunk text */
    struct remix m = { .drop = SAGE_SECTION_LEXICON };
    assert_int_equal(remix(good, bad, &m), -SAGE_ENOTFOUND);
    m = (struct remix){ .drop = SAGE_SECTION_POSTINGS };
    assert_int_equal(remix(good, bad, &m), -SAGE_ENOTFOUND);
    m = (struct remix){ .drop = SAGE_SECTION_NORMS };
    assert_int_equal(remix(good, bad, &m), -SAGE_ENOTFOUND);
    m = (struct remix){ .drop = SAGE_SECTION_CHUNK_TEXT };
    assert_int_equal(remix(good, bad, &m), -SAGE_ENOTFOUND);
    /* nothing changed: accepted */
    m = (struct remix){ 0 };
    assert_int_equal(remix(good, bad, &m), 0);
    /* compressed sections are not what the reader maps in place */
    m = (struct remix){ .zstd = SAGE_SECTION_LEXICON };
    assert_int_equal(remix(good, bad, &m), -SAGE_ECORRUPT);
    m = (struct remix){ .zstd = SAGE_SECTION_POSTINGS };
    assert_int_equal(remix(good, bad, &m), -SAGE_ECORRUPT);
    m = (struct remix){ .zstd = SAGE_SECTION_NORMS };
    assert_int_equal(remix(good, bad, &m), -SAGE_ECORRUPT);
    /* sizes that disagree with the lexicon header */
    m = (struct remix){ .change = SAGE_SECTION_NORMS, .new_len = 16 };
    assert_int_equal(remix(good, bad, &m), -SAGE_ECORRUPT);
    m = (struct remix){ .change = SAGE_SECTION_NORMS, .new_len = 8 };
    assert_int_equal(remix(good, bad, &m), -SAGE_ECORRUPT);
    m = (struct remix){ .change = SAGE_SECTION_LEXICON, .new_len = 55 };
    assert_int_equal(remix(good, bad, &m), -SAGE_ECORRUPT);
    m = (struct remix){ .change = SAGE_SECTION_LEXICON, .new_len = 0 };
    assert_int_equal(remix(good, bad, &m), -SAGE_ECORRUPT);
    m = (struct remix){ .change = SAGE_SECTION_LEXICON, .new_len = 4096 };
    assert_int_equal(remix(good, bad, &m), -SAGE_ECORRUPT);
}

/* Writes one file of the given sections (kind, bytes, length). */
static void write_sections(const char *path, const uint32_t *kinds, const uint8_t *const *data,
                           const size_t *lens, size_t n)
{
    struct sage_writer *w = NULL;
    struct sage_writer_opts wo = { .flags = SAGE_WRITE_NO_SYNC | SAGE_WRITE_NO_SHA256 };
    assert_int_equal(sage_writer_open(path, &wo, &w, NULL), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(sage_writer_add(w, kinds[i], SAGE_CODEC_RAW, data[i], lens[i], NULL), 0);
    assert_int_equal(sage_writer_commit(w, NULL, NULL), 0);
    sage_writer_free(w);
}

static void test_header_count_overflow(void **state)
{
    struct fixture *f = *state;
    char path[PATH_MAX];
    struct sage_reader *r = NULL;
    ut_path(path, sizeof(path), f->s.dir, "overflow.sage");

    /* a chunk store claiming 2^64 - 1 records in blocks of 2^32 - 1 and no
     * block: n + per_block - 1 wraps to a count that matched, and reading
     * the last record indexed the block table at 2^35 */
    uint8_t cs_head[32] = { 0 };
    sage_put64(cs_head, UINT64_MAX);
    sage_put32(cs_head + 8, UINT32_MAX);
    sage_put64(cs_head + 16, 0);
    /* a lexicon of 2^64 - 1 terms in no block, over no chunk */
    uint8_t lex[56] = { 0 };
    sage_put64(lex, UINT64_MAX);
    sage_put32(lex + 24, 16);
    uint32_t kinds[] = { SAGE_SECTION_CHUNK_TEXT, SAGE_SECTION_NORMS, SAGE_SECTION_POSTINGS,
                         SAGE_SECTION_LEXICON };
    const uint8_t *data[] = { cs_head, lex, lex, lex };
    size_t lens[] = { sizeof(cs_head), 0, 0, sizeof(lex) };
    write_sections(path, kinds, data, lens, 4);
    assert_int_equal(sage_reader_open(path, SAGE_OPEN_VERIFY, &r, NULL), 0);
    struct sage_chunkstore cs;
    struct sage_index ix;
    json_t *rec = NULL;
    if (sage_chunkstore_open(&cs, r, NULL) == 0)
        (void)sage_chunkstore_get(&cs, UINT64_MAX - 1, &rec, NULL);     /* crashed */
    assert_int_equal(sage_chunkstore_open(&cs, r, NULL), -SAGE_ECORRUPT);
    assert_int_equal(sage_index_open(&ix, r, NULL), -SAGE_ECORRUPT);
    sage_reader_close(r);

    /* 17 records in blocks of 16 are two blocks, not one */
    sage_put64(cs_head, 17);
    sage_put32(cs_head + 8, 16);
    sage_put64(cs_head + 16, 1);
    write_sections(path, kinds, data, lens, 4);
    assert_int_equal(sage_reader_open(path, SAGE_OPEN_VERIFY, &r, NULL), 0);
    assert_int_equal(sage_chunkstore_open(&cs, r, NULL), -SAGE_ECORRUPT);
    sage_reader_close(r);
}

/* ---- damage with forged checksums ---- */

struct damage_stats {
    size_t runs, corrupt, ok;
};

/* Everything a reader of img may do must end in 0 or -SAGE_ECORRUPT: look
 * up every word, and run each query in four modes (block-max WAND, k = 1,
 * exhaustive, filtered). */
static void exercise(const uint8_t *img, size_t size, struct sage_tokenizer *tk,
                     char *const *words, size_t n_words, const char *const *queries,
                     size_t n_q, struct damage_stats *st)
{
    struct sage_reader *r = NULL;
    struct sage_index ix;
    struct sage_err err = { 0 };
    int rc = sage_reader_open_mem(img, size, SAGE_OPEN_VERIFY, &r, &err);
    if (rc != 0)
        fail_msg("forged image refused at open: %s", sage_err_msg(&err, rc));
    st->runs++;
    rc = sage_index_open(&ix, r, &err);
    if (rc != 0) {
        if (rc != -SAGE_ECORRUPT)
            fail_msg("index open: %d %s", rc, sage_err_msg(&err, rc));
        st->corrupt++;
        sage_reader_close(r);
        return;
    }
    int bad = 0;
    for (size_t i = 0; i < n_words; i++) {
        struct sage_term_info ti;
        rc = sage_index_lookup(&ix, words[i], strlen(words[i]), &ti, &err);
        if (rc < 0 && rc != -SAGE_ECORRUPT)
            fail_msg("lookup '%s': %d", words[i], rc);
        if (rc == 1 && (ti.df == 0 || ti.df > ix.n_chunks || ti.off > ix.post_len ||
                        ti.len > ix.post_len - ti.off))
            fail_msg("lookup '%s' returned an entry outside the postings", words[i]);
        bad |= rc < 0;
        if (rc == 1) {
            uint8_t *bits = calloc(ix.n_chunks / 8 + 1, 1);
            assert_non_null(bits);
            rc = sage_index_term_bits(&ix, &ti, bits, &err);
            if (rc != 0 && rc != -SAGE_ECORRUPT)
                fail_msg("term_bits '%s': %d", words[i], rc);
            bad |= rc < 0;
            free(bits);
        }
    }
    for (size_t q = 0; q < n_q; q++)
        for (int mode = 0; mode < 4; mode++) {
            uint64_t calls = 0;
            struct sage_bm25_opts o = { .k = mode == 1 ? 1 : 10, .exhaustive = mode == 2,
                                        .filter = mode == 3 ? even_only : NULL,
                                        .filter_ctx = &calls };
            struct sage_results res;
            rc = sage_bm25_search(&ix, tk, queries[q], &o, &res, &err);
            if (rc != 0 && rc != -SAGE_ECORRUPT)
                fail_msg("search '%s': %d %s", queries[q], rc, sage_err_msg(&err, rc));
            if (rc == 0) {
                assert_true(res.n_hits <= o.k);
                assert_true(res.total >= res.n_hits);
                for (size_t i = 0; i < res.n_hits; i++)
                    assert_true(res.hits[i].doc < ix.n_chunks);
            } else {
                assert_null(res.hits);
                assert_int_equal(res.n_hits, 0);
            }
            bad |= rc < 0;
            sage_results_release(&res);
        }
    if (bad)
        st->corrupt++;
    else
        st->ok++;
    sage_reader_close(r);
}

/* Forges the checksums of img after a change inside section entry ei. */
static void forge(uint8_t *img, size_t size, uint32_t ei)
{
    uint8_t *e = ut_entry(img, ei);
    uint64_t off = sage_le64(e + SAGE_SEC_OFF), len = sage_le64(e + SAGE_SEC_LEN);
    assert_true(off <= size && len <= size - off);
    sage_put64(e + SAGE_SEC_CHECKSUM, XXH3_64bits(img + off, (size_t)len));
    ut_fix_all(img, size);
}

#define DMG_CHUNKS 300
#define DMG_WORDS 64

static void test_corruption_forged(void **state)
{
    struct fixture *f = *state;
    char path[PATH_MAX];
    char *texts[DMG_CHUNKS], *words[DMG_WORDS];
    struct sage_term_info infos[DMG_WORDS];
    uint64_t seed = 7;
    /* 300 chunks over 64 words, skewed: postings of several blocks, 4 lexicon
     * blocks */
    for (uint32_t x = 0; x < DMG_WORDS; x++) {
        char w[16];
        snprintf(w, sizeof(w), "%s%s", syl[x % 16], syl[x / 16]);
        words[x] = xstrdup(w);
    }
    for (size_t i = 0; i < DMG_CHUNKS; i++) {
        char t[1024];
        size_t o = 0, n = 3 + rnd(&seed) % 40;
        for (size_t j = 0; j < n; j++) {
            uint32_t x = rnd(&seed) % DMG_WORDS;
            x = j % 2 ? x : (x * x * x) / (DMG_WORDS * DMG_WORDS);
            o += (size_t)snprintf(t + o, sizeof(t) - o, "%s ", words[x]);
        }
        texts[i] = xstrdup(t);
    }
    ut_path(path, sizeof(path), f->s.dir, "damage.sage");
    write_index(path, NULL, texts, DMG_CHUNKS, 0);
    size_t size;
    uint8_t *img = ut_read_file(path, &size);
    struct sage_tokenizer *tk = NULL;
    assert_int_equal(sage_tokenizer_new(NULL, &tk, NULL), 0);
    static const char *const fixed[] = { "kaka", "kaka lomi loka", "kaka loka mika nuka peka",
                                         "zzzz kalo kalo" };
    size_t n_fixed = sizeof(fixed) / sizeof(*fixed);

    /* the pristine image passes; its long lists span blocks */
    struct damage_stats st = { 0 };
    exercise(img, size, tk, words, DMG_WORDS, fixed, n_fixed, &st);
    assert_int_equal(st.ok, 1);
    struct sage_reader *r = NULL;
    struct sage_index ix;
    assert_int_equal(sage_reader_open_mem(img, size, 0, &r, NULL), 0);
    assert_int_equal(sage_index_open(&ix, r, NULL), 0);
    assert_int_equal(ix.n_terms, DMG_WORDS);
    assert_true(ix.n_blocks >= 4);
    for (size_t i = 0; i < DMG_WORDS; i++)
        assert_int_equal(sage_index_lookup(&ix, words[i], strlen(words[i]), &infos[i], NULL), 1);
    assert_true(infos[0].df > 2 * SAGE_POSTINGS_BLOCK);
    uint32_t ent[2];
    uint64_t offs[2], lens[2];
    const struct sage_section *s;
    for (uint32_t i = 0; (s = sage_reader_section(r, i)) != NULL; i++) {
        int which = s->kind == SAGE_SECTION_POSTINGS ? 0 : s->kind == SAGE_SECTION_LEXICON ? 1 : -1;
        if (which >= 0) {
            ent[which] = i;
            offs[which] = s->off;
            lens[which] = s->len;
        }
    }
    sage_reader_close(r);

    static const uint8_t flips[] = { 0x01, 0xff, 0x80, 0x10 };
    for (int which = 0; which < 2; which++) {
        /* every byte of the first 192 (headers, skip tables) with four
         * flips; a stride through the rest, about 800 more positions */
        uint64_t stride = lens[which] / 800 + 1;
        memset(&st, 0, sizeof(st));
        for (uint64_t pos = 0; pos < lens[which]; pos += pos < 192 ? 1 : stride) {
            /* a byte of a term's postings is read by queries for that term,
             * alone and with others (so WAND has cursors to weigh) */
            char q[3][64];
            const char *qs[3] = { q[0], q[1], q[2] };
            const char *const *queries = fixed;
            size_t n_q = n_fixed;
            if (which == 0) {
                size_t t = 0;
                while (t < DMG_WORDS && !(pos >= infos[t].off && pos < infos[t].off + infos[t].len))
                    t++;
                assert_true(t < DMG_WORDS);
                snprintf(q[0], sizeof(q[0]), "%s", words[t]);
                snprintf(q[1], sizeof(q[1]), "%s kaka", words[t]);
                snprintf(q[2], sizeof(q[2]), "loka %s mika %s nuka", words[t], words[t]);
                queries = qs;
                n_q = 3;
            }
            for (size_t fi = 0; fi < (pos < 192 ? 4u : 2u); fi++) {
                uint8_t *b = img + offs[which] + pos;
                *b ^= flips[fi];
                forge(img, size, ent[which]);
                exercise(img, size, tk, words, DMG_WORDS, queries, n_q, &st);
                *b ^= flips[fi];
            }
        }
        forge(img, size, ent[which]);
        /* damage is seen often, and the searches ran on much of it */
        assert_true(st.corrupt > st.runs / 10);
        assert_true(st.ok > 0);
    }
    sage_tokenizer_free(tk);
    free(img);
    for (size_t i = 0; i < DMG_CHUNKS; i++)
        free(texts[i]);
    for (size_t i = 0; i < DMG_WORDS; i++)
        free(words[i]);
}

/* ---- out of memory ---- */

static void test_oom(void **state)
{
    struct fixture *f = *state;
    char path[PATH_MAX];
    char *texts[] = { "alpha beta gamma", "beta gamma delta", "gamma delta alpha alpha" };
    /* with a limit of 1 byte, a run is spilled after each chunk and merged */
    const struct sage_ixbuild_opts spill = { 1, f->s.dir, NULL }, *opts[] = { NULL, &spill };
    ut_path(path, sizeof(path), f->s.dir, "oom.sage");
    /* building: any allocation may fail, cleanly */
    for (long i = 0, k = 0; k < 2; i++) {
        struct sage_ixbuild *b = NULL;
        struct sage_writer *w = NULL;
        struct sage_writer_opts wo = { .flags = SAGE_WRITE_NO_SYNC | SAGE_WRITE_NO_SHA256 };
        ut_oom_arm(i);
        int rc = sage_ixbuild_new(&english, opts[k], &b, NULL);
        for (size_t c = 0; rc == 0 && c < 3; c++)
            rc = sage_ixbuild_add(b, texts[c], strlen(texts[c]), NULL, NULL);
        if (rc == 0)
            rc = sage_writer_open(path, &wo, &w, NULL);
        if (rc == 0)
            rc = sage_ixbuild_write(b, w, NULL);
        if (rc == 0)
            rc = sage_writer_commit(w, NULL, NULL);
        sage_writer_free(w);
        sage_ixbuild_free(b);
        int failed = ut_oom_state()->failed;
        assert_int_equal(ut_oom_disarm(), 0);
        if (!failed) {
            assert_int_equal(rc, 0);
            i = -1;
            k++;
            continue;
        }
        assert_int_equal(rc, -SAGE_ENOMEM);
        assert_true(i < 1000);
    }
    /* searching */
    struct opened o;
    open_index(path, &english, &o);
    for (long i = 0;; i++) {
        struct sage_results res;
        struct sage_bm25_opts bo = { .k = 2 };
        ut_oom_arm(i);
        int rc = sage_bm25_search(&o.ix, o.tk, "alpha delta", &bo, &res, NULL);
        int failed = ut_oom_state()->failed;
        sage_results_release(&res);
        assert_int_equal(ut_oom_disarm(), 0);
        if (!failed) {
            assert_int_equal(rc, 0);
            break;
        }
        assert_int_equal(rc, -SAGE_ENOMEM);
        assert_true(i < 100);
    }
    close_index(&o);
}

/* ---- chunk store ---- */

/* hold: 0 keeps the blocks in memory; else they spill past hold bytes */
static void check_store(struct fixture *f, size_t n, size_t hold)
{
    char path[PATH_MAX], name[64];
    struct sage_chunkstore_builder b;
    struct sage_writer *w = NULL;
    struct sage_writer_opts wo = { .flags = SAGE_WRITE_NO_SYNC | SAGE_WRITE_NO_SHA256 };
    struct sage_err err = { 0 };
    snprintf(name, sizeof(name), "store%zu-%zu.sage", n, hold);
    ut_path(path, sizeof(path), f->s.dir, name);
    assert_int_equal(sage_chunkstore_builder_init(&b, 0, &err), 0);
    if (hold)
        assert_int_equal(sage_chunkstore_builder_spill(&b, f->s.dir, hold, &err), 0);
    for (size_t i = 0; i < n; i++) {
        char text[64];
        uint8_t *rec = NULL;
        size_t len = 0;
        snprintf(text, sizeof(text), "chunk %zu of %zu: é", i, n);
        json_t *j = json_pack("{s:s, s:s?, s:I, s:I}", "text", text, "heading",
                              i % 3 ? "A > B" : NULL, "page", (json_int_t)(i % 7),
                              "doc", (json_int_t)(i / 5));
        assert_non_null(j);
        assert_int_equal(sage_mpjson_encode(j, &rec, &len, &err), 0);
        assert_int_equal(sage_chunkstore_add(&b, rec, len, &err), 0);
        sage_free(rec);
        json_decref(j);
    }
    assert_int_equal(sage_writer_open(path, &wo, &w, &err), 0);
    assert_int_equal(sage_chunkstore_write(&b, w, &err), 0);
    assert_int_equal(sage_writer_commit(w, NULL, &err), 0);
    sage_writer_free(w);
    sage_chunkstore_builder_release(&b);

    struct sage_reader *r = NULL;
    struct sage_chunkstore cs;
    assert_int_equal(sage_reader_open(path, SAGE_OPEN_VERIFY, &r, &err), 0);
    assert_int_equal(sage_chunkstore_open(&cs, r, &err), 0);
    assert_int_equal(cs.n, n);
    assert_int_equal(cs.n_blocks, (n + SAGE_CHUNKS_PER_BLOCK - 1) / SAGE_CHUNKS_PER_BLOCK);
    /* in order, backwards, and every 7th: blocks decode independently */
    for (int pass = 0; pass < 3; pass++)
        for (size_t k = 0; k < n; k += pass == 2 ? 7 : 1) {
            size_t i = pass == 1 ? n - 1 - k : k;
            json_t *got = NULL;
            char text[64];
            int rc = sage_chunkstore_get(&cs, i, &got, &err);
            if (rc != 0)
                fail_msg("get %zu of %zu: %s", i, n, sage_err_msg(&err, rc));
            snprintf(text, sizeof(text), "chunk %zu of %zu: é", i, n);
            assert_string_equal(json_string_value(json_object_get(got, "text")), text);
            assert_int_equal(json_integer_value(json_object_get(got, "page")), i % 7);
            assert_int_equal(json_integer_value(json_object_get(got, "doc")), i / 5);
            if (i % 3)
                assert_string_equal(json_string_value(json_object_get(got, "heading")), "A > B");
            else
                assert_true(json_is_null(json_object_get(got, "heading")));
            json_decref(got);
        }
    static const uint64_t out_of_range[] = { 0, 1, 16, 17, 1000, UINT64_MAX };
    for (size_t i = 0; i < sizeof(out_of_range) / sizeof(*out_of_range); i++) {
        uint64_t id = out_of_range[i] + (out_of_range[i] == UINT64_MAX ? 0 : n);
        json_t *got = (json_t *)&cs;
        assert_int_equal(sage_chunkstore_get(&cs, id, &got, &err), -SAGE_ENOTFOUND);
        assert_null(got);
    }
    sage_reader_close(r);
}

static void test_chunkstore_roundtrip(void **state)
{
    static const size_t sizes[] = { 0, 1, 15, 16, 17, 32, 33, 1000 };
    struct fixture *f = *state;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(*sizes); i++) {
        /* spilling every block, or every few, writes the same bytes */
        char a[PATH_MAX], b[PATH_MAX], name[64];
        check_store(f, sizes[i], 0);
        check_store(f, sizes[i], 1);
        check_store(f, sizes[i], 3000);
        snprintf(name, sizeof(name), "store%zu-0.sage", sizes[i]);
        ut_path(a, sizeof(a), f->s.dir, name);
        for (size_t hold = 1; hold <= 3000; hold += 2999) {
            snprintf(name, sizeof(name), "store%zu-%zu.sage", sizes[i], hold);
            ut_path(b, sizeof(b), f->s.dir, name);
            ut_assert_same_file(a, b);
        }
    }
    /* a directory that cannot hold the spill file is an error */
    struct sage_chunkstore_builder cb;
    struct sage_err err = { 0 };
    assert_int_equal(sage_chunkstore_builder_init(&cb, 0, &err), 0);
    assert_int_equal(sage_chunkstore_builder_spill(&cb, "/nonexistent/dir", 1, &err), -SAGE_EIO);
    assert_non_null(strstr(err.msg, "/nonexistent/dir"));
    sage_chunkstore_builder_release(&cb);
}

static void test_chunkstore_missing(void **state)
{
    struct fixture *f = *state;
    char path[PATH_MAX];
    char *texts[] = { "x" };
    struct sage_reader *r = NULL;
    struct sage_chunkstore cs;
    ut_path(path, sizeof(path), f->s.dir, "nostore.sage");
    write_index(path, NULL, texts, 1, 0);
    assert_int_equal(sage_reader_open(path, 0, &r, NULL), 0);
    assert_int_equal(sage_chunkstore_open(&cs, r, NULL), -SAGE_ENOTFOUND);
    sage_reader_close(r);
}

/* ---- varints and bit packing ---- */

static void test_varint(void **state)
{
    (void)state;
    static const struct { uint64_t v; size_t len; } cases[] = {
        { 0, 1 }, { 1, 1 }, { 127, 1 }, { 128, 2 }, { 255, 2 }, { 16383, 2 }, { 16384, 3 },
        { 2097151, 3 }, { 2097152, 4 }, { UINT32_MAX, 5 }, { (uint64_t)UINT32_MAX + 1, 5 },
        { (1ull << 35) - 1, 5 }, { 1ull << 35, 6 }, { (1ull << 63) - 1, 9 }, { 1ull << 63, 10 },
        { UINT64_MAX, 10 },
    };
    uint8_t buf[10 * 16];
    size_t o = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        uint8_t one[10];
        size_t n = sage_varint_put(one, cases[i].v);
        assert_int_equal(n, cases[i].len);
        for (size_t j = 0; j + 1 < n; j++)
            assert_true(one[j] & 0x80);
        assert_false(one[n - 1] & 0x80);
        /* exact buffer */
        uint8_t *exact = malloc(n);
        assert_non_null(exact);
        memcpy(exact, one, n);
        const uint8_t *p = exact;
        uint64_t v = 12345;
        assert_int_equal(sage_varint_get(&p, exact + n, &v), 0);
        assert_true(v == cases[i].v);
        assert_ptr_equal(p, exact + n);
        /* every truncation fails and reads nothing past its end */
        for (size_t cut = 0; cut < n; cut++) {
            p = exact;
            assert_int_equal(sage_varint_get(&p, exact + cut, &v), -1);
        }
        free(exact);
        memcpy(buf + o, one, n);
        o += n;
    }
    /* a stream of them */
    const uint8_t *p = buf;
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        uint64_t v;
        assert_int_equal(sage_varint_get(&p, buf + o, &v), 0);
        assert_true(v == cases[i].v);
    }
    assert_ptr_equal(p, buf + o);
    uint64_t v;
    assert_int_equal(sage_varint_get(&p, buf + o, &v), -1);
    /* longer than 10 bytes */
    uint8_t longv[12];
    memset(longv, 0x80, sizeof(longv));
    longv[11] = 0x01;
    p = longv;
    assert_int_equal(sage_varint_get(&p, longv + sizeof(longv), &v), -1);
    /* redundant zero continuation groups are still read within 10 bytes */
    uint8_t padded[3] = { 0x85, 0x80, 0x00 };
    p = padded;
    assert_int_equal(sage_varint_get(&p, padded + 3, &v), 0);
    assert_int_equal(v, 5);
}

static void test_bits_for(void **state)
{
    (void)state;
    assert_int_equal(sage_bits_for(0), 0);
    assert_int_equal(sage_bits_for(1), 1);
    assert_int_equal(sage_bits_for(2), 2);
    assert_int_equal(sage_bits_for(3), 2);
    assert_int_equal(sage_bits_for(4), 3);
    assert_int_equal(sage_bits_for(255), 8);
    assert_int_equal(sage_bits_for(256), 9);
    assert_int_equal(sage_bits_for(0x7fffffffu), 31);
    assert_int_equal(sage_bits_for(0x80000000u), 32);
    assert_int_equal(sage_bits_for(UINT32_MAX), 32);
    for (unsigned b = 1; b <= 32; b++) {
        uint32_t lo = 1u << (b - 1), hi = b == 32 ? UINT32_MAX : (1u << b) - 1;
        assert_int_equal(sage_bits_for(lo), b);
        assert_int_equal(sage_bits_for(hi), b);
    }
}

static void test_bitpack_all_widths(void **state)
{
    (void)state;
    static const size_t counts[] = { 0, 1, 2, 3, 7, 8, 9, 31, 127, 128 };
    uint32_t in[128], out[128];
    uint64_t seed = 99;
    for (unsigned bits = 0; bits <= 32; bits++) {
        uint32_t max = bits == 0 ? 0 : bits == 32 ? UINT32_MAX : (1u << bits) - 1;
        for (size_t ci = 0; ci < sizeof(counts) / sizeof(*counts); ci++) {
            size_t n = counts[ci];
            for (size_t i = 0; i < n; i++) {
                uint32_t x = rnd(&seed);
                /* the edges: 0, the maximum, alternating bit patterns */
                in[i] = i % 5 == 0 ? max : i % 5 == 1 ? 0 : i % 5 == 2 ? (0x55555555u & max) :
                        (x & max);
            }
            size_t len = sage_bitpack_len(n, bits);
            assert_int_equal(len, (n * bits + 7) / 8);
            /* exact-size buffers, pre-filled with junk: pack zeroes them */
            uint8_t *p = malloc(len ? len : 1);
            assert_non_null(p);
            memset(p, 0xa5, len ? len : 1);
            sage_bitpack(in, n, bits, p);
            if (len && (n * bits) % 8)  /* unused high bits of the last byte */
                assert_int_equal(p[len - 1] >> ((n * bits) % 8), 0);
            memset(out, 0xcc, sizeof(out));
            sage_bitunpack(p, n, bits, out);
            for (size_t i = 0; i < n; i++)
                if (out[i] != in[i])
                    fail_msg("bits %u n %zu: value %zu is %u, want %u", bits, n, i, out[i],
                             in[i]);
            for (size_t i = n; i < 128; i++)
                assert_int_equal(out[i], 0xccccccccu);
            free(p);
        }
    }
    /* LSB first: 3-bit values 1, 2, 3 are bits 001 010 011 -> 0b11010001, 0b0 */
    uint32_t v[3] = { 1, 2, 3 };
    uint8_t p[2];
    sage_bitpack(v, 3, 3, p);
    assert_int_equal(p[0], 0xd1);
    assert_int_equal(p[1], 0x00);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index_header),
        cmocka_unit_test(test_bm25_matches_reference),
        cmocka_unit_test(test_bm25_k_variants),
        cmocka_unit_test(test_bm25_custom_k1_b),
        cmocka_unit_test(test_bm25_filter),
        cmocka_unit_test(test_bm25_required),
        cmocka_unit_test(test_bm25_query_shapes),
        cmocka_unit_test(test_lookup_every_term),
        cmocka_unit_test(test_lexicon_block_boundaries),
        cmocka_unit_test(test_empty_index),
        cmocka_unit_test(test_chunks_without_tokens),
        cmocka_unit_test(test_index_open_refusals),
        cmocka_unit_test(test_header_count_overflow),
        cmocka_unit_test(test_corruption_forged),
        cmocka_unit_test(test_oom),
        cmocka_unit_test(test_chunkstore_roundtrip),
        cmocka_unit_test(test_chunkstore_missing),
        cmocka_unit_test(test_varint),
        cmocka_unit_test(test_bits_for),
        cmocka_unit_test(test_bitpack_all_widths),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
