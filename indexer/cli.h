/* sage-indexer's option table and the subcommand entry points that main.c
 * dispatches to. Each returns the process exit status: 0 success, 1 failure,
 * 2 usage error. */
#ifndef INDEXER_CLI_H
#define INDEXER_CLI_H

#include "opt.h"

enum cli_cmd {
    CMD_BUILD = 1u << 0,
    CMD_INFO = 1u << 1,
    CMD_VERIFY = 1u << 2,
    CMD_QUERY = 1u << 3,
    CMD_MERGE = 1u << 4,
    CMD_WRITE = CMD_BUILD | CMD_MERGE   /* the commands that write an index */
};

/* Index of each option in the table (main.c), in the same order. */
enum cli_opt {
    OPT_OUT, OPT_LIBRARY, OPT_INCLUDE, OPT_EXCLUDE, OPT_HIDDEN, OPT_REPORT, OPT_MAX_FAILURES,
    OPT_SHARD, OPT_THREADS, OPT_QUIET, OPT_MAX_ENTRIES, OPT_MAX_EXPANDED, OPT_MAX_RATIO, OPT_MAX_DEPTH,
    OPT_PDF_TIMEOUT, OPT_PDF_MEMORY, OPT_MAX_FILE, OPT_MEMORY_LIMIT, OPT_TMP_DIR,
    OPT_BUILD_TIME, OPT_ZSTD_LEVEL, OPT_CHUNK_SIZE,
    OPT_CHUNK_OVERLAP, OPT_MAX_CHUNK, OPT_STEMMER, OPT_STOPWORDS, OPT_JSON, OPT_K,
    OPT_FILTER_LIBRARY, OPT_TREC, OPT_SCAN, OPT_K1, OPT_B, OPT_MODE, OPT_FUSION, OPT_W_BM25,
    OPT_W_DENSE, OPT_OVERSAMPLE, OPT_DENSE_METHOD, OPT_EF, OPT_LOG_FORMAT, OPT_VERBOSE,
    OPT_STAMP, OPT_EMBEDDINGS, OPT_EMBED_URL, OPT_EMBED_MODEL, OPT_EMBED_KEY, OPT_EMBED_KEY_FILE,
    OPT_EMBED_DIM, OPT_EMBED_DOC_PREFIX, OPT_EMBED_QUERY_PREFIX, OPT_EMBED_NORMALIZE,
    OPT_EMBED_BATCH, OPT_EMBED_MAX_TOKENS, OPT_EMBED_CONCURRENCY, OPT_EMBED_TIMEOUT, OPT_EMBED_RETRIES,
    OPT_EMBED_RETRY_BUDGET, OPT_REUSE, OPT_HNSW, OPT_HNSW_M, OPT_HNSW_EF_CONSTRUCTION,
    OPT_HNSW_THREADS, OPT_OCR, OPT_OCR_URL, OPT_OCR_MODEL, OPT_OCR_KEY,
    OPT_OCR_KEY_FILE, OPT_OCR_DPI, OPT_OCR_TIMEOUT, OPT_OCR_RETRIES, OPT_PARTIAL, OPT__COUNT
};

struct cli {
    unsigned cmd;
    struct sage_optval v[OPT__COUNT];
    char **args;        /* positional arguments after the subcommand */
    int n_args;
};

int cmd_build(struct cli *c);
int cmd_info(struct cli *c);
int cmd_verify(struct cli *c);
int cmd_query(struct cli *c);
int cmd_merge(struct cli *c);

#endif
