/* merger.h: the Qwen2.5-VL patch merger, from the vision tower's output to the rows that
 * replace the image pad tokens in the language model.
 *
 * ln_q (RMSNorm, eps 1e-6) on every patch, then the spatial_merge_size^2 consecutive rows of
 * one merge unit concatenated, Linear + bias, exact (erf) GELU, Linear + bias:
 * [N, hidden] -> [N / merge^2, out_hidden]. */
#ifndef QVL_MERGER_H
#define QVL_MERGER_H

#include <stdint.h>

#include "config.h"
#include "err.h"
#include "pool.h"
#include "safetensors.h"

typedef struct qvl_merger qvl_merger;

/* Views the merger's weights in w (which must outlive it), checking names and shapes. */
qvl_merger *qvl_merger_new(const qvl_weights *w, const qvl_vision_config *cfg, qvl_err *err);
void qvl_merger_free(qvl_merger *m);

/* Rows of input per output row (spatial_merge_size^2). */
int qvl_merger_unit(const qvl_merger *m);

/* out [n / unit, out_hidden] from x [n, hidden]; n must be a multiple of the unit.  When
 * ln_q is not NULL it receives the normalised rows [n, hidden] (for tests and taps). */
int qvl_merger_forward(qvl_merger *m, qvl_pool *pool, const float *x, int64_t n, float *out,
    float *ln_q, qvl_err *err);

/* Floating-point operations of the merger on n rows (2 per multiply-add). */
double qvl_merger_flops(const qvl_vision_config *cfg, int64_t n);

#endif
