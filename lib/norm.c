#include "norm.h"

#include <math.h>

#include "vmath.h"

#define ROWS_PER_TASK 32

struct norm_job {
	const float *x, *weight;
	float *y;
	uint16_t *yb;     /* or the rows rounded to BF16 */
	int64_t n, d;
	double eps;
};

/* Floats of a row rounded to BF16 at a time. */
#define BF16_CHUNK 256

/* Σ x[i]² in double, sixteen lanes side by side added up in a fixed order: the one-by-one
 * sum waited on the adder, four cycles a value (a page's 64 norms in the vision tower took
 * 0.25 s of CPU). */
static double
sum_squares(const float *x, int64_t d)
{
	typedef double vd __attribute__((vector_size(8 * sizeof(double))));
	typedef float vf __attribute__((vector_size(8 * sizeof(float)), aligned(4), may_alias));
	vd lo = { 0 }, hi = { 0 };
	double ss = 0;
	int64_t i = 0;

	for (; i + 16 <= d; i += 16) {
		vd a = __builtin_convertvector(*(const vf *)(x + i), vd);
		vd b = __builtin_convertvector(*(const vf *)(x + i + 8), vd);

		lo += a * a;
		hi += b * b;
	}
	lo += hi;
	for (int k = 0; k < 8; k++)
		ss += lo[k];
	for (; i < d; i++)
		ss += (double)x[i] * x[i];
	return ss;
}

static void
norm_task(void *ctx, long task, int thread)
{
	const struct norm_job *j = ctx;
	int64_t r0 = task * ROWS_PER_TASK;
	int64_t r1 = r0 + ROWS_PER_TASK < j->n ? r0 + ROWS_PER_TASK : j->n;

	(void)thread;
	for (int64_t r = r0; r < r1; r++) {
		const float *x = j->x + r * j->d;
		float *y = j->y != NULL ? j->y + r * j->d : NULL;
		float scale = (float)(1.0 / sqrt(sum_squares(x, j->d) / (double)j->d + j->eps));

		if (j->yb == NULL) {
			for (int64_t i = 0; i < j->d; i++)
				y[i] = j->weight[i] * (x[i] * scale);
			continue;
		}
		for (int64_t i0 = 0; i0 < j->d; i0 += BF16_CHUNK) {
			int64_t count = j->d - i0 < BF16_CHUNK ? j->d - i0 : BF16_CHUNK;
			float row[BF16_CHUNK];

			for (int64_t i = 0; i < count; i++)
				row[i] = j->weight[i0 + i] * (x[i0 + i] * scale);
			qvl_round_bf16(row, 1.0f, count, j->yb + r * j->d + i0);
		}
	}
}

void
qvl_rms_norm(qvl_pool *pool, const float *x, const float *weight, int64_t n, int64_t d,
    double eps, float *y)
{
	struct norm_job j = { x, weight, y, NULL, n, d, eps };

	qvl_pool_run(pool, (long)((n + ROWS_PER_TASK - 1) / ROWS_PER_TASK), norm_task, &j);
}

void
qvl_rms_norm_bf16(qvl_pool *pool, const float *x, const float *weight, int64_t n, int64_t d,
    double eps, uint16_t *y)
{
	struct norm_job j = { x, weight, NULL, y, n, d, eps };

	qvl_pool_run(pool, (long)((n + ROWS_PER_TASK - 1) / ROWS_PER_TASK), norm_task, &j);
}
