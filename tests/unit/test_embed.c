/* The embedding client's pure parts and its failure paths that need no
 * server: the response parser (order, missing and repeated indices, counts,
 * dimensions, non-numbers, malformed JSON, out-of-memory), the endpoint URL
 * rules, backoff bounds and Retry-After, configuration from the environment,
 * embed_new's checks, and the stored-vector bookkeeping (embed_put, gaps).
 * Requests over HTTP are tested end to end in tests/e2e/t4001-embed.sh. */
#include "util.h"

#include "../../indexer/embed.h"
#include "../../indexer/remote.h"

/* A URL nothing listens on; these tests never send a request. */
#define NOWHERE "http://127.0.0.1:9"

static int parse(const char *body, size_t n, unsigned *dim, float **v, struct sage_err *err)
{
    return embed_parse_response(body, strlen(body), n, dim, v, err);
}

static void assert_parse_fails(const char *body, size_t n, unsigned dim, const char *why)
{
    struct sage_err err = { 0 };
    float *v = (float *)1;
    assert_int_equal(parse(body, n, &dim, &v, &err), -SAGE_EREMOTE);
    assert_null(v);
    if (!strstr(err.msg, why))
        fail_msg("expected '%s' in '%s'", why, err.msg);
}

/* ---- embed_parse_response ---- */

static void test_parse_ok_any_order(void **state)
{
    (void)state;
    struct sage_err err = { 0 };
    float *v = NULL;
    unsigned dim = 2;
    const char *body = "{\"object\":\"list\",\"data\":["
                       "{\"object\":\"embedding\",\"index\":2,\"embedding\":[5,6]},"
                       "{\"object\":\"embedding\",\"index\":0,\"embedding\":[1.5,-2]},"
                       "{\"object\":\"embedding\",\"index\":1,\"embedding\":[3,4e-3]}],"
                       "\"model\":\"m\",\"usage\":{\"prompt_tokens\":3}}";
    assert_int_equal(parse(body, 3, &dim, &v, &err), 0);
    assert_non_null(v);
    const float want[] = { 1.5f, -2, 3, 4e-3f, 5, 6 };
    for (int i = 0; i < 6; i++)
        assert_true(v[i] == want[i]);
    sage_free(v);
}

static void test_parse_learns_dim_and_positions(void **state)
{
    (void)state;
    struct sage_err err = { 0 };
    float *v = NULL;
    unsigned dim = 0;
    /* No "index": the position is the index (some servers omit it). */
    assert_int_equal(parse("{\"data\":[{\"embedding\":[1,2,3]},{\"embedding\":[4,5,6]}]}", 2,
                           &dim, &v, &err), 0);
    assert_int_equal(dim, 3);
    assert_true(v[0] == 1 && v[5] == 6);
    sage_free(v);
}

static void test_parse_refusals(void **state)
{
    (void)state;
    assert_parse_fails("{\"data\":[{\"index\":0,\"embedding\":[1,2]", 1, 2, "malformed JSON");
    assert_parse_fails("", 1, 2, "malformed JSON");
    assert_parse_fails("[]", 1, 2, "no \"data\" array");
    assert_parse_fails("{\"data\":{}}", 1, 2, "no \"data\" array");
    assert_parse_fails("{\"data\":[]}", 1, 2, "0 vectors for 1 inputs");
    assert_parse_fails("{\"data\":[{\"embedding\":[1,2]},{\"embedding\":[1,2]}]}", 1, 2,
                       "2 vectors for 1 inputs");
    assert_parse_fails("{\"data\":[{\"index\":0,\"embedding\":[1,2]},{\"index\":0,\"embedding\":[1,2]}]}",
                       2, 2, "repeats index 0");
    assert_parse_fails("{\"data\":[{\"index\":1,\"embedding\":[1,2]}]}", 1, 2, "bad \"index\"");
    assert_parse_fails("{\"data\":[{\"index\":-1,\"embedding\":[1,2]}]}", 1, 2, "bad \"index\"");
    assert_parse_fails("{\"data\":[{\"index\":\"0\",\"embedding\":[1,2]}]}", 1, 2, "bad \"index\"");
    assert_parse_fails("{\"data\":[{\"index\":0}]}", 1, 2, "no \"embedding\" array");
    assert_parse_fails("{\"data\":[{\"index\":0,\"embedding\":\"AAAA\"}]}", 1, 2,
                       "no \"embedding\" array");
    assert_parse_fails("{\"data\":[{\"embedding\":[1,2,3]}]}", 1, 2,
                       "wrong dimension: vector 0 has 3 numbers, expected 2");
    assert_parse_fails("{\"data\":[{\"embedding\":[1]}]}", 1, 2, "has 1 numbers, expected 2");
    assert_parse_fails("{\"data\":[{\"embedding\":[1,null]}]}", 1, 2, "non-number at 1");
    assert_parse_fails("{\"data\":[{\"embedding\":[1,\"2\"]}]}", 1, 2, "non-number at 1");
    assert_parse_fails("{\"data\":[{\"embedding\":[1,1e300]}]}", 1, 2, "non-number at 1");
    assert_parse_fails("{\"data\":[{\"embedding\":[]}]}", 1, 0, "dimension 0");
    assert_parse_fails("{\"data\":[1]}", 1, 0, "no \"embedding\" array");
    assert_parse_fails("{\"data\":[],\"data\":[]}", 0, 2, "malformed JSON");
}

static int parse_two(void *ctx)
{
    struct sage_err err = { 0 };
    float *v = NULL;
    unsigned dim = 2;
    (void)ctx;
    int rc = parse("{\"data\":[{\"embedding\":[1,2]},{\"embedding\":[3,4]}]}", 2, &dim, &v, &err);
    sage_free(v);
    return rc;
}

static void test_parse_oom(void **state)
{
    (void)state;
    ut_oom_sweep(parse_two, NULL, 10);
}

/* ---- endpoint, backoff (remote.c) ---- */

static void check_endpoint(const char *base, const char *want)
{
    const char *path = strstr(want, "/chat/completions") ? "chat/completions" : "embeddings";
    char *u = remote_endpoint(base, path);
    assert_non_null(u);
    assert_string_equal(u, want);
    sage_free(u);
}

static void test_endpoint(void **state)
{
    (void)state;
    check_endpoint("http://gpu:8000", "http://gpu:8000/v1/embeddings");
    check_endpoint("http://gpu:8000/", "http://gpu:8000/v1/embeddings");
    check_endpoint("http://gpu:8000/v1", "http://gpu:8000/v1/embeddings");
    check_endpoint("http://gpu:8000/v1//", "http://gpu:8000/v1/embeddings");
    check_endpoint("https://api.example/openai/v1/embeddings", "https://api.example/openai/v1/embeddings");
    check_endpoint("http://gpu/tei", "http://gpu/tei/v1/embeddings");
    check_endpoint("http://gpu/xembeddings", "http://gpu/xembeddings/v1/embeddings");
    check_endpoint("http://vllm:8000", "http://vllm:8000/v1/chat/completions");
    check_endpoint("http://vllm:8000/v1/", "http://vllm:8000/v1/chat/completions");
    check_endpoint("http://vllm:8000/v1/chat/completions", "http://vllm:8000/v1/chat/completions");
}

static void test_backoff(void **state)
{
    (void)state;
    uint64_t rng = 42;
    unsigned max1 = 0, max4 = 0, min9 = UINT32_MAX;
    for (int i = 0; i < 2000; i++) {
        unsigned a = remote_backoff_ms(100, 1000, 1, -1, &rng), b = remote_backoff_ms(100, 1000, 4, -1, &rng);
        unsigned z = remote_backoff_ms(100, 1000, 9, -1, &rng);
        assert_true(a <= 100 && b <= 800 && z <= 1000);
        max1 = a > max1 ? a : max1;
        max4 = b > max4 ? b : max4;
        min9 = z < min9 ? z : min9;
    }
    /* Full jitter: the whole range is used. */
    assert_true(max1 > 80 && max4 > 600 && min9 < 100);
    /* Retry-After is a floor, capped at backoff_max_ms. */
    for (int i = 0; i < 100; i++) {
        assert_true(remote_backoff_ms(100, 1000, 1, 700, &rng) >= 700);
        assert_int_equal(remote_backoff_ms(100, 1000, 1, 5000, &rng), 1000);
    }
    assert_int_equal(embed_estimate_tokens(0), 1);
    assert_int_equal(embed_estimate_tokens(4), 1);
    assert_int_equal(embed_estimate_tokens(5), 2);
}

/* ---- configuration ---- */

static void test_config_env(void **state)
{
    (void)state;
    struct embed_config c;
    struct sage_err err = { 0 };
    embed_config_init(&c);
    setenv("SAGE_EMBED_URL", "http://h:1", 1);
    setenv("SAGE_EMBED_MODEL", "nomic", 1);
    setenv("SAGE_EMBED_DIM", "768", 1);
    setenv("SAGE_EMBED_CONCURRENCY", "8", 1);
    setenv("SAGE_EMBED_BATCH", "64", 1);
    setenv("SAGE_EMBED_NORMALIZE", "true", 1);
    setenv("SAGE_EMBED_QUERY_PREFIX", "search_query: ", 1);
    assert_int_equal(embed_config_from_env(&c, &err), 0);
    assert_string_equal(c.url, "http://h:1");
    assert_string_equal(c.model, "nomic");
    assert_string_equal(c.query_prefix, "search_query: ");
    assert_int_equal(c.dim, 768);
    assert_int_equal(c.concurrency, 8);
    assert_int_equal(c.max_inputs, 64);
    assert_int_equal(c.normalize, 1);
    assert_int_equal(c.max_tokens, 16384);     /* unset: left alone */
    static const char *const bad[][2] = {
        { "SAGE_EMBED_DIM", "0" }, { "SAGE_EMBED_DIM", "12x" }, { "SAGE_EMBED_DIM", "-5" },
        { "SAGE_EMBED_CONCURRENCY", "100000" }, { "SAGE_EMBED_BATCH", "" },
        { "SAGE_EMBED_NORMALIZE", "2" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *old = getenv(bad[i][0]);
        char keep[64];
        snprintf(keep, sizeof(keep), "%s", old ? old : "");
        setenv(bad[i][0], bad[i][1], 1);
        assert_int_equal(embed_config_from_env(&c, &err), -SAGE_EINVAL);
        assert_non_null(strstr(err.msg, bad[i][0]));
        setenv(bad[i][0], keep, 1);
    }
    unsetenv("SAGE_EMBED_URL");
    unsetenv("SAGE_EMBED_MODEL");
    unsetenv("SAGE_EMBED_DIM");
    unsetenv("SAGE_EMBED_CONCURRENCY");
    unsetenv("SAGE_EMBED_BATCH");
    unsetenv("SAGE_EMBED_NORMALIZE");
    unsetenv("SAGE_EMBED_QUERY_PREFIX");
}

static void test_new_refusals(void **state)
{
    struct ut_scratch *s = *state;
    struct embed_config c;
    struct embedder *e = (struct embedder *)1;
    struct sage_err err = { 0 };
    char path[PATH_MAX];
    embed_config_init(&c);
    assert_int_equal(embed_new(&c, &e, &err), -SAGE_EINVAL);
    assert_null(e);
    c.url = NOWHERE;
    assert_int_equal(embed_new(&c, &e, &err), -SAGE_EINVAL);     /* no model */
    c.model = "m";
    c.concurrency = 100000;
    assert_int_equal(embed_new(&c, &e, &err), -SAGE_EINVAL);
    c.concurrency = 2;
    c.api_key_file = ut_path(path, sizeof(path), s->dir, "missing");
    assert_int_equal(embed_new(&c, &e, &err), -SAGE_EINVAL);
    assert_non_null(strstr(err.msg, "missing"));
    ut_write_bytes(path, "\n", 1);
    assert_int_equal(embed_new(&c, &e, &err), -SAGE_EINVAL);
    assert_non_null(strstr(err.msg, "is empty"));
    ut_write_bytes(path, "k3y \nrest", 9);
    assert_int_equal(embed_new(&c, &e, &err), 0);
    embed_free(e);
    embed_free(NULL);
}

/* ---- stored vectors without a server ---- */

static void new_nowhere(struct embedder **e, unsigned dim)
{
    struct embed_config c;
    struct sage_err err = { 0 };
    embed_config_init(&c);
    c.url = NOWHERE;
    c.model = "m";
    c.dim = dim;
    assert_int_equal(embed_new(&c, e, &err), 0);
}

static void test_put_and_gaps(void **state)
{
    (void)state;
    struct embedder *e;
    struct sage_err err = { 0 };
    float *v = NULL, a[3] = { 1, 2, 3 }, b[3] = { 4, 5, 6 };
    size_t n = 9;
    new_nowhere(&e, 3);
    assert_int_equal(embed_put(e, 1, b, 3, &err), 0);
    assert_int_equal(embed_put(e, 0, a, 3, &err), 0);
    assert_int_equal(embed_put(e, 0, a, 2, &err), -SAGE_EINVAL);
    assert_int_equal(embed_vectors(e, &v, &n, &err), -SAGE_EINVAL);  /* before finish */
    assert_int_equal(embed_finish(e, &err), 0);
    assert_int_equal(embed_vectors(e, &v, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_memory_equal(v, a, sizeof(a));
    assert_memory_equal(v + 3, b, sizeof(b));
    sage_free(v);
    embed_free(e);

    new_nowhere(&e, 0);        /* the dimension comes from the first vector */
    assert_int_equal(embed_put(e, 0, a, 3, &err), 0);
    assert_int_equal(embed_dim(e), 3);
    assert_int_equal(embed_put(e, 2, b, 3, &err), 0);
    assert_int_equal(embed_finish(e, &err), 0);
    assert_int_equal(embed_vectors(e, &v, &n, &err), -SAGE_EINVAL);
    assert_string_equal(err.msg, "id 1 has no vector");
    assert_null(v);
    embed_free(e);
}

static void test_add_refusals(void **state)
{
    (void)state;
    struct embedder *e;
    struct sage_err err = { 0 };
    struct embed_stats st;
    new_nowhere(&e, 3);
    assert_int_equal(embed_add(e, 0, "ok \xff\xfe", 5, &err), -SAGE_EINVAL);
    assert_non_null(strstr(err.msg, "not valid UTF-8"));
    assert_int_equal(embed_add(e, (uint64_t)1 << 40, "x", 1, &err), -SAGE_ELIMIT);
    embed_get_stats(e, &st);
    assert_int_equal(st.http.requests, 0);
    /* Freed without embed_finish: nothing was queued, nothing is sent. */
    embed_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_ok_any_order),
        cmocka_unit_test(test_parse_learns_dim_and_positions),
        cmocka_unit_test(test_parse_refusals),
        cmocka_unit_test(test_parse_oom),
        cmocka_unit_test(test_endpoint),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_config_env),
        cmocka_unit_test_setup_teardown(test_new_refusals, ut_scratch_setup, ut_scratch_teardown),
        cmocka_unit_test(test_put_and_gaps),
        cmocka_unit_test(test_add_refusals),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
