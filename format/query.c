/* Query parsing: a single left-to-right pass over the bytes, splitting on
 * whitespace outside quotes. See query.h for the language. */
#include "query.h"

#include <string.h>
#include <utf8proc.h>

#include "alloc.h"

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static char *dup_n(const char *s, size_t n)
{
    char *d = sage_malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* Appends s[0, n) to *text with a space. */
static int add_text(char **text, size_t *len, const char *s, size_t n)
{
    char *t = sage_realloc(*text, *len + n + 2);
    if (!t)
        return -1;
    if (*len)
        t[(*len)++] = ' ';
    memcpy(t + *len, s, n);
    *len += n;
    t[*len] = '\0';
    *text = t;
    return 0;
}

static int add_part(char **list, size_t *n, const char *s, size_t len, const char *what,
                    struct sage_err *err)
{
    if (*n == SAGE_QUERY_MAX_PARTS)
        return sage_err_set(err, SAGE_ELIMIT, "query has more than %d %s", SAGE_QUERY_MAX_PARTS,
                            what);
    if (!(list[*n] = dup_n(s, len)))
        return sage_err_set(err, SAGE_ENOMEM, "cannot allocate query");
    (*n)++;
    return 0;
}

static int valid_utf8(const char *s, size_t n)
{
    utf8proc_int32_t cp;
    while (n > 0) {
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &cp);
        if (k <= 0 || cp == 0)
            return 0;
        s += k;
        n -= (size_t)k;
    }
    return 1;
}

int sage_query_parse(const char *q, size_t len, struct sage_query *out, struct sage_err *err)
{
    size_t text_len = 0, i = 0;
    int rc = 0;
    memset(out, 0, sizeof(*out));
    if (len > SAGE_QUERY_MAX_LEN)
        return sage_err_set(err, SAGE_ELIMIT, "query longer than %d bytes", SAGE_QUERY_MAX_LEN);
    if (!valid_utf8(q, len))
        return sage_err_set(err, SAGE_EINVAL, "query is not valid UTF-8");
    if (!(out->text = dup_n("", 0)))
        return sage_err_set(err, SAGE_ENOMEM, "cannot allocate query");
    while (i < len && rc == 0) {
        while (i < len && is_space(q[i]))
            i++;
        if (i >= len)
            break;
        char sign = 0;
        if ((q[i] == '-' || q[i] == '+') && i + 1 < len && !is_space(q[i + 1]))
            sign = q[i++];
        if (q[i] == '"') {
            size_t s = ++i;
            while (i < len && q[i] != '"')
                i++;
            size_t n = i - s;
            if (i < len)
                i++;    /* closing quote */
            if (n == 0)
                continue;
            if (sign == '-')
                rc = add_part(out->excluded, &out->n_excluded, q + s, n, "excluded words", err);
            else {
                rc = add_part(out->phrases, &out->n_phrases, q + s, n, "phrases", err);
                if (rc == 0 && add_text(&out->text, &text_len, q + s, n) < 0)
                    rc = sage_err_set(err, SAGE_ENOMEM, "cannot allocate query");
            }
            continue;
        }
        size_t s = i;
        while (i < len && !is_space(q[i]))
            i++;
        size_t n = i - s;
        const char *w = q + s, *colon = memchr(w, ':', n);
        if (!sign && colon && ((colon - w == 7 && memcmp(w, "library", 7) == 0) ||
                               (colon - w == 4 && memcmp(w, "path", 4) == 0))) {
            size_t vn = n - (size_t)(colon - w) - 1;
            if (vn == 0) {
                rc = sage_err_set(err, SAGE_EINVAL, "filter '%.*s' has no value", (int)n, w);
            } else if (w[0] == 'l') {
                rc = add_part(out->libraries, &out->n_libraries, colon + 1, vn, "library filters",
                              err);
            } else {
                rc = add_part(out->paths, &out->n_paths, colon + 1, vn, "path filters", err);
            }
            continue;
        }
        if (sign == '-') {
            rc = add_part(out->excluded, &out->n_excluded, w, n, "excluded words", err);
            continue;
        }
        if (sign == '+')
            rc = add_part(out->required, &out->n_required, w, n, "required words", err);
        if (rc == 0 && add_text(&out->text, &text_len, w, n) < 0)
            rc = sage_err_set(err, SAGE_ENOMEM, "cannot allocate query");
    }
    return rc;
}

static void free_list(char **l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sage_free(l[i]);
}

void sage_query_release(struct sage_query *q)
{
    if (!q)
        return;
    sage_free(q->text);
    free_list(q->phrases, q->n_phrases);
    free_list(q->required, q->n_required);
    free_list(q->excluded, q->n_excluded);
    free_list(q->libraries, q->n_libraries);
    free_list(q->paths, q->n_paths);
    memset(q, 0, sizeof(*q));
}

int sage_query_embed_text(const char *q, size_t len, char **out, struct sage_err *err)
{
    struct sage_query pq;
    struct sage_err perr;
    *out = NULL;
    if (sage_query_parse(q, len, &pq, &perr) == 0 && pq.text &&
        strspn(pq.text, " ") < strlen(pq.text)) {
        *out = pq.text;
        pq.text = NULL;
    } else if ((*out = sage_malloc(len + 1))) {
        memcpy(*out, q, len);
        (*out)[len] = '\0';
    }
    sage_query_release(&pq);
    return *out ? 0 : sage_err_set(err, SAGE_ENOMEM, "cannot copy the query");
}
