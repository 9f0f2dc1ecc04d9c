/* Record tables: a count, an offset table and the concatenated records, so
 * record i of n is found in O(1). DOCS and TEXT sections use this layout.
 *   u64 n | u64 off[n+1] (relative to the data area, off[0] = 0) | data
 * A builder accumulates records in memory under a byte cap; a view reads them
 * from a decoded section, checking every offset. */
#ifndef SAGE_RECTAB_H
#define SAGE_RECTAB_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct sage_rectab_builder {
    uint64_t *offs;         /* n + 1 entries in use */
    size_t n, offs_cap;
    uint8_t *data;
    size_t data_len, data_cap;
    size_t max_bytes;       /* cap on data_len; 0 means 1 GiB */
};

void sage_rectab_builder_init(struct sage_rectab_builder *b, size_t max_bytes);
void sage_rectab_builder_release(struct sage_rectab_builder *b);
/* Appends a record (copied). */
int sage_rectab_builder_add(struct sage_rectab_builder *b, const void *rec, size_t len,
                            struct sage_err *err);
/* Encoded size, and the encoding into out (exactly that many bytes). */
size_t sage_rectab_builder_size(const struct sage_rectab_builder *b);
void sage_rectab_builder_encode(const struct sage_rectab_builder *b, uint8_t *out);

struct sage_rectab {
    const uint8_t *offs;    /* borrowed from the section */
    const uint8_t *data;
    uint64_t n, data_len;
};

/* Parses the table header of a decoded section; checks sizes, not each offset. */
int sage_rectab_open(struct sage_rectab *t, const uint8_t *buf, size_t len, struct sage_err *err);
/* Record i as (ptr, len); fails on a bad index or offsets out of order. */
int sage_rectab_get(const struct sage_rectab *t, uint64_t i, const uint8_t **rec, size_t *len,
                    struct sage_err *err);

#endif
