#include "config.h"
#include "stream.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

char *
qvl_read_file(const char *path, size_t *len, size_t max_len, qvl_err *err)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	char *buf;
	size_t n;

	if (f == NULL) {
		qvl_fail_errno(err, "%s", path);
		return NULL;
	}
	if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode)) {
		fclose(f);
		qvl_fail(err, "%s: not a regular file", path);
		return NULL;
	}
	if ((uint64_t)st.st_size > max_len) {
		fclose(f);
		qvl_fail(err, "%s: %lld bytes, over the %zu-byte limit", path,
		    (long long)st.st_size, max_len);
		return NULL;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		fclose(f);
		qvl_fail(err, "%s: out of memory", path);
		return NULL;
	}
	n = fread(buf, 1, (size_t)st.st_size, f);
	if (ferror(f)) {
		qvl_fail_errno(err, "%s: read error", path);
		fclose(f);
		free(buf);
		return NULL;
	}
	fclose(f);
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

/* Reads an integer field; `dflt` < 0 means the field is required. */
static int
get_int(const json_t *obj, const char *section, const char *key, long dflt, long min, long max,
    int *out, qvl_err *err)
{
	json_t *v = json_object_get(obj, key);
	int64_t x;

	if (v == NULL || json_is_null(v)) {
		if (dflt < 0)
			return qvl_fail(err, "%s%s is missing", section, key);
		*out = (int)dflt;
		return 0;
	}
	if (!qvl_json_int(v, &x))
		return qvl_fail(err, "%s%s is not an integer", section, key);
	if (x < min || x > max)
		return qvl_fail(err, "%s%s = %lld is outside [%ld, %ld]", section, key, (long long)x,
		    min, max);
	*out = (int)x;
	return 0;
}

static int
get_real(const json_t *obj, const char *section, const char *key, double dflt, double min,
    double max, double *out, qvl_err *err)
{
	json_t *v = json_object_get(obj, key);
	double x;

	if (v == NULL || json_is_null(v)) {
		if (dflt < 0)
			return qvl_fail(err, "%s%s is missing", section, key);
		*out = dflt;
		return 0;
	}
	if (!json_is_number(v))
		return qvl_fail(err, "%s%s is not a number", section, key);
	x = json_number_value(v);
	if (!(x >= min && x <= max))
		return qvl_fail(err, "%s%s = %g is outside [%g, %g]", section, key, x, min, max);
	*out = x;
	return 0;
}

/* A string field that, where present, must be `want`: the one case qvl computes (a
 * Qwen2-VL checkpoint or a GELU MLP would otherwise run as Qwen2.5-VL, silently wrong). */
static int
want_string(const json_t *obj, const char *section, const char *key, const char *want,
    qvl_err *err)
{
	const json_t *v = json_object_get(obj, key);

	if (v == NULL || (json_is_string(v) && strcmp(json_string_value(v), want) == 0))
		return 0;
	return qvl_fail(err, "%s%s is %s%s%s: qvl computes %s only", section, key,
	    json_is_string(v) ? "\"" : "", json_is_string(v) ? json_string_value(v) : "not a string",
	    json_is_string(v) ? "\"" : "", want);
}

static int
parse_vision(const json_t *vc, qvl_vision_config *v, qvl_err *err)
{
	const char *s = "vision_config.";
	json_t *full;

	if (want_string(vc, s, "hidden_act", "silu", err) < 0 ||
	    get_int(vc, s, "depth", -1, 1, 1024, &v->depth, err) < 0 ||
	    get_int(vc, s, "hidden_size", -1, 1, 65536, &v->hidden_size, err) < 0 ||
	    get_int(vc, s, "intermediate_size", -1, 1, 1 << 20, &v->intermediate_size, err) < 0 ||
	    get_int(vc, s, "num_heads", -1, 1, 4096, &v->num_heads, err) < 0 ||
	    get_int(vc, s, "out_hidden_size", -1, 1, 65536, &v->out_hidden_size, err) < 0 ||
	    get_int(vc, s, "patch_size", 14, 1, 1024, &v->patch_size, err) < 0 ||
	    get_int(vc, s, "temporal_patch_size", 2, 1, 64, &v->temporal_patch_size, err) < 0 ||
	    get_int(vc, s, "spatial_merge_size", 2, 1, 64, &v->spatial_merge_size, err) < 0 ||
	    get_int(vc, s, "window_size", 112, 1, 1 << 16, &v->window_size, err) < 0 ||
	    get_real(vc, s, "tokens_per_second", 4, 0, 1e6, &v->tokens_per_second, err) < 0)
		return -1;
	/* HF ignores in_chans / in_channels and builds the patch embedding for 3 channels. */
	v->in_channels = 3;
	if (v->hidden_size % v->num_heads != 0)
		return qvl_fail(err, "vision_config.hidden_size %d is not a multiple of num_heads %d",
		    v->hidden_size, v->num_heads);
	v->head_dim = v->hidden_size / v->num_heads;
	if (v->head_dim % 4 != 0)
		return qvl_fail(err, "vision head_dim %d is not a multiple of 4 (2-D RoPE needs it)",
		    v->head_dim);
	if (v->window_size % (v->patch_size * v->spatial_merge_size) != 0)
		return qvl_fail(err, "vision_config.window_size %d is not a multiple of "
		    "patch_size * spatial_merge_size = %d", v->window_size,
		    v->patch_size * v->spatial_merge_size);
	v->patch_dim = v->in_channels * v->temporal_patch_size * v->patch_size * v->patch_size;
	full = json_object_get(vc, "fullatt_block_indexes");
	v->n_fullatt = 0;
	if (full != NULL) {
		if (!json_is_array(full) || json_array_size(full) > QVL_MAX_FULLATT)
			return qvl_fail(err, "vision_config.fullatt_block_indexes is not a list of at "
			    "most %d block numbers", QVL_MAX_FULLATT);
		for (size_t i = 0; i < json_array_size(full); i++) {
			json_t *x = json_array_get(full, i);
			if (!json_is_integer(x) || json_integer_value(x) < 0 ||
			    json_integer_value(x) >= v->depth)
				return qvl_fail(err, "vision_config.fullatt_block_indexes[%zu] is not a "
				    "block number below depth %d", i, v->depth);
			v->fullatt_block_indexes[v->n_fullatt++] = (int)json_integer_value(x);
		}
	}
	return 0;
}

/* A token id, or the first of a list of them: some configs list every stop token as
 * eos_token_id, as generation_config.json does (qvl-decode stops on those). */
static int
get_token_id(const json_t *root, const char *key, long dflt, int *out, qvl_err *err)
{
	const json_t *v = json_object_get(root, key);
	int64_t x;

	if (!json_is_array(v))
		return get_int(root, "", key, dflt, 0, INT_MAX, out, err);
	if (json_array_size(v) == 0) {
		*out = (int)dflt;
		return 0;
	}
	if (!qvl_json_int(json_array_get(v, 0), &x) || x < 0 || x > INT_MAX)
		return qvl_fail(err, "%s[0] is not a token id", key);
	*out = (int)x;
	return 0;
}

/* The object KEY of the text config, else of the top level; NULL if neither has one. */
static const json_t *
text_object(const json_t *tc, const json_t *root, const char *key)
{
	const json_t *o = json_object_get(tc, key);

	if (!json_is_object(o))
		o = json_object_get(root, key);
	return json_is_object(o) ? o : NULL;
}

/* transformers reads the rotary type from "rope_type" or the older "type" and runs
 * ROPE_INIT_FUNCTIONS[type]; its config turns "mrope" into "default".  The first type other
 * than those two (both keys are looked at, as transformers versions disagree on which one
 * wins) goes into rope_type for the language model to refuse. */
static int
read_rope_type(const json_t *o, const char *section, qvl_text_config *t, qvl_err *err)
{
	const char *keys[] = { "rope_type", "type" }, *name;
	const json_t *v;

	if (o == NULL)
		return 0;
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		if ((v = json_object_get(o, keys[i])) == NULL || json_is_null(v))
			continue;
		if ((name = json_string_value(v)) == NULL)
			return qvl_fail(err, "%s%s is not a string", section, keys[i]);
		if (strcmp(name, "default") == 0 || strcmp(name, "mrope") == 0)
			continue;
		snprintf(t->rope_type, sizeof t->rope_type, "%s%s is \"%.32s\"", section, keys[i],
		    name);
		return 0;
	}
	return 0;
}

/* Where rope_theta is: the text config's rope_parameters, the text config itself, then the
 * same two at the top level (the nearest wins); the top level when none has it.  *section
 * names it for messages. */
static const json_t *
theta_object(const json_t *tc, const json_t *root, const char **section)
{
	const json_t *in[] = {
		json_object_get(tc, "rope_parameters"), tc,
		json_object_get(root, "rope_parameters"), root,
	};

	for (size_t i = 0; i < sizeof in / sizeof *in; i++)
		if (json_is_object(in[i]) && json_object_get(in[i], "rope_theta") != NULL) {
			*section = i % 2 == 0 ? "rope_parameters." : "";
			return in[i];
		}
	*section = "";
	return root;
}

static int
parse_text(const json_t *root, const json_t *tc, qvl_text_config *t, qvl_err *err)
{
	const char *s = "", *sname;
	const json_t *rp, *rs, *rsc, *theta_in, *sec, *tie;
	int sum;

	if (want_string(root, s, "model_type", "qwen2_5_vl", err) < 0 ||
	    want_string(tc, s, "hidden_act", "silu", err) < 0 ||
	    get_int(tc, s, "hidden_size", -1, 1, 1 << 17, &t->hidden_size, err) < 0 ||
	    get_int(tc, s, "intermediate_size", -1, 1, 1 << 20, &t->intermediate_size, err) < 0 ||
	    get_int(tc, s, "num_hidden_layers", -1, 1, 4096, &t->num_hidden_layers, err) < 0 ||
	    get_int(tc, s, "num_attention_heads", -1, 1, 4096, &t->num_attention_heads, err) < 0 ||
	    get_int(tc, s, "num_key_value_heads", t->num_attention_heads, 1, 4096,
	    &t->num_key_value_heads, err) < 0 ||
	    get_int(tc, s, "vocab_size", -1, 1, 1 << 24, &t->vocab_size, err) < 0 ||
	    get_int(tc, s, "max_position_embeddings", 128000, 1, INT_MAX,
	    &t->max_position_embeddings, err) < 0 ||
	    get_real(tc, s, "rms_norm_eps", 1e-6, 0, 1, &t->rms_norm_eps, err) < 0 ||
	    get_int(root, s, "bos_token_id", 151643, 0, INT_MAX, &t->bos_token_id, err) < 0 ||
	    get_token_id(root, "eos_token_id", 151645, &t->eos_token_id, err) < 0 ||
	    get_int(root, s, "image_token_id", 151655, 0, INT_MAX, &t->image_token_id, err) < 0 ||
	    get_int(root, s, "video_token_id", 151656, 0, INT_MAX, &t->video_token_id, err) < 0 ||
	    get_int(root, s, "vision_start_token_id", 151652, 0, INT_MAX,
	    &t->vision_start_token_id, err) < 0 ||
	    get_int(root, s, "vision_end_token_id", 151653, 0, INT_MAX, &t->vision_end_token_id,
	    err) < 0)
		return -1;
	if (t->hidden_size % t->num_attention_heads != 0)
		return qvl_fail(err, "hidden_size %d is not a multiple of num_attention_heads %d",
		    t->hidden_size, t->num_attention_heads);
	if (t->num_attention_heads % t->num_key_value_heads != 0)
		return qvl_fail(err, "num_attention_heads %d is not a multiple of "
		    "num_key_value_heads %d", t->num_attention_heads, t->num_key_value_heads);
	t->head_dim = t->hidden_size / t->num_attention_heads;
	if (t->head_dim % 2 != 0)
		return qvl_fail(err, "head_dim %d is odd", t->head_dim);
	tie = json_object_get(tc, "tie_word_embeddings");
	if (tie == NULL)
		tie = json_object_get(root, "tie_word_embeddings");
	t->tie_word_embeddings = tie == NULL ? 1 : json_is_true(tie);
	/* transformers 5 keeps rope_theta and mrope_section in rope_parameters; before it,
	 * rope_theta sat beside the sizes and mrope_section in rope_scaling */
	rp = text_object(tc, root, "rope_parameters");
	theta_in = theta_object(tc, root, &sname);
	if (get_real(theta_in, sname, "rope_theta", 1e6, 1e-9, 1e30, &t->rope_theta, err) < 0)
		return -1;
	rsc = text_object(tc, root, "rope_scaling");
	/* transformers 5 takes rope_scaling over rope_parameters where a config has both */
	rs = rsc == NULL || (json_object_get(rsc, "mrope_section") == NULL && rp != NULL &&
	    json_object_get(rp, "mrope_section") != NULL) ? rp : rsc;
	sname = rs == rp ? "rope_parameters" : "rope_scaling";
	/* the type is looked for in both objects, whichever holds mrope_section: a yarn added
	 * to rope_scaling beside a rope_parameters must be refused too, not ignored */
	if (read_rope_type(rp, "rope_parameters.", t, err) < 0 ||
	    (t->rope_type[0] == '\0' && read_rope_type(rsc, "rope_scaling.", t, err) < 0))
		return -1;
	sec = json_is_object(rs) ? json_object_get(rs, "mrope_section") : NULL;
	if (!json_is_array(sec) || json_array_size(sec) != 3)
		return qvl_fail(err, "rope_scaling.mrope_section (rope_parameters' in transformers 5) "
		    "is missing or not 3 integers");
	sum = 0;
	for (int i = 0; i < 3; i++) {
		json_t *x = json_array_get(sec, (size_t)i);
		if (!json_is_integer(x) || json_integer_value(x) < 0 ||
		    json_integer_value(x) > t->head_dim)
			return qvl_fail(err, "%s.mrope_section[%d] is not a valid size", sname, i);
		t->mrope_section[i] = (int)json_integer_value(x);
		sum += t->mrope_section[i];
	}
	if (sum != t->head_dim / 2)
		return qvl_fail(err, "%s.mrope_section sums to %d, want head_dim/2 = %d", sname,
		    sum, t->head_dim / 2);
	return 0;
}

int
qvl_config_parse(const char *text, size_t len, qvl_config *cfg, qvl_err *err)
{
	json_error_t jerr;
	json_t *root, *tc, *vc;
	int rc = -1;

	memset(cfg, 0, sizeof *cfg);
	root = json_loadb(text, len, 0, &jerr);
	if (root == NULL)
		return qvl_fail(err, "not valid JSON: %s (line %d)", jerr.text, jerr.line);
	if (!json_is_object(root)) {
		qvl_fail(err, "not a JSON object");
		goto out;
	}
	/* Newer transformers nest the language model's fields in text_config. */
	tc = json_object_get(root, "text_config");
	if (!json_is_object(tc) || json_object_get(tc, "hidden_size") == NULL)
		tc = root;
	if (parse_text(root, tc, &cfg->text, err) < 0)
		goto out;
	vc = json_object_get(root, "vision_config");
	if (vc != NULL) {
		if (!json_is_object(vc)) {
			qvl_fail(err, "vision_config is not an object");
			goto out;
		}
		if (parse_vision(vc, &cfg->vision, err) < 0)
			goto out;
		cfg->has_vision = 1;
	}
	rc = 0;
out:
	json_decref(root);
	return rc;
}

int
qvl_config_load(const char *model_dir, qvl_config *cfg, qvl_err *err)
{
	char path[PATH_MAX];
	char *text;
	size_t len;
	int rc;

	snprintf(path, sizeof path, "%s/config.json", model_dir);
	if ((text = qvl_read_file(path, &len, 16u << 20, err)) == NULL)
		return -1;
	rc = qvl_config_parse(text, len, cfg, err);
	free(text);
	if (rc < 0)
		return qvl_err_prefix(err, "%s", path);
	return 0;
}
