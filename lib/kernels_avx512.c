/* kernels_avx512.c: AVX-512 kernels (F, BW, VL, DQ + FMA + F16C), compiled with target
 * attributes so the library still runs on CPUs without them (qvl_kernels_for picks).
 *
 * rows: each output row keeps float32 accumulators per input row; weights are widened in
 * registers (BF16 by a shift into the high half: exact), multiplied in float32, or (q8, q4
 * on VNNI, kernels_avx512_vnni.c) multiplied as integers against x coded per block.  While
 * x fits L1 beside the streaming weights, BF16 and (on VNNI) q8 and q4 stream one row at a
 * time (one stream per core); longer rows, and F16/F32, go four at a time so each load of x
 * serves four rows, and BF16 batches of 5 to 8 inputs go in pairs of rows.
 * x goes four rows at a time, so a block of W is read from memory once for up to
 * QVL_KERN_MAXN inputs (the second pass finds it in L1/L2).  A row's arithmetic is the
 * same in every grouping. */
#include "kernels_avx512.h"

#include <math.h>
#include <string.h>

#include "tensor.h"

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

	zero_acc(R, N, acc);
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
 * each load of x there (one core: 9 -> 13 GB/s at 11008 columns; X_L1_BYTES). */

/* The hardware prefetchers restart at every 4 KB row and fall behind: fetching a page ahead
 * took matmul -k bf16's n = 4 from 2.3 to 1.75 times the time of n = 1, and the 3B's four
 * conversations (--each --batch 4) from 7.6 to 10.0 tok/s on 2 Zen 4 cores, where a single
 * input gained nothing from it.  On the Xeon with AMX a single input gains most: the 3B
 * decodes at 3.9-4.4 tok/s instead of 3.5-3.7 (BF16, 2 threads, alternating runs against
 * 29-30 GB/s streaming). */
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

/* 64 columns of two rows (w, w + cols) times the N inputs' x, into the same accumulators
 * as two bf16_chunk calls per row: each quarter of x is loaded once for both rows (left to
 * itself the compiler folds a load of x into every FMA, and the loads bound the pass). */
INLINE void
bf16_pair_chunk(const uint16_t *w, int64_t cols, const float *x, int64_t ldx, int N,
    __m512 (*acc)[NB][4])
{
	const __m512i hi = _mm512_set1_epi32((int)0xffff0000u);
	__m512 wv[2][4];

	UNROLL
	for (int r = 0; r < 2; r++) {
		__m512i v0 = _mm512_loadu_si512((const void *)(w + r * cols));
		__m512i v1 = _mm512_loadu_si512((const void *)(w + r * cols + 32));
		_mm_prefetch(w + r * cols + BF16_PREFETCH, _MM_HINT_T0);
		_mm_prefetch(w + r * cols + 32 + BF16_PREFETCH, _MM_HINT_T0);
		wv[r][0] = _mm512_castsi512_ps(_mm512_slli_epi32(v0, 16));
		wv[r][1] = _mm512_castsi512_ps(_mm512_and_si512(v0, hi));
		wv[r][2] = _mm512_castsi512_ps(_mm512_slli_epi32(v1, 16));
		wv[r][3] = _mm512_castsi512_ps(_mm512_and_si512(v1, hi));
	}
	UNROLL
	for (int i = 0; i < N; i++)
		UNROLL
		for (int q = 0; q < 4; q++) {
			__m512 xv = _mm512_loadu_ps(x + i * ldx + 16 * q);
			__asm__("" : "+v"(xv)); /* in a register, for both rows */
			acc[0][i][q] = _mm512_fmadd_ps(wv[0][q], xv, acc[0][i][q]);
			acc[1][i][q] = _mm512_fmadd_ps(wv[1][q], xv, acc[1][i][q]);
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
	for (; R == 2 && c + 64 <= cols; c += 64)
		bf16_pair_chunk(w + c, cols, xp + c, ldx, N, acc);
	for (; c + 64 <= cols; c += 64)
		UNROLL
		for (int r = 0; r < R; r++) {
			if (R == 1) {
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
	/* Five to eight inputs: rows in pairs, three inputs a pass (24 accumulators), each
	 * load of x serving both rows.  bench/matmul -D -k bf16, 5 alternating runs: n = 8 in
	 * 2.82-3.25 times the time of n = 1 before, 2.37-2.51 after; a 23-token prompt of the
	 * 3B in float32 (3 x 8 inputs) 1.9-2.1 -> 1.5-1.7 s.  Up to four inputs the single
	 * rows with their prefetch stay faster (n = 2: 1.3-1.4 against 1.4-1.6). */
	if (n > 4)
		for (; r + 2 <= r1; r += 2)
			for (int i = 0; i < n; i += 3) {
				const uint16_t *row = data + r * cols;
				const float *xi = xp + i * cols;
				float *yi = y + i * ldy + r;
				switch (n - i < 3 ? n - i : 3) {
				case 1: rows_bf16_group(row, cols, 2, xi, cols, 1, yi, ldy); break;
				case 2: rows_bf16_group(row, cols, 2, xi, cols, 2, yi, ldy); break;
				default: rows_bf16_group(row, cols, 2, xi, cols, 3, yi, ldy); break;
				}
			}
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

/* w: the group's first row, rows cols bytes apart; sc: its first row's scales, nb apart.
 * Each block's weights are dequantized exactly as widen does (q * d, one rounding), then
 * multiplied into the accumulators. */
INLINE void
rows_q8(const int8_t *w, const uint16_t *sc, int64_t nb, int R, int64_t cols, const float *x,
    int64_t ldx, int N, float *y, int64_t ldy)
{
	__m512 acc[RB][NB], x0[NB], x1[NB];
	float d[RB][SCALE_CHUNK];

	zero_acc(R, N, acc);
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

	zero_acc(R, N, acc);
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
		avx512_rows_q4v(w, r0, r1, xp, n, y, ldy);
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
		avx512_q4x_prep(x, w->cols, xp);
	else
		qvl_kern_block_sums(x, w->cols, xp);
}

/* Where rows stops paying, from prompts of the 3B on 2 Zen 4 cores (prefill, rows kernels
 * against tiles + sgemm): BF16 weights break even near 50 tokens since rows take their
 * inputs in pairs of rows (39: 2.4-2.6 against 3.0-3.3 s, 50: 3.38 against 3.42, 61:
 * 3.71-3.81 against 3.80-3.88) and q8 on VNNI near 70 (40: 1.9 against 2.5 s, 80: 4.1 against
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
		return 48;
	}
}

const qvl_kernels qvl_kernels_avx512 = {avx512_rows, avx512_widen, avx512_prep_floats,
    avx512_prep, avx512_rows_max_n};
