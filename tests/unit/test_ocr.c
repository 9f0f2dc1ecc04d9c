/* The OCR client's pure parts and checks that need no server: the chat
 * completion parser (plain text, content parts, olmOCR's JSON and YAML
 * front-matter answers, refusals, out-of-memory), configuration from the
 * environment, and ocr_new's and ocr_page's refusals. Requests over HTTP are
 * tested end to end in tests/e2e/t4002-ocr.sh. */
#include "util.h"

#include "../../indexer/ocr.h"

static char *parse_ok(const char *content_json)
{
    char body[4096], *text = NULL;
    size_t len = 0;
    struct sage_err err = { 0 };
    snprintf(body, sizeof(body), "{\"id\":\"x\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,"
             "\"message\":{\"role\":\"assistant\",\"content\":%s},\"finish_reason\":\"stop\"}]}",
             content_json);
    int rc = ocr_parse_response(body, strlen(body), &text, &len, &err);
    if (rc < 0)
        fail_msg("parse: %s", err.msg);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    return text;
}

static void expect_text(const char *content_json, const char *want)
{
    char *t = parse_ok(content_json);
    assert_string_equal(t, want);
    sage_free(t);
}

static void expect_refusal(const char *body, const char *why)
{
    char *text = (char *)1;
    size_t len = 9;
    struct sage_err err = { 0 };
    assert_int_equal(ocr_parse_response(body, strlen(body), &text, &len, &err), -SAGE_EREMOTE);
    assert_null(text);
    assert_int_equal(len, 0);
    if (!strstr(err.msg, why))
        fail_msg("expected '%s' in '%s'", why, err.msg);
}

static void test_parse_formats(void **state)
{
    (void)state;
    expect_text("\"Page one\\nline two \\u00e9\"", "Page one\nline two \xc3\xa9");
    expect_text("\"\"", "");
    expect_text("[{\"type\":\"text\",\"text\":\"ab\"},{\"type\":\"image_url\"},{\"type\":\"text\",\"text\":\"cd\"}]",
                "abcd");
    /* olmOCR v0.1: a JSON object with natural_text (null: a page without text). */
    expect_text("\"{\\\"primary_language\\\":\\\"en\\\",\\\"natural_text\\\":\\\"The zebra.\\\"}\"",
                "The zebra.");
    expect_text("\"{\\\"primary_language\\\":null,\\\"natural_text\\\":null}\"", "");
    /* JSON without natural_text, or text that merely starts with '{': as is. */
    expect_text("\"{\\\"a\\\":1}\"", "{\"a\":1}");
    expect_text("\"{not json\"", "{not json");
    /* olmOCR v0.2+: YAML front matter. */
    expect_text("\"---\\nprimary_language: en\\nis_table: False\\n---\\nBody text\\nmore\"",
                "Body text\nmore");
    expect_text("\"---\\nprimary_language: en\\n---\"", "");
    expect_text("\"---\\nunterminated front matter\"", "---\nunterminated front matter");
    expect_text("\"----- a rule, not front matter\"", "----- a rule, not front matter");
}

static void test_parse_refusals(void **state)
{
    (void)state;
    expect_refusal("{\"choices\":[{\"message\":{\"content\":\"x\"", "malformed JSON");
    expect_refusal("", "malformed JSON");
    expect_refusal("{\"choices\":[]}", "no choices[0].message");
    expect_refusal("{\"error\":{\"message\":\"overloaded\"}}", "no choices[0].message");
    expect_refusal("{\"choices\":[{\"message\":{\"content\":null}}]}", "no text content");
    expect_refusal("{\"choices\":[{\"message\":{\"content\":42}}]}", "no text content");
    expect_refusal("{\"choices\":[{\"message\":\"x\"}]}", "no choices[0].message");
}

static int parse_parts(void *ctx)
{
    const char *body = "{\"choices\":[{\"message\":{\"content\":[{\"type\":\"text\",\"text\":\"ab\"}]}}]}";
    char *text = NULL;
    size_t len = 0;
    struct sage_err err = { 0 };
    (void)ctx;
    int rc = ocr_parse_response(body, strlen(body), &text, &len, &err);
    sage_free(text);
    return rc;
}

static void test_parse_oom(void **state)
{
    (void)state;
    ut_oom_sweep(parse_parts, NULL, 10);
}

static void test_config_and_refusals(void **state)
{
    (void)state;
    struct ocr_config c;
    struct ocr_client *o = (struct ocr_client *)1;
    struct sage_err err = { 0 };
    char *text = (char *)1;
    size_t len = 5;
    ocr_config_init(&c);
    assert_int_equal(ocr_new(&c, &o, &err), -SAGE_EINVAL);
    assert_null(o);
    setenv("SAGE_OCR_URL", "http://127.0.0.1:9", 1);
    setenv("SAGE_OCR_MODEL", "olmocr", 1);
    setenv("SAGE_OCR_MAX_TOKENS", "2048", 1);
    assert_int_equal(ocr_config_from_env(&c, &err), 0);
    assert_string_equal(c.model, "olmocr");
    assert_int_equal(c.max_tokens, 2048);
    setenv("SAGE_OCR_RETRIES", "0", 1);
    assert_int_equal(ocr_config_from_env(&c, &err), -SAGE_EINVAL);
    assert_non_null(strstr(err.msg, "SAGE_OCR_RETRIES"));
    unsetenv("SAGE_OCR_RETRIES");
    c.max_image = 100;
    assert_int_equal(ocr_new(&c, &o, &err), 0);
    /* Refused before anything is sent (nothing listens on port 9). */
    assert_int_equal(ocr_page(o, (const uint8_t *)"GIF89a..", 8, &text, &len, &err), -SAGE_EINVAL);
    assert_null(text);
    assert_int_equal(len, 0);
    uint8_t big[200] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
    assert_int_equal(ocr_page(o, big, sizeof(big), &text, &len, &err), -SAGE_EINVAL);
    assert_non_null(strstr(err.msg, "over the limit"));
    struct ocr_stats st;
    ocr_get_stats(o, &st);
    assert_int_equal(st.http.requests, 0);
    ocr_free(o);
    ocr_free(NULL);
    unsetenv("SAGE_OCR_URL");
    unsetenv("SAGE_OCR_MODEL");
    unsetenv("SAGE_OCR_MAX_TOKENS");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_formats),
        cmocka_unit_test(test_parse_refusals),
        cmocka_unit_test(test_parse_oom),
        cmocka_unit_test(test_config_and_refusals),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
