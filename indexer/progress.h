/* Build progress on stderr: a live line on a terminal (files, bytes, rate,
 * ETA against totals counted beforehand), or a plain line every few seconds
 * when stderr is not a terminal (CI logs); nothing with --quiet. */
#ifndef INDEXER_PROGRESS_H
#define INDEXER_PROGRESS_H

#include <stdint.h>

struct progress {
    int tty, quiet;
    uint64_t total_files, total_bytes;
    uint64_t files, bytes;
    double start, last;
};

void progress_init(struct progress *p, uint64_t total_files, uint64_t total_bytes, int quiet);
/* One more file of n bytes done. */
void progress_step(struct progress *p, uint64_t n);
/* Clears the live line. */
void progress_done(struct progress *p);

#endif
