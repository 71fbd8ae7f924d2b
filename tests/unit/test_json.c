/* Unit tests of the JSON writer: structure, strings and UTF-8, numbers, BSON and jansson values. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/json.h"
#include "core/json_fields.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Writes one double as a whole document and returns the text (static). */
static const char *double_text(double value, int *rc)
{
	static char text[64];
	cw_buf_t buf = CW_BUF_INIT;
	cw_json_t w;
	cw_json_init(&w, &buf, CW_JSON_DEFAULT);
	*rc = cw_json_double(&w, value, NULL);
	snprintf(text, sizeof text, "%s", cw_buf_cstr(&buf));
	cw_buf_free(&buf);
	return text;
}

static void doubles_are_shortest_round_trip_text(void **state)
{
	(void)state;
	static const struct {
		double value;
		const char *text;
	} cases[] = {
		{0.1, "0.1"},
		{1e300, "1e300"},
		{5e-324, "5e-324"},
		{-0.0, "-0"},
		{0.0, "0"},
		{1.5, "1.5"},
		{100.0, "100"},
		{-2.75, "-2.75"},
		{1e21, "1e21"},
		{1e-7, "1e-7"},
		{0.1 + 0.2, "0.30000000000000004"},
		{19.99, "19.99"},
		{123456.789, "123456.789"},
		{1.7976931348623157e308, "1.7976931348623157e308"},
		{2.2250738585072014e-308, "2.2250738585072014e-308"},
		{1e-310, "1e-310"},
		{9007199254740993.0, "9007199254740992"},
		{123456789012345678.0, "1.2345678901234568e17"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int rc;
		const char *text = double_text(cases[i].value, &rc);
		assert_int_equal(rc, 0);
		assert_string_equal(text, cases[i].text);
		double back = strtod(text, NULL);
		assert_memory_equal(&back, &cases[i].value, sizeof back);
	}
}

static void doubles_round_trip_for_many_bit_patterns(void **state)
{
	(void)state;
	uint64_t x = 0x9e3779b97f4a7c15u;
	for (int i = 0; i < 20000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		double value;
		memcpy(&value, &x, sizeof value);
		if (!isfinite(value))
			continue;
		char text[CW_JSON_DOUBLE_LEN];
		size_t len = cw_json_format_double(value, text);
		assert_true(len > 0 && len < CW_JSON_DOUBLE_LEN);
		double back = strtod(text, NULL);
		assert_memory_equal(&back, &value, sizeof back);
		assert_true(cw_json_number_valid(text, len));
	}
}

/* Values printf writes without an exponent: the text must be what %.15g gives. */
static void decimal_doubles_match_printf(void **state)
{
	(void)state;
	const double scales[] = {1, 10, 100, 1000, 1e4, 1e6, 3, 7};
	for (size_t s = 0; s < sizeof scales / sizeof scales[0]; s++) {
		for (int i = -30000; i <= 30000; i += 7) {
			double value = i / scales[s] + (s == 5 ? 123456789.0 : 0);
			if (fabs(value) < 1e-4)
				continue;
			char want[64];
			snprintf(want, sizeof want, "%.15g", value);
			if (strtod(want, NULL) != value)
				snprintf(want, sizeof want, "%.16g", value);
			if (strtod(want, NULL) != value)
				snprintf(want, sizeof want, "%.17g", value);
			char got[CW_JSON_DOUBLE_LEN];
			cw_json_format_double(value, got);
			if (strcmp(got, want) != 0)
				fail_msg("%.17g: got %s, want %s", value, got, want);
		}
	}
}

static void nan_and_infinity_are_rejected(void **state)
{
	(void)state;
	double bad[] = {NAN, INFINITY, -INFINITY};
	for (size_t i = 0; i < 3; i++) {
		cw_buf_t buf = CW_BUF_INIT;
		cw_json_t w;
		cw_err_t err;
		cw_json_init(&w, &buf, CW_JSON_DEFAULT);
		assert_int_equal(cw_json_double(&w, bad[i], &err), CW_EINVAL);
		assert_int_equal(err.code, CW_EINVAL);
		assert_non_null(strstr(err.message, "cannot be represented in JSON"));
		assert_int_equal(cw_json_finish(&w), CW_EINVAL);
		assert_int_equal(buf.len, 0);
		cw_buf_free(&buf);
	}
}

static void integers_are_exact(void **state)
{
	(void)state;
	cw_buf_t buf = CW_BUF_INIT;
	cw_json_t w;
	cw_json_init(&w, &buf, CW_JSON_DEFAULT);
	cw_json_array_begin(&w, NULL);
	cw_json_int64(&w, INT64_MIN, NULL);
	cw_json_int64(&w, INT64_MAX, NULL);
	cw_json_int64(&w, 0, NULL);
	cw_json_int64(&w, -1, NULL);
	cw_json_int64(&w, 123456789012345678, NULL);
	cw_json_uint64(&w, UINT64_MAX, NULL);
	cw_json_uint64(&w, 0, NULL);
	cw_json_array_end(&w, NULL);
	assert_int_equal(cw_json_finish(&w), 0);
	assert_string_equal(cw_buf_cstr(&buf),
	                    "[-9223372036854775808,9223372036854775807,0,-1,"
	                    "123456789012345678,18446744073709551615,0]");
	cw_buf_free(&buf);
}

static void structure_places_commas_and_colons(void **state)
{
	(void)state;
	cw_buf_t buf = CW_BUF_INIT;
	cw_json_t w;
	cw_json_init(&w, &buf, CW_JSON_DEFAULT);
	cw_json_object_begin(&w, NULL);
	cw_json_key(&w, "a", NULL);
	cw_json_array_begin(&w, NULL);
	cw_json_int64(&w, 1, NULL);
	cw_json_int64(&w, 2, NULL);
	cw_json_object_begin(&w, NULL);
	cw_json_key(&w, "b", NULL);
	cw_json_null(&w, NULL);
	cw_json_object_end(&w, NULL);
	cw_json_array_begin(&w, NULL);
	cw_json_array_end(&w, NULL);
	cw_json_array_end(&w, NULL);
	cw_json_key(&w, "c", NULL);
	cw_json_bool(&w, true, NULL);
	cw_json_key(&w, "d", NULL);
	cw_json_object_begin(&w, NULL);
	cw_json_object_end(&w, NULL);
	cw_json_key(&w, "e", NULL);
	cw_json_raw(&w, "12.3400", 7, NULL);
	cw_json_key(&w, "f", NULL);
	cw_json_bool(&w, false, NULL);
	cw_json_object_end(&w, NULL);
	assert_int_equal(cw_json_finish(&w), 0);
	assert_string_equal(cw_buf_cstr(&buf),
	                    "{\"a\":[1,2,{\"b\":null},[]],\"c\":true,\"d\":{},\"e\":12.3400,"
	                    "\"f\":false}");
	cw_buf_free(&buf);
}

static void strings_escape_control_characters(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		size_t len;
		const char *out;
	} cases[] = {
		{"plain", 5, "\"plain\""},
		{"", 0, "\"\""},
		{"a\"b\\c", 5, "\"a\\\"b\\\\c\""},
		{"\n\t\r\b\f", 5, "\"\\n\\t\\r\\b\\f\""},
		{"\x01\x1f\x7f", 3, "\"\\u0001\\u001f\\u007f\""},
		{"a\0b", 3, "\"a\\u0000b\""},
		{"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14,
		 "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""},
		{"</script>", 9, "\"</script>\""},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		cw_buf_t buf = CW_BUF_INIT;
		cw_json_t w;
		cw_json_init(&w, &buf, CW_JSON_DEFAULT);
		assert_int_equal(cw_json_string_len(&w, cases[i].in, cases[i].len, NULL), 0);
		assert_string_equal(cw_buf_cstr(&buf), cases[i].out);
		cw_buf_free(&buf);
	}
}

static const struct {
	const char *bytes;
	size_t len;
	size_t bad_at;   /* == len when valid */
} utf8_cases[] = {
	{"", 0, 0},
	{"abc", 3, 3},
	{"\xc2\x80", 2, 2},                 /* U+0080 */
	{"\xdf\xbf", 2, 2},                 /* U+07FF */
	{"\xe0\xa0\x80", 3, 3},             /* U+0800 */
	{"\xe2\x82\xac", 3, 3},             /* euro sign */
	{"\xed\x9f\xbf", 3, 3},             /* U+D7FF, just below the surrogates */
	{"\xee\x80\x80", 3, 3},             /* U+E000, just above */
	{"\xef\xbf\xbf", 3, 3},             /* U+FFFF */
	{"\xf0\x90\x80\x80", 4, 4},         /* U+10000 */
	{"\xf4\x8f\xbf\xbf", 4, 4},         /* U+10FFFF */
	{"\xc0\x80", 2, 0},                 /* overlong NUL */
	{"\xc1\xbf", 2, 0},                 /* overlong */
	{"\xe0\x80\xaf", 3, 0},             /* overlong '/' */
	{"\xe0\x9f\xbf", 3, 0},             /* overlong U+07FF */
	{"\xf0\x8f\xbf\xbf", 4, 0},         /* overlong U+FFFF */
	{"ok\xed\xa0\x80", 5, 2},           /* high surrogate */
	{"\xed\xbf\xbf", 3, 0},             /* low surrogate */
	{"\xf4\x90\x80\x80", 4, 0},         /* U+110000 */
	{"\xf5\x80\x80\x80", 4, 0},         /* lead byte past F4 */
	{"\xff", 1, 0},
	{"\x80", 1, 0},                     /* lone continuation */
	{"abc\xe2\x82", 5, 3},              /* truncated at the end */
	{"\xc3", 1, 0},                     /* truncated */
	{"\xe2\x28\xa1", 3, 0},             /* bad continuation */
	{"a\xf0\x9f\x98", 4, 1},            /* truncated 4-byte */
};

static void utf8_validation_catches_every_malformed_form(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof utf8_cases / sizeof utf8_cases[0]; i++) {
		const char *bytes = utf8_cases[i].bytes;
		size_t len = utf8_cases[i].len;
		bool valid = utf8_cases[i].bad_at == len;
		assert_int_equal(cw_json_utf8_invalid_at(bytes, len), utf8_cases[i].bad_at);
		assert_int_equal(cw_json_validate_utf8(bytes, len), valid);

		cw_buf_t buf = CW_BUF_INIT;
		cw_json_t w;
		cw_err_t err;
		cw_err_clear(&err);
		cw_json_init(&w, &buf, CW_JSON_DEFAULT);
		int rc = cw_json_string_len(&w, bytes, len, &err);
		assert_int_equal(rc, valid ? 0 : CW_EINVAL);
		if (!valid) {
			assert_non_null(strstr(err.message, "string is not valid UTF-8"));
			assert_int_equal(buf.len, 0);
		}
		cw_buf_free(&buf);
	}
}

static void invalid_keys_and_nul_bytes_are_refused(void **state)
{
	(void)state;
	cw_buf_t buf = CW_BUF_INIT;
	cw_json_t w;
	cw_err_t err;
	cw_json_init(&w, &buf, CW_JSON_DEFAULT);
	cw_json_object_begin(&w, NULL);
	cw_json_key(&w, "ok", NULL);
	cw_json_int64(&w, 1, NULL);
	assert_int_equal(cw_json_key(&w, "bad\xc0", &err), CW_EINVAL);
	assert_string_equal(err.message, "key is not valid UTF-8: byte 0xc0 at offset 3");
	/* Sticky: nothing is written after the first failure. */
	assert_int_equal(cw_json_int64(&w, 2, NULL), CW_EINVAL);
	assert_int_equal(cw_json_object_end(&w, NULL), CW_EINVAL);
	assert_string_equal(cw_buf_cstr(&buf), "{\"ok\":1");
	assert_int_equal(cw_json_finish(&w), CW_EINVAL);

	cw_buf_reset(&buf);
	cw_json_init(&w, &buf, CW_JSON_NO_NUL);
	assert_int_equal(cw_json_string_len(&w, "a\0b", 3, &err), CW_EINVAL);
	assert_non_null(strstr(err.message, "NUL byte"));
	cw_buf_free(&buf);
}

static void nesting_is_limited(void **state)
{
	(void)state;
	cw_buf_t buf = CW_BUF_INIT;
	cw_json_t w;
	cw_err_t err;
	cw_json_init(&w, &buf, CW_JSON_DEFAULT);
	for (int i = 0; i < CW_JSON_MAX_DEPTH; i++)
		assert_int_equal(cw_json_array_begin(&w, NULL), 0);
	assert_int_equal(cw_json_array_begin(&w, &err), CW_EINVAL);
	assert_non_null(strstr(err.message, "deeper than 256 levels"));
	cw_buf_free(&buf);
}

static void number_grammar_follows_json(void **state)
{
	(void)state;
	const char *good[] = {"0", "-0", "1", "-12", "1.5", "0.001", "1e5", "1E+5", "-1.2e-30",
	                      "123456789012345678901234567890"};
	const char *bad[] = {"", "-", "01", "1.", ".5", "+1", "1e", "1e+", "NaN", "Infinity",
	                     "0x10", "1 ", " 1", "1.2.3", "--1"};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		assert_true(cw_json_number_valid(good[i], strlen(good[i])));
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_false(cw_json_number_valid(bad[i], strlen(bad[i])));
}

static void dates_format_as_iso8601(void **state)
{
	(void)state;
	static const struct {
		int64_t ms;
		const char *text;   /* "" when out of range */
	} cases[] = {
		{0, "1970-01-01T00:00:00.000Z"},
		{-1, "1969-12-31T23:59:59.999Z"},
		{951782400000, "2000-02-29T00:00:00.000Z"},
		{1714564800123, "2024-05-01T12:00:00.123Z"},
		{253402300799999, "9999-12-31T23:59:59.999Z"},
		{253402300800000, ""},
		{-62167219200000, "0000-01-01T00:00:00.000Z"},
		{-62167219200001, ""},
		{INT64_MAX, ""},
		{INT64_MIN, ""},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char text[CW_JSON_DATE_LEN];
		size_t len = cw_json_format_date(cases[i].ms, text);
		assert_string_equal(text, cases[i].text);
		assert_int_equal(len, strlen(cases[i].text));
	}
}

static char *bson_text(const bson_t *doc, cw_json_bson_mode_t mode, int *rc)
{
	cw_buf_t buf = CW_BUF_INIT;
	cw_json_t w;
	cw_json_init(&w, &buf, CW_JSON_DEFAULT);
	*rc = cw_json_bson_document(&w, doc, mode, NULL);
	return cw_buf_take(&buf);
}

/* A document holding every BSON type. */
static bson_t *every_type(void)
{
	bson_t *doc = bson_new();
	bson_oid_t oid;
	bson_decimal128_t dec;
	bson_t child;
	bson_oid_init_from_string(&oid, "5f1d7a0e2b3c4d5e6f708192");
	bson_decimal128_from_string("12.50", &dec);
	BSON_APPEND_DOUBLE(doc, "d", 1.5);
	BSON_APPEND_DOUBLE(doc, "dint", 3.0);
	BSON_APPEND_DOUBLE(doc, "inf", INFINITY);
	BSON_APPEND_UTF8(doc, "s", "x\ny");
	BSON_APPEND_DOCUMENT_BEGIN(doc, "o", &child);
	BSON_APPEND_INT32(&child, "n", 1);
	bson_append_document_end(doc, &child);
	BSON_APPEND_ARRAY_BEGIN(doc, "a", &child);
	BSON_APPEND_UTF8(&child, "0", "t");
	BSON_APPEND_BOOL(&child, "1", false);
	bson_append_array_end(doc, &child);
	BSON_APPEND_BINARY(doc, "bin", BSON_SUBTYPE_BINARY, (const uint8_t *)"hello", 5);
	BSON_APPEND_UNDEFINED(doc, "u");
	BSON_APPEND_OID(doc, "id", &oid);
	BSON_APPEND_BOOL(doc, "b", true);
	BSON_APPEND_DATE_TIME(doc, "t", 1714564800123);
	BSON_APPEND_DATE_TIME(doc, "old", -1000);
	BSON_APPEND_NULL(doc, "z");
	BSON_APPEND_REGEX(doc, "re", "^a.*", "i");
	BSON_APPEND_CODE(doc, "code", "f()");
	BSON_APPEND_SYMBOL(doc, "sym", "sy");
	BSON_APPEND_INT32(doc, "i32", -7);
	BSON_APPEND_TIMESTAMP(doc, "ts", 1700000000, 3);
	BSON_APPEND_INT64(doc, "i64", 123456789012345678);
	BSON_APPEND_DECIMAL128(doc, "dec", &dec);
	BSON_APPEND_MAXKEY(doc, "max");
	BSON_APPEND_MINKEY(doc, "min");
	return doc;
}

static void bson_writes_relaxed_extended_json(void **state)
{
	(void)state;
	bson_t *doc = every_type();
	int rc;
	char *text = bson_text(doc, CW_JSON_BSON_RELAXED, &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(text,
		"{\"d\":1.5,\"dint\":3,\"inf\":{\"$numberDouble\":\"Infinity\"},\"s\":\"x\\ny\","
		"\"o\":{\"n\":1},\"a\":[\"t\",false],"
		"\"bin\":{\"$binary\":{\"base64\":\"aGVsbG8=\",\"subType\":\"00\"}},"
		"\"u\":{\"$undefined\":true},\"id\":{\"$oid\":\"5f1d7a0e2b3c4d5e6f708192\"},"
		"\"b\":true,\"t\":{\"$date\":\"2024-05-01T12:00:00.123Z\"},"
		"\"old\":{\"$date\":{\"$numberLong\":\"-1000\"}},\"z\":null,"
		"\"re\":{\"$regularExpression\":{\"pattern\":\"^a.*\",\"options\":\"i\"}},"
		"\"code\":{\"$code\":\"f()\"},\"sym\":{\"$symbol\":\"sy\"},\"i32\":-7,"
		"\"ts\":{\"$timestamp\":{\"t\":1700000000,\"i\":3}},\"i64\":123456789012345678,"
		"\"dec\":{\"$numberDecimal\":\"12.50\"},\"max\":{\"$maxKey\":1},"
		"\"min\":{\"$minKey\":1}}");
	free(text);
	bson_destroy(doc);
}

static void bson_canonical_text_reads_back_to_the_same_document(void **state)
{
	(void)state;
	bson_t *doc = every_type();
	bson_error_t error;
	int rc;
	char *text = bson_text(doc, CW_JSON_BSON_CANONICAL, &rc);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(text, "\"i32\":{\"$numberInt\":\"-7\"}"));
	assert_non_null(strstr(text, "\"dint\":{\"$numberDouble\":\"3.0\"}"));
	assert_non_null(strstr(text, "\"t\":{\"$date\":{\"$numberLong\":\"1714564800123\"}}"));
	bson_t *back = bson_new_from_json((const uint8_t *)text, -1, &error);
	assert_non_null(back);
	assert_true(bson_equal(doc, back));
	bson_destroy(back);
	free(text);

	/* Relaxed text is valid extended JSON too. */
	text = bson_text(doc, CW_JSON_BSON_RELAXED, &rc);
	back = bson_new_from_json((const uint8_t *)text, -1, &error);
	assert_non_null(back);
	assert_int_equal(bson_count_keys(back), bson_count_keys(doc));
	bson_destroy(back);
	free(text);
	bson_destroy(doc);
}

static void corrupt_bson_is_a_protocol_error(void **state)
{
	(void)state;
	bson_t *doc = BCON_NEW("a", BCON_INT32(1), "b", BCON_UTF8("hello"), "c", BCON_INT32(3));
	uint8_t bytes[64];
	memcpy(bytes, bson_get_data(doc), doc->len);
	bytes[15] = 200;   /* the string length of "b" now runs past the end */
	bson_t corrupt;
	assert_true(bson_init_static(&corrupt, bytes, doc->len));
	cw_buf_t buf = CW_BUF_INIT;
	cw_json_t w;
	cw_err_t err;
	cw_json_init(&w, &buf, CW_JSON_DEFAULT);
	assert_int_equal(cw_json_bson_document(&w, &corrupt, CW_JSON_BSON_RELAXED, &err),
	                 CW_EPROTO);
	assert_string_equal(err.message, "BSON document is corrupt");
	cw_buf_free(&buf);
	bson_destroy(doc);
}

static void jansson_values_keep_integers_exact(void **state)
{
	(void)state;
	const char *in = "{\"big\":123456789012345678,\"neg\":-9223372036854775808,"
	                 "\"r\":0.1,\"s\":\"\\u00e9\\n\",\"a\":[true,false,null,{}],\"e\":[]}";
	json_error_t jerr;
	json_t *value = json_loads(in, 0, &jerr);
	assert_non_null(value);
	cw_buf_t buf = CW_BUF_INIT;
	cw_json_t w;
	cw_json_init(&w, &buf, CW_JSON_DEFAULT);
	assert_int_equal(cw_json_jansson(&w, value, NULL), 0);
	assert_string_equal(cw_buf_cstr(&buf),
	                    "{\"big\":123456789012345678,\"neg\":-9223372036854775808,"
	                    "\"r\":0.1,\"s\":\"\xc3\xa9\\n\",\"a\":[true,false,null,{}],\"e\":[]}");
	cw_buf_free(&buf);
	json_decref(value);
}

static const char *span(const cw_json_field_t *f)
{
	static char text[256];
	snprintf(text, sizeof text, "%.*s", (int)f->value_len, f->value);
	return text;
}

/* Top-level fields keep their values' text; keys are unescaped; bad objects are refused. */
/* Compaction byte by byte, as the rule says: whitespace outside strings goes, nothing else. */
static size_t compact_by_byte(const char *span, size_t len, char *out)
{
	size_t n = 0;
	bool in_string = false;
	for (size_t i = 0; i < len; i++) {
		char c = span[i];
		if (in_string && c == '\\' && i + 1 < len) {
			out[n++] = c;
			out[n++] = span[++i];
		} else if (in_string || c == '"') {
			in_string = in_string ? c != '"' : true;
			out[n++] = c;
		} else if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
			out[n++] = c;
		}
	}
	return n;
}

/* Any span (malformed ones too: a compaction never reads past its span) compacts as byte by byte. */
static void compaction_keeps_strings_and_drops_whitespace(void **state)
{
	(void)state;
	static const char alphabet[] = " \t\n\"\\a{},:1";
	uint64_t rng = 0x2545f4914f6cdd1du;
	cw_buf_t out = CW_BUF_INIT;
	for (int round = 0; round < 100000; round++) {
		char span[48], want[48];
		size_t len = (size_t)(round % 48);
		for (size_t i = 0; i < len; i++) {
			rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
			span[i] = alphabet[rng % (sizeof alphabet - 1)];
		}
		size_t n = compact_by_byte(span, len, want);
		cw_buf_reset(&out);
		cw_json_compact(span, len, &out);
		assert_int_equal(out.len, n);
		assert_memory_equal(out.data, want, n);
	}
	cw_buf_free(&out);
}

static void fields_split_an_object_without_touching_values(void **state)
{
	(void)state;
	cw_json_fields_t fields;
	cw_json_fields_init(&fields);
	cw_err_t err = {0};
	const char *text = " { \"a\" : 2.50 , \"k\\u00e9y\": \"x\\ty\", \"o\": {\"n\": [1, 1e400]},"
	                   " \"z\": null, \"a\": 123456789012345678901234567890 } ";
	assert_int_equal(cw_json_fields_parse(&fields, text, &err), 0);
	assert_int_equal(fields.len, 4);
	assert_string_equal(span(&fields.items[0]), "123456789012345678901234567890");   /* last wins */
	assert_int_equal(fields.items[1].key_len, 4);
	assert_memory_equal(fields.items[1].key, "k\xc3\xa9y", 4);
	assert_true(fields.items[1].escaped);
	assert_string_equal(span(&fields.items[2]), "{\"n\": [1, 1e400]}");
	assert_int_equal(fields.items[2].kind, CW_JSON_KIND_OBJECT);
	assert_int_equal(fields.items[3].kind, CW_JSON_KIND_NULL);
	cw_buf_t out = CW_BUF_INIT;
	cw_json_string_unescape(fields.items[1].value, fields.items[1].value_len, &out);
	assert_string_equal(cw_buf_cstr(&out), "x\ty");
	cw_buf_reset(&out);
	cw_json_string_unescape("\"\\ud83d\\ude80 \\\" \\\\ \\/ \\ud800\"", 30, &out);
	assert_string_equal(cw_buf_cstr(&out), "\xf0\x9f\x9a\x80 \" \\ / \xef\xbf\xbd");
	cw_buf_reset(&out);
	cw_json_compact(" { \"a b\" : [ 1 , 2.50 ] } ", 27, &out);
	assert_string_equal(cw_buf_cstr(&out), "{\"a b\":[1,2.50]}");
	/* Spaces, escaped quotes and backslashes inside strings are kept. */
	const char *strings = "{ \"k\" : \"a \\\"b\\\" \\\\ c \" , \"e\" : \"\" , \"t\" : true }";
	cw_buf_reset(&out);
	cw_json_compact(strings, strlen(strings), &out);
	assert_string_equal(cw_buf_cstr(&out),
	                    "{\"k\":\"a \\\"b\\\" \\\\ c \",\"e\":\"\",\"t\":true}");
	cw_buf_free(&out);
	cw_json_fields_clear(&fields);
	static const char *const bad[] = {
		"", "[1]", "{", "{\"a\"}", "{\"a\": }", "{\"a\": 01}", "{\"a\": [1}", "{\"a\": \"\\x\"}",
		"{\"a\": 1} x", "{\"a\": 1,}", "{\"a\": tru}", "{\"a\": \"unterminated}",
		"{\"a\": nul}", "{\"a\": fals}", "{\"a\": e1}", "{\"a\": +1}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cw_json_fields_init(&fields);
		if (cw_json_fields_parse(&fields, bad[i], &err) != CW_EINVAL)
			fail_msg("accepted %s", bad[i]);
		cw_json_fields_clear(&fields);
	}
}

static void nested_values_split_into_members_and_elements(void **state)
{
	(void)state;
	cw_json_fields_t top, inner;
	cw_json_fields_init(&top);
	cw_err_t err = {0};
	const char *text = "{\"o\": {\"n\": [1, \"a\\\"b\", {\"k\": 2.50}, []], \"m\": 1, \"m\": 3}}";
	assert_int_equal(cw_json_fields_parse(&top, text, &err), 0);
	cw_json_fields_init(&inner);
	assert_int_equal(cw_json_fields_parse_nested(&inner, top.items[0].value, &err), 0);
	assert_int_equal(inner.len, 2);                                    /* m: the last wins */
	assert_string_equal(span(&inner.items[1]), "3");
	const char *array = inner.items[0].value;
	cw_json_fields_clear(&inner);
	cw_json_fields_init(&inner);
	assert_int_equal(cw_json_fields_parse_nested(&inner, array, &err), 0);
	assert_int_equal(inner.len, 4);
	assert_int_equal(inner.items[0].key_len, 0);
	assert_string_equal(span(&inner.items[1]), "\"a\\\"b\"");
	assert_true(inner.items[1].escaped);
	assert_string_equal(span(&inner.items[2]), "{\"k\": 2.50}");
	assert_int_equal(inner.items[3].kind, CW_JSON_KIND_ARRAY);
	cw_json_fields_clear(&inner);
	cw_json_fields_init(&inner);
	assert_int_equal(cw_json_fields_parse_nested(&inner, "1", &err), CW_EINVAL);
	cw_json_fields_clear(&inner);
	cw_json_fields_clear(&top);
	assert_true(cw_json_span_has_nul("\"a\\u0000\"", 10));
	assert_false(cw_json_span_has_nul("\"a\\\\u0000\"", 11));   /* an escaped backslash */
	assert_false(cw_json_span_has_nul("\"\\u00001\"", 6));        /* cut before its end */
	/* Nesting past the limit is named as such. */
	cw_buf_t deep = CW_BUF_INIT;
	cw_buf_append_str(&deep, "{\"a\":");
	for (int i = 0; i < 300; i++)
		cw_buf_append_char(&deep, '[');
	for (int i = 0; i < 300; i++)
		cw_buf_append_char(&deep, ']');
	cw_buf_append_char(&deep, '}');
	cw_json_fields_init(&top);
	assert_int_equal(cw_json_fields_parse(&top, cw_buf_cstr(&deep), &err), CW_EINVAL);
	assert_non_null(strstr(err.message, "nests deeper than 256 levels"));
	cw_json_fields_clear(&top);
	cw_buf_free(&deep);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(doubles_are_shortest_round_trip_text),
		cmocka_unit_test(doubles_round_trip_for_many_bit_patterns),
		cmocka_unit_test(decimal_doubles_match_printf),
		cmocka_unit_test(nan_and_infinity_are_rejected),
		cmocka_unit_test(integers_are_exact),
		cmocka_unit_test(structure_places_commas_and_colons),
		cmocka_unit_test(strings_escape_control_characters),
		cmocka_unit_test(utf8_validation_catches_every_malformed_form),
		cmocka_unit_test(invalid_keys_and_nul_bytes_are_refused),
		cmocka_unit_test(nesting_is_limited),
		cmocka_unit_test(number_grammar_follows_json),
		cmocka_unit_test(dates_format_as_iso8601),
		cmocka_unit_test(bson_writes_relaxed_extended_json),
		cmocka_unit_test(bson_canonical_text_reads_back_to_the_same_document),
		cmocka_unit_test(corrupt_bson_is_a_protocol_error),
		cmocka_unit_test(jansson_values_keep_integers_exact),
		cmocka_unit_test(fields_split_an_object_without_touching_values),
		cmocka_unit_test(compaction_keeps_strings_and_drops_whitespace),
		cmocka_unit_test(nested_values_split_into_members_and_elements),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
