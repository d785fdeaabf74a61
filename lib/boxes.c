/* boxes.c: finding grounding boxes in a model's answer and mapping them to the original
 * image.  The answer is untrusted text of any length, possibly cut short anywhere: every
 * scanner here is bounded by `len`, never needs a terminating NUL and never reads past a
 * marker it has not found. */
#include "boxes_impl.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void
qvl_bx_sb_put(sbuf *b, const char *s, size_t n)
{
	char *p;
	size_t cap;

	if (b->oom)
		return;
	if (b->n + n + 1 > b->cap) {
		cap = b->cap ? b->cap : 64;
		while (cap < b->n + n + 1)
			cap *= 2;
		if ((p = realloc(b->s, cap)) == NULL) {
			b->oom = 1;
			return;
		}
		b->s = p;
		b->cap = cap;
	}
	memcpy(b->s + b->n, s, n);
	b->n += n;
	b->s[b->n] = '\0';
}

void
qvl_bx_sb_putc(sbuf *b, char c)
{
	qvl_bx_sb_put(b, &c, 1);
}

void
qvl_bx_sb_put_utf8(sbuf *b, uint32_t cp)
{
	char u[4];

	if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		cp = 0xfffd;
	if (cp < 0x80) {
		qvl_bx_sb_putc(b, (char)cp);
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | cp >> 6);
		u[1] = (char)(0x80 | (cp & 0x3f));
		qvl_bx_sb_put(b, u, 2);
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | cp >> 12);
		u[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		qvl_bx_sb_put(b, u, 3);
	} else {
		u[0] = (char)(0xf0 | cp >> 18);
		u[1] = (char)(0x80 | (cp >> 12 & 0x3f));
		u[2] = (char)(0x80 | (cp >> 6 & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		qvl_bx_sb_put(b, u, 4);
	}
}

/* Returns the buffer's string (an empty one when nothing was put), or NULL when out of
 * memory; the buffer is left empty either way. */
char *
qvl_bx_sb_take(sbuf *b)
{
	char *s;

	if (b->oom) {
		free(b->s);
		memset(b, 0, sizeof *b);
		return NULL;
	}
	s = b->s ? b->s : strdup("");
	memset(b, 0, sizeof *b);
	return s;
}

/* Trims and collapses runs of white space into one space. */
char *
qvl_bx_collapse_space(const char *s, size_t n)
{
	sbuf b = { 0 };
	size_t i;
	int pending = 0;

	for (i = 0; i < n; i++) {
		if (is_space((unsigned char)s[i])) {
			pending = b.n > 0;
			continue;
		}
		if (pending)
			qvl_bx_sb_putc(&b, ' ');
		pending = 0;
		qvl_bx_sb_putc(&b, s[i]);
	}
	return qvl_bx_sb_take(&b);
}

/*
 * Numbers.  The models write plain decimals, maybe signed; anything else ("inf", hex) is not
 * a coordinate, so strtod only ever sees a token this scanner has delimited.
 */

/* Reads one number at s[*i], advancing *i; 0 when there is none there. */
static int
read_number(const char *s, size_t len, size_t *i, double *v)
{
	char tok[64];
	size_t j = *i, start = *i, n;
	int digits = 0;

	if (j < len && (s[j] == '-' || s[j] == '+'))
		j++;
	while (j < len && is_digit((unsigned char)s[j])) {
		j++;
		digits++;
	}
	if (j < len && s[j] == '.') {
		j++;
		while (j < len && is_digit((unsigned char)s[j])) {
			j++;
			digits++;
		}
	}
	if (digits == 0)
		return 0;
	if (j + 1 < len && (s[j] == 'e' || s[j] == 'E')) {
		size_t k = j + 1;

		if (k < len && (s[k] == '-' || s[k] == '+'))
			k++;
		if (k < len && is_digit((unsigned char)s[k])) {
			while (k < len && is_digit((unsigned char)s[k]))
				k++;
			j = k;
		}
	}
	n = j - start;
	if (n >= sizeof tok)
		n = sizeof tok - 1;
	memcpy(tok, s + start, n);
	tok[n] = '\0';
	*v = strtod(tok, NULL);
	*i = j;
	return isfinite(*v);
}

/* All numbers in s[0..len), at most max kept; returns how many there were. */
int
qvl_bx_read_numbers(const char *s, size_t len, double *out, int max)
{
	size_t i = 0;
	int n = 0;
	double v;

	while (i < len) {
		if (is_digit((unsigned char)s[i]) || ((s[i] == '-' || s[i] == '+' || s[i] == '.') &&
		    i + 1 < len && (is_digit((unsigned char)s[i + 1]) || s[i + 1] == '.'))) {
			if (read_number(s, len, &i, &v)) {
				if (n < max)
					out[n] = v;
				n++;
				continue;
			}
		}
		i++;
	}
	return n;
}

int
qvl_bx_push_box(qvl_box_list *l, qvl_box_kind kind, qvl_box_format fmt, qvl_coords coords,
    char *label, const double *nums, int n, size_t offset, qvl_err *err)
{
	qvl_box *b, *v;
	size_t cap;

	if (label == NULL)
		return qvl_fail(err, "boxes: out of memory");
	if (l->n == l->cap) {
		cap = l->cap ? 2 * l->cap : 16;
		if ((v = realloc(l->v, cap * sizeof *v)) == NULL) {
			free(label);
			return qvl_fail(err, "boxes: out of memory");
		}
		l->v = v;
		l->cap = cap;
	}
	b = &l->v[l->n++];
	memset(b, 0, sizeof *b);
	b->kind = kind;
	b->format = fmt;
	b->coords = coords;
	b->label = label;
	b->nmodel = n;
	memcpy(b->model, nums, (size_t)n * sizeof *nums);
	b->offset = offset;
	return 0;
}

void
qvl_boxes_free(qvl_box_list *list)
{
	size_t i;

	for (i = 0; i < list->n; i++)
		free(list->v[i].label);
	free(list->v);
	memset(list, 0, sizeof *list);
}

/*
 * Qwen2.5-VL JSON.  Every balanced {...} is tried with jansson; an object with bbox_2d or
 * point_2d is a box.  A list cut short by the token limit leaves its complete objects
 * balanced, so they are all found; an object that jansson rejects (single quotes, a
 * trailing comma) gets a lenient second reading when it has no nested object.
 */

/* End (one past the closing brace) of the balanced object at s[at] == '{', or 0 when it is
 * not closed within len or its brackets do not match. */
static size_t
match_object(const char *s, size_t at, size_t len)
{
	char stack[256];
	int depth = 0, in_str = 0;
	size_t i;

	/* A grounding object is short; a longer span is looked into instead (by the caller),
	 * which keeps many unclosed braces from taking quadratic time. */
	if (len - at > ((size_t)256 << 10))
		len = at + ((size_t)256 << 10);
	for (i = at; i < len; i++) {
		char c = s[i];

		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = 0;
			continue;
		}
		switch (c) {
		case '"':
			in_str = 1;
			break;
		case '{':
		case '[':
			if (depth == (int)sizeof stack)
				return 0;
			stack[depth++] = c == '{' ? '}' : ']';
			break;
		case '}':
		case ']':
			if (depth == 0 || stack[depth - 1] != c)
				return 0;
			if (--depth == 0)
				return i + 1;
			break;
		}
	}
	return 0;
}

/* Numbers of a JSON value, arrays flattened (numeric strings count too); -1 on anything
 * else. */
static int
json_numbers(const json_t *v, double *out, int max, int *n)
{
	size_t i;
	const char *s;
	char *end;
	double d;

	if (json_is_number(v)) {
		if (*n >= max)
			return -1;
		out[(*n)++] = json_number_value(v);
		return 0;
	}
	if (json_is_string(v)) {
		s = json_string_value(v);
		errno = 0;
		d = strtod(s, &end);
		if (end == s || *end != '\0' || errno != 0 || !isfinite(d) || *n >= max)
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
			qvl_boxes_fmt_number(num, sizeof num, json_number_value(v), 6);
			return strdup(num);
		}
	}
	json_object_foreach((json_t *)obj, key, v) {
		if (json_is_string(v))
			return strdup(json_string_value(v));
	}
	return strdup("");
}

/* One object: a box when it has bbox_2d / point_2d, then any boxes nested in its members. */
static int
json_walk(const json_t *v, size_t offset, qvl_box_list *l, qvl_err *err)
{
	const json_t *m;
	const char *key;
	double nums[8];
	int n;
	size_t i;

	if (json_is_array(v)) {
		for (i = 0; i < json_array_size(v); i++)
			if (json_walk(json_array_get(v, i), offset, l, err) < 0)
				return -1;
		return 0;
	}
	if (!json_is_object(v))
		return 0;
	if ((m = json_object_get(v, "bbox_2d")) != NULL) {
		n = 0;
		if (json_numbers(m, nums, 8, &n) == 0 && (n == 4 || n == 2 || n == 8)) {
			if (qvl_bx_push_box(l, n == 4 ? QVL_BOX_BBOX : n == 2 ? QVL_BOX_POINT : QVL_BOX_QUAD,
			    QVL_FMT_JSON, QVL_COORDS_ABS, json_label(v), nums, n, offset, err) < 0)
				return -1;
		} else
			l->malformed++;
	} else if ((m = json_object_get(v, "point_2d")) != NULL) {
		n = 0;
		if (json_numbers(m, nums, 8, &n) == 0 && n == 2) {
			if (qvl_bx_push_box(l, QVL_BOX_POINT, QVL_FMT_JSON, QVL_COORDS_ABS, json_label(v),
			    nums, n, offset, err) < 0)
				return -1;
		} else
			l->malformed++;
	}
	json_object_foreach((json_t *)v, key, m) {
		if (json_is_object(m) || json_is_array(m))
			if (json_walk(m, offset, l, err) < 0)
				return -1;
	}
	return 0;
}

/* The value of a quoted string starting at s[*i] (the quote), backslash escapes decoded;
 * *i ends after the closing quote.  NULL when it is not closed. */
static char *
lenient_string(const char *s, size_t len, size_t *i)
{
	sbuf b = { 0 };
	char q = s[*i];
	size_t j = *i + 1;
	uint32_t cp;
	int k;

	for (; j < len && s[j] != q; j++) {
		if (s[j] != '\\' || j + 1 >= len) {
			qvl_bx_sb_putc(&b, s[j]);
			continue;
		}
		switch (s[++j]) {
		case 'n': qvl_bx_sb_putc(&b, '\n'); break;
		case 't': qvl_bx_sb_putc(&b, '\t'); break;
		case 'r': qvl_bx_sb_putc(&b, '\r'); break;
		case 'u':
			cp = 0;
			for (k = 1; k <= 4 && j + k < len; k++) {
				int c = lower((unsigned char)s[j + k]);

				if (is_digit(c))
					cp = cp * 16 + (uint32_t)(c - '0');
				else if (c >= 'a' && c <= 'f')
					cp = cp * 16 + (uint32_t)(c - 'a' + 10);
				else
					break;
			}
			if (k == 5) {
				qvl_bx_sb_put_utf8(&b, cp);
				j += 4;
			} else
				qvl_bx_sb_putc(&b, 'u');
			break;
		default: qvl_bx_sb_putc(&b, s[j]); break;
		}
	}
	if (j >= len) {
		free(qvl_bx_sb_take(&b));
		return NULL;
	}
	*i = j + 1;
	return qvl_bx_sb_take(&b);
}

/* Position just after `key` written as a key ("key":, 'key':, key: or key=) in s[0..len),
 * or 0 when absent. */
static size_t
lenient_key(const char *s, size_t len, const char *key)
{
	size_t kl = strlen(key), from = 0, j;
	const char *p;

	while ((p = find(s, from, len, key)) != NULL) {
		j = (size_t)(p - s) + kl;
		from = j;
		if (p > s && (p[-1] == '_' || (lower((unsigned char)p[-1]) >= 'a' &&
		    lower((unsigned char)p[-1]) <= 'z')))
			continue;
		if (j < len && (s[j] == '"' || s[j] == '\''))
			j++;
		while (j < len && is_space((unsigned char)s[j]))
			j++;
		if (j < len && (s[j] == ':' || s[j] == '=')) {
			j++;
			while (j < len && is_space((unsigned char)s[j]))
				j++;
			return j;
		}
	}
	return 0;
}

/* A flat object jansson rejected: bbox_2d / point_2d and a label read by hand. */
static int
lenient_object(const char *s, size_t len, size_t offset, qvl_box_list *l, int *found,
    qvl_err *err)
{
	static const char *const keys[] = { "bbox_2d", "point_2d" };
	double nums[8];
	size_t j, end;
	char *label = NULL;
	int k, n, i;

	*found = 0;
	for (k = 0; k < 2; k++) {
		if ((j = lenient_key(s, len, keys[k])) == 0 || (s[j] != '[' && s[j] != '('))
			continue;
		for (end = j; end < len && s[end] != ']' && s[end] != ')'; end++)
			;
		if (end == len)
			continue;
		n = qvl_bx_read_numbers(s + j, end - j, nums, 8);
		*found = 1;
		if (!(k == 0 ? n == 4 || n == 2 || n == 8 : n == 2)) {
			l->malformed++;
			return 0;
		}
		for (i = 0; label == NULL && label_keys[i] != NULL; i++)
			if ((j = lenient_key(s, len, label_keys[i])) != 0 &&
			    (s[j] == '"' || s[j] == '\''))
				label = lenient_string(s, len, &j);
		if (label == NULL)
			label = strdup("");
		return qvl_bx_push_box(l, n == 4 ? QVL_BOX_BBOX : n == 2 ? QVL_BOX_POINT : QVL_BOX_QUAD,
		    QVL_FMT_JSON, QVL_COORDS_ABS, label, nums, n, offset, err);
	}
	return 0;
}

static int
parse_json(const char *s, size_t len, qvl_box_list *l, qvl_err *err)
{
	json_error_t jerr;
	json_t *v;
	size_t i = 0, end;
	int found, has_box;

	while (i < len) {
		const char *p = memchr(s + i, '{', len - i);

		if (p == NULL)
			break;
		i = (size_t)(p - s);
		if ((end = match_object(s, i, len)) == 0) {
			i++;
			continue;
		}
		v = json_loadb(s + i, end - i, JSON_DISABLE_EOF_CHECK, &jerr);
		if (v != NULL) {
			has_box = json_object_get(v, "bbox_2d") != NULL ||
			    json_object_get(v, "point_2d") != NULL;
			if (has_box && json_walk(v, i, l, err) < 0) {
				json_decref(v);
				return -1;
			}
			json_decref(v);
			/* An object without a box of its own may hold some: look inside. */
			i = has_box ? end : i + 1;
			continue;
		}
		if (memchr(s + i + 1, '{', end - i - 1) == NULL) {
			if (lenient_object(s + i, end - i, i, l, &found, err) < 0)
				return -1;
			if (found) {
				i = end;
				continue;
			}
		}
		i++;
	}
	return 0;
}

/*
 * Qwen2-VL special tokens and Qwen-VL tags.  A box takes the label of the last reference
 * written before it on the same line, so "<ref>cat</ref><box>..</box><box>..</box>" labels
 * both boxes.
 */

enum { M_REF, M_BOX, M_QUAD };

static const struct marker {
	const char *open, *close;
	int what;
	qvl_box_format fmt;
} markers[] = {
	{ "<|object_ref_start|>", "<|object_ref_end|>", M_REF, QVL_FMT_TOKENS },
	{ "<|box_start|>", "<|box_end|>", M_BOX, QVL_FMT_TOKENS },
	{ "<|quad_start|>", "<|quad_end|>", M_QUAD, QVL_FMT_TOKENS },
	{ "<ref>", "</ref>", M_REF, QVL_FMT_TAGS },
	{ "<box>", "</box>", M_BOX, QVL_FMT_TAGS },
	{ "<quad>", "</quad>", M_QUAD, QVL_FMT_TAGS },
};

static int
parse_tags(const char *s, size_t len, qvl_box_list *l, qvl_err *err)
{
	const struct marker *m;
	const char *p, *close;
	char *ref = NULL, *label;
	size_t i = 0, ref_end = 0, body, k, ol;
	double nums[8];
	int n, ret = 0, want;

	while (i < len && (p = memchr(s + i, '<', len - i)) != NULL) {
		i = (size_t)(p - s);
		m = NULL;
		for (k = 0; k < sizeof markers / sizeof markers[0]; k++) {
			ol = strlen(markers[k].open);
			if (len - i >= ol && memcmp(s + i, markers[k].open, ol) == 0) {
				m = &markers[k];
				break;
			}
		}
		if (m == NULL) {
			i++;
			continue;
		}
		body = i + strlen(m->open);
		if ((close = find(s, body, len, m->close)) == NULL) {
			/* Cut short: nothing complete follows. */
			break;
		}
		if (m->what == M_REF) {
			free(ref);
			if ((ref = qvl_bx_collapse_space(s + body, (size_t)(close - s) - body)) == NULL) {
				ret = qvl_fail(err, "boxes: out of memory");
				break;
			}
			ref_end = (size_t)(close - s) + strlen(m->close);
			i = ref_end;
			continue;
		}
		n = qvl_bx_read_numbers(s + body, (size_t)(close - s) - body, nums, 8);
		want = m->what == M_BOX ? 4 : 8;
		if (n != want) {
			l->malformed++;
		} else {
			label = ref != NULL && ref_end <= i && memchr(s + ref_end, '\n', i - ref_end)
			    == NULL ? strdup(ref) : strdup("");
			if (qvl_bx_push_box(l, m->what == M_BOX ? QVL_BOX_BBOX : QVL_BOX_QUAD, m->fmt,
			    QVL_COORDS_NORM1000, label, nums, n, i, err) < 0) {
				ret = -1;
				break;
			}
		}
		i = (size_t)(close - s) + strlen(m->close);
		if (ref != NULL && memchr(s + ref_end, '\n', i - ref_end) == NULL)
			ref_end = i;	/* the next box on this line shares the label */
	}
	free(ref);
	return ret;
}

/* Stable sort of v[0..n) by offset: the three scanners each append in order. */
static int
sort_by_offset(qvl_box *v, size_t n, qvl_err *err)
{
	qvl_box *tmp, *a, *b, *t;
	size_t width, lo, mid, hi, i, j, k;

	if (n < 2)
		return 0;
	if ((tmp = malloc(n * sizeof *tmp)) == NULL)
		return qvl_fail(err, "boxes: out of memory");
	a = v;
	b = tmp;
	for (width = 1; width < n; width *= 2) {
		for (lo = 0; lo < n; lo += 2 * width) {
			mid = lo + width < n ? lo + width : n;
			hi = lo + 2 * width < n ? lo + 2 * width : n;
			for (i = lo, j = mid, k = lo; k < hi; k++)
				b[k] = i < mid && (j >= hi || a[i].offset <= a[j].offset) ?
				    a[i++] : a[j++];
		}
		t = a;
		a = b;
		b = t;
	}
	if (a != v)
		memcpy(v, a, n * sizeof *v);
	free(tmp);
	return 0;
}

int
qvl_boxes_parse(const char *text, size_t len, qvl_box_list *list, qvl_err *err)
{
	size_t start = list->n;

	if (len == 0)
		return 0; /* nothing to find, and text may be NULL */
	if (parse_json(text, len, list, err) < 0 || parse_tags(text, len, list, err) < 0 ||
	    qvl_bx_parse_html(text, len, list, err) < 0)
		return -1;
	if (list->n == start)
		return 0; /* none found: list->v may still be NULL */
	return sort_by_offset(list->v + start, list->n - start, err);
}

