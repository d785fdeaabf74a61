/* matmul.h: products with the model's weight matrices.
 *
 * A weight is W [rows = out features, cols = in features] as the checkpoint stores it
 * (BF16, F16 or F32; quantized kinds later), never copied whole to float32.
 * qvl_matmul computes Y[n, rows] = X[n, cols] · Wᵀ (+ bias): for many rows of X through sgemm
 * on float32 tiles of W widened just before use, for one row through kernels that read W in
 * its own format.  Results do not depend on the number of threads. */
#ifndef QVL_MATMUL_H
#define QVL_MATMUL_H

#include <stdint.h>

#include "err.h"
#include "pool.h"
#include "tensor.h"

/* Storage kinds (dtype):
 *   QVL_BF16, QVL_F16, QVL_F32  rows * cols elements, row-major;
 *   QVL_I8  = q8: int8 q [rows, cols]; scales F16 [rows, nblocks]; w = d * q;
 *   QVL_U8  = q4: bytes [rows, nblocks * 16], block b of row r at r * nblocks * 16 + b * 16:
 *             byte j holds element 32b + j in its low nibble, 32b + 16 + j in its high one
 *             (the last block padded); scales and mins F16 [rows, nblocks]; w = d * q + m.
 * nblocks = ceil(cols / block), block = 32 (quant.h makes these from checkpoints). */
typedef struct qvl_matrix {
	qvl_dtype dtype;       /* storage of data (above) */
	int64_t rows, cols;
	const void *data;
	const void *scales;    /* quantized kinds only: F16 [rows, nblocks] */
	int block;             /* quantized kinds only: elements per scale (32) */
	const void *mins;      /* q4 only: F16 [rows, nblocks] */
} qvl_matrix;

/* A view of a 2-D checkpoint tensor as a matrix; error if not 2-D or not a float dtype. */
int qvl_matrix_from_tensor(const qvl_tensor *t, qvl_matrix *m, qvl_err *err);

/* Y[n, w->rows] = X[n, w->cols] · Wᵀ + bias (bias may be NULL; float32, w->rows values).
 * pool may be NULL (one thread). */
void qvl_matmul(qvl_pool *pool, const qvl_matrix *w, const float *bias, const float *x,
    int64_t n, float *y);

/* qvl_matmul for X given as BF16 values (xb[n, w->cols]: a pass that rounds its output for
 * the bf16 precision's products saves them a rounding pass).  Where the product does not
 * go to BF16 products (float32 precision, short batches, no oneDNN) X is widened into tmp
 * (n * w->cols floats, not y) first. */
void qvl_matmul_xb(qvl_pool *pool, const qvl_matrix *w, const float *bias,
    const uint16_t *xb, int64_t n, float *tmp, float *y);

/* Y[n, w->rows] += X[n, w->cols] · Wᵀ + bias in the product's pass (a residual add): the
 * bits of qvl_matmul (or qvl_matmul_xb) and an add.  X is float32 (x) or BF16 (xb), the
 * other NULL.  Returns 0, or -1 (y untouched) where the product would not go to qvl's own
 * AMX tiles: the caller then takes the two passes. */
int qvl_matmul_add(qvl_pool *pool, const qvl_matrix *w, const float *bias, const float *x,
    const uint16_t *xb, int64_t n, float *y);

/* The SwiGLU of two products in one pass: out[i, r] (BF16, [n, gate->rows]) = silu(X·gateᵀ
 * + gate_b)[i, r] · (X·upᵀ + up_b)[i, r], the bits of qvl_matmul (or qvl_matmul_xb),
 * qvl_silu_mul and qvl_round_bf16, without the two float32 products between them.  X is
 * float32 (x) or BF16 (xb), the other NULL.  Returns 0, or -1 (nothing written) where the
 * products would not go to qvl's own AMX tiles (float32 precision, short batches, weights
 * not BF16, no AMX): the caller then takes the three passes. */
int qvl_matmul_glu(qvl_pool *pool, const qvl_matrix *gate, const float *gate_b,
    const qvl_matrix *up, const float *up_b, const float *x, const uint16_t *xb, int64_t n,
    uint16_t *out);

/* C[m, n] = A[m, k] · B[n, k]ᵀ for float32 row-major matrices with leading dims (attention
 * scores and the like). */
void qvl_sgemm_nt(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
    const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
/* C[m, n] = A[m, k] · B[k, n] (row-major). */
void qvl_sgemm_nn(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
    const float *b, int64_t ldb, float beta, float *c, int64_t ldc);

/* Reads a 1-D float tensor (bias, norm weight) into a new float32 array of n values; error
 * naming the tensor when its shape is not [n]. */
float *qvl_vector_f32(const qvl_tensor *t, int64_t n, const char *name, qvl_err *err);

#endif
