/* quant_write.c: the writer of quantized model directories (qvl-quantize): which tensors
 * are quantized and how, the safetensors header, the rows quantized on the pool, and the
 * directory written whole or not at all. */
#include "quant.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "kernels.h"
#include "tensor.h"

enum part { COPY, QDATA, QSCALE, QMIN };

struct out_tensor {
	char name[512];
	qvl_dtype dtype;
	int ndim;
	int64_t shape[QVL_MAX_DIMS];
	size_t bytes;
	const qvl_tensor *src;
	enum part part;
	qvl_quant_type qtype; /* QDATA: the format of this tensor (lm_head: q8 in q4 models) */
};

struct quant_job {
	const qvl_tensor *src;
	qvl_quant_type type;
	int64_t cols, nb, per;
	void *q;
	uint16_t *scales, *mins;
	int failed;
};

static void
quant_task(void *ctx, long task, int thread)
{
	struct quant_job *job = ctx;
	int64_t rows = job->src->shape[0], r0 = (int64_t)task * job->per, r1 = r0 + job->per;
	float *row = malloc((size_t)job->cols * sizeof *row);

	(void)thread;
	if (row == NULL) {
		job->failed = 1;
		return;
	}
	if (r1 > rows)
		r1 = rows;
	for (int64_t r = r0; r < r1; r++) {
		qvl_to_f32(job->src->dtype, job->src->data, (size_t)(r * job->cols),
		    (size_t)job->cols, row);
		int64_t c = 0;
		while (c < job->cols && isfinite(row[c]))
			c++;
		if (c < job->cols) {
			/* a NaN step marks the row for write_quantized's check */
			job->scales[r * job->nb] = 0x7e00;
			continue;
		}
		if (job->type == QVL_QUANT_Q8)
			qvl_quant_q8_row(row, job->cols, (int8_t *)job->q + r * job->cols,
			    job->scales + r * job->nb);
		else
			qvl_quant_q4_row(row, job->cols,
			    (uint8_t *)job->q + r * qvl_q4_row_bytes(job->cols),
			    job->scales + r * job->nb, job->mins + r * job->nb);
	}
	free(row);
}

static int
add_out(struct out_tensor **outs, size_t *n, size_t *cap, const char *name,
    const char *suffix, qvl_dtype dtype, int ndim, const int64_t *shape,
    const qvl_tensor *src, enum part part, qvl_err *err)
{
	struct out_tensor *o;

	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 256;
		struct out_tensor *p = realloc(*outs, ncap * sizeof *p);
		if (p == NULL)
			return qvl_fail(err, "out of memory");
		*outs = p;
		*cap = ncap;
	}
	o = &(*outs)[(*n)++];
	memset(o, 0, sizeof *o);
	if (snprintf(o->name, sizeof o->name, "%s%s", name, suffix) >= (int)sizeof o->name)
		return qvl_fail(err, "tensor name too long: %.40s...", name);
	o->dtype = dtype;
	o->ndim = ndim;
	memcpy(o->shape, shape, (size_t)ndim * sizeof *shape);
	o->src = src;
	o->part = part;
	return qvl_shape_size(shape, ndim, dtype, NULL, &o->bytes, err);
}

/* The token table, in the original layout or transformers 4.52's. */
static int
is_embed_table(const char *name)
{
	return strcmp(name, "model.embed_tokens.weight") == 0 ||
	    strcmp(name, "model.language_model.embed_tokens.weight") == 0;
}

/* The matrix the lm_head product reads: the explicit lm_head, or the tied table's copy. */
static int
is_head(const char *name, int tied)
{
	return strcmp(name, "lm_head.weight") == 0 || (tied && is_embed_table(name));
}

static int
plan(const qvl_weights *w, qvl_quant_type type, struct out_tensor **outs, size_t *n,
    qvl_err *err)
{
	size_t cap = 0;
	int tied = qvl_weights_find(w, "lm_head.weight") == NULL;
	int as_f32 = type == QVL_QUANT_Q8_AS_F32 || type == QVL_QUANT_Q4_AS_F32;

	*outs = NULL;
	*n = 0;
	for (size_t i = 0; i < qvl_weights_count(w); i++) {
		const char *name = qvl_weights_name(w, i);
		const qvl_tensor *t = qvl_weights_at(w, i);
		int quant = qvl_quant_wanted(name, t);
		/* Tied embeddings: the table stays for lookups, a quantized copy serves as
		 * lm_head, the one product that reads it whole. */
		int tied_table = tied && is_embed_table(name) &&
		    t->ndim == 2 && t->shape[1] >= QVL_QBLOCK;
		int copy = !quant || tied_table;
		/* The logits are the output itself: q4's error there would reach the tokens
		 * undamped, so lm_head stays 8-bit in q4 models (8 % more bytes per token). */
		qvl_quant_type tt = type;
		if ((quant || tied_table) && is_head(name, tied))
			tt = type == QVL_QUANT_Q4 ? QVL_QUANT_Q8 :
			    type == QVL_QUANT_Q4_AS_F32 ? QVL_QUANT_Q8_AS_F32 : type;

		if (as_f32) {
			/* A tied table stays for lookups; the values its quantized copy stands
			 * for become an explicit lm_head, which the model then prefers. */
			if (add_out(outs, n, &cap, name, "", quant ? QVL_F32 : t->dtype, t->ndim,
			    t->shape, t, quant ? QDATA : COPY, err) < 0)
				return -1;
			(*outs)[*n - 1].qtype = tt;
			if (tied_table) {
				if (add_out(outs, n, &cap, "lm_head.weight", "", QVL_F32, 2, t->shape,
				    t, QDATA, err) < 0)
					return -1;
				(*outs)[*n - 1].qtype = tt;
			}
			continue;
		}

		if (copy && add_out(outs, n, &cap, name, "", t->dtype, t->ndim, t->shape, t, COPY,
		    err) < 0)
			return -1;
		if (copy && !tied_table)
			continue;
		int q8 = tt == QVL_QUANT_Q8;
		int64_t rows = t->shape[0], cols = t->shape[1], nb = qvl_qblocks(cols);
		int64_t dshape[2] = {rows, q8 ? cols : qvl_q4_row_bytes(cols)};
		int64_t sshape[2] = {rows, nb};
		if (add_out(outs, n, &cap, name, q8 ? ".q8" : ".q4", q8 ? QVL_I8 : QVL_U8, 2,
		    dshape, t, QDATA, err) < 0)
			return -1;
		(*outs)[*n - 1].qtype = tt;
		if (add_out(outs, n, &cap, name, q8 ? ".q8_scale" : ".q4_scale", QVL_F16, 2,
		    sshape, t, QSCALE, err) < 0 ||
		    (!q8 && add_out(outs, n, &cap, name, ".q4_min", QVL_F16, 2, sshape, t, QMIN,
		    err) < 0))
			return -1;
	}
	return 0;
}

static char *
header_json(const struct out_tensor *outs, size_t n, qvl_quant_type type, size_t *len)
{
	json_t *root = json_object(), *meta = json_object();
	size_t offset = 0;
	char *s, *padded;

	if (root == NULL || meta == NULL)
		goto fail;
	json_object_set_new(meta, "format", json_string("pt"));
	json_object_set_new(meta, "qvl_quant", json_string(type == QVL_QUANT_Q8 ? "q8" :
	    type == QVL_QUANT_Q4 ? "q4" : type == QVL_QUANT_Q8_AS_F32 ? "q8 as F32" :
	    "q4 as F32"));
	json_object_set_new(meta, "qvl_block", json_string("32"));
	json_object_set_new(root, "__metadata__", meta);
	meta = NULL;
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_object(), *shape = json_array(), *off = json_array();
		if (e == NULL || shape == NULL || off == NULL) {
			json_decref(e);
			json_decref(shape);
			json_decref(off);
			goto fail;
		}
		for (int d = 0; d < outs[i].ndim; d++)
			json_array_append_new(shape, json_integer(outs[i].shape[d]));
		json_array_append_new(off, json_integer((json_int_t)offset));
		offset += outs[i].bytes;
		json_array_append_new(off, json_integer((json_int_t)offset));
		json_object_set_new(e, "dtype", json_string(qvl_dtype_name(outs[i].dtype)));
		json_object_set_new(e, "shape", shape);
		json_object_set_new(e, "data_offsets", off);
		json_object_set_new(root, outs[i].name, e);
	}
	s = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(root);
	if (s == NULL)
		return NULL;
	*len = strlen(s);
	/* Pad with spaces so the data starts 8-byte aligned (8 + len). */
	size_t plen = (*len + 7) / 8 * 8;
	if ((padded = malloc(plen + 1)) == NULL) {
		free(s);
		return NULL;
	}
	memcpy(padded, s, *len);
	memset(padded + *len, ' ', plen - *len);
	padded[plen] = '\0';
	*len = plen;
	free(s);
	return padded;
fail:
	json_decref(meta);
	json_decref(root);
	return NULL;
}

static int
write_all(FILE *f, const void *p, size_t n, const char *path, qvl_err *err)
{
	if (n && fwrite(p, 1, n, f) != n)
		return qvl_fail_errno(err, "%s: write", path);
	return 0;
}

/* Writes the parts of one quantized source tensor (QDATA, then QSCALE, QMIN). */
static int
write_quantized(FILE *f, const char *path, const qvl_tensor *src, qvl_quant_type type,
    qvl_pool *pool, qvl_err *err)
{
	int64_t rows = src->shape[0], cols = src->shape[1], nb = qvl_qblocks(cols);
	size_t qbytes = (size_t)rows * (size_t)(type == QVL_QUANT_Q8 ? cols : qvl_q4_row_bytes(cols));
	size_t sbytes = (size_t)rows * (size_t)nb * 2;
	struct quant_job job = {src, type, cols, nb, 64, NULL, NULL, NULL, 0};
	int rc = -1;
	int as_f32 = type == QVL_QUANT_Q8_AS_F32 || type == QVL_QUANT_Q4_AS_F32;

	if (as_f32) {
		type = type == QVL_QUANT_Q8_AS_F32 ? QVL_QUANT_Q8 : QVL_QUANT_Q4;
		qbytes = (size_t)rows * (size_t)(type == QVL_QUANT_Q8 ? cols : qvl_q4_row_bytes(cols));
		job.type = type;
	}
	job.q = malloc(qbytes ? qbytes : 1);
	job.scales = malloc(sbytes ? sbytes : 1);
	job.mins = type == QVL_QUANT_Q4 ? malloc(sbytes ? sbytes : 1) : NULL;
	if (job.q == NULL || job.scales == NULL || (type == QVL_QUANT_Q4 && job.mins == NULL)) {
		qvl_fail(err, "out of memory for %zu bytes", qbytes);
		goto out;
	}
	qvl_pool_run(pool, (long)((rows + job.per - 1) / job.per), quant_task, &job);
	if (job.failed) {
		qvl_fail(err, "out of memory");
		goto out;
	}
	/* A step or minimum that float16 cannot hold would decode to NaN in every program;
	 * a NaN or infinite weight is a broken checkpoint, not something to code. */
	for (size_t i = 0; i < (size_t)rows * (size_t)nb; i++)
		if ((job.scales[i] & 0x7c00) == 0x7c00 || (job.mins && (job.mins[i] & 0x7c00) ==
		    0x7c00)) {
			qvl_fail(err, "row %lld: weights that are not finite or beyond the float16 "
			    "range of the block scales", (long long)(i / (size_t)nb));
			goto out;
		}
	if (as_f32) {
		qvl_matrix m = {type == QVL_QUANT_Q8 ? QVL_I8 : QVL_U8, rows, cols, job.q,
			job.scales, QVL_QBLOCK, job.mins};
		float *row = malloc((size_t)(cols ? cols : 1) * sizeof *row);
		if (row == NULL) {
			qvl_fail(err, "out of memory");
			goto out;
		}
		for (int64_t r = 0; r < rows; r++) {
			qvl_kernels_generic.widen(&m, r, 1, row);
			if (write_all(f, row, (size_t)cols * sizeof *row, path, err) < 0) {
				free(row);
				goto out;
			}
		}
		free(row);
		rc = 0;
		goto out;
	}
	if (write_all(f, job.q, qbytes, path, err) < 0 ||
	    write_all(f, job.scales, sbytes, path, err) < 0 ||
	    (job.mins && write_all(f, job.mins, sbytes, path, err) < 0))
		goto out;
	rc = 0;
out:
	free(job.q);
	free(job.scales);
	free(job.mins);
	return rc;
}

/* A new file to write, never one that is there already: a symlink planted at the
 * temporary name is removed, not followed. */
static FILE *
fopen_new(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
	FILE *f;

	if (fd < 0 && errno == EEXIST && unlink(path) == 0)
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
	if (fd < 0)
		return NULL;
	if ((f = fdopen(fd, "wb")) == NULL)
		close(fd);
	return f;
}

/* Closes f, written for path, with any write error it had; f is closed whatever happens. */
static int
close_written(FILE *f, const char *path, qvl_err *err)
{
	int bad = fflush(f) != 0 || ferror(f);

	if (fclose(f) != 0 || bad)
		return qvl_fail_errno(err, "%s: write", path);
	return 0;
}

static int
rename_into_place(const char *tmp, const char *path, qvl_err *err)
{
	if (rename(tmp, path) != 0)
		return qvl_fail_errno(err, "rename %s", path);
	return 0;
}

/* A temporary file of the output directory: hidden, short whatever the name of the file it
 * becomes (a side file's may be NAME_MAX long), and ending in ".tmp.PID", the names
 * qvl-quantize's interrupt handler removes. */
static int
tmp_name(char *buf, size_t size, const char *dir, const char *what, qvl_err *err)
{
	if (snprintf(buf, size, "%s/.%s.tmp.%ld", dir, what, (long)getpid()) >= (int)size) {
		buf[0] = '\0';
		return qvl_fail(err, "%s: path too long", dir);
	}
	return 0;
}

static int
copy_file(const char *from, const char *to, const char *tmp, qvl_err *err)
{
	char buf[65536];
	FILE *in, *out;
	size_t n;
	int rc = -1;

	if ((in = fopen(from, "rb")) == NULL)
		return qvl_fail_errno(err, "%s", from);
	if ((out = fopen_new(tmp)) == NULL) {
		qvl_fail_errno(err, "%s", to);
		fclose(in);
		return -1;
	}
	while ((n = fread(buf, 1, sizeof buf, in)) > 0)
		if (fwrite(buf, 1, n, out) != n) {
			qvl_fail_errno(err, "%s: write", to);
			goto out;
		}
	if (ferror(in)) {
		qvl_fail_errno(err, "%s: read", from);
		goto out;
	}
	rc = close_written(out, to, err) < 0 ? -1 : rename_into_place(tmp, to, err);
	out = NULL;
out:
	if (out)
		fclose(out);
	if (rc < 0)
		unlink(tmp);
	fclose(in);
	return rc;
}

/* The model's other files (config, tokenizer, templates), each copied whole. */
static int
copy_side_files(const char *src, const char *dst, qvl_err *err)
{
	DIR *d = opendir(src);
	struct dirent *e;
	char from[PATH_MAX], to[PATH_MAX], tmp[PATH_MAX];
	struct stat st;
	int rc = -1;

	if (d == NULL)
		return qvl_fail_errno(err, "%s", src);
	if (tmp_name(tmp, sizeof tmp, dst, "side-file", err) < 0)
		goto out;
	while ((e = readdir(d)) != NULL) {
		const char *ext = strrchr(e->d_name, '.');

		if (e->d_name[0] == '.' || (ext != NULL && strcmp(ext, ".safetensors") == 0) ||
		    strcmp(e->d_name, "model.safetensors.index.json") == 0 ||
		    strstr(e->d_name, ".tmp.") != NULL)
			continue;
		if (snprintf(from, sizeof from, "%s/%s", src, e->d_name) >= (int)sizeof from ||
		    snprintf(to, sizeof to, "%s/%s", dst, e->d_name) >= (int)sizeof to) {
			qvl_fail(err, "%s/%s: path too long", src, e->d_name);
			goto out;
		}
		if (stat(from, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		if (copy_file(from, to, tmp, err) < 0)
			goto out;
	}
	rc = 0;
out:
	closedir(d);
	return rc;
}

/* Empties a directory this run made, so that it can be removed: everything in it is ours. */
static void
remove_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
}

int
qvl_quantize_model(const char *src, const char *dst, qvl_quant_type type, qvl_pool *pool,
    void (*progress)(void *ctx, long done, long total), void *ctx, qvl_err *err)
{
	qvl_weights *w = NULL;
	struct out_tensor *outs = NULL;
	size_t n = 0, hlen = 0;
	char *header = NULL, path[PATH_MAX], tmp[PATH_MAX + 32], rs[PATH_MAX], rd[PATH_MAX];
	FILE *f = NULL;
	struct stat st;
	int rc = -1, made_dir = 0;

	tmp[0] = '\0';
	/* the model first: a bad one leaves no empty output directory behind, and its
	 * config.json is copied as it is, so it must be one the programs will load */
	qvl_config cfg;
	if (qvl_config_load(src, &cfg, err) < 0)
		return -1;
	if ((w = qvl_weights_open(src, err)) == NULL)
		return -1;
	if (qvl_weights_find(w, "model.embed_tokens.weight.q8") != NULL ||
	    qvl_weights_find(w, "model.embed_tokens.weight.q4") != NULL) {
		qvl_fail(err, "%s is already quantized", src);
		goto out;
	}
	if (plan(w, type, &outs, &n, err) < 0)
		goto out;
	made_dir = mkdir(dst, 0777) == 0;
	if ((!made_dir && errno != EEXIST) || stat(dst, &st) != 0) {
		qvl_fail_errno(err, "%s", dst);
		goto out;
	}
	if (!S_ISDIR(st.st_mode)) {
		qvl_fail(err, "%s: not a directory", dst);
		goto out;
	}
	if (realpath(src, rs) != NULL && realpath(dst, rd) != NULL && strcmp(rs, rd) == 0) {
		qvl_fail(err, "%s: output directory is the model directory", dst);
		goto out;
	}
	if (snprintf(path, sizeof path, "%s/model.safetensors.index.json", dst) >=
	    (int)sizeof path || stat(path, &st) == 0) {
		qvl_fail(err, "%s holds a sharded checkpoint that would shadow the output "
		    "(or its path is too long); choose another directory", dst);
		goto out;
	}
	if ((header = header_json(outs, n, type, &hlen)) == NULL) {
		qvl_fail(err, "out of memory");
		goto out;
	}
	snprintf(path, sizeof path, "%s/model.safetensors", dst);
	if (tmp_name(tmp, sizeof tmp, dst, "model.safetensors", err) < 0)
		goto out;
	if ((f = fopen_new(tmp)) == NULL) {
		qvl_fail_errno(err, "%s", path);
		goto out;
	}
	uint8_t len8[8];
	for (int i = 0; i < 8; i++)
		len8[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
	if (write_all(f, len8, 8, path, err) < 0 || write_all(f, header, hlen, path, err) < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (outs[i].part == COPY) {
			if (write_all(f, outs[i].src->data, outs[i].bytes, path, err) < 0)
				goto out;
		} else if (outs[i].part == QDATA) {
			if (write_quantized(f, path, outs[i].src, outs[i].qtype, pool, err) < 0) {
				qvl_err_prefix(err, "%s", outs[i].name);
				goto out;
			}
		}
		if (progress)
			progress(ctx, (long)i + 1, (long)n);
	}
	int closed = close_written(f, path, err);
	f = NULL;
	if (closed < 0)
		goto out;
	/* The weights go into place last: a run cut short by a signal (whose handler removes
	 * only the temporary files) leaves no model.safetensors beside a missing tokenizer. */
	if (copy_side_files(src, dst, err) < 0)
		goto out;
	if (rename_into_place(tmp, path, err) < 0)
		goto out;
	rc = 0;
out:
	if (f)
		fclose(f);
	if (rc < 0 && tmp[0])
		unlink(tmp);
	/* a failure leaves no directory of ours behind */
	if (rc < 0 && made_dir) {
		remove_files(dst);
		rmdir(dst);
	}
	free(header);
	free(outs);
	qvl_weights_close(w);
	return rc;
}
