/* test_image.c: decoding every PNG/JPEG kind of tests/data/resize exactly as Pillow + to_rgb
 * (manifest "decode" lines), densities, bad inputs rejected with messages, the pixel limit
 * checked before allocating, splitting concatenated images, PNG writing. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/image.h"
#include "test.h"

#define FIX TEST_DATA "/resize"

static int
slurp(const char *path, uint8_t **buf, size_t *len)
{
	FILE *f = fopen(path, "rb");
	qvl_err err;
	int rc;

	if (f == NULL)
		return -1;
	rc = qvl_read_all(f, path, buf, len, &err);
	fclose(f);
	return rc;
}

static void
test_decode_fixtures(void)
{
	FILE *f = fopen(FIX "/manifest.txt", "r");
	char line[512], src[128], exp[128];
	double dx, dy;
	int n = 0, exact = 0;

	CHECK(f != NULL, "manifest");
	if (f == NULL)
		return;
	while (fgets(line, sizeof line, f)) {
		qvl_image got, want;
		char p[300];
		qvl_err err;

		if (sscanf(line, "decode %127s %127s %lf %lf", src, exp, &dx, &dy) != 4)
			continue;
		n++;
		snprintf(p, sizeof p, FIX "/%s", src);
		if (qvl_image_load(p, NULL, &got, &err) < 0) {
			CHECK(0, "decode %s: %s", src, err.msg);
			continue;
		}
		snprintf(p, sizeof p, FIX "/%s", exp);
		if (qvl_image_load(p, NULL, &want, &err) < 0) {
			CHECK(0, "decode %s: %s", exp, err.msg);
			qvl_image_free(&got);
			continue;
		}
		if (got.w == want.w && got.h == want.h) {
			size_t d = 0;

			for (size_t i = 0; i < (size_t)got.w * got.h * 3; i++)
				d += got.rgb[i] != want.rgb[i];
			CHECK(d == 0, "decode %s: %zu bytes differ from Pillow", src, d);
			exact += d == 0;
		} else
			CHECK(0, "decode %s: %dx%d, Pillow %dx%d", src, got.w, got.h, want.w, want.h);
		CHECK(fabs(got.dpi_x - dx) < 0.01 && fabs(got.dpi_y - dy) < 0.01,
		    "decode %s: dpi %.4f %.4f, Pillow %.4f %.4f", src, got.dpi_x, got.dpi_y, dx, dy);
		qvl_image_free(&got);
		qvl_image_free(&want);
	}
	fclose(f);
	CHECK(n >= 30 && exact == n, "%d/%d decodes identical to Pillow", exact, n);
}

static void
expect_fail(const char *what, const void *buf, size_t len, const qvl_image_limits *lim,
    const char *needle)
{
	qvl_image img;
	qvl_err err = { "" };
	int rc = qvl_image_decode(buf, len, what, lim, &img, &err);

	CHECK(rc < 0 && strstr(err.msg, needle) != NULL, "%s rejected: \"%s\"", what, err.msg);
	if (rc == 0)
		qvl_image_free(&img);
}

/* A PNG header for w x h RGB with no pixel data after it. */
static size_t
png_header(uint8_t *p, uint32_t w, uint32_t h)
{
	static const uint8_t sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
	uint8_t ihdr[13] = { w >> 24, w >> 16, w >> 8, w, h >> 24, h >> 16, h >> 8, h, 8, 2,
		0, 0, 0 };
	uint32_t crc = 0xffffffffu;

	memcpy(p, sig, 8);
	p[8] = 0, p[9] = 0, p[10] = 0, p[11] = 13;
	memcpy(p + 12, "IHDR", 4);
	memcpy(p + 16, ihdr, 13);
	for (int i = 12; i < 29; i++) {	/* CRC-32 over type and data */
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = crc & 1 ? (crc >> 1) ^ 0xedb88320u : crc >> 1;
	}
	crc ^= 0xffffffffu;
	p[29] = crc >> 24, p[30] = crc >> 16, p[31] = crc >> 8, p[32] = crc;
	return 33;
}

static void
test_bad(void)
{
	uint8_t *png = NULL, *jpg = NULL, hdr[64];
	size_t plen = 0, jlen = 0, n;
	qvl_image_limits small = { .max_pixels = 100 };
	qvl_image img;
	qvl_err err;

	CHECK(slurp(FIX "/rgb8.png", &png, &plen) == 0, "read rgb8.png");
	CHECK(slurp(FIX "/j420.jpg", &jpg, &jlen) == 0, "read j420.jpg");
	if (png == NULL || jpg == NULL)
		goto out;
	expect_fail("empty", "", 0, NULL, "empty");
	expect_fail("text.png", "hello, world\n", 13, NULL, "not a PNG or JPEG");
	expect_fail("truncated.png", png, plen / 2, NULL, "truncated");
	expect_fail("truncated.png (header)", png, 20, NULL, "bad PNG");
	expect_fail("truncated.jpg", jpg, jlen / 2, NULL, "truncated");
	expect_fail("truncated.jpg (header)", jpg, 40, NULL, "bad JPEG");
	expect_fail("over the limit", png, plen, &small, "over the limit");
	expect_fail("jpeg over the limit", jpg, jlen, &small, "over the limit");
	n = png_header(hdr, 0, 10);
	expect_fail("zero width", hdr, n, NULL, "zero size");
	/* 100000 x 100000 = 10^10 pixels: refused on the header, before any allocation */
	n = png_header(hdr, 100000, 100000);
	expect_fail("huge", hdr, n, NULL, "over the limit");
	/* 100000 x 1 passes the limit; no data follows, so it is truncated */
	n = png_header(hdr, 100000, 1);
	expect_fail("100000x1 without data", hdr, n, NULL, "truncated");
	/* a corrupted byte in the compressed data */
	{
		uint8_t *bad = malloc(plen);

		memcpy(bad, png, plen);
		bad[plen - 30] ^= 0x55;
		expect_fail("corrupt.png", bad, plen, NULL, "bad PNG");
		free(bad);
	}
	/* 1x1 decodes */
	{
		qvl_image one;
		FILE *f = tmpfile();
		uint8_t *b = NULL;
		size_t bl = 0;

		CHECK(qvl_image_alloc(&one, 1, 1, &err) == 0, "alloc 1x1");
		one.rgb[0] = 10, one.rgb[1] = 20, one.rgb[2] = 30;
		CHECK(f && qvl_image_write_png(f, &one, &err) == 0, "write 1x1 png");
		if (f) {
			rewind(f);
			qvl_read_all(f, "tmp", &b, &bl, &err);
			fclose(f);
		}
		CHECK(b && qvl_image_decode(b, bl, "1x1", NULL, &img, &err) == 0 && img.w == 1 &&
		    img.h == 1 && img.rgb[0] == 10 && img.rgb[2] == 30, "1x1 round trip");
		if (b)
			qvl_image_free(&img);
		free(b);
		qvl_image_free(&one);
	}
out:
	free(png);
	free(jpg);
}

static void
test_split(void)
{
	uint8_t *png = NULL, *jpg = NULL, *jp = NULL, *cat;
	size_t plen = 0, jlen = 0, jplen = 0, n = 0;
	qvl_err err;

	if (slurp(FIX "/rgb8.png", &png, &plen) < 0 || slurp(FIX "/j420.jpg", &jpg, &jlen) < 0 ||
	    slurp(FIX "/jprog.jpg", &jp, &jplen) < 0) {
		CHECK(0, "read split inputs");
		goto out;
	}
	cat = malloc(plen + jlen + jplen);
	memcpy(cat, jp, jplen);
	memcpy(cat + jplen, png, plen);
	memcpy(cat + jplen + plen, jpg, jlen);
	CHECK(qvl_image_split(cat, plen + jlen + jplen, &n, &err) == 0 && n == jplen,
	    "split: progressive JPEG %zu of %zu", n, jplen);
	CHECK(qvl_image_split(cat + jplen, plen + jlen, &n, &err) == 0 && n == plen,
	    "split: PNG %zu of %zu", n, plen);
	CHECK(qvl_image_split(cat + jplen + plen, jlen, &n, &err) == 0 && n == jlen,
	    "split: JPEG %zu of %zu", n, jlen);
	CHECK(qvl_image_split(cat + jplen + plen, jlen - 5, &n, &err) < 0, "split: cut JPEG: %s",
	    err.msg);
	CHECK(qvl_image_split(cat + jplen, plen - 3, &n, &err) < 0, "split: cut PNG: %s",
	    err.msg);
	free(cat);
out:
	free(png);
	free(jpg);
	free(jp);
}

int
main(int argc, char **argv)
{
	TEST_INIT(argc, argv);
	test_decode_fixtures();
	test_bad();
	test_split();
	return TEST_DONE();
}
