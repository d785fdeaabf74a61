/* cpu.h: what the processor can do, probed once at run time.
 *
 * The library is built for the build machine (-march=native) or a baseline (ARCH=), but
 * its kernels carry their own target attributes: which one runs is chosen here, from cpuid
 * and what the kernel lets the process use (xgetbv; for AMX, arch_prctl and a tile
 * instruction that must run).  QVL_CPU in the environment caps the choice ("generic",
 * "avx2", "avx512", "avx512bf16", each without AMX), for tests that compare the paths and
 * for machines that advertise more than they run. */
#ifndef QVL_CPU_H
#define QVL_CPU_H

#include "err.h"

typedef enum qvl_cpu_level {
	QVL_CPU_GENERIC,    /* plain C, vectorized by the compiler for the build's -march */
	QVL_CPU_AVX2,       /* AVX2 + FMA + F16C */
	QVL_CPU_AVX512,     /* AVX-512 F/BW/VL/DQ */
	QVL_CPU_AVX512BF16, /* ... + AVX512_BF16 (vdpbf16ps) */
} qvl_cpu_level;

typedef struct qvl_cpu {
	qvl_cpu_level level;  /* best usable kernel level, after QVL_CPU */
	unsigned avx2 : 1, fma : 1, f16c : 1, avx512 : 1, avx512bf16 : 1, avx512vnni : 1;
	unsigned amx : 1;     /* AMX tiles present, enabled by the OS, granted to us, and they
	                       * run (and QVL_CPU does not name a level) */
	unsigned amx_listed : 1; /* cpuid lists AMX-TILE and AMX-BF16, usable or not */
	char name[64];        /* cpuid brand string */
} qvl_cpu;

/* The probe's result; the first call probes (thread-safe), later calls return the same. */
const qvl_cpu *qvl_cpu_get(void);
const char *qvl_cpu_level_name(qvl_cpu_level level);
/* -1 when QVL_CPU is set to something that names no level (a typo would otherwise leave
 * the kernels, AMX included, as they are, and the user none the wiser). */
int qvl_cpu_check_env(qvl_err *err);

/* 1 when AMX tile instructions run in this process (after the tile state is granted), 0
 * when they fault with SIGILL (caught); for the probe and its test. */
int qvl_cpu_amx_runs(void);

#endif
