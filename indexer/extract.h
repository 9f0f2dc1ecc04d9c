/* What extraction produces from one file, whatever its type: a title and a
 * sequence of text blocks, each under a heading path and on a page. The
 * chunker (chunk.c) cuts blocks into chunks; the extractors (extract_*.c)
 * only fill this structure. All text is valid UTF-8. */
#ifndef INDEXER_EXTRACT_H
#define INDEXER_EXTRACT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* How a block's text was obtained (the chunk records' "source"). */
enum text_source { SOURCE_TEXT, SOURCE_OCR_LOCAL, SOURCE_OCR_REMOTE };

struct doc_block {
    char *text;             /* UTF-8, NUL-terminated, owned */
    size_t text_len;
    char *heading;          /* heading path ("Install > Requirements"), owned; NULL for none */
    uint32_t page;          /* 1-based page for paged formats (PDF), 0 otherwise */
    uint8_t source;         /* enum text_source */
};

struct extracted {
    char *title;            /* owned; NULL when the file names none */
    struct doc_block *blocks;
    size_t n_blocks, cap_blocks;
    uint32_t n_pages;       /* pages seen (PDF), 0 otherwise */
    uint32_t n_ocr_pages;   /* pages without a text layer, not OCRed */
    uint32_t n_ocr_done;    /* pages whose text came from OCR */
    uint32_t n_ocr_reused;  /* of those, pages whose text a previous index held */
    struct ocr_request *ocr;    /* pages without a text layer, for the caller */
    size_t n_ocr;
    size_t total_len;       /* sum of text_len, capped by extracted_add */
};

/* A page without a text layer, rendered: identified by the digest of its
 * pixels, with the text tesseract read from it (PDF_OCR_LOCAL), or as PNG
 * for an OCR server (PDF_OCR_IMAGES), or neither when the caller said it
 * knows the digest (pdf_limits.ocr_known). The caller turns requests into
 * text blocks (extracted_add_source) and releases them. */
struct ocr_request {
    uint32_t page;
    uint8_t hash[16];       /* XXH3-128 of the rendered pixels and their size */
    char *text;             /* owned, NUL-terminated; NULL unless read locally */
    size_t text_len;
    uint8_t *png;           /* owned; NULL unless for a server */
    size_t png_len;
};

/* The most text one file may yield (bytes); extracted_add refuses more. */
#define EXTRACT_MAX_TEXT ((size_t)256 << 20)

/* Appends a block, copying text (made valid UTF-8: invalid bytes become
 * U+FFFD) and heading. Empty or whitespace-only text is dropped. */
int extracted_add(struct extracted *x, const char *text, size_t len, const char *heading,
                  uint32_t page, struct sage_err *err);
/* The same for text obtained otherwise than from the file's text (OCR). */
int extracted_add_source(struct extracted *x, const char *text, size_t len, const char *heading,
                         uint32_t page, enum text_source source, struct sage_err *err);
/* Frees the OCR requests (extracted_release does too). */
void extracted_drop_ocr(struct extracted *x);
/* Sets the title (copied, made valid UTF-8, whitespace collapsed). */
int extracted_set_title(struct extracted *x, const char *title, size_t len, struct sage_err *err);
void extracted_release(struct extracted *x);

/* HTML through libxml2's HTML parser: <title> (else the first <h1>) as title,
 * script/style/noscript/template dropped, entities decoded, one block per
 * run of text under the current h1..h6 path. */
int extract_html(const uint8_t *data, size_t len, struct extracted *out, struct sage_err *err);

/* Pages without a text layer (scans): left alone (counted in n_ocr_pages),
 * read by tesseract inside the PDF child, or rendered to PNG for a remote
 * OCR server; either way they reach the caller as extracted.ocr. */
enum pdf_ocr { PDF_OCR_NONE, PDF_OCR_LOCAL, PDF_OCR_IMAGES };

/* Sorts the blocks by page, keeping the order within a page: after text
 * read from page images was added at the end. */
void extracted_sort_pages(struct extracted *x);

/* Limits for PDF extraction, which runs in a child process. */
struct pdf_limits {
    unsigned timeout_ms;    /* wall-clock limit for the child */
    size_t max_memory;      /* bytes the child may add to the address space it
                               inherits at fork (its RLIMIT_AS is that size plus
                               this); 0: no limit */
    uint32_t max_pages;
    int ocr;                /* enum pdf_ocr: what becomes of pages without text */
    unsigned ocr_dpi;       /* resolution pages are rendered at for OCR */
    const uint8_t *ocr_known;   /* sorted 16-byte page digests whose text the caller
                                   has (--reuse): such pages are neither read nor
                                   encoded, only reported; NULL: none */
    size_t n_ocr_known;
    int ocr_known_fd;       /* the same bytes in a file, for an exec'd child; -1 */
    const char *helper;     /* NULL: the child parses after fork; else the child
                               execs this program as "helper __pdf-child N" (a
                               fresh process: needed when the caller has threads,
                               whose locks a forked child would inherit held) */
};

/* PDF through poppler-glib in a forked child (timeout and memory limit
 * enforced by the parent): one block per page with its page number, title
 * from the document metadata; pages without text are counted in n_ocr_pages.
 * A crash, hang or limit in the child is an error naming the cause, never a
 * crash of the caller. */
int extract_pdf(const uint8_t *data, size_t len, const struct pdf_limits *lim,
                struct extracted *out, struct sage_err *err);

/* The exec'd child's side: parses the PDF in fd 4 and streams frames to
 * fd 3 (the caller has set up the fds); never returns. */
void extract_pdf_child(uint32_t max_pages, int ocr, unsigned ocr_dpi, int known)
    __attribute__((noreturn));

#endif
