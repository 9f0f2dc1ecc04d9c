/* Option table processing over getopt_long. Help and the effective
 * configuration are built as strings; printing is the program's job. */
#include "opt.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

int sage_opt_parse_size(const char *s, long long *out)
{
    char *end;
    errno = 0;
    if (!*s || !(isdigit((unsigned char)*s)))
        return -1;
    long long v = strtoll(s, &end, 10);
    if (errno)
        return -1;
    long long mul = 1;
    switch (*end) {
    case 'k': case 'K': mul = 1LL << 10; end++; break;
    case 'm': case 'M': mul = 1LL << 20; end++; break;
    case 'g': case 'G': mul = 1LL << 30; end++; break;
    default: break;
    }
    if (*end == 'B' || *end == 'b')
        end++;
    if (*end || v > (long long)(9e18 / (double)mul))
        return -1;
    *out = v * mul;
    return 0;
}

static int parse_bool(const char *s, long long *out)
{
    static const char *const yes[] = { "1", "true", "yes", "on" };
    static const char *const no[] = { "0", "false", "no", "off", "" };
    for (size_t i = 0; i < sizeof(yes) / sizeof(*yes); i++)
        if (strcasecmp(s, yes[i]) == 0)
            return (*out = 1), 0;
    for (size_t i = 0; i < sizeof(no) / sizeof(*no); i++)
        if (strcasecmp(s, no[i]) == 0)
            return (*out = 0), 0;
    return -1;
}

static int list_add(struct sage_optval *v, char *item)
{
    char **l = sage_realloc(v->list, (v->n_list + 1) * sizeof(*l));
    if (!l)
        return -1;
    v->list = l;
    v->list[v->n_list++] = item;
    return 0;
}

/* 0 when text is one of the '|'-separated words of choices, else the error
 * "WHO: expected a, b or c, got 'text'". */
static int check_choice(const char *choices, const char *text, const char *who,
                        struct sage_err *err)
{
    char list[256];
    size_t n = 0, words = 1;
    for (const char *p = choices; *p; p++)
        words += *p == '|';
    for (const char *w = choices; *w;) {
        const char *bar = strchr(w, '|');
        size_t len = bar ? (size_t)(bar - w) : strlen(w);
        if (strlen(text) == len && strncmp(w, text, len) == 0)
            return 0;
        const char *sep = --words == 0 ? "" : words == 1 ? " or " : ", ";
        if (n < sizeof(list))
            n += (size_t)snprintf(list + n, sizeof(list) - n, "%.*s%s", (int)len, w, sep);
        w += len + (bar != NULL);
    }
    return sage_err_set(err, SAGE_EINVAL, "%s: expected %s, got '%s'", who, list, text);
}

/* Converts and range-checks text for option o; who names the source. */
static int set_value(const struct sage_opt *o, struct sage_optval *v, const char *text,
                     int from, const char *who, struct sage_err *err)
{
    char *end;
    v->str = text;
    v->from = from;
    switch (o->type) {
    case SAGE_OPT_STR:
        return 0;
    case SAGE_OPT_CHOICE:
        return check_choice(o->arg, text, who, err);
    case SAGE_OPT_BOOL:
        if (parse_bool(text, &v->num) < 0)
            return sage_err_set(err, SAGE_EINVAL, "%s: expected a boolean, got '%s'", who, text);
        return 0;
    case SAGE_OPT_INT:
        errno = 0;
        v->num = strtoll(text, &end, 10);
        if (errno || end == text || *end)
            return sage_err_set(err, SAGE_EINVAL, "%s: expected an integer, got '%s'", who, text);
        break;
    case SAGE_OPT_SIZE:
        if (sage_opt_parse_size(text, &v->num) < 0)
            return sage_err_set(err, SAGE_EINVAL, "%s: expected a size such as 100M, got '%s'",
                                who, text);
        break;
    case SAGE_OPT_LIST:
        return 0;
    }
    if (v->num < o->min || v->num > o->max)
        return sage_err_set(err, SAGE_EINVAL, "%s: %s is outside [%lld, %lld]", who, text,
                            o->min, o->max);
    return 0;
}

static int applies(const struct sage_opt *o, unsigned cmd)
{
    return o->cmds == 0 || (o->cmds & cmd);
}

int sage_opt_parse(const struct sage_opt *opts, size_t n, unsigned cmd,
                   struct sage_optval *vals, int argc, char **argv, int *first_arg,
                   struct sage_err *err)
{
    int rc = 0;
    char who[160];
    struct option *lo = sage_calloc(n + 2, sizeof(*lo));
    char *shorts = sage_calloc(2 * n + 3, 1);
    memset(vals, 0, n * sizeof(*vals));
    if (!lo || !shorts) {
        rc = sage_err_set(err, SAGE_ENOMEM, "cannot allocate option table");
        goto out;
    }
    size_t nl = 0, ns = 0;
    shorts[ns++] = ':';     /* report a missing value as ':' */
    for (size_t i = 0; i < n; i++) {
        if (!applies(&opts[i], cmd))
            continue;
        int has_arg = opts[i].type == SAGE_OPT_BOOL ? no_argument : required_argument;
        lo[nl++] = (struct option){ opts[i].name, has_arg, NULL, 256 + (int)i };
        if (opts[i].short_name) {
            shorts[ns++] = (char)opts[i].short_name;
            if (has_arg)
                shorts[ns++] = ':';
        }
    }
    lo[nl++] = (struct option){ "help", no_argument, NULL, 'h' };
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, shorts, lo, NULL)) != -1) {
        if (c == 'h') {
            rc = 1;
            goto out;
        }
        if (c == '?' || c == ':') {
            char shortopt[3] = { '-', (char)optopt, '\0' };
            const char *what = optopt > 0 && optopt < 128 ? shortopt : argv[optind - 1];
            rc = sage_err_set(err, SAGE_EINVAL, c == ':' ? "option '%s' needs a value"
                              : "unknown option '%s'", what);
            goto out;
        }
        size_t i = 0;
        if (c >= 256)
            i = (size_t)(c - 256);
        else
            while (i < n && !(opts[i].short_name == c && applies(&opts[i], cmd)))
                i++;
        if (i >= n)
            continue;
        snprintf(who, sizeof(who), "--%s", opts[i].name);
        if (opts[i].type == SAGE_OPT_LIST) {
            if (vals[i].from < 2) {     /* flags replace what the environment gave */
                sage_free(vals[i].list);
                sage_free(vals[i].owned);
                vals[i].list = NULL, vals[i].owned = NULL, vals[i].n_list = 0;
            }
            vals[i].from = 2;
            if (list_add(&vals[i], optarg) < 0) {
                rc = sage_err_set(err, SAGE_ENOMEM, "cannot grow option list");
                goto out;
            }
            continue;
        }
        if ((rc = set_value(&opts[i], &vals[i], opts[i].type == SAGE_OPT_BOOL ? "1" : optarg,
                            2, who, err)) < 0)
            goto out;
    }
    *first_arg = optind;
    for (size_t i = 0; i < n; i++) {
        const struct sage_opt *o = &opts[i];
        struct sage_optval *v = &vals[i];
        if (!applies(o, cmd) || v->from == 2)
            continue;
        const char *env = o->env ? getenv(o->env) : NULL;
        if (env && *env) {
            snprintf(who, sizeof(who), "%s", o->env);
            if (o->type == SAGE_OPT_LIST) {
                v->owned = sage_strdup(env);
                if (!v->owned) {
                    rc = sage_err_set(err, SAGE_ENOMEM, "cannot copy %s", o->env);
                    goto out;
                }
                v->from = 1;
                for (char *save = NULL, *t = strtok_r(v->owned, ",", &save); t;
                     t = strtok_r(NULL, ",", &save))
                    if (list_add(v, t) < 0) {
                        rc = sage_err_set(err, SAGE_ENOMEM, "cannot grow option list");
                        goto out;
                    }
                continue;
            }
            if ((rc = set_value(o, v, env, 1, who, err)) < 0)
                goto out;
        } else if (o->def && (rc = set_value(o, v, o->def, 0, o->name, err)) < 0) {
            goto out;
        }
    }
out:
    sage_free(lo);
    sage_free(shorts);
    return rc;
}

void sage_opt_release(struct sage_optval *vals, size_t n)
{
    for (size_t i = 0; vals && i < n; i++) {
        sage_free(vals[i].list);
        sage_free(vals[i].owned);
        vals[i].list = NULL;
        vals[i].owned = NULL;
        vals[i].n_list = 0;
    }
}

/* A growable string for help and configuration text. */
struct sbuf {
    char *s;
    size_t len, cap;
    int failed;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    for (int attempt = 0; attempt < 2 && !b->failed; attempt++) {
        va_start(ap, fmt);
        int k = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->failed = 1;
            return;
        }
        if (b->s && b->len + (size_t)k < b->cap) {
            b->len += (size_t)k;
            return;
        }
        size_t cap = (b->cap + (size_t)k + 1) * 2;
        char *s = realloc(b->s, cap);     /* returned to the caller for free() */
        if (!s) {
            b->failed = 1;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
}

static char *sb_done(struct sbuf *b)
{
    if (b->failed) {
        free(b->s);
        return NULL;
    }
    return b->s ? b->s : calloc(1, 1);
}

char *sage_opt_help(const struct sage_opt *opts, size_t n, unsigned cmd)
{
    struct sbuf b = { 0 };
    for (size_t i = 0; i < n; i++) {
        const struct sage_opt *o = &opts[i];
        char flag[96];
        if (!applies(o, cmd))
            continue;
        if (o->short_name)
            snprintf(flag, sizeof(flag), "-%c, --%s%s%s", o->short_name, o->name,
                     o->arg ? " " : "", o->arg ? o->arg : "");
        else
            snprintf(flag, sizeof(flag), "    --%s%s%s", o->name, o->arg ? " " : "",
                     o->arg ? o->arg : "");
        sb_printf(&b, "  %-30s %s", flag, o->help);
        if (o->def && o->type != SAGE_OPT_BOOL)
            sb_printf(&b, " (default %s)", o->def);
        if (o->env)
            sb_printf(&b, " [%s]", o->env);
        sb_printf(&b, "\n");
    }
    return sb_done(&b);
}

char *sage_opt_effective(const struct sage_opt *opts, size_t n, unsigned cmd,
                         const struct sage_optval *vals)
{
    struct sbuf b = { 0 };
    const char *sep = "";
    for (size_t i = 0; i < n; i++) {
        const struct sage_opt *o = &opts[i];
        if (!applies(o, cmd))
            continue;
        int secret = (o->flags & SAGE_OPT_SECRET) && (vals[i].str || vals[i].n_list);
        sb_printf(&b, "%s%s=", sep, o->name);
        sep = " ";
        if (secret)
            sb_printf(&b, "***");
        else if (o->type == SAGE_OPT_LIST)
            for (size_t j = 0; j < vals[i].n_list; j++)
                sb_printf(&b, "%s%s", j ? "," : "", vals[i].list[j]);
        else if (o->type == SAGE_OPT_BOOL)
            sb_printf(&b, "%s", vals[i].num ? "true" : "false");
        else
            sb_printf(&b, "%s", vals[i].str ? vals[i].str : "");
    }
    return sb_done(&b);
}
