/* quant.c: q8/q4 quantization of rows and the loader that serves either storage (the
 * writer of quantized model directories is quant_write.c). */
#include "quant.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "tensor.h"

uint16_t
qvl_f32_to_f16(float f)
{
	uint32_t u, a, sign, r;

	memcpy(&u, &f, sizeof u);
	sign = (u >> 16) & 0x8000;
	a = u & 0x7fffffff;
	if (a > 0x7f800000)
		return (uint16_t)(sign | 0x7e00); /* NaN */
	if (a >= 0x477ff000)
		return (uint16_t)(sign | 0x7c00); /* >= 65520 rounds to infinity */
	if (a < 0x38800000) {
		/* Below 2^-14: a subnormal half, in units of 2^-24 (exact product). */
		float v;
		memcpy(&v, &a, sizeof v);
		return (uint16_t)(sign | (uint32_t)nearbyintf(v * 16777216.0f));
	}
	r = a - 0x38000000; /* rebias the exponent from 127 to 15 */
	r += 0xfff + ((r >> 13) & 1);
	return (uint16_t)(sign | (r >> 13));
}

/* The float16 nearest to s that is not below it (for steps: a step rounded down would push
 * the largest value past the top code). s >= 0. */
static uint16_t
f16_at_least(float s)
{
	uint16_t h = qvl_f32_to_f16(s);

	if (qvl_f16_to_f32(h) < s && h < 0x7bff)
		h++;
	return h;
}

/* A block's candidate codings are scored side by side: lane k of the arrays below is one
 * candidate (step d[k], min m[k]), and each lane sums its own errors in element order, so
 * every score is exactly what one candidate at a time would give, while the compiler
 * runs the lanes in vector registers (a 3B model at q4 took 3 minutes scoring one
 * candidate at a time, each element waiting on a division and the previous sum).  Spare
 * lanes have d = 0 and are ignored. */
#define Q8_LANES 16 /* 1 + SHRINK_STEPS candidates */
#define Q4_LANES 64 /* 1 + 2 * 25 candidates */

/* The q8 code of x for step d: nearest, clamped to -127..127 (0 when d is 0). */
static inline float
q8_code(float x, float d)
{
	float v = nearbyintf(x / d);

	v = v > 127 ? 127 : v < -127 ? -127 : v;
	return d > 0 ? v : 0;
}

/* Squared errors of a block coded with steps d[k] (q8: codes -127..127, symmetric). */
static void
q8_sse_lanes(const float *w, int64_t len, const float *restrict d, double *restrict e)
{
	for (int k = 0; k < Q8_LANES; k++)
		e[k] = 0;
	for (int64_t c = 0; c < len; c++) {
		float x = w[c];
		for (int k = 0; k < Q8_LANES; k++) {
			float r = x - d[k] * q8_code(x, d[k]);
			e[k] += (double)r * r;
		}
	}
}

/* The code of x for step d and min m: nearest, clamped to 0..15 (0 when d is 0). */
static inline float
q4_code(float x, float d, float m)
{
	float v = nearbyintf((x - m) / d);

	v = v > 15 ? 15 : v < 0 ? 0 : v;
	return d > 0 ? v : 0;
}

/* Squared errors of a block coded as d[k] * q + m[k], q in 0..15. */
static void
q4_sse_lanes(const float *w, int64_t len, const float *restrict d, const float *restrict m,
    double *restrict e)
{
	/* 16 lanes at a time, whose sums stay in registers over the block. */
	for (int k0 = 0; k0 < Q4_LANES; k0 += 16) {
		double acc[16] = {0};
		for (int64_t c = 0; c < len; c++) {
			float x = w[c];
			for (int k = 0; k < 16; k++) {
				float dk = d[k0 + k], mk = m[k0 + k];
				float r = x - (dk * q4_code(x, dk, mk) + mk);
				acc[k] += (double)r * r;
			}
		}
		memcpy(e + k0, acc, sizeof acc);
	}
}

/* Candidate steps shrink the range by up to SHRINK_STEPS * SHRINK of itself: clipping the
 * one or two extreme values of a block buys a finer step for the other thirty (for Gaussian
 * weights about 3 % less RMS error at 8 bits and 10 % at 4; the full range is a candidate,
 * so a block never gets worse than plain absmax / min-max coding). */
#define SHRINK 0.02f
#define SHRINK_STEPS 8

void
qvl_quant_q8_row(const float *w, int64_t cols, int8_t *q, uint16_t *scales)
{
	for (int64_t c0 = 0, b = 0; c0 < cols; c0 += QVL_QBLOCK, b++) {
		int64_t len = cols - c0 < QVL_QBLOCK ? cols - c0 : QVL_QBLOCK;
		uint16_t h[Q8_LANES] = {0};
		float amax = 0, d, dk[Q8_LANES] = {0};
		double e[Q8_LANES];
		for (int64_t c = 0; c < len; c++)
			if (fabsf(w[c0 + c]) > amax)
				amax = fabsf(w[c0 + c]);
		/* The largest value's step, then narrower ones; the first least error wins. */
		h[0] = f16_at_least(amax / 127.0f);
		for (int k = 1; k <= SHRINK_STEPS; k++)
			h[k] = qvl_f32_to_f16(amax * (1 - k * SHRINK) / 127.0f);
		for (int k = 0; k <= SHRINK_STEPS; k++)
			dk[k] = qvl_f16_to_f32(h[k]);
		q8_sse_lanes(w + c0, len, dk, e);
		scales[b] = h[0];
		for (int k = 1, best = 0; k <= SHRINK_STEPS; k++)
			if (e[k] < e[best])
				scales[b] = h[best = k];
		d = qvl_f16_to_f32(scales[b]);
		for (int64_t c = 0; c < len; c++)
			q[c0 + c] = (int8_t)q8_code(w[c0 + c], d);
	}
}

/* The least-squares steps and mins for the codes that (d0[k], m0[k]) give a block, rounded
 * to float16, into hd[k], hm[k]; ok[k] is 0 where they do not exist (all codes equal). */
static void
q4_refit_lanes(const float *w, int64_t len, const float *restrict d0,
    const float *restrict m0, uint16_t *hd, uint16_t *hm, int *ok)
{
	double sq[Q4_LANES] = {0}, sqq[Q4_LANES] = {0}, swq[Q4_LANES] = {0}, sw = 0;
	float v[Q4_LANES / 2];

	for (int64_t c = 0; c < len; c++) {
		float x = w[c];
		sw += x;
		/* Two loops: each one vectorizes, the two as one did not (gcc 12). */
		for (int k = 0; k < Q4_LANES / 2; k++)
			v[k] = q4_code(x, d0[k], m0[k]);
		for (int k = 0; k < Q4_LANES / 2; k++) {
			sq[k] += v[k];
			sqq[k] += (double)v[k] * v[k];
			swq[k] += (double)x * v[k];
		}
	}
	for (int k = 0; k < Q4_LANES / 2; k++) {
		double det = (double)len * sqq[k] - sq[k] * sq[k];
		double d = det > 0 ? ((double)len * swq[k] - sq[k] * sw) / det : 0;
		double m = (sw - d * sq[k]) / (double)len;
		ok[k] = det > 0 && d > 0;
		hd[k] = ok[k] ? qvl_f32_to_f16((float)d) : 0;
		hm[k] = ok[k] ? qvl_f32_to_f16((float)m) : 0;
	}
}

void
qvl_quant_q4_row(const float *w, int64_t cols, uint8_t *q, uint16_t *scales, uint16_t *mins)
{
	enum { SIDE = SHRINK_STEPS / 2 + 1, NSHRINK = SIDE * SIDE };

	for (int64_t c0 = 0, b = 0; c0 < cols; c0 += QVL_QBLOCK, b++) {
		int64_t len = cols - c0 < QVL_QBLOCK ? cols - c0 : QVL_QBLOCK;
		uint8_t *blk = q + b * (QVL_QBLOCK / 2);
		uint16_t hd[Q4_LANES] = {0}, hm[Q4_LANES] = {0};
		float lo = w[c0], hi = w[c0], m, d, dk[Q4_LANES] = {0}, mk[Q4_LANES] = {0};
		double e[Q4_LANES];
		int ok[Q4_LANES / 2], best;
		for (int64_t c = 1; c < len; c++) {
			lo = w[c0 + c] < lo ? w[c0 + c] : lo;
			hi = w[c0 + c] > hi ? w[c0 + c] : hi;
		}
		/* Lane 0: the block's minimum and range / 15.  Lanes 1 .. NSHRINK: either end
		 * moved in (i, j steps); lanes 1 + NSHRINK + n: the least-squares refit of
		 * lane 1 + n's codes.  Tried in that order, the first least error wins. */
		hm[0] = qvl_f32_to_f16(lo);
		m = qvl_f16_to_f32(hm[0]);
		hd[0] = f16_at_least(hi > m ? (hi - m) / 15.0f : 0);
		for (int i = 0; i < SIDE; i++)
			for (int j = 0; j < SIDE; j++) {
				float range = hi - lo, l2 = lo + 2 * i * SHRINK * range;
				float h2 = hi - 2 * j * SHRINK * range;
				hd[1 + i * SIDE + j] = qvl_f32_to_f16((h2 - l2) / 15.0f);
				hm[1 + i * SIDE + j] = qvl_f32_to_f16(l2);
			}
		for (int k = 0; k <= NSHRINK; k++) {
			dk[k] = qvl_f16_to_f32(hd[k]);
			mk[k] = qvl_f16_to_f32(hm[k]);
		}
		q4_refit_lanes(w + c0, len, dk + 1, mk + 1, hd + 1 + NSHRINK, hm + 1 + NSHRINK,
		    ok);
		for (int k = 1 + NSHRINK; k <= 2 * NSHRINK; k++) {
			dk[k] = qvl_f16_to_f32(hd[k]);
			mk[k] = qvl_f16_to_f32(hm[k]);
		}
		q4_sse_lanes(w + c0, len, dk, mk, e);
		best = 0;
		for (int n = 0; n < NSHRINK; n++) {
			if (e[1 + n] < e[best])
				best = 1 + n;
			if (ok[n] && e[1 + NSHRINK + n] < e[best])
				best = 1 + NSHRINK + n;
		}
		scales[b] = hd[best];
		mins[b] = hm[best];
		m = qvl_f16_to_f32(mins[b]);
		d = qvl_f16_to_f32(scales[b]);
		memset(blk, 0, QVL_QBLOCK / 2);
		for (int64_t c = 0; c < len; c++) {
			int code = (int)q4_code(w[c0 + c], d, m);
			if (c < 16)
				blk[c] |= (uint8_t)code;
			else
				blk[c - 16] |= (uint8_t)(code << 4);
		}
	}
}

static int
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && strcmp(s + n - k, suffix) == 0;
}

int
qvl_quant_wanted(const char *name, const qvl_tensor *t)
{
	return t->ndim == 2 && (t->dtype == QVL_BF16 || t->dtype == QVL_F16 ||
	    t->dtype == QVL_F32) && t->shape[1] >= QVL_QBLOCK && ends_with(name, ".weight") &&
	    strstr(name, "embed") == NULL && strstr(name, "norm") == NULL &&
	    strstr(name, "ln_") == NULL;
}

/* The tensor NAME+suffix with exactly this dtype and shape, NULL and an error otherwise. */
static const qvl_tensor *
get_part(const qvl_weights *w, const char *name, const char *suffix, qvl_dtype dtype,
    int64_t rows, int64_t cols, qvl_err *err)
{
	char full[512];
	const qvl_tensor *t;

	snprintf(full, sizeof full, "%s%s", name, suffix);
	if ((t = qvl_weights_find(w, full)) == NULL) {
		qvl_fail(err, "checkpoint has %s.q* parts but no tensor %s", name, full);
		return NULL;
	}
	if (t->dtype != dtype || t->ndim != 2 || t->shape[0] != rows || t->shape[1] != cols) {
		char got[128];
		qvl_fail(err, "tensor %s: %s %s, want %s [%lld, %lld]", full,
		    qvl_dtype_name(t->dtype), qvl_shape_str(t->shape, t->ndim, got, sizeof got),
		    qvl_dtype_name(dtype), (long long)rows, (long long)cols);
		return NULL;
	}
	return t;
}

int
qvl_weights_matrix(const qvl_weights *w, const char *name, int64_t rows, int64_t cols,
    qvl_matrix *m, qvl_err *err)
{
	char full[512];
	int64_t nb = qvl_qblocks(cols), shape[2] = {rows, cols};
	const qvl_tensor *t, *s, *mn;

	if (strlen(name) > 400)
		return qvl_fail(err, "tensor name too long: %.40s...", name);
	memset(m, 0, sizeof *m);
	m->rows = rows;
	m->cols = cols;
	m->block = QVL_QBLOCK;
	snprintf(full, sizeof full, "%s.q8", name);
	if (qvl_weights_find(w, full) != NULL) {
		if ((t = get_part(w, name, ".q8", QVL_I8, rows, cols, err)) == NULL ||
		    (s = get_part(w, name, ".q8_scale", QVL_F16, rows, nb, err)) == NULL)
			return -1;
		m->dtype = QVL_I8;
		m->data = t->data;
		m->scales = s->data;
		return 0;
	}
	snprintf(full, sizeof full, "%s.q4", name);
	if (qvl_weights_find(w, full) != NULL) {
		if ((t = get_part(w, name, ".q4", QVL_U8, rows, qvl_q4_row_bytes(cols), err)) ==
		    NULL ||
		    (s = get_part(w, name, ".q4_scale", QVL_F16, rows, nb, err)) == NULL ||
		    (mn = get_part(w, name, ".q4_min", QVL_F16, rows, nb, err)) == NULL)
			return -1;
		m->dtype = QVL_U8;
		m->data = t->data;
		m->scales = s->data;
		m->mins = mn->data;
		return 0;
	}
	if ((t = qvl_weights_get(w, name, 2, shape, err)) == NULL)
		return -1;
	return qvl_matrix_from_tensor(t, m, err);
}

size_t
qvl_matrix_bytes(const qvl_matrix *m)
{
	size_t rows = (size_t)m->rows, nb = (size_t)qvl_qblocks(m->cols);

	switch (m->dtype) {
	case QVL_I8:
		return rows * (size_t)m->cols + rows * nb * 2;
	case QVL_U8:
		return rows * (size_t)qvl_q4_row_bytes(m->cols) + rows * nb * 4;
	default:
		return rows * (size_t)m->cols * qvl_dtype_size(m->dtype);
	}
}

float *
qvl_weights_vector(const qvl_weights *w, const char *name, int64_t n, qvl_err *err)
{
	int64_t shape[1] = { n };
	const qvl_tensor *t;

	if ((t = qvl_weights_get(w, name, 1, shape, err)) == NULL)
		return NULL;
	return qvl_vector_f32(t, n, name, err);
}
