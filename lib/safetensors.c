#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_HEADER (100u << 20) /* the safetensors crate's own limit */

struct mapped_file {
	char *path;
	void *map;      /* NULL for a caller's buffer */
	size_t size;
};

struct entry {
	char *name;
	qvl_tensor t;
};

struct qvl_weights {
	struct mapped_file *files;
	size_t nfiles;
	struct entry *entries;
	size_t nentries, cap;
	json_t *metadata;
	size_t bytes;
	void **copies;   /* aligned copies of tensors the file stores misaligned */
	size_t ncopies;
};

static int
add_entry(qvl_weights *w, const char *name, const qvl_tensor *t, qvl_err *err)
{
	if (w->nentries == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 256;
		struct entry *e = realloc(w->entries, cap * sizeof *e);
		if (e == NULL)
			return qvl_fail(err, "out of memory");
		w->entries = e;
		w->cap = cap;
	}
	if ((w->entries[w->nentries].name = strdup(name)) == NULL)
		return qvl_fail(err, "out of memory");
	w->entries[w->nentries].t = *t;
	w->nentries++;
	w->bytes += t->nbytes;
	return 0;
}

/* Parses the header of one safetensors image (buf, len) and adds its tensors. */
static int
parse_file(qvl_weights *w, const unsigned char *buf, size_t len, const char *name, qvl_err *err)
{
	uint64_t header_len = 0;
	json_error_t jerr;
	json_t *root, *value;
	const char *key;
	size_t data_size;
	const unsigned char *data;

	if (len < 8)
		return qvl_fail(err, "%s: %zu bytes, too short for a safetensors file", name, len);
	for (int i = 7; i >= 0; i--)
		header_len = header_len << 8 | buf[i];
	if (header_len > MAX_HEADER || header_len > len - 8)
		return qvl_fail(err, "%s: header length %llu exceeds the file (%zu bytes)%s", name,
		    (unsigned long long)header_len, len,
		    header_len > MAX_HEADER ? " or the 100 MB limit" : "");
	root = json_loadb((const char *)buf + 8, (size_t)header_len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		return qvl_fail(err, "%s: header is not valid JSON: %s (column %d)", name, jerr.text,
		    jerr.column);
	if (!json_is_object(root)) {
		json_decref(root);
		return qvl_fail(err, "%s: header is not a JSON object", name);
	}
	data = buf + 8 + header_len;
	data_size = len - 8 - (size_t)header_len;
	json_object_foreach(root, key, value) {
		json_t *jd, *js, *jo;
		qvl_tensor t;
		size_t nbytes, ndim;
		int64_t begin, end;

		if (strcmp(key, "__metadata__") == 0) {
			if (w->metadata == NULL && json_is_object(value))
				w->metadata = json_incref(value);
			continue;
		}
		memset(&t, 0, sizeof t);
		jd = json_object_get(value, "dtype");
		js = json_object_get(value, "shape");
		jo = json_object_get(value, "data_offsets");
		if (!json_is_string(jd) || !json_is_array(js) || !json_is_array(jo) ||
		    json_array_size(jo) != 2) {
			qvl_fail(err, "%s: tensor %s: needs dtype, shape and data_offsets", name, key);
			goto fail;
		}
		if (qvl_dtype_parse(json_string_value(jd), &t.dtype) < 0) {
			qvl_fail(err, "%s: tensor %s: unsupported dtype %s", name, key,
			    json_string_value(jd));
			goto fail;
		}
		if ((ndim = json_array_size(js)) > QVL_MAX_DIMS) {
			qvl_fail(err, "%s: tensor %s: %zu dimensions", name, key, ndim);
			goto fail;
		}
		t.ndim = (int)ndim;
		for (size_t i = 0; i < ndim; i++) {
			json_t *d = json_array_get(js, i);
			if (!json_is_integer(d)) {
				qvl_fail(err, "%s: tensor %s: shape is not integers", name, key);
				goto fail;
			}
			t.shape[i] = json_integer_value(d);
		}
		if (qvl_shape_size(t.shape, t.ndim, t.dtype, NULL, &nbytes, err) < 0) {
			qvl_err_prefix(err, "%s: tensor %s", name, key);
			goto fail;
		}
		if (!json_is_integer(json_array_get(jo, 0)) || !json_is_integer(json_array_get(jo, 1))) {
			qvl_fail(err, "%s: tensor %s: data_offsets are not integers", name, key);
			goto fail;
		}
		begin = json_integer_value(json_array_get(jo, 0));
		end = json_integer_value(json_array_get(jo, 1));
		if (begin < 0 || end < begin) {
			qvl_fail(err, "%s: tensor %s: data_offsets [%lld, %lld] are not an interval "
			    "(begin after end, or negative)", name, key, (long long)begin,
			    (long long)end);
			goto fail;
		}
		if ((uint64_t)end > data_size) {
			qvl_fail(err, "%s: tensor %s: data_offsets [%lld, %lld] outside the %zu data "
			    "bytes (file truncated?)", name, key, (long long)begin, (long long)end,
			    data_size);
			goto fail;
		}
		if ((uint64_t)(end - begin) != nbytes) {
			qvl_fail(err, "%s: tensor %s: %lld data bytes for a shape needing %zu", name,
			    key, (long long)(end - begin), nbytes);
			goto fail;
		}
		t.data = (void *)(data + begin);
		t.nbytes = nbytes;
		if ((uintptr_t)t.data % qvl_dtype_size(t.dtype) != 0) {
			/* safetensors packs tensors without padding, so one after an odd-sized
			 * tensor can be misaligned; such small tensors get an aligned copy. */
			void **copies = realloc(w->copies, (w->ncopies + 1) * sizeof *copies);
			if (copies == NULL || (copies[w->ncopies] = qvl_alloc(nbytes)) == NULL) {
				if (copies)
					w->copies = copies;
				qvl_fail(err, "%s: tensor %s: out of memory", name, key);
				goto fail;
			}
			w->copies = copies;
			memcpy(copies[w->ncopies], t.data, nbytes);
			t.data = copies[w->ncopies++];
		}
		if (add_entry(w, key, &t, err) < 0)
			goto fail;
	}
	json_decref(root);
	return 0;
fail:
	json_decref(root);
	return -1;
}

static int
entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

static int
finish(qvl_weights *w, qvl_err *err)
{
	if (w->nentries > 1)
		qsort(w->entries, w->nentries, sizeof *w->entries, entry_cmp);
	for (size_t i = 1; i < w->nentries; i++)
		if (strcmp(w->entries[i - 1].name, w->entries[i].name) == 0)
			return qvl_fail(err, "tensor %s appears in two shards", w->entries[i].name);
	return 0;
}

static int
map_file(qvl_weights *w, const char *path, qvl_err *err)
{
	struct mapped_file *mf, *files;
	struct stat st;
	int fd;

	files = realloc(w->files, (w->nfiles + 1) * sizeof *files);
	if (files == NULL)
		return qvl_fail(err, "out of memory");
	w->files = files;
	mf = &w->files[w->nfiles];
	memset(mf, 0, sizeof *mf);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return qvl_fail_errno(err, "%s", path);
	if (fstat(fd, &st) < 0) {
		close(fd);
		return qvl_fail_errno(err, "%s", path);
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return qvl_fail(err, "%s: not a regular file", path);
	}
	mf->size = (size_t)st.st_size;
	if (mf->size > 0) {
		mf->map = mmap(NULL, mf->size, PROT_READ, MAP_SHARED, fd, 0);
		if (mf->map == MAP_FAILED) {
			mf->map = NULL;
			close(fd);
			return qvl_fail_errno(err, "%s: mmap", path);
		}
		/* Pages this mapping reads from disk come in 2 MB folios mapped by one page
		 * table entry: decoding streams every weight each token, and with 4 KB pages
		 * the TLB misses cost ~10 % of the read bandwidth (bench/membw -H).  Advice
		 * only: where the kernel cannot, nothing changes. */
		(void)madvise(mf->map, mf->size, MADV_HUGEPAGE);
	}
	close(fd);
	if ((mf->path = strdup(path)) == NULL) {
		if (mf->map)
			munmap(mf->map, mf->size);
		return qvl_fail(err, "out of memory");
	}
	w->nfiles++;
	return parse_file(w, mf->map, mf->size, path, err);
}

static int
open_index(qvl_weights *w, const char *dir, const char *index_path, qvl_err *err)
{
	json_error_t jerr;
	json_t *root, *map, *value;
	const char *key;
	const char **seen = NULL;
	size_t nseen = 0;
	int rc = -1;

	root = json_load_file(index_path, 0, &jerr);
	if (root == NULL)
		return qvl_fail(err, "%s: %s (line %d)", index_path, jerr.text, jerr.line);
	map = json_object_get(root, "weight_map");
	if (!json_is_object(map)) {
		qvl_fail(err, "%s: no \"weight_map\" object", index_path);
		goto out;
	}
	seen = calloc(json_object_size(map) + 1, sizeof *seen);
	if (seen == NULL) {
		qvl_fail(err, "out of memory");
		goto out;
	}
	json_object_foreach(map, key, value) {
		char path[PATH_MAX];
		const char *file = json_string_value(value);
		size_t i;

		if (file == NULL || strchr(file, '/') != NULL || strcmp(file, "..") == 0) {
			qvl_fail(err, "%s: tensor %s: shard name is not a plain file name", index_path,
			    key);
			goto out;
		}
		for (i = 0; i < nseen && strcmp(seen[i], file) != 0; i++)
			;
		if (i < nseen)
			continue;
		seen[nseen++] = file;
		snprintf(path, sizeof path, "%s/%s", dir, file);
		if (map_file(w, path, err) < 0)
			goto out;
	}
	/* every tensor the index names must be in its shard */
	if (finish(w, err) < 0)
		goto out;
	json_object_foreach(map, key, value) {
		if (qvl_weights_find(w, key) == NULL) {
			qvl_fail(err, "%s: tensor %s is missing from shard %s", index_path, key,
			    json_string_value(value));
			goto out;
		}
	}
	rc = 0;
out:
	free(seen);
	json_decref(root);
	return rc;
}

qvl_weights *
qvl_weights_open(const char *path, qvl_err *err)
{
	qvl_weights *w = calloc(1, sizeof *w);
	struct stat st;
	char buf[PATH_MAX];
	int rc;

	if (w == NULL) {
		qvl_fail(err, "out of memory");
		return NULL;
	}
	if (stat(path, &st) < 0) {
		qvl_fail_errno(err, "%s", path);
		free(w);
		return NULL;
	}
	if (S_ISDIR(st.st_mode)) {
		snprintf(buf, sizeof buf, "%s/model.safetensors.index.json", path);
		if (access(buf, F_OK) == 0) {
			rc = open_index(w, path, buf, err);
		} else {
			snprintf(buf, sizeof buf, "%s/model.safetensors", path);
			if (access(buf, F_OK) != 0) {
				qvl_fail(err, "%s: no model.safetensors or model.safetensors.index.json",
				    path);
				rc = -1;
			} else {
				rc = map_file(w, buf, err);
				if (rc == 0)
					rc = finish(w, err);
			}
		}
	} else {
		rc = map_file(w, path, err);
		if (rc == 0)
			rc = finish(w, err);
	}
	if (rc < 0) {
		qvl_weights_close(w);
		return NULL;
	}
	return w;
}

qvl_weights *
qvl_weights_from_buffer(const void *buf, size_t len, const char *name, qvl_err *err)
{
	qvl_weights *w = calloc(1, sizeof *w);

	if (w == NULL) {
		qvl_fail(err, "out of memory");
		return NULL;
	}
	if (parse_file(w, buf, len, name, err) < 0 || finish(w, err) < 0) {
		qvl_weights_close(w);
		return NULL;
	}
	return w;
}

void
qvl_weights_close(qvl_weights *w)
{
	if (w == NULL)
		return;
	for (size_t i = 0; i < w->nentries; i++)
		free(w->entries[i].name);
	for (size_t i = 0; i < w->nfiles; i++) {
		if (w->files[i].map)
			munmap(w->files[i].map, w->files[i].size);
		free(w->files[i].path);
	}
	for (size_t i = 0; i < w->ncopies; i++)
		free(w->copies[i]);
	free(w->copies);
	free(w->entries);
	free(w->files);
	json_decref(w->metadata);
	free(w);
}

size_t
qvl_weights_count(const qvl_weights *w)
{
	return w->nentries;
}

const char *
qvl_weights_name(const qvl_weights *w, size_t i)
{
	return i < w->nentries ? w->entries[i].name : NULL;
}

const qvl_tensor *
qvl_weights_at(const qvl_weights *w, size_t i)
{
	return i < w->nentries ? &w->entries[i].t : NULL;
}

static const qvl_tensor *
find_exact(const qvl_weights *w, const char *name)
{
	struct entry key = {(char *)name, {0}}, *e;

	if (w->nentries == 0)
		return NULL;
	e = bsearch(&key, w->entries, w->nentries, sizeof *w->entries, entry_cmp);
	return e ? &e->t : NULL;
}

/* Fine-tunes saved by transformers 4.52 and later name the vision tower model.visual.* and
 * the text model model.language_model.* (lm_head stays): a name of the original layout finds
 * its tensor under either. */
const qvl_tensor *
qvl_weights_find(const qvl_weights *w, const char *name)
{
	const qvl_tensor *t = find_exact(w, name);
	char alias[256];
	int n = -1;

	if (t != NULL)
		return t;
	if (strncmp(name, "visual.", 7) == 0)
		n = snprintf(alias, sizeof alias, "model.%s", name);
	else if (strncmp(name, "model.", 6) == 0 && strncmp(name, "model.visual.", 13) != 0 &&
	    strncmp(name, "model.language_model.", 21) != 0)
		n = snprintf(alias, sizeof alias, "model.language_model.%s", name + 6);
	return n > 0 && n < (int)sizeof alias ? find_exact(w, alias) : NULL;
}

#define QUANTIZE_HINT "qvl-quantize makes 8 or 4 bits from the BF16 checkpoint"

/* Whether a tensor named NAME with its trailing STRIP replaced by ADD exists. */
static int
has_sibling(const qvl_weights *w, const char *name, const char *strip, const char *add)
{
	size_t len = strlen(name), sl = strlen(strip);
	char other[512];

	if (len < sl || strcmp(name + len - sl, strip) != 0 || len > 256)
		return 0;
	snprintf(other, sizeof other, "%.*s%s", (int)(len - sl), name, add);
	return qvl_weights_find(w, other) != NULL;
}

/* NAME's matrix stored as another tool's packed integers: qweight for GPTQ and AWQ,
 * weight_packed for compressed-tensors, in place of "weight". */
static int
other_quantizer(const qvl_weights *w, const char *name)
{
	return has_sibling(w, name, "weight", "qweight") ||
	    has_sibling(w, name, "weight", "weight_packed");
}

/* NAME stored by bitsandbytes: 4-bit weights carry NAME.absmax beside them, 8-bit ones the
 * row scales SCB in place of "weight". */
static int
bitsandbytes(const qvl_weights *w, const char *name)
{
	return has_sibling(w, name, "", ".absmax") || has_sibling(w, name, "weight", "SCB");
}

const qvl_tensor *
qvl_weights_get(const qvl_weights *w, const char *name, int ndim, const int64_t *shape,
    qvl_err *err)
{
	const qvl_tensor *t = qvl_weights_find(w, name);
	char want[128], got[128];

	if (t == NULL) {
		qvl_fail(err, "checkpoint has no tensor %s%s", name, other_quantizer(w, name) ?
		    ": its matrices were packed by another quantizer (GPTQ, AWQ or "
		    "compressed-tensors): qvl reads BF16, F16 or F32 weights, and " QUANTIZE_HINT : "");
		return NULL;
	}
	if (t->dtype != QVL_BF16 && t->dtype != QVL_F16 && t->dtype != QVL_F32) {
		qvl_fail(err, "tensor %s: dtype %s%s, want BF16, F16 or F32%s", name,
		    qvl_dtype_name(t->dtype), t->dtype == QVL_F8_E4M3 || t->dtype == QVL_F8_E5M2 ?
		    " (an FP8 checkpoint)" : bitsandbytes(w, name) ? " (a bitsandbytes checkpoint)" :
		    "", t->dtype == QVL_I64 || t->dtype == QVL_I32 || t->dtype == QVL_BOOL ? "" :
		    "; " QUANTIZE_HINT);
		return NULL;
	}
	if (t->ndim != ndim || memcmp(t->shape, shape, (size_t)ndim * sizeof *shape) != 0) {
		qvl_fail(err, "tensor %s: shape %s, config wants %s", name,
		    qvl_shape_str(t->shape, t->ndim, got, sizeof got),
		    qvl_shape_str(shape, ndim, want, sizeof want));
		return NULL;
	}
	return t;
}

const json_t *
qvl_weights_metadata(const qvl_weights *w)
{
	return w->metadata;
}

size_t
qvl_weights_bytes(const qvl_weights *w)
{
	return w->bytes;
}
