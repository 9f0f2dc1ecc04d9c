/* Dot products (kernels.h). The SIMD versions are compiled with target
 * attributes, so the rest of the library keeps the baseline ISA, and are
 * chosen once by a cpuid check. The int8 row kernels (one query against
 * many rows, for the dense scan) come in four widths: AVX-512 VNNI, AVX-VNNI,
 * AVX2 and C; all give the same integers. */
#include "kernels.h"

#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#define SAGE_HAVE_AVX2 1
#endif

static float dot_f32_c(const float *a, const float *b, size_t n)
{
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++)
        s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

static int32_t dot_i8_c(const int8_t *a, const int8_t *b, size_t n)
{
    int32_t s = 0;
    for (size_t i = 0; i < n; i++)
        s += (int32_t)a[i] * (int32_t)b[i];
    return s;
}

#ifdef SAGE_HAVE_AVX2
__attribute__((target("avx2,fma")))
static float dot_f32_avx2(const float *a, const float *b, size_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    __m256 s = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
    float r = _mm_cvtss_f32(h);
    for (; i < n; i++)
        r += a[i] * b[i];
    return r;
}

/* Sign-extends 16 bytes at a time to 16-bit lanes and multiplies pairs into
 * 32-bit sums (vpmaddwd): exact, since |a·b| <= 127 · 128 per lane pair. */
__attribute__((target("avx2")))
static int32_t dot_i8_avx2(const int8_t *a, const int8_t *b, size_t n)
{
    __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i a0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(a + i)));
        __m256i b0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b + i)));
        __m256i a1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(a + i + 16)));
        __m256i b1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b + i + 16)));
        s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(a0, b0));
        s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(a1, b1));
    }
    __m256i s = _mm256_add_epi32(s0, s1);
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(1, 0, 3, 2)));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(2, 3, 0, 1)));
    int32_t r = _mm_cvtsi128_si32(h);
    for (; i < n; i++)
        r += (int32_t)a[i] * (int32_t)b[i];
    return r;
}
#endif

/* ---- one query against many int8 rows ---- */

static void i8_rows_c(const int8_t *q, const int8_t *rows, size_t stride, size_t len,
                      size_t n_rows, int32_t *out)
{
    for (size_t r = 0; r < n_rows; r++)
        out[r] = dot_i8_c(q, rows + r * stride, len);
}

#ifdef SAGE_HAVE_AVX2
/* Σ over j of |q[j]| · (r[j] · sign q[j]) = Σ q[j] · r[j]: vpmaddubsw wants
 * one unsigned side, and |q| is fixed for the whole call. Each 16-bit pair
 * sum is at most 2 · 127 · 127, below the saturation of vpmaddubsw, given
 * the [-127, 127] range kernels.h asks for. */
__attribute__((target("avx2")))
static inline __m256i madd_i8_avx2(__m256i acc, __m256i qabs, __m256i qv, __m256i rv)
{
    __m256i p = _mm256_maddubs_epi16(qabs, _mm256_sign_epi8(rv, qv));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
}

/* Four 8-lane sums into the four lanes of one 128-bit vector, in order. */
__attribute__((target("avx2")))
static inline __m128i hsum4_avx2(__m256i a0, __m256i a1, __m256i a2, __m256i a3)
{
    __m256i t = _mm256_hadd_epi32(_mm256_hadd_epi32(a0, a1), _mm256_hadd_epi32(a2, a3));
    return _mm_add_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
}

__attribute__((target("avx2")))
static int32_t hsum_avx2(__m256i a)
{
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(1, 0, 3, 2)));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(h);
}

/* The four sums of one pass to out[0], out[m], out[2m], out[3m]. */
__attribute__((target("avx2")))
static inline void store4(int32_t *out, size_t m, __m128i s)
{
    out[0] = _mm_cvtsi128_si32(s);
    out[m] = _mm_extract_epi32(s, 1);
    out[2 * m] = _mm_extract_epi32(s, 2);
    out[3 * m] = _mm_extract_epi32(s, 3);
}

/* Four rows per pass share each load of the query: rows i, i + m, i + 2m
 * and i + 3m of the call's n_rows = 4m (+ a few left to one-row passes).
 * Four places in memory far apart make four streams that the prefetchers
 * follow at once, a few pages each, where four neighbouring rows make one:
 * 15-20 % faster when the rows come from DRAM (4 KiB pages, as a mapped
 * index file has), the same from cache. */
__attribute__((target("avx2")))
static void i8_rows_avx2(const int8_t *q, const int8_t *rows, size_t stride, size_t len,
                         size_t n_rows, int32_t *out)
{
    size_t m = n_rows / 4, ms = m * stride;
    for (size_t i = 0; i < m; i++) {
        const int8_t *p = rows + i * stride;
        __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
        for (size_t j = 0; j < len; j += 32) {
            __m256i qv = _mm256_loadu_si256((const __m256i *)(q + j));
            __m256i qa = _mm256_abs_epi8(qv);
            a0 = madd_i8_avx2(a0, qa, qv, _mm256_loadu_si256((const __m256i *)(p + j)));
            a1 = madd_i8_avx2(a1, qa, qv, _mm256_loadu_si256((const __m256i *)(p + ms + j)));
            a2 = madd_i8_avx2(a2, qa, qv, _mm256_loadu_si256((const __m256i *)(p + 2 * ms + j)));
            a3 = madd_i8_avx2(a3, qa, qv, _mm256_loadu_si256((const __m256i *)(p + 3 * ms + j)));
        }
        store4(out + i, m, hsum4_avx2(a0, a1, a2, a3));
    }
    for (size_t r = 4 * m; r < n_rows; r++) {
        const int8_t *p = rows + r * stride;
        __m256i a = _mm256_setzero_si256();
        for (size_t j = 0; j < len; j += 32) {
            __m256i qv = _mm256_loadu_si256((const __m256i *)(q + j));
            a = madd_i8_avx2(a, _mm256_abs_epi8(qv), qv,
                             _mm256_loadu_si256((const __m256i *)(p + j)));
        }
        out[r] = hsum_avx2(a);
    }
}

/* VNNI's vpdpbusd multiplies unsigned by signed bytes. Flipping the top bit
 * of a row byte r gives r + 128 as unsigned, so the sum is Σ q·r + 128·Σ q,
 * and 128·Σ q, a constant of the query, is taken off at the end: one xor and
 * one vpdpbusd per 64 row bytes. The 32-bit lanes may wrap in between, but
 * the true result fits, so it comes out exact. */
__attribute__((target("avxvnni,avx2")))
static void i8_rows_avxvnni(const int8_t *q, const int8_t *rows, size_t stride, size_t len,
                            size_t n_rows, int32_t *out)
{
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    __m256i c = _mm256_setzero_si256();
    for (size_t j = 0; j < len; j += 32)
        c = _mm256_dpbusd_avx_epi32(c, flip, _mm256_loadu_si256((const __m256i *)(q + j)));
    __m128i corr = _mm_set1_epi32(hsum_avx2(c));
    size_t m = n_rows / 4, ms = m * stride;
    for (size_t i = 0; i < m; i++) {
        const int8_t *p = rows + i * stride;
        __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
        for (size_t j = 0; j < len; j += 32) {
            __m256i qv = _mm256_loadu_si256((const __m256i *)(q + j));
#define ROW_(k) _mm256_xor_si256(flip, _mm256_loadu_si256((const __m256i *)(p + (k) * ms + j)))
            a0 = _mm256_dpbusd_avx_epi32(a0, ROW_(0), qv);
            a1 = _mm256_dpbusd_avx_epi32(a1, ROW_(1), qv);
            a2 = _mm256_dpbusd_avx_epi32(a2, ROW_(2), qv);
            a3 = _mm256_dpbusd_avx_epi32(a3, ROW_(3), qv);
#undef ROW_
        }
        store4(out + i, m, _mm_sub_epi32(hsum4_avx2(a0, a1, a2, a3), corr));
    }
    for (size_t r = 4 * m; r < n_rows; r++) {
        const int8_t *p = rows + r * stride;
        __m256i a = _mm256_setzero_si256();
        for (size_t j = 0; j < len; j += 32)
            a = _mm256_dpbusd_avx_epi32(a, _mm256_xor_si256(flip,
                    _mm256_loadu_si256((const __m256i *)(p + j))),
                    _mm256_loadu_si256((const __m256i *)(q + j)));
        out[r] = hsum_avx2(a) - _mm_cvtsi128_si32(corr);
    }
}

/* The same with 64-byte vectors; each accumulator is folded to 256 bits
 * before the horizontal sums. */
__attribute__((target("avx512f,avx512bw,avx512vnni,avx2")))
static inline __m256i fold512(__m512i a)
{
    return _mm256_add_epi32(_mm512_castsi512_si256(a), _mm512_extracti64x4_epi64(a, 1));
}

__attribute__((target("avx512f,avx512bw,avx512vnni,avx2")))
static void i8_rows_avx512vnni(const int8_t *q, const int8_t *rows, size_t stride, size_t len,
                               size_t n_rows, int32_t *out)
{
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    __m512i c = _mm512_setzero_si512();
    for (size_t j = 0; j < len; j += 64)
        c = _mm512_dpbusd_epi32(c, flip, _mm512_loadu_si512(q + j));
    __m128i corr = _mm_set1_epi32(_mm512_reduce_add_epi32(c));
    size_t m = n_rows / 4, ms = m * stride;
    for (size_t i = 0; i < m; i++) {
        const int8_t *p = rows + i * stride;
        __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
        for (size_t j = 0; j < len; j += 64) {
            __m512i qv = _mm512_loadu_si512(q + j);
#define ROW_(k) _mm512_xor_si512(flip, _mm512_loadu_si512(p + (k) * ms + j))
            a0 = _mm512_dpbusd_epi32(a0, ROW_(0), qv);
            a1 = _mm512_dpbusd_epi32(a1, ROW_(1), qv);
            a2 = _mm512_dpbusd_epi32(a2, ROW_(2), qv);
            a3 = _mm512_dpbusd_epi32(a3, ROW_(3), qv);
#undef ROW_
        }
        __m128i s = hsum4_avx2(fold512(a0), fold512(a1), fold512(a2), fold512(a3));
        store4(out + i, m, _mm_sub_epi32(s, corr));
    }
    for (size_t r = 4 * m; r < n_rows; r++) {
        const int8_t *p = rows + r * stride;
        __m512i a = _mm512_setzero_si512();
        for (size_t j = 0; j < len; j += 64)
            a = _mm512_dpbusd_epi32(a, _mm512_xor_si512(flip, _mm512_loadu_si512(p + j)),
                                    _mm512_loadu_si512(q + j));
        out[r] = _mm512_reduce_add_epi32(a) - _mm_cvtsi128_si32(corr);
    }
}
#endif


static int use_avx2(void)
{
#ifdef SAGE_HAVE_AVX2
    static int cached = -1;     /* every thread computes the same value */
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v < 0) {
        __builtin_cpu_init();
        v = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    }
    return v;
#else
    return 0;
#endif
}

float sage_dot_f32(const float *a, const float *b, size_t n)
{
#ifdef SAGE_HAVE_AVX2
    if (use_avx2())
        return dot_f32_avx2(a, b, n);
#endif
    return dot_f32_c(a, b, n);
}

int32_t sage_dot_i8(const int8_t *a, const int8_t *b, size_t n)
{
#ifdef SAGE_HAVE_AVX2
    if (use_avx2())
        return dot_i8_avx2(a, b, n);
#endif
    return dot_i8_c(a, b, n);
}

const char *sage_kernels_isa(void)
{
    return use_avx2() ? "avx2" : "c";
}

/* Which row kernels this CPU can run, by the names kernels.h gives: a bit
 * per name, found once (every thread computes the same value). */
enum { HAS_C = 1, HAS_AVX2 = 2, HAS_AVXVNNI = 4, HAS_AVX512VNNI = 8 };

static int has_isas(void)
{
    static int cached = -1;
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v < 0) {
        v = HAS_C;
#ifdef SAGE_HAVE_AVX2
        if (use_avx2()) {
            v |= HAS_AVX2;
            /* CPUID.(7,1):EAX bit 4; clang's __builtin_cpu_supports does not
             * know the name */
            unsigned a, b, c, d;
            if (__get_cpuid_count(7, 1, &a, &b, &c, &d) && (a >> 4 & 1))
                v |= HAS_AVXVNNI;
            if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                __builtin_cpu_supports("avx512vnni"))
                v |= HAS_AVX512VNNI;
        }
#endif
        __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    }
    return v;
}

static const struct {
    const char *isa;
    int bit;
    sage_dot_i8_rows_fn fn;
} rows_kernels[] = {    /* best first */
#ifdef SAGE_HAVE_AVX2
    { "avx512vnni", HAS_AVX512VNNI, i8_rows_avx512vnni },
    { "avxvnni", HAS_AVXVNNI, i8_rows_avxvnni },
    { "avx2", HAS_AVX2, i8_rows_avx2 },
#endif
    { "c", HAS_C, i8_rows_c },
};

sage_dot_i8_rows_fn sage_kernels_i8_rows(const char *isa, const char **name)
{
    for (size_t i = 0; i < sizeof(rows_kernels) / sizeof(rows_kernels[0]); i++) {
        if ((isa && strcmp(isa, rows_kernels[i].isa) != 0) || !(has_isas() & rows_kernels[i].bit))
            continue;
        if (name)
            *name = rows_kernels[i].isa;
        return rows_kernels[i].fn;
    }
    return NULL;
}
