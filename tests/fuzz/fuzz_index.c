/* Fuzz target for the inverted index and the chunk store (format 1.1): opens
 * the input, checksums recomputed, as an in-memory image, looks up terms and
 * their postings, runs BM25 top-k (block-max WAND and exhaustive) for a few
 * queries and decodes the hit chunks and the first records of the chunk store.
 * A corrupt index must give errors; crashes, leaks, hangs and sanitizer reports
 * are bugs.
 *
 * Every input has its header, section and footer checksums recomputed before
 * it is opened (fix_checksums.h), so a mutation anywhere, the section table
 * included, reaches the lexicon and postings decoders instead of stopping at
 * an XXH3 check. A leading 'F' byte, which some seeds carry, is skipped: it
 * marks an image meant for this recomputation (all of them are). Checksum
 * refusals themselves are fuzz_reader's business. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "chunkstore.h"
#include "fix_checksums.h"
#include "fuzz.h"
#include "index.h"
#include "reader.h"
#include "scan.h"
#include "tokenize.h"

#define MAX_CHUNKS 64u      /* chunk records decoded per input */

/* Terms of the seed corpus (stemmed and not), absent ones, and the extremes
 * of the byte order, so lookups end in every part of the lexicon. */
static const char *const terms[] = { "hello", "fox", "world", "instal", "install", "alpha",
                                     "w1", "w299", "token", "zzzz", "a", "", "\x7f\xff" };
static const char *const queries[] = {
    "hello fox", "alpha beta gamma delta", "install", "w1 w2 w3 w4 w5 w6 w7 w8 token query",
    "nothing here", "the quick brown", "a", "zzzz",
    /* 32 distinct words, as many as a query uses */
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november "
    "oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu one two three "
    "four five six",
};

/* The tokenizers are made once: a stemmer is costly, and inputs do not touch them. */
static struct sage_tokenizer *tokenizer(int stem)
{
    static struct sage_tokenizer *tk[2];
    if (!tk[stem]) {
        struct sage_tokenizer_opts o = { .stemmer = "english" };
        if (sage_tokenizer_new(stem ? &o : NULL, &tk[stem], NULL) < 0)
            abort();    /* our own setup, not the input */
    }
    return tk[stem];
}

static void decode_chunk(const struct sage_chunkstore *cs, uint64_t i)
{
    json_t *rec = NULL;
    if (sage_chunkstore_get(cs, i, &rec, NULL) == 0)
        json_decref(rec);
}

static void search(const struct sage_index *ix, const struct sage_chunkstore *cs, int have_cs)
{
    struct sage_err err = { 0 };
    for (size_t t = 0; t < sizeof(terms) / sizeof(*terms); t++) {
        struct sage_term_info ti;
        if (sage_index_lookup(ix, terms[t], strlen(terms[t]), &ti, &err) != 1)
            continue;
        /* n_chunks bits: the norms hold 4 bytes a chunk, so this is bounded
         * by the input's size */
        uint8_t *bits = calloc(ix->n_chunks / 8 + 1, 1);
        if (!bits)
            abort();
        (void)sage_index_term_bits(ix, &ti, bits, &err);
        free(bits);
    }
    for (size_t q = 0; q < sizeof(queries) / sizeof(*queries); q++) {
        for (int mode = 0; mode < 2; mode++) {
            struct sage_bm25_opts o = { .k = q == 0 ? 1 : 10, .exhaustive = mode };
            struct sage_results res = { 0 };
            if (sage_bm25_search(ix, tokenizer((int)(q & 1)), queries[q], &o, &res, &err) == 0) {
                if (res.n_hits > o.k || res.total < res.n_hits || (mode && !res.total_exact))
                    abort();    /* a result that breaks the contract, corrupt input or not */
                for (size_t h = 0; h < res.n_hits; h++) {
                    if (res.hits[h].doc >= ix->n_chunks ||
                        (h && res.hits[h].score > res.hits[h - 1].score))
                        abort();
                    if (have_cs)
                        decode_chunk(cs, res.hits[h].doc);
                }
            }
            sage_results_release(&res);
        }
    }
}

static void run(const uint8_t *data, size_t size)
{
    struct sage_reader *r = NULL;
    struct sage_index ix;
    struct sage_chunkstore cs;
    if (sage_reader_open_mem(data, size, 0, &r, NULL) < 0)
        return;
    int have_cs = sage_chunkstore_open(&cs, r, NULL) == 0;
    if (have_cs) {
        uint64_t n = cs.n < MAX_CHUNKS ? cs.n : MAX_CHUNKS;
        for (uint64_t i = 0; i <= n; i++)   /* i == n: past the end when n == cs.n */
            decode_chunk(&cs, i);
        decode_chunk(&cs, cs.n ? cs.n - 1 : 0);
    }
    if (sage_index_open(&ix, r, NULL) == 0)
        search(&ix, &cs, have_cs);
    sage_reader_close(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size && data[0] == 'F')
        data++, size--;
    /* The index is not verified at open, but the header is: fix its checksum. */
    uint8_t *copy = size ? malloc(size) : NULL;
    if (copy) {
        memcpy(copy, data, size);
        fuzz_fix_checksums(copy, size);
        run(copy, size);
        free(copy);
    }
    return 0;
}
