/* quant.h: 8-bit and 4-bit weights: the formats, quantizing checkpoints, loading either kind.
 *
 * A quantized checkpoint stores each quantized matrix NAME (the checkpoint's full name,
 * e.g. model.layers.0.mlp.up_proj.weight) [rows, cols] as, with nb = ceil(cols / 32):
 *   q8: NAME.q8 I8 [rows, cols], NAME.q8_scale F16 [rows, nb]: w = scale * q, q in -127..127;
 *   q4: NAME.q4 U8 [rows, nb * 16] (block b of a row in bytes 16b .. 16b + 15, byte j holding
 *       element 32b + j in its low nibble and 32b + 16 + j in its high one; the last block
 *       padded with zeros), NAME.q4_scale and NAME.q4_min F16 [rows, nb]: w = scale * q + min,
 *       q in 0..15.
 * Everything else (norms, biases, the patch embedding, the token embedding) stays as it was;
 * with tied embeddings the token embedding also gets a quantized copy, for the lm_head
 * product.  man qvl-quantize(1) is the normative text. */
#ifndef QVL_QUANT_H
#define QVL_QUANT_H

#include <stdint.h>

#include "err.h"
#include "matmul.h"
#include "pool.h"
#include "safetensors.h"

/* The _AS_F32 kinds write each quantized matrix back as float32 under its own name, with
 * exactly the values the quantized one stands for: for measuring the quality of a
 * quantization with code that reads only float checkpoints. */
typedef enum qvl_quant_type {
	QVL_QUANT_Q8, QVL_QUANT_Q4, QVL_QUANT_Q8_AS_F32, QVL_QUANT_Q4_AS_F32
} qvl_quant_type;

/* The weight matrix NAME [rows, cols] of a checkpoint, whichever way it is stored: BF16 (or
 * F16/F32) as NAME, or quantized as NAME.q8 / NAME.q4 with their scales (preferred when
 * both exist).  Error naming the tensor when missing or of the wrong shape.  m views the
 * mapping: valid while w is open. */
int qvl_weights_matrix(const qvl_weights *w, const char *name, int64_t rows, int64_t cols,
    qvl_matrix *m, qvl_err *err);

/* The 1-D float tensor NAME of n values (a bias or norm weight) as a new float32 array (free
 * it with free()); error naming the tensor when it is missing or of another shape. */
float *qvl_weights_vector(const qvl_weights *w, const char *name, int64_t n, qvl_err *err);

/* Round to nearest even float16 (overflow to infinity), as numpy and torch cast. */
uint16_t qvl_f32_to_f16(float f);

/* One row of cols values: q8 writes cols int8 and nb scales; q4 writes nb * 16 bytes, nb
 * scales and nb mins.  Scales are fitted to the least squared error of each block (a few
 * candidate ranges, clipping the extremes); values inside the coded range are within half a
 * step (scale / 2). */
void qvl_quant_q8_row(const float *w, int64_t cols, int8_t *q, uint16_t *scales);
void qvl_quant_q4_row(const float *w, int64_t cols, uint8_t *q, uint16_t *scales,
    uint16_t *mins);

/* Bytes of a matrix's storage (data, scales, mins): what one product reads. */
size_t qvl_matrix_bytes(const qvl_matrix *m);

/* Whether qvl-quantize quantizes a checkpoint tensor: 2-D float matrices called *.weight
 * with at least 32 columns, except embeddings and norms. */
int qvl_quant_wanted(const char *name, const qvl_tensor *t);

/* Writes a quantized copy of model directory src into dst (created if missing): one
 * model.safetensors, and every other regular file of src (config, tokenizer) copied.
 * Each file appears whole or not at all (temp file + rename).  progress, if not NULL, is
 * called after each tensor with the counts done and total.  pool may be NULL. */
int qvl_quantize_model(const char *src, const char *dst, qvl_quant_type type, qvl_pool *pool,
    void (*progress)(void *ctx, long done, long total), void *ctx, qvl_err *err);

#endif
