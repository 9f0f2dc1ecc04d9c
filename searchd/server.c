/* civetweb glue: starting and stopping the server, the routes, the checks
 * every request passes before its handler (CORS preflight, API key, rate
 * limit), the per-request accounting (metrics and the JSON access log) and
 * the helpers handlers answer with. Nothing here knows about search. */
#include "server.h"

#include <civetweb.h>
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <utf8proc.h>

#include "alloc.h"
#include "log.h"
#include "clock.h"
#include "mcp.h"
#include "ui.h"

/* civetweb runs a request's callbacks and handler on one worker thread, so
 * the start time and route can live in thread-local storage. */
static __thread double req_start;

struct app *conn_app(const struct mg_connection *c)
{
    return mg_get_user_data(mg_get_context(c));
}

int origin_allowed(const struct mg_connection *c)
{
    const struct app *app = conn_app(c);
    const char *origin = mg_get_header(c, "Origin");
    if (!origin)
        return 1;
    for (size_t i = 0; i < app->cfg.n_cors; i++)
        if (strcmp(app->cfg.cors[i], "*") == 0 || strcmp(app->cfg.cors[i], origin) == 0)
            return 1;
    return 0;
}

/* The CORS headers for this request's Origin, when it is allowed. */
static void cors_headers(const struct mg_connection *c, char *buf, size_t len)
{
    const struct app *app = conn_app(c);
    const char *origin = mg_get_header(c, "Origin");
    buf[0] = '\0';
    if (!origin)
        return;
    for (size_t i = 0; i < app->cfg.n_cors; i++)
        if (strcmp(app->cfg.cors[i], "*") == 0 || strcmp(app->cfg.cors[i], origin) == 0) {
            snprintf(buf, len, "Access-Control-Allow-Origin: %s\r\nVary: Origin\r\n",
                     strcmp(app->cfg.cors[i], "*") == 0 ? "*" : origin);
            return;
        }
}

static int send_body(struct mg_connection *c, int status, const char *type, const char *body,
                     size_t len, const char *extra)
{
    char cors[512];
    cors_headers(c, cors, sizeof(cors));
    mg_printf(c, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                 "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n%s%s\r\n",
              status, mg_get_response_code_text(c, status), type, len, cors, extra ? extra : "");
    const char *method = mg_get_request_info(c)->request_method;  /* NULL: unparsed request */
    if (len && !(method && strcmp(method, "HEAD") == 0))
        mg_write(c, body, len);
    return status;
}

int send_json(struct mg_connection *c, int status, json_t *v)
{
    char *s = v ? json_dumps(v, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(v);
    if (!s)
        return send_body(c, 500, "application/json",
                         "{\"error\":{\"code\":\"nomem\",\"message\":\"out of memory\"}}", 53, NULL);
    int rc = send_body(c, status, "application/json", s, strlen(s), NULL);
    free(s);
    return rc;
}

/* Replaces each byte that does not begin a valid UTF-8 sequence with '?':
 * messages and log lines quote client bytes (a decoded path, an index name)
 * and may be cut mid-character, and jansson refuses invalid UTF-8. */
static void utf8_scrub(char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i,
                                              (utf8proc_ssize_t)(n - i), &cp);
        if (k < 1)
            s[i++] = '?';
        else
            i += (size_t)k;
    }
}

int send_error(struct mg_connection *c, int status, const char *code, const char *extra_headers,
               const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    utf8_scrub(msg);
    json_t *v = json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", msg);
    char *s = v ? json_dumps(v, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(v);
    int rc = s ? send_body(c, status, "application/json", s, strlen(s), extra_headers)
               : send_body(c, 500, "application/json", "{}", 2, NULL);
    free(s);
    return rc;
}

int send_static(struct mg_connection *c, const char *type, const void *body, size_t len,
                const char *extra)
{
    return send_body(c, 200, type, (const char *)body, len, extra);
}

int send_empty(struct mg_connection *c, int status)
{
    return send_body(c, status, "application/json", "", 0, NULL);
}

int read_body(struct mg_connection *c, long max, char **out, size_t *len)
{
    const struct mg_request_info *ri = mg_get_request_info(c);
    size_t cap = ri->content_length > 0 && ri->content_length <= max ? (size_t)ri->content_length + 1
                                                                       : 4096;
    char *buf = sage_malloc(cap);
    size_t n = 0;
    *out = NULL;
    *len = 0;
    if (ri->content_length > max) {
        sage_free(buf);
        return -SAGE_ELIMIT;
    }
    if (!buf)
        return -SAGE_ENOMEM;
    for (;;) {
        if (n + 1 >= cap) {
            if ((long)cap > max + 1) {
                sage_free(buf);
                return -SAGE_ELIMIT;
            }
            char *b = sage_realloc(buf, cap * 2);
            if (!b) {
                sage_free(buf);
                return -SAGE_ENOMEM;
            }
            buf = b;
            cap *= 2;
        }
        int k = mg_read(c, buf + n, cap - n - 1);
        if (k < 0) {
            sage_free(buf);
            return -SAGE_EIO;
        }
        if (k == 0)
            break;
        n += (size_t)k;
        if ((long)n > max) {
            sage_free(buf);
            return -SAGE_ELIMIT;
        }
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

/* Runs before every handler: CORS preflight, rate limit, API key. Returns
 * 0 to go on to the route, or the status already sent. */
static int begin_request(struct mg_connection *c)
{
    struct app *app = conn_app(c);
    const struct mg_request_info *ri = mg_get_request_info(c);
    req_start = (sage_now_ms() / 1e3);
    __atomic_add_fetch(&app->in_flight, 1, __ATOMIC_ACQ_REL);
    if (__atomic_load_n(&app->draining, __ATOMIC_ACQUIRE))
        return send_error(c, 503, "shutting_down", "Connection: close\r\n",
                          "the server is stopping");
    if (strcmp(ri->request_method, "OPTIONS") == 0) {
        char cors[512];
        cors_headers(c, cors, sizeof(cors));
        mg_printf(c, "HTTP/1.1 204 No Content\r\n%sAccess-Control-Allow-Methods: GET, POST\r\n"
                     "Access-Control-Allow-Headers: Authorization, Content-Type\r\n"
                     "Access-Control-Max-Age: 600\r\nContent-Length: 0\r\n\r\n", cors);
        return 204;
    }
    double wait = auth_rate_take(app->auth, ri->remote_addr);
    if (wait > 0) {
        char hdr[64];
        snprintf(hdr, sizeof(hdr), "Retry-After: %.0f\r\n", wait < 1 ? 1 : wait + 0.5);
        return send_error(c, 429, "rate_limited", hdr, "too many requests; retry in %.1f s", wait);
    }
    const char *uri = ri->local_uri ? ri->local_uri : "";
    int open_route = strcmp(uri, "/healthz") == 0 || strcmp(uri, "/readyz") == 0 ||
                     ui_is_page(uri);       /* the page; its API calls need a key */
    int admin = strncmp(uri, "/v1/admin/", 10) == 0;
    if (!open_route) {
        enum auth_result r = auth_check(app->auth, mg_get_header(c, "Authorization"), admin);
        if (r == AUTH_MISSING)
            return send_error(c, 401, "unauthorized", "WWW-Authenticate: Bearer\r\n",
                              "this endpoint needs an %sAPI key (Authorization: Bearer KEY)",
                              admin ? "admin " : "");
        if (r == AUTH_BAD)
            return send_error(c, 403, "forbidden", NULL, "the key is not valid here");
    }
    return 0;
}

static void end_request(const struct mg_connection *c, int status)
{
    struct app *app = conn_app(c);
    const struct mg_request_info *ri = mg_get_request_info(c);
    double took = (sage_now_ms() / 1e3) - req_start;
    __atomic_sub_fetch(&app->in_flight, 1, __ATOMIC_ACQ_REL);
    metrics_request(app->metrics, metrics_route(ri->local_uri), status, took);
    if (app->cfg.access_log) {
        /* path and query only: no headers (keys) and no bodies */
        char *path = sage_strdup(ri->local_uri ? ri->local_uri : "");
        char *query = ri->query_string ? sage_strdup(ri->query_string) : NULL;
        if (path)
            utf8_scrub(path);
        if (query)
            utf8_scrub(query);
        json_t *l = json_pack("{s:s, s:s, s:s, s:s?, s:i, s:f}", "remote", ri->remote_addr,
                              "method", ri->request_method, "path", path ? path : "?",
                              "query", query, "status", status, "ms", took * 1e3);
        char *s = l ? json_dumps(l, JSON_COMPACT) : NULL;
        if (s)
            sage_log(SAGE_LOG_INFO, "access %s", s);
        free(s);
        json_decref(l);
        sage_free(path);
        sage_free(query);
    }
}

static int log_message(const struct mg_connection *c, const char *msg)
{
    (void)c;
    sage_log(SAGE_LOG_WARN, "civetweb: %s", msg);
    return 1;
}

/* Errors civetweb finds itself (a request line or headers too long, a
 * malformed request) get the same JSON body as ours. Returns 0: handled. */
static int http_error(struct mg_connection *c, int status, const char *msg)
{
    const char *code = status == 413 || status == 431 ? "too_large"
                     : status == 408 ? "timeout" : status < 500 ? "bad_request" : "internal";
    send_error(c, status, code, "Connection: close\r\n", "%s", msg ? msg : "bad request");
    return 0;
}

/* Everything no other route takes: the search page at / (civetweb's "/$"
 * pattern does not single out the root), else 404. */
static int not_found(struct mg_connection *c, void *data)
{
    const char *uri = mg_get_request_info(c)->local_uri;
    if (ui_is_page(uri))
        return api_ui(c, data);
    return send_error(c, 404, "not_found", NULL, "no such endpoint: %s", uri ? uri : "?");
}

int server_start(struct app *app)
{
    char threads[16], timeout[24];
    const char *opts[32];
    size_t n = 0;
    struct mg_callbacks cb;
    snprintf(threads, sizeof(threads), "%d", app->cfg.threads);
    snprintf(timeout, sizeof(timeout), "%ld", app->cfg.request_timeout_ms);
    opts[n++] = "listening_ports";
    opts[n++] = app->cfg.listen;
    opts[n++] = "num_threads";
    opts[n++] = threads;
    opts[n++] = "request_timeout_ms";
    opts[n++] = timeout;
    opts[n++] = "enable_keep_alive";
    opts[n++] = "yes";
    /* headers and body go out in two writes; without this Nagle and the
     * client's delayed ACK hold every keep-alive answer back ~40 ms */
    opts[n++] = "tcp_nodelay";
    opts[n++] = "1";
    if (app->cfg.tls_cert) {
        /* civetweb 1.15 (Debian 12) takes SSL_get_peer_certificate from
         * libssl.so, where OpenSSL 3 has only a macro, and calls the NULL it
         * got on the first HTTPS connection: refuse to start instead. */
        void *ssl = dlopen("libssl.so", RTLD_LAZY);
        int usable = ssl && dlsym(ssl, "SSL_get_peer_certificate");
        if (ssl)
            dlclose(ssl);
        if (!usable) {
            sage_log(SAGE_LOG_ERROR, "cannot serve TLS: libcivetweb needs SSL_get_peer_certificate, "
                                     "which libssl.so does not export");
            return -SAGE_EIO;
        }
        opts[n++] = "ssl_certificate";
        opts[n++] = app->cfg.tls_cert;
        opts[n++] = "ssl_protocol_version";
        opts[n++] = "4";        /* TLS 1.2 and newer */
    }
    opts[n] = NULL;
    memset(&cb, 0, sizeof(cb));
    cb.begin_request = begin_request;
    cb.end_request = end_request;
    cb.log_message = log_message;
    cb.http_error = http_error;
    mg_init_library(app->cfg.tls_cert ? MG_FEATURES_TLS : 0);
    app->ctx = mg_start(&cb, app, opts);
    if (!app->ctx)
        return -SAGE_EIO;
    mg_set_request_handler(app->ctx, "/v1/search$", api_search, app);
    mg_set_request_handler(app->ctx, "/v1/indexes$", api_indexes, app);
    mg_set_request_handler(app->ctx, "/v1/documents/", api_documents, app);
    mg_set_request_handler(app->ctx, "/healthz$", api_health, app);
    mg_set_request_handler(app->ctx, "/readyz$", api_ready, app);
    mg_set_request_handler(app->ctx, "/metrics$", api_metrics, app);
    mg_set_request_handler(app->ctx, "/v1/admin/reload$", api_reload, app);
    mg_set_request_handler(app->ctx, "/mcp$", api_mcp, app);
    mg_set_request_handler(app->ctx, "/ui/", api_ui, app);
    mg_set_request_handler(app->ctx, "/", not_found, app);
    struct mg_server_port ports[4];
    int np = mg_get_server_ports(app->ctx, 4, ports);
    app->port = np > 0 ? ports[0].port : 0;
    return 0;
}

void server_stop(struct app *app)
{
    /* mg_stop drops the answers handlers are still writing: drain first */
    double end = (sage_now_ms() / 1e3) + (double)app->cfg.request_timeout_ms / 1e3;
    __atomic_store_n(&app->draining, 1, __ATOMIC_RELEASE);
    while (app->ctx && __atomic_load_n(&app->in_flight, __ATOMIC_ACQUIRE) > 0 && (sage_now_ms() / 1e3) < end) {
        struct timespec ts = { 0, 5000000 };
        nanosleep(&ts, NULL);
    }
    if (app->ctx)
        mg_stop(app->ctx);
    app->ctx = NULL;
    mg_exit_library();
}
