/* tfile.h: any file of tensors — a qvl stream or a .safetensors file, told apart by content —
 * read as a sequence of (name, tensor, meta) items.  Used by qvl-dump and by tests that
 * compare a stage's output with the goldens. */
#ifndef QVL_TFILE_H
#define QVL_TFILE_H

#include <stdio.h>

#include "safetensors.h"
#include "stream.h"

typedef struct qvl_tfile qvl_tfile;

/* path "-" or NULL reads stdin (a stream; safetensors must be a seekable file). */
qvl_tfile *qvl_tfile_open(const char *path, qvl_err *err);
/* The next item: 1 and the item (valid until the next call), 0 at the end, -1 on error.
 * meta is NULL for safetensors items. */
int qvl_tfile_next(qvl_tfile *tf, const char **name, const qvl_tensor **t, const json_t **meta,
    qvl_err *err);
int qvl_tfile_is_stream(const qvl_tfile *tf);
void qvl_tfile_close(qvl_tfile *tf);

/* Statistics of a tensor's values in double precision; NaN and Inf are counted, not summed. */
typedef struct qvl_stats {
	size_t count, nan, inf;
	double min, max, mean, std, absmax;
} qvl_stats;
void qvl_tensor_stats(const qvl_tensor *t, qvl_stats *st);

/* Element i of a numeric tensor as double. */
double qvl_tensor_get(const qvl_tensor *t, size_t i);

/* Compares two tensors of the same number of elements: max |a - b|, max |ref| over the
 * finite values of ref, and the index of the largest difference.  NaN anywhere counts as
 * an infinite difference unless both are NaN; an infinity, unless both are the same one. */
typedef struct qvl_diff {
	double max_abs, ref_absmax;
	size_t where;
} qvl_diff;
void qvl_tensor_diff(const qvl_tensor *a, const qvl_tensor *ref, qvl_diff *d);

/* Writes a tensor as a .npy file (BF16 becomes float32, which numpy lacks). */
int qvl_write_npy(FILE *f, const qvl_tensor *t, qvl_err *err);

#endif
