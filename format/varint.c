/* Bit packing: a 64-bit accumulator, LSB first. Plain scalar code; the block
 * size (128) keeps it cheap next to scoring. */
#include "varint.h"

#include <string.h>

void sage_bitpack(const uint32_t *v, size_t n, unsigned bits, uint8_t *out)
{
    size_t len = sage_bitpack_len(n, bits);
    uint64_t acc = 0;
    unsigned have = 0;
    size_t o = 0;
    memset(out, 0, len);
    if (bits == 0)
        return;
    for (size_t i = 0; i < n; i++) {
        acc |= (uint64_t)v[i] << have;
        have += bits;
        while (have >= 8) {
            out[o++] = (uint8_t)acc;
            acc >>= 8;
            have -= 8;
        }
    }
    if (have)
        out[o] = (uint8_t)acc;
}

void sage_bitunpack(const uint8_t *in, size_t n, unsigned bits, uint32_t *v)
{
    uint64_t acc = 0, mask = bits == 32 ? 0xffffffffu : ((1u << bits) - 1);
    unsigned have = 0;
    size_t o = 0;
    if (bits == 0) {
        memset(v, 0, n * sizeof(*v));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        while (have < bits) {
            acc |= (uint64_t)in[o++] << have;
            have += 8;
        }
        v[i] = (uint32_t)(acc & mask);
        acc >>= bits;
        have -= bits;
    }
}

unsigned sage_bits_for(uint32_t v)
{
    unsigned b = 0;
    while (v) {
        b++;
        v >>= 1;
    }
    return b;
}
