/* Inverted index construction. Chunks are added in order; each term (an
 * open-addressing table keyed by XXH3 of its bytes) collects its postings as
 * varint (gap, tf) pairs in a growable buffer, the first gap being the chunk
 * id itself.
 *
 * Spilling keeps memory bounded. With a limit, once the postings buffers and
 * the vocabulary (terms, their bytes, the table) exceed it after a chunk, the
 * terms are sorted bytewise and appended as one sorted run to an anonymous
 * temporary file (O_TMPFILE, else mkstemp and an immediate unlink, so nothing
 * is left behind even after kill -9): per term its length and bytes, df, last
 * chunk, the postings' length and the postings as held in memory, then a 0
 * length. The table is then freed and starts afresh; only the chunk lengths
 * (4 bytes a chunk) stay. Chunks arrive in increasing id, so a term's postings
 * in run r all precede those in run r + 1: concatenating its parts, each
 * later part's first gap rebased on the previous part's last chunk, gives
 * exactly the list an all-in-memory build holds.
 *
 * Writing, when there are runs, spills what is left as a last run and merges
 * the runs term by term through a binary heap on (term, run), holding one
 * read buffer per run (half the limit between them, or 4 KiB each past
 * limit / 8 KiB runs) and one term's postings at a time; without runs the
 * table in memory is the one source. Each term's list is re-encoded into
 * 128-entry blocks with a skip table holding, per block, the last chunk id,
 * the largest tf and the smallest chunk length (from which a query derives a
 * BM25 upper bound for any k1 and b) and streamed into POSTINGS. With runs,
 * the lexicon's blocks go to the end of the temporary file and are copied
 * into LEXICON at the end, so the vocabulary is not held in memory either.
 * The index is the same, byte for byte, for any limit (tests/unit/
 * test_ixbuild.c). */
#include "ixbuild.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "alloc.h"
#include "tmpfile.h"
#include "le.h"
#include "varint.h"

#define TERM_BYTES (SAGE_TERM_MAX * 4)  /* the longest term the tokenizer makes, in bytes */
#define INIT_SLOTS 1024
#define ALLOC_OVERHEAD 16               /* what malloc adds to a postings buffer, about */
#define WBUF_SIZE (256u << 10)          /* write buffer of the temporary file */
#define RBUF_MIN (4u << 10)             /* read buffer of a run while merging, at least */
#define RBUF_MAX (1u << 20)             /* and at most */
#define NONE UINT32_MAX

struct term {
    uint64_t str_off;       /* into arena */
    uint32_t len;
    uint32_t df;
    uint32_t last_chunk;    /* last chunk posted, NONE: none */
    uint32_t cur_tf;        /* occurrences in the chunk being added */
    uint32_t seen_in;       /* chunk id + 1 that cur_tf counts for */
    uint8_t *post;          /* varint gap, varint tf */
    size_t post_len, post_cap;
};

struct run {
    uint64_t off, end;      /* its bytes in the temporary file */
};

struct sage_ixbuild {
    struct sage_tokenizer *tk;
    struct term *terms;
    size_t n_terms, cap_terms;
    uint32_t *slots;        /* term index + 1; 0 empty */
    size_t n_slots;         /* power of two */
    char *arena;
    size_t arena_len, arena_cap;
    size_t post_mem;        /* capacity of the postings buffers, plus ALLOC_OVERHEAD each */
    uint32_t *norms;
    size_t n_chunks, cap_norms;
    uint64_t total_tokens;
    uint32_t *touched;      /* terms seen in the current chunk */
    size_t n_touched, cap_touched;
    size_t limit;           /* memory limit; 0: none */
    char *tmp_dir;
    struct sage_ixbuild_io io;
    int fd;                 /* the temporary file; -1 without a limit */
    uint64_t fd_len;        /* bytes of runs in it */
    struct run *runs;
    size_t n_runs, cap_runs;
    int broken;             /* negated code of a failure that left the state unusable */
};

static ssize_t sys_pwrite(int fd, const void *p, size_t n, off_t o) { return pwrite(fd, p, n, o); }
static ssize_t sys_pread(int fd, void *p, size_t n, off_t o) { return pread(fd, p, n, o); }
static const struct sage_ixbuild_io sys_io = { sys_pwrite, sys_pread };

/* ---- the temporary file ---- */

static int open_tmp(struct sage_ixbuild *b, struct sage_err *err)
{
    int fd = sage_tmpfile_open(b->tmp_dir, err);
    if (fd < 0)
        return fd;
    b->fd = fd;
    return 0;
}

static int tmp_error(const struct sage_ixbuild *b, const char *verb, struct sage_err *err)
{
    return sage_err_sys(err, SAGE_EIO, "cannot %s the index builder's temporary file in '%s'",
                        verb, b->tmp_dir);
}

static int damaged(const struct sage_ixbuild *b, struct sage_err *err)
{
    return sage_err_set(err, SAGE_EIO, "the index builder's temporary file in '%s' is damaged",
                        b->tmp_dir);
}

static int pwrite_all(const struct sage_ixbuild *b, const uint8_t *p, size_t n, uint64_t off,
                      struct sage_err *err)
{
    while (n > 0) {
        ssize_t k = b->io.pwrite(b->fd, p, n, (off_t)off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            if (k == 0)
                errno = ENOSPC;
            return tmp_error(b, "write", err);
        }
        p += k;
        n -= (size_t)k;
        off += (uint64_t)k;
    }
    return 0;
}

static int pread_all(const struct sage_ixbuild *b, uint8_t *p, size_t n, uint64_t off,
                     struct sage_err *err)
{
    while (n > 0) {
        ssize_t k = b->io.pread(b->fd, p, n, (off_t)off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return tmp_error(b, "read", err);
        if (k == 0)
            return damaged(b, err);
        p += k;
        n -= (size_t)k;
        off += (uint64_t)k;
    }
    return 0;
}

/* ---- growable bytes, and a sink that sends them to the file ---- */

struct bytes {
    uint8_t *p;
    size_t len, cap;
};

static int bput(struct bytes *o, const void *p, size_t n)
{
    if (n == 0)
        return 0;   /* p may be NULL then (an empty index), which memcpy forbids */
    if (sage_grow((void **)&o->p, &o->cap, o->len + n, 1) < 0)
        return -1;
    memcpy(o->p + o->len, p, n);
    o->len += n;
    return 0;
}

static int bvarint(struct bytes *o, uint64_t v)
{
    uint8_t tmp[10];
    return bput(o, tmp, sage_varint_put(tmp, v));
}

/* Output to the temporary file at off, buffered, when fd >= 0; otherwise
 * all of it kept in buf. */
struct sink {
    const struct sage_ixbuild *b;
    int fd;
    uint64_t off;           /* file offset of buf.p[0] */
    struct bytes buf;
};

static int sink_flush(struct sink *s, struct sage_err *err)
{
    if (s->fd < 0)
        return 0;
    int rc = pwrite_all(s->b, s->buf.p, s->buf.len, s->off, err);
    s->off += s->buf.len;
    s->buf.len = 0;
    return rc;
}

static int sink_put(struct sink *s, const void *p, size_t n, struct sage_err *err)
{
    if (s->fd >= 0 && s->buf.len + n > WBUF_SIZE) {
        if (sink_flush(s, err) < 0)
            return -SAGE_EIO;
        if (n >= WBUF_SIZE) {
            int rc = pwrite_all(s->b, p, n, s->off, err);
            s->off += n;
            return rc;
        }
    }
    if (bput(&s->buf, p, n) < 0)
        return sage_err_set(err, SAGE_ENOMEM, "cannot grow the index builder's output");
    return 0;
}

static int sink_varint(struct sink *s, uint64_t v, struct sage_err *err)
{
    uint8_t tmp[10];
    return sink_put(s, tmp, sage_varint_put(tmp, v), err);
}

/* ---- adding chunks ---- */

int sage_ixbuild_new(const struct sage_tokenizer_opts *tok, const struct sage_ixbuild_opts *opts,
                     struct sage_ixbuild **out, struct sage_err *err)
{
    struct sage_ixbuild *b = sage_calloc(1, sizeof(*b));
    int rc = 0;
    *out = NULL;
    if (!b)
        return sage_err_set(err, SAGE_ENOMEM, "cannot allocate index builder");
    b->fd = -1;
    b->io = opts && opts->io ? *opts->io : sys_io;
    b->limit = opts ? opts->memory_limit : 0;
    if (b->limit && !(opts->tmp_dir && *opts->tmp_dir)) {
        rc = sage_err_set(err, SAGE_EINVAL, "a memory limit needs a temporary directory");
        goto out;
    }
    if ((rc = sage_tokenizer_new(tok, &b->tk, err)) < 0)
        goto out;
    b->n_slots = INIT_SLOTS;
    b->slots = sage_calloc(b->n_slots, sizeof(*b->slots));
    if (!b->slots || (b->limit && !(b->tmp_dir = sage_strdup(opts->tmp_dir)))) {
        rc = sage_err_set(err, SAGE_ENOMEM, "cannot allocate index builder");
        goto out;
    }
    if (b->limit)
        rc = open_tmp(b, err);
out:
    if (rc < 0)
        sage_ixbuild_free(b);
    else
        *out = b;
    return rc;
}

/* Frees the terms and their postings, leaving the table empty (slots kept). */
static void clear_terms(struct sage_ixbuild *b)
{
    for (size_t i = 0; i < b->n_terms; i++)
        sage_free(b->terms[i].post);
    sage_free(b->terms);
    sage_free(b->arena);
    b->terms = NULL;
    b->arena = NULL;
    b->n_terms = b->cap_terms = b->arena_len = b->arena_cap = b->post_mem = 0;
}

void sage_ixbuild_free(struct sage_ixbuild *b)
{
    if (!b)
        return;
    clear_terms(b);
    sage_free(b->slots);
    sage_free(b->norms);
    sage_free(b->touched);
    sage_free(b->runs);
    sage_free(b->tmp_dir);
    if (b->fd >= 0)
        close(b->fd);
    sage_tokenizer_free(b->tk);
    sage_free(b);
}

uint32_t sage_ixbuild_n_chunks(const struct sage_ixbuild *b)
{
    return (uint32_t)b->n_chunks;
}

static int rehash(struct sage_ixbuild *b)
{
    size_t n = b->n_slots * 2;
    uint32_t *s = sage_calloc(n, sizeof(*s));
    if (!s)
        return -1;
    for (size_t i = 0; i < b->n_terms; i++) {
        const struct term *t = &b->terms[i];
        size_t h = (size_t)XXH3_64bits(b->arena + t->str_off, t->len) & (n - 1);
        while (s[h])
            h = (h + 1) & (n - 1);
        s[h] = (uint32_t)i + 1;
    }
    sage_free(b->slots);
    b->slots = s;
    b->n_slots = n;
    return 0;
}

/* The term's index, inserting it when new; -1 when out of memory. */
static long intern(struct sage_ixbuild *b, const char *s, size_t len)
{
    size_t mask = b->n_slots - 1, h = (size_t)XXH3_64bits(s, len) & mask;
    while (b->slots[h]) {
        const struct term *t = &b->terms[b->slots[h] - 1];
        if (t->len == len && memcmp(b->arena + t->str_off, s, len) == 0)
            return (long)b->slots[h] - 1;
        h = (h + 1) & mask;
    }
    if (b->n_terms >= UINT32_MAX - 1 ||
        sage_grow((void **)&b->terms, &b->cap_terms, b->n_terms + 1, sizeof(*b->terms)) < 0 ||
        sage_grow((void **)&b->arena, &b->arena_cap, b->arena_len + len, 1) < 0)
        return -1;
    struct term *t = &b->terms[b->n_terms];
    memset(t, 0, sizeof(*t));
    t->str_off = b->arena_len;
    t->len = (uint32_t)len;
    t->last_chunk = NONE;
    memcpy(b->arena + b->arena_len, s, len);
    b->arena_len += len;
    b->slots[h] = (uint32_t)++b->n_terms;
    if (b->n_terms * 2 > b->n_slots && rehash(b) < 0)
        return -1;
    return (long)b->n_terms - 1;
}

struct add_ctx {
    struct sage_ixbuild *b;
    uint32_t chunk;
    uint32_t tokens;
};

static int on_token(void *ctx, const struct sage_token *tok)
{
    struct add_ctx *a = ctx;
    struct sage_ixbuild *b = a->b;
    long i = intern(b, tok->term, tok->term_len);
    if (i < 0)
        return -1;
    struct term *t = &b->terms[i];
    a->tokens++;
    if (t->seen_in != a->chunk + 1) {
        if (sage_grow((void **)&b->touched, &b->cap_touched, b->n_touched + 1, sizeof(*b->touched)) < 0)
            return -1;
        b->touched[b->n_touched++] = (uint32_t)i;
        t->seen_in = a->chunk + 1;
        t->cur_tf = 0;
    }
    t->cur_tf++;
    return 0;
}

static int cmp_bytes(const void *a, size_t a_len, const void *b, size_t b_len)
{
    int c = memcmp(a, b, a_len < b_len ? a_len : b_len);
    return c ? c : (a_len > b_len) - (a_len < b_len);
}

static int cmp_terms(const void *x, const void *y, void *ctx)
{
    const struct sage_ixbuild *ix = ctx;
    const struct term *a = &ix->terms[*(const uint32_t *)x];
    const struct term *b = &ix->terms[*(const uint32_t *)y];
    return cmp_bytes(ix->arena + a->str_off, a->len, ix->arena + b->str_off, b->len);
}

/* The terms' indexes in bytewise order (sage_free), or NULL. */
static uint32_t *sorted_terms(const struct sage_ixbuild *b)
{
    uint32_t *order = sage_calloc(b->n_terms ? b->n_terms : 1, sizeof(*order));
    if (!order)
        return NULL;
    for (size_t i = 0; i < b->n_terms; i++)
        order[i] = (uint32_t)i;
    qsort_r(order, b->n_terms, sizeof(*order), cmp_terms, (void *)b);
    return order;
}

/* Bytes held for postings and vocabulary, as the limit counts them. */
static size_t mem_used(const struct sage_ixbuild *b)
{
    return b->post_mem + b->cap_terms * sizeof(*b->terms) + b->arena_cap +
           b->n_slots * sizeof(*b->slots) + b->cap_touched * sizeof(*b->touched);
}

/* Appends the terms to the temporary file as one sorted run and empties the
 * table. */
static int spill(struct sage_ixbuild *b, struct sage_err *err)
{
    struct sink s = { b, b->fd, b->fd_len, { 0 } };
    uint32_t *order = sorted_terms(b);
    uint32_t *slots = sage_calloc(INIT_SLOTS, sizeof(*slots));
    int rc = 0;
    if (!order || !slots ||
        sage_grow((void **)&b->runs, &b->cap_runs, b->n_runs + 1, sizeof(*b->runs)) < 0) {
        rc = sage_err_set(err, SAGE_ENOMEM, "cannot spill the index builder's postings");
        goto out;
    }
    for (size_t i = 0; i < b->n_terms && rc == 0; i++) {
        const struct term *t = &b->terms[order[i]];
        if ((rc = sink_varint(&s, t->len, err)) == 0 &&
            (rc = sink_put(&s, b->arena + t->str_off, t->len, err)) == 0 &&
            (rc = sink_varint(&s, t->df, err)) == 0 &&
            (rc = sink_varint(&s, t->last_chunk, err)) == 0 &&
            (rc = sink_varint(&s, t->post_len, err)) == 0)
            rc = sink_put(&s, t->post, t->post_len, err);
    }
    if (rc < 0 || (rc = sink_varint(&s, 0, err)) < 0 || (rc = sink_flush(&s, err)) < 0)
        goto out;
    b->runs[b->n_runs++] = (struct run){ b->fd_len, s.off };
    b->fd_len = s.off;
    clear_terms(b);
    sage_free(b->slots);
    b->slots = slots;
    b->n_slots = INIT_SLOTS;
    slots = NULL;
out:
    sage_free(order);
    sage_free(slots);
    sage_free(s.buf.p);
    return rc;
}

int sage_ixbuild_add(struct sage_ixbuild *b, const char *text, size_t len, uint32_t *n_tokens,
                     struct sage_err *err)
{
    int rc = 0;
    if (b->broken)
        return sage_err_set(err, -b->broken, "the index builder failed earlier");
    if (b->n_chunks >= UINT32_MAX - 2)
        return sage_err_set(err, SAGE_ELIMIT, "more than %u chunks", UINT32_MAX - 2);
    if (sage_grow((void **)&b->norms, &b->cap_norms, b->n_chunks + 1, sizeof(*b->norms)) < 0)
        return sage_err_set(err, SAGE_ENOMEM, "cannot grow chunk lengths");
    struct add_ctx a = { b, (uint32_t)b->n_chunks, 0 };
    b->n_touched = 0;
    if (sage_tokenize(b->tk, text, len, on_token, &a) != 0) {
        rc = sage_err_set(err, SAGE_ENOMEM, "cannot index chunk %u", a.chunk);
        goto out;
    }
    for (size_t k = 0; k < b->n_touched; k++) {
        struct term *t = &b->terms[b->touched[k]];
        uint8_t tmp[20];
        uint32_t gap = t->last_chunk == NONE ? a.chunk : a.chunk - t->last_chunk - 1;
        size_t n = sage_varint_put(tmp, gap), cap = t->post_cap;
        n += sage_varint_put(tmp + n, t->cur_tf);
        if (sage_grow((void **)&t->post, &t->post_cap, t->post_len + n, 1) < 0) {
            rc = sage_err_set(err, SAGE_ENOMEM, "cannot grow postings");
            goto out;
        }
        b->post_mem += t->post_cap - cap + (cap ? 0 : ALLOC_OVERHEAD);
        memcpy(t->post + t->post_len, tmp, n);
        t->post_len += n;
        t->last_chunk = a.chunk;
        t->df++;
    }
    b->norms[b->n_chunks++] = a.tokens;
    b->total_tokens += a.tokens;
    if (n_tokens)
        *n_tokens = a.tokens;
    if (b->limit && b->n_terms && mem_used(b) > b->limit)
        rc = spill(b, err);
out:
    if (rc < 0)
        b->broken = rc;
    return rc;
}

/* ---- writing ---- */

/* Re-encodes one term's postings (df varint (gap, tf) pairs) into blocks:
 * u32 n_blocks, 16-byte skip entries (last chunk, data offset, max tf, min
 * length), then the blocks (u8 gap bits, u8 tf bits, packed gaps, packed
 * tf - 1). The pairs may come from the temporary file, so they are checked. */
static int encode_postings(const struct sage_ixbuild *b, const uint8_t *p, size_t len,
                           uint32_t df, struct bytes *o, struct sage_err *err)
{
    uint32_t n_blocks = (df + SAGE_POSTINGS_BLOCK - 1) / SAGE_POSTINGS_BLOCK;
    uint32_t gaps[SAGE_POSTINGS_BLOCK], tfm1[SAGE_POSTINGS_BLOCK];
    uint8_t head[4];
    struct bytes data = { 0 };
    const uint8_t *end = p + len;
    uint64_t chunk = NONE;      /* previous posting, as gap base */
    int rc = 0;
    o->len = 0;
    sage_put32(head, n_blocks);
    if (bput(o, head, 4) < 0 || sage_grow((void **)&o->p, &o->cap, 4 + 16 * (size_t)n_blocks, 1) < 0)
        goto nomem;
    o->len = 4 + 16 * (size_t)n_blocks;
    for (uint32_t blk = 0, left = df; blk < n_blocks; blk++) {
        uint32_t n = left < SAGE_POSTINGS_BLOCK ? left : SAGE_POSTINGS_BLOCK;
        uint32_t max_gap = 0, max_tfm1 = 0, max_tf = 0, min_len = UINT32_MAX;
        for (uint32_t i = 0; i < n; i++) {
            uint64_t gap, tf;
            if (sage_varint_get(&p, end, &gap) < 0 || sage_varint_get(&p, end, &tf) < 0 ||
                gap > UINT32_MAX ||
                (chunk = chunk == NONE ? gap : chunk + 1 + gap) >= b->n_chunks || tf == 0 ||
                tf > UINT32_MAX) {
                rc = damaged(b, err);
                goto out;
            }
            gaps[i] = (uint32_t)gap;     /* relative to the previous posting, as stored */
            tfm1[i] = (uint32_t)tf - 1;
            max_gap = gaps[i] > max_gap ? gaps[i] : max_gap;
            max_tfm1 = tfm1[i] > max_tfm1 ? tfm1[i] : max_tfm1;
            max_tf = (uint32_t)tf > max_tf ? (uint32_t)tf : max_tf;
            min_len = b->norms[chunk] < min_len ? b->norms[chunk] : min_len;
        }
        unsigned gb = sage_bits_for(max_gap), tb = sage_bits_for(max_tfm1);
        size_t glen = sage_bitpack_len(n, gb), tlen = sage_bitpack_len(n, tb);
        uint8_t *skip = o->p + 4 + 16 * (size_t)blk;
        sage_put32(skip, (uint32_t)chunk);
        sage_put32(skip + 4, (uint32_t)data.len);
        sage_put32(skip + 8, max_tf);
        sage_put32(skip + 12, min_len);
        uint8_t bits[2] = { (uint8_t)gb, (uint8_t)tb };
        if (bput(&data, bits, 2) < 0 || sage_grow((void **)&data.p, &data.cap, data.len + glen + tlen, 1) < 0)
            goto nomem;
        sage_bitpack(gaps, n, gb, data.p + data.len);
        sage_bitpack(tfm1, n, tb, data.p + data.len + glen);
        data.len += glen + tlen;
        left -= n;
    }
    if (p != end)
        rc = damaged(b, err);
    else if (data.len > UINT32_MAX)
        rc = sage_err_set(err, SAGE_ELIMIT, "a postings list exceeds 4 GiB");
    else if (bput(o, data.p, data.len) < 0)
        goto nomem;
    goto out;
nomem:
    rc = sage_err_set(err, SAGE_ENOMEM, "cannot encode postings");
out:
    sage_free(data.p);
    return rc;
}

/* One input of the merge, a run or the table in memory, positioned on a term.
 * Its postings are read as a stream: p[pos, len), then, for a run, the file
 * from off to end through buf. */
struct src {
    const char *key;
    uint32_t key_len, df, last;
    uint64_t post_len;
    const uint8_t *p;
    size_t pos, len;
    uint64_t off, end;
    uint8_t *buf;           /* NULL: the table */
    size_t buf_cap;
    size_t next;            /* the table: next term in the sorted order */
    char key_buf[TERM_BYTES];
};

struct merge {
    const struct sage_ixbuild *b;
    struct src *src;        /* the runs in spill order, then the table */
    size_t n_src;
    const uint32_t *order;  /* the table's terms, sorted */
    size_t *heap;           /* source indexes, least (term, index) first */
    size_t n_heap;
};

static int src_read(const struct merge *m, struct src *s, void *dst, size_t n,
                    struct bytes *acc, struct sage_err *err)
{
    while (n > 0) {
        if (s->pos == s->len) {
            size_t k = s->end - s->off < s->buf_cap ? (size_t)(s->end - s->off) : s->buf_cap;
            if (!s->buf || k == 0)
                return damaged(m->b, err);
            int rc = pread_all(m->b, s->buf, k, s->off, err);
            if (rc < 0)
                return rc;
            s->p = s->buf;
            s->pos = 0;
            s->len = k;
            s->off += k;
        }
        size_t k = s->len - s->pos < n ? s->len - s->pos : n;
        if (acc && bput(acc, s->p + s->pos, k) < 0)
            return sage_err_set(err, SAGE_ENOMEM, "cannot merge postings");
        if (dst) {
            memcpy(dst, s->p + s->pos, k);
            dst = (uint8_t *)dst + k;
        }
        s->pos += k;
        n -= k;
    }
    return 0;
}

/* Reads a varint; *n_read (may be NULL) gets its length. */
static int src_varint(const struct merge *m, struct src *s, uint64_t *v, size_t *n_read,
                      struct sage_err *err)
{
    uint64_t x = 0;
    for (unsigned i = 0; i < 10; i++) {
        uint8_t c;
        int rc = src_read(m, s, &c, 1, NULL, err);
        if (rc < 0)
            return rc;
        x |= (uint64_t)(c & 0x7f) << (7 * i);
        if (!(c & 0x80)) {
            *v = x;
            if (n_read)
                *n_read = i + 1;
            return 0;
        }
    }
    return damaged(m->b, err);
}

/* Moves source s to its next term: 1, or 0 when it has none left. */
static int src_next(const struct merge *m, struct src *s, struct sage_err *err)
{
    const struct sage_ixbuild *b = m->b;
    uint64_t klen, df, last;
    int rc;
    if (!s->buf) {
        if (s->next == b->n_terms)
            return 0;
        const struct term *t = &b->terms[m->order[s->next++]];
        s->key = b->arena + t->str_off;
        s->key_len = t->len;
        s->df = t->df;
        s->last = t->last_chunk;
        s->post_len = t->post_len;
        s->p = t->post;
        s->pos = 0;
        s->len = t->post_len;
        return 1;
    }
    if ((rc = src_varint(m, s, &klen, NULL, err)) < 0)
        return rc;
    if (klen == 0)
        return 0;
    if (klen > TERM_BYTES)
        return damaged(b, err);
    if ((rc = src_read(m, s, s->key_buf, (size_t)klen, NULL, err)) < 0 ||
        (rc = src_varint(m, s, &df, NULL, err)) < 0 ||
        (rc = src_varint(m, s, &last, NULL, err)) < 0 ||
        (rc = src_varint(m, s, &s->post_len, NULL, err)) < 0)
        return rc;
    /* a posting takes 2 to 10 bytes: this bounds what the length allocates */
    if (df == 0 || df > b->n_chunks || last >= b->n_chunks || s->post_len < 2 * df ||
        s->post_len > 10 * df)
        return damaged(b, err);
    s->key = s->key_buf;
    s->key_len = (uint32_t)klen;
    s->df = (uint32_t)df;
    s->last = (uint32_t)last;
    return 1;
}

/* Appends the postings of s's term to acc, its first gap rebased on *last
 * (NONE: the term's first part), and moves *last to s's last chunk. */
static int src_take(const struct merge *m, struct src *s, struct bytes *acc, uint32_t *last,
                    struct sage_err *err)
{
    uint64_t first;
    size_t n;
    int rc = src_varint(m, s, &first, &n, err);
    if (rc < 0)
        return rc;
    if (n > s->post_len || (*last != NONE && first <= *last))
        return damaged(m->b, err);
    if (bvarint(acc, *last == NONE ? first : first - *last - 1) < 0)
        return sage_err_set(err, SAGE_ENOMEM, "cannot merge postings");
    if ((rc = src_read(m, s, NULL, s->post_len - n, acc, err)) < 0)
        return rc;
    *last = s->last;
    return 0;
}

static int heap_less(const struct merge *m, size_t i, size_t j)
{
    const struct src *a = &m->src[m->heap[i]], *b = &m->src[m->heap[j]];
    int c = cmp_bytes(a->key, a->key_len, b->key, b->key_len);
    return c < 0 || (c == 0 && m->heap[i] < m->heap[j]);
}

static void heap_swap(struct merge *m, size_t i, size_t j)
{
    size_t t = m->heap[i];
    m->heap[i] = m->heap[j];
    m->heap[j] = t;
}

static void heap_push(struct merge *m, size_t src)
{
    size_t i = m->n_heap++;
    m->heap[i] = src;
    for (; i > 0 && heap_less(m, i, (i - 1) / 2); i = (i - 1) / 2)
        heap_swap(m, i, (i - 1) / 2);
}

static size_t heap_pop(struct merge *m)
{
    size_t top = m->heap[0], i = 0;
    m->heap[0] = m->heap[--m->n_heap];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, least = i;
        if (l < m->n_heap && heap_less(m, l, least))
            least = l;
        if (r < m->n_heap && heap_less(m, r, least))
            least = r;
        if (least == i)
            return top;
        heap_swap(m, i, least);
        i = least;
    }
}

/* Sets up the sources, each on its first term, in the heap. */
static int merge_init(struct merge *m, const struct sage_ixbuild *b, const uint32_t *order,
                      struct sage_err *err)
{
    size_t rbuf = b->n_runs ? b->limit / 2 / b->n_runs : 0;
    rbuf = rbuf < RBUF_MIN ? RBUF_MIN : rbuf > RBUF_MAX ? RBUF_MAX : rbuf;
    m->b = b;
    m->order = order;
    m->n_src = b->n_runs + 1;
    m->src = sage_calloc(m->n_src, sizeof(*m->src));
    m->heap = sage_calloc(m->n_src, sizeof(*m->heap));
    if (!m->src || !m->heap)
        return sage_err_set(err, SAGE_ENOMEM, "cannot allocate the merge");
    for (size_t i = 0; i < b->n_runs; i++) {
        struct src *s = &m->src[i];
        s->off = b->runs[i].off;
        s->end = b->runs[i].end;
        s->buf_cap = rbuf;
        if (!(s->buf = sage_malloc(rbuf)))
            return sage_err_set(err, SAGE_ENOMEM, "cannot allocate the merge");
    }
    for (size_t i = 0; i < m->n_src; i++) {
        int rc = src_next(m, &m->src[i], err);
        if (rc < 0)
            return rc;
        if (rc > 0)
            heap_push(m, i);
    }
    return 0;
}

static void merge_release(struct merge *m)
{
    for (size_t i = 0; m->src && i < m->n_src; i++)
        sage_free(m->src[i].buf);
    sage_free(m->src);
    sage_free(m->heap);
}

/* Pops every source on the least term, gathering its postings into acc and
 * moving each on; the term goes to key and key_len, its df to *df. */
static int merge_term(struct merge *m, char *key, uint32_t *key_len, uint32_t *df,
                      struct bytes *acc, struct sage_err *err)
{
    const struct src *top = &m->src[m->heap[0]];
    uint32_t last = NONE;
    uint64_t sum = 0;
    memcpy(key, top->key, top->key_len);
    *key_len = top->key_len;
    acc->len = 0;
    while (m->n_heap && cmp_bytes(top->key, top->key_len, key, *key_len) == 0) {
        size_t i = heap_pop(m);
        struct src *s = &m->src[i];
        int rc = src_take(m, s, acc, &last, err);
        sum += s->df;
        if (rc == 0)
            rc = src_next(m, s, err);
        if (rc < 0)
            return rc;
        if (rc > 0)
            heap_push(m, i);
        top = &m->src[m->heap[0]];
    }
    if (sum > m->b->n_chunks)
        return damaged(m->b, err);
    *df = (uint32_t)sum;
    return 0;
}

/* Copies the sink's bytes into the open section: from memory, or back from
 * the temporary file where they start at off. */
static int sink_copy(struct sink *s, uint64_t off, uint64_t len, struct sage_writer *w,
                     struct sage_err *err)
{
    int rc;
    if (s->fd < 0)
        return sage_writer_write(w, s->buf.p, s->buf.len, err);
    if ((rc = sink_flush(s, err)) < 0)
        return rc;
    if (sage_grow((void **)&s->buf.p, &s->buf.cap, WBUF_SIZE, 1) < 0)
        return sage_err_set(err, SAGE_ENOMEM, "cannot copy the lexicon");
    while (len > 0 && rc == 0) {
        size_t n = len < WBUF_SIZE ? (size_t)len : WBUF_SIZE;
        if ((rc = pread_all(s->b, s->buf.p, n, off, err)) == 0)
            rc = sage_writer_write(w, s->buf.p, n, err);
        off += n;
        len -= n;
    }
    return rc;
}

int sage_ixbuild_write(struct sage_ixbuild *b, struct sage_writer *w, struct sage_err *err)
{
    int rc = 0;
    uint32_t *order = NULL;
    struct merge m = { 0 };
    struct bytes acc = { 0 }, post = { 0 }, offs = { 0 };
    struct sink lex = { b, -1, 0, { 0 } };
    if (b->broken)
        return sage_err_set(err, -b->broken, "the index builder failed earlier");
    /* with runs, the rest becomes one too: the merge then holds read buffers
     * rather than the table, and stays under the limit */
    if (b->n_runs && b->n_terms && (rc = spill(b, err)) < 0)
        goto out;
    /* the lexicon's blocks: to the temporary file after the runs when there are any */
    lex.fd = b->n_runs ? b->fd : -1;
    lex.off = b->fd_len;
    if (!(order = sorted_terms(b))) {
        rc = sage_err_set(err, SAGE_ENOMEM, "cannot allocate index writer");
        goto out;
    }
    if ((rc = sage_writer_begin(w, SAGE_SECTION_NORMS, SAGE_CODEC_RAW, err)) < 0)
        goto out;
    for (size_t i = 0; i < b->n_chunks && rc == 0;) {
        uint8_t le[4096];
        size_t n = 0;
        for (; i < b->n_chunks && n < sizeof(le); i++, n += 4)
            sage_put32(le + n, b->norms[i]);
        rc = sage_writer_write(w, le, n, err);
    }
    if (rc < 0 || (rc = sage_writer_end(w, err)) < 0)
        goto out;
    if ((rc = merge_init(&m, b, order, err)) < 0 ||
        (rc = sage_writer_begin(w, SAGE_SECTION_POSTINGS, SAGE_CODEC_RAW, err)) < 0)
        goto out;
    uint64_t post_off = 0, lex_len = 0, n_terms = 0;
    char key[TERM_BYTES], prev[TERM_BYTES];
    uint32_t key_len = 0, prev_len = 0, df = 0;
    for (; m.n_heap; n_terms++) {
        if ((rc = merge_term(&m, key, &key_len, &df, &acc, err)) < 0 ||
            (rc = encode_postings(b, acc.p, acc.len, df, &post, err)) < 0 ||
            (rc = sage_writer_write(w, post.p, post.len, err)) < 0)
            goto out;
        if (n_terms % SAGE_LEXICON_BLOCK == 0) {
            uint8_t o8[8];
            sage_put64(o8, lex_len);
            if (bput(&offs, o8, 8) < 0) {
                rc = sage_err_set(err, SAGE_ENOMEM, "cannot build the lexicon");
                goto out;
            }
            prev_len = 0;
        }
        uint32_t pre = 0;
        while (pre < prev_len && pre < key_len && prev[pre] == key[pre])
            pre++;
        uint64_t start = lex.off + lex.buf.len;
        if ((rc = sink_varint(&lex, pre, err)) < 0 ||
            (rc = sink_varint(&lex, key_len - pre, err)) < 0 ||
            (rc = sink_put(&lex, key + pre, key_len - pre, err)) < 0 ||
            (rc = sink_varint(&lex, df, err)) < 0 ||
            (rc = sink_varint(&lex, post_off, err)) < 0 ||
            (rc = sink_varint(&lex, post.len, err)) < 0)
            goto out;
        lex_len += lex.off + lex.buf.len - start;
        post_off += post.len;
        memcpy(prev, key, key_len);
        prev_len = key_len;
    }
    if ((rc = sage_writer_end(w, err)) < 0)
        goto out;

    uint8_t head[48] = { 0 }, o8[8];
    sage_put64(head, n_terms);
    sage_put64(head + 8, b->n_chunks);
    sage_put64(head + 16, b->total_tokens);
    sage_put32(head + 24, SAGE_LEXICON_BLOCK);
    sage_put64(head + 32, offs.len / 8);
    sage_put64(o8, lex_len);
    if ((rc = sage_writer_begin(w, SAGE_SECTION_LEXICON, SAGE_CODEC_RAW, err)) < 0 ||
        (rc = sage_writer_write(w, head, sizeof(head), err)) < 0 ||
        (rc = sage_writer_write(w, offs.p, offs.len, err)) < 0 ||
        (rc = sage_writer_write(w, o8, 8, err)) < 0 ||
        (rc = sink_copy(&lex, b->fd_len, lex_len, w, err)) < 0)
        goto out;
    rc = sage_writer_end(w, err);
out:
    if (rc < 0)
        b->broken = rc;
    merge_release(&m);
    sage_free(order);
    sage_free(acc.p);
    sage_free(post.p);
    sage_free(offs.p);
    sage_free(lex.buf.p);
    return rc;
}
