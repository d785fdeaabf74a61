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
 * on len, never on the threads.
 *
 * In bf16 precision the products go to BF16 units (the scores to qvl's own AMX tiles where
 * the CPU has them, the rest to oneDNN), each pool thread running its own single-threaded
 * calls.  oneDNN's fast kernels (brgemm) take only dense batches, and the AMX tiles want
 * whole rows, so the rotated q, k and v are first rounded to BF16 in head-major blocks
 * per group (qvl_vit_attn_pack); a task then covers all heads of a window (one batched
 * product for the scores, one for the output) or, for full attention, a block of queries
 * of one head.  The softmax is float32 and its probabilities are rounded to BF16 after the
 * division, as the reference does running in bfloat16. */
#include "vit_attn.h"

#include <math.h>
#include <string.h>

#include "kernels_amx.h"
#include "kernels_dnnl.h"
#include "matmul.h"
#include "mrope.h"
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
    int64_t q0, int64_t qn, int64_t maxlen, float *scratch, float *out)
{
	const float *q = qkv + row0 * 3 * d + (int64_t)head * hd, *k = q + d, *v = q + 2 * d;
	float *s = scratch, *o = s + QUERY_BLOCK * maxlen, sums[QUERY_BLOCK];
	float scale = 1.0f / sqrtf((float)hd);

	for (int64_t i0 = q0; i0 < q0 + qn; i0 += QUERY_BLOCK) {
		int64_t nq = q0 + qn - i0 < QUERY_BLOCK ? q0 + qn - i0 : QUERY_BLOCK;

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

/* Scores of one bf16 task, at most (floats, 4 MB): a window's heads together when they fit,
 * else blocks of queries of one head.  A 1 MB budget left a 9912-patch page's full
 * attention 16 queries a block: 42.7-44.1 s, against 40.7-41.2 s with 96 (A4 and 812 x 812
 * pages alike within noise). */
#define SCORE_BUDGET (1 << 20)

void
qvl_vit_attn_bf16_task(int heads, int64_t len, int *nheads, int64_t *qn)
{
	if ((int64_t)heads * len * len <= SCORE_BUDGET) {
		*nheads = heads;
		*qn = len;
		return;
	}
	*nheads = 1;
	*qn = SCORE_BUDGET / len / 16 * 16;
	if (*qn < 16)
		*qn = 16;
	if (*qn > len)
		*qn = len;
}

size_t
qvl_vit_attn_bf16_scratch_bytes(int nheads, int64_t qn, int64_t len, int head_dim)
{
	size_t scores = (size_t)nheads * (size_t)qn * (size_t)len;

	return scores * (sizeof(float) + sizeof(uint16_t)) +
	    (size_t)nheads * (size_t)qn * (size_t)head_dim * sizeof(float);
}

void
qvl_vit_attn_pack(const float *qkv, int64_t n, int64_t d, int head_dim, int64_t row0,
    int64_t len, int64_t r0, int64_t r1, const float *cos, const float *sin,
    uint16_t *packed)
{
	int heads = (int)(d / head_dim), half = head_dim / 2;
	float rotated[QVL_MAX_HEAD_DIM];

	for (int64_t r = r0; r < r1; r++)
		for (int part = 0; part < 3; part++)
			for (int h = 0; h < heads; h++) {
				const float *v = qkv + r * 3 * d + part * d + (int64_t)h * head_dim;
				uint16_t *dst = packed + part * n * d + row0 * d +
				    ((int64_t)h * len + r - row0) * head_dim;

				if (part == 2 || cos == NULL) {
					qvl_round_bf16(v, 1.0f, head_dim, dst);
					continue;
				}
				/* rotated as the float32 path rotates qkv in place */
				memcpy(rotated, v, (size_t)head_dim * sizeof *rotated);
				qvl_mrope_apply(rotated, cos + r * half, sin + r * half, head_dim);
				qvl_round_bf16(rotated, 1.0f, head_dim, dst);
			}
}

int
qvl_vit_attn_bf16(qvl_dnnl_local *local, const uint16_t *packed, int64_t n, int64_t d,
    int head_dim, int64_t row0, int64_t len, int head0, int nheads, int64_t i0, int64_t qn,
    void *scratch, uint16_t *out)
{
	int64_t hd = head_dim, block = len * hd, scores = (int64_t)nheads * qn * len;
	const uint16_t *q = packed + row0 * d + head0 * block, *k = q + n * d, *v = k + n * d;
	float *s = scratch, *o = s + scores;
	uint16_t *p = (uint16_t *)(o + (int64_t)nheads * qn * hd);
	float scale = 1.0f / sqrtf((float)hd);

	/* A task of one head reads its block of queries; one of all heads has them all.  The
	 * scores on AMX tiles of qvl's own where the CPU has them: oneDNN ran the full
	 * attention's (304 x 3364 x 80 a call) at about 0.2 TFLOP/s there.  (The output's
	 * product stays with oneDNN: on AMX tiles, with the values as a transposed input, the
	 * 812 x 812 tower took 4.26-4.57 s against 4.32-4.33.) */
	if (qvl_amx_usable()) {
		for (int h = 0; h < nheads; h++) {
			qvl_amx_args a = {
				.w = q + h * block + i0 * hd, .rows = qn, .cols = hd,
				.alpha = scale, .xb = k + h * block, .n = len,
				.y = s + h * qn * len, .ldy = len, .by_rows = 1,
			};
			if (qvl_amx_product(NULL, &a) < 0)
				return -1;
		}
	} else if (qvl_dnnl_bmm(local, nheads, qn, len, hd, scale, q + i0 * hd, k, 1, s) < 0)
		return -1;
	for (int64_t r = 0; r < nheads * qn; r++)
		qvl_round_bf16(s + r * len, 1.0f / qvl_exp_shifted(s + r * len, len), len,
		    p + r * len);
	if (qvl_dnnl_bmm(local, nheads, qn, hd, len, 1.0f, p, v, 0, o) < 0)
		return -1;
	for (int h = 0; h < nheads; h++)
		for (int64_t r = 0; r < qn; r++)
			qvl_round_bf16(o + (h * qn + r) * hd, 1.0f, hd,
			    out + (row0 + i0 + r) * d + (int64_t)(head0 + h) * hd);
	return 0;
}
