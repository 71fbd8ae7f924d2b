/*
 * This file contains the libFuzzer target of the pgoutput decoder. The input
 * is a sequence of messages, each prefixed by its length as 2 big-endian
 * bytes (the last one may be short), fed to ONE decoder so the relation
 * cache and the stream state carry over from message to message. Every
 * decoded row is turned into a change, and every message is also parsed as a
 * replication CopyData envelope. The seed corpus (tests/fuzz/corpus/pgoutput)
 * holds the captured vectors in this format, one file per scenario.
 */
#include "capture/pgoutput.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void feed(cw_pgoutput_t *dec, const uint8_t *bytes, size_t len)
{
	cw_pgoutput_msg_t msg;
	cw_pgoutput_row_t row;
	cw_pgoutput_copydata_t copydata;
	cw_err_t err;
	if (cw_pgoutput_decode(dec, bytes, len, &msg, &err) == 0) {
		if (msg.kind == CW_PGOUTPUT_INSERT || msg.kind == CW_PGOUTPUT_UPDATE ||
		    msg.kind == CW_PGOUTPUT_DELETE) {
			if (cw_pgoutput_row_change(dec, &msg, &row, &err) == 0 &&
			    (row.doc_id == NULL || (row.data == NULL) != (row.op == CW_OP_DELETE)))
				__builtin_trap();
			cw_pgoutput_row_clear(&row);
		}
		for (uint32_t i = 0; msg.kind == CW_PGOUTPUT_TRUNCATE && i < msg.truncate.nrelids; i++)
			if (cw_pgoutput_relation(dec, msg.truncate.relids[i]) == NULL)
				__builtin_trap();
	} else if (strncmp(err.message, "pgoutput ", 9) != 0) {
		__builtin_trap();
	}
	if (cw_pgoutput_copydata_parse(bytes, len, &copydata, &err) == 0 && copydata.kind == 'w')
		feed(dec, copydata.data, copydata.data_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cw_pgoutput_t *dec = cw_pgoutput_new();
	static const char *const audit_pk[] = {"id"};
	static const char *const t_pk[] = {"v", "id"};
	cw_pgoutput_set_primary_key(dec, "public", "audit", audit_pk, 1, NULL);
	cw_pgoutput_set_primary_key(dec, "public", "t", t_pk, 2, NULL);
	size_t pos = 0;
	while (size - pos >= 2) {
		size_t len = (size_t)data[pos] << 8 | data[pos + 1];
		pos += 2;
		if (len > size - pos)
			len = size - pos;
		feed(dec, data + pos, len);
		pos += len;
	}
	cw_pgoutput_free(dec);
	return 0;
}
