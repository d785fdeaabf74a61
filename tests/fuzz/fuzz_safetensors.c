/* libFuzzer target: the safetensors header parser and every tensor it accepts. */
#include <stdlib.h>

#include "../../lib/safetensors.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	qvl_err err;
	qvl_weights *w = qvl_weights_from_buffer(data, size, "fuzz", &err);
	volatile float sink = 0;

	if (w == NULL)
		return 0;
	for (size_t i = 0; i < qvl_weights_count(w); i++) {
		const qvl_tensor *t = qvl_weights_at(w, i);
		float v[16];
		size_t n = qvl_tensor_numel(t);
		/* touch the first and last elements: offsets must be inside the buffer */
		if (n > 0) {
			qvl_to_f32(t->dtype, t->data, 0, 1, v);
			qvl_to_f32(t->dtype, t->data, n - 1, 1, v + 1);
			sink += v[0] + v[1];
		}
		if (qvl_weights_find(w, qvl_weights_name(w, i)) != t)
			abort();
	}
	qvl_weights_close(w);
	(void)sink;
	return 0;
}
