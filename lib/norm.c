#include "norm.h"

#include <math.h>

#define ROWS_PER_TASK 32

struct norm_job {
	const float *x, *weight;
	float *y;
	int64_t n, d;
	double eps;
};

static void
norm_task(void *ctx, long task, int thread)
{
	const struct norm_job *j = ctx;
	int64_t r0 = task * ROWS_PER_TASK;
	int64_t r1 = r0 + ROWS_PER_TASK < j->n ? r0 + ROWS_PER_TASK : j->n;

	(void)thread;
	for (int64_t r = r0; r < r1; r++) {
		const float *x = j->x + r * j->d;
		float *y = j->y + r * j->d;
		double ss = 0;
		float scale;

		for (int64_t i = 0; i < j->d; i++)
			ss += (double)x[i] * x[i];
		scale = (float)(1.0 / sqrt(ss / (double)j->d + j->eps));
		for (int64_t i = 0; i < j->d; i++)
			y[i] = j->weight[i] * (x[i] * scale);
	}
}

void
qvl_rms_norm(qvl_pool *pool, const float *x, const float *weight, int64_t n, int64_t d,
    double eps, float *y)
{
	struct norm_job j = { x, weight, y, n, d, eps };

	qvl_pool_run(pool, (long)((n + ROWS_PER_TASK - 1) / ROWS_PER_TASK), norm_task, &j);
}
