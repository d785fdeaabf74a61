/* decode.h: what qvl-decode.c (options, input, prompt) and conversation.c (generation and
 * its output) share. */
#ifndef QVL_CMD_DECODE_H
#define QVL_CMD_DECODE_H

#include <stdint.h>
#include <stdio.h>

#include "../lib/config.h"
#include "../lib/generation.h"
#include "../lib/llm.h"
#include "../lib/pool.h"
#include "../lib/safetensors.h"
#include "../lib/sample.h"
#include "../lib/stream.h"
#include "../lib/tokenizer.h"

#define MAX_STOPS 16
/* Conversations --batch runs together at most: the decoding kernels read W once for up to 8
 * rows, and give each row the same bits as alone. */
#define QVL_BATCH_MAX 8

struct opts {
	const char *model, *prompt, *prompt_file, *system, *logits_path;
	const char *stops[MAX_STOPS];
	int nstops;
	long max_tokens, max_repeat, prefill_rows, batch;
	int json, each, text_only, ignore_eos, prompt_ids, verbose, threads;
	qvl_precision precision;
	qvl_sample_params sp;
	int seed_set;
};

/* One image or video of the input, in stream order. */
struct visual {
	qvl_record rec;
	float *embeds;          /* rows x hidden, float32 (rec's payload or a converted copy) */
	int64_t rows, grid[3];
	int video;
	float second_per_grid_t;
};

struct model {
	const char *dir;
	qvl_config cfg;
	qvl_weights *w;
	qvl_llm *llm;
	qvl_tokenizer *tok;
	qvl_generation_config gen;
	qvl_pool *pool;
};

/* The prompt's token ids for the given visuals (qvl-decode.c). */
void prompt_ids(const struct model *md, const struct opts *o, const char *prompt,
    struct visual **vis, int nvis, qvl_ids *ids);

/* The "source" of a visual's meta, or "image N". */
const char *source_of(const struct visual *v, int index, char *buf, size_t len);

/* One conversation about vis[0 .. nvis), its answer streamed to stdout (conversation.c). */
void converse(struct model *md, const struct opts *o, const char *prompt, struct visual **vis,
    int nvis, FILE *logits_f, long conv_index);

/* --each --batch N: one conversation per visual, up to N generating together. */
void converse_batch(struct model *md, const struct opts *o, const char *prompt,
    struct visual **list, int nvis, FILE *logits_f);

#endif
