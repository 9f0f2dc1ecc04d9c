/* Searching the inverted index in place: lexicon lookup by binary search over
 * front-coded blocks, postings cursors that decode one 128-entry block at a
 * time, and BM25 top-k by block-max WAND (per-block upper bounds from the
 * skip table let whole blocks be passed over without decoding). Everything
 * read from the mapping is bounds-checked; a corrupt index gives
 * -SAGE_ECORRUPT, never a crash. An index view is immutable and may be shared
 * by threads; each search allocates its own cursors. */
#ifndef SAGE_INDEX_H
#define SAGE_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "reader.h"
#include "scan.h"
#include "tokenize.h"

struct sage_index {
    uint64_t n_terms, n_chunks, total_tokens, n_blocks;
    uint32_t block_terms;
    const uint8_t *blk_offs;    /* n_blocks + 1 little-endian u64 */
    const uint8_t *blk_data;
    uint64_t blk_data_len;
    const uint8_t *post;
    uint64_t post_len;
    const uint8_t *norms;       /* n_chunks little-endian u32 */
    double avgdl;
};

struct sage_term_info {
    uint32_t df;
    uint64_t off, len;          /* postings bytes within the POSTINGS section */
};

/* Sets up ix over the reader's sections (borrowed: valid while r is open).
 * -SAGE_ENOTFOUND when the file has no inverted index (format 1.0). */
int sage_index_open(struct sage_index *ix, const struct sage_reader *r, struct sage_err *err);

/* 1 and *ti when term is in the lexicon, 0 when not, <0 when corrupt. */
int sage_index_lookup(const struct sage_index *ix, const char *term, size_t len,
                      struct sage_term_info *ti, struct sage_err *err);

/* Sets bit c of bits (n_chunks bits, zeroed by the caller) for every chunk c
 * in the term's postings. 0, or -SAGE_ECORRUPT. */
int sage_index_term_bits(const struct sage_index *ix, const struct sage_term_info *ti,
                         uint8_t *bits, struct sage_err *err);

typedef int (*sage_chunk_filter_fn)(void *ctx, uint32_t chunk);

struct sage_bm25_opts {
    size_t k;                   /* hits wanted (0: none, only the total) */
    double k1, b;               /* 0, 0: the defaults 1.2 and 0.75 (as Lucene) */
    int exhaustive;             /* score every match: exact total, no pruning */
    sage_chunk_filter_fn filter;    /* chunks it rejects are never scored */
    void *filter_ctx;
    const struct sage_qterms *required; /* NULL, or terms every hit must contain */
};

/* BM25 top-k of the chunks for the query's terms; hits[].doc are chunk ids. */
int sage_bm25_search(const struct sage_index *ix, struct sage_tokenizer *tk, const char *q,
                     const struct sage_bm25_opts *o, struct sage_results *out,
                     struct sage_err *err);

#endif
