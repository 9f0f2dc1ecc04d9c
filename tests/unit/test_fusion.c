/* Rank fusion (format/fusion.h): exact RRF values with and without weights,
 * the convex combination over min-max normalized scores, a leg whose
 * scores are all equal, ties broken by chunk id, one or both legs empty, k
 * cutting the list, bad input (a chunk twice in a leg, negative weights),
 * names, and out-of-memory. */
#include "util.h"

#include <math.h>

#include "fusion.h"

#define EPS 1e-12

static const struct sage_leg_hit bm25[] = { { 7, 9.0 }, { 3, 5.0 }, { 11, 1.0 } };
static const struct sage_leg_hit dense[] = { { 3, 0.8 }, { 20, 0.6 }, { 7, 0.4 }, { 5, 0.2 } };

static const struct sage_fused_hit *find(const struct sage_fused_hit *h, size_t n, uint64_t c)
{
    for (size_t i = 0; i < n; i++)
        if (h[i].chunk == c)
            return &h[i];
    fail_msg("chunk %llu not in the fused list", (unsigned long long)c);
    return NULL;
}

static void test_rrf_exact(void **state)
{
    (void)state;
    struct sage_fusion_opts o = { SAGE_FUSION_RRF, 0, 1, 1 };
    struct sage_fused_hit *h = NULL;
    size_t n = 0;
    struct sage_err err = { 0 };
    assert_int_equal(sage_fusion_fuse(bm25, 3, dense, 4, &o, 10, &h, &n, &err), 0);
    assert_int_equal(n, 5);     /* 7, 3, 11, 20, 5 */
    /* 3: bm25 rank 2, dense rank 1; 7: bm25 rank 1, dense rank 3 */
    assert_int_equal(h[0].chunk, 3);
    assert_true(fabs(h[0].score - (1.0 / 62 + 1.0 / 61)) < EPS);
    assert_int_equal(h[1].chunk, 7);
    assert_true(fabs(h[1].score - (1.0 / 61 + 1.0 / 63)) < EPS);
    const struct sage_fused_hit *x = find(h, n, 20);
    assert_true(fabs(x->score - 1.0 / 62) < EPS);
    assert_int_equal(x->bm25.rank, 0);
    assert_int_equal(x->dense.rank, 2);
    assert_true(x->dense.score == 0.6);
    x = find(h, n, 11);
    assert_true(fabs(x->score - 1.0 / 63) < EPS);
    assert_int_equal(x->bm25.rank, 3);
    assert_true(x->bm25.score == 1.0);
    assert_int_equal(x->dense.rank, 0);
    /* 11 (bm25 #3) and 5 (dense #4): 1/63 > 1/64 */
    assert_int_equal(h[3].chunk, 11);
    assert_int_equal(h[4].chunk, 5);
    for (size_t i = 1; i < n; i++)
        assert_true(h[i - 1].score >= h[i].score);
    sage_free(h);
}

static void test_rrf_weights_and_k(void **state)
{
    (void)state;
    struct sage_fusion_opts o = { SAGE_FUSION_RRF, 10, 2, 0.5 };
    struct sage_fused_hit *h = NULL;
    size_t n = 0;
    assert_int_equal(sage_fusion_fuse(bm25, 3, dense, 4, &o, 2, &h, &n, NULL), 0);
    assert_int_equal(n, 2);
    /* 7: 2/11 + 0.5/13; 3: 2/12 + 0.5/11 */
    assert_int_equal(h[0].chunk, 7);
    assert_true(fabs(h[0].score - (2.0 / 11 + 0.5 / 13)) < EPS);
    assert_int_equal(h[1].chunk, 3);
    assert_true(fabs(h[1].score - (2.0 / 12 + 0.5 / 11)) < EPS);
    sage_free(h);
}

static void test_convex(void **state)
{
    (void)state;
    struct sage_fusion_opts o = { SAGE_FUSION_CONVEX, 0, 1, 1 };
    struct sage_fused_hit *h = NULL;
    size_t n = 0;
    assert_int_equal(sage_fusion_fuse(bm25, 3, dense, 4, &o, 10, &h, &n, NULL), 0);
    assert_int_equal(n, 5);
    /* bm25 over [1, 9]: 7 -> 1, 3 -> 0.5, 11 -> 0; dense over [0.2, 0.8]:
     * 3 -> 1, 20 -> 2/3, 7 -> 1/3, 5 -> 0; halved (weights 1 and 1) */
    assert_int_equal(h[0].chunk, 3);
    assert_true(fabs(h[0].score - 0.75) < EPS);
    assert_int_equal(h[1].chunk, 7);
    assert_true(fabs(h[1].score - (1 + 1.0 / 3) / 2) < EPS);
    assert_int_equal(h[2].chunk, 20);
    assert_true(fabs(h[2].score - 1.0 / 3) < EPS);
    /* 11 and 5 both score 0: by chunk id */
    assert_int_equal(h[3].chunk, 5);
    assert_int_equal(h[4].chunk, 11);
    assert_true(h[3].score == 0 && h[4].score == 0);
    sage_free(h);
    /* dense weight 0: the BM25 order, normalized */
    o.w_dense = 0;
    assert_int_equal(sage_fusion_fuse(bm25, 3, dense, 4, &o, 3, &h, &n, NULL), 0);
    assert_int_equal(n, 3);
    assert_int_equal(h[0].chunk, 7);
    assert_true(h[0].score == 1);
    assert_int_equal(h[1].chunk, 3);
    assert_true(fabs(h[1].score - 0.5) < EPS);
    sage_free(h);
}

static void test_equal_scores_and_ties(void **state)
{
    (void)state;
    /* every score equal: each normalizes to 1, so the fused scores tie and
     * chunk ids decide */
    static const struct sage_leg_hit a[] = { { 40, 2.0 }, { 10, 2.0 }, { 30, 2.0 } };
    struct sage_fusion_opts o = { SAGE_FUSION_CONVEX, 0, 1, 1 };
    struct sage_fused_hit *h = NULL;
    size_t n = 0;
    assert_int_equal(sage_fusion_fuse(a, 3, NULL, 0, &o, 10, &h, &n, NULL), 0);
    assert_int_equal(n, 3);
    assert_int_equal(h[0].chunk, 10);
    assert_int_equal(h[1].chunk, 30);
    assert_int_equal(h[2].chunk, 40);
    for (size_t i = 0; i < 3; i++)
        assert_true(fabs(h[i].score - 0.5) < EPS);
    sage_free(h);
    /* RRF: rank 1 of one leg ties rank 1 of the other; the lower id first */
    static const struct sage_leg_hit b[] = { { 9, 1.0 } }, d[] = { { 4, 1.0 } };
    o.kind = SAGE_FUSION_RRF;
    assert_int_equal(sage_fusion_fuse(b, 1, d, 1, &o, 10, &h, &n, NULL), 0);
    assert_int_equal(n, 2);
    assert_int_equal(h[0].chunk, 4);
    assert_int_equal(h[1].chunk, 9);
    assert_true(h[0].score == h[1].score);
    sage_free(h);
}

static void test_empty_legs(void **state)
{
    (void)state;
    struct sage_fusion_opts o = { SAGE_FUSION_RRF, 0, 1, 1 };
    struct sage_fused_hit *h = NULL;
    size_t n = 1;
    /* only the dense leg: its order, the bm25 leg absent everywhere */
    assert_int_equal(sage_fusion_fuse(NULL, 0, dense, 4, &o, 10, &h, &n, NULL), 0);
    assert_int_equal(n, 4);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(h[i].chunk, dense[i].chunk);
        assert_int_equal(h[i].bm25.rank, 0);
        assert_int_equal(h[i].dense.rank, i + 1);
        assert_true(fabs(h[i].score - 1.0 / (61 + (double)i)) < EPS);
    }
    sage_free(h);
    /* both empty, or k = 0: nothing, and nothing allocated */
    assert_int_equal(sage_fusion_fuse(NULL, 0, NULL, 0, &o, 10, &h, &n, NULL), 0);
    assert_int_equal(n, 0);
    assert_null(h);
    assert_int_equal(sage_fusion_fuse(bm25, 3, dense, 4, &o, 0, &h, &n, NULL), 0);
    assert_int_equal(n, 0);
    assert_null(h);
}

static void test_bad_input(void **state)
{
    (void)state;
    static const struct sage_leg_hit twice[] = { { 5, 3.0 }, { 5, 2.0 } };
    struct sage_fusion_opts o = { SAGE_FUSION_RRF, 0, 1, 1 };
    struct sage_fused_hit *h = NULL;
    size_t n = 0;
    struct sage_err err = { 0 };
    assert_int_equal(sage_fusion_fuse(twice, 2, dense, 4, &o, 10, &h, &n, &err), -SAGE_EINVAL);
    assert_non_null(strstr(err.msg, "chunk 5 is listed twice in the bm25 leg"));
    assert_null(h);
    o.w_bm25 = -1;
    assert_int_equal(sage_fusion_fuse(bm25, 3, dense, 4, &o, 10, &h, &n, &err), -SAGE_EINVAL);
    /* both weights 0: taken as 1 and 1 */
    o.w_bm25 = o.w_dense = 0;
    assert_int_equal(sage_fusion_fuse(bm25, 3, dense, 4, &o, 1, &h, &n, NULL), 0);
    assert_true(fabs(h[0].score - (1.0 / 62 + 1.0 / 61)) < EPS);
    sage_free(h);
}

static void test_names(void **state)
{
    (void)state;
    enum sage_fusion_kind k;
    assert_int_equal(sage_fusion_parse("rrf", &k), 0);
    assert_int_equal(k, SAGE_FUSION_RRF);
    assert_int_equal(sage_fusion_parse("convex", &k), 0);
    assert_int_equal(k, SAGE_FUSION_CONVEX);
    assert_int_equal(sage_fusion_parse("RRF", &k), -SAGE_EINVAL);
    assert_string_equal(sage_fusion_name(SAGE_FUSION_CONVEX), "convex");
    assert_string_equal(sage_fusion_name(SAGE_FUSION_RRF), "rrf");
}

static int fuse_once(void *ctx)
{
    (void)ctx;
    struct sage_fusion_opts o = { SAGE_FUSION_CONVEX, 0, 1, 1 };
    struct sage_fused_hit *h = NULL;
    size_t n = 0;
    int rc = sage_fusion_fuse(bm25, 3, dense, 4, &o, 10, &h, &n, NULL);
    sage_free(h);
    return rc;
}

static void test_oom(void **state)
{
    (void)state;
    ut_oom_sweep(fuse_once, NULL, 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rrf_exact),
        cmocka_unit_test(test_rrf_weights_and_k),
        cmocka_unit_test(test_convex),
        cmocka_unit_test(test_equal_scores_and_ties),
        cmocka_unit_test(test_empty_legs),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_oom),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
