/* The VECTORS section (FORMAT.md §9.11): a 64-byte header, then the f32
 * rows, the int8 rows, the scales and the hashes, each area starting on a
 * 64-byte boundary and each row padded with zeros to a multiple of 64. */
#include "vectors.h"

#include <math.h>
#include <string.h>

#include "alloc.h"
#include "le.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the VECTORS section is read in place: a little-endian host is required"
#endif

#define VHEAD 64
#define ALIGN 64u

static uint64_t round_up(uint64_t x)
{
    return (x + ALIGN - 1) / ALIGN * ALIGN;
}

struct layout {
    uint64_t stride_f32, stride_i8, off_f32, off_i8, off_scale, off_hash, total;
};

/* The areas for n rows of dim; 0, or -1 when the sizes overflow 64 bits. */
static int plan(uint64_t n, uint32_t dim, struct layout *l)
{
    l->stride_f32 = round_up(4 * (uint64_t)dim);
    l->stride_i8 = round_up(dim);
    if (n > (UINT64_MAX / 2) / (l->stride_f32 + l->stride_i8 + 4 + 16 + ALIGN))
        return -1;
    l->off_f32 = VHEAD;
    l->off_i8 = l->off_f32 + n * l->stride_f32;
    l->off_scale = l->off_i8 + n * l->stride_i8;
    l->off_hash = round_up(l->off_scale + 4 * n);
    l->total = l->off_hash + 16 * n;
    return 0;
}

float sage_vectors_quantize(const float *f, uint32_t dim, int8_t *q)
{
    float m = 0;
    for (uint32_t j = 0; j < dim; j++)
        m = fabsf(f[j]) > m ? fabsf(f[j]) : m;
    float scale = m / 127.0f;
    for (uint32_t j = 0; j < dim; j++) {
        long v = scale > 0 ? lroundf(f[j] / scale) : 0;
        q[j] = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
    }
    return scale;
}

static int put_zeros(struct sage_writer *w, uint64_t n, struct sage_err *err)
{
    static const uint8_t zero[ALIGN];
    int rc = 0;
    while (rc == 0 && n > 0) {
        size_t k = n < sizeof(zero) ? (size_t)n : sizeof(zero);
        rc = sage_writer_write(w, zero, k, err);
        n -= k;
    }
    return rc;
}

int sage_vectors_write(struct sage_writer *w, uint64_t n, uint32_t dim, uint32_t flags,
                       sage_vectors_row_fn row, void *ctx, struct sage_err *err)
{
    struct layout l;
    if (dim == 0 || dim > SAGE_VECTORS_DIM_MAX || plan(n, dim, &l) < 0)
        return sage_err_set(err, SAGE_EINVAL, "cannot store %llu vectors of dimension %u",
                            (unsigned long long)n, dim);
    float *f = sage_calloc(dim, sizeof(*f));
    uint8_t *buf = sage_calloc(1, l.stride_f32 > VHEAD ? l.stride_f32 : VHEAD);
    float *scales = sage_calloc(n ? n : 1, sizeof(*scales));
    uint8_t *hashes = sage_calloc(n ? n : 1, 16);
    int rc;
    if (!f || !buf || !scales || !hashes) {
        rc = sage_err_set(err, SAGE_ENOMEM, "cannot allocate the vector writer");
        goto out;
    }
    sage_put32(buf, dim);
    sage_put32(buf + 4, flags);
    sage_put64(buf + 8, n);
    sage_put64(buf + 16, l.off_f32);
    sage_put64(buf + 24, l.off_i8);
    sage_put64(buf + 32, l.off_scale);
    sage_put64(buf + 40, l.off_hash);
    if ((rc = sage_writer_begin(w, SAGE_SECTION_VECTORS, SAGE_CODEC_RAW, err)) < 0)
        goto out;
    if ((rc = sage_writer_write(w, buf, VHEAD, err)) < 0)
        goto end;
    for (int pass = 0; pass < 2; pass++) {
        for (uint64_t i = 0; i < n; i++) {
            memset(buf, 0, l.stride_f32);
            if ((rc = row(ctx, i, f, hashes + 16 * i)) != 0) {
                if (rc > 0)
                    rc = sage_err_set(err, SAGE_EINVAL, "vector %llu is not available",
                                      (unsigned long long)i);
                goto end;
            }
            for (uint32_t j = 0; j < dim; j++)
                if (!isfinite(f[j])) {
                    rc = sage_err_set(err, SAGE_EINVAL, "vector %llu has a non-finite value",
                                      (unsigned long long)i);
                    goto end;
                }
            if (pass == 0) {
                memcpy(buf, f, 4 * (size_t)dim);
                rc = sage_writer_write(w, buf, l.stride_f32, err);
            } else {
                scales[i] = sage_vectors_quantize(f, dim, (int8_t *)buf);
                rc = sage_writer_write(w, buf, l.stride_i8, err);
            }
            if (rc < 0)
                goto end;
        }
    }
    if ((rc = sage_writer_write(w, scales, 4 * n, err)) < 0 ||
        (rc = put_zeros(w, l.off_hash - l.off_scale - 4 * n, err)) < 0 ||
        (rc = sage_writer_write(w, hashes, 16 * n, err)) < 0)
        goto end;
end:
    {
        int rc2 = sage_writer_end(w, err);
        rc = rc < 0 ? rc : rc2;
    }
out:
    sage_free(f);
    sage_free(buf);
    sage_free(scales);
    sage_free(hashes);
    return rc;
}

int sage_vectors_open(struct sage_vectors *v, const struct sage_reader *r,
                      struct sage_err *err)
{
    const struct sage_section *s = sage_reader_find(r, SAGE_SECTION_VECTORS);
    struct layout l;
    memset(v, 0, sizeof(*v));
    if (!s)
        return sage_err_set(err, SAGE_ENOTFOUND, "index has no vectors");
    if (s->codec != SAGE_CODEC_RAW || s->len < VHEAD)
        return sage_err_set(err, SAGE_ECORRUPT, "vectors section is malformed");
    const uint8_t *h = s->data;
    v->dim = sage_le32(h);
    v->flags = sage_le32(h + 4);
    v->n = sage_le64(h + 8);
    if (v->dim == 0 || v->dim > SAGE_VECTORS_DIM_MAX || (v->flags & ~SAGE_VECTORS_NORMALIZED) ||
        plan(v->n, v->dim, &l) < 0 || sage_le64(h + 16) != l.off_f32 ||
        sage_le64(h + 24) != l.off_i8 || sage_le64(h + 32) != l.off_scale ||
        sage_le64(h + 40) != l.off_hash || s->len != l.total)
        return sage_err_set(err, SAGE_ECORRUPT, "vectors section header does not describe it");
    for (int i = 48; i < VHEAD; i++)
        if (h[i])
            return sage_err_set(err, SAGE_ECORRUPT, "vectors section header has reserved bytes set");
    if (v->n != sage_reader_info(r)->n_chunks)
        return sage_err_set(err, SAGE_ECORRUPT, "%llu vectors for %llu chunks",
                            (unsigned long long)v->n,
                            (unsigned long long)sage_reader_info(r)->n_chunks);
    v->stride_f32 = (size_t)l.stride_f32;
    v->stride_i8 = (size_t)l.stride_i8;
    v->f32 = h + l.off_f32;
    v->i8 = h + l.off_i8;
    v->scale = h + l.off_scale;
    v->hash = h + l.off_hash;
    return 0;
}
