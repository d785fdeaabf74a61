/* matmul: qvl_matmul's speed on the Qwen2.5-VL-3B shapes, next to the limits measured in the
 * same run (bench/run passes them in).
 *
 * usage: matmul [-t threads] [-b membw_GBs] [-l layers] [-k bf16|q8|q4] [-q] [-D] [-G]
 * Prints table rows "stage | figure | limit | ratio | llama.cpp" (markdown).
 *   decode: n = 1 over the weights of `layers` decoder layers (BF16, q8, q4), GB/s of weights
 *           read against the streaming-read bandwidth, and the tokens/s that rate gives the 3B
 *           model (3.09 B parameters read per token);
 *   batch:  n = 2, 4, 8 rows, time against n = 1;
 *   gemm:   the vision and prefill shapes, float32 (tiles + sgemm) against sgemm on a float32
 *           copy of the same matrix, and bf16 precision (oneDNN or fallback) in GFLOP/s. */
#include <cblas.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "../lib/cpu.h"
#include "../lib/kernels.h"
#include "../lib/kernels_amx.h"
#include "../lib/kernels_dnnl.h"
#include "../lib/matmul.h"
#include "../lib/pool.h"
#include "../lib/tensor.h"

#define LLM_PARAMS 3.09e9 /* language-model parameters read per token, 3B (BENCHMARKS.md) */

static uint64_t rng = 88172645463325252u;

static uint32_t
rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void *
xalloc(size_t n)
{
	void *p = qvl_alloc(n);

	if (p == NULL) {
		fprintf(stderr, "matmul: out of memory (%zu bytes)\n", n);
		exit(1);
	}
	return p;
}

/* Weights as the programs map them: on 2 MB pages (lib/safetensors.c advises its mappings
 * MADV_HUGEPAGE, and the 3B decodes with its weights in 2 MB folios); malloc's 4 KB pages
 * read about 10 % slower (bench/membw -4).  The mapping's start and length sit just below
 * the returned pointer, which is at least a page into it. */
static void *
weights_alloc(size_t n)
{
	size_t huge = 2 << 20, len = n + huge;
	void *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (map == MAP_FAILED) {
		fprintf(stderr, "matmul: out of memory (%zu bytes)\n", n);
		exit(1);
	}
	uint8_t *p = (uint8_t *)(((uintptr_t)map + huge) & ~(uintptr_t)(huge - 1));
	(void)madvise(p, n, MADV_HUGEPAGE);
	((void **)p)[-2] = map;
	((size_t *)p)[-1] = len;
	return p;
}

static void
weights_free(const void *p)
{
	if (p != NULL)
		munmap(((void *const *)p)[-2], ((const size_t *)p)[-1]);
}

static void
fill_bf16(uint16_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = qvl_f32_to_bf16(((float)(rnd() % 2001) - 1000.0f) * 2e-5f);
}

/* A matrix of the given kind with random contents. */
static qvl_matrix
make(qvl_dtype dtype, int64_t rows, int64_t cols, size_t *bytes)
{
	qvl_matrix m = {.dtype = dtype, .rows = rows, .cols = cols};
	int64_t nb = qvl_qblocks(cols);
	size_t n;

	if (dtype == QVL_BF16) {
		n = (size_t)(rows * cols) * 2;
		m.data = weights_alloc(n);
		fill_bf16((uint16_t *)m.data, (size_t)(rows * cols));
	} else {
		size_t qbytes = dtype == QVL_I8 ? (size_t)(rows * cols) : (size_t)(rows * qvl_q4_row_bytes(cols));
		uint8_t *q = weights_alloc(qbytes);
		uint16_t *s = weights_alloc((size_t)(rows * nb) * 2);
		for (size_t i = 0; i < qbytes; i++)
			q[i] = (uint8_t)rnd();
		for (int64_t i = 0; i < rows * nb; i++)
			s[i] = (uint16_t)(0x1400 + rnd() % 0x400); /* ~1e-3 */
		m.data = q;
		m.scales = s;
		m.block = 32;
		n = qbytes + (size_t)(rows * nb) * 2;
		if (dtype == QVL_U8) {
			uint16_t *mn = weights_alloc((size_t)(rows * nb) * 2);
			for (int64_t i = 0; i < rows * nb; i++)
				mn[i] = (uint16_t)(0x9400 + rnd() % 0x400);
			m.mins = mn;
			n += (size_t)(rows * nb) * 2;
		}
	}
	*bytes = n;
	return m;
}

static void
unmake(qvl_matrix *m)
{
	weights_free(m->data);
	weights_free(m->scales);
	weights_free(m->mins);
}

static void
row(const char *stage, const char *figure, const char *limit, double ratio, const char *llama)
{
	if (ratio > 0)
		printf("| %s | %s | %s | %.2f | %s |\n", stage, figure, limit, ratio, llama);
	else
		printf("| %s | %s | %s | | %s |\n", stage, figure, limit, llama);
	fflush(stdout);
}

/* The matrices of one 3B decoder layer: q, k, v, o, gate, up, down. */
static const int64_t layer_shapes[7][2] = {
	{2048, 2048}, {256, 2048}, {256, 2048}, {2048, 2048}, {11008, 2048}, {11008, 2048},
	{2048, 11008},
};

static void
bench_decode(qvl_pool *pool, int layers, double membw, int quick, const char *only)
{
	static const qvl_dtype kinds[] = {QVL_BF16, QVL_I8, QVL_U8};
	static const char *names[] = {"BF16", "q8", "q4"};
	static const char *llama[] = {"3.53 tok/s (BF16)", "5.20 tok/s (Q8_0)", "9.24 tok/s (Q4_K_M)"};
	static const double bytes_per_param[] = {2.0, 1.0 + 2.0 / 32, 0.5 + 4.0 / 32};
	int nm = layers * 7;
	qvl_matrix *m = calloc((size_t)nm, sizeof *m);
	float *x = xalloc(8 * 11008 * sizeof *x), *y = xalloc(8 * 11008 * sizeof *y);
	char fig[128], lim[128], stage[128];

	for (int i = 0; i < 8 * 11008; i++)
		x[i] = ((float)(rnd() % 2001) - 1000.0f) * 1e-3f;
	for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
		size_t total = 0, b;
		double best = 1e30, t1 = 0;
		if (only != NULL && strcasecmp(only, names[k]) != 0)
			continue;
		for (int i = 0; i < nm; i++) {
			m[i] = make(kinds[k], layer_shapes[i % 7][0], layer_shapes[i % 7][1], &b);
			total += b;
		}
		for (int rep = 0; rep < (quick ? 3 : 6); rep++) {
			double t0 = now();
			for (int i = 0; i < nm; i++)
				qvl_matmul(pool, &m[i], NULL, x, 1, y);
			double t = now() - t0;
			if (t < best)
				best = t;
		}
		double gbs = (double)total / best / 1e9;
		snprintf(stage, sizeof stage, "decode matvec %s, n=1 (%d layers, %.0f MB)", names[k],
		    layers, total / 1e6);
		snprintf(fig, sizeof fig, "%.1f GB/s = %.2f tok/s for 3B", gbs,
		    gbs * 1e9 / (LLM_PARAMS * bytes_per_param[k]));
		snprintf(lim, sizeof lim, "%.1f GB/s read = %.2f tok/s", membw,
		    membw * 1e9 / (LLM_PARAMS * bytes_per_param[k]));
		row(stage, fig, lim, membw > 0 ? gbs / membw : 0, llama[k]);
		t1 = best;
		/* Short batches: the same weights for n rows at once. */
		for (int n = 2; n <= 8 && !quick; n *= 2) {
			best = 1e30;
			for (int rep = 0; rep < 3; rep++) {
				double t0 = now();
				for (int i = 0; i < nm; i++)
					qvl_matmul(pool, &m[i], NULL, x, n, y);
				double t = now() - t0;
				if (t < best)
					best = t;
			}
			snprintf(stage, sizeof stage, "batch matvec %s, n=%d", names[k], n);
			snprintf(fig, sizeof fig, "%.2f x the time of n=1", best / t1);
			snprintf(lim, sizeof lim, "%d x (n separate products)", n);
			row(stage, fig, lim, n / (best / t1), "");
		}
		for (int i = 0; i < nm; i++)
			unmake(&m[i]);
	}
	free(m);
	free(x);
	free(y);
}

struct shape {
	const char *name;
	int64_t n, rows, cols;
	const char *llama;
};

static double
time_best(int reps, qvl_pool *pool, const qvl_matrix *w, const float *x, int64_t n, float *y,
    const float *wf)
{
	double best = 1e30;

	for (int rep = 0; rep < reps; rep++) {
		double t0 = now();
		if (wf)
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)w->rows,
			    (int)w->cols, 1.0f, x, (int)w->cols, wf, (int)w->cols, 0.0f, y,
			    (int)w->rows);
		else
			qvl_matmul(pool, w, NULL, x, n, y);
		double t = now() - t0;
		if (t < best)
			best = t;
	}
	return best;
}

static void
bench_gemm(qvl_pool *pool, int quick)
{
	static const struct shape shapes[] = {
		{"vision qkv", 2520, 3840, 1280, ""},
		{"vision ffn", 2520, 3420, 1280, ""},
		{"merger", 630, 5120, 5120, ""},
		{"prefill ffn_up", 512, 11008, 2048, "34.0 tok/s prefill (BF16)"},
	};
	char fig[128], lim[128], stage[160];

	for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
		const struct shape *sh = &shapes[s];
		size_t b;
		qvl_matrix w = make(QVL_BF16, sh->rows, sh->cols, &b);
		float *wf = xalloc((size_t)(sh->rows * sh->cols) * sizeof *wf);
		float *x = xalloc((size_t)(sh->n * sh->cols) * sizeof *x);
		float *y = xalloc((size_t)(sh->n * sh->rows) * sizeof *y);
		double flop = 2.0 * (double)sh->n * (double)sh->rows * (double)sh->cols;
		int reps = quick ? 2 : 4;

		qvl_to_f32(QVL_BF16, w.data, 0, (size_t)(sh->rows * sh->cols), wf);
		for (int64_t i = 0; i < sh->n * sh->cols; i++)
			x[i] = ((float)(rnd() % 2001) - 1000.0f) * 1e-3f;
		/* The limit: OpenBLAS's own threads on the whole float32 matrix (the pool
		 * set OpenBLAS to one thread for its own tasks). */
		openblas_set_num_threads(qvl_pool_threads(pool));
		double tsg = time_best(reps, pool, &w, x, sh->n, y, wf);
		openblas_set_num_threads(1);
		qvl_pool_set_precision(pool, QVL_PRECISION_F32);
		double tf = time_best(reps, pool, &w, x, sh->n, y, NULL);
		qvl_pool_set_precision(pool, QVL_PRECISION_BF16);
		double tb = time_best(reps, pool, &w, x, sh->n, y, NULL);
		qvl_pool_set_precision(pool, QVL_PRECISION_F32);
		snprintf(lim, sizeof lim, "%.0f GFLOP/s sgemm on float32 W", flop / tsg / 1e9);
		snprintf(stage, sizeof stage, "%s %lldx%lldx%lld, f32", sh->name, (long long)sh->n,
		    (long long)sh->rows, (long long)sh->cols);
		snprintf(fig, sizeof fig, "%.0f GFLOP/s", flop / tf / 1e9);
		row(stage, fig, lim, tsg / tf, sh->llama);
		snprintf(stage, sizeof stage, "%s %lldx%lldx%lld, bf16", sh->name, (long long)sh->n,
		    (long long)sh->rows, (long long)sh->cols);
		snprintf(fig, sizeof fig, "%.0f GFLOP/s", flop / tb / 1e9);
		row(stage, fig, lim, tsg / tb, "");
		unmake(&w);
		free(wf);
		free(x);
		free(y);
	}
}

int
main(int argc, char **argv)
{
	int threads = 0, layers = 4, quick = 0, opt, gemm = 1, decode = 1;
	double membw = 0;
	qvl_err err;
	qvl_pool *pool;
	char buf[128];
	const char *only = NULL;

	while ((opt = getopt(argc, argv, "t:b:l:k:qDGh")) != -1) {
		switch (opt) {
		case 't':
			threads = atoi(optarg);
			break;
		case 'b':
			membw = atof(optarg);
			break;
		case 'l':
			layers = atoi(optarg);
			break;
		case 'k':
			only = optarg;
			break;
		case 'q':
			quick = 1;
			break;
		case 'D':
			gemm = 0;
			break;
		case 'G':
			decode = 0;
			break;
		default:
			fprintf(stderr, "usage: matmul [-t threads] [-b membw_GBs] [-l layers] "
			    "[-k bf16|q8|q4 decode kind] [-q] [-D decode only] [-G gemm only]\n");
			return 2;
		}
	}
	if (layers < 1 || layers > 64) {
		fprintf(stderr, "matmul: -l between 1 and 64\n");
		return 2;
	}
	if ((pool = qvl_pool_new(threads, &err)) == NULL) {
		fprintf(stderr, "matmul: %s\n", err.msg);
		return 1;
	}
	fprintf(stderr, "matmul: %d threads, kernels %s, bf16 products: %s%s\n",
	    qvl_pool_threads(pool), qvl_cpu_level_name(qvl_cpu_get()->level),
	    qvl_amx_usable() ? "qvl's AMX tiles; " : "", qvl_dnnl_info(buf, sizeof buf));
	if (decode)
		bench_decode(pool, layers, membw, quick, only);
	if (gemm)
		bench_gemm(pool, quick);
	qvl_pool_free(pool);
	return 0;
}
