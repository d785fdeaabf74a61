/* test_boxes.c: the grounding parsers on handwritten answers (tests/data/boxes/NAME.txt, with
 * the expected boxes in NAME.expect: kind, format, label, numbers, tab-separated), image
 * assignment, mapping with sizes from smart_resize (odd sizes, --dpi 300:72), clamping, the
 * output lines, and drawing checked pixel by pixel after a PNG round trip. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../lib/boxes.h"
#include "../lib/draw.h"
#include "../lib/image.h"
#include "../lib/resize.h"
#include "test.h"

#define BOXES TEST_DATA "/boxes/"

static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = malloc((size_t)n + 1)) != NULL) {
		*len = fread(buf, 1, (size_t)n, f);
		buf[*len] = '\0';
	}
	fclose(f);
	return buf;
}

static void
numbers_str(const qvl_box *b, char *out, size_t size)
{
	char num[64];
	int i;

	out[0] = '\0';
	for (i = 0; i < b->nmodel; i++) {
		qvl_boxes_fmt_number(num, sizeof num, b->model[i], -1);
		if (i > 0)
			strncat(out, ",", size - strlen(out) - 1);
		strncat(out, num, size - strlen(out) - 1);
	}
}

/* Parses NAME.txt and compares with NAME.expect; returns the list for more checks. */
static void
check_case(const char *name, qvl_box_list *list)
{
	char path[256], line[1024], got[1024], nums[256];
	char *text, *expect, *p, *nl;
	size_t len, elen, i = 0;
	qvl_err err;
	int r;

	snprintf(path, sizeof path, BOXES "%s.txt", name);
	text = slurp(path, &len);
	CHECK(text != NULL, "%s: read", path);
	snprintf(path, sizeof path, BOXES "%s.expect", name);
	expect = slurp(path, &elen);
	CHECK(expect != NULL, "%s: read", path);
	if (text == NULL || expect == NULL) {
		free(text);
		free(expect);
		return;
	}
	r = qvl_boxes_parse(text, len, list, &err);
	CHECK(r == 0, "%s: parse", name);
	for (p = expect; *p != '\0'; p = nl + 1, i++) {
		if ((nl = strchr(p, '\n')) == NULL)
			nl = p + strlen(p);
		snprintf(line, sizeof line, "%.*s", (int)(nl - p), p);
		if (i >= list->n) {
			CHECK(0, "%s: box %zu missing: want %s", name, i, line);
		} else {
			const qvl_box *b = &list->v[i];

			numbers_str(b, nums, sizeof nums);
			snprintf(got, sizeof got, "%s\t%s\t%s\t%s", qvl_box_kind_name(b->kind),
			    qvl_box_format_name(b->format), b->label, nums);
			CHECK(strcmp(got, line) == 0, "%s: box %zu: got [%s] want [%s]", name, i, got,
			    line);
		}
		if (*nl == '\0')
			break;
	}
	CHECK(list->n == i, "%s: %zu boxes, want %zu", name, list->n, i);

	/* Cut short at every byte: never reads past the end, never finds more boxes. */
	for (size_t cut = 0; cut < len; cut++) {
		qvl_box_list part = { 0 };
		char *copy = malloc(cut ? cut : 1);

		memcpy(copy, text, cut);
		r = qvl_boxes_parse(copy, cut, &part, &err);
		if (r != 0 || part.n > list->n)
			CHECK(0, "%s: cut at %zu: %zu boxes (full %zu)", name, cut, part.n, list->n);
		qvl_boxes_free(&part);
		free(copy);
	}
	free(text);
	free(expect);
}

static void
test_parsers(void)
{
	static const char *const cases[] = {
		"json_fence", "json_truncated", "json_quotes_cjk", "json_negative", "json_lenient",
		"html", "tokens", "tags", "mixed", "multi_image", "none", NULL
	};
	qvl_box_list list;
	int i;

	for (i = 0; cases[i] != NULL; i++) {
		memset(&list, 0, sizeof list);
		check_case(cases[i], &list);
		if (strcmp(cases[i], "tokens") == 0)
			CHECK(list.malformed == 1, "tokens: %zu malformed, want 1", list.malformed);
		if (strcmp(cases[i], "tags") == 0 || strcmp(cases[i], "tokens") == 0)
			CHECK(list.n > 0 && list.v[0].coords == QVL_COORDS_NORM1000,
			    "%s: 0..1000 coordinates", cases[i]);
		if (strcmp(cases[i], "html") == 0)
			CHECK(list.n > 0 && list.v[0].coords == QVL_COORDS_ABS, "html: absolute");
		qvl_boxes_free(&list);
	}
}

/* The boxes of text, one "kind\tformat\tlabel\tnumbers" line each, and how many markers were
 * unreadable. */
static void
expect_boxes(const char *name, const char *text, size_t len, const char *want,
    size_t malformed)
{
	qvl_box_list list = { 0 };
	char got[4096] = "", line[1024], nums[256];
	qvl_err err;
	size_t i;

	CHECK(qvl_boxes_parse(text, len, &list, &err) == 0, "%s: parse", name);
	for (i = 0; i < list.n; i++) {
		numbers_str(&list.v[i], nums, sizeof nums);
		snprintf(line, sizeof line, "%s%s\t%s\t%s\t%s", i ? "\n" : "",
		    qvl_box_kind_name(list.v[i].kind), qvl_box_format_name(list.v[i].format),
		    list.v[i].label, nums);
		strncat(got, line, sizeof got - strlen(got) - 1);
	}
	CHECK(strcmp(got, want) == 0, "%s: got\n%s\nwant\n%s", name, got, want);
	CHECK(list.malformed == malformed, "%s: %zu unreadable, want %zu", name, list.malformed,
	    malformed);
	qvl_boxes_free(&list);
}

#define EXPECT(name, text, want, malformed) \
	expect_boxes(name, text, sizeof text - 1, want, malformed)

static void
test_lenient(void)
{
	/* A word among a box's numbers makes it unreadable, never a shifted box or a point. */
	EXPECT("nan", "[{\"bbox_2d\": [NaN, 100, NaN, 300], \"label\": \"a\"}]", "", 1);
	EXPECT("inf", "[{\"bbox_2d\": [Infinity, 1, -Infinity, 3]}]", "", 1);
	EXPECT("overflow", "[{\"bbox_2d\": [1e308, 1e309, 5, -1e400]}]", "", 1);
	EXPECT("none", "[{'bbox_2d': [10, None, 20, 30, 40], 'label': 'd'}]", "", 1);
	EXPECT("tag-nan", "<box>(NaN,1),(2,3)</box>", "", 1);
	EXPECT("html-word", "<p data-bbox=\"1 2 x 4\">t</p>", "", 1);
	EXPECT("lenient-pairs", "{'bbox_2d': [[1, 2], [3, 4]], 'label': 'pairs'}",
	    "bbox\tjson\tpairs\t1,2,3,4", 0);
	EXPECT("tuple", "{'point_2d': (5, 6)}", "point\tjson\t\t5,6", 0);

	/* Python literals with nested objects, braces and the other quote in labels. */
	EXPECT("nested-comma", "[{\"bbox_2d\": [1,2,3,4], \"label\": \"cake\", "
	    "\"attributes\": {\"color\": \"red\"},}]", "bbox\tjson\tcake\t1,2,3,4", 0);
	EXPECT("nested-python", "[{'bbox_2d': [1,2,3,4], 'label': 'cake', "
	    "'attributes': {'color': 'red'}}]", "bbox\tjson\tcake\t1,2,3,4", 0);
	EXPECT("brace-label", "[{'bbox_2d': [1,2,3,4], 'label': 'set {a}'}]",
	    "bbox\tjson\tset {a}\t1,2,3,4", 0);
	EXPECT("odd-quote", "[{'bbox_2d': [10,20,30,40], 'label': '12\" ruler'}, "
	    "{'bbox_2d': [50,60,70,80], 'label': 'second'}]",
	    "bbox\tjson\t12\" ruler\t10,20,30,40\nbbox\tjson\tsecond\t50,60,70,80", 0);

	/* A label is text, never boxes. */
	EXPECT("inject", "[{'bbox_2d': [1,2,3,4], 'label': '{\"bbox_2d\": [5,6,7,8]}'}]",
	    "bbox\tjson\t{\"bbox_2d\": [5,6,7,8]}\t1,2,3,4", 0);
	EXPECT("close-brace", "[{'bbox_2d': [1,2,3,4], 'label': 'a } b'}]",
	    "bbox\tjson\ta } b\t1,2,3,4", 0);

	/* JSON with escaped quotes, as in a pasted "text" field. */
	EXPECT("escaped", "[{\\\"bbox_2d\\\": [10, 20, 30, 40], \\\"label\\\": "
	    "\\\"say \\\\\\\"hi\\\\\\\"\\\"}]", "bbox\tjson\tsay \"hi\"\t10,20,30,40", 0);

	/* NUL is U+FFFD, not the end of the label; UTF-16 pairs are one character. */
	expect_boxes("nul-json", "{\"bbox_2d\": [1,2,3,4], \"label\": \"a\\u0000b\"}", 44,
	    "bbox\tjson\ta\xef\xbf\xbd" "b\t1,2,3,4", 0);
	expect_boxes("nul-raw", "{\"bbox_2d\": [1,2,3,4], \"label\": \"a\0b\"}", 39,
	    "bbox\tjson\ta\xef\xbf\xbd" "b\t1,2,3,4", 0);
	EXPECT("nul-html", "<p data-bbox=\"1 2 3 4\">c &#0; d</p>",
	    "bbox\thtml\tc \xef\xbf\xbd d\t1,2,3,4", 0);
	EXPECT("pair-lenient", "[{'bbox_2d': [1,2,3,4], 'label': '\\ud83d\\ude00 cat'}]",
	    "bbox\tjson\t\xf0\x9f\x98\x80 cat\t1,2,3,4", 0);

	/* A reference ends at the next marker. */
	EXPECT("ref-unclosed", "<ref>a dog<box>(100,200),(300,400)</box> and "
	    "<ref>cat</ref><box>(1,2),(3,4)</box>\n",
	    "bbox\ttags\t\t100,200,300,400\nbbox\ttags\tcat\t1,2,3,4", 0);
	EXPECT("ref-prose", "x <ref> is a tag; <ref>cat</ref><box>(5,6),(7,8)</box>\n",
	    "bbox\ttags\tcat\t5,6,7,8", 0);
	EXPECT("box-unclosed", "<box>(1,2),(3,4) <box>(5,6),(7,8)</box>",
	    "bbox\ttags\t\t5,6,7,8", 1);

	/* The cookbook's XML points and Qwen2-VL's single-point box. */
	EXPECT("xml-point", "<points x1=\"402\" y1=\"213\" alt=\"rolling pin\">rolling pin</points>",
	    "point\txml\trolling pin\t402,213", 0);
	EXPECT("xml-points", "<points x1=\"1\" y1=\"2\" x2=\"3.5\" y2=\"4\" alt=\"two\"></points>",
	    "point\txml\ttwo\t1,2\npoint\txml\ttwo\t3.5,4", 0);
	EXPECT("xml-bad", "<points x1=\"a\" y1=\"2\" alt=\"x\">x</points>", "", 1);
	EXPECT("click", "click(start_box='<|box_start|>(246,113)<|box_end|>')",
	    "point\ttokens\t\t246,113", 0);
}

/* Seconds qvl_boxes_parse takes over the first n bytes of text. */
static double
parse_seconds(const char *text, size_t n, const char *unit)
{
	qvl_box_list list;
	qvl_err err;
	clock_t t;

	memset(&list, 0, sizeof list);
	t = clock();
	CHECK(qvl_boxes_parse(text, n, &list, &err) == 0, "linear %s: parse", unit);
	qvl_boxes_free(&list);
	return (double)(clock() - t) / CLOCKS_PER_SEC;
}

/*
 * Adversarial answers of 1 MiB: the JSON, tag and point scanners stay linear.  A time
 * alone is the machine's (under ASan on a slow CI host a linear scan took a second): a
 * slow parse must also take more than 8 times that of a quarter of the text, where a
 * linear scan takes 4 and a quadratic one 16.
 */
static void
test_linear(void)
{
	const char *units[] = {
		"{\\\"", "{\"\\\"", "{'", "{\"a\":[", "{\"", "{", "{a:", "<ref>", "<box>(",
		"<points x1=\"1\" ", "{'a': '\"", "[{\"bbox_2d\": [1,", "<|box_start|>(1,2)",
		"<p data-bbox=\"1 2 3 4\">x ", NULL,
	};
	size_t n = (size_t)1 << 20, k, u, ul;
	char *text = malloc(n);
	double secs, quarter;

	if (text == NULL)
		return;
	/* a start tag never closed, with attribute after attribute */
	char open_tag[3 + 150 * 20 + 1] = "<p ";
	for (k = 0; k < 150; k++)
		strcat(open_tag, "data-bbox=\"1 2 3 4\" ");
	units[sizeof units / sizeof units[0] - 1] = open_tag;
	for (u = 0; u < sizeof units / sizeof units[0]; u++) {
		ul = strlen(units[u]);
		for (k = 0; k < n; k++)
			text[k] = units[u][k % ul];
		secs = parse_seconds(text, n, units[u]);
		quarter = parse_seconds(text, n / 4, units[u]); /* always: a fixed check count */
		CHECK(secs < 0.5 || secs < 8 * quarter, "%s x %zu: %.2f s, a quarter %.2f s",
		    units[u], n / ul, secs, quarter);
	}
	free(text);
}

static void
test_assign(void)
{
	static const char fenced[] = "```json\n[{\"bbox_2d\": [1, 2, 3, 4]}]\n```\n"
	    "```json\n[{\"bbox_2d\": [5, 6, 7, 8]}]\n```\n";
	qvl_box_list list = { 0 };
	char *text;
	size_t len;
	qvl_err err;
	int how;

	text = slurp(BOXES "multi_image.txt", &len);
	CHECK(text != NULL && qvl_boxes_parse(text, len, &list, &err) == 0 && list.n == 3,
	    "multi_image parses");
	if (list.n == 3) {
		how = qvl_boxes_assign(&list, text, len, 2, -1);
		CHECK(how == 1 && list.v[0].image == 0 && list.v[1].image == 1 &&
		    list.v[2].image == 1, "Picture N mentions: %d %d %d (how %d)", list.v[0].image,
		    list.v[1].image, list.v[2].image, how);
		how = qvl_boxes_assign(&list, text, len, 2, 1);
		CHECK(how == 0 && list.v[0].image == 1 && list.v[2].image == 1, "forced image");
		how = qvl_boxes_assign(&list, text, len, 1, -1);
		CHECK(how == 0 && list.v[1].image == 0, "one image");
		how = qvl_boxes_assign(&list, text, len, 3, -1);
		CHECK(how == 1 && list.v[1].image == 1, "three images, mentions");
	}
	qvl_boxes_free(&list);
	free(text);

	CHECK(qvl_boxes_parse(fenced, strlen(fenced), &list, &err) == 0 && list.n == 2,
	    "fenced parses");
	if (list.n == 2) {
		how = qvl_boxes_assign(&list, fenced, strlen(fenced), 2, -1);
		CHECK(how == 2 && list.v[0].image == 0 && list.v[1].image == 1, "by fences");
		how = qvl_boxes_assign(&list, fenced, strlen(fenced), 3, -1);
		CHECK(how == 3 && list.v[0].image == 0 && list.v[1].image == 0, "fallback");
	}
	qvl_boxes_free(&list);
}

static int
near(double a, double b)
{
	return fabs(a - b) < 1e-9 * (1 + fabs(b));
}

static void
set_box(qvl_box *b, qvl_box_kind kind, const double *v, int n)
{
	memset(b, 0, sizeof *b);
	b->kind = kind;
	b->nmodel = n;
	memcpy(b->model, v, (size_t)n * sizeof *v);
}

static void
test_mapping(void)
{
	static const int64_t odd[][2] = {	/* w, h */
		{ 1001, 777 }, { 333, 97 }, { 29, 3001 }, { 4099, 2731 }, { 57, 57 }, { 1, 150 },
	};
	qvl_box_geom g;
	qvl_box b;
	int64_t mw, mh, rw, rh;
	qvl_err err;
	size_t i;

	for (i = 0; i < sizeof odd / sizeof odd[0]; i++) {
		int64_t w = odd[i][0], h = odd[i][1];

		CHECK(qvl_boxes_model_size(w, h, 1, 1, 3136, 12845056, &mw, &mh, &err) == 0,
		    "model size %lldx%lld", (long long)w, (long long)h);
		CHECK(qvl_smart_resize(h, w, 28, 3136, 12845056, &rh, &rw, &err) == 0 && rw == mw &&
		    rh == mh, "model size = smart_resize for %lldx%lld", (long long)w, (long long)h);
		memset(&g, 0, sizeof g);
		g.orig_w = (double)w;
		g.orig_h = (double)h;
		g.model_w = (double)mw;
		g.model_h = (double)mh;
		/* The whole resized image is the whole original; its centre is the centre. */
		set_box(&b, QVL_BOX_BBOX, (double[]){ 0, 0, (double)mw, (double)mh }, 4);
		qvl_box_map(&b, QVL_COORDS_ABS, &g, 0);
		CHECK(near(b.px[0], 0) && near(b.px[2], (double)w) && near(b.px[3], (double)h) &&
		    b.flags == 0, "%lldx%lld: whole image", (long long)w, (long long)h);
		set_box(&b, QVL_BOX_POINT, (double[]){ mw / 2.0, mh / 3.0 }, 2);
		qvl_box_map(&b, QVL_COORDS_ABS, &g, 0);
		CHECK(near(b.px[0], w / 2.0) && near(b.px[1], h / 3.0) && near(b.px[2], b.px[0]) &&
		    b.flags == 0, "%lldx%lld: point", (long long)w, (long long)h);
		set_box(&b, QVL_BOX_BBOX, (double[]){ 250, 500, 750, 1000 }, 4);
		qvl_box_map(&b, QVL_COORDS_NORM1000, &g, 0);
		CHECK(near(b.px[0], w / 4.0) && near(b.px[1], h / 2.0) && near(b.px[2], w * 0.75) &&
		    near(b.px[3], (double)h), "%lldx%lld: 0..1000", (long long)w, (long long)h);
	}

	/* A 300 DPI A4 scan brought to 72 DPI: 2480x3508 -> 595x842 -> smart_resize 588x840. */
	CHECK(qvl_boxes_model_size(2480, 3508, 72 / 300.0, 72 / 300.0, 3136, 12845056, &mw, &mh, &err) == 0 &&
	    mw == 588 && mh == 840, "--dpi 300:72: %lldx%lld", (long long)mw, (long long)mh);
	CHECK(qvl_smart_resize(842, 595, 28, 3136, 12845056, &rh, &rw, &err) == 0 && rw == mw &&
	    rh == mh, "--dpi 300:72 = smart_resize of the scaled size");
	memset(&g, 0, sizeof g);
	g.orig_w = 2480;
	g.orig_h = 3508;
	g.model_w = 588;
	g.model_h = 840;
	g.dpi_x = g.dpi_y = 300;
	set_box(&b, QVL_BOX_BBOX, (double[]){ 0, 420, 294, 840 }, 4);
	qvl_box_map(&b, QVL_COORDS_ABS, &g, 1);
	CHECK(near(b.px[0], 0) && near(b.px[1], 1754) && near(b.px[2], 1240) &&
	    near(b.px[3], 3508), "300:72 pixels");
	CHECK(near(b.out[1], 1754 * 72 / 300.0) && near(b.out[2], 297.6) &&
	    near(b.out[3], 841.92) && !(b.flags & QVL_BOX_NODPI), "300:72 points: %g %g %g",
	    b.out[1], b.out[2], b.out[3]);
	g.dpi_x = g.dpi_y = 0;
	qvl_box_map(&b, QVL_COORDS_ABS, &g, 1);
	CHECK((b.flags & QVL_BOX_NODPI) && near(b.out[2], 1240), "points without a density");

	/* Meta as qvl-resize writes it: scale fills in a missing side; dpi_scale alone gives
	 * the density when TO is 72. */
	{
		json_t *meta = json_pack("{s:[ii],s:[ff],s:[ff]}", "orig_size", 2480, 3508,
		    "scale", 2480 / 588.0, 3508 / 840.0, "dpi_scale", 0.24, 0.24);

		CHECK(qvl_boxes_geom_from_meta(meta, &g, &err) == 0 && near(g.model_w, 588) &&
		    near(g.model_h, 840) && near(g.dpi_x, 300) && near(g.dpi_y, 300),
		    "meta: %g %g %g", g.model_w, g.model_h, g.dpi_x);
		json_object_set_new(meta, "dpi", json_pack("[ff]", 600.0, 600.0));
		CHECK(qvl_boxes_geom_from_meta(meta, &g, &err) == 0 && near(g.dpi_x, 600),
		    "meta dpi wins");
		json_object_set_new(meta, "resized_size", json_pack("[i]", 3));
		CHECK(qvl_boxes_geom_from_meta(meta, &g, &err) < 0 &&
		    strstr(err.msg, "resized_size") != NULL, "bad meta: %s", err.msg);
		json_decref(meta);
	}

	/* Clamping, corner order, no area. */
	memset(&g, 0, sizeof g);
	g.orig_w = g.model_w = 256;
	g.orig_h = g.model_h = 200;
	set_box(&b, QVL_BOX_BBOX, (double[]){ -15, -3, 120, 90 }, 4);
	qvl_box_map(&b, QVL_COORDS_ABS, &g, 0);
	CHECK(near(b.px[0], 0) && near(b.px[1], 0) && b.flags == QVL_BOX_CLAMPED, "negative");
	set_box(&b, QVL_BOX_BBOX, (double[]){ 300, 150, 400, 300 }, 4);
	qvl_box_map(&b, QVL_COORDS_ABS, &g, 0);
	CHECK(near(b.px[0], 256) && near(b.px[3], 200) &&
	    b.flags == (QVL_BOX_CLAMPED | QVL_BOX_EMPTY), "outside: flags %d", b.flags);
	set_box(&b, QVL_BOX_BBOX, (double[]){ 90, 80, 30, 20 }, 4);
	qvl_box_map(&b, QVL_COORDS_ABS, &g, 0);
	CHECK(near(b.px[0], 30) && near(b.px[1], 20) && near(b.px[2], 90) && near(b.px[3], 80) &&
	    b.flags == 0, "backwards");
	set_box(&b, QVL_BOX_QUAD, (double[]){ 100, 100, 300, 120, 290, 200, 90, 180 }, 8);
	qvl_box_map(&b, QVL_COORDS_NORM1000, &g, 0);
	CHECK(near(b.px[0], 23.04) && near(b.px[1], 20) && near(b.px[2], 76.8) &&
	    near(b.px[3], 40) && near(b.quad_px[2], 76.8), "quad bounds");
	memset(&g, 0, sizeof g);
	set_box(&b, QVL_BOX_BBOX, (double[]){ 90, 80, 30, 20 }, 4);
	qvl_box_map(&b, QVL_COORDS_ABS, &g, 0);
	CHECK(near(b.px[0], 30) && near(b.px[2], 90) && b.flags == QVL_BOX_UNMAPPED, "unmapped");
}

static void
test_smart_resize_table(void)
{
	json_error_t jerr;
	json_t *root, *rows, *row;
	qvl_err err;
	size_t i, n = 0, bad = 0;
	int64_t mw, mh;

	root = json_load_file(TEST_DATA "/golden/tiny/smart_resize_table.json", 0, &jerr);
	CHECK(root != NULL, "smart_resize_table.json: %s", root ? "" : jerr.text);
	if (root == NULL)
		return;
	rows = json_is_array(root) ? root : json_object_get(root, "rows");
	json_array_foreach(rows, i, row) {
		json_t *want = json_object_get(row, "qwen_vl_utils");
		int64_t h = json_integer_value(json_object_get(row, "h"));
		int64_t w = json_integer_value(json_object_get(row, "w"));
		int r = qvl_boxes_model_size(w, h, 1, 1,
		    json_integer_value(json_object_get(row, "min_pixels")),
		    json_integer_value(json_object_get(row, "max_pixels")), &mw, &mh, &err);

		/* The reference's max_pixels branch can give a zero side, which qvl refuses. */
		if (!json_is_array(want) || json_integer_value(json_array_get(want, 0)) == 0 ||
		    json_integer_value(json_array_get(want, 1)) == 0)
			continue;
		n++;
		if (r != 0 || mh != json_integer_value(json_array_get(want, 0)) ||
		    mw != json_integer_value(json_array_get(want, 1)))
			bad++;
	}
	CHECK(n > 100 && bad == 0, "model sizes = qwen_vl_utils on %zu table rows, %zu differ",
	    n, bad);
	json_decref(root);
}

static void
test_output(void)
{
	qvl_box b;
	char *buf = NULL;
	size_t size = 0;
	FILE *f;
	qvl_err err;
	char num[64];

	qvl_boxes_fmt_number(num, sizeof num, 12.0, 2);
	CHECK(strcmp(num, "12") == 0, "fmt 12: %s", num);
	qvl_boxes_fmt_number(num, sizeof num, 1.0 / 3, 2);
	CHECK(strcmp(num, "0.33") == 0, "fmt 1/3: %s", num);
	qvl_boxes_fmt_number(num, sizeof num, -0.001, 2);
	CHECK(strcmp(num, "0") == 0, "fmt -0: %s", num);
	/* As the model wrote them: the shortest form that reads back the same. */
	{
		static const double v[] = { 364, 1e308, 1e-300, 2.5e-7, 0.1, 1.0 / 3, -12.75,
			123456789012345678.0, 5e-324, 1e100 };
		static const char *const want[] = { "364", "1e308", "1e-300", "2.5e-7", "0.1",
			"0.3333333333333333", "-12.75", "1.2345678901234568e17", "5e-324", "1e100" };
		size_t k;

		for (k = 0; k < sizeof v / sizeof v[0]; k++) {
			qvl_boxes_fmt_number(num, sizeof num, v[k], -1);
			CHECK(strcmp(num, want[k]) == 0 && strtod(num, NULL) == v[k],
			    "fmt exact %.17g: %s", v[k], num);
		}
		qvl_boxes_fmt_number(num, sizeof num, 1e308, 2);
		CHECK(strcmp(num, "1e308") == 0, "fmt 1e308 with 2 decimals: %s", num);
	}

	set_box(&b, QVL_BOX_BBOX, (double[]){ 5, 6.5, 70, 80 }, 4);
	b.label = "the \"big\"\tsign 红";
	b.out[0] = 10;
	b.out[1] = 13;
	b.out[2] = 140.25;
	b.out[3] = 160;
	f = open_memstream(&buf, &size);
	CHECK(qvl_box_write_json(f, &b, "a/b.png", &err) == 0, "write json");
	CHECK(qvl_box_write_tsv(f, &b, NULL, &err) == 0, "write tsv");
	b.label = "bad \xff byte";
	b.kind = QVL_BOX_POINT;
	b.nmodel = 2;
	CHECK(qvl_box_write_json(f, &b, NULL, &err) == 0, "write json");
	fclose(f);
	CHECK(strcmp(buf,
	    "{\"image\": \"a/b.png\", \"label\": \"the \\\"big\\\"\\tsign 红\", "
	    "\"bbox\": [10, 13, 140.25, 160], \"bbox_model\": [5, 6.5, 70, 80], \"kind\": \"bbox\"}\n"
	    "-\tthe \"big\" sign 红\t10\t13\t140.25\t160\n"
	    "{\"image\": null, \"label\": \"bad \xef\xbf\xbd byte\", "
	    "\"bbox\": [10, 13, 140.25, 160], \"bbox_model\": [5, 6.5], \"kind\": \"point\"}\n") == 0,
	    "output lines:\n%s", buf);
	free(buf);
}

static int
pixel_is(const qvl_image *img, int x, int y, qvl_rgb c)
{
	const uint8_t *p = img->rgb + ((size_t)y * img->w + x) * 3;

	return p[0] == c.r && p[1] == c.g && p[2] == c.b;
}

static void
test_draw(void)
{
	qvl_image img, back, crop;
	qvl_rgb red = qvl_draw_color(0), gray = { 128, 128, 128 };
	char path[] = "/tmp/qvl-test-boxes-XXXXXX";
	qvl_err err;
	FILE *f;
	int fd, x, y, ok;

	for (x = 0x20, ok = 1; x < 0x7f; x++)
		ok &= qvl_font_glyph(x) != NULL;
	CHECK(ok && qvl_font_glyph('\n') == NULL && qvl_font_glyph(0xe9) == NULL, "font covers");
	CHECK(qvl_draw_text_fits("cat 12") && !qvl_draw_text_fits("caf\xc3\xa9"), "text fits");
	CHECK(qvl_draw_text_width("ab", 2) == 22 && qvl_draw_text_height(2) == 14, "text size");

	CHECK(qvl_image_alloc(&img, 64, 48, &err) == 0, "alloc");
	qvl_draw_fill(&img, -5, -5, 100, 100, gray);
	/* Box [10, 40) x [20, 40), border 2: edge pixels are the box's own outermost pixels. */
	qvl_draw_box(&img, 10, 20, 40, 40, "1 cat", 2, 1, red);

	fd = mkstemp(path);
	f = fd >= 0 ? fdopen(fd, "wb") : NULL;
	CHECK(f != NULL, "temp file");
	if (f == NULL) {
		qvl_image_free(&img);
		return;
	}
	CHECK(qvl_image_write_png(f, &img, &err) == 0, "write png");
	fclose(f);
	CHECK(qvl_image_load(path, NULL, &back, &err) == 0, "load png: %s", err.msg);
	unlink(path);
	CHECK(back.w == 64 && back.h == 48 && memcmp(back.rgb, img.rgb, 64 * 48 * 3) == 0,
	    "png round trip");
	for (y = 22; y < 38; y++) {
		ok = pixel_is(&back, 10, y, red) && pixel_is(&back, 11, y, red) &&
		    pixel_is(&back, 39, y, red) && pixel_is(&back, 38, y, red) &&
		    pixel_is(&back, 9, y, gray) && pixel_is(&back, 12, y, gray) &&
		    pixel_is(&back, 40, y, gray) && pixel_is(&back, 37, y, gray);
		if (!ok)
			break;
	}
	CHECK(ok, "left and right edges at row %d", y);
	for (x = 10; x < 40; x++) {
		ok = pixel_is(&back, x, 20, red) && pixel_is(&back, x, 21, red) &&
		    pixel_is(&back, x, 39, red) && pixel_is(&back, x, 38, red) &&
		    pixel_is(&back, x, 40, gray) && (x < 12 || x > 37 || pixel_is(&back, x, 22, gray));
		if (!ok)
			break;
	}
	CHECK(ok, "top and bottom edges at column %d", x);
	/* The tag sits on a strip of the box colour just above the box, text in white. */
	CHECK(pixel_is(&back, 10, 19, red) && pixel_is(&back, 10, 11, red) &&
	    pixel_is(&back, 10, 10, gray), "tag strip above the box");
	for (y = 12, ok = 0; y < 19; y++)
		for (x = 11; x < 16; x++)
			ok += pixel_is(&back, x, y, (qvl_rgb){ 255, 255, 255 });
	CHECK(ok == 10, "glyph '1' drawn in white: %d pixels", ok);

	CHECK(qvl_image_crop(&back, 10, 20, 40, 40, &crop, &err) == 0 && crop.w == 30 &&
	    crop.h == 20 && pixel_is(&crop, 0, 0, red) && pixel_is(&crop, 29, 19, red) &&
	    pixel_is(&crop, 5, 5, gray), "crop");
	qvl_image_free(&crop);
	CHECK(qvl_image_crop(&back, 50, 20, 40, 40, &crop, &err) < 0, "empty crop fails");
	CHECK(qvl_image_crop(&back, -10, -10, 1000, 5, &crop, &err) == 0 && crop.w == 64 &&
	    crop.h == 5, "crop clipped");
	qvl_image_free(&crop);

	/* Clipped primitives never write outside. */
	qvl_draw_line(&img, -1000, -1000, 1000, 2000, 3, red);
	qvl_draw_disc(&img, 63, 47, 10, red);
	qvl_draw_tag(&img, 60, 0, "a long label past the edge", 2, red);
	qvl_draw_text(&img, -20, -3, "clip", 3, red);
	CHECK(pixel_is(&img, 63, 47, red), "disc");
	qvl_image_free(&back);
	qvl_image_free(&img);
}

int
main(int argc, char **argv)
{
	TEST_INIT(argc, argv);
	test_parsers();
	test_lenient();
	test_linear();
	test_assign();
	test_mapping();
	test_smart_resize_table();
	test_output();
	test_draw();
	return TEST_DONE();
}
