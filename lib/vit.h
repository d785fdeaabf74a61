/* vit.h: the Qwen2.5-VL vision tower (patch embedding and transformer blocks).
 *
 * Input is one image or one video as the processor lays it out: pixel_values [N, patch_dim]
 * with N = t * h * w patches of the grid (t, h, w), rows in merge-unit order (for each
 * temporal slice, merge units in raster order, the spatial_merge_size^2 patches of a unit
 * consecutive).  Output is the residual stream after the last block, [N, hidden], in the
 * same row order.  The tower never reorders its rows: window attention gathers the rows of
 * one window (4x4 merge units of 112 pixels, partial at the right and bottom edges) and the
 * full-attention blocks attend within one temporal slice, so no N x N mask ever exists and
 * attention memory grows with the window, not the image. */
#ifndef QVL_VIT_H
#define QVL_VIT_H

#include <stdint.h>

#include "config.h"
#include "err.h"
#include "pool.h"
#include "safetensors.h"

typedef struct qvl_vit qvl_vit;

/* Called with the residual stream x [n, dim] (original row order) after the patch
 * embedding (block == -1) and after each block (block == 0 .. depth-1) for which the
 * caller asked (qvl_vit_forward's tap_mask).  A non-zero return stops the forward pass,
 * which then fails with the message the callback left in err. */
typedef int (*qvl_vit_tap_fn)(void *ctx, int block, const float *x, int64_t n, int64_t dim,
    qvl_err *err);

/* Views the tower's weights in w (which must outlive the tower) and checks every tensor's
 * name and shape against cfg; error naming the tensor otherwise. */
qvl_vit *qvl_vit_new(const qvl_weights *w, const qvl_vision_config *cfg, qvl_err *err);
void qvl_vit_free(qvl_vit *vit);

/* Checks that a grid (t, h, w) fits cfg and describes rows x cols pixel values. */
int qvl_vit_check_input(const qvl_vision_config *cfg, const int64_t grid_thw[3], int64_t rows,
    int64_t cols, qvl_err *err);

/* out [n, hidden] = tower(pixels [n, patch_dim]) for one image or video of grid grid_thw.
 * tap, when not NULL, is called for block -1 when bit 0 of tap_mask is set and for block K
 * when bit K+1 is set (tap_mask is an array of depth + 1 flags).  pool may be NULL. */
int qvl_vit_forward(qvl_vit *vit, qvl_pool *pool, const float *pixels, const int64_t grid_thw[3],
    float *out, const unsigned char *tap_mask, qvl_vit_tap_fn tap, void *tap_ctx, qvl_err *err);

/* Floating-point operations of one forward pass (every matrix product and the attention
 * products, 2 per multiply-add), for benchmarks. */
double qvl_vit_flops(const qvl_vision_config *cfg, const int64_t grid_thw[3]);

#endif
