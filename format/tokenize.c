/* Word splitting and normalization on utf8proc and libstemmer. ASCII words
 * take a fast path (lower-casing is all NFKC and case folding do to them). */
#include "tokenize.h"

#include <libstemmer.h>
#include <string.h>
#include <utf8proc.h>

#include "alloc.h"

const char *const sage_stopwords_english[] = {
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is",
    "it", "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there",
    "these", "they", "this", "to", "was", "will", "with",
};
const size_t sage_n_stopwords_english =
    sizeof(sage_stopwords_english) / sizeof(*sage_stopwords_english);

struct sage_tokenizer {
    struct sb_stemmer *stemmer;     /* NULL: no stemming */
    char **stop;                    /* sorted, owned */
    size_t n_stop;
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
static int normalize(struct sage_tokenizer *tk, const uint8_t *w, size_t n)
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
        if (i < len) {
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
