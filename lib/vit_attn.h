/* vit_attn.h: the vision tower's attention over one group of rows (a window or a temporal
 * slice) for one head, in float32: single-threaded sgemm for the products, so that many
 * groups and heads run at once on the pool's threads. */
#ifndef QVL_VIT_ATTN_H
#define QVL_VIT_ATTN_H

#include <stddef.h>
#include <stdint.h>

/* Floats of scratch one thread needs for groups of up to maxlen rows. */
size_t qvl_vit_attn_scratch_floats(int64_t maxlen, int head_dim);

/* For head `head` of the rotated qkv rows [n, 3 * d] (q | k | v, each heads x head_dim),
 * out[i, head] = softmax(q_i · Kᵀ / sqrt(head_dim)) · V over the group of rows
 * row0 .. row0 + len, for i in the group (out is [n, d]).
 * scratch: qvl_vit_attn_scratch_floats(maxlen, head_dim) floats of the calling thread. */
void qvl_vit_attn_group(const float *qkv, int64_t d, int head, int head_dim, int64_t row0,
    int64_t len, int64_t maxlen, float *scratch, float *out);

#endif
