/* Prometheus metrics of sage-searchd: requests by route and status, a
 * latency histogram per route, and, read from the registry at scrape time,
 * each index's generation, size, mapped and resident bytes, and the reload
 * counters. Counting is lock-free (atomic adds); thread-safe. */
#ifndef SEARCHD_METRICS_H
#define SEARCHD_METRICS_H

#include "registry.h"

enum route { R_SEARCH, R_INDEXES, R_DOCUMENTS, R_HEALTHZ, R_READYZ, R_METRICS, R_RELOAD,
             R_OTHER, R__COUNT };

struct metrics;

int metrics_new(struct metrics **out);
void metrics_free(struct metrics *m);

/* The route a request path belongs to. */
enum route metrics_route(const char *path);
void metrics_request(struct metrics *m, enum route r, int status, double seconds);

/* The exposition text (owned, sage_free). */
char *metrics_render(struct metrics *m, struct registry *reg);

#endif
