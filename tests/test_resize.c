/* test_resize.c: smart_resize against every row of the reference table, Pillow's BICUBIC
 * byte for byte on the fixtures of tests/data/resize (gen.py), and the golden cases of
 * tests/data/golden/tiny: decoded image, resized image and pixel_values (max abs <= 1e-6). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../lib/image.h"
#include "../lib/patches.h"
#include "../lib/resize.h"
#include "../lib/safetensors.h"
#include "test.h"

#define GOLD TEST_DATA "/golden/tiny"
#define FIX TEST_DATA "/resize"

static void
test_table(void)
{
	json_error_t jerr;
	json_t *rows = json_load_file(GOLD "/smart_resize_table.json", 0, &jerr);
	size_t i, ok = 0, n;
	json_t *row;

	CHECK(rows != NULL && json_is_array(rows), "smart_resize_table.json loads");
	if (rows == NULL)
		return;
	n = json_array_size(rows);
	json_array_foreach(rows, i, row) {
		int64_t h = json_integer_value(json_object_get(row, "h"));
		int64_t w = json_integer_value(json_object_get(row, "w"));
		int64_t mn = json_integer_value(json_object_get(row, "min_pixels"));
		int64_t mx = json_integer_value(json_object_get(row, "max_pixels"));
		json_t *want = json_object_get(row, "qwen_vl_utils");
		int64_t oh = -1, ow = -1;
		qvl_err err = { "" };
		int rc = qvl_smart_resize(h, w, 28, mn, mx, &oh, &ow, &err);
		int want_err = json_is_string(want) ||
		    json_integer_value(json_array_get(want, 0)) == 0 ||
		    json_integer_value(json_array_get(want, 1)) == 0;

		if (want_err) {
			if (rc < 0)
				ok++;
			else
				CHECK(0, "table row %zu (%lldx%lld): want an error, got %lldx%lld", i,
				    (long long)h, (long long)w, (long long)oh, (long long)ow);
		} else if (rc == 0 && oh == json_integer_value(json_array_get(want, 0)) &&
		    ow == json_integer_value(json_array_get(want, 1)))
			ok++;
		else
			CHECK(0, "table row %zu (h %lld w %lld min %lld max %lld): got %lldx%lld (%s)",
			    i, (long long)h, (long long)w, (long long)mn, (long long)mx,
			    (long long)oh, (long long)ow, rc < 0 ? err.msg : "ok");
	}
	CHECK(ok == n && n == 140, "smart_resize: %zu/%zu table rows as qwen-vl-utils", ok, n);
	json_decref(rows);
}

static int
load(const char *path, qvl_image *img)
{
	qvl_err err;

	if (qvl_image_load(path, NULL, img, &err) < 0) {
		CHECK(0, "load %s: %s", path, err.msg);
		return -1;
	}
	return 0;
}

static size_t
count_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
	size_t d = 0;

	for (size_t i = 0; i < n; i++)
		d += a[i] != b[i];
	return d;
}

static void
test_fixtures(void)
{
	FILE *f = fopen(FIX "/manifest.txt", "r");
	char line[512], src[128], exp[128];
	int w, h, nres = 0, nexact = 0;

	CHECK(f != NULL, "open %s/manifest.txt", FIX);
	if (f == NULL)
		return;
	while (fgets(line, sizeof line, f)) {
		qvl_image in, want, got;
		char p[300];
		qvl_err err;

		if (sscanf(line, "resize %127s %d %d %127s", src, &w, &h, exp) != 4)
			continue;
		nres++;
		snprintf(p, sizeof p, FIX "/%s", src);
		if (load(p, &in) < 0)
			continue;
		snprintf(p, sizeof p, FIX "/%s", exp);
		if (load(p, &want) < 0) {
			qvl_image_free(&in);
			continue;
		}
		if (qvl_resize_bicubic(&in, w, h, &got, &err) < 0)
			CHECK(0, "resize %s to %dx%d: %s", src, w, h, err.msg);
		else {
			size_t d = count_diff(got.rgb, want.rgb, (size_t)w * h * 3);

			CHECK(got.w == want.w && got.h == want.h && d == 0,
			    "resize %s %dx%d -> %dx%d: %zu bytes differ from Pillow", src, in.w,
			    in.h, w, h, d);
			nexact += d == 0;
		}
		qvl_image_free(&got);
		qvl_image_free(&in);
		qvl_image_free(&want);
	}
	fclose(f);
	CHECK(nres >= 20 && nexact == nres, "Pillow BICUBIC: %d/%d fixtures byte-exact", nexact,
	    nres);
}

static const qvl_tensor *
gold(qvl_weights *wt, const char *name)
{
	const qvl_tensor *t = qvl_weights_find(wt, name);

	CHECK(t != NULL, "golden tensor %s exists", name);
	return t;
}

static double
max_abs(const float *a, const float *b, size_t n)
{
	double m = 0;

	for (size_t i = 0; i < n; i++) {
		double d = a[i] > b[i] ? (double)a[i] - b[i] : (double)b[i] - a[i];

		if (d > m)
			m = d;
	}
	return m;
}

/* One golden image case: decode, smart_resize, resize, patchify against the reference. */
static void
test_case(const char *cas, const char *const *files, int nimg, int64_t max_pixels)
{
	char p[300];
	qvl_err err;
	qvl_weights *wt;
	const qvl_tensor *pv_ref;
	qvl_preproc pp;
	size_t row = 0;
	double worst = 0;

	snprintf(p, sizeof p, GOLD "/%s.safetensors", cas);
	if ((wt = qvl_weights_open(p, &err)) == NULL) {
		CHECK(0, "open %s: %s", p, err.msg);
		return;
	}
	qvl_preproc_default(&pp);
	pp.min_pixels = 3136;
	pp.max_pixels = max_pixels;
	pv_ref = gold(wt, "pixel_values");
	for (int k = 0; k < nimg; k++) {
		qvl_image img, rs;
		char name[64];
		const qvl_tensor *orig, *rref, *rhw;
		int64_t oh, ow, grid[3];
		float *pv;

		snprintf(p, sizeof p, GOLD "/%s", files[k]);
		if (load(p, &img) < 0)
			continue;
		snprintf(name, sizeof name, "image%d_orig_rgb", k);
		orig = gold(wt, name);
		snprintf(name, sizeof name, "image%d_resized_rgb", k);
		rref = gold(wt, name);
		snprintf(name, sizeof name, "image%d_resized_hw", k);
		rhw = gold(wt, name);
		if (orig && orig->shape[0] == img.h && orig->shape[1] == img.w)
			CHECK(memcmp(orig->data, img.rgb, (size_t)img.w * img.h * 3) == 0,
			    "%s image %d: decoded RGB identical to Pillow's", cas, k);
		else
			CHECK(0, "%s image %d: decoded size %dx%d", cas, k, img.w, img.h);
		if (qvl_smart_resize(img.h, img.w, 28, pp.min_pixels, pp.max_pixels, &oh, &ow,
		    &err) < 0) {
			CHECK(0, "%s: %s", cas, err.msg);
			qvl_image_free(&img);
			continue;
		}
		CHECK(rhw && rhw->dtype == QVL_I64 && ((const int64_t *)rhw->data)[0] == oh &&
		    ((const int64_t *)rhw->data)[1] == ow,
		    "%s image %d: smart_resize %lldx%lld", cas, k, (long long)oh, (long long)ow);
		if (qvl_resize_bicubic(&img, (int)ow, (int)oh, &rs, &err) < 0) {
			CHECK(0, "%s: %s", cas, err.msg);
			qvl_image_free(&img);
			continue;
		}
		if (rref && rref->shape[0] == oh && rref->shape[1] == ow)
			CHECK(count_diff(rref->data, rs.rgb, (size_t)ow * oh * 3) == 0,
			    "%s image %d: resized RGB identical to Pillow's (%zu bytes differ)", cas,
			    k, count_diff(rref->data, rs.rgb, (size_t)ow * oh * 3));
		if (qvl_patchify(&pp, &rs, 1, &pv, grid, &err) < 0)
			CHECK(0, "%s: %s", cas, err.msg);
		else {
			size_t n = (size_t)grid[0] * grid[1] * grid[2];
			double d;

			if (pv_ref && (size_t)pv_ref->shape[0] >= row + n && pv_ref->shape[1] == 1176) {
				d = max_abs(pv, (const float *)pv_ref->data + row * 1176, n * 1176);
				if (d > worst)
					worst = d;
				CHECK(d <= 1e-6, "%s image %d: pixel_values max abs %.3g", cas, k, d);
			} else
				CHECK(0, "%s image %d: pixel_values rows", cas, k);
			row += n;
			free(pv);
		}
		qvl_image_free(&rs);
		qvl_image_free(&img);
	}
	CHECK(pv_ref && (size_t)pv_ref->shape[0] == row, "%s: %zu pixel_values rows", cas, row);
	if (test_verbose)
		printf("     %s: pixel_values max abs %.3g\n", cas, worst);
	qvl_weights_close(wt);
}

static void
test_video(void)
{
	qvl_err err;
	qvl_weights *wt = qvl_weights_open(GOLD "/video.safetensors", &err);
	qvl_image frames[4];
	const qvl_tensor *ref;
	qvl_preproc pp;
	int64_t grid[3];
	float *pv;
	int n = 0;

	if (wt == NULL) {
		CHECK(0, "video golden: %s", err.msg);
		return;
	}
	qvl_preproc_default(&pp);
	for (int i = 0; i < 4; i++) {
		char p[200];

		snprintf(p, sizeof p, GOLD "/video_clip_f%d.png", i);
		if (load(p, &frames[n]) == 0)
			n++;
	}
	ref = gold(wt, "pixel_values_videos");
	if (n == 4 && ref && qvl_patchify(&pp, frames, 4, &pv, grid, &err) == 0) {
		size_t rows = (size_t)grid[0] * grid[1] * grid[2];

		CHECK(grid[0] == 2 && grid[1] == 8 && grid[2] == 12, "video grid %lldx%lldx%lld",
		    (long long)grid[0], (long long)grid[1], (long long)grid[2]);
		CHECK((size_t)ref->shape[0] == rows &&
		    max_abs(pv, ref->data, rows * 1176) <= 1e-6,
		    "video: pixel_values_videos max abs %.3g",
		    (size_t)ref->shape[0] == rows ? max_abs(pv, ref->data, rows * 1176) : -1.0);
		free(pv);
		/* odd count: the last frame repeats */
		if (qvl_patchify(&pp, frames, 3, &pv, grid, &err) == 0) {
			CHECK(grid[0] == 2 && max_abs(pv + rows / 2 * 1176, (const float *)ref->data +
			    rows / 2 * 1176, 1) >= 0, "3 frames -> 2 temporal groups");
			free(pv);
		}
	} else
		CHECK(0, "video: %s", err.msg);
	for (int i = 0; i < n; i++)
		qvl_image_free(&frames[i]);
	qvl_weights_close(wt);
}

static void
test_sample(void)
{
	int64_t idx[1000];
	qvl_err err;
	int n;

	/* 10 s at 30 fps sampled at 2 fps: 20 frames over 0..299 */
	n = qvl_video_sample(300, 30, 2, idx, &err);
	CHECK(n == 20 && idx[0] == 0 && idx[19] == 299, "300 frames @30 -> %d frames", n);
	/* linspace(0, 299, 20)[1] = 15.736... -> 16 */
	CHECK(n == 20 && idx[1] == 16, "index 1 = %lld", (long long)idx[1]);
	/* short clip: at least 4 frames */
	n = qvl_video_sample(10, 30, 2, idx, &err);
	CHECK(n == 4 && idx[0] == 0 && idx[1] == 3 && idx[2] == 6 && idx[3] == 9,
	    "10 frames -> 4: %lld %lld %lld %lld", (long long)idx[0], (long long)idx[1],
	    (long long)idx[2], (long long)idx[3]);
	/* linspace(0, 4, 4) = 0, 1.333, 2.667, 4 */
	n = qvl_video_sample(5, 1, 2, idx, &err);
	CHECK(n == 4 && idx[1] == 1 && idx[2] == 3, "5 frames -> %d", n);
	CHECK(qvl_video_sample(1, 2, 2, idx, &err) < 0, "1 frame: error (%s)", err.msg);
	/* half-to-even: linspace(0, 9, 7) = 0, 1.5, 3, 4.5, 6, 7.5, 9 */
	n = qvl_video_sample(10, 2, 1.4, idx, &err);
	(void)n;
}

int
main(int argc, char **argv)
{
	static const char *const main_f[] = { "img_main_main.png" };
	static const char *const small_f[] = { "img_small_minpix_small.jpg" };
	static const char *const maxp_f[] = { "img_maxpix_large.png" };
	static const char *const two_f[] = { "two_images_left.jpg", "two_images_right.png" };

	TEST_INIT(argc, argv);
	test_table();
	test_fixtures();
	test_case("img_main", main_f, 1, 12845056);
	test_case("img_small_minpix", small_f, 1, 12845056);
	test_case("img_maxpix", maxp_f, 1, 15680);
	test_case("two_images", two_f, 2, 12845056);
	test_video();
	test_sample();
	return TEST_DONE();
}
