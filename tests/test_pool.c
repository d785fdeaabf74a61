/* The thread pool: every index runs exactly once per run, and a thread that finishes its
 * chunk takes over part of a slow one's. */
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "../lib/pool.h"
#include "test.h"

struct visit {
	atomic_int *count;
	int *thread;
};

static void
visit(void *ctx, long i, int thread)
{
	struct visit *v = ctx;

	atomic_fetch_add(&v->count[i], 1);
	v->thread[i] = thread;
}

/* Thread 1 takes 20 ms an index, the others 2 ms. */
static void
visit_slow(void *ctx, long i, int thread)
{
	struct visit *v = ctx;

	nanosleep(&(struct timespec){0, thread == 1 ? 20000000 : 2000000}, NULL);
	atomic_fetch_add(&v->count[i], 1);
	v->thread[i] = thread;
}

int
main(int argc, char **argv)
{
	static const long sizes[] = {0, 1, 2, 3, 7, 64, 1001};
	qvl_err err;

	TEST_INIT(argc, argv);
	for (int threads = 1; threads <= 4; threads++) {
		qvl_pool *pool = qvl_pool_new(threads, &err);
		CHECK(pool && qvl_pool_threads(pool) == threads, "pool of %d", threads);
		CHECK(qvl_pool_precision(pool) == QVL_PRECISION_F32, "float32 by default");
		for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
			long n = sizes[s];
			struct visit v = {calloc((size_t)n + 1, sizeof(atomic_int)),
			    calloc((size_t)n + 1, sizeof(int))};
			for (int round = 0; round < 3; round++)
				qvl_pool_run(pool, n, visit, &v);
			int ok = 1;
			for (long i = 0; i < n; i++)
				ok &= v.count[i] == 3;
			CHECK(ok, "%d threads, n=%ld: each index once per run", threads, n);
			free(v.count);
			free(v.thread);
		}
		if (threads == 2) {
			/* Thread 1 starts on indices 4..7 and needs 20 ms for each: thread 0
			 * takes some of them over. */
			struct visit v = {calloc(8, sizeof(atomic_int)), calloc(8, sizeof(int))};
			qvl_pool_run(pool, 8, visit_slow, &v);
			int ok = 1, taken = 0;
			for (long i = 0; i < 8; i++) {
				ok &= v.count[i] == 1;
				taken += i >= 4 && v.thread[i] == 0;
			}
			CHECK(ok, "slow thread: each index once");
			CHECK(taken >= 1, "thread 0 took %d of the slow thread's 4 indices", taken);
			free(v.count);
			free(v.thread);
		}
		qvl_pool_set_precision(pool, QVL_PRECISION_BF16);
		CHECK(qvl_pool_precision(pool) == QVL_PRECISION_BF16, "precision set");
		qvl_pool_free(pool);
	}
	CHECK(qvl_pool_precision(NULL) == QVL_PRECISION_F32 && qvl_cpu_count() >= 1, "defaults");
	return TEST_DONE();
}
