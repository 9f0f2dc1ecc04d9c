/* Search request parsing: civetweb's decoder for query strings, jansson for
 * bodies; then one set of checks for both. */
#include "request.h"

#include <civetweb.h>
#include <errno.h>
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
    if (!rq->q || !*rq->q)
        return fail(e, 400, "bad_request", "the query 'q' is missing or empty");
    if ((long)strlen(rq->q) > lim->max_query)
        return fail(e, 400, "query_too_long", "the query is longer than %ld bytes",
                    lim->max_query);
    if (rq->k < 1 || rq->k > lim->max_k)
        return fail(e, 400, "bad_request", "k must be between 1 and %ld", lim->max_k);
    if (rq->offset < 0 || rq->offset > REQUEST_MAX_OFFSET)
        return fail(e, 400, "bad_request", "offset must be between 0 and %d",
                    REQUEST_MAX_OFFSET);
    return 0;
}

static void defaults(struct search_req *rq)
{
    memset(rq, 0, sizeof(*rq));
    rq->k = 10;
    rq->snippets = 1;
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
    return check(lim, rq, e);
}

int request_from_json(const char *body, size_t len, const struct request_limits *lim,
                      struct search_req *rq, struct request_error *e)
{
    json_error_t je;
    json_t *v;
    int bad = 0;
    defaults(rq);
    rq->json = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(rq->json))
        return fail(e, 400, "bad_json", "the body is not a JSON object: %s",
                    rq->json ? "another JSON value" : je.text);
    json_t *j = rq->json;
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
    return check(lim, rq, e);
}

void request_release(struct search_req *rq)
{
    json_decref(rq->json);
    sage_free(rq->qbuf);
    rq->json = NULL;
    rq->qbuf = NULL;
}
