/* mrope.c: position ids and rotations of Qwen2.5-VL's multimodal RoPE. */
#include <math.h>
#include <stdint.h>

#include "mrope.h"

/* First index >= from of token id in ids, or n + 1 (the reference's "not found"). */
static int64_t
find_token(const int32_t *ids, int64_t n, int64_t from, int32_t id)
{
	for (int64_t i = from; i < n; i++)
		if (ids[i] == id)
			return i;
	return n + 1;
}

int
qvl_mrope_positions(const qvl_config *cfg, const int32_t *ids, int64_t n,
    const qvl_mrope_vision *vision, int64_t *pos, int64_t *rope_delta, qvl_err *err)
{
	const qvl_text_config *tc = &cfg->text;
	int64_t merge = cfg->vision.spatial_merge_size > 0 ? cfg->vision.spatial_merge_size : 2;
	float tps = (float)(cfg->vision.tokens_per_second > 0 ? cfg->vision.tokens_per_second : 2);
	int n_images_want = vision ? vision->n_images : 0;
	int n_videos_want = vision ? vision->n_videos : 0;
	int n_images = 0, n_videos = 0;

	/* The reference counts vision blocks as vision_start tokens followed by a pad token. */
	for (int64_t i = 0; i + 1 < n; i++) {
		if (ids[i] != tc->vision_start_token_id)
			continue;
		if (ids[i + 1] == tc->image_token_id)
			n_images++;
		else if (ids[i + 1] == tc->video_token_id)
			n_videos++;
	}
	if (n_images != n_images_want || n_videos != n_videos_want)
		return qvl_fail(err, "positions: the prompt has %d image and %d video blocks, "
		    "the input %d images and %d videos", n_images, n_videos, n_images_want,
		    n_videos_want);

	int64_t st = 0, next = 0, maxpos = -1;
	int image_index = 0, video_index = 0;
	for (int k = 0; k < n_images + n_videos; k++) {
		int64_t ed_image = image_index < n_images ?
		    find_token(ids, n, st, tc->image_token_id) : n + 1;
		int64_t ed_video = video_index < n_videos ?
		    find_token(ids, n, st, tc->video_token_id) : n + 1;
		const int64_t *g;
		float spgt = 0;
		int64_t ed;
		if (ed_image < ed_video) {
			g = vision->image_grid + 3 * image_index++;
			ed = ed_image;
		} else {
			g = vision->video_grid + 3 * video_index;
			spgt = vision->second_per_grid_t ?
			    vision->second_per_grid_t[video_index] : 1.0f;
			video_index++;
			ed = ed_video;
		}
		if (ed > n)
			return qvl_fail(err, "positions: vision block %d has no pad tokens", k);
		if (g[0] <= 0 || g[1] <= 0 || g[2] <= 0 || g[1] % merge || g[2] % merge)
			return qvl_fail(err, "positions: bad grid [%lld, %lld, %lld]",
			    (long long)g[0], (long long)g[1], (long long)g[2]);
		int64_t gt = g[0], gh = g[1] / merge, gw = g[2] / merge;
		int64_t len = gt * gh * gw;
		if (ed + len > n)
			return qvl_fail(err, "positions: vision block %d needs %lld pad tokens, the "
			    "prompt ends first", k, (long long)len);
		for (int64_t i = ed; i < ed + len; i++)
			if (ids[i] != ids[ed])
				return qvl_fail(err, "positions: vision block %d has %lld pad tokens, "
				    "its grid needs %lld", k, (long long)(i - ed), (long long)len);
		for (int64_t i = st; i < ed; i++) {
			pos[i] = pos[n + i] = pos[2 * n + i] = next + (i - st);
			if (pos[i] > maxpos)
				maxpos = pos[i];
		}
		int64_t base = next + (ed - st);
		int64_t i = ed;
		for (int64_t t = 0; t < gt; t++) {
			/* float32 product then truncation, as torch computes it */
			float tf = (float)t * spgt;
			tf = tf * tps;
			int64_t tpos = (int64_t)tf;
			for (int64_t h = 0; h < gh; h++)
				for (int64_t w = 0; w < gw; w++, i++) {
					pos[i] = base + tpos;
					pos[n + i] = base + h;
					pos[2 * n + i] = base + w;
					for (int a = 0; a < 3; a++)
						if (pos[a * n + i] > maxpos)
							maxpos = pos[a * n + i];
				}
		}
		st = ed + len;
		next = maxpos + 1;
	}
	for (int64_t i = st; i < n; i++) {
		pos[i] = pos[n + i] = pos[2 * n + i] = next + (i - st);
		if (pos[i] > maxpos)
			maxpos = pos[i];
	}
	*rope_delta = maxpos + 1 - n;
	return 0;
}

void
qvl_mrope_inv_freq(double theta, int head_dim, float *inv_freq)
{
	for (int j = 0; j < head_dim / 2; j++) {
		float e = (float)(2 * j) / (float)head_dim;
		inv_freq[j] = 1.0f / powf((float)theta, e);
	}
}

void
qvl_mrope_cos_sin(const float *inv_freq, const int section[3], int head_dim, int64_t pt,
    int64_t ph, int64_t pw, float *cosv, float *sinv)
{
	float p[3] = { (float)pt, (float)ph, (float)pw };
	int axis = 0, end = section[0];

	for (int j = 0; j < head_dim / 2; j++) {
		while (j >= end && axis < 2)
			end += section[++axis];
		float a = p[axis] * inv_freq[j];
		cosv[j] = cosf(a);
		sinv[j] = sinf(a);
	}
}

void
qvl_mrope_apply(float *x, const float *cosv, const float *sinv, int head_dim)
{
	int half = head_dim / 2;

	for (int j = 0; j < half; j++) {
		float x1 = x[j], x2 = x[j + half];
		x[j] = x1 * cosv[j] - x2 * sinv[j];
		x[j + half] = x2 * cosv[j] + x1 * sinv[j];
	}
}
