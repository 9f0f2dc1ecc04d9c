/* Chunk metadata (section CHUNK_META, FORMAT.md §9.12): each chunk's page
 * and heading path, stored apart from its compressed text so that a hit can
 * be shown without decompressing a block of chunk records (snippets off).
 * Headings repeat from chunk to chunk of one section, so each distinct
 * heading is stored once and chunks point at it. */
#ifndef SAGE_CHUNKMETA_H
#define SAGE_CHUNKMETA_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "reader.h"
#include "rectab.h"
#include "writer.h"

#define SAGE_CHUNKMETA_NONE UINT32_MAX     /* a chunk without a heading */

struct sage_chunkmeta_builder {
    uint32_t *page, *heading;           /* per chunk */
    size_t n, cap;
    struct sage_rectab_builder names;   /* distinct headings, first seen first */
    uint64_t *hash;                     /* open addressing over names: XXH3 << 32 | id + 1 */
    size_t slots;                       /* power of two, 0 before the first heading */
};

void sage_chunkmeta_builder_init(struct sage_chunkmeta_builder *b);
void sage_chunkmeta_builder_release(struct sage_chunkmeta_builder *b);
/* Appends the next chunk's page and heading (NULL: none). */
int sage_chunkmeta_add(struct sage_chunkmeta_builder *b, uint32_t page, const char *heading,
                       struct sage_err *err);
/* Writes the CHUNK_META section. */
int sage_chunkmeta_write(const struct sage_chunkmeta_builder *b, struct sage_writer *w,
                         struct sage_err *err);

struct sage_chunkmeta {
    uint64_t n;
    const uint8_t *page, *heading;
    struct sage_rectab names;
};

/* -SAGE_ENOTFOUND without the section (files before 1.2); CORRUPT when it
 * does not describe n_chunks chunks. */
int sage_chunkmeta_open(struct sage_chunkmeta *m, const struct sage_reader *r,
                        struct sage_err *err);
/* Chunk i's page, and its heading as (*heading, *len) inside the mapping
 * (NULL when it has none). */
int sage_chunkmeta_get(const struct sage_chunkmeta *m, uint64_t i, uint32_t *page,
                       const char **heading, size_t *len, struct sage_err *err);

#endif
