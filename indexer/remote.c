/* HTTP to the remote GPU (remote.h): the endpoint, its key and retry policy,
 * answers judged retryable or fatal, backoff, and a synchronous POST. libcurl
 * does the HTTP; jansson reads servers' error bodies. */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "remote.h"
#include "clock.h"

#define MAX_KEY_FILE 4096

static uint64_t next_rand(uint64_t *s)
{
    uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static int has_suffix(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

char *remote_endpoint(const char *base, const char *path)
{
    size_t n = strlen(base), pl = strlen(path);
    while (n > 0 && base[n - 1] == '/')
        n--;
    /* base may end with "/PATH", with "/v1", or with neither. */
    int whole = n > pl && base[n - pl - 1] == '/' && memcmp(base + n - pl, path, pl) == 0;
    const char *mid = whole ? "" : has_suffix(base, n, "/v1") ? "/" : "/v1/";
    size_t size = n + strlen(mid) + pl + 1;
    char *u = sage_malloc(size);
    if (u)
        snprintf(u, size, "%.*s%s%s", (int)n, base, mid, whole ? "" : path);
    return u;
}

/* Reads the first line of a key file, trimmed, into a new string. */
static int read_key_file(const char *path, char **out, struct sage_err *err)
{
    char buf[MAX_KEY_FILE + 1];
    int rc = 0;
    FILE *f = fopen(path, "re");
    if (!f)
        return sage_err_sys(err, SAGE_EINVAL, "cannot open api key file '%s'", path);
    size_t n = fread(buf, 1, MAX_KEY_FILE, f);
    if (ferror(f)) {
        rc = sage_err_sys(err, SAGE_EINVAL, "cannot read api key file '%s'", path);
        goto out;
    }
    buf[n] = 0;
    buf[strcspn(buf, "\r\n")] = 0;
    n = strlen(buf);
    while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '\t'))
        buf[--n] = 0;
    if (n == 0) {
        rc = sage_err_set(err, SAGE_EINVAL, "api key file '%s' is empty", path);
        goto out;
    }
    if (!(*out = sage_strdup(buf)))
        rc = sage_err_set(err, SAGE_ENOMEM, "cannot copy the api key");
out:
    fclose(f);
    return rc;
}

unsigned remote_backoff_ms(unsigned base_ms, unsigned max_ms, unsigned attempt,
                          long retry_after_ms, uint64_t *rng)
{
    uint64_t cap = base_ms;
    for (unsigned i = 1; i < attempt && cap < max_ms; i++)
        cap *= 2;
    if (cap > max_ms)
        cap = max_ms;
    uint64_t d = next_rand(rng) % (cap + 1);
    if (retry_after_ms >= 0) {
        uint64_t ra = (uint64_t)retry_after_ms < max_ms ? (uint64_t)retry_after_ms : max_ms;
        if (d < ra)
            d = ra;
    }
    return (unsigned)d;
}

/* ---- HTTP plumbing ---- */

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
    struct remote_buf *b = arg;
    size_t n = size * nmemb;
    if (n > b->max - b->len)
        return 0;   /* over the cap: CURLE_WRITE_ERROR */
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 16384;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *q = sage_realloc(b->p, cap);
        if (!q)
            return 0;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = 0;
    return n;
}

/* Retry-After: delay-seconds or an HTTP-date. */
static size_t on_header(char *p, size_t size, size_t nmemb, void *arg)
{
    long *retry_after_ms = arg;
    size_t n = size * nmemb;
    static const char name[] = "retry-after:";
    if (n > sizeof(name) - 1 && n < 256 && strncasecmp(p, name, sizeof(name) - 1) == 0) {
        char v[256];
        memcpy(v, p + sizeof(name) - 1, n - (sizeof(name) - 1));
        v[n - (sizeof(name) - 1)] = 0;
        char *s = v + strspn(v, " \t"), *end;
        s[strcspn(s, "\r\n")] = 0;
        errno = 0;
        long long secs = strtoll(s, &end, 10);
        if (end != s && *end == 0 && !errno && secs >= 0) {
            *retry_after_ms = secs > 86400 ? 86400000L : (long)secs * 1000;
        } else {
            time_t t = curl_getdate(s, NULL);
            if (t != -1) {
                time_t now = time(NULL);
                *retry_after_ms = t <= now          ? 0
                                  : t - now > 86400 ? 86400000L
                                                    : (long)(t - now) * 1000;
            }
        }
    }
    return n;
}

/* Configures an easy handle for POSTs to the endpoint; the body and
 * Retry-After destinations are set per request. */
int remote_easy_setup(const struct remote *r, CURL *h, struct remote_buf *resp,
                      long *retry_after_ms, char *errbuf)
{
    CURLcode c = CURLE_OK;
#define SET(opt, val) if (c == CURLE_OK) c = curl_easy_setopt(h, opt, val)
    SET(CURLOPT_URL, r->url);
    SET(CURLOPT_POST, 1L);
    SET(CURLOPT_HTTPHEADER, r->headers);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, resp);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, retry_after_ms);
    SET(CURLOPT_TIMEOUT_MS, (long)r->p.timeout_ms);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_TCP_NODELAY, 1L);
    SET(CURLOPT_ERRORBUFFER, errbuf);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_ACCEPT_ENCODING, "");
#undef SET
    return c == CURLE_OK ? 0 : -1;
}

/* Prepares one request of body[0..len) on h. */
void remote_request_reset(CURL *h, const char *body, size_t len, struct remote_buf *resp,
                          long *retry_after_ms, char *errbuf)
{
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    resp->len = 0;
    *retry_after_ms = -1;
    errbuf[0] = 0;
}

/* The server's own message from an error body: error.message, error (a
 * string), message or detail, else the body's start; printable ASCII only. */
static void server_message(const struct remote_buf *b, char *out, size_t size)
{
    json_t *root = b->len ? json_loadb(b->p, b->len, 0, NULL) : NULL;
    json_t *e = json_object_get(root, "error");
    const char *m = json_string_value(json_object_get(e, "message"));
    if (!m)
        m = json_string_value(e);
    if (!m)
        m = json_string_value(json_object_get(root, "message"));
    if (!m)
        m = json_string_value(json_object_get(root, "detail"));
    if (!m)
        m = b->len ? b->p : "(empty body)";
    size_t i = 0;
    for (; m[i] && i + 1 < size && i < REMOTE_MSG_MAX; i++)
        out[i] = (m[i] >= 0x20 && m[i] < 0x7f) ? m[i] : ' ';
    out[i] = 0;
    json_decref(root);
}

static int retryable_curl(CURLcode c)
{
    switch (c) {
    case CURLE_COULDNT_RESOLVE_HOST: case CURLE_COULDNT_CONNECT: case CURLE_OPERATION_TIMEDOUT:
    case CURLE_GOT_NOTHING: case CURLE_SEND_ERROR: case CURLE_RECV_ERROR: case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR: case CURLE_HTTP2: case CURLE_HTTP2_STREAM:
        return 1;
    default:
        return 0;
    }
}


/* Judges one finished request; for anything but REMOTE_OK, why says what the
 * server did ("HTTP 503: overloaded", "Connection refused"). */
enum remote_verdict remote_judge(CURL *h, CURLcode cc, const struct remote_buf *resp,
                                 const char *errbuf, char *why, size_t why_len)
{
    long status = 0;
    if (cc != CURLE_OK) {
        if (cc == CURLE_WRITE_ERROR && resp->len >= resp->max)
            snprintf(why, why_len, "response larger than %zu bytes", resp->max);
        else
            snprintf(why, why_len, "%s", errbuf[0] ? errbuf : curl_easy_strerror(cc));
        return retryable_curl(cc) ? REMOTE_RETRY : REMOTE_FATAL;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (status == 200)
        return REMOTE_OK;
    char msg[REMOTE_MSG_MAX + 1];
    server_message(resp, msg, sizeof(msg));
    snprintf(why, why_len, "HTTP %ld: %s", status, msg);
    int retry = status == 408 || status == 429 || (status >= 500 && status <= 599);
    return retry ? REMOTE_RETRY : REMOTE_FATAL;
}

/* Whether a request that failed for the attempts-th time may try again,
 * and after how long. */
int remote_may_retry(struct remote *r, unsigned attempts, double first_fail_ms,
                     long retry_after_ms, unsigned *delay)
{
    if (attempts >= r->p.max_attempts)
        return 0;
    pthread_mutex_lock(&r->mu);
    *delay = remote_backoff_ms(r->p.backoff_ms, r->p.backoff_max_ms, attempts, retry_after_ms,
                               &r->rng);
    pthread_mutex_unlock(&r->mu);
    return sage_now_ms() + *delay - first_fail_ms <= r->p.retry_budget_ms;
}

/* Counts a request about to be sent. */
void remote_count_request(struct remote *r, unsigned attempts, size_t body_len)
{
    pthread_mutex_lock(&r->mu);
    r->n.requests++;
    r->n.retries += attempts > 0;
    r->n.bytes_sent += body_len;
    pthread_mutex_unlock(&r->mu);
}

/* Counts a finished request. */
void remote_count_answer(struct remote *r, CURLcode cc, enum remote_verdict vd, size_t resp_len)
{
    pthread_mutex_lock(&r->mu);
    r->n.bytes_received += resp_len;
    r->n.status_errors += cc == CURLE_OK && vd != REMOTE_OK;
    r->n.transport_errors += cc != CURLE_OK;
    pthread_mutex_unlock(&r->mu);
}

void remote_get_counters(struct remote *r, struct remote_counters *out)
{
    pthread_mutex_lock(&r->mu);
    *out = r->n;
    pthread_mutex_unlock(&r->mu);
}

/* The error after the last attempt; request names it ("a request of 32 inputs"). */
int remote_give_up(const struct remote *r, struct sage_err *err, unsigned attempts,
                   const char *request, const char *why)
{
    return sage_err_set(err, SAGE_EREMOTE, "%s '%s' failed %s after %u attempt%s: %s", r->what,
                        r->url, request, attempts, attempts == 1 ? "" : "s", why);
}

/* Sets r up for the endpoint url (taken over, even on failure): copies the
 * retry settings, reads the key file when api_key is NULL, builds headers.
 * remote_release undoes it, also after a failure. */
int remote_init(struct remote *r, const char *what, char *url, const char *api_key,
                const char *api_key_file, const struct remote_policy *retry, struct sage_err *err)
{
    int rc = 0;
    char *key = NULL;
    memset(r, 0, sizeof(*r));
    r->what = what;
    r->url = url;
    r->p = *retry;
    r->rng = ((uint64_t)sage_now_ms() * 2654435761u) ^ (uint64_t)getpid() ^ (uintptr_t)r;
    pthread_mutex_init(&r->mu, NULL);
    r->mu_ready = 1;
    if (!url)
        return sage_err_set(err, SAGE_ENOMEM, "cannot copy the %s URL", what);
    if (!api_key && api_key_file && (rc = read_key_file(api_key_file, &key, err)) < 0)
        return rc;
    const char *k = api_key ? api_key : key;
    size_t ah = k ? strlen(k) + 32 : 0;
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    r->headers = h;
    if (h)
        r->headers = h = curl_slist_append(h, "Expect:");
    if (h && k && (r->auth_header = sage_malloc(ah))) {
        snprintf(r->auth_header, ah, "Authorization: Bearer %s", k);
        r->headers = h = curl_slist_append(h, r->auth_header);
    }
    if (!h || (k && !r->auth_header))
        rc = sage_err_set(err, SAGE_ENOMEM, "cannot allocate request headers");
    if (key) {
        memset(key, 0, strlen(key));
        sage_free(key);
    }
    return rc;
}

void remote_release(struct remote *r)
{
    curl_slist_free_all(r->headers);
    if (r->auth_header) {
        memset(r->auth_header, 0, strlen(r->auth_header));
        sage_free(r->auth_header);
    }
    sage_free(r->url);
    if (r->mu_ready)
        pthread_mutex_destroy(&r->mu);
    memset(r, 0, sizeof(*r));
}

/* POSTs body[0..len) on h (set up by easy_setup for r) until a 200 lands in
 * resp (the caller's, max set), retrying as r says and sleeping between
 * tries; request names it in the error. */
int remote_post(struct remote *r, CURL *h, const char *body, size_t len, struct remote_buf *resp,
                       const char *request, struct sage_err *err)
{
    char why[SAGE_ERR_MSG_MAX], errbuf[CURL_ERROR_SIZE];
    long retry_after_ms = -1;
    unsigned delay = 0, attempts = 0;
    double first_fail = 0;
    int rc = 0;
    /* The handle keeps its connection between calls; the destinations are
     * this call's locals, so they are set each time and cleared after. */
    curl_easy_setopt(h, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &retry_after_ms);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    for (;;) {
        remote_request_reset(h, body, len, resp, &retry_after_ms, errbuf);
        remote_count_request(r, attempts++, len);
        CURLcode cc = curl_easy_perform(h);
        enum remote_verdict vd = remote_judge(h, cc, resp, errbuf, why, sizeof(why));
        remote_count_answer(r, cc, vd, resp->len);
        if (vd == REMOTE_OK)
            break;
        if (first_fail == 0)
            first_fail = sage_now_ms();
        if (vd == REMOTE_FATAL ||
            !remote_may_retry(r, attempts, first_fail, retry_after_ms, &delay)) {
            rc = remote_give_up(r, err, attempts, request, why);
            break;
        }
        struct timespec ts = { delay / 1000, (long)(delay % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
    }
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, NULL);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, NULL);
    return rc;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;
static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* Initializes libcurl once per process (before any thread of ours runs). */
int remote_curl_ready(struct sage_err *err)
{
    pthread_once(&curl_once, curl_init);
    return curl_init_rc == CURLE_OK ? 0 : sage_err_set(err, SAGE_EIO, "cannot initialize libcurl");
}

/* ---- configuration ---- */

void remote_policy_defaults(struct remote_policy *p, const struct remote_policy *d)
{
    if (!p->timeout_ms)
        p->timeout_ms = d->timeout_ms;
    if (!p->max_attempts)
        p->max_attempts = d->max_attempts;
    if (!p->retry_budget_ms)
        p->retry_budget_ms = d->retry_budget_ms;
    if (!p->backoff_ms)
        p->backoff_ms = d->backoff_ms;
    if (!p->backoff_max_ms)
        p->backoff_max_ms = d->backoff_max_ms;
}

static int env_uint(const char *name, const char *s, unsigned min, unsigned max, unsigned *out,
                    struct sage_err *err)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-' || v < min || v > max)
        return sage_err_set(err, SAGE_EINVAL, "%s: '%s' is not a number in [%u, %u]", name, s,
                            min, max);
    *out = (unsigned)v;
    return 0;
}

static int env_bool(const char *name, const char *s, int *out, struct sage_err *err)
{
    static const char *const yes[] = { "1", "true", "yes", "on" };
    static const char *const no[] = { "0", "false", "no", "off" };
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0 || strcasecmp(s, no[i]) == 0) {
            *out = strcasecmp(s, yes[i]) == 0;
            return 0;
        }
    }
    return sage_err_set(err, SAGE_EINVAL, "%s: '%s' is not a boolean (1/0, true/false, yes/no)",
                        name, s);
}

int remote_env_load(void *cfg, const struct remote_env *vars, size_t n, struct sage_err *err)
{
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *s = getenv(vars[i].name);
        void *field = (char *)cfg + vars[i].off;
        if (!s)
            continue;
        if (vars[i].kind == REMOTE_ENV_STR)
            *(const char **)field = s;
        else if (vars[i].kind == REMOTE_ENV_UINT)
            rc = env_uint(vars[i].name, s, vars[i].min, vars[i].max, field, err);
        else
            rc = env_bool(vars[i].name, s, field, err);
    }
    return rc;
}
