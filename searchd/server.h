/* sage-searchd's shared state and the civetweb glue: the configuration,
 * the registry, metrics and rate limiter every handler uses, and the helpers
 * handlers answer with (JSON bodies, JSON errors, CORS, reading bodies under
 * a cap). Routes live in api_*.c. */
#ifndef SEARCHD_SERVER_H
#define SEARCHD_SERVER_H

#include <jansson.h>
#include <stddef.h>

#include "auth.h"
#include "metrics.h"
#include "qembed.h"
#include "registry.h"

struct mg_connection;
struct mg_context;

struct server_config {
    const char *listen;             /* civetweb listening_ports, e.g. 127.0.0.1:8080 */
    int threads;
    const char *tls_cert, *tls_key; /* both or neither */
    long request_timeout_ms;
    long max_body;                  /* bytes of a POST body */
    long max_query;                 /* bytes of a query */
    long max_k;
    char *const *cors;              /* allowed origins ("*" for any) */
    size_t n_cors;
    int access_log;                 /* one JSON line per request on stderr */
};

struct app {
    struct server_config cfg;
    struct registry *reg;
    struct metrics *metrics;
    struct auth *auth;
    struct qembed *qe;              /* query embedding; never NULL once started */
    struct mg_context *ctx;
    int port;                       /* the port bound (after start) */
    int in_flight;                  /* atomic: requests between begin and end */
    int draining;                   /* atomic: stopping; new requests get 503 */
};

/* Starts civetweb with the routes; fills app->port. */
int server_start(struct app *app);
/* Answers new requests 503 while the requests in flight finish (for at
 * most the request timeout), then stops civetweb and frees it. */
void server_stop(struct app *app);

/* ---- for the handlers ---- */

/* Sends v (stolen) as the JSON body with status. Returns status. */
int send_json(struct mg_connection *c, int status, json_t *v);
/* Sends {"error":{"code","message"}} with status; extra headers (may be
 * NULL) such as "Retry-After: 2\r\n". Returns status. */
int send_error(struct mg_connection *c, int status, const char *code, const char *extra_headers,
               const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Sends body as a 200 of type with extra headers (may be NULL). */
int send_static(struct mg_connection *c, const char *type, const void *body, size_t len,
                const char *extra);
/* Sends status with an empty body. */
int send_empty(struct mg_connection *c, int status);
/* 1 when the request has no Origin header or one the CORS list allows. */
int origin_allowed(const struct mg_connection *c);
/* Reads the request body (at most max bytes) into a NUL-terminated buffer
 * (owned, sage_free); -SAGE_ELIMIT when larger, -SAGE_EIO on a read error. */
int read_body(struct mg_connection *c, long max, char **out, size_t *len);
/* The app of a connection. */
struct app *conn_app(const struct mg_connection *c);

/* An answer before it is sent: status 200 and body (owned), or an error
 * status with its JSON code, extra headers and message. */
struct api_answer {
    int status;
    const char *code;
    const char *headers;
    char message[512];
    json_t *body;
};

/* Fills *a with an error; returns status. */
int answer_error(struct api_answer *a, int status, const char *code, const char *headers,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

struct search_req;
/* A search as GET/POST /v1/search answers it, into *a; returns its status.
 * The MCP tool reuses it. */
int api_search_json(struct app *app, const struct search_req *rq, struct api_answer *a);
/* Document id of index (NULL: the only or default one) as
 * /v1/documents/{id} answers it. */
int api_document_json(struct app *app, const char *index, long long id, struct api_answer *a);

/* Handlers, registered by server_start. Each returns the HTTP status sent. */
int api_search(struct mg_connection *c, void *app);
int api_indexes(struct mg_connection *c, void *app);
int api_documents(struct mg_connection *c, void *app);
int api_health(struct mg_connection *c, void *app);
int api_ready(struct mg_connection *c, void *app);
int api_metrics(struct mg_connection *c, void *app);
int api_reload(struct mg_connection *c, void *app);

#endif
