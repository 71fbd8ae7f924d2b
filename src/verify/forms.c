/* This file contains the row digests of the targets' own forms (forms.h). */
#include "verify/forms.h"

#include "apply/mongodb_doc.h"
#include "apply/typed_value.h"
#include "core/buf.h"
#include "core/json_fields.h"
#include "core/mem.h"
#include "verify/row_digest.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DOMAIN "verify"
#define META_FIELD "_cachewarp"

static uint64_t null_digest(void)
{
	cw_typed_value_t null_value = {0};
	return cw_digest_value(&null_value);
}

/* ---- BSON form ---- */

/* A value's type and bytes; an embedded document's members in any order. */
static uint64_t bson_value_digest(const bson_iter_t *it)
{
	bson_type_t type = bson_iter_type(it);
	bson_iter_t child;
	if (type == BSON_TYPE_NULL)
		return null_digest();
	if ((type == BSON_TYPE_DOCUMENT || type == BSON_TYPE_ARRAY) && bson_iter_recurse(it, &child)) {
		uint64_t h = type == BSON_TYPE_DOCUMENT ? 0 : cw_digest_bytes("[", 1);
		while (bson_iter_next(&child)) {
			uint64_t member = bson_value_digest(&child);
			if (type == BSON_TYPE_DOCUMENT)
				h += cw_digest_pair(bson_iter_key(&child), bson_iter_key_len(&child), member);
			else
				h = cw_digest_pair((const char *)&h, sizeof h, member);
		}
		return type == BSON_TYPE_DOCUMENT ? cw_digest_pair("{", 1, h) : h;
	}
	bson_t one = BSON_INITIALIZER;
	bson_append_iter(&one, "", 0, it);
	uint64_t digest = cw_digest_bytes(bson_get_data(&one), one.len);
	bson_destroy(&one);
	return digest;
}

void cw_verify_bson_digest_doc(const cw_verify_bson_form_t *form, const char *doc_id,
                               const bson_t *doc, uint64_t *row, uint64_t *columns)
{
	const cw_entity_t *entity = form->entity;
	bson_iter_t it;
	if (form->layout == CW_LAYOUT_TYPED) {
		for (size_t i = 0; i < entity->ncolumns; i++)
			columns[i] = bson_iter_init_find(&it, doc, entity->columns[i].name)
			             ? bson_value_digest(&it) : null_digest();
		*row = cw_digest_row(doc_id, columns, entity->ncolumns);
		return;
	}
	uint64_t sum = 0;
	if (bson_iter_init(&it, doc)) {
		while (bson_iter_next(&it)) {
			const char *key = bson_iter_key(&it);
			if (strcmp(key, "_id") == 0 || strcmp(key, META_FIELD) == 0 ||
			    bson_iter_type(&it) == BSON_TYPE_NULL)
				continue;
			sum += cw_digest_pair(key, bson_iter_key_len(&it), bson_value_digest(&it));
		}
	}
	*row = cw_digest_row_pairs(doc_id, sum);
}

/* Whether a dynamic entity's field is its key's (it makes the _id, not a field). */
static bool key_field(const cw_verify_bson_form_t *form, const char *key, size_t len)
{
	if (form->record.nkey == 0)
		return cw_layout_key_is_id(key, len);
	for (size_t k = 0; k < form->record.nkey; k++)
		if (strlen(form->record.key[k]) == len && memcmp(form->record.key[k], key, len) == 0)
			return true;
	return false;
}

/* The type the target gives a field: the source's recorded one, an integer column's Int64. */
static const char *field_type(const cw_verify_bson_form_t *form, const char *key, size_t len)
{
	if (form->layout == CW_LAYOUT_DYNAMIC)
		return cw_table_record_type(&form->record, key, len);
	for (size_t i = 0; i < form->entity->ncolumns; i++) {
		const cw_column_t *c = &form->entity->columns[i];
		if (strlen(c->name) == len && memcmp(c->name, key, len) == 0)
			return c->type == CW_COL_INTEGER ? "bigint" : NULL;
	}
	return NULL;
}

int cw_verify_bson_digest_data(const cw_verify_bson_form_t *form, const char *doc_id,
                               const char *data, uint64_t *row, uint64_t *columns, cw_err_t *err)
{
	cw_json_fields_t fields;
	cw_json_fields_init(&fields);
	bson_t doc = BSON_INITIALIZER;
	int rc = cw_json_fields_parse(&fields, data, err);
	for (size_t i = 0; rc == 0 && i < fields.len; i++) {
		const cw_json_field_t *f = &fields.items[i];
		if (form->layout == CW_LAYOUT_DYNAMIC && key_field(form, f->key, f->key_len))
			continue;
		rc = cw_mdoc_append_pg(&doc, f->key, f->key_len, field_type(form, f->key, f->key_len), f,
		                       err);
	}
	if (rc == 0)
		cw_verify_bson_digest_doc(form, doc_id, &doc, row, columns);
	bson_destroy(&doc);
	cw_json_fields_clear(&fields);
	return rc;
}

/* ---- column form ---- */

void cw_verify_pg_model_add(cw_verify_pg_model_t *model, const char *name, const char *field,
                            const char *type)
{
	model->cols = cw_xrealloc(model->cols, (model->ncols + 1) * sizeof *model->cols);
	cw_verify_pg_column_t *c = &model->cols[model->ncols++];
	c->name = cw_xstrdup(name);
	c->field = cw_xstrdup(field);
	c->type = cw_xstrdup(type);
	c->kind = cw_pgc_kind_of(type);
}

void cw_verify_pg_model_clear(cw_verify_pg_model_t *model)
{
	for (size_t i = 0; i < model->ncols; i++) {
		free(model->cols[i].name);
		free(model->cols[i].field);
		free(model->cols[i].type);
	}
	free(model->cols);
	model->cols = NULL;
	model->ncols = 0;
	model->has_extra = false;
}

const cw_verify_pg_column_t *cw_verify_pg_model_find(const cw_verify_pg_model_t *model,
                                                     const char *field, size_t len)
{
	for (size_t i = 0; i < model->ncols; i++)
		if (strncmp(model->cols[i].field, field, len) == 0 && model->cols[i].field[len] == '\0')
			return &model->cols[i];
	return NULL;
}

/* A number's digest from its text as JSON reads it; NULL when it is not a JSON number. */
static bool number_digest(const char *text, size_t len, cw_decimal_mode_t mode, uint64_t *digest)
{
	if (len == 0 || !(text[0] == '-' || (text[0] >= '0' && text[0] <= '9')) ||
	    strspn(text, "-+.0123456789eE") < len)
		return false;
	cw_typed_value_t value;
	cw_typed_value_number(text, len, mode, &value);
	*digest = cw_digest_value(&value);
	free(value.owned);
	return true;
}

uint64_t cw_verify_json_digest(const char *span, size_t len, cw_decimal_mode_t mode)
{
	uint64_t digest;
	if (len == 0)
		return null_digest();
	switch (span[0]) {
	case 'n':
		return null_digest();
	case 't':
	case 'f':
		return cw_digest_bytes(span, len);
	case '"': {
		cw_buf_t text = CW_BUF_INIT;
		cw_json_string_unescape(span, len, &text);
		digest = cw_digest_bytes(text.data ? text.data : "", text.len);
		cw_buf_free(&text);
		return digest;
	}
	case '{':
	case '[': {
		cw_json_fields_t members;
		cw_json_fields_init(&members);
		bool object = span[0] == '{';
		uint64_t h = object ? 0 : cw_digest_bytes("[", 1);
		if (cw_json_fields_parse_nested(&members, span, NULL) == 0) {
			for (size_t i = 0; i < members.len; i++) {
				const cw_json_field_t *m = &members.items[i];
				uint64_t member = cw_verify_json_digest(m->value, m->value_len, mode);
				if (object)
					h += cw_digest_pair(m->key, m->key_len, member);
				else
					h = cw_digest_pair((const char *)&h, sizeof h, member);
			}
		}
		cw_json_fields_clear(&members);
		return object ? cw_digest_pair("{", 1, h) : h;
	}
	default:
		return number_digest(span, len, mode, &digest) ? digest : cw_digest_bytes(span, len);
	}
}

uint64_t cw_verify_pg_text_digest(cw_pgc_kind_t kind, const char *text, size_t len,
                                  cw_decimal_mode_t mode)
{
	uint64_t digest;
	switch (kind) {
	case CW_PGC_SMALLINT:
	case CW_PGC_INTEGER:
	case CW_PGC_BIGINT:
	case CW_PGC_NUMERIC:
		if (number_digest(text, len, mode, &digest))
			return digest;
		break;
	case CW_PGC_DOUBLE: {
		char copy[64];
		if (len >= sizeof copy)
			break;
		memcpy(copy, text, len);
		copy[len] = '\0';
		char *end;
		cw_typed_value_t value = {.kind = CW_TYPED_REAL, .real = strtod(copy, &end)};
		if (*end == '\0' && isfinite(value.real))
			return cw_digest_value(&value);
		break;
	}
	case CW_PGC_JSONB:
		return cw_verify_json_digest(text, len, mode);
	case CW_PGC_TIMESTAMPTZ: {
		int64_t ms;
		if (cw_mdoc_parse_pg_time(text, len, &ms)) {
			cw_typed_value_t value = {.kind = CW_TYPED_INTEGER, .integer = ms};
			return cw_digest_value(&value);
		}
		break;
	}
	case CW_PGC_BOOLEAN:
	case CW_PGC_TEXT:
	case CW_PGC_OTHER:
		break;
	}
	return cw_digest_bytes(text, len);
}

/*
 * What the column rules make of field in a column of kind (type: its SQL
 * type): its digest in *digest, false when the column holds NULL (a null,
 * or a value the target quarantines).
 */
static bool column_value_digest(cw_pgc_kind_t kind, const char *type,
                                const cw_json_field_t *field, cw_decimal_mode_t mode,
                                cw_buf_t *scratch, uint64_t *digest)
{
	cw_pgc_read_t value;
	cw_pgc_read(field, mode, &value);
	if (value.value == CW_PGV_NULL)
		return false;
	cw_pgc_kind_t wider;
	const char *why;
	cw_pgc_fit_t fit = cw_pgc_fit(kind, &value, mode, &wider, &why);
	if (fit == CW_PGC_DRASTIC)
		return false;
	if (fit == CW_PGC_WIDEN) {
		kind = wider;
		type = cw_pgc_type_name(wider);
	}
	cw_buf_reset(scratch);
	if (!cw_pgc_text(field, &value, kind, type, scratch))
		return false;
	*digest = cw_verify_pg_text_digest(kind, scratch->data ? scratch->data : "", scratch->len,
	                                   mode);
	return true;
}

/* A field of a document without a column of the model's: where the target puts it. */
static bool new_field_digest(const cw_verify_pg_model_t *model, const cw_json_field_t *field,
                             cw_buf_t *scratch, uint64_t *digest)
{
	if (field->kind == CW_JSON_KIND_NULL)
		return false;
	if (model->has_extra) {
		*digest = cw_verify_json_digest(field->value, field->value_len, model->mode);
		return true;
	}
	cw_pgc_read_t value;
	cw_pgc_read(field, model->mode, &value);
	bool ok;
	cw_pgc_kind_t kind = cw_pgc_infer(&value, model->mode, &ok);
	return ok && column_value_digest(kind, cw_pgc_type_name(kind), field, model->mode, scratch,
	                                 digest);
}

int cw_verify_pg_digest_data(const cw_verify_pg_model_t *model, const char *doc_id,
                             const char *data, uint64_t *row, uint64_t *columns, cw_err_t *err)
{
	const cw_entity_t *entity = model->entity;
	cw_json_fields_t top, nested;
	cw_json_fields_init(&top);
	cw_json_fields_init(&nested);
	cw_buf_t scratch = CW_BUF_INIT;
	int rc = cw_json_fields_parse(&top, data, err);
	if (rc != 0)
		goto done;
	if (cw_layout_of(entity) == CW_LAYOUT_TYPED) {
		for (size_t i = 0; i < entity->ncolumns; i++) {
			const char *name = entity->columns[i].name;
			const cw_json_field_t *f = cw_json_fields_get(&top, name, strlen(name));
			const cw_verify_pg_column_t *col = cw_verify_pg_model_find(model, name, strlen(name));
			if (f == NULL ||
			    !(col != NULL ? column_value_digest(col->kind, col->type, f, model->mode,
			                                        &scratch, &columns[i])
			                  : new_field_digest(model, f, &scratch, &columns[i])))
				columns[i] = null_digest();
		}
		*row = cw_digest_row(doc_id, columns, entity->ncolumns);
		goto done;
	}
	/* A document's fields are those of its "doc"; a table's row is its data itself. */
	bool document = cw_layout_of(entity) == CW_LAYOUT_DOCUMENT;
	const cw_json_fields_t *fields = &top;
	if (document) {
		const cw_json_field_t *doc = cw_json_fields_get(&top, CW_LAYOUT_DOC_COLUMN,
		                                                strlen(CW_LAYOUT_DOC_COLUMN));
		if (doc == NULL || doc->kind != CW_JSON_KIND_OBJECT) {
			rc = cw_err_set(err, CW_EINVAL, DOMAIN, "the data of %s holds no document", doc_id);
			goto done;
		}
		if ((rc = cw_json_fields_parse_nested(&nested, doc->value, err)) != 0)
			goto done;
		fields = &nested;
	}
	uint64_t sum = 0;
	for (size_t i = 0; i < fields->len; i++) {
		const cw_json_field_t *f = &fields->items[i];
		/* the target skips the key (_id, or a table's "id") and a name no column can take */
		if (f->key_len == 0 || memchr(f->key, '\0', f->key_len) != NULL ||
		    (document ? f->key_len == 3 && memcmp(f->key, "_id", 3) == 0
		              : cw_layout_key_is_id(f->key, f->key_len)))
			continue;
		const cw_verify_pg_column_t *col = cw_verify_pg_model_find(model, f->key, f->key_len);
		uint64_t digest;
		if (col != NULL ? column_value_digest(col->kind, col->type, f, model->mode, &scratch,
		                                      &digest)
		                : new_field_digest(model, f, &scratch, &digest))
			sum += cw_digest_pair(f->key, f->key_len, digest);
	}
	*row = cw_digest_row_pairs(doc_id, sum);
done:
	cw_buf_free(&scratch);
	cw_json_fields_clear(&nested);
	cw_json_fields_clear(&top);
	return rc;
}
