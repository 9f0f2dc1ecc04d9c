/* API keys and per-client rate limiting. Keys are Bearer tokens compared in
 * constant time; the admin key guards /v1/admin routes. The rate limiter is a
 * token bucket per client address in a fixed-size table (a full table
 * recycles its least recently used slot), so memory stays bounded whatever
 * the number of clients. Thread-safe. */
#ifndef SEARCHD_AUTH_H
#define SEARCHD_AUTH_H

#include <stddef.h>

struct auth_config {
    char *const *keys;          /* API keys; none: the API is open */
    size_t n_keys;
    char *const *admin_keys;    /* admin keys; none: admin routes refused */
    size_t n_admin;
    double rate;                /* requests per second per client; 0: no limit */
    double burst;               /* bucket size */
};

enum auth_result { AUTH_OK, AUTH_MISSING, AUTH_BAD };

struct auth;

int auth_new(const struct auth_config *cfg, struct auth **out);
void auth_free(struct auth *a);

/* Checks an Authorization header value (may be NULL) against the API keys,
 * or the admin keys when admin is set. */
enum auth_result auth_check(const struct auth *a, const char *header, int admin);
int auth_open(const struct auth *a);     /* 1 when no API key is configured */

/* Takes a token for client; 0 when allowed, else the seconds until the next
 * token (for Retry-After). */
double auth_rate_take(struct auth *a, const char *client);

/* Reads keys, one per line (blank lines and # comments skipped), from path
 * into a new list (free with auth_keys_free). */
int auth_keys_from_file(const char *path, char ***keys, size_t *n);
/* Splits a comma-separated list. */
int auth_keys_from_list(const char *list, char ***keys, size_t *n);
void auth_keys_free(char **keys, size_t n);

#endif
