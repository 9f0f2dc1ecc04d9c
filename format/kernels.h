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

#endif
