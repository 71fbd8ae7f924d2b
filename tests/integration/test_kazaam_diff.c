/*
 * This file contains the differential test of the kazaam engine: the real
 * kazaam library (Go, v3.4.8, tests/fixtures/kazaam-ref, built by
 * tests/support/kazaam_ref.sh) and cachewarp's C engine run the same specs
 * on the same documents, and their outputs must be the same JSON: same
 * values, number texts character for character, strings equal once
 * unescaped, objects in the same key order (unless the case is marked
 * unordered: kazaam writes several keys of one operation in Go's random map
 * order). Both must fail on the same cases.
 *
 * Cases: kazaam's documented examples (tests/fixtures/kazaam-ref/cases.jsonl)
 * and generated ones (kazaam_cases.h). CW_KAZAAM_SEED fixes the seed (printed
 * either way), CW_KAZAAM_CASES the number generated (default 600);
 * CW_KAZAAM_KEEP keeps the cases and kazaam's outputs after a pass too. Cases
 * marked "shape" hold the clock or random UUIDs: there a string only has to
 * be a string in both (unit.kazaam checks those operations' output exactly
 * with a fake clock and a fixed random source).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/buf.h"
#include "core/json_fields.h"
#include "transform/kazaam.h"
#include "transform/kazaam_internal.h"
#include "kazaam_cases.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct line_list {
	char **lines;
	size_t count, cap;
} line_list_t;

static void add_line(line_list_t *list, const char *text, size_t len)
{
	if (list->count == list->cap) {
		list->cap = list->cap ? list->cap * 2 : 64;
		list->lines = realloc(list->lines, list->cap * sizeof *list->lines);
		assert_non_null(list->lines);
	}
	list->lines[list->count] = strndup(text, len);
	assert_non_null(list->lines[list->count]);
	list->count++;
}

static void read_lines(const char *path, line_list_t *list)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		fail_msg("could not open \"%s\"", path);
		return;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	while ((n = getline(&line, &cap, f)) > 0) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			n--;
		if (n > 0 && line[0] != '#')
			add_line(list, line, (size_t)n);
	}
	free(line);
	fclose(f);
}

static void free_lines(line_list_t *list)
{
	for (size_t i = 0; i < list->count; i++)
		free(list->lines[i]);
	free(list->lines);
}

/* ---- comparing outputs ---- */

typedef struct compare {
	bool ordered;
	bool shape;
	cw_buf_t a, b;
} compare_t;

static void string_value(const kz_value_t *value, cw_buf_t *out)
{
	cw_buf_reset(out);
	cw_json_string_unescape(value->text, value->len, out);
}

static bool same_value(compare_t *cmp, const kz_value_t *a, const kz_value_t *b)
{
	if (a->kind != b->kind)
		return false;
	switch (a->kind) {
	case CW_JSON_KIND_OBJECT:
		if (a->count != b->count)
			return false;
		for (size_t i = 0; i < a->count; i++) {
			const kz_member_t *ma = &a->members[i];
			const kz_member_t *mb = cmp->ordered ? &b->members[i]
			                                     : kz_object_find(b, ma->key, ma->key_len);
			if (mb == NULL || mb->key_len != ma->key_len ||
			    memcmp(mb->key, ma->key, ma->key_len) != 0 ||
			    !same_value(cmp, ma->value, mb->value))
				return false;
		}
		return true;
	case CW_JSON_KIND_ARRAY:
		if (a->count != b->count)
			return false;
		for (size_t i = 0; i < a->count; i++)
			if (!same_value(cmp, a->items[i], b->items[i]))
				return false;
		return true;
	case CW_JSON_KIND_STRING:
		if (cmp->shape)   /* the clock and random UUIDs: a string in both is enough */
			return true;
		string_value(a, &cmp->a);
		string_value(b, &cmp->b);
		return cmp->a.len == cmp->b.len &&
		       (cmp->a.len == 0 || memcmp(cmp->a.data, cmp->b.data, cmp->a.len) == 0);
	default:   /* numbers keep their text exactly */
		return a->len == b->len && memcmp(a->text, b->text, a->len) == 0;
	}
}

/* ---- running one case ---- */

static void fixed_random(void *ctx, unsigned char *out, size_t len)
{
	kc_rng_t *rng = ctx;
	for (size_t i = 0; i < len; i++)
		out[i] = (unsigned char)kc_next(rng);
}

typedef struct outcome {
	int failed;                 /* 0 same, 1 different */
	bool kazaam_invalid;        /* kazaam wrote text that is not JSON */
	bool both_failed;
} outcome_t;

static const cw_json_field_t *get_field(const cw_json_fields_t *fields, const char *key)
{
	return cw_json_fields_get(fields, key, strlen(key));
}

static outcome_t run_case(const char *case_line, const char *ref_line, cw_buf_t *report)
{
	outcome_t result = {0, false, false};
	cw_json_fields_t c, r;
	cw_json_fields_init(&c);
	cw_json_fields_init(&r);
	cw_err_t err = {0};
	assert_int_equal(cw_json_fields_parse(&c, case_line, &err), 0);
	assert_int_equal(cw_json_fields_parse(&r, ref_line, &err), 0);
	const cw_json_field_t *spec = get_field(&c, "spec"), *input = get_field(&c, "input");
	const cw_json_field_t *ordered = get_field(&c, "ordered"), *shape = get_field(&c, "shape");
	assert_non_null(spec);
	assert_non_null(input);

	cw_fake_clock_t clock;
	cw_fake_clock_init(&clock, 0, INT64_C(1700000000123456));
	kc_rng_t rng = {0x9e3779b97f4a7c15ULL};
	cw_kazaam_env_t env = {cw_fake_clock_clock(&clock), fixed_random, &rng};
	cw_buf_t ours = CW_BUF_INIT;
	cw_err_t ours_err = {0};
	int rc = CW_EINVAL;
	cw_kazaam_t *kazaam = cw_kazaam_compile(spec->value, spec->value_len, &ours_err);
	if (kazaam != NULL)
		rc = cw_kazaam_apply(kazaam, input->value, input->value_len, &env, &ours, &ours_err);
	cw_kazaam_free(kazaam);
	cw_fake_clock_destroy(&clock);

	const cw_json_field_t *output = get_field(&r, "output");
	const cw_json_field_t *ref_err = get_field(&r, "error");
	if (get_field(&r, "invalid") != NULL) {
		result.kazaam_invalid = true;
	} else if (ref_err != NULL || rc != 0) {
		result.both_failed = ref_err != NULL && rc != 0;
		result.failed = !result.both_failed;
	} else {
		kz_arena_t arena = KZ_ARENA_INIT;
		kz_value_t *want = kz_parse(&arena, output->value, output->value_len, NULL);
		kz_value_t *got = kz_parse(&arena, ours.data, ours.len, NULL);
		compare_t cmp = {ordered == NULL || ordered->kind != CW_JSON_KIND_FALSE,
		                 shape != NULL && shape->kind == CW_JSON_KIND_TRUE, CW_BUF_INIT,
		                 CW_BUF_INIT};
		result.failed = want == NULL || got == NULL || !same_value(&cmp, want, got);
		cw_buf_free(&cmp.a);
		cw_buf_free(&cmp.b);
		kz_arena_free(&arena);
	}
	if (result.failed)
		cw_buf_appendf(report, "case:   %s\nkazaam: %s\nours:   %s\n\n", case_line, ref_line,
		               rc == 0 ? cw_buf_cstr(&ours) : ours_err.message);
	cw_buf_free(&ours);
	cw_json_fields_clear(&c);
	cw_json_fields_clear(&r);
	return result;
}

/* ---- the test ---- */

static char work_dir[] = "/tmp/cw-kazaam-diff-XXXXXX";

static void run_reference(const char *cases_path, const char *ref_path)
{
	const char *support = getenv("CW_SUPPORT_DIR");
	assert_non_null(support);
	char command[4096];
	snprintf(command, sizeof command, "bash '%s/kazaam_ref.sh' fetch", support);
	/* no Go toolchain is a failure, not a skip: make deps installs one */
	if (system(command) != 0)
		fail_msg("could not build the kazaam reference (needs go: run make deps)");
	snprintf(command, sizeof command,
	         "TZ=UTC \"$(bash '%s/kazaam_ref.sh' path)\" < '%s' > '%s'", support, cases_path,
	         ref_path);
	if (system(command) != 0)
		fail_msg("the kazaam reference failed on \"%s\"", cases_path);
}

static void kazaam_and_cachewarp_agree(void **state)
{
	(void)state;
	const char *source = getenv("CW_SOURCE_DIR");
	assert_non_null(source);
	uint64_t seed = getenv("CW_KAZAAM_SEED") != NULL
	                        ? strtoull(getenv("CW_KAZAAM_SEED"), NULL, 10)
	                        : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	long generated = getenv("CW_KAZAAM_CASES") != NULL ? atol(getenv("CW_KAZAAM_CASES")) : 600;
	printf("kazaam differential test: seed %llu (CW_KAZAAM_SEED=%llu repeats it), %ld generated "
	       "cases\n",
	       (unsigned long long)seed, (unsigned long long)seed, generated);

	line_list_t cases = {0}, refs = {0};
	char path[1024];
	snprintf(path, sizeof path, "%s/tests/fixtures/kazaam-ref/cases.jsonl", source);
	read_lines(path, &cases);
	size_t documented = cases.count;
	assert_true(documented > 20);
	kc_rng_t rng = {seed != 0 ? seed : 1};
	cw_buf_t line = CW_BUF_INIT;
	for (long i = 0; i < generated; i++) {
		kc_case_flags_t flags;
		cw_buf_reset(&line);
		kc_case(&rng, (unsigned long)i, &line, &flags);
		add_line(&cases, line.data, line.len);
	}
	cw_buf_free(&line);

	assert_non_null(mkdtemp(work_dir));
	char cases_path[1100], ref_path[1100];
	snprintf(cases_path, sizeof cases_path, "%s/cases.jsonl", work_dir);
	snprintf(ref_path, sizeof ref_path, "%s/kazaam.jsonl", work_dir);
	FILE *f = fopen(cases_path, "w");
	assert_non_null(f);
	for (size_t i = 0; i < cases.count; i++)
		fprintf(f, "%s\n", cases.lines[i]);
	fclose(f);
	run_reference(cases_path, ref_path);
	read_lines(ref_path, &refs);
	assert_int_equal(refs.count, cases.count);

	setenv("TZ", "UTC", 1);
	tzset();
	cw_buf_t report = CW_BUF_INIT;
	size_t different = 0, invalid = 0, both_failed = 0, documented_different = 0;
	for (size_t i = 0; i < cases.count; i++) {
		outcome_t outcome = run_case(cases.lines[i], refs.lines[i], &report);
		different += (size_t)outcome.failed;
		documented_different += i < documented ? (size_t)outcome.failed : 0;
		invalid += outcome.kazaam_invalid;
		both_failed += outcome.both_failed;
	}
	printf("%zu cases (%zu documented examples): %zu the same (%zu of them failing in both), "
	       "%zu where kazaam wrote invalid JSON, %zu different\n",
	       cases.count, documented, cases.count - different - invalid, both_failed, invalid,
	       different);
	if (different > 0)
		fwrite(report.data, 1, report.len < 20000 ? report.len : 20000, stdout);
	if (different > 0 || getenv("CW_KAZAAM_KEEP") != NULL) {
		printf("cases and kazaam's outputs kept in %s\n", work_dir);
	} else {
		unlink(cases_path);
		unlink(ref_path);
		rmdir(work_dir);
	}
	cw_buf_free(&report);
	free_lines(&cases);
	free_lines(&refs);
	assert_int_equal(different, 0);
	/* generated cases must mostly exercise success paths, or the test proves little */
	assert_true(both_failed + invalid < cases.count / 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(kazaam_and_cachewarp_agree),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
