/* safetensors and config.json: the tiny models load with every tensor shaped as their
 * config says, sharded checkpoints resolve through the index, and malformed files fail with
 * a message naming the problem. */
#include <stdlib.h>
#include <unistd.h>

#include "../lib/config.h"
#include "../lib/safetensors.h"
#include "test.h"

static int
has_shape(const qvl_weights *w, const char *name, int ndim, int64_t a, int64_t b)
{
	int64_t shape[2] = {a, b};
	qvl_err err;

	if (qvl_weights_get(w, name, ndim, shape, &err) != NULL)
		return 1;
	printf("  %s\n", err.msg);
	return 0;
}

static void
test_model(const char *dir)
{
	char path[512], name[256];
	qvl_config cfg;
	qvl_err err;
	qvl_weights *w;
	int bad = 0;

	snprintf(path, sizeof path, TEST_DATA "/models/%s", dir);
	CHECK(qvl_config_load(path, &cfg, &err) == 0, "%s config loads: %s", dir, err.msg);
	w = qvl_weights_open(path, &err);
	CHECK(w != NULL, "%s weights open: %s", dir, w ? "" : err.msg);
	if (w == NULL)
		return;
	const qvl_text_config *t = &cfg.text;
	const qvl_vision_config *v = &cfg.vision;
	int kv = t->num_key_value_heads * t->head_dim;

	bad += !has_shape(w, "model.embed_tokens.weight", 2, t->vocab_size, t->hidden_size);
	bad += !has_shape(w, "model.norm.weight", 1, t->hidden_size, 0);
	for (int l = 0; l < t->num_hidden_layers; l++) {
#define L(suffix, nd, a, b)                                                                \
	snprintf(name, sizeof name, "model.layers.%d.%s", l, suffix);                      \
	bad += !has_shape(w, name, nd, a, b)
		L("input_layernorm.weight", 1, t->hidden_size, 0);
		L("post_attention_layernorm.weight", 1, t->hidden_size, 0);
		L("self_attn.q_proj.weight", 2, t->hidden_size, t->hidden_size);
		L("self_attn.q_proj.bias", 1, t->hidden_size, 0);
		L("self_attn.k_proj.weight", 2, kv, t->hidden_size);
		L("self_attn.v_proj.bias", 1, kv, 0);
		L("self_attn.o_proj.weight", 2, t->hidden_size, t->hidden_size);
		L("mlp.gate_proj.weight", 2, t->intermediate_size, t->hidden_size);
		L("mlp.up_proj.weight", 2, t->intermediate_size, t->hidden_size);
		L("mlp.down_proj.weight", 2, t->hidden_size, t->intermediate_size);
#undef L
	}
	for (int b = 0; b < v->depth; b++) {
#define B(suffix, nd, x, y)                                                                \
	snprintf(name, sizeof name, "visual.blocks.%d.%s", b, suffix);                     \
	bad += !has_shape(w, name, nd, x, y)
		B("attn.qkv.weight", 2, 3 * v->hidden_size, v->hidden_size);
		B("attn.proj.weight", 2, v->hidden_size, v->hidden_size);
		B("mlp.gate_proj.weight", 2, v->intermediate_size, v->hidden_size);
		B("mlp.down_proj.weight", 2, v->hidden_size, v->intermediate_size);
		B("norm1.weight", 1, v->hidden_size, 0);
#undef B
	}
	int merged = v->hidden_size * v->spatial_merge_size * v->spatial_merge_size;
	bad += !has_shape(w, "visual.merger.mlp.0.weight", 2, merged, merged);
	bad += !has_shape(w, "visual.merger.mlp.2.weight", 2, v->out_hidden_size, merged);
	const qvl_tensor *pe = qvl_weights_find(w, "visual.patch_embed.proj.weight");
	CHECK(pe && pe->ndim == 5 && pe->shape[0] == v->hidden_size && pe->shape[2] ==
	    v->temporal_patch_size && pe->shape[4] == v->patch_size, "%s patch_embed shape", dir);
	CHECK(bad == 0, "%s: every tensor has the shape its config implies (%d wrong)", dir, bad);
	CHECK((qvl_weights_find(w, "lm_head.weight") != NULL) == !t->tie_word_embeddings,
	    "%s: lm_head present exactly when embeddings are untied", dir);
	CHECK(v->patch_dim == 1176 && v->head_dim * v->num_heads == v->hidden_size,
	    "%s: derived vision sizes", dir);
	qvl_weights_close(w);
}

/* A little safetensors writer for hand-made (and broken) files. */
static size_t
make_file(unsigned char *buf, const char *header, size_t data_len)
{
	size_t hl = strlen(header);

	for (int i = 0; i < 8; i++)
		buf[i] = (unsigned char)((uint64_t)hl >> (8 * i));
	memcpy(buf + 8, header, hl);
	for (size_t i = 0; i < data_len; i++)
		buf[8 + hl + i] = (unsigned char)i;
	return 8 + hl + data_len;
}

static void
expect_bad(const char *what, const char *header, size_t data_len, const char *needle)
{
	static unsigned char buf[4096];
	size_t n = make_file(buf, header, data_len);
	qvl_err err = {{0}};
	qvl_weights *w = qvl_weights_from_buffer(buf, n, "f.safetensors", &err);

	CHECK(w == NULL && strstr(err.msg, needle) && strstr(err.msg, "f.safetensors"),
	    "%s rejected (\"%s\")", what, err.msg);
	qvl_weights_close(w);
}

static void
test_malformed(void)
{
	static unsigned char buf[4096];
	qvl_err err;

	size_t n = make_file(buf, "{\"a\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,12]},"
	    "\"__metadata__\":{\"format\":\"pt\"}}    ", 12);
	qvl_weights *w = qvl_weights_from_buffer(buf, n, "f.safetensors", &err);
	CHECK(w && qvl_weights_count(w) == 1 && qvl_weights_find(w, "a")->shape[1] == 3,
	    "hand-made file loads");
	CHECK(w && json_is_object(qvl_weights_metadata(w)), "metadata kept");
	qvl_weights_close(w);

	CHECK(qvl_weights_from_buffer(buf, 5, "f.safetensors", &err) == NULL &&
	    strstr(err.msg, "too short"), "5-byte file rejected");
	n = make_file(buf, "{}", 0);
	buf[0] = 0xff;
	CHECK(qvl_weights_from_buffer(buf, n, "f.safetensors", &err) == NULL &&
	    strstr(err.msg, "header length 255 exceeds"), "header length past the end: %s", err.msg);
	expect_bad("invalid JSON", "{\"a\":", 0, "JSON");
	expect_bad("not an object", "[1,2]", 0, "object");
	expect_bad("unknown dtype", "{\"a\":{\"dtype\":\"Q3\",\"shape\":[1],\"data_offsets\":[0,1]}}",
	    1, "dtype");
	expect_bad("offsets past the data", "{\"a\":{\"dtype\":\"U8\",\"shape\":[8],"
	    "\"data_offsets\":[0,8]}}", 4, "outside");
	expect_bad("size mismatch", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],"
	    "\"data_offsets\":[0,8]}}", 8, "data bytes");
	expect_bad("reversed offsets", "{\"a\":{\"dtype\":\"U8\",\"shape\":[0],"
	    "\"data_offsets\":[4,2]}}", 8, "not an interval");
	expect_bad("negative shape", "{\"a\":{\"dtype\":\"U8\",\"shape\":[-1],"
	    "\"data_offsets\":[0,0]}}", 8, "negative");
	expect_bad("overflowing shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,8],"
	    "\"data_offsets\":[0,0]}}", 8, "overflow");
	expect_bad("missing offsets", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1]}}", 8, "data_offsets");
	/* a misaligned F32 after one byte still loads, through an aligned copy */
	n = make_file(buf, "{\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
	    "\"c\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[1,5]}}", 5);
	w = qvl_weights_from_buffer(buf, n, "f.safetensors", &err);
	CHECK(w && ((uintptr_t)qvl_weights_find(w, "c")->data & 3) == 0 &&
	    ((unsigned char *)qvl_weights_find(w, "c")->data)[0] == 1, "misaligned tensor copied");
	qvl_weights_close(w);
}

static void
write_bytes(const char *path, const void *buf, size_t n)
{
	FILE *f = fopen(path, "wb");
	fwrite(buf, 1, n, f);
	fclose(f);
}

static void
test_sharded(void)
{
	static unsigned char buf[4096];
	char dir[] = "/tmp/qvl-shard.XXXXXX", path[256];
	qvl_err err;
	size_t n;

	if (mkdtemp(dir) == NULL)
		return;
	n = make_file(buf, "{\"x.weight\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4);
	snprintf(path, sizeof path, "%s/model-00001-of-00002.safetensors", dir);
	write_bytes(path, buf, n);
	n = make_file(buf, "{\"y.weight\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
	snprintf(path, sizeof path, "%s/model-00002-of-00002.safetensors", dir);
	write_bytes(path, buf, n);
	const char *index = "{\"metadata\":{},\"weight_map\":{"
	    "\"x.weight\":\"model-00001-of-00002.safetensors\","
	    "\"y.weight\":\"model-00002-of-00002.safetensors\"}}";
	snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
	write_bytes(path, index, strlen(index));
	qvl_weights *w = qvl_weights_open(dir, &err);
	CHECK(w && qvl_weights_count(w) == 2 && qvl_weights_find(w, "x.weight") &&
	    qvl_weights_find(w, "y.weight"), "two shards through the index: %s", w ? "" : err.msg);
	qvl_weights_close(w);

	const char *bad = "{\"weight_map\":{\"x.weight\":\"model-00001-of-00002.safetensors\","
	    "\"z.weight\":\"model-00001-of-00002.safetensors\"}}";
	write_bytes(path, bad, strlen(bad));
	w = qvl_weights_open(dir, &err);
	CHECK(w == NULL && strstr(err.msg, "z.weight"), "index naming a missing tensor: %s",
	    err.msg);
	const char *escape = "{\"weight_map\":{\"x.weight\":\"../etc/passwd\"}}";
	write_bytes(path, escape, strlen(escape));
	w = qvl_weights_open(dir, &err);
	CHECK(w == NULL && strstr(err.msg, "plain file"), "shard path outside the directory: %s",
	    err.msg);
	/* a truncated shard */
	snprintf(path, sizeof path, "%s/model-00001-of-00002.safetensors", dir);
	n = make_file(buf, "{\"x.weight\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4);
	write_bytes(path, buf, n - 2);
	snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
	write_bytes(path, index, strlen(index));
	w = qvl_weights_open(dir, &err);
	CHECK(w == NULL && strstr(err.msg, "truncated"), "truncated shard: %s", err.msg);

	w = qvl_weights_open("/nonexistent/model", &err);
	CHECK(w == NULL && strstr(err.msg, "/nonexistent/model"), "missing dir: %s", err.msg);
	snprintf(path, sizeof path, "rm -rf %s", dir);
	CHECK(system(path) == 0, "cleanup");
}

static void test_config_layouts(void);

static void
test_config(void)
{
	qvl_config cfg;
	qvl_err err;
	char *text;
	size_t len;

	CHECK(qvl_config_load(TEST_DATA "/models/tiny", &cfg, &err) == 0, "tiny config");
	CHECK(cfg.text.hidden_size == 64 && cfg.text.head_dim == 16 && cfg.text.mrope_section[1] == 3
	    && cfg.text.tie_word_embeddings && cfg.vision.n_fullatt == 2 &&
	    cfg.vision.fullatt_block_indexes[1] == 3 && cfg.vision.tokens_per_second == 2,
	    "tiny config values");
	CHECK(qvl_config_load(TEST_DATA "/models/untied", &cfg, &err) == 0 &&
	    !cfg.text.tie_word_embeddings && cfg.text.vocab_size == 152064, "untied config values");

	text = qvl_read_file(TEST_DATA "/models/tiny/config.json", &len, 1 << 20, &err);
	CHECK(text != NULL, "read config");
	if (text == NULL)
		return;
	/* every required field removed in turn is named in the error */
	static const char *required[] = {"\"hidden_size\": 64,", "\"num_hidden_layers\"",
	    "\"vocab_size\"", "\"mrope_section\"", "\"depth\""};
	for (size_t i = 0; i < sizeof required / sizeof *required; i++) {
		char *copy = strdup(text), *at = strstr(copy, required[i]);
		at[1] = 'X'; /* rename the key */
		int rc = qvl_config_parse(copy, len, &cfg, &err);
		char key[64];
		snprintf(key, sizeof key, "%.*s", (int)(strchr(required[i] + 1, '"') - required[i] - 1),
		    required[i] + 1);
		CHECK(rc < 0 && strstr(err.msg, key + 1) != NULL, "missing %s: %s", key, err.msg);
		free(copy);
	}
	char *copy = strdup(text);
	char *at = strstr(copy, "\"num_key_value_heads\": 2");
	at[strlen("\"num_key_value_heads\": ")] = '3';
	CHECK(qvl_config_parse(copy, len, &cfg, &err) < 0 && strstr(err.msg, "num_key_value_heads"),
	    "inconsistent kv heads: %s", err.msg);
	free(copy);
	CHECK(qvl_config_parse("{", 1, &cfg, &err) < 0 && strstr(err.msg, "JSON"), "bad JSON");
	/* what qvl does not compute is refused, not run as Qwen2.5-VL: Qwen2-VL, GELU */
	static const char *const other[][2] = {
		{"\"model_type\": \"qwen2_5_vl\"", "\"model_type\": \"qwen2_vl\"  "},
		{"\"hidden_act\": \"silu\"", "\"hidden_act\": \"gelu\""},
	};
	for (size_t i = 0; i < sizeof other / sizeof *other; i++) {
		copy = strdup(text);
		at = strstr(copy, other[i][0]);
		CHECK(at != NULL, "config has %s", other[i][0]);
		if (at != NULL) {
			memcpy(at, other[i][1], strlen(other[i][1]));
			CHECK(qvl_config_parse(copy, len, &cfg, &err) < 0 &&
			    strstr(err.msg, "computes") != NULL, "%s refused: %s", other[i][1],
			    err.msg);
		}
		free(copy);
	}
	free(text);
	test_config_layouts();
}

/* The sizes every config of test_config_layouts shares. */
#define SIZES "\"hidden_size\":64,\"intermediate_size\":128,\"num_hidden_layers\":2," \
	"\"num_attention_heads\":4,\"vocab_size\":1000"
#define MROPE_233 "\"rope_scaling\":{\"mrope_section\":[2,3,3]}"

/* Where the fields sit in the configs of transformers 4.x and 5: each case's figures are
 * checked where given (0 / NULL: not checked), or its error. */
static void
test_config_layouts(void)
{
	static const struct {
		const char *what, *json;
		double rope_theta;
		int mrope0, eos;
		const char *rope_type, *error;
	} cases[] = {
		{"text fields under text_config, rope_theta's default",
		    "{\"text_config\":{" SIZES "," MROPE_233 "}}", 1e6, 2, 0, "", NULL},
		{"transformers 5: rope_theta and mrope_section in rope_parameters",
		    "{\"text_config\":{" SIZES ",\"rope_parameters\":{\"rope_type\":\"default\","
		    "\"rope_theta\":500000.0,\"mrope_section\":[4,2,2]}}}", 5e5, 4, 0, "", NULL},
		{"rope_theta at the top beside a text_config without one",
		    "{\"rope_theta\":250000,\"text_config\":{" SIZES "," MROPE_233 "}}", 2.5e5, 0, 0,
		    NULL, NULL},
		{"the text config's own rope_theta over a top-level rope_parameters'",
		    "{\"rope_parameters\":{\"rope_theta\":5000},\"text_config\":{\"rope_theta\":7000,"
		    SIZES "," MROPE_233 "}}", 7000, 0, 0, NULL, NULL},
		{"both with an mrope_section: rope_scaling's, as transformers 5 reads it",
		    "{" SIZES ",\"rope_parameters\":{\"mrope_section\":[2,2,4]},"
		    "\"rope_scaling\":{\"mrope_section\":[4,2,2]}}", 0, 4, 0, NULL, NULL},
		{"eos_token_id as a list: the first",
		    "{\"eos_token_id\":[151643,151645]," SIZES "," MROPE_233 "}", 0, 0, 151643, NULL,
		    NULL},
		{"a yarn in rope_scaling beside rope_parameters' mrope_section is kept to refuse",
		    "{" SIZES ",\"rope_parameters\":{\"rope_type\":\"default\",\"mrope_section\":"
		    "[2,3,3]},\"rope_scaling\":{\"type\":\"yarn\",\"factor\":4}}", 0, 0, 0,
		    "rope_scaling.type is \"yarn\"", NULL},
		{"a bad rope_parameters.rope_theta",
		    "{" SIZES ",\"rope_parameters\":{\"rope_theta\":\"x\",\"mrope_section\":[2,3,3]}}",
		    0, 0, 0, NULL, "rope_parameters.rope_theta is not a number"},
		{"a bad mrope_section is named where it was read",
		    "{" SIZES ",\"rope_parameters\":{\"mrope_section\":[2,3,4]}}", 0, 0, 0, NULL,
		    "rope_parameters.mrope_section sums to 9"},
	};
	qvl_config cfg;
	qvl_err err;

	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		int rc = qvl_config_parse(cases[i].json, strlen(cases[i].json), &cfg, &err);
		if (cases[i].error != NULL) {
			CHECK(rc < 0 && strstr(err.msg, cases[i].error) != NULL, "%s: %s",
			    cases[i].what, rc < 0 ? err.msg : "parsed");
			continue;
		}
		CHECK(rc == 0 && cfg.text.num_hidden_layers == 2 && !cfg.has_vision &&
		    (cases[i].rope_theta == 0 || cfg.text.rope_theta == cases[i].rope_theta) &&
		    (cases[i].mrope0 == 0 || cfg.text.mrope_section[0] == cases[i].mrope0) &&
		    (cases[i].eos == 0 || cfg.text.eos_token_id == cases[i].eos) &&
		    (cases[i].rope_type == NULL || strcmp(cfg.text.rope_type, cases[i].rope_type) == 0),
		    "%s: %s (rope_theta %g, mrope [%d..], eos %d, rope_type '%s')", cases[i].what,
		    rc < 0 ? err.msg : "parsed", cfg.text.rope_theta, cfg.text.mrope_section[0],
		    cfg.text.eos_token_id, cfg.text.rope_type);
	}
}

int
main(int argc, char **argv)
{
	TEST_INIT(argc, argv);
	test_model("tiny");
	test_model("untied");
	test_malformed();
	test_sharded();
	test_config();
	return TEST_DONE();
}
