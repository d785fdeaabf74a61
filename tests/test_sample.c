/* test_sample.c: greedy choice, the repetition penalty as transformers defines it, top-k and
 * top-p, seeded draws, the repetition guard, and generation_config.json. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "../lib/generation.h"
#include "../lib/sample.h"
#include "test.h"

int
main(int argc, char **argv)
{
	qvl_sample_params p;
	qvl_sampler s;
	qvl_err err;

	TEST_INIT(argc, argv);

	float x[6] = {1, 3, 3, -2, 0, 2};
	CHECK(qvl_argmax(x, 6) == 1, "argmax takes the first maximum");

	/* penalty: positive logits divided, negative multiplied, each distinct id once */
	float r[6] = {1, 3, 3, -2, 0, 2};
	unsigned char seen[6] = {0};
	int32_t hist[5] = {1, 3, 1, 1, 4};
	qvl_repetition_penalty(r, 6, hist, 5, 2.0, seen);
	CHECK(r[1] == 1.5f && r[3] == -4.0f && r[4] == 0 && r[2] == 3 && r[0] == 1,
	    "repetition penalty: %g %g %g", r[1], r[3], r[4]);
	CHECK(seen[1] == 0 && seen[3] == 0, "penalty leaves its scratch clear");

	/* greedy through the sampler, with a penalty that changes the winner */
	qvl_sample_defaults(&p);
	p.repetition_penalty = 2.0;
	CHECK(qvl_sampler_init(&s, &p, 6, &err) == 0, "sampler init");
	float g[6] = {1, 3, 3, -2, 0, 2.5f};
	int32_t h1[1] = {1};
	CHECK(qvl_sample(&s, g, h1, 1) == 2, "greedy after penalty");
	qvl_sampler_free(&s);

	/* top_k 1 and a tiny top_p are greedy whatever the draw */
	int ok = 1;
	qvl_sample_defaults(&p);
	p.temperature = 1;
	p.top_k = 1;
	p.seed = 7;
	qvl_sampler_init(&s, &p, 6, &err);
	for (int i = 0; i < 50; i++) {
		float y[6] = {1, 3, 2.9f, -2, 0, 2};
		ok &= qvl_sample(&s, y, NULL, 0) == 1;
	}
	qvl_sampler_free(&s);
	CHECK(ok, "top_k 1 is greedy");
	p.top_k = 0;
	p.top_p = 0.01;
	qvl_sampler_init(&s, &p, 6, &err);
	ok = 1;
	for (int i = 0; i < 50; i++) {
		float y[6] = {1, 3, 2.9f, -2, 0, 2};
		ok &= qvl_sample(&s, y, NULL, 0) == 1;
	}
	qvl_sampler_free(&s);
	CHECK(ok, "top_p 0.01 is greedy");

	/* draws follow the distribution: p = 1/4, 3/4 */
	qvl_sample_defaults(&p);
	p.temperature = 1;
	p.seed = 1234;
	qvl_sampler_init(&s, &p, 2, &err);
	int count1 = 0, first[20];
	for (int i = 0; i < 4000; i++) {
		float y[2] = {0, logf(3)};
		int id = qvl_sample(&s, y, NULL, 0);
		count1 += id == 1;
		if (i < 20)
			first[i] = id;
	}
	qvl_sampler_free(&s);
	CHECK(count1 > 2880 && count1 < 3120, "sampling frequency %d/4000 near 3000", count1);
	qvl_sampler_init(&s, &p, 2, &err);
	ok = 1;
	for (int i = 0; i < 20; i++) {
		float y[2] = {0, logf(3)};
		ok &= qvl_sample(&s, y, NULL, 0) == first[i];
	}
	qvl_sampler_free(&s);
	CHECK(ok, "same seed, same draws");

	/* top_p keeps the smallest set reaching p: {0.5, 0.3, 0.2} with p = 0.6 keeps two */
	p.top_p = 0.6;
	qvl_sampler_init(&s, &p, 3, &err);
	int seen2 = 0;
	for (int i = 0; i < 500; i++) {
		float y[3] = {logf(0.5f), logf(0.3f), logf(0.2f)};
		int id = qvl_sample(&s, y, NULL, 0);
		seen2 |= 1 << id;
	}
	qvl_sampler_free(&s);
	CHECK(seen2 == 3, "top_p 0.6 over {.5,.3,.2} draws from the first two only (%d)", seen2);

	/* a temperature that overflows the largest logit is the argmax, not NaN */
	p.temperature = 1e-40;
	p.top_p = 1;
	p.top_k = 0;
	CHECK(qvl_sampler_init(&s, &p, 3, &err) == 0, "sampler at 1e-40");
	{
		float z[3] = {30, 31, -5};
		CHECK(qvl_sample(&s, z, NULL, 0) == 1, "temperature 1e-40 takes the argmax");
		float zn[3] = {-30, -31, -5};
		CHECK(qvl_sample(&s, zn, NULL, 0) == 2, "negative logits at 1e-40 too");
	}
	qvl_sampler_free(&s);

	p.temperature = -1;
	CHECK(qvl_sampler_init(&s, &p, 3, &err) < 0, "negative temperature rejected");

	/* repetition guard */
	int32_t ids[200];
	for (int i = 0; i < 200; i++)
		ids[i] = i;
	CHECK(qvl_repeat_check(ids, 200, 16) == 0, "no repetition");
	for (int i = 100; i < 200; i++)
		ids[i] = 1000 + (i % 3);
	CHECK(qvl_repeat_check(ids, 200, 16) == 3, "cycle of 3 repeated 33 times");
	CHECK(qvl_repeat_check(ids, 200, 0) == 0, "max_repeat 0 turns the guard off");
	CHECK(qvl_repeat_check(ids, 200, 40) == 0, "33 copies are under 40");
	for (int i = 0; i < 200; i++)
		ids[i] = i;
	for (int i = 180; i < 200; i++)
		ids[i] = 5;
	CHECK(qvl_repeat_check(ids, 200, 16) == 0, "20 equal ids are under the minimum span");
	for (int i = 160; i < 200; i++)
		ids[i] = 5;
	CHECK(qvl_repeat_check(ids, 200, 16) == 1, "40 equal ids trip the guard");
	/* one copy of anything is no repetition; 8 copies of a 4-id cycle in 32 ids are 2 or
	 * more copies although a period of 3 needs 33 ids (the search goes past it) */
	for (int i = 0; i < 200; i++)
		ids[i] = i;
	CHECK(qvl_repeat_check(ids, 200, 1) == 0, "max_repeat 1 finds nothing");
	for (int i = 168; i < 200; i++)
		ids[i] = 2000 + (i % 4);
	CHECK(qvl_repeat_check(ids, 200, 2) == 4, "8 copies of 4 ids at 32 ids (%d)",
	    qvl_repeat_check(ids, 200, 2));

	/* generation_config.json */
	qvl_generation_config gc;
	const char *j = "{\"eos_token_id\": [7, 9], \"temperature\": 0.5, \"do_sample\": false}";
	CHECK(qvl_generation_parse(j, strlen(j), &gc, &err) == 0 && gc.n_eos == 2 &&
	    gc.eos_ids[1] == 9 && gc.temperature == 0.5 && !gc.do_sample && gc.found,
	    "generation config parsed");
	j = "{\"eos_token_id\": 5}";
	CHECK(qvl_generation_parse(j, strlen(j), &gc, &err) == 0 && gc.n_eos == 1 &&
	    gc.eos_ids[0] == 5, "single eos id");
	j = "{\"eos_token_id\": null}";
	CHECK(qvl_generation_parse(j, strlen(j), &gc, &err) == 0 && gc.n_eos == 2 &&
	    gc.eos_ids[0] == 151645, "null eos id: the reference's ids");
	j = "{\"eos_token_id\": \"x\"}";
	CHECK(qvl_generation_parse(j, strlen(j), &gc, &err) < 0, "bad eos id: %s", err.msg);
	CHECK(qvl_generation_load(TEST_DATA "/models/tiny", &gc, &err) == 0 && gc.found &&
	    gc.n_eos == 2 && gc.eos_ids[0] == 151645 && gc.eos_ids[1] == 151643,
	    "tiny model's generation_config.json");
	CHECK(qvl_generation_load(TEST_DATA, &gc, &err) == 0 && !gc.found && gc.n_eos == 2,
	    "missing file gives the reference defaults");
	return TEST_DONE();
}
