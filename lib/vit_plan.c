/* vit_plan.c: the vision tower's attention groups (windows in the reference's window order,
 * temporal slices) and the bf16 precision's tasks over them. */
#include "vit_plan.h"

#include <stdlib.h>
#include <string.h>

#include "vit_attn.h"

void
qvl_vit_plan_free(qvl_vit_plan *p)
{
	free(p->idx);
	free(p->start);
	free(p->len);
	free(p->packs);
	free(p->tasks);
	memset(p, 0, sizeof *p);
}

static int
plan_alloc(qvl_vit_plan *p, int64_t n, int64_t ngroups, qvl_err *err)
{
	p->idx = n > 0 ? malloc((size_t)n * sizeof *p->idx) : NULL;
	p->start = malloc((size_t)ngroups * sizeof *p->start);
	p->len = malloc((size_t)ngroups * sizeof *p->len);
	p->ngroups = ngroups;
	p->maxlen = 0;
	if ((n > 0 && p->idx == NULL) || p->start == NULL || p->len == NULL) {
		qvl_vit_plan_free(p);
		return qvl_fail_errno(err, "attention plan");
	}
	return 0;
}

/* Windows of units x units merge units tiling each temporal slice's merged grid from the
 * top left; rows listed in the reference's window order (units in raster order inside a
 * window, the patches of a unit consecutive), which also keeps its summation order. */
int
qvl_vit_plan_windows(const qvl_vision_config *c, const int64_t g[3], qvl_vit_plan *p,
    qvl_err *err)
{
	int64_t m = c->spatial_merge_size, mm = m * m;
	int64_t units = c->window_size / c->spatial_merge_size / c->patch_size;
	int64_t hm = g[1] / m, wm = g[2] / m, frame = g[1] * g[2];
	int64_t nwy = (hm + units - 1) / units, nwx = (wm + units - 1) / units;
	int64_t pos = 0, k = 0;

	if (plan_alloc(p, g[0] * frame, g[0] * nwy * nwx, err) < 0)
		return -1;
	for (int64_t t = 0; t < g[0]; t++)
		for (int64_t wy = 0; wy < nwy; wy++)
			for (int64_t wx = 0; wx < nwx; wx++) {
				int64_t y1 = wy * units + units < hm ? wy * units + units : hm;
				int64_t x1 = wx * units + units < wm ? wx * units + units : wm;

				p->start[k] = pos;
				for (int64_t by = wy * units; by < y1; by++)
					for (int64_t bx = wx * units; bx < x1; bx++)
						for (int64_t i = 0; i < mm; i++)
							p->idx[pos++] = t * frame + (by * wm + bx) * mm + i;
				p->len[k] = pos - p->start[k];
				if (p->len[k] > p->maxlen)
					p->maxlen = p->len[k];
				k++;
			}
	return 0;
}

/* One group per temporal slice: full attention never crosses frames (or images), and the
 * window order keeps each frame's rows together. */
int
qvl_vit_plan_slices(const int64_t g[3], qvl_vit_plan *p, qvl_err *err)
{
	int64_t frame = g[1] * g[2];

	if (plan_alloc(p, 0, g[0], err) < 0)
		return -1;
	for (int64_t t = 0; t < g[0]; t++) {
		p->start[t] = t * frame;
		p->len[t] = frame;
	}
	p->maxlen = frame;
	return 0;
}

int
qvl_vit_plan_bf16(qvl_vit_plan *p, int heads, int head_dim, qvl_err *err)
{
	int64_t npacks = 0, ntasks = 0;

	for (int64_t g = 0; g < p->ngroups; g++) {
		int nheads;
		int64_t qn;

		qvl_vit_attn_bf16_task(heads, p->len[g], &nheads, &qn);
		npacks += (p->len[g] + QVL_VIT_PACK_ROWS - 1) / QVL_VIT_PACK_ROWS;
		ntasks += (int64_t)(heads / nheads) * ((p->len[g] + qn - 1) / qn);
	}
	p->packs = malloc((size_t)(npacks > 0 ? npacks : 1) * sizeof *p->packs);
	p->tasks = malloc((size_t)(ntasks > 0 ? ntasks : 1) * sizeof *p->tasks);
	if (p->packs == NULL || p->tasks == NULL)
		return qvl_fail_errno(err, "attention plan");
	p->npacks = p->ntasks = 0;
	for (int64_t g = 0; g < p->ngroups; g++) {
		int nheads;
		int64_t qn, len = p->len[g];
		size_t bytes;

		qvl_vit_attn_bf16_task(heads, len, &nheads, &qn);
		bytes = qvl_vit_attn_bf16_scratch_bytes(nheads, qn, len, head_dim);
		if (bytes > p->scratch_bytes)
			p->scratch_bytes = bytes;
		for (int64_t r = 0; r < len; r += QVL_VIT_PACK_ROWS)
			p->packs[p->npacks++] = (struct qvl_vit_pack_task){ g, r,
			    r + QVL_VIT_PACK_ROWS < len ? r + QVL_VIT_PACK_ROWS : len };
		for (int h = 0; h < heads; h += nheads)
			for (int64_t i = 0; i < len; i += qn)
				p->tasks[p->ntasks++] = (struct qvl_vit_bf16_task){ g, i,
				    len - i < qn ? len - i : qn, h, nheads };
	}
	return 0;
}
