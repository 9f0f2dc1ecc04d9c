/* Walking the sources of a build: a root is a file or a directory; a
 * directory is walked depth-first in byte order of names (so output is
 * deterministic), skipping hidden entries and VCS folders unless asked,
 * applying include/exclude globs to paths relative to the root, following a
 * symbolic link only when its target stays inside the root, and never
 * entering a directory twice (symlink loops). FIFOs, sockets and devices are
 * skipped with a reason; unreadable entries are reported, not fatal. */
#ifndef INDEXER_CRAWL_H
#define INDEXER_CRAWL_H

#include <stddef.h>
#include <stdint.h>

struct crawl_opts {
    int hidden;                 /* also walk dot-files and VCS folders */
    char *const *include;       /* globs; a file must match one when any are given */
    size_t n_include;
    char *const *exclude;       /* globs; a matching file or folder is skipped */
    size_t n_exclude;
};

enum crawl_skip_kind {
    CRAWL_SKIPPED,              /* by policy: excluded, hidden, a FIFO... */
    CRAWL_FAILED                /* could not be read */
};

struct crawl_cb {
    /* A regular file: path to open, and its path relative to the root (the
     * file's own name for a root that is a file). Non-zero stops the walk. */
    int (*file)(void *ctx, const char *path, const char *rel);
    void (*skip)(void *ctx, const char *path, enum crawl_skip_kind kind, const char *reason);
    void *ctx;
};

/* Walks root. Returns 0, the file callback's non-zero value, -1 when the
 * root itself cannot be read (reported through skip), or -2 when out of
 * memory. */
int crawl_root(const char *root, const struct crawl_opts *o, const struct crawl_cb *cb);

/* Whether rel (a path relative to a root) matches glob: against the whole
 * path, and for patterns without '/', against each component. */
int crawl_glob_match(const char *glob, const char *rel);

#endif
