/* Progress lines, throttled: 10 per second on a terminal, one per 5 s else. */
#include "progress.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include "clock.h"

void progress_init(struct progress *p, uint64_t total_files, uint64_t total_bytes, int quiet)
{
    p->tty = isatty(STDERR_FILENO);
    p->quiet = quiet;
    p->total_files = total_files;
    p->total_bytes = total_bytes;
    p->files = p->bytes = 0;
    p->start = p->last = sage_now_ms() / 1e3;
}

static void show(struct progress *p, double t)
{
    double el = t - p->start, rate = el > 0 ? (double)p->bytes / el : 0;
    double left = p->total_bytes > p->bytes && rate > 0 ? (double)(p->total_bytes - p->bytes) / rate : 0;
    fprintf(stderr, "%sindexing: %llu/%llu files, %.1f/%.1f MB, %.1f MB/s, ETA %.0f s%s",
            p->tty ? "\r" : "sage-indexer: ", (unsigned long long)p->files,
            (unsigned long long)p->total_files, (double)p->bytes / 1e6,
            (double)p->total_bytes / 1e6, rate / 1e6, left, p->tty ? "\033[K" : "\n");
}

void progress_step(struct progress *p, uint64_t n)
{
    p->files++;
    p->bytes += n;
    if (p->quiet)
        return;
    double t = sage_now_ms() / 1e3;
    if (t - p->last >= (p->tty ? 0.1 : 5.0)) {
        p->last = t;
        show(p, t);
    }
}

void progress_done(struct progress *p)
{
    if (!p->quiet && p->tty)
        fprintf(stderr, "\r\033[K");
}
