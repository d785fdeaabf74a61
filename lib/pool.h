/* pool.h: a fixed pool of worker threads for data-parallel loops.
 *
 * qvl_pool_run(pool, n, fn, ctx) calls fn(ctx, i, thread) for i in [0, n), spread over the
 * pool's threads (the caller's thread takes part as thread 0), and returns when all are done.
 * Each thread starts on a contiguous chunk; one that finishes early takes over part of
 * another's, so which thread runs an index depends on timing: fn must use `thread` only
 * to pick its scratch, never to decide what index i computes. */
#ifndef QVL_POOL_H
#define QVL_POOL_H

#include "err.h"

typedef struct qvl_pool qvl_pool;

/* The pool is also the compute context the matrix products consult: the precision of
 * the products with weights (float32 = the reference's numerics; bf16 = BF16 products with
 * float32 accumulation, faster, less exact). */
typedef enum qvl_precision { QVL_PRECISION_F32, QVL_PRECISION_BF16 } qvl_precision;
void qvl_pool_set_precision(qvl_pool *pool, qvl_precision precision);
qvl_precision qvl_pool_precision(const qvl_pool *pool); /* F32 for a NULL pool */
typedef void (*qvl_pool_fn)(void *ctx, long index, int thread);

/* nthreads <= 0 means the number of online CPUs. */
qvl_pool *qvl_pool_new(int nthreads, qvl_err *err);
int qvl_pool_threads(const qvl_pool *pool);
void qvl_pool_run(qvl_pool *pool, long n, qvl_pool_fn fn, void *ctx);
void qvl_pool_free(qvl_pool *pool);
/* Number of CPUs this process may run on. */
int qvl_cpu_count(void);

#endif
