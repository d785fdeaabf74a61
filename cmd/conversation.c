/* conversation.c: qvl-decode's conversations: the prompt through the model, tokens sampled
 * until a stop, the answer streamed or held (--stop strings), its JSON and --logits
 * records; and --batch, several conversations stepping through the model together. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "../lib/mrope.h"
#include "decode.h"
#include "util.h"

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Text output with --stop strings: text is held back while it could be the start of one. */
struct out {
	char *text;
	size_t len, cap, emitted;
	int stream;             /* write to stdout as it comes */
	const struct opts *o;
};

static void
out_append(struct out *t, const char *s, size_t n)
{
	if (t->len + n + 1 > t->cap) {
		size_t cap = t->cap ? t->cap : 4096;
		while (cap < t->len + n + 1)
			cap *= 2;
		if ((t->text = realloc(t->text, cap)) == NULL)
			die(EXIT_BADINPUT, "out of memory");
		t->cap = cap;
	}
	memcpy(t->text + t->len, s, n);
	t->len += n;
	t->text[t->len] = '\0';
}

static void
out_emit(struct out *t, size_t upto)
{
	if (upto <= t->emitted)
		return;
	if (t->stream) {
		if (fwrite(t->text + t->emitted, 1, upto - t->emitted, stdout) != upto - t->emitted)
			cmd_flush_stdout();
		cmd_flush_stdout();
	}
	t->emitted = upto;
}

/* After new text: 1 when a stop string appeared (the text is cut before it). */
static int
out_update(struct out *t, int final)
{
	size_t hold = 0;

	for (int i = 0; i < t->o->nstops; i++) {
		const char *s = t->o->stops[i];
		size_t sl = strlen(s);
		size_t from = t->emitted >= sl ? t->emitted - sl + 1 : 0;
		char *hit = sl ? memmem(t->text + from, t->len - from, s, sl) : NULL;
		if (hit) {
			t->len = (size_t)(hit - t->text);
			t->text[t->len] = '\0';
			out_emit(t, t->len);
			return 1;
		}
		for (size_t k = sl - 1; k > hold && k > 0; k--)
			if (k <= t->len && memcmp(t->text + t->len - k, s, k) == 0) {
				hold = k;
				break;
			}
	}
	out_emit(t, final ? t->len : t->len - hold);
	return 0;
}

struct logits_out {
	float *rows;
	size_t steps, cap;
};

static json_t *
json_ids(const int32_t *ids, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_integer(ids[i]));
	return a;
}

/* One conversation: its prompt, its state in the model and what it has generated. */
struct conv {
	qvl_llm *llm;
	struct visual **vis;
	int nvis;
	long index;
	qvl_ids ids;
	int64_t L, delta;
	size_t gen_start;
	long max_tokens, taken;
	int steps, stop_string, done;
	const char *finish;
	float *logits, *work;   /* the next token's logits; the sampler's copy */
	qvl_sampler sampler;
	qvl_detok dt;
	char *piece;
	size_t piece_cap;
	struct out text;
	struct logits_out lo;
	double t0, t1, t2;      /* start, prompt done, generation done (ms) */
};

/* The prompt of c through c->llm up to the first token's logits.  Returns 1 when there is
 * nothing more to do (--prompt-ids printed the ids). */
static int
conv_start(const struct model *md, const struct opts *o, struct conv *c, const char *prompt,
    int stream)
{
	const qvl_text_config *tc = &md->cfg.text;
	int D = tc->hidden_size, V = tc->vocab_size, nvis = c->nvis;
	struct visual **vis = c->vis;
	qvl_err err;

	prompt_ids(md, o, prompt, vis, nvis, &c->ids);
	int64_t L = c->L = (int64_t)c->ids.n;
	if (o->prompt_ids) {
		for (size_t i = 0; i < c->ids.n; i++)
			printf("%s%ld", i ? " " : "", (long)c->ids.ids[i]);
		printf("\n");
		cmd_flush_stdout();
		qvl_ids_free(&c->ids);
		return 1;
	}
	if (L + 1 > tc->max_position_embeddings)
		die(EXIT_BADINPUT, "the prompt has %lld tokens; the model's context is %d, "
		    "with room for at least one answer token", (long long)L,
		    tc->max_position_embeddings);

	/* positions */
	int64_t *pos = malloc((size_t)(3 * L) * sizeof *pos);
	int64_t *igrid = malloc((size_t)(3 * nvis + 1) * sizeof *igrid);
	int64_t *vgrid = malloc((size_t)(3 * nvis + 1) * sizeof *vgrid);
	float *spgt = malloc((size_t)(nvis + 1) * sizeof *spgt);
	int ni = 0, nv = 0;
	if (pos == NULL || igrid == NULL || vgrid == NULL || spgt == NULL)
		die(EXIT_BADINPUT, "out of memory");
	for (int i = 0; i < nvis; i++) {
		if (vis[i]->video) {
			memcpy(vgrid + 3 * nv, vis[i]->grid, sizeof vis[i]->grid);
			spgt[nv++] = vis[i]->second_per_grid_t;
		} else
			memcpy(igrid + 3 * ni++, vis[i]->grid, sizeof vis[i]->grid);
	}
	qvl_mrope_vision mv = { igrid, ni, vgrid, spgt, nv };
	if (qvl_mrope_positions(&md->cfg, c->ids.ids, L, &mv, pos, &c->delta, &err) < 0)
		die_err(EXIT_BADINPUT, &err);

	c->max_tokens = o->max_tokens;
	if (L + c->max_tokens > tc->max_position_embeddings)
		c->max_tokens = tc->max_position_embeddings - L;

	/* embeddings: image rows replace image pads, video rows video pads, in order */
	c->t0 = now_ms();
	float *x = qvl_alloc((size_t)L * (size_t)D * sizeof *x);
	if (x == NULL)
		die(EXIT_BADINPUT, "out of memory for a prompt of %lld tokens", (long long)L);
	qvl_visual_rows *rows = calloc((size_t)nvis + 1, sizeof *rows);
	if (rows == NULL)
		die(EXIT_BADINPUT, "out of memory");
	for (int i = 0; i < nvis; i++)
		rows[i] = (qvl_visual_rows){ vis[i]->embeds, vis[i]->rows, vis[i]->video };
	if (qvl_llm_embed_prompt(c->llm, c->ids.ids, L, rows, nvis, x, &err) < 0)
		die_err(EXIT_BADINPUT, &err);
	free(rows);
	if (qvl_llm_reserve(c->llm, L + (c->max_tokens > 0 ? c->max_tokens : 1), &err) < 0)
		die_err(EXIT_BADINPUT, &err);
	qvl_llm_reset(c->llm);
	if (qvl_llm_forward(c->llm, md->pool, x, pos, L, NULL, NULL, &err) < 0)
		die_err(EXIT_BADINPUT, &err);
	c->logits = qvl_alloc((size_t)V * sizeof *c->logits);
	c->work = qvl_alloc((size_t)V * sizeof *c->work);
	if (c->logits == NULL || c->work == NULL)
		die(EXIT_BADINPUT, "out of memory");
	qvl_llm_logits(c->llm, md->pool, x + (L - 1) * D, 1, c->logits);
	c->t1 = now_ms();
	free(x);
	free(pos);
	free(igrid);
	free(vgrid);
	free(spgt);

	/* generation */
	if (qvl_sampler_init(&c->sampler, &o->sp, V, &err) < 0)
		die_err(EXIT_USAGE, &err);
	/* Special tokens are not text, except the grounding markers qvl-boxes reads. */
	qvl_detok_init(&c->dt, md->tok, 0);
	c->piece_cap = 64 + qvl_tokenizer_max_token_bytes(md->tok) + 16;
	if ((c->piece = malloc(c->piece_cap)) == NULL)
		die(EXIT_BADINPUT, "out of memory");
	c->text = (struct out){ NULL, 0, 0, 0, stream, o };
	c->finish = "length";
	c->gen_start = c->ids.n;
	out_append(&c->text, "", 0);
	return 0;
}

static int32_t
conv_stop(struct conv *c, const char *finish)
{
	if (finish)
		c->finish = finish;
	c->done = 1;
	c->t2 = now_ms();
	return -1;
}

/* How many times the last period tokens of ids[0 .. n) repeat at its end: the guard's
 * minimum span makes short cycles repeat more often than --max-repeat. */
static size_t
cycle_repeats(const int32_t *ids, size_t n, size_t period)
{
	size_t len = period;

	while (len < n && ids[n - 1 - len] == ids[n - 1 - len + period])
		len++;
	return len / period;
}

/* The next token from c's logits, or -1 when the conversation is over. */
static int32_t
conv_next(const struct model *md, const struct opts *o, struct conv *c, int keep_logits)
{
	int V = md->cfg.text.vocab_size;
	qvl_err err;

	if (c->taken >= c->max_tokens)
		return conv_stop(c, NULL);
	if (keep_logits) {
		struct logits_out *lo = &c->lo;
		if (lo->steps == lo->cap) {
			lo->cap = lo->cap ? 2 * lo->cap : 16;
			if ((lo->rows = realloc(lo->rows, lo->cap * (size_t)V * sizeof(float))) ==
			    NULL)
				die(EXIT_BADINPUT, "--logits: out of memory");
		}
		memcpy(lo->rows + lo->steps++ * (size_t)V, c->logits, (size_t)V * sizeof(float));
	}
	memcpy(c->work, c->logits, (size_t)V * sizeof *c->work);
	int32_t tok = qvl_sample(&c->sampler, c->work, c->ids.ids, c->ids.n);
	int is_eos = 0;
	for (int e = 0; e < md->gen.n_eos; e++)
		is_eos |= tok == md->gen.eos_ids[e];
	if (is_eos && !o->ignore_eos)
		return conv_stop(c, "stop");
	if (qvl_ids_push(&c->ids, tok, &err) < 0)
		die_err(EXIT_BADINPUT, &err);
	size_t n = 0;
	if (!qvl_tokenizer_is_special(md->tok, tok) || qvl_tokenizer_is_grounding(md->tok, tok))
		n = qvl_detok_push(&c->dt, tok, c->piece, c->piece_cap);
	out_append(&c->text, c->piece, n);
	if (out_update(&c->text, 0)) {
		c->stop_string = 1;
		return conv_stop(c, "stop");
	}
	const int32_t *gen = c->ids.ids + c->gen_start;
	size_t ngen = c->ids.n - c->gen_start;
	int period = qvl_repeat_check(gen, ngen, (int)o->max_repeat);
	if (period) {
		warnx("stopped: the output repeats a cycle of %d token%s %zu times (a dense "
		    "scan? 300-dpi pages make the model repeat itself: try qvl-resize --dpi 300:72, or "
		    "--max-repeat 0)", period, period == 1 ? "" : "s",
		    cycle_repeats(gen, ngen, (size_t)period));
		return conv_stop(c, "repetition");
	}
	if (++c->taken == c->max_tokens)
		return conv_stop(c, NULL);
	return tok;
}

/* The answer of a finished conversation (under a "==> source <==" line when source is not
 * NULL), its logits record, and the end of its state. */
static void
conv_end(const struct opts *o, struct conv *c, FILE *logits_f, const char *source)
{
	int V = qvl_llm_config(c->llm)->text.vocab_size;
	qvl_err err;

	if (source && !o->json)
		printf("%s==> %s <==\n", c->index ? "\n" : "", source);
	if (!c->stop_string) {
		size_t n = qvl_detok_flush(&c->dt, c->piece, c->piece_cap);
		out_append(&c->text, c->piece, n);
		out_update(&c->text, 1);
	}
	if (!c->text.stream && !o->json && fwrite(c->text.text, 1, c->text.len, stdout) !=
	    c->text.len)
		cmd_flush_stdout();
	size_t ntok = c->ids.n - c->gen_start;
	double prefill_ms = c->t1 - c->t0;
	double tps = c->steps > 0 ? c->steps / ((c->t2 - c->t1) / 1e3) : 0;
	if (o->verbose)
		warnx("%lld prompt tokens in %.0f ms (%.1f tokens/s); %zu generated, %.2f "
		    "tokens/s; finish: %s", (long long)c->L, prefill_ms, c->L / (prefill_ms / 1e3),
		    ntok, tps, c->finish);

	if (o->json) {
		json_t *obj = json_object(), *imgs = json_array(), *tim = json_object();
		json_object_set_new(obj, "text", json_stringn(c->text.text, c->text.len));
		json_object_set_new(obj, "tokens", json_ids(c->ids.ids + c->gen_start, ntok));
		json_object_set_new(obj, "finish_reason", json_string(c->finish));
		json_object_set_new(obj, "prompt_tokens", json_integer(c->L));
		json_object_set_new(obj, "completion_tokens", json_integer((json_int_t)ntok));
		json_object_set_new(tim, "prefill_ms", json_real(prefill_ms));
		json_object_set_new(tim, "decode_tokens_per_s", json_real(tps));
		json_object_set_new(obj, "timings", tim);
		for (int i = 0; i < c->nvis; i++)
			json_array_append(imgs, c->vis[i]->rec.meta);
		json_object_set_new(obj, "images", imgs);
		char *s = json_dumps(obj, JSON_COMPACT);
		if (s == NULL)
			die(EXIT_BADINPUT, "json: out of memory");
		printf("%s\n", s);
		free(s);
		json_decref(obj);
	} else if (c->text.len == 0 || c->text.text[c->text.len - 1] != '\n')
		putchar('\n');
	cmd_flush_stdout();

	if (logits_f) {
		qvl_tensor t = { 0 };
		json_t *meta = json_object();
		t.dtype = QVL_F32;
		t.ndim = 2;
		t.shape[0] = (int64_t)c->lo.steps;
		t.shape[1] = V;
		t.data = c->lo.rows;
		t.nbytes = c->lo.steps * (size_t)V * sizeof(float);
		json_object_set_new(meta, "conversation", json_integer(c->index));
		json_object_set_new(meta, "prompt_tokens", json_integer(c->L));
		if (qvl_write_tensor(logits_f, "logits", &t, meta, &err) < 0)
			out_fail(logits_f, &err);
		json_decref(meta);
	}
	free(c->lo.rows);
	free(c->text.text);
	free(c->piece);
	qvl_sampler_free(&c->sampler);
	free(c->logits);
	free(c->work);
	qvl_ids_free(&c->ids);
}

/* One conversation, streamed. */
void
converse(struct model *md, const struct opts *o, const char *prompt, struct visual **vis,
    int nvis, FILE *logits_f, long conv_index)
{
	int D = md->cfg.text.hidden_size;
	struct conv c = { .llm = md->llm, .vis = vis, .nvis = nvis, .index = conv_index };
	float *h = qvl_alloc((size_t)D * sizeof *h);
	int32_t tok;
	qvl_err err;

	if (h == NULL)
		die(EXIT_BADINPUT, "out of memory");
	if (conv_start(md, o, &c, prompt, !o->json) == 0) {
		while ((tok = conv_next(md, o, &c, logits_f != NULL)) >= 0) {
			int64_t p = qvl_llm_cached(c.llm) + c.delta, p3[3] = { p, p, p };
			if (qvl_llm_embed(c.llm, &tok, 1, h, &err) < 0 ||
			    qvl_llm_forward(c.llm, md->pool, h, p3, 1, NULL, NULL, &err) < 0)
				die_err(EXIT_BADINPUT, &err);
			qvl_llm_logits(c.llm, md->pool, h, 1, c.logits);
			c.steps++;
		}
		conv_end(o, &c, logits_f, NULL);
	}
	free(h);
}

const char *
source_of(const struct visual *v, int index, char *buf, size_t len)
{
	json_t *s = json_object_get(v->rec.meta, "source");

	if (json_is_string(s))
		return json_string_value(s);
	snprintf(buf, len, "image %d", index);
	return buf;
}

/* --each --batch N: up to N conversations generate together, each step reading the weights
 * once for all of them (qvl_llm_step_many); a finished one makes room for the next.
 * Answers come out whole, in input order; each is the same as alone. */
void
converse_batch(struct model *md, const struct opts *o, const char *prompt,
    struct visual **list, int nvis, FILE *logits_f)
{
	int D = md->cfg.text.hidden_size, V = md->cfg.text.vocab_size, B = (int)o->batch;
	struct conv *convs = calloc((size_t)nvis, sizeof *convs);
	qvl_llm *free_llm[QVL_BATCH_MAX], *seqs[QVL_BATCH_MAX];
	int active[QVL_BATCH_MAX], nactive = 0, nfree = 0, started = 0, ended = 0;
	float *x = qvl_alloc((size_t)B * (size_t)D * sizeof *x);
	float *logits = qvl_alloc((size_t)B * (size_t)V * sizeof *logits);
	int64_t pos[QVL_BATCH_MAX];
	qvl_err err;

	if (convs == NULL || x == NULL || logits == NULL)
		die(EXIT_BADINPUT, "out of memory");
	free_llm[nfree++] = md->llm;
	for (int i = 1; i < B && i < nvis; i++) {
		if ((free_llm[nfree] = qvl_llm_new(md->w, &md->cfg, &err)) == NULL)
			die_err(EXIT_BADINPUT, &err);
		qvl_llm_set_prefill_rows(free_llm[nfree++], o->prefill_rows);
	}
	while (ended < nvis) {
		while (nactive < B && started < nvis) {
			struct conv *c = &convs[started];
			*c = (struct conv){ .llm = free_llm[--nfree], .vis = &list[started],
			    .nvis = 1, .index = started };
			conv_start(md, o, c, prompt, 0);
			active[nactive++] = started++;
		}
		/* a token from each; the finished leave, their model states free again */
		int n = 0;
		for (int j = 0; j < nactive; j++) {
			struct conv *c = &convs[active[j]];
			int32_t tok = conv_next(md, o, c, logits_f != NULL);
			if (tok < 0) {
				free_llm[nfree++] = c->llm;
				continue;
			}
			if (qvl_llm_embed(c->llm, &tok, 1, x + n * D, &err) < 0)
				die_err(EXIT_BADINPUT, &err);
			seqs[n] = c->llm;
			pos[n] = qvl_llm_cached(c->llm) + c->delta;
			active[n++] = active[j];
		}
		nactive = n;
		for (; ended < started && convs[ended].done; ended++) {
			char buf[32];
			conv_end(o, &convs[ended], logits_f,
			    source_of(list[ended], ended, buf, sizeof buf));
		}
		if (n == 0)
			continue;
		if (qvl_llm_step_many(seqs, n, md->pool, x, pos, &err) < 0)
			die_err(EXIT_BADINPUT, &err);
		qvl_llm_logits(seqs[0], md->pool, x, n, logits);
		for (int j = 0; j < n; j++) {
			memcpy(convs[active[j]].logits, logits + (size_t)j * V, (size_t)V * sizeof *logits);
			convs[active[j]].steps++;
		}
	}
	for (int i = 0; i < nfree; i++)
		if (free_llm[i] != md->llm)
			qvl_llm_free(free_llm[i]);
	free(convs);
	free(x);
	free(logits);
}

