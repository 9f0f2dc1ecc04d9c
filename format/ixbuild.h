/* Building the inverted index: chunks are added in order (ids 0, 1, 2...),
 * tokenized, and their terms' postings accumulated in memory as varint
 * (gap, tf) pairs; write then emits NORMS, POSTINGS and LEXICON through a
 * writer (layouts in FORMAT.md). Single-threaded; the memory held is about
 * the size of the compressed postings plus the vocabulary. */
#ifndef SAGE_IXBUILD_H
#define SAGE_IXBUILD_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "tokenize.h"
#include "writer.h"

#define SAGE_POSTINGS_BLOCK 128     /* postings per block */
#define SAGE_LEXICON_BLOCK 16       /* terms per front-coded lexicon block */

struct sage_ixbuild;

int sage_ixbuild_new(const struct sage_tokenizer_opts *tok, struct sage_ixbuild **out,
                     struct sage_err *err);
void sage_ixbuild_free(struct sage_ixbuild *b);

/* Indexes the next chunk's text; its token count goes to *n_tokens (may be
 * NULL). Fails with -SAGE_ELIMIT past 2^32 - 2 chunks. */
int sage_ixbuild_add(struct sage_ixbuild *b, const char *text, size_t len, uint32_t *n_tokens,
                     struct sage_err *err);

/* Chunks added so far. */
uint32_t sage_ixbuild_n_chunks(const struct sage_ixbuild *b);

/* Writes the NORMS, POSTINGS and LEXICON sections, in that order. */
int sage_ixbuild_write(struct sage_ixbuild *b, struct sage_writer *w, struct sage_err *err);

#endif
