/* Fuzz target for embedding responses (embed_parse_response): the first
 * byte picks how many vectors are expected (1 to 8) and whether the
 * dimension is known (4) or learned (0); the rest is the body. A refusal is
 * fine; a crash, a leak, or an accepted answer with the wrong shape or a
 * non-finite number is a bug (we abort). */
#include <math.h>
#include <stdlib.h>

#include "alloc.h"
#include "fuzz.h"
#include "../../indexer/embed.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sage_err err = { 0 };
    float *v = NULL;
    if (size < 1)
        return 0;
    size_t n = (size_t)(data[0] & 7) + 1;
    unsigned dim = data[0] & 8 ? 4 : 0, want = dim;
    if (embed_parse_response((const char *)data + 1, size - 1, n, &dim, &v, &err) == 0) {
        if (!v || dim == 0 || dim > EMBED_MAX_DIM || (want && dim != want))
            abort();
        for (size_t i = 0; i < n * dim; i++)
            if (!isfinite(v[i]))
                abort();
    } else if (v || !err.msg[0]) {
        abort();
    }
    sage_free(v);
    return 0;
}
