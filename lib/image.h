/* image.h: 8-bit RGB images: decoding PNG and JPEG (format by content), their pixel density,
 * PNG writing, and the limit on decoded size that is checked before anything is allocated.
 *
 * Decoding follows what Pillow's Image.open(...).convert("RGB") gives, after qwen-vl-utils'
 * to_rgb (alpha composited on white), so that resized pixels match the reference bit for bit. */
#ifndef QVL_IMAGE_H
#define QVL_IMAGE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"

typedef struct qvl_image {
	int w, h;
	uint8_t *rgb;		/* w*h*3, owned */
	double dpi_x, dpi_y;	/* 0 when unknown */
} qvl_image;

typedef struct qvl_image_limits {
	int64_t max_pixels;	/* 0 = the default, Pillow's limit */
} qvl_image_limits;

/* Pillow refuses an image over twice its MAX_IMAGE_PIXELS (89478485) as a decompression
 * bomb, so the reference never sees one. */
#define QVL_IMAGE_DEFAULT_MAX_PIXELS ((int64_t)178956970)

/* PNG or JPEG by content; `name` is how errors name the input. */
int qvl_image_decode(const void *buf, size_t len, const char *name, const qvl_image_limits *lim,
    qvl_image *img, qvl_err *err);
/* Reads a whole file ("-" = stdin) and decodes it. */
int qvl_image_load(const char *path, const qvl_image_limits *lim, qvl_image *img, qvl_err *err);
int qvl_image_write_png(FILE *f, const qvl_image *img, qvl_err *err);
/* Allocates a zeroed w x h image (dpi 0). */
int qvl_image_alloc(qvl_image *img, int w, int h, qvl_err *err);
void qvl_image_free(qvl_image *img);

/* Length of the first PNG or JPEG image in buf (for concatenated images on one stream, as
 * ffmpeg's image2pipe writes them).  -1 when buf does not start with a whole image. */
int qvl_image_split(const void *buf, size_t len, size_t *first_len, qvl_err *err);
/* Reads all of f into a malloc'ed buffer. */
int qvl_read_all(FILE *f, const char *name, uint8_t **buf, size_t *len, qvl_err *err);

#endif
