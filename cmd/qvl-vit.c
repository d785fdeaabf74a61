/* qvl-vit: pixel_values records in, vit_hidden records (the vision tower's output) out. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/config.h"
#include "../lib/pool.h"
#include "../lib/safetensors.h"
#include "../lib/stream.h"
#include "../lib/vit.h"
#include "util.h"

static void
usage(FILE *f, int status)
{
	fprintf(f, "usage: %s [-m MODEL] [-t N] [--precision f32|bf16] [--tap NAME]...\n"
	    "       [FILE]\n"
	    "  reads pixel_values (or pixel_values_videos) records from FILE or stdin and writes\n"
	    "  vit_hidden records [patches, vision hidden] on stdout; other records pass through\n"
	    "  -m MODEL      checkpoint directory (default $QVL_MODEL)\n"
	    "  -t N          worker threads, also --threads N (default: all CPUs)\n"
	    "  --precision P f32 (default: the reference's numerics) or bf16 (BF16 products,\n"
	    "                faster where the CPU has AVX512_BF16 or AMX)\n"
	    "  --tap NAME    also write patch_embed or block.K (the output of block K) before\n"
	    "                vit_hidden; repeatable\n", progname);
	exit(status);
}

struct tap_ctx {
	const json_t *meta;
};

static int
write_tap(void *ctx, int block, const float *x, int64_t n, int64_t dim, qvl_err *err)
{
	const struct tap_ctx *tc = ctx;
	char name[32];
	qvl_tensor t = { .dtype = QVL_F32, .ndim = 2, .shape = { n, dim }, .data = (void *)x,
	    .nbytes = (size_t)n * (size_t)dim * sizeof *x };

	if (block < 0)
		snprintf(name, sizeof name, "patch_embed");
	else
		snprintf(name, sizeof name, "block.%d", block);
	if (qvl_write_tensor(stdout, name, &t, tc->meta, err) < 0)
		out_fail(stdout, err);
	return 0;
}

/* Parses "patch_embed" or "block.K" into the tap mask (index 0, or K + 1). */
static void
parse_tap(const char *s, unsigned char *mask, int depth)
{
	long k;
	char *end;

	if (strcmp(s, "patch_embed") == 0) {
		mask[0] = 1;
		return;
	}
	if (strncmp(s, "block.", 6) == 0 && s[6] >= '0' && s[6] <= '9') {
		errno = 0;
		k = strtol(s + 6, &end, 10);
		if (*end == '\0' && errno == 0 && k >= 0 && k < depth) {
			mask[k + 1] = 1;
			return;
		}
		die(EXIT_USAGE, "--tap %s: this model's blocks are block.0 to block.%d", s,
		    depth - 1);
	}
	die(EXIT_USAGE, "--tap %s: unknown tap (patch_embed or block.K)", s);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "model", required_argument, NULL, 'm' },
		{ "threads", required_argument, NULL, 't' },
		{ "tap", required_argument, NULL, 'T' },
		{ "precision", required_argument, NULL, 'P' },
		{ NULL, 0, NULL, 0 },
	};
	const char *model_opt = NULL, *path, *dir;
	const char **taps = NULL;
	int ntaps = 0, threads = 0, ch, rc;
	qvl_precision precision = QVL_PRECISION_F32;
	unsigned char *mask;
	qvl_config cfg;
	qvl_weights *w;
	qvl_vit *vit;
	qvl_pool *pool;
	qvl_reader *reader;
	qvl_record rec;
	qvl_err err;
	FILE *in;

	cmd_init(argv[0]);
	if ((taps = calloc((size_t)argc, sizeof *taps)) == NULL)
		die(EXIT_BADINPUT, "out of memory");
	while ((ch = getopt_long(argc, argv, "hm:t:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'h':
			usage(stdout, 0);
			break;
		case 'm':
			model_opt = optarg;
			break;
		case 't':
			threads = (int)cmd_parse_long("--threads", optarg, 1, 1024);
			break;
		case 'T':
			taps[ntaps++] = optarg;
			break;
		case 'P':
			precision = cmd_parse_precision(optarg);
			break;
		default:
			usage(stderr, EXIT_USAGE);
		}
	}
	if (argc - optind > 1)
		usage(stderr, EXIT_USAGE);
	path = optind < argc ? argv[optind] : NULL;
	dir = cmd_model_dir(model_opt);

	if (qvl_config_load(dir, &cfg, &err) < 0)
		die_err(EXIT_BADINPUT, &err);
	if (!cfg.has_vision)
		die(EXIT_BADINPUT, "%s: config.json has no vision_config", dir);
	if ((mask = calloc((size_t)cfg.vision.depth + 1, 1)) == NULL)
		die(EXIT_BADINPUT, "out of memory");
	for (int i = 0; i < ntaps; i++)
		parse_tap(taps[i], mask, cfg.vision.depth);
	if ((w = qvl_weights_open(dir, &err)) == NULL)
		die_err(EXIT_BADINPUT, &err);
	if ((vit = qvl_vit_new(w, &cfg.vision, &err)) == NULL) {
		qvl_err_prefix(&err, "%s", dir);
		die_err(EXIT_BADINPUT, &err);
	}
	pool = cmd_pool_new(threads, precision);

	in = in_open(path);
	if ((reader = qvl_reader_new(in, in_name(path))) == NULL)
		die(EXIT_BADINPUT, "out of memory");
	while ((rc = qvl_reader_next(reader, &rec, &err)) == 1) {
		long index = qvl_reader_index(reader) - 1;
		struct tap_ctx tc = { rec.meta };
		qvl_record out;
		int64_t grid[3], shape[2];

		if (strcmp(rec.name, "pixel_values") != 0 &&
		    strcmp(rec.name, "pixel_values_videos") != 0) {
			cmd_write_record(&rec);
			qvl_record_free(&rec);
			continue;
		}
		if (rec.t.dtype != QVL_F32 || rec.t.ndim != 2)
			die(EXIT_BADINPUT, "%s: record %ld (%s): want a 2-D F32 tensor, got %d-D %s",
			    in_name(path), index, rec.name, rec.t.ndim, qvl_dtype_name(rec.t.dtype));
		if (qvl_meta_get_ints(rec.meta, "grid_thw", grid, 3, &err) < 0 ||
		    qvl_vit_check_input(&cfg.vision, grid, rec.t.shape[0], rec.t.shape[1], &err) < 0) {
			qvl_err_prefix(&err, "%s: record %ld (%s)", in_name(path), index, rec.name);
			die_err(EXIT_BADINPUT, &err);
		}
		shape[0] = rec.t.shape[0];
		shape[1] = cfg.vision.hidden_size;
		if (qvl_record_new(&out, "vit_hidden", QVL_F32, 2, shape, rec.meta, &err) < 0)
			die_err(EXIT_BADINPUT, &err);
		if (qvl_vit_forward(vit, pool, rec.t.data, grid, out.t.data, mask, write_tap, &tc,
		    &err) < 0) {
			qvl_err_prefix(&err, "%s: record %ld (%s)", in_name(path), index, rec.name);
			die_err(EXIT_BADINPUT, &err);
		}
		cmd_write_record(&out);
		cmd_flush_stdout();
		qvl_record_free(&out);
		qvl_record_free(&rec);
	}
	if (rc < 0)
		die_err(EXIT_BADINPUT, &err);
	cmd_flush_stdout();
	qvl_reader_free(reader);
	if (in != stdin)
		fclose(in);
	qvl_vit_free(vit);
	qvl_weights_close(w);
	free(mask);
	free(taps);
	return 0;
}
