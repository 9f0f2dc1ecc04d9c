/* Query embedding for sage-searchd: the indexer's embedding client
 * (indexer/embed.c, linked in) with what a server adds around it: the
 * index's settings as defaults and as a check (model, dimension, query
 * prefix), an LRU cache of query vectors, a short timeout and a circuit
 * breaker, so a dead or slow embedding server costs a hybrid query nothing
 * but its dense leg. Answers, never blocks past the timeout; thread-safe. */
#ifndef SEARCHD_QEMBED_H
#define SEARCHD_QEMBED_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "search.h"

/* Why a query has no vector: the stable names of the API's
 * "degraded.reason" and of /metrics' sage_degraded_total{reason}. */
enum qembed_reason {
    QE_OK,
    QE_NO_EMBEDDER,         /* "no_embedder": searchd has no --embed-url */
    QE_UNAVAILABLE,         /* "embedder_unavailable": refused, reset, HTTP error */
    QE_TIMEOUT,             /* "embedder_timeout": no answer within the timeout */
    QE_CIRCUIT_OPEN,        /* "circuit_open": recent failures; not asked */
    QE_MISMATCH,            /* "embedder_mismatch": answered with another dimension */
    QE__COUNT
};
const char *qembed_reason_name(enum qembed_reason r);

struct qembed_config {
    const char *url;                /* NULL: no embedder (dense needs a raw vector) */
    const char *model;              /* NULL: the index's model */
    const char *api_key, *api_key_file;
    unsigned timeout_ms;            /* one query's request, connect included */
    unsigned cache_entries;         /* LRU size; 0: no cache */
    unsigned breaker_failures;      /* consecutive failures that open the circuit */
    unsigned breaker_cooldown_ms;   /* open this long before one probe may pass */
};

/* ---- the circuit breaker, apart for its unit test ---- */

enum breaker_state { BREAKER_CLOSED, BREAKER_OPEN, BREAKER_HALF_OPEN };

/* Closed: every call passes; failures in a row count, and the threshold-th
 * opens it. Open: calls fail fast until the cool-down has passed; then one
 * call passes as a probe (half-open) while the others still fail fast; the
 * probe's success closes it, its failure opens it for another cool-down.
 * Not locked: the caller holds its own lock around both functions. */
struct breaker {
    enum breaker_state state;
    unsigned failures, threshold;
    double opened_ms, cooldown_ms;
    int probing;                    /* a half-open probe is in flight */
    uint64_t opens;                 /* times it opened */
};

/* Whether a call may go out at now_ms (it then must report its result). */
int breaker_allow(struct breaker *b, double now_ms);
void breaker_result(struct breaker *b, int ok, double now_ms);

/* ---- the service ---- */

struct qembed;

/* Copies c. No connection is made here. 0, -SAGE_EINVAL, -SAGE_ENOMEM. */
int qembed_new(const struct qembed_config *c, struct qembed **out, struct sage_err *err);
void qembed_free(struct qembed *q);

/* 1 when an embedding server is configured. */
int qembed_enabled(const struct qembed *q);

/* Checks an index's embedding settings against the embedder's: the first
 * index with vectors sets the model (unless --embed-model did), the query
 * prefix, the dimension; a later one must agree. 0 (also for an index
 * without vectors, or without an embedder), or -SAGE_EINVAL naming what
 * differs (counted: see qembed_mismatches). */
int qembed_check(struct qembed *q, const char *index, const struct sage_embedding_info *info,
                 struct sage_err *err);
/* Indexes refused by qembed_check so far. */
uint64_t qembed_mismatches(struct qembed *q);

/* Embeds one probe text now (bypassing cache and breaker) and compares
 * the dimension with the bound index's: for start-up. 0; -SAGE_EINVAL on a
 * mismatch (refuse to start); -SAGE_EREMOTE when the server cannot be
 * reached (serve degraded). 0 when nothing is bound yet. */
int qembed_probe(struct qembed *q, struct sage_err *err);

/* The vector of query text[0, len) for an index of dimension dim, from the
 * cache or the server, into out[0, dim). dim on success; else a negative
 * error code with *reason and err set. */
int qembed_query(struct qembed *q, const char *text, size_t len, float *out, size_t dim,
                 enum qembed_reason *reason, struct sage_err *err);

/* Logs that a query was answered degraded, at most once per
 * QEMBED_LOG_EVERY_MS (the line counts the ones left out). */
#define QEMBED_LOG_EVERY_MS 10000.0
void qembed_note_degraded(struct qembed *q, enum qembed_reason r, const char *why);

struct qembed_stats {
    uint64_t requests, failures;    /* queries sent to the server, and failed */
    uint64_t cache_hits, cache_misses;
    uint64_t breaker_opens;
    enum breaker_state breaker;
};
void qembed_get_stats(struct qembed *q, struct qembed_stats *s);

#endif
