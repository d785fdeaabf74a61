#include "pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <cblas.h>

/* A job is published by bumping a generation counter.  Between jobs the workers (and the
 * caller, waiting for them) spin for SPIN_NS before sleeping on a condition variable:
 * decoding runs some 300 jobs per token, a fraction of a millisecond each, and waking a
 * sleeping thread costs tens of microseconds every time (qvl-decode q4: 10 % of the token).
 * Each thread takes one contiguous chunk of [0, n), so which thread computes which index
 * never depends on timing. */
#define SPIN_NS 200000
struct qvl_pool {
	int nthreads;
	qvl_precision precision;
	pthread_t *workers;
	pthread_mutex_t lock;
	pthread_cond_t start, done;
	atomic_ulong generation;
	atomic_int running; /* workers still busy with the current job */
	atomic_int stopping;
	long n;
	qvl_pool_fn fn;
	void *ctx;
};

struct worker_arg {
	qvl_pool *pool;
	int thread;
};

static void
run_chunk(qvl_pool *pool, int thread)
{
	long n = pool->n, per = n / pool->nthreads, extra = n % pool->nthreads;
	long begin = thread * per + (thread < extra ? thread : extra);
	long end = begin + per + (thread < extra);

	for (long i = begin; i < end; i++)
		pool->fn(pool->ctx, i, thread);
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
	if (pool->workers == NULL) {
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
	pool->n = n;
	pool->fn = fn;
	pool->ctx = ctx;
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
	free(pool);
}
