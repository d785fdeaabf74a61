/* tokenizer.h: the Qwen2 byte-level BPE tokenizer, read from a model directory's
 * tokenizer.json, encoding and decoding exactly as Hugging Face `tokenizers` does for
 * Qwen2.5-VL: added tokens matched in the raw text, NFC per segment, the Qwen2 split regex,
 * byte-level mapping, BPE by merge rank; lossy UTF-8 decoding and a streaming decoder.
 * A loaded tokenizer is never modified: threads may share one (encode keeps its caches per
 * call). */
#ifndef QVL_TOKENIZER_H
#define QVL_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct qvl_tokenizer qvl_tokenizer;

/* A growable list of token ids; zero-initialise, push, free. */
typedef struct qvl_ids {
	int32_t *ids;
	size_t n, cap;
} qvl_ids;

int qvl_ids_push(qvl_ids *ids, int32_t id, qvl_err *err);
void qvl_ids_free(qvl_ids *ids);

/* Loads DIR/tokenizer.json.  Nothing is written into the directory. */
qvl_tokenizer *qvl_tokenizer_load(const char *model_dir, qvl_err *err);
/* Loads a tokenizer.json file by path. */
qvl_tokenizer *qvl_tokenizer_load_file(const char *path, qvl_err *err);
void qvl_tokenizer_free(qvl_tokenizer *tok);

/* Appends the ids of text (len bytes, UTF-8) to *out.  Invalid UTF-8 is rejected with an
 * error naming the byte offset (the reference takes only valid strings). */
int qvl_tokenizer_encode(const qvl_tokenizer *tok, const char *text, size_t len, qvl_ids *out,
    qvl_err *err);

/* id of an exact token string (vocab or added token, e.g. "<|im_end|>"), or -1.  Vocabulary
 * strings are in the byte-level alphabet ("Ġthe"). */
int32_t qvl_tokenizer_token_id(const qvl_tokenizer *tok, const char *token);
/* The token string of id (byte-level alphabet, or the added token's content), or NULL. */
const char *qvl_tokenizer_token_str(const qvl_tokenizer *tok, int32_t id);
int qvl_tokenizer_vocab_size(const qvl_tokenizer *tok); /* highest id + 1 */
int qvl_tokenizer_is_special(const qvl_tokenizer *tok, int32_t id);
/* The special tokens of Qwen's grounding syntax (<|object_ref_start|>, <|box_start|>,
 * <|quad_start|> and their ends): skipped with the other special tokens by the reference's
 * decode, but qvl-boxes needs them to find Qwen2-VL style boxes. */
int qvl_tokenizer_is_grounding(const qvl_tokenizer *tok, int32_t id);
/* The raw bytes id stands for (byte-level mapping undone), and their count; NULL with
 * *len = 0 for an unknown id. */
const unsigned char *qvl_tokenizer_token_bytes(const qvl_tokenizer *tok, int32_t id,
    size_t *len);
/* The length of the longest token in bytes (for sizing qvl_detok_push buffers). */
size_t qvl_tokenizer_max_token_bytes(const qvl_tokenizer *tok);

/* Decodes ids to a malloc'd NUL-terminated UTF-8 string (lossy, as the reference: unknown ids
 * dropped, one U+FFFD per maximal invalid subpart).  *len (if not NULL) gets the length. */
char *qvl_tokenizer_decode(const qvl_tokenizer *tok, const int32_t *ids, size_t n,
    int skip_special, size_t *len, qvl_err *err);

/* Streaming: push ids one at a time, get only complete UTF-8 characters back. */
typedef struct qvl_detok {
	const qvl_tokenizer *tok;
	int skip_special;
	unsigned char pending[8];
	int npending;
} qvl_detok;

void qvl_detok_init(qvl_detok *d, const qvl_tokenizer *tok, int skip_special);
/* Writes the newly complete bytes into out (cap >= 64 + longest token) and returns their
 * count.  Invalid bytes come out as U+FFFD, exactly as a whole-sequence decode gives them. */
size_t qvl_detok_push(qvl_detok *d, int32_t id, char *out, size_t cap);
/* Whatever is still pending, as U+FFFD per invalid piece, at the end of a stream. */
size_t qvl_detok_flush(qvl_detok *d, char *out, size_t cap);

#endif
