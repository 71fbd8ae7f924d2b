#!/usr/bin/env bash
# Batch mode for MySQL/MariaDB tables end to end (docs/batch.md) against a
# throwaway MariaDB (tests/support/mariadb.sh), polled every 200ms into a
# SQLite cache beside a streamed sibling of the same source:
#   * 2500 rows sharing one TIMESTAMP across pages of 100 (none skipped, none
#     read twice), then inserts and updates;
#   * a row of every column type polled equals the same row read by the
#     snapshot of a streamed entity on the same table, value for value;
#   * a DATETIME column read in its configured zone (+09:00), and a zone the
#     server does not know failing that entity with what to do;
#   * an entity without its change column failed with its reason, the others
#     going on;
#   * a crash right after a page's commit and a kill -9 in the middle of a
#     poll, then a restart: no row version twice in the oplog;
#   * deletes found by the key comparison, hashed per bucket by the server:
#     only the buckets that differ are listed, and once the deletes are in
#     none differs (every key's hash on the server equals the hub's), for a
#     number key, a text key of non-ASCII, quotes and backslashes, and a
#     composite key of a number, latin1 and utf8mb4 text with control
#     characters, a TIMESTAMP and binary bytes; no false deletes;
#   * SIGHUP adds a poller's entity, changes its settings (delete detection
#     turned on) and stops the poller when no batch entity is left, while the
#     source's binlog stream goes on.
set -u
# shellcheck source=../support/e2e.sh
. "${CW_SUPPORT_DIR:-$(cd "$(dirname "$0")/../support" && pwd)}/e2e.sh"
# shellcheck source=../support/batch.sh
. "$support/batch.sh"
[ -x "$fp_bin" ] || { echo "FAIL: $fp_bin not built" >&2; exit 1; }

stop_processes() { [ -n "$daemon" ] && kill -9 "$daemon" 2>/dev/null; }
E2E_STOP=stop_processes
e2e_init batch-mysql
e2e_start_pg
e2e_start_mariadb
# e2e's my, with the keys' text sent as utf8mb4 whatever the locale.
my() { mariadb --no-defaults --default-character-set=utf8mb4 -uroot --socket="$work/my/sock" -N -B app -e "$1"; }
hub() { e2e_sql hub "$1"; }

my "CREATE TABLE orders (id BIGINT PRIMARY KEY, note VARCHAR(40), updated_at TIMESTAMP(6) NOT NULL);
CREATE TABLE local_rows (id INT PRIMARY KEY, v VARCHAR(20), changed DATETIME(6));
CREATE TABLE tokyo (id INT PRIMARY KEY, changed DATETIME);
CREATE TABLE nocol (id INT PRIMARY KEY, v VARCHAR(20));
CREATE TABLE live (id INT PRIMARY KEY, v VARCHAR(20));
CREATE TABLE pairs (a INT, b VARCHAR(10), v VARCHAR(20),
	updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), PRIMARY KEY (a, b));
CREATE TABLE words (w VARCHAR(20) PRIMARY KEY, v INT,
	updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6));
CREATE TABLE wide (n BIGINT, l VARCHAR(10) CHARACTER SET latin1, s VARCHAR(20), ts TIMESTAMP(6),
	b VARBINARY(4), v INT, updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
	PRIMARY KEY (n, l, s, ts, b));
CREATE TABLE kinds (
	id INT PRIMARY KEY, bu BIGINT UNSIGNED, d DECIMAL(40,10), d2 DECIMAL(10,2), f FLOAT,
	g DOUBLE, bt BIT(12), y YEAR, dt DATE, tm TIME(6), dtm DATETIME(3), ts TIMESTAMP(6) NULL,
	vc VARCHAR(100), l1 VARCHAR(20) CHARACTER SET latin1, bl BLOB, bn BINARY(4),
	e ENUM('x','y'), st SET('a','b','c'), j JSON, gm GEOMETRY, seq BIGINT NOT NULL);
INSERT INTO orders SELECT seq, 'first', '2026-01-01 00:00:00' FROM seq_1_to_2500;
INSERT INTO live VALUES (1, 'a');
INSERT INTO kinds VALUES (1, 18446744073709551615, 123456789012345678901234567890.0123456789,
	2.50, 0.1, 9007199254740993, b'101010101010', 2155, '2024-02-29', '-12:34:56.000001',
	'2024-02-29 12:34:56.789', '2024-02-29 12:34:56.123456',
	CONCAT('tab', CHAR(9), 'x \"q\" \\\\ ü 世界'), 'café', X'00FF', X'DEAD', 'y', 'a,c',
	'{\"x\": 2.50, \"big\": 123456789012345678901234567890}', ST_GeomFromText('POINT(1 2)', 4326), 1),
	(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	NULL, NULL, NULL, NULL, 2);"

cat >"$work/cw.yaml" <<YAML
hub:
  url: $base/hub
sources:
  - name: app_my
    type: mysql
    url: $my_url
entities:
  - name: orders
    source: app_my
    table: orders
    mode: batch
    polling_interval: 200ms
    delete_detection: {interval: 1s}
  - name: local_rows
    source: app_my
    table: app.local_rows
    mode: batch
    polling_interval: 200ms
    change_detection: {column: changed, timezone: "+09:00"}
  - {name: tokyo, source: app_my, table: tokyo, mode: batch,
     change_detection: {column: changed, timezone: Asia/Tokyo}}
  - {name: nocol, source: app_my, table: nocol, mode: batch, polling_interval: 200ms}
  - {name: pairs, source: app_my, table: pairs, mode: batch, polling_interval: 200ms,
     delete_detection: {interval: 1s}}
  - {name: words, source: app_my, table: words, mode: batch, polling_interval: 200ms,
     delete_detection: {interval: 1s}}
  - {name: wide, source: app_my, table: wide, mode: batch, polling_interval: 200ms,
     delete_detection: {interval: 1s}}
  - {name: kinds_polled, source: app_my, table: kinds, mode: batch, polling_interval: 200ms,
     change_detection: {column: seq}}
  - {name: kinds_scanned, source: app_my, table: kinds}
  - {name: live, source: app_my, table: live}
targets:
  - name: node1
    type: sqlite
    dir: $work/dbs
api: {listen: "127.0.0.1:0"}
log: {level: info, format: json}
capture: {batch_size: 100, flush_interval: 20ms}
apply: {poll_interval: 100ms}
retry: {initial: 50ms, max: 300ms}
YAML

source_rows() { my "SELECT CONCAT(id, '|', note) FROM orders ORDER BY id"; }
set_notes() { my "UPDATE orders SET note = '$1', updated_at = NOW(6)"; }

start
wait_for "2500 rows sharing one updated_at reach the cache" converged
[ "$(twice)" = 0 ] || fail "$(twice) row versions are in the oplog more than once after the first poll"

# ---- inserts and updates ----
my "UPDATE orders SET note = 'second', updated_at = NOW(6) WHERE id % 10 = 0;
    INSERT INTO orders VALUES (2501, 'new', NOW(6))"
wait_for "updates and an insert reach the cache" converged

# ---- the streamed sibling, the polled row equal to the scanned one ----
my "INSERT INTO live VALUES (2, 'b')"
live_ok() { same "$(cache live "SELECT group_concat(v, ',') FROM (SELECT v FROM live ORDER BY id)")" "a,b"; }
wait_for "the streamed sibling keeps streaming" live_ok
kinds_ok() { same "$(hub "SELECT count(*) FROM cachewarp.oplog WHERE entity LIKE 'kinds_%' AND op = 'upsert'")" 4; }
wait_for "the kinds rows polled and scanned" kinds_ok
for id in 1 2; do
	equal=$(hub "SELECT (SELECT data FROM cachewarp.oplog WHERE entity = 'kinds_polled' AND doc_id = '$id')
		= (SELECT data FROM cachewarp.oplog WHERE entity = 'kinds_scanned' AND doc_id = '$id')")
	[ "$equal" = t ] || fail "row $id polled differs from scanned: $(hub "SELECT entity, data FROM cachewarp.oplog WHERE entity LIKE 'kinds_%' AND doc_id = '$id'")"
done
got=$(hub "SELECT data::jsonb->>'bu' || ' ' || (data::jsonb->>'d2') || ' ' || (data::jsonb->>'bl') FROM cachewarp.oplog WHERE entity = 'kinds_polled' AND doc_id = '1'")
[ "$got" = '18446744073709551615 2.50 \x00ff' ] || fail "polled values: $got"
[ "$(hub "SELECT count(*) FROM cachewarp.oplog WHERE entity IN ('orders', 'local_rows', 'pairs', 'kinds_polled') AND source_pos <> 'batch' AND op <> 'delete'")" = 0 ] ||
	fail "the binlog stream captured a batch entity"

port=$(grep -o '"msg":"listening".*"port":"[0-9]*"' "$work/run.log" | head -1 | grep -o '[0-9]*"$' | tr -d '"')
wait_for "entity nocol failed with the missing column as its reason" status_has nocol 'no column "updated_at"'
wait_for "a zone the server does not know fails its entity" status_has tokyo 'does not know time zone "Asia/Tokyo"'

# ---- a DATETIME column, in +09:00 ----
my "INSERT INTO local_rows VALUES (1, 'x', '2026-01-01 09:00:00')"
local_ok() { same "$(cache local_rows "SELECT v FROM local_rows WHERE id = '1'")" x; }
wait_for "a row of a DATETIME column reaches the cache" local_ok
created=$(hub "SELECT created_at AT TIME ZONE 'UTC' FROM cachewarp.oplog WHERE entity = 'local_rows' AND op = 'upsert'")
[ "$created" = "2026-01-01 00:00:00" ] || fail "09:00 in +09:00 was captured as $created UTC, want 00:00"

# ---- a column dropped while running: that entity fails, the others go on ----
my "ALTER TABLE local_rows DROP COLUMN changed"
wait_for "a batch entity whose column was dropped fails with that reason" status_has local_rows 'no column "changed"'
my "UPDATE orders SET note = 'after drop', updated_at = NOW(6) WHERE id = 1"
wait_for "the other batch entities keep polling" converged

# ---- a crash right after a page's commit, then kill -9 in the middle of a poll ----
batch_crashes 2501

# ---- deletes ----
my "DELETE FROM orders WHERE id IN (3, 700, 2501)"
wait_for "deletes found by the key comparison reach the cache" converged
deletes=$(hub "SELECT string_agg(doc_id, ',' ORDER BY doc_id::int) FROM cachewarp.oplog WHERE entity = 'orders' AND op = 'delete'")
[ "$deletes" = "3,700,2501" ] || fail "deletes in the oplog: $deletes, want 3,700,2501"
compared() { grep -c '"msg":"keys compared".*"entity":"orders"' "$work/run.log"; }
seen=$(compared)
more_compared() { [ "$(compared)" -ge $((seen + 2)) ] && echo ok || echo "$(compared) comparisons"; }
wait_for "two more key comparisons" more_compared
deletes=$(hub "SELECT count(*) FROM cachewarp.oplog WHERE entity = 'orders' AND op = 'delete'")
[ "$deletes" = 3 ] || fail "later comparisons wrote $deletes deletes in all, want 3"

# A composite key: its doc_id is a JSON array, written alike by the poll and the comparison.
my "INSERT INTO pairs (a, b, v) VALUES (1, 'x', 'one'), (2, 'y', 'two'), (3, 'z', 'three')"
pairs() { cache pairs "SELECT group_concat(v, ',') FROM (SELECT v FROM pairs ORDER BY v)"; }
pairs_all() { same "$(pairs)" "one,three,two"; }
wait_for "rows of a composite-key table reach the cache" pairs_all
my "DELETE FROM pairs WHERE a = 2"
pairs_deleted() { same "$(pairs)" "one,three"; }
wait_for "a row deleted from a composite-key table leaves the cache" pairs_deleted
[ "$(hub "SELECT string_agg(doc_id, ',') FROM cachewarp.oplog WHERE entity = 'pairs' AND op = 'delete'")" = '[2,"y"]' ] ||
	fail "pairs deletes: $(hub "SELECT string_agg(doc_id, ',') FROM cachewarp.oplog WHERE entity = 'pairs' AND op = 'delete'")"

# Keys hashed by the server: after the deletes, a comparison finds no bucket
# differing, which holds only if each key's hash equals the hub's.
compared_clean() { # ENTITY: the last comparison of ENTITY found nothing differing
	grep '"msg":"keys compared"' "$work/run.log" | grep "\"entity\":\"$1\"" | tail -1 |
		grep -q '"buckets_differing":"0","deletes":"0"' && echo ok ||
		grep '"msg":"keys compared"' "$work/run.log" | grep "\"entity\":\"$1\"" | tail -1
}
delete_ids() { hub "SELECT string_agg(doc_id, ' ' ORDER BY doc_id) FROM cachewarp.oplog WHERE entity = '$1' AND op = 'delete'"; }
for entity in orders pairs; do
	wait_for "a comparison of $entity finds every bucket equal" compared_clean "$entity"
done
grep '"msg":"keys compared"' "$work/run.log" | grep '"entity":"orders"' | grep -q '"buckets_differing":"all"' &&
	fail "orders' keys were listed whole, not compared by buckets"
[ "$(delete_ids orders | wc -w)" = 3 ] || fail "orders deletes after clean comparisons: $(delete_ids orders)"

my "INSERT INTO words (w, v) VALUES ('plain', 1), ('café', 2), ('世界', 3), ('a\"b', 4),
	('back\\\\slash', 5), ('emoji 😀', 6), ('tab\there', 7)"
wide_row() { # N: a composite key of every hashed form, with bytes JSON escapes
	echo "($1, CONCAT('é', $1), CONCAT('q\"', CHAR(1), CHAR(31), CHAR(127), '\\\\ \n', '世', $1),
		'2026-03-04 05:06:07.000008', X'00FF5C$(printf %02X "$1")', $1)"
}
my "INSERT INTO wide (n, l, s, ts, b, v) VALUES $(wide_row 1), $(wide_row 2), $(wide_row 3),
	(4, 'x', 'y', '0000-00-00 00:00:00', X'', 4)"
counted() { # ENTITY ROWS
	same "$(hub "SELECT count(*) FROM cachewarp.batch_keys WHERE entity = '$1'")" "$2"
}
wait_for "the text keys are in the hub" counted words 7
wait_for "the composite keys are in the hub" counted wide 4
for entity in words wide; do
	wait_for "a comparison of $entity finds every bucket equal" compared_clean "$entity"
done
my "DELETE FROM words WHERE w IN ('café', 'a\"b'); DELETE FROM wide WHERE n IN (2, 4)"
wait_for "the deleted text keys are found" counted words 5
wait_for "the deleted composite keys are found" counted wide 2
for entity in words wide; do
	wait_for "a later comparison of $entity finds every bucket equal" compared_clean "$entity"
done
[ "$(delete_ids words)" = 'a"b café' ] || fail "words deletes: $(delete_ids words)"
[ "$(hub "SELECT string_agg(doc_id::jsonb->>0, ' ' ORDER BY doc_id) FROM cachewarp.oplog WHERE entity = 'wide' AND op = 'delete'")" = "2 4" ] ||
	fail "wide deletes: $(delete_ids wide)"
[ "$(hub "SELECT count(*) FROM cachewarp.batch_keys WHERE entity = 'wide' AND doc_id LIKE '%\\u0001%'")" = 2 ] ||
	fail "the composite keys' doc_ids lack their escapes: $(hub "SELECT doc_id FROM cachewarp.batch_keys WHERE entity = 'wide'")"

# ---- SIGHUP adds, changes and removes pollers ----
my "CREATE TABLE late (id INT PRIMARY KEY, v VARCHAR(20),
	updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6));
    INSERT INTO late (id, v) VALUES (1, 'one'), (2, 'two')"
late_entity() { # DELETE_INTERVAL
	sed "/^targets:/i\\  - {name: late, source: app_my, table: late, mode: batch, polling_interval: 200ms, delete_detection: {interval: $1}}" \
		"$work/cw.base.yaml" >"$work/cw.yaml.new" && mv "$work/cw.yaml.new" "$work/cw.yaml"
}
reloads() { grep -c '"msg":"configuration reloaded"' "$work/run.log"; }
reloaded() { [ "$(reloads)" -gt "$1" ] && echo ok || echo "$(reloads) reloads"; }
cp "$work/cw.yaml" "$work/cw.base.yaml"
late_entity 0
n=$(reloads); kill -HUP "$daemon"
wait_for "the reload is applied" reloaded "$n"
late() { cache late "SELECT group_concat(v, ',') FROM (SELECT v FROM late ORDER BY id)"; }
late_is() { same "$(late)" "$1"; }
wait_for "a batch entity added by a reload is polled" late_is "one,two"
[ "$(hub "SELECT count(*) FROM cachewarp.oplog WHERE entity = 'late' AND source_pos <> 'batch'")" = 0 ] ||
	fail "the binlog stream captured the batch entity added by a reload"
my "INSERT INTO live VALUES (3, 'c')"
live3() { same "$(cache live "SELECT v FROM live WHERE id = '3'")" c; }
wait_for "the restarted stream goes on" live3
# Delete detection off: a deleted row stays; a reload that turns it on finds it.
my "DELETE FROM late WHERE id = 1; INSERT INTO late (id, v) VALUES (3, 'three')"
wait_for "the poll goes on" late_is "one,two,three"
[ "$(hub "SELECT count(*) FROM cachewarp.oplog WHERE entity = 'late' AND op = 'delete'")" = 0 ] ||
	fail "delete_detection.interval 0 still compared keys"
late_entity 1s
n=$(reloads); kill -HUP "$daemon"
wait_for "the reload is applied" reloaded "$n"
wait_for "a delete check turned on by a reload finds the deleted row" late_is "two,three"
# Every batch entity out of the file: the poller stops, the stream worker stays.
port=$(grep -o '"msg":"listening".*"port":"[0-9]*"' "$work/run.log" | tail -1 | grep -o '[0-9]*"$' | tr -d '"')
components() { curl -s "http://127.0.0.1:$port/v1/status" | jq -r '[.components[] | select(.name == "app_my")] | length'; }
[ "$(components)" = 2 ] || fail "before the reload app_my has $(components) components, want its stream and poller"
sed -n '/^entities:/q;p' "$work/cw.base.yaml" >"$work/cw.yaml.new"
cat >>"$work/cw.yaml.new" <<YAML
entities:
  - {name: kinds_scanned, source: app_my, table: kinds}
  - {name: live, source: app_my, table: live}
YAML
sed -n '/^targets:/,$p' "$work/cw.base.yaml" >>"$work/cw.yaml.new"
mv "$work/cw.yaml.new" "$work/cw.yaml"
n=$(reloads); kill -HUP "$daemon"
wait_for "the reload is applied" reloaded "$n"
one_component() { same "$(components)" 1; }
wait_for "the poller of a source without batch entities stops" one_component
my "INSERT INTO live VALUES (4, 'd')"
live4() { same "$(cache live "SELECT v FROM live WHERE id = '4'")" d; }
wait_for "the stream worker goes on" live4

e2e_stop_daemon
[ "$failures" -eq 0 ] || exit 1
echo "batch_mysql: ok"
