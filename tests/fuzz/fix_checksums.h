/* Test helper for the index fuzz targets: recomputes the checksums of an index
 * image in place, so that mutated inputs get past the XXH3 checks of open and
 * verify to the parsing code behind them. Header-only (static), because the
 * Makefile links each fuzz target from its own object and the library. */
#ifndef SAGE_FUZZ_FIX_CHECKSUMS_H
#define SAGE_FUZZ_FIX_CHECKSUMS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <xxhash.h>

#include "layout.h"
#include "le.h"

/* Rewrites every checksum that the layout lets us find: those of sections
 * that lie inside the image, the header's, the whole-file one and the
 * footer's. Returns 0 when the image is too malformed to locate them. */
static inline int fuzz_fix_checksums(uint8_t *p, size_t size)
{
    if (size < SAGE_PAGE + SAGE_FTR_LEN || memcmp(p, SAGE_MAGIC, SAGE_MAGIC_LEN) != 0)
        return 0;
    uint32_t hlen = sage_le32(p + SAGE_HDR_LEN), n = sage_le32(p + SAGE_HDR_NSECT);
    size_t footer_off = size - SAGE_FTR_LEN;
    if (hlen < SAGE_HDR_FIXED + 8 || hlen > footer_off)
        return 0;
    for (uint32_t i = 0; i < n && i < (hlen - SAGE_HDR_FIXED) / SAGE_SEC_ENTRY; i++) {
        uint8_t *e = p + SAGE_HDR_FIXED + (size_t)i * SAGE_SEC_ENTRY;
        uint64_t off = sage_le64(e + SAGE_SEC_OFF), len = sage_le64(e + SAGE_SEC_LEN);
        if (off <= footer_off && len <= footer_off - off)
            sage_put64(e + SAGE_SEC_CHECKSUM, XXH3_64bits(p + off, (size_t)len));
    }
    sage_put64(p + SAGE_HDR_CHECKSUM, 0);
    uint64_t hc = XXH3_64bits(p, hlen);
    sage_put64(p + SAGE_HDR_CHECKSUM, hc);
    uint8_t *f = p + footer_off;
    sage_put64(f + SAGE_FTR_FILE_CHECKSUM, XXH3_64bits(p, footer_off));
    sage_put64(f + SAGE_FTR_HDR_CHECKSUM, hc);
    sage_put64(f + SAGE_FTR_CHECKSUM, XXH3_64bits(f, SAGE_FTR_CHECKSUM));
    return 1;
}

#endif
