/* Reading archives through libarchive with the limits a crawler of untrusted
 * input needs: entry count, total expanded bytes and expansion ratio are
 * enforced while streaming, entry names are sanitized (no "..", no absolute
 * paths), and encrypted or non-regular entries are skipped with a reason.
 * Nested archives are the caller's business: it sees each member's bytes and
 * may call archive_walk on them with depth + 1 and the same budget. */
#ifndef INDEXER_ARCHIVE_H
#define INDEXER_ARCHIVE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct archive_limits {
    uint64_t max_entries;       /* per archive, all nesting levels included */
    uint64_t max_expanded;      /* total bytes expanded, all levels included */
    uint64_t max_ratio;         /* expanded bytes / archive bytes, per archive */
    uint64_t max_member;        /* largest member kept in memory (bigger: skipped) */
    unsigned max_depth;         /* nesting depth; the outermost archive is depth 0 */
};

/* Shared by an archive and everything nested in it. */
struct archive_budget {
    uint64_t entries;
    uint64_t expanded;
};

/* Called for each regular member, in archive order. path is sanitized and
 * relative ("docs/a.md"); data is valid only during the call. Return 0 to go
 * on, non-zero to stop (returned by archive_walk). */
typedef int (*archive_member_fn)(void *ctx, const char *path, const uint8_t *data, size_t len);
/* Called for each member skipped, with the reason ("encrypted", "larger than
 * the member limit", "not a regular file", "unsafe name"). */
typedef void (*archive_skip_fn)(void *ctx, const char *path, const char *reason);

/* Whether data looks like an archive or compressed file libarchive reads
 * (zip, tar and its compressions, 7z, gzip, bzip2, xz, zstd). */
int archive_detect(const uint8_t *data, size_t len);

/* Walks the archive in data. A broken archive or an exceeded limit returns
 * -SAGE_ECORRUPT or -SAGE_ELIMIT with the reason in err; members delivered
 * before that stay delivered. A single compressed file (.gz) yields one
 * member named after name without its compression suffix. */
int archive_walk(const char *name, const uint8_t *data, size_t len,
                 const struct archive_limits *lim, struct archive_budget *budget,
                 unsigned depth, archive_member_fn on_member, archive_skip_fn on_skip,
                 void *ctx, struct sage_err *err);

#endif
