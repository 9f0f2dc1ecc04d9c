/* Chunk record blocks: each block is one zstd frame holding a record table of
 * up to SAGE_CHUNKS_PER_BLOCK msgpack records. */
#include "chunkstore.h"

#include <pthread.h>
#include <unistd.h>
#include <string.h>
#include <zstd.h>

#include "alloc.h"
#include "le.h"
#include "mpjson.h"
#include "tmpfile.h"

#define HEAD 24     /* u64 n, u32 per_block, u32 reserved, u64 n_blocks */

/* One decompression context per thread, kept: ZSTD_decompress makes and
 * frees a context of ~160 KB at every call (a mmap and its page faults),
 * which cost more than decoding the block itself for every hit shown. */
static pthread_key_t dctx_key;
static pthread_once_t dctx_once = PTHREAD_ONCE_INIT;

static void dctx_free(void *p)
{
    ZSTD_freeDCtx(p);
}

static void dctx_key_init(void)
{
    if (pthread_key_create(&dctx_key, dctx_free) != 0)
        SAGE_BUG("cannot create a thread key");
}

static ZSTD_DCtx *thread_dctx(void)
{
    pthread_once(&dctx_once, dctx_key_init);
    ZSTD_DCtx *d = pthread_getspecific(dctx_key);
    if (!d && (d = ZSTD_createDCtx()) != NULL && pthread_setspecific(dctx_key, d) != 0) {
        ZSTD_freeDCtx(d);
        d = NULL;
    }
    return d;
}

int sage_chunkstore_builder_init(struct sage_chunkstore_builder *b, int zstd_level,
                                 struct sage_err *err)
{
    memset(b, 0, sizeof(*b));
    b->fd = -1;
    sage_rectab_builder_init(&b->cur, SAGE_CHUNK_BLOCK_MAX);
    b->level = zstd_level ? zstd_level : 9;
    if (!(b->zc = ZSTD_createCCtx()) || sage_grow((void **)&b->offs, &b->offs_cap, 1, 8) < 0) {
        sage_chunkstore_builder_release(b);
        return sage_err_set(err, SAGE_ENOMEM, "cannot allocate chunk store");
    }
    b->offs[0] = 0;
    return 0;
}

void sage_chunkstore_builder_release(struct sage_chunkstore_builder *b)
{
    if (!b)
        return;
    sage_rectab_builder_release(&b->cur);
    ZSTD_freeCCtx(b->zc);
    sage_free(b->blocks);
    sage_free(b->offs);
    if (b->fd >= 0)
        close(b->fd);
    memset(b, 0, sizeof(*b));
    b->fd = -1;
}

int sage_chunkstore_builder_spill(struct sage_chunkstore_builder *b, const char *dir, size_t hold,
                                  struct sage_err *err)
{
    int fd = sage_tmpfile_open(dir, err);
    if (fd < 0)
        return fd;
    if (b->fd >= 0)
        close(b->fd);
    b->fd = fd;
    b->hold = hold;
    return 0;
}

/* Moves the blocks held in memory to the spill file. */
static int spill(struct sage_chunkstore_builder *b, struct sage_err *err)
{
    for (size_t done = 0; done < b->blocks_len;) {
        ssize_t k = pwrite(b->fd, b->blocks + done, b->blocks_len - done,
                           (off_t)(b->spilled + done));
        if (k <= 0)
            return sage_err_sys(err, SAGE_EIO, "cannot write the chunk text spill file");
        done += (size_t)k;
    }
    b->spilled += b->blocks_len;
    b->blocks_len = 0;
    return 0;
}

/* Compresses the pending records into a block. */
static int seal(struct sage_chunkstore_builder *b, struct sage_err *err)
{
    size_t raw_len = sage_rectab_builder_size(&b->cur);
    uint8_t *raw = sage_malloc(raw_len);
    size_t bound = ZSTD_compressBound(raw_len);
    int rc = 0;
    if (!raw || sage_grow((void **)&b->blocks, &b->blocks_cap, b->blocks_len + bound, 1) < 0 ||
        sage_grow((void **)&b->offs, &b->offs_cap, b->n_blocks + 2, 8) < 0) {
        rc = sage_err_set(err, SAGE_ENOMEM, "cannot grow chunk store");
        goto out;
    }
    sage_rectab_builder_encode(&b->cur, raw);
    size_t z = ZSTD_compressCCtx(b->zc, b->blocks + b->blocks_len, bound, raw, raw_len, b->level);
    if (ZSTD_isError(z)) {
        rc = sage_err_set(err, SAGE_EIO, "zstd: %s", ZSTD_getErrorName(z));
        goto out;
    }
    b->blocks_len += z;
    b->offs[++b->n_blocks] = b->spilled + b->blocks_len;
    sage_rectab_builder_release(&b->cur);
    sage_rectab_builder_init(&b->cur, SAGE_CHUNK_BLOCK_MAX);
    if (b->fd >= 0 && b->blocks_len >= b->hold)
        rc = spill(b, err);
out:
    sage_free(raw);
    return rc;
}

int sage_chunkstore_add(struct sage_chunkstore_builder *b, const uint8_t *rec, size_t len,
                        struct sage_err *err)
{
    int rc = sage_rectab_builder_add(&b->cur, rec, len, err);
    if (rc < 0)
        return rc;
    b->n++;
    return b->cur.n == SAGE_CHUNKS_PER_BLOCK ? seal(b, err) : 0;
}

int sage_chunkstore_write(struct sage_chunkstore_builder *b, struct sage_writer *w,
                          struct sage_err *err)
{
    int rc = 0;
    uint8_t head[HEAD] = { 0 }, o8[8];
    if (b->cur.n && (rc = seal(b, err)) < 0)
        return rc;
    sage_put64(head, b->n);
    sage_put32(head + 8, SAGE_CHUNKS_PER_BLOCK);
    sage_put64(head + 16, b->n_blocks);
    if ((rc = sage_writer_begin(w, SAGE_SECTION_CHUNK_TEXT, SAGE_CODEC_RAW, err)) < 0 ||
        (rc = sage_writer_write(w, head, HEAD, err)) < 0)
        return rc;
    for (size_t i = 0; i <= b->n_blocks; i++) {
        sage_put64(o8, b->offs[i]);
        if ((rc = sage_writer_write(w, o8, 8, err)) < 0)
            return rc;
    }
    uint8_t buf[1 << 16];
    for (uint64_t off = 0; off < b->spilled;) {
        size_t want = b->spilled - off < sizeof(buf) ? (size_t)(b->spilled - off) : sizeof(buf);
        ssize_t k = pread(b->fd, buf, want, (off_t)off);
        if (k <= 0)
            return sage_err_sys(err, SAGE_EIO, "cannot read the chunk text spill file back");
        if ((rc = sage_writer_write(w, buf, (size_t)k, err)) < 0)
            return rc;
        off += (uint64_t)k;
    }
    if ((rc = sage_writer_write(w, b->blocks, b->blocks_len, err)) < 0)
        return rc;
    return sage_writer_end(w, err);
}

int sage_chunkstore_open(struct sage_chunkstore *cs, const struct sage_reader *r,
                         struct sage_err *err)
{
    const struct sage_section *s = sage_reader_find(r, SAGE_SECTION_CHUNK_TEXT);
    memset(cs, 0, sizeof(*cs));
    if (!s)
        return sage_err_set(err, SAGE_ENOTFOUND, "index has no chunk text");
    if (s->codec != SAGE_CODEC_RAW || s->len < HEAD + 8)
        return sage_err_set(err, SAGE_ECORRUPT, "chunk text section is malformed");
    cs->n = sage_le64(s->data);
    cs->per_block = sage_le32(s->data + 8);
    cs->n_blocks = sage_le64(s->data + 16);
    uint64_t room = s->len - HEAD - 8;
    /* n / per_block rounded up, without the overflow of n + per_block - 1 */
    if (cs->per_block == 0 || cs->n_blocks > room / 8 ||
        cs->n_blocks != cs->n / cs->per_block + (cs->n % cs->per_block != 0))
        return sage_err_set(err, SAGE_ECORRUPT, "chunk text header is inconsistent");
    cs->offs = s->data + HEAD;
    cs->data = cs->offs + 8 * (cs->n_blocks + 1);
    cs->data_len = room - 8 * cs->n_blocks;
    return 0;
}

int sage_chunkstore_get(const struct sage_chunkstore *cs, uint64_t i, json_t **rec,
                        struct sage_err *err)
{
    int rc = 0;
    void *raw = NULL;
    *rec = NULL;
    if (i >= cs->n)
        return sage_err_set(err, SAGE_ENOTFOUND, "no chunk %llu", (unsigned long long)i);
    uint64_t blk = i / cs->per_block;
    uint64_t a = sage_le64(cs->offs + 8 * blk), b = sage_le64(cs->offs + 8 * (blk + 1));
    if (a > b || b > cs->data_len)
        return sage_err_set(err, SAGE_ECORRUPT, "chunk block %llu lies outside its section",
                            (unsigned long long)blk);
    unsigned long long want = ZSTD_getFrameContentSize(cs->data + a, (size_t)(b - a));
    if (want == ZSTD_CONTENTSIZE_ERROR || want == ZSTD_CONTENTSIZE_UNKNOWN ||
        want > SAGE_CHUNK_BLOCK_MAX)
        return sage_err_set(err, SAGE_ECORRUPT, "chunk block %llu is not a bounded zstd frame",
                            (unsigned long long)blk);
    if (!(raw = sage_malloc((size_t)want)))
        return sage_err_set(err, SAGE_ENOMEM, "cannot allocate a chunk block");
    ZSTD_DCtx *dctx = thread_dctx();
    size_t got = dctx ? ZSTD_decompressDCtx(dctx, raw, (size_t)want, cs->data + a, (size_t)(b - a))
                      : ZSTD_decompress(raw, (size_t)want, cs->data + a, (size_t)(b - a));
    struct sage_rectab t;
    const uint8_t *p;
    size_t n;
    if (ZSTD_isError(got) || got != want) {
        rc = sage_err_set(err, SAGE_ECORRUPT, "chunk block %llu does not decode",
                          (unsigned long long)blk);
        goto out;
    }
    if ((rc = sage_rectab_open(&t, raw, got, err)) < 0 ||
        (rc = sage_rectab_get(&t, i % cs->per_block, &p, &n, err)) < 0 ||
        (rc = sage_mpjson_decode(p, n, rec, err)) < 0)
        goto out;
out:
    sage_free(raw);
    return rc;
}
