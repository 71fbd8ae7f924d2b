/*
 * This file contains the libFuzzer target of core/db_address.c. The input
 * is two connection URLs separated by a newline; each is read both as a
 * PostgreSQL URL or conninfo string and as a MongoDB URL. Besides never
 * crashing or leaking: a failed read leaves nothing behind and says why, a
 * successful one has a host and a database, and an address is always the
 * same as itself. Seeds: tests/fuzz/corpus/db_address.
 */
#include "core/db_address.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads url as kind (0 postgres, 1 mongodb) into address and checks what the header promises. */
static bool read_address(int kind, const char *url, cw_db_address_t *address)
{
	cw_err_t err = {0};
	int rc = kind == 0 ? cw_db_address_postgres(url, address, &err)
	                   : cw_db_address_mongodb(url, address, &err);
	if (rc != 0 && (address->hosts != NULL || address->database != NULL || err.message[0] == '\0'))
		__builtin_trap();
	if (rc == 0 && (address->nhosts == 0 || address->database == NULL ||
	                !cw_db_address_same(address, address)))
		__builtin_trap();
	return rc == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';
	char *second = strchr(text, '\n');
	if (second != NULL)
		*second++ = '\0';
	for (int kind = 0; kind < 2; kind++) {
		cw_db_address_t a = {0}, b = {0};
		bool ok_a = read_address(kind, text, &a);
		bool ok_b = second != NULL && read_address(kind, second, &b);
		if (ok_a && ok_b && cw_db_address_same(&a, &b) != cw_db_address_same(&b, &a))
			__builtin_trap();
		cw_db_address_clear(&a);
		cw_db_address_clear(&b);
	}
	free(text);
	return 0;
}
