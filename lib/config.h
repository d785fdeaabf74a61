/* config.h: the parts of a Qwen2.5-VL config.json the programs need, validated. */
#ifndef QVL_CONFIG_H
#define QVL_CONFIG_H

#include "err.h"

#define QVL_MAX_FULLATT 64

typedef struct qvl_vision_config {
	int depth;               /* transformer blocks (32 in the real models) */
	int hidden_size;         /* 1280 */
	int intermediate_size;   /* MLP width (3420) */
	int num_heads;           /* 16 */
	int head_dim;            /* hidden_size / num_heads */
	int out_hidden_size;     /* merger output = the LLM's hidden size */
	int in_channels;         /* 3 */
	int patch_size;          /* 14 */
	int temporal_patch_size; /* 2 */
	int spatial_merge_size;  /* 2 */
	int window_size;         /* 112 pixels */
	int fullatt_block_indexes[QVL_MAX_FULLATT];
	int n_fullatt;
	double tokens_per_second; /* 2 in the real configs */
	int patch_dim;           /* in_channels * temporal_patch_size * patch_size^2 = 1176 */
} qvl_vision_config;

typedef struct qvl_text_config {
	int hidden_size;
	int intermediate_size;
	int num_hidden_layers;
	int num_attention_heads;
	int num_key_value_heads;
	int head_dim;            /* hidden_size / num_attention_heads */
	int vocab_size;
	int max_position_embeddings;
	double rms_norm_eps;
	double rope_theta;
	int mrope_section[3];    /* sums to head_dim / 2 */
	char rope_type[80];      /* "" for M-RoPE, else where the config asks for another
	                          * rotary type, and which: rope_scaling.type is "yarn" */
	int tie_word_embeddings;
	int bos_token_id, eos_token_id;
	int image_token_id, video_token_id, vision_start_token_id, vision_end_token_id;
} qvl_text_config;

typedef struct qvl_config {
	qvl_text_config text;
	qvl_vision_config vision;
	int has_vision;
} qvl_config;

/* Reads DIR/config.json. */
int qvl_config_load(const char *model_dir, qvl_config *cfg, qvl_err *err);
/* Parses config.json text (len bytes). */
int qvl_config_parse(const char *json_text, size_t len, qvl_config *cfg, qvl_err *err);
/* Reads a whole small file (config, JSON) into a NUL-terminated malloc'd buffer. */
char *qvl_read_file(const char *path, size_t *len, size_t max_len, qvl_err *err);

#endif
