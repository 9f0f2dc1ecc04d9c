/* Fuzz target for indexer/archive.c: walks the input as an archive under
 * small limits, recursing into members that look like archives, as the
 * crawler does. A refusal is fine; a crash, a leak, an unsafe member name
 * delivered, or an error code outside the contract is a bug (we abort). */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "../../indexer/archive.h"

struct fuzz_walk {
    const struct archive_limits *lim;
    struct archive_budget *budget;
    unsigned depth;
};

/* A delivered name must be relative, without "." or ".." components, empty
 * components, backslashes or control characters. */
static int safe(const char *path)
{
    const char *p = path;
    if (*p == '\0')
        return 0;
    while (*p) {
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return 0;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f || p[i] == '\\')
                return 0;
        p += n;
        if (*p == '/')
            p++;
        if (*p == '\0' && end)
            return 0;   /* a trailing slash */
    }
    return 1;
}

static void check_rc(int rc, const struct sage_err *err)
{
    if (rc == 0)
        return;
    if (rc != -SAGE_ECORRUPT && rc != -SAGE_ELIMIT && rc != -SAGE_ENOMEM)
        abort();
    if (err->code != -rc || err->msg[0] == '\0')
        abort();
}

static void on_skip(void *ctx, const char *path, const char *reason)
{
    (void)ctx;
    if (!path || !reason || !reason[0])
        abort();
    for (const char *p = path; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            abort();    /* a reported name is printable */
}

static int on_member(void *ctx, const char *path, const uint8_t *data, size_t len)
{
    const struct fuzz_walk *w = ctx;
    if (!path || !data || !safe(path))
        abort();
    /* every byte is readable */
    volatile uint8_t sum = 0;
    for (size_t i = 0; i < len; i++)
        sum = (uint8_t)(sum + data[i]);
    if (archive_detect(data, len)) {
        struct fuzz_walk child = { w->lim, w->budget, w->depth + 1 };
        struct sage_err err = { 0 };
        int rc = archive_walk(path, data, len, w->lim, w->budget, child.depth, on_member, on_skip,
                              &child, &err);
        check_rc(rc, &err);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct archive_limits lim = {
        .max_entries = 100,
        .max_expanded = 8 << 20,
        .max_ratio = 200,
        .max_member = 1 << 20,
        .max_depth = 2,
    };
    struct archive_budget budget = { 0, 0 };
    struct fuzz_walk w = { &lim, &budget, 0 };
    struct sage_err err = { 0 };
    int rc = archive_walk("input.tar.gz", data, size, &lim, &budget, 0, on_member, on_skip, &w,
                          &err);
    check_rc(rc, &err);
    if (budget.entries > lim.max_entries + 1)
        abort();
    return 0;
}
