/* Dense vectors of the chunks (section VECTORS, FORMAT.md §9.11): for each
 * chunk its embedding as f32 rows, the same rows quantized to int8 with a
 * scale per row for fast scans, and the XXH3-128 of the text that was
 * embedded, so a later build can reuse vectors whose text did not change.
 * Rows are 64-byte aligned inside the mapping (sections are page-aligned),
 * so readers use them in place. The f32 and scale areas are little-endian
 * IEEE 754 binary32 and are read through pointers: vectors are for
 * little-endian hosts (checked at compile time). */
#ifndef SAGE_VECTORS_H
#define SAGE_VECTORS_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "reader.h"
#include "writer.h"

#define SAGE_VECTORS_DIM_MAX 65536u
#define SAGE_VECTORS_NORMALIZED 1u     /* flags: every row has unit L2 norm */

/* Row i of the vectors being written: dim floats into row, the text's hash
 * into hash. Called for i = 0 .. n-1, twice over (one pass per area), so a
 * caller may keep the rows on disk. A non-zero return stops the write: a
 * negative one is returned as it is, a positive one as -SAGE_EINVAL. */
typedef int (*sage_vectors_row_fn)(void *ctx, uint64_t i, float *row, uint8_t hash[16]);

/* Writes the VECTORS section for n rows of dim floats. Non-finite values
 * are refused (SAGE_EINVAL). */
int sage_vectors_write(struct sage_writer *w, uint64_t n, uint32_t dim, uint32_t flags,
                       sage_vectors_row_fn row, void *ctx, struct sage_err *err);

struct sage_vectors {
    uint32_t dim, flags;
    uint64_t n;
    size_t stride_f32, stride_i8;   /* bytes from one row to the next */
    const uint8_t *f32, *i8, *scale, *hash;
};

/* Validates the section in place. -SAGE_ENOTFOUND without one; CORRUPT when
 * its header does not describe its length, or n differs from n_chunks. */
int sage_vectors_open(struct sage_vectors *v, const struct sage_reader *r,
                      struct sage_err *err);

static inline const float *sage_vectors_row(const struct sage_vectors *v, uint64_t i)
{
    return (const float *)(const void *)(v->f32 + i * v->stride_f32);
}

static inline const int8_t *sage_vectors_row_i8(const struct sage_vectors *v, uint64_t i)
{
    return (const int8_t *)(v->i8 + i * v->stride_i8);
}

static inline float sage_vectors_scale(const struct sage_vectors *v, uint64_t i)
{
    return ((const float *)(const void *)v->scale)[i];
}

static inline const uint8_t *sage_vectors_hash(const struct sage_vectors *v, uint64_t i)
{
    return v->hash + 16 * i;
}

/* The int8 row of f[0, dim) and its scale: q = round(f / scale) with
 * scale = max |f| / 127 (0 for a zero row, whose q is all zero). */
float sage_vectors_quantize(const float *f, uint32_t dim, int8_t *q);

#endif
