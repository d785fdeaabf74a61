/* vmath.c: SiLU gating and softmax over float arrays, a vector at a time.  A short tail
 * goes through the same vector code in a padded copy, so an element's result never depends
 * on where it sits (nor on how the threads split the array). */
#include "vmath.h"

#include <math.h>
#include <string.h>

/* silu(g) · u for one vector: the sigmoid from e^-|g| (never overflows), 1 / (1 + e) for
 * g >= 0 and e / (1 + e) below. */
static inline void
silu_mul_vec(float *gate, const float *up)
{
	qvl_vf g = qvl_vload(gate), e = -g;
	qvl_vi neg = g < qvl_splat(0.0f);

	e = (qvl_vf)(((qvl_vi)e & ~neg) | ((qvl_vi)g & neg)); /* -|g| */
	qvl_vexp_nonpos(&e);
	qvl_vf num = (qvl_vf)(((qvl_vi)qvl_splat(1.0f) & ~neg) | ((qvl_vi)e & neg));
	qvl_vstore(gate, g * (num / (1.0f + e)) * qvl_vload(up));
}

void
qvl_silu_mul(float *gate, const float *up, int64_t n)
{
	int64_t i = 0;

	for (; i + QVL_VL <= n; i += QVL_VL)
		silu_mul_vec(gate + i, up + i);
	if (i < n) {
		float g[QVL_VL] = { 0 }, u[QVL_VL] = { 0 };
		memcpy(g, gate + i, (size_t)(n - i) * sizeof *g);
		memcpy(u, up + i, (size_t)(n - i) * sizeof *u);
		silu_mul_vec(g, u);
		memcpy(gate + i, g, (size_t)(n - i) * sizeof *g);
	}
}

float
qvl_exp_shifted(float *x, int64_t n)
{
	int64_t whole = n / QVL_VL * QVL_VL;
	qvl_vf vmax = qvl_splat(x[0]), acc = qvl_splat(0.0f);
	float mx = x[0], sum = 0, tail[QVL_VL];

	for (int64_t j = 0; j < whole; j += QVL_VL) {
		qvl_vf v = qvl_vload(x + j);
		qvl_vi greater = v > vmax;
		vmax = (qvl_vf)(((qvl_vi)v & greater) | ((qvl_vi)vmax & ~greater));
	}
	for (int i = 0; i < QVL_VL; i++)
		mx = vmax[i] > mx ? vmax[i] : mx;
	for (int64_t j = whole; j < n; j++)
		mx = x[j] > mx ? x[j] : mx;
	for (int64_t j = 0; j < whole; j += QVL_VL) {
		qvl_vf e = qvl_vload(x + j) - mx;
		qvl_vexp_nonpos(&e);
		qvl_vstore(x + j, e);
		acc += e;
	}
	if (whole < n) {
		/* padded with -inf: e^-inf = 0 adds nothing */
		for (int i = 0; i < QVL_VL; i++)
			tail[i] = whole + i < n ? x[whole + i] - mx : -INFINITY;
		qvl_vf e = qvl_vload(tail);
		qvl_vexp_nonpos(&e);
		qvl_vstore(tail, e);
		acc += e;
		memcpy(x + whole, tail, (size_t)(n - whole) * sizeof *x);
	}
	for (int i = 0; i < QVL_VL; i++)
		sum += acc[i];
	return sum;
}

void
qvl_softmax(float *x, int64_t n, int64_t total)
{
	float inv = 1.0f / qvl_exp_shifted(x, n);

	for (int64_t j = 0; j < n; j++)
		x[j] *= inv;
	for (int64_t j = n; j < total; j++)
		x[j] = 0;
}
