/* boxes.h: grounding in a model's answer -> boxes in pixels of the original image.
 *
 * Qwen models write regions in five notations, which can be mixed in one answer:
 *   - Qwen2.5-VL JSON: [{"bbox_2d": [x1, y1, x2, y2], "label": "..."}, {"point_2d": [x, y]}]
 *     in absolute pixels of the resized image the model saw (often in a ```json fence, and
 *     possibly cut short by the token limit: every complete object is recovered);
 *   - QwenVL HTML (document parsing): <p data-bbox="x1 y1 x2 y2">text</p>, absolute pixels;
 *   - Qwen2-VL tokens: <|object_ref_start|>label<|object_ref_end|><|box_start|>(x1,y1),(x2,y2)
 *     <|box_end|> and <|quad_start|>(x,y)x4<|quad_end|>, normalized to 0..1000;
 *   - Qwen-VL tags: <ref>label</ref><box>(x1,y1),(x2,y2)</box> (and <quad>), 0..1000;
 *   - the cookbook's XML points: <points x1="x" y1="y" alt="..">phrase</points>, absolute.
 * A box of the tokens or tags with two numbers is a point (Qwen2-VL's clicks).
 * qvl_boxes_parse finds them all, in the order they appear; qvl_boxes_assign decides which
 * image of a several-image answer each box is about; qvl_box_map maps one box to the
 * original image (or PDF points) with that image's geometry. */
#ifndef QVL_BOXES_H
#define QVL_BOXES_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "err.h"

typedef enum qvl_box_kind {
	QVL_BOX_BBOX,
	QVL_BOX_POINT,
	QVL_BOX_QUAD
} qvl_box_kind;

/* How a box's numbers are meant. */
typedef enum qvl_coords {
	QVL_COORDS_ABS,		/* pixels of the resized image the model saw */
	QVL_COORDS_NORM1000	/* 0..1000 across the image, whatever its size */
} qvl_coords;

typedef enum qvl_box_format {
	QVL_FMT_JSON,
	QVL_FMT_HTML,
	QVL_FMT_TOKENS,		/* Qwen2-VL special tokens */
	QVL_FMT_TAGS,		/* Qwen-VL <ref>/<box> */
	QVL_FMT_XML		/* the cookbook's <points x1 y1 alt>phrase</points> */
} qvl_box_format;

/* qvl_box_map's verdicts. */
#define QVL_BOX_CLAMPED  0x1	/* some corner lay outside the image */
#define QVL_BOX_EMPTY    0x2	/* no area after clamping (points excepted) */
#define QVL_BOX_UNMAPPED 0x4	/* no image size known: bbox = bbox_model, corners ordered */
#define QVL_BOX_NODPI    0x8	/* points asked for but the image's density is unknown */

typedef struct qvl_box {
	qvl_box_kind kind;
	qvl_box_format format;
	qvl_coords coords;	/* the format's convention; the caller may override it */
	char *label;		/* UTF-8, owned, never NULL ("" when the model gave none) */
	int nmodel;		/* 2 (point), 4 (bbox) or 8 (quad) */
	double model[8];	/* the numbers as the model wrote them */
	size_t offset;		/* byte offset in the answer where the box was written */
	int image;		/* 0-based image it belongs to (qvl_boxes_assign) */
	/* Filled by qvl_box_map: */
	double px[4];		/* x1 y1 x2 y2 in original pixels, clamped and ordered */
	double quad_px[8];	/* QUAD: the four corners in original pixels, clamped */
	double out[4];		/* px, or PDF points with units_pt */
	double quad_out[8];
	int flags;
} qvl_box;

typedef struct qvl_box_list {
	qvl_box *v;
	size_t n, cap;
	size_t malformed;	/* markers whose numbers could not be read (counted, not kept) */
} qvl_box_list;

/* Finds every box in text[0..len) and appends them to *list in the order they appear.
 * Fails only when memory runs out. */
int qvl_boxes_parse(const char *text, size_t len, qvl_box_list *list, qvl_err *err);
void qvl_boxes_free(qvl_box_list *list);

/* Decides the image of every box of one answer about nimages images:
 *   force >= 0: every box goes to image `force`;
 *   one image: to image 0;
 *   several: a box goes to image N-1 when the last "Picture N" / "Image N" / "图N" / "图片N"
 *   written before it names one of the images (the chat template calls images "Picture N");
 *   failing any such mention, when the answer has as many ``` fenced blocks as images, the
 *   boxes of the k-th block go to image k; failing that, to image 0.
 * Returns how the boxes were assigned: 0 by force or single image, 1 by mentions, 2 by
 * fenced blocks, 3 by the fallback to image 0. */
int qvl_boxes_assign(qvl_box_list *list, const char *text, size_t len, int nimages, int force);

/* What is known about one image; 0 means unknown. */
typedef struct qvl_box_geom {
	double orig_w, orig_h;		/* the original image, in pixels */
	double model_w, model_h;	/* the resized image the model saw */
	double dpi_x, dpi_y;		/* density of the original pixels */
	double scale_x, scale_y;	/* qvl-resize's DPI scale before smart_resize */
} qvl_box_geom;

/* Reads orig_size, resized_size (or scale), dpi, dpi_scale from an image record's meta;
 * missing keys stay 0.  Without dpi but with dpi_scale (qvl-resize --dpi FROM:TO on a file
 * that records no density), the density is taken as 72 / dpi_scale: TO is assumed to be 72.
 * Fails on keys that are present but malformed. */
int qvl_boxes_geom_from_meta(const json_t *meta, qvl_box_geom *g, qvl_err *err);

/* The size of the image the model saw for an original of orig_w x orig_h, as qvl-resize
 * computes it: scaled by scale_x, scale_y first (its --dpi FROM:TO gives TO / FROM on both
 * axes; 1 = no scaling), rounded to the nearest pixel and at least 1, then qwen-vl-utils'
 * smart_resize (factor 28) with these pixel limits. */
int qvl_boxes_model_size(int64_t orig_w, int64_t orig_h, double scale_x, double scale_y,
    int64_t min_pixels, int64_t max_pixels, int64_t *model_w, int64_t *model_h, qvl_err *err);

/* Maps b->model with coordinate convention `coords` to the original image: fills px, out,
 * quad_px, quad_out and flags.  With units_pt, out is in PDF points (72 per inch) when the
 * density is known (else QVL_BOX_NODPI and pixels).  Absolute coordinates without a known
 * resized size are taken as original pixels. */
void qvl_box_map(qvl_box *b, qvl_coords coords, const qvl_box_geom *g, int units_pt);

const char *qvl_box_kind_name(qvl_box_kind kind);
const char *qvl_box_format_name(qvl_box_format fmt);

/* Integer pixel rectangle [*x0, *x1) x [*y0, *y1) covering px (floor / ceil), clamped to a
 * w x h image.  Returns 0 when it is empty. */
int qvl_box_pixel_rect(const double px[4], int w, int h, int *x0, int *y0, int *x1, int *y1);

/* A number with at most `decimals` decimals, trailing zeros removed ("12", "12.5"); with
 * decimals < 0 (or past 1e15), the shortest form that reads back as the same double
 * ("364", "0.1", "1e308", "2.5e-7").  size 32 is enough. */
void qvl_boxes_fmt_number(char *buf, size_t size, double v, int decimals);

/* One output line (with its newline) for a box of image `source` (NULL: unknown):
 * JSON {"image", "label", "bbox", "bbox_model", "kind"} (+ "quad" for quads), or TSV
 * image, label, x1, y1, x2, y2 (tabs and newlines in the label become spaces).
 * -1 with errno's message on a write error. */
int qvl_box_write_json(FILE *f, const qvl_box *b, const char *source, qvl_err *err);
int qvl_box_write_tsv(FILE *f, const qvl_box *b, const char *source, qvl_err *err);

#endif
