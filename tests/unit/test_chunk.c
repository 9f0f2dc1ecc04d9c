/* Chunking and the text extractors that feed it: chunk_split_point's
 * boundary preference (paragraph, sentence, word, then a cut on a UTF-8
 * boundary); chunk_document's size cap, overlap, heading and page
 * boundaries, merging of small blocks, ordinals, coverage and early stop;
 * extract_text's Markdown, reStructuredText and plain text headings, heading
 * paths and titles. */
#include "util.h"

#include <utf8proc.h>

#include "../../indexer/chunk.h"
#include "../../indexer/extract_text.h"

/* ---- helpers ---- */

static int valid_utf8(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const uint8_t *)s + i, (utf8proc_ssize_t)(n - i),
                                              &cp);
        if (k <= 0)
            return 0;
        i += (size_t)k;
    }
    return 1;
}

static int is_space(char c)
{
    return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

/* A growable string. */
struct str {
    char *p;
    size_t len, cap;
};

static void str_add(struct str *s, const char *p, size_t n)
{
    if (s->len + n + 1 > s->cap) {
        s->cap = (s->len + n + 1) * 2;
        s->p = realloc(s->p, s->cap);
        assert_non_null(s->p);
    }
    memcpy(s->p + s->len, p, n);
    s->len += n;
    s->p[s->len] = '\0';
}

static void str_addf(struct str *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void str_addf(struct str *s, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < sizeof(buf));
    str_add(s, buf, (size_t)n);
}

/* Chunks as the callback saw them. */
struct chunk {
    char *text;
    size_t len;
    char *heading;
    uint32_t page, ordinal;
    uint8_t source;
};

struct chunks {
    struct chunk c[4096];
    size_t n;
    size_t stop_at;     /* > 0: return 5 from this call (1-based) */
};

static int collect(void *ctx, const char *text, size_t len, const char *heading, uint32_t page,
                   uint8_t source, uint32_t ordinal)
{
    struct chunks *cs = ctx;
    assert_true(cs->n < sizeof(cs->c) / sizeof(*cs->c));
    struct chunk *c = &cs->c[cs->n++];
    c->text = malloc(len + 1);
    assert_non_null(c->text);
    memcpy(c->text, text, len);
    c->text[len] = '\0';
    c->len = len;
    c->heading = heading ? strdup(heading) : NULL;
    assert_true(!heading || c->heading);
    c->page = page;
    c->source = source;
    c->ordinal = ordinal;
    return cs->stop_at && cs->n == cs->stop_at ? 5 : 0;
}

static void chunks_free(struct chunks *cs)
{
    for (size_t i = 0; i < cs->n; i++) {
        free(cs->c[i].text);
        free(cs->c[i].heading);
    }
    free(cs);
}

static struct chunks *chunk(const struct extracted *x, size_t size, size_t overlap, size_t max,
                            int *rc)
{
    struct chunks *cs = calloc(1, sizeof(*cs));
    struct chunk_opts o = { size, overlap, max };
    assert_non_null(cs);
    *rc = chunk_document(x, &o, collect, cs);
    return cs;
}

static void add(struct extracted *x, const char *text, const char *heading, uint32_t page)
{
    struct sage_err err = { 0 };
    int rc = extracted_add(x, text, strlen(text), heading, page, &err);
    if (rc != 0)
        fail_msg("extracted_add: %s", sage_err_msg(&err, rc));
}

static int same_heading(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* ---- chunk_split_point ---- */

static void test_split_short(void **state)
{
    (void)state;
    assert_int_equal(chunk_split_point("abc", 3, 10), 3);
    assert_int_equal(chunk_split_point("abc", 3, 3), 3);
    assert_int_equal(chunk_split_point("", 0, 10), 0);
}

static void test_split_prefers_paragraph(void **state)
{
    (void)state;
    /* a paragraph ends at 14, sentences at 19 and 25, spaces everywhere */
    const char *t = "aaaa bbbb cc\n\ndddd. eeee. ffff gggg hhhh iiii";
    size_t len = strlen(t);
    assert_int_equal(chunk_split_point(t, len, 26), 14);
    /* a paragraph break in the first half does not count: sentence */
    assert_int_equal(chunk_split_point(t, len, 36), 25);
    /* the last sentence end wins over earlier ones */
    assert_int_equal(chunk_split_point(t, len, 40), 25);
}

static void test_split_sentence(void **state)
{
    (void)state;
    const char *t = "One two three. Four five? Six seven! Eight nine ten eleven";
    size_t len = strlen(t);
    assert_int_equal(chunk_split_point(t, len, 20), 14);     /* "three." */
    assert_int_equal(chunk_split_point(t, len, 30), 25);     /* "five?" */
    assert_int_equal(chunk_split_point(t, len, 40), 36);     /* "seven!" */
    /* a dot not followed by whitespace ends no sentence */
    const char *u = "version 3.14 is out and 2.71 too";
    assert_int_equal(chunk_split_point(u, strlen(u), 14), 13);   /* word: after "3.14 " */
}

static void test_split_word(void **state)
{
    (void)state;
    const char *t = "alpha beta gamma delta epsilon zeta";
    size_t len = strlen(t);
    /* the last whitespace at or before size: the cut follows it */
    assert_int_equal(chunk_split_point(t, len, 20), 17);
    assert_int_equal(chunk_split_point(t, len, 17), 17);
    assert_int_equal(chunk_split_point(t, len, 16), 11);
    /* tabs and newlines are whitespace too */
    const char *u = "alpha\tbeta\ngamma delta";
    assert_int_equal(chunk_split_point(u, strlen(u), 14), 11);
    /* whitespace only in the first half: a hard cut */
    const char *v = "ab cdefghijklmnopqrstuvwxyz";
    assert_int_equal(chunk_split_point(v, strlen(v), 20), 20);
}

static void test_split_hard_cut_utf8(void **state)
{
    (void)state;
    /* one long word of 1-, 2-, 3- and 4-byte characters */
    struct str s = { 0 };
    for (int i = 0; i < 60; i++)
        str_add(&s, i % 4 == 0 ? "a" : i % 4 == 1 ? "é" : i % 4 == 2 ? "中" : "😀", (size_t)(i % 4 + 1));
    for (size_t size = 4; size < s.len; size++) {
        size_t cut = chunk_split_point(s.p, s.len, size);
        assert_true(cut <= size);
        assert_true(cut > size - 4);
        assert_true(((unsigned char)s.p[cut] & 0xc0) != 0x80);
        assert_true(valid_utf8(s.p, cut));
        assert_true(valid_utf8(s.p + cut, s.len - cut));
    }
    free(s.p);
    /* ASCII: exactly size */
    const char *a = "abcdefghijklmnopqrstuvwxyz";
    assert_int_equal(chunk_split_point(a, 26, 10), 10);
}

/* ---- chunk_document ---- */

static void check_common(const struct chunks *cs, size_t max)
{
    for (size_t i = 0; i < cs->n; i++) {
        const struct chunk *c = &cs->c[i];
        assert_int_equal(c->ordinal, i);
        assert_true(c->len > 0);
        assert_true(c->len <= max);
        assert_false(is_space(c->text[0]));
        assert_false(is_space(c->text[c->len - 1]));
        if (!valid_utf8(c->text, c->len))
            fail_msg("chunk %zu is not valid UTF-8", i);
    }
}

/* The words "w00000", "w00001"... in sentences and paragraphs, n bytes or so. */
static void words_text(struct str *s, size_t n, unsigned *next)
{
    while (s->len < n) {
        str_addf(s, "w%05u", (*next)++);
        unsigned k = *next;
        str_add(s, k % 29 == 0 ? ".\n\n" : k % 7 == 0 ? ". " : " ", k % 29 == 0 ? 3 : k % 7 == 0 ? 2 : 1);
    }
}

static void test_chunk_big_block(void **state)
{
    (void)state;
    struct extracted x = { 0 };
    struct str s = { 0 };
    unsigned next = 0;
    int rc;
    words_text(&s, 20000, &next);
    add(&x, s.p, "Guide > Install", 0);
    struct chunks *cs = chunk(&x, 1000, 100, 4000, &rc);
    assert_int_equal(rc, 0);
    check_common(cs, 1000);
    assert_true(cs->n >= 20);
    assert_true(cs->n <= 30);
    size_t prev_off = 0;
    for (size_t i = 0; i < cs->n; i++) {
        const struct chunk *c = &cs->c[i];
        assert_string_equal(c->heading, "Guide > Install");
        assert_int_equal(c->page, 0);
        /* a piece of the block, in order */
        const char *at = strstr(s.p + prev_off, c->text);
        if (!at)
            fail_msg("chunk %zu is not a piece of the block", i);
        size_t off = (size_t)(at - s.p);
        assert_true(i == 0 || off > prev_off);
        /* it starts at a word start and ends at a word end */
        assert_true(off == 0 || is_space(s.p[off - 1]));
        assert_true(off + c->len == s.len || is_space(s.p[off + c->len]) ||
                    s.p[off + c->len] == '.');
        if (i > 0) {
            /* overlap: it begins with the end of the previous chunk, by at
             * most the overlap plus a word */
            const struct chunk *p = &cs->c[i - 1];
            size_t p_end = prev_off + p->len;
            assert_true(off < p_end);
            assert_true(p_end - off <= 100);
            assert_memory_equal(c->text, p->text + p->len - (p_end - off), p_end - off);
        }
        prev_off = off;
    }
    /* coverage: every word is in some chunk */
    for (unsigned w = 0; w < next; w++) {
        char word[16];
        int found = 0;
        snprintf(word, sizeof(word), "w%05u", w);
        for (size_t i = 0; i < cs->n && !found; i++)
            found = strstr(cs->c[i].text, word) != NULL;
        if (!found)
            fail_msg("word %s is in no chunk", word);
    }
    chunks_free(cs);
    extracted_release(&x);
    free(s.p);
}

static void test_chunk_prefers_boundaries(void **state)
{
    (void)state;
    struct extracted x = { 0 };
    struct str s = { 0 };
    unsigned next = 0;
    int rc;
    words_text(&s, 6000, &next);
    add(&x, s.p, NULL, 0);
    struct chunks *cs = chunk(&x, 500, 0, 4000, &rc);
    assert_int_equal(rc, 0);
    check_common(cs, 500);
    /* a paragraph ends every 29 words (about 200 bytes), so every chunk but
     * the last ends one */
    for (size_t i = 0; i + 1 < cs->n; i++)
        if (cs->c[i].text[cs->c[i].len - 1] != '.')
            fail_msg("chunk %zu ends '%s'", i, cs->c[i].text + cs->c[i].len - 10);
    /* overlap 0: the chunks tile the text */
    size_t total = 0;
    for (size_t i = 0; i < cs->n; i++)
        total += cs->c[i].len;
    size_t words = 0;
    for (size_t i = 0; i < s.len; i++)
        words += !is_space(s.p[i]);
    assert_true(total >= words);
    chunks_free(cs);
    extracted_release(&x);
    free(s.p);
}

static void test_chunk_headings_pages(void **state)
{
    (void)state;
    struct extracted x = { 0 };
    int rc;
    add(&x, "intro one.", NULL, 0);
    add(&x, "intro two.", NULL, 0);
    add(&x, "alpha one.", "A", 0);
    add(&x, "alpha two.", "A", 0);
    add(&x, "alpha three.", "A", 0);
    add(&x, "beta one.", "A > B", 0);
    add(&x, "alpha again.", "A", 0);
    add(&x, "page one text.", "P", 1);
    add(&x, "page two text.", "P", 2);
    add(&x, "page two more.", "P", 2);
    struct chunks *cs = chunk(&x, 1000, 100, 4000, &rc);
    assert_int_equal(rc, 0);
    check_common(cs, 1000);
    /* small blocks under one heading and page merge; anything else splits */
    assert_int_equal(cs->n, 6);
    assert_string_equal(cs->c[0].text, "intro one.\n\nintro two.");
    assert_null(cs->c[0].heading);
    assert_string_equal(cs->c[1].text, "alpha one.\n\nalpha two.\n\nalpha three.");
    assert_string_equal(cs->c[1].heading, "A");
    assert_string_equal(cs->c[2].text, "beta one.");
    assert_string_equal(cs->c[2].heading, "A > B");
    assert_string_equal(cs->c[3].text, "alpha again.");
    assert_string_equal(cs->c[3].heading, "A");
    assert_string_equal(cs->c[4].text, "page one text.");
    assert_int_equal(cs->c[4].page, 1);
    assert_string_equal(cs->c[5].text, "page two text.\n\npage two more.");
    assert_int_equal(cs->c[5].page, 2);
    assert_string_equal(cs->c[5].heading, "P");
    chunks_free(cs);
    extracted_release(&x);
}

static void test_chunk_merge_limit(void **state)
{
    (void)state;
    /* 30 blocks of about 90 bytes under one heading, size 400: merged in
     * groups that stay within size, never split, in order */
    struct extracted x = { 0 };
    int rc;
    for (int i = 0; i < 30; i++) {
        char b[128];
        snprintf(b, sizeof(b), "block %02d says something of no great consequence, at some length "
                               "so that it is ninety.", i);
        add(&x, b, "H", 0);
    }
    struct chunks *cs = chunk(&x, 400, 50, 4000, &rc);
    assert_int_equal(rc, 0);
    check_common(cs, 400);
    int seen = 0;
    for (size_t i = 0; i < cs->n; i++) {
        assert_true(cs->n < 30);
        const char *p = cs->c[i].text;
        while ((p = strstr(p, "block ")) != NULL) {
            long k = strtol(p + 6, NULL, 10);
            assert_int_equal(k, seen);
            seen++;
            p += 6;
        }
    }
    assert_int_equal(seen, 30);
    chunks_free(cs);
    extracted_release(&x);
}

static void test_chunk_mixed_sizes(void **state)
{
    (void)state;
    /* big and small blocks under several headings and pages: every chunk
     * lies inside one run of blocks with its heading and page */
    struct extracted x = { 0 };
    static const char *const heads[] = { NULL, "A", "A > B", "A > B > C", "D" };
    struct str runs[64] = { { 0 } };
    const char *run_head[64];
    uint32_t run_page[64];
    size_t n_runs = 0;
    unsigned next = 0;
    uint64_t seed = 3;
    int rc;
    for (int i = 0; i < 60; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        const char *h = heads[(seed >> 40) % 5];
        uint32_t page = (uint32_t)((seed >> 50) % 2);
        size_t want = (seed >> 20) % 3 == 0 ? 3000 + (seed >> 8) % 3000 : 50 + (seed >> 8) % 200;
        struct str b = { 0 };
        words_text(&b, want, &next);
        add(&x, b.p, h, page);
        if (n_runs == 0 || !same_heading(run_head[n_runs - 1], h) || run_page[n_runs - 1] != page) {
            run_head[n_runs] = h;
            run_page[n_runs] = page;
            n_runs++;
        } else {
            str_add(&runs[n_runs - 1], "\n\n", 2);
        }
        str_add(&runs[n_runs - 1], b.p, b.len);
        free(b.p);
    }
    struct chunks *cs = chunk(&x, 800, 80, 1000, &rc);
    assert_int_equal(rc, 0);
    check_common(cs, 800);
    size_t r = 0;
    for (size_t i = 0; i < cs->n; i++) {
        const struct chunk *c = &cs->c[i];
        /* chunks come run by run */
        while (r < n_runs && !(same_heading(run_head[r], c->heading) && run_page[r] == c->page &&
                               strstr(runs[r].p, c->text)))
            r++;
        if (r == n_runs)
            fail_msg("chunk %zu ('%.30s', heading %s, page %u) spans runs", i, c->text,
                     c->heading ? c->heading : "(none)", c->page);
    }
    /* coverage */
    for (unsigned w = 0; w < next; w++) {
        char word[16];
        int found = 0;
        snprintf(word, sizeof(word), "w%05u", w);
        for (size_t i = 0; i < cs->n && !found; i++)
            found = strstr(cs->c[i].text, word) != NULL;
        if (!found)
            fail_msg("word %s is in no chunk", word);
    }
    for (size_t i = 0; i < n_runs; i++)
        free(runs[i].p);
    chunks_free(cs);
    extracted_release(&x);
}

static void test_chunk_no_spaces_utf8(void **state)
{
    (void)state;
    /* CJK text has no spaces: hard cuts, and overlaps that must still start
     * on a character boundary whatever the overlap in bytes */
    static const size_t overlaps[] = { 0, 1, 2, 100, 101, 250 };
    for (size_t k = 0; k < sizeof(overlaps) / sizeof(*overlaps); k++) {
        struct extracted x = { 0 };
        struct str s = { 0 };
        int rc;
        static const char *const cjk[] = { "中", "文", "検", "索", "日", "本", "語", "。" };
        uint64_t seed = 5;
        for (int i = 0; i < 3000; i++) {    /* random, so each chunk occurs once */
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            str_add(&s, cjk[(seed >> 40) % 8], 3);
        }
        add(&x, s.p, "中文", 0);
        struct chunks *cs = chunk(&x, 1000, overlaps[k], 4000, &rc);
        assert_int_equal(rc, 0);
        check_common(cs, 1000);
        assert_true(cs->n >= 9);
        /* the chunks cover the text: each starts at most the overlap (and a
         * character) before the previous end, and the last ends the text */
        size_t prev_end = 0;
        for (size_t i = 0; i < cs->n; i++) {
            const struct chunk *c = &cs->c[i];
            size_t lo = prev_end > overlaps[k] + 3 ? prev_end - overlaps[k] - 3 : 0, off;
            if (i + 1 == cs->n) {
                off = s.len - c->len;
                assert_true(off >= lo && off <= prev_end);
            } else {
                for (off = lo; off <= prev_end; off++)
                    if (off + c->len <= s.len && memcmp(s.p + off, c->text, c->len) == 0)
                        break;
            }
            if (off > prev_end || memcmp(s.p + off, c->text, c->len) != 0)
                fail_msg("overlap %zu: chunk %zu does not continue the text", overlaps[k], i);
            prev_end = off + c->len;
        }
        assert_int_equal(prev_end, s.len);
        chunks_free(cs);
        extracted_release(&x);
        free(s.p);
    }
}

/* Text read by OCR never shares a chunk with the file's own text, and each
 * chunk reports where its text came from. */
static void test_chunk_sources(void **state)
{
    (void)state;
    struct extracted x = { 0 };
    int rc;
    add(&x, "The text layer of the page.", NULL, 1);
    assert_int_equal(extracted_add_source(&x, "Words read from an image.", 25, NULL, 1,
                                          SOURCE_OCR_REMOTE, NULL), 0);
    assert_int_equal(extracted_add_source(&x, "Scanned page two.", 17, NULL, 2,
                                          SOURCE_OCR_LOCAL, NULL), 0);
    struct chunks *cs = chunk(&x, 1000, 100, 4000, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(cs->n, 3);
    assert_int_equal(cs->c[0].source, SOURCE_TEXT);
    assert_string_equal(cs->c[0].text, "The text layer of the page.");
    assert_int_equal(cs->c[1].source, SOURCE_OCR_REMOTE);
    assert_int_equal(cs->c[1].page, 1);
    assert_int_equal(cs->c[2].source, SOURCE_OCR_LOCAL);
    assert_int_equal(cs->c[2].page, 2);
    chunks_free(cs);
    extracted_release(&x);
}

static void test_chunk_stop_and_empty(void **state)
{
    (void)state;
    struct extracted x = { 0 };
    struct str s = { 0 };
    unsigned next = 0;
    int rc;
    /* nothing to chunk */
    struct chunks *cs = chunk(&x, 1000, 100, 4000, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(cs->n, 0);
    chunks_free(cs);
    add(&x, "   \n\t  ", "A", 0);       /* whitespace only: dropped */
    assert_int_equal(x.n_blocks, 0);

    /* a non-zero callback value stops at once and is returned */
    words_text(&s, 10000, &next);
    add(&x, s.p, "A", 0);
    add(&x, "small one", "B", 0);
    for (size_t stop = 1; stop <= 4; stop++) {
        cs = calloc(1, sizeof(*cs));
        assert_non_null(cs);
        cs->stop_at = stop;
        struct chunk_opts o = { 1000, 100, 4000 };
        assert_int_equal(chunk_document(&x, &o, collect, cs), 5);
        assert_int_equal(cs->n, stop);
        chunks_free(cs);
    }
    /* stopping on the last, merged, chunk */
    cs = chunk(&x, 1000, 100, 4000, &rc);
    size_t all = cs->n;
    chunks_free(cs);
    cs = calloc(1, sizeof(*cs));
    assert_non_null(cs);
    cs->stop_at = all;
    struct chunk_opts o = { 1000, 100, 4000 };
    assert_int_equal(chunk_document(&x, &o, collect, cs), 5);
    assert_string_equal(cs->c[all - 1].text, "small one");
    chunks_free(cs);
    extracted_release(&x);
    free(s.p);
}

static void test_chunk_size_above_max(void **state)
{
    (void)state;
    /* size above max: max wins */
    struct extracted x = { 0 };
    struct str s = { 0 };
    unsigned next = 0;
    int rc;
    words_text(&s, 9000, &next);
    add(&x, s.p, NULL, 0);
    struct chunks *cs = chunk(&x, 5000, 100, 1200, &rc);
    assert_int_equal(rc, 0);
    check_common(cs, 1200);
    assert_true(cs->n >= 8);
    chunks_free(cs);
    extracted_release(&x);
    free(s.p);
}

static void test_chunk_oom(void **state)
{
    (void)state;
    struct extracted x = { 0 };
    add(&x, "one", "A", 0);
    add(&x, "two", "A", 0);
    for (long i = 0;; i++) {
        struct chunks *cs = calloc(1, sizeof(*cs));
        struct chunk_opts o = { 1000, 100, 4000 };
        assert_non_null(cs);
        ut_oom_arm(i);
        int rc = chunk_document(&x, &o, collect, cs);
        int failed = ut_oom_state()->failed;
        assert_int_equal(ut_oom_disarm(), 0);
        chunks_free(cs);
        if (!failed) {
            assert_int_equal(rc, 0);
            break;
        }
        assert_int_equal(rc, -SAGE_ENOMEM);
        assert_true(i < 10);
    }
    extracted_release(&x);
}

/* ---- extract_text ---- */

static void extract(const char *s, enum text_kind kind, struct extracted *x)
{
    struct sage_err err = { 0 };
    memset(x, 0, sizeof(*x));
    int rc = extract_text((const uint8_t *)s, strlen(s), kind, x, &err);
    if (rc != 0)
        fail_msg("extract_text: %s", sage_err_msg(&err, rc));
}

/* Block i has heading (NULL: none) and, trimmed, the text want. */
static void assert_block(const struct extracted *x, size_t i, const char *heading,
                         const char *want)
{
    if (i >= x->n_blocks)
        fail_msg("no block %zu (%zu blocks)", i, x->n_blocks);
    const struct doc_block *b = &x->blocks[i];
    if (!same_heading(b->heading, heading))
        fail_msg("block %zu: heading '%s', want '%s'", i, b->heading ? b->heading : "(none)",
                 heading ? heading : "(none)");
    const char *t = b->text;
    size_t n = b->text_len;
    while (n && is_space(*t))
        t++, n--;
    while (n && is_space(t[n - 1]))
        n--;
    if (n != strlen(want) || memcmp(t, want, n) != 0)
        fail_msg("block %zu: text '%.*s', want '%s'", i, (int)n, t, want);
    assert_int_equal(b->page, 0);
}

static void test_markdown_atx(void **state)
{
    (void)state;
    struct extracted x;
    extract("Preface text.\n"
            "# Guide\n"
            "Intro.\n"
            "## Install ##\n"
            "Get it.\n"
            "### On Linux\n"
            "apt.\n"
            "#### Deep\n"
            "deeper.\n"
            "## Use C#\n"
            "Run it.\n"
            "####### seven is not a heading\n"
            "#hashtag is not one either\n"
            "###### Six\n"
            "six.\n",
            TEXT_MARKDOWN, &x);
    assert_string_equal(x.title, "Guide");
    assert_block(&x, 0, NULL, "Preface text.");
    assert_block(&x, 1, "Guide", "Intro.");
    assert_block(&x, 2, "Guide > Install", "Get it.");
    assert_block(&x, 3, "Guide > Install > On Linux", "apt.");
    assert_block(&x, 4, "Guide > Install > On Linux > Deep", "deeper.");
    /* a level-2 heading replaces everything below level 1 */
    assert_block(&x, 5, "Guide > Use C#", "Run it.\n####### seven is not a heading\n"
                                          "#hashtag is not one either");
    assert_block(&x, 6, "Guide > Use C# > Six", "six.");
    assert_int_equal(x.n_blocks, 7);
    extracted_release(&x);
}

static void test_markdown_setext(void **state)
{
    (void)state;
    struct extracted x;
    extract("Manual\n"
            "======\n"
            "\n"
            "Welcome.\n"
            "\n"
            "Setup\n"
            "---\n"
            "Steps.\n"
            "\n"
            "Other\r\n"
            "=====\r\n"
            "More.\n",
            TEXT_MARKDOWN, &x);
    assert_string_equal(x.title, "Manual");
    assert_block(&x, 0, "Manual", "Welcome.");
    assert_block(&x, 1, "Manual > Setup", "Steps.");
    assert_block(&x, 2, "Other", "More.");
    assert_int_equal(x.n_blocks, 3);
    extracted_release(&x);
}

static void test_markdown_fences(void **state)
{
    (void)state;
    struct extracted x;
    extract("# Code\n"
            "Example:\n"
            "```sh\n"
            "# not a heading, a shell comment\n"
            "echo hi\n"
            "---\n"
            "```\n"
            "~~~\n"
            "## nor this\n"
            "~~~\n"
            "# After\n"
            "done\n",
            TEXT_MARKDOWN, &x);
    assert_int_equal(x.n_blocks, 2);
    assert_block(&x, 0, "Code", "Example:\n```sh\n# not a heading, a shell comment\necho hi\n"
                                "---\n```\n~~~\n## nor this\n~~~");
    assert_block(&x, 1, "After", "done");
    assert_string_equal(x.title, "Code");
    extracted_release(&x);
}

static void test_markdown_titles(void **state)
{
    (void)state;
    struct extracted x;
    /* the first top-level heading, even after a lower one */
    extract("## Sub first\ntext\n# Top\nmore\n# Second top\n", TEXT_MARKDOWN, &x);
    assert_string_equal(x.title, "Top");
    extracted_release(&x);
    /* no top-level heading: the first heading */
    extract("text\n## First\na\n## Second\nb\n", TEXT_MARKDOWN, &x);
    assert_string_equal(x.title, "First");
    extracted_release(&x);
    /* no heading: the first non-blank line, trimmed */
    extract("\n\n   Just some text   \nand more\n", TEXT_MARKDOWN, &x);
    assert_string_equal(x.title, "Just some text");
    assert_int_equal(x.n_blocks, 1);
    assert_null(x.blocks[0].heading);
    extracted_release(&x);
    /* nothing at all */
    extract("", TEXT_MARKDOWN, &x);
    assert_null(x.title);
    assert_int_equal(x.n_blocks, 0);
    extracted_release(&x);
    extract("\n  \n\t\n", TEXT_MARKDOWN, &x);
    assert_null(x.title);
    assert_int_equal(x.n_blocks, 0);
    extracted_release(&x);
    /* a heading with nothing under it yields no block */
    extract("# Only\n", TEXT_MARKDOWN, &x);
    assert_string_equal(x.title, "Only");
    assert_int_equal(x.n_blocks, 0);
    extracted_release(&x);
}

static void test_rst(void **state)
{
    (void)state;
    struct extracted x;
    extract("Lead text.\n"
            "\n"
            "=========\n"
            " Project\n"
            "=========\n"
            "\n"
            "About.\n"
            "\n"
            "Install\n"
            "=======\n"
            "\n"
            "How.\n"
            "\n"
            "Linux\n"
            "-----\n"
            "\n"
            "apt.\n"
            "\n"
            "Usage\n"
            "=======\n"
            "\n"
            "Use.\n"
            "\n"
            "Short\n"
            "---\n"
            "\n"
            "too short an underline: text.\n",
            TEXT_RST, &x);
    assert_string_equal(x.title, "Project");
    /* the overline belongs to the title, not to the text before it */
    assert_block(&x, 0, NULL, "Lead text.");
    assert_block(&x, 1, "Project", "About.");
    /* "=" under a title is a new style (level 2), "-" the next (level 3) */
    assert_block(&x, 2, "Project > Install", "How.");
    assert_block(&x, 3, "Project > Install > Linux", "apt.");
    assert_block(&x, 4, "Project > Usage", "Use.\n\nShort\n---\n\ntoo short an underline: text.");
    assert_int_equal(x.n_blocks, 5);
    extracted_release(&x);

    /* levels by order of first appearance, whatever the characters */
    extract("Top\n~~~\n\nt.\n\nMid\n***\n\nm.\n\nTop two\n~~~~~~~\n\nu.\n", TEXT_RST, &x);
    assert_string_equal(x.title, "Top");
    assert_block(&x, 0, "Top", "t.");
    assert_block(&x, 1, "Top > Mid", "m.");
    assert_block(&x, 2, "Top two", "u.");
    extracted_release(&x);

    /* no titles: the first line */
    extract("plain rst paragraph\nsecond line\n", TEXT_RST, &x);
    assert_string_equal(x.title, "plain rst paragraph");
    assert_block(&x, 0, NULL, "plain rst paragraph\nsecond line");
    extracted_release(&x);
}

static void test_plain(void **state)
{
    (void)state;
    struct extracted x;
    /* no markup is read in plain text */
    extract("\n  My Notes on C#  \n# not a heading\nTitle\n=====\nend\n", TEXT_PLAIN, &x);
    assert_string_equal(x.title, "My Notes on C#");
    assert_int_equal(x.n_blocks, 1);
    assert_block(&x, 0, NULL, "My Notes on C#  \n# not a heading\nTitle\n=====\nend");
    extracted_release(&x);

    /* a long first line: the title is cut to 120 bytes, on a character
     * boundary */
    struct str s = { 0 };
    for (int i = 0; i < 119; i++)
        str_add(&s, "a", 1);
    str_add(&s, "éé and more\nsecond line\n", strlen("éé and more\nsecond line\n"));
    extract(s.p, TEXT_PLAIN, &x);
    assert_int_equal(strlen(x.title), 119);
    assert_true(valid_utf8(x.title, strlen(x.title)));
    extracted_release(&x);
    s.p[119] = 'b';     /* now a character starts at byte 120: 120 bytes are kept */
    s.p[120] = 'b';
    extract(s.p, TEXT_PLAIN, &x);
    assert_int_equal(strlen(x.title), 120);
    extracted_release(&x);
    free(s.p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_short),
        cmocka_unit_test(test_split_prefers_paragraph),
        cmocka_unit_test(test_split_sentence),
        cmocka_unit_test(test_split_word),
        cmocka_unit_test(test_split_hard_cut_utf8),
        cmocka_unit_test(test_chunk_big_block),
        cmocka_unit_test(test_chunk_prefers_boundaries),
        cmocka_unit_test(test_chunk_headings_pages),
        cmocka_unit_test(test_chunk_merge_limit),
        cmocka_unit_test(test_chunk_mixed_sizes),
        cmocka_unit_test(test_chunk_no_spaces_utf8),
        cmocka_unit_test(test_chunk_sources),
        cmocka_unit_test(test_chunk_stop_and_empty),
        cmocka_unit_test(test_chunk_size_above_max),
        cmocka_unit_test(test_chunk_oom),
        cmocka_unit_test(test_markdown_atx),
        cmocka_unit_test(test_markdown_setext),
        cmocka_unit_test(test_markdown_fences),
        cmocka_unit_test(test_markdown_titles),
        cmocka_unit_test(test_rst),
        cmocka_unit_test(test_plain),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
