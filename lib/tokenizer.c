/* tokenizer.c: encoding (added tokens, NFC, split, byte-level BPE with a piece cache) and
 * decoding (lossy UTF-8, whole and streamed) over the tables tokenizer_load.c builds. */
#include <stdlib.h>
#include <string.h>
#include "nfc.h"
#include "pretok.h"
#include "tokenizer_impl.h"

int
qvl_ids_push(qvl_ids *ids, int32_t id, qvl_err *err)
{
	int32_t *p;
	size_t cap;

	if (ids->n == ids->cap) {
		cap = ids->cap ? 2 * ids->cap : 64;
		if ((p = realloc(ids->ids, cap * sizeof(*p))) == NULL)
			return qvl_fail(err, "token ids: out of memory");
		ids->ids = p;
		ids->cap = cap;
	}
	ids->ids[ids->n++] = id;
	return 0;
}

void
qvl_ids_free(qvl_ids *ids)
{
	free(ids->ids);
	ids->ids = NULL;
	ids->n = ids->cap = 0;
}

/* Pieces repeat (words, spaces, punctuation), so each encode call keeps a direct-mapped cache
 * of piece -> ids; an entry is one cache line.  Pieces too long for an entry go to BPE. */
#define CACHE_KEY 30
#define CACHE_IDS 8
typedef struct cache_entry {
	uint8_t key_len, nids;
	unsigned char key[CACHE_KEY];
	int32_t ids[CACHE_IDS];
} cache_entry;

typedef struct encoder {
	const qvl_tokenizer *tok;
	qvl_ids *out;
	cache_entry *cache;
	size_t cache_mask;
	int32_t *syms, *scratch;
	size_t cap_syms;
	qvl_err *err;
} encoder;

static int
push_ids(encoder *E, const int32_t *ids, size_t n)
{
	qvl_ids *out = E->out;
	int32_t *p;
	size_t cap;

	if (out->n + n > out->cap) {
		cap = out->cap ? out->cap : 64;
		while (cap < out->n + n)
			cap *= 2;
		if ((p = realloc(out->ids, cap * sizeof(*p))) == NULL)
			return qvl_fail(E->err, "token ids: out of memory");
		out->ids = p;
		out->cap = cap;
	}
	memcpy(out->ids + out->n, ids, n * sizeof(*ids));
	out->n += n;
	return 0;
}

static int
encode_piece(encoder *E, const unsigned char *s, size_t n)
{
	const qvl_tokenizer *tok = E->tok;
	cache_entry *ce = NULL;
	size_t i, m, need;
	int32_t id, *p;

	if (n == 1)
		return push_ids(E, &tok->byte_id[s[0]], 1);
	if (n <= CACHE_KEY) {
		ce = &E->cache[qvl_tok_hash(s, n) & E->cache_mask];
		if (ce->key_len == n && memcmp(ce->key, s, n) == 0)
			return push_ids(E, ce->ids, ce->nids);
	}
	if (tok->ignore_merges && (id = qvl_tok_lookup(tok, s, n)) >= 0)
		return push_ids(E, &id, 1);
	need = 8 * n + 8;
	if (need > E->cap_syms) {
		if ((p = realloc(E->syms, need * sizeof(*p))) == NULL)
			return qvl_fail(E->err, "out of memory");
		E->syms = p;
		if ((p = realloc(E->scratch, need * sizeof(*p))) == NULL)
			return qvl_fail(E->err, "out of memory");
		E->scratch = p;
		E->cap_syms = need;
	}
	for (i = 0; i < n; i++)
		E->syms[i] = tok->byte_id[s[i]];
	m = qvl_bpe_apply(&tok->bpe, E->syms, n, E->scratch, QVL_BPE_HEAP_MIN);
	if (ce != NULL && m <= CACHE_IDS) {
		ce->key_len = (uint8_t)n;
		ce->nids = (uint8_t)m;
		memcpy(ce->key, s, n);
		memcpy(ce->ids, E->syms, m * sizeof(int32_t));
	}
	return push_ids(E, E->syms, m);
}

/* NFC, then split and BPE, of text between added tokens. */
static int
encode_segment(encoder *E, const unsigned char *s, size_t n)
{
	unsigned char *norm = NULL;
	size_t pos, end;
	int rc = 0;

	if (n == 0)
		return 0;
	if (E->tok->nfc && qvl_nfc_needed(s, n)) {
		if (qvl_nfc(s, n, &norm, &n, E->err) < 0)
			return -1;
		s = norm;
	}
	for (pos = 0; pos < n && rc == 0; pos = end) {
		end = qvl_pretok_piece(s, n, pos);
		rc = encode_piece(E, s + pos, end - pos);
	}
	free(norm);
	return rc;
}

/* The leftmost (then longest) added token in s[from..n); returns its start or n. */
static size_t
find_added(const qvl_tokenizer *tok, const unsigned char *s, size_t n, size_t from,
    const qvl_added_token **which)
{
	size_t i;
	int k;

	for (i = from; i < n; i++) {
		if (!tok->added_first[s[i]])
			continue;
		for (k = 0; k < tok->nadded; k++)
			if (tok->added[k].len <= n - i &&
			    memcmp(s + i, tok->added[k].content, tok->added[k].len) == 0) {
				*which = &tok->added[k];
				return i;
			}
	}
	return n;
}

int
qvl_tokenizer_encode(const qvl_tokenizer *tok, const char *text, size_t len, qvl_ids *out,
    qvl_err *err)
{
	const unsigned char *s = (const unsigned char *)text;
	const qvl_added_token *at = NULL;
	encoder E = { .tok = tok, .out = out, .err = err };
	size_t bad, pos, m, cache_n;
	int rc = 0;

	if ((bad = qvl_utf8_check(s, len)) != len)
		return qvl_fail(err, "invalid UTF-8 at byte offset %zu", bad);
	/* About one cache entry per four bytes of text, within 256..64K entries. */
	for (cache_n = 256; cache_n < len / 4 && cache_n < 65536; cache_n *= 2)
		;
	if ((E.cache = calloc(cache_n, sizeof(*E.cache))) == NULL)
		return qvl_fail(err, "out of memory");
	E.cache_mask = cache_n - 1;
	for (pos = 0; pos < len && rc == 0;) {
		m = find_added(tok, s, len, pos, &at);
		rc = encode_segment(&E, s + pos, m - pos);
		if (m == len || rc < 0)
			break;
		rc = qvl_ids_push(out, at->id, err);
		pos = m + at->len;
	}
	free(E.cache);
	free(E.syms);
	free(E.scratch);
	return rc;
}

int32_t
qvl_tokenizer_token_id(const qvl_tokenizer *tok, const char *token)
{
	size_t n = strlen(token), rn;
	unsigned char *raw;
	int32_t id;
	int k;

	for (k = 0; k < tok->nadded; k++)
		if (tok->added[k].len == n && memcmp(tok->added[k].content, token, n) == 0)
			return tok->added[k].id;
	/* Vocabulary strings are in the byte-level alphabet; the table is keyed by raw bytes. */
	if ((raw = malloc(n + 1)) == NULL)
		return -1;
	rn = qvl_tok_byte_level_decode((const unsigned char *)token, n, raw);
	id = qvl_tok_lookup(tok, raw, rn);
	free(raw);
	if (id >= 0 && strcmp(tok->str + tok->str_off[id], token) != 0)
		id = -1;
	return id;
}

const char *
qvl_tokenizer_token_str(const qvl_tokenizer *tok, int32_t id)
{
	if (id < 0 || (size_t)id >= tok->nids || tok->flags[id] == 0)
		return NULL;
	return tok->str + tok->str_off[id];
}

int
qvl_tokenizer_vocab_size(const qvl_tokenizer *tok)
{
	return (int)tok->nids;
}

int
qvl_tokenizer_is_special(const qvl_tokenizer *tok, int32_t id)
{
	return id >= 0 && (size_t)id < tok->nids && (tok->flags[id] & TOK_SPECIAL) != 0;
}

int
qvl_tokenizer_is_grounding(const qvl_tokenizer *tok, int32_t id)
{
	static const char *const names[] = {"<|object_ref_start|>", "<|object_ref_end|>",
	    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>"};
	const char *s;

	if (!qvl_tokenizer_is_special(tok, id) || (s = qvl_tokenizer_token_str(tok, id)) == NULL)
		return 0;
	for (size_t i = 0; i < sizeof names / sizeof *names; i++)
		if (strcmp(s, names[i]) == 0)
			return 1;
	return 0;
}

const unsigned char *
qvl_tokenizer_token_bytes(const qvl_tokenizer *tok, int32_t id, size_t *len)
{
	if (id < 0 || (size_t)id >= tok->nids || tok->flags[id] == 0) {
		*len = 0;
		return NULL;
	}
	*len = tok->raw_len[id];
	return tok->raw + tok->raw_off[id];
}

size_t
qvl_tokenizer_max_token_bytes(const qvl_tokenizer *tok)
{
	return tok->max_raw_len;
}

/* Lossy UTF-8 as WHATWG (and Rust's from_utf8_lossy): each maximal invalid subpart becomes one
 * U+FFFD.  Converts in[0..n) into out (room for 3 * n bytes); with final == 0 an incomplete
 * sequence at the end is not converted, and *used tells where it starts. */
static size_t
lossy_utf8(const unsigned char *in, size_t n, char *out, int final, size_t *used)
{
	size_t i = 0, o = 0, k, need;
	unsigned char b, lo, hi;

	while (i < n) {
		b = in[i];
		if (b < 0x80) {
			out[o++] = (char)b;
			i++;
			continue;
		}
		lo = 0x80, hi = 0xbf;
		if (b >= 0xc2 && b <= 0xdf)
			need = 1;
		else if (b >= 0xe0 && b <= 0xef) {
			need = 2;
			lo = b == 0xe0 ? 0xa0 : 0x80;
			hi = b == 0xed ? 0x9f : 0xbf;
		} else if (b >= 0xf0 && b <= 0xf4) {
			need = 3;
			lo = b == 0xf0 ? 0x90 : 0x80;
			hi = b == 0xf4 ? 0x8f : 0xbf;
		} else {
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
			continue;
		}
		/* k = how many bytes of the sequence are valid so far */
		for (k = 1; k <= need && i + k < n; k++) {
			if (k == 1 ? (in[i + 1] < lo || in[i + 1] > hi) : (in[i + k] & 0xc0) != 0x80)
				break;
		}
		if (k > need) {
			memcpy(out + o, in + i, need + 1);
			o += need + 1;
			i += need + 1;
		} else if (i + k == n && !final) {
			break; /* incomplete, may continue in the next token */
		} else {
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			i += k;
		}
	}
	if (used != NULL)
		*used = i;
	return o;
}

/* Whether decoding keeps id (unknown ids are dropped silently, as the reference does). */
static int
decodes(const qvl_tokenizer *tok, int32_t id, int skip_special)
{
	if (id < 0 || (size_t)id >= tok->nids || tok->flags[id] == 0)
		return 0;
	return !(skip_special && (tok->flags[id] & TOK_SPECIAL));
}

char *
qvl_tokenizer_decode(const qvl_tokenizer *tok, const int32_t *ids, size_t n, int skip_special,
    size_t *len, qvl_err *err)
{
	unsigned char *bytes;
	size_t i, nb = 0, o;
	char *text;

	for (i = 0; i < n; i++)
		if (decodes(tok, ids[i], skip_special))
			nb += tok->raw_len[ids[i]];
	if ((bytes = malloc(nb + 1)) == NULL || (text = malloc(3 * nb + 1)) == NULL) {
		free(bytes);
		qvl_fail(err, "decode: out of memory");
		return NULL;
	}
	for (i = 0, nb = 0; i < n; i++)
		if (decodes(tok, ids[i], skip_special)) {
			memcpy(bytes + nb, tok->raw + tok->raw_off[ids[i]], tok->raw_len[ids[i]]);
			nb += tok->raw_len[ids[i]];
		}
	o = lossy_utf8(bytes, nb, text, 1, NULL);
	free(bytes);
	text[o] = '\0';
	if (len != NULL)
		*len = o;
	return text;
}

void
qvl_detok_init(qvl_detok *d, const qvl_tokenizer *tok, int skip_special)
{
	memset(d, 0, sizeof(*d));
	d->tok = tok;
	d->skip_special = skip_special;
}

/* Converts pending + more; keeps an incomplete tail pending unless final.  The output of one
 * call is at most 3 bytes per input byte; a real token has few invalid bytes (only at its
 * edges), so cap >= 64 + longest token is enough.  Should cap still be short, what fits is
 * written and the rest of the token is lost: never a write past cap. */
static size_t
detok_convert(qvl_detok *d, const unsigned char *more, size_t nmore, char *out, size_t cap,
    int final)
{
	unsigned char buf[256 + 8];
	size_t o = 0, n, used, chunk, w;

	while (nmore > 0 || (final && d->npending > 0)) {
		/* The pending bytes are one valid but incomplete prefix: whatever follows, they
		 * give at most one U+FFFD, so chunk bytes give at most 3 * (chunk + 1). */
		chunk = nmore;
		if (chunk > sizeof(buf) - (size_t)d->npending)
			chunk = sizeof(buf) - (size_t)d->npending;
		if (cap - o < 3 * (chunk + 1)) {
			if (cap - o < 3 * 2)
				return o;
			chunk = (cap - o) / 3 - 1;
		}
		memcpy(buf, d->pending, (size_t)d->npending);
		if (chunk > 0) {
			memcpy(buf + d->npending, more, chunk);
			more += chunk; /* more may be NULL when only pending bytes are left */
		}
		n = (size_t)d->npending + chunk;
		nmore -= chunk;
		w = lossy_utf8(buf, n, out + o, final && nmore == 0, &used);
		o += w;
		d->npending = (int)(n - used);
		memcpy(d->pending, buf + used, (size_t)d->npending);
	}
	return o;
}

size_t
qvl_detok_push(qvl_detok *d, int32_t id, char *out, size_t cap)
{
	const qvl_tokenizer *tok = d->tok;

	if (!decodes(tok, id, d->skip_special))
		return 0;
	return detok_convert(d, tok->raw + tok->raw_off[id], tok->raw_len[id], out, cap, 0);
}

size_t
qvl_detok_flush(qvl_detok *d, char *out, size_t cap)
{
	return detok_convert(d, NULL, 0, out, cap, 1);
}
