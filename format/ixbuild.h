/* Building the inverted index: chunks are added in order (ids 0, 1, 2...),
 * tokenized, and their terms' postings accumulated as varint (gap, tf) pairs;
 * write then emits NORMS, POSTINGS and LEXICON through a writer (layouts in
 * FORMAT.md). With a memory limit, postings and vocabulary beyond it are
 * spilled to an anonymous temporary file as sorted runs and merged at write
 * time; the file written is the same, byte for byte, whatever the limit.
 * Single-threaded. */
#ifndef SAGE_IXBUILD_H
#define SAGE_IXBUILD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"
#include "tokenize.h"
#include "writer.h"

#define SAGE_POSTINGS_BLOCK 128     /* postings per block */
#define SAGE_LEXICON_BLOCK 16       /* terms per front-coded lexicon block */

/* The calls the builder makes on its temporary file, as a seam for
 * I/O-failure tests. */
struct sage_ixbuild_io {
    ssize_t (*pwrite)(int fd, const void *buf, size_t len, off_t off);
    ssize_t (*pread)(int fd, void *buf, size_t len, off_t off);
};

struct sage_ixbuild_opts {
    /* Bytes of postings and vocabulary held in memory; past it, after a
     * chunk, they are written to the temporary file as one sorted run and
     * freed. 0: no limit, no temporary file. Chunk lengths (4 bytes a chunk)
     * always stay in memory. Writing spills the rest too, then merges with
     * a read buffer per run (together half the limit, or 4 KiB each past
     * limit / 8 KiB runs) and one term's postings in memory. */
    size_t memory_limit;
    /* Directory of the temporary file (needed with a limit). The file has no
     * name (O_TMPFILE, or unlinked as soon as made), so it never outlives
     * the process. */
    const char *tmp_dir;
    const struct sage_ixbuild_io *io;   /* NULL: the real pwrite and pread */
};

struct sage_ixbuild;

/* Makes a builder; opts may be NULL (no limit). With a limit the temporary
 * file is created now, so a directory that is missing or not writable fails
 * here (-SAGE_EIO naming it); a limit without tmp_dir is -SAGE_EINVAL. On
 * success *out owns the builder: free it with sage_ixbuild_free. */
int sage_ixbuild_new(const struct sage_tokenizer_opts *tok, const struct sage_ixbuild_opts *opts,
                     struct sage_ixbuild **out, struct sage_err *err);
/* Frees the builder and closes (so deletes) its temporary file; NULL allowed. */
void sage_ixbuild_free(struct sage_ixbuild *b);

/* Indexes the next chunk's text; its token count goes to *n_tokens (may be
 * NULL). Fails with -SAGE_ELIMIT past 2^32 - 2 chunks, -SAGE_ENOMEM, or
 * -SAGE_EIO when a run cannot be written (disk full); after a failure other
 * than LIMIT the builder refuses further use: free it. */
int sage_ixbuild_add(struct sage_ixbuild *b, const char *text, size_t len, uint32_t *n_tokens,
                     struct sage_err *err);

/* Chunks added so far. */
uint32_t sage_ixbuild_n_chunks(const struct sage_ixbuild *b);

/* Writes the NORMS, POSTINGS and LEXICON sections, in that order, merging
 * any spilled runs. Call it once: it consumes the runs. -SAGE_ENOMEM,
 * -SAGE_EIO (the temporary file or the writer) or the writer's error. */
int sage_ixbuild_write(struct sage_ixbuild *b, struct sage_writer *w, struct sage_err *err);

#endif
