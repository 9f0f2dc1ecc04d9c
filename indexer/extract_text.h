/* Extraction of plain text, Markdown and reStructuredText: headings become
 * the heading path of the text under them (Markdown ATX "#" and setext
 * underlines, RST over/underlined titles, levels by order of appearance);
 * fenced and indented code stays text. Title: the first top-level heading,
 * else the first heading, else the first non-blank line. */
#ifndef INDEXER_EXTRACT_TEXT_H
#define INDEXER_EXTRACT_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "extract.h"

enum text_kind { TEXT_PLAIN, TEXT_MARKDOWN, TEXT_RST };

int extract_text(const uint8_t *data, size_t len, enum text_kind kind, struct extracted *out,
                 struct sage_err *err);

#endif
