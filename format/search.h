/* Search over one open index file, as both programs do it: the query
 * language of query.h evaluated with BM25 block-max WAND (index.h), with
 * library and path filters, required and excluded words and phrases applied
 * before the top k (a chunk that fails one is never ranked). Files of format
 * 1.0 are searched by scanning (scan.h), words only.
 * A searcher may be shared by threads (the document table it decodes on
 * the first filtered query is built under a lock); each thread brings its
 * own tokenizer (sage_searcher_tokenizer). Opening does not decode the
 * document table, so it costs the same for any number of documents. */
#ifndef SAGE_SEARCH_H
#define SAGE_SEARCH_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "dense.h"
#include "err.h"
#include "fusion.h"
#include "reader.h"
#include "scan.h"
#include "tokenize.h"

struct sage_searcher;

/* Sets up a searcher over r (borrowed: r must outlive it). Decodes the
 * document table and the build record's tokenizer settings. */
int sage_searcher_open(const struct sage_reader *r, struct sage_searcher **out,
                       struct sage_err *err);
void sage_searcher_free(struct sage_searcher *s);

/* A tokenizer configured as the index's (owned by the caller). */
int sage_searcher_tokenizer(const struct sage_searcher *s, struct sage_tokenizer **out,
                            struct sage_err *err);

uint64_t sage_searcher_n_docs(const struct sage_searcher *s);
uint64_t sage_searcher_n_chunks(const struct sage_searcher *s);
/* 1 when the file has an inverted index (format 1.1), 0 when it is scanned. */
int sage_searcher_has_index(const struct sage_searcher *s);

struct sage_search_opts {
    size_t k;               /* hits wanted */
    double k1, b;           /* 0: the defaults (1.2, 0.75) */
    int exhaustive;         /* no pruning: exact total */
    const char *library;    /* NULL, or a library: filter given apart from the query */
    const char *path_prefix;    /* NULL, or a path: filter given apart from the query */
};

/* Runs query q[0, len) with BM25. Hits are chunk ids (document ids for a
 * 1.0 file). */
int sage_search(const struct sage_searcher *s, struct sage_tokenizer *tk, const char *q,
                size_t len, const struct sage_search_opts *o, struct sage_results *out,
                struct sage_err *err);

/* The document a hit belongs to. */
int sage_searcher_hit_doc(const struct sage_searcher *s, uint64_t hit, uint32_t *doc,
                          struct sage_err *err);
/* Decompresses what opening defers (the document table) now rather than on
 * the first request that needs it. Thread-safe. */
int sage_searcher_warm(struct sage_searcher *s, struct sage_err *err);

/* The record of document doc (a new reference). */
int sage_searcher_doc(const struct sage_searcher *s, uint32_t doc, json_t **rec,
                      struct sage_err *err);
/* The text of a hit, with its heading path and page when it is a chunk: a new
 * reference to {"text", "heading", "page"}. */
int sage_searcher_hit_text(const struct sage_searcher *s, uint64_t hit, json_t **rec,
                           struct sage_err *err);

/* A hit's heading path and page, and its text only when want_text: a new
 * reference to {"heading", "page"[, "text"]}. Without the text, files of
 * format 1.2 answer from CHUNK_META and decompress nothing. */
int sage_searcher_hit_info(const struct sage_searcher *s, uint64_t hit, int want_text,
                           json_t **rec, struct sage_err *err);

/* ---- dense and hybrid (FORMAT.md §11.6) ---- */

enum sage_search_mode { SAGE_MODE_BM25, SAGE_MODE_DENSE, SAGE_MODE_HYBRID };

/* "bm25", "dense" or "hybrid" into *mode: 0, or -SAGE_EINVAL. */
int sage_search_mode_parse(const char *name, enum sage_search_mode *mode);
const char *sage_search_mode_name(enum sage_search_mode mode);

#define SAGE_HYBRID_DEPTH 100       /* least depth of each leg of a hybrid search */

/* How the index's vectors were made (BUILD `embedding`), so a query vector
 * can be made the same way. Strings belong to the searcher. */
struct sage_embedding_info {
    const char *model, *query_prefix, *document_prefix;   /* "" when unset */
    uint32_t dim;
    int normalized;                 /* rows have unit length: so must the query */
};

/* 1 with *info when the index has VECTORS, 0 when it has none. */
int sage_searcher_embedding(const struct sage_searcher *s, struct sage_embedding_info *info);
/* The VECTORS of the index, NULL when it has none. */
const struct sage_vectors *sage_searcher_vectors(const struct sage_searcher *s);

/* How the dense list is found: every row scanned (exact), or the HNSW graph
 * walked (approximate; files built with --hnsw); auto takes the graph for
 * files of at least SAGE_HNSW_AUTO_MIN chunks searched without a filter. */
enum sage_dense_method { SAGE_DENSE_AUTO, SAGE_DENSE_EXACT, SAGE_DENSE_HNSW };
#define SAGE_HNSW_AUTO_MIN 50000u
#define SAGE_HNSW_EF_DEFAULT 512u   /* recall@10 0.995 on 100k x 384 (hnsw-bench.sh) */

struct sage_hybrid_opts {
    enum sage_search_mode mode;
    const float *vector;            /* the query's embedding (dense, hybrid), borrowed */
    size_t dim;                     /* its length: must be the index's dimension */
    unsigned oversample;            /* dense candidates per hit; 0: SAGE_DENSE_OVERSAMPLE */
    size_t depth;                   /* hits taken from each leg of a hybrid search;
                                       0: max(k, SAGE_HYBRID_DEPTH) */
    struct sage_fusion_opts fusion;
    unsigned threads;               /* dense scan threads; 0: the library's default */
    enum sage_dense_method method;  /* exact, HNSW, or auto */
    unsigned ef;                    /* HNSW candidates; 0: SAGE_HNSW_EF_DEFAULT */
};

/* "auto", "exact", "hnsw" to and from the method; -SAGE_EINVAL for others. */
int sage_dense_method_parse(const char *name, enum sage_dense_method *m);
const char *sage_dense_method_name(enum sage_dense_method m);
/* 1 when the file has an HNSW graph (built with --hnsw). */
int sage_searcher_has_hnsw(const struct sage_searcher *s);

struct sage_hybrid_results {
    struct sage_fused_hit *hits;    /* best first (owned); each with its legs */
    size_t n_hits;
    enum sage_dense_method dense_used;  /* exact or HNSW when a dense list was made */
    uint64_t total;                 /* bm25, hybrid: chunks matching a word (see
                                       sage_results); dense: chunks the filters allow */
    int total_exact;
};

/* Runs query q[0, len) (may be empty in dense and hybrid modes) in h->mode:
 * bm25 as sage_search (each hit's bm25 leg set, score the BM25 score); dense
 * scans the vectors with the query's library and path filters (from o and
 * from the query's operators) as an allow bitmap before the top k; hybrid
 * fuses both legs (§11.6). Words, phrases, + and - shape the BM25 leg only.
 * The vector is copied and normalized when the index's rows are. Errors:
 * -SAGE_ENOTFOUND when dense or hybrid meets an index without vectors,
 * -SAGE_EINVAL for a missing vector, a wrong dimension or a non-finite
 * value, and sage_search's. Thread-safe as sage_search. */
int sage_search_hybrid(const struct sage_searcher *s, struct sage_tokenizer *tk, const char *q,
                       size_t len, const struct sage_search_opts *o,
                       const struct sage_hybrid_opts *h, struct sage_hybrid_results *out,
                       struct sage_err *err);
void sage_hybrid_results_release(struct sage_hybrid_results *res);

#endif
