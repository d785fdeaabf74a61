/* qvl-boxes: the boxes of a grounding answer, in pixels of the original image, as JSON lines
 * or TSV; optionally the image with the boxes drawn, and each box cut out. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "../lib/boxes.h"
#include "../lib/draw.h"
#include "../lib/image.h"
#include "util.h"

#define MAX_IMAGES 256
#define INPUT_LIMIT ((size_t)256 << 20)

static void
usage(FILE *f, int status)
{
	fprintf(f,
	    "usage: qvl-boxes [--coords abs|norm1000] [--image FILE]... [--min-pixels N]\n"
	    "                 [--max-pixels N] [--dpi FROM:TO|auto] [--model-size WxH]\n"
	    "                 [--orig-size WxH] [--image-index N] [--units px|pt]\n"
	    "                 [--format json|tsv] [--draw OUT.png] [--crop DIR] [FILE]\n");
	exit(status);
}

struct opts {
	int coords;		/* -1: each format's own convention */
	const char *images[MAX_IMAGES];
	int nimages;
	int64_t min_pixels, max_pixels;
	double dpi_from, dpi_to;
	int dpi_auto;
	double model_w, model_h, orig_w, orig_h;
	int image_index;	/* 0-based, -1 = by the answer */
	int units_pt, tsv;
	const char *draw, *crop;
};

/* One image of an answer: what is known of its geometry, and its pixels once loaded. */
struct pic {
	const char *source;	/* as the output names it */
	const char *path;	/* the file to read for drawing and crops */
	qvl_box_geom g;
	qvl_image img;
	int loaded;
	int number;		/* 1-based, for messages */
};

static void
parse_size(const char *opt, const char *s, double *w, double *h)
{
	char *end;
	long a, b;

	const char *hs;

	errno = 0;
	a = strtol(s, &end, 10);
	if (end == s || (*end != 'x' && *end != 'X') || errno != 0)
		die(EXIT_USAGE, "%s: want WxH, got '%s'", opt, s);
	hs = end + 1;
	b = strtol(hs, &end, 10);
	if (end == hs || *end != '\0' || errno != 0 || a <= 0 || b <= 0 || a > INT_MAX ||
	    b > INT_MAX)
		die(EXIT_USAGE, "%s: want WxH with positive sides, got '%s'", opt, s);
	*w = (double)a;
	*h = (double)b;
}

static void
parse_dpi(const char *s, struct opts *o)
{
	char *colon, buf[64];

	if (strcmp(s, "auto") == 0) {
		o->dpi_auto = 1;
		return;
	}
	if (strlen(s) >= sizeof buf || (colon = strchr(s, ':')) == NULL)
		die(EXIT_USAGE, "--dpi: want FROM:TO (e.g. 300:72) or auto, got '%s'", s);
	memcpy(buf, s, (size_t)(colon - s));
	buf[colon - s] = '\0';
	o->dpi_from = cmd_parse_double("--dpi", buf, 1e-3, 1e6);
	o->dpi_to = cmd_parse_double("--dpi", colon + 1, 1e-3, 1e6);
}

static char *
read_input(const char *path, size_t *len)
{
	FILE *f = in_open(path);
	char *buf = NULL, *p;
	size_t cap = 0, n = 0, r;

	for (;;) {
		if (n == cap) {
			if (cap >= INPUT_LIMIT)
				die(EXIT_BADINPUT, "%s: over %zu MiB of text", in_name(path),
				    INPUT_LIMIT >> 20);
			cap = cap ? 2 * cap : 65536;
			if ((p = realloc(buf, cap + 1)) == NULL)
				die(EXIT_BADINPUT, "%s: out of memory", in_name(path));
			buf = p;
		}
		r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (r == 0)
			break;
	}
	if (ferror(f))
		die(EXIT_BADINPUT, "%s: read: %s", in_name(path), strerror(errno));
	if (f != stdin)
		fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* One non-empty line of qvl-decode --json output. */
struct answer {
	json_t *obj;		/* NULL: the line is not an answer */
	size_t line;		/* 1-based */
	char why[JSON_ERROR_TEXT_LENGTH];
};

/* An answer of qvl-decode --json: an object with a "text" string and a key only qvl-decode
 * writes. */
static int
is_answer(const json_t *v)
{
	return json_is_object(v) && json_is_string(json_object_get(v, "text")) &&
	    (json_object_get(v, "images") != NULL || json_object_get(v, "finish_reason") != NULL ||
	    json_object_get(v, "tokens") != NULL);
}

/* The lines of qvl-decode --json output.  The input is that when any line is an answer:
 * then every other non-empty line is bad input (a batch cut short mid-line, messages mixed
 * in), not a reason to read the whole as a plain answer, where the escaped text of every
 * good line would be lost.  *n = 0 for a plain answer. */
static struct answer *
json_answers(const char *buf, size_t len, size_t *n)
{
	struct answer *v = NULL, *p;
	json_error_t jerr;
	size_t i = 0, end, line = 0, cap = 0, good = 0;

	*n = 0;
	while (i < len) {
		const char *nl = memchr(buf + i, '\n', len - i);

		end = nl ? (size_t)(nl - buf) : len;
		line++;
		while (i < end && strchr(" \t\r", buf[i]) != NULL)
			i++;
		if (i < end) {
			if (*n == cap) {
				cap = cap ? 2 * cap : 16;
				if ((p = realloc(v, cap * sizeof *v)) == NULL)
					die(EXIT_BADINPUT, "out of memory");
				v = p;
			}
			p = &v[(*n)++];
			p->line = line;
			p->obj = json_loadb(buf + i, end - i, JSON_ALLOW_NUL, &jerr);
			if (p->obj == NULL) {
				snprintf(p->why, sizeof p->why, "%s", jerr.text);
			} else if (!is_answer(p->obj)) {
				json_decref(p->obj);
				p->obj = NULL;
				snprintf(p->why, sizeof p->why, "no \"text\" of an answer");
			} else {
				good++;
			}
		}
		i = end + 1;
	}
	if (good == 0) {
		free(v);
		*n = 0;
		return NULL;
	}
	return v;
}

static void
free_answers(struct answer *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		json_decref(v[i].obj);
	free(v);
}

/* The image must be the one the boxes are about, whatever is output. */
static void
check_pic(const struct pic *p)
{
	if (p->loaded && p->g.orig_w > 0 && (p->g.orig_w != p->img.w || p->g.orig_h != p->img.h))
		die(EXIT_BADINPUT, "%s: the image is %dx%d but the boxes are for %gx%g", p->path,
		    p->img.w, p->img.h, p->g.orig_w, p->g.orig_h);
}

/* `why` says what the pixels are for, should there be no file to read. */
static void
load_pic(struct pic *p, const char *why)
{
	qvl_err err;

	if (p->loaded)
		return;
	if (p->path == NULL)
		die(EXIT_BADINPUT, "image %d: no file %s: give --image FILE for it (once per "
		    "image, in order)", p->number, why);
	if (qvl_image_load(p->path, NULL, &p->img, &err) < 0)
		die_err(EXIT_BADINPUT, &err);
	p->loaded = 1;
	check_pic(p);
}

/* The size qvl-resize makes of the original with the same options (its DPI scaling
 * included); the meta's dpi_scale says what that scaling was.  `what` names where the
 * size came from, for errors. */
static void
model_geometry(struct pic *p, const struct opts *o, const char *what)
{
	double sx = 1, sy = 1;
	int64_t mw, mh;
	qvl_err err;

	if (p->g.scale_x > 0) {
		sx = p->g.scale_x;
		sy = p->g.scale_y;
	} else if (o->dpi_from > 0) {
		sx = sy = o->dpi_to / o->dpi_from;
	} else if (o->dpi_auto) {
		if (p->g.dpi_x > 150)
			sx = 72 / p->g.dpi_x;
		if (p->g.dpi_y > 150)
			sy = 72 / p->g.dpi_y;
	}
	if (qvl_boxes_model_size((int64_t)p->g.orig_w, (int64_t)p->g.orig_h, sx, sy,
	    o->min_pixels, o->max_pixels, &mw, &mh, &err) < 0) {
		qvl_err_prefix(&err, "%s", what);
		die_err(EXIT_BADINPUT, &err);
	}
	p->g.model_w = (double)mw;
	p->g.model_h = (double)mh;
}

/* The size and density of the image file, where the meta does not give them. */
static void
image_geometry(struct pic *p)
{
	load_pic(p, "to read its size from");
	p->g.orig_w = p->img.w;
	p->g.orig_h = p->img.h;
	if (p->g.dpi_x == 0) {
		p->g.dpi_x = p->img.dpi_x;
		p->g.dpi_y = p->img.dpi_y;
	}
}

static void
box_tag(char *out, size_t size, const qvl_box *b, long index)
{
	/* The index always; the label too when the font can draw it. */
	if (b->label[0] != '\0' && qvl_draw_text_fits(b->label) && strlen(b->label) <= 40)
		snprintf(out, size, "%ld %s", index, b->label);
	else if (b->label[0] != '\0' && qvl_draw_text_fits(b->label))
		snprintf(out, size, "%ld %.37s...", index, b->label);
	else
		snprintf(out, size, "%ld", index);
}

static void
draw_boxes(struct pic *p, const qvl_box *boxes, const long *index, size_t n, const char *out)
{
	qvl_image img;
	qvl_err err;
	char tag[96];
	int thick, scale, x0, y0, x1, y1, k;
	size_t i;
	FILE *f;

	load_pic(p, "to draw on");
	img = p->img;
	qvl_draw_sizes(&img, &thick, &scale);
	/* Outlines first, then every tag, so no outline crosses a label. */
	for (i = 0; i < n; i++) {
		const qvl_box *b = &boxes[i];
		qvl_rgb c = qvl_draw_color((int)(index[i] - 1));

		if (b->kind == QVL_BOX_POINT) {
			qvl_draw_disc(&img, (int)floor(b->px[0]), (int)floor(b->px[1]), 2 * thick + 1,
			    c);
		} else if (b->kind == QVL_BOX_QUAD) {
			for (k = 0; k < 4; k++)
				qvl_draw_line(&img, (int)floor(b->quad_px[2 * k]),
				    (int)floor(b->quad_px[2 * k + 1]),
				    (int)floor(b->quad_px[(2 * k + 2) % 8]),
				    (int)floor(b->quad_px[(2 * k + 3) % 8]), thick, c);
		} else if (qvl_box_pixel_rect(b->px, img.w, img.h, &x0, &y0, &x1, &y1)) {
			qvl_draw_outline(&img, x0, y0, x1, y1, thick, c);
		}
	}
	for (i = 0; i < n; i++) {
		const qvl_box *b = &boxes[i];
		int r = b->kind == QVL_BOX_POINT ? 2 * thick + 1 : 0;

		box_tag(tag, sizeof tag, b, index[i]);
		qvl_box_pixel_rect(b->px, img.w, img.h, &x0, &y0, &x1, &y1);
		qvl_draw_tag(&img, x0 + r, y0 - r, tag, scale, qvl_draw_color((int)(index[i] - 1)));
	}
	f = out_open(out);
	if (qvl_image_write_png(f, &img, &err) < 0)
		out_fail(f, &err);
	out_commit(f);
}

static void
crop_box(struct pic *p, const qvl_box *b, long index, const char *dir)
{
	char path[PATH_MAX];
	qvl_image cut;
	qvl_err err;
	int x0, y0, x1, y1;
	FILE *f;

	if (b->kind == QVL_BOX_POINT || (b->flags & (QVL_BOX_UNMAPPED | QVL_BOX_EMPTY)))
		return;
	load_pic(p, "to crop from");
	if (!qvl_box_pixel_rect(b->px, p->img.w, p->img.h, &x0, &y0, &x1, &y1))
		return;
	if (snprintf(path, sizeof path, "%s/%03ld.png", dir, index) >= (int)sizeof path)
		die(EXIT_USAGE, "--crop: directory name too long");
	if (qvl_image_crop(&p->img, x0, y0, x1, y1, &cut, &err) < 0)
		die_err(EXIT_BADINPUT, &err);
	f = out_open(path);
	if (qvl_image_write_png(f, &cut, &err) < 0)
		out_fail(f, &err);
	out_commit(f);
	qvl_image_free(&cut);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "coords", required_argument, NULL, 'c' },
		{ "image", required_argument, NULL, 'i' },
		{ "min-pixels", required_argument, NULL, 'n' },
		{ "max-pixels", required_argument, NULL, 'x' },
		{ "dpi", required_argument, NULL, 'd' },
		{ "model-size", required_argument, NULL, 'M' },
		{ "orig-size", required_argument, NULL, 'O' },
		{ "image-index", required_argument, NULL, 'I' },
		{ "units", required_argument, NULL, 'u' },
		{ "format", required_argument, NULL, 'f' },
		{ "draw", required_argument, NULL, 'D' },
		{ "crop", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .coords = -1, .min_pixels = 4 * 28 * 28,
		.max_pixels = 16384 * 28 * 28, .image_index = -1 };
	struct pic *pics = NULL;
	struct answer *answers;
	json_t *ans, *metas;
	qvl_box_list list = { 0 };
	qvl_box *drawn = NULL;
	long *drawn_index = NULL, index = 0;
	size_t len, a, i, nanswers, ngood = 0, ndone = 0, ndrawn = 0;
	int ch, npics, draw_pic = -1, warned_unmapped = 0, warned_nodpi = 0, how, bad = 0, first;
	char *input, *body, where[PATH_MAX + 32], what[PATH_MAX + 64];
	const char *name;
	qvl_err err;

	cmd_init(argv[0]);
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			if (strcmp(optarg, "abs") == 0)
				o.coords = QVL_COORDS_ABS;
			else if (strcmp(optarg, "norm1000") == 0)
				o.coords = QVL_COORDS_NORM1000;
			else
				die(EXIT_USAGE, "--coords: want abs or norm1000, got '%s'", optarg);
			break;
		case 'i':
			if (o.nimages == MAX_IMAGES)
				die(EXIT_USAGE, "--image: at most %d images", MAX_IMAGES);
			o.images[o.nimages++] = optarg;
			break;
		case 'n':
			o.min_pixels = cmd_parse_long("--min-pixels", optarg, 1, LONG_MAX);
			break;
		case 'x':
			o.max_pixels = cmd_parse_long("--max-pixels", optarg, 1, LONG_MAX);
			break;
		case 'd':
			parse_dpi(optarg, &o);
			break;
		case 'M':
			parse_size("--model-size", optarg, &o.model_w, &o.model_h);
			break;
		case 'O':
			parse_size("--orig-size", optarg, &o.orig_w, &o.orig_h);
			break;
		case 'I':
			o.image_index = (int)cmd_parse_long("--image-index", optarg, 1, MAX_IMAGES) - 1;
			break;
		case 'u':
			if (strcmp(optarg, "px") != 0 && strcmp(optarg, "pt") != 0)
				die(EXIT_USAGE, "--units: want px or pt, got '%s'", optarg);
			o.units_pt = strcmp(optarg, "pt") == 0;
			break;
		case 'f':
			if (strcmp(optarg, "json") != 0 && strcmp(optarg, "tsv") != 0)
				die(EXIT_USAGE, "--format: want json or tsv, got '%s'", optarg);
			o.tsv = strcmp(optarg, "tsv") == 0;
			break;
		case 'D':
			/* standard output has the boxes already (qvl(7): '-' as an output) */
			if (strcmp(optarg, "-") == 0)
				die(EXIT_USAGE, "--draw: '-' is standard output, which has the boxes; "
				    "name a file");
			o.draw = optarg;
			break;
		case 'C':
			if (strcmp(optarg, "-") == 0)
				die(EXIT_USAGE, "--crop: want a directory, not '-'");
			o.crop = optarg;
			break;
		case 'h':
			usage(stdout, 0);
			break;
		default:
			usage(stderr, EXIT_USAGE);
		}
	}
	if (argc - optind > 1)
		usage(stderr, EXIT_USAGE);
	if (o.min_pixels > o.max_pixels)
		die(EXIT_USAGE, "--min-pixels %lld is over --max-pixels %lld",
		    (long long)o.min_pixels, (long long)o.max_pixels);
	if (o.crop != NULL && mkdir(o.crop, 0777) < 0 && errno != EEXIST)
		die(EXIT_BADINPUT, "%s: %s", o.crop, strerror(errno));

	input = read_input(optind < argc ? argv[optind] : NULL, &len);
	name = in_name(optind < argc ? argv[optind] : NULL);
	body = input;
	if (len >= 3 && memcmp(body, "\xef\xbb\xbf", 3) == 0) {
		body += 3;	/* a UTF-8 BOM, as some editors save */
		len -= 3;
	}
	answers = json_answers(body, len, &nanswers);
	for (a = 0; a < nanswers; a++)
		ngood += answers[a].obj != NULL;

	for (a = 0; a < (answers != NULL ? nanswers : 1); a++) {
		const char *text = body;
		size_t tlen = len, start;

		ans = answers != NULL ? answers[a].obj : NULL;
		if (answers != NULL && ans == NULL) {
			/* The other answers are still good: print them, then fail. */
			warnx("%s: line %zu: not an answer of qvl-decode --json: %s", name,
			    answers[a].line, answers[a].why);
			bad = 1;
			continue;
		}
		if (answers != NULL)
			snprintf(where, sizeof where, "%s: line %zu", name, answers[a].line);
		else
			snprintf(where, sizeof where, "%s", name);
		first = ndone++ == 0;

		/* The images of this answer: the --json meta, else the --image files. */
		metas = ans ? json_object_get(ans, "images") : NULL;
		if (metas != NULL && !json_is_array(metas) && !json_is_null(metas))
			die(EXIT_BADINPUT, "%s: images: not a list", where);
		if (ans != NULL) {
			text = json_string_value(json_object_get(ans, "text"));
			tlen = json_string_length(json_object_get(ans, "text"));
		}
		npics = json_is_array(metas) && json_array_size(metas) > 0 ?
		    (int)json_array_size(metas) : o.nimages;
		if (npics > MAX_IMAGES)
			die(EXIT_BADINPUT, "%s: more than %d images", where, MAX_IMAGES);
		if (npics == 0)
			npics = 1;
		if (o.image_index >= npics)
			die(EXIT_USAGE, "--image-index %d: the answer has %d image%s",
			    o.image_index + 1, npics, npics == 1 ? "" : "s");
		if ((pics = calloc((size_t)npics, sizeof *pics)) == NULL)
			die(EXIT_BADINPUT, "out of memory");
		for (int k = 0; k < npics; k++) {
			struct pic *p = &pics[k];
			json_t *meta = json_is_array(metas) ? json_array_get(metas, (size_t)k) : NULL;

			p->number = k + 1;

			if (k < o.nimages)
				p->source = p->path = o.images[k];
			snprintf(what, sizeof what, "%s: image %d", where, k + 1);
			if (meta != NULL) {
				if (qvl_boxes_geom_from_meta(meta, &p->g, &err) < 0) {
					qvl_err_prefix(&err, "%s", what);
					die_err(EXIT_BADINPUT, &err);
				}
				if (json_is_string(json_object_get(meta, "source"))) {
					p->source = json_string_value(json_object_get(meta, "source"));
					if (p->path == NULL && strcmp(p->source, "-") != 0 &&
					    strcmp(p->source, "<stdin>") != 0)
						p->path = p->source;
				}
				/* No size in the meta: the original's file has it. */
				if (p->g.orig_w == 0 && o.orig_w == 0 && p->path != NULL) {
					image_geometry(p);
					snprintf(what, sizeof what, "%s", p->path);
				}
			} else if (k < o.nimages) {
				image_geometry(p);
				snprintf(what, sizeof what, "%s", p->path);
			}
			if (o.orig_w > 0) {
				p->g.orig_w = o.orig_w;
				p->g.orig_h = o.orig_h;
				snprintf(what, sizeof what, "--orig-size");
			}
			if (o.model_w > 0) {
				p->g.model_w = o.model_w;
				p->g.model_h = o.model_h;
			}
			if (p->g.dpi_x == 0 && o.dpi_from > 0)
				p->g.dpi_x = p->g.dpi_y = o.dpi_from;
			if (p->g.orig_w > 0 && p->g.model_w == 0)
				model_geometry(p, &o, what);
			if (k < o.nimages) {
				load_pic(p, "to check");
				check_pic(p);
			}
		}

		start = list.n;
		if (qvl_boxes_parse(text, tlen, &list, &err) < 0)
			die_err(EXIT_BADINPUT, &err);
		if (list.malformed > 0)
			warnx("%s: %zu box%s with unreadable coordinates skipped", where,
			    list.malformed, list.malformed == 1 ? "" : "es");
		list.malformed = 0;
		{
			qvl_box_list mine = { list.v + start, list.n - start, 0, 0 };

			how = qvl_boxes_assign(&mine, text, tlen, npics, o.image_index);
		}
		if (how == 3 && list.n > start)
			warnx("%s: %d images and no \"Picture N\" in the answer: boxes go to "
			    "image 1 (use --image-index)", where, npics);

		for (i = start; i < list.n; i++) {
			qvl_box *b = &list.v[i];
			struct pic *p = &pics[b->image];

			qvl_box_map(b, o.coords >= 0 ? (qvl_coords)o.coords : b->coords, &p->g,
			    o.units_pt);
			index++;
			if ((b->flags & QVL_BOX_UNMAPPED) && !warned_unmapped++)
				warnx("no image size known (give --json input from qvl-decode, --image, "
				    "or --orig-size): coordinates left as the model wrote them");
			if ((b->flags & QVL_BOX_NODPI) && !warned_nodpi++)
				warnx("--units pt: the image's density is unknown (give --dpi FROM:TO): "
				    "pixels written");
			if (b->flags & QVL_BOX_EMPTY)
				warnx("box %ld (\"%.60s\"): no area after clamping to the image", index,
				    b->label);
			if ((o.tsv ? qvl_box_write_tsv : qvl_box_write_json)(stdout, b, p->source,
			    &err) < 0) {
				cmd_flush_stdout();
				die_err(EXIT_BADINPUT, &err);
			}
			if (o.crop != NULL)
				crop_box(p, b, index, o.crop);
			if (o.draw != NULL && draw_pic < 0 && first)
				draw_pic = o.image_index >= 0 ? o.image_index : b->image;
			if (o.draw != NULL && first && b->image == draw_pic) {
				qvl_box *v = realloc(drawn, (ndrawn + 1) * sizeof *drawn);
				long *w = realloc(drawn_index, (ndrawn + 1) * sizeof *w);

				if (v == NULL || w == NULL)
					die(EXIT_BADINPUT, "out of memory");
				drawn = v;
				drawn_index = w;
				drawn[ndrawn] = *b;
				drawn_index[ndrawn++] = index;
			} else if (o.draw != NULL && first) {
				warnx("box %ld is on image %d: --draw shows image %d only", index,
				    b->image + 1, draw_pic + 1);
			}
		}
		if (o.draw != NULL && first) {
			if (draw_pic < 0)
				draw_pic = o.image_index >= 0 ? o.image_index : 0;
			draw_boxes(&pics[draw_pic], drawn, drawn_index, ndrawn, o.draw);
		}
		if (answers != NULL && first && ngood > 1 && o.draw != NULL)
			warnx("--draw shows the first answer's boxes only");
		for (int k = 0; k < npics; k++)
			if (pics[k].loaded)
				qvl_image_free(&pics[k].img);
		free(pics);
		pics = NULL;
	}
	if (index == 0)
		warnx("no boxes found");
	cmd_flush_stdout();
	free(drawn);
	free(drawn_index);
	qvl_boxes_free(&list);
	free_answers(answers, nanswers);
	free(input);
	return bad ? EXIT_BADINPUT : 0;
}
