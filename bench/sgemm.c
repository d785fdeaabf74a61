/* sgemm: OpenBLAS sgemm's rate, the float32 bound of the vision tower and prefill:
 * row-major A[n, n] · B[n, n]ᵀ, best of several runs, with OpenBLAS's own threads.
 *
 * usage: sgemm [-n size] [-r repeats]
 * prints: sgemm n=2048 GFLOP/s=410.2 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "../lib/tensor.h"

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
	int n = 2048, repeats = 4, opt;
	double best = 1e30;

	while ((opt = getopt(argc, argv, "n:r:h")) != -1) {
		switch (opt) {
		case 'n':
			n = atoi(optarg);
			break;
		case 'r':
			repeats = atoi(optarg);
			break;
		default:
			fprintf(stderr, "usage: sgemm [-n size] [-r repeats]\n");
			return 2;
		}
	}
	if (n < 16 || n > 16384 || repeats < 1) {
		fprintf(stderr, "sgemm: bad arguments\n");
		return 2;
	}
	size_t nn = (size_t)n * (size_t)n;
	float *a = qvl_alloc(nn * sizeof *a), *b = qvl_alloc(nn * sizeof *b),
	    *c = qvl_alloc(nn * sizeof *c);
	if (a == NULL || b == NULL || c == NULL) {
		fprintf(stderr, "sgemm: out of memory\n");
		return 1;
	}
	for (size_t i = 0; i < nn; i++) {
		a[i] = (float)(i % 7) * 0.1f;
		b[i] = (float)(i % 5) * 0.1f;
	}
	for (int r = 0; r < repeats + 1; r++) {
		double t0 = now();
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f, a, n, b, n,
		    0.0f, c, n);
		double t = now() - t0;
		if (r > 0 && t < best) /* the first run warms the threads */
			best = t;
	}
	printf("sgemm n=%d GFLOP/s=%.1f\n", n, 2.0 * n * (double)n * n / best / 1e9);
	free(a);
	free(b);
	free(c);
	return 0;
}
