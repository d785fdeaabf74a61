#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/stream.h"

const char *progname = "qvl";

/* The output files of this process being written: qvl-resize holds -o and a --png at once.
 * Each temporary file is removed if we die or are interrupted. */
#define OUT_MAX 4
static struct out_file {
	FILE *f;
	char tmp[PATH_MAX + 32];	/* "" once renamed, or when written in place */
	char final[PATH_MAX];
	/* A device, fifo or socket (-o /dev/stdout, a named pipe) is written in place, since
	 * renaming a temporary file over it would replace the device node. */
	int direct;
} outs[OUT_MAX];

static mode_t
umask_get(void)
{
	mode_t mask = umask(0);

	umask(mask);
	return mask;
}

static void
remove_tmp(void)
{
	for (int i = 0; i < OUT_MAX; i++) {
		if (outs[i].tmp[0] != '\0')
			unlink(outs[i].tmp);
		outs[i].tmp[0] = '\0';
	}
}

/* A directory whose FILE.tmp.PID files the library writes itself (qvl-quantize's output). */
static char tmp_dir[PATH_MAX];
static char tmp_suffix[32];

/* Removes tmp_dir's files ending in tmp_suffix, with system calls only: it runs in a signal
 * handler, where opendir and malloc are not allowed. */
static void
remove_dir_temps(void)
{
	char buf[4096];
	size_t slen = strlen(tmp_suffix);
	ssize_t n;
	int fd;

	if (tmp_dir[0] == '\0' || (fd = open(tmp_dir, O_RDONLY | O_DIRECTORY)) < 0)
		return;
	while ((n = getdents64(fd, buf, sizeof buf)) > 0) {
		for (ssize_t off = 0; off < n;) {
			struct dirent64 *d = (struct dirent64 *)(buf + off);
			size_t len = strlen(d->d_name);
			if (len > slen && memcmp(d->d_name + len - slen, tmp_suffix, slen) == 0)
				unlinkat(fd, d->d_name, 0);
			off += d->d_reclen;
		}
	}
	close(fd);
}

void
cmd_tmp_dir(const char *dir)
{
	snprintf(tmp_dir, sizeof tmp_dir, "%s", dir);
	snprintf(tmp_suffix, sizeof tmp_suffix, ".tmp.%ld", (long)getpid());
}

static void
on_signal(int sig)
{
	/* unlink and signal re-raising are async-signal-safe */
	for (int i = 0; i < OUT_MAX; i++)
		if (outs[i].tmp[0] != '\0')
			unlink(outs[i].tmp);
	remove_dir_temps();
	signal(sig, SIG_DFL);
	raise(sig);
}

void
cmd_init(const char *argv0)
{
	const char *slash = argv0 ? strrchr(argv0, '/') : NULL;

	progname = slash ? slash + 1 : (argv0 ? argv0 : "qvl");
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	/* A closed downstream pipe ends every program the same way: the write fails with
	 * EPIPE and cmd_flush_stdout (or the caller) exits 0 quietly, rather than some
	 * programs dying of SIGPIPE (141) and others not, depending on where they were. */
	signal(SIGPIPE, SIG_IGN);
	/* Over RLIMIT_FSIZE a write fails with EFBIG like a full disk, so the temporary file
	 * is removed and the message says why, instead of a silent death by SIGXFSZ. */
	signal(SIGXFSZ, SIG_IGN);
	/* any exit before out_commit (die, exit(0) on a closed stdout, a return from main)
	 * leaves no partial file behind */
	atexit(remove_tmp);
}

static void
vmessage(const char *fmt, va_list ap)
{
	fflush(stdout);
	fprintf(stderr, "%s: ", progname);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void
die(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmessage(fmt, ap);
	va_end(ap);
	remove_tmp();
	exit(status);
}

void
die_err(int status, const qvl_err *err)
{
	die(status, "%s", err->msg);
}

void
warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmessage(fmt, ap);
	va_end(ap);
}

const char *
cmd_model_dir(const char *opt)
{
	const char *dir = opt;

	if (dir == NULL || *dir == '\0')
		dir = getenv("QVL_MODEL");
	if (dir == NULL || *dir == '\0')
		die(EXIT_USAGE, "no model: give -m DIR or set QVL_MODEL");
	return dir;
}

long
cmd_parse_long(const char *opt, const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end != '\0' || v < min || v > max)
		die(EXIT_USAGE, "%s: '%s' is not a whole number from %ld to %ld", opt, s, min, max);
	return v;
}

double
cmd_parse_double(const char *opt, const char *s, double min, double max)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end != '\0' || !isfinite(v) || v < min || v > max)
		die(EXIT_USAGE, "%s: '%s' is not a number from %g to %g", opt, s, min, max);
	return v;
}

qvl_precision
cmd_parse_precision(const char *s)
{
	if (strcmp(s, "f32") == 0)
		return QVL_PRECISION_F32;
	if (strcmp(s, "bf16") == 0)
		return QVL_PRECISION_BF16;
	die(EXIT_USAGE, "--precision: want f32 or bf16, not '%s'", s);
}

/* The program's worker pool, joined at exit: a die() while its threads live would leave
 * their stacks and TLS, which valgrind reports as possibly lost. */
static qvl_pool *pool_at_exit;

static void
free_pool(void)
{
	qvl_pool_free(pool_at_exit);
	pool_at_exit = NULL;
}

qvl_pool *
cmd_pool_new(int threads, qvl_precision precision)
{
	qvl_err err;

	if ((pool_at_exit = qvl_pool_new(threads, &err)) == NULL)
		die_err(EXIT_BADINPUT, &err);
	qvl_pool_set_precision(pool_at_exit, precision);
	atexit(free_pool);
	return pool_at_exit;
}

static struct out_file *
out_find(FILE *f)
{
	for (int i = 0; i < OUT_MAX; i++)
		if (outs[i].f == f)
			return &outs[i];
	return NULL;
}

FILE *
out_open(const char *path)
{
	struct out_file *o = out_find(NULL);
	struct stat st;
	FILE *f;
	int fd;

	if (path == NULL || strcmp(path, "-") == 0)
		return stdout;
	if (o == NULL)
		die(EXIT_USAGE, "%s: too many output files at a time", path);
	if (strlen(path) >= PATH_MAX)
		die(EXIT_USAGE, "%s: path too long", path);
	snprintf(o->final, sizeof o->final, "%s", path);
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		if (S_ISDIR(st.st_mode))
			die(EXIT_USAGE, "%s: is a directory", path);
		if ((f = fopen(path, "wb")) == NULL)
			die(EXIT_BADINPUT, "%s: cannot open: %s", path, strerror(errno));
		o->direct = 1;
		o->f = f;
		return f;
	}
	/* NAME.tmp.XXXXXX beside it, or a hidden .qvl.XXXXXX there when NAME is within 11
	 * bytes of the 255 a file name may hold */
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	if (strlen(base) + 11 <= NAME_MAX)
		snprintf(o->tmp, sizeof o->tmp, "%s.tmp.XXXXXX", path);
	else
		snprintf(o->tmp, sizeof o->tmp, "%.*s.qvl.XXXXXX", (int)(base - path), path);
	fd = mkstemp(o->tmp);
	if (fd < 0) {
		o->tmp[0] = '\0';
		die(EXIT_BADINPUT, "%s: cannot create: %s", path, strerror(errno));
	}
	fchmod(fd, 0666 & ~umask_get());
	if ((f = fdopen(fd, "wb")) == NULL) {
		close(fd);
		die(EXIT_BADINPUT, "%s: %s", path, strerror(errno));
	}
	o->direct = 0;
	o->f = f;
	return f;
}

const char *
out_name(FILE *f)
{
	struct out_file *o = f == stdout || f == NULL ? NULL : out_find(f);

	return o ? o->final : "stdout";
}

void
out_commit(FILE *f)
{
	struct out_file *o;
	int bad, e;

	if (f == stdout) {
		cmd_flush_stdout();
		return;
	}
	if ((o = out_find(f)) == NULL)
		die(EXIT_BADINPUT, "out_commit: not an output file");
	o->f = NULL;
	if (o->direct) {
		bad = fflush(f) != 0 || ferror(f);
		e = errno;
		o->direct = 0;
		if (fclose(f) != 0 && !bad) {
			bad = 1;
			e = errno;
		}
		if (bad && e == EPIPE)
			exit(0);
		if (bad)
			die(EXIT_BADINPUT, "%s: write error: %s", o->final, strerror(e));
		return;
	}
	if (fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0) {
		e = errno;
		fclose(f);
		die(EXIT_BADINPUT, "%s: write error: %s", o->final, strerror(e));
	}
	if (fclose(f) != 0)
		die(EXIT_BADINPUT, "%s: write error: %s", o->final, strerror(errno));
	if (rename(o->tmp, o->final) != 0)
		die(EXIT_BADINPUT, "%s: cannot rename into place: %s", o->final, strerror(errno));
	o->tmp[0] = '\0';
}

void
out_abort(FILE *f)
{
	struct out_file *o;

	if (f == NULL || f == stdout || (o = out_find(f)) == NULL)
		return;
	fclose(f);
	o->f = NULL;
	o->direct = 0;
	if (o->tmp[0] != '\0')
		unlink(o->tmp);
	o->tmp[0] = '\0';
}

void
out_fail(FILE *f, const qvl_err *err)
{
	int e = errno;
	const char *name = out_name(f);

	out_abort(f);
	if (e == EPIPE)
		exit(0);
	die(EXIT_BADINPUT, "%s: %s", name, err->msg);
}

FILE *
in_open(const char *path)
{
	FILE *f;

	if (path == NULL || strcmp(path, "-") == 0)
		return stdin;
	if ((f = fopen(path, "rb")) == NULL)
		die(EXIT_BADINPUT, "%s: %s", path, strerror(errno));
	return f;
}

const char *
in_name(const char *path)
{
	return path == NULL || strcmp(path, "-") == 0 ? "<stdin>" : path;
}

void
cmd_write_record(const qvl_record *rec)
{
	qvl_err err;

	if (qvl_write_record(stdout, rec, &err) < 0)
		out_fail(stdout, &err);
}

void
cmd_flush_stdout(void)
{
	/* errno is read once, before die() or anything else can change it */
	if (fflush(stdout) != 0 || ferror(stdout)) {
		int e = errno;
		if (e == EPIPE)
			exit(0);
		die(EXIT_BADINPUT, "stdout: write error: %s", e ? strerror(e) : "unknown error");
	}
}
