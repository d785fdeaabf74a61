/* llm.c: Qwen2 decoder layers with M-RoPE and a KV cache, over mmapped BF16 weights.
 *
 * Numerics follow transformers' float32 path on the checkpoint's weights: RMSNorm in float32
 * (the weight multiplies after normalising), q/k/v with bias, rotate-half RoPE per M-RoPE
 * section, softmax(q·kᵀ/sqrt(head_dim)) with a causal mask, o_proj without bias, SwiGLU MLP
 * without bias.  Prompt rows go through sgemm in chunks; a single decoded token goes through
 * qvl_matmul's one-row kernels and an attention loop split over heads, whose results do not
 * depend on the number of threads. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm.h"
#include "matmul.h"
#include "memcheck.h"
#include "mrope.h"
#include "norm.h"
#include "quant.h"
#include "vmath.h"

/* Prompt rows per pass through the layers, by default.  Each pass widens every weight to
 * float32 tiles (f32 products) once, so more rows amortize it: 3B, 510 tokens, 2 Zen 4
 * cores, f32: 256 rows 17.8 s, 512 rows 16.5 s; 999 tokens 35.2 / 32.5 s, and 1024 rows no
 * better (32.3 s). */
#define CHUNK_ROWS 512
/* Queries of a prompt chunk whose scores are computed together (per head and thread). */
#define CAUSAL_BLOCK 64

struct layer {
	qvl_matrix q, k, v, o, gate, up, down;
	float *bq, *bk, *bv, *ln_attn, *ln_mlp;
	float *kcache, *vcache;   /* [cap, kv_dim] each */
};

struct qvl_llm {
	qvl_config cfg;
	int hidden, heads, kv_heads, head_dim, q_dim, kv_dim, inter, vocab, nlayers;
	float eps, scale;
	struct layer *layers;
	const qvl_tensor *embed;
	qvl_matrix lm_head;
	float *norm;
	float *inv_freq;
	int64_t cap, cached;
	int64_t prefill_rows; /* prompt rows per pass through the layers */
	/* scratch, grown on demand */
	int64_t scratch_rows, scratch_keys;
	float *xn, *q, *k, *v, *o, *gate, *up, *tmp, *scores, *cosv, *sinv;
};

static const qvl_tensor *
get(const qvl_weights *w, const char *prefix, const char *name, int ndim, int64_t d0, int64_t d1,
    qvl_err *err)
{
	char full[256];
	int64_t shape[2] = {d0, d1};

	snprintf(full, sizeof full, "%s%s", prefix, name);
	return qvl_weights_get(w, full, ndim, shape, err);
}

static int
get_matrix(const qvl_weights *w, const char *prefix, const char *name, int64_t rows,
    int64_t cols, qvl_matrix *m, qvl_err *err)
{
	char full[256];

	/* BF16 as the checkpoint has it, or q8/q4 from qvl-quantize. */
	snprintf(full, sizeof full, "%s%s", prefix, name);
	if (qvl_weights_matrix(w, full, rows, cols, m, err) < 0)
		return qvl_err_prefix(err, "language model");
	return 0;
}

static float *
get_vector(const qvl_weights *w, const char *prefix, const char *name, int64_t n, qvl_err *err)
{
	char full[256];
	float *v;

	snprintf(full, sizeof full, "%s%s", prefix, name);
	if ((v = qvl_weights_vector(w, full, n, err)) == NULL)
		qvl_err_prefix(err, "language model");
	return v;
}

qvl_llm *
qvl_llm_new(const qvl_weights *w, const qvl_config *cfg, qvl_err *err)
{
	const qvl_text_config *tc = &cfg->text;
	const char *prefix = "model.";
	char name[128];
	qvl_llm *m;

	if (tc->hidden_size <= 0 || tc->num_attention_heads <= 0 || tc->num_key_value_heads <= 0 ||
	    tc->num_attention_heads % tc->num_key_value_heads || tc->head_dim <= 0 ||
	    tc->head_dim % 2 || tc->num_hidden_layers <= 0 || tc->vocab_size <= 0 ||
	    tc->intermediate_size <= 0 ||
	    tc->mrope_section[0] + tc->mrope_section[1] + tc->mrope_section[2] != tc->head_dim / 2) {
		qvl_fail(err, "language model: inconsistent config (heads %d, kv heads %d, head_dim "
		    "%d, mrope_section [%d, %d, %d])", tc->num_attention_heads,
		    tc->num_key_value_heads, tc->head_dim, tc->mrope_section[0],
		    tc->mrope_section[1], tc->mrope_section[2]);
		return NULL;
	}
	/* YaRN and the like change the frequency of every position: refused, not ignored (the
	 * vision tower, which has its own 2-D rotary positions, runs on such a config) */
	if (tc->rope_type[0] != '\0') {
		qvl_fail(err, "config.json: %s: qvl computes the default rotary embedding (M-RoPE) "
		    "only", tc->rope_type);
		return NULL;
	}
	if ((m = calloc(1, sizeof *m)) == NULL) {
		qvl_fail(err, "language model: out of memory");
		return NULL;
	}
	m->cfg = *cfg;
	m->prefill_rows = CHUNK_ROWS;
	m->hidden = tc->hidden_size;
	m->heads = tc->num_attention_heads;
	m->kv_heads = tc->num_key_value_heads;
	m->head_dim = tc->head_dim;
	m->q_dim = m->heads * m->head_dim;
	m->kv_dim = m->kv_heads * m->head_dim;
	m->inter = tc->intermediate_size;
	m->vocab = tc->vocab_size;
	m->nlayers = tc->num_hidden_layers;
	m->eps = (float)tc->rms_norm_eps;
	m->scale = (float)(1.0 / sqrt((double)m->head_dim));

	m->embed = get(w, prefix, "embed_tokens.weight", 2, m->vocab, m->hidden, err);
	if (m->embed == NULL) {
		qvl_err_prefix(err, "language model");
		goto fail;
	}
	if (tc->tie_word_embeddings && qvl_weights_find(w, "lm_head.weight") == NULL &&
	    qvl_weights_find(w, "lm_head.weight.q8") == NULL &&
	    qvl_weights_find(w, "lm_head.weight.q4") == NULL) {
		/* Tied: the table itself, or the quantized copy qvl-quantize made of it. */
		if (get_matrix(w, prefix, "embed_tokens.weight", m->vocab, m->hidden,
		    &m->lm_head, err) < 0)
			goto fail;
	} else if (get_matrix(w, "", "lm_head.weight", m->vocab, m->hidden, &m->lm_head, err) < 0)
		goto fail;
	if ((m->norm = get_vector(w, prefix, "norm.weight", m->hidden, err)) == NULL)
		goto fail;
	if ((m->layers = calloc((size_t)m->nlayers, sizeof *m->layers)) == NULL ||
	    (m->inv_freq = malloc((size_t)m->head_dim / 2 * sizeof *m->inv_freq)) == NULL) {
		qvl_fail(err, "language model: out of memory");
		goto fail;
	}
	qvl_mrope_inv_freq(tc->rope_theta, m->head_dim, m->inv_freq);
	for (int i = 0; i < m->nlayers; i++) {
		struct layer *l = &m->layers[i];
		char lp[96];

		snprintf(lp, sizeof lp, "%slayers.%d.", prefix, i);
#define MAT(field, nm, r, c) do { snprintf(name, sizeof name, "%s", nm); \
	if (get_matrix(w, lp, name, r, c, &l->field, err) < 0) goto fail; } while (0)
#define VEC(field, nm, n) do { snprintf(name, sizeof name, "%s", nm); \
	if ((l->field = get_vector(w, lp, name, n, err)) == NULL) goto fail; } while (0)
		MAT(q, "self_attn.q_proj.weight", m->q_dim, m->hidden);
		MAT(k, "self_attn.k_proj.weight", m->kv_dim, m->hidden);
		MAT(v, "self_attn.v_proj.weight", m->kv_dim, m->hidden);
		MAT(o, "self_attn.o_proj.weight", m->hidden, m->q_dim);
		MAT(gate, "mlp.gate_proj.weight", m->inter, m->hidden);
		MAT(up, "mlp.up_proj.weight", m->inter, m->hidden);
		MAT(down, "mlp.down_proj.weight", m->hidden, m->inter);
		VEC(bq, "self_attn.q_proj.bias", m->q_dim);
		VEC(bk, "self_attn.k_proj.bias", m->kv_dim);
		VEC(bv, "self_attn.v_proj.bias", m->kv_dim);
		VEC(ln_attn, "input_layernorm.weight", m->hidden);
		VEC(ln_mlp, "post_attention_layernorm.weight", m->hidden);
#undef MAT
#undef VEC
	}
	return m;
fail:
	qvl_llm_free(m);
	return NULL;
}

static void
free_scratch(qvl_llm *m)
{
	free(m->xn);
	free(m->q);
	free(m->k);
	free(m->v);
	free(m->o);
	free(m->gate);
	free(m->up);
	free(m->tmp);
	free(m->scores);
	free(m->cosv);
	free(m->sinv);
}

void
qvl_llm_free(qvl_llm *m)
{
	if (m == NULL)
		return;
	if (m->layers)
		for (int i = 0; i < m->nlayers; i++) {
			struct layer *l = &m->layers[i];
			free(l->bq);
			free(l->bk);
			free(l->bv);
			free(l->ln_attn);
			free(l->ln_mlp);
			free(l->kcache);
			free(l->vcache);
		}
	free(m->layers);
	free(m->norm);
	free(m->inv_freq);
	free_scratch(m);
	free(m);
}

const qvl_config *
qvl_llm_config(const qvl_llm *m)
{
	return &m->cfg;
}

size_t
qvl_llm_token_bytes(const qvl_llm *m)
{
	size_t bytes = qvl_matrix_bytes(&m->lm_head);

	for (int i = 0; i < m->nlayers; i++) {
		const struct layer *l = &m->layers[i];
		bytes += qvl_matrix_bytes(&l->q) + qvl_matrix_bytes(&l->k) + qvl_matrix_bytes(&l->v) +
		    qvl_matrix_bytes(&l->o) + qvl_matrix_bytes(&l->gate) + qvl_matrix_bytes(&l->up) +
		    qvl_matrix_bytes(&l->down);
	}
	return bytes;
}

int
qvl_llm_reserve(qvl_llm *m, int64_t ctx, qvl_err *err)
{
	int64_t max = m->cfg.text.max_position_embeddings;

	if (ctx <= m->cap)
		return 0;
	if (max > 0 && ctx > max)
		return qvl_fail(err, "language model: %lld tokens exceed the model's context of %lld",
		    (long long)ctx, (long long)max);
	/* Grow geometrically so that token-by-token growth stays linear. */
	int64_t cap = m->cap * 2 > ctx ? m->cap * 2 : ctx;
	if (max > 0 && cap > max)
		cap = max;
	size_t bytes = (size_t)cap * (size_t)m->kv_dim * sizeof(float);
	/* realloc would succeed and the pages fail later, in an OOM kill: ask first */
	char what[96];
	snprintf(what, sizeof what, "language model: a KV cache of %lld tokens", (long long)cap);
	if (qvl_mem_check(2 * (uint64_t)(cap - m->cap) * (uint64_t)m->kv_dim * sizeof(float) *
	    (uint64_t)m->nlayers, what, err) < 0)
		return -1;
	for (int i = 0; i < m->nlayers; i++) {
		struct layer *l = &m->layers[i];
		float *k = realloc(l->kcache, bytes), *v;
		if (k == NULL)
			goto nomem;
		l->kcache = k;
		if ((v = realloc(l->vcache, bytes)) == NULL)
			goto nomem;
		l->vcache = v;
	}
	m->cap = cap;
	return 0;
nomem:
	return qvl_fail(err, "language model: no memory for a KV cache of %lld tokens (%.1f GB)",
	    (long long)cap, 2.0 * (double)bytes * m->nlayers / 1e9);
}

void
qvl_llm_reset(qvl_llm *m)
{
	m->cached = 0;
}

int64_t
qvl_llm_cached(const qvl_llm *m)
{
	return m->cached;
}

void
qvl_llm_set_prefill_rows(qvl_llm *m, int64_t rows)
{
	m->prefill_rows = rows > 0 ? rows : CHUNK_ROWS;
}

int
qvl_llm_embed(const qvl_llm *m, const int32_t *ids, int64_t n, float *x, qvl_err *err)
{
	for (int64_t i = 0; i < n; i++) {
		if (ids[i] < 0 || ids[i] >= m->vocab)
			return qvl_fail(err, "language model: token id %ld outside the vocabulary "
			    "of %d", (long)ids[i], m->vocab);
		qvl_to_f32(m->embed->dtype, m->embed->data, (size_t)ids[i] * (size_t)m->hidden,
		    (size_t)m->hidden, x + i * m->hidden);
	}
	return 0;
}

/* The next visual of the kind wanted (video or not) after index *cur, with its rows. */
static int
next_visual(const qvl_visual_rows *vis, int nvis, int video, int *cur)
{
	do
		(*cur)++;
	while (*cur < nvis && (vis[*cur].video != 0) != video);
	return *cur < nvis;
}

int
qvl_llm_embed_prompt(const qvl_llm *m, const int32_t *ids, int64_t n,
    const qvl_visual_rows *vis, int nvis, float *x, qvl_err *err)
{
	const qvl_text_config *tc = &m->cfg.text;
	int cur[2] = { -1, -1 };        /* [image, video]: the visual being consumed */
	int64_t row[2] = { 0, 0 };

	if (qvl_llm_embed(m, ids, n, x, err) < 0)
		return -1;
	for (int64_t i = 0; i < n; i++) {
		int video = ids[i] == tc->video_token_id;

		if (!video && ids[i] != tc->image_token_id)
			continue;
		while (cur[video] < 0 || row[video] == vis[cur[video]].n) {
			if (!next_visual(vis, nvis, video, &cur[video]))
				return qvl_fail(err, "prompt: more %s pad tokens than embedding rows",
				    video ? "video" : "image");
			row[video] = 0;
		}
		memcpy(x + i * m->hidden, vis[cur[video]].rows + row[video] * m->hidden,
		    (size_t)m->hidden * sizeof *x);
		row[video]++;
	}
	for (int video = 0; video < 2; video++) {
		int64_t left = cur[video] >= 0 ? vis[cur[video]].n - row[video] : 0;
		int k = cur[video];
		while (next_visual(vis, nvis, video, &k))
			left += vis[k].n;
		if (left > 0)
			return qvl_fail(err, "prompt: %lld %s embedding rows have no pad token",
			    (long long)left, video ? "video" : "image");
	}
	return 0;
}

static int
grow(float **p, size_t n)
{
	float *q;

	free(*p);
	*p = NULL;
	if ((q = qvl_alloc(n * sizeof *q)) == NULL)
		return -1;
	*p = q;
	return 0;
}

/* Scratch for rows tokens against up to keys cached keys. */
static int
ensure_scratch(qvl_llm *m, int64_t rows, int64_t keys, int threads, qvl_err *err)
{
	if (rows > m->scratch_rows) {
		size_t r = (size_t)rows;
		if (grow(&m->xn, r * m->hidden) || grow(&m->q, r * m->q_dim) ||
		    grow(&m->k, r * m->kv_dim) || grow(&m->v, r * m->kv_dim) ||
		    grow(&m->o, r * m->q_dim) || grow(&m->gate, r * m->inter) ||
		    grow(&m->up, r * m->inter) || grow(&m->tmp, r * m->hidden) ||
		    grow(&m->cosv, r * m->head_dim / 2) || grow(&m->sinv, r * m->head_dim / 2)) {
			m->scratch_rows = 0;
			m->scratch_keys = 0;
			return qvl_fail(err, "language model: out of memory for %lld rows",
			    (long long)rows);
		}
		m->scratch_rows = rows;
		m->scratch_keys = 0;
	}
	/* scores: a block of a chunk's rows x keys per thread, heads x keys for one token */
	int64_t block = rows < CAUSAL_BLOCK ? rows : CAUSAL_BLOCK;
	int64_t need = (block * threads > m->heads ? block * threads : m->heads) * keys;
	if (need > m->scratch_keys) {
		int64_t want = need + need / 2;
		if (grow(&m->scores, (size_t)want)) {
			m->scratch_keys = 0;
			return qvl_fail(err, "language model: out of memory for attention scores");
		}
		m->scratch_keys = want;
	}
	return 0;
}

static float
dot(const float *a, const float *b, int n)
{
	float acc[16] = {0}, s = 0;
	int i = 0;

	for (; i + 16 <= n; i += 16)
		for (int l = 0; l < 16; l++)
			acc[l] += a[i + l] * b[i + l];
	for (; i < n; i++)
		s += a[i] * b[i];
	for (int l = 0; l < 16; l++)
		s += acc[l];
	return s;
}

/* One decoded token: each head against every cached key of its kv group. */
struct step_attn {
	qvl_llm *m;
	const struct layer *l;
	int64_t nkeys;
};

/* Head h of one token's query q against the nkeys cached keys and values of layer l into
 * o, with s as its scores. */
static void
head_attention(const qvl_llm *m, const struct layer *l, int h, const float *q, int64_t nkeys,
    float *s, float *o)
{
	int hd = m->head_dim, g = h / (m->heads / m->kv_heads);

	for (int64_t t = 0; t < nkeys; t++)
		s[t] = dot(q, l->kcache + t * m->kv_dim + g * hd, hd) * m->scale;
	qvl_softmax(s, nkeys, nkeys);
	memset(o, 0, (size_t)hd * sizeof *o);
	for (int64_t t = 0; t < nkeys; t++) {
		const float *vt = l->vcache + t * m->kv_dim + g * hd;
		float p = s[t];
		for (int j = 0; j < hd; j++)
			o[j] += p * vt[j];
	}
}

static void
step_attn_task(void *ctx, long h, int thread)
{
	struct step_attn *job = ctx;
	qvl_llm *m = job->m;

	(void)thread;
	head_attention(m, job->l, (int)h, m->q + h * m->head_dim, job->nkeys,
	    m->scores + h * job->nkeys, m->o + h * m->head_dim);
}

/* One token of each of several conversations (qvl_llm_step_many): row i's heads against
 * seqs[i]'s cache of layer li. */
struct many_attn {
	qvl_llm *m, **seqs;
	int li;
	int64_t stride; /* scores per (row, head) */
};

static void
many_attn_task(void *ctx, long task, int thread)
{
	struct many_attn *job = ctx;
	qvl_llm *m = job->m;
	int64_t i = task / m->heads, h = task % m->heads;
	const qvl_llm *seq = job->seqs[i];

	(void)thread;
	head_attention(m, &seq->layers[job->li], (int)h, m->q + i * m->q_dim + h * m->head_dim,
	    seq->cached + 1, m->scores + task * job->stride,
	    m->o + i * m->q_dim + h * m->head_dim);
}

/* One head of a prompt chunk: scores against the cached keys of its kv group, causal
 * softmax, times the values; in the calling thread's own scores (single-threaded BLAS, so
 * the heads of a chunk spread over the pool's threads).  A block of queries takes only the
 * keys its last query sees: a 510-token prompt computes 56 % of the full square. */

struct chunk_attn {
	qvl_llm *m;
	const struct layer *l;
	int64_t base, n, nkeys;
};

static void
chunk_attn_task(void *ctx, long h, int thread)
{
	struct chunk_attn *job = ctx;
	qvl_llm *m = job->m;
	int hd = m->head_dim, g = (int)h / (m->heads / m->kv_heads);
	int64_t n = job->n, block = n < CAUSAL_BLOCK ? n : CAUSAL_BLOCK;
	float *s = m->scores + (size_t)thread * (size_t)(block * job->nkeys);

	for (int64_t i0 = 0; i0 < n; i0 += CAUSAL_BLOCK) {
		int64_t rows = n - i0 < CAUSAL_BLOCK ? n - i0 : CAUSAL_BLOCK;
		int64_t keys = job->base + i0 + rows;

		qvl_sgemm_nt(rows, keys, hd, m->scale, m->q + i0 * m->q_dim + h * hd, m->q_dim,
		    job->l->kcache + g * hd, m->kv_dim, 0.0f, s, keys);
		for (int64_t i = 0; i < rows; i++)
			qvl_softmax(s + i * keys, job->base + i0 + i + 1, keys);
		qvl_sgemm_nn(rows, hd, keys, 1.0f, s, keys, job->l->vcache + g * hd, m->kv_dim,
		    0.0f, m->o + i0 * m->q_dim + h * hd, m->q_dim);
	}
}

/* Attention of the n rows in m->q (already rotated; their k/v already in the cache at
 * base..base+n) into m->o. */
static void
attention(qvl_llm *m, qvl_pool *pool, const struct layer *l, int64_t base, int64_t n)
{
	int64_t nkeys = base + n;

	if (n == 1) {
		struct step_attn job = {m, l, nkeys};
		qvl_pool_run(pool, m->heads, step_attn_task, &job);
		return;
	}
	struct chunk_attn job = {m, l, base, n, nkeys};
	qvl_pool_run(pool, m->heads, chunk_attn_task, &job);
}

struct swiglu_job {
	float *gate;
	const float *up;
	int64_t count, per;
};

static void
swiglu_task(void *ctx, long task, int thread)
{
	const struct swiglu_job *job = ctx;
	int64_t begin = (int64_t)task * job->per, count = job->count - begin;

	(void)thread;
	qvl_silu_mul(job->gate + begin, job->up + begin, count < job->per ? count : job->per);
}

/* gate = silu(gate) · up over count values, split between the threads. */
static void
swiglu(qvl_pool *pool, float *gate, const float *up, int64_t count)
{
	int threads = qvl_pool_threads(pool);
	struct swiglu_job job = {gate, up, count, (count + threads - 1) / threads};

	job.per = (job.per + QVL_VL - 1) / QVL_VL * QVL_VL;
	qvl_pool_run(pool, (long)((count + job.per - 1) / job.per), swiglu_task, &job);
}

/* x[n, d] += in · wᵀ (in float32, or BF16 in inb): in the product's pass where it can
 * be, else through y (tmp: qvl_matmul_xb's widening space). */
static void
residual_product(qvl_pool *pool, const qvl_matrix *w, const float *in, const uint16_t *inb,
    int64_t n, int64_t d, float *y, float *tmp, float *x)
{
	if (qvl_matmul_add(pool, w, NULL, in, inb, n, x) == 0)
		return;
	if (inb != NULL)
		qvl_matmul_xb(pool, w, NULL, inb, n, tmp, y);
	else
		qvl_matmul(pool, w, NULL, in, n, y);
	for (int64_t i = 0; i < n * d; i++)
		x[i] += y[i];
}

/* The layers over n rows of x: m's next n tokens (seqs NULL), or one token of each
 * conversation seqs[i] (row i; m = seqs[0] lends its weights and scratch). */
static void
forward_rows(qvl_llm *m, qvl_llm **seqs, qvl_pool *pool, float *x, const int64_t *pt,
    const int64_t *ph, const int64_t *pw, int64_t n, qvl_llm_hook hook, void *hook_ctx)
{
	int64_t base = m->cached, maxkeys = 0;
	int hd = m->head_dim, half = hd / 2;

	for (int64_t i = 0; seqs && i < n; i++)
		if (seqs[i]->cached + 1 > maxkeys)
			maxkeys = seqs[i]->cached + 1;

	for (int64_t i = 0; i < n; i++)
		qvl_mrope_cos_sin(m->inv_freq, m->cfg.text.mrope_section, hd, pt[i], ph[i], pw[i],
		    m->cosv + i * half, m->sinv + i * half);
	for (int li = 0; li < m->nlayers; li++) {
		struct layer *l = &m->layers[li];

		qvl_rms_norm(pool, x, l->ln_attn, n, m->hidden, m->eps, m->xn);
		/* Several conversations' keys and values go to their own caches below. */
		float *k = seqs ? m->k : l->kcache + base * m->kv_dim;
		float *v = seqs ? m->v : l->vcache + base * m->kv_dim;
		qvl_matmul(pool, &l->q, l->bq, m->xn, n, m->q);
		qvl_matmul(pool, &l->k, l->bk, m->xn, n, k);
		qvl_matmul(pool, &l->v, l->bv, m->xn, n, v);
		for (int64_t i = 0; i < n; i++) {
			const float *c = m->cosv + i * half, *s = m->sinv + i * half;
			for (int h = 0; h < m->heads; h++)
				qvl_mrope_apply(m->q + i * m->q_dim + h * hd, c, s, hd);
			for (int h = 0; h < m->kv_heads; h++)
				qvl_mrope_apply(k + i * m->kv_dim + h * hd, c, s, hd);
		}
		if (seqs) {
			struct many_attn job = {m, seqs, li, maxkeys};
			for (int64_t i = 0; i < n; i++) {
				const struct layer *sl = &seqs[i]->layers[li];
				size_t bytes = (size_t)m->kv_dim * sizeof *k;
				memcpy(sl->kcache + seqs[i]->cached * m->kv_dim, k + i * m->kv_dim,
				    bytes);
				memcpy(sl->vcache + seqs[i]->cached * m->kv_dim, v + i * m->kv_dim,
				    bytes);
			}
			qvl_pool_run(pool, (long)(n * m->heads), many_attn_task, &job);
		} else {
			attention(m, pool, l, base, n);
		}
		residual_product(pool, &l->o, m->o, NULL, n, m->hidden, m->tmp, NULL, x);

		qvl_rms_norm(pool, x, l->ln_mlp, n, m->hidden, m->eps, m->xn);
		/* Long prompts in bf16 precision: the SwiGLU in its products' pass, its BF16
		 * output in up's space (as the down projection would round it), gate's space
		 * the widening one if that product is not BF16 after all. */
		uint16_t *hidden = (uint16_t *)m->up;
		if (qvl_matmul_glu(pool, &l->gate, NULL, &l->up, NULL, m->xn, NULL, n,
		    hidden) == 0) {
			residual_product(pool, &l->down, NULL, hidden, n, m->hidden, m->tmp,
			    m->gate, x);
		} else {
			qvl_matmul(pool, &l->gate, NULL, m->xn, n, m->gate);
			qvl_matmul(pool, &l->up, NULL, m->xn, n, m->up);
			swiglu(pool, m->gate, m->up, n * m->inter);
			residual_product(pool, &l->down, m->gate, NULL, n, m->hidden, m->tmp,
			    NULL, x);
		}
		if (hook)
			hook(hook_ctx, li + 1, x, n);
	}
	if (seqs)
		for (int64_t i = 0; i < n; i++)
			seqs[i]->cached++;
	else
		m->cached = base + n;
}

int
qvl_llm_forward(qvl_llm *m, qvl_pool *pool, float *x, const int64_t *pos, int64_t n,
    qvl_llm_hook hook, void *hook_ctx, qvl_err *err)
{
	if (n <= 0)
		return 0;
	if (qvl_llm_reserve(m, m->cached + n, err) < 0)
		return -1;
	if (hook)
		hook(hook_ctx, 0, x, n);
	/* The hook wants whole layers over all n rows: run them in one pass then. */
	int64_t chunk = hook ? n : m->prefill_rows;
	for (int64_t r0 = 0; r0 < n; r0 += chunk) {
		int64_t c = n - r0 < chunk ? n - r0 : chunk;
		if (ensure_scratch(m, c, m->cached + c, qvl_pool_threads(pool), err) < 0)
			return -1;
		forward_rows(m, NULL, pool, x + r0 * m->hidden, pos + r0, pos + n + r0,
		    pos + 2 * n + r0, c, hook, hook_ctx);
	}
	qvl_rms_norm(pool, x, m->norm, n, m->hidden, m->eps, x);
	return 0;
}

int
qvl_llm_step_many(qvl_llm **seqs, int nseq, qvl_pool *pool, float *x, const int64_t *pos,
    qvl_err *err)
{
	qvl_llm *m;
	int64_t maxkeys = 0;

	if (nseq <= 0)
		return 0;
	m = seqs[0];
	for (int i = 0; i < nseq; i++) {
		const qvl_llm *s = seqs[i];
		for (int j = 0; j < i; j++)
			if (seqs[j] == s)
				return qvl_fail(err, "language model: a conversation twice in one step");
		if (s->nlayers != m->nlayers || s->hidden != m->hidden || s->kv_dim != m->kv_dim ||
		    s->layers[0].q.data != m->layers[0].q.data)
			return qvl_fail(err, "language model: conversations over different weights");
		if (qvl_llm_reserve(seqs[i], s->cached + 1, err) < 0)
			return -1;
		if (s->cached + 1 > maxkeys)
			maxkeys = s->cached + 1;
	}
	/* scores: every (row, head) pair its own maxkeys */
	if (ensure_scratch(m, nseq, (int64_t)nseq * maxkeys, qvl_pool_threads(pool), err) < 0)
		return -1;
	{
		int64_t *p3 = malloc((size_t)(3 * nseq) * sizeof *p3);
		if (p3 == NULL)
			return qvl_fail(err, "language model: out of memory");
		for (int i = 0; i < nseq; i++)
			p3[i] = p3[nseq + i] = p3[2 * nseq + i] = pos[i];
		forward_rows(m, seqs, pool, x, p3, p3 + nseq, p3 + 2 * nseq, nseq, NULL, NULL);
		free(p3);
	}
	qvl_rms_norm(pool, x, m->norm, nseq, m->hidden, m->eps, x);
	return 0;
}

void
qvl_llm_logits(qvl_llm *m, qvl_pool *pool, const float *h, int64_t n, float *logits)
{
	qvl_matmul(pool, &m->lm_head, NULL, h, n, logits);
}
