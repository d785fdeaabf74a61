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
/* The same with x given as BF16 already (xb[n, cols]). */
int qvl_dnnl_matmul_xb(qvl_pool *pool, const qvl_matrix *w, const float *bias,
    const uint16_t *xb, int64_t n, float *y);

/* Batched BF16 products on the calling thread alone, for work that the pool's threads
 * share out themselves (the vision tower's attention): each thread keeps its own engine,
 * stream and compiled primitives.  NULL when oneDNN is not built in, the CPU has no BF16
 * products or oneDNN's threads cannot be held to one. */
typedef struct qvl_dnnl_local qvl_dnnl_local;
qvl_dnnl_local *qvl_dnnl_local_new(void);
void qvl_dnnl_local_free(qvl_dnnl_local *local);

/* c[i] = alpha · a[i] · b[i]ᵀ (b_transposed: b is [batch, n, k]) or alpha · a[i] · b[i]
 * (b is [batch, k, n]) for i < batch, with a [batch, m, k] BF16 and c [batch, m, n]
 * float32, all dense; float32 accumulation.  Returns 0, or -1 when oneDNN fails (c then
 * undefined). */
int qvl_dnnl_bmm(qvl_dnnl_local *local, int64_t batch, int64_t m, int64_t n, int64_t k,
    float alpha, const uint16_t *a, const uint16_t *b, int b_transposed, float *c);


/* "oneDNN 2.6.3" or "none (built without oneDNN)", for benchmarks and diagnostics. */
const char *qvl_dnnl_info(char *buf, int len);

#endif
