/* test_vmath.c: the vector e^x against double precision (ulp), its edges (0, -87, -inf,
 * NaN), SiLU gating and softmax against double-precision references for every tail length,
 * that an element's result does not depend on where it sits in the array, and BF16
 * rounding against the scalar rule. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "../lib/tensor.h"
#include "../lib/vmath.h"
#include "test.h"

/* |got - want| in units of the last place of float(want). */
static double
ulps(float got, double want)
{
	float w = (float)want;
	double ulp = (double)nextafterf(w, INFINITY) - (double)w;

	return fabs((double)got - want) / ulp;
}

static void
test_exp(void)
{
	double worst = 0;
	float at = 0, buf[QVL_VL];
	int n = 0;

	/* a sweep of [-87, 0] with every exponent of the argument */
	for (int64_t i = 0; i <= 870000; i++) {
		buf[n++] = -(float)i / 10000.0f;
		if (n == QVL_VL || i == 870000) {
			qvl_vf v = qvl_vload(buf);
			qvl_vexp_nonpos(&v);
			for (int k = 0; k < n; k++) {
				double e = ulps(v[k], exp((double)buf[k]));
				if (e > worst) {
					worst = e;
					at = buf[k];
				}
			}
			n = 0;
		}
	}
	CHECK(worst <= 3.0, "e^x on [-87, 0]: worst %.2f ulp at %g", worst, at);

	float edge[QVL_VL] = {0.0f, -0.0f, -87.0f, -87.5f, -100.0f, -INFINITY, NAN, -1e-30f};
	qvl_vf v = qvl_vload(edge);
	qvl_vexp_nonpos(&v);
	CHECK(v[0] == 1.0f && v[1] == 1.0f, "e^0 = 1 (%g, %g)", v[0], v[1]);
	CHECK(ulps(v[2], exp(-87.0)) <= 3.0, "e^-87 = %g", v[2]);
	CHECK(v[3] == 0.0f && v[4] == 0.0f && v[5] == 0.0f, "below -87 and -inf give 0 (%g %g %g)",
	    v[3], v[4], v[5]);
	CHECK(isnan(v[6]), "NaN stays NaN (%g)", v[6]);
	CHECK(v[7] == 1.0f, "e^-1e-30 = 1 (%g)", v[7]);
}

static void
test_silu(void)
{
	double worst = 0;
	int same = 1;
	float ref_at[64];

	for (int n = 1; n <= 64; n++) {
		float g[64], u[64];
		for (int i = 0; i < n; i++) {
			g[i] = (float)(i * 37 % 41) * 0.75f - 15.0f;
			u[i] = 0.5f + (float)(i % 5);
		}
		qvl_silu_mul(g, u, n);
		for (int i = 0; i < n; i++) {
			double x = (float)(i * 37 % 41) * 0.75f - 15.0f;
			double want = x / (1.0 + exp(-x)) * (0.5 + i % 5);
			double err = fabs(g[i] - want) / (fabs(want) + 1e-30);
			if (err > worst)
				worst = err;
			if (n == 64)
				ref_at[i] = g[i];
		}
	}
	/* the same values at other offsets and lengths give the same bits */
	for (int n = 1; n <= 63; n++) {
		float g[64], u[64];
		for (int i = 0; i < n; i++) {
			g[i] = (float)((i + 1) * 37 % 41) * 0.75f - 15.0f;
			u[i] = 0.5f + (float)((i + 1) % 5);
		}
		qvl_silu_mul(g, u, n);
		for (int i = 0; i < n; i++)
			same &= memcmp(&g[i], &ref_at[i + 1], sizeof(float)) == 0;
	}
	CHECK(worst < 1e-6, "silu(g) * u for lengths 1..64: worst rel error %.2g", worst);
	CHECK(same, "silu: a value's result does not depend on its position");

	float big[2] = {INFINITY, 100.0f}, one[2] = {2.0f, 1.0f};
	qvl_silu_mul(big, one, 2);
	CHECK(big[0] == INFINITY && big[1] == 100.0f, "silu(inf) = inf, silu(100) = 100 (%g %g)",
	    big[0], big[1]);
}

static void
test_softmax(void)
{
	double worst = 0, worst_sum = 0;
	int zeros = 1;

	for (int n = 1; n <= 70; n++) {
		float x[80], e[80];
		double max = -INFINITY, sum = 0;
		for (int i = 0; i < n; i++) {
			x[i] = e[i] = (float)(i * 13 % 29) * 0.9f - 12.0f;
			if (x[i] > max)
				max = x[i];
		}
		for (int i = 0; i < n; i++)
			sum += exp((double)x[i] - max);
		for (int i = n; i < 80; i++)
			x[i] = 7.0f;
		qvl_softmax(x, n, 80);
		float s = qvl_exp_shifted(e, n);
		double total = 0;
		for (int i = 0; i < n; i++) {
			double want = exp((double)(float)((i * 13 % 29) * 0.9f - 12.0f) - max) / sum;
			double err = fabs(x[i] - want) / want;
			if (err > worst)
				worst = err;
			total += x[i];
		}
		for (int i = n; i < 80; i++)
			zeros &= x[i] == 0.0f;
		if (fabs(total - 1.0) > worst_sum)
			worst_sum = fabs(total - 1.0);
		CHECK(fabs(s - sum) <= 1e-6 * sum, "exp_shifted n=%d: sum %.9g, want %.9g", n, s,
		    sum);
	}
	/* x - max rounds in float as in the reference (half an ulp of up to 25 here: 1e-6 of
	 * e^(x - max)); the rest is e^x's 3 ulp */
	CHECK(worst < 3e-6, "softmax for lengths 1..70: worst rel error %.2g", worst);
	CHECK(worst_sum < 1e-6, "softmax sums to 1 within %.2g", worst_sum);
	CHECK(zeros, "softmax: zeros past n up to total");
}

/* got is qvl_f32_to_bf16(x), or ±0 for a denormal x (the AVX512_BF16 conversion). */
static int
bf16_as_rule(float x, uint16_t got)
{
	return got == qvl_f32_to_bf16(x) ||
	    (fabsf(x) < FLT_MIN && (got & 0x7fff) == 0 && (got >> 15) == (signbit(x) != 0));
}

/* BF16 rounding, a vector at a time, against the scalar rule (qvl_f32_to_bf16) on ties,
 * near-ties, denormals, infinities, NaNs and random bit patterns, at every offset; the
 * scaled form and the SiLU gating rounded for a BF16 product. */
static void
test_round_bf16(void)
{
	static const uint32_t special[] = {
		0x3f808000, 0x3f818000, 0x3f807fff, 0x3f808001, 0x3f80ffff, 0x7f7fffff, 0xff7fffff,
		0x00000001, 0x80008000, 0x007fffff, 0x00018000, 0x7f800000, 0xff800000, 0x7fc00000,
		0x7f800001, 0xffa00000, 0x00000000, 0x80000000, 0x4049fdb0, 0xc0490fdb,
	};
	enum { N = 1000 };
	float x[N], g[N], u[N], gs[N];
	uint16_t got[N];
	uint32_t rng = 7;
	int same = 1, scaled = 1, silu = 1;

	for (int i = 0; i < N; i++) {
		uint32_t bits = special[i % (sizeof special / sizeof *special)];
		if (i >= 100) {
			rng = rng * 1664525u + 1013904223u;
			bits = rng;
		}
		memcpy(&x[i], &bits, sizeof bits);
	}
	for (int off = 0; off < 17; off++) {
		qvl_round_bf16(x + off, 1.0f, N - off, got);
		for (int i = 0; i < N - off; i++)
			same &= bf16_as_rule(x[off + i], got[i]);
	}
	CHECK(same, "qvl_round_bf16 = qvl_f32_to_bf16 on %d values at 17 offsets", N);
	qvl_round_bf16(x, -0.375f, N, got);
	for (int i = 0; i < N; i++)
		scaled &= bf16_as_rule(x[i] * -0.375f, got[i]);
	CHECK(scaled, "qvl_round_bf16 with a scale rounds x * scale");
	for (int n = 1; n <= 70; n++) {
		for (int i = 0; i < n; i++) {
			g[i] = gs[i] = (float)(i * 37 % 41) * 0.75f - 15.0f;
			u[i] = 0.5f + (float)(i % 5);
		}
		qvl_silu_mul(gs, u, n);
		qvl_silu_mul_bf16(g, u, n, got);
		for (int i = 0; i < n; i++)
			silu &= got[i] == qvl_f32_to_bf16(gs[i]);
	}
	CHECK(silu, "qvl_silu_mul_bf16 = BF16 of qvl_silu_mul, lengths 1..70");
}

int
main(int argc, char **argv)
{
	TEST_INIT(argc, argv);
	test_exp();
	test_silu();
	test_softmax();
	test_round_bf16();
	return TEST_DONE();
}
