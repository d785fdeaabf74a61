/* safetensors.h: read-only access to safetensors files and sharded checkpoints, by mmap.
 *
 * A qvl_weights is one model's tensors: a single `model.safetensors`, or every shard named by
 * `model.safetensors.index.json`.  Tensors are views into the mapping: nothing is copied. */
#ifndef QVL_SAFETENSORS_H
#define QVL_SAFETENSORS_H

#include <jansson.h>

#include "err.h"
#include "tensor.h"

typedef struct qvl_weights qvl_weights;

/* A model directory (model.safetensors.index.json, else model.safetensors) or one
 * .safetensors file. */
qvl_weights *qvl_weights_open(const char *path, qvl_err *err);
void qvl_weights_close(qvl_weights *w);

/* Parses a safetensors header from memory (the file's whole bytes: 8-byte length, JSON,
 * data) and validates every entry against the buffer's size; for tests and fuzzing. */
qvl_weights *qvl_weights_from_buffer(const void *buf, size_t len, const char *name, qvl_err *err);

size_t qvl_weights_count(const qvl_weights *w);
/* The i-th tensor in name order, and its name. */
const char *qvl_weights_name(const qvl_weights *w, size_t i);
const qvl_tensor *qvl_weights_at(const qvl_weights *w, size_t i);
/* The tensor called name, or NULL; a name of the original checkpoints' layout (visual.*,
 * model.*) also finds transformers 4.52's (model.visual.*, model.language_model.*). */
const qvl_tensor *qvl_weights_find(const qvl_weights *w, const char *name);
/* The tensor called name, checked to have exactly this shape (ndim dims) and a floating
 * dtype (F32, F16, BF16); error naming the tensor otherwise. */
const qvl_tensor *qvl_weights_get(const qvl_weights *w, const char *name, int ndim,
    const int64_t *shape, qvl_err *err);
/* __metadata__ of the first file, or NULL. Borrowed. */
const json_t *qvl_weights_metadata(const qvl_weights *w);
/* Bytes of all tensor data (for memory budgets and bandwidth figures). */
size_t qvl_weights_bytes(const qvl_weights *w);

#endif
