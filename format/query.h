/* The query language shared by sage-indexer query and searchd:
 *   words            ranked by BM25 (any of them may match)
 *   "a phrase"       its words, adjacent and in order, must appear
 *   +word            must appear          -word   must not appear
 *   library:NAME     only that library (several: any of them)
 *   path:PREFIX      only documents whose path starts with PREFIX
 * A query is untrusted input: its length, the number of words, phrases and
 * filters are capped, and a missing closing quote ends the phrase at the end
 * of the query. Parsing only splits the text; words are normalized later by
 * the tokenizer, so a filter value keeps its case. */
#ifndef SAGE_QUERY_H
#define SAGE_QUERY_H

#include <stddef.h>

#include "err.h"

#define SAGE_QUERY_MAX_LEN 4096
#define SAGE_QUERY_MAX_PARTS 32     /* phrases, required, excluded, filters: each */

struct sage_query {
    char *text;                     /* words and phrase words, for ranking (owned) */
    char *phrases[SAGE_QUERY_MAX_PARTS];
    size_t n_phrases;
    char *required[SAGE_QUERY_MAX_PARTS];
    size_t n_required;
    char *excluded[SAGE_QUERY_MAX_PARTS];
    size_t n_excluded;
    char *libraries[SAGE_QUERY_MAX_PARTS];
    size_t n_libraries;
    char *paths[SAGE_QUERY_MAX_PARTS];
    size_t n_paths;
};

/* Parses q[0, len) into *out; -SAGE_ELIMIT past the caps, -SAGE_EINVAL for
 * bytes that are not UTF-8 or a filter without a value. Release with
 * sage_query_release (also after a failure). */
int sage_query_parse(const char *q, size_t len, struct sage_query *out, struct sage_err *err);
void sage_query_release(struct sage_query *q);

/* The text a dense search embeds for query q[0, len): its words and phrase
 * words (sage_query.text), without the operators, which mean nothing to an
 * embedding model; q itself when that leaves nothing (or q does not parse).
 * Both programs embed this, so they rank alike. *out is owned (sage_free).
 * 0, or -SAGE_ENOMEM. */
int sage_query_embed_text(const char *q, size_t len, char **out, struct sage_err *err);

#endif
