/* sage-indexer build: walks files and directories in a deterministic order,
 * extracts text by type (plain text, Markdown, reStructuredText, JSONL
 * document collections), cuts it into heading-aware chunks, and writes the
 * document table, chunk table, chunk text and the BM25 inverted index.
 * Archives, HTML and PDF plug in through extract.h and archive.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utf8proc.h>

#include "alloc.h"
#include "chunk.h"
#include "chunkstore.h"
#include "cli.h"
#include "extract_text.h"
#include "ixbuild.h"
#include "le.h"
#include "log.h"
#include "mpjson.h"
#include "rectab.h"
#include "writer.h"

#define SKIPPED_LISTED 1000

struct build {
    struct sage_rectab_builder docs;
    struct sage_chunkstore_builder text;
    struct sage_ixbuild *ix;
    uint8_t *chunk_map;         /* u32 doc, u32 ordinal per chunk */
    size_t chunk_map_len, chunk_map_cap;
    struct chunk_opts chunking;
    long long max_file;
    uint64_t n_docs, n_bytes, n_skipped, n_chunks;
    json_t *skipped;            /* [{path, reason}], the first SKIPPED_LISTED */
    char *scratch;              /* index text of one chunk */
    size_t scratch_cap;
    int failed;
};

static void skip(struct build *b, const char *path, const char *why)
{
    sage_log(SAGE_LOG_WARN, "skipping '%s': %s", path, why);
    if (b->n_skipped++ < SKIPPED_LISTED)
        json_array_append_new(b->skipped, json_pack("{s:s, s:s}", "path", path, "reason", why));
}

/* Plain text: valid UTF-8 without NUL bytes. */
static int is_text(const uint8_t *p, size_t n)
{
    utf8proc_int32_t cp;
    while (n > 0) {
        utf8proc_ssize_t k = utf8proc_iterate(p, (utf8proc_ssize_t)n, &cp);
        if (k <= 0 || cp == 0)
            return 0;
        p += k;
        n -= (size_t)k;
    }
    return 1;
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

/* ---- documents and chunks ---- */

struct doc_ctx {
    struct build *b;
    uint32_t doc;
    const char *title;
    struct sage_err *err;
};

static int on_chunk(void *ctx, const char *text, size_t len, const char *heading, uint32_t page,
                    uint32_t ordinal)
{
    struct doc_ctx *d = ctx;
    struct build *b = d->b;
    uint8_t *rec = NULL, pair[8];
    size_t rec_len = 0;
    int rc = 0;
    /* What is indexed: title and heading path, then the chunk's text, so a
     * chunk deep in a document still matches the words of its context. */
    size_t tl = d->title ? strlen(d->title) : 0, hl = heading ? strlen(heading) : 0;
    size_t need = tl + hl + len + 3;
    if (need > b->scratch_cap) {
        char *s = sage_realloc(b->scratch, need);
        if (!s)
            return sage_err_set(d->err, SAGE_ENOMEM, "cannot allocate chunk text");
        b->scratch = s;
        b->scratch_cap = need;
    }
    int n = snprintf(b->scratch, need, "%s\n%s\n", d->title ? d->title : "", heading ? heading : "");
    memcpy(b->scratch + n, text, len);
    json_t *j = json_pack("{s:I, s:I, s:I, s:s%, s:s?}", "doc", (json_int_t)d->doc,
                          "ordinal", (json_int_t)ordinal, "page", (json_int_t)page,
                          "text", text, len, "heading", heading);
    if (!j)
        return sage_err_set(d->err, SAGE_ENOMEM, "cannot encode chunk");
    sage_put32(pair, d->doc);
    sage_put32(pair + 4, ordinal);
    if ((rc = sage_ixbuild_add(b->ix, b->scratch, (size_t)n + len, NULL, d->err)) < 0 ||
        (rc = sage_mpjson_encode(j, &rec, &rec_len, d->err)) < 0 ||
        (rc = sage_chunkstore_add(&b->text, rec, rec_len, d->err)) < 0)
        goto out;
    if (b->chunk_map_len + 8 > b->chunk_map_cap) {
        size_t cap = b->chunk_map_cap ? b->chunk_map_cap * 2 : 4096;
        uint8_t *m = sage_realloc(b->chunk_map, cap);
        if (!m) {
            rc = sage_err_set(d->err, SAGE_ENOMEM, "cannot grow chunk table");
            goto out;
        }
        b->chunk_map = m;
        b->chunk_map_cap = cap;
    }
    memcpy(b->chunk_map + b->chunk_map_len, pair, 8);
    b->chunk_map_len += 8;
    b->n_chunks++;
out:
    json_decref(j);
    sage_free(rec);
    return rc;
}

/* Adds one extracted document: its record, then its chunks. ext_id is the
 * collection's own id (JSONL), or NULL. */
static int add_document(struct build *b, const char *library, const char *path,
                        const char *ext_id, const char *fallback_title, struct extracted *x,
                        size_t bytes, struct sage_err *err)
{
    uint8_t *rec = NULL;
    size_t rec_len = 0;
    int rc;
    const char *title = x->title ? x->title : fallback_title;
    uint64_t first = b->n_chunks;
    struct doc_ctx d = { b, (uint32_t)b->n_docs, title, err };
    if (b->n_docs >= UINT32_MAX - 1)
        return sage_err_set(err, SAGE_ELIMIT, "more than %u documents", UINT32_MAX - 1);
    rc = chunk_document(x, &b->chunking, on_chunk, &d);
    if (rc != 0)
        return rc < 0 ? rc : sage_err_set(err, SAGE_ENOMEM, "cannot chunk '%s'", path);
    json_t *doc = json_pack("{s:I, s:s, s:s, s:s, s:I, s:I, s:I}", "id", (json_int_t)b->n_docs,
                            "library", library, "path", path, "title", title,
                            "bytes", (json_int_t)bytes, "first_chunk", (json_int_t)first,
                            "n_chunks", (json_int_t)(b->n_chunks - first));
    if (doc && ext_id)
        json_object_set_new(doc, "ext_id", json_string(ext_id));
    if (doc && x->n_pages)
        json_object_set_new(doc, "pages", json_integer(x->n_pages));
    if (!doc || (rc = sage_mpjson_encode(doc, &rec, &rec_len, err)) < 0 ||
        (rc = sage_rectab_builder_add(&b->docs, rec, rec_len, err)) < 0) {
        if (!doc)
            rc = sage_err_set(err, SAGE_ENOMEM, "cannot encode document");
    } else {
        b->n_docs++;
        b->n_bytes += bytes;
        sage_log(SAGE_LOG_DEBUG, "indexed '%s' as %s:%s (%llu chunks)", path, library, path,
                 (unsigned long long)(b->n_chunks - first));
    }
    json_decref(doc);
    sage_free(rec);
    return rc;
}

/* One JSON object per line: {"id", "title", "text"} (as in the IR test
 * collections); each line is a document. Bad lines are skipped by number. */
static int add_jsonl(struct build *b, const char *path, const char *rel, const char *library,
                     const uint8_t *data, size_t len)
{
    const char *p = (const char *)data, *end = p + len;
    struct sage_err err = { 0 };
    size_t line_no = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        line_no++;
        if (le > p) {
            json_error_t jerr;
            json_t *o = json_loadb(p, (size_t)(le - p), JSON_REJECT_DUPLICATES, &jerr);
            json_t *id = o ? json_object_get(o, "id") : NULL;
            const char *text = o ? json_string_value(json_object_get(o, "text")) : NULL;
            const char *title = o ? json_string_value(json_object_get(o, "title")) : NULL;
            char idbuf[32], where[64];
            const char *ids = json_is_string(id) ? json_string_value(id) : NULL;
            if (json_is_integer(id)) {
                snprintf(idbuf, sizeof(idbuf), "%" JSON_INTEGER_FORMAT, json_integer_value(id));
                ids = idbuf;
            }
            snprintf(where, sizeof(where), "line %zu", line_no);
            if (!o || !ids || !text) {
                char what[PATH_MAX + 64];
                snprintf(what, sizeof(what), "%s:%zu", path, line_no);
                skip(b, what, !o ? "not a JSON object" : "needs string \"id\" and \"text\"");
            } else {
                struct extracted x = { 0 };
                size_t dl = strlen(rel) + strlen(ids) + 2;
                char *docpath = sage_malloc(dl);
                int rc = docpath ? 0 : sage_err_set(&err, SAGE_ENOMEM, "out of memory");
                if (rc == 0) {
                    snprintf(docpath, dl, "%s#%s", rel, ids);
                    rc = extracted_add(&x, text, strlen(text), NULL, 0, &err);
                }
                if (rc == 0 && title && *title)
                    rc = extracted_set_title(&x, title, strlen(title), &err);
                if (rc == 0)
                    rc = add_document(b, library, docpath, ids, ids, &x, (size_t)(le - p), &err);
                extracted_release(&x);
                sage_free(docpath);
                if (rc < 0) {
                    json_decref(o);
                    sage_log(SAGE_LOG_ERROR, "cannot index '%s' %s: %s", path, where, err.msg);
                    return -1;
                }
            }
            json_decref(o);
        }
        p = le + 1;
    }
    return 0;
}

static int read_file(const char *path, long long max, uint8_t **out, size_t *len, const char **why)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    *out = NULL;
    if (fd < 0 || fstat(fd, &st) < 0) {
        *why = strerror(errno);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > max) {
        *why = S_ISREG(st.st_mode) ? "larger than --max-file-size" : "not a regular file";
        close(fd);
        return -1;
    }
    uint8_t *buf = sage_malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (buf && got < (size_t)st.st_size) {
        ssize_t k = read(fd, buf + got, (size_t)st.st_size - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    close(fd);
    if (!buf || got != (size_t)st.st_size) {
        *why = buf ? "short read" : "out of memory";
        sage_free(buf);
        return -1;
    }
    *out = buf;
    *len = got;
    return 0;
}

static int add_file(struct build *b, const char *path, const char *rel, const char *library)
{
    uint8_t *data = NULL;
    size_t len = 0;
    const char *why = NULL;
    struct sage_err err = { 0 };
    struct extracted x = { 0 };
    int rc = 0;
    if (read_file(path, b->max_file, &data, &len, &why) < 0) {
        skip(b, path, why);
        return 0;
    }
    if (!is_text(data, len)) {
        skip(b, path, "not UTF-8 text");
        goto out;
    }
    if (has_suffix(rel, ".jsonl")) {
        rc = add_jsonl(b, path, rel, library, data, len);
        goto out;
    }
    enum text_kind kind = has_suffix(rel, ".md") || has_suffix(rel, ".markdown") ? TEXT_MARKDOWN
                        : has_suffix(rel, ".rst") ? TEXT_RST : TEXT_PLAIN;
    const char *name = strrchr(rel, '/');
    if ((rc = extract_text(data, len, kind, &x, &err)) < 0 ||
        (rc = add_document(b, library, rel, NULL, name ? name + 1 : rel, &x, len, &err)) < 0) {
        if (rc == -SAGE_ELIMIT) {
            skip(b, path, err.msg);
            rc = 0;
        } else {
            sage_log(SAGE_LOG_ERROR, "cannot index '%s': %s", path, err.msg);
        }
    }
out:
    extracted_release(&x);
    sage_free(data);
    return rc < 0 ? -1 : 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Walks dir in byte order of names; hidden entries are skipped, symlinks are
 * not followed, FIFOs and devices are skipped. */
static int walk(struct build *b, const char *dir, const char *rel, const char *library, int depth)
{
    DIR *d = opendir(dir);
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    if (!d) {
        skip(b, dir, strerror(errno));
        return 0;
    }
    if (depth > 64) {
        closedir(d);
        skip(b, dir, "directory nesting deeper than 64");
        return 0;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            char **nn = sage_realloc(names, cap * sizeof(*nn));
            if (!nn) {
                rc = -1;
                break;
            }
            names = nn;
        }
        if (!(names[n] = sage_strdup(e->d_name))) {
            rc = -1;
            break;
        }
        n++;
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof(*names), cmp_names);
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t pl = strlen(dir) + strlen(names[i]) + 2, rl = strlen(rel) + strlen(names[i]) + 2;
        char *p = sage_malloc(pl), *r = sage_malloc(rl);
        struct stat st;
        if (!p || !r) {
            rc = -1;
        } else {
            snprintf(p, pl, "%s/%s", dir, names[i]);
            snprintf(r, rl, "%s%s%s", rel, *rel ? "/" : "", names[i]);
            if (lstat(p, &st) < 0)
                skip(b, p, strerror(errno));
            else if (S_ISDIR(st.st_mode))
                rc = walk(b, p, r, library, depth + 1);
            else if (S_ISREG(st.st_mode))
                rc = add_file(b, p, r, library);
            else
                skip(b, p, S_ISLNK(st.st_mode) ? "symbolic link" : "not a regular file");
        }
        sage_free(p);
        sage_free(r);
    }
    for (size_t i = 0; i < n; i++)
        sage_free(names[i]);
    sage_free(names);
    return rc;
}

static int add_root(struct build *b, const char *path, const char *library)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        sage_log(SAGE_LOG_ERROR, "cannot read '%s': %s", path, strerror(errno));
        return -1;
    }
    if (S_ISDIR(st.st_mode))
        return walk(b, path, "", library, 0);
    const char *base = strrchr(path, '/');
    return add_file(b, path, base ? base + 1 : path, library);
}

/* Creates the directories leading to path, like mkdir -p of its dirname. */
static int make_parent_dirs(const char *path)
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

/* Encodes a record table and writes it as one zstd section. */
static int put_table(struct sage_writer *w, uint32_t kind, const struct sage_rectab_builder *t,
                     struct sage_err *err)
{
    size_t n = sage_rectab_builder_size(t);
    uint8_t *buf = sage_malloc(n);
    if (!buf)
        return sage_err_set(err, SAGE_ENOMEM, "cannot encode section %u", kind);
    sage_rectab_builder_encode(t, buf);
    int rc = sage_writer_add(w, kind, SAGE_CODEC_ZSTD, buf, n, err);
    sage_free(buf);
    return rc;
}

static int write_index(struct build *b, const char *out, const uint8_t *rec, size_t rec_len,
                       int zstd_level, char *sha, struct sage_err *err)
{
    struct sage_writer *w = NULL;
    struct sage_writer_opts wo = { .zstd_level = zstd_level };
    uint8_t n8[8];
    int rc;
    sage_put64(n8, b->n_chunks);
    if ((rc = sage_writer_open(out, &wo, &w, err)) < 0)
        return rc;
    if ((rc = sage_writer_add(w, SAGE_SECTION_BUILD, SAGE_CODEC_ZSTD, rec, rec_len, err)) < 0 ||
        (rc = put_table(w, SAGE_SECTION_DOCS, &b->docs, err)) < 0 ||
        (rc = sage_writer_begin(w, SAGE_SECTION_CHUNKS, SAGE_CODEC_RAW, err)) < 0 ||
        (rc = sage_writer_write(w, n8, 8, err)) < 0 ||
        (rc = sage_writer_write(w, b->chunk_map, b->chunk_map_len, err)) < 0 ||
        (rc = sage_writer_end(w, err)) < 0 ||
        (rc = sage_chunkstore_write(&b->text, w, err)) < 0 ||
        (rc = sage_ixbuild_write(b->ix, w, err)) < 0)
        goto out;
    sage_writer_set_counts(w, b->n_docs, b->n_chunks);
    rc = sage_writer_commit(w, sha, err);
out:
    sage_writer_free(w);
    return rc;
}

int cmd_build(struct cli *c)
{
    struct build b = { .max_file = c->v[OPT_MAX_FILE].num };
    struct sage_err err = { 0 };
    json_t *rec = NULL, *libs = json_array(), *sources = json_array();
    uint8_t *rec_buf = NULL;
    size_t rec_len = 0;
    char sha[65];
    int status = 1;
    const char *out = c->v[OPT_OUT].str;
    const char *stemmer = c->v[OPT_STEMMER].str, *stop = c->v[OPT_STOPWORDS].str;
    struct sage_tokenizer_opts tok = { 0 };

    sage_rectab_builder_init(&b.docs, 0);
    b.skipped = json_array();
    b.chunking = (struct chunk_opts){ (size_t)c->v[OPT_CHUNK_SIZE].num,
                                      (size_t)c->v[OPT_CHUNK_OVERLAP].num,
                                      (size_t)c->v[OPT_MAX_CHUNK].num };
    if (!out) {
        fprintf(stderr, "sage-indexer build: --out is required\n");
        status = 2;
        goto out;
    }
    if (c->n_args == 0 && c->v[OPT_LIBRARY].n_list == 0) {
        fprintf(stderr, "sage-indexer build: nothing to index: give PATH or --library\n");
        status = 2;
        goto out;
    }
    if (b.chunking.overlap >= b.chunking.size || b.chunking.size > b.chunking.max) {
        fprintf(stderr, "sage-indexer build: --chunk-overlap must be below --chunk-size, "
                        "and --chunk-size at most --max-chunk\n");
        status = 2;
        goto out;
    }
    if (strcmp(stop, "english") != 0 && strcmp(stop, "none") != 0) {
        fprintf(stderr, "sage-indexer build: --stopwords: expected english or none, got '%s'\n",
                stop);
        status = 2;
        goto out;
    }
    tok.stemmer = strcmp(stemmer, "none") == 0 ? NULL : stemmer;
    if (strcmp(stop, "english") == 0) {
        tok.stopwords = sage_stopwords_english;
        tok.n_stopwords = sage_n_stopwords_english;
    }
    if (sage_ixbuild_new(&tok, &b.ix, &err) < 0 ||
        sage_chunkstore_builder_init(&b.text, (int)c->v[OPT_ZSTD_LEVEL].num, &err) < 0) {
        fprintf(stderr, "sage-indexer build: %s\n", err.msg);
        status = err.code == SAGE_EINVAL ? 2 : 1;
        goto out;
    }
    for (size_t i = 0; i < c->v[OPT_LIBRARY].n_list; i++) {
        const char *spec = c->v[OPT_LIBRARY].list[i], *eq = strchr(spec, '=');
        if (!eq || eq == spec || !eq[1] || eq - spec > 128) {
            fprintf(stderr, "sage-indexer build: --library: expected NAME=PATH, got '%s'\n", spec);
            status = 2;
            goto out;
        }
        char name[130];
        snprintf(name, sizeof(name), "%.*s", (int)(eq - spec), spec);
        json_array_append_new(libs, json_pack("{s:s, s:s}", "name", name, "path", eq + 1));
        if (add_root(&b, eq + 1, name) < 0)
            goto out;
    }
    for (int i = 0; i < c->n_args; i++) {
        json_array_append_new(sources, json_string(c->args[i]));
        if (add_root(&b, c->args[i], "default") < 0)
            goto out;
    }
    if (make_parent_dirs(out) < 0)
        goto out;
    char fmt_version[16];
    snprintf(fmt_version, sizeof(fmt_version), "%d.%d", SAGE_FORMAT_MAJOR, SAGE_FORMAT_MINOR);
    rec = json_pack("{s:s, s:s, s:s, s:o, s:O, s:O,"
                    " s:{s:I, s:i, s:I, s:I, s:I},"
                    " s:{s:s?, s:s, s:s}, s:{s:f, s:f},"
                    " s:{s:I, s:I, s:I, s:I}, s:O}",
        "tool", "sage-indexer", "version", SAGE_VERSION, "format", fmt_version,
        "build_time", c->v[OPT_BUILD_TIME].str ? json_integer(c->v[OPT_BUILD_TIME].num)
                                               : json_null(),
        "libraries", libs, "sources", sources,
        "options", "max_file_size", (json_int_t)b.max_file,
                   "zstd_level", (int)c->v[OPT_ZSTD_LEVEL].num,
                   "chunk_size", (json_int_t)b.chunking.size,
                   "chunk_overlap", (json_int_t)b.chunking.overlap,
                   "max_chunk", (json_int_t)b.chunking.max,
        "tokenizer", "stemmer", tok.stemmer, "stopwords", stop, "normalization",
                     "nfkc-casefold-stripmarks",
        "bm25", "k1", 1.2, "b", 0.75,
        "counts", "documents", (json_int_t)b.n_docs, "chunks", (json_int_t)b.n_chunks,
                  "bytes", (json_int_t)b.n_bytes, "skipped", (json_int_t)b.n_skipped,
        "skipped", b.skipped);
    if (!rec || sage_mpjson_encode(rec, &rec_buf, &rec_len, &err) < 0 ||
        write_index(&b, out, rec_buf, rec_len, (int)c->v[OPT_ZSTD_LEVEL].num, sha, &err) < 0) {
        sage_log(SAGE_LOG_ERROR, "cannot build '%s': %s", out, err.msg[0] ? err.msg : "out of memory");
        goto out;
    }
    sage_log(SAGE_LOG_INFO, "wrote '%s': %llu documents, %llu chunks, %llu bytes of text, "
             "%llu skipped; sha256 %s", out, (unsigned long long)b.n_docs,
             (unsigned long long)b.n_chunks, (unsigned long long)b.n_bytes,
             (unsigned long long)b.n_skipped, sha);
    status = 0;
out:
    sage_free(rec_buf);
    json_decref(rec);
    json_decref(libs);
    json_decref(sources);
    json_decref(b.skipped);
    sage_rectab_builder_release(&b.docs);
    sage_chunkstore_builder_release(&b.text);
    sage_ixbuild_free(b.ix);
    sage_free(b.chunk_map);
    sage_free(b.scratch);
    return status;
}
