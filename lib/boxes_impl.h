/* boxes_impl.h: what the parts of the boxes module (boxes.c, boxes_json.c, boxes_html.c,
 * boxes_map.c) share; not part of the library's interface. */
#ifndef QVL_BOXES_IMPL_H
#define QVL_BOXES_IMPL_H

#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "boxes.h"

/* A growing byte buffer; `oom` sticks so callers check once at the end. */
typedef struct sbuf {
	char *s;
	size_t n, cap;
	int oom;
} sbuf;

void qvl_bx_sb_put(sbuf *b, const char *s, size_t n);
void qvl_bx_sb_putc(sbuf *b, char c);
void qvl_bx_sb_put_utf8(sbuf *b, uint32_t cp);
/* Returns the buffer's string (an empty one when nothing was put), or NULL when out of
 * memory; the buffer is left empty either way. */
char *qvl_bx_sb_take(sbuf *b);
/* Trims and collapses runs of white space into one space; NULL when out of memory. */
char *qvl_bx_collapse_space(const char *s, size_t n);
/* Reads one finite number at s[*i], advancing *i past it; 0 when there is none there
 * (*i unmoved when there are no digits). */
int qvl_bx_read_number(const char *s, size_t len, size_t *i, double *v);
/* The numbers of a marker, s[0..len), separated by white space, commas, semicolons,
 * parentheses or brackets; at most max kept.  Returns how many there were, or -1 when
 * anything else is there. */
int qvl_bx_read_numbers(const char *s, size_t len, double *out, int max);
/* Appends a box, taking ownership of label (NULL = out of memory). */
int qvl_bx_push_box(qvl_box_list *l, qvl_box_kind kind, qvl_box_format fmt, qvl_coords coords,
    char *label, const double *nums, int n, size_t offset, qvl_err *err);
int qvl_bx_parse_json(const char *s, size_t len, qvl_box_list *l, qvl_err *err);
int qvl_bx_parse_html(const char *s, size_t len, qvl_box_list *l, qvl_err *err);
int qvl_bx_parse_points(const char *s, size_t len, qvl_box_list *l, qvl_err *err);

static inline int
is_space(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static inline int
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static inline int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* The first WHAT in [from, len).  Not memmem: sanitizers check its whole haystack on every
 * call, which made a scan for many markers quadratic under ASan (1 MiB of attributes: half
 * a second, on a slow CI host over its time limit); memchr is checked up to its match. */
static inline const char *
find(const char *s, size_t from, size_t len, const char *what)
{
	size_t wl = strlen(what);
	const char *p, *last;

	if (from > len || wl > len - from)
		return NULL;
	if (wl == 0)
		return s + from;
	last = s + len - wl;
	for (p = s + from; p <= last && (p = memchr(p, what[0], (size_t)(last - p) + 1)) != NULL;
	    p++)
		if (memcmp(p, what, wl) == 0)
			return p;
	return NULL;
}

static inline int
name_eq(const char *a, size_t an, const char *b, size_t bn)
{
	size_t i;

	if (an != bn)
		return 0;
	for (i = 0; i < an; i++)
		if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
			return 0;
	return 1;
}

static inline int
is_name_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '-' ||
	    c == ':' || c == '_';
}

#endif
