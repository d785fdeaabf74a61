/* generation.c: generation_config.json. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "config.h"
#include "generation.h"

void
qvl_generation_defaults(qvl_generation_config *g)
{
	memset(g, 0, sizeof *g);
	g->eos_ids[0] = 151645;
	g->eos_ids[1] = 151643;
	g->n_eos = 2;
	g->temperature = 1e-6;
	g->top_p = 1;
	g->repetition_penalty = 1.05;
	g->do_sample = 1;
}

static int
add_eos(qvl_generation_config *g, json_t *v, qvl_err *err)
{
	json_int_t id;

	if (!json_is_integer(v) || (id = json_integer_value(v)) < 0 || id > INT32_MAX)
		return qvl_fail(err, "eos_token_id: not a token id");
	if (g->n_eos == QVL_MAX_STOP_IDS)
		return qvl_fail(err, "more than %d eos_token_id values",
		    QVL_MAX_STOP_IDS);
	g->eos_ids[g->n_eos++] = (int32_t)id;
	return 0;
}

int
qvl_generation_parse(const char *json_text, size_t len, qvl_generation_config *g,
    qvl_err *err)
{
	json_error_t je;
	json_t *root, *v;
	int rc = -1;

	qvl_generation_defaults(g);
	if ((root = json_loadb(json_text, len, 0, &je)) == NULL)
		return qvl_fail(err, "line %d: %s", je.line, je.text);
	if (!json_is_object(root)) {
		qvl_fail(err, "not a JSON object");
		goto out;
	}
	/* null, as absent: the reference's ids */
	if ((v = json_object_get(root, "eos_token_id")) != NULL && !json_is_null(v)) {
		g->n_eos = 0;
		if (json_is_array(v)) {
			size_t i;
			json_t *e;
			json_array_foreach(v, i, e)
				if (add_eos(g, e, err) < 0)
					goto out;
		} else if (add_eos(g, v, err) < 0)
			goto out;
	}
	if ((v = json_object_get(root, "temperature")) != NULL && json_is_number(v))
		g->temperature = json_number_value(v);
	if ((v = json_object_get(root, "top_p")) != NULL && json_is_number(v))
		g->top_p = json_number_value(v);
	if ((v = json_object_get(root, "top_k")) != NULL && json_is_integer(v))
		g->top_k = (int)json_integer_value(v);
	if ((v = json_object_get(root, "repetition_penalty")) != NULL && json_is_number(v))
		g->repetition_penalty = json_number_value(v);
	if ((v = json_object_get(root, "do_sample")) != NULL)
		g->do_sample = json_is_true(v);
	g->found = 1;
	rc = 0;
out:
	json_decref(root);
	return rc;
}

int
qvl_generation_load(const char *model_dir, qvl_generation_config *g, qvl_err *err)
{
	char path[4096];
	size_t len;
	char *text;
	int rc;

	snprintf(path, sizeof path, "%s/generation_config.json", model_dir);
	if (access(path, F_OK) < 0 && errno == ENOENT) {
		qvl_generation_defaults(g);
		return 0;
	}
	if ((text = qvl_read_file(path, &len, 1 << 20, err)) == NULL)
		return -1;
	if ((rc = qvl_generation_parse(text, len, g, err)) < 0)
		qvl_err_prefix(err, "%s", path);
	free(text);
	return rc;
}
