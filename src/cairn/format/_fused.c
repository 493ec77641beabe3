/* One pass over a float32 array for `cairn inspect --stats`: sum, sum of squares, min, max and the number
 * of zeros, read once from memory. numpy needs five passes for the same figures, so over a memory-mapped
 * tensor this is what keeps --stats close to the speed of reading the bytes.
 *
 * Sums are accumulated in float32 lanes inside blocks of BLOCK elements (each lane adds BLOCK/32 values)
 * and in double across blocks, like the numpy path's float32 BLAS rows. A NaN, an Inf or a float32
 * overflow makes the sum or the sum of squares non-finite; the caller then redoes the chunk with numpy,
 * which counts NaN/Inf and widens to float64. BF16 (as uint16) and float16 are widened in registers, so
 * they too are read once. AVX2+FMA+F16C is used when the CPU has it, a portable loop otherwise (float16
 * then goes to numpy). On a CPU with AVX-512 BF16 (Zen 4, Sapphire Rapids and later) BF16 never becomes
 * float32 at all: see avx512_bf16. The GIL is released while the loop runs. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define BLOCK 4096

typedef struct {
    double s, ss;
    float lo, hi;
    int64_t zeros;
} partial;

static inline float load_f32(const void *x, size_t i) { return ((const float *)x)[i]; }

static inline float load_bf16(const void *x, size_t i) {
    /* a BF16 value is the upper half of the float32 with the same bits */
    uint32_t bits = (uint32_t)((const uint16_t *)x)[i] << 16;
    float v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

/* Elements [i, n) one at a time, summed in double: the tail after the vector blocks. */
static inline void scalar_tail(const void *x, size_t i, size_t n, partial *p, float (*load)(const void *, size_t)) {
    double ts = 0, tq = 0;
    for (; i < n; i++) {
        float v = load(x, i);
        ts += v;
        tq += (double)v * v;
        p->lo = v < p->lo ? v : p->lo;
        p->hi = v > p->hi ? v : p->hi;
        p->zeros += v == 0.0f;
    }
    p->s += ts;
    p->ss += tq;
}

/* The float min and max of BF16 values from the lanes of their bit patterns' signed max (m), unsigned
 * max (hi) and unsigned min (lo): see avx512_bf16 for why these three give both. */
static void bf16_extremes(const int16_t *m, const uint16_t *hi, const uint16_t *lo, int lanes, partial *p) {
    int16_t M = INT16_MIN;
    uint16_t U = 0, L = 0xFFFF;
    for (int k = 0; k < lanes; k++) {
        M = m[k] > M ? m[k] : M;
        U = hi[k] > U ? hi[k] : U;
        L = lo[k] < L ? lo[k] : L;
    }
    uint32_t top = (uint32_t)(M >= 0 ? (uint16_t)M : L) << 16, bottom = (uint32_t)(U & 0x8000 ? U : L) << 16;
    float t, b;
    memcpy(&t, &top, sizeof t);
    memcpy(&b, &bottom, sizeof b);
    p->lo = b < p->lo ? b : p->lo;
    p->hi = t > p->hi ? t : p->hi;
}

#define PORTABLE_LOOP(NAME, LOAD)                                                                         \
    static void NAME(const void *x, size_t n, partial *p) {                                               \
        size_t i = 0;                                                                                     \
        while (i < n) {                                                                                   \
            size_t end = i + BLOCK < n ? i + BLOCK : n;                                                   \
            float s[8] = {0}, q[8] = {0};                                                                 \
            for (; i < end; i++) {                                                                        \
                float v = LOAD(x, i);                                                                     \
                s[i % 8] += v;                                                                            \
                q[i % 8] += v * v;                                                                        \
                p->lo = v < p->lo ? v : p->lo;                                                            \
                p->hi = v > p->hi ? v : p->hi;                                                            \
                p->zeros += v == 0.0f;                                                                    \
            }                                                                                             \
            for (int k = 0; k < 8; k++) {                                                                 \
                p->s += s[k];                                                                             \
                p->ss += q[k];                                                                            \
            }                                                                                             \
        }                                                                                                 \
    }

PORTABLE_LOOP(portable_f32, load_f32)
PORTABLE_LOOP(portable_bf16, load_bf16)

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#define HAVE_AVX2_PATH 1

static int cpu_has_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
}

#define TARGET __attribute__((target("avx2,fma,f16c")))

/* Each LOAD32 turns the 32 values at x[i] into four vectors of 8 float32 (in any order: the statistics
 * do not depend on it). */
#define LOAD32_F32(x, i, a, b, c, d)                                                                      \
    const float *px_ = (const float *)(x) + (i);                                                          \
    __m256 a = _mm256_loadu_ps(px_), b = _mm256_loadu_ps(px_ + 8);                                        \
    __m256 c = _mm256_loadu_ps(px_ + 16), d = _mm256_loadu_ps(px_ + 24);

#define LOAD32_F16(x, i, a, b, c, d)                                                                      \
    const uint16_t *px_ = (const uint16_t *)(x) + (i);                                                    \
    __m256 a = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)px_));                                    \
    __m256 b = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(px_ + 8)));                              \
    __m256 c = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(px_ + 16)));                             \
    __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(px_ + 24)));

TARGET static inline float load1_f16(const void *x, size_t i) {
    return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(((const uint16_t *)x)[i])));
}

#define AVX2_LOOP(NAME, LOAD32, LOAD1)                                                                    \
    TARGET static void NAME(const void *x, size_t n, partial *p) {                                        \
        const __m256 zero = _mm256_setzero_ps();                                                          \
        __m256 vlo = _mm256_set1_ps(INFINITY), vhi = _mm256_set1_ps(-INFINITY);                           \
        size_t i = 0, body = n - n % 32;                                                                  \
        while (i < body) {                                                                                \
            size_t end = i + BLOCK < body ? i + BLOCK : body;                                             \
            __m256 s0 = zero, s1 = zero, s2 = zero, s3 = zero, q0 = zero, q1 = zero, q2 = zero, q3 = zero; \
            __m256i z = _mm256_setzero_si256();                                                           \
            for (; i < end; i += 32) {                                                                    \
                LOAD32(x, i, a, b, c, d)                                                                  \
                s0 = _mm256_add_ps(s0, a);                                                                \
                s1 = _mm256_add_ps(s1, b);                                                                \
                s2 = _mm256_add_ps(s2, c);                                                                \
                s3 = _mm256_add_ps(s3, d);                                                                \
                q0 = _mm256_fmadd_ps(a, a, q0);                                                           \
                q1 = _mm256_fmadd_ps(b, b, q1);                                                           \
                q2 = _mm256_fmadd_ps(c, c, q2);                                                           \
                q3 = _mm256_fmadd_ps(d, d, q3);                                                           \
                vlo = _mm256_min_ps(vlo, _mm256_min_ps(_mm256_min_ps(a, b), _mm256_min_ps(c, d)));        \
                vhi = _mm256_max_ps(vhi, _mm256_max_ps(_mm256_max_ps(a, b), _mm256_max_ps(c, d)));        \
                /* a true compare is -1 in every lane: subtracting the masks counts zeros */              \
                __m256i za = _mm256_castps_si256(_mm256_cmp_ps(a, zero, _CMP_EQ_OQ));                     \
                __m256i zb = _mm256_castps_si256(_mm256_cmp_ps(b, zero, _CMP_EQ_OQ));                     \
                __m256i zc = _mm256_castps_si256(_mm256_cmp_ps(c, zero, _CMP_EQ_OQ));                     \
                __m256i zd = _mm256_castps_si256(_mm256_cmp_ps(d, zero, _CMP_EQ_OQ));                     \
                z = _mm256_sub_epi32(z, _mm256_add_epi32(_mm256_add_epi32(za, zb), _mm256_add_epi32(zc, zd))); \
            }                                                                                             \
            float fs[8], fq[8];                                                                           \
            int32_t iz[8];                                                                                \
            _mm256_storeu_ps(fs, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));            \
            _mm256_storeu_ps(fq, _mm256_add_ps(_mm256_add_ps(q0, q1), _mm256_add_ps(q2, q3)));            \
            _mm256_storeu_si256((__m256i *)iz, z);                                                        \
            for (int k = 0; k < 8; k++) {                                                                 \
                p->s += fs[k];                                                                            \
                p->ss += fq[k];                                                                           \
                p->zeros += iz[k];                                                                        \
            }                                                                                             \
        }                                                                                                 \
        float flo[8], fhi[8];                                                                             \
        _mm256_storeu_ps(flo, vlo);                                                                       \
        _mm256_storeu_ps(fhi, vhi);                                                                       \
        for (int k = 0; k < 8; k++) {                                                                     \
            p->lo = flo[k] < p->lo ? flo[k] : p->lo;                                                      \
            p->hi = fhi[k] > p->hi ? fhi[k] : p->hi;                                                      \
        }                                                                                                 \
        scalar_tail(x, i, n, p, LOAD1);                                                                   \
    }

AVX2_LOOP(avx2_f32, LOAD32_F32, load_f32)

/* BF16 with AVX2: widened in registers for the sums (a shift gives the even values of a 256-bit load,
 * a mask the odd ones), but min, max and zeros taken on the raw 16-bit patterns as in avx512_bf16, 16
 * values per instruction instead of 8. Zeros are counted in 16-bit lanes (at most BLOCK/16 per block)
 * and widened once per block. */
TARGET static void avx2_bf16(const void *x, size_t n, partial *p) {
    const uint16_t *u = (const uint16_t *)x;
    const __m256 fzero = _mm256_setzero_ps();
    const __m256i zero = _mm256_setzero_si256(), high = _mm256_set1_epi32((int)0xFFFF0000u);
    const __m256i magnitude = _mm256_set1_epi16(0x7FFF), ones = _mm256_set1_epi16(1);
    __m256i smax = _mm256_set1_epi16(INT16_MIN), umax = zero, umin = _mm256_set1_epi16(-1);
    size_t i = 0, body = n - n % 32;
    while (i < body) {
        size_t end = i + BLOCK < body ? i + BLOCK : body;
        __m256 s0 = fzero, s1 = fzero, s2 = fzero, s3 = fzero, q0 = fzero, q1 = fzero, q2 = fzero, q3 = fzero;
        __m256i z = zero;
        for (; i < end; i += 32) {
            __m256i v0 = _mm256_loadu_si256((const __m256i *)(u + i));
            __m256i v1 = _mm256_loadu_si256((const __m256i *)(u + i + 16));
            __m256 a = _mm256_castsi256_ps(_mm256_slli_epi32(v0, 16)), b = _mm256_castsi256_ps(_mm256_and_si256(v0, high));
            __m256 c = _mm256_castsi256_ps(_mm256_slli_epi32(v1, 16)), d = _mm256_castsi256_ps(_mm256_and_si256(v1, high));
            s0 = _mm256_add_ps(s0, a);
            s1 = _mm256_add_ps(s1, b);
            s2 = _mm256_add_ps(s2, c);
            s3 = _mm256_add_ps(s3, d);
            q0 = _mm256_fmadd_ps(a, a, q0);
            q1 = _mm256_fmadd_ps(b, b, q1);
            q2 = _mm256_fmadd_ps(c, c, q2);
            q3 = _mm256_fmadd_ps(d, d, q3);
            smax = _mm256_max_epi16(smax, _mm256_max_epi16(v0, v1));
            umax = _mm256_max_epu16(umax, _mm256_max_epu16(v0, v1));
            umin = _mm256_min_epu16(umin, _mm256_min_epu16(v0, v1));
            __m256i z0 = _mm256_cmpeq_epi16(_mm256_and_si256(v0, magnitude), zero);
            __m256i z1 = _mm256_cmpeq_epi16(_mm256_and_si256(v1, magnitude), zero);
            z = _mm256_sub_epi16(z, _mm256_add_epi16(z0, z1));
        }
        float fs[8], fq[8];
        int32_t iz[8];
        _mm256_storeu_ps(fs, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
        _mm256_storeu_ps(fq, _mm256_add_ps(_mm256_add_ps(q0, q1), _mm256_add_ps(q2, q3)));
        _mm256_storeu_si256((__m256i *)iz, _mm256_madd_epi16(z, ones));
        for (int k = 0; k < 8; k++) {
            p->s += fs[k];
            p->ss += fq[k];
            p->zeros += iz[k];
        }
    }
    if (body > 0) {
        int16_t m[16];
        uint16_t hi[16], lo[16];
        _mm256_storeu_si256((__m256i *)m, smax);
        _mm256_storeu_si256((__m256i *)hi, umax);
        _mm256_storeu_si256((__m256i *)lo, umin);
        bf16_extremes(m, hi, lo, 16, p);
    }
    scalar_tail(x, i, n, p, load_bf16);
}
AVX2_LOOP(avx2_f16, LOAD32_F16, load1_f16)

static int cpu_has_avx512bf16(void) {
    __builtin_cpu_init();
    return cpu_has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16");
}

#define TARGET512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512bf16")))

/* BF16 with AVX-512 BF16: 32 values per register, about half the instructions of the AVX2 loop.
 *
 * - Sums: VDPBF16PS adds the products of pairs of BF16 to float32 lanes. Against a vector of BF16 ones
 *   it sums 32 values, against the values themselves it sums their squares; no widening. The instruction
 *   treats subnormal inputs (|v| < 1.2e-38) as zero, so the caller sends chunks whose largest magnitude
 *   is that small to numpy.
 * - Min and max on the raw 16-bit patterns: as signed integers, non-negative BF16 values order like
 *   their floats, and as unsigned integers every negative value is above every non-negative one, with
 *   larger magnitudes higher. So with M = the signed max, U = the unsigned max and L = the unsigned min:
 *   the largest float is M when M >= 0 (some value is non-negative), else L (all are negative, and L has
 *   the smallest magnitude); the smallest float is U when U has its sign bit (some value is negative),
 *   else L. NaN patterns would be wrong here, but a NaN also makes the sum NaN and numpy redoes the chunk.
 * - Zeros: a test of the 15 bits below the sign gives a mask of the zeros (+0 and -0); its popcount is
 *   added on the integer side. */
TARGET512 static void avx512_bf16(const void *x, size_t n, partial *p) {
    const uint16_t *u = (const uint16_t *)x;
    const __m512bh ones = (__m512bh)_mm512_set1_epi16(0x3F80);
    const __m512i magnitude = _mm512_set1_epi16(0x7FFF);
    __m512i smax = _mm512_set1_epi16(INT16_MIN), umax = _mm512_setzero_si512(), umin = _mm512_set1_epi16(-1);
    size_t i = 0, body = n - n % 64;
    int64_t zeros = 0;
    while (i < body) {
        size_t end = i + BLOCK < body ? i + BLOCK : body;
        __m512 s0 = _mm512_setzero_ps(), s1 = s0, q0 = s0, q1 = s0;
        for (; i < end; i += 64) {
            __m512i v0 = _mm512_loadu_si512((const void *)(u + i));
            __m512i v1 = _mm512_loadu_si512((const void *)(u + i + 32));
            s0 = _mm512_dpbf16_ps(s0, (__m512bh)v0, ones);
            s1 = _mm512_dpbf16_ps(s1, (__m512bh)v1, ones);
            q0 = _mm512_dpbf16_ps(q0, (__m512bh)v0, (__m512bh)v0);
            q1 = _mm512_dpbf16_ps(q1, (__m512bh)v1, (__m512bh)v1);
            smax = _mm512_max_epi16(smax, _mm512_max_epi16(v0, v1));
            umax = _mm512_max_epu16(umax, _mm512_max_epu16(v0, v1));
            umin = _mm512_min_epu16(umin, _mm512_min_epu16(v0, v1));
            zeros += __builtin_popcount(_mm512_testn_epi16_mask(v0, magnitude));
            zeros += __builtin_popcount(_mm512_testn_epi16_mask(v1, magnitude));
        }
        float fs[16], fq[16];
        _mm512_storeu_ps(fs, _mm512_add_ps(s0, s1));
        _mm512_storeu_ps(fq, _mm512_add_ps(q0, q1));
        for (int k = 0; k < 16; k++) {
            p->s += fs[k];
            p->ss += fq[k];
        }
    }
    p->zeros += zeros;
    if (body > 0) {
        int16_t m[32];
        uint16_t hi[32], lo[32];
        _mm512_storeu_si512((void *)m, smax);
        _mm512_storeu_si512((void *)hi, umax);
        _mm512_storeu_si512((void *)lo, umin);
        bf16_extremes(m, hi, lo, 32, p);
    }
    scalar_tail(x, i, n, p, load_bf16);
}
/* float32 and float16 with AVX-512: the AVX2 loop on 16-lane registers, zeros counted from a compare mask */
#define LOAD64_F32(x, i, a, b, c, d)                                                                      \
    const float *px_ = (const float *)(x) + (i);                                                          \
    __m512 a = _mm512_loadu_ps(px_), b = _mm512_loadu_ps(px_ + 16);                                       \
    __m512 c = _mm512_loadu_ps(px_ + 32), d = _mm512_loadu_ps(px_ + 48);

#define LOAD64_F16(x, i, a, b, c, d)                                                                      \
    const uint16_t *px_ = (const uint16_t *)(x) + (i);                                                    \
    __m512 a = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)px_));                                 \
    __m512 b = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(px_ + 16)));                          \
    __m512 c = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(px_ + 32)));                          \
    __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(px_ + 48)));

#define AVX512_LOOP(NAME, LOAD64, LOAD1)                                                                  \
    TARGET512 static void NAME(const void *x, size_t n, partial *p) {                                     \
        const __m512 zero = _mm512_setzero_ps();                                                          \
        __m512 vlo = _mm512_set1_ps(INFINITY), vhi = _mm512_set1_ps(-INFINITY);                           \
        size_t i = 0, body = n - n % 64;                                                                  \
        int64_t zeros = 0;                                                                                \
        while (i < body) {                                                                                \
            size_t end = i + BLOCK < body ? i + BLOCK : body;                                             \
            __m512 s0 = zero, s1 = zero, s2 = zero, s3 = zero, q0 = zero, q1 = zero, q2 = zero, q3 = zero; \
            for (; i < end; i += 64) {                                                                    \
                LOAD64(x, i, a, b, c, d)                                                                  \
                s0 = _mm512_add_ps(s0, a);                                                                \
                s1 = _mm512_add_ps(s1, b);                                                                \
                s2 = _mm512_add_ps(s2, c);                                                                \
                s3 = _mm512_add_ps(s3, d);                                                                \
                q0 = _mm512_fmadd_ps(a, a, q0);                                                           \
                q1 = _mm512_fmadd_ps(b, b, q1);                                                           \
                q2 = _mm512_fmadd_ps(c, c, q2);                                                           \
                q3 = _mm512_fmadd_ps(d, d, q3);                                                           \
                vlo = _mm512_min_ps(vlo, _mm512_min_ps(_mm512_min_ps(a, b), _mm512_min_ps(c, d)));        \
                vhi = _mm512_max_ps(vhi, _mm512_max_ps(_mm512_max_ps(a, b), _mm512_max_ps(c, d)));        \
                zeros += __builtin_popcount(_mm512_cmp_ps_mask(a, zero, _CMP_EQ_OQ));                     \
                zeros += __builtin_popcount(_mm512_cmp_ps_mask(b, zero, _CMP_EQ_OQ));                     \
                zeros += __builtin_popcount(_mm512_cmp_ps_mask(c, zero, _CMP_EQ_OQ));                     \
                zeros += __builtin_popcount(_mm512_cmp_ps_mask(d, zero, _CMP_EQ_OQ));                     \
            }                                                                                             \
            float fs[16], fq[16];                                                                         \
            _mm512_storeu_ps(fs, _mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));            \
            _mm512_storeu_ps(fq, _mm512_add_ps(_mm512_add_ps(q0, q1), _mm512_add_ps(q2, q3)));            \
            for (int k = 0; k < 16; k++) {                                                                \
                p->s += fs[k];                                                                            \
                p->ss += fq[k];                                                                           \
            }                                                                                             \
        }                                                                                                 \
        p->zeros += zeros;                                                                                \
        float flo[16], fhi[16];                                                                           \
        _mm512_storeu_ps(flo, vlo);                                                                       \
        _mm512_storeu_ps(fhi, vhi);                                                                       \
        for (int k = 0; k < 16; k++) {                                                                    \
            p->lo = flo[k] < p->lo ? flo[k] : p->lo;                                                      \
            p->hi = fhi[k] > p->hi ? fhi[k] : p->hi;                                                      \
        }                                                                                                 \
        scalar_tail(x, i, n, p, LOAD1);                                                                   \
    }

AVX512_LOOP(avx512_f32, LOAD64_F32, load_f32)
AVX512_LOOP(avx512_f16, LOAD64_F16, load1_f16)

#endif

/* 0: portable loops; 1: AVX2+FMA+F16C; 2: that and AVX-512 BF16 for BF16 */
static int level = 0;
static const char *const LEVELS[] = {"portable", "avx2", "avx512bf16"};

typedef void (*loop_fn)(const void *, size_t, partial *);

/* (sum, sum of squares, min, max, zeros) of a C-contiguous buffer whose items are `itemsize` bytes with
 * one of the struct formats `formats` (NULL-terminated), read by `loop`. */
static PyObject *run(PyObject *arg, Py_ssize_t itemsize, const char *const *formats, loop_fn loop) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return NULL;
    int ok = 0;
    for (const char *const *f = formats; *f != NULL && view.format != NULL; f++) ok = ok || strcmp(view.format, *f) == 0;
    if (view.itemsize != itemsize || !ok) {
        PyBuffer_Release(&view);
        PyErr_Format(PyExc_TypeError, "need a C-contiguous buffer of native %s", formats[0]);
        return NULL;
    }
    partial p = {0.0, 0.0, INFINITY, -INFINITY, 0};
    size_t n = (size_t)(view.len / itemsize);
    const void *x = view.buf;
    Py_BEGIN_ALLOW_THREADS
    loop(x, n, &p);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    return Py_BuildValue("(ddddL)", p.s, p.ss, (double)p.lo, (double)p.hi, (long long)p.zeros);
}

#if PY_LITTLE_ENDIAN
#define LE(fmt) "<" fmt,
#else
#define LE(fmt)
#endif

static const char *const F32[] = {"f", "=f", "@f", LE("f") NULL};
static const char *const U16[] = {"H", "=H", "@H", LE("H") NULL};
static const char *const F16[] = {"e", "=e", "@e", LE("e") NULL};

static PyObject *f32_partial(PyObject *self, PyObject *arg) {
    (void)self;
#ifdef HAVE_AVX2_PATH
    if (level >= 2) return run(arg, 4, F32, avx512_f32);
    if (level >= 1) return run(arg, 4, F32, avx2_f32);
#endif
    return run(arg, 4, F32, portable_f32);
}

static PyObject *bf16_partial(PyObject *self, PyObject *arg) {
    (void)self;
#ifdef HAVE_AVX2_PATH
    if (level >= 2) return run(arg, 2, U16, avx512_bf16);
    if (level >= 1) return run(arg, 2, U16, avx2_bf16);
#endif
    return run(arg, 2, U16, portable_bf16);
}

static PyObject *f16_partial(PyObject *self, PyObject *arg) {
    (void)self;
#ifdef HAVE_AVX2_PATH
    if (level >= 2) return run(arg, 2, F16, avx512_f16);
    if (level >= 1) return run(arg, 2, F16, avx2_f16);
#endif
    (void)arg;
    PyErr_SetString(PyExc_NotImplementedError, "float16 needs the AVX2/F16C loop");
    return NULL;
}

static int best_level(void) {
#ifdef HAVE_AVX2_PATH
    if (cpu_has_avx512bf16()) return 2;
    if (cpu_has_avx2()) return 1;
#endif
    return 0;
}

static PyObject *simd(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    return PyUnicode_FromString(LEVELS[level]);
}

static PyObject *set_simd(PyObject *self, PyObject *arg) {
    (void)self;
    const char *want = PyUnicode_AsUTF8(arg);
    if (want == NULL) return NULL;
    int asked = -1;
    for (int k = 0; k < 3; k++) asked = strcmp(want, LEVELS[k]) == 0 ? k : asked;
    if (asked < 0) {
        PyErr_Format(PyExc_ValueError, "unknown loop %R: portable, avx2 or avx512bf16", arg);
        return NULL;
    }
    int best = best_level();
    level = asked < best ? asked : best;
    return simd(self, NULL);
}

static PyMethodDef methods[] = {
    {"f32_partial", f32_partial, METH_O, "(sum, sum of squares, min, max, zeros) of a float32 buffer"},
    {"bf16_partial", bf16_partial, METH_O, "the same of BF16 values given as a uint16 buffer"},
    {"f16_partial", f16_partial, METH_O, "the same of a float16 buffer (AVX2/F16C loop only)"},
    {"simd", simd, METH_NOARGS, "the loops in use: 'avx512bf16', 'avx2' or 'portable'"},
    {"set_simd", set_simd, METH_O, "use at most these loops (a name simd() returns); the CPU may allow less"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fused", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__fused(void) {
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    level = best_level();
    return m;
}
