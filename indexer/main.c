/* sage-indexer: the option table and subcommand dispatch. The work of each
 * subcommand lives in its own file (build.c, inspect.c, query.c). */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "extract.h"
#include "layout.h"
#include "log.h"

static const struct sage_opt options[OPT__COUNT] = {
    [OPT_OUT] = { "out", 'o', "SAGE_OUT", SAGE_OPT_STR, NULL, 0, 0, 0, CMD_WRITE, "FILE",
                  "index file to write (DIR/NAME.sage)" },
    [OPT_LIBRARY] = { "library", 'l', "SAGE_LIBRARY", SAGE_OPT_LIST, NULL, 0, 0, 0, CMD_BUILD,
                      "NAME=PATH", "index PATH as library NAME (repeatable)" },
    [OPT_INCLUDE] = { "include", 0, "SAGE_INCLUDE", SAGE_OPT_LIST, NULL, 0, 0, 0, CMD_BUILD, "GLOB",
                      "index only files matching a glob (repeatable)" },
    [OPT_EXCLUDE] = { "exclude", 0, "SAGE_EXCLUDE", SAGE_OPT_LIST, NULL, 0, 0, 0, CMD_BUILD, "GLOB",
                      "skip files and folders matching a glob (repeatable)" },
    [OPT_HIDDEN] = { "hidden", 0, "SAGE_HIDDEN", SAGE_OPT_BOOL, NULL, 0, 1, 0, CMD_BUILD, NULL,
                     "also index dot-files and VCS folders" },
    [OPT_REPORT] = { "report", 0, "SAGE_REPORT", SAGE_OPT_STR, NULL, 0, 0, 0, CMD_BUILD, "FILE",
                     "write a JSON report of every file indexed, skipped or failed" },
    [OPT_MAX_FAILURES] = { "max-failures", 0, "SAGE_MAX_FAILURES", SAGE_OPT_INT, "-1", -1,
                           1LL << 40, 0, CMD_BUILD, "N",
                           "fail the build, writing no index, past N failed files (-1: no limit)" },
    [OPT_SHARD] = { "shard", 0, "SAGE_SHARD", SAGE_OPT_STR, NULL, 0, 0, 0, CMD_BUILD, "I/N",
                    "build only shard I of N (a deterministic part of the corpus)" },
    [OPT_THREADS] = { "threads", 'j', "SAGE_THREADS", SAGE_OPT_INT, "0", 0, 256, 0, CMD_BUILD, "N",
                      "threads extracting files in parallel (0: one per core); the index "
                      "is the same for any N" },
    [OPT_QUIET] = { "quiet", 'q', "SAGE_QUIET", SAGE_OPT_BOOL, NULL, 0, 1, 0, CMD_WRITE, NULL,
                    "no progress and no per-file warnings" },
    [OPT_MAX_ENTRIES] = { "max-archive-entries", 0, "SAGE_MAX_ARCHIVE_ENTRIES", SAGE_OPT_INT,
                          "1000", 1, 1LL << 32, 0, CMD_BUILD, "N",
                          "entries per archive, nested ones included" },
    [OPT_MAX_EXPANDED] = { "max-archive-bytes", 0, "SAGE_MAX_ARCHIVE_BYTES", SAGE_OPT_SIZE, "500M",
                           1, 1LL << 42, 0, CMD_BUILD, "SIZE",
                           "bytes expanded from one archive, nested ones included" },
    [OPT_MAX_RATIO] = { "max-archive-ratio", 0, "SAGE_MAX_ARCHIVE_RATIO", SAGE_OPT_INT, "100", 1,
                        1LL << 20, 0, CMD_BUILD, "N", "expanded / compressed size of an archive" },
    [OPT_MAX_DEPTH] = { "max-archive-depth", 0, "SAGE_MAX_ARCHIVE_DEPTH", SAGE_OPT_INT, "3", 0, 16,
                        0, CMD_BUILD, "N", "archives nested in archives" },
    [OPT_PDF_TIMEOUT] = { "pdf-timeout", 0, "SAGE_PDF_TIMEOUT", SAGE_OPT_INT, "30000", 1, 3600000,
                          0, CMD_BUILD, "MS", "time one PDF may take to extract" },
    [OPT_PDF_MEMORY] = { "pdf-memory", 0, "SAGE_PDF_MEMORY", SAGE_OPT_SIZE, "1G", 16LL << 20,
                         1LL << 40, 0, CMD_BUILD, "SIZE", "memory one PDF extraction may add to the indexer's" },
    [OPT_MAX_FILE] = { "max-file-size", 0, "SAGE_MAX_FILE_SIZE", SAGE_OPT_SIZE, "100M", 1,
                       1LL << 40, 0, CMD_BUILD, "SIZE", "skip files larger than this" },
    [OPT_MEMORY_LIMIT] = { "memory-limit", 0, "SAGE_MEMORY_LIMIT", SAGE_OPT_SIZE, "256M", 0,
                           1LL << 50, 0, CMD_WRITE, "SIZE",
                           "postings held in memory before they are spilled to a temporary file "
                           "(0: no limit); the index is the same for any SIZE" },
    [OPT_TMP_DIR] = { "tmp-dir", 0, "SAGE_TMP_DIR", SAGE_OPT_STR, NULL, 0, 0, 0, CMD_WRITE, "DIR",
                      "where spilled postings go (default: the directory of --out)" },
    [OPT_BUILD_TIME] = { "build-time", 0, "SOURCE_DATE_EPOCH", SAGE_OPT_INT, NULL, 0,
                         253402300799LL, 0, CMD_WRITE, "EPOCH",
                         "build time recorded in the index (none by default)" },
    [OPT_ZSTD_LEVEL] = { "zstd-level", 0, "SAGE_ZSTD_LEVEL", SAGE_OPT_INT, "3", 1, 19, 0,
                         CMD_WRITE, "N", "zstd compression level" },
    [OPT_CHUNK_SIZE] = { "chunk-size", 0, "SAGE_CHUNK_SIZE", SAGE_OPT_SIZE, "1000", 64, 1LL << 30,
                         0, CMD_BUILD, "BYTES", "target chunk size" },
    [OPT_CHUNK_OVERLAP] = { "chunk-overlap", 0, "SAGE_CHUNK_OVERLAP", SAGE_OPT_SIZE, "100", 0,
                            1LL << 29, 0, CMD_BUILD, "BYTES",
                            "text repeated from the end of the previous chunk" },
    [OPT_MAX_CHUNK] = { "max-chunk", 0, "SAGE_MAX_CHUNK", SAGE_OPT_SIZE, "4000", 64, 1LL << 30, 0,
                        CMD_BUILD, "BYTES", "hard cap on a chunk's size" },
    [OPT_STEMMER] = { "stemmer", 0, "SAGE_STEMMER", SAGE_OPT_STR, "english", 0, 0, 0, CMD_BUILD,
                      "NAME", "Snowball stemmer (english, porter, ...) or none" },
    [OPT_STOPWORDS] = { "stopwords", 0, "SAGE_STOPWORDS", SAGE_OPT_CHOICE, "english", 0, 0, 0,
                        CMD_BUILD, "english|none", "stop words dropped at indexing and query time" },
    [OPT_JSON] = { "json", 0, NULL, SAGE_OPT_BOOL, NULL, 0, 1, 0, CMD_INFO | CMD_QUERY, NULL,
                   "print JSON instead of text" },
    [OPT_K] = { "k", 'k', "SAGE_K", SAGE_OPT_INT, "10", 1, 10000, 0, CMD_QUERY, "N",
                "number of results" },
    [OPT_FILTER_LIBRARY] = { "library", 0, "SAGE_QUERY_LIBRARY", SAGE_OPT_STR, NULL, 0, 0, 0,
                             CMD_QUERY, "NAME", "only hits from this library" },
    [OPT_TREC] = { "trec", 0, NULL, SAGE_OPT_STR, NULL, 0, 0, 0, CMD_QUERY, "QUERIES.jsonl",
                   "run every query of a JSONL file ({\"id\",\"text\"}) and print a TREC run" },
    [OPT_SCAN] = { "scan", 0, NULL, SAGE_OPT_BOOL, NULL, 0, 1, 0, CMD_QUERY, NULL,
                   "score every match exhaustively (no block-max pruning)" },
    [OPT_K1] = { "bm25-k1", 0, "SAGE_BM25_K1", SAGE_OPT_STR, "1.2", 0, 0, 0, CMD_QUERY, "X",
                 "BM25 term-frequency saturation" },
    [OPT_B] = { "bm25-b", 0, "SAGE_BM25_B", SAGE_OPT_STR, "0.75", 0, 0, 0, CMD_QUERY, "X",
                "BM25 length normalization, 0 to 1" },
    [OPT_MODE] = { "mode", 0, "SAGE_QUERY_MODE", SAGE_OPT_CHOICE, "auto", 0, 0, 0, CMD_QUERY,
                   "auto|bm25|dense|hybrid", "ranking (auto: hybrid when the index has vectors "
                   "and --embed-url is given, else bm25)" },
    [OPT_FUSION] = { "fusion", 0, "SAGE_QUERY_FUSION", SAGE_OPT_CHOICE, "rrf", 0, 0, 0, CMD_QUERY,
                     "rrf|convex", "how hybrid fuses its two lists (FORMAT.md 11.6)" },
    [OPT_W_BM25] = { "w-bm25", 0, "SAGE_QUERY_W_BM25", SAGE_OPT_STR, "1", 0, 0, 0, CMD_QUERY, "X",
                     "weight of the BM25 list in hybrid fusion" },
    [OPT_W_DENSE] = { "w-dense", 0, "SAGE_QUERY_W_DENSE", SAGE_OPT_STR, "1", 0, 0, 0, CMD_QUERY,
                      "X", "weight of the dense list in hybrid fusion" },
    [OPT_OVERSAMPLE] = { "oversample", 0, "SAGE_QUERY_OVERSAMPLE", SAGE_OPT_INT, "0", 0, 64, 0,
                         CMD_QUERY, "N", "dense candidates per hit rescored (0: the default, 4)" },
    [OPT_DENSE_METHOD] = { "dense", 0, "SAGE_QUERY_DENSE", SAGE_OPT_CHOICE, "auto", 0, 0, 0,
                           CMD_QUERY, "auto|exact|hnsw", "how the dense list is found: every "
                           "vector scanned, or the HNSW graph (auto: the graph for 50,000 chunks "
                           "or more without a filter)" },
    [OPT_EF] = { "ef", 0, "SAGE_QUERY_EF", SAGE_OPT_INT, "0", 0, 65536, 0, CMD_QUERY, "N",
                 "HNSW candidates per search (0: the default, 512)" },
    [OPT_LOG_FORMAT] = { "log-format", 0, "SAGE_LOG_FORMAT", SAGE_OPT_CHOICE, "text", 0, 0, 0,
                         0, "text|json", "format of log lines on stderr" },
    [OPT_VERBOSE] = { "verbose", 'v', "SAGE_VERBOSE", SAGE_OPT_BOOL, NULL, 0, 1, 0, 0, NULL,
                      "log each file as it is indexed or skipped" },
    [OPT_STAMP] = { "stamp", 0, NULL, SAGE_OPT_BOOL, NULL, 0, 1, 0, CMD_VERIFY, NULL,
                    "record the successful check in a .FILE.verified stamp, so that "
                    "sage-searchd serves this version of the file without reading it again" },
    [OPT_EMBEDDINGS] = { "embeddings", 0, "SAGE_EMBEDDINGS", SAGE_OPT_CHOICE, "required", 0, 0, 0,
                         CMD_BUILD, "required|optional|off",
                         "with --embed-url: a failed embedding server fails the build "
                         "(required), leaves a lexical-only index (optional), or is not used" },
    [OPT_EMBED_URL] = { "embed-url", 0, "SAGE_EMBED_URL", SAGE_OPT_STR, NULL, 0, 0, 0, CMD_BUILD | CMD_QUERY,
                        "URL", "OpenAI-compatible embedding server (http://gpu:8000); none: no vectors" },
    [OPT_EMBED_MODEL] = { "embed-model", 0, "SAGE_EMBED_MODEL", SAGE_OPT_STR, NULL, 0, 0, 0,
                          CMD_BUILD | CMD_QUERY, "NAME", "model name sent with every request (required with a URL; query: "
                          "the index's by default)" },
    [OPT_EMBED_KEY] = { "embed-api-key", 0, "SAGE_EMBED_API_KEY", SAGE_OPT_STR, NULL, 0, 0,
                        SAGE_OPT_SECRET, CMD_BUILD | CMD_QUERY, "KEY", "Bearer key for the embedding server" },
    [OPT_EMBED_KEY_FILE] = { "embed-api-key-file", 0, "SAGE_EMBED_API_KEY_FILE", SAGE_OPT_STR, NULL,
                             0, 0, 0, CMD_BUILD | CMD_QUERY, "FILE", "the key, on the first line of FILE" },
    [OPT_EMBED_DIM] = { "embed-dim", 0, "SAGE_EMBED_DIM", SAGE_OPT_INT, "0", 0, 8192, 0, CMD_BUILD,
                        "N", "expected dimension, checked on every vector (0: the first answer's)" },
    [OPT_EMBED_DOC_PREFIX] = { "embed-doc-prefix", 0, "SAGE_EMBED_DOC_PREFIX", SAGE_OPT_STR, NULL, 0,
                               0, 0, CMD_BUILD, "TEXT",
                               "prepended to each chunk sent (nomic: 'search_document: ')" },
    [OPT_EMBED_QUERY_PREFIX] = { "embed-query-prefix", 0, "SAGE_EMBED_QUERY_PREFIX", SAGE_OPT_STR,
                                 NULL, 0, 0, 0, CMD_BUILD, "TEXT",
                                 "recorded for queries (nomic: 'search_query: ')" },
    [OPT_EMBED_NORMALIZE] = { "embed-normalize", 0, "SAGE_EMBED_NORMALIZE", SAGE_OPT_CHOICE, "yes",
                              0, 0, 0, CMD_BUILD, "yes|no", "L2-normalize vectors as they arrive" },
    [OPT_EMBED_BATCH] = { "embed-batch", 0, "SAGE_EMBED_BATCH", SAGE_OPT_INT, "32", 1, 4096, 0,
                          CMD_BUILD, "N", "inputs per request (TEI's default limit is 32)" },
    [OPT_EMBED_MAX_TOKENS] = { "embed-max-tokens", 0, "SAGE_EMBED_MAX_TOKENS", SAGE_OPT_INT, "16384",
                               1, 1 << 24, 0, CMD_BUILD, "N",
                               "estimated tokens per request (bytes / 4)" },
    [OPT_EMBED_CONCURRENCY] = { "embed-concurrency", 0, "SAGE_EMBED_CONCURRENCY", SAGE_OPT_INT, "4",
                                1, 256, 0, CMD_BUILD, "N", "requests in flight" },
    [OPT_EMBED_TIMEOUT] = { "embed-timeout-ms", 0, "SAGE_EMBED_TIMEOUT_MS", SAGE_OPT_INT, "60000",
                            100, 3600000, 0, CMD_BUILD | CMD_QUERY, "MS", "time one request may take" },
    [OPT_EMBED_RETRIES] = { "embed-retries", 0, "SAGE_EMBED_RETRIES", SAGE_OPT_INT, "8", 1, 1000, 0,
                            CMD_BUILD, "N", "attempts per request (429, 5xx, timeouts, resets)" },
    [OPT_EMBED_RETRY_BUDGET] = { "embed-retry-budget-ms", 0, "SAGE_EMBED_RETRY_BUDGET_MS",
                                 SAGE_OPT_INT, "120000", 1, 86400000, 0, CMD_BUILD, "MS",
                                 "no retry starts later than this after a request's first failure" },
    [OPT_REUSE] = { "reuse", 0, "SAGE_REUSE", SAGE_OPT_STR, NULL, 0, 0, 0, CMD_BUILD,
                    "PREVIOUS.sage", "take from a previous index the vectors of chunks whose "
                    "text is unchanged (same embedding settings) and the OCR text of pages "
                    "whose image is unchanged (same OCR engine)" },
    [OPT_HNSW] = { "hnsw", 0, "SAGE_HNSW", SAGE_OPT_BOOL, NULL, 0, 1, 0, CMD_WRITE, NULL,
                   "also build an HNSW graph of the vectors for approximate search "
                   "(needs --embed-url)" },
    [OPT_HNSW_M] = { "hnsw-m", 0, "SAGE_HNSW_M", SAGE_OPT_INT, "16", 2, 256, 0, CMD_WRITE, "N",
                     "graph neighbours per node (2N on the bottom level)" },
    [OPT_HNSW_EF_CONSTRUCTION] = { "hnsw-ef-construction", 0, "SAGE_HNSW_EF_CONSTRUCTION",
                                   SAGE_OPT_INT, "200", 1, 65536, 0, CMD_WRITE, "N",
                                   "candidates considered per insertion: better graph, slower build" },
    [OPT_HNSW_THREADS] = { "hnsw-threads", 0, "SAGE_HNSW_THREADS", SAGE_OPT_INT, "0", 0, 256, 0,
                           CMD_WRITE, "N", "threads building the graph (0: one per core); "
                           "only 1 gives the same file from the same input" },
    [OPT_OCR] = { "ocr", 0, "SAGE_OCR", SAGE_OPT_CHOICE, "on", 0, 0, 0, CMD_BUILD, "on|off",
                  "read PDF pages without a text layer: with --ocr-url's server, else tesseract" },
    [OPT_OCR_URL] = { "ocr-url", 0, "SAGE_OCR_URL", SAGE_OPT_STR, NULL, 0, 0, 0, CMD_BUILD, "URL",
                      "OpenAI-compatible vision server (olmOCR on vLLM); none: local tesseract" },
    [OPT_OCR_MODEL] = { "ocr-model", 0, "SAGE_OCR_MODEL", SAGE_OPT_STR, "olmocr", 0, 0, 0,
                        CMD_BUILD, "NAME", "model name sent to the OCR server" },
    [OPT_OCR_KEY] = { "ocr-api-key", 0, "SAGE_OCR_API_KEY", SAGE_OPT_STR, NULL, 0, 0,
                      SAGE_OPT_SECRET, CMD_BUILD, "KEY", "Bearer key for the OCR server" },
    [OPT_OCR_KEY_FILE] = { "ocr-api-key-file", 0, "SAGE_OCR_API_KEY_FILE", SAGE_OPT_STR, NULL, 0,
                           0, 0, CMD_BUILD, "FILE", "the key, on the first line of FILE" },
    [OPT_OCR_DPI] = { "ocr-dpi", 0, "SAGE_OCR_DPI", SAGE_OPT_INT, "200", 50, 600, 0, CMD_BUILD,
                      "N", "resolution pages are rendered at for OCR" },
    [OPT_OCR_TIMEOUT] = { "ocr-timeout-ms", 0, "SAGE_OCR_TIMEOUT_MS", SAGE_OPT_INT, "120000", 100,
                          3600000, 0, CMD_BUILD, "MS", "time the OCR server may take on one page" },
    [OPT_OCR_RETRIES] = { "ocr-retries", 0, "SAGE_OCR_RETRIES", SAGE_OPT_INT, "6", 1, 1000, 0,
                          CMD_BUILD, "N", "attempts per page (429, 5xx, timeouts, resets)" },
    [OPT_PARTIAL] = { "partial", 0, NULL, SAGE_OPT_BOOL, NULL, 0, 1, 0, CMD_MERGE, NULL,
                      "merge a set of shards with some missing (the index lacks their "
                      "documents)" },
};

static const struct {
    const char *name;
    unsigned bit;
    int (*run)(struct cli *);
    const char *usage;
    const char *what;
} commands[] = {
    { "build", CMD_BUILD, cmd_build, "build --out DIR/NAME.sage [--library NAME=PATH]... [PATH...]",
      "index files and directories into one index file" },
    { "info", CMD_INFO, cmd_info, "info [--json] FILE",
      "show version, sections, counts and the build record" },
    { "verify", CMD_VERIFY, cmd_verify, "verify FILE...",
      "check every checksum; exit 0 when valid, 1 with the reason" },
    { "merge", CMD_MERGE, cmd_merge, "merge --out DIR/NAME.sage [--hnsw] SHARD.sage...",
      "merge shards (build --shard I/N) or whole indexes into one index file" },
    { "query", CMD_QUERY, cmd_query,
      "query [-k N] [--library NAME] [--json] FILE QUERY...\n       sage-indexer query [-k N] --trec QUERIES.jsonl FILE",
      "search an index file offline" },
};
#define N_COMMANDS (sizeof(commands) / sizeof(*commands))

static void usage(FILE *f)
{
    fprintf(f, "usage: sage-indexer COMMAND [OPTIONS] [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].what);
    fprintf(f, "\n'sage-indexer COMMAND --help' lists the options of a command; "
               "see also sage-indexer(1)\n");
}

static void command_help(size_t i)
{
    char *h = sage_opt_help(options, OPT__COUNT, commands[i].bit);
    printf("usage: sage-indexer %s\n\n%s.\n\noptions (flags win over variables):\n%s"
           "  %-30s show this help\n", commands[i].usage, commands[i].what, h ? h : "",
           "-h, --help");
    free(h);
}

int main(int argc, char **argv)
{
    struct cli c;
    struct sage_err err = { 0 };
    int status = 2;
    memset(&c, 0, sizeof(c));
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "__pdf-child") == 0 && argc == 6) {
        /* the PDF parser's own process, started by extract_pdf */
        char *e1, *e2, *e3;
        unsigned long pages = strtoul(argv[2], &e1, 10), ocr = strtoul(argv[3], &e2, 10),
                      dpi = strtoul(argv[4], &e3, 10);
        if (*e1 || *e2 || *e3 || pages == 0 || pages > UINT32_MAX || ocr > PDF_OCR_IMAGES ||
            dpi > 1200 || (strcmp(argv[5], "0") != 0 && strcmp(argv[5], "1") != 0))
            return 2;
        extract_pdf_child((uint32_t)pages, (int)ocr, (unsigned)dpi, argv[5][0] == '1');
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("sage-indexer %s (index format %d.%d)\n", SAGE_VERSION,
               SAGE_FORMAT_MAJOR, SAGE_FORMAT_MINOR);
        return 0;
    }
    size_t ci = 0;
    while (ci < N_COMMANDS && strcmp(commands[ci].name, argv[1]) != 0)
        ci++;
    if (ci == N_COMMANDS) {
        fprintf(stderr, "sage-indexer: unknown command '%s'\n", argv[1]);
        usage(stderr);
        return 2;
    }
    c.cmd = commands[ci].bit;
    int first = 0;
    int rc = sage_opt_parse(options, OPT__COUNT, c.cmd, c.v, argc - 1, argv + 1, &first, &err);
    if (rc == 1) {
        command_help(ci);
        status = 0;
        goto out;
    }
    if (rc < 0) {
        fprintf(stderr, "sage-indexer %s: %s\n", commands[ci].name, err.msg);
        goto out;
    }
    const char *lf = c.v[OPT_LOG_FORMAT].str;
    sage_log_setup("sage-indexer", c.v[OPT_VERBOSE].num ? SAGE_LOG_DEBUG : SAGE_LOG_INFO,
                   strcmp(lf, "json") == 0);
    c.args = argv + 1 + first;
    c.n_args = argc - 1 - first;
    status = commands[ci].run(&c);
out:
    sage_opt_release(c.v, OPT__COUNT);
    return status;
}
