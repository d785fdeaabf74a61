/* kernels_c.h: the body of the plain C kernels, included by kernels_generic.c (for the
 * build's -march) and kernels_avx2.c (under an AVX2 target pragma, so the compiler vectorizes
 * the same loops for AVX2 + FMA + F16C).  Define KERNELS_TABLE to the table's name first, or
 * leave it undefined and build a table from the generic_ functions and one's own.
 * Sums run in 16 independent lanes so the compiler can vectorize them without
 * reassociating anything. */
#include "kernels.h"

#include "tensor.h"

#define LANES 16
#define ROW_PREFETCH 4096 /* bytes of a row fetched ahead */

static inline float
load_w(qvl_dtype dtype, const void *row, int64_t c)
{
	switch (dtype) {
	case QVL_BF16:
		return qvl_bf16_to_f32(((const uint16_t *)row)[c]);
	case QVL_F16:
		return qvl_f16_to_f32(((const uint16_t *)row)[c]);
	default:
		return ((const float *)row)[c];
	}
}

static float
lanes_sum(const float *acc)
{
	float s = 0;

	for (int l = 0; l < LANES; l++)
		s += acc[l];
	return s;
}

static float
dot_float(qvl_dtype dtype, const void *row, const float *x, int64_t cols)
{
	float acc[LANES] = {0};
	int64_t c = 0;

	if (dtype == QVL_BF16) {
		const uint16_t *w = row;
		for (; c + LANES <= cols; c += LANES) {
			if (c % 32 == 0)
				__builtin_prefetch((const char *)(w + c) + ROW_PREFETCH);
			for (int l = 0; l < LANES; l++)
				acc[l] += qvl_bf16_to_f32(w[c + l]) * x[c + l];
		}
	} else if (dtype == QVL_F32) {
		const float *w = row;
		for (; c + LANES <= cols; c += LANES)
			for (int l = 0; l < LANES; l++)
				acc[l] += w[c + l] * x[c + l];
	}
	for (; c < cols; c++)
		acc[c % LANES] += load_w(dtype, row, c) * x[c];
	return lanes_sum(acc);
}

_Static_assert(QVL_QBLOCK == 2 * LANES, "a block is two rounds of the lanes");

/* Whole blocks go through the lanes as vectors, each block's sum scaled in the lanes (a
 * sum across the lanes for every block was a chain of 16 dependent adds: q8 and q4 read a
 * tenth of the memory's rate); the last, partial block one value at a time. */
static float
dot_q8(const int8_t *q, const uint16_t *scales, const float *x, int64_t cols)
{
	float acc[LANES] = {0}, tail = 0;
	int64_t whole = cols / QVL_QBLOCK;

	for (int64_t b = 0; b < whole; b++) {
		const int8_t *qb = q + b * QVL_QBLOCK;
		const float *xb = x + b * QVL_QBLOCK;
		float d = qvl_f16_to_f32(scales[b]), t[LANES];
		if (b % 2 == 0)
			__builtin_prefetch(qb + ROW_PREFETCH);
		for (int l = 0; l < LANES; l++)
			t[l] = (float)qb[l] * xb[l] + (float)qb[LANES + l] * xb[LANES + l];
		for (int l = 0; l < LANES; l++)
			acc[l] += d * t[l];
	}
	for (int64_t c = whole * QVL_QBLOCK; c < cols; c++)
		tail += (float)q[c] * x[c];
	if (whole * QVL_QBLOCK < cols)
		tail *= qvl_f16_to_f32(scales[whole]);
	return lanes_sum(acc) + tail;
}

static float
dot_q4(const uint8_t *q, const uint16_t *scales, const uint16_t *mins, const float *x,
    const float *xsum, int64_t cols)
{
	float acc[LANES] = {0}, tail = 0, min_sum = 0;
	int64_t whole = cols / QVL_QBLOCK, nb = qvl_qblocks(cols);

	for (int64_t b = 0; b < whole; b++) {
		const uint8_t *blk = q + b * (QVL_QBLOCK / 2);
		const float *xb = x + b * QVL_QBLOCK;
		float d = qvl_f16_to_f32(scales[b]), t[LANES];
		if (b % 4 == 0)
			__builtin_prefetch(blk + ROW_PREFETCH);
		for (int l = 0; l < LANES; l++)
			t[l] = (float)(blk[l] & 15) * xb[l] + (float)(blk[l] >> 4) * xb[LANES + l];
		for (int l = 0; l < LANES; l++)
			acc[l] += d * t[l];
	}
	if (whole < nb) {
		const uint8_t *blk = q + whole * (QVL_QBLOCK / 2);
		int64_t c0 = whole * QVL_QBLOCK;
		for (int64_t c = 0; c0 + c < cols; c++)
			tail += (float)(c < 16 ? blk[c] & 15 : blk[c - 16] >> 4) * x[c0 + c];
		tail *= qvl_f16_to_f32(scales[whole]);
	}
	for (int64_t b = 0; b < nb; b++)
		min_sum += qvl_f16_to_f32(mins[b]) * xsum[b];
	return lanes_sum(acc) + tail + min_sum;
}

static void
generic_rows(const qvl_matrix *w, int64_t r0, int64_t r1, const float *x, int64_t ldx, int n,
    const float *xsum, float *y, int64_t ldy)
{
	int64_t cols = w->cols, nb = qvl_qblocks(cols);

	for (int64_t r = r0; r < r1; r++)
		for (int i = 0; i < n; i++) {
			const float *xi = x + i * ldx;
			float v;
			switch (w->dtype) {
			case QVL_I8:
				v = dot_q8((const int8_t *)w->data + r * cols,
				    (const uint16_t *)w->scales + r * nb, xi, cols);
				break;
			case QVL_U8:
				v = dot_q4((const uint8_t *)w->data + r * qvl_q4_row_bytes(cols),
				    (const uint16_t *)w->scales + r * nb,
				    (const uint16_t *)w->mins + r * nb, xi, xsum + i * nb, cols);
				break;
			default:
				v = dot_float(w->dtype, (const char *)w->data +
				    r * cols * (int64_t)qvl_dtype_size(w->dtype), xi, cols);
			}
			y[i * ldy + r] = v;
		}
}

static void
generic_widen(const qvl_matrix *w, int64_t r0, int64_t nr, float *dst)
{
	int64_t cols = w->cols, nb = qvl_qblocks(cols);

	if (w->dtype != QVL_I8 && w->dtype != QVL_U8) {
		qvl_to_f32(w->dtype, w->data, (size_t)(r0 * cols), (size_t)(nr * cols), dst);
		return;
	}
	for (int64_t r = r0; r < r0 + nr; r++, dst += cols) {
		const uint16_t *sc = (const uint16_t *)w->scales + r * nb;
		if (w->dtype == QVL_I8) {
			const int8_t *q = (const int8_t *)w->data + r * cols;
			for (int64_t c = 0; c < cols; c++)
				dst[c] = qvl_f16_to_f32(sc[c / QVL_QBLOCK]) * (float)q[c];
		} else {
			const uint8_t *q = (const uint8_t *)w->data + r * qvl_q4_row_bytes(cols);
			const uint16_t *mn = (const uint16_t *)w->mins + r * nb;
			for (int64_t c = 0; c < cols; c++) {
				int64_t b = c / QVL_QBLOCK, j = c % QVL_QBLOCK;
				const uint8_t *blk = q + b * (QVL_QBLOCK / 2);
				int v = j < 16 ? blk[j] & 15 : blk[j - 16] >> 4;
				dst[c] = qvl_f16_to_f32(sc[b]) * (float)v + qvl_f16_to_f32(mn[b]);
			}
		}
	}
}

static int64_t
generic_rows_max_n(const qvl_matrix *w)
{
	(void)w;
	return QVL_KERN_MAXN;
}

#ifdef KERNELS_TABLE
/* q4 adds each block's min times the block's sum of x, summed once per input. */
static int64_t
generic_prep_floats(const qvl_matrix *w)
{
	return w->dtype == QVL_U8 ? qvl_qblocks(w->cols) : 0;
}

static void
generic_prep(const qvl_matrix *w, const float *x, float *xp)
{
	qvl_kern_block_sums(x, w->cols, xp);
}

const qvl_kernels KERNELS_TABLE = {generic_rows, generic_widen, generic_prep_floats,
    generic_prep, generic_rows_max_n};
#endif
