/* kernels_avx2.c: the plain C kernels compiled for AVX2 + FMA + F16C (CPUs without
 * AVX-512), chosen at run time. */
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c")
#pragma GCC optimize("tree-vectorize")
#endif

#define KERNELS_TABLE qvl_kernels_avx2
#include "kernels_c.h"

#if defined(__clang__)
#pragma clang attribute pop
#endif
