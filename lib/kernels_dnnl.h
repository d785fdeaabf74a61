/* kernels_dnnl.h: BF16 products through oneDNN (AMX tiles where the CPU has them and the
 * kernel grants them, avx512_core_bf16 otherwise), when the build has it (QVL_HAVE_DNNL). */
#ifndef QVL_KERNELS_DNNL_H
#define QVL_KERNELS_DNNL_H

#include <stdint.h>

#include "matmul.h"
#include "pool.h"

/* y[n, rows] = bf16(x[n, cols]) · bf16(W)ᵀ + bias with float32 accumulation and output:
 * BF16 matrices as they are, other kinds (q8, q4, F16, F32) in tiles widened to BF16.
 * Returns 0, or -1 when oneDNN is not built in, the CPU has no BF16 support or oneDNN
 * fails: then y may hold part of the result and the caller computes it in float32. */
int qvl_dnnl_matmul_bf16(qvl_pool *pool, const qvl_matrix *w, const float *bias,
    const float *x, int64_t n, float *y);

/* "oneDNN 2.6.3" or "none (built without oneDNN)", for benchmarks and diagnostics. */
const char *qvl_dnnl_info(char *buf, int len);

#endif
