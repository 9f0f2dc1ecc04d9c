/* Index file reader: mapping, O(1) structural validation at open, full
 * checksum verification on request, and section decoding. Every field is read
 * with an explicit little-endian load and checked before it is used. */
#include "reader.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#include "alloc.h"
#include "le.h"

/* A zstd frame cannot expand by more than this (a run-length block of 128 KiB
 * costs 4 bytes); a section that claims more is corrupt, whatever its checksum. */
#define ZSTD_MAX_RATIO 65536u

struct sage_reader {
    const uint8_t *base;
    size_t size;
    int mapped;                 /* base came from mmap and must be unmapped */
    int transient;              /* SAGE_OPEN_TRANSIENT on a mapping */
    char *name;                 /* for messages */
    struct sage_reader_info info;
    struct sage_section *sections;
};

const char *sage_section_kind_name(uint32_t kind)
{
    switch (kind) {
    case SAGE_SECTION_BUILD: return "build";
    case SAGE_SECTION_DOCS: return "docs";
    case SAGE_SECTION_TEXT: return "text";
    case SAGE_SECTION_CHUNKS: return "chunks";
    case SAGE_SECTION_CHUNK_TEXT: return "chunk_text";
    case SAGE_SECTION_NORMS: return "norms";
    case SAGE_SECTION_POSTINGS: return "postings";
    case SAGE_SECTION_LEXICON: return "lexicon";
    case SAGE_SECTION_VECTORS: return "vectors";
    case SAGE_SECTION_CHUNK_META: return "chunk_meta";
    case SAGE_SECTION_HNSW: return "hnsw";
    case SAGE_SECTION_OCR_PAGES: return "ocr_pages";
    default: return NULL;
    }
}

const char *sage_codec_name(uint32_t codec)
{
    switch (codec) {
    case SAGE_CODEC_RAW: return "raw";
    case SAGE_CODEC_ZSTD: return "zstd";
    default: return NULL;
    }
}

/* Returns len bytes at off, or NULL if any of them lies outside the image. */
static const uint8_t *span(const struct sage_reader *r, uint64_t off, uint64_t len)
{
    return (off <= r->size && len <= r->size - off) ? r->base + off : NULL;
}

#define CORRUPT(...) sage_err_set(err, SAGE_ECORRUPT, __VA_ARGS__)

/* XXH3-64 of the header with its checksum field taken as zero; -1 (with
 * *ok = 0) only when no hash state can be allocated. */
static uint64_t header_checksum(const uint8_t *h, uint32_t len, int *ok)
{
    static const uint8_t zero[8];
    XXH3_state_t *st = XXH3_createState();
    uint64_t v = 0;
    *ok = st != NULL;
    if (st) {
        XXH3_64bits_reset(st);
        XXH3_64bits_update(st, h, SAGE_HDR_CHECKSUM);
        XXH3_64bits_update(st, zero, 8);
        XXH3_64bits_update(st, h + SAGE_HDR_CHECKSUM + 8, len - SAGE_HDR_CHECKSUM - 8);
        v = XXH3_64bits_digest(st);
        XXH3_freeState(st);
    }
    return v;
}

static int validate(struct sage_reader *r, struct sage_err *err)
{
    const char *n = r->name;
    struct sage_reader_info *in = &r->info;
    if (r->size == 0)
        return CORRUPT("'%s' is empty, not an index file", n);
    const uint8_t *h = span(r, 0, SAGE_HDR_FIXED);
    if (!h || memcmp(h, SAGE_MAGIC, SAGE_MAGIC_LEN) != 0)
        return CORRUPT("'%s' is not a SAGE index file (bad magic)", n);
    in->major = sage_le16(h + SAGE_HDR_MAJOR);
    in->minor = sage_le16(h + SAGE_HDR_MINOR);
    if (in->major != SAGE_FORMAT_MAJOR)
        return sage_err_set(err, SAGE_EVERSION,
                            "'%s' has format version %u.%u; this build reads %u.x only",
                            n, in->major, in->minor, SAGE_FORMAT_MAJOR);
    if (r->size < SAGE_PAGE + SAGE_FTR_LEN)
        return CORRUPT("'%s' is truncated (%zu bytes)", n, r->size);
    in->header_len = sage_le32(h + SAGE_HDR_LEN);
    in->n_sections = sage_le32(h + SAGE_HDR_NSECT);
    in->file_size = sage_le64(h + SAGE_HDR_FILE_SIZE);
    in->n_docs = sage_le64(h + SAGE_HDR_NDOCS);
    in->n_chunks = sage_le64(h + SAGE_HDR_NCHUNKS);
    in->header_checksum = sage_le64(h + SAGE_HDR_CHECKSUM);
    if (in->file_size != r->size)
        return CORRUPT("'%s' is truncated or extended: header says %llu bytes, file has %zu",
                       n, (unsigned long long)in->file_size, r->size);
    if (sage_le32(h + SAGE_HDR_PAGE) != SAGE_PAGE)
        return CORRUPT("'%s': bad page size in header", n);
    if (in->header_len == 0 || in->header_len % SAGE_PAGE ||
        in->n_sections > SAGE_SECTIONS_MAX ||
        in->header_len > SAGE_HDR_FIXED + SAGE_SECTIONS_MAX * SAGE_SEC_ENTRY + SAGE_PAGE ||
        in->header_len > r->size - SAGE_FTR_LEN ||
        in->n_sections > (in->header_len - SAGE_HDR_FIXED) / SAGE_SEC_ENTRY)
        return CORRUPT("'%s': bad header length or section count", n);
    int ok;
    uint64_t hc = header_checksum(r->base, in->header_len, &ok);
    if (!ok)
        return sage_err_set(err, SAGE_ENOMEM, "cannot allocate hash state");
    if (hc != in->header_checksum)
        return CORRUPT("'%s': header checksum mismatch", n);

    uint64_t footer_off = r->size - SAGE_FTR_LEN;
    const uint8_t *f = r->base + footer_off;
    if (memcmp(f + SAGE_FTR_MAGIC, SAGE_MAGIC, SAGE_MAGIC_LEN) != 0)
        return CORRUPT("'%s': bad footer magic (truncated?)", n);
    if (XXH3_64bits(f, SAGE_FTR_CHECKSUM) != sage_le64(f + SAGE_FTR_CHECKSUM))
        return CORRUPT("'%s': footer checksum mismatch", n);
    if (sage_le64(f + SAGE_FTR_HDR_CHECKSUM) != in->header_checksum)
        return CORRUPT("'%s': footer does not belong to this header", n);
    in->file_checksum = sage_le64(f + SAGE_FTR_FILE_CHECKSUM);

    r->sections = sage_calloc(in->n_sections ? in->n_sections : 1, sizeof(*r->sections));
    if (!r->sections)
        return sage_err_set(err, SAGE_ENOMEM, "cannot allocate section table");
    uint64_t prev_end = in->header_len;
    for (uint32_t i = 0; i < in->n_sections; i++) {
        const uint8_t *e = h + SAGE_HDR_FIXED + (size_t)i * SAGE_SEC_ENTRY;
        struct sage_section *s = &r->sections[i];
        s->kind = sage_le32(e + SAGE_SEC_KIND);
        s->codec = sage_le16(e + SAGE_SEC_CODEC);
        s->off = sage_le64(e + SAGE_SEC_OFF);
        s->len = sage_le64(e + SAGE_SEC_LEN);
        s->raw_len = sage_le64(e + SAGE_SEC_RAW_LEN);
        s->checksum = sage_le64(e + SAGE_SEC_CHECKSUM);
        if (s->off % SAGE_PAGE || s->off < prev_end || s->off > footer_off ||
            s->len > footer_off - s->off)
            return CORRUPT("'%s': section %u lies outside its place", n, i);
        prev_end = s->off + s->len;
        s->data = r->base + s->off;
        int known = sage_section_kind_name(s->kind) != NULL;
        if (known && !sage_codec_name(s->codec))
            return CORRUPT("'%s': section %u has unknown codec %u", n, i, s->codec);
        if (s->codec == SAGE_CODEC_RAW && s->raw_len != s->len)
            return CORRUPT("'%s': raw section %u has mismatched lengths", n, i);
        if (s->codec == SAGE_CODEC_ZSTD && s->raw_len / ZSTD_MAX_RATIO > s->len)
            return CORRUPT("'%s': section %u claims an impossible decoded size", n, i);
    }
    return 0;
}

static int reader_new(const char *name, struct sage_reader **out, struct sage_err *err)
{
    struct sage_reader *r = sage_calloc(1, sizeof(*r));
    if (!r || !(r->name = sage_strdup(name))) {
        sage_free(r);
        return sage_err_set(err, SAGE_ENOMEM, "cannot allocate reader");
    }
    *out = r;
    return 0;
}

static int finish_open(struct sage_reader *r, unsigned flags, struct sage_reader **out,
                       struct sage_err *err)
{
    int rc = validate(r, err);
    if (rc == 0 && (flags & SAGE_OPEN_VERIFY))
        rc = sage_reader_verify(r, err);
    if (rc < 0)
        sage_reader_close(r);
    else
        *out = r;
    return rc;
}

int sage_reader_open_mem(const void *data, size_t len, unsigned flags,
                         struct sage_reader **out, struct sage_err *err)
{
    struct sage_reader *r;
    *out = NULL;
    int rc = reader_new("<memory>", &r, err);
    if (rc < 0)
        return rc;
    r->base = data;
    r->size = len;
    return finish_open(r, flags, out, err);
}

int sage_reader_open(const char *path, unsigned flags, struct sage_reader **out,
                     struct sage_err *err)
{
    struct sage_reader *r = NULL;
    struct stat st;
    int rc;
    *out = NULL;
    /* O_NONBLOCK: opening a FIFO must not wait for a writer. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return sage_err_sys(err, errno == ENOENT ? SAGE_ENOTFOUND : SAGE_EIO,
                            "cannot open '%s'", path);
    if (fstat(fd, &st) < 0) {
        rc = sage_err_sys(err, SAGE_EIO, "cannot stat '%s'", path);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = sage_err_set(err, SAGE_ENOTFILE, "'%s' is not a regular file (%s)", path,
                          S_ISDIR(st.st_mode) ? "a directory" :
                          S_ISFIFO(st.st_mode) ? "a FIFO" :
                          S_ISSOCK(st.st_mode) ? "a socket" : "a device");
        goto out;
    }
    if ((rc = reader_new(path, &r, err)) < 0)
        goto out;
    r->size = (size_t)st.st_size;
    r->info.st = (struct sage_file_stat){
        (uint64_t)st.st_dev, (uint64_t)st.st_ino, (uint64_t)st.st_size,
        (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec,
        (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec };
    if (r->size > 0) {
        void *m = mmap(NULL, r->size, PROT_READ,
                       MAP_SHARED | (flags & SAGE_OPEN_POPULATE ? MAP_POPULATE : 0), fd, 0);
        if (m == MAP_FAILED) {
            rc = sage_err_sys(err, SAGE_EIO, "cannot map '%s'", path);
            goto out;
        }
        r->base = m;
        r->mapped = 1;
        r->transient = (flags & SAGE_OPEN_TRANSIENT) != 0;
    }
    rc = finish_open(r, flags, out, err);
    r = NULL;   /* finish_open owns it now */
out:
    close(fd);
    sage_reader_close(r);
    return rc;
}

void sage_reader_close(struct sage_reader *r)
{
    if (!r)
        return;
    if (r->mapped)
        munmap((void *)r->base, r->size);
    sage_free(r->sections);
    sage_free(r->name);
    sage_free(r);
}

const struct sage_reader_info *sage_reader_info(const struct sage_reader *r)
{
    return &r->info;
}

const struct sage_section *sage_reader_section(const struct sage_reader *r, uint32_t i)
{
    return i < r->info.n_sections ? &r->sections[i] : NULL;
}

const struct sage_section *sage_reader_find(const struct sage_reader *r, uint32_t kind)
{
    for (uint32_t i = 0; i < r->info.n_sections; i++)
        if (r->sections[i].kind == kind)
            return &r->sections[i];
    return NULL;
}

const uint8_t *sage_reader_base(const struct sage_reader *r)
{
    return r->base;
}

int sage_reader_load(const struct sage_reader *r, const struct sage_section *s,
                     size_t max_len, struct sage_bytes *out, struct sage_err *err)
{
    memset(out, 0, sizeof(*out));
    if (max_len && s->raw_len > max_len)
        return sage_err_set(err, SAGE_ELIMIT, "'%s': section of %llu bytes exceeds the %zu-byte cap",
                            r->name, (unsigned long long)s->raw_len, max_len);
    if (s->codec == SAGE_CODEC_RAW) {
        out->data = s->data;
        out->len = (size_t)s->len;
        return 0;
    }
    if (s->codec != SAGE_CODEC_ZSTD)
        return sage_err_set(err, SAGE_ECORRUPT, "'%s': unknown codec %u", r->name, s->codec);
    if (s->raw_len > SIZE_MAX / 2)
        return sage_err_set(err, SAGE_ELIMIT, "'%s': section too large to decode", r->name);
    size_t frame = ZSTD_findFrameCompressedSize(s->data, (size_t)s->len);
    if (ZSTD_isError(frame) || frame != s->len)
        return sage_err_set(err, SAGE_ECORRUPT, "'%s': section is not one zstd frame", r->name);
    void *buf = sage_malloc((size_t)s->raw_len);
    if (!buf)
        return sage_err_set(err, SAGE_ENOMEM, "cannot allocate %llu bytes to decode a section",
                            (unsigned long long)s->raw_len);
    size_t got = ZSTD_decompress(buf, (size_t)s->raw_len, s->data, (size_t)s->len);
    if (ZSTD_isError(got) || got != s->raw_len) {
        sage_free(buf);
        return sage_err_set(err, SAGE_ECORRUPT, "'%s': section does not decode to its length",
                            r->name);
    }
    out->data = buf;
    out->len = got;
    out->owned = buf;
    return 0;
}

void sage_bytes_release(struct sage_bytes *b)
{
    if (!b)
        return;
    sage_free(b->owned);
    memset(b, 0, sizeof(*b));
}

/* Verification reads the image once, front to back, in steps small enough to
 * stay in cache between the whole-file hash and the section hash. */
#define STEP (256u << 10)

static int all_zero(const uint8_t *p, uint64_t n)
{
    static const uint8_t zero[4096];
    while (n > 0) {
        size_t k = n < sizeof(zero) ? (size_t)n : sizeof(zero);
        if (memcmp(p, zero, k) != 0)
            return 0;
        p += k;
        n -= k;
    }
    return 1;
}

static int verify_zstd(const struct sage_reader *r, const struct sage_section *s, uint32_t i,
                       struct sage_err *err)
{
    int rc = 0;
    ZSTD_DCtx *dc = ZSTD_createDCtx();
    size_t cap = ZSTD_DStreamOutSize();
    void *scratch = sage_malloc(cap);
    uint64_t produced = 0;
    size_t left = 1;
    if (!dc || !scratch) {
        rc = sage_err_set(err, SAGE_ENOMEM, "cannot allocate a decompressor");
        goto out;
    }
    ZSTD_inBuffer ib = { s->data, (size_t)s->len, 0 };
    while (ib.pos < ib.size) {
        ZSTD_outBuffer ob = { scratch, cap, 0 };
        left = ZSTD_decompressStream(dc, &ob, &ib);
        if (ZSTD_isError(left)) {
            rc = CORRUPT("'%s': section %u does not decode: %s", r->name, i,
                         ZSTD_getErrorName(left));
            goto out;
        }
        produced += ob.pos;
        if (produced > s->raw_len || (left == 0 && ib.pos < ib.size) ||
            (ob.pos == 0 && ib.pos == ib.size && left != 0))
            break;
    }
    if (left != 0 || produced != s->raw_len || ib.pos != ib.size)
        rc = CORRUPT("'%s': section %u decodes to the wrong length", r->name, i);
out:
    sage_free(scratch);
    ZSTD_freeDCtx(dc);
    return rc;
}

/* With SAGE_OPEN_TRANSIENT, drops the whole pages of [p, p + n) from the
 * process: they stay in the page cache (the mapping is shared and read-only),
 * so a later read costs a minor fault, not I/O. */
static void hand_back(const struct sage_reader *r, const uint8_t *p, size_t n)
{
    static long page;
    if (!r->transient)
        return;
    if (!page)
        page = sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)p + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    uintptr_t e = ((uintptr_t)p + n) & ~((uintptr_t)page - 1);
    if (e > a)
        madvise((void *)a, e - a, MADV_DONTNEED);
}

int sage_reader_verify(const struct sage_reader *r, struct sage_err *err)
{
    int rc = 0;
    XXH3_state_t *file = XXH3_createState(), *sec = XXH3_createState();
    if (!file || !sec) {
        rc = sage_err_set(err, SAGE_ENOMEM, "cannot allocate hash state");
        goto out;
    }
    uint64_t footer_off = r->size - SAGE_FTR_LEN;
    uint64_t table_end = SAGE_HDR_FIXED + (uint64_t)r->info.n_sections * SAGE_SEC_ENTRY;
    if (!all_zero(r->base + table_end, r->info.header_len - table_end)) {
        rc = CORRUPT("'%s': non-zero bytes in header padding", r->name);
        goto out;
    }
    XXH3_64bits_reset(file);
    XXH3_64bits_update(file, r->base, r->info.header_len);
    uint64_t pos = r->info.header_len;
    for (uint32_t i = 0; i <= r->info.n_sections; i++) {
        const struct sage_section *s = i < r->info.n_sections ? &r->sections[i] : NULL;
        uint64_t gap_end = s ? s->off : footer_off;
        if (!all_zero(r->base + pos, gap_end - pos)) {
            rc = CORRUPT("'%s': non-zero bytes in padding at offset %llu", r->name,
                         (unsigned long long)pos);
            goto out;
        }
        XXH3_64bits_update(file, r->base + pos, gap_end - pos);
        if (!s)
            break;
        XXH3_64bits_reset(sec);
        for (uint64_t o = 0; o < s->len; o += STEP) {
            size_t k = s->len - o < STEP ? (size_t)(s->len - o) : STEP;
            XXH3_64bits_update(file, s->data + o, k);
            XXH3_64bits_update(sec, s->data + o, k);
            hand_back(r, s->data + o, k);
        }
        if (XXH3_64bits_digest(sec) != s->checksum) {
            const char *kn = sage_section_kind_name(s->kind);
            rc = CORRUPT("'%s': checksum mismatch in section %u (%s)", r->name, i,
                         kn ? kn : "unknown kind");
            goto out;
        }
        pos = s->off + s->len;
    }
    if (XXH3_64bits_digest(file) != r->info.file_checksum) {
        rc = CORRUPT("'%s': whole-file checksum mismatch", r->name);
        goto out;
    }
    for (uint32_t i = 0; i < r->info.n_sections; i++) {
        const struct sage_section *s = &r->sections[i];
        if (s->codec == SAGE_CODEC_ZSTD && (rc = verify_zstd(r, s, i, err)) < 0)
            goto out;
    }
out:
    if (file)
        XXH3_freeState(file);
    if (sec)
        XXH3_freeState(sec);
    return rc;
}
