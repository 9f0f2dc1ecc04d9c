/* HTTP to the remote GPU (embeddings, OCR): one endpoint's URL, API key and
 * retry policy, the verdict on each answer (retry on 408, 429, 5xx, timeouts
 * and resets; anything else is fatal), full-jitter backoff that honours
 * Retry-After, and a synchronous POST with retries. What to send and how to
 * read a 200 is left to embed.c and ocr.c. */
#ifndef INDEXER_REMOTE_H
#define INDEXER_REMOTE_H

#include <curl/curl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define REMOTE_MSG_MAX 200          /* bytes of a server's message kept for errors */

/* A response body, capped at max bytes (a bigger one fails the request). */
struct remote_buf {
    char *p;                    /* NUL-terminated; sage_free */
    size_t len, cap, max;
};

struct remote_policy {
    unsigned timeout_ms;        /* per HTTP request, connect included */
    unsigned max_attempts;      /* tries per request */
    unsigned retry_budget_ms;   /* no retry starts later than this after the first failure */
    unsigned backoff_ms;        /* first backoff cap; doubles per attempt */
    unsigned backoff_max_ms;    /* backoff cap, and the most Retry-After honoured */
};

/* Sets each zero field of p to d's. */
void remote_policy_defaults(struct remote_policy *p, const struct remote_policy *d);

/* HTTP counters of one endpoint, for build reports. */
struct remote_counters {
    uint64_t requests;          /* sent, retries included */
    uint64_t retries;           /* requests that were retries */
    uint64_t bytes_sent;        /* request bodies */
    uint64_t bytes_received;    /* response bodies */
    uint64_t status_errors;     /* answers with a status other than 200 */
    uint64_t transport_errors;  /* timeouts, resets, refused connections */
};

/* What every request to one endpoint shares. The counters and rng are
 * guarded by mu; the rest is set by remote_init and then only read. */
struct remote {
    const char *what;           /* "embedding server", for messages (static) */
    char *url, *auth_header;
    struct curl_slist *headers;
    struct remote_policy p;
    pthread_mutex_t mu;
    int mu_ready;
    uint64_t rng;
    struct remote_counters n;
};

enum remote_verdict { REMOTE_OK, REMOTE_RETRY, REMOTE_FATAL };

/* curl_global_init, once per process; call before starting threads. */
int remote_curl_ready(struct sage_err *err);

/* The endpoint for a base URL and an API path ("embeddings",
 * "chat/completions"): base/v1/PATH, or base/PATH when base ends with /v1,
 * or base itself when it already ends with /PATH (trailing slashes dropped).
 * A new string (sage_free), NULL when out of memory. */
char *remote_endpoint(const char *base, const char *path);

/* The wait before retry number attempt (1 for the first retry): uniform in
 * [0, min(max_ms, base_ms * 2^(attempt-1))] ("full jitter"), but at least
 * retry_after_ms (the server's Retry-After; negative: none) capped at max_ms.
 * *rng is the caller's random state (any seed). */
unsigned remote_backoff_ms(unsigned base_ms, unsigned max_ms, unsigned attempt,
                           long retry_after_ms, uint64_t *rng);

/* Sets r up for the endpoint url (taken over, even on failure): copies the
 * policy, reads the first line of api_key_file when api_key is NULL, builds
 * the JSON and Bearer headers. remote_release undoes it, also after a
 * failure. -SAGE_EINVAL for an unreadable or empty key file. */
int remote_init(struct remote *r, const char *what, char *url, const char *api_key,
                const char *api_key_file, const struct remote_policy *p, struct sage_err *err);
void remote_release(struct remote *r);

/* Configures an easy handle for POSTs to r's endpoint; the response goes to
 * resp, Retry-After (in ms, -1 when absent) to *retry_after_ms, libcurl's
 * message to errbuf (CURL_ERROR_SIZE). -1 when libcurl refuses an option. */
int remote_easy_setup(const struct remote *r, CURL *h, struct remote_buf *resp,
                      long *retry_after_ms, char *errbuf);

/* Prepares h for one more request of body[0..len) (borrowed until it ends). */
void remote_request_reset(CURL *h, const char *body, size_t len, struct remote_buf *resp,
                          long *retry_after_ms, char *errbuf);

/* Judges a finished request; for anything but REMOTE_OK, why receives what
 * the server did ("HTTP 503: overloaded", "Connection refused"). */
enum remote_verdict remote_judge(CURL *h, CURLcode cc, const struct remote_buf *resp,
                                 const char *errbuf, char *why, size_t why_len);

/* Whether a request that failed for the attempts-th time may try again,
 * and after how long (*delay, ms). Thread-safe. */
int remote_may_retry(struct remote *r, unsigned attempts, double first_fail_ms,
                     long retry_after_ms, unsigned *delay);

/* Counters: a request about to be sent (attempts before it), an answer. */
void remote_count_request(struct remote *r, unsigned attempts, size_t body_len);
void remote_count_answer(struct remote *r, CURLcode cc, enum remote_verdict vd, size_t resp_len);

/* A snapshot of r's counters. Thread-safe. */
void remote_get_counters(struct remote *r, struct remote_counters *out);

/* -SAGE_EREMOTE: "WHAT 'URL' failed REQUEST after N attempts: WHY". */
int remote_give_up(const struct remote *r, struct sage_err *err, unsigned attempts,
                   const char *request, const char *why);

/* POSTs body[0..len) on h (set up by remote_easy_setup for r; its
 * destinations are pointed at this call's locals and cleared after) until a
 * 200 lands in resp (the caller's, max set), retrying as r says and sleeping
 * between tries; request names it in the error. Thread-safe for distinct h. */
int remote_post(struct remote *r, CURL *h, const char *body, size_t len, struct remote_buf *resp,
                const char *request, struct sage_err *err);

/* One environment variable of a configuration struct: a string (pointing
 * into the environment), an unsigned in [min, max], or a boolean (an int:
 * 1/0, true/false, yes/no, on/off). */
enum remote_env_kind { REMOTE_ENV_STR, REMOTE_ENV_UINT, REMOTE_ENV_BOOL };
struct remote_env {
    const char *name;
    enum remote_env_kind kind;
    size_t off;                 /* offsetof the field in the struct */
    unsigned min, max;
};

/* Sets the fields of the struct at cfg whose variables are set; the rest
 * stay. -SAGE_EINVAL naming the variable for a malformed value. */
int remote_env_load(void *cfg, const struct remote_env *vars, size_t n, struct sage_err *err);

#endif
