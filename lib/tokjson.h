/* tokjson.h: the small JSON scanner tokenizer_load.c reads tokenizer.json with: it walks the
 * text of a mapped file without building a tree, decodes strings and integers where asked,
 * and hands small values to jansson.  Internal to the tokenizer. */
#ifndef QVL_TOKJSON_H
#define QVL_TOKJSON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* A growable byte buffer. */
typedef struct qvl_tokjson_buf {
	char *p;
	size_t n, cap;
} qvl_tokjson_buf;

/* The scanner: p walks [start, end) of the mapped file. */
typedef struct qvl_tokjson_scan {
	const char *p, *start, *end;
	qvl_err *err;
} qvl_tokjson_scan;

/* Grows b to hold more bytes; -1 on failure. */
int qvl_tokjson_buf_reserve(qvl_tokjson_buf *b, size_t more, qvl_err *err);
/* Sets "what at byte N" and returns -1. */
int qvl_tokjson_scan_fail(qvl_tokjson_scan *s, const char *what);
void qvl_tokjson_skip_ws(qvl_tokjson_scan *s);
/* Skips white space and the character c, or fails. */
int qvl_tokjson_expect(qvl_tokjson_scan *s, char c);
/* Skips one value of any kind (nested ones included). */
int qvl_tokjson_skip_value(qvl_tokjson_scan *s);
/* Decodes a string into out (escapes resolved; not NUL-terminated). */
int qvl_tokjson_read_string(qvl_tokjson_scan *s, qvl_tokjson_buf *out);
int qvl_tokjson_read_int(qvl_tokjson_scan *s, long *v);
/* After an item of an object or array: 1 if a comma follows, 0 at close, -1 otherwise. */
int qvl_tokjson_next_item(qvl_tokjson_scan *s, char close);
/* 1 (and consumed) when the object or array ends right here. */
int qvl_tokjson_empty(qvl_tokjson_scan *s, char close);
/* The next value as a jansson tree (for small values), or NULL. */
json_t *qvl_tokjson_load_span(qvl_tokjson_scan *s);

#endif
