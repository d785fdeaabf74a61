/* pretok.c: the Qwen2 split regex as a hand-written matcher (see pretok.h).  Each alternative
 * of the regex is one block of qvl_pretok_piece, tried in the regex's order; where Oniguruma
 * would backtrack, the block computes where the backtracking ends. */
#include "pretok.h"

#include <utf8proc.h>

/* Classes of the ASCII characters, so that ordinary text never reaches utf8proc. */
static const unsigned char ascii_class[128] = {
	['\t'] = QVL_PRETOK_SPACE, ['\n'] = QVL_PRETOK_SPACE | QVL_PRETOK_CRLF,
	['\v'] = QVL_PRETOK_SPACE, ['\f'] = QVL_PRETOK_SPACE,
	['\r'] = QVL_PRETOK_SPACE | QVL_PRETOK_CRLF, [' '] = QVL_PRETOK_SPACE,
	['0'] = QVL_PRETOK_N, ['1'] = QVL_PRETOK_N, ['2'] = QVL_PRETOK_N, ['3'] = QVL_PRETOK_N,
	['4'] = QVL_PRETOK_N, ['5'] = QVL_PRETOK_N, ['6'] = QVL_PRETOK_N, ['7'] = QVL_PRETOK_N,
	['8'] = QVL_PRETOK_N, ['9'] = QVL_PRETOK_N,
	['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
	['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
	['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
	['Y'] = 1, ['Z'] = 1,
	['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
	['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1,
	['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
	['y'] = 1, ['z'] = 1,
};

/* \s in Oniguruma's Unicode mode is the White_Space property; Python's and JavaScript's \s
 * differ from it (U+001C-001F, U+FEFF, U+0085), which is why it is spelled out here. */
static int
is_white_space(uint32_t cp)
{
	switch (cp) {
	case 0x85: case 0xa0: case 0x1680: case 0x2028: case 0x2029: case 0x202f: case 0x205f:
	case 0x3000:
		return 1;
	default:
		return (cp >= 0x09 && cp <= 0x0d) || cp == 0x20 || (cp >= 0x2000 && cp <= 0x200a);
	}
}

/* Letters and numbers of Unicode 16.0 that Unicode 15 (utf8proc 2.8) leaves unassigned: the
 * reference's Oniguruma has Unicode 16.0 data.  From ICU's general categories in Node.js 20
 * (\p{L} and \p{N}, Unicode 17.0, the same as 16.0's here), checked against the reference
 * code point by code point.  Asked only where utf8proc says unassigned, so a newer utf8proc
 * changes nothing. */
static const struct {
	uint32_t first, last;
	int cls;
} unicode16[] = {
	{ 0x1c89, 0x1c8a, QVL_PRETOK_L }, { 0xa7cb, 0xa7cd, QVL_PRETOK_L },
	{ 0xa7da, 0xa7dc, QVL_PRETOK_L }, { 0x105c0, 0x105f3, QVL_PRETOK_L },
	{ 0x10d40, 0x10d49, QVL_PRETOK_N }, { 0x10d4a, 0x10d65, QVL_PRETOK_L },
	{ 0x10d6f, 0x10d85, QVL_PRETOK_L }, { 0x10ec2, 0x10ec4, QVL_PRETOK_L },
	{ 0x11380, 0x11389, QVL_PRETOK_L }, { 0x1138b, 0x1138b, QVL_PRETOK_L },
	{ 0x1138e, 0x1138e, QVL_PRETOK_L }, { 0x11390, 0x113b5, QVL_PRETOK_L },
	{ 0x113b7, 0x113b7, QVL_PRETOK_L }, { 0x113d1, 0x113d1, QVL_PRETOK_L },
	{ 0x113d3, 0x113d3, QVL_PRETOK_L }, { 0x116d0, 0x116e3, QVL_PRETOK_N },
	{ 0x11bc0, 0x11be0, QVL_PRETOK_L }, { 0x11bf0, 0x11bf9, QVL_PRETOK_N },
	{ 0x13460, 0x143fa, QVL_PRETOK_L }, { 0x16100, 0x1611d, QVL_PRETOK_L },
	{ 0x16130, 0x16139, QVL_PRETOK_N }, { 0x16d40, 0x16d6c, QVL_PRETOK_L },
	{ 0x16d70, 0x16d79, QVL_PRETOK_N }, { 0x18cff, 0x18cff, QVL_PRETOK_L },
	{ 0x1ccf0, 0x1ccf9, QVL_PRETOK_N }, { 0x1e5d0, 0x1e5ed, QVL_PRETOK_L },
	{ 0x1e5f0, 0x1e5f0, QVL_PRETOK_L }, { 0x1e5f1, 0x1e5fa, QVL_PRETOK_N },
	{ 0x2ebf0, 0x2ee5d, QVL_PRETOK_L },
};

static int
unicode16_class(uint32_t cp)
{
	size_t lo = 0, hi = sizeof(unicode16) / sizeof(unicode16[0]), mid;

	while (lo < hi) {
		mid = (lo + hi) / 2;
		if (cp < unicode16[mid].first)
			hi = mid;
		else if (cp > unicode16[mid].last)
			lo = mid + 1;
		else
			return unicode16[mid].cls;
	}
	return 0;
}

int
qvl_pretok_class(uint32_t cp)
{
	if (cp < 128)
		return ascii_class[cp];
	if (is_white_space(cp))
		return QVL_PRETOK_SPACE;
	switch (utf8proc_category((utf8proc_int32_t)cp)) {
	case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
	case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO:
		return QVL_PRETOK_L;
	case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
		return QVL_PRETOK_N;
	case UTF8PROC_CATEGORY_CN:
		return unicode16_class(cp);
	default:
		return 0;
	}
}

/* Decodes the (already validated) character at s[i]; sets *next to the byte after it. */
static uint32_t
decode_at(const unsigned char *s, size_t i, size_t *next)
{
	unsigned char b = s[i];

	if (b < 0x80) {
		*next = i + 1;
		return b;
	}
	if (b < 0xe0) {
		*next = i + 2;
		return (uint32_t)(b & 0x1f) << 6 | (s[i + 1] & 0x3f);
	}
	if (b < 0xf0) {
		*next = i + 3;
		return (uint32_t)(b & 0x0f) << 12 | (uint32_t)(s[i + 1] & 0x3f) << 6 |
		    (s[i + 2] & 0x3f);
	}
	*next = i + 4;
	return (uint32_t)(b & 0x07) << 18 | (uint32_t)(s[i + 1] & 0x3f) << 12 |
	    (uint32_t)(s[i + 2] & 0x3f) << 6 | (s[i + 3] & 0x3f);
}

/* Class of the character at s[i] (i < len); *next gets the byte after it. */
static int
class_at(const unsigned char *s, size_t i, size_t *next)
{
	if (s[i] < 0x80) {
		*next = i + 1;
		return ascii_class[s[i]];
	}
	return qvl_pretok_class(decode_at(s, i, next));
}

/* The end of the run of characters from i whose class satisfies (class & mask) == want. */
static size_t
run_end(const unsigned char *s, size_t len, size_t i, int mask, int want)
{
	size_t next;

	while (i < len) {
		if (s[i] < 0x80) {
			if ((ascii_class[s[i]] & mask) != want)
				break;
			i++;
			continue;
		}
		if ((class_at(s, i, &next) & mask) != want)
			break;
		i = next;
	}
	return i;
}

/* Case-insensitive match of the ASCII lower-case letter c at s[i] with Unicode simple case
 * folding: only U+017F (long s) folds to an ASCII letter among s t r e v m l d. */
static size_t
fold_letter(const unsigned char *s, size_t len, size_t i, char c)
{
	if (i >= len)
		return 0;
	if ((s[i] | 0x20) == c && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
		return 1;
	if (c == 's' && i + 1 < len && s[i] == 0xc5 && s[i + 1] == 0xbf)
		return 2;
	return 0;
}

/* (?i:'s|'t|'re|'ve|'m|'ll|'d) at s[i] == '\'': the length of the match, or 0. */
static size_t
contraction(const unsigned char *s, size_t len, size_t i)
{
	static const char *const alts[] = { "s", "t", "re", "ve", "m", "ll", "d" };
	size_t a, k, j, n;

	for (a = 0; a < sizeof(alts) / sizeof(alts[0]); a++) {
		j = i + 1;
		for (k = 0; alts[a][k] != '\0'; k++) {
			if ((n = fold_letter(s, len, j, alts[a][k])) == 0)
				break;
			j += n;
		}
		if (alts[a][k] == '\0')
			return j - i;
	}
	return 0;
}

size_t
qvl_pretok_piece(const unsigned char *s, size_t len, size_t pos)
{
	size_t next, next2, end, i, last_nl;
	int cls, cls2;

	cls = class_at(s, pos, &next);

	/* (?i:'s|'t|'re|'ve|'m|'ll|'d) */
	if (s[pos] == '\'' && (end = contraction(s, len, pos)) != 0)
		return pos + end;

	/* [^\r\n\p{L}\p{N}]?\p{L}+ */
	if (cls & QVL_PRETOK_L)
		return run_end(s, len, next, QVL_PRETOK_L, QVL_PRETOK_L);
	if (!(cls & (QVL_PRETOK_CRLF | QVL_PRETOK_N)) && next < len &&
	    (class_at(s, next, &next2) & QVL_PRETOK_L))
		return run_end(s, len, next2, QVL_PRETOK_L, QVL_PRETOK_L);

	/* \p{N} */
	if (cls & QVL_PRETOK_N)
		return next;

	/* ' '?[^\s\p{L}\p{N}]+[\r\n]* */
	i = pos;
	if (s[pos] == ' ' && next < len) {
		cls2 = class_at(s, next, &next2);
		if (cls2 == 0)
			i = next;
	}
	if (class_at(s, i, &next2) == 0) {
		end = run_end(s, len, next2, 0xff, 0);
		return run_end(s, len, end, QVL_PRETOK_CRLF, QVL_PRETOK_CRLF);
	}

	/* Only white space is left: cls & QVL_PRETOK_SPACE.  W = the run of white space. */
	last_nl = 0;
	end = pos;
	while (end < len) {
		if (s[end] == '\r' || s[end] == '\n')
			last_nl = end + 1;
		if (s[end] < 0x80) {
			if (!(ascii_class[s[end]] & QVL_PRETOK_SPACE))
				break;
			end++;
		} else {
			if (!(class_at(s, end, &next2) & QVL_PRETOK_SPACE))
				break;
			end = next2;
		}
	}
	/* \s*[\r\n]+: backtracks to the last CR/LF of W. */
	if (last_nl != 0)
		return last_nl;
	/* \s+(?!\S): all of W at the end of the text, else W less its last character. */
	if (end == len)
		return end;
	if (end > next) {
		/* Step back one character (a continuation byte is 10xxxxxx). */
		i = end - 1;
		while ((s[i] & 0xc0) == 0x80)
			i--;
		return i;
	}
	/* \s+ */
	return end;
}

size_t
qvl_utf8_check(const unsigned char *s, size_t len)
{
	size_t i = 0;
	unsigned char b, lo, hi;
	int n, k;

	while (i < len) {
		b = s[i];
		if (b < 0x80) {
			i++;
			continue;
		}
		lo = 0x80, hi = 0xbf;
		if (b >= 0xc2 && b <= 0xdf)
			n = 1;
		else if (b >= 0xe0 && b <= 0xef) {
			n = 2;
			if (b == 0xe0)
				lo = 0xa0;
			else if (b == 0xed)
				hi = 0x9f;
		} else if (b >= 0xf0 && b <= 0xf4) {
			n = 3;
			if (b == 0xf0)
				lo = 0x90;
			else if (b == 0xf4)
				hi = 0x8f;
		} else
			return i;
		if ((size_t)n >= len - i)
			return i;
		if (s[i + 1] < lo || s[i + 1] > hi)
			return i;
		for (k = 2; k <= n; k++)
			if ((s[i + k] & 0xc0) != 0x80)
				return i;
		i += (size_t)n + 1;
	}
	return len;
}
