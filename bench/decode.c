/* decode: bytes of weights one decoded token reads for a model (the numerator of the
 * memory-bandwidth bound of qvl-decode), and the KV-cache bytes per token.
 *
 * usage: decode MODEL_DIR
 * prints: decode_bytes bytes_per_token=6171820032 kv_bytes_per_token=73728 */
#include <stdio.h>

#include "../lib/config.h"
#include "../lib/llm.h"
#include "../lib/safetensors.h"

int
main(int argc, char **argv)
{
	qvl_config cfg;
	qvl_weights *w;
	qvl_llm *m;
	qvl_err err;

	if (argc != 2) {
		fprintf(stderr, "usage: decode MODEL_DIR\n");
		return 2;
	}
	if (qvl_config_load(argv[1], &cfg, &err) < 0 || (w = qvl_weights_open(argv[1], &err)) ==
	    NULL || (m = qvl_llm_new(w, &cfg, &err)) == NULL) {
		fprintf(stderr, "decode: %s\n", err.msg);
		return 1;
	}
	printf("decode_bytes bytes_per_token=%zu kv_bytes_per_token=%zu\n",
	    qvl_llm_token_bytes(m), (size_t)cfg.text.num_hidden_layers * 2 *
	    cfg.text.num_key_value_heads * cfg.text.head_dim * sizeof(float));
	qvl_llm_free(m);
	qvl_weights_close(w);
	return 0;
}
