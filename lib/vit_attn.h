/* vit_attn.h: the vision tower's attention over one group of rows (a window or a temporal
 * slice), single-threaded so that many groups and heads run at once on the pool's threads:
 * in float32 (sgemm) or with BF16 products (oneDNN). */
#ifndef QVL_VIT_ATTN_H
#define QVL_VIT_ATTN_H

#include <stddef.h>
#include <stdint.h>

#include "kernels_dnnl.h"

/* The largest head_dim the bf16 path rotates on the stack (the models have 80). */
#define QVL_MAX_HEAD_DIM 1024

/* Floats of scratch one thread needs for groups of up to maxlen rows. */
size_t qvl_vit_attn_scratch_floats(int64_t maxlen, int head_dim);

/* For head `head` of the rotated qkv rows [n, 3 * d] (q | k | v, each heads x head_dim),
 * out[i, head] = softmax(q_i · Kᵀ / sqrt(head_dim)) · V over the group of rows
 * row0 .. row0 + len, for i in q0 .. q0 + qn of the group (out is [n, d]).
 * scratch: qvl_vit_attn_scratch_floats(maxlen, head_dim) floats of the calling thread. */
void qvl_vit_attn_group(const float *qkv, int64_t d, int head, int head_dim, int64_t row0,
    int64_t len, int64_t q0, int64_t qn, int64_t maxlen, float *scratch, float *out);

/* bf16 precision (oneDNN): the group's tasks cover nheads heads and qn queries each. */
void qvl_vit_attn_bf16_task(int heads, int64_t len, int *nheads, int64_t *qn);
/* Bytes of scratch a thread needs for a task of nheads x qn queries over len keys. */
size_t qvl_vit_attn_bf16_scratch_bytes(int nheads, int64_t qn, int64_t len, int head_dim);

/* Rounds rows r0 .. r1 of the group row0 .. row0 + len of qkv [n, 3 * d] to BF16 in
 * packed [3][n, d], head-major within the group: q, k or v of row row0 + i, head h, at
 * part * n * d + row0 * d + (h * len + i) * head_dim.  With cos and sin ([n, head_dim / 2],
 * the rows' rotary angles) q and k are rotated on the way, as the float32 path does in
 * place; NULL: qkv is rotated already. */
void qvl_vit_attn_pack(const float *qkv, int64_t n, int64_t d, int head_dim, int64_t row0,
    int64_t len, int64_t r0, int64_t r1, const float *cos, const float *sin,
    uint16_t *packed);

/* Output rows row0 + i0 .. + qn of heads head0 .. head0 + nheads of the group row0 ..
 * row0 + len from packed (qvl_vit_attn_pack) with `local`'s products, rounded to BF16 into
 * out [n, d] for the projection's BF16 product.  Returns 0, or -1 when oneDNN fails. */
int qvl_vit_attn_bf16(qvl_dnnl_local *local, const uint16_t *packed, int64_t n, int64_t d,
    int head_dim, int64_t row0, int64_t len, int head0, int nheads, int64_t i0, int64_t qn,
    void *scratch, uint16_t *out);

#endif
