/* vmath.h: elementwise math over float arrays in GCC/Clang vector extensions (16 floats a
 * vector: one AVX-512 register, two AVX ones), for the passes between matrix products.
 *
 * e^x here is a polynomial, not libm's: within 3 ulp of e^x (relative error < 2e-7), the
 * same for every element wherever it sits in an array, and some ten times faster than a
 * call to expf per element, which no compiler vectorizes without -ffast-math. */
#ifndef QVL_VMATH_H
#define QVL_VMATH_H

#include <stdint.h>

#define QVL_VL 16 /* floats per vector */

typedef float qvl_vf __attribute__((vector_size(QVL_VL * sizeof(float))));
typedef int32_t qvl_vi __attribute__((vector_size(QVL_VL * sizeof(int32_t))));
/* Unaligned, aliasing access to float arrays.  Vectors never pass by value through a
 * function: on builds without AVX-512 (ARCH=) that is a different ABI (-Wpsabi). */
typedef float qvl_vfu __attribute__((vector_size(QVL_VL * sizeof(float)), aligned(4),
    may_alias));
#define qvl_splat(x) ((qvl_vf){ 0 } + (x))
#define qvl_vload(p) ((qvl_vf)*(const qvl_vfu *)(p))
#define qvl_vstore(p, v) (*(qvl_vfu *)(p) = (qvl_vfu)(v))

/* In place, e^x for x <= 0 (softmax after subtracting the maximum, the sigmoid of -|x|):
 * 2^n · p(r), x = n ln 2 + r, |r| <= ln 2 / 2, p the degree-6 Taylor polynomial; below -87
 * the result is 0.  NaN stays NaN. */
static inline void
qvl_vexp_nonpos(qvl_vf *px)
{
	qvl_vf x = *px;
	const float magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
	qvl_vi under = x < qvl_splat(-87.0f);
	qvl_vf t, n, r, p;
	qvl_vi bits;

	x = (qvl_vf)((qvl_vi)x & ~under) + (qvl_vf)((qvl_vi)qvl_splat(-87.0f) & under);
	t = x * 1.44269504088896341f + magic;
	n = t - magic;
	r = x - n * 0.693359375f;          /* ln 2 in two parts (Cody and Waite) */
	r = r + n * 2.12194440e-4f;
	p = qvl_splat(1.0f / 720);
	p = p * r + 1.0f / 120;
	p = p * r + 1.0f / 24;
	p = p * r + 1.0f / 6;
	p = p * r + 0.5f;
	p = p * r + 1.0f;
	p = p * r + 1.0f;
	bits = ((qvl_vi)t - (qvl_vi)qvl_splat(magic) + 127) << 23;
	p = p * (qvl_vf)bits;
	*px = (qvl_vf)((qvl_vi)p & ~under);
}

/* gate[i] = silu(gate[i]) · up[i] = gate[i] / (1 + e^-gate[i]) · up[i], i < n. */
void qvl_silu_mul(float *gate, const float *up, int64_t n);

/* out[i] = BF16(silu(gate[i]) · up[i]), i < n: the same values as qvl_silu_mul, rounded
 * for a BF16 product. */
void qvl_silu_mul_bf16(const float *gate, const float *up, int64_t n, uint16_t *out);

/* out[i] = BF16(x[i] · scale), i < n, to nearest even as torch casts (qvl_f32_to_bf16);
 * scale 1 rounds x as it is.  Where the CPU has AVX512_BF16 its conversion does it, which
 * makes denormals ±0, as its BF16 products (and AMX) read them anyway. */
void qvl_round_bf16(const float *x, float scale, int64_t n, uint16_t *out);

/* In place softmax of x[0..n) (n >= 1), then zeros up to x[total). */
void qvl_softmax(float *x, int64_t n, int64_t total);

/* Softmax without its division: x[i] = e^(x[i] - max x) over x[0..n) (n >= 1); returns
 * the sum, for the caller to divide what it computes from x (attention divides its head_dim
 * outputs instead of the n probabilities). */
float qvl_exp_shifted(float *x, int64_t n);

#endif
