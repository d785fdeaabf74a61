/* qvl-quantize: writes an 8-bit or 4-bit copy of a model directory that every program loads
 * like the original (the format is in qvl-quantize(1) and lib/quant.h). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/pool.h"
#include "../lib/quant.h"
#include "util.h"

static _Noreturn void
usage(FILE *f, int status)
{
	fprintf(f, "usage: qvl-quantize [-hq] [-m MODEL] [-t|--threads N] [--as-f32] --type q8|q4\n"
	    "                    -o|--output DIR\n");
	exit(status);
}

static void
progress(void *ctx, long done, long total)
{
	(void)ctx;
	fprintf(stderr, "\r%s: %ld/%ld tensors", progname, done, total);
	if (done == total)
		fputc('\n', stderr);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"model", required_argument, NULL, 'm'},
		{"type", required_argument, NULL, 'T'},
		{"output", required_argument, NULL, 'o'},
		{"threads", required_argument, NULL, 't'},
		{"quiet", no_argument, NULL, 'q'},
		{"as-f32", no_argument, NULL, 'F'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *model = NULL, *type = NULL, *outdir = NULL;
	long threads = 0;
	int quiet = 0, as_f32 = 0, c;
	qvl_quant_type qt;
	qvl_pool *pool;
	qvl_err err;

	cmd_init(argv[0]);
	while ((c = getopt_long(argc, argv, "m:o:t:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'm':
			model = optarg;
			break;
		case 'T':
			type = optarg;
			break;
		case 'o':
			outdir = optarg;
			break;
		case 't':
			threads = cmd_parse_long("--threads", optarg, 1, 1024);
			break;
		case 'q':
			quiet = 1;
			break;
		case 'F':
			as_f32 = 1;
			break;
		case 'h':
			usage(stdout, 0);
		default:
			usage(stderr, EXIT_USAGE);
		}
	}
	if (optind != argc || outdir == NULL || type == NULL)
		usage(stderr, EXIT_USAGE);
	if (strcmp(outdir, "-") == 0)
		die(EXIT_USAGE, "-o -: a directory, not standard output");
	if (strcmp(type, "q8") == 0)
		qt = QVL_QUANT_Q8;
	else if (strcmp(type, "q4") == 0)
		qt = QVL_QUANT_Q4;
	else
		die(EXIT_USAGE, "--type: %s: want q8 or q4", type);
	if (as_f32)
		qt = qt == QVL_QUANT_Q8 ? QVL_QUANT_Q8_AS_F32 : QVL_QUANT_Q4_AS_F32;
	model = cmd_model_dir(model);
	pool = cmd_pool_new((int)threads, QVL_PRECISION_F32);
	cmd_tmp_dir(outdir); /* an interrupt removes the half-written files */
	if (qvl_quantize_model(model, outdir, qt, pool,
	    !quiet && isatty(STDERR_FILENO) ? progress : NULL, NULL, &err) < 0)
		die_err(EXIT_BADINPUT, &err);
	return 0;
}
