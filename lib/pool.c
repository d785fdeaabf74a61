#include "pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include <cblas.h>

/* Workers sleep on a condition variable between jobs; a job is published by bumping a
 * generation counter.  Each thread takes one contiguous chunk of [0, n), so which thread
 * computes which index never depends on timing. */
struct qvl_pool {
	int nthreads;
	qvl_precision precision;
	pthread_t *workers;
	pthread_mutex_t lock;
	pthread_cond_t start, done;
	unsigned long generation;
	int running; /* workers still busy with the current job */
	int stopping;
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

static void *
worker_main(void *p)
{
	struct worker_arg *arg = p;
	qvl_pool *pool = arg->pool;
	int thread = arg->thread;
	unsigned long seen = 0;

	free(arg);
	pthread_mutex_lock(&pool->lock);
	for (;;) {
		while (pool->generation == seen && !pool->stopping)
			pthread_cond_wait(&pool->start, &pool->lock);
		if (pool->stopping)
			break;
		seen = pool->generation;
		pthread_mutex_unlock(&pool->lock);
		run_chunk(pool, thread);
		pthread_mutex_lock(&pool->lock);
		if (--pool->running == 0)
			pthread_cond_signal(&pool->done);
	}
	pthread_mutex_unlock(&pool->lock);
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
	pthread_mutex_lock(&pool->lock);
	pool->n = n;
	pool->fn = fn;
	pool->ctx = ctx;
	pool->running = pool->nthreads - 1;
	pool->generation++;
	pthread_cond_broadcast(&pool->start);
	pthread_mutex_unlock(&pool->lock);

	run_chunk(pool, 0);

	pthread_mutex_lock(&pool->lock);
	while (pool->running > 0)
		pthread_cond_wait(&pool->done, &pool->lock);
	pthread_mutex_unlock(&pool->lock);
}

void
qvl_pool_free(qvl_pool *pool)
{
	if (pool == NULL)
		return;
	pthread_mutex_lock(&pool->lock);
	pool->stopping = 1;
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
