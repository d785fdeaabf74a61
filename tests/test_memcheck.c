/* memcheck: the memory a program may still allocate, and the message that names the numbers
 * when a known need does not fit. */
#include <stdint.h>
#include <stdlib.h>

#include "../lib/memcheck.h"
#include "test.h"

int
main(int argc, char **argv)
{
	qvl_err err;
	uint64_t avail;

	TEST_INIT(argc, argv);
	unsetenv("QVL_MEM_LIMIT");
	avail = qvl_mem_available();
	CHECK(avail > (1u << 20), "some memory is available (%llu bytes)", (unsigned long long)avail);
	CHECK(qvl_mem_check(1 << 20, "a megabyte", &err) == 0, "a megabyte fits");
	CHECK(qvl_mem_check(UINT64_MAX / 2, "the KV cache", &err) < 0, "an exabyte does not");
	CHECK(strstr(err.msg, "the KV cache needs ") == err.msg && strstr(err.msg, " GB") != NULL,
	    "the message names what and how much: %s", err.msg);

	setenv("QVL_MEM_LIMIT", "64M", 1);
	CHECK(qvl_mem_available() == (uint64_t)64 << 20, "QVL_MEM_LIMIT=64M lowers the figure");
	CHECK(qvl_mem_check((uint64_t)65 << 20, "65 MiB", &err) < 0, "65 MiB is over 64M");
	CHECK(strstr(err.msg, "68.2 MB but only 67.1 MB") != NULL, "the limit is in the message: %s", err.msg);
	CHECK(qvl_mem_check((uint64_t)63 << 20, "63 MiB", &err) == 0, "63 MiB fits");
	setenv("QVL_MEM_LIMIT", "1g", 1);
	CHECK(qvl_mem_available() == (uint64_t)1 << 30 || avail < (uint64_t)1 << 30,
	    "suffixes are case-blind");
	setenv("QVL_MEM_LIMIT", "0", 1);
	CHECK(qvl_mem_check(UINT64_MAX / 2, "anything", &err) == 0, "QVL_MEM_LIMIT=0 turns it off");
	setenv("QVL_MEM_LIMIT", "lots", 1);
	CHECK(qvl_mem_available() > (uint64_t)64 << 20, "a bad value is no figure");
	CHECK(qvl_mem_check(1, "a byte", &err) < 0 && strstr(err.msg, "QVL_MEM_LIMIT: 'lots'"),
	    "and a check with it fails, naming it");
	setenv("QVL_MEM_LIMIT", "-5", 1);
	CHECK(qvl_mem_check(1, "a byte", &err) < 0, "a negative value is refused");
	setenv("QVL_MEM_LIMIT", "1e3", 1);
	CHECK(qvl_mem_check(1, "a byte", &err) < 0, "1e3 is refused");
	setenv("QVL_MEM_LIMIT", "1GiB", 1);
	CHECK(qvl_mem_check(1, "a byte", &err) == 0 && (qvl_mem_available() == (uint64_t)1 << 30 ||
	    avail < (uint64_t)1 << 30), "1GiB is a gibibyte");
	setenv("QVL_MEM_LIMIT", "99999999999T", 1);
	CHECK(qvl_mem_available() > (uint64_t)64 << 20, "an overflowing value is ignored");
	unsetenv("QVL_MEM_LIMIT");
	return TEST_DONE();
}
