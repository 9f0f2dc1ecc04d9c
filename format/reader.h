/* Reading an index file: open maps the file read-only and validates header,
 * section table and footer in O(1) (a few pages, whatever the file size);
 * sage_reader_verify checks every checksum. Nothing read from the file is
 * trusted: every offset and length is bounds-checked before use.
 * A reader is immutable after open and may be shared by threads. */
#ifndef SAGE_READER_H
#define SAGE_READER_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "layout.h"

enum sage_open_flags {
    SAGE_OPEN_VERIFY = 1u << 0,     /* also run sage_reader_verify */
    SAGE_OPEN_POPULATE = 1u << 1,   /* prefault the mapping (MAP_POPULATE) */
    SAGE_OPEN_TRANSIENT = 1u << 2   /* the caller only verifies: sage_reader_verify
                                       hands pages back as it passes them, so a big
                                       file does not stay in the process's RSS */
};

struct sage_section {
    uint32_t kind;
    uint16_t codec;
    uint64_t off, len, raw_len, checksum;
    const uint8_t *data;        /* stored bytes inside the mapping, len long */
};

/* What fstat said of the file that was mapped (all zero for an image in
 * memory): identifies this version of the file, see stamp.h. */
struct sage_file_stat {
    uint64_t dev, ino, size;
    int64_t mtime_ns, ctime_ns;
};

struct sage_reader_info {
    uint16_t major, minor;
    uint32_t header_len;
    uint32_t n_sections;
    uint64_t file_size, n_docs, n_chunks;
    uint64_t header_checksum, file_checksum;
    struct sage_file_stat st;
};

/* Decoded section bytes: a pointer into the mapping for raw sections, an
 * owned buffer for compressed ones. Release with sage_bytes_release. */
struct sage_bytes {
    const uint8_t *data;
    size_t len;
    void *owned;
};

struct sage_reader;

/* Maps and validates path. Refuses what is not a regular file (without
 * blocking on a FIFO). On success *out owns the reader. */
int sage_reader_open(const char *path, unsigned flags, struct sage_reader **out,
                     struct sage_err *err);

/* Validates an image already in memory (borrowed: it must outlive the reader).
 * Used by the fuzzer and by tests. */
int sage_reader_open_mem(const void *data, size_t len, unsigned flags,
                         struct sage_reader **out, struct sage_err *err);

/* Unmaps and frees; accepts NULL. */
void sage_reader_close(struct sage_reader *r);

const struct sage_reader_info *sage_reader_info(const struct sage_reader *r);

/* Section i (i < n_sections), in file order, including kinds this reader does
 * not know. */
const struct sage_section *sage_reader_section(const struct sage_reader *r, uint32_t i);

/* First section of a kind, or NULL. */
const struct sage_section *sage_reader_find(const struct sage_reader *r, uint32_t kind);

/* Decodes a section into out, refusing one whose decoded size exceeds max_len
 * (0: no cap beyond the declared raw length). */
int sage_reader_load(const struct sage_reader *r, const struct sage_section *s,
                     size_t max_len, struct sage_bytes *out, struct sage_err *err);
void sage_bytes_release(struct sage_bytes *b);

/* Reads every byte: section checksums, zero padding, the whole-file checksum
 * and the decoded size of compressed sections. 0 when all hold. */
int sage_reader_verify(const struct sage_reader *r, struct sage_err *err);

/* The mapped image (for tools such as the corruption helper). */
const uint8_t *sage_reader_base(const struct sage_reader *r);

#endif
