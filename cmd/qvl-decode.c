/* qvl-decode: the language model: image embeddings and a prompt in, the answer out. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "../lib/chat.h"
#include "../lib/pretok.h"
#include "decode.h"
#include "util.h"

#define DEFAULT_MAX_TOKENS 2048
#define DEFAULT_MAX_REPEAT 16

static void
usage(FILE *f, int status)
{
	fprintf(f,
	    "usage: qvl-decode [-m MODEL] (-p TEXT | -f FILE) [--system TEXT] [--json]\n"
	    "                  [--each] [--batch N] [--max-tokens N] [--temperature T]\n"
	    "                  [--top-p P] [--top-k K] [--repetition-penalty R] [--seed N]\n"
	    "                  [--stop STRING]...\n"
	    "                  [--max-repeat N] [--ignore-eos] [--logits FILE] [--text-only]\n"
	    "                  [--prompt-ids] [-t|--threads N] [--precision f32|bf16]\n"
	    "                  [--prefill-rows N] [-v] [FILE]\n"
	    "Reads image_embeds records (stdin or FILE), builds the chat prompt with them and\n"
	    "streams the model's answer to stdout.  `<image>` in the prompt places the next\n"
	    "image or video; without markers they go before the text.  See qvl-decode(1).\n");
	exit(status);
}

static char *
read_prompt_file(const char *path)
{
	FILE *f = in_open(path);
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	size_t n;

	if (buf == NULL)
		die(EXIT_BADINPUT, "out of memory");
	while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
		len += n;
		if (cap - len - 1 == 0) {
			if (cap > (64u << 20))
				die(EXIT_BADINPUT, "%s: prompt file over 64 MiB", in_name(path));
			if ((buf = realloc(buf, cap *= 2)) == NULL)
				die(EXIT_BADINPUT, "out of memory");
		}
	}
	if (ferror(f))
		die(EXIT_BADINPUT, "%s: %s", in_name(path), strerror(errno));
	if (f != stdin)
		fclose(f);
	buf[len] = '\0';
	if (strlen(buf) != len)
		die(EXIT_BADINPUT, "%s: prompt file contains a NUL byte", in_name(path));
	return buf;
}

/* Dies unless text is valid UTF-8 without the tokens that stand for image and video
 * embeddings, naming where it came from and the offset in it.  (A pad token in the text
 * would be counted as one of an image's and fail far from its cause.) */
static void
check_prompt_text(const char *source, const char *text)
{
	static const char *const pads[] = { "<|image_pad|>", "<|video_pad|>" };
	size_t len = strlen(text), bad = qvl_utf8_check((const unsigned char *)text, len);
	const char *at;

	if (bad != len)
		die(EXIT_BADINPUT, "%s: invalid UTF-8 at byte offset %zu", source, bad);
	for (size_t i = 0; i < sizeof pads / sizeof pads[0]; i++)
		if ((at = strstr(text, pads[i])) != NULL)
			die(EXIT_BADINPUT, "%s: %s at byte offset %zu is reserved for the embeddings "
			    "of the stream; write <image> or <video> to place one", source, pads[i],
			    (size_t)(at - text));
}

/* The programs between a record of an earlier stage and qvl-decode, or NULL. */
static const char *
stages_missing(const char *name)
{
	if (strcmp(name, "pixel_values") == 0 || strcmp(name, "pixel_values_videos") == 0)
		return "qvl-vit | qvl-merge";
	if (strcmp(name, "vit_hidden") == 0)
		return "qvl-merge";
	return NULL;
}

/* Reads the image_embeds records of the input; other records are not ours and are dropped,
 * except an earlier stage's image, which would otherwise vanish from the answer silently. */
static struct visual *
read_visuals(const char *path, const struct model *md, int *nvis)
{
	const char *sname = in_name(path);
	FILE *in = in_open(path);
	qvl_reader *r = qvl_reader_new(in, sname);
	struct visual *v = NULL;
	qvl_record rec;
	qvl_err err;
	int n = 0, rc;
	int hidden = md->cfg.text.hidden_size;
	int64_t merge = md->cfg.vision.spatial_merge_size > 0 ? md->cfg.vision.spatial_merge_size : 2;

	if (r == NULL)
		die(EXIT_BADINPUT, "out of memory");
	while ((rc = qvl_reader_next(r, &rec, &err)) == 1) {
		long index = qvl_reader_index(r) - 1;
		struct visual *cur;
		json_t *kind, *spgt;

		const char *missing = stages_missing(rec.name);
		if (missing != NULL)
			die(EXIT_BADINPUT, "%s: record %ld is %s, not image_embeds: put %s "
			    "before qvl-decode", sname, index, rec.name, missing);
		if (strcmp(rec.name, "image_embeds") != 0) {
			qvl_record_free(&rec);
			continue;
		}
		if (rec.t.ndim != 2 || (rec.t.dtype != QVL_F32 && rec.t.dtype != QVL_BF16 &&
		    rec.t.dtype != QVL_F16))
			die(EXIT_BADINPUT, "%s: record %ld (image_embeds): want a float [N, %d] "
			    "tensor, got %d-D %s", sname, index, hidden, rec.t.ndim,
			    qvl_dtype_name(rec.t.dtype));
		if (rec.t.shape[1] != hidden)
			die(EXIT_BADINPUT, "%s: record %ld (image_embeds): width %lld is not the "
			    "model's hidden size %d (made with another model?)", sname, index,
			    (long long)rec.t.shape[1], hidden);
		if ((v = realloc(v, (size_t)(n + 1) * sizeof *v)) == NULL)
			die(EXIT_BADINPUT, "out of memory");
		cur = &v[n++];
		memset(cur, 0, sizeof *cur);
		cur->rec = rec;
		cur->rows = rec.t.shape[0];
		if (qvl_meta_get_grid(rec.meta, cur->grid, &err) < 0) {
			qvl_err_prefix(&err, "%s: record %ld (image_embeds)", sname, index);
			die_err(EXIT_BADINPUT, &err);
		}
		if (cur->grid[1] % merge || cur->grid[2] % merge ||
		    cur->grid[0] * cur->grid[1] * cur->grid[2] / (merge * merge) != cur->rows)
			die(EXIT_BADINPUT, "%s: record %ld (image_embeds): grid_thw [%lld, %lld, "
			    "%lld] does not match %lld rows", sname, index, (long long)cur->grid[0],
			    (long long)cur->grid[1], (long long)cur->grid[2], (long long)cur->rows);
		kind = json_object_get(rec.meta, "kind");
		cur->video = json_is_string(kind) && strcmp(json_string_value(kind), "video") == 0;
		cur->second_per_grid_t = 1.0f;
		if ((spgt = json_object_get(rec.meta, "second_per_grid_t")) != NULL) {
			if (!json_is_number(spgt) || !(json_number_value(spgt) > 0))
				die(EXIT_BADINPUT, "%s: record %ld (image_embeds): second_per_grid_t "
				    "is not a positive number", sname, index);
			cur->second_per_grid_t = (float)json_number_value(spgt);
		}
		if (rec.t.dtype == QVL_F32)
			cur->embeds = rec.t.data;
		else {
			size_t count = (size_t)cur->rows * (size_t)hidden;
			if ((cur->embeds = qvl_alloc(count * sizeof(float))) == NULL)
				die(EXIT_BADINPUT, "out of memory");
			qvl_tensor_to_f32(&rec.t, cur->embeds);
		}
	}
	if (rc < 0)
		die_err(EXIT_BADINPUT, &err);
	qvl_reader_free(r);
	if (in != stdin)
		fclose(in);
	*nvis = n;
	return v;
}

static int
count_markers(const char *s)
{
	int n = 0;

	for (const char *p = s; (p = strchr(p, '<')) != NULL; p++)
		if (strncmp(p, "<image>", 7) == 0 || strncmp(p, "<video>", 7) == 0)
			n++;
	return n;
}

/* The user turn: the visuals before the text, or where the prompt's markers put them. */
static qvl_chat_part *
build_parts(const char *prompt, struct visual **vis, int nvis, int64_t merge, int *nparts,
    char ***pieces)
{
	/* with no image or video, "<image>" is the user's text (a question about HTML) */
	int markers = nvis > 0 ? count_markers(prompt) : 0, n = 0, np = 0;
	qvl_chat_part *parts = calloc((size_t)(2 * nvis + 2), sizeof *parts);
	char **texts = calloc((size_t)(nvis + 2), sizeof *texts);

	if (parts == NULL || texts == NULL)
		die(EXIT_BADINPUT, "out of memory");
	if (markers && markers != nvis)
		die(EXIT_BADINPUT, "the prompt has %d <image>/<video> marker%s for %d image "
		    "or video record%s", markers, markers == 1 ? "" : "s", nvis,
		    nvis == 1 ? "" : "s");
#define VISUAL_PART(vp) do { \
	parts[n].kind = (vp)->video ? QVL_CHAT_VIDEO : QVL_CHAT_IMAGE; \
	parts[n].pads = (long)((vp)->grid[0] * (vp)->grid[1] * (vp)->grid[2] / (merge * merge)); \
	n++; } while (0)
	if (markers == 0) {
		for (int i = 0; i < nvis; i++)
			VISUAL_PART(vis[i]);
		parts[n].kind = QVL_CHAT_TEXT;
		parts[n++].text = prompt;
	} else {
		const char *p = prompt;
		int vi = 0;
		for (;;) {
			const char *m = p;
			while ((m = strchr(m, '<')) != NULL && strncmp(m, "<image>", 7) != 0 &&
			    strncmp(m, "<video>", 7) != 0)
				m++;
			size_t len = m ? (size_t)(m - p) : strlen(p);
			if (len > 0) {
				if ((texts[np] = strndup(p, len)) == NULL)
					die(EXIT_BADINPUT, "out of memory");
				parts[n].kind = QVL_CHAT_TEXT;
				parts[n++].text = texts[np++];
			}
			if (m == NULL)
				break;
			VISUAL_PART(vis[vi]);
			vi++;
			p = m + 7;
		}
	}
#undef VISUAL_PART
	*nparts = n;
	*pieces = texts;
	return parts;
}

void
prompt_ids(const struct model *md, const struct opts *o, const char *prompt,
    struct visual **vis, int nvis, qvl_ids *ids)
{
	int64_t merge = md->cfg.vision.spatial_merge_size > 0 ? md->cfg.vision.spatial_merge_size : 2;
	qvl_chat_message msgs[2];
	qvl_chat_part sys_part = { QVL_CHAT_TEXT, o->system, 0 };
	int nparts, nmsgs = 0;
	char **pieces;
	qvl_chat_part *parts = build_parts(prompt, vis, nvis, merge, &nparts, &pieces);
	qvl_err err;
	size_t len;
	char *text;

	if (o->system) {
		msgs[nmsgs].role = "system";
		msgs[nmsgs].parts = &sys_part;
		msgs[nmsgs].nparts = 1;
		msgs[nmsgs++].content_is_string = 1;
	}
	msgs[nmsgs].role = "user";
	msgs[nmsgs].parts = parts;
	msgs[nmsgs].nparts = nparts;
	msgs[nmsgs++].content_is_string = 0;
	if ((text = qvl_chat_render(msgs, nmsgs, 1, 0, &len, &err)) == NULL)
		die_err(EXIT_BADINPUT, &err);
	if (qvl_tokenizer_encode(md->tok, text, len, ids, &err) < 0) {
		qvl_err_prefix(&err, "prompt");
		die_err(EXIT_BADINPUT, &err);
	}
	free(text);
	for (int i = 0; pieces[i]; i++)
		free(pieces[i]);
	free(pieces);
	free(parts);
}

int
main(int argc, char **argv)
{
	enum { O_SYSTEM = 256, O_JSON, O_EACH, O_MAXTOK, O_TEMP, O_TOPP, O_TOPK, O_REP, O_SEED,
	    O_STOP, O_MAXREP, O_IGNEOS, O_LOGITS, O_TEXTONLY, O_IDS, O_PREFILL, O_BATCH };
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "model", required_argument, NULL, 'm' },
		{ "prompt", required_argument, NULL, 'p' },
		{ "prompt-file", required_argument, NULL, 'f' },
		{ "threads", required_argument, NULL, 't' },
		{ "precision", required_argument, NULL, 'P' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "system", required_argument, NULL, O_SYSTEM },
		{ "json", no_argument, NULL, O_JSON },
		{ "each", no_argument, NULL, O_EACH },
		{ "batch", required_argument, NULL, O_BATCH },
		{ "max-tokens", required_argument, NULL, O_MAXTOK },
		{ "temperature", required_argument, NULL, O_TEMP },
		{ "top-p", required_argument, NULL, O_TOPP },
		{ "top-k", required_argument, NULL, O_TOPK },
		{ "repetition-penalty", required_argument, NULL, O_REP },
		{ "seed", required_argument, NULL, O_SEED },
		{ "stop", required_argument, NULL, O_STOP },
		{ "max-repeat", required_argument, NULL, O_MAXREP },
		{ "ignore-eos", no_argument, NULL, O_IGNEOS },
		{ "logits", required_argument, NULL, O_LOGITS },
		{ "text-only", no_argument, NULL, O_TEXTONLY },
		{ "prompt-ids", no_argument, NULL, O_IDS },
		{ "prefill-rows", required_argument, NULL, O_PREFILL },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o;
	struct model md;
	qvl_err err;
	int ch;

	cmd_init(argv[0]);
	memset(&o, 0, sizeof o);
	memset(&md, 0, sizeof md);
	o.max_tokens = DEFAULT_MAX_TOKENS;
	o.max_repeat = DEFAULT_MAX_REPEAT;
	o.batch = 1;
	qvl_sample_defaults(&o.sp);
	while ((ch = getopt_long(argc, argv, "hm:p:f:t:v", longopts, NULL)) != -1) {
		switch (ch) {
		case 'h':
			usage(stdout, 0);
			break;
		case 'm':
			o.model = optarg;
			break;
		case 'p':
			o.prompt = optarg;
			break;
		case 'f':
			o.prompt_file = optarg;
			break;
		case 't':
			o.threads = (int)cmd_parse_long("--threads", optarg, 1, 1024);
			break;
		case 'v':
			o.verbose = 1;
			break;
		case 'P':
			o.precision = cmd_parse_precision(optarg);
			break;
		case O_SYSTEM:
			o.system = optarg;
			break;
		case O_JSON:
			o.json = 1;
			break;
		case O_EACH:
			o.each = 1;
			break;
		case O_BATCH:
			o.batch = cmd_parse_long("--batch", optarg, 1, QVL_BATCH_MAX);
			break;
		case O_MAXTOK:
			o.max_tokens = cmd_parse_long("--max-tokens", optarg, 1, 1L << 30);
			break;
		case O_TEMP:
			o.sp.temperature = cmd_parse_double("--temperature", optarg, 0, 100);
			break;
		case O_TOPP:
			o.sp.top_p = cmd_parse_double("--top-p", optarg, 1e-9, 1);
			break;
		case O_TOPK:
			o.sp.top_k = (int)cmd_parse_long("--top-k", optarg, 0, 1L << 30);
			break;
		case O_REP:
			o.sp.repetition_penalty = cmd_parse_double("--repetition-penalty", optarg,
			    1e-6, 1e6);
			break;
		case O_SEED:
			o.sp.seed = (uint64_t)cmd_parse_long("--seed", optarg, 0, LONG_MAX);
			o.seed_set = 1;
			break;
		case O_STOP:
			if (o.nstops == MAX_STOPS)
				die(EXIT_USAGE, "--stop: at most %d strings", MAX_STOPS);
			if (*optarg == '\0')
				die(EXIT_USAGE, "--stop: empty string");
			o.stops[o.nstops++] = optarg;
			break;
		case O_MAXREP:
			o.max_repeat = cmd_parse_long("--max-repeat", optarg, 0, 1L << 20);
			/* one copy of a cycle is any text at all */
			if (o.max_repeat == 1)
				die(EXIT_USAGE, "--max-repeat: want 0 (off) or at least 2 copies");
			break;
		case O_IGNEOS:
			o.ignore_eos = 1;
			break;
		case O_LOGITS:
			o.logits_path = optarg;
			break;
		case O_TEXTONLY:
			o.text_only = 1;
			break;
		case O_IDS:
			o.prompt_ids = 1;
			break;
		case O_PREFILL:
			o.prefill_rows = cmd_parse_long("--prefill-rows", optarg, 1, 1L << 20);
			break;
		default:
			usage(stderr, EXIT_USAGE);
		}
	}
	if (argc - optind > 1)
		usage(stderr, EXIT_USAGE);
	const char *path = optind < argc ? argv[optind] : NULL;
	if ((o.prompt != NULL) == (o.prompt_file != NULL))
		die(EXIT_USAGE, "give the prompt with exactly one of -p TEXT and -f FILE");
	if (o.prompt_file && strcmp(o.prompt_file, "-") == 0 && !o.text_only &&
	    (path == NULL || strcmp(path, "-") == 0))
		die(EXIT_USAGE, "-f -: stdin cannot hold both the prompt and the stream "
		    "(use --text-only or give the stream as FILE)");
	if (o.logits_path && strcmp(o.logits_path, "-") == 0)
		die(EXIT_USAGE, "--logits -: standard output has the answer; give a file");
	if (o.batch > 1 && !o.each)
		die(EXIT_USAGE, "--batch runs the conversations of --each together: give both");
	if (!o.seed_set)
		o.sp.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	md.dir = cmd_model_dir(o.model);
	char *prompt = o.prompt_file ? read_prompt_file(o.prompt_file) : strdup(o.prompt);
	if (prompt == NULL)
		die(EXIT_BADINPUT, "out of memory");
	/* checked here, where the offset is the user's: the tokenizer would count it in the
	 * rendered chat template, after the system prompt and the role markers */
	check_prompt_text(o.prompt_file ? in_name(o.prompt_file) : "-p", prompt);
	if (o.system)
		check_prompt_text("--system", o.system);

	if (qvl_config_load(md.dir, &md.cfg, &err) < 0)
		die_err(EXIT_BADINPUT, &err);
	if ((md.tok = qvl_tokenizer_load(md.dir, &err)) == NULL)
		die_err(EXIT_BADINPUT, &err);
	if (qvl_generation_load(md.dir, &md.gen, &err) < 0)
		die_err(EXIT_BADINPUT, &err);
	/* "eos_token_id": [] would stop nothing, and every answer would run to --max-tokens */
	if (md.gen.n_eos == 0) {
		md.gen.eos_ids[md.gen.n_eos++] = md.cfg.text.eos_token_id;
		if (!o.ignore_eos && !o.prompt_ids)
			warnx("%s/generation_config.json: eos_token_id is empty; stopping on "
			    "config.json's eos_token_id %d", md.dir, md.cfg.text.eos_token_id);
	}
	if (!md.gen.found && !o.prompt_ids)
		warnx("%s: no generation_config.json; stopping on the reference's ids 151645 "
		    "<|im_end|> and 151643 <|endoftext|>", md.dir);
	/* a fine-tune trained on another template answers worse to this one: say so */
	char template_file[32];
	if (qvl_chat_template_check(md.dir, template_file, sizeof template_file) ==
	    QVL_TEMPLATE_OTHER)
		warnx("%s/%s: the model's chat template differs from the one qvl writes (the "
		    "Qwen2.5-VL release's); prompts are written with that one", md.dir,
		    template_file);

	/* the input: a stream, unless text-only or a terminal */
	struct visual *vis = NULL;
	int nvis = 0;
	if (!o.text_only && !(path == NULL && isatty(STDIN_FILENO))) {
		vis = read_visuals(path, &md, &nvis);
		/* an empty stream is most often a failed stage upstream (qvl-vit missing, a
		 * pipe without pipefail): say so rather than answer a text prompt silently */
		if (nvis == 0)
			warnx("%s: no image_embeds records: the prompt is text only "
			    "(--text-only does this without reading a stream)", in_name(path));
	}

	if (!o.prompt_ids) {
		if ((md.w = qvl_weights_open(md.dir, &err)) == NULL)
			die_err(EXIT_BADINPUT, &err);
		if ((md.llm = qvl_llm_new(md.w, &md.cfg, &err)) == NULL) {
			qvl_err_prefix(&err, "%s", md.dir);
			die_err(EXIT_BADINPUT, &err);
		}
		md.pool = cmd_pool_new(o.threads, o.precision);
		qvl_llm_set_prefill_rows(md.llm, o.prefill_rows);
	}
	FILE *logits_f = o.logits_path && !o.prompt_ids ? out_open(o.logits_path) : NULL;

	struct visual **list = malloc((size_t)(nvis + 1) * sizeof *list);
	if (list == NULL)
		die(EXIT_BADINPUT, "out of memory");
	for (int i = 0; i < nvis; i++)
		list[i] = &vis[i];
	if (o.each && nvis > 1 && o.batch > 1 && !o.prompt_ids) {
		converse_batch(&md, &o, prompt, list, nvis, logits_f);
	} else if (o.each && nvis > 0) {
		for (int i = 0; i < nvis; i++) {
			char buf[32];
			if (!o.json && !o.prompt_ids) {
				printf("%s==> %s <==\n", i ? "\n" : "", source_of(&vis[i], i, buf,
				    sizeof buf));
				cmd_flush_stdout();
			}
			converse(&md, &o, prompt, &list[i], 1, logits_f, i);
		}
	} else
		converse(&md, &o, prompt, list, nvis, logits_f, 0);
	if (logits_f)
		out_commit(logits_f);

	for (int i = 0; i < nvis; i++) {
		if (vis[i].embeds != vis[i].rec.t.data)
			free(vis[i].embeds);
		qvl_record_free(&vis[i].rec);
	}
	free(vis);
	free(list);
	free(prompt);
	qvl_llm_free(md.llm);
	qvl_weights_close(md.w);
	qvl_tokenizer_free(md.tok);
	return 0;
}
