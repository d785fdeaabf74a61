/* test.h: the unit tests' few macros.  Each test program prints one line per check that
 * fails, "ok NAME" lines with -v, and ends with "N passed, N failed"; tests/run adds them. */
#ifndef QVL_TEST_H
#define QVL_TEST_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int test_passed, test_failed, test_verbose;

#define CHECK(cond, ...)                                                                   \
	do {                                                                               \
		if (cond) {                                                                \
			test_passed++;                                                     \
			if (test_verbose) {                                                \
				printf("ok   ");                                           \
				printf(__VA_ARGS__);                                       \
				printf("\n");                                              \
			}                                                                  \
		} else {                                                                   \
			test_failed++;                                                     \
			printf("FAIL %s:%d: ", __FILE__, __LINE__);                        \
			printf(__VA_ARGS__);                                               \
			printf("\n");                                                      \
		}                                                                          \
	} while (0)

#define TEST_INIT(argc, argv) (test_verbose = (argc) > 1 && strcmp((argv)[1], "-v") == 0)

#define TEST_DONE()                                                                        \
	(printf("%d passed, %d failed\n", test_passed, test_failed), test_failed ? 1 : 0)

/* Directory of the test data, relative to the repository root where tests run. */
#define TEST_DATA "tests/data"

#endif
