/* vit: helpers of bench/vit.sh.
 *   vit pixels T H W     writes a pixel_values record of grid (T, H, W) (synthetic values)
 *   vit flops MODEL T H W  prints the FLOPs of the tower and of the merger for that grid
 *   vit sgemm N THREADS  prints OpenBLAS sgemm GFLOP/s, C = A·Bᵀ of N x N, best of 4 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#include "../lib/config.h"
#include "../lib/merger.h"
#include "../lib/stream.h"
#include "../lib/vit.h"

void openblas_set_num_threads(int);

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int
sgemm_peak(int n, int threads)
{
	float *a = qvl_alloc(sizeof *a * (size_t)n * (size_t)n);
	float *b = qvl_alloc(sizeof *b * (size_t)n * (size_t)n);
	float *c = qvl_alloc(sizeof *c * (size_t)n * (size_t)n);
	double best = 1e30;

	if (a == NULL || b == NULL || c == NULL)
		return 1;
	openblas_set_num_threads(threads);
	for (size_t i = 0; i < (size_t)n * (size_t)n; i++) {
		a[i] = (float)(i % 7) * 0.25f - 0.5f;
		b[i] = (float)(i % 5) * 0.125f - 0.25f;
	}
	for (int rep = 0; rep < 4; rep++) {
		double t0 = now(), t;

		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f, a, n, b, n,
		    0.0f, c, n);
		if ((t = now() - t0) < best)
			best = t;
	}
	printf("%.1f\n", 2.0 * n * n * (double)n / best / 1e9);
	free(a);
	free(b);
	free(c);
	return 0;
}

int
main(int argc, char **argv)
{
	int64_t g[3];
	qvl_err err;

	if (argc == 5 && strcmp(argv[1], "pixels") == 0) {
		int64_t shape[2];
		qvl_record rec;
		float *p;

		for (int i = 0; i < 3; i++)
			g[i] = atoll(argv[2 + i]);
		shape[0] = g[0] * g[1] * g[2];
		shape[1] = 1176;
		if (qvl_record_new(&rec, "pixel_values", QVL_F32, 2, shape, NULL, &err) < 0)
			goto fail;
		json_object_set_new(rec.meta, "grid_thw", json_pack("[I,I,I]", (json_int_t)g[0],
		    (json_int_t)g[1], (json_int_t)g[2]));
		json_object_set_new(rec.meta, "source", json_string("bench/vit synthetic"));
		p = rec.t.data;
		for (int64_t i = 0; i < shape[0] * shape[1]; i++)
			p[i] = sinf((float)i * 0.001f) * 1.5f;
		if (qvl_write_record(stdout, &rec, &err) < 0)
			goto fail;
		qvl_record_free(&rec);
		return 0;
	}
	if (argc == 6 && strcmp(argv[1], "flops") == 0) {
		qvl_config cfg;

		for (int i = 0; i < 3; i++)
			g[i] = atoll(argv[3 + i]);
		if (qvl_config_load(argv[2], &cfg, &err) < 0)
			goto fail;
		printf("%.0f %.0f\n", qvl_vit_flops(&cfg.vision, g),
		    qvl_merger_flops(&cfg.vision, g[0] * g[1] * g[2]));
		return 0;
	}
	if (argc == 4 && strcmp(argv[1], "sgemm") == 0 && atoi(argv[2]) >= 16 &&
	    atoi(argv[2]) <= 16384 && atoi(argv[3]) >= 1)
		return sgemm_peak(atoi(argv[2]), atoi(argv[3]));
	fprintf(stderr, "usage: vit pixels T H W | vit flops MODEL T H W | vit sgemm N THREADS\n");
	return 2;
fail:
	fprintf(stderr, "vit: %s\n", err.msg);
	return 1;
}
