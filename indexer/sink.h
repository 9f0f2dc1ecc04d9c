/* The index being written: documents, chunk records, chunk metadata, the
 * inverted index, vectors (rows in an anonymous file, hashes in memory), the
 * HNSW graph and the OCR pages, and the writer that turns them into a file.
 * Shared by build (documents from extraction) and merge (documents taken
 * from shards), so both write the same bytes for the same chunks. Not
 * thread-safe: one thread adds, except the vector rows (sink_put_row). */
#ifndef INDEXER_SINK_H
#define INDEXER_SINK_H
#include <jansson.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "chunkmeta.h"
#include "chunkstore.h"
#include "cli.h"
#include "err.h"
#include "hnsw.h"
#include "ixbuild.h"
#include "ocrpages.h"
#include "rectab.h"
#include "tokenize.h"

struct sink {
    struct sage_rectab_builder docs;    /* document records, msgpack, encoded when added */
    json_t *doc_extra;          /* decimal id -> members added to that record when written */
    struct sage_chunkstore_builder text;
    struct sage_chunkmeta_builder meta;     /* page and heading of each chunk */
    struct sage_ixbuild *ix;
    uint8_t *chunk_map;         /* u32 doc, u32 ordinal per chunk */
    size_t chunk_map_len, chunk_map_cap;
    uint64_t n_docs, n_chunks;
    char *scratch;              /* index text of the last chunk added */
    size_t scratch_cap;
    uint8_t *hashes;            /* XXH3-128 of each chunk's embedded text */
    size_t hashes_cap;
    int vec_fd;                 /* anonymous file of the rows: row i at i * dim * 4; -1: none */
    unsigned emb_dim;           /* atomic while an embedder writes rows */
    uint32_t emb_flags;         /* of the VECTORS section */
    struct sage_hnsw_graph *graph;  /* sink_hnsw: built once the vectors are all in */
    double hnsw_ms;             /* the time it took (log and report, not the index) */
    struct sage_ocrpages_builder ocr;   /* text of page images read by OCR */
    int zstd_level;
    char spill_dir[PATH_MAX];   /* where temporary files go */
};

/* The analysis of a build record's tokenizer: stemmer NULL or "none" for
 * no stemming, stopwords "english" or anything else for none. The strings
 * are borrowed by tok. */
void sink_tokenizer(struct sage_tokenizer_opts *tok, const char *stemmer, const char *stopwords);

/* Sets up an empty sink writing out: postings past memory_limit (0: none)
 * and compressed chunk text past a quarter of it (4 MiB at most) spill to
 * tmp_dir, by default the directory of out (created). -SAGE_EINVAL for a path too long (a usage
 * error), else the failure; the sink is released with sink_release either
 * way. */
int sink_init(struct sink *s, const char *out, const struct sage_tokenizer_opts *tok,
              size_t memory_limit, const char *tmp_dir, int zstd_level, struct sage_err *err);
void sink_release(struct sink *s);

/* Encodes doc as the record of the next document (docs.n) and keeps the
 * bytes, not the tree: a record costs its msgpack size. doc stays the
 * caller's. */
int sink_add_doc(struct sink *s, const json_t *doc, struct sage_err *err);

/* The members that document id's record gains when the index is written
 * (aliases found after it was added; they replace members of the same
 * name), created empty on the first call. Borrowed from the sink; NULL when
 * out of memory. */
json_t *sink_doc_extra(struct sink *s, uint64_t id);

/* Adds chunk n_chunks of document doc: its record rec (copied, msgpack),
 * its page and heading, and its index text (title and heading path, then
 * text), which is left in scratch with its length in *index_len. */
int sink_add_chunk(struct sink *s, uint32_t doc, uint32_t ordinal, const json_t *rec,
                   const char *title, const char *heading, uint32_t page, const char *text,
                   size_t len, size_t *index_len, struct sage_err *err);

/* Keeps the embedded-text hash of chunk i (i at most one past the last). */
int sink_set_hash(struct sink *s, uint64_t i, const uint8_t hash[16], struct sage_err *err);

/* Creates the vector file (vec_fd) in spill_dir. */
int sink_vectors_open(struct sink *s, struct sage_err *err);

/* Writes row id, emb_dim floats, to the vector file; callable from another
 * thread than the one adding chunks (distinct ids). */
int sink_put_row(const struct sink *s, uint64_t id, const float *v, struct sage_err *err);

/* --hnsw (with its parameters from c): builds the graph over the rows in the
 * vector file (mapped, not read into memory) and records its parameters in
 * emb_record. Nothing without --hnsw or without vectors. 0, or -1 logged. */
int sink_hnsw(struct sink *s, const struct cli *c, json_t *emb_record);

/* Writes the index: BUILD record rec, then every section; *sha gets the
 * file's sha256 in hex. Vectors are written when vec_fd is open. */
int sink_write(struct sink *s, const char *out, const json_t *rec, char sha[65],
               struct sage_err *err);

/* Reads back what was written and stamps it, so a searchd on this host
 * serves it without verifying it again. -1 (logged) when it does not read
 * back as written. */
int sink_read_back(const char *out);

/* Creates the directories leading to path, like mkdir -p of its dirname;
 * -1 (logged) on failure. */
int sink_make_dirs(const char *path);

#endif
