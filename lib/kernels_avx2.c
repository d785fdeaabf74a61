/* kernels_avx2.c: the plain C kernels compiled for AVX2 + FMA + F16C (CPUs without
 * AVX-512), chosen at run time, with q8's and q4's dot products in intrinsics: the
 * compiler's vectors of the plain C ones read q8 at 7 GB/s and q4 at 4 (2 threads of the
 * Xeon with AMX, QVL_CPU=avx2 bench/matmul -D), slower than BF16. */
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c")
#pragma GCC optimize("tree-vectorize")
#endif

#include <immintrin.h>
#include <stdint.h>

#include "kernels.h"

#define AVX2_PREFETCH 4096 /* bytes of a row fetched ahead: rows are a page or less */

static float
hsum256(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));

	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

/* 16 weights as int32 (lo, hi: their halves of 8) times x, summed into t. */
static inline __m256
madd16(__m128i w, const float *x, __m256 t)
{
	t = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(w)), _mm256_loadu_ps(x), t);
	return _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(w, 8))),
	    _mm256_loadu_ps(x + 8), t);
}

/* Whole blocks in vectors, each block's sum scaled in the lanes; the partial last block
 * one value at a time. */
static float
avx2_dot_q8(const int8_t *q, const uint16_t *scales, const float *x, int64_t cols)
{
	__m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
	int64_t whole = cols / QVL_QBLOCK;
	float tail = 0;

	for (int64_t b = 0; b < whole; b++) {
		const int8_t *qb = q + b * QVL_QBLOCK;
		const float *xb = x + b * QVL_QBLOCK;
		__m256 d = _mm256_set1_ps(_cvtsh_ss(scales[b]));
		if (b % 2 == 0)
			_mm_prefetch((const char *)qb + AVX2_PREFETCH, _MM_HINT_T0);
		__m256 t0 = madd16(_mm_loadu_si128((const __m128i *)qb), xb, _mm256_setzero_ps());
		__m256 t1 = madd16(_mm_loadu_si128((const __m128i *)(qb + 16)), xb + 16,
		    _mm256_setzero_ps());
		acc0 = _mm256_fmadd_ps(d, t0, acc0);
		acc1 = _mm256_fmadd_ps(d, t1, acc1);
	}
	for (int64_t c = whole * QVL_QBLOCK; c < cols; c++)
		tail += (float)q[c] * x[c];
	if (whole * QVL_QBLOCK < cols)
		tail *= _cvtsh_ss(scales[whole]);
	return hsum256(_mm256_add_ps(acc0, acc1)) + tail;
}

/* A q4 block's 16 bytes hold its first 16 weights in their low nibbles and its last 16 in
 * the high ones; each block adds its min times its sum of x. */
static float
avx2_dot_q4(const uint8_t *q, const uint16_t *scales, const uint16_t *mins, const float *x,
    const float *xsum, int64_t cols)
{
	const __m128i low = _mm_set1_epi8(15);
	__m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
	int64_t whole = cols / QVL_QBLOCK, nb = qvl_qblocks(cols);
	float tail = 0, min_sum = 0;

	for (int64_t b = 0; b < whole; b++) {
		const uint8_t *blk = q + b * (QVL_QBLOCK / 2);
		const float *xb = x + b * QVL_QBLOCK;
		__m256 d = _mm256_set1_ps(_cvtsh_ss(scales[b]));
		__m128i v = _mm_loadu_si128((const __m128i *)blk);
		if (b % 4 == 0)
			_mm_prefetch((const char *)blk + AVX2_PREFETCH, _MM_HINT_T0);
		/* nibbles are 0..15: as int8 they are their own sign extension */
		__m256 t0 = madd16(_mm_and_si128(v, low), xb, _mm256_setzero_ps());
		__m256 t1 = madd16(_mm_and_si128(_mm_srli_epi16(v, 4), low), xb + 16,
		    _mm256_setzero_ps());
		acc0 = _mm256_fmadd_ps(d, t0, acc0);
		acc1 = _mm256_fmadd_ps(d, t1, acc1);
	}
	if (whole < nb) {
		const uint8_t *blk = q + whole * (QVL_QBLOCK / 2);
		int64_t c0 = whole * QVL_QBLOCK;
		for (int64_t c = 0; c0 + c < cols; c++)
			tail += (float)(c < 16 ? blk[c] & 15 : blk[c - 16] >> 4) * x[c0 + c];
		tail *= _cvtsh_ss(scales[whole]);
	}
	for (int64_t b = 0; b < nb; b++)
		min_sum += _cvtsh_ss(mins[b]) * xsum[b];
	return hsum256(_mm256_add_ps(acc0, acc1)) + tail + min_sum;
}

#define DOT_Q8 avx2_dot_q8
#define DOT_Q4 avx2_dot_q4
#define KERNELS_TABLE qvl_kernels_avx2
#include "kernels_c.h"

#if defined(__clang__)
#pragma clang attribute pop
#endif
