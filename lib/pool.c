#include "pool.h"
#include "cpu.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <cblas.h>

/* A job is published by bumping a generation counter.  Between jobs the workers (and the
 * caller, waiting for them) spin for SPIN_NS before sleeping on a condition variable:
 * decoding runs some 300 jobs per token, a fraction of a millisecond each, and waking a
 * sleeping thread costs tens of microseconds every time (qvl-decode q4: 10 % of the token).
 *
 * Each thread starts on one contiguous chunk of [0, n) and takes its indices from the
 * front; a thread that runs out takes the back half of the fullest chunk left.  Cores are
 * not equally fast from one moment to the next (shared hosts, one core also serving the
 * other's memory traffic): with fixed chunks the two threads of a 3B decode waited for
 * each other 7 % of the time, and a worker that woke late held the job up (2 Zen 4 cores,
 * 3B decode, alternating runs: q4 9.1-9.5 -> 10.0-11.9, q8 7.0-7.2 -> 7.5-7.8, BF16
 * 4.0-4.7 -> 4.6-5.6 tok/s).  Which thread runs an index then depends on timing, but
 * what an index computes never depends on the thread (tasks use `thread` for scratch
 * only), so results stay the same bits. */
#define SPIN_NS 200000
/* A thread's chunk [begin, end) of the current job, both in one word so that the owner
 * taking from the front and a thief taking the back half change it with one
 * compare-and-swap; one cache line each. */
struct chunk {
	_Alignas(64) _Atomic uint64_t range;
};

struct qvl_pool {
	int nthreads;
	struct chunk *chunks;
	qvl_precision precision;
	pthread_t *workers;
	pthread_mutex_t lock;
	pthread_cond_t start, done;
	atomic_ulong generation;
	atomic_int running; /* workers still busy with the current job */
	atomic_int stopping;
	long base; /* index of the current slice's first task */
	qvl_pool_fn fn;
	void *ctx;
};

struct worker_arg {
	qvl_pool *pool;
	int thread;
};

static uint64_t
range_make(uint64_t begin, uint64_t end)
{
	return begin << 32 | end;
}

#define RANGE_BEGIN(r) ((r) >> 32)
#define RANGE_END(r) ((r) & 0xffffffffu)
#define SLICE_MAX 0x7fffffffL

/* Sets every thread's first chunk of [0, n), before the job is published. */
static void
split_chunks(qvl_pool *pool, long n)
{
	long per = n / pool->nthreads, extra = n % pool->nthreads;

	for (int t = 0; t < pool->nthreads; t++) {
		long begin = t * per + (t < extra ? t : extra);
		long end = begin + per + (t < extra);
		atomic_store_explicit(&pool->chunks[t].range, range_make((uint64_t)begin,
		    (uint64_t)end), memory_order_relaxed);
	}
}

/* Takes the back half (at least one index) of the fullest other chunk into the thread's
 * own; 0 when every chunk is empty. */
static int
steal(qvl_pool *pool, int thread)
{
	for (;;) {
		int victim = -1;
		uint64_t seen = 0, most = 0;
		for (int t = 0; t < pool->nthreads; t++) {
			uint64_t r = atomic_load_explicit(&pool->chunks[t].range,
			    memory_order_acquire);
			if (t != thread && RANGE_END(r) > RANGE_BEGIN(r) &&
			    RANGE_END(r) - RANGE_BEGIN(r) > most) {
				victim = t;
				seen = r;
				most = RANGE_END(r) - RANGE_BEGIN(r);
			}
		}
		if (victim < 0)
			return 0;
		uint64_t begin = RANGE_BEGIN(seen), end = RANGE_END(seen);
		uint64_t mid = end - (most + 1) / 2;
		if (atomic_compare_exchange_weak_explicit(&pool->chunks[victim].range, &seen,
		    range_make(begin, mid), memory_order_acq_rel, memory_order_acquire)) {
			atomic_store_explicit(&pool->chunks[thread].range, range_make(mid, end),
			    memory_order_release);
			return 1;
		}
	}
}

static void
run_chunk(qvl_pool *pool, int thread)
{
	_Atomic uint64_t *own = &pool->chunks[thread].range;

	for (;;) {
		uint64_t r = atomic_load_explicit(own, memory_order_acquire);
		if (RANGE_BEGIN(r) >= RANGE_END(r)) {
			if (!steal(pool, thread))
				return;
			continue;
		}
		if (atomic_compare_exchange_weak_explicit(own, &r, r + ((uint64_t)1 << 32),
		    memory_order_acq_rel, memory_order_acquire))
			pool->fn(pool->ctx, pool->base + (long)RANGE_BEGIN(r), thread);
	}
}

static double
seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static inline void
cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/* Every SPIN_YIELD pauses a spinning thread also yields: when more threads want the cores
 * than there are (make -j over many pages), the spin gives its time to them. */
#define SPIN_YIELD 256

/* Spins until *v differs from old (or stop is set), at most SPIN_NS; whether it did. */
static int
spin_while_equal(atomic_ulong *v, unsigned long old, atomic_int *stop)
{
	double until = seconds() + SPIN_NS * 1e-9;

	for (int i = 1;; i++) {
		if (atomic_load_explicit(v, memory_order_acquire) != old ||
		    (stop && atomic_load_explicit(stop, memory_order_relaxed)))
			return 1;
		cpu_relax();
		if (i % SPIN_YIELD == 0) {
			if (seconds() > until)
				return 0;
			sched_yield();
		}
	}
}

static void *
worker_main(void *p)
{
	struct worker_arg *arg = p;
	qvl_pool *pool = arg->pool;
	int thread = arg->thread;
	unsigned long seen = 0;

	free(arg);
	for (;;) {
		if (!spin_while_equal(&pool->generation, seen, &pool->stopping)) {
			/* The publisher bumps the generation before it takes the lock to
			 * broadcast, so checking it under the lock loses no wake-up. */
			pthread_mutex_lock(&pool->lock);
			while (atomic_load(&pool->generation) == seen && !atomic_load(&pool->stopping))
				pthread_cond_wait(&pool->start, &pool->lock);
			pthread_mutex_unlock(&pool->lock);
		}
		if (atomic_load(&pool->stopping))
			break;
		seen = atomic_load(&pool->generation);
		run_chunk(pool, thread);
		if (atomic_fetch_sub(&pool->running, 1) == 1) {
			pthread_mutex_lock(&pool->lock);
			pthread_cond_signal(&pool->done);
			pthread_mutex_unlock(&pool->lock);
		}
	}
	return NULL;
}

int
qvl_cpu_count(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set);
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

qvl_pool *
qvl_pool_new(int nthreads, qvl_err *err)
{
	qvl_pool *pool;

	if (qvl_cpu_check_env(err) < 0)
		return NULL;
	if (nthreads <= 0)
		nthreads = qvl_cpu_count();
	if (nthreads > 1024)
		nthreads = 1024;
	pool = calloc(1, sizeof *pool);
	if (pool == NULL) {
		qvl_fail(err, "out of memory");
		return NULL;
	}
	pool->nthreads = nthreads;
	/* The pool's threads are the only ones: each calls OpenBLAS single-threaded on its own
	 * share, instead of OpenBLAS's workers spinning against ours for the same cores. */
	openblas_set_num_threads(1);
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->start, NULL);
	pthread_cond_init(&pool->done, NULL);
	pool->workers = calloc((size_t)nthreads, sizeof *pool->workers);
	pool->chunks = aligned_alloc(_Alignof(struct chunk), (size_t)nthreads *
	    sizeof *pool->chunks);
	if (pool->workers == NULL || pool->chunks == NULL) {
		free(pool->workers);
		free(pool->chunks);
		free(pool);
		qvl_fail(err, "out of memory");
		return NULL;
	}
	for (int t = 1; t < nthreads; t++) {
		struct worker_arg *arg = malloc(sizeof *arg);
		if (arg != NULL) {
			arg->pool = pool;
			arg->thread = t;
		}
		if (arg == NULL || pthread_create(&pool->workers[t], NULL, worker_main, arg) != 0) {
			free(arg);
			pool->nthreads = t; /* the workers started so far are joined by free */
			qvl_pool_free(pool);
			qvl_fail(err, "cannot start thread %d of %d", t, nthreads);
			return NULL;
		}
	}
	return pool;
}

void
qvl_pool_set_precision(qvl_pool *pool, qvl_precision precision)
{
	pool->precision = precision;
}

qvl_precision
qvl_pool_precision(const qvl_pool *pool)
{
	return pool ? pool->precision : QVL_PRECISION_F32;
}

int
qvl_pool_threads(const qvl_pool *pool)
{
	return pool ? pool->nthreads : 1;
}

static void run_slice(qvl_pool *pool, long base, long n, qvl_pool_fn fn, void *ctx);

void
qvl_pool_run(qvl_pool *pool, long n, qvl_pool_fn fn, void *ctx)
{
	if (n <= 0)
		return;
	if (pool == NULL || pool->nthreads == 1 || n == 1) {
		for (long i = 0; i < n; i++)
			fn(ctx, i, 0);
		return;
	}
	long base = 0;
	/* A chunk's bounds are 32-bit: longer loops go in slices. */
	for (; n > SLICE_MAX; n -= SLICE_MAX, base += SLICE_MAX)
		run_slice(pool, base, SLICE_MAX, fn, ctx);
	run_slice(pool, base, n, fn, ctx);
}

static void
run_slice(qvl_pool *pool, long base, long n, qvl_pool_fn fn, void *ctx)
{
	pool->base = base;
	pool->fn = fn;
	pool->ctx = ctx;
	split_chunks(pool, n);
	atomic_store(&pool->running, pool->nthreads - 1);
	atomic_fetch_add_explicit(&pool->generation, 1, memory_order_release);
	pthread_mutex_lock(&pool->lock);
	pthread_cond_broadcast(&pool->start);
	pthread_mutex_unlock(&pool->lock);

	run_chunk(pool, 0);

	double until = seconds() + SPIN_NS * 1e-9;
	for (int i = 1; atomic_load_explicit(&pool->running, memory_order_acquire) > 0; i++) {
		cpu_relax();
		if (i % SPIN_YIELD == 0) {
			if (seconds() > until) {
				pthread_mutex_lock(&pool->lock);
				while (atomic_load(&pool->running) > 0)
					pthread_cond_wait(&pool->done, &pool->lock);
				pthread_mutex_unlock(&pool->lock);
				break;
			}
			sched_yield();
		}
	}
}

void
qvl_pool_free(qvl_pool *pool)
{
	if (pool == NULL)
		return;
	pthread_mutex_lock(&pool->lock);
	atomic_store(&pool->stopping, 1);
	pthread_cond_broadcast(&pool->start);
	pthread_mutex_unlock(&pool->lock);
	for (int t = 1; t < pool->nthreads; t++)
		pthread_join(pool->workers[t], NULL);
	pthread_mutex_destroy(&pool->lock);
	pthread_cond_destroy(&pool->start);
	pthread_cond_destroy(&pool->done);
	free(pool->workers);
	free(pool->chunks);
	free(pool);
}
