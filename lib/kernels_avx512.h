/* kernels_avx512.h: what the AVX-512 kernels (kernels_avx512.c) and their VNNI integer
 * kernels (kernels_avx512_vnni.c) share.  Everything is compiled with target attributes, so
 * the library still runs on CPUs without these instructions (qvl_kernels_for picks). */
#ifndef QVL_KERNELS_AVX512_H
#define QVL_KERNELS_AVX512_H

#include <immintrin.h>
#include <stdint.h>

#include "kernels.h"

#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")))
#define INLINE static inline __attribute__((always_inline)) T512
#define T512V __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c")))
#define INLINEV static inline __attribute__((always_inline)) T512V

/* The loops over the group's rows and inputs must unroll completely for the accumulators to
 * live in registers (R and N are constants at every call). */
#define UNROLL _Pragma("GCC unroll 8")

#define RB 4 /* rows per group */
#define NB 4 /* inputs per pass */
#define X_L1_BYTES 16384 /* bytes of x that stay in L1 beside the weights streaming through */

/* The accumulators of R rows by N inputs of a float32 or integer kernel, zeroed. */
INLINE void
zero_acc(int R, int N, __m512 (*acc)[NB])
{
	UNROLL
	for (int r = 0; r < R; r++)
		UNROLL
		for (int i = 0; i < N; i++)
			acc[r][i] = _mm512_setzero_ps();
}

/* q4's x prepared for VNNI (kernels_avx512_vnni.c says how), in floats. */
#define Q4X_GROUPS(nb) (((nb) + 3) / 4)
#define Q4X_FLOATS(nb) (2 * (nb) + Q4X_GROUPS(nb) * 32)

/* Scales of a group's rows widened to float32 ahead of the block loop, so each block costs
 * one broadcast from L1; columns go in chunks of SCALE_CHUNK blocks (32768 values), which
 * does not change the order of the sums. */
#define SCALE_CHUNK 1024

INLINE void
widen_scales(const uint16_t *sc, int64_t nb, int R, int64_t b0, int64_t nblk,
    float (*out)[SCALE_CHUNK])
{
	UNROLL
	for (int r = 0; r < R; r++) {
		int64_t b = 0;
		for (; b + 16 <= nblk; b += 16)
			_mm512_storeu_ps(out[r] + b, _mm512_cvtph_ps(_mm256_loadu_si256(
			    (const __m256i *)(sc + r * nb + b0 + b))));
		if (b < nblk) {
			__mmask16 m = (__mmask16)((1u << (nblk - b)) - 1);
			_mm512_mask_storeu_ps(out[r] + b, m, _mm512_cvtph_ps(
			    _mm256_maskz_loadu_epi16(m, sc + r * nb + b0 + b)));
		}
	}
}

/* rows for q8 (xp from qvl_kern_x16) and q4 (xp from avx512_q4x_prep) on AVX512_VNNI. */
T512V void avx512_rows_q8v(const qvl_matrix *w, int64_t r0, int64_t r1, int n,
    const float *xp, float *y, int64_t ldy);
T512V void avx512_rows_q4v(const qvl_matrix *w, int64_t r0, int64_t r1, const float *xp,
    int n, float *y, int64_t ldy);
T512V void avx512_q4x_prep(const float *x, int64_t cols, float *xp);

#endif
