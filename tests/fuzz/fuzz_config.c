/* libFuzzer target: config.json parsing; an accepted config must be self-consistent. */
#include <stdlib.h>

#include "../../lib/config.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	qvl_config cfg;
	qvl_err err;

	if (qvl_config_parse((const char *)data, size, &cfg, &err) < 0)
		return 0;
	const qvl_text_config *t = &cfg.text;
	if (t->head_dim * t->num_attention_heads != t->hidden_size ||
	    t->num_attention_heads % t->num_key_value_heads != 0 ||
	    t->mrope_section[0] + t->mrope_section[1] + t->mrope_section[2] != t->head_dim / 2)
		abort();
	if (cfg.has_vision && cfg.vision.head_dim * cfg.vision.num_heads != cfg.vision.hidden_size)
		abort();
	return 0;
}
