#!/usr/bin/env bash
# This file contains how tests/unit/binlog_vectors.h and the fuzz seed corpus
# tests/fuzz/corpus/mysql_binlog/ were captured: it starts a throwaway MariaDB
# server (tests/support/mariadb.sh: binlog_format=ROW, binlog_row_image=FULL,
# binlog_row_metadata=FULL, CRC32 checksums), runs one SQL scenario at a time
# and cuts the events each wrote out of the binlog file, between the binlog
# positions before and after it. Every scenario starts with the file's
# FORMAT_DESCRIPTION event, which a decoder needs first.
#
# Usage: scripts/capture-binlog-vectors.sh [OUT_HEADER] [CORPUS_DIR]
# Defaults: tests/unit/binlog_vectors.h and tests/fuzz/corpus/mysql_binlog.
#
# Timestamps, table ids and positions differ on every run; the unit tests
# assert only values and relations between them.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/tests/unit/binlog_vectors.h}
corpus=${2:-$root/tests/fuzz/corpus/mysql_binlog}

work=$(mktemp -d /tmp/cw-binlog-capture.XXXXXX)
cleanup() {
	bash "$root/tests/support/mariadb.sh" stop "$work/db" || true
	rm -rf "$work"
}
trap cleanup EXIT
bash "$root/tests/support/mariadb.sh" start --owner $$ "$work/db" >/dev/null

sql() {
	mariadb --no-defaults -uroot --socket="$work/db/sock" -N -B app "$@"
}
position() { # prints "FILE POS" of the binlog end
	sql -e 'SHOW MASTER STATUS' | awk '{print $1, $2}'
}

sql <<'SQL'
CREATE TABLE ints (
	id INT PRIMARY KEY, t TINYINT, tu TINYINT UNSIGNED, s SMALLINT, su SMALLINT UNSIGNED,
	m MEDIUMINT, mu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, b BIGINT, bu BIGINT UNSIGNED);
CREATE TABLE nums (
	id INT PRIMARY KEY, d65 DECIMAL(65,30), d10 DECIMAL(10,2), d5 DECIMAL(5,0), d18 DECIMAL(18,9),
	f FLOAT, g DOUBLE, b1 BIT(1), b64 BIT(64), b12 BIT(12), y YEAR);
CREATE TABLE times (
	id INT PRIMARY KEY, d DATE, t TIME, t6 TIME(6), t2 TIME(2), dt DATETIME, dt3 DATETIME(3),
	dt6 DATETIME(6), ts TIMESTAMP NULL, ts6 TIMESTAMP(6) NULL, ts1 TIMESTAMP(1) NULL);
CREATE TABLE strs (
	id INT PRIMARY KEY, c CHAR(10), vc VARCHAR(300), tx TEXT, bl BLOB, bin BINARY(4),
	vb VARBINARY(10), l1 VARCHAR(20) CHARACTER SET latin1, e ENUM('small','medium','large'),
	st SET('a','b','c','d'), j JSON, g GEOMETRY, tb TINYBLOB, mt MEDIUMTEXT, lb LONGBLOB);
CREATE TABLE olines (tenant VARCHAR(20), line_no BIGINT, sku VARCHAR(20), PRIMARY KEY (tenant, line_no));
CREATE TABLE nokey (a INT, b VARCHAR(10));
SQL

exec 3>"$out.tmp"
cat >&3 <<'HDR'
/*
 * This file contains binlog events captured from a real MariaDB 10.11 server
 * by scripts/capture-binlog-vectors.sh (do not edit by hand: re-run the
 * script). Each scenario is the SQL shown above it, cut out of the binlog
 * file between the positions before and after it; its first event is the
 * file's FORMAT_DESCRIPTION event. Every event is whole: the 19-byte header,
 * the body and the CRC32 checksum.
 *
 * Server: binlog_format=ROW, binlog_row_image=FULL (MINIMAL where the
 * scenario says), binlog_row_metadata=FULL (MINIMAL where it says),
 * log_bin_compress=ON for the scenario "compressed" only,
 * time_zone +00:00, utf8mb4. Tables: ints (every integer type signed and
 * unsigned), nums (DECIMAL(65,30), (10,2), (5,0), (18,9), FLOAT, DOUBLE,
 * BIT(1), BIT(64), BIT(12), YEAR), times (DATE, TIME, TIME(6), TIME(2),
 * DATETIME, (3), (6), TIMESTAMP, (6), (1)), strs (CHAR, VARCHAR(300), TEXT,
 * BLOB, BINARY(4), VARBINARY, latin1 VARCHAR, ENUM, SET, JSON, GEOMETRY,
 * TINYBLOB, MEDIUMTEXT, LONGBLOB), olines (composite key), nokey (no key).
 */
#ifndef CW_BINLOG_VECTORS_H
#define CW_BINLOG_VECTORS_H

#include <stddef.h>
#include <stdint.h>

typedef struct binlog_vector {
	const uint8_t *bytes;
	size_t len;
} binlog_vector_t;

HDR

scenarios=()
scenario() { # NAME SQL: runs SQL, emits the events it wrote
	local name=$1 body=$2 before after
	before=$(position)
	sql <<<"$body" >/dev/null
	after=$(position)
	scenarios+=("$name")
	printf '/* %s:\n' "$name" >&3
	sed -e '/^$/d' -e 's|\*/|* /|g' -e 's/^/ *   /' <<<"$body" >&3
	printf ' */\n' >&3
	mkdir -p "$corpus"
	python3 - "$work/db/data" "$name" "$before" "$after" "$corpus/$name" >&3 <<'PY'
import struct, sys
datadir, name, before, after, seed = sys.argv[1:6]
bfile, bpos = before.split()
afile, apos = after.split()
def events(path, start, end):
    data = open(path, 'rb').read()
    out, pos = [], start
    while pos < end:
        size = struct.unpack_from('<I', data, pos + 9)[0]
        out.append(data[pos:pos + size])
        pos += size
    return out, data
evs, data = events(f"{datadir}/{bfile}", 4, 4 + struct.unpack_from('<I', open(f"{datadir}/{bfile}", 'rb').read(), 4 + 9)[0])
fde = evs[0]
if bfile == afile:
    body, _ = events(f"{datadir}/{bfile}", int(bpos), int(apos))
else:
    body, whole = events(f"{datadir}/{bfile}", int(bpos), len(open(f"{datadir}/{bfile}", 'rb').read()))
    more, _ = events(f"{datadir}/{afile}", 4, int(apos))
    body += more
allev = [fde] + body
for n, ev in enumerate(allev):
    print(f"static const uint8_t binlog_{name}_{n}[] = {{", end="")
    for i, b in enumerate(ev):
        print("\n\t" if i % 12 == 0 else " ", end="")
        print(f"0x{b:02x},", end="")
    print("\n};")
print(f"static const binlog_vector_t binlog_{name}[] = {{")
for n in range(len(allev)):
    print(f"\t{{binlog_{name}_{n}, sizeof binlog_{name}_{n}}},")
print("};\n")
# Fuzz seed: every event prefixed by its length as 2 big-endian bytes.
with open(seed, 'wb') as f:
    for ev in allev:
        f.write(struct.pack('>H', len(ev) & 0xffff) + ev[:0xffff])
PY
}

scenario ints "
INSERT INTO ints VALUES
  (1, -128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295,
   -9223372036854775808, 18446744073709551615),
  (2, 127, 0, 32767, 0, 8388607, 0, 2147483647, 0, 9223372036854775807, 9007199254740993),
  (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);"

scenario nums "
INSERT INTO nums VALUES
  (1, 12345678901234567890123456789012345.123456789012345678901234567890, 2.50, -99999,
   -123456789.000000001, 0.1, 0.1, b'1', b'1111111111111111111111111111111111111111111111111111111111111111',
   b'101010101010', 2155),
  (2, -0.000000000000000000000000000001, -0.50, 0, 0.5, -3.4028234e38, 2.2250738585072014e-308,
   b'0', 0, 0, 1901),
  (3, 0, 0, NULL, NULL, 1.5e-7, 9007199254740993, NULL, NULL, NULL, 0);"

scenario times "
INSERT INTO times VALUES
  (1, '2024-02-29', '-838:59:59', '-00:00:00.000001', '12:34:56.78', '9999-12-31 23:59:59',
   '2024-02-29 12:34:56.789', '1000-01-01 00:00:00.000001', '2038-01-19 03:14:07',
   '1970-01-01 00:00:01.000001', '2024-02-29 12:34:56.7'),
  (2, '1000-01-01', '838:59:59', '-12:34:56.5', '-00:00:01.01', '1000-01-01 00:00:00',
   '2024-02-29 12:34:56.000', '2024-02-29 12:34:56.999999', '2024-02-29 12:34:56',
   '2024-02-29 12:34:56.123456', NULL),
  (3, NULL, '00:00:00', '00:00:00', NULL, NULL, NULL, NULL, NULL, NULL, NULL);"

scenario strs "
INSERT INTO strs VALUES
  (1, 'Grüße', CONCAT('世界 🚀 \"q\" \\\\ tab', CHAR(9), ' nl', CHAR(10), REPEAT('x', 250)),
   'text ü', X'00FF10DEADBEEF', X'DEAD', X'', 'café', 'medium', 'a,c,d',
   '{\"b\": [1, 2.50, null], \"a\": {\"x\": \"ü\"}}', ST_GeomFromText('POINT(1 2)', 4326),
   X'01', REPEAT('m', 300), X'CAFE'),
  (2, '', '', '', '', X'00000000', NULL, '', 'large', '', '[]', ST_GeomFromText('LINESTRING(0 0,1 1)'),
   X'', '', X''),
  (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);"

scenario update_full "
UPDATE ints SET t = 1, b = -1 WHERE id = 2;"

scenario delete_full "
DELETE FROM ints WHERE id = 3;"

scenario txn "
BEGIN;
INSERT INTO olines VALUES ('acme', 42, 'SKU-1');
UPDATE olines SET line_no = 43 WHERE tenant = 'acme';
UPDATE olines SET sku = 'SKU-2' WHERE tenant = 'acme';
DELETE FROM olines WHERE tenant = 'acme';
INSERT INTO nokey VALUES (1, 'no key');
COMMIT;"

scenario minimal "
SET SESSION binlog_row_image = MINIMAL;
INSERT INTO ints (id, t) VALUES (10, 5);
UPDATE ints SET b = 77 WHERE id = 10;
UPDATE ints SET id = 11 WHERE id = 10;
DELETE FROM ints WHERE id = 11;"

scenario truncate "
TRUNCATE TABLE nums;
TRUNCATE app.\`times\`;"

scenario ddl "
ALTER TABLE olines ADD COLUMN qty INT NOT NULL DEFAULT 0;
INSERT INTO olines VALUES ('acme', 1, 'SKU-3', 7);
CREATE TABLE extra (id INT PRIMARY KEY);
DROP TABLE extra;"

sql -e "SET GLOBAL binlog_row_metadata = MINIMAL" >/dev/null
scenario metadata_minimal "
INSERT INTO ints (id, tu, bu) VALUES (20, 200, 18446744073709551615);"
sql -e "SET GLOBAL binlog_row_metadata = FULL" >/dev/null

scenario rotate "
FLUSH BINARY LOGS;
INSERT INTO olines VALUES ('acme', 2, 'SKU-4', 1);"

sql -e "SET GLOBAL log_bin_compress = ON, GLOBAL log_bin_compress_min_len = 10" >/dev/null
scenario compressed "
INSERT INTO olines (tenant, line_no, sku) VALUES ('delta', 1, REPEAT('z', 20)), ('delta', 2, 'short');
UPDATE olines SET sku = REPEAT('y', 20) WHERE tenant = 'delta' AND line_no = 2;
DELETE FROM olines WHERE tenant = 'delta';
ALTER TABLE olines COMMENT 'compressed statement of some length';
INSERT INTO strs (id, mt) VALUES (9, REPEAT('m', 300));"
sql -e "SET GLOBAL log_bin_compress = OFF" >/dev/null

{
	printf 'static const struct {\n\tconst char *name;\n\tconst binlog_vector_t *events;\n\tsize_t count;\n} binlog_scenarios[] = {\n'
	for s in "${scenarios[@]}"; do
		printf '\t{"%s", binlog_%s, sizeof binlog_%s / sizeof binlog_%s[0]},\n' "$s" "$s" "$s" "$s"
	done
	printf '};\n\n#endif\n'
} >&3
exec 3>&-
mv "$out.tmp" "$out"
echo "wrote $out (${#scenarios[@]} scenarios) and $corpus"
