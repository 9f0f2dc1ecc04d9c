/* What extraction produces from one file, whatever its type: a title and a
 * sequence of text blocks, each under a heading path and on a page. The
 * chunker (chunk.c) cuts blocks into chunks; the extractors (extract_*.c)
 * only fill this structure. All text is valid UTF-8. */
#ifndef INDEXER_EXTRACT_H
#define INDEXER_EXTRACT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct doc_block {
    char *text;             /* UTF-8, NUL-terminated, owned */
    size_t text_len;
    char *heading;          /* heading path ("Install > Requirements"), owned; NULL for none */
    uint32_t page;          /* 1-based page for paged formats (PDF), 0 otherwise */
};

struct extracted {
    char *title;            /* owned; NULL when the file names none */
    struct doc_block *blocks;
    size_t n_blocks, cap_blocks;
    uint32_t n_pages;       /* pages seen (PDF), 0 otherwise */
    uint32_t n_ocr_pages;   /* pages without a text layer, not OCRed */
    uint32_t n_ocr_done;    /* pages whose text came from OCR */
    struct page_image *images;  /* pages rendered for a remote OCR server */
    size_t n_images;
    size_t total_len;       /* sum of text_len, capped by extracted_add */
};

/* A page without a text layer rendered to PNG (PDF_OCR_IMAGES). */
struct page_image {
    uint32_t page;
    uint8_t *png;           /* owned */
    size_t len;
};

/* The most text one file may yield (bytes); extracted_add refuses more. */
#define EXTRACT_MAX_TEXT ((size_t)256 << 20)

/* Appends a block, copying text (made valid UTF-8: invalid bytes become
 * U+FFFD) and heading. Empty or whitespace-only text is dropped. */
int extracted_add(struct extracted *x, const char *text, size_t len, const char *heading,
                  uint32_t page, struct sage_err *err);
/* Sets the title (copied, made valid UTF-8, whitespace collapsed). */
int extracted_set_title(struct extracted *x, const char *title, size_t len, struct sage_err *err);
void extracted_release(struct extracted *x);

/* HTML through libxml2's HTML parser: <title> (else the first <h1>) as title,
 * script/style/noscript/template dropped, entities decoded, one block per
 * run of text under the current h1..h6 path. */
int extract_html(const uint8_t *data, size_t len, struct extracted *out, struct sage_err *err);

/* Pages without a text layer (scans): left alone (counted in n_ocr_pages),
 * read by tesseract inside the PDF child, or rendered to PNG for a remote
 * OCR server (extracted.images, read by the caller). */
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
void extract_pdf_child(uint32_t max_pages, int ocr, unsigned ocr_dpi) __attribute__((noreturn));

#endif
