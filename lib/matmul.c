/* matmul.c: products with weight matrices, dispatched to the kernels of the CPU's level.
 *
 * Short batches (n <= SMALL_N rows of X, decoding) read W once in its own format through the
 * `rows` kernels, threads splitting W by row blocks.  Longer batches widen tiles of W to
 * float32 (threads splitting the tile) and hand them to sgemm, each tile serving all n rows;
 * in bf16 precision, with oneDNN, BF16 weights go to its bf16 matmul instead (kernels_dnnl.c). */
#include "matmul.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "cpu.h"
#include "kernels.h"
#include "kernels_dnnl.h"

/* Batches up to this many rows go through the rows kernels: W is read from memory once and
 * the work is at most a few times that read (measured in bench/matmul.c). */
#define SMALL_N 8
/* Rows of W per task of the rows kernels: a multiple of the kernels' row group. */
#define TASK_ROWS 16
/* float32 bytes of a tile of W for sgemm: large enough for sgemm to run at speed, small
 * enough to stay in L2/L3 and never approach a float32 copy of the model. */
#define TILE_BYTES (4 << 20)
/* q4 block sums on the stack up to this many blocks per input (rows of 32768 values). */
#define XSUM_STACK 1024

const qvl_kernels *
qvl_kernels_for(qvl_cpu_level level)
{
	switch (level) {
	case QVL_CPU_AVX512BF16:
	case QVL_CPU_AVX512:
		return &qvl_kernels_avx512;
	case QVL_CPU_AVX2:
		return &qvl_kernels_avx2;
	default:
		return &qvl_kernels_generic;
	}
}

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

struct rows_job {
	const qvl_kernels *k;
	const qvl_matrix *w;
	const float *x, *xsum;
	int n;
	float *y;
};

static void
rows_task(void *ctx, long task, int thread)
{
	struct rows_job *job = ctx;
	int64_t r0 = (int64_t)task * TASK_ROWS, r1 = r0 + TASK_ROWS;

	(void)thread;
	if (r1 > job->w->rows)
		r1 = job->w->rows;
	job->k->rows(job->w, r0, r1, job->x, job->w->cols, job->n, job->xsum, job->y,
	    job->w->rows);
}

/* y[n, rows] = x[n, cols] · Wᵀ for n <= QVL_KERN_MAXN. */
static void
matmul_rows(qvl_pool *pool, const qvl_kernels *k, const qvl_matrix *w, const float *x, int n,
    float *y)
{
	int64_t nb = qvl_qblocks(w->cols);
	float stack[XSUM_STACK], *xsum = NULL;
	struct rows_job job = {k, w, x, NULL, n, y};

	if (w->dtype == QVL_U8) {
		if (n * nb <= XSUM_STACK)
			xsum = stack;
		else if ((xsum = malloc((size_t)(n * nb) * sizeof *xsum)) == NULL) {
			/* Rows over 32768 values / 8 and no memory: one input at a time. */
			if (n > 1 && nb <= XSUM_STACK) {
				for (int i = 0; i < n; i++)
					matmul_rows(pool, k, w, x + i * w->cols, 1, y + i * w->rows);
			} else {
				for (int64_t i = 0; i < n * w->rows; i++)
					y[i] = NAN;
			}
			return;
		}
		for (int i = 0; i < n; i++)
			qvl_kern_block_sums(x + i * w->cols, w->cols, xsum + i * nb);
		job.xsum = xsum;
	}
	qvl_pool_run(pool, (long)((w->rows + TASK_ROWS - 1) / TASK_ROWS), rows_task, &job);
	if (xsum != stack)
		free(xsum);
}

struct widen_job {
	const qvl_kernels *k;
	const qvl_matrix *w;
	int64_t r0, nr, per;
	float *tile;
};

static void
widen_task(void *ctx, long task, int thread)
{
	struct widen_job *job = ctx;
	int64_t begin = (int64_t)task * job->per, nr = job->nr - begin;

	(void)thread;
	if (nr > job->per)
		nr = job->per;
	job->k->widen(job->w, job->r0 + begin, nr, job->tile + begin * job->w->cols);
}

void
qvl_matmul_kern(qvl_pool *pool, const qvl_kernels *k, const qvl_matrix *w, const float *bias,
    const float *x, int64_t n, float *y)
{
	int64_t tile_rows = TILE_BYTES / 4 / (w->cols > 0 ? w->cols : 1);
	float *tile = NULL;

	if (n <= 0 || w->rows <= 0)
		return;
	if (w->cols == 0) {
		for (int64_t i = 0; i < n; i++)
			for (int64_t r = 0; r < w->rows; r++)
				y[i * w->rows + r] = bias ? bias[r] : 0;
		return;
	}
	tile_rows = tile_rows < 16 ? 16 : tile_rows / 16 * 16;
	if (tile_rows > w->rows)
		tile_rows = w->rows;
	if (n > SMALL_N)
		tile = qvl_alloc((size_t)tile_rows * (size_t)w->cols * sizeof *tile);
	if (tile == NULL) {
		/* A short batch, or no memory for a tile: the rows kernels need none. */
		for (int64_t i = 0; i < n; i += QVL_KERN_MAXN)
			matmul_rows(pool, k, w, x + i * w->cols,
			    (int)(n - i < QVL_KERN_MAXN ? n - i : QVL_KERN_MAXN), y + i * w->rows);
		if (bias)
			for (int64_t i = 0; i < n; i++)
				for (int64_t r = 0; r < w->rows; r++)
					y[i * w->rows + r] += bias[r];
		return;
	}
	for (int64_t r0 = 0; r0 < w->rows; r0 += tile_rows) {
		int64_t nr = w->rows - r0 < tile_rows ? w->rows - r0 : tile_rows;
		int threads = qvl_pool_threads(pool);
		struct widen_job job = {k, w, r0, nr, (nr + threads - 1) / threads, tile};

		qvl_pool_run(pool, (long)((nr + job.per - 1) / job.per), widen_task, &job);
		if (bias)
			for (int64_t i = 0; i < n; i++)
				memcpy(y + i * w->rows + r0, bias + r0, (size_t)nr * sizeof *y);
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)nr, (int)w->cols,
		    1.0f, x, (int)w->cols, tile, (int)w->cols, bias ? 1.0f : 0.0f, y + r0,
		    (int)w->rows);
	}
	free(tile);
}

void
qvl_matmul(qvl_pool *pool, const qvl_matrix *w, const float *bias, const float *x, int64_t n,
    float *y)
{
	if (n > SMALL_N && w->dtype == QVL_BF16 &&
	    qvl_pool_precision(pool) == QVL_PRECISION_BF16 &&
	    qvl_dnnl_matmul_bf16(pool, w, bias, x, n, y) == 0)
		return;
	qvl_matmul_kern(pool, qvl_kernels_for(qvl_cpu_get()->level), w, bias, x, n, y);
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
