/* CHUNK_META: u64 n, u64 n_headings, u32 page[n], u32 heading[n], zero
 * padding to a multiple of 8, then a record table of the headings. */
#include "chunkmeta.h"

#include <string.h>
#include <xxhash.h>

#include "alloc.h"
#include "le.h"

#define MHEAD 16

void sage_chunkmeta_builder_init(struct sage_chunkmeta_builder *b)
{
    memset(b, 0, sizeof(*b));
    sage_rectab_builder_init(&b->names, 0);
}

void sage_chunkmeta_builder_release(struct sage_chunkmeta_builder *b)
{
    sage_free(b->page);
    sage_free(b->heading);
    sage_free(b->hash);
    sage_rectab_builder_release(&b->names);
    memset(b, 0, sizeof(*b));
}

static int same_name(const struct sage_chunkmeta_builder *b, uint32_t id, const char *s,
                     size_t n)
{
    uint64_t a = b->names.offs[id], e = b->names.offs[id + 1];
    return e - a == n && memcmp(b->names.data + a, s, n) == 0;
}

static int rehash(struct sage_chunkmeta_builder *b)
{
    size_t slots = b->slots ? b->slots * 2 : 1024;
    uint64_t *h = sage_calloc(slots, sizeof(*h));
    if (!h)
        return -1;
    for (size_t i = 0; i < b->slots; i++) {
        if (!b->hash[i])
            continue;
        size_t j = (size_t)(b->hash[i] >> 32) & (slots - 1);
        while (h[j])
            j = (j + 1) & (slots - 1);
        h[j] = b->hash[i];
    }
    sage_free(b->hash);
    b->hash = h;
    b->slots = slots;
    return 0;
}

/* The id of heading s, adding it when new; -1 (err set) on failure. */
static int64_t heading_id(struct sage_chunkmeta_builder *b, const char *s, struct sage_err *err)
{
    size_t n = strlen(s);
    if ((b->names.n + 1) * 2 > b->slots && rehash(b) < 0) {
        sage_err_set(err, SAGE_ENOMEM, "cannot store a heading");
        return -1;
    }
    uint64_t h32 = (uint32_t)XXH3_64bits(s, n);
    size_t j = (size_t)h32 & (b->slots - 1);
    for (; b->hash[j]; j = (j + 1) & (b->slots - 1)) {
        uint32_t id = (uint32_t)(b->hash[j] & 0xffffffffu) - 1;
        if (b->hash[j] >> 32 == h32 && same_name(b, id, s, n))
            return id;
    }
    if (b->names.n >= SAGE_CHUNKMETA_NONE - 1) {
        sage_err_set(err, SAGE_ELIMIT, "more than %u distinct headings", SAGE_CHUNKMETA_NONE - 1);
        return -1;
    }
    if (sage_rectab_builder_add(&b->names, s, n, err) < 0)
        return -1;
    b->hash[j] = h32 << 32 | (uint64_t)b->names.n;     /* id + 1 */
    return (int64_t)b->names.n - 1;
}

int sage_chunkmeta_add(struct sage_chunkmeta_builder *b, uint32_t page, const char *heading,
                       struct sage_err *err)
{
    if (b->n == b->cap) {
        size_t cap = b->cap;
        if (sage_grow((void **)&b->page, &cap, b->n + 1, sizeof(*b->page)) < 0)
            return sage_err_set(err, SAGE_ENOMEM, "cannot grow the chunk metadata");
        cap = b->cap;
        if (sage_grow((void **)&b->heading, &cap, b->n + 1, sizeof(*b->heading)) < 0)
            return sage_err_set(err, SAGE_ENOMEM, "cannot grow the chunk metadata");
        b->cap = cap;
    }
    int64_t id = SAGE_CHUNKMETA_NONE;
    if (heading && heading[0] && (id = heading_id(b, heading, err)) < 0)
        return err ? -err->code : -SAGE_ENOMEM;
    b->page[b->n] = page;
    b->heading[b->n++] = (uint32_t)id;
    return 0;
}

int sage_chunkmeta_write(const struct sage_chunkmeta_builder *b, struct sage_writer *w,
                         struct sage_err *err)
{
    size_t cols = 8 * b->n, pad = (8 - (MHEAD + cols) % 8) % 8;
    size_t names = sage_rectab_builder_size(&b->names);
    uint8_t *buf = sage_calloc(1, MHEAD + cols + pad + names);
    if (!buf)
        return sage_err_set(err, SAGE_ENOMEM, "cannot encode the chunk metadata");
    sage_put64(buf, b->n);
    sage_put64(buf + 8, b->names.n);
    for (size_t i = 0; i < b->n; i++) {
        sage_put32(buf + MHEAD + 4 * i, b->page[i]);
        sage_put32(buf + MHEAD + 4 * (b->n + i), b->heading[i]);
    }
    sage_rectab_builder_encode(&b->names, buf + MHEAD + cols + pad);
    int rc = sage_writer_add(w, SAGE_SECTION_CHUNK_META, SAGE_CODEC_RAW, buf,
                             MHEAD + cols + pad + names, err);
    sage_free(buf);
    return rc;
}

int sage_chunkmeta_open(struct sage_chunkmeta *m, const struct sage_reader *r,
                        struct sage_err *err)
{
    const struct sage_section *s = sage_reader_find(r, SAGE_SECTION_CHUNK_META);
    memset(m, 0, sizeof(*m));
    if (!s)
        return sage_err_set(err, SAGE_ENOTFOUND, "index has no chunk metadata");
    if (s->codec != SAGE_CODEC_RAW || s->len < MHEAD)
        return sage_err_set(err, SAGE_ECORRUPT, "chunk metadata section is malformed");
    uint64_t n = sage_le64(s->data), n_names = sage_le64(s->data + 8);
    if (n != sage_reader_info(r)->n_chunks || n > (s->len - MHEAD) / 8)
        return sage_err_set(err, SAGE_ECORRUPT, "chunk metadata does not describe %llu chunks",
                            (unsigned long long)sage_reader_info(r)->n_chunks);
    uint64_t cols = 8 * n, pad = (8 - (MHEAD + cols) % 8) % 8;
    if (s->len - MHEAD - cols < pad)
        return sage_err_set(err, SAGE_ECORRUPT, "chunk metadata section is truncated");
    int rc = sage_rectab_open(&m->names, s->data + MHEAD + cols + pad,
                              (size_t)(s->len - MHEAD - cols - pad), err);
    if (rc < 0)
        return rc;
    if (m->names.n != n_names)
        return sage_err_set(err, SAGE_ECORRUPT, "chunk metadata heading count disagrees");
    m->n = n;
    m->page = s->data + MHEAD;
    m->heading = s->data + MHEAD + 4 * n;
    return 0;
}

int sage_chunkmeta_get(const struct sage_chunkmeta *m, uint64_t i, uint32_t *page,
                       const char **heading, size_t *len, struct sage_err *err)
{
    if (i >= m->n)
        return sage_err_set(err, SAGE_ENOTFOUND, "no chunk %llu", (unsigned long long)i);
    uint32_t h = sage_le32(m->heading + 4 * i);
    *page = sage_le32(m->page + 4 * i);
    *heading = NULL;
    *len = 0;
    if (h == SAGE_CHUNKMETA_NONE)
        return 0;
    const uint8_t *p;
    int rc = sage_rectab_get(&m->names, h, &p, len, err);
    if (rc == 0)
        *heading = (const char *)p;
    return rc;
}
