/* The remote embedding client: texts go to an OpenAI-compatible
 * POST {base}/v1/embeddings (vLLM, text-embeddings-inference, Ollama,
 * llama.cpp) in batches bounded by an input count and an estimated token
 * budget, several requests in flight over kept-alive connections (one libcurl
 * multi handle on a background thread), retried with backoff on 429, 5xx,
 * timeouts and resets. Choosing what to embed (reuse by content hash) and
 * storing vectors in the index are left to the build. */
#ifndef INDEXER_EMBED_H
#define INDEXER_EMBED_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "remote.h"

/* Receives one vector (dim floats, normalized when asked) for the id given
 * to embed_add. Called on the embedder's I/O thread, once per id, in no
 * particular order; the vector is valid only during the call. Non-zero
 * stops the embedder with that error (negated code, as our functions return). */
typedef int (*embed_vector_fn)(void *ctx, uint64_t id, const float *vec, unsigned dim);

/* Everything is borrowed; embed_new copies what it keeps. A zero number
 * field takes the default shown (embed_config_init sets them explicitly). */
struct embed_config {
    const char *url;            /* base URL: http://gpu:8000, .../v1 or the
                                   full .../v1/embeddings (remote_endpoint) */
    const char *model;          /* sent as "model"; required */
    const char *api_key;        /* sent as "Authorization: Bearer KEY"; NULL: none */
    const char *api_key_file;   /* the key's first line is read from here at
                                   embed_new when api_key is NULL */
    const char *doc_prefix;     /* prepended to every embed_add text ("search_document: ") */
    const char *query_prefix;   /* prepended to every embed_query text ("search_query: ") */
    unsigned dim;               /* expected dimension; 0: taken from the first
                                   response, then enforced (see embed_dim) */
    int normalize;              /* L2-normalize every vector on arrival */
    unsigned max_inputs;        /* inputs per request (32, TEI's default) */
    unsigned max_tokens;        /* estimated tokens per request (16384); an input
                                   estimated over the budget goes alone */
    unsigned concurrency;       /* requests in flight or waiting to retry (4) */
    struct remote_policy retry; /* timeout 60000 ms per request, 8 attempts, a
                                   120000 ms budget, backoff 250 to 30000 ms */
    unsigned linger_ms;         /* a partial batch waits this long for more input
                                   before it is sent anyway (20) */
    size_t max_queue_bytes;     /* embed_add blocks while this much text waits (32 MiB) */
    embed_vector_fn on_vector;  /* NULL: vectors are kept, see embed_vectors */
    void *ctx;                  /* for on_vector */
};

/* Client-side counters, for the build report. */
struct embed_stats {
    uint64_t inputs;            /* inputs embedded (each counted once) */
    uint64_t tokens;            /* estimated tokens of the inputs embedded */
    uint64_t max_batch;         /* most inputs in one request */
    struct remote_counters http;
};

/* Token estimate used for batching: ceil(bytes / 4), at least 1. Cheap, and
 * within a small factor of BPE/WordPiece counts for English text and code. */
static inline uint64_t embed_estimate_tokens(size_t len)
{
    return len ? ((uint64_t)len + 3) / 4 : 1;
}

/* Defaults for every field; url and model stay NULL. */
void embed_config_init(struct embed_config *c);

/* Sets the fields named by SAGE_EMBED_URL, SAGE_EMBED_MODEL,
 * SAGE_EMBED_API_KEY, SAGE_EMBED_API_KEY_FILE, SAGE_EMBED_DIM,
 * SAGE_EMBED_DOC_PREFIX, SAGE_EMBED_QUERY_PREFIX, SAGE_EMBED_NORMALIZE (1/0,
 * true/false, yes/no), SAGE_EMBED_BATCH (max_inputs), SAGE_EMBED_MAX_TOKENS,
 * SAGE_EMBED_CONCURRENCY, SAGE_EMBED_TIMEOUT_MS, SAGE_EMBED_RETRIES
 * (max_attempts), SAGE_EMBED_RETRY_BUDGET_MS, when set; others are left as
 * they are. Strings point into the environment (valid while it is unchanged).
 * -SAGE_EINVAL naming the variable for a malformed or out-of-range value. */
int embed_config_from_env(struct embed_config *c, struct sage_err *err);

struct embedder;

/* Checks c, reads the key file, and starts the I/O thread. Fails with
 * -SAGE_EINVAL (bad config, unreadable key file) or -SAGE_ENOMEM. */
int embed_new(const struct embed_config *c, struct embedder **out, struct sage_err *err);

/* Queues text[0..len) (valid UTF-8; doc_prefix is prepended) for embedding
 * under id, copying it. Thread-safe. Blocks while max_queue_bytes of text
 * wait (backpressure). With stored vectors (no on_vector), ids are indices
 * into the result and should be dense from 0 (the chunk number); each id
 * must be given once. Returns 0, -SAGE_EINVAL for invalid UTF-8, or the
 * embedder's first fatal error (the same one embed_finish returns). Not
 * after embed_finish. */
int embed_add(struct embedder *e, uint64_t id, const char *text, size_t len, struct sage_err *err);

/* Stores vec (dim floats) under id without sending anything: a vector
 * reused from a previous index. Only with stored vectors; thread-safe. */
int embed_put(struct embedder *e, uint64_t id, const float *vec, unsigned dim,
              struct sage_err *err);

/* Sends what is queued, waits for every request, and stops the I/O thread.
 * Returns 0 or the first fatal error, whose message names the server, the
 * HTTP status or transport error, and the server's last message. Once only. */
int embed_finish(struct embedder *e, struct sage_err *err);

/* After a successful embed_finish, with stored vectors: hands over the
 * vectors as one array of n * dim floats, row i being id i (sage_free).
 * Fails with -SAGE_EINVAL naming the first id below n that has no vector,
 * where n is one more than the largest id added or put (never a silently
 * partial vector set). n = 0 and *vecs = NULL when nothing was added. */
int embed_vectors(struct embedder *e, float **vecs, size_t *n, struct sage_err *err);

/* Embeds one query text (query_prefix prepended) synchronously, on a
 * connection of its own, with the same retry policy, into out[0..out_cap).
 * Returns the dimension, -SAGE_ELIMIT when the vector does not fit, or the
 * error. Thread-safe: concurrent queries run at once, each on a connection
 * taken from a pool of idle ones (a new one when none is idle; up to 64
 * stay open between queries); usable with or without
 * embed_add, before or after embed_finish. */
int embed_query(struct embedder *e, const char *text, size_t len, float *out, size_t out_cap,
                struct sage_err *err);

/* The dimension: the configured one, or the one learned from the first
 * response (0 before any). */
unsigned embed_dim(const struct embedder *e);

/* A snapshot of the counters. Thread-safe. */
void embed_get_stats(const struct embedder *e, struct embed_stats *s);

/* Stops the I/O thread if embed_finish was not called (abandoning queued
 * work) and frees everything. NULL allowed. */
void embed_free(struct embedder *e);

/* Parses an embeddings response body[0..len) that must hold n vectors:
 * "data" holds exactly n objects whose "index" values (the position when
 * absent) are 0..n-1 once each and whose "embedding" arrays hold *dim finite
 * numbers (with *dim 0, the first array sets it, at most EMBED_MAX_DIM).
 * *out receives n * *dim floats in index order (sage_free). -SAGE_EREMOTE
 * with the reason for anything else, -SAGE_ENOMEM. Pure, for fuzzing. */
#define EMBED_MAX_DIM 8192u
int embed_parse_response(const char *body, size_t len, size_t n, unsigned *dim, float **out,
                         struct sage_err *err);

#endif
