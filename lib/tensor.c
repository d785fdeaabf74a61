#include "tensor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static const struct {
	const char *name;
	size_t size;
} dtype_info[QVL_DTYPE_COUNT] = {
	[QVL_F32] = {"F32", 4},
	[QVL_F16] = {"F16", 2},
	[QVL_BF16] = {"BF16", 2},
	[QVL_I64] = {"I64", 8},
	[QVL_I32] = {"I32", 4},
	[QVL_I16] = {"I16", 2},
	[QVL_I8] = {"I8", 1},
	[QVL_U8] = {"U8", 1},
	[QVL_F64] = {"F64", 8},
	[QVL_BOOL] = {"BOOL", 1},
	[QVL_U16] = {"U16", 2},
	[QVL_U32] = {"U32", 4},
	[QVL_U64] = {"U64", 8},
	[QVL_F8_E4M3] = {"F8_E4M3", 1},
	[QVL_F8_E5M2] = {"F8_E5M2", 1},
};

const char *
qvl_dtype_name(qvl_dtype dtype)
{
	return (unsigned)dtype < QVL_DTYPE_COUNT ? dtype_info[dtype].name : "?";
}

int
qvl_dtype_parse(const char *name, qvl_dtype *dtype)
{
	for (int i = 0; i < QVL_DTYPE_COUNT; i++)
		if (strcmp(name, dtype_info[i].name) == 0) {
			*dtype = (qvl_dtype)i;
			return 0;
		}
	return -1;
}

size_t
qvl_dtype_size(qvl_dtype dtype)
{
	return (unsigned)dtype < QVL_DTYPE_COUNT ? dtype_info[dtype].size : 0;
}

int
qvl_dtype_is_float(qvl_dtype dtype)
{
	return dtype == QVL_F32 || dtype == QVL_F64 || dtype == QVL_BF16 || dtype == QVL_F16 ||
	    dtype == QVL_F8_E4M3 || dtype == QVL_F8_E5M2;
}

int
qvl_shape_size(const int64_t *shape, int ndim, qvl_dtype dtype, size_t *numel, size_t *nbytes,
    qvl_err *err)
{
	size_t n = 1, elem = qvl_dtype_size(dtype);

	if (ndim < 0 || ndim > QVL_MAX_DIMS)
		return qvl_fail(err, "%d dimensions (at most %d)", ndim, QVL_MAX_DIMS);
	for (int i = 0; i < ndim; i++) {
		if (shape[i] < 0)
			return qvl_fail(err, "negative dimension %lld", (long long)shape[i]);
		if (shape[i] != 0 && n > SIZE_MAX / (uint64_t)shape[i])
			return qvl_fail(err, "shape overflows the address space");
		n *= (size_t)shape[i];
	}
	if (elem == 0)
		return qvl_fail(err, "unknown dtype");
	if (n > SIZE_MAX / elem)
		return qvl_fail(err, "shape overflows the address space");
	if (numel)
		*numel = n;
	if (nbytes)
		*nbytes = n * elem;
	return 0;
}

char *
qvl_shape_str(const int64_t *shape, int ndim, char *buf, size_t len)
{
	size_t used = 0;

	used += (size_t)snprintf(buf, len, "[");
	for (int i = 0; i < ndim && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%lld", i ? ", " : "",
		    (long long)shape[i]);
	if (used < len)
		snprintf(buf + used, len - used, "]");
	return buf;
}

float
qvl_f8_to_f32(qvl_dtype dtype, uint8_t v)
{
	int sign = v >> 7, exp, mant;
	float f;

	/* E5M2 is the top byte of an F16, infinities and NaNs included */
	if (dtype == QVL_F8_E5M2)
		return qvl_f16_to_f32((uint16_t)(v << 8));
	/* E4M3 (torch's float8_e4m3fn): bias 7, no infinities, S.1111.111 the only NaN */
	exp = (v >> 3) & 15;
	mant = v & 7;
	if (exp == 15 && mant == 7)
		return NAN;
	f = exp == 0 ? ldexpf((float)mant, -9) : ldexpf((float)(8 + mant), exp - 10);
	return sign ? -f : f;
}

double
qvl_dtype_get(qvl_dtype dtype, const void *data, size_t i)
{
	switch (dtype) {
	case QVL_F32: return ((const float *)data)[i];
	case QVL_F64: return ((const double *)data)[i];
	case QVL_BF16: return qvl_bf16_to_f32(((const uint16_t *)data)[i]);
	case QVL_F16: return qvl_f16_to_f32(((const uint16_t *)data)[i]);
	case QVL_F8_E4M3: case QVL_F8_E5M2: return qvl_f8_to_f32(dtype, ((const uint8_t *)data)[i]);
	case QVL_I64: return (double)((const int64_t *)data)[i];
	case QVL_I32: return ((const int32_t *)data)[i];
	case QVL_I16: return ((const int16_t *)data)[i];
	case QVL_I8: return ((const int8_t *)data)[i];
	case QVL_U64: return (double)((const uint64_t *)data)[i];
	case QVL_U32: return ((const uint32_t *)data)[i];
	case QVL_U16: return ((const uint16_t *)data)[i];
	case QVL_U8: case QVL_BOOL: return ((const uint8_t *)data)[i];
	default: return NAN;
	}
}

void
qvl_to_f32(qvl_dtype dtype, const void *src, size_t first, size_t n, float *dst)
{
	size_t i;

	switch (dtype) {
	case QVL_F32:
		memcpy(dst, (const float *)src + first, n * sizeof *dst);
		break;
	case QVL_BF16: {
		const uint16_t *s = (const uint16_t *)src + first;
		for (i = 0; i < n; i++)
			dst[i] = qvl_bf16_to_f32(s[i]);
		break;
	}
	case QVL_F16: {
		const uint16_t *s = (const uint16_t *)src + first;
		for (i = 0; i < n; i++)
			dst[i] = qvl_f16_to_f32(s[i]);
		break;
	}
	/* 64-bit integers round to float once, not through double */
	case QVL_I64: {
		const int64_t *s = (const int64_t *)src + first;
		for (i = 0; i < n; i++)
			dst[i] = (float)s[i];
		break;
	}
	case QVL_U64: {
		const uint64_t *s = (const uint64_t *)src + first;
		for (i = 0; i < n; i++)
			dst[i] = (float)s[i];
		break;
	}
	default:
		/* every other type is exact in double */
		for (i = 0; i < n; i++)
			dst[i] = (unsigned)dtype < QVL_DTYPE_COUNT ?
			    (float)qvl_dtype_get(dtype, src, first + i) : 0;
	}
}

void *
qvl_alloc(size_t size)
{
	void *p = NULL;

	if (size == 0)
		size = 64;
	size = (size + 63) & ~(size_t)63;
	if (posix_memalign(&p, 64, size) != 0)
		return NULL;
	return p;
}
