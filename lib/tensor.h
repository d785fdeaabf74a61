/* tensor.h: dtypes, shapes and a non-owning tensor view shared by the stream and safetensors
 * readers. dtype names are those of safetensors. */
#ifndef QVL_TENSOR_H
#define QVL_TENSOR_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "err.h"

typedef enum qvl_dtype {
	QVL_F32,
	QVL_F16,
	QVL_BF16,
	QVL_I64,
	QVL_I32,
	QVL_I16,
	QVL_I8,
	QVL_U8,
	QVL_F64,
	/* the rest of safetensors' types, read and shown (qvl-dump), never computed with */
	QVL_BOOL,
	QVL_U16,
	QVL_U32,
	QVL_U64,
	QVL_F8_E4M3,
	QVL_F8_E5M2,
	QVL_DTYPE_COUNT
} qvl_dtype;

#define QVL_MAX_DIMS 8

/* A view of n-dimensional row-major data; `data` is not owned by the view. */
typedef struct qvl_tensor {
	qvl_dtype dtype;
	int ndim;
	int64_t shape[QVL_MAX_DIMS];
	void *data;
	size_t nbytes;
} qvl_tensor;

const char *qvl_dtype_name(qvl_dtype dtype);
/* Returns 0 and sets *dtype for a known name ("F32", "BF16", ...), -1 otherwise. */
int qvl_dtype_parse(const char *name, qvl_dtype *dtype);
size_t qvl_dtype_size(qvl_dtype dtype);
/* F32, F64, BF16, F16 or one of the F8s. */
int qvl_dtype_is_float(qvl_dtype dtype);

/* Number of elements and bytes of a shape, checking every dimension is >= 0 and that neither
 * product overflows size_t.  Returns 0 or -1 with a message. */
int qvl_shape_size(const int64_t *shape, int ndim, qvl_dtype dtype, size_t *numel, size_t *nbytes,
    qvl_err *err);

static inline size_t
qvl_tensor_numel(const qvl_tensor *t)
{
	size_t n = 1;

	for (int i = 0; i < t->ndim; i++)
		n *= (size_t)t->shape[i];
	return n;
}

/* Formats a shape as "[2, 3, 4]" into buf. */
char *qvl_shape_str(const int64_t *shape, int ndim, char *buf, size_t len);

static inline float
qvl_bf16_to_f32(uint16_t h)
{
	uint32_t u = (uint32_t)h << 16;
	float f;

	memcpy(&f, &u, sizeof f);
	return f;
}

/* Round to nearest even, as torch does when casting float32 to bfloat16. */
static inline uint16_t
qvl_f32_to_bf16(float f)
{
	uint32_t u;

	memcpy(&u, &f, sizeof u);
	if ((u & 0x7fffffffu) > 0x7f800000u)
		return (uint16_t)((u >> 16) | 0x40);
	u += 0x7fffu + ((u >> 16) & 1);
	return (uint16_t)(u >> 16);
}

/* A half as float, inline and branch-free so that loops over scales vectorize: the half's
 * exponent and mantissa moved to a float's places and rescaled by 2^112 (exact, for
 * subnormals too), then infinities and NaNs given the float's all-ones exponent
 * (test_matmul checks all 65536 against the formula). */
static inline float
qvl_f16_to_f32(uint16_t h)
{
	uint32_t u = (uint32_t)(h & 0x7fff) << 13;
	float f;

	memcpy(&f, &u, sizeof f);
	f *= 0x1p112f;
	memcpy(&u, &f, sizeof u);
	if ((h & 0x7c00) == 0x7c00)
		u |= 0x7f800000u;
	u |= (uint32_t)(h & 0x8000) << 16;
	memcpy(&f, &u, sizeof f);
	return f;
}

/* One F8_E4M3 or F8_E5M2 value (dtype says which) as float. */
float qvl_f8_to_f32(qvl_dtype dtype, uint8_t v);

/* Element i of data of the given dtype, as a double (NaN for no dtype). */
double qvl_dtype_get(qvl_dtype dtype, const void *data, size_t i);
/* Converts n elements of any numeric dtype at src (element offset `first`) to float. */
void qvl_to_f32(qvl_dtype dtype, const void *src, size_t first, size_t n, float *dst);

/* Converts a whole tensor to float32 into dst (numel floats). */
static inline void
qvl_tensor_to_f32(const qvl_tensor *t, float *dst)
{
	qvl_to_f32(t->dtype, t->data, 0, qvl_tensor_numel(t), dst);
}

/* 64-byte aligned allocation (for payloads and activations); free with free(). NULL on
 * failure or when size is 0 (then a 64-byte block is returned instead, so NULL means failure). */
void *qvl_alloc(size_t size);

#endif
