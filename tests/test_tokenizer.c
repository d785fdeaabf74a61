/* test_tokenizer: the tokenizer against the goldens of the real Hugging Face tokenizers
 * library (tests/data/tokenizer, see ../shared/ref/tokenizer/README.md): every encode and
 * decode golden must match exactly, the streaming decoder must agree with a whole decode,
 * both BPE paths must agree, and NFC's fast path must be sound for every code point. */
#include <jansson.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <utf8proc.h>

#include "../lib/nfc.h"
#include "../lib/pretok.h"
#include "../lib/tokenizer.h"
#include "../lib/tokenizer_impl.h"
#include "test.h"

static const char *const model_dir = TEST_DATA "/models/tiny";

/* Calls fn on every line of a JSONL file, as a JSON object; returns the number of lines. */
static int
each_line(const char *path, void (*fn)(const qvl_tokenizer *, json_t *, int *), 
    const qvl_tokenizer *tok, int *bad)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	json_error_t jerr;
	json_t *j;
	int n = 0;

	if (f == NULL) {
		CHECK(0, "open %s", path);
		return 0;
	}
	while (getline(&line, &cap, f) > 0) {
		j = json_loads(line, JSON_ALLOW_NUL, &jerr);
		if (j == NULL) {
			CHECK(0, "%s:%d: %s", path, n + 1, jerr.text);
			continue;
		}
		fn(tok, j, bad);
		json_decref(j);
		n++;
	}
	free(line);
	fclose(f);
	return n;
}

static int
same_ids(const qvl_ids *got, json_t *want)
{
	size_t i;

	if (got->n != json_array_size(want))
		return 0;
	for (i = 0; i < got->n; i++)
		if (got->ids[i] != json_integer_value(json_array_get(want, i)))
			return 0;
	return 1;
}

static void
print_ids(const char *what, const qvl_ids *ids)
{
	size_t i;

	printf("  %s:", what);
	for (i = 0; i < ids->n && i < 40; i++)
		printf(" %d", ids->ids[i]);
	printf("%s\n", ids->n > 40 ? " ..." : "");
}

static void
encode_one(const qvl_tokenizer *tok, json_t *j, int *bad)
{
	json_t *text = json_object_get(j, "text"), *want = json_object_get(j, "ids");
	qvl_ids got = { 0 }, w = { 0 };
	qvl_err err = { { 0 } };
	size_t i;

	if (qvl_tokenizer_encode(tok, json_string_value(text), json_string_length(text), &got,
	    &err) < 0 || !same_ids(&got, want)) {
		if (++*bad <= 10) {
			char *s = json_dumps(text, JSON_ENCODE_ANY | JSON_ENSURE_ASCII);

			printf("encode mismatch (%s) %s\n",
			    json_string_value(json_object_get(j, "cat")), err.msg);
			printf("  text: %.300s\n", s);
			free(s);
			for (i = 0; i < json_array_size(want); i++)
				qvl_ids_push(&w, (int32_t)json_integer_value(json_array_get(want, i)),
				    NULL);
			print_ids("want", &w);
			print_ids("got ", &got);
		}
	}
	qvl_ids_free(&got);
	qvl_ids_free(&w);
}

/* The streaming decoder, fed one id at a time, must give what a whole decode gives. */
static char *
stream_decode(const qvl_tokenizer *tok, const int32_t *ids, size_t n, int skip, size_t *len)
{
	size_t cap = 64 + qvl_tokenizer_max_token_bytes(tok), o = 0, i, total = 16;
	char *out, *chunk = malloc(cap);
	qvl_detok d;

	for (i = 0; i < n; i++)
		total += 3 * (qvl_tokenizer_max_token_bytes(tok) + 8);
	out = malloc(total);
	qvl_detok_init(&d, tok, skip);
	for (i = 0; i < n; i++) {
		size_t k = qvl_detok_push(&d, ids[i], chunk, cap);

		memcpy(out + o, chunk, k);
		o += k;
	}
	o += qvl_detok_flush(&d, out + o, cap);
	out[o] = '\0';
	free(chunk);
	*len = o;
	return out;
}

static void
decode_one(const qvl_tokenizer *tok, json_t *j, int *bad)
{
	json_t *ids = json_object_get(j, "ids"), *want;
	const char *keys[2] = { "text", "text_skip_special" };
	int32_t *v = malloc((json_array_size(ids) + 1) * sizeof(*v));
	size_t i, n = json_array_size(ids), len, slen;
	char *got, *streamed;
	int skip;

	for (i = 0; i < n; i++)
		v[i] = (int32_t)json_integer_value(json_array_get(ids, i));
	for (skip = 0; skip < 2; skip++) {
		want = json_object_get(j, keys[skip]);
		got = qvl_tokenizer_decode(tok, v, n, skip, &len, NULL);
		streamed = stream_decode(tok, v, n, skip, &slen);
		if (got == NULL || len != json_string_length(want) ||
		    memcmp(got, json_string_value(want), len) != 0 || slen != len ||
		    memcmp(streamed, got, len) != 0) {
			if (++*bad <= 10)
				printf("decode mismatch (%s, skip %d): want %.100s got %.100s "
				    "streamed %.100s\n",
				    json_string_value(json_object_get(j, "cat")), skip,
				    json_string_value(want), got, streamed);
		}
		free(got);
		free(streamed);
	}
	free(v);
}

/* Both BPE paths (scan and heap) on every piece of the encode goldens. */
static void
bpe_paths_one(const qvl_tokenizer *tok, json_t *j, int *bad)
{
	json_t *text = json_object_get(j, "text");
	const unsigned char *s = (const unsigned char *)json_string_value(text);
	size_t n = json_string_length(text), pos, end, i, m1, m2;
	int32_t *a, *b, *scratch;

	if (qvl_utf8_check(s, n) != n)
		return;
	a = malloc((n + 1) * sizeof(*a));
	b = malloc((n + 1) * sizeof(*b));
	scratch = malloc((8 * n + 8) * sizeof(*scratch));
	for (pos = 0; pos < n; pos = end) {
		end = qvl_pretok_piece(s, n, pos);
		for (i = pos; i < end; i++)
			a[i - pos] = b[i - pos] = tok->byte_id[s[i]];
		m1 = qvl_bpe_apply(&tok->bpe, a, end - pos, scratch, 2);
		m2 = qvl_bpe_apply(&tok->bpe, b, end - pos, scratch, (size_t)-1);
		if (m1 != m2 || memcmp(a, b, m1 * sizeof(*a)) != 0)
			++*bad;
	}
	free(a);
	free(b);
	free(scratch);
}

static void
test_goldens(const qvl_tokenizer *tok)
{
	int bad = 0, n;

	n = each_line(TEST_DATA "/tokenizer/golden.jsonl", encode_one, tok, &bad);
	CHECK(n == 3057 && bad == 0, "encode goldens: %d of %d differ", bad, n);
	bad = 0;
	n = each_line(TEST_DATA "/tokenizer/unicode_golden.jsonl", encode_one, tok, &bad);
	CHECK(n == 361 && bad == 0, "Unicode-version goldens: %d of %d differ", bad, n);
	bad = 0;
	n = each_line(TEST_DATA "/tokenizer/decode_golden.jsonl", decode_one, tok, &bad);
	CHECK(n == 1989 && bad == 0, "decode goldens (whole and streamed): %d of %d differ", bad,
	    n);
	bad = 0;
	n = each_line(TEST_DATA "/tokenizer/golden.jsonl", bpe_paths_one, tok, &bad);
	CHECK(bad == 0, "heap and scan BPE: %d pieces differ", bad);
}

static int
encodes_to(const qvl_tokenizer *tok, const char *text, size_t len, const int32_t *want,
    size_t n)
{
	qvl_ids got = { 0 };
	int ok;

	ok = qvl_tokenizer_encode(tok, text, len, &got, NULL) == 0 && got.n == n &&
	    (n == 0 || memcmp(got.ids, want, n * sizeof(*want)) == 0);
	qvl_ids_free(&got);
	return ok;
}

static void
test_cases(const qvl_tokenizer *tok)
{
	static const int32_t e1[] = { 68, 151645, 53839 }, e2[] = { 6, 144815, 83 },
	    e3[] = { 40, 6, 4086 }, e4[] = { 64, 220, 293 }, e5[] = { 2303, 220, 856 },
	    e6[] = { 6023, 256 }, e7[] = { 16, 17, 18, 19, 20 }, e8[] = { 13708, 766, 29 };
	qvl_ids ids = { 0 };
	qvl_err err = { { 0 } };
	char *long_text;
	size_t i, n = 200000;

	CHECK(encodes_to(tok, "e<|im_end|>\xcc\x81", 13, e1, 3), "NFC per segment");
	CHECK(encodes_to(tok, "'\xc5\xbft", 4, e2, 3), "'\\u017f folds to 's");
	CHECK(encodes_to(tok, "I'LL", 4, e3, 3), "I'LL");
	CHECK(encodes_to(tok, "a  b", 4, e4, 3), "a  b");
	CHECK(encodes_to(tok, "  \n  x", 6, e5, 3), "\\s*[\\r\\n]+ then \\s+(?!\\S)");
	CHECK(encodes_to(tok, "hi  ", 4, e6, 2), "trailing white space");
	CHECK(encodes_to(tok, "12345", 5, e7, 5), "one digit per piece");
	CHECK(encodes_to(tok, "<think>", 7, e8, 3), "<think> is text");
	CHECK(encodes_to(tok, "", 0, NULL, 0), "empty text");

	CHECK(qvl_tokenizer_encode(tok, "ab\xc3(", 4, &ids, &err) < 0 &&
	    strstr(err.msg, "byte offset 2") != NULL, "invalid UTF-8 named: %s", err.msg);
	CHECK(qvl_tokenizer_encode(tok, "\xed\xa0\x80", 3, &ids, &err) < 0,
	    "surrogate rejected");
	CHECK(qvl_tokenizer_encode(tok, "\xc0\xaf", 2, &ids, &err) < 0, "overlong rejected");

	/* A long word goes through the heap path; a long run of one letter must stay fast. */
	long_text = malloc(n);
	for (i = 0; i < n; i++)
		long_text[i] = 'a' + (char)(i * 7 % 26);
	CHECK(qvl_tokenizer_encode(tok, long_text, n, &ids, &err) == 0 && ids.n > 0,
	    "200 kB word: %zu ids", ids.n);
	memset(long_text, ' ', n);
	ids.n = 0;
	CHECK(qvl_tokenizer_encode(tok, long_text, n, &ids, &err) == 0 && ids.n > 0,
	    "200 kB of spaces: %zu ids", ids.n);
	free(long_text);
	qvl_ids_free(&ids);

	CHECK(qvl_tokenizer_token_id(tok, "<|im_end|>") == 151645, "<|im_end|> id");
	CHECK(qvl_tokenizer_token_id(tok, "<|image_pad|>") == 151655, "<|image_pad|> id");
	CHECK(qvl_tokenizer_token_id(tok, "!") == 0, "! id");
	CHECK(qvl_tokenizer_token_id(tok, "\xc4\xa0the") == 279, "\\u0120the id: %d",
	    qvl_tokenizer_token_id(tok, "\xc4\xa0the"));
	CHECK(qvl_tokenizer_token_id(tok, " the") == -1, "raw space is not in the alphabet");
	CHECK(qvl_tokenizer_token_id(tok, "<|nope|>") == -1, "unknown token");
	CHECK(qvl_tokenizer_vocab_size(tok) == 151665, "vocab size %d",
	    qvl_tokenizer_vocab_size(tok));
	CHECK(qvl_tokenizer_is_special(tok, 151643) && qvl_tokenizer_is_special(tok, 151656) &&
	    !qvl_tokenizer_is_special(tok, 151657) && !qvl_tokenizer_is_special(tok, 100) &&
	    !qvl_tokenizer_is_special(tok, 151700) && !qvl_tokenizer_is_special(tok, -1),
	    "special flags");
	CHECK(qvl_tokenizer_token_str(tok, 151657) != NULL &&
	    strcmp(qvl_tokenizer_token_str(tok, 151657), "<tool_call>") == 0, "token_str");
	CHECK(qvl_tokenizer_token_str(tok, 151665) == NULL, "no token 151665");
}

/* A small output buffer must never be overrun. */
static void
test_detok_small(const qvl_tokenizer *tok)
{
	static const int32_t ids[] = { 160, 151645, 116, 255, 105043 };
	char out[8];
	qvl_detok d;
	size_t i, k, total = 0;

	qvl_detok_init(&d, tok, 1);
	for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		k = qvl_detok_push(&d, ids[i], out, sizeof(out));
		CHECK(k <= sizeof(out), "detok push within cap");
		total += k;
	}
	k = qvl_detok_flush(&d, out, sizeof(out));
	CHECK(k <= sizeof(out), "detok flush within cap");
	CHECK(total > 0, "split character repaired across a skipped special");
}

static int
nfc_keeps(uint32_t cp)
{
	unsigned char in[8], *out = NULL;
	size_t n = (size_t)utf8proc_encode_char((utf8proc_int32_t)cp, in), m;
	int same;

	same = qvl_nfc(in, n, &out, &m, NULL) == 0 && m == n && memcmp(in, out, n) == 0;
	free(out);
	return same;
}

/* nfc_inert(c) must imply that NFC never touches c: it has no canonical decomposition and is
 * not a non-first character of the canonical decomposition of a primary composite (so it
 * never composes as a second character); the composites the reference does not know (newer
 * than Unicode 9.0) aside. */
static void
test_nfc_inert(void)
{
	static unsigned char second[0x110000 / 8];
	utf8proc_int32_t dec[32];
	utf8proc_ssize_t n, i;
	int boundclass, bad = 0;
	uint32_t cp;

	memset(second, 0, sizeof(second));
	for (cp = 0; cp < 0x110000; cp++) {
		if (cp >= 0xd800 && cp < 0xe000)
			continue;
		boundclass = 0;
		n = utf8proc_decompose_char((utf8proc_int32_t)cp, dec, 32, UTF8PROC_DECOMPOSE,
		    &boundclass);
		if (n < 1)
			continue;
		if ((n != 1 || dec[0] != (utf8proc_int32_t)cp) && qvl_nfc_inert(cp) &&
		    !nfc_keeps(cp)) {
			if (++bad < 5)
				printf("U+%04X changes under NFC but is called inert\n", cp);
		}
		if (utf8proc_get_property((utf8proc_int32_t)cp)->combining_class != 0 &&
		    qvl_nfc_inert(cp) && !qvl_nfc_newer_than_9(cp))
			if (++bad < 5)
				printf("U+%04X has a class but is called inert\n", cp);
		/* Composition exclusions never recompose, so their parts may be inert. */
		if (utf8proc_get_property((utf8proc_int32_t)cp)->comp_exclusion ||
		    qvl_nfc_newer_than_9(cp))
			continue;
		for (i = 1; i < n; i++)
			second[dec[i] >> 3] |= (unsigned char)(1 << (dec[i] & 7));
	}
	for (cp = 0; cp < 0x110000; cp++)
		if ((second[cp >> 3] >> (cp & 7) & 1) && qvl_nfc_inert(cp))
			if (++bad < 10)
				printf("U+%04X composes as a second character but is called inert\n",
				    cp);
	CHECK(bad == 0, "NFC fast path sound for all code points (%d wrong)", bad);
}

/* Where the reference's Unicode 9.0 and utf8proc's data agree (no character newer than 9.0),
 * qvl_nfc must give what utf8proc's NFC gives: random texts of marks, starters that compose,
 * Hangul and characters that decompose, some with runs of marks long enough for the counting
 * sort.  U+11A7 is left out: utf8proc composes LV + U+11A7 into LV, dropping it, where the
 * reference and UAX #15 keep it (T jamo start at U+11A8). */
static void
test_nfc_utf8proc(void)
{
	static const uint32_t base[] = { 'a', 'e', 'A', 0x3b1, 0x1100, 0x1161, 0x11a8, 0xac00,
	    0x0b47, 0x0dd9, 0x1025, 0x0f71 };
	uint32_t *alpha, *marks, cp, x = 12345;
	unsigned char text[64 * 4], *got;
	utf8proc_uint8_t *want;
	utf8proc_ssize_t wn;
	size_t nalpha = 0, nmarks = 0, len, gn, i, k;
	int t, bad = 0, long_run;

	alpha = malloc(0x110000 / 4 * sizeof(*alpha));
	marks = malloc(0x110000 / 4 * sizeof(*marks));
	for (i = 0; i < sizeof(base) / sizeof(base[0]); i++)
		alpha[nalpha++] = base[i];
	for (cp = 0xc0; cp < 0x30000; cp++) {
		if (qvl_nfc_inert(cp) || qvl_nfc_newer_than_9(cp) ||
		    (cp >= 0xac00 && cp <= 0xd7a3) || (cp >= 0xd800 && cp <= 0xdfff) ||
		    cp == 0x11a7)
			continue;
		alpha[nalpha++] = cp;
		if (utf8proc_get_property((utf8proc_int32_t)cp)->combining_class != 0)
			marks[nmarks++] = cp;
	}
	for (t = 0; t < 30000; t++) {
		len = 0;
		long_run = t % 10 == 0;
		k = long_run ? 20 + (size_t)(t / 10 % 40) : 1 + (size_t)(t % 9);
		for (i = 0; i < k; i++) {
			x = x * 1103515245 + 12345;
			if ((x >> 8) % (long_run ? 32 : 4) == 0)
				cp = base[(x >> 12) % (sizeof(base) / sizeof(base[0]))];
			else if (long_run)
				cp = marks[(x >> 10) % nmarks];
			else
				cp = alpha[(x >> 10) % nalpha];
			len += (size_t)utf8proc_encode_char((utf8proc_int32_t)cp, text + len);
		}
		wn = utf8proc_map(text, (utf8proc_ssize_t)len, &want, UTF8PROC_STABLE |
		    UTF8PROC_COMPOSE);
		if (qvl_nfc(text, len, &got, &gn, NULL) < 0 || wn < 0 || gn != (size_t)wn ||
		    memcmp(got, want, gn) != 0)
			if (++bad < 5)
				printf("NFC differs from utf8proc's on %.*s\n", (int)len, text);
		free(want);
		free(got);
	}
	free(alpha);
	free(marks);
	CHECK(bad == 0, "NFC agrees with utf8proc's below Unicode 10 (%d of 30000 differ)", bad);
}

/* The tables of characters newer than the reference's data cover utf8proc's Unicode version
 * only up to 17.0 (NFC) and 16.0 (letters): newer data would make new marks reorder and new
 * letters split as the reference does not, so an upgrade must come with longer tables. */
static void
test_unicode_version(void)
{
	int major = atoi(utf8proc_unicode_version());

	CHECK(major >= 15 && major <= 16, "utf8proc's Unicode %s is one the tables cover",
	    utf8proc_unicode_version());
}

/* NFC must take time linear in a run of marks (utf8proc's ordering took 39 s for 160 kB). */
static void
test_nfc_time(const qvl_tokenizer *tok)
{
	static const char *const units[] = { "\xcc\xa3\xcc\x81", "\xe0\xbd\xb3" };
	struct timespec t0, t1;
	qvl_ids ids = { 0 };
	size_t n = 160000, i, k;
	char *text = malloc(n + 1);
	double s;
	int u;

	for (u = 0; u < 2; u++) {
		k = strlen(units[u]);
		text[0] = 'e';
		for (i = 1; i + k <= n; i += k)
			memcpy(text + i, units[u], k);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		ids.n = 0;
		CHECK(qvl_tokenizer_encode(tok, text, i, &ids, NULL) == 0, "encode marks");
		clock_gettime(CLOCK_MONOTONIC, &t1);
		s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
		CHECK(s < 3, "160 kB of marks (%d): %.2f s", u, s);
	}
	qvl_ids_free(&ids);
	free(text);
}

/* A cut-short or damaged tokenizer.json fails with a message, never a crash. */
static void
test_bad_files(void)
{
	static const long cuts[] = { 0, 1, 100, 3000, 3000000, -10 };
	const char *src = TEST_DATA "/models/tiny/tokenizer.json";
	char path[] = "/tmp/qvl-test-tok.XXXXXX";
	qvl_err err = { { 0 } };
	qvl_tokenizer *tok;
	FILE *in = fopen(src, "rb"), *out;
	char *data;
	long size, n;
	size_t i;
	int fd;

	if (in == NULL || (fd = mkstemp(path)) < 0) {
		CHECK(0, "temp file");
		return;
	}
	close(fd);
	fseek(in, 0, SEEK_END);
	size = ftell(in);
	rewind(in);
	data = malloc((size_t)size);
	CHECK(fread(data, 1, (size_t)size, in) == (size_t)size, "read tokenizer.json");
	fclose(in);
	for (i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		n = cuts[i] < 0 ? size + cuts[i] : cuts[i];
		out = fopen(path, "wb");
		fwrite(data, 1, (size_t)n, out);
		fclose(out);
		tok = qvl_tokenizer_load_file(path, &err);
		CHECK(tok == NULL && err.msg[0] != '\0', "cut at %ld bytes: %s", n, err.msg);
		qvl_tokenizer_free(tok);
	}
	/* An id far out of range must not allocate a table for it. */
	out = fopen(path, "wb");
	fputs("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 99999999999}, "
	    "\"merges\": []}}", out);
	fclose(out);
	tok = qvl_tokenizer_load_file(path, &err);
	CHECK(tok == NULL && strstr(err.msg, "out of range") != NULL, "huge id: %s", err.msg);
	qvl_tokenizer_free(tok);
	unlink(path);
	free(data);
}

int
main(int argc, char **argv)
{
	qvl_tokenizer *tok;
	qvl_err err = { { 0 } };

	TEST_INIT(argc, argv);
	tok = qvl_tokenizer_load(model_dir, &err);
	CHECK(tok != NULL, "load: %s", err.msg);
	if (tok == NULL)
		return TEST_DONE();
	test_goldens(tok);
	test_cases(tok);
	test_detok_small(tok);
	test_nfc_inert();
	test_nfc_utf8proc();
	test_nfc_time(tok);
	test_unicode_version();
	test_bad_files();
	/* the six grounding markers, and no other id, survive qvl-decode's special-token filter */
	int grounding = 0;
	for (int32_t id = 0; id < qvl_tokenizer_vocab_size(tok); id++)
		grounding += qvl_tokenizer_is_grounding(tok, id);
	CHECK(grounding == 6 && qvl_tokenizer_is_grounding(tok, 151648) &&
	    !qvl_tokenizer_is_grounding(tok, 151645), "grounding markers: %d", grounding);
	qvl_tokenizer_free(tok);
	CHECK(qvl_tokenizer_load("/nonexistent", &err) == NULL && strstr(err.msg,
	    "/nonexistent/tokenizer.json") != NULL, "missing file: %s", err.msg);
	return TEST_DONE();
}
