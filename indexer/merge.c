/* sage-indexer merge: writes one index holding every document of several
 * index files, typically the N shards of one corpus built in parallel
 * (build --shard I/N). The inputs are verified and checked for compatible
 * settings; shards are merged in the order a whole build numbers documents
 * (their "seq"), with identical content across shards indexed once, so the
 * merged file answers queries as the whole build does. Chunk texts are
 * taken from the inputs one at a time and indexed again through the sink
 * (sink.c), so postings and BM25 statistics are global; vectors and their
 * text hashes are copied as stored, and --hnsw builds a graph over them. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "cli.h"
#include "layout.h"
#include "log.h"
#include "mpjson.h"
#include "reader.h"
#include "rectab.h"
#include "sink.h"
#include "vectors.h"

#define SKIPPED_LISTED 1000
#define DOCS_MAX ((size_t)1 << 31)      /* decoded DOCS section of one input */

/* One input index, read document by document. */
struct input {
    const char *path;
    struct sage_reader *r;
    json_t *rec;                /* its build record */
    struct sage_bytes docs_bytes;
    struct sage_rectab docs;
    uint64_t n_docs, next;      /* documents, and the next one to take */
    struct sage_chunkstore cs;
    struct sage_vectors vecs;
    int has_vecs;
    uint64_t shard_i, shard_n;  /* shard_n 0: not a shard */
    json_t *cur;                /* record of document next - 1, NULL when done */
    uint64_t seq[3];            /* its place in the whole build (shards only) */
};

struct merge {
    struct input *in;
    int n_in;
    int sharded;
    struct sink s;
    json_t *seen;               /* shards: content hash -> merged document id; else
                                 * library and path -> input */
    uint64_t n_bytes, n_dupes;
    int quiet;
};

static void merge_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void merge_error(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    sage_log(SAGE_LOG_ERROR, "merge: %s", msg);
}

static const char *str_at(json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : "";
}

/* Reads a seq: [file, member, line] (FORMAT.md §9.4). */
static int read_seq(json_t *a, uint64_t seq[3])
{
    if (!json_is_array(a) || json_array_size(a) != 3)
        return -1;
    for (size_t i = 0; i < 3; i++) {
        json_t *v = json_array_get(a, i);
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return -1;
        seq[i] = (uint64_t)json_integer_value(v);
    }
    return 0;
}

static int seq_cmp(const uint64_t *a, const uint64_t *b)
{
    for (int i = 0; i < 3; i++)
        if (a[i] != b[i])
            return a[i] < b[i] ? -1 : 1;
    return 0;
}

/* Decodes the input's next document record into cur (NULL past the last).
 * -1 (logged) when it is unreadable or, in a shard, out of order. */
static int input_advance(struct input *in)
{
    struct sage_err err = { 0 };
    const uint8_t *p;
    size_t len;
    uint64_t prev[3];
    memcpy(prev, in->seq, sizeof(prev));
    json_decref(in->cur);
    in->cur = NULL;
    if (in->next >= in->n_docs)
        return 0;
    if (sage_rectab_get(&in->docs, in->next, &p, &len, &err) < 0 ||
        sage_mpjson_decode(p, len, &in->cur, &err) < 0 || !json_is_object(in->cur)) {
        merge_error("'%s': document %llu: %s", in->path, (unsigned long long)in->next,
                    err.msg[0] ? err.msg : "not a map");
        return -1;
    }
    in->next++;
    if (in->shard_n && (read_seq(json_object_get(in->cur, "seq"), in->seq) < 0 ||
                        (in->next > 1 && seq_cmp(prev, in->seq) >= 0))) {
        merge_error("'%s': document %llu has no crawl position (seq), or one out of order: "
                    "rebuild the shard with this sage-indexer", in->path,
                    (unsigned long long)(in->next - 1));
        return -1;
    }
    return 0;
}

/* Opens and verifies one input and reads its build record. */
static int input_open(struct input *in, const char *path)
{
    struct sage_err err = { 0 };
    struct sage_bytes rb = { 0 };
    const struct sage_section *s;
    int rc = -1;
    in->path = path;
    if (sage_reader_open(path, SAGE_OPEN_VERIFY, &in->r, &err) < 0) {
        merge_error("cannot use '%s': %s", path, err.msg);
        goto out;
    }
    if (!(s = sage_reader_find(in->r, SAGE_SECTION_BUILD)) ||
        sage_reader_load(in->r, s, 16u << 20, &rb, &err) < 0 ||
        sage_mpjson_decode(rb.data, rb.len, &in->rec, &err) < 0 || !json_is_object(in->rec)) {
        merge_error("cannot use '%s': %s", path, err.msg[0] ? err.msg : "no build record");
        goto out;
    }
    if (!(s = sage_reader_find(in->r, SAGE_SECTION_DOCS)) ||
        sage_reader_load(in->r, s, DOCS_MAX, &in->docs_bytes, &err) < 0 ||
        sage_rectab_open(&in->docs, in->docs_bytes.data, in->docs_bytes.len, &err) < 0) {
        merge_error("cannot use '%s': %s", path, err.msg[0] ? err.msg : "no documents");
        goto out;
    }
    in->n_docs = in->docs.n;
    if (in->n_docs != sage_reader_info(in->r)->n_docs) {
        merge_error("cannot use '%s': %llu document records for %llu documents", path,
                    (unsigned long long)in->n_docs,
                    (unsigned long long)sage_reader_info(in->r)->n_docs);
        goto out;
    }
    if (sage_chunkstore_open(&in->cs, in->r, &err) < 0) {
        merge_error("cannot use '%s': %s (an index of format 1.1 or later is needed)", path,
                    err.msg);
        goto out;
    }
    int vrc = sage_vectors_open(&in->vecs, in->r, &err);
    if (vrc < 0 && vrc != -SAGE_ENOTFOUND) {
        merge_error("cannot use '%s': %s", path, err.msg);
        goto out;
    }
    in->has_vecs = vrc == 0;
    const char *shard = json_string_value(json_object_get(json_object_get(in->rec, "options"),
                                                          "shard"));
    if (shard) {
        char *end;
        unsigned long long i = strtoull(shard, &end, 10), n = 0;
        if (*end == '/')
            n = strtoull(end + 1, &end, 10);
        if (*end || n == 0 || i >= n) {
            merge_error("cannot use '%s': bad shard '%s' in its build record", path, shard);
            goto out;
        }
        in->shard_i = i;
        in->shard_n = n;
    }
    rc = 0;
out:
    sage_bytes_release(&rb);
    return rc;
}

static void input_close(struct input *in)
{
    json_decref(in->cur);
    json_decref(in->rec);
    sage_bytes_release(&in->docs_bytes);
    sage_reader_close(in->r);
}

/* The record's value at key, or at key.sub when sub is given. */
static json_t *at(json_t *rec, const char *key, const char *sub)
{
    json_t *v = json_object_get(rec, key);
    return sub ? json_object_get(v, sub) : v;
}

/* Settings that must be equal in every input (after check_set) for the merged file to be one
 * index: format, analysis, chunking, embedding. Shards of one set must
 * also come from the same sources with the same options. */
static int check_compatible(const struct merge *m)
{
    static const struct {
        const char *key, *sub, *what;
        int shards_only;
    } same[] = {
        { "format", NULL, "format version", 0 },
        { "tokenizer", NULL, "tokenizer (stemmer, stop words, normalization)", 0 },
        { "bm25", NULL, "BM25 parameters", 0 },
        { "options", "chunk_size", "chunk size", 0 },
        { "options", "chunk_overlap", "chunk overlap", 0 },
        { "options", "max_chunk", "maximum chunk size", 0 },
        { "embedding", "status", "embedding status", 0 },
        { "embedding", "model", "embedding model", 0 },
        { "embedding", "dim", "embedding dimension", 0 },
        { "embedding", "document_prefix", "embedding document prefix", 0 },
        { "embedding", "query_prefix", "embedding query prefix", 0 },
        { "embedding", "normalized", "embedding normalization", 0 },
        { "libraries", NULL, "libraries", 1 },
        { "sources", NULL, "sources", 1 },
        { "options", "max_file_size", "--max-file-size", 1 },
        { "options", "hidden", "--hidden", 1 },
        { "options", "max_archive_entries", "archive limits", 1 },
        { "options", "max_archive_bytes", "archive limits", 1 },
        { "options", "max_archive_ratio", "archive limits", 1 },
        { "options", "max_archive_depth", "archive limits", 1 },
    };
    const struct input *a = &m->in[0];
    for (int k = 1; k < m->n_in; k++) {
        const struct input *b = &m->in[k];
        for (size_t i = 0; i < sizeof(same) / sizeof(*same); i++) {
            json_t *va = at(a->rec, same[i].key, same[i].sub),
                   *vb = at(b->rec, same[i].key, same[i].sub);
            if ((same[i].shards_only && !a->shard_n) || (!va && !vb) ||
                (va && vb && json_equal(va, vb)))
                continue;
            char *sa = va ? json_dumps(va, JSON_ENCODE_ANY | JSON_COMPACT) : NULL,
                 *sb = vb ? json_dumps(vb, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
            merge_error("'%s' and '%s' differ in their %s: %s and %s", a->path, b->path,
                        same[i].what, sa ? sa : "none", sb ? sb : "none");
            free(sa);
            free(sb);
            return -1;
        }
        if (a->has_vecs != b->has_vecs) {
            merge_error("'%s' has vectors and '%s' has none", a->has_vecs ? a->path : b->path,
                        a->has_vecs ? b->path : a->path);
            return -1;
        }
        if (a->has_vecs && a->vecs.dim != b->vecs.dim) {
            merge_error("'%s' and '%s' differ in their vector dimension", a->path, b->path);
            return -1;
        }
    }
    return 0;
}

/* A set of shards must hold each of 0 .. N-1 once, for one N; --partial
 * lets some be missing. */
static int check_set(const struct merge *m, int partial)
{
    uint64_t n = m->in[0].shard_n;
    int have = 0;
    for (int k = 1; k < m->n_in; k++)
        if (!n != !m->in[k].shard_n) {
            merge_error("'%s' is a shard and '%s' is not: merge a set of shards, or whole "
                        "indexes", n ? m->in[0].path : m->in[k].path,
                        n ? m->in[k].path : m->in[0].path);
            return -1;
        }
    if (!n)
        return 0;
    for (int k = 0; k < m->n_in; k++) {
        if (m->in[k].shard_n != n) {
            merge_error("'%s' is shard %llu/%llu and '%s' shard %llu/%llu: not one set",
                        m->in[0].path, (unsigned long long)m->in[0].shard_i,
                        (unsigned long long)n, m->in[k].path,
                        (unsigned long long)m->in[k].shard_i,
                        (unsigned long long)m->in[k].shard_n);
            return -1;
        }
        for (int j = 0; j < k; j++)
            if (m->in[j].shard_i == m->in[k].shard_i) {
                merge_error("'%s' and '%s' are both shard %llu/%llu", m->in[j].path,
                            m->in[k].path, (unsigned long long)m->in[k].shard_i,
                            (unsigned long long)n);
                return -1;
            }
        have++;
    }
    if ((uint64_t)have < n && !partial) {
        for (uint64_t i = 0; i < n; i++) {
            int found = 0;
            for (int k = 0; k < m->n_in; k++)
                found |= m->in[k].shard_i == i;
            if (!found) {
                merge_error("shard %llu/%llu is missing (%d of %llu given; --partial merges "
                            "them anyway)", (unsigned long long)i, (unsigned long long)n, have,
                            (unsigned long long)n);
                return -1;
            }
        }
    }
    return 0;
}

/* The input whose current document comes first: in a set of shards the
 * lowest seq, otherwise the inputs one after the other. NULL when done. */
static struct input *next_input(struct merge *m)
{
    struct input *best = NULL;
    for (int k = 0; k < m->n_in; k++) {
        struct input *in = &m->in[k];
        if (!in->cur)
            continue;
        if (!m->sharded)
            return in;
        if (!best || seq_cmp(in->seq, best->seq) < 0)
            best = in;
    }
    return best;
}

/* Appends the document's path and aliases, with their seqs, to those of
 * the merged document that holds the same content. */
static int add_aliases(json_t *to, struct input *in)
{
    json_t *al = json_object_get(to, "aliases"), *as = json_object_get(to, "alias_seq");
    json_t *more = json_object_get(in->cur, "aliases"), *more_seq;
    if (!to)
        return -1;
    if (!al)
        json_object_set_new(to, "aliases", al = json_array());
    if (!as)
        json_object_set_new(to, "alias_seq", as = json_array());
    if (!al || !as || json_array_append(al, json_object_get(in->cur, "path")) < 0 ||
        json_array_append(as, json_object_get(in->cur, "seq")) < 0)
        return -1;
    if (!more)
        return 0;
    more_seq = json_object_get(in->cur, "alias_seq");
    if (!json_is_array(more) || !json_is_array(more_seq) ||
        json_array_size(more) != json_array_size(more_seq)) {
        merge_error("'%s': document %llu has aliases without crawl positions", in->path,
                    (unsigned long long)(in->next - 1));
        return -1;
    }
    return json_array_extend(al, more) < 0 || json_array_extend(as, more_seq) < 0 ? -1 : 0;
}

struct alias {
    uint64_t seq[3];
    json_t *path;
};

static int alias_cmp(const void *a, const void *b)
{
    return seq_cmp(((const struct alias *)a)->seq, ((const struct alias *)b)->seq);
}

/* Puts a merged document's aliases in crawl order, as one build lists
 * them, and drops the seqs. */
static int sort_aliases(json_t *doc, const char *from)
{
    json_t *al = json_object_get(doc, "aliases"), *as = json_object_get(doc, "alias_seq");
    size_t n = json_array_size(al);
    int rc = 0;
    if (!as)
        return 0;
    struct alias *v = sage_calloc(n ? n : 1, sizeof(*v));
    if (!v)
        return -1;
    if (json_array_size(as) != n)
        rc = -1;
    for (size_t i = 0; i < n && rc == 0; i++) {
        v[i].path = json_incref(json_array_get(al, i));
        rc = read_seq(json_array_get(as, i), v[i].seq);
    }
    if (rc == 0) {
        qsort(v, n, sizeof(*v), alias_cmp);
        json_array_clear(al);
        for (size_t i = 0; i < n; i++)
            json_array_append(al, v[i].path);
        json_object_del(doc, "alias_seq");
    } else {
        merge_error("'%s': aliases without crawl positions", from);
    }
    for (size_t i = 0; i < n; i++)
        json_decref(v[i].path);
    sage_free(v);
    return rc;
}

/* Adds the current document of in, with its chunks and vectors, to the
 * merged index; or, when a document before it holds the same content (a
 * file in another shard), records it as an alias of that one. */
static int take_document(struct merge *m, struct input *in)
{
    struct sage_err err = { 0 };
    json_t *doc = in->cur, *crec = NULL, *copy = NULL;
    const char *content = json_string_value(json_object_get(doc, "content"));
    json_int_t first = json_integer_value(json_object_get(doc, "first_chunk")),
               n = json_integer_value(json_object_get(doc, "n_chunks"));
    const char *title = json_string_value(json_object_get(doc, "title"));
    uint32_t id = (uint32_t)m->s.n_docs;
    int rc = -1;
    if (m->sharded && content) {
        json_t *was = json_object_get(m->seen, content);
        if (was) {
            m->n_dupes++;
            if (add_aliases(sink_doc_extra(&m->s, (uint64_t)json_integer_value(was)), in) < 0)
                goto nomem;
            return 0;
        }
        if (json_object_set_new(m->seen, content, json_integer(id)) < 0)
            goto nomem;
    } else if (!m->sharded) {
        char key[8192];
        snprintf(key, sizeof(key), "%s\x1f%s", str_at(doc, "library"), str_at(doc, "path"));
        json_t *was = json_object_get(m->seen, key);
        if (was) {
            merge_error("document '%s' of library '%s' is in both '%s' and '%s'",
                        str_at(doc, "path"), str_at(doc, "library"),
                        json_string_value(was), in->path);
            return -1;
        }
        if (json_object_set_new(m->seen, key, json_string(in->path)) < 0)
            goto nomem;
    }
    if (!title || first < 0 || n < 0 || (uint64_t)first > in->cs.n ||
        (uint64_t)n > in->cs.n - (uint64_t)first) {
        merge_error("'%s': document %llu has bad chunks or no title", in->path,
                    (unsigned long long)(in->next - 1));
        return -1;
    }
    if (m->s.n_docs >= UINT32_MAX - 1) {
        merge_error("more than %u documents", UINT32_MAX - 1);
        return -1;
    }
    for (json_int_t j = first; j < first + n; j++) {
        size_t index_len;
        if (sage_chunkstore_get(&in->cs, (uint64_t)j, &crec, &err) < 0) {
            merge_error("'%s': chunk %lld: %s", in->path, (long long)j, err.msg);
            return -1;
        }
        json_t *text = json_object_get(crec, "text");
        json_int_t page = json_integer_value(json_object_get(crec, "page")),
                   ordinal = json_integer_value(json_object_get(crec, "ordinal"));
        if (!json_is_string(text) || page < 0 || page > UINT32_MAX || ordinal < 0 ||
            ordinal > UINT32_MAX) {
            merge_error("'%s': chunk %lld has no text, or a bad page or ordinal", in->path,
                        (long long)j);
            goto out;
        }
        if (json_object_set_new(crec, "doc", json_integer(id)) < 0)
            goto nomem;
        if (sink_add_chunk(&m->s, id, (uint32_t)ordinal, crec, title,
                           json_string_value(json_object_get(crec, "heading")), (uint32_t)page,
                           json_string_value(text), json_string_length(text), &index_len,
                           &err) < 0 ||
            (in->has_vecs &&
             (sink_set_hash(&m->s, m->s.n_chunks - 1, sage_vectors_hash(&in->vecs, (uint64_t)j),
                            &err) < 0 ||
              sink_put_row(&m->s, m->s.n_chunks - 1, sage_vectors_row(&in->vecs, (uint64_t)j),
                           &err) < 0))) {
            merge_error("cannot add chunk %lld of '%s': %s", (long long)j, in->path, err.msg);
            goto out;
        }
        json_decref(crec);
        crec = NULL;
    }
    copy = json_deep_copy(doc);
    if (!copy || json_object_set_new(copy, "id", json_integer(id)) < 0 ||
        json_object_set_new(copy, "first_chunk",
                            json_integer((json_int_t)(m->s.n_chunks - (uint64_t)n))) < 0)
        goto nomem;
    json_object_del(copy, "seq");
    json_object_del(copy, "content");
    json_t *as = json_object_get(copy, "alias_seq");
    if (as) {
        /* aliases with crawl positions are sorted at the end, with those
         * of duplicates in other shards: they wait beside the record */
        json_t *x = sink_doc_extra(&m->s, id), *al = json_object_get(copy, "aliases");
        if (!x || json_object_set(x, "alias_seq", as) < 0 ||
            (al && json_object_set(x, "aliases", al) < 0))
            goto nomem;
        json_object_del(copy, "alias_seq");
        json_object_del(copy, "aliases");
    }
    if (sink_add_doc(&m->s, copy, &err) < 0) {
        merge_error("cannot add document %llu of '%s': %s", (unsigned long long)(in->next - 1),
                    in->path, err.msg);
        goto out;
    }
    m->s.n_docs++;
    m->n_bytes += (uint64_t)json_integer_value(json_object_get(doc, "bytes"));
    rc = 0;
    goto out;
nomem:
    merge_error("out of memory");
out:
    json_decref(copy);
    json_decref(crec);
    return rc;
}

/* Copies every OCR page of every input (the sink keeps one per digest and
 * engine). */
static int take_ocr_pages(struct merge *m)
{
    for (int k = 0; k < m->n_in; k++) {
        struct sage_err err = { 0 };
        struct sage_ocrpages p;
        int rc = sage_ocrpages_open(&p, m->in[k].r, &err);
        if (rc == -SAGE_ENOTFOUND)
            continue;
        for (uint64_t i = 0; rc == 0 && i < p.n; i++) {
            const uint8_t *hash;
            const char *engine, *text;
            size_t len;
            rc = sage_ocrpages_page(&p, i, &hash, &engine, &text, &len, &err);
            if (rc == 0)
                rc = sage_ocrpages_add(&m->s.ocr, hash, engine, text, len, &err);
        }
        if (rc == 0)
            sage_ocrpages_release(&p);
        if (rc < 0) {
            merge_error("'%s': OCR pages: %s", m->in[k].path, err.msg);
            return -1;
        }
    }
    return 0;
}

/* Adds the integer at rec.key.sub of every input into merged. */
static void sum_count(json_t *merged, const struct merge *m, const char *key, const char *sub)
{
    json_int_t sum = 0;
    json_t *obj = json_object_get(merged, key);
    if (!obj || !json_object_get(obj, sub))
        return;
    for (int k = 0; k < m->n_in; k++)
        sum += json_integer_value(at(m->in[k].rec, key, sub));
    json_object_set_new(obj, sub, json_integer(sum));
}

/* Appends to array to the members of from it does not hold yet. */
static void union_into(json_t *to, json_t *from)
{
    size_t i, j;
    json_t *v, *w;
    json_array_foreach(from, i, v) {
        int have = 0;
        json_array_foreach(to, j, w)
            have |= json_equal(v, w);
        if (!have)
            json_array_append(to, v);
    }
}

/* The merged file's build record: the first input's, with this tool's
 * version, the counts of the merged index, the inputs' lists of sources
 * and skipped files joined, and "merged_from" (FORMAT.md §9.3). */
static json_t *merged_record(const struct merge *m, const struct cli *c)
{
    json_t *rec = json_deep_copy(m->in[0].rec), *skipped = json_array();
    json_t *opts = json_object_get(rec, "options"), *counts = json_object_get(rec, "counts");
    json_t *emb = json_object_get(rec, "embedding");
    if (!rec || !skipped || !json_is_object(counts)) {
        json_decref(rec);
        json_decref(skipped);
        return NULL;
    }
    for (int k = 1; k < m->n_in; k++) {
        union_into(json_object_get(rec, "libraries"), json_object_get(m->in[k].rec, "libraries"));
        union_into(json_object_get(rec, "sources"), json_object_get(m->in[k].rec, "sources"));
    }
    for (int k = 0; k < m->n_in; k++) {
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(m->in[k].rec, "skipped"), i, v)
            if (json_array_size(skipped) < SKIPPED_LISTED)
                json_array_append(skipped, v);
    }
    json_object_set_new(rec, "skipped", skipped);
    json_object_set_new(rec, "tool", json_string("sage-indexer"));
    json_object_set_new(rec, "version", json_string(SAGE_VERSION));
    json_object_set_new(rec, "build_time", c->v[OPT_BUILD_TIME].str
                                           ? json_integer(c->v[OPT_BUILD_TIME].num)
                                           : json_null());
    json_object_set_new(rec, "merged_from", json_integer(m->n_in));
    if (json_is_object(opts)) {
        json_object_set_new(opts, "shard", json_null());    /* as a whole build has it */
        json_object_set_new(opts, "zstd_level", json_integer(c->v[OPT_ZSTD_LEVEL].num));
    }
    static const char *const summed[] = { "skipped", "failed", "duplicates", "needs_ocr",
                                          "ocr_pages" };
    for (size_t i = 0; i < sizeof(summed) / sizeof(*summed); i++)
        sum_count(rec, m, "counts", summed[i]);
    json_object_set_new(counts, "duplicates",
                        json_integer(json_integer_value(json_object_get(counts, "duplicates")) +
                                     (json_int_t)m->n_dupes));
    json_object_set_new(counts, "documents", json_integer((json_int_t)m->s.n_docs));
    json_object_set_new(counts, "chunks", json_integer((json_int_t)m->s.n_chunks));
    json_object_set_new(counts, "bytes", json_integer((json_int_t)m->n_bytes));
    if (json_is_object(emb)) {
        sum_count(rec, m, "embedding", "embedded");
        sum_count(rec, m, "embedding", "reused");
        json_object_del(emb, "hnsw");
    }
    return rec;
}

static int merge_usage(const char *msg)
{
    fprintf(stderr, "sage-indexer merge: %s\n", msg);
    return 2;
}

int cmd_merge(struct cli *c)
{
    double t_start = sage_now_ms();
    struct merge m = { 0 };
    struct sage_err err = { 0 };
    struct sage_tokenizer_opts tok;
    json_t *rec = NULL;
    char sha[65];
    int status = 1;
    const char *out = c->v[OPT_OUT].str;

    m.s.vec_fd = -1;
    m.s.text.fd = -1;
    m.quiet = (int)c->v[OPT_QUIET].num;
    if (!out)
        return merge_usage("--out is required");
    if (c->n_args < 1)
        return merge_usage("nothing to merge: give the index files");
    if (!(m.in = sage_calloc((size_t)c->n_args, sizeof(*m.in))) || !(m.seen = json_object())) {
        merge_error("out of memory");
        goto out;
    }
    m.n_in = c->n_args;     /* inputs not opened yet close as no-ops */
    for (int k = 0; k < m.n_in; k++) {
        for (int j = 0; j < k; j++)
            if (strcmp(c->args[j], c->args[k]) == 0) {
                merge_error("'%s' is given twice", c->args[k]);
                goto out;
            }
        if (input_open(&m.in[k], c->args[k]) < 0)
            goto out;
    }
    m.sharded = m.in[0].shard_n != 0;
    if (check_set(&m, (int)c->v[OPT_PARTIAL].num) < 0 || check_compatible(&m) < 0)
        goto out;
    if (c->v[OPT_HNSW].num && !m.in[0].has_vecs) {
        merge_error("--hnsw: '%s' has no vectors to build a graph of", m.in[0].path);
        goto out;
    }
    json_t *tk = json_object_get(m.in[0].rec, "tokenizer");
    sink_tokenizer(&tok, tk ? json_string_value(json_object_get(tk, "stemmer")) : "english",
                   tk ? str_at(tk, "stopwords") : "none");
    if (sink_init(&m.s, out, &tok, (size_t)c->v[OPT_MEMORY_LIMIT].num, c->v[OPT_TMP_DIR].str,
                  (int)c->v[OPT_ZSTD_LEVEL].num, &err) < 0) {
        fprintf(stderr, "sage-indexer merge: %s\n", err.msg);
        status = err.code == SAGE_EINVAL ? 2 : 1;
        goto out;
    }
    if (m.in[0].has_vecs) {
        m.s.emb_dim = m.in[0].vecs.dim;
        m.s.emb_flags = m.in[0].vecs.flags;
        if (sink_vectors_open(&m.s, &err) < 0) {
            merge_error("%s", err.msg);
            goto out;
        }
    }
    for (int k = 0; k < m.n_in; k++) {
        if (input_advance(&m.in[k]) < 0)
            goto out;
        if (!m.quiet)
            sage_log(SAGE_LOG_INFO, "merging '%s': %llu documents, %llu chunks", m.in[k].path,
                     (unsigned long long)m.in[k].n_docs, (unsigned long long)m.in[k].cs.n);
    }
    for (struct input *in; (in = next_input(&m));)
        if (take_document(&m, in) < 0 || input_advance(in) < 0)
            goto out;
    const char *id_key;
    json_t *extra;
    json_object_foreach(m.s.doc_extra, id_key, extra)
        if (sort_aliases(extra, out) < 0)
            goto out;
    if (take_ocr_pages(&m) < 0 || !(rec = merged_record(&m, c))) {
        if (!rec)
            merge_error("out of memory");
        goto out;
    }
    if (sink_hnsw(&m.s, c, json_object_get(rec, "embedding")) < 0 || sink_make_dirs(out) < 0)
        goto out;
    if (sink_write(&m.s, out, rec, sha, &err) < 0) {
        merge_error("cannot write '%s': %s", out, err.msg);
        goto out;
    }
    if (sink_read_back(out) < 0)
        goto out;
    sage_log(SAGE_LOG_INFO, "wrote '%s' from %d indexes: %llu documents, %llu chunks, "
             "%llu duplicates across them; sha256 %s; took %.1f s", out, m.n_in,
             (unsigned long long)m.s.n_docs, (unsigned long long)m.s.n_chunks,
             (unsigned long long)m.n_dupes, sha, (sage_now_ms() - t_start) / 1e3);
    status = 0;
out:
    for (int k = 0; k < m.n_in; k++)
        input_close(&m.in[k]);
    sage_free(m.in);
    json_decref(m.seen);
    json_decref(rec);
    sink_release(&m.s);
    return status;
}
