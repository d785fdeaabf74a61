/* test_mrope.c: M-RoPE position ids (get_rope_index rules), video time at non-integer frame
 * rates, errors, and the rotation tables. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "../lib/config.h"
#include "../lib/mrope.h"
#include "test.h"

#define VS 151652
#define VE 151653
#define IMG 151655
#define VID 151656

static qvl_config
config(void)
{
	qvl_config c;

	memset(&c, 0, sizeof c);
	c.text.vision_start_token_id = VS;
	c.text.vision_end_token_id = VE;
	c.text.image_token_id = IMG;
	c.text.video_token_id = VID;
	c.vision.spatial_merge_size = 2;
	c.vision.tokens_per_second = 2;
	return c;
}

/* A prompt of `pre` text tokens, a video block of grid (t, 2, 2) (t pads), 3 text tokens. */
static void
video_times(float fps, int t, const int *want)
{
	qvl_config c = config();
	int64_t n = 2 + 1 + t + 1 + 3, pos[3 * 64], delta;
	int32_t ids[64];
	int64_t grid[3] = {t, 2, 2};
	float spgt = 2.0f / fps;
	qvl_mrope_vision v = {NULL, 0, grid, &spgt, 1};
	qvl_err err;
	int k = 0;

	ids[k++] = 1;
	ids[k++] = 2;
	ids[k++] = VS;
	for (int i = 0; i < t; i++)
		ids[k++] = VID;
	ids[k++] = VE;
	ids[k++] = 3;
	ids[k++] = 4;
	ids[k++] = 5;
	int rc = qvl_mrope_positions(&c, ids, n, &v, pos, &delta, &err);
	CHECK(rc == 0, "video fps %g: positions computed", fps);
	int ok = 1, mx = 0;
	for (int i = 0; i < t; i++) {
		ok &= pos[3 + i] == 3 + want[i] && pos[n + 3 + i] == 3 && pos[2 * n + 3 + i] == 3;
		if (3 + want[i] > mx)
			mx = 3 + want[i];
	}
	CHECK(ok, "video fps %g: time positions = trunc(f32(t*spgt)*2)", fps);
	CHECK(pos[3 + t] == mx + 1 && pos[n - 1] == mx + 4, "video fps %g: text resumes at max+1",
	    fps);
	CHECK(delta == mx + 5 - n, "video fps %g: rope_delta %lld", fps, (long long)delta);
}

int
main(int argc, char **argv)
{
	qvl_config c = config();
	qvl_err err;
	int64_t pos[3 * 64], delta;

	TEST_INIT(argc, argv);

	/* text only: 0..n-1 on every axis, delta 0 */
	int32_t text[5] = {10, 11, 12, 13, 14};
	CHECK(qvl_mrope_positions(&c, text, 5, NULL, pos, &delta, &err) == 0, "text only");
	CHECK(pos[4] == 4 && pos[5 + 4] == 4 && pos[10 + 4] == 4 && delta == 0, "text positions");

	/* one image of grid (1, 4, 6): merged 2x3 */
	int32_t img[2 + 1 + 6 + 1 + 1];
	int k = 0;
	img[k++] = 7;
	img[k++] = 8;
	img[k++] = VS;
	for (int i = 0; i < 6; i++)
		img[k++] = IMG;
	img[k++] = VE;
	img[k++] = 9;
	int64_t g[3] = {1, 4, 6};
	qvl_mrope_vision v = {g, 1, NULL, NULL, 0};
	CHECK(qvl_mrope_positions(&c, img, k, &v, pos, &delta, &err) == 0, "image: %s",
	    err.msg);
	int64_t n = k;
	int64_t want_h[6] = {3, 3, 3, 4, 4, 4}, want_w[6] = {3, 4, 5, 3, 4, 5};
	int ok = 1;
	for (int i = 0; i < 6; i++)
		ok &= pos[3 + i] == 3 && pos[n + 3 + i] == want_h[i] && pos[2 * n + 3 + i] ==
		    want_w[i];
	CHECK(ok, "image block takes merged-grid coordinates");
	CHECK(pos[9] == 6 && pos[10] == 7 && delta == 8 - n, "text after image resumes at max+1");

	/* errors: grid count and pad count */
	qvl_mrope_vision none = {NULL, 0, NULL, NULL, 0};
	CHECK(qvl_mrope_positions(&c, img, k, &none, pos, &delta, &err) < 0 &&
	    strstr(err.msg, "1 image") != NULL, "missing grid is an error: %s", err.msg);
	int64_t g2[3] = {1, 4, 8};
	qvl_mrope_vision wrong = {g2, 1, NULL, NULL, 0};
	CHECK(qvl_mrope_positions(&c, img, k, &wrong, pos, &delta, &err) < 0,
	    "pad run shorter than grid is an error: %s", err.msg);

	/* video time positions: float32 product then truncation, as the reference */
	int fps3[12] = {0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14};
	int fps15[12] = {0, 2, 5, 8, 10, 13, 16, 18, 21, 24, 26, 29};
	int fps24[12] = {0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1};
	int fps2997[12] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1};
	video_times(3.0f, 12, fps3);
	video_times(1.5f, 12, fps15);
	video_times(24.0f, 12, fps24);
	video_times(29.97f, 12, fps2997);

	/* rotation: positions 0 leave vectors unchanged; sections pick the axis */
	float inv[4], cs[4], sn[4];
	qvl_mrope_inv_freq(1e6, 8, inv);
	CHECK(inv[0] == 1.0f && fabsf(inv[1] / powf(1e6f, -0.25f) - 1) < 1e-6f, "inv_freq");
	int sec[3] = {1, 2, 1};
	qvl_mrope_cos_sin(inv, sec, 8, 5, 0, 0, cs, sn);
	CHECK(fabsf(cs[0] - cosf(5.0f)) < 1e-7f && cs[1] == 1.0f && cs[3] == 1.0f,
	    "section 0 uses time, the others height and width");
	qvl_mrope_cos_sin(inv, sec, 8, 0, 0, 7, cs, sn);
	CHECK(cs[0] == 1.0f && cs[2] == 1.0f && fabsf(sn[3] - sinf(7.0f * inv[3])) < 1e-7f,
	    "last section uses width");
	float x[8] = {1, 0, 0, 0, 0, 0, 0, 0};
	qvl_mrope_cos_sin(inv, sec, 8, 1, 0, 0, cs, sn);
	qvl_mrope_apply(x, cs, sn, 8);
	CHECK(fabsf(x[0] - cosf(1)) < 1e-7f && fabsf(x[4] - sinf(1)) < 1e-7f,
	    "rotate-half pairs channel j with j + head_dim/2");
	return TEST_DONE();
}
