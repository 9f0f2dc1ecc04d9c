/* msgpack <-> JSON: round trips of every JSON type, deterministic key order,
 * hostile inputs (huge counts and lengths in a few bytes, truncation,
 * trailing bytes, bin/ext, non-string keys, bad UTF-8, deep nesting) and
 * out-of-memory in the encoder. */
#include "util.h"

#include "mpjson.h"

static const char doc_text[] =
    "{\"name\": \"h\\u00e9llo w\\u00f6rld \\u4e2d \\ud83d\\ude00\", \"empty\": \"\","
    " \"i\": -5, \"zero\": 0, \"pos\": 127, \"u8\": 200, \"u16\": 65535, \"u32\": 4294967295,"
    " \"max\": 9223372036854775807, \"min\": -9223372036854775808, \"neg\": -33,"
    " \"r\": 1.5, \"tiny\": 1e-300, \"negr\": -2.25e10, \"t\": true, \"f\": false, \"n\": null,"
    " \"a\": [1, \"x\", [], {}, [null, [true]]], \"nul\": \"a\\u0000b\","
    " \"o\": {\"deep\": {\"x\": [null, {\"y\": \"z\"}]}, \"\": 1},"
    " \"long\": \"" "0123456789012345678901234567890123456789012345678901234567890123456789"
    "0123456789012345678901234567890123456789012345678901234567890123456789"
    "0123456789012345678901234567890123456789012345678901234567890123456789"
    "0123456789012345678901234567890123456789012345678901234567890123456789\"}";

static json_t *load(const char *text)
{
    json_error_t je;
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!v)
        fail_msg("bad test JSON: %s", je.text);
    return v;
}

/* Encodes v, decodes the bytes and checks the result equals v. */
static void roundtrip(const json_t *v)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    json_t *back = NULL;
    struct sage_err err = { 0 };
    int rc = sage_mpjson_encode(v, &buf, &len, &err);
    if (rc != 0)
        fail_msg("encode: %s", sage_err_msg(&err, rc));
    assert_true(len > 0);
    rc = sage_mpjson_decode(buf, len, &back, &err);
    if (rc != 0)
        fail_msg("decode: %s", sage_err_msg(&err, rc));
    if (!json_equal((json_t *)v, back)) {
        char *a = json_dumps(v, JSON_ENCODE_ANY), *b = json_dumps(back, JSON_ENCODE_ANY);
        fail_msg("round trip changed %s into %s", a, b);
    }
    json_decref(back);
    sage_free(buf);
}

static void test_roundtrip_all_types(void **state)
{
    (void)state;
    json_t *doc = load(doc_text);
    roundtrip(doc);
    /* every member alone, too, and some top-level scalars */
    const char *k;
    json_t *v;
    json_object_foreach(doc, k, v)
        roundtrip(v);
    static const char *const scalars[] = { "null", "true", "false", "0", "-1", "\"\"", "[]",
                                           "{}", "0.5", "-9223372036854775808" };
    for (size_t i = 0; i < sizeof(scalars) / sizeof(*scalars); i++) {
        json_t *s = load(scalars[i]);
        roundtrip(s);
        json_decref(s);
    }
    /* types survive: an integer stays an integer, a real a real */
    uint8_t *buf;
    size_t len;
    json_t *back;
    json_t *two = json_pack("[i, f]", 2, 2.0);
    assert_int_equal(sage_mpjson_encode(two, &buf, &len, NULL), 0);
    assert_int_equal(sage_mpjson_decode(buf, len, &back, NULL), 0);
    assert_true(json_is_integer(json_array_get(back, 0)));
    assert_true(json_is_real(json_array_get(back, 1)));
    json_decref(back);
    json_decref(two);
    sage_free(buf);
    json_decref(doc);
}

/* A long array and a big object, to cross msgpack's 16- and 32-bit headers. */
static void test_roundtrip_large_containers(void **state)
{
    (void)state;
    json_t *a = json_array(), *o = json_object();
    char key[32];
    for (int i = 0; i < 70000; i++)
        json_array_append_new(a, json_integer(i * 3 - 1000));
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof(key), "k%05d", 299 - i);
        json_object_set_new(o, key, json_stringn("v\0w", 3));
    }
    json_object_set(o, "array", a);
    roundtrip(a);
    roundtrip(o);
    json_decref(a);
    json_decref(o);
}

static void test_key_order_is_deterministic(void **state)
{
    (void)state;
    json_t *a = load("{\"zeta\": 1, \"alpha\": {\"y\": 2, \"b\": 3}, \"mid\": [{\"q\": 1, \"p\": 2}]}");
    json_t *b = load("{\"mid\": [{\"p\": 2, \"q\": 1}], \"alpha\": {\"b\": 3, \"y\": 2}, \"zeta\": 1}");
    uint8_t *ba, *bb;
    size_t la, lb;
    assert_int_equal(sage_mpjson_encode(a, &ba, &la, NULL), 0);
    assert_int_equal(sage_mpjson_encode(b, &bb, &lb, NULL), 0);
    assert_int_equal(la, lb);
    assert_memory_equal(ba, bb, la);
    sage_free(ba);
    sage_free(bb);
    json_decref(a);
    json_decref(b);

    /* and the order is bytewise ascending, whatever the insertion order */
    json_t *c = json_object();
    json_object_set_new(c, "b", json_integer(1));
    json_object_set_new(c, "a", json_integer(2));
    json_object_set_new(c, "B", json_true());
    static const uint8_t want[] = { 0x83, 0xa1, 'B', 0xc3, 0xa1, 'a', 0x02, 0xa1, 'b', 0x01 };
    assert_int_equal(sage_mpjson_encode(c, &ba, &la, NULL), 0);
    assert_int_equal(la, sizeof(want));
    assert_memory_equal(ba, want, la);
    sage_free(ba);
    json_decref(c);
}

static void test_encode_refusals(void **state)
{
    (void)state;
    struct sage_err err = { 0 };
    uint8_t *buf = (uint8_t *)&err;
    size_t len = 99;
    /* nesting beyond what the decoder accepts back */
    json_t *v = json_array(), *inner = v;
    for (int i = 0; i < 100; i++) {
        json_t *next = json_array();
        json_array_append_new(inner, next);
        inner = next;
    }
    assert_int_equal(sage_mpjson_encode(v, &buf, &len, &err), -SAGE_EINVAL);
    assert_null(buf);
    assert_int_equal(len, 0);
    json_decref(v);
    /* a key with a NUL inside */
    v = json_object();
    json_object_setn_new(v, "a\0b", 3, json_true());
    assert_int_equal(sage_mpjson_encode(v, &buf, &len, &err), -SAGE_EINVAL);
    assert_null(buf);
    json_decref(v);
}

/* ---- hostile input ---- */

static void expect_refused(const char *what, const uint8_t *p, size_t len)
{
    json_t *v = (json_t *)p;
    struct sage_err err = { 0 };
    int rc = sage_mpjson_decode(p, len, &v, &err);
    if (rc != -SAGE_ECORRUPT) {
        char *s = v ? json_dumps(v, JSON_ENCODE_ANY) : NULL;
        fail_msg("%s: rc %d, decoded %s", what, rc, s ? s : "nothing");
    }
    assert_null(v);
    assert_int_equal(err.code, SAGE_ECORRUPT);
}

#define REFUSED(what, ...) do { \
        static const uint8_t in_[] = { __VA_ARGS__ }; \
        expect_refused(what, in_, sizeof(in_)); \
    } while (0)

static void test_huge_claims(void **state)
{
    (void)state;
    REFUSED("array32 of 2^32-1 in 5 bytes", 0xdd, 0xff, 0xff, 0xff, 0xff);
    REFUSED("map32 of 2^32-1 in 5 bytes", 0xdf, 0xff, 0xff, 0xff, 0xff);
    REFUSED("array16 of 65535 holding 3", 0xdc, 0xff, 0xff, 0xc0, 0xc0, 0xc0);
    REFUSED("map16 of 65535 holding 1", 0xde, 0xff, 0xff, 0xa1, 'k', 0xc0);
    REFUSED("str32 of 4 GB", 0xdb, 0xff, 0xff, 0xff, 0xff, 'a', 'b', 'c');
    REFUSED("str16 of 64 KB", 0xda, 0xff, 0xff, 'a');
    REFUSED("str8 of 255", 0xd9, 0xff, 'a');
    REFUSED("fixstr of 31 holding 2", 0xbf, 'a', 'b');
    REFUSED("array32 inside a map", 0x81, 0xa1, 'k', 0xdd, 0x7f, 0xff, 0xff, 0xff, 0x01);
    REFUSED("fixarray of 15 holding 14", 0x9f, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13);
    /* the length bytes themselves cut short */
    REFUSED("array32 header cut", 0xdd, 0x00, 0x00);
    REFUSED("str32 header cut", 0xdb, 0x00);
    REFUSED("float64 cut", 0xcb, 0x3f, 0xf0);
    REFUSED("uint64 cut", 0xcf, 0x00, 0x00, 0x00);
}

static void test_truncated_at_every_length(void **state)
{
    (void)state;
    json_t *doc = load(doc_text);
    uint8_t *buf;
    size_t len;
    assert_int_equal(sage_mpjson_encode(doc, &buf, &len, NULL), 0);
    for (size_t l = 0; l < len; l++) {
        /* a private copy of exactly l bytes, so ASan sees any overread */
        uint8_t *cut = malloc(l ? l : 1);
        assert_non_null(cut);
        memcpy(cut, buf, l);
        json_t *v = NULL;
        if (sage_mpjson_decode(cut, l, &v, NULL) != -SAGE_ECORRUPT)
            fail_msg("prefix of %zu of %zu bytes accepted", l, len);
        assert_null(v);
        free(cut);
    }
    sage_free(buf);
    json_decref(doc);
}

static void test_trailing_bytes(void **state)
{
    (void)state;
    REFUSED("two nils", 0xc0, 0xc0);
    REFUSED("int then zero", 0x01, 0x00);
    REFUSED("map then nil", 0x81, 0xa1, 'k', 0x01, 0xc0);
    json_t *doc = load(doc_text);
    uint8_t *buf;
    size_t len;
    assert_int_equal(sage_mpjson_encode(doc, &buf, &len, NULL), 0);
    uint8_t *more = malloc(len + 1);
    assert_non_null(more);
    memcpy(more, buf, len);
    more[len] = 0;
    expect_refused("document and a zero", more, len + 1);
    free(more);
    sage_free(buf);
    json_decref(doc);
}

static void test_unsupported_types(void **state)
{
    (void)state;
    REFUSED("bin8", 0xc4, 0x01, 0x00);
    REFUSED("bin16", 0xc5, 0x00, 0x01, 0x00);
    REFUSED("bin32", 0xc6, 0x00, 0x00, 0x00, 0x01, 0x00);
    REFUSED("ext8", 0xc7, 0x01, 0x05, 0x00);
    REFUSED("ext16", 0xc8, 0x00, 0x01, 0x05, 0x00);
    REFUSED("ext32", 0xc9, 0x00, 0x00, 0x00, 0x01, 0x05, 0x00);
    REFUSED("fixext1", 0xd4, 0x05, 0x00);
    REFUSED("fixext2", 0xd5, 0x05, 0x00, 0x00);
    REFUSED("fixext4", 0xd6, 0x05, 0x00, 0x00, 0x00, 0x00);
    REFUSED("fixext8", 0xd7, 0x05, 0, 0, 0, 0, 0, 0, 0, 0);
    REFUSED("fixext16", 0xd8, 0x05, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    REFUSED("timestamp ext", 0xd6, 0xff, 0x00, 0x00, 0x00, 0x00);
    REFUSED("never used 0xc1", 0xc1);
    REFUSED("bin inside an array", 0x92, 0x01, 0xc4, 0x00);
    REFUSED("ext as a map value", 0x81, 0xa1, 'k', 0xd4, 0x01, 0x00);
    REFUSED("uint64 above INT64_MAX", 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
    REFUSED("float64 NaN", 0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0);
    REFUSED("float64 infinity", 0xcb, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0);
    REFUSED("float32 NaN", 0xca, 0x7f, 0xc0, 0x00, 0x00);
}

static void test_map_keys(void **state)
{
    (void)state;
    REFUSED("integer key", 0x81, 0x01, 0x01);
    REFUSED("nil key", 0x81, 0xc0, 0x01);
    REFUSED("boolean key", 0x81, 0xc3, 0x01);
    REFUSED("array key", 0x81, 0x91, 0xa1, 'k', 0x01);
    REFUSED("map key", 0x81, 0x80, 0x01);
    REFUSED("float key", 0x81, 0xcb, 0, 0, 0, 0, 0, 0, 0, 0, 0x01);
    REFUSED("second key an integer", 0x82, 0xa1, 'a', 0x01, 0x02, 0x01);
    REFUSED("key with a NUL", 0x81, 0xa3, 'a', 0x00, 'b', 0x01);
    REFUSED("key of invalid UTF-8", 0x81, 0xa2, 0xc3, 0x28, 0x01);
    REFUSED("nested bad key", 0x81, 0xa1, 'o', 0x81, 0x05, 0x01);
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    REFUSED("broken two-byte sequence", 0xa2, 0xc3, 0x28);
    REFUSED("lone continuation byte", 0xa1, 0x80);
    REFUSED("overlong NUL", 0xa2, 0xc0, 0x80);
    REFUSED("overlong slash", 0xa3, 0xe0, 0x80, 0xaf);
    REFUSED("UTF-16 surrogate", 0xa3, 0xed, 0xa0, 0x80);
    REFUSED("beyond U+10FFFF", 0xa4, 0xf4, 0x90, 0x80, 0x80);
    REFUSED("0xff byte", 0xa1, 0xff);
    REFUSED("cut four-byte sequence", 0xa3, 0xf0, 0x9f, 0x98);
    REFUSED("bad string in an array", 0x92, 0xa1, 'a', 0xa1, 0xfe);
    REFUSED("bad str8", 0xd9, 0x02, 0xc3, 0x28);
    /* the valid neighbours pass */
    static const uint8_t ok[] = { 0xa4, 0xf0, 0x9f, 0x98, 0x80 };
    json_t *v = NULL;
    assert_int_equal(sage_mpjson_decode(ok, sizeof(ok), &v, NULL), 0);
    assert_string_equal(json_string_value(v), "\xf0\x9f\x98\x80");
    json_decref(v);
}

/* n nested one-element arrays around a nil. */
static uint8_t *nested(size_t n, size_t *len)
{
    uint8_t *p = malloc(n + 1);
    assert_non_null(p);
    memset(p, 0x91, n);
    p[n] = 0xc0;
    *len = n + 1;
    return p;
}

/* JSON of n nested one-element arrays around null. */
static json_t *nested_json(size_t n)
{
    json_t *v = json_null();
    for (size_t i = 0; i < n; i++) {
        json_t *a = json_array();
        json_array_append_new(a, v);
        v = a;
    }
    return v;
}

static void test_deep_nesting(void **state)
{
    (void)state;
    size_t len;
    json_t *v = NULL;
    uint8_t *buf;
    /* the deepest the encoder writes comes back, and one more level is
     * refused on both sides */
    json_t *deep = nested_json(32);
    roundtrip(deep);
    json_decref(deep);
    deep = nested_json(33);
    assert_int_equal(sage_mpjson_encode(deep, &buf, &len, NULL), -SAGE_EINVAL);
    json_decref(deep);
    uint8_t *p = nested(33, &len);
    assert_true(sage_mpjson_decode(p, len, &v, NULL) < 0);
    assert_null(v);
    free(p);
    /* deeper than 40 is refused, however deep. (msgpack-c reports its full
     * parse stack as NOMEM, which mpjson passes on as -SAGE_ENOMEM rather
     * than -SAGE_ECORRUPT: reported, so either code is accepted here.) */
    static const size_t depths[] = { 41, 64, 1000, 100000 };
    for (size_t i = 0; i < sizeof(depths) / sizeof(*depths); i++) {
        p = nested(depths[i], &len);
        v = NULL;
        int rc = sage_mpjson_decode(p, len, &v, NULL);
        if (rc != -SAGE_ECORRUPT && rc != -SAGE_ENOMEM)
            fail_msg("nesting %zu deep: rc %d", depths[i], rc);
        assert_null(v);
        free(p);
    }
    /* maps too: {"k": {"k": ... nil}} 50 deep */
    uint8_t m[50 * 3 + 1];
    for (size_t i = 0; i < 50; i++) {
        m[3 * i] = 0x81;
        m[3 * i + 1] = 0xa1;
        m[3 * i + 2] = 'k';
    }
    m[150] = 0xc0;
    v = NULL;
    int rc = sage_mpjson_decode(m, sizeof(m), &v, NULL);
    assert_true(rc == -SAGE_ECORRUPT || rc == -SAGE_ENOMEM);
    assert_null(v);
}

/* ---- out of memory ---- */

static void test_oom_encode_decode(void **state)
{
    (void)state;
    json_t *doc = load(doc_text);
    long n;
    for (n = 0; n < 1000; n++) {
        uint8_t *buf = NULL;
        size_t len = 0;
        json_t *back = NULL;
        struct sage_err err = { 0 };
        ut_oom_arm(n);
        int rc = sage_mpjson_encode(doc, &buf, &len, &err);
        if (rc == 0)
            rc = sage_mpjson_decode(buf, len, &back, &err);
        if (rc == 0)
            assert_true(json_equal(doc, back));
        json_decref(back);
        sage_free(buf);
        int failed = ut_oom_state()->failed;
        long live = ut_oom_disarm();
        if (live != 0)
            fail_msg("allocation %ld failing leaks %ld blocks", n, live);
        if (!failed) {
            assert_int_equal(rc, 0);
            break;
        }
        /* The encoder reports a failed key-table allocation as EINVAL
         * ("cannot be encoded"), the final buffer as ENOMEM. */
        if (rc != -SAGE_ENOMEM && rc != -SAGE_EINVAL)
            fail_msg("allocation %ld failing: rc %d (%s)", n, rc, err.msg);
        assert_null(buf);
        assert_null(back);
    }
    assert_true(n > 2 && n < 1000);
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_all_types),
        cmocka_unit_test(test_roundtrip_large_containers),
        cmocka_unit_test(test_key_order_is_deterministic),
        cmocka_unit_test(test_encode_refusals),
        cmocka_unit_test(test_huge_claims),
        cmocka_unit_test(test_truncated_at_every_length),
        cmocka_unit_test(test_trailing_bytes),
        cmocka_unit_test(test_unsupported_types),
        cmocka_unit_test(test_map_keys),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_oom_encode_decode),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
