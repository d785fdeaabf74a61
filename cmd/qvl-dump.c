/* qvl-dump: list, summarize, export and compare the tensors of streams and safetensors. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../lib/tfile.h"
#include "util.h"

static _Noreturn void
usage(FILE *f, int status)
{
	fprintf(f,
	    "usage: qvl-dump [-s] [-n N] [--npy DIR] [--select NAME]... [FILE...]\n"
	    "       qvl-dump --compare REF [--atol X] [--rtol X] [--map NAME=REFNAME]...\n"
	    "                [--concat] [-q] [--select NAME]... [FILE...]\n");
	exit(status);
}

/* A tensor kept in memory: the reference's, or the concatenation of same-named records. */
struct held {
	char *name;
	qvl_tensor t; /* owns t.data */
	int seen;     /* compared (reference) / selected name found (select list) */
};

struct list {
	struct held *items;
	size_t n;
};

static struct held *
list_find(struct list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->items[i].name, name) == 0)
			return &l->items[i];
	return NULL;
}

static struct held *
list_add(struct list *l, const char *name, const qvl_tensor *t)
{
	struct held *h;

	l->items = realloc(l->items, (l->n + 1) * sizeof *l->items);
	if (l->items == NULL)
		die(EXIT_BADINPUT, "out of memory");
	h = &l->items[l->n++];
	memset(h, 0, sizeof *h);
	h->name = strdup(name);
	h->t = *t;
	h->t.data = qvl_alloc(t->nbytes);
	if (h->name == NULL || h->t.data == NULL)
		die(EXIT_BADINPUT, "%s: out of memory", name);
	if (t->nbytes > 0) /* an empty tensor's data may be NULL, which memcpy may not take */
		memcpy(h->t.data, t->data, t->nbytes);
	return h;
}

/* Appends t's rows to h (same trailing shape and dtype). */
static void
held_append(struct held *h, const qvl_tensor *t)
{
	char a[128], b[128];

	if (h->t.dtype != t->dtype || h->t.ndim != t->ndim || t->ndim == 0 ||
	    memcmp(h->t.shape + 1, t->shape + 1, (size_t)(t->ndim - 1) * sizeof *t->shape) != 0)
		die(EXIT_BADINPUT, "--concat: %s: %s %s cannot follow %s %s", h->name,
		    qvl_dtype_name(t->dtype), qvl_shape_str(t->shape, t->ndim, a, sizeof a),
		    qvl_dtype_name(h->t.dtype), qvl_shape_str(h->t.shape, h->t.ndim, b, sizeof b));
	void *p = realloc(h->t.data, h->t.nbytes + t->nbytes);
	if (p == NULL)
		die(EXIT_BADINPUT, "%s: out of memory", h->name);
	memcpy((char *)p + h->t.nbytes, t->data, t->nbytes);
	h->t.data = p;
	h->t.nbytes += t->nbytes;
	h->t.shape[0] += t->shape[0];
}

static void
list_free(struct list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->items[i].name);
		free(l->items[i].t.data);
	}
	free(l->items);
}

static struct {
	int stats, quiet, concat;
	long values;
	const char *npy_dir, *compare;
	double atol, rtol;
	char **select, **map;
	int nselect, nmap;
	int failures, compared;
} opt = {.rtol = 1e-4};

static int
selected(const char *name)
{
	if (opt.nselect == 0)
		return 1;
	for (int i = 0; i < opt.nselect; i++)
		if (strcmp(opt.select[i], name) == 0)
			return 1;
	return 0;
}

static const char *
ref_name(const char *name)
{
	size_t len = strlen(name);

	for (int i = 0; i < opt.nmap; i++)
		if (strncmp(opt.map[i], name, len) == 0 && opt.map[i][len] == '=')
			return opt.map[i] + len + 1;
	return name;
}

static void
print_item(long index, const char *name, const qvl_tensor *t, const json_t *meta)
{
	char shape[256];

	printf("%ld\t%s\t%s\t%s", index, name, qvl_dtype_name(t->dtype),
	    qvl_shape_str(t->shape, t->ndim, shape, sizeof shape));
	if (meta != NULL && json_object_size(meta) > 0) {
		char *s = json_dumps(meta, JSON_COMPACT | JSON_PRESERVE_ORDER);
		printf("\t%s", s ? s : "");
		free(s);
	}
	putchar('\n');
	if (opt.stats) {
		qvl_stats st;
		qvl_tensor_stats(t, &st);
		printf("\tmin %.6g  max %.6g  mean %.6g  std %.6g  nan %zu  inf %zu\n", st.min,
		    st.max, st.mean, st.std, st.nan, st.inf);
	}
	if (opt.values > 0) {
		size_t n = qvl_tensor_numel(t);
		printf("\t");
		for (size_t i = 0; i < n && i < (size_t)opt.values; i++)
			printf("%s%.9g", i ? " " : "", qvl_tensor_get(t, i));
		printf("%s\n", n > (size_t)opt.values ? " ..." : "");
	}
}

static void
write_npy(const char *name, const qvl_tensor *t)
{
	static struct list written; /* names used so far, for NAME.1.npy on repeats */
	char path[PATH_MAX], safe[241], stem[300];
	qvl_tensor empty = {0};
	qvl_err err;
	size_t i;
	struct held *h;

	/* A file name holds 255 bytes: a longer record name is cut (at a UTF-8 character's
	 * start) to leave room for a repeat's ".N" and ".npy"; two names that agree that far
	 * are then repeats of one stem. */
	for (i = 0; name[i] && i < sizeof safe - 1; i++)
		safe[i] = name[i] == '/' ? '_' : name[i];
	for (int back = 0; back < 3 && i > 0 && ((unsigned char)name[i] & 0xc0) == 0x80;
	    back++)
		i--;
	safe[i] = '\0';
	/* A repeat is NAME.1, NAME.2, ...: the first such stem no record has taken, since a
	 * record may be called x.1 itself (or a_b, which a/b also becomes). */
	snprintf(stem, sizeof stem, "%s", safe);
	if ((h = list_find(&written, safe)) != NULL)
		do
			snprintf(stem, sizeof stem, "%s.%d", safe, ++h->seen);
		while (list_find(&written, stem) != NULL);
	list_add(&written, stem, &empty);
	snprintf(path, sizeof path, "%s/%s.npy", opt.npy_dir, stem);
	FILE *f = out_open(path);
	if (qvl_write_npy(f, t, &err) < 0) {
		out_abort(f);
		die(EXIT_BADINPUT, "%s: %s", path, err.msg);
	}
	out_commit(f);
}

/* Equal shapes once leading dimensions of 1 are dropped: the [1, vocab] logits of one
 * step match a reference's [vocab]. */
static int
same_shape(const qvl_tensor *a, const qvl_tensor *b)
{
	int i = 0, j = 0;

	while (i < a->ndim - 1 && a->shape[i] == 1)
		i++;
	while (j < b->ndim - 1 && b->shape[j] == 1)
		j++;
	return a->ndim - i == b->ndim - j &&
	    memcmp(a->shape + i, b->shape + j, (size_t)(a->ndim - i) * sizeof *a->shape) == 0;
}

static void
compare(const char *name, const qvl_tensor *t, struct list *ref)
{
	const char *rname = ref_name(name);
	struct held *r = list_find(ref, rname);
	char a[128], b[128];
	qvl_diff d;

	if (r == NULL) {
		/* a selected name is a failure, reported once at the end */
		if (opt.nselect == 0 && !opt.quiet)
			printf("%s\tnot in the reference\tskipped\n", name);
		return;
	}
	r->seen = 1;
	opt.compared++;
	if (!same_shape(t, &r->t)) {
		printf("%s\tshape %s, reference %s %s\tFAIL\n", name,
		    qvl_shape_str(t->shape, t->ndim, a, sizeof a), rname,
		    qvl_shape_str(r->t.shape, r->t.ndim, b, sizeof b));
		opt.failures++;
		return;
	}
	qvl_tensor_diff(t, &r->t, &d);
	/* ids and other integers: a relative tolerance of the largest id would let
	 * different tokens pass; only --atol applies */
	int floats = qvl_dtype_is_float(t->dtype) && qvl_dtype_is_float(r->t.dtype);
	int ok = d.max_abs <= opt.atol + (floats ? opt.rtol * d.ref_absmax : 0);
	if (!ok)
		opt.failures++;
	if (!ok || !opt.quiet)
		printf("%s\tmax_abs %.3g\tmax_rel %.3g\tref_max %.4g\tat %zu\t%s\n", name, d.max_abs,
		    d.ref_absmax > 0 ? d.max_abs / d.ref_absmax : (d.max_abs > 0 ? INFINITY : 0),
		    d.ref_absmax, d.where, ok ? "ok" : "FAIL");
}

static void
load_reference(const char *path, struct list *ref)
{
	qvl_err err;
	qvl_tfile *tf = qvl_tfile_open(path, &err);
	const char *name;
	const qvl_tensor *t;
	const json_t *meta;
	int rc;

	if (tf == NULL)
		die_err(EXIT_BADINPUT, &err);
	while ((rc = qvl_tfile_next(tf, &name, &t, &meta, &err)) == 1) {
		struct held *h = list_find(ref, name);
		if (h != NULL)
			held_append(h, t); /* a stream's repeated records are one reference */
		else
			list_add(ref, name, t);
	}
	if (rc < 0)
		die_err(EXIT_BADINPUT, &err);
	qvl_tfile_close(tf);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"stats", no_argument, NULL, 's'},
		{"values", required_argument, NULL, 'n'},
		{"npy", required_argument, NULL, 'N'},
		{"compare", required_argument, NULL, 'c'},
		{"atol", required_argument, NULL, 'A'},
		{"rtol", required_argument, NULL, 'R'},
		{"select", required_argument, NULL, 'S'},
		{"map", required_argument, NULL, 'M'},
		{"concat", no_argument, NULL, 'C'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct list ref = {0}, pending = {0};
	qvl_err err;
	int c;

	cmd_init(argv[0]);
	opt.select = calloc((size_t)argc, sizeof *opt.select);
	opt.map = calloc((size_t)argc, sizeof *opt.map);
	if (opt.select == NULL || opt.map == NULL)
		die(EXIT_BADINPUT, "out of memory");
	while ((c = getopt_long(argc, argv, "sn:c:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 's': opt.stats = 1; break;
		case 'n': opt.values = cmd_parse_long("--values", optarg, 0, LONG_MAX); break;
		case 'N': opt.npy_dir = optarg; break;
		case 'c': opt.compare = optarg; break;
		case 'A': opt.atol = cmd_parse_double("--atol", optarg, 0, INFINITY); break;
		case 'R': opt.rtol = cmd_parse_double("--rtol", optarg, 0, INFINITY); break;
		case 'S': opt.select[opt.nselect++] = optarg; break;
		case 'M':
			if (strchr(optarg, '=') == NULL)
				die(EXIT_USAGE, "--map: '%s' is not NAME=REFNAME", optarg);
			opt.map[opt.nmap++] = optarg;
			break;
		case 'C': opt.concat = 1; break;
		case 'q': opt.quiet = 1; break;
		case 'h': usage(stdout, 0);
		default: usage(stderr, EXIT_USAGE);
		}
	}
	if (opt.npy_dir && strcmp(opt.npy_dir, "-") == 0)
		die(EXIT_USAGE, "--npy -: a directory, not standard output");
	if (opt.npy_dir && mkdir(opt.npy_dir, 0777) < 0 && errno != EEXIST)
		die(EXIT_BADINPUT, "%s: %s", opt.npy_dir, strerror(errno));
	if (opt.compare)
		load_reference(opt.compare, &ref);

	int nfiles = argc - optind;
	for (int i = 0; i < (nfiles ? nfiles : 1); i++) {
		const char *path = nfiles ? argv[optind + i] : "-";
		qvl_tfile *tf = qvl_tfile_open(path, &err);
		const char *name;
		const qvl_tensor *t;
		const json_t *meta;
		long index = 0;
		int rc;

		if (tf == NULL)
			die_err(EXIT_BADINPUT, &err);
		if (nfiles > 1 && !opt.compare)
			printf("%s%s:\n", i ? "\n" : "", path);
		while ((rc = qvl_tfile_next(tf, &name, &t, &meta, &err)) == 1) {
			long this = index++;
			if (!selected(name))
				continue;
			for (int k = 0; k < opt.nselect; k++)
				if (strcmp(opt.select[k], name) == 0)
					opt.select[k][0] = opt.select[k][0]; /* found: checked below */
			if (opt.npy_dir)
				write_npy(name, t);
			if (opt.compare == NULL) {
				print_item(this, name, t, meta);
				continue;
			}
			if (opt.concat) {
				struct held *h = list_find(&pending, name);
				if (h)
					held_append(h, t);
				else
					list_add(&pending, name, t);
			} else {
				compare(name, t, &ref);
			}
		}
		if (rc < 0)
			die_err(EXIT_BADINPUT, &err);
		qvl_tfile_close(tf);
		cmd_flush_stdout();
	}
	for (size_t i = 0; i < pending.n; i++)
		compare(pending.items[i].name, &pending.items[i].t, &ref);
	if (opt.compare) {
		/* a name asked for with --select must have been compared */
		for (int k = 0; k < opt.nselect; k++) {
			struct held *r = list_find(&ref, ref_name(opt.select[k]));
			if (r == NULL || !r->seen) {
				printf("%s\tnot in the %s\tFAIL\n", opt.select[k],
				    r == NULL ? "reference" : "input");
				opt.failures++;
			}
		}
		/* names absent from REF are skipped, but none in common is a wrong REF or --map */
		if (opt.compared == 0 && opt.failures == 0) {
			printf("FAIL: nothing compared: no tensor name in common with %s\n",
			    opt.compare);
			opt.failures = 1;
		} else
			printf("%s: %d compared, %d failed\n", opt.failures ? "FAIL" : "ok",
			    opt.compared, opt.failures);
	}
	cmd_flush_stdout();
	list_free(&ref);
	list_free(&pending);
	free(opt.select);
	free(opt.map);
	return opt.failures ? EXIT_BADINPUT : 0;
}
