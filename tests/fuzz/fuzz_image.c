/* libFuzzer target: PNG and JPEG decoding through qvl's wrappers, with a small pixel limit
 * so that hostile headers are refused before allocating. */
#include <stdlib.h>

#include "../../lib/image.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	qvl_image_limits lim = {.max_pixels = 1 << 22};
	qvl_image img;
	qvl_err err;
	size_t first;

	if (qvl_image_decode(data, size, "fuzz", &lim, &img, &err) == 0) {
		volatile unsigned sum = 0;
		for (size_t i = 0; i < (size_t)img.w * (size_t)img.h * 3; i += 97)
			sum += img.rgb[i];
		(void)sum;
		qvl_image_free(&img);
	}
	if (qvl_image_split(data, size, &first, &err) == 0 && first > size)
		abort();
	return 0;
}
