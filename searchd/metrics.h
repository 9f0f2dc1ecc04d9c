/* Prometheus metrics of sage-searchd: requests by route and status, a
 * latency histogram per route, and, read from the registry at scrape time,
 * each index's generation, size, mapped and resident bytes, and the reload
 * counters; degraded answers by reason and the query embedder's requests,
 * cache and breaker. Counting is lock-free (atomic adds); thread-safe. */
#ifndef SEARCHD_METRICS_H
#define SEARCHD_METRICS_H

#include "qembed.h"
#include "registry.h"

enum route { R_SEARCH, R_INDEXES, R_DOCUMENTS, R_HEALTHZ, R_READYZ, R_METRICS, R_RELOAD,
             R_MCP, R_OTHER, R__COUNT };

struct metrics;

int metrics_new(struct metrics **out);
void metrics_free(struct metrics *m);

/* The route a request path belongs to. */
enum route metrics_route(const char *path);
void metrics_request(struct metrics *m, enum route r, int status, double seconds);

/* A search answered degraded (hybrid from BM25 alone), by reason. */
void metrics_degraded(struct metrics *m, enum qembed_reason r);

/* The exposition text (owned, sage_free); qe may be NULL. */
char *metrics_render(struct metrics *m, struct registry *reg, struct qembed *qe);

#endif
