/* Test helper: damages one named part of an index file in place.
 *   corrupt_section [--rehash] FILE WHERE OFFSET HEX
 * WHERE is header, footer, file, or a section kind (build, docs, text, or a
 * number); OFFSET counts from the start of that part; HEX is the bytes to
 * write ("ff00"), or "x" followed by bytes to XOR in ("x01"). With --rehash
 * the header, footer and whole-file checksums are recomputed afterwards, so
 * only the deeper checks (section checksums, field values) can catch it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "layout.h"
#include "le.h"

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) &&
            fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        }
        *len = n >= 0 ? (size_t)n : 0;
    }
    fclose(f);
    return buf;
}

static void rehash(uint8_t *b, size_t len)
{
    uint32_t hlen = sage_le32(b + SAGE_HDR_LEN);
    if (hlen > len - SAGE_FTR_LEN || hlen < SAGE_HDR_FIXED)
        return;
    sage_put64(b + SAGE_HDR_CHECKSUM, 0);
    uint64_t hc = XXH3_64bits(b, hlen);
    sage_put64(b + SAGE_HDR_CHECKSUM, hc);
    uint8_t *f = b + len - SAGE_FTR_LEN;
    sage_put64(f + SAGE_FTR_FILE_CHECKSUM, XXH3_64bits(b, len - SAGE_FTR_LEN));
    sage_put64(f + SAGE_FTR_HDR_CHECKSUM, hc);
    sage_put64(f + SAGE_FTR_CHECKSUM, XXH3_64bits(f, SAGE_FTR_CHECKSUM));
}

static int usage(void)
{
    fprintf(stderr, "usage: corrupt_section [--rehash] FILE WHERE OFFSET HEX\n");
    return 2;
}

int main(int argc, char **argv)
{
    int do_rehash = argc > 1 && strcmp(argv[1], "--rehash") == 0;
    if (argc - do_rehash != 5)
        return usage();
    const char *path = argv[1 + do_rehash], *where = argv[2 + do_rehash];
    unsigned long long off = strtoull(argv[3 + do_rehash], NULL, 0);
    const char *hex = argv[4 + do_rehash];
    size_t len = 0;
    uint8_t *b = slurp(path, &len);
    if (!b || len < SAGE_HDR_FIXED + SAGE_FTR_LEN) {
        fprintf(stderr, "corrupt_section: cannot read '%s' or too small\n", path);
        return 1;
    }
    uint64_t base = 0, size = len;
    if (strcmp(where, "header") == 0) {
        size = sage_le32(b + SAGE_HDR_LEN);
    } else if (strcmp(where, "footer") == 0) {
        base = len - SAGE_FTR_LEN;
        size = SAGE_FTR_LEN;
    } else if (strcmp(where, "file") != 0) {
        uint32_t kind = 0, n = sage_le32(b + SAGE_HDR_NSECT);
        for (uint32_t k = 1; k <= SAGE_SECTION_KIND_MAX_KNOWN; k++)
            if (strcmp(sage_section_kind_name(k) ? sage_section_kind_name(k) : "", where) == 0)
                kind = k;
        if (!kind)
            kind = (uint32_t)strtoul(where, NULL, 0);
        size = 0;
        for (uint32_t i = 0; i < n && (uint64_t)SAGE_HDR_FIXED + (i + 1) * SAGE_SEC_ENTRY <= len; i++) {
            const uint8_t *e = b + SAGE_HDR_FIXED + (size_t)i * SAGE_SEC_ENTRY;
            if (sage_le32(e + SAGE_SEC_KIND) == kind) {
                base = sage_le64(e + SAGE_SEC_OFF);
                size = sage_le64(e + SAGE_SEC_LEN);
                break;
            }
        }
        if (!size) {
            fprintf(stderr, "corrupt_section: no non-empty section '%s' in '%s'\n", where, path);
            return 1;
        }
    }
    int xor = hex[0] == 'x';
    hex += xor;
    size_t n = strlen(hex) / 2;
    if (off + n > size || base + off + n > len) {
        fprintf(stderr, "corrupt_section: offset %llu+%zu is outside %s (%llu bytes)\n", off, n,
                where, (unsigned long long)size);
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return usage();
        uint8_t *p = b + base + off + i;
        *p = xor ? (uint8_t)(*p ^ v) : (uint8_t)v;
    }
    if (do_rehash)
        rehash(b, len);
    FILE *f = fopen(path, "r+b");
    if (!f || fwrite(b, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "corrupt_section: cannot write '%s'\n", path);
        return 1;
    }
    free(b);
    return 0;
}
