/* vit_plan.h: which rows of the vision tower attend together, and how the bf16
 * precision's attention splits into tasks (vit.c runs them, vit_attn.c computes them). */
#ifndef QVL_VIT_PLAN_H
#define QVL_VIT_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "err.h"

/* Rows a packing task of the bf16 precision rounds. */
#define QVL_VIT_PACK_ROWS 32

/* Attention groups: group g is the rows start[g] .. start[g] + len[g] of the window order;
 * for the windows' plan, idx[i] is the processor's row at position i of that order. */
typedef struct qvl_vit_plan {
	int64_t *idx;
	int64_t *start, *len;
	int64_t ngroups, maxlen;
	/* bf16 precision: packing tasks (rows r0 .. r1 of a group) and attention tasks
	 * (queries i0 .. i0 + qn of heads head0 .. + nheads of a group) */
	struct qvl_vit_pack_task { int64_t group, r0, r1; } *packs;
	struct qvl_vit_bf16_task { int64_t group, i0, qn; int head0, nheads; } *tasks;
	int64_t npacks, ntasks;
	size_t scratch_bytes; /* per thread */
} qvl_vit_plan;

/* Windows of the reference's window_size tiling each temporal slice of grid g; idx is the
 * window order. */
int qvl_vit_plan_windows(const qvl_vision_config *c, const int64_t g[3], qvl_vit_plan *p,
    qvl_err *err);
/* One group per temporal slice (full attention); no idx. */
int qvl_vit_plan_slices(const int64_t g[3], qvl_vit_plan *p, qvl_err *err);
/* Adds the bf16 precision's packing and attention tasks, and their scratch size. */
int qvl_vit_plan_bf16(qvl_vit_plan *p, int heads, int head_dim, qvl_err *err);
void qvl_vit_plan_free(qvl_vit_plan *p);

#endif
