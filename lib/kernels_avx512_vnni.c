/* kernels_avx512_vnni.c: the integer rows kernels of q8 and q4 on AVX512_VNNI (decoding and
 * short batches), with x coded per block; kernels_avx512.c dispatches to them. */
#include "kernels_avx512.h"

#include <math.h>
#include <string.h>

#include "tensor.h"

/* q8 with x as int16 blocks (qvl_kern_x16): a block of 32 weights is one sign extension to
 * int16 and one vpmaddwd per input (exact int32 sums of 2 products per lane), then one
 * conversion and one FMA with the product of the two steps: half the instructions of
 * widening every weight to float32, which is what q8 decoding is bound by.  (vpdpwssd into
 * a zeroed register, as this was first written, cost a move more per input and block for
 * the same bits: bench/matmul -D -k q8, 5 alternating runs, n = 8 in 3.28-4.34 times the
 * time of n = 1 before, 2.86-3.79 after.  vpmaddwd is AVX-512BW; the kernel is chosen
 * with q4's, where the CPU has VNNI.) */
INLINEV void
rows_q8v(const int8_t *w, const uint16_t *sc, int64_t nb, int R, int64_t cols,
    const float *xp, int N, float *y, int64_t ldy)
{
	__m512 acc[RB][NB];
	__m512i xv[NB];
	float d[RB][SCALE_CHUNK], dx[NB];
	const int16_t *xq[NB];
	const int64_t stride = QVL_X16_FLOATS(nb);

	UNROLL
	for (int i = 0; i < N; i++)
		xq[i] = (const int16_t *)(xp + i * stride + nb);
	zero_acc(R, N, acc);
	for (int64_t b0 = 0; b0 < nb; b0 += SCALE_CHUNK) {
		int64_t nblk = nb - b0 < SCALE_CHUNK ? nb - b0 : SCALE_CHUNK;
		widen_scales(sc, nb, R, b0, nblk, d);
		for (int64_t b = 0; b < nblk; b++) {
			int64_t c = (b0 + b) * QVL_QBLOCK, len = cols - c;
			__mmask32 m = len >= 32 ? 0xffffffffu : (__mmask32)((1u << len) - 1);
			UNROLL
			for (int i = 0; i < N; i++) {
				xv[i] = _mm512_loadu_si512((const void *)(xq[i] + c));
				dx[i] = xp[i * stride + b0 + b];
			}
			UNROLL
			for (int r = 0; r < R; r++) {
				if ((b & 1) == 0)
					_mm_prefetch(w + (r + R) * cols + c, _MM_HINT_T0);
				__m512i wv = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m,
				    w + r * cols + c));
				UNROLL
				for (int i = 0; i < N; i++) {
					__m512i s = _mm512_madd_epi16(wv, xv[i]);
					acc[r][i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s),
					    _mm512_set1_ps(d[r][b] * dx[i]), acc[r][i]);
				}
			}
		}
	}
	UNROLL
	for (int r = 0; r < R; r++)
		UNROLL
		for (int i = 0; i < N; i++)
			y[i * ldy + r] = _mm512_reduce_add_ps(acc[r][i]);
}

/* rows_q8v for one input (decoding), the same products in the same order: the input's
 * steps folded into the rows' scales 16 at a time, and two whole blocks (a cache line of
 * each row) a pass with no masks.  Decoding q8 is bound less by the core's arithmetic than
 * by how far ahead of its loads it runs: at 17 instructions a block, rows_q8v's window held
 * about 1 KB of weights; at about 7 this one reads 11.7 GB/s on one core instead of
 * 10.0-10.3, 22.0-22.9 on two instead of 19.9-20.5 (bench/matmul -D -k q8 on the Xeon with
 * AMX, alternating runs), and the 3B decodes at 7.37-7.48 tok/s instead of 6.90-6.99. */
INLINEV void
rows_q8v_one(const int8_t *w, const uint16_t *sc, int64_t nb, int R, int64_t cols,
    const float *xp, float *y)
{
	__m512 acc[RB];
	float d[RB][SCALE_CHUNK];
	const int16_t *xq = (const int16_t *)(xp + nb);

	UNROLL
	for (int r = 0; r < R; r++)
		acc[r] = _mm512_setzero_ps();
	for (int64_t b0 = 0; b0 < nb; b0 += SCALE_CHUNK) {
		int64_t nblk = nb - b0 < SCALE_CHUNK ? nb - b0 : SCALE_CHUNK, b = 0;
		int64_t whole = (b0 + nblk) * QVL_QBLOCK > cols ? nblk - 1 : nblk;

		widen_scales(sc, nb, R, b0, nblk, d);
		UNROLL
		for (int r = 0; r < R; r++)
			for (int64_t k = 0; k < nblk; k += 16) {
				__mmask16 m = nblk - k >= 16 ? 0xffff :
				    (__mmask16)((1u << (nblk - k)) - 1);
				_mm512_mask_storeu_ps(d[r] + k, m, _mm512_mul_ps(
				    _mm512_maskz_loadu_ps(m, d[r] + k),
				    _mm512_maskz_loadu_ps(m, xp + b0 + k)));
			}
		for (; b + 2 <= whole; b += 2) {
			int64_t c = (b0 + b) * QVL_QBLOCK;
			__m512i x0 = _mm512_loadu_si512((const void *)(xq + c));
			__m512i x1 = _mm512_loadu_si512((const void *)(xq + c + QVL_QBLOCK));
			UNROLL
			for (int r = 0; r < R; r++) {
				const int8_t *row = w + r * cols + c;
				_mm_prefetch(row + R * cols, _MM_HINT_T0);
				__m512i w0 = _mm512_cvtepi8_epi16(_mm256_loadu_si256(
				    (const __m256i *)row));
				__m512i w1 = _mm512_cvtepi8_epi16(_mm256_loadu_si256(
				    (const __m256i *)(row + QVL_QBLOCK)));
				acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_madd_epi16(w0,
				    x0)), _mm512_set1_ps(d[r][b]), acc[r]);
				acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_madd_epi16(w1,
				    x1)), _mm512_set1_ps(d[r][b + 1]), acc[r]);
			}
		}
		for (; b < nblk; b++) {
			int64_t c = (b0 + b) * QVL_QBLOCK, len = cols - c;
			__mmask32 m = len >= 32 ? 0xffffffffu : (__mmask32)((1u << len) - 1);
			__m512i xv = _mm512_loadu_si512((const void *)(xq + c));
			UNROLL
			for (int r = 0; r < R; r++) {
				__m512i wv = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m,
				    w + r * cols + c));
				acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_madd_epi16(wv,
				    xv)), _mm512_set1_ps(d[r][b]), acc[r]);
			}
		}
	}
	UNROLL
	for (int r = 0; r < R; r++)
		y[r] = _mm512_reduce_add_ps(acc[r]);
}

#define GROUP_Q8V(R)                                                                       \
	static T512V void group_q8v_##R(const qvl_matrix *w, int64_t r, const float *xp,    \
	    int N, float *y, int64_t ldy)                                                  \
	{                                                                                  \
		int64_t cols = w->cols, nb = qvl_qblocks(cols);                            \
		const int8_t *q = (const int8_t *)w->data + r * cols;                      \
		const uint16_t *sc = (const uint16_t *)w->scales + r * nb;                 \
		switch (N) {                                                               \
		case 1: rows_q8v_one(q, sc, nb, R, cols, xp, y + r); break;                \
		case 2: rows_q8v(q, sc, nb, R, cols, xp, 2, y + r, ldy); break;            \
		case 3: rows_q8v(q, sc, nb, R, cols, xp, 3, y + r, ldy); break;            \
		default: rows_q8v(q, sc, nb, R, cols, xp, 4, y + r, ldy); break;           \
		}                                                                          \
	}
GROUP_Q8V(1)
GROUP_Q8V(4)

T512V void
avx512_rows_q8v(const qvl_matrix *w, int64_t r0, int64_t r1, int n, const float *xp,
    float *y, int64_t ldy)
{
	int64_t stride = QVL_X16_FLOATS(qvl_qblocks(w->cols)), r = r0;

	/* As for BF16: rows stream one at a time while x stays in L1 (one core, 2048
	 * columns: 10.7 -> 20.6 GB/s), four share each load of a longer x. */
	for (; stride * (int64_t)sizeof(float) > X_L1_BYTES && r + RB <= r1; r += RB)
		for (int i = 0; i < n; i += NB)
			group_q8v_4(w, r, xp + i * stride, n - i < NB ? n - i : NB, y + i * ldy,
			    ldy);
	for (; r < r1; r++)
		for (int i = 0; i < n; i += NB)
			group_q8v_1(w, r, xp + i * stride, n - i < NB ? n - i : NB, y + i * ldy,
			    ldy);
}

/* A row of q4 is 1 KB at 2048 columns: the weights stream through rows four to a page, and
 * the hardware prefetchers stop at page ends.  Fetching a page ahead (past the row's end:
 * rows are contiguous) took the 3B's q4 decoding from 11.7 to 12.2 tok/s on 2 Zen 4 cores
 * (means of alternating runs, each 10-14) and matmul -k q4 from 20-23 to 24-26 GB/s. */
#define Q4_PREFETCH 4096

/* q4 on AVX512_VNNI: x coded as int8 per block (step max|x| / 127) so that vpdpbusd takes
 * the nibbles as they are (unsigned 0..15) against the codes, four products per 32-bit lane:
 * a 64-byte load of four blocks costs a mask, a shift and two vpdpbusd, against one table
 * lookup per 16 weights in float32 (qvl-decode q4: 6.2 -> 10 tok/s on Zen 4).  The codes add
 * at most half a step of x (1/254 of its block's largest) to each product, against q4's own
 * 1/30 of the weights' range: decoding's error is the weights'.
 *
 * The prepared x (Q4X_FLOATS): nb steps of x, nb sums of x over each block (the mins'
 * term, in float32), then the codes in groups of four blocks, 128 bytes each: the first 16
 * values of the four blocks (what the low nibbles of the group's 64 bytes multiply), then
 * their last 16 (the high nibbles); blocks past the end are zero. */
T512V void
avx512_q4x_prep(const float *x, int64_t cols, float *xp)
{
	int64_t nb = qvl_qblocks(cols);
	float *dx = xp, *sums = xp + nb;
	int8_t *codes = (int8_t *)(xp + 2 * nb);

	memset(codes, 0, (size_t)Q4X_GROUPS(nb) * 128);
	qvl_kern_block_sums(x, cols, sums);
	for (int64_t b = 0; b < nb; b++) {
		int64_t c0 = b * QVL_QBLOCK, len = cols - c0 < QVL_QBLOCK ? cols - c0 : QVL_QBLOCK;
		__mmask16 m0 = len >= 16 ? 0xffff : (__mmask16)((1u << len) - 1);
		__mmask16 m1 = len >= 32 ? 0xffff : len > 16 ? (__mmask16)((1u << (len - 16)) - 1) : 0;
		__m512 v0 = _mm512_maskz_loadu_ps(m0, x + c0);
		__m512 v1 = _mm512_maskz_loadu_ps(m1, x + c0 + 16);
		float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0),
		    _mm512_abs_ps(v1)));
		/* NaN and infinities make the step NaN: the products are NaN, as in float32 */
		int finite = _mm512_cmp_ps_mask(v0, v0, _CMP_ORD_Q) == 0xffff &&
		    _mm512_cmp_ps_mask(v1, v1, _CMP_ORD_Q) == 0xffff && amax <= 3.4e38f;
		float d = finite ? amax / 127.0f : NAN, inv = d > 0 ? 1.0f / d : 0;
		int8_t *lo = codes + (b / 4) * 128 + (b % 4) * 16;
		dx[b] = d;
		_mm_storeu_si128((__m128i *)lo, _mm512_cvtsepi32_epi8(_mm512_cvt_roundps_epi32(
		    _mm512_mul_ps(v0, _mm512_set1_ps(inv)), _MM_FROUND_TO_NEAREST_INT |
		    _MM_FROUND_NO_EXC)));
		_mm_storeu_si128((__m128i *)(lo + 64), _mm512_cvtsepi32_epi8(
		    _mm512_cvt_roundps_epi32(_mm512_mul_ps(v1, _mm512_set1_ps(inv)),
		    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
	}
}

/* One group of four blocks (g) of a row against N inputs; m masks the bytes of the
 * blocks that exist, ms their scales. */
INLINEV void
q4v_group(const uint8_t *w, const uint16_t *sc, int64_t nb, int64_t g, __mmask64 m,
    __mmask8 ms, const float *xp, int64_t ldx, int N, __m512 *acc)
{
	const __m512i nibble = _mm512_set1_epi8(15);
	const __m512i spread = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
	__m512i v = _mm512_maskz_loadu_epi8(m, w + g * 64);
	_mm_prefetch(w + g * 64 + Q4_PREFETCH, _MM_HINT_T0);
	__m512i lo = _mm512_and_si512(v, nibble);
	__m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), nibble);
	__m128 d = _mm_cvtph_ps(_mm_maskz_loadu_epi16(ms, sc + g * 4));

	UNROLL
	for (int i = 0; i < N; i++) {
		const float *xi = xp + i * ldx;
		const int8_t *codes = (const int8_t *)(xi + 2 * nb) + g * 128;
		__m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo,
		    _mm512_loadu_si512((const void *)codes));
		s = _mm512_dpbusd_epi32(s, hi, _mm512_loadu_si512((const void *)(codes + 64)));
		__m128 scale = _mm_mul_ps(d, _mm_maskz_loadu_ps(ms, xi + g * 4));
		acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_permutexvar_ps(spread,
		    _mm512_castps128_ps512(scale)), acc[i]);
	}
}

INLINEV void
row_q4v(const uint8_t *w, const uint16_t *sc, const uint16_t *mn, int64_t nb, const float *xp,
    int64_t ldx, int N, float *y, int64_t ldy)
{
	__m512 acc[NB], accm[NB];
	int64_t g = 0;

	UNROLL
	for (int i = 0; i < N; i++)
		acc[i] = accm[i] = _mm512_setzero_ps();
	for (; (g + 1) * 4 <= nb; g++)
		q4v_group(w, sc, nb, g, ~(__mmask64)0, 0xf, xp, ldx, N, acc);
	if (g * 4 < nb) {
		int64_t left = nb - g * 4;
		q4v_group(w, sc, nb, g, ((__mmask64)1 << (left * 16)) - 1,
		    (__mmask8)((1u << left) - 1), xp, ldx, N, acc);
	}
	for (int64_t b = 0; b < nb; b += 16) {
		__mmask16 m = nb - b >= 16 ? 0xffff : (__mmask16)((1u << (nb - b)) - 1);
		__m512 mins = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, mn + b));
		UNROLL
		for (int i = 0; i < N; i++)
			accm[i] = _mm512_fmadd_ps(mins, _mm512_maskz_loadu_ps(m, xp + i * ldx + nb + b),
			    accm[i]);
	}
	UNROLL
	for (int i = 0; i < N; i++)
		y[i * ldy] = _mm512_reduce_add_ps(acc[i]) + _mm512_reduce_add_ps(accm[i]);
}

T512V void
avx512_rows_q4v(const qvl_matrix *w, int64_t r0, int64_t r1, const float *xp, int n, float *y,
    int64_t ldy)
{
	int64_t cols = w->cols, nb = qvl_qblocks(cols), ldx = Q4X_FLOATS(nb);

	for (int64_t r = r0; r < r1; r++) {
		const uint8_t *row = (const uint8_t *)w->data + r * qvl_q4_row_bytes(cols);
		const uint16_t *sc = (const uint16_t *)w->scales + r * nb;
		const uint16_t *mn = (const uint16_t *)w->mins + r * nb;
		for (int i = 0; i < n; i += NB) {
			const float *xi = xp + i * ldx;
			float *yi = y + i * ldy + r;
			switch (n - i < NB ? n - i : NB) {
			case 1: row_q4v(row, sc, mn, nb, xi, ldx, 1, yi, ldy); break;
			case 2: row_q4v(row, sc, mn, nb, xi, ldx, 2, yi, ldy); break;
			case 3: row_q4v(row, sc, mn, nb, xi, ldx, 3, yi, ldy); break;
			default: row_q4v(row, sc, mn, nb, xi, ldx, 4, yi, ldy); break;
			}
		}
	}
}
