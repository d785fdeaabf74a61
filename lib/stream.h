/* stream.h: the qvl tensor stream (man 5 qvl-stream).
 *
 * A stream is a sequence of records until EOF:
 *   "QVL1" | u32 header_len (LE) | JSON header, space-padded so 8 + header_len % 8 == 0 | payload
 * The header is {"name": str, "dtype": str, "shape": [int...], "meta": {...}}.  The reader
 * is streaming: it holds one record at a time. */
#ifndef QVL_STREAM_H
#define QVL_STREAM_H

#include <stdio.h>

#include <jansson.h>

#include "err.h"
#include "tensor.h"

#define QVL_STREAM_MAGIC "QVL1"
#define QVL_STREAM_MAX_HEADER (1u << 20)

/* One record.  The record owns name, t.data (64-byte aligned) and a reference to meta
 * (a JSON object, never NULL for a record returned by the reader or qvl_record_new). */
typedef struct qvl_record {
	char *name;
	qvl_tensor t;
	json_t *meta;
} qvl_record;

/* Allocates a record with a zeroed payload of the given shape; meta is borrowed (a new
 * reference is taken) or, when NULL, an empty object is made.  Returns 0 or -1. */
int qvl_record_new(qvl_record *rec, const char *name, qvl_dtype dtype, int ndim,
    const int64_t *shape, json_t *meta, qvl_err *err);
void qvl_record_free(qvl_record *rec);

/* A JSON integer, or a real with a whole value in int64's range (64.0 is 64; 5e48 and 0.5
 * are not integers): 1 with *out set, or 0. */
int qvl_json_int(const json_t *v, int64_t *out);

/* Meta helpers: 0 and the value, or -1 with a message naming the key. */
int qvl_meta_get_ints(const json_t *meta, const char *key, int64_t *out, int n, qvl_err *err);

/* A grid_thw side is at most this many patches (2^20 patches of 14 pixels is 14.7 million
 * pixels, far past any image), so t*h*w fits in an int64_t. */
#define QVL_GRID_MAX_SIDE (1 << 20)

/* The meta's grid_thw [t, h, w], each side 1 to QVL_GRID_MAX_SIDE: 0, or -1 with a message. */
int qvl_meta_get_grid(const json_t *meta, int64_t grid[3], qvl_err *err);

typedef struct qvl_reader qvl_reader;

/* `name` is how errors name the stream ("<stdin>", a path). The FILE stays the caller's. */
qvl_reader *qvl_reader_new(FILE *f, const char *name);
/* Reads the next record into *rec: 1 when a record was read, 0 at a clean EOF (between
 * records), -1 on error with a message that names the stream and the record index. */
int qvl_reader_next(qvl_reader *r, qvl_record *rec, qvl_err *err);
/* Index of the record the next call reads (0-based). */
long qvl_reader_index(const qvl_reader *r);
void qvl_reader_free(qvl_reader *r);

/* Writes one record; -1 with errno's message on a write error (EPIPE included). */
int qvl_write_record(FILE *f, const qvl_record *rec, qvl_err *err);
/* Writes a record from parts, without building a qvl_record (data is t->nbytes bytes). */
int qvl_write_tensor(FILE *f, const char *name, const qvl_tensor *t, const json_t *meta,
    qvl_err *err);

/* Returns 1 when the first bytes look like a stream ("QVL1"), for format detection. */
int qvl_is_stream_magic(const void *buf, size_t len);

#endif
