/* bpe.h: byte-pair encoding by merge rank over token ids.  The merge table maps a pair of
 * adjacent token ids to its rank (line of merges.txt) and the id of the merged token. */
#ifndef QVL_BPE_H
#define QVL_BPE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct qvl_bpe_slot {
	uint64_t key; /* (left << 32 | right) + 1; 0 = empty slot */
	int32_t rank, merged;
} qvl_bpe_slot;

typedef struct qvl_bpe {
	qvl_bpe_slot *slots; /* one cache line holds four: a lookup is one miss */
	size_t mask;         /* capacity - 1, capacity a power of two */
	size_t n;
} qvl_bpe;

/* Makes an empty table sized for nmerges merges (it grows if more come). */
int qvl_bpe_init(qvl_bpe *bpe, size_t nmerges, qvl_err *err);
void qvl_bpe_free(qvl_bpe *bpe);
/* Adds a merge; a pair already present keeps its first (lowest) rank, as the reference. */
int qvl_bpe_add(qvl_bpe *bpe, int32_t left, int32_t right, int32_t rank, int32_t merged,
    qvl_err *err);
/* Hints that the pair's slot will be needed soon (for loading in batches). */
void qvl_bpe_prefetch(const qvl_bpe *bpe, int32_t left, int32_t right);
/* The rank of the pair, or -1 (and *merged the merged id). */
int32_t qvl_bpe_rank(const qvl_bpe *bpe, int32_t left, int32_t right, int32_t *merged);

/* Pieces of at least this many symbols use the heap; shorter ones a scan. */
#define QVL_BPE_HEAP_MIN 48

/* Merges syms[0..n) in place, lowest rank first and leftmost first among equal ranks, until
 * no adjacent pair has a merge.  Returns the new count.  scratch must hold 8 * n int32_t (for
 * n >= heap_min), or n + 1 otherwise; heap_min is normally QVL_BPE_HEAP_MIN (the tests use
 * both paths). */
size_t qvl_bpe_apply(const qvl_bpe *bpe, int32_t *syms, size_t n, int32_t *scratch,
    size_t heap_min);

#endif
