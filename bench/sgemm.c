/* sgemm: the machine's OpenBLAS sgemm rate, the yardstick of bench/vit.sh.
 * usage: sgemm [N [THREADS]]  (default 2048, 2): best of 4 row-major C = A·Bᵀ, GFLOP/s. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <cblas.h>

void openblas_set_num_threads(int);

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int
main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 2048, threads = argc > 2 ? atoi(argv[2]) : 2;
	float *a, *b, *c;
	double best = 1e30;

	if (n < 16 || n > 16384 || threads < 1) {
		fprintf(stderr, "usage: sgemm [N [THREADS]]\n");
		return 2;
	}
	openblas_set_num_threads(threads);
	a = malloc(sizeof *a * (size_t)n * n);
	b = malloc(sizeof *b * (size_t)n * n);
	c = malloc(sizeof *c * (size_t)n * n);
	if (a == NULL || b == NULL || c == NULL)
		return 1;
	for (size_t i = 0; i < (size_t)n * n; i++) {
		a[i] = (float)(i % 7) * 0.25f - 0.5f;
		b[i] = (float)(i % 5) * 0.125f - 0.25f;
	}
	for (int rep = 0; rep < 4; rep++) {
		double t0 = now();

		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f, a, n, b, n,
		    0.0f, c, n);
		if (now() - t0 < best)
			best = now() - t0;
	}
	printf("%.1f\n", 2.0 * n * n * (double)n / best / 1e9);
	free(a);
	free(b);
	free(c);
	return 0;
}
