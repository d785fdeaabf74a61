/* tokenizer_load.c: reads tokenizer.json into the tables of tokenizer_impl.h.
 *
 * The file is 7 MB, almost all of it the vocabulary (151,643 entries) and the merges (151,387).
 * jansson needs about 250 ms to build a tree of that, so this file scans the JSON itself
 * (tokjson.h): the vocabulary and the merges go straight into hash tables, and only the small
 * sections (added_tokens, normalizer, pre_tokenizer, the model's options) go to jansson. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tokenizer_impl.h"
#include "tokjson.h"

/* The Qwen2 split regex: the only pre-tokenizer pretok.c implements. */
static const char qwen2_regex[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

#define MAX_IDS (1 << 24) /* far above any real vocabulary; bounds what an id may allocate */

uint32_t
qvl_byte_char(unsigned char b)
{
	if ((b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || b >= 0xae)
		return b;
	if (b <= 0x20)
		return 256 + b;
	if (b >= 0x7f && b <= 0xa0)
		return 256 + 33 + (b - 0x7f);
	return 256 + 67; /* 0xad */
}

int
qvl_char_byte(uint32_t cp)
{
	if (cp < 256)
		return qvl_byte_char((unsigned char)cp) == cp ? (int)cp : -1;
	if (cp < 256 + 33)
		return (int)(cp - 256);
	if (cp < 256 + 67)
		return (int)(cp - 256 - 33 + 0x7f);
	if (cp == 256 + 67)
		return 0xad;
	return -1;
}

uint64_t
qvl_tok_hash(const unsigned char *s, size_t n)
{
	uint64_t h = 0x9e3779b97f4a7c15ULL ^ n, w;

	while (n >= 8) {
		memcpy(&w, s, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdULL;
		h ^= h >> 29;
		s += 8;
		n -= 8;
	}
	w = 0;
	memcpy(&w, s, n);
	h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 29;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 32;
	return h;
}

/* The slot image of a key: its length and first bytes, zero-padded. */
static void
slot_key(const unsigned char *s, size_t n, unsigned char out[1 + QVL_VOCAB_INLINE])
{
	memset(out, 0, 1 + QVL_VOCAB_INLINE);
	out[0] = (unsigned char)(n < 255 ? n : 255);
	memcpy(out + 1, s, n < QVL_VOCAB_INLINE ? n : QVL_VOCAB_INLINE);
}

int32_t
qvl_tok_lookup(const qvl_tokenizer *tok, const unsigned char *s, size_t n)
{
	return qvl_tok_lookup_hashed(tok, s, n, qvl_tok_hash(s, n));
}

int32_t
qvl_tok_lookup_hashed(const qvl_tokenizer *tok, const unsigned char *s, size_t n, uint64_t hash)
{
	unsigned char want[1 + QVL_VOCAB_INLINE];
	const qvl_vocab_slot *slot;
	size_t i;
	uint32_t id;

	slot_key(s, n, want);
	for (i = hash & tok->slot_mask; tok->slots[i].id1 != 0;
	    i = (i + 1) & tok->slot_mask) {
		slot = &tok->slots[i];
		if (memcmp(&slot->len, want, sizeof(want)) != 0)
			continue;
		id = slot->id1 - 1;
		if (n <= QVL_VOCAB_INLINE || (tok->raw_len[id] == n &&
		    memcmp(tok->raw + tok->raw_off[id], s, n) == 0))
			return (int32_t)id;
	}
	return -1;
}

/* Inserts a vocabulary string; a string already present keeps its first id (returns 0). */
static int
vocab_insert(qvl_tokenizer *tok, const unsigned char *s, size_t n, uint64_t hash, uint32_t id)
{
	unsigned char key[1 + QVL_VOCAB_INLINE];
	qvl_vocab_slot *slot;
	size_t i;
	uint32_t other;

	slot_key(s, n, key);
	for (i = hash & tok->slot_mask; tok->slots[i].id1 != 0; i = (i + 1) & tok->slot_mask) {
		slot = &tok->slots[i];
		other = slot->id1 - 1;
		if (memcmp(&slot->len, key, sizeof(key)) == 0 && tok->raw_len[other] == n &&
		    memcmp(tok->raw + tok->raw_off[other], s, n) == 0)
			return 0;
	}
	slot = &tok->slots[i];
	slot->id1 = id + 1;
	slot->len = key[0];
	memcpy(slot->key, key + 1, QVL_VOCAB_INLINE);
	return 1;
}

/* Undoes the byte-level mapping of a token string; a string with a character outside the
 * alphabet stands for its own UTF-8 bytes, as the reference's ByteLevel decoder has it. */
size_t
qvl_tok_byte_level_decode(const unsigned char *s, size_t n, unsigned char *out)
{
	size_t i = 0, o = 0, next;
	uint32_t cp;
	int b;

	while (i < n) {
		if (s[i] < 0x80) {
			cp = s[i];
			next = i + 1;
		} else if ((s[i] & 0xe0) == 0xc0 && i + 1 < n) {
			cp = (uint32_t)(s[i] & 0x1f) << 6 | (s[i + 1] & 0x3f);
			next = i + 2;
		} else
			goto verbatim;
		if ((b = qvl_char_byte(cp)) < 0)
			goto verbatim;
		out[o++] = (unsigned char)b;
		i = next;
	}
	return o;
verbatim:
	memcpy(out, s, n);
	return n;
}

/* Vocabulary entries as read, before the id tables exist. */
typedef struct entry {
	uint32_t id, raw_off, raw_len, str_off;
	uint64_t hash; /* of the raw bytes */
} entry;

typedef struct loader {
	qvl_tokjson_scan s;
	qvl_tokjson_buf raw, str, tmp;
	entry *ents;
	size_t nents, cap_ents;
	uint32_t max_id;
	const char *merges_at; /* where the merges array starts, read after the vocabulary */
} loader;

static int
add_entry(loader *L, long id, const char *s, size_t n)
{
	entry *e;

	if (id < 0 || id >= MAX_IDS)
		return qvl_fail(L->s.err, "token id %ld out of range", id);
	if (L->nents == L->cap_ents) {
		size_t cap = L->cap_ents ? 2 * L->cap_ents : 1024;

		if ((e = realloc(L->ents, cap * sizeof(*e))) == NULL)
			return qvl_fail(L->s.err, "out of memory");
		L->ents = e;
		L->cap_ents = cap;
	}
	if (qvl_tokjson_buf_reserve(&L->raw, n, L->s.err) < 0 || qvl_tokjson_buf_reserve(&L->str, n + 1, L->s.err) < 0)
		return -1;
	e = &L->ents[L->nents++];
	e->id = (uint32_t)id;
	e->str_off = (uint32_t)L->str.n;
	memcpy(L->str.p + L->str.n, s, n);
	L->str.p[L->str.n + n] = '\0';
	L->str.n += n + 1;
	e->raw_off = (uint32_t)L->raw.n;
	e->raw_len = (uint32_t)qvl_tok_byte_level_decode((const unsigned char *)s, n,
	    (unsigned char *)L->raw.p + L->raw.n);
	e->hash = qvl_tok_hash((unsigned char *)L->raw.p + e->raw_off, e->raw_len);
	L->raw.n += e->raw_len;
	if (e->id > L->max_id)
		L->max_id = e->id;
	return 0;
}

static int
read_vocab(loader *L)
{
	qvl_tokjson_scan *s = &L->s;
	long id;
	int more;

	if (qvl_tokjson_expect(s, '{') < 0)
		return -1;
	if (qvl_tokjson_empty(s, '}'))
		return 0;
	do {
		if (qvl_tokjson_read_string(s, &L->tmp) < 0 || qvl_tokjson_expect(s, ':') < 0 || qvl_tokjson_read_int(s, &id) < 0)
			return -1;
		if (add_entry(L, id, L->tmp.p, L->tmp.n) < 0)
			return -1;
	} while ((more = qvl_tokjson_next_item(s, '}')) == 1);
	return more;
}

/* Builds the id tables and the vocabulary hash from the entries read so far. */
static int
build_tables(qvl_tokenizer *tok, loader *L, size_t nvocab, qvl_err *err)
{
	size_t i, cap;
	entry *e;

	tok->nids = (size_t)L->max_id + 1;
	tok->raw_off = calloc(tok->nids, sizeof(uint32_t));
	tok->raw_len = calloc(tok->nids, sizeof(uint32_t));
	tok->str_off = calloc(tok->nids, sizeof(uint32_t));
	tok->flags = calloc(tok->nids, 1);
	for (cap = 16; cap < nvocab + nvocab / 2 + 16; cap *= 2)
		;
	tok->slots = calloc(cap, sizeof(*tok->slots));
	tok->slot_mask = cap - 1;
	if (tok->raw_off == NULL || tok->raw_len == NULL || tok->str_off == NULL ||
	    tok->flags == NULL || tok->slots == NULL)
		return qvl_fail(err, "out of memory");
	tok->raw = (unsigned char *)L->raw.p;
	tok->str = L->str.p;
	L->raw.p = L->str.p = NULL;
	for (i = 0; i < L->nents; i++) {
		if (i + 16 < nvocab) /* insertion is miss-bound too: look ahead */
			__builtin_prefetch(&tok->slots[L->ents[i + 16].hash & tok->slot_mask]);
		e = &L->ents[i];
		tok->raw_off[e->id] = e->raw_off;
		tok->raw_len[e->id] = e->raw_len;
		tok->str_off[e->id] = e->str_off;
		if (i < nvocab) {
			tok->flags[e->id] |= TOK_VOCAB;
			if (!vocab_insert(tok, tok->raw + e->raw_off, e->raw_len, e->hash, e->id))
				continue; /* a duplicate string keeps its first id */
		} else
			tok->flags[e->id] = TOK_ADDED; /* an added token shadows a vocab id */
		if (e->raw_len > tok->max_raw_len)
			tok->max_raw_len = e->raw_len;
	}
	for (i = 0; i < 256; i++) {
		unsigned char b = (unsigned char)i;

		if ((tok->byte_id[i] = qvl_tok_lookup(tok, &b, 1)) < 0)
			return qvl_fail(err, "vocabulary: no token for byte 0x%02zx", i);
	}
	return 0;
}

/* A merge's two sides as raw bytes: "left right" or ["left", "right"]. */
static int
read_merge(loader *L, qvl_tokjson_buf *left, qvl_tokjson_buf *right)
{
	qvl_tokjson_scan *s = &L->s;
	unsigned char *sp;
	size_t n;

	qvl_tokjson_skip_ws(s);
	if (s->p < s->end && *s->p == '[') {
		s->p++;
		if (qvl_tokjson_read_string(s, &L->tmp) < 0)
			return -1;
		if (qvl_tokjson_buf_reserve(left, L->tmp.n, s->err) < 0)
			return -1;
		left->n = qvl_tok_byte_level_decode((unsigned char *)L->tmp.p, L->tmp.n,
		    (unsigned char *)left->p);
		if (qvl_tokjson_expect(s, ',') < 0 || qvl_tokjson_read_string(s, &L->tmp) < 0 || qvl_tokjson_expect(s, ']') < 0)
			return -1;
		if (qvl_tokjson_buf_reserve(right, L->tmp.n, s->err) < 0)
			return -1;
		right->n = qvl_tok_byte_level_decode((unsigned char *)L->tmp.p, L->tmp.n,
		    (unsigned char *)right->p);
		return 0;
	}
	if (qvl_tokjson_read_string(s, &L->tmp) < 0)
		return -1;
	sp = memchr(L->tmp.p, ' ', L->tmp.n);
	if (sp == NULL || memchr(sp + 1, ' ', L->tmp.n - (size_t)(sp - (unsigned char *)L->tmp.p) - 1))
		return qvl_tokjson_scan_fail(s, "merge is not two tokens separated by a space");
	n = (size_t)(sp - (unsigned char *)L->tmp.p);
	if (qvl_tokjson_buf_reserve(left, n, s->err) < 0 || qvl_tokjson_buf_reserve(right, L->tmp.n, s->err) < 0)
		return -1;
	left->n = qvl_tok_byte_level_decode((unsigned char *)L->tmp.p, n, (unsigned char *)left->p);
	right->n = qvl_tok_byte_level_decode(sp + 1, L->tmp.n - n - 1, (unsigned char *)right->p);
	return 0;
}

/* Merges are read in batches whose hash slots are prefetched before any is looked up: the
 * vocabulary table is larger than the caches, and waiting for one miss at a time is most of
 * the load time otherwise. */
#define MERGE_BATCH 64

typedef struct merge_batch {
	qvl_tokjson_buf bytes;                     /* left then right, for each merge */
	size_t off[MERGE_BATCH], left[MERGE_BATCH], right[MERGE_BATCH];
	uint64_t hash[MERGE_BATCH][3]; /* left, right, left + right */
	int n;
} merge_batch;

static int
flush_batch(qvl_tokenizer *tok, merge_batch *mb, size_t first_rank, qvl_err *err)
{
	const unsigned char *p;
	int32_t id[MERGE_BATCH][3];
	int i, k;
	size_t len[3];

	for (i = 0; i < mb->n; i++) {
		p = (const unsigned char *)mb->bytes.p + mb->off[i];
		mb->hash[i][0] = qvl_tok_hash(p, mb->left[i]);
		mb->hash[i][1] = qvl_tok_hash(p + mb->left[i], mb->right[i]);
		mb->hash[i][2] = qvl_tok_hash(p, mb->left[i] + mb->right[i]);
		for (k = 0; k < 3; k++)
			__builtin_prefetch(&tok->slots[mb->hash[i][k] & tok->slot_mask]);
	}
	for (i = 0; i < mb->n; i++) {
		p = (const unsigned char *)mb->bytes.p + mb->off[i];
		len[0] = mb->left[i];
		len[1] = mb->right[i];
		len[2] = mb->left[i] + mb->right[i];
		for (k = 0; k < 3; k++)
			id[i][k] = qvl_tok_lookup_hashed(tok, p + (k == 1 ? len[0] : 0), len[k],
			    mb->hash[i][k]);
		if (id[i][0] < 0 || id[i][1] < 0 || id[i][2] < 0)
			return qvl_fail(err, "merge %zu: token not in the vocabulary",
			    first_rank + (size_t)i);
		qvl_bpe_prefetch(&tok->bpe, id[i][0], id[i][1]);
	}
	for (i = 0; i < mb->n; i++)
		if (qvl_bpe_add(&tok->bpe, id[i][0], id[i][1], (int32_t)(first_rank + (size_t)i),
		    id[i][2], err) < 0)
			return -1;
	mb->n = 0;
	mb->bytes.n = 0;
	return 0;
}

static int
read_merges(qvl_tokenizer *tok, loader *L)
{
	qvl_tokjson_scan *s = &L->s;
	qvl_tokjson_buf left = { 0 }, right = { 0 };
	merge_batch mb = { .n = 0 };
	size_t count = 0;
	int more, r = -1;

	/* BPE makes one token per merge, so the vocabulary size is a good first size. */
	if (qvl_bpe_init(&tok->bpe, tok->nids, s->err) < 0)
		return -1;
	s->p = L->merges_at;
	if (qvl_tokjson_expect(s, '[') < 0)
		return -1;
	for (count = 0; !qvl_tokjson_empty(s, ']');) {
		if (read_merge(L, &left, &right) < 0 ||
		    qvl_tokjson_buf_reserve(&mb.bytes, left.n + right.n, s->err) < 0)
			goto out;
		mb.off[mb.n] = mb.bytes.n;
		mb.left[mb.n] = left.n;
		mb.right[mb.n] = right.n;
		/* an empty side has no buffer yet: no copy from a null pointer */
		if (left.n > 0)
			memcpy(mb.bytes.p + mb.bytes.n, left.p, left.n);
		if (right.n > 0)
			memcpy(mb.bytes.p + mb.bytes.n + left.n, right.p, right.n);
		mb.bytes.n += left.n + right.n;
		if (++mb.n == MERGE_BATCH) {
			if (flush_batch(tok, &mb, count, s->err) < 0)
				goto out;
			count += MERGE_BATCH;
		}
		if ((more = qvl_tokjson_next_item(s, ']')) < 0)
			goto out;
		if (more == 0)
			break;
	}
	r = flush_batch(tok, &mb, count, s->err);
out:
	free(left.p);
	free(right.p);
	free(mb.bytes.p);
	return r;
}

static int
check_pre_tokenizer(json_t *pre, qvl_err *err)
{
	json_t *list, *item;
	const char *type, *regex;
	size_t i;
	int splits = 0;

	if (pre == NULL || !json_is_object(pre))
		return qvl_fail(err, "pre_tokenizer: missing (only Qwen2's is supported)");
	type = json_string_value(json_object_get(pre, "type"));
	list = type && strcmp(type, "Sequence") == 0 ? json_object_get(pre, "pretokenizers") : NULL;
	for (i = 0; list ? i < json_array_size(list) : i < 1; i++) {
		item = list ? json_array_get(list, i) : pre;
		type = json_string_value(json_object_get(item, "type"));
		if (type && strcmp(type, "Split") == 0) {
			regex = json_string_value(json_object_get(json_object_get(item, "pattern"),
			    "Regex"));
			if (regex == NULL || strcmp(regex, qwen2_regex) != 0 ||
			    json_is_true(json_object_get(item, "invert")) ||
			    !json_is_string(json_object_get(item, "behavior")) ||
			    strcmp(json_string_value(json_object_get(item, "behavior")),
			    "Isolated") != 0)
				return qvl_fail(err, "pre_tokenizer: only the Qwen2 split is supported");
			splits++;
		} else if (type && strcmp(type, "ByteLevel") == 0) {
			if (json_is_true(json_object_get(item, "use_regex")) ||
			    json_is_true(json_object_get(item, "add_prefix_space")))
				return qvl_fail(err, "pre_tokenizer: ByteLevel with use_regex or "
				    "add_prefix_space is not supported");
		} else
			return qvl_fail(err, "pre_tokenizer: %s is not supported",
			    type ? type : "(no type)");
	}
	if (splits != 1)
		return qvl_fail(err, "pre_tokenizer: only the Qwen2 split is supported");
	return 0;
}

static int
check_model_option(const char *key, json_t *v, qvl_tokenizer *tok, qvl_err *err)
{
	if (strcmp(key, "type") == 0) {
		if (!json_is_string(v) || strcmp(json_string_value(v), "BPE") != 0)
			return qvl_fail(err, "model: only BPE is supported");
	} else if (strcmp(key, "dropout") == 0 || strcmp(key, "unk_token") == 0) {
		if (!json_is_null(v) && !(json_is_number(v) && json_number_value(v) == 0))
			return qvl_fail(err, "model: %s is not supported", key);
	} else if (strcmp(key, "continuing_subword_prefix") == 0 ||
	    strcmp(key, "end_of_word_suffix") == 0) {
		if (!json_is_null(v) && !(json_is_string(v) && json_string_length(v) == 0))
			return qvl_fail(err, "model: %s is not supported", key);
	} else if (strcmp(key, "byte_fallback") == 0 || strcmp(key, "fuse_unk") == 0) {
		if (json_is_true(v))
			return qvl_fail(err, "model: %s is not supported", key);
	} else if (strcmp(key, "ignore_merges") == 0)
		tok->ignore_merges = json_is_true(v);
	return 0;
}

static int
read_model(qvl_tokenizer *tok, loader *L)
{
	qvl_tokjson_scan *s = &L->s;
	char key[64];
	json_t *v;
	int more, r;

	if (qvl_tokjson_expect(s, '{') < 0)
		return -1;
	if (qvl_tokjson_empty(s, '}'))
		return qvl_fail(s->err, "model: no vocabulary");
	do {
		if (qvl_tokjson_read_string(s, &L->tmp) < 0 || qvl_tokjson_expect(s, ':') < 0)
			return -1;
		snprintf(key, sizeof(key), "%.*s", (int)L->tmp.n, L->tmp.p);
		if (strcmp(key, "vocab") == 0) {
			if (read_vocab(L) < 0)
				return qvl_err_prefix(s->err, "model.vocab");
		} else if (strcmp(key, "merges") == 0) {
			qvl_tokjson_skip_ws(s);
			L->merges_at = s->p;
			if (qvl_tokjson_skip_value(s) < 0)
				return -1;
		} else {
			if ((v = qvl_tokjson_load_span(s)) == NULL)
				return -1;
			r = check_model_option(key, v, tok, s->err);
			json_decref(v);
			if (r < 0)
				return -1;
		}
	} while ((more = qvl_tokjson_next_item(s, '}')) == 1);
	return more;
}

static int
by_length_desc(const void *a, const void *b)
{
	const qvl_added_token *x = a, *y = b;

	return x->len < y->len ? 1 : x->len > y->len ? -1 : 0;
}

static int
read_added(qvl_tokenizer *tok, loader *L, json_t *added, qvl_err *err)
{
	json_t *item;
	const char *content;
	size_t i, n = json_array_size(added);
	json_int_t id;

	if (added != NULL && !json_is_array(added))
		return qvl_fail(err, "added_tokens: not an array");
	if (n == 0)
		return 0;
	if ((tok->added = calloc(n, sizeof(*tok->added))) == NULL)
		return qvl_fail(err, "out of memory");
	json_array_foreach(added, i, item) {
		content = json_string_value(json_object_get(item, "content"));
		id = json_integer_value(json_object_get(item, "id"));
		if (content == NULL || json_string_length(json_object_get(item, "content")) == 0 ||
		    !json_is_integer(json_object_get(item, "id")))
			return qvl_fail(err, "added_tokens[%zu]: no content or id", i);
		if (json_is_true(json_object_get(item, "lstrip")) ||
		    json_is_true(json_object_get(item, "rstrip")) ||
		    json_is_true(json_object_get(item, "single_word")))
			return qvl_fail(err, "added_tokens[%zu]: lstrip, rstrip and single_word are "
			    "not supported", i);
		if (add_entry(L, (long)id, content, strlen(content)) < 0)
			return qvl_err_prefix(err, "added_tokens[%zu]", i);
		tok->added[i].len = json_string_length(json_object_get(item, "content"));
		if ((tok->added[i].content = strdup(content)) == NULL)
			return qvl_fail(err, "out of memory");
		tok->added[i].id = (int32_t)id;
		tok->added[i].special = json_is_true(json_object_get(item, "special"));
		tok->added_first[(unsigned char)content[0]] = 1;
		tok->nadded++;
	}
	qsort(tok->added, (size_t)tok->nadded, sizeof(*tok->added), by_length_desc);
	return 0;
}

static int
read_file(qvl_tokenizer *tok, const char *data, size_t size, qvl_err *err)
{
	loader L = { .s = { data, data, data + size, err } };
	json_t *added = NULL, *pre = NULL, *norm = NULL, **keep;
	const char *type;
	size_t nvocab;
	int i, more, r = -1;

	/* The token strings are about a sixth of the file: reserve once instead of regrowing. */
	if (qvl_tokjson_buf_reserve(&L.raw, size / 6, err) < 0 || qvl_tokjson_buf_reserve(&L.str, size / 6, err) < 0)
		goto out;
	if (qvl_tokjson_expect(&L.s, '{') < 0)
		goto out;
	if (qvl_tokjson_empty(&L.s, '}')) {
		qvl_fail(err, "no model");
		goto out;
	}
	do {
		if (qvl_tokjson_read_string(&L.s, &L.tmp) < 0 || qvl_tokjson_expect(&L.s, ':') < 0)
			goto out;
		keep = NULL;
		if (L.tmp.n == 12 && memcmp(L.tmp.p, "added_tokens", 12) == 0)
			keep = &added;
		else if (L.tmp.n == 13 && memcmp(L.tmp.p, "pre_tokenizer", 13) == 0)
			keep = &pre;
		else if (L.tmp.n == 10 && memcmp(L.tmp.p, "normalizer", 10) == 0)
			keep = &norm;
		if (L.tmp.n == 5 && memcmp(L.tmp.p, "model", 5) == 0) {
			if (read_model(tok, &L) < 0)
				goto out;
		} else if (keep != NULL) {
			json_decref(*keep);
			if ((*keep = qvl_tokjson_load_span(&L.s)) == NULL)
				goto out;
		} else if (qvl_tokjson_skip_value(&L.s) < 0)
			goto out;
	} while ((more = qvl_tokjson_next_item(&L.s, '}')) == 1);
	if (more < 0)
		goto out;
	if (L.nents == 0 || L.merges_at == NULL) {
		qvl_fail(err, "model: no vocabulary or no merges");
		goto out;
	}
	if (check_pre_tokenizer(pre, err) < 0)
		goto out;
	type = json_string_value(json_object_get(norm, "type"));
	if (norm != NULL && !json_is_null(norm) && (type == NULL || strcmp(type, "NFC") != 0)) {
		qvl_fail(err, "normalizer: only NFC is supported");
		goto out;
	}
	tok->nfc = type != NULL;
	nvocab = L.nents;
	if (read_added(tok, &L, added, err) < 0 || build_tables(tok, &L, nvocab, err) < 0)
		goto out;
	for (i = 0; i < tok->nadded; i++)
		if (tok->added[i].special)
			tok->flags[tok->added[i].id] |= TOK_SPECIAL;
	r = read_merges(tok, &L);
out:
	json_decref(added);
	json_decref(pre);
	json_decref(norm);
	free(L.raw.p);
	free(L.str.p);
	free(L.tmp.p);
	free(L.ents);
	return r;
}

qvl_tokenizer *
qvl_tokenizer_load_file(const char *path, qvl_err *err)
{
	qvl_tokenizer *tok;
	struct stat st;
	void *map;
	int fd, r;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		qvl_fail_errno(err, "%s", path);
		return NULL;
	}
	if (fstat(fd, &st) < 0 || st.st_size <= 0) {
		if (st.st_size <= 0)
			qvl_fail(err, "%s: empty file", path);
		else
			qvl_fail_errno(err, "%s", path);
		close(fd);
		return NULL;
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED) {
		qvl_fail_errno(err, "%s: mmap", path);
		return NULL;
	}
	if ((tok = calloc(1, sizeof(*tok))) == NULL) {
		munmap(map, (size_t)st.st_size);
		qvl_fail(err, "out of memory");
		return NULL;
	}
	r = read_file(tok, map, (size_t)st.st_size, err);
	munmap(map, (size_t)st.st_size);
	if (r < 0) {
		qvl_err_prefix(err, "%s", path);
		qvl_tokenizer_free(tok);
		return NULL;
	}
	return tok;
}

qvl_tokenizer *
qvl_tokenizer_load(const char *model_dir, qvl_err *err)
{
	char path[4096];

	if ((size_t)snprintf(path, sizeof(path), "%s/tokenizer.json", model_dir) >= sizeof(path)) {
		qvl_fail(err, "%s: path too long", model_dir);
		return NULL;
	}
	return qvl_tokenizer_load_file(path, err);
}

void
qvl_tokenizer_free(qvl_tokenizer *tok)
{
	int i;

	if (tok == NULL)
		return;
	free(tok->raw_off);
	free(tok->raw_len);
	free(tok->str_off);
	free(tok->raw);
	free(tok->str);
	free(tok->flags);
	free(tok->slots);
	for (i = 0; i < tok->nadded; i++)
		free(tok->added[i].content);
	free(tok->added);
	qvl_bpe_free(&tok->bpe);
	free(tok);
}
