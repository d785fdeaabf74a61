/* tokenizer_impl.h: the tokenizer's tables, shared by tokenizer_load.c (which builds them from
 * tokenizer.json) and tokenizer.c (which encodes and decodes).  Not part of the public API. */
#ifndef QVL_TOKENIZER_IMPL_H
#define QVL_TOKENIZER_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "bpe.h"
#include "tokenizer.h"

enum { TOK_VOCAB = 1, TOK_ADDED = 2, TOK_SPECIAL = 4 };

/* A vocabulary hash slot keeps tokens of up to 11 bytes inline (nearly all of them), so that a
 * lookup is one cache miss; longer ones are compared with the token table. */
#define QVL_VOCAB_INLINE 11
typedef struct qvl_vocab_slot {
	uint32_t id1; /* id + 1; 0 = empty */
	uint8_t len;  /* length, 255 for 255 and more */
	unsigned char key[QVL_VOCAB_INLINE]; /* the first bytes, zero-padded */
} qvl_vocab_slot;

typedef struct qvl_added_token {
	char *content;
	size_t len;
	int32_t id;
	int special;
} qvl_added_token;

struct qvl_tokenizer {
	size_t nids;            /* highest id + 1 */
	/* id -> the raw bytes it stands for, and its string in the byte-level alphabet */
	uint32_t *raw_off, *raw_len, *str_off;
	unsigned char *raw;
	char *str;
	uint8_t *flags;         /* TOK_* per id; 0 = no token has this id */
	/* raw bytes -> vocabulary id, open addressing */
	struct qvl_vocab_slot *slots;
	size_t slot_mask;
	qvl_added_token *added; /* longest first, so that the first match is the longest */
	int nadded;
	unsigned char added_first[256]; /* bytes that start an added token */
	qvl_bpe bpe;
	int32_t byte_id[256];   /* the token of each single byte */
	int ignore_merges;      /* a piece that is a whole vocabulary token skips BPE */
	int nfc;                /* normalizer: NFC (else none) */
	size_t max_raw_len;
};

/* Hash of a byte string (for the vocabulary and the piece cache). */
uint64_t qvl_tok_hash(const unsigned char *s, size_t n);
/* The vocabulary id of the raw bytes s, or -1. */
int32_t qvl_tok_lookup(const qvl_tokenizer *tok, const unsigned char *s, size_t n);
int32_t qvl_tok_lookup_hashed(const qvl_tokenizer *tok, const unsigned char *s, size_t n,
    uint64_t hash);

/* GPT-2's bytes_to_unicode: the character of each byte, and back (-1 = not in the alphabet). */
uint32_t qvl_byte_char(unsigned char b);
int qvl_char_byte(uint32_t cp);

/* Undoes the byte-level mapping of a token string into out (room for n bytes); a string with
 * a character outside the alphabet stands for its own bytes.  Returns the length. */
size_t qvl_tok_byte_level_decode(const unsigned char *s, size_t n, unsigned char *out);

#endif
