/* The option table: precedence (flag, environment, default), sizes, booleans,
 * ranges, lists, unknown options and missing values, --help, subcommand
 * masks, positional arguments, the help text and the effective
 * configuration with secrets masked. */
#include "util.h"

#include "opt.h"

enum { CMD_BUILD = 1u << 0, CMD_QUERY = 1u << 1 };

enum { O_NAME, O_THREADS, O_CACHE, O_VERBOSE, O_INCLUDE, O_TOKEN, O_LIMIT, O_N };

static const struct sage_opt opts[O_N] = {
    [O_NAME] = { .name = "name", .short_name = 'n', .env = "SAGE_T_NAME", .type = SAGE_OPT_STR,
                 .def = "def", .arg = "NAME", .help = "a name" },
    [O_THREADS] = { .name = "threads", .short_name = 't', .env = "SAGE_T_THREADS",
                    .type = SAGE_OPT_INT, .def = "4", .min = 1, .max = 64, .arg = "N",
                    .help = "worker threads" },
    [O_CACHE] = { .name = "cache", .env = "SAGE_T_CACHE", .type = SAGE_OPT_SIZE, .def = "64M",
                  .min = 4096, .max = 1LL << 40, .arg = "SIZE", .help = "cache size" },
    [O_VERBOSE] = { .name = "verbose", .short_name = 'v', .env = "SAGE_T_VERBOSE",
                    .type = SAGE_OPT_BOOL, .def = "0", .max = 1, .help = "say more" },
    [O_INCLUDE] = { .name = "include", .short_name = 'i', .env = "SAGE_T_INCLUDE",
                    .type = SAGE_OPT_LIST, .arg = "GLOB", .help = "files to take" },
    [O_TOKEN] = { .name = "token", .env = "SAGE_T_TOKEN", .type = SAGE_OPT_STR,
                  .flags = SAGE_OPT_SECRET, .arg = "TOKEN", .help = "API token" },
    [O_LIMIT] = { .name = "limit", .short_name = 'k', .env = "SAGE_T_LIMIT", .type = SAGE_OPT_INT,
                  .def = "10", .min = 1, .max = 1000, .cmds = CMD_QUERY, .arg = "K",
                  .help = "results" },
};

static const char *const env_names[] = { "SAGE_T_NAME", "SAGE_T_THREADS", "SAGE_T_CACHE",
                                         "SAGE_T_VERBOSE", "SAGE_T_INCLUDE", "SAGE_T_TOKEN",
                                         "SAGE_T_LIMIT" };

static int clean_env(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(env_names) / sizeof(*env_names); i++)
        unsetenv(env_names[i]);
    return 0;
}

/* Parses a NULL-terminated argv (copied, since getopt permutes it). */
struct parsed {
    int rc, first;
    int argc;
    char *argv[32];
    struct sage_optval vals[O_N];
    struct sage_err err;
};

static void parse(struct parsed *p, unsigned cmd, const char *const *args)
{
    memset(p, 0, sizeof(*p));
    p->argv[p->argc++] = (char *)"sage-test";
    while (*args && p->argc < 31)
        p->argv[p->argc++] = (char *)*args++;
    p->argv[p->argc] = NULL;
    p->first = -1;
    p->rc = sage_opt_parse(opts, O_N, cmd, p->vals, p->argc, p->argv, &p->first, &p->err);
}

static void release(struct parsed *p)
{
    sage_opt_release(p->vals, O_N);
}

#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define NOARGS ((const char *const[]){ NULL })

static void expect_ok(const struct parsed *p)
{
    if (p->rc != 0)
        fail_msg("parse failed: rc %d (%s)", p->rc, p->err.msg);
}

static void test_defaults(void **state)
{
    (void)state;
    struct parsed p;
    parse(&p, CMD_BUILD, NOARGS);
    expect_ok(&p);
    assert_int_equal(p.first, 1);
    assert_string_equal(p.vals[O_NAME].str, "def");
    assert_int_equal(p.vals[O_NAME].from, 0);
    assert_int_equal(p.vals[O_THREADS].num, 4);
    assert_int_equal(p.vals[O_CACHE].num, 64LL << 20);
    assert_int_equal(p.vals[O_VERBOSE].num, 0);
    assert_int_equal(p.vals[O_INCLUDE].n_list, 0);
    assert_null(p.vals[O_TOKEN].str);
    assert_null(p.vals[O_LIMIT].str);      /* not an option of this command */
    release(&p);
    parse(&p, CMD_QUERY, NOARGS);
    expect_ok(&p);
    assert_int_equal(p.vals[O_LIMIT].num, 10);
    release(&p);
}

static void test_precedence(void **state)
{
    (void)state;
    struct parsed p;
    setenv("SAGE_T_THREADS", "8", 1);
    setenv("SAGE_T_NAME", "from-env", 1);
    setenv("SAGE_T_CACHE", "1G", 1);
    setenv("SAGE_T_VERBOSE", "yes", 1);

    /* environment beats default */
    parse(&p, CMD_BUILD, NOARGS);
    expect_ok(&p);
    assert_int_equal(p.vals[O_THREADS].num, 8);
    assert_int_equal(p.vals[O_THREADS].from, 1);
    assert_string_equal(p.vals[O_NAME].str, "from-env");
    assert_int_equal(p.vals[O_CACHE].num, 1LL << 30);
    assert_int_equal(p.vals[O_VERBOSE].num, 1);
    release(&p);

    /* flag beats environment, long, short and --x=y forms */
    parse(&p, CMD_BUILD, ARGS("--threads", "16", "--name=flag", "--cache", "2M"));
    expect_ok(&p);
    assert_int_equal(p.vals[O_THREADS].num, 16);
    assert_int_equal(p.vals[O_THREADS].from, 2);
    assert_string_equal(p.vals[O_NAME].str, "flag");
    assert_int_equal(p.vals[O_NAME].from, 2);
    assert_int_equal(p.vals[O_CACHE].num, 2LL << 20);
    assert_int_equal(p.vals[O_VERBOSE].from, 1);    /* untouched by flags: env */
    release(&p);
    parse(&p, CMD_BUILD, ARGS("-t", "3", "-nshort"));
    expect_ok(&p);
    assert_int_equal(p.vals[O_THREADS].num, 3);
    assert_string_equal(p.vals[O_NAME].str, "short");
    release(&p);
    /* the last flag wins */
    parse(&p, CMD_BUILD, ARGS("-t", "3", "--threads=5"));
    expect_ok(&p);
    assert_int_equal(p.vals[O_THREADS].num, 5);
    release(&p);

    /* an empty variable counts as unset */
    setenv("SAGE_T_THREADS", "", 1);
    parse(&p, CMD_BUILD, NOARGS);
    expect_ok(&p);
    assert_int_equal(p.vals[O_THREADS].num, 4);
    assert_int_equal(p.vals[O_THREADS].from, 0);
    release(&p);
    clean_env(NULL);
}

static void test_sizes(void **state)
{
    (void)state;
    static const struct { const char *s; long long v; } good[] = {
        { "0", 0 }, { "10", 10 }, { "1K", 1024 }, { "1k", 1024 }, { "2M", 2LL << 20 },
        { "3G", 3LL << 30 }, { "4KB", 4096 }, { "5mb", 5LL << 20 }, { "100M", 100LL << 20 },
        { "8000000000G", 8000000000LL << 30 },
    };
    static const char *const bad[] = { "", "K", "-1", "+1", " 1", "1.5G", "1T", "12x", "1KK",
                                       "1Kx", "0x10", "9000000000G", "99999999999999999999" };
    for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++) {
        long long v = -1;
        if (sage_opt_parse_size(good[i].s, &v) != 0 || v != good[i].v)
            fail_msg("size '%s': got %lld, want %lld", good[i].s, v, good[i].v);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        long long v = 12345;
        if (sage_opt_parse_size(bad[i], &v) == 0)
            fail_msg("size '%s' accepted as %lld", bad[i], v);
        assert_int_equal(v, 12345);
    }
    /* through the table, with its range */
    struct parsed p;
    parse(&p, CMD_BUILD, ARGS("--cache", "16K"));
    expect_ok(&p);
    assert_int_equal(p.vals[O_CACHE].num, 16384);
    release(&p);
    parse(&p, CMD_BUILD, ARGS("--cache", "1K"));
    assert_int_equal(p.rc, -SAGE_EINVAL);
    assert_non_null(strstr(p.err.msg, "--cache"));
    release(&p);
    parse(&p, CMD_BUILD, ARGS("--cache", "lots"));
    assert_int_equal(p.rc, -SAGE_EINVAL);
    assert_non_null(strstr(p.err.msg, "--cache"));
    assert_non_null(strstr(p.err.msg, "lots"));
    release(&p);
    setenv("SAGE_T_CACHE", "2048G", 1);
    parse(&p, CMD_BUILD, NOARGS);
    assert_int_equal(p.rc, -SAGE_EINVAL);
    assert_non_null(strstr(p.err.msg, "SAGE_T_CACHE"));
    release(&p);
    clean_env(NULL);
}

static void test_booleans(void **state)
{
    (void)state;
    static const struct { const char *s; int v; } vals[] = {
        { "1", 1 }, { "true", 1 }, { "yes", 1 }, { "on", 1 }, { "TRUE", 1 }, { "Yes", 1 },
        { "0", 0 }, { "false", 0 }, { "no", 0 }, { "off", 0 }, { "NO", 0 },
    };
    struct parsed p;
    for (size_t i = 0; i < sizeof(vals) / sizeof(*vals); i++) {
        setenv("SAGE_T_VERBOSE", vals[i].s, 1);
        parse(&p, CMD_BUILD, NOARGS);
        expect_ok(&p);
        if (p.vals[O_VERBOSE].num != vals[i].v || p.vals[O_VERBOSE].from != 1)
            fail_msg("SAGE_T_VERBOSE=%s gave %lld", vals[i].s, p.vals[O_VERBOSE].num);
        release(&p);
    }
    static const char *const bad[] = { "maybe", "2", "tru", "y e s" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        setenv("SAGE_T_VERBOSE", bad[i], 1);
        parse(&p, CMD_BUILD, NOARGS);
        assert_int_equal(p.rc, -SAGE_EINVAL);
        assert_non_null(strstr(p.err.msg, "SAGE_T_VERBOSE"));
        assert_non_null(strstr(p.err.msg, bad[i]));
        release(&p);
    }
    /* the flag sets it, whatever the environment says */
    setenv("SAGE_T_VERBOSE", "no", 1);
    parse(&p, CMD_BUILD, ARGS("-v"));
    expect_ok(&p);
    assert_int_equal(p.vals[O_VERBOSE].num, 1);
    assert_int_equal(p.vals[O_VERBOSE].from, 2);
    release(&p);
    /* and takes no value */
    parse(&p, CMD_BUILD, ARGS("--verbose=yes"));
    assert_int_equal(p.rc, -SAGE_EINVAL);
    release(&p);
    clean_env(NULL);
}

static void test_int_errors_name_the_source(void **state)
{
    (void)state;
    static const char *const bad[] = { "0", "65", "-3", "abc", "12abc", "", "4.0",
                                       "99999999999999999999" };
    struct parsed p;
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        parse(&p, CMD_BUILD, ARGS("--threads", bad[i]));
        if (p.rc != -SAGE_EINVAL)
            fail_msg("--threads '%s': rc %d", bad[i], p.rc);
        assert_int_equal(p.err.code, SAGE_EINVAL);
        if (!strstr(p.err.msg, "--threads"))
            fail_msg("--threads '%s': message '%s' does not name the flag", bad[i], p.err.msg);
        release(&p);
        /* the short form is reported under the long name */
        parse(&p, CMD_BUILD, ARGS("-t", bad[i]));
        assert_int_equal(p.rc, -SAGE_EINVAL);
        assert_non_null(strstr(p.err.msg, "--threads"));
        release(&p);
        if (!*bad[i])
            continue;       /* an empty variable is unset, not an error */
        setenv("SAGE_T_THREADS", bad[i], 1);
        parse(&p, CMD_BUILD, NOARGS);
        if (p.rc != -SAGE_EINVAL || !strstr(p.err.msg, "SAGE_T_THREADS"))
            fail_msg("SAGE_T_THREADS=%s: rc %d (%s)", bad[i], p.rc, p.err.msg);
        release(&p);
        unsetenv("SAGE_T_THREADS");
    }
    /* the edges of the range pass */
    parse(&p, CMD_BUILD, ARGS("-t", "1"));
    expect_ok(&p);
    release(&p);
    parse(&p, CMD_BUILD, ARGS("-t", "64"));
    expect_ok(&p);
    assert_int_equal(p.vals[O_THREADS].num, 64);
    release(&p);
    parse(&p, CMD_BUILD, ARGS("-t", "65"));
    assert_non_null(strstr(p.err.msg, "[1, 64]"));
    release(&p);
}

/* A CHOICE option takes one of the words of its arg, and a bad value is
 * refused naming the source and every word. */
static void test_choices(void **state)
{
    (void)state;
    static const struct sage_opt c[2] = {
        { .name = "mode", .env = "SAGE_T_MODE", .type = SAGE_OPT_CHOICE, .def = "on",
          .arg = "on|off", .help = "two words" },
        { .name = "way", .type = SAGE_OPT_CHOICE, .arg = "required|optional|off",
          .help = "three words" },
    };
    static const char *const good[] = { "on", "off" }, *const bad[] = { "o", "onn", "ON", "" };
    for (size_t i = 0; i < 2; i++) {
        struct sage_optval v[2];
        struct sage_err err = { 0 };
        char *argv[] = { (char *)"prog", (char *)"--mode", (char *)good[i], NULL };
        int first = 0;
        assert_int_equal(sage_opt_parse(c, 2, 1, v, 3, argv, &first, &err), 0);
        assert_string_equal(v[0].str, good[i]);
        sage_opt_release(v, 2);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        struct sage_optval v[2];
        struct sage_err err = { 0 };
        char *argv[] = { (char *)"prog", (char *)"--mode", (char *)bad[i], NULL };
        int first = 0;
        assert_int_equal(sage_opt_parse(c, 2, 1, v, 3, argv, &first, &err), -SAGE_EINVAL);
        assert_non_null(strstr(err.msg, "--mode: expected on or off, got"));
        sage_opt_release(v, 2);
    }
    struct sage_optval v[2];
    struct sage_err err = { 0 };
    char *argv[] = { (char *)"prog", (char *)"--way", (char *)"sometimes", NULL };
    int first = 0;
    setenv("SAGE_T_MODE", "maybe", 1);
    assert_int_equal(sage_opt_parse(c, 2, 1, v, 1, argv, &first, &err), -SAGE_EINVAL);
    assert_non_null(strstr(err.msg, "SAGE_T_MODE: expected on or off, got 'maybe'"));
    sage_opt_release(v, 2);
    unsetenv("SAGE_T_MODE");
    assert_int_equal(sage_opt_parse(c, 2, 1, v, 3, argv, &first, &err), -SAGE_EINVAL);
    assert_non_null(strstr(err.msg, "--way: expected required, optional or off, got 'sometimes'"));
    sage_opt_release(v, 2);
}

static void test_lists(void **state)
{
    (void)state;
    struct parsed p;
    parse(&p, CMD_BUILD, ARGS("-i", "a", "--include", "b", "--include=c,d", "-ie"));
    expect_ok(&p);
    struct sage_optval *v = &p.vals[O_INCLUDE];
    assert_int_equal(v->n_list, 4);
    assert_string_equal(v->list[0], "a");
    assert_string_equal(v->list[1], "b");
    assert_string_equal(v->list[2], "c,d");     /* flags are taken whole */
    assert_string_equal(v->list[3], "e");
    assert_int_equal(v->from, 2);
    release(&p);
    assert_null(p.vals[O_INCLUDE].list);
    assert_int_equal(p.vals[O_INCLUDE].n_list, 0);

    setenv("SAGE_T_INCLUDE", "x,y,,z,", 1);
    parse(&p, CMD_BUILD, NOARGS);
    expect_ok(&p);
    v = &p.vals[O_INCLUDE];
    assert_int_equal(v->n_list, 3);
    assert_string_equal(v->list[0], "x");
    assert_string_equal(v->list[1], "y");
    assert_string_equal(v->list[2], "z");
    assert_int_equal(v->from, 1);
    release(&p);

    /* flags replace the environment's list, they do not extend it */
    parse(&p, CMD_BUILD, ARGS("-i", "only"));
    expect_ok(&p);
    assert_int_equal(p.vals[O_INCLUDE].n_list, 1);
    assert_string_equal(p.vals[O_INCLUDE].list[0], "only");
    release(&p);
    clean_env(NULL);
}

static void test_unknown_and_missing(void **state)
{
    (void)state;
    struct parsed p;
    parse(&p, CMD_BUILD, ARGS("--bogus"));
    assert_int_equal(p.rc, -SAGE_EINVAL);
    assert_non_null(strstr(p.err.msg, "unknown option"));
    assert_non_null(strstr(p.err.msg, "--bogus"));
    release(&p);
    parse(&p, CMD_BUILD, ARGS("-z"));
    assert_int_equal(p.rc, -SAGE_EINVAL);
    assert_non_null(strstr(p.err.msg, "unknown option '-z'"));
    release(&p);
    /* an option of another subcommand is unknown here */
    parse(&p, CMD_BUILD, ARGS("--limit", "5"));
    assert_int_equal(p.rc, -SAGE_EINVAL);
    assert_non_null(strstr(p.err.msg, "--limit"));
    release(&p);
    parse(&p, CMD_BUILD, ARGS("-k", "5"));
    assert_int_equal(p.rc, -SAGE_EINVAL);
    release(&p);
    parse(&p, CMD_QUERY, ARGS("-k", "5"));
    expect_ok(&p);
    assert_int_equal(p.vals[O_LIMIT].num, 5);
    release(&p);

    parse(&p, CMD_BUILD, ARGS("--threads"));
    assert_int_equal(p.rc, -SAGE_EINVAL);
    assert_non_null(strstr(p.err.msg, "needs a value"));
    assert_non_null(strstr(p.err.msg, "--threads"));
    release(&p);
    parse(&p, CMD_BUILD, ARGS("-v", "-t"));
    assert_int_equal(p.rc, -SAGE_EINVAL);
    assert_non_null(strstr(p.err.msg, "needs a value"));
    assert_non_null(strstr(p.err.msg, "-t"));
    release(&p);
    parse(&p, CMD_BUILD, ARGS("-i"));
    assert_int_equal(p.rc, -SAGE_EINVAL);
    assert_non_null(strstr(p.err.msg, "needs a value"));
    release(&p);
}

static void test_help(void **state)
{
    (void)state;
    struct parsed p;
    parse(&p, CMD_BUILD, ARGS("--help"));
    assert_int_equal(p.rc, 1);
    release(&p);
    parse(&p, CMD_BUILD, ARGS("-t", "2", "--help", "--bogus"));
    assert_int_equal(p.rc, 1);
    release(&p);

    char *h = sage_opt_help(opts, O_N, CMD_BUILD);
    assert_non_null(h);
    assert_non_null(strstr(h, "-t, --threads N"));
    assert_non_null(strstr(h, "worker threads (default 4) [SAGE_T_THREADS]"));
    assert_non_null(strstr(h, "--cache SIZE"));
    assert_non_null(strstr(h, "-v, --verbose"));
    assert_null(strstr(h, "(default 0)"));      /* booleans show no default */
    assert_null(strstr(h, "--limit"));          /* query only */
    free(h);
    h = sage_opt_help(opts, O_N, CMD_QUERY);
    assert_non_null(strstr(h, "-k, --limit K"));
    free(h);
}

static void test_positional_arguments(void **state)
{
    (void)state;
    struct parsed p;
    parse(&p, CMD_BUILD, ARGS("dir1", "-t", "2", "dir2", "--", "--not-a-flag"));
    expect_ok(&p);
    assert_int_equal(p.vals[O_THREADS].num, 2);
    assert_int_equal(p.argc - p.first, 3);
    assert_string_equal(p.argv[p.first], "dir1");
    assert_string_equal(p.argv[p.first + 1], "dir2");
    assert_string_equal(p.argv[p.first + 2], "--not-a-flag");
    release(&p);

    /* a second parse in the same process starts afresh */
    parse(&p, CMD_BUILD, ARGS("only"));
    expect_ok(&p);
    assert_int_equal(p.first, 1);
    assert_string_equal(p.argv[1], "only");
    assert_int_equal(p.vals[O_THREADS].num, 4);
    release(&p);
}

static void test_effective_masks_secrets(void **state)
{
    (void)state;
    struct parsed p;
    setenv("SAGE_T_TOKEN", "s3cret-env", 1);
    parse(&p, CMD_BUILD, ARGS("-t", "3", "-i", "a", "-i", "b", "-v"));
    expect_ok(&p);
    char *e = sage_opt_effective(opts, O_N, CMD_BUILD, p.vals);
    assert_non_null(e);
    assert_string_equal(e, "name=def threads=3 cache=64M verbose=true include=a,b token=***");
    free(e);
    release(&p);

    parse(&p, CMD_BUILD, ARGS("--token", "s3cret-flag"));
    expect_ok(&p);
    e = sage_opt_effective(opts, O_N, CMD_BUILD, p.vals);
    assert_null(strstr(e, "s3cret"));
    assert_non_null(strstr(e, "token=***"));
    assert_non_null(strstr(e, "verbose=false"));
    free(e);
    release(&p);

    /* an unset secret shows as empty, not as *** */
    unsetenv("SAGE_T_TOKEN");
    parse(&p, CMD_QUERY, NOARGS);
    expect_ok(&p);
    e = sage_opt_effective(opts, O_N, CMD_QUERY, p.vals);
    assert_string_equal(e, "name=def threads=4 cache=64M verbose=false include= token= limit=10");
    free(e);
    release(&p);
}

static void test_oom_parse(void **state)
{
    (void)state;
    setenv("SAGE_T_INCLUDE", "x,y,z", 1);
    long n;
    for (n = 0; n < 1000; n++) {
        struct parsed p;
        ut_oom_arm(n);
        parse(&p, CMD_BUILD, ARGS("-t", "2", "--cache", "8K"));
        int rc = p.rc;
        if (rc == 0)
            assert_int_equal(p.vals[O_INCLUDE].n_list, 3);
        release(&p);
        int failed = ut_oom_state()->failed;
        long live = ut_oom_disarm();
        if (live != 0)
            fail_msg("allocation %ld failing leaks %ld blocks", n, live);
        if (!failed) {
            assert_int_equal(rc, 0);
            break;
        }
        if (rc != -SAGE_ENOMEM)
            fail_msg("allocation %ld failing: rc %d (%s)", n, rc, p.err.msg);
    }
    assert_true(n > 2 && n < 1000);
    clean_env(NULL);
}

#define T(f) cmocka_unit_test_setup_teardown(f, clean_env, clean_env)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_defaults),
        T(test_precedence),
        T(test_sizes),
        T(test_booleans),
        T(test_int_errors_name_the_source),
        T(test_lists),
        T(test_choices),
        T(test_unknown_and_missing),
        T(test_help),
        T(test_positional_arguments),
        T(test_effective_masks_secrets),
        T(test_oom_parse),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
