/* This file contains a stream's transformation declared in transform.h. */
#include "apply/transform.h"

#include "core/buf.h"
#include "core/json_fields.h"
#include "core/mem.h"
#include "transform/kazaam.h"

#include <stdlib.h>
#include <string.h>

#define DOMAIN "transform"

struct cw_stream_transform {
	char *id;
	cw_kazaam_t *kazaam;
};

cw_stream_transform_t *cw_stream_transform_new(const cw_transformation_config_t *config,
                                               cw_err_t *err)
{
	const char *spec = config->spec != NULL ? config->spec : "";
	cw_kazaam_t *kazaam = cw_kazaam_compile(spec, strlen(spec), err);
	if (kazaam == NULL) {
		cw_err_prefix(err, "transformation \"%s\"", config->id);
		return NULL;
	}
	cw_stream_transform_t *t = cw_xcalloc(1, sizeof *t);
	t->id = cw_xstrdup(config->id);
	t->kazaam = kazaam;
	return t;
}

void cw_stream_transform_free(cw_stream_transform_t *t)
{
	if (t == NULL)
		return;
	cw_kazaam_free(t->kazaam);
	free(t->id);
	free(t);
}

/* The result is an object: anything else cannot be a row or a document. */
static int check_object(const cw_stream_transform_t *t, const cw_buf_t *result, cw_err_t *err)
{
	size_t i = 0;
	while (i < result->len && strchr(" \t\r\n", result->data[i]) != NULL)
		i++;
	if (i < result->len && result->data[i] == '{')
		return 0;
	return cw_err_set(err, CW_EINVAL, DOMAIN, "transformation \"%s\": the result is not a JSON "
	                  "object", t->id);
}

int cw_stream_transform_apply(const cw_stream_transform_t *t, const char *data, bool document,
                              char **out, cw_err_t *err)
{
	*out = NULL;
	const char *input = data;
	size_t input_len = strlen(data);
	cw_json_fields_t fields;
	cw_json_fields_init(&fields);
	int rc = 0;
	if (document) {
		if ((rc = cw_json_fields_parse(&fields, data, err)) != 0)
			goto out;
		const cw_json_field_t *doc = cw_json_fields_get(&fields, "doc", 3);
		if (doc == NULL || doc->kind != CW_JSON_KIND_OBJECT) {
			rc = cw_err_set(err, CW_EINVAL, DOMAIN, "transformation \"%s\": the change holds no "
			                "document", t->id);
			goto out;
		}
		input = doc->value;
		input_len = doc->value_len;
	}
	cw_buf_t result = CW_BUF_INIT;
	if ((rc = cw_kazaam_apply(t->kazaam, input, input_len, NULL, &result, err)) != 0) {
		cw_err_prefix(err, "transformation \"%s\"", t->id);
	} else if ((rc = check_object(t, &result, err)) == 0) {
		if (document) {
			cw_buf_t wrapped = CW_BUF_INIT;
			cw_buf_append_str(&wrapped, "{\"doc\":");
			cw_buf_append(&wrapped, result.data, result.len);
			cw_buf_append_str(&wrapped, "}");
			*out = cw_buf_take(&wrapped);
		} else {
			*out = cw_buf_take(&result);
		}
	}
	cw_buf_free(&result);
out:
	cw_json_fields_clear(&fields);
	return rc;
}
