/* qvl-tokenize: text to Qwen2.5-VL token ids and back, with the model directory's
 * tokenizer.json, exactly as Hugging Face tokenizers does it.  For users and for scripts:
 * --jsonl puts thousands of texts through one process. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../lib/tokenizer.h"
#include "util.h"

static void
usage(int status)
{
	fprintf(status ? stderr : stdout,
	    "usage: qvl-tokenize [-m DIR] [--jsonl] < TEXT\n"
	    "       qvl-tokenize [-m DIR] --decode [--skip-special] [--jsonl] < IDS\n");
	exit(status);
}

enum { OPT_DECODE = 256, OPT_JSONL, OPT_SKIP_SPECIAL };

static struct {
	int decode, jsonl, skip_special;
} opt;

/* All of stdin (text may hold NUL bytes, so it is counted, not terminated). */
static char *
read_all(size_t *len)
{
	size_t n = 0, cap = 1 << 16, r;
	char *p = malloc(cap), *q;

	if (p == NULL)
		die(EXIT_BADINPUT, "out of memory");
	while ((r = fread(p + n, 1, cap - n, stdin)) > 0) {
		n += r;
		if (n == cap) {
			if ((q = realloc(p, cap *= 2)) == NULL)
				die(EXIT_BADINPUT, "out of memory");
			p = q;
		}
	}
	if (ferror(stdin))
		die(EXIT_BADINPUT, "<stdin>: %s", strerror(errno));
	p[n] = '\0';
	*len = n;
	return p;
}

static void
print_ids(const qvl_ids *ids, const char *sep, const char *end)
{
	size_t i;

	for (i = 0; i < ids->n; i++)
		printf("%s%d", i ? sep : "", ids->ids[i]);
	fputs(end, stdout);
}

static void
encode(const qvl_tokenizer *tok, const char *text, size_t len, qvl_ids *ids, const char *where)
{
	qvl_err err;

	ids->n = 0;
	if (qvl_tokenizer_encode(tok, text, len, ids, &err) < 0)
		die(EXIT_BADINPUT, "%s: %s", where, err.msg);
}

static void
write_text(const qvl_tokenizer *tok, const qvl_ids *ids, int as_json)
{
	qvl_err err;
	json_t *j;
	size_t len;
	char *text, *dumped;

	if ((text = qvl_tokenizer_decode(tok, ids->ids, ids->n, opt.skip_special, &len, &err))
	    == NULL)
		die_err(EXIT_BADINPUT, &err);
	if (!as_json)
		fwrite(text, 1, len, stdout);
	else {
		if ((j = json_stringn(text, len)) == NULL ||
		    (dumped = json_dumps(j, JSON_ENCODE_ANY)) == NULL)
			die(EXIT_BADINPUT, "out of memory");
		puts(dumped);
		free(dumped);
		json_decref(j);
	}
	free(text);
}

static int32_t
parse_id(const char *s, const char *where)
{
	long v;
	char *end;

	errno = 0;
	v = strtol(s, &end, 10);
	if (end == s || *end != '\0' || errno != 0 || v < 0 || v > INT32_MAX)
		die(EXIT_BADINPUT, "%s: '%s' is not a token id", where, s);
	return (int32_t)v;
}

/* Plain --decode: whitespace-separated ids in, the text out. */
static void
decode_plain(const qvl_tokenizer *tok)
{
	qvl_ids ids = { 0 };
	qvl_err err;
	size_t len;
	char *all = read_all(&len), *word, *save;

	for (word = strtok_r(all, " \t\r\n\f\v", &save); word != NULL;
	    word = strtok_r(NULL, " \t\r\n\f\v", &save))
		if (qvl_ids_push(&ids, parse_id(word, "<stdin>"), &err) < 0)
			die_err(EXIT_BADINPUT, &err);
	write_text(tok, &ids, 0);
	qvl_ids_free(&ids);
	free(all);
}

static void
jsonl(const qvl_tokenizer *tok)
{
	qvl_ids ids = { 0 };
	qvl_err err;
	json_error_t jerr;
	json_t *j, *v;
	char *line = NULL, where[64];
	size_t cap = 0, i;
	ssize_t n;
	long lineno = 0;

	while ((n = getline(&line, &cap, stdin)) > 0) {
		snprintf(where, sizeof(where), "<stdin>:%ld", ++lineno);
		if (line[strspn(line, " \t\r\n")] == '\0')
			continue;	/* a blank line, as JSONL readers take it, is no value */
		j = json_loadb(line, (size_t)n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
		if (j == NULL)
			die(EXIT_BADINPUT, "%s: %s", where, jerr.text);
		if (!opt.decode) {
			if (!json_is_string(j))
				die(EXIT_BADINPUT, "%s: not a JSON string", where);
			encode(tok, json_string_value(j), json_string_length(j), &ids, where);
			putchar('[');
			print_ids(&ids, ",", "]\n");
		} else {
			if (!json_is_array(j))
				die(EXIT_BADINPUT, "%s: not a JSON array of token ids", where);
			ids.n = 0;
			json_array_foreach(j, i, v) {
				if (!json_is_integer(v) || json_integer_value(v) < 0 ||
				    json_integer_value(v) > INT32_MAX)
					die(EXIT_BADINPUT, "%s: item %zu is not a token id", where,
					    i + 1);
				if (qvl_ids_push(&ids, (int32_t)json_integer_value(v), &err) < 0)
					die_err(EXIT_BADINPUT, &err);
			}
			write_text(tok, &ids, 1);
		}
		/* the answer now, not when the buffer fills: a co-process waits for each line */
		cmd_flush_stdout();
		json_decref(j);
	}
	if (ferror(stdin))
		die(EXIT_BADINPUT, "<stdin>: %s", strerror(errno));
	free(line);
	qvl_ids_free(&ids);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "decode", no_argument, NULL, OPT_DECODE },
		{ "jsonl", no_argument, NULL, OPT_JSONL },
		{ "skip-special", no_argument, NULL, OPT_SKIP_SPECIAL },
		{ "model", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *model = NULL;
	qvl_tokenizer *tok;
	qvl_ids ids = { 0 };
	qvl_err err;
	size_t len;
	char *text;
	int c;

	cmd_init(argv[0]);
	while ((c = getopt_long(argc, argv, "hm:", longopts, NULL)) != -1) {
		switch (c) {
		case 'm':
			model = optarg;
			break;
		case OPT_DECODE:
			opt.decode = 1;
			break;
		case OPT_JSONL:
			opt.jsonl = 1;
			break;
		case OPT_SKIP_SPECIAL:
			opt.skip_special = 1;
			break;
		case 'h':
			usage(0);
			break;
		default:
			usage(EXIT_USAGE);
		}
	}
	if (optind != argc)
		usage(EXIT_USAGE);
	if (opt.skip_special && !opt.decode)
		die(EXIT_USAGE, "--skip-special goes with --decode");
	if ((tok = qvl_tokenizer_load(cmd_model_dir(model), &err)) == NULL)
		die_err(EXIT_BADINPUT, &err);
	if (opt.jsonl)
		jsonl(tok);
	else if (opt.decode)
		decode_plain(tok);
	else {
		text = read_all(&len);
		encode(tok, text, len, &ids, "<stdin>");
		print_ids(&ids, "\n", ids.n ? "\n" : "");
		free(text);
		qvl_ids_free(&ids);
	}
	qvl_tokenizer_free(tok);
	cmd_flush_stdout();
	return 0;
}
