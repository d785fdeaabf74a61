/* resize.h: qwen-vl-utils' smart_resize and Pillow's BICUBIC resampling, bit for bit. */
#ifndef QVL_RESIZE_H
#define QVL_RESIZE_H

#include <stdint.h>

#include "err.h"
#include "image.h"

/* qwen-vl-utils smart_resize: height, width -> resized height, width (multiples of factor).
 * Error for aspect ratio > 200 or a zero side. */
int qvl_smart_resize(int64_t height, int64_t width, int factor, int64_t min_pixels,
    int64_t max_pixels, int64_t *out_h, int64_t *out_w, qvl_err *err);

/* The same with real-valued limits, as qwen-vl-utils computes them for video. */
int qvl_smart_resize_d(int64_t height, int64_t width, int factor, double min_pixels,
    double max_pixels, int64_t *out_h, int64_t *out_w, qvl_err *err);

/* The size an image of w x h has after a DPI change by (sx, sy) (qvl-resize --dpi), before
 * smart_resize: each side rounded half up, at least 1.  The image is still resampled once,
 * from its original pixels to the final size; this only decides that size. */
void qvl_dpi_scaled_size(int64_t w, int64_t h, double sx, double sy, int64_t *out_w,
    int64_t *out_h);

/* Pillow Image.resize((w, h), BICUBIC) on 8-bit RGB, bit for bit. */
int qvl_resize_bicubic(const qvl_image *src, int w, int h, qvl_image *dst, qvl_err *err);

#endif
