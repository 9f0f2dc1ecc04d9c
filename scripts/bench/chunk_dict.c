/* Would a trained zstd dictionary pay for the CHUNK_TEXT blocks? Decodes
 * every block of an index, trains a dictionary (ZDICT) on every tenth block,
 * recompresses all blocks at the index's level with and without it and prints
 * sizes, compression time and decode time per block.
 *   chunk_dict FILE.sage [LEVEL [DICT_KB]]     (defaults 3 and 64)
 * Measured on the Debian-docs corpus the saving is about 12 % of CHUNK_TEXT
 * (8 % of the file). Not adopted for now: blocks compressed against a
 * dictionary cannot be read by a 1.x reader that does not know it, and
 * FORMAT.md allows a minor version only additions old readers can ignore,
 * so it waits for the next major version. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zdict.h>
#include <zstd.h>

#include "chunkstore.h"
#include "le.h"
#include "reader.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int die(const char *what)
{
    fprintf(stderr, "chunk_dict: %s\n", what);
    return 1;
}

int main(int argc, char **argv)
{
    struct sage_reader *r;
    struct sage_err err;
    struct sage_chunkstore cs;
    if (argc < 2)
        return die("usage: chunk_dict FILE.sage [LEVEL [DICT_KB]]");
    int level = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 3;
    size_t cap = (argc > 3 ? (size_t)strtol(argv[3], NULL, 10) : 64) * 1024;
    if (sage_reader_open(argv[1], 0, &r, &err) < 0 || sage_chunkstore_open(&cs, r, &err) < 0)
        return die(err.msg);
    size_t nb = cs.n_blocks, raw_total = 0, stored = 0, sample_len = 0, n_samples = 0;
    void **raw = calloc(nb, sizeof(*raw));
    size_t *rl = calloc(nb, sizeof(*rl));
    if (!raw || !rl)
        return die("out of memory");
    for (size_t b = 0; b < nb; b++) {
        uint64_t a = sage_le64(cs.offs + 8 * b), e = sage_le64(cs.offs + 8 * (b + 1));
        unsigned long long want = ZSTD_getFrameContentSize(cs.data + a, e - a);
        if (want > SAGE_CHUNK_BLOCK_MAX || !(raw[b] = malloc(want ? want : 1)))
            return die("bad block");
        rl[b] = ZSTD_decompress(raw[b], want, cs.data + a, e - a);
        if (ZSTD_isError(rl[b]))
            return die("block does not decode");
        raw_total += rl[b];
        stored += e - a;
        if (b % 10 == 0) {
            sample_len += rl[b];
            n_samples++;
        }
    }
    char *samples = malloc(sample_len ? sample_len : 1);
    size_t *sizes = calloc(n_samples ? n_samples : 1, sizeof(*sizes)), o = 0, k = 0;
    void *dict = malloc(cap), *buf = malloc(SAGE_CHUNK_BLOCK_MAX), *out = malloc(SAGE_CHUNK_BLOCK_MAX);
    if (!samples || !sizes || !dict || !buf || !out)
        return die("out of memory");
    for (size_t b = 0; b < nb; b += 10) {
        memcpy(samples + o, raw[b], rl[b]);
        sizes[k++] = rl[b];
        o += rl[b];
    }
    double t0 = now();
    size_t d = ZDICT_trainFromBuffer(dict, cap, samples, sizes, (unsigned)n_samples);
    double t_train = now() - t0;
    if (ZDICT_isError(d))
        return die(ZDICT_getErrorName(d));
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    ZSTD_DCtx *dc = ZSTD_createDCtx();
    ZSTD_CDict *cd = ZSTD_createCDict(dict, d, level);
    ZSTD_DDict *dd = ZSTD_createDDict(dict, d);
    size_t plain = 0, with = 0;
    double c_plain = 0, c_dict = 0, d_plain = 0, d_dict = 0;
    for (size_t b = 0; b < nb; b++) {
        double x = now();
        size_t z = ZSTD_compressCCtx(cc, buf, SAGE_CHUNK_BLOCK_MAX, raw[b], rl[b], level);
        c_plain += now() - x;
        plain += z;
        x = now();
        ZSTD_decompressDCtx(dc, out, SAGE_CHUNK_BLOCK_MAX, buf, z);
        d_plain += now() - x;
        x = now();
        z = ZSTD_compress_usingCDict(cc, buf, SAGE_CHUNK_BLOCK_MAX, raw[b], rl[b], cd);
        c_dict += now() - x;
        with += z;
        x = now();
        size_t back = ZSTD_decompress_usingDDict(dc, out, SAGE_CHUNK_BLOCK_MAX, buf, z, dd);
        d_dict += now() - x;
        if (back != rl[b] || memcmp(out, raw[b], back) != 0)
            return die("dictionary round trip differs");
    }
    printf("%s: %zu blocks, %zu raw bytes, %zu stored\n", argv[1], nb, raw_total, stored);
    printf("level %d: without dictionary %zu bytes; with a %zu-byte dictionary %zu + %zu = %zu "
           "(%.1f%% smaller); trained in %.2f s on %zu blocks\n", level, plain, d, with, d,
           with + d, 100.0 * (1.0 - (double)(with + d) / (double)plain), t_train, n_samples);
    printf("compress %.2f s vs %.2f s; decode per block %.1f us vs %.1f us\n", c_plain, c_dict,
           1e6 * d_plain / (double)nb, 1e6 * d_dict / (double)nb);
    return 0;
}
