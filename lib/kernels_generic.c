/* kernels_generic.c: the kernels in plain C, for CPUs without AVX2 (and the reference the
 * vector versions are tested against). */
#define KERNELS_TABLE qvl_kernels_generic
#include "kernels_c.h"

#include <math.h>

void
qvl_kern_block_sums(const float *x, int64_t cols, float *xsum)
{
	for (int64_t c0 = 0, b = 0; c0 < cols; c0 += QVL_QBLOCK, b++) {
		int64_t len = cols - c0 < QVL_QBLOCK ? cols - c0 : QVL_QBLOCK;
		float s = 0;
		for (int64_t c = 0; c < len; c++)
			s += x[c0 + c];
		xsum[b] = s;
	}
}

void
qvl_kern_pairs(const float *x, int64_t cols, float *xp)
{
	int64_t c = 0;

	for (; c + QVL_PAIR_CHUNK <= cols; c += QVL_PAIR_CHUNK)
		for (int j = 0; j < QVL_PAIR_CHUNK / 2; j++) {
			xp[c + j] = x[c + 2 * j];
			xp[c + QVL_PAIR_CHUNK / 2 + j] = x[c + 2 * j + 1];
		}
	for (; c < cols; c++)
		xp[c] = x[c];
}

void
qvl_kern_x16(const float *x, int64_t cols, float *rec)
{
	int64_t nb = qvl_qblocks(cols);
	int16_t *xq = (int16_t *)(rec + nb);

	for (int64_t c0 = 0, b = 0; c0 < cols; c0 += QVL_QBLOCK, b++) {
		int64_t len = cols - c0 < QVL_QBLOCK ? cols - c0 : QVL_QBLOCK;
		float amax = 0, d, inv;
		for (int64_t c = 0; c < len; c++)
			amax = fabsf(x[c0 + c]) > amax || x[c0 + c] != x[c0 + c] ?
			    fabsf(x[c0 + c]) : amax;
		/* infinities and NaN make the block's step NaN, so the products are NaN as
		 * they would be in float32 */
		d = isfinite(amax) ? amax / 32767.0f : NAN;
		inv = d > 0 ? 1.0f / d : 0;
		rec[b] = d;
		for (int64_t c = 0; c < QVL_QBLOCK; c++) {
			float v = c < len && inv > 0 ? nearbyintf(x[c0 + c] * inv) : 0;
			xq[b * QVL_QBLOCK + c] = (int16_t)(v > 32767 ? 32767 : v < -32767 ? -32767 : v);
		}
	}
}
