/* draw.c: outlines, text and crops on 8-bit RGB images, for qvl-boxes --draw and --crop.
 * Every primitive clips to the image, so a box that reaches past an edge draws what lies
 * inside. */
#include "draw.h"

#include <stdlib.h>
#include <string.h>

/* Colours far apart from each other and from most photographs' greys. */
static const qvl_rgb palette[] = {
	{ 230, 25, 75 }, { 60, 180, 75 }, { 0, 130, 200 }, { 245, 130, 48 }, { 145, 30, 180 },
	{ 70, 200, 200 }, { 240, 50, 230 }, { 160, 200, 40 }, { 0, 128, 128 }, { 170, 110, 40 },
};

qvl_rgb
qvl_draw_color(int i)
{
	int n = (int)(sizeof palette / sizeof palette[0]);

	return palette[((i % n) + n) % n];
}

static void
put(qvl_image *img, int x, int y, qvl_rgb c)
{
	uint8_t *p;

	if (x < 0 || y < 0 || x >= img->w || y >= img->h)
		return;
	p = img->rgb + ((size_t)y * (size_t)img->w + (size_t)x) * 3;
	p[0] = c.r;
	p[1] = c.g;
	p[2] = c.b;
}

void
qvl_draw_fill(qvl_image *img, int x0, int y0, int x1, int y1, qvl_rgb c)
{
	int x, y;

	if (x0 < 0)
		x0 = 0;
	if (y0 < 0)
		y0 = 0;
	if (x1 > img->w)
		x1 = img->w;
	if (y1 > img->h)
		y1 = img->h;
	for (y = y0; y < y1; y++)
		for (x = x0; x < x1; x++)
			put(img, x, y, c);
}

void
qvl_draw_outline(qvl_image *img, int x0, int y0, int x1, int y1, int thick, qvl_rgb c)
{
	if (x1 <= x0 || y1 <= y0)
		return;
	if (thick < 1)
		thick = 1;
	/* A border wider than half the box fills it. */
	if (2 * thick >= x1 - x0 || 2 * thick >= y1 - y0) {
		qvl_draw_fill(img, x0, y0, x1, y1, c);
		return;
	}
	qvl_draw_fill(img, x0, y0, x1, y0 + thick, c);
	qvl_draw_fill(img, x0, y1 - thick, x1, y1, c);
	qvl_draw_fill(img, x0, y0 + thick, x0 + thick, y1 - thick, c);
	qvl_draw_fill(img, x1 - thick, y0 + thick, x1, y1 - thick, c);
}

void
qvl_draw_line(qvl_image *img, int x0, int y0, int x1, int y1, int thick, qvl_rgb c)
{
	int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
	int e = dx + dy, e2, lo = (thick - 1) / 2, hi = thick / 2;
	long steps = 0, max = (long)dx - dy + 1;

	/* Bresenham; each step stamps a thick x thick square.  `max` bounds the loop even for
	 * wild coordinates. */
	for (;;) {
		qvl_draw_fill(img, x0 - lo, y0 - lo, x0 + hi + 1, y0 + hi + 1, c);
		if ((x0 == x1 && y0 == y1) || ++steps > max)
			break;
		e2 = 2 * e;
		if (e2 >= dy) {
			e += dy;
			x0 += sx;
		}
		if (e2 <= dx) {
			e += dx;
			y0 += sy;
		}
	}
}

void
qvl_draw_disc(qvl_image *img, int cx, int cy, int r, qvl_rgb c)
{
	int x, y;

	for (y = -r; y <= r; y++)
		for (x = -r; x <= r; x++)
			if (x * x + y * y <= r * r + r)
				put(img, cx + x, cy + y, c);
}

int
qvl_draw_text_fits(const char *s)
{
	for (; *s != '\0'; s++)
		if (qvl_font_glyph((unsigned char)*s) == NULL)
			return 0;
	return 1;
}

int
qvl_draw_text_width(const char *s, int scale)
{
	size_t n = strlen(s);

	return n == 0 ? 0 : (int)n * (QVL_FONT_W + 1) * scale - scale;
}

int
qvl_draw_text_height(int scale)
{
	return QVL_FONT_H * scale;
}

void
qvl_draw_text(qvl_image *img, int x, int y, const char *s, int scale, qvl_rgb c)
{
	const uint8_t *g;
	int row, col;

	for (; *s != '\0'; s++, x += (QVL_FONT_W + 1) * scale) {
		if (x >= img->w)
			break;
		if ((g = qvl_font_glyph((unsigned char)*s)) == NULL)
			g = qvl_font_glyph('?');
		for (row = 0; row < QVL_FONT_H; row++)
			for (col = 0; col < QVL_FONT_W; col++)
				if (g[row] & (0x10 >> col))
					qvl_draw_fill(img, x + col * scale, y + row * scale,
					    x + (col + 1) * scale, y + (row + 1) * scale, c);
	}
}

void
qvl_draw_sizes(const qvl_image *img, int *thick, int *scale)
{
	int side = img->w < img->h ? img->w : img->h;

	*thick = side / 500 + 2;
	if (*thick > 8)
		*thick = 8;
	*scale = side / 400 + 1;
	if (*scale > 6)
		*scale = 6;
}

void
qvl_draw_tag(qvl_image *img, int x0, int y0, const char *text, int scale, qvl_rgb c)
{
	int pad = scale, tw = qvl_draw_text_width(text, scale) + 2 * pad;
	int th = qvl_draw_text_height(scale) + 2 * pad, x = x0, y;
	/* Dark text on light colours, white on dark ones (Rec. 601 luma). */
	int luma = (299 * c.r + 587 * c.g + 114 * c.b) / 1000;
	qvl_rgb fg = luma > 140 ? (qvl_rgb){ 0, 0, 0 } : (qvl_rgb){ 255, 255, 255 };

	if (text[0] == '\0')
		return;
	y = y0 - th >= 0 ? y0 - th : y0 < 0 ? 0 : y0;
	if (y + th > img->h)
		y = img->h - th > 0 ? img->h - th : 0;
	if (x + tw > img->w)
		x = img->w - tw;
	if (x < 0)
		x = 0;
	qvl_draw_fill(img, x, y, x + tw, y + th, c);
	qvl_draw_text(img, x + pad, y + pad, text, scale, fg);
}

void
qvl_draw_box(qvl_image *img, int x0, int y0, int x1, int y1, const char *text, int thick,
    int scale, qvl_rgb c)
{
	qvl_draw_outline(img, x0, y0, x1, y1, thick, c);
	qvl_draw_tag(img, x0, y0, text, scale, c);
}

int
qvl_image_crop(const qvl_image *src, int x0, int y0, int x1, int y1, qvl_image *dst,
    qvl_err *err)
{
	int y;

	if (x0 < 0)
		x0 = 0;
	if (y0 < 0)
		y0 = 0;
	if (x1 > src->w)
		x1 = src->w;
	if (y1 > src->h)
		y1 = src->h;
	if (x1 <= x0 || y1 <= y0)
		return qvl_fail(err, "crop: empty region");
	if (qvl_image_alloc(dst, x1 - x0, y1 - y0, err) < 0)
		return -1;
	for (y = y0; y < y1; y++)
		memcpy(dst->rgb + (size_t)(y - y0) * (size_t)dst->w * 3,
		    src->rgb + ((size_t)y * (size_t)src->w + (size_t)x0) * 3, (size_t)dst->w * 3);
	dst->dpi_x = src->dpi_x;
	dst->dpi_y = src->dpi_y;
	return 0;
}
