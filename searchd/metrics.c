/* Counters and histograms in fixed arrays; rendering reads them with atomic
 * loads and asks the registry for per-index figures. */
#include "metrics.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "alloc.h"
#include "err.h"

static const char *const route_names[R__COUNT] = {
    "search", "indexes", "documents", "healthz", "readyz", "metrics", "reload", "mcp", "other"
};
static const int statuses[] = { 200, 204, 400, 401, 403, 404, 405, 413, 429, 500, 503 };
#define N_STATUS (sizeof(statuses) / sizeof(*statuses) + 1)     /* + "other" */
static const double bounds[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                 0.5, 1, 2.5, 5 };
#define N_BOUNDS (sizeof(bounds) / sizeof(*bounds))

struct metrics {
    uint64_t requests[R__COUNT][N_STATUS];
    uint64_t buckets[R__COUNT][N_BOUNDS + 1];   /* last: +Inf */
    uint64_t sum_us[R__COUNT];
    uint64_t degraded[QE__COUNT];
};

int metrics_new(struct metrics **out)
{
    *out = sage_calloc(1, sizeof(**out));
    return *out ? 0 : -SAGE_ENOMEM;
}

void metrics_free(struct metrics *m)
{
    sage_free(m);
}

enum route metrics_route(const char *p)
{
    if (!p)
        return R_OTHER;
    if (strcmp(p, "/v1/search") == 0)
        return R_SEARCH;
    if (strcmp(p, "/v1/indexes") == 0)
        return R_INDEXES;
    if (strncmp(p, "/v1/documents/", 14) == 0)
        return R_DOCUMENTS;
    if (strcmp(p, "/healthz") == 0)
        return R_HEALTHZ;
    if (strcmp(p, "/readyz") == 0)
        return R_READYZ;
    if (strcmp(p, "/metrics") == 0)
        return R_METRICS;
    if (strcmp(p, "/v1/admin/reload") == 0)
        return R_RELOAD;
    if (strcmp(p, "/mcp") == 0)
        return R_MCP;
    return R_OTHER;
}

void metrics_request(struct metrics *m, enum route r, int status, double seconds)
{
    size_t s = 0;
    while (s < N_STATUS - 1 && statuses[s] != status)
        s++;
    size_t b = 0;
    while (b < N_BOUNDS && seconds > bounds[b])
        b++;
    __atomic_add_fetch(&m->requests[r][s], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&m->buckets[r][b], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&m->sum_us[r], (uint64_t)(seconds * 1e6), __ATOMIC_RELAXED);
}

void metrics_degraded(struct metrics *m, enum qembed_reason r)
{
    if ((unsigned)r < QE__COUNT)
        __atomic_add_fetch(&m->degraded[r], 1, __ATOMIC_RELAXED);
}

struct out {
    char *s;
    size_t len, cap;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    for (int pass = 0; pass < 2 && o->s; pass++) {
        va_start(ap, fmt);
        int n = vsnprintf(o->s + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if (o->len + (size_t)n < o->cap) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = (o->cap + (size_t)n) * 2;
        char *s = sage_realloc(o->s, cap);
        if (!s) {
            sage_free(o->s);
            o->s = NULL;
            return;
        }
        o->s = s;
        o->cap = cap;
    }
}

/* Bytes of the mapping now in memory (mincore), page-granular. */
static uint64_t resident(const void *base, uint64_t size)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t pages = (size_t)((size + (uint64_t)page - 1) / (uint64_t)page);
    unsigned char *v = sage_malloc(pages ? pages : 1);
    uint64_t n = 0;
    if (v && size && mincore((void *)base, (size_t)size, v) == 0)
        for (size_t i = 0; i < pages; i++)
            n += v[i] & 1;
    sage_free(v);
    return n * (uint64_t)page;
}

char *metrics_render(struct metrics *m, struct registry *reg, struct qembed *qe)
{
    struct out o = { sage_malloc(8192), 0, 8192 };
    put(&o, "# HELP sage_requests_total HTTP requests by route and status.\n"
            "# TYPE sage_requests_total counter\n");
    for (int r = 0; r < R__COUNT; r++)
        for (size_t s = 0; s < N_STATUS; s++) {
            uint64_t v = __atomic_load_n(&m->requests[r][s], __ATOMIC_RELAXED);
            if (!v)
                continue;
            if (s < N_STATUS - 1)
                put(&o, "sage_requests_total{route=\"%s\",status=\"%d\"} %llu\n", route_names[r],
                    statuses[s], (unsigned long long)v);
            else
                put(&o, "sage_requests_total{route=\"%s\",status=\"other\"} %llu\n",
                    route_names[r], (unsigned long long)v);
        }
    put(&o, "# HELP sage_request_duration_seconds Request latency by route.\n"
            "# TYPE sage_request_duration_seconds histogram\n");
    for (int r = 0; r < R__COUNT; r++) {
        uint64_t cum = 0;
        for (size_t b = 0; b <= N_BOUNDS; b++) {
            cum += __atomic_load_n(&m->buckets[r][b], __ATOMIC_RELAXED);
            if (b < N_BOUNDS)
                put(&o, "sage_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
                    route_names[r], bounds[b], (unsigned long long)cum);
            else
                put(&o, "sage_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n",
                    route_names[r], (unsigned long long)cum);
        }
        put(&o, "sage_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
                "sage_request_duration_seconds_count{route=\"%s\"} %llu\n", route_names[r],
            (double)__atomic_load_n(&m->sum_us[r], __ATOMIC_RELAXED) / 1e6, route_names[r],
            (unsigned long long)cum);
    }
    size_t n = 0;
    struct snapshot **all = registry_acquire_all(reg, &n);
    static const struct {
        const char *name, *help;
    } gauges[] = {
        { "sage_index_generation", "Generation of the index being served." },
        { "sage_index_size_bytes", "Size of the index file." },
        { "sage_index_mapped_bytes", "Bytes of the index mapped." },
        { "sage_index_resident_bytes", "Bytes of the mapping in memory." },
    };
    for (size_t g = 0; g < sizeof(gauges) / sizeof(*gauges); g++) {
        put(&o, "# HELP %s %s\n# TYPE %s gauge\n", gauges[g].name, gauges[g].help,
            gauges[g].name);
        for (size_t i = 0; i < n; i++) {
            uint64_t v = g == 0 ? all[i]->generation : g == 3
                ? resident(sage_reader_base(all[i]->reader), all[i]->size) : all[i]->size;
            put(&o, "%s{index=\"%s\"} %llu\n", gauges[g].name, all[i]->name,
                (unsigned long long)v);
        }
    }
    put(&o, "# HELP sage_index_loaded_timestamp_seconds When the generation being served was loaded.\n"
            "# TYPE sage_index_loaded_timestamp_seconds gauge\n");
    for (size_t i = 0; i < n; i++)
        put(&o, "sage_index_loaded_timestamp_seconds{index=\"%s\"} %.3f\n", all[i]->name,
            (double)all[i]->loaded_at.tv_sec + all[i]->loaded_at.tv_nsec / 1e9);
    put(&o, "# HELP sage_index_build_timestamp_seconds The build time its build record holds "
            "(indexes built with --build-time or SOURCE_DATE_EPOCH).\n"
            "# TYPE sage_index_build_timestamp_seconds gauge\n");
    for (size_t i = 0; i < n; i++) {
        json_t *bt = json_object_get(all[i]->build, "build_time");
        if (json_is_integer(bt))
            put(&o, "sage_index_build_timestamp_seconds{index=\"%s\"} %lld\n", all[i]->name,
                (long long)json_integer_value(bt));
    }
    registry_release_all(all, n);
    struct registry_stats st;
    registry_stats(reg, &st);
    put(&o, "# HELP sage_reloads_total Index loads by result.\n"
            "# TYPE sage_reloads_total counter\n"
            "sage_reloads_total{result=\"ok\"} %llu\nsage_reloads_total{result=\"failed\"} %llu\n"
            "# HELP sage_last_reload_timestamp_seconds When an index was last loaded or unloaded.\n"
            "# TYPE sage_last_reload_timestamp_seconds gauge\n"
            "sage_last_reload_timestamp_seconds %.3f\n"
            "# HELP sage_ready Whether every index in the directory is loaded.\n"
            "# TYPE sage_ready gauge\nsage_ready %d\n",
        (unsigned long long)st.reloads_ok, (unsigned long long)st.reloads_failed, st.last_reload,
        registry_ready(reg));
    put(&o, "# HELP sage_degraded_total Searches answered from BM25 alone because the query "
            "had no vector, by reason.\n# TYPE sage_degraded_total counter\n");
    for (int r = QE_OK + 1; r < QE__COUNT; r++)
        put(&o, "sage_degraded_total{reason=\"%s\"} %llu\n", qembed_reason_name(r),
            (unsigned long long)__atomic_load_n(&m->degraded[r], __ATOMIC_RELAXED));
    struct qembed_stats qs;
    qembed_get_stats(qe, &qs);
    put(&o, "# HELP sage_embed_requests_total Query embeddings asked of the embedding server, "
            "by result.\n# TYPE sage_embed_requests_total counter\n"
            "sage_embed_requests_total{result=\"ok\"} %llu\n"
            "sage_embed_requests_total{result=\"failed\"} %llu\n"
            "# HELP sage_embed_cache_total Query vector cache lookups, by result.\n"
            "# TYPE sage_embed_cache_total counter\n"
            "sage_embed_cache_total{result=\"hit\"} %llu\n"
            "sage_embed_cache_total{result=\"miss\"} %llu\n"
            "# HELP sage_embed_breaker_opens_total Times the embedder's circuit breaker opened.\n"
            "# TYPE sage_embed_breaker_opens_total counter\n"
            "sage_embed_breaker_opens_total %llu\n"
            "# HELP sage_embed_breaker_state Circuit breaker: 0 closed, 1 open, 2 half-open.\n"
            "# TYPE sage_embed_breaker_state gauge\nsage_embed_breaker_state %d\n",
        (unsigned long long)(qs.requests - qs.failures), (unsigned long long)qs.failures,
        (unsigned long long)qs.cache_hits, (unsigned long long)qs.cache_misses,
        (unsigned long long)qs.breaker_opens, (int)qs.breaker);
    return o.s;
}
