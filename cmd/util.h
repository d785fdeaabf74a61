/* util.h: what every program shares: its name in messages, fatal errors with the project's
 * exit codes, the model directory (-m or QVL_MODEL), and output files that appear whole or
 * not at all. */
#ifndef QVL_CMD_UTIL_H
#define QVL_CMD_UTIL_H

#include <stdio.h>

#include "../lib/err.h"
#include "../lib/pool.h"

#define EXIT_BADINPUT 1
#define EXIT_USAGE 2

extern const char *progname;

/* Sets progname from argv[0]; installs the SIGINT/SIGTERM handler that removes temporary
 * output files. Call first in main. */
void cmd_init(const char *argv0);

/* "progname: message\n" on stderr, then exit(status). */
_Noreturn void die(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
_Noreturn void die_err(int status, const qvl_err *err);
void warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* -m MODEL, else $QVL_MODEL, else a usage error. */
const char *cmd_model_dir(const char *opt);

/* Parses a whole non-negative/positive number or dies with a usage error naming the option. */
long cmd_parse_long(const char *opt, const char *s, long min, long max);
double cmd_parse_double(const char *opt, const char *s, double min, double max);

/* --precision f32|bf16, or a usage error. */
qvl_precision cmd_parse_precision(const char *s);

/* The worker pool (--threads; 0 is every CPU), freed at exit however the program ends: no
 * qvl_pool_free. */
qvl_pool *cmd_pool_new(int threads, qvl_precision precision);

/* Output: "-" or NULL is stdout; a regular path is written as PATH.tmp.XXXXXX (mkstemp) and
 * renamed over PATH by out_commit, so an interrupted program never leaves a partial file; a
 * device, fifo or socket is written in place.  A few may be open at once (-o and --png). */
FILE *out_open(const char *path);
/* Flushes, fsyncs, checks for write errors, renames into place.  A closed pipe exits 0
 * quietly; any other error dies naming the path (the temporary file is removed). */
void out_commit(FILE *f);
/* Removes the temporary file (on an error path). */
void out_abort(FILE *f);
/* A library writer failed on f (errno as it left it): a closed pipe exits 0 quietly, else
 * "PATH: message" and exit 1, without the temporary file. */
_Noreturn void out_fail(FILE *f, const qvl_err *err);
/* The path f was opened with, or "stdout". */
const char *out_name(FILE *f);

/* For output the library writes itself as DIR/FILE.tmp.PID and renames: such files are
 * removed if the program is interrupted. */
void cmd_tmp_dir(const char *dir);

/* Input: "-" or NULL is stdin.  Dies with a message naming the path on failure. */
FILE *in_open(const char *path);
const char *in_name(const char *path); /* "<stdin>" or path */

/* Writes a record to stdout; a closed pipe exits 0 quietly, any other error dies. */
struct qvl_record;
void cmd_write_record(const struct qvl_record *rec);

/* Flushes stdout; a closed pipe (EPIPE) exits 0 quietly, any other error dies. */
void cmd_flush_stdout(void);

#endif
