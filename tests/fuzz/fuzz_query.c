/* Fuzz target: the query language. Each input is a query, parsed and then
 * run with sage_search against the committed golden index (opened once; the
 * fuzzer and the replay both run from the repository root), so the filters,
 * required and excluded words and phrase checks all see hostile queries. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "query.h"
#include "reader.h"
#include "search.h"

static struct sage_reader *reader;
static struct sage_searcher *searcher;
static struct sage_tokenizer *tokenizer;

static void setup(void)
{
    struct sage_err err;
    if (reader)
        return;
    if (sage_reader_open("tests/golden/v1.1/sample.sage", 0, &reader, &err) < 0 ||
        sage_searcher_open(reader, &searcher, &err) < 0 ||
        sage_searcher_tokenizer(searcher, &tokenizer, &err) < 0)
        abort();    /* run from the repository root */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sage_query q;
    struct sage_err err;
    struct sage_results res;
    setup();
    if (sage_query_parse((const char *)data, size, &q, &err) == 0 && q.text[0] == '\0' &&
        q.n_phrases)
        abort();    /* a phrase always contributes its words to the ranked text */
    sage_query_release(&q);
    struct sage_search_opts o = { .k = 5 };
    if (sage_search(searcher, tokenizer, (const char *)data, size, &o, &res, &err) == 0) {
        for (size_t i = 1; i < res.n_hits; i++)
            if (res.hits[i].score > res.hits[i - 1].score)
                abort();    /* hits come best first */
        sage_results_release(&res);
    }
    return 0;
}
