/* Search request parsing: civetweb's decoder for query strings, jansson for
 * bodies; then one set of checks for both. */
#include "request.h"

#include <civetweb.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

static int fail(struct request_error *e, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(struct request_error *e, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    e->status = status;
    e->code = code;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
    return -1;
}

static int parse_int(const char *s, long long *v)
{
    char *end;
    errno = 0;
    *v = strtoll(s, &end, 10);
    return errno || end == s || *end ? -1 : 0;
}

/* The checks both forms share. */
static int check(const struct request_limits *lim, struct search_req *rq, struct request_error *e)
{
    if ((!rq->q || !*rq->q) && !rq->vector)
        return fail(e, 400, "bad_request", "the query 'q' is missing or empty");
    if (rq->vector && rq->has_mode && rq->mode == SAGE_MODE_BM25)
        return fail(e, 400, "bad_request", "a 'vector' needs mode dense or hybrid");
    if (!rq->q)
        rq->q = "";
    if ((long)strlen(rq->q) > lim->max_query)
        return fail(e, 400, "query_too_long", "the query is longer than %ld bytes",
                    lim->max_query);
    if (rq->k < 1 || rq->k > lim->max_k)
        return fail(e, 400, "bad_request", "k must be between 1 and %ld", lim->max_k);
    if (rq->offset < 0 || rq->offset > REQUEST_MAX_OFFSET)
        return fail(e, 400, "bad_request", "offset must be between 0 and %d",
                    REQUEST_MAX_OFFSET);
    if (!(rq->w_bm25 >= 0 && rq->w_bm25 <= REQUEST_MAX_WEIGHT) ||
        !(rq->w_dense >= 0 && rq->w_dense <= REQUEST_MAX_WEIGHT) ||
        rq->w_bm25 + rq->w_dense <= 0)
        return fail(e, 400, "bad_request", "w_bm25 and w_dense must be between 0 and %g, not "
                    "both 0", REQUEST_MAX_WEIGHT);
    if (rq->ef < 0 || rq->ef > REQUEST_MAX_EF)
        return fail(e, 400, "bad_request", "ef must be between 1 and %d", REQUEST_MAX_EF);
    if (rq->oversample < 0 || rq->oversample > REQUEST_MAX_OVERSAMPLE)
        return fail(e, 400, "bad_request", "oversample must be between 1 and %d",
                    REQUEST_MAX_OVERSAMPLE);
    return 0;
}

static void defaults(struct search_req *rq)
{
    memset(rq, 0, sizeof(*rq));
    rq->k = 10;
    rq->snippets = 1;
    rq->fusion = SAGE_FUSION_RRF;
    rq->w_bm25 = rq->w_dense = 1;
}

static int parse_double(const char *s, double *v)
{
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return errno || end == s || *end || !isfinite(*v) ? -1 : 0;
}

/* mode and fusion by name. */
static int set_choices(struct search_req *rq, const char *mode, const char *fusion,
                       const char *dense, struct request_error *e)
{
    if (dense && sage_dense_method_parse(dense, &rq->dense) < 0)
        return fail(e, 400, "bad_request", "dense must be auto, exact or hnsw");
    if (mode) {
        if (sage_search_mode_parse(mode, &rq->mode) < 0)
            return fail(e, 400, "bad_request", "mode must be bm25, dense or hybrid");
        rq->has_mode = 1;
    }
    if (fusion && sage_fusion_parse(fusion, &rq->fusion) < 0)
        return fail(e, 400, "bad_request", "fusion must be rrf or convex");
    return 0;
}

/* A query-string parameter into buf; NULL when absent. -2 from civetweb
 * (too long for buf) is an error the caller reports. */
static const char *param(const char *qs, const char *name, char *buf, size_t len, int *too_long)
{
    int n = qs ? mg_get_var(qs, strlen(qs), name, buf, len) : -1;
    if (n == -2)
        *too_long = 1;
    return n >= 0 ? buf : NULL;
}

int request_from_query(const char *qs, const struct request_limits *lim, struct search_req *rq,
                       struct request_error *e)
{
    int too_long = 0;
    char num[32];
    defaults(rq);
    size_t qcap = (size_t)lim->max_query * 4 + 16;
    if (qs && strlen(qs) > 3 * (size_t)lim->max_query + 4096)
        return fail(e, 400, "query_too_long", "the request line is too long");
    if (!(rq->qbuf = sage_malloc(qcap)))
        return fail(e, 500, "internal", "out of memory");
    rq->q = param(qs, "q", rq->qbuf, qcap, &too_long);
    rq->index = param(qs, "index", rq->buf[0], sizeof(rq->buf[0]), &too_long);
    rq->library = param(qs, "library", rq->buf[1], sizeof(rq->buf[1]), &too_long);
    rq->path_prefix = param(qs, "path_prefix", rq->buf[2], sizeof(rq->buf[2]), &too_long);
    if (too_long)
        return fail(e, 400, "query_too_long", "a parameter is too long");
    if ((param(qs, "k", num, sizeof(num), &too_long) && parse_int(num, &rq->k) < 0) ||
        (param(qs, "offset", num, sizeof(num), &too_long) && parse_int(num, &rq->offset) < 0) ||
        too_long)
        return fail(e, 400, "bad_request", "k and offset must be integers");
    if (param(qs, "snippets", num, sizeof(num), &too_long))
        rq->snippets = strcmp(num, "0") != 0 && strcmp(num, "false") != 0;
    char mode[16], fusion[16], dense[16];
    const char *m = param(qs, "mode", mode, sizeof(mode), &too_long);
    const char *f = param(qs, "fusion", fusion, sizeof(fusion), &too_long);
    const char *dm = param(qs, "dense", dense, sizeof(dense), &too_long);
    if (too_long)
        return fail(e, 400, "bad_request", "mode, fusion or dense is not one of the names");
    if (set_choices(rq, m, f, dm, e) < 0)
        return -1;
    long long os = 0, ef = 0;
    if ((param(qs, "ef", num, sizeof(num), &too_long) && (parse_int(num, &ef) < 0 || ef < 1)) ||
        too_long)
        return fail(e, 400, "bad_request", "ef must be a positive integer");
    rq->ef = ef > REQUEST_MAX_EF ? REQUEST_MAX_EF + 1 : (long)ef;
    if ((param(qs, "w_bm25", num, sizeof(num), &too_long) && parse_double(num, &rq->w_bm25) < 0) ||
        (param(qs, "w_dense", num, sizeof(num), &too_long) &&
         parse_double(num, &rq->w_dense) < 0) ||
        (param(qs, "oversample", num, sizeof(num), &too_long) &&
         (parse_int(num, &os) < 0 || os < 1)) || too_long)
        return fail(e, 400, "bad_request", "w_bm25 and w_dense must be numbers, oversample a "
                    "positive integer");
    /* clamped just past the limit, so check() refuses it by the same message */
    rq->oversample = os > REQUEST_MAX_OVERSAMPLE ? REQUEST_MAX_OVERSAMPLE + 1 : (long)os;
    return check(lim, rq, e);
}

int request_from_json(const char *body, size_t len, const struct request_limits *lim,
                      struct search_req *rq, struct request_error *e)
{
    json_error_t je;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(j)) {
        defaults(rq);
        rq->json = j;
        return fail(e, 400, "bad_json", "the body is not a JSON object: %s",
                    j ? "another JSON value" : je.text);
    }
    return request_from_object(j, lim, rq, e);
}

int request_from_object(json_t *j, const struct request_limits *lim, struct search_req *rq,
                        struct request_error *e)
{
    json_t *v;
    int bad = 0;
    defaults(rq);
    rq->json = j;
    const char *keys[] = { "q", "index", "library", "path_prefix" };
    const char **dst[] = { &rq->q, &rq->index, &rq->library, &rq->path_prefix };
    for (size_t i = 0; i < 4; i++) {
        v = json_object_get(j, keys[i]);
        if (v && !json_is_string(v))
            return fail(e, 400, "bad_request", "'%s' must be a string", keys[i]);
        /* a NUL inside would cut the string short without notice */
        if (v && strlen(json_string_value(v)) != json_string_length(v))
            return fail(e, 400, "bad_request", "'%s' contains a NUL character", keys[i]);
        *dst[i] = json_string_value(v);
    }
    if ((v = json_object_get(j, "k"))) {
        bad |= !json_is_integer(v);
        rq->k = json_integer_value(v);
    }
    if ((v = json_object_get(j, "offset"))) {
        bad |= !json_is_integer(v);
        rq->offset = json_integer_value(v);
    }
    if ((v = json_object_get(j, "snippets"))) {
        bad |= !json_is_boolean(v);
        rq->snippets = json_is_true(v);
    }
    if (bad)
        return fail(e, 400, "bad_request", "k and offset must be integers, snippets a boolean");
    json_t *m = json_object_get(j, "mode"), *f = json_object_get(j, "fusion");
    json_t *dm = json_object_get(j, "dense");
    if ((m && !json_is_string(m)) || (f && !json_is_string(f)) || (dm && !json_is_string(dm)))
        return fail(e, 400, "bad_request", "'mode', 'fusion' and 'dense' must be strings");
    if (set_choices(rq, json_string_value(m), json_string_value(f), json_string_value(dm), e) < 0)
        return -1;
    if ((v = json_object_get(j, "ef"))) {
        if (!json_is_integer(v) || json_integer_value(v) < 1)
            return fail(e, 400, "bad_request", "'ef' must be a positive integer");
        rq->ef = json_integer_value(v) > REQUEST_MAX_EF ? REQUEST_MAX_EF + 1
                                                         : (long)json_integer_value(v);
    }
    const char *wk[] = { "w_bm25", "w_dense" };
    double *wd[] = { &rq->w_bm25, &rq->w_dense };
    for (size_t i = 0; i < 2; i++)
        if ((v = json_object_get(j, wk[i]))) {
            if (!json_is_number(v))
                return fail(e, 400, "bad_request", "'%s' must be a number", wk[i]);
            *wd[i] = json_number_value(v);
        }
    if ((v = json_object_get(j, "oversample"))) {
        if (!json_is_integer(v) || json_integer_value(v) < 1)
            return fail(e, 400, "bad_request", "'oversample' must be a positive integer");
        rq->oversample = json_integer_value(v) > REQUEST_MAX_OVERSAMPLE
                         ? REQUEST_MAX_OVERSAMPLE + 1 : (long)json_integer_value(v);
    }
    if ((v = json_object_get(j, "vector"))) {
        size_t n = json_array_size(v);
        if (!json_is_array(v) || n == 0 || n > REQUEST_MAX_DIM)
            return fail(e, 400, "bad_vector", "'vector' must be an array of 1 to %d numbers",
                        REQUEST_MAX_DIM);
        if (!(rq->vector = sage_calloc(n, sizeof(float))))
            return fail(e, 500, "internal", "out of memory");
        rq->dim = n;
        for (size_t i = 0; i < n; i++) {
            json_t *x = json_array_get(v, i);
            double d = json_number_value(x);
            /* jansson refuses NaN and infinities in JSON text, but a double
             * beyond float's range would become one */
            if (!json_is_number(x) || !(d >= -FLT_MAX && d <= FLT_MAX))
                return fail(e, 400, "bad_vector", "'vector' item %zu is not a finite number "
                            "within float range", i);
            rq->vector[i] = (float)d;
        }
    }
    return check(lim, rq, e);
}

void request_release(struct search_req *rq)
{
    json_decref(rq->json);
    sage_free(rq->qbuf);
    sage_free(rq->vector);
    rq->json = NULL;
    rq->qbuf = NULL;
    rq->vector = NULL;
}
