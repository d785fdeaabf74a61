/* pretok.h: the Qwen2 pre-tokenizer split, the regex
 *   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|
 *   \s*[\r\n]+|\s+(?!\S)|\s+
 * with Oniguruma's semantics (alternatives tried in order at each position, greedy with
 * backtracking), written out as code: the matches of this regex tile the whole text, so a
 * split is a walk from piece to piece. */
#ifndef QVL_PRETOK_H
#define QVL_PRETOK_H

#include <stddef.h>
#include <stdint.h>

/* Character classes of the regex; a code point has at most one of L, N, SPACE (CRLF implies
 * SPACE). */
enum {
	QVL_PRETOK_L = 1,     /* \p{L}: Lu Ll Lt Lm Lo */
	QVL_PRETOK_N = 2,     /* \p{N}: Nd Nl No */
	QVL_PRETOK_SPACE = 4, /* \s: the Unicode White_Space property */
	QVL_PRETOK_CRLF = 8,  /* \r or \n */
};

int qvl_pretok_class(uint32_t cp);

/* Returns the end of the piece that starts at pos (pos < len) in the valid UTF-8 text s. */
size_t qvl_pretok_piece(const unsigned char *s, size_t len, size_t pos);

/* Returns the offset of the first byte of s that is not part of valid UTF-8 (overlong forms,
 * surrogates and code points over U+10FFFF are invalid), or len when s is valid. */
size_t qvl_utf8_check(const unsigned char *s, size_t len);

#endif
