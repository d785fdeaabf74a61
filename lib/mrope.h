/* mrope.h: Qwen2.5-VL's multimodal rotary positions (M-RoPE).
 *
 * Every prompt token gets three position ids (time, height, width).  Text tokens advance all
 * three together; the pad tokens of an image or video take the coordinates of their merge
 * unit in the merged grid, offset by the running index; text after a vision block resumes at
 * the block's maximum + 1.  Generated tokens use cache slot + rope_delta on all three axes.
 * This is transformers' `Qwen2_5_VLModel.get_rope_index`, rule for rule. */
#ifndef QVL_MROPE_H
#define QVL_MROPE_H

#include <stdint.h>

#include "config.h"
#include "err.h"

/* The vision inputs of one prompt, in order of appearance: image grids (t, h, w in patches)
 * and video grids with their seconds per temporal patch group. */
typedef struct qvl_mrope_vision {
	const int64_t *image_grid;         /* n_images * 3 */
	int n_images;
	const int64_t *video_grid;         /* n_videos * 3 */
	const float *second_per_grid_t;    /* n_videos; NULL = 1.0 each, as the reference */
	int n_videos;
} qvl_mrope_vision;

/* Fills pos[0..n) (time), pos[n..2n) (height), pos[2n..3n) (width) for the prompt ids and
 * *rope_delta = max(pos) + 1 - n.  Errors: vision blocks that do not match the grids (count,
 * or a pad run of the wrong length). vision may be NULL (text only). */
int qvl_mrope_positions(const qvl_config *cfg, const int32_t *ids, int64_t n,
    const qvl_mrope_vision *vision, int64_t *pos, int64_t *rope_delta, qvl_err *err);

/* inv_freq[j] = 1 / theta^(2j / head_dim) for j < head_dim / 2, in float32 as the reference. */
void qvl_mrope_inv_freq(double theta, int head_dim, float *inv_freq);

/* cos/sin (head_dim / 2 values each) of the rotation angles of one token: channel j uses the
 * time, height or width position according to mrope_section. */
void qvl_mrope_cos_sin(const float *inv_freq, const int section[3], int head_dim, int64_t pt,
    int64_t ph, int64_t pw, float *cosv, float *sinv);

/* Rotates one head vector x[head_dim] in place (rotate-half style: channel j pairs with
 * j + head_dim / 2). */
void qvl_mrope_apply(float *x, const float *cosv, const float *sinv, int head_dim);

#endif
