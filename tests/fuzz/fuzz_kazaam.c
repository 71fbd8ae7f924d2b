/*
 * libFuzzer target for the kazaam engine: one input holds a spec and a
 * document separated by the first NUL byte (without one, the whole input is
 * the spec and it runs on a few fixed documents). The spec compiler must
 * accept or refuse any bytes with an error; a compiled spec must transform
 * any document into one valid JSON value, or fail with an error.
 */
#include "core/buf.h"
#include "core/clock.h"
#include "transform/kazaam.h"
#include "transform/kazaam_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const documents[] = {
	("{\"a\":{\"b\":[1,2.50,{\"c\":\"x\"}],\"d\":null},\"e\":[{\"f\":1},{\"f\":\"2\"}],"
	 "\"t\":\"2017-07-22T08:15:27+02:00\",\"u\":\"1500711327\",\"n\":123456789012345678901234567890}"),
	"{}",
	"{\"a\":[],\"b\":\"\",\"c\":true}",
};

static void zero_random(void *ctx, unsigned char *out, size_t len)
{
	(void)ctx;
	memset(out, 0x5a, len);
}

/* The output must read back as one JSON value and write back to the same text. */
static void check_output(const cw_buf_t *out)
{
	kz_arena_t arena = KZ_ARENA_INIT;
	cw_err_t err;
	kz_value_t *value = kz_parse(&arena, out->data, out->len, &err);
	if (value == NULL) {
		fprintf(stderr, "kazaam wrote invalid JSON: %s\n%.*s\n", err.message, (int)out->len,
		        out->data);
		abort();
	}
	cw_buf_t again = CW_BUF_INIT;
	if (kz_write(value, &again) != 0 || again.len != out->len ||
	    memcmp(again.data, out->data, out->len) != 0) {
		fprintf(stderr, "kazaam output does not write back the same\n");
		abort();
	}
	cw_buf_free(&again);
	kz_arena_free(&arena);
}

static void apply(const cw_kazaam_t *kazaam, const char *doc, size_t len,
                  const cw_kazaam_env_t *env)
{
	cw_buf_t out = CW_BUF_INIT;
	cw_err_t err;
	int rc = cw_kazaam_apply(kazaam, doc, len, env, &out, &err);
	if (rc == 0)
		check_output(&out);
	else if (rc != CW_EINVAL || out.len != 0 || err.message[0] == '\0')
		abort();
	cw_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	const char *nul = memchr(text, '\0', size);
	size_t spec_len = nul != NULL ? (size_t)(nul - text) : size;
	cw_err_t err;
	cw_kazaam_t *kazaam = cw_kazaam_compile(text, spec_len, &err);
	if (kazaam == NULL) {
		if (err.code != CW_EINVAL || strncmp(err.domain, "kazaam", 6) != 0)
			abort();
		return 0;
	}
	cw_fake_clock_t clock;
	cw_fake_clock_init(&clock, 0, INT64_C(1700000000123456));
	cw_kazaam_env_t env = {cw_fake_clock_clock(&clock), zero_random, NULL};
	if (nul != NULL) {
		apply(kazaam, nul + 1, size - spec_len - 1, &env);
	} else {
		for (size_t i = 0; i < sizeof documents / sizeof documents[0]; i++)
			apply(kazaam, documents[i], strlen(documents[i]), &env);
	}
	cw_fake_clock_destroy(&clock);
	cw_kazaam_free(kazaam);
	return 0;
}
