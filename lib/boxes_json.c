/* boxes_json.c: Qwen2.5-VL JSON boxes in a model's answer.
 *
 * Every '{' may start an object.  One parser reads strict JSON and what the models and the
 * reference helpers (ast.literal_eval) also accept: single-quoted strings, bare keys and
 * words, trailing or missing commas, tuples, None/True/False/NaN, and JSON whose quotes are
 * backslash-escaped (a `text` field pasted whole).  An object with bbox_2d or point_2d is a
 * box as soon as it closes, so a list cut short by the token limit gives every complete
 * object, and a label's text is never looked into for boxes.
 *
 * The answer may be huge and adversarial, so the scan stays linear: a failed parse resumes
 * where it failed (what it read before was either complete objects, already taken, or open
 * ones that would fail the same way), and a string that ran into a line end is remembered,
 * so a later parse opening a string of the same kind inside it fails at once. */
#include "boxes_impl.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Deeper than any grounding answer; keeps the recursion small. */
#define MAX_DEPTH 64

enum { Q_DOUBLE, Q_SINGLE, Q_ESCAPED, NQUOTES };

typedef struct parser {
	const char *s;
	size_t len, pos;
	int depth;
	int oom;
	/* A string of kind k opened in (open[k], stop[k]) runs unclosed into stop[k]. */
	size_t open[NQUOTES], stop[NQUOTES];
	size_t bad_string;	/* the opening quote of the string that failed the parse, or
				 * SIZE_MAX */
	qvl_box_list *list;
	qvl_err *err;
} parser;

static json_t *parse_value(parser *p);

static int
is_word_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_' ||
	    c == '-' || c >= 0x80;
}

static void
skip_space(parser *p)
{
	while (p->pos < p->len && is_space((unsigned char)p->s[p->pos]))
		p->pos++;
}

/* Kind of the quote at pos, or -1. */
static int
quote_at(const parser *p, size_t pos)
{
	if (pos >= p->len)
		return -1;
	if (p->s[pos] == '"')
		return Q_DOUBLE;
	if (p->s[pos] == '\'')
		return Q_SINGLE;
	if (p->s[pos] == '\\' && pos + 1 < p->len && p->s[pos + 1] == '"')
		return Q_ESCAPED;
	return -1;
}

static int
hex4(const char *s, size_t len, size_t at, uint32_t *cp)
{
	size_t k;

	*cp = 0;
	if (at + 4 > len)
		return 0;
	for (k = at; k < at + 4; k++) {
		int c = lower((unsigned char)s[k]);

		if (is_digit(c))
			*cp = *cp * 16 + (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			*cp = *cp * 16 + (uint32_t)(c - 'a' + 10);
		else
			return 0;
	}
	return 1;
}

/* The escape after a backslash at s[j] (j is the escaped character); returns where the
 * escape ends. */
static size_t
string_escape(const parser *p, size_t j, sbuf *b)
{
	uint32_t cp, lo;

	switch (p->s[j]) {
	case 'n': qvl_bx_sb_putc(b, '\n'); return j + 1;
	case 't': qvl_bx_sb_putc(b, '\t'); return j + 1;
	case 'r': qvl_bx_sb_putc(b, '\r'); return j + 1;
	case 'b': qvl_bx_sb_putc(b, '\b'); return j + 1;
	case 'f': qvl_bx_sb_putc(b, '\f'); return j + 1;
	case 'u':
		if (!hex4(p->s, p->len, j + 1, &cp)) {
			qvl_bx_sb_putc(b, 'u');
			return j + 1;
		}
		j += 5;
		/* A UTF-16 pair written as two escapes is one character. */
		if (cp >= 0xd800 && cp <= 0xdbff && j + 1 < p->len && p->s[j] == '\\' &&
		    p->s[j + 1] == 'u' && hex4(p->s, p->len, j + 2, &lo) && lo >= 0xdc00 &&
		    lo <= 0xdfff) {
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			j += 6;
		}
		qvl_bx_sb_put_utf8(b, cp);
		return j;
	default:
		qvl_bx_sb_putc(b, p->s[j]);
		return j + 1;
	}
}

/* A string whose opening quote of kind `kind` is at pos.  An escaped string ("\"...\"")
 * is one level of escapes deeper: "\\\"" is a quote in it, "\\n" a newline. */
static json_t *
parse_string(parser *p, int kind)
{
	sbuf b = { 0 };
	size_t open = p->pos, j = p->pos + (kind == Q_ESCAPED ? 2 : 1);
	char q = kind == Q_SINGLE ? '\'' : '"';
	json_t *v;

	if (open > p->open[kind] && open < p->stop[kind]) {
		p->pos = p->stop[kind];
		p->bad_string = open;
		return NULL;
	}
	while (j < p->len && p->s[j] != '\n') {
		char c = p->s[j];

		if (kind != Q_ESCAPED && c == q)
			break;
		if (c == '\\' && j + 1 < p->len && p->s[j + 1] != '\n') {
			if (kind != Q_ESCAPED) {
				j = string_escape(p, j + 1, &b);
				continue;
			}
			if (p->s[j + 1] == '"')
				break;
			if (p->s[j + 1] != '\\' || j + 2 >= p->len || p->s[j + 2] == '\n') {
				/* An escape of the outer level: a character of the inner one. */
				j = string_escape(p, j + 1, &b);
			} else if (p->s[j + 2] == '\\' && j + 3 < p->len &&
			    (p->s[j + 3] == '"' || p->s[j + 3] == '\\')) {
				/* \\\" and \\\\: the inner level's \" and \\. */
				qvl_bx_sb_putc(&b, p->s[j + 3]);
				j += 4;
			} else {
				j = string_escape(p, j + 2, &b);
			}
			continue;
		}
		if (c == '\0')
			qvl_bx_sb_put_utf8(&b, 0);
		else
			qvl_bx_sb_putc(&b, c);
		j++;
	}
	if (j >= p->len || p->s[j] == '\n') {
		/* Neither JSON nor a Python literal runs a string across lines. */
		free(qvl_bx_sb_take(&b));
		p->open[kind] = open;
		p->stop[kind] = p->pos = j;
		p->bad_string = open;
		return NULL;
	}
	p->pos = j + (kind == Q_ESCAPED ? 2 : 1);
	if (b.oom) {
		free(qvl_bx_sb_take(&b));
		p->oom = 1;
		return NULL;
	}
	v = json_stringn_nocheck(b.s ? b.s : "", b.n);
	free(b.s);
	if (v == NULL)
		p->oom = 1;
	return v;
}

/* A bare word: a literal, or a string.  NaN and the infinities are no numbers here: a box
 * holding one is unreadable, as the strict reading has it. */
static json_t *
parse_word(parser *p)
{
	static const char *const nulls[] = { "null", "None", "NaN", "nan", "Infinity",
		"inf", "undefined", NULL };
	size_t start = p->pos, n;
	json_t *v;
	int i;

	if (p->s[p->pos] == '-' || p->s[p->pos] == '+')
		p->pos++;
	while (p->pos < p->len && is_word_char((unsigned char)p->s[p->pos]))
		p->pos++;
	n = p->pos - start;
	if (n == 0 || (n == 1 && (p->s[start] == '-' || p->s[start] == '+')))
		return NULL;
	if ((n == 4 && (memcmp(p->s + start, "true", 4) == 0 ||
	    memcmp(p->s + start, "True", 4) == 0)))
		v = json_true();
	else if (n == 5 && (memcmp(p->s + start, "false", 5) == 0 ||
	    memcmp(p->s + start, "False", 5) == 0))
		v = json_false();
	else {
		size_t at = start + (p->s[start] == '-' || p->s[start] == '+');

		for (i = 0; nulls[i] != NULL; i++)
			if (strlen(nulls[i]) == start + n - at &&
			    memcmp(p->s + at, nulls[i], start + n - at) == 0)
				break;
		v = nulls[i] != NULL ? json_null() : json_stringn_nocheck(p->s + start, n);
	}
	if (v == NULL)
		p->oom = 1;
	return v;
}

static json_t *
parse_number(parser *p)
{
	double d;
	size_t at = p->pos;
	json_t *v;

	if (!qvl_bx_read_number(p->s, p->len, &p->pos, &d)) {
		if (p->pos == at)
			return parse_word(p);	/* "-Infinity" */
		v = json_null();	/* 1e999 */
	} else
		v = json_real(d);
	if (v == NULL)
		p->oom = 1;
	return v;
}

/* [...] or (...): values with optional commas. */
static json_t *
parse_array(parser *p)
{
	char close = p->s[p->pos] == '[' ? ']' : ')';
	json_t *a, *v;

	if ((a = json_array()) == NULL) {
		p->oom = 1;
		return NULL;
	}
	p->pos++;
	for (;;) {
		skip_space(p);
		if (p->pos < p->len && p->s[p->pos] == ',') {
			p->pos++;
			continue;
		}
		if (p->pos < p->len && p->s[p->pos] == close) {
			p->pos++;
			return a;
		}
		if ((v = parse_value(p)) == NULL || json_array_append_new(a, v) < 0) {
			if (v != NULL)
				p->oom = 1;
			json_decref(a);
			return NULL;
		}
	}
}

/* Numbers of a JSON value, arrays flattened (numeric strings count too); -1 on anything
 * else. */
static int
json_numbers(const json_t *v, double *out, int max, int *n)
{
	size_t i, at = 0;
	const char *s;
	double d;

	if (json_is_number(v)) {
		if (*n >= max)
			return -1;
		out[(*n)++] = json_number_value(v);
		return 0;
	}
	if (json_is_string(v)) {
		s = json_string_value(v);
		while (is_space((unsigned char)s[at]))
			at++;
		if (*n >= max || !qvl_bx_read_number(s, json_string_length(v), &at, &d))
			return -1;
		while (is_space((unsigned char)s[at]))
			at++;
		if (at != json_string_length(v))
			return -1;
		out[(*n)++] = d;
		return 0;
	}
	if (json_is_array(v)) {
		for (i = 0; i < json_array_size(v); i++)
			if (json_numbers(json_array_get(v, i), out, max, n) < 0)
				return -1;
		return 0;
	}
	return -1;
}

/* Keys whose string value names the region, in order of preference. */
static const char *const label_keys[] = {
	"label", "text_content", "text", "name", "category", "class", "description", "content",
	NULL
};

static char *
json_label(const json_t *obj)
{
	const char *key;
	const json_t *v;
	char num[64];
	int i;

	for (i = 0; label_keys[i] != NULL; i++) {
		v = json_object_get(obj, label_keys[i]);
		if (json_is_string(v))
			return strdup(json_string_value(v));
		if (json_is_number(v)) {
			qvl_boxes_fmt_number(num, sizeof num, json_number_value(v), -1);
			return strdup(num);
		}
	}
	json_object_foreach((json_t *)obj, key, v) {
		if (json_is_string(v))
			return strdup(json_string_value(v));
	}
	return strdup("");
}

/* A closed object: a box when it has bbox_2d or point_2d. */
static int
take_box(parser *p, const json_t *obj, size_t offset)
{
	const json_t *m;
	double nums[8];
	int n = 0, point;

	if ((m = json_object_get(obj, "bbox_2d")) != NULL)
		point = 0;
	else if ((m = json_object_get(obj, "point_2d")) != NULL)
		point = 1;
	else
		return 0;
	if (json_numbers(m, nums, 8, &n) < 0 || (point ? n != 2 : n != 4 && n != 2 && n != 8)) {
		p->list->malformed++;
		return 0;
	}
	return qvl_bx_push_box(p->list, n == 4 ? QVL_BOX_BBOX : n == 2 ? QVL_BOX_POINT :
	    QVL_BOX_QUAD, QVL_FMT_JSON, QVL_COORDS_ABS, json_label(obj), nums, n, offset, p->err);
}

/* A key: a string or a bare word, then ':' or '='. */
static json_t *
parse_key(parser *p)
{
	json_t *k;
	int kind;

	if ((kind = quote_at(p, p->pos)) >= 0)
		k = parse_string(p, kind);
	else if (p->pos < p->len && is_word_char((unsigned char)p->s[p->pos]))
		k = parse_word(p);
	else
		return NULL;
	if (k == NULL)
		return NULL;
	if (!json_is_string(k)) {
		/* None or True as a key: no grounding object has one. */
		json_decref(k);
		return NULL;
	}
	skip_space(p);
	if (p->pos >= p->len || (p->s[p->pos] != ':' && p->s[p->pos] != '=')) {
		json_decref(k);
		return NULL;
	}
	p->pos++;
	return k;
}

static json_t *
parse_object(parser *p)
{
	size_t start = p->pos;
	json_t *o, *k, *v;

	if ((o = json_object()) == NULL) {
		p->oom = 1;
		return NULL;
	}
	p->pos++;
	for (;;) {
		skip_space(p);
		if (p->pos < p->len && p->s[p->pos] == ',') {
			p->pos++;
			continue;
		}
		if (p->pos < p->len && p->s[p->pos] == '}')
			break;
		if ((k = parse_key(p)) == NULL) {
			json_decref(o);
			return NULL;
		}
		skip_space(p);
		if ((v = parse_value(p)) == NULL) {
			json_decref(k);
			json_decref(o);
			return NULL;
		}
		/* The last of duplicate keys wins, as with json.loads and literal_eval. */
		if (json_object_setn_new_nocheck(o, json_string_value(k), json_string_length(k),
		    v) < 0)
			p->oom = 1;
		json_decref(k);
		if (p->oom) {
			json_decref(o);
			return NULL;
		}
	}
	p->pos++;
	if (take_box(p, o, start) < 0) {
		p->oom = 1;
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *
parse_value(parser *p)
{
	json_t *v = NULL;
	int kind, c;

	skip_space(p);
	if (p->pos >= p->len || p->depth >= MAX_DEPTH)
		return NULL;
	c = (unsigned char)p->s[p->pos];
	p->depth++;
	if (c == '{')
		v = parse_object(p);
	else if (c == '[' || c == '(')
		v = parse_array(p);
	else if ((kind = quote_at(p, p->pos)) >= 0)
		v = parse_string(p, kind);
	else if (is_digit(c) || c == '-' || c == '+' || c == '.')
		v = parse_number(p);
	else if (is_word_char(c))
		v = parse_word(p);
	p->depth--;
	return v;
}

int
qvl_bx_parse_json(const char *s, size_t len, qvl_box_list *l, qvl_err *err)
{
	parser p = { .s = s, .len = len, .list = l, .err = err };
	const char *brace;
	json_t *v;
	size_t i = 0;

	while (i < len && (brace = memchr(s + i, '{', len - i)) != NULL) {
		i = (size_t)(brace - s);
		p.pos = i;
		p.depth = 0;
		p.bad_string = SIZE_MAX;
		if ((v = parse_value(&p)) != NULL) {
			json_decref(v);
			i = p.pos;
			continue;
		}
		if (p.oom)
			return qvl_fail(err, "boxes: out of memory");
		/* Objects may start inside a string that ran to the line end; not inside what
		 * was read as structure before the failure. */
		if (p.bad_string != SIZE_MAX)
			i = p.bad_string + 1;
		else
			i = p.pos > i ? p.pos : i + 1;
	}
	return 0;
}
