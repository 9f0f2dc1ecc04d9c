/* Remote OCR (ocr.h): one chat completion per page, the PNG inlined as a
 * base64 data URL. Calls are synchronous and may run on many threads (the
 * build's extraction workers); idle easy handles are pooled so each call
 * reuses a kept-alive connection. HTTP and retries are remote.c's. */
#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "ocr.h"
#include "remote.h"

#define POOL_MAX 64                     /* idle handles kept */
#define MAX_TEXT ((size_t)16 << 20)     /* response bytes accepted per page */

static const uint8_t png_magic[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };

struct ocr_client {
    struct ocr_config cfg;      /* strings are our copies (url: r.url) */
    struct remote r;
    char *model, *prompt;
    pthread_mutex_t mu;         /* guards pool and pages */
    CURL *pool[POOL_MAX];
    size_t n_pool;
    uint64_t pages;
};

void ocr_config_init(struct ocr_config *c)
{
    memset(c, 0, sizeof(*c));
    c->max_tokens = 4096;
    c->retry = (struct remote_policy){ 120000, 6, 300000, 500, 30000 };
    c->max_image = (size_t)32 << 20;
}

int ocr_config_from_env(struct ocr_config *c, struct sage_err *err)
{
#define STR(name, field) { name, REMOTE_ENV_STR, offsetof(struct ocr_config, field), 0, 0 }
#define NUM(name, field, min, max) \
    { name, REMOTE_ENV_UINT, offsetof(struct ocr_config, field), min, max }
    static const struct remote_env vars[] = {
        STR("SAGE_OCR_URL", url),
        STR("SAGE_OCR_MODEL", model),
        STR("SAGE_OCR_API_KEY", api_key),
        STR("SAGE_OCR_API_KEY_FILE", api_key_file),
        STR("SAGE_OCR_PROMPT", prompt),
        NUM("SAGE_OCR_MAX_TOKENS", max_tokens, 1, 1u << 20),
        NUM("SAGE_OCR_TIMEOUT_MS", retry.timeout_ms, 1, 3600000),
        NUM("SAGE_OCR_RETRIES", retry.max_attempts, 1, 1000),
        NUM("SAGE_OCR_RETRY_BUDGET_MS", retry.retry_budget_ms, 1, 86400000),
    };
#undef STR
#undef NUM
    return remote_env_load(c, vars, sizeof(vars) / sizeof(vars[0]), err);
}

int ocr_new(const struct ocr_config *c, struct ocr_client **out, struct sage_err *err)
{
    int rc;
    struct ocr_config d;
    struct ocr_client *o;
    *out = NULL;
    if (!c->url || !*c->url || !c->model || !*c->model)
        return sage_err_set(err, SAGE_EINVAL, "an OCR server needs a URL and a model name");
    if ((rc = remote_curl_ready(err)) < 0)
        return rc;
    if (!(o = sage_calloc(1, sizeof(*o))))
        return sage_err_set(err, SAGE_ENOMEM, "cannot allocate the OCR client");
    ocr_config_init(&d);
    o->cfg = *c;
    if (!o->cfg.max_tokens)
        o->cfg.max_tokens = d.max_tokens;
    if (!o->cfg.max_image)
        o->cfg.max_image = d.max_image;
    remote_policy_defaults(&o->cfg.retry, &d.retry);
    pthread_mutex_init(&o->mu, NULL);
    if ((rc = remote_init(&o->r, "OCR server", remote_endpoint(c->url, "chat/completions"),
                          c->api_key, c->api_key_file, &o->cfg.retry, err)) < 0)
        goto out;
    if (!(o->model = sage_strdup(c->model)) ||
        !(o->prompt = sage_strdup(c->prompt ? c->prompt : OCR_DEFAULT_PROMPT))) {
        rc = sage_err_set(err, SAGE_ENOMEM, "cannot allocate the OCR client");
        goto out;
    }
    o->cfg.url = o->r.url;
    o->cfg.model = o->model;
    o->cfg.prompt = o->prompt;
    o->cfg.api_key = o->cfg.api_key_file = NULL;
out:
    if (rc < 0) {
        ocr_free(o);
        return rc;
    }
    *out = o;
    return 0;
}

/* Copies s[0..n) into a new NUL-terminated string. */
static int set_text(const char *s, size_t n, char **text, size_t *text_len, struct sage_err *err)
{
    char *t = sage_malloc(n + 1);
    if (!t)
        return sage_err_set(err, SAGE_ENOMEM, "cannot copy %zu bytes of OCR text", n);
    memcpy(t, s, n);
    t[n] = 0;
    *text = t;
    *text_len = n;
    return 0;
}

/* olmOCR's formats: a JSON object with "natural_text", or YAML front matter
 * between "---" lines before the text. Anything else is the text itself. */
static int unwrap(const char *s, size_t n, char **text, size_t *text_len, struct sage_err *err)
{
    if (n > 0 && s[0] == '{') {
        json_t *j = json_loadb(s, n, 0, NULL);
        json_t *nt = json_object_get(j, "natural_text");
        int rc = 1;
        if (json_is_string(nt))
            rc = set_text(json_string_value(nt), json_string_length(nt), text, text_len, err);
        else if (json_is_null(nt))
            rc = set_text("", 0, text, text_len, err);
        json_decref(j);
        if (rc <= 0)
            return rc;
    }
    if (n >= 4 && memcmp(s, "---\n", 4) == 0) {
        for (size_t i = 3; i + 4 <= n; i++) {
            if (memcmp(s + i, "\n---", 4) == 0 && (i + 4 == n || s[i + 4] == '\n')) {
                size_t start = i + 4 + (i + 4 < n);
                return set_text(s + start, n - start, text, text_len, err);
            }
        }
    }
    return set_text(s, n, text, text_len, err);
}

int ocr_parse_response(const char *body, size_t len, char **text, size_t *text_len,
                       struct sage_err *err)
{
    int rc = 0;
    json_error_t je;
    char *joined = NULL;
    *text = NULL;
    *text_len = 0;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    json_t *msg = json_object_get(json_array_get(json_object_get(root, "choices"), 0), "message");
    json_t *content = json_object_get(msg, "content");
    if (!root) {
        rc = sage_err_set(err, SAGE_EREMOTE, "malformed JSON in the response: %s", je.text);
    } else if (!json_is_object(msg)) {
        rc = sage_err_set(err, SAGE_EREMOTE, "response has no choices[0].message");
    } else if (json_is_string(content)) {
        rc = unwrap(json_string_value(content), json_string_length(content), text, text_len, err);
    } else if (json_is_array(content)) {
        /* Parts: join the text ones (each is valid UTF-8, so the whole is). */
        size_t n = 0, i;
        json_t *part;
        json_array_foreach(content, i, part)
            n += json_string_length(json_object_get(part, "text"));
        if (!(joined = sage_malloc(n + 1))) {
            rc = sage_err_set(err, SAGE_ENOMEM, "cannot join OCR text");
            goto out;
        }
        n = 0;
        json_array_foreach(content, i, part) {
            json_t *t = json_object_get(part, "text");
            if (json_is_string(t))
                memcpy(joined + n, json_string_value(t), json_string_length(t));
            n += json_string_length(t);
        }
        rc = unwrap(joined, n, text, text_len, err);
    } else {
        rc = sage_err_set(err, SAGE_EREMOTE, "response message has no text content");
    }
out:
    sage_free(joined);
    json_decref(root);
    return rc;
}

/* The request body for one page, or NULL when out of memory. */
static char *page_request(const struct ocr_client *o, const uint8_t *png, size_t len)
{
    static const char prefix[] = "data:image/png;base64,";
    size_t b64 = 4 * ((len + 2) / 3);
    char *url = sage_malloc(sizeof(prefix) + b64 + 1), *body = NULL;
    if (!url)
        return NULL;
    memcpy(url, prefix, sizeof(prefix) - 1);
    /* EVP_EncodeBlock takes an int length; max_image keeps len far below. */
    EVP_EncodeBlock((unsigned char *)url + sizeof(prefix) - 1, png, (int)len);
    json_t *req = json_pack("{s:s, s:i, s:f, s:[{s:s, s:[{s:s, s:s}, {s:s, s:{s:s}}]}]}",
                            "model", o->model, "max_tokens", (int)o->cfg.max_tokens,
                            "temperature", 0.0, "messages", "role", "user", "content",
                            "type", "text", "text", o->prompt,
                            "type", "image_url", "image_url", "url", url);
    if (req)
        body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    sage_free(url);
    return body;
}

static CURL *take_handle(struct ocr_client *o)
{
    CURL *h = NULL;
    pthread_mutex_lock(&o->mu);
    if (o->n_pool > 0)
        h = o->pool[--o->n_pool];
    pthread_mutex_unlock(&o->mu);
    if (!h && (h = curl_easy_init()) && remote_easy_setup(&o->r, h, NULL, NULL, NULL) < 0) {
        curl_easy_cleanup(h);
        h = NULL;
    }
    return h;
}

static void give_handle(struct ocr_client *o, CURL *h)
{
    pthread_mutex_lock(&o->mu);
    if (o->n_pool < POOL_MAX) {
        o->pool[o->n_pool++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&o->mu);
    curl_easy_cleanup(h);
}

int ocr_page(struct ocr_client *o, const uint8_t *png, size_t len, char **text, size_t *text_len,
             struct sage_err *err)
{
    int rc = 0;
    char *body = NULL, request[64];
    struct remote_buf resp = { .max = MAX_TEXT };
    struct sage_err perr = { 0 };
    CURL *h = NULL;
    *text = NULL;
    *text_len = 0;
    if (len < sizeof(png_magic) || memcmp(png, png_magic, sizeof(png_magic)) != 0)
        return sage_err_set(err, SAGE_EINVAL, "page image is not a PNG");
    if (len > o->cfg.max_image || len > (size_t)INT32_MAX / 2)
        return sage_err_set(err, SAGE_EINVAL, "page image of %zu bytes is over the limit of %zu",
                            len, o->cfg.max_image);
    if (!(body = page_request(o, png, len)) || !(h = take_handle(o))) {
        rc = sage_err_set(err, SAGE_ENOMEM, "cannot build an OCR request");
        goto out;
    }
    snprintf(request, sizeof(request), "a page of %zu bytes", len);
    if ((rc = remote_post(&o->r, h, body, strlen(body), &resp, request, err)) < 0)
        goto out;
    if ((rc = ocr_parse_response(resp.p, resp.len, text, text_len, &perr)) < 0) {
        rc = sage_err_set(err, perr.code, "OCR server '%s' sent a bad response: %s", o->r.url,
                          perr.msg);
        goto out;
    }
    pthread_mutex_lock(&o->mu);
    o->pages++;
    pthread_mutex_unlock(&o->mu);
out:
    if (h)
        give_handle(o, h);
    sage_free(resp.p);
    free(body);
    return rc;
}

void ocr_get_stats(const struct ocr_client *o, struct ocr_stats *s)
{
    struct ocr_client *m = (struct ocr_client *)o;
    memset(s, 0, sizeof(*s));
    pthread_mutex_lock(&m->mu);
    s->pages = m->pages;
    pthread_mutex_unlock(&m->mu);
    remote_get_counters(&m->r, &s->http);
}

void ocr_free(struct ocr_client *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->n_pool; i++)
        curl_easy_cleanup(o->pool[i]);
    remote_release(&o->r);
    sage_free(o->model);
    sage_free(o->prompt);
    pthread_mutex_destroy(&o->mu);
    sage_free(o);
}
