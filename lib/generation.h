/* generation.h: the parts of a model's generation_config.json qvl-decode uses. */
#ifndef QVL_GENERATION_H
#define QVL_GENERATION_H

#include <stdint.h>

#include "err.h"

#define QVL_MAX_STOP_IDS 16

typedef struct qvl_generation_config {
	int32_t eos_ids[QVL_MAX_STOP_IDS]; /* generation stops on any of these */
	int n_eos;      /* 0 when the file lists none: the caller decides (qvl-decode) */
	double temperature, top_p, repetition_penalty;
	int top_k;
	int do_sample;
	int found;      /* 0: the file was missing and these are the reference defaults */
} qvl_generation_config;

/* The Qwen2.5-VL checkpoints' values: eos [151645 <|im_end|>, 151643 <|endoftext|>],
 * temperature 1e-6, repetition_penalty 1.05, do_sample true. */
void qvl_generation_defaults(qvl_generation_config *g);

/* Reads DIR/generation_config.json; a missing file gives the defaults with found = 0 (not an
 * error); a file that does not parse, or a bad eos_token_id, is an error. */
int qvl_generation_load(const char *model_dir, qvl_generation_config *g, qvl_err *err);
/* Parses the JSON text of a generation_config.json (messages without the file's name). */
int qvl_generation_parse(const char *json_text, size_t len, qvl_generation_config *g,
    qvl_err *err);

#endif
