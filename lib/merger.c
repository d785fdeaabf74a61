/* merger.c: Qwen2_5_VLPatchMerger. */
#include "merger.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "matmul.h"
#include "norm.h"
#include "quant.h"
#include "tensor.h"

#define RMS_EPS 1e-6    /* fixed in the reference, like the tower's norms */
#define ROW_CHUNK 32

struct qvl_merger {
	qvl_vision_config cfg;
	int unit;            /* merge^2 rows per output row */
	int64_t width;       /* hidden * unit */
	float *ln_q;
	qvl_matrix fc1, fc2;
	float *fc1_b, *fc2_b;
};

qvl_merger *
qvl_merger_new(const qvl_weights *w, const qvl_vision_config *cfg, qvl_err *err)
{
	qvl_merger *m;
	int64_t d = cfg->hidden_size;

	if (cfg->hidden_size < 1 || cfg->out_hidden_size < 1 || cfg->spatial_merge_size < 1 ||
	    cfg->spatial_merge_size > 64) {
		qvl_fail(err, "vision config: bad hidden_size, out_hidden_size or spatial_merge_size");
		return NULL;
	}
	if (qvl_weights_find(w, "visual.merger.ln_q.weight") == NULL) {
		qvl_fail(err, "checkpoint has no patch merger (no tensor visual.merger.ln_q.weight)");
		return NULL;
	}
	if ((m = calloc(1, sizeof *m)) == NULL) {
		qvl_fail_errno(err, "patch merger");
		return NULL;
	}
	m->cfg = *cfg;
	m->unit = cfg->spatial_merge_size * cfg->spatial_merge_size;
	m->width = d * m->unit;
	if ((m->ln_q = qvl_weights_vector(w, "visual.merger.ln_q.weight", d, err)) == NULL ||
	    qvl_weights_matrix(w, "visual.merger.mlp.0.weight", m->width, m->width, &m->fc1, err) < 0 ||
	    (m->fc1_b = qvl_weights_vector(w, "visual.merger.mlp.0.bias", m->width, err)) == NULL ||
	    qvl_weights_matrix(w, "visual.merger.mlp.2.weight", cfg->out_hidden_size, m->width, &m->fc2,
	    err) < 0 ||
	    (m->fc2_b = qvl_weights_vector(w, "visual.merger.mlp.2.bias", cfg->out_hidden_size, err)) ==
	    NULL) {
		qvl_merger_free(m);
		return NULL;
	}
	return m;
}

void
qvl_merger_free(qvl_merger *m)
{
	if (m == NULL)
		return;
	free(m->ln_q);
	free(m->fc1_b);
	free(m->fc2_b);
	free(m);
}

int
qvl_merger_unit(const qvl_merger *m)
{
	return m->unit;
}

struct rows_job {
	int64_t n, d;
	const float *x, *w;
	float *y;
};

/* Exact GELU: x/2 (1 + erf(x / sqrt 2)), as torch.nn.GELU() with no approximation. */
static void
gelu_task(void *ctx, long chunk, int thread)
{
	const struct rows_job *j = ctx;
	int64_t r0 = chunk * ROW_CHUNK, r1 = r0 + ROW_CHUNK < j->n ? r0 + ROW_CHUNK : j->n;

	(void)thread;
	for (int64_t i = r0 * j->d; i < r1 * j->d; i++) {
		float v = j->y[i];

		j->y[i] = 0.5f * v * (1.0f + erff(v * (float)M_SQRT1_2));
	}
}

int
qvl_merger_forward(qvl_merger *m, qvl_pool *pool, const float *x, int64_t n, float *out,
    float *ln_q, qvl_err *err)
{
	int64_t d = m->cfg.hidden_size, units;
	float *norm, *mid;
	size_t bytes;
	struct rows_job j;

	if (n < 0 || n % m->unit != 0)
		return qvl_fail(err, "patch merger: %lld rows is not a multiple of %d patches per "
		    "merge unit", (long long)n, m->unit);
	units = n / m->unit;
	if (__builtin_mul_overflow((size_t)n, (size_t)d * sizeof(float), &bytes))
		return qvl_fail(err, "patch merger: %lld rows overflow", (long long)n);
	norm = ln_q != NULL ? ln_q : qvl_alloc(bytes);
	mid = qvl_alloc(bytes);
	if (norm == NULL || mid == NULL) {
		if (norm != ln_q)
			free(norm);
		free(mid);
		return qvl_fail_errno(err, "patch merger: %zu bytes of activations", bytes);
	}
	qvl_rms_norm(pool, x, m->ln_q, n, d, RMS_EPS, norm);
	/* The unit's rows are consecutive, so [n, d] is already [units, unit * d]. */
	qvl_matmul(pool, &m->fc1, m->fc1_b, norm, units, mid);
	j = (struct rows_job){ .n = units, .d = m->width, .y = mid };
	qvl_pool_run(pool, (long)((units + ROW_CHUNK - 1) / ROW_CHUNK), gelu_task, &j);
	qvl_matmul(pool, &m->fc2, m->fc2_b, mid, units, out);
	if (norm != ln_q)
		free(norm);
	free(mid);
	return 0;
}

double
qvl_merger_flops(const qvl_vision_config *c, int64_t n)
{
	double unit = (double)c->spatial_merge_size * c->spatial_merge_size;
	double width = unit * c->hidden_size, units = (double)n / unit;

	return 2.0 * units * width * (width + c->out_hidden_size);
}
