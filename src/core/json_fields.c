/* This file contains the reader of a JSON object's top-level fields (json_fields.h). */
#include "core/json_fields.h"

#include "core/json.h"
#include "core/mem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void cw_json_fields_init(cw_json_fields_t *fields)
{
	fields->items = fields->inline_items;
	fields->len = 0;
	fields->cap = CW_JSON_FIELDS_INLINE;
}

void cw_json_fields_clear(cw_json_fields_t *fields)
{
	if (fields == NULL || fields->items == NULL)
		return;
	for (size_t i = 0; i < fields->len; i++)
		if (fields->items[i].key_owned)
			free((char *)fields->items[i].key);
	if (fields->items != fields->inline_items)
		free(fields->items);
	fields->items = NULL;
	fields->len = 0;
	fields->cap = 0;
}

static cw_json_field_t *push(cw_json_fields_t *fields)
{
	if (fields->len == fields->cap) {
		size_t cap = fields->cap ? fields->cap * 2 : CW_JSON_FIELDS_INLINE;
		if (fields->items == fields->inline_items) {
			cw_json_field_t *items = cw_xmalloc(cap * sizeof *items);
			memcpy(items, fields->inline_items, fields->len * sizeof *items);
			fields->items = items;
		} else {
			fields->items = cw_xrealloc(fields->items, cap * sizeof *fields->items);
		}
		fields->cap = cap;
	}
	return &fields->items[fields->len++];
}

static const char *skip_ws(const char *s)
{
	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	return s;
}

/* The bytes that end a run of a string's plain bytes: control characters (NUL too), '"', '\\'. */
static const bool string_stop[256] = {
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	['"'] = 1, ['\\'] = 1,
};

/* Past the string opening at s; NULL when it is not a valid JSON string. */
static const char *skip_string(const char *s, bool *escaped)
{
	for (s++;; s++) {
		/* Plain bytes, four a step (each is checked before the next is read). */
		while (!string_stop[(unsigned char)s[0]] && !string_stop[(unsigned char)s[1]] &&
		       !string_stop[(unsigned char)s[2]] && !string_stop[(unsigned char)s[3]])
			s += 4;
		while (!string_stop[(unsigned char)*s])
			s++;
		unsigned char c = (unsigned char)*s;
		if (c == '"')
			return s + 1;
		if (c < 0x20)
			return NULL;   /* NUL (the end) or an unescaped control character */
		if (c != '\\')
			continue;
		*escaped = true;
		c = (unsigned char)*++s;
		if (c == 'u') {
			for (int k = 1; k <= 4; k++)
				if (s[k] == '\0' || strchr("0123456789abcdefABCDEF", s[k]) == NULL)
					return NULL;
			s += 4;
		} else if (c == '\0' || strchr("\"\\/bfnrt", c) == NULL) {
			return NULL;
		}
	}
}

/* Past the number or literal at s; NULL when it is neither. */
static const char *skip_scalar(const char *s, cw_json_kind_t *kind)
{
	static const struct { const char *text; size_t len; cw_json_kind_t kind; } literals[] = {
		{"true", 4, CW_JSON_KIND_TRUE}, {"false", 5, CW_JSON_KIND_FALSE},
		{"null", 4, CW_JSON_KIND_NULL},
	};
	/* Only a literal's first letter sends a value to the literals (numbers are most values). */
	for (size_t k = 0; *s >= 'f' && k < sizeof literals / sizeof literals[0]; k++) {
		if (*s == literals[k].text[0] && strncmp(s, literals[k].text, literals[k].len) == 0) {
			*kind = literals[k].kind;
			return s + literals[k].len;
		}
	}
	const char *end = s;
	while ((*end >= '0' && *end <= '9') || *end == '.' || *end == '-' || *end == '+' ||
	       *end == 'e' || *end == 'E')
		end++;
	*kind = CW_JSON_KIND_NUMBER;
	return end > s && cw_json_number_valid(s, (size_t)(end - s)) ? end : NULL;
}

/* Past the object or array opening at s; NULL when malformed (*too_deep when nested too deep). */
static const char *skip_nested(const char *s, bool *too_deep)
{
	char open[CW_JSON_MAX_DEPTH];
	size_t depth = 0;
	do {
		bool escaped = false;
		cw_json_kind_t kind;
		s = skip_ws(s);
		switch (*s) {
		case '"':
			s = skip_string(s, &escaped);
			break;
		case '{':
		case '[':
			if (depth == sizeof open) {
				*too_deep = true;
				return NULL;
			}
			open[depth++] = *s == '{' ? '}' : ']';
			s++;
			break;
		case '}':
		case ']':
			if (open[--depth] != *s)
				return NULL;
			s++;
			break;
		case ',':
		case ':':
			s++;
			break;
		default:
			s = skip_scalar(s, &kind);
			break;
		}
	} while (s != NULL && depth > 0);
	return s;
}

static int not_object(cw_err_t *err, const char *what)
{
	return cw_err_set(err, CW_EINVAL, "json", "data is not a JSON object: %s", what);
}

/*
 * Reads the members of the object or array opening at s into fields (an
 * array's elements get empty keys). Returns the position past its close, or
 * NULL with err.
 */
static const char *parse_members(cw_json_fields_t *fields, const char *s, cw_err_t *err)
{
	bool object = *s == '{';
	char close = object ? '}' : ']';
	s = skip_ws(s + 1);
	if (*s == close)
		return s + 1;
	for (;;) {
		const char *key = "";
		size_t key_len = 0;
		char *owned_key = NULL;
		if (object) {
			if (*s != '"') {
				not_object(err, "a key is not a string");
				return NULL;
			}
			bool key_escaped = false;
			const char *key_end = skip_string(s, &key_escaped);
			if (key_end == NULL) {
				not_object(err, "invalid key");
				return NULL;
			}
			key = s + 1;
			key_len = (size_t)(key_end - s - 2);
			if (key_escaped) {
				cw_buf_t buf = CW_BUF_INIT;
				cw_json_string_unescape(s, (size_t)(key_end - s), &buf);
				key_len = buf.len;
				key = owned_key = cw_buf_take(&buf);
			}
			s = skip_ws(key_end);
			if (*s++ != ':') {
				free(owned_key);
				not_object(err, "a key without ':'");
				return NULL;
			}
			s = skip_ws(s);
		}
		const char *value = s, *end;
		bool escaped = false, too_deep = false;
		cw_json_kind_t kind;
		if (*s == '"') {
			kind = CW_JSON_KIND_STRING;
			end = skip_string(s, &escaped);
		} else if (*s == '{' || *s == '[') {
			kind = *s == '{' ? CW_JSON_KIND_OBJECT : CW_JSON_KIND_ARRAY;
			end = skip_nested(s, &too_deep);
		} else {
			end = skip_scalar(s, &kind);
		}
		if (end == NULL) {
			free(owned_key);
			if (too_deep)
				cw_err_set(err, CW_EINVAL, "json", "data nests deeper than %d levels",
				           CW_JSON_MAX_DEPTH);
			else
				not_object(err, "invalid value");
			return NULL;
		}
		cw_json_field_t field = {key, key_len, value, (size_t)(end - value), kind, escaped,
		                         owned_key != NULL};
		cw_json_field_t *same =
			object ? (cw_json_field_t *)cw_json_fields_get(fields, key, key_len) : NULL;
		if (same != NULL) {   /* a repeated key: the last value wins, as in jansson */
			if (field.key_owned)
				free(owned_key);
			field.key = same->key;
			field.key_owned = same->key_owned;
			*same = field;
		} else {
			*push(fields) = field;
		}
		s = skip_ws(end);
		if (*s == ',') {
			s = skip_ws(s + 1);
			continue;
		}
		if (*s == close)
			return s + 1;
		not_object(err, object ? "expected ',' or '}'" : "expected ',' or ']'");
		return NULL;
	}
}

int cw_json_fields_parse(cw_json_fields_t *fields, const char *text, cw_err_t *err)
{
	const char *s = skip_ws(text);
	if (*s != '{')
		return not_object(err, "it does not open with '{'");
	s = parse_members(fields, s, err);
	if (s == NULL)
		return CW_EINVAL;
	return *skip_ws(s) == '\0' ? 0 : not_object(err, "text after the object");
}

int cw_json_fields_parse_nested(cw_json_fields_t *fields, const char *span, cw_err_t *err)
{
	if (*span != '{' && *span != '[')
		return not_object(err, "it is neither an object nor an array");
	return parse_members(fields, span, err) == NULL ? CW_EINVAL : 0;
}

bool cw_json_span_has_nul(const char *span, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (span[i] != '\\')
			continue;
		if (span[i + 1] == 'u' && i + 5 < len && memcmp(span + i + 2, "0000", 4) == 0)
			return true;
		i++;   /* the escaped character is not a backslash of its own */
	}
	return false;
}

const cw_json_field_t *cw_json_fields_get(const cw_json_fields_t *fields, const char *key,
                                          size_t key_len)
{
	for (size_t i = 0; i < fields->len; i++)
		if (fields->items[i].key_len == key_len && memcmp(fields->items[i].key, key, key_len) == 0)
			return &fields->items[i];
	return NULL;
}

void cw_json_fields_merge(cw_json_fields_t *into, const cw_json_fields_t *later)
{
	for (size_t i = 0; i < later->len; i++) {
		cw_json_field_t field = later->items[i];
		cw_json_field_t *same = (cw_json_field_t *)cw_json_fields_get(into, field.key,
		                                                               field.key_len);
		if (same != NULL) {
			field.key = same->key;
			field.key_owned = same->key_owned;
			*same = field;
			continue;
		}
		if (field.key_owned) {
			char *key = cw_xmalloc(field.key_len + 1);
			memcpy(key, field.key, field.key_len);
			key[field.key_len] = '\0';
			field.key = key;
		}
		*push(into) = field;
	}
}

static unsigned hex4(const char *s)
{
	unsigned v = 0;
	for (int k = 0; k < 4; k++) {
		char c = s[k];
		v = v * 16 + (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
	}
	return v;
}

static void append_utf8(cw_buf_t *out, uint32_t cp)
{
	char b[4];
	size_t n;
	if (cp < 0x80) {
		b[0] = (char)cp, n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xC0 | cp >> 6), b[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xE0 | cp >> 12), b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		b[2] = (char)(0x80 | (cp & 0x3F)), n = 3;
	} else {
		b[0] = (char)(0xF0 | cp >> 18), b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), b[3] = (char)(0x80 | (cp & 0x3F)), n = 4;
	}
	cw_buf_append(out, b, n);
}

void cw_json_string_unescape(const char *span, size_t len, cw_buf_t *out)
{
	const char *s = span + 1, *end = span + len - 1;   /* inside the quotes */
	while (s < end) {
		const char *run = s;
		while (s < end && *s != '\\')
			s++;
		cw_buf_append(out, run, (size_t)(s - run));
		if (s >= end)
			break;
		char c = s[1];
		s += 2;
		switch (c) {
		case 'b': cw_buf_append_char(out, '\b'); break;
		case 'f': cw_buf_append_char(out, '\f'); break;
		case 'n': cw_buf_append_char(out, '\n'); break;
		case 'r': cw_buf_append_char(out, '\r'); break;
		case 't': cw_buf_append_char(out, '\t'); break;
		case 'u': {
			uint32_t cp = hex4(s);
			s += 4;
			if (cp >= 0xD800 && cp <= 0xDBFF && end - s >= 6 && s[0] == '\\' && s[1] == 'u') {
				uint32_t low = hex4(s + 2);
				if (low >= 0xDC00 && low <= 0xDFFF) {
					cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
					s += 6;
				}
			}
			if (cp >= 0xD800 && cp <= 0xDFFF)
				cp = 0xFFFD;   /* a lone surrogate has no UTF-8 form */
			append_utf8(out, cp);
			break;
		}
		default:   /* \" \\ \/ */
			cw_buf_append_char(out, c);
			break;
		}
	}
}

/* The bytes that end a run of a string's bytes while compacting: '"' and '\\'. */
static const bool compact_stop[256] = {['"'] = 1, ['\\'] = 1};

/* Past the string opening at span[i] (its closing quote, or len when it has none). */
static size_t string_end(const char *span, size_t i, size_t len)
{
	for (i++; i < len; i += 2) {
		/* Plain bytes, four a step (each is checked before the next is read). */
		while (i + 4 <= len && !compact_stop[(unsigned char)span[i]] &&
		       !compact_stop[(unsigned char)span[i + 1]] &&
		       !compact_stop[(unsigned char)span[i + 2]] &&
		       !compact_stop[(unsigned char)span[i + 3]])
			i += 4;
		while (i < len && !compact_stop[(unsigned char)span[i]])
			i++;
		if (i < len && span[i] == '"')
			return i + 1;
		/* a backslash: it and the byte it escapes (the loop's step) */
	}
	return len;
}

void cw_json_compact(const char *span, size_t len, cw_buf_t *out)
{
	/* Written in place: the output is never longer than the span. */
	cw_buf_reserve(out, len);
	char *dst = out->data + out->len;
	for (size_t i = 0; i < len;) {
		char c = span[i];
		if (c == '"') {
			/* A string is copied whole, its spaces and escapes as they are. */
			size_t end = string_end(span, i, len);
			memmove(dst, span + i, end - i);
			dst += end - i;
			i = end;
			continue;
		}
		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			*dst++ = c;
		i++;
	}
	out->len = (size_t)(dst - out->data);
	out->data[out->len] = '\0';
}
