/* kernels_amx.h: BF16 products on AMX tiles (kernels_amx.c), qvl's own, with or without
 * oneDNN in the build. */
#ifndef QVL_KERNELS_AMX_H
#define QVL_KERNELS_AMX_H

#include <stdint.h>

#include "pool.h"

/* y[i, r] (row stride ldy) = alpha Σ_k x[i, k] · w[r, k] + bias[r] for i < n, r < rows, with w
 * BF16 [rows, cols] read where it lies, x given either as BF16 (xb) or as float32 (x,
 * rounded to BF16 to nearest even, as qvl_round_bf16 does), the other NULL; products
 * exact, sums in float32.  bias may be NULL.  Returns 0, or -1 (nothing written) when the
 * CPU has no usable AMX or memory is short. */
int qvl_amx_product(qvl_pool *pool, const uint16_t *w, int64_t rows, int64_t cols,
    const float *bias, float alpha, const uint16_t *xb, const float *x, int64_t n, float *y,
    int64_t ldy);

/* Whether qvl_amx_product can run here (AMX granted and working, QVL_CPU not capping). */
int qvl_amx_usable(void);

/* out[c][r] = in[r][c] for a 16 x 16 block of 32-bit values (each array 64-byte rows, may
 * be the same); for the test of the transposition the kernels rely on.  No-op without
 * AVX-512. */
void qvl_amx_transpose16(const uint32_t in[16][16], uint32_t out[16][16]);

#endif
