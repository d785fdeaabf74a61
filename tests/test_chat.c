/* test_chat: the chat template against chat_golden.jsonl (rendered with transformers' jinja2
 * template, ids from the real tokenizers library): the prompt with one pad per image, the
 * prompt with the pads expanded to t*h*w/4, and the ids of both. */
#include <jansson.h>
#include <stdlib.h>

#include "../lib/chat.h"
#include "../lib/tokenizer.h"
#include "test.h"

/* Builds the messages of one golden; pads per image/video from the counts when expand. */
static qvl_chat_message *
build(json_t *g, int expand, int *nmsgs)
{
	json_t *msgs = json_object_get(g, "messages"), *m, *content, *part;
	json_t *ipads = json_object_get(g, "image_pad_counts");
	json_t *vpads = json_object_get(g, "video_pad_counts");
	qvl_chat_message *out = calloc(json_array_size(msgs) + 1, sizeof(*out));
	qvl_chat_part *parts;
	const char *type;
	size_t i, k;
	int images = 0, videos = 0;

	json_array_foreach(msgs, i, m) {
		content = json_object_get(m, "content");
		out[i].role = json_string_value(json_object_get(m, "role"));
		if (json_is_string(content)) {
			parts = calloc(1, sizeof(*parts));
			parts[0].kind = QVL_CHAT_TEXT;
			parts[0].text = json_string_value(content);
			out[i].parts = parts;
			out[i].nparts = 1;
			out[i].content_is_string = 1;
			continue;
		}
		parts = calloc(json_array_size(content) + 1, sizeof(*parts));
		json_array_foreach(content, k, part) {
			type = json_string_value(json_object_get(part, "type"));
			if (strcmp(type, "image") == 0 || strcmp(type, "image_url") == 0) {
				parts[k].kind = QVL_CHAT_IMAGE;
				parts[k].pads = expand ?
				    (long)json_integer_value(json_array_get(ipads, images)) : 0;
				images++;
			} else if (strcmp(type, "video") == 0) {
				parts[k].kind = QVL_CHAT_VIDEO;
				parts[k].pads = expand ?
				    (long)json_integer_value(json_array_get(vpads, videos)) : 0;
				videos++;
			} else {
				parts[k].kind = QVL_CHAT_TEXT;
				parts[k].text = json_string_value(json_object_get(part, "text"));
			}
		}
		out[i].parts = parts;
		out[i].nparts = (int)json_array_size(content);
	}
	*nmsgs = (int)json_array_size(msgs);
	return out;
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
check_golden(const qvl_tokenizer *tok, json_t *g)
{
	static const char *const prompt_key[2] = { "prompt", "expanded_prompt" };
	static const char *const ids_key[2] = { "prompt_ids", "ids" };
	const char *name = json_string_value(json_object_get(g, "name"));
	qvl_chat_message *msgs;
	qvl_ids ids = { 0 };
	qvl_err err = { { 0 } };
	json_t *want;
	size_t len;
	char *text;
	int expand, n, i;

	for (expand = 0; expand < 2; expand++) {
		msgs = build(g, expand, &n);
		text = qvl_chat_render(msgs, n,
		    json_is_true(json_object_get(g, "add_generation_prompt")),
		    json_is_true(json_object_get(g, "add_vision_id")), &len, &err);
		want = json_object_get(g, prompt_key[expand]);
		CHECK(text != NULL && len == json_string_length(want) &&
		    memcmp(text, json_string_value(want), len) == 0, "%s: %s %s", name,
		    prompt_key[expand], err.msg);
		ids.n = 0;
		CHECK(text != NULL && qvl_tokenizer_encode(tok, text, len, &ids, &err) == 0 &&
		    same_ids(&ids, json_object_get(g, ids_key[expand])), "%s: %s (%zu ids) %s",
		    name, ids_key[expand], ids.n, err.msg);
		free(text);
		for (i = 0; i < n; i++)
			free((void *)msgs[i].parts);
		free(msgs);
	}
	qvl_ids_free(&ids);
}

int
main(int argc, char **argv)
{
	FILE *f = fopen(TEST_DATA "/tokenizer/chat_golden.jsonl", "r");
	qvl_err err = { { 0 } };
	qvl_tokenizer *tok;
	json_error_t jerr;
	char *line = NULL;
	size_t cap = 0;
	json_t *g;
	int count = 0;
	qvl_chat_message bad = { 0 };

	TEST_INIT(argc, argv);
	tok = qvl_tokenizer_load(TEST_DATA "/models/tiny", &err);
	CHECK(tok != NULL && f != NULL, "load: %s", err.msg);
	if (tok == NULL || f == NULL)
		return TEST_DONE();
	while (getline(&line, &cap, f) > 0) {
		if ((g = json_loads(line, 0, &jerr)) == NULL) {
			CHECK(0, "chat_golden.jsonl: %s", jerr.text);
			continue;
		}
		check_golden(tok, g);
		json_decref(g);
		count++;
	}
	CHECK(count == 14, "%d chat goldens", count);
	CHECK(qvl_chat_render(&bad, 1, 1, 0, NULL, &err) == NULL &&
	    strstr(err.msg, "no role") != NULL, "a message without a role: %s", err.msg);
	free(line);
	fclose(f);
	qvl_tokenizer_free(tok);
	return TEST_DONE();
}
