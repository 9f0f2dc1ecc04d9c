/* Synthetic corpus generator for scripts/bench/scale-bench.sh: N chunks drawn from
 * a model fitted on a real corpus (scripts/bench/gen-corpus-fit.py writes it;
 * datasets/scale/model.tsv is the one fitted on Debian-docs), and queries whose
 * words co-occur in one generated chunk.
 *   gen_corpus MODEL N SEED OUTDIR [QUERIES]
 * writes, in OUTDIR (which must exist):
 *   corpus/part-NNNN.jsonl  {"id", "title", "text"} a line, 100,000 lines a file;
 *                           each text is at most 1000 bytes, so one document is one
 *                           chunk for sage-indexer (its default --chunk-size)
 *   chunks.tsv              ID+1 TAB "TITLE TEXT", the same chunks for the peers
 *   queries.txt             QUERIES queries (default 500), 1-4 words each
 *   stats.json              what was generated: tokens, bytes, distinct words
 * Every word is drawn independently: the model's K real words by their counts, or
 * with the tail's share a made-up word (a string of consonant-vowel syllables
 * that encodes its rank) whose rank past K follows the model's power law, so the
 * vocabulary grows with N. Titles are runs of chunks with the same words, as in
 * a document's chunks. A query takes the words of a chunk picked at random
 * (stop words left out), as many as a real query has. The output depends only on
 * MODEL, SEED and N, and the chunks of a smaller N are the first chunks of a
 * larger one. Timing anything is left to the script. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "alloc.h"

#define MAX_K 1000000
#define MAX_HIST 10000
#define MAX_N 100000000ull
#define MAX_QUERIES 100000
#define MAX_TEXT 1000           /* sage-indexer's default --chunk-size */
#define PART_LINES 100000
#define MAX_WORD 256

/* A histogram to draw from: cum[i] = count of values <= i. */
struct hist {
    uint64_t cum[MAX_HIST + 1];
    size_t n;
};

struct model {
    size_t k;                   /* real words, ranks 0..k-1 */
    char **words;
    uint8_t *word_len;
    uint8_t *stop;
    uint64_t *count;
    double tail_mass, tail_s, tail_rmax, sep_bytes, chunks_per_title;
    struct hist body, title, query;
    double *prob;               /* Vose's alias table over k + 1 outcomes, */
    uint32_t *alias;            /* the last one the tail */
};

static uint64_t rng_next(uint64_t *s)   /* splitmix64 */
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_unif(uint64_t *s)     /* [0, 1) */
{
    return (double)(rng_next(s) >> 11) * 0x1p-53;
}

static size_t hist_draw(const struct hist *h, uint64_t *s)
{
    uint64_t u = rng_next(s) % h->cum[h->n - 1];
    size_t lo = 0, hi = h->n - 1;       /* first i with cum[i] > u */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (h->cum[mid] > u)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static int hist_add(struct hist *h, long v, unsigned long long c)
{
    if (v < 0 || v >= MAX_HIST)
        return -1;
    if ((size_t)v + 1 > h->n)
        h->n = (size_t)v + 1;
    h->cum[v] += c;
    return 0;
}

static void hist_finish(struct hist *h)
{
    for (size_t i = 1; i < h->n; i++)
        h->cum[i] += h->cum[i - 1];
}

static void model_free(struct model *m)
{
    for (size_t i = 0; m->words && i < m->k; i++)
        sage_free(m->words[i]);
    sage_free(m->words);
    sage_free(m->word_len);
    sage_free(m->stop);
    sage_free(m->count);
    sage_free(m->prob);
    sage_free(m->alias);
}

/* Vose's alias method over the k words' counts and the tail's share. */
static int build_alias(struct model *m)
{
    size_t n = m->k + 1, ns = 0, nl = 0;
    double total = 0;
    uint32_t *small = sage_calloc(n, sizeof(*small)), *large = sage_calloc(n, sizeof(*large));
    double *p = sage_calloc(n, sizeof(*p));
    int rc = -1;
    m->prob = sage_calloc(n, sizeof(*m->prob));
    m->alias = sage_calloc(n, sizeof(*m->alias));
    if (!small || !large || !p || !m->prob || !m->alias)
        goto out;
    for (size_t i = 0; i < m->k; i++)
        total += (double)m->count[i];
    for (size_t i = 0; i < m->k; i++)
        p[i] = (double)m->count[i] / total * (1 - m->tail_mass) * (double)n;
    p[m->k] = m->tail_mass * (double)n;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < 1)
            small[ns++] = (uint32_t)i;
        else
            large[nl++] = (uint32_t)i;
    }
    while (ns && nl) {
        uint32_t s = small[--ns], l = large[--nl];
        m->prob[s] = p[s];
        m->alias[s] = l;
        p[l] -= 1 - p[s];
        if (p[l] < 1)
            small[ns++] = l;
        else
            large[nl++] = l;
    }
    while (nl)
        m->prob[large[--nl]] = 1;
    while (ns)
        m->prob[small[--ns]] = 1;
    rc = 0;
out:
    sage_free(small);
    sage_free(large);
    sage_free(p);
    return rc;
}

static int model_load(const char *path, struct model *m)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0, cap_k = 0, line_no = 0;
    ssize_t len;
    int rc = -1;
    if (!f) {
        fprintf(stderr, "gen_corpus: cannot open '%s': %s\n", path, strerror(errno));
        return -1;
    }
    while ((len = getline(&line, &cap, f)) >= 0) {
        char *fld[5] = { 0 }, *p = line, *end;
        size_t nf = 0;
        line_no++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        while (nf < 5 && p) {
            fld[nf++] = p;
            p = strchr(p, '\t');
            if (p)
                *p++ = '\0';
        }
        if (nf < 3)
            goto bad;
        if (strcmp(fld[0], "param") == 0) {
            double v = strtod(fld[2], &end);
            if (*end || !isfinite(v))
                goto bad;
            if (strcmp(fld[1], "tail_mass") == 0)
                m->tail_mass = v;
            else if (strcmp(fld[1], "tail_s") == 0)
                m->tail_s = v;
            else if (strcmp(fld[1], "tail_rmax") == 0)
                m->tail_rmax = v;
            else if (strcmp(fld[1], "sep_bytes") == 0)
                m->sep_bytes = v;
            else if (strcmp(fld[1], "chunks_per_title") == 0)
                m->chunks_per_title = v;
        } else if (strcmp(fld[0], "word") == 0) {
            size_t wl = strlen(fld[1]);
            unsigned long long c = strtoull(fld[2], &end, 10);
            if (*end || nf < 4 || wl == 0 || wl >= MAX_WORD || m->k >= MAX_K || strpbrk(fld[1], "\"\\ "))
                goto bad;
            if (m->k == cap_k) {
                size_t nc = cap_k ? 2 * cap_k : 4096;
                char **w = sage_realloc(m->words, nc * sizeof(*w));
                if (w)
                    m->words = w;
                uint8_t *l = w ? sage_realloc(m->word_len, nc) : NULL;
                if (l)
                    m->word_len = l;
                uint8_t *s = l ? sage_realloc(m->stop, nc) : NULL;
                if (s)
                    m->stop = s;
                uint64_t *cn = s ? sage_realloc(m->count, nc * sizeof(*cn)) : NULL;
                if (!cn)
                    goto nomem;
                m->count = cn;
                cap_k = nc;
            }
            if (!(m->words[m->k] = sage_malloc(wl + 1)))
                goto nomem;
            memcpy(m->words[m->k], fld[1], wl + 1);
            m->word_len[m->k] = (uint8_t)wl;
            m->stop[m->k] = fld[3][0] == '1';
            m->count[m->k] = c;
            m->k++;
        } else {
            struct hist *h = strcmp(fld[0], "body") == 0    ? &m->body
                             : strcmp(fld[0], "title") == 0 ? &m->title
                             : strcmp(fld[0], "query") == 0 ? &m->query
                                                            : NULL;
            long v = strtol(fld[1], &end, 10);
            unsigned long long c = *end ? 0 : strtoull(fld[2], &end, 10);
            if (h && (*end || hist_add(h, v, c) < 0))
                goto bad;
        }
    }
    if (m->k == 0 || !m->body.n || !m->title.n || !m->query.n || m->tail_mass < 0 ||
        m->tail_mass >= 1 || m->tail_s < 1 || m->tail_rmax <= (double)m->k ||
        m->sep_bytes < 1 || m->chunks_per_title < 1) {
        fprintf(stderr, "gen_corpus: '%s' lacks words, histograms or sane parameters\n", path);
        goto out;
    }
    hist_finish(&m->body);
    hist_finish(&m->title);
    hist_finish(&m->query);
    if (!m->body.cum[m->body.n - 1] || !m->title.cum[m->title.n - 1] ||
        !m->query.cum[m->query.n - 1]) {
        fprintf(stderr, "gen_corpus: '%s' has an empty histogram\n", path);
        goto out;
    }
    if (build_alias(m) < 0)
        goto nomem;
    rc = 0;
    goto out;
bad:
    fprintf(stderr, "gen_corpus: '%s':%zu: bad line\n", path, line_no);
    goto out;
nomem:
    fprintf(stderr, "gen_corpus: out of memory\n");
out:
    free(line);
    fclose(f);
    return rc;
}

/* A word's id: < k a real word, else a made-up one of rank id. */
static uint64_t draw_word(const struct model *m, uint64_t *s)
{
    size_t n = m->k + 1, i = (size_t)(rng_unif(s) * (double)n);
    if (i >= n)
        i = n - 1;
    if (rng_unif(s) >= m->prob[i])
        i = m->alias[i];
    if (i < m->k)
        return i;
    /* a power law on [k, rmax): the inverse of its distribution function */
    double u = rng_unif(s), k = (double)m->k, r;
    if (m->tail_s < 1.0001)
        r = k * pow(m->tail_rmax / k, u);
    else
        r = k * pow(1 - u, -1 / (m->tail_s - 1));
    if (!(r < m->tail_rmax))
        r = m->tail_rmax - 1;
    return (uint64_t)r;
}

/* Writes word id to out (MAX_WORD bytes), returns its length. */
static size_t word_text(const struct model *m, uint64_t id, char *out)
{
    static const char cons[] = "bcdfghjklmnprstvwz", vow[] = "aeiou";
    if (id < m->k) {
        memcpy(out, m->words[id], m->word_len[id]);
        return m->word_len[id];
    }
    size_t n = 0;
    /* bijective base 90: every rank its own string of syllables */
    for (uint64_t r = id - m->k + 1; r > 0 && n + 2 <= MAX_WORD; r = (r - 1) / 90) {
        unsigned d = (unsigned)((r - 1) % 90);
        out[n++] = cons[d / 5];
        out[n++] = vow[d % 5];
    }
    return n;
}

/* The set of made-up words seen, to count the vocabulary. */
struct idset {
    uint64_t *slot;             /* 0: empty */
    size_t cap, n;
};

static int idset_add(struct idset *t, uint64_t id)
{
    if (2 * (t->n + 1) > t->cap) {
        size_t nc = t->cap ? 2 * t->cap : 1u << 16;
        uint64_t *ns = nc <= (1u << 30) ? sage_calloc(nc, sizeof(*ns)) : NULL;
        if (!ns)
            return -1;
        for (size_t i = 0; i < t->cap; i++) {
            if (!t->slot[i])
                continue;
            size_t j = (size_t)(t->slot[i] * 0x9e3779b97f4a7c15ull) & (nc - 1);
            while (ns[j])
                j = (j + 1) & (nc - 1);
            ns[j] = t->slot[i];
        }
        sage_free(t->slot);
        t->slot = ns;
        t->cap = nc;
    }
    size_t j = (size_t)(id * 0x9e3779b97f4a7c15ull) & (t->cap - 1);
    while (t->slot[j] && t->slot[j] != id)
        j = (j + 1) & (t->cap - 1);
    if (!t->slot[j]) {
        t->slot[j] = id;
        t->n++;
    }
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

struct gen {
    const struct model *m;
    uint64_t rng, qrng;
    struct idset tail_seen;
    uint8_t *head_seen;
    uint64_t tokens, bytes, head_distinct;
    uint64_t len_hist[4 * MAX_TEXT];
    char title[MAX_TEXT + MAX_WORD];
    size_t title_len, title_left, title_words;
};

static int count_word(struct gen *g, uint64_t id)
{
    g->tokens++;
    if (id < g->m->k) {
        g->head_distinct += !g->head_seen[id];
        g->head_seen[id] = 1;
        return 0;
    }
    return idset_add(&g->tail_seen, id + 1);
}

/* Appends a gap between words: a space, after punctuation as often as the
 * model's bytes between words say. */
static size_t gap(struct gen *g, char *out)
{
    static const char punct[] = ",,,...::;)-/=*'";
    double extra = g->m->sep_bytes - 1;
    size_t n = 0;
    while (extra > 0 && rng_unif(&g->rng) < extra && n < 3) {
        out[n++] = punct[rng_next(&g->rng) % (sizeof(punct) - 1)];
        extra -= 1;
    }
    out[n++] = ' ';
    return n;
}

/* Words into buf (at most cap bytes); their ids into ids. Returns the bytes. */
static int words(struct gen *g, size_t n, char *buf, size_t cap, uint64_t *ids, size_t *n_ids,
                 size_t *len)
{
    char w[MAX_WORD], sep[4];
    size_t l = 0, ni = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t id = draw_word(g->m, &g->rng);
        size_t wl = word_text(g->m, id, w), sl = i ? gap(g, sep) : 0;
        if (l + sl + wl > cap)
            break;
        memcpy(buf + l, sep, sl);
        memcpy(buf + l + sl, w, wl);
        l += sl + wl;
        if (ids)
            ids[ni++] = id;
        if (count_word(g, id) < 0)
            return -1;
    }
    *len = l;
    if (n_ids)
        *n_ids = ni;
    return 0;
}

/* A query from the words of a chunk: as many distinct non-stop words as a
 * real query has, in the chunk's order. 0 when the chunk has none. */
static size_t make_query(struct gen *g, const uint64_t *ids, size_t n, char *out, size_t cap)
{
    uint64_t cand[MAX_TEXT];
    size_t nc = 0, want, l = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < g->m->k && g->m->stop[ids[i]])
            continue;
        size_t j = 0;
        while (j < nc && ids[cand[j]] != ids[i])
            j++;
        if (j == nc)
            cand[nc++] = i;      /* positions of first occurrences */
    }
    if (!nc)
        return 0;
    want = hist_draw(&g->m->query, &g->qrng);
    if (want < 1)
        want = 1;
    if (want > nc)
        want = nc;
    for (size_t i = 0; i < want; i++) {      /* a partial shuffle */
        size_t j = i + (size_t)(rng_next(&g->qrng) % (nc - i));
        uint64_t t = cand[i];
        cand[i] = cand[j];
        cand[j] = t;
    }
    qsort(cand, want, sizeof(*cand), cmp_u64);
    for (size_t i = 0; i < want; i++) {
        char w[MAX_WORD];
        size_t wl = word_text(g->m, ids[cand[i]], w);
        if (l + wl + 1 >= cap)
            break;
        if (l)
            out[l++] = ' ';
        memcpy(out + l, w, wl);
        l += wl;
    }
    out[l] = '\0';
    return l;
}

static FILE *open_out(const char *dir, const char *name)
{
    char path[4096];
    FILE *f;
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
        return NULL;
    if (!(f = fopen(path, "w")))
        fprintf(stderr, "gen_corpus: cannot create '%s': %s\n", path, strerror(errno));
    else
        setvbuf(f, NULL, _IOFBF, 1u << 20);
    return f;
}

static int close_out(FILE *f, int rc)
{
    if (f && (ferror(f) || fclose(f) != 0)) {
        fprintf(stderr, "gen_corpus: write error\n");
        return -1;
    }
    return rc;
}

static int generate(const struct model *m, uint64_t n, uint64_t seed, const char *dir, size_t n_q)
{
    struct gen *g = sage_calloc(1, sizeof(*g));
    uint64_t *targets = sage_calloc(n_q ? n_q : 1, sizeof(*targets)), ids[MAX_TEXT];
    char **queries = sage_calloc(n_q ? n_q : 1, sizeof(*queries));
    char text[MAX_TEXT + 1], name[64], q[1024];
    FILE *part = NULL, *tsv = NULL, *qf = NULL, *sf = NULL;
    size_t next_t = 0, n_made = 0;
    int rc = -1;
    if (!g || !targets || !queries || !(g->head_seen = sage_calloc(m->k, 1)))
        goto nomem;
    g->m = m;
    g->rng = seed;
    g->qrng = seed ^ 0x5851f42d4c957f2dull;
    for (size_t i = 0; i < n_q; i++)
        targets[i] = rng_next(&g->qrng) % n;
    qsort(targets, n_q, sizeof(*targets), cmp_u64);
    {
        char path[4096];
        if ((size_t)snprintf(path, sizeof(path), "%s/corpus", dir) >= sizeof(path) ||
            (mkdir(path, 0777) < 0 && errno != EEXIST)) {
            fprintf(stderr, "gen_corpus: cannot create '%s/corpus'\n", dir);
            goto out;
        }
    }
    if (!(tsv = open_out(dir, "chunks.tsv")))
        goto out;
    for (uint64_t i = 0; i < n; i++) {
        size_t tl, n_ids;
        if (i % PART_LINES == 0) {
            if (close_out(part, 0) < 0)
                goto out;
            snprintf(name, sizeof(name), "corpus/part-%04llu.jsonl", (unsigned long long)(i / PART_LINES));
            if (!(part = open_out(dir, name)))
                goto out;
        }
        if (!g->title_left) {       /* a new document: its title, how many chunks share it */
            size_t nw = hist_draw(&m->title, &g->rng);
            if (words(g, nw ? nw : 1, g->title, 200, NULL, NULL, &g->title_len) < 0)
                goto nomem;
            g->title_words = nw ? nw : 1;
            double u = rng_unif(&g->rng), p = 1 / m->chunks_per_title;
            g->title_left = p >= 1 ? 1 : 1 + (size_t)fmin(log1p(-u) / log1p(-p), 1e6);
        } else {
            g->tokens += g->title_words;  /* the title's words, indexed again */
        }
        g->title_left--;
        size_t nw = hist_draw(&m->body, &g->rng);
        if (words(g, nw ? nw : 1, text, MAX_TEXT, ids, &n_ids, &tl) < 0)
            goto nomem;
        fprintf(part, "{\"id\":%llu,\"title\":\"%.*s\",\"text\":\"%.*s\"}\n", (unsigned long long)i,
                (int)g->title_len, g->title, (int)tl, text);
        fprintf(tsv, "%llu\t%.*s %.*s\n", (unsigned long long)i + 1, (int)g->title_len, g->title,
                (int)tl, text);
        size_t cl = g->title_len + 1 + tl;      /* as search_bench dump shows a chunk */
        g->bytes += cl;
        g->len_hist[cl < 4 * MAX_TEXT ? cl : 4 * MAX_TEXT - 1]++;
        while (next_t < n_q && targets[next_t] <= i) {
            size_t ql = make_query(g, ids, n_ids, q, sizeof(q));
            if (!ql)
                break;          /* no word to ask for: the next chunk's */
            if (!(queries[n_made] = sage_malloc(ql + 1)))
                goto nomem;
            memcpy(queries[n_made++], q, ql + 1);
            next_t++;
        }
    }
    if (close_out(part, 0) < 0 || close_out(tsv, 0) < 0) {
        part = tsv = NULL;
        goto out;
    }
    part = tsv = NULL;
    for (size_t i = n_made; i > 1; i--) {      /* the queries in a random order */
        size_t j = (size_t)(rng_next(&g->qrng) % i);
        char *t = queries[i - 1];
        queries[i - 1] = queries[j];
        queries[j] = t;
    }
    if (!(qf = open_out(dir, "queries.txt")))
        goto out;
    for (size_t i = 0; i < n_made; i++)
        fprintf(qf, "%s\n", queries[i]);
    if (close_out(qf, 0) < 0) {
        qf = NULL;
        goto out;
    }
    qf = NULL;
    uint64_t half = 0, median = 0;
    for (size_t i = 0; i < 4 * MAX_TEXT; i++) {
        half += g->len_hist[i];
        if (2 * half >= n) {
            median = i;
            break;
        }
    }
    if (!(sf = open_out(dir, "stats.json")))
        goto out;
    fprintf(sf,
            "{\"chunks\":%llu,\"seed\":%llu,\"tokens\":%llu,\"bytes\":%llu,\"vocabulary\":%llu,"
            "\"vocabulary_real\":%llu,\"vocabulary_made_up\":%llu,\"chunk_bytes_mean\":%.1f,"
            "\"chunk_bytes_median\":%llu,\"words_per_chunk_mean\":%.1f,\"queries\":%zu}\n",
            (unsigned long long)n, (unsigned long long)seed, (unsigned long long)g->tokens,
            (unsigned long long)g->bytes, (unsigned long long)(g->head_distinct + g->tail_seen.n),
            (unsigned long long)g->head_distinct, (unsigned long long)g->tail_seen.n,
            (double)g->bytes / (double)n, (unsigned long long)median, (double)g->tokens / (double)n,
            n_made);
    rc = close_out(sf, 0);
    sf = NULL;
    goto out;
nomem:
    fprintf(stderr, "gen_corpus: out of memory\n");
out:
    close_out(part, 0);
    close_out(tsv, 0);
    close_out(qf, 0);
    close_out(sf, 0);
    for (size_t i = 0; queries && i < n_made; i++)
        sage_free(queries[i]);
    sage_free(queries);
    sage_free(targets);
    if (g) {
        sage_free(g->head_seen);
        sage_free(g->tail_seen.slot);
    }
    sage_free(g);
    return rc;
}

int main(int argc, char **argv)
{
    struct model m = { 0 };
    char *end;
    int rc = 1;
    if (argc != 5 && argc != 6) {
        fprintf(stderr, "usage: gen_corpus MODEL N SEED OUTDIR [QUERIES]\n");
        return 2;
    }
    unsigned long long n = strtoull(argv[2], &end, 10);
    if (*end || n < 1 || n > MAX_N) {
        fprintf(stderr, "gen_corpus: N must be 1..%llu\n", MAX_N);
        return 2;
    }
    unsigned long long seed = strtoull(argv[3], &end, 10);
    if (*end) {
        fprintf(stderr, "gen_corpus: SEED must be a number\n");
        return 2;
    }
    unsigned long long nq = argc == 6 ? strtoull(argv[5], &end, 10) : 500;
    if ((argc == 6 && *end) || nq > MAX_QUERIES) {
        fprintf(stderr, "gen_corpus: QUERIES must be 0..%d\n", MAX_QUERIES);
        return 2;
    }
    if (model_load(argv[1], &m) == 0)
        rc = generate(&m, n, seed, argv[4], (size_t)nq) == 0 ? 0 : 1;
    model_free(&m);
    return rc;
}
