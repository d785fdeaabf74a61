/* qvl-resize: PNG/JPEG images (or video frames) to the model's normalized patches,
 * pixel_values, exactly as qwen-vl-utils + the Hugging Face processor make them. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "../lib/image.h"
#include "../lib/patches.h"
#include "../lib/resize.h"
#include "../lib/stream.h"
#include "util.h"

static _Noreturn void
usage(FILE *f, int status)
{
	fprintf(f,
	    "usage: qvl-resize [-kv] [-m DIR] [-o FILE] [--min-pixels N] [--max-pixels N]\n"
	    "                  [--min-tokens N] [--max-tokens N] [--size WxH] [--dpi FROM:TO|auto]\n"
	    "                  [--png FILE] [--png-dir DIR] [--max-input-pixels N] IMAGE...\n"
	    "       qvl-resize --info [--assume-size WxH] [options] [IMAGE...]\n"
	    "       qvl-resize --video [--fps F] [--input-fps R] [options] FRAMES...\n");
	exit(status);
}

enum {
	OPT_MIN_PIXELS = 256, OPT_MAX_PIXELS, OPT_MIN_TOKENS, OPT_MAX_TOKENS, OPT_SIZE, OPT_DPI,
	OPT_PNG, OPT_PNG_DIR, OPT_INFO, OPT_ASSUME, OPT_MAX_INPUT, OPT_VIDEO, OPT_FPS,
	OPT_INPUT_FPS
};

static struct {
	const char *out, *model, *png, *png_dir;
	int info, keep, verbose, video;
	int64_t assume_w, assume_h, size_w, size_h;
	int64_t min_pixels, max_pixels;	/* -1: from the preprocessor config */
	double dpi_from, dpi_to;
	int dpi_auto;
	double fps, input_fps;
	qvl_image_limits lim;
	qvl_preproc pp;
	int factor;
	int failed;
} opt = { .min_pixels = -1, .max_pixels = -1, .fps = QVL_VIDEO_FPS };

static FILE *out;

static void
parse_size(const char *name, const char *s, int64_t *w, int64_t *h)
{
	char *end;
	long long a, b;

	errno = 0;
	a = strtoll(s, &end, 10);
	if (end == s || (*end != 'x' && *end != 'X'))
		die(EXIT_USAGE, "%s: want WxH, not '%s'", name, s);
	s = end + 1;
	b = strtoll(s, &end, 10);
	if (end == s || *end != '\0' || errno || a <= 0 || b <= 0 || a > (1 << 30) || b > (1 << 30))
		die(EXIT_USAGE, "%s: want WxH with positive sizes, not '%s'", name, s);
	*w = a;
	*h = b;
}

static void
parse_dpi(const char *s)
{
	char *colon;

	if (strcmp(s, "auto") == 0) {
		opt.dpi_auto = 1;
		return;
	}
	colon = strchr(s, ':');
	if (colon == NULL)
		die(EXIT_USAGE, "--dpi: want FROM:TO (e.g. 300:72) or auto, not '%s'", s);
	*colon = '\0';
	opt.dpi_from = cmd_parse_double("--dpi", s, 1e-3, 1e6);
	opt.dpi_to = cmd_parse_double("--dpi", colon + 1, 1e-3, 1e6);
}

/* Writes img as a PNG at path as -o is written: whole or not at all, a device or fifo in
 * place (out_open). */
static void
write_png(const char *path, const qvl_image *img)
{
	qvl_err err;
	FILE *f = out_open(path);

	if (qvl_image_write_png(f, img, &err) < 0)
		out_fail(f, &err);
	out_commit(f);
}

/* The --png-dir name of an input: DIR/<basename without extension>[-N].png */
static void
png_path(char *buf, size_t len, const char *src, int index)
{
	const char *base = strrchr(src, '/');
	const char *dot;
	int n;

	base = base ? base + 1 : src;
	if (strcmp(src, "-") == 0)
		base = "stdin";
	dot = strrchr(base, '.');
	n = dot && dot != base ? (int)(dot - base) : (int)strlen(base);
	if (index >= 0)
		snprintf(buf, len, "%s/%.*s-%04d.png", opt.png_dir, n, base, index);
	else
		snprintf(buf, len, "%s/%.*s.png", opt.png_dir, n, base);
}

/* Target size of one image: --size, else the (DPI-scaled) decoded size, through smart_resize.
 * The DPI scale only changes the size smart_resize sees: the resampling is one pass from the
 * original pixels. */
static int
plan(const char *src, int w, int h, double dpi_x, double dpi_y, int64_t *rw, int64_t *rh,
    double *sx, double *sy, qvl_err *err)
{
	int64_t vw = w, vh = h;

	*sx = *sy = 1;
	if (opt.dpi_from > 0) {
		*sx = *sy = opt.dpi_to / opt.dpi_from;
	} else if (opt.dpi_auto) {
		/* One decision for both axes, each from its own density: a 300x150 dpi fax
		 * scaled on one axis only would come out stretched twice over. */
		if (dpi_x > 150 || dpi_y > 150) {
			*sx = 72 / dpi_x;
			*sy = 72 / dpi_y;
		}
		if (opt.verbose)
			warnx("%s: density %.0fx%.0f dpi%s", src, dpi_x, dpi_y,
			    *sx != 1 || *sy != 1 ? ", scaling to 72 dpi" :
			    dpi_x > 0 ? ", kept" : " (unknown), kept");
	}
	qvl_dpi_scaled_size(w, h, *sx, *sy, &vw, &vh);
	if (opt.size_w > 0) {
		vw = opt.size_w;
		vh = opt.size_h;
	}
	if (qvl_smart_resize(vh, vw, opt.factor, opt.pp.min_pixels, opt.pp.max_pixels, rh, rw,
	    err) < 0)
		return qvl_err_prefix(err, "%s", src);
	return 0;
}

static json_t *
pair(double a, double b, int integer)
{
	if (integer)
		return json_pack("[II]", (json_int_t)a, (json_int_t)b);
	return json_pack("[ff]", a, b);
}

static json_t *
image_meta(const char *src, const char *kind, int w, int h, int64_t rw, int64_t rh,
    const int64_t grid[3])
{
	json_t *m = json_object();
	int64_t ms = opt.pp.merge_size;

	json_object_set_new(m, "source", json_string(strcmp(src, "-") ? src : "<stdin>"));
	json_object_set_new(m, "kind", json_string(kind));
	json_object_set_new(m, "orig_size", pair(w, h, 1));
	json_object_set_new(m, "resized_size", pair((double)rw, (double)rh, 1));
	json_object_set_new(m, "grid_thw", json_pack("[III]", (json_int_t)grid[0],
	    (json_int_t)grid[1], (json_int_t)grid[2]));
	/* resized pixel (x, y) * scale = original pixel: what qvl-boxes maps boxes back with */
	json_object_set_new(m, "scale", pair((double)w / rw, (double)h / rh, 0));
	json_object_set_new(m, "tokens", json_integer((json_int_t)(grid[0] * grid[1] * grid[2] /
	    (ms * ms))));
	return m;
}

static void
emit(const float *pv, const int64_t grid[3], json_t *meta)
{
	qvl_tensor t = { .dtype = QVL_F32, .ndim = 2 };
	qvl_err err;

	t.shape[0] = grid[0] * grid[1] * grid[2];
	t.shape[1] = (int64_t)3 * opt.pp.temporal_patch_size * opt.pp.patch_size *
	    opt.pp.patch_size;
	t.data = (void *)pv;
	t.nbytes = (size_t)t.shape[0] * (size_t)t.shape[1] * sizeof(float);
	if (qvl_write_tensor(out, "pixel_values", &t, meta, &err) < 0)
		out_fail(out, &err);
}

static void
info_line(json_t *meta)
{
	char *s = json_dumps(meta, JSON_COMPACT);

	if (s == NULL)
		die(EXIT_BADINPUT, "out of memory");
	if (fprintf(out, "%s\n", s) < 0) {
		if (errno == EPIPE)
			exit(0);
		die(EXIT_BADINPUT, "%s: write error: %s", out_name(out), strerror(errno));
	}
	free(s);
}

/* An image failed: without -k that ends the program, with -k it is skipped. */
static void
bad_input(const qvl_err *err)
{
	if (!opt.keep)
		die_err(EXIT_BADINPUT, err);
	warnx("%s (skipped)", err->msg);
	opt.failed = 1;
}

static void
do_image(const char *src)
{
	qvl_image img, rs;
	qvl_err err;
	int64_t rw, rh, grid[3];
	double sx, sy;
	float *pv;
	json_t *meta;

	if (qvl_image_load(src, &opt.lim, &img, &err) < 0) {
		bad_input(&err);
		return;
	}
	if (plan(src, img.w, img.h, img.dpi_x, img.dpi_y, &rw, &rh, &sx, &sy, &err) < 0) {
		qvl_image_free(&img);
		bad_input(&err);
		return;
	}
	grid[0] = 1;
	grid[1] = rh / opt.pp.patch_size;
	grid[2] = rw / opt.pp.patch_size;
	meta = image_meta(src, "image", img.w, img.h, rw, rh, grid);
	/* the original's density, for mapping boxes to PDF points: --dpi FROM:TO says it is FROM */
	if (opt.dpi_from > 0)
		json_object_set_new(meta, "dpi", pair(opt.dpi_from, opt.dpi_from, 0));
	else if (img.dpi_x > 0)
		json_object_set_new(meta, "dpi", pair(img.dpi_x, img.dpi_y, 0));
	if (sx != 1 || sy != 1)
		json_object_set_new(meta, "dpi_scale", pair(sx, sy, 0));
	if (opt.verbose)
		warnx("%s: %dx%d -> %lldx%lld, %lld tokens", src, img.w, img.h, (long long)rw,
		    (long long)rh, (long long)json_integer_value(json_object_get(meta, "tokens")));
	if (opt.info) {
		info_line(meta);
		json_decref(meta);
		qvl_image_free(&img);
		return;
	}
	if (qvl_resize_bicubic(&img, (int)rw, (int)rh, &rs, &err) < 0)
		die_err(EXIT_BADINPUT, &err);
	qvl_image_free(&img);
	if (opt.png)
		write_png(opt.png, &rs);
	if (opt.png_dir) {
		char p[PATH_MAX];

		png_path(p, sizeof p, src, -1);
		write_png(p, &rs);
	}
	if (qvl_patchify(&opt.pp, &rs, 1, &pv, grid, &err) < 0)
		die_err(EXIT_BADINPUT, &err);
	qvl_image_free(&rs);
	emit(pv, grid, meta);
	free(pv);
	json_decref(meta);
}

/* ---- video ---- */

struct frame_src {
	const uint8_t *data;
	size_t len;
	const char *file;
	int index;	/* image index inside that file (concatenated images) */
};

struct inputs {
	uint8_t **bufs;
	int nbufs;
	struct frame_src *f;
	size_t n, cap;
};

/* Reads every input and splits it into images (ffmpeg's image2pipe concatenates them). */
static void
read_frames(char **paths, int n, struct inputs *in)
{
	qvl_err err;

	memset(in, 0, sizeof *in);
	in->bufs = calloc((size_t)n, sizeof *in->bufs);
	if (in->bufs == NULL)
		die(EXIT_BADINPUT, "out of memory");
	for (int i = 0; i < n; i++) {
		FILE *f = in_open(paths[i]);
		uint8_t *b;
		size_t len, off = 0;
		int k = 0;

		if (qvl_read_all(f, in_name(paths[i]), &b, &len, &err) < 0)
			die_err(EXIT_BADINPUT, &err);
		if (f != stdin)
			fclose(f);
		in->bufs[in->nbufs++] = b;
		if (len == 0)
			die(EXIT_BADINPUT, "%s: empty file", in_name(paths[i]));
		while (off < len) {
			size_t flen;

			if (qvl_image_split(b + off, len - off, &flen, &err) < 0)
				die(EXIT_BADINPUT, "frame %zu (%s): %s", in->n, in_name(paths[i]),
				    err.msg);
			if (in->n == in->cap) {
				in->cap = in->cap ? in->cap * 2 : 64;
				in->f = realloc(in->f, in->cap * sizeof *in->f);
				if (in->f == NULL)
					die(EXIT_BADINPUT, "out of memory");
			}
			in->f[in->n++] = (struct frame_src){ b + off, flen, in_name(paths[i]), k++ };
			off += flen;
		}
	}
}

static void
decode_frame(const struct inputs *in, size_t i, qvl_image *img)
{
	qvl_err err;
	char name[PATH_MAX + 64];

	snprintf(name, sizeof name, "frame %zu (%s)", i, in->f[i].file);
	if (qvl_image_decode(in->f[i].data, in->f[i].len, name, &opt.lim, img, &err) < 0)
		die_err(EXIT_BADINPUT, &err);
}

static void
do_video(char **paths, int npaths)
{
	struct inputs in;
	qvl_image *frames;
	int64_t *idx, rw = 0, rh = 0, grid[3];
	int64_t n, ow = 0, oh = 0;
	double fps = opt.fps, min_px, max_px;
	float *pv;
	json_t *meta;
	qvl_err err;

	read_frames(paths, npaths, &in);
	if (in.n == 0)
		die(EXIT_BADINPUT, "video: no frames");
	idx = malloc(sizeof *idx * in.n);
	frames = calloc(in.n, sizeof *frames);
	if (idx == NULL || frames == NULL)
		die(EXIT_BADINPUT, "out of memory");
	if (opt.input_fps > 0) {
		/* (b) every frame of a video at input_fps: sample as fetch_video does for a file */
		const char *env = getenv("VIDEO_MAX_PIXELS");
		double total = (double)QVL_VIDEO_TOTAL_PIXELS;
		char *end;

		if (env != NULL) {
			total = strtod(env, &end);
			if (end == env || *end != '\0' || !(total >= 1 && total <= 1e15))
				die(EXIT_USAGE, "VIDEO_MAX_PIXELS: '%s' is not a number of pixels from "
				    "1 to 1e15", env);
		}

		if ((n = qvl_video_sample((int64_t)in.n, opt.input_fps, opt.fps, idx, &err)) < 0)
			die_err(EXIT_BADINPUT, &err);
		total = (double)(int64_t)total;
		/* a given minimum also raises the floor of the maximum, as in fetch_video */
		qvl_video_budget(n, total, opt.min_pixels > 0 ? (double)opt.min_pixels : 0,
		    opt.max_pixels > 0 ? (double)opt.max_pixels : 0, &min_px, &max_px);
		fps = (double)n / (double)in.n * opt.input_fps;
		if (opt.verbose)
			warnx("video: %zu frames at %g fps -> %lld frames at %g fps", in.n,
			    opt.input_fps, (long long)n, fps);
	} else {
		/* (a) a list of frames: each is fetched as an image, all are used */
		n = (int64_t)in.n;
		for (int64_t i = 0; i < n; i++)
			idx[i] = i;
		min_px = (double)opt.pp.min_pixels;
		max_px = (double)opt.pp.max_pixels;
	}
	for (int64_t i = 0; i < n; i++) {
		qvl_image img, rs;
		int64_t fw, fh;

		decode_frame(&in, (size_t)idx[i], &img);
		if (i == 0) {
			ow = img.w;
			oh = img.h;
		}
		if (opt.size_w > 0) {
			if (qvl_smart_resize(opt.size_h, opt.size_w, opt.factor, opt.pp.min_pixels,
			    opt.pp.max_pixels, &fh, &fw, &err) < 0)
				die_err(EXIT_USAGE, &err);
		} else if (qvl_smart_resize_d(img.h, img.w, opt.factor, min_px, max_px, &fh, &fw,
		    &err) < 0)
			die(EXIT_BADINPUT, "frame %lld: %s", (long long)idx[i], err.msg);
		if (opt.input_fps > 0 && i > 0) {
			/* one tensor for the whole video: all frames get the first frame's size */
			if (img.w != ow || img.h != oh)
				warnx("frame %lld is %dx%d, frame 0 %lldx%lld: resized to %lldx%lld",
				    (long long)idx[i], img.w, img.h, (long long)ow, (long long)oh,
				    (long long)rw, (long long)rh);
			fw = rw;
			fh = rh;
		}
		if (qvl_resize_bicubic(&img, (int)fw, (int)fh, &rs, &err) < 0)
			die_err(EXIT_BADINPUT, &err);
		qvl_image_free(&img);
		if (i == 0) {
			rw = fw;
			rh = fh;
		} else if (fw != rw || fh != rh) {
			/* The HF processor resizes every frame of a video to the size of the first:
			 * a frame the list path sized differently is resampled a second time. */
			qvl_image again;

			if (opt.verbose)
				warnx("frame %lld: %lldx%lld, frame 0 %lldx%lld: resampled again to "
				    "the first frame's size, as the reference does", (long long)i,
				    (long long)fw, (long long)fh, (long long)rw, (long long)rh);
			if (qvl_resize_bicubic(&rs, (int)rw, (int)rh, &again, &err) < 0)
				die_err(EXIT_BADINPUT, &err);
			qvl_image_free(&rs);
			rs = again;
		}
		frames[i] = rs;
		if (opt.png_dir) {
			char p[PATH_MAX];

			png_path(p, sizeof p, "frame", (int)i);
			write_png(p, &frames[i]);
		}
	}
	if (opt.png)
		write_png(opt.png, &frames[0]);
	grid[0] = (n + opt.pp.temporal_patch_size - 1) / opt.pp.temporal_patch_size;
	grid[1] = rh / opt.pp.patch_size;
	grid[2] = rw / opt.pp.patch_size;
	meta = image_meta(npaths == 1 ? paths[0] : paths[0], "video", (int)ow, (int)oh, rw, rh,
	    grid);
	json_object_set_new(meta, "frames", json_integer((json_int_t)n));
	json_object_set_new(meta, "fps", json_real(fps));
	json_object_set_new(meta, "second_per_grid_t",
	    json_real(opt.pp.temporal_patch_size / fps));
	if (opt.input_fps > 0) {
		json_t *a = json_array();

		for (int64_t i = 0; i < n; i++)
			json_array_append_new(a, json_integer((json_int_t)idx[i]));
		json_object_set_new(meta, "frame_indices", a);
		json_object_set_new(meta, "input_frames", json_integer((json_int_t)in.n));
	}
	if (opt.info)
		info_line(meta);
	else {
		if (qvl_patchify(&opt.pp, frames, (int)n, &pv, grid, &err) < 0)
			die_err(EXIT_BADINPUT, &err);
		emit(pv, grid, meta);
		free(pv);
	}
	json_decref(meta);
	for (int64_t i = 0; i < n; i++)
		qvl_image_free(&frames[i]);
	free(frames);
	free(idx);
	for (int i = 0; i < in.nbufs; i++)
		free(in.bufs[i]);
	free(in.bufs);
	free(in.f);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "min-pixels", required_argument, NULL, OPT_MIN_PIXELS },
		{ "max-pixels", required_argument, NULL, OPT_MAX_PIXELS },
		{ "min-tokens", required_argument, NULL, OPT_MIN_TOKENS },
		{ "max-tokens", required_argument, NULL, OPT_MAX_TOKENS },
		{ "size", required_argument, NULL, OPT_SIZE },
		{ "dpi", required_argument, NULL, OPT_DPI },
		{ "png", required_argument, NULL, OPT_PNG },
		{ "png-dir", required_argument, NULL, OPT_PNG_DIR },
		{ "info", no_argument, NULL, OPT_INFO },
		{ "assume-size", required_argument, NULL, OPT_ASSUME },
		{ "max-input-pixels", required_argument, NULL, OPT_MAX_INPUT },
		{ "video", no_argument, NULL, OPT_VIDEO },
		{ "fps", required_argument, NULL, OPT_FPS },
		{ "input-fps", required_argument, NULL, OPT_INPUT_FPS },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const long maxpx = 1L << 40;
	qvl_err err;
	int c;

	cmd_init(argv[0]);
	while ((c = getopt_long(argc, argv, "hkm:o:v", longopts, NULL)) != -1) {
		switch (c) {
		case 'k': opt.keep = 1; break;
		case 'm': opt.model = optarg; break;
		case 'o': opt.out = optarg; break;
		case 'v': opt.verbose = 1; break;
		case OPT_MIN_PIXELS:
			opt.min_pixels = cmd_parse_long("--min-pixels", optarg, 1, maxpx);
			break;
		case OPT_MAX_PIXELS:
			opt.max_pixels = cmd_parse_long("--max-pixels", optarg, 1, maxpx);
			break;
		case OPT_MIN_TOKENS:
			opt.min_pixels = cmd_parse_long("--min-tokens", optarg, 1, 1L << 30) * 784;
			break;
		case OPT_MAX_TOKENS:
			opt.max_pixels = cmd_parse_long("--max-tokens", optarg, 1, 1L << 30) * 784;
			break;
		case OPT_SIZE: parse_size("--size", optarg, &opt.size_w, &opt.size_h); break;
		case OPT_DPI: parse_dpi(optarg); break;
		case OPT_PNG: opt.png = optarg; break;
		case OPT_PNG_DIR: opt.png_dir = optarg; break;
		case OPT_INFO: opt.info = 1; break;
		case OPT_ASSUME: parse_size("--assume-size", optarg, &opt.assume_w, &opt.assume_h); break;
		case OPT_MAX_INPUT:
			opt.lim.max_pixels = cmd_parse_long("--max-input-pixels", optarg, 1, maxpx);
			break;
		case OPT_VIDEO: opt.video = 1; break;
		case OPT_FPS: opt.fps = cmd_parse_double("--fps", optarg, 1e-3, 1e4); break;
		case OPT_INPUT_FPS:
			opt.input_fps = cmd_parse_double("--input-fps", optarg, 1e-3, 1e4);
			break;
		case 'h':
			usage(stdout, 0);
		default:
			usage(stderr, EXIT_USAGE);
		}
	}
	argc -= optind;
	argv += optind;

	/* -m DIR or $QVL_MODEL: the model's preprocessor settings; neither: the defaults */
	if (opt.model == NULL && getenv("QVL_MODEL") && *getenv("QVL_MODEL"))
		opt.model = getenv("QVL_MODEL");
	if (opt.model) {
		if (qvl_preproc_load(opt.model, &opt.pp, &err) < 0)
			die_err(EXIT_BADINPUT, &err);
	} else
		qvl_preproc_default(&opt.pp);
	if (opt.min_pixels > 0)
		opt.pp.min_pixels = opt.min_pixels;
	if (opt.max_pixels > 0)
		opt.pp.max_pixels = opt.max_pixels;
	opt.factor = qvl_preproc_factor(&opt.pp);
	if (opt.pp.min_pixels > opt.pp.max_pixels) {
		/* in tokens too, since --max-tokens is how most people set the budget */
		int64_t tok = (int64_t)opt.factor * opt.factor;
		die(EXIT_USAGE, "max pixels %lld (%lld tokens) is under min pixels %lld (%lld "
		    "tokens)%s", (long long)opt.pp.max_pixels, (long long)(opt.pp.max_pixels / tok),
		    (long long)opt.pp.min_pixels, (long long)(opt.pp.min_pixels / tok),
		    opt.min_pixels > 0 ? "" : ", the preprocessor's minimum");
	}
	if (opt.assume_w > 0 && !opt.info)
		die(EXIT_USAGE, "--assume-size needs --info");
	if (opt.input_fps > 0 && !opt.video)
		die(EXIT_USAGE, "--input-fps needs --video");
	if (opt.video && (opt.dpi_from > 0 || opt.dpi_auto))
		die(EXIT_USAGE, "--dpi applies to images, not --video");
	if (opt.png && !opt.video && argc > 1)
		die(EXIT_USAGE, "--png takes one image; use --png-dir for several");
	if (argc == 0 && !(opt.info && opt.assume_w > 0))
		usage(stderr, EXIT_USAGE);
	/* "-" is standard output, which can take the PNG only when -o has the records */
	if (opt.png && strcmp(opt.png, "-") == 0 && (opt.out == NULL || strcmp(opt.out, "-") == 0))
		die(EXIT_USAGE, "--png -: standard output has the records; give -o FILE for them");
	if (opt.png_dir && strcmp(opt.png_dir, "-") == 0)
		die(EXIT_USAGE, "--png-dir -: a directory, not standard output");
	if (opt.keep && opt.video)
		die(EXIT_USAGE, "-k skips images; the frames of a --video are one tensor");
	if (opt.png_dir && !opt.info && mkdir(opt.png_dir, 0777) < 0 && errno != EEXIST)
		die(EXIT_BADINPUT, "%s: %s", opt.png_dir, strerror(errno));

	out = out_open(opt.out);
	if (opt.info && opt.assume_w > 0) {
		int64_t rw, rh, grid[3];
		double sx, sy;
		json_t *meta;

		if (plan("assumed", (int)opt.assume_w, (int)opt.assume_h, 0, 0, &rw, &rh, &sx, &sy,
		    &err) < 0)
			die_err(EXIT_BADINPUT, &err);
		grid[0] = 1;
		grid[1] = rh / opt.pp.patch_size;
		grid[2] = rw / opt.pp.patch_size;
		meta = image_meta("assumed", "image", (int)opt.assume_w, (int)opt.assume_h, rw, rh,
		    grid);
		/* what an image of that size without a density would get (do_image) */
		if (opt.dpi_from > 0)
			json_object_set_new(meta, "dpi", pair(opt.dpi_from, opt.dpi_from, 0));
		if (sx != 1 || sy != 1)
			json_object_set_new(meta, "dpi_scale", pair(sx, sy, 0));
		info_line(meta);
		json_decref(meta);
	} else if (opt.video)
		do_video(argv, argc);
	else
		for (int i = 0; i < argc; i++)
			do_image(argv[i]);
	out_commit(out);
	return opt.failed ? EXIT_BADINPUT : 0;
}
