/* vit.c: the Qwen2.5-VL vision tower, after transformers' Qwen2_5_VisionTransformerPretrainedModel.
 *
 * As the reference does, the blocks run on the patches in window order (window after
 * window, the merge units of a window in raster order, a unit's patches consecutive): every
 * window, and every temporal slice for full attention, is then a run of consecutive rows,
 * which attention reads where they are (vit_attn.c).  The rows are permuted once after the
 * patch embedding and back after the last block (and for taps); everything else works row
 * by row. */
#include "vit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>

#include "matmul.h"
#include "memcheck.h"
#include "mrope.h"
#include "norm.h"
#include "quant.h"
#include "tensor.h"
#include "vit_attn.h"
#include "vit_plan.h"
#include "vmath.h"

#define RMS_EPS 1e-6       /* fixed in the reference's vision tower, not read from config */
#define ROPE_THETA 10000.0f
#define ROW_CHUNK 32       /* rows per task of the element-wise loops */
#define MAX_GRID_SIDE (1 << 20)

struct vit_block {
	qvl_matrix qkv, proj, gate, up, down;
	float *norm1, *norm2;
	float *qkv_b, *proj_b, *gate_b, *up_b, *down_b;
	int full;            /* full attention (per temporal slice) instead of windows */
};

struct qvl_vit {
	qvl_vision_config cfg;
	qvl_matrix patch;    /* Conv3d weight [D, C, T, P, P] seen as [D, patch_dim] */
	struct vit_block *blocks;
	float *inv_freq;     /* head_dim / 4 rotary frequencies */
};

static int
check_config(const qvl_vision_config *c, qvl_err *err)
{
	int units;

	if (c->depth < 1 || c->depth > 4096 || c->hidden_size < 1 || c->num_heads < 1 ||
	    c->intermediate_size < 1 || c->out_hidden_size < 1)
		return qvl_fail(err, "vision config: bad depth, hidden_size, num_heads or intermediate_size");
	if (c->hidden_size % c->num_heads != 0 || c->head_dim != c->hidden_size / c->num_heads)
		return qvl_fail(err, "vision config: hidden_size %d is not num_heads %d x head_dim",
		    c->hidden_size, c->num_heads);
	if (c->head_dim % 4 != 0 || c->head_dim > QVL_MAX_HEAD_DIM)
		return qvl_fail(err, "vision config: head_dim %d is not a multiple of 4 (2-D rotary) "
		    "up to %d", c->head_dim, QVL_MAX_HEAD_DIM);
	if (c->patch_size < 1 || c->temporal_patch_size < 1 || c->in_channels < 1 ||
	    c->spatial_merge_size < 1)
		return qvl_fail(err, "vision config: bad patch, temporal patch, channel or merge size");
	if (c->patch_dim != c->in_channels * c->temporal_patch_size * c->patch_size * c->patch_size)
		return qvl_fail(err, "vision config: patch_dim %d is not channels x temporal x patch^2",
		    c->patch_dim);
	units = c->window_size / c->spatial_merge_size / c->patch_size;
	if (units < 1)
		return qvl_fail(err, "vision config: window_size %d is smaller than one merge unit",
		    c->window_size);
	for (int i = 0; i < c->n_fullatt; i++)
		if (c->fullatt_block_indexes[i] < 0 || c->fullatt_block_indexes[i] >= c->depth)
			return qvl_fail(err, "vision config: fullatt_block_indexes has %d, depth is %d",
			    c->fullatt_block_indexes[i], c->depth);
	return 0;
}

static int
load_block(const qvl_weights *w, const qvl_vision_config *c, int i, struct vit_block *b,
    qvl_err *err)
{
	int64_t d = c->hidden_size, f = c->intermediate_size;
	char name[128];

#define NAME(suffix) (snprintf(name, sizeof name, "visual.blocks.%d.%s", i, suffix), name)
	if ((b->norm1 = qvl_weights_vector(w, NAME("norm1.weight"), d, err)) == NULL ||
	    (b->norm2 = qvl_weights_vector(w, NAME("norm2.weight"), d, err)) == NULL ||
	    qvl_weights_matrix(w, NAME("attn.qkv.weight"), 3 * d, d, &b->qkv, err) < 0 ||
	    (b->qkv_b = qvl_weights_vector(w, NAME("attn.qkv.bias"), 3 * d, err)) == NULL ||
	    qvl_weights_matrix(w, NAME("attn.proj.weight"), d, d, &b->proj, err) < 0 ||
	    (b->proj_b = qvl_weights_vector(w, NAME("attn.proj.bias"), d, err)) == NULL ||
	    qvl_weights_matrix(w, NAME("mlp.gate_proj.weight"), f, d, &b->gate, err) < 0 ||
	    (b->gate_b = qvl_weights_vector(w, NAME("mlp.gate_proj.bias"), f, err)) == NULL ||
	    qvl_weights_matrix(w, NAME("mlp.up_proj.weight"), f, d, &b->up, err) < 0 ||
	    (b->up_b = qvl_weights_vector(w, NAME("mlp.up_proj.bias"), f, err)) == NULL ||
	    qvl_weights_matrix(w, NAME("mlp.down_proj.weight"), d, f, &b->down, err) < 0 ||
	    (b->down_b = qvl_weights_vector(w, NAME("mlp.down_proj.bias"), d, err)) == NULL)
		return -1;
#undef NAME
	for (int k = 0; k < c->n_fullatt; k++)
		if (c->fullatt_block_indexes[k] == i)
			b->full = 1;
	return 0;
}

qvl_vit *
qvl_vit_new(const qvl_weights *w, const qvl_vision_config *cfg, qvl_err *err)
{
	const char *pname = "visual.patch_embed.proj.weight";
	const qvl_tensor *pt;
	qvl_tensor flat;
	qvl_vit *vit;
	int64_t pshape[5];
	int quarter;

	if (check_config(cfg, err) < 0)
		return NULL;
	if (qvl_weights_find(w, pname) == NULL) {
		qvl_fail(err, "checkpoint has no vision tower (no tensor %s)", pname);
		return NULL;
	}
	pshape[0] = cfg->hidden_size;
	pshape[1] = cfg->in_channels;
	pshape[2] = cfg->temporal_patch_size;
	pshape[3] = cfg->patch_size;
	pshape[4] = cfg->patch_size;
	if ((pt = qvl_weights_get(w, pname, 5, pshape, err)) == NULL)
		return NULL;
	if ((vit = calloc(1, sizeof *vit)) == NULL) {
		qvl_fail_errno(err, "vision tower");
		return NULL;
	}
	vit->cfg = *cfg;
	/* The Conv3d has stride = kernel: it is one product with the kernel flattened in
	 * (channel, frame, y, x) order, the column order of pixel_values. */
	flat = *pt;
	flat.ndim = 2;
	flat.shape[0] = cfg->hidden_size;
	flat.shape[1] = cfg->patch_dim;
	if (qvl_matrix_from_tensor(&flat, &vit->patch, err) < 0)
		goto fail;
	if ((vit->blocks = calloc((size_t)cfg->depth, sizeof *vit->blocks)) == NULL) {
		qvl_fail_errno(err, "vision tower");
		goto fail;
	}
	for (int i = 0; i < cfg->depth; i++)
		if (load_block(w, cfg, i, &vit->blocks[i], err) < 0)
			goto fail;
	quarter = cfg->head_dim / 4;
	if ((vit->inv_freq = malloc((size_t)quarter * sizeof *vit->inv_freq)) == NULL) {
		qvl_fail_errno(err, "vision tower");
		goto fail;
	}
	/* As the reference computes them, in float32: 1 / theta^(2i / (head_dim / 2)). */
	for (int i = 0; i < quarter; i++) {
		float e = (float)(2 * i) / (float)(cfg->head_dim / 2);

		vit->inv_freq[i] = 1.0f / powf(ROPE_THETA, e);
	}
	return vit;
fail:
	qvl_vit_free(vit);
	return NULL;
}

void
qvl_vit_free(qvl_vit *vit)
{
	if (vit == NULL)
		return;
	if (vit->blocks != NULL) {
		for (int i = 0; i < vit->cfg.depth; i++) {
			struct vit_block *b = &vit->blocks[i];

			free(b->norm1);
			free(b->norm2);
			free(b->qkv_b);
			free(b->proj_b);
			free(b->gate_b);
			free(b->up_b);
			free(b->down_b);
		}
		free(vit->blocks);
	}
	free(vit->inv_freq);
	free(vit);
}

int
qvl_vit_check_input(const qvl_vision_config *cfg, const int64_t g[3], int64_t rows, int64_t cols,
    qvl_err *err)
{
	int m = cfg->spatial_merge_size;

	if (cols != cfg->patch_dim)
		return qvl_fail(err, "pixel_values: %lld values per patch, this model takes %d "
		    "(%d channels x %d frames x %d x %d)", (long long)cols, cfg->patch_dim,
		    cfg->in_channels, cfg->temporal_patch_size, cfg->patch_size, cfg->patch_size);
	for (int i = 0; i < 3; i++)
		if (g[i] < 1 || g[i] > MAX_GRID_SIDE)
			return qvl_fail(err, "grid_thw [%lld, %lld, %lld]: sides must be 1 to %d",
			    (long long)g[0], (long long)g[1], (long long)g[2], MAX_GRID_SIDE);
	if (g[1] % m != 0 || g[2] % m != 0)
		return qvl_fail(err, "grid_thw [%lld, %lld, %lld]: h and w must be multiples of the "
		    "merge size %d", (long long)g[0], (long long)g[1], (long long)g[2], m);
	if (g[0] * g[1] * g[2] != rows)
		return qvl_fail(err, "grid_thw [%lld, %lld, %lld] has %lld patches, pixel_values has "
		    "%lld rows", (long long)g[0], (long long)g[1], (long long)g[2],
		    (long long)(g[0] * g[1] * g[2]), (long long)rows);
	return 0;
}

static long
chunks(int64_t n, int64_t per)
{
	return (long)((n + per - 1) / per);
}

/* Element-wise work over rows [chunk * ROW_CHUNK, ...). */
struct rows_job {
	int64_t n, d;
	const float *x, *w;
	float *y;
	uint16_t *yb;         /* swiglu_bf16_task's output */
	/* rope */
	const float *cos, *sin;
	int heads, head_dim;
};

/* Rotate-half rotary on the q and k parts of qkv rows; cos/sin are [n, head_dim / 2]. */
static void
rope_task(void *ctx, long chunk, int thread)
{
	const struct rows_job *j = ctx;
	int64_t r0 = chunk * ROW_CHUNK, r1 = r0 + ROW_CHUNK < j->n ? r0 + ROW_CHUNK : j->n;
	int half = j->head_dim / 2;

	(void)thread;
	for (int64_t r = r0; r < r1; r++) {
		const float *c = j->cos + r * half, *s = j->sin + r * half;

		for (int part = 0; part < 2; part++)
			for (int h = 0; h < j->heads; h++)
				qvl_mrope_apply(j->y + r * j->d + (int64_t)part * (j->d / 3) +
				    (int64_t)h * j->head_dim, c, s, j->head_dim);
	}
}

/* y[i] = silu(y[i]) * x[i] over rows of width d. */
static void
swiglu_task(void *ctx, long chunk, int thread)
{
	const struct rows_job *j = ctx;
	int64_t r0 = chunk * ROW_CHUNK, r1 = r0 + ROW_CHUNK < j->n ? r0 + ROW_CHUNK : j->n;

	(void)thread;
	qvl_silu_mul(j->y + r0 * j->d, j->x + r0 * j->d, (r1 - r0) * j->d);
}

/* yb[i] = BF16(silu(y[i]) * x[i]) over rows of width d, for the down projection. */
static void
swiglu_bf16_task(void *ctx, long chunk, int thread)
{
	const struct rows_job *j = ctx;
	int64_t r0 = chunk * ROW_CHUNK, r1 = r0 + ROW_CHUNK < j->n ? r0 + ROW_CHUNK : j->n;

	(void)thread;
	qvl_silu_mul_bf16(j->y + r0 * j->d, j->x + r0 * j->d, (r1 - r0) * j->d, j->yb + r0 * j->d);
}

/* y += x over rows of width d (the residual adds). */
static void
add_task(void *ctx, long chunk, int thread)
{
	const struct rows_job *j = ctx;
	int64_t r0 = chunk * ROW_CHUNK, r1 = r0 + ROW_CHUNK < j->n ? r0 + ROW_CHUNK : j->n;

	(void)thread;
	for (int64_t i = r0 * j->d; i < r1 * j->d; i++)
		j->y[i] += j->x[i];
}

struct attn_job {
	const qvl_vit_plan *plan;
	const float *qkv;        /* [n, 3 * d] in window order, q and k rotated (float32) */
	float *out;              /* [n, d] */
	int64_t n, d, maxlen;
	int heads, head_dim;
	float **scratch;         /* per thread */
	/* bf16 precision: q and k rotated while packed, output in BF16 */
	const float *cos, *sin;
	uint16_t *packed;        /* [3][n, d] */
	uint16_t *out_b;         /* [n, d] */
	qvl_dnnl_local **local;  /* per thread */
	void **bf16_scratch;     /* per thread */
	atomic_int failed;       /* a product failed: the block's attention goes float32 */
};

static void
attn_task(void *ctx, long index, int thread)
{
	const struct attn_job *j = ctx;
	int64_t g = index / j->heads, len = j->plan->len[g];

	qvl_vit_attn_group(j->qkv, j->d, (int)(index % j->heads), j->head_dim,
	    j->plan->start[g], len, 0, len, j->maxlen, j->scratch[thread], j->out);
}

static void
pack_task(void *ctx, long index, int thread)
{
	const struct attn_job *j = ctx;
	const struct qvl_vit_pack_task *t = &j->plan->packs[index];
	int64_t row0 = j->plan->start[t->group];

	(void)thread;
	qvl_vit_attn_pack(j->qkv, j->n, j->d, j->head_dim, row0, j->plan->len[t->group],
	    row0 + t->r0, row0 + t->r1, j->cos, j->sin, j->packed);
}

static void
attn_bf16_task(void *ctx, long index, int thread)
{
	struct attn_job *j = ctx;
	const struct qvl_vit_bf16_task *t = &j->plan->tasks[index];
	int64_t row0 = j->plan->start[t->group], len = j->plan->len[t->group];

	if (qvl_vit_attn_bf16(j->local[thread], j->packed, j->n, j->d, j->head_dim, row0, len,
	    t->head0, t->nheads, t->i0, t->qn, j->bf16_scratch[thread], j->out_b) != 0)
		atomic_store(&j->failed, 1);
}

/* cos/sin [n, head_dim / 2] of each row of the window order (the processor's row
 * order[i]) at its (row, col) in the un-merged patch grid: the first head_dim / 4
 * frequencies turn with the row, the next head_dim / 4 with the column. */
static void
rope_tables(const qvl_vit *vit, const int64_t g[3], const int64_t *order, float *cos_t,
    float *sin_t)
{
	int64_t m = vit->cfg.spatial_merge_size, mm = m * m, wm = g[2] / m;
	int64_t frame = g[1] * g[2];
	int quarter = vit->cfg.head_dim / 4, half = 2 * quarter;

	for (int64_t r = 0; r < g[0] * frame; r++) {
		int64_t local = order[r] % frame, unit = local / mm, k = local % mm;
		int64_t row = unit / wm * m + k / m, col = unit % wm * m + k % m;

		for (int i = 0; i < quarter; i++) {
			float ay = (float)row * vit->inv_freq[i];
			float ax = (float)col * vit->inv_freq[i];

			cos_t[r * half + i] = cosf(ay);
			sin_t[r * half + i] = sinf(ay);
			cos_t[r * half + quarter + i] = cosf(ax);
			sin_t[r * half + quarter + i] = sinf(ax);
		}
	}
}

static float *
alloc_floats(int64_t a, int64_t b, qvl_err *err)
{
	size_t bytes;
	float *p;

	if (__builtin_mul_overflow((size_t)a, (size_t)b, &bytes) ||
	    __builtin_mul_overflow(bytes, sizeof(float), &bytes)) {
		qvl_fail(err, "vision tower: activations of %lld x %lld floats overflow",
		    (long long)a, (long long)b);
		return NULL;
	}
	if ((p = qvl_alloc(bytes)) == NULL)
		qvl_fail_errno(err, "vision tower: %zu bytes of activations", bytes);
	return p;
}

/* dst[i] = src[order[i]] (to window order) or dst[order[i]] = src[i] (back), rows of d. */
static void
permute_rows(const float *src, const int64_t *order, int64_t n, int64_t d, int back,
    float *dst)
{
	for (int64_t i = 0; i < n; i++) {
		const float *a = back ? src + i * d : src + order[i] * d;
		float *b = back ? dst + order[i] * d : dst + i * d;
		memcpy(b, a, (size_t)d * sizeof *b);
	}
}

/* A forward pass's activations, rows in window order. */
struct work {
	int64_t n, d, f;
	float *res;             /* the residual stream [n, d] */
	float *h, *qkv, *gate, *up;
	const float *cos, *sin; /* rotary angles [n, head_dim / 2] */
	uint16_t *act;          /* bf16 precision: the products' inputs [n, max(d, f)] */
	uint16_t *hidden;       /* and the MLP's SwiGLU [n, f], in the space of attention's
	                         * packed q, k, v (free again by then) */
};

static void
residual_add(qvl_pool *pool, struct work *w, const float *x)
{
	struct rows_job rj = { .n = w->n, .d = w->d, .x = x, .y = w->res };

	qvl_pool_run(pool, chunks(w->n, ROW_CHUNK), add_task, &rj);
}

static void
rotate_qkv(qvl_pool *pool, struct work *w, int heads, int head_dim)
{
	struct rows_job rj = { .n = w->n, .d = 3 * w->d, .y = w->qkv, .cos = w->cos,
	    .sin = w->sin, .heads = heads, .head_dim = head_dim };

	qvl_pool_run(pool, chunks(w->n, ROW_CHUNK), rope_task, &rj);
}

/* res += x · mᵀ + bias (x float32, or BF16 in xb): in the product's pass where it can be,
 * else through y (tmp: qvl_matmul_xb's widening space). */
static void
residual_product(qvl_pool *pool, struct work *w, const qvl_matrix *m, const float *bias,
    const float *x, const uint16_t *xb, float *tmp, float *y)
{
	if (qvl_matmul_add(pool, m, bias, x, xb, w->n, w->res) == 0)
		return;
	if (xb != NULL)
		qvl_matmul_xb(pool, m, bias, xb, w->n, tmp, y);
	else
		qvl_matmul(pool, m, bias, x, w->n, y);
	residual_add(pool, w, y);
}

/* One block in float32 products, the reference's numerics. */
static void
block_f32(qvl_pool *pool, const struct vit_block *b, struct work *w, struct attn_job *aj)
{
	int64_t n = w->n, d = w->d;
	struct rows_job rj = { .n = n, .d = w->f, .x = w->up, .y = w->gate };

	qvl_rms_norm(pool, w->res, b->norm1, n, d, RMS_EPS, w->h);
	qvl_matmul(pool, &b->qkv, b->qkv_b, w->h, n, w->qkv);
	rotate_qkv(pool, w, aj->heads, aj->head_dim);
	qvl_pool_run(pool, (long)(aj->plan->ngroups * aj->heads), attn_task, aj);
	/* The projection lands in qkv's space, free again after attention. */
	residual_product(pool, w, &b->proj, b->proj_b, w->h, NULL, NULL, w->qkv);

	qvl_rms_norm(pool, w->res, b->norm2, n, d, RMS_EPS, w->h);
	qvl_matmul(pool, &b->gate, b->gate_b, w->h, n, w->gate);
	qvl_matmul(pool, &b->up, b->up_b, w->h, n, w->up);
	qvl_pool_run(pool, chunks(n, ROW_CHUNK), swiglu_task, &rj);
	residual_product(pool, w, &b->down, b->down_b, w->gate, NULL, NULL, w->h);
}

/* One block in bf16 precision: the passes before each product (RMSNorm, RoPE with the
 * packing for attention, attention's output, SwiGLU) write its BF16 input themselves
 * instead of float32 for the product to round (the same bits, one pass fewer each). */
static void
block_bf16(qvl_pool *pool, const struct vit_block *b, struct work *w, struct attn_job *aj)
{
	int64_t n = w->n, d = w->d;
	struct rows_job rj = { .n = n, .d = w->f, .x = w->up, .y = w->gate, .yb = w->act };

	qvl_rms_norm_bf16(pool, w->res, b->norm1, n, d, RMS_EPS, w->act);
	qvl_matmul_xb(pool, &b->qkv, b->qkv_b, w->act, n, w->h, w->qkv);
	atomic_store(&aj->failed, 0);
	qvl_pool_run(pool, (long)aj->plan->npacks, pack_task, aj);
	qvl_pool_run(pool, (long)aj->plan->ntasks, attn_bf16_task, aj);
	if (atomic_load(&aj->failed)) {
		/* oneDNN failed (out of memory): this block's attention again in float32 */
		rotate_qkv(pool, w, aj->heads, aj->head_dim);
		qvl_pool_run(pool, (long)(aj->plan->ngroups * aj->heads), attn_task, aj);
		qvl_round_bf16(w->h, 1.0f, n * d, w->act);
	}
	residual_product(pool, w, &b->proj, b->proj_b, NULL, w->act, w->h, w->qkv);

	qvl_rms_norm_bf16(pool, w->res, b->norm2, n, d, RMS_EPS, w->act);
	/* The SwiGLU in its products' pass where it can be, else two products and the gating
	 * (with the residual adds in the products too: 812 x 812 3.88-4.12 -> 3.57-3.82 s,
	 * A4 2.78-2.98 -> 2.31-2.62 s, the same bits). */
	if (qvl_matmul_glu(pool, &b->gate, b->gate_b, &b->up, b->up_b, NULL, w->act, n,
	    w->hidden) == 0) {
		residual_product(pool, w, &b->down, b->down_b, NULL, w->hidden, w->gate, w->h);
		return;
	}
	qvl_matmul_xb(pool, &b->gate, b->gate_b, w->act, n, w->h, w->gate);
	qvl_matmul_xb(pool, &b->up, b->up_b, w->act, n, w->h, w->up);
	qvl_pool_run(pool, chunks(n, ROW_CHUNK), swiglu_bf16_task, &rj);
	/* gate is free again: the widening space if the product is not BF16 after all */
	residual_product(pool, w, &b->down, b->down_b, NULL, w->act, w->gate, w->h);
}

/* One oneDNN context per pool thread, or NULL (then attention stays float32). */
static qvl_dnnl_local **
bf16_locals(int nthreads)
{
	qvl_dnnl_local **local = calloc((size_t)nthreads, sizeof *local);

	for (int i = 0; local != NULL && i < nthreads; i++)
		if ((local[i] = qvl_dnnl_local_new()) == NULL) {
			while (i-- > 0)
				qvl_dnnl_local_free(local[i]);
			free(local);
			local = NULL;
		}
	return local;
}

int
qvl_vit_forward(qvl_vit *vit, qvl_pool *pool, const float *pixels, const int64_t g[3], float *x,
    const unsigned char *tap_mask, qvl_vit_tap_fn tap, void *tap_ctx, qvl_err *err)
{
	const qvl_vision_config *c = &vit->cfg;
	int64_t n, d = c->hidden_size, f = c->intermediate_size, hd = c->head_dim;
	int nthreads = pool != NULL ? qvl_pool_threads(pool) : 1;
	qvl_vit_plan win = { 0 }, full = { 0 };
	float *res = NULL, *h = x, *qkv = NULL, *gate = NULL, *up = NULL, *cos_t = NULL;
	float *sin_t = NULL;
	float **scratch = NULL;
	int64_t maxlen, per_thread;
	/* bf16 precision: attention's products in oneDNN, one context per pool thread */
	qvl_dnnl_local **local = NULL;
	void **bf16_scratch = NULL;
	uint16_t *packed = NULL, *act = NULL;
	size_t bf16_bytes = 0;
	struct work work;
	struct attn_job aj;
	int rc = -1;

	if (qvl_vit_check_input(c, g, g[0] * g[1] * g[2], c->patch_dim, err) < 0)
		return -1;
	n = g[0] * g[1] * g[2];
	if (qvl_vit_plan_windows(c, g, &win, err) < 0 || qvl_vit_plan_slices(g, &full, err) < 0)
		goto out;
	maxlen = win.maxlen > full.maxlen ? win.maxlen : full.maxlen;
	per_thread = (int64_t)qvl_vit_attn_scratch_floats(maxlen, (int)hd);
	if (pool != NULL && qvl_pool_precision(pool) == QVL_PRECISION_BF16 &&
	    (local = bf16_locals(nthreads)) != NULL) {
		if (qvl_vit_plan_bf16(&win, c->num_heads, c->head_dim, err) < 0 ||
		    qvl_vit_plan_bf16(&full, c->num_heads, c->head_dim, err) < 0)
			goto out;
		bf16_bytes = win.scratch_bytes > full.scratch_bytes ? win.scratch_bytes :
		    full.scratch_bytes;
	}
	{
		/* all activations at once, asked before any is touched (an OOM kill says nothing) */
		double floats = (double)n * (double)(4 * d + 2 * f + hd) +
		    (double)per_thread * nthreads + (local != NULL ?
		    0.5 * (double)n * (double)(3 * d > f ? 3 * d : f) +
		    0.5 * (double)n * (double)(f > d ? f : d) +
		    (double)bf16_bytes / sizeof(float) * nthreads : 0);
		char what[96];
		snprintf(what, sizeof what, "vision tower: activations for %lld patches",
		    (long long)n);
		if (floats < 1e18 && qvl_mem_check((uint64_t)(floats * sizeof(float)), what,
		    err) < 0)
			goto out;
	}
	if ((res = alloc_floats(n, d, err)) == NULL || (qkv = alloc_floats(n, 3 * d, err)) == NULL ||
	    (gate = alloc_floats(n, f, err)) == NULL || (up = alloc_floats(n, f, err)) == NULL ||
	    (cos_t = alloc_floats(n, hd / 2, err)) == NULL ||
	    (sin_t = alloc_floats(n, hd / 2, err)) == NULL)
		goto out;
	if ((scratch = calloc((size_t)nthreads, sizeof *scratch)) == NULL) {
		qvl_fail_errno(err, "vision tower");
		goto out;
	}
	for (int i = 0; i < nthreads; i++)
		if ((scratch[i] = alloc_floats(per_thread, 1, err)) == NULL)
			goto out;
	if (local != NULL) {
		if ((packed = qvl_alloc((size_t)(n * (3 * d > f ? 3 * d : f)) *
		    sizeof *packed)) == NULL ||
		    (act = qvl_alloc((size_t)(n * (f > d ? f : d)) * sizeof *act)) == NULL ||
		    (bf16_scratch = calloc((size_t)nthreads, sizeof *bf16_scratch)) == NULL) {
			qvl_fail_errno(err, "vision tower: attention in bf16");
			goto out;
		}
		for (int i = 0; i < nthreads; i++)
			if ((bf16_scratch[i] = qvl_alloc(bf16_bytes)) == NULL) {
				qvl_fail_errno(err, "vision tower: attention in bf16");
				goto out;
			}
	}
	rope_tables(vit, g, win.idx, cos_t, sin_t);
	work = (struct work){ .n = n, .d = d, .f = f, .res = res, .h = h, .qkv = qkv,
	    .gate = gate, .up = up, .cos = cos_t, .sin = sin_t, .act = act, .hidden = packed };
	aj = (struct attn_job){ .qkv = qkv, .out = h, .n = n, .d = d, .maxlen = maxlen,
	    .heads = c->num_heads, .head_dim = c->head_dim, .scratch = scratch, .cos = cos_t,
	    .sin = sin_t, .packed = packed, .out_b = act, .local = local,
	    .bf16_scratch = bf16_scratch };

	qvl_matmul(pool, &vit->patch, NULL, pixels, n, x);
	if (tap != NULL && tap_mask != NULL && tap_mask[0] && tap(tap_ctx, -1, x, n, d, err) != 0)
		goto out;
	/* The residual stream in window order; the caller's x (h) is the blocks' work buffer. */
	permute_rows(x, win.idx, n, d, 0, res);
	for (int bi = 0; bi < c->depth; bi++) {
		const struct vit_block *b = &vit->blocks[bi];

		aj.plan = b->full ? &full : &win;
		if (local != NULL)
			block_bf16(pool, b, &work, &aj);
		else
			block_f32(pool, b, &work, &aj);
		if (tap != NULL && tap_mask != NULL && tap_mask[bi + 1]) {
			permute_rows(res, win.idx, n, d, 1, h);
			if (tap(tap_ctx, bi, h, n, d, err) != 0)
				goto out;
		}
	}
	permute_rows(res, win.idx, n, d, 1, x);
	rc = 0;
out:
	qvl_vit_plan_free(&win);
	qvl_vit_plan_free(&full);
	if (scratch != NULL)
		for (int i = 0; i < nthreads; i++)
			free(scratch[i]);
	free(scratch);
	if (local != NULL)
		for (int i = 0; i < nthreads; i++) {
			qvl_dnnl_local_free(local[i]);
			if (bf16_scratch != NULL)
				free(bf16_scratch[i]);
		}
	free(local);
	free(bf16_scratch);
	free(packed);
	free(act);
	free(res);
	free(qkv);
	free(gate);
	free(up);
	free(cos_t);
	free(sin_t);
	return rc;
}

static double
attention_flops(const qvl_vision_config *c, const int64_t g[3], int full)
{
	int64_t m = c->spatial_merge_size, units = c->window_size / m / c->patch_size;
	int64_t hm = g[1] / m, wm = g[2] / m;
	double sumsq = 0;

	if (full) {
		sumsq = (double)(g[1] * g[2]) * (double)(g[1] * g[2]);
	} else if (units > 0) {
		for (int64_t y = 0; y < hm; y += units)
			for (int64_t xx = 0; xx < wm; xx += units) {
				double l = (double)((hm - y < units ? hm - y : units) *
				    (wm - xx < units ? wm - xx : units) * m * m);

				sumsq += l * l;
			}
	}
	/* q·kᵀ and p·v: 2 flops per multiply-add, len² x head_dim per head. */
	return (double)g[0] * sumsq * 2.0 * 2.0 * c->hidden_size;
}

double
qvl_vit_flops(const qvl_vision_config *c, const int64_t g[3])
{
	double n = (double)g[0] * (double)g[1] * (double)g[2], d = c->hidden_size;
	double f = c->intermediate_size, total, linear;
	int nfull = 0;

	for (int i = 0; i < c->depth; i++)
		for (int k = 0; k < c->n_fullatt; k++)
			if (c->fullatt_block_indexes[k] == i) {
				nfull++;
				break;
			}
	linear = 2.0 * n * (3 * d * d + d * d + 3 * d * f);
	total = 2.0 * n * c->patch_dim * d + c->depth * linear;
	total += nfull * attention_flops(c, g, 1) + (c->depth - nfull) * attention_flops(c, g, 0);
	return total;
}
