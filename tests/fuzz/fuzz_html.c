/* Fuzz target for the HTML extractor: any bytes must either be refused with
 * an error or yield blocks that keep the contract of extract.h (valid UTF-8
 * without NUL, lengths that add up, headings and title clean too). A crash,
 * a leak or a broken invariant is a bug (we abort). */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "../../indexer/extract.h"
#include "fuzz.h"

static void check_utf8(const char *s, size_t n)
{
    if (!s || strlen(s) != n)
        abort();
    for (size_t i = 0; i < n;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k <= 0)
            abort();
        i += (size_t)k;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct extracted x;
    struct sage_err err = { 0 };
    if (extract_html(data, size, &x, &err) < 0) {
        if (x.n_blocks || x.title || x.blocks)
            abort();    /* a failure leaves nothing behind */
        return 0;
    }
    size_t total = 0;
    if (x.title)
        check_utf8(x.title, strlen(x.title));
    if (x.n_blocks > x.cap_blocks)
        abort();
    for (size_t i = 0; i < x.n_blocks; i++) {
        const struct doc_block *b = &x.blocks[i];
        check_utf8(b->text, b->text_len);
        if (b->text_len == 0 || b->page != 0)
            abort();
        if (b->heading)
            check_utf8(b->heading, strlen(b->heading));
        total += b->text_len;
    }
    if (total != x.total_len || x.n_pages != 0)
        abort();
    extracted_release(&x);
    return 0;
}
