/* This file contains the row digests verify compares (row_digest.h). */
#include "verify/row_digest.h"

#include "apply/layout.h"
#include "core/json.h"
#include "core/json_fields.h"
#include "core/mem.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FNV_OFFSET 14695981039346656037ULL
#define FNV_PRIME 1099511628211ULL
/* What a NULL digests to: no canonical text hashes to a value chosen this way. */
#define NULL_DIGEST 0x6e756c6c6e756c6cULL

/* A finalizer that spreads every input bit over the output (splitmix64's). */
static uint64_t mix(uint64_t h)
{
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h;
}

/* FNV-1a over the bytes, for short names. */
static uint64_t fnv(uint64_t h, const void *bytes, size_t len)
{
	const unsigned char *p = bytes;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= FNV_PRIME;
	}
	return h;
}

/* Eight bytes a step, each word multiplied in and mixed (values can be long). */
static uint64_t words(const void *bytes, size_t len)
{
	const unsigned char *p = bytes;
	uint64_t h = FNV_OFFSET ^ (len * 0x9e3779b97f4a7c15ULL);
	size_t i = 0;
	for (; len - i >= 8; i += 8) {
		uint64_t word;
		memcpy(&word, p + i, 8);
		h = (h ^ (word * 0x9e3779b97f4a7c15ULL)) * FNV_PRIME;
		h ^= h >> 29;
	}
	uint64_t tail = 0;
	memcpy(&tail, p + i, len - i);
	return h ^ (tail * 0xc2b2ae3d27d4eb4fULL);
}

uint64_t cw_digest_bytes(const void *bytes, size_t len)
{
	return mix(words(bytes, len));
}

uint64_t cw_digest_value(const cw_typed_value_t *value)
{
	char text[64];
	switch (value->kind) {
	case CW_TYPED_NULL:
		return NULL_DIGEST;
	case CW_TYPED_INTEGER:
		return cw_digest_bytes(text, (size_t)snprintf(text, sizeof text, "%lld",
		                                               (long long)value->integer));
	case CW_TYPED_REAL:
		if (value->real == trunc(value->real) && fabs(value->real) < 9.2e18)
			return cw_digest_bytes(text, (size_t)snprintf(text, sizeof text, "%lld",
			                                               (long long)value->real));
		return cw_digest_bytes(text, cw_json_format_double(value->real, text));
	case CW_TYPED_TEXT:
		return cw_digest_bytes(value->text, value->text_len);
	}
	return NULL_DIGEST;
}

uint64_t cw_digest_pair(const char *name, size_t name_len, uint64_t value_digest)
{
	return mix(fnv(FNV_OFFSET, name, name_len) ^ value_digest);
}

uint64_t cw_digest_row(const char *doc_id, const uint64_t *columns, size_t ncolumns)
{
	uint64_t h = fnv(FNV_OFFSET, doc_id, strlen(doc_id));
	for (size_t i = 0; i < ncolumns; i++)
		h = mix(h ^ columns[i]) + i;
	return mix(h);
}

uint64_t cw_digest_row_pairs(const char *doc_id, uint64_t pairs_sum)
{
	return mix(fnv(FNV_OFFSET, doc_id, strlen(doc_id)) ^ mix(pairs_sum));
}

size_t cw_digest_columns(const cw_entity_t *entity)
{
	switch (cw_layout_of(entity)) {
	case CW_LAYOUT_TYPED: return entity->ncolumns;
	case CW_LAYOUT_DOCUMENT: return 1;
	case CW_LAYOUT_DYNAMIC: return 0;
	}
	return 0;
}

static uint64_t field_digest(const cw_json_field_t *field, cw_column_type_t type,
                             cw_decimal_mode_t mode)
{
	if (field == NULL)
		return NULL_DIGEST;
	cw_typed_value_t value;
	cw_typed_value_from_field(field, type, mode, &value);
	uint64_t digest = cw_digest_value(&value);
	free(value.owned);
	return digest;
}

int cw_digest_data(const cw_entity_t *entity, cw_decimal_mode_t mode, const char *doc_id,
                   const char *data, uint64_t *row, uint64_t *columns, cw_err_t *err)
{
	cw_json_fields_t fields;
	cw_json_fields_init(&fields);
	int rc = cw_json_fields_parse(&fields, data, err);
	if (rc != 0)
		goto done;
	cw_layout_kind_t layout = cw_layout_of(entity);
	if (layout == CW_LAYOUT_DYNAMIC) {
		uint64_t sum = 0;
		for (size_t i = 0; i < fields.len; i++) {
			const cw_json_field_t *f = &fields.items[i];
			if (f->kind == CW_JSON_KIND_NULL || cw_layout_key_is_id(f->key, f->key_len))
				continue;
			sum += cw_digest_pair(f->key, f->key_len, field_digest(f, CW_COL_ANY, mode));
		}
		*row = cw_digest_row_pairs(doc_id, sum);
		goto done;
	}
	uint64_t local[64];
	size_t n = cw_digest_columns(entity);
	uint64_t *digests = columns ? columns : n <= 64 ? local : cw_xmalloc(n * sizeof *digests);
	if (layout == CW_LAYOUT_DOCUMENT) {
		digests[0] = field_digest(cw_json_fields_get(&fields, CW_LAYOUT_DOC_COLUMN,
		                                             strlen(CW_LAYOUT_DOC_COLUMN)),
		                          CW_COL_JSONB, mode);
	} else {
		for (size_t i = 0; i < n; i++) {
			const cw_column_t *c = &entity->columns[i];
			digests[i] = field_digest(cw_json_fields_get(&fields, c->name, strlen(c->name)),
			                          c->type, mode);
		}
	}
	*row = cw_digest_row(doc_id, digests, n);
	if (digests != columns && digests != local)
		free(digests);
done:
	cw_json_fields_clear(&fields);
	return rc;
}
