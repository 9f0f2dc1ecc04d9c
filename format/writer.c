/* Index file writer: buffered sequential output into a locked temporary,
 * per-section XXH3 checksums computed as bytes go by, zstd streaming for
 * compressed sections, and the durable commit (header, footer, fsync, rename,
 * fsync of the directory, sha256 sidecar). The layout is in layout.h. */
#include "writer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#include "alloc.h"
#include "le.h"

#define WBUF_SIZE (1u << 20)

struct wsection {
    uint32_t kind;
    uint16_t codec;
    uint64_t off, len, raw_len, checksum;
};

struct sage_writer {
    struct sage_io io;
    unsigned flags;
    int zstd_level;
    int fd;
    char *path;             /* final name */
    char *tmp_path;         /* locked temporary in the same directory */
    char *dir;              /* directory of both, for the durable rename */
    uint64_t pos;           /* file offset of the next byte appended */
    uint32_t header_len;
    uint32_t max_sections, n_sections;
    struct wsection *sections;
    int in_section;
    XXH3_state_t *xxh;      /* checksum of the open section */
    ZSTD_CCtx *zc;
    uint8_t *buf;           /* pending output, WBUF_SIZE */
    size_t buf_len;
    uint8_t *zbuf;          /* compressor output, ZSTD_CStreamOutSize() */
    size_t zbuf_cap;
    uint64_t n_docs, n_chunks;
    int committed;
};

static ssize_t sys_write(int fd, const void *b, size_t n) { return write(fd, b, n); }
static ssize_t sys_pwrite(int fd, const void *b, size_t n, off_t o) { return pwrite(fd, b, n, o); }
static int sys_fsync(int fd) { return fsync(fd); }
static int sys_rename(const char *a, const char *b) { return rename(a, b); }
static const struct sage_io sys_io = { sys_write, sys_pwrite, sys_fsync, sys_rename };

static char *path_join(const char *dir, const char *prefix, const char *base, const char *suffix)
{
    size_t n = strlen(dir) + strlen(prefix) + strlen(base) + strlen(suffix) + 2;
    char *p = sage_malloc(n);
    if (p)
        snprintf(p, n, "%s/%s%s%s", dir, prefix, base, suffix);
    return p;
}

/* Writes all of buf to fd (named name in messages), retrying short writes
 * and EINTR. */
static int write_all(const struct sage_writer *w, int fd, const char *name, const uint8_t *b,
                     size_t n, struct sage_err *err)
{
    while (n > 0) {
        ssize_t k = w->io.write(fd, b, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            if (k == 0)
                errno = EIO;
            return sage_err_sys(err, SAGE_EIO, "cannot write '%s'", name);
        }
        b += k;
        n -= (size_t)k;
    }
    return 0;
}

static int pwrite_all(struct sage_writer *w, const uint8_t *b, size_t n, uint64_t off,
                      struct sage_err *err)
{
    while (n > 0) {
        ssize_t k = w->io.pwrite(w->fd, b, n, (off_t)off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return sage_err_sys(err, SAGE_EIO, "cannot write '%s'", w->tmp_path);
        b += k;
        n -= (size_t)k;
        off += (uint64_t)k;
    }
    return 0;
}

static int flush(struct sage_writer *w, struct sage_err *err)
{
    int rc = write_all(w, w->fd, w->tmp_path, w->buf, w->buf_len, err);
    w->buf_len = 0;
    return rc;
}

/* Appends bytes to the file (through the buffer); they belong to the open
 * section, if any, when hash is set. */
static int append(struct sage_writer *w, const void *p, size_t n, int hash, struct sage_err *err)
{
    const uint8_t *b = p;
    if (hash && n)
        XXH3_64bits_update(w->xxh, b, n);
    w->pos += n;
    while (n > 0) {
        size_t room = WBUF_SIZE - w->buf_len;
        size_t k = n < room ? n : room;
        memcpy(w->buf + w->buf_len, b, k);
        w->buf_len += k;
        b += k;
        n -= k;
        if (w->buf_len == WBUF_SIZE) {
            int rc = flush(w, err);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

static int pad_to_page(struct sage_writer *w, struct sage_err *err)
{
    static const uint8_t zeros[SAGE_PAGE];
    uint64_t rem = w->pos % SAGE_PAGE;
    return rem ? append(w, zeros, SAGE_PAGE - rem, 0, err) : 0;
}

static int fsync_dir(struct sage_writer *w, struct sage_err *err)
{
    int rc = 0;
    int dfd = open(w->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return sage_err_sys(err, SAGE_EIO, "cannot open directory '%s'", w->dir);
    if (!(w->flags & SAGE_WRITE_NO_SYNC) && w->io.fsync(dfd) < 0)
        rc = sage_err_sys(err, SAGE_EIO, "cannot sync directory '%s'", w->dir);
    close(dfd);
    return rc;
}

/* Deletes temporaries named prefix* in dir whose writer is gone: a live writer
 * holds an exclusive flock on its temporary for its whole life. */
static void clean_stale(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    size_t plen = strlen(prefix);
    int dfd = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, plen) != 0)
            continue;
        int fd = openat(dfd, e->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0)
            continue;
        struct stat st;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && flock(fd, LOCK_EX | LOCK_NB) == 0)
            unlinkat(dfd, e->d_name, 0);
        close(fd);
    }
    closedir(d);
}

/* Creates and locks the temporary. Between mkostemp and flock another
 * writer's clean_stale could take the unlocked file for a stale one and
 * delete it, so after locking we check that the name still leads to our
 * file, and start over (a few times) when it does not. */
static int create_locked(struct sage_writer *w, struct sage_err *err)
{
    size_t n = strlen(w->tmp_path);
    for (int attempt = 0; attempt < 8; attempt++) {
        struct stat a, b;
        memcpy(w->tmp_path + n - 6, "XXXXXX", 6);
        w->fd = mkostemp(w->tmp_path, O_CLOEXEC);
        if (w->fd < 0)
            return sage_err_sys(err, SAGE_EIO, "cannot create a temporary file in '%s'", w->dir);
        if (flock(w->fd, LOCK_EX) < 0)
            return sage_err_sys(err, SAGE_EIO, "cannot lock '%s'", w->tmp_path);
        if (fstat(w->fd, &a) == 0 && stat(w->tmp_path, &b) == 0 && a.st_ino == b.st_ino &&
            a.st_dev == b.st_dev)
            return 0;
        close(w->fd);
        w->fd = -1;
    }
    return sage_err_set(err, SAGE_EIO, "cannot keep a temporary file in '%s'", w->dir);
}

int sage_writer_open(const char *path, const struct sage_writer_opts *opts,
                     struct sage_writer **out, struct sage_err *err)
{
    int rc = 0;
    struct sage_writer *w = sage_calloc(1, sizeof(*w));
    char *prefix = NULL;
    *out = NULL;
    if (!w)
        return sage_err_set(err, SAGE_ENOMEM, "cannot allocate writer");
    w->fd = -1;
    w->io = opts && opts->io ? *opts->io : sys_io;
    w->flags = opts ? opts->flags : 0;
    w->zstd_level = opts && opts->zstd_level ? opts->zstd_level : 9;
    w->max_sections = opts && opts->max_sections ? opts->max_sections : 64;
    if (w->max_sections > SAGE_SECTIONS_MAX) {
        rc = sage_err_set(err, SAGE_EINVAL, "too many sections requested (%u)", w->max_sections);
        goto out;
    }
    uint64_t hlen = SAGE_HDR_FIXED + (uint64_t)w->max_sections * SAGE_SEC_ENTRY;
    w->header_len = (uint32_t)((hlen + SAGE_PAGE - 1) / SAGE_PAGE * SAGE_PAGE);

    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    if (!*base) {
        rc = sage_err_set(err, SAGE_EINVAL, "'%s' names a directory, not a file", path);
        goto out;
    }
    w->path = sage_strdup(path);
    w->dir = slash ? sage_malloc((size_t)(slash - path) + 2) : sage_strdup(".");
    if (w->dir && slash) {
        size_t n = slash == path ? 1 : (size_t)(slash - path);
        memcpy(w->dir, path, n);
        w->dir[n] = '\0';
    }
    prefix = path_join("", ".", base, ".tmp.");   /* "/.NAME.tmp." */
    w->sections = sage_calloc(w->max_sections, sizeof(*w->sections));
    w->buf = sage_malloc(WBUF_SIZE);
    w->zbuf_cap = ZSTD_CStreamOutSize();
    w->zbuf = sage_malloc(w->zbuf_cap);
    w->xxh = XXH3_createState();
    if (!w->path || !w->dir || !prefix || !w->sections || !w->buf || !w->zbuf || !w->xxh) {
        rc = sage_err_set(err, SAGE_ENOMEM, "cannot allocate writer buffers");
        goto out;
    }
    clean_stale(w->dir, prefix + 1);
    w->tmp_path = path_join(w->dir, "", prefix + 1, "XXXXXX");
    if (!w->tmp_path) {
        rc = sage_err_set(err, SAGE_ENOMEM, "cannot allocate writer");
        goto out;
    }
    if ((rc = create_locked(w, err)) < 0)
        goto out;
    if (fchmod(w->fd, 0644) < 0 ||
        lseek(w->fd, w->header_len, SEEK_SET) < 0) {
        rc = sage_err_sys(err, SAGE_EIO, "cannot prepare '%s'", w->tmp_path);
        goto out;
    }
    w->pos = w->header_len;
out:
    sage_free(prefix);
    if (rc < 0)
        sage_writer_free(w);
    else
        *out = w;
    return rc;
}

int sage_writer_begin(struct sage_writer *w, uint32_t kind, enum sage_codec codec,
                      struct sage_err *err)
{
    int rc;
    if (w->in_section)
        return sage_err_set(err, SAGE_EINVAL, "section %u begun before the previous one ended",
                            kind);
    if (w->n_sections == w->max_sections)
        return sage_err_set(err, SAGE_ELIMIT, "more than %u sections", w->max_sections);
    if (codec != SAGE_CODEC_RAW && codec != SAGE_CODEC_ZSTD)
        return sage_err_set(err, SAGE_EINVAL, "unknown codec %d", (int)codec);
    if ((rc = pad_to_page(w, err)) < 0)
        return rc;
    if (codec == SAGE_CODEC_ZSTD) {
        if (!w->zc && !(w->zc = ZSTD_createCCtx()))
            return sage_err_set(err, SAGE_ENOMEM, "cannot allocate a compressor");
        ZSTD_CCtx_reset(w->zc, ZSTD_reset_session_and_parameters);
        ZSTD_CCtx_setParameter(w->zc, ZSTD_c_compressionLevel, w->zstd_level);
    }
    struct wsection *s = &w->sections[w->n_sections];
    memset(s, 0, sizeof(*s));
    s->kind = kind;
    s->codec = (uint16_t)codec;
    s->off = w->pos;
    XXH3_64bits_reset(w->xxh);
    w->in_section = 1;
    return 0;
}

/* Runs the compressor over in (NULL at the end) and appends its output. */
static int compress(struct sage_writer *w, const void *in, size_t len, ZSTD_EndDirective mode,
                    struct sage_err *err)
{
    ZSTD_inBuffer ib = { in, len, 0 };
    for (;;) {
        ZSTD_outBuffer ob = { w->zbuf, w->zbuf_cap, 0 };
        size_t left = ZSTD_compressStream2(w->zc, &ob, &ib, mode);
        if (ZSTD_isError(left))
            return sage_err_set(err, SAGE_EIO, "zstd: %s", ZSTD_getErrorName(left));
        int rc = append(w, w->zbuf, ob.pos, 1, err);
        if (rc < 0)
            return rc;
        if (mode == ZSTD_e_end ? left == 0 : ib.pos == ib.size)
            return 0;
    }
}

int sage_writer_write(struct sage_writer *w, const void *buf, size_t len, struct sage_err *err)
{
    if (!w->in_section)
        return sage_err_set(err, SAGE_EINVAL, "write outside a section");
    struct wsection *s = &w->sections[w->n_sections];
    s->raw_len += len;
    if (s->codec == SAGE_CODEC_ZSTD)
        return len ? compress(w, buf, len, ZSTD_e_continue, err) : 0;
    return append(w, buf, len, 1, err);
}

int sage_writer_end(struct sage_writer *w, struct sage_err *err)
{
    if (!w->in_section)
        return sage_err_set(err, SAGE_EINVAL, "no section to end");
    struct wsection *s = &w->sections[w->n_sections];
    if (s->codec == SAGE_CODEC_ZSTD) {
        int rc = compress(w, NULL, 0, ZSTD_e_end, err);
        if (rc < 0)
            return rc;
    }
    s->len = w->pos - s->off;
    s->checksum = XXH3_64bits_digest(w->xxh);
    w->n_sections++;
    w->in_section = 0;
    return 0;
}

int sage_writer_add(struct sage_writer *w, uint32_t kind, enum sage_codec codec,
                    const void *buf, size_t len, struct sage_err *err)
{
    int rc = sage_writer_begin(w, kind, codec, err);
    if (rc == 0)
        rc = sage_writer_write(w, buf, len, err);
    if (rc == 0)
        rc = sage_writer_end(w, err);
    return rc;
}

void sage_writer_set_counts(struct sage_writer *w, uint64_t n_docs, uint64_t n_chunks)
{
    w->n_docs = n_docs;
    w->n_chunks = n_chunks;
}

static void encode_header(const struct sage_writer *w, uint8_t *h, uint64_t file_size)
{
    memset(h, 0, w->header_len);
    memcpy(h + SAGE_HDR_MAGIC, SAGE_MAGIC, SAGE_MAGIC_LEN);
    sage_put16(h + SAGE_HDR_MAJOR, SAGE_FORMAT_MAJOR);
    sage_put16(h + SAGE_HDR_MINOR, SAGE_FORMAT_MINOR);
    sage_put32(h + SAGE_HDR_PAGE, SAGE_PAGE);
    sage_put32(h + SAGE_HDR_LEN, w->header_len);
    sage_put32(h + SAGE_HDR_NSECT, w->n_sections);
    sage_put64(h + SAGE_HDR_FILE_SIZE, file_size);
    sage_put64(h + SAGE_HDR_NDOCS, w->n_docs);
    sage_put64(h + SAGE_HDR_NCHUNKS, w->n_chunks);
    for (uint32_t i = 0; i < w->n_sections; i++) {
        const struct wsection *s = &w->sections[i];
        uint8_t *e = h + SAGE_HDR_FIXED + (size_t)i * SAGE_SEC_ENTRY;
        sage_put32(e + SAGE_SEC_KIND, s->kind);
        sage_put16(e + SAGE_SEC_CODEC, s->codec);
        sage_put64(e + SAGE_SEC_OFF, s->off);
        sage_put64(e + SAGE_SEC_LEN, s->len);
        sage_put64(e + SAGE_SEC_RAW_LEN, s->raw_len);
        sage_put64(e + SAGE_SEC_CHECKSUM, s->checksum);
    }
    sage_put64(h + SAGE_HDR_CHECKSUM, XXH3_64bits(h, w->header_len));
}

/* Reads the finished body back (from the page cache) for the whole-file
 * XXH3 and the SHA-256 of the sidecar, in one pass. */
static int hash_back(struct sage_writer *w, uint64_t end, uint64_t *xxh, EVP_MD_CTX *sha,
                     struct sage_err *err)
{
    XXH3_64bits_reset(w->xxh);
    for (uint64_t off = 0; off < end;) {
        size_t want = end - off < WBUF_SIZE ? (size_t)(end - off) : WBUF_SIZE;
        ssize_t k = pread(w->fd, w->buf, want, (off_t)off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return sage_err_sys(err, SAGE_EIO, "cannot read back '%s'", w->tmp_path);
        XXH3_64bits_update(w->xxh, w->buf, (size_t)k);
        EVP_DigestUpdate(sha, w->buf, (size_t)k);
        off += (uint64_t)k;
    }
    *xxh = XXH3_64bits_digest(w->xxh);
    return 0;
}

/* The sidecar's name, and its text written and synced into a locked
 * temporary (*tmp_out), ready to be renamed once the index itself is. */
static int prepare_sidecar(struct sage_writer *w, const char *hex, char **tmp_out,
                           char **final_out, struct sage_err *err)
{
    int rc = 0;
    const char *base = strrchr(w->path, '/');
    base = base ? base + 1 : w->path;
    char *final = path_join(w->dir, "", base, ".sha256");
    char *tmp = path_join(w->dir, ".", base, ".tmp.sha256.XXXXXX");
    int fd = -1;
    char line[512];
    int n = snprintf(line, sizeof(line), "%s  %s\n", hex, base);
    *tmp_out = NULL;
    *final_out = NULL;
    if (!final || !tmp) {
        rc = sage_err_set(err, SAGE_ENOMEM, "cannot allocate sidecar name");
        goto out;
    }
    if (n < 0 || (size_t)n >= sizeof(line)) {
        rc = sage_err_set(err, SAGE_ELIMIT, "file name too long for the sidecar: '%s'", base);
        goto out;
    }
    if (!hex) {         /* no sidecar wanted: only its name, to remove a stale one */
        *final_out = final;
        final = NULL;
        goto out;
    }
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        rc = sage_err_sys(err, SAGE_EIO, "cannot create '%s'", tmp);
        sage_free(tmp);
        tmp = NULL;
        goto out;
    }
    if (flock(fd, LOCK_EX) < 0 || fchmod(fd, 0644) < 0) {
        rc = sage_err_sys(err, SAGE_EIO, "cannot prepare '%s'", tmp);
        goto out;
    }
    if ((rc = write_all(w, fd, tmp, (const uint8_t *)line, (size_t)n, err)) < 0)
        goto out;
    if (!(w->flags & SAGE_WRITE_NO_SYNC) && w->io.fsync(fd) < 0) {
        rc = sage_err_sys(err, SAGE_EIO, "cannot sync '%s'", tmp);
        goto out;
    }
    *tmp_out = tmp;
    *final_out = final;
    tmp = final = NULL;
out:
    if (fd >= 0)
        close(fd);
    if (tmp)
        unlink(tmp);
    sage_free(final);
    sage_free(tmp);
    return rc;
}

int sage_writer_commit(struct sage_writer *w, char *sha256_hex, struct sage_err *err)
{
    int rc = 0;
    uint8_t *hdr = NULL;
    EVP_MD_CTX *sha = NULL;
    uint8_t ftr[SAGE_FTR_LEN] = { 0 };
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;
    char hex[65];
    char *side_tmp = NULL, *side_final = NULL;

    if (w->committed || w->fd < 0)
        return sage_err_set(err, SAGE_EINVAL, "writer already committed or failed");
    if (w->in_section) {
        rc = sage_err_set(err, SAGE_EINVAL, "commit with a section still open");
        goto out;
    }
    uint64_t footer_off = w->pos;
    if ((rc = flush(w, err)) < 0)
        goto out;
    hdr = sage_malloc(w->header_len);
    sha = EVP_MD_CTX_new();
    if (!hdr || !sha || !EVP_DigestInit_ex(sha, EVP_sha256(), NULL)) {
        rc = sage_err_set(err, SAGE_ENOMEM, "cannot allocate header");
        goto out;
    }
    encode_header(w, hdr, footer_off + SAGE_FTR_LEN);
    if ((rc = pwrite_all(w, hdr, w->header_len, 0, err)) < 0)
        goto out;
    uint64_t file_xxh = 0;
    if ((rc = hash_back(w, footer_off, &file_xxh, sha, err)) < 0)
        goto out;
    sage_put64(ftr + SAGE_FTR_FILE_CHECKSUM, file_xxh);
    sage_put64(ftr + SAGE_FTR_HDR_CHECKSUM, sage_le64(hdr + SAGE_HDR_CHECKSUM));
    sage_put64(ftr + SAGE_FTR_CHECKSUM, XXH3_64bits(ftr, SAGE_FTR_CHECKSUM));
    memcpy(ftr + SAGE_FTR_MAGIC, SAGE_MAGIC, SAGE_MAGIC_LEN);
    EVP_DigestUpdate(sha, ftr, sizeof(ftr));
    EVP_DigestFinal_ex(sha, md, &md_len);
    for (unsigned i = 0; i < md_len && i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    if ((rc = pwrite_all(w, ftr, sizeof(ftr), footer_off, err)) < 0)
        goto out;
    if (!(w->flags & SAGE_WRITE_NO_SYNC) && w->io.fsync(w->fd) < 0) {
        rc = sage_err_sys(err, SAGE_EIO, "cannot sync '%s'", w->tmp_path);
        goto out;
    }
    if ((rc = prepare_sidecar(w, w->flags & SAGE_WRITE_NO_SHA256 ? NULL : hex, &side_tmp,
                              &side_final, err)) < 0)
        goto out;
    if (w->io.rename(w->tmp_path, w->path) < 0) {
        rc = sage_err_sys(err, SAGE_EIO, "cannot rename '%s' to '%s'", w->tmp_path, w->path);
        goto out;
    }
    w->committed = 1;
    /* From here the new index is in place; a failure still returns an error
     * and leaves no sidecar that disagrees with it. */
    if (side_tmp && w->io.rename(side_tmp, side_final) < 0) {
        rc = sage_err_sys(err, SAGE_EIO, "cannot rename '%s' to '%s'", side_tmp, side_final);
        unlink(side_final);
        goto out;
    }
    if (!side_tmp && unlink(side_final) < 0 && errno != ENOENT) {
        rc = sage_err_sys(err, SAGE_EIO, "cannot remove the stale '%s'", side_final);
        goto out;
    }
    sage_free(side_tmp);
    side_tmp = NULL;
    if ((rc = fsync_dir(w, err)) < 0)
        goto out;
    if (sha256_hex)
        memcpy(sha256_hex, hex, sizeof(hex));
out:
    if (side_tmp)
        unlink(side_tmp);
    sage_free(side_tmp);
    sage_free(side_final);
    if (rc < 0 && !w->committed) {
        unlink(w->tmp_path);
        close(w->fd);
        w->fd = -1;
    }
    EVP_MD_CTX_free(sha);
    sage_free(hdr);
    return rc;
}

void sage_writer_free(struct sage_writer *w)
{
    if (!w)
        return;
    if (w->fd >= 0) {
        if (!w->committed)
            unlink(w->tmp_path);
        close(w->fd);
    }
    ZSTD_freeCCtx(w->zc);
    if (w->xxh)
        XXH3_freeState(w->xxh);
    sage_free(w->zbuf);
    sage_free(w->buf);
    sage_free(w->sections);
    sage_free(w->tmp_path);
    sage_free(w->dir);
    sage_free(w->path);
    sage_free(w);
}
