/* err.h: the library's one error type.
 *
 * Every lib function that can fail takes a `qvl_err *` as its last argument, fills it with a
 * complete human-readable message ("what: why") and returns -1 (or NULL).  The library never
 * prints and never exits; cmd/ prints the message prefixed with the program name. */
#ifndef QVL_ERR_H
#define QVL_ERR_H

#include <stddef.h>

typedef struct qvl_err {
	char msg[1024];
} qvl_err;

/* Sets the message (printf-style) and returns -1, so `return qvl_fail(err, ...);` reads well.
 * err may be NULL. */
int qvl_fail(qvl_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Like qvl_fail, with ": strerror(errno)" appended (errno as it was on entry). */
int qvl_fail_errno(qvl_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prepends context to an existing message: "context: old message".  Returns -1. */
int qvl_err_prefix(qvl_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
