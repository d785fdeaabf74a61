/* qvl-merge: vit_hidden records in, image_embeds records (the patch merger's output, the rows
 * that replace the image pad tokens) out. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/config.h"
#include "../lib/merger.h"
#include "../lib/pool.h"
#include "../lib/safetensors.h"
#include "../lib/stream.h"
#include "util.h"

static void
usage(FILE *f, int status)
{
	fprintf(f, "usage: %s [-m MODEL] [-t N] [--precision f32|bf16] [FILE]\n"
	    "  reads vit_hidden records from FILE or stdin and writes image_embeds records\n"
	    "  [patches / 4, text hidden] on stdout; other records pass through\n"
	    "  -m MODEL      checkpoint directory (default $QVL_MODEL)\n"
	    "  -t N          worker threads, also --threads N (default: all CPUs)\n"
	    "  --precision P f32 (default: the reference's numerics) or bf16 (BF16 products,\n"
	    "                faster where the CPU has AVX512_BF16 or AMX)\n", progname);
	exit(status);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "model", required_argument, NULL, 'm' },
		{ "threads", required_argument, NULL, 't' },
		{ "precision", required_argument, NULL, 'P' },
		{ NULL, 0, NULL, 0 },
	};
	const char *model_opt = NULL, *path, *dir, *sname;
	int threads = 0, ch, rc;
	qvl_precision precision = QVL_PRECISION_F32;
	qvl_config cfg;
	qvl_weights *w;
	qvl_merger *merger;
	qvl_pool *pool;
	qvl_reader *reader;
	qvl_record rec;
	qvl_err err;
	FILE *in;

	cmd_init(argv[0]);
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
	sname = in_name(path);
	dir = cmd_model_dir(model_opt);

	if (qvl_config_load(dir, &cfg, &err) < 0)
		die_err(EXIT_BADINPUT, &err);
	if (!cfg.has_vision)
		die(EXIT_BADINPUT, "%s: config.json has no vision_config", dir);
	if ((w = qvl_weights_open(dir, &err)) == NULL)
		die_err(EXIT_BADINPUT, &err);
	if ((merger = qvl_merger_new(w, &cfg.vision, &err)) == NULL) {
		qvl_err_prefix(&err, "%s", dir);
		die_err(EXIT_BADINPUT, &err);
	}
	pool = cmd_pool_new(threads, precision);

	in = in_open(path);
	if ((reader = qvl_reader_new(in, sname)) == NULL)
		die(EXIT_BADINPUT, "out of memory");
	while ((rc = qvl_reader_next(reader, &rec, &err)) == 1) {
		long index = qvl_reader_index(reader) - 1;
		int unit = qvl_merger_unit(merger);
		qvl_record out;
		int64_t grid[3], shape[2];
		char shape_s[128];

		if (strcmp(rec.name, "vit_hidden") != 0) {
			cmd_write_record(&rec);
			qvl_record_free(&rec);
			continue;
		}
		if (rec.t.dtype != QVL_F32 || rec.t.ndim != 2 ||
		    rec.t.shape[1] != cfg.vision.hidden_size)
			die(EXIT_BADINPUT, "%s: record %ld (vit_hidden): want F32 [N, %d] for this "
			    "model, got %s %s", sname, index, cfg.vision.hidden_size,
			    qvl_dtype_name(rec.t.dtype), qvl_shape_str(rec.t.shape, rec.t.ndim, shape_s,
			    sizeof shape_s));
		if (rec.t.shape[0] % unit != 0)
			die(EXIT_BADINPUT, "%s: record %ld (vit_hidden): %lld rows is not a multiple "
			    "of %d patches per merge unit", sname, index, (long long)rec.t.shape[0],
			    unit);
		/* The grid is optional here, but when present it must describe these rows. */
		if (json_object_get(rec.meta, "grid_thw") != NULL) {
			if (qvl_meta_get_grid(rec.meta, grid, &err) < 0) {
				qvl_err_prefix(&err, "%s: record %ld (vit_hidden)", sname, index);
				die_err(EXIT_BADINPUT, &err);
			}
			if (grid[0] * grid[1] * grid[2] != rec.t.shape[0])
				die(EXIT_BADINPUT, "%s: record %ld (vit_hidden): grid_thw [%lld, %lld, "
				    "%lld] does not match %lld rows", sname, index,
				    (long long)grid[0], (long long)grid[1], (long long)grid[2],
				    (long long)rec.t.shape[0]);
		}
		shape[0] = rec.t.shape[0] / unit;
		shape[1] = cfg.vision.out_hidden_size;
		if (qvl_record_new(&out, "image_embeds", QVL_F32, 2, shape, rec.meta, &err) < 0 ||
		    qvl_merger_forward(merger, pool, rec.t.data, rec.t.shape[0], out.t.data, NULL,
		    &err) < 0) {
			qvl_err_prefix(&err, "%s: record %ld (vit_hidden)", sname, index);
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
	qvl_merger_free(merger);
	qvl_weights_close(w);
	return 0;
}
