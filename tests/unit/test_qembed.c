/* searchd's query embedding around the embedding client: the LRU cache
 * (hits, recency, eviction, replacement, distinct keys of one hash bucket,
 * vectors too big for the caller, threads), the circuit breaker's states,
 * and the service without a server, with settings that disagree, and with
 * a server that refuses connections (127.0.0.1, a closed port): failures,
 * then the breaker answering without asking. */
#include "util.h"

#include <pthread.h>

#include "clock.h"
#include "../../searchd/lru.h"
#include "../../searchd/qembed.h"

static void vec(float *v, size_t dim, float seed)
{
    for (size_t i = 0; i < dim; i++)
        v[i] = seed + (float)i;
}

static void test_lru_basic(void **state)
{
    (void)state;
    struct lru *c = NULL;
    float v[8], out[8];
    struct lru_stats st;
    assert_int_equal(lru_new(2, &c), 0);
    assert_int_equal(lru_get(c, "a", 1, out, 8), 0);
    vec(v, 4, 1);
    assert_int_equal(lru_put(c, "a", 1, v, 4), 0);
    vec(v, 8, 2);
    assert_int_equal(lru_put(c, "bb", 2, v, 8), 0);
    assert_int_equal(lru_get(c, "a", 1, out, 8), 4);
    assert_true(out[0] == 1 && out[3] == 4);
    /* "a" is now the most recent: a third key evicts "bb" */
    vec(v, 2, 3);
    assert_int_equal(lru_put(c, "ccc", 3, v, 2), 0);
    assert_int_equal(lru_get(c, "bb", 2, out, 8), 0);
    assert_int_equal(lru_get(c, "a", 1, out, 8), 4);
    assert_int_equal(lru_get(c, "ccc", 3, out, 8), 2);
    assert_true(out[0] == 3 && out[1] == 4);
    /* a vector longer than the caller's room is a miss, not an overflow */
    assert_int_equal(lru_get(c, "a", 1, out, 3), 0);
    /* replacing a key's value keeps one entry */
    vec(v, 3, 10);
    assert_int_equal(lru_put(c, "a", 1, v, 3), 0);
    assert_int_equal(lru_get(c, "a", 1, out, 8), 3);
    assert_true(out[0] == 10);
    lru_get_stats(c, &st);
    assert_int_equal(st.size, 2);
    assert_int_equal(st.evictions, 1);
    assert_int_equal(st.hits, 4);
    assert_int_equal(st.misses, 3);
    /* keys are compared in full: a prefix, or the same bytes longer, differ */
    assert_int_equal(lru_get(c, "cc", 2, out, 8), 0);
    assert_int_equal(lru_get(c, "ccc\0", 4, out, 8), 0);
    lru_free(c);
    lru_free(NULL);
}

static void test_lru_many(void **state)
{
    (void)state;
    struct lru *c = NULL;
    char key[32];
    float v[4], out[4];
    /* far more keys than buckets: chains, evictions in LRU order */
    assert_int_equal(lru_new(100, &c), 0);
    for (int i = 0; i < 1000; i++) {
        int n = snprintf(key, sizeof(key), "query %d", i);
        vec(v, 4, (float)i);
        assert_int_equal(lru_put(c, key, (size_t)n, v, 4), 0);
        if (i % 10 == 0) {      /* keep query 0 recent */
            assert_int_equal(lru_get(c, "query 0", 7, out, 4), 4);
            assert_true(out[0] == 0);
        }
    }
    for (int i = 1; i < 1000; i++) {
        int n = snprintf(key, sizeof(key), "query %d", i);
        size_t got = lru_get(c, key, (size_t)n, out, 4);
        if (i >= 901) {
            assert_int_equal(got, 4);
            assert_true(out[0] == (float)i);
        } else {
            assert_int_equal(got, 0);
        }
    }
    assert_int_equal(lru_get(c, "query 0", 7, out, 4), 4);
    struct lru_stats st;
    lru_get_stats(c, &st);
    assert_int_equal(st.size, 100);
    lru_free(c);
}

struct worker {
    struct lru *c;
    int id;
};

static void *hammer(void *arg)
{
    struct worker *w = arg;
    char key[32];
    float v[16], out[16];
    for (int i = 0; i < 20000; i++) {
        int k = (i * 7 + w->id) % 64;
        int n = snprintf(key, sizeof(key), "k%d", k);
        size_t got = lru_get(w->c, key, (size_t)n, out, 16);
        if (got && (got != 16 || out[0] != (float)k))
            return (void *)1;
        vec(v, 16, (float)k);
        if (lru_put(w->c, key, (size_t)n, v, 16) < 0)
            return (void *)1;
    }
    return NULL;
}

static void test_lru_threads(void **state)
{
    (void)state;
    struct lru *c = NULL;
    pthread_t t[4];
    struct worker w[4];
    assert_int_equal(lru_new(32, &c), 0);
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){ c, i };
        assert_int_equal(pthread_create(&t[i], NULL, hammer, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        assert_null(r);
    }
    lru_free(c);
}

static int lru_oom(void *ctx)
{
    (void)ctx;
    struct lru *c = NULL;
    float v[4] = { 1, 2, 3, 4 }, out[4];
    int rc = lru_new(1, &c);
    if (rc == 0)
        rc = lru_put(c, "x", 1, v, 4);
    if (rc == 0)
        rc = lru_put(c, "y", 1, v, 4);
    if (rc == 0 && lru_get(c, "y", 1, out, 4) != 4)
        rc = -SAGE_EIO;
    lru_free(c);
    return rc;
}

static void test_lru_oom(void **state)
{
    (void)state;
    ut_oom_sweep(lru_oom, NULL, 20);
}

static void test_breaker(void **state)
{
    (void)state;
    struct breaker b = { .threshold = 3, .cooldown_ms = 100 };
    assert_true(breaker_allow(&b, 0));
    breaker_result(&b, 0, 0);
    breaker_result(&b, 0, 1);
    /* a success in between resets the count */
    breaker_result(&b, 1, 2);
    breaker_result(&b, 0, 3);
    breaker_result(&b, 0, 4);
    assert_int_equal(b.state, BREAKER_CLOSED);
    breaker_result(&b, 0, 5);
    assert_int_equal(b.state, BREAKER_OPEN);
    assert_int_equal(b.opens, 1);
    /* open: refused until the cool-down ends */
    assert_false(breaker_allow(&b, 50));
    assert_false(breaker_allow(&b, 104));
    /* then one probe passes, the others wait for its verdict */
    assert_true(breaker_allow(&b, 105));
    assert_int_equal(b.state, BREAKER_HALF_OPEN);
    assert_false(breaker_allow(&b, 106));
    /* the probe fails: open again for a whole cool-down */
    breaker_result(&b, 0, 110);
    assert_int_equal(b.state, BREAKER_OPEN);
    assert_int_equal(b.opens, 2);
    assert_false(breaker_allow(&b, 200));
    assert_true(breaker_allow(&b, 210));
    /* the probe succeeds: closed, count reset */
    breaker_result(&b, 1, 211);
    assert_int_equal(b.state, BREAKER_CLOSED);
    assert_int_equal(b.failures, 0);
    assert_true(breaker_allow(&b, 212));
    assert_true(breaker_allow(&b, 212));
}

static const struct sage_embedding_info idx = { "model-a", "query: ", "doc: ", 16, 1 };

static void test_without_server(void **state)
{
    (void)state;
    struct qembed *q = NULL;
    struct qembed_config c = { .timeout_ms = 500, .cache_entries = 4 };
    struct sage_err err = { 0 };
    enum qembed_reason why;
    float v[16];
    assert_int_equal(qembed_new(&c, &q, &err), 0);
    assert_false(qembed_enabled(q));
    assert_int_equal(qembed_check(q, "docs", &idx, &err), 0);
    assert_true(qembed_query(q, "x", 1, v, 16, &why, &err) < 0);
    assert_int_equal(why, QE_NO_EMBEDDER);
    assert_string_equal(qembed_reason_name(why), "no_embedder");
    assert_int_equal(qembed_probe(q, &err), 0);
    qembed_free(q);
    qembed_free(NULL);
}

static void test_settings_disagree(void **state)
{
    (void)state;
    struct qembed *q = NULL;
    struct qembed_config c = { .url = "http://127.0.0.1:1", .model = "model-b",
                               .timeout_ms = 500 };
    struct sage_err err = { 0 };
    assert_int_equal(qembed_new(&c, &q, &err), 0);
    assert_true(qembed_enabled(q));
    /* --embed-model names another model */
    assert_int_equal(qembed_check(q, "docs", &idx, &err), -SAGE_EINVAL);
    assert_non_null(strstr(err.msg, "embedded with model 'model-a', but --embed-model is "
                                    "'model-b'"));
    qembed_free(q);
    c.model = NULL;
    assert_int_equal(qembed_new(&c, &q, &err), 0);
    /* the first index binds; one without vectors is no concern */
    assert_int_equal(qembed_check(q, "docs", &idx, &err), 0);
    assert_int_equal(qembed_check(q, "lexical", NULL, &err), 0);
    assert_int_equal(qembed_check(q, "docs", &idx, &err), 0);
    struct sage_embedding_info other = idx;
    other.dim = 32;
    assert_int_equal(qembed_check(q, "wide", &other, &err), -SAGE_EINVAL);
    assert_non_null(strstr(err.msg, "dimension 32, but the query embedder's are 16"));
    other = idx;
    other.query_prefix = "search_query: ";
    assert_int_equal(qembed_check(q, "nomic", &other, &err), -SAGE_EINVAL);
    assert_non_null(strstr(err.msg, "query prefix"));
    other = idx;
    other.model = "model-c";
    assert_int_equal(qembed_check(q, "c", &other, &err), -SAGE_EINVAL);
    assert_non_null(strstr(err.msg, "'model-c'"));
    assert_int_equal(qembed_mismatches(q), 3);
    qembed_free(q);
}

static void test_refused_then_breaker(void **state)
{
    (void)state;
    struct qembed *q = NULL;
    /* port 1 on the loopback: nothing listens, connections are refused */
    struct qembed_config c = { .url = "http://127.0.0.1:1", .timeout_ms = 2000,
                               .cache_entries = 8, .breaker_failures = 2,
                               .breaker_cooldown_ms = 60000 };
    struct sage_err err = { 0 };
    struct qembed_stats st;
    enum qembed_reason why;
    float v[16];
    assert_int_equal(qembed_new(&c, &q, &err), 0);
    assert_int_equal(qembed_check(q, "docs", &idx, &err), 0);
    assert_int_equal(qembed_probe(q, &err), -SAGE_EREMOTE);
    for (int i = 0; i < 2; i++) {
        assert_true(qembed_query(q, "owls", 4, v, 16, &why, &err) < 0);
        assert_int_equal(why, QE_UNAVAILABLE);
    }
    double t0 = sage_now_ms();
    for (int i = 0; i < 10; i++) {
        assert_true(qembed_query(q, "owls", 4, v, 16, &why, &err) < 0);
        assert_int_equal(why, QE_CIRCUIT_OPEN);
    }
    assert_true(sage_now_ms() - t0 < 1000);
    qembed_get_stats(q, &st);
    assert_int_equal(st.requests, 2);
    assert_int_equal(st.failures, 2);
    assert_int_equal(st.breaker_opens, 1);
    assert_int_equal(st.breaker, BREAKER_OPEN);
    assert_int_equal(st.cache_hits, 0);
    qembed_free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lru_basic),
        cmocka_unit_test(test_lru_many),
        cmocka_unit_test(test_lru_threads),
        cmocka_unit_test(test_lru_oom),
        cmocka_unit_test(test_breaker),
        cmocka_unit_test(test_without_server),
        cmocka_unit_test(test_settings_disagree),
        cmocka_unit_test(test_refused_then_breaker),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
