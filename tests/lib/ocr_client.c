/* Test helper: drives indexer/ocr.c against a server (tests/lib/fakegpu.py).
 *   ocr_client --url URL [--model M] [--env] [--key K] [--prompt P]
 *       [--timeout-ms N] [--attempts N] [--budget-ms N] [--backoff-ms N]
 *       [--threads N] [--repeat N] [--out FILE] IMAGE...
 * With --env the configuration starts from the SAGE_OCR_* variables and
 * flags override it. Each IMAGE (read whole, sent as given: a non-PNG tests
 * the refusal) is transcribed --repeat times (default 1) by --threads
 * threads; --out gets one line per image, in argument order: its text with
 * newlines as spaces. Prints one JSON line of stats ("ok", "error",
 * "elapsed_ms", counters); exits 1 when a page failed, 2 on usage errors. */
#include <getopt.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "../../indexer/ocr.h"

struct page {
    const char *path;
    uint8_t *png;
    size_t len;
    char *text;                 /* from the last repeat */
};

struct run {
    struct ocr_client *o;
    struct page *pages;
    size_t n_pages, next;       /* next: work index over n_pages * repeat */
    unsigned repeat;
    int rc;
    struct sage_err err;
    pthread_mutex_t mu;
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *p = NULL;
    long n;
    if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (p = malloc((size_t)n + 1)) && fread(p, 1, (size_t)n, f) == (size_t)n) {
        *len = (size_t)n;
    } else {
        free(p);
        p = NULL;
    }
    if (f)
        fclose(f);
    return p;
}

static void *worker(void *arg)
{
    struct run *r = arg;
    for (;;) {
        pthread_mutex_lock(&r->mu);
        size_t k = r->next++;
        int stop = r->rc < 0 || k >= r->n_pages * r->repeat;
        pthread_mutex_unlock(&r->mu);
        if (stop)
            break;
        struct page *p = &r->pages[k % r->n_pages];
        struct sage_err err = { 0 };
        char *text = NULL;
        size_t len = 0;
        int rc = ocr_page(r->o, p->png, p->len, &text, &len, &err);
        pthread_mutex_lock(&r->mu);
        if (rc < 0 && r->rc == 0) {
            r->rc = rc;
            r->err = err;
        }
        if (rc == 0) {
            sage_free(p->text);
            p->text = text;
            text = NULL;
        }
        pthread_mutex_unlock(&r->mu);
        sage_free(text);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    enum { O_ENV = 256, O_PROMPT, O_TIMEOUT, O_ATTEMPTS, O_BUDGET, O_BACKOFF, O_THREADS, O_REPEAT };
    static const struct option longopts[] = {
        { "url", 1, 0, 'u' }, { "model", 1, 0, 'm' }, { "env", 0, 0, O_ENV },
        { "key", 1, 0, 'k' }, { "prompt", 1, 0, O_PROMPT }, { "timeout-ms", 1, 0, O_TIMEOUT },
        { "attempts", 1, 0, O_ATTEMPTS }, { "budget-ms", 1, 0, O_BUDGET },
        { "backoff-ms", 1, 0, O_BACKOFF }, { "threads", 1, 0, O_THREADS },
        { "repeat", 1, 0, O_REPEAT }, { "out", 1, 0, 'o' }, { 0, 0, 0, 0 }
    };
    struct ocr_config c;
    struct run r = { .repeat = 1 };
    struct sage_err err = { 0 };
    const char *out = NULL;
    unsigned threads = 1;
    int opt, status = 0;
    ocr_config_init(&c);
    c.model = "fake-ocr";
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--env") == 0 && ocr_config_from_env(&c, &err) < 0) {
            fprintf(stderr, "ocr_client: %s\n", err.msg);
            return 2;
        }
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        unsigned v = optarg ? (unsigned)strtoul(optarg, NULL, 10) : 0;
        switch (opt) {
        case 'u': c.url = optarg; break;
        case 'm': c.model = optarg; break;
        case O_ENV: break;
        case 'k': c.api_key = optarg; break;
        case O_PROMPT: c.prompt = optarg; break;
        case O_TIMEOUT: c.retry.timeout_ms = v; break;
        case O_ATTEMPTS: c.retry.max_attempts = v; break;
        case O_BUDGET: c.retry.retry_budget_ms = v; break;
        case O_BACKOFF: c.retry.backoff_ms = v; break;
        case O_THREADS: threads = v ? v : 1; break;
        case O_REPEAT: r.repeat = v ? v : 1; break;
        case 'o': out = optarg; break;
        default: return 2;
        }
    }
    r.n_pages = (size_t)(argc - optind);
    if (r.n_pages == 0 || !(r.pages = calloc(r.n_pages, sizeof(*r.pages)))) {
        fputs("usage: ocr_client --url URL [options] IMAGE...\n", stderr);
        return 2;
    }
    for (size_t i = 0; i < r.n_pages; i++) {
        r.pages[i].path = argv[optind + (int)i];
        if (!(r.pages[i].png = slurp(r.pages[i].path, &r.pages[i].len))) {
            fprintf(stderr, "ocr_client: cannot read '%s'\n", r.pages[i].path);
            return 2;
        }
    }
    if (ocr_new(&c, &r.o, &err) < 0) {
        fprintf(stderr, "ocr_client: %s\n", err.msg);
        return 2;
    }
    pthread_mutex_init(&r.mu, NULL);
    double t0 = now_ms();
    pthread_t *t = calloc(threads, sizeof(*t));
    unsigned started = 0;
    for (; t && started < threads; started++)
        if (pthread_create(&t[started], NULL, worker, &r) != 0)
            break;
    for (unsigned i = 0; i < started; i++)
        pthread_join(t[i], NULL);
    free(t);
    double elapsed = now_ms() - t0;
    FILE *f = out && r.rc == 0 ? fopen(out, "w") : NULL;
    for (size_t i = 0; f && i < r.n_pages; i++) {
        for (char *s = r.pages[i].text; s && *s; s++)
            fputc(*s == '\n' ? ' ' : *s, f);
        fputc('\n', f);
    }
    if (f && fclose(f) != 0 && r.rc == 0)
        r.rc = sage_err_set(&r.err, SAGE_EIO, "cannot write '%s'", out);
    struct ocr_stats s;
    ocr_get_stats(r.o, &s);
    json_t *j = json_pack("{s:b, s:s?, s:f, s:I, s:I, s:I, s:I, s:I}", "ok", r.rc == 0,
                          "error", r.rc < 0 ? r.err.msg : NULL, "elapsed_ms", elapsed,
                          "pages", (json_int_t)s.pages, "requests", (json_int_t)s.http.requests,
                          "retries", (json_int_t)s.http.retries,
                          "status_errors", (json_int_t)s.http.status_errors,
                          "transport_errors", (json_int_t)s.http.transport_errors);
    char *line = j ? json_dumps(j, JSON_COMPACT) : NULL;
    printf("%s\n", line ? line : "{\"ok\":false}");
    free(line);
    json_decref(j);
    if (r.rc < 0) {
        fprintf(stderr, "ocr_client: %s\n", r.err.msg);
        status = 1;
    }
    for (size_t i = 0; i < r.n_pages; i++) {
        free(r.pages[i].png);
        sage_free(r.pages[i].text);
    }
    free(r.pages);
    ocr_free(r.o);
    pthread_mutex_destroy(&r.mu);
    return status;
}
