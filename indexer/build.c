/* sage-indexer build, foundation version: walks files and directories in a
 * deterministic order, keeps plain UTF-8 text files, and writes them with a
 * build record as DOCS and TEXT sections. Archives, PDF, HTML, chunking and the
 * inverted index belong to the full indexer (issue #4). */
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
#include "cli.h"
#include "log.h"
#include "mpjson.h"
#include "rectab.h"
#include "writer.h"

struct build {
    struct sage_rectab_builder docs, text;
    long long max_file;
    uint64_t n_docs, n_bytes, n_skipped;
    json_t *skipped;        /* [{path, reason}] for the build record */
};

static void skip(struct build *b, const char *path, const char *why)
{
    sage_log(SAGE_LOG_WARN, "skipping '%s': %s", path, why);
    b->n_skipped++;
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

/* A title: the first Markdown heading, else the first non-blank line, else
 * the file name; at most 120 bytes, cut on a character boundary. */
static json_t *title_of(const char *text, size_t len, const char *name)
{
    const char *p = text, *end = text + len, *best = NULL;
    size_t best_len = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *s = p;
        while (s < le && (*s == ' ' || *s == '\t'))
            s++;
        if (s < le && *s == '#') {
            while (s < le && *s == '#')
                s++;
            while (s < le && *s == ' ')
                s++;
            best = s, best_len = (size_t)(le - s);
            break;
        }
        if (s < le && !best)
            best = s, best_len = (size_t)(le - s);
        p = le + 1;
    }
    while (best_len > 0 && (best[best_len - 1] == '\r' || best[best_len - 1] == ' '))
        best_len--;
    if (!best || best_len == 0)
        return json_string(name);
    if (best_len > 120) {
        best_len = 120;
        while (best_len > 0 && ((unsigned char)best[best_len] & 0xc0) == 0x80)
            best_len--;
    }
    return json_stringn(best, best_len);
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
    uint8_t *data = NULL, *rec = NULL;
    size_t len = 0, rec_len = 0;
    const char *why = NULL;
    struct sage_err err = { 0 };
    int rc = 0;
    if (read_file(path, b->max_file, &data, &len, &why) < 0) {
        skip(b, path, why);
        return 0;
    }
    if (!is_text(data, len)) {
        skip(b, path, "not UTF-8 text");
        goto out;
    }
    const char *name = strrchr(rel, '/');
    json_t *doc = json_pack("{s:I, s:s, s:s, s:o, s:I}", "id", (json_int_t)b->n_docs,
                            "library", library, "path", rel,
                            "title", title_of((const char *)data, len, name ? name + 1 : rel),
                            "bytes", (json_int_t)len);
    if (!doc || sage_mpjson_encode(doc, &rec, &rec_len, &err) < 0 ||
        sage_rectab_builder_add(&b->docs, rec, rec_len, &err) < 0 ||
        sage_rectab_builder_add(&b->text, data, len, &err) < 0) {
        sage_log(SAGE_LOG_ERROR, "cannot add '%s': %s", path, err.msg[0] ? err.msg : "out of memory");
        rc = -1;
    } else {
        sage_log(SAGE_LOG_DEBUG, "indexed '%s' as %s:%s", path, library, rel);
        b->n_docs++;
        b->n_bytes += len;
    }
    json_decref(doc);
out:
    sage_free(rec);
    sage_free(data);
    return rc;
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

/* Encodes a record table and streams it into the writer as one section. */
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

int cmd_build(struct cli *c)
{
    struct build b = { .max_file = c->v[OPT_MAX_FILE].num };
    struct sage_writer *w = NULL;
    struct sage_err err = { 0 };
    struct sage_writer_opts wo = { .zstd_level = (int)c->v[OPT_ZSTD_LEVEL].num };
    json_t *rec = NULL, *libs = json_array(), *sources = json_array();
    uint8_t *rec_buf = NULL;
    size_t rec_len = 0;
    char sha[65];
    int status = 1;
    const char *out = c->v[OPT_OUT].str;

    sage_rectab_builder_init(&b.docs, 0);
    sage_rectab_builder_init(&b.text, 0);
    b.skipped = json_array();
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
    for (size_t i = 0; i < c->v[OPT_LIBRARY].n_list; i++) {
        const char *spec = c->v[OPT_LIBRARY].list[i], *eq = strchr(spec, '=');
        if (!eq || eq == spec || !eq[1]) {
            fprintf(stderr, "sage-indexer build: --library: expected NAME=PATH, got '%s'\n", spec);
            status = 2;
            goto out;
        }
        char name[256];
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
    rec = json_pack("{s:s, s:s, s:s, s:o, s:O, s:O, s:{s:I, s:i}, s:{s:I, s:I, s:I}, s:O}",
        "tool", "sage-indexer", "version", "0.1.0", "format", "1.0",
        "build_time", c->v[OPT_BUILD_TIME].str ? json_integer(c->v[OPT_BUILD_TIME].num)
                                               : json_null(),
        "libraries", libs, "sources", sources,
        "options", "max_file_size", (json_int_t)b.max_file,
                   "zstd_level", (int)c->v[OPT_ZSTD_LEVEL].num,
        "counts", "documents", (json_int_t)b.n_docs, "bytes", (json_int_t)b.n_bytes,
                  "skipped", (json_int_t)b.n_skipped,
        "skipped", b.skipped);
    if (!rec || sage_mpjson_encode(rec, &rec_buf, &rec_len, &err) < 0 ||
        sage_writer_open(out, &wo, &w, &err) < 0 ||
        sage_writer_add(w, SAGE_SECTION_BUILD, SAGE_CODEC_ZSTD, rec_buf, rec_len, &err) < 0 ||
        put_table(w, SAGE_SECTION_DOCS, &b.docs, &err) < 0 ||
        put_table(w, SAGE_SECTION_TEXT, &b.text, &err) < 0) {
        sage_log(SAGE_LOG_ERROR, "cannot build '%s': %s", out, err.msg[0] ? err.msg : "out of memory");
        goto out;
    }
    sage_writer_set_counts(w, b.n_docs, 0);
    if (sage_writer_commit(w, sha, &err) < 0) {
        sage_log(SAGE_LOG_ERROR, "%s", err.msg);
        goto out;
    }
    sage_log(SAGE_LOG_INFO, "wrote '%s': %llu documents, %llu bytes of text, %llu skipped; sha256 %s",
             out, (unsigned long long)b.n_docs, (unsigned long long)b.n_bytes,
             (unsigned long long)b.n_skipped, sha);
    status = 0;
out:
    sage_writer_free(w);
    sage_free(rec_buf);
    json_decref(rec);
    json_decref(libs);
    json_decref(sources);
    json_decref(b.skipped);
    sage_rectab_builder_release(&b.docs);
    sage_rectab_builder_release(&b.text);
    return status;
}
