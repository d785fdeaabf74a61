#include "matmul.h"

#include <stdlib.h>
#include <string.h>

#include <cblas.h>

int
qvl_matrix_from_tensor(const qvl_tensor *t, qvl_matrix *m, qvl_err *err)
{
	if (t->ndim != 2)
		return qvl_fail(err, "weight is %d-D, want a matrix", t->ndim);
	if (t->dtype != QVL_BF16 && t->dtype != QVL_F16 && t->dtype != QVL_F32)
		return qvl_fail(err, "weight dtype %s is not a float type", qvl_dtype_name(t->dtype));
	memset(m, 0, sizeof *m);
	m->dtype = t->dtype;
	m->rows = t->shape[0];
	m->cols = t->shape[1];
	m->data = t->data;
	return 0;
}

/* Rows of W widened to float32 at a time: big enough for sgemm to run at speed, small
 * enough to stay in cache and never approach a float32 copy of the model. */
#define TILE_ROWS 256

struct matvec_job {
	const qvl_matrix *w;
	const float *bias, *x;
	float *y;
	long rows_per_task;
};

static void
matvec_task(void *ctx, long task, int thread)
{
	struct matvec_job *job = ctx;
	const qvl_matrix *w = job->w;
	int64_t begin = task * job->rows_per_task, end = begin + job->rows_per_task;
	float row[4096];

	(void)thread;
	if (end > w->rows)
		end = w->rows;
	for (int64_t r = begin; r < end; r++) {
		float sum = 0;
		for (int64_t c0 = 0; c0 < w->cols; c0 += 4096) {
			int64_t n = w->cols - c0 < 4096 ? w->cols - c0 : 4096;
			qvl_to_f32(w->dtype, w->data, (size_t)(r * w->cols + c0), (size_t)n, row);
			for (int64_t c = 0; c < n; c++)
				sum += row[c] * job->x[c0 + c];
		}
		job->y[r] = sum + (job->bias ? job->bias[r] : 0);
	}
}

void
qvl_matmul(qvl_pool *pool, const qvl_matrix *w, const float *bias, const float *x, int64_t n,
    float *y)
{
	float *tile = n > 1 ? qvl_alloc((size_t)TILE_ROWS * (size_t)w->cols * sizeof *tile) : NULL;

	if (tile == NULL) {
		/* One row, or no memory for a tile: the kernels need none. */
		for (int64_t i = 0; i < n; i++) {
			struct matvec_job job = {w, bias, x + i * w->cols, y + i * w->rows, 64};
			qvl_pool_run(pool, (long)((w->rows + 63) / 64), matvec_task, &job);
		}
		return;
	}
	for (int64_t r0 = 0; r0 < w->rows; r0 += TILE_ROWS) {
		int64_t nr = w->rows - r0 < TILE_ROWS ? w->rows - r0 : TILE_ROWS;
		qvl_to_f32(w->dtype, w->data, (size_t)(r0 * w->cols), (size_t)(nr * w->cols), tile);
		if (bias)
			for (int64_t i = 0; i < n; i++)
				memcpy(y + i * w->rows + r0, bias + r0, (size_t)nr * sizeof *y);
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)nr, (int)w->cols,
		    1.0f, x, (int)w->cols, tile, (int)w->cols, bias ? 1.0f : 0.0f, y + r0, (int)w->rows);
	}
	free(tile);
}

void
qvl_sgemm_nt(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
    const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)k, alpha, a,
	    (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

void
qvl_sgemm_nn(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
    const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)n, (int)k, alpha, a,
	    (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

float *
qvl_vector_f32(const qvl_tensor *t, int64_t n, const char *name, qvl_err *err)
{
	float *v;

	if (t->ndim != 1 || t->shape[0] != n) {
		qvl_fail(err, "%s: %d-D tensor of %lld values, want [%lld]", name, t->ndim,
		    t->ndim ? (long long)t->shape[0] : 0LL, (long long)n);
		return NULL;
	}
	if ((v = qvl_alloc((size_t)n * sizeof *v)) == NULL) {
		qvl_fail(err, "%s: out of memory", name);
		return NULL;
	}
	qvl_tensor_to_f32(t, v);
	return v;
}
