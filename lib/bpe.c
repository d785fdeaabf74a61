/* bpe.c: the merge table (open addressing over id pairs) and the merge loop.  Short pieces,
 * which are nearly all of them, use a scan over a compact array with the ranks of adjacent
 * pairs cached; long ones (runs of letters or spaces thousands of characters long) a binary
 * heap over a linked list, so that they stay O(n log n). */
#include "bpe.h"

#include <stdlib.h>

static size_t
pair_hash(uint64_t key)
{
	key ^= key >> 33;
	key *= 0xff51afd7ed558ccdULL;
	key ^= key >> 33;
	return (size_t)key;
}

int
qvl_bpe_init(qvl_bpe *bpe, size_t nmerges, qvl_err *err)
{
	size_t cap = 16;

	while (cap < 2 * nmerges + 16)
		cap *= 2;
	bpe->slots = calloc(cap, sizeof(*bpe->slots));
	bpe->mask = cap - 1;
	bpe->n = 0;
	if (bpe->slots == NULL)
		return qvl_fail(err, "merge table: out of memory");
	return 0;
}

void
qvl_bpe_free(qvl_bpe *bpe)
{
	free(bpe->slots);
	bpe->slots = NULL;
}

static void
insert(qvl_bpe *bpe, qvl_bpe_slot slot)
{
	size_t i;

	for (i = pair_hash(slot.key) & bpe->mask; bpe->slots[i].key != 0; i = (i + 1) & bpe->mask)
		if (bpe->slots[i].key == slot.key)
			return;
	bpe->slots[i] = slot;
	bpe->n++;
}

int
qvl_bpe_add(qvl_bpe *bpe, int32_t left, int32_t right, int32_t rank, int32_t merged,
    qvl_err *err)
{
	qvl_bpe old = *bpe;
	size_t i;

	if (2 * (bpe->n + 1) > bpe->mask + 1) {
		/* more merges than promised: double the table */
		bpe->slots = calloc(2 * (old.mask + 1), sizeof(*bpe->slots));
		if (bpe->slots == NULL) {
			bpe->slots = old.slots;
			return qvl_fail(err, "merge table: out of memory");
		}
		bpe->mask = 2 * old.mask + 1;
		bpe->n = 0;
		for (i = 0; i <= old.mask; i++)
			if (old.slots[i].key != 0)
				insert(bpe, old.slots[i]);
		free(old.slots);
	}
	insert(bpe, (qvl_bpe_slot){ ((uint64_t)(uint32_t)left << 32 | (uint32_t)right) + 1,
	    rank, merged });
	return 0;
}

void
qvl_bpe_prefetch(const qvl_bpe *bpe, int32_t left, int32_t right)
{
	uint64_t key = ((uint64_t)(uint32_t)left << 32 | (uint32_t)right) + 1;

	__builtin_prefetch(&bpe->slots[pair_hash(key) & bpe->mask]);
}

int32_t
qvl_bpe_rank(const qvl_bpe *bpe, int32_t left, int32_t right, int32_t *merged)
{
	uint64_t key = ((uint64_t)(uint32_t)left << 32 | (uint32_t)right) + 1;
	size_t i;

	for (i = pair_hash(key) & bpe->mask; bpe->slots[i].key != 0; i = (i + 1) & bpe->mask)
		if (bpe->slots[i].key == key) {
			*merged = bpe->slots[i].merged;
			return bpe->slots[i].rank;
		}
	return -1;
}

#define NO_RANK INT32_MAX

static int32_t
rank_of(const qvl_bpe *bpe, int32_t left, int32_t right)
{
	int32_t merged, r = qvl_bpe_rank(bpe, left, right, &merged);

	return r < 0 ? NO_RANK : r;
}

static size_t
apply_scan(const qvl_bpe *bpe, int32_t *syms, size_t n, int32_t *ranks)
{
	size_t i, best;
	int32_t merged;

	for (i = 0; i + 1 < n; i++)
		ranks[i] = rank_of(bpe, syms[i], syms[i + 1]);
	while (n > 1) {
		best = 0;
		for (i = 1; i + 1 < n; i++)
			if (ranks[i] < ranks[best])
				best = i;
		if (ranks[best] == NO_RANK)
			break;
		qvl_bpe_rank(bpe, syms[best], syms[best + 1], &merged);
		syms[best] = merged;
		for (i = best + 1; i + 1 < n; i++) {
			syms[i] = syms[i + 1];
			ranks[i] = ranks[i + 1];
		}
		n--;
		if (best > 0)
			ranks[best - 1] = rank_of(bpe, syms[best - 1], syms[best]);
		if (best + 1 < n)
			ranks[best] = rank_of(bpe, syms[best], syms[best + 1]);
	}
	return n;
}

/* Heap entries order by rank, then by position: the leftmost of equal ranks merges first. */
typedef struct heap_entry {
	int32_t rank, pos;
} heap_entry;

static int
entry_less(heap_entry a, heap_entry b)
{
	return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos);
}

static void
heap_push(heap_entry *h, size_t *n, heap_entry e)
{
	size_t i = (*n)++, parent;

	while (i > 0) {
		parent = (i - 1) / 2;
		if (!entry_less(e, h[parent]))
			break;
		h[i] = h[parent];
		i = parent;
	}
	h[i] = e;
}

static heap_entry
heap_pop(heap_entry *h, size_t *n)
{
	heap_entry top = h[0], last = h[--*n];
	size_t i = 0, child;

	while ((child = 2 * i + 1) < *n) {
		if (child + 1 < *n && entry_less(h[child + 1], h[child]))
			child++;
		if (!entry_less(h[child], last))
			break;
		h[i] = h[child];
		i = child;
	}
	h[i] = last;
	return top;
}

static void
push_pair(const qvl_bpe *bpe, heap_entry *h, size_t *nh, const int32_t *syms, int32_t left,
    int32_t right)
{
	int32_t merged, r = qvl_bpe_rank(bpe, syms[left], syms[right], &merged);

	if (r >= 0)
		heap_push(h, nh, (heap_entry){ r, left });
}

/* scratch: prev[n], next[n], then the heap (at most n - 1 + 2 per merge < 3n entries). */
static size_t
apply_heap(const qvl_bpe *bpe, int32_t *syms, size_t n, int32_t *scratch)
{
	int32_t *prev = scratch, *next = scratch + n, merged, r, p, q;
	heap_entry *heap = (heap_entry *)(scratch + 2 * n), e;
	size_t i, nh = 0, out;

	for (i = 0; i < n; i++) {
		prev[i] = (int32_t)i - 1;
		next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
	}
	for (i = 0; i + 1 < n; i++)
		push_pair(bpe, heap, &nh, syms, (int32_t)i, (int32_t)i + 1);
	while (nh > 0) {
		e = heap_pop(heap, &nh);
		p = e.pos;
		q = next[p];
		/* Entries go stale when a neighbour merges: p is gone (syms -1) or its pair changed. */
		if (syms[p] < 0 || q < 0)
			continue;
		r = qvl_bpe_rank(bpe, syms[p], syms[q], &merged);
		if (r != e.rank)
			continue;
		syms[p] = merged;
		syms[q] = -1;
		next[p] = next[q];
		if (next[q] >= 0)
			prev[next[q]] = p;
		if (prev[p] >= 0)
			push_pair(bpe, heap, &nh, syms, prev[p], p);
		if (next[p] >= 0)
			push_pair(bpe, heap, &nh, syms, p, next[p]);
	}
	for (i = 0, out = 0; i < n; i++)
		if (syms[i] >= 0)
			syms[out++] = syms[i];
	return out;
}

size_t
qvl_bpe_apply(const qvl_bpe *bpe, int32_t *syms, size_t n, int32_t *scratch, size_t heap_min)
{
	if (n < 2)
		return n;
	if (n >= heap_min)
		return apply_heap(bpe, syms, n, scratch);
	return apply_scan(bpe, syms, n, scratch);
}
