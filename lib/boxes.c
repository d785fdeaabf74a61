/* boxes.c: finding grounding boxes in a model's answer and mapping them to the original
 * image.  The answer is untrusted text of any length, possibly cut short anywhere: every
 * scanner here is bounded by `len`, never needs a terminating NUL and never reads past a
 * marker it has not found. */
#include "boxes_impl.h"

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

	/* NUL too: a label is a C string, and U+FFFD is what HTML makes of &#0;. */
	if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
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

/* Trims and collapses runs of white space into one space; a NUL becomes U+FFFD. */
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
		if (s[i] == '\0')
			qvl_bx_sb_put_utf8(&b, 0);
		else
			qvl_bx_sb_putc(&b, s[i]);
	}
	return qvl_bx_sb_take(&b);
}

/*
 * Numbers.  The models write plain decimals, maybe signed; anything else ("inf", hex) is not
 * a coordinate, so strtod only ever sees a token this scanner has delimited.
 */

int
qvl_bx_read_number(const char *s, size_t len, size_t *i, double *v)
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

/* What may stand between a marker's numbers. */
static int
is_number_sep(int c)
{
	return is_space(c) || c == ',' || c == ';' || c == '(' || c == ')' || c == '[' ||
	    c == ']';
}

int
qvl_bx_read_numbers(const char *s, size_t len, double *out, int max)
{
	size_t i = 0;
	int n = 0;
	double v;

	while (i < len) {
		if (is_number_sep((unsigned char)s[i])) {
			i++;
			continue;
		}
		/* A word among the numbers ("NaN", "None") leaves no way to tell which number
		 * is which. */
		if (!qvl_bx_read_number(s, len, &i, &v) ||
		    (i < len && !is_number_sep((unsigned char)s[i])))
			return -1;
		if (n < max)
			out[n] = v;
		n++;
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

/* The marker whose open or close tag is at s[i], or NULL; *closing tells which. */
static const struct marker *
marker_at(const char *s, size_t len, size_t i, int *closing)
{
	size_t k, n;

	for (k = 0; k < sizeof markers / sizeof markers[0]; k++) {
		n = strlen(markers[k].open);
		if (len - i >= n && memcmp(s + i, markers[k].open, n) == 0) {
			*closing = 0;
			return &markers[k];
		}
		n = strlen(markers[k].close);
		if (len - i >= n && memcmp(s + i, markers[k].close, n) == 0) {
			*closing = 1;
			return &markers[k];
		}
	}
	return NULL;
}

static int
parse_tags(const char *s, size_t len, qvl_box_list *l, qvl_err *err)
{
	const struct marker *m, *next = NULL;
	const char *p, *lt = NULL;
	char *ref = NULL, *label;
	size_t i = 0, ref_end = 0, body, end, j;
	double nums[8];
	int n, ret = 0, closing;

	while (i < len && (p = memchr(s + i, '<', len - i)) != NULL) {
		i = (size_t)(p - s);
		if ((m = marker_at(s, len, i, &closing)) == NULL || closing) {
			i++;
			continue;
		}
		/* A marker's body ends at the next marker: its own close, else it was prose ("the
		 * <ref> tag") or is broken, and the next marker is read on its own. */
		body = i + strlen(m->open);
		for (j = body; (lt = memchr(s + j, '<', len - j)) != NULL; j = (size_t)(lt - s) + 1)
			if ((next = marker_at(s, len, (size_t)(lt - s), &closing)) != NULL)
				break;
		if (lt == NULL)
			break;	/* cut short: nothing complete follows */
		end = (size_t)(lt - s);
		if (next != m || !closing) {
			if (m->what != M_REF)
				l->malformed++;
			i = end;
			continue;
		}
		if (m->what == M_REF) {
			free(ref);
			if ((ref = qvl_bx_collapse_space(s + body, end - body)) == NULL) {
				ret = qvl_fail(err, "boxes: out of memory");
				break;
			}
			ref_end = end + strlen(m->close);
			i = ref_end;
			continue;
		}
		n = qvl_bx_read_numbers(s + body, end - body, nums, 8);
		/* A box of two numbers is a point: Qwen2-VL's click "<|box_start|>(x,y)". */
		if (m->what == M_BOX ? n != 4 && n != 2 : n != 8) {
			l->malformed++;
		} else {
			label = ref != NULL && ref_end <= i && memchr(s + ref_end, '\n', i - ref_end)
			    == NULL ? strdup(ref) : strdup("");
			if (qvl_bx_push_box(l, m->what == M_QUAD ? QVL_BOX_QUAD : n == 2 ?
			    QVL_BOX_POINT : QVL_BOX_BBOX, m->fmt, QVL_COORDS_NORM1000, label, nums, n,
			    i, err) < 0) {
				ret = -1;
				break;
			}
		}
		i = end + strlen(m->close);
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

	/* Usually one scanner found them all, already in order. */
	for (i = 1; i < n && v[i - 1].offset <= v[i].offset; i++)
		;
	if (i >= n)
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
	if (qvl_bx_parse_json(text, len, list, err) < 0 || parse_tags(text, len, list, err) < 0 ||
	    qvl_bx_parse_html(text, len, list, err) < 0 ||
	    qvl_bx_parse_points(text, len, list, err) < 0)
		return -1;
	if (list->n == start)
		return 0; /* none found: list->v may still be NULL */
	return sort_by_offset(list->v + start, list->n - start, err);
}

