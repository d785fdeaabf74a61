/* chat.h: the Qwen2.5-VL chat template (chat_template.json of the hub checkpoints), for the
 * message shapes qvl uses: system/user/assistant turns whose content is a string or a list of
 * text, image and video parts.  The output equals transformers' apply_chat_template (jinja2,
 * trim_blocks, lstrip_blocks) for those shapes, optionally with the vision pads expanded the
 * way Qwen2_5_VLProcessor expands them. */
#ifndef QVL_CHAT_H
#define QVL_CHAT_H

#include <stddef.h>

#include "err.h"

typedef enum { QVL_CHAT_TEXT, QVL_CHAT_IMAGE, QVL_CHAT_VIDEO } qvl_chat_kind;

typedef struct qvl_chat_part {
	qvl_chat_kind kind;
	const char *text; /* TEXT only */
	/* IMAGE/VIDEO: number of pad tokens = t*h*w/4; 0 = leave one unexpanded pad, as
	 * apply_chat_template does. */
	long pads;
} qvl_chat_part;

typedef struct qvl_chat_message {
	const char *role; /* "system", "user", "assistant" */
	const qvl_chat_part *parts;
	int nparts;
	/* Content is a plain string (parts[0].text, nparts 1) rather than a list of parts. */
	int content_is_string;
} qvl_chat_message;

/* Renders messages with the Qwen2.5-VL chat template to a malloc'd string. */
char *qvl_chat_render(const qvl_chat_message *msgs, int nmsgs, int add_generation_prompt,
    int add_vision_id, size_t *len, qvl_err *err);

/* The chat template a model directory ships (chat_template.jinja, chat_template.json, or
 * tokenizer_config.json's, the first found) against the one qvl_chat_render writes out;
 * file gets the file's name.  Unreadable files count as none. */
enum { QVL_TEMPLATE_NONE, QVL_TEMPLATE_BUILTIN, QVL_TEMPLATE_OTHER };
int qvl_chat_template_check(const char *model_dir, char *file, size_t file_size);

#endif
