#include "stream.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct qvl_reader {
	FILE *f;
	char *name;
	long index;
	char *header; /* reused buffer for header JSON */
	size_t header_cap;
};

int
qvl_is_stream_magic(const void *buf, size_t len)
{
	return len >= 4 && memcmp(buf, QVL_STREAM_MAGIC, 4) == 0;
}

int
qvl_record_new(qvl_record *rec, const char *name, qvl_dtype dtype, int ndim,
    const int64_t *shape, json_t *meta, qvl_err *err)
{
	size_t nbytes;

	memset(rec, 0, sizeof *rec);
	if (qvl_shape_size(shape, ndim, dtype, NULL, &nbytes, err) < 0)
		return qvl_err_prefix(err, "record %s", name);
	rec->name = strdup(name);
	rec->t.data = qvl_alloc(nbytes);
	rec->meta = meta ? json_incref(meta) : json_object();
	if (rec->name == NULL || rec->t.data == NULL || rec->meta == NULL) {
		qvl_record_free(rec);
		return qvl_fail(err, "record %s: out of memory (%zu bytes)", name, nbytes);
	}
	memset(rec->t.data, 0, nbytes);
	rec->t.dtype = dtype;
	rec->t.ndim = ndim;
	if (ndim > 0)
		memcpy(rec->t.shape, shape, (size_t)ndim * sizeof *shape);
	rec->t.nbytes = nbytes;
	return 0;
}

void
qvl_record_free(qvl_record *rec)
{
	if (rec == NULL)
		return;
	free(rec->name);
	free(rec->t.data);
	json_decref(rec->meta);
	memset(rec, 0, sizeof *rec);
}

int
qvl_json_int(const json_t *v, int64_t *out)
{
	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return 1;
	}
	if (json_is_real(v) && fabs(json_real_value(v)) < 9e18 &&
	    json_real_value(v) == (double)(int64_t)json_real_value(v)) {
		*out = (int64_t)json_real_value(v);
		return 1;
	}
	return 0;
}

int
qvl_meta_get_ints(const json_t *meta, const char *key, int64_t *out, int n, qvl_err *err)
{
	json_t *v = meta ? json_object_get(meta, key) : NULL;

	if (v == NULL)
		return qvl_fail(err, "meta has no '%s'", key);
	if (!json_is_array(v) || json_array_size(v) != (size_t)n)
		return qvl_fail(err, "meta '%s' is not an array of %d integers", key, n);
	for (int i = 0; i < n; i++) {
		if (!qvl_json_int(json_array_get(v, (size_t)i), &out[i]))
			return qvl_fail(err, "meta '%s'[%d] is not an integer", key, i);
	}
	return 0;
}

int
qvl_meta_get_grid(const json_t *meta, int64_t g[3], qvl_err *err)
{
	if (qvl_meta_get_ints(meta, "grid_thw", g, 3, err) < 0)
		return -1;
	for (int i = 0; i < 3; i++)
		if (g[i] < 1 || g[i] > QVL_GRID_MAX_SIDE)
			return qvl_fail(err, "grid_thw [%lld, %lld, %lld]: sides must be 1 to %d",
			    (long long)g[0], (long long)g[1], (long long)g[2], QVL_GRID_MAX_SIDE);
	return 0;
}

qvl_reader *
qvl_reader_new(FILE *f, const char *name)
{
	qvl_reader *r = calloc(1, sizeof *r);

	if (r == NULL)
		return NULL;
	r->f = f;
	r->name = strdup(name ? name : "<stream>");
	if (r->name == NULL) {
		free(r);
		return NULL;
	}
	return r;
}

long
qvl_reader_index(const qvl_reader *r)
{
	return r->index;
}

void
qvl_reader_free(qvl_reader *r)
{
	if (r == NULL)
		return;
	free(r->name);
	free(r->header);
	free(r);
}

/* Reads exactly n bytes: 1 on success, 0 on EOF before any byte, -1 when cut short or on a
 * read error (errno set, or 0 for a short read). */
static int
read_full(FILE *f, void *buf, size_t n)
{
	size_t got = fread(buf, 1, n, f);

	if (got == n)
		return 1;
	if (ferror(f))
		return -1;
	if (got == 0)
		return 0;
	errno = 0;
	return -1;
}

/* Parses a header into rec without allocating the payload (rec->t.data stays NULL). */
static int
parse_header(const char *text, size_t len, qvl_record *rec, qvl_err *err)
{
	json_error_t jerr;
	json_t *root, *jname, *jdtype, *jshape, *jmeta;
	size_t ndim;
	int rc = -1;

	memset(rec, 0, sizeof *rec);
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		return qvl_fail(err, "header is not valid JSON: %s (column %d)", jerr.text, jerr.column);
	if (!json_is_object(root)) {
		qvl_fail(err, "header is not a JSON object");
		goto out;
	}
	jname = json_object_get(root, "name");
	jdtype = json_object_get(root, "dtype");
	jshape = json_object_get(root, "shape");
	jmeta = json_object_get(root, "meta");
	if (!json_is_string(jname) || json_string_length(jname) == 0) {
		qvl_fail(err, "header has no \"name\" string");
		goto out;
	}
	if (!json_is_string(jdtype)) {
		qvl_fail(err, "header has no \"dtype\" string");
		goto out;
	}
	if (qvl_dtype_parse(json_string_value(jdtype), &rec->t.dtype) < 0) {
		qvl_fail(err, "unknown dtype \"%s\"", json_string_value(jdtype));
		goto out;
	}
	if (!json_is_array(jshape) || (ndim = json_array_size(jshape)) > QVL_MAX_DIMS) {
		qvl_fail(err, "\"shape\" is not an array of at most %d integers", QVL_MAX_DIMS);
		goto out;
	}
	rec->t.ndim = (int)ndim;
	for (size_t i = 0; i < ndim; i++) {
		json_t *d = json_array_get(jshape, i);
		if (!json_is_integer(d)) {
			qvl_fail(err, "\"shape\"[%zu] is not an integer", i);
			goto out;
		}
		rec->t.shape[i] = json_integer_value(d);
	}
	if (qvl_shape_size(rec->t.shape, rec->t.ndim, rec->t.dtype, NULL, &rec->t.nbytes, err) < 0)
		goto out;
	if (jmeta != NULL && !json_is_object(jmeta)) {
		qvl_fail(err, "\"meta\" is not an object");
		goto out;
	}
	rec->name = strdup(json_string_value(jname));
	rec->meta = jmeta ? json_incref(jmeta) : json_object();
	if (rec->name == NULL || rec->meta == NULL) {
		qvl_fail(err, "out of memory");
		goto out;
	}
	rc = 0;
out:
	json_decref(root);
	if (rc < 0)
		qvl_record_free(rec);
	return rc;
}

/* Payloads above this are read in pieces before the final buffer is allocated, so a header
 * that claims terabytes on a pipe costs only the bytes that actually arrive. */
#define TRUST_BYTES ((size_t)1 << 30)

/* Bytes left in a regular file from the current position, or SIZE_MAX when unknown. */
static size_t
bytes_left(FILE *f)
{
	struct stat st;
	long pos;

	if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode) || (pos = ftell(f)) < 0)
		return SIZE_MAX;
	return st.st_size > pos ? (size_t)(st.st_size - pos) : 0;
}

/* Reads n bytes into buf, adding what arrived to *got: 1, or -1 when cut short (errno
 * nonzero on a read error). */
static int
read_counted(FILE *f, void *buf, size_t n, size_t *got)
{
	size_t r = fread(buf, 1, n, f);

	*got += r;
	if (r == n)
		return 1;
	if (!ferror(f))
		errno = 0;
	return -1;
}

/* Reads the payload of rec (nbytes set) into a new aligned buffer: 1, or -1 when cut short
 * (errno nonzero on a read error) with *got the bytes that arrived. */
static int
read_payload(FILE *f, qvl_record *rec, size_t *got)
{
	size_t n = rec->t.nbytes, left = bytes_left(f);
	char **pieces = NULL;
	int npieces = 0, rc = -1;

	errno = 0;
	*got = 0;
	if (n > left) {
		*got = left;
		return -1;
	}
	if (n <= TRUST_BYTES) {
		if ((rec->t.data = qvl_alloc(n)) == NULL) {
			errno = ENOMEM;
			return -1;
		}
		return n == 0 ? 1 : read_counted(f, rec->t.data, n, got);
	}
	while (*got < n) {
		size_t want = n - *got < TRUST_BYTES ? n - *got : TRUST_BYTES;
		char **p = realloc(pieces, (size_t)(npieces + 1) * sizeof *pieces);
		if (p == NULL || (p[npieces] = malloc(want)) == NULL) {
			if (p)
				pieces = p;
			errno = ENOMEM;
			goto out;
		}
		pieces = p;
		if (read_counted(f, pieces[npieces++], want, got) != 1)
			goto out;
	}
	if ((rec->t.data = qvl_alloc(n)) == NULL) {
		errno = ENOMEM;
		goto out;
	}
	for (int i = 0; i < npieces; i++) {
		size_t off = (size_t)i * TRUST_BYTES;
		memcpy((char *)rec->t.data + off, pieces[i], n - off < TRUST_BYTES ? n - off : TRUST_BYTES);
	}
	rc = 1;
out:
	for (int i = 0; i < npieces; i++)
		free(pieces[i]);
	free(pieces);
	return rc;
}

int
qvl_reader_next(qvl_reader *r, qvl_record *rec, qvl_err *err)
{
	unsigned char pre[8];
	uint32_t header_len;
	size_t got_bytes;
	int got;

	memset(rec, 0, sizeof *rec);
	got = read_full(r->f, pre, 8);
	if (got == 0)
		return 0;
	if (got < 0) {
		if (errno)
			return qvl_fail_errno(err, "%s: record %ld: read error", r->name, r->index);
		return qvl_fail(err, "%s: record %ld: stream cut short in the record prefix "
		    "(trailing garbage?)", r->name, r->index);
	}
	if (!qvl_is_stream_magic(pre, 8))
		return qvl_fail(err, "%s: record %ld: bad magic (not a qvl stream?)", r->name,
		    r->index);
	header_len = (uint32_t)pre[4] | (uint32_t)pre[5] << 8 | (uint32_t)pre[6] << 16 |
	    (uint32_t)pre[7] << 24;
	if (header_len > QVL_STREAM_MAX_HEADER)
		return qvl_fail(err, "%s: record %ld: header of %u bytes is over the 1 MiB limit",
		    r->name, r->index, header_len);
	if (header_len + 1 > r->header_cap) {
		char *p = realloc(r->header, header_len + 1);
		if (p == NULL)
			return qvl_fail(err, "%s: record %ld: out of memory", r->name, r->index);
		r->header = p;
		r->header_cap = header_len + 1;
	}
	if (header_len > 0 && read_full(r->f, r->header, header_len) != 1)
		return qvl_fail(err, "%s: record %ld: stream cut short in the header", r->name,
		    r->index);
	r->header[header_len] = '\0';
	if (parse_header(r->header, header_len, rec, err) < 0)
		return qvl_err_prefix(err, "%s: record %ld", r->name, r->index);
	if (read_payload(r->f, rec, &got_bytes) != 1) {
		int e = errno;
		if (e == ENOMEM)
			qvl_fail(err, "%s: record %ld (%s): payload too large for memory (%zu bytes)",
			    r->name, r->index, rec->name, rec->t.nbytes);
		else
			qvl_fail(err, "%s: record %ld (%s): payload cut short: got %zu of %zu bytes%s%s",
			    r->name, r->index, rec->name, got_bytes, rec->t.nbytes, e ? ": " : "",
			    e ? strerror(e) : "");
		qvl_record_free(rec);
		return -1;
	}
	r->index++;
	return 1;
}

int
qvl_write_tensor(FILE *f, const char *name, const qvl_tensor *t, const json_t *meta,
    qvl_err *err)
{
	json_t *root, *shape;
	char *text;
	size_t len, padded, nbytes;
	unsigned char pre[8];
	static const char spaces[8] = "        ";

	if (qvl_shape_size(t->shape, t->ndim, t->dtype, NULL, &nbytes, err) < 0)
		return qvl_err_prefix(err, "record %s", name);
	shape = json_array();
	for (int i = 0; i < t->ndim; i++)
		json_array_append_new(shape, json_integer(t->shape[i]));
	root = json_pack("{s:s, s:s, s:o, s:o}", "name", name, "dtype", qvl_dtype_name(t->dtype),
	    "shape", shape, "meta", meta ? json_incref((json_t *)meta) : json_object());
	if (root == NULL)
		return qvl_fail(err, "record %s: cannot build header", name);
	text = json_dumps(root, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (text == NULL)
		return qvl_fail(err, "record %s: cannot serialize header", name);
	len = strlen(text);
	padded = (len + 7) & ~(size_t)7;
	if (padded > QVL_STREAM_MAX_HEADER) {
		free(text);
		return qvl_fail(err, "record %s: header of %zu bytes is over the 1 MiB limit", name,
		    padded);
	}
	memcpy(pre, QVL_STREAM_MAGIC, 4);
	pre[4] = (unsigned char)padded;
	pre[5] = (unsigned char)(padded >> 8);
	pre[6] = (unsigned char)(padded >> 16);
	pre[7] = (unsigned char)(padded >> 24);
	if (fwrite(pre, 1, 8, f) != 8 || fwrite(text, 1, len, f) != len ||
	    fwrite(spaces, 1, padded - len, f) != padded - len ||
	    (nbytes > 0 && fwrite(t->data, 1, nbytes, f) != nbytes)) {
		free(text);
		return qvl_fail_errno(err, "record %s: write error", name);
	}
	free(text);
	return 0;
}

int
qvl_write_record(FILE *f, const qvl_record *rec, qvl_err *err)
{
	return qvl_write_tensor(f, rec->name, &rec->t, rec->meta, err);
}
