/* chat.c: the Qwen2.5-VL chat template written out as code.  The template (chat_template.json
 * of the hub checkpoints) is, for the shapes qvl uses:
 *
 *   [<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n  if the first message is
 *                                                                 not a system message]
 *   per message: <|im_start|>ROLE\n CONTENT <|im_end|>\n
 *     CONTENT = the string, or per part: the text; or for an image
 *     [Picture N: ]<|vision_start|><|image_pad|><|vision_end|>; or for a video
 *     [Video N: ]<|vision_start|><|video_pad|><|vision_end|>  (N counts from 1 over the whole
 *     conversation, and appears only with add_vision_id)
 *   [<|im_start|>assistant\n  with add_generation_prompt]
 *
 * Pads are repeated `pads` times when the caller knows the grid (Qwen2_5_VLProcessor's
 * expansion); pads == 0 leaves the single pad of apply_chat_template. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "chat.h"
#include "config.h"

/* FNV-1a of the hub checkpoints' chat_template (all sizes ship the same one), trailing
 * white space left out: the template this file writes out. */
#define QWEN25VL_TEMPLATE_HASH 0x71242f76359e71e8ull

typedef struct sbuf {
	char *p;
	size_t n, cap;
	int failed;
} sbuf;

static void
put(sbuf *b, const char *s, size_t n)
{
	size_t cap;
	char *p;

	if (b->failed)
		return;
	if (b->n + n + 1 > b->cap) {
		cap = b->cap ? b->cap : 1024;
		while (cap < b->n + n + 1)
			cap *= 2;
		if ((p = realloc(b->p, cap)) == NULL) {
			b->failed = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

static void
puts_(sbuf *b, const char *s)
{
	put(b, s, strlen(s));
}

static void
vision(sbuf *b, const char *label, int count, const char *pad, long pads, int add_vision_id)
{
	char num[64];
	long i;

	if (add_vision_id) {
		snprintf(num, sizeof(num), "%s %d: ", label, count);
		puts_(b, num);
	}
	puts_(b, "<|vision_start|>");
	for (i = 0; i < (pads > 0 ? pads : 1); i++)
		puts_(b, pad);
	puts_(b, "<|vision_end|>");
}

char *
qvl_chat_render(const qvl_chat_message *msgs, int nmsgs, int add_generation_prompt,
    int add_vision_id, size_t *len, qvl_err *err)
{
	sbuf b = { 0 };
	const qvl_chat_part *part;
	int i, k, images = 0, videos = 0;

	put(&b, "", 0);
	for (i = 0; i < nmsgs; i++) {
		if (msgs[i].role == NULL) {
			free(b.p);
			qvl_fail(err, "chat: message %d has no role", i + 1);
			return NULL;
		}
		if (msgs[i].content_is_string && msgs[i].nparts > 1) {
			free(b.p);
			qvl_fail(err, "chat: message %d: string content has more than one part",
			    i + 1);
			return NULL;
		}
		if (i == 0 && strcmp(msgs[i].role, "system") != 0)
			puts_(&b, "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n");
		puts_(&b, "<|im_start|>");
		puts_(&b, msgs[i].role);
		puts_(&b, "\n");
		for (k = 0; k < msgs[i].nparts; k++) {
			part = &msgs[i].parts[k];
			if (msgs[i].content_is_string || part->kind == QVL_CHAT_TEXT) {
				if (part->text != NULL)
					puts_(&b, part->text);
			} else if (part->kind == QVL_CHAT_IMAGE)
				vision(&b, "Picture", ++images, "<|image_pad|>", part->pads,
				    add_vision_id);
			else if (part->kind == QVL_CHAT_VIDEO)
				vision(&b, "Video", ++videos, "<|video_pad|>", part->pads,
				    add_vision_id);
		}
		puts_(&b, "<|im_end|>\n");
	}
	if (add_generation_prompt)
		puts_(&b, "<|im_start|>assistant\n");
	if (b.failed) {
		free(b.p);
		qvl_fail(err, "chat: out of memory");
		return NULL;
	}
	if (len != NULL)
		*len = b.n;
	return b.p;
}

static uint64_t
template_hash(const char *t, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	while (n > 0 && (t[n - 1] == '\n' || t[n - 1] == ' ' || t[n - 1] == '\t' ||
	    t[n - 1] == '\r'))
		n--;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)t[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

/* The template string of a JSON file's "chat_template": a string, or in tokenizer_config.json
 * a list of {"name", "template"} of which "default" is the one used. */
static int
json_template_hash(const char *path, uint64_t *hash)
{
	json_t *root = json_load_file(path, 0, NULL), *t, *list, *e;
	const char *name;
	size_t i;
	int found = 0;

	if (root == NULL)
		return 0;
	t = json_object_get(root, "chat_template");
	if (json_is_array(list = t)) {
		t = NULL;
		json_array_foreach(list, i, e)
			if ((name = json_string_value(json_object_get(e, "name"))) != NULL &&
			    strcmp(name, "default") == 0) {
				t = json_object_get(e, "template");
				break;
			}
	}
	if (json_is_string(t)) {
		*hash = template_hash(json_string_value(t), json_string_length(t));
		found = 1;
	}
	json_decref(root);
	return found;
}

int
qvl_chat_template_check(const char *model_dir, char *file, size_t file_size)
{
	static const char *json_files[] = { "chat_template.json", "tokenizer_config.json" };
	char path[4096], *text;
	uint64_t hash = 0;
	size_t len;
	qvl_err err;
	int found = 0;

	/* transformers' order: the .jinja, then the JSON files */
	snprintf(file, file_size, "chat_template.jinja");
	snprintf(path, sizeof path, "%s/%s", model_dir, file);
	if ((text = qvl_read_file(path, &len, (size_t)1 << 20, &err)) != NULL) {
		hash = template_hash(text, len);
		found = 1;
		free(text);
	}
	for (size_t i = 0; !found && i < sizeof json_files / sizeof *json_files; i++) {
		snprintf(file, file_size, "%s", json_files[i]);
		snprintf(path, sizeof path, "%s/%s", model_dir, file);
		found = json_template_hash(path, &hash);
	}
	if (!found)
		return QVL_TEMPLATE_NONE;
	return hash == QWEN25VL_TEMPLATE_HASH ? QVL_TEMPLATE_BUILTIN : QVL_TEMPLATE_OTHER;
}
