/* Chunk records (msgpack maps: text, heading path, page, document) stored in
 * zstd-compressed blocks of up to 16 records with a block index, so a hit's
 * text costs one small decompression. The builder keeps compressed blocks in
 * memory; write emits the CHUNK_TEXT section. Layout in FORMAT.md. */
#ifndef SAGE_CHUNKSTORE_H
#define SAGE_CHUNKSTORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "reader.h"
#include "rectab.h"
#include "writer.h"

#define SAGE_CHUNKS_PER_BLOCK 16
#define SAGE_CHUNK_BLOCK_MAX ((size_t)64 << 20)    /* decoded block cap for readers */

struct sage_chunkstore_builder {
    struct sage_rectab_builder cur;     /* records of the block being filled */
    uint8_t *blocks;                    /* compressed blocks */
    size_t blocks_len, blocks_cap;
    uint64_t *offs;                     /* block start offsets, n_blocks + 1 */
    size_t n_blocks, offs_cap;
    uint64_t n;                         /* records added */
    int level;
    void *zc;                           /* ZSTD_CCtx */
    int fd;                             /* spill file, -1: none (see _spill) */
    uint64_t spilled;                   /* block bytes already in the spill file */
    size_t hold;                        /* block bytes kept in memory before spilling */
};

int sage_chunkstore_builder_init(struct sage_chunkstore_builder *b, int zstd_level,
                                 struct sage_err *err);
void sage_chunkstore_builder_release(struct sage_chunkstore_builder *b);
/* From now on, compressed blocks past hold bytes go to an anonymous
 * temporary file in dir (see tmpfile.h) and are copied into the section by
 * write, so memory stays bounded whatever the corpus. */
int sage_chunkstore_builder_spill(struct sage_chunkstore_builder *b, const char *dir, size_t hold,
                                  struct sage_err *err);
/* Appends the record of the next chunk (msgpack bytes, copied). */
int sage_chunkstore_add(struct sage_chunkstore_builder *b, const uint8_t *rec, size_t len,
                        struct sage_err *err);
/* Writes the CHUNK_TEXT section. */
int sage_chunkstore_write(struct sage_chunkstore_builder *b, struct sage_writer *w,
                          struct sage_err *err);

struct sage_chunkstore {
    uint64_t n, n_blocks;
    uint32_t per_block;
    const uint8_t *offs, *data;
    uint64_t data_len;
};

/* -SAGE_ENOTFOUND when the file has no CHUNK_TEXT section. */
int sage_chunkstore_open(struct sage_chunkstore *cs, const struct sage_reader *r,
                         struct sage_err *err);
/* Decodes the record of chunk i into *rec (a new reference). */
int sage_chunkstore_get(const struct sage_chunkstore *cs, uint64_t i, json_t **rec,
                        struct sage_err *err);

#endif
