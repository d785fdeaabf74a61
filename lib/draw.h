/* draw.h: what qvl-boxes draws on an image: outlines, filled rectangles, lines, discs, text in
 * a built-in 5x7 bitmap font (printable ASCII only), labelled boxes, and crops.  Everything is
 * clipped to the image, so callers may pass any coordinates. */
#ifndef QVL_DRAW_H
#define QVL_DRAW_H

#include <stdint.h>

#include "err.h"
#include "image.h"

#define QVL_FONT_W 5
#define QVL_FONT_H 7

/* The glyph of c: 7 rows, top first, bit 4 the leftmost column; NULL when the font lacks c
 * (anything but printable ASCII, 0x20..0x7e). */
const uint8_t *qvl_font_glyph(int c);

typedef struct qvl_rgb {
	uint8_t r, g, b;
} qvl_rgb;

/* The i-th colour of a palette of well separated colours (cycles). */
qvl_rgb qvl_draw_color(int i);

/* Fills [x0, x1) x [y0, y1). */
void qvl_draw_fill(qvl_image *img, int x0, int y0, int x1, int y1, qvl_rgb c);
/* Outlines [x0, x1) x [y0, y1) with a border `thick` pixels wide drawn inside the rectangle,
 * so its outermost pixels are the rectangle's own edge pixels (x0, x1 - 1, y0, y1 - 1). */
void qvl_draw_outline(qvl_image *img, int x0, int y0, int x1, int y1, int thick, qvl_rgb c);
/* A line `thick` pixels wide from (x0, y0) to (x1, y1). */
void qvl_draw_line(qvl_image *img, int x0, int y0, int x1, int y1, int thick, qvl_rgb c);
/* A filled disc. */
void qvl_draw_disc(qvl_image *img, int cx, int cy, int r, qvl_rgb c);

/* 1 when the font has every character of s (UTF-8 labels usually do not). */
int qvl_draw_text_fits(const char *s);
/* Width and height in pixels of s drawn at `scale` (each font pixel a scale x scale square),
 * with one pixel column of spacing between glyphs. */
int qvl_draw_text_width(const char *s, int scale);
int qvl_draw_text_height(int scale);
/* Draws s with its top-left corner at (x, y); characters the font lacks are drawn as '?'. */
void qvl_draw_text(qvl_image *img, int x, int y, const char *s, int scale, qvl_rgb c);

/* Line width and text scale that read well on an image of this size. */
void qvl_draw_sizes(const qvl_image *img, int *thick, int *scale);

/* A box [x0, x1) x [y0, y1) outlined in colour c, and its tag: `text` on a filled strip of c
 * just above the box (inside it when there is no room above). */
void qvl_draw_box(qvl_image *img, int x0, int y0, int x1, int y1, const char *text, int thick,
    int scale, qvl_rgb c);
/* Only the tag of qvl_draw_box, for a box whose top-left corner is (x0, y0) (so tags can be
 * drawn after every outline and stay readable). */
void qvl_draw_tag(qvl_image *img, int x0, int y0, const char *text, int scale, qvl_rgb c);

/* A copy of [x0, x1) x [y0, y1) of src (clipped; an empty result is an error). */
int qvl_image_crop(const qvl_image *src, int x0, int y0, int x1, int y1, qvl_image *dst,
    qvl_err *err);

#endif
