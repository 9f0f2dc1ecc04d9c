/* Offline BM25 search by scanning the TEXT section: every document is
 * tokenized at query time. It serves `sage-indexer query` and the demo on
 * small indexes until the inverted index (LEXICON/POSTINGS, issue #4)
 * replaces the scan; ranking (BM25, k1 = 1.2, b = 0.75) and snippets are the
 * ones the inverted index will reproduce. Not for large indexes: O(corpus). */
#ifndef SAGE_SCAN_H
#define SAGE_SCAN_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "reader.h"
#include "tokenize.h"

#define SAGE_QUERY_TERMS_MAX 32

/* A query's distinct terms in order of first appearance (at most
 * SAGE_QUERY_TERMS_MAX; later ones are ignored), each with the number of
 * times it occurs: how every ranking path reads a query. */
struct sage_qterms {
    char term[SAGE_QUERY_TERMS_MAX][SAGE_TERM_MAX * 4 + 1];
    size_t len[SAGE_QUERY_TERMS_MAX];
    uint32_t weight[SAGE_QUERY_TERMS_MAX];
    size_t n;
};

/* Tokenizes q into *out (zeroed first). 0, or -SAGE_ENOMEM. */
int sage_qterms_collect(struct sage_tokenizer *tk, const char *q, size_t len,
                        struct sage_qterms *out);
/* Index of term in qt, or -1. */
int sage_qterms_find(const struct sage_qterms *qt, const char *term, size_t len);

struct sage_hit {
    uint64_t doc;           /* document number (record index in DOCS and TEXT) */
    double score;
};

struct sage_results {
    struct sage_hit *hits;  /* best first, n_hits of them (owned) */
    size_t n_hits;
    uint64_t total;         /* documents matching at least one term */
    int total_exact;        /* 0: total is a lower bound (pruned evaluation) */
};

/* Ranks the documents of r for query q and keeps the best k. */
int sage_scan_search(const struct sage_reader *r, struct sage_tokenizer *tk, const char *q,
                     size_t k, struct sage_results *out, struct sage_err *err);
void sage_results_release(struct sage_results *res);

/* A snippet of about width bytes from text around the densest cluster of
 * query terms, with each matching word wrapped in open/close, newlines as
 * spaces, cut on word boundaries. *out is owned by the caller (sage_free). */
int sage_snippet(struct sage_tokenizer *tk, const char *q, const char *text, size_t len,
                 size_t width, const char *open, const char *close, char **out,
                 struct sage_err *err);

#endif
