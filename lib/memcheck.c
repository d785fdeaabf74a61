#include "memcheck.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A number of bytes with an optional K/M/G/T suffix (powers of 1024, also written KB or
 * KiB); 0 on success. */
static int
parse_bytes(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	int shift = 0;

	errno = 0;
	if (!isdigit((unsigned char)*s))	/* strtoull takes "-5" as 2^64 - 5 */
		return -1;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	switch (toupper((unsigned char)*end)) {
	case 'K': shift = 10; end++; break;
	case 'M': shift = 20; end++; break;
	case 'G': shift = 30; end++; break;
	case 'T': shift = 40; end++; break;
	default: break;
	}
	if (shift && *end == 'i')
		end++;
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end != '\0' || (shift && v > (UINT64_MAX >> shift)))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

/* The first number in a one-line file, or UINT64_MAX ("max", missing, unreadable). */
static uint64_t
read_u64_file(const char *path)
{
	FILE *f = fopen(path, "r");
	unsigned long long v;
	uint64_t r = UINT64_MAX;

	if (f == NULL)
		return r;
	if (fscanf(f, "%llu", &v) == 1)
		r = v;
	fclose(f);
	return r;
}

static uint64_t
meminfo_available(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];
	unsigned long long kb;
	uint64_t r = UINT64_MAX;

	if (f == NULL)
		return r;
	while (fgets(line, sizeof line, f) != NULL)
		if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
			r = (uint64_t)kb * 1024;
			break;
		}
	fclose(f);
	return r;
}

/* Room under a cgroup v2 memory.max (the process's own cgroup is assumed to be the root of
 * the unified hierarchy as seen from inside a container). */
static uint64_t
cgroup_available(void)
{
	uint64_t max = read_u64_file("/sys/fs/cgroup/memory.max");
	uint64_t cur = read_u64_file("/sys/fs/cgroup/memory.current");

	if (max == UINT64_MAX)
		return UINT64_MAX;
	if (cur == UINT64_MAX)
		cur = 0;
	return max > cur ? max - cur : 0;
}

uint64_t
qvl_mem_available(void)
{
	const char *env = getenv("QVL_MEM_LIMIT");
	uint64_t avail = meminfo_available(), cg = cgroup_available(), lim;

	if (cg < avail)
		avail = cg;
	if (env != NULL && *env != '\0' && parse_bytes(env, &lim) == 0 && lim > 0 && lim < avail)
		avail = lim;
	return avail;
}

/* "1.50 GB" or "68.2 MB": enough digits to tell need and room apart */
static const char *
human(uint64_t bytes, char *buf, size_t len)
{
	if (bytes >= 1000000000)
		snprintf(buf, len, "%.2f GB", (double)bytes / 1e9);
	else
		snprintf(buf, len, "%.1f MB", (double)bytes / 1e6);
	return buf;
}

int
qvl_mem_check(uint64_t bytes, const char *what, qvl_err *err)
{
	const char *env = getenv("QVL_MEM_LIMIT");
	uint64_t avail, lim;
	char need_s[32], avail_s[32];

	/* a typo must not quietly turn off the limit the user meant to set */
	if (env != NULL && *env != '\0' && parse_bytes(env, &lim) < 0)
		return qvl_fail(err, "QVL_MEM_LIMIT: '%s' is not a number of bytes (K, M, G or T "
		    "suffix)", env);
	if (env != NULL && *env != '\0' && lim == 0)
		return 0;
	avail = qvl_mem_available();
	if (avail == UINT64_MAX || bytes <= avail)
		return 0;
	return qvl_fail(err, "%s needs %s but only %s of memory is available "
	    "(MemAvailable, cgroup memory.max, QVL_MEM_LIMIT; QVL_MEM_LIMIT=0 skips this check)",
	    what, human(bytes, need_s, sizeof need_s), human(avail, avail_s, sizeof avail_s));
}
