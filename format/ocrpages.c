/* OCR_PAGES (ocrpages.h): a zstd record table whose record 0 is a msgpack
 * array of engine names and whose records 1..n are pages: digest[16], u32
 * engine (little-endian), then the text. */
#include "ocrpages.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "layout.h"
#include "le.h"
#include "mpjson.h"

#define PAGE_HEAD 20    /* digest and engine before the text */

void sage_ocrpages_builder_init(struct sage_ocrpages_builder *b)
{
    memset(b, 0, sizeof(*b));
}

void sage_ocrpages_builder_release(struct sage_ocrpages_builder *b)
{
    sage_free(b->pages);
    sage_free(b->text);
    for (uint32_t i = 0; i < b->n_engines; i++)
        sage_free(b->engines[i]);
    memset(b, 0, sizeof(*b));
}

int sage_ocrpages_add(struct sage_ocrpages_builder *b, const uint8_t hash[16], const char *engine,
                      const char *text, size_t len, struct sage_err *err)
{
    uint32_t e = 0;
    while (e < b->n_engines && strcmp(b->engines[e], engine) != 0)
        e++;
    if (e == b->n_engines) {
        if (e == SAGE_OCRPAGES_MAX_ENGINES)
            return sage_err_set(err, SAGE_ELIMIT, "more than %u OCR engines", e);
        if (!(b->engines[e] = sage_strdup(engine)))
            return sage_err_set(err, SAGE_ENOMEM, "out of memory for an OCR engine name");
        b->n_engines++;
    }
    if (len > SAGE_OCRPAGES_MAX_BYTES - b->text_len - (b->n + 1) * (PAGE_HEAD + 8))
        return sage_err_set(err, SAGE_ELIMIT, "OCR text exceeds %zu bytes",
                            SAGE_OCRPAGES_MAX_BYTES);
    if (sage_grow((void **)&b->pages, &b->cap, b->n + 1, sizeof(*b->pages)) < 0 ||
        sage_grow((void **)&b->text, &b->text_cap, b->text_len + len, 1) < 0)
        return sage_err_set(err, SAGE_ENOMEM, "out of memory for OCR text");
    struct sage_ocrpage *p = &b->pages[b->n++];
    memcpy(p->hash, hash, 16);
    p->engine = e;
    p->off = b->text_len;
    p->len = len;
    if (len)    /* an empty page's text may be NULL, and so may b->text */
        memcpy(b->text + b->text_len, text, len);
    b->text_len += len;
    return 0;
}

/* Digest, then engine, then order of addition: a stable total order. */
static int cmp_pages(const void *pa, const void *pb)
{
    const struct sage_ocrpage *a = pa, *b = pb;
    int c = memcmp(a->hash, b->hash, 16);
    if (c == 0)
        c = a->engine < b->engine ? -1 : a->engine > b->engine;
    if (c == 0)
        c = a->off < b->off ? -1 : a->off > b->off;
    return c;
}

int sage_ocrpages_write(struct sage_ocrpages_builder *b, struct sage_writer *w,
                        struct sage_err *err)
{
    if (b->n == 0)
        return 0;
    /* engines renumbered in name order, so the bytes do not depend on which
     * worker met which engine first */
    uint32_t order[SAGE_OCRPAGES_MAX_ENGINES], rank[SAGE_OCRPAGES_MAX_ENGINES];
    char *sorted[SAGE_OCRPAGES_MAX_ENGINES];
    for (uint32_t i = 0; i < b->n_engines; i++) {
        uint32_t j = i;
        for (; j > 0 && strcmp(b->engines[order[j - 1]], b->engines[i]) > 0; j--)
            order[j] = order[j - 1];
        order[j] = i;
    }
    for (uint32_t i = 0; i < b->n_engines; i++) {
        rank[order[i]] = i;
        sorted[i] = b->engines[order[i]];
    }
    memcpy(b->engines, sorted, b->n_engines * sizeof(*sorted));
    for (size_t i = 0; i < b->n; i++)
        b->pages[i].engine = rank[b->pages[i].engine];
    qsort(b->pages, b->n, sizeof(*b->pages), cmp_pages);

    struct sage_rectab_builder t;
    uint8_t *names = NULL, *rec = NULL, *buf = NULL;
    size_t names_len = 0, cap = 0;
    int rc = 0;
    json_t *arr = json_array();
    sage_rectab_builder_init(&t, SAGE_OCRPAGES_MAX_BYTES);
    for (uint32_t i = 0; arr && i < b->n_engines && rc == 0; i++)
        rc = json_array_append_new(arr, json_string(b->engines[i]));
    if (!arr || rc < 0) {
        rc = sage_err_set(err, SAGE_ENOMEM, "out of memory for the OCR section");
        goto out;
    }
    if ((rc = sage_mpjson_encode(arr, &names, &names_len, err)) < 0 ||
        (rc = sage_rectab_builder_add(&t, names, names_len, err)) < 0)
        goto out;
    for (size_t i = 0; i < b->n; i++) {
        const struct sage_ocrpage *p = &b->pages[i];
        if (i > 0 && memcmp(p->hash, b->pages[i - 1].hash, 16) == 0 &&
            p->engine == b->pages[i - 1].engine)
            continue;       /* the same page met twice (a duplicate file) */
        if (sage_grow((void **)&rec, &cap, PAGE_HEAD + p->len, 1) < 0) {
            rc = sage_err_set(err, SAGE_ENOMEM, "out of memory for OCR text");
            goto out;
        }
        memcpy(rec, p->hash, 16);
        sage_put32(rec + 16, p->engine);
        if (p->len)
            memcpy(rec + PAGE_HEAD, b->text + p->off, p->len);
        if ((rc = sage_rectab_builder_add(&t, rec, PAGE_HEAD + p->len, err)) < 0)
            goto out;
    }
    size_t size = sage_rectab_builder_size(&t);
    if (!(buf = sage_malloc(size))) {
        rc = sage_err_set(err, SAGE_ENOMEM, "out of memory for the OCR section");
        goto out;
    }
    sage_rectab_builder_encode(&t, buf);
    rc = sage_writer_add(w, SAGE_SECTION_OCR_PAGES, SAGE_CODEC_ZSTD, buf, size, err);
out:
    json_decref(arr);
    sage_free(names);
    sage_free(rec);
    sage_free(buf);
    sage_rectab_builder_release(&t);
    return rc;
}

void sage_ocrpages_release(struct sage_ocrpages *p)
{
    for (uint32_t i = 0; i < p->n_engines; i++)
        sage_free(p->engines[i]);
    sage_free(p->engines);
    sage_bytes_release(&p->bytes);
    memset(p, 0, sizeof(*p));
}

static int page_at(const struct sage_ocrpages *p, uint64_t i, const uint8_t **rec, size_t *len)
{
    struct sage_err e = { 0 };
    return sage_rectab_get(&p->tab, i + 1, rec, len, &e);
}

int sage_ocrpages_open(struct sage_ocrpages *p, const struct sage_reader *r, struct sage_err *err)
{
    const struct sage_section *s = sage_reader_find(r, SAGE_SECTION_OCR_PAGES);
    const uint8_t *rec, *prev = NULL;
    size_t len;
    json_t *names = NULL;
    int rc;
    memset(p, 0, sizeof(*p));
    if (!s)
        return sage_err_set(err, SAGE_ENOTFOUND, "no OCR_PAGES section");
    if ((rc = sage_reader_load(r, s, SAGE_OCRPAGES_MAX_BYTES, &p->bytes, err)) < 0 ||
        (rc = sage_rectab_open(&p->tab, p->bytes.data, p->bytes.len, err)) < 0)
        goto fail;
    if (p->tab.n == 0 || (rc = sage_rectab_get(&p->tab, 0, &rec, &len, err)) < 0 ||
        (rc = sage_mpjson_decode(rec, len, &names, err)) < 0 || !json_is_array(names) ||
        json_array_size(names) > SAGE_OCRPAGES_MAX_ENGINES) {
        rc = rc < 0 ? rc : sage_err_set(err, SAGE_ECORRUPT, "OCR_PAGES: bad engine list");
        goto fail;
    }
    size_t ne = json_array_size(names);
    if (ne && !(p->engines = sage_calloc(ne, sizeof(*p->engines)))) {
        rc = sage_err_set(err, SAGE_ENOMEM, "out of memory for OCR engines");
        goto fail;
    }
    for (size_t i = 0; i < ne; i++) {
        const char *v = json_string_value(json_array_get(names, i));
        if (!v || (i > 0 && strcmp(p->engines[i - 1], v) >= 0)) {
            rc = sage_err_set(err, SAGE_ECORRUPT, "OCR_PAGES: bad engine list");
            goto fail;
        }
        if (!(p->engines[i] = sage_strdup(v))) {
            rc = sage_err_set(err, SAGE_ENOMEM, "out of memory for OCR engines");
            goto fail;
        }
        p->n_engines++;
    }
    p->n = p->tab.n - 1;
    for (uint64_t i = 0; i < p->n; i++) {
        if (page_at(p, i, &rec, &len) < 0 || len < PAGE_HEAD || sage_le32(rec + 16) >= ne) {
            rc = sage_err_set(err, SAGE_ECORRUPT, "OCR_PAGES: bad page record %llu",
                              (unsigned long long)i);
            goto fail;
        }
        int c = prev ? memcmp(prev, rec, 16) : -1;
        if (c > 0 || (c == 0 && sage_le32(prev + 16) >= sage_le32(rec + 16))) {
            rc = sage_err_set(err, SAGE_ECORRUPT, "OCR_PAGES: pages out of order at %llu",
                              (unsigned long long)i);
            goto fail;
        }
        prev = rec;
    }
    json_decref(names);
    return 0;
fail:
    json_decref(names);
    sage_ocrpages_release(p);
    return rc;
}

static int64_t engine_id(const struct sage_ocrpages *p, const char *engine)
{
    for (uint32_t i = 0; i < p->n_engines; i++)
        if (strcmp(p->engines[i], engine) == 0)
            return i;
    return -1;
}

int sage_ocrpages_find(const struct sage_ocrpages *p, const uint8_t hash[16], const char *engine,
                       const char **text, size_t *len)
{
    int64_t e = engine_id(p, engine);
    uint64_t lo = 0, hi = p->n;
    const uint8_t *rec;
    size_t n;
    if (e < 0)
        return 0;
    while (lo < hi) {   /* the first page not below (hash, e) */
        uint64_t mid = lo + (hi - lo) / 2;
        page_at(p, mid, &rec, &n);
        int c = memcmp(rec, hash, 16);
        if (c < 0 || (c == 0 && sage_le32(rec + 16) < (uint32_t)e))
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == p->n || page_at(p, lo, &rec, &n) < 0 || memcmp(rec, hash, 16) != 0 ||
        sage_le32(rec + 16) != (uint32_t)e)
        return 0;
    *text = (const char *)rec + PAGE_HEAD;
    *len = n - PAGE_HEAD;
    return 1;
}

int sage_ocrpages_page(const struct sage_ocrpages *p, uint64_t i, const uint8_t **hash,
                       const char **engine, const char **text, size_t *len,
                       struct sage_err *err)
{
    const uint8_t *rec;
    size_t n;
    if (i >= p->n)
        return sage_err_set(err, SAGE_EINVAL, "no OCR page %llu of %llu", (unsigned long long)i,
                            (unsigned long long)p->n);
    if (page_at(p, i, &rec, &n) < 0)    /* open checked every record */
        return sage_err_set(err, SAGE_ECORRUPT, "OCR page %llu unreadable", (unsigned long long)i);
    *hash = rec;
    *engine = p->engines[sage_le32(rec + 16)];
    *text = (const char *)rec + PAGE_HEAD;
    *len = n - PAGE_HEAD;
    return 0;
}

int sage_ocrpages_digests(const struct sage_ocrpages *p, const char *engine, uint8_t **out,
                          size_t *n, struct sage_err *err)
{
    int64_t e = engine_id(p, engine);
    const uint8_t *rec;
    size_t len, k = 0;
    *out = NULL;
    *n = 0;
    if (e < 0 || p->n == 0)
        return 0;
    if (!(*out = sage_malloc((size_t)p->n * 16)))
        return sage_err_set(err, SAGE_ENOMEM, "out of memory for OCR page digests");
    for (uint64_t i = 0; i < p->n; i++)
        if (page_at(p, i, &rec, &len) == 0 && sage_le32(rec + 16) == (uint32_t)e)
            memcpy(*out + 16 * k++, rec, 16);
    *n = k;
    return 0;
}
