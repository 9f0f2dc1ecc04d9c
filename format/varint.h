/* LEB128 varints and LSB-first bit packing for the lexicon and postings. The
 * decoders are bounded by an end pointer and report overruns. */
#ifndef SAGE_VARINT_H
#define SAGE_VARINT_H

#include <stddef.h>
#include <stdint.h>

/* Writes v at p (room for 10 bytes); returns the bytes written. */
static inline size_t sage_varint_put(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* Reads a varint from [*p, end); advances *p. Returns 0, or -1 when it runs
 * past end or is longer than 10 bytes. */
static inline int sage_varint_get(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 70 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

/* Bytes needed for n values of bits bits. */
static inline size_t sage_bitpack_len(size_t n, unsigned bits)
{
    return (n * bits + 7) / 8;
}

/* Packs n values (each < 2^bits, bits <= 32) LSB first; out must hold
 * sage_bitpack_len(n, bits) bytes, which this zeroes first. */
void sage_bitpack(const uint32_t *v, size_t n, unsigned bits, uint8_t *out);
/* Unpacks n values; in must hold sage_bitpack_len(n, bits) bytes. */
void sage_bitunpack(const uint8_t *in, size_t n, unsigned bits, uint32_t *v);
/* Bits needed for v (0 for 0). */
unsigned sage_bits_for(uint32_t v);

#endif
