/* Remote OCR of page images through an OpenAI-compatible vision endpoint
 * (olmOCR on vLLM): each page goes as a base64 PNG image_url to
 * POST {base}/v1/chat/completions, with the same retry policy as embeddings
 * (remote.c). Rendering pages (poppler + cairo), the local tesseract
 * default and reuse by content hash are left to the build. */
#ifndef INDEXER_OCR_H
#define INDEXER_OCR_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "remote.h"

#define OCR_DEFAULT_PROMPT \
    "Transcribe all text on this page as plain text, in reading order. Output only the text."

/* Everything is borrowed; ocr_new copies what it keeps. A zero number takes
 * the default shown (ocr_config_init sets them explicitly). */
struct ocr_config {
    const char *url;            /* base URL: http://gpu:8000, .../v1 or .../v1/chat/completions */
    const char *model;          /* sent as "model"; required */
    const char *api_key;        /* Bearer key; NULL: none */
    const char *api_key_file;   /* its first line, read at ocr_new when api_key is NULL */
    const char *prompt;         /* the text part of the message; NULL: OCR_DEFAULT_PROMPT */
    unsigned max_tokens;        /* completion budget per page (4096) */
    struct remote_policy retry; /* timeout 120000 ms per page, 6 attempts, a
                                   300000 ms budget, backoff 500 to 30000 ms */
    size_t max_image;           /* PNG bytes accepted per page (32 MiB) */
};

struct ocr_stats {
    uint64_t pages;             /* pages transcribed */
    struct remote_counters http;
};

void ocr_config_init(struct ocr_config *c);

/* Sets the fields named by SAGE_OCR_URL, SAGE_OCR_MODEL, SAGE_OCR_API_KEY,
 * SAGE_OCR_API_KEY_FILE, SAGE_OCR_PROMPT, SAGE_OCR_MAX_TOKENS,
 * SAGE_OCR_TIMEOUT_MS, SAGE_OCR_RETRIES, SAGE_OCR_RETRY_BUDGET_MS, when set.
 * Strings point into the environment. -SAGE_EINVAL naming the variable. */
int ocr_config_from_env(struct ocr_config *c, struct sage_err *err);

struct ocr_client;

/* Checks c and reads the key file; no request is sent. */
int ocr_new(const struct ocr_config *c, struct ocr_client **out, struct sage_err *err);

/* Transcribes one page image png[0..len) (PNG bytes). *text receives the
 * text (valid UTF-8, NUL-terminated, possibly empty; sage_free) and *text_len
 * its length. -SAGE_EINVAL for bytes that are not a PNG or are over
 * max_image (nothing is sent), -SAGE_EREMOTE naming the server, status and
 * message after the retries. Thread-safe: calls run in parallel, each on a
 * kept-alive connection of its own. */
int ocr_page(struct ocr_client *o, const uint8_t *png, size_t len, char **text, size_t *text_len,
             struct sage_err *err);

/* A snapshot of the counters. Thread-safe. */
void ocr_get_stats(const struct ocr_client *o, struct ocr_stats *s);

/* NULL allowed; no ocr_page may be running. */
void ocr_free(struct ocr_client *o);

/* Reads a chat completion body[0..len): choices[0].message.content, a
 * string (or an array of {"type":"text","text"} parts, joined). olmOCR's
 * answer formats are unwrapped: a JSON object's "natural_text" (null: no
 * text), or the text after a "---" YAML front matter block. *text as in
 * ocr_page. -SAGE_EREMOTE with the reason, -SAGE_ENOMEM. Pure, for fuzzing. */
int ocr_parse_response(const char *body, size_t len, char **text, size_t *text_len,
                       struct sage_err *err);

#endif
