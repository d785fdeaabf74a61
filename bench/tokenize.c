/* bench/tokenize: single-threaded tokenizer throughput, comparable to the reference anchor in
 * tests/data/tokenizer/bench.json (Rust tokenizers 0.22.2: 1.2 MB/s on a 5 MB mixed text).
 *
 *   build/bench/tokenize [MODEL_DIR [GOLDEN_JSONL [MBYTES]]]
 *
 * Builds a ~5 MB text from the golden texts (all scripts, code, numbers, emoji, special
 * tokens), shuffled and repeated with fresh digits as the reference's bench did, then reports
 * the load time of tokenizer.json, encoding of the whole text as one string, encoding line
 * by line, and decoding, each the median of 3 runs, in thread CPU time (QVL_BENCH_WALL=1: wall
 * time). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/tokenizer.h"

/* CPU time of this thread: the machines this runs on are shared, and wall time then measures
 * the neighbours too.  QVL_BENCH_WALL=1 measures wall time instead. */
static double
now(void)
{
	static int wall = -1;
	struct timespec ts;

	if (wall < 0)
		wall = getenv("QVL_BENCH_WALL") != NULL;
	clock_gettime(wall ? CLOCK_MONOTONIC : CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
median3(double t[3])
{
	qsort(t, 3, sizeof(double), cmp_double);
	return t[1];
}

static uint64_t
rng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

int
main(int argc, char **argv)
{
	const char *model = argc > 1 ? argv[1] : "tests/data/models/tiny";
	const char *golden = argc > 2 ? argv[2] : "tests/data/tokenizer/golden.jsonl";
	size_t target = (size_t)((argc > 3 ? atof(argv[3]) : 5.0) * 1e6);
	char **texts = NULL, *line = NULL, *text, *p;
	size_t *lens = NULL, ntexts = 0, cap = 0, len = 0, i, k, nlines = 0, *line_at;
	qvl_err err = { { 0 } };
	qvl_tokenizer *tok;
	qvl_ids ids = { 0 }, one = { 0 };
	double t[3], t0, load_ms;
	uint64_t seed = 0x9e3779b97f4a7c15ULL;
	json_t *j;
	FILE *f;
	int run;

	for (run = 0; run < 3; run++) {
		t0 = now();
		if ((tok = qvl_tokenizer_load(model, &err)) == NULL) {
			fprintf(stderr, "tokenize: %s\n", err.msg);
			return 1;
		}
		t[run] = now() - t0;
		if (run < 2)
			qvl_tokenizer_free(tok);
	}
	load_ms = median3(t) * 1e3;

	if ((f = fopen(golden, "r")) == NULL) {
		perror(golden);
		return 1;
	}
	while (getline(&line, &cap, f) > 0) {
		if ((j = json_loads(line, JSON_ALLOW_NUL, NULL)) == NULL)
			continue;
		texts = realloc(texts, (ntexts + 1) * sizeof(*texts));
		lens = realloc(lens, (ntexts + 1) * sizeof(*lens));
		lens[ntexts] = json_string_length(json_object_get(j, "text"));
		texts[ntexts] = malloc(lens[ntexts] + 1);
		memcpy(texts[ntexts], json_string_value(json_object_get(j, "text")),
		    lens[ntexts]);
		ntexts++;
		json_decref(j);
	}
	fclose(f);
	free(line);

	/* Texts in random order, one per line, digits refreshed so that numbers vary. */
	text = malloc(target + 65536);
	line_at = malloc((target / 2 + 2) * sizeof(*line_at));
	while (len < target) {
		i = rng(&seed) % ntexts;
		if (lens[i] == 0 || len + lens[i] + 1 > target)
			if (len + lens[i] + 1 > target && len > 0)
				break;
		line_at[nlines++] = len;
		memcpy(text + len, texts[i], lens[i]);
		for (p = text + len, k = 0; k < lens[i]; k++)
			if (p[k] >= '0' && p[k] <= '9')
				p[k] = (char)('0' + rng(&seed) % 10);
		len += lens[i];
		text[len++] = '\n';
	}
	line_at[nlines] = len;

	for (run = 0; run < 3; run++) {
		ids.n = 0;
		t0 = now();
		if (qvl_tokenizer_encode(tok, text, len, &ids, &err) < 0) {
			fprintf(stderr, "tokenize: %s\n", err.msg);
			return 1;
		}
		t[run] = now() - t0;
	}
	printf("%s time, one thread\n", getenv("QVL_BENCH_WALL") ? "wall" : "CPU");
	printf("load tokenizer.json: %.1f ms (median of 3)\n", load_ms);
	printf("encode whole text: %zu bytes, %zu tokens (%.2f bytes/token), %.3f s, "
	    "%.2f MB/s\n", len, ids.n, (double)len / (double)ids.n, median3(t),
	    (double)len / median3(t) / 1e6);

	for (run = 0; run < 3; run++) {
		t0 = now();
		for (i = 0; i < nlines; i++) {
			one.n = 0;
			if (qvl_tokenizer_encode(tok, text + line_at[i],
			    line_at[i + 1] - line_at[i] - 1, &one, &err) < 0) {
				fprintf(stderr, "tokenize: %s\n", err.msg);
				return 1;
			}
		}
		t[run] = now() - t0;
	}
	printf("encode line by line: %zu lines, %.3f s, %.2f MB/s\n", nlines, median3(t),
	    (double)len / median3(t) / 1e6);

	for (run = 0; run < 3; run++) {
		size_t out_len;
		char *out;

		t0 = now();
		out = qvl_tokenizer_decode(tok, ids.ids, ids.n, 0, &out_len, &err);
		t[run] = now() - t0;
		if (out == NULL) {
			fprintf(stderr, "tokenize: %s\n", err.msg);
			return 1;
		}
		free(out);
	}
	printf("decode: %.3f s, %.2f MB/s of output\n", median3(t), (double)len / median3(t) / 1e6);

	for (i = 0; i < ntexts; i++)
		free(texts[i]);
	free(texts);
	free(lens);
	free(text);
	free(line_at);
	qvl_ids_free(&ids);
	qvl_ids_free(&one);
	qvl_tokenizer_free(tok);
	return 0;
}
