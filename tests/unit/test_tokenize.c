/* The tokenizer: word splitting (letters, digits and marks of any script;
 * punctuation and invalid UTF-8 separate words), normalization (case
 * folding, NFKC, accents stripped), stop words that keep their position,
 * byte ranges into the input, the length cap, Snowball stemmers, and the
 * callback's early stop. */
#include "util.h"

#include "tokenize.h"

#define TOKS_MAX 64

struct tok {
    char term[SAGE_TERM_MAX * 4 + 1];
    uint32_t pos;
    size_t off, len;
};

struct toks {
    struct tok t[TOKS_MAX];
    size_t n;
    int stop_after;     /* > 0: return 7 after this many tokens */
};

static int collect(void *ctx, const struct sage_token *t)
{
    struct toks *c = ctx;
    assert_true(c->n < TOKS_MAX);
    assert_int_equal(strlen(t->term), t->term_len);
    assert_true(t->term_len > 0 && t->term_len < sizeof(c->t[0].term));
    memcpy(c->t[c->n].term, t->term, t->term_len + 1);
    c->t[c->n].pos = t->pos;
    c->t[c->n].off = t->off;
    c->t[c->n].len = t->len;
    c->n++;
    return c->stop_after && c->n == (size_t)c->stop_after ? 7 : 0;
}

/* Tokenizes s (strlen) with opts into c; returns sage_tokenize's value. */
static int run(const struct sage_tokenizer_opts *opts, const char *s, size_t len,
               struct toks *c)
{
    struct sage_tokenizer *tk = NULL;
    struct sage_err err = { 0 };
    int rc = sage_tokenizer_new(opts, &tk, &err);
    if (rc != 0)
        fail_msg("tokenizer: %s", sage_err_msg(&err, rc));
    rc = sage_tokenize(tk, s, len, collect, c);
    sage_tokenizer_free(tk);
    return rc;
}

/* Asserts that s tokenizes (no stemmer) to the space-separated terms in want. */
static void expect_terms(const struct sage_tokenizer_opts *opts, const char *s,
                         const char *want)
{
    struct toks c = { 0 };
    char got[1024] = "";
    size_t o = 0;
    assert_int_equal(run(opts, s, strlen(s), &c), 0);
    for (size_t i = 0; i < c.n; i++)
        o += (size_t)snprintf(got + o, sizeof(got) - o, "%s%s", i ? " " : "", c.t[i].term);
    if (strcmp(got, want) != 0)
        fail_msg("'%s': got '%s', want '%s'", s, got, want);
}

static void test_ascii_words(void **state)
{
    (void)state;
    struct toks c = { 0 };
    const char *s = "Hello,  world:the_quick-brown fox.";
    assert_int_equal(run(NULL, s, strlen(s), &c), 0);
    assert_int_equal(c.n, 6);
    static const char *const want[] = { "hello", "world", "the", "quick", "brown", "fox" };
    for (size_t i = 0; i < 6; i++) {
        assert_string_equal(c.t[i].term, want[i]);
        assert_int_equal(c.t[i].pos, i);
        /* the byte range is the original word, case and all */
        assert_int_equal(c.t[i].len, strlen(want[i]));
        assert_true(strncasecmp(s + c.t[i].off, want[i], c.t[i].len) == 0);
    }
    assert_int_equal(c.t[0].off, 0);
    assert_int_equal(c.t[1].off, 8);
    assert_int_equal(c.t[5].off, 30);
}

static void test_case_folding(void **state)
{
    (void)state;
    expect_terms(NULL, "HeLLo WORLD ÉCOLE Straße ΣΟΦΊΑ", "hello world ecole strasse σοφια");
}

static void test_accents_stripped(void **state)
{
    (void)state;
    expect_terms(NULL, "café naïve Ångström résumé", "cafe naive angstrom resume");
    /* decomposed input: e + U+0301 combining acute */
    expect_terms(NULL, "cafe\xcc\x81 x", "cafe x");
}

static void test_nfkc(void **state)
{
    (void)state;
    /* U+FB01 ligature, fullwidth letters and digits, superscript two */
    expect_terms(NULL, "\xef\xac\x81ne \xef\xbc\xa1\xef\xbd\x82\xef\xbd\x83 "
                       "\xef\xbc\x91\xef\xbc\x92 x\xc2\xb2",
                 "fine abc 12 x2");
}

static void test_scripts_kept(void **state)
{
    (void)state;
    /* CJK has no spaces: a run of ideographs is one word; Greek and Cyrillic
     * letters are word characters; CJK punctuation separates */
    expect_terms(NULL, "中文检索。日本語 αβγ Привет", "中文检索 日本語 αβγ привет");
}

static void test_digits(void **state)
{
    (void)state;
    expect_terms(NULL, "version 2024, v1.2.3 and 42nd 3,14", "version 2024 v1 2 3 and 42nd 3 14");
}

static void test_punctuation_splits(void **state)
{
    (void)state;
    expect_terms(NULL, "don't e-mail foo@bar.com a/b (x) [y] {z} \"q\" <t>",
                 "don t e mail foo bar com a b x y z q t");
    expect_terms(NULL, "...!!!---", "");
    expect_terms(NULL, "   \t\n  ", "");
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    struct toks c = { 0 };
    /* a stray continuation byte, a truncated 2-byte sequence, an overlong
     * encoding, a surrogate, 0xff, and a truncated 3-byte sequence at the end */
    static const char s[] = "ab\x80" "cd\xc3" "ef\xc0\xaf" "gh\xed\xa0\x80" "ij\xff" "kl\xe4\xb8";
    assert_int_equal(run(NULL, s, sizeof(s) - 1, &c), 0);
    static const char *const want[] = { "ab", "cd", "ef", "gh", "ij", "kl" };
    assert_int_equal(c.n, 6);
    for (size_t i = 0; i < 6; i++) {
        assert_string_equal(c.t[i].term, want[i]);
        assert_int_equal(c.t[i].len, 2);
        assert_memory_equal(s + c.t[i].off, want[i], 2);
    }
    /* only invalid bytes, and a lone lead byte */
    memset(&c, 0, sizeof(c));
    assert_int_equal(run(NULL, "\xff\xfe\x80\x80", 4, &c), 0);
    assert_int_equal(c.n, 0);
    assert_int_equal(run(NULL, "\xe4", 1, &c), 0);
    assert_int_equal(c.n, 0);
}

static void test_len_not_strlen(void **state)
{
    (void)state;
    struct toks c = { 0 };
    /* the length bounds the input, NUL bytes included: NUL separates */
    assert_int_equal(run(NULL, "abc\0def ghi", 7, &c), 0);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.t[0].term, "abc");
    assert_string_equal(c.t[1].term, "def");
    memset(&c, 0, sizeof(c));
    assert_int_equal(run(NULL, "abcdef", 3, &c), 0);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.t[0].term, "abc");
}

static void test_stopwords_keep_positions(void **state)
{
    (void)state;
    struct sage_tokenizer_opts o = { .stopwords = sage_stopwords_english,
                                     .n_stopwords = sage_n_stopwords_english };
    struct toks c = { 0 };
    const char *s = "The cat IS on the mat, and it was THERE";
    assert_int_equal(sage_n_stopwords_english, 33);
    assert_int_equal(run(&o, s, strlen(s), &c), 0);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.t[0].term, "cat");
    assert_int_equal(c.t[0].pos, 1);
    assert_int_equal(c.t[0].off, 4);
    assert_string_equal(c.t[1].term, "mat");
    assert_int_equal(c.t[1].pos, 5);
    assert_int_equal(c.t[1].off, 18);

    /* stop words are matched after normalization, before stemming */
    static const char *const custom[] = { "cafe", "running" };
    struct sage_tokenizer_opts o2 = { .stemmer = "english", .stopwords = custom, .n_stopwords = 2 };
    memset(&c, 0, sizeof(c));
    s = "CAFÉ runs RUNNING ran";
    assert_int_equal(run(&o2, s, strlen(s), &c), 0);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.t[0].term, "run");
    assert_int_equal(c.t[0].pos, 1);
    assert_string_equal(c.t[1].term, "ran");
    assert_int_equal(c.t[1].pos, 3);
}

static void test_offsets_non_ascii(void **state)
{
    (void)state;
    struct toks c = { 0 };
    const char *s = "« Ｆｏｏ » café—bar";
    assert_int_equal(run(NULL, s, strlen(s), &c), 0);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.t[0].term, "foo");
    assert_int_equal(c.t[0].off, 3);
    assert_int_equal(c.t[0].len, 9);    /* three fullwidth letters */
    assert_memory_equal(s + c.t[0].off, "Ｆｏｏ", 9);
    assert_string_equal(c.t[1].term, "cafe");
    assert_memory_equal(s + c.t[1].off, "café", c.t[1].len);
    assert_int_equal(c.t[1].len, 5);
    assert_string_equal(c.t[2].term, "bar");
    assert_int_equal(c.t[2].off, strlen(s) - 3);
    for (size_t i = 0; i < c.n; i++)
        assert_int_equal(c.t[i].pos, i);
}

static void test_long_words_dropped(void **state)
{
    (void)state;
    char s[1024];
    struct toks c = { 0 };
    /* 64 letters are a term, 65 are dropped (and take no position) */
    memset(s, 'a', 64);
    snprintf(s + 64, sizeof(s) - 64, " x ");
    memset(s + 67, 'b', 65);
    snprintf(s + 132, sizeof(s) - 132, " y");
    assert_int_equal(run(NULL, s, strlen(s), &c), 0);
    assert_int_equal(c.n, 3);
    assert_int_equal(strlen(c.t[0].term), 64);
    assert_string_equal(c.t[1].term, "x");
    assert_string_equal(c.t[2].term, "y");
    assert_int_equal(c.t[2].off, 133);

    /* the cap counts characters, not bytes: 64 two-byte letters are kept,
     * 65 are dropped as the ASCII ones are */
    size_t o = 0;
    for (int i = 0; i < 64; i++)
        o += (size_t)snprintf(s + o, sizeof(s) - o, "é");
    o += (size_t)snprintf(s + o, sizeof(s) - o, " ");
    for (int i = 0; i < 65; i++)
        o += (size_t)snprintf(s + o, sizeof(s) - o, "ж");
    snprintf(s + o, sizeof(s) - o, " z");
    memset(&c, 0, sizeof(c));
    assert_int_equal(run(NULL, s, strlen(s), &c), 0);
    assert_int_equal(c.n, 2);
    assert_int_equal(strlen(c.t[0].term), 64);
    assert_int_equal(c.t[0].term[0], 'e');
    assert_string_equal(c.t[1].term, "z");

    /* a huge word costs no crash */
    size_t big = 1 << 20;
    char *h = malloc(big);
    assert_non_null(h);
    for (size_t i = 0; i + 1 < big; i += 2)
        memcpy(h + i, "é", 2);
    memset(&c, 0, sizeof(c));
    assert_int_equal(run(NULL, h, big, &c), 0);
    assert_int_equal(c.n, 0);
    free(h);
}

static void test_stem_english(void **state)
{
    (void)state;
    struct sage_tokenizer_opts o = { .stemmer = "english", .stopwords = NULL, .n_stopwords = 0 };
    expect_terms(&o, "running connections Connected generously cats ponies",
                 "run connect connect generous cat poni");
    /* accents go before stemming */
    expect_terms(&o, "CAFÉS", "cafe");
}

static void test_stem_porter(void **state)
{
    (void)state;
    struct sage_tokenizer_opts o = { .stemmer = "porter", .stopwords = NULL, .n_stopwords = 0 };
    /* porter and english differ on "generously" */
    expect_terms(&o, "running connections generously", "run connect gener");
}

static void test_no_stemmer(void **state)
{
    (void)state;
    struct sage_tokenizer_opts o = { .stemmer = NULL, .stopwords = NULL, .n_stopwords = 0 };
    expect_terms(NULL, "running connections", "running connections");
    expect_terms(&o, "running connections", "running connections");
}

static void test_bad_stemmer(void **state)
{
    (void)state;
    struct sage_tokenizer_opts o = { .stemmer = "klingon", .stopwords = NULL, .n_stopwords = 0 };
    struct sage_tokenizer *tk = (struct sage_tokenizer *)&o;
    struct sage_err err = { 0 };
    assert_int_equal(sage_tokenizer_new(&o, &tk, &err), -SAGE_EINVAL);
    assert_null(tk);
    assert_int_equal(err.code, SAGE_EINVAL);
    assert_non_null(strstr(err.msg, "klingon"));
    assert_int_equal(sage_tokenizer_new(&o, &tk, NULL), -SAGE_EINVAL);
    sage_tokenizer_free(NULL);
}

static void test_callback_stops(void **state)
{
    (void)state;
    struct toks c = { .stop_after = 2 };
    const char *s = "one two three four";
    assert_int_equal(run(NULL, s, strlen(s), &c), 7);
    assert_int_equal(c.n, 2);
    /* stopping at the last word (no separator after it) */
    memset(&c, 0, sizeof(c));
    c.stop_after = 4;
    assert_int_equal(run(NULL, s, strlen(s), &c), 7);
    assert_int_equal(c.n, 4);
}

static void test_empty(void **state)
{
    (void)state;
    struct toks c = { 0 };
    assert_int_equal(run(NULL, "", 0, &c), 0);
    assert_int_equal(c.n, 0);
    assert_int_equal(run(NULL, "x", 0, &c), 0);
    assert_int_equal(c.n, 0);
    assert_int_equal(run(NULL, "x", 1, &c), 0);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.t[0].off, 0);
    assert_int_equal(c.t[0].len, 1);
}

static void test_reuse(void **state)
{
    (void)state;
    /* one tokenizer, many texts: no state leaks from one call to the next */
    struct sage_tokenizer *tk = NULL;
    struct sage_tokenizer_opts o = { .stemmer = "english", .stopwords = sage_stopwords_english,
                                     .n_stopwords = sage_n_stopwords_english };
    assert_int_equal(sage_tokenizer_new(&o, &tk, NULL), 0);
    for (int i = 0; i < 3; i++) {
        struct toks c = { 0 };
        assert_int_equal(sage_tokenize(tk, "The runners", 11, collect, &c), 0);
        assert_int_equal(c.n, 1);
        assert_string_equal(c.t[0].term, "runner");
        assert_int_equal(c.t[0].pos, 1);
        memset(&c, 0, sizeof(c));
        assert_int_equal(sage_tokenize(tk, "é", 2, collect, &c), 0);
        assert_int_equal(c.n, 1);
        assert_string_equal(c.t[0].term, "e");
        assert_int_equal(c.t[0].pos, 0);
    }
    sage_tokenizer_free(tk);
}

static void test_oom(void **state)
{
    (void)state;
    struct sage_tokenizer_opts o = { .stemmer = "english", .stopwords = sage_stopwords_english,
                                     .n_stopwords = sage_n_stopwords_english };
    /* every allocation of the constructor may fail; nothing leaks */
    for (long i = 0;; i++) {
        struct sage_tokenizer *tk = NULL;
        ut_oom_arm(i);
        int rc = sage_tokenizer_new(&o, &tk, NULL);
        int failed = ut_oom_state()->failed;
        sage_tokenizer_free(tk);
        assert_int_equal(ut_oom_disarm(), 0);
        if (!failed) {
            assert_int_equal(rc, 0);
            break;
        }
        assert_int_equal(rc, -SAGE_ENOMEM);
        assert_null(tk);
        assert_true(i < 100);
    }
}

/* The term cache changes nothing: the same tokens with no cache, a large
 * one and a one-slot one (every word evicts the last), over text with stop
 * words, repeats, accents, words too long to cache and too long to index. */
static void test_cache_same_tokens(void **state)
{
    (void)state;
    static const char text[] =
        "The runners were running; the RUNNERS ran. Caf\xc3\xa9 caf\xc3\xa9 CAFE\xcc\x81 "
        "and and of internationalizationinternationalizationx "
        "awordwellbeyondthirtybyteslongrepeated awordwellbeyondthirtybyteslongrepeated "
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa "
        "\xef\xac\x81les \xef\xac\x81les the the It it IT generously generous \xe2\x91\xa0 42 42";
    struct toks *want = calloc(1, sizeof(*want)), *got = calloc(1, sizeof(*got));
    assert_non_null(want);
    assert_non_null(got);
    for (unsigned bits = 0; bits <= 16; bits += (bits ? 15 : 1)) {
        struct sage_tokenizer *tk = NULL;
        struct sage_tokenizer_opts o = { .stemmer = "english", .stopwords = sage_stopwords_english,
                                         .n_stopwords = sage_n_stopwords_english,
                                         .cache_bits = bits };
        assert_int_equal(sage_tokenizer_new(&o, &tk, NULL), 0);
        struct toks *c = bits ? got : want;
        for (int round = 0; round < 2; round++) {   /* the second round hits */
            memset(c, 0, sizeof(*c));
            assert_int_equal(sage_tokenize(tk, text, sizeof(text) - 1, collect, c), 0);
            if (bits) {
                assert_int_equal(got->n, want->n);
                assert_memory_equal(got->t, want->t, want->n * sizeof(want->t[0]));
            }
        }
        sage_tokenizer_free(tk);
    }
    assert_true(want->n > 15);
    free(want);
    free(got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ascii_words),
        cmocka_unit_test(test_case_folding),
        cmocka_unit_test(test_accents_stripped),
        cmocka_unit_test(test_nfkc),
        cmocka_unit_test(test_scripts_kept),
        cmocka_unit_test(test_digits),
        cmocka_unit_test(test_punctuation_splits),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_len_not_strlen),
        cmocka_unit_test(test_stopwords_keep_positions),
        cmocka_unit_test(test_offsets_non_ascii),
        cmocka_unit_test(test_long_words_dropped),
        cmocka_unit_test(test_stem_english),
        cmocka_unit_test(test_stem_porter),
        cmocka_unit_test(test_no_stemmer),
        cmocka_unit_test(test_bad_stemmer),
        cmocka_unit_test(test_callback_stops),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_reuse),
        cmocka_unit_test(test_oom),
        cmocka_unit_test(test_cache_same_tokens),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
