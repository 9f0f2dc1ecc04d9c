/* sage-searchd: the option table, start-up (registry first load, watcher,
 * civetweb), signal handling (SIGHUP rescans; SIGTERM and SIGINT stop
 * accepting, let requests in flight finish, and exit 0). */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "layout.h"
#include "log.h"
#include "opt.h"
#include "server.h"

enum {
    O_LISTEN, O_INDEX_DIR, O_THREADS, O_POLL, O_KEYS, O_KEYS_FILE, O_ADMIN, O_ADMIN_FILE,
    O_ALLOW_OPEN, O_TLS_CERT, O_TLS_KEY, O_MAX_QUERY, O_MAX_K, O_MAX_BODY, O_TIMEOUT, O_RATE,
    O_BURST, O_CORS, O_ACCESS_LOG, O_PORT_FILE, O_LOG_FORMAT, O_VERIFY, O_EMBED_URL,
    O_EMBED_MODEL, O_EMBED_KEY, O_EMBED_KEY_FILE, O_EMBED_TIMEOUT, O_EMBED_CACHE,
    O_EMBED_BREAKER, O_EMBED_COOLDOWN, O__COUNT
};

static const struct sage_opt options[O__COUNT] = {
    [O_LISTEN] = { "listen", 'l', "SAGE_LISTEN", SAGE_OPT_STR, "127.0.0.1:8080", 0, 0, 0, 0,
                   "ADDR:PORT", "address to listen on (port 0: any free port)" },
    [O_INDEX_DIR] = { "index-dir", 'd', "SAGE_INDEX_DIR", SAGE_OPT_STR, NULL, 0, 0, 0, 0, "DIR",
                      "directory of NAME.sage files or NAME symlinks (required)" },
    [O_THREADS] = { "threads", 't', "SAGE_THREADS", SAGE_OPT_INT, "0", 0, 1024, 0, 0, "N",
                    "worker threads (0: cores x 2, at least 16)" },
    [O_POLL] = { "poll-ms", 0, "SAGE_POLL_MS", SAGE_OPT_INT, "1000", 50, 3600000, 0, 0, "MS",
                 "rescan the index directory at least this often" },
    [O_KEYS] = { "api-keys", 0, "SAGE_API_KEYS", SAGE_OPT_STR, NULL, 0, 0, SAGE_OPT_SECRET, 0,
                 "K1,K2", "API keys (Bearer); none: the API is open" },
    [O_KEYS_FILE] = { "api-keys-file", 0, "SAGE_API_KEYS_FILE", SAGE_OPT_STR, NULL, 0, 0, 0, 0,
                      "FILE", "API keys, one per line" },
    [O_ADMIN] = { "admin-key", 0, "SAGE_ADMIN_KEY", SAGE_OPT_STR, NULL, 0, 0, SAGE_OPT_SECRET, 0,
                  "KEY", "key for the /v1/admin routes (none: they are refused)" },
    [O_ADMIN_FILE] = { "admin-key-file", 0, "SAGE_ADMIN_KEY_FILE", SAGE_OPT_STR, NULL, 0, 0, 0, 0,
                       "FILE", "admin keys, one per line" },
    [O_ALLOW_OPEN] = { "allow-open", 0, "SAGE_ALLOW_OPEN", SAGE_OPT_BOOL, NULL, 0, 1, 0, 0, NULL,
                       "serve without API keys on a non-loopback address" },
    [O_TLS_CERT] = { "tls-cert", 0, "SAGE_TLS_CERT", SAGE_OPT_STR, NULL, 0, 0, 0, 0, "FILE",
                     "PEM certificate (with --tls-key: serve HTTPS)" },
    [O_TLS_KEY] = { "tls-key", 0, "SAGE_TLS_KEY", SAGE_OPT_STR, NULL, 0, 0, 0, 0, "FILE",
                    "PEM private key" },
    [O_MAX_QUERY] = { "max-query", 0, "SAGE_MAX_QUERY", SAGE_OPT_INT, "1024", 1, 4096, 0, 0,
                      "BYTES", "longest query" },
    [O_MAX_K] = { "max-k", 0, "SAGE_MAX_K", SAGE_OPT_INT, "1000", 1, 1000, 0, 0, "N",
                  "most hits one request may ask for" },
    [O_MAX_BODY] = { "max-body", 0, "SAGE_MAX_BODY", SAGE_OPT_SIZE, "64K", 64, 1LL << 24, 0, 0,
                     "SIZE", "largest request body" },
    [O_TIMEOUT] = { "request-timeout-ms", 0, "SAGE_REQUEST_TIMEOUT_MS", SAGE_OPT_INT, "10000", 100,
                    600000, 0, 0, "MS", "time a client has to send a request" },
    [O_RATE] = { "rate", 0, "SAGE_RATE", SAGE_OPT_INT, "0", 0, 1000000, 0, 0, "N",
                 "requests per second per client (0: no limit)" },
    [O_BURST] = { "burst", 0, "SAGE_BURST", SAGE_OPT_INT, "0", 0, 1000000, 0, 0, "N",
                  "requests a client may send at once (0: the rate)" },
    [O_CORS] = { "cors-origin", 0, "SAGE_CORS_ORIGINS", SAGE_OPT_LIST, NULL, 0, 0, 0, 0, "ORIGIN",
                 "origin allowed by CORS (repeatable; * for any)" },
    [O_ACCESS_LOG] = { "access-log", 0, "SAGE_ACCESS_LOG", SAGE_OPT_BOOL, NULL, 0, 1, 0, 0, NULL,
                       "log one JSON line per request (no keys, no bodies)" },
    [O_PORT_FILE] = { "port-file", 0, "SAGE_PORT_FILE", SAGE_OPT_STR, NULL, 0, 0, 0, 0, "FILE",
                      "write the bound port here once listening" },
    [O_LOG_FORMAT] = { "log-format", 0, "SAGE_LOG_FORMAT", SAGE_OPT_CHOICE, "text", 0, 0, 0, 0,
                       "text|json", "format of log lines on stderr" },
    [O_VERIFY] = { "verify", 0, "SAGE_VERIFY", SAGE_OPT_CHOICE, "stamp", 0, 0, 0, 0, "stamp|always",
                   "read every byte of a file before serving it: once per file version "
                   "(kept in a .NAME.verified stamp), or at every load" },
    [O_EMBED_URL] = { "embed-url", 0, "SAGE_EMBED_URL", SAGE_OPT_STR, NULL, 0, 0, 0, 0, "URL",
                      "OpenAI-compatible embedding server for dense and hybrid queries "
                      "(none: BM25, or a raw vector)" },
    [O_EMBED_MODEL] = { "embed-model", 0, "SAGE_EMBED_MODEL", SAGE_OPT_STR, NULL, 0, 0, 0, 0,
                        "NAME", "embedding model (default: the index's; another is refused)" },
    [O_EMBED_KEY] = { "embed-api-key", 0, "SAGE_EMBED_API_KEY", SAGE_OPT_STR, NULL, 0, 0,
                      SAGE_OPT_SECRET, 0, "KEY", "Bearer key for the embedding server" },
    [O_EMBED_KEY_FILE] = { "embed-api-key-file", 0, "SAGE_EMBED_API_KEY_FILE", SAGE_OPT_STR, NULL,
                           0, 0, 0, 0, "FILE", "file whose first line is that key" },
    [O_EMBED_TIMEOUT] = { "embed-timeout-ms", 0, "SAGE_EMBED_TIMEOUT_MS", SAGE_OPT_INT, "2000", 50,
                          60000, 0, 0, "MS", "time a query embedding may take (one try)" },
    [O_EMBED_CACHE] = { "embed-cache", 0, "SAGE_EMBED_CACHE", SAGE_OPT_INT, "1024", 0, 1000000, 0,
                        0, "N", "query vectors kept (LRU; 0: no cache)" },
    [O_EMBED_BREAKER] = { "embed-breaker-failures", 0, "SAGE_EMBED_BREAKER_FAILURES", SAGE_OPT_INT,
                          "5", 1, 1000, 0, 0, "N",
                          "failed query embeddings in a row that open the circuit breaker" },
    [O_EMBED_COOLDOWN] = { "embed-breaker-cooldown-ms", 0, "SAGE_EMBED_BREAKER_COOLDOWN_MS",
                           SAGE_OPT_INT, "10000", 10, 3600000, 0, 0, "MS",
                           "time the breaker stays open before one query probes the server" },
};

/* The registry's check: an index's embedding settings against the query
 * embedder's. */
static int check_embedding(void *ctx, const char *name, const struct sage_searcher *s,
                           struct sage_err *err)
{
    struct sage_embedding_info info;
    return sage_searcher_embedding(s, &info) ? qembed_check(ctx, name, &info, err) : 0;
}

static int is_loopback(const char *listen)
{
    return strncmp(listen, "127.", 4) == 0 || strncmp(listen, "localhost:", 10) == 0 ||
           strncmp(listen, "[::1]", 5) == 0;
}

static int load_keys(const struct sage_optval *list, const struct sage_optval *file, char ***keys,
                     size_t *n, const char *what)
{
    int rc = file->str ? auth_keys_from_file(file->str, keys, n)
                       : auth_keys_from_list(list->str ? list->str : "", keys, n);
    if (rc < 0)
        fprintf(stderr, "sage-searchd: cannot read %s from '%s'\n", what,
                file->str ? file->str : "the list");
    return rc;
}

int main(int argc, char **argv)
{
    struct sage_optval v[O__COUNT];
    struct sage_err err = { 0 };
    struct app app;
    struct auth_config ac = { 0 };
    char **keys = NULL, **admin = NULL;
    int first = 0, status = 2;
    sigset_t sigs;
    memset(&app, 0, sizeof(app));
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("sage-searchd %s (reads index format %d.x)\n", SAGE_VERSION, SAGE_FORMAT_MAJOR);
        return 0;
    }
    int rc = sage_opt_parse(options, O__COUNT, 1, v, argc, argv, &first, &err);
    if (rc == 1) {
        char *h = sage_opt_help(options, O__COUNT, 1);
        printf("usage: sage-searchd --index-dir DIR [OPTIONS]\n\nServe search over the index "
               "files of DIR (see sage-searchd(8)).\n\noptions (flags win over variables):\n%s"
               "  %-30s show this help\n", h ? h : "", "-h, --help");
        free(h);
        status = 0;
        goto out;
    }
    if (rc < 0 || first != argc) {
        fprintf(stderr, "sage-searchd: %s\n", rc < 0 ? err.msg : "unexpected argument");
        goto out;
    }
    const char *lf = v[O_LOG_FORMAT].str;
    sage_log_setup("sage-searchd", SAGE_LOG_INFO, strcmp(lf, "json") == 0);
    const char *vm = v[O_VERIFY].str;
    if (!v[O_INDEX_DIR].str) {
        fprintf(stderr, "sage-searchd: --index-dir is required\n");
        goto out;
    }
    if (strchr(v[O_LISTEN].str, ',')) {
        /* civetweb would open every address of a list, unchecked below */
        fprintf(stderr, "sage-searchd: --listen takes one ADDR:PORT, got '%s'\n", v[O_LISTEN].str);
        goto out;
    }
    if (!v[O_TLS_CERT].str != !v[O_TLS_KEY].str) {
        fprintf(stderr, "sage-searchd: --tls-cert and --tls-key go together\n");
        goto out;
    }
    if (load_keys(&v[O_KEYS], &v[O_KEYS_FILE], &keys, &ac.n_keys, "API keys") < 0 ||
        load_keys(&v[O_ADMIN], &v[O_ADMIN_FILE], &admin, &ac.n_admin, "admin keys") < 0)
        goto out;
    ac.keys = keys;
    ac.admin_keys = admin;
    ac.rate = (double)v[O_RATE].num;
    ac.burst = (double)v[O_BURST].num;
    if (ac.n_keys == 0 && !v[O_ALLOW_OPEN].num && !is_loopback(v[O_LISTEN].str)) {
        fprintf(stderr, "sage-searchd: refusing to serve '%s' without API keys; set "
                        "SAGE_API_KEYS or pass --allow-open\n", v[O_LISTEN].str);
        goto out;
    }
    status = 1;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    app.cfg = (struct server_config){
        /* civetweb gives each keep-alive client a worker for as long as it
         * stays connected, so cores x 2 alone would starve the fifth client
         * of a 2-core host: at least 16 */
        .threads = v[O_THREADS].num ? (int)v[O_THREADS].num
                                    : (int)(cores * 2 > 16 ? cores * 2 : 16),
        .tls_cert = v[O_TLS_CERT].str, .tls_key = v[O_TLS_KEY].str,
        .request_timeout_ms = (long)v[O_TIMEOUT].num, .max_body = (long)v[O_MAX_BODY].num,
        .max_query = (long)v[O_MAX_QUERY].num, .max_k = (long)v[O_MAX_K].num,
        .cors = v[O_CORS].list, .n_cors = v[O_CORS].n_list, .access_log = (int)v[O_ACCESS_LOG].num,
    };
    /* civetweb takes the key inside the certificate file; with a separate
     * key file, both are concatenated into a private temporary. */
    char listen[512], pem[64] = "";
    snprintf(listen, sizeof(listen), "%s%s", v[O_LISTEN].str, app.cfg.tls_cert ? "s" : "");
    app.cfg.listen = listen;
    if (app.cfg.tls_cert) {
        snprintf(pem, sizeof(pem), "/tmp/sage-searchd-pem.XXXXXX");
        int fd = mkstemp(pem);
        FILE *out = fd >= 0 ? fdopen(fd, "w") : NULL;
        const char *parts[2] = { app.cfg.tls_cert, app.cfg.tls_key };
        for (int i = 0; out && i < 2; i++) {
            FILE *in = fopen(parts[i], "r");
            char buf[4096];
            size_t n;
            if (!in) {
                fclose(out);
                out = NULL;
                break;
            }
            while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
                fwrite(buf, 1, n, out);
            fclose(in);
        }
        if (!out || fclose(out) != 0) {
            fprintf(stderr, "sage-searchd: cannot read the TLS certificate or key\n");
            goto out;
        }
        app.cfg.tls_cert = pem;
    }
    char *eff = sage_opt_effective(options, O__COUNT, 1, v);
    sage_log(SAGE_LOG_INFO, "starting: %s", eff ? eff : "");
    free(eff);
    struct qembed_config qc = {
        v[O_EMBED_URL].str, v[O_EMBED_MODEL].str, v[O_EMBED_KEY].str, v[O_EMBED_KEY_FILE].str,
        (unsigned)v[O_EMBED_TIMEOUT].num, (unsigned)v[O_EMBED_CACHE].num,
        (unsigned)v[O_EMBED_BREAKER].num, (unsigned)v[O_EMBED_COOLDOWN].num,
    };
    if (metrics_new(&app.metrics) < 0 || auth_new(&ac, &app.auth) < 0 ||
        qembed_new(&qc, &app.qe, &err) < 0 || registry_new(v[O_INDEX_DIR].str, &app.reg) < 0) {
        sage_log(SAGE_LOG_ERROR, "out of memory");
        goto out;
    }
    registry_set_verify_always(app.reg, strcmp(vm, "always") == 0);
    registry_set_check(app.reg, check_embedding, app.qe);
    /* the signals are taken by sigwait below, in no other thread */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    registry_scan(app.reg);
    /* an index the embedder cannot serve is refused at any load, and the
     * previous file keeps serving; at start-up there is none, so stop */
    if (qembed_mismatches(app.qe) > 0) {
        sage_log(SAGE_LOG_ERROR, "refusing to start: an index does not match the query "
                 "embedder (see above)");
        goto out;
    }
    if ((rc = qembed_probe(app.qe, &err)) == -SAGE_EINVAL) {
        sage_log(SAGE_LOG_ERROR, "refusing to start: %s", err.msg);
        goto out;
    } else if (rc < 0) {
        sage_log(SAGE_LOG_WARN, "embedding server not answering at start-up (hybrid searches "
                 "answer from BM25 until it does): %s", err.msg);
    }
    if (registry_watch(app.reg, (unsigned)v[O_POLL].num) < 0 || server_start(&app) < 0) {
        sage_log(SAGE_LOG_ERROR, "cannot listen on '%s'", v[O_LISTEN].str);
        goto out;
    }
    sage_log(SAGE_LOG_INFO, "listening on port %d, %s", app.port,
             registry_ready(app.reg) ? "ready" : "not ready (no index loaded)");
    if (v[O_PORT_FILE].str) {
        FILE *pf = fopen(v[O_PORT_FILE].str, "w");
        if (!pf || fprintf(pf, "%d\n", app.port) < 0 || fclose(pf) != 0) {
            sage_log(SAGE_LOG_ERROR, "cannot write '%s'", v[O_PORT_FILE].str);
            goto out;
        }
    }
    for (;;) {
        int sig = 0;
        if (sigwait(&sigs, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            sage_log(SAGE_LOG_INFO, "SIGHUP: rescanning '%s'", v[O_INDEX_DIR].str);
            registry_scan(app.reg);
            continue;
        }
        sage_log(SAGE_LOG_INFO, "%s: stopping after the requests in flight",
                 sig == SIGTERM ? "SIGTERM" : "SIGINT");
        break;
    }
    status = 0;
out:
    server_stop(&app);
    registry_free(app.reg);
    qembed_free(app.qe);
    auth_free(app.auth);
    metrics_free(app.metrics);
    auth_keys_free(keys, ac.n_keys);
    auth_keys_free(admin, ac.n_admin);
    if (pem[0])
        unlink(pem);
    sage_opt_release(v, O__COUNT);
    return status;
}
