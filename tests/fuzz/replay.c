/* Replays fuzz corpora without libFuzzer: runs the target on every file named on the
 * command line (built with the sanitizers by `make check`, so a corpus entry that once
 * crashed is a regression test). Prints "N passed, N failed": a crash aborts the run. */
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int
main(int argc, char **argv)
{
	int passed = 0, failed = 0;

	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		unsigned char *buf;
		long len;

		if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0) {
			printf("FAIL %s: cannot read\n", argv[i]);
			failed++;
			if (f)
				fclose(f);
			continue;
		}
		rewind(f);
		buf = malloc((size_t)len + 1);
		if (buf == NULL || fread(buf, 1, (size_t)len, f) != (size_t)len) {
			printf("FAIL %s: cannot read\n", argv[i]);
			failed++;
		} else {
			LLVMFuzzerTestOneInput(buf, (size_t)len);
			passed++;
		}
		free(buf);
		fclose(f);
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed != 0;
}
