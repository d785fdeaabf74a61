/* test_vit: the vision tower and merger against the reference's golden tensors (every case of
 * both reference models: partial windows, min/max pixels, two images in one tensor, video),
 * and the errors for bad input and broken checkpoints. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../lib/config.h"
#include "../lib/merger.h"
#include "../lib/pool.h"
#include "../lib/safetensors.h"
#include "../lib/tensor.h"
#include "../lib/vit.h"
#include "test.h"

#define TOL 1e-4 /* of max |reference|, per tensor */

struct model {
	const char *dir;
	qvl_config cfg;
	qvl_weights *w;
	qvl_vit *vit;
	qvl_merger *merger;
};

/* Everything one golden case produces, whole-tensor (all images of the case). */
struct result {
	int64_t n, d;
	float **taps;        /* depth + 1 tensors [n, d]: patch_embed, block 0 .. */
	float *hidden, *ln_q, *embeds;
	int64_t off;         /* first row of the image being run */
};

static int
load_model(struct model *m, const char *dir)
{
	qvl_err err;

	memset(m, 0, sizeof *m);
	m->dir = dir;
	if (qvl_config_load(dir, &m->cfg, &err) < 0 ||
	    (m->w = qvl_weights_open(dir, &err)) == NULL ||
	    (m->vit = qvl_vit_new(m->w, &m->cfg.vision, &err)) == NULL ||
	    (m->merger = qvl_merger_new(m->w, &m->cfg.vision, &err)) == NULL) {
		CHECK(0, "%s: %s", dir, err.msg);
		return -1;
	}
	return 0;
}

static void
free_model(struct model *m)
{
	qvl_merger_free(m->merger);
	qvl_vit_free(m->vit);
	qvl_weights_close(m->w);
}

/* A golden tensor as float32 (copied: the mapping need not be aligned for floats). */
static float *
golden_f32(const qvl_weights *g, const char *name, int64_t rows, int64_t cols)
{
	const qvl_tensor *t = qvl_weights_find(g, name);
	float *v;

	if (t == NULL || t->ndim != 2 || t->shape[0] != rows || t->shape[1] != cols) {
		CHECK(0, "golden %s: missing or not [%lld, %lld]", name, (long long)rows,
		    (long long)cols);
		return NULL;
	}
	v = malloc((size_t)(rows * cols) * sizeof *v);
	qvl_tensor_to_f32(t, v);
	return v;
}

static void
compare(const char *what, const char *name, const float *got, const qvl_weights *g,
    const char *ref_name, int64_t rows, int64_t cols)
{
	float *ref = golden_f32(g, ref_name, rows, cols);
	double maxabs = 0, maxref = 0;

	if (ref == NULL || got == NULL) {
		free(ref);
		return;
	}
	for (int64_t i = 0; i < rows * cols; i++) {
		double d = fabs((double)got[i] - ref[i]);

		if (d > maxabs || d != d)
			maxabs = d != d ? INFINITY : d;
		if (fabs(ref[i]) > maxref)
			maxref = fabs(ref[i]);
	}
	CHECK(maxabs <= TOL * maxref, "%s %s vs %s: max abs %.3g, max|ref| %.3g, rel %.3g", what,
	    name, ref_name, maxabs, maxref, maxabs / maxref);
	if (test_verbose)
		printf("     %-18s %-16s max abs %.3e  / max|ref| %.3e\n", what, name, maxabs,
		    maxabs / maxref);
	free(ref);
}

static int
keep_tap(void *ctx, int block, const float *x, int64_t n, int64_t dim, qvl_err *err)
{
	struct result *r = ctx;

	(void)err;
	memcpy(r->taps[block + 1] + r->off * dim, x, (size_t)(n * dim) * sizeof *x);
	return 0;
}

/* Runs the tower and merger on every image (or video) of a golden case and compares the
 * taps, vit_hidden, ln_q and the embeddings with the reference. */
static void
run_case(struct model *m, qvl_pool *pool, const char *dir, const char *cname, int video)
{
	const qvl_vision_config *c = &m->cfg.vision;
	const char *pv_name = video ? "pixel_values_videos" : "pixel_values";
	const char *grid_name = video ? "video_grid_thw" : "image_grid_thw";
	const char *emb_name = video ? "video_embeds" : "image_embeds";
	char path[512], ref[32];
	const qvl_tensor *pvt, *gt;
	unsigned char *mask;
	struct result r = { 0 };
	qvl_weights *g;
	float *pixels;
	int64_t nimg, unit = c->spatial_merge_size * c->spatial_merge_size, row = 0;
	qvl_err err;

	snprintf(path, sizeof path, "%s/%s.safetensors", dir, cname);
	if ((g = qvl_weights_open(path, &err)) == NULL) {
		CHECK(0, "%s", err.msg);
		return;
	}
	pvt = qvl_weights_find(g, pv_name);
	gt = qvl_weights_find(g, grid_name);
	if (pvt == NULL || gt == NULL || gt->dtype != QVL_I64 || gt->ndim != 2 ||
	    gt->shape[1] != 3 || pvt->ndim != 2) {
		CHECK(0, "%s: no %s or %s", path, pv_name, grid_name);
		qvl_weights_close(g);
		return;
	}
	r.n = pvt->shape[0];
	r.d = c->hidden_size;
	nimg = gt->shape[0];
	pixels = qvl_alloc((size_t)qvl_tensor_numel(pvt) * sizeof *pixels);
	qvl_tensor_to_f32(pvt, pixels);
	mask = malloc((size_t)c->depth + 1);
	memset(mask, 1, (size_t)c->depth + 1);
	r.taps = calloc((size_t)c->depth + 1, sizeof *r.taps);
	for (int i = 0; i <= c->depth; i++)
		r.taps[i] = calloc((size_t)(r.n * r.d), sizeof(float));
	r.hidden = qvl_alloc((size_t)(r.n * r.d) * sizeof(float));
	r.ln_q = qvl_alloc((size_t)(r.n * r.d) * sizeof(float));
	r.embeds = qvl_alloc((size_t)(r.n / unit * c->out_hidden_size) * sizeof(float));

	for (int64_t k = 0; k < nimg; k++) {
		int64_t grid[3], n;

		memcpy(grid, (const int64_t *)gt->data + 3 * k, sizeof grid);
		n = grid[0] * grid[1] * grid[2];
		if (row + n > r.n) {
			CHECK(0, "%s: grids cover more rows than %s", cname, pv_name);
			break;
		}
		r.off = row;
		if (qvl_vit_forward(m->vit, pool, pixels + row * c->patch_dim, grid,
		    r.hidden + row * r.d, mask, keep_tap, &r, &err) < 0 ||
		    qvl_merger_forward(m->merger, pool, r.hidden + row * r.d, n,
		    r.embeds + row / unit * c->out_hidden_size, r.ln_q + row * r.d, &err) < 0) {
			CHECK(0, "%s image %lld: %s", cname, (long long)k, err.msg);
			break;
		}
		row += n;
	}
	CHECK(row == r.n, "%s: grids cover %lld of %lld rows", cname, (long long)row,
	    (long long)r.n);
	compare(cname, "patch_embed", r.taps[0], g, "vis_patch_embed", r.n, r.d);
	for (int i = 0; i < c->depth; i++) {
		char tap[32];

		snprintf(ref, sizeof ref, "vis_block%d", i);
		snprintf(tap, sizeof tap, "block.%d", i);
		compare(cname, tap, r.taps[i + 1], g, ref, r.n, r.d);
	}
	snprintf(ref, sizeof ref, "vis_block%d", c->depth - 1);
	compare(cname, "vit_hidden", r.hidden, g, ref, r.n, r.d);
	compare(cname, "ln_q", r.ln_q, g, "vis_merger_ln_q", r.n, r.d);
	compare(cname, emb_name, r.embeds, g, emb_name, r.n / unit, c->out_hidden_size);

	for (int i = 0; i <= c->depth; i++)
		free(r.taps[i]);
	free(r.taps);
	free(r.hidden);
	free(r.ln_q);
	free(r.embeds);
	free(mask);
	free(pixels);
	qvl_weights_close(g);
}

/* A safetensors image in memory holding the visual.* tensors of src, without `drop` and with
 * `reshape` given the transposed shape (same bytes, wrong shape); caller frees *buf. */
static qvl_weights *
rebuilt(const qvl_weights *src, const char *drop, const char *reshape, int keep_vision,
    void **buf, qvl_err *err)
{
	json_t *hdr = json_object();
	size_t off = 0, hlen, total;
	char *text, *p;

	for (int pass = 0; pass < 2; pass++) {
		off = 0;
		for (size_t i = 0; i < qvl_weights_count(src); i++) {
			const char *name = qvl_weights_name(src, i);
			const qvl_tensor *t = qvl_weights_at(src, i);
			json_t *shape;

			if ((strncmp(name, "visual.", 7) == 0) != keep_vision ||
			    (drop != NULL && strcmp(name, drop) == 0))
				continue;
			/* Skip the 19 MB embedding: the tower never reads it. */
			if (t->nbytes > (1u << 20))
				continue;
			if (pass == 1) {
				memcpy((char *)*buf + 8 + hlen + off, t->data, t->nbytes);
			} else {
				shape = json_array();
				for (int d = 0; d < t->ndim; d++)
					json_array_append_new(shape, json_integer(
					    reshape != NULL && strcmp(name, reshape) == 0 ?
					    t->shape[t->ndim - 1 - d] : t->shape[d]));
				json_object_set_new(hdr, name, json_pack("{s:s, s:o, s:[I,I]}",
				    "dtype", qvl_dtype_name(t->dtype), "shape", shape,
				    "data_offsets", (json_int_t)off, (json_int_t)(off + t->nbytes)));
			}
			off += t->nbytes;
		}
		if (pass == 0) {
			text = json_dumps(hdr, JSON_COMPACT | JSON_SORT_KEYS);
			hlen = (strlen(text) + 7) / 8 * 8;
			total = 8 + hlen + off;
			*buf = calloc(1, total);
			p = *buf;
			for (int b = 0; b < 8; b++)
				p[b] = (char)((uint64_t)hlen >> (8 * b));
			memset(p + 8, ' ', hlen);
			memcpy(p + 8, text, strlen(text));
			free(text);
		}
	}
	json_decref(hdr);
	return qvl_weights_from_buffer(*buf, total, "rebuilt", err);
}

static void
expect_load_error(struct model *m, const char *drop, const char *reshape, int keep_vision,
    const char *want)
{
	void *buf = NULL;
	qvl_weights *w;
	qvl_vit *vit = NULL;
	qvl_merger *mg = NULL;
	qvl_err err = { "" };

	if ((w = rebuilt(m->w, drop, reshape, keep_vision, &buf, &err)) == NULL) {
		CHECK(0, "rebuilt checkpoint: %s", err.msg);
		free(buf);
		return;
	}
	vit = qvl_vit_new(w, &m->cfg.vision, &err);
	if (vit != NULL)
		mg = qvl_merger_new(w, &m->cfg.vision, &err);
	CHECK((vit == NULL || mg == NULL) && strstr(err.msg, want) != NULL,
	    "broken checkpoint (drop %s, reshape %s): error '%s' names '%s'",
	    drop ? drop : "-", reshape ? reshape : "-", err.msg, want);
	qvl_merger_free(mg);
	qvl_vit_free(vit);
	qvl_weights_close(w);
	free(buf);
}

static void
test_errors(struct model *m)
{
	const qvl_vision_config *c = &m->cfg.vision;
	int64_t g[3] = { 1, 4, 6 };
	qvl_err err = { "" };
	void *buf = NULL;
	qvl_weights *w;
	qvl_vit *vit;
	float x[8] = { 0 }, out[8];

	CHECK(qvl_vit_check_input(c, g, 24, c->patch_dim, &err) == 0, "good grid: %s", err.msg);
	CHECK(qvl_vit_check_input(c, g, 24, 588, &err) < 0 && strstr(err.msg, "pixel_values") &&
	    strstr(err.msg, "1176"), "width 588 refused: %s", err.msg);
	CHECK(qvl_vit_check_input(c, g, 20, c->patch_dim, &err) < 0 &&
	    strstr(err.msg, "grid_thw"), "grid that does not match N: %s", err.msg);
	g[1] = 5;
	CHECK(qvl_vit_check_input(c, g, 30, c->patch_dim, &err) < 0 &&
	    strstr(err.msg, "merge"), "odd grid side: %s", err.msg);
	g[1] = 0;
	CHECK(qvl_vit_check_input(c, g, 0, c->patch_dim, &err) < 0, "empty grid: %s", err.msg);
	CHECK(qvl_merger_forward(m->merger, NULL, x, 2, out, NULL, &err) < 0 &&
	    strstr(err.msg, "merge unit"), "merger on 2 rows: %s", err.msg);

	expect_load_error(m, "visual.blocks.2.attn.proj.bias", NULL, 1,
	    "visual.blocks.2.attn.proj.bias");
	expect_load_error(m, NULL, "visual.blocks.1.mlp.up_proj.weight", 1,
	    "visual.blocks.1.mlp.up_proj.weight");
	expect_load_error(m, "visual.merger.mlp.2.bias", NULL, 1, "visual.merger.mlp.2.bias");
	expect_load_error(m, NULL, "visual.patch_embed.proj.weight", 1,
	    "visual.patch_embed.proj.weight");
	expect_load_error(m, NULL, NULL, 0, "no vision tower");

	/* The rebuilt vision-only checkpoint itself loads. */
	if ((w = rebuilt(m->w, NULL, NULL, 1, &buf, &err)) != NULL) {
		vit = qvl_vit_new(w, c, &err);
		CHECK(vit != NULL, "vision-only checkpoint loads: %s", vit ? "" : err.msg);
		qvl_vit_free(vit);
		qvl_weights_close(w);
	}
	free(buf);
}

static void
test_flops(void)
{
	qvl_vision_config c = {
		.depth = 32, .hidden_size = 1280, .intermediate_size = 3420, .num_heads = 16,
		.head_dim = 80, .out_hidden_size = 2048, .in_channels = 3, .patch_size = 14,
		.temporal_patch_size = 2, .spatial_merge_size = 2, .window_size = 112,
		.fullatt_block_indexes = { 7, 15, 23, 31 }, .n_fullatt = 4, .patch_dim = 1176,
	};
	int64_t a4[3] = { 1, 42, 60 };
	double tf = (qvl_vit_flops(&c, a4) + qvl_merger_flops(&c, 2520)) / 1e12;

	/* ../shared/BENCHMARKS.md: about 3.37 TFLOP for the 3B tower on the A4 page. */
	CHECK(tf > 3.3 && tf < 3.45, "3B tower + merger on 2520 patches: %.3f TFLOP", tf);
}

int
main(int argc, char **argv)
{
	struct model tiny, untied;
	qvl_pool *pool;
	qvl_err err;

	TEST_INIT(argc, argv);
	if ((pool = qvl_pool_new(2, &err)) == NULL) {
		CHECK(0, "pool: %s", err.msg);
		return TEST_DONE();
	}
	if (load_model(&tiny, TEST_DATA "/models/tiny") == 0) {
		const char *dir = TEST_DATA "/golden/tiny";

		run_case(&tiny, pool, dir, "img_main", 0);
		run_case(&tiny, NULL, dir, "img_main", 0);
		run_case(&tiny, pool, dir, "img_small_minpix", 0);
		run_case(&tiny, pool, dir, "img_maxpix", 0);
		run_case(&tiny, pool, dir, "two_images", 0);
		run_case(&tiny, pool, dir, "video", 1);
		test_errors(&tiny);
		free_model(&tiny);
	}
	if (load_model(&untied, TEST_DATA "/models/untied") == 0) {
		const char *dir = TEST_DATA "/golden/untied";

		run_case(&untied, pool, dir, "u_img_wide", 0);
		run_case(&untied, pool, dir, "u_two_images", 0);
		free_model(&untied);
	}
	test_flops();
	qvl_pool_free(pool);
	return TEST_DONE();
}
