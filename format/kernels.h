/* Dot products for dense search: f32 (rescoring, HNSW construction) and
 * int8 (the quantized rows of VECTORS, §9.11). Each picks at run time the
 * widest code the CPU has (AVX2 + FMA, else portable C); results are the
 * same whichever runs for int8, and within rounding for f32. Rows in the
 * file are zero-padded to 64 bytes, so callers may pass the padded length. */
#ifndef SAGE_KERNELS_H
#define SAGE_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* Σ a[i]·b[i] over n floats. */
float sage_dot_f32(const float *a, const float *b, size_t n);
/* Σ a[i]·b[i] over n signed bytes, exact in 32 bits for n < 2^17. */
int32_t sage_dot_i8(const int8_t *a, const int8_t *b, size_t n);
/* "avx2" or "c": which code the two functions above run. */
const char *sage_kernels_isa(void);

/* out[r] = Σ q[j] · rows[r · stride + j] over j < len, for r < n_rows: one
 * query against many rows, the query's loads shared by several rows at a
 * time. len is a multiple of 64 (the padded row length of §9.11) and q
 * holds len bytes, zero past the dimension; every byte of q and of the rows
 * lies in [-127, 127], as sage_vectors_quantize makes them, and len < 2^17.
 * Pure function of its inputs; thread-safe. */
typedef void (*sage_dot_i8_rows_fn)(const int8_t *q, const int8_t *rows, size_t stride,
                                    size_t len, size_t n_rows, int32_t *out);

/* The row kernel for isa, "avx512vnni", "avxvnni", "avx2" or "c", or NULL
 * when this CPU (or this build) lacks it; isa NULL: the fastest this CPU
 * has. Every kernel gives the same integers. *name (name may be NULL) gets
 * the chosen ISA's name, a static string. */
sage_dot_i8_rows_fn sage_kernels_i8_rows(const char *isa, const char **name);

#endif
