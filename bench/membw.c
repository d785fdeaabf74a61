/* membw: the machine's streaming-read bandwidth, the bound of decoding: a sum over a large
 * float array (2 GiB by default) split over threads, best of several passes.
 *
 * The array is in 2 MB pages where the kernel gives them (transparent huge pages on
 * request), as qvl maps the weights (lib/safetensors.c): with 4 KB pages the TLB misses
 * cost ~10 % of the rate, which would flatter the ratio to this bound; -4 measures that.
 *
 * usage: membw [-t threads] [-m MiB] [-r repeats] [-4]
 * prints: membw threads=2 bytes=2147483648 GB/s=29.1 */
#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "../lib/pool.h"
#include "../lib/tensor.h"

struct part {
	const float *a;
	size_t n;
	double sum;
	pthread_t tid;
};

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

__attribute__((target("avx512f"))) static double
sum_avx512(const float *a, size_t n)
{
	__m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
	size_t i = 0;

	for (; i + 64 <= n; i += 64) {
		s0 = _mm512_add_ps(s0, _mm512_load_ps(a + i));
		s1 = _mm512_add_ps(s1, _mm512_load_ps(a + i + 16));
		s2 = _mm512_add_ps(s2, _mm512_load_ps(a + i + 32));
		s3 = _mm512_add_ps(s3, _mm512_load_ps(a + i + 48));
	}
	double s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1),
	    _mm512_add_ps(s2, s3)));
	for (; i < n; i++)
		s += a[i];
	return s;
}

static double
sum_plain(const float *a, size_t n)
{
	float s[16] = {0};
	size_t i = 0;

	for (; i + 16 <= n; i += 16)
		for (int l = 0; l < 16; l++)
			s[l] += a[i + l];
	double t = 0;
	for (int l = 0; l < 16; l++)
		t += s[l];
	for (; i < n; i++)
		t += a[i];
	return t;
}

static int use_avx512;

static void *
run_part(void *p)
{
	struct part *part = p;

	part->sum = use_avx512 ? sum_avx512(part->a, part->n) : sum_plain(part->a, part->n);
	return NULL;
}

int
main(int argc, char **argv)
{
	int threads = 2, repeats = 4, small_pages = 0, opt;
	size_t mib = 2048;
	double best = 0, check = 0;

	while ((opt = getopt(argc, argv, "t:m:r:4h")) != -1) {
		switch (opt) {
		case 't':
			threads = atoi(optarg);
			break;
		case 'm':
			mib = (size_t)atol(optarg);
			break;
		case 'r':
			repeats = atoi(optarg);
			break;
		case '4':
			small_pages = 1;
			break;
		default:
			fprintf(stderr, "usage: membw [-t threads] [-m MiB] [-r repeats] [-4]\n");
			return 2;
		}
	}
	if (threads < 1 || threads > 256 || mib < 1 || repeats < 1) {
		fprintf(stderr, "membw: bad arguments\n");
		return 2;
	}
	__builtin_cpu_init();
	use_avx512 = __builtin_cpu_supports("avx512f");
	size_t n = mib << 18; /* floats */
	size_t huge = 2 << 20, bytes = n * sizeof(float) + huge;
	void *map = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	float *a = map == MAP_FAILED ? NULL :
	    (float *)(((uintptr_t)map + huge - 1) & ~(uintptr_t)(huge - 1));
	if (a != NULL)
		(void)madvise(a, n * sizeof *a, small_pages ? MADV_NOHUGEPAGE : MADV_HUGEPAGE);
	if (a == NULL) {
		fprintf(stderr, "membw: out of memory for %zu MiB\n", mib);
		return 1;
	}
	for (size_t i = 0; i < n; i++)
		a[i] = (float)(i & 7);
	struct part parts[256];
	for (int r = 0; r < repeats; r++) {
		double t0 = now();
		size_t per = (n / (size_t)threads + 63) / 64 * 64;
		for (int t = 0; t < threads; t++) {
			size_t begin = (size_t)t * per < n ? (size_t)t * per : n;
			parts[t].a = a + begin;
			parts[t].n = n - begin < per ? n - begin : per;
			pthread_create(&parts[t].tid, NULL, run_part, &parts[t]);
		}
		for (int t = 0; t < threads; t++) {
			pthread_join(parts[t].tid, NULL);
			check += parts[t].sum;
		}
		double gbs = (double)(n * sizeof *a) / (now() - t0) / 1e9;
		if (gbs > best)
			best = gbs;
	}
	printf("membw threads=%d bytes=%zu GB/s=%.2f (check %.0f)%s\n", threads, n * sizeof *a,
	    best, check, small_pages ? " 4 KB pages" : "");
	munmap(map, bytes);
	return 0;
}
