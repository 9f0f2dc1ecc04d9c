/* Inverted index construction: an open-addressing table of terms (XXH3 of
 * the bytes), each with its postings as varint (gap, tf) pairs in a growable
 * buffer; at write time terms are sorted bytewise and their postings
 * re-encoded into 128-entry blocks with a skip table holding, per block, the
 * last chunk id, the largest tf and the smallest chunk length, from which a
 * query derives a BM25 upper bound for any k1 and b. */
#include "ixbuild.h"

#include <string.h>
#include <xxhash.h>

#include "alloc.h"
#include "le.h"
#include "varint.h"

struct term {
    uint64_t str_off;       /* into arena */
    uint32_t len;
    uint32_t df;
    uint32_t last_chunk;    /* last chunk posted, UINT32_MAX: none */
    uint32_t cur_tf;        /* occurrences in the chunk being added */
    uint32_t seen_in;       /* chunk id + 1 that cur_tf counts for */
    uint8_t *post;          /* varint gap, varint tf */
    size_t post_len, post_cap;
};

struct sage_ixbuild {
    struct sage_tokenizer *tk;
    struct term *terms;
    size_t n_terms, cap_terms;
    uint32_t *slots;        /* term index + 1; 0 empty */
    size_t n_slots;         /* power of two */
    char *arena;
    size_t arena_len, arena_cap;
    uint32_t *norms;
    size_t n_chunks, cap_norms;
    uint64_t total_tokens;
    uint32_t *touched;      /* terms seen in the current chunk */
    size_t n_touched, cap_touched;
    int failed;             /* set when a tokenizer callback ran out of memory */
};

int sage_ixbuild_new(const struct sage_tokenizer_opts *tok, struct sage_ixbuild **out,
                     struct sage_err *err)
{
    struct sage_ixbuild *b = sage_calloc(1, sizeof(*b));
    *out = NULL;
    if (!b)
        return sage_err_set(err, SAGE_ENOMEM, "cannot allocate index builder");
    int rc = sage_tokenizer_new(tok, &b->tk, err);
    if (rc < 0) {
        sage_free(b);
        return rc;
    }
    b->n_slots = 1024;
    b->slots = sage_calloc(b->n_slots, sizeof(*b->slots));
    if (!b->slots) {
        sage_ixbuild_free(b);
        return sage_err_set(err, SAGE_ENOMEM, "cannot allocate index builder");
    }
    *out = b;
    return 0;
}

void sage_ixbuild_free(struct sage_ixbuild *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n_terms; i++)
        sage_free(b->terms[i].post);
    sage_free(b->terms);
    sage_free(b->slots);
    sage_free(b->arena);
    sage_free(b->norms);
    sage_free(b->touched);
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
    t->last_chunk = UINT32_MAX;
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

int sage_ixbuild_add(struct sage_ixbuild *b, const char *text, size_t len, uint32_t *n_tokens,
                     struct sage_err *err)
{
    if (b->n_chunks >= UINT32_MAX - 2)
        return sage_err_set(err, SAGE_ELIMIT, "more than %u chunks", UINT32_MAX - 2);
    if (sage_grow((void **)&b->norms, &b->cap_norms, b->n_chunks + 1, sizeof(*b->norms)) < 0)
        return sage_err_set(err, SAGE_ENOMEM, "cannot grow chunk lengths");
    struct add_ctx a = { b, (uint32_t)b->n_chunks, 0 };
    b->n_touched = 0;
    if (sage_tokenize(b->tk, text, len, on_token, &a) != 0)
        return sage_err_set(err, SAGE_ENOMEM, "cannot index chunk %u", a.chunk);
    for (size_t k = 0; k < b->n_touched; k++) {
        struct term *t = &b->terms[b->touched[k]];
        uint8_t tmp[20];
        uint32_t gap = t->last_chunk == UINT32_MAX ? a.chunk : a.chunk - t->last_chunk - 1;
        size_t n = sage_varint_put(tmp, gap);
        n += sage_varint_put(tmp + n, t->cur_tf);
        if (sage_grow((void **)&t->post, &t->post_cap, t->post_len + n, 1) < 0)
            return sage_err_set(err, SAGE_ENOMEM, "cannot grow postings");
        memcpy(t->post + t->post_len, tmp, n);
        t->post_len += n;
        t->last_chunk = a.chunk;
        t->df++;
    }
    b->norms[b->n_chunks++] = a.tokens;
    b->total_tokens += a.tokens;
    if (n_tokens)
        *n_tokens = a.tokens;
    return 0;
}

/* ---- writing ---- */

static int cmp_terms(const void *x, const void *y, void *ctx)
{
    const struct sage_ixbuild *ix = ctx;
    const struct term *a = &ix->terms[*(const uint32_t *)x];
    const struct term *b = &ix->terms[*(const uint32_t *)y];
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(ix->arena + a->str_off, ix->arena + b->str_off, n);
    return c ? c : (a->len > b->len) - (a->len < b->len);
}

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

/* Re-encodes one term's postings into blocks: u32 n_blocks, 16-byte skip
 * entries (last chunk, data offset, max tf, min length), then the blocks
 * (u8 gap bits, u8 tf bits, packed gaps, packed tf - 1). */
static int encode_postings(const struct sage_ixbuild *b, const struct term *t, struct bytes *o)
{
    uint32_t n_blocks = (t->df + SAGE_POSTINGS_BLOCK - 1) / SAGE_POSTINGS_BLOCK;
    uint32_t gaps[SAGE_POSTINGS_BLOCK], tfm1[SAGE_POSTINGS_BLOCK];
    uint8_t head[4];
    struct bytes data = { 0 };
    const uint8_t *p = t->post, *end = t->post + t->post_len;
    uint32_t chunk = UINT32_MAX;    /* previous posting, as gap base */
    int rc = -1;
    o->len = 0;
    sage_put32(head, n_blocks);
    if (bput(o, head, 4) < 0 || sage_grow((void **)&o->p, &o->cap, 4 + 16 * (size_t)n_blocks, 1) < 0)
        goto out;
    o->len = 4 + 16 * (size_t)n_blocks;
    for (uint32_t blk = 0, left = t->df; blk < n_blocks; blk++) {
        uint32_t n = left < SAGE_POSTINGS_BLOCK ? left : SAGE_POSTINGS_BLOCK;
        uint32_t max_gap = 0, max_tfm1 = 0, max_tf = 0, min_len = UINT32_MAX;
        for (uint32_t i = 0; i < n; i++) {
            uint64_t gap, tf;
            if (sage_varint_get(&p, end, &gap) < 0 || sage_varint_get(&p, end, &tf) < 0)
                SAGE_BUG("postings buffer ends early");
            chunk = chunk == UINT32_MAX ? (uint32_t)gap : chunk + 1 + (uint32_t)gap;
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
        sage_put32(skip, chunk);
        sage_put32(skip + 4, (uint32_t)data.len);
        sage_put32(skip + 8, max_tf);
        sage_put32(skip + 12, min_len);
        uint8_t bits[2] = { (uint8_t)gb, (uint8_t)tb };
        if (bput(&data, bits, 2) < 0 || sage_grow((void **)&data.p, &data.cap, data.len + glen + tlen, 1) < 0)
            goto out;
        sage_bitpack(gaps, n, gb, data.p + data.len);
        sage_bitpack(tfm1, n, tb, data.p + data.len + glen);
        data.len += glen + tlen;
        left -= n;
    }
    if (data.len > UINT32_MAX || bput(o, data.p, data.len) < 0)
        goto out;
    rc = 0;
out:
    sage_free(data.p);
    return rc;
}

int sage_ixbuild_write(struct sage_ixbuild *b, struct sage_writer *w, struct sage_err *err)
{
    int rc = 0;
    uint32_t *order = sage_calloc(b->n_terms ? b->n_terms : 1, sizeof(*order));
    struct bytes post = { 0 }, blocks = { 0 }, offs = { 0 }, lex = { 0 };
    uint8_t *norms = sage_malloc(b->n_chunks ? 4 * b->n_chunks : 1);
    if (!order || !norms) {
        rc = sage_err_set(err, SAGE_ENOMEM, "cannot allocate index writer");
        goto out;
    }
    for (size_t i = 0; i < b->n_chunks; i++)
        sage_put32(norms + 4 * i, b->norms[i]);
    if ((rc = sage_writer_add(w, SAGE_SECTION_NORMS, SAGE_CODEC_RAW, norms, 4 * b->n_chunks,
                              err)) < 0)
        goto out;
    for (size_t i = 0; i < b->n_terms; i++)
        order[i] = (uint32_t)i;
    qsort_r(order, b->n_terms, sizeof(*order), cmp_terms, b);

    if ((rc = sage_writer_begin(w, SAGE_SECTION_POSTINGS, SAGE_CODEC_RAW, err)) < 0)
        goto out;
    uint64_t post_off = 0;
    const char *prev = NULL;
    size_t prev_len = 0;
    for (size_t i = 0; i < b->n_terms; i++) {
        const struct term *t = &b->terms[order[i]];
        const char *s = b->arena + t->str_off;
        if (encode_postings(b, t, &post) < 0) {
            rc = sage_err_set(err, SAGE_ENOMEM, "cannot encode postings");
            goto out;
        }
        if ((rc = sage_writer_write(w, post.p, post.len, err)) < 0)
            goto out;
        if (i % SAGE_LEXICON_BLOCK == 0) {
            uint8_t o8[8];
            sage_put64(o8, blocks.len);
            if (bput(&offs, o8, 8) < 0)
                goto nomem;
            prev = NULL;
            prev_len = 0;
        }
        size_t pre = 0;
        while (prev && pre < prev_len && pre < t->len && prev[pre] == s[pre])
            pre++;
        if (bvarint(&blocks, pre) < 0 || bvarint(&blocks, t->len - pre) < 0 ||
            bput(&blocks, s + pre, t->len - pre) < 0 || bvarint(&blocks, t->df) < 0 ||
            bvarint(&blocks, post_off) < 0 || bvarint(&blocks, post.len) < 0)
            goto nomem;
        post_off += post.len;
        prev = s;
        prev_len = t->len;
    }
    if ((rc = sage_writer_end(w, err)) < 0)
        goto out;

    uint8_t head[48] = { 0 }, o8[8];
    size_t n_blocks = offs.len / 8;
    sage_put64(head, b->n_terms);
    sage_put64(head + 8, b->n_chunks);
    sage_put64(head + 16, b->total_tokens);
    sage_put32(head + 24, SAGE_LEXICON_BLOCK);
    sage_put64(head + 32, n_blocks);
    sage_put64(o8, blocks.len);
    if (bput(&lex, head, sizeof(head)) < 0 || bput(&lex, offs.p, offs.len) < 0 ||
        bput(&lex, o8, 8) < 0 || bput(&lex, blocks.p, blocks.len) < 0)
        goto nomem;
    rc = sage_writer_add(w, SAGE_SECTION_LEXICON, SAGE_CODEC_RAW, lex.p, lex.len, err);
    goto out;
nomem:
    rc = sage_err_set(err, SAGE_ENOMEM, "cannot build the lexicon");
out:
    sage_free(order);
    sage_free(norms);
    sage_free(post.p);
    sage_free(blocks.p);
    sage_free(offs.p);
    sage_free(lex.p);
    return rc;
}
