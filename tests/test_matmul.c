/* test_matmul: every kernel level and storage kind against a double-precision reference on
 * random matrices of awkward sizes; 1 vs 2 vs 3 threads bit for bit; bf16 precision's error;
 * the AMX products where the CPU has them. */
#include <stdint.h>
#include <stdlib.h>

#include "../lib/cpu.h"
#include "../lib/kernels.h"
#include "../lib/kernels_amx.h"
#include "../lib/kernels_dnnl.h"
#include "../lib/matmul.h"
#include "../lib/pool.h"
#include "../lib/vmath.h"
#include "test.h"

static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint32_t
rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

static float
rnd_float(void)
{
	return (float)((int)(rnd() % 20001) - 10000) / 10000.0f;
}

/* A random F16 bit pattern in [2^-9, 2^2) with a random sign: a plausible scale or min. */
static uint16_t
rnd_half(void)
{
	uint16_t exp = (uint16_t)(6 + rnd() % 11), mant = (uint16_t)(rnd() & 0x3ff);
	return (uint16_t)((rnd() & 1) << 15 | exp << 10 | mant);
}

struct mat {
	qvl_matrix m;
	void *data;
	uint16_t *scales, *mins;
	double *ref; /* the matrix's values, [rows, cols] */
	/* the size of each value's terms: |ref|, but |q d| + |min| for q4, whose kernels sum
	 * the two terms apart (their rounding scales with each, not with their sum) */
	double *mag;
};

static void
mat_make(struct mat *t, qvl_dtype dtype, int64_t rows, int64_t cols)
{
	int64_t nb = qvl_qblocks(cols), n = rows * cols;

	memset(t, 0, sizeof *t);
	t->ref = malloc((size_t)(n ? n : 1) * sizeof *t->ref);
	t->mag = malloc((size_t)(n ? n : 1) * sizeof *t->mag);
	t->m.dtype = dtype;
	t->m.rows = rows;
	t->m.cols = cols;
	switch (dtype) {
	case QVL_BF16:
	case QVL_F16: {
		uint16_t *d = malloc((size_t)(n ? n : 1) * 2);
		for (int64_t i = 0; i < n; i++) {
			float f = rnd_float();
			d[i] = dtype == QVL_BF16 ? qvl_f32_to_bf16(f) : rnd_half();
			t->ref[i] = dtype == QVL_BF16 ? qvl_bf16_to_f32(d[i]) : qvl_f16_to_f32(d[i]);
		}
		t->data = d;
		break;
	}
	case QVL_F32: {
		float *d = malloc((size_t)(n ? n : 1) * 4);
		for (int64_t i = 0; i < n; i++)
			t->ref[i] = d[i] = rnd_float();
		t->data = d;
		break;
	}
	case QVL_I8: {
		int8_t *d = malloc((size_t)(n ? n : 1));
		t->scales = malloc((size_t)(rows * nb + 1) * 2);
		for (int64_t i = 0; i < rows * nb; i++)
			t->scales[i] = rnd_half();
		for (int64_t r = 0; r < rows; r++)
			for (int64_t c = 0; c < cols; c++) {
				d[r * cols + c] = (int8_t)((int)(rnd() % 255) - 127);
				t->ref[r * cols + c] = (double)d[r * cols + c] *
				    qvl_f16_to_f32(t->scales[r * nb + c / 32]);
			}
		t->data = d;
		break;
	}
	default: { /* q4 */
		int64_t rb = qvl_q4_row_bytes(cols);
		uint8_t *d = malloc((size_t)(rows * rb + 1));
		t->scales = malloc((size_t)(rows * nb + 1) * 2);
		t->mins = malloc((size_t)(rows * nb + 1) * 2);
		for (int64_t i = 0; i < rows * nb; i++) {
			t->scales[i] = rnd_half();
			t->mins[i] = rnd_half();
		}
		for (int64_t i = 0; i < rows * rb; i++)
			d[i] = (uint8_t)rnd();
		for (int64_t r = 0; r < rows; r++)
			for (int64_t c = 0; c < cols; c++) {
				int64_t b = c / 32, j = c % 32;
				uint8_t byte = d[r * rb + b * 16 + j % 16];
				int q = j < 16 ? byte & 15 : byte >> 4;
				t->ref[r * cols + c] = (double)q * qvl_f16_to_f32(t->scales[r * nb + b]) +
				    qvl_f16_to_f32(t->mins[r * nb + b]);
				t->mag[r * cols + c] = fabs((double)q *
				    qvl_f16_to_f32(t->scales[r * nb + b])) +
				    fabs(qvl_f16_to_f32(t->mins[r * nb + b]));
			}
		t->data = d;
		t->m.mins = t->mins;
	}
	}
	if (dtype != QVL_U8)
		for (int64_t i = 0; i < n; i++)
			t->mag[i] = fabs(t->ref[i]);
	t->m.data = t->data;
	t->m.scales = t->scales;
	t->m.block = dtype == QVL_I8 || dtype == QVL_U8 ? 32 : 0;
}

static void
mat_free(struct mat *t)
{
	free(t->data);
	free(t->scales);
	free(t->mins);
	free(t->ref);
	free(t->mag);
}

static const char *
kind_name(qvl_dtype d)
{
	return d == QVL_I8 ? "q8" : d == QVL_U8 ? "q4" : qvl_dtype_name(d);
}

/* Largest error relative to sum |w x| (+ |bias|) over all outputs, against the product
 * of x (or x rounded to BF16: ROUND_X) and the matrix (or its values rounded to BF16:
 * ROUND_W). */
enum { ROUND_X = 1, ROUND_W = 2 };

static double
bf16_round(double v)
{
	return qvl_bf16_to_f32(qvl_f32_to_bf16((float)v));
}

static double
rel_error(const struct mat *t, const float *bias, const float *x, int64_t n, const float *y,
    int round)
{
	double worst = 0;

	for (int64_t i = 0; i < n; i++)
		for (int64_t r = 0; r < t->m.rows; r++) {
			double s = bias ? bias[r] : 0, mag = bias ? fabs(bias[r]) : 0;
			for (int64_t c = 0; c < t->m.cols; c++) {
				float xv = x[i * t->m.cols + c];
				double xd = round & ROUND_X ? bf16_round(xv) : xv;
				double wd = t->ref[r * t->m.cols + c];
				if (round & ROUND_W)
					wd = bf16_round(wd);
				s += wd * xd;
				mag += t->mag[r * t->m.cols + c] * fabs(xd);
			}
			double e = fabs(y[i * t->m.rows + r] - s) / (mag + 1e-30);
			if (e > worst || y[i * t->m.rows + r] != y[i * t->m.rows + r])
				worst = e > worst ? e : INFINITY;
		}
	return worst;
}

static qvl_pool *pool3;

/* The kernel levels, and whether this CPU runs a level's kernels. */
static const qvl_cpu_level levels[] = {QVL_CPU_GENERIC, QVL_CPU_AVX2, QVL_CPU_AVX512};

static int
level_runs(qvl_cpu_level level)
{
	const qvl_cpu *cpu = qvl_cpu_get();

	return !(level == QVL_CPU_AVX2 && !(cpu->avx2 && cpu->fma && cpu->f16c)) &&
	    !(level == QVL_CPU_AVX512 && cpu->level < QVL_CPU_AVX512);
}

static void
test_case(qvl_pool *pool2, qvl_dtype dtype, int64_t rows, int64_t cols, int64_t n)
{
	const qvl_cpu *cpu = qvl_cpu_get();
	struct mat t;
	float *x = malloc((size_t)(n * cols + 1) * sizeof *x);
	float *bias = malloc((size_t)rows * sizeof *bias);
	float *y1 = malloc((size_t)(n * rows) * sizeof *y1), *y2 = malloc((size_t)(n * rows) * sizeof *y2);

	/* q8 on VNNI and AVX2, and q4 on AVX2, code x as int16 per block of 32
	 * (qvl_kern_x16): each x off by up to 1/65534 of its block's largest, so up to
	 * 1.5e-5 of sum |w| max|x| more. */
	double xtol = dtype == QVL_I8 || dtype == QVL_U8 ? 4e-5 : 0;
	/* q4 on VNNI codes x as int8 per block: each x off by up to 1/254 of its block's
	 * largest, about 1/127 of sum |w x| at worst for these x (|x| averages half the
	 * largest); q4's own error is four times that. */
	double x8tol = dtype == QVL_U8 && cpu->level >= QVL_CPU_AVX512 && cpu->avx512vnni ?
	    1e-2 : 0;

	mat_make(&t, dtype, rows, cols);
	for (int64_t i = 0; i < n * cols; i++)
		x[i] = rnd_float();
	for (int64_t r = 0; r < rows; r++)
		bias[r] = rnd_float();
	for (size_t l = 0; l < sizeof levels / sizeof *levels; l++) {
		if (!level_runs(levels[l]))
			continue;
		const qvl_kernels *k = qvl_kernels_for(levels[l]);
		const float *b = (rows + cols + n) % 2 ? bias : NULL;
		qvl_matmul_kern(NULL, k, &t.m, b, x, n, y1);
		qvl_matmul_kern(pool2, k, &t.m, b, x, n, y2);
		double e = rel_error(&t, b, x, n, y1, 0);
		CHECK(e < 2e-6 * sqrt((double)cols + 1) + 1e-6 + xtol +
		    (levels[l] == QVL_CPU_AVX512 ? x8tol : 0),
		    "%s %s [%lld, %lld] n=%lld%s: error %.3g of sum |w x|",
		    qvl_cpu_level_name(levels[l]), kind_name(dtype), (long long)rows,
		    (long long)cols, (long long)n, b ? " +bias" : "", e);
		CHECK(memcmp(y1, y2, (size_t)(n * rows) * sizeof *y1) == 0,
		    "%s %s [%lld, %lld] n=%lld: 1 and 2 threads give the same bits",
		    qvl_cpu_level_name(levels[l]), kind_name(dtype), (long long)rows,
		    (long long)cols, (long long)n);
		if (n > 8) {
			qvl_matmul_kern(pool3, k, &t.m, b, x, n, y2);
			CHECK(memcmp(y1, y2, (size_t)(n * rows) * sizeof *y1) == 0,
			    "%s %s [%lld, %lld] n=%lld: 1 and 3 threads give the same bits",
			    qvl_cpu_level_name(levels[l]), kind_name(dtype), (long long)rows,
			    (long long)cols, (long long)n);
		}
		/* Short batches: a row's result does not depend on the others in the batch. */
		if (n > 1 && n <= 8) {
			int same = 1;
			for (int64_t i = 0; i < n; i++) {
				qvl_matmul_kern(pool2, k, &t.m, b, x + i * cols, 1, y2);
				same &= memcmp(y2, y1 + i * rows, (size_t)rows * sizeof *y2) == 0;
			}
			CHECK(same, "%s %s [%lld, %lld] n=%lld: each row as if alone",
			    qvl_cpu_level_name(levels[l]), kind_name(dtype), (long long)rows,
			    (long long)cols, (long long)n);
		}
	}
	/* The public entry, in both precisions. */
	qvl_pool_set_precision(pool2, QVL_PRECISION_BF16);
	qvl_matmul(pool2, &t.m, bias, x, n, y1);
	qvl_pool_set_precision(pool2, QVL_PRECISION_F32);
	{
		/* x rounded to BF16 (each term off by at most 2^-9), the weights too where
		 * they are not BF16 already (then each term off by up to 2^-8), or, where
		 * the CPU has no BF16 products, float32 throughout. */
		double e = rel_error(&t, bias, x, n, y1, 0);
		double eb = rel_error(&t, bias, x, n, y1,
		    dtype == QVL_BF16 ? ROUND_X : ROUND_X | ROUND_W);
		CHECK(e < 8e-3 + x8tol && (eb < 1e-5 * sqrt((double)cols + 1) + 1e-5 ||
		    e < 2e-6 * sqrt((double)cols + 1) + 1e-6 + xtol + x8tol),
		    "qvl_matmul bf16 precision %s [%lld, %lld] n=%lld: error %.3g, %.3g vs bf16(x)",
		    kind_name(dtype), (long long)rows, (long long)cols, (long long)n, e, eb);
	}
	/* With x = 0 each output is its row's bias, exactly, in both precisions. */
	memset(x, 0, (size_t)(n * cols) * sizeof *x);
	for (int p = 0; p < 2; p++) {
		int exact = 1;
		qvl_pool_set_precision(pool2, p ? QVL_PRECISION_BF16 : QVL_PRECISION_F32);
		qvl_matmul(pool2, &t.m, bias, x, n, y2);
		for (int64_t i = 0; i < n * rows; i++)
			exact &= y2[i] == bias[i % rows];
		CHECK(exact, "qvl_matmul %s %s [%lld, %lld] n=%lld: x = 0 gives the bias",
		    p ? "bf16" : "f32", kind_name(dtype), (long long)rows, (long long)cols,
		    (long long)n);
	}
	qvl_pool_set_precision(pool2, QVL_PRECISION_F32);
	for (int64_t i = 0; i < n * cols; i++)
		x[i] = rnd_float();
	qvl_matmul(pool2, &t.m, bias, x, n, y2);
	CHECK(rel_error(&t, bias, x, n, y2, 0) < 2e-6 * sqrt((double)cols + 1) + 1e-6 + xtol + x8tol,
	    "qvl_matmul f32 %s [%lld, %lld] n=%lld", kind_name(dtype), (long long)rows,
	    (long long)cols, (long long)n);
	mat_free(&t);
	free(x);
	free(bias);
	free(y1);
	free(y2);
}

/* bf16 precision on a q8 matrix of many short rows (140000 x 64): two tiles whose products
 * go to oneDNN in chunks of inputs (dense blocks of 4 M floats: 59 inputs a chunk), the
 * last chunk short; each output as the BF16-rounded product with the bias. */
static void
test_tile_chunks(qvl_pool *pool)
{
	int64_t rows = 140000, cols = 64, n = 70;
	struct mat t;
	float *x = malloc((size_t)(n * cols) * sizeof *x);
	float *bias = malloc((size_t)rows * sizeof *bias);
	float *y = malloc((size_t)(n * rows) * sizeof *y);

	mat_make(&t, QVL_I8, rows, cols);
	for (int64_t i = 0; i < n * cols; i++)
		x[i] = rnd_float();
	for (int64_t r = 0; r < rows; r++)
		bias[r] = rnd_float();
	qvl_pool_set_precision(pool, QVL_PRECISION_BF16);
	qvl_matmul(pool, &t.m, bias, x, n, y);
	qvl_pool_set_precision(pool, QVL_PRECISION_F32);
	double e = rel_error(&t, bias, x, n, y, 0), eb = rel_error(&t, bias, x, n, y,
	    ROUND_X | ROUND_W);
	CHECK(e < 8e-3 && (eb < 1e-4 || e < 2e-5 + 4e-5),
	    "qvl_matmul bf16 precision q8 [%lld, %lld] n=%lld (chunked tiles): error %.3g, "
	    "%.3g vs bf16", (long long)rows, (long long)cols, (long long)n, e, eb);
	mat_free(&t);
	free(x);
	free(bias);
	free(y);
}

/* AMX products (where they run) against the BF16-rounded reference, with x given as
 * float32 and as BF16 (the same bits), on 1, 2 and 3 threads (the same bits: each output
 * is one task's); inputs and rows around the 32 of a block pair and the panels, columns
 * around the 32 of a step; x in three exact parts; alpha; y by rows; a strided destination. */
/* qvl_matmul_add and qvl_matmul_glu: the bits of the passes they replace, or -1 with the
 * output untouched; taken on AMX for long batches of BF16 weights in bf16 precision. */
static void
test_fused(qvl_pool *pool2, qvl_dtype dtype, int64_t rows, int64_t cols, int64_t n)
{
	struct mat gate, up;
	size_t count = (size_t)(n * rows);
	float *x = malloc((size_t)(n * cols) * sizeof *x), *bias = malloc((size_t)rows * 4);
	uint16_t *xb = malloc((size_t)(n * cols) * sizeof *xb);
	float *y0 = malloc(count * sizeof *y0), *y = malloc(count * sizeof *y);
	float *want = malloc(count * sizeof *want), *u = malloc(count * sizeof *u);
	float *tmp = malloc((size_t)(n * cols) * sizeof *tmp);
	uint16_t *outb = malloc(count * sizeof *outb), *wantb = malloc(count * sizeof *wantb);

	mat_make(&gate, dtype, rows, cols);
	mat_make(&up, dtype, rows, cols);
	for (int64_t i = 0; i < n * cols; i++)
		xb[i] = qvl_f32_to_bf16(x[i] = rnd_float());
	for (int64_t r = 0; r < rows; r++)
		bias[r] = rnd_float();
	for (size_t i = 0; i < count; i++)
		y0[i] = rnd_float();
	for (int p = 0; p < 4; p++) {
		int bf16 = p & 1, use_xb = p & 2, rc, same;
		const char *what = bf16 ? (use_xb ? "bf16 xb" : "bf16") : (use_xb ? "f32 xb" : "f32");
		int expected = bf16 && dtype == QVL_BF16 && n >= 300 && qvl_amx_usable();

		qvl_pool_set_precision(pool2, bf16 ? QVL_PRECISION_BF16 : QVL_PRECISION_F32);
		if (use_xb)
			qvl_matmul_xb(pool2, &gate.m, bias, xb, n, tmp, want);
		else
			qvl_matmul(pool2, &gate.m, bias, x, n, want);
		for (size_t i = 0; i < count; i++)
			want[i] += y0[i];
		memcpy(y, y0, count * sizeof *y);
		rc = qvl_matmul_add(pool2, &gate.m, bias, use_xb ? NULL : x, use_xb ? xb : NULL,
		    n, y);
		same = memcmp(y, rc == 0 ? want : y0, count * sizeof *y) == 0;
		CHECK(same && (rc == 0 || !expected),
		    "qvl_matmul_add %s %s [%lld, %lld] n=%lld: %s", what, kind_name(dtype),
		    (long long)rows, (long long)cols, (long long)n,
		    rc == 0 ? "the bits of the product and the add" : "declined, y untouched");

		if (use_xb) {
			qvl_matmul_xb(pool2, &gate.m, bias, xb, n, tmp, want);
			qvl_matmul_xb(pool2, &up.m, NULL, xb, n, tmp, u);
		} else {
			qvl_matmul(pool2, &gate.m, bias, x, n, want);
			qvl_matmul(pool2, &up.m, NULL, x, n, u);
		}
		qvl_silu_mul(want, u, (int64_t)count);
		qvl_round_bf16(want, 1.0f, (int64_t)count, wantb);
		memset(outb, 0xee, count * sizeof *outb);
		rc = qvl_matmul_glu(pool2, &gate.m, bias, &up.m, NULL, use_xb ? NULL : x,
		    use_xb ? xb : NULL, n, outb);
		same = 1;
		for (size_t i = 0; i < count; i++)
			same &= outb[i] == (rc == 0 ? wantb[i] : 0xeeee);
		CHECK(same && (rc == 0 || !expected),
		    "qvl_matmul_glu %s %s [%lld, %lld] n=%lld: %s", what, kind_name(dtype),
		    (long long)rows, (long long)cols, (long long)n,
		    rc == 0 ? "the bits of the products, silu and rounding" :
		    "declined, out untouched");
	}
	qvl_pool_set_precision(pool2, QVL_PRECISION_F32);
	mat_free(&gate);
	mat_free(&up);
	free(x);
	free(bias);
	free(xb);
	free(y0);
	free(y);
	free(want);
	free(u);
	free(tmp);
	free(outb);
	free(wantb);
}

/* SwiGLU in the product (w2 beside W, or xb2 beside X by rows): the same bits as the two
 * products, qvl_silu_mul and qvl_round_bf16; 1, 2 or 3 threads alike; y's other columns
 * untouched. */
static void
test_amx_glu(qvl_pool *pool2)
{
	static const int64_t shapes[][3] = { /* features, cols, n */
		{1, 1, 1}, {16, 32, 16}, {17, 33, 15}, {40, 100, 70}, {70, 257, 33},
		{300, 1280, 50}, {3420 / 10, 96, 17},
	};

	for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
		int64_t rows = shapes[s][0], cols = shapes[s][1], n = shapes[s][2], ld = rows + 2;
		size_t count = (size_t)(n * rows), wide = (size_t)(n * ld);
		struct mat gate, up;
		float *x = malloc((size_t)(n * cols) * sizeof *x);
		uint16_t *xb = malloc((size_t)(n * cols) * sizeof *xb);
		float *bias = malloc((size_t)rows * sizeof *bias);
		float *bias2 = malloc((size_t)rows * sizeof *bias2);
		float *g = malloc(count * sizeof *g), *u = malloc(count * sizeof *u);
		uint16_t *want = malloc(count * sizeof *want), *got = malloc(wide * sizeof *got);
		const float *b = s % 2 ? bias : NULL, *b2 = s % 3 ? bias2 : NULL;
		int rc, same;

		mat_make(&gate, QVL_BF16, rows, cols);
		mat_make(&up, QVL_BF16, rows, cols);
		for (int64_t i = 0; i < n * cols; i++) {
			x[i] = rnd_float();
			xb[i] = qvl_f32_to_bf16(x[i]);
		}
		for (int64_t r = 0; r < rows; r++) {
			bias[r] = rnd_float();
			bias2[r] = rnd_float();
		}
		for (int swap = 0; swap < 2; swap++) {
			/* the weights beside W, or (swap) beside X with x as W and y by rows */
			qvl_amx_args a = {
				.w = gate.data, .rows = rows, .cols = cols, .bias = b, .alpha = 1.0f,
				.xb = xb, .n = n, .y = g, .ldy = rows,
			};
			if (swap)
				a.w = xb, a.rows = n, a.xb = gate.data, a.n = rows, a.by_rows = 1;
			rc = qvl_amx_product(pool2, &a);
			*(swap ? &a.xb : &a.w) = up.data;
			a.bias = b2, a.y = u;
			rc |= qvl_amx_product(pool2, &a);
			/* by rows or not, g and u lie [n, rows] */
			qvl_silu_mul(g, u, (int64_t)count);
			qvl_round_bf16(g, 1.0f, (int64_t)count, want);

			*(swap ? &a.xb : &a.w) = gate.data;
			a.bias = b, a.y = NULL;
			if (swap)
				a.xb2 = up.data;
			else
				a.w2 = up.data;
			a.bias2 = b2, a.yb = got, a.ldy = ld;
			same = rc == 0;
			for (int t = 0; t < 3; t++) {
				for (size_t i = 0; i < wide; i++)
					got[i] = 0x7fc1;
				same &= qvl_amx_product(t == 0 ? NULL : t == 1 ? pool2 : pool3,
				    &a) == 0;
				for (int64_t i = 0; i < n; i++)
					for (int64_t r = 0; r < ld; r++)
						same &= got[i * ld + r] ==
						    (r < rows ? want[i * rows + r] : 0x7fc1);
			}
			CHECK(same, "amx swiglu%s [%lld, %lld] n=%lld%s%s: the bits of the three "
			    "passes, 1, 2 or 3 threads", swap ? " beside x" : "", (long long)rows,
			    (long long)cols, (long long)n, b ? " +bias" : "", b2 ? " +bias2" : "");
			if (!swap) { /* float32 x: rounded as the products round it */
				a.xb = NULL, a.x = x;
				same = qvl_amx_product(pool2, &a) == 0;
				for (int64_t i = 0; i < n; i++)
					for (int64_t r = 0; r < rows; r++)
						same &= got[i * ld + r] == want[i * rows + r];
				CHECK(same, "amx swiglu [%lld, %lld] n=%lld: float32 x",
				    (long long)rows, (long long)cols, (long long)n);
			}
		}
		mat_free(&gate);
		mat_free(&up);
		free(x);
		free(xb);
		free(bias);
		free(bias2);
		free(g);
		free(u);
		free(want);
		free(got);
	}
	/* what the kernel declines: no yb, both second matrices, w2 by rows, xb2 not */
	{
		uint16_t w[32 * 32] = {0}, out[32 * 32];
		float y[32 * 32];
		qvl_amx_args a = {.w = w, .rows = 32, .cols = 32, .alpha = 1.0f, .xb = w, .n = 32,
		    .y = y, .ldy = 32, .w2 = w};
		int declined = qvl_amx_product(pool2, &a) == -1;
		a.yb = out, a.xb2 = w;
		declined &= qvl_amx_product(pool2, &a) == -1;
		a.xb2 = NULL, a.by_rows = 1;
		declined &= qvl_amx_product(pool2, &a) == -1;
		a.w2 = NULL, a.xb2 = w, a.by_rows = 0;
		declined &= qvl_amx_product(pool2, &a) == -1;
		a.by_rows = 1;
		declined &= qvl_amx_product(pool2, &a) == 0;
		CHECK(declined, "amx swiglu: inconsistent arguments declined, consistent ones run");
	}
}

static void
test_amx(qvl_pool *pool2)
{
	static const int64_t shapes[][3] = { /* rows, cols, n */
		{1, 1, 1}, {16, 32, 16}, {31, 33, 17}, {32, 64, 32}, {33, 30, 33}, {67, 257, 70},
		{100, 96, 9}, {257, 1176, 40}, {600, 3420, 65}, {4099, 300, 20}, {64, 8200, 3},
	};
	uint32_t in[16][16], out[16][16];
	int same = 1;

	for (int r = 0; r < 16; r++)
		for (int c = 0; c < 16; c++)
			in[r][c] = (uint32_t)(r * 16 + c) * 2654435761u;
	qvl_amx_transpose16(in, out);
	for (int r = 0; r < 16; r++)
		for (int c = 0; c < 16; c++)
			same &= !qvl_amx_usable() || out[c][r] == in[r][c];
	CHECK(same, "amx: 16 x 16 transpose");
	if (!qvl_amx_usable()) {
		qvl_amx_args a = {.rows = 1, .cols = 1, .alpha = 1.0f, .n = 1, .ldy = 1};
		CHECK(qvl_amx_product(pool2, &a) == -1,
		    "amx: no AMX here, the product declines");
		return;
	}
	test_amx_glu(pool2);
	for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
		int64_t rows = shapes[s][0], cols = shapes[s][1], n = shapes[s][2];
		struct mat t;
		float *x = malloc((size_t)(n * cols) * sizeof *x);
		uint16_t *xb = malloc((size_t)(n * cols) * sizeof *xb);
		float *bias = malloc((size_t)rows * sizeof *bias);
		float *y1 = malloc((size_t)(n * rows) * sizeof *y1);
		float *y2 = malloc((size_t)(n * rows) * sizeof *y2);
		float *y3 = malloc((size_t)(n * rows) * sizeof *y3);
		const float *b = s % 2 ? bias : NULL;

		mat_make(&t, QVL_BF16, rows, cols);
		for (int64_t i = 0; i < n * cols; i++) {
			x[i] = rnd_float();
			xb[i] = qvl_f32_to_bf16(x[i]);
		}
		for (int64_t r = 0; r < rows; r++)
			bias[r] = rnd_float();
		qvl_amx_args a = {
			.w = t.data, .rows = rows, .cols = cols, .bias = b, .alpha = 1.0f, .x = x,
			.n = n, .y = y1, .ldy = rows,
		};
		int rc = qvl_amx_product(NULL, &a);
		a.x = NULL, a.xb = xb, a.y = y2;
		rc |= qvl_amx_product(pool2, &a);
		a.xb = NULL, a.x = x, a.y = y3;
		rc |= qvl_amx_product(pool3, &a);
		double e = rc ? INFINITY : rel_error(&t, b, x, n, y1, ROUND_X);
		CHECK(e < 1e-5 * sqrt((double)cols + 1) + 1e-5,
		    "amx [%lld, %lld] n=%lld%s: error %.3g of sum |w x| vs bf16(x)",
		    (long long)rows, (long long)cols, (long long)n, b ? " +bias" : "", e);
		CHECK(rc == 0 && memcmp(y1, y2, (size_t)(n * rows) * sizeof *y1) == 0 &&
		    memcmp(y1, y3, (size_t)(n * rows) * sizeof *y1) == 0,
		    "amx [%lld, %lld] n=%lld: x or bf16(x), 1, 2 or 3 threads, the same bits",
		    (long long)rows, (long long)cols, (long long)n);
		/* exact: x in three parts, float32's error against the unrounded product */
		a.exact = 1, a.y = y2;
		rc = qvl_amx_product(pool2, &a);
		a.y = y3;
		rc |= qvl_amx_product(pool3, &a);
		e = rc ? INFINITY : rel_error(&t, b, x, n, y2, 0);
		CHECK(e < 2e-6 * sqrt((double)cols + 1) + 1e-6 &&
		    memcmp(y2, y3, (size_t)(n * rows) * sizeof *y2) == 0,
		    "amx exact [%lld, %lld] n=%lld: error %.3g of sum |w x|, 2 and 3 threads the "
		    "same bits", (long long)rows, (long long)cols, (long long)n, e);
		a.exact = 0;
		/* alpha scales the sum before the bias is added, in one rounding */
		a.alpha = 0.37f, a.y = y2;
		rc = qvl_amx_product(pool2, &a);
		same = rc == 0;
		for (int64_t i = 0; i < n * rows; i++) {
			float sum = y1[i] - (b ? b[i % rows] : 0.0f);
			same &= fabsf(y2[i] - (0.37f * sum + (b ? b[i % rows] : 0.0f))) <=
			    1e-5f * (fabsf(sum) + 1.0f);
		}
		CHECK(same, "amx [%lld, %lld] n=%lld: alpha", (long long)rows, (long long)cols,
		    (long long)n);
		/* by_rows: the same values as the tile lies, y[r, i], alpha and all; and with
		 * the operands swapped (x as W, W as x) the product itself, bias and all */
		{
			float *yt = malloc((size_t)(n * rows) * sizeof *yt);
			if (b == NULL) {
				a.by_rows = 1, a.y = yt, a.ldy = n;
				rc = qvl_amx_product(pool2, &a);
				same = rc == 0;
				for (int64_t i = 0; i < n; i++)
					for (int64_t r = 0; r < rows; r++)
						same &= yt[r * n + i] == y2[i * rows + r];
				CHECK(same, "amx [%lld, %lld] n=%lld: by rows", (long long)rows,
				    (long long)cols, (long long)n);
				a.by_rows = 0, a.ldy = rows;
			}
			qvl_amx_args sw = {
				.w = xb, .rows = n, .cols = cols, .bias = b, .alpha = 1.0f,
				.xb = t.data, .n = rows, .y = yt, .ldy = rows, .by_rows = 1,
			};
			rc = qvl_amx_product(pool3, &sw);
			e = rc ? INFINITY : rel_error(&t, b, x, n, yt, ROUND_X);
			CHECK(e < 1e-5 * sqrt((double)cols + 1) + 1e-5,
			    "amx swapped [%lld, %lld] n=%lld%s: error %.3g vs bf16(x)",
			    (long long)rows, (long long)cols, (long long)n, b ? " +bias" : "", e);
			free(yt);
		}
		a.alpha = 1.0f;
		/* A strided destination: y's other columns untouched. */
		float *wide = malloc((size_t)(n * (rows + 3)) * sizeof *wide);
		for (int64_t i = 0; i < n * (rows + 3); i++)
			wide[i] = -7.0f;
		a.x = NULL, a.xb = xb, a.y = wide, a.ldy = rows + 3;
		rc = qvl_amx_product(pool2, &a);
		same = rc == 0;
		for (int64_t i = 0; i < n; i++)
			for (int64_t r = 0; r < rows + 3; r++)
				same &= r < rows ? wide[i * (rows + 3) + r] == y1[i * rows + r] :
				    wide[i * (rows + 3) + r] == -7.0f;
		CHECK(same, "amx [%lld, %lld] n=%lld: row stride %lld", (long long)rows,
		    (long long)cols, (long long)n, (long long)(rows + 3));
		free(wide);
		mat_free(&t);
		free(x);
		free(xb);
		free(bias);
		free(y1);
		free(y2);
		free(y3);
	}
}

/* A half by its definition: sign, 5 bits of exponent (bias 15), 10 of mantissa. */
static float
half_by_formula(uint16_t h)
{
	int exp = (h >> 10) & 31, mant = h & 1023;
	float v = exp == 31 ? (mant ? NAN : INFINITY) :
	    exp == 0 ? ldexpf((float)mant, -24) : ldexpf((float)(1024 + mant), exp - 25);

	return h & 0x8000 ? -v : v;
}

/* The same value: the same bits, or both NaN. */
static int
same_value(float want, float got)
{
	return isnan(want) ? isnan(got) : memcmp(&want, &got, sizeof want) == 0;
}

/* Every half converts to its value (qvl_f16_to_f32 is branch-free and inline), and widens
 * to it as a q8 scale on every level: one row of weights 1, block b scaled by the half b. */
static void
test_widen_halves(void)
{
	int64_t nb = 65536, cols = nb * 32;
	int8_t *q = malloc((size_t)cols);
	uint16_t *scales = malloc((size_t)nb * sizeof *scales);
	float *dst = malloc((size_t)cols * sizeof *dst);
	qvl_matrix m = {.dtype = QVL_I8, .rows = 1, .cols = cols, .block = 32};
	int converted_wrong = 0;

	if (q == NULL || scales == NULL || dst == NULL) {
		CHECK(0, "widen halves: out of memory");
		goto out;
	}
	memset(q, 1, (size_t)cols);
	for (int64_t b = 0; b < nb; b++)
		scales[b] = (uint16_t)b;
	m.data = q;
	m.scales = scales;
	for (int64_t b = 0; b < nb; b++) {
		converted_wrong += !same_value(half_by_formula((uint16_t)b),
		    qvl_f16_to_f32((uint16_t)b));
	}
	CHECK(converted_wrong == 0, "qvl_f16_to_f32: the 65536 halves' values (%d not)",
	    converted_wrong);
	for (size_t l = 0; l < sizeof levels / sizeof *levels; l++) {
		int wrong = 0;
		if (!level_runs(levels[l]))
			continue;
		qvl_kernels_for(levels[l])->widen(&m, 0, 1, dst);
		for (int64_t b = 0; b < nb; b++)
			wrong += !same_value(half_by_formula((uint16_t)b), dst[b * 32 + 31]);
		CHECK(wrong == 0, "%s: the 65536 halves widen to their values (%d not)",
		    qvl_cpu_level_name(levels[l]), wrong);
	}
out:
	free(q);
	free(scales);
	free(dst);
}

int
main(int argc, char **argv)
{
	static const qvl_dtype kinds[] = {QVL_BF16, QVL_F16, QVL_F32, QVL_I8, QVL_U8};
	static const int64_t shapes[][2] = {
		{1, 1}, {3, 5}, {5, 16}, {7, 31}, {13, 33}, {17, 64}, {37, 100}, {67, 257},
		{21, 3420}, {130, 65}, {37, 4133}, {37, 8200},
	};
	static const int64_t ns[] = {1, 2, 3, 5, 8, 9, 17};
	qvl_err err;
	qvl_pool *pool2;
	char buf[128];

	TEST_INIT(argc, argv);
	if ((pool2 = qvl_pool_new(2, &err)) == NULL || (pool3 = qvl_pool_new(3, &err)) == NULL) {
		printf("FAIL pool: %s\n", err.msg);
		return 1;
	}
	if (test_verbose)
		printf("cpu %s: level %s, amx %d; %s\n", qvl_cpu_get()->name,
		    qvl_cpu_level_name(qvl_cpu_get()->level), qvl_cpu_get()->amx,
		    qvl_dnnl_info(buf, sizeof buf));
	for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++)
		for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
			for (size_t i = 0; i < sizeof ns / sizeof *ns; i++)
				test_case(pool2, kinds[k], shapes[s][0], shapes[s][1], ns[i]);
	/* Long batches: tiles for sgemm, several tiles when rows are many; 1, 2 and 3
	 * threads cut the last two into 1, 2 and 3 tiles (the bits must not change). */
	for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
		test_case(pool2, kinds[k], 67, 257, 300);
		test_case(pool2, kinds[k], 4099, 300, 20);
		test_case(pool2, kinds[k], 600, 1280, 40);
		test_case(pool2, kinds[k], 130, 65, 90);
	}
	/* bf16 precision on a q8 matrix of 8.6 M values: two BF16 tiles, the last short. */
	test_case(pool2, QVL_I8, 4200, 2048, 30);
	test_tile_chunks(pool2);
	test_widen_halves();
	test_amx(pool2);
	/* fused passes: declined for short batches and other kinds, the operands as they
	 * come and swapped (x BF16 and 4 n >= rows) */
	test_fused(pool2, QVL_BF16, 37, 100, 3);
	test_fused(pool2, QVL_I8, 67, 257, 300);
	test_fused(pool2, QVL_BF16, 67, 257, 300);
	test_fused(pool2, QVL_BF16, 1300, 96, 310);
	test_fused(pool2, QVL_BF16, 600, 1280, 340);
	qvl_pool_free(pool2);
	qvl_pool_free(pool3);
	return TEST_DONE();
}
