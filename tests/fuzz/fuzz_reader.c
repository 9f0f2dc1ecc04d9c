/* Fuzz target for the index reader: opens the input as an in-memory image, decodes
 * every section (record tables of DOCS and TEXT, msgpack of DOCS records and BUILD,
 * the rows of VECTORS, the headings of CHUNK_META), searches the HNSW graph with a
 * few of the rows as queries, with and without a filter,
 * verifies it and opens it again with SAGE_OPEN_VERIFY; then does it all once more on
 * a copy with its checksums recomputed, so mutations get past the XXH3 checks to the
 * code behind them. Errors are expected; crashes, leaks and sanitizer reports are bugs. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "chunkmeta.h"
#include "ocrpages.h"
#include "fix_checksums.h"
#include "fuzz.h"
#include "hnsw.h"
#include "mpjson.h"
#include "reader.h"
#include "rectab.h"
#include "vectors.h"

#define LOAD_CAP ((size_t)64 << 20)    /* largest section we decode */
#define MAX_RECORDS 4096u              /* records read per table */

static void walk_table(const struct sage_section *s, const struct sage_bytes *b)
{
    struct sage_rectab t;
    struct sage_err err = { 0 };
    if (sage_rectab_open(&t, b->data, b->len, &err) < 0)
        return;
    uint64_t n = t.n < MAX_RECORDS ? t.n : MAX_RECORDS;
    for (uint64_t i = 0; i <= n; i++) {   /* i == n checks the out-of-range refusal */
        const uint8_t *rec;
        size_t len;
        if (sage_rectab_get(&t, i, &rec, &len, &err) < 0)
            continue;
        if (s->kind == SAGE_SECTION_DOCS) {
            json_t *v = NULL;
            if (sage_mpjson_decode(rec, len, &v, &err) == 0)
                json_decref(v);
        }
    }
}

/* A few searches of the graph, when there is one for these vectors: hits
 * must be in range and allowed, best first. */
static void hnsw_search(const struct sage_reader *r, const struct sage_vectors *v)
{
    struct sage_hnsw h;
    struct sage_err err = { 0 };
    if (sage_hnsw_open(&h, r, &err) < 0)
        return;
    uint64_t *allow = calloc(v->n / 64 + 1, sizeof(*allow));
    if (!allow)
        return;
    for (uint64_t i = 0; i < v->n; i += 3)
        allow[i / 64] |= 1ull << (i % 64);
    for (uint64_t i = 0; i < v->n && i < 4; i++) {
        struct sage_dense_hit hits[8];
        size_t n = 0;
        const uint64_t *a = i % 2 ? allow : NULL;
        if (sage_hnsw_search(&h, v, sage_vectors_row(v, i), 4 + 8 * i, 8, a, hits, &n, &err) < 0)
            continue;
        for (size_t j = 0; j < n; j++)
            if (n > 8 || hits[j].chunk >= v->n || (a && !(a[hits[j].chunk / 64] >> (hits[j].chunk % 64) & 1)) ||
                (j && hits[j].score > hits[j - 1].score))
                abort();
    }
    free(allow);
}

static void run(const uint8_t *data, size_t size)
{
    struct sage_reader *r = NULL;
    struct sage_err err = { 0 };
    if (sage_reader_open_mem(data, size, 0, &r, &err) == 0) {
        const struct sage_reader_info *in = sage_reader_info(r);
        const struct sage_section *s;
        for (uint32_t i = 0; (s = sage_reader_section(r, i)) != NULL; i++) {
            struct sage_bytes b;
            if (sage_reader_load(r, s, LOAD_CAP, &b, &err) < 0)
                continue;
            if (s->kind == SAGE_SECTION_DOCS || s->kind == SAGE_SECTION_TEXT) {
                walk_table(s, &b);
            } else if (s->kind == SAGE_SECTION_BUILD) {
                json_t *v = NULL;
                if (sage_mpjson_decode(b.data, b.len, &v, &err) == 0)
                    json_decref(v);
            }
            sage_bytes_release(&b);
        }
        if (sage_reader_section(r, in->n_sections) != NULL)
            abort();    /* past the end of the table must be NULL */
        (void)sage_reader_find(r, SAGE_SECTION_BUILD);
        struct sage_vectors v;
        if (sage_vectors_open(&v, r, &err) == 0) {
            volatile float acc = 0;     /* every area's first and last bytes are in bounds */
            for (uint64_t i = 0; i < v.n && i < MAX_RECORDS; i++)
                acc += sage_vectors_row(&v, i)[0] + sage_vectors_row(&v, i)[v.dim - 1] +
                       sage_vectors_row_i8(&v, i)[v.dim - 1] + sage_vectors_scale(&v, i) +
                       sage_vectors_hash(&v, i)[15];
            (void)acc;
            hnsw_search(r, &v);
        }
        struct sage_chunkmeta cm;
        if (sage_chunkmeta_open(&cm, r, &err) == 0)
            for (uint64_t i = 0; i < cm.n && i < MAX_RECORDS; i++) {
                uint32_t page;
                const char *h;
                size_t hl;
                if (sage_chunkmeta_get(&cm, i, &page, &h, &hl, &err) == 0 && h && hl)
                    (void)*(volatile const char *)(h + hl - 1);
            }
        struct sage_ocrpages op;
        if (sage_ocrpages_open(&op, r, &err) == 0) {
            uint8_t *dig = NULL;
            size_t nd = 0;
            const char *t;
            size_t tl;
            for (uint32_t e = 0; e < op.n_engines; e++)
                if (sage_ocrpages_digests(&op, op.engines[e], &dig, &nd, &err) == 0) {
                    for (size_t i = 0; i < nd && i < MAX_RECORDS; i++)
                        if (sage_ocrpages_find(&op, dig + 16 * i, op.engines[e], &t, &tl) && tl)
                            (void)*(volatile const char *)(t + tl - 1);
                    sage_free(dig);
                }
            sage_ocrpages_release(&op);
        }
        (void)sage_reader_verify(r, &err);
        sage_reader_close(r);
    }
    r = NULL;
    if (sage_reader_open_mem(data, size, SAGE_OPEN_VERIFY, &r, &err) == 0)
        sage_reader_close(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    run(data, size);
    uint8_t *copy = size ? malloc(size) : NULL;
    if (copy) {
        memcpy(copy, data, size);
        if (fuzz_fix_checksums(copy, size) && memcmp(copy, data, size) != 0)
            run(copy, size);
        free(copy);
    }
    return 0;
}
