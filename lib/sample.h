/* sample.h: choosing the next token, and the repetition guard.
 *
 * Greedy (temperature 0) takes the first maximum, as torch.argmax.  Otherwise the logits go
 * through transformers' processors in its order: repetition penalty (over the prompt and
 * the generated ids, each distinct id once: logit < 0 ? logit * p : logit / p), temperature,
 * top-k, top-p (the smallest set of most likely tokens whose probability reaches top_p), then
 * a draw from the renormalised distribution with the sampler's own generator. */
#ifndef QVL_SAMPLE_H
#define QVL_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct qvl_sample_params {
	double temperature;         /* 0 = greedy */
	double top_p;               /* 1 = off */
	int top_k;                  /* 0 = off */
	double repetition_penalty;  /* 1 = off */
	uint64_t seed;
} qvl_sample_params;

typedef struct qvl_sampler {
	qvl_sample_params p;
	int vocab;
	uint64_t rng[4];
	unsigned char *seen;   /* vocab flags for the repetition penalty */
	void *cand;            /* vocab (logit, id) candidates */
	float *prob;           /* vocab */
} qvl_sampler;

/* The defaults: greedy, no penalty, top_p 1, top_k 0, seed 0. */
void qvl_sample_defaults(qvl_sample_params *p);
int qvl_sampler_init(qvl_sampler *s, const qvl_sample_params *p, int vocab, qvl_err *err);
void qvl_sampler_free(qvl_sampler *s);

/* Picks the next id from logits[vocab] (modified in place by the penalty and temperature);
 * history = the prompt and generated ids so far (for the repetition penalty). */
int32_t qvl_sample(qvl_sampler *s, float *logits, const int32_t *history, size_t nhistory);

/* Index of the first maximum of x[0..n). */
int32_t qvl_argmax(const float *x, int64_t n);

/* Applies transformers' repetition penalty for the distinct ids of history. */
void qvl_repetition_penalty(float *logits, int vocab, const int32_t *history, size_t n,
    double penalty, unsigned char *seen);

/* The repetition guard.  Returns the period p (1 <= p <= QVL_REPEAT_MAX_PERIOD) when the last
 * max_repeat * p ids of ids[0..n) are max_repeat copies of one cycle of p ids and that tail
 * is at least QVL_REPEAT_MIN_SPAN ids long; 0 otherwise or when max_repeat is 0. */
#define QVL_REPEAT_MAX_PERIOD 256
#define QVL_REPEAT_MIN_SPAN 32
int qvl_repeat_check(const int32_t *ids, size_t n, int max_repeat);

#endif
