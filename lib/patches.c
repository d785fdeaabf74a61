/* patches.c: frames to pixel_values, as Qwen2VLImageProcessor (HF transformers 4.50) does. */
#include "patches.h"
#include "memcheck.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "config.h"
#include "tensor.h"

void
qvl_preproc_default(qvl_preproc *p)
{
	static const float mean[3] = { 0.48145466f, 0.4578275f, 0.40821073f };
	static const float std[3] = { 0.26862954f, 0.26130258f, 0.27577711f };

	p->patch_size = 14;
	p->temporal_patch_size = 2;
	p->merge_size = 2;
	p->min_pixels = 4 * 28 * 28;
	p->max_pixels = 16384 * 28 * 28;
	memcpy(p->mean, mean, sizeof mean);
	memcpy(p->std, std, sizeof std);
}

int
qvl_preproc_factor(const qvl_preproc *p)
{
	return p->patch_size * p->merge_size;
}

static int
get_int(json_t *root, const char *key, int64_t lo, int64_t hi, int64_t *v, qvl_err *err)
{
	json_t *j = json_object_get(root, key);

	if (j == NULL || json_is_null(j))
		return 0;
	if (!json_is_integer(j) || json_integer_value(j) < lo || json_integer_value(j) > hi)
		return qvl_fail(err, "%s: want an integer in [%lld, %lld]", key, (long long)lo,
		    (long long)hi);
	*v = json_integer_value(j);
	return 0;
}

static int
get_triple(json_t *root, const char *key, float *v, int positive, qvl_err *err)
{
	json_t *j = json_object_get(root, key);

	if (j == NULL || json_is_null(j))
		return 0;
	if (!json_is_array(j) || json_array_size(j) != 3)
		return qvl_fail(err, "%s: want 3 numbers", key);
	for (int i = 0; i < 3; i++) {
		json_t *e = json_array_get(j, (size_t)i);

		if (!json_is_number(e) || (positive && json_number_value(e) <= 0))
			return qvl_fail(err, "%s: want 3 %snumbers", key, positive ? "positive " : "");
		v[i] = (float)json_number_value(e);
	}
	return 0;
}

static int
preproc_parse(json_t *root, qvl_preproc *p, qvl_err *err)
{
	int64_t ps = p->patch_size, tps = p->temporal_patch_size, ms = p->merge_size;
	json_t *size = json_object_get(root, "size");

	if (!json_is_object(root))
		return qvl_fail(err, "not a JSON object");
	/* newer configs: "size": {"shortest_edge": min_pixels, "longest_edge": max_pixels}.
	 * Files saved by transformers 4.5x hold both forms; where they disagree (a max_pixels
	 * edited by hand, size left as saved) transformers' image processors let min_pixels
	 * and max_pixels override size, so they are read after it. */
	if (json_is_object(size) &&
	    (get_int(size, "shortest_edge", 1, INT64_MAX / 4, &p->min_pixels, err) < 0 ||
	     get_int(size, "longest_edge", 1, INT64_MAX / 4, &p->max_pixels, err) < 0))
		return qvl_err_prefix(err, "size");
	if (get_int(root, "patch_size", 1, 1024, &ps, err) < 0 ||
	    get_int(root, "temporal_patch_size", 1, 16, &tps, err) < 0 ||
	    get_int(root, "merge_size", 1, 16, &ms, err) < 0 ||
	    get_int(root, "min_pixels", 1, INT64_MAX / 4, &p->min_pixels, err) < 0 ||
	    get_int(root, "max_pixels", 1, INT64_MAX / 4, &p->max_pixels, err) < 0 ||
	    get_triple(root, "image_mean", p->mean, 0, err) < 0 ||
	    get_triple(root, "image_std", p->std, 1, err) < 0)
		return -1;
	p->patch_size = (int)ps;
	p->temporal_patch_size = (int)tps;
	p->merge_size = (int)ms;
	if (p->min_pixels > p->max_pixels)
		return qvl_fail(err, "min_pixels %lld > max_pixels %lld", (long long)p->min_pixels,
		    (long long)p->max_pixels);
	return 0;
}

int
qvl_preproc_load(const char *model_dir, qvl_preproc *p, qvl_err *err)
{
	char path[4096];
	char *text;
	size_t len;
	json_t *root, *conf;
	json_error_t jerr;
	struct stat st;
	int rc, nested = 0;

	qvl_preproc_default(p);
	/* transformers 5 saves the image processor's settings in processor_config.json, as its
	 * "image_processor" object, and writes no preprocessor_config.json */
	snprintf(path, sizeof path, "%s/preprocessor_config.json", model_dir);
	if (stat(path, &st) != 0) {
		snprintf(path, sizeof path, "%s/processor_config.json", model_dir);
		if (stat(path, &st) == 0)
			nested = 1;
		else
			snprintf(path, sizeof path, "%s/preprocessor_config.json", model_dir);
	}
	if ((text = qvl_read_file(path, &len, 1 << 20, err)) == NULL)
		return -1;
	root = json_loadb(text, len, 0, &jerr);
	free(text);
	if (root == NULL)
		return qvl_fail(err, "%s: line %d: %s", path, jerr.line, jerr.text);
	conf = nested ? json_object_get(root, "image_processor") : root;
	if (nested && !json_is_object(conf))
		rc = qvl_fail(err, "no image_processor object");
	else
		rc = preproc_parse(conf, p, err);
	json_decref(root);
	if (rc < 0)
		return qvl_err_prefix(err, "%s", path);
	return 0;
}

int
qvl_patchify(const qvl_preproc *p, const qvl_image *frames, int n, float **out,
    int64_t grid_thw[3], qvl_err *err)
{
	int ps = p->patch_size, tp = p->temporal_patch_size, m = p->merge_size;
	int factor = ps * m, w, h, gt, gh, gw;
	size_t row_len, rows;
	float lut[3][256];
	float *pv;

	*out = NULL;
	if (n < 1)
		return qvl_fail(err, "patchify: no frames");
	w = frames[0].w;
	h = frames[0].h;
	if (w <= 0 || h <= 0 || w % factor || h % factor)
		return qvl_fail(err, "patchify: %dx%d is not a multiple of %d", w, h, factor);
	for (int i = 1; i < n; i++)
		if (frames[i].w != w || frames[i].h != h)
			return qvl_fail(err, "patchify: frame %d is %dx%d, frame 0 %dx%d", i,
			    frames[i].w, frames[i].h, w, h);
	gt = (n + tp - 1) / tp;
	gh = h / ps;
	gw = w / ps;
	row_len = (size_t)3 * tp * ps * ps;
	rows = (size_t)gt * gh * gw;
	if (rows > SIZE_MAX / sizeof(float) / row_len)
		return qvl_fail(err, "patchify: too many patches");
	if (qvl_mem_check((uint64_t)(rows * row_len * sizeof(float)), "patchify: pixel_values",
	    err) < 0)
		return -1;
	if ((pv = qvl_alloc(rows * row_len * sizeof(float))) == NULL)
		return qvl_fail(err, "patchify: out of memory");
	/* HF: rescale in float64 then cast to float32, normalize in float32 (a division). */
	for (int c = 0; c < 3; c++)
		for (int v = 0; v < 256; v++) {
			float x = (float)(v * (1.0 / 255.0));

			lut[c][v] = (x - p->mean[c]) / p->std[c];
		}
	for (int t = 0; t < gt; t++)
		for (int bh = 0; bh < gh / m; bh++)
			for (int bw = 0; bw < gw / m; bw++)
				for (int mh = 0; mh < m; mh++)
					for (int mw = 0; mw < m; mw++) {
						size_t r = (((size_t)t * (gh / m) + bh) * (gw / m) + bw) *
						    m * m + (size_t)mh * m + mw;
						float *dst = pv + r * row_len;
						int py = (bh * m + mh) * ps, px = (bw * m + mw) * ps;

						for (int c = 0; c < 3; c++)
							for (int f = 0; f < tp; f++) {
								int fi = t * tp + f;
								const qvl_image *im =
								    &frames[fi < n ? fi : n - 1];

								for (int y = 0; y < ps; y++) {
									const uint8_t *s = im->rgb +
									    ((size_t)(py + y) * w + px) * 3 + c;

									for (int x = 0; x < ps; x++)
										*dst++ = lut[c][s[3 * x]];
								}
							}
					}
	grid_thw[0] = gt;
	grid_thw[1] = gh;
	grid_thw[2] = gw;
	*out = pv;
	return 0;
}

int
qvl_video_sample(int64_t total, double video_fps, double fps, int64_t *idx, qvl_err *err)
{
	double nf, min_frames, max_frames;
	int64_t n;

	if (total <= 0)
		return qvl_fail(err, "video: no frames");
	if (!(video_fps > 0) || !(fps > 0))
		return qvl_fail(err, "video: frame rates must be positive");
	min_frames = ceil(QVL_VIDEO_MIN_FRAMES / 2.0) * 2;
	max_frames = floor((double)(total < QVL_VIDEO_MAX_FRAMES ? total : QVL_VIDEO_MAX_FRAMES) /
	    2) * 2;
	nf = (double)total / video_fps * fps;
	nf = fmin(fmin(fmax(nf, min_frames), max_frames), (double)total);
	n = (int64_t)floor(nf / 2) * 2;
	if (n < 2 || n > total)
		return qvl_fail(err, "video: %lld frames at %g fps sample to %lld frames; the "
		    "reference needs between 2 and %lld", (long long)total, video_fps, (long long)n,
		    (long long)total);
	{
		/* torch.linspace in float32: start + step*i for the first half, end - step*(n-1-i)
		 * for the second; then round half to even. */
		float start = 0, end = (float)(total - 1);
		float step = (end - start) / (float)(n - 1);
		int64_t half = n / 2;

		for (int64_t i = 0; i < n; i++) {
			float v = i < half ? start + step * (float)i : end - step * (float)(n - 1 - i);

			idx[i] = (int64_t)nearbyintf(v);
		}
	}
	return (int)n;
}

void
qvl_video_budget(int64_t nframes, double total_pixels, double user_min, double user_max,
    double *min_px, double *max_px)
{
	double mn = user_min > 0 ? user_min : QVL_VIDEO_MIN_PIXELS, mx;

	mx = fmin(QVL_VIDEO_MAX_PIXELS, total_pixels / (double)nframes * 2);
	mx = fmax(mx, (double)(int64_t)(mn * 1.05));
	if (user_max > 0 && user_max < mx)
		mx = user_max;
	*min_px = mn;
	*max_px = mx;
}
