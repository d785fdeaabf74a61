/* kernels_amx.c: BF16 products on AMX tiles, for long batches (prompts, the vision tower).
 *
 * A tile product C += A·B takes A as 16 rows of 32 BF16 values and B in pairs: row p of B
 * holds, for each of its 16 columns j, the two values B[2p][j] and B[2p + 1][j].  The
 * weights W [rows, cols] serve as A; X is packed into pairs, once per product.  Each
 * 16 x 16 block of C = W·Xᵀ is transposed as it is written to y, or written as it lies
 * (by_rows) where the caller has exchanged the operands because X is the longer one
 * (matmul.c) or wants y that way (attention's scores).  (oneDNN's brgemm ran the 3B's
 * shapes at 0.8-1.4 TFLOP/s on 2 cores of the project's Xeon, these at 1.8-2.5.)
 *
 * Work is split by panels of W's rows, one task each, sized so that a panel stays in the
 * L2 cache while every 32 rows of X pass by it; 2 x 2 tiles of C per step (rows 16 + 16
 * of W against inputs 16 + 16) load four tiles for four products.  A task first copies
 * its panel into tiles in the order the steps read them (zero-padded: no tail is special)
 * and, while it works on one pair of X, brings the next into the L2: measured on the A4
 * page's tower, 2.81-2.99 s with W's tiles loaded from its own rows, 2.74-2.79 with the
 * panel copied, 2.57-2.61 with the next pair fetched ahead too.
 *
 * What bounds it (one core, a loop of 2 x 2 steps alone): 59 cycles a step (3.8 TFLOP/s)
 * with both operands in L1, 64 with one in L2, 84 with both (the L2's ~48 bytes a cycle);
 * and each store of the sums costs about 1000 cycles more when X streams from the L2 (the
 * next loads wait for it), 200 when it comes from L1 -- hence the chunks of X that stay in
 * L1 below.  Fetching the next block's first tiles into L1 did not help.
 *
 * The tiles' way out also takes a SwiGLU (two matrices' rows in one block or pair, their
 * tiles gated as they are written) and a residual add, so that those outputs never make
 * a separate pass through memory. */
#include "kernels_amx.h"

#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "tensor.h"
#include "vmath.h"

#if defined(__x86_64__) && (defined(__clang__) || __GNUC__ >= 11)

#define TAMX __attribute__((target( \
    "amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))
#define INLINE static inline __attribute__((always_inline)) TAMX

#define PANEL_BYTES (1 << 20) /* of W's rows per task, at most (the L2 holds 2 MB) */
#define PANEL_MAX 256         /* rows */
#define AHEAD_MAX (256 << 10) /* bytes of a pair, at most, to fetch ahead */
#define KCHUNK 8              /* steps of a pair that stay in L1 while a panel's blocks pass */
#define PAIR_VALUES 1024      /* BF16 values of one step (32 columns) of 32 packed inputs */

/* Tiles: 0-3 the sums (W rows 0-15 / 16-31 by inputs 0-15 / 16-31), 4-5 W, 6-7 X. */
struct tile_config {
	uint8_t palette, start_row, reserved[14];
	uint16_t colsb[16];
	uint8_t rows[16];
};

struct amx_job {
	qvl_amx_args a;
	uint16_t *xp;        /* packed X: [pairs][ksteps][2][16][16][2] */
	uint16_t *panels;    /* per thread: a panel of W in tiles, [panel / 32][ksteps][32][32] */
	uint16_t *rows;      /* per thread: [32][cols], a pair of BF16 inputs */
	int64_t ksteps, panel;
	int64_t block_rows;  /* rows of W a block of 32 tile rows holds: 32, or 16 beside w2's */
	int64_t pair_inputs; /* inputs a pair of 32 packed rows holds: 32, or 16 beside xb2's */
	int parts;           /* of each x: 1, or 3 (exact) */
};

/* out[c] = column c of in[0..15] (16 rows of 16 32-bit values): the standard transpose, in
 * 32-bit pairs, then 64-bit, then two rounds of 128-bit lanes.  in may be memory (a tile
 * stored by the AMX unit): its rows are read by the first round's instructions, with no
 * copy in between. */
INLINE void
transpose16(const __m512i *in, __m512i out[16])
{
	__m512i t[16], u[16];

	for (int i = 0; i < 16; i += 2) {
		t[i] = _mm512_unpacklo_epi32(_mm512_load_si512(in + i),
		    _mm512_load_si512(in + i + 1));
		t[i + 1] = _mm512_unpackhi_epi32(_mm512_load_si512(in + i),
		    _mm512_load_si512(in + i + 1));
	}
	for (int g = 0; g < 16; g += 4) {
		u[g] = _mm512_unpacklo_epi64(t[g], t[g + 2]);
		u[g + 1] = _mm512_unpackhi_epi64(t[g], t[g + 2]);
		u[g + 2] = _mm512_unpacklo_epi64(t[g + 1], t[g + 3]);
		u[g + 3] = _mm512_unpackhi_epi64(t[g + 1], t[g + 3]);
	}
	/* u[4g + j], 128-bit lane L: rows 4g..4g+3 of column 4L + j */
	for (int j = 0; j < 4; j++) {
		__m512i v0 = _mm512_shuffle_i32x4(u[j], u[4 + j], 0x44);
		__m512i v1 = _mm512_shuffle_i32x4(u[j], u[4 + j], 0xee);
		__m512i v2 = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0x44);
		__m512i v3 = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0xee);
		out[j] = _mm512_shuffle_i32x4(v0, v2, 0x88);
		out[4 + j] = _mm512_shuffle_i32x4(v0, v2, 0xdd);
		out[8 + j] = _mm512_shuffle_i32x4(v1, v3, 0x88);
		out[12 + j] = _mm512_shuffle_i32x4(v1, v3, 0xdd);
	}
}

TAMX void
qvl_amx_transpose16(const uint32_t in[16][16], uint32_t out[16][16])
{
	_Alignas(64) uint32_t rows[16][16];
	__m512i r[16];

	memcpy(rows, in, sizeof rows);
	transpose16((const __m512i *)rows, r);
	for (int i = 0; i < 16; i++)
		_mm512_storeu_si512(out[i], r[i]);
}

/* The first count (<= 32) of 32 lanes. */
INLINE __mmask32
first_lanes(int64_t count)
{
	return count >= 32 ? ~(__mmask32)0 : ((__mmask32)1 << count) - 1;
}

/* BF16 values (to nearest even) of v0 (the low 16) and v1; the remainders v - bf16(v),
 * exact in float32, back in v0 and v1. */
INLINE __m512i
split_bf16(__m512 *v0, __m512 *v1)
{
	__m512i b = (__m512i)_mm512_cvtne2ps_pbh(*v1, *v0);
	__m512i lo = _mm512_cvtepu16_epi32(_mm512_castsi512_si256(b));
	__m512i hi = _mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(b, 1));

	*v0 = _mm512_sub_ps(*v0, _mm512_castsi512_ps(_mm512_slli_epi32(lo, 16)));
	*v1 = _mm512_sub_ps(*v1, _mm512_castsi512_ps(_mm512_slli_epi32(hi, 16)));
	return b;
}

/* Values k0..k0+count-1 (count <= 32) of an input row (BF16 or float32 as X is given) as
 * 32 BF16 values in part[0], zero beyond count; exact: three parts, part[0] + part[1] +
 * part[2] = x (24 bits of float32 in three of 8, each rounded to nearest: what one leaves
 * the next takes). */
INLINE void
input_values(const struct amx_job *job, const void *row, int64_t k0, int64_t count,
    __m512i part[3])
{
	if (job->a.xb) {
		part[0] = _mm512_maskz_loadu_epi16(first_lanes(count), (const uint16_t *)row + k0);
		return;
	}
	const float *src = (const float *)row + k0;
	int64_t hi = count > 16 ? count - 16 : 0, lo = count < 16 ? count : 16;
	__m512 v0 = _mm512_maskz_loadu_ps((__mmask16)((1u << lo) - 1), src);
	__m512 v1 = _mm512_maskz_loadu_ps((__mmask16)((1u << hi) - 1), src + 16);
	for (int p = 0; p < job->parts; p++)
		part[p] = split_bf16(&v0, &v1);
}

/* Row i (< 32) of pair p: input 32p + i, or beside xb2, input 16p + i % 16 of xb (i < 16)
 * or of xb2; NULL past n. */
static const void *
pair_row(const struct amx_job *job, int64_t p, int i)
{
	const qvl_amx_args *a = &job->a;
	int64_t m = p * job->pair_inputs + (a->xb2 ? i % 16 : i);

	if (m >= a->n)
		return NULL;
	if (a->x)
		return a->x + m * a->cols;
	return (a->xb2 && i >= 16 ? a->xb2 : a->xb) + m * a->cols;
}

/* Pair p's rows (pair_row) into BF16 pairs, zero past n and past cols: step s of part q
 * at (s parts + q) PAIR_VALUES. */
static TAMX void
pack_task(void *ctx, long pair, int thread)
{
	const struct amx_job *job = ctx;
	const qvl_amx_args *a = &job->a;
	uint16_t *dst = job->xp + (int64_t)pair * job->ksteps * job->parts * PAIR_VALUES;
	const void *row[32];

	/* The pair's rows are read below 64 bytes of each at a time: BF16 ones are copied
	 * first, row after row, so that they come from memory at its rate (W, when the
	 * operands swap). */
	for (int i = 0; i < 32; i++) {
		row[i] = pair_row(job, pair, i);
		if (a->xb && row[i]) {
			uint16_t *copy = job->rows + ((size_t)thread * 32 + (size_t)i) * (size_t)a->cols;
			memcpy(copy, row[i], (size_t)a->cols * sizeof *copy);
			row[i] = copy;
		}
	}
	for (int64_t s = 0; s < job->ksteps; s++, dst += job->parts * PAIR_VALUES) {
		int64_t k0 = s * 32, count = a->cols - k0 < 32 ? a->cols - k0 : 32;

		for (int h = 0; h < 2; h++) {
			__m512i r[3][16], part[3];

			for (int i = 0; i < 16; i++) {
				if (row[h * 16 + i])
					input_values(job, row[h * 16 + i], k0, count, part);
				else
					part[0] = part[1] = part[2] = _mm512_setzero_si512();
				for (int q = 0; q < job->parts; q++)
					r[q][i] = part[q];
			}
			for (int q = 0; q < job->parts; q++) {
				uint16_t *out = dst + q * PAIR_VALUES + h * (PAIR_VALUES / 2);
				transpose16(r[q], r[q]);
				for (int i = 0; i < 16; i++)
					_mm512_store_si512(out + i * 32, r[q][i]);
			}
		}
	}
}

/* The 4 products of a step: W rows 0-15 (tile 4) and 16-31 (tile 5) by inputs 0-15 and
 * 16-31 at b. */
#define STEP_PRODUCTS(b) do {                                                              \
	_tile_loadd(6, (b), 64);                                                           \
	_tile_dpbf16ps(0, 4, 6);                                                           \
	_tile_loadd(7, (b) + PAIR_VALUES / 2, 64);                                         \
	_tile_dpbf16ps(1, 4, 7);                                                           \
	_tile_dpbf16ps(2, 5, 6);                                                           \
	_tile_dpbf16ps(3, 5, 7);                                                           \
} while (0)

/* C (4 tiles, in c) += the 32 rows of W at a (in tiles: step s's rows 0-15 at a + 1024 s,
 * 16-31 after them) against the 32 packed inputs at xp (each of their `parts` parts), over
 * steps s0..s1-1 (C zero before step 0, else read from c); meanwhile the `lines` cache
 * lines at ahead are asked into the L2, a few each step. */
static inline __attribute__((always_inline)) TAMX void
block_2x2(const uint16_t *a, int64_t s0, int64_t s1, const uint16_t *xp, int parts,
    const char *ahead, int64_t lines, float c[4][256])
{
	if (s0 == 0) {
		_tile_zero(0);
		_tile_zero(1);
		_tile_zero(2);
		_tile_zero(3);
	} else {
		_tile_loadd(0, c[0], 64);
		_tile_loadd(1, c[1], 64);
		_tile_loadd(2, c[2], 64);
		_tile_loadd(3, c[3], 64);
	}
	int64_t per_step = (lines + (s1 - s0) - 1) / (s1 - s0);
	for (int64_t s = s0; s < s1; s++) {
		const uint16_t *b = xp + s * parts * PAIR_VALUES;

		for (int64_t l = (s - s0) * per_step; l < lines && l < (s - s0 + 1) * per_step; l++)
			_mm_prefetch(ahead + l * 64, _MM_HINT_T1);
		_tile_loadd(4, a + s * 1024, 64);
		_tile_loadd(5, a + s * 1024 + 512, 64);
		for (int q = 0; q < parts; q++)
			STEP_PRODUCTS(b + q * PAIR_VALUES);
	}
	_tile_stored(0, c[0], 64);
	_tile_stored(1, c[1], 64);
	_tile_stored(2, c[2], 64);
	_tile_stored(3, c[3], 64);
}

/* W's rows r0..r1-1 into tiles at dst ([block][step][32 rows][32 values]), zero past r1
 * and past cols; beside w2, a block's rows are 16 of W and the same 16 of w2. */
INLINE void
pack_panel(const struct amx_job *job, int64_t r0, int64_t r1, uint16_t *dst)
{
	const qvl_amx_args *a = &job->a;
	int64_t blocks = (r1 - r0 + job->block_rows - 1) / job->block_rows;

	for (int64_t b = 0; b < blocks; b++)
		for (int i = 0; i < 32; i++) {
			int64_t r = r0 + b * job->block_rows + (a->w2 ? i % 16 : i);
			const uint16_t *w = (a->w2 && i >= 16 ? a->w2 : a->w) + r * a->cols;
			uint16_t *out = dst + b * job->ksteps * 1024 + i * 32;

			for (int64_t s = 0; s < job->ksteps; s++, out += 1024) {
				int64_t count = r >= r1 ? 0 : a->cols - s * 32 < 32 ? a->cols - s * 32 : 32;
				_mm512_store_si512(out, _mm512_maskz_loadu_epi16(first_lanes(count),
				    w + s * 32));
			}
		}
}

/* The rows of a tile's block of y: row i is y[m0 + i, r0 .. r0 + 15] = alpha c[j][i] +
 * bias[r0 + j] (one rounding: with alpha 1, the sum's) for i < mcount, j < rcount; by_rows,
 * y[r0 + j, m0 .. m0 + 15] = alpha c[j][i] + bias[m0 + i], as the tile lies.  Returns the
 * number of rows (0 for none), their first row and column of y, and the mask of their
 * columns. */
INLINE int64_t
tile_rows(const struct amx_job *job, const float *bias, const float c[256], int64_t m0,
    int64_t mcount, int64_t r0, int64_t rcount, __m512 out[16], int64_t *row0, int64_t *col0,
    __mmask16 *mask)
{
	__m512 alpha = _mm512_set1_ps(job->a.alpha), b;
	int by_rows = job->a.by_rows;
	int64_t rows = by_rows ? rcount : mcount, cols = by_rows ? mcount : rcount;
	__m512i v[16];

	if (mcount <= 0 || rcount <= 0)
		return 0;
	rows = rows < 16 ? rows : 16;
	*mask = cols >= 16 ? 0xffff : (__mmask16)((1u << cols) - 1);
	*row0 = by_rows ? r0 : m0;
	*col0 = by_rows ? m0 : r0;
	b = bias ? _mm512_maskz_loadu_ps(*mask, bias + *col0) : _mm512_setzero_ps();
	if (by_rows)
		for (int64_t i = 0; i < rows; i++)
			out[i] = _mm512_fmadd_ps(_mm512_load_ps(c + i * 16), alpha, b);
	else {
		transpose16((const __m512i *)c, v);
		for (int64_t i = 0; i < rows; i++)
			out[i] = _mm512_fmadd_ps(_mm512_castsi512_ps(v[i]), alpha, b);
	}
	return rows;
}

INLINE void
put_tile(const struct amx_job *job, const float c[256], int64_t m0, int64_t mcount,
    int64_t r0, int64_t rcount)
{
	__m512 out[16];
	int64_t row0, col0;
	__mmask16 mask;
	int64_t rows = tile_rows(job, job->a.bias, c, m0, mcount, r0, rcount, out, &row0,
	    &col0, &mask);

	for (int64_t i = 0; i < rows; i++) {
		float *y = job->a.y + (row0 + i) * job->a.ldy + col0;

		if (job->a.accumulate)
			out[i] = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, y), out[i]);
		_mm512_mask_storeu_ps(y, mask, out[i]);
	}
}

/* put_tile's block of y from the gate's tile g and the up projection's u, through SwiGLU
 * into yb: qvl_silu_mul and the rounding of qvl_round_bf16, the same bits as the three
 * passes. */
INLINE void
glu_tile(const struct amx_job *job, const float g[256], const float u[256], int64_t m0,
    int64_t mcount, int64_t r0, int64_t rcount)
{
	_Alignas(64) float gate[16][16], up[16][16];
	__m512 out[16];
	int64_t row0, col0;
	__mmask16 mask;
	int64_t rows = tile_rows(job, job->a.bias, g, m0, mcount, r0, rcount, out, &row0,
	    &col0, &mask);

	if (rows == 0)
		return;
	for (int64_t i = 0; i < rows; i++)
		_mm512_store_ps(gate[i], out[i]);
	tile_rows(job, job->a.bias2, u, m0, mcount, r0, rcount, out, &row0, &col0, &mask);
	for (int64_t i = 0; i < rows; i++)
		_mm512_store_ps(up[i], out[i]);
	qvl_silu_mul(gate[0], up[0], rows * 16);
	for (int64_t i = 0; i < rows; i++)
		_mm256_mask_storeu_epi16(job->a.yb + (row0 + i) * job->a.ldy + col0, mask,
		    (__m256i)_mm512_cvtneps_pbh(_mm512_load_ps(gate[i])));
}

static TAMX void
product_task(void *ctx, long task, int thread)
{
	const struct amx_job *job = ctx;
	const qvl_amx_args *a = &job->a;
	int64_t r0 = (int64_t)task * job->panel, r1 = r0 + job->panel;
	int64_t pairs = (a->n + job->pair_inputs - 1) / job->pair_inputs, n = a->n;
	uint16_t *panel = job->panels + (size_t)thread * (size_t)(job->panel / job->block_rows *
	    job->ksteps * 1024);
	struct tile_config config;

	if (r1 > a->rows)
		r1 = a->rows;
	pack_panel(job, r0, r1, panel);
	memset(&config, 0, sizeof config);
	config.palette = 1;
	for (int t = 0; t < 8; t++) {
		config.colsb[t] = 64;
		config.rows[t] = 16;
	}
	_tile_loadconfig(&config);
	/* A pair's steps go by chunks, every block of the panel through one before the next,
	 * so that the chunk's 16 KB of X are read from L1 and only W's tiles from L2 (the
	 * sums wait in acc between chunks, exactly): 812 x 812 tower 3.50-3.64 -> 3.33-3.64 s.
	 * Not for one or few blocks, which do not reuse the chunk, nor for the three parts of
	 * exact products, whose chunks would be too short.  The next pair is fetched ahead by
	 * the blocks' steps, `share` cache lines each. */
	int64_t pair_values = job->ksteps * job->parts * PAIR_VALUES;
	int64_t lines = pair_values * 2 > AHEAD_MAX ? 0 : pair_values / 32;
	int64_t blocks = (r1 - r0 + job->block_rows - 1) / job->block_rows;
	int64_t chunk = job->parts == 1 && blocks >= 4 ? KCHUNK : job->ksteps;
	int64_t chunks = (job->ksteps + chunk - 1) / chunk;
	int64_t share = (lines + blocks * chunks - 1) / (blocks * chunks);
	_Alignas(64) float acc[PANEL_MAX / 32][4][256];
	for (int64_t p = 0; p < pairs; p++) {
		const uint16_t *xp = job->xp + p * pair_values;
		const char *next = (const char *)(xp + pair_values);
		int64_t m0 = p * job->pair_inputs, first = 0;

		for (int64_t s0 = 0; s0 < job->ksteps; s0 += chunk) {
			int64_t s1 = s0 + chunk < job->ksteps ? s0 + chunk : job->ksteps;
			for (int64_t k = 0; k < blocks; k++, first += share) {
				int64_t ahead = p + 1 == pairs || first >= lines ? 0 :
				    lines - first < share ? lines - first : share;

				block_2x2(panel + k * job->ksteps * 1024, s0, s1, xp, job->parts,
				    next + first * 64, ahead, acc[k]);
			}
		}
		for (int64_t k = 0; k < blocks; k++) {
			int64_t b0 = r0 + k * job->block_rows;
			float (*c)[256] = acc[k];
			if (a->w2) {        /* c: gate / up rows by inputs 0-15 / 16-31 */
				glu_tile(job, c[0], c[2], m0, n - m0, b0, r1 - b0);
				glu_tile(job, c[1], c[3], m0 + 16, n - m0 - 16, b0, r1 - b0);
			} else if (a->xb2) { /* c: W rows 0-15 / 16-31 by gate / up inputs */
				glu_tile(job, c[0], c[1], m0, n - m0, b0, r1 - b0);
				glu_tile(job, c[2], c[3], m0, n - m0, b0 + 16, r1 - b0 - 16);
			} else {
				put_tile(job, c[0], m0, n - m0, b0, r1 - b0);
				put_tile(job, c[1], m0 + 16, n - m0 - 16, b0, r1 - b0);
				put_tile(job, c[2], m0, n - m0, b0 + 16, r1 - b0 - 16);
				put_tile(job, c[3], m0 + 16, n - m0 - 16, b0 + 16, r1 - b0 - 16);
			}
		}
	}
	_tile_release();
}

int
qvl_amx_usable(void)
{
	const qvl_cpu *cpu = qvl_cpu_get();

	return cpu->amx && cpu->level >= QVL_CPU_AVX512BF16;
}

int
qvl_amx_product(qvl_pool *pool, const qvl_amx_args *args)
{
	int threads = qvl_pool_threads(pool);
	struct amx_job job = {.a = *args};
	int64_t rows = args->rows, cols = args->cols, n = args->n;
	int64_t kpad = (cols + 31) / 32 * 32, pairs, tasks, block;
	int glu = args->w2 != NULL || args->xb2 != NULL;
	int rc = -1;

	if (!qvl_amx_usable() || rows <= 0 || cols <= 0 || n <= 0 ||
	    (args->xb == NULL) == (args->x == NULL) || (args->exact && args->x == NULL) ||
	    glu != (args->yb != NULL) || (args->w2 && (args->xb2 || args->by_rows)) ||
	    (args->xb2 && (!args->by_rows || args->xb == NULL)))
		return -1;
	job.parts = args->exact ? 3 : 1;
	job.ksteps = kpad / 32;
	job.block_rows = block = args->w2 ? 16 : 32;
	job.pair_inputs = args->xb2 ? 16 : 32;
	pairs = (n + job.pair_inputs - 1) / job.pair_inputs;
	/* Panels (rows of W, a block's at a time) that fit the L2, and at least two a
	 * thread where W has the rows for it. */
	job.panel = PANEL_BYTES / (32 / block * kpad * 2) / block * block;
	int64_t share = (rows + 2 * threads - 1) / (2 * threads);
	share = (share + block - 1) / block * block;
	if (job.panel > share)
		job.panel = share;
	if (job.panel > PANEL_MAX / 32 * block)
		job.panel = PANEL_MAX / 32 * block;
	if (job.panel < block)
		job.panel = block;
	tasks = (rows + job.panel - 1) / job.panel;
	job.xp = qvl_alloc((size_t)(pairs * job.ksteps * job.parts * PAIR_VALUES) *
	    sizeof *job.xp);
	job.panels = qvl_alloc((size_t)threads * (size_t)(job.panel / block * job.ksteps) *
	    1024 * sizeof *job.panels);
	job.rows = args->xb ? qvl_alloc((size_t)threads * 32 * (size_t)cols * sizeof *job.rows) :
	    NULL;
	if (job.xp == NULL || job.panels == NULL || (args->xb && job.rows == NULL))
		goto out;
	qvl_pool_run(pool, (long)pairs, pack_task, &job);
	qvl_pool_run(pool, (long)tasks, product_task, &job);
	rc = 0;
out:
	free(job.rows);
	free(job.panels);
	free(job.xp);
	return rc;
}

#else /* no AMX intrinsics in this compiler or on this architecture */

int
qvl_amx_usable(void)
{
	return 0;
}

int
qvl_amx_product(qvl_pool *pool, const qvl_amx_args *args)
{
	(void)pool, (void)args;
	return -1;
}

void
qvl_amx_transpose16(const uint32_t in[16][16], uint32_t out[16][16])
{
	(void)in, (void)out;
}

#endif
