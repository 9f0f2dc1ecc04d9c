/* The index registry: the index directory's NAME.sage files (or NAME
 * symlinks to dated files), each mapped, verified and opened for search off
 * the request path, then published by swapping one pointer. Requests hold a
 * reference on the snapshot they started with, so a swap never changes an
 * answer half-way and the old mapping goes when its last request ends.
 * A file that fails verification is logged and counted and the previous
 * snapshot keeps serving; a removed file unloads its index. Dot files and
 * *.tmp are never loaded. All functions are thread-safe. */
#ifndef SEARCHD_REGISTRY_H
#define SEARCHD_REGISTRY_H

#include <jansson.h>
#include <stdint.h>
#include <time.h>

#include "reader.h"
#include "search.h"

struct snapshot {
    int refs;                   /* atomic */
    char *name;                 /* index name (NAME of NAME.sage or of the symlink) */
    char *file;                 /* the file it was loaded from (symlink resolved) */
    char sha256[65];            /* from the NAME.sage.sha256 sidecar, "" without one */
    uint64_t generation;        /* 1 for the first load of a name, +1 per swap */
    struct timespec loaded_at;  /* wall clock, for /v1/indexes */
    uint64_t size;
    struct sage_reader *reader;
    struct sage_searcher *searcher;
    json_t *build;              /* the build record */
    int stamped;                /* full verify skipped: a stamp vouched for the file */
    double load_ms;             /* open + verify (or stamp check) + searcher */
    double load_cpu_ms;         /* the loading thread's CPU time for it */
};

struct registry;

struct registry_stats {
    uint64_t reloads_ok, reloads_failed;
    double last_reload;         /* unix time of the last scan that changed something */
};

/* Creates a registry over dir; nothing is loaded until registry_scan. */
int registry_new(const char *dir, struct registry **out);
void registry_free(struct registry *reg);

/* always: verify every byte of every file loaded, even one a verification
 * stamp (stamp.h) vouches for. Off by default. Call before the first scan. */
void registry_set_verify_always(struct registry *reg, int always);

/* A check every file must pass, after verification and before it is
 * published (searchd: its embedding settings against the query embedder).
 * Non-zero refuses the file as a failed verification would: logged with
 * err's message, counted, and the previous snapshot keeps serving. */
typedef int (*registry_check_fn)(void *ctx, const char *name, const struct sage_searcher *s,
                                 struct sage_err *err);
/* Call before the first scan. */
void registry_set_check(struct registry *reg, registry_check_fn fn, void *ctx);

/* Compares the directory with what is loaded and loads, swaps or unloads
 * (serialized: concurrent calls wait). Returns the number of changes. */
int registry_scan(struct registry *reg);

/* Starts a thread that rescans on inotify events in the directory, and at
 * least every poll_ms (the fallback where inotify misses: NFS, bind mounts). */
int registry_watch(struct registry *reg, unsigned poll_ms);

/* The current snapshot of name (NULL: the first index by name), with a
 * reference the caller gives back with snapshot_release; NULL if none. */
struct snapshot *registry_acquire(struct registry *reg, const char *name);
void snapshot_release(struct snapshot *s);

/* Every loaded snapshot, referenced, sorted by name; *n set. Free the array
 * with registry_release_all. */
struct snapshot **registry_acquire_all(struct registry *reg, size_t *n);
void registry_release_all(struct snapshot **all, size_t n);

/* 1 when every index file in the directory has a loaded snapshot and at
 * least one is loaded. */
int registry_ready(struct registry *reg);

void registry_stats(struct registry *reg, struct registry_stats *out);

#endif
