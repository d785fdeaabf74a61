/* libFuzzer target: loading tokenizer.json, then encoding and decoding with what loaded. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../lib/tokenizer.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	static const char text[] = "Hello, world! 办公室 12 <|im_start|>";
	char path[64];
	qvl_err err;
	qvl_ids ids = {0};
	int fd = memfd_create("tokenizer.json", 0);

	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	qvl_tokenizer *tok = qvl_tokenizer_load_file(path, &err);
	close(fd);
	if (tok == NULL)
		return 0;
	if (qvl_tokenizer_encode(tok, text, sizeof text - 1, &ids, &err) == 0) {
		size_t len;
		char *s = qvl_tokenizer_decode(tok, ids.ids, ids.n, 0, &len, &err);
		free(s);
	}
	qvl_ids_free(&ids);
	qvl_tokenizer_free(tok);
	return 0;
}
