/* vit_attn.c: attention for one (group, head) of the vision tower.
 *
 * The group's rows are gathered into q, k and v [len, head_dim]; then, for blocks of up to
 * QUERY_BLOCK queries, the scores s = scale · q kᵀ and the output s·v are single-threaded
 * sgemm calls (the pool's threads run groups and heads side by side, OpenBLAS runs
 * single-threaded inside them); the softmax's exponentials are vmath's, and its division
 * is done on the head_dim outputs of a query instead of its len probabilities.  OpenBLAS reaches 86-114
 * GFLOP/s on one Zen 4 core at these shapes (64 x 64 x 80 windows, 128 x 3364 x 80 full
 * attention), against 50-70 for qvl's own register-blocked loops before.
 *
 * Scratch: q, k, v [maxlen, head_dim], scores [QUERY_BLOCK, maxlen], out [QUERY_BLOCK,
 * head_dim].  Blocks depend only on len, never on the threads. */
#include "vit_attn.h"

#include <math.h>
#include <string.h>

#include "matmul.h"
#include "vmath.h"

/* Queries per block: their scores against every key stay in L2 (128 x 3364 floats for an
 * 812 x 812 image: 1.7 MB). */
#define QUERY_BLOCK 128

size_t
qvl_vit_attn_scratch_floats(int64_t maxlen, int head_dim)
{
	return (size_t)(3 * maxlen * head_dim + QUERY_BLOCK * maxlen + QUERY_BLOCK * head_dim);
}

void
qvl_vit_attn_group(const float *qkv, int64_t d, int head, int hd, const int64_t *rows,
    int64_t len, int64_t maxlen, float *scratch, float *out)
{
	float *q = scratch, *k = q + maxlen * hd, *v = k + maxlen * hd;
	float *s = v + maxlen * hd, *o = s + QUERY_BLOCK * maxlen, sums[QUERY_BLOCK];
	float scale = 1.0f / sqrtf((float)hd);

	for (int64_t i = 0; i < len; i++) {
		const float *src = qkv + rows[i] * 3 * d + (int64_t)head * hd;

		memcpy(q + i * hd, src, (size_t)hd * sizeof *q);
		memcpy(k + i * hd, src + d, (size_t)hd * sizeof *k);
		memcpy(v + i * hd, src + 2 * d, (size_t)hd * sizeof *v);
	}
	for (int64_t i0 = 0; i0 < len; i0 += QUERY_BLOCK) {
		int64_t nq = len - i0 < QUERY_BLOCK ? len - i0 : QUERY_BLOCK;

		qvl_sgemm_nt(nq, len, hd, scale, q + i0 * hd, hd, k, hd, 0.0f, s, len);
		for (int64_t r = 0; r < nq; r++)
			sums[r] = qvl_exp_shifted(s + r * len, len);
		qvl_sgemm_nn(nq, hd, len, 1.0f, s, len, v, hd, 0.0f, o, hd);
		for (int64_t r = 0; r < nq; r++) {
			float *dst = out + rows[i0 + r] * d + (int64_t)head * hd, inv = 1.0f / sums[r];
			for (int c = 0; c < hd; c++)
				dst[c] = o[r * hd + c] * inv;
		}
	}
}
