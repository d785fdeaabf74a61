/* boxes_map.c: which image a box is about, mapping to the original image, output lines. */
#include "boxes_impl.h"
#include "resize.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Which image a box is about.
 */

/* "Picture N" and the like at s[i]: N (1-based) or 0. */
static int
image_mention(const char *s, size_t len, size_t i)
{
	static const char *const words[] = {
		"picture", "image", "img", "photo", "\xe5\x9b\xbe\xe7\x89\x87" /* 图片 */,
		"\xe5\x9b\xbe\xe5\x83\x8f" /* 图像 */, "\xe5\x9b\xbe" /* 图 */, NULL
	};
	size_t wl, j;
	int w, n;

	for (w = 0; words[w] != NULL; w++) {
		wl = strlen(words[w]);
		if (wl > len - i || !name_eq(s + i, wl, words[w], wl))
			continue;
		/* A word, not the end of one ("subimage"). */
		if (i > 0 && ((lower((unsigned char)s[i - 1]) >= 'a' &&
		    lower((unsigned char)s[i - 1]) <= 'z') || s[i - 1] == '_'))
			return 0;
		j = i + wl;
		while (j < len && (s[j] == ' ' || s[j] == '#'))
			j++;
		if (j >= len || !is_digit((unsigned char)s[j]))
			continue;
		for (n = 0; j < len && is_digit((unsigned char)s[j]) && n < 100000; j++)
			n = n * 10 + (s[j] - '0');
		if (j < len && is_digit((unsigned char)s[j]))
			return 0;
		return n;
	}
	return 0;
}

int
qvl_boxes_assign(qvl_box_list *list, const char *text, size_t len, int nimages, int force)
{
	size_t i, b, fences[256], nf = 0;
	const char *p;
	int cur = -1, any = 0, n;

	if (force >= 0 || nimages <= 1) {
		for (b = 0; b < list->n; b++)
			list->v[b].image = force >= 0 ? force : 0;
		return 0;
	}
	/* Mentions, walked together with the boxes (sorted by offset). */
	for (i = 0, b = 0; b < list->n; b++) {
		for (; i < list->v[b].offset && i < len; i++) {
			if ((n = image_mention(text, len, i)) >= 1 && n <= nimages) {
				cur = n - 1;
				any = 1;
			}
		}
		list->v[b].image = cur >= 0 ? cur : 0;
	}
	if (any)
		return 1;
	for (i = 0; (p = find(text, i, len, "```")) != NULL && nf < 256; i = (size_t)(p - text) + 3)
		fences[nf++] = (size_t)(p - text);
	if (nf >= 2 && (int)(nf / 2) == nimages) {
		for (b = 0; b < list->n; b++) {
			list->v[b].image = 0;
			for (i = 0; i + 1 < nf; i += 2)
				if (list->v[b].offset > fences[i] && list->v[b].offset < fences[i + 1])
					list->v[b].image = (int)(i / 2);
		}
		return 2;
	}
	for (b = 0; b < list->n; b++)
		list->v[b].image = 0;
	return 3;
}

/*
 * Geometry and mapping.
 */

/* Two positive numbers under `key`: 1 when present, 0 when absent, -1 when malformed. */
static int
meta_pair(const json_t *meta, const char *key, double *a, double *b, qvl_err *err)
{
	const json_t *v = json_object_get(meta, key), *x, *y;

	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_array(v) || json_array_size(v) != 2 ||
	    !json_is_number(x = json_array_get(v, 0)) || !json_is_number(y = json_array_get(v, 1)) ||
	    !(json_number_value(x) > 0) || !(json_number_value(y) > 0) ||
	    !isfinite(json_number_value(x)) || !isfinite(json_number_value(y)))
		return qvl_fail(err, "image meta: %s: want two positive numbers", key);
	*a = json_number_value(x);
	*b = json_number_value(y);
	return 1;
}

int
qvl_boxes_geom_from_meta(const json_t *meta, qvl_box_geom *g, qvl_err *err)
{
	double sx, sy, dsx, dsy;
	int r, ds;

	memset(g, 0, sizeof *g);
	if (!json_is_object(meta))
		return qvl_fail(err, "image meta: not an object");
	if (meta_pair(meta, "orig_size", &g->orig_w, &g->orig_h, err) < 0 ||
	    meta_pair(meta, "resized_size", &g->model_w, &g->model_h, err) < 0 ||
	    meta_pair(meta, "dpi", &g->dpi_x, &g->dpi_y, err) < 0 ||
	    (r = meta_pair(meta, "scale", &sx, &sy, err)) < 0 ||
	    (ds = meta_pair(meta, "dpi_scale", &dsx, &dsy, err)) < 0)
		return -1;
	if (ds == 1) {
		g->scale_x = dsx;
		g->scale_y = dsy;
	}
	if (g->dpi_x == 0 && ds == 1) {
		g->dpi_x = 72 / dsx;
		g->dpi_y = 72 / dsy;
	}
	/* scale = orig / resized fills in whichever side is missing. */
	if (r == 1 && g->orig_w > 0 && g->model_w == 0) {
		g->model_w = g->orig_w / sx;
		g->model_h = g->orig_h / sy;
	} else if (r == 1 && g->orig_w == 0 && g->model_w > 0) {
		g->orig_w = g->model_w * sx;
		g->orig_h = g->model_h * sy;
	}
	return 0;
}

int
qvl_boxes_model_size(int64_t orig_w, int64_t orig_h, double scale_x, double scale_y,
    int64_t min_pixels, int64_t max_pixels, int64_t *model_w, int64_t *model_h, qvl_err *err)
{
	if (orig_w <= 0 || orig_h <= 0)
		return qvl_fail(err, "image size %lldx%lld: not positive", (long long)orig_w,
		    (long long)orig_h);
	qvl_dpi_scaled_size(orig_w, orig_h, scale_x, scale_y, &orig_w, &orig_h);
	return qvl_smart_resize(orig_h, orig_w, 28, min_pixels, max_pixels, model_h, model_w, err);
}

/* Clamps v to [0, hi]; a rounding error's worth outside is not worth a warning. */
static double
clamp(double v, double hi, int *clamped)
{
	double eps = 1e-9 * (1 + hi);

	if (v < 0) {
		*clamped |= v < -eps;
		return 0;
	}
	if (v > hi) {
		*clamped |= v > hi + eps;
		return hi;
	}
	return v;
}

void
qvl_box_map(qvl_box *b, qvl_coords coords, const qvl_box_geom *g, int units_pt)
{
	/* x * orig / model, multiplied first: the far edge of the resized image lands exactly
	 * on the far edge of the original. */
	double mx = 1, my = 1, dx = 1, dy = 1, pts[8] = { 0 };
	int known = g->orig_w > 0 && g->orig_h > 0, clamped = 0, i, npts;

	b->flags = 0;
	if (!known) {
		b->flags |= QVL_BOX_UNMAPPED;
	} else if (coords == QVL_COORDS_NORM1000) {
		mx = g->orig_w;
		my = g->orig_h;
		dx = dy = 1000;
	} else if (g->model_w > 0 && g->model_h > 0) {
		mx = g->orig_w;
		my = g->orig_h;
		dx = g->model_w;
		dy = g->model_h;
	}
	npts = b->nmodel / 2;
	for (i = 0; i < npts; i++) {
		pts[2 * i] = b->model[2 * i] * mx / dx;
		pts[2 * i + 1] = b->model[2 * i + 1] * my / dy;
		if (known) {
			pts[2 * i] = clamp(pts[2 * i], g->orig_w, &clamped);
			pts[2 * i + 1] = clamp(pts[2 * i + 1], g->orig_h, &clamped);
		}
	}
	if (clamped)
		b->flags |= QVL_BOX_CLAMPED;
	/* The bounding box of the points: orders the corners of a box written backwards. */
	b->px[0] = b->px[2] = pts[0];
	b->px[1] = b->px[3] = pts[1];
	for (i = 1; i < npts; i++) {
		b->px[0] = fmin(b->px[0], pts[2 * i]);
		b->px[2] = fmax(b->px[2], pts[2 * i]);
		b->px[1] = fmin(b->px[1], pts[2 * i + 1]);
		b->px[3] = fmax(b->px[3], pts[2 * i + 1]);
	}
	memset(b->quad_px, 0, sizeof b->quad_px);
	if (b->kind == QVL_BOX_QUAD)
		memcpy(b->quad_px, pts, sizeof b->quad_px);
	if (b->kind != QVL_BOX_POINT && (b->px[2] <= b->px[0] || b->px[3] <= b->px[1]))
		b->flags |= QVL_BOX_EMPTY;
	memcpy(b->out, b->px, sizeof b->out);
	memcpy(b->quad_out, b->quad_px, sizeof b->quad_out);
	if (units_pt) {
		if (g->dpi_x > 0 && g->dpi_y > 0) {
			for (i = 0; i < 4; i++)
				b->out[i] *= 72 / (i % 2 ? g->dpi_y : g->dpi_x);
			for (i = 0; i < 8; i++)
				b->quad_out[i] *= 72 / (i % 2 ? g->dpi_y : g->dpi_x);
		} else
			b->flags |= QVL_BOX_NODPI;
	}
}

int
qvl_box_pixel_rect(const double px[4], int w, int h, int *x0, int *y0, int *x1, int *y1)
{
	double a = floor(px[0]), b = floor(px[1]), c = ceil(px[2]), d = ceil(px[3]);

	*x0 = a < 0 ? 0 : a > w ? w : (int)a;
	*y0 = b < 0 ? 0 : b > h ? h : (int)b;
	*x1 = c < 0 ? 0 : c > w ? w : (int)c;
	*y1 = d < 0 ? 0 : d > h ? h : (int)d;
	return *x1 > *x0 && *y1 > *y0;
}

const char *
qvl_box_kind_name(qvl_box_kind kind)
{
	switch (kind) {
	case QVL_BOX_POINT: return "point";
	case QVL_BOX_QUAD: return "quad";
	default: return "bbox";
	}
}

const char *
qvl_box_format_name(qvl_box_format fmt)
{
	switch (fmt) {
	case QVL_FMT_HTML: return "html";
	case QVL_FMT_TOKENS: return "tokens";
	case QVL_FMT_TAGS: return "tags";
	case QVL_FMT_XML: return "xml";
	default: return "json";
	}
}

/*
 * Output.
 */

/* The shortest form that reads back as v: whole numbers as such, others with the fewest
 * significant digits, the exponent without '+' and leading zeros ("1e308", "2.5e-7"). */
static void
fmt_exact(char *buf, size_t size, double v)
{
	char tmp[40], *e, *d;
	int prec;

	if (v == floor(v) && fabs(v) < 1e15) {
		snprintf(buf, size, "%.0f", v);
		return;
	}
	for (prec = 1; prec < 17; prec++) {
		snprintf(tmp, sizeof tmp, "%.*g", prec, v);
		if (strtod(tmp, NULL) == v)
			break;
	}
	snprintf(tmp, sizeof tmp, "%.*g", prec, v);
	if ((e = strchr(tmp, 'e')) != NULL) {
		d = e + 1;
		if (*d == '+')
			memmove(d, d + 1, strlen(d));
		else if (*d == '-')
			d++;
		while (d[0] == '0' && d[1] != '\0')
			memmove(d, d + 1, strlen(d));
	}
	snprintf(buf, size, "%s", tmp);
}

void
qvl_boxes_fmt_number(char *buf, size_t size, double v, int decimals)
{
	char *dot, *e;

	if (!isfinite(v))
		v = 0;
	if (v == 0)
		v = 0;	/* no "-0" */
	/* Past 1e15 decimals mean nothing, and %f would not fit. */
	if (decimals < 0 || fabs(v) >= 1e15) {
		fmt_exact(buf, size, v);
		return;
	}
	snprintf(buf, size, "%.*f", decimals, v);
	if ((dot = strchr(buf, '.')) != NULL) {
		for (e = buf + strlen(buf) - 1; e > dot && *e == '0'; e--)
			*e = '\0';
		if (e == dot)
			*e = '\0';
	}
	if (strcmp(buf, "-0") == 0)
		strcpy(buf, "0");
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	size_t k, len;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		len = 4;
		cp = s[0] & 0x07;
	} else
		return 0;
	if (len > n)
		return 0;
	for (k = 1; k < len; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[k] & 0x3f);
	}
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* s as a JSON string literal; invalid UTF-8 bytes become U+FFFD so the line stays JSON. */
static void
put_json_string(sbuf *b, const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t n = strlen(s), i = 0, k;
	char esc[8];

	qvl_bx_sb_putc(b, '"');
	while (i < n) {
		if (u[i] == '"' || u[i] == '\\') {
			qvl_bx_sb_putc(b, '\\');
			qvl_bx_sb_putc(b, (char)u[i++]);
		} else if (u[i] < 0x20 || u[i] == 0x7f) {
			if (u[i] == '\n')
				qvl_bx_sb_put(b, "\\n", 2);
			else if (u[i] == '\t')
				qvl_bx_sb_put(b, "\\t", 2);
			else if (u[i] == '\r')
				qvl_bx_sb_put(b, "\\r", 2);
			else {
				snprintf(esc, sizeof esc, "\\u%04x", u[i]);
				qvl_bx_sb_put(b, esc, 6);
			}
			i++;
		} else if ((k = utf8_len(u + i, n - i)) == 0) {
			qvl_bx_sb_put(b, "\xef\xbf\xbd", 3);
			i++;
		} else {
			qvl_bx_sb_put(b, s + i, k);
			i += k;
		}
	}
	qvl_bx_sb_putc(b, '"');
}

static void
put_numbers(sbuf *b, const double *v, int n, int decimals)
{
	char num[64];
	int i;

	qvl_bx_sb_putc(b, '[');
	for (i = 0; i < n; i++) {
		if (i > 0)
			qvl_bx_sb_put(b, ", ", 2);
		qvl_boxes_fmt_number(num, sizeof num, v[i], decimals);
		qvl_bx_sb_put(b, num, strlen(num));
	}
	qvl_bx_sb_putc(b, ']');
}

static int
write_line(FILE *f, sbuf *b, qvl_err *err)
{
	char *s;
	int r = 0;

	if ((s = qvl_bx_sb_take(b)) == NULL)
		return qvl_fail(err, "boxes: out of memory");
	if (fputs(s, f) == EOF)
		r = qvl_fail_errno(err, "write");
	free(s);
	return r;
}

int
qvl_box_write_json(FILE *f, const qvl_box *b, const char *source, qvl_err *err)
{
	sbuf o = { 0 };

	qvl_bx_sb_put(&o, "{\"image\": ", 10);
	if (source != NULL)
		put_json_string(&o, source);
	else
		qvl_bx_sb_put(&o, "null", 4);
	qvl_bx_sb_put(&o, ", \"label\": ", 11);
	put_json_string(&o, b->label);
	qvl_bx_sb_put(&o, ", \"bbox\": ", 10);
	put_numbers(&o, b->out, 4, 2);
	qvl_bx_sb_put(&o, ", \"bbox_model\": ", 16);
	put_numbers(&o, b->model, b->nmodel, -1);
	qvl_bx_sb_put(&o, ", \"kind\": ", 10);
	put_json_string(&o, qvl_box_kind_name(b->kind));
	if (b->kind == QVL_BOX_QUAD) {
		qvl_bx_sb_put(&o, ", \"quad\": ", 10);
		put_numbers(&o, b->quad_out, 8, 2);
	}
	qvl_bx_sb_put(&o, "}\n", 2);
	return write_line(f, &o, err);
}

int
qvl_box_write_tsv(FILE *f, const qvl_box *b, const char *source, qvl_err *err)
{
	sbuf o = { 0 };
	char num[64];
	const char *p;
	int i;

	qvl_bx_sb_put(&o, source ? source : "-", strlen(source ? source : "-"));
	qvl_bx_sb_putc(&o, '\t');
	for (p = b->label; *p != '\0'; p++)
		qvl_bx_sb_putc(&o, *p == '\t' || *p == '\n' || *p == '\r' ? ' ' : *p);
	for (i = 0; i < 4; i++) {
		qvl_boxes_fmt_number(num, sizeof num, b->out[i], 2);
		qvl_bx_sb_putc(&o, '\t');
		qvl_bx_sb_put(&o, num, strlen(num));
	}
	qvl_bx_sb_putc(&o, '\n');
	return write_line(f, &o, err);
}
