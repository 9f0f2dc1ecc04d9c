/* Error codes and the error record every fallible function in libsage fills.
 * Functions return 0 (or a count) on success and -SAGE_E<NAME> on failure; an
 * optional struct sage_err receives the human-readable reason. Printing the
 * reason is left to the program that called us. */
#ifndef SAGE_ERR_H
#define SAGE_ERR_H

#include <stddef.h>

/* One table: the code, its stable name (also the API's JSON error code, in
 * lower case) and a default text. Append only: the numbers are ABI. */
#define SAGE_ERRORS(X) \
    X(NOMEM, "out of memory") \
    X(IO, "i/o error") \
    X(CORRUPT, "index file is corrupt") \
    X(VERSION, "unsupported format version") \
    X(LIMIT, "input exceeds a configured limit") \
    X(REMOTE, "remote server failed") \
    X(INVAL, "invalid argument") \
    X(NOTFOUND, "not found") \
    X(NOTFILE, "not a regular file")

#define SAGE_E_ENUM(name, text) SAGE_E##name,
enum sage_errcode { SAGE_OK = 0, SAGE_ERRORS(SAGE_E_ENUM) SAGE_E_COUNT_ };
#undef SAGE_E_ENUM

#define SAGE_ERR_MSG_MAX 512

struct sage_err {
    int code;                       /* positive enum sage_errcode, 0 when unset */
    char msg[SAGE_ERR_MSG_MAX];     /* one line, no final period */
};

/* Records code and a formatted message in err (NULL allowed) and returns
 * -code, so callers write: return sage_err_set(err, SAGE_EIO, "...", ...). */
int sage_err_set(struct sage_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* As sage_err_set, with ": strerror(errno)" appended. errno is read on entry. */
int sage_err_sys(struct sage_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Stable upper-case name of a code ("CORRUPT"); accepts the code negated. */
const char *sage_err_name(int code);

/* Default text for a code; accepts the code negated. */
const char *sage_err_text(int code);

/* The message in err, or the default text for code when err holds none. */
const char *sage_err_msg(const struct sage_err *err, int code);

/* Reports a broken invariant in our own code and aborts. Never for bad input. */
#define SAGE_BUG(what) sage_bug_(__FILE__, __LINE__, (what))
void sage_bug_(const char *file, int line, const char *what) __attribute__((noreturn));

#endif
