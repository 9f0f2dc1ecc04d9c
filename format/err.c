/* Error records: formatting, and the name/text table generated from
 * SAGE_ERRORS so the codes, names and texts cannot drift apart. */
#include "err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SAGE_E_NAME(name, text) #name,
#define SAGE_E_TEXT(name, text) text,
static const char *const err_names[] = { "OK", SAGE_ERRORS(SAGE_E_NAME) };
static const char *const err_texts[] = { "success", SAGE_ERRORS(SAGE_E_TEXT) };

static int norm(int code)
{
    if (code < 0)
        code = -code;
    return code < SAGE_E_COUNT_ ? code : -1;
}

const char *sage_err_name(int code)
{
    int c = norm(code);
    return c < 0 ? "UNKNOWN" : err_names[c];
}

const char *sage_err_text(int code)
{
    int c = norm(code);
    return c < 0 ? "unknown error" : err_texts[c];
}

const char *sage_err_msg(const struct sage_err *err, int code)
{
    if (err && err->msg[0])
        return err->msg;
    return sage_err_text(code);
}

static int err_vset(struct sage_err *err, int code, const char *suffix,
                    const char *fmt, va_list ap)
{
    if (err) {
        int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        if (suffix && n >= 0 && (size_t)n < sizeof(err->msg))
            snprintf(err->msg + n, sizeof(err->msg) - (size_t)n, ": %s", suffix);
        err->code = code;
    }
    return -code;
}

int sage_err_set(struct sage_err *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = err_vset(err, code, NULL, fmt, ap);
    va_end(ap);
    return rc;
}

int sage_err_sys(struct sage_err *err, int code, const char *fmt, ...)
{
    int saved = errno;
    char buf[128];
    const char *why = strerror_r(saved, buf, sizeof(buf));
    va_list ap;
    va_start(ap, fmt);
    int rc = err_vset(err, code, why, fmt, ap);
    va_end(ap);
    return rc;
}

void sage_bug_(const char *file, int line, const char *what)
{
    fprintf(stderr, "sage: bug at %s:%d: %s\n", file, line, what);
    abort();
}
