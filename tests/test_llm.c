/* test_llm.c: the language model against the reference goldens of both tiny models.
 *
 * For every case: position ids and rope_deltas from the golden input ids and grids; the
 * residual stream after every layer, the top-5 logits at every prompt position and the whole
 * last-position logits (|d| <= 1e-4 max|ref|); 16 greedy steps through the KV cache (ids
 * identical, top-5 logits within tolerance); a prefill split in two calls; and decode steps
 * that are bit-identical with 1 and 3 threads. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/config.h"
#include "../lib/llm.h"
#include "../lib/mrope.h"
#include "../lib/pool.h"
#include "../lib/safetensors.h"
#include "../lib/sample.h"
#include "test.h"

#define TOL 1e-4

static const qvl_tensor *
gt(qvl_weights *w, const char *name)
{
	return qvl_weights_find(w, name);
}

/* A golden tensor as float (any dtype), malloc'd; NULL when absent. */
static float *
gf(qvl_weights *w, const char *name, size_t *n)
{
	const qvl_tensor *t = gt(w, name);
	float *f;

	if (t == NULL)
		return NULL;
	*n = qvl_tensor_numel(t);
	f = malloc((*n ? *n : 1) * sizeof *f);
	qvl_tensor_to_f32(t, f);
	return f;
}

static int64_t *
gi(qvl_weights *w, const char *name, size_t *n)
{
	const qvl_tensor *t = gt(w, name);
	int64_t *v;

	if (t == NULL)
		return NULL;
	*n = qvl_tensor_numel(t);
	v = malloc((*n ? *n : 1) * sizeof *v);
	for (size_t i = 0; i < *n; i++)
		v[i] = t->dtype == QVL_I64 ? ((const int64_t *)t->data)[i] :
		    ((const int32_t *)t->data)[i];
	return v;
}

/* max |a - b| / max |b| */
static double
rel_err(const float *a, const float *b, size_t n)
{
	double d = 0, m = 0;

	for (size_t i = 0; i < n; i++) {
		if (fabs((double)a[i] - b[i]) > d)
			d = fabs((double)a[i] - b[i]);
		if (fabs(b[i]) > m)
			m = fabs(b[i]);
	}
	return m > 0 ? d / m : d;
}

struct resid_check {
	qvl_weights *g;
	int64_t n;
	int hidden;
	double worst;
	int missing;
};

static void
resid_hook(void *ctx, int layer, const float *x, int64_t n)
{
	struct resid_check *rc = ctx;
	char name[32];
	size_t cnt;
	float *ref;

	snprintf(name, sizeof name, "llm_resid%d", layer);
	if ((ref = gf(rc->g, name, &cnt)) == NULL || (int64_t)cnt != n * rc->hidden) {
		rc->missing++;
		free(ref);
		return;
	}
	double e = rel_err(x, ref, cnt);
	if (e > rc->worst)
		rc->worst = e;
	free(ref);
}

static double worst_logits, worst_resid;

static void
run_case(const char *model_dir, const char *golden_path, const char *label)
{
	qvl_err err;
	qvl_config cfg;
	qvl_weights *w = NULL, *g = NULL;
	qvl_llm *m = NULL;
	qvl_pool *pool1 = NULL, *pool3 = NULL;
	size_t n_ids, n_pos, n_img = 0, n_vid = 0, n;
	int64_t *ids64 = NULL, *gpos = NULL, *igrid = NULL, *vgrid = NULL, *gdelta = NULL;
	int64_t *top5 = NULL, *gen = NULL;
	float *iemb = NULL, *vemb = NULL, *spgt = NULL, *x = NULL, *x2 = NULL, *logits = NULL;
	float *top5l = NULL, *last = NULL, *gen5l = NULL;
	int32_t *ids = NULL;
	int64_t *pos = NULL, delta;

	if (qvl_config_load(model_dir, &cfg, &err) < 0 || (w = qvl_weights_open(model_dir, &err))
	    == NULL || (g = qvl_weights_open(golden_path, &err)) == NULL) {
		CHECK(0, "%s: open: %s", label, err.msg);
		goto out;
	}
	m = qvl_llm_new(w, &cfg, &err);
	CHECK(m != NULL, "%s: model: %s", label, m ? "" : err.msg);
	if (m == NULL)
		goto out;
	pool1 = qvl_pool_new(1, &err);
	pool3 = qvl_pool_new(3, &err);
	int D = cfg.text.hidden_size, V = cfg.text.vocab_size;

	ids64 = gi(g, "input_ids", &n_ids);
	gpos = gi(g, "position_ids", &n_pos);
	gdelta = gi(g, "rope_deltas", &n);
	igrid = gi(g, "image_grid_thw", &n_img);
	vgrid = gi(g, "video_grid_thw", &n_vid);
	size_t ni_rows = 0, nv_rows = 0, nspgt = 0;
	iemb = gf(g, "image_embeds", &ni_rows);
	vemb = gf(g, "video_embeds", &nv_rows);
	spgt = gf(g, "second_per_grid_ts", &nspgt);
	int64_t L = (int64_t)n_ids;
	ids = malloc(L * sizeof *ids);
	pos = malloc(3 * L * sizeof *pos);
	for (int64_t i = 0; i < L; i++)
		ids[i] = (int32_t)ids64[i];

	/* positions */
	qvl_mrope_vision vis = {igrid, (int)(n_img / 3), vgrid, spgt, (int)(n_vid / 3)};
	int rc = qvl_mrope_positions(&cfg, ids, L, &vis, pos, &delta, &err);
	CHECK(rc == 0, "%s: positions: %s", label, rc ? err.msg : "");
	int same = rc == 0 && n_pos == (size_t)(3 * L);
	for (int64_t i = 0; same && i < 3 * L; i++)
		same = pos[i] == gpos[i];
	CHECK(same, "%s: position ids identical", label);
	CHECK(rc == 0 && delta == gdelta[0], "%s: rope_delta %lld (want %lld)", label,
	    (long long)delta, (long long)gdelta[0]);

	/* embeddings with vision rows substituted in order */
	x = malloc(L * D * sizeof *x);
	CHECK(qvl_llm_embed(m, ids, L, x, &err) == 0, "%s: embed", label);
	int64_t ii = 0, vi = 0;
	for (int64_t i = 0; i < L; i++) {
		if (ids[i] == cfg.text.image_token_id && iemb && (ii + 1) * D <= (int64_t)ni_rows)
			memcpy(x + i * D, iemb + ii++ * D, D * sizeof *x);
		else if (ids[i] == cfg.text.video_token_id && vemb && (vi + 1) * D <=
		    (int64_t)nv_rows)
			memcpy(x + i * D, vemb + vi++ * D, D * sizeof *x);
	}
	CHECK(ii * D == (int64_t)ni_rows && vi * D == (int64_t)nv_rows,
	    "%s: every vision row placed", label);
	x2 = malloc(L * D * sizeof *x2);
	memcpy(x2, x, L * D * sizeof *x);

	/* prefill with the residual hook */
	struct resid_check res = {g, L, D, 0, 0};
	CHECK(qvl_llm_forward(m, pool3, x, pos, L, resid_hook, &res, &err) == 0, "%s: forward",
	    label);
	CHECK(res.missing == 0 && res.worst <= TOL, "%s: residual stream after every layer: max "
	    "err %.2e of max|ref|", label, res.worst);
	if (res.worst > worst_resid)
		worst_resid = res.worst;
	size_t nh;
	float *hl = gf(g, "hidden_last", &nh);
	CHECK(hl && rel_err(x + (L - 1) * D, hl, D) <= TOL, "%s: hidden_last", label);
	free(hl);

	/* logits at every prompt position */
	logits = malloc((size_t)L * V * sizeof *logits);
	qvl_llm_logits(m, pool3, x, L, logits);
	size_t nt;
	top5 = gi(g, "top5_ids", &nt);
	top5l = gf(g, "top5_logits", &nt);
	last = gf(g, "logits_last", &nt);
	double e_last = rel_err(logits + (L - 1) * (size_t)V, last, V);
	double maxref = 0, maxd = 0;
	int top1_ok = 1;
	for (int64_t i = 0; i < L; i++) {
		const float *row = logits + i * (size_t)V;
		for (int j = 0; j < 5; j++) {
			float ref = top5l[i * 5 + j], got = row[top5[i * 5 + j]];
			if (fabsf(ref) > maxref)
				maxref = fabsf(ref);
			if (fabs((double)got - ref) > maxd)
				maxd = fabs((double)got - ref);
		}
		/* top-1 id where the reference's top-2 gap is clear of the tolerance */
		if (top5l[i * 5] - top5l[i * 5 + 1] > 2e-4 * fabsf(top5l[i * 5]) + 1e-5 &&
		    qvl_argmax(row, V) != top5[i * 5])
			top1_ok = 0;
	}
	double e_top = maxref > 0 ? maxd / maxref : maxd;
	CHECK(e_last <= TOL, "%s: logits_last max err %.2e of max|ref|", label, e_last);
	CHECK(e_top <= TOL, "%s: top-5 logits at all %lld positions max err %.2e of max|ref|",
	    label, (long long)L, e_top);
	CHECK(top1_ok, "%s: top-1 id at every position with a clear gap", label);
	if (e_last > worst_logits)
		worst_logits = e_last;
	if (e_top > worst_logits)
		worst_logits = e_top;

	/* 16 greedy steps through the cache, twice: with 3 threads, then with 1 */
	size_t ngen, n5;
	gen = gi(g, "gen_ids", &ngen);
	gen5l = gf(g, "gen_top5_logits", &nt);
	int64_t *gen5 = gi(g, "gen_top5_ids", &n5);
	float *h = malloc(D * sizeof *h), *steps[2];
	int gen_ok = 1;
	double gmaxd = 0, gmaxref = 0;
	for (int run = 0; run < 2; run++) {
		qvl_pool *pool = run == 0 ? pool3 : pool1;
		steps[run] = malloc(ngen * V * sizeof(float));
		if (run == 1) {
			qvl_llm_reset(m);
			memcpy(x, x2, L * D * sizeof *x);
			qvl_llm_forward(m, pool, x, pos, L, NULL, NULL, &err);
		}
		qvl_llm_logits(m, pool, x + (L - 1) * D, 1, steps[run]);
		for (size_t s = 0; s < ngen; s++) {
			float *lg = steps[run] + s * V;
			if (s > 0) {
				int64_t p = qvl_llm_cached(m) + delta, p3[3] = {p, p, p};
				int32_t t = (int32_t)gen[s - 1];
				qvl_llm_embed(m, &t, 1, h, &err);
				qvl_llm_forward(m, pool, h, p3, 1, NULL, NULL, &err);
				qvl_llm_logits(m, pool, h, 1, lg);
			}
			if (qvl_argmax(lg, V) != gen[s])
				gen_ok = 0;
			for (int j = 0; run == 0 && j < 5; j++) {
				float ref = gen5l[s * 5 + j];
				if (fabsf(ref) > gmaxref)
					gmaxref = fabsf(ref);
				if (fabs((double)lg[gen5[s * 5 + j]] - ref) > gmaxd)
					gmaxd = fabs((double)lg[gen5[s * 5 + j]] - ref);
			}
		}
	}
	double e_gen = gmaxref > 0 ? gmaxd / gmaxref : gmaxd;
	CHECK(gen_ok, "%s: 16 greedy ids identical (both runs)", label);
	CHECK(e_gen <= TOL, "%s: greedy-step top-5 logits max err %.2e", label, e_gen);
	CHECK(memcmp(steps[0] + V, steps[1] + V, (ngen - 1) * V * sizeof(float)) == 0,
	    "%s: decode steps bit-identical with 3 and 1 threads", label);
	if (e_gen > worst_logits)
		worst_logits = e_gen;
	free(steps[0]);
	free(steps[1]);
	free(h);
	free(gen5);

	/* the prompt prefilled in two calls gives the same last logits */
	qvl_llm_reset(m);
	int64_t half = L / 2;
	int64_t *pa = malloc(3 * half * sizeof *pa), *pb = malloc(3 * (L - half) * sizeof *pb);
	for (int a = 0; a < 3; a++) {
		memcpy(pa + a * half, pos + a * L, half * sizeof *pa);
		memcpy(pb + a * (L - half), pos + a * L + half, (L - half) * sizeof *pb);
	}
	rc = qvl_llm_forward(m, pool3, x2, pa, half, NULL, NULL, &err);
	rc |= qvl_llm_forward(m, pool3, x2 + half * D, pb, L - half, NULL, NULL, &err);
	float *lg2 = malloc(V * sizeof *lg2);
	qvl_llm_logits(m, pool3, x2 + (L - 1) * D, 1, lg2);
	double e_split = rel_err(lg2, last, V);
	CHECK(rc == 0 && e_split <= TOL, "%s: prefill in two calls: logits_last err %.2e", label,
	    e_split);
	free(lg2);
	free(pa);
	free(pb);
out:
	free(ids64), free(gpos), free(gdelta), free(igrid), free(vgrid), free(iemb), free(vemb);
	free(spgt), free(x), free(x2), free(logits), free(top5), free(top5l), free(last);
	free(gen), free(gen5l), free(ids), free(pos);
	qvl_llm_free(m);
	qvl_pool_free(pool1);
	qvl_pool_free(pool3);
	qvl_weights_close(w);
	qvl_weights_close(g);
}

/* qvl_llm_step_many: three conversations of different lengths stepped together (then two
 * of them, in another order) give the same bits as each stepped alone, with 2 threads
 * against 1; and the errors it must report. */
static void
test_step_many(const char *model_dir, const char *other_dir)
{
	enum { NSEQ = 3, STEPS = 6 };
	static const int64_t lens[NSEQ] = {5, 13, 9};
	qvl_config cfg, cfg2;
	qvl_err err;
	qvl_weights *w = NULL, *w2 = NULL;
	qvl_llm *batch[NSEQ] = {0}, *alone[NSEQ] = {0}, *other = NULL;
	qvl_pool *pool1 = qvl_pool_new(1, &err), *pool2 = qvl_pool_new(2, &err);
	float *x = NULL, *xa = NULL, *lb = NULL, *la = NULL;
	int same_h = 1, same_l = 1, rc = 0;
	uint32_t seed = 12345;

	if (qvl_config_load(model_dir, &cfg, &err) < 0 ||
	    (w = qvl_weights_open(model_dir, &err)) == NULL ||
	    qvl_config_load(other_dir, &cfg2, &err) < 0 ||
	    (w2 = qvl_weights_open(other_dir, &err)) == NULL || pool1 == NULL || pool2 == NULL) {
		CHECK(0, "step_many: setup: %s", err.msg);
		goto out;
	}
	int64_t D = cfg.text.hidden_size, V = cfg.text.vocab_size;
	x = malloc((size_t)(16 * D) * sizeof *x);
	xa = malloc((size_t)D * sizeof *xa);
	lb = malloc((size_t)(NSEQ * V) * sizeof *lb);
	la = malloc((size_t)V * sizeof *la);
	for (int i = 0; i < NSEQ; i++) {
		int32_t ids[16];
		int64_t pos[48];
		for (int64_t t = 0; t < lens[i]; t++) {
			seed = seed * 1103515245u + 12345u;
			ids[t] = (int32_t)(seed >> 8) % 150000;
			pos[t] = pos[lens[i] + t] = pos[2 * lens[i] + t] = t;
		}
		for (int copy = 0; copy < 2; copy++) {
			qvl_llm **m = copy ? &alone[i] : &batch[i];
			rc |= (*m = qvl_llm_new(w, &cfg, &err)) == NULL ||
			    qvl_llm_embed(*m, ids, lens[i], x, &err) < 0 ||
			    qvl_llm_forward(*m, pool1, x, pos, lens[i], NULL, NULL, &err) < 0;
		}
	}
	CHECK(rc == 0, "step_many: prefill: %s", rc ? err.msg : "");
	if (rc)
		goto out;
	for (int step = 0; step < STEPS; step++) {
		/* all three, then the last and the first, in that order */
		int order[NSEQ] = {0, 1, 2}, n = NSEQ;
		qvl_llm *seqs[NSEQ];
		int64_t pos[NSEQ];
		int32_t tok[NSEQ];
		if (step >= 3) {
			order[0] = 2, order[1] = 0, n = 2;
		}
		for (int j = 0; j < n; j++) {
			seed = seed * 1103515245u + 12345u;
			tok[j] = (int32_t)(seed >> 8) % 150000;
			seqs[j] = batch[order[j]];
			pos[j] = qvl_llm_cached(seqs[j]);
			rc |= qvl_llm_embed(seqs[j], &tok[j], 1, x + j * D, &err);
		}
		rc |= qvl_llm_step_many(seqs, n, pool2, x, pos, &err);
		qvl_llm_logits(seqs[0], pool2, x, n, lb);
		for (int j = 0; j < n; j++) {
			qvl_llm *a = alone[order[j]];
			int64_t p3[3] = {qvl_llm_cached(a), qvl_llm_cached(a), qvl_llm_cached(a)};
			rc |= qvl_llm_embed(a, &tok[j], 1, xa, &err) < 0 ||
			    qvl_llm_forward(a, pool1, xa, p3, 1, NULL, NULL, &err) < 0;
			qvl_llm_logits(a, pool1, xa, 1, la);
			same_h &= memcmp(xa, x + j * D, (size_t)D * sizeof *xa) == 0;
			same_l &= memcmp(la, lb + j * V, (size_t)V * sizeof *la) == 0;
			same_h &= qvl_llm_cached(a) == qvl_llm_cached(seqs[j]);
		}
	}
	CHECK(rc == 0, "step_many: steps ran: %s", rc ? err.msg : "");
	CHECK(same_h, "step_many: hidden states and cache lengths the same bits as alone");
	CHECK(same_l, "step_many: logits the same bits as alone");
	{
		qvl_llm *twice[2] = {batch[0], batch[0]};
		CHECK(qvl_llm_step_many(twice, 2, pool2, x, (int64_t[]){0, 0}, &err) < 0 &&
		    strstr(err.msg, "twice") != NULL, "step_many: one conversation twice: %s",
		    err.msg);
		if ((other = qvl_llm_new(w2, &cfg2, &err)) != NULL) {
			qvl_llm *mixed[2] = {batch[0], other};
			CHECK(qvl_llm_step_many(mixed, 2, pool2, x, (int64_t[]){0, 0}, &err) < 0 &&
			    strstr(err.msg, "different weights") != NULL,
			    "step_many: other weights: %s", err.msg);
		}
	}
out:
	for (int i = 0; i < NSEQ; i++) {
		qvl_llm_free(batch[i]);
		qvl_llm_free(alone[i]);
	}
	qvl_llm_free(other);
	free(x), free(xa), free(lb), free(la);
	qvl_pool_free(pool1);
	qvl_pool_free(pool2);
	qvl_weights_close(w);
	qvl_weights_close(w2);
}

int
main(int argc, char **argv)
{
	static const char *tiny[] = {"text_only", "img_main", "img_small_minpix", "img_maxpix",
	    "two_images", "video"};
	static const char *untied[] = {"u_text_only", "u_img_wide", "u_two_images"};
	char path[256];

	TEST_INIT(argc, argv);
	for (size_t i = 0; i < sizeof tiny / sizeof *tiny; i++) {
		snprintf(path, sizeof path, TEST_DATA "/golden/tiny/%s.safetensors", tiny[i]);
		run_case(TEST_DATA "/models/tiny", path, tiny[i]);
	}
	for (size_t i = 0; i < sizeof untied / sizeof *untied; i++) {
		snprintf(path, sizeof path, TEST_DATA "/golden/untied/%s.safetensors", untied[i]);
		run_case(TEST_DATA "/models/untied", path, untied[i]);
	}
	test_step_many(TEST_DATA "/models/tiny", TEST_DATA "/models/untied");
	test_step_many(TEST_DATA "/models/untied", TEST_DATA "/models/tiny");
	printf("worst residual error %.2e, worst logits error %.2e (of max|ref|)\n", worst_resid,
	    worst_logits);
	return TEST_DONE();
}
