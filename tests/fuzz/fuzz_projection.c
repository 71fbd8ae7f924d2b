/*
 * libFuzzer target for the projection: arbitrary bytes go in as JSON text
 * and, when they frame a BSON document, as BSON (deliberately not validated
 * first: the capture must survive whatever a server sends). Every projection
 * must either fail with an error or produce valid JSON without a NUL byte.
 */
#include "core/json.h"
#include "core/json_fields.h"
#include "core/mem.h"
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

/*
 * A successful projection must be one JSON object of valid UTF-8, with no NUL
 * inside. Numbers may be past what a double or an int64 holds (they keep
 * their digits), so the check reads the text as the apply path does.
 */
static void check_output(const cw_buf_t *out)
{
	if (memchr(out->data, '\0', out->len) != NULL || !cw_json_validate_utf8(out->data, out->len) ||
	    cw_json_span_has_nul(out->data, out->len))
		abort();
	cw_json_fields_t fields;
	cw_json_fields_init(&fields);
	cw_err_t err;
	if (cw_json_fields_parse(&fields, cw_buf_cstr(out), &err) != 0) {
		fprintf(stderr, "projection wrote invalid JSON: %s\n%s\n", err.message, out->data);
		abort();
	}
	cw_json_fields_clear(&fields);
}

static void project_all(cw_projection_t *const *projections, size_t count,
                        const uint8_t *data, size_t size, const bson_t *bson)
{
	cw_buf_t out = CW_BUF_INIT;
	for (size_t i = 0; i < count; i++) {
		cw_err_t err;
		cw_err_clear(&err);
		int rc;
		if (bson != NULL) {
			rc = cw_projection_bson(projections[i], bson, &out, &err);
		} else {
			char *text = cw_xstrndup((const char *)data, size);   /* NUL-terminated */
			rc = cw_projection_json(projections[i], text, &out, &err);
			free(text);
		}
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
