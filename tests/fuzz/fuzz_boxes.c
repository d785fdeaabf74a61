/* libFuzzer target: qvl-boxes' parsers (JSON, QwenVL HTML, Qwen2-VL tokens, Qwen-VL tags)
 * on arbitrary model output, then image assignment and output formatting. */
#include <stdio.h>
#include <stdlib.h>

#include "../../lib/boxes.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	qvl_box_list list = {0};
	qvl_err err;
	FILE *out;

	if (qvl_boxes_parse((const char *)data, size, &list, &err) < 0)
		return 0;
	qvl_boxes_assign(&list, (const char *)data, size, 2, 0);
	out = fopen("/dev/null", "w");
	for (size_t i = 0; out && i < list.n; i++) {
		qvl_box_write_json(out, &list.v[i], "fuzz.png", &err);
		qvl_box_write_tsv(out, &list.v[i], "fuzz.png", &err);
	}
	if (out)
		fclose(out);
	qvl_boxes_free(&list);
	return 0;
}
