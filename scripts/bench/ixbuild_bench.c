/* The index builder alone under a memory limit: N generated chunks (20 to
 * 120 words drawn with probability 1/rank from a vocabulary of V made-up
 * words, as scripts/bench/spill-bench.sh makes them) go through sage_ixbuild
 * with --memory-limit LIMIT (0: none) and are written to OUT; prints chunks,
 * limit, peak RSS, CPU and wall seconds, and the file's size. Run by
 * spill-bench.sh; not part of make bench.
 *
 *   ixbuild_bench N LIMIT_BYTES TMP_DIR OUT [V] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "ixbuild.h"
#include "writer.h"

static uint64_t rng = 88172645463325252ull;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: ixbuild_bench N LIMIT_BYTES TMP_DIR OUT [VOCAB]\n");
        return 2;
    }
    size_t n = strtoull(argv[1], NULL, 10), vocab = argc > 5 ? strtoull(argv[5], NULL, 10) : 500000;
    struct sage_ixbuild_opts o = { strtoull(argv[2], NULL, 10), argv[3], NULL };
    static const struct sage_tokenizer_opts tok = { .stemmer = "english" };
    struct sage_err err = { 0 };
    struct sage_ixbuild *b = NULL;
    struct sage_writer *w = NULL;
    struct sage_writer_opts wo = { .flags = SAGE_WRITE_NO_SYNC | SAGE_WRITE_NO_SHA256 };
    double *cum = malloc(vocab * sizeof(*cum));
    char (*words)[8] = malloc(vocab * sizeof(*words));
    char text[120 * 9 + 1];
    if (!cum || !words || vocab == 0)
        return 1;
    for (size_t r = 0; r < vocab; r++) {
        cum[r] = (r ? cum[r - 1] : 0) + 1.0 / (double)(r + 1);
        size_t k = 0;
        for (size_t x = r; k == 0 || x; x /= 26)
            words[r][k++] = (char)('a' + x % 26);
        words[r][k++] = 'q';
        words[r][k] = '\0';
    }
    double t0 = now();
    int rc = sage_ixbuild_new(&tok, &o, &b, &err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        size_t len = 0, k = 20 + next() % 101;
        for (size_t j = 0; j < k; j++) {
            double u = (double)(next() >> 11) / 9007199254740992.0 * cum[vocab - 1];
            size_t lo = 0, hi = vocab - 1;
            while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (cum[mid] < u)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            len += (size_t)snprintf(text + len, sizeof(text) - len, "%s ", words[lo]);
        }
        rc = sage_ixbuild_add(b, text, len, NULL, &err);
    }
    if (rc == 0)
        rc = sage_writer_open(argv[4], &wo, &w, &err);
    if (rc == 0)
        rc = sage_ixbuild_write(b, w, &err);
    if (rc == 0) {
        sage_writer_set_counts(w, 0, n);
        rc = sage_writer_commit(w, NULL, &err);
    }
    sage_writer_free(w);
    sage_ixbuild_free(b);
    free(cum);
    free(words);
    if (rc < 0) {
        fprintf(stderr, "ixbuild_bench: %s\n", sage_err_msg(&err, rc));
        return 1;
    }
    struct rusage ru;
    struct stat st;
    getrusage(RUSAGE_SELF, &ru);
    stat(argv[4], &st);
    printf("%zu %s %.0f %.2f %.2f %lld\n", n, argv[2], (double)ru.ru_maxrss / 1024,
           (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
               (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6,
           now() - t0, (long long)st.st_size);
    return 0;
}
