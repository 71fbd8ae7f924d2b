/*
 * This file contains the seeded generator of kazaam test cases the
 * differential test (test_kazaam_diff.c) and the benchmark share: random
 * documents that follow one shape (scalars s1..s3, an object o1, a list of
 * objects l1, a list of scalars n1, timestamps ts, tl, tu) and random specs
 * whose paths follow that shape, so kazaam and cachewarp are compared where
 * kazaam's own output is deterministic:
 *
 * - keys an operation writes in one step (shift, default, coalesce, uuid,
 *   timestamp with several keys) are kazaam's Go map order, which changes
 *   from run to run: such cases are marked unordered, and the keys they
 *   write never overlap nor feed each other;
 * - "inplace" shift comes first only, and "over" never fails inside, where
 *   kazaam's output depends on its buffer handling or it drops the error.
 *
 * Each case is one JSON line: {"name", "spec", "input", "ordered", "shape"};
 * "shape" marks cases whose output holds the clock or random UUIDs.
 */
#ifndef CW_TEST_KAZAAM_CASES_H
#define CW_TEST_KAZAAM_CASES_H

#include "core/buf.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef struct kc_rng {
	uint64_t state;
} kc_rng_t;

static inline uint64_t kc_next(kc_rng_t *rng)
{
	/* xorshift64* */
	rng->state ^= rng->state >> 12;
	rng->state ^= rng->state << 25;
	rng->state ^= rng->state >> 27;
	return rng->state * 2685821657736338717ULL;
}

static inline size_t kc_below(kc_rng_t *rng, size_t n)
{
	return (size_t)(kc_next(rng) % n);
}

static inline bool kc_chance(kc_rng_t *rng, unsigned percent)
{
	return kc_below(rng, 100) < percent;
}

#define KC_PICK(rng, array) ((array)[kc_below((rng), sizeof(array) / sizeof((array)[0]))])

static const char *const kc_scalars[] = {
	"2.50", "9007199254740993", "123456789012345678901234567890", "-0.0", "1e5", "0", "-17",
	"3.14159265358979323846", "1E-7", "\"abc\"", "\"x y\"", "\"q\\\"uote\"", "\"caf\\u00e9\"",
	"\"\"", "\"null\"", "true", "false", "null",
};

static const char *const kc_times[] = {
	"\"2023-05-01T12:34:56Z\"", "\"2023-05-01T12:34:56+02:00\"",
	"\"1999-12-31T23:59:59.123456789-05:30\"", "\"2024-02-29T00:00:00Z\"", "\"not a time\"",
};

static inline void kc_scalar(kc_rng_t *rng, cw_buf_t *out)
{
	cw_buf_append_str(out, KC_PICK(rng, kc_scalars));
}

/* An object of scalars under keys s1, s2 (each present most of the time). */
static inline void kc_small_object(kc_rng_t *rng, cw_buf_t *out)
{
	cw_buf_append_char(out, '{');
	bool first = true;
	for (int k = 1; k <= 2; k++) {
		if (!kc_chance(rng, 85))
			continue;
		cw_buf_appendf(out, "%s\"s%d\":", first ? "" : ",", k);
		kc_scalar(rng, out);
		first = false;
	}
	cw_buf_append_char(out, '}');
}

/* An array of fewer than limit elements that element writes. */
static inline void kc_list(kc_rng_t *rng, cw_buf_t *out, size_t limit,
                           void (*element)(kc_rng_t *, cw_buf_t *))
{
	size_t n = kc_below(rng, limit);
	cw_buf_append_char(out, '[');
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			cw_buf_append_char(out, ',');
		element(rng, out);
	}
	cw_buf_append_char(out, ']');
}

/* A document of the shape described at the top. */
static inline void kc_document(kc_rng_t *rng, cw_buf_t *out)
{
	cw_buf_append_char(out, '{');
	bool first = true;
#define KC_KEY(name)                                                                   \
	do {                                                                           \
		cw_buf_appendf(out, "%s\"%s\":", first ? "" : ",", name);              \
		first = false;                                                         \
	} while (0)
	for (int k = 1; k <= 3; k++) {
		if (!kc_chance(rng, 85))
			continue;
		char name[4];
		snprintf(name, sizeof name, "s%d", k);
		KC_KEY(name);
		kc_scalar(rng, out);
	}
	if (kc_chance(rng, 85)) {
		KC_KEY("o1");
		cw_buf_append_str(out, "{\"s1\":");
		kc_scalar(rng, out);
		cw_buf_append_str(out, ",\"o2\":");
		kc_small_object(rng, out);
		cw_buf_append_str(out, ",\"n1\":");
		kc_list(rng, out, 5, kc_scalar);
		cw_buf_append_char(out, '}');
	}
	if (kc_chance(rng, 85)) {
		KC_KEY("l1");
		kc_list(rng, out, 4, kc_small_object);
	}
	if (kc_chance(rng, 85)) {
		KC_KEY("n1");
		kc_list(rng, out, 5, kc_scalar);
	}
	if (kc_chance(rng, 70)) {
		KC_KEY("ts");
		cw_buf_append_str(out, KC_PICK(rng, kc_times));
	}
	if (kc_chance(rng, 50)) {
		KC_KEY("tl");
		cw_buf_appendf(out, "[%s,%s]", kc_times[kc_below(rng, 4)], kc_times[kc_below(rng, 4)]);
	}
	if (kc_chance(rng, 50)) {
		KC_KEY("tu");
		cw_buf_append_str(out, kc_chance(rng, 80) ? "\"1500000000\"" : "\"-86400\"");
	}
#undef KC_KEY
	cw_buf_append_char(out, '}');
}

/* Paths that read the document's shape (any kind of value). */
static const char *const kc_read_paths[] = {
	"s1", "s2", "s3", "o1", "o1.s1", "o1.o2", "o1.o2.s1", "o1.o2.s2", "o1.n1", "o1.n1[1]",
	"o1.n1[*]", "l1", "l1[0]", "l1[1].s1", "l1[*].s1", "l1[*].s2", "l1[*]", "n1[0]", "n1[2]",
	"n1[*]", "missing", "o1.missing", "l1[5].s1", "missing[*].x", "ts", "tl[*]", "s1.deeper",
};

/* Paths that read scalars (or lists of them): what concat and uuid names read. */
static const char *const kc_scalar_paths[] = {
	"s1", "s2", "s3", "o1.s1", "o1.o2.s1", "o1.n1[1]", "o1.n1[*]", "l1[1].s1", "l1[*].s1",
	"n1[0]", "n1[*]", "missing", "ts",
};

/* Paths delete takes (no wildcard). */
static const char *const kc_delete_paths[] = {
	"s1", "s2", "o1.s1", "o1.o2", "o1.o2.s2", "l1[0]", "l1[1].s1", "n1[0]", "n1[3]", "missing",
	"o1.n1[0]", "s1.deeper",
};

/*
 * Where a single-key operation writes: new keys and keys of the document. The
 * last one, a wildcard, only for values the operation makes (default, uuid):
 * kazaam writes a value it read from the document to each element from a
 * buffer its own first write may have overwritten.
 */
static const char *const kc_write_paths[] = {
	"t1", "t2.k2", "t3.k3.c", "t4[2]", "t5[+]", "t6[-]", "t1[0].x", "s1", "o1.new", "o1.s1",
	"l1[0].new", "n1[+]", "n1[-]", "n1[6]", "s1.deeper", "o1.o2.s1", "l1[1]", "l1[*].w",
};
#define KC_WRITE_PATHS_READ (sizeof kc_write_paths / sizeof kc_write_paths[0] - 1)

/* Where a key of a several-key operation writes: keys nothing reads, one per first segment. */
static const char *const kc_fresh_paths[][2] = {
	{"t1", "t1.k1"}, {"t2", "t2[1]"}, {"t3", "t3.k3.c"}, {"t4", "t4[+]"}, {"t5", "t5[0].x"},
};

static const char *const kc_defaults[] = {
	"2.5", "17", "-3", "0.125", "true", "null", "\"str\"", "\"a b\"", "{\"b\":1,\"a\":[2,\"x\"]}",
	"[1,{\"k\":\"v\"}]", "{}", "[]",
};

static const char *const kc_layouts[] = {
	"2006-01-02", "Jan _2 15:04:05", "Monday, 02-Jan-06 15:04:05 MST", "3:04PM",
	"2006-01-02T15:04:05.000Z07:00", "$unix", "20060102150405", "Mon Jan 2 15:04:05 -0700 MST 2006",
	".999 05 pm", "January 2, 2006 at 3:04:05.000000 (Z0700)", "06/1/2 15h04 -07:00:00",
	"Mon, 02 Jan 2006 15:04:05 MST", "3:04:05PM Z07 -07 Z070000 -07:00:00",
	"Jan _2 15:04:05,000000", "2006-01-02T15:04:05.999999999Z07:00",
};

/* A path written with separator instead of ".". */
static inline void kc_path(cw_buf_t *out, const char *path, const char *separator)
{
	cw_buf_append_char(out, '"');
	for (const char *c = path; *c != '\0'; c++)
		if (*c == '.')
			cw_buf_append_str(out, separator);
		else
			cw_buf_append_char(out, *c);
	cw_buf_append_char(out, '"');
}

/* Key number i of a spec object: the comma before all but the first, the path, the colon. */
static inline void kc_spec_key(cw_buf_t *out, size_t i, const char *path, const char *separator)
{
	cw_buf_append_str(out, i > 0 ? "," : "");
	kc_path(out, path, separator);
	cw_buf_append_char(out, ':');
}

typedef struct kc_case_flags {
	bool ordered;   /* every keyed operation has one key: kazaam's key order is known */
	bool shape;     /* the output holds the clock or random UUIDs */
} kc_case_flags_t;

/*
 * The keys of a keyed operation: one (any write path; no wildcard when made
 * says the values are read from the document) or several (fresh paths).
 */
static inline size_t kc_keys(kc_rng_t *rng, const char **keys, bool made, kc_case_flags_t *flags)
{
	if (kc_chance(rng, 55)) {
		keys[0] = kc_write_paths[kc_below(rng, made ? KC_WRITE_PATHS_READ + 1
		                                             : KC_WRITE_PATHS_READ)];
		return 1;
	}
	size_t n = 2 + kc_below(rng, 2), first = kc_below(rng, 5);
	for (size_t i = 0; i < n; i++)
		keys[i] = kc_fresh_paths[(first + i) % 5][kc_below(rng, 2)];
	flags->ordered = false;
	return n;
}

static inline void kc_shift(kc_rng_t *rng, cw_buf_t *out, const char *sep, bool first_op,
                            kc_case_flags_t *flags)
{
	const char *keys[4];
	size_t n = kc_keys(rng, keys, false, flags);
	bool inplace = first_op && n == 1 && kc_chance(rng, 30);
	cw_buf_append_str(out, "{\"operation\":\"shift\"");
	if (inplace)
		cw_buf_append_str(out, ",\"inplace\":true");
	cw_buf_append_str(out, ",\"spec\":{");
	for (size_t i = 0; i < n; i++) {
		kc_spec_key(out, i, keys[i], sep);
		if (!inplace && kc_chance(rng, 20)) {
			cw_buf_append_char(out, '[');
			size_t m = 1 + kc_below(rng, 2);
			for (size_t k = 0; k < m; k++) {
				cw_buf_append_str(out, k > 0 ? "," : "");
				kc_path(out, KC_PICK(rng, kc_read_paths), sep);
			}
			cw_buf_append_char(out, ']');
		} else {
			kc_path(out, kc_chance(rng, 5) ? "$" : KC_PICK(rng, kc_read_paths), sep);
		}
	}
	cw_buf_append_char(out, '}');
}

static inline void kc_default(kc_rng_t *rng, cw_buf_t *out, const char *sep,
                              kc_case_flags_t *flags)
{
	const char *keys[4];
	size_t n = kc_keys(rng, keys, true, flags);
	cw_buf_append_str(out, "{\"operation\":\"default\",\"spec\":{");
	for (size_t i = 0; i < n; i++) {
		kc_spec_key(out, i, keys[i], sep);
		cw_buf_append_str(out, KC_PICK(rng, kc_defaults));
	}
	cw_buf_append_char(out, '}');
}

static inline void kc_delete(kc_rng_t *rng, cw_buf_t *out, const char *sep)
{
	cw_buf_append_str(out, "{\"operation\":\"delete\",\"spec\":{\"paths\":[");
	size_t n = 1 + kc_below(rng, 3);
	for (size_t i = 0; i < n; i++) {
		cw_buf_append_str(out, i > 0 ? "," : "");
		kc_path(out, KC_PICK(rng, kc_delete_paths), sep);
	}
	cw_buf_append_str(out, "]}");
}

static inline void kc_concat(kc_rng_t *rng, cw_buf_t *out, const char *sep)
{
	static const char *const literals[] = {"lit", "-", "x y", ""};
	static const char *const delims[] = {NULL, "-", ", "};
	cw_buf_append_str(out, "{\"operation\":\"concat\",\"spec\":{\"sources\":[");
	size_t n = 1 + kc_below(rng, 3);
	for (size_t i = 0; i < n; i++) {
		cw_buf_append_str(out, i > 0 ? "," : "");
		if (kc_chance(rng, 35)) {
			cw_buf_appendf(out, "{\"value\":\"%s\"}", KC_PICK(rng, literals));
		} else {
			cw_buf_append_str(out, "{\"path\":");
			kc_path(out, KC_PICK(rng, kc_scalar_paths), sep);
			cw_buf_append_char(out, '}');
		}
	}
	cw_buf_append_str(out, "],\"targetPath\":");
	kc_path(out, kc_write_paths[kc_below(rng, KC_WRITE_PATHS_READ + 1)], sep);
	const char *delim = KC_PICK(rng, delims);
	if (delim != NULL)
		cw_buf_appendf(out, ",\"delim\":\"%s\"", delim);
	cw_buf_append_char(out, '}');
}

static inline void kc_coalesce(kc_rng_t *rng, cw_buf_t *out, const char *sep,
                               kc_case_flags_t *flags)
{
	static const char *const ignores[] = {NULL, "[\"\"]", "[0]", "[false]", "[\"abc\",true]"};
	const char *keys[4];
	size_t n = kc_keys(rng, keys, false, flags);
	cw_buf_append_str(out, "{\"operation\":\"coalesce\",\"spec\":{");
	for (size_t i = 0; i < n; i++) {
		kc_spec_key(out, i, keys[i], sep);
		cw_buf_append_char(out, '[');
		size_t m = 2 + kc_below(rng, 2);
		for (size_t k = 0; k < m; k++) {
			cw_buf_append_str(out, k > 0 ? "," : "");
			kc_path(out, KC_PICK(rng, kc_scalar_paths), sep);
		}
		cw_buf_append_char(out, ']');
	}
	const char *ignore = KC_PICK(rng, ignores);
	if (ignore != NULL)
		cw_buf_appendf(out, ",\"ignore\":%s", ignore);
	cw_buf_append_char(out, '}');
}

static inline void kc_timestamp(kc_rng_t *rng, cw_buf_t *out, const char *sep,
                                kc_case_flags_t *flags)
{
	static const char *const keys[] = {"ts", "tl[*]", "tu", "now"};
	size_t first = kc_below(rng, 4), n = kc_chance(rng, 70) ? 1 : 2;
	if (n > 1)
		flags->ordered = false;
	cw_buf_append_str(out, "{\"operation\":\"timestamp\",\"spec\":{");
	for (size_t i = 0; i < n; i++) {
		const char *key = keys[(first + i) % 4];
		kc_spec_key(out, i, key, sep);
		const char *input = strcmp(key, "tu") == 0    ? "$unix"
		                    : strcmp(key, "now") == 0 ? "$now"
		                                              : "2006-01-02T15:04:05Z07:00";
		if (strcmp(key, "now") == 0)
			flags->shape = true;
		cw_buf_appendf(out, "{\"inputFormat\":\"%s\",\"outputFormat\":\"%s\"}", input,
		               KC_PICK(rng, kc_layouts));
	}
	cw_buf_append_char(out, '}');
}

static inline void kc_uuid(kc_rng_t *rng, cw_buf_t *out, const char *sep,
                           kc_case_flags_t *flags)
{
	static const char *const namespaces[] = {
		"DNS", "URL", "OID", "X500", "6ba7b812-9dad-11d1-80b4-00c04fd430c8",
		"{6ba7b810-9dad-11d1-80b4-00c04fd430c8}", "urn:uuid:6ba7b8119dad11d180b400c04fd430c8",
	};
	const char *keys[4];
	size_t n = kc_keys(rng, keys, true, flags);
	cw_buf_append_str(out, "{\"operation\":\"uuid\",\"spec\":{");
	for (size_t i = 0; i < n; i++) {
		kc_spec_key(out, i, keys[i], sep);
		if (kc_chance(rng, 20)) {
			cw_buf_append_str(out, "{\"version\":4}");
			flags->shape = true;
			continue;
		}
		cw_buf_appendf(out, "{\"version\":%d,\"namespace\":\"%s\",\"names\":[",
		               kc_chance(rng, 50) ? 3 : 5, KC_PICK(rng, namespaces));
		size_t m = 1 + kc_below(rng, 2);
		for (size_t k = 0; k < m; k++) {
			cw_buf_append_str(out, k > 0 ? "," : "");
			cw_buf_append_str(out, "{\"path\":");
			kc_path(out, KC_PICK(rng, kc_scalar_paths), sep);
			cw_buf_append_str(out, ",\"default\":\"fallback\"}");
		}
		cw_buf_append_str(out, "]}");
	}
	cw_buf_append_char(out, '}');
}

/* An operation over each object of l1: only what cannot fail on such an object. */
static inline void kc_over(kc_rng_t *rng, cw_buf_t *out)
{
	switch (kc_below(rng, 4)) {
	case 0:
		cw_buf_appendf(out, "{\"operation\":\"default\",\"over\":\"l1\",\"spec\":{\"%s\":%s}",
		               kc_chance(rng, 50) ? "w" : "s1", KC_PICK(rng, kc_defaults));
		break;
	case 1:
		cw_buf_appendf(out, "{\"operation\":\"shift\",\"over\":\"l1\",%s\"spec\":{\"v\":\"%s\"}",
		               kc_chance(rng, 50) ? "\"inplace\":true," : "",
		               kc_chance(rng, 50) ? "s1" : "s2");
		break;
	case 2:
		cw_buf_append_str(out, "{\"operation\":\"delete\",\"over\":\"l1\","
		                       "\"spec\":{\"paths\":[\"s1\"]}");
		break;
	default:
		cw_buf_append_str(out, "{\"operation\":\"concat\",\"over\":\"l1\",\"spec\":{\"sources\":"
		                       "[{\"path\":\"s1\"},{\"value\":\"+\"},{\"path\":\"s2\"}],"
		                       "\"targetPath\":\"c\"}");
		break;
	}
}

/* One generated case as a JSON line (no newline) into out. */
static inline void kc_case(kc_rng_t *rng, unsigned long index, cw_buf_t *out,
                           kc_case_flags_t *flags)
{
	*flags = (kc_case_flags_t){true, false};
	bool custom_sep = kc_chance(rng, 10);
	const char *sep = custom_sep ? "/" : ".";
	cw_buf_appendf(out, "{\"name\":\"generated %lu\",\"spec\":[", index);
	size_t ops = 1 + kc_below(rng, 3);
	for (size_t i = 0; i < ops; i++) {
		cw_buf_append_str(out, i > 0 ? "," : "");
		size_t kind = kc_below(rng, 10);
		if (kind == 9 && i + 1 == ops && ops > 1) {
			cw_buf_append_str(out, "{\"operation\":\"extract\",\"spec\":{\"path\":");
			kc_path(out, KC_PICK(rng, kc_read_paths), sep);
			cw_buf_append_char(out, '}');
		} else if (kind == 0) {
			kc_shift(rng, out, sep, i == 0, flags);
		} else if (kind == 1) {
			kc_default(rng, out, sep, flags);
		} else if (kind == 2) {
			kc_delete(rng, out, sep);
		} else if (kind == 3 && i == 0) {   /* later, a path may hold an object: see the top */
			kc_concat(rng, out, sep);
		} else if (kind == 4) {
			kc_coalesce(rng, out, sep, flags);
		} else if (kind == 5) {
			kc_timestamp(rng, out, sep, flags);
		} else if (kind == 6) {
			kc_uuid(rng, out, sep, flags);
		} else if (kind == 7 && i == 0) {   /* later operations may turn l1 into scalars */
			kc_over(rng, out);
			cw_buf_append_char(out, '}');
			continue;
		} else {
			cw_buf_append_str(out, "{\"operation\":\"pass\"");
		}
		bool may_require = kind == 0 || kind == 2 || kind == 3 || kind == 5 || kind == 9;
		if (may_require && kc_chance(rng, 20))
			cw_buf_append_str(out, ",\"require\":true");
		if (custom_sep && kind != 8)
			cw_buf_append_str(out, ",\"keySeparator\":\"/\"");
		cw_buf_append_char(out, '}');
	}
	cw_buf_append_str(out, "],\"input\":");
	kc_document(rng, out);
	cw_buf_appendf(out, ",\"ordered\":%s,\"shape\":%s}", flags->ordered ? "true" : "false",
	               flags->shape ? "true" : "false");
}

#endif
