/* Text read by OCR, by page image (section OCR_PAGES, FORMAT.md §9.14): for
 * each page without a text layer that a build had read, the digest of its
 * rendered image, the engine that read it and the text. A later build given
 * the file (--reuse) takes the text of a page whose digest and engine match
 * instead of reading it again. */
#ifndef SAGE_OCRPAGES_H
#define SAGE_OCRPAGES_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "reader.h"
#include "rectab.h"
#include "writer.h"

#define SAGE_OCRPAGES_MAX_ENGINES 64u
#define SAGE_OCRPAGES_MAX_BYTES ((size_t)1 << 30)   /* decoded section */

struct sage_ocrpage {
    uint8_t hash[16];
    uint32_t engine;        /* index into the builder's engines */
    size_t off, len;        /* the text in the builder's text buffer */
};

/* Collects pages in any order; not thread-safe (callers lock). */
struct sage_ocrpages_builder {
    struct sage_ocrpage *pages;
    size_t n, cap;
    char *text;
    size_t text_len, text_cap;
    char *engines[SAGE_OCRPAGES_MAX_ENGINES];
    uint32_t n_engines;
};

void sage_ocrpages_builder_init(struct sage_ocrpages_builder *b);
void sage_ocrpages_builder_release(struct sage_ocrpages_builder *b);
/* Records the text one engine read from the page image with this digest. */
int sage_ocrpages_add(struct sage_ocrpages_builder *b, const uint8_t hash[16], const char *engine,
                      const char *text, size_t len, struct sage_err *err);
/* Writes the section (nothing when no page was added): pages sorted by
 * digest then engine, one per pair (the first added wins), so equal
 * inputs give equal bytes. The builder is only released afterwards. */
int sage_ocrpages_write(struct sage_ocrpages_builder *b, struct sage_writer *w,
                        struct sage_err *err);

struct sage_ocrpages {
    struct sage_bytes bytes;    /* the decoded section */
    struct sage_rectab tab;
    uint64_t n;                 /* pages: records 1 .. n */
    char **engines;
    uint32_t n_engines;
};

/* Decodes and checks the section. -SAGE_ENOTFOUND without one; CORRUPT
 * when a record is short, names an unknown engine, or the pages are not in
 * strictly increasing (digest, engine) order. */
int sage_ocrpages_open(struct sage_ocrpages *p, const struct sage_reader *r, struct sage_err *err);
void sage_ocrpages_release(struct sage_ocrpages *p);
/* The text engine read from the page with this digest: 1 and (*text, *len)
 * inside p (not NUL-terminated), or 0 when p has none. */
int sage_ocrpages_find(const struct sage_ocrpages *p, const uint8_t hash[16], const char *engine,
                       const char **text, size_t *len);
/* Page i (0 .. n-1, in digest then engine order): its digest, the engine
 * that read it (a string inside p) and its text as (*text, *len) inside p.
 * -SAGE_EINVAL for i out of range. Lets a merge copy every page. */
int sage_ocrpages_page(const struct sage_ocrpages *p, uint64_t i, const uint8_t **hash,
                       const char **engine, const char **text, size_t *len,
                       struct sage_err *err);
/* The digests of the pages engine read, sorted, as one array of 16-byte
 * values (sage_free); *n = 0 and *out = NULL when there are none. */
int sage_ocrpages_digests(const struct sage_ocrpages *p, const char *engine, uint8_t **out,
                          size_t *n, struct sage_err *err);

#endif
