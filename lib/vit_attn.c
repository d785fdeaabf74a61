/* vit_attn.c: attention for one (group, head) of the vision tower.
 *
 * The tower keeps its rows in window order, so a group (a window, or a temporal slice for
 * full attention) is a run of consecutive rows of qkv, read where they are: for blocks of
 * up to QUERY_BLOCK queries, the scores s = scale · q kᵀ and the output s·v are
 * single-threaded sgemm calls on the rows' head_dim columns (leading dimension 3 d; the
 * pool's threads run groups and heads side by side, OpenBLAS runs single-threaded inside
 * them); the softmax's exponentials are vmath's, and its division is done on the head_dim
 * outputs of a query instead of its len probabilities.  OpenBLAS reaches 86-114 GFLOP/s on
 * one Zen 4 core at these shapes (64 x 64 x 80 windows, 128 x 3364 x 80 full attention),
 * against 50-70 for qvl's own register-blocked loops before.
 *
 * Scratch: scores [QUERY_BLOCK, maxlen], out [QUERY_BLOCK, head_dim].  Blocks depend only
 * on len, never on the threads. */
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
	return (size_t)(QUERY_BLOCK * maxlen + QUERY_BLOCK * head_dim);
}

void
qvl_vit_attn_group(const float *qkv, int64_t d, int head, int hd, int64_t row0, int64_t len,
    int64_t maxlen, float *scratch, float *out)
{
	const float *q = qkv + row0 * 3 * d + (int64_t)head * hd, *k = q + d, *v = q + 2 * d;
	float *s = scratch, *o = s + QUERY_BLOCK * maxlen, sums[QUERY_BLOCK];
	float scale = 1.0f / sqrtf((float)hd);

	for (int64_t i0 = 0; i0 < len; i0 += QUERY_BLOCK) {
		int64_t nq = len - i0 < QUERY_BLOCK ? len - i0 : QUERY_BLOCK;

		qvl_sgemm_nt(nq, len, hd, scale, q + i0 * 3 * d, 3 * d, k, 3 * d, 0.0f, s, len);
		for (int64_t r = 0; r < nq; r++)
			sums[r] = qvl_exp_shifted(s + r * len, len);
		qvl_sgemm_nn(nq, hd, len, 1.0f, s, len, v, 3 * d, 0.0f, o, hd);
		for (int64_t r = 0; r < nq; r++) {
			float *dst = out + (row0 + i0 + r) * d + (int64_t)head * hd;
			float inv = 1.0f / sums[r];
			for (int c = 0; c < hd; c++)
				dst[c] = o[r * hd + c] * inv;
		}
	}
}
