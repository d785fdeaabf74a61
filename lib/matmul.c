/* matmul.c: products with weight matrices, dispatched to the kernels of the CPU's level.
 *
 * Short batches (decoding, short prompts: up to the kernels' rows_max_n rows of X) read W
 * in its own format through the `rows` kernels, once per QVL_KERN_MAXN rows, threads
 * splitting W by row blocks.  Longer batches widen tiles of W to float32 (threads splitting
 * the tile) and hand them to sgemm, each tile serving all n rows.  In bf16 precision they
 * go to BF16 products instead: qvl's own AMX tiles (kernels_amx.c) for BF16 weights where
 * the CPU has AMX, else oneDNN's (kernels_dnnl.c; other kinds in tiles widened to BF16,
 * which take the AMX products too where they run).  Where AMX runs, float32 precision's
 * long batches of BF16 weights go to it as well, each x in three BF16 parts that add up to
 * it exactly. */
#include "matmul.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "cpu.h"
#include "kernels.h"
#include "kernels_amx.h"
#include "kernels_dnnl.h"

/* Batches up to this many rows of BF16 weights never go to oneDNN: the rows kernels read
 * W once and the work is at most a few times that read (measured in bench/matmul.c). */
#define SMALL_N 8
/* Other kinds go to oneDNN in BF16 tiles widened for each product, which pays only for
 * longer batches: on the 3B decoder layer's shapes (2 Zen 4 cores, VNNI rows kernels
 * against tiles) from about 28 rows for q8 (24: 33 against 38 ms a layer, 32: 45 against
 * 41) and 80 for q4 (64: 53 against 58, 96: 66 against 61); 512 rows take 2.1 (q8) and
 * 1.4 (q4) times less time than the rows kernels or sgemm.  F16 and F32 matrices (rare in
 * checkpoints) take q8's bound, their tiles being widened the same way. */
#define TILES_MIN_N_Q8 28
#define TILES_MIN_N_Q4 80
/* Rows of W per task of the rows kernels: a multiple of the kernels' row group. */
#define TASK_ROWS 16
/* float32 bytes of a tile of W for sgemm, at most: sgemm packs all of x again for every
 * tile, so tiles are as large as the threads allow (A4 page, 2 threads: 4 MB tiles spent
 * 8 % of the vision tower repacking x; 2 tiles a matrix are 10 % faster in all), and
 * small enough never to approach a float32 copy of the model. */
#define TILE_BYTES (16 << 20)
/* BF16's x in pair order on the stack up to this many floats (a row of 8192 values); the
 * codes of q8 and q4 (int16 or int8 beside their floats) go on the heap, as they must not
 * live in a float array. */
#define PREP_STACK 8192
/* ...after this many floats of guard (two cache lines: the pair the L2 fetches together).
 * Every thread reads x for each row of W, while the calling thread, which runs tasks too,
 * writes its call frames just below this one: a line shared with them went back and forth
 * between the cores.  Two threads on a BF16 matrix of 293 MB, alternating runs when memory
 * read 45-54 GB/s: 33-43 GB/s with x at the frame's edge, 40-50 (the rows kernel called
 * with x elsewhere: the same) with the guard. */
#define PREP_GUARD 32

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
	const float *x, *xp;
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
	job->k->rows(job->w, r0, r1, job->x, job->w->cols, job->n, job->xp, job->y,
	    job->w->rows);
}

/* y[n, rows] = x[n, cols] · Wᵀ for n <= QVL_KERN_MAXN. */
static void
matmul_rows(qvl_pool *pool, const qvl_kernels *k, const qvl_matrix *w, const float *x, int n,
    float *y)
{
	int64_t per = k->prep_floats(w);
	_Alignas(64) float stack[PREP_GUARD + PREP_STACK];
	float *xp = NULL;
	struct rows_job job = {k, w, x, NULL, n, y};

	if (per > 0) {
		if (n * per <= PREP_STACK && w->dtype == QVL_BF16)
			xp = stack + PREP_GUARD;
		else if ((xp = qvl_alloc((size_t)(n * per) * sizeof *xp)) == NULL &&
		    w->dtype == QVL_U8) {
			/* q4 cannot do without its block sums: no result (the other
			 * kernels read x as it is) */
			for (int64_t i = 0; i < n * w->rows; i++)
				y[i] = NAN;
			return;
		}
		for (int i = 0; xp != NULL && i < n; i++)
			k->prep(w, x + i * w->cols, xp + i * per);
		job.xp = xp;
	}
	qvl_pool_run(pool, (long)((w->rows + TASK_ROWS - 1) / TASK_ROWS), rows_task, &job);
	if (xp != stack + PREP_GUARD)
		free(xp);
}

/* One task of a long batch: a tile of W's rows, widened into the thread's own buffer, times
 * all n rows of x by single-threaded sgemm into y's columns of that tile.  Tiles have a fixed
 * size (never the thread count's), so every value of y comes from the same calls for any
 * number of threads. */
struct gemm_job {
	const qvl_kernels *k;
	const qvl_matrix *w;
	const float *bias, *x;
	int64_t n, tile_rows;
	float *tiles; /* [threads][tile_rows * cols] */
	float *y;
};

static void
gemm_task(void *ctx, long task, int thread)
{
	struct gemm_job *job = ctx;
	const qvl_matrix *w = job->w;
	int64_t r0 = (int64_t)task * job->tile_rows, nr = w->rows - r0;
	float *tile = job->tiles + (size_t)thread * (size_t)(job->tile_rows * w->cols);

	if (nr > job->tile_rows)
		nr = job->tile_rows;
	job->k->widen(w, r0, nr, tile);
	if (job->bias)
		for (int64_t i = 0; i < job->n; i++)
			memcpy(job->y + i * w->rows + r0, job->bias + r0, (size_t)nr * sizeof *job->y);
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)job->n, (int)nr, (int)w->cols,
	    1.0f, job->x, (int)w->cols, tile, (int)w->cols, job->bias ? 1.0f : 0.0f,
	    job->y + r0, (int)w->rows);
}

/* OpenBLAS computes products of up to about 100^3 multiply-adds with its small-matrix
 * kernels, which round differently from its blocked ones: every tile of a product above
 * that stays well above it, so an element's bits never depend on the tiling. */
#define SGEMM_SMALL 8e6

/* Rows of W per tile for n rows of x: tiles of at most about TILE_BYTES float32, their
 * count a multiple of the threads so that each gets an equal share where the product is
 * large enough, rows a multiple of 16. */
static int64_t
gemm_tile_rows(const qvl_matrix *w, int64_t n, int threads)
{
	double bytes = 4.0 * (double)w->rows * (double)w->cols;
	double row_work = (double)n * (double)w->cols; /* multiply-adds per row of W */
	int64_t ntiles = (int64_t)ceil(bytes / TILE_BYTES);

	ntiles = (ntiles + threads - 1) / threads * threads;
	for (; ntiles > 1; ntiles--) {
		int64_t rows = ((w->rows + ntiles - 1) / ntiles + 15) / 16 * 16;
		int64_t last = w->rows - (w->rows - 1) / rows * rows;
		if (rows < w->rows && (double)last * row_work > SGEMM_SMALL)
			return rows;
	}
	return w->rows;
}

void
qvl_matmul_kern(qvl_pool *pool, const qvl_kernels *k, const qvl_matrix *w, const float *bias,
    const float *x, int64_t n, float *y)
{
	int threads = qvl_pool_threads(pool);
	struct gemm_job job = {k, w, bias, x, n, 0, NULL, y};

	if (n <= 0 || w->rows <= 0)
		return;
	if (w->cols == 0) {
		for (int64_t i = 0; i < n; i++)
			for (int64_t r = 0; r < w->rows; r++)
				y[i * w->rows + r] = bias ? bias[r] : 0;
		return;
	}
	if (n > k->rows_max_n(w)) {
		job.tile_rows = gemm_tile_rows(w, n, threads);
		job.tiles = qvl_alloc((size_t)threads * (size_t)job.tile_rows * (size_t)w->cols *
		    sizeof *job.tiles);
	}
	if (job.tiles == NULL) {
		/* A short batch, or no memory for tiles: the rows kernels need none. */
		for (int64_t i = 0; i < n; i += QVL_KERN_MAXN)
			matmul_rows(pool, k, w, x + i * w->cols,
			    (int)(n - i < QVL_KERN_MAXN ? n - i : QVL_KERN_MAXN), y + i * w->rows);
		if (bias)
			for (int64_t i = 0; i < n; i++)
				for (int64_t r = 0; r < w->rows; r++)
					y[i * w->rows + r] += bias[r];
		return;
	}
	qvl_pool_run(pool, (long)((w->rows + job.tile_rows - 1) / job.tile_rows), gemm_task,
	    &job);
	free(job.tiles);
}

/* The longest batch the bf16 precision leaves to the kernels of k. */
static int64_t
bf16_max_kern_n(const qvl_kernels *k, const qvl_matrix *w)
{
	int64_t n = w->dtype == QVL_BF16 ? SMALL_N :
	    w->dtype == QVL_U8 ? TILES_MIN_N_Q4 : TILES_MIN_N_Q8;
	int64_t rows_n = k->rows_max_n(w);

	/* Beyond rows_n the kernels would widen float32 tiles for sgemm: BF16 ones are faster. */
	return n < rows_n ? n : rows_n;
}

/* Whether the product goes to BF16 products (oneDNN) first. */
static int
takes_bf16(qvl_pool *pool, const qvl_kernels *k, const qvl_matrix *w, int64_t n)
{
	return qvl_pool_precision(pool) == QVL_PRECISION_BF16 && n > bf16_max_kern_n(k, w);
}

/* BF16 matrices on qvl's own AMX products, where they run (other kinds go to oneDNN in
 * widened tiles, which then take the AMX products themselves); exact: x in three BF16
 * parts, for float32 precision. */
static int
amx_product(qvl_pool *pool, const qvl_matrix *w, const float *bias, const uint16_t *xb,
    const float *x, int64_t n, float *y, int exact, int accumulate)
{
	qvl_amx_args a = {
		.w = w->data, .rows = w->rows, .cols = w->cols, .bias = bias, .alpha = 1.0f,
		.xb = xb, .x = x, .exact = exact, .n = n, .y = y, .ldy = w->rows,
		.accumulate = accumulate,
	};

	if (w->dtype != QVL_BF16)
		return -1;
	/* Long batches of BF16 inputs (the vision tower's) swap the operands: x as the tiles'
	 * W, W packed in its place, y written by rows, so that no 16 x 16 block of y is
	 * transposed on its way out; packing W instead of x pays while W has at most 4 rows
	 * a row of x (bf16 tower, alternating runs: A4 page 3.12-3.51 -> 2.94-3.11 s, 812 x 812
	 * 4.40-4.43 -> 4.17-4.34 s, 448 x 448 1.28-1.33 -> 1.20-1.23 s). */
	if (xb && 4 * n >= w->rows) {
		a.w = xb, a.rows = n, a.xb = w->data, a.n = w->rows;
		a.by_rows = 1;
	}
	return qvl_amx_product(pool, &a);
}

void
qvl_matmul(qvl_pool *pool, const qvl_matrix *w, const float *bias, const float *x, int64_t n,
    float *y)
{
	const qvl_kernels *k = qvl_kernels_for(qvl_cpu_get()->level);

	if (takes_bf16(pool, k, w, n) && (amx_product(pool, w, bias, NULL, x, n, y, 0, 0) == 0 ||
	    qvl_dnnl_matmul_bf16(pool, w, bias, x, n, y) == 0))
		return;
	/* float32 precision: batches that would go to sgemm go to AMX in three exact parts
	 * where it runs, three BF16 products costing less than one float32 one */
	if (qvl_pool_precision(pool) == QVL_PRECISION_F32 && n > k->rows_max_n(w) &&
	    amx_product(pool, w, bias, NULL, x, n, y, 1, 0) == 0)
		return;
	qvl_matmul_kern(pool, k, w, bias, x, n, y);
}

void
qvl_matmul_xb(qvl_pool *pool, const qvl_matrix *w, const float *bias, const uint16_t *xb,
    int64_t n, float *tmp, float *y)
{
	const qvl_kernels *k = qvl_kernels_for(qvl_cpu_get()->level);

	if (takes_bf16(pool, k, w, n) && (amx_product(pool, w, bias, xb, NULL, n, y, 0, 0) == 0 ||
	    qvl_dnnl_matmul_xb(pool, w, bias, xb, n, y) == 0))
		return;
	for (int64_t i = 0; i < n * w->cols; i++)
		tmp[i] = qvl_bf16_to_f32(xb[i]);
	qvl_matmul_kern(pool, k, w, bias, tmp, n, y);
}

int
qvl_matmul_add(qvl_pool *pool, const qvl_matrix *w, const float *bias, const float *x,
    const uint16_t *xb, int64_t n, float *y)
{
	const qvl_kernels *k = qvl_kernels_for(qvl_cpu_get()->level);

	/* where qvl_matmul and qvl_matmul_xb take the AMX tiles first */
	if (takes_bf16(pool, k, w, n))
		return amx_product(pool, w, bias, xb, x, n, y, 0, 1);
	if (qvl_pool_precision(pool) == QVL_PRECISION_F32 && x != NULL && n > k->rows_max_n(w))
		return amx_product(pool, w, bias, NULL, x, n, y, 1, 1);
	return -1;
}

int
qvl_matmul_glu(qvl_pool *pool, const qvl_matrix *gate, const float *gate_b,
    const qvl_matrix *up, const float *up_b, const float *x, const uint16_t *xb, int64_t n,
    uint16_t *out)
{
	const qvl_kernels *k = qvl_kernels_for(qvl_cpu_get()->level);
	qvl_amx_args a = {
		.w = gate->data, .rows = gate->rows, .cols = gate->cols, .bias = gate_b,
		.alpha = 1.0f, .xb = xb, .x = x, .n = n, .ldy = gate->rows, .w2 = up->data,
		.bias2 = up_b, .yb = out,
	};

	if (!takes_bf16(pool, k, gate, n) || gate->dtype != QVL_BF16 ||
	    up->dtype != QVL_BF16 || up->rows != gate->rows || up->cols != gate->cols)
		return -1;
	/* swapped as amx_product swaps, so that the bits are its own */
	if (xb && 4 * n >= gate->rows) {
		a.w = xb, a.rows = n, a.xb = gate->data, a.n = gate->rows;
		a.w2 = NULL, a.xb2 = up->data, a.by_rows = 1;
	}
	return qvl_amx_product(pool, &a);
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
