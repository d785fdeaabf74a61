/* bench/resize.c: where qvl-resize's time goes for one image: decode, Pillow-exact BICUBIC,
 * patchify.  usage: build/bench/resize IMAGE W H [REPEAT]  (prints ms, best of REPEAT) */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../lib/image.h"
#include "../lib/patches.h"
#include "../lib/resize.h"

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int
main(int argc, char **argv)
{
	double best[3] = { 1e30, 1e30, 1e30 };
	int w, h, rep;
	qvl_preproc pp;
	qvl_err err;

	if (argc < 4) {
		fprintf(stderr, "usage: resize IMAGE W H [REPEAT]\n");
		return 2;
	}
	w = atoi(argv[2]);
	h = atoi(argv[3]);
	rep = argc > 4 ? atoi(argv[4]) : 3;
	qvl_preproc_default(&pp);
	for (int r = 0; r < rep; r++) {
		qvl_image img, rs;
		int64_t grid[3];
		float *pv;
		double t0 = now_ms(), t1, t2, t3;

		if (qvl_image_load(argv[1], NULL, &img, &err) < 0) {
			fprintf(stderr, "%s\n", err.msg);
			return 1;
		}
		t1 = now_ms();
		if (qvl_resize_bicubic(&img, w, h, &rs, &err) < 0) {
			fprintf(stderr, "%s\n", err.msg);
			return 1;
		}
		t2 = now_ms();
		if (qvl_patchify(&pp, &rs, 1, &pv, grid, &err) < 0) {
			fprintf(stderr, "%s\n", err.msg);
			return 1;
		}
		t3 = now_ms();
		best[0] = t1 - t0 < best[0] ? t1 - t0 : best[0];
		best[1] = t2 - t1 < best[1] ? t2 - t1 : best[1];
		best[2] = t3 - t2 < best[2] ? t3 - t2 : best[2];
		free(pv);
		qvl_image_free(&rs);
		qvl_image_free(&img);
	}
	printf("decode %.1f ms  resize %.1f ms  patchify %.1f ms\n", best[0], best[1], best[2]);
	return 0;
}
