#include "cpu.h"

#include <cpuid.h>
#include <immintrin.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

static qvl_cpu probed;
static pthread_once_t probe_once = PTHREAD_ONCE_INIT;

static uint64_t
xgetbv0(void)
{
	uint32_t lo, hi;

	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return (uint64_t)hi << 32 | lo;
}

/* AMX instructions run, or fault: some machines list AMX in cpuid, grant the tile state
 * and still raise SIGILL on the first tile instruction (a hypervisor that hides it).  One
 * tile is configured, zeroed and released with SIGILL (and SIGSEGV, which a refused tile
 * configuration raises) caught; the process's own handlers are back before this returns. */
static sigjmp_buf amx_fault;

static void
amx_caught(int sig)
{
	(void)sig;
	siglongjmp(amx_fault, 1);
}

__attribute__((target("amx-tile"), noinline)) static void
amx_touch(void)
{
	/* palette 1, tile 0 of 1 row x 4 bytes */
	static _Alignas(64) unsigned char config[64] = { 1, [16] = 4, [48] = 1 };

	_tile_loadconfig(config);
	_tile_zero(0);
	_tile_release();
}

int
qvl_cpu_amx_runs(void)
{
	struct sigaction ours, their_ill, their_segv;
	volatile int ran = 0;

	memset(&ours, 0, sizeof ours);
	ours.sa_handler = amx_caught;
	sigemptyset(&ours.sa_mask);
	if (sigaction(SIGILL, &ours, &their_ill) != 0)
		return 0;
	if (sigaction(SIGSEGV, &ours, &their_segv) != 0) {
		sigaction(SIGILL, &their_ill, NULL);
		return 0;
	}
	if (sigsetjmp(amx_fault, 1) == 0) {
		amx_touch();
		ran = 1;
	}
	sigaction(SIGSEGV, &their_segv, NULL);
	sigaction(SIGILL, &their_ill, NULL);
	return ran;
}

/* 0 and *level for a level's name in QVL_CPU ("avx2", ...), -1 for any other. */
static int
level_named(const char *name, qvl_cpu_level *level)
{
	for (int l = QVL_CPU_GENERIC; l <= QVL_CPU_AVX512BF16; l++)
		if (strcmp(name, qvl_cpu_level_name((qvl_cpu_level)l)) == 0) {
			*level = (qvl_cpu_level)l;
			return 0;
		}
	return -1;
}

static void
probe(void)
{
	unsigned a, b, c, d, max;
	uint64_t xcr0 = 0;
	int osxsave, ymm_ok, zmm_ok, tile_ok;
	const char *cap;
	qvl_cpu_level named;

	memset(&probed, 0, sizeof probed);
	max = (unsigned)__get_cpuid_max(0, NULL);
	if (max >= 1 && __get_cpuid(1, &a, &b, &c, &d)) {
		osxsave = (c >> 27) & 1;
		if (osxsave)
			xcr0 = xgetbv0();
		/* The OS must save the registers, or using them corrupts other processes'. */
		ymm_ok = osxsave && (xcr0 & 0x6) == 0x6;
		zmm_ok = ymm_ok && (xcr0 & 0xe0) == 0xe0;
		tile_ok = (xcr0 & 0x60000) == 0x60000;
		probed.fma = ymm_ok && ((c >> 12) & 1);
		probed.f16c = ymm_ok && ((c >> 29) & 1);
		if (max >= 7) {
			__cpuid_count(7, 0, a, b, c, d);
			probed.avx2 = ymm_ok && ((b >> 5) & 1);
			/* F, DQ, BW, VL */
			probed.avx512 = zmm_ok && ((b >> 16) & 1) && ((b >> 17) & 1) &&
			    ((b >> 30) & 1) && ((b >> 31) & 1);
			probed.avx512vnni = probed.avx512 && ((c >> 11) & 1);
			int amx_tile = (d >> 24) & 1, amx_bf16 = (d >> 22) & 1;
			__cpuid_count(7, 1, a, b, c, d);
			probed.avx512bf16 = probed.avx512 && ((a >> 5) & 1);
			/* Linux hands out tile state only on request; a refusal (old kernel,
			 * seccomp, a hypervisor that hides it) means no AMX, not a crash. */
			probed.amx_listed = amx_tile && amx_bf16;
			if (amx_tile && amx_bf16 && tile_ok &&
			    syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0 &&
			    qvl_cpu_amx_runs())
				probed.amx = 1;
		}
	}
	if ((unsigned)__get_cpuid_max(0x80000000, NULL) >= 0x80000004u) {
		unsigned *p = (unsigned *)probed.name;
		for (unsigned leaf = 0; leaf < 3; leaf++)
			__get_cpuid(0x80000002 + leaf, &p[leaf * 4], &p[leaf * 4 + 1],
			    &p[leaf * 4 + 2], &p[leaf * 4 + 3]);
		probed.name[48] = '\0';
	}

	if (probed.avx512bf16 && probed.f16c && probed.fma)
		probed.level = QVL_CPU_AVX512BF16;
	else if (probed.avx512 && probed.f16c && probed.fma)
		probed.level = QVL_CPU_AVX512;
	else if (probed.avx2 && probed.fma && probed.f16c)
		probed.level = QVL_CPU_AVX2;
	else
		probed.level = QVL_CPU_GENERIC;
	if ((cap = getenv("QVL_CPU")) != NULL && level_named(cap, &named) == 0) {
		if (named < probed.level)
			probed.level = named;
		probed.amx = 0; /* a named level has no AMX */
	}
}

int
qvl_cpu_check_env(qvl_err *err)
{
	const char *cap = getenv("QVL_CPU");
	qvl_cpu_level named;

	if (cap == NULL || *cap == '\0' || level_named(cap, &named) == 0)
		return 0;
	return qvl_fail(err, "QVL_CPU: '%s' is not generic, avx2, avx512 or avx512bf16", cap);
}

const qvl_cpu *
qvl_cpu_get(void)
{
	pthread_once(&probe_once, probe);
	return &probed;
}

const char *
qvl_cpu_level_name(qvl_cpu_level level)
{
	switch (level) {
	case QVL_CPU_GENERIC:
		return "generic";
	case QVL_CPU_AVX2:
		return "avx2";
	case QVL_CPU_AVX512:
		return "avx512";
	case QVL_CPU_AVX512BF16:
		return "avx512bf16";
	}
	return "?";
}
