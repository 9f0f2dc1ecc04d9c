/* sage-indexer build: crawls the sources (crawl.c), detects each file's
 * type by content with the name as a hint (libmagic), opens archives
 * (archive.c, nested to a bounded depth), extracts text (extract_*.c),
 * indexes identical content once, cuts heading-aware chunks (chunk.c) and
 * writes the document table, chunk table, chunk text and the BM25 inverted
 * index; every file indexed, skipped or failed is counted and, with
 * --report, listed with its reason. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <magic.h>
#include <pthread.h>
#include <stdarg.h>
#include <unistd.h>
#include <utf8proc.h>
#include <xxhash.h>

#include "alloc.h"
#include "archive.h"
#include "chunk.h"
#include "chunkmeta.h"
#include "chunkstore.h"
#include "cli.h"
#include "embed.h"
#include "hnsw.h"
#include "ocr.h"

#include <tesseract/capi.h>
#include "crawl.h"
#include "extract_text.h"
#include "progress.h"
#include "ixbuild.h"
#include "le.h"
#include "log.h"
#include "mpjson.h"
#include "ocrpages.h"
#include "rectab.h"
#include "stamp.h"
#include "tmpfile.h"
#include "vectors.h"
#include "sink.h"
#include "writer.h"
#include "clock.h"

#define SKIPPED_LISTED 1000

struct seen {
    XXH128_hash_t hash;
    uint32_t doc;
};

struct build {
    struct sink s;              /* the index being written */
    struct chunk_opts chunking;
    struct archive_limits alim;
    struct pdf_limits plim;
    struct crawl_opts crawl;
    long long max_file;
    uint64_t shard_i, shard_n;  /* shard_n 0: no sharding */
    uint64_t n_bytes, n_skipped, n_failed, n_dupes, n_ocr;
    uint64_t n_ocr_pages;       /* pages whose text came from OCR */
    uint64_t n_ocr_reused;      /* of those, pages whose text --reuse held */
    struct ocr_client *ocr;     /* --ocr-url: pages go to this server; NULL: local */
    char ocr_engine[160];       /* what reads pages: "tesseract VERSION" or "server MODEL" */
    struct ocr_out *ocr_out;    /* every page read, for the next --reuse */
    struct sage_ocrpages prev_ocr;  /* --reuse: the pages the previous index read */
    uint8_t *ocr_known;         /* their digests for this engine, sorted */
    json_t *skipped;            /* [{path, reason}], the first SKIPPED_LISTED */
    json_t *report;             /* every file, when --report */
    struct seen *seen;          /* content hash -> document, open addressing */
    size_t n_seen, cap_seen;
    struct progress prog;
    int quiet;
    /* embeddings (--embed-url): each chunk's index text goes to the
     * embedder as it is committed, so the server works while we crawl */
    struct embedder *emb;       /* NULL: none, or given up (optional) */
    int emb_optional;
    uint64_t vec_got;           /* atomic: rows written by the embedder */
    json_t *emb_record;         /* the build record's "embedding" */
    struct sage_reader *prev;   /* --reuse: the previous index */
    struct sage_vectors prev_vecs;  /* its vectors, when their settings match */
    uint64_t *prev_slots;       /* open addressing: row + 1 by text hash; 0 empty */
    size_t prev_mask;
    uint64_t n_reused, n_embedded;  /* vectors taken from --reuse, and sent to the server */
    struct sage_err emb_err;    /* the first embedding failure */
    /* --shard: each document records where the whole build would put it
     * (FORMAT.md §9.4 "seq"), so merge can restore that order */
    uint64_t cur_job;           /* the file being committed, in crawl order */
    uint32_t cur_member;        /* its unit's place among the file's shard tests */
    uint64_t jsonl_base;        /* lines of a JSONL file's ranges committed so far */
};

/* The text of each page read by OCR, written to the index for the next
 * build's --reuse; extraction threads add to it. */
struct ocr_out {
    pthread_mutex_t lock;
    struct sage_ocrpages_builder *pages;
};

static void report(struct build *b, const char *path, const char *status, const char *reason,
                   uint64_t chunks)
{
    if (!b->report)
        return;
    json_t *e = json_pack("{s:s, s:s}", "path", path, "status", status);
    if (e && reason)
        json_object_set_new(e, "reason", json_string(reason));
    if (e && !reason)
        json_object_set_new(e, "chunks", json_integer((json_int_t)chunks));
    json_array_append_new(b->report, e);
}

/* A file left out by policy (binary, too large, excluded...). */
static void skip(struct build *b, const char *path, const char *why)
{
    if (!b->quiet)
        sage_log(SAGE_LOG_WARN, "skipping '%s': %s", path, why);
    if (b->n_skipped++ < SKIPPED_LISTED)
        json_array_append_new(b->skipped, json_pack("{s:s, s:s}", "path", path, "reason", why));
    report(b, path, "skipped", why, 0);
}

/* A file that should have been indexed and could not be (unreadable,
 * broken archive, PDF parser crash): counts against --max-failures. */
static void fail(struct build *b, const char *path, const char *why)
{
    if (!b->quiet)
        sage_log(SAGE_LOG_WARN, "failed '%s': %s", path, why);
    if (b->n_skipped + b->n_failed < SKIPPED_LISTED)
        json_array_append_new(b->skipped, json_pack("{s:s, s:s, s:b}", "path", path,
                                                    "reason", why, "failed", 1));
    b->n_failed++;
    report(b, path, "failed", why, 0);
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

/* The previous index's row whose text hash is hash, or -1. */
static int64_t reusable(const struct build *b, const uint8_t *hash)
{
    if (!b->prev_slots)
        return -1;
    for (size_t j = (size_t)sage_le64(hash) & b->prev_mask; b->prev_slots[j];
         j = (j + 1) & b->prev_mask) {
        uint64_t row = b->prev_slots[j] - 1;
        if (memcmp(sage_vectors_hash(&b->prev_vecs, row), hash, 16) == 0)
            return (int64_t)row;
    }
    return -1;
}

/* The embedder's callback, on its I/O thread: rows go to their file as they
 * arrive, so memory does not grow with the corpus. */
static int on_vector(void *ctx, uint64_t id, const float *vec, unsigned dim)
{
    struct build *b = ctx;
    unsigned want = 0;
    if (!__atomic_compare_exchange_n(&b->s.emb_dim, &want, dim, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE) && want != dim)
        return -SAGE_EREMOTE;
    struct sage_err err;
    if (sink_put_row(&b->s, id, vec, &err) < 0) {
        sage_log(SAGE_LOG_ERROR, "%s", err.msg);
        return -SAGE_EIO;
    }
    __atomic_add_fetch(&b->vec_got, 1, __ATOMIC_RELAXED);
    return 0;
}

/* Hands chunk id's index text (in scratch) to the embedder and keeps its
 * hash (FORMAT.md §9.11). A failing server is remembered in emb_err: with
 * --embeddings=optional the embedder is dropped and the build goes on
 * lexical-only; otherwise the build fails once the crawl is done. Only
 * running out of memory fails the chunk. */
static int embed_chunk(struct build *b, uint64_t id, size_t len)
{
    uint8_t hash[16];
    XXH128_hash_t h = XXH3_128bits(b->s.scratch, len);
    sage_put64(hash, h.low64);
    sage_put64(hash + 8, h.high64);
    if (sink_set_hash(&b->s, id, hash, &b->emb_err) < 0)
        return -SAGE_ENOMEM;
    struct sage_err err = { 0 };
    int64_t row = reusable(b, hash);
    int rc = row >= 0 ? sink_put_row(&b->s, id, sage_vectors_row(&b->prev_vecs, (uint64_t)row),
                                     &err)
                      : embed_add(b->emb, id, b->s.scratch, len, &err);
    b->n_reused += row >= 0 && rc == 0;
    if (rc == -SAGE_ENOMEM)
        return rc;
    if (rc < 0 && !b->emb_err.code) {
        b->emb_err = err;
        sage_log(SAGE_LOG_ERROR, "embeddings failed: %s%s", err.msg,
                 b->emb_optional ? "; going on without vectors (--embeddings=optional)" : "");
    }
    return 0;
}

struct doc_ctx {
    struct build *b;
    uint32_t doc;
    const char *title;
    struct sage_err *err;
};

static const char *const source_names[] = { "text", "ocr-local", "ocr-remote" };

static int on_chunk(void *ctx, const char *text, size_t len, const char *heading, uint32_t page,
                    uint8_t source, uint32_t ordinal)
{
    struct doc_ctx *d = ctx;
    struct build *b = d->b;
    size_t n = 0;
    int rc = 0;
    json_t *j = json_pack("{s:I, s:I, s:I, s:s%, s:s?}", "doc", (json_int_t)d->doc,
                          "ordinal", (json_int_t)ordinal, "page", (json_int_t)page,
                          "text", text, len, "heading", heading);
    if (j && source != SOURCE_TEXT && source < sizeof(source_names) / sizeof(source_names[0]))
        json_object_set_new(j, "source", json_string(source_names[source]));
    if (!j)
        return sage_err_set(d->err, SAGE_ENOMEM, "cannot encode chunk");
    if ((rc = sink_add_chunk(&b->s, d->doc, ordinal, j, d->title, heading, page, text, len, &n,
                             d->err)) == 0 &&
        b->emb)
        rc = embed_chunk(b, b->s.n_chunks - 1, n);
    json_decref(j);
    return rc;
}

/* After the crawl: waits for the last vectors and takes them, or records
 * why there are none. 0, or -1 when the build must fail. */
static int embed_done(struct build *b, const struct cli *c)
{
    struct embed_stats st;
    if (!b->emb)
        return 0;
    if (!b->emb_err.code && embed_finish(b->emb, &b->emb_err) == 0 &&
        b->vec_got + b->n_reused != b->s.n_chunks)
        sage_err_set(&b->emb_err, SAGE_EREMOTE, "%llu vectors for %llu chunks",
                     (unsigned long long)(b->vec_got + b->n_reused),
                     (unsigned long long)b->s.n_chunks);
    embed_get_stats(b->emb, &st);
    b->n_embedded = st.inputs;
    embed_free(b->emb);
    b->emb = NULL;
    if (b->emb_err.code) {
        close(b->s.vec_fd);
        b->s.vec_fd = -1;
        if (!b->emb_optional) {
            sage_log(SAGE_LOG_ERROR, "no index written: embeddings failed: %s", b->emb_err.msg);
            return -1;
        }
        b->emb_record = json_pack("{s:s, s:s, s:s}", "status", "failed", "model",
                                  c->v[OPT_EMBED_MODEL].str, "reason", b->emb_err.msg);
        return 0;
    }
    if (strcmp(c->v[OPT_EMBED_NORMALIZE].str, "yes") == 0)
        b->s.emb_flags = SAGE_VECTORS_NORMALIZED;
    /* no request or retry counts: they vary from run to run, and the same
     * input must give the same file (they go to the log instead) */
    b->emb_record = json_pack("{s:s, s:s, s:i, s:s, s:s, s:b, s:I, s:I}", "status", "ok",
        "model", c->v[OPT_EMBED_MODEL].str, "dim", (int)b->s.emb_dim,
        "document_prefix", c->v[OPT_EMBED_DOC_PREFIX].str ? c->v[OPT_EMBED_DOC_PREFIX].str : "",
        "query_prefix", c->v[OPT_EMBED_QUERY_PREFIX].str ? c->v[OPT_EMBED_QUERY_PREFIX].str : "",
        "normalized", strcmp(c->v[OPT_EMBED_NORMALIZE].str, "yes") == 0,
        "embedded", (json_int_t)st.inputs, "reused", (json_int_t)b->n_reused);
    sage_log(SAGE_LOG_INFO, "embedded %llu chunks (dimension %u) in %llu requests, %llu retries; "
             "%llu reused", (unsigned long long)st.inputs, b->s.emb_dim,
             (unsigned long long)st.http.requests, (unsigned long long)st.http.retries,
             (unsigned long long)b->n_reused);
    return 0;
}

/* Where a shard's document or alias stands in the whole build's crawl
 * order: [file, shard test within the file, JSONL line] (FORMAT.md §9.4). */
static json_t *seq_of(const struct build *b, uint64_t line)
{
    return json_pack("[I, I, I]", (json_int_t)b->cur_job, (json_int_t)b->cur_member,
                     (json_int_t)line);
}

/* Adds one extracted document: its record, then its chunks. ext_id is the
 * collection's own id (JSONL), or NULL; line its JSONL line (0 for a file);
 * content the hash of a file's bytes (NULL for JSONL). */
static int add_document(struct build *b, const char *disp, const char *library, const char *path,
                        const char *ext_id, const char *fallback_title, struct extracted *x,
                        size_t bytes, uint64_t line, const XXH128_hash_t *content,
                        struct sage_err *err)
{
    int rc;
    const char *title = x->title ? x->title : fallback_title;
    uint64_t first = b->s.n_chunks;
    struct doc_ctx d = { b, (uint32_t)b->s.n_docs, title, err };
    if (b->s.n_docs >= UINT32_MAX - 1)
        return sage_err_set(err, SAGE_ELIMIT, "more than %u documents", UINT32_MAX - 1);
    rc = chunk_document(x, &b->chunking, on_chunk, &d);
    if (rc != 0)
        return rc < 0 ? rc : sage_err_set(err, SAGE_ENOMEM, "cannot chunk '%s'", path);
    json_t *doc = json_pack("{s:I, s:s, s:s, s:s, s:I, s:I, s:I}", "id", (json_int_t)b->s.n_docs,
                            "library", library, "path", path, "title", title,
                            "bytes", (json_int_t)bytes, "first_chunk", (json_int_t)first,
                            "n_chunks", (json_int_t)(b->s.n_chunks - first));
    if (doc && ext_id)
        json_object_set_new(doc, "ext_id", json_string(ext_id));
    if (doc && x->n_pages)
        json_object_set_new(doc, "pages", json_integer(x->n_pages));
    if (doc && b->shard_n) {
        /* what merge needs to order and dedupe documents as a whole build */
        char hex[33] = "";
        if (content)
            snprintf(hex, sizeof(hex), "%016llx%016llx", (unsigned long long)content->high64,
                     (unsigned long long)content->low64);
        json_object_set_new(doc, "seq", seq_of(b, line));
        if (content)
            json_object_set_new(doc, "content", json_string(hex));
    }
    if (!doc)
        return sage_err_set(err, SAGE_ENOMEM, "cannot record document '%s'", path);
    rc = sink_add_doc(&b->s, doc, err);
    json_decref(doc);
    if (rc < 0)
        return rc;
    b->s.n_docs++;
    b->n_bytes += bytes;
    report(b, disp, "indexed", NULL, b->s.n_chunks - first);
    if (!b->quiet)
        sage_log(SAGE_LOG_DEBUG, "indexed '%s' (%s, %llu chunks)", disp, library,
                 (unsigned long long)(b->s.n_chunks - first));
    return 0;
}

/* Identical content is indexed once: returns the document that already
 * holds these bytes (and records path as its alias), or -1 after noting
 * the bytes as belonging to the next document. */
static long dedupe(struct build *b, XXH128_hash_t h, const char *path)
{
    if (b->n_seen * 2 >= b->cap_seen) {
        size_t cap = b->cap_seen ? b->cap_seen * 2 : 1024;
        struct seen *t = sage_calloc(cap, sizeof(*t));
        if (!t)
            return -1;      /* no dedupe rather than no index */
        for (size_t i = 0; i < b->cap_seen; i++)
            if (b->seen[i].doc) {
                size_t j = (size_t)b->seen[i].hash.low64 & (cap - 1);
                while (t[j].doc)
                    j = (j + 1) & (cap - 1);
                t[j] = b->seen[i];
            }
        sage_free(b->seen);
        b->seen = t;
        b->cap_seen = cap;
    }
    size_t j = (size_t)h.low64 & (b->cap_seen - 1);
    while (b->seen[j].doc) {
        if (XXH128_isEqual(b->seen[j].hash, h)) {
            /* the record is encoded already: the aliases join it when written */
            json_t *doc = sink_doc_extra(&b->s, b->seen[j].doc - 1);
            json_t *al = json_object_get(doc, "aliases");
            if (!al && doc)
                json_object_set_new(doc, "aliases", al = json_array());
            json_array_append_new(al, json_string(path));
            if (b->shard_n) {
                json_t *as = json_object_get(doc, "alias_seq");
                if (!as && doc)
                    json_object_set_new(doc, "alias_seq", as = json_array());
                json_array_append_new(as, seq_of(b, 0));
            }
            return (long)b->seen[j].doc - 1;
        }
        j = (j + 1) & (b->cap_seen - 1);
    }
    b->seen[j] = (struct seen){ h, (uint32_t)b->s.n_docs + 1 };
    b->n_seen++;
    return -1;
}

/* Reads up to n bytes from fd, through EINTR and short reads; how many it
 * got (fewer at the end of the file or on an error). */
static size_t read_full(int fd, uint8_t *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, buf + got, n - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    return got;
}

/* Reads a whole file. -1 (with why) when it cannot be read, -2 when policy
 * leaves it out (too large, not a regular file). */
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
        return -2;
    }
    uint8_t *buf = sage_malloc((size_t)st.st_size + 1);
    size_t got = buf ? read_full(fd, buf, (size_t)st.st_size) : 0;
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

/* ---- extraction, which may run on worker threads ----
 *
 * Extracting a file never touches the build: it turns the file's bytes (and,
 * for an archive, every member's) into a list of units, each a document to
 * add or an outcome to report. The main thread then commits the units of
 * each file in crawl order, so the index is the same byte for byte whether
 * one thread or several extracted. */

enum unit_kind { U_SKIP, U_FAIL, U_OCR_ONLY, U_DOC, U_JLINE, U_JSKIP, U_FATAL };

struct unit {
    enum unit_kind kind;
    char *disp, *path;          /* owned; path only for U_DOC and U_JLINE */
    char *reason;               /* owned: skip/fail reason, or the OCR note */
    struct extracted x;         /* U_DOC */
    XXH128_hash_t hash;         /* U_DOC: of the source bytes, for dedupe */
    uint32_t member;            /* shard tests of its file before its own (seq_of) */
    char *ext_id;               /* U_JLINE: the line's "id" (owned) */
    uint64_t line;              /* U_JLINE, U_JSKIP: line number, within the job's range */
    size_t len;
};

struct units {
    struct unit *u;
    size_t n, cap;
};

/* What extraction needs: read-only settings and a libmagic handle of its own
 * (libmagic handles are not shared between threads). */
struct xctx {
    uint32_t n_tests;           /* shard tests so far in this file (in_shard) */
    const struct build *b;
    magic_t magic;
    const char *library;
    struct units *out;
};

static struct unit *unit_add(struct units *l, enum unit_kind k, const char *disp,
                             const char *reason)
{
    if (sage_grow((void **)&l->u, &l->cap, l->n + 1, sizeof(*l->u)) < 0)
        return NULL;
    struct unit *u = &l->u[l->n];
    memset(u, 0, sizeof(*u));
    u->kind = k;
    if (!(u->disp = sage_strdup(disp)) || (reason && !(u->reason = sage_strdup(reason)))) {
        sage_free(u->disp);
        sage_free(u->reason);
        return NULL;
    }
    l->n++;
    return u;
}

static void units_release(struct units *l)
{
    for (size_t i = 0; i < l->n; i++) {
        struct unit *u = &l->u[i];
        sage_free(u->disp);
        sage_free(u->path);
        sage_free(u->reason);
        sage_free(u->ext_id);
        extracted_release(&u->x);
    }
    sage_free(l->u);
    memset(l, 0, sizeof(*l));
}

/* One JSON object per line: {"id", "title", "text"} (as in the IR test
 * collections); each line is a document, a U_JLINE unit, parsed here on a
 * worker. A bad line becomes a U_JSKIP unit, reported by number. line counts
 * from 1 within what the caller reads (a range of the file: the commit adds
 * the lines of the ranges before). -1 only when out of memory. */
static int jsonl_line(struct units *out, const char *disp, const char *rel, const char *p,
                      size_t n, uint64_t line)
{
    struct sage_err err = { 0 };
    struct unit *u;
    if (n == 0)
        return 0;
    json_error_t jerr;
    json_t *o = json_loadb(p, n, JSON_REJECT_DUPLICATES, &jerr);
    json_t *id = o ? json_object_get(o, "id") : NULL;
    const char *text = o ? json_string_value(json_object_get(o, "text")) : NULL;
    const char *title = o ? json_string_value(json_object_get(o, "title")) : NULL;
    char idbuf[32];
    const char *ids = json_is_string(id) ? json_string_value(id) : NULL;
    if (json_is_integer(id)) {
        snprintf(idbuf, sizeof(idbuf), "%" JSON_INTEGER_FORMAT, json_integer_value(id));
        ids = idbuf;
    }
    if (!o || !ids || !text) {
        json_decref(o);
        u = unit_add(out, U_JSKIP, disp, !o ? "not a JSON object" : "needs string \"id\" and \"text\"");
        if (u)
            u->line = line;
        return u ? 0 : -1;
    }
    int rc = -1;
    size_t dl = strlen(rel) + strlen(ids) + 2;
    if ((u = unit_add(out, U_JLINE, disp, NULL)) && (u->path = sage_malloc(dl)) &&
        (u->ext_id = sage_strdup(ids))) {
        snprintf(u->path, dl, "%s#%s", rel, ids);
        u->line = line;
        u->len = n;
        rc = extracted_add(&u->x, text, strlen(text), NULL, 0, &err);
        if (rc == 0 && title && *title)
            rc = extracted_set_title(&u->x, title, strlen(title), &err);
    }
    json_decref(o);
    return rc < 0 ? -1 : 0;
}

/* Every line of a JSONL file held in memory (an archive's member, or a file
 * whose first line is too long to stream). */
static int jsonl_lines(struct units *out, const char *disp, const char *rel, const uint8_t *data,
                       size_t len)
{
    const char *p = (const char *)data, *end = p + len;
    uint64_t line = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        if (jsonl_line(out, disp, rel, p, (size_t)(le - p), ++line) < 0)
            return -1;
        p = le + 1;
    }
    return 0;
}

static int extract_bytes(struct xctx *c, const char *disp, const char *path, const uint8_t *data,
                         size_t len, unsigned depth, struct archive_budget *budget);
static int extract_member(struct xctx *c, const char *disp, const char *path,
                          const uint8_t *data, size_t len);

struct member_ctx {
    struct xctx *c;
    const char *outer_disp;     /* where the archive is, for messages */
    const char *outer;          /* the archive's document path */
    unsigned depth;
    struct archive_budget *budget;
    int rc;
};

/* "outer!/name", owned by the caller. */
static char *member_path(const char *outer, const char *name)
{
    size_t n = strlen(outer) + strlen(name) + 3;
    char *p = sage_malloc(n);
    if (p)
        snprintf(p, n, "%s!/%s", outer, name);
    return p;
}

static int on_member(void *ctx, const char *name, const uint8_t *data, size_t len)
{
    struct member_ctx *m = ctx;
    char *disp = member_path(m->outer_disp, name), *path = member_path(m->outer, name);
    m->rc = disp && path ? extract_bytes(m->c, disp, path, data, len, m->depth + 1, m->budget)
                         : -1;
    sage_free(disp);
    sage_free(path);
    return m->rc;
}

static void on_member_skip(void *ctx, const char *name, const char *reason)
{
    struct member_ctx *m = ctx;
    char *disp = member_path(m->outer_disp, name);
    if (!disp || !unit_add(m->c->out, U_SKIP, disp, reason))
        m->rc = -1;
    sage_free(disp);
}

static int count_member(void *ctx, const char *name, const uint8_t *data, size_t len)
{
    (void)ctx, (void)name, (void)data, (void)len;
    return 0;
}

static void count_skip_member(void *ctx, const char *name, const char *reason)
{
    (void)ctx, (void)name, (void)reason;
}

static int in_shard(const struct build *b, const char *library, const char *path)
{
    if (!b->shard_n)
        return 1;
    XXH3_state_t *st = XXH3_createState();
    uint64_t h = 0;
    if (st) {
        XXH3_64bits_reset(st);
        XXH3_64bits_update(st, library, strlen(library) + 1);
        XXH3_64bits_update(st, path, strlen(path));
        h = XXH3_64bits_digest(st);
        XXH3_freeState(st);
    }
    return h % b->shard_n == b->shard_i;
}

/* Turns the pages a PDF child found without a text layer into text: what
 * tesseract read in the child, the text --reuse holds for the same image
 * and engine, or what the OCR server reads from the PNG; then adds it in
 * page order and records it for the next build's --reuse. A page the
 * server cannot read after its retries stays without text (counted as
 * needing OCR, the first reason kept in why); only running out of memory is
 * an error. */
static int ocr_resolve(const struct build *b, struct extracted *x, char *why, size_t why_len,
                       struct sage_err *err)
{
    int rc = 0;
    for (size_t i = 0; i < x->n_ocr && rc == 0; i++) {
        const struct ocr_request *q = &x->ocr[i];
        const char *text = q->text;
        size_t len = q->text_len;
        char *owned = NULL;
        int reused = 0;
        struct sage_err e = { 0 };
        if (!text && !q->png) {     /* a digest the child knew from --reuse */
            reused = sage_ocrpages_find(&b->prev_ocr, q->hash, b->ocr_engine, &text, &len);
        } else if (!text && b->ocr) {
            if (ocr_page(b->ocr, q->png, q->png_len, &owned, &len, &e) < 0) {
                if (e.code == SAGE_ENOMEM)
                    rc = sage_err_set(err, SAGE_ENOMEM, "%s", e.msg);
                if (!why[0])
                    snprintf(why, why_len, "%.*s", (int)(why_len - 1), e.msg);
            }
            text = owned;
        }
        if (!text) {
            x->n_ocr_pages++;
            continue;
        }
        size_t before = x->n_blocks;
        rc = extracted_add_source(x, text, len, NULL, q->page,
                                  b->ocr ? SOURCE_OCR_REMOTE : SOURCE_OCR_LOCAL, err);
        if (rc == 0 && x->n_blocks > before) {
            x->n_ocr_done++;
            x->n_ocr_reused += (uint32_t)reused;
        } else if (rc == 0) {
            x->n_ocr_pages++;
        }
        if (rc == 0) {
            pthread_mutex_lock(&b->ocr_out->lock);
            rc = sage_ocrpages_add(b->ocr_out->pages, q->hash, b->ocr_engine, text, len, err);
            pthread_mutex_unlock(&b->ocr_out->lock);
        }
        sage_free(owned);
    }
    extracted_drop_ocr(x);
    extracted_sort_pages(x);
    return rc;
}

/* Extracts one file's bytes into units. path is the document's path within
 * its library ("dir/a.md", "docs.zip!/inner/b.html"); disp is where the
 * operator finds it, for messages and the report. Returns -1 only when out
 * of memory; bad files become skip or fail units. */
static int extract_bytes(struct xctx *c, const char *disp, const char *path, const uint8_t *data,
                         size_t len, unsigned depth, struct archive_budget *budget)
{
    const struct build *b = c->b;
    struct sage_err err = { 0 };
    int rc = 0;

    if (archive_detect(data, len)) {
        /* A dry run first, so an archive that breaks a limit or is broken
         * part-way is left out whole rather than indexed in part. */
        struct archive_budget own = { 0, 0 }, *bud = budget ? budget : &own, trial = *bud;
        struct member_ctx m = { c, disp, path, depth, bud, 0 };
        int arc = archive_walk(path, data, len, &b->alim, &trial, depth, count_member,
                               count_skip_member, NULL, &err);
        if (arc == 0)
            arc = archive_walk(path, data, len, &b->alim, bud, depth, on_member, on_member_skip,
                               &m, &err);
        if (m.rc < 0)
            return -1;
        if (arc < 0 && !unit_add(c->out, arc == -SAGE_ELIMIT ? U_SKIP : U_FAIL, disp, err.msg))
            return -1;
        return 0;
    }
    /* every shard walks the same members in the same order, so this count
     * places a unit the same way in all of them */
    uint32_t member = c->n_tests++;
    size_t first_unit = c->out->n;
    if (!in_shard(b, c->library, path))
        return 0;
    rc = extract_member(c, disp, path, data, len);
    for (size_t i = first_unit; i < c->out->n; i++)
        c->out->u[i].member = member;
    return rc;
}

/* extract_bytes of a file that is not an archive, in this shard. */
static int extract_member(struct xctx *c, const char *disp, const char *path,
                          const uint8_t *data, size_t len)
{
    const struct build *b = c->b;
    struct sage_err err = { 0 };
    struct unit *u = NULL;
    int rc = 0;
    const char *name = strrchr(path, '/');
    name = name ? name + 1 : path;

    /* The name is the hint and the content decides: a file whose extension
     * names a type we read is taken as that type when its bytes agree (a PDF
     * header, or NUL-free UTF-8 for the text formats); anything else, or a
     * disagreement, is left to libmagic, which costs about a millisecond a
     * file. */
    const char *mime = NULL;
    int text_ext = has_suffix(name, ".md") || has_suffix(name, ".markdown") ||
                   has_suffix(name, ".rst") || has_suffix(name, ".txt") ||
                   has_suffix(name, ".jsonl");
    int html_ext = has_suffix(name, ".html") || has_suffix(name, ".htm") ||
                   has_suffix(name, ".xhtml");
    if (has_suffix(name, ".pdf") && len >= 5 && memcmp(data, "%PDF-", 5) == 0)
        mime = "application/pdf";
    else if ((text_ext || html_ext) && !memchr(data, 0, len) && is_text(data, len))
        mime = html_ext ? "text/html" : "text/plain";
    else if (c->magic)
        mime = magic_buffer(c->magic, data, len);
    mime = mime ? mime : "application/octet-stream";
    int html = (strcmp(mime, "text/html") == 0 && !text_ext) || html_ext;
    int pdf = strcmp(mime, "application/pdf") == 0;
    int text = strncmp(mime, "text/", 5) == 0 || is_text(data, len);
    struct extracted x = { 0 };
    char ocr_fail[160] = "";
    if (pdf) {
        rc = extract_pdf(data, len, &b->plim, &x, &err);
        if (rc == 0 && x.n_ocr)
            rc = ocr_resolve(b, &x, ocr_fail, sizeof(ocr_fail), &err);
    } else if (html && (text || strncmp(mime, "application/xhtml", 17) == 0)) {
        rc = extract_html(data, len, &x, &err);
    } else if (!text || memchr(data, 0, len)) {
        char why[160];
        snprintf(why, sizeof(why), "binary file (%s)", mime);
        return unit_add(c->out, U_SKIP, disp, why) ? 0 : -1;
    } else if (has_suffix(name, ".jsonl")) {
        return jsonl_lines(c->out, disp, path, data, len);
    } else {
        enum text_kind kind = has_suffix(name, ".md") || has_suffix(name, ".markdown")
                              ? TEXT_MARKDOWN : has_suffix(name, ".rst") ? TEXT_RST : TEXT_PLAIN;
        rc = extract_text(data, len, kind, &x, &err);
    }
    if (rc < 0) {
        extracted_release(&x);
        if (rc == -SAGE_ENOMEM)
            return -1;
        /* a PDF that times out is a failure, other limits are policy */
        return unit_add(c->out, rc == -SAGE_ELIMIT && !pdf ? U_SKIP : U_FAIL, disp, err.msg)
               ? 0 : -1;
    }
    char ocr[256] = "";
    if (x.n_ocr_pages)
        snprintf(ocr, sizeof(ocr), "%u of %u pages have no text layer%s%s", x.n_ocr_pages,
                 x.n_pages, ocr_fail[0] ? " and OCR failed: " : "", ocr_fail);
    if (x.n_blocks == 0) {
        extracted_release(&x);
        return unit_add(c->out, x.n_ocr_pages ? U_OCR_ONLY : U_SKIP, disp,
                        x.n_ocr_pages ? ocr : "no text") ? 0 : -1;
    }
    if (!(u = unit_add(c->out, U_DOC, disp, ocr[0] ? ocr : NULL)) || !(u->path = sage_strdup(path))) {
        extracted_release(&x);
        return -1;
    }
    u->x = x;
    u->hash = XXH3_128bits(data, len);
    u->len = len;
    return 0;
}

/* Adds one unit to the index (main thread). -1 when the build cannot go on. */
static int commit_unit(struct build *b, const char *library, struct unit *u)
{
    struct sage_err err = { 0 };
    switch (u->kind) {
    case U_FATAL:
        return -1;
    case U_SKIP:
        skip(b, u->disp, u->reason);
        return 0;
    case U_FAIL:
        fail(b, u->disp, u->reason);
        return 0;
    case U_JSKIP: {
        char what[PATH_MAX + 64];
        snprintf(what, sizeof(what), "%s:%" PRIu64, u->disp, b->jsonl_base + u->line);
        skip(b, what, u->reason);
        return 0;
    }
    case U_JLINE: {
        char where[64];
        uint64_t line = b->jsonl_base + u->line;
        snprintf(where, sizeof(where), "%.40s:%" PRIu64, u->disp, line);
        if (add_document(b, where, library, u->path, u->ext_id, u->ext_id, &u->x, u->len, line,
                         NULL, &err) < 0) {
            sage_log(SAGE_LOG_ERROR, "cannot index '%s' %s: %s", u->disp, where, err.msg);
            return -1;
        }
        return 0;
    }
    case U_OCR_ONLY:
    case U_DOC:
        break;
    }
    b->n_ocr_pages += u->x.n_ocr_done;
    b->n_ocr_reused += u->x.n_ocr_reused;
    if (u->reason) {
        b->n_ocr++;
        if (!b->quiet)
            sage_log(SAGE_LOG_WARN, "'%s' needs OCR: %s", u->disp, u->reason);
    }
    if (u->kind == U_OCR_ONLY) {
        report(b, u->disp, "needs-ocr", u->reason, 0);
        return 0;
    }
    if (dedupe(b, u->hash, u->path) >= 0) {
        b->n_dupes++;
        report(b, u->disp, "duplicate", "same content as an indexed file", 0);
        return 0;
    }
    const char *name = strrchr(u->path, '/');
    int rc = add_document(b, u->disp, library, u->path, NULL, name ? name + 1 : u->path, &u->x,
                          u->len, 0, &u->hash, &err);
    if (rc == 0 && u->reason && b->report)
        json_object_set_new(json_array_get(b->report, json_array_size(b->report) - 1),
                            "needs_ocr", json_string(u->reason));
    if (rc == -SAGE_ENOMEM) {
        sage_log(SAGE_LOG_ERROR, "cannot index '%s': %s", u->disp, err.msg);
        return -1;
    }
    if (rc < 0)
        skip(b, u->disp, err.msg);
    return 0;
}

/* ---- the pool: workers extract whole files, the main thread commits ---- */

struct job {
    char *path, *rel, *library;     /* owned */
    struct units units;
    size_t len;                     /* bytes read, for the progress line */
    int done;
    int range;                      /* a JSONL file's lines starting in [off, end) */
    uint64_t off, end;
    uint64_t lines;                 /* lines read in the range */
};

#define POOL_JOBS_PER_THREAD 1024
#define POOL_HELD ((uint64_t)256 << 20)     /* input bytes extracted ahead of the commit */

struct pool {
    struct build *b;
    pthread_t *threads;
    int n_threads;
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    struct job *jobs;               /* ring of cap */
    size_t cap;
    uint64_t head, take, tail;      /* commit, claim, push positions */
    uint64_t held;                  /* input bytes of extracted jobs not yet committed */
    int stop;
    int failed;                     /* a commit returned -1 */
};

#define JSONL_HEAD (64 << 10)
#define JSONL_RANGE ((uint64_t)4 << 20)     /* bytes of a JSONL file one job parses */

/* Whether a .jsonl file on disk can be read a range at a time, and its size.
 * What extract_bytes would decide from the whole file is decided once, at
 * the crawl, from its first 64 KiB: not an archive, text up to the last
 * whole line. When it is no, the file becomes an ordinary job, read whole. */
static int jsonl_streamable(const struct build *b, const char *path, uint64_t *size)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return 0;
    uint8_t *head = sage_malloc(JSONL_HEAD);
    size_t got = 0;
    if (head && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size <= b->max_file)
        got = read_full(fd, head, JSONL_HEAD);
    close(fd);
    size_t text = got;
    int ok = got > 0 && (off_t)got <= st.st_size && !archive_detect(head, got);
    if (ok && (off_t)got < st.st_size) {
        const uint8_t *nl = memrchr(head, '\n', got);
        ok = nl != NULL;
        text = nl ? (size_t)(nl - head) + 1 : 0;
    }
    ok = ok && is_text(head, text);
    sage_free(head);
    if (ok)
        *size = (uint64_t)st.st_size;
    return ok;
}

/* Parses the lines of a JSONL file that start in the job's range into
 * units, on a worker: the file is read a buffer at a time and never held
 * whole, and several workers parse one big file's ranges at once. -1 only
 * when out of memory. */
static int run_jsonl_range(struct xctx *c, struct job *j)
{
    int fd = open(j->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
    if (!f) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return unit_add(c->out, U_FAIL, j->path, strerror(e)) ? 0 : -1;
    }
    /* a line belongs to the range its first byte is in */
    uint64_t pos = j->off;
    int ch = 0, rc = 0;
    if (pos > 0 && fseeko(f, (off_t)(pos - 1), SEEK_SET) == 0) {
        while ((ch = getc(f)) != EOF && ch != '\n')
            pos++;
    } else if (pos > 0) {
        ch = EOF;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while (rc == 0 && ch != EOF && pos < j->end && (n = getline(&line, &cap, f)) >= 0) {
        size_t k = (size_t)n;
        pos += k;
        if (k && line[k - 1] == '\n')
            k--;
        rc = jsonl_line(c->out, j->path, j->rel, line, k, ++j->lines);
    }
    j->len = (size_t)(pos - j->off);
    if (rc == 0 && ferror(f))
        rc = unit_add(c->out, U_FAIL, j->path, strerror(errno ? errno : EIO)) ? 0 : -1;
    free(line);
    fclose(f);
    return rc;
}

/* What a done job counts against POOL_HELD. A JSONL range's parsed lines
 * take several times its bytes (for each line a unit, a copy of the text,
 * its blocks), and the commit, not the parsing, sets the pace: counted
 * sixteen-fold, 16 MiB of ranges run ahead, which keeps it fed (1M
 * generated chunks: 35 s and 456 MB peak, against 37 s and 515 MB at
 * eightfold and 45 s and 398 MB parsed on the commit thread). */
static uint64_t held_bytes(const struct job *j)
{
    return j->range ? (uint64_t)j->len * 16 : j->len;
}

/* Reads and extracts a job's file into its units. */
static void run_job(const struct build *b, magic_t magic, struct job *j)
{
    uint8_t *data = NULL;
    const char *why = NULL;
    struct xctx c = { 0, b, magic, j->library, &j->units };
    if (j->range) {
        /* the file's one shard test, as extract_bytes makes it */
        if (in_shard(b, c.library, j->rel) && run_jsonl_range(&c, j) < 0)
            unit_add(&j->units, U_FATAL, j->path, NULL);
        return;
    }
    int rr = read_file(j->path, b->max_file, &data, &j->len, &why);
    if (rr < 0) {
        if (!unit_add(&j->units, rr == -2 ? U_SKIP : U_FAIL, j->path, why))
            unit_add(&j->units, U_FATAL, j->path, NULL);
        j->len = 0;
        return;
    }
    if (extract_bytes(&c, j->path, j->rel, data, j->len, 0, NULL) < 0)
        unit_add(&j->units, U_FATAL, j->path, NULL);
    sage_free(data);
}

static magic_t magic_new(void)
{
    magic_t m = magic_open(MAGIC_MIME_TYPE | MAGIC_NO_CHECK_COMPRESS | MAGIC_NO_CHECK_TAR |
                           MAGIC_ERROR);
    if (m && magic_load(m, NULL) < 0) {
        magic_close(m);
        m = NULL;
    }
    return m;
}

static void *worker_main(void *arg)
{
    struct pool *p = arg;
    magic_t magic = magic_new();
    pthread_mutex_lock(&p->mu);
    for (;;) {
        /* past POOL_HELD, wait for the commit: the job at the head is
         * already taken (jobs are taken in order), so it always finishes */
        while ((p->take == p->tail || p->held > POOL_HELD) && !p->stop)
            pthread_cond_wait(&p->work, &p->mu);
        if (p->take == p->tail)
            break;
        struct job *j = &p->jobs[p->take++ % p->cap];
        if (j->done)
            continue;       /* an outcome the crawl queued, already complete */
        pthread_mutex_unlock(&p->mu);
        run_job(p->b, magic, j);
        pthread_mutex_lock(&p->mu);
        j->done = 1;
        p->held += held_bytes(j);
        pthread_cond_broadcast(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    if (magic)
        magic_close(magic);
    return NULL;
}

/* Commits the oldest job once it is done (waits for it). Called with mu. */
static void commit_oldest(struct pool *p)
{
    struct job *j = &p->jobs[p->head % p->cap];
    while (!j->done)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
    /* the line numbers of a JSONL range's units count on from the ranges before */
    if (!j->range || j->off == 0)
        p->b->jsonl_base = 0;
    for (size_t i = 0; i < j->units.n && !p->failed; i++) {
        p->b->cur_job = p->head;
        p->b->cur_member = j->units.u[i].member;
        if (commit_unit(p->b, j->library, &j->units.u[i]) < 0)
            p->failed = 1;
    }
    p->b->jsonl_base += j->lines;
    progress_step(&p->b->prog, j->len);
    pthread_mutex_lock(&p->mu);
    p->held -= held_bytes(j);
    pthread_cond_broadcast(&p->work);
    /* cleared under the lock: a worker may be looking at this slot's done */
    units_release(&j->units);
    sage_free(j->path);
    sage_free(j->rel);
    sage_free(j->library);
    memset(j, 0, sizeof(*j));
    p->head++;
    if (p->take < p->head)
        p->take = p->head;  /* outcomes the crawl queued need no worker */
}

static int pool_start(struct pool *p, struct build *b, int n_threads)
{
    memset(p, 0, sizeof(*p));
    p->b = b;
    /* Files are committed in crawl order, so a slow one (a big PDF) at the
     * head holds back the commit of every file after it; the other workers
     * keep going as long as the ring has room. A deep ring keeps them busy
     * (32 slots a thread left a core idle behind each big PDF: 31.5 s for
     * the Debian-docs corpus, 27.8 s with 1024); POOL_HELD bounds the memory
     * it may hold (enqueue waits past it). */
    p->cap = (size_t)n_threads * POOL_JOBS_PER_THREAD;
    p->jobs = sage_calloc(p->cap, sizeof(*p->jobs));
    p->threads = sage_calloc((size_t)n_threads, sizeof(*p->threads));
    if (!p->jobs || !p->threads)
        return -1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->done, NULL);
    for (; p->n_threads < n_threads; p->n_threads++)
        if (pthread_create(&p->threads[p->n_threads], NULL, worker_main, p) != 0)
            break;
    return p->n_threads > 0 ? 0 : -1;
}

/* Commits everything queued, stops the workers; -1 if a commit failed. */
static int pool_finish(struct pool *p)
{
    if (p->n_threads) {
        pthread_mutex_lock(&p->mu);
        while (p->head < p->tail)
            commit_oldest(p);
        p->stop = 1;
        pthread_cond_broadcast(&p->work);
        pthread_mutex_unlock(&p->mu);
        for (int i = 0; i < p->n_threads; i++)
            pthread_join(p->threads[i], NULL);
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->work);
        pthread_cond_destroy(&p->done);
    }
    sage_free(p->threads);
    sage_free(p->jobs);
    return p->failed ? -1 : 0;
}

struct root_ctx {
    struct build *b;
    struct pool *pool;
    const char *library;
};

/* Queues a file for the workers, or (with a reason) an outcome the crawl
 * itself found, so that it is reported in crawl order too. */
static int enqueue(struct root_ctx *r, const char *path, const char *rel, enum unit_kind kind,
                   const char *reason, uint64_t off, uint64_t end)
{
    struct pool *p = r->pool;
    pthread_mutex_lock(&p->mu);
    while ((p->tail - p->head == p->cap || p->held > POOL_HELD) && !p->failed)
        commit_oldest(p);
    struct job *j = &p->jobs[p->tail % p->cap];
    int failed = p->failed;
    if (!failed) {
        j->path = sage_strdup(path);
        j->rel = sage_strdup(rel);
        j->library = sage_strdup(r->library);
        int ok = j->path && j->rel && j->library;
        if (end) {
            j->range = 1;
            j->off = off;
            j->end = end;
        }
        if (ok && reason) {
            ok = unit_add(&j->units, kind, path, reason) != NULL;
            j->done = 1;    /* nothing for a worker to do */
        }
        if (!ok) {
            units_release(&j->units);
            sage_free(j->path);
            sage_free(j->rel);
            sage_free(j->library);
            memset(j, 0, sizeof(*j));
            failed = p->failed = 1;
        } else {
            p->tail++;
            pthread_cond_signal(&p->work);
        }
    }
    pthread_mutex_unlock(&p->mu);
    return failed ? -1 : 0;
}

/* A JSONL file becomes one job per 4 MiB range, so that workers parse it
 * in parallel; the ranges depend on its size alone, so every shard numbers
 * the jobs alike. The last range runs to the end, wherever that is by then. */
static int on_file(void *ctx, const char *path, const char *rel)
{
    struct root_ctx *r = ctx;
    uint64_t size;
    if (!has_suffix(path, ".jsonl") || !jsonl_streamable(r->b, path, &size))
        return enqueue(r, path, rel, U_DOC, NULL, 0, 0);
    for (uint64_t off = 0;; off += JSONL_RANGE) {
        int last = size - off <= JSONL_RANGE;
        if (enqueue(r, path, rel, U_DOC, NULL, off, last ? UINT64_MAX : off + JSONL_RANGE) < 0)
            return -1;
        if (last)
            return 0;
    }
}

static void on_skip(void *ctx, const char *path, enum crawl_skip_kind kind, const char *reason)
{
    enqueue(ctx, path, path, kind == CRAWL_FAILED ? U_FAIL : U_SKIP, reason, 0, 0);
}

static int add_root(struct build *b, struct pool *pool, const char *path, const char *library)
{
    struct root_ctx r = { b, pool, library };
    struct crawl_cb cb = { on_file, on_skip, &r };
    int rc = crawl_root(path, &b->crawl, &cb);
    if (rc == -1)
        sage_log(SAGE_LOG_ERROR, "cannot read '%s'", path);
    else if (rc == -2)
        sage_log(SAGE_LOG_ERROR, "out of memory while walking '%s'", path);
    return rc < 0 ? -1 : 0;
}

/* Counting pass for the progress line's ETA. */
struct count_ctx {
    uint64_t files, bytes;
};

static int count_file(void *ctx, const char *path, const char *rel)
{
    struct count_ctx *c = ctx;
    struct stat st;
    (void)rel;
    c->files++;
    if (stat(path, &st) == 0)
        c->bytes += (uint64_t)st.st_size;
    return 0;
}

static void count_skip(void *ctx, const char *path, enum crawl_skip_kind kind, const char *reason)
{
    (void)ctx, (void)path, (void)kind, (void)reason;
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "sage-indexer build: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 2;
}

/* Sets up everything the options configure; returns 0, or an exit status. */
/* str of key in an embedding record, "" when absent. */
static const char *rec_str(json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : "";
}

/* --reuse: maps and verifies the previous index and decodes its build
 * record (*rec). -1 when the file cannot be used at all. */
static int reuse_open(struct build *b, const char *path, json_t **rec)
{
    struct sage_err err = { 0 };
    struct sage_bytes rb = { 0 };
    const struct sage_section *bs;
    if (sage_reader_open(path, SAGE_OPEN_VERIFY, &b->prev, &err) < 0 ||
        !(bs = sage_reader_find(b->prev, SAGE_SECTION_BUILD)) ||
        sage_reader_load(b->prev, bs, 16u << 20, &rb, &err) < 0 ||
        sage_mpjson_decode(rb.data, rb.len, rec, &err) < 0) {
        sage_log(SAGE_LOG_ERROR, "--reuse '%s': %s", path, err.msg[0] ? err.msg : "no build record");
        sage_bytes_release(&rb);
        return -1;
    }
    sage_bytes_release(&rb);
    return 0;
}

/* Indexes the previous index's vectors by text hash when it was embedded
 * with the same model, dimension, prefixes and normalization (otherwise
 * every chunk is embedded again, with a warning). -1 when out of memory. */
static int reuse_vectors(struct build *b, const char *path, struct embed_config *ec)
{
    struct sage_err err = { 0 };
    json_t *rec = NULL;
    if (reuse_open(b, path, &rec) < 0)
        return -1;
    json_t *e = json_object_get(rec, "embedding");
    const char *why = NULL;
    if (sage_vectors_open(&b->prev_vecs, b->prev, &err) < 0)
        why = "it has no vectors";
    else if (strcmp(rec_str(e, "status"), "ok") != 0 || strcmp(rec_str(e, "model"), ec->model) != 0)
        why = "another model";
    else if (ec->dim && ec->dim != b->prev_vecs.dim)
        why = "another dimension";
    else if (strcmp(rec_str(e, "document_prefix"), ec->doc_prefix ? ec->doc_prefix : "") != 0)
        why = "another document prefix";
    else if (json_is_true(json_object_get(e, "normalized")) != (ec->normalize != 0))
        why = "another normalization";
    json_decref(rec);
    if (why) {
        sage_log(SAGE_LOG_WARN, "--reuse '%s': not reusing its vectors: %s", path, why);
        memset(&b->prev_vecs, 0, sizeof(b->prev_vecs));
        return 0;
    }
    size_t slots = 16;
    while (slots < 2 * b->prev_vecs.n + 2)
        slots *= 2;
    if (!(b->prev_slots = sage_calloc(slots, sizeof(*b->prev_slots)))) {
        sage_log(SAGE_LOG_ERROR, "--reuse '%s': out of memory", path);
        return -1;
    }
    b->prev_mask = slots - 1;
    for (uint64_t i = 0; i < b->prev_vecs.n; i++) {
        const uint8_t *h = sage_vectors_hash(&b->prev_vecs, i);
        size_t j = (size_t)sage_le64(h) & b->prev_mask;
        while (b->prev_slots[j])
            j = (j + 1) & b->prev_mask;
        b->prev_slots[j] = i + 1;
    }
    ec->dim = b->prev_vecs.dim;
    return 0;
}

/* Takes the text the previous index read from page images with this
 * build's OCR engine: PDF children skip pages whose digest it holds, and
 * ocr_resolve takes their text from it. -1 on failure. */
static int reuse_ocr(struct build *b, const char *path)
{
    struct sage_err err = { 0 };
    size_t n = 0;
    int rc;
    json_t *rec = NULL;
    if (!b->prev && reuse_open(b, path, &rec) < 0)
        return -1;
    json_decref(rec);
    if ((rc = sage_ocrpages_open(&b->prev_ocr, b->prev, &err)) < 0) {
        if (rc != -SAGE_ENOTFOUND)
            sage_log(SAGE_LOG_WARN, "--reuse '%s': not reusing its OCR text: %s", path, err.msg);
        return 0;
    }
    if (sage_ocrpages_digests(&b->prev_ocr, b->ocr_engine, &b->ocr_known, &n, &err) < 0) {
        sage_log(SAGE_LOG_ERROR, "--reuse '%s': %s", path, err.msg);
        return -1;
    }
    if (n == 0) {
        sage_log(SAGE_LOG_INFO, "--reuse '%s': no pages read by %s", path, b->ocr_engine);
        return 0;
    }
    /* an exec'd PDF child reads the digests from a file it inherits */
    int fd = sage_tmpfile_open(b->s.spill_dir, &err);
    size_t done = 0;
    while (fd >= 0 && done < 16 * n) {
        ssize_t k = write(fd, b->ocr_known + done, 16 * n - done);
        if (k <= 0)
            break;
        done += (size_t)k;
    }
    if (fd < 0 || done < 16 * n) {
        sage_log(SAGE_LOG_ERROR, "--reuse '%s': cannot store page digests: %s", path,
                 fd < 0 ? err.msg : strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    b->plim.ocr_known = b->ocr_known;
    b->plim.n_ocr_known = n;
    b->plim.ocr_known_fd = fd;
    return 0;
}

/* OCR of pages without a text layer: by the server of --ocr-url when one
 * is given (the PDF child renders PNGs), else by tesseract inside the PDF
 * child; --ocr off leaves them counted as needing OCR. 0, or the exit
 * status. */
static int ocr_configure(struct build *b, const struct cli *c)
{
    const char *mode = c->v[OPT_OCR].str, *reuse = c->v[OPT_REUSE].str;
    if (strcmp(mode, "off") == 0)
        return 0;
    if (!c->v[OPT_OCR_URL].str) {
        b->plim.ocr = PDF_OCR_LOCAL;
        snprintf(b->ocr_engine, sizeof(b->ocr_engine), "tesseract %s eng", TessVersion());
        return reuse && reuse_ocr(b, reuse) < 0 ? 1 : 0;
    }
    struct ocr_config oc;
    struct sage_err err = { 0 };
    ocr_config_init(&oc);
    oc.url = c->v[OPT_OCR_URL].str;
    oc.model = c->v[OPT_OCR_MODEL].str;
    oc.api_key = c->v[OPT_OCR_KEY].str;
    oc.api_key_file = c->v[OPT_OCR_KEY_FILE].str;
    oc.retry.timeout_ms = (unsigned)c->v[OPT_OCR_TIMEOUT].num;
    oc.retry.max_attempts = (unsigned)c->v[OPT_OCR_RETRIES].num;
    if (ocr_new(&oc, &b->ocr, &err) < 0) {
        fprintf(stderr, "sage-indexer build: %s\n", err.msg);
        return err.code == SAGE_EINVAL ? 2 : 1;
    }
    b->plim.ocr = PDF_OCR_IMAGES;
    snprintf(b->ocr_engine, sizeof(b->ocr_engine), "server %s", oc.model ? oc.model : "");
    return reuse && reuse_ocr(b, reuse) < 0 ? 1 : 0;
}

/* Starts the embedder when --embed-url is given (and --embeddings is not
 * off). 0, or the exit status. */
static int embed_configure(struct build *b, const struct cli *c)
{
    const char *mode = c->v[OPT_EMBEDDINGS].str, *norm = c->v[OPT_EMBED_NORMALIZE].str;
    struct sage_err err = { 0 };
    if (c->v[OPT_HNSW].num && (!c->v[OPT_EMBED_URL].str || strcmp(mode, "off") == 0))
        return usage_error("%s", "--hnsw needs embeddings (--embed-url)");
    if (!c->v[OPT_EMBED_URL].str || strcmp(mode, "off") == 0)
        return 0;
    if (!c->v[OPT_EMBED_MODEL].str)
        return usage_error("%s", "--embed-url needs --embed-model");
    struct embed_config ec;
    embed_config_init(&ec);
    ec.url = c->v[OPT_EMBED_URL].str;
    ec.model = c->v[OPT_EMBED_MODEL].str;
    ec.api_key = c->v[OPT_EMBED_KEY].str;
    ec.api_key_file = c->v[OPT_EMBED_KEY_FILE].str;
    ec.doc_prefix = c->v[OPT_EMBED_DOC_PREFIX].str;
    ec.query_prefix = c->v[OPT_EMBED_QUERY_PREFIX].str;
    ec.dim = (unsigned)c->v[OPT_EMBED_DIM].num;
    ec.normalize = strcmp(norm, "yes") == 0;
    ec.max_inputs = (unsigned)c->v[OPT_EMBED_BATCH].num;
    ec.max_tokens = (unsigned)c->v[OPT_EMBED_MAX_TOKENS].num;
    ec.concurrency = (unsigned)c->v[OPT_EMBED_CONCURRENCY].num;
    ec.retry.timeout_ms = (unsigned)c->v[OPT_EMBED_TIMEOUT].num;
    ec.retry.max_attempts = (unsigned)c->v[OPT_EMBED_RETRIES].num;
    ec.retry.retry_budget_ms = (unsigned)c->v[OPT_EMBED_RETRY_BUDGET].num;
    b->emb_optional = strcmp(mode, "optional") == 0;
    if (c->v[OPT_REUSE].str && reuse_vectors(b, c->v[OPT_REUSE].str, &ec) < 0)
        return 1;
    if ((b->s.vec_fd = sage_tmpfile_open(b->s.spill_dir, &err)) < 0) {
        fprintf(stderr, "sage-indexer build: %s\n", err.msg);
        return 1;
    }
    b->s.emb_dim = ec.dim;    /* 0: the first vector's */
    ec.on_vector = on_vector;
    ec.ctx = b;
    if (embed_new(&ec, &b->emb, &err) < 0) {
        fprintf(stderr, "sage-indexer build: %s\n", err.msg);
        return err.code == SAGE_EINVAL ? 2 : 1;
    }
    return 0;
}

static int configure(struct build *b, struct cli *c, struct sage_tokenizer_opts *tok)
{
    struct sage_err err = { 0 };
    const char *stemmer = c->v[OPT_STEMMER].str, *stop = c->v[OPT_STOPWORDS].str;
    const char *shard = c->v[OPT_SHARD].str;
    b->max_file = c->v[OPT_MAX_FILE].num;
    b->quiet = (int)c->v[OPT_QUIET].num;
    b->chunking = (struct chunk_opts){ (size_t)c->v[OPT_CHUNK_SIZE].num,
                                       (size_t)c->v[OPT_CHUNK_OVERLAP].num,
                                       (size_t)c->v[OPT_MAX_CHUNK].num };
    b->alim = (struct archive_limits){ (uint64_t)c->v[OPT_MAX_ENTRIES].num,
                                       (uint64_t)c->v[OPT_MAX_EXPANDED].num,
                                       (uint64_t)c->v[OPT_MAX_RATIO].num,
                                       (uint64_t)b->max_file,
                                       (unsigned)c->v[OPT_MAX_DEPTH].num };
    /* the PDF parser runs as a fresh process (exec of this program): a child
     * merely forked from a process with threads can inherit locks held */
    b->plim = (struct pdf_limits){ .timeout_ms = (unsigned)c->v[OPT_PDF_TIMEOUT].num,
                                   .max_memory = (size_t)c->v[OPT_PDF_MEMORY].num,
                                   .max_pages = 100000, .ocr = PDF_OCR_NONE,
                                   .ocr_dpi = (unsigned)c->v[OPT_OCR_DPI].num,
                                   .ocr_known_fd = -1, .helper = "/proc/self/exe" };
    b->crawl = (struct crawl_opts){ (int)c->v[OPT_HIDDEN].num,
                                    c->v[OPT_INCLUDE].list, c->v[OPT_INCLUDE].n_list,
                                    c->v[OPT_EXCLUDE].list, c->v[OPT_EXCLUDE].n_list };
    if (!c->v[OPT_OUT].str)
        return usage_error("%s", "--out is required");
    if (c->n_args == 0 && c->v[OPT_LIBRARY].n_list == 0)
        return usage_error("%s", "nothing to index: give PATH or --library");
    if (b->chunking.overlap >= b->chunking.size || b->chunking.size > b->chunking.max)
        return usage_error("%s", "--chunk-overlap must be below --chunk-size, and --chunk-size "
                                 "at most --max-chunk");
    if (shard) {
        char *end;
        unsigned long long i = strtoull(shard, &end, 10), n = 0;
        if (*end == '/')
            n = strtoull(end + 1, &end, 10);
        if (*end || n == 0 || i >= n || n > 1u << 20)
            return usage_error("--shard: expected I/N with 0 <= I < N, got '%s'", shard);
        b->shard_i = i;
        b->shard_n = n;
    }
    sink_tokenizer(tok, stemmer, stop);
    int rc = sink_init(&b->s, c->v[OPT_OUT].str, tok, (size_t)c->v[OPT_MEMORY_LIMIT].num,
                       c->v[OPT_TMP_DIR].str, (int)c->v[OPT_ZSTD_LEVEL].num, &err);
    if (rc < 0) {
        fprintf(stderr, "sage-indexer build: %s\n", err.msg);
        return rc == -SAGE_EINVAL ? 2 : 1;
    }
    if ((rc = embed_configure(b, c)) != 0 || (rc = ocr_configure(b, c)) != 0)
        return rc;
    /* each extraction thread opens its own handle; fail early if none can */
    magic_t m = magic_new();
    if (!m) {
        fprintf(stderr, "sage-indexer build: cannot load libmagic's database\n");
        return 1;
    }
    magic_close(m);
    return 0;
}

static int write_report(struct build *b, const char *path, int status)
{
    json_t *r = json_pack("{s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b}, s:O}",
                          "summary", "indexed", (json_int_t)b->s.n_docs,
                          "chunks", (json_int_t)b->s.n_chunks, "skipped", (json_int_t)b->n_skipped,
                          "failed", (json_int_t)b->n_failed, "duplicates", (json_int_t)b->n_dupes,
                          "needs_ocr", (json_int_t)b->n_ocr,
                          "ocr_pages", (json_int_t)b->n_ocr_pages,
                          "ocr_reused", (json_int_t)b->n_ocr_reused,
                          "embedded", (json_int_t)b->n_embedded, "reused", (json_int_t)b->n_reused,
                          "index_written", status == 0,
                          "files", b->report);
    if (r && b->s.graph)
        json_object_set_new(json_object_get(r, "summary"), "hnsw_build_s",
                            json_real(b->s.hnsw_ms / 1e3));
    int rc = r ? json_dump_file(r, path, JSON_INDENT(1)) : -1;
    json_decref(r);
    if (rc < 0)
        sage_log(SAGE_LOG_ERROR, "cannot write report '%s'", path);
    return rc;
}

int cmd_build(struct cli *c)
{
    double t_start = sage_now_ms(), t_crawled = 0, t_written = 0;
    struct ocr_out ocr_out;
    struct build b = { .s.vec_fd = -1, .s.text.fd = -1, .plim.ocr_known_fd = -1,
                       .ocr_out = &ocr_out };
    struct sage_err err = { 0 };
    json_t *rec = NULL, *libs = json_array(), *sources = json_array();
    char sha[65];
    int status = 1;
    const char *out = c->v[OPT_OUT].str, *report_path = c->v[OPT_REPORT].str;
    struct sage_tokenizer_opts tok = { 0 };
    struct pool pool = { 0 };
    int pool_started = 0;

    ocr_out.pages = &b.s.ocr;
    pthread_mutex_init(&ocr_out.lock, NULL);
    b.skipped = json_array();
    if (report_path)
        b.report = json_array();
    if ((status = configure(&b, c, &tok)) != 0)
        goto out;
    status = 1;
    for (size_t i = 0; i < c->v[OPT_LIBRARY].n_list; i++) {
        const char *spec = c->v[OPT_LIBRARY].list[i], *eq = strchr(spec, '=');
        if (!eq || eq == spec || !eq[1] || eq - spec > 128) {
            status = usage_error("--library: expected NAME=PATH, got '%s'", spec);
            goto out;
        }
    }
    /* count first, for the progress line's ETA */
    struct count_ctx cc = { 0, 0 };
    struct crawl_cb ccb = { count_file, count_skip, &cc };
    for (size_t i = 0; !b.quiet && i < c->v[OPT_LIBRARY].n_list; i++)
        crawl_root(strchr(c->v[OPT_LIBRARY].list[i], '=') + 1, &b.crawl, &ccb);
    for (int i = 0; !b.quiet && i < c->n_args; i++)
        crawl_root(c->args[i], &b.crawl, &ccb);
    progress_init(&b.prog, cc.files, cc.bytes, b.quiet);
    long threads = c->v[OPT_THREADS].num;
    if (threads <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        threads = cores > 0 ? cores : 1;
    }
    if (pool_start(&pool, &b, (int)threads) < 0) {
        sage_log(SAGE_LOG_ERROR, "cannot start extraction threads");
        goto out;
    }
    pool_started = 1;
    for (size_t i = 0; i < c->v[OPT_LIBRARY].n_list; i++) {
        const char *spec = c->v[OPT_LIBRARY].list[i], *eq = strchr(spec, '=');
        char name[130];
        snprintf(name, sizeof(name), "%.*s", (int)(eq - spec), spec);
        json_array_append_new(libs, json_pack("{s:s, s:s}", "name", name, "path", eq + 1));
        if (add_root(&b, &pool, eq + 1, name) < 0)
            goto out;
    }
    for (int i = 0; i < c->n_args; i++) {
        json_array_append_new(sources, json_string(c->args[i]));
        if (add_root(&b, &pool, c->args[i], "default") < 0)
            goto out;
    }
    pool_started = 0;
    if (pool_finish(&pool) < 0)
        goto out;
    progress_done(&b.prog);
    if (embed_done(&b, c) < 0 || sink_hnsw(&b.s, c, b.emb_record) < 0)
        goto out;
    t_crawled = sage_now_ms();
    long long max_failures = c->v[OPT_MAX_FAILURES].num;
    if (max_failures >= 0 && b.n_failed > (uint64_t)max_failures) {
        sage_log(SAGE_LOG_ERROR, "%llu files failed, more than --max-failures %lld: no index written",
                 (unsigned long long)b.n_failed, max_failures);
        goto out;
    }
    if (sink_make_dirs(out) < 0)
        goto out;
    char fmt_version[16], shard_s[48];
    snprintf(fmt_version, sizeof(fmt_version), "%d.%d", SAGE_FORMAT_MAJOR, SAGE_FORMAT_MINOR);
    snprintf(shard_s, sizeof(shard_s), "%llu/%llu", (unsigned long long)b.shard_i,
             (unsigned long long)b.shard_n);
    rec = json_pack("{s:s, s:s, s:s, s:o, s:O, s:O,"
                    " s:{s:I, s:i, s:I, s:I, s:I, s:s?, s:I, s:I, s:I, s:I, s:b},"
                    " s:{s:s?, s:s, s:s}, s:{s:f, s:f},"
                    " s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}, s:O}",
        "tool", "sage-indexer", "version", SAGE_VERSION, "format", fmt_version,
        "build_time", c->v[OPT_BUILD_TIME].str ? json_integer(c->v[OPT_BUILD_TIME].num)
                                               : json_null(),
        "libraries", libs, "sources", sources,
        "options", "max_file_size", (json_int_t)b.max_file,
                   "zstd_level", (int)c->v[OPT_ZSTD_LEVEL].num,
                   "chunk_size", (json_int_t)b.chunking.size,
                   "chunk_overlap", (json_int_t)b.chunking.overlap,
                   "max_chunk", (json_int_t)b.chunking.max,
                   "shard", b.shard_n ? shard_s : NULL,
                   "max_archive_entries", (json_int_t)b.alim.max_entries,
                   "max_archive_bytes", (json_int_t)b.alim.max_expanded,
                   "max_archive_ratio", (json_int_t)b.alim.max_ratio,
                   "max_archive_depth", (json_int_t)b.alim.max_depth,
                   "hidden", b.crawl.hidden,
        "tokenizer", "stemmer", tok.stemmer, "stopwords", c->v[OPT_STOPWORDS].str,
                     "normalization", "nfkc-casefold-stripmarks",
        "bm25", "k1", 1.2, "b", 0.75,
        "counts", "documents", (json_int_t)b.s.n_docs, "chunks", (json_int_t)b.s.n_chunks,
                  "bytes", (json_int_t)b.n_bytes, "skipped", (json_int_t)b.n_skipped,
                  "failed", (json_int_t)b.n_failed, "duplicates", (json_int_t)b.n_dupes,
                  "needs_ocr", (json_int_t)b.n_ocr, "ocr_pages", (json_int_t)b.n_ocr_pages,
        "skipped", b.skipped);
    if (rec && b.emb_record) {
        json_object_set_new(rec, "embedding", b.emb_record);
        b.emb_record = NULL;
    }
    if (!rec || sink_write(&b.s, out, rec, sha, &err) < 0) {
        sage_log(SAGE_LOG_ERROR, "cannot build '%s': %s", out, err.msg[0] ? err.msg : "out of memory");
        goto out;
    }
    t_written = sage_now_ms();
    if (sink_read_back(out) < 0)
        goto out;
    sage_log(SAGE_LOG_INFO, "wrote '%s': %llu documents, %llu chunks, %.1f MB of text; "
             "%llu skipped, %llu failed, %llu duplicates, %llu pages OCRed (%llu reused), "
             "%llu need OCR; sha256 %s", out, (unsigned long long)b.s.n_docs,
             (unsigned long long)b.s.n_chunks, (double)b.n_bytes / 1e6,
             (unsigned long long)b.n_skipped, (unsigned long long)b.n_failed,
             (unsigned long long)b.n_dupes, (unsigned long long)b.n_ocr_pages,
             (unsigned long long)b.n_ocr_reused, (unsigned long long)b.n_ocr, sha);
    sage_log(SAGE_LOG_INFO, "took %.1f s: crawl, extract and index %.1f s, write %.1f s, "
             "read back %.1f s", (sage_now_ms() - t_start) / 1e3, (t_crawled - t_start) / 1e3,
             (t_written - t_crawled) / 1e3, (sage_now_ms() - t_written) / 1e3);
    status = 0;
out:
    if (pool_started)
        pool_finish(&pool);
    if (report_path && status != 2 && write_report(&b, report_path, status) < 0)
        status = 1;
    json_decref(rec);
    json_decref(libs);
    json_decref(sources);
    json_decref(b.skipped);
    json_decref(b.report);
    sage_free(b.seen);
    embed_free(b.emb);
    json_decref(b.emb_record);
    sage_free(b.prev_slots);
    ocr_free(b.ocr);
    pthread_mutex_destroy(&ocr_out.lock);
    sage_ocrpages_release(&b.prev_ocr);
    sage_free(b.ocr_known);
    if (b.plim.ocr_known_fd >= 0)
        close(b.plim.ocr_known_fd);
    sage_reader_close(b.prev);
    sink_release(&b.s);
    return status;
}
