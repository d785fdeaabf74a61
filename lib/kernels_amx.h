/* kernels_amx.h: BF16 products on AMX tiles (kernels_amx.c), qvl's own, with or without
 * oneDNN in the build. */
#ifndef QVL_KERNELS_AMX_H
#define QVL_KERNELS_AMX_H

#include <stdint.h>

#include "pool.h"

/* What a product takes: y[i, r] (row stride ldy) = alpha Σ_k X[i, k] · W[r, k] + bias[r]
 * for i < n, r < rows.  W is BF16 [rows, cols], read where it lies; X [n, cols] is given
 * either as BF16 (xb) or as float32 (x, rounded to BF16 to nearest even, as
 * qvl_round_bf16 does), the other NULL.  Products exact, sums in float32; bias may be NULL
 * (alpha 1 and a bias: one rounding, the sum's). */
typedef struct qvl_amx_args {
	const uint16_t *w;
	int64_t rows, cols;
	const float *bias;
	float alpha;
	const uint16_t *xb;
	const float *x;
	int exact;    /* x taken whole: each value split into three BF16 parts that add up
	               * to it exactly, three products for one, as float32 as sgemm */
	int64_t n;
	float *y;
	int64_t ldy;
	int by_rows;  /* y[r, i] = alpha Σ_k X[i, k] · W[r, k] + bias[i] instead (row stride
	               * ldy), as the tiles lie: no transposes (attention's scores with q as W,
	               * long batches with x as W) */
	int accumulate; /* y += the above (the sum with its bias rounded first, then y's: the
	                 * bits of a product and an add), a residual add in the same pass */
	/* SwiGLU in the same pass: a second matrix of the shape of the one that holds the
	 * weights, W (w2, y not by rows) or X (xb2, BF16, y by rows), and bias2 its bias.
	 * Then yb (BF16, row stride ldy, where y would be) = silu(g) · u rounded to BF16, g
	 * the product above and u the same with w2 or xb2 (bias2), as qvl_silu_mul and
	 * qvl_round_bf16 give them; y is not used. */
	const uint16_t *w2, *xb2;
	const float *bias2;
	uint16_t *yb;
} qvl_amx_args;

/* Returns 0, or -1 (nothing written) when the CPU has no usable AMX, the arguments are
 * inconsistent or memory is short.  pool may be NULL (the calling thread alone). */
int qvl_amx_product(qvl_pool *pool, const qvl_amx_args *args);

/* Whether qvl_amx_product can run here (AMX granted and working, QVL_CPU not capping). */
int qvl_amx_usable(void);

/* out[c][r] = in[r][c] for a 16 x 16 block of 32-bit values (each array 64-byte rows, may
 * be the same); for the test of the transposition the kernels rely on.  No-op without
 * AVX-512. */
void qvl_amx_transpose16(const uint32_t in[16][16], uint32_t out[16][16]);

#endif
