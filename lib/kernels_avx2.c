/* kernels_avx2.c: the plain C kernels compiled for AVX2 + FMA + F16C (CPUs without
 * AVX-512), chosen at run time, with rows of their own for q8 and q4.
 *
 * q8 and q4 take x coded as int16 per block (qvl_kern_x16, as q8 on AVX-512 VNNI): a
 * block of 32 weights is two widenings to int16 and two vpmaddwd (exact int32 sums of pairs
 * of products), one conversion and one FMA with the product of the two steps.  bench/matmul
 * -D, 2 threads of the Xeon with AMX under QVL_CPU=avx2 (29 GB/s streaming): q4 reads
 * 18.1-18.3 GB/s, q8 20.6-20.9; widening each weight to float32 instead, q4 was bound by its
 * arithmetic at 13.4-13.6 (q8 the same), and the compiler's vectors of the plain C loops
 * read them at 7 and 4. */
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c")
#pragma GCC optimize("tree-vectorize")
#endif

#include <immintrin.h>
#include <stdint.h>

#include "kernels_c.h"

#define AVX2_PREFETCH 4096 /* bytes of a row fetched ahead: rows are a page or less */

static float
hsum256(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));

	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

/* A block's 32 weights as int16 (w0: the first 16, w1: the last) times its codes of x,
 * scaled by the product of the steps d, into acc. */
static inline __m256
block_madd(__m256i w0, __m256i w1, const int16_t *xq, float d, __m256 acc)
{
	__m256i s = _mm256_add_epi32(
	    _mm256_madd_epi16(w0, _mm256_loadu_si256((const __m256i *)xq)),
	    _mm256_madd_epi16(w1, _mm256_loadu_si256((const __m256i *)(xq + 16))));

	return _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(d), acc);
}

/* The products of the weights' steps (scales, F16) and x's (dx) of n <= STEP_CHUNK blocks,
 * 8 at a time, so that a block's costs one broadcast from L1. */
#define STEP_CHUNK 64

static void
step_products(const uint16_t *scales, const float *dx, int64_t n, float *out)
{
	int64_t b = 0;

	for (; b + 8 <= n; b += 8)
		_mm256_storeu_ps(out + b, _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(
		    (const __m128i *)(scales + b))), _mm256_loadu_ps(dx + b)));
	for (; b < n; b++)
		out[b] = _cvtsh_ss(scales[b]) * dx[b];
}

/* xp: x's steps (nb), then its codes.  Even and odd blocks sum apart (two chains of FMAs);
 * a short last block, which the row's end cuts, one weight at a time. */
static float
avx2_dot_q8(const int8_t *q, const uint16_t *scales, const float *xp, int64_t nb,
    int64_t cols)
{
	const int16_t *xq = (const int16_t *)(xp + nb);
	__m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
	int64_t whole = cols / QVL_QBLOCK;
	float d[STEP_CHUNK], tail = 0;

	for (int64_t b0 = 0; b0 < whole; b0 += STEP_CHUNK) {
		int64_t n = whole - b0 < STEP_CHUNK ? whole - b0 : STEP_CHUNK;
		step_products(scales + b0, xp + b0, n, d);
		for (int64_t j = 0; j < n; j++) {
			const int8_t *qb = q + (b0 + j) * QVL_QBLOCK;
			if (j % 2 == 0)
				_mm_prefetch((const char *)qb + AVX2_PREFETCH, _MM_HINT_T0);
			acc[j & 1] = block_madd(
			    _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)qb)),
			    _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(qb + 16))),
			    xq + (b0 + j) * QVL_QBLOCK, d[j], acc[j & 1]);
		}
	}
	if (whole < nb) {
		int32_t s = 0;
		for (int64_t c = whole * QVL_QBLOCK; c < cols; c++)
			s += q[c] * xq[c];
		tail = (float)s * (_cvtsh_ss(scales[whole]) * xp[whole]);
	}
	return hsum256(_mm256_add_ps(acc[0], acc[1])) + tail;
}

/* A q4 block's 16 bytes hold its first 16 weights in their low nibbles and its last 16 in
 * the high ones; rows are whole blocks (the last padded, its codes of x zero), so every
 * block goes in vectors.  Each block adds its min times its sum of x (after the codes). */
static float
avx2_dot_q4(const uint8_t *q, const uint16_t *scales, const uint16_t *mins, const float *xp,
    int64_t nb)
{
	const int16_t *xq = (const int16_t *)(xp + nb);
	const float *xsum = xp + QVL_X16_FLOATS(nb);
	const __m128i low = _mm_set1_epi8(15);
	__m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
	float d[STEP_CHUNK], min_sum = 0;

	for (int64_t b0 = 0; b0 < nb; b0 += STEP_CHUNK) {
		int64_t n = nb - b0 < STEP_CHUNK ? nb - b0 : STEP_CHUNK;
		step_products(scales + b0, xp + b0, n, d);
		for (int64_t j = 0; j < n; j++) {
			const uint8_t *blk = q + (b0 + j) * (QVL_QBLOCK / 2);
			__m128i v = _mm_loadu_si128((const __m128i *)blk);
			if (j % 4 == 0)
				_mm_prefetch((const char *)blk + AVX2_PREFETCH, _MM_HINT_T0);
			acc[j & 1] = block_madd(_mm256_cvtepu8_epi16(_mm_and_si128(v, low)),
			    _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(v, 4), low)),
			    xq + (b0 + j) * QVL_QBLOCK, d[j], acc[j & 1]);
		}
	}
	for (int64_t b = 0; b < nb; b++)
		min_sum += _cvtsh_ss(mins[b]) * xsum[b];
	return hsum256(_mm256_add_ps(acc[0], acc[1])) + min_sum;
}

static int64_t
avx2_prep_floats(const qvl_matrix *w)
{
	int64_t nb = qvl_qblocks(w->cols);

	switch (w->dtype) {
	case QVL_I8:
		return QVL_X16_FLOATS(nb);
	case QVL_U8:
		return QVL_X16_FLOATS(nb) + nb;
	default:
		return 0;
	}
}

static void
avx2_prep(const qvl_matrix *w, const float *x, float *xp)
{
	qvl_kern_x16(x, w->cols, xp);
	if (w->dtype == QVL_U8)
		qvl_kern_block_sums(x, w->cols, xp + QVL_X16_FLOATS(qvl_qblocks(w->cols)));
}

static void
avx2_rows(const qvl_matrix *w, int64_t r0, int64_t r1, const float *x, int64_t ldx, int n,
    const float *xp, float *y, int64_t ldy)
{
	int64_t cols = w->cols, nb = qvl_qblocks(cols), per = avx2_prep_floats(w);
	const uint16_t *scales = w->scales;

	/* without memory for the codes, q8 reads x as it is (q4 never comes here so) */
	if (xp == NULL || (w->dtype != QVL_I8 && w->dtype != QVL_U8)) {
		generic_rows(w, r0, r1, x, ldx, n, xp, y, ldy);
		return;
	}
	for (int64_t r = r0; r < r1; r++)
		for (int i = 0; i < n; i++)
			y[i * ldy + r] = w->dtype == QVL_I8 ?
			    avx2_dot_q8((const int8_t *)w->data + r * cols, scales + r * nb,
			    xp + i * per, nb, cols) :
			    avx2_dot_q4((const uint8_t *)w->data + r * qvl_q4_row_bytes(cols),
			    scales + r * nb, (const uint16_t *)w->mins + r * nb, xp + i * per, nb);
}

const qvl_kernels qvl_kernels_avx2 = {avx2_rows, generic_widen, avx2_prep_floats, avx2_prep,
    generic_rows_max_n};

#if defined(__clang__)
#pragma clang attribute pop
#endif
