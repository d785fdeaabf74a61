/* patches.h: resized RGB frames to the model's pixel_values, exactly as Hugging Face's
 * Qwen2VLImageProcessor does it (rescale 1/255, normalize, patchify), plus the processor
 * settings of preprocessor_config.json and qwen-vl-utils' video frame sampling. */
#ifndef QVL_PATCHES_H
#define QVL_PATCHES_H

#include <stdint.h>

#include "err.h"
#include "image.h"

typedef struct qvl_preproc {
	int patch_size;			/* 14 */
	int temporal_patch_size;	/* 2 */
	int merge_size;			/* 2 */
	int64_t min_pixels;		/* 4*28*28 */
	int64_t max_pixels;		/* 16384*28*28 */
	float mean[3], std[3];		/* CLIP's */
} qvl_preproc;

/* qwen-vl-utils' video constants */
#define QVL_VIDEO_MIN_PIXELS (128 * 28 * 28)
#define QVL_VIDEO_MAX_PIXELS (768 * 28 * 28)
#define QVL_VIDEO_TOTAL_PIXELS ((int64_t)(128000 * 28 * 28 * 0.9))
#define QVL_VIDEO_FPS 2.0
#define QVL_VIDEO_MIN_FRAMES 4
#define QVL_VIDEO_MAX_FRAMES 768

/* The Qwen2.5-VL checkpoints' settings. */
void qvl_preproc_default(qvl_preproc *p);
/* DIR/preprocessor_config.json over the defaults (keys it lacks keep their default), or
 * where there is none the "image_processor" object of DIR/processor_config.json. */
int qvl_preproc_load(const char *model_dir, qvl_preproc *p, qvl_err *err);
/* Side of one LLM token in pixels: patch_size * merge_size (28). */
int qvl_preproc_factor(const qvl_preproc *p);

/* frames: n >= 1 images of one size, each side a multiple of qvl_preproc_factor.  The last
 * frame is repeated up to a multiple of temporal_patch_size (a still image is n = 1).
 * *out (qvl_alloc, free()) gets F32 [t*gh*gw, 3*tp*ps*ps] in the processor's row order: per
 * temporal group, 2x2 merge blocks in raster order, the 4 patches of a block consecutive;
 * columns (channel, frame, y, x). */
int qvl_patchify(const qvl_preproc *p, const qvl_image *frames, int n, float **out,
    int64_t grid_thw[3], qvl_err *err);

/* qwen-vl-utils smart_nframes for a video of `total` frames at `video_fps`, sampled at
 * `fps` (FPS_MIN_FRAMES 4, FPS_MAX_FRAMES 768, FRAME_FACTOR 2), and the frame indices
 * torch.linspace(0, total-1, n).round() picks (float32, half to even).  idx holds total
 * entries; returns the count n or -1. */
int qvl_video_sample(int64_t total, double video_fps, double fps, int64_t *idx, qvl_err *err);

/* qwen-vl-utils fetch_video's pixel budget for `nframes` sampled frames of a video:
 * min = user_min when > 0, else VIDEO_MIN_PIXELS; max = max(min(VIDEO_MAX_PIXELS,
 * total_pixels / nframes * 2), int(min * 1.05)), lowered to user_max when that is > 0.
 * total_pixels is VIDEO_TOTAL_PIXELS or the $VIDEO_MAX_PIXELS the caller read. */
void qvl_video_budget(int64_t nframes, double total_pixels, double user_min, double user_max,
    double *min_px, double *max_px);

#endif
