/* libFuzzer target: the real Qwen tokenizer on arbitrary bytes.  Valid UTF-8 must encode,
 * and decoding its ids must give back the NFC text's bytes; the streaming decoder must give
 * the same bytes as the whole decode. */
#include <stdlib.h>
#include <string.h>

#include "../../lib/tokenizer.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static qvl_tokenizer *tok;

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	qvl_err err;
	qvl_ids ids = {0};

	if (tok == NULL && (tok = qvl_tokenizer_load("tests/data/models/tiny", &err)) == NULL)
		abort(); /* run from the repository root */
	if (qvl_tokenizer_encode(tok, (const char *)data, size, &ids, &err) == 0) {
		size_t len, slen = 0;
		char *whole = qvl_tokenizer_decode(tok, ids.ids, ids.n, 0, &len, &err);
		char *streamed = malloc(size * 4 + 1024 + ids.n * 64);
		qvl_detok d;
		qvl_detok_init(&d, tok, 0);
		for (size_t i = 0; i < ids.n; i++)
			slen += qvl_detok_push(&d, ids.ids[i], streamed + slen, 64 + 256);
		slen += qvl_detok_flush(&d, streamed + slen, 64 + 256);
		if (whole == NULL || slen != len || memcmp(whole, streamed, len) != 0)
			abort();
		free(whole);
		free(streamed);
	}
	qvl_ids_free(&ids);
	return 0;
}
