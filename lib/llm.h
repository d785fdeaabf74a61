/* llm.h: the Qwen2.5 language model of Qwen2.5-VL (decoder layers, multimodal RoPE, KV cache).
 *
 * Weights stay in the checkpoint's mmap (BF16); products go through qvl_matmul: sgemm for a
 * batch of prompt rows, BF16 kernels for one decoded token.  The model keeps a KV cache: every
 * qvl_llm_forward call appends its tokens after those already cached, so a prompt can be
 * prefilled in one call (or several) and then extended one token at a time. */
#ifndef QVL_LLM_H
#define QVL_LLM_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "err.h"
#include "pool.h"
#include "safetensors.h"

typedef struct qvl_llm qvl_llm;

/* Called with the residual stream of the n tokens of a forward call: layer 0 = the input
 * embeddings, layer i = after decoder layer i (the last one before the final norm). */
typedef void (*qvl_llm_hook)(void *ctx, int layer, const float *x, int64_t n);

/* Binds the language-model tensors of w (borrowed: keep it open) and checks their shapes
 * against cfg (either layout of the names: see qvl_weights_find). */
qvl_llm *qvl_llm_new(const qvl_weights *w, const qvl_config *cfg, qvl_err *err);
void qvl_llm_free(qvl_llm *m);
const qvl_config *qvl_llm_config(const qvl_llm *m);

/* Bytes of weights one decoded token reads (all layers, final norm and lm_head; embedding
 * rows not counted): the numerator of the memory-bandwidth bound. */
size_t qvl_llm_token_bytes(const qvl_llm *m);

/* Makes room for ctx tokens in the KV cache (kept content); error when ctx exceeds
 * max_position_embeddings or memory is short. */
int qvl_llm_reserve(qvl_llm *m, int64_t ctx, qvl_err *err);
/* Forgets the cached tokens (a new conversation). */
void qvl_llm_reset(qvl_llm *m);
int64_t qvl_llm_cached(const qvl_llm *m);
/* Prompt rows qvl_llm_forward takes through the layers at a time (default 512; rows <= 0
 * restores it): more rows amortize widening the weights for sgemm, fewer keep the scratch
 * small.  The results do not depend on it beyond float32 rounding. */
void qvl_llm_set_prefill_rows(qvl_llm *m, int64_t rows);

/* x[n, hidden] = the embedding rows of ids; error for an id outside the vocabulary. */
int qvl_llm_embed(const qvl_llm *m, const int32_t *ids, int64_t n, float *x, qvl_err *err);

/* The vision embeddings of one image or video (qvl-merge's rows), in prompt order. */
typedef struct qvl_visual_rows {
	const float *rows;  /* n x hidden */
	int64_t n;
	int video;
} qvl_visual_rows;

/* x[n, hidden] = the prompt's input embeddings: the token embeddings, except that the
 * image pad tokens take the images' rows and the video pad tokens the videos' rows, each
 * in order of appearance (the reference's masked_scatter).  Error when pads and rows do
 * not match in number. */
int qvl_llm_embed_prompt(const qvl_llm *m, const int32_t *ids, int64_t n,
    const qvl_visual_rows *vis, int nvis, float *x, qvl_err *err);

/* Runs the decoder on n new tokens whose input rows are x[n, hidden], at M-RoPE positions
 * pos[0..n) (time), pos[n..2n) (height), pos[2n..3n) (width); their keys and values are
 * appended to the cache (grown as needed).  On return x holds the final-norm hidden states.
 * hook may be NULL. */
int qvl_llm_forward(qvl_llm *m, qvl_pool *pool, float *x, const int64_t *pos, int64_t n,
    qvl_llm_hook hook, void *hook_ctx, qvl_err *err);

/* One generated token for each of nseq conversations at once, so that each weight is read
 * once for all of them: seqs[i] (its own state: qvl_llm_new on the same weights) takes row
 * i of x[nseq, hidden] at M-RoPE position pos[i] in all three sections (generated text)
 * and caches its key and value.  On return x holds the final-norm hidden states.  Up to 8
 * conversations (the decoding kernels' batch), each row is the same bits as that
 * conversation's own qvl_llm_forward of one token.  Error when the conversations do not
 * share weights, or one appears twice. */
int qvl_llm_step_many(qvl_llm **seqs, int nseq, qvl_pool *pool, float *x, const int64_t *pos,
    qvl_err *err);

/* logits[n, vocab] = h[n, hidden] · lm_headᵀ (embed_tokens when tied). */
void qvl_llm_logits(qvl_llm *m, qvl_pool *pool, const float *h, int64_t n, float *logits);

#endif
