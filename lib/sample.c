/* sample.c: greedy choice, transformers' sampling processors, the repetition guard. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sample.h"

struct cand {
	float logit;
	int32_t id;
};

void
qvl_sample_defaults(qvl_sample_params *p)
{
	p->temperature = 0;
	p->top_p = 1;
	p->top_k = 0;
	p->repetition_penalty = 1;
	p->seed = 0;
}

static uint64_t
splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* xoshiro256**: small, fast, and the same sequence on every platform for a given seed. */
static uint64_t
next_u64(uint64_t *s)
{
	uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return r;
}

static double
uniform(uint64_t *s)
{
	return (double)(next_u64(s) >> 11) * 0x1.0p-53;
}

int
qvl_sampler_init(qvl_sampler *s, const qvl_sample_params *p, int vocab, qvl_err *err)
{
	uint64_t x;

	memset(s, 0, sizeof *s);
	if (vocab <= 0)
		return qvl_fail(err, "sampler: vocabulary of %d", vocab);
	if (p->temperature < 0 || !(p->top_p > 0 && p->top_p <= 1) || p->top_k < 0 ||
	    !(p->repetition_penalty > 0))
		return qvl_fail(err, "sampler: bad parameters (temperature %g, top_p %g, top_k %d, "
		    "repetition_penalty %g)", p->temperature, p->top_p, p->top_k,
		    p->repetition_penalty);
	s->p = *p;
	s->vocab = vocab;
	x = p->seed;
	for (int i = 0; i < 4; i++)
		s->rng[i] = splitmix64(&x);
	s->seen = calloc((size_t)vocab, 1);
	s->cand = malloc((size_t)vocab * sizeof(struct cand));
	s->prob = malloc((size_t)vocab * sizeof *s->prob);
	if (s->seen == NULL || s->cand == NULL || s->prob == NULL) {
		qvl_sampler_free(s);
		return qvl_fail(err, "sampler: out of memory");
	}
	return 0;
}

void
qvl_sampler_free(qvl_sampler *s)
{
	free(s->seen);
	free(s->cand);
	free(s->prob);
	s->seen = NULL;
	s->cand = NULL;
	s->prob = NULL;
}

int32_t
qvl_argmax(const float *x, int64_t n)
{
	int64_t best = 0;

	for (int64_t i = 1; i < n; i++)
		if (x[i] > x[best])
			best = i;
	return (int32_t)best;
}

void
qvl_repetition_penalty(float *logits, int vocab, const int32_t *history, size_t n,
    double penalty, unsigned char *seen)
{
	float p = (float)penalty;

	if (penalty == 1)
		return;
	for (size_t i = 0; i < n; i++) {
		int32_t id = history[i];
		if (id < 0 || id >= vocab || seen[id])
			continue;
		seen[id] = 1;
		logits[id] = logits[id] < 0 ? logits[id] * p : logits[id] / p;
	}
	for (size_t i = 0; i < n; i++)
		if (history[i] >= 0 && history[i] < vocab)
			seen[history[i]] = 0;
}

/* Descending logit, ties by ascending id, so the order is total and the draw reproducible. */
static int
cand_cmp(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;

	if (x->logit != y->logit)
		return x->logit > y->logit ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

int32_t
qvl_sample(qvl_sampler *s, float *logits, const int32_t *history, size_t nhistory)
{
	int vocab = s->vocab;
	int n;

	qvl_repetition_penalty(logits, vocab, history, nhistory, s->p.repetition_penalty, s->seen);
	if (s->p.temperature == 0)
		return qvl_argmax(logits, vocab);
	/* Divided as the reference divides; a temperature so small that the largest logit
	 * overflows float is the limit of T -> 0, the argmax (the reference's softmax would
	 * give NaN). */
	int best = qvl_argmax(logits, vocab);
	float t = (float)s->p.temperature;
	if (isinf(logits[best] / t))
		return best;
	for (int i = 0; i < vocab; i++)
		logits[i] /= t;

	/* Candidates in descending order of logit (ties by id, for a stable result). */
	struct cand *c = s->cand;
	for (int i = 0; i < vocab; i++) {
		c[i].logit = logits[i];
		c[i].id = i;
	}
	qsort(c, (size_t)vocab, sizeof *c, cand_cmp);
	n = vocab;
	if (s->p.top_k > 0 && s->p.top_k < n) {
		/* transformers keeps every token tied with the k-th */
		float kth = c[s->p.top_k - 1].logit;
		n = s->p.top_k;
		while (n < vocab && c[n].logit == kth)
			n++;
	}
	float mx = c[0].logit;
	double sum = 0;
	for (int i = 0; i < n; i++) {
		s->prob[i] = expf(c[i].logit - mx);
		sum += s->prob[i];
	}
	if (s->p.top_p < 1) {
		/* keep a token while the probability of those before it is below top_p */
		double before = 0;
		int keep = 0;
		while (keep < n && before < s->p.top_p * sum) {
			before += s->prob[keep];
			keep++;
		}
		n = keep > 0 ? keep : 1;
		sum = 0;
		for (int i = 0; i < n; i++)
			sum += s->prob[i];
	}
	double u = uniform(s->rng) * sum, acc = 0;
	for (int i = 0; i < n; i++) {
		acc += s->prob[i];
		if (u < acc)
			return c[i].id;
	}
	return c[n - 1].id;
}

int
qvl_repeat_check(const int32_t *ids, size_t n, int max_repeat)
{
	if (max_repeat < 2)
		return 0;
	for (size_t p = 1; p <= QVL_REPEAT_MAX_PERIOD; p++) {
		size_t reps = (size_t)max_repeat;
		size_t span = reps * p;
		if (span < QVL_REPEAT_MIN_SPAN)
			span = (QVL_REPEAT_MIN_SPAN + p - 1) / p * p;
		/* not monotonic in p (rounded up to whole cycles): every p gets its check */
		if (span > n)
			continue;
		size_t i;
		for (i = n - span + p; i < n; i++)
			if (ids[i] != ids[i - p])
				break;
		if (i == n)
			return (int)p;
	}
	return 0;
}
