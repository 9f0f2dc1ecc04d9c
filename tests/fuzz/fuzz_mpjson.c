/* Fuzz target for msgpack records: whatever sage_mpjson_decode accepts must
 * survive a round trip, encode then decode, as an equal JSON value. A refusal
 * is fine; a crash, a leak or an unequal round trip is a bug (we abort). */
#include <jansson.h>
#include <stdlib.h>

#include "alloc.h"
#include "fuzz.h"
#include "mpjson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *a = NULL, *b = NULL;
    uint8_t *enc = NULL;
    size_t enc_len = 0;
    struct sage_err err = { 0 };
    if (sage_mpjson_decode(data, size, &a, &err) < 0)
        goto out;
    if (sage_mpjson_encode(a, &enc, &enc_len, &err) < 0)
        abort();    /* a decoded value must encode again */
    if (sage_mpjson_decode(enc, enc_len, &b, &err) < 0 || !json_equal(a, b))
        abort();
out:
    sage_free(enc);
    json_decref(a);
    json_decref(b);
    return 0;
}
