/* boxes_html.c: boxes in QwenVL HTML, the document-parsing output of Qwen2.5-VL, and the
 * cookbook's XML points. */
#include "boxes_impl.h"

#include <stdlib.h>
#include <string.h>

/*
 * QwenVL HTML: <tag ... data-bbox="x1 y1 x2 y2" ...>text</tag>.  The label is the element's
 * text (nested tags dropped, entities decoded, white space collapsed); an element without
 * text (an image) is named by its alt or class attribute, or its tag.
 */

static const char *const void_tags[] = {
	"img", "br", "hr", "input", "meta", "link", "area", "col", "source", "wbr", NULL
};

static const char *const spaced_tags[] = {
	"br", "p", "div", "td", "th", "tr", "li", "table", "h1", "h2", "h3", "h4", "h5", "h6",
	"hr", "ul", "ol", "section", "header", "footer", NULL
};

static int
in_list(const char *const *list, const char *name, size_t n)
{
	int i;

	for (i = 0; list[i] != NULL; i++)
		if (name_eq(list[i], strlen(list[i]), name, n))
			return 1;
	return 0;
}

/* Decodes the entity at s[*i] == '&' when it is one, advancing *i. */
static int
html_entity(const char *s, size_t len, size_t *i, sbuf *b)
{
	static const struct { const char *name; uint32_t cp; } named[] = {
		{ "amp", '&' }, { "lt", '<' }, { "gt", '>' }, { "quot", '"' }, { "apos", '\'' },
		{ "nbsp", ' ' }, { "ndash", 0x2013 }, { "mdash", 0x2014 }, { "hellip", 0x2026 },
		{ "copy", 0xa9 }, { "reg", 0xae }, { "deg", 0xb0 }, { "times", 0xd7 },
	};
	size_t j = *i + 1, k, end;
	uint32_t cp = 0;

	for (end = j; end < len && end - j < 12 && s[end] != ';'; end++)
		;
	if (end >= len || s[end] != ';' || end == j)
		return 0;
	if (s[j] == '#') {
		int hex = j + 1 < end && lower((unsigned char)s[j + 1]) == 'x';

		for (k = j + 1 + (size_t)hex; k < end; k++) {
			int c = lower((unsigned char)s[k]);

			if (is_digit(c))
				cp = cp * (hex ? 16 : 10) + (uint32_t)(c - '0');
			else if (hex && c >= 'a' && c <= 'f')
				cp = cp * 16 + (uint32_t)(c - 'a' + 10);
			else
				return 0;
			if (cp > 0x10ffff)
				return 0;
		}
		if (k == j + 1 + (size_t)hex)
			return 0;
		qvl_bx_sb_put_utf8(b, cp);
		*i = end + 1;
		return 1;
	}
	for (k = 0; k < sizeof named / sizeof named[0]; k++) {
		if (name_eq(named[k].name, strlen(named[k].name), s + j, end - j) &&
		    memcmp(named[k].name, s + j, end - j) == 0) {
			qvl_bx_sb_put_utf8(b, named[k].cp);
			*i = end + 1;
			return 1;
		}
	}
	return 0;
}

/* The text of s[0..len): tags dropped (block tags leave a space), entities decoded,
 * white space collapsed, NUL made U+FFFD as HTML does. */
static char *
html_text(const char *s, size_t len)
{
	sbuf b = { 0 };
	size_t i = 0, j;
	char *raw, *text;

	while (i < len) {
		if (s[i] == '<') {
			for (j = i + 1; j < len && s[j] != '>'; j++)
				;
			size_t ns = i + 1 + (i + 1 < len && s[i + 1] == '/');
			size_t ne = ns;

			while (ne < len && is_name_char((unsigned char)s[ne]))
				ne++;
			if (in_list(spaced_tags, s + ns, ne - ns))
				qvl_bx_sb_putc(&b, ' ');
			i = j < len ? j + 1 : len;
			continue;
		}
		if (s[i] == '&' && html_entity(s, len, &i, &b))
			continue;
		if (s[i] == '\0')
			qvl_bx_sb_put_utf8(&b, 0);
		else
			qvl_bx_sb_putc(&b, s[i]);
		i++;
	}
	if ((raw = qvl_bx_sb_take(&b)) == NULL)
		return NULL;
	text = qvl_bx_collapse_space(raw, strlen(raw));
	free(raw);
	return text;
}

/* The value of the attribute whose name ends at *j: s[*vs..*ve), *j past it (past the
 * closing quote, when there is one).  0: no '=' follows the name; -1: the text ends before
 * the value does (what there is of it is the value: empty, or a quote never closed). */
static int
attr_value(const char *s, size_t len, size_t *j, size_t *vs, size_t *ve)
{
	size_t i = *j;
	char q;

	while (i < len && is_space((unsigned char)s[i]))
		i++;
	if (i >= len || s[i] != '=')
		return 0;
	i++;
	while (i < len && is_space((unsigned char)s[i]))
		i++;
	if (i >= len) {
		*vs = *ve = len;
		return -1;
	}
	q = s[i];
	if (q == '"' || q == '\'') {
		*vs = ++i;
		while (i < len && s[i] != q)
			i++;
		*ve = i;
		if (i >= len)
			return -1;
		i++;
	} else {
		*vs = i;
		while (i < len && !is_space((unsigned char)s[i]) && s[i] != '>')
			i++;
		*ve = i;
	}
	*j = i;
	return 1;
}

/* The value of attribute `name` in the start tag s[0..len), decoded; NULL when absent. */
static char *
html_attr(const char *s, size_t len, const char *name)
{
	size_t nl = strlen(name), i, j, vs, ve;

	for (i = 1; i + nl < len; i++) {
		if (!is_space((unsigned char)s[i - 1]) || !name_eq(s + i, nl, name, nl))
			continue;
		j = i + nl;
		if (attr_value(s, len, &j, &vs, &ve) != 0)
			return html_text(s + vs, ve - vs);
	}
	return NULL;
}

/* How far an element's closing tag is looked for, and a start tag's '<' before data-bbox:
 * a cut-short document of thousands of unclosed elements must not take quadratic time. */
#define ELEMENT_LIMIT ((size_t)64 << 10)
#define TAG_LIMIT ((size_t)4 << 10)
#define SCAN_PER_BYTE 16 /* bytes all elements' ends may scan per byte of answer */

/* End of the element whose content starts at `from`: the offset of its closing tag
 * </name>, counting nested elements of the same name; len when it is not closed within
 * ELEMENT_LIMIT.  *any_close tells whether some </name> was seen at all.  *budget is
 * what the whole answer may still scan: many elements left open, each a little apart,
 * would otherwise cost ELEMENT_LIMIT apiece (a 1 MiB answer of them took 1.7 s), and
 * past it an element counts as not closed. */
static size_t
html_element_end(const char *s, size_t from, size_t len, const char *name, size_t nl,
    int *any_close, size_t *budget)
{
	size_t i = from, depth = 1, end = len - from > ELEMENT_LIMIT ? from + ELEMENT_LIMIT : len;
	const char *p;

	if (end - from > *budget)
		end = from + *budget;
	*budget -= end - from;
	*any_close = end < len;
	while (i < end && (p = memchr(s + i, '<', end - i)) != NULL) {
		size_t at = (size_t)(p - s), ns = at + 1;
		int closing = ns < len && s[ns] == '/';

		ns += (size_t)closing;
		if (ns + nl <= len && name_eq(s + ns, nl, name, nl) &&
		    (ns + nl == len || !is_name_char((unsigned char)s[ns + nl]))) {
			if (!closing)
				depth++;
			else if ((*any_close = 1) && --depth == 0)
				return at;
		}
		i = at + 1;
	}
	return len;
}

/* The '>' that ends the start tag opened at `at`, from j on, quotes respected; where the
 * scan stopped (len, or TAG_LIMIT past `at`: a longer tag is no model's, and an unbounded
 * scan from every attribute of a tag never closed would be quadratic) when there is none. */
static size_t
start_tag_end(const char *s, size_t at, size_t j, size_t len)
{
	char q = 0;

	for (; j < len && j - at < TAG_LIMIT; j++) {
		if (q != 0) {
			if (s[j] == q)
				q = 0;
		} else if (s[j] == '"' || s[j] == '\'') {
			q = s[j];
		} else if (s[j] == '>') {
			break;
		}
	}
	return j;
}

/* What the element scans of one answer share: the name of an element no </name> follows
 * (and where it started), and the bytes still to scan. */
struct element_scan {
	char unclosed[16];
	size_t unclosed_after, budget;
};

/* The label of the element whose start tag opens at `tag` and whose scan stopped at j:
 * its text, else its alt= or class= attribute, else its name. */
static int
html_tag_label(const char *s, size_t len, size_t tag, size_t name_s, size_t name_e, size_t j,
    struct element_scan *st, char **out)
{
	/* the attributes end where the tag does, or where its scan stopped */
	size_t tag_end = j < len && s[j] == '>' ? j + 1 : j;
	size_t start_end = j < len && s[j] == '>' ? j + 1 : len;
	size_t content_end, nl = name_e - name_s;
	char *label = NULL, *alt;
	int any_close;

	if (start_end < len && !(j > 0 && s[j - 1] == '/') &&
	    !in_list(void_tags, s + name_s, nl)) {
		/* No </name> anywhere after an earlier element: none after this one. */
		if (st->unclosed[0] != '\0' && start_end >= st->unclosed_after &&
		    name_eq(st->unclosed, strlen(st->unclosed), s + name_s, nl)) {
			content_end = len;
		} else {
			content_end = html_element_end(s, start_end, len, s + name_s, nl,
			    &any_close, &st->budget);
			if (!any_close && nl < sizeof st->unclosed) {
				memcpy(st->unclosed, s + name_s, nl);
				st->unclosed[nl] = '\0';
				st->unclosed_after = start_end;
			}
		}
		if (content_end == len) {
			/* Not closed (cut short): its text runs to the next tag. */
			const char *lt = memchr(s + start_end, '<', len - start_end);

			content_end = lt ? (size_t)(lt - s) : len;
		}
		if ((label = html_text(s + start_end, content_end - start_end)) == NULL)
			return -1;
	}
	if (label == NULL || label[0] == '\0') {
		alt = html_attr(s + tag, tag_end - tag, "alt");
		if (alt == NULL || alt[0] == '\0') {
			free(alt);
			alt = html_attr(s + tag, tag_end - tag, "class");
		}
		free(label);
		if (alt != NULL && alt[0] != '\0') {
			label = alt;
		} else {
			free(alt);
			label = strndup(s + name_s, nl);
		}
	}
	*out = label;
	return label == NULL ? -1 : 0;
}

int
qvl_bx_parse_html(const char *s, size_t len, qvl_box_list *l, qvl_err *err)
{
	const char *p;
	size_t from = 0, at, tag, name_s, name_e, j, vs, ve, scanned_tag = SIZE_MAX;
	double nums[8];
	char *tag_label = NULL;
	struct element_scan st = { "", 0, SCAN_PER_BYTE * len + ELEMENT_LIMIT };
	int n, found;

	while ((p = find(s, from, len, "data-bbox")) != NULL) {
		at = (size_t)(p - s);
		from = at + 9;
		/* Inside a start tag: the nearest of '<' and '>' before it is '<'. */
		for (tag = at; tag > 0 && at - tag < TAG_LIMIT && s[tag - 1] != '<' &&
		    s[tag - 1] != '>'; tag--)
			;
		if (tag == 0 || s[tag - 1] != '<')
			continue;
		tag--;
		name_s = tag + 1;
		for (name_e = name_s; name_e < at && is_name_char((unsigned char)s[name_e]); name_e++)
			;
		j = from;
		if ((found = attr_value(s, len, &j, &vs, &ve)) == 0)
			continue;
		if (found < 0)
			break;	/* cut short inside the value */
		n = qvl_bx_read_numbers(s + vs, ve - vs, nums, 8);
		if (n != 4) {
			l->malformed++;
			continue;
		}
		/* One scan and one label per tag, however many data-bbox attributes it holds:
		 * each attribute's own look for alt= across a never-closed tag made 1 MiB of
		 * them cost a second. */
		if (tag != scanned_tag) {
			scanned_tag = tag;
			free(tag_label);
			tag_label = NULL;
			j = start_tag_end(s, tag, j, len);
			if (html_tag_label(s, len, tag, name_s, name_e, j, &st, &tag_label) < 0)
				return qvl_fail(err, "boxes: out of memory");
		}
		if (qvl_bx_push_box(l, QVL_BOX_BBOX, QVL_FMT_HTML, QVL_COORDS_ABS,
		    strdup(tag_label), nums, 4, tag, err) < 0) {
			free(tag_label);
			return -1;
		}
	}
	free(tag_label);
	return 0;
}


/*
 * The spatial-understanding cookbook's XML points (its decode_xml_points):
 * <points x1="x" y1="y" x2=".." y2=".." alt="what">phrase</points>, absolute pixels.  Every
 * pair is a point, labelled by the phrase, else by alt.
 */
int
qvl_bx_parse_points(const char *s, size_t len, qvl_box_list *l, qvl_err *err)
{
	const char *p, *lt;
	size_t from = 0, at, j, start_end;
	char name[16], *x, *y, *label;
	double xy[2];
	int k, bad;

	while ((p = find(s, from, len, "<points")) != NULL) {
		at = (size_t)(p - s);
		from = at + 7;
		if (from >= len || !is_space((unsigned char)s[from]))
			continue;
		j = start_tag_end(s, at, from, len);
		if (j >= len)
			break;	/* cut short */
		if (s[j] != '>') {
			l->malformed++;
			from = j;
			continue;
		}
		start_end = j + 1;
		from = start_end;
		lt = memchr(s + start_end, '<', len - start_end);
		if ((label = html_text(s + start_end, lt ? (size_t)(lt - s) - start_end :
		    len - start_end)) == NULL)
			return qvl_fail(err, "boxes: out of memory");
		if (label[0] == '\0') {
			free(label);
			if ((label = html_attr(s + at, start_end - at, "alt")) == NULL)
				label = strdup("");
			if (label == NULL)
				return qvl_fail(err, "boxes: out of memory");
		}
		for (k = 1, bad = 0; !bad; k++) {
			snprintf(name, sizeof name, "x%d", k);
			if ((x = html_attr(s + at, start_end - at, name)) == NULL)
				break;
			snprintf(name, sizeof name, "y%d", k);
			y = html_attr(s + at, start_end - at, name);
			bad = y == NULL || qvl_bx_read_numbers(x, strlen(x), &xy[0], 1) != 1 ||
			    qvl_bx_read_numbers(y, strlen(y), &xy[1], 1) != 1;
			free(x);
			free(y);
			if (!bad && qvl_bx_push_box(l, QVL_BOX_POINT, QVL_FMT_XML, QVL_COORDS_ABS,
			    strdup(label), xy, 2, at, err) < 0) {
				free(label);
				return -1;
			}
		}
		if (bad || k == 1)
			l->malformed++;
		free(label);
	}
	return 0;
}
