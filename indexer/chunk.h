/* Heading-aware chunking: blocks of an extracted document are cut into
 * chunks of about size bytes with overlap bytes carried over, split at a
 * paragraph, sentence or word boundary; consecutive small blocks under the
 * same heading and page are merged; a chunk never spans two headings or two
 * pages, and never exceeds max bytes. */
#ifndef INDEXER_CHUNK_H
#define INDEXER_CHUNK_H

#include <stddef.h>
#include <stdint.h>

#include "extract.h"

struct chunk_opts {
    size_t size;        /* target bytes (default 1000) */
    size_t overlap;     /* bytes repeated from the previous chunk (default 100) */
    size_t max;         /* hard cap (default 4000) */
};

/* Receives each chunk in order; text is not NUL-terminated; source is the
 * enum text_source of its blocks (a chunk never mixes two). Non-zero stops. */
typedef int (*chunk_fn)(void *ctx, const char *text, size_t len, const char *heading,
                        uint32_t page, uint8_t source, uint32_t ordinal);

/* Returns 0, the callback's non-zero value, or -SAGE_ENOMEM. */
int chunk_document(const struct extracted *x, const struct chunk_opts *o, chunk_fn fn, void *ctx);

/* Where to end a chunk that starts at text[0] and may run to len: the last
 * paragraph break, else sentence end, else space in the second half of
 * [0, size], else size moved back to a UTF-8 boundary. Exposed for tests. */
size_t chunk_split_point(const char *text, size_t len, size_t size);

#endif
