/* libFuzzer target: the stream reader on arbitrary bytes, then a write/read round trip of
 * whatever it accepted. */
#include <stdio.h>
#include <stdlib.h>

#include "../../lib/stream.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	FILE *f = fmemopen((void *)data, size, "rb");
	qvl_reader *r;
	qvl_record rec;
	qvl_err err;
	char *out = NULL;
	size_t outlen = 0;
	FILE *w;

	if (f == NULL)
		return 0;
	r = qvl_reader_new(f, "fuzz");
	w = open_memstream(&out, &outlen);
	while (qvl_reader_next(r, &rec, &err) == 1) {
		qvl_write_record(w, &rec, &err);
		qvl_record_free(&rec);
	}
	qvl_reader_free(r);
	fclose(f);
	fclose(w);
	/* what was written must read back */
	f = fmemopen(out, outlen ? outlen : 1, "rb");
	if (f != NULL && outlen > 0) {
		r = qvl_reader_new(f, "again");
		int rc;
		while ((rc = qvl_reader_next(r, &rec, &err)) == 1)
			qvl_record_free(&rec);
		if (rc < 0)
			abort();
		qvl_reader_free(r);
	}
	if (f)
		fclose(f);
	free(out);
	return 0;
}
