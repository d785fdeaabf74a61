/* test_vit_attn: the vision tower's attention on random q, k, v against a float64 softmax,
 * in float32 and with BF16 products (oneDNN): windows of every length up to 64 (more
 * shapes than a thread keeps compiled), a window of all heads at once, long groups split
 * into blocks of queries per head, groups that start inside the rows, and q and k rotated
 * while packed. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "../lib/kernels_dnnl.h"
#include "../lib/tensor.h"
#include "../lib/vit_attn.h"
#include "test.h"

static uint32_t rng = 12345;

static float
rnd(void)
{
	rng = rng * 1664525u + 1013904223u;
	return (float)((rng >> 8) & 0xffff) / 32768.0f - 1.0f;
}

/* out[i, head] of the group row0 .. row0 + len in float64; returns max |out| over it. */
static double
reference(const float *qkv, int64_t d, int heads, int hd, int64_t row0, int64_t len,
    double *ref)
{
	double *s = malloc((size_t)len * sizeof *s), top = 0;

	for (int h = 0; h < heads; h++)
		for (int64_t i = 0; i < len; i++) {
			const float *q = qkv + (row0 + i) * 3 * d + h * hd;
			double mx = -INFINITY, sum = 0;

			for (int64_t j = 0; j < len; j++) {
				const float *k = qkv + (row0 + j) * 3 * d + d + h * hd;
				double dot = 0;

				for (int c = 0; c < hd; c++)
					dot += (double)q[c] * k[c];
				s[j] = dot / sqrt((double)hd);
				mx = s[j] > mx ? s[j] : mx;
			}
			for (int64_t j = 0; j < len; j++)
				sum += s[j] = exp(s[j] - mx);
			for (int c = 0; c < hd; c++) {
				double o = 0;

				for (int64_t j = 0; j < len; j++)
					o += s[j] * qkv[(row0 + j) * 3 * d + 2 * d + h * hd + c];
				o /= sum;
				ref[((row0 + i) * heads + h) * hd + c] = o;
				top = fabs(o) > top ? fabs(o) : top;
			}
		}
	free(s);
	return top;
}

/* Rotate-half of q and k by the rows' angles (cos, sin [n, hd / 2]), as the tower does. */
static void
rotate(float *qkv, int64_t n, int64_t d, int hd, const float *cos, const float *sin)
{
	int half = hd / 2;

	for (int64_t r = 0; r < n; r++)
		for (int64_t c = 0; c < 2 * d; c += hd) {
			float *v = qkv + r * 3 * d + c;

			for (int i = 0; i < half; i++) {
				float a = v[i], b = v[i + half];

				v[i] = a * cos[r * half + i] - b * sin[r * half + i];
				v[i + half] = b * cos[r * half + i] + a * sin[r * half + i];
			}
		}
}

/* The group row0 .. row0 + len of n rows, in both precisions; with `rotated`, the bf16
 * path rotates q and k while packing, the float32 one reads them rotated in place. */
static void
test_group(qvl_dnnl_local *local, int heads, int hd, int64_t n, int64_t row0, int64_t len,
    int rotated, int verbose)
{
	int64_t d = (int64_t)heads * hd;
	float *qkv = malloc((size_t)(n * 3 * d) * sizeof *qkv);
	float *plain = malloc((size_t)(n * 3 * d) * sizeof *plain);
	float *cos = malloc((size_t)(n * hd / 2) * sizeof *cos);
	float *sin = malloc((size_t)(n * hd / 2) * sizeof *sin);
	float *out = malloc((size_t)(n * d) * sizeof *out);
	float *scratch = malloc(qvl_vit_attn_scratch_floats(len, hd) * sizeof *scratch);
	double *ref = malloc((size_t)(n * d) * sizeof *ref), top, e32 = 0, e16 = 0;
	int ok16 = 1;

	for (int64_t i = 0; i < n * 3 * d; i++)
		qkv[i] = plain[i] = 2.0f * rnd();
	for (int64_t i = 0; i < n * hd / 2; i++) {
		float angle = 3.0f * rnd();

		cos[i] = cosf(angle);
		sin[i] = sinf(angle);
	}
	if (rotated)
		rotate(qkv, n, d, hd, cos, sin);
	top = reference(qkv, d, heads, hd, row0, len, ref);
	for (int h = 0; h < heads; h++)
		qvl_vit_attn_group(qkv, d, h, hd, row0, len, 0, len, len, scratch, out);
	for (int64_t i = row0 * d; i < (row0 + len) * d; i++)
		e32 = fmax(e32, fabs(out[i] - ref[i]));
	CHECK(e32 <= 1e-5 * top, "f32: %d heads x %d, group %lld + %lld of %lld: error %.3g of %.3g",
	    heads, hd, (long long)row0, (long long)len, (long long)n, e32, top);
	if (local != NULL) {
		uint16_t *packed = malloc((size_t)(3 * n * d) * sizeof *packed);
		uint16_t *outb = malloc((size_t)(n * d) * sizeof *outb);
		int nheads;
		int64_t qn;
		void *bs;

		qvl_vit_attn_bf16_task(heads, len, &nheads, &qn);
		bs = malloc(qvl_vit_attn_bf16_scratch_bytes(nheads, qn, len, hd));
		for (int64_t i = 0; i < n * d; i++)
			outb[i] = 0x7fc0; /* NaN */
		qvl_vit_attn_pack(rotated ? plain : qkv, n, d, hd, row0, len, row0, row0 + len,
		    rotated ? cos : NULL, rotated ? sin : NULL, packed);
		for (int h = 0; h < heads; h += nheads)
			for (int64_t i = 0; i < len; i += qn)
				ok16 &= qvl_vit_attn_bf16(local, packed, n, d, hd, row0, len, h,
				    nheads, i, len - i < qn ? len - i : qn, bs, outb) == 0;
		for (int64_t i = row0 * d; i < (row0 + len) * d; i++) {
			float o = qvl_bf16_to_f32(outb[i]);
			e16 = o == o ? fmax(e16, fabs(o - ref[i])) : INFINITY;
		}
		/* q, k, v, the probabilities and the output rounded to BF16 (2^-9 each):
		 * measured up to 0.7% of the largest output over these cases. */
		CHECK(ok16 && e16 <= 2e-2 * top,
		    "bf16: %d heads x %d, group %lld + %lld of %lld%s (tasks %d heads x %lld): "
		    "error %.3g of %.3g", heads, hd, (long long)row0, (long long)len, (long long)n,
		    rotated ? ", rotated while packed" : "", nheads, (long long)qn, e16, top);
		free(packed);
		free(outb);
		free(bs);
	}
	if (verbose)
		printf("     %d heads x %d, group %lld + %lld: f32 %.2g, bf16 %.2g of %.3g\n", heads,
		    hd, (long long)row0, (long long)len, e32, e16, top);
	free(qkv);
	free(plain);
	free(cos);
	free(sin);
	free(out);
	free(scratch);
	free(ref);
}

int
main(int argc, char **argv)
{
	qvl_dnnl_local *local;

	TEST_INIT(argc, argv);
	local = qvl_dnnl_local_new();
	if (test_verbose)
		printf("bf16 products: %s\n", local ? "oneDNN" : "none (float32 only)");
	/* Windows of every length to 64 (the 3B's 8 x 8 patches) and beyond: 65 shapes. */
	for (int64_t len = 1; len <= 65; len++)
		test_group(local, 4, 16, len + 3, len % 3, len, len % 2, 0);
	test_group(local, 16, 80, 64, 0, 64, 1, test_verbose);
	/* Full attention: heads x len² over the budget, blocks of queries per head. */
	test_group(local, 2, 16, 1100, 0, 1100, 0, test_verbose);
	test_group(local, 3, 8, 1400, 100, 1200, 1, test_verbose);
	/* All heads of a long group in one batched product. */
	test_group(local, 2, 16, 700, 0, 700, 0, test_verbose);
	qvl_dnnl_local_free(local);
	return TEST_DONE();
}
