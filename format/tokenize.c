/* Word splitting and normalization on utf8proc and libstemmer. ASCII words
 * take a fast path (lower-casing is all NFKC and case folding do to them).
 * Stemming is the dearest step (a third of the indexer's committing thread
 * on the Debian-docs corpus), and words follow Zipf's law, so a bulk
 * indexer may ask for a cache: a direct-mapped table from a word's bytes,
 * as they appear in the text, to what normalize made of them (the term, or
 * "dropped", or "stop word"). A hit skips case folding, the stop-word search
 * and the stemmer; a collision evicts. Words or terms longer than a slot
 * holds are not cached. The result is the same with or without it. */
#include "tokenize.h"

#include <libstemmer.h>
#include <string.h>
#include <utf8proc.h>
#include <xxhash.h>

#include "alloc.h"

const char *const sage_stopwords_english[] = {
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is",
    "it", "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there",
    "these", "they", "this", "to", "was", "will", "with",
};
const size_t sage_n_stopwords_english =
    sizeof(sage_stopwords_english) / sizeof(*sage_stopwords_english);

#define CACHE_WORD 30    /* longest word (bytes) a cache slot holds */
#define CACHE_TERM 30    /* longest term */

struct cache_slot {
    uint8_t word_len;       /* 0: empty */
    int8_t term_len;        /* what normalize returned: -2, 0 or the length */
    char word[CACHE_WORD];
    char term[CACHE_TERM];
};

struct sage_tokenizer {
    struct sb_stemmer *stemmer;     /* NULL: no stemming */
    char **stop;                    /* sorted, owned */
    size_t n_stop;
    struct cache_slot *cache;       /* NULL: no cache */
    size_t cache_mask;
    char term[SAGE_TERM_MAX * 4 + 1];
};

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int sage_tokenizer_new(const struct sage_tokenizer_opts *opts, struct sage_tokenizer **out,
                       struct sage_err *err)
{
    struct sage_tokenizer *tk = sage_calloc(1, sizeof(*tk));
    *out = NULL;
    if (!tk)
        return sage_err_set(err, SAGE_ENOMEM, "cannot allocate tokenizer");
    if (opts && opts->stemmer && !(tk->stemmer = sb_stemmer_new(opts->stemmer, "UTF_8"))) {
        sage_tokenizer_free(tk);
        return sage_err_set(err, SAGE_EINVAL, "no stemmer named '%s'", opts->stemmer);
    }
    if (opts && opts->n_stopwords) {
        tk->stop = sage_calloc(opts->n_stopwords, sizeof(*tk->stop));
        for (size_t i = 0; tk->stop && i < opts->n_stopwords; i++) {
            if (!(tk->stop[i] = sage_strdup(opts->stopwords[i]))) {
                sage_tokenizer_free(tk);
                return sage_err_set(err, SAGE_ENOMEM, "cannot allocate stop words");
            }
            tk->n_stop++;
        }
        if (!tk->stop) {
            sage_tokenizer_free(tk);
            return sage_err_set(err, SAGE_ENOMEM, "cannot allocate stop words");
        }
        qsort(tk->stop, tk->n_stop, sizeof(*tk->stop), cmp_strp);
    }
    if (opts && opts->cache_bits) {
        size_t n = (size_t)1 << (opts->cache_bits > 24 ? 24 : opts->cache_bits);
        if (!(tk->cache = sage_calloc(n, sizeof(*tk->cache)))) {
            sage_tokenizer_free(tk);
            return sage_err_set(err, SAGE_ENOMEM, "cannot allocate the term cache");
        }
        tk->cache_mask = n - 1;
    }
    *out = tk;
    return 0;
}

void sage_tokenizer_free(struct sage_tokenizer *tk)
{
    if (!tk)
        return;
    if (tk->stemmer)
        sb_stemmer_delete(tk->stemmer);
    for (size_t i = 0; i < tk->n_stop; i++)
        sage_free(tk->stop[i]);
    sage_free(tk->stop);
    sage_free(tk->cache);
    sage_free(tk);
}

static int is_stopword(const struct sage_tokenizer *tk, const char *term)
{
    const char *key = term;
    return tk->n_stop && bsearch(&key, tk->stop, tk->n_stop, sizeof(*tk->stop), cmp_strp);
}

static int is_word_cp(utf8proc_int32_t cp)
{
    if (cp < 0x80)
        return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9');
    switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
        return 1;
    default:
        return 0;
    }
}

/* Normalizes word w[0, n) into tk->term; returns its length, 0 to drop it,
 * -2 for a stop word (dropped, but it takes a position), or -1 when out of
 * memory. */
static int normalize_word(struct sage_tokenizer *tk, const uint8_t *w, size_t n)
{
    size_t len = 0;
    int ascii = 1;
    for (size_t i = 0; i < n; i++)
        ascii &= w[i] < 0x80;
    if (ascii) {
        if (n > SAGE_TERM_MAX)
            return 0;
        for (size_t i = 0; i < n; i++)
            tk->term[i] = (char)(w[i] >= 'A' && w[i] <= 'Z' ? w[i] + 32 : w[i]);
        len = n;
    } else {
        utf8proc_uint8_t *m = NULL;
        utf8proc_ssize_t k = utf8proc_map(w, (utf8proc_ssize_t)n, &m,
                                          UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT |
                                          UTF8PROC_CASEFOLD | UTF8PROC_STRIPMARK |
                                          UTF8PROC_IGNORE);
        if (k < 0)
            return k == UTF8PROC_ERROR_NOMEM ? -1 : 0;
        size_t n_cp = 0;    /* SAGE_TERM_MAX counts characters, as for ASCII */
        for (utf8proc_ssize_t i = 0; i < k; i++)
            n_cp += (m[i] & 0xc0) != 0x80;
        if (k == 0 || n_cp > SAGE_TERM_MAX || (size_t)k >= sizeof(tk->term)) {
            free(m);
            return 0;
        }
        memcpy(tk->term, m, (size_t)k);
        free(m);
        len = (size_t)k;
    }
    tk->term[len] = '\0';
    if (is_stopword(tk, tk->term))
        return -2;
    if (tk->stemmer) {
        const sb_symbol *s = sb_stemmer_stem(tk->stemmer, (const sb_symbol *)tk->term, (int)len);
        if (!s)
            return -1;
        int sl = sb_stemmer_length(tk->stemmer);
        if (sl > 0 && (size_t)sl < sizeof(tk->term)) {
            memcpy(tk->term, s, (size_t)sl);
            len = (size_t)sl;
            tk->term[len] = '\0';
        }
    }
    return (int)len;
}

/* normalize_word through the cache, when there is one. */
static int normalize(struct sage_tokenizer *tk, const uint8_t *w, size_t n)
{
    if (!tk->cache || n > CACHE_WORD)
        return normalize_word(tk, w, n);
    struct cache_slot *c = &tk->cache[XXH3_64bits(w, n) & tk->cache_mask];
    if (c->word_len == n && memcmp(c->word, w, n) == 0) {
        if (c->term_len > 0) {
            memcpy(tk->term, c->term, (size_t)c->term_len);
            tk->term[c->term_len] = '\0';
        }
        return c->term_len;
    }
    int tl = normalize_word(tk, w, n);
    if (tl >= -2 && tl != -1 && tl <= CACHE_TERM) {
        c->word_len = (uint8_t)n;
        c->term_len = (int8_t)tl;
        memcpy(c->word, w, n);
        if (tl > 0)
            memcpy(c->term, tk->term, (size_t)tl);
    }
    return tl;
}

int sage_tokenize(struct sage_tokenizer *tk, const char *text, size_t len, sage_token_fn fn,
                  void *ctx)
{
    const uint8_t *p = (const uint8_t *)text;
    size_t i = 0, start = 0;
    int in_word = 0;
    uint32_t pos = 0;
    while (i <= len) {
        utf8proc_int32_t cp = -1;
        utf8proc_ssize_t k = 1;
        if (i < len && p[i] < 0x80) {
            cp = p[i];
        } else if (i < len) {
            k = utf8proc_iterate(p + i, (utf8proc_ssize_t)(len - i), &cp);
            if (k <= 0)
                k = 1, cp = -1;     /* an invalid byte ends a word */
        }
        int word = cp >= 0 && is_word_cp(cp);
        if (word && !in_word) {
            start = i;
            in_word = 1;
        } else if (!word && in_word) {
            in_word = 0;
            int tl = normalize(tk, p + start, i - start);
            if (tl == -2)
                pos++;
            else if (tl < 0)
                return -SAGE_ENOMEM;
            if (tl > 0) {
                struct sage_token t = { tk->term, (size_t)tl, pos++, start, i - start };
                int rc = fn(ctx, &t);
                if (rc)
                    return rc;
            }
        }
        i += (size_t)k;
    }
    return 0;
}
