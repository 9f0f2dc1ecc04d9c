/* Writing an index file. Sections are streamed in one after another; the file
 * grows in a locked temporary in the target directory and only commit puts it
 * under its final name (fsync, rename, fsync of the directory), followed by a
 * NAME.sage.sha256 sidecar. Whatever happens before commit returns, the final
 * name holds either the previous file or nothing, never a partial one.
 * A writer is used by one thread at a time. */
#ifndef SAGE_WRITER_H
#define SAGE_WRITER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"
#include "layout.h"

/* The system calls the writer makes, as a seam for I/O-failure tests. */
struct sage_io {
    ssize_t (*write)(int fd, const void *buf, size_t len);
    ssize_t (*pwrite)(int fd, const void *buf, size_t len, off_t off);
    int (*fsync)(int fd);
    int (*rename)(const char *from, const char *to);
};

enum sage_write_flags {
    SAGE_WRITE_NO_SHA256 = 1u << 0,     /* skip the .sha256 sidecar */
    SAGE_WRITE_NO_SYNC = 1u << 1        /* skip fsync (tests and benchmarks only) */
};

struct sage_writer_opts {
    uint32_t max_sections;      /* table capacity; 0 means 64 */
    int zstd_level;             /* 0 means 9 */
    unsigned flags;             /* enum sage_write_flags */
    const struct sage_io *io;   /* NULL: the real system calls */
};

struct sage_writer;

/* Starts writing the file that will be called path. Removes stale temporaries
 * of earlier, dead writers of the same name. On success *out owns the writer;
 * free it with sage_writer_free. */
int sage_writer_open(const char *path, const struct sage_writer_opts *opts,
                     struct sage_writer **out, struct sage_err *err);

/* Begins a section of the given kind and codec; ends any open one first is an
 * error: call sage_writer_end. */
int sage_writer_begin(struct sage_writer *w, uint32_t kind, enum sage_codec codec,
                      struct sage_err *err);
/* Appends bytes to the open section. */
int sage_writer_write(struct sage_writer *w, const void *buf, size_t len, struct sage_err *err);
/* Closes the open section. */
int sage_writer_end(struct sage_writer *w, struct sage_err *err);
/* begin + write + end. */
int sage_writer_add(struct sage_writer *w, uint32_t kind, enum sage_codec codec,
                    const void *buf, size_t len, struct sage_err *err);

/* Counts stored in the header for tools that do not parse sections. */
void sage_writer_set_counts(struct sage_writer *w, uint64_t n_docs, uint64_t n_chunks);

/* Writes header and footer, syncs the file, prepares the sidecar, renames
 * the file into place, then the sidecar (or removes a stale one when
 * SAGE_WRITE_NO_SHA256), and syncs the directory. On success fills
 * sha256_hex (65 bytes, may be NULL). A failure before the rename removes the
 * temporary and leaves the final name untouched; a failure after it (sidecar
 * rename, directory sync) returns -SAGE_EIO with the complete new file in
 * place and no sidecar that disagrees with it. */
int sage_writer_commit(struct sage_writer *w, char *sha256_hex, struct sage_err *err);

/* Releases the writer; before a successful commit, also deletes the temporary. */
void sage_writer_free(struct sage_writer *w);

#endif
