/* norm.h: RMSNorm, the one normalization of Qwen2.5-VL (vision blocks, merger, decoder). */
#ifndef QVL_NORM_H
#define QVL_NORM_H

#include <stdint.h>

#include "pool.h"

/* y[r] = weight * x[r] / sqrt(mean(x[r]^2) + eps) for each of n rows of d values, the sum
 * of squares in double; rows are spread over the pool (NULL: this thread).  y may be x. */
void qvl_rms_norm(qvl_pool *pool, const float *x, const float *weight, int64_t n, int64_t d,
    double eps, float *y);
/* The same rows rounded to BF16 (qvl_round_bf16), for a product that takes them so. */
void qvl_rms_norm_bf16(qvl_pool *pool, const float *x, const float *weight, int64_t n,
    int64_t d, double eps, uint16_t *y);

#endif
