/* kernels.h: the inner loops of the products with weights, one set per CPU level.
 *
 * Internal to matmul.c and quant.c (and their tests).  Each level implements the same two
 * operations on every storage kind of qvl_matrix (BF16, F16, F32, q8, q4):
 *   rows:  y[i * ldy + r] = W[r, :] · x[i * ldx + :] for r in [r0, r1), i in [0, n),
 *          n <= QVL_KERN_MAXN: decode and short batches, reading W in its own format;
 *   widen: W[r0 .. r0 + nr, :] as float32, row-major [nr, cols]: tiles for sgemm.
 * Within one level a row's result depends only on that row and x: never on r0, r1, n or
 * the thread that computes it, so products are bitwise the same for any thread count. */
#ifndef QVL_KERNELS_H
#define QVL_KERNELS_H

#include <stdint.h>

#include "cpu.h"
#include "matmul.h"

#define QVL_KERN_MAXN 8
#define QVL_QBLOCK 32 /* elements per scale in q8 and q4 */

typedef struct qvl_kernels {
	/* xp: x prepared for w's rows by prep, [n][prep_floats(w)], or NULL where prep_floats
	 * is 0 or there was no memory for it (then rows reads x; q4 needs xp). */
	void (*rows)(const qvl_matrix *w, int64_t r0, int64_t r1, const float *x, int64_t ldx,
	    int n, const float *xp, float *y, int64_t ldy);
	void (*widen)(const qvl_matrix *w, int64_t r0, int64_t nr, float *dst);
	/* Floats per input of x in the form rows wants for w, 0 when it reads x as it is:
	 * q4: the sums of x over each block (qvl_kern_block_sums); q8 on VNNI: x as int16
	 * blocks (qvl_kern_x16); BF16 on AVX-512: x in pair order (qvl_kern_pairs). */
	int64_t (*prep_floats)(const qvl_matrix *w);
	void (*prep)(const qvl_matrix *w, const float *x, float *xp);
	/* The longest batch for which rows (reading W once per QVL_KERN_MAXN inputs) is
	 * faster than widening tiles of W for sgemm; at least QVL_KERN_MAXN. */
	int64_t (*rows_max_n)(const qvl_matrix *w);
} qvl_kernels;

/* x coded for the int16 q8 kernels: per block of QVL_QBLOCK values a float step
 * dx = max|x| / 32767 and the values round(x / dx) as int16 (a short last block padded with
 * zeros): nb floats of steps, then nb * 32 int16, in QVL_X16_FLOATS(nb) floats.  Relative
 * error 1.5e-5 of the block's largest value, far under q8's own. */
#define QVL_X16_FLOATS(nb) ((nb) * (1 + QVL_QBLOCK / 2))
void qvl_kern_x16(const float *x, int64_t cols, float *rec);

/* The kernels of a level (levels the build cannot compile fall back to lower ones). */
const qvl_kernels *qvl_kernels_for(qvl_cpu_level level);

/* Per-level tables, defined in kernels_*.c. */
extern const qvl_kernels qvl_kernels_generic, qvl_kernels_avx2, qvl_kernels_avx512;

/* qvl_matmul with the given kernels (tests compare the levels with it). */
void qvl_matmul_kern(qvl_pool *pool, const qvl_kernels *k, const qvl_matrix *w,
    const float *bias, const float *x, int64_t n, float *y);

/* Sums of x over each QVL_QBLOCK block of its cols values, into xsum[nblocks]. */
void qvl_kern_block_sums(const float *x, int64_t cols, float *xsum);

/* x in pair order for the AVX-512 BF16 kernel: in each full chunk of QVL_PAIR_CHUNK values
 * the even-indexed values, then the odd ones (a 64-byte load of BF16 weights holds an
 * even and an odd weight in each 32-bit lane); the last partial chunk as it is. */
#define QVL_PAIR_CHUNK 32
void qvl_kern_pairs(const float *x, int64_t cols, float *xp);

static inline int64_t
qvl_qblocks(int64_t cols)
{
	return (cols + QVL_QBLOCK - 1) / QVL_QBLOCK;
}

/* Bytes per row of q4 data: 16 per block, the last block padded. */
static inline int64_t
qvl_q4_row_bytes(int64_t cols)
{
	return qvl_qblocks(cols) * (QVL_QBLOCK / 2);
}

#endif
