/* The option table: one array per program names every setting once (flag,
 * SAGE_* variable, default, type, range, help) and drives parsing, the
 * environment lookup, validation, --help and the effective-configuration
 * line. Precedence: flag, then environment, then default. */
#ifndef SAGE_OPT_H
#define SAGE_OPT_H

#include <stddef.h>

#include "err.h"

enum sage_opt_type {
    SAGE_OPT_STR,
    SAGE_OPT_INT,       /* decimal, within [min, max] */
    SAGE_OPT_SIZE,      /* bytes, with an optional K, M or G suffix (powers of 1024) */
    SAGE_OPT_BOOL,      /* a flag without argument; env: 1/0, true/false, yes/no */
    SAGE_OPT_LIST,      /* repeatable; env: comma-separated */
    SAGE_OPT_CHOICE     /* one of the words of arg ("text|json") */
};

enum sage_opt_flags {
    SAGE_OPT_SECRET = 1u << 0   /* shown as *** in the effective configuration */
};

struct sage_opt {
    const char *name;           /* long flag, without dashes */
    int short_name;             /* 0 for none */
    const char *env;            /* variable name, or NULL */
    enum sage_opt_type type;
    const char *def;            /* default as text, or NULL */
    long long min, max;         /* range for INT and SIZE */
    unsigned flags;             /* enum sage_opt_flags */
    unsigned cmds;              /* bit mask of the subcommands that take it; 0: all */
    const char *arg;            /* metavariable shown in help */
    const char *help;
};

struct sage_optval {
    const char *str;            /* text value (flag, env or default); NULL if none */
    long long num;              /* INT, SIZE, BOOL */
    int from;                   /* 0 default, 1 environment, 2 flag */
    char **list;                /* LIST values (owned) */
    size_t n_list;
    char *owned;                /* storage for env-split list items */
};

/* Parses argv for subcommand bit cmd against opts[0..n), filling vals[0..n).
 * Positional arguments are left, in order, in argv[*first_arg .. argc).
 * A bad value returns -SAGE_EINVAL naming the flag or variable; "--help"
 * returns 1. The caller releases vals with sage_opt_release. */
int sage_opt_parse(const struct sage_opt *opts, size_t n, unsigned cmd,
                   struct sage_optval *vals, int argc, char **argv, int *first_arg,
                   struct sage_err *err);
void sage_opt_release(struct sage_optval *vals, size_t n);

/* Help text for one subcommand's options (owned by the caller, free()). */
char *sage_opt_help(const struct sage_opt *opts, size_t n, unsigned cmd);

/* "name=value ..." for every option of cmd, secrets masked (free()). */
char *sage_opt_effective(const struct sage_opt *opts, size_t n, unsigned cmd,
                         const struct sage_optval *vals);

/* Parses a size such as "100M" into *out. */
int sage_opt_parse_size(const char *s, long long *out);

#endif
