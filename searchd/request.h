/* Turning a search request (a GET query string or a POST JSON body) into
 * its parameters, with the checks that do not need an index: types, ranges
 * and lengths. Untrusted input; kept apart from the handlers so a fuzz
 * target can reach it. */
#ifndef SEARCHD_REQUEST_H
#define SEARCHD_REQUEST_H

#include <jansson.h>
#include <stddef.h>

#include "search.h"

#define REQUEST_MAX_OFFSET 10000
#define REQUEST_MAX_DIM 65536       /* floats in a raw query vector (SAGE_VECTORS_DIM_MAX) */
#define REQUEST_MAX_OVERSAMPLE 64
#define REQUEST_MAX_WEIGHT 1000.0
#define REQUEST_MAX_EF 65536

struct search_req {
    const char *q, *index, *library, *path_prefix;  /* into buf or json */
    long long k, offset;
    int snippets;
    int has_mode;           /* mode given; else the server's default */
    enum sage_search_mode mode;
    enum sage_fusion_kind fusion;
    double w_bm25, w_dense; /* fusion weights, 1 unless given */
    long oversample;        /* 0: the library's default */
    enum sage_dense_method dense;   /* exact, hnsw or auto (the default) */
    long ef;                /* HNSW candidates; 0: the library's default */
    float *vector;          /* POST "vector": a raw query vector (owned), or NULL */
    size_t dim;
    json_t *json;           /* owns the strings of a POST body */
    char buf[4][1024];      /* decoded index, library, path_prefix, k/offset scratch */
    char *qbuf;             /* decoded q of a GET (owned) */
};

struct request_limits {
    long max_query, max_k;
};

/* A failure: the HTTP status, the JSON error code and a message. */
struct request_error {
    int status;
    const char *code;
    char message[256];
};

/* Parse a query string (may be NULL) or a JSON body into rq (release with
 * request_release in every case). 0, or -1 with *e filled. */
int request_from_query(const char *qs, const struct request_limits *lim, struct search_req *rq,
                       struct request_error *e);
int request_from_json(const char *body, size_t len, const struct request_limits *lim,
                      struct search_req *rq, struct request_error *e);
/* The same from a JSON object already parsed, whose reference rq takes. */
int request_from_object(json_t *j, const struct request_limits *lim, struct search_req *rq,
                        struct request_error *e);
void request_release(struct search_req *rq);

#endif
