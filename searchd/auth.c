/* Keys and the token-bucket rate limiter; see auth.h. */
#include "auth.h"

#include <math.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "alloc.h"
#include "err.h"
#include "clock.h"

#define BUCKETS 4096        /* clients tracked at once */

struct bucket {
    char client[48];        /* address; "" for a free slot */
    double tokens, last;
};

struct auth {
    char **keys, **admin;
    size_t n_keys, n_admin;
    double rate, burst;
    pthread_mutex_t mu;
    struct bucket *b;       /* BUCKETS, open addressing by client hash */
};

static char **copy_list(char *const *l, size_t n)
{
    char **c = sage_calloc(n ? n : 1, sizeof(*c));
    for (size_t i = 0; c && i < n; i++)
        if (!(c[i] = sage_strdup(l[i]))) {
            auth_keys_free(c, i);
            return NULL;
        }
    return c;
}

int auth_new(const struct auth_config *cfg, struct auth **out)
{
    struct auth *a = sage_calloc(1, sizeof(*a));
    *out = NULL;
    if (!a)
        return -SAGE_ENOMEM;
    a->keys = copy_list(cfg->keys, cfg->n_keys);
    a->admin = copy_list(cfg->admin_keys, cfg->n_admin);
    a->b = cfg->rate > 0 ? sage_calloc(BUCKETS, sizeof(*a->b)) : NULL;
    if (!a->keys || !a->admin || (cfg->rate > 0 && !a->b)) {
        auth_keys_free(a->keys, a->keys ? cfg->n_keys : 0);
        auth_keys_free(a->admin, a->admin ? cfg->n_admin : 0);
        sage_free(a->b);
        sage_free(a);
        return -SAGE_ENOMEM;
    }
    a->n_keys = cfg->n_keys;
    a->n_admin = cfg->n_admin;
    a->rate = cfg->rate;
    a->burst = cfg->burst > 0 ? cfg->burst : (cfg->rate > 1 ? cfg->rate : 1);
    pthread_mutex_init(&a->mu, NULL);
    *out = a;
    return 0;
}

void auth_free(struct auth *a)
{
    if (!a)
        return;
    auth_keys_free(a->keys, a->n_keys);
    auth_keys_free(a->admin, a->n_admin);
    sage_free(a->b);
    pthread_mutex_destroy(&a->mu);
    sage_free(a);
}

int auth_open(const struct auth *a)
{
    return a->n_keys == 0;
}

/* Constant time in the key's content: every key is compared in full. */
static int match(char *const *keys, size_t n, const char *tok)
{
    size_t tl = strlen(tok);
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        size_t kl = strlen(keys[i]);
        int same = kl == tl && CRYPTO_memcmp(keys[i], tok, kl) == 0;
        found |= same;
    }
    return found;
}

enum auth_result auth_check(const struct auth *a, const char *header, int admin)
{
    char *const *keys = admin ? a->admin : a->keys;
    size_t n = admin ? a->n_admin : a->n_keys;
    if (!admin && n == 0)
        return AUTH_OK;
    if (!header || strncasecmp(header, "Bearer ", 7) != 0)
        return AUTH_MISSING;
    const char *tok = header + 7;
    while (*tok == ' ')
        tok++;
    return n && match(keys, n, tok) ? AUTH_OK : AUTH_BAD;
}

double auth_rate_take(struct auth *a, const char *client)
{
    double wait = 0;
    if (a->rate <= 0)
        return 0;
    double now = sage_now_ms() / 1e3;
    size_t h = (size_t)XXH3_64bits(client, strlen(client)) % BUCKETS, slot = h, oldest = h;
    pthread_mutex_lock(&a->mu);
    for (size_t i = 0; i < 8; i++) {        /* a short probe; then recycle the oldest */
        struct bucket *b = &a->b[(h + i) % BUCKETS];
        if (b->client[0] == '\0' || strcmp(b->client, client) == 0) {
            slot = (h + i) % BUCKETS;
            goto found;
        }
        if (b->last < a->b[oldest].last)
            oldest = (h + i) % BUCKETS;
    }
    slot = oldest;
    a->b[slot].client[0] = '\0';
found:;
    struct bucket *b = &a->b[slot];
    if (b->client[0] == '\0') {
        snprintf(b->client, sizeof(b->client), "%s", client);
        b->tokens = a->burst;
        b->last = now;
    }
    b->tokens = fmin(a->burst, b->tokens + (now - b->last) * a->rate);
    b->last = now;
    if (b->tokens >= 1)
        b->tokens -= 1;
    else
        wait = (1 - b->tokens) / a->rate;
    pthread_mutex_unlock(&a->mu);
    return wait;
}

static int add_key(char ***keys, size_t *n, size_t *cap, const char *s, size_t len)
{
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r'))
        len--;
    while (len && (*s == ' ' || *s == '\t'))
        s++, len--;
    if (len == 0 || *s == '#')
        return 0;
    if (sage_grow((void **)keys, cap, *n + 1, sizeof(**keys)) < 0 ||
        !((*keys)[*n] = sage_malloc(len + 1)))
        return -SAGE_ENOMEM;
    memcpy((*keys)[*n], s, len);
    (*keys)[(*n)++][len] = '\0';
    return 0;
}

int auth_keys_from_list(const char *list, char ***keys, size_t *n)
{
    size_t cap = 0;
    *keys = NULL;
    *n = 0;
    for (const char *p = list; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (add_key(keys, n, &cap, p, len) < 0)
            return -SAGE_ENOMEM;
        p += len + (comma != NULL);
    }
    return 0;
}

int auth_keys_from_file(const char *path, char ***keys, size_t *n)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t lcap = 0, cap = 0;
    ssize_t len;
    int rc = 0;
    *keys = NULL;
    *n = 0;
    if (!f)
        return -SAGE_EIO;
    while (rc == 0 && (len = getline(&line, &lcap, f)) > 0) {
        if (line[len - 1] == '\n')
            len--;
        rc = add_key(keys, n, &cap, line, (size_t)len);
    }
    free(line);
    fclose(f);
    return rc;
}

void auth_keys_free(char **keys, size_t n)
{
    for (size_t i = 0; keys && i < n; i++) {
        /* keys are secrets: wipe before freeing */
        OPENSSL_cleanse(keys[i], strlen(keys[i]));
        sage_free(keys[i]);
    }
    sage_free(keys);
}
