/* Chunking by boundaries; see chunk.h. */
#include "chunk.h"

#include <string.h>

#include "alloc.h"

static int is_ws(char c)
{
    return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

size_t chunk_split_point(const char *t, size_t len, size_t size)
{
    if (len <= size)
        return len;
    size_t lo = size / 2;
    for (size_t i = size; i > lo; i--)      /* paragraph */
        if (t[i - 1] == '\n' && i >= 2 && t[i - 2] == '\n')
            return i;
    for (size_t i = size; i > lo; i--)      /* sentence */
        if ((t[i - 1] == '.' || t[i - 1] == '?' || t[i - 1] == '!') && is_ws(t[i]))
            return i;
    for (size_t i = size; i > lo; i--)      /* word */
        if (is_ws(t[i - 1]))
            return i;
    size_t i = size;                         /* a long word: cut inside it */
    while (i > 1 && ((unsigned char)t[i] & 0xc0) == 0x80)
        i--;
    return i;
}

/* Moves i forward to the start of a word (after whitespace), staying below
 * end; inside one long word, only to the next UTF-8 character boundary. */
static size_t word_start(const char *t, size_t i, size_t end)
{
    size_t j = i;
    while (j < end && !is_ws(t[j]))
        j++;
    while (j < end && is_ws(t[j]))
        j++;
    if (j < end)
        return j;
    while (i < end && ((unsigned char)t[i] & 0xc0) == 0x80)
        i++;
    return i;
}

struct pending {
    char *buf;
    size_t len, cap;
    const char *heading;
    uint32_t page;
    uint8_t source;
    int open;
};

static int emit_text(const char *t, size_t len, const char *heading, uint32_t page,
                     uint8_t source, const struct chunk_opts *o, chunk_fn fn, void *ctx,
                     uint32_t *ordinal)
{
    size_t pos = 0, size = o->size < o->max ? o->size : o->max;
    while (pos < len) {
        while (pos < len && is_ws(t[pos]))
            pos++;
        if (pos >= len)
            break;
        size_t cut = chunk_split_point(t + pos, len - pos, size);
        size_t end = pos + cut;
        size_t e = end;
        while (e > pos && is_ws(t[e - 1]))
            e--;
        int rc = fn(ctx, t + pos, e - pos, heading, page, source, (*ordinal)++);
        if (rc)
            return rc;
        if (end >= len)
            break;
        size_t next = end > o->overlap ? end - o->overlap : 0;
        if (next <= pos)
            next = end;
        else if (next < end)
            next = word_start(t, next, end);
        pos = next;
    }
    return 0;
}

static int flush(struct pending *p, const struct chunk_opts *o, chunk_fn fn, void *ctx,
                 uint32_t *ordinal)
{
    int rc = 0;
    if (p->open && p->len)
        rc = emit_text(p->buf, p->len, p->heading, p->page, p->source, o, fn, ctx, ordinal);
    p->len = 0;
    p->open = 0;
    return rc;
}

static int same(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

int chunk_document(const struct extracted *x, const struct chunk_opts *o, chunk_fn fn, void *ctx)
{
    struct pending p = { 0 };
    uint32_t ordinal = 0;
    int rc = 0;
    for (size_t i = 0; i < x->n_blocks && rc == 0; i++) {
        const struct doc_block *b = &x->blocks[i];
        if (p.open && (!same(p.heading, b->heading) || p.page != b->page || p.source != b->source ||
                       p.len + 2 + b->text_len > o->size)) {
            if ((rc = flush(&p, o, fn, ctx, &ordinal)) != 0)
                break;
        }
        if (b->text_len >= o->size) {
            rc = emit_text(b->text, b->text_len, b->heading, b->page, b->source, o, fn, ctx,
                           &ordinal);
            continue;
        }
        size_t need = p.len + 2 + b->text_len + 1;
        if (need > p.cap) {
            char *nb = sage_realloc(p.buf, need * 2);
            if (!nb) {
                rc = -SAGE_ENOMEM;
                break;
            }
            p.buf = nb;
            p.cap = need * 2;
        }
        if (p.len) {
            memcpy(p.buf + p.len, "\n\n", 2);
            p.len += 2;
        }
        memcpy(p.buf + p.len, b->text, b->text_len);
        p.len += b->text_len;
        p.heading = b->heading;
        p.page = b->page;
        p.source = b->source;
        p.open = 1;
    }
    if (rc == 0)
        rc = flush(&p, o, fn, ctx, &ordinal);
    sage_free(p.buf);
    return rc;
}
