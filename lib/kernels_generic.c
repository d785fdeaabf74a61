/* kernels_generic.c: the kernels in plain C, for CPUs without AVX2 (and the reference the
 * vector versions are tested against). */
#define KERNELS_TABLE qvl_kernels_generic
#include "kernels_c.h"

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

