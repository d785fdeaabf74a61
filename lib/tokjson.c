/* tokjson.c: the JSON scanner of tokjson.h.  The vocabulary and the merges of tokenizer.json
 * are 7 MB that jansson needs about 250 ms to turn into a tree; scanning them in place is
 * an order of magnitude faster. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "tokjson.h"


int
qvl_tokjson_buf_reserve(qvl_tokjson_buf *b, size_t more, qvl_err *err)
{
	size_t cap;
	char *p;

	if (b->n + more <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 4096;
	while (cap < b->n + more)
		cap *= 2;
	if ((p = realloc(b->p, cap)) == NULL)
		return qvl_fail(err, "out of memory");
	b->p = p;
	b->cap = cap;
	return 0;
}


int
qvl_tokjson_scan_fail(qvl_tokjson_scan *s, const char *what)
{
	return qvl_fail(s->err, "%s at byte %zu", what, (size_t)(s->p - s->start));
}

void
qvl_tokjson_skip_ws(qvl_tokjson_scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
		s->p++;
}

int
qvl_tokjson_expect(qvl_tokjson_scan *s, char c)
{
	qvl_tokjson_skip_ws(s);
	if (s->p >= s->end || *s->p != c) {
		char what[32];

		snprintf(what, sizeof(what), "expected '%c'", c);
		return qvl_tokjson_scan_fail(s, what);
	}
	s->p++;
	return 0;
}

/* Skips a string whose opening quote is at s->p. */
static int
skip_string(qvl_tokjson_scan *s)
{
	for (s->p++; s->p < s->end; s->p++) {
		if (*s->p == '\\')
			s->p++;
		else if (*s->p == '"') {
			s->p++;
			return 0;
		}
	}
	return qvl_tokjson_scan_fail(s, "unterminated string");
}

int
qvl_tokjson_skip_value(qvl_tokjson_scan *s)
{
	int depth = 0;

	qvl_tokjson_skip_ws(s);
	do {
		if (s->p >= s->end)
			return qvl_tokjson_scan_fail(s, "unexpected end of file");
		switch (*s->p) {
		case '"':
			if (skip_string(s) < 0)
				return -1;
			continue;
		case '{': case '[':
			depth++;
			break;
		case '}': case ']':
			if (--depth < 0)
				return qvl_tokjson_scan_fail(s, "unbalanced bracket");
			break;
		default:
			if (depth == 0) {
				/* a number or literal: up to the next delimiter */
				while (s->p < s->end && !strchr(",}] \t\r\n", *s->p))
					s->p++;
				return 0;
			}
		}
		s->p++;
	} while (depth > 0);
	return 0;
}

static int
hex4(const char *p, unsigned *v)
{
	unsigned x = 0;
	int i;

	for (i = 0; i < 4; i++) {
		x <<= 4;
		if (p[i] >= '0' && p[i] <= '9')
			x |= (unsigned)(p[i] - '0');
		else if ((p[i] | 0x20) >= 'a' && (p[i] | 0x20) <= 'f')
			x |= (unsigned)((p[i] | 0x20) - 'a' + 10);
		else
			return -1;
	}
	*v = x;
	return 0;
}

static size_t
put_utf8(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Reads a JSON string into out (replacing its contents; not NUL-terminated). */
int
qvl_tokjson_read_string(qvl_tokjson_scan *s, qvl_tokjson_buf *out)
{
	unsigned cp, lo;
	const char *q;

	qvl_tokjson_skip_ws(s);
	if (s->p >= s->end || *s->p != '"')
		return qvl_tokjson_scan_fail(s, "expected a string");
	out->n = 0;
	for (s->p++;;) {
		for (q = s->p; q < s->end && *q != '"' && *q != '\\'; q++)
			;
		if (qvl_tokjson_buf_reserve(out, (size_t)(q - s->p) + 8, s->err) < 0)
			return -1;
		memcpy(out->p + out->n, s->p, (size_t)(q - s->p));
		out->n += (size_t)(q - s->p);
		s->p = q;
		if (q >= s->end)
			return qvl_tokjson_scan_fail(s, "unterminated string");
		if (*q == '"') {
			s->p++;
			return 0;
		}
		if (q + 1 >= s->end)
			return qvl_tokjson_scan_fail(s, "unterminated string");
		s->p = q + 2;
		switch (q[1]) {
		case '"': out->p[out->n++] = '"'; break;
		case '\\': out->p[out->n++] = '\\'; break;
		case '/': out->p[out->n++] = '/'; break;
		case 'b': out->p[out->n++] = '\b'; break;
		case 'f': out->p[out->n++] = '\f'; break;
		case 'n': out->p[out->n++] = '\n'; break;
		case 'r': out->p[out->n++] = '\r'; break;
		case 't': out->p[out->n++] = '\t'; break;
		case 'u':
			if (s->end - s->p < 4 || hex4(s->p, &cp) < 0)
				return qvl_tokjson_scan_fail(s, "bad \\u escape");
			s->p += 4;
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u' ||
				    hex4(s->p + 2, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
					return qvl_tokjson_scan_fail(s, "unpaired surrogate");
				s->p += 6;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			} else if (cp >= 0xdc00 && cp <= 0xdfff)
				return qvl_tokjson_scan_fail(s, "unpaired surrogate");
			out->n += put_utf8(out->p + out->n, cp);
			break;
		default:
			return qvl_tokjson_scan_fail(s, "bad escape");
		}
	}
}

int
qvl_tokjson_read_int(qvl_tokjson_scan *s, long *v)
{
	char *e;

	qvl_tokjson_skip_ws(s);
	errno = 0;
	*v = strtol(s->p, &e, 10);
	if (e == s->p || errno != 0 || e > s->end)
		return qvl_tokjson_scan_fail(s, "expected an integer");
	s->p = e;
	return 0;
}

/* After a value inside an object or array: 1 if another follows (a comma), 0 at the close. */
int
qvl_tokjson_next_item(qvl_tokjson_scan *s, char close)
{
	qvl_tokjson_skip_ws(s);
	if (s->p < s->end && *s->p == ',') {
		s->p++;
		return 1;
	}
	if (s->p < s->end && *s->p == close) {
		s->p++;
		return 0;
	}
	return qvl_tokjson_scan_fail(s, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
}

/* An empty object or array: consumes the close and returns 1. */
int
qvl_tokjson_empty(qvl_tokjson_scan *s, char close)
{
	qvl_tokjson_skip_ws(s);
	if (s->p < s->end && *s->p == close) {
		s->p++;
		return 1;
	}
	return 0;
}

/* A value as a jansson tree (for the small sections). */
json_t *
qvl_tokjson_load_span(qvl_tokjson_scan *s)
{
	const char *start;
	json_error_t jerr;
	json_t *j;

	qvl_tokjson_skip_ws(s);
	start = s->p;
	if (qvl_tokjson_skip_value(s) < 0)
		return NULL;
	j = json_loadb(start, (size_t)(s->p - start), JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	if (j == NULL)
		qvl_fail(s->err, "%s at byte %zu", jerr.text, (size_t)(start - s->start));
	return j;
}

