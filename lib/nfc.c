/* nfc.c: NFC (see nfc.h).  The reference, tokenizers 0.22 through the crate
 * unicode-normalization-alignments 0.1.12, has Unicode 9.0 data: to it a character assigned
 * later is unassigned, so it has combining class 0, no decomposition and no part in a
 * composition.  Unicode's stability policy freezes those properties once a character is
 * assigned, so libutf8proc gives the right ones for the older characters and only the newer
 * ones need overriding.  Canonical ordering is a stable sort of each run of non-starters:
 * utf8proc's own is quadratic in the length of the run. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "nfc.h"

/* Code points assigned after Unicode 9.0 that have, in Unicode 17.0, a nonzero combining
 * class, a canonical decomposition or a place in one.  Made from ICU's Unicode 17.0 data
 * (Node.js 20: String.prototype.normalize, a class told by reordering against U+0334 and
 * U+0345) less what Perl's Unicode 14.0 tables call Present_In 9.0; utf8proc 2.8's classes
 * and Python's regex module's all fall within it.  A libutf8proc with Unicode data newer than
 * 17.0 needs it extended (test_tokenizer checks the version). */
static const uint32_t newer_than_9[][2] = {
	{ 0x07fd, 0x07fd }, { 0x0897, 0x089f }, { 0x08ca, 0x08d3 }, { 0x09fe, 0x09fe },
	{ 0x0c3c, 0x0c3c }, { 0x0d3b, 0x0d3c }, { 0x0eba, 0x0eba }, { 0x1715, 0x1715 },
	{ 0x1abf, 0x1add }, { 0x1ae0, 0x1aeb }, { 0x1df6, 0x1dfa }, { 0xa82c, 0xa82c },
	{ 0x105c9, 0x105c9 }, { 0x105d2, 0x105d2 }, { 0x105da, 0x105da }, { 0x105e4, 0x105e4 },
	{ 0x10d24, 0x10d27 }, { 0x10d69, 0x10d6d }, { 0x10eab, 0x10eac }, { 0x10efa, 0x10efb },
	{ 0x10efd, 0x10eff }, { 0x10f46, 0x10f50 }, { 0x10f82, 0x10f85 }, { 0x11070, 0x11070 },
	{ 0x1133b, 0x1133b }, { 0x11382, 0x11385 }, { 0x1138b, 0x1138b }, { 0x1138e, 0x1138e },
	{ 0x11390, 0x11391 }, { 0x113b8, 0x113b8 }, { 0x113bb, 0x113bb }, { 0x113c2, 0x113c2 },
	{ 0x113c5, 0x113c5 }, { 0x113c7, 0x113c9 }, { 0x113ce, 0x113d0 }, { 0x1145e, 0x1145e },
	{ 0x11839, 0x1183a }, { 0x11930, 0x11930 }, { 0x11935, 0x11935 }, { 0x11938, 0x11938 },
	{ 0x1193d, 0x1193e }, { 0x11943, 0x11943 }, { 0x119e0, 0x119e0 }, { 0x11a34, 0x11a34 },
	{ 0x11a47, 0x11a47 }, { 0x11a99, 0x11a99 }, { 0x11d42, 0x11d42 }, { 0x11d44, 0x11d45 },
	{ 0x11d97, 0x11d97 }, { 0x11f41, 0x11f42 }, { 0x1611e, 0x16129 }, { 0x1612f, 0x1612f },
	{ 0x16d63, 0x16d63 }, { 0x16d67, 0x16d6a }, { 0x16ff0, 0x16ff1 }, { 0x1e08f, 0x1e08f },
	{ 0x1e130, 0x1e136 }, { 0x1e2ae, 0x1e2ae }, { 0x1e2ec, 0x1e2ef }, { 0x1e4ec, 0x1e4ef },
	{ 0x1e5ee, 0x1e5ef }, { 0x1e6e3, 0x1e6e3 }, { 0x1e6e6, 0x1e6e6 }, { 0x1e6ee, 0x1e6ef },
	{ 0x1e6f5, 0x1e6f5 },
};

/* The characters of class 0 that are the second of the two-character canonical decomposition
 * of a primary composite in Unicode 9.0, the Hangul V and T jamo aside (Python 3.11's
 * unicodedata, Unicode 14.0, less the composites not Present_In 9.0 for Perl). */
static const uint32_t second_starters[] = {
	0x09be, 0x09d7, 0x0b3e, 0x0b56, 0x0b57, 0x0bbe, 0x0bd7, 0x0cc2, 0x0cd5, 0x0cd6, 0x0d3e,
	0x0d57, 0x0dcf, 0x0ddf, 0x102e, 0x1b35, 0x11127, 0x1133e, 0x11357, 0x114b0, 0x114ba,
	0x114bd, 0x115af,
};

int
qvl_nfc_newer_than_9(uint32_t cp)
{
	size_t lo = 0, hi = sizeof(newer_than_9) / sizeof(newer_than_9[0]), mid;

	while (lo < hi) {
		mid = (lo + hi) / 2;
		if (cp < newer_than_9[mid][0])
			hi = mid;
		else if (cp > newer_than_9[mid][1])
			lo = mid + 1;
		else
			return 1;
	}
	return 0;
}

static int
second_starter(uint32_t cp)
{
	size_t i;

	if (cp < 0x09be || (cp > 0x1b35 && cp < 0x11127) || cp > 0x115af)
		return 0;
	for (i = 0; i < sizeof(second_starters) / sizeof(second_starters[0]); i++)
		if (second_starters[i] == cp)
			return 1;
	return 0;
}

static int
hangul_vt(uint32_t cp)
{
	return (cp >= 0x1161 && cp <= 0x1175) || (cp >= 0x11a8 && cp <= 0x11c2);
}

int
qvl_nfc_inert(uint32_t cp)
{
	const utf8proc_property_t *p;

	if (cp < 0x300)
		return 1;
	if ((cp >= 0x1100 && cp <= 0x11ff) || (cp >= 0xac00 && cp <= 0xd7a3))
		return cp < 0x1160 || cp >= 0xac00; /* V and T jamo compose */
	p = utf8proc_get_property((utf8proc_int32_t)cp);
	if (p->combining_class != 0 || (p->decomp_seqindex != UINT16_MAX && p->decomp_type == 0))
		return qvl_nfc_newer_than_9(cp);
	return !second_starter(cp);
}

/* The character at s[*i] of valid UTF-8; moves *i past it. */
static uint32_t
next_char(const unsigned char *s, size_t *i)
{
	const unsigned char *p = s + *i;

	if (p[0] < 0x80) {
		*i += 1;
		return p[0];
	}
	if (p[0] < 0xe0) {
		*i += 2;
		return (uint32_t)(p[0] & 0x1f) << 6 | (p[1] & 0x3f);
	}
	if (p[0] < 0xf0) {
		*i += 3;
		return (uint32_t)(p[0] & 0x0f) << 12 | (uint32_t)(p[1] & 0x3f) << 6 |
		    (p[2] & 0x3f);
	}
	*i += 4;
	return (uint32_t)(p[0] & 0x07) << 18 | (uint32_t)(p[1] & 0x3f) << 12 |
	    (uint32_t)(p[2] & 0x3f) << 6 | (p[3] & 0x3f);
}

int
qvl_nfc_needed(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		if (s[i] < 0xcc) { /* U+0000-U+02FF */
			i += s[i] < 0x80 ? 1 : 2;
			continue;
		}
		if (!qvl_nfc_inert(next_char(s, &i)))
			return 1;
	}
	return 0;
}

static int
combining_class(uint32_t cp)
{
	int c;

	if (cp < 0x300)
		return 0;
	c = utf8proc_get_property((utf8proc_int32_t)cp)->combining_class;
	return c != 0 && qvl_nfc_newer_than_9(cp) ? 0 : c;
}

/* The primary composite of starter a and b, or 0. */
static uint32_t
compose(uint32_t a, uint32_t b, int b_class)
{
	utf8proc_int32_t pair[2];

	if (b_class == 0 && !hangul_vt(b) && !second_starter(b))
		return 0;
	if (qvl_nfc_newer_than_9(a))
		return 0;
	pair[0] = (utf8proc_int32_t)a;
	pair[1] = (utf8proc_int32_t)b;
	if (utf8proc_normalize_utf32(pair, 2, UTF8PROC_STABLE | UTF8PROC_COMPOSE) != 1 ||
	    qvl_nfc_newer_than_9((uint32_t)pair[0]))
		return 0;
	return (uint32_t)pair[0];
}

/* The text as code points, each with its combining class. */
typedef struct chars {
	uint32_t *cp;
	unsigned char *cls;
	size_t n, cap;
} chars;

static int
chars_grow(chars *c, size_t more)
{
	uint32_t *cp;
	unsigned char *cls;
	size_t cap = c->cap ? c->cap : 64;

	while (cap < c->n + more)
		cap *= 2;
	if ((cp = realloc(c->cp, cap * sizeof(*cp))) == NULL)
		return -1;
	c->cp = cp;
	if ((cls = realloc(c->cls, cap)) == NULL)
		return -1;
	c->cls = cls;
	c->cap = cap;
	return 0;
}

/* Full canonical decomposition of s. */
static int
decompose(const unsigned char *s, size_t n, chars *c, qvl_err *err)
{
	utf8proc_int32_t d[16];
	utf8proc_ssize_t k, j;
	size_t i = 0;
	uint32_t cp;
	int boundclass;

	while (i < n) {
		cp = next_char(s, &i);
		if (c->n + 16 > c->cap && chars_grow(c, 16) < 0)
			return qvl_fail(err, "NFC: out of memory");
		if (cp < 0xc0) {
			c->cls[c->n] = 0;
			c->cp[c->n++] = cp;
			continue;
		}
		boundclass = 0;
		k = utf8proc_decompose_char((utf8proc_int32_t)cp, d, 16, UTF8PROC_DECOMPOSE,
		    &boundclass);
		if (k < 1 || k > 16)
			return qvl_fail(err, "NFC: cannot decompose U+%04X", cp);
		if ((k != 1 || d[0] != (utf8proc_int32_t)cp) && qvl_nfc_newer_than_9(cp))
			d[0] = (utf8proc_int32_t)cp, k = 1;
		for (j = 0; j < k; j++) {
			c->cls[c->n] = (unsigned char)combining_class((uint32_t)d[j]);
			c->cp[c->n++] = (uint32_t)d[j];
		}
	}
	return 0;
}

/* Stable sort by class of the non-starters c[from..to): insertion for short runs, else
 * counting sort, so that a run costs its length (plus the 256 counters). */
static int
sort_run(chars *c, size_t from, size_t to, uint32_t **tmp, size_t *tmp_cap)
{
	size_t count[256], i, j, k, n = to - from;
	uint32_t cp, *p;
	unsigned char cl;

	if (n <= 16) {
		for (i = from + 1; i < to; i++) {
			cp = c->cp[i], cl = c->cls[i];
			for (j = i; j > from && c->cls[j - 1] > cl; j--)
				c->cp[j] = c->cp[j - 1], c->cls[j] = c->cls[j - 1];
			c->cp[j] = cp, c->cls[j] = cl;
		}
		return 0;
	}
	if (n > *tmp_cap) {
		if ((p = realloc(*tmp, n * sizeof(*p))) == NULL)
			return -1;
		*tmp = p;
		*tmp_cap = n;
	}
	memset(count, 0, sizeof(count));
	for (i = from; i < to; i++)
		count[c->cls[i]]++;
	for (k = 0, j = 0; k < 256; k++) {
		i = count[k];
		count[k] = j;
		j += i;
	}
	for (i = from; i < to; i++)
		(*tmp)[count[c->cls[i]]++] = c->cp[i];
	memcpy(c->cp + from, *tmp, n * sizeof(**tmp));
	for (k = 0, i = from; k < 256; k++)
		for (; i < from + count[k]; i++)
			c->cls[i] = (unsigned char)k;
	return 0;
}

static int
reorder(chars *c, qvl_err *err)
{
	uint32_t *tmp = NULL;
	size_t i = 0, j, tmp_cap = 0;
	int rc = 0;

	while (i < c->n && rc == 0) {
		if (c->cls[i] == 0) {
			i++;
			continue;
		}
		for (j = i + 1; j < c->n && c->cls[j] != 0; j++)
			;
		if (j - i > 1 && sort_run(c, i, j, &tmp, &tmp_cap) < 0)
			rc = qvl_fail(err, "NFC: out of memory");
		i = j;
	}
	free(tmp);
	return rc;
}

/* Canonical composition in place (UAX #15): a character joins the last starter unless a
 * character between them, left uncomposed, has class 0 or a class not below its own. */
static void
recompose(chars *c)
{
	size_t starter = 0, r, w;
	uint32_t composite;
	int last;

	if (c->n == 0)
		return;
	last = c->cls[0] != 0 ? 256 : 0;
	for (r = w = 1; r < c->n; r++) {
		if ((last == 0 || last < c->cls[r]) &&
		    (composite = compose(c->cp[starter], c->cp[r], c->cls[r])) != 0) {
			c->cp[starter] = composite;
			continue;
		}
		if (c->cls[r] == 0)
			starter = w;
		last = c->cls[r];
		c->cp[w] = c->cp[r];
		c->cls[w++] = c->cls[r];
	}
	c->n = w;
}

int
qvl_nfc(const unsigned char *s, size_t n, unsigned char **out, size_t *out_len, qvl_err *err)
{
	chars c = { 0 };
	unsigned char *o;
	size_t i, m = 0;

	*out = NULL;
	*out_len = 0;
	if (decompose(s, n, &c, err) < 0 || reorder(&c, err) < 0)
		goto fail;
	recompose(&c);
	if ((o = malloc(4 * c.n + 1)) == NULL) {
		qvl_fail(err, "NFC: out of memory");
		goto fail;
	}
	for (i = 0; i < c.n; i++)
		m += (size_t)utf8proc_encode_char((utf8proc_int32_t)c.cp[i], o + m);
	*out = o;
	*out_len = m;
	free(c.cp);
	free(c.cls);
	return 0;
fail:
	free(c.cp);
	free(c.cls);
	return -1;
}
