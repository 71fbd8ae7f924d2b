/*
 * libFuzzer target for the projection: arbitrary bytes go in as JSON text
 * and, when they frame a BSON document, as BSON (deliberately not validated
 * first: the capture must survive whatever a server sends). Every projection
 * must either fail with an error or produce valid JSON without a NUL byte.
 */
#include "core/json.h"
#include "core/projection.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static cw_column_t shape[] = {
	{"title", CW_COL_TEXT, "title"},
	{"price", CW_COL_NUMBER, "pricing.amount"},
	{"stock", CW_COL_INTEGER, "stock"},
	{"active", CW_COL_BOOL, "active"},
	{"tags", CW_COL_JSONB, "tags"},
	{"first_tag", CW_COL_ANY, "tags.0"},
	{"deep", CW_COL_TEXT, "a.b.0.c"},
	{"id_text", CW_COL_TEXT, "_id"},
	{"n", CW_COL_NUMBER, "n"},
	{"i", CW_COL_INTEGER, "n"},
};

/* A successful projection must be one JSON object, with no NUL inside. */
static void check_output(const cw_buf_t *out)
{
	json_error_t jerr;
	if (memchr(out->data, '\0', out->len) != NULL)
		abort();
	json_t *parsed = json_loadb(out->data, out->len, 0, &jerr);
	if (parsed == NULL || !json_is_object(parsed)) {
		fprintf(stderr, "projection wrote invalid JSON: %s\n%s\n", jerr.text, out->data);
		abort();
	}
	json_decref(parsed);
}

static void project_all(cw_projection_t *const *projections, size_t count,
                        const uint8_t *data, size_t size, const bson_t *bson)
{
	cw_buf_t out = CW_BUF_INIT;
	for (size_t i = 0; i < count; i++) {
		cw_err_t err;
		cw_err_clear(&err);
		int rc = bson ? cw_projection_bson(projections[i], bson, &out, &err)
		              : cw_projection_json(projections[i], (const char *)data, size, &out,
		                                   &err);
		if (rc == 0)
			check_output(&out);
		else if (out.len != 0 || err.message[0] == '\0')
			abort();   /* an error leaves no output and always says why */
	}
	cw_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cw_entity_t typed = {.name = "products", .source = "shop", .collection = "products",
	                     .columns = shape, .ncolumns = sizeof shape / sizeof shape[0]};
	cw_entity_t whole = {.name = "raw", .source = "shop", .collection = "raw"};
	cw_projection_t *projections[3] = {
		cw_projection_new(&typed, CW_PROJECTION_DEFAULT, NULL),
		cw_projection_new(&typed, CW_PROJECTION_MISSING_NULL, NULL),
		cw_projection_new(&whole, CW_PROJECTION_DEFAULT, NULL),
	};
	if (!projections[0] || !projections[1] || !projections[2])
		abort();

	project_all(projections, 3, data, size, NULL);

	bson_t bson;
	if (bson_init_static(&bson, data, size)) {
		project_all(projections, 3, data, size, &bson);
		cw_err_t err;
		char *doc_id = cw_projection_doc_id_of(&bson, &err);
		if (doc_id != NULL && !cw_json_validate_utf8(doc_id, strlen(doc_id)))
			abort();
		free(doc_id);
	}
	for (size_t i = 0; i < 3; i++)
		cw_projection_free(projections[i]);
	return 0;
}
