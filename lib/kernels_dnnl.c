/* kernels_dnnl.c: the bf16 precision's products through oneDNN's matmul primitive.
 *
 * The weights are used in place (the checkpoint's [rows, cols] BF16 is oneDNN's weights
 * [cols, rows] with tag "ba"); the activations are rounded to BF16 (nearest even, as torch
 * casts), the output and bias stay float32.  Engine, stream and primitive are made per call:
 * oneDNN caches the compiled primitive by shape, so repeated shapes cost microseconds, and
 * the library keeps no state of its own. */
#include "kernels_dnnl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "kernels.h"
#include "kernels_amx.h"
#include "tensor.h"
#include "vmath.h"

#ifdef QVL_HAVE_DNNL
#include <dlfcn.h>
#include <pthread.h>
#include <oneapi/dnnl/dnnl.h>

struct round_job {
	const float *x;
	uint16_t *xb;
	int64_t count, per;
};

static int
bf16_usable(void)
{
	const qvl_cpu *cpu = qvl_cpu_get();

	/* Without native BF16 oneDNN emulates it slowly: float32 sgemm is faster and exact. */
	return (cpu->avx512bf16 || cpu->amx) && cpu->level >= QVL_CPU_AVX512BF16;
}

static void
round_task(void *ctx, long task, int thread)
{
	struct round_job *job = ctx;
	int64_t begin = (int64_t)task * job->per, count = job->count - begin;

	(void)thread;
	if (count > job->per)
		count = job->per;
	qvl_round_bf16(job->x + begin, 1.0f, count, job->xb + begin);
}

/* oneDNN's OpenMP workers spin for milliseconds after a product (libgomp's default wait
 * policy, read once at startup), taking the cores from qvl's own pool, which runs the rest
 * of the layer: release them as soon as the product is done.  OpenMP 5's
 * omp_pause_resource_all ends the team's threads and the next product starts them anew:
 * about 0.18 ms a product, where the spinning cost the next pool job up to a scheduler
 * slice (3B on 2 Zen 4 cores, bf16: prefill of 510 tokens 9.2 -> 8.3 s, of 22 tokens
 * 0.71-0.76 -> 0.65-0.74 s, vision of an A4 page 11.2-11.6 -> 10.5 s, the same bits).
 * Looked up at run time: oneDNN may be built on other threading, and then there is
 * nothing to do. */
static int (*omp_pause_all)(int);
static int (*omp_max_threads)(void);
static void (*omp_set_threads)(int);
static pthread_once_t dnnl_setup_once = PTHREAD_ONCE_INIT;

/* Once, before oneDNN makes any kernel: where cpuid lists AMX but qvl found it unusable
 * (not granted, faulting, or QVL_CPU named a level), oneDNN must not pick it either, since
 * it reads cpuid on its own. */
static void
dnnl_setup(void)
{
	const qvl_cpu *cpu = qvl_cpu_get();

	if (cpu->amx_listed && !cpu->amx)
		dnnl_set_max_cpu_isa(dnnl_cpu_isa_avx512_core_bf16);
	if (dnnl_version()->cpu_runtime != DNNL_RUNTIME_OMP)
		return;
	*(void **)&omp_pause_all = dlsym(RTLD_DEFAULT, "omp_pause_resource_all");
	*(void **)&omp_max_threads = dlsym(RTLD_DEFAULT, "omp_get_max_threads");
	*(void **)&omp_set_threads = dlsym(RTLD_DEFAULT, "omp_set_num_threads");
}

static void
omp_release(void)
{
	pthread_once(&dnnl_setup_once, dnnl_setup);
	if (omp_pause_all)
		omp_pause_all(1); /* omp_pause_soft */
}

/* y[n, nr] (row stride ldy) = xb[n, cols] · wb[nr, cols]ᵀ + bias, all on oneDNN's threads. */
static int
dnnl_product(const uint16_t *xb, int64_t n, int64_t cols, const uint16_t *wb, int64_t nr,
    const float *bias, float *y, int64_t ldy)
{
	dnnl_engine_t engine = NULL;
	dnnl_stream_t stream = NULL;
	dnnl_primitive_desc_t pd = NULL;
	dnnl_primitive_t prim = NULL;
	dnnl_memory_t msrc = NULL, mwei = NULL, mbias = NULL, mdst = NULL;
	dnnl_memory_desc_t src_md, wei_md, bias_md, dst_md;
	dnnl_matmul_desc_t desc;
	dnnl_dims_t src_dims = {n, cols}, wei_dims = {cols, nr}, dst_dims = {n, nr},
	    dst_strides = {ldy, 1}, bias_dims = {1, nr};
	int rc = -1;

	if (dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success ||
	    dnnl_stream_create(&stream, engine, dnnl_stream_default_flags) != dnnl_success ||
	    dnnl_memory_desc_init_by_tag(&src_md, 2, src_dims, dnnl_bf16, dnnl_ab) !=
	    dnnl_success ||
	    dnnl_memory_desc_init_by_tag(&wei_md, 2, wei_dims, dnnl_bf16, dnnl_ba) !=
	    dnnl_success ||
	    dnnl_memory_desc_init_by_strides(&dst_md, 2, dst_dims, dnnl_f32, dst_strides) !=
	    dnnl_success ||
	    dnnl_memory_desc_init_by_tag(&bias_md, 2, bias_dims, dnnl_f32, dnnl_ab) !=
	    dnnl_success ||
	    dnnl_matmul_desc_init(&desc, &src_md, &wei_md, bias ? &bias_md : NULL, &dst_md) !=
	    dnnl_success ||
	    dnnl_primitive_desc_create(&pd, &desc, NULL, engine, NULL) != dnnl_success ||
	    dnnl_primitive_create(&prim, pd) != dnnl_success ||
	    dnnl_memory_create(&msrc, &src_md, engine, (void *)xb) != dnnl_success ||
	    dnnl_memory_create(&mwei, &wei_md, engine, (void *)wb) != dnnl_success ||
	    dnnl_memory_create(&mdst, &dst_md, engine, y) != dnnl_success ||
	    (bias && dnnl_memory_create(&mbias, &bias_md, engine, (void *)bias) != dnnl_success))
		goto out;
	{
		dnnl_exec_arg_t args[4] = {
			{DNNL_ARG_SRC, msrc}, {DNNL_ARG_WEIGHTS, mwei}, {DNNL_ARG_DST, mdst},
			{DNNL_ARG_BIAS, mbias},
		};
		if (dnnl_primitive_execute(prim, stream, bias ? 4 : 3, args) != dnnl_success ||
		    dnnl_stream_wait(stream) != dnnl_success)
			goto out;
	}
	rc = 0;
out:
	omp_release();
	if (mbias)
		dnnl_memory_destroy(mbias);
	if (mdst)
		dnnl_memory_destroy(mdst);
	if (mwei)
		dnnl_memory_destroy(mwei);
	if (msrc)
		dnnl_memory_destroy(msrc);
	if (prim)
		dnnl_primitive_destroy(prim);
	if (pd)
		dnnl_primitive_desc_destroy(pd);
	if (stream)
		dnnl_stream_destroy(stream);
	if (engine)
		dnnl_engine_destroy(engine);
	return rc;
}

/* Matrices stored in other kinds than BF16 (q8, q4, F16, F32) go to oneDNN in tiles of
 * rows rounded to BF16: widened a few rows at a time to float32 by the pool's threads (in
 * the L2 cache), rounded into the tile, then multiplied by all n inputs.  A tile's BF16
 * values are what the same weights would be in a BF16 checkpoint.  A tile's products go to
 * a dense block and are copied into y: oneDNN's brgemm (AMX where the CPU has it) takes
 * only a dense destination and leaves a strided one to its older gemm, which has no AMX
 * (on this Zen 4 both run at 380-415 GFLOP/s; on AMX the brgemm is several times faster). */
#define TILE_VALUES (8 << 20) /* 16 MB of BF16 */
#define TILE_OUT (4 << 20)    /* floats of a tile's dense products (16 MB) */
#define WIDEN_ROWS 16

struct widen_job {
	const qvl_kernels *k;
	const qvl_matrix *w;
	int64_t r0, nr;
	float *scratch; /* [threads][WIDEN_ROWS * cols] */
	uint16_t *tile; /* [nr, cols] */
};

static void
widen_task(void *ctx, long task, int thread)
{
	struct widen_job *job = ctx;
	int64_t cols = job->w->cols, a = (int64_t)task * WIDEN_ROWS, count = job->nr - a;
	float *f = job->scratch + (size_t)thread * (size_t)(WIDEN_ROWS * cols);

	if (count > WIDEN_ROWS)
		count = WIDEN_ROWS;
	job->k->widen(job->w, job->r0 + a, count, f);
	qvl_round_bf16(f, 1.0f, count * cols, job->tile + a * cols);
}

struct place_job {
	const float *src; /* [n, width] */
	float *dst;       /* rows of stride ld */
	int64_t width, ld;
};

static void
place_task(void *ctx, long row, int thread)
{
	const struct place_job *job = ctx;

	(void)thread;
	memcpy(job->dst + row * job->ld, job->src + row * job->width,
	    (size_t)job->width * sizeof *job->dst);
}

static int
matmul_tiles(qvl_pool *pool, const qvl_matrix *w, const float *bias, const uint16_t *xb,
    int64_t n, float *y)
{
	int threads = qvl_pool_threads(pool);
	int64_t ntiles = (w->rows * w->cols + TILE_VALUES - 1) / TILE_VALUES;
	int64_t tile_rows = ((w->rows + ntiles - 1) / ntiles + WIDEN_ROWS - 1) / WIDEN_ROWS *
	    WIDEN_ROWS;
	/* inputs per product when the tile's products need a dense block of their own */
	int64_t chunk = ntiles == 1 ? n : TILE_OUT / tile_rows > 0 ? TILE_OUT / tile_rows : 1;
	struct widen_job job = {qvl_kernels_for(qvl_cpu_get()->level), w, 0, 0, NULL, NULL};
	float *block = NULL;
	int rc = -1;

	if (chunk > n)
		chunk = n;
	job.scratch = qvl_alloc((size_t)threads * WIDEN_ROWS * (size_t)w->cols *
	    sizeof *job.scratch);
	job.tile = qvl_alloc((size_t)(tile_rows * w->cols) * sizeof *job.tile);
	if (job.scratch == NULL || job.tile == NULL ||
	    (ntiles > 1 && (block = qvl_alloc((size_t)(chunk * tile_rows) * sizeof *block)) ==
	    NULL))
		goto out;
	for (job.r0 = 0; job.r0 < w->rows; job.r0 += job.nr) {
		job.nr = w->rows - job.r0 < tile_rows ? w->rows - job.r0 : tile_rows;
		qvl_pool_run(pool, (long)((job.nr + WIDEN_ROWS - 1) / WIDEN_ROWS), widen_task,
		    &job);
		/* qvl's own AMX products write y's strided columns themselves */
		qvl_amx_args amx = {
			.w = job.tile, .rows = job.nr, .cols = w->cols,
			.bias = bias ? bias + job.r0 : NULL, .alpha = 1.0f, .xb = xb, .n = n,
			.y = y + job.r0, .ldy = w->rows,
		};
		if (qvl_amx_product(pool, &amx) == 0)
			continue;
		if (block == NULL) {
			if (dnnl_product(xb, n, w->cols, job.tile, job.nr, bias, y, w->rows) < 0)
				goto out;
			continue;
		}
		for (int64_t i = 0; i < n; i += chunk) {
			int64_t m = n - i < chunk ? n - i : chunk;
			struct place_job place = {block, y + i * w->rows + job.r0, job.nr, w->rows};

			if (dnnl_product(xb + i * w->cols, m, w->cols, job.tile, job.nr,
			    bias ? bias + job.r0 : NULL, block, job.nr) < 0)
				goto out;
			qvl_pool_run(pool, (long)m, place_task, &place);
		}
	}
	rc = 0;
out:
	free(block);
	free(job.scratch);
	free(job.tile);
	return rc;
}

int
qvl_dnnl_matmul_xb(qvl_pool *pool, const qvl_matrix *w, const float *bias, const uint16_t *xb,
    int64_t n, float *y)
{
	if (!bf16_usable() || n <= 0 || w->rows <= 0 || w->cols <= 0)
		return -1;
	pthread_once(&dnnl_setup_once, dnnl_setup);
	if (w->dtype == QVL_BF16)
		return dnnl_product(xb, n, w->cols, w->data, w->rows, bias, y, w->rows);
	return matmul_tiles(pool, w, bias, xb, n, y);
}

int
qvl_dnnl_matmul_bf16(qvl_pool *pool, const qvl_matrix *w, const float *bias, const float *x,
    int64_t n, float *y)
{
	uint16_t *xb;
	int rc;

	if (!bf16_usable() || n <= 0 || w->rows <= 0 || w->cols <= 0 ||
	    (xb = qvl_alloc((size_t)(n * w->cols) * sizeof *xb)) == NULL)
		return -1;
	{
		int threads = qvl_pool_threads(pool);
		struct round_job job = {x, xb, n * w->cols, 0};
		job.per = (job.count + threads - 1) / threads;
		job.per = (job.per + 15) / 16 * 16;
		qvl_pool_run(pool, (long)((job.count + job.per - 1) / job.per), round_task, &job);
	}
	rc = qvl_dnnl_matmul_xb(pool, w, bias, xb, n, y);
	free(xb);
	return rc;
}

/* Products on one thread.  OpenMP's thread count is a per-thread setting: held at 1
 * around each call (primitives are compiled for the count they are made under, so they
 * are made under it too), a pool thread runs oneDNN without starting a team of its own. */
#define LOCAL_PRIMS 32

struct local_prim {
	int64_t batch, m, n, k;
	int b_transposed;
	float alpha;
	dnnl_primitive_t prim;
	dnnl_memory_t a, b, c;
};

struct qvl_dnnl_local {
	dnnl_engine_t engine;
	dnnl_stream_t stream;
	int count;
	struct local_prim prims[LOCAL_PRIMS];
};

qvl_dnnl_local *
qvl_dnnl_local_new(void)
{
	qvl_dnnl_local *local;
	unsigned runtime = dnnl_version()->cpu_runtime;

	pthread_once(&dnnl_setup_once, dnnl_setup);
	if (!bf16_usable() || !(runtime == DNNL_RUNTIME_SEQ ||
	    (runtime == DNNL_RUNTIME_OMP && omp_max_threads && omp_set_threads)))
		return NULL;
	if ((local = calloc(1, sizeof *local)) == NULL)
		return NULL;
	if (dnnl_engine_create(&local->engine, dnnl_cpu, 0) != dnnl_success ||
	    dnnl_stream_create(&local->stream, local->engine, dnnl_stream_default_flags) !=
	    dnnl_success) {
		qvl_dnnl_local_free(local);
		return NULL;
	}
	return local;
}

static void
local_prim_free(struct local_prim *p)
{
	if (p->a)
		dnnl_memory_destroy(p->a);
	if (p->b)
		dnnl_memory_destroy(p->b);
	if (p->c)
		dnnl_memory_destroy(p->c);
	if (p->prim)
		dnnl_primitive_destroy(p->prim);
	*p = (struct local_prim){ 0 };
}

void
qvl_dnnl_local_free(qvl_dnnl_local *local)
{
	if (local == NULL)
		return;
	for (int i = 0; i < local->count; i++)
		local_prim_free(&local->prims[i]);
	if (local->stream)
		dnnl_stream_destroy(local->stream);
	if (local->engine)
		dnnl_engine_destroy(local->engine);
	free(local);
}

static int
local_prim_make(qvl_dnnl_local *local, struct local_prim *p)
{
	dnnl_memory_desc_t a_md, b_md, c_md;
	dnnl_matmul_desc_t desc;
	dnnl_primitive_desc_t pd = NULL;
	dnnl_primitive_attr_t attr = NULL;
	dnnl_dims_t a_dims = {p->batch, p->m, p->k}, b_dims = {p->batch, p->k, p->n},
	    c_dims = {p->batch, p->m, p->n};
	int ok;

	ok = dnnl_primitive_attr_create(&attr) == dnnl_success &&
	    dnnl_primitive_attr_set_output_scales(attr, 1, 0, &p->alpha) == dnnl_success &&
	    dnnl_memory_desc_init_by_tag(&a_md, 3, a_dims, dnnl_bf16, dnnl_abc) ==
	    dnnl_success &&
	    dnnl_memory_desc_init_by_tag(&b_md, 3, b_dims, dnnl_bf16,
	    p->b_transposed ? dnnl_acb : dnnl_abc) == dnnl_success &&
	    dnnl_memory_desc_init_by_tag(&c_md, 3, c_dims, dnnl_f32, dnnl_abc) ==
	    dnnl_success &&
	    dnnl_matmul_desc_init(&desc, &a_md, &b_md, NULL, &c_md) == dnnl_success &&
	    dnnl_primitive_desc_create(&pd, &desc, attr, local->engine, NULL) == dnnl_success &&
	    dnnl_primitive_create(&p->prim, pd) == dnnl_success &&
	    dnnl_memory_create(&p->a, &a_md, local->engine, DNNL_MEMORY_NONE) ==
	    dnnl_success &&
	    dnnl_memory_create(&p->b, &b_md, local->engine, DNNL_MEMORY_NONE) ==
	    dnnl_success &&
	    dnnl_memory_create(&p->c, &c_md, local->engine, DNNL_MEMORY_NONE) == dnnl_success;
	if (pd)
		dnnl_primitive_desc_destroy(pd);
	if (attr)
		dnnl_primitive_attr_destroy(attr);
	if (!ok)
		local_prim_free(p);
	return ok ? 0 : -1;
}

int
qvl_dnnl_bmm(qvl_dnnl_local *local, int64_t batch, int64_t m, int64_t n, int64_t k,
    float alpha, const uint16_t *a, const uint16_t *b, int b_transposed, float *c)
{
	struct local_prim *p = NULL, once = {batch, m, n, k, b_transposed != 0, alpha, NULL,
	    NULL, NULL, NULL};
	int threads = omp_max_threads ? omp_max_threads() : 1, rc = -1;

	if (omp_set_threads)
		omp_set_threads(1);
	for (int i = 0; i < local->count && p == NULL; i++) {
		struct local_prim *q = &local->prims[i];

		if (q->batch == batch && q->m == m && q->n == n && q->k == k &&
		    q->b_transposed == once.b_transposed && q->alpha == alpha)
			p = q;
	}
	if (p == NULL) {
		/* A shape beyond the first LOCAL_PRIMS is made for this call alone. */
		p = local->count < LOCAL_PRIMS ? &local->prims[local->count] : &once;
		*p = once;
		if (local_prim_make(local, p) < 0)
			goto out;
		if (p != &once)
			local->count++;
	}
	{
		dnnl_exec_arg_t args[3] = {
			{DNNL_ARG_SRC, p->a}, {DNNL_ARG_WEIGHTS, p->b}, {DNNL_ARG_DST, p->c},
		};
		if (dnnl_memory_set_data_handle(p->a, (void *)a) != dnnl_success ||
		    dnnl_memory_set_data_handle(p->b, (void *)b) != dnnl_success ||
		    dnnl_memory_set_data_handle(p->c, c) != dnnl_success ||
		    dnnl_primitive_execute(p->prim, local->stream, 3, args) != dnnl_success ||
		    dnnl_stream_wait(local->stream) != dnnl_success)
			goto out;
	}
	rc = 0;
out:
	if (p == &once)
		local_prim_free(&once);
	if (omp_set_threads)
		omp_set_threads(threads);
	return rc;
}

const char *
qvl_dnnl_info(char *buf, int len)
{
	const dnnl_version_t *v = dnnl_version();
	const char *isa;

	/* after the cap on AMX, which must come before oneDNN settles its ISA */
	pthread_once(&dnnl_setup_once, dnnl_setup);
	switch (dnnl_get_effective_cpu_isa()) {
	case dnnl_cpu_isa_avx512_core_amx:
		isa = "avx512_core_amx: AMX";
		break;
	case dnnl_cpu_isa_avx512_core_bf16:
		isa = "avx512_core_bf16, no AMX";
		break;
	default:
		isa = "no BF16 instructions";
		break;
	}
	snprintf(buf, (size_t)len, "oneDNN %d.%d.%d (%s; %s)", v->major, v->minor, v->patch,
	    v->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : "threads", isa);
	return buf;
}

#else

int
qvl_dnnl_matmul_bf16(qvl_pool *pool, const qvl_matrix *w, const float *bias, const float *x,
    int64_t n, float *y)
{
	(void)pool, (void)w, (void)bias, (void)x, (void)n, (void)y;
	return -1;
}

int
qvl_dnnl_matmul_xb(qvl_pool *pool, const qvl_matrix *w, const float *bias, const uint16_t *xb,
    int64_t n, float *y)
{
	(void)pool, (void)w, (void)bias, (void)xb, (void)n, (void)y;
	return -1;
}

qvl_dnnl_local *
qvl_dnnl_local_new(void)
{
	return NULL;
}

void
qvl_dnnl_local_free(qvl_dnnl_local *local)
{
	(void)local;
}

int
qvl_dnnl_bmm(qvl_dnnl_local *local, int64_t batch, int64_t m, int64_t n, int64_t k,
    float alpha, const uint16_t *a, const uint16_t *b, int b_transposed, float *c)
{
	(void)local, (void)batch, (void)m, (void)n, (void)k, (void)alpha, (void)a, (void)b;
	(void)b_transposed, (void)c;
	return -1;
}

const char *
qvl_dnnl_info(char *buf, int len)
{
	snprintf(buf, (size_t)len, "none (built without oneDNN)");
	return buf;
}

#endif
