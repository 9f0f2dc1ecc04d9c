/* sage-indexer query: searches an index file offline and prints the hits
 * with their documents' library, path, title and a snippet (text or JSON). */
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "cli.h"
#include "log.h"
#include "mpjson.h"
#include "rectab.h"
#include "scan.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Joins the query words given on the command line. */
static char *join_args(char **a, int n)
{
    size_t len = 1;
    for (int i = 0; i < n; i++)
        len += strlen(a[i]) + 1;
    char *q = sage_malloc(len), *p = q;
    if (!q)
        return NULL;
    for (int i = 0; i < n; i++)
        p += snprintf(p, len - (size_t)(p - q), "%s%s", i ? " " : "", a[i]);
    *p = '\0';
    return q;
}

static int open_table(const struct sage_reader *r, uint32_t kind, struct sage_bytes *b,
                      struct sage_rectab *t, struct sage_err *err)
{
    const struct sage_section *s = sage_reader_find(r, kind);
    if (!s)
        return sage_err_set(err, SAGE_ECORRUPT, "index has no %s section",
                            sage_section_kind_name(kind));
    int rc = sage_reader_load(r, s, 0, b, err);
    return rc < 0 ? rc : sage_rectab_open(t, b->data, b->len, err);
}

int cmd_query(struct cli *c)
{
    struct sage_err err = { 0 };
    struct sage_reader *r = NULL;
    struct sage_tokenizer *tk = NULL;
    struct sage_results res = { 0 };
    struct sage_bytes docs_b = { 0 }, text_b = { 0 };
    struct sage_rectab docs, text;
    json_t *out = NULL, *hits = json_array();
    char *q = NULL;
    int status = 1, json = (int)c->v[OPT_JSON].num;
    int tty = !json && isatty(STDOUT_FILENO);
    if (c->n_args < 2) {
        fprintf(stderr, "usage: sage-indexer query [-k N] [--json] FILE QUERY...\n");
        return 2;
    }
    if (!(q = join_args(c->args + 1, c->n_args - 1)) || !hits) {
        sage_log(SAGE_LOG_ERROR, "out of memory");
        goto out;
    }
    double t0 = now_ms();
    if (sage_reader_open(c->args[0], 0, &r, &err) < 0 ||
        sage_tokenizer_new("english", &tk, &err) < 0 ||
        sage_scan_search(r, tk, q, (size_t)c->v[OPT_K].num, &res, &err) < 0 ||
        open_table(r, SAGE_SECTION_DOCS, &docs_b, &docs, &err) < 0 ||
        open_table(r, SAGE_SECTION_TEXT, &text_b, &text, &err) < 0)
        goto fail;
    for (size_t i = 0; i < res.n_hits; i++) {
        const uint8_t *p, *tp;
        size_t n, tn;
        json_t *doc = NULL;
        char *snip = NULL;
        if (sage_rectab_get(&docs, res.hits[i].doc, &p, &n, &err) < 0 ||
            sage_mpjson_decode(p, n, &doc, &err) < 0 ||
            sage_rectab_get(&text, res.hits[i].doc, &tp, &tn, &err) < 0 ||
            sage_snippet(tk, q, (const char *)tp, tn, 200, tty ? "\033[1m" : "[",
                         tty ? "\033[0m" : "]", &snip, &err) < 0) {
            json_decref(doc);
            goto fail;
        }
        json_object_set_new(doc, "score", json_real(res.hits[i].score));
        json_object_set_new(doc, "snippet", json_string(snip));
        json_array_append_new(hits, doc);
        sage_free(snip);
    }
    double took = now_ms() - t0;
    if (json) {
        out = json_pack("{s:s, s:I, s:b, s:f, s:O}", "query", q, "total", (json_int_t)res.total,
                        "total_exact", 1, "took_ms", took, "hits", hits);
        char *s = out ? json_dumps(out, JSON_INDENT(2)) : NULL;
        if (s)
            puts(s);
        free(s);
    } else {
        size_t i;
        json_t *h;
        printf("%llu document%s match \"%s\" (%.1f ms)\n", (unsigned long long)res.total,
               res.total == 1 ? "" : "s", q, took);
        json_array_foreach(hits, i, h)
            printf("\n%2zu. %.3f  %s:%s\n    %s\n    %s\n", i + 1,
                   json_real_value(json_object_get(h, "score")),
                   json_string_value(json_object_get(h, "library")),
                   json_string_value(json_object_get(h, "path")),
                   json_string_value(json_object_get(h, "title")),
                   json_string_value(json_object_get(h, "snippet")));
    }
    status = 0;
    goto out;
fail:
    sage_log(SAGE_LOG_ERROR, "query on '%s' failed: %s", c->args[0], err.msg);
out:
    json_decref(out);
    json_decref(hits);
    sage_bytes_release(&docs_b);
    sage_bytes_release(&text_b);
    sage_results_release(&res);
    sage_tokenizer_free(tk);
    sage_reader_close(r);
    sage_free(q);
    return status;
}
