/* vit_attn.c: attention for one (group, head) in the vector types of vmath.h.
 *
 * Layout in scratch (all widths padded to whole vectors, padding finite):
 *   q  [len4, hdp]   the group's queries (rows padded to a multiple of 4)
 *   kt [hdp, lp]     keys transposed, so a vector holds 16 keys' values of one channel
 *   v  [lp, hdp]     values
 *   s  [4, lp]       scores, then probabilities, of 4 queries
 * with hdp = head_dim rounded up to 16 and lp = len rounded up to 64. */
#include "vit_attn.h"

#include <math.h>
#include <string.h>

#include "vmath.h"

#define VL QVL_VL              /* floats per vector */
#define QB 4                   /* queries per block */
#define KB (4 * VL)            /* keys per score block */

typedef qvl_vf vf;
typedef qvl_vi vi;
#define splat qvl_splat
#define vload qvl_vload
#define vstore qvl_vstore

static int64_t
round_up(int64_t x, int64_t m)
{
	return (x + m - 1) / m * m;
}

size_t
qvl_vit_attn_scratch_floats(int64_t maxlen, int head_dim)
{
	int64_t hdp = round_up(head_dim, VL), lp = round_up(maxlen, KB);

	return (size_t)(round_up(maxlen, QB) * hdp + hdp * lp + lp * hdp + QB * lp + QB * hdp);
}

/* s[r][j] = scale · q_r · k_j for QB queries and all lp keys. */
static void
scores(const float *q, int64_t hdp, int hd, const float *kt, int64_t lp, float scale, float *s)
{
	for (int64_t j = 0; j < lp; j += KB) {
		vf a00 = { 0 }, a01 = { 0 }, a02 = { 0 }, a03 = { 0 };
		vf a10 = { 0 }, a11 = { 0 }, a12 = { 0 }, a13 = { 0 };
		vf a20 = { 0 }, a21 = { 0 }, a22 = { 0 }, a23 = { 0 };
		vf a30 = { 0 }, a31 = { 0 }, a32 = { 0 }, a33 = { 0 };

		for (int d = 0; d < hd; d++) {
			const float *k = kt + d * lp + j;
			vf k0 = vload(k), k1 = vload(k + VL), k2 = vload(k + 2 * VL);
			vf k3 = vload(k + 3 * VL);
			float q0 = q[d], q1 = q[hdp + d], q2 = q[2 * hdp + d];
			float q3 = q[3 * hdp + d];

			a00 += q0 * k0; a01 += q0 * k1; a02 += q0 * k2; a03 += q0 * k3;
			a10 += q1 * k0; a11 += q1 * k1; a12 += q1 * k2; a13 += q1 * k3;
			a20 += q2 * k0; a21 += q2 * k1; a22 += q2 * k2; a23 += q2 * k3;
			a30 += q3 * k0; a31 += q3 * k1; a32 += q3 * k2; a33 += q3 * k3;
		}
#define ROW(r, x0, x1, x2, x3)                                                             \
	do {                                                                               \
		float *o = s + (r) * lp + j;                                               \
		vstore(o, (x0) * scale);                                                   \
		vstore(o + VL, (x1) * scale);                                              \
		vstore(o + 2 * VL, (x2) * scale);                                          \
		vstore(o + 3 * VL, (x3) * scale);                                          \
	} while (0)
		ROW(0, a00, a01, a02, a03);
		ROW(1, a10, a11, a12, a13);
		ROW(2, a20, a21, a22, a23);
		ROW(3, a30, a31, a32, a33);
#undef ROW
	}
}

/* In place: s[0 .. len) = softmax, s[len .. lp) = 0. */
static void
softmax(float *s, int64_t len, int64_t lp)
{
	float max = s[0], sum = 0;
	vf acc = { 0 }, vmax = splat(s[0]);
	int64_t j0 = len / VL * VL;

	for (int64_t j = 0; j < j0; j += VL) {
		vf x = vload(s + j);
		vi greater = x > vmax;
		vmax = (vf)(((vi)x & greater) | ((vi)vmax & ~greater));
	}
	for (int i = 0; i < VL; i++)
		max = vmax[i] > max ? vmax[i] : max;
	for (int64_t j = j0; j < len; j++)
		if (s[j] > max)
			max = s[j];
	for (int64_t j = 0; j < lp; j += VL) {
		vf e = vload(s + j) - max;
		qvl_vexp_nonpos(&e);
		vstore(s + j, e);
	}
	for (int64_t j = len; j < lp; j++)
		s[j] = 0;            /* padded keys (their scores are not even computed from keys) */
	for (int64_t j = 0; j < lp; j += VL)
		acc += vload(s + j);
	for (int i = 0; i < VL; i++)
		sum += acc[i];
	for (int64_t j = 0; j < lp; j += VL)
		vstore(s + j, vload(s + j) * (1.0f / sum));
}

/* Vectors of a row of V one pass of weighted_sum holds: QB x WS_VECS accumulators, the row's
 * vectors and the probabilities must fit the registers (32 with AVX-512, 16 without). */
#ifdef __AVX512F__
#define WS_VECS 5
#else
#define WS_VECS 2
#endif

/* Columns [c, c + nv·VL) of o[r] = Σ_j s[r][j] v_j for QB queries, over the first len keys:
 * one pass over the keys loads each vector of V once for all QB queries (head_dim 80 is
 * one pass). */
static inline __attribute__((always_inline)) void
weighted_pass(const float *s, int64_t lp, const float *v, int64_t hdp, int64_t len, int64_t c,
    int nv, float *o)
{
	vf a[QB][WS_VECS];

	for (int r = 0; r < QB; r++)
		for (int k = 0; k < nv; k++)
			a[r][k] = splat(0.0f);
	for (int64_t j = 0; j < len; j++) {
		const float *vj = v + j * hdp + c;
		float p0 = s[j], p1 = s[lp + j], p2 = s[2 * lp + j], p3 = s[3 * lp + j];
		_Pragma("GCC unroll 8")
		for (int k = 0; k < nv; k++) {
			vf x = vload(vj + k * VL);
			a[0][k] += p0 * x;
			a[1][k] += p1 * x;
			a[2][k] += p2 * x;
			a[3][k] += p3 * x;
		}
	}
	for (int r = 0; r < QB; r++)
		for (int k = 0; k < nv; k++)
			vstore(o + r * hdp + c + k * VL, a[r][k]);
}

/* o[r] = Σ_j s[r][j] v_j for QB queries, over the first len keys. */
static void
weighted_sum(const float *s, int64_t lp, const float *v, int64_t hdp, int64_t len, float *o)
{
	for (int64_t c = 0; c < hdp;) {
		int64_t left = (hdp - c) / VL;
		int nv = left < WS_VECS ? (int)left : WS_VECS;
		switch (nv) {
#if WS_VECS > 2
		case 5: weighted_pass(s, lp, v, hdp, len, c, 5, o); break;
		case 4: weighted_pass(s, lp, v, hdp, len, c, 4, o); break;
		case 3: weighted_pass(s, lp, v, hdp, len, c, 3, o); break;
#endif
		case 2: weighted_pass(s, lp, v, hdp, len, c, 2, o); break;
		default: weighted_pass(s, lp, v, hdp, len, c, 1, o); break;
		}
		c += (int64_t)nv * VL;
	}
}

void
qvl_vit_attn_group(const float *qkv, int64_t d, int head, int hd, const int64_t *rows,
    int64_t len, int64_t maxlen, float *scratch, float *out)
{
	int64_t hdp = round_up(hd, VL), lp = round_up(len, KB), maxlp = round_up(maxlen, KB);
	float *q = scratch, *kt = q + round_up(maxlen, QB) * hdp, *v = kt + hdp * maxlp;
	float *s = v + maxlp * hdp, *o = s + QB * maxlp;
	float scale = 1.0f / sqrtf((float)hd);

	/* Gather; padding rows/columns keep whatever finite values they had: padded keys are
	 * masked in softmax, padded values get probability 0, padded queries are dropped. */
	for (int64_t i = 0; i < len; i++) {
		const float *src = qkv + rows[i] * 3 * d + (int64_t)head * hd;

		memcpy(q + i * hdp, src, (size_t)hd * sizeof *q);
		for (int c = 0; c < hd; c++)
			kt[c * lp + i] = src[d + c];
		memcpy(v + i * hdp, src + 2 * d, (size_t)hd * sizeof *v);
	}
	for (int64_t i0 = 0; i0 < len; i0 += QB) {
		scores(q + i0 * hdp, hdp, hd, kt, lp, scale, s);
		for (int r = 0; r < QB; r++)
			softmax(s + r * lp, len, lp);
		weighted_sum(s, lp, v, hdp, len, o);
		for (int r = 0; r < QB && i0 + r < len; r++)
			memcpy(out + rows[i0 + r] * d + (int64_t)head * hd, o + r * hdp,
			    (size_t)hd * sizeof *o);
	}
}
