/* The tokenizer shared by the indexer and every query path, so both split and
 * normalize text identically: words are maximal runs of letters, digits and
 * combining marks (Unicode categories L*, N*, M*); each is case-folded,
 * NFKC-normalized with accents stripped (utf8proc), then stemmed (Snowball
 * English through libstemmer). A tokenizer holds a stemmer and a scratch
 * buffer, so it is used by one thread at a time. */
#ifndef SAGE_TOKENIZE_H
#define SAGE_TOKENIZE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define SAGE_TERM_MAX 64    /* longer words are dropped: they are not words */

struct sage_token {
    const char *term;       /* normalized term, NUL-terminated, valid during the callback */
    size_t term_len;
    uint32_t pos;           /* word position, from 0 */
    size_t off, len;        /* byte range of the word in the input */
};

/* Called for each token; a non-zero return stops tokenizing and is returned. */
typedef int (*sage_token_fn)(void *ctx, const struct sage_token *t);

struct sage_tokenizer;

struct sage_tokenizer_opts {
    const char *stemmer;                /* Snowball algorithm ("english", "porter"), NULL: none */
    const char *const *stopwords;       /* normalized words dropped before stemming */
    size_t n_stopwords;                 /* they still take a position */
    unsigned cache_bits;                /* > 0: remember 2^cache_bits words' terms (a bulk
                                         * indexer's setting: 16 costs 5 MiB, see below) */
};

/* The 33 English stop words of Lucene's EnglishAnalyzer, the usual BM25
 * baseline setting. */
extern const char *const sage_stopwords_english[];
extern const size_t sage_n_stopwords_english;

/* opts NULL: no stemming, no stop words. Copies what it needs from opts. */
int sage_tokenizer_new(const struct sage_tokenizer_opts *opts, struct sage_tokenizer **out,
                       struct sage_err *err);
void sage_tokenizer_free(struct sage_tokenizer *tk);

/* Tokenizes text[0, len) (UTF-8; invalid bytes separate words). Returns 0,
 * the callback's non-zero value, or -SAGE_ENOMEM. */
int sage_tokenize(struct sage_tokenizer *tk, const char *text, size_t len, sage_token_fn fn,
                  void *ctx);

#endif
