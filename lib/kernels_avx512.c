/* kernels_avx512.c: AVX-512 kernels (F, BW, VL, DQ + FMA + F16C), compiled with target
 * attributes so the library still runs on CPUs without them (qvl_kernels_for picks).
 *
 * rows: each output row keeps float32 accumulators per input row; weights are widened in
 * registers (BF16 by a shift into the high half: exact), multiplied in float32, or (q8, q4
 * on VNNI) multiplied as integers against x coded per block.  While x fits L1 beside the
 * streaming weights, BF16 and (on VNNI) q8 and q4 stream one row at a time (one stream per
 * core); longer rows, and F16/F32, go four at a time so each load of x serves four rows.
 * x goes four rows at a time, so a block of W is read from memory once for up to
 * QVL_KERN_MAXN inputs (the second pass finds it in L1/L2).  A row's arithmetic is the
 * same in every grouping. */
#include "kernels.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "tensor.h"

#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")))
#define INLINE static inline __attribute__((always_inline)) T512

/* The loops over the group's rows and inputs must unroll completely for the accumulators to
 * live in registers (R and N are constants at every call). */
#define UNROLL _Pragma("GCC unroll 8")

#define RB 4 /* rows per group */
#define NB 4 /* inputs per pass */

INLINE __m512
widen_bf16(__m256i h)
{
	return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

INLINE __m512
load_w(qvl_dtype dt, const void *row, int64_t c)
{
	if (dt == QVL_BF16)
		return widen_bf16(_mm256_loadu_si256((const __m256i *)((const uint16_t *)row + c)));
	if (dt == QVL_F16)
		return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)row + c)));
	return _mm512_loadu_ps((const float *)row + c);
}

INLINE __m512
load_w_mask(qvl_dtype dt, const void *row, int64_t c, __mmask16 m)
{
	if (dt == QVL_BF16)
		return widen_bf16(_mm256_maskz_loadu_epi16(m, (const uint16_t *)row + c));
	if (dt == QVL_F16)
		return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)row + c));
	return _mm512_maskz_loadu_ps(m, (const float *)row + c);
}

INLINE void
rows_float(qvl_dtype dt, const char *w, int64_t ldw, int R, int64_t cols, const float *x,
    int64_t ldx, int N, float *y, int64_t ldy)
{
	__m512 acc[RB][NB], xv[NB];
	int64_t c = 0;

	UNROLL
	for (int r = 0; r < R; r++)
		UNROLL
		for (int i = 0; i < N; i++)
			acc[r][i] = _mm512_setzero_ps();
	for (; c + 16 <= cols; c += 16) {
		UNROLL
		for (int i = 0; i < N; i++)
			xv[i] = _mm512_loadu_ps(x + i * ldx + c);
		UNROLL
		for (int r = 0; r < R; r++) {
			/* The next group's rows, a group ahead: rows are a page or less, and
			 * the hardware prefetchers stop at page ends. */
			if ((c & (dt == QVL_F32 ? 15 : 31)) == 0)
				_mm_prefetch(w + (r + R) * ldw + c * (dt == QVL_F32 ? 4 : 2),
				    _MM_HINT_T0);
			__m512 wv = load_w(dt, w + r * ldw, c);
			UNROLL
			for (int i = 0; i < N; i++)
				acc[r][i] = _mm512_fmadd_ps(wv, xv[i], acc[r][i]);
		}
	}
	if (c < cols) {
		__mmask16 m = (__mmask16)((1u << (cols - c)) - 1);
		UNROLL
		for (int i = 0; i < N; i++)
			xv[i] = _mm512_maskz_loadu_ps(m, x + i * ldx + c);
		UNROLL
		for (int r = 0; r < R; r++) {
			__m512 wv = load_w_mask(dt, w + r * ldw, c, m);
			UNROLL
			for (int i = 0; i < N; i++)
				acc[r][i] = _mm512_fmadd_ps(wv, xv[i], acc[r][i]);
		}
	}
	UNROLL
	for (int r = 0; r < R; r++)
		UNROLL
		for (int i = 0; i < N; i++)
			y[i * ldy + r] = _mm512_reduce_add_ps(acc[r][i]);
}

/* BF16 for decoding.  A 64-byte load holds 32 weights, the even one in the low half of each
 * 32-bit lane: a shift and a mask make them float32 with no shuffle, against x in the same
 * pair order (qvl_kern_pairs); the last partial chunk is widened in order.  Each (row,
 * input) has four accumulators summed in a fixed order, so a row's bits never depend on
 * which rows or inputs share its pass.
 *
 * Rows stream one at a time while x stays in L1 (one sequential stream per thread is what
 * the hardware prefetchers serve best: on Zen 4, one core reads 4 KB rows at 21 GB/s one at
 * a time, 14 GB/s four interleaved).  Longer rows (the MLP's down projection) push x out
 * of L1, and reloading it for every row costs more than the extra streams: four rows share
 * each load of x there (one core: 9 -> 13 GB/s at 11008 columns). */
#define X_L1_BYTES 16384 /* bytes of x that stay in L1 beside the weights streaming through */

/* Several inputs at once (batched decoding) spend long enough on each 64-byte load that the
 * hardware prefetchers, restarting at every 4 KB row, fall behind: fetching a page ahead took
 * matmul -k bf16's n = 4 from 2.3 to 1.75 times the time of n = 1, and the 3B's four
 * conversations (--each --batch 4) from 7.6 to 10.0 tok/s on 2 Zen 4 cores.  A single input
 * gains nothing from it. */
#define BF16_PREFETCH 2048 /* weights ahead: 4 KB, a page */

/* 32 weights of a row (one 64-byte load) times the N inputs' x at the same columns: the
 * even weights into accumulator a of each input, the odd ones into a + 1. */
INLINE void
bf16_chunk(const uint16_t *w, const float *x, int64_t ldx, int N, __m512 (*acc)[4], int a)
{
	__m512i v = _mm512_loadu_si512((const void *)w);
	__m512 even = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
	__m512 odd = _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32((int)0xffff0000u)));

	UNROLL
	for (int i = 0; i < N; i++) {
		acc[i][a] = _mm512_fmadd_ps(even, _mm512_loadu_ps(x + i * ldx), acc[i][a]);
		acc[i][a + 1] = _mm512_fmadd_ps(odd, _mm512_loadu_ps(x + i * ldx + 16),
		    acc[i][a + 1]);
	}
}

INLINE void
rows_bf16_group(const uint16_t *w, int64_t cols, int R, const float *xp, int64_t ldx, int N,
    float *y, int64_t ldy)
{
	__m512 acc[RB][NB][4];
	int64_t c = 0;

	UNROLL
	for (int r = 0; r < R; r++)
		UNROLL
		for (int i = 0; i < N; i++)
			acc[r][i][0] = acc[r][i][1] = acc[r][i][2] = acc[r][i][3] =
			    _mm512_setzero_ps();
	for (; c + 64 <= cols; c += 64)
		UNROLL
		for (int r = 0; r < R; r++) {
			if (R == 1 && N > 1) {
				_mm_prefetch(w + c + BF16_PREFETCH, _MM_HINT_T0);
				_mm_prefetch(w + c + 32 + BF16_PREFETCH, _MM_HINT_T0);
			}
			bf16_chunk(w + r * cols + c, xp + c, ldx, N, acc[r], 0);
			bf16_chunk(w + r * cols + c + 32, xp + c + 32, ldx, N, acc[r], 2);
		}
	if (c + 32 <= cols) {
		UNROLL
		for (int r = 0; r < R; r++)
			bf16_chunk(w + r * cols + c, xp + c, ldx, N, acc[r], 0);
		c += 32;
	}
	for (; c < cols; c += 16) {
		__mmask16 m = cols - c >= 16 ? 0xffff : (__mmask16)((1u << (cols - c)) - 1);
		UNROLL
		for (int r = 0; r < R; r++) {
			__m512 wv = load_w_mask(QVL_BF16, w + r * cols, c, m);
			UNROLL
			for (int i = 0; i < N; i++)
				acc[r][i][2] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m,
				    xp + i * ldx + c), acc[r][i][2]);
		}
	}
	UNROLL
	for (int r = 0; r < R; r++)
		UNROLL
		for (int i = 0; i < N; i++)
			y[i * ldy + r] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(
			    acc[r][i][0], acc[r][i][1]), _mm512_add_ps(acc[r][i][2],
			    acc[r][i][3])));
}

static T512 void
rows_bf16(const qvl_matrix *w, int64_t r0, int64_t r1, const float *xp, int n, float *y,
    int64_t ldy)
{
	int64_t cols = w->cols, r = r0;
	const uint16_t *data = w->data;

	if (n == 1 && cols * (int64_t)sizeof(float) > X_L1_BYTES)
		for (; r + RB <= r1; r += RB)
			rows_bf16_group(data + r * cols, cols, RB, xp, cols, 1, y + r, ldy);
	for (; r < r1; r++)
		for (int i = 0; i < n; i += NB) {
			const uint16_t *row = data + r * cols;
			const float *xi = xp + i * cols;
			float *yi = y + i * ldy + r;
			switch (n - i < NB ? n - i : NB) {
			case 1: rows_bf16_group(row, cols, 1, xi, cols, 1, yi, ldy); break;
			case 2: rows_bf16_group(row, cols, 1, xi, cols, 2, yi, ldy); break;
			case 3: rows_bf16_group(row, cols, 1, xi, cols, 3, yi, ldy); break;
			default: rows_bf16_group(row, cols, 1, xi, cols, 4, yi, ldy); break;
			}
		}
}

INLINE __m512
q8_half(const int8_t *p, __mmask16 m)
{
	return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, p)));
}

/* Scales of a group's rows widened to float32 ahead of the block loop, so each block costs
 * one broadcast from L1; columns go in chunks of SCALE_CHUNK blocks (32768 values), which
 * does not change the order of the sums. */
#define SCALE_CHUNK 1024

INLINE void
widen_scales(const uint16_t *sc, int64_t nb, int R, int64_t b0, int64_t nblk,
    float (*out)[SCALE_CHUNK])
{
	UNROLL
	for (int r = 0; r < R; r++) {
		int64_t b = 0;
		for (; b + 16 <= nblk; b += 16)
			_mm512_storeu_ps(out[r] + b, _mm512_cvtph_ps(_mm256_loadu_si256(
			    (const __m256i *)(sc + r * nb + b0 + b))));
		if (b < nblk) {
			__mmask16 m = (__mmask16)((1u << (nblk - b)) - 1);
			_mm512_mask_storeu_ps(out[r] + b, m, _mm512_cvtph_ps(
			    _mm256_maskz_loadu_epi16(m, sc + r * nb + b0 + b)));
		}
	}
}

/* w: the group's first row, rows cols bytes apart; sc: its first row's scales, nb apart.
 * Each block's weights are dequantized exactly as widen does (q * d, one rounding), then
 * multiplied into the accumulators. */
INLINE void
rows_q8(const int8_t *w, const uint16_t *sc, int64_t nb, int R, int64_t cols, const float *x,
    int64_t ldx, int N, float *y, int64_t ldy)
{
	__m512 acc[RB][NB], x0[NB], x1[NB];
	float d[RB][SCALE_CHUNK];

	UNROLL
	for (int r = 0; r < R; r++)
		UNROLL
		for (int i = 0; i < N; i++)
			acc[r][i] = _mm512_setzero_ps();
	for (int64_t b0 = 0; b0 < nb; b0 += SCALE_CHUNK) {
		int64_t nblk = nb - b0 < SCALE_CHUNK ? nb - b0 : SCALE_CHUNK;
		int64_t full = (b0 + nblk) * QVL_QBLOCK <= cols ? nblk : nblk - 1;
		widen_scales(sc, nb, R, b0, nblk, d);
		for (int64_t b = 0; b < full; b++) {
			int64_t c = (b0 + b) * QVL_QBLOCK;
			UNROLL
			for (int i = 0; i < N; i++) {
				x0[i] = _mm512_loadu_ps(x + i * ldx + c);
				x1[i] = _mm512_loadu_ps(x + i * ldx + c + 16);
			}
			UNROLL
			for (int r = 0; r < R; r++) {
				const int8_t *p = w + r * cols + c;
				__m512 dv = _mm512_set1_ps(d[r][b]);
				__m512 w0 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
				    _mm_loadu_si128((const __m128i *)p))), dv);
				__m512 w1 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
				    _mm_loadu_si128((const __m128i *)(p + 16)))), dv);
				UNROLL
				for (int i = 0; i < N; i++) {
					acc[r][i] = _mm512_fmadd_ps(w0, x0[i], acc[r][i]);
					acc[r][i] = _mm512_fmadd_ps(w1, x1[i], acc[r][i]);
				}
			}
		}
		if (full < nblk) {
			int64_t c = (b0 + full) * QVL_QBLOCK, len = cols - c;
			__mmask16 m0 = len >= 16 ? 0xffff : (__mmask16)((1u << len) - 1);
			__mmask16 m1 = len > 16 ? (__mmask16)((1u << (len - 16)) - 1) : 0;
			UNROLL
			for (int i = 0; i < N; i++) {
				x0[i] = _mm512_maskz_loadu_ps(m0, x + i * ldx + c);
				x1[i] = _mm512_maskz_loadu_ps(m1, x + i * ldx + c + 16);
			}
			UNROLL
			for (int r = 0; r < R; r++) {
				const int8_t *p = w + r * cols + c;
				__m512 dv = _mm512_set1_ps(d[r][full]);
				__m512 w0 = _mm512_mul_ps(q8_half(p, m0), dv);
				__m512 w1 = _mm512_mul_ps(q8_half(p + 16, m1), dv);
				UNROLL
				for (int i = 0; i < N; i++) {
					acc[r][i] = _mm512_fmadd_ps(w0, x0[i], acc[r][i]);
					acc[r][i] = _mm512_fmadd_ps(w1, x1[i], acc[r][i]);
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

/* q4: the 16 values a block's nibbles can take, d * q + m (one rounding), sit in one
 * register; vpermps looks each weight up by its nibble (it reads only the low 4 bits of
 * each index, so the high nibble needs a shift but no mask). */
INLINE void
rows_q4(const uint8_t *w, int64_t ldw, const uint16_t *sc, const uint16_t *mn, int64_t nb,
    int R, int64_t cols, const float *x, int64_t ldx, int N, float *y, int64_t ldy)
{
	__m512 acc[RB][NB], x0[NB], x1[NB];
	float d[RB][SCALE_CHUNK], m[RB][SCALE_CHUNK];
	const __m512 iota = _mm512_set_ps(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);

	UNROLL
	for (int r = 0; r < R; r++)
		UNROLL
		for (int i = 0; i < N; i++)
			acc[r][i] = _mm512_setzero_ps();
	for (int64_t b0 = 0; b0 < nb; b0 += SCALE_CHUNK) {
		int64_t nblk = nb - b0 < SCALE_CHUNK ? nb - b0 : SCALE_CHUNK;
		widen_scales(sc, nb, R, b0, nblk, d);
		widen_scales(mn, nb, R, b0, nblk, m);
		for (int64_t b = 0; b < nblk; b++) {
			int64_t c = (b0 + b) * QVL_QBLOCK, len = cols - c;
			if (len >= QVL_QBLOCK) {
				UNROLL
				for (int i = 0; i < N; i++) {
					x0[i] = _mm512_loadu_ps(x + i * ldx + c);
					x1[i] = _mm512_loadu_ps(x + i * ldx + c + 16);
				}
			} else {
				__mmask16 m0 = len >= 16 ? 0xffff : (__mmask16)((1u << len) - 1);
				__mmask16 m1 = len > 16 ? (__mmask16)((1u << (len - 16)) - 1) : 0;
				UNROLL
				for (int i = 0; i < N; i++) {
					x0[i] = _mm512_maskz_loadu_ps(m0, x + i * ldx + c);
					x1[i] = _mm512_maskz_loadu_ps(m1, x + i * ldx + c + 16);
				}
			}
			UNROLL
			for (int r = 0; r < R; r++) {
				if ((b & 3) == 0)
					_mm_prefetch(w + (r + R) * ldw + (b0 + b) * (QVL_QBLOCK / 2),
					    _MM_HINT_T0);
				__m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)
				    (w + r * ldw + (b0 + b) * (QVL_QBLOCK / 2))));
				__m512 table = _mm512_fmadd_ps(iota, _mm512_set1_ps(d[r][b]),
				    _mm512_set1_ps(m[r][b]));
				__m512 w0 = _mm512_permutexvar_ps(v, table);
				__m512 w1 = _mm512_permutexvar_ps(_mm512_srli_epi32(v, 4), table);
				UNROLL
				for (int i = 0; i < N; i++) {
					acc[r][i] = _mm512_fmadd_ps(w0, x0[i], acc[r][i]);
					acc[r][i] = _mm512_fmadd_ps(w1, x1[i], acc[r][i]);
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

/* One group of R rows starting at r for N inputs; the switches make R and N constants so
 * the accumulators live in registers. */
INLINE void
group(const qvl_matrix *w, int64_t r, int R, const float *x, int64_t ldx, const float *xsum,
    int N, float *y, int64_t ldy)
{
	int64_t cols = w->cols, nb = qvl_qblocks(cols);

	(void)xsum; /* the q4 kernel folds the mins into its lookup table */
	switch (w->dtype) {
	case QVL_I8:
		rows_q8((const int8_t *)w->data + r * cols, (const uint16_t *)w->scales + r * nb,
		    nb, R, cols, x, ldx, N, y + r, ldy);
		break;
	case QVL_U8:
		rows_q4((const uint8_t *)w->data + r * qvl_q4_row_bytes(cols),
		    qvl_q4_row_bytes(cols), (const uint16_t *)w->scales + r * nb,
		    (const uint16_t *)w->mins + r * nb, nb, R, cols, x, ldx, N, y + r, ldy);
		break;
	case QVL_BF16:
		rows_float(QVL_BF16, (const char *)w->data + r * cols * 2, cols * 2, R, cols, x,
		    ldx, N, y + r, ldy);
		break;
	case QVL_F16:
		rows_float(QVL_F16, (const char *)w->data + r * cols * 2, cols * 2, R, cols, x,
		    ldx, N, y + r, ldy);
		break;
	default:
		rows_float(QVL_F32, (const char *)w->data + r * cols * 4, cols * 4, R, cols, x,
		    ldx, N, y + r, ldy);
	}
}

#define GROUP_N(R)                                                                         \
	static T512 void group_##R(const qvl_matrix *w, int64_t r, const float *x,          \
	    int64_t ldx, const float *xsum, int N, float *y, int64_t ldy)                  \
	{                                                                                  \
		switch (N) {                                                               \
		case 1: group(w, r, R, x, ldx, xsum, 1, y, ldy); break;                    \
		case 2: group(w, r, R, x, ldx, xsum, 2, y, ldy); break;                    \
		case 3: group(w, r, R, x, ldx, xsum, 3, y, ldy); break;                    \
		default: group(w, r, R, x, ldx, xsum, 4, y, ldy); break;                   \
		}                                                                          \
	}
GROUP_N(1)
GROUP_N(4)

/* q8 with x as int16 blocks (qvl_kern_x16), on AVX512_VNNI: a block of 32 weights is one
 * sign extension to int16 and one vpdpwssd per input (exact int32 sums of 2 products per
 * lane), then one conversion and one FMA with the product of the two steps: half the
 * instructions of widening every weight to float32, which is what q8 decoding is bound by. */
#define T512V __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c")))
#define INLINEV static inline __attribute__((always_inline)) T512V

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
	UNROLL
	for (int r = 0; r < R; r++)
		UNROLL
		for (int i = 0; i < N; i++)
			acc[r][i] = _mm512_setzero_ps();
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
					__m512i s = _mm512_dpwssd_epi32(_mm512_setzero_si512(), wv,
					    xv[i]);
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

#define GROUP_Q8V(R)                                                                       \
	static T512V void group_q8v_##R(const qvl_matrix *w, int64_t r, const float *xp,    \
	    int N, float *y, int64_t ldy)                                                  \
	{                                                                                  \
		int64_t cols = w->cols, nb = qvl_qblocks(cols);                            \
		const int8_t *q = (const int8_t *)w->data + r * cols;                      \
		const uint16_t *sc = (const uint16_t *)w->scales + r * nb;                 \
		switch (N) {                                                               \
		case 1: rows_q8v(q, sc, nb, R, cols, xp, 1, y + r, ldy); break;            \
		case 2: rows_q8v(q, sc, nb, R, cols, xp, 2, y + r, ldy); break;            \
		case 3: rows_q8v(q, sc, nb, R, cols, xp, 3, y + r, ldy); break;            \
		default: rows_q8v(q, sc, nb, R, cols, xp, 4, y + r, ldy); break;           \
		}                                                                          \
	}
GROUP_Q8V(1)
GROUP_Q8V(4)

static T512V void
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
#define Q4X_GROUPS(nb) (((nb) + 3) / 4)
#define Q4X_FLOATS(nb) (2 * (nb) + Q4X_GROUPS(nb) * 32)

static T512V void
q4x_prep(const float *x, int64_t cols, float *xp)
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

static T512V void
rows_q4v(const qvl_matrix *w, int64_t r0, int64_t r1, const float *xp, int n, float *y,
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

static T512 void
avx512_rows(const qvl_matrix *w, int64_t r0, int64_t r1, const float *x, int64_t ldx, int n,
    const float *xp, float *y, int64_t ldy)
{
	int64_t nb = qvl_qblocks(w->cols);
	int64_t r = r0;

	if (w->dtype == QVL_I8 && xp != NULL) {
		avx512_rows_q8v(w, r0, r1, n, xp, y, ldy);
		return;
	}
	if (w->dtype == QVL_BF16 && xp != NULL) {
		rows_bf16(w, r0, r1, xp, n, y, ldy);
		return;
	}
	if (w->dtype == QVL_U8 && qvl_cpu_get()->avx512vnni) {
		rows_q4v(w, r0, r1, xp, n, y, ldy);
		return;
	}
	for (; r + RB <= r1; r += RB)
		for (int i = 0; i < n; i += NB)
			group_4(w, r, x + i * ldx, ldx, xp ? xp + i * nb : NULL,
			    n - i < NB ? n - i : NB, y + i * ldy, ldy);
	for (; r < r1; r++)
		for (int i = 0; i < n; i += NB)
			group_1(w, r, x + i * ldx, ldx, xp ? xp + i * nb : NULL,
			    n - i < NB ? n - i : NB, y + i * ldy, ldy);
}

static T512 void
avx512_widen(const qvl_matrix *w, int64_t r0, int64_t nr, float *dst)
{
	int64_t cols = w->cols, nb = qvl_qblocks(cols);

	if (w->dtype == QVL_F32) {
		memcpy(dst, (const float *)w->data + r0 * cols, (size_t)(nr * cols) * sizeof *dst);
		return;
	}
	if (w->dtype == QVL_BF16 || w->dtype == QVL_F16) {
		/* Rows are contiguous: one run over nr * cols elements. */
		const uint16_t *s = (const uint16_t *)w->data + r0 * cols;
		int64_t total = nr * cols, c = 0;
		if (w->dtype == QVL_BF16) {
			for (; c + 32 <= total; c += 32) {
				_mm512_storeu_ps(dst + c, load_w(QVL_BF16, s, c));
				_mm512_storeu_ps(dst + c + 16, load_w(QVL_BF16, s, c + 16));
			}
			for (; c < total; c += 16) {
				__mmask16 m = total - c >= 16 ? 0xffff : (__mmask16)((1u << (total - c)) - 1);
				_mm512_mask_storeu_ps(dst + c, m, load_w_mask(QVL_BF16, s, c, m));
			}
		} else {
			for (; c < total; c += 16) {
				__mmask16 m = total - c >= 16 ? 0xffff : (__mmask16)((1u << (total - c)) - 1);
				_mm512_mask_storeu_ps(dst + c, m, load_w_mask(QVL_F16, s, c, m));
			}
		}
		return;
	}
	for (int64_t r = r0; r < r0 + nr; r++, dst += cols) {
		const uint16_t *sc = (const uint16_t *)w->scales + r * nb;
		const uint16_t *mn = w->dtype == QVL_U8 ? (const uint16_t *)w->mins + r * nb : NULL;
		for (int64_t c = 0, b = 0; c < cols; c += QVL_QBLOCK, b++) {
			int64_t len = cols - c;
			__mmask16 m0 = len >= 16 ? 0xffff : (__mmask16)((1u << len) - 1);
			__mmask16 m1 = len >= 32 ? 0xffff : len > 16 ? (__mmask16)((1u << (len - 16)) - 1) : 0;
			__m512 d = _mm512_set1_ps(_cvtsh_ss(sc[b])), w0, w1;
			if (w->dtype == QVL_I8) {
				const int8_t *p = (const int8_t *)w->data + r * cols + c;
				w0 = _mm512_mul_ps(q8_half(p, m0), d);
				w1 = _mm512_mul_ps(q8_half(p + 16, m1), d);
			} else {
				__m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)
				    ((const uint8_t *)w->data + r * qvl_q4_row_bytes(cols) + b * 16)));
				__m512 m = _mm512_set1_ps(_cvtsh_ss(mn[b]));
				w0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_and_si512(v,
				    _mm512_set1_epi32(15))), d, m);
				w1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(v, 4)), d, m);
			}
			_mm512_mask_storeu_ps(dst + c, m0, w0);
			_mm512_mask_storeu_ps(dst + c + 16, m1, w1);
		}
	}
}

static int64_t
avx512_prep_floats(const qvl_matrix *w)
{
	switch (w->dtype) {
	case QVL_BF16:
		return w->cols;
	case QVL_I8:
		return qvl_cpu_get()->avx512vnni ? QVL_X16_FLOATS(qvl_qblocks(w->cols)) : 0;
	case QVL_U8:
		return qvl_cpu_get()->avx512vnni ? Q4X_FLOATS(qvl_qblocks(w->cols)) :
		    qvl_qblocks(w->cols);
	default:
		return 0;
	}
}

static void
avx512_prep(const qvl_matrix *w, const float *x, float *xp)
{
	if (w->dtype == QVL_BF16)
		qvl_kern_pairs(x, w->cols, xp);
	else if (w->dtype == QVL_I8)
		qvl_kern_x16(x, w->cols, xp);
	else if (qvl_cpu_get()->avx512vnni)
		q4x_prep(x, w->cols, xp);
	else
		qvl_kern_block_sums(x, w->cols, xp);
}

/* Where rows stops paying, from prompts of the 3B on 2 Zen 4 cores (prefill, rows kernels
 * against tiles + sgemm): BF16 weights break even near 30 tokens (21: 2.2 against 2.7 s,
 * 40: 3.5 against 2.8 s) and q8 on VNNI near 70 (40: 1.9 against 2.5 s, 80: 4.1 against
 * 3.9 s).  q4 on VNNI never does: its int8 products outrun float32 sgemm on the widened
 * tiles (510 tokens: 13.0 against 19.2 s). */
static int64_t
avx512_rows_max_n(const qvl_matrix *w)
{
	int vnni = qvl_cpu_get()->avx512vnni;

	switch (w->dtype) {
	case QVL_U8:
		return vnni ? INT64_MAX : QVL_KERN_MAXN;
	case QVL_I8:
		return vnni ? 64 : QVL_KERN_MAXN;
	default:
		return 24;
	}
}

const qvl_kernels qvl_kernels_avx512 = {avx512_rows, avx512_widen, avx512_prep_floats,
    avx512_prep, avx512_rows_max_n};
