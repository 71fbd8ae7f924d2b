/*
 * This file contains the second half of the pgoutput module declared in
 * pgoutput.h: it turns a decoded Insert, Update or Delete into a change's
 * doc_id and data following docs/pgoutput.md (text values keep their text
 * form, numbers stay exact, json and jsonb are embedded after validation).
 */
#include "capture/pgoutput.h"

#include "core/json.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DOMAIN "pgoutput"

/* ---- row values to JSON (docs/pgoutput.md) ------------------------------ */

enum {
	BOOLOID = 16, INT8OID = 20, INT2OID = 21, INT4OID = 23, OIDOID = 26, JSONOID = 114,
	FLOAT4OID = 700, FLOAT8OID = 701, NUMERICOID = 1700, JSONBOID = 3802,
};

/* Offset of a text value's first byte: after its kind byte and length. */
#define TEXT_OFFSET(value) ((value)->offset + 5)

/* What a value error is about: the message and relation. */
typedef struct row_ctx {
	const cw_pgoutput_msg_t *msg;
	const cw_pgoutput_rel_t *rel;
	cw_err_t *err;
} row_ctx_t;

static int value_fail(const row_ctx_t *ctx, uint16_t col, size_t offset, const char *what)
{
	return cw_err_set(ctx->err, CW_EPROTO, DOMAIN,
		"pgoutput %s message: column \"%s\" of \"%s.%s\": %s at offset %zu",
		cw_pgoutput_kind_name(ctx->msg->kind), ctx->rel->columns[col].name,
		ctx->rel->nspname, ctx->rel->relname, what, offset);
}

static size_t skip_ws(const char *s, size_t len, size_t i)
{
	while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
		i++;
	return i;
}

/* Scans the JSON string opening at s[i]; the offset after it, or 0. Refuses
 * \u0000, which PostgreSQL's jsonb cannot store (a PostgreSQL target, or
 * data::jsonb over the hub). */
static size_t scan_string(const char *s, size_t len, size_t i)
{
	if (i >= len || s[i] != '"')
		return 0;
	for (i++; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"')
			return i + 1;
		if (c < 0x20)
			return 0;
		if (c != '\\')
			continue;
		if (++i >= len)
			return 0;
		if (s[i] == 'u') {
			if (len - i <= 4 || memcmp(s + i + 1, "0000", 4) == 0)
				return 0;
			for (size_t k = 1; k <= 4; k++)
				if (strchr("0123456789abcdefABCDEF", s[i + k]) == NULL || s[i + k] == '\0')
					return 0;
			i += 4;
		} else if (strchr("\"\\/bfnrt", s[i]) == NULL || s[i] == '\0') {
			return 0;
		}
	}
	return 0;
}

/* Scans a number or literal at s[i]; the offset after it, or 0. */
static size_t scan_scalar(const char *s, size_t len, size_t i)
{
	static const char *const literals[] = {"true", "false", "null"};
	for (size_t k = 0; k < 3; k++) {
		size_t n = strlen(literals[k]);
		if (len - i >= n && memcmp(s + i, literals[k], n) == 0)
			return i + n;
	}
	size_t end = i;
	while (end < len && s[end] != '\0' && strchr("+-0123456789.eE", s[end]) != NULL)
		end++;
	return end > i && cw_json_number_valid(s + i, end - i) ? end : 0;
}

/* Scans `"key" :` inside an object at s[i]; the offset of the value, or 0. */
static size_t scan_key(const char *s, size_t len, size_t i)
{
	i = scan_string(s, len, i);
	if (i == 0)
		return 0;
	i = skip_ws(s, len, i);
	if (i >= len || s[i] != ':')
		return 0;
	return skip_ws(s, len, i + 1);
}

/* Whether s[0..len), UTF-8 already (check_text), is exactly one JSON value
 * (RFC 8259); when not, *bad is the offset where it stops being one.
 * Iterative, so nesting depth costs heap, not stack. */
static bool json_valid(const char *s, size_t len, size_t *bad)
{
	cw_buf_t open = CW_BUF_INIT;   /* the open containers: '{' or '[' */
	size_t i = skip_ws(s, len, 0), next;
	bool want_value = true, valid = false;
	for (;;) {
		if (want_value && i < len && (s[i] == '{' || s[i] == '[')) {
			char close = s[i] == '{' ? '}' : ']';
			cw_buf_append_char(&open, s[i]);
			i = skip_ws(s, len, i + 1);
			if (i < len && s[i] == close) {
				open.len--, i++, want_value = false;
			} else if (close == '}' && (i = scan_key(s, len, next = i)) == 0) {
				i = next;
				break;
			}
			continue;
		}
		if (want_value) {
			next = i >= len ? 0 : s[i] == '"' ? scan_string(s, len, i) : scan_scalar(s, len, i);
			if (next == 0)
				break;
			i = next, want_value = false;
			continue;
		}
		i = skip_ws(s, len, i);
		if (open.len == 0) {
			valid = i == len;
			break;
		}
		char top = open.data[open.len - 1];
		if (i < len && s[i] == (top == '{' ? '}' : ']')) {
			open.len--, i++;
		} else if (i < len && s[i] == ',') {
			next = skip_ws(s, len, i + 1);
			i = top == '{' ? scan_key(s, len, next) : next;
			if (i == 0) {
				i = next;
				break;
			}
			want_value = true;
		} else {
			break;
		}
	}
	cw_buf_free(&open);
	*bad = i;
	return valid;
}

/* A text value must be UTF-8 without NUL bytes (PostgreSQL text has none). */
static int check_text(const row_ctx_t *ctx, uint16_t col, const cw_pgoutput_value_t *value)
{
	const char *text = (const char *)value->text;
	size_t bad = cw_json_utf8_invalid_at(text, value->len);
	if (bad != value->len)
		return value_fail(ctx, col, TEXT_OFFSET(value) + bad, "value is not valid UTF-8");
	const char *nul = memchr(text, '\0', value->len);
	if (nul != NULL)
		return value_fail(ctx, col, TEXT_OFFSET(value) + (size_t)(nul - text),
			"value contains a NUL byte");
	return 0;
}

/* The element type of a built-in array type, or 0 when oid is not one. */
static uint32_t array_element(uint32_t oid)
{
	static const uint32_t pairs[][2] = {
		{1000, BOOLOID}, {1005, INT2OID}, {1007, INT4OID}, {1016, INT8OID}, {1028, OIDOID},
		{1021, FLOAT4OID}, {1022, FLOAT8OID}, {1231, NUMERICOID}, {199, JSONOID},
		{3807, JSONBOID}, {1009, 25}, {1015, 1043}, {1014, 1042}, {1003, 19}, {1002, 18},
		{2951, 2950}, {1182, 1082}, {1115, 1114}, {1185, 1184}, {1183, 1083}, {1270, 1266},
		{1187, 1186}, {1001, 17}, {1041, 869}, {651, 650}, {1040, 829}, {791, 790},
		{1561, 1560}, {1563, 1562}, {3643, 3614}, {1263, 2275},
	};
	for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
		if (pairs[i][0] == oid)
			return pairs[i][1];
	return 0;
}

/* One value's text form as JSON by its type (docs/pgoutput.md); *bad_at is
 * set for invalid JSON. */
static int write_typed(cw_json_t *w, const row_ctx_t *ctx, uint16_t col, uint32_t type_oid,
	const char *text, size_t len, size_t offset)
{
	size_t bad;
	switch (type_oid) {
	case BOOLOID:
		if (len != 1 || (text[0] != 't' && text[0] != 'f'))
			return value_fail(ctx, col, offset, "invalid boolean");
		return cw_json_bool(w, text[0] == 't', ctx->err);
	case INT2OID:
	case INT4OID:
	case INT8OID:
	case OIDOID:
	case FLOAT4OID:
	case FLOAT8OID:
	case NUMERICOID:
		if (cw_json_number_valid(text, len))
			return cw_json_raw(w, text, len, ctx->err);
		break; /* NaN, Infinity, -Infinity */
	case JSONOID:
	case JSONBOID:
		if (!json_valid(text, len, &bad))
			return value_fail(ctx, col, offset + bad, "invalid JSON");
		size_t start = skip_ws(text, len, 0);
		while (len > start && strchr(" \t\n\r", text[len - 1]) != NULL)
			len--;
		return cw_json_raw(w, text + start, len - start, ctx->err);
	default:
		break;
	}
	return cw_json_string_len(w, text, len, ctx->err);
}

/*
 * An array literal ({1,2,NULL}, {{a,b},{"c d",e}}, [0:1]={x,y}) as a JSON
 * array of its elements, each converted by the element type; NULL elements
 * are null, nested arrays stay nested. Lower bounds other than 1 are not
 * kept. Elements of every built-in type are separated by ',' (box, the one
 * exception, is not in array_element).
 */
static int write_array(cw_json_t *w, const row_ctx_t *ctx, uint16_t col, uint32_t element,
	const char *text, size_t len, size_t offset)
{
	size_t i = 0;
	if (len > 0 && text[0] == '[') {   /* dimension decoration */
		const char *eq = memchr(text, '=', len);
		if (eq == NULL)
			return value_fail(ctx, col, offset, "invalid array");
		i = (size_t)(eq - text) + 1;
	}
	cw_buf_t item = CW_BUF_INIT;
	int depth = 0, rc = 0;
	bool want_item = false;
	for (; i < len && rc == 0; i++) {
		char c = text[i];
		if (c == '{') {
			rc = cw_json_array_begin(w, ctx->err);
			depth++;
			want_item = true;
			if (i + 1 < len && text[i + 1] == '}')
				want_item = false;
			continue;
		}
		if (c == '}') {
			if (depth == 0) {
				rc = value_fail(ctx, col, offset + i, "invalid array");
				break;
			}
			rc = cw_json_array_end(w, ctx->err);
			if (--depth == 0)
				break;
			continue;
		}
		if (c == ',') {
			want_item = true;
			continue;
		}
		if (c == ' ' || depth == 0 || !want_item) {
			if (c != ' ')
				rc = value_fail(ctx, col, offset + i, "invalid array");
			continue;
		}
		cw_buf_reset(&item);
		bool quoted = c == '"';
		if (quoted) {
			for (i++; i < len && text[i] != '"'; i++) {
				if (text[i] == '\\' && i + 1 < len)
					i++;
				cw_buf_append_char(&item, text[i]);
			}
		} else {
			for (; i < len && text[i] != ',' && text[i] != '}'; i++)
				cw_buf_append_char(&item, text[i]);
			i--;
			while (item.len > 0 && item.data[item.len - 1] == ' ')
				item.len--;
		}
		want_item = false;
		if (!quoted && item.len == 4 && strncasecmp(cw_buf_cstr(&item), "NULL", 4) == 0)
			rc = cw_json_null(w, ctx->err);
		else
			rc = write_typed(w, ctx, col, element, cw_buf_cstr(&item), item.len, offset + i);
	}
	cw_buf_free(&item);
	/* Unclosed, or no '{' at all (empty text, a bare dimension): no value was written. */
	if (rc == 0 && (depth != 0 || i >= len))
		rc = value_fail(ctx, col, offset, "invalid array");
	return rc;
}

static int write_value(cw_json_t *w, const row_ctx_t *ctx, uint16_t col,
	const cw_pgoutput_value_t *value)
{
	if (value->kind == 'n')
		return cw_json_null(w, ctx->err);
	if (check_text(ctx, col, value))
		return CW_EPROTO;
	uint32_t type_oid = ctx->rel->columns[col].type_oid, element = array_element(type_oid);
	if (element != 0)
		return write_array(w, ctx, col, element, (const char *)value->text, value->len,
			TEXT_OFFSET(value));
	return write_typed(w, ctx, col, type_oid, (const char *)value->text, value->len,
		TEXT_OFFSET(value));
}

/* The columns doc_id is made of, as indexes into the relation's columns. */
static int key_columns(const cw_pgoutput_t *dec, const row_ctx_t *ctx, uint16_t *key,
	uint16_t *nkey)
{
	const cw_pgoutput_rel_t *rel = ctx->rel;
	const char *const *pk;
	size_t npk = cw_pgoutput_primary_key(dec, rel->nspname, rel->relname, &pk);
	*nkey = 0;
	for (size_t i = 0; i < npk; i++) {
		uint16_t col = 0;
		while (col < rel->ncolumns && strcmp(rel->columns[col].name, pk[i]) != 0)
			col++;
		if (col == rel->ncolumns)
			return cw_err_set(ctx->err, CW_EINVAL, DOMAIN,
				"primary key column \"%s\" of \"%s.%s\" is not published",
				pk[i], rel->nspname, rel->relname);
		key[(*nkey)++] = col;
	}
	if (npk > 0)
		return 0;
	if (rel->replident == 'f')
		return cw_err_set(ctx->err, CW_EINVAL, DOMAIN,
			"relation \"%s.%s\" has REPLICA IDENTITY FULL and no primary key was given",
			rel->nspname, rel->relname);
	for (uint16_t col = 0; rel->replident != 'n' && col < rel->ncolumns; col++)
		if (rel->columns[col].flags & CW_PGOUTPUT_COLUMN_KEY)
			key[(*nkey)++] = col;
	if (*nkey == 0)
		return cw_err_set(ctx->err, CW_EINVAL, DOMAIN,
			"relation \"%s.%s\" has no primary key or replica identity index",
			rel->nspname, rel->relname);
	return 0;
}

/* doc_id: a single key column's text, or a JSON array of the key values. */
static int write_doc_id(const row_ctx_t *ctx, const cw_pgoutput_tuple_t *tuple,
	const uint16_t *key, uint16_t nkey, cw_buf_t *out)
{
	for (uint16_t k = 0; k < nkey; k++) {
		const cw_pgoutput_value_t *value = &tuple->values[key[k]];
		if (value->kind != 't')
			return value_fail(ctx, key[k], value->offset, value->kind == 'n' ?
				"key value is null" : "key value is an unchanged TOAST value");
	}
	if (nkey == 1) {
		const cw_pgoutput_value_t *value = &tuple->values[key[0]];
		if (check_text(ctx, key[0], value))
			return CW_EPROTO;
		cw_buf_append(out, value->text, value->len);
		return 0;
	}
	cw_json_t w;
	cw_json_init(&w, out, CW_JSON_NO_NUL);
	cw_json_array_begin(&w, ctx->err);
	for (uint16_t k = 0; k < nkey; k++)
		if (write_value(&w, ctx, key[k], &tuple->values[key[k]]))
			return CW_EPROTO;
	cw_json_array_end(&w, ctx->err);
	return cw_json_finish(&w);
}

/* data: a JSON object of the tuple's columns, unchanged TOAST ones absent. */
static int write_data(const row_ctx_t *ctx, const cw_pgoutput_tuple_t *tuple, cw_buf_t *out)
{
	/* One allocation for most rows: the values' text, the names and the punctuation. */
	size_t size = 2;
	for (uint16_t col = 0; col < tuple->ncolumns; col++)
		size += tuple->values[col].len + strlen(ctx->rel->columns[col].name) + 8;
	cw_buf_reserve(out, size);
	cw_json_t w;
	cw_json_init(&w, out, CW_JSON_NO_NUL);
	cw_json_object_begin(&w, ctx->err);
	for (uint16_t col = 0; col < tuple->ncolumns; col++) {
		if (tuple->values[col].kind == 'u')
			continue;
		cw_json_key(&w, ctx->rel->columns[col].name, ctx->err);
		if (write_value(&w, ctx, col, &tuple->values[col]))
			return CW_EPROTO;
	}
	cw_json_object_end(&w, ctx->err);
	return cw_json_finish(&w);
}

int cw_pgoutput_row_change(const cw_pgoutput_t *dec, const cw_pgoutput_msg_t *msg,
	cw_pgoutput_row_t *row, cw_err_t *err)
{
	uint16_t key[CW_PGOUTPUT_MAX_COLUMNS], nkey;
	cw_buf_t doc_id = CW_BUF_INIT, old_doc_id = CW_BUF_INIT, data = CW_BUF_INIT;
	row_ctx_t ctx = {msg, msg->row.relation, err};
	int rc;
	memset(row, 0, sizeof *row);
	if (msg->kind != CW_PGOUTPUT_INSERT && msg->kind != CW_PGOUTPUT_UPDATE &&
	    msg->kind != CW_PGOUTPUT_DELETE)
		return cw_err_set(err, CW_EINVAL, DOMAIN, "pgoutput %s message: not a row message",
			cw_pgoutput_kind_name(msg->kind));
	if ((rc = key_columns(dec, &ctx, key, &nkey)) != 0)
		goto cleanup;
	if (msg->kind == CW_PGOUTPUT_DELETE) {
		row->op = CW_OP_DELETE;
		rc = write_doc_id(&ctx, &msg->row.old_tuple, key, nkey, &doc_id);
		goto cleanup;
	}
	row->op = CW_OP_UPSERT;
	if ((rc = write_doc_id(&ctx, &msg->row.new_tuple, key, nkey, &doc_id)) != 0 ||
	    (rc = write_data(&ctx, &msg->row.new_tuple, &data)) != 0)
		goto cleanup;
	if (msg->row.old_kind != '\0' &&
	    (rc = write_doc_id(&ctx, &msg->row.old_tuple, key, nkey, &old_doc_id)) != 0)
		goto cleanup;
	if (msg->row.old_kind != '\0' && strcmp(cw_buf_cstr(&old_doc_id), cw_buf_cstr(&doc_id)) != 0)
		row->old_doc_id = cw_buf_take(&old_doc_id);
	row->data = cw_buf_take(&data);
cleanup:
	if (rc == 0)
		row->doc_id = cw_buf_take(&doc_id);
	else
		cw_pgoutput_row_clear(row);
	cw_buf_free(&data);
	cw_buf_free(&old_doc_id);
	cw_buf_free(&doc_id);
	return rc;
}

void cw_pgoutput_row_clear(cw_pgoutput_row_t *row)
{
	if (row == NULL)
		return;
	free(row->doc_id);
	free(row->old_doc_id);
	free(row->data);
	memset(row, 0, sizeof *row);
}
