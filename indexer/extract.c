/* The extraction result shared by every extractor: appending text blocks
 * (made valid, NFC-normalized UTF-8 under a total cap), setting the title and
 * releasing it all. Parsing file formats is left to extract_*.c. */
#include "extract.h"

#include <string.h>
#include <utf8proc.h>

#include "alloc.h"

/* A title longer than this is cut (at a character boundary): it names a
 * document, and a hostile file should not make every result carry megabytes. */
#define EXTRACT_MAX_TITLE 4096

/* A long run of non-ASCII text is normalized in segments of about this many
 * bytes, so the UTF-32 scratch utf8proc needs stays small whatever the run. */
#define NORM_SEGMENT ((size_t)64 << 10)

/* A growable byte string with a hard cap on its length. */
struct ubuf {
    char *p;
    size_t len, cap;
    size_t max;             /* len never exceeds this */
};

static int ubuf_reserve(struct ubuf *b, size_t add)
{
    if (add > b->max || b->len > b->max - add)
        return -SAGE_ELIMIT;
    size_t need = b->len + add + 1;    /* room for the final NUL */
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > (size_t)-1 / 2 ? need : cap * 2;
    char *p = sage_realloc(b->p, cap);
    if (!p)
        return -SAGE_ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

static int ubuf_put(struct ubuf *b, const void *s, size_t n)
{
    int rc = ubuf_reserve(b, n);
    if (rc < 0)
        return rc;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static const char REPLACEMENT[3] = { (char)0xEF, (char)0xBF, (char)0xBD };  /* U+FFFD */

/* Scratch buffers reused across segments of one call. */
struct norm_scratch {
    struct ubuf valid;                  /* the segment as valid UTF-8 */
    utf8proc_int32_t *cps;              /* its code points, then its NFC bytes */
    size_t n_cps;                       /* capacity of cps, in code points */
};

/* Appends s[0..n) to out as valid UTF-8: each byte that does not start a
 * well-formed sequence, and each NUL (text is handed on NUL-terminated), becomes
 * U+FFFD. */
static int put_valid(struct ubuf *out, const uint8_t *s, size_t n)
{
    size_t i = 0, run = 0;     /* s[run..i) is valid and not yet copied */
    int rc = 0;
    while (i < n) {
        if (s[i] >= 0x01 && s[i] < 0x80) {
            i++;
            continue;
        }
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = s[i] ? utf8proc_iterate(s + i, (utf8proc_ssize_t)(n - i), &cp) : -1;
        if (k > 0) {
            i += (size_t)k;
            continue;
        }
        if ((rc = ubuf_put(out, s + run, i - run)) < 0 ||
            (rc = ubuf_put(out, REPLACEMENT, sizeof(REPLACEMENT))) < 0)
            return rc;
        run = ++i;
    }
    return ubuf_put(out, s + run, i - run);
}

/* Appends the NFC form of the valid UTF-8 in seg[0..n) to out. */
static int put_nfc(struct ubuf *out, struct norm_scratch *sc, const uint8_t *seg, size_t n)
{
    const utf8proc_option_t opts = UTF8PROC_COMPOSE | UTF8PROC_STABLE;
    for (;;) {
        utf8proc_ssize_t k = utf8proc_decompose(seg, (utf8proc_ssize_t)n, sc->cps,
                                                (utf8proc_ssize_t)sc->n_cps, opts);
        if (k < 0)
            return k == UTF8PROC_ERROR_NOMEM ? -SAGE_ENOMEM : -SAGE_ELIMIT;
        /* reencode writes UTF-8 over the code points, plus a NUL: it needs one
         * spare slot. */
        if ((size_t)k < sc->n_cps) {
            utf8proc_ssize_t m = utf8proc_reencode(sc->cps, k, opts);
            if (m < 0)
                return m == UTF8PROC_ERROR_NOMEM ? -SAGE_ENOMEM : -SAGE_ELIMIT;
            return ubuf_put(out, sc->cps, (size_t)m);
        }
        if ((size_t)k > ((size_t)-1 / sizeof(*sc->cps)) - 1)
            return -SAGE_ENOMEM;
        sage_free(sc->cps);
        sc->n_cps = 0;
        sc->cps = sage_malloc(((size_t)k + 1) * sizeof(*sc->cps));
        if (!sc->cps)
            return -SAGE_ENOMEM;
        sc->n_cps = (size_t)k + 1;
    }
}

/* The end of the run of non-plain bytes at s[j]: the next plain ASCII byte,
 * or, past NORM_SEGMENT bytes, the next grapheme cluster boundary (NFC never
 * composes across one: a combining mark, a spacing vowel sign or a Hangul
 * jamo extends the cluster it follows). */
static size_t next_plain(const uint8_t *s, size_t n, size_t j)
{
    size_t e = j;
    while (e < n && !(s[e] >= 0x01 && s[e] < 0x80) && e - j < NORM_SEGMENT)
        e++;
    if (e == n || (s[e] >= 0x01 && s[e] < 0x80))
        return e;
    while (e > j && (s[e] & 0xc0) == 0x80)
        e--;        /* back to the start of the sequence cut into */
    utf8proc_int32_t prev = -1, cp;
    utf8proc_int32_t state = 0;
    while (e < n && s[e] >= 0x80) {
        utf8proc_ssize_t k = utf8proc_iterate(s + e, (utf8proc_ssize_t)(n - e), &cp);
        if (k <= 0)
            return e;       /* an invalid byte: becomes U+FFFD, a boundary */
        if (prev >= 0 && utf8proc_grapheme_break_stateful(prev, cp, &state))
            return e;
        prev = cp;
        e += (size_t)k;
    }
    return e;
}

/* Appends s[0..n) to out made valid and NFC. Only the runs of bytes that are
 * not plain ASCII (0x01-0x7f) go through validation and normalization, each
 * with the one ASCII byte before it: an ASCII character is a starter, which a
 * following combining mark may compose with, but which never composes with
 * what precedes it, and no composition has an ASCII second character; so
 * the pieces normalized apart give the NFC of the whole. ASCII is copied as
 * it is (most documentation is almost all ASCII). */
static int put_clean(struct ubuf *out, const uint8_t *s, size_t n)
{
    struct norm_scratch sc = { .valid = { .max = (size_t)-1 / 2 } };
    size_t a = 0;
    int rc = 0;
    while (a < n) {
        size_t j = a;
        while (j < n && s[j] >= 0x01 && s[j] < 0x80)
            j++;
        size_t start = j > a ? j - 1 : j;   /* keep the starter before the run */
        if ((rc = ubuf_put(out, s + a, start - a)) < 0)
            goto out;
        if (j == n) {
            rc = ubuf_put(out, s + start, n - start);
            goto done;
        }
        size_t e = next_plain(s, n, j);
        sc.valid.len = 0;
        if ((rc = put_valid(&sc.valid, s + start, e - start)) < 0 ||
            (rc = put_nfc(out, &sc, (const uint8_t *)sc.valid.p, sc.valid.len)) < 0)
            goto out;
        a = e;
    }
done:
    if (rc == 0)
        rc = ubuf_put(out, "", 0);    /* a NUL-terminated string even when empty */
out:
    sage_free(sc.valid.p);
    sage_free(sc.cps);
    return rc;
}

/* Whitespace for our purposes: Unicode space separators, the ASCII controls
 * that act as whitespace, and the invisible zero-width space and BOM. */
static int is_space_cp(utf8proc_int32_t cp)
{
    if (cp < 0x80)
        return cp == ' ' || (cp >= '\t' && cp <= '\r');
    if (cp == 0x200B || cp == 0xFEFF || cp == 0x85)
        return 1;
    utf8proc_category_t c = utf8proc_category(cp);
    return c == UTF8PROC_CATEGORY_ZS || c == UTF8PROC_CATEGORY_ZL || c == UTF8PROC_CATEGORY_ZP;
}

/* Decodes the code point at s[i] of valid UTF-8; returns its length. */
static size_t next_cp(const char *s, size_t n, size_t i, utf8proc_int32_t *cp)
{
    utf8proc_ssize_t k = utf8proc_iterate((const uint8_t *)s + i, (utf8proc_ssize_t)(n - i), cp);
    if (k <= 0) {     /* cannot happen on cleaned text; step over the byte */
        *cp = 0xFFFD;
        return 1;
    }
    return (size_t)k;
}

static int all_space(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        utf8proc_int32_t cp;
        i += next_cp(s, n, i, &cp);
        if (!is_space_cp(cp))
            return 0;
    }
    return 1;
}

/* Copies s as clean UTF-8 into a new string (sage_free). */
static int clean_dup(const char *s, size_t n, size_t max, char **out, size_t *out_len)
{
    struct ubuf b = { .max = max };
    int rc = put_clean(&b, (const uint8_t *)s, n);
    if (rc < 0) {
        sage_free(b.p);
        return rc;
    }
    *out = b.p;
    *out_len = b.len;
    return 0;
}

int extracted_add(struct extracted *x, const char *text, size_t len, const char *heading,
                  uint32_t page, struct sage_err *err)
{
    return extracted_add_source(x, text, len, heading, page, SOURCE_TEXT, err);
}

int extracted_add_source(struct extracted *x, const char *text, size_t len, const char *heading,
                         uint32_t page, enum text_source source, struct sage_err *err)
{
    char *t = NULL, *h = NULL;
    size_t t_len = 0, h_len = 0;
    int rc = 0;
    if (!x || (!text && len))
        return sage_err_set(err, SAGE_EINVAL, "extracted_add: no text");
    size_t room = EXTRACT_MAX_TEXT - x->total_len;
    /* Repair can triple invalid bytes and composing can shrink text, so the
     * exact check is on the result; this one bounds the work. */
    if (len / 3 > room) {
        rc = sage_err_set(err, SAGE_ELIMIT, "extracted text exceeds %zu bytes", EXTRACT_MAX_TEXT);
        goto out;
    }
    rc = clean_dup(text, len, (size_t)-1 / 2, &t, &t_len);
    if (rc < 0) {
        rc = sage_err_set(err, SAGE_ENOMEM, "out of memory for a %zu-byte text block", len);
        goto out;
    }
    if (all_space(t, t_len))
        goto out;
    if (t_len > room) {
        rc = sage_err_set(err, SAGE_ELIMIT, "extracted text exceeds %zu bytes", EXTRACT_MAX_TEXT);
        goto out;
    }
    if (heading && heading[0]) {
        rc = clean_dup(heading, strlen(heading), (size_t)-1 / 2, &h, &h_len);
        if (rc < 0) {
            rc = sage_err_set(err, SAGE_ENOMEM, "out of memory for a heading");
            goto out;
        }
    }
    if (x->n_blocks == x->cap_blocks) {
        size_t cap = x->cap_blocks ? x->cap_blocks * 2 : 16;
        struct doc_block *nb = NULL;
        if (cap <= (size_t)-1 / sizeof(*nb))
            nb = sage_realloc(x->blocks, cap * sizeof(*nb));
        if (!nb) {
            rc = sage_err_set(err, SAGE_ENOMEM, "out of memory for %zu text blocks", cap);
            goto out;
        }
        x->blocks = nb;
        x->cap_blocks = cap;
    }
    x->blocks[x->n_blocks++] = (struct doc_block){ .text = t, .text_len = t_len, .heading = h,
                                                   .page = page, .source = (uint8_t)source };
    x->total_len += t_len;
    t = h = NULL;
out:
    sage_free(t);
    sage_free(h);
    return rc;
}

int extracted_set_title(struct extracted *x, const char *title, size_t len, struct sage_err *err)
{
    char *t = NULL;
    size_t t_len = 0, o = 0;
    int rc = 0;
    if (!x || (!title && len))
        return sage_err_set(err, SAGE_EINVAL, "extracted_set_title: no title");
    /* Cut the raw bytes first so a huge title costs no huge copy; cleaning can
     * at most triple them. */
    if (len > 4 * EXTRACT_MAX_TITLE)
        len = 4 * EXTRACT_MAX_TITLE;
    rc = clean_dup(title, len, (size_t)-1 / 2, &t, &t_len);
    if (rc < 0) {
        rc = sage_err_set(err, SAGE_ENOMEM, "out of memory for a title");
        goto out;
    }
    /* Collapse each whitespace run to one space, in place, and trim. */
    int pending = 0;
    for (size_t i = 0; i < t_len;) {
        utf8proc_int32_t cp;
        size_t k = next_cp(t, t_len, i, &cp);
        if (is_space_cp(cp)) {
            pending = o > 0;
        } else {
            if (pending)
                t[o++] = ' ';
            pending = 0;
            memmove(t + o, t + i, k);
            o += k;
        }
        i += k;
    }
    if (o > EXTRACT_MAX_TITLE) {
        o = EXTRACT_MAX_TITLE;
        while (o > 0 && ((uint8_t)t[o] & 0xC0) == 0x80)
            o--;
        while (o > 0 && t[o - 1] == ' ')
            o--;
    }
    t[o] = '\0';
    sage_free(x->title);
    x->title = NULL;
    if (o > 0) {
        x->title = t;
        t = NULL;
    }
out:
    sage_free(t);
    return rc;
}

void extracted_release(struct extracted *x)
{
    if (!x)
        return;
    for (size_t i = 0; i < x->n_blocks; i++) {
        sage_free(x->blocks[i].text);
        sage_free(x->blocks[i].heading);
    }
    sage_free(x->blocks);
    sage_free(x->title);
    extracted_drop_ocr(x);
    memset(x, 0, sizeof(*x));
}

void extracted_drop_ocr(struct extracted *x)
{
    for (size_t i = 0; i < x->n_ocr; i++) {
        sage_free(x->ocr[i].text);
        sage_free(x->ocr[i].png);
    }
    sage_free(x->ocr);
    x->ocr = NULL;
    x->n_ocr = 0;
}

void extracted_sort_pages(struct extracted *x)
{
    /* insertion sort: stable, and the blocks are nearly in order already */
    for (size_t i = 1; i < x->n_blocks; i++) {
        struct doc_block b = x->blocks[i];
        size_t j = i;
        while (j > 0 && x->blocks[j - 1].page > b.page) {
            x->blocks[j] = x->blocks[j - 1];
            j--;
        }
        x->blocks[j] = b;
    }
}
