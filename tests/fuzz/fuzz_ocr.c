/* Fuzz target for OCR chat completions (ocr_parse_response). A refusal is
 * fine; a crash, a leak, or accepted text that is not NUL-terminated at its
 * length is a bug (we abort). */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "fuzz.h"
#include "../../indexer/ocr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sage_err err = { 0 };
    char *text = NULL;
    size_t len = 0;
    if (ocr_parse_response((const char *)data, size, &text, &len, &err) == 0) {
        if (!text || text[len] != 0 || memchr(text, 0, len))
            abort();
    } else if (text || len || !err.msg[0]) {
        abort();
    }
    sage_free(text);
    return 0;
}
