/* memcheck.h: will this allocation fit?  Linux overcommits: a malloc of more than the machine
 * has usually succeeds, and the process is killed later, when the pages are touched, with no
 * message.  Where a program knows in advance what it will need (the KV cache of prompt +
 * max tokens, the vision tower's activations for an image), it asks here first and fails
 * with the numbers instead.  Weights are mmapped and not counted: their pages are the page
 * cache's, reclaimable, and cost speed, not a kill. */
#ifndef QVL_MEMCHECK_H
#define QVL_MEMCHECK_H

#include <stdint.h>

#include "err.h"

/* Bytes this process may still allocate: MemAvailable from /proc/meminfo, lowered to the
 * room left under the cgroup's memory.max when there is one, lowered to $QVL_MEM_LIMIT
 * (bytes, with an optional K, M, G suffix; for tests and shared machines) when set.
 * UINT64_MAX when nothing is known. */
uint64_t qvl_mem_available(void);

/* 0 when `bytes` more fit in qvl_mem_available(); else -1 with "WHAT needs N GB but only M
 * GB of memory is available (MemAvailable / cgroup / QVL_MEM_LIMIT)".  $QVL_MEM_LIMIT=0
 * turns the check off. */
int qvl_mem_check(uint64_t bytes, const char *what, qvl_err *err);

#endif
