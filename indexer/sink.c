/* The index being written (sink.h): what build and merge add chunk by chunk,
 * and the writer of the file. Where the chunks come from, the BUILD record
 * and the embedding server are left to the callers. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "clock.h"
#include "le.h"
#include "log.h"
#include "mpjson.h"
#include "rectab.h"
#include "sink.h"
#include "stamp.h"
#include "tmpfile.h"
#include "vectors.h"
#include "writer.h"

int sink_make_dirs(const char *path)
{
    char *p = sage_strdup(path);
    int rc = 0;
    if (!p)
        return -1;
    for (char *s = strchr(p + 1, '/'); s && rc == 0; s = strchr(s + 1, '/')) {
        *s = '\0';
        if (mkdir(p, 0755) < 0 && errno != EEXIST) {
            sage_log(SAGE_LOG_ERROR, "cannot create directory '%s': %s", p, strerror(errno));
            rc = -1;
        }
        *s = '/';
    }
    sage_free(p);
    return rc;
}

/* Compressed chunk text held in memory at most, under a memory limit. */
#define TEXT_HOLD ((size_t)4 << 20)

int sink_init(struct sink *s, const char *out, const struct sage_tokenizer_opts *tok,
              size_t memory_limit, const char *tmp_dir, int zstd_level, struct sage_err *err)
{
    memset(s, 0, sizeof(*s));
    s->vec_fd = -1;
    s->zstd_level = zstd_level;
    sage_chunkmeta_builder_init(&s->meta);
    sage_ocrpages_builder_init(&s->ocr);
    sage_rectab_builder_init(&s->docs, 0);
    if (!(s->doc_extra = json_object()))
        return sage_err_set(err, SAGE_ENOMEM, "out of memory");
    /* postings past the limit spill next to the index unless --tmp-dir says
     * otherwise: that file system must hold the index anyway, while /tmp is
     * often memory (tmpfs), which would defeat the limit */
    if (tmp_dir) {
        if (strlen(tmp_dir) >= sizeof(s->spill_dir))
            return sage_err_set(err, SAGE_EINVAL, "--tmp-dir: path too long");
        snprintf(s->spill_dir, sizeof(s->spill_dir), "%s", tmp_dir);
    } else {
        const char *slash = strrchr(out, '/');
        int n = slash ? (int)(slash - out) + (slash == out) : 1;  /* "/x" in "/", "x" in "." */
        if ((size_t)n >= sizeof(s->spill_dir))
            return sage_err_set(err, SAGE_EINVAL, "--out: path too long");
        if (sink_make_dirs(out) < 0)
            return sage_err_set(err, SAGE_EIO, "cannot create the directory of '%s'", out);
        snprintf(s->spill_dir, sizeof(s->spill_dir), "%.*s", n, slash ? out : ".");
    }
    struct sage_ixbuild_opts ixo = { memory_limit, memory_limit ? s->spill_dir : NULL, NULL };
    int rc = sage_ixbuild_new(tok, &ixo, &s->ix, err);
    /* under a memory limit the compressed chunk text spills too, to a
     * temporary file of its own in the same place, once a quarter of the
     * limit or TEXT_HOLD is held, whichever is less: the text is written
     * once and copied into the index at the end, so holding more of it in
     * memory saves nothing */
    if (rc == 0)
        rc = sage_chunkstore_builder_init(&s->text, zstd_level, err);
    if (rc == 0 && memory_limit)
        rc = sage_chunkstore_builder_spill(&s->text, s->spill_dir,
                                           memory_limit / 4 < TEXT_HOLD ? memory_limit / 4
                                                                        : TEXT_HOLD, err);
    return rc;
}

void sink_release(struct sink *s)
{
    sage_rectab_builder_release(&s->docs);
    json_decref(s->doc_extra);
    sage_chunkstore_builder_release(&s->text);
    sage_chunkmeta_builder_release(&s->meta);
    sage_ixbuild_free(s->ix);
    sage_free(s->chunk_map);
    sage_free(s->scratch);
    sage_free(s->hashes);
    if (s->vec_fd >= 0)
        close(s->vec_fd);
    sage_hnsw_graph_free(s->graph);
    sage_ocrpages_builder_release(&s->ocr);
    memset(s, 0, sizeof(*s));
    s->vec_fd = -1;
}

int sink_add_chunk(struct sink *s, uint32_t doc, uint32_t ordinal, const json_t *rec,
                   const char *title, const char *heading, uint32_t page, const char *text,
                   size_t len, size_t *index_len, struct sage_err *err)
{
    uint8_t *enc = NULL, pair[8];
    size_t enc_len = 0;
    int rc;
    /* What is indexed: title and heading path, then the chunk's text, so a
     * chunk deep in a document still matches the words of its context. */
    size_t tl = title ? strlen(title) : 0, hl = heading ? strlen(heading) : 0;
    size_t need = tl + hl + len + 3;
    if (need > s->scratch_cap) {
        char *p = sage_realloc(s->scratch, need);
        if (!p)
            return sage_err_set(err, SAGE_ENOMEM, "cannot allocate chunk text");
        s->scratch = p;
        s->scratch_cap = need;
    }
    int n = snprintf(s->scratch, need, "%s\n%s\n", title ? title : "", heading ? heading : "");
    memcpy(s->scratch + n, text, len);
    *index_len = (size_t)n + len;
    sage_put32(pair, doc);
    sage_put32(pair + 4, ordinal);
    if ((rc = sage_ixbuild_add(s->ix, s->scratch, *index_len, NULL, err)) < 0 ||
        (rc = sage_mpjson_encode(rec, &enc, &enc_len, err)) < 0 ||
        (rc = sage_chunkstore_add(&s->text, enc, enc_len, err)) < 0 ||
        (rc = sage_chunkmeta_add(&s->meta, page, heading, err)) < 0)
        goto out;
    if (sage_grow((void **)&s->chunk_map, &s->chunk_map_cap, s->chunk_map_len + 8, 1) < 0) {
        rc = sage_err_set(err, SAGE_ENOMEM, "cannot grow chunk table");
        goto out;
    }
    memcpy(s->chunk_map + s->chunk_map_len, pair, 8);
    s->chunk_map_len += 8;
    s->n_chunks++;
out:
    sage_free(enc);
    return rc;
}

int sink_set_hash(struct sink *s, uint64_t i, const uint8_t hash[16], struct sage_err *err)
{
    if (sage_grow((void **)&s->hashes, &s->hashes_cap, (i + 1) * 16, 1) < 0)
        return sage_err_set(err, SAGE_ENOMEM, "cannot grow the chunk hashes");
    memcpy(s->hashes + 16 * i, hash, 16);
    return 0;
}

int sink_vectors_open(struct sink *s, struct sage_err *err)
{
    int fd = sage_tmpfile_open(s->spill_dir, err);
    if (fd < 0)
        return fd;
    s->vec_fd = fd;
    return 0;
}

int sink_put_row(const struct sink *s, uint64_t id, const float *v, struct sage_err *err)
{
    unsigned dim = __atomic_load_n(&s->emb_dim, __ATOMIC_ACQUIRE);
    size_t n = (size_t)dim * sizeof(*v);
    for (size_t done = 0; done < n;) {
        ssize_t k = pwrite(s->vec_fd, (const char *)v + done, n - done, (off_t)(id * n + done));
        if (k <= 0)
            return sage_err_sys(err, SAGE_EIO, "cannot write vectors to a temporary file in '%s'",
                                s->spill_dir);
        done += (size_t)k;
    }
    return 0;
}

int sink_hnsw(struct sink *s, const struct cli *c, json_t *emb_record)
{
    struct sage_err err = { 0 };
    struct sage_hnsw_params p = { (uint32_t)c->v[OPT_HNSW_M].num,
                                  (uint32_t)c->v[OPT_HNSW_EF_CONSTRUCTION].num,
                                  (unsigned)c->v[OPT_HNSW_THREADS].num, 0 };
    if (!c->v[OPT_HNSW].num || s->vec_fd < 0 || !emb_record || !s->n_chunks || !s->emb_dim)
        return 0;   /* no vectors: no VECTORS section, and no graph */
    size_t len = (size_t)s->n_chunks * s->emb_dim * sizeof(float);
    void *rows = NULL;
    double t0 = sage_now_ms();
    if (p.threads == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        p.threads = cores > 0 ? (unsigned)cores : 1;
    }
    if ((rows = mmap(NULL, len, PROT_READ, MAP_SHARED, s->vec_fd, 0)) == MAP_FAILED) {
        sage_log(SAGE_LOG_ERROR, "cannot map the vectors for the hnsw graph: %s", strerror(errno));
        return -1;
    }
    int rc = sage_hnsw_build(&p, s->n_chunks, s->emb_dim, rows, s->emb_dim, &s->graph, &err);
    munmap(rows, len);
    if (rc < 0) {
        sage_log(SAGE_LOG_ERROR, "cannot build the hnsw graph: %s", err.msg);
        return -1;
    }
    json_object_set_new(emb_record, "hnsw",
                        json_pack("{s:i, s:i, s:i}", "m", (int)p.m,
                                  "ef_construction", (int)p.ef_construction,
                                  "threads", (int)p.threads));
    s->hnsw_ms = sage_now_ms() - t0;
    sage_log(SAGE_LOG_INFO, "built the hnsw graph of %llu vectors (m %u, ef_construction %u, "
             "%u threads) in %.1f s", (unsigned long long)s->n_chunks, p.m, p.ef_construction,
             p.threads, s->hnsw_ms / 1e3);
    return 0;
}

static int vector_row(void *ctx, uint64_t i, float *row, uint8_t hash[16])
{
    const struct sink *s = ctx;
    size_t n = (size_t)s->emb_dim * sizeof(*row);
    for (size_t done = 0; done < n;) {
        ssize_t k = pread(s->vec_fd, (char *)row + done, n - done, (off_t)(i * n + done));
        if (k <= 0)
            return -SAGE_EIO;
        done += (size_t)k;
    }
    memcpy(hash, s->hashes + 16 * i, 16);
    return 0;
}

int sink_add_doc(struct sink *s, const json_t *doc, struct sage_err *err)
{
    uint8_t *rec = NULL;
    size_t len = 0;
    int rc = sage_mpjson_encode(doc, &rec, &len, err);
    if (rc == 0)
        rc = sage_rectab_builder_add(&s->docs, rec, len, err);
    sage_free(rec);
    return rc;
}

json_t *sink_doc_extra(struct sink *s, uint64_t id)
{
    char key[24];
    snprintf(key, sizeof(key), "%llu", (unsigned long long)id);
    json_t *x = json_object_get(s->doc_extra, key);
    if (!x && json_object_set_new(s->doc_extra, key, x = json_object()) < 0)
        return NULL;
    return x;
}

/* A record rewritten at the end: its id, and its new encoding. */
struct doc_patch {
    uint64_t id;
    uint8_t *rec;
    size_t len;
};

static int patch_cmp(const void *a, const void *b)
{
    uint64_t x = ((const struct doc_patch *)a)->id, y = ((const struct doc_patch *)b)->id;
    return (x > y) - (x < y);
}

/* Re-encodes the records that gained members (doc_extra) into p, sorted by
 * id; returns how many, or a negative error. */
static int patch_docs(struct sink *s, struct doc_patch *p, struct sage_err *err)
{
    const char *key;
    json_t *extra;
    size_t k = 0;
    int rc = 0;
    json_object_foreach(s->doc_extra, key, extra) {
        char *end;
        unsigned long long id = strtoull(key, &end, 10);
        json_t *doc = NULL;
        if (*end || id >= s->docs.n)
            SAGE_BUG("extra members for a document not added");
        const struct sage_rectab_builder *t = &s->docs;
        if ((rc = sage_mpjson_decode(t->data + t->offs[id], t->offs[id + 1] - t->offs[id], &doc,
                                     err)) < 0)
            return rc;
        p[k].id = id;
        if (json_object_update(doc, extra) < 0)
            rc = sage_err_set(err, SAGE_ENOMEM, "cannot add aliases to document %llu", id);
        else
            rc = sage_mpjson_encode(doc, &p[k].rec, &p[k].len, err);
        json_decref(doc);
        if (rc < 0)
            return rc;
        k++;
    }
    qsort(p, k, sizeof(*p), patch_cmp);
    return (int)k;
}

/* Writes the DOCS section (a record table, rectab.h) from the records as
 * added, with those that gained members re-encoded; streamed, so the table
 * is not copied. */
static int put_docs(struct sink *s, struct sage_writer *w, struct sage_err *err)
{
    const struct sage_rectab_builder *t = &s->docs;
    size_t n_patch = json_object_size(s->doc_extra), k = 0;
    struct doc_patch *p = sage_calloc(n_patch ? n_patch : 1, sizeof(*p));
    uint8_t buf[8 * 512];
    uint64_t off = 0;
    int rc = 0;
    if (!p)
        return sage_err_set(err, SAGE_ENOMEM, "cannot encode the documents");
    if ((rc = patch_docs(s, p, err)) < 0)
        goto out;
    n_patch = (size_t)rc;
    sage_put64(buf, t->n);
    if ((rc = sage_writer_begin(w, SAGE_SECTION_DOCS, SAGE_CODEC_ZSTD, err)) < 0 ||
        (rc = sage_writer_write(w, buf, 8, err)) < 0)
        goto out;
    /* offsets: off[0] = 0, then the end of each record */
    size_t used = 8;
    sage_put64(buf, 0);
    for (size_t i = 0; i < t->n; i++) {
        if (k < n_patch && p[k].id == i)
            off += p[k++].len;
        else
            off += t->offs[i + 1] - t->offs[i];
        if (used == sizeof(buf)) {
            if ((rc = sage_writer_write(w, buf, used, err)) < 0)
                goto out;
            used = 0;
        }
        sage_put64(buf + used, off);
        used += 8;
    }
    if ((rc = sage_writer_write(w, buf, used, err)) < 0)
        goto out;
    /* records: runs of them as added, between those re-encoded */
    size_t from = 0;
    for (k = 0; k <= n_patch; k++) {
        size_t to = k < n_patch ? (size_t)p[k].id : t->n;
        if (to > from &&
            (rc = sage_writer_write(w, t->data + t->offs[from], t->offs[to] - t->offs[from],
                                    err)) < 0)
            goto out;
        if (k < n_patch) {
            if ((rc = sage_writer_write(w, p[k].rec, p[k].len, err)) < 0)
                goto out;
            from = to + 1;
        }
    }
    rc = sage_writer_end(w, err);
out:
    for (k = 0; k < n_patch; k++)
        sage_free(p[k].rec);
    sage_free(p);
    return rc;
}

int sink_write(struct sink *s, const char *out, const json_t *rec, char sha[65],
               struct sage_err *err)
{
    struct sage_writer *w = NULL;
    struct sage_writer_opts wo = { .zstd_level = s->zstd_level };
    uint8_t n8[8], *rec_buf = NULL;
    size_t rec_len = 0;
    int rc;
    sage_put64(n8, s->n_chunks);
    if ((rc = sage_mpjson_encode(rec, &rec_buf, &rec_len, err)) < 0 ||
        (rc = sage_writer_open(out, &wo, &w, err)) < 0)
        goto out;
    if ((rc = sage_writer_add(w, SAGE_SECTION_BUILD, SAGE_CODEC_ZSTD, rec_buf, rec_len, err)) < 0 ||
        (rc = put_docs(s, w, err)) < 0 ||
        (rc = sage_writer_begin(w, SAGE_SECTION_CHUNKS, SAGE_CODEC_RAW, err)) < 0 ||
        (rc = sage_writer_write(w, n8, 8, err)) < 0 ||
        (rc = sage_writer_write(w, s->chunk_map, s->chunk_map_len, err)) < 0 ||
        (rc = sage_writer_end(w, err)) < 0 ||
        (rc = sage_chunkstore_write(&s->text, w, err)) < 0 ||
        (rc = sage_chunkmeta_write(&s->meta, w, err)) < 0 ||
        (rc = sage_ocrpages_write(&s->ocr, w, err)) < 0 ||
        (s->vec_fd >= 0 && s->n_chunks &&
         (rc = sage_vectors_write(w, s->n_chunks, s->emb_dim, s->emb_flags, vector_row, s,
                                  err)) < 0) ||
        (s->graph && (rc = sage_hnsw_write(w, s->graph, err)) < 0) ||
        (rc = sage_ixbuild_write(s->ix, w, err)) < 0)
        goto out;
    sage_writer_set_counts(w, s->n_docs, s->n_chunks);
    rc = sage_writer_commit(w, sha, err);
out:
    sage_writer_free(w);
    sage_free(rec_buf);
    return rc;
}

int sink_read_back(const char *out)
{
    struct sage_err err = { 0 };
    int vrc = sage_stamp_verify(out, &err);
    if (vrc == -SAGE_ECORRUPT) {
        sage_log(SAGE_LOG_ERROR, "'%s' does not read back as written: %s", out, err.msg);
        return -1;
    }
    if (vrc < 0)
        sage_log(SAGE_LOG_WARN, "'%s' written but not stamped: %s", out, err.msg);
    return 0;
}

void sink_tokenizer(struct sage_tokenizer_opts *tok, const char *stemmer, const char *stopwords)
{
    memset(tok, 0, sizeof(*tok));
    tok->stemmer = stemmer && strcmp(stemmer, "none") != 0 ? stemmer : NULL;
    if (stopwords && strcmp(stopwords, "english") == 0) {
        tok->stopwords = sage_stopwords_english;
        tok->n_stopwords = sage_n_stopwords_english;
    }
    tok->cache_bits = 16;   /* 5 MiB: hits for ~95 % of the words of real docs */
}
