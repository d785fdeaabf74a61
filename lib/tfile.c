#include "tfile.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct qvl_tfile {
	FILE *f;          /* stream input */
	int own_file;
	qvl_reader *reader;
	qvl_record rec;
	qvl_weights *weights;
	size_t next;      /* safetensors: next entry */
};

qvl_tfile *
qvl_tfile_open(const char *path, qvl_err *err)
{
	qvl_tfile *tf = calloc(1, sizeof *tf);
	int is_stdin = path == NULL || strcmp(path, "-") == 0;
	const char *name = is_stdin ? "<stdin>" : path;
	unsigned char magic[9];
	size_t got = 0;

	if (tf == NULL) {
		qvl_fail(err, "out of memory");
		return NULL;
	}
	struct stat st;
	if (!is_stdin && stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		/* a model directory: its (possibly sharded) checkpoint */
		if ((tf->weights = qvl_weights_open(path, err)) == NULL) {
			free(tf);
			return NULL;
		}
		return tf;
	}
	if (is_stdin) {
		tf->f = stdin;
	} else if ((tf->f = fopen(path, "rb")) == NULL) {
		qvl_fail_errno(err, "%s", path);
		free(tf);
		return NULL;
	} else {
		tf->own_file = 1;
	}
	/* A file that does not begin "QVL1" is tried as safetensors; stdin is always a stream. */
	if (tf->own_file) {
		got = fread(magic, 1, sizeof magic, tf->f);
		rewind(tf->f);
	}
	if (tf->own_file && got >= 4 && !qvl_is_stream_magic(magic, 4)) {
		fclose(tf->f);
		tf->f = NULL;
		tf->own_file = 0;
		/* safetensors' JSON header follows its 8-byte length: a file without a '{' there,
		 * unless named so, is neither, and the safetensors reader's complaint about it
		 * (an absurd header length) would be noise */
		size_t plen = strlen(path);
		int named = plen > 12 && strcmp(path + plen - 12, ".safetensors") == 0;
		if (!named && (got < sizeof magic || magic[8] != '{')) {
			qvl_fail(err, "%s: neither a qvl stream nor safetensors", path);
			free(tf);
			return NULL;
		}
		if ((tf->weights = qvl_weights_open(path, err)) == NULL) {
			free(tf);
			return NULL;
		}
		return tf;
	}
	if ((tf->reader = qvl_reader_new(tf->f, name)) == NULL) {
		qvl_tfile_close(tf);
		qvl_fail(err, "out of memory");
		return NULL;
	}
	return tf;
}

int
qvl_tfile_is_stream(const qvl_tfile *tf)
{
	return tf->reader != NULL;
}

int
qvl_tfile_next(qvl_tfile *tf, const char **name, const qvl_tensor **t, const json_t **meta,
    qvl_err *err)
{
	if (tf->weights) {
		if (tf->next >= qvl_weights_count(tf->weights))
			return 0;
		*name = qvl_weights_name(tf->weights, tf->next);
		*t = qvl_weights_at(tf->weights, tf->next);
		*meta = NULL;
		tf->next++;
		return 1;
	}
	qvl_record_free(&tf->rec);
	int rc = qvl_reader_next(tf->reader, &tf->rec, err);
	if (rc <= 0)
		return rc;
	*name = tf->rec.name;
	*t = &tf->rec.t;
	*meta = tf->rec.meta;
	return 1;
}

void
qvl_tfile_close(qvl_tfile *tf)
{
	if (tf == NULL)
		return;
	qvl_record_free(&tf->rec);
	qvl_reader_free(tf->reader);
	if (tf->own_file)
		fclose(tf->f);
	qvl_weights_close(tf->weights);
	free(tf);
}

double
qvl_tensor_get(const qvl_tensor *t, size_t i)
{
	return qvl_dtype_get(t->dtype, t->data, i);
}

void
qvl_tensor_stats(const qvl_tensor *t, qvl_stats *st)
{
	size_t n = qvl_tensor_numel(t), finite = 0;
	double sum = 0, sumsq = 0;

	memset(st, 0, sizeof *st);
	st->count = n;
	st->min = INFINITY;
	st->max = -INFINITY;
	for (size_t i = 0; i < n; i++) {
		double v = qvl_tensor_get(t, i);
		if (isnan(v)) {
			st->nan++;
			continue;
		}
		if (isinf(v)) {
			st->inf++;
			continue;
		}
		finite++;
		sum += v;
		sumsq += v * v;
		if (v < st->min)
			st->min = v;
		if (v > st->max)
			st->max = v;
		if (fabs(v) > st->absmax)
			st->absmax = fabs(v);
	}
	if (finite > 0) {
		st->mean = sum / (double)finite;
		double var = sumsq / (double)finite - st->mean * st->mean;
		st->std = var > 0 ? sqrt(var) : 0;
	} else {
		st->min = st->max = NAN;
	}
}

void
qvl_tensor_diff(const qvl_tensor *a, const qvl_tensor *ref, qvl_diff *d)
{
	size_t n = qvl_tensor_numel(ref);

	memset(d, 0, sizeof *d);
	for (size_t i = 0; i < n; i++) {
		double x = qvl_tensor_get(a, i), r = qvl_tensor_get(ref, i), diff;
		if (a->dtype == ref->dtype && (a->dtype == QVL_I64 || a->dtype == QVL_U64)) {
			/* past 2^53 two 64-bit integers can round to one double: compare them
			 * whole */
			uint64_t xi = ((const uint64_t *)a->data)[i];
			uint64_t ri = ((const uint64_t *)ref->data)[i];
			diff = xi == ri ? 0 : fmax(fabs(x - r), 1);
		} else if (isnan(x) && isnan(r))
			diff = 0;
		else if (isnan(x) || isnan(r))
			diff = INFINITY;
		else if (x == r)
			diff = 0; /* equal infinities too */
		else
			diff = fabs(x - r);
		if (diff > d->max_abs) {
			d->max_abs = diff;
			d->where = i;
		}
		/* an infinity in the reference would make every tolerance relative to it
		 * infinite: it must be matched exactly (above), and scales nothing */
		if (isfinite(r) && fabs(r) > d->ref_absmax)
			d->ref_absmax = fabs(r);
	}
}

static const char *
npy_descr(qvl_dtype dtype)
{
	switch (dtype) {
	case QVL_F32: case QVL_BF16: case QVL_F8_E4M3: case QVL_F8_E5M2: return "<f4";
	case QVL_F16: return "<f2";
	case QVL_F64: return "<f8";
	case QVL_I64: return "<i8";
	case QVL_I32: return "<i4";
	case QVL_I16: return "<i2";
	case QVL_I8: return "|i1";
	case QVL_U8: return "|u1";
	case QVL_BOOL: return "|b1";
	case QVL_U16: return "<u2";
	case QVL_U32: return "<u4";
	case QVL_U64: return "<u8";
	default: return NULL;
	}
}

int
qvl_write_npy(FILE *f, const qvl_tensor *t, qvl_err *err)
{
	char dict[512], shape[256];
	size_t used = 0, len, total;
	const char *descr = npy_descr(t->dtype);

	if (descr == NULL)
		return qvl_fail(err, "dtype %s has no .npy equivalent", qvl_dtype_name(t->dtype));
	for (int i = 0; i < t->ndim; i++)
		used += (size_t)snprintf(shape + used, sizeof shape - used, "%lld,%s",
		    (long long)t->shape[i], i + 1 < t->ndim ? " " : "");
	if (t->ndim > 1)
		shape[used - 1] = '\0'; /* "(2, 3)" but "(5,)" for one dimension */
	else if (t->ndim == 0)
		shape[0] = '\0';
	len = (size_t)snprintf(dict, sizeof dict,
	    "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, shape);
	/* magic(6) + version(2) + header_len(2) + dict + padding + '\n' is a multiple of 64 */
	total = (10 + len + 1 + 63) / 64 * 64;
	while (len < total - 10 - 1)
		dict[len++] = ' ';
	dict[len++] = '\n';
	unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
	    (unsigned char)(len & 0xff), (unsigned char)(len >> 8)};
	if (fwrite(pre, 1, 10, f) != 10 || fwrite(dict, 1, len, f) != len)
		return qvl_fail_errno(err, "write error");
	/* numpy has no BF16 or F8: npy_descr gave them float32, widened exactly */
	if (t->dtype != QVL_F32 && strcmp(descr, "<f4") == 0) {
		size_t n = qvl_tensor_numel(t);
		float buf[1024];
		for (size_t i = 0; i < n; i += 1024) {
			size_t k = n - i < 1024 ? n - i : 1024;
			qvl_to_f32(t->dtype, t->data, i, k, buf);
			if (fwrite(buf, sizeof *buf, k, f) != k)
				return qvl_fail_errno(err, "write error");
		}
	} else if (t->nbytes > 0 && fwrite(t->data, 1, t->nbytes, f) != t->nbytes) {
		return qvl_fail_errno(err, "write error");
	}
	return 0;
}
