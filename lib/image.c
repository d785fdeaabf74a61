/* image.c: PNG and JPEG to 8-bit RGB the way Pillow + qwen-vl-utils' to_rgb do it.
 *
 * The reference opens an image with Pillow and calls to_rgb: RGBA is pasted on white with
 * alpha as the mask, every other mode goes through Image.convert("RGB").  That fixes a few
 * surprising rules this file follows on purpose:
 *   - PNG 8-bit gray+alpha, palette+tRNS, gray/RGB+tRNS: the transparency is dropped, not
 *     composited (Pillow's modes LA, P, L, RGB); 16-bit gray+alpha opens as RGBA: composited;
 *   - 16-bit RGB(A) and gray+alpha keep the high byte of each sample, but 16-bit gray is
 *     Pillow's mode "I", whose conversion to RGB clips the 16-bit value to 255;
 *   - no gamma, no colour profile, no EXIF orientation;
 *   - CMYK JPEG: samples inverted (Pillow assumes the Adobe convention, marker or not),
 *     then Pillow's cmyk2rgb.
 * JPEG goes through libjpeg(-turbo) with its default IDCT and fancy upsampling, as Pillow's
 * decoder does.  The pixel limit is checked on the header, before any pixel is allocated. */
#include "image.h"
#include "memcheck.h"

#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

#define PNG_SIG_LEN 8

/* Pillow's DIV255 rounding for the paste blend (Paste.c, BLEND) and cmyk2rgb (MULDIV255). */
static inline uint8_t
div255(unsigned int v)
{
	v += 128;
	return (uint8_t)(((v >> 8) + v) >> 8);
}

static int64_t
limit_pixels(const qvl_image_limits *lim)
{
	if (lim == NULL || lim->max_pixels <= 0)
		return QVL_IMAGE_DEFAULT_MAX_PIXELS;
	return lim->max_pixels;
}

static int
check_size(const char *name, int64_t w, int64_t h, const qvl_image_limits *lim, qvl_err *err)
{
	int64_t max = limit_pixels(lim);

	if (w <= 0 || h <= 0)
		return qvl_fail(err, "%s: image has a zero size (%lldx%lld)", name, (long long)w,
		    (long long)h);
	/* header sizes reach 2^32 - 1 per side: the product only in double */
	if (w > INT_MAX / 4 || h > INT_MAX / 4 || w * h > max)
		return qvl_fail(err, "%s: image is %lldx%lld = %.0f pixels, over the limit of %lld "
		    "(--max-input-pixels)", name, (long long)w, (long long)h, (double)w * (double)h,
		    (long long)max);
	/* RGB pixels and as much again for the decoder's rows and the resize that follows:
	 * over what the machine has, say so now rather than be killed mid-decode */
	char what[PATH_MAX + 64];
	snprintf(what, sizeof what, "%s: decoding a %lldx%lld image", name, (long long)w,
	    (long long)h);
	return qvl_mem_check((uint64_t)w * (uint64_t)h * 6, what, err);
}

int
qvl_image_alloc(qvl_image *img, int w, int h, qvl_err *err)
{
	memset(img, 0, sizeof *img);
	if (w <= 0 || h <= 0 || (size_t)w > SIZE_MAX / 3 / (size_t)h)
		return qvl_fail(err, "image: bad size %dx%d", w, h);
	char what[64];
	snprintf(what, sizeof what, "image: %dx%d", w, h);
	if (qvl_mem_check((uint64_t)w * (uint64_t)h * 3, what, err) < 0)
		return -1;
	img->rgb = calloc((size_t)w * (size_t)h, 3);
	if (img->rgb == NULL)
		return qvl_fail(err, "image: %dx%d: out of memory", w, h);
	img->w = w;
	img->h = h;
	return 0;
}

void
qvl_image_free(qvl_image *img)
{
	if (img == NULL)
		return;
	free(img->rgb);
	memset(img, 0, sizeof *img);
}

/* ---- PNG ---- */

struct png_ctx {
	const uint8_t *buf;
	size_t len, off;
	char msg[256];
};

static void
png_on_error(png_structp png, png_const_charp msg)
{
	struct png_ctx *c = png_get_error_ptr(png);

	snprintf(c->msg, sizeof c->msg, "%s", msg);
	png_longjmp(png, 1);
}

static void
png_on_warning(png_structp png, png_const_charp msg)
{
	(void)png;
	(void)msg;
}

static void
png_read_mem(png_structp png, png_bytep out, size_t n)
{
	struct png_ctx *c = png_get_io_ptr(png);

	if (n > c->len - c->off)
		png_error(png, "file is truncated");
	memcpy(out, c->buf + c->off, n);
	c->off += n;
}

/* Sample x of a packed row of `bits`-bit samples (1, 2, 4, 8 or 16, big-endian). */
static inline unsigned int
png_sample(const uint8_t *row, size_t x, int bits)
{
	switch (bits) {
	case 16:
		return (unsigned int)row[2 * x] << 8 | row[2 * x + 1];
	case 8:
		return row[x];
	default: {
		size_t bit = x * (size_t)bits;
		unsigned int shift = 8 - bits - (unsigned int)(bit & 7);

		return (row[bit >> 3] >> shift) & ((1u << bits) - 1);
	}
	}
}

/* One decoded PNG row (raw samples) to RGB following Pillow's modes (see the top comment). */
static void
png_row_to_rgb(const uint8_t *row, uint8_t *out, int w, int ctype, int bits,
    const png_color *pal, int npal)
{
	int x;

	switch (ctype) {
	case PNG_COLOR_TYPE_GRAY:
		for (x = 0; x < w; x++) {
			unsigned int v = png_sample(row, (size_t)x, bits);

			switch (bits) {
			case 1: v *= 255; break;
			case 2: v *= 85; break;
			case 4: v *= 17; break;
			case 16: v = v > 255 ? 255 : v; break;	/* mode "I" -> RGB clips */
			}
			out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = (uint8_t)v;
		}
		break;
	case PNG_COLOR_TYPE_PALETTE:
		for (x = 0; x < w; x++) {
			unsigned int i = png_sample(row, (size_t)x, bits);

			if ((int)i < npal) {
				out[3 * x] = pal[i].red;
				out[3 * x + 1] = pal[i].green;
				out[3 * x + 2] = pal[i].blue;
			} else	/* Pillow's palette starts as a gray ramp */
				out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = (uint8_t)i;
		}
		break;
	case PNG_COLOR_TYPE_GRAY_ALPHA:
		/* Pillow opens 8-bit LA as "LA" (convert drops alpha) but 16-bit LA as "RGBA",
		 * which to_rgb composites on white. */
		for (x = 0; x < w; x++) {
			uint8_t v = bits == 16 ? row[4 * x] : row[2 * x];

			if (bits == 16)
				v = div255(255 * (255 - row[4 * x + 2]) + v * row[4 * x + 2]);
			out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = v;
		}
		break;
	case PNG_COLOR_TYPE_RGB:
		if (bits == 8)
			memcpy(out, row, (size_t)w * 3);
		else
			for (x = 0; x < 3 * w; x++)
				out[x] = row[2 * x];
		break;
	case PNG_COLOR_TYPE_RGB_ALPHA: {
		int step = bits == 16 ? 2 : 1;

		for (x = 0; x < w; x++) {
			const uint8_t *p = row + (size_t)x * 4 * step;
			unsigned int a = p[3 * step];

			for (int c = 0; c < 3; c++)
				out[3 * x + c] = div255(255 * (255 - a) + p[c * step] * a);
		}
		break;
	}
	}
}

static int
png_decode(const uint8_t *buf, size_t len, const char *name, const qvl_image_limits *lim,
    qvl_image *img, qvl_err *err)
{
	struct png_ctx ctx = { .buf = buf, .len = len };
	png_structp png;
	png_infop info = NULL;
	uint8_t *volatile raw = NULL;
	uint8_t *volatile rgb = NULL;
	png_uint_32 w, h, y;
	int bits, ctype, interlace, passes, npal = 0;
	png_colorp pal = NULL;
	size_t rowbytes;
	const volatile int64_t maxpx = limit_pixels(lim);

	png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, png_on_error, png_on_warning);
	if (png == NULL || (info = png_create_info_struct(png)) == NULL) {
		png_destroy_read_struct(&png, NULL, NULL);
		return qvl_fail(err, "%s: out of memory", name);
	}
	if (setjmp(png_jmpbuf(png))) {
		png_destroy_read_struct(&png, &info, NULL);
		free(raw);
		free(rgb);
		return qvl_fail(err, "%s: bad PNG: %s", name, ctx.msg);
	}
	png_set_read_fn(png, &ctx, png_read_mem);
	/* libpng's own limits: let ours decide, but never above what we accept. */
	png_set_user_limits(png, maxpx > 0x7fffffff ? 0x7fffffff : (png_uint_32)maxpx,
	    maxpx > 0x7fffffff ? 0x7fffffff : (png_uint_32)maxpx);
	png_read_info(png, info);
	png_get_IHDR(png, info, &w, &h, &bits, &ctype, &interlace, NULL, NULL);
	if (check_size(name, w, h, lim, err) < 0) {
		png_destroy_read_struct(&png, &info, NULL);
		return -1;
	}
	if (ctype == PNG_COLOR_TYPE_PALETTE && !png_get_PLTE(png, info, &pal, &npal))
		npal = 0;
	passes = png_set_interlace_handling(png);
	png_read_update_info(png, info);
	rowbytes = png_get_rowbytes(png, info);
	rgb = malloc((size_t)w * h * 3);
	/* An interlaced image's rows start zeroed.  libpng merges the pixels of each pass into
	 * them with masked bit operations (pixels under 8 bits share bytes) that also read
	 * the bits of pixels no pass has written yet: the result does not depend on those,
	 * but valgrind cannot tell, and reported every pixel of the even rows of a 2-bit
	 * interlaced palette image (tests/data/resize/p2i.png) as uninitialised. */
	raw = passes > 1 ? calloc(h, rowbytes) : malloc(rowbytes);
	if (rgb == NULL || raw == NULL)
		png_error(png, "out of memory");
	if (passes > 1) {
		png_bytepp rows = png_malloc(png, sizeof(png_bytep) * h);

		for (y = 0; y < h; y++)
			rows[y] = raw + rowbytes * y;
		png_read_image(png, rows);
		png_free(png, rows);
		for (y = 0; y < h; y++)
			png_row_to_rgb(raw + rowbytes * y, rgb + (size_t)w * 3 * y, (int)w, ctype,
			    bits, pal, npal);
	} else
		for (y = 0; y < h; y++) {
			png_read_row(png, raw, NULL);
			png_row_to_rgb(raw, rgb + (size_t)w * 3 * y, (int)w, ctype, bits, pal,
			    npal);
		}
	png_read_end(png, NULL);

	memset(img, 0, sizeof *img);
	{
		png_uint_32 px, py;
		int unit;

		if (png_get_pHYs(png, info, &px, &py, &unit) && unit == PNG_RESOLUTION_METER) {
			img->dpi_x = px * 0.0254;
			img->dpi_y = py * 0.0254;
		}
	}
	png_destroy_read_struct(&png, &info, NULL);
	free(raw);
	img->w = (int)w;
	img->h = (int)h;
	img->rgb = rgb;
	return 0;
}

/* ---- JPEG ---- */

struct jpeg_ctx {
	struct jpeg_error_mgr pub;
	jmp_buf jb;
	char msg[JMSG_LENGTH_MAX];
};

static void
jpeg_on_error(j_common_ptr cinfo)
{
	struct jpeg_ctx *c = (struct jpeg_ctx *)cinfo->err;

	cinfo->err->format_message(cinfo, c->msg);
	longjmp(c->jb, 1);
}

/* Pillow refuses a truncated JPEG ("image file is truncated"); libjpeg only warns and pads
 * with gray, so that warning becomes an error here.  Other warnings are ignored, as Pillow does. */
static void
jpeg_on_message(j_common_ptr cinfo, int level)
{
	struct jpeg_ctx *c = (struct jpeg_ctx *)cinfo->err;

	if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
		snprintf(c->msg, sizeof c->msg, "file is truncated");
		longjmp(c->jb, 1);
	}
}

static inline unsigned int
rd16(const uint8_t *p, int be)
{
	return be ? (unsigned int)p[0] << 8 | p[1] : (unsigned int)p[1] << 8 | p[0];
}

static inline uint32_t
rd32(const uint8_t *p, int be)
{
	return be ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
		  : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* EXIF XResolution / YResolution / ResolutionUnit of IFD0.  Every offset is bounds-checked:
 * the data comes from the file. */
static void
exif_density(const uint8_t *p, size_t len, double *dx, double *dy)
{
	int be;
	uint32_t ifd;
	unsigned int n, i, unit = 2;
	double rx = 0, ry = 0;

	if (len < 14 || memcmp(p, "Exif\0\0", 6) != 0)
		return;
	p += 6;
	len -= 6;
	if (memcmp(p, "MM\0*", 4) == 0)
		be = 1;
	else if (memcmp(p, "II*\0", 4) == 0)
		be = 0;
	else
		return;
	ifd = rd32(p + 4, be);
	if (ifd > len - 2)
		return;
	n = rd16(p + ifd, be);
	for (i = 0; i < n; i++) {
		size_t e = (size_t)ifd + 2 + (size_t)i * 12;
		unsigned int tag, type;
		uint32_t off;

		if (e + 12 > len)
			break;
		tag = rd16(p + e, be);
		type = rd16(p + e + 2, be);
		if (tag == 0x0128 && type == 3)
			unit = rd16(p + e + 8, be);
		if ((tag == 0x011a || tag == 0x011b) && type == 5) {
			off = rd32(p + e + 8, be);
			if (off <= len - 8 && rd32(p + off + 4, be) != 0) {
				double v = (double)rd32(p + off, be) / rd32(p + off + 4, be);

				if (tag == 0x011a)
					rx = v;
				else
					ry = v;
			}
		}
	}
	if (unit == 3) {
		rx *= 2.54;
		ry *= 2.54;
	} else if (unit != 2)
		return;
	*dx = rx;
	*dy = ry;
}

static int
jpeg_decode(const uint8_t *buf, size_t len, const char *name, const qvl_image_limits *lim,
    qvl_image *img, qvl_err *err)
{
	struct jpeg_decompress_struct cinfo;
	struct jpeg_ctx ctx;
	uint8_t *volatile rgb = NULL;
	uint8_t *volatile row = NULL;
	volatile double dx = 0, dy = 0;
	int w, h, nc;

	memset(&cinfo, 0, sizeof cinfo);
	cinfo.err = jpeg_std_error(&ctx.pub);
	ctx.pub.error_exit = jpeg_on_error;
	ctx.pub.emit_message = jpeg_on_message;
	ctx.msg[0] = '\0';
	if (setjmp(ctx.jb)) {
		jpeg_destroy_decompress(&cinfo);
		free(rgb);
		free(row);
		return qvl_fail(err, "%s: bad JPEG: %s", name, ctx.msg);
	}
	jpeg_create_decompress(&cinfo);
	jpeg_mem_src(&cinfo, buf, (unsigned long)len);
	jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xffff);
	jpeg_read_header(&cinfo, TRUE);
	if (check_size(name, cinfo.image_width, cinfo.image_height, lim, err) < 0) {
		jpeg_destroy_decompress(&cinfo);
		return -1;
	}
	switch (cinfo.jpeg_color_space) {
	case JCS_GRAYSCALE:
		cinfo.out_color_space = JCS_GRAYSCALE;
		break;
	case JCS_CMYK:
	case JCS_YCCK:
		cinfo.out_color_space = JCS_CMYK;
		break;
	default:
		cinfo.out_color_space = JCS_RGB;
		break;
	}
	if (cinfo.saw_JFIF_marker && (cinfo.density_unit == 1 || cinfo.density_unit == 2)) {
		double f = cinfo.density_unit == 2 ? 2.54 : 1;

		dx = cinfo.X_density * f;
		dy = cinfo.Y_density * f;
	} else
		for (jpeg_saved_marker_ptr m = cinfo.marker_list; m; m = m->next)
			if (m->marker == JPEG_APP0 + 1) {
				double ex = 0, ey = 0;

				exif_density(m->data, m->data_length, &ex, &ey);
				dx = ex;
				dy = ey;
			}
	jpeg_start_decompress(&cinfo);
	w = (int)cinfo.output_width;
	h = (int)cinfo.output_height;
	nc = cinfo.output_components;
	rgb = malloc((size_t)w * h * 3);
	row = malloc((size_t)w * nc);
	if (rgb == NULL || row == NULL) {
		snprintf(ctx.msg, sizeof ctx.msg, "out of memory");
		longjmp(ctx.jb, 1);
	}
	while (cinfo.output_scanline < cinfo.output_height) {
		uint8_t *out = rgb + (size_t)w * 3 * cinfo.output_scanline;
		JSAMPROW rows[1] = { row };

		jpeg_read_scanlines(&cinfo, rows, 1);
		for (int x = 0; x < w; x++) {
			const uint8_t *p = row + (size_t)x * nc;

			if (nc == 1)
				out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = p[0];
			else if (nc == 3)
				memcpy(out + 3 * x, p, 3);
			else {
				/* Pillow reads every CMYK JPEG as "CMYK;I" (inverted, the
				 * Adobe convention, marker or not), then cmyk2rgb. */
				unsigned int c[4], nk;

				for (int i = 0; i < 4; i++)
					c[i] = 255u - p[i];
				nk = 255 - c[3];
				for (int i = 0; i < 3; i++)
					out[3 * x + i] = (uint8_t)(nk - div255(c[i] * nk));
			}
		}
	}
	jpeg_finish_decompress(&cinfo);
	jpeg_destroy_decompress(&cinfo);
	free(row);
	memset(img, 0, sizeof *img);
	img->w = w;
	img->h = h;
	img->rgb = rgb;
	img->dpi_x = dx;
	img->dpi_y = dy;
	return 0;
}

static int
is_png(const uint8_t *p, size_t len)
{
	return len >= PNG_SIG_LEN && png_sig_cmp(p, 0, PNG_SIG_LEN) == 0;
}

static int
is_jpeg(const uint8_t *p, size_t len)
{
	return len >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff;
}

int
qvl_image_decode(const void *buf, size_t len, const char *name, const qvl_image_limits *lim,
    qvl_image *img, qvl_err *err)
{
	const uint8_t *p = buf;

	memset(img, 0, sizeof *img);
	if (len == 0)
		return qvl_fail(err, "%s: empty file", name);
	if (is_png(p, len)) {
		/* libpng reads every chunk before the pixels in png_read_info; check IHDR's size
		 * first so an absurd header fails on the limit, not on what follows it. */
		if (len >= 24 && memcmp(p + 12, "IHDR", 4) == 0 &&
		    check_size(name, rd32(p + 16, 1), rd32(p + 20, 1), lim, err) < 0)
			return -1;
		return png_decode(p, len, name, lim, img, err);
	}
	if (is_jpeg(p, len))
		return jpeg_decode(p, len, name, lim, img, err);
	return qvl_fail(err, "%s: not a PNG or JPEG image", name);
}

/* Length of a PNG: chunks up to and including IEND. */
static int
png_length(const uint8_t *p, size_t len, size_t *n, qvl_err *err)
{
	size_t off = PNG_SIG_LEN;

	while (len - off >= 12) {
		uint32_t clen = rd32(p + off, 1);

		if (clen > 0x7fffffff || clen > len - off - 12)
			break;
		if (memcmp(p + off + 4, "IEND", 4) == 0) {
			*n = off + 12 + clen;
			return 0;
		}
		off += 12 + (size_t)clen;
	}
	return qvl_fail(err, "PNG is truncated (no IEND chunk)");
}

/* Length of a JPEG: markers up to EOI, skipping entropy-coded data after each SOS (where
 * 0xFF00 is a stuffed byte and RSTn markers belong to the data). */
static int
jpeg_length(const uint8_t *p, size_t len, size_t *n, qvl_err *err)
{
	size_t off = 2;

	while (off + 4 <= len) {
		unsigned int m, seglen;

		if (p[off] != 0xff)
			return qvl_fail(err, "JPEG: bad marker at byte %zu", off);
		m = p[off + 1];
		if (m == 0xff) {	/* fill byte */
			off++;
			continue;
		}
		if (m == 0xd9) {
			*n = off + 2;
			return 0;
		}
		if (m == 0x01 || (m >= 0xd0 && m <= 0xd7)) {
			off += 2;
			continue;
		}
		seglen = rd16(p + off + 2, 1);
		if (seglen < 2 || seglen > len - off - 2)
			break;
		off += 2 + seglen;
		if (m == 0xda)	/* scan data runs to the next real marker */
			while (off + 1 < len) {
				if (p[off] == 0xff && p[off + 1] != 0 &&
				    !(p[off + 1] >= 0xd0 && p[off + 1] <= 0xd7) && p[off + 1] != 0xff)
					break;
				off++;
			}
	}
	if (off + 2 == len && p[off] == 0xff && p[off + 1] == 0xd9) {
		*n = len;
		return 0;
	}
	return qvl_fail(err, "JPEG is truncated (no EOI marker)");
}

int
qvl_image_split(const void *buf, size_t len, size_t *first_len, qvl_err *err)
{
	const uint8_t *p = buf;

	if (is_png(p, len))
		return png_length(p, len, first_len, err);
	if (is_jpeg(p, len))
		return jpeg_length(p, len, first_len, err);
	return qvl_fail(err, "not a PNG or JPEG image");
}

int
qvl_read_all(FILE *f, const char *name, uint8_t **buf, size_t *len, qvl_err *err)
{
	size_t cap = 1 << 16, n = 0, got;
	uint8_t *b = malloc(cap), *nb;

	if (b == NULL)
		return qvl_fail(err, "%s: out of memory", name);
	while ((got = fread(b + n, 1, cap - n, f)) > 0) {
		n += got;
		if (n == cap) {
			if (cap > SIZE_MAX / 2 || (nb = realloc(b, cap * 2)) == NULL) {
				free(b);
				return qvl_fail(err, "%s: out of memory", name);
			}
			b = nb;
			cap *= 2;
		}
	}
	if (ferror(f)) {
		free(b);
		return qvl_fail_errno(err, "%s: read error", name);
	}
	*buf = b;
	*len = n;
	return 0;
}

int
qvl_image_load(const char *path, const qvl_image_limits *lim, qvl_image *img, qvl_err *err)
{
	int is_stdin = strcmp(path, "-") == 0;
	const char *name = is_stdin ? "<stdin>" : path;
	FILE *f = is_stdin ? stdin : fopen(path, "rb");
	uint8_t *buf;
	size_t len;
	int rc;

	memset(img, 0, sizeof *img);
	if (f == NULL)
		return qvl_fail_errno(err, "%s", path);
	rc = qvl_read_all(f, name, &buf, &len, err);
	if (!is_stdin)
		fclose(f);
	if (rc < 0)
		return -1;
	rc = qvl_image_decode(buf, len, name, lim, img, err);
	free(buf);
	return rc;
}

/* ---- PNG writing ---- */

struct png_wctx {
	char msg[256];
};

static void
png_w_error(png_structp png, png_const_charp msg)
{
	struct png_wctx *c = png_get_error_ptr(png);

	snprintf(c->msg, sizeof c->msg, "%s", msg);
	png_longjmp(png, 1);
}

int
qvl_image_write_png(FILE *f, const qvl_image *img, qvl_err *err)
{
	struct png_wctx ctx = { .msg = "" };
	png_structp png;
	png_infop info = NULL;

	png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, png_w_error, png_on_warning);
	if (png == NULL || (info = png_create_info_struct(png)) == NULL) {
		png_destroy_write_struct(&png, NULL);
		return qvl_fail(err, "png: out of memory");
	}
	if (setjmp(png_jmpbuf(png))) {
		png_destroy_write_struct(&png, &info);
		if (errno && ferror(f))
			return qvl_fail_errno(err, "png: write error");
		return qvl_fail(err, "png: %s", ctx.msg);
	}
	png_init_io(png, f);
	png_set_compression_level(png, 6);
	png_set_IHDR(png, info, (png_uint_32)img->w, (png_uint_32)img->h, 8, PNG_COLOR_TYPE_RGB,
	    PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	if (img->dpi_x > 0 && img->dpi_y > 0)
		png_set_pHYs(png, info, (png_uint_32)(img->dpi_x / 0.0254 + 0.5),
		    (png_uint_32)(img->dpi_y / 0.0254 + 0.5), PNG_RESOLUTION_METER);
	png_write_info(png, info);
	for (int y = 0; y < img->h; y++)
		png_write_row(png, img->rgb + (size_t)img->w * 3 * y);
	png_write_end(png, info);
	png_destroy_write_struct(&png, &info);
	if (ferror(f))
		return qvl_fail_errno(err, "png: write error");
	return 0;
}
