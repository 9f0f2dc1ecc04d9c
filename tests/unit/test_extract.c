/* Extraction: extracted_add / extracted_set_title (UTF-8 repair, NFC, the
 * caps, out-of-memory), HTML (titles, heading paths, separators, entities,
 * encodings, hostile markup) and PDF in its child process (documents drawn
 * with cairo at test time, malformed files, the timeout and memory limit,
 * no zombies and no leaked fds). */
#include "util.h"

#include <cairo-pdf.h>
#include <cairo.h>
#include <sys/wait.h>
#include <utf8proc.h>

#include "../../indexer/extract.h"

/* ---- helpers ---- */

/* Fails the test unless s[0..n) is valid UTF-8 without NUL, NUL-terminated. */
static void assert_clean_utf8(const char *s, size_t n)
{
    assert_non_null(s);
    assert_int_equal(strlen(s), n);
    for (size_t i = 0; i < n;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
        assert_true(k > 0);
        i += (size_t)k;
    }
}

static void assert_all_clean(const struct extracted *x)
{
    if (x->title)
        assert_clean_utf8(x->title, strlen(x->title));
    for (size_t i = 0; i < x->n_blocks; i++) {
        assert_clean_utf8(x->blocks[i].text, x->blocks[i].text_len);
        if (x->blocks[i].heading)
            assert_clean_utf8(x->blocks[i].heading, strlen(x->blocks[i].heading));
    }
}

/* Whether any block's text contains needle. */
static int has_text(const struct extracted *x, const char *needle)
{
    for (size_t i = 0; i < x->n_blocks; i++)
        if (strstr(x->blocks[i].text, needle))
            return 1;
    return 0;
}

static int html(const char *s, struct extracted *x)
{
    struct sage_err err = { 0 };
    int rc = extract_html((const uint8_t *)s, strlen(s), x, &err);
    if (rc < 0)
        print_message("extract_html: %s\n", err.msg);
    return rc;
}

static void assert_block(const struct extracted *x, size_t i, const char *text, const char *heading)
{
    assert_true(i < x->n_blocks);
    assert_string_equal(x->blocks[i].text, text);
    assert_int_equal(x->blocks[i].text_len, strlen(text));
    if (heading)
        assert_string_equal(x->blocks[i].heading, heading);
    else
        assert_null(x->blocks[i].heading);
}

/* ---- extracted_add, extracted_set_title ---- */

static void test_add_basic(void **state)
{
    (void)state;
    struct extracted x = { 0 };
    assert_int_equal(extracted_add(&x, "hello world", 11, "A > B", 3, NULL), 0);
    assert_int_equal(extracted_add(&x, "second", 6, NULL, 0, NULL), 0);
    assert_int_equal(extracted_add(&x, "third", 5, "", 0, NULL), 0);
    assert_int_equal(x.n_blocks, 3);
    assert_block(&x, 0, "hello world", "A > B");
    assert_int_equal(x.blocks[0].page, 3);
    assert_block(&x, 1, "second", NULL);
    assert_block(&x, 2, "third", NULL);
    assert_int_equal(x.total_len, 22);
    /* Only the first len bytes count. */
    assert_int_equal(extracted_add(&x, "abcdef", 3, NULL, 0, NULL), 0);
    assert_block(&x, 3, "abc", NULL);
    extracted_release(&x);
    assert_null(x.blocks);
    assert_int_equal(x.n_blocks, 0);
    extracted_release(&x);
    extracted_release(NULL);
}

static void test_add_invalid_utf8(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t len;
        const char *want;
    } cases[] = {
        { "a\xff" "b", 3, "a\xef\xbf\xbd" "b" },
        { "trunc\xc3", 6, "trunc\xef\xbf\xbd" },
        { "over\xc0\xaf", 6, "over\xef\xbf\xbd\xef\xbf\xbd" },
        { "sur\xed\xa0\x80", 6, "sur\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
        { "big\xf4\x90\x80\x80", 7, "big\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
        { "nul\0byte", 8, "nul\xef\xbf\xbd" "byte" },
        { "caf\xc3\xa9 ok", 8, "caf\xc3\xa9 ok" },
        { "\xe2\x98\xba\xf0\x9f\x98\x80", 7, "\xe2\x98\xba\xf0\x9f\x98\x80" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct extracted x = { 0 };
        assert_int_equal(extracted_add(&x, cases[i].in, cases[i].len, "h\xff", 0, NULL), 0);
        assert_int_equal(x.n_blocks, 1);
        assert_block(&x, 0, cases[i].want, "h\xef\xbf\xbd");
        assert_all_clean(&x);
        extracted_release(&x);
    }
}

static void test_add_nfc(void **state)
{
    (void)state;
    struct extracted x = { 0 };
    /* e + combining acute; Hangul jamo; a stable singleton (Angstrom sign). */
    assert_int_equal(extracted_add(&x, "caf" "e\xcc\x81", 6, NULL, 0, NULL), 0);
    assert_int_equal(extracted_add(&x, "\xe1\x84\x80\xe1\x85\xa1", 6, NULL, 0, NULL), 0);
    assert_int_equal(extracted_add(&x, "\xe2\x84\xab", 3, NULL, 0, NULL), 0);
    assert_block(&x, 0, "caf\xc3\xa9", NULL);
    assert_block(&x, 1, "\xea\xb0\x80", NULL);
    assert_block(&x, 2, "\xc3\x85", NULL);
    extracted_release(&x);

    /* A long text normalized in segments equals the text normalized whole,
     * including composing sequences and invalid bytes near the cuts; the
     * second text has no ASCII at all, so it is cut at grapheme boundaries. */
    for (int no_ascii = 0; no_ascii < 2; no_ascii++) {
    size_t n = 300000, o = 0;
    char *big = malloc(n + 8);
    assert_non_null(big);
    uint32_t r = 1;
    while (o < n) {
        r = r * 1664525u + 1013904223u;
        switch ((r >> 24) % 7) {
        case 0: memcpy(big + o, no_ascii ? "\xce\xb1\xcc\x81" : "e\xcc\x81", 3 + no_ascii);
                o += 3 + (size_t)no_ascii; break;
        case 1: memcpy(big + o, "\xcc\x81\xcc\xa3", 4); o += 4; break;
        case 2: memcpy(big + o, "\xe1\x84\x80", 3); o += 3; break;
        case 3: memcpy(big + o, "\xe1\x85\xa1", 3); o += 3; break;
        case 4: big[o++] = (char)0xff; break;
        default:
            if (no_ascii) {
                memcpy(big + o, "\xce\xb1", 2);
                o += 2;
            } else {
                big[o++] = (char)('a' + (r >> 8) % 26);
            }
            break;
        }
    }
    assert_int_equal(extracted_add(&x, big, o, NULL, 0, NULL), 0);
    assert_int_equal(x.n_blocks, 1);
    /* Reference: repair whole, then utf8proc_map. */
    char *fixed = malloc(3 * o + 1);
    size_t f = 0;
    assert_non_null(fixed);
    for (size_t i = 0; i < o;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const uint8_t *)big + i, (utf8proc_ssize_t)(o - i), &cp);
        if (k > 0 && cp != 0) {
            memcpy(fixed + f, big + i, (size_t)k);
            f += (size_t)k;
            i += (size_t)k;
        } else {
            memcpy(fixed + f, "\xef\xbf\xbd", 3);
            f += 3;
            i++;
        }
    }
    utf8proc_uint8_t *want = NULL;
    utf8proc_ssize_t wl = utf8proc_map((const uint8_t *)fixed, (utf8proc_ssize_t)f, &want,
                                       UTF8PROC_COMPOSE | UTF8PROC_STABLE);
    assert_true(wl > 0);
    assert_int_equal(x.blocks[0].text_len, (size_t)wl);
    assert_memory_equal(x.blocks[0].text, want, (size_t)wl);
    free(want);
    free(fixed);
    free(big);
    extracted_release(&x);
    }
}

static void test_add_drops_whitespace(void **state)
{
    (void)state;
    struct extracted x = { 0 };
    assert_int_equal(extracted_add(&x, "", 0, NULL, 0, NULL), 0);
    assert_int_equal(extracted_add(&x, NULL, 0, NULL, 0, NULL), 0);
    assert_int_equal(extracted_add(&x, " \t\r\n\f", 5, "h", 1, NULL), 0);
    /* NBSP, ideographic space, line separator, zero-width space, BOM. */
    const char *u = "\xc2\xa0\xe3\x80\x80\xe2\x80\xa8\xe2\x80\x8b\xef\xbb\xbf";
    assert_int_equal(extracted_add(&x, u, strlen(u), NULL, 0, NULL), 0);
    assert_int_equal(x.n_blocks, 0);
    assert_int_equal(x.total_len, 0);
    assert_int_equal(extracted_add(&x, " x ", 3, NULL, 0, NULL), 0);
    assert_int_equal(x.n_blocks, 1);
    extracted_release(&x);
}

static void test_add_limit(void **state)
{
    (void)state;
    struct extracted x = { 0 };
    struct sage_err err = { 0 };
    assert_int_equal(extracted_add(&x, "seed", 4, NULL, 0, NULL), 0);
    /* Pretend the file already yielded almost everything it may. */
    x.total_len = EXTRACT_MAX_TEXT - 10;
    assert_int_equal(extracted_add(&x, "0123456789a", 11, NULL, 0, &err), -SAGE_ELIMIT);
    assert_int_equal(err.code, SAGE_ELIMIT);
    assert_non_null(strstr(err.msg, "exceeds"));
    /* Repair can grow text past the cap: 4 bad bytes are 12 bytes of U+FFFD. */
    assert_int_equal(extracted_add(&x, "\xff\xff\xff\xff", 4, NULL, 0, NULL), -SAGE_ELIMIT);
    assert_int_equal(x.n_blocks, 1);
    assert_int_equal(extracted_add(&x, "0123456789", 10, NULL, 0, NULL), 0);
    assert_int_equal(x.total_len, EXTRACT_MAX_TEXT);
    assert_int_equal(extracted_add(&x, "x", 1, NULL, 0, NULL), -SAGE_ELIMIT);
    /* Whitespace still costs nothing. */
    assert_int_equal(extracted_add(&x, "  ", 2, NULL, 0, NULL), 0);
    assert_int_equal(x.n_blocks, 2);
    extracted_release(&x);
    assert_int_equal(extracted_add(NULL, "x", 1, NULL, 0, &err), -SAGE_EINVAL);
    assert_int_equal(extracted_add(&x, NULL, 1, NULL, 0, &err), -SAGE_EINVAL);
}

static void test_add_many_blocks(void **state)
{
    (void)state;
    struct extracted x = { 0 };
    char buf[32];
    for (int i = 0; i < 5000; i++) {
        int n = snprintf(buf, sizeof(buf), "block %d", i);
        assert_int_equal(extracted_add(&x, buf, (size_t)n, i % 2 ? "odd" : NULL, (uint32_t)i, NULL), 0);
    }
    assert_int_equal(x.n_blocks, 5000);
    assert_true(x.cap_blocks >= x.n_blocks);
    assert_block(&x, 4999, "block 4999", "odd");
    assert_int_equal(x.blocks[1234].page, 1234);
    extracted_release(&x);
}

static void test_set_title(void **state)
{
    (void)state;
    struct extracted x = { 0 };
    const char *t = "  The \t Title\n\n of  it\xc2\xa0 ";
    assert_int_equal(extracted_set_title(&x, t, strlen(t), NULL), 0);
    assert_string_equal(x.title, "The Title of it");
    assert_int_equal(extracted_set_title(&x, "bad\xff" "byte", 8, NULL), 0);
    assert_string_equal(x.title, "bad\xef\xbf\xbd" "byte");
    assert_int_equal(extracted_set_title(&x, "Cafe\xcc\x81", 6, NULL), 0);
    assert_string_equal(x.title, "Caf\xc3\xa9");
    assert_int_equal(extracted_set_title(&x, " \n ", 3, NULL), 0);
    assert_null(x.title);
    assert_int_equal(extracted_set_title(&x, NULL, 0, NULL), 0);
    assert_null(x.title);
    /* A huge title is cut at a character boundary, without a final space. */
    size_t n = 100000;
    char *big = malloc(n);
    assert_non_null(big);
    for (size_t i = 0; i + 3 <= n; i += 3)
        memcpy(big + i, i % 9 == 0 ? "  \xc3" : "\xa9" "a ", 3);
    assert_int_equal(extracted_set_title(&x, big, n - n % 3, NULL), 0);
    assert_non_null(x.title);
    assert_true(strlen(x.title) <= 4096 && strlen(x.title) > 1000);
    assert_clean_utf8(x.title, strlen(x.title));
    assert_true(x.title[strlen(x.title) - 1] != ' ');
    free(big);
    extracted_release(&x);
    assert_null(x.title);
}

/* Every allocation of extracted_add and extract_html in turn fails: the call
 * reports ENOMEM (or succeeds), and nothing leaks. */
static void test_oom(void **state)
{
    (void)state;
    const char *doc = "<html><head><title>T i t l e</title></head><body><p>intro</p>"
                      "<h1>One</h1><p>caf\xc3\xa9 e\xcc\x81 \xff</p><h2>Two</h2><ul><li>a<li>b</ul>"
                      "<h1>Three</h1><pre> x  y </pre></body></html>";
    int failed = 0;
    for (long i = 0; i < 200; i++) {
        struct extracted x = { 0 };
        ut_oom_arm(i);
        int rc = extracted_add(&x, "e\xcc\x81 \xff text", 9, "h > i", 0, NULL);
        if (rc == 0)
            rc = extracted_set_title(&x, " t  i ", 6, NULL);
        struct extracted y;
        int rc2 = extract_html((const uint8_t *)doc, strlen(doc), &y, NULL);
        int reached = ut_oom_state()->failed;
        extracted_release(&x);
        extracted_release(&y);
        assert_int_equal(ut_oom_disarm(), 0);
        if (!reached) {
            assert_int_equal(rc, 0);
            assert_int_equal(rc2, 0);
            break;
        }
        assert_true(rc == 0 || rc == -SAGE_ENOMEM);
        assert_true(rc2 == 0 || rc2 == -SAGE_ENOMEM);
        failed += rc < 0 || rc2 < 0;
    }
    assert_true(failed > 10);
}

/* ---- HTML ---- */

static void test_html_document(void **state)
{
    (void)state;
    struct extracted x;
    const char *doc =
        "<!DOCTYPE html><html><head><title>  My \n  Doc  </title>"
        "<style>body { color: red }</style><script>var secret = 1;</script></head>\n"
        "<body><p>Intro text &amp; more</p>\n"
        "<h1>Install</h1><p>Para one</p><p>para two</p>\n"
        "<h2>Requirements</h2><ul><li>alpha</li><li>beta</li></ul>line<br>break\n"
        "<h3>Deep</h3><p>deep text</p>\n"
        "<h2>Usage</h2><p>caf&eacute; &#x263A; &lt;tag&gt;</p><pre>  keep   this\n    spacing</pre>"
        "<noscript>noscript text</noscript><template>tpl text</template>"
        "<svg><text>svg text</text></svg><script>also secret</script>\n"
        "</body></html>";
    assert_int_equal(html(doc, &x), 0);
    assert_string_equal(x.title, "My Doc");
    assert_int_equal(x.n_blocks, 5);
    assert_block(&x, 0, "Intro text & more", NULL);
    assert_block(&x, 1, "Para one\n\npara two", "Install");
    assert_block(&x, 2, "alpha\nbeta\n\nline\nbreak", "Install > Requirements");
    assert_block(&x, 3, "deep text", "Install > Requirements > Deep");
    assert_block(&x, 4, "caf\xc3\xa9 \xe2\x98\xba <tag>\n\n  keep   this\n    spacing",
                 "Install > Usage");
    assert_int_equal(x.n_pages, 0);
    assert_int_equal(x.blocks[0].page, 0);
    static const char *const absent[] = { "secret", "color", "noscript", "tpl", "svg", "My Doc" };
    for (size_t i = 0; i < sizeof(absent) / sizeof(absent[0]); i++)
        assert_false(has_text(&x, absent[i]));
    assert_all_clean(&x);
    extracted_release(&x);
    /* The newline right after <pre> is markup, not text (as in browsers). */
    assert_int_equal(html("<p>a</p><pre>\n  x\n\n y\n</pre><p>b</p><pre>\r\n\nz</pre>", &x), 0);
    assert_block(&x, 0, "a\n\n  x\n\n y\n\nb\n\n\nz", NULL);
    extracted_release(&x);
}

static void test_html_separators(void **state)
{
    (void)state;
    struct extracted x;
    assert_int_equal(html("<body><p>one</p><p>two</p><div>three</div><li>four</li>five<br>six"
                          "<table><tr><td>c1</td><td>c2</td></tr><tr><th>c3</th></tr></table>"
                          "in<b>line</b> <i>x</i>y &nbsp; z\n\n\n   w</body>", &x), 0);
    assert_int_equal(x.n_blocks, 1);
    assert_block(&x, 0, "one\n\ntwo\n\nthree\nfour\nfive\nsix\n\nc1 c2\nc3\n\ninline xy \xc2\xa0 z w",
                 NULL);
    extracted_release(&x);
}

static void test_html_title_fallback(void **state)
{
    (void)state;
    struct extracted x;
    assert_int_equal(html("<h1> First <em>Heading</em> </h1><p>x</p><h1>Second</h1><p>y</p>", &x), 0);
    assert_string_equal(x.title, "First Heading");
    assert_int_equal(x.n_blocks, 2);
    assert_block(&x, 0, "x", "First Heading");
    assert_block(&x, 1, "y", "Second");
    extracted_release(&x);
    /* An empty <title> falls back too; a later <title> does not count. */
    assert_int_equal(html("<title> </title><h2>Not h1</h2><h1>Real</h1><title>Late</title>", &x), 0);
    assert_string_equal(x.title, "Real");
    extracted_release(&x);
    assert_int_equal(html("<p>no heading at all</p>", &x), 0);
    assert_null(x.title);
    extracted_release(&x);
}

static void test_html_heading_levels(void **state)
{
    (void)state;
    struct extracted x;
    /* Skipped levels, a higher heading clearing deeper ones, empty headings,
     * a heading inside a heading, headings without text after them. */
    assert_int_equal(html("<h1>A</h1><h3>C</h3><p>1</p><h2>B</h2><p>2</p><h4>D</h4>"
                          "<h1>E</h1><p>3</p><h2></h2><p>4</p><h2>F<h3>G</h3></h2><p>5</p>"
                          "<h6>Z</h6><h5>Y</h5><p>6</p>", &x), 0);
    assert_int_equal(x.n_blocks, 6);
    assert_block(&x, 0, "1", "A > C");
    assert_block(&x, 1, "2", "A > B");
    assert_block(&x, 2, "3", "E");
    assert_block(&x, 3, "4", "E");
    assert_block(&x, 4, "5", "E > F G");
    assert_block(&x, 5, "6", "E > F G > Y");
    extracted_release(&x);

    /* Many sections: the blocks array grows. */
    size_t cap = 1000 * 40, o = 0;
    char *doc = malloc(cap);
    assert_non_null(doc);
    for (int i = 0; i < 1000; i++)
        o += (size_t)snprintf(doc + o, cap - o, "<h2>S%d</h2><p>body %d</p>", i, i);
    assert_int_equal(html(doc, &x), 0);
    assert_int_equal(x.n_blocks, 1000);
    assert_block(&x, 999, "body 999", "S999");
    free(doc);
    extracted_release(&x);
}

static void test_html_encodings(void **state)
{
    (void)state;
    struct extracted x;
    /* No declaration: UTF-8, not Latin-1 mojibake. */
    assert_int_equal(html("<p>caf\xc3\xa9 na\xc3\xafve</p>", &x), 0);
    assert_block(&x, 0, "caf\xc3\xa9 na\xc3\xafve", NULL);
    extracted_release(&x);
    /* A declared charset is honoured. */
    assert_int_equal(html("<html><head><meta charset=\"iso-8859-1\"></head><body><p>caf\xe9</p>", &x), 0);
    assert_block(&x, 0, "caf\xc3\xa9", NULL);
    extracted_release(&x);
    assert_int_equal(html("<html><head><meta http-equiv=\"Content-Type\" "
                          "content=\"text/html; charset=windows-1252\"></head><p>\x93q\x94</p>", &x), 0);
    assert_block(&x, 0, "\xe2\x80\x9cq\xe2\x80\x9d", NULL);
    extracted_release(&x);
    /* An XML declaration names it too. */
    assert_int_equal(html("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><html><p>\xe9t\xe9</p></html>", &x), 0);
    assert_block(&x, 0, "\xc3\xa9t\xc3\xa9", NULL);
    extracted_release(&x);
    /* A UTF-8 byte order mark is no text. */
    assert_int_equal(html("\xef\xbb\xbf<p>bom</p>", &x), 0);
    assert_block(&x, 0, "bom", NULL);
    extracted_release(&x);
    /* UTF-16 with its byte order mark. */
    static const uint8_t u16[] = { 0xff, 0xfe, '<', 0, 'p', 0, '>', 0, 'h', 0, 0xe9, 0, '<', 0, '/', 0,
                                   'p', 0, '>', 0 };
    assert_int_equal(extract_html(u16, sizeof(u16), &x, NULL), 0);
    assert_block(&x, 0, "h\xc3\xa9", NULL);
    extracted_release(&x);
}

static void test_html_invalid_bytes(void **state)
{
    (void)state;
    struct extracted x;
    /* Invalid UTF-8 and NUL bytes, undeclared and declared as UTF-8. */
    static const char a[] = "<title>t\xff\x00t</title><p>ok \xff\xfe bad \xc3 end\x00mid</p><p>after</p>";
    assert_int_equal(extract_html((const uint8_t *)a, sizeof(a) - 1, &x, NULL), 0);
    assert_all_clean(&x);
    assert_true(has_text(&x, "ok") && has_text(&x, "bad") && has_text(&x, "after"));
    assert_true(has_text(&x, "\xef\xbf\xbd"));
    assert_non_null(x.title);
    extracted_release(&x);
    static const char b[] = "<meta charset=utf-8><p>ok \xff\xfe \xed\xa0\x80 bad\x00</p><p>after</p>";
    assert_int_equal(extract_html((const uint8_t *)b, sizeof(b) - 1, &x, NULL), 0);
    assert_all_clean(&x);
    assert_true(has_text(&x, "after"));
    extracted_release(&x);
    /* Nothing but NULs and junk. */
    uint8_t junk[4096];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)(i % 3 ? 0 : (i * 7919) >> 3);
    assert_int_equal(extract_html(junk, sizeof(junk), &x, NULL), 0);
    assert_all_clean(&x);
    extracted_release(&x);
}

static void test_html_empty(void **state)
{
    (void)state;
    struct extracted x;
    static const char *const docs[] = { "", "   \n", "<html></html>", "<!-- only -->",
                                        "<script>x</script>", "<p> \t </p>", "<",
                                        "<html><head><title></title></head></html>" };
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        assert_int_equal(html(docs[i], &x), 0);
        assert_int_equal(x.n_blocks, 0);
        assert_null(x.title);
        extracted_release(&x);
    }
    assert_int_equal(extract_html(NULL, 0, &x, NULL), 0);
    assert_int_equal(x.n_blocks, 0);
    assert_int_equal(extract_html(NULL, 1, &x, NULL), -SAGE_EINVAL);
}

static void test_html_hostile(void **state)
{
    (void)state;
    struct extracted x;
    /* 100k nested divs, never closed. */
    size_t n = 100000, cap = n * 5 + 64, o = 0;
    char *doc = malloc(cap);
    assert_non_null(doc);
    o += (size_t)snprintf(doc, cap, "<p>top</p>");
    for (size_t i = 0; i < n; i++, o += 5)
        memcpy(doc + o, "<div>", 5);
    memcpy(doc + o, "deep", 5);
    assert_int_equal(html(doc, &x), 0);
    assert_true(has_text(&x, "top"));
    extracted_release(&x);
    /* The same nesting, closed, with inline elements and text at every level. */
    o = 0;
    for (size_t i = 0; i < 20000; i++, o += 6)
        memcpy(doc + o, "<b>x\n ", 6);
    memcpy(doc + o, "end", 4);
    assert_int_equal(html(doc, &x), 0);
    assert_true(has_text(&x, "x x x"));
    extracted_release(&x);
    free(doc);

    /* A 4 MiB attribute value. */
    size_t an = (size_t)4 << 20;
    doc = malloc(an + 64);
    assert_non_null(doc);
    o = (size_t)snprintf(doc, 64, "<p>before</p><p title=\"");
    memset(doc + o, 'A', an);
    o += an;
    memcpy(doc + o, "\">after</p>", 12);
    assert_int_equal(html(doc, &x), 0);
    assert_true(has_text(&x, "before"));
    assert_false(has_text(&x, "AAAA"));
    assert_all_clean(&x);
    extracted_release(&x);
    free(doc);

    /* Unterminated comment, script and tags. */
    assert_int_equal(html("<p>visible</p><!-- unterminated <p>hidden</p>", &x), 0);
    assert_true(has_text(&x, "visible"));
    assert_false(has_text(&x, "hidden"));
    extracted_release(&x);
    assert_int_equal(html("<p>visible</p><script>var s = '<p>hidden</p>'; unterminated", &x), 0);
    assert_true(has_text(&x, "visible"));
    assert_false(has_text(&x, "hidden"));
    extracted_release(&x);
    assert_int_equal(html("<p>visible<div title=\"never closed><h1>x", &x), 0);
    assert_true(has_text(&x, "visible"));
    extracted_release(&x);
    assert_int_equal(html("<title>no end<p>text", &x), 0);
    assert_all_clean(&x);
    extracted_release(&x);
    /* A huge heading is cut; every block carries at most the cut copy. */
    size_t hn = 1 << 20;
    doc = malloc(hn + 64);
    assert_non_null(doc);
    memcpy(doc, "<h1>", 4);
    memset(doc + 4, 'H', hn);
    memcpy(doc + 4 + hn, "</h1><p>a</p><p>b</p>", 22);
    assert_int_equal(html(doc, &x), 0);
    assert_int_equal(x.n_blocks, 1);
    assert_true(strlen(x.blocks[0].heading) <= 512);
    assert_true(strlen(x.title) <= 4096);
    extracted_release(&x);
    free(doc);
}

/* ---- PDF ---- */

struct membuf {
    uint8_t *p;
    size_t len, cap;
};

static cairo_status_t mb_write(void *closure, const unsigned char *data, unsigned int len)
{
    struct membuf *b = closure;
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + len)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p)
            return CAIRO_STATUS_NO_MEMORY;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
    return CAIRO_STATUS_SUCCESS;
}

/* A PDF of n_pages pages: page i (1-based) says "page<i> word<i>", except
 * that page blank (0: none) is left empty. */
static struct membuf make_pdf(int n_pages, int blank, const char *title)
{
    struct membuf b = { 0 };
    cairo_surface_t *s = cairo_pdf_surface_create_for_stream(mb_write, &b, 300, 200);
    assert_int_equal(cairo_surface_status(s), CAIRO_STATUS_SUCCESS);
    if (title)
        cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_TITLE, title);
    cairo_t *cr = cairo_create(s);
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, 14);
    for (int i = 1; i <= n_pages; i++) {
        if (i != blank) {
            char line[64];
            snprintf(line, sizeof(line), "page%d word%d", i, i);
            cairo_move_to(cr, 20, 50);
            cairo_show_text(cr, line);
            cairo_move_to(cr, 20, 80);
            cairo_show_text(cr, i % 2 ? "alpha bravo" : "charlie delta");
        }
        cairo_show_page(cr);
    }
    cairo_destroy(cr);
    cairo_surface_finish(s);
    assert_int_equal(cairo_surface_status(s), CAIRO_STATUS_SUCCESS);
    cairo_surface_destroy(s);
    assert_true(b.len > 100);
    return b;
}

/* A one-page PDF written by hand whose content shows one string of n bytes
 * ("word word ..."): poppler must hold it whole, in one allocation that no
 * allocator can serve from memory it mapped before. Caller frees. */
static uint8_t *make_long_string_pdf(size_t n, size_t *len)
{
    size_t cap = n + 2048, o = 0, off[6];
    uint8_t *p = malloc(cap);
    assert_non_null(p);
#define PUT(...) (o += (size_t)snprintf((char *)p + o, cap - o, __VA_ARGS__))
    PUT("%%PDF-1.4\n");
    off[1] = o;
    PUT("1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n");
    off[2] = o;
    PUT("2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n");
    off[3] = o;
    PUT("3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >> endobj\n");
    off[4] = o;
    PUT("4 0 obj << /Length %zu >> stream\nBT /F1 1 Tf 10 700 Td (", n + 29);
    for (size_t i = 0; i < n; i++)
        p[o++] = (uint8_t)(i % 5 == 4 ? ' ' : 'a' + i % 26);
    PUT(") Tj ET\nendstream endobj\n");
    off[5] = o;
    PUT("5 0 obj << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> endobj\n");
    size_t xref = o;
    PUT("xref\n0 6\n0000000000 65535 f \n");
    for (int i = 1; i <= 5; i++)
        PUT("%010zu 00000 n \n", off[i]);
    PUT("trailer << /Size 6 /Root 1 0 R >>\nstartxref\n%zu\n%%%%EOF\n", xref);
#undef PUT
    assert_true(o < cap);
    *len = o;
    return p;
}

static const struct pdf_limits default_limits = { .timeout_ms = 10000,
                                                  .max_memory = (size_t)512 << 20,
                                                  .max_pages = 1000 };

static int count_fds(void)
{
    return ut_count_other("/proc/self/fd", NULL, NULL, 0);
}

/* No child of ours is left, zombie or alive. */
static void assert_no_children(void)
{
    errno = 0;
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

static void test_pdf_document(void **state)
{
    (void)state;
    struct membuf pdf = make_pdf(4, 3, "Test  Title");
    struct extracted x;
    struct sage_err err = { 0 };
    int fds = count_fds();
    int rc = extract_pdf(pdf.p, pdf.len, &default_limits, &x, &err);
    if (rc < 0)
        print_message("extract_pdf: %s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_string_equal(x.title, "Test Title");
    assert_int_equal(x.n_pages, 4);
    assert_int_equal(x.n_ocr_pages, 1);
    assert_int_equal(x.n_blocks, 3);
    static const uint32_t pages[] = { 1, 2, 4 };
    for (size_t i = 0; i < 3; i++) {
        char w[32];
        assert_int_equal(x.blocks[i].page, pages[i]);
        assert_null(x.blocks[i].heading);
        snprintf(w, sizeof(w), "page%u word%u", pages[i], pages[i]);
        assert_non_null(strstr(x.blocks[i].text, w));
        assert_non_null(strstr(x.blocks[i].text, pages[i] % 2 ? "alpha bravo" : "charlie delta"));
    }
    assert_all_clean(&x);
    extracted_release(&x);
    assert_int_equal(count_fds(), fds);
    assert_no_children();

    /* max_pages stops early; no title metadata means no title. */
    struct pdf_limits lim = default_limits;
    lim.max_pages = 2;
    free(pdf.p);
    pdf = make_pdf(5, 0, NULL);
    assert_int_equal(extract_pdf(pdf.p, pdf.len, &lim, &x, &err), 0);
    assert_null(x.title);
    assert_int_equal(x.n_pages, 2);
    assert_int_equal(x.n_ocr_pages, 0);
    assert_int_equal(x.n_blocks, 2);
    assert_non_null(strstr(x.blocks[1].text, "page2"));
    extracted_release(&x);
    assert_no_children();
    free(pdf.p);
}

static void test_pdf_malformed(void **state)
{
    (void)state;
    struct extracted x;
    struct sage_err err = { 0 };
    int fds = count_fds();
    /* Random bytes behind a PDF header. */
    uint8_t junk[8192];
    memcpy(junk, "%PDF-1.4\n", 9);
    ut_fill(junk + 9, sizeof(junk) - 9, 7);
    assert_int_equal(extract_pdf(junk, sizeof(junk), &default_limits, &x, &err), -SAGE_ECORRUPT);
    assert_non_null(strstr(err.msg, "not a valid PDF: "));
    assert_int_equal(x.n_blocks, 0);
    assert_no_children();
    /* Empty input and plain text. */
    assert_int_equal(extract_pdf((const uint8_t *)"", 0, &default_limits, &x, &err), -SAGE_ECORRUPT);
    assert_int_equal(extract_pdf((const uint8_t *)"hello", 5, &default_limits, &x, &err),
                     -SAGE_ECORRUPT);
    /* A real PDF cut short: refused when too little is left, else whatever
     * poppler can recover, but never a crash of ours. */
    struct membuf pdf = make_pdf(3, 0, "T");
    memset(&err, 0, sizeof(err));
    assert_int_equal(extract_pdf(pdf.p, 200, &default_limits, &x, &err), -SAGE_ECORRUPT);
    assert_non_null(strstr(err.msg, "not a valid PDF"));
    for (size_t cut = pdf.len / 8; cut < pdf.len; cut += pdf.len / 8) {
        int rc = extract_pdf(pdf.p, cut, &default_limits, &x, &err);
        assert_true(rc == 0 || rc == -SAGE_ECORRUPT);
        if (rc == 0)
            assert_all_clean(&x);
        else
            assert_int_equal(x.n_blocks, 0);
        extracted_release(&x);
    }
    /* Damage in the middle of a real PDF. */
    for (size_t i = pdf.len / 3; i < pdf.len / 3 + 64 && i < pdf.len; i++)
        pdf.p[i] ^= 0x5a;
    int rc = extract_pdf(pdf.p, pdf.len, &default_limits, &x, &err);
    assert_true(rc == 0 || rc == -SAGE_ECORRUPT);
    extracted_release(&x);
    free(pdf.p);
    assert_int_equal(count_fds(), fds);
    assert_no_children();
}

static void test_pdf_timeout(void **state)
{
    (void)state;
    struct membuf pdf = make_pdf(200, 0, "Big");
    struct pdf_limits lim = default_limits;
    struct extracted x;
    struct sage_err err = { 0 };
    int fds = count_fds();
    lim.timeout_ms = 1;
    assert_int_equal(extract_pdf(pdf.p, pdf.len, &lim, &x, &err), -SAGE_ELIMIT);
    assert_string_equal(err.msg, "timed out after 1 ms");
    assert_int_equal(x.n_blocks, 0);
    assert_int_equal(x.n_pages, 0);
    assert_null(x.title);
    assert_no_children();
    assert_int_equal(count_fds(), fds);
    /* The same file with time enough. */
    assert_int_equal(extract_pdf(pdf.p, pdf.len, &default_limits, &x, &err), 0);
    assert_int_equal(x.n_pages, 200);
    assert_int_equal(x.n_blocks, 200);
    extracted_release(&x);
    assert_no_children();
    free(pdf.p);
}

static void test_pdf_memory_limit(void **state)
{
    (void)state;
    size_t len;
    uint8_t *pdf = make_long_string_pdf((size_t)8 << 20, &len);
    struct pdf_limits lim = default_limits;
    struct extracted x;
    struct sage_err err = { 0 };
    /* 1 MiB of headroom for an 8 MiB string. */
    lim.max_memory = (size_t)1 << 20;
    assert_int_equal(extract_pdf(pdf, len, &lim, &x, &err), -SAGE_ELIMIT);
    assert_string_equal(err.msg, "pdf parser exceeded the memory limit of 1048576 bytes");
    assert_int_equal(x.n_blocks, 0);
    assert_no_children();
    free(pdf);
    /* The same shape, small, with room enough: the hand-made file is sound. */
    pdf = make_long_string_pdf(5000, &len);
    lim.max_memory = (size_t)256 << 20;
    assert_int_equal(extract_pdf(pdf, len, &lim, &x, &err), 0);
    assert_int_equal(x.n_blocks, 1);
    assert_non_null(strstr(x.blocks[0].text, "abcd fghi"));
    extracted_release(&x);
    assert_no_children();
    free(pdf);
}

static void test_pdf_bad_limits(void **state)
{
    (void)state;
    struct extracted x;
    struct pdf_limits lim = default_limits;
    assert_int_equal(extract_pdf((const uint8_t *)"%PDF", 4, NULL, &x, NULL), -SAGE_EINVAL);
    lim.timeout_ms = 0;
    assert_int_equal(extract_pdf((const uint8_t *)"%PDF", 4, &lim, &x, NULL), -SAGE_EINVAL);
    lim = default_limits;
    lim.max_pages = 0;
    assert_int_equal(extract_pdf((const uint8_t *)"%PDF", 4, &lim, &x, NULL), -SAGE_EINVAL);
    assert_int_equal(extract_pdf(NULL, 4, &default_limits, &x, NULL), -SAGE_EINVAL);
    assert_no_children();
}

/* cairo's toy font API leaves a fontconfig pattern cached for the life of
 * the process; tell LeakSanitizer (when present) it is not ours. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libfontconfig.so\n";
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_basic),
        cmocka_unit_test(test_add_invalid_utf8),
        cmocka_unit_test(test_add_nfc),
        cmocka_unit_test(test_add_drops_whitespace),
        cmocka_unit_test(test_add_limit),
        cmocka_unit_test(test_add_many_blocks),
        cmocka_unit_test(test_set_title),
        cmocka_unit_test(test_oom),
        cmocka_unit_test(test_html_document),
        cmocka_unit_test(test_html_separators),
        cmocka_unit_test(test_html_title_fallback),
        cmocka_unit_test(test_html_heading_levels),
        cmocka_unit_test(test_html_encodings),
        cmocka_unit_test(test_html_invalid_bytes),
        cmocka_unit_test(test_html_empty),
        cmocka_unit_test(test_html_hostile),
        cmocka_unit_test(test_pdf_document),
        cmocka_unit_test(test_pdf_malformed),
        cmocka_unit_test(test_pdf_timeout),
        cmocka_unit_test(test_pdf_memory_limit),
        cmocka_unit_test(test_pdf_bad_limits),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    cairo_debug_reset_static_data();    /* cairo's font caches, for LeakSanitizer */
    return rc;
}
